//! The conversation with the server as a state machine that does no IO.
//!
//! The driver ([`crate::app::driver`]) owns the socket, the timers, the input
//! sources and the output; it feeds this core what happened — server
//! events from the framer, bytes or lines of input, the end of input, a
//! timer, a signal, the TLS handshake done — and carries out the
//! [`Action`]s the core queues in answer: bytes to send (with the form the
//! transcript may show), start TLS, start DEFLATE, a file literal to
//! stream, text for the user, a prompt, the end of the run. The core never
//! awaits: a signal can arrive between any two steps and finds the state
//! whole.
//!
//! Every part of a run is a step of this one machine ([`Phase`]): the
//! greeting, `--starttls`, the CAPABILITY `-v` asks for over TLS, the `-u`
//! login, the session proper (typed or scripted input, `--pipeline`,
//! `--compress`, `\idle` with its renewals, LOGOUT at the end of input)
//! and the stop after a signal.
//!
//! Input is read as a byte stream in one of a few states ([`Feed`]): a
//! command line; the data of a literal the line announced (sent verbatim,
//! after the server's `+` when it is synchronizing); the rest of the
//! command line after that data; the data of a literal the server refused
//! before its `+`, which is skipped. Who the server's `+` is meant for is
//! one decision ([`Core::on_continuation`]): the literal being sent, the
//! command that asked (IDLE, AUTHENTICATE, an extension), or the `-u`
//! login step.

mod setup;
#[cfg(test)]
mod tests;

use crate::core::meta::{self, Meta, Request};
use crate::core::pipeline;
use crate::core::sasl::Secret;
use crate::error;
use crate::io::compress;
use crate::io::fileliteral::FileLiteral;
use crate::protocol::caps::Capabilities;
use crate::protocol::command::{self, Effect, Prepared, Tagger, Verb, masked};
use crate::protocol::framer::{Event, FrameError, Head, Kind, LineEnd, Status, strip_line_end};
use crate::text::secs;
use crate::text::{duration, escape_str};
use bytes::BytesMut;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How much input is read ahead of what can be sent. Scripts can be huge
/// and the session may be waiting for a slow server; memory stays flat.
pub const INPUT_AHEAD: usize = 256 * 1024;

/// The longest command line (outside literal data) input may hold: a
/// script without line ends must not fill memory.
pub const MAX_INPUT_LINE: usize = 1024 * 1024;

/// How long the server gets to answer the LOGOUT sent on a signal. A
/// person pressing Ctrl-C wants out now; a server that is mid-way through
/// a large literal will not answer in time, and that is fine.
pub const GRACE: Duration = Duration::from_secs(1);

/// How long one IDLE runs before `\idle` renews it. RFC 2177: servers may
/// end an IDLE after 30 minutes; clients should re-issue it at least every
/// 29 minutes.
pub const RENEW_IDLE: Duration = Duration::from_secs(28 * 60);

/// After this many stray `+` or unknown completions, further ones are
/// counted instead of each warned about, so they cannot bury a real error.
const WARN_EACH: u32 = 3;

/// Where the input comes from: what `{@-}` and `\idle` may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The line editor.
    Interactive,
    /// A script on stdin.
    Stdin,
    /// `-c` commands (stdin is free).
    Commands,
}

pub use crate::core::options::Security;

/// `-u`: who to log in as, with the secret read before connecting.
#[derive(Debug, Clone)]
pub struct AutoLogin {
    pub user: String,
    pub secret: Secret,
    pub oauth2: bool,
}

/// What the core needs to know of the run's options.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub source: Source,
    pub pipeline: bool,
    pub echo: bool,
    /// Output is rendered for people (notes, notices about TLS, COMPRESS).
    pub render: bool,
    pub verbose: bool,
    pub timing: bool,
    pub timeout: Option<Duration>,
    pub compress: bool,
    pub tag_prefix: String,
    pub login: Option<AutoLogin>,
    /// Why `-u` may not send its secret over this connection if it is
    /// not encrypted (the driver applies the plaintext rule to the
    /// address it connected to).
    pub plaintext_refusal: Option<String>,
    /// How long one `\idle` IDLE runs before it is renewed.
    pub renew_idle: Duration,
}

impl Config {
    /// Script mode: one command at a time, timeouts apply.
    fn wait(&self) -> bool {
        self.source != Source::Interactive
    }

    fn interactive(&self) -> bool {
        self.source == Source::Interactive
    }
}

/// Input from the person or the script.
#[derive(Debug)]
pub enum Input {
    /// More bytes of input (typed lines arrive with their line end).
    Data(Vec<u8>),
    /// No more input: finish what is outstanding and LOG OUT.
    Eof,
    /// Ctrl-C at the prompt: ends an IDLE, otherwise nothing.
    Interrupt,
    /// A meta-command typed at the prompt: nothing of it is sent as typed.
    Meta(Meta),
    /// `-c` mode, `\idle` without SECONDS: a line (or the end) of stdin.
    StdinLine,
}

/// A signal that ends a script run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => error::INTERRUPTED,
            Signal::Terminate => error::TERMINATED,
        }
    }
}

/// How the transcript records bytes sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Log {
    /// A new line; shown as this text instead when it hides a secret.
    Line(Option<String>),
    /// More of the line or literal under way.
    More,
}

/// What the next prompt shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptView {
    /// A command line: the state the server confirmed, and the next tag.
    Command {
        tag: String,
        tls: bool,
        user: Option<String>,
        mailbox: Option<String>,
    },
    /// Typed literal data: this many bytes are still expected.
    Literal(u64),
    /// The literal is typed: the rest of the command line.
    RestOfLine,
    /// An answer to the server's `+`.
    Continuation,
}

