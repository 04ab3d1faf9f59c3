//! The client framer: a mail client's bytes in, command events out — the
//! other direction of [`crate::protocol::framer`], for `--listen`.
//!
//! A client's command is a line, except that a line ending in a literal
//! announcement (`{n}`, `{n+}`, `{n-}`, `~{n}`) is followed by exactly `n`
//! bytes of data, after which the same command continues with another line.
//! So a message a client APPENDs may hold a line `a5 LOGOUT` or
//! `a4 OK done`: it is data, never a command, and never takes part in
//! matching tags.
//!
//! One thing makes the client's side harder than the server's: a
//! *synchronizing* literal (`{n}`, `~{n}`) is sent only after the server
//! answered the announcement with `+`. If the server completes the command
//! instead (`a3 NO too big`), the data never comes, and the next bytes are
//! a new command. The framer cannot know which from the client's bytes, so
//! it waits, as the server does: after a synchronizing announcement nothing
//! more is framed until the caller says how the server answered
//! ([`ClientFramer::go`] or [`ClientFramer::refuse`]). What the client sends
//! meanwhile stays buffered; [`ClientFramer::can_read`] says when to stop
//! reading, so memory stays bounded.
//!
//! The same rules as the server framer hold: nothing is allocated from a
//! size the client announced (literal data is handed out in the chunks it
//! was read in), a line longer than [`MAX_LINE`] is handed out in pieces,
//! a partial line is never rescanned, and the bytes of all events
//! concatenated are exactly the bytes the client sent.

use crate::protocol::command::Verb;
use crate::protocol::framer::{Announcement, FrameError, MAX_LINE, literal_announcement};
use bytes::{Bytes, BytesMut};

/// Bytes kept back at the end of a long line handed out in pieces, so a
/// literal announcement is never split between two pieces.
const LINE_TAIL: usize = 32;

/// What a line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// The first line of a command: its tag (the first word, as sent) and
    /// its verb (the second word; `Other` for one imaptalk does not know).
    Command { tag: Bytes, verb: Verb },
    /// A line answering the server's `+`: a SASL response, the `DONE` that
    /// ends IDLE. Only after [`ClientFramer::expect_answer`].
    Answer,
}

/// How a piece of a line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The line was too long to hold and continues in the next `Line` event.
    Partial,
    /// The line announced a literal. For a synchronizing one the data
    /// follows only once the caller reported the server's `+` ([`go`]).
    ///
    /// [`go`]: ClientFramer::go
    Literal(Announcement),
    /// The line ended the command (or the answer).
    Command,
}

/// A piece of the client's output. Concatenating the bytes of all events
/// gives back exactly the bytes the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Line {
        /// The raw bytes, including the line end unless `end` is `Partial`.
        data: Bytes,
        /// Set on the first piece of every command and answer.
        head: Option<Head>,
        end: End,
    },
    /// A chunk of literal data; `remaining` bytes of the literal follow it.
    Literal { data: Bytes, remaining: u64 },
}

/// Where a line stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// A new command (or an answer, when one is expected).
    Command,
    /// The rest of a command after a literal's data.
    AfterLiteral,
    /// A line answering a `+`: no literal is read from it.
    Answer,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Line {
        start: Start,
        /// A first piece of this line has already been handed out.
        continued: bool,
        /// How many buffered bytes of the line are known to hold no LF.
        scanned: usize,
    },
    /// A synchronizing literal was announced: the server decides whether
    /// its data comes.
    Waiting(Announcement),
    Literal {
        len: u64,
        remaining: u64,
    },
}

/// The streaming client framer. See the module documentation.
pub struct ClientFramer {
    buf: BytesMut,
    state: State,
    /// The tag of the command being framed (set at its first line).
    tag: Bytes,
    /// The server sent a `+` that asks for an answer line.
    answer_next: bool,
}

impl Default for ClientFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientFramer {
    pub fn new() -> ClientFramer {
        ClientFramer {
            buf: BytesMut::new(),
            state: Self::line_state(Start::Command),
            tag: Bytes::new(),
            answer_next: false,
        }
    }

