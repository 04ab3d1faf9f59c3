//! Where every connection's view goes: one thread owns stdout and the
//! `--log` file, so that the lines of connections served at once never
//! mix within a line, and a slow terminal slows the connections down
//! (a bounded channel) instead of filling memory.

use super::records::OUTPUT_BUFFER;
use crate::error;
use crate::text::io_text;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What a connection hands the output thread: whole lines only.
pub enum Msg {
    /// Terminal text (one or more complete lines), for stdout on a terminal.
    View(String),
    /// Transcript records (whole lines), for stdout when it is not a
    /// terminal and for the `--log` file.
    Record(Vec<u8>),
    /// A connection's records, some still to be formatted here.
    Log(super::records::Batch),
}

/// How many messages may wait before a connection has to: with batches
/// of records of 64 KiB, at most 4 MiB are in flight, whatever the size of
/// a literal (at 1024, a bulk literal in the records held 14 MiB at peak).
const QUEUE: usize = 64;

/// Why stdout stopped taking output; the proxy stops then.
#[derive(Default)]
pub struct Failure {
    pub notify: tokio::sync::Notify,
    error: Mutex<Option<io::Error>>,
}

impl Failure {
    /// The error that stopped stdout, once it happened.
    pub fn take(&self) -> Option<io::Error> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

pub struct Output {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
    pub failure: Arc<Failure>,
}

/// Where the records and the view go.
pub struct Targets {
    /// stdout is a terminal: it gets the view; otherwise the records.
    pub terminal: bool,
    /// `--log FILE`, opened, and its name for messages.
    pub file: Option<(File, String)>,
}

impl Output {
    pub fn start(targets: Targets) -> io::Result<Output> {
        let (tx, rx) = sync_channel(QUEUE);
        let failure = Arc::new(Failure::default());
        let f = failure.clone();
        let thread = std::thread::Builder::new()
            .name("imaptalk-output".into())
            .spawn(move || write_all(rx, targets, &f))?;
        Ok(Output {
            tx: Some(tx),
            thread: Some(thread),
            failure,
        })
    }

    pub fn sender(&self) -> Option<SyncSender<Msg>> {
        self.tx.clone()
    }

    /// Writes out everything sent so far and ends the thread; every
    /// sender must be gone (the connections ended).
    pub fn finish(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_all(rx: Receiver<Msg>, targets: Targets, failure: &Failure) {
    let mut out = Outputs {
        stdout: Some(BufWriter::with_capacity(OUTPUT_BUFFER, io::stdout())),
        file: targets
            .file
            .map(|(f, name)| (BufWriter::with_capacity(OUTPUT_BUFFER, f), name)),
        failure,
    };
    let records = !targets.terminal;
    let mut formatter = super::records::Formatter::default();
    loop {
        let msg = match rx.try_recv() {
            Ok(m) => m,
            Err(TryRecvError::Empty) => {
                // Nothing more is waiting: what was written becomes visible
                // now, and the file is up to date before the next wait.
                formatter.write_out(|r| out.write(r, records, true));
                out.flush();
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        match msg {
            Msg::View(s) => {
                formatter.write_out(|r| out.write(r, records, true));
                out.write(s.as_bytes(), targets.terminal, false);
            }
            Msg::Record(r) => {
                formatter.write_out(|r| out.write(r, records, true));
                out.write(&r, records, true);
            }
            Msg::Log(batch) => formatter.batch(batch, |r| out.write(r, records, true)),
        }
    }
    formatter.write_out(|r| out.write(r, records, true));
    out.flush();
}

/// Where the output thread writes: stdout and the `--log` file, each
/// dropped after its first failure.
struct Outputs<'a> {
    stdout: Option<BufWriter<io::Stdout>>,
    file: Option<(BufWriter<File>, String)>,
    failure: &'a Failure,
}

impl Outputs<'_> {
    fn write(&mut self, bytes: &[u8], to_stdout: bool, to_file: bool) {
        if to_stdout
            && let Some(out) = &mut self.stdout
            && let Err(e) = out.write_all(bytes)
        {
            stdout_failed(&mut self.stdout, e, self.failure);
        }
        if to_file
            && let Some((out, name)) = &mut self.file
            && let Err(e) = out.write_all(bytes)
        {
            file_failed(name, &e);
            self.file = None;
        }
    }

    fn flush(&mut self) {
        flush(&mut self.stdout, &mut self.file, self.failure);
    }
}

fn flush(
    stdout: &mut Option<BufWriter<io::Stdout>>,
    file: &mut Option<(BufWriter<File>, String)>,
    failure: &Failure,
) {
    if let Some(out) = stdout
        && let Err(e) = out.flush()
    {
        stdout_failed(stdout, e, failure);
    }
    if let Some((out, name)) = file
        && let Err(e) = out.flush()
    {
        file_failed(name, &e);
        *file = None;
    }
}

/// stdout is gone (`| head`) or full: nothing more is written there, and
/// the proxy is told to stop — the view is what it runs for.
fn stdout_failed(stdout: &mut Option<BufWriter<io::Stdout>>, e: io::Error, failure: &Failure) {
    if let Some(w) = stdout.take() {
        // Whatever is still buffered cannot be written either.
        let _ = w.into_parts();
    }
    *failure.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
    failure.notify.notify_one();
}

/// The conversation matters more than its record: a full disk stops the
/// transcript, with a warning, and the proxy goes on.
fn file_failed(name: &str, e: &io::Error) {
    error::say(&format!(
        "imaptalk: warning: cannot write the transcript to {name}: {}; it stops here",
        io_text(e)
    ));
}
