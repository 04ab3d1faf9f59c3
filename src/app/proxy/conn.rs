//! One proxied connection: a mail client, its own connection to the
//! server, and everything between them.
//!
//! Bytes are forwarded as the two framers hand them out, so what the
//! client sends reaches the server unchanged and the other way round —
//! pipelined commands, IDLE, literals of every kind and commands imaptalk
//! does not know included. The proxy takes part only where it must (each
//! case is in the README):
//!
//! - TLS toward the client (`--listen-tls`, or a STARTTLS the client
//!   sends, which the proxy answers itself: the server never sees it);
//! - TLS or STARTTLS toward the server, done by the proxy as for a normal
//!   session; after STARTTLS the client gets the greeting without its
//!   `[CAPABILITY …]` code, which was said in plaintext;
//! - capability lists the client sees: `COMPRESS=…` is left out, and a
//!   plaintext client is offered `STARTTLS` (and one on TLS is not); a
//!   `COMPRESS` the client sends anyway is answered `NO` by the proxy;
//! - a server that cannot be reached: the client gets `* BYE` and is closed.
//!
//! Both directions run at once in one task (a read on either side, a
//! write on either side, whichever is ready), with bounded queues: a side
//! that stops reading stops the other side from being read, nothing more.

use super::Context;
use super::view::View;
use crate::app::diag;
use crate::core::options::Security;
use crate::error;
use crate::io::READ_SIZE;
use crate::io::connection::{MARK_PATIENCE, Stream, WakeMark};
use crate::io::listen::{self, ClientStream};
use crate::io::tcp;
use crate::io::tls::{self, Via};
use crate::protocol::caps;
use crate::protocol::client_framer::{self, ClientFramer, End, Head as CHead};
use crate::protocol::command::{self, Effect, Secret, Verb};
use crate::protocol::framer::{self, Framer, Kind, LineEnd, Status};
use crate::text::{duration, escape, io_text, size};
use anyhow::Result;
use bytes::{Bytes, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Bytes waiting to be written to one side before the other side is no
/// longer read: enough for a few reads in flight, flat memory whatever
/// the size of a literal.
const QUEUE_LIMIT: usize = 4 * READ_SIZE;
/// Queued lines shorter than this are joined into one write.
const SMALL: usize = 16 * 1024;
/// Commands whose completion is awaited, at most (their times are shown);
/// a client that never waits for completions cannot grow the table.
const MAX_OUTSTANDING: usize = 10_000;
/// Without `--timeout`: how long a client has for its TLS handshake.
const CLIENT_HANDSHAKE: Duration = Duration::from_secs(60);
/// How long what is still queued may take to go out once a side closed.
const LINGER: Duration = Duration::from_secs(5);

/// Who ended the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closer {
    Client,
    Server,
    Stopped,
}

/// Serves one client connection to its end; never fails: whatever goes
/// wrong ends this connection only, and is reported in its view.
pub async fn serve(
    ctx: Rc<Context>,
    n: u64,
    tcp: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let mut view = ctx.view(n);
    let start = Instant::now();
    view.event(&format!("accept {peer}"));
    view.flush();
    let setup = async {
        let client = match &ctx.listen_tls {
            Some(t) if ctx.implicit_tls => {
                let timeout = ctx.settings.session.timeout.unwrap_or(CLIENT_HANDSHAKE);
                let s = t.accept(tcp, timeout).await?;
                view.event(&format!("tls {} (client side)", listen::summary(&s)));
                ClientStream::Tls(Box::new(s))
            }
            _ => ClientStream::Plain(tcp),
        };
        Ok::<_, anyhow::Error>(client)
    };
    let client = tokio::select! {
        r = setup => r,
        _ = stop.changed() => return report(&mut view, start, None, Closer::Stopped, None),
    };
    let mut client = match client {
        Ok(c) => c,
        Err(e) => {
            let message = error::message(&e);
            return report(&mut view, start, None, Closer::Client, Some(&message));
        }
    };
    let up = tokio::select! {
        r = upstream(&ctx, &mut view) => r,
        _ = stop.changed() => return report(&mut view, start, None, Closer::Stopped, None),
    };
    let (server, greeting) = match up {
        Ok(x) => x,
        Err(e) => {
            let message = error::message(&e);
            // The client is told why, in the one way IMAP has before a
            // greeting: a BYE (RFC 5530's UNAVAILABLE code).
            let bye = format!(
                "* BYE [UNAVAILABLE] imaptalk --listen: {}\r\n",
                escape(message.as_bytes())
            );
            view.event(&format!("imaptalk answered {}", bye.trim_end()));
            let _ = tokio::time::timeout(LINGER, async {
                client.write_all(bye.as_bytes()).await?;
                client.shutdown().await
            })
            .await;
            return report(&mut view, start, None, Closer::Server, Some(&message));
        }
    };
    let client_tls = matches!(client, ClientStream::Tls(_));
    let mut relay = Relay::new(&ctx, client, server, client_tls, view);
    if let Some(g) = greeting {
        relay.to_client.push(g);
    }
    let (closer, err) = match relay.run(&mut stop).await {
        Ok(c) => (c, None),
        Err(e) => (
            relay.closer.unwrap_or(Closer::Server),
            Some(error::message(&e)),
        ),
    };
    let bytes = Some((relay.from_client, relay.from_server));
    report(&mut relay.view, start, bytes, closer, err.as_deref());
}

