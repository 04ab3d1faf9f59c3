//! Text helpers every layer shares: text that came from the server or
//! from a certificate made safe to show (the one escaping rule of
//! imaptalk, and its three notations), and sizes, durations, seconds,
//! dates and I/O errors as people read them.
//!
//! Whoever runs the server (or made the certificate, which any man in the
//! middle can do) chooses these bytes. Shown raw, an escape sequence
//! retitles the window, clears the screen or rewrites what looks like the
//! server's answer; a line feed in a certificate name forges a line of
//! imaptalk's own report; a bidi override or an invisible character makes
//! text read differently from what it is. So one rule, [`shown_as_is`],
//! decides for every character, wherever it is shown:
//!
//! - C0 controls (CR, LF and TAB included), DEL and C1 controls;
//! - invalid UTF-8;
//! - invisible and bidi formatting characters (Unicode's format
//!   characters, such as U+00AD, U+200B–U+200F, U+202A–U+202E,
//!   U+2060–U+206F, U+FEFF and the tag characters U+E0000–U+E007F), the
//!   line and paragraph separators U+2028 and U+2029, and the Hangul
//!   fillers that draw as nothing
//!
//! are escaped; everything else stands for itself. The notations:
//!
//! - [`escape`] / [`escape_str`]: one line of text (stderr messages, the
//!   prompt, completion candidates and hints, `-v`): `\x1b` for an ASCII
//!   control or an invalid byte, `\u{202e}` for any other character.
//! - [`Escaper`]: server lines and literal data on a terminal. The same,
//!   except that line ends (LF, CRLF) and tabs keep their meaning, so a
//!   message still reads as lines; it takes the bytes in pieces as they
//!   are read.
//! - [`escape_record`] / [`unescape_record`]: a `--log` record, which must
//!   also give back the exact bytes: `\\` for a backslash and `\xNN` for
//!   each byte of anything escaped.
//!
//! The people-readable helpers follow the escaping.

use std::fmt::Write as _;
use std::io;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

/// Whether `c` is shown as itself (see the module documentation).
pub fn shown_as_is(c: char) -> bool {
    !matches!(
        c,
        '\0'..='\x1f'
            | '\x7f'..='\u{9f}'
            // Format characters (general category Cf).
            | '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e007f}'
            // Line and paragraph separators: a line break to many renderers.
            | '\u{2028}'
            | '\u{2029}'
            // Letters that draw as nothing, used to make names look alike.
            | '\u{115f}'
            | '\u{1160}'
            | '\u{3164}'
            | '\u{ffa0}'
    )
}

/// Bytes as one line of text: nothing in it can move the cursor, end the
/// line, or read differently from what it is.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_into(bytes, &mut out);
    out
}

/// [`escape`] for text already decoded (a certificate field, a name).
pub fn escape_str(s: &str) -> String {
    escape(s.as_bytes())
}

/// [`escape`], appending to `out`.
pub fn escape_into(bytes: &[u8], out: &mut String) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(c, out);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

