//! The session proper, the input's side: lines into commands, literal
//! data after the line that announced it, continuation answers, the end of
//! input, the prompt, and what may be sent when (script mode, `--pipeline`).

use super::*;

impl Core {
    /// After anything happened: send what may be sent, end the session
    /// when it is over, prompt when input is due, track the wait.
    pub(super) fn step(&mut self) {
        if matches!(self.phase, Phase::Session) {
            self.last_stop = self.pump();
            if self.logged_out && matches!(self.phase, Phase::Session) {
                self.logged_out_finish();
            }
            if matches!(self.phase, Phase::Session) {
                self.send_prompt();
            }
        }
        if matches!(self.phase, Phase::Stopping { .. }) && self.logged_out {
            self.stopped("logged out");
        }
        let waiting = match self.phase {
            Phase::Greeting | Phase::StartTls(_) | Phase::Setup(_) => true,
            Phase::Session => self.waiting_on_server() && !self.meta_waiting(),
            _ => false,
        };
        if !waiting {
            self.waiting_since = None;
        } else if self.waiting_since.is_none() {
            self.waiting_since = Some(self.now);
        }
    }

    pub(super) fn logged_out_finish(&mut self) {
        let unsent = self
            .take_line(true)
            .is_some_and(|l| !l.trim_ascii().is_empty());
        if unsent && self.cfg.wait() {
            self.notice("warning: input after LOGOUT was not sent");
        }
        let code = self.exit_code();
        self.finish(code, true, None);
    }

    /// The session is waiting for the server (for the timeout).
    pub(super) fn waiting_on_server(&self) -> bool {
        matches!(
            self.feed,
            Feed::Literal {
                await_plus: true,
                ..
            }
        ) || (!self.outstanding.is_empty() && !self.can_start_line())
    }

    pub(super) fn can_start_line(&self) -> bool {
        if self.logout.is_some() || self.barrier.is_some() {
            return false;
        }
        // At the prompt, a line typed while IDLE, AUTHENTICATE, LOGIN or
        // SELECT awaits its answer waits for it: that answer decides what
        // the line is (a continuation, the next command) and what the
        // prompt shows.
        if self.cfg.interactive() && self.hold.is_some() {
            return false;
        }
        if let Some(c) = &self.cont {
            return !self.cfg.wait() || c.ready;
        }
        !self.cfg.wait() || self.outstanding.is_empty() || self.may_pipeline()
    }

    /// `--pipeline`: the next input line may go before earlier commands
    /// complete.
    pub(super) fn may_pipeline(&self) -> bool {
        self.cfg.pipeline
            && pipeline::may_send(
                pipeline::peek(&self.input, self.input_eof),
                self.outstanding.len(),
                self.outstanding.holds_alone(),
                |line| {
                    let mut cache = self.alone_cache.borrow_mut();
                    match &*cache {
                        Some((l, alone)) if l.as_slice() == line => *alone,
                        _ => {
                            let alone = pipeline::line_alone(line);
                            *cache = Some((line.to_vec(), alone));
                            alone
                        }
                    }
                },
            )
    }

