//! The one loop that does the session's IO: it connects, then owns the
//! connection, the timers, the input source and the output, feeds the
//! [session core](crate::core::session) what happens and carries out what
//! it asks for. The REPL and the script modes are input sources and
//! renderers on top of it.
//!
//! Cancellation is safe by construction: the loop waits in one `select!`
//! over the server, the input, the core's deadline and the signals, and
//! the core's state is whole between any two of its steps. The one wait
//! outside that `select!` is a write of what the core queued, and it is
//! never dropped half-way to be looked at afterwards: a signal lets it
//! finish first (see [`Driver::flush`]).

use crate::app::auth;
use crate::app::cli::Settings;
use crate::app::complete;
use crate::app::render::Output;
use crate::app::repl::{Prompt, PromptKind, PromptState, ScreenTx};
use crate::app::signals::{self, Signals};
use crate::core::meta;
use crate::core::options::Security;
use crate::core::session::{self, Action, Config, Core, FileRef, Input, Log, PromptView, Signal};
use crate::error;
use crate::io::connection::{Connection, Stream};
use crate::io::fileliteral::FileLiteral;
use crate::io::tcp;
use crate::io::tls::{self, TlsSetup};
use crate::io::transcript::{Sending, Transcript};
use crate::protocol::framer::{Event, Kind, LineEnd};
use crate::text::escape_str;
use anyhow::Result;
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Test-only override of [`session::RENEW_IDLE`], in seconds, so a test of
/// the renewal runs in seconds. Not documented for users.
const RENEW_IDLE_ENV: &str = "IMAPTALK_TEST_RENEW_IDLE_SECS";

