//! The `--log` records of one proxied connection, written in two places so
//! that a bulk FETCH is not formatted on the thread that forwards it.
//!
//! What the client sends, and imaptalk's own events, are formatted where
//! they happen, on the connection's task: that is where secrets are known
//! and masked, and it is little. The server's side — a 256 MiB literal is
//! millions of records — is handed over as its events (the data copied, so
//! that the read buffers are not held) and formatted by the output thread,
//! on the other core, while the connection forwards the next chunk. Both
//! kinds go over in one ordered batch, so the records stay in the order of
//! the conversation; each server event carries the time it arrived.

use crate::io::transcript::{Literals, Transcript};
use crate::protocol::client_framer;
use crate::protocol::framer::Event;
use bytes::Bytes;
use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::SystemTime;

/// A batch is handed over once it holds this much (so it holds less than
/// twice this). With the output queue's 64 messages, at most 4 MiB of
/// copied data are in flight whatever the size of a literal (batches of
/// whole 128 KiB reads took the proxy's peak RSS over 16 MiB).
const BATCH: usize = 32 * 1024;

/// The output's buffers. The output thread's records are handed to them
/// once they fill one (not a batch's worth), so that `BufWriter` writes
/// them straight out instead of copying them first (memmove was a tenth
/// of the thread's time for a bulk literal, this copy part of it).
pub const OUTPUT_BUFFER: usize = 64 * 1024;

/// A piece of a batch.
pub enum Piece {
    /// Records formatted already.
    Records(Vec<u8>),
    /// A server event to be recorded, with the time it arrived.
    Server(SystemTime, Event),
}

/// What a connection hands the output thread.
pub struct Batch {
    /// The connection: its number, the label of its records.
    pub n: u64,
    pub label: String,
    pub literals: Literals,
    pub pieces: Vec<Piece>,
    /// The connection ended: the output thread forgets it.
    pub last: bool,
}

/// How a connection hands its batches to the output thread (through the
/// output's channel, whose bound makes a connection wait for a slow
/// output); an error means the output has ended.
pub type Handover = Box<dyn Fn(Batch) -> Result<(), ()>>;

/// The batch being filled, shared by the connection's records and the
/// writer its client-side transcript writes to.
struct Pending {
    send: Handover,
    batch: Batch,
    size: usize,
}

impl Pending {
    fn hand_over(&mut self, last: bool) -> io::Result<()> {
        if self.batch.pieces.is_empty() && !last {
            return Ok(());
        }
        let batch = Batch {
            n: self.batch.n,
            label: self.batch.label.clone(),
            literals: self.batch.literals,
            pieces: std::mem::take(&mut self.batch.pieces),
            last,
        };
        self.size = 0;
        (self.send)(batch)
            .map_err(|()| io::Error::new(io::ErrorKind::BrokenPipe, "the output has ended"))
    }

    fn push(&mut self, piece: Piece, len: usize) -> io::Result<()> {
        self.batch.pieces.push(piece);
        self.size += len;
        if self.size >= BATCH {
            self.hand_over(false)?;
        }
        Ok(())
    }
}

/// Where the client-side transcript writes: the shared batch.
struct ToBatch(Rc<RefCell<Pending>>);

impl Write for ToBatch {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut p = self.0.borrow_mut();
        if let Some(Piece::Records(r)) = p.batch.pieces.last_mut() {
            r.extend_from_slice(buf);
            p.size += buf.len();
            if p.size >= BATCH {
                p.hand_over(false)?;
            }
        } else {
            p.push(Piece::Records(buf.to_vec()), buf.len())?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().hand_over(false)
    }
}

/// The records of one connection, as its task writes them.
pub struct Records {
    client: Transcript,
    pending: Rc<RefCell<Pending>>,
    literals: Literals,
    /// The output has ended: nothing more is handed over.
    gone: bool,
}

impl Records {
    pub fn new(send: Handover, n: u64, literals: Literals) -> Records {
        let label = format!("#{n}");
        let pending = Rc::new(RefCell::new(Pending {
            send,
            batch: Batch {
                n,
                label: label.clone(),
                literals,
                pieces: Vec::new(),
                last: false,
            },
            size: 0,
        }));
        let client = Transcript::to_writer(
            Box::new(ToBatch(pending.clone())),
            literals,
            "the output".to_string(),
        )
        .labelled(&label);
        Records {
            client,
            pending,
            literals,
            gone: false,
        }
    }