    /// Sends as much input as may be sent now.
    pub(super) fn pump(&mut self) -> Stop {
        loop {
            if !matches!(self.phase, Phase::Session) {
                return Stop::Blocked;
            }
            match &mut self.feed {
                Feed::Command => {
                    if let Some(stop) = self.meta_gate() {
                        return stop;
                    }
                    if !self.can_start_line() {
                        return Stop::Blocked;
                    }
                    if let Some(cmd) = self.auto_compress.due() {
                        let tag = self.send_auto(cmd.as_bytes());
                        self.auto_compress.sent(&tag);
                        continue;
                    }
                    let Some(line) = self.take_line(self.input_eof) else {
                        if self.input.len() > MAX_INPUT_LINE {
                            self.fail(error::usage(format!(
                                "in the input: a command line longer than {} without a line end (send long data as a literal)",
                                crate::text::size(MAX_INPUT_LINE as u64)
                            )));
                            return Stop::Blocked;
                        }
                        if self.input_eof {
                            self.end_of_input();
                            return Stop::Blocked;
                        }
                        return Stop::NeedInput;
                    };
                    self.on_line(&line);
                }
                Feed::Opening | Feed::FileInFlight { .. } => return Stop::Blocked,
                Feed::Literal {
                    await_plus: true, ..
                } => return Stop::Blocked,
                Feed::Literal {
                    tag,
                    remaining,
                    file,
                    checked,
                    ..
                } => {
                    if *remaining == 0 {
                        self.feed = Feed::RestOfLine { tag: tag.clone() };
                        continue;
                    }
                    if let Some(f) = file.take() {
                        let len = *remaining;
                        self.feed = Feed::FileInFlight { tag: tag.clone() };
                        self.actions.push_back(Action::SendFile { file: f.id, len });
                        return Stop::Blocked;
                    }
                    if self.input.is_empty() {
                        if self.input_eof {
                            let msg = format!(
                                "input ended inside the literal of {tag}: {remaining} bytes missing"
                            );
                            self.fail(error::usage(msg));
                            return Stop::Blocked;
                        }
                        return Stop::NeedInput;
                    }
                    let mut avail = self.input.len();
                    if self.cfg.interactive() {
                        // Typed data goes by whole lines that fit; a line
                        // queued before the literal began is checked now.
                        if *checked == 0 {
                            let Some(end) = memchr::memchr(b'\n', &self.input) else {
                                return Stop::NeedInput;
                            };
                            let (tag, left) = (tag.clone(), *remaining);
                            match literal_fit(&self.input[..=end], left) {
                                Ok(n) => {
                                    if let Feed::Literal { checked, .. } = &mut self.feed {
                                        *checked = n;
                                    }
                                }
                                Err(refusal) => {
                                    let _ = self.input.split_to(end + 1);
                                    self.scanned = 0;
                                    let name = self.name_of(&tag).to_string();
                                    self.notice(format!("{tag} {name}: {refusal}"));
                                }
                            }
                            continue;
                        }
                        avail = avail.min(usize::try_from(*checked).unwrap_or(usize::MAX));
                    }
                    let take = usize::try_from(*remaining).map_or(avail, |r| r.min(avail));
                    *remaining -= take as u64;
                    *checked = checked.saturating_sub(take as u64);
                    let chunk = self.input.split_to(take);
                    self.scanned = 0;
                    self.send(chunk.to_vec(), Log::More);
                }
                Feed::RestOfLine { tag } => {
                    let tag = tag.clone();
                    let line = match self.next_segment() {
                        Some(l) => l,
                        None => match self.take_line(self.input_eof) {
                            Some(l) => l,
                            None if self.input_eof => Vec::new(),
                            None => return Stop::NeedInput,
                        },
                    };
                    self.rest_of_line(tag, line);
                }
                Feed::Skip { remaining } => {
                    if *remaining == 0 {
                        self.feed = Feed::SkipRest;
                        continue;
                    }
                    if self.input.is_empty() {
                        if self.input_eof {
                            self.feed = Feed::Command;
                            continue;
                        }
                        return Stop::NeedInput;
                    }
                    let take = usize::try_from(*remaining)
                        .map_or(self.input.len(), |r| r.min(self.input.len()));
                    *remaining -= take as u64;
                    let _ = self.input.split_to(take);
                    self.scanned = 0;
                }
                Feed::SkipRest => {
                    let line = match self.take_line(self.input_eof) {
                        Some(l) => l,
                        None if self.input_eof => Vec::new(),
                        None => return Stop::NeedInput,
                    };
                    self.feed = match command::trailing_literal(&line).ok().flatten() {
                        Some(lit) => Feed::Skip { remaining: lit.len },
                        None => Feed::Command,
                    };
                }
            }
        }
    }

