//! The terminal: colour, symbols, the mode the line editor leaves behind,
//! raw bytes, and a reader that went away.
//!
//! A Unix terminal takes bytes and escape sequences as they come. The
//! Windows console takes text (Rust writes it UTF-16), shows escape
//! sequences only once virtual-terminal processing is switched on, and the
//! classic console window has no glyph for the lock emoji.

use std::io::{self, Stdout, Write};

/// How messages name the interrupt (exit code 130) and the request to
/// terminate (143): the signals on Unix; on Windows the console events
/// that stand for them (closing the console window counts as Ctrl-Break,
/// and nobody reads a message then).
#[cfg(not(windows))]
pub const INTERRUPT_NAME: &str = "SIGINT";
#[cfg(not(windows))]
pub const TERMINATE_NAME: &str = "SIGTERM";
#[cfg(windows)]
pub const INTERRUPT_NAME: &str = "Ctrl-C";
#[cfg(windows)]
pub const TERMINATE_NAME: &str = "Ctrl-Break";

/// Readies stdout for ANSI colour and says whether it will show it. Unix:
/// always. Windows: a console has virtual-terminal processing switched on
/// (Windows 10 and later have it; false on older consoles, where colour
/// would show as `←[32m`); a pipe or file passes the sequences on.
pub fn enable_colors() -> bool {
    #[cfg(windows)]
    return windows::enable_vt();
    #[cfg(not(windows))]
    true
}

/// Whether the terminal can show the lock symbols (🔒 🔓) of the prompt.
/// Unix: the locale asks for UTF-8 (LC_ALL, then LC_CTYPE, then LANG).
/// Windows: the text always arrives (as UTF-16), but the classic console
/// window has no emoji glyphs; Windows Terminal (`WT_SESSION`) and VS
/// Code's terminal have them.
pub fn shows_emoji() -> bool {
    #[cfg(windows)]
    {
        std::env::var_os("WT_SESSION").is_some()
            || std::env::var_os("TERM_PROGRAM").is_some_and(|t| t == "vscode")
    }
    #[cfg(not(windows))]
    {
        utf8_locale(|v| std::env::var(v).ok())
    }
}

#[cfg(any(not(windows), test))]
fn utf8_locale(var: impl Fn(&str) -> Option<String>) -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|v| var(v).filter(|s| !s.is_empty()))
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        })
}

/// Whether a write failed because nobody reads any more (`| head`). Unix
/// says EPIPE. Windows says ERROR_BROKEN_PIPE or ERROR_NO_DATA, which
/// Rust calls `BrokenPipe` too, or ERROR_PIPE_NOT_CONNECTED (233), which
/// it does not.
pub fn is_broken_pipe(e: &io::Error) -> bool {
    #[cfg(windows)]
    if e.raw_os_error() == Some(windows::ERROR_PIPE_NOT_CONNECTED) {
        return true;
    }
    e.kind() == io::ErrorKind::BrokenPipe
}

/// The key [`type_redraw_key`] types: this function key (F12) with Ctrl,
/// Alt and Shift, which no one presses by accident. The line editor binds
/// it to end the line being read, as a SIGINT aimed at its thread does on
/// Unix.
pub const REDRAW_F_KEY: u8 = 12;

/// Windows: puts the [`REDRAW_F_KEY`] chord into the console's input, so that the line
/// editor's blocking read returns and it can redraw its prompt (a console
/// read cannot be interrupted from another thread the way a signal
/// interrupts a Unix read). False where stdin is no console, and always on
/// Unix, which uses the signal.
pub fn type_redraw_key() -> bool {
    #[cfg(windows)]
    return windows::type_redraw_key();
    #[cfg(not(windows))]
    false
}

/// Whether stdin is a console that [`type_redraw_key`] can type into.
pub fn can_type_redraw_key() -> bool {
    #[cfg(windows)]
    return windows::stdin_mode().is_some();
    #[cfg(not(windows))]
    false
}

/// The terminal's mode on stdin, kept to be put back when the line editor
/// was interrupted in raw mode (the server ended the session mid-prompt).
pub struct TerminalMode {
    #[cfg(unix)]
    termios: nix::sys::termios::Termios,
    #[cfg(windows)]
    mode: u32,
}

