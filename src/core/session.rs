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

mod flight;
mod idle;
mod input;
mod server;
mod setup;
#[cfg(test)]
mod tests;

use crate::core::compress;
use crate::core::meta::{self, Meta, Request};
use crate::core::pipeline;
use crate::core::sasl::Secret;
use crate::error;
use crate::protocol::caps::Capabilities;
use crate::protocol::command::{self, Effect, Prepared, Tagger, Verb, masked};
use crate::protocol::framer::{Event, FrameError, Head, Kind, LineEnd, Status, strip_line_end};
use crate::text::secs;
use crate::text::{duration, escape_str};
use bytes::BytesMut;
use input::plural;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// How much input is read ahead of what can be sent. Scripts can be huge
/// and the session may be waiting for a slow server; memory stays flat.
pub const INPUT_AHEAD: usize = 256 * 1024;

/// The longest command line (outside literal data) input may hold: a
/// script without line ends must not fill memory.
pub const MAX_INPUT_LINE: usize = 1024 * 1024;

/// How long the server gets to answer the LOGOUT sent on a signal, a
/// second Ctrl-C or Ctrl-D at the prompt. A person pressing Ctrl-C wants
/// out now; a server that is mid-way through a large literal will not
/// answer in time, and that is fine.
pub const GRACE: Duration = Duration::from_secs(1);

/// At the prompt, a second Ctrl-C this soon after one that stopped a wait
/// ends the session.
pub const AGAIN: Duration = Duration::from_secs(3);

/// With no greeting this long after a plaintext connect, the user is told
/// once that a TLS port needs `--tls` (the usual cause of the silence).
pub const GREETING_HINT: Duration = Duration::from_secs(5);

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
    /// Empty for `--sasl EXTERNAL` or `ANONYMOUS` without `-u`.
    pub user: String,
    pub secret: Secret,
    pub oauth2: bool,
    /// `--sasl`: this mechanism, else the strongest the server offers.
    pub mech: Option<crate::core::sasl::Mechanism>,
    /// The client nonce of a SCRAM exchange (drawn by the driver, so the
    /// core stays deterministic).
    pub nonce: String,
}