    /// The part of a command line after a literal's data.
    pub(super) fn rest_of_line(&mut self, tag: String, line: Vec<u8>) {
        let mut wire = line.clone();
        wire.extend_from_slice(b"\r\n");
        self.send(wire, Log::More);
        if !line.is_empty() {
            // After a literal user name, the rest of a LOGIN line is the
            // password.
            let secret = self
                .verb_of(&tag)
                .is_some_and(|v| v.secret() != command::Secret::None);
            let shown = if secret {
                "****".into()
            } else {
                String::from_utf8_lossy(&line).into_owned()
            };
            self.echo(shown);
        }
        match command::trailing_literal(&line) {
            Err(e) => self.fail(error::usage(command::input_error(&e))),
            Ok(Some(lit)) if self.refused.as_deref() == Some(&tag) && !lit.non_sync => {
                // Refused already: no `+` will come for this one.
                let unsent = lit.len
                    + self
                        .segments
                        .iter()
                        .filter_map(|s| s.file.as_ref().map(|f| f.len))
                        .sum::<u64>();
                self.notice(format!(
                    "{tag} was refused before its next literal was sent; {unsent} bytes of literal data not sent"
                ));
                self.refused = None;
                if self.next_file.take().is_some() || !self.segments.is_empty() {
                    self.drop_file_literals(0);
                } else {
                    self.feed = Feed::Skip { remaining: lit.len };
                }
            }
            Ok(Some(lit)) => {
                let file = self.next_file.take();
                self.echo_literal(lit.len, file.as_ref().map(|f| f.name.as_str()));
                self.feed = Feed::Literal {
                    tag,
                    remaining: lit.len,
                    await_plus: !lit.non_sync,
                    file,
                    checked: 0,
                };
            }
            Ok(None) => {
                self.feed = Feed::Command;
                if self.refused.as_deref() == Some(&tag) {
                    self.refused = None;
                }
                self.outstanding.mark_sent(&tag);
            }
        }
    }

    /// The next part of a command line with file literals, if one is due.
    pub(super) fn next_segment(&mut self) -> Option<Vec<u8>> {
        let seg = self.segments.pop_front()?;
        self.next_file = seg.file;
        Some(seg.text)
    }

    /// Takes one line (without its LF or CRLF) off the input; at end of
    /// input a last line without a line end counts too. Searches each byte
    /// once, however the input arrives.
    pub(super) fn take_line(&mut self, eof: bool) -> Option<Vec<u8>> {
        let from = self.scanned.min(self.input.len());
        match memchr::memchr(b'\n', &self.input[from..]) {
            Some(i) => {
                self.scanned = 0;
                let line = self.input.split_to(from + i + 1);
                Some(strip_line_end(&line).to_vec())
            }
            None if eof && !self.input.is_empty() => {
                self.scanned = 0;
                let line = self.input.split();
                Some(strip_line_end(&line).to_vec())
            }
            None => {
                self.scanned = self.input.len();
                None
            }
        }
    }

    /// One input line in the Command state.
    pub(super) fn on_line(&mut self, line: &[u8]) {
        // A backslash never begins an IMAP line: a meta-command.
        if line.trim_ascii_start().starts_with(b"\\") {
            self.history(line);
            return self.meta_line(line);
        }
        let idle_done = line.eq_ignore_ascii_case(b"DONE")
            && self
                .outstanding
                .iter()
                .any(|o| o.verb == Verb::Idle && o.sent);
        let owner = self
            .cont
            .as_ref()
            .map(|c| c.tag.clone())
            .or_else(|| idle_done.then(String::new));
        if let Some(owner) = owner {
            return self.continuation_line(owner, line);
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            return;
        }
        self.history(line);
        match crate::protocol::literal::split(line) {
            Err(e) => self.line_error(error::usage(format!("in the input: {e}"))),
            Ok(Some(split)) => {
                if let Err(e) = self.check_stdin_file(&split) {
                    return self.line_error(e);
                }
                let paths = split.files.clone();
                self.opening = Some(split);
                self.feed = Feed::Opening;
                self.actions.push_back(Action::OpenFiles { paths });
            }
            Ok(None) => match self.prepare(line) {
                Ok(p) => self.send_line(p),
                Err(e) => self.line_error(e),
            },
        }
    }

