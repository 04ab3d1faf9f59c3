//! Getting bytes to and from the server: TCP, TLS, the STARTTLS upgrade,
//! and the [`Connection`] that owns the socket and the framer.

use crate::cli::Settings;
use crate::compress::{Deflate, Stats};
use crate::error;
use crate::framer::{Event, FrameError, Framer};
use crate::transcript::{Sending, Transcript};
use anyhow::Result;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// How much is read from the socket at once. Large reads keep the number
/// of system calls (and TLS records decrypted per call) low when a big
/// literal streams through.
pub const READ_SIZE: usize = 128 * 1024;

/// The socket, plain or encrypted, and maybe compressed (COMPRESS=DEFLATE).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Deflate(Box<Deflate<Stream>>),
}

impl Stream {
    fn tls(&self) -> Option<&TlsStream<TcpStream>> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => Some(s),
            Stream::Deflate(d) => d.get_ref().tls(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One connection to the server: the socket plus the framer that owns the
/// read buffer. Reading and framing are split (`fill` / `next_event`) so
/// that the session can drain every buffered event, flush its output once,
/// and only then wait on the network.
pub struct Connection {
    stream: Option<Stream>,
    framer: Framer,
    /// Where the TCP connection ended up, for messages.
    pub peer: String,
    eof: bool,
    /// `--log`: everything sent and received is recorded here.
    log: Option<Transcript>,
    /// Script mode with `--timeout`: a server that stops reading must not
    /// block a send forever either.
    send_timeout: Option<Duration>,
    /// A send was started and has not finished: if it was abandoned (a
    /// signal ended the session), the server holds part of a line, and
    /// nothing more may be written in the middle of it.
    torn: bool,
    /// `--pipeline`: command lines that go out with the next send, so that
    /// a run of commands costs one system call (and one TLS record).
    queued: Vec<u8>,
}

/// Queued command lines are written once they reach this size.
const QUEUE_MAX: usize = 64 * 1024;

impl Connection {
    pub fn new(stream: Stream, peer: String) -> Connection {
        Connection {
            stream: Some(stream),
            framer: Framer::new(),
            peer,
            eof: false,
            log: None,
            send_timeout: None,
            torn: false,
            queued: Vec::new(),
        }
    }

    pub fn set_send_timeout(&mut self, timeout: Option<Duration>) {
        self.send_timeout = timeout;
    }

    /// A send was abandoned half-way (see `torn`).
    pub fn torn(&self) -> bool {
        self.torn
    }

    /// Starts recording the session (`--log`), from its connect event.
    pub fn set_transcript(&mut self, mut log: Transcript, connected: &str) {
        log.event(connected);
        if let Some(tls) = self.tls_summary() {
            log.event(&format!("tls {tls}"));
        }
        self.log = Some(log);
    }

    /// Records an event in the transcript, if there is one.
    pub fn log_event(&mut self, text: &str) {
        if let Some(log) = &mut self.log {
            log.event(text);
        }
    }

    pub fn is_tls(&self) -> bool {
        self.stream.as_ref().and_then(Stream::tls).is_some()
    }

    pub fn is_compressed(&self) -> bool {
        matches!(self.stream, Some(Stream::Deflate(_)))
    }

    /// Bytes on the wire and of protocol since COMPRESS, each way.
    pub fn compress_stats(&self) -> Option<Stats> {
        match &self.stream {
            Some(Stream::Deflate(d)) => Some(d.stats()),
            _ => None,
        }
    }

    /// Switches both directions to deflate (after `COMPRESS DEFLATE` got
    /// OK). Bytes already received after the OK are compressed data: they
    /// go into the decompressor, not to the framer.
    pub fn compress(&mut self) -> Result<()> {
        let stream = match self.stream.take() {
            Some(Stream::Deflate(d)) => {
                self.stream = Some(Stream::Deflate(d));
                return Err(error::lost(
                    "protocol error: the server accepted COMPRESS on a compressed connection",
                ));
            }
            Some(s) => s,
            None => return Err(error::lost("connection already closed")),
        };
        let already = self.framer.buffer_mut().split().to_vec();
        self.framer = Framer::new();
        self.stream = Some(Stream::Deflate(Box::new(Deflate::new(stream, already))));
        self.log_event("compress deflate");
        Ok(())
    }

    fn stream(&mut self) -> io::Result<&mut Stream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "connection closed"))
    }

    /// The next event from bytes already received, if any.
    pub fn next_event(&mut self) -> Result<Option<Event>, FrameError> {
        let ev = self.framer.next_event()?;
        if let (Some(log), Some(ev)) = (&mut self.log, &ev) {
            log.server(ev);
        }
        Ok(ev)
    }

    /// Reads more from the server. Returns `Ok(false)` when the server has
    /// closed its side — after checking that it did so between responses.
    /// Cancel-safe: if the future is dropped, nothing was read.
    pub async fn fill(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if let Some(log) = &mut self.log {
            log.flush();
        }
        let buf = self.framer.buffer_mut();
        buf.reserve(READ_SIZE);
        let stream = self
            .stream
            .as_mut()
            .ok_or_else(|| error::lost("connection already closed"))?;
        let n = match stream.read_buf(buf).await {
            Ok(n) => n,
            // Servers often close after BYE without a TLS close_notify: the
            // caller decides whether that end was expected.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => {
                return Err(error::lost(format!(
                    "connection to {} lost: {}",
                    self.peer,
                    io_text(&e)
                )));
            }
        };
        if n == 0 {
            self.eof = true;
            self.log_event("close by server");
            self.framer
                .finish()
                .map_err(|e| error::lost(e.to_string()))?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Sends bytes and flushes them (TLS buffers records until flushed).
    pub async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.send_as(bytes, Sending::More).await
    }

    /// Sends bytes, telling the transcript what they are (a new line, which
    /// may be shown masked).
    pub async fn send_as(&mut self, bytes: &[u8], sending: Sending<'_>) -> Result<()> {
        if let Some(log) = &mut self.log {
            log.client(bytes, sending);
            log.flush();
        }
        if !self.queued.is_empty() {
            self.queued.extend_from_slice(bytes);
            return self.send_queued().await;
        }
        self.write_out(bytes).await
    }

    /// Like [`send_as`](Self::send_as), but the bytes may wait in a queue
    /// for the next send or [`send_queued`](Self::send_queued).
    pub async fn queue_as(&mut self, bytes: &[u8], sending: Sending<'_>) -> Result<()> {
        if let Some(log) = &mut self.log {
            log.client(bytes, sending);
        }
        self.queued.extend_from_slice(bytes);
        if self.queued.len() >= QUEUE_MAX {
            self.send_queued().await?;
        }
        Ok(())
    }

    /// Writes out whatever [`queue_as`](Self::queue_as) queued.
    pub async fn send_queued(&mut self) -> Result<()> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let mut bytes = std::mem::take(&mut self.queued);
        let r = self.write_out(&bytes).await;
        bytes.clear();
        self.queued = bytes;
        r
    }

    async fn write_out(&mut self, bytes: &[u8]) -> Result<()> {
        let peer = self.peer.clone();
        let limit = self.send_timeout;
        self.torn = true;
        let s = self.stream().map_err(|e| error::lost(e.to_string()))?;
        let write = async {
            s.write_all(bytes).await?;
            s.flush().await
        };
        let r = match limit {
            Some(d) => tokio::time::timeout(d, write).await.map_err(|_| {
                error::lost(format!(
                    "timed out after {} sending to {peer} (the server is not reading)",
                    secs(d)
                ))
            })?,
            None => write.await,
        };
        self.torn = false;
        r.map_err(|e| error::lost(format!("cannot send to {peer}: {}", io_text(&e))))
    }

    /// Bytes received but never framed, after the stream broke off.
    pub fn take_rest(&mut self) -> bytes::Bytes {
        self.framer.take_rest()
    }

    /// Bytes received and not yet framed into events.
    pub fn buffered(&self) -> usize {
        self.framer.buffered()
    }

    /// Replaces the plain socket by a TLS one (STARTTLS). The caller must
    /// have checked that nothing is buffered: bytes that arrived before the
    /// handshake are plaintext and must never be mixed into the TLS session.
    pub async fn upgrade(&mut self, tls: &TlsSetup, timeout: Option<Duration>) -> Result<()> {
        debug_assert_eq!(self.framer.buffered(), 0);
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            return Err(error::connect(
                "STARTTLS on a connection that is already TLS or compressed",
            ));
        };
        let tls_stream = handshake(tcp, tls, timeout).await?;
        self.stream = Some(Stream::Tls(Box::new(tls_stream)));
        self.framer = Framer::new();
        if let Some(tls) = self.tls_summary() {
            self.log_event(&format!("tls {tls} (STARTTLS)"));
        }
        Ok(())
    }

    /// Ends the connection politely: TLS close_notify, then TCP FIN.
    pub async fn shutdown(&mut self) {
        if let Some(mut s) = self.stream.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), s.shutdown()).await;
            self.log_event("close");
        }
    }

    /// What was negotiated, once TLS is up.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        self.stream.as_ref()?.tls().map(tls_info)
    }

    /// A description of the TLS session, for the user.
    pub fn tls_summary(&self) -> Option<String> {
        self.tls_info()
            .map(|i| format!("{}, {}", i.version, i.suite))
    }
}

