//! Output: the server's exact bytes for pipes and files, or a rendering
//! for a person on a terminal.
//!
//! On a terminal, server bytes are attacker-controlled text: a message body
//! or a mailbox name can carry escape sequences that retitle the window,
//! clear the screen, or rewrite what looks like the server's answer. So
//! every control character, C1 control, bidi or invisible formatting
//! character and invalid UTF-8 byte is shown escaped (`\x1b`, `\u{202e}`,
//! `\xff`) by the one rule of [`crate::text`], and only line ends and tabs
//! keep their meaning. Raw mode is the opposite: nothing added, nothing removed,
//! so `> out.txt` (or `-o out.txt`, where the shell's `>` re-encodes, as
//! PowerShell 5.1's does) is a faithful capture.
//!
//! A person cannot read a 20 MiB attachment scrolling by, and the
//! terminal takes long to draw it: a literal over [`CUT_LITERAL`] bytes is
//! shown by its first lines and a note (unless `--full`). The framing is
//! untouched: the rest of the literal is read, just not drawn.

use crate::app::progress::Progress;
use crate::app::repl::ScreenTx;
use crate::platform::console::{self, RawStdout};
use crate::protocol::framer::{Event, Head, Kind, LineEnd, Status, strip_line_end};
use crate::text::{Escaper, escape_str, io_text, size};
use anstyle::{AnsiColor, Style};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Stdout, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the server's output is shown.
#[derive(Clone, Debug)]
pub struct OutputOptions {
    /// Render server output for a person (escaped, coloured) instead of
    /// raw bytes: stdout is a terminal and `--raw` was not given.
    pub render: bool,
    pub color: bool,
    /// `--full`: on a terminal, show long literals in full.
    pub full: bool,
    /// `--quiet`: no progress bar for big literals.
    pub quiet: bool,
    /// `-o FILE`: what would go to stdout goes there.
    pub file: Option<OutputFile>,
}

/// `-o FILE`: where the bytes meant for stdout go instead, exactly. Created
/// (or emptied) when the flags are read, as the shell does for `> FILE`,
/// so a name that cannot be written fails before anything is sent; shared
/// by the server's output and the PEM of `--show-certs`.
#[derive(Clone, Debug)]
pub struct OutputFile {
    pub path: PathBuf,
    file: Arc<File>,
}

impl OutputFile {
    pub fn create(path: PathBuf) -> io::Result<OutputFile> {
        let file = Arc::new(File::create(&path)?);
        Ok(OutputFile { path, file })
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.file).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.file).flush()
    }
}

/// Where rendered text goes.
pub enum TextSink {
    /// Straight to stdout (script mode on a terminal).
    Stdout(Stdout),
    /// To the REPL's screen thread, which prints above the prompt.
    Printer(ScreenTx),
    /// To stderr (`--show-certs -v`: stdout holds only the PEM).
    Stderr,
}

enum Mode {
    /// Exact bytes, to stdout or the `-o` file (named for messages).
    Raw(BufWriter<Box<dyn Write + Send>>, String),
    Text(Text),
    /// Server output is not wanted (`--show-certs`); notices still are.
    Discard,
}

struct Text {
    color: bool,
    escaper: Escaper,
    /// Rendered text not yet written: complete lines, and the start of a
    /// line until it is complete or longer than [`HELD_LINE`].
    pending: String,
    /// What was written last ends in the middle of a line (a piece of a
    /// long one), on stdout or stderr: the terminal's cursor is not at
    /// the start of a line. (The screen thread ends every piece it prints
    /// with a line end, so never for the REPL.)
    mid_line: bool,
    /// Style of the line being rendered (the first line of a response).
    style: Option<Style>,
    sink: TextSink,
    /// `--full`: never cut a literal short.
    full: bool,
    /// The literal being received is cut short.
    cut: Option<Cut>,
}

/// The start of a line that is held until its end comes, so that lines are
/// written whole; a longer one is written in pieces as it arrives, so that
/// memory and the cost of looking for its end stay flat however long the
/// server makes it (a SEARCH of a million numbers, an endless line). At
/// the prompt each piece ends a row, so a line break shows where it was
/// cut; on stdout nothing is added.
const HELD_LINE: usize = 64 * 1024;