    /// A command line typed at the prompt goes into the editor's history,
    /// unless it carries a secret (LOGIN, AUTHENTICATE, with or without a
    /// tag: either of the first two words counts, even where the line
    /// would not be read as a tagged command, since a password kept by
    /// mistake costs more than a line missing from history). Continuation
    /// answers and literal data never come here.
    pub(super) fn history(&mut self, line: &[u8]) {
        if !self.cfg.interactive() {
            return;
        }
        let secret = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .take(2)
            .any(|w| Verb::parse(w).never_history());
        if !secret {
            let text = String::from_utf8_lossy(line.trim_ascii_end()).into_owned();
            self.actions.push_back(Action::History(text));
        }
    }

    /// At a literal prompt: a typed line that does not fit the literal is
    /// refused (false) with a notice, and nothing of it is kept; one that
    /// fits is accepted as its data.
    pub(super) fn typed_literal_line(&mut self, line: &[u8]) -> bool {
        let Feed::Literal {
            tag,
            remaining,
            file: None,
            checked,
            ..
        } = &self.feed
        else {
            return true;
        };
        // Only when the input holds nothing but this literal's data so far.
        if *checked >= *remaining || self.input.len() as u64 != *checked {
            return true;
        }
        let (tag, left) = (tag.clone(), *remaining - *checked);
        match literal_fit(line, left) {
            Ok(n) => {
                if let Feed::Literal { checked, .. } = &mut self.feed {
                    *checked += n;
                }
                true
            }
            Err(refusal) => {
                let name = self.name_of(&tag).to_string();
                self.notice(format!("{tag} {name}: {refusal}"));
                false
            }
        }
    }

    /// Complete lines typed and not yet taken.
    pub(super) fn queued_lines(&self) -> usize {
        memchr::memchr_iter(b'\n', &self.input).count()
    }

    /// A line that cannot be sent: at the prompt, the user's to correct
    /// (nothing of it went out); in a script, the end.
    pub(super) fn line_error(&mut self, e: anyhow::Error) {
        self.segments.clear();
        self.next_file = None;
        if self.cfg.interactive() {
            self.notice(error::message(&e));
        } else {
            self.fail(e);
        }
    }

    /// A line answering the server's `+`: untagged, as typed.
    pub(super) fn continuation_line(&mut self, owner: String, line: &[u8]) {
        // At the prompt, Enter on an empty line ends an IDLE: nothing else
        // could be meant, and `DONE` is the only thing IDLE takes.
        let idling = self.verb_of(&owner) == Some(Verb::Idle);
        let line: &[u8] = if self.cfg.interactive() && idling && line.trim_ascii().is_empty() {
            b"DONE"
        } else {
            line
        };
        let mut wire = line.to_vec();
        wire.extend_from_slice(b"\r\n");
        let secret = self
            .verb_of(&owner)
            .is_some_and(|v| v.secret() == command::Secret::InitialResponse);
        self.send(wire, Log::Line(secret.then(|| "****".to_string())));
        if let Some(c) = &mut self.cont {
            c.ready = false;
        }
        if self.cfg.interactive() && !owner.is_empty() {
            // The server answers next: a new `+` or the completion.
            self.hold = Some(owner);
        }
        let shown = if secret {
            "****".to_string()
        } else {
            String::from_utf8_lossy(line).into_owned()
        };
        self.echo(shown);
    }

    /// `{@-}` is possible only where stdin is free, and once.
    pub(super) fn check_stdin_file(
        &self,
        split: &crate::protocol::literal::Split,
    ) -> anyhow::Result<()> {
        if !split.files.iter().any(|p| p == b"-") {
            return Ok(());
        }
        match self.cfg.source {
            Source::Commands => {}
            Source::Stdin => {
                return Err(error::usage(
                    "{@-} reads stdin, which holds the script here: give the commands with -c, or name a file ({@FILE})",
                ));
            }
            Source::Interactive => {
                return Err(error::usage(
                    "{@-} reads stdin, which is the terminal here: name a file ({@FILE})",
                ));
            }
        }
        if self.stdin_used || split.files.iter().filter(|p| *p == b"-").count() > 1 {
            return Err(error::usage(
                "{@-} can be used once per run: an earlier {@-} read stdin to its end",
            ));
        }
        Ok(())
    }

