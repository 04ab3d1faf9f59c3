//! The response framer: the server's bytes in, response events out.
//!
//! IMAP responses are lines, except that a line ending in `{n}` (or `{n+}`,
//! or `~{n}` for binary literal8) is followed by exactly `n` bytes of
//! arbitrary data, after which the *same* response continues with another
//! line. Anything that does not honour this — a shell pipe, a regex over the
//! output, `curl -X FETCH` — will sooner or later take a line inside a message
//! body (`a4 OK` forged by a mail's author) for the server's completion.
//!
//! The framer is sans-IO: the connection reads into [`Framer::buffer_mut`]
//! and then calls [`Framer::next_event`] until it returns `Ok(None)`, which
//! means "need more bytes" — an ordinary outcome, not an error.
//!
//! Two properties matter beyond correctness:
//!
//! * **Memory is bounded by us, never by the server.** Literal data is handed
//!   out in whatever chunks are buffered (zero-copy `Bytes` split off the
//!   read buffer), so a 1 GiB literal costs one read buffer. A line longer
//!   than [`MAX_LINE`] is handed out in pieces too. Nothing is ever allocated
//!   from a size the server announced.
//! * **No rescanning.** A partial line remembers how far it has been searched
//!   for its line feed, so bytes arriving one at a time cost O(1) each.

use bytes::{Bytes, BytesMut};
use std::fmt;

/// How many bytes of a line without a line end are held before the line is
/// handed out in pieces. Big enough that ordinary responses (even long
/// CAPABILITY or FLAGS lines) arrive whole, small enough to keep memory flat
/// when a server sends an endless line.
pub const MAX_LINE: usize = 64 * 1024;

/// When a long line is handed out in pieces, this many bytes at its end are
/// kept back, so that a literal announcement (`~{` + 20 digits + `+}` + CRLF
/// is 26 bytes) is never split between two pieces.
const LINE_TAIL: usize = 32;

/// The most digits a literal count may have: u64::MAX has 20.
const MAX_COUNT_DIGITS: usize = 20;

/// What kind of response a line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `* …`: data or a status the server sends on its own.
    Untagged(Status),
    /// `+ …`: the server asks for more of the current command.
    Continuation,
    /// `<tag> OK|NO|BAD …`: the completion of a command.
    Tagged { tag: Bytes, status: Status },
}

/// The status word of a response, where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    Bye,
    Preauth,
    /// Untagged data (`* 3 EXISTS`, `* CAPABILITY …`) or a malformed status.
    Other,
}

impl Status {
    fn from_word(word: &[u8]) -> Status {
        match word.to_ascii_uppercase().as_slice() {
            b"OK" => Status::Ok,
            b"NO" => Status::No,
            b"BAD" => Status::Bad,
            b"BYE" => Status::Bye,
            b"PREAUTH" => Status::Preauth,
            _ => Status::Other,
        }
    }
}

/// The start of a response, read from its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub kind: Kind,
    /// The status carries the `[ALERT]` response code, which RFC 9051 says
    /// the user must see.
    pub alert: bool,
}

/// How a piece of a line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnd {
    /// The line was too long to hold and continues in the next `Line` event.
    Partial,
    /// The line announced a literal: `len` bytes of data follow (as
    /// `Literal` events), then the same response continues with a line.
    Literal { len: u64, binary: bool },
    /// The line ended the response.
    Response,
}

/// A piece of the server's output. Concatenating the bytes of all events
/// gives back exactly the bytes the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Line {
        /// The raw bytes, including the line end (CRLF or a bare LF) unless
        /// `end` is `Partial`.
        data: Bytes,
        /// Set on the first piece of every response.
        head: Option<Head>,
        end: LineEnd,
    },
    /// A chunk of literal data; `remaining` bytes of the literal follow it.
    Literal { data: Bytes, remaining: u64 },
}

