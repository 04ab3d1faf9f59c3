//! The conversation with the server: greeting, STARTTLS, and the loop that
//! turns input into commands and responses into output, keeping track of
//! which tags are outstanding and who the server's `+` is meant for.
//!
//! Input — typed lines or a script — arrives as a byte stream. The session
//! reads it in one of a few states ([`Feed`]): a command line; the data of a
//! literal the line announced (sent verbatim, possibly only after the
//! server's `+`); the rest of the command line after that data; or the data
//! of a literal the server refused, which is skipped. While the server has
//! asked a command for more (`+` after IDLE or AUTHENTICATE), whole lines go
//! out untagged and as typed.
//!
//! In script mode (`wait`) nothing new is sent until the previous command
//! completed or the server asked for more, unless `--pipeline` lets it go
//! ahead ([`pipeline`](crate::core::pipeline)); interactively, commands go out as
//! they are typed.

mod files;
mod idle;
mod notes;

use crate::app::cli::Settings;
use crate::app::meta::{self, Meta};
use crate::app::render::Output;
use crate::app::repl::{Prompt, PromptKind, PromptState};
use crate::core::options::Security;
use crate::core::pipeline;
use crate::error;
use crate::io::compress;
use crate::io::connection::{Connection, Stream};
use crate::io::tcp;
use crate::io::tls::{self, TlsSetup};
use crate::io::transcript::{Sending, Transcript};
use crate::protocol::caps::Capabilities;
use crate::protocol::command::{self, Prepared, Tagger, masked};
use crate::protocol::framer::{Event, Head, Kind, LineEnd, Status, strip_line_end};
use crate::text::escape_str;
use crate::text::secs;
use anyhow::Result;
use bytes::BytesMut;
use files::{LiteralSource, Segment};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

mod setup;
use tokio::sync::mpsc;

mod stop;

/// What the input side sends the session.
#[derive(Debug)]
pub enum Input {
    /// More bytes of input (typed lines arrive with their CRLF).
    Data(Vec<u8>),
    /// No more input: finish what is outstanding and LOG OUT.
    Eof,
    /// Ctrl-C at the prompt: ends an IDLE, otherwise nothing.
    Interrupt,
    /// A meta-command typed at the prompt: nothing of it is sent as typed.
    Meta(Meta),
}

/// How much input is read ahead of what can be sent. Scripts can be huge
/// and the session may be waiting for a slow server; memory stays flat.
const INPUT_AHEAD: usize = 256 * 1024;

/// Where the input side stands.
#[derive(Debug)]
enum Feed {
    /// Expecting a command line (or, in continuation mode, a raw line).
    Command,
    /// Sending the data of a literal that the command line announced.
    Literal {
        tag: String,
        remaining: u64,
        /// A synchronizing literal: nothing may be sent before the `+`.
        await_plus: bool,
        source: LiteralSource,
    },
    /// After a literal's data: the rest of the command line.
    RestOfLine { tag: String },
    /// The server refused the command: its literal data is skipped.
    Skip { remaining: u64 },
    /// …and so is the rest of its line.
    SkipRest,
}

/// Why the input side stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    NeedInput,
    Blocked,
    /// More can be sent at once (a file literal), once the server's
    /// output has had a chance to be read.
    More,
}

struct Outstanding {
    tag: String,
    name: String,
    /// Every byte of the command, literals included, has been written.
    sent: bool,
    /// The user (LOGIN) or mailbox (SELECT) that success confirms.
    arg: Option<String>,
    /// `--pipeline`: nothing else may be in flight with this command.
    alone: bool,
    /// When its line was sent (the timing shown on completion).
    started: std::time::Instant,
}

pub struct Session {
    conn: Connection,
    out: Output,
    settings: Settings,
    tls: Option<TlsSetup>,
    tagger: Tagger,
    /// Script mode: one command at a time.
    wait: bool,
    outstanding: VecDeque<Outstanding>,
    feed: Feed,
    input: BytesMut,
    input_eof: bool,
    /// The command the server asked for more with `+`.
    cont: Option<String>,
    /// The `+` has not been answered yet.
    cont_ready: bool,
    /// End of input already cancelled the continuation (sent DONE or `*`).
    cont_cancelled: bool,
    /// A command after which nothing may be sent until it completes (STARTTLS).
    barrier: Option<String>,
    /// The response being received: its head and first line, for messages.
    response: Option<(Head, String)>,
    logout: Option<String>,
    logged_out: bool,
    bye: Option<String>,
    failures: u32,
    prompt: Option<std::sync::mpsc::Sender<Prompt>>,
    /// Logged in, as this user (`?` when the server did not say who).
    user: Option<String>,
    /// The selected mailbox, once the server confirmed it.
    mailbox: Option<String>,
    /// The locale takes UTF-8: the prompt may use a lock symbol.
    utf8: bool,
    /// The editor is waiting for its next prompt: one per line typed.
    prompt_due: bool,
    /// Hold the prompt until this command gets its `+` or completes, so
    /// that after IDLE or AUTHENTICATE the prompt shows `+>` when it is
    /// the server's turn to be answered, and after LOGIN, SELECT and the
    /// like so that the prompt shows the state the server confirmed.
    prompt_hold: Option<String>,
    /// Interactive mode: where capabilities and mailbox names are recorded
    /// for completion.
    known: Option<crate::app::complete::Shared>,
    /// The next LOGIN comes from `\login`: hold the prompt for it even
    /// when its password goes as a literal (that data is queued already).
    meta_login: bool,
    /// What the server advertised (file literals depend on it).
    caps: Capabilities,
    /// `--compress`: COMPRESS DEFLATE after login.
    auto_compress: compress::Auto,
    /// The rest of a command line with `{@…}` file literals.
    segments: VecDeque<Segment>,
    /// The file whose literal the line just sent announces.
    next_file: Option<Box<crate::io::fileliteral::FileLiteral>>,
    /// `{@-}` has read stdin.
    stdin_used: bool,
    /// `--expiry-warn`: a certificate expires within the period (exit 5).
    expiring: bool,
    /// The first line of the last set-up response, as received.
    last_line: Vec<u8>,
    /// The IDLE of a `\idle`, while it runs.
    idle: Option<idle::MetaIdle>,
    /// `\sleep`: nothing is sent before this instant.
    sleep_until: Option<tokio::time::Instant>,
}

