//! `--log FILE`: a transcript of the whole session, appended to FILE, one
//! record per line, for a person to read and a script to parse.
//!
//! ```text
//! 2026-11-21T10:00:00.123Z *: connect 127.0.0.1:143 (127.0.0.1:143)
//! 2026-11-21T10:00:00.125Z S: * OK [CAPABILITY IMAP4rev1 …] Dovecot ready.
//! 2026-11-21T10:00:00.130Z C: a1 LOGIN alice ****
//! 2026-11-21T10:00:00.140Z S: * 1 FETCH (BODY[] {17}
//! 2026-11-21T10:00:00.140Z S# literal 17 bytes
//! 2026-11-21T10:00:00.140Z S+ Subject: hi
//! 2026-11-21T10:00:00.140Z S- \x0d\x0ahi
//! 2026-11-21T10:00:00.140Z S: )
//! ```
//!
//! Each record is `TIMESTAMP SP SOURCE MARK SP TEXT`. The marks say how the
//! text maps back to bytes: `:` (a line) and `+` (a line of literal data)
//! had a CRLF after the text; `-` had nothing after it (a piece of a longer
//! line, a line ending in a bare LF, the last bytes of a literal); `#`
//! announces a literal. The text is escaped so that every record stays on
//! one line and the bytes can be recovered exactly ([`unescape`]): `\\` is
//! a backslash, `\xNN` a byte, and every other character stands for its
//! UTF-8 bytes; what is escaped is the one rule of [`crate::text`], the
//! same as on a terminal. The README has the full grammar.
//!
//! Secrets never reach the file: the session passes the masked form of a
//! LOGIN or AUTHENTICATE line (`command::masked`) and `****` for SASL
//! responses, and the literal data and the rest of the line of such a
//! command are left out.

use crate::error;
use crate::protocol::client_framer;
use crate::protocol::command;
use crate::protocol::framer::{Event, LineEnd, strip_line_end};
use crate::text::io_text;
use anyhow::Result;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

/// `--log-literals`: what of a literal's data the transcript keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Literals {
    /// The data, escaped, split at its line ends.
    Full,
    /// Only the size (messages can be large, or private).
    Size,
}

/// `--log FILE` and `--log-literals`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranscriptOptions {
    pub path: PathBuf,
    pub literals: Literals,
}

/// What the session is sending, for [`Transcript::client`].
#[derive(Clone, Copy, Debug)]
pub enum Sending<'a> {
    /// A new command line or continuation response. `Some` is shown in its
    /// place and makes it secret: its literal data and the rest of the
    /// command line are left out too.
    Line(Option<&'a str>),
    /// More of what is being sent: literal data, the rest of a command line.
    More,
}

/// A piece of literal data without a line end is written out once it is
/// this long, so an endless binary literal costs bounded memory.
const PIECE: usize = 4096;

/// One direction of the conversation: the unfinished last line of literal
/// data, and (client side) where the bytes sent stand.
#[derive(Default)]
struct Side {
    pending: Vec<u8>,
    /// Client side: literal bytes still to come after an announcement.
    literal: u64,
    /// Client side: the command being sent carries a secret (LOGIN,
    /// AUTHENTICATE): its literal data and the rest of its line are left out.
    secret: bool,
}

pub struct Transcript {
    out: Box<dyn Write>,
    literals: Literals,
    /// Shown in the warning when writing fails.
    name: String,
    /// Writing failed once: warned, and nothing more is written.
    failed: bool,
    server: Side,
    client: Side,
    /// `--listen`: the connection's number (`#3`), written after the
    /// timestamp of each record; empty for a session of its own.
    label: String,
    stamp: Stamp,
    /// The record being written, kept for its capacity.
    buf: Vec<u8>,
}

/// The time of what is being recorded, read once per piece of the
/// conversation (a line, a chunk of literal data as it was received): the
/// records of one chunk arrived together. A bulk literal writes thousands
/// of records a millisecond; reading the clock for each was a sixth of the
/// proxy's CPU time, formatting the date for each most of it before that.
#[derive(Default)]
struct Stamp {
    millis: u128,
    text: String,
    /// Set by [`Transcript::at`]: the next piece keeps that time.
    held: bool,
}

impl Stamp {
    /// Takes the time now for the records that follow.
    fn now(&mut self) {
        if std::mem::take(&mut self.held) {
            return;
        }
        self.set(SystemTime::now());
    }