/// The server broke the framing rules in a way that makes the rest of the
/// stream impossible to frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A literal count with more digits than any u64 has.
    CountTooLong { digits: usize },
    /// A literal count that does not fit in 64 bits.
    CountOverflow { count: String },
    /// The stream ended in the middle of a literal.
    EofInLiteral { len: u64, received: u64 },
    /// The stream ended in the middle of a line or a response.
    EofInResponse { pending: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::CountTooLong { digits } => write!(
                f,
                "protocol error: the server announced a literal with a {digits}-digit byte count"
            ),
            FrameError::CountOverflow { count } => write!(
                f,
                "protocol error: the server announced a literal of {count} bytes, more than 2^64-1"
            ),
            FrameError::EofInLiteral { len, received } => write!(
                f,
                "server closed the connection in the middle of a {len}-byte literal ({received} bytes received)"
            ),
            FrameError::EofInResponse { pending } => {
                if *pending > 0 {
                    write!(
                        f,
                        "server closed the connection in the middle of a response ({pending} bytes without a line end)"
                    )
                } else {
                    write!(
                        f,
                        "server closed the connection in the middle of a response (after a literal)"
                    )
                }
            }
        }
    }
}

impl std::error::Error for FrameError {}

#[derive(Debug, Clone, Copy)]
enum State {
    Line {
        /// The line starts a new response (it is not the tail after a literal).
        response_start: bool,
        /// A first piece of this line has already been handed out.
        continued: bool,
        /// How many buffered bytes of the line are known to hold no LF.
        scanned: usize,
    },
    Literal {
        len: u64,
        remaining: u64,
    },
}

/// The streaming framer. See the module documentation.
pub struct Framer {
    buf: BytesMut,
    state: State,
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    pub fn new() -> Framer {
        Framer {
            buf: BytesMut::new(),
            state: State::Line {
                response_start: true,
                continued: false,
                scanned: 0,
            },
        }
    }

    /// The buffer the connection reads into. Bytes appended here are framed
    /// by the following calls to [`next_event`](Self::next_event).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes received but not yet handed out. After a STARTTLS completion
    /// this must be zero: anything else arrived in plaintext before the
    /// handshake and cannot be trusted.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Hands out whatever is buffered and not yet framed (a line without
    /// its end, a literal announcement's tail). Only for when the stream
    /// ended in the middle of a response: what did arrive is not lost.
    pub fn take_rest(&mut self) -> Bytes {
        self.buf.split().freeze()
    }

    /// Bytes of the literal being read that have not arrived yet (0 when
    /// no literal is being read): what the server is bound to send next,
    /// whatever else it then sends.
    pub fn literal_unreceived(&self) -> u64 {
        match self.state {
            State::Literal { remaining, .. } => remaining.saturating_sub(self.buf.len() as u64),
            State::Line { .. } => 0,
        }
    }

    /// True between responses: nothing of a response is pending.
    pub fn at_response_boundary(&self) -> bool {
        matches!(
            self.state,
            State::Line {
                response_start: true,
                continued: false,
                ..
            }
        ) && self.buf.is_empty()
    }