    /// The line of a `{@…}` split with its files open: the first part
    /// (ending in the first literal's announcement); the rest is queued.
    pub(super) fn line_with_files(
        &mut self,
        split: crate::protocol::literal::Split,
        files: Vec<FileRef>,
    ) -> anyhow::Result<Vec<u8>> {
        if split.files.iter().any(|p| p == b"-") {
            self.stdin_used = true;
        }
        let mut segments = VecDeque::with_capacity(files.len() + 1);
        let mut files = files.into_iter();
        for mut text in split.texts {
            let file = match files.next() {
                Some(f) => {
                    let announce = crate::protocol::literal::announcement(f.len, f.nul, &self.caps)
                        .map_err(|e| {
                            error::usage(format!("{} {e}; nothing of the command was sent", f.name))
                        })?;
                    text.extend_from_slice(announce.as_bytes());
                    Some(f)
                }
                None => None,
            };
            segments.push_back(Segment { text, file });
        }
        let first = segments.pop_front().unwrap_or(Segment {
            text: Vec::new(),
            file: None,
        });
        self.next_file = first.file;
        self.segments = segments;
        Ok(first.text)
    }

    /// A command line made ready to send; nothing is sent yet.
    pub(super) fn prepare(&mut self, line: &[u8]) -> anyhow::Result<Prepared> {
        let outstanding = &self.outstanding;
        command::prepare(line, &mut self.tagger, |t| outstanding.in_use(t))
            .map_err(|e| error::usage(format!("in the input: {}", command::input_error(&e))))
    }

    pub(super) fn send_line(&mut self, p: Prepared) {
        if self.in_use(&p.tag) {
            self.notice(format!(
                "warning: tag '{}' is already in use by a command that has not completed",
                p.tag
            ));
        }
        self.send_command(p);
    }

    /// A command imaptalk sends on its own (LOGOUT, IDLE, CAPABILITY,
    /// COMPRESS); returns its tag.
    pub(super) fn send_auto(&mut self, line: &[u8]) -> String {
        match self.prepare(line) {
            Ok(p) => {
                let tag = p.tag.clone();
                self.send_command(p);
                tag
            }
            // Only for lines of imaptalk's own, which always prepare.
            Err(e) => {
                self.fail(e);
                String::new()
            }
        }
    }

    pub(super) fn send_command(&mut self, p: Prepared) {
        let mut wire = p.wire.clone();
        wire.extend_from_slice(b"\r\n");
        let verb = p.verb;
        self.outstanding.push(Outstanding {
            tag: p.tag.clone(),
            name: p.name.clone(),
            verb,
            sent: p.literal.is_none(),
            arg: command::state_argument(&p),
            alone: p.alone_in_pipeline(),
            started: self.now,
        });
        let meta_login = std::mem::take(&mut self.meta_login) && verb == Verb::Login;
        if self.cfg.interactive()
            && (verb.takes_continuation()
                || meta_login
                || (p.literal.is_none() && verb.changes_prompt()))
        {
            self.hold = Some(p.tag.clone());
        }
        if verb == Verb::Logout {
            self.logout = Some(p.tag.clone());
        }
        // STARTTLS, COMPRESS: nothing more until the server says whether
        // the connection changes (once it has, they change nothing).
        let changes = match verb {
            Verb::StartTls => !self.tls,
            Verb::Compress => !self.compressed,
            _ => true,
        };
        if verb.barrier() && changes {
            self.barrier = Some(p.tag.clone());
        }
        self.auto_compress.sending_verb(verb);
        if verb == Verb::Login && !self.tls && !self.cfg.local && !self.plain_login_warned {
            self.plain_login_warned = true;
            self.notice(format!(
                "warning: this LOGIN sends the password unencrypted to {}: anyone on the path can read it (STARTTLS first, or connect with --starttls or --tls)",
                escape_str(&self.cfg.host)
            ));
        }
        self.echo_with(|| masked(&p));
        // The transcript gets the masked line whenever it may hide a secret.
        let shown = (verb.secret() != command::Secret::None).then(|| masked(&p));
        self.send(wire, Log::Line(shown));
        if let Some(lit) = p.literal {
            let file = self.next_file.take();
            self.echo_literal(lit.len, file.as_ref().map(|f| f.name.as_str()));
            self.feed = Feed::Literal {
                tag: p.tag,
                remaining: lit.len,
                await_plus: !lit.non_sync,
                file,
                checked: 0,
            };
        }
    }