/// What the driver is to do, in order.
#[derive(Debug)]
pub enum Action {
    /// Bytes for the server.
    Send { bytes: Vec<u8>, log: Log },
    /// Stream this many bytes of a file literal to the server, then call
    /// [`Core::file_sent`]. Once started, all of it goes.
    SendFile { file: Box<FileLiteral>, len: u64 },
    /// Open the `{@…}` files of a command line (off the runtime thread),
    /// then call [`Core::files_opened`].
    OpenFiles { paths: Vec<Vec<u8>> },
    /// TLS handshake on the connection (STARTTLS completed OK); then call
    /// [`Core::tls_up`]. Anything already received after the OK is an
    /// injection: the driver aborts.
    StartTls,
    /// COMPRESS completed OK: both directions deflate from now on.
    StartDeflate,
    /// `-c` mode: tell the core (`Input::StdinLine`) when stdin has a line
    /// or ends.
    WatchStdin,
    /// A notice from imaptalk (`imaptalk: …`), beside the output.
    Notice(String),
    /// Text for the user, as it is (help, `\show`, `--timing`).
    Message(String),
    /// `--help` text of a topic, as the driver renders it.
    Help(Option<String>),
    /// `--echo`: a line sent, already masked.
    Echo(String),
    /// A line for stderr as it is (`-v` reports).
    Say(String),
    /// The prompt for the next line (interactive mode).
    Prompt(PromptView),
    /// The run is over with this exit code. `shutdown`: close the
    /// connection politely; `last`: a notice after that.
    Finish {
        code: u8,
        shutdown: bool,
        last: Option<String>,
    },
    /// The run failed.
    Fail(anyhow::Error),
}

/// The steps of a run.
#[derive(Debug)]
enum Phase {
    Greeting,
    /// `--starttls`: STARTTLS sent with this tag.
    StartTls(String),
    /// The driver is doing the TLS handshake; `typed`: for a STARTTLS
    /// typed in the session (else `--starttls`).
    Handshake {
        typed: bool,
    },
    /// A set-up command before input is read.
    Setup(setup::Step),
    Session,
    /// A signal arrived; LOGOUT is out, waiting until `deadline`.
    Stopping {
        signal: Signal,
        deadline: Instant,
    },
    Done,
}

/// Where the input side stands.
#[derive(Debug)]
enum Feed {
    /// Expecting a command line (or, in continuation mode, a raw line).
    Command,
    /// `{@…}` files being opened: nothing moves until they are.
    Opening,
    /// Sending the data of a literal that the command line announced.
    Literal {
        tag: String,
        remaining: u64,
        /// A synchronizing literal: nothing may be sent before the `+`.
        await_plus: bool,
        file: Option<Box<FileLiteral>>,
    },
    /// A file literal is streaming; the driver says when it is done.
    FileInFlight { tag: String },
    /// After a literal's data: the rest of the command line.
    RestOfLine { tag: String },
    /// The server refused the command: its literal data is skipped.
    Skip { remaining: u64 },
    /// …and so is the rest of its line.
    SkipRest,
}

/// Why the input side stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    NeedInput,
    Blocked,
}

#[derive(Debug)]
struct Outstanding {
    tag: String,
    /// The command name as typed (`UID FETCH`), for messages.
    name: String,
    verb: Verb,
    /// Every byte of the command, literals included, has been sent.
    sent: bool,
    /// The user (LOGIN) or mailbox (SELECT) that success confirms.
    arg: Option<String>,
    /// `--pipeline`: nothing else may be in flight with this command.
    alone: bool,
    started: Instant,
}

/// The server's `+` was answered for this command (IDLE, AUTHENTICATE, an
/// extension): lines typed now go to it untagged.
#[derive(Debug)]
struct Continuation {
    tag: String,
    /// The `+` has not been answered yet.
    ready: bool,
    /// DONE or `*` already sent (end of input, a signal, `\idle`'s end):
    /// nothing may cancel it again.
    cancelled: bool,
}

/// An IDLE started by `\idle`.
#[derive(Debug)]
struct MetaIdle {
    tag: String,
    /// When to send DONE for good; None: on the next input line (Enter)
    /// or at the end of input.
    until: Option<Instant>,
    renew_at: Instant,
    done_sent: bool,
    /// DONE was sent to renew the IDLE, not to end it.
    renewing: bool,
    /// `-c` mode without SECONDS: stdin is watched; it had a line.
    watch: bool,
    entered: bool,
}

/// Warnings of one kind, counted once there are many.
#[derive(Debug, Default)]
struct Flood {
    seen: u32,
}

impl Flood {
    /// Whether to warn about this one; every later one is only counted.
    fn warn(&mut self) -> bool {
        self.seen += 1;
        self.seen <= WARN_EACH
    }

    fn suppressed(&self) -> u32 {
        self.seen.saturating_sub(WARN_EACH)
    }
}