impl TerminalMode {
    /// None when stdin is no terminal.
    pub fn save() -> Option<TerminalMode> {
        #[cfg(unix)]
        {
            let termios = nix::sys::termios::tcgetattr(io::stdin()).ok()?;
            Some(TerminalMode { termios })
        }
        #[cfg(windows)]
        {
            windows::stdin_mode().map(|mode| TerminalMode { mode })
        }
    }

    pub fn restore(&self) {
        #[cfg(unix)]
        {
            use nix::sys::termios::{SetArg, tcsetattr};
            let _ = tcsetattr(io::stdin(), SetArg::TCSANOW, &self.termios);
        }
        #[cfg(windows)]
        windows::set_stdin_mode(self.mode);
    }
}

/// Stdout for the server's raw bytes. Everywhere but a Windows console the
/// bytes go out unchanged. A Windows console takes text only: Rust refuses
/// bytes that are not UTF-8 there with an error, which would end the run
/// over one 8-bit byte, so each invalid sequence is shown as U+FFFD, as a
/// UTF-8 terminal shows it; `-o FILE` keeps the exact bytes.
pub struct RawStdout {
    out: Stdout,
    /// On a Windows console: the start of a UTF-8 sequence that the next
    /// write completes.
    console: Option<Vec<u8>>,
}

impl RawStdout {
    pub fn new() -> RawStdout {
        let out = io::stdout();
        #[cfg(windows)]
        let console = windows::is_console(&out).then(Vec::new);
        #[cfg(not(windows))]
        let console = None;
        RawStdout { out, console }
    }
}

