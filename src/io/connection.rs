//! The [`Connection`] that owns the socket (plain, TLS, compressed) and
//! the framer: reading, sending (queued under `--pipeline`), the STARTTLS
//! and COMPRESS switches, the transcript of what passed.

use super::READ_SIZE;
use super::compress::{Deflate, Stats};
use super::tls::{ClientTls, TlsInfo, TlsSetup, Via, handshake_via, tls_info};
use super::transcript::{Sending, Transcript};
use crate::error;
use crate::platform::net::set_recv_lowat;
use crate::protocol::framer::{Event, FrameError, Framer};
use crate::text::{io_text, secs};
use anyhow::Result;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The socket, plain or encrypted, and maybe compressed (COMPRESS=DEFLATE).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<ClientTls>),
    Deflate(Box<Deflate<Stream>>),
}

impl Stream {
    /// The TCP socket underneath, and whether what arrives on it is at
    /// least as long as what it carries (not so once compressed).
    fn socket(&self) -> (&TcpStream, bool) {
        match self {
            Stream::Plain(s) => (s, true),
            Stream::Tls(s) => (s.get_ref().0.get_ref(), true),
            Stream::Deflate(d) => (d.get_ref().socket().0, false),
        }
    }

    fn tls(&self) -> Option<&ClientTls> {
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
    /// What the session asked to send, written in one go after each batch
    /// of its actions: a run of pipelined commands costs one system call
    /// (and one TLS record).
    queued: Vec<u8>,
    /// How a read that came after others in the same [`fill`](Self::fill)
    /// ended (the end of the stream, an error): the bytes before it are
    /// framed first, and the next `fill` reports it.
    deferred: Option<io::Result<usize>>,
    mark: WakeMark,
}

/// While a long literal is read, the reader is woken only once a good
/// part of a read has arrived (`SO_RCVLOWAT`) instead of for every few KiB
/// the network hands over: on a quiet machine each wake-up of a sleeping
/// process costs tens of microseconds. The mark never asks for more than
/// the literal still to come, which the server must send, so it cannot
/// stall a read (a close or an error wakes it too), and the reader drops
/// it ([`lower`](Self::lower)) after [`MARK_PATIENCE`] without a wake-up.
pub struct WakeMark {
    /// The socket's mark now.
    mark: usize,
    /// Lowered after waiting in vain: not raised again until something
    /// was read.
    resting: bool,
}

/// The most a read waits to be woken for while a literal comes: one read.
/// (Over TLS, 256 MiB: client CPU 1.0 s with no mark, 0.55 s at 64 KiB,
/// 0.45 s at 128 KiB; more saved nothing.)
const MARK_MAX: usize = READ_SIZE;
/// Below this a raised mark saves too few wake-ups to be worth the system
/// call that sets it.
const MARK_MIN: usize = 16 * 1024;
/// Over TLS, bytes of the literal may already sit in rustls as part of a
/// record not yet whole (at most one record: 16 KiB of plaintext plus its
/// overhead), and will not be on the socket again.
const TLS_SLACK: usize = 16 * 1024 + 2048 + 5;
/// A raised mark is dropped after this long without a wake-up: a server
/// that sends slowly (or stops in the middle of a literal) is shown as it
/// comes, not only once a read's worth has piled up.
pub const MARK_PATIENCE: Duration = Duration::from_millis(20);

impl Default for WakeMark {
    fn default() -> Self {
        WakeMark {
            mark: 1,
            resting: false,
        }
    }
}

impl WakeMark {
    /// Sets the mark for a read from `stream` while `unreceived` bytes of a
    /// literal are still to come ([`Framer::literal_unreceived`]). True
    /// when a raised mark is in force: the reader must then not wait
    /// longer than [`MARK_PATIENCE`] before it calls [`lower`](Self::lower).
    pub fn update(&mut self, stream: &Stream, unreceived: u64) -> bool {
        if self.resting {
            return false;
        }
        let (socket, whole) = stream.socket();
        let unreceived = usize::try_from(unreceived).unwrap_or(usize::MAX);
        let slack = if stream.tls().is_some() { TLS_SLACK } else { 0 };
        let mark = match unreceived.saturating_sub(slack).min(MARK_MAX) {
            n if whole && n >= MARK_MIN => n,
            _ => 1,
        };
        if mark != self.mark && set_recv_lowat(socket, mark) {
            self.mark = mark;
        }
        self.mark > 1
    }

    /// Back to the default mark, which wakes a waiting read at once if
    /// anything at all has arrived.
    pub fn lower(&mut self, stream: &Stream) {
        if self.mark > 1 {
            let _ = set_recv_lowat(stream.socket().0, 1);
            self.mark = 1;
            self.resting = true;
        }
    }

    /// Something was read: the next wait may raise the mark again.
    pub fn read(&mut self) {
        self.resting = false;
    }
}

impl Connection {
    pub fn new(stream: Stream, peer: String) -> Connection {
        Connection {
            stream: Some(stream),
            framer: Framer::new(),
            peer,
            eof: false,
            log: None,
            send_timeout: None,
            queued: Vec::new(),
            deferred: None,
            mark: WakeMark::default(),
        }
    }