fn push_char(c: char, out: &mut String) {
    if shown_as_is(c) {
        out.push(c);
    } else if c.is_ascii() {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// The block form, for server lines and literal data on a terminal: like
/// [`escape`], but LF and CRLF end a line (as LF) and TAB stays a tab. It
/// keeps a carry of up to 3 bytes between calls, so a UTF-8 character or
/// a CRLF split across two reads is shown as if it had come whole.
#[derive(Default)]
pub struct Escaper {
    carry: Vec<u8>,
}

impl Escaper {
    pub fn push(&mut self, bytes: &[u8], out: &mut String) {
        let joined;
        let bytes = if self.carry.is_empty() {
            bytes
        } else {
            let mut v = std::mem::take(&mut self.carry);
            v.extend_from_slice(bytes);
            joined = v;
            &joined[..]
        };
        let keep = incomplete_tail(bytes);
        block_into(&bytes[..bytes.len() - keep], out);
        self.carry.extend_from_slice(&bytes[bytes.len() - keep..]);
    }

    /// The end of the text: a carried byte is shown for what it is.
    pub fn finish(&mut self, out: &mut String) {
        let carry = std::mem::take(&mut self.carry);
        block_into(&carry, out);
    }
}

fn block_into(bytes: &[u8], out: &mut String) {
    // Printable ASCII, tabs and line feeds stand for themselves: copied in
    // runs (most of any mail or response is that), the rest a character
    // at a time. An ASCII byte is never part of a multi-byte sequence, so
    // cutting there leaves every other character, and every invalid byte,
    // as it was; only a CR just before a run's LF must still go.
    let plain = |b: &u8| (b' '..=b'~').contains(b) || *b == b'\n' || *b == b'\t';
    let mut rest = bytes;
    while !rest.is_empty() {
        let run = rest.iter().position(|b| !plain(b)).unwrap_or(rest.len());
        let (ascii, after) = rest.split_at(run);
        out.push_str(std::str::from_utf8(ascii).unwrap_or_default());
        let other = after.iter().position(plain).unwrap_or(after.len());
        let (escaped, after) = after.split_at(other);
        let escaped = match escaped.strip_suffix(b"\r") {
            Some(before) if after.first() == Some(&b'\n') => before,
            _ => escaped,
        };
        block_chars(escaped, out);
        rest = after;
    }
}

/// [`block_into`] a character at a time.
fn block_chars(bytes: &[u8], out: &mut String) {
    for chunk in bytes.utf8_chunks() {
        let mut chars = chunk.valid().chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' | '\t' => out.push(c),
                _ => push_char(c, out),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// How many bytes at the end might be the start of something the next
/// bytes complete: a CR (of a CRLF) or an incomplete UTF-8 sequence.
fn incomplete_tail(b: &[u8]) -> usize {
    if b.last() == Some(&b'\r') {
        return 1;
    }
    for k in 1..=3.min(b.len()) {
        let lead = b[b.len() - k];
        let need = match lead {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            0x80..=0xBF => continue,
            _ => return 0,
        };
        return if need > k { k } else { 0 };
    }
    0
}

/// Escapes bytes for a `--log` record: [`escape`]'s rule, but written so
/// that [`unescape_record`] gives back the exact bytes. What is appended
/// to `out` is always UTF-8; it is a byte buffer so that the runs of
/// printable ASCII are copied as they are, without a check that they are
/// text (that check was an eighth of the proxy's CPU time with literal
/// data in its records).
pub fn escape_record(bytes: &[u8], out: &mut Vec<u8>) {
    // Printable ASCII other than the backslash stands for itself: copied
    // in runs (a bulk literal in a transcript is mostly that). An ASCII
    // byte is never part of a multi-byte sequence, so cutting there
    // leaves every other character, and every invalid byte, as it was.
    let plain = |b: &u8| record_plain(*b);
    let mut rest = bytes;
    while !rest.is_empty() {
        let run = plain_run(rest);
        let (ascii, after) = rest.split_at(run);
        out.extend_from_slice(ascii);
        let other = after.iter().position(plain).unwrap_or(after.len());
        let (escaped, after) = after.split_at(other);
        if !escaped.is_empty() {
            escape_record_chars(escaped, out);
        }
        rest = after;
    }
}

fn record_plain(b: u8) -> bool {
    (b' '..=b'~').contains(&b) && b != b'\\'
}

/// Whether all of a group stands for itself, looked at without stopping
/// inside it, which the compiler turns into vector instructions.
fn group_plain(group: &[u8]) -> bool {
    group.iter().fold(true, |all, &b| all & record_plain(b))
}

/// How many bytes at the start of `bytes` stand for themselves in a
/// record, looked at 16 at a time: a bulk literal in the records of
/// `--listen` is mostly such runs, and finding their end a byte at a time
/// was a third of the proxy's CPU time. The last group overlaps the one
/// before it when the length is not a multiple of 16, so that a whole
/// plain line (77 bytes in a bulk FETCH) needs no byte-at-a-time tail.
fn plain_run(bytes: &[u8]) -> usize {
    let mut n = 0;
    for group in bytes.chunks_exact(16) {
        if !group_plain(group) {
            break;
        }
        n += 16;
    }
    // Every whole group was plain, and only a tail shorter than one is left.
    let whole = bytes.len() - bytes.len() % 16;
    if n == whole && n < bytes.len() && n >= 16 && group_plain(&bytes[bytes.len() - 16..]) {
        return bytes.len();
    }
    n + bytes[n..]
        .iter()
        .position(|&b| !record_plain(b))
        .unwrap_or(bytes.len() - n)
}

/// `\xNN` for one byte.
fn push_hex(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
    ]);
}

/// [`escape_record`] a character at a time.
fn escape_record_chars(bytes: &[u8], out: &mut Vec<u8>) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.extend_from_slice(b"\\\\");
            } else if shown_as_is(c) {
                out.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes());
            } else {
                for &b in c.encode_utf8(&mut [0u8; 4]).as_bytes() {
                    push_hex(out, b);
                }
            }
        }
        for &b in chunk.invalid() {
            push_hex(out, b);
        }
    }
}

