//! `--check`'s conversations with the server: a small client over
//! [`Connection`] and the framer that sends one command at a time and
//! collects its responses, every wait bounded; STARTTLS, the STARTTLS
//! command-injection probe, TLS handshakes at one version, and the login.
//!
//! Nothing here decides a level: it reports what happened, and
//! [`super`] turns that into findings with [`super::report`]'s rules.

use crate::core::sasl::{self, Mechanism, Secret};
use crate::error;
use crate::io::connection::{Connection, Stream};
use crate::io::tcp::{self, ConnectOptions};
use crate::io::tls::{TlsInfo, TlsOptions, TlsSetup, Version};
use crate::io::transcript::Sending;
use crate::protocol::caps;
use crate::protocol::framer::{Event, Kind, LineEnd, Status, parse_head};
use crate::text::secs;
use anyhow::Result;
use std::time::{Duration, Instant};

/// The most of one response kept (its first line is always kept whole
/// up to the framer's line limit; literal data after this is counted,
/// not kept): `--check` reads LIST and ID, never message bodies.
const KEEP: usize = 16 * 1024;

/// A response longer than this, or a command answered with more
/// responses than [`MAX_RESPONSES`], is an error: a server that streams
/// without end must not keep the check from ending.
const MAX_RESPONSE: u64 = 16 << 20;
const MAX_RESPONSES: usize = 1_000_000;

/// One whole response: its status and kind, and its bytes (line pieces
/// and literal data, line ends included) up to [`KEEP`].
#[derive(Debug, Clone)]
pub struct Response {
    pub kind: Kind,
    pub bytes: Vec<u8>,
}

impl Response {
    /// The first line without its line end, lossy UTF-8.
    pub fn line(&self) -> String {
        let end = memchr::memchr(b'\n', &self.bytes).unwrap_or(self.bytes.len());
        let line = self.bytes[..end]
            .strip_suffix(b"\r")
            .unwrap_or(&self.bytes[..end]);
        String::from_utf8_lossy(line).into_owned()
    }

    /// The bytes without the last line end.
    pub fn trimmed(&self) -> &[u8] {
        let b = self.bytes.strip_suffix(b"\n").unwrap_or(&self.bytes);
        b.strip_suffix(b"\r").unwrap_or(b)
    }

    pub fn status(&self) -> Option<Status> {
        match &self.kind {
            Kind::Tagged { status, .. } | Kind::Untagged(status) => Some(*status),
            Kind::Continuation => None,
        }
    }

    fn tagged(&self, tag: &str) -> bool {
        matches!(&self.kind, Kind::Tagged { tag: t, .. } if t.as_ref() == tag.as_bytes())
    }

    /// The text after `+ ` of a continuation request.
    fn continuation(&self) -> Option<Vec<u8>> {
        matches!(self.kind, Kind::Continuation).then(|| {
            let t = self.trimmed();
            t.strip_prefix(b"+ ")
                .or(t.strip_prefix(b"+"))
                .unwrap_or(t)
                .to_vec()
        })
    }

    /// The capability list this response carries, if any.
    pub fn capabilities(&self) -> Option<Vec<String>> {
        caps::parse(&self.line()).map(|c| c.iter().map(|a| a.to_string()).collect())
    }
}

/// The server's answer to a command: the responses before the
/// completion, and the completion.
#[derive(Debug, Clone)]
pub struct Answer {
    pub data: Vec<Response>,
    pub done: Response,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.done.status() == Some(Status::Ok)
    }

    /// The capabilities of the answer: a `* CAPABILITY` response or a
    /// `[CAPABILITY …]` code in the completion.
    pub fn capabilities(&self) -> Option<Vec<String>> {
        self.data
            .iter()
            .chain(std::iter::once(&self.done))
            .find_map(Response::capabilities)
    }
}

