//! A scripted fake IMAP server for integration tests.
//!
//! The server listens on `127.0.0.1:0`, accepts exactly one connection and
//! plays a fixed list of [`Step`]s against it, on its own OS thread with its
//! own current-thread tokio runtime, so blocking `#[test]` functions (which
//! run the real binary with `assert_cmd`) can use it directly:
//!
//! ```ignore
//! let server = ScriptedServer::start(vec![
//!     send("* OK ready\n"),
//!     expect("a1 NOOP"),
//!     send("a1 OK done\n"),
//!     expect("a2 LOGOUT"),
//!     send("* BYE\na2 OK\n"),
//!     Step::Close,
//! ]);
//! // ... run imaptalk against server.port() ...
//! server.finish().assert_ok();
//! ```
//!
//! Behaviour a test author must know:
//! * Nothing in the server panics on client misbehaviour: every deviation is
//!   recorded in [`Transcript::failures`] and the script stops at the FIRST
//!   failure (later steps would only produce confusing follow-on failures).
//! * Each reading step (`Expect`, `ExpectAny`, `ExpectBytes`, the TLS
//!   handshakes) has its own [`STEP_TIMEOUT`] (10 s); `ExpectEof` waits
//!   [`EOF_TIMEOUT`] (5 s); waiting for the client to connect is bounded by
//!   [`ACCEPT_TIMEOUT`] (10 s). A timeout is a failure, not a hang.
//! * Lines must end in CRLF: a line ending in a bare LF fails `Expect` and
//!   `ExpectAny`, because IMAP requires CRLF.
//! * When the steps run out (or a step failed), the server keeps reading for
//!   [`DRAIN_GRACE`] (100 ms of silence, at most [`DRAIN_MAX`]) so bytes the
//!   client already sent are recorded, then closes gracefully (TLS
//!   close_notify, then FIN). End scripts with explicit steps
//!   (`Expect("a3 LOGOUT")`, `Send("* BYE…")`, `Close`) for exact control.
//! * `Close` closes at once (close_notify + FIN, no pre-drain), then reads
//!   until the client's EOF or [`DRAIN_GRACE`] so late bytes get recorded and
//!   the kernel does not turn our close into an RST that could destroy data
//!   the client has not read yet. `Reset` aborts with an RST immediately.
//! * [`ScriptedServer::finish`] waits for the script for [`FINISH_TIMEOUT`]
//!   (20 s) plus the total of every `Sleep`, `ExpectSilence` and
//!   `SendChunked` delay in the script, then returns what was recorded so far
//!   with a failure instead of hanging.
//! * `received` holds every byte read from the client, including bytes read
//!   ahead (an internal buffer keeps them for the next step) and bytes read
//!   while draining after the script ended.

#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;

/// Time limit for each reading step and for each TLS handshake.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Time limit for the client to connect at all.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `ExpectEof` waits for the client to close.
pub const EOF_TIMEOUT: Duration = Duration::from_secs(5);
/// Silence that ends a drain (after the script, and after `Close`).
pub const DRAIN_GRACE: Duration = Duration::from_millis(100);
/// Upper bound for one drain, so a chatty client cannot keep us alive.
pub const DRAIN_MAX: Duration = Duration::from_secs(2);
/// Base time `finish()` waits for the server thread.
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(20);

/// First byte of a TLS handshake record (a ClientHello starts with it).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// Cap on how much of a byte string goes into one message.
const SHOW_MAX: usize = 2000;