    pub fn set_send_timeout(&mut self, timeout: Option<Duration>) {
        self.send_timeout = timeout;
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
        let got = match self.deferred.take() {
            Some(r) => r,
            None => {
                let stream = self
                    .stream
                    .as_mut()
                    .ok_or_else(|| error::lost("connection already closed"))?;
                let patient = self.mark.update(stream, self.framer.literal_unreceived());
                let buf = self.framer.buffer_mut();
                let got = if patient {
                    // read_ready is cancel-safe: a read given up has read
                    // nothing.
                    match tokio::time::timeout(
                        MARK_PATIENCE,
                        read_ready(stream, buf, &mut self.deferred),
                    )
                    .await
                    {
                        Ok(r) => r,
                        Err(_) => {
                            self.mark.lower(stream);
                            read_ready(stream, self.framer.buffer_mut(), &mut self.deferred).await
                        }
                    }
                } else {
                    read_ready(stream, buf, &mut self.deferred).await
                };
                self.mark.read();
                got
            }
        };
        let n = match got {
            Ok(n) => n,
            // Servers often close after BYE without a TLS close_notify: the
            // caller decides whether that end was expected.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) if super::tls::late_alert(&e).is_some() => {
                let why = super::tls::late_alert(&e).unwrap_or_default();
                return Err(error::connect(format!(
                    "TLS with {} failed: {why}",
                    self.peer
                )));
            }
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

    /// Queues bytes for the next [`send_queued`](Self::send_queued),
    /// telling the transcript what they are. The caller flushes.
    pub fn queue(&mut self, bytes: &[u8], sending: Sending<'_>) {
        if let Some(log) = &mut self.log {
            log.client(bytes, sending);
        }
        self.queued.extend_from_slice(bytes);
    }

    /// Bytes are queued and not yet written.
    pub fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    /// Writes out whatever [`queue`](Self::queue) queued.
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
        let tls_stream = handshake_via(tcp, tls, timeout, Via::StartTls).await?;
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

/// Reads what the server has sent: waits for the first bytes, then takes
/// whatever else is already there without waiting, up to about
/// [`READ_SIZE`]. Over TLS one read returns one record (at most 16 KiB of
/// plaintext, fed to rustls 4 KiB at a time), so without this a bulk
/// literal went through the whole session loop — select, framer, output
/// flush — every 16 KiB, each time a write to stdout and a wake-up of the
/// runtime, while the server's bytes waited in the socket. Ready(Ok(0))
/// is the end of the stream. Cancel-safe: pending means nothing was read.
/// An end or an error after some bytes is kept in `deferred` for the next
/// call, so that the bytes before it are framed first.
async fn read_ready(
    stream: &mut Stream,
    buf: &mut bytes::BytesMut,
    deferred: &mut Option<io::Result<usize>>,
) -> io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut total = 0;
        loop {
            if buf.capacity() - buf.len() < READ_SIZE / 4 {
                buf.reserve(READ_SIZE);
            }
            let read = {
                let fut = std::pin::pin!(stream.read_buf(buf));
                std::future::Future::poll(fut, cx)
            };
            match read {
                Poll::Ready(Ok(n)) if n > 0 => {
                    total += n;
                    if total >= READ_SIZE {
                        return Poll::Ready(Ok(total));
                    }
                }
                Poll::Ready(end) if total == 0 => return Poll::Ready(end),
                Poll::Ready(end) => {
                    *deferred = Some(end);
                    return Poll::Ready(Ok(total));
                }
                Poll::Pending if total == 0 => return Poll::Pending,
                Poll::Pending => return Poll::Ready(Ok(total)),
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that sends its last lines and closes at once: the lines
    /// arrive in the same read as the end of the stream, and must still
    /// be framed before the end is reported.
    #[test]
    fn bytes_read_together_with_the_end_are_framed_first() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let body = vec![b'x'; 3 * READ_SIZE];
                let mut bytes = format!("* 1 FETCH (BODY[] {{{}}}\r\n", body.len()).into_bytes();
                bytes.extend_from_slice(&body);
                bytes.extend_from_slice(b")\r\n* BYE bye\r\n");
                s.write_all(&bytes).await.unwrap();
                s.shutdown().await.unwrap();
            });
            let tcp = TcpStream::connect(addr).await.unwrap();
            server.await.unwrap();
            let mut conn = Connection::new(Stream::Plain(tcp), addr.to_string());
            let mut literal = 0;
            let mut lines = Vec::new();
            let mut fills = 0;
            loop {
                let more = conn.fill().await.unwrap();
                while let Some(ev) = conn.next_event().unwrap() {
                    match ev {
                        Event::Literal { data, .. } => literal += data.len(),
                        Event::Line { data, .. } => lines.push(data.to_vec()),
                    }
                }
                if !more {
                    break;
                }
                fills += 1;
                // Each read takes what is there, up to about READ_SIZE.
                assert!(conn.framer.buffer_mut().capacity() <= 3 * READ_SIZE);
            }
            assert_eq!(literal, 3 * READ_SIZE);
            assert_eq!(lines.last().map(Vec::as_slice), Some(&b"* BYE bye\r\n"[..]));
            // Taken in READ_SIZE pieces, not 16 KiB ones.
            assert!(fills <= 5, "{fills} reads");
            assert!(!conn.fill().await.unwrap());
        });
    }
}