    /// `--echo` shows literal data by its size only: it may be a message,
    /// binary, or a password.
    pub(super) fn echo_literal(&mut self, len: u64, file: Option<&str>) {
        let text = match file {
            Some(name) => format!("[{len} bytes of literal data from {name}]"),
            None => format!("[{len} bytes of literal data]"),
        };
        if self.cfg.echo || !self.cfg.interactive() || file.is_some() {
            self.echo(text);
        }
    }

    /// Input is exhausted: end an open continuation, then LOG OUT.
    pub(super) fn end_of_input(&mut self) {
        if self.logout.is_some() {
            return;
        }
        if let Some(c) = &self.cont {
            if c.cancelled {
                return;
            }
            let owner = c.tag.clone();
            let name = self.name_of(&owner).to_string();
            let cancel: &[u8] = match self.verb_of(&owner) {
                Some(Verb::Idle) => b"DONE\r\n",
                Some(Verb::Authenticate) => b"*\r\n",
                _ => {
                    return self.fail(error::usage(format!(
                        "input ended while the server waits for more of {owner} {name}"
                    )));
                }
            };
            self.notice(format!(
                "input ended during {owner} {name}: sending {}",
                String::from_utf8_lossy(&cancel[..cancel.len() - 2])
            ));
            self.send(cancel.to_vec(), Log::More);
            if let Some(c) = &mut self.cont {
                c.cancelled = true;
                c.ready = false;
            }
            return;
        }
        if !self.outstanding.is_empty() && self.cfg.wait() {
            return;
        }
        self.send_auto(b"LOGOUT");
    }

    /// The prompt, whenever what it shows changed or input arrived: the
    /// editor keeps reading, so it always shows what a line typed now
    /// becomes.
    pub(super) fn send_prompt(&mut self) {
        if !self.cfg.interactive() || self.input_eof {
            return;
        }
        let view = self.prompt_view();
        if !self.prompt_due && self.shown.as_ref() == Some(&view) {
            return;
        }
        self.prompt_due = false;
        self.shown = Some(view.clone());
        self.actions.push_back(Action::Prompt(view));
    }

    /// The selected mailbox as people read it: a name in modified UTF-7
    /// decoded, as LIST's note shows it (after ENABLE UTF8=ACCEPT names
    /// are UTF-8 already).
    fn mailbox_shown(&self) -> Option<String> {
        let m = self.mailbox.as_ref()?;
        if self.caps.utf8_accept || !m.contains('&') {
            return Some(m.clone());
        }
        Some(crate::protocol::mutf7::decode(m).unwrap_or_else(|_| m.clone()))
    }

    fn prompt_view(&self) -> PromptView {
        if let Some(after) = self.waiting_for_prompt() {
            return PromptView::Waiting {
                after,
                tls: self.tls,
                user: self.user.clone(),
                mailbox: self.mailbox_shown(),
            };
        }
        match &self.feed {
            // Typed literal data: how many bytes are still expected (each
            // typed line counts its CRLF). Lines typed before the server's
            // `+` wait in the input buffer and count as typed.
            Feed::Literal { remaining, .. } if *remaining > self.input.len() as u64 => {
                PromptView::Literal(*remaining - self.input.len() as u64)
            }
            // All of it is typed and so is the line end after it (data
            // waiting for the server's `+`): what comes next is queued.
            Feed::Literal { remaining, tag, .. }
                if memchr::memchr(
                    b'\n',
                    self.input
                        .get(usize::try_from(*remaining).unwrap_or(usize::MAX)..)
                        .unwrap_or_default(),
                )
                .is_some() =>
            {
                PromptView::Waiting {
                    after: tag.clone(),
                    tls: self.tls,
                    user: self.user.clone(),
                    mailbox: self.mailbox_shown(),
                }
            }
            // Every byte of the literal is typed: what comes next is the
            // rest of the command line.
            Feed::Literal { .. } | Feed::RestOfLine { .. } => PromptView::RestOfLine,
            _ if self.cont.is_some() => PromptView::Continuation,
            _ => PromptView::Command {
                tag: self.tagger.peek(|t| self.in_use(t)),
                tls: self.tls,
                user: self.user.clone(),
                mailbox: self.mailbox_shown(),
            },
        }
    }

