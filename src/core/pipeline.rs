//! `--pipeline`: in script and `-c` mode, send commands without waiting
//! for each completion, and match the completions to commands by tag.
//!
//! Pipelining is only safe where no later command depends on how an
//! earlier one ends, so some commands are sent *alone* (the table's
//! `alone_in_pipeline`, `command::Verb`): everything sent
//! before them completes first, and nothing is sent after them until they
//! complete. They are the commands that change the connection or the
//! session state (STARTTLS, COMPRESS, LOGIN, AUTHENTICATE, LOGOUT, SELECT
//! and the like — Courier drops commands pipelined after LOGIN), those that
//! hand the line to the server (IDLE, and any command this client does not
//! know, which may ask for a continuation), and those carrying a literal:
//! a synchronizing literal waits for the server's `+`, and the data of one
//! command is never written while earlier commands' responses pile up
//! unread (a server that stops reading while its output is blocked would
//! otherwise deadlock with us).
//!
//! At most [`WINDOW`] commands are in flight, so a huge script cannot make
//! either side buffer without bound.

use crate::protocol::command;
use crate::protocol::framer::strip_line_end;

/// The most commands in flight at once.
pub const WINDOW: usize = 256;

/// What the input holds next, as far as the pipeline is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next<'a> {
    /// A complete input line.
    Line(&'a [u8]),
    /// Not a whole line yet: more input is needed to tell.
    Pending,
    /// The input has ended: LOGOUT comes next.
    End,
}

/// Whether the next input may be sent while `in_flight` commands are
/// outstanding, `held` saying one of them is sent alone; `alone` is
/// [`line_alone`] (or a cache of it: the same line is asked about after
/// every response until it can go).
pub fn may_send(
    next: Next<'_>,
    in_flight: usize,
    held: bool,
    alone: impl FnOnce(&[u8]) -> bool,
) -> bool {
    if in_flight == 0 {
        return true;
    }
    if held || in_flight >= WINDOW {
        return false;
    }
    match next {
        Next::Pending => true,
        Next::End => false,
        Next::Line(line) => !alone(line),
    }
}

/// Whether an input line is a command sent alone. The line is read the
/// way it will be sent; blank lines and comments are never sent, and a
/// line that cannot be sent as written fails only once the earlier
/// commands completed, as it would without pipelining.
pub fn line_alone(line: &[u8]) -> bool {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() || trimmed.starts_with(b"#") {
        return false;
    }
    // A file literal ({@FILE}) becomes a literal when the line is sent.
    if memchr::memmem::find(line, b"{@").is_some() {
        return true;
    }
    command::line_alone_in_pipeline(line).unwrap_or(true)
}

/// The next input line, without taking it off the input (see
/// [`Next`]); at the end of input a last line without a line end counts.
pub fn peek(input: &[u8], eof: bool) -> Next<'_> {
    match memchr::memchr(b'\n', input) {
        Some(i) => Next::Line(strip_line_end(&input[..=i])),
        None if eof && !input.is_empty() => Next::Line(strip_line_end(input)),
        None if eof => Next::End,
        None => Next::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::Verb;

    #[test]
    fn which_commands_go_alone() {
        for name in [
            "LOGIN",
            "LOGOUT",
            "STARTTLS",
            "COMPRESS",
            "AUTHENTICATE",
            "IDLE",
            "SELECT",
            "XFOO",
        ] {
            assert!(Verb::of_name(name).alone_in_pipeline(), "{name}");
        }
        for name in ["NOOP", "FETCH", "UID FETCH", "STORE", "STATUS", "LIST"] {
            assert!(!Verb::of_name(name).alone_in_pipeline(), "{name}");
        }
        let append = command::prepare(b"APPEND INBOX {3}", &mut command::Tagger::new("a"), |_| {
            false
        });
        assert!(append.unwrap().alone_in_pipeline(), "a literal goes alone");
    }

    #[test]
    fn lines_are_read_as_they_will_be_sent() {
        let may = |line: &[u8], n, held| may_send(Next::Line(line), n, held, line_alone);
        assert!(may(b"FETCH 1 FLAGS", 3, false));
        assert!(may(b"a7 uid fetch 1 FLAGS", 3, false));
        assert!(!may(b"login alice secret", 3, false));
        assert!(!may(b"x1 IDLE", 3, false));
        assert!(!may(b"APPEND INBOX {5}", 3, false));
        assert!(!may(b"APPEND INBOX {5+}", 3, false));
        assert!(!may(b"APPEND INBOX {@msg.eml}", 3, false));
        // A bad literal count: the error comes when it would without pipelining.
        assert!(!may(b"APPEND INBOX {99999999999999999999999}", 3, false));
        assert!(may(b"# comment", 3, false));
        assert!(may(b"", 3, false));
        // Nothing follows a command sent alone; everything may follow nothing.
        assert!(!may(b"NOOP", 1, true));
        assert!(may(b"LOGIN a b", 0, false));
    }

    #[test]
    fn the_window_bounds_what_is_in_flight() {
        assert!(may_send(Next::Line(b"NOOP"), WINDOW - 1, false, line_alone));
        assert!(!may_send(Next::Line(b"NOOP"), WINDOW, false, line_alone));
        assert!(!may_send(Next::Pending, WINDOW, false, line_alone));
    }

    #[test]
    fn end_of_input_waits_for_everything() {
        assert!(!may_send(Next::End, 1, false, line_alone));
        assert!(may_send(Next::End, 0, false, line_alone));
        assert!(may_send(Next::Pending, 5, false, line_alone));
    }

    #[test]
    fn peek_does_not_take() {
        assert_eq!(peek(b"NOOP\r\nFETCH", false), Next::Line(b"NOOP"));
        assert_eq!(peek(b"NOOP", false), Next::Pending);
        assert_eq!(peek(b"NOOP", true), Next::Line(b"NOOP"));
        assert_eq!(peek(b"", true), Next::End);
        assert_eq!(peek(b"", false), Next::Pending);
    }
}