/// One thing the server does, in order.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes to the client (one write_all + flush).
    Send(Vec<u8>),
    /// Write bytes in pieces of `chunk` bytes (0 counts as 1) with `delay`
    /// between pieces, each piece flushed on its own (TCP_NODELAY is set, and
    /// under TLS each piece is its own record), to exercise partial reads.
    SendChunked {
        bytes: Vec<u8>,
        chunk: usize,
        delay: Duration,
    },
    /// Write `bytes` `times` times over (each write flushed), for streams
    /// too big to hold: memory tests relay hundreds of MiB. These bytes are
    /// counted in [`Transcript::sent_len`] but not kept in `sent`.
    SendRepeated { bytes: Vec<u8>, times: usize },
    /// Read one line (up to and including LF) and check that, without its
    /// CRLF, it equals this string exactly.
    Expect(String),
    /// Read one CRLF-terminated line with any content.
    ExpectAny,
    /// Read exactly this many raw bytes (e.g. literal data) and check them.
    ExpectBytes(Vec<u8>),
    /// The client must send nothing (and not close) for this long; proves it
    /// waits for a `+` continuation or a tagged completion. Bytes read ahead
    /// earlier but not consumed by a step count as sent too.
    ExpectSilence(Duration),
    /// The client must close its side within [`EOF_TIMEOUT`] having sent
    /// nothing more. A TCP reset or a TLS close without close_notify also
    /// counts as closing (noted in the log).
    ExpectEof,
    /// Server-side TLS accept on the current plaintext connection (after the
    /// server sent the STARTTLS OK), using the `starttls` config given to
    /// [`ScriptedServer::start_with`]. Fails if any byte the client sent
    /// before the handshake is plaintext (see [`Transcript::pre_tls_plaintext`]).
    StartTls,
    /// Do nothing for this long (does not read).
    Sleep(Duration),
    /// Wait (without reading) until the test opens the gate, at most
    /// [`STEP_TIMEOUT`]: the server answers once the test has seen what it
    /// waited for on the client's side.
    Wait(Gate),
    /// COMPRESS=DEFLATE (RFC 4978): write `ok` (the tagged OK) and, in the
    /// same write, `then` deflated. From then on everything the server
    /// writes is deflated (sync flush per write) and everything it reads is
    /// inflated; `received`, `sent` and the dialog hold the protocol bytes.
    Compress { ok: Vec<u8>, then: Vec<u8> },
    /// Close the connection gracefully and end the script.
    Close,
    /// Close with a TCP RST (SO_LINGER 0) and end the script.
    Reset,
}

/// Opened by the test ([`Gate::open`]) to let a [`Step::Wait`] go on.
#[derive(Clone, Default)]
pub struct Gate(Arc<tokio::sync::Notify>);

impl Gate {
    pub fn open(&self) {
        self.0.notify_one();
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

/// Turns every bare "\n" into "\r\n" (an existing "\r\n" is left alone).
pub fn lines(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 16);
    let mut prev = 0u8;
    for &b in s.as_bytes() {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// `Step::Send(lines(s))`.
pub fn send(s: &str) -> Step {
    Step::Send(lines(s))
}

/// `Step::Expect(s.to_owned())`.
pub fn expect(s: &str) -> Step {
    Step::Expect(s.to_owned())
}

/// The end of most scripts: the client logs out with `tag`, the server
/// says BYE, completes the LOGOUT and closes.
pub fn logout(tag: &str) -> Vec<Step> {
    vec![
        expect(&format!("{tag} LOGOUT")),
        send(&format!("* BYE logging out\n{tag} OK Logout completed.\n")),
        Step::Close,
    ]
}

/// What happened on the connection.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Every byte the client sent, in order (plaintext and post-TLS
    /// concatenated, TLS decrypted).
    pub received: Vec<u8>,
    /// `received` split at LF, trailing CR stripped, lossy UTF-8; a final
    /// piece without LF is included too.
    pub lines: Vec<String>,
    /// Every deviation from the script; empty when the client behaved.
    pub failures: Vec<String>,
    /// Bytes the client sent in plaintext after its STARTTLS and before the
    /// TLS handshake: bytes read ahead but unconsumed when `StartTls` began,
    /// or plaintext sent where a ClientHello should have come. Empty when
    /// the client behaved.
    pub pre_tls_plaintext: Vec<u8>,
    /// Every byte the server wrote (before encryption), except those of
    /// `SendRepeated`.
    pub sent: Vec<u8>,
    /// How many bytes the server wrote, `SendRepeated` included.
    pub sent_len: u64,
    /// Interleaved dialog for diagnostics: `S: ...` (server wrote),
    /// `C: ...` (client bytes read), `-- ...` (events), escaped.
    pub log: Vec<String>,
}

impl Transcript {
    /// `received` as lossy UTF-8.
    pub fn received_text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }

    /// Panics, listing the failures, the received bytes and the dialog,
    /// unless the client followed the script.
    pub fn assert_ok(&self) {
        if self.failures.is_empty() {
            return;
        }
        let mut msg = format!(
            "scripted server recorded {} failure(s):\n",
            self.failures.len()
        );
        for f in &self.failures {
            msg.push_str(&format!("  - {f}\n"));
        }
        msg.push_str(&format!(
            "client sent (escaped): {}\n",
            show(&self.received)
        ));
        if !self.pre_tls_plaintext.is_empty() {
            msg.push_str(&format!(
                "plaintext before TLS: {}\n",
                show(&self.pre_tls_plaintext)
            ));
        }
        msg.push_str("dialog:\n");
        for entry in &self.log {
            msg.push_str(&format!("  {entry}\n"));
        }
        panic!("{msg}");
    }
}

/// Handle to a running scripted server.
pub struct ScriptedServer {
    pub addr: SocketAddr,
    record: Arc<Mutex<Transcript>>,
    done: mpsc::Receiver<()>,
    handle: Option<JoinHandle<()>>,
    budget: Duration,
}

impl ScriptedServer {
    /// Plaintext server.
    pub fn start(steps: Vec<Step>) -> Self {
        Self::start_with(steps, None, None)
    }