/// A connection for `--check`.
pub struct Imap {
    conn: Connection,
    /// The limit for each wait on the server.
    pub step: Duration,
    tags: u32,
    /// The host, for messages.
    host: String,
}

impl Imap {
    pub fn new(stream: Stream, peer: String, step: Duration, host: &str) -> Imap {
        let mut conn = Connection::new(stream, peer);
        conn.set_send_timeout(Some(step));
        Imap {
            conn,
            step,
            tags: 0,
            host: host.to_string(),
        }
    }

    /// Connects as the connection flags say (`--proxy`, `--proxy-protocol`,
    /// `-4`/`-6`), to `port`; with `tls`, TLS from the first byte.
    /// Returns the connection and, for TLS, the handshake's time.
    pub async fn connect(
        connect: &ConnectOptions,
        port: u16,
        tls: Option<&TlsSetup>,
        step: Duration,
    ) -> Result<(Imap, Option<Duration>)> {
        let mut opts = connect.clone();
        opts.port = port;
        opts.timeout = Some(step);
        opts.verbose = false;
        let tcp = tcp::connect_tcp(&opts).await?;
        let peer = opts.display();
        match tls {
            None => Ok((
                Imap::new(Stream::Plain(tcp.stream), peer, step, &connect.host),
                None,
            )),
            Some(setup) => {
                let start = Instant::now();
                let s = crate::io::tls::handshake(tcp.stream, setup, Some(step)).await?;
                let took = start.elapsed();
                Ok((
                    Imap::new(Stream::Tls(Box::new(s)), peer, step, &connect.host),
                    Some(took),
                ))
            }
        }
    }

    pub fn tls_info(&self) -> Option<TlsInfo> {
        self.conn.tls_info()
    }

    fn next_tag(&mut self) -> String {
        self.tags += 1;
        format!("c{}", self.tags)
    }

    /// The next whole response, within the step's limit.
    pub async fn read(&mut self) -> Result<Response> {
        let mut kind = None;
        let mut bytes = Vec::new();
        let mut total = 0u64;
        loop {
            while let Some(ev) = self
                .conn
                .next_event()
                .map_err(|e| error::lost(e.to_string()))?
            {
                let len = match &ev {
                    Event::Line { data, .. } | Event::Literal { data, .. } => data.len(),
                };
                total = total.saturating_add(len as u64);
                if total > MAX_RESPONSE {
                    return Err(error::lost(format!(
                        "{} sent a response of more than {}",
                        self.conn.peer,
                        crate::text::size(MAX_RESPONSE)
                    )));
                }
                match ev {
                    Event::Line { data, head, end } => {
                        if let Some(h) = head {
                            kind = Some(h.kind);
                        } else if kind.is_none() {
                            kind = Some(parse_head(&data).kind);
                        }
                        keep(&mut bytes, &data);
                        if end == LineEnd::Response {
                            return Ok(Response {
                                kind: kind.unwrap_or(Kind::Untagged(Status::Other)),
                                bytes,
                            });
                        }
                    }
                    Event::Literal { data, .. } => keep(&mut bytes, &data),
                }
            }
            let more = tokio::time::timeout(self.step, self.conn.fill())
                .await
                .map_err(|_| {
                    error::lost(format!(
                        "no answer from {} within {}",
                        self.conn.peer,
                        secs(self.step)
                    ))
                })??;
            if !more {
                return Err(error::lost(format!(
                    "{} closed the connection",
                    self.conn.peer
                )));
            }
        }
    }

    async fn send(&mut self, bytes: &[u8], sending: Sending<'_>) -> Result<()> {
        self.conn.queue(bytes, sending);
        self.conn.send_queued().await
    }

    /// Sends `command` with a tag of its own and collects the answer.
    /// A `+` is an error here (the commands sent this way take none).
    pub async fn command(&mut self, command: &str) -> Result<Answer> {
        let tag = self.next_tag();
        self.send(
            format!("{tag} {command}\r\n").as_bytes(),
            Sending::Line(None),
        )
        .await?;
        self.answer(&tag).await
    }