/// On a terminal, a literal longer than this is cut short (unless `--full`).
pub const CUT_LITERAL: u64 = 64 * 1024;
/// How much of a cut literal is shown: this many lines, or bytes, which
/// ever comes first.
const HEAD_LINES: usize = 40;
const HEAD_BYTES: usize = 8 * 1024;

/// How much of a long literal has been shown.
struct Cut {
    len: u64,
    lines: usize,
    shown: usize,
    hiding: bool,
    /// Bytes of it received so far, and since when, for the progress
    /// shown while it is hidden.
    received: u64,
    started: Instant,
    /// When the progress was last drawn (None: not yet).
    drawn: Option<Instant>,
}

impl Cut {
    fn new(len: u64) -> Cut {
        Cut {
            len,
            lines: 0,
            shown: 0,
            hiding: false,
            received: 0,
            started: Instant::now(),
            drawn: None,
        }
    }

    /// How many bytes at the start of this chunk are shown.
    fn take(&mut self, data: &[u8]) -> usize {
        if self.hiding {
            return 0;
        }
        let mut end = data.len().min(HEAD_BYTES - self.shown);
        for i in memchr::memchr_iter(b'\n', &data[..end]) {
            self.lines += 1;
            if self.lines == HEAD_LINES {
                end = i + 1;
                break;
            }
        }
        self.shown += end;
        self.hiding = self.lines >= HEAD_LINES || self.shown >= HEAD_BYTES;
        end
    }

    /// The progress of a hidden literal: how much arrived, how fast.
    fn progress(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let pct = self.received.saturating_mul(100) / self.len.max(1);
        format!(
            "[{} of {} ({pct}%), {}/s]",
            size(self.received),
            size(self.len),
            size((self.received as f64 / secs) as u64)
        )
    }

    fn note(&self) -> String {
        format!(
            "[imaptalk: literal of {} cut short: {} shown; --full shows it all, --raw or a redirect (> file) gives the exact bytes]",
            size(self.len),
            match self.lines {
                0 => size(self.shown as u64),
                1 => "1 line".to_string(),
                n => format!("{n} lines"),
            }
        )
    }
}

/// All output of a run: server data and the client's own notices.
pub struct Output {
    mode: Mode,
    progress: Progress,
}

impl Output {
    /// Exact bytes to stdout, or to `file` (`-o FILE`). The buffer is
    /// large so bulk literals cost few system calls; it is flushed whenever
    /// the session waits.
    pub fn raw(file: Option<OutputFile>) -> Output {
        let (sink, name): (Box<dyn Write + Send>, String) = match file {
            Some(f) => (Box::new(f.clone()), f.path.display().to_string()),
            None => (Box::new(RawStdout::new()), "stdout".to_string()),
        };
        Output {
            mode: Mode::Raw(BufWriter::with_capacity(128 * 1024, sink), name),
            progress: Progress::off(),
        }
    }

    /// Shows a progress bar for big literals where `progress` says so.
    pub fn with_progress(mut self, progress: Progress) -> Output {
        self.progress = progress;
        self
    }

    /// `--full`: on a terminal, show long literals in full.
    pub fn with_full_literals(mut self, full: bool) -> Output {
        if let Mode::Text(t) = &mut self.mode {
            t.full = full;
        }
        self
    }

    /// Drops server output; imaptalk's own messages still go to stderr.
    pub fn discard() -> Output {
        Output {
            mode: Mode::Discard,
            progress: Progress::off(),
        }
    }

    pub fn text(color: bool, sink: TextSink) -> Output {
        Output {
            mode: Mode::Text(Text {
                color,
                escaper: Escaper::default(),
                pending: String::new(),
                mid_line: false,
                style: None,
                sink,
                full: false,
                cut: None,
            }),
            progress: Progress::off(),
        }
    }

    pub fn event(&mut self, ev: &Event) -> io::Result<()> {
        self.event_noted(ev, None)
    }