    /// Implicit TLS: the handshake happens before the first step.
    pub fn start_tls(steps: Vec<Step>, cfg: Arc<ServerConfig>) -> Self {
        Self::start_with(steps, Some(cfg), None)
    }

    /// Plaintext server whose `Step::StartTls` upgrades with `cfg`.
    pub fn start_starttls(steps: Vec<Step>, cfg: Arc<ServerConfig>) -> Self {
        Self::start_with(steps, None, Some(cfg))
    }

    /// General form. `implicit_tls`: accept TLS before the first step.
    /// `starttls`: the config `Step::StartTls` uses (a `StartTls` step
    /// without it is recorded as a failure).
    pub fn start_with(
        steps: Vec<Step>,
        implicit_tls: Option<Arc<ServerConfig>>,
        starttls: Option<Arc<ServerConfig>>,
    ) -> Self {
        Self::start_on("127.0.0.1:0", steps, implicit_tls, starttls)
    }

    /// [`start_with`](Self::start_with) on another address (`[::1]:0`).
    pub fn start_on(
        bind: &str,
        steps: Vec<Step>,
        implicit_tls: Option<Arc<ServerConfig>>,
        starttls: Option<Arc<ServerConfig>>,
    ) -> Self {
        // Bind synchronously so the port is listening before we return; a
        // client that connects before the runtime is up just waits in the
        // backlog.
        let listener =
            std::net::TcpListener::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        listener.set_nonblocking(true).expect("set_nonblocking");
        let addr = listener.local_addr().expect("local_addr");

        let budget = FINISH_TIMEOUT
            + steps
                .iter()
                .map(|s| match s {
                    Step::Sleep(d) | Step::ExpectSilence(d) => *d,
                    Step::SendChunked {
                        bytes,
                        chunk,
                        delay,
                    } => *delay * (bytes.len() / (*chunk).max(1) + 1) as u32,
                    _ => Duration::ZERO,
                })
                .sum::<Duration>();

        let record = Arc::new(Mutex::new(Transcript::default()));
        let (tx, done) = mpsc::channel();
        let rec = Arc::clone(&record);
        let handle = std::thread::Builder::new()
            .name(format!("scripted-imap-{}", addr.port()))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(run(listener, steps, implicit_tls, starttls, rec)),
                    Err(e) => lock(&rec)
                        .failures
                        .push(format!("cannot build tokio runtime: {e}")),
                }
                let _ = tx.send(());
            })
            .expect("spawn scripted server thread");

        ScriptedServer {
            addr,
            record,
            done,
            handle: Some(handle),
            budget,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits for the script to end (bounded, see the module docs) and
    /// returns what happened.
    pub fn finish(mut self) -> Transcript {
        let extra = match self.done.recv_timeout(self.budget) {
            Ok(()) => {
                // The thread is past its last statement; joining is instant.
                if let Some(h) = self.handle.take() {
                    let _ = h.join();
                }
                None
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Some(format!(
                "scripted server did not finish within {:?}; transcript is partial",
                self.budget
            )),
            // The sender was dropped without sending: the thread panicked.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let why = match self.handle.take().map(JoinHandle::join) {
                    Some(Err(payload)) => payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into()),
                    _ => "thread ended without reporting".into(),
                };
                Some(format!("scripted server thread panicked: {why}"))
            }
        };
        let mut t = lock(&self.record).clone();
        t.failures.extend(extra);
        t.lines = split_lines(&t.received);
        t
    }
}