impl AutoLogin {
    /// Who logs in, for messages.
    pub fn shown(&self) -> String {
        use crate::core::sasl::Mechanism;
        match (self.user.as_str(), self.mech) {
            ("", Some(Mechanism::External)) => "the user of the client certificate".to_string(),
            ("", Some(Mechanism::Anonymous)) => "anonymous".to_string(),
            (u, _) => escape_str(u),
        }
    }
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
    /// The server is this machine: a LOGIN typed over plaintext is not
    /// warned about.
    pub local: bool,
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
    /// A line typed at a prompt that said it waits (`(after a3)> `): it
    /// is shown when it goes, even if the wait is over when it arrives.
    Queued(Vec<u8>),
    /// No more input: finish what is outstanding and LOG OUT. At the
    /// prompt (Ctrl-D): LOGOUT at once when the wire is between commands,
    /// otherwise close, within [`GRACE`].
    Eof,
    /// Ctrl-C at the prompt: ends an IDLE; stops waiting for the server
    /// (a second one within [`AGAIN`] ends the session); before the
    /// session is set up, ends the run.
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
            Signal::Interrupt => crate::platform::console::INTERRUPT_NAME,
            Signal::Terminate => crate::platform::console::TERMINATE_NAME,
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
    /// What is typed now waits (queued, in order) until `after` (a tag)
    /// gets its `+` or completes.
    Waiting {
        after: String,
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
    /// Bytes for the server (a LOGIN line holds a password: zeroed once
    /// carried out).
    Send { bytes: Zeroizing<Vec<u8>>, log: Log },
    /// Stream this many bytes of a file literal to the server, then call
    /// [`Core::file_sent`]. Once started, all of it goes.
    SendFile { file: usize, len: u64 },
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
    /// What the prompt shows now (interactive mode): sent whenever it
    /// changes, and after every input, while the editor keeps reading.
    Prompt(PromptView),
    /// A typed line for the editor's history: a command, never a secret,
    /// literal data or an answer to `+`.
    History(String),
    /// A line sent that the person did not just type at the prompt (a
    /// queued line, one imaptalk sends itself, a script's command), shown
    /// when output is rendered for people; secrets masked.
    Sent(String),
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
    /// A signal arrived or the person left; LOGOUT is out, waiting until
    /// `deadline`. `signal`: None for Ctrl-D or `\quit` at the prompt.
    Stopping {
        signal: Option<Signal>,
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
        file: Option<FileRef>,
        /// At the prompt: bytes at the front of the input accepted as its
        /// data (typed lines that fit).
        checked: u64,
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
    outstanding: flight::InFlight,
    /// `--pipeline`: whether the next input line must go alone, asked after
    /// every response while it waits; reading the command each time was a
    /// third of the client's own work per pipelined command.
    alone_cache: std::cell::RefCell<Option<(Vec<u8>, bool)>>,
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
    response: Option<(Head, bytes::Bytes, Vec<u8>)>,
    logout: Option<String>,
    logged_out: bool,
    bye: Option<String>,
    failures: u32,
    user: Option<String>,
    mailbox: Option<String>,
    /// Input arrived: the editor gets a prompt even if it did not change.
    prompt_due: bool,
    /// The prompt last sent.
    shown: Option<PromptView>,
    /// Interactive mode: typed lines wait until this command gets its `+`
    /// or completes (IDLE, AUTHENTICATE, LOGIN, SELECT…: what the next
    /// line means depends on the answer).
    hold: Option<String>,
    /// The line being taken was typed just now at the prompt, which shows
    /// it already (else a line sent is shown as `Action::Sent`).
    fresh: bool,
    /// When a Ctrl-C last stopped a wait (a second one soon after ends
    /// the session).
    interrupted_at: Option<Instant>,
    /// When the connection was made (for the `--tls` hint).
    connected_at: Instant,
    greeting_hinted: bool,
    /// The next LOGIN comes from `\login`: hold the prompt for it.
    meta_login: bool,
    /// A typed LOGIN over plaintext was warned about (once a session).
    plain_login_warned: bool,
    /// `-v` showed the logins offered over TLS (true) or before it.
    offer_shown: Option<bool>,
    caps: Capabilities,
    auto_compress: compress::Auto,
    /// The rest of a command line with `{@…}` file literals.
    segments: VecDeque<Segment>,
    /// The line whose files are being opened.
    opening: Option<crate::protocol::literal::Split>,
    next_file: Option<FileRef>,
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
    file: Option<FileRef>,
}

/// A `{@…}` file the driver opened: the core knows it by its number in
/// the line's list of files, and by what its announcement needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// Its place among the files of the line (as `Action::OpenFiles`
    /// listed them); `Action::SendFile` names it so.
    pub id: usize,
    /// The token as the user wrote it (`{@msg.eml}`), for messages.
    pub name: String,
    pub len: u64,
    /// The data holds a NUL byte: only a `~{n}` literal can carry it.
    pub nul: bool,
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
            outstanding: flight::InFlight::default(),
            alone_cache: std::cell::RefCell::new(None),
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
            shown: None,
            hold: None,
            fresh: false,
            interrupted_at: None,
            connected_at: now,
            greeting_hinted: false,
            meta_login: false,
            plain_login_warned: false,
            offer_shown: None,
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
        // At the prompt, what is typed is always taken: lines wait here
        // (in order) and Ctrl-C or Ctrl-D must get through at any time.
        if self.cfg.interactive() {
            return !matches!(self.phase, Phase::Done | Phase::Handshake { .. }) && !self.input_eof;
        }
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
        if let Some(t) = self.greeting_hint_at() {
            add(t);
        }
        at
    }

