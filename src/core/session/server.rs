//! The session proper, the server's side: completions, continuation
//! requests and what they change (the prompt's state, TLS, COMPRESS, a
//! command refused while it was being sent).

use super::*;

impl Core {
    /// `line`: the response's first line as received.
    pub(super) fn on_response(&mut self, head: Head, line: &[u8]) {
        match head.kind {
            Kind::Continuation => self.on_continuation(),
            Kind::Tagged { tag, status } => self.on_completion(&tag, status, line),
            Kind::Untagged(Status::Bye) => self.bye = Some(line_text(line)),
            Kind::Untagged(_) => {}
        }
    }

    /// Who the server's `+` is for: the synchronizing literal being sent,
    /// the command already in a continuation, or the last command sent
    /// that may take one. Anyone else's is ignored.
    pub(super) fn on_continuation(&mut self) {
        if let Feed::Literal { await_plus, .. } = &mut self.feed
            && *await_plus
        {
            *await_plus = false;
            return;
        }
        if let Some(c) = &mut self.cont {
            c.ready = true;
            self.hold = None;
            return;
        }
        if let Some(o) = self
            .outstanding
            .iter()
            .rev()
            .find(|o| o.sent && o.verb.takes_continuation())
        {
            self.cont = Some(Continuation {
                tag: o.tag.clone(),
                ready: true,
                cancelled: false,
            });
            self.hold = None;
            return;
        }
        if self.stray_plus.warn() {
            self.notice(
                "warning: the server sent a continuation request (+) that no command is waiting for; ignored",
            );
        }
    }

    pub(super) fn on_completion(&mut self, raw_tag: &[u8], status: Status, line: &[u8]) {
        let tag = &*String::from_utf8_lossy(raw_tag);
        let Some(o) = self.outstanding.complete(tag) else {
            if self.stray_tag.warn() {
                self.notice(format!(
                    "warning: the server completed tag '{}', which is not outstanding; ignored",
                    crate::text::escape(raw_tag)
                ));
            }
            return;
        };
        self.report_timing(&o);
        self.track_state(&o, status);
        let failed = matches!(status, Status::No | Status::Bad);
        if failed {
            self.failures += 1;
        }
        if !o.sent {
            if !failed {
                return self.fail(error::lost(format!(
                    "protocol error: the server completed {tag} before the command was fully sent: {}",
                    line_text(line)
                )));
            }
            self.refused_while_sending(&o);
        }
        if self.cont.as_ref().is_some_and(|c| c.tag == tag) {
            self.cont = None;
        }
        if self.barrier.as_deref() == Some(tag) {
            self.barrier = None;
        }
        if self.hold.as_deref() == Some(tag) {
            self.hold = None;
        }
        self.idle_completed(tag, status);
        if self.logout.as_deref() == Some(tag) {
            self.logged_out = true;
            return;
        }
        if o.verb == Verb::StartTls && status == Status::Ok && !self.tls {
            self.phase = Phase::Handshake { typed: true };
            self.actions.push_back(Action::StartTls);
            return;
        }
        if o.verb == Verb::Compress && status == Status::Ok && !self.compressed {
            self.compressed = true;
            self.actions.push_back(Action::StartDeflate);
            if self.cfg.render || self.cfg.verbose {
                self.notice("COMPRESS=DEFLATE active");
            }
        }
        if let Some(notice) = self.auto_compress.completed(tag) {
            self.notice(notice);
        }
    }

    /// The server refused a command before all of it was sent. What is
    /// owed still goes: the rest of a non-synchronizing literal (the
    /// server counts it, RFC 7888) or of a synchronizing one whose `+`
    /// came. Only a literal still waiting for its `+` is skipped, with the
    /// rest of its line.
    pub(super) fn refused_while_sending(&mut self, o: &Outstanding) {
        let skipped = match &self.feed {
            Feed::Literal {
                await_plus: true,
                file,
                remaining,
                ..
            } => {
                let r = *remaining;
                if file.is_some() || !self.segments.is_empty() {
                    self.drop_file_literals(r)
                } else {
                    self.feed = Feed::Skip { remaining: r };
                    Some(r)
                }
            }
            Feed::Literal { .. } | Feed::FileInFlight { .. } | Feed::RestOfLine { .. } => {
                self.refused = Some(o.tag.clone());
                if self.cfg.render || self.cfg.verbose {
                    self.notice(format!(
                        "{} {} was refused while its literal was being sent; the rest of the literal still goes, as the server counts it",
                        o.tag, o.name
                    ));
                }
                None
            }
            _ => None,
        };
        if let Some(n) = skipped {
            self.notice(format!(
                "{} {} was refused before its literal was sent; {n} bytes of literal data not sent",
                o.tag, o.name
            ));
        }
    }

    /// A refused command's file literals are dropped. Returns the bytes of
    /// file data not sent.
    pub(super) fn drop_file_literals(&mut self, current: u64) -> Option<u64> {
        let current = match &self.feed {
            Feed::Literal { file: Some(_), .. } => current,
            _ => 0,
        };
        let unsent = current
            + self
                .segments
                .iter()
                .filter_map(|s| s.file.as_ref().map(|f| f.len))
                .sum::<u64>();
        // The only input still owed is a literal typed at the very end.
        let typed = self
            .segments
            .back()
            .filter(|s| s.file.is_none())
            .and_then(|s| command::trailing_literal(&s.text).ok().flatten());
        self.segments.clear();
        self.next_file = None;
        self.feed = match typed {
            Some(lit) => Feed::Skip { remaining: lit.len },
            None => Feed::Command,
        };
        Some(unsent)
    }

    /// What the prompt shows follows the server's completions only.
    pub(super) fn track_state(&mut self, o: &Outstanding, status: Status) {
        match (status, o.verb.effect()) {
            (Status::Ok, Effect::LogsIn) => {
                self.user = Some(o.arg.clone().unwrap_or_else(|| "?".to_string()));
                if let Some(notice) = self.auto_compress.logged_in() {
                    self.notice(notice);
                }
            }
            (Status::Ok, Effect::Selects) => {
                self.mailbox = Some(o.arg.clone().unwrap_or_else(|| "?".to_string()));
            }
            (Status::Ok, Effect::Unselects) => self.mailbox = None,
            (Status::Ok, Effect::LogsOut) => {
                self.user = None;
                self.mailbox = None;
            }
            // A failed SELECT or EXAMINE leaves no mailbox selected (RFC 9051 6.3.2).
            (Status::No, Effect::Selects) => self.mailbox = None,
            _ => {}
        }
    }

    /// `--timing`: one line per completed command on stderr. At the
    /// prompt the rendered completion already shows it.
    pub(super) fn report_timing(&mut self, o: &Outstanding) {
        if !self.cfg.timing || (self.cfg.interactive() && self.cfg.render) {
            return;
        }
        let ms = self.now.duration_since(o.started).as_secs_f64() * 1000.0;
        self.actions
            .push_back(Action::Message(format!("{} {ms:.1} ms {}", o.tag, o.name)));
    }
}