    fn set(&mut self, t: SystemTime) {
        let millis = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        if millis != self.millis || self.text.is_empty() {
            self.millis = millis;
            self.text = timestamp(t);
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.text.as_bytes());
    }
}

/// `S+`, `C-` and the like, without an allocation per record.
fn mark(source: char, m: char) -> &'static str {
    match (source, m) {
        ('S', ':') => "S:",
        ('S', '+') => "S+",
        ('S', '-') => "S-",
        ('S', '#') => "S#",
        ('C', ':') => "C:",
        ('C', '+') => "C+",
        ('C', '-') => "C-",
        ('C', '#') => "C#",
        _ => "*:",
    }
}

impl Transcript {
    /// Opens FILE for appending, creating it readable by its owner only: it
    /// holds mail and mailbox names even though passwords are redacted.
    pub fn open(path: &Path, literals: Literals) -> Result<Transcript> {
        let file = open_file(path)?;
        Ok(Transcript::to_writer(
            Box::new(BufWriter::with_capacity(64 * 1024, file)),
            literals,
            path.display().to_string(),
        ))
    }

    pub fn to_writer(out: Box<dyn Write>, literals: Literals, name: String) -> Transcript {
        Transcript {
            out,
            literals,
            name,
            failed: false,
            server: Side::default(),
            client: Side::default(),
            label: String::new(),
            stamp: Stamp::default(),
            buf: Vec::new(),
        }
    }

    /// The next piece recorded happened at `t`, not now (`--listen`
    /// formats the server's side on another thread, a little later).
    pub fn at(&mut self, t: SystemTime) {
        self.stamp.set(t);
        self.stamp.held = true;
    }

    /// Records of one connection among several (`--listen`): each gets
    /// `label` (`#3`) between its timestamp and its source.
    pub fn labelled(mut self, label: &str) -> Transcript {
        self.label = label.to_string();
        self
    }

    /// Something that happened to the connection: connect, TLS, COMPRESS, close.
    pub fn event(&mut self, text: &str) {
        self.stamp.now();
        self.record("*:", text.as_bytes());
    }

    /// A piece of the server's output, as the framer handed it out.
    pub fn server(&mut self, ev: &Event) {
        self.stamp.now();
        match ev {
            Event::Line { data, end, .. } => {
                self.line('S', data);
                if let LineEnd::Literal { len, .. } = end {
                    self.literal_header('S', *len, false);
                }
            }
            Event::Literal { data, remaining } => {
                if self.literals == Literals::Full {
                    let mut side = std::mem::take(&mut self.server);
                    self.literal_data('S', &mut side, data, *remaining == 0);
                    self.server = side;
                }
            }
        }
    }

    /// Bytes sent to the server. Literal announcements are read from the
    /// bytes, so literal data is recognised whatever `sending` says.
    pub fn client(&mut self, bytes: &[u8], sending: Sending) {
        self.stamp.now();
        let mut side = std::mem::take(&mut self.client);
        let mut shown = None;
        if let Sending::Line(masked) = sending {
            // A new line: whatever a refused literal left is over.
            side.literal = 0;
            side.pending.clear();
            side.secret = masked.is_some();
            shown = masked;
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            if side.literal > 0 {
                let take = usize::try_from(side.literal).map_or(rest.len(), |l| l.min(rest.len()));
                let (data, after) = rest.split_at(take);
                rest = after;
                side.literal -= take as u64;
                if !side.secret && self.literals == Literals::Full {
                    let last = side.literal == 0;
                    self.literal_data('C', &mut side, data, last);
                }
                continue;
            }
            let Some(i) = memchr::memchr(b'\n', rest) else {
                side.pending.extend_from_slice(rest);
                if side.pending.len() > PIECE {
                    let piece = std::mem::take(&mut side.pending);
                    self.record("C-", &piece);
                }
                break;
            };
            let mut line = std::mem::take(&mut side.pending);
            line.extend_from_slice(&rest[..=i]);
            rest = &rest[i + 1..];
            match shown.take() {
                Some(text) => self.record("C:", text.as_bytes()),
                None if side.secret && !strip_line_end(&line).is_empty() => {
                    self.record("C:", b"****")
                }
                None => self.line('C', &line),
            }
            match command::trailing_literal(strip_line_end(&line)) {
                Ok(Some(lit)) => {
                    side.literal = lit.len;
                    self.literal_header('C', lit.len, side.secret);
                }
                _ => side.secret = false,
            }
        }
        self.client = side;
    }