impl Session {
    /// Connects, reads the greeting and, if asked, upgrades with STARTTLS.
    /// `known`, in interactive mode, records what completion can use.
    pub async fn establish(
        settings: Settings,
        out: Output,
        wait: bool,
        known: Option<crate::app::complete::Shared>,
    ) -> Result<Session> {
        // Opened first: a bad path is a usage error, before any connection.
        let log = match &settings.log {
            Some(log) => Some(Transcript::open(&log.path, log.literals)?),
            None => None,
        };
        // Reading the system's trust store takes milliseconds (a file per
        // root in SSL_CERT_DIR): do it on a blocking thread while the TCP
        // connection is set up, so start-up costs the longer of the two,
        // not their sum. A setup error still wins over a connect error.
        let tls_setup = match settings.session.security {
            Security::Plain => None,
            Security::Tls | Security::StartTls => {
                let s = settings.tls.clone();
                Some(tokio::task::spawn_blocking(move || TlsSetup::new(&s)))
            }
        };
        let tcp = tcp::connect_tcp(&settings.connect).await;
        let tls = match tls_setup {
            None => None,
            Some(task) => Some(
                task.await
                    .map_err(|e| error::connect(format!("TLS setup failed: {e}")))??,
            ),
        };
        let tcp = tcp?;
        crate::app::diag::connected(&settings.diag, &tcp, tls.is_some());
        let peer = tcp.addr.to_string();
        let mut expiring = false;
        let stream = match (&settings.session.security, &tls) {
            (Security::Tls, Some(tls)) => {
                let start = Instant::now();
                let r = tls::handshake(tcp.stream, tls, settings.session.timeout).await;
                let info = r.as_ref().ok().map(tls::tls_info);
                expiring = crate::app::diag::handshake_done(
                    &settings.diag,
                    tls,
                    info.as_ref(),
                    start.elapsed(),
                );
                Stream::Tls(Box::new(r?))
            }
            _ => Stream::Plain(tcp.stream),
        };
        let mut conn = Connection::new(stream, peer);
        if wait {
            conn.set_send_timeout(settings.session.timeout);
        }
        let mut session = Session {
            conn,
            out,
            tagger: Tagger::new(&settings.session.tag_prefix),
            auto_compress: compress::Auto::new(settings.session.compress),
            tls,
            settings,
            wait,
            outstanding: VecDeque::new(),
            feed: Feed::Command,
            input: BytesMut::new(),
            input_eof: false,
            cont: None,
            cont_ready: false,
            cont_cancelled: false,
            barrier: None,
            response: None,
            logout: None,
            logged_out: false,
            bye: None,
            failures: 0,
            prompt: None,
            user: None,
            mailbox: None,
            utf8: crate::app::repl::utf8_locale(),
            prompt_due: true,
            prompt_hold: None,
            meta_login: false,
            known,
            caps: Capabilities::default(),
            segments: VecDeque::new(),
            next_file: None,
            stdin_used: false,
            expiring,
            last_line: Vec::new(),
            idle: None,
            sleep_until: None,
        };
        if let Some(log) = log {
            let connected = format!(
                "connect {} ({})",
                session.settings.connect.display(),
                session.conn.peer
            );
            session.conn.set_transcript(log, &connected);
        }
        session.greeting().await?;
        if session.settings.session.security == Security::StartTls {
            session.starttls().await?;
        }
        session.after_greeting().await?;
        Ok(session)
    }

    /// Interactive mode: where to send the prompt each time input is due.
    pub fn set_prompt_channel(&mut self, tx: std::sync::mpsc::Sender<Prompt>) {
        self.prompt = Some(tx);
    }