/// The connection's end: who closed, bytes each way, how long it lasted.
fn report(
    view: &mut View,
    start: Instant,
    bytes: Option<(u64, u64)>,
    closer: Closer,
    err: Option<&str>,
) {
    let who = match (err, closer) {
        (Some(e), _) => format!("close after an error: {e}"),
        (None, Closer::Client) => "close by client".to_string(),
        (None, Closer::Server) => "close by server".to_string(),
        (None, Closer::Stopped) => "close by imaptalk (stopped)".to_string(),
    };
    let (c, s) = bytes.unwrap_or((0, 0));
    view.event(&format!(
        "{who}; {} from the client, {} from the server in {}",
        size(c),
        size(s),
        duration(start.elapsed())
    ));
    view.flush();
}

/// The connection to the server, set up as a normal session does (TLS,
/// or STARTTLS before anything else). With STARTTLS, the greeting the
/// client is to see is returned: it came before TLS, so its capability
/// list is left out.
async fn upstream(ctx: &Context, view: &mut View) -> Result<(Stream, Option<Bytes>)> {
    let settings = &ctx.settings;
    let timeout = settings.session.timeout;
    let tcp = tcp::connect_tcp(&settings.connect).await?;
    diag::connected(&settings.diag, &tcp, ctx.upstream_tls.is_some());
    view.event(&format!(
        "connect {} ({})",
        settings.connect.display(),
        tcp.addr
    ));
    let Some(tls) = &ctx.upstream_tls else {
        return Ok((Stream::Plain(tcp.stream), None));
    };
    let (stream, greeting, via) = match settings.session.security {
        Security::StartTls => {
            let mut s = tcp.stream;
            let greeting = starttls(&mut s, timeout, view).await?;
            (s, Some(greeting), Via::StartTls)
        }
        _ => (tcp.stream, None, Via::Implicit),
    };
    let start = Instant::now();
    let r = tls::handshake_via(stream, tls, timeout, via).await;
    let info = r.as_ref().ok().map(tls::tls_info);
    diag::handshake_done(&settings.diag, tls, info.as_ref(), start.elapsed());
    let s = r?;
    if let Some(i) = &info {
        let how = if via == Via::StartTls {
            " (STARTTLS)"
        } else {
            ""
        };
        view.event(&format!("tls {}, {}{how}", i.version, i.suite));
    }
    let greeting = greeting.map(|g| match caps::without_code(&g) {
        Some(shown) => {
            view.event(&format!(
                "greeting shown to the client without its capabilities from before TLS: {}",
                escape(framer::strip_line_end(&shown))
            ));
            Bytes::from(shown)
        }
        None => g,
    });
    Ok((Stream::Tls(Box::new(s)), greeting))
}