fn renew_interval() -> Duration {
    std::env::var(RENEW_IDLE_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map_or(session::RENEW_IDLE, Duration::from_secs_f64)
}

/// The core's view of the run's options. `script`: one command at a time
/// whatever the input (`--show-certs`); `peer`: the address connected.
/// `local`: the server is this machine (the plaintext rule allows a
/// secret to go unencrypted to it).
pub fn config(settings: &Settings, script: bool, peer: &str, local: bool) -> Config {
    use crate::core::options::Input as From;
    let opts = &settings.session;
    let login = settings.login.as_ref().and_then(|l| {
        l.secret.clone().map(|secret| session::AutoLogin {
            user: l.user.clone(),
            secret,
            oauth2: l.source.is_oauth2(),
            mech: l.mech,
            nonce: scram_nonce(),
        })
    });
    let plaintext_refusal = match &login {
        Some(l) if l.mech.is_some_and(crate::core::sasl::Mechanism::secretless) => None,
        Some(l) if opts.security == Security::Plain && !local && !opts.allow_plaintext_auth => {
            let what = if l.oauth2 {
                "an OAuth2 token"
            } else {
                "a password"
            };
            auth::plaintext_refusal(auth::Channel::Plaintext, peer, false, what)
        }
        _ => None,
    };
    Config {
        host: settings.connect.host.clone(),
        port: settings.connect.port,
        security: opts.security,
        source: match &settings.input {
            _ if script => session::Source::Commands,
            From::Interactive => session::Source::Interactive,
            From::Stdin => session::Source::Stdin,
            From::Commands(_) => session::Source::Commands,
        },
        pipeline: opts.pipeline,
        echo: opts.echo,
        render: settings.output.render,
        verbose: settings.diag.verbose,
        timing: opts.timing,
        timeout: opts.timeout,
        compress: opts.compress,
        tag_prefix: opts.tag_prefix.clone(),
        login,
        plaintext_refusal,
        local,
        renew_idle: renew_interval(),
    }
}

/// Test-only: the SCRAM client nonce, so that a scripted server can play
/// a fixed exchange. Not documented for users.
const SCRAM_NONCE_ENV: &str = "IMAPTALK_TEST_SCRAM_NONCE";

/// A fresh SCRAM client nonce: 18 random bytes, base64 (no `,` in it).
pub fn scram_nonce() -> String {
    if let Ok(n) = std::env::var(SCRAM_NONCE_ENV)
        && !n.is_empty()
        && !n.contains(',')
    {
        return n;
    }
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 18];
    // Should the system's generator ever fail (it does not on the
    // platforms imaptalk runs on), the clock keeps the nonce changing.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..16].copy_from_slice(&t.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Where the driver sends prompts and learns for completion
/// (interactive mode).
pub struct Editor {
    pub screen: ScreenTx,
    pub known: complete::Shared,
}

/// A connected session: the core and everything it needs done.
pub struct Driver {
    core: Core,
    conn: Connection,
    out: Output,
    settings: Settings,
    tls: Option<TlsSetup>,
    editor: Option<Editor>,
    utf8: bool,
    /// The `{@…}` files of the line being sent, by the core's `FileRef::id`.
    files: Vec<Option<FileLiteral>>,
    /// A file literal being streamed, and the bytes of it still to send.
    file: Option<(FileLiteral, u64)>,
    /// `-c` mode, `\idle`: stdin has a line (or ended).
    stdin_watch: Option<mpsc::Receiver<()>>,
    /// Interactive mode: the editor's inputs, also watched for Ctrl-C
    /// during a STARTTLS handshake; what else arrives then waits here.
    input: Option<mpsc::Receiver<Input>>,
    pending: Vec<Input>,
}

impl Driver {
    /// Connects (TCP, and TLS from the start when asked); nothing of the
    /// IMAP conversation has happened yet. `script`: one command at a time
    /// whatever the input (`--show-certs`).
    pub async fn connect(
        settings: Settings,
        out: Output,
        script: bool,
        editor: Option<Editor>,
    ) -> Result<Driver> {
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
        // The name was checked before connecting; the address it led to
        // must be this machine too for a secret to go unencrypted. Through
        // a proxy, both the proxy and the server must be.
        let loopback = |a: std::net::SocketAddr| a.ip().to_canonical().is_loopback();
        let local = loopback(tcp.addr)
            && match (&tcp.proxy, tcp.server) {
                (None, _) => true,
                (Some(_), Some(server)) => loopback(server),
                (Some(_), None) => false,
            };
        let peer = match (&tcp.proxy, tcp.server) {
            (None, _) => tcp.addr.to_string(),
            (Some(p), Some(server)) => format!("{server} through {p}"),
            (Some(p), None) => format!("{} through {p}", settings.connect.display()),
        };
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
        let is_tls = matches!(stream, Stream::Tls(_));
        let mut conn = Connection::new(stream, peer.clone());
        let cfg = config(&settings, script, &peer, local);
        if cfg.source != session::Source::Interactive {
            conn.set_send_timeout(settings.session.timeout);
        }
        if let Some(log) = log {
            let connected = format!("connect {} ({})", settings.connect.display(), conn.peer);
            conn.set_transcript(log, &connected);
        }
        Ok(Driver {
            core: Core::new(cfg, is_tls, expiring, Instant::now()),
            conn,
            out,
            settings,
            tls,
            editor,
            utf8: crate::platform::console::shows_emoji(),
            files: Vec::new(),
            file: None,
            stdin_watch: None,
            input: None,
            pending: Vec::new(),
        })
    }

    /// Runs the conversation to its end; returns the exit code.
    /// `signals`: script mode, where SIGINT and SIGTERM end the run with
    /// LOGOUT.
    pub async fn run(
        &mut self,
        input: mpsc::Receiver<Input>,
        signals: Option<Signals>,
    ) -> Result<u8> {
        self.run_with(Vec::new(), input, signals).await
    }

    /// [`Driver::run`], with input that arrived while connecting first.
    pub async fn run_with(
        &mut self,
        early: Vec<Input>,
        input: mpsc::Receiver<Input>,
        mut signals: Option<Signals>,
    ) -> Result<u8> {
        self.input = Some(input);
        for i in early {
            self.core.input(i, Instant::now());
        }
        let mut input_open = true;
        loop {
            for i in std::mem::take(&mut self.pending) {
                self.core.input(i, Instant::now());
            }
            if let Some(code) = self.act(&mut signals).await? {
                return Ok(code);
            }
            if let Err(e) = self.flush(&mut signals).await {
                self.core.connection_error(e);
                continue;
            }
            self.out.flush()?;
            let deadline = self.core.deadline();
            let wants_input = input_open && self.core.wants_input();
            let sending_file = self.file.is_some();
            let watching = self.stdin_watch.is_some();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            let watch = async {
                match &mut self.stdin_watch {
                    Some(rx) => {
                        let _ = rx.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            let signal = async {
                match &mut signals {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                more = self.conn.fill() => match more {
                    Ok(true) => {
                        self.core.server_activity(Instant::now());
                        if let Some(code) = self.events(&mut signals).await? {
                            return Ok(code);
                        }
                    }
                    Ok(false) => self.core.server_closed(Instant::now()),
                    Err(e) => {
                        self.flush_rest();
                        self.core.connection_error(e);
                    }
                },
                got = next_input(&mut self.input), if wants_input => match got {
                    Some(i) => self.core.input(i, Instant::now()),
                    None => {
                        input_open = false;
                        self.core.input(Input::Eof, Instant::now());
                    }
                },
                () = sleep => self.core.tick(Instant::now()),
                // Nothing is being written here: the wire is whole.
                kind = signal => self.core.signal(signal_of(kind), false, Instant::now()),
                () = watch, if watching => {
                    self.stdin_watch = None;
                    self.core.input(Input::StdinLine, Instant::now());
                }
                () = std::future::ready(()), if sending_file => self.send_file_chunk()?,
            }
        }
    }

    /// Every event already received, each handed to the core and its
    /// actions carried out before the next is framed: after a STARTTLS or
    /// COMPRESS OK, what follows in the buffer is not plain protocol.
    async fn events(&mut self, signals: &mut Option<Signals>) -> Result<Option<u8>> {
        loop {
            let ev = match self.conn.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => return Ok(None),
                Err(e) => {
                    self.core.frame_error(e);
                    return self.act(signals).await;
                }
            };
            self.learn(&ev);
            let note = self.core.note_for(&ev);
            self.out.event_noted(&ev, note.as_deref())?;
            self.core.server_event(&ev, Instant::now());
            if let Some(code) = self.act(signals).await? {
                return Ok(Some(code));
            }
        }
    }

    /// Interactive mode: capabilities and mailbox names for completion.
    fn learn(&self, ev: &Event) {
        if let (
            Some(ed),
            Event::Line {
                data,
                head: Some(h),
                ..
            },
        ) = (&self.editor, ev)
            && h.kind != Kind::Continuation
        {
            complete::learn(&ed.known, data);
        }
    }

    /// Carries out the core's actions; Some(code) when the run is over.
    async fn act(&mut self, signals: &mut Option<Signals>) -> Result<Option<u8>> {
        while let Some(action) = self.core.next_action() {
            match action {
                Action::Send { bytes, log } => {
                    let sending = match &log {
                        Log::Line(shown) => Sending::Line(shown.as_deref()),
                        Log::More => Sending::More,
                    };
                    self.conn.queue(&bytes, sending);
                }
                Action::SendFile { file, len } => {
                    match self.files.get_mut(file).and_then(Option::take) {
                        Some(f) => self.file = Some((f, len)),
                        None => {
                            return Err(error::lost("internal error: a file literal went missing"));
                        }
                    }
                }
                Action::OpenFiles { paths } => {
                    let opened = self.open_files(paths, signals).await;
                    if let Some(files) = opened {
                        let refs = files.map(|files| {
                            let refs = files
                                .iter()
                                .enumerate()
                                .map(|(id, f)| FileRef {
                                    id,
                                    name: f.name.clone(),
                                    len: f.len,
                                    nul: f.nul,
                                })
                                .collect();
                            self.files = files.into_iter().map(Some).collect();
                            refs
                        });
                        self.core.files_opened(refs, Instant::now());
                    }
                }
                Action::StartTls => {
                    if let Err(e) = self.flush(signals).await {
                        self.core.connection_error(e);
                        continue;
                    }
                    match self.upgrade().await? {
                        Some((summary, expiring)) => {
                            self.core
                                .tls_up(summary.as_deref(), expiring, Instant::now());
                        }
                        None => self.core.signal(Signal::Interrupt, false, Instant::now()),
                    }
                }
                Action::StartDeflate => {
                    if let Err(e) = self.flush(signals).await {
                        self.core.connection_error(e);
                        continue;
                    }
                    self.conn.compress()?;
                }
                Action::WatchStdin => self.stdin_watch = Some(stdin_line()),
                Action::Notice(text) => self.out.notice(&text),
                Action::Message(text) => self.out.message(&text),
                Action::Help(topic) => self.out.message(&meta::help(
                    topic.as_deref(),
                    crate::app::repl::terminal_width(),
                )),
                Action::Echo(text) => self.out.echo(&text),
                Action::Say(text) => error::say(&text),
                Action::Prompt(view) => self.prompt(view),
                Action::History(line) => {
                    if let Some(ed) = &self.editor {
                        ed.screen.history(line);
                    }
                }
                Action::Sent(text) => self.out.sent(&text),
                Action::Finish {
                    code,
                    shutdown,
                    last,
                } => {
                    let _ = self.flush(signals).await;
                    self.out.finish()?;
                    if last.is_none() {
                        self.report_compression();
                    }
                    if shutdown {
                        self.conn.shutdown().await;
                    }
                    if let Some(text) = last {
                        self.out.notice(&text);
                    }
                    return Ok(Some(code));
                }
                Action::Fail(e) => {
                    let _ = self.out.flush();
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// Writes what is queued. A write is never abandoned half-way and
    /// looked at afterwards: a signal meanwhile lets it finish (for
    /// [`session::GRACE`] at most), and the core is told whether the wire
    /// is whole. Only a server that stops reading leaves it torn, and then
    /// the core closes without another byte.
    async fn flush(&mut self, signals: &mut Option<Signals>) -> Result<()> {
        if !self.conn.has_queued() {
            return Ok(());
        }
        let Some(s) = signals else {
            return self.conn.send_queued().await;
        };
        let write = self.conn.send_queued();
        tokio::pin!(write);
        let kind = tokio::select! {
            biased;
            r = &mut write => return r,
            kind = s.recv() => kind,
        };
        let (result, torn) = match tokio::time::timeout(session::GRACE, &mut write).await {
            Ok(r) => (r, false),
            Err(_) => (Ok(()), true),
        };
        self.core.signal(signal_of(kind), torn, Instant::now());
        result
    }

    /// The next piece of a file literal.
    fn send_file_chunk(&mut self) -> Result<()> {
        let Some((file, remaining)) = &mut self.file else {
            return Ok(());
        };
        let chunk = file.next_chunk(*remaining).map_err(error::usage)?;
        *remaining -= chunk.len() as u64;
        self.conn.queue(chunk, Sending::More);
        if *remaining == 0 {
            self.file = None;
            self.core.file_sent(Instant::now());
        }
        Ok(())
    }

    /// Opens `{@…}` files off the runtime thread (a FIFO or `{@-}` may
    /// block); a signal meanwhile ends the wait. None: a signal came.
    async fn open_files(
        &mut self,
        paths: Vec<Vec<u8>>,
        signals: &mut Option<Signals>,
    ) -> Option<Result<Vec<FileLiteral>>> {
        let limit = self.settings.session.spool_limit;
        let task = tokio::task::spawn_blocking(move || open_files(&paths, limit));
        let joined = match signals {
            Some(s) => tokio::select! {
                r = task => r,
                kind = s.recv() => {
                    self.core.signal(signal_of(kind), false, Instant::now());
                    return None;
                }
            },
            None => task.await,
        };
        Some(joined.unwrap_or_else(|e| Err(error::usage(format!("opening a file failed: {e}")))))
    }

    /// The TLS handshake after a STARTTLS OK. Bytes already buffered
    /// arrived in plaintext after the OK: a man in the middle injecting
    /// responses (the CVE-2011-0411 / CVE-2021-22947 class) — never let
    /// them through. Returns the negotiated summary and whether a
    /// certificate expires soon.
    async fn upgrade(&mut self) -> Result<Option<(Option<String>, bool)>> {
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
        let timeout = self.settings.session.timeout;
        // At the prompt, Ctrl-C ends a handshake that does not finish.
        let upgraded = match (&self.editor, &mut self.input) {
            (Some(_), Some(rx)) => loop {
                tokio::select! {
                    r = self.conn.upgrade(&tls, timeout) => break r,
                    got = rx.recv() => match got {
                        Some(Input::Interrupt) | None => {
                            self.tls = Some(tls);
                            return Ok(None);
                        }
                        Some(other) => self.pending.push(other),
                    },
                }
            },
            _ => self.conn.upgrade(&tls, timeout).await,
        };
        let info = self.conn.tls_info();
        let expiring = crate::app::diag::handshake_done(
            &self.settings.diag,
            &tls,
            info.as_ref(),
            start.elapsed(),
        );
        self.tls = Some(tls);
        upgraded?;
        Ok(Some((self.conn.tls_summary(), expiring)))
    }

    fn prompt(&mut self, view: PromptView) {
        let Some(ed) = &self.editor else { return };
        let waiting = matches!(view, PromptView::Waiting { .. });
        let (tag, tls, user, mailbox) = match view {
            PromptView::Literal(left) => {
                return ed.screen.prompt(Prompt {
                    text: format!("{{{left}}}> "),
                    kind: PromptKind::Literal,
                });
            }
            PromptView::RestOfLine => {
                return ed.screen.prompt(Prompt {
                    text: "..> ".to_string(),
                    kind: PromptKind::Literal,
                });
            }
            PromptView::Continuation => {
                return ed.screen.prompt(Prompt {
                    text: "+> ".to_string(),
                    kind: PromptKind::Continuation,
                });
            }
            PromptView::Command {
                tag,
                tls,
                user,
                mailbox,
            } => (tag, tls, user, mailbox),
            // What is typed while a command runs waits for it, and the
            // prompt says for which.
            PromptView::Waiting {
                after,
                tls,
                user,
                mailbox,
            } => (format!("(after {after})"), tls, user, mailbox),
        };
        let host = escape_str(&self.settings.connect.host);
        let user = user.as_deref().map(escape_str);
        let mailbox = mailbox.as_deref().map(escape_str);
        let state = PromptState {
            host: &host,
            tls,
            user: user.as_deref(),
            mailbox: mailbox.as_deref(),
            tag: &tag,
        };
        ed.screen.prompt(Prompt {
            text: crate::app::repl::command_prompt(
                &state,
                crate::app::repl::terminal_width(),
                self.utf8,
            ),
            kind: if waiting {
                PromptKind::Waiting
            } else {
                PromptKind::Command
            },
        });
    }

    /// The stream broke off in the middle of a response: its last bytes
    /// still go to the output, so that a capture holds all that arrived.
    fn flush_rest(&mut self) {
        let data = self.conn.take_rest();
        if !data.is_empty() {
            let _ = self.out.event(&Event::Line {
                data,
                head: None,
                end: LineEnd::Partial,
            });
        }
        let _ = self.out.finish();
    }

    /// What COMPRESS saved: on a terminal, or on stderr with `-v`.
    fn report_compression(&mut self) {
        if let Some(stats) = self.conn.compress_stats()
            && (self.settings.output.render || self.settings.diag.verbose)
        {
            self.out.notice(&stats.describe());
        }
    }
}

async fn next_input(input: &mut Option<mpsc::Receiver<Input>>) -> Option<Input> {
    match input {
        Some(rx) => rx.recv().await,
        None => None,
    }
}

fn signal_of(kind: signals::Kind) -> Signal {
    match kind {
        signals::Kind::Interrupt => Signal::Interrupt,
        signals::Kind::Terminate => Signal::Terminate,
    }
}

/// Opens and scans every file of a command line before anything of it is
/// sent, so a missing file or NUL data without BINARY stops the line whole.
/// `limit`: how much of a pipe or `{@-}` may be copied to a spool file.
fn open_files(paths: &[Vec<u8>], limit: u64) -> Result<Vec<FileLiteral>> {
    paths
        .iter()
        .map(|p| {
            if p == b"-" {
                open_stdin(limit)
            } else {
                FileLiteral::open(p, limit).map_err(error::usage)
            }
        })
        .collect()
}

/// `{@-}`: stdin, copied once to a temporary file (the core allows it only
/// with `-c`, and once).
fn open_stdin(limit: u64) -> Result<FileLiteral> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(error::usage(
            "{@-}: stdin is a terminal; redirect the data (e.g. < message.eml) or name a file ({@FILE})",
        ));
    }
    FileLiteral::spooled("{@-}".to_string(), &mut stdin.lock(), limit).map_err(error::usage)
}

/// Signals once a line has been read from stdin, or stdin has ended. Reads
/// in small pieces and keeps none of it: stdin may never hold a line end.
fn stdin_line() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if buf[..n].contains(&b'\n') => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.blocking_send(());
    });
    rx
}