    /// The buffer the connection reads into.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes received but not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether more may be read into the buffer. False only while a
    /// synchronizing literal waits for the server and a line's worth of
    /// early bytes is already held: a client that sends its data without
    /// waiting for `+` is not read from until the server answers.
    pub fn can_read(&self) -> bool {
        !matches!(self.state, State::Waiting(_)) || self.buf.len() < MAX_LINE
    }

    /// The tag of the command whose synchronizing literal waits for the
    /// server's `+`, if one does.
    pub fn waiting(&self) -> Option<&[u8]> {
        matches!(self.state, State::Waiting(_)).then_some(&self.tag[..])
    }

    /// The tag of the command being framed, or of the last one.
    pub fn current_tag(&self) -> &[u8] {
        &self.tag
    }

    /// The server answered the waiting literal with `+`: its data follows.
    /// False (and nothing changes) when no literal was waiting.
    pub fn go(&mut self) -> bool {
        let State::Waiting(ann) = self.state else {
            return false;
        };
        self.state = if ann.len == 0 {
            Self::line_state(Start::AfterLiteral)
        } else {
            State::Literal {
                len: ann.len,
                remaining: ann.len,
            }
        };
        true
    }

    /// The server completed the command instead of sending `+`: the data
    /// does not come, and the next bytes start a new command. False (and
    /// nothing changes) when no literal was waiting.
    pub fn refuse(&mut self) -> bool {
        if !matches!(self.state, State::Waiting(_)) {
            return false;
        }
        self.state = Self::line_state(Start::Command);
        true
    }

    /// The server sent a `+` that asks for an answer (AUTHENTICATE, IDLE):
    /// the next line that would start a command is an answer instead, and
    /// no literal is read from it. Ignored in the middle of a command.
    pub fn expect_answer(&mut self) {
        if self.at_command_start() {
            self.answer_next = true;
        }
    }

    /// The command that asked for an answer completed before one came.
    pub fn no_answer(&mut self) {
        self.answer_next = false;
        if let State::Line {
            start: start @ Start::Answer,
            continued: false,
            ..
        } = &mut self.state
        {
            *start = Start::Command;
        }
    }

    /// Whether an answer line is expected next.
    pub fn answer_expected(&self) -> bool {
        self.answer_next
            || matches!(
                self.state,
                State::Line {
                    start: Start::Answer,
                    ..
                }
            )
    }

    fn at_command_start(&self) -> bool {
        matches!(
            self.state,
            State::Line {
                start: Start::Command | Start::Answer,
                continued: false,
                ..
            }
        )
    }

    /// True between commands: nothing of a command is pending.
    pub fn at_boundary(&self) -> bool {
        self.at_command_start() && self.buf.is_empty()
    }

    /// Hands out whatever is buffered and not yet framed (the stream ended
    /// in the middle of a command, or early literal data was never asked for).
    pub fn take_rest(&mut self) -> Bytes {
        self.buf.split().freeze()
    }