    /// The responses up to the completion tagged `tag`.
    async fn answer(&mut self, tag: &str) -> Result<Answer> {
        let mut data = Vec::new();
        for _ in 0..MAX_RESPONSES {
            let r = self.read().await?;
            if r.tagged(tag) {
                return Ok(Answer { data, done: r });
            }
            if matches!(r.kind, Kind::Continuation) {
                return Err(error::lost(format!(
                    "{} asked for more (+) where no command wanted any",
                    self.conn.peer
                )));
            }
            if data.len() < 100_000 {
                data.push(r);
            }
        }
        Err(self.endless())
    }

    fn endless(&self) -> anyhow::Error {
        error::lost(format!(
            "{} sent more than {MAX_RESPONSES} responses to one command",
            self.conn.peer
        ))
    }

    /// Times `NOOP` round trips; stops at the first that fails.
    pub async fn noops(&mut self, n: usize) -> (Vec<Duration>, Option<String>) {
        let mut times = Vec::new();
        for _ in 0..n {
            let start = Instant::now();
            match self.command("NOOP").await {
                Ok(a) if a.ok() => times.push(start.elapsed()),
                Ok(a) => {
                    return (
                        times,
                        Some(format!(
                            "NOOP answered: {}",
                            crate::text::escape(a.done.trimmed())
                        )),
                    );
                }
                Err(e) => return (times, Some(error::message(&e))),
            }
        }
        (times, None)
    }

    /// STARTTLS, then the handshake. Err: what went wrong, as a sentence.
    pub async fn starttls(&mut self, tls: &TlsSetup) -> Result<Duration, String> {
        let a = self
            .command("STARTTLS")
            .await
            .map_err(|e| error::message(&e))?;
        if !a.ok() {
            return Err(format!(
                "STARTTLS was answered: {}",
                crate::text::escape(a.done.trimmed())
            ));
        }
        if self.conn.buffered() > 0 {
            return Err(
                "the server sent plaintext after its OK to STARTTLS, where the TLS handshake must begin"
                    .into(),
            );
        }
        let start = Instant::now();
        self.conn
            .upgrade(tls, Some(self.step))
            .await
            .map_err(|e| error::message(&e))?;
        Ok(start.elapsed())
    }

    /// The command-injection probe (CVE-2011-0411): `STARTTLS` and a
    /// `NOOP` in one write, then the handshake, then a NOOP of our own.
    /// A server that buffered the injected NOOP across the upgrade and
    /// runs it inside TLS answers its tag before ours. Nothing else is
    /// sent on this connection.
    pub async fn injection_probe(&mut self, tls: &TlsSetup) -> Injection {
        let (start_tag, injected) = (self.next_tag(), self.next_tag());
        let bytes = format!("{start_tag} STARTTLS\r\n{injected} NOOP\r\n");
        if let Err(e) = self.send(bytes.as_bytes(), Sending::Line(None)).await {
            return Injection::Inconclusive(error::message(&e));
        }
        let a = match self.answer(&start_tag).await {
            Ok(a) => a,
            Err(e) => return Injection::Inconclusive(error::message(&e)),
        };
        if !a.ok() {
            return Injection::Inconclusive(format!(
                "STARTTLS was answered: {}",
                crate::text::escape(a.done.trimmed())
            ));
        }
        if self.conn.buffered() > 0 {
            // Whatever came, it came in plaintext after the OK: the
            // NOOP's answer, most likely.
            return Injection::PlaintextAfterOk;
        }
        if let Err(e) = self.conn.upgrade(tls, Some(self.step)).await {
            // Dovecot, for one, takes the bytes after STARTTLS for the
            // start of the TLS handshake, which then fails: not run.
            return Injection::HandshakeFailed(error::message(&e));
        }
        let own = self.next_tag();
        if let Err(e) = self
            .send(format!("{own} NOOP\r\n").as_bytes(), Sending::Line(None))
            .await
        {
            return Injection::Closed(error::message(&e));
        }
        // Responses come in order: if the injected NOOP ran, its
        // completion comes before ours.
        for _ in 0..MAX_RESPONSES {
            match self.read().await {
                Ok(r) if r.tagged(&injected) => return Injection::Executed,
                Ok(r) if r.tagged(&own) => return Injection::Refused,
                Ok(_) => {}
                Err(e) => return Injection::Closed(error::message(&e)),
            }
        }
        Injection::Closed(error::message(&self.endless()))
    }