/// The bytes a record's text stands for; None if it is not a valid escape.
pub fn unescape_record(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, after)) = rest.split_first() {
        rest = after;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match rest {
            [b'\\', after @ ..] => {
                out.push(b'\\');
                rest = after;
            }
            [b'x', h, l, after @ ..] => {
                out.push((hex_digit(*h)? << 4) | hex_digit(*l)?);
                rest = after;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A size as people read it, in the binary units of the progress bar:
/// `310 bytes`, `117.19 KiB`, `1.00 GiB`.
pub fn size(n: u64) -> String {
    if n < 1024 {
        format!("{n} bytes")
    } else {
        indicatif::HumanBytes(n).to_string()
    }
}

/// A duration as people read it: `0.4 ms`, `28 ms`, `2.5 s`.
pub fn duration(d: std::time::Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

/// An I/O error as users read it: the OS text without Rust's "(os error N)".
pub fn io_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`. A time past year 9999 (none
/// a certificate can hold) is shown as its number.
pub fn date(secs: i64) -> String {
    const FORMAT: &[BorrowedFormatItem<'_>] =
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| format!("{secs} seconds after 1970-01-01 UTC"))
}

/// `host:port`, bracketing IPv6 addresses.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_plain_run_ends_at_the_first_byte_that_is_escaped() {
        for len in 0..70 {
            let plain = vec![b'a'; len];
            assert_eq!(plain_run(&plain), len);
            for at in 0..len {
                for odd in [b'\\', b'\r', 0x7f, 0x80, 0xff, b'~' + 1, b' ' - 1] {
                    let mut bytes = plain.clone();
                    bytes[at] = odd;
                    assert_eq!(plain_run(&bytes), at, "len {len}, {odd:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(std::time::Duration::from_micros(400)), "0.4 ms");
        assert_eq!(duration(std::time::Duration::from_micros(28_400)), "28 ms");
        assert_eq!(duration(std::time::Duration::from_millis(9_999)), "9999 ms");
        assert_eq!(duration(std::time::Duration::from_millis(12_340)), "12.3 s");
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(date(1_798_761_599), "2026-12-31 23:59:59 UTC");
        // Century rules: 2100 is not a leap year, 2400 is.
        assert_eq!(date(4_107_542_400), "2100-03-01 00:00:00 UTC");
        assert_eq!(date(13_574_563_200), "2400-02-29 00:00:00 UTC");
        // Before 1970, and X.509's "no well-defined expiry" (RFC 5280).
        assert_eq!(date(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(date(253_402_300_799), "9999-12-31 23:59:59 UTC");
        assert_eq!(
            date(253_402_300_800),
            "253402300800 seconds after 1970-01-01 UTC"
        );
    }

    fn block(chunks: &[&[u8]]) -> String {
        let mut e = Escaper::default();
        let mut out = String::new();
        for c in chunks {
            e.push(c, &mut out);
        }
        e.finish(&mut out);
        out
    }

    /// What the issue lists, each one: escaped in every notation.
    const HIDDEN: &[char] = &[
        '\u{0}',
        '\t',
        '\n',
        '\r',
        '\u{1b}',
        '\u{7f}',
        '\u{85}',
        '\u{9b}',
        '\u{ad}',
        '\u{200b}',
        '\u{200c}',
        '\u{200d}',
        '\u{200e}',
        '\u{200f}',
        '\u{2028}',
        '\u{2029}',
        '\u{202a}',
        '\u{202e}',
        '\u{2060}',
        '\u{2066}',
        '\u{2069}',
        '\u{feff}',
        '\u{e0041}',
        '\u{3164}',
    ];

    #[test]
    fn one_rule_for_every_notation() {
        for &c in HIDDEN {
            let s = c.to_string();
            assert!(!shown_as_is(c), "{c:?}");
            assert!(!escape_str(&s).contains(c), "{c:?}");
            let mut r = Vec::new();
            escape_record(s.as_bytes(), &mut r);
            assert!(!String::from_utf8(r).unwrap().contains(c), "{c:?}");
            if c != '\n' && c != '\t' {
                assert!(!block(&[s.as_bytes()]).contains(c), "{c:?}");
            }
        }
        for c in ['a', ' ', '~', 'é', '日', '\u{fe0f}', '😀', '\u{fffd}'] {
            assert!(shown_as_is(c), "{c:?}");
        }
    }

    #[test]
    fn single_line_form() {
        assert_eq!(
            escape(b"CN=x\nimaptalk: verification: OK (trusted)"),
            "CN=x\\x0aimaptalk: verification: OK (trusted)"
        );
        assert_eq!(escape(b"a\tb\r\n"), "a\\x09b\\x0d\\x0a");
        assert_eq!(
            escape("\x1b]0;PWN\x07 \u{202e}txt.exe \u{200b}".as_bytes()),
            "\\x1b]0;PWN\\x07 \\u{202e}txt.exe \\u{200b}"
        );
        assert_eq!(escape(b"\xff\xc3 \xc2\x9b"), "\\xff\\xc3 \\u{9b}");
        assert_eq!(escape_str("日本語 a\\b"), "日本語 a\\b");
    }

    #[test]
    fn block_form_keeps_lines_and_tabs() {
        assert_eq!(
            block(&[b"\x1b]0;PWNED\x07 \x1b[31mred\x1b[0m\r\nok\tfine"]),
            "\\x1b]0;PWNED\\x07 \\x1b[31mred\\x1b[0m\nok\tfine"
        );
        assert_eq!(
            block(&["a\u{9b}2J b\u{202e}c".as_bytes()]),
            "a\\u{9b}2J b\\u{202e}c"
        );
        assert_eq!(block(&[b"bare\rcr \xff\x00"]), "bare\\x0dcr \\xff\\x00");
        assert_eq!(block(&["日本語 ok".as_bytes()]), "日本語 ok");
        // These passed the renderer while the transcript escaped them.
        assert_eq!(
            block(&["a\u{200b}b\u{200d}c\u{2028}d\u{feff}e\u{ad}f".as_bytes()]),
            "a\\u{200b}b\\u{200d}c\\u{2028}d\\u{feff}e\\u{ad}f"
        );
    }

    #[test]
    fn block_form_splits_do_not_change_the_result() {
        let input = "x\u{9b}y 日本\r\nz\x1b\u{202e}".as_bytes();
        let whole = block(&[input]);
        for cut in 0..=input.len() {
            assert_eq!(
                block(&[&input[..cut], &input[cut..]]),
                whole,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn records_stay_on_one_line() {
        let mut s = Vec::new();
        escape_record("a\\b\t\x1b[31m\r\n日本\u{202e}\u{2028}".as_bytes(), &mut s);
        assert_eq!(
            String::from_utf8(s).unwrap(),
            "a\\\\b\\x09\\x1b[31m\\x0d\\x0a日本\\xe2\\x80\\xae\\xe2\\x80\\xa8"
        );
        let mut s = Vec::new();
        escape_record(b"\xff\xc3", &mut s);
        assert_eq!(s, b"\\xff\\xc3");
        assert_eq!(unescape_record("\\x4"), None);
        assert_eq!(unescape_record("\\q"), None);
        assert_eq!(unescape_record("\\x+1"), None);
        assert_eq!(unescape_record("\\X41"), None);
        assert_eq!(unescape_record("\\x4A\\x4a"), Some(b"JJ".to_vec()));
    }

    proptest! {
        #[test]
        fn records_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut s = Vec::new();
            escape_record(&bytes, &mut s);
            let s = String::from_utf8(s).expect("a record is UTF-8");
            prop_assert!(s.chars().all(shown_as_is));
            prop_assert_eq!(unescape_record(&s), Some(bytes));
        }

        /// The runs of plain ASCII change nothing: the same text as one
        /// character at a time.
        #[test]
        fn records_in_runs_are_records_by_character(
            bytes in proptest::collection::vec(prop_oneof![any::<u8>(), b' '..=b'~', Just(b'\\')], 0..300),
        ) {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            escape_record(&bytes, &mut fast);
            escape_record_chars(&bytes, &mut slow);
            prop_assert_eq!(fast, slow);
        }

        /// A run's end is found wherever it is, in the overlapping last
        /// group too: long plain lines with one other byte, anywhere.
        #[test]
        fn plain_runs_end_at_the_first_other_byte(
            len in 0usize..100,
            other in proptest::option::of((any::<usize>(), prop_oneof![0u8..b' ', Just(b'\\'), 0x7fu8..=0xff])),
        ) {
            let mut bytes: Vec<u8> = (0..len).map(|i| b' ' + (i % 94) as u8).map(|b| if b == b'\\' { b'a' } else { b }).collect();
            if let Some((at, b)) = other && len > 0 {
                bytes[at % len] = b;
            }
            let expected = bytes.iter().position(|&b| !record_plain(b)).unwrap_or(len);
            prop_assert_eq!(plain_run(&bytes), expected);
        }

        /// The same for the block form: runs change nothing.
        #[test]
        fn blocks_in_runs_are_blocks_by_character(
            bytes in proptest::collection::vec(
                prop_oneof![any::<u8>(), b' '..=b'~', Just(b'\r'), Just(b'\n'), Just(b'\t')],
                0..300,
            ),
        ) {
            let (mut fast, mut slow) = (String::new(), String::new());
            block_into(&bytes, &mut fast);
            block_chars(&bytes, &mut slow);
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn nothing_hidden_gets_through(s in "\\PC*|[\u{0}-\u{3000}]*", raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert!(escape_str(&s).chars().all(shown_as_is));
            prop_assert!(escape(&raw).chars().all(shown_as_is));
            prop_assert!(block(&[&raw, s.as_bytes()]).chars().all(|c| shown_as_is(c) || c == '\n' || c == '\t'));
        }
    }
}