    /// The next event from what is buffered, or `Ok(None)` when more bytes
    /// (or, for a waiting literal, the server's answer) are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, FrameError> {
        match self.state {
            State::Waiting(_) => Ok(None),
            State::Literal { len, remaining } => {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let take =
                    usize::try_from(remaining).map_or(self.buf.len(), |r| r.min(self.buf.len()));
                let data = self.buf.split_to(take).freeze();
                let remaining = remaining - take as u64;
                self.state = if remaining == 0 {
                    Self::line_state(Start::AfterLiteral)
                } else {
                    State::Literal { len, remaining }
                };
                Ok(Some(Event::Literal { data, remaining }))
            }
            State::Line {
                start,
                continued,
                scanned,
            } => {
                let start = self.resolve(start, continued);
                let Some(pos) = memchr::memchr(b'\n', &self.buf[scanned..]) else {
                    return Ok(self.line_without_end(start, continued));
                };
                let line = self.buf.split_to(scanned + pos + 1).freeze();
                let content = crate::protocol::framer::strip_line_end(&line);
                let head = (!continued).then(|| self.head(start, content)).flatten();
                let announced = match start {
                    Start::Answer => None,
                    _ => literal_announcement(content, continued).inspect_err(|_| {
                        // The line is gone from the buffer: what was scanned
                        // of it must not be trusted by a later call either.
                        self.state = Self::line_state(Start::Command);
                    })?,
                };
                let end = match announced {
                    Some(ann) if ann.non_sync => {
                        self.state = if ann.len == 0 {
                            Self::line_state(Start::AfterLiteral)
                        } else {
                            State::Literal {
                                len: ann.len,
                                remaining: ann.len,
                            }
                        };
                        End::Literal(ann)
                    }
                    Some(ann) => {
                        self.state = State::Waiting(ann);
                        End::Literal(ann)
                    }
                    None => {
                        self.state = Self::line_state(Start::Command);
                        End::Command
                    }
                };
                Ok(Some(Event::Line {
                    data: line,
                    head,
                    end,
                }))
            }
        }
    }

    /// Called when the client has closed its side: an error unless the
    /// stream ended between two commands. A literal the server never
    /// accepted counts as not started.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.state {
            State::Literal { len, remaining } => Err(FrameError::EofInLiteral {
                len,
                received: len - remaining,
            }),
            State::Waiting(_) if self.buf.is_empty() => {
                Err(FrameError::EofInResponse { pending: 0 })
            }
            _ if self.at_boundary() => Ok(()),
            _ => Err(FrameError::EofInResponse {
                pending: self.buf.len(),
            }),
        }
    }

    /// A line at a command start becomes an answer when one is expected.
    fn resolve(&mut self, start: Start, continued: bool) -> Start {
        if start == Start::Command && !continued && self.answer_next {
            self.answer_next = false;
            if let State::Line { start: s, .. } = &mut self.state {
                *s = Start::Answer;
            }
            return Start::Answer;
        }
        start
    }

    fn head(&mut self, start: Start, content: &[u8]) -> Option<Head> {
        match start {
            Start::AfterLiteral => None,
            Start::Answer => Some(Head::Answer),
            Start::Command => {
                let (tag, verb) = command_head(content);
                self.tag = Bytes::copy_from_slice(tag);
                Some(Head::Command {
                    tag: self.tag.clone(),
                    verb,
                })
            }
        }
    }

    fn line_state(start: Start) -> State {
        State::Line {
            start,
            continued: false,
            scanned: 0,
        }
    }

    /// No line end is buffered yet: remember how far we looked, and hand out
    /// a piece of the line if it has grown too long to hold.
    fn line_without_end(&mut self, start: Start, continued: bool) -> Option<Event> {
        let len = self.buf.len();
        if len <= MAX_LINE {
            self.state = State::Line {
                start,
                continued,
                scanned: len,
            };
            return None;
        }
        let piece = self.buf.split_to(len - LINE_TAIL).freeze();
        let head = (!continued).then(|| self.head(start, &piece)).flatten();
        self.state = State::Line {
            start,
            continued: true,
            scanned: LINE_TAIL,
        };
        Some(Event::Line {
            data: piece,
            head,
            end: End::Partial,
        })
    }
}

/// The tag (first word) and verb (second word) of a command line.
pub fn command_head(line: &[u8]) -> (&[u8], Verb) {
    let mut words = line.splitn(3, |&b| b == b' ');
    let tag = words.next().unwrap_or_default();
    let verb = Verb::parse(words.next().unwrap_or_default());
    (tag, verb)
}