/// What a TLS stream negotiated.
pub fn tls_info(s: &TlsStream<TcpStream>) -> TlsInfo {
    let (_, conn) = s.get_ref();
    TlsInfo {
        version: conn
            .protocol_version()
            .map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1."))
            .unwrap_or_default(),
        suite: conn
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default(),
        group: conn
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name())),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
    }
}

/// The parameters a TLS session was set up with.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// `TLS 1.3`.
    pub version: String,
    /// `TLS13_AES_256_GCM_SHA384`.
    pub suite: String,
    /// Key exchange group, `X25519` (None when rustls does not say).
    pub group: Option<String>,
    pub alpn: Option<Vec<u8>>,
}

/// An I/O error as users read it: the OS text without Rust's "(os error N)".
pub fn io_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A connected socket, and how it got there (for `-v`).
pub struct Tcp {
    pub stream: TcpStream,
    /// The address actually connected to (a name may have several).
    pub addr: SocketAddr,
    /// Time for the TCP connect that succeeded (name resolution excluded).
    pub took: Duration,
}

/// Resolves and connects, trying every address the name has.
pub async fn connect_tcp(settings: &Settings) -> Result<Tcp> {
    let t = &settings.target;
    let work = async {
        let addrs: Vec<_> = tokio::net::lookup_host((t.host.as_str(), t.port))
            .await
            .map_err(|e| error::connect(format!("cannot resolve '{}': {}", t.host, io_text(&e))))?
            .collect();
        let mut last = None;
        for addr in &addrs {
            let start = Instant::now();
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    keepalive(&s);
                    return Ok(Tcp {
                        stream: s,
                        addr: *addr,
                        took: start.elapsed(),
                    });
                }
                Err(e) => {
                    if settings.verbose {
                        error::say(&format!(
                            "imaptalk: cannot connect to {addr}: {}",
                            io_text(&e)
                        ));
                    }
                    last = Some((addr, e));
                }
            }
        }
        Err(match last {
            Some((addr, e)) => error::connect(format!(
                "cannot connect to {} ({addr}): {}",
                t.display(),
                io_text(&e)
            )),
            None => error::connect(format!("cannot resolve '{}': no addresses", t.host)),
        })
    };
    match settings.timeout {
        Some(d) => tokio::time::timeout(d, work).await.map_err(|_| {
            error::connect(format!(
                "timed out after {} connecting to {}",
                secs(d),
                t.display()
            ))
        })?,
        None => work.await,
    }
}