    /// Logs in over this (TLS) connection with the strongest mechanism
    /// `caps` offers, or `--sasl`'s. Ok: the mechanism used and the
    /// completion; Err: why it failed (a sentence; nothing secret in it).
    pub async fn login(
        &mut self,
        login: &Login<'_>,
        caps: &crate::protocol::caps::Capabilities,
    ) -> Result<(Mechanism, Answer), (Option<Mechanism>, String)> {
        let mech = sasl::choose(login.oauth2, caps, login.mech).map_err(|e| (None, e))?;
        let fail = |e: anyhow::Error| (Some(mech), error::message(&e));
        let tag = self.next_tag();
        if mech == Mechanism::Login {
            let parts = crate::protocol::astring::login_parts(login.user, login.secret.expose());
            for (i, part) in parts.iter().enumerate() {
                let mut line = Vec::new();
                if i == 0 {
                    line.extend_from_slice(tag.as_bytes());
                    line.push(b' ');
                }
                line.extend_from_slice(part);
                self.send(&line, Sending::Line(Some("****")))
                    .await
                    .map_err(fail)?;
                line.iter_mut().for_each(|b| *b = 0);
                if i + 1 < parts.len() {
                    let r = self.read().await.map_err(fail)?;
                    if r.continuation().is_none() {
                        return Err((
                            Some(mech),
                            format!("LOGIN was answered: {}", crate::text::escape(r.trimmed())),
                        ));
                    }
                }
            }
            let a = self.answer(&tag).await.map_err(fail)?;
            return Ok((mech, a));
        }
        let mut scram = mech
            .scram_hash()
            .map(|h| sasl::Scram::new(h, login.user, login.secret, login.nonce));
        let first = match &scram {
            Some(s) => Secret::new(s.client_first()),
            None => sasl::initial_response(mech, login.user, login.secret, login.host, login.port),
        };
        let first = if first.expose().is_empty() {
            Secret::new("=".into())
        } else {
            first
        };
        let ir = caps.has("SASL-IR");
        let mut pending = if ir {
            let line = Secret::new(format!(
                "{tag} AUTHENTICATE {} {}\r\n",
                mech.name(),
                first.expose()
            ));
            self.send(line.expose().as_bytes(), Sending::Line(Some("****")))
                .await
                .map_err(fail)?;
            None
        } else {
            self.send(
                format!("{tag} AUTHENTICATE {}\r\n", mech.name()).as_bytes(),
                Sending::Line(None),
            )
            .await
            .map_err(fail)?;
            Some(first)
        };
        let mut rounds = 0;
        for _ in 0..MAX_RESPONSES {
            let r = self.read().await.map_err(fail)?;
            if r.tagged(&tag) {
                if r.status() == Some(Status::Ok)
                    && let Some(s) = &scram
                    && !s.verified()
                {
                    return Err((
                        Some(mech),
                        "the server accepted SCRAM without proving that it knows the password (no server signature)".into(),
                    ));
                }
                let data = Vec::new();
                return Ok((mech, Answer { data, done: r }));
            }
            let Some(challenge) = r.continuation() else {
                continue;
            };
            rounds += 1;
            if rounds > 4 {
                self.send(b"*\r\n", Sending::Line(None))
                    .await
                    .map_err(fail)?;
                return Err((
                    Some(mech),
                    "the server asked for more than SASL needs".into(),
                ));
            }
            let answer = if let Some(first) = pending.take() {
                first
            } else if let Some(s) = &mut scram {
                match s.step(&challenge) {
                    Ok(a) => a,
                    Err(e) => {
                        let _ = self.send(b"*\r\n", Sending::Line(None)).await;
                        let _ = self.answer(&tag).await;
                        return Err((Some(mech), e));
                    }
                }
            } else if mech.oauth2() {
                Secret::new(sasl::error_ack(mech).to_string())
            } else {
                // PLAIN and the like have said all they have to say.
                self.send(b"*\r\n", Sending::Line(None))
                    .await
                    .map_err(fail)?;
                let _ = self.answer(&tag).await;
                return Err((
                    Some(mech),
                    "the server asked for more after the SASL response".into(),
                ));
            };
            let line = Secret::new(format!("{}\r\n", answer.expose()));
            self.send(line.expose().as_bytes(), Sending::Line(Some("****")))
                .await
                .map_err(fail)?;
        }
        Err((Some(mech), error::message(&self.endless())))
    }