/// `--starttls` toward the server: the greeting, STARTTLS and its OK,
/// with the same refusals as a normal session (PREAUTH, BYE, NO, bytes
/// after the OK). Returns the greeting line.
async fn starttls(s: &mut TcpStream, timeout: Option<Duration>, view: &mut View) -> Result<Bytes> {
    let mut f = Framer::new();
    let (greeting, head) = setup_line(s, &mut f, timeout, "a greeting", view).await?;
    let text = escape(framer::strip_line_end(&greeting));
    match head {
        Kind::Untagged(Status::Ok) => {}
        Kind::Untagged(Status::Preauth) => {
            return Err(error::connect(
                "server greeted with PREAUTH (a session already open in plaintext), so STARTTLS is impossible; nothing was sent",
            ));
        }
        Kind::Untagged(Status::Bye) => {
            return Err(error::connect(format!(
                "server refused the connection: {text}"
            )));
        }
        _ => {
            return Err(error::connect(format!(
                "this does not look like an IMAP server; it said: {text}"
            )));
        }
    }
    let line = "imaptalk STARTTLS";
    view.event(&format!("imaptalk sent {line}"));
    s.write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|e| error::connect(format!("cannot send STARTTLS: {}", io_text(&e))))?;
    loop {
        let (answer, head) = setup_line(s, &mut f, timeout, "the answer to STARTTLS", view).await?;
        let text = escape(framer::strip_line_end(&answer));
        match head {
            Kind::Tagged { tag, status } if &tag[..] == b"imaptalk" => {
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
    if f.buffered() > 0 {
        return Err(error::connect(format!(
            "injection detected: {} bytes arrived after the server's OK to STARTTLS and before the TLS handshake (possible response injection, CVE-2011-0411); aborted, nothing was sent",
            f.buffered()
        )));
    }
    Ok(greeting)
}

/// One whole response line of the set-up, recorded in the view.
async fn setup_line(
    s: &mut TcpStream,
    f: &mut Framer,
    timeout: Option<Duration>,
    what: &str,
    view: &mut View,
) -> Result<(Bytes, Kind)> {
    let work = async {
        loop {
            if let Some(ev) = f.next_event().map_err(|e| error::connect(e.to_string()))? {
                view.server(&ev, None);
                return match ev {
                    framer::Event::Line {
                        data,
                        head: Some(head),
                        end: LineEnd::Response,
                    } => Ok((data, head.kind)),
                    _ => Err(error::connect(format!(
                        "this does not look like an IMAP server: {what} was expected"
                    ))),
                };
            }
            f.buffer_mut().reserve(4096);
            let n = s.read_buf(f.buffer_mut()).await.map_err(|e| {
                error::connect(format!(
                    "connection lost waiting for {what}: {}",
                    io_text(&e)
                ))
            })?;
            if n == 0 {
                return Err(error::connect(format!(
                    "server closed the connection before {what}"
                )));
            }
        }
    };
    match timeout {
        Some(d) => tokio::time::timeout(d, work).await.map_err(|_| {
            error::connect(format!(
                "timed out after {} waiting for {what}",
                crate::text::secs(d)
            ))
        })?,
        None => work.await,
    }
}

/// Bytes waiting to be written to one side.
#[derive(Default)]
struct Queue {
    chunks: VecDeque<Bytes>,
    /// Small pieces being joined into one write.
    small: BytesMut,
    len: usize,
    /// Written since the last flush (TLS buffers records until flushed).
    dirty: bool,
}

impl Queue {
    fn push(&mut self, b: Bytes) {
        self.len += b.len();
        if b.len() < SMALL {
            self.small.extend_from_slice(&b);
            if self.small.len() >= SMALL {
                self.seal();
            }
        } else {
            self.seal();
            self.chunks.push_back(b);
        }
    }

    fn seal(&mut self) {
        if !self.small.is_empty() {
            self.chunks.push_back(self.small.split().freeze());
        }
    }

    fn front(&mut self) -> Option<&Bytes> {
        if self.chunks.is_empty() {
            self.seal();
        }
        self.chunks.front()
    }

    fn advance(&mut self, n: usize) {
        self.len -= n;
        if let Some(c) = self.chunks.front_mut() {
            if n >= c.len() {
                self.chunks.pop_front();
            } else {
                let _ = c.split_to(n);
            }
        }
    }

    fn idle(&self) -> bool {
        self.len == 0 && !self.dirty
    }
}

/// What woke the relay up.
#[derive(Default)]
struct Wake {
    client: usize,
    server: usize,
    client_eof: bool,
    server_eof: bool,
    /// The queues are written out, and something waited for that.
    drained: bool,
}

/// Which side an IO error happened on, for the message.
fn side_error(side: &str, what: &str, e: &io::Error) -> anyhow::Error {
    error::lost(format!("{what} the {side}: {}", io_text(e)))
}

struct Relay {
    client: Option<ClientStream>,
    server: Stream,
    cf: ClientFramer,
    sf: Framer,
    to_client: Queue,
    to_server: Queue,
    client_eof: bool,
    server_eof: bool,
    /// The write side toward each was shut down after the other closed.
    client_shut: bool,
    server_shut: bool,
    /// When the server's side was shut down after the client closed.
    shut_at: Option<Instant>,
    closer: Option<Closer>,
    from_client: u64,
    from_server: u64,
    /// Commands sent and not completed, by tag: when each was sent, and
    /// what it is.
    outstanding: HashMap<Bytes, VecDeque<(Instant, Verb)>>,
    /// A LOGIN or AUTHENTICATE succeeded (or the greeting was PREAUTH):
    /// STARTTLS is no longer offered to the client.
    authenticated: bool,
    outstanding_count: usize,
    /// The last command sent: a `+` that is not for a literal is for it.
    last: Option<(Bytes, Verb)>,
    /// The command whose `+` asked for an answer line.
    answering: Option<(Bytes, Verb)>,
    client_tls: bool,
    /// The client's STARTTLS was answered OK: the handshake follows once
    /// the answer is written out.
    starttls: bool,
    view: View,
    listen_tls: Option<Rc<listen::ListenTls>>,
    handshake_timeout: Duration,
    /// The server's socket wakes the relay once a read's worth of a long
    /// literal is there, as it does a session.
    server_mark: WakeMark,
}

impl Relay {
    fn new(
        ctx: &Context,
        client: ClientStream,
        server: Stream,
        client_tls: bool,
        view: View,
    ) -> Relay {
        Relay {
            client: Some(client),
            server,
            cf: ClientFramer::new(),
            sf: Framer::new(),
            to_client: Queue::default(),
            to_server: Queue::default(),
            client_eof: false,
            server_eof: false,
            client_shut: false,
            server_shut: false,
            shut_at: None,
            closer: None,
            from_client: 0,
            from_server: 0,
            outstanding: HashMap::new(),
            authenticated: false,
            outstanding_count: 0,
            last: None,
            answering: None,
            client_tls,
            starttls: false,
            view,
            listen_tls: ctx.listen_tls.clone(),
            handshake_timeout: ctx.settings.session.timeout.unwrap_or(CLIENT_HANDSHAKE),
            server_mark: WakeMark::default(),
        }
    }

    async fn run(&mut self, stop: &mut watch::Receiver<bool>) -> Result<Closer> {
        loop {
            self.drain()?;
            if self.starttls && self.to_client.idle() {
                self.client_starttls().await?;
                continue;
            }
            if self.client_eof && !self.server_shut && self.to_server.idle() {
                self.server_shut = true;
                self.shut_at = Some(Instant::now());
                let _ = tokio::time::timeout(LINGER, self.server.shutdown()).await;
            }
            if self.server_eof && !self.client_shut && self.to_client.idle() {
                self.client_shut = true;
                if let Some(c) = &mut self.client {
                    let _ = tokio::time::timeout(LINGER, c.shutdown()).await;
                }
            }
            // Once the server closed and all it said is passed on, the
            // connection is over (nothing the client sends has a reader).
            // Once the client closed, the server gets LINGER to answer what
            // it was sent last (a LOGOUT) and to close in turn.
            if self.client_shut && (self.server_shut || self.server_eof) {
                return Ok(self.closer.unwrap_or(Closer::Client));
            }
            let deadline = self
                .shut_at
                .filter(|_| self.server_shut)
                .map(|t| t + LINGER);
            let linger = async move {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            let patient = self
                .server_mark
                .update(&self.server, self.sf.literal_unreceived());
            let wake = tokio::select! {
                w = std::future::poll_fn(|cx| self.poll_pump(cx)) => w?,
                _ = stop.changed() => {
                    self.close_both().await;
                    return Ok(Closer::Stopped);
                }
                () = linger => {
                    self.close_both().await;
                    return Ok(self.closer.unwrap_or(Closer::Client));
                }
                () = tokio::time::sleep(MARK_PATIENCE), if patient => {
                    self.server_mark.lower(&self.server);
                    continue;
                }
            };
            self.from_client += wake.client as u64;
            self.from_server += wake.server as u64;
            if wake.server > 0 {
                self.server_mark.read();
            }
            if wake.client_eof {
                self.client_eof = true;
                self.closer.get_or_insert(Closer::Client);
                // What the client's framer still holds (a literal it never
                // got to send) is shown by the error below.
                if let Err(e) = self.cf.finish() {
                    self.drain()?;
                    self.view.event(&client_framer::describe(&e));
                }
            }
            if wake.server_eof {
                self.server_eof = true;
                self.closer.get_or_insert(Closer::Server);
                self.drain()?;
                if let Err(e) = self.sf.finish() {
                    self.view.event(&e.to_string());
                }
            }
        }
    }

    /// The IO of both directions: writes whatever is queued, reads what
    /// may be read, and returns when something was read or a side closed.
    fn poll_pump(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<Wake>> {
        let mut wake = Wake::default();
        // A side that closed may not read what is still sent to it: that
        // is the end of its direction, not an error.
        let server_idle = match poll_send(&mut self.server, &mut self.to_server, cx) {
            Ok(idle) => idle,
            Err(_) if self.server_eof => {
                self.to_server = Queue::default();
                self.server_shut = true;
                true
            }
            Err(e) => return Poll::Ready(Err(side_error("server", "cannot send to", &e))),
        };
        let client_idle = match &mut self.client {
            Some(c) => match poll_send(c, &mut self.to_client, cx) {
                Ok(idle) => idle,
                Err(_) if self.client_eof => {
                    self.to_client = Queue::default();
                    self.client_shut = true;
                    true
                }
                Err(e) => return Poll::Ready(Err(side_error("client", "cannot send to", &e))),
            },
            None => true,
        };
        let reading = !self.starttls;
        if reading
            && !self.client_eof
            && self.to_server.len < QUEUE_LIMIT
            && self.cf.can_read()
            && let Some(c) = &mut self.client
        {
            match poll_fill(c, self.cf.buffer_mut(), cx) {
                Poll::Ready(Ok(0)) => wake.client_eof = true,
                Poll::Ready(Ok(n)) => wake.client = n,
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(side_error("client", "connection lost with", &e)));
                }
                Poll::Pending => {}
            }
        }
        if reading && !self.server_eof && self.to_client.len < QUEUE_LIMIT {
            match poll_fill(&mut self.server, self.sf.buffer_mut(), cx) {
                Poll::Ready(Ok(0)) => wake.server_eof = true,
                Poll::Ready(Ok(n)) => wake.server = n,
                Poll::Ready(Err(e)) => {
                    return Poll::Ready(Err(side_error("server", "connection lost with", &e)));
                }
                Poll::Pending => {}
            }
        }
        if wake.client > 0 || wake.server > 0 || wake.client_eof || wake.server_eof {
            return Poll::Ready(Ok(wake));
        }
        // Something waits for a queue to be written out: the client's
        // TLS handshake, or passing on a close to the other side.
        if (self.starttls && client_idle)
            || (self.client_eof && !self.server_shut && server_idle)
            || (self.server_eof && !self.client_shut && client_idle)
        {
            wake.drained = true;
            return Poll::Ready(Ok(wake));
        }
        Poll::Pending
    }

    /// Everything both framers can hand out, shown and queued. The
    /// server's side first: a `+` or a completion there decides whether
    /// the client's literal data comes.
    fn drain(&mut self) -> Result<()> {
        loop {
            let mut more = false;
            while !self.starttls
                && let Some(ev) = self
                    .sf
                    .next_event()
                    .map_err(|e| error::lost(e.to_string()))?
            {
                self.on_server(ev);
                more = true;
            }
            while !self.starttls
                && let Some(ev) = self
                    .cf
                    .next_event()
                    .map_err(|e| error::lost(client_framer::describe(&e)))?
            {
                self.on_client(ev);
                more = true;
            }
            if !more {
                break;
            }
        }
        self.view.flush();
        Ok(())
    }

    fn on_server(&mut self, ev: framer::Event) {
        let mut note = None;
        let mut unmatched = None;
        let mut shown = None;
        if let framer::Event::Line {
            data,
            head: Some(head),
            end,
        } = &ev
        {
            match &head.kind {
                Kind::Continuation => {
                    if !self.cf.go()
                        && let Some((tag, verb)) = &self.last
                        && verb.takes_continuation()
                        && self.outstanding.contains_key(tag)
                    {
                        self.cf.expect_answer();
                        self.answering = Some((tag.clone(), *verb));
                    }
                }
                Kind::Tagged { tag, status } => {
                    match self.complete(tag) {
                        Some((took, verb)) => {
                            note = Some(took);
                            if *status == Status::Ok && verb.effect() == Effect::LogsIn {
                                self.authenticated = true;
                            }
                        }
                        None => unmatched = Some(escape(tag)),
                    }
                    if self.cf.waiting() == Some(&tag[..]) {
                        self.cf.refuse();
                    }
                    if self.answering.as_ref().is_some_and(|(t, _)| t == tag) {
                        self.cf.no_answer();
                        self.answering = None;
                    }
                }
                Kind::Untagged(Status::Preauth) => self.authenticated = true,
                Kind::Untagged(_) => {}
            }
            if *end == LineEnd::Response {
                shown = self.shown_caps(data);
            }
        }
        self.view.server(&ev, note.as_deref());
        if let Some(tag) = unmatched {
            self.view
                .event(&format!("no command was sent with the tag {tag}"));
        }
        match (shown, ev) {
            (Some(line), _) => {
                self.view.event(&format!(
                    "capabilities shown to the client as: {}",
                    escape(framer::strip_line_end(&line))
                ));
                self.to_client.push(Bytes::from(line));
            }
            (None, framer::Event::Line { data, .. } | framer::Event::Literal { data, .. }) => {
                self.to_client.push(data)
            }
        }
    }

    /// A capability list as the client is to see it, when it differs.
    fn shown_caps(&self, line: &[u8]) -> Option<Vec<u8>> {
        let client_tls = self.client_tls;
        let drop = |a: &str| {
            let a = a.to_ascii_uppercase();
            a.starts_with("COMPRESS=") || (client_tls && a == "STARTTLS")
        };
        let add: &[&str] = if client_tls || self.authenticated || self.listen_tls.is_none() {
            &[]
        } else {
            &["STARTTLS"]
        };
        caps::rewrite(line, drop, add)
    }

    /// A tagged completion: the time of its command, for the view, and
    /// what the command was; None when no command was sent with that tag.
    fn complete(&mut self, tag: &Bytes) -> Option<(String, Verb)> {
        let sent = self.outstanding.get_mut(tag)?;
        let first = sent.pop_front();
        if sent.is_empty() {
            self.outstanding.remove(tag);
        }
        self.outstanding_count = self.outstanding_count.saturating_sub(1);
        first.map(|(t, verb)| (format!("({})", duration(t.elapsed())), verb))
    }

    fn on_client(&mut self, ev: client_framer::Event) {
        let mut shown = None;
        if let client_framer::Event::Line {
            data,
            head: Some(head),
            end,
        } = &ev
        {
            match head {
                CHead::Command { tag, verb } => {
                    if *end == End::Command && matches!(verb, Verb::StartTls | Verb::Compress) {
                        self.view.client(&ev, None);
                        return self.intercept(tag, *verb);
                    }
                    if !tag.is_empty() && self.outstanding_count < MAX_OUTSTANDING {
                        self.outstanding
                            .entry(tag.clone())
                            .or_default()
                            .push_back((Instant::now(), *verb));
                        self.outstanding_count += 1;
                    }
                    self.last = Some((tag.clone(), *verb));
                    if verb.secret() != Secret::None {
                        shown = Some(command::masked(&command::from_wire(data)));
                    }
                }
                CHead::Answer => {
                    // DONE ends IDLE and holds nothing; any other answer
                    // may be a SASL response of any mechanism.
                    if !matches!(self.answering, Some((_, Verb::Idle))) {
                        shown = Some("****".to_string());
                    }
                }
            }
        }
        self.view.client(&ev, shown.as_deref());
        match ev {
            client_framer::Event::Line { data, .. }
            | client_framer::Event::Literal { data, .. } => self.to_server.push(data),
        }
    }

    /// STARTTLS and COMPRESS from the client are answered by the proxy
    /// and never reach the server (see the module documentation).
    fn intercept(&mut self, tag: &Bytes, verb: Verb) {
        let tag = String::from_utf8_lossy(tag);
        let answer = match verb {
            Verb::StartTls if self.client_tls => {
                format!("{tag} BAD TLS is already active (imaptalk --listen)")
            }
            Verb::StartTls if self.listen_tls.is_none() => {
                format!("{tag} NO no certificate for TLS toward the client (imaptalk --listen)")
            }
            Verb::StartTls => {
                self.starttls = true;
                format!("{tag} OK Begin TLS negotiation now (imaptalk --listen)")
            }
            _ => format!(
                "{tag} NO COMPRESS is not passed on by imaptalk --listen (the connection stays uncompressed)"
            ),
        };
        self.view
            .event(&format!("imaptalk answered {}", escape(answer.as_bytes())));
        self.to_client.push(Bytes::from(format!("{answer}\r\n")));
    }

    /// The client's STARTTLS was answered and the answer written out: the
    /// handshake, as the server side. Plaintext the client sent after its
    /// STARTTLS cannot be trusted once TLS is up (the injection of
    /// CVE-2011-0411, the other way round): the connection is closed.
    async fn client_starttls(&mut self) -> Result<()> {
        self.starttls = false;
        if self.cf.buffered() > 0 {
            return Err(error::lost(format!(
                "the client sent {} bytes after STARTTLS, before the TLS handshake (plaintext that cannot be trusted once TLS is up); closed",
                self.cf.buffered()
            )));
        }
        let (Some(ClientStream::Plain(tcp)), Some(tls)) = (self.client.take(), &self.listen_tls)
        else {
            return Err(error::lost(
                "STARTTLS on a client connection that is not plaintext",
            ));
        };
        let s = tls.accept(tcp, self.handshake_timeout).await?;
        self.view.event(&format!(
            "tls {} (client side, STARTTLS)",
            listen::summary(&s)
        ));
        self.client = Some(ClientStream::Tls(Box::new(s)));
        self.client_tls = true;
        self.cf = ClientFramer::new();
        Ok(())
    }

    async fn close_both(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = self.server.shutdown().await;
            if let Some(c) = &mut self.client {
                let _ = c.shutdown().await;
            }
        })
        .await;
    }
}