/// TCP keepalive: idle time before the first probe, then the interval
/// and number of unanswered probes after which the connection is dead.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub const KEEPALIVE_RETRIES: u32 = 6;

/// Without keepalive, a read from a server that vanished (a NAT entry
/// expired, a host powered off) waits forever: nothing is ever sent that
/// could fail. With it, such a connection fails after about two minutes
/// of silence, with or without `--timeout`. Best effort: a platform that
/// refuses the option still works, it just cannot notice a dead peer.
fn keepalive(s: &TcpStream) {
    let params = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE);
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "windows"
    ))]
    let params = params
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    let _ = socket2::SockRef::from(s).set_tcp_keepalive(&params);
}

pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
    }
}

/// What a TLS handshake needs: the client configuration and the name to
/// verify. Built once, used for implicit TLS or for STARTTLS.
pub struct TlsSetup {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    name_text: String,
    recorder: Arc<Recorder>,
}

fn provider() -> Arc<CryptoProvider> {
    // Passed explicitly everywhere: if another crate ever enables a second
    // rustls provider, the implicit default would panic at runtime.
    Arc::new(ring::default_provider())
}

impl TlsSetup {
    pub fn new(settings: &Settings) -> Result<TlsSetup> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| error::connect(format!("TLS setup failed: {e}")))?;
        let inner: Arc<dyn ServerCertVerifier> = if settings.insecure {
            error::say(
                "imaptalk: warning: --insecure: the server's certificate is NOT verified; anyone on the path can read and change this session",
            );
            Arc::new(NoVerify {
                provider: provider.clone(),
                accept: true,
            })
        } else {
            let roots = roots(settings)?;
            if roots.is_empty() {
                // webpki refuses an empty store; the handshake must still
                // fail with "unknown authority", which names the fixes.
                Arc::new(NoVerify {
                    provider: provider.clone(),
                    accept: false,
                })
            } else {
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| error::connect(format!("TLS setup failed: {e}")))?
            }
        };
        let recorder = Arc::new(Recorder {
            inner,
            insecure: settings.insecure,
            seen: Mutex::new(None),
        });
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(recorder.clone())
            .with_no_client_auth();
        let host = settings.servername.clone();
        let name = ServerName::try_from(host.clone())
            .map_err(|_| error::usage(format!("'{host}' is not a valid TLS server name")))?;
        Ok(TlsSetup {
            config: Arc::new(config),
            name,
            name_text: host,
            recorder,
        })
    }

    /// What the last handshake showed: the chain the server sent and the
    /// verdict on it, even when the handshake failed because of it.
    pub fn take_presented(&self) -> Option<Presented> {
        self.recorder
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The name verified against the certificate.
    pub fn name(&self) -> &str {
        &self.name_text
    }
}