/// Poison-tolerant lock: a panic elsewhere must not hide the transcript.
fn lock(m: &Mutex<Transcript>) -> MutexGuard<'_, Transcript> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn split_lines(bytes: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = bytes
        .split(|&b| b == b'\n')
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .collect();
    // split() yields an empty tail after a final LF; it is not a line.
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        out.pop();
    }
    out
}

/// Escaped, length-capped rendering of bytes for messages.
fn show(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(SHOW_MAX)];
    let mut s = String::from("\"");
    for &b in shown {
        s.extend(std::ascii::escape_default(b).map(char::from));
    }
    s.push('"');
    if bytes.len() > SHOW_MAX {
        s.push_str(&format!(" ... ({} more bytes)", bytes.len() - SHOW_MAX));
    }
    s
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
        }
    }

    async fn write_flush(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.shutdown().await,
            Conn::Tls(s) => s.shutdown().await,
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        }
    }
}

enum Read {
    Data,
    Eof,
    Timeout,
    Err(io::Error),
}

enum Flow {
    Next,
    /// A failure was recorded: stop, then drain and close.
    Fail,
    /// The connection is gone (Close/Reset): stop without draining.
    Closed,
}

struct Session {
    conn: Option<Conn>,
    /// Bytes read but not yet consumed by a step.
    buf: Vec<u8>,
    eof: bool,
    rec: Arc<Mutex<Transcript>>,
    starttls: Option<Arc<ServerConfig>>,
    step_no: usize,
    /// After `Step::Compress`: raw deflate both ways.
    deflate: Option<Deflater>,
}

struct Deflater {
    out: flate2::Compress,
    inp: flate2::Decompress,
}

impl Deflater {
    fn new() -> Self {
        Deflater {
            out: flate2::Compress::new(flate2::Compression::default(), false),
            inp: flate2::Decompress::new(false),
        }
    }

    /// `data` deflated and sync-flushed, so the client can inflate all of it.
    fn deflate(&mut self, data: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut taken = 0;
        loop {
            wire.reserve(data.len() + 4096);
            let room = wire.capacity() - wire.len();
            let (i, o) = (self.out.total_in(), self.out.total_out());
            self.out
                .compress_vec(&data[taken..], &mut wire, flate2::FlushCompress::Sync)
                .expect("deflate");
            taken += (self.out.total_in() - i) as usize;
            if taken == data.len() && ((self.out.total_out() - o) as usize) < room {
                return wire;
            }
        }
    }