    /// The next event from what is buffered, or `Ok(None)` when more bytes
    /// are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, FrameError> {
        match self.state {
            State::Literal { len, remaining } => {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let take =
                    usize::try_from(remaining).map_or(self.buf.len(), |r| r.min(self.buf.len()));
                let data = self.buf.split_to(take).freeze();
                let remaining = remaining - take as u64;
                self.state = if remaining == 0 {
                    Self::line_state(false)
                } else {
                    State::Literal { len, remaining }
                };
                Ok(Some(Event::Literal { data, remaining }))
            }
            State::Line {
                response_start,
                continued,
                scanned,
            } => {
                let Some(pos) = memchr::memchr(b'\n', &self.buf[scanned..]) else {
                    return Ok(self.line_without_end(response_start, continued));
                };
                let line = self.buf.split_to(scanned + pos + 1).freeze();
                let content = strip_line_end(&line);
                let head = (response_start && !continued).then(|| parse_head(content));
                let announced = literal_announcement(content, continued).inspect_err(|_| {
                    // The line is gone from the buffer: what was scanned of
                    // it must not be trusted by a later call either.
                    self.state = Self::line_state(true);
                })?;
                let end = match announced {
                    Some(Announcement { len, binary, .. }) => {
                        self.state = if len == 0 {
                            Self::line_state(false)
                        } else {
                            State::Literal {
                                len,
                                remaining: len,
                            }
                        };
                        LineEnd::Literal { len, binary }
                    }
                    None => {
                        self.state = Self::line_state(true);
                        LineEnd::Response
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

    /// Called when the server has closed its side: an error unless the
    /// stream ended between two responses.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.state {
            State::Literal { len, remaining } => Err(FrameError::EofInLiteral {
                len,
                received: len - remaining,
            }),
            State::Line {
                response_start,
                continued,
                ..
            } => {
                if self.buf.is_empty() && response_start && !continued {
                    Ok(())
                } else {
                    Err(FrameError::EofInResponse {
                        pending: self.buf.len(),
                    })
                }
            }
        }
    }

    fn line_state(response_start: bool) -> State {
        State::Line {
            response_start,
            continued: false,
            scanned: 0,
        }
    }

    /// No line end is buffered yet: remember how far we looked, and hand out
    /// a piece of the line if it has grown too long to hold.
    fn line_without_end(&mut self, response_start: bool, continued: bool) -> Option<Event> {
        let len = self.buf.len();
        if len <= MAX_LINE {
            self.state = State::Line {
                response_start,
                continued,
                scanned: len,
            };
            return None;
        }
        let piece = self.buf.split_to(len - LINE_TAIL).freeze();
        let head = (response_start && !continued).then(|| parse_head(&piece));
        self.state = State::Line {
            response_start,
            continued: true,
            scanned: LINE_TAIL,
        };
        Some(Event::Line {
            data: piece,
            head,
            end: LineEnd::Partial,
        })
    }
}

/// The line without its CRLF or bare LF.
pub fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A literal announced at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    pub len: u64,
    /// `~{n}`: literal8 (RFC 3516), which may carry NUL bytes.
    pub binary: bool,
    /// `{n+}` or `{n-}` (LITERAL+/LITERAL-): the sender does not wait for a
    /// continuation request. Only clients send these.
    pub non_sync: bool,
}

/// Reads a literal announcement (`{n}`, `{n+}`, `{n-}`, `~{n}`) at the end
/// of a line, without its line end. `continued` says earlier pieces of the
/// line were handed out, so a run of digits reaching the start of `content`
/// may be longer than it looks.
pub fn literal_announcement(
    content: &[u8],
    continued: bool,
) -> Result<Option<Announcement>, FrameError> {
    let Some(inner) = content.strip_suffix(b"}") else {
        return Ok(None);
    };
    let (inner, non_sync) = match inner.last() {
        Some(b'+' | b'-') => (&inner[..inner.len() - 1], true),
        _ => (inner, false),
    };
    let digits = inner
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return Ok(None);
    }
    let before = &inner[..inner.len() - digits];
    if before.is_empty() && continued {
        // The digit run reaches back past LINE_TAIL bytes: far too long.
        return Err(FrameError::CountTooLong { digits });
    }
    let Some(before) = before.strip_suffix(b"{") else {
        return Ok(None);
    };
    if digits > MAX_COUNT_DIGITS {
        return Err(FrameError::CountTooLong { digits });
    }
    let text = &inner[inner.len() - digits..];
    let mut count: u64 = 0;
    for &d in text {
        count = count
            .checked_mul(10)
            .and_then(|c| c.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| FrameError::CountOverflow {
                count: String::from_utf8_lossy(text).into_owned(),
            })?;
    }
    Ok(Some(Announcement {
        len: count,
        binary: before.ends_with(b"~"),
        non_sync,
    }))
}

