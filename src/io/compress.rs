//! COMPRESS=DEFLATE (RFC 4978): the [`Deflate`] layer that sits between the
//! socket and the framer once the server answered `COMPRESS DEFLATE` with
//! OK, and [`Auto`], which sends that command after login for `--compress`.
//!
//! Both directions are raw deflate (no zlib header). Every write the
//! session makes is followed by a flush, which here is a deflate sync flush:
//! the server can decompress each command as soon as it arrives. Unlike
//! STARTTLS, bytes that arrived in the same read as the OK are not an
//! attack: they are the server's first compressed bytes, and they are the
//! first input of the decompressor.

use crate::io::READ_SIZE;
use crate::text::size;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Compressed output waiting for the socket beyond which a write waits for
/// it to drain first, so a slow server cannot make it grow.
const OUTPUT_HIGH: usize = 256 * 1024;

/// A stream whose bytes are deflated on the way out and inflated on the
/// way in.
pub struct Deflate<S> {
    inner: S,
    inflate: Decompress,
    deflate: Compress,
    /// Compressed bytes received and not yet inflated, from `start`.
    input: Vec<u8>,
    start: usize,
    /// Compressed bytes not yet written to the socket, from `written`.
    output: Vec<u8>,
    written: usize,
    /// Data was deflated since the last sync flush.
    unflushed: bool,
    /// The server ended its deflate stream (a final block).
    ended: bool,
}

/// Bytes on the wire and bytes of protocol, each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub wire_in: u64,
    pub protocol_in: u64,
    pub wire_out: u64,
    pub protocol_out: u64,
}

impl Stats {
    /// `received 1.18 MiB for 4.71 MiB of protocol (25%), sent …`
    pub fn describe(&self) -> String {
        format!(
            "COMPRESS=DEFLATE: received {} on the wire for {} of protocol ({}), sent {} for {} ({})",
            size(self.wire_in),
            size(self.protocol_in),
            ratio(self.wire_in, self.protocol_in),
            size(self.wire_out),
            size(self.protocol_out),
            ratio(self.wire_out, self.protocol_out),
        )
    }
}

fn ratio(wire: u64, protocol: u64) -> String {
    if protocol == 0 {
        "-".to_string()
    } else {
        format!("{:.0}%", wire as f64 * 100.0 / protocol as f64)
    }
}

fn corrupt(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the server's compressed data is corrupt ({e})"),
    )
}