/// The certificate chain a server presented, as sent (leaf first).
#[derive(Debug, Clone)]
pub struct Presented {
    pub chain: Vec<CertificateDer<'static>>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Chained to a trusted root, valid now, and valid for the name.
    Trusted,
    /// `--insecure`: not checked.
    Unchecked,
    /// Rejected, and why.
    Rejected(String),
}

/// Wraps the real verifier to keep what it saw: `-v` and `--show-certs`
/// show the chain even when verification fails (that is when people most
/// want to see it), and the error alone does not carry it.
#[derive(Debug)]
struct Recorder {
    inner: Arc<dyn ServerCertVerifier>,
    insecure: bool,
    seen: Mutex<Option<Presented>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result =
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        let verdict = match (&result, self.insecure) {
            (Ok(_), true) => Verdict::Unchecked,
            (Ok(_), false) => Verdict::Trusted,
            (Err(rustls::Error::InvalidCertificate(c)), _) => Verdict::Rejected(cert_problem(c)),
            (Err(e), _) => Verdict::Rejected(e.to_string()),
        };
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Presented { chain, verdict });
        result
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// The system's roots plus `--cafile`. Roots that fail to load are a
/// warning; only an empty store is an error.
fn roots(settings: &Settings) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        error::say(&format!(
            "imaptalk: warning: some system certificates could not be loaded: {e}"
        ));
    }
    store.add_parsable_certificates(native.certs);
    if let Some(path) = &settings.cafile {
        let shown = path.display();
        let mut added = 0;
        let iter = CertificateDer::pem_file_iter(path)
            .map_err(|e| error::usage(format!("--cafile {shown}: {e}")))?;
        for cert in iter {
            let cert = cert.map_err(|e| error::usage(format!("--cafile {shown}: {e}")))?;
            store
                .add(cert)
                .map_err(|e| error::usage(format!("--cafile {shown}: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(error::usage(format!(
                "--cafile {shown}: no PEM certificates in the file"
            )));
        }
    }
    if store.is_empty() {
        // Go on: the handshake then fails with "unknown authority", which
        // says what is wrong, and --insecure/--cafile are the fixes.
        error::say("imaptalk: warning: no trusted CA certificates found on this system");
    }
    Ok(store)
}