    /// An event with a note for the person reading (a command's time, a
    /// decoded mailbox name), shown dimmed after the line that ends a
    /// response; `note` must be safe to show (escaped). Raw output and
    /// other events never get one.
    pub fn event_noted(&mut self, ev: &Event, note: Option<&str>) -> io::Result<()> {
        self.progress.event(ev);
        match &mut self.mode {
            Mode::Raw(w, name) => match ev {
                Event::Line { data, .. } | Event::Literal { data, .. } => {
                    w.write_all(data).map_err(|e| named(e, name))
                }
            },
            Mode::Discard => Ok(()),
            Mode::Text(t) => {
                t.event(ev, note);
                if t.pending.len() > HELD_LINE {
                    t.flush_lines(false)?;
                }
                Ok(())
            }
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.mode {
            Mode::Raw(w, name) => w.flush().map_err(|e| named(e, name)),
            Mode::Text(t) => t.flush_lines(false),
            Mode::Discard => Ok(()),
        }
    }

    /// Before a message of imaptalk's own: what is pending is written, and
    /// a long line already partly written on stdout is ended, so that the
    /// message is not drawn into it (the line goes on below).
    fn flush_for_own_text(&mut self) {
        let _ = self.flush();
        if let Mode::Text(t) = &mut self.mode
            && t.mid_line
        {
            t.pending.push('\n');
            let _ = t.flush_lines(true);
        }
    }

    /// Flushes everything, a partial last line included (end of the run).
    pub fn finish(&mut self) -> io::Result<()> {
        match &mut self.mode {
            Mode::Raw(w, name) => w.flush().map_err(|e| named(e, name)),
            Mode::Text(t) => {
                t.escaper.finish(&mut t.pending);
                t.flush_lines(true)
            }
            Mode::Discard => Ok(()),
        }
    }

    /// A message from imaptalk itself (never mixed into raw server bytes).
    pub fn notice(&mut self, msg: &str) {
        self.flush_for_own_text();
        match &mut self.mode {
            Mode::Text(Text {
                sink: TextSink::Printer(tx),
                color,
                ..
            }) => {
                let line = if *color {
                    let s = Style::new().dimmed();
                    format!("{}imaptalk: {msg}{}", s.render(), s.render_reset())
                } else {
                    format!("imaptalk: {msg}")
                };
                let _ = tx.text(line);
            }
            _ => self
                .progress
                .suspend(|| crate::error::say(&format!("imaptalk: {msg}"))),
        }
    }

    /// Text from imaptalk for the user to read (help), as it is.
    pub fn message(&mut self, text: &str) {
        self.flush_for_own_text();
        match &mut self.mode {
            Mode::Text(Text {
                sink: TextSink::Printer(tx),
                ..
            }) => {
                let _ = tx.text(text.to_string());
            }
            _ => self.progress.suspend(|| crate::error::say(text)),
        }
    }

    /// A copy of a line sent to the server (`--echo`), already masked.
    pub fn echo(&mut self, line: &str) {
        self.message(&format!("C: {}", escape_str(line)));
    }

    /// A line sent that the person did not type at the prompt just now
    /// (queued, sent by imaptalk itself, a script's), already masked: shown
    /// among the server's lines, where it went, in the form `--echo`
    /// gives it.
    pub fn sent(&mut self, line: &str) {
        self.flush_for_own_text();
        let Mode::Text(text) = &mut self.mode else {
            return;
        };
        let shown = format!("C: {}", escape_str(line));
        let shown = if text.color {
            let s = Style::new().bold();
            format!("{}{shown}{}", s.render(), s.render_reset())
        } else {
            shown
        };
        match &mut text.sink {
            TextSink::Printer(tx) => {
                let _ = tx.text(shown);
            }
            TextSink::Stdout(out) => {
                let mut lock = out.lock();
                let _ = writeln!(lock, "{shown}").and_then(|()| lock.flush());
            }
            TextSink::Stderr => crate::error::say(&shown),
        }
    }
}

impl Text {
    fn event(&mut self, ev: &Event, note: Option<&str>) {
        match ev {
            Event::Line { data, head, end } => {
                if let Some(head) = head {
                    self.style = self.color.then(|| style_for(head)).flatten();
                }
                let body: &[u8] = if *end == LineEnd::Partial {
                    data
                } else {
                    strip_line_end(data)
                };
                if let Some(s) = self.style {
                    let _ = write!(self.pending, "{}", s.render());
                }
                self.escaper.push(body, &mut self.pending);
                if *end != LineEnd::Partial {
                    // The line is complete: nothing can continue a carried byte.
                    self.escaper.finish(&mut self.pending);
                }
                if let Some(s) = self.style {
                    let _ = write!(self.pending, "{}", s.render_reset());
                }
                if let Some(note) = note.filter(|_| *end == LineEnd::Response) {
                    if self.color {
                        let s = Style::new().dimmed();
                        let _ = write!(self.pending, "  {}{note}{}", s.render(), s.render_reset());
                    } else {
                        let _ = write!(self.pending, "  {note}");
                    }
                }
                if *end != LineEnd::Partial {
                    self.pending.push('\n');
                    self.style = None;
                }
                if let LineEnd::Literal { len, .. } = end
                    && *len > CUT_LITERAL
                    && !self.full
                {
                    self.cut = Some(Cut::new(*len));
                }
            }
            Event::Literal { data, remaining } => {
                let shown = self.cut.as_mut().map_or(data.len(), |c| c.take(data));
                self.escaper.push(&data[..shown], &mut self.pending);
                if let Some(cut) = &mut self.cut {
                    cut.received += data.len() as u64;
                }
                if *remaining == 0 {
                    self.escaper.finish(&mut self.pending);
                    if let Some(cut) = self.cut.take().filter(|c| c.hiding) {
                        if cut.drawn.is_some() {
                            self.status(None);
                        }
                        self.cut_note(&cut);
                    }
                } else {
                    self.progress();
                }
            }
        }
    }