    pub fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    /// Reads one whole response before the session proper (greeting,
    /// STARTTLS), printing it; returns its head and first line.
    async fn setup_response(&mut self, waiting_for: &str) -> Result<(Head, String)> {
        let mut first: Option<(Head, String)> = None;
        loop {
            while let Some(ev) = self
                .conn
                .next_event()
                .map_err(|e| error::connect(e.to_string()))?
            {
                self.out.event(&ev)?;
                if let Event::Line { data, head, end } = &ev {
                    if let Some(h) = head {
                        if let Some(known) = &self.known {
                            crate::app::complete::learn(known, data);
                        }
                        if self.caps.learn(data) {
                            self.auto_compress.saw_capabilities(&self.caps);
                        }
                        self.last_line = strip_line_end(data).to_vec();
                        first = Some((h.clone(), line_text(data)));
                    }
                    if *end == LineEnd::Response
                        && let Some(f) = first.take()
                    {
                        self.out.flush()?;
                        return Ok(f);
                    }
                }
            }
            self.out.flush()?;
            let more = match self.settings.session.timeout {
                Some(d) => tokio::time::timeout(d, self.conn.fill())
                    .await
                    .map_err(|_| {
                        error::connect(format!(
                            "timed out after {} waiting for {waiting_for}",
                            secs(d)
                        ))
                    })?,
                None => self.conn.fill().await,
            };
            if !more.map_err(|e| error::connect(error::message(&e)))? {
                // The usual cause: a TLS port spoken to in plaintext.
                let hint = if self.conn.is_tls() {
                    ""
                } else {
                    " (if this port expects TLS from the start, add --tls)"
                };
                return Err(error::connect(format!(
                    "server closed the connection before sending {waiting_for}{hint}"
                )));
            }
        }
    }

    async fn greeting(&mut self) -> Result<()> {
        let (head, text) = self.setup_response("a greeting").await?;
        match head.kind {
            Kind::Untagged(Status::Ok) => Ok(()),
            Kind::Untagged(Status::Preauth)
                if self.settings.session.security == Security::StartTls =>
            {
                Err(error::connect(
                    "server greeted with PREAUTH (a session already open in plaintext), so STARTTLS is impossible; nothing was sent",
                ))
            }
            Kind::Untagged(Status::Preauth) => {
                self.user = Some("?".to_string());
                if let Some(notice) = self.auto_compress.logged_in() {
                    self.out.notice(notice);
                }
                Ok(())
            }
            Kind::Untagged(Status::Bye) => Err(error::connect(format!(
                "server refused the connection: {text}"
            ))),
            _ => Err(error::connect(format!(
                "this does not look like an IMAP server; it said: {text}"
            ))),
        }
    }

    /// `--starttls`: the first command, before anything else can be sent.
    async fn starttls(&mut self) -> Result<()> {
        let tag = self.tagger.take(|_| false);
        let line = format!("{tag} STARTTLS");
        if self.settings.session.echo {
            self.out.echo(&line);
        }
        self.conn
            .send(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|e| error::connect(error::message(&e)))?;
        loop {
            let (head, text) = self.setup_response("the answer to STARTTLS").await?;
            match head.kind {
                Kind::Tagged { tag: t, status } if t == tag.as_bytes() => {
                    if status != Status::Ok {
                        return Err(error::connect(format!(
                            "server refused STARTTLS: {text} (nothing else was sent)"
                        )));
                    }
                    break;
                }
                Kind::Untagged(Status::Bye) => {
                    return Err(error::connect(format!(
                        "server closed the session during STARTTLS: {text}"
                    )));
                }
                Kind::Untagged(_) => {}
                _ => {
                    return Err(error::connect(format!(
                        "unexpected answer to STARTTLS: {text}; aborting"
                    )));
                }
            }
        }
        self.upgrade().await
    }

    /// The TLS handshake after a STARTTLS OK. Bytes already buffered arrived
    /// in plaintext after the OK: a man in the middle injecting responses
    /// (the CVE-2011-0411 / CVE-2021-22947 class) — never let them through.
    async fn upgrade(&mut self) -> Result<()> {
        let n = self.conn.buffered();
        if n > 0 {
            return Err(error::connect(format!(
                "{n} bytes arrived after the STARTTLS OK, before the TLS handshake (possible response injection); aborting"
            )));
        }
        let tls = match self.tls.take() {
            Some(tls) => tls,
            None => TlsSetup::new(&self.settings.tls)?,
        };
        let start = Instant::now();
        let upgraded = self.conn.upgrade(&tls, self.settings.session.timeout).await;
        let info = self.conn.tls_info();
        self.expiring |= crate::app::diag::handshake_done(
            &self.settings.diag,
            &tls,
            info.as_ref(),
            start.elapsed(),
        );
        self.tls = Some(tls);
        upgraded?;
        self.caps.forget();
        if let Some(summary) = self.conn.tls_summary()
            && self.settings.output.render
        {
            self.out.notice(&format!(
                "TLS established ({summary}); capabilities seen before TLS no longer apply"
            ));
        }
        Ok(())
    }