    fn inflate(&mut self, wire: &[u8]) -> Result<Vec<u8>, String> {
        let mut data = Vec::new();
        let mut taken = 0;
        loop {
            data.reserve(64 * 1024);
            let room = data.capacity() - data.len();
            let (i, o) = (self.inp.total_in(), self.inp.total_out());
            self.inp
                .decompress_vec(&wire[taken..], &mut data, flate2::FlushDecompress::None)
                .map_err(|e| format!("client sent corrupt deflate data: {e}"))?;
            taken += (self.inp.total_in() - i) as usize;
            if taken == wire.len() && ((self.inp.total_out() - o) as usize) < room {
                return Ok(data);
            }
        }
    }
}

async fn run(
    listener: std::net::TcpListener,
    steps: Vec<Step>,
    implicit_tls: Option<Arc<ServerConfig>>,
    starttls: Option<Arc<ServerConfig>>,
    rec: Arc<Mutex<Transcript>>,
) {
    let fail = |m: String| lock(&rec).failures.push(m);
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot register listener: {e}")),
    };
    let tcp = match timeout(ACCEPT_TIMEOUT, listener.accept()).await {
        Ok(Ok((tcp, peer))) => {
            lock(&rec)
                .log
                .push(format!("-- accepted connection from {peer}"));
            tcp
        }
        Ok(Err(e)) => return fail(format!("accept failed: {e}")),
        Err(_) => return fail(format!("no client connected within {ACCEPT_TIMEOUT:?}")),
    };
    // Exactly one connection: later connection attempts are refused.
    drop(listener);
    // Without NODELAY, Nagle + delayed ACK would merge SendChunked pieces.
    let _ = tcp.set_nodelay(true);

    let conn = match implicit_tls {
        None => Conn::Plain(tcp),
        Some(cfg) => match timeout(STEP_TIMEOUT, TlsAcceptor::from(cfg).accept(tcp)).await {
            Ok(Ok(tls)) => {
                lock(&rec)
                    .log
                    .push("-- implicit TLS handshake complete".into());
                Conn::Tls(Box::new(tls))
            }
            Ok(Err(e)) => return fail(format!("implicit TLS handshake failed: {e}")),
            Err(_) => {
                return fail(format!(
                    "implicit TLS handshake timed out after {STEP_TIMEOUT:?}"
                ));
            }
        },
    };

    let mut s = Session {
        conn: Some(conn),
        buf: Vec::new(),
        eof: false,
        rec,
        starttls,
        step_no: 0,
        deflate: None,
    };
    let mut flow = Flow::Next;
    for (i, step) in steps.into_iter().enumerate() {
        s.step_no = i + 1;
        flow = s.step(step).await;
        if !matches!(flow, Flow::Next) {
            break;
        }
    }
    if matches!(flow, Flow::Closed) {
        return;
    }
    // Script over (or failed): record what the client already sent, then close.
    s.drain().await;
    s.close().await;
}

impl Session {
    fn log(&self, entry: String) {
        lock(&self.rec).log.push(entry);
    }

    fn fail(&self, msg: String) -> Flow {
        let mut r = lock(&self.rec);
        r.log
            .push(format!("-- FAILURE at step {}: {msg}", self.step_no));
        r.failures.push(format!("step {}: {msg}", self.step_no));
        Flow::Fail
    }

    /// Reads whatever arrives before `deadline` into `buf` (and the record).
    async fn read_some(&mut self, deadline: Instant) -> Read {
        let Some(conn) = self.conn.as_mut() else {
            return Read::Eof;
        };
        if self.eof {
            return Read::Eof;
        }
        let mut tmp = [0u8; 8192];
        match timeout_at(deadline, conn.read(&mut tmp)).await {
            Err(_) => Read::Timeout,
            Ok(Ok(0)) => {
                self.eof = true;
                self.log("-- client closed its side (EOF)".into());
                Read::Eof
            }
            Ok(Ok(n)) => {
                let data = match self.deflate.as_mut().map(|d| d.inflate(&tmp[..n])) {
                    None => tmp[..n].to_vec(),
                    Some(Ok(data)) => data,
                    Some(Err(e)) => {
                        self.eof = true;
                        self.log(format!("-- {e}"));
                        return Read::Err(io::Error::other(e));
                    }
                };
                self.buf.extend_from_slice(&data);
                let mut r = lock(&self.rec);
                r.received.extend_from_slice(&data);
                r.log.push(format!("C: {}", show(&data)));
                Read::Data
            }
            Ok(Err(e)) => {
                self.eof = true;
                self.log(format!("-- read error: {e}"));
                Read::Err(e)
            }
        }
    }

