//! Modified UTF-7, the encoding of non-ASCII mailbox names (RFC 3501
//! §5.1.3): printable US-ASCII stands for itself except `&`, which is
//! `&-`; anything else is UTF-16, in a base64 whose alphabet has `,` for
//! `/`, without padding, between `&` and `-`. `&ZeVnLIqe-` is 日本語.
//!
//! Decoding is strict, so a name shown decoded is exactly one name: only
//! printable ASCII; every shift closed with `-`; no printable ASCII
//! inside a shift; no two shifts in a row (`&U,BTFw-&ZeVnLIqe-` must be
//! `&U,BTF2XlZyyKng-`); no unused base64 characters or non-zero padding
//! bits; surrogates in pairs. Hence `encode(decode(s)) == s` whenever
//! decoding succeeds.

use crate::text::escape_str;
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD};
use base64::{DecodeError, Engine as _, alphabet};
use std::fmt::Write as _;

/// The base64 of a shift: RFC 3501's alphabet (`,` for `/`), no padding
/// either way, and unused bits must be zero, so each run has one spelling.
const SHIFT: GeneralPurpose = GeneralPurpose::new(&alphabet::IMAP_MUTF7, NO_PAD);

fn direct(c: char) -> bool {
    (' '..='~').contains(&c)
}

/// A mailbox name in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut units: Vec<u16> = Vec::new();
    for c in name.chars() {
        if direct(c) {
            shift(&mut units, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            units.extend_from_slice(c.encode_utf16(&mut [0; 2]));
        }
    }
    shift(&mut units, &mut out);
    out
}

/// Writes `&…-` for the UTF-16 units gathered so far, if any.
fn shift(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    let bytes: Vec<u8> = units.drain(..).flat_map(u16::to_be_bytes).collect();
    out.push('&');
    SHIFT.encode_string(bytes, out);
    out.push('-');
}

/// The name a modified UTF-7 string stands for, or why it is not valid.
pub fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    // Where the last base64 shift ended: another may not start there.
    let mut shift_end = None;
    while i < b.len() {
        let c = b[i];
        if !(0x20..=0x7e).contains(&c) {
            let ch = s[i..].chars().next().unwrap_or('?');
            return Err(format!(
                "{} at offset {i} is not printable US-ASCII",
                escape_str(&ch.to_string())
            ));
        }
        if c != b'&' {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let Some(len) = b[i + 1..].iter().position(|&x| x == b'-') else {
            return Err(format!("the '&' at offset {i} is not closed by '-'"));
        };
        let body = &b[i + 1..i + 1 + len];
        let end = i + 2 + len;
        if body.is_empty() {
            out.push('&');
            i = end;
            continue;
        }
        if shift_end == Some(i) {
            return Err(format!(
                "a superfluous shift at offset {i}: two encoded runs in a row must be one"
            ));
        }
        for ch in decode_run(body).map_err(|e| format!("{e} (in the run at offset {i})"))? {
            out.push(ch);
        }
        shift_end = Some(end);
        i = end;
    }
    Ok(out)
}