/// The session core. See the module documentation.
pub struct Core {
    cfg: Config,
    phase: Phase,
    actions: VecDeque<Action>,
    now: Instant,
    tagger: Tagger,
    tls: bool,
    compressed: bool,
    outstanding: VecDeque<Outstanding>,
    feed: Feed,
    input: BytesMut,
    /// Bytes at the start of `input` already searched for a line end.
    scanned: usize,
    input_eof: bool,
    cont: Option<Continuation>,
    /// A command after which nothing may be sent until it completes.
    barrier: Option<String>,
    /// The response being received: its head, first line (for messages)
    /// and raw text after `+` (for SASL challenges).
    response: Option<(Head, String, Vec<u8>)>,
    logout: Option<String>,
    logged_out: bool,
    bye: Option<String>,
    failures: u32,
    user: Option<String>,
    mailbox: Option<String>,
    /// The editor is waiting for its next prompt: one per line typed.
    prompt_due: bool,
    /// Hold the prompt until this command gets its `+` or completes.
    prompt_hold: Option<String>,
    /// The next LOGIN comes from `\login`: hold the prompt for it.
    meta_login: bool,
    caps: Capabilities,
    auto_compress: compress::Auto,
    /// The rest of a command line with `{@…}` file literals.
    segments: VecDeque<Segment>,
    /// The line whose files are being opened.
    opening: Option<crate::protocol::literal::Split>,
    next_file: Option<Box<FileLiteral>>,
    stdin_used: bool,
    /// The command being sent was refused already (LITERAL+): the literal
    /// under way still goes, a synchronizing one after it does not.
    refused: Option<String>,
    expiring: bool,
    idle: Option<MetaIdle>,
    sleep_until: Option<Instant>,
    /// When the current wait on the server began.
    waiting_since: Option<Instant>,
    last_stop: Stop,
    stray_plus: Flood,
    stray_tag: Flood,
}

/// A part of a command line after a file literal's data: its text,
/// ending in the announcement of `file`'s literal when there is one.
#[derive(Debug)]
struct Segment {
    text: Vec<u8>,
    file: Option<Box<FileLiteral>>,
}

impl Core {
    /// A core for a connection just made; `tls`: TLS from the start;
    /// `expiring`: `--expiry-warn` found a certificate about to expire.
    pub fn new(cfg: Config, tls: bool, expiring: bool, now: Instant) -> Core {
        Core {
            tagger: Tagger::new(&cfg.tag_prefix),
            auto_compress: compress::Auto::new(cfg.compress),
            cfg,
            phase: Phase::Greeting,
            actions: VecDeque::new(),
            now,
            tls,
            compressed: false,
            outstanding: VecDeque::new(),
            feed: Feed::Command,
            input: BytesMut::new(),
            scanned: 0,
            input_eof: false,
            cont: None,
            barrier: None,
            response: None,
            logout: None,
            logged_out: false,
            bye: None,
            failures: 0,
            user: None,
            mailbox: None,
            prompt_due: true,
            prompt_hold: None,
            meta_login: false,
            caps: Capabilities::default(),
            segments: VecDeque::new(),
            opening: None,
            next_file: None,
            stdin_used: false,
            refused: None,
            expiring,
            idle: None,
            sleep_until: None,
            waiting_since: Some(now),
            last_stop: Stop::NeedInput,
            stray_plus: Flood::default(),
            stray_tag: Flood::default(),
        }
    }

    // ----- what the driver asks -----------------------------------------

    /// The next thing to do, in order.
    pub fn next_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Whether the driver should read more input now.
    pub fn wants_input(&self) -> bool {
        matches!(
            self.phase,
            Phase::Session | Phase::Setup(_) | Phase::Greeting
        ) && !self.input_eof
            && (self.input.len() < INPUT_AHEAD || self.last_stop == Stop::NeedInput)
    }

    /// When the core must be woken ([`Core::tick`]) if nothing else happens.
    pub fn deadline(&self) -> Option<Instant> {
        let mut at: Option<Instant> = None;
        let mut add = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
        match &self.phase {
            Phase::Stopping { deadline, .. } => return Some(*deadline),
            Phase::Done | Phase::Handshake { .. } => return None,
            _ => {}
        }
        if let (Some(d), Some(since)) = (self.timeout(), self.waiting_since) {
            add(since + d);
        }
        if let Some(t) = self.sleep_until {
            add(t);
        }
        if let Some(t) = self.idle_wake_at() {
            add(t);
        }
        at
    }