    /// Reads until `DRAIN_GRACE` of silence, EOF, or `DRAIN_MAX`.
    async fn drain(&mut self) {
        let end = Instant::now() + DRAIN_MAX;
        loop {
            let deadline = (Instant::now() + DRAIN_GRACE).min(end);
            if !matches!(self.read_some(deadline).await, Read::Data) {
                break;
            }
        }
    }

    /// close_notify + FIN, then drain so a late client write does not make
    /// the kernel answer with an RST that could discard our last bytes.
    async fn close(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            let _ = timeout(Duration::from_secs(1), conn.shutdown()).await;
            self.log("-- server closed the connection".into());
            self.drain().await;
        }
        self.conn = None;
    }

    /// Next CRLF line from the buffer, reading more as needed.
    async fn read_line(&mut self, what: &str) -> Result<Vec<u8>, Flow> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=pos).collect();
                return match raw.strip_suffix(b"\r\n") {
                    Some(line) => Ok(line.to_vec()),
                    None => Err(self.fail(format!(
                        "waiting for {what}: client sent a line ending in bare LF (IMAP needs CRLF): {}",
                        show(&raw)
                    ))),
                };
            }
            let outcome = self.read_some(deadline).await;
            if let Some(flow) = self.read_problem(outcome, &format!("waiting for {what}")) {
                return Err(flow);
            }
        }
    }

    /// Turns a non-data read outcome into a recorded failure.
    fn read_problem(&self, outcome: Read, doing: &str) -> Option<Flow> {
        let problem = match outcome {
            Read::Data => return None,
            Read::Timeout => format!("timed out after {STEP_TIMEOUT:?}"),
            Read::Eof => "client closed the connection".to_string(),
            Read::Err(e) => format!("read error: {e}"),
        };
        let received = show(&lock(&self.rec).received);
        Some(self.fail(format!(
            "{problem} while {doing}; unconsumed: {}; received so far: {received}",
            show(&self.buf)
        )))
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Flow> {
        self.write_recorded(bytes, true).await
    }

    /// `record`: keep the bytes in `sent` and the log (else only count them).
    /// After `Step::Compress` they go out deflated.
    async fn write_recorded(&mut self, bytes: &[u8], record: bool) -> Result<(), Flow> {
        let wire = match self.deflate.as_mut() {
            Some(d) => d.deflate(bytes),
            None => bytes.to_vec(),
        };
        self.write_wire(&wire, bytes, record).await
    }

    /// Writes `wire`, recording `bytes` (what it means) as sent.
    async fn write_wire(&mut self, wire: &[u8], bytes: &[u8], record: bool) -> Result<(), Flow> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(self.fail("cannot send: connection already closed".into()));
        };
        match timeout(STEP_TIMEOUT, conn.write_flush(wire)).await {
            Ok(Ok(())) => {
                let mut r = lock(&self.rec);
                r.sent_len += bytes.len() as u64;
                if record {
                    r.sent.extend_from_slice(bytes);
                    r.log.push(format!("S: {}", show(bytes)));
                }
                Ok(())
            }
            Ok(Err(e)) => Err(self.fail(format!("sending {} failed: {e}", show(bytes)))),
            Err(_) => Err(self.fail(format!(
                "sending {} timed out (client not reading?)",
                show(bytes)
            ))),
        }
    }

    async fn step(&mut self, step: Step) -> Flow {
        match step {
            Step::Send(bytes) => match self.write(&bytes).await {
                Ok(()) => Flow::Next,
                Err(f) => f,
            },
            Step::SendChunked {
                bytes,
                chunk,
                delay,
            } => {
                let mut pieces = bytes.chunks(chunk.max(1)).peekable();
                while let Some(piece) = pieces.next() {
                    if let Err(f) = self.write(piece).await {
                        return f;
                    }
                    if pieces.peek().is_some() {
                        tokio::time::sleep(delay).await;
                    }
                }
                Flow::Next
            }
            Step::SendRepeated { bytes, times } => {
                for _ in 0..times {
                    if let Err(f) = self.write_recorded(&bytes, false).await {
                        return f;
                    }
                }
                self.log(format!(
                    "S: {} bytes ({times} x {})",
                    bytes.len() * times,
                    show(&bytes[..bytes.len().min(40)])
                ));
                Flow::Next
            }
            Step::Expect(want) => match self.read_line(&format!("line {want:?}")).await {
                Ok(got) if got == want.as_bytes() => Flow::Next,
                Ok(got) => self.fail(format!(
                    "expected line {want:?}, client sent {}",
                    show(&got)
                )),
                Err(f) => f,
            },
            Step::ExpectAny => match self.read_line("any line").await {
                Ok(_) => Flow::Next,
                Err(f) => f,
            },
            Step::ExpectBytes(want) => {
                let deadline = Instant::now() + STEP_TIMEOUT;
                while self.buf.len() < want.len() {
                    let outcome = self.read_some(deadline).await;
                    let doing = format!("waiting for {} bytes {}", want.len(), show(&want));
                    if let Some(f) = self.read_problem(outcome, &doing) {
                        return f;
                    }
                }
                let got: Vec<u8> = self.buf.drain(..want.len()).collect();
                if got == want {
                    Flow::Next
                } else {
                    self.fail(format!(
                        "expected bytes {}, client sent {}",
                        show(&want),
                        show(&got)
                    ))
                }
            }
            Step::ExpectSilence(d) => {
                if self.buf.is_empty() {
                    match self.read_some(Instant::now() + d).await {
                        Read::Timeout => return Flow::Next,
                        // Collect the rest of the burst so the message shows all of it.
                        Read::Data => self.drain().await,
                        Read::Eof => {
                            return self.fail(format!(
                                "client closed the connection while it should have waited ({d:?} of silence expected)"
                            ));
                        }
                        Read::Err(e) => {
                            return self.fail(format!("read error during expected silence: {e}"));
                        }
                    }
                }
                self.fail(format!(
                    "client sent {} while it should have waited ({d:?} of silence expected)",
                    show(&self.buf)
                ))
            }
            Step::ExpectEof => {
                if !self.buf.is_empty() {
                    return self.fail(format!(
                        "client sent {} while the server expected it to close",
                        show(&self.buf)
                    ));
                }
                match self.read_some(Instant::now() + EOF_TIMEOUT).await {
                    Read::Eof => Flow::Next,
                    // A reset or a TLS close without close_notify still closes.
                    Read::Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::ConnectionReset | io::ErrorKind::UnexpectedEof
                        ) =>
                    {
                        Flow::Next
                    }
                    Read::Err(e) => self.fail(format!("read error while waiting for EOF: {e}")),
                    Read::Timeout => self.fail(format!(
                        "client did not close its side within {EOF_TIMEOUT:?}"
                    )),
                    Read::Data => {
                        self.drain().await;
                        self.fail(format!(
                            "client sent {} while the server expected it to close",
                            show(&self.buf)
                        ))
                    }
                }
            }
            Step::StartTls => self.start_tls().await,
            Step::Compress { ok, then } => {
                if self.deflate.is_some() {
                    return self.fail("script bug: Compress on a compressed connection".into());
                }
                let mut d = Deflater::new();
                let mut wire = ok.clone();
                wire.extend(d.deflate(&then));
                self.deflate = Some(d);
                // Bytes the client sent before it saw the OK were not compressed.
                if !self.buf.is_empty() {
                    return self.fail(format!(
                        "client sent {} after COMPRESS before the OK",
                        show(&self.buf)
                    ));
                }
                let mut meaning = ok;
                meaning.extend_from_slice(&then);
                match self.write_wire(&wire, &meaning, true).await {
                    Ok(()) => {
                        self.log("-- COMPRESS=DEFLATE active".into());
                        Flow::Next
                    }
                    Err(f) => f,
                }
            }
            Step::Sleep(d) => {
                tokio::time::sleep(d).await;
                Flow::Next
            }
            Step::Wait(gate) => {
                if timeout(STEP_TIMEOUT, gate.0.notified()).await.is_err() {
                    return self.fail(format!(
                        "the test did not open the gate within {STEP_TIMEOUT:?}"
                    ));
                }
                Flow::Next
            }
            Step::Close => {
                self.close().await;
                Flow::Closed
            }
            Step::Reset => {
                if let Some(conn) = self.conn.take() {
                    if let Err(e) = conn.tcp().set_zero_linger() {
                        return self.fail(format!("cannot set SO_LINGER 0 for Reset: {e}"));
                    }
                    drop(conn);
                    self.log("-- server reset the connection (RST)".into());
                }
                Flow::Closed
            }
        }
    }

    async fn start_tls(&mut self) -> Flow {
        let Some(cfg) = self.starttls.clone() else {
            return self
                .fail("script bug: StartTls step but the server has no starttls config".into());
        };
        if matches!(self.conn, Some(Conn::Tls(_))) {
            return self.fail("script bug: StartTls on a connection that is already TLS".into());
        }
        // Read-ahead bytes were sent before the server's STARTTLS reply was
        // acted on: a client must wait for the tagged OK, then start TLS.
        if !self.buf.is_empty() {
            let early = std::mem::take(&mut self.buf);
            lock(&self.rec).pre_tls_plaintext.extend_from_slice(&early);
            return self.fail(format!(
                "client sent {} after STARTTLS before the TLS handshake (it must wait for the OK, then handshake)",
                show(&early)
            ));
        }
        let Some(Conn::Plain(tcp)) = self.conn.as_ref() else {
            return self.fail("cannot StartTls: connection already closed".into());
        };
        // Peek so plaintext sent instead of a ClientHello is recorded as such
        // rather than surfacing as an opaque handshake error.
        let mut first = [0u8; 1];
        match timeout(STEP_TIMEOUT, tcp.peek(&mut first)).await {
            Err(_) => {
                return self.fail(format!(
                    "client did not start the TLS handshake within {STEP_TIMEOUT:?}"
                ));
            }
            Ok(Err(e)) => {
                return self.fail(format!("read error waiting for the TLS handshake: {e}"));
            }
            Ok(Ok(0)) => {
                return self.fail("client closed the connection instead of starting TLS".into());
            }
            Ok(Ok(_)) if first[0] != TLS_HANDSHAKE_RECORD => {
                self.drain().await;
                let plain = std::mem::take(&mut self.buf);
                lock(&self.rec).pre_tls_plaintext.extend_from_slice(&plain);
                return self.fail(format!(
                    "client sent plaintext {} instead of a TLS ClientHello after STARTTLS",
                    show(&plain)
                ));
            }
            Ok(Ok(_)) => {}
        }
        let tcp = match self.conn.take() {
            Some(Conn::Plain(tcp)) => tcp,
            other => {
                self.conn = other;
                return self.fail("cannot StartTls: no plaintext connection".into());
            }
        };
        match timeout(STEP_TIMEOUT, TlsAcceptor::from(cfg).accept(tcp)).await {
            Ok(Ok(tls)) => {
                self.conn = Some(Conn::Tls(Box::new(tls)));
                self.log("-- STARTTLS handshake complete".into());
                Flow::Next
            }
            Ok(Err(e)) => self.fail(format!("STARTTLS handshake failed: {e}")),
            Err(_) => self.fail(format!(
                "STARTTLS handshake timed out after {STEP_TIMEOUT:?}"
            )),
        }
    }
}