    /// A piece of what a mail client sent (`--listen`), as the client
    /// framer handed it out: unlike [`client`](Self::client), the framing
    /// is the framer's, so a refused literal or an answer line that ends
    /// like an announcement cannot shift what is taken for literal data.
    /// `shown` is given with the first piece of a command or answer that
    /// is secret (its masked form): its literal data and the rest of its
    /// lines are left out.
    pub fn client_event(&mut self, ev: &client_framer::Event, shown: Option<&str>) {
        self.stamp.now();
        use client_framer::{End, Event as C};
        match ev {
            C::Line { data, head, end } => {
                if head.is_some() {
                    self.client.secret = shown.is_some();
                }
                match (head, shown) {
                    (Some(_), Some(text)) => self.record("C:", text.as_bytes()),
                    (None, _) if self.client.secret => {
                        if *end != End::Partial && !strip_line_end(data).is_empty() {
                            self.record("C:", b"****");
                        }
                    }
                    _ => self.line('C', data),
                }
                match end {
                    End::Literal(ann) => self.literal_header('C', ann.len, self.client.secret),
                    End::Command => self.client.secret = false,
                    End::Partial => {}
                }
            }
            C::Literal { data, remaining } => {
                if !self.client.secret && self.literals == Literals::Full {
                    let mut side = std::mem::take(&mut self.client);
                    self.literal_data('C', &mut side, data, *remaining == 0);
                    self.client = side;
                }
            }
        }
    }

    /// Writes what is buffered to the file (before the session waits).
    pub fn flush(&mut self) {
        if self.failed {
            return;
        }
        if let Err(e) = self.out.flush() {
            self.fail(&e);
        }
    }

    /// A protocol line with its line end (or a piece of a long line).
    fn line(&mut self, source: char, data: &[u8]) {
        match data.strip_suffix(b"\r\n") {
            Some(text) => self.record(mark(source, ':'), text),
            None => self.record(mark(source, '-'), data),
        }
    }

    fn literal_header(&mut self, source: char, len: u64, redacted: bool) {
        let mut text = format!("literal {len} bytes");
        if redacted {
            text.push_str(" redacted");
        } else if self.literals == Literals::Size {
            text.push_str(" not logged");
        }
        self.record(mark(source, '#'), text.as_bytes());
    }

    /// Literal data split at its line ends; `last` ends the literal.
    fn literal_data(&mut self, source: char, side: &mut Side, data: &[u8], last: bool) {
        let (full, bare) = (mark(source, '+'), mark(source, '-'));
        let mut rest = data;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let (now, after) = rest.split_at(i + 1);
            rest = after;
            // A line that came whole is recorded from the data itself; one
            // begun in an earlier chunk is joined first.
            let joined;
            let line: &[u8] = if side.pending.is_empty() {
                now
            } else {
                side.pending.extend_from_slice(now);
                joined = std::mem::take(&mut side.pending);
                &joined
            };
            match line.strip_suffix(b"\r\n") {
                Some(text) => self.record(full, text),
                None => self.record(bare, line),
            }
        }
        side.pending.extend_from_slice(rest);
        if (last && !side.pending.is_empty()) || side.pending.len() > PIECE {
            let piece = std::mem::take(&mut side.pending);
            self.record(bare, &piece);
        }
    }

    fn record(&mut self, mark: &str, bytes: &[u8]) {
        if self.failed {
            return;
        }
        // One buffer for every record: a bulk literal writes millions.
        let mut line = std::mem::take(&mut self.buf);
        line.clear();
        self.stamp.write(&mut line);
        line.push(b' ');
        if !self.label.is_empty() {
            line.extend_from_slice(self.label.as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(mark.as_bytes());
        line.push(b' ');
        crate::text::escape_record(bytes, &mut line);
        line.push(b'\n');
        if let Err(e) = self.out.write_all(&line) {
            self.fail(&e);
        }
        self.buf = line;
    }

    /// The session matters more than its record: a full disk stops the
    /// transcript, with a warning, and the session goes on.
    fn fail(&mut self, e: &std::io::Error) {
        self.failed = true;
        error::say(&format!(
            "imaptalk: warning: cannot write the transcript to {}: {}; it stops here",
            self.name,
            io_text(e)
        ));
    }
}

impl Drop for Transcript {
    fn drop(&mut self) {
        self.flush();
    }
}

/// FILE of `--log FILE`, opened for appending and created readable by its
/// owner only; a failure is a usage error naming the flag.
pub fn open_file(path: &Path) -> Result<std::fs::File> {
    crate::platform::files::private(OpenOptions::new().append(true).create(true))
        .open(path)
        .map_err(|e| error::usage(format!("--log {}: {}", path.display(), io_text(&e))))
}

/// RFC 3339 in UTC with milliseconds: `2026-11-21T10:00:00.123Z`.
pub fn timestamp(t: SystemTime) -> String {
    const FORMAT: &[BorrowedFormatItem<'_>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    i128::try_from(d.as_nanos())
        .ok()
        .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(n).ok())
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| format!("{}.{:03}", d.as_secs(), d.subsec_millis()))
}