    /// While a cut literal is hidden, its progress is drawn in place (before
    /// the prompt, or on the last line of a terminal), a few times a
    /// second, until it is complete.
    fn progress(&mut self) {
        const EVERY: Duration = Duration::from_millis(250);
        let Some(cut) = &mut self.cut else { return };
        if !cut.hiding || cut.drawn.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        let first = cut.drawn.is_none();
        cut.drawn = Some(Instant::now());
        let text = cut.progress();
        if first && matches!(self.sink, TextSink::Stdout(_)) {
            // The progress goes on a line of its own, below what was shown.
            self.end_line();
            let _ = self.flush_lines(true);
        }
        // Plain text: the editor measures the prompt it is drawn with.
        self.status(Some(text));
    }

    fn status(&mut self, text: Option<String>) {
        match &mut self.sink {
            TextSink::Printer(tx) => tx.status(text),
            TextSink::Stdout(s) => {
                let mut lock = s.lock();
                let _ = write!(lock, "\r\x1b[K{}", text.unwrap_or_default());
                let _ = lock.flush();
            }
            TextSink::Stderr => {}
        }
    }

    /// Says on a line of its own that a literal was cut short.
    fn cut_note(&mut self, cut: &Cut) {
        self.end_line();
        let note = cut.note();
        if self.color {
            let s = Style::new().dimmed();
            let _ = writeln!(self.pending, "{}{note}{}", s.render(), s.render_reset());
        } else {
            let _ = writeln!(self.pending, "{note}");
        }
    }

    /// Ends the line being shown, if it is not ended: what comes next
    /// (a note, the progress) goes on a line of its own.
    fn end_line(&mut self) {
        if self.pending.is_empty() {
            if self.mid_line {
                self.pending.push('\n');
            }
        } else if !self.pending.ends_with('\n') {
            self.pending.push('\n');
        }
    }