    /// The command a line typed now would wait for, if any.
    fn waiting_for_prompt(&self) -> Option<String> {
        if let Some(tag) = self.hold.as_ref().or(self.barrier.as_ref()) {
            return Some(tag.clone());
        }
        if self.sending_files() {
            return match &self.feed {
                Feed::Literal { tag, .. }
                | Feed::FileInFlight { tag }
                | Feed::RestOfLine { tag } => Some(tag.clone()),
                _ => self.outstanding.back().map(|o| o.tag.clone()),
            };
        }
        if let Some(idle) = &self.idle
            && (idle.until.is_some() || idle.done_sent)
        {
            return Some(idle.tag.clone());
        }
        if self.sleep_until.is_some() {
            return Some("\\sleep".to_string());
        }
        None
    }

    /// A line with file literals is under way: no prompt until it is sent.
    pub(super) fn sending_files(&self) -> bool {
        !self.segments.is_empty()
            || matches!(
                self.feed,
                Feed::Opening | Feed::FileInFlight { .. } | Feed::Literal { file: Some(_), .. }
            )
    }

    /// Ctrl-C at the prompt, in the session. It ends an IDLE (DONE) or
    /// an AUTHENTICATE (`*`); it stops a wait for the server (what was
    /// queued is dropped, the command stays outstanding and its answer is
    /// still shown); at a literal it says what the server is owed. A
    /// second one within [`AGAIN`] of one that did either ends the session.
    pub(super) fn interrupt(&mut self) {
        let idle = self
            .outstanding
            .iter()
            .find(|o| o.verb == Verb::Idle && o.sent)
            .map(|o| o.tag.clone());
        let idle_open = idle.is_some()
            && self
                .cont
                .as_ref()
                .is_some_and(|c| !c.cancelled && Some(&c.tag) == idle.as_ref())
            && !self.idle.as_ref().is_some_and(|i| i.done_sent);
        if let (Some(tag), true) = (idle, idle_open) {
            self.notice(format!("sending DONE to end {tag} IDLE"));
            self.send(b"DONE\r\n".to_vec(), Log::More);
            self.echo("DONE");
            if let Some(c) = &mut self.cont {
                c.ready = false;
                c.cancelled = true;
            }
            if let Some(idle) = &mut self.idle {
                idle.done_sent = true;
                idle.renewing = false;
            }
            // What is typed next goes after IDLE's completion.
            self.hold = Some(tag);
            return;
        }
        let again = self
            .interrupted_at
            .is_some_and(|t| self.now.duration_since(t) < AGAIN);
        let busy = !self.outstanding.is_empty()
            || !matches!(
                self.feed,
                Feed::Command | Feed::Skip { .. } | Feed::SkipRest
            );
        if again && busy {
            return self.signal(Signal::Interrupt, false, self.now);
        }
        let again_hint = format!(
            "Ctrl-C again within {} or Ctrl-D ends the session",
            secs(AGAIN)
        );
        // A literal under way: the server counts its bytes, so nothing
        // can take the command back but closing the connection.
        match &self.feed {
            Feed::Literal {
                tag,
                remaining,
                await_plus,
                ..
            } => {
                let typed = self.input.len() as u64;
                let owed = remaining.saturating_sub(typed);
                let name = self.name_of(tag).to_string();
                let when = if *await_plus {
                    " (the server has not asked for them yet)"
                } else {
                    ""
                };
                self.notice(format!(
                    "{tag} {name} still needs {} of literal data{when}; once announced they cannot be taken back: type them, or press Ctrl-C again within {} to disconnect",
                    plural(owed, "byte"),
                    secs(AGAIN)
                ));
                self.interrupted_at = Some(self.now);
                return;
            }
            Feed::RestOfLine { tag } | Feed::FileInFlight { tag } => {
                let name = self.name_of(tag).to_string();
                self.notice(format!(
                    "{tag} {name} is being sent: finish the line (Enter alone ends it), or press Ctrl-C again within {} to disconnect",
                    secs(AGAIN)
                ));
                self.interrupted_at = Some(self.now);
                return;
            }
            _ => {}
        }
        if let Some(c) = &self.cont
            && !c.cancelled
            && self.verb_of(&c.tag) == Some(Verb::Authenticate)
        {
            let tag = c.tag.clone();
            self.notice(format!("cancelling {tag} AUTHENTICATE (sending *)"));
            self.send(b"*\r\n".to_vec(), Log::More);
            self.echo("*");
            if let Some(c) = &mut self.cont {
                c.ready = false;
                c.cancelled = true;
            }
            self.hold = None;
            self.interrupted_at = Some(self.now);
            return;
        }
        let queued = self.queued_lines();
        if queued > 0 {
            self.input.clear();
            self.scanned = 0;
        }
        let dropped = match queued {
            0 => String::new(),
            n => format!("; {} typed ahead not sent", plural(n as u64, "line")),
        };
        if let Some(tag) = self.barrier.clone() {
            let name = self.name_of(&tag).to_string();
            self.notice(format!(
                "{tag} {name} is outstanding and nothing can be sent before it completes{dropped}; {again_hint}"
            ));
            self.interrupted_at = Some(self.now);
            return;
        }
        self.hold = None;
        let waiting: Vec<String> = self
            .outstanding
            .iter()
            .map(|o| format!("{} {}", o.tag, o.name))
            .collect();
        if waiting.is_empty() {
            if !dropped.is_empty() {
                self.notice(dropped.trim_start_matches("; ").to_string());
            }
            return;
        }
        let shown = if waiting.len() == 1 {
            "its answer is shown when it arrives"
        } else {
            "their answers are shown when they arrive"
        };
        self.notice(format!(
            "stopped waiting: {} still outstanding ({shown}){dropped}; {again_hint}",
            waiting.join(", ")
        ));
        self.interrupted_at = Some(self.now);
    }