/// The bytes a record's text stands for; None if it is not a valid escape.
pub use crate::text::unescape_record as unescape;

#[cfg(test)]
mod tests {
    use super::Sending::{Line, More};
    use super::*;
    use crate::protocol::framer::Framer;
    use proptest::prelude::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn transcript(literals: Literals) -> (Transcript, Shared) {
        let shared = Shared::default();
        let t = Transcript::to_writer(Box::new(shared.clone()), literals, "test".into());
        (t, shared)
    }

    /// The records without their timestamps.
    fn records(shared: &Shared) -> Vec<String> {
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| {
                let (ts, rest) = l.split_once(' ').unwrap();
                assert_eq!(ts.len(), 24, "{ts}");
                rest.to_string()
            })
            .collect()
    }

    fn frame_into(t: &mut Transcript, bytes: &[u8], chunk: usize) {
        let mut f = Framer::new();
        for piece in bytes.chunks(chunk) {
            f.buffer_mut().extend_from_slice(piece);
            while let Some(ev) = f.next_event().unwrap() {
                t.server(&ev);
            }
        }
    }

    /// The server's bytes back from the records.
    fn server_bytes(records: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            let (mark, text) = r.split_at(3);
            let bytes = unescape(text).unwrap();
            match mark {
                "S: " | "S+ " => {
                    out.extend_from_slice(&bytes);
                    out.extend_from_slice(b"\r\n");
                }
                "S- " => out.extend_from_slice(&bytes),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_795_255_200_123);
        assert_eq!(timestamp(t), "2026-11-21T10:00:00.123Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // Milliseconds are cut, not rounded: a record never looks later
        // than the moment it was written.
        let t = UNIX_EPOCH + std::time::Duration::from_nanos(951_782_399_999_999_999);
        assert_eq!(timestamp(t), "2000-02-28T23:59:59.999Z");
    }

    #[test]
    fn server_lines_and_literals() {
        let (mut t, shared) = transcript(Literals::Full);
        frame_into(
            &mut t,
            b"* OK ready\r\n* 1 FETCH (BODY[] {17}\r\nSubject: hi\r\n\r\nhi)\r\nbare\n",
            5,
        );
        assert_eq!(
            records(&shared),
            [
                "S: * OK ready",
                "S: * 1 FETCH (BODY[] {17}",
                "S# literal 17 bytes",
                "S+ Subject: hi",
                "S+ ",
                "S- hi",
                "S: )",
                "S- bare\\x0a",
            ]
        );
    }

    #[test]
    fn size_only_literals() {
        let (mut t, shared) = transcript(Literals::Size);
        frame_into(&mut t, b"* 1 FETCH (BODY[] {3}\r\nabc)\r\n", 64);
        assert_eq!(
            records(&shared),
            [
                "S: * 1 FETCH (BODY[] {3}",
                "S# literal 3 bytes not logged",
                "S: )"
            ]
        );
    }

    #[test]
    fn client_secrets_never_reach_the_file() {
        let (mut t, shared) = transcript(Literals::Full);
        t.client(
            b"a1 LOGIN alice {10}\r\n",
            Line(Some("a1 LOGIN alice ****")),
        );
        t.client(b"wonder", More);
        t.client(b"land", More);
        t.client(b"\r\n", More);
        t.client(
            b"a2 AUTHENTICATE PLAIN\r\n",
            Line(Some("a2 AUTHENTICATE PLAIN")),
        );
        t.client(b"AGFsaWNlAHNlY3JldA==\r\n", Line(Some("****")));
        t.client(b"a3 LOGIN {5}\r\n", Line(Some("a3 LOGIN {5} ****")));
        t.client(b"alice", More);
        t.client(b" secret\r\n", More);
        t.client(b"a4 APPEND INBOX {4+}\r\nab\r\n\r\n", Line(None));
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("wonder") && !text.contains("land"), "{text}");
        assert!(
            !text.contains("AGFsaWNl") && !text.contains("secret"),
            "{text}"
        );
        assert_eq!(
            records(&shared),
            [
                "C: a1 LOGIN alice ****",
                "C# literal 10 bytes redacted",
                "C: ",
                "C: a2 AUTHENTICATE PLAIN",
                "C: ****",
                "C: a3 LOGIN {5} ****",
                "C# literal 5 bytes redacted",
                "C: ****",
                "C: a4 APPEND INBOX {4+}",
                "C# literal 4 bytes",
                "C+ ab",
                "C: ",
            ]
        );
    }

    #[test]
    fn labelled_records_name_their_connection() {
        let shared = Shared::default();
        let mut t = Transcript::to_writer(Box::new(shared.clone()), Literals::Full, "t".into())
            .labelled("#12");
        t.event("connect x:143 (127.0.0.1:143)");
        t.client(b"a1 NOOP\r\n", Line(None));
        assert_eq!(
            records(&shared),
            ["#12 *: connect x:143 (127.0.0.1:143)", "#12 C: a1 NOOP"]
        );
    }

    #[test]
    fn client_events_follow_the_client_framer() {
        use crate::protocol::client_framer::ClientFramer;
        let (mut t, shared) = transcript(Literals::Full);
        let mut f = ClientFramer::new();
        f.buffer_mut().extend_from_slice(
            b"a1 LOGIN {5}\r\nalice secret\r\na2 APPEND INBOX {9}\r\na3 NOOP\r\na4 APPEND INBOX {4+}\r\nab\r\n\r\n",
        );
        let mut refused = false;
        loop {
            while let Some(ev) = f.next_event().unwrap() {
                let shown = match &ev {
                    client_framer::Event::Line {
                        data,
                        head: Some(_),
                        ..
                    } => {
                        let p = command::from_wire(data);
                        (p.verb.secret() != command::Secret::None).then(|| command::masked(&p))
                    }
                    _ => None,
                };
                t.client_event(&ev, shown.as_deref());
            }
            // The server takes the LOGIN literal and refuses the APPEND's.
            match f.waiting() {
                Some(b"a2") if !refused => refused = f.refuse(),
                Some(_) => {
                    f.go();
                }
                None => break,
            }
        }
        let text = String::from_utf8(shared.0.lock().unwrap().clone()).unwrap();
        assert!(
            !text.contains("alice") && !text.contains("secret"),
            "{text}"
        );
        assert_eq!(
            records(&shared),
            [
                "C: a1 LOGIN {5} ****",
                "C# literal 5 bytes redacted",
                "C: ****",
                "C: a2 APPEND INBOX {9}",
                "C# literal 9 bytes",
                "C: a3 NOOP",
                "C: a4 APPEND INBOX {4+}",
                "C# literal 4 bytes",
                "C+ ab",
                "C: ",
            ]
        );
    }

    #[test]
    fn a_new_command_ends_a_refused_literal() {
        let (mut t, shared) = transcript(Literals::Full);
        t.client(
            b"a1 LOGIN alice {10}\r\n",
            Line(Some("a1 LOGIN alice ****")),
        );
        t.client(b"a2 NOOP\r\n", Line(None));
        t.client(b"a3 NOOP\r\n", More);
        assert_eq!(
            records(&shared)[2..],
            ["C: a2 NOOP".to_string(), "C: a3 NOOP".to_string()]
        );
    }

    #[test]
    fn long_binary_literals_are_cut_into_pieces() {
        let (mut t, shared) = transcript(Literals::Full);
        let mut input = b"* 1 FETCH (BINARY[] ~{10000}\r\n".to_vec();
        input.extend(std::iter::repeat_n(0u8, 10_000));
        input.extend_from_slice(b")\r\n");
        frame_into(&mut t, &input, 3000);
        let recs = records(&shared);
        assert!(recs.iter().all(|r| r.len() < 4 * PIECE + 3000 * 4 + 10));
        assert_eq!(server_bytes(&recs), input);
    }

    proptest! {
        #[test]
        fn server_bytes_come_back_exactly(
            body in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a'), Just(0xffu8)], 0..300),
            chunk in 1usize..50,
        ) {
            let mut input = format!("* 1 FETCH (BODY[] {{{}}}\r\n", body.len()).into_bytes();
            input.extend_from_slice(&body);
            input.extend_from_slice(b")\r\n* OK x\n");
            let (mut t, shared) = transcript(Literals::Full);
            frame_into(&mut t, &input, chunk);
            prop_assert_eq!(server_bytes(&records(&shared)), input);
        }
    }
}