    /// When to say that a silent plaintext server may want `--tls`.
    fn greeting_hint_at(&self) -> Option<Instant> {
        (matches!(self.phase, Phase::Greeting) && !self.tls && !self.greeting_hinted)
            .then(|| self.connected_at + GREETING_HINT)
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
            // The first line's text is made when a message needs it: a
            // completion that says OK needs none.
            self.response = Some((h.clone(), data.clone(), raw));
        }
        if *end == LineEnd::Response
            && let Some((head, text, raw)) = self.response.take()
        {
            match self.phase {
                Phase::Greeting => self.on_greeting(head, line_text(&text)),
                Phase::StartTls(_) => self.on_starttls_response(head, line_text(&text)),
                Phase::Setup(_) => self.on_setup_response(head, line_text(&text), raw),
                Phase::Session | Phase::Stopping { .. } => self.on_response(head, &text),
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
        let queued = matches!(input, Input::Queued(_));
        match input {
            Input::Data(d) | Input::Queued(d) => {
                if self.cfg.interactive() {
                    if matches!(self.phase, Phase::Stopping { .. }) {
                        return;
                    }
                    // Shown already, at the prompt, if it goes at once.
                    self.fresh = self.input.is_empty() && !queued;
                    // Two Ctrl-C in a row end the session; typing between
                    // them means the person went on.
                    self.interrupted_at = None;
                    if !self.typed_literal_line(&d) {
                        self.prompt_due = true;
                        self.step();
                        self.fresh = false;
                        return;
                    }
                }
                self.input.extend_from_slice(&d);
                self.prompt_due = true;
            }
            Input::Eof if self.cfg.interactive() => return self.leave(),
            Input::Eof => self.input_eof = true,
            Input::Interrupt => {
                if !matches!(self.phase, Phase::Session) {
                    return self.signal(Signal::Interrupt, false, now);
                }
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
        self.fresh = false;
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
        if self.greeting_hint_at().is_some_and(|t| now >= t) {
            self.greeting_hinted = true;
            self.notice(format!(
                "no greeting from {}:{} after {}; if this port expects TLS from the start, add --tls (still waiting)",
                self.cfg.host,
                self.cfg.port,
                secs(GREETING_HINT)
            ));
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
    pub fn files_opened(&mut self, files: anyhow::Result<Vec<FileRef>>, now: Instant) {
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

    /// A signal (script mode), or a second Ctrl-C at the prompt: log out
    /// if the wire allows it, then end. `torn`: what was queued could not
    /// all be written (the server stopped reading): the wire may end
    /// inside a line.
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
        self.stop(Some(signal), torn);
    }

    /// Ctrl-D or `\quit` at the prompt: what is queued is dropped, and the
    /// session ends within [`GRACE`] as after a signal, with the usual
    /// exit code.
    pub(super) fn leave(&mut self) {
        self.input_eof = true;
        match self.phase {
            Phase::Done | Phase::Stopping { .. } => {}
            Phase::Session => {
                let queued = self.queued_lines();
                if queued > 0 {
                    self.notice(format!(
                        "{} typed ahead not sent",
                        plural(queued as u64, "line")
                    ));
                }
                self.input.clear();
                self.scanned = 0;
                self.stop(None, false);
            }
            _ => {
                self.say("imaptalk: input ended before the session was set up; nothing was sent");
                let code = self.exit_code();
                self.finish(code, false, None);
            }
        }
    }

    /// LOGOUT if the wire allows it, else close; then wait for the
    /// answer until [`GRACE`] has passed.
    fn stop(&mut self, signal: Option<Signal>, torn: bool) {
        let deadline = self.now + GRACE;
        if self.logged_out {
            self.phase = Phase::Stopping { signal, deadline };
            return self.stopped("logged out");
        }
        if matches!(self.feed, Feed::Opening) {
            // Nothing of the line went out while its files were opened (a
            // FIFO or {@-} may block there): it is dropped.
            self.opening = None;
            self.feed = Feed::Command;
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
        self.actions.push_back(Action::Send {
            bytes: Zeroizing::new(bytes),
            log,
        });
    }

    fn notice(&mut self, text: impl Into<String>) {
        self.actions.push_back(Action::Notice(text.into()));
    }

    fn say(&mut self, text: impl Into<String>) {
        self.actions.push_back(Action::Say(text.into()));
    }

    /// A line sent: `--echo` copies it to stderr; on a terminal it is shown
    /// unless it was typed at the prompt just now (the prompt shows it).
    fn echo(&mut self, text: impl Into<String>) {
        self.echo_with(|| text.into());
    }

    /// [`echo`](Self::echo), with the text made only when it is shown: a
    /// script to a file shows none, and escaping every command cost more
    /// than sending it.
    fn echo_with(&mut self, text: impl FnOnce() -> String) {
        let fresh = std::mem::take(&mut self.fresh);
        if self.cfg.echo {
            self.actions.push_back(Action::Echo(text()));
        } else if self.cfg.render && !fresh {
            self.actions.push_back(Action::Sent(text()));
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
        match signal {
            Some(signal) => {
                let last = format!("interrupted by {}: {outcome}", signal.name());
                self.finish(signal.exit_code(), true, Some(last));
            }
            // Leaving the prompt: the usual end needs no words.
            None if outcome == "logged out" => {
                let code = self.exit_code();
                self.finish(code, true, None);
            }
            None => {
                let code = self.exit_code();
                self.finish(code, true, Some(outcome.to_string()));
            }
        }
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
        self.outstanding.in_use(tag)
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
}

/// A server line as it may appear in a message: escaped, and cut short.
fn line_text(data: &[u8]) -> String {
    let line = strip_line_end(data);
    let cut = &line[..line.len().min(300)];
    let mut s = crate::text::escape(cut);
    if cut.len() < line.len() {
        s.push('…');
    }
    s
}
