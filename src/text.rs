//! Text helpers every layer shares: server bytes made safe to show on a
//! terminal (the escaping rules), and sizes, durations, seconds, dates and
//! I/O errors as people read them.

use std::fmt::Write as _;
use std::io;
use std::time::Duration;

/// Turns server bytes into text that is safe to show on a terminal. Keeps
/// a carry of up to 3 bytes between calls, so a UTF-8 character or a CRLF
/// split across two reads is rendered as if it had come whole.
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
        escape_into(&bytes[..bytes.len() - keep], out);
        self.carry.extend_from_slice(&bytes[bytes.len() - keep..]);
    }

    pub fn finish(&mut self, out: &mut String) {
        let carry = std::mem::take(&mut self.carry);
        escape_into(&carry, out);
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

/// Escapes a whole string (for echoing typed lines).
pub fn escape_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(s.as_bytes(), &mut out);
    out
}

fn escape_into(bytes: &[u8], out: &mut String) {
    for chunk in bytes.utf8_chunks() {
        let mut chars = chunk.valid().chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' | '\t' => out.push(c),
                '\0'..='\x1f' | '\x7f' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                '\u{80}'..='\u{9f}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}' => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                _ => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
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

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`, without a date crate.
pub fn date(secs: u64) -> String {
    let (y, m, d, h, mi, s) = civil(secs);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// A Unix time as (year, month, day, hour, minute, second) in UTC.
pub fn civil(secs: u64) -> (i64, i64, i64, u64, u64, u64) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(std::time::Duration::from_micros(400)), "0.4 ms");
        assert_eq!(duration(std::time::Duration::from_micros(28_400)), "28 ms");
        assert_eq!(duration(std::time::Duration::from_millis(9_999)), "9999 ms");
        assert_eq!(duration(std::time::Duration::from_millis(12_340)), "12.3 s");
    }

    fn esc(chunks: &[&[u8]]) -> String {
        let mut e = Escaper::default();
        let mut out = String::new();
        for c in chunks {
            e.push(c, &mut out);
        }
        e.finish(&mut out);
        out
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(
            esc(&[b"\x1b]0;PWNED\x07 \x1b[31mred\x1b[0m\r\nok\tfine"]),
            "\\x1b]0;PWNED\\x07 \\x1b[31mred\\x1b[0m\nok\tfine"
        );
        assert_eq!(
            esc(&["a\u{9b}2J b\u{202e}c".as_bytes()]),
            "a\\u{9b}2J b\\u{202e}c"
        );
        assert_eq!(esc(&[b"bare\rcr \xff\x00"]), "bare\\x0dcr \\xff\\x00");
        assert_eq!(esc(&["日本語 ok".as_bytes()]), "日本語 ok");
    }

    #[test]
    fn splits_do_not_change_the_result() {
        let input = "x\u{9b}y 日本\r\nz\x1b".as_bytes();
        let whole = esc(&[input]);
        for cut in 0..=input.len() {
            assert_eq!(esc(&[&input[..cut], &input[cut..]]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(date(1_798_761_599), "2026-12-31 23:59:59 UTC");
    }
}
