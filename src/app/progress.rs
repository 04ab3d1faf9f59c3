//! A progress bar on stderr for big literals on their way to a file.
//!
//! `imaptalk … -c 'FETCH 1 BODY[]' > big.eml` may run for minutes with
//! nothing on the terminal. When stdout is not a terminal but stderr is,
//! a literal of at least [`THRESHOLD`] bytes shows bytes, rate and ETA on
//! stderr, and the bar is erased when the literal is complete, so the
//! terminal ends up as if it had never been there. Nothing is ever drawn
//! when stderr is not a terminal (a log file stays clean) or with
//! `--quiet`. The count comes from the server, but it only sets the bar's
//! length: nothing is allocated from it.

use crate::protocol::framer::{Event, LineEnd};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle, TermLike};
use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;

/// Literals smaller than this go by too fast to need a bar.
pub const THRESHOLD: u64 = 4 * 1024 * 1024;

/// Watches the server's events for big literals.
pub struct Progress {
    enabled: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar is shown only when the output goes to a file (`to_file`: `-o
    /// FILE`) or stdout is not a terminal, stderr is, and `quiet` is not set.
    pub fn new(quiet: bool, to_file: bool) -> Progress {
        Progress::when(
            !quiet
                && (to_file || !std::io::stdout().is_terminal())
                && std::io::stderr().is_terminal(),
        )
    }

    /// Never shows anything.
    pub fn off() -> Progress {
        Progress::when(false)
    }

    fn when(enabled: bool) -> Progress {
        Progress { enabled, bar: None }
    }

    /// Follows one event on its way to stdout.
    pub fn event(&mut self, ev: &Event) {
        if !self.enabled {
            return;
        }
        match ev {
            Event::Line {
                end: LineEnd::Literal { len, .. },
                ..
            } if *len >= THRESHOLD => {
                self.bar = Some(bar(*len));
            }
            Event::Literal { data, remaining } => {
                if let Some(bar) = &self.bar {
                    bar.inc(data.len() as u64);
                    if *remaining == 0 {
                        bar.finish_and_clear();
                        self.bar = None;
                    }
                }
            }
            Event::Line { .. } => {}
        }
    }

    /// Runs `f` (which writes to stderr) with the bar out of the way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}

fn bar(len: u64) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "imaptalk: {bytes}/{total_bytes} [{wide_bar}] {binary_bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    // Cleared also when dropped unfinished (the connection broke mid-literal),
    // so the error message that follows starts on a clean line.
    let target = ProgressDrawTarget::term_like_with_hz(Box::new(Stderr::default()), 20);
    ProgressBar::with_draw_target(Some(len), target)
        .with_style(style)
        .with_finish(ProgressFinish::AndClear)
}

/// stderr as the bar's terminal, two columns narrower than it is: room
/// for the `^C` a terminal echoes on Ctrl-C. Were it to wrap, clearing
/// the bar would clear the new line and leave the bar on the screen.
#[derive(Debug, Default)]
struct Stderr {
    /// What is drawn goes out at once on flush: no flicker.
    pending: Mutex<Vec<u8>>,
}

impl Stderr {
    fn put(&self, bytes: &[u8]) -> io::Result<()> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(())
    }

    fn cursor(&self, n: usize, direction: char) -> io::Result<()> {
        match n {
            0 => Ok(()),
            n => self.put(format!("\x1b[{n}{direction}").as_bytes()),
        }
    }
}

impl TermLike for Stderr {
    fn width(&self) -> u16 {
        match terminal_size::terminal_size_of(io::stderr()) {
            Some((w, _)) if w.0 > 2 => w.0 - 2,
            _ => 78,
        }
    }

    fn height(&self) -> u16 {
        terminal_size::terminal_size_of(io::stderr()).map_or(24, |(_, h)| h.0)
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.cursor(n, 'D')
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.put(s.as_bytes())?;
        self.put(b"\n")
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.put(s.as_bytes())
    }

    fn clear_line(&self) -> io::Result<()> {
        self.put(b"\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        let bytes = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let mut err = io::stderr().lock();
        err.write_all(&bytes)?;
        err.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn announce(len: u64) -> Event {
        Event::Line {
            data: Bytes::from_static(b"* 1 FETCH (BODY[] {n}\r\n"),
            head: None,
            end: LineEnd::Literal { len, binary: false },
        }
    }

    fn chunk(n: usize, remaining: u64) -> Event {
        Event::Literal {
            data: Bytes::from(vec![b'x'; n]),
            remaining,
        }
    }

    #[test]
    fn a_bar_follows_a_big_literal_and_goes_away_at_its_end() {
        let mut p = Progress::when(true);
        p.event(&announce(THRESHOLD - 1));
        assert!(p.bar.is_none(), "small literals get no bar");
        p.event(&announce(THRESHOLD + 10));
        p.event(&chunk(10, THRESHOLD));
        assert_eq!(p.bar.as_ref().map(|b| b.position()), Some(10));
        p.event(&chunk(THRESHOLD as usize, 0));
        assert!(p.bar.is_none());
    }

    #[test]
    fn disabled_means_no_bar() {
        let mut p = Progress::off();
        p.event(&announce(THRESHOLD * 2));
        assert!(p.bar.is_none());
    }
}