    /// The `--timeout` that applies now: in the set-up always, in the
    /// session only in script mode.
    fn timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Greeting | Phase::StartTls(_) | Phase::Setup(_) => self.cfg.timeout,
            Phase::Session if self.cfg.wait() => self.cfg.timeout,
            _ => None,
        }
    }

    /// Capabilities the server advertised.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The session is set up: input is read and sent.
    pub fn in_session(&self) -> bool {
        matches!(self.phase, Phase::Session)
    }

    // ----- what happened ------------------------------------------------

    /// Bytes arrived from the server (maybe not yet a whole event): the
    /// wait for the server starts again.
    pub fn server_activity(&mut self, now: Instant) {
        self.now = now;
        if self.waiting_since.is_some() {
            self.waiting_since = Some(now);
        }
    }

    /// The note terminal rendering shows after this server line, if any:
    /// the time a command took on its completion, the decoded name of a
    /// mailbox in modified UTF-7.
    pub fn note_for(&self, ev: &Event) -> Option<String> {
        if !self.cfg.render || !self.in_session() && !matches!(self.phase, Phase::Stopping { .. }) {
            return None;
        }
        let Event::Line {
            data,
            head,
            end: LineEnd::Response,
        } = ev
        else {
            return None;
        };
        let whole_line = head.is_some();
        let head = head.as_ref().or(self.response.as_ref().map(|r| &r.0))?;
        match &head.kind {
            // After ENABLE UTF8=ACCEPT names are UTF-8 (RFC 6855).
            Kind::Untagged(_) if whole_line && !self.caps.utf8_accept => {
                crate::protocol::mutf7::note(data)
            }
            Kind::Tagged { tag, .. } => {
                let o = self
                    .outstanding
                    .iter()
                    .find(|o| o.tag.as_bytes() == &tag[..])?;
                Some(format!(
                    "({})",
                    duration(self.now.duration_since(o.started))
                ))
            }
            _ => None,
        }
    }

    /// A server event from the framer (already shown by the driver).
    pub fn server_event(&mut self, ev: &Event, now: Instant) {
        self.now = now;
        let Event::Line { data, head, end } = ev else {
            return;
        };
        if let Some(h) = head {
            if h.kind != Kind::Continuation && self.caps.learn(data) {
                self.auto_compress.saw_capabilities(&self.caps);
            }
            let raw = match h.kind {
                Kind::Continuation => strip_line_end(data)
                    .get(1..)
                    .unwrap_or_default()
                    .trim_ascii_start()
                    .to_vec(),
                _ => Vec::new(),
            };
            self.response = Some((h.clone(), line_text(data), raw));
        }
        if *end == LineEnd::Response
            && let Some((head, text, raw)) = self.response.take()
        {
            match self.phase {
                Phase::Greeting => self.on_greeting(head, text),
                Phase::StartTls(_) => self.on_starttls_response(head, text),
                Phase::Setup(_) => self.on_setup_response(head, text, raw),
                Phase::Session | Phase::Stopping { .. } => self.on_response(head, text),
                Phase::Handshake { .. } | Phase::Done => {}
            }
        }
        self.step();
    }

    /// The framer found the stream impossible to frame.
    pub fn frame_error(&mut self, e: FrameError) {
        let err = match self.phase {
            Phase::Greeting | Phase::StartTls(_) | Phase::Setup(_) | Phase::Handshake { .. } => {
                error::connect(e.to_string())
            }
            Phase::Stopping { .. } => {
                return self.stopped("sent LOGOUT; the server's answer could not be framed");
            }
            _ => error::lost(e.to_string()),
        };
        self.fail(err);
    }

    /// Reading from or writing to the server failed.
    pub fn connection_error(&mut self, e: anyhow::Error) {
        match self.phase {
            Phase::Greeting | Phase::StartTls(_) | Phase::Setup(_) => {
                self.fail(error::connect(error::message(&e)))
            }
            Phase::Stopping { .. } => self.stopped("sent LOGOUT; the connection broke"),
            _ => self.fail(e),
        }
    }

    /// The server closed its side (between responses).
    pub fn server_closed(&mut self, now: Instant) {
        self.now = now;
        match self.phase {
            Phase::Greeting | Phase::StartTls(_) | Phase::Setup(_) => {
                let what = self.waiting_for();
                // The usual cause: a TLS port spoken to in plaintext.
                let hint = if self.tls {
                    ""
                } else {
                    " (if this port expects TLS from the start, add --tls)"
                };
                self.fail(error::connect(format!(
                    "server closed the connection before sending {what}{hint}"
                )));
            }
            Phase::Stopping { .. } => self.stopped("sent LOGOUT; the server closed the connection"),
            Phase::Done => {}
            _ => {
                if self.logout.is_some() {
                    let code = self.exit_code();
                    self.finish(code, false, None);
                } else {
                    let err = match &self.bye {
                        Some(text) => error::lost(format!("server closed the connection: {text}")),
                        None => error::lost("server closed the connection unexpectedly"),
                    };
                    self.fail(err);
                }
            }
        }
    }

    /// Input from the person or the script.
    pub fn input(&mut self, input: Input, now: Instant) {
        self.now = now;
        match input {
            Input::Data(d) => {
                self.input.extend_from_slice(&d);
                self.prompt_due = true;
            }
            Input::Eof => self.input_eof = true,
            Input::Interrupt => {
                self.interrupt();
                self.prompt_due = true;
            }
            Input::Meta(m) => {
                self.on_meta(m);
                self.prompt_due = true;
            }
            Input::StdinLine => {
                if let Some(idle) = &mut self.idle {
                    idle.entered = true;
                }
            }
        }
        self.step();
    }

    /// Time passed: timers that are due fire.
    pub fn tick(&mut self, now: Instant) {
        self.now = now;
        if let Phase::Stopping { deadline, .. } = self.phase {
            if now >= deadline {
                self.stopped("sent LOGOUT; no answer within 1s");
            }
            return;
        }
        if let (Some(d), Some(since)) = (self.timeout(), self.waiting_since)
            && now >= since + d
        {
            let err = self.timeout_error(d);
            return self.fail(err);
        }
        self.step();
    }

    /// The TLS handshake after a STARTTLS OK is done. `summary`: what was
    /// negotiated, for the notice; `expiring`: `--expiry-warn` applies.
    pub fn tls_up(&mut self, summary: Option<&str>, expiring: bool, now: Instant) {
        self.now = now;
        self.tls = true;
        self.expiring |= expiring;
        self.caps.forget();
        if let Some(summary) = summary
            && self.cfg.render
        {
            self.notice(format!(
                "TLS established ({summary}); capabilities seen before TLS no longer apply"
            ));
        }
        let typed = matches!(self.phase, Phase::Handshake { typed: true });
        self.waiting_since = Some(now);
        if typed {
            self.phase = Phase::Session;
            if self.cfg.verbose {
                // As after --starttls: show what the server says over TLS.
                self.send_auto(b"CAPABILITY");
            }
        } else {
            self.after_tls();
        }
        self.step();
    }

    /// The files of an `Action::OpenFiles` are open (or could not be).
    pub fn files_opened(&mut self, files: anyhow::Result<Vec<FileLiteral>>, now: Instant) {
        self.now = now;
        let Some(split) = self.opening.take() else {
            return;
        };
        self.feed = Feed::Command;
        let line = files.and_then(|files| self.line_with_files(split, files));
        match line.and_then(|line| self.prepare(&line)) {
            Ok(p) => self.send_line(p),
            Err(e) => self.line_error(e),
        }
        self.step();
    }

    /// An `Action::SendFile` is done: all its bytes went.
    pub fn file_sent(&mut self, now: Instant) {
        self.now = now;
        if let Feed::FileInFlight { tag } = &self.feed {
            self.feed = Feed::RestOfLine { tag: tag.clone() };
        }
        self.step();
    }

    /// A signal (script mode): log out if the wire allows it, then end.
    /// `torn`: a write to the server is under way (part of it went).
    pub fn signal(&mut self, signal: Signal, torn: bool, now: Instant) {
        self.now = now;
        match self.phase {
            Phase::Done => return,
            Phase::Stopping { .. } => {
                return self.stopped("sent LOGOUT; a second signal ended the wait");
            }
            Phase::Session => {}
            _ => {
                self.say(format!(
                    "imaptalk: interrupted by {} before the session was set up",
                    signal.name()
                ));
                return self.finish(signal.exit_code(), false, None);
            }
        }
        let deadline = now + GRACE;
        if self.logged_out {
            self.phase = Phase::Stopping { signal, deadline };
            return self.stopped("logged out");
        }
        if self.logout.is_none() {
            if torn
                || self.barrier.is_some()
                || !matches!(
                    self.feed,
                    Feed::Command | Feed::Skip { .. } | Feed::SkipRest
                )
            {
                self.phase = Phase::Stopping { signal, deadline };
                return self
                    .stopped("in the middle of a command; closed the connection without LOGOUT");
            }
            if let Some(c) = &self.cont
                && !c.cancelled
            {
                let cancel: &[u8] = match self.verb_of(&c.tag) {
                    Some(Verb::Idle) => b"DONE\r\n",
                    Some(Verb::Authenticate) => b"*\r\n",
                    // An extension command in the middle of its own
                    // exchange: a LOGOUT line now would be part of it.
                    _ => {
                        self.phase = Phase::Stopping { signal, deadline };
                        return self.stopped(
                            "in the middle of a command; closed the connection without LOGOUT",
                        );
                    }
                };
                self.send(cancel.to_vec(), Log::More);
                if let Some(c) = &mut self.cont {
                    c.cancelled = true;
                }
            }
            self.send_auto(b"LOGOUT");
        }
        self.phase = Phase::Stopping { signal, deadline };
    }

    // ----- actions --------------------------------------------------------

    fn send(&mut self, bytes: Vec<u8>, log: Log) {
        self.actions.push_back(Action::Send { bytes, log });
    }

    fn notice(&mut self, text: impl Into<String>) {
        self.actions.push_back(Action::Notice(text.into()));
    }

    fn say(&mut self, text: impl Into<String>) {
        self.actions.push_back(Action::Say(text.into()));
    }

    fn echo(&mut self, text: impl Into<String>) {
        if self.cfg.echo {
            self.actions.push_back(Action::Echo(text.into()));
        }
    }

    /// Warnings counted rather than repeated are summed up at the end.
    fn floods(&mut self) {
        let plus = self.stray_plus.suppressed();
        if plus > 0 {
            self.notice(format!(
                "warning: {plus} more continuation requests (+) that no command was waiting for were ignored"
            ));
        }
        let tags = self.stray_tag.suppressed();
        if tags > 0 {
            self.notice(format!(
                "warning: {tags} more completions of tags that were not outstanding were ignored"
            ));
        }
        self.stray_plus = Flood::default();
        self.stray_tag = Flood::default();
    }

    fn fail(&mut self, err: anyhow::Error) {
        if matches!(self.phase, Phase::Done) {
            return;
        }
        self.floods();
        if matches!(self.phase, Phase::Stopping { .. }) {
            return self.stopped("sent LOGOUT; the session broke before it completed");
        }
        self.phase = Phase::Done;
        self.actions.push_back(Action::Fail(err));
    }

    fn finish(&mut self, code: u8, shutdown: bool, last: Option<String>) {
        if matches!(self.phase, Phase::Done) {
            return;
        }
        self.floods();
        self.phase = Phase::Done;
        self.actions.push_back(Action::Finish {
            code,
            shutdown,
            last,
        });
    }

    /// The stop after a signal is over: `outcome` says how.
    fn stopped(&mut self, outcome: &str) {
        let Phase::Stopping { signal, .. } = self.phase else {
            return;
        };
        let last = format!("interrupted by {}: {outcome}", signal.name());
        self.finish(signal.exit_code(), true, Some(last));
    }

    fn exit_code(&self) -> u8 {
        if self.cfg.wait() && self.failures > 0 {
            error::COMMAND_FAILED
        } else if self.expiring {
            error::CERT_EXPIRING
        } else {
            0
        }
    }

    fn in_use(&self, tag: &str) -> bool {
        self.outstanding.iter().any(|o| same_tag(&o.tag, tag))
    }

    fn verb_of(&self, tag: &str) -> Option<Verb> {
        self.outstanding
            .iter()
            .find(|o| o.tag == tag)
            .map(|o| o.verb)
    }

    fn name_of(&self, tag: &str) -> &str {
        self.outstanding
            .iter()
            .find(|o| o.tag == tag)
            .map_or("", |o| o.name.as_str())
    }

    // ----- the session proper: responses ------------------------------

    fn on_response(&mut self, head: Head, text: String) {
        match head.kind {
            Kind::Continuation => self.on_continuation(),
            Kind::Tagged { tag, status } => {
                self.on_completion(&String::from_utf8_lossy(&tag), status, &text)
            }
            Kind::Untagged(Status::Bye) => self.bye = Some(text),
            Kind::Untagged(_) => {}
        }
    }

    /// Who the server's `+` is for: the synchronizing literal being sent,
    /// the command already in a continuation, or the last command sent
    /// that may take one. Anyone else's is ignored.
    fn on_continuation(&mut self) {
        if let Feed::Literal { await_plus, .. } = &mut self.feed
            && *await_plus
        {
            *await_plus = false;
            return;
        }
        if let Some(c) = &mut self.cont {
            c.ready = true;
            self.prompt_hold = None;
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
            self.prompt_hold = None;
            return;
        }
        if self.stray_plus.warn() {
            self.notice(
                "warning: the server sent a continuation request (+) that no command is waiting for; ignored",
            );
        }
    }

    fn on_completion(&mut self, tag: &str, status: Status, text: &str) {
        let Some(o) = self
            .outstanding
            .iter()
            .position(|o| same_tag(&o.tag, tag))
            .and_then(|i| self.outstanding.remove(i))
        else {
            if self.stray_tag.warn() {
                self.notice(format!(
                    "warning: the server completed tag '{}', which is not outstanding; ignored",
                    escape_str(tag)
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
                    "protocol error: the server completed {tag} before the command was fully sent: {text}"
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
        if self.prompt_hold.as_deref() == Some(tag) {
            self.prompt_hold = None;
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
    fn refused_while_sending(&mut self, o: &Outstanding) {
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
    fn drop_file_literals(&mut self, current: u64) -> Option<u64> {
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
    fn track_state(&mut self, o: &Outstanding, status: Status) {
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
    fn report_timing(&mut self, o: &Outstanding) {
        if !self.cfg.timing || (self.cfg.interactive() && self.cfg.render) {
            return;
        }
        let ms = self.now.duration_since(o.started).as_secs_f64() * 1000.0;
        self.actions
            .push_back(Action::Message(format!("{} {ms:.1} ms {}", o.tag, o.name)));
    }

    // ----- the session proper: input ----------------------------------

    /// After anything happened: send what may be sent, end the session
    /// when it is over, prompt when input is due, track the wait.
    fn step(&mut self) {
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

    fn logged_out_finish(&mut self) {
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
        if let Some(c) = &self.cont {
            return !self.cfg.wait() || c.ready;
        }
        !self.cfg.wait() || self.outstanding.is_empty() || self.may_pipeline()
    }

    /// `--pipeline`: the next input line may go before earlier commands
    /// complete.
    fn may_pipeline(&self) -> bool {
        self.cfg.pipeline
            && pipeline::may_send(
                pipeline::peek(&self.input, self.input_eof),
                self.outstanding.len(),
                self.outstanding.iter().any(|o| o.alone),
            )
    }

    /// Sends as much input as may be sent now.
    fn pump(&mut self) -> Stop {
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
                    ..
                } => {
                    if *remaining == 0 {
                        self.feed = Feed::RestOfLine { tag: tag.clone() };
                        continue;
                    }
                    if let Some(f) = file.take() {
                        let len = *remaining;
                        self.feed = Feed::FileInFlight { tag: tag.clone() };
                        self.actions.push_back(Action::SendFile { file: f, len });
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
                    let take = usize::try_from(*remaining)
                        .map_or(self.input.len(), |r| r.min(self.input.len()));
                    *remaining -= take as u64;
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
    fn rest_of_line(&mut self, tag: String, line: Vec<u8>) {
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
                };
            }
            Ok(None) => {
                self.feed = Feed::Command;
                if self.refused.as_deref() == Some(&tag) {
                    self.refused = None;
                }
                if let Some(o) = self.outstanding.iter_mut().find(|o| o.tag == tag) {
                    o.sent = true;
                }
            }
        }
    }

    /// The next part of a command line with file literals, if one is due.
    fn next_segment(&mut self) -> Option<Vec<u8>> {
        let seg = self.segments.pop_front()?;
        self.next_file = seg.file;
        Some(seg.text)
    }

    /// Takes one line (without its LF or CRLF) off the input; at end of
    /// input a last line without a line end counts too. Searches each byte
    /// once, however the input arrives.
    fn take_line(&mut self, eof: bool) -> Option<Vec<u8>> {
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
    fn on_line(&mut self, line: &[u8]) {
        // A backslash never begins an IMAP line: a meta-command.
        if line.trim_ascii_start().starts_with(b"\\") {
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

    /// A line that cannot be sent: at the prompt, the user's to correct
    /// (nothing of it went out); in a script, the end.
    fn line_error(&mut self, e: anyhow::Error) {
        self.segments.clear();
        self.next_file = None;
        if self.cfg.interactive() {
            self.notice(error::message(&e));
        } else {
            self.fail(e);
        }
    }

    /// A line answering the server's `+`: untagged, as typed.
    fn continuation_line(&mut self, owner: String, line: &[u8]) {
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
            self.prompt_hold = Some(owner);
        }
        let shown = if secret {
            "****".to_string()
        } else {
            String::from_utf8_lossy(line).into_owned()
        };
        self.echo(shown);
    }

    /// `{@-}` is possible only where stdin is free, and once.
    fn check_stdin_file(&self, split: &crate::protocol::literal::Split) -> anyhow::Result<()> {
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
    fn line_with_files(
        &mut self,
        split: crate::protocol::literal::Split,
        files: Vec<FileLiteral>,
    ) -> anyhow::Result<Vec<u8>> {
        if split.files.iter().any(|p| p == b"-") {
            self.stdin_used = true;
        }
        let mut segments = VecDeque::with_capacity(files.len() + 1);
        let mut files = files.into_iter();
        for mut text in split.texts {
            let file = match files.next() {
                Some(f) => {
                    let announce = f.announcement(&self.caps).map_err(|e| {
                        error::usage(format!("{e}; nothing of the command was sent"))
                    })?;
                    text.extend_from_slice(announce.as_bytes());
                    Some(Box::new(f))
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
    fn prepare(&mut self, line: &[u8]) -> anyhow::Result<Prepared> {
        let outstanding = &self.outstanding;
        command::prepare(line, &mut self.tagger, |t| {
            outstanding.iter().any(|o| same_tag(&o.tag, t))
        })
        .map_err(|e| error::usage(format!("in the input: {}", command::input_error(&e))))
    }

    fn send_line(&mut self, p: Prepared) {
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
    fn send_auto(&mut self, line: &[u8]) -> String {
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

    fn send_command(&mut self, p: Prepared) {
        let mut wire = p.wire.clone();
        wire.extend_from_slice(b"\r\n");
        let verb = p.verb;
        self.outstanding.push_back(Outstanding {
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
            self.prompt_hold = Some(p.tag.clone());
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
        self.echo(masked(&p));
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
            };
        }
    }

    /// `--echo` shows literal data by its size only: it may be a message,
    /// binary, or a password.
    fn echo_literal(&mut self, len: u64, file: Option<&str>) {
        let text = match file {
            Some(name) => format!("[{len} bytes of literal data from {name}]"),
            None => format!("[{len} bytes of literal data]"),
        };
        self.echo(text);
    }

    /// Input is exhausted: end an open continuation, then LOG OUT.
    fn end_of_input(&mut self) {
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

    fn send_prompt(&mut self) {
        if !self.cfg.interactive()
            || !self.prompt_due
            || self.input_eof
            || self.prompt_hold.is_some()
            || self.sending_files()
            || self.idle.as_ref().is_some_and(|i| i.until.is_some())
        {
            return;
        }
        let view = match &self.feed {
            // Typed literal data: how many bytes are still expected (each
            // typed line counts its CRLF). Lines typed before the server's
            // `+` wait in the input buffer and count as typed.
            Feed::Literal { remaining, .. } if *remaining > self.input.len() as u64 => {
                PromptView::Literal(*remaining - self.input.len() as u64)
            }
            // Every byte of the literal is typed: what comes next is the
            // rest of the command line.
            Feed::Literal { .. } | Feed::RestOfLine { .. } => PromptView::RestOfLine,
            _ if self.cont.is_some() => PromptView::Continuation,
            _ => PromptView::Command {
                tag: self.tagger.peek(|t| self.in_use(t)),
                tls: self.tls,
                user: self.user.clone(),
                mailbox: self.mailbox.clone(),
            },
        };
        self.actions.push_back(Action::Prompt(view));
        self.prompt_due = false;
    }

    /// A line with file literals is under way: no prompt until it is sent.
    fn sending_files(&self) -> bool {
        !self.segments.is_empty()
            || matches!(
                self.feed,
                Feed::Opening | Feed::FileInFlight { .. } | Feed::Literal { file: Some(_), .. }
            )
    }

    fn interrupt(&mut self) {
        let idle = self
            .outstanding
            .iter()
            .find(|o| o.verb == Verb::Idle && o.sent)
            .map(|o| o.tag.clone());
        if let Some(tag) = idle {
            self.notice(format!("sending DONE to end {tag} IDLE"));
            self.send(b"DONE\r\n".to_vec(), Log::More);
            if let Some(c) = &mut self.cont {
                c.ready = false;
            }
            if let Some(idle) = &mut self.idle {
                idle.done_sent = true;
                idle.renewing = false;
            }
            // The next prompt comes with IDLE's completion.
            self.prompt_hold = Some(tag);
        }
    }

    fn timeout_error(&self, d: Duration) -> anyhow::Error {
        if !matches!(self.phase, Phase::Session) {
            return error::connect(format!(
                "timed out after {} waiting for {}",
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

    // ----- meta-commands, \idle and \sleep ------------------------------

    /// A line starting with `\` in a script or `-c`: never sent.
    fn meta_line(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let m = match meta::parse(&text) {
            Request::Help(topic) => Meta::Help(topic),
            Request::Quit => Meta::Quit,
            Request::Idle(d) => Meta::Idle(d),
            Request::Sleep(d) => Meta::Sleep(d),
            Request::Show(text) => Meta::Show(text),
            Request::Login(_) => {
                return self.fail(error::usage(
                    "in the input: \\login asks for a password at the terminal; in a script write LOGIN USER PASSWORD",
                ));
            }
            Request::Error(e) => return self.fail(error::usage(format!("in the input: {e}"))),
        };
        self.on_meta(m);
    }

    /// A meta-command: help and messages are shown, `\quit` is the end of
    /// input, `\login` queues a LOGIN line quoted as it needs.
    fn on_meta(&mut self, m: Meta) {
        match m {
            Meta::Help(topic) => self.actions.push_back(Action::Help(topic)),
            Meta::Say(text) => self.notice(text),
            Meta::Show(text) => self.actions.push_back(Action::Message(text)),
            Meta::Quit => {
                self.input_eof = true;
                // In a script, the lines after \quit are not sent.
                self.input.clear();
                self.scanned = 0;
            }
            Meta::Sleep(d) => self.sleep_until = Some(self.now + d),
            Meta::Idle(d) => {
                if !matches!(self.feed, Feed::Command) || self.cont.is_some() || self.idle.is_some()
                {
                    self.notice("\\idle: the current command is not finished; nothing was sent");
                } else {
                    self.start_idle(d);
                }
            }
            Meta::Login { user, password } => {
                if !matches!(self.feed, Feed::Command) || self.cont.is_some() {
                    self.notice("\\login: the current command is not finished; nothing was sent");
                    return;
                }
                self.input
                    .extend_from_slice(&crate::protocol::astring::login_line(
                        &user,
                        password.expose(),
                    ));
                self.meta_login = true;
            }
        }
    }

    fn start_idle(&mut self, secs: Option<Duration>) {
        let tag = self.send_auto(b"IDLE");
        let watch = secs.is_none() && self.cfg.source == Source::Commands;
        if watch {
            self.actions.push_back(Action::WatchStdin);
        }
        self.idle = Some(MetaIdle {
            tag,
            until: secs.map(|d| self.now + d),
            renew_at: self.now + self.cfg.renew_idle,
            done_sent: false,
            renewing: false,
            watch,
            entered: false,
        });
    }

    /// While `\sleep` or `\idle` runs, input waits; decides when an idle
    /// ends or is renewed. None: the input may be read as usual.
    fn meta_gate(&mut self) -> Option<Stop> {
        if let Some(t) = self.sleep_until {
            if self.now < t {
                return Some(Stop::Blocked);
            }
            self.sleep_until = None;
        }
        let by_commands = self.cfg.source == Source::Commands;
        let now = self.now;
        let idle = self.idle.as_mut()?;
        if idle.done_sent || self.cont.as_ref().map(|c| c.tag.as_str()) != Some(idle.tag.as_str()) {
            // Waiting for the server's `+` or for the completion.
            return Some(Stop::Blocked);
        }
        if idle.until.is_some_and(|t| now >= t) {
            self.idle_done(false);
            return Some(Stop::Blocked);
        }
        // Without SECONDS the next line ends it (Enter, at the prompt).
        if idle.until.is_none() {
            let ended = if by_commands {
                idle.entered || !idle.watch
            } else {
                let line = memchr::memchr(b'\n', &self.input);
                if let Some(i) = line {
                    // Enter or DONE was meant for this IDLE; anything else
                    // is the next command, sent after IDLE completes.
                    let typed = self.input[..i].trim_ascii();
                    if typed.is_empty() || typed.eq_ignore_ascii_case(b"DONE") {
                        let _ = self.input.split_to(i + 1);
                        self.scanned = 0;
                    }
                }
                line.is_some() || self.input_eof
            };
            if ended {
                self.idle_done(false);
                return Some(Stop::Blocked);
            }
        }
        let idle = self.idle.as_ref()?;
        if now >= idle.renew_at {
            self.idle_done(true);
            return Some(Stop::Blocked);
        }
        Some(if idle.until.is_none() && !by_commands {
            Stop::NeedInput
        } else {
            Stop::Blocked
        })
    }

    fn idle_done(&mut self, renew: bool) {
        let Some(idle) = &mut self.idle else {
            return;
        };
        idle.done_sent = true;
        idle.renewing = renew;
        let tag = idle.tag.clone();
        if renew && self.cfg.render {
            self.notice(format!(
                "ending {tag} IDLE to start a new one (servers may drop an IDLE after 30 minutes, RFC 2177)"
            ));
        }
        self.send(b"DONE\r\n".to_vec(), Log::More);
        self.echo("DONE");
        if let Some(c) = &mut self.cont {
            c.ready = false;
            // Nothing else may end this IDLE again (a signal, the end of
            // input).
            c.cancelled = true;
        }
        if self.cfg.interactive() {
            self.prompt_hold = Some(tag);
        }
    }

    /// A command completed: if it was `\idle`'s IDLE ended for renewal,
    /// IDLE again; otherwise the `\idle` is over.
    fn idle_completed(&mut self, tag: &str, status: Status) {
        let Some(idle) = &self.idle else {
            return;
        };
        if idle.tag != tag {
            return;
        }
        let again = idle.renewing
            && status == Status::Ok
            && self.logout.is_none()
            && idle.until.is_none_or(|t| self.now < t);
        let Some(mut idle) = self.idle.take() else {
            return;
        };
        if !again {
            return;
        }
        idle.tag = self.send_auto(b"IDLE");
        idle.done_sent = false;
        idle.renewing = false;
        idle.renew_at = self.now + self.cfg.renew_idle;
        self.idle = Some(idle);
    }

    /// When the session must wake up on its own for `\idle`.
    fn idle_wake_at(&self) -> Option<Instant> {
        self.idle
            .as_ref()
            .filter(|i| {
                !i.done_sent && self.cont.as_ref().map(|c| c.tag.as_str()) == Some(i.tag.as_str())
            })
            .map(|i| i.until.map_or(i.renew_at, |u| u.min(i.renew_at)))
    }

    /// The session is waiting on purpose (`\sleep`, or `\idle` between its
    /// `+` and DONE): the `--timeout` for server responses does not apply.
    fn meta_waiting(&self) -> bool {
        self.sleep_until.is_some() || self.idle_wake_at().is_some()
    }
}

/// Tag equality, compared from the end: with `--pipeline` hundreds of tags
/// are in flight and are looked through for every command, and they
/// differ mostly in their last digits.
fn same_tag(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().rev().eq(b.bytes().rev())
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