    /// Runs until the session ends; returns the exit code.
    pub async fn run(&mut self, mut rx: mpsc::Receiver<Input>) -> Result<u8> {
        // When the current wait on the server began: only the server's
        // bytes restart it, never input read meanwhile.
        let mut waiting_since: Option<tokio::time::Instant> = None;
        loop {
            while let Some(ev) = self
                .conn
                .next_event()
                .map_err(|e| error::lost(e.to_string()))?
            {
                self.on_event(ev).await?;
                if self.logged_out {
                    return self.finish().await;
                }
            }
            let stop = self.pump().await?;
            self.conn.send_queued().await?;
            if self.logged_out {
                return self.finish().await;
            }
            self.out.flush()?;
            self.send_prompt();
            let want_input =
                !self.input_eof && (self.input.len() < INPUT_AHEAD || stop == Stop::NeedInput);
            let more = stop == Stop::More;
            let timeout = if self.wait {
                self.settings.session.timeout
            } else {
                None
            };
            let waiting = self.waiting_on_server() && !self.meta_waiting();
            if !waiting {
                waiting_since = None;
            } else if waiting_since.is_none() {
                waiting_since = Some(tokio::time::Instant::now());
            }
            let wake_at = self.wake_at();
            let enter = idle::enter_receiver(&mut self.idle);
            let wakes = wake_at.is_some() || enter.is_some();
            let sleep = async {
                match (timeout, waiting_since) {
                    (Some(d), Some(since)) => tokio::time::sleep_until(since + d).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                more = self.conn.fill() => {
                    if more.is_err() {
                        self.flush_rest();
                    }
                    if !more? {
                        return self.server_closed().await;
                    }
                    waiting_since = None;
                }
                input = rx.recv(), if want_input => match input {
                    Some(Input::Data(d)) => {
                        self.input.extend_from_slice(&d);
                        self.prompt_due = true;
                    }
                    Some(Input::Interrupt) => {
                        self.interrupt().await?;
                        self.prompt_due = true;
                    }
                    Some(Input::Meta(m)) => {
                        self.on_meta(m).await?;
                        self.prompt_due = true;
                    }
                    Some(Input::Eof) | None => self.input_eof = true,
                },
                () = sleep => return Err(self.timeout_error(timeout.unwrap_or_default())),
                () = std::future::ready(()), if more => {}
                w = idle::wake(wake_at, enter), if wakes => self.on_wake(w),
            }
        }
    }

    /// The stream broke off in the middle of a response: its last bytes
    /// still go to the output, so that a capture holds all that arrived.
    fn flush_rest(&mut self) {
        let data = self.conn.take_rest();
        if !data.is_empty() {
            let end = LineEnd::Partial;
            let _ = self.out.event(&Event::Line {
                data,
                head: None,
                end,
            });
        }
        let _ = self.out.finish();
    }

    fn timeout_error(&self, d: Duration) -> anyhow::Error {
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

    fn send_prompt(&mut self) {
        if !self.prompt_due
            || self.input_eof
            || self.prompt_hold.is_some()
            || self.sending_files()
            || self.idle_holds_prompt()
        {
            return;
        }
        let Some(tx) = &self.prompt else { return };
        let prompt = match &self.feed {
            // Typed literal data: show how many bytes are still expected
            // (each typed line counts its CRLF). Lines typed before the
            // server's `+` wait in the input buffer and count as typed.
            Feed::Literal { remaining, .. } if *remaining > self.input.len() as u64 => {
                let left = *remaining - self.input.len() as u64;
                Prompt {
                    text: format!("{{{left}}}> "),
                    kind: PromptKind::Literal,
                }
            }
            // Every byte of the literal is typed (maybe before the server's
            // `+`): what comes next is the rest of the command line, and no
            // other prompt follows when the `+` arrives later.
            Feed::Literal { .. } | Feed::RestOfLine { .. } => Prompt {
                text: "..> ".to_string(),
                kind: PromptKind::Literal,
            },
            _ if self.cont.is_some() => Prompt {
                text: "+> ".to_string(),
                kind: PromptKind::Continuation,
            },
            _ => {
                let next = self
                    .tagger
                    .peek(|t| self.outstanding.iter().any(|o| o.tag == t));
                let host = escape_str(&self.settings.connect.host);
                let user = self.user.as_deref().map(escape_str);
                let mailbox = self.mailbox.as_deref().map(escape_str);
                let state = PromptState {
                    host: &host,
                    tls: self.conn.is_tls(),
                    user: user.as_deref(),
                    mailbox: mailbox.as_deref(),
                    tag: &next,
                };
                Prompt {
                    text: crate::app::repl::command_prompt(
                        &state,
                        crate::app::repl::terminal_width(),
                        self.utf8,
                    ),
                    kind: PromptKind::Command,
                }
            }
        };
        let _ = tx.send(prompt);
        self.prompt_due = false;
    }

    /// The session is waiting for the server (for the timeout in script mode).
    fn waiting_on_server(&self) -> bool {
        matches!(
            self.feed,
            Feed::Literal {
                await_plus: true,
                ..
            }
        ) || (!self.outstanding.is_empty() && !self.can_start_line())
    }

    fn can_start_line(&self) -> bool {
        if self.logout.is_some() || self.barrier.is_some() {
            return false;
        }
        if self.cont.is_some() {
            return !self.wait || self.cont_ready;
        }
        !self.wait || self.outstanding.is_empty() || self.may_pipeline()
    }

    /// `--pipeline`: the next input line may go before earlier commands
    /// complete.
    fn may_pipeline(&self) -> bool {
        self.settings.session.pipeline
            && pipeline::may_send(
                pipeline::peek(&self.input, self.input_eof),
                self.outstanding.len(),
                self.outstanding.iter().any(|o| o.alone),
            )
    }

    /// Sends as much input as may be sent now.
    async fn pump(&mut self) -> Result<Stop> {
        loop {
            match &mut self.feed {
                Feed::Command => {
                    if let Some(stop) = self.meta_gate().await? {
                        return Ok(stop);
                    }
                    if !self.can_start_line() {
                        return Ok(Stop::Blocked);
                    }
                    if let Some(cmd) = self.auto_compress.due() {
                        let outstanding = &self.outstanding;
                        let p = command::prepare(cmd.as_bytes(), &mut self.tagger, |t| {
                            outstanding.iter().any(|o| o.tag == t)
                        })
                        .map_err(|e| error::usage(e.to_string()))?;
                        self.auto_compress.sent(&p.tag);
                        self.send_command(p).await?;
                        continue;
                    }
                    let Some(line) = take_line(&mut self.input, self.input_eof) else {
                        if self.input_eof {
                            self.end_of_input().await?;
                            return Ok(Stop::Blocked);
                        }
                        return Ok(Stop::NeedInput);
                    };
                    self.on_line(&line).await?;
                }
                Feed::Literal {
                    await_plus: true, ..
                } => return Ok(Stop::Blocked),
                Feed::Literal {
                    tag,
                    remaining,
                    source,
                    ..
                } => {
                    if *remaining == 0 {
                        self.feed = Feed::RestOfLine { tag: tag.clone() };
                        continue;
                    }
                    if let LiteralSource::File(f) = source {
                        let chunk = f.next_chunk(*remaining).map_err(error::usage)?;
                        *remaining -= chunk.len() as u64;
                        self.conn.send(chunk).await?;
                        return Ok(Stop::More);
                    }
                    if self.input.is_empty() {
                        if self.input_eof {
                            return Err(error::usage(format!(
                                "input ended inside the literal of {tag}: {remaining} bytes missing"
                            )));
                        }
                        return Ok(Stop::NeedInput);
                    }
                    let take = usize::try_from(*remaining)
                        .map_or(self.input.len(), |r| r.min(self.input.len()));
                    *remaining -= take as u64;
                    let chunk = self.input.split_to(take);
                    self.conn.send(&chunk).await?;
                }
                Feed::RestOfLine { tag } => {
                    let tag = tag.clone();
                    let line = match self.next_segment() {
                        Some(l) => l,
                        None => match take_line(&mut self.input, self.input_eof) {
                            Some(l) => l,
                            None if self.input_eof => Vec::new(),
                            None => return Ok(Stop::NeedInput),
                        },
                    };
                    let mut wire = line.clone();
                    wire.extend_from_slice(b"\r\n");
                    self.conn.send(&wire).await?;
                    if self.settings.session.echo && !line.is_empty() {
                        // After a literal user name, the rest of a LOGIN
                        // line is the password.
                        let secret = self.outstanding.iter().any(|o| {
                            o.tag == tag && matches!(o.name.as_str(), "LOGIN" | "AUTHENTICATE")
                        });
                        let shown = if secret {
                            "****".into()
                        } else {
                            String::from_utf8_lossy(&line)
                        };
                        self.out.echo(&shown);
                    }
                    match command::trailing_literal(&line)
                        .map_err(|e| error::usage(command::input_error(&e)))?
                    {
                        Some(lit) => {
                            let source = self.literal_source();
                            self.echo_literal(lit.len, source.name());
                            self.feed = Feed::Literal {
                                tag,
                                remaining: lit.len,
                                await_plus: !lit.non_sync,
                                source,
                            }
                        }
                        None => {
                            self.feed = Feed::Command;
                            if let Some(o) = self.outstanding.iter_mut().find(|o| o.tag == tag) {
                                o.sent = true;
                            }
                        }
                    }
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
                        return Ok(Stop::NeedInput);
                    }
                    let take = usize::try_from(*remaining)
                        .map_or(self.input.len(), |r| r.min(self.input.len()));
                    *remaining -= take as u64;
                    let _ = self.input.split_to(take);
                }
                Feed::SkipRest => {
                    let line = match take_line(&mut self.input, self.input_eof) {
                        Some(l) => l,
                        None if self.input_eof => Vec::new(),
                        None => return Ok(Stop::NeedInput),
                    };
                    self.feed = match command::trailing_literal(&line).ok().flatten() {
                        Some(lit) => Feed::Skip { remaining: lit.len },
                        None => Feed::Command,
                    };
                }
            }
        }
    }

    /// One input line in the Command state.
    async fn on_line(&mut self, line: &[u8]) -> Result<()> {
        // A backslash never begins an IMAP line: a meta-command.
        if line.trim_ascii_start().starts_with(b"\\") {
            return self.meta_line(line).await;
        }
        let idle_done = line.eq_ignore_ascii_case(b"DONE")
            && self.outstanding.iter().any(|o| o.name == "IDLE" && o.sent);
        if let Some(owner) = self.cont.clone().or_else(|| idle_done.then(String::new)) {
            // At the prompt, Enter on an empty line ends an IDLE: nothing
            // else could be meant, and `DONE` is the only thing IDLE takes.
            let idling = self
                .outstanding
                .iter()
                .any(|o| o.tag == owner && o.name == "IDLE");
            let line: &[u8] = if self.prompt.is_some() && idling && line.trim_ascii().is_empty() {
                b"DONE"
            } else {
                line
            };
            let mut wire = line.to_vec();
            wire.extend_from_slice(b"\r\n");
            let secret = self
                .outstanding
                .iter()
                .any(|o| o.tag == owner && o.name == "AUTHENTICATE");
            self.conn
                .send_as(&wire, Sending::Line(secret.then_some("****")))
                .await?;
            self.cont_ready = false;
            if self.prompt.is_some() && !owner.is_empty() {
                // The server answers next: a new `+` or the completion.
                self.prompt_hold = Some(owner.clone());
            }
            if self.settings.session.echo {
                let shown = if secret {
                    "****".to_string()
                } else {
                    String::from_utf8_lossy(line).into_owned()
                };
                self.out.echo(&shown);
            }
            return Ok(());
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            return Ok(());
        }
        let p = match self.prepare_line(line) {
            Ok(p) => p,
            // At the prompt a line that cannot be sent (a mistyped file
            // name, an impossible literal count) is the user's to correct:
            // nothing of it went out, so the session goes on.
            Err(e) if self.prompt.is_some() => {
                self.segments.clear();
                self.next_file = None;
                self.out.notice(&error::message(&e));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if self.outstanding.iter().any(|o| same_tag(&o.tag, &p.tag)) {
            self.out.notice(&format!(
                "warning: tag '{}' is already in use by a command that has not completed",
                p.tag
            ));
        }
        self.send_command(p).await
    }

    /// A command line made ready to send, its `{@…}` files opened and
    /// scanned; nothing is sent yet.
    fn prepare_line(&mut self, line: &[u8]) -> Result<Prepared> {
        let expanded;
        let line = match crate::protocol::literal::split(line)
            .map_err(|e| error::usage(format!("in the input: {e}")))?
        {
            Some(split) => {
                expanded = self.expand_files(split)?;
                &expanded[..]
            }
            None => line,
        };
        let outstanding = &self.outstanding;
        command::prepare(line, &mut self.tagger, |t| {
            outstanding.iter().any(|o| same_tag(&o.tag, t))
        })
        .map_err(|e| error::usage(format!("in the input: {}", command::input_error(&e))))
    }

    async fn send_command(&mut self, p: Prepared) -> Result<()> {
        let mut wire = p.wire.clone();
        wire.extend_from_slice(b"\r\n");
        self.outstanding.push_back(Outstanding {
            tag: p.tag.clone(),
            name: p.name.clone(),
            sent: p.literal.is_none(),
            arg: command::state_argument(&p),
            alone: pipeline::alone(&p.name, p.literal.is_some()),
            started: std::time::Instant::now(),
        });
        let meta_login = std::mem::take(&mut self.meta_login) && p.name == "LOGIN";
        if self.prompt.is_some()
            && (command::takes_continuation(&p.name)
                || meta_login
                || (p.literal.is_none() && changes_prompt(&p.name)))
        {
            self.prompt_hold = Some(p.tag.clone());
        }
        match p.name.as_str() {
            "LOGOUT" => self.logout = Some(p.tag.clone()),
            "STARTTLS" if !self.conn.is_tls() => self.barrier = Some(p.tag.clone()),
            // Nothing more until the server says whether it compresses.
            "COMPRESS" if !self.conn.is_compressed() => self.barrier = Some(p.tag.clone()),
            _ => {}
        }
        self.auto_compress.sending(&p.name);
        if self.settings.session.echo {
            self.out.echo(&masked(&p));
        }
        // The transcript gets the masked line whenever it may hide a secret.
        let shown = matches!(p.name.as_str(), "LOGIN" | "AUTHENTICATE").then(|| masked(&p));
        let sending = Sending::Line(shown.as_deref());
        if self.wait && self.settings.session.pipeline {
            // Goes out with the next commands, once pump() is done.
            self.conn.queue_as(&wire, sending).await?;
        } else {
            self.conn.send_as(&wire, sending).await?;
        }
        if let Some(lit) = p.literal {
            let source = self.literal_source();
            self.echo_literal(lit.len, source.name());
            self.feed = Feed::Literal {
                tag: p.tag,
                remaining: lit.len,
                await_plus: !lit.non_sync,
                source,
            };
        }
        Ok(())
    }

    /// `--echo` shows literal data by its size only: it may be a message,
    /// binary, or a password.
    fn echo_literal(&mut self, len: u64, file: Option<&str>) {
        if self.settings.session.echo {
            let text = match file {
                Some(name) => format!("[{len} bytes of literal data from {name}]"),
                None => format!("[{len} bytes of literal data]"),
            };
            self.out.echo(&text);
        }
    }

    /// Input is exhausted: end an open continuation, then LOG OUT.
    async fn end_of_input(&mut self) -> Result<()> {
        if self.logout.is_some() {
            return Ok(());
        }
        if let Some(owner) = self.cont.clone() {
            if self.cont_cancelled {
                return Ok(());
            }
            let name = self
                .outstanding
                .iter()
                .find(|o| o.tag == owner)
                .map(|o| o.name.clone())
                .unwrap_or_default();
            let cancel: &[u8] = match name.as_str() {
                "IDLE" => b"DONE\r\n",
                "AUTHENTICATE" => b"*\r\n",
                _ => {
                    return Err(error::usage(format!(
                        "input ended while the server waits for more of {owner} {name}"
                    )));
                }
            };
            self.out.notice(&format!(
                "input ended during {owner} {name}: sending {}",
                String::from_utf8_lossy(&cancel[..cancel.len() - 2])
            ));
            self.conn.send(cancel).await?;
            self.cont_cancelled = true;
            self.cont_ready = false;
            return Ok(());
        }
        if !self.outstanding.is_empty() && self.wait {
            return Ok(());
        }
        let p = command::prepare(b"LOGOUT", &mut self.tagger, |t| {
            self.outstanding.iter().any(|o| o.tag == t)
        })
        .map_err(|e| error::usage(e.to_string()))?;
        self.send_command(p).await
    }

    /// A meta-command: help and messages are printed, `\quit` is the end
    /// of input, `\login` queues a LOGIN line quoted as it needs.
    async fn on_meta(&mut self, m: Meta) -> Result<()> {
        match m {
            Meta::Help(topic) => self.out.message(&meta::help(topic.as_deref())),
            Meta::Say(text) => self.out.notice(&text),
            Meta::Show(text) => self.out.message(&text),
            Meta::Quit => {
                self.input_eof = true;
                // In a script, the lines after \quit are not sent.
                self.input.clear();
            }
            Meta::Sleep(d) => self.start_sleep(d),
            Meta::Idle(d) => {
                if !matches!(self.feed, Feed::Command) || self.cont.is_some() || self.idle.is_some()
                {
                    self.out
                        .notice("\\idle: the current command is not finished; nothing was sent");
                } else {
                    self.start_idle(d).await?;
                }
            }
            Meta::Login { user, password } => {
                if !matches!(self.feed, Feed::Command) || self.cont.is_some() {
                    self.out
                        .notice("\\login: the current command is not finished; nothing was sent");
                    return Ok(());
                }
                self.input
                    .extend_from_slice(&crate::protocol::astring::login_line(&user, &password));
                self.meta_login = true;
            }
        }
        Ok(())
    }

    async fn interrupt(&mut self) -> Result<()> {
        let idle = self
            .outstanding
            .iter()
            .find(|o| o.name == "IDLE" && o.sent)
            .map(|o| o.tag.clone());
        if let Some(tag) = idle {
            self.out.notice(&format!("sending DONE to end {tag} IDLE"));
            self.conn.send(b"DONE\r\n").await?;
            self.cont_ready = false;
            self.idle_interrupted();
            // The next prompt comes with IDLE's completion.
            self.prompt_hold = Some(tag);
        }
        Ok(())
    }

    async fn on_event(&mut self, ev: Event) -> Result<()> {
        let note = self.note_for(&ev);
        self.out.event_noted(&ev, note.as_deref())?;
        if let Event::Line { data, head, end } = ev {
            if let Some(h) = head {
                if let Some(known) = &self.known
                    && h.kind != Kind::Continuation
                {
                    crate::app::complete::learn(known, &data);
                }
                if h.kind != Kind::Continuation && self.caps.learn(&data) {
                    self.auto_compress.saw_capabilities(&self.caps);
                }
                self.response = Some((h, line_text(&data)));
            }
            if end == LineEnd::Response
                && let Some((head, text)) = self.response.take()
            {
                self.on_response(head, text).await?;
            }
        }
        Ok(())
    }

    async fn on_response(&mut self, head: Head, text: String) -> Result<()> {
        match head.kind {
            Kind::Continuation => self.on_continuation(),
            Kind::Tagged { tag, status } => {
                self.on_completion(&String::from_utf8_lossy(&tag), status, &text)
                    .await?
            }
            Kind::Untagged(Status::Bye) => self.bye = Some(text),
            Kind::Untagged(_) => {}
        }
        Ok(())
    }

    fn on_continuation(&mut self) {
        if let Feed::Literal { await_plus, .. } = &mut self.feed
            && *await_plus
        {
            *await_plus = false;
            return;
        }
        if self.cont.is_some() {
            self.cont_ready = true;
            self.prompt_hold = None;
            return;
        }
        if let Some(o) = self
            .outstanding
            .iter()
            .rev()
            .find(|o| o.sent && command::takes_continuation(&o.name))
        {
            self.cont = Some(o.tag.clone());
            self.cont_ready = true;
            self.cont_cancelled = false;
            self.prompt_hold = None;
            return;
        }
        self.out.notice(
            "warning: the server sent a continuation request (+) that no command is waiting for; ignored",
        );
    }

    async fn on_completion(&mut self, tag: &str, status: Status, text: &str) -> Result<()> {
        let Some(o) = self
            .outstanding
            .iter()
            .position(|o| same_tag(&o.tag, tag))
            .and_then(|i| self.outstanding.remove(i))
        else {
            self.out.notice(&format!(
                "warning: the server completed tag '{tag}', which is not outstanding; ignored"
            ));
            return Ok(());
        };
        self.report_timing(&o);
        self.track_state(&o, status);
        let failed = matches!(status, Status::No | Status::Bad);
        if failed {
            self.failures += 1;
        }
        if !o.sent {
            if !failed {
                return Err(error::lost(format!(
                    "protocol error: the server completed {tag} before the command was fully sent: {text}"
                )));
            }
            let skipped = match &self.feed {
                _ if self.sending_files() => self.drop_file_literals(),
                Feed::Literal { remaining, .. } => {
                    let r = *remaining;
                    self.feed = Feed::Skip { remaining: r };
                    Some(r)
                }
                Feed::RestOfLine { .. } => {
                    self.feed = Feed::SkipRest;
                    Some(0)
                }
                _ => None,
            };
            if let Some(n) = skipped {
                self.out.notice(&format!(
                    "{tag} {} was refused before its literal was sent; {n} bytes of literal data not sent",
                    o.name
                ));
            }
        }
        if self.cont.as_deref() == Some(tag) {
            self.cont = None;
            self.cont_ready = false;
            self.cont_cancelled = false;
        }
        if self.barrier.as_deref() == Some(tag) {
            self.barrier = None;
        }
        if self.prompt_hold.as_deref() == Some(tag) {
            self.prompt_hold = None;
        }
        self.idle_completed(tag, status).await?;
        if self.logout.as_deref() == Some(tag) {
            self.logged_out = true;
            return Ok(());
        }
        if o.name == "STARTTLS" && status == Status::Ok && !self.conn.is_tls() {
            self.upgrade().await?;
            if self.settings.diag.verbose {
                // As after --starttls: show what the server says over TLS.
                let p = command::prepare(b"CAPABILITY", &mut self.tagger, |_| false)
                    .map_err(|e| error::lost(e.to_string()))?;
                self.send_command(p).await?;
            }
        }
        if o.name == "COMPRESS" && status == Status::Ok {
            self.conn.compress()?;
            if self.settings.output.render || self.settings.diag.verbose {
                self.out.notice("COMPRESS=DEFLATE active");
            }
        }
        if let Some(notice) = self.auto_compress.completed(tag) {
            self.out.notice(notice);
        }
        Ok(())
    }

    /// What the prompt shows follows the server's completions only.
    fn track_state(&mut self, o: &Outstanding, status: Status) {
        let name = o.name.as_str();
        match status {
            Status::Ok => match name {
                "LOGIN" | "AUTHENTICATE" => {
                    self.user = Some(o.arg.clone().unwrap_or_else(|| "?".to_string()));
                    if let Some(notice) = self.auto_compress.logged_in() {
                        self.out.notice(notice);
                    }
                }
                "SELECT" | "EXAMINE" => {
                    self.mailbox = Some(o.arg.clone().unwrap_or_else(|| "?".to_string()));
                }
                "CLOSE" | "UNSELECT" => self.mailbox = None,
                "UNAUTHENTICATE" => {
                    self.user = None;
                    self.mailbox = None;
                }
                _ => {}
            },
            // A failed SELECT or EXAMINE leaves no mailbox selected (RFC 9051 6.3.2).
            Status::No if matches!(name, "SELECT" | "EXAMINE") => self.mailbox = None,
            _ => {}
        }
    }

    async fn server_closed(&mut self) -> Result<u8> {
        self.out.finish()?;
        self.report_compression();
        if self.logout.is_some() {
            return Ok(self.exit_code());
        }
        Err(match &self.bye {
            Some(text) => error::lost(format!("server closed the connection: {text}")),
            None => error::lost("server closed the connection unexpectedly"),
        })
    }

    async fn finish(&mut self) -> Result<u8> {
        self.out.finish()?;
        self.report_compression();
        self.conn.shutdown().await;
        let unsent = take_line(&mut self.input, true).is_some_and(|l| !l.trim_ascii().is_empty());
        if unsent && self.wait {
            self.out.notice("warning: input after LOGOUT was not sent");
        }
        Ok(self.exit_code())
    }

    /// What COMPRESS saved: on a terminal, or on stderr with `-v`.
    fn report_compression(&mut self) {
        if let Some(stats) = self.conn.compress_stats()
            && (self.settings.output.render || self.settings.diag.verbose)
        {
            self.out.notice(&stats.describe());
        }
    }

    fn exit_code(&self) -> u8 {
        if self.wait && self.failures > 0 {
            error::COMMAND_FAILED
        } else if self.expiring {
            error::CERT_EXPIRING
        } else {
            0
        }
    }
}

/// Tag equality, compared from the end: with `--pipeline` hundreds of tags
/// are in flight and are looked through for every command, and they
/// differ mostly in their last digits.
fn same_tag(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().rev().eq(b.bytes().rev())
}

/// Commands whose completion changes what the prompt shows: the prompt
/// waits for it, so that it never shows a state the server has not confirmed.
fn changes_prompt(name: &str) -> bool {
    matches!(
        name,
        "LOGIN" | "SELECT" | "EXAMINE" | "CLOSE" | "UNSELECT" | "UNAUTHENTICATE"
    )
}

/// Takes one line (without its LF or CRLF) off the input; at end of input
/// a last line without a line end counts too.
fn take_line(input: &mut BytesMut, eof: bool) -> Option<Vec<u8>> {
    match memchr::memchr(b'\n', input) {
        Some(i) => {
            let line = input.split_to(i + 1);
            Some(strip_line_end(&line).to_vec())
        }
        None if eof && !input.is_empty() => {
            let line = input.split();
            Some(strip_line_end(&line).to_vec())
        }
        None => None,
    }
}

/// A server line as it may appear in a message: escaped, and cut short.
fn line_text(data: &[u8]) -> String {
    let line = strip_line_end(data);
    let cut = &line[..line.len().min(300)];
    let mut s = escape_str(&String::from_utf8_lossy(cut));
    if cut.len() < line.len() {
        s.push('…');
    }
    s
}