    pub(super) fn timeout_error(&self, d: Duration) -> anyhow::Error {
        if !matches!(self.phase, Phase::Session) {
            // The usual cause of a silent server: a TLS port spoken to in
            // plaintext.
            let hint = if matches!(self.phase, Phase::Greeting) && !self.tls {
                " (if this port expects TLS from the start, add --tls)"
            } else {
                ""
            };
            return error::connect(format!(
                "timed out after {} waiting for {}{hint}",
                secs(d),
                self.waiting_for()
            ));
        }
        if let Feed::Literal {
            tag,
            await_plus: true,
            ..
        } = &self.feed
        {
            return error::lost(format!(
                "timed out after {} waiting for the server's '+' to send the literal of {tag}",
                secs(d)
            ));
        }
        match self.outstanding.front() {
            Some(o) => error::lost(format!(
                "timed out after {} waiting for the server's response to {} {}",
                secs(d),
                o.tag,
                o.name
            )),
            None => error::lost(format!(
                "timed out after {} waiting for the server",
                secs(d)
            )),
        }
    }
}

/// `3 lines`, `1 byte`.
pub(super) fn plural(n: impl Into<u64>, what: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Whether a typed line (with its line end) fits a literal still owed
/// `left` bytes: Ok(bytes of it that are data). A line of exactly `left`
/// bytes is all data and its line end ends the command line; a longer
/// one, or one whose line end would be split, is refused, since sending
/// part of it would give the server bytes the person did not mean.
pub(super) fn literal_fit(line: &[u8], left: u64) -> Result<u64, String> {
    let content = strip_line_end(line).len() as u64;
    let all = line.len() as u64;
    if all <= left || content == left {
        return Ok(all.min(left));
    }
    Err(format!(
        "this line was not sent: the literal still expects {} and the line has {} ({} with its line end); type {left} bytes, or lines that add up to {left} counting 2 for each line end, or Ctrl-C",
        plural(left, "byte"),
        plural(content, "byte"),
        all
    ))
}