    /// LOGOUT, then a polite close, without caring how it goes.
    pub async fn logout(mut self) {
        let limit = self.step.min(Duration::from_secs(2));
        let _ = tokio::time::timeout(limit, self.command("LOGOUT")).await;
        self.conn.shutdown().await;
    }

    /// A polite close, nothing sent.
    pub async fn close(mut self) {
        self.conn.shutdown().await;
    }

    pub fn host(&self) -> &str {
        &self.host
    }
}

/// What `-u` logs in with.
pub struct Login<'a> {
    pub user: &'a str,
    pub secret: &'a Secret,
    pub oauth2: bool,
    pub mech: Option<Mechanism>,
    pub nonce: &'a str,
    pub host: &'a str,
    pub port: u16,
}

fn keep(bytes: &mut Vec<u8>, data: &[u8]) {
    let room = KEEP.saturating_sub(bytes.len());
    bytes.extend_from_slice(&data[..data.len().min(room)]);
}

/// How the server took `STARTTLS` and `NOOP` sent together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Injection {
    /// The injected NOOP was answered inside TLS: vulnerable.
    Executed,
    /// Only our own NOOP was answered: the server threw the injected
    /// command away.
    Refused,
    /// Plaintext came after the OK (the NOOP answered before the upgrade).
    PlaintextAfterOk,
    /// The server closed the connection after the handshake (a way of
    /// refusing pipelined input).
    Closed(String),
    /// The handshake after the OK failed: the server took the command for
    /// TLS data (when STARTTLS alone works, a way of not running it).
    HandshakeFailed(String),
    /// STARTTLS itself did not work; nothing could be learnt.
    Inconclusive(String),
}

/// A handshake offering only `version`, on implicit TLS or after
/// STARTTLS. Ok: what was negotiated; Err: why it failed.
pub async fn version_probe(
    connect: &ConnectOptions,
    tls: &TlsOptions,
    port: u16,
    starttls: bool,
    version: Version,
    step: Duration,
) -> Result<TlsInfo, String> {
    let mut opts = tls.clone();
    opts.min = version;
    opts.max = version;
    // The key log is for the sessions themselves.
    opts.keylog = None;
    let setup = TlsSetup::for_check(&opts).map_err(|e| error::message(&e))?;
    let imap = if starttls {
        let (mut imap, _) = Imap::connect(connect, port, None, step)
            .await
            .map_err(|e| error::message(&e))?;
        imap.read().await.map_err(|e| error::message(&e))?;
        imap.starttls(&setup).await?;
        imap
    } else {
        Imap::connect(connect, port, Some(&setup), step)
            .await
            .map_err(|e| error::message(&e))?
            .0
    };
    let info = imap.tls_info().ok_or("no TLS session")?;
    imap.close().await;
    Ok(info)
}