/// Classifies a response by its first words. Never fails: a line the server
/// garbled is shown to the user as it is, classified as well as it can be.
pub fn parse_head(line: &[u8]) -> Head {
    let line = strip_line_end(line);
    let mut words = line.splitn(3, |&b| b == b' ');
    let first = words.next().unwrap_or_default();
    let second = words.next().unwrap_or_default();
    let rest = words.next().unwrap_or_default();
    let kind = match first {
        b"*" => Kind::Untagged(Status::from_word(second)),
        b"+" => Kind::Continuation,
        _ => Kind::Tagged {
            tag: Bytes::copy_from_slice(first),
            status: Status::from_word(second),
        },
    };
    let alert = match kind {
        Kind::Untagged(Status::Other) | Kind::Continuation => false,
        _ => rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"[ALERT]"),
    };
    Head { kind, alert }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_after_an_error_does_not_panic() {
        let mut f = Framer::new();
        f.buffer_mut().extend_from_slice(b"* 1 FETCH (BODY[] ");
        assert_eq!(f.next_event(), Ok(None));
        f.buffer_mut()
            .extend_from_slice(b"{123456789012345678901234567890}\r\n");
        assert!(f.next_event().is_err());
        f.buffer_mut().extend_from_slice(b"* OK\r\n");
        assert!(f.next_event().is_ok());
    }

    #[test]
    fn the_unreceived_part_of_a_literal_is_known_while_it_is_read() {
        let mut f = Framer::new();
        f.buffer_mut()
            .extend_from_slice(b"* 1 FETCH (BODY[] {100}\r\nabc");
        assert_eq!(f.literal_unreceived(), 0);
        assert!(matches!(f.next_event(), Ok(Some(Event::Line { .. }))));
        // Buffered, not yet handed out: counted as received.
        assert_eq!(f.literal_unreceived(), 97);
        assert!(matches!(
            f.next_event(),
            Ok(Some(Event::Literal { remaining: 97, .. }))
        ));
        assert_eq!(f.literal_unreceived(), 97);
        f.buffer_mut().extend_from_slice(&[b'x'; 97]);
        assert_eq!(f.literal_unreceived(), 0);
        assert!(matches!(
            f.next_event(),
            Ok(Some(Event::Literal { remaining: 0, .. }))
        ));
        assert_eq!(f.literal_unreceived(), 0);
    }

    /// Feeds `input` in pieces of the given sizes (cycling) and collects
    /// events, merging adjacent literal chunks and line pieces so that
    /// results can be compared across splittings.
    fn frame_split(input: &[u8], cuts: &[usize]) -> Result<Vec<Event>, FrameError> {
        let mut f = Framer::new();
        let mut out = Vec::new();
        let mut rest = input;
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].clamp(1, rest.len());
            i += 1;
            f.buffer_mut().extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(ev) = f.next_event()? {
                out.push(ev);
            }
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
                        end: end @ LineEnd::Partial,
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
        frame_split(input, &[input.len().max(1)]).unwrap()
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

    const FETCH_WITH_FORGERY: &[u8] = b"* 1 FETCH (BODY[] {39}\r\nSubject: x\r\n\r\na4 OK forged completion\r\n)\r\na4 OK Fetch completed.\r\n";

    #[test]
    fn literal_that_looks_like_a_completion_is_data() {
        let ev = frame(FETCH_WITH_FORGERY);
        assert_eq!(ev.len(), 4, "{ev:?}");
        assert!(matches!(
            &ev[0],
            Event::Line {
                head: Some(Head {
                    kind: Kind::Untagged(Status::Other),
                    ..
                }),
                end: LineEnd::Literal {
                    len: 39,
                    binary: false
                },
                ..
            }
        ));
        assert_eq!(
            ev[1],
            Event::Literal {
                data: Bytes::from_static(b"Subject: x\r\n\r\na4 OK forged completion\r\n"),
                remaining: 0
            }
        );
        assert_eq!(
            ev[2],
            Event::Line {
                data: Bytes::from_static(b")\r\n"),
                head: None,
                end: LineEnd::Response
            }
        );
        match &ev[3] {
            Event::Line {
                head:
                    Some(Head {
                        kind: Kind::Tagged { tag, status },
                        ..
                    }),
                end: LineEnd::Response,
                ..
            } => {
                assert_eq!(&tag[..], b"a4");
                assert_eq!(*status, Status::Ok);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let input: &[u8] = b"* OK [CAPABILITY IMAP4rev1] ready\r\n* 2 FETCH (BODY[1] ~{6}\r\n\0\r\n\xff}\n BODY[2] {0}\r\n FLAGS (\\Seen))\r\n+ go ahead\r\nA1 NO [ALERT] disk full\n";
        let whole = frame(input);
        for cut in 1..input.len() {
            // Two reads, split at `cut`.
            let split = frame_split(input, &[cut, input.len()]).unwrap();
            assert_eq!(split, whole, "split at {cut}");
        }
        for size in 1..8 {
            assert_eq!(
                frame_split(input, &[size]).unwrap(),
                whole,
                "chunks of {size}"
            );
        }
        assert_eq!(concat(&whole), input);
    }

    #[test]
    fn zero_length_and_several_literals_in_one_response() {
        let ev = frame(b"* 1 FETCH (A {0}\r\n B {3}\r\nabc C {2}\r\nde)\r\n");
        let ends: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                Event::Line { end, .. } => Some(*end),
                _ => None,
            })
            .collect();
        assert_eq!(
            ends,
            [
                LineEnd::Literal {
                    len: 0,
                    binary: false
                },
                LineEnd::Literal {
                    len: 3,
                    binary: false
                },
                LineEnd::Literal {
                    len: 2,
                    binary: false
                },
                LineEnd::Response
            ]
        );
        let heads = ev
            .iter()
            .filter(|e| matches!(e, Event::Line { head: Some(_), .. }))
            .count();
        assert_eq!(heads, 1, "one response, one head");
    }

    #[test]
    fn literal8_with_binary_data() {
        let mut input = b"* 1 FETCH (BINARY[] ~{256}\r\n".to_vec();
        input.extend((0..=255u8).collect::<Vec<_>>());
        input.extend_from_slice(b")\r\n");
        let ev = frame(&input);
        assert!(matches!(
            ev[0],
            Event::Line {
                end: LineEnd::Literal {
                    len: 256,
                    binary: true
                },
                ..
            }
        ));
        match &ev[1] {
            Event::Literal { data, remaining: 0 } => assert_eq!(data.len(), 256),
            other => panic!("{other:?}"),
        }
        assert_eq!(concat(&ev), input);
    }

    #[test]
    fn bare_lf_ends_a_line_and_bare_cr_does_not() {
        let ev = frame(b"* OK a\rb\n* 1 EXISTS\n");
        assert_eq!(ev.len(), 2);
        assert!(matches!(&ev[0], Event::Line { data, .. } if &data[..] == b"* OK a\rb\n"));
    }

    #[test]
    fn overflowing_counts_are_errors() {
        let mut f = Framer::new();
        f.buffer_mut()
            .extend_from_slice(b"* 1 FETCH (BODY[] {18446744073709551616}\r\n");
        assert!(matches!(
            f.next_event(),
            Err(FrameError::CountOverflow { .. })
        ));

        let mut f = Framer::new();
        f.buffer_mut()
            .extend_from_slice(b"* 1 FETCH (BODY[] {000000000000000000000001}\r\n");
        assert_eq!(f.next_event(), Err(FrameError::CountTooLong { digits: 24 }));

        // The largest count is accepted (and would be streamed, never allocated).
        let mut f = Framer::new();
        f.buffer_mut()
            .extend_from_slice(b"* 1 FETCH (BODY[] {18446744073709551615}\r\nabc");
        assert!(matches!(
            f.next_event(),
            Ok(Some(Event::Line {
                end: LineEnd::Literal { len: u64::MAX, .. },
                ..
            }))
        ));
        assert!(
            matches!(f.next_event(), Ok(Some(Event::Literal { remaining, .. })) if remaining == u64::MAX - 3)
        );
    }

    #[test]
    fn not_literals() {
        for line in [
            &b"* OK {}\r\n"[..],
            b"* OK {abc}\r\n",
            b"* OK 12}\r\n",
            b"* OK {5} \r\n",
        ] {
            let ev = frame(line);
            assert!(
                matches!(
                    ev[..],
                    [Event::Line {
                        end: LineEnd::Response,
                        ..
                    }]
                ),
                "{line:?}"
            );
        }
    }

    #[test]
    fn long_lines_are_streamed_in_pieces() {
        let mut f = Framer::new();
        let mut total = 0;
        f.buffer_mut().extend_from_slice(b"* SEARCH");
        for _ in 0..1000 {
            f.buffer_mut().extend_from_slice(&[b' ', b'7'].repeat(1000));
            while let Some(ev) = f.next_event().unwrap() {
                assert!(matches!(
                    ev,
                    Event::Line {
                        end: LineEnd::Partial,
                        ..
                    }
                ));
                total += 1;
            }
            assert!(f.buffered() <= MAX_LINE + 2000);
        }
        f.buffer_mut().extend_from_slice(b" {3}\r\nabc\r\n");
        let mut rest = Vec::new();
        while let Some(ev) = f.next_event().unwrap() {
            rest.push(ev);
        }
        assert!(total > 10);
        assert!(matches!(
            rest[0],
            Event::Line {
                end: LineEnd::Literal { len: 3, .. },
                head: None,
                ..
            }
        ));
        assert!(f.finish().is_ok());
    }

    #[test]
    fn eof_in_the_middle_of_a_literal_says_how_much_came() {
        let mut f = Framer::new();
        f.buffer_mut()
            .extend_from_slice(b"* 1 FETCH (BODY[] {1000000}\r\n0123456789");
        while f.next_event().unwrap().is_some() {}
        let err = f.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "server closed the connection in the middle of a 1000000-byte literal (10 bytes received)"
        );
    }

    #[test]
    fn heads() {
        assert_eq!(
            parse_head(b"* BYE [ALERT] going down\r\n"),
            Head {
                kind: Kind::Untagged(Status::Bye),
                alert: true
            }
        );
        assert_eq!(parse_head(b"+\r\n").kind, Kind::Continuation);
        assert_eq!(parse_head(b"+ idling\r\n").kind, Kind::Continuation);
        assert_eq!(
            parse_head(b"a1 bad what\r\n").kind,
            Kind::Tagged {
                tag: Bytes::from_static(b"a1"),
                status: Status::Bad
            }
        );
        assert_eq!(
            parse_head(b"* PREAUTH hi\r\n").kind,
            Kind::Untagged(Status::Preauth)
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A response stream built from pieces: plain lines, lines with
        /// literals of arbitrary binary data, continuations, completions.
        fn stream() -> impl Strategy<Value = Vec<u8>> {
            let piece = prop_oneof![
                "[ -~]{0,40}".prop_map(|t| format!("* OK {t}\r\n").into_bytes()),
                proptest::collection::vec(any::<u8>(), 0..300).prop_map(|data| {
                    let mut v = format!("* 1 FETCH (BODY[] {{{}}}\r\n", data.len()).into_bytes();
                    v.extend_from_slice(&data);
                    v.extend_from_slice(b")\r\n");
                    v
                }),
                proptest::collection::vec(any::<u8>(), 0..50).prop_map(|data| {
                    let mut v = format!("* 2 FETCH (BINARY[] ~{{{}}}\r\n", data.len()).into_bytes();
                    v.extend_from_slice(&data);
                    v.extend_from_slice(b")\n");
                    v
                }),
                Just(b"+ go ahead\r\n".to_vec()),
                Just(b"a7 OK done\r\n".to_vec()),
            ];
            proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
        }

        proptest! {
            #[test]
            fn any_chunking_gives_the_same_events(input in stream(), cuts in proptest::collection::vec(1usize..64, 1..8)) {
                let whole = frame(&input);
                prop_assert_eq!(frame_split(&input, &cuts).unwrap(), whole.clone());
                prop_assert_eq!(concat(&whole), input);
            }

            /// What a reader may wait for (the socket's low-water mark) is
            /// never more than the stream still holds: waiting for it cannot
            /// stall a complete stream, however it was cut.
            #[test]
            fn the_unreceived_literal_is_never_more_than_what_follows(input in stream(), cuts in proptest::collection::vec(1usize..64, 1..8)) {
                let mut f = Framer::new();
                let mut fed = 0;
                let mut i = 0;
                while fed < input.len() {
                    let n = cuts[i % cuts.len()].min(input.len() - fed);
                    i += 1;
                    f.buffer_mut().extend_from_slice(&input[fed..fed + n]);
                    fed += n;
                    while f.next_event().unwrap().is_some() {}
                    let wanted = f.literal_unreceived();
                    prop_assert!(wanted <= (input.len() - fed) as u64);
                }
                prop_assert_eq!(f.literal_unreceived(), 0);
            }

            #[test]
            fn arbitrary_bytes_never_panic_and_memory_stays_bounded(input in proptest::collection::vec(any::<u8>(), 0..4096), cut in 1usize..512) {
                let mut f = Framer::new();
                let mut out = 0usize;
                for chunk in input.chunks(cut) {
                    f.buffer_mut().extend_from_slice(chunk);
                    loop {
                        match f.next_event() {
                            Ok(Some(Event::Line { data, .. } | Event::Literal { data, .. })) => out += data.len(),
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
            // Inputs of megabytes: fewer cases.
            #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

            /// Endless lines, huge literal counts, line ends and noise, read
            /// in any size up to one socket read: the framer never holds
            /// more than one line limit plus one read, and loses nothing.
            #[test]
            fn long_hostile_streams_never_grow_the_buffer(
                pieces in proptest::collection::vec(prop_oneof![
                    (any::<u8>(), 1usize..150_000)
                        .prop_map(|(b, n)| vec![if b == b'\n' { b'x' } else { b }; n]),
                    Just(b" {18446744073709551615}\r\n".to_vec()),
                    Just(b"* 1 FETCH (BODY[] {70000}\r\n".to_vec()),
                    Just(b"\r\n".to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..100),
                ], 1..12),
                read in 1usize..crate::io::READ_SIZE,
            ) {
                let input = pieces.concat();
                let mut f = Framer::new();
                let mut out = 0usize;
                for chunk in input.chunks(read) {
                    f.buffer_mut().extend_from_slice(chunk);
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