/// Writes what is queued, then flushes. Ok(true) once everything is out.
fn poll_send<S: AsyncWrite + Unpin>(
    s: &mut S,
    q: &mut Queue,
    cx: &mut TaskContext<'_>,
) -> io::Result<bool> {
    while let Some(chunk) = q.front() {
        let chunk = chunk.clone();
        match Pin::new(&mut *s).poll_write(cx, &chunk) {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => {
                q.advance(n);
                q.dirty = true;
            }
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Ok(false),
        }
    }
    if q.dirty {
        match Pin::new(&mut *s).poll_flush(cx) {
            Poll::Ready(Ok(())) => q.dirty = false,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Ok(false),
        }
    }
    Ok(true)
}

/// One read into a framer's buffer. A TLS peer that closes without
/// close_notify has closed all the same.
fn poll_fill<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    cx: &mut TaskContext<'_>,
) -> Poll<io::Result<usize>> {
    // The chunks handed out still share the buffer's allocation while they
    // wait in a queue, so reserving a full read each time would allocate a
    // fresh one for every read (a new mapping per read of a few KiB from a
    // server that writes in small pieces): only when little is left.
    if buf.capacity() - buf.len() < READ_SIZE / 8 {
        buf.reserve(READ_SIZE);
    }
    // The read future holds no state of its own before it completes, so
    // making one per poll and dropping it unfinished loses nothing.
    match pin!(s.read_buf(buf)).poll(cx) {
        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Poll::Ready(Ok(0)),
        other => other,
    }
}