/// The TLS handshake on a connected socket, with readable errors.
pub async fn handshake(
    tcp: TcpStream,
    tls: &TlsSetup,
    timeout: Option<Duration>,
) -> Result<TlsStream<TcpStream>> {
    let connector = TlsConnector::from(tls.config.clone());
    let fut = connector.connect(tls.name.clone(), tcp);
    let result = match timeout {
        Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| {
            error::connect(format!(
                "timed out after {} in the TLS handshake with '{}'",
                secs(d),
                tls.name_text
            ))
        })?,
        None => fut.await,
    };
    result.map_err(|e| error::connect(handshake_error(&e, &tls.name_text)))
}

const CERT_HINT: &str = "(use --cafile FILE to trust its CA, or --insecure to skip verification)";

fn handshake_error(e: &io::Error, name: &str) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return format!(
                "TLS handshake with '{name}' failed: the server closed the connection (is this port plaintext? try --starttls or without --tls)"
            );
        }
        return format!("TLS handshake with '{name}' failed: {}", io_text(e));
    };
    match tls {
        rustls::Error::InvalidCertificate(c) => {
            format!(
                "certificate of '{name}' rejected: {} {CERT_HINT}",
                cert_problem(c)
            )
        }
        rustls::Error::InvalidMessage(_) => format!(
            "TLS handshake with '{name}' failed: the server did not answer with TLS ({tls}); is this a plaintext port? try --starttls or drop --tls"
        ),
        other => format!("TLS handshake with '{name}' failed: {other}"),
    }
}

fn cert_problem(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => "issued by an unknown authority".into(),
        CertificateError::Expired => "expired".into(),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "expired on {} (now {})",
            date(not_after.as_secs()),
            date(time.as_secs())
        ),
        CertificateError::NotValidYet => "not valid yet".into(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("not valid before {}", date(not_before.as_secs()))
        }
        CertificateError::NotValidForName => "not valid for this name".into(),
        CertificateError::NotValidForNameContext { presented, .. } => {
            let names: Vec<String> = presented.iter().map(|p| presented_name(p)).collect();
            if names.is_empty() {
                "name mismatch: it names no host".into()
            } else {
                format!("name mismatch: it is only valid for {}", names.join(", "))
            }
        }
        CertificateError::Revoked => "revoked".into(),
        CertificateError::BadSignature => "bad signature".into(),
        other => format!("{other:?}"),
    }
}

/// webpki describes names as `DnsName("x")` / `IpAddress(1.2.3.4)`;
/// users want `x` and `1.2.3.4`.
fn presented_name(p: &str) -> String {
    let inner = p
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(p);
    inner.trim_matches('"').to_string()
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`, without a date crate.
pub fn date(secs: u64) -> String {
    let (y, m, d, h, mi, s) = civil(secs);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// A Unix time as (year, month, day, hour, minute, second) in UTC.
pub fn civil(secs: u64) -> (i64, i64, i64, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `--insecure`: accept any certificate, but still check the handshake
/// signatures, so only the trust decision is skipped. With `accept` false
/// (no trusted roots at all), every certificate has an unknown issuer.
#[derive(Debug)]
struct NoVerify {
    provider: Arc<CryptoProvider>,
    accept: bool,
}

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.accept {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::date(1_798_761_599), "2026-12-31 23:59:59 UTC");
    }
}