    pub fn event(&mut self, text: &str) {
        self.client.event(text);
    }

    pub fn client_event(&mut self, ev: &client_framer::Event, shown: Option<&str>) {
        self.client.client_event(ev, shown);
    }

    pub fn server(&mut self, ev: &Event) {
        if self.gone {
            return;
        }
        let now = SystemTime::now();
        let mut pending = self.pending.borrow_mut();
        let pushed = match ev {
            // Sizes only: the data of a literal is not recorded at all.
            Event::Literal { .. } if self.literals == Literals::Size => return,
            // A read's chunk (128 KiB or more) goes in pieces of a batch
            // at most, so that what waits for the output thread stays
            // within the bound above.
            Event::Literal { data, remaining } => {
                let mut r = Ok(());
                let mut left = data.len();
                for piece in data.chunks(BATCH) {
                    left -= piece.len();
                    let ev = Event::Literal {
                        data: Bytes::copy_from_slice(piece),
                        remaining: remaining + left as u64,
                    };
                    r = pending.push(Piece::Server(now, ev), piece.len());
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
            Event::Line { data, head, end } => {
                let ev = Event::Line {
                    data: Bytes::copy_from_slice(data),
                    head: head.clone(),
                    end: *end,
                };
                pending.push(Piece::Server(now, ev), data.len())
            }
        };
        if pushed.is_err() {
            self.gone = true;
        }
    }

    /// Hands over what is waiting (the connection is about to wait).
    pub fn flush(&mut self) {
        self.client.flush();
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        self.client.flush();
        let _ = self.pending.borrow_mut().hand_over(true);
    }
}

/// The output thread's side: the server-side transcript of each
/// connection, formatting into one buffer that the thread writes out.
#[derive(Default)]
pub struct Formatter {
    servers: std::collections::HashMap<u64, Transcript>,
    out: Rc<RefCell<Vec<u8>>>,
}

/// Where the output thread's transcripts write.
struct ToBuffer(Rc<RefCell<Vec<u8>>>);

impl Write for ToBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Formatter {
    /// Hands `write` the records formatted and not yet given out: before
    /// anything else is written, and before the output waits.
    pub fn write_out(&mut self, mut write: impl FnMut(&[u8])) {
        let mut buf = self.out.borrow_mut();
        if !buf.is_empty() {
            write(&buf);
            buf.clear();
        }
    }

    /// The records of a batch, in order, given to `write` a buffer's worth
    /// at a time; [`Formatter::write_out`] gives out the rest.
    pub fn batch(&mut self, batch: Batch, mut write: impl FnMut(&[u8])) {
        for piece in batch.pieces {
            match piece {
                Piece::Records(r) => {
                    // Server records formatted before these go first.
                    let mut buf = self.out.borrow_mut();
                    write(&buf);
                    buf.clear();
                    write(&r);
                }
                Piece::Server(t, ev) => {
                    let out = &self.out;
                    let transcript = self.servers.entry(batch.n).or_insert_with(|| {
                        Transcript::to_writer(
                            Box::new(ToBuffer(out.clone())),
                            batch.literals,
                            "the output".to_string(),
                        )
                        .labelled(&batch.label)
                    });
                    transcript.at(t);
                    transcript.server(&ev);
                    let mut buf = self.out.borrow_mut();
                    if buf.len() >= OUTPUT_BUFFER {
                        write(&buf);
                        buf.clear();
                    }
                }
            }
        }
        if batch.last {
            self.servers.remove(&batch.n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::client_framer::ClientFramer;
    use crate::protocol::framer::Framer;
    use std::sync::mpsc::{Receiver, sync_channel};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A client command, then the server's answer with a literal of
    /// `size` bytes, read in pieces of 100,000 bytes (more than a batch),
    /// each side's events fed as a connection task would.
    fn converse(
        size: usize,
        mut client: impl FnMut(&client_framer::Event),
        mut server: impl FnMut(&Event),
    ) {
        let mut cf = ClientFramer::new();
        cf.buffer_mut().extend_from_slice(b"a1 FETCH 1 BODY[]\r\n");
        while let Some(ev) = cf.next_event().unwrap() {
            client(&ev);
        }
        let mut answer = format!("* 1 FETCH (BODY[] {{{size}}}\r\n").into_bytes();
        answer.extend((0..size).map(|i| {
            if i % 50 == 49 {
                b'\n'
            } else {
                b'a' + (i % 26) as u8
            }
        }));
        answer.extend_from_slice(b")\r\na1 OK done\r\n");
        let mut f = Framer::new();
        for piece in answer.chunks(100_000) {
            f.buffer_mut().extend_from_slice(piece);
            while let Some(ev) = f.next_event().unwrap() {
                server(&ev);
            }
        }
    }

    /// A channel of batches, as the output's carries them.
    fn channel(bound: usize) -> (Handover, Receiver<Batch>) {
        let (tx, rx) = sync_channel(bound);
        (Box::new(move |b| tx.send(b).map_err(|_| ())), rx)
    }

    fn drain(rx: &Receiver<Batch>, formatter: &mut Formatter) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut sizes = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            let mut size = 0;
            for p in &batch.pieces {
                size += match p {
                    Piece::Records(r) => r.len(),
                    Piece::Server(_, Event::Line { data, .. } | Event::Literal { data, .. }) => {
                        data.len()
                    }
                };
            }
            sizes.push(size);
            formatter.batch(batch, |r| out.extend_from_slice(r));
        }
        formatter.write_out(|r| out.extend_from_slice(r));
        (out, sizes)
    }

    fn without_stamps(bytes: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(|l| l.split_once(' ').unwrap().1.to_string())
            .collect()
    }

    #[test]
    fn records_are_those_one_transcript_writes_in_the_same_order() {
        for literals in [Literals::Full, Literals::Size] {
            let expected = Shared::default();
            {
                let mut t = Transcript::to_writer(Box::new(expected.clone()), literals, "t".into())
                    .labelled("#7");
                let t = RefCell::new(&mut t);
                t.borrow_mut().event("accept 127.0.0.1:1");
                converse(
                    300_000,
                    |ev| t.borrow_mut().client_event(ev, None),
                    |ev| t.borrow_mut().server(ev),
                );
                t.borrow_mut().event("close by client");
            }
            let (tx, rx) = channel(1024);
            let mut formatter = Formatter::default();
            {
                let records = RefCell::new(Records::new(tx, 7, literals));
                records.borrow_mut().event("accept 127.0.0.1:1");
                converse(
                    300_000,
                    |ev| records.borrow_mut().client_event(ev, None),
                    |ev| records.borrow_mut().server(ev),
                );
                records.borrow_mut().event("close by client");
            }
            let (got, sizes) = drain(&rx, &mut formatter);
            let expected = expected.0.lock().unwrap().clone();
            let (got, expected) = (without_stamps(&got), without_stamps(&expected));
            let first = got.iter().zip(&expected).position(|(a, b)| a != b);
            assert!(
                first.is_none() && got.len() == expected.len(),
                "{literals:?}: {} and {} records, first difference at {first:?}: {:?} / {:?}",
                got.len(),
                expected.len(),
                first.and_then(|i| got.get(i)),
                first.and_then(|i| expected.get(i)),
            );
            assert!(got.len() > 3, "{literals:?}");
            // Handed over in bounded batches; sizes only: no literal data.
            assert!(sizes.iter().all(|&s| s < 2 * BATCH), "{sizes:?}");
            if literals == Literals::Size {
                assert!(sizes.iter().sum::<usize>() < 1000, "{sizes:?}");
            }
            // The connection ended: the output thread forgot it.
            assert!(formatter.servers.is_empty());
        }
    }

    #[test]
    fn a_server_record_has_the_time_it_arrived() {
        let (tx, rx) = channel(16);
        let mut records = Records::new(tx, 1, Literals::Full);
        let mut f = Framer::new();
        f.buffer_mut().extend_from_slice(b"* OK hello\r\n");
        let ev = f.next_event().unwrap().unwrap();
        records.server(&ev);
        records.flush();
        let Ok(mut batch) = rx.try_recv() else {
            panic!("no batch")
        };
        // As if it had arrived in 2001.
        let then = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        if let Some(Piece::Server(t, _)) = batch.pieces.first_mut() {
            *t = then;
        }
        let mut out = Vec::new();
        let mut formatter = Formatter::default();
        formatter.batch(batch, |r| out.extend_from_slice(r));
        formatter.write_out(|r| out.extend_from_slice(r));
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("2001-09-09T01:46:40.000Z #1 S: * OK hello"),
            "{text}"
        );
    }
}