/// A framing error, worded for the client's side of `--listen`.
pub fn describe(e: &FrameError) -> String {
    match e {
        FrameError::CountTooLong { digits } => {
            format!(
                "protocol error: the client announced a literal with a {digits}-digit byte count"
            )
        }
        FrameError::CountOverflow { count } => format!(
            "protocol error: the client announced a literal of {count} bytes, more than 2^64-1"
        ),
        FrameError::EofInLiteral { len, received } => format!(
            "the client closed the connection in the middle of a {len}-byte literal ({received} bytes sent)"
        ),
        FrameError::EofInResponse { pending: 0 } => {
            "the client closed the connection in the middle of a command".to_string()
        }
        FrameError::EofInResponse { pending } => format!(
            "the client closed the connection in the middle of a command ({pending} bytes without a line end)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How the simulated server answers each synchronizing literal, in order.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Answer {
        Go,
        Refuse,
    }

    /// Feeds `input` in pieces of the given sizes (cycling), answering
    /// waiting literals as `answers` says (then `Go`), and collects events,
    /// merging adjacent literal chunks and line pieces so that results can
    /// be compared across splittings.
    fn frame_with(
        input: &[u8],
        cuts: &[usize],
        answers: &[Answer],
    ) -> Result<Vec<Event>, FrameError> {
        let mut f = ClientFramer::new();
        let mut out = Vec::new();
        let mut rest = input;
        let mut i = 0;
        let mut answers = answers.iter();
        loop {
            loop {
                while let Some(ev) = f.next_event()? {
                    out.push(ev);
                }
                if f.waiting().is_none() {
                    break;
                }
                match answers.next().copied().unwrap_or(Answer::Go) {
                    Answer::Go => f.go(),
                    Answer::Refuse => f.refuse(),
                };
            }
            if rest.is_empty() {
                break;
            }
            let n = cuts[i % cuts.len()].clamp(1, rest.len());
            i += 1;
            f.buffer_mut().extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        f.finish()?;
        Ok(merge(out))
    }

    fn merge(events: Vec<Event>) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::new();
        for ev in events {
            match (out.last_mut(), ev) {
                (
                    Some(Event::Literal { data, remaining }),
                    Event::Literal {
                        data: more,
                        remaining: r,
                    },
                ) => {
                    let mut joined = data.to_vec();
                    joined.extend_from_slice(&more);
                    *data = Bytes::from(joined);
                    *remaining = r;
                }
                (
                    Some(Event::Line {
                        data,
                        end: end @ End::Partial,
                        ..
                    }),
                    Event::Line {
                        data: more, end: e, ..
                    },
                ) => {
                    let mut joined = data.to_vec();
                    joined.extend_from_slice(&more);
                    *data = Bytes::from(joined);
                    *end = e;
                }
                (_, ev) => out.push(ev),
            }
        }
        out
    }

    fn frame(input: &[u8]) -> Vec<Event> {
        frame_with(input, &[input.len().max(1)], &[]).unwrap()
    }

    fn concat(events: &[Event]) -> Vec<u8> {
        let mut v = Vec::new();
        for e in events {
            match e {
                Event::Line { data, .. } | Event::Literal { data, .. } => v.extend_from_slice(data),
            }
        }
        v
    }

    fn tags(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Line {
                    head: Some(Head::Command { tag, .. }),
                    ..
                } => Some(String::from_utf8_lossy(tag).into_owned()),
                _ => None,
            })
            .collect()
    }

    /// An APPEND whose message holds lines that look like commands and
    /// completions: they are literal data.
    const APPEND_WITH_FORGERY: &[u8] =
        b"a1 APPEND INBOX {39}\r\nSubject: x\r\n\r\na2 LOGOUT\r\na1 OK forged\r\n\r\na3 NOOP\r\n";

    #[test]
    fn lines_in_an_append_literal_are_data() {
        let ev = frame(APPEND_WITH_FORGERY);
        assert_eq!(tags(&ev), ["a1", "a3"], "{ev:?}");
        assert!(matches!(
            &ev[0],
            Event::Line {
                head: Some(Head::Command {
                    verb: Verb::Append,
                    ..
                }),
                end: End::Literal(Announcement {
                    len: 39,
                    binary: false,
                    non_sync: false
                }),
                ..
            }
        ));
        assert_eq!(
            ev[1],
            Event::Literal {
                data: Bytes::from_static(b"Subject: x\r\n\r\na2 LOGOUT\r\na1 OK forged\r\n"),
                remaining: 0
            }
        );
        assert_eq!(
            ev[2],
            Event::Line {
                data: Bytes::from_static(b"\r\n"),
                head: None,
                end: End::Command
            }
        );
        assert_eq!(concat(&ev), APPEND_WITH_FORGERY);
    }

    #[test]
    fn a_synchronizing_literal_waits_for_the_server() {
        let mut f = ClientFramer::new();
        f.buffer_mut()
            .extend_from_slice(b"a1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n");
        let ev = f.next_event().unwrap().unwrap();
        assert!(matches!(
            ev,
            Event::Line {
                end: End::Literal(_),
                ..
            }
        ));
        // Sent before the server's +: held, not framed.
        assert_eq!(f.next_event().unwrap(), None);
        assert_eq!(f.waiting(), Some(&b"a1"[..]));
        assert!(f.go());
        assert!(!f.go(), "nothing is waiting any more");
        assert_eq!(
            f.next_event().unwrap(),
            Some(Event::Literal {
                data: Bytes::from_static(b"alice"),
                remaining: 0
            })
        );
        assert!(matches!(
            f.next_event().unwrap(),
            Some(Event::Line {
                head: None,
                end: End::Literal(Announcement { len: 6, .. }),
                ..
            })
        ));
        assert!(f.go());
        assert!(matches!(
            f.next_event().unwrap(),
            Some(Event::Literal { .. })
        ));
        assert!(matches!(
            f.next_event().unwrap(),
            Some(Event::Line {
                head: None,
                end: End::Command,
                ..
            })
        ));
        assert!(f.at_boundary());
    }

    #[test]
    fn a_refused_literal_never_comes_and_the_next_line_is_a_command() {
        // The server said NO to the 1000-byte APPEND: the client goes on
        // with the next command, which must not be eaten as literal data.
        let input = b"a1 APPEND INBOX {1000}\r\na2 NOOP\r\n";
        let ev = frame_with(input, &[3], &[Answer::Refuse]).unwrap();
        assert_eq!(tags(&ev), ["a1", "a2"]);
        assert_eq!(concat(&ev), input);
        // Accepted, the same bytes are 12 bytes of a literal still unfinished.
        assert!(frame_with(input, &[3], &[Answer::Go]).is_err());
    }

    #[test]
    fn non_synchronizing_literals_do_not_wait() {
        for input in [
            &b"a1 APPEND INBOX {3+}\r\nabc\r\na2 NOOP\r\n"[..],
            b"a1 APPEND INBOX {3-}\r\nabc\r\na2 NOOP\r\n",
            b"a1 APPEND INBOX ~{3+}\r\n\0\0\0\r\na2 NOOP\r\n",
        ] {
            let mut f = ClientFramer::new();
            f.buffer_mut().extend_from_slice(input);
            let mut all = Vec::new();
            while let Some(ev) = f.next_event().unwrap() {
                assert!(f.waiting().is_none());
                all.push(ev);
            }
            assert_eq!(tags(&all), ["a1", "a2"]);
            assert!(f.at_boundary());
        }
    }

    #[test]
    fn literal8_and_zero_length_literals() {
        let input = b"a1 APPEND INBOX ~{4}\r\n\0\r\n\xff X {0}\r\n {0+}\r\n\r\n";
        let ev = frame(input);
        assert_eq!(tags(&ev), ["a1"]);
        let ends: Vec<End> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Line { end, .. } => Some(*end),
                _ => None,
            })
            .collect();
        assert_eq!(
            ends,
            [
                End::Literal(Announcement {
                    len: 4,
                    binary: true,
                    non_sync: false
                }),
                End::Literal(Announcement {
                    len: 0,
                    binary: false,
                    non_sync: false
                }),
                End::Literal(Announcement {
                    len: 0,
                    binary: false,
                    non_sync: true
                }),
                End::Command
            ]
        );
        assert_eq!(concat(&ev), input);
    }

    #[test]
    fn answers_are_lines_without_literals() {
        let mut f = ClientFramer::new();
        f.buffer_mut()
            .extend_from_slice(b"a1 AUTHENTICATE PLAIN\r\n");
        assert!(matches!(
            f.next_event().unwrap(),
            Some(Event::Line {
                head: Some(Head::Command {
                    verb: Verb::Authenticate,
                    ..
                }),
                ..
            })
        ));
        // The server's `+`: the next line is the SASL response, even if it
        // looks like a command or ends like a literal.
        f.expect_answer();
        f.buffer_mut()
            .extend_from_slice(b"a2 NOOP {5}\r\na3 NOOP\r\n");
        assert_eq!(
            f.next_event().unwrap(),
            Some(Event::Line {
                data: Bytes::from_static(b"a2 NOOP {5}\r\n"),
                head: Some(Head::Answer),
                end: End::Command
            })
        );
        assert!(matches!(
            f.next_event().unwrap(),
            Some(Event::Line {
                head: Some(Head::Command { .. }),
                ..
            })
        ));
        // An answer asked for and then withdrawn (the command completed).
        f.expect_answer();
        f.no_answer();
        f.buffer_mut().extend_from_slice(b"a4 NOOP\r\n");
        assert!(matches!(
            f.next_event().unwrap(),
            Some(Event::Line {
                head: Some(Head::Command { .. }),
                ..
            })
        ));
        // Split reads: the answer is still one answer.
        f.expect_answer();
        f.buffer_mut().extend_from_slice(b"DO");
        assert_eq!(f.next_event().unwrap(), None);
        assert!(f.answer_expected());
        f.buffer_mut().extend_from_slice(b"NE\r\n");
        assert!(matches!(
            f.next_event().unwrap(),
            Some(Event::Line {
                head: Some(Head::Answer),
                ..
            })
        ));
        assert!(!f.answer_expected());
    }

    #[test]
    fn an_answer_is_not_expected_in_the_middle_of_a_command() {
        let mut f = ClientFramer::new();
        f.buffer_mut()
            .extend_from_slice(b"a1 APPEND INBOX {2+}\r\nab");
        while f.next_event().unwrap().is_some() {}
        f.expect_answer();
        assert!(!f.answer_expected());
    }

    #[test]
    fn early_data_is_held_in_bounded_memory() {
        let mut f = ClientFramer::new();
        f.buffer_mut()
            .extend_from_slice(b"a1 APPEND INBOX {1000000}\r\n");
        assert!(f.next_event().unwrap().is_some());
        assert!(f.can_read());
        f.buffer_mut().extend_from_slice(&vec![b'x'; MAX_LINE]);
        assert_eq!(f.next_event().unwrap(), None);
        assert!(!f.can_read(), "stop reading a client that does not wait");
        f.go();
        assert!(f.can_read());
        assert!(
            matches!(f.next_event().unwrap(), Some(Event::Literal { remaining, .. }) if remaining == 1_000_000 - MAX_LINE as u64)
        );
    }

    #[test]
    fn counts_that_do_not_fit_are_errors_worded_for_the_client() {
        let mut f = ClientFramer::new();
        f.buffer_mut()
            .extend_from_slice(b"a1 APPEND x {18446744073709551616}\r\n");
        let e = f.next_event().unwrap_err();
        assert_eq!(
            describe(&e),
            "protocol error: the client announced a literal of 18446744073709551616 bytes, more than 2^64-1"
        );
        let mut f = ClientFramer::new();
        f.buffer_mut()
            .extend_from_slice(b"a1 APPEND x {1000000}\r\n0123456789");
        while f.next_event().unwrap().is_some() {
            f.go();
        }
        f.go();
        while f.next_event().unwrap().is_some() {}
        assert_eq!(
            describe(&f.finish().unwrap_err()),
            "the client closed the connection in the middle of a 1000000-byte literal (10 bytes sent)"
        );
    }

    #[test]
    fn a_call_after_an_error_does_not_panic() {
        let mut f = ClientFramer::new();
        f.buffer_mut().extend_from_slice(b"a1 APPEND INBOX ");
        assert_eq!(f.next_event(), Ok(None));
        f.buffer_mut()
            .extend_from_slice(b"{123456789012345678901234567890}\r\n");
        assert!(f.next_event().is_err());
        f.buffer_mut().extend_from_slice(b"a2 NOOP\r\n");
        assert!(f.next_event().is_ok());
    }

    #[test]
    fn long_lines_are_streamed_in_pieces() {
        let mut f = ClientFramer::new();
        f.buffer_mut().extend_from_slice(b"a1 SEARCH");
        let mut pieces = 0;
        let mut heads = 0;
        for _ in 0..1000 {
            f.buffer_mut().extend_from_slice(&[b' ', b'7'].repeat(1000));
            while let Some(ev) = f.next_event().unwrap() {
                if let Event::Line {
                    head,
                    end: End::Partial,
                    ..
                } = ev
                {
                    heads += usize::from(head.is_some());
                    pieces += 1;
                }
            }
            assert!(f.buffered() <= MAX_LINE + 2000);
        }
        f.buffer_mut().extend_from_slice(b" {3+}\r\nabc\r\n");
        let mut rest = Vec::new();
        while let Some(ev) = f.next_event().unwrap() {
            rest.push(ev);
        }
        assert!(pieces > 10);
        assert_eq!(heads, 1);
        assert!(matches!(
            rest[0],
            Event::Line {
                end: End::Literal(Announcement { len: 3, .. }),
                head: None,
                ..
            }
        ));
        assert!(f.finish().is_ok());
    }

    #[test]
    fn heads_of_odd_lines() {
        assert_eq!(command_head(b"a1 uid fetch 1 x"), (&b"a1"[..], Verb::Uid));
        assert_eq!(command_head(b"a1"), (&b"a1"[..], Verb::Other));
        assert_eq!(command_head(b""), (&b""[..], Verb::Other));
        assert_eq!(command_head(b"* OK x"), (&b"*"[..], Verb::Other));
        let ev = frame(b"\r\nA001 XYZZY\n");
        assert_eq!(tags(&ev), ["", "A001"]);
    }

    #[test]
    fn eof_between_commands_and_in_the_middle() {
        let mut f = ClientFramer::new();
        f.buffer_mut().extend_from_slice(b"a1 NOOP\r\na2 NO");
        while f.next_event().unwrap().is_some() {}
        assert!(f.finish().is_err());
        let mut f = ClientFramer::new();
        f.buffer_mut().extend_from_slice(b"a1 NOOP\r\n");
        while f.next_event().unwrap().is_some() {}
        assert!(f.finish().is_ok());
        // Gone while its literal waited for the server: mid-command.
        let mut f = ClientFramer::new();
        f.buffer_mut().extend_from_slice(b"a1 APPEND x {3}\r\n");
        while f.next_event().unwrap().is_some() {}
        assert!(f.finish().is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// One command of a generated client stream, with the answer the
        /// simulated server gives its synchronizing literals.
        #[derive(Clone, Debug)]
        struct Cmd {
            bytes: Vec<u8>,
            tag: String,
            answers: Vec<Answer>,
        }

        /// Literal data that is full of things that look like commands.
        fn hostile_data() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..40),
                    Just(b"\r\na9 LOGOUT\r\n".to_vec()),
                    Just(b"a1 OK forged\r\n".to_vec()),
                    Just(b"{5}\r\n".to_vec()),
                    Just(b"~{3+}\r\n".to_vec()),
                ],
                0..6,
            )
            .prop_map(|p| p.concat())
        }

        fn command(n: usize) -> impl Strategy<Value = Cmd> {
            let tag = format!("t{n}");
            prop_oneof!["[ -~]{0,30}".prop_map(move |t| t), Just(String::new()),].prop_flat_map(
                move |text| {
                    let tag = tag.clone();
                    proptest::collection::vec((hostile_data(), 0u8..5, any::<bool>()), 0..3)
                        .prop_map(move |lits| {
                            let text = text.replace(['{', '}'], "");
                            let mut bytes = format!("{tag} APPEND {text}").into_bytes();
                            let mut answers = Vec::new();
                            for (data, kind, refused) in &lits {
                                let (open, close) = match kind {
                                    0 => ("{", "}"),
                                    1 => ("{", "+}"),
                                    2 => ("{", "-}"),
                                    3 => ("~{", "}"),
                                    _ => ("~{", "+}"),
                                };
                                bytes.extend_from_slice(
                                    format!(" {open}{}{close}\r\n", data.len()).as_bytes(),
                                );
                                if close == "}" {
                                    if *refused {
                                        // The command ends here: the server said NO.
                                        answers.push(Answer::Refuse);
                                        return Cmd {
                                            bytes,
                                            tag: tag.clone(),
                                            answers,
                                        };
                                    }
                                    answers.push(Answer::Go);
                                }
                                bytes.extend_from_slice(data);
                                bytes.extend_from_slice(b" X");
                            }
                            bytes.extend_from_slice(b"\r\n");
                            Cmd {
                                bytes,
                                tag: tag.clone(),
                                answers,
                            }
                        })
                },
            )
        }

        fn stream() -> impl Strategy<Value = Vec<Cmd>> {
            (0usize..10).prop_flat_map(|n| (0..n).map(command).collect::<Vec<_>>())
        }

        proptest! {
            /// Whatever the literals hold and however the reads split: the
            /// commands are exactly those sent, each once, and no byte is
            /// lost, added or reordered.
            #[test]
            fn forged_lines_in_literals_never_become_commands(
                cmds in stream(),
                cuts in proptest::collection::vec(1usize..64, 1..8),
            ) {
                let input: Vec<u8> = cmds.iter().flat_map(|c| c.bytes.clone()).collect();
                let answers: Vec<Answer> = cmds.iter().flat_map(|c| c.answers.clone()).collect();
                let expected: Vec<String> = cmds.iter().map(|c| c.tag.clone()).collect();
                let whole = frame_with(&input, &[input.len().max(1)], &answers).unwrap();
                prop_assert_eq!(tags(&whole), expected);
                prop_assert_eq!(concat(&whole), input.clone());
                prop_assert_eq!(frame_with(&input, &cuts, &answers).unwrap(), whole);
            }

            #[test]
            fn arbitrary_bytes_never_panic_and_memory_stays_bounded(
                input in proptest::collection::vec(any::<u8>(), 0..4096),
                cut in 1usize..512,
                answers in proptest::collection::vec(any::<bool>(), 0..8),
            ) {
                let mut f = ClientFramer::new();
                let mut out = 0usize;
                let mut answers = answers.into_iter();
                for chunk in input.chunks(cut) {
                    f.buffer_mut().extend_from_slice(chunk);
                    loop {
                        match f.next_event() {
                            Ok(Some(Event::Line { data, .. } | Event::Literal { data, .. })) => out += data.len(),
                            Ok(None) if f.waiting().is_some() => {
                                if answers.next().unwrap_or(true) { f.go(); } else { f.refuse(); }
                            }
                            Ok(None) => break,
                            Err(_) => return Ok(()),
                        }
                    }
                    prop_assert!(f.buffered() <= MAX_LINE + cut);
                }
                prop_assert_eq!(out + f.buffered(), input.len());
            }
        }
        proptest! {
            #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

            /// Endless lines, huge counts, line ends and noise, in reads of
            /// any size up to one socket read; a client that sends early
            /// data is not read from (as the proxy does, by `can_read`).
            #[test]
            fn long_hostile_streams_never_grow_the_buffer(
                pieces in proptest::collection::vec(prop_oneof![
                    (any::<u8>(), 1usize..150_000)
                        .prop_map(|(b, n)| vec![if b == b'\n' { b'x' } else { b }; n]),
                    Just(b" {18446744073709551615+}\r\n".to_vec()),
                    Just(b"a1 APPEND x {70000}\r\n".to_vec()),
                    Just(b"\r\n".to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..100),
                ], 1..12),
                read in 1usize..crate::io::READ_SIZE,
                accept in any::<bool>(),
            ) {
                let input = pieces.concat();
                let mut f = ClientFramer::new();
                let mut out = 0usize;
                let mut rest = &input[..];
                while !rest.is_empty() {
                    if f.can_read() {
                        let n = read.min(rest.len());
                        f.buffer_mut().extend_from_slice(&rest[..n]);
                        rest = &rest[n..];
                    } else if accept {
                        f.go();
                    } else {
                        f.refuse();
                    }
                    loop {
                        match f.next_event() {
                            Ok(Some(Event::Line { data, .. } | Event::Literal { data, .. })) => out += data.len(),
                            Ok(None) => break,
                            Err(_) => return Ok(()),
                        }
                    }
                    prop_assert!(f.buffered() <= MAX_LINE + read, "holds {} bytes", f.buffered());
                }
                prop_assert_eq!(out + f.buffered(), input.len());
            }
        }
    }
}