/// The characters of one base64 run (between `&` and `-`).
fn decode_run(body: &[u8]) -> Result<Vec<char>, String> {
    let not_whole = || "the base64 run does not end on a whole character".to_string();
    let bytes = SHIFT.decode(body).map_err(|e| match e {
        DecodeError::InvalidByte(_, c) => {
            format!("'{}' is not a modified base64 character", char::from(c))
        }
        DecodeError::InvalidPadding => "'=' is not a modified base64 character".to_string(),
        DecodeError::InvalidLength(_) | DecodeError::InvalidLastSymbol { .. } => not_whole(),
    })?;
    if bytes.len() % 2 != 0 {
        return Err(not_whole());
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .collect();
    let mut chars = Vec::with_capacity(units.len());
    for r in char::decode_utf16(units) {
        let ch = r.map_err(|_| "an unpaired UTF-16 surrogate".to_string())?;
        if direct(ch) {
            return Err(format!(
                "'{ch}' is encoded, but printable ASCII must stand for itself"
            ));
        }
        chars.push(ch);
    }
    Ok(chars)
}

/// The decoded form of a name worth showing beside it: it holds a shift,
/// decodes, and reads differently. Escaped, ready for the terminal.
pub fn readable(name: &str) -> Option<String> {
    if !name.contains('&') {
        return None;
    }
    let decoded = decode(name).ok()?;
    (decoded != name).then(|| escape_str(&decoded))
}

/// The note terminal rendering adds to a LIST, LSUB or STATUS response
/// whose mailbox name is encoded: `[日本語]`.
pub fn note(line: &[u8]) -> Option<String> {
    // Most lines hold no '&': no copy, no parse.
    memchr::memchr(b'&', line)?;
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\r', '\n']);
    let name = crate::protocol::astring::listed_mailbox(text).or_else(|| status_mailbox(text))?;
    readable(&name).map(|r| format!("[{r}]"))
}

/// The mailbox of `* STATUS name (…)`.
fn status_mailbox(line: &str) -> Option<String> {
    let rest = line.strip_prefix("* ")?;
    let (word, rest) = rest.split_once(' ')?;
    word.eq_ignore_ascii_case("STATUS")
        .then(|| crate::protocol::command::first_astring(rest.as_bytes()))
        .flatten()
}

/// `\mutf7 NAME`: converts either way. A valid encoded name (one with a
/// shift) is decoded; anything else is encoded.
pub fn convert(arg: &str) -> String {
    let name = crate::protocol::command::first_astring(arg.as_bytes())
        .filter(|_| arg.starts_with('"'))
        .unwrap_or_else(|| arg.to_string());
    let shown = escape_str(&name);
    if name.contains('&')
        && let Ok(decoded) = decode(&name)
        && decoded != name
    {
        return format!("{shown} is modified UTF-7 for: {}", escape_str(&decoded));
    }
    let encoded = encode(&name);
    let mut s = if encoded == name {
        format!("{shown} is the same in modified UTF-7")
    } else {
        format!("{shown} in modified UTF-7: {encoded}")
    };
    if name.contains('&')
        && let Err(e) = decode(&name)
    {
        let _ = write!(s, " (it is not valid modified UTF-7 itself: {e})");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_rfc_examples() {
        // RFC 3501 §5.1.3.
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
            "~peter/mail/台北/日本語"
        );
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert!(decode("&Jjo!").is_err());
        assert_eq!(decode("&Jjo-!").unwrap(), "☺!");
        assert!(
            decode("&U,BTFw-&ZeVnLIqe-")
                .unwrap_err()
                .contains("superfluous")
        );
        assert_eq!(decode("&U,BTF2XlZyyKng-").unwrap(), "台北日本語");
        assert_eq!(encode("台北日本語"), "&U,BTF2XlZyyKng-");
        assert_eq!(encode("Tom & Jerry"), "Tom &- Jerry");
        assert_eq!(decode("Tom &- Jerry").unwrap(), "Tom & Jerry");
        assert_eq!(encode("😀"), "&2D3eAA-");
        assert_eq!(decode("&2D3eAA-").unwrap(), "😀");
    }

    #[test]
    fn strictness() {
        assert!(decode("日本語").is_err()); // raw 8-bit
        assert!(decode("a\tb").is_err());
        assert!(decode("&AGE-").is_err()); // 'a' encoded
        assert!(decode("&ZeVnLIqe").is_err()); // unterminated
        assert!(decode("&ZeVnLIqeA-").is_err()); // an extra character
        assert!(decode("&Jjp-").is_err()); // non-zero padding bits (☺ is &Jjo-)
        assert!(decode("&ZeV/LIqe-").is_err()); // '/' is not in the alphabet
        assert!(decode("&Jjo=-").is_err()); // no padding
        assert!(decode("&Jg-").is_err()); // 12 bits: not a whole UTF-16 unit
        assert!(decode("&Jjo,-").is_err()); // 24 bits: one unit and a half
        assert!(decode("&2D0-").is_err()); // a lone high surrogate
        assert!(decode("&-&ZeVnLIqe-").is_ok()); // '&' then a run: fine
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = decode("&ZeV/LIqe-").unwrap_err();
        assert!(e.contains("'/' is not a modified base64 character"), "{e}");
        assert!(e.contains("offset 0"), "{e}");
        let e = decode("ab&Jjo=-").unwrap_err();
        assert!(e.contains("'=' is not a modified base64 character"), "{e}");
        for bad in ["&Jjp-", "&Jg-", "&ZeVnLIqeA-"] {
            let e = decode(bad).unwrap_err();
            assert!(
                e.contains("does not end on a whole character"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn round_trips_of_known_names() {
        for name in [
            "台北",
            "日本語",
            "Entwürfe",
            "Корзина",
            "😀 & 🎉",
            "a&b",
            "",
        ] {
            assert_eq!(decode(&encode(name)).unwrap(), name, "{name}");
        }
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode("Корзина"), "&BBoEPgRABDcEOAQ9BDA-");
    }

    #[test]
    fn notes_and_conversions() {
        assert_eq!(
            note(b"* LIST (\\HasNoChildren) \"/\" \"&ZeVnLIqe-\"\r\n").as_deref(),
            Some("[日本語]")
        );
        assert_eq!(
            note(b"* LSUB () \".\" Work.&ZeVnLIqe-").as_deref(),
            Some("[Work.日本語]")
        );
        assert_eq!(
            note(b"* STATUS &ZeVnLIqe- (MESSAGES 2)").as_deref(),
            Some("[日本語]")
        );
        assert_eq!(
            note(b"* LIST () \"/\" \"Tom &- Jerry\"").as_deref(),
            Some("[Tom & Jerry]")
        );
        assert_eq!(note(b"* LIST () \"/\" INBOX"), None);
        assert_eq!(note(b"* LIST () \"/\" \"&bad\""), None);
        assert_eq!(note(b"* 3 EXISTS &ZeVnLIqe-"), None);
        // A decoded name is escaped like any server text.
        assert_eq!(readable("&ABs-x").as_deref(), Some("\\x1bx"));
        assert_eq!(
            convert("&ZeVnLIqe-"),
            "&ZeVnLIqe- is modified UTF-7 for: 日本語"
        );
        assert_eq!(
            convert("\"&ZeVnLIqe-\""),
            "&ZeVnLIqe- is modified UTF-7 for: 日本語"
        );
        assert_eq!(convert("日本語"), "日本語 in modified UTF-7: &ZeVnLIqe-");
        assert_eq!(convert("INBOX"), "INBOX is the same in modified UTF-7");
        assert!(convert("a&b").starts_with("a&b in modified UTF-7: a&-b (it is not valid"));
    }

    /// Standard base64 of the UTF-16BE bytes, padding dropped, `/` → `,`:
    /// the RFC's definition, computed a different way than `encode`.
    fn reference(name: &str) -> String {
        const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        let mut run: Vec<u8> = Vec::new();
        let flush = |run: &mut Vec<u8>, out: &mut String| {
            if run.is_empty() {
                return;
            }
            let mut b64 = String::new();
            for g in run.chunks(3) {
                let n = (u32::from(g[0]) << 16)
                    | (u32::from(*g.get(1).unwrap_or(&0)) << 8)
                    | u32::from(*g.get(2).unwrap_or(&0));
                let chars = g.len() + 1;
                for k in 0..chars {
                    b64.push(char::from(STD[((n >> (18 - 6 * k)) & 63) as usize]));
                }
            }
            out.push('&');
            out.push_str(&b64.replace('/', ","));
            out.push('-');
            run.clear();
        };
        for c in name.chars() {
            if (' '..='~').contains(&c) {
                flush(&mut run, &mut out);
                if c == '&' {
                    out.push_str("&-");
                } else {
                    out.push(c);
                }
            } else {
                for u in c.encode_utf16(&mut [0; 2]) {
                    run.extend_from_slice(&u.to_be_bytes());
                }
            }
        }
        flush(&mut run, &mut out);
        out
    }

    proptest! {
        #[test]
        fn encoding_follows_the_rfc_and_round_trips(name in "\\PC{0,24}|[ -~&\u{80}-\u{d7ff}\u{e000}-\u{10ffff}]{0,24}") {
            let e = encode(&name);
            prop_assert_eq!(&e, &reference(&name));
            prop_assert!(e.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            prop_assert_eq!(decode(&e).unwrap(), name);
        }

        #[test]
        fn whatever_decodes_is_canonical(s in "[ -~]{0,32}|[A-Za-z0-9+,&-]{0,32}") {
            if let Ok(d) = decode(&s) {
                prop_assert_eq!(encode(&d), s);
            }
        }
    }
}