impl<S> Deflate<S> {
    /// `already`: bytes received after the COMPRESS OK, before this layer
    /// existed; they are the start of the compressed stream.
    pub fn new(inner: S, already: Vec<u8>) -> Deflate<S> {
        Deflate {
            inner,
            inflate: Decompress::new(false),
            deflate: Compress::new(Compression::default(), false),
            input: already,
            start: 0,
            output: Vec::new(),
            written: 0,
            unflushed: false,
            ended: false,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn stats(&self) -> Stats {
        Stats {
            wire_in: self.inflate.total_in(),
            protocol_in: self.inflate.total_out(),
            wire_out: self.deflate.total_out(),
            protocol_out: self.deflate.total_in(),
        }
    }

    /// Inflates buffered input into `dst`; returns how much was produced
    /// (0: more input is needed).
    fn inflate_into(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        loop {
            let pending = &self.input[self.start..];
            if self.ended {
                if pending.is_empty() {
                    return Ok(0);
                }
                return Err(corrupt("data after the end of the compressed stream"));
            }
            // Called with no input too: the decompressor may hold output
            // that did not fit into the previous `dst`.
            let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
            // The output is bounded by `dst`, never by what the data
            // claims: a decompression bomb costs time, not memory.
            let status = self
                .inflate
                .decompress(pending, dst, FlushDecompress::None)
                .map_err(corrupt)?;
            let consumed = (self.inflate.total_in() - in_before) as usize;
            let produced = (self.inflate.total_out() - out_before) as usize;
            self.start += consumed;
            if self.start == self.input.len() {
                self.input.clear();
                self.start = 0;
            }
            if status == Status::StreamEnd {
                self.ended = true;
            }
            if produced > 0 || consumed == 0 {
                return Ok(produced);
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflate<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            let n = this.inflate_into(buf.initialize_unfilled())?;
            if n > 0 {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            // Keep what could not be inflated yet (a partial block) at the
            // front, and read more behind it.
            if this.start > 0 {
                this.input.drain(..this.start);
                this.start = 0;
            }
            let have = this.input.len();
            this.input.resize(have + READ_SIZE / 2, 0);
            let mut rb = ReadBuf::new(&mut this.input[have..]);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut rb);
            let got = rb.filled().len();
            this.input.truncate(have + got);
            ready!(polled)?;
            if got == 0 {
                // The server closed: the framer decides whether that end
                // was expected.
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflate<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.output.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.output[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.output.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Runs the compressor until it has taken all of `data` (`flush` None)
    /// or emitted everything it holds (`flush` Sync, with no data).
    fn deflate(&mut self, data: &[u8], flush: FlushCompress) -> io::Result<()> {
        let mut taken = 0;
        loop {
            self.output.reserve((data.len() - taken).max(4096));
            let room = self.output.capacity() - self.output.len();
            let (in_before, out_before) = (self.deflate.total_in(), self.deflate.total_out());
            self.deflate
                .compress_vec(&data[taken..], &mut self.output, flush)
                .map_err(io::Error::other)?;
            taken += (self.deflate.total_in() - in_before) as usize;
            let produced = (self.deflate.total_out() - out_before) as usize;
            // Done when all input is taken and the output did not fill the
            // room it had (a full buffer may mean more is waiting).
            if taken == data.len() && produced < room {
                return Ok(());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.output.len() - this.written >= OUTPUT_HIGH {
            ready!(this.poll_drain(cx))?;
        }
        this.deflate(data, FlushCompress::None)?;
        this.unflushed |= !data.is_empty();
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unflushed {
            // Only once per flush: every sync flush adds an empty block.
            this.deflate(&[], FlushCompress::Sync)?;
            this.unflushed = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn deflate_sync(chunks: &[&[u8]]) -> Vec<u8> {
        let mut c = Compress::new(Compression::default(), false);
        let mut out = Vec::with_capacity(1 << 20);
        for chunk in chunks {
            c.compress_vec(chunk, &mut out, FlushCompress::Sync)
                .unwrap();
        }
        out
    }

    fn inflate_all(data: &[u8]) -> Vec<u8> {
        let mut d = Decompress::new(false);
        let mut out = Vec::with_capacity(8 << 20);
        d.decompress_vec(data, &mut out, FlushDecompress::Sync)
            .unwrap();
        out
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn buffered_bytes_are_the_start_of_the_stream() {
        runtime().block_on(async {
            let wire = deflate_sync(&[b"* 1 EXISTS\r\n", b"a2 OK done\r\n"]);
            let (already, later) = wire.split_at(5);
            let (mut server, client) = tokio::io::duplex(64);
            let mut d = Deflate::new(client, already.to_vec());
            server.write_all(later).await.unwrap();
            drop(server);
            let mut got = Vec::new();
            d.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"* 1 EXISTS\r\na2 OK done\r\n");
            assert_eq!(d.stats().wire_in, wire.len() as u64);
            assert_eq!(d.stats().protocol_in, got.len() as u64);
        });
    }

    #[test]
    fn every_flush_makes_what_was_written_decompressible() {
        runtime().block_on(async {
            let (mut server, client) = tokio::io::duplex(1 << 20);
            let mut d = Deflate::new(client, Vec::new());
            let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
            for part in [&b"a1 NOOP\r\n"[..], &big, b"\r\n"] {
                d.write_all(part).await.unwrap();
                d.flush().await.unwrap();
            }
            let mut wire = vec![0; 1 << 20];
            let mut n = 0;
            while let Ok(Ok(k)) = tokio::time::timeout(
                std::time::Duration::from_millis(50),
                server.read(&mut wire[n..]),
            )
            .await
            {
                if k == 0 {
                    break;
                }
                n += k;
            }
            // A sync flush ends with an empty stored block.
            assert!(wire[..n].ends_with(&[0, 0, 0xff, 0xff]));
            let mut want = b"a1 NOOP\r\n".to_vec();
            want.extend_from_slice(&big);
            want.extend_from_slice(b"\r\n");
            assert_eq!(inflate_all(&wire[..n]), want);
            let s = d.stats();
            assert_eq!((s.protocol_out, s.wire_out), (want.len() as u64, n as u64));
        });
    }

    #[test]
    fn corrupt_input_is_an_error_and_a_bomb_stays_bounded() {
        runtime().block_on(async {
            let (_server, client) = tokio::io::duplex(64);
            let mut d = Deflate::new(client, b"\xff\xff\xff\xff garbage".to_vec());
            let mut buf = [0u8; 64];
            let e = d.read(&mut buf).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            assert!(e.to_string().contains("corrupt"), "{e}");

            // 64 MiB of zeros compress to about 64 KiB; reading it through a
            // 4 KiB buffer never needs more than that buffer.
            let zeros = vec![0u8; 64 << 20];
            let mut wire = deflate_sync(&[&zeros]);
            wire.shrink_to_fit();
            assert!(wire.len() < 100_000);
            let (_server, client) = tokio::io::duplex(64);
            let mut d = Deflate::new(client, wire);
            let mut buf = [0u8; 4096];
            let mut total = 0;
            while total < zeros.len() {
                let n = d.read(&mut buf).await.unwrap();
                assert!(n > 0);
                total += n;
            }
            assert!(d.input.capacity() < 200_000);
        });
    }

    /// What the session does with each response's first line.
    #[test]
    fn stats_read_well() {
        let s = Stats {
            wire_in: 1_234_567,
            protocol_in: 4_938_268,
            wire_out: 60,
            protocol_out: 120,
        };
        assert_eq!(
            s.describe(),
            "COMPRESS=DEFLATE: received 1.18 MiB on the wire for 4.71 MiB of protocol (25%), sent 60 bytes for 120 bytes (50%)"
        );
    }
}