    /// Writes out complete lines, and the start of a line longer than
    /// [`HELD_LINE`] (or everything, with `all`). Called between events,
    /// so what is written never ends inside an escape or a style.
    fn flush_lines(&mut self, all: bool) -> io::Result<()> {
        let cut = if all {
            self.pending.len()
        } else {
            // Only the held start of a line is searched: it is short.
            let from = self.pending.len().saturating_sub(HELD_LINE + 1);
            let from = (from..self.pending.len())
                .find(|&i| self.pending.is_char_boundary(i))
                .unwrap_or(self.pending.len());
            match self.pending[from..].rfind('\n') {
                Some(i) => from + i + 1,
                None if self.pending.len() > HELD_LINE => self.pending.len(),
                None => return Ok(()),
            }
        };
        if cut == 0 {
            return Ok(());
        }
        let rest = self.pending.split_off(cut);
        let out = std::mem::replace(&mut self.pending, rest);
        self.mid_line = !out.ends_with('\n') && !matches!(self.sink, TextSink::Printer(_));
        match &mut self.sink {
            TextSink::Stdout(s) => {
                let mut lock = s.lock();
                lock.write_all(out.as_bytes())
                    .and_then(|()| lock.flush())
                    .map_err(|e| named(e, "stdout"))
            }
            TextSink::Printer(tx) => {
                if tx.text(out) {
                    Ok(())
                } else {
                    Err(io::Error::new(io::ErrorKind::BrokenPipe, "terminal closed"))
                }
            }
            TextSink::Stderr => {
                let mut lock = io::stderr().lock();
                lock.write_all(out.as_bytes())
                    .and_then(|()| lock.flush())
                    .map_err(|e| named(e, "stderr"))
            }
        }
    }
}

/// A failed write says where it went: "No space left on device" alone
/// does not tell that it was stdout (`> /dev/full`, a full disk). The
/// kind is kept, so a closed pipe still ends the run quietly.
/// The error with the stream's name. A reader that went away stays a
/// `BrokenPipe` whatever the platform called it: the run ends quietly.
fn named(e: io::Error, stream: &str) -> io::Error {
    let kind = if console::is_broken_pipe(&e) {
        io::ErrorKind::BrokenPipe
    } else {
        e.kind()
    };
    io::Error::new(
        kind,
        format!("cannot write the output to {stream}: {}", io_text(&e)),
    )
}

/// The colour of a response line by its kind and status (OK green, NO
/// yellow, BAD and BYE red, `[ALERT]` bold yellow, `+` cyan).
pub fn style_for(head: &Head) -> Option<Style> {
    if head.alert {
        return Some(Style::new().bold().fg_color(Some(AnsiColor::Yellow.into())));
    }
    let color = |c: AnsiColor| Some(Style::new().fg_color(Some(c.into())));
    match &head.kind {
        Kind::Tagged { status, .. } => match status {
            Status::Ok => color(AnsiColor::Green),
            Status::No => color(AnsiColor::Yellow),
            Status::Bad => Some(Style::new().bold().fg_color(Some(AnsiColor::Red.into()))),
            _ => color(AnsiColor::Magenta),
        },
        Kind::Untagged(Status::Bye) => {
            Some(Style::new().bold().fg_color(Some(AnsiColor::Red.into())))
        }
        Kind::Untagged(Status::No) => color(AnsiColor::Yellow),
        Kind::Untagged(Status::Bad) => color(AnsiColor::Red),
        Kind::Continuation => color(AnsiColor::Cyan),
        Kind::Untagged(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders a FETCH of a literal of `lines` numbered lines, delivered
    /// in chunks of `chunk` bytes, as a terminal would show it.
    fn render_literal(lines: usize, chunk: usize, full: bool) -> String {
        screens(lines, chunk, full)
            .into_iter()
            .filter_map(|s| match s {
                crate::app::repl::Screen::Text(t) => Some(t),
                crate::app::repl::Screen::Status(_) => None,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// The same, as the REPL's screen is told it.
    fn screens(lines: usize, chunk: usize, full: bool) -> Vec<crate::app::repl::Screen> {
        use bytes::Bytes;
        let body: String = (1..=lines).map(|i| format!("line {i:05}\r\n")).collect();
        let len = body.len() as u64;
        let (tx, rx) = std::sync::mpsc::channel();
        let mut out =
            Output::text(false, TextSink::Printer(ScreenTx::new(tx))).with_full_literals(full);
        let head = format!("* 1 FETCH (BODY[] {{{len}}}\r\n");
        out.event(&Event::Line {
            data: Bytes::from(head),
            head: None,
            end: LineEnd::Literal { len, binary: false },
        })
        .unwrap();
        let mut remaining = len;
        for piece in body.as_bytes().chunks(chunk) {
            remaining -= piece.len() as u64;
            out.event(&Event::Literal {
                data: Bytes::copy_from_slice(piece),
                remaining,
            })
            .unwrap();
        }
        out.event(&Event::Line {
            data: Bytes::from_static(b")\r\n"),
            head: None,
            end: LineEnd::Response,
        })
        .unwrap();
        out.finish().unwrap();
        drop(out);
        rx.iter().collect()
    }

    #[test]
    fn a_hidden_literal_shows_its_progress_until_it_is_complete() {
        use crate::app::repl::Screen;
        let all = screens(10_000, 4096, false);
        let status: Vec<_> = all
            .iter()
            .filter_map(|s| match s {
                Screen::Status(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        // Drawn once hiding starts, taken away when it is complete.
        let first = status.first().cloned().flatten().expect("a progress line");
        assert!(
            first.starts_with('[') && first.contains(" of 117.19 KiB ("),
            "{first}"
        );
        assert!(first.ends_with("/s]"), "{first}");
        assert_eq!(status.last(), Some(&None));
        // Taken away before the note that ends it is printed.
        let gone = all
            .iter()
            .position(|s| matches!(s, Screen::Status(None)))
            .unwrap();
        let note = all
            .iter()
            .position(|s| matches!(s, Screen::Text(t) if t.contains("cut short")))
            .unwrap();
        assert!(gone < note);
        // Shown in full: no progress.
        assert!(
            !screens(10_000, 4096, true)
                .iter()
                .any(|s| matches!(s, Screen::Status(_)))
        );
    }

    #[test]
    fn a_long_literal_is_cut_short_on_a_terminal() {
        // 12 bytes a line: 10,000 lines are 120,000 bytes, over the limit.
        for chunk in [1, 7, 4096, 200_000] {
            let text = render_literal(10_000, chunk, false);
            assert!(text.contains("line 00040\n"), "{chunk}: {text}");
            assert!(!text.contains("line 00041"), "{chunk}: {text}");
            assert!(
                text.ends_with(
                    "line 00040\n[imaptalk: literal of 117.19 KiB cut short: 40 lines shown; --full shows it all, --raw or a redirect (> file) gives the exact bytes]\n)\n"
                ),
                "{chunk}: {text}"
            );
        }
        // Under the limit, or with --full: all of it.
        let text = render_literal(5_000, 4096, false);
        assert!(text.ends_with("line 05000\n)\n"), "{text}");
        let text = render_literal(10_000, 4096, true);
        assert!(text.ends_with("line 10000\n)\n"), "{text}");
        assert!(!text.contains("cut short"));
    }

    /// A SEARCH line of a million numbers, handed out by the framer in
    /// pieces: written as it comes, never held whole (memory, and the
    /// search for its end, would grow with the line).
    #[test]
    fn a_long_line_is_written_in_pieces_as_it_comes() {
        use crate::app::repl::Screen;
        use crate::protocol::framer::Framer;
        let mut wire = b"* SEARCH".to_vec();
        for i in 1..=1_000_000 {
            wire.extend_from_slice(format!(" {i}").as_bytes());
        }
        wire.extend_from_slice(b"\r\na1 OK done\r\n");
        let (tx, rx) = std::sync::mpsc::channel();
        let mut out = Output::text(true, TextSink::Printer(ScreenTx::new(tx)));
        let mut framer = Framer::new();
        let mut pieces = 0;
        for read in wire.chunks(crate::io::READ_SIZE) {
            framer.buffer_mut().extend_from_slice(read);
            while let Some(ev) = framer.next_event().unwrap() {
                pieces += 1;
                out.event(&ev).unwrap();
                if let Mode::Text(t) = &out.mode {
                    assert!(t.pending.len() <= HELD_LINE + crate::io::READ_SIZE);
                }
            }
            out.flush().unwrap();
        }
        out.finish().unwrap();
        drop(out);
        let texts: Vec<String> = rx
            .iter()
            .map(|s| match s {
                Screen::Text(t) => t,
                other => panic!("{other:?}"),
            })
            .collect();
        // A piece of each read, written as it came.
        let reads = wire.len() / crate::io::READ_SIZE;
        assert!(pieces >= reads, "{pieces} events");
        assert!(texts.len() >= reads, "{} writes", texts.len());
        // Nothing lost or added but the line end.
        let shown: String = texts.concat();
        let sent = String::from_utf8(wire).unwrap().replace("\r\n", "\n");
        let green = Style::new().fg_color(Some(AnsiColor::Green.into()));
        let sent = sent.replace(
            "a1 OK done",
            &format!("{}a1 OK done{}", green.render(), green.render_reset()),
        );
        assert_eq!(shown, sent);
    }

    #[test]
    fn a_long_literal_without_line_ends_is_cut_by_size() {
        let mut c = Cut::new(1 << 30);
        assert_eq!(c.take(&[b'x'; 5000]), 5000);
        assert_eq!(c.take(&[b'x'; 5000]), HEAD_BYTES - 5000);
        assert!(c.hiding);
        assert_eq!(c.take(b"more\n"), 0);
        assert!(
            c.note()
                .contains("literal of 1.00 GiB cut short: 8.00 KiB shown"),
            "{}",
            c.note()
        );
    }
}