impl Default for RawStdout {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for RawStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.console {
            None => self.out.write(buf),
            Some(carry) => {
                carry.extend_from_slice(buf);
                let text = take_text(carry);
                self.out.write_all(text.as_bytes())?;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // A sequence cut in two by the network waits for its end: a flush
        // comes whenever the session waits, not only at the end.
        self.out.flush()
    }
}

impl Drop for RawStdout {
    fn drop(&mut self) {
        if let Some(carry) = self.console.take().filter(|c| !c.is_empty()) {
            let _ = self
                .out
                .write_all(String::from_utf8_lossy(&carry).as_bytes());
            let _ = self.out.flush();
        }
    }
}

/// Takes from `buf` all but an unfinished UTF-8 sequence at its end, as
/// text, each invalid sequence replaced by U+FFFD.
fn take_text(buf: &mut Vec<u8>) -> String {
    let cut = match std::str::from_utf8(buf) {
        Ok(_) => buf.len(),
        Err(_) => unfinished_tail(buf),
    };
    let text = String::from_utf8_lossy(&buf[..cut]).into_owned();
    buf.drain(..cut);
    text
}

/// Where a UTF-8 sequence begins that `buf` ends before it is complete
/// (`buf.len()` when there is none).
fn unfinished_tail(buf: &[u8]) -> usize {
    let len = buf.len();
    let Some(lead) = (len.saturating_sub(3)..len)
        .rev()
        .find(|&i| buf[i] & 0xC0 != 0x80)
    else {
        return len;
    };
    let width = match buf[lead] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return len,
    };
    let unfinished = len - lead < width
        && std::str::from_utf8(&buf[lead..]).is_err_and(|e| e.error_len().is_none());
    if unfinished { lead } else { len }
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod windows {
    use std::io::{self, Stdout};
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::System::Console::{
        CONSOLE_MODE, ENABLE_VIRTUAL_TERMINAL_PROCESSING, GetConsoleMode, SetConsoleMode,
    };

    pub const ERROR_PIPE_NOT_CONNECTED: i32 =
        windows_sys::Win32::Foundation::ERROR_PIPE_NOT_CONNECTED as i32;

    fn mode_of(handle: std::os::windows::io::RawHandle) -> Option<CONSOLE_MODE> {
        let mut mode: CONSOLE_MODE = 0;
        // SAFETY: `handle` is one of the process's standard handles (or
        // null, which fails); GetConsoleMode writes one u32 to `mode`.
        (unsafe { GetConsoleMode(handle, &mut mode) } != 0).then_some(mode)
    }

    pub fn is_console(out: &Stdout) -> bool {
        mode_of(out.as_raw_handle()).is_some()
    }

    pub fn enable_vt() -> bool {
        let handle = io::stdout().as_raw_handle();
        let Some(mode) = mode_of(handle) else {
            return true; // not a console: the sequences pass through
        };
        if mode & ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0 {
            return true;
        }
        // SAFETY: as above; SetConsoleMode only changes the console's flags.
        let ok = unsafe { SetConsoleMode(handle, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING) } != 0;
        if ok && let Some(err_mode) = mode_of(io::stderr().as_raw_handle()) {
            // SAFETY: as above, for stderr.
            unsafe {
                SetConsoleMode(
                    io::stderr().as_raw_handle(),
                    err_mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING,
                )
            };
        }
        ok
    }

    pub fn stdin_mode() -> Option<u32> {
        mode_of(io::stdin().as_raw_handle())
    }

    pub fn type_redraw_key() -> bool {
        use windows_sys::Win32::System::Console::{
            INPUT_RECORD, INPUT_RECORD_0, KEY_EVENT, KEY_EVENT_RECORD, KEY_EVENT_RECORD_0,
            LEFT_ALT_PRESSED, LEFT_CTRL_PRESSED, SHIFT_PRESSED, WriteConsoleInputW,
        };
        const VK_F1: u16 = 0x70;
        let record = INPUT_RECORD {
            EventType: KEY_EVENT as u16,
            Event: INPUT_RECORD_0 {
                KeyEvent: KEY_EVENT_RECORD {
                    bKeyDown: 1,
                    wRepeatCount: 1,
                    wVirtualKeyCode: VK_F1 + u16::from(super::REDRAW_F_KEY) - 1,
                    wVirtualScanCode: 0,
                    uChar: KEY_EVENT_RECORD_0 { UnicodeChar: 0 },
                    dwControlKeyState: LEFT_CTRL_PRESSED | LEFT_ALT_PRESSED | SHIFT_PRESSED,
                },
            },
        };
        let mut written = 0u32;
        // SAFETY: stdin's handle (a console's, or the call fails); one
        // initialised record is read from `record`, one u32 written.
        let ok =
            unsafe { WriteConsoleInputW(io::stdin().as_raw_handle(), &record, 1, &mut written) };
        ok != 0 && written == 1
    }

    pub fn set_stdin_mode(mode: u32) {
        // SAFETY: as above, for stdin.
        unsafe { SetConsoleMode(io::stdin().as_raw_handle(), mode) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_locales_are_recognised_in_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |v: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == v)
                    .map(|(_, x)| x.to_string())
            }
        };
        assert!(utf8_locale(env(&[("LANG", "en_US.UTF-8")])));
        assert!(utf8_locale(env(&[
            ("LC_CTYPE", "de_DE.utf8"),
            ("LANG", "C")
        ])));
        assert!(!utf8_locale(env(&[
            ("LC_ALL", "C"),
            ("LANG", "en_US.UTF-8")
        ])));
        assert!(utf8_locale(env(&[("LC_ALL", ""), ("LANG", "en_US.UTF-8")])));
        assert!(!utf8_locale(env(&[])));
    }

    #[test]
    fn console_text_keeps_split_sequences_and_replaces_bad_bytes() {
        let mut carry = Vec::new();
        // "é" split over two writes, then 8-bit bytes that are no UTF-8.
        carry.extend_from_slice(b"caf\xc3");
        assert_eq!(take_text(&mut carry), "caf");
        carry.extend_from_slice(b"\xa9 \xff\xfe ok \xe2\x82");
        assert_eq!(take_text(&mut carry), "é \u{fffd}\u{fffd} ok ");
        carry.extend_from_slice(b"\xac");
        assert_eq!(take_text(&mut carry), "€");
        assert!(carry.is_empty());
        // A lead byte followed by a non-continuation is bad at once.
        carry.extend_from_slice(b"\xc3A\xf0\x9f\x94");
        assert_eq!(take_text(&mut carry), "\u{fffd}A");
        carry.extend_from_slice(b"\x92");
        assert_eq!(take_text(&mut carry), "\u{1f512}");
        // A stray continuation byte at the end is not kept waiting.
        carry.extend_from_slice(b"x\x80");
        assert_eq!(take_text(&mut carry), "x\u{fffd}");
    }

    #[test]
    fn broken_pipes_are_recognised() {
        assert!(is_broken_pipe(&io::Error::from(io::ErrorKind::BrokenPipe)));
        assert!(!is_broken_pipe(&io::Error::from(io::ErrorKind::NotFound)));
        if cfg!(windows) {
            assert!(is_broken_pipe(&io::Error::from_raw_os_error(233)));
        }
    }
}
