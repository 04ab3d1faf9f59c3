//! Astrings and mailbox names: quoting what the user gives for the wire
//! (`LOGIN`, mailbox names to type), and reading the mailbox of a LIST line.

use crate::protocol::command::first_astring;
use zeroize::Zeroizing;

/// The mailbox of `* LIST (flags) "delim" name` (or LSUB); None for a
/// name sent as a literal.
pub fn listed_mailbox(line: &str) -> Option<String> {
    let rest = line.strip_prefix("* ")?;
    let (word, rest) = rest.split_once(' ')?;
    if !word.eq_ignore_ascii_case("LIST") && !word.eq_ignore_ascii_case("LSUB") {
        return None;
    }
    let rest = rest.strip_prefix('(')?;
    let rest = rest[rest.find(')')? + 1..].trim_start();
    let rest = if let Some(r) = rest.strip_prefix('"') {
        // "/" or "\\"
        let r = r.strip_prefix('\\').unwrap_or(r);
        r.get(1..)?.strip_prefix('"')?
    } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("NIL") {
        &rest[3..]
    } else {
        return None;
    };
    let name = rest.trim_start();
    let name = if name.starts_with('{') || name.starts_with('~') {
        return None;
    } else if name.starts_with('"') {
        first_astring(name.as_bytes())?
    } else {
        // An atom, perhaps followed by extended data: ( … ).
        name.split(' ').next()?.to_string()
    };
    (!name.is_empty()).then_some(name)
}

/// A mailbox name as it must be typed: quoted unless it is an atom.
pub fn quote_mailbox(name: &str) -> String {
    let atom = !name.is_empty()
        && name
            .bytes()
            .all(|b| b > b' ' && b != 0x7f && !matches!(b, b'(' | b')' | b'{' | b'"' | b'\\'));
    if atom {
        return name.to_string();
    }
    let mut s = String::from("\"");
    for c in name.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// Appends `s` as an IMAP astring: an atom when it is one, else a quoted
/// string, else (8-bit, CR, LF, NUL) a synchronizing literal, whose data
/// starts a new part (it may only be sent after the server's `+`).
fn astring(s: &str, parts: &mut Vec<Vec<u8>>) {
    let atom = !s.is_empty()
        && s.bytes().all(|b| {
            b > b' ' && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
        });
    let quotable = s
        .bytes()
        .all(|b| (1..0x80).contains(&b) && b != b'\r' && b != b'\n');
    if parts.is_empty() {
        parts.push(Vec::new());
    }
    let Some(out) = parts.last_mut() else { return };
    // Room for the quoted form and the CRLF after it: a buffer that grows
    // leaves a copy of what it held (a password) behind.
    out.reserve(2 * s.len() + 4);
    if atom {
        out.extend_from_slice(s.as_bytes());
    } else if quotable {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
        let mut data = Vec::with_capacity(s.len() + 2);
        data.extend_from_slice(s.as_bytes());
        parts.push(data);
    }
}

/// `LOGIN user password` in parts: each part but the last ends with a
/// literal announcement `{n}` CRLF, so the next one waits for the server's
/// `+`. The last part ends in CRLF. The parts hold the password: they are
/// overwritten when dropped.
pub fn login_parts(user: &str, password: &str) -> Zeroizing<Vec<Vec<u8>>> {
    let mut parts = Zeroizing::new(vec![b"LOGIN ".to_vec()]);
    astring(user, &mut parts);
    if let Some(last) = parts.last_mut() {
        last.push(b' ');
    }
    astring(password, &mut parts);
    if let Some(last) = parts.last_mut() {
        last.extend_from_slice(b"\r\n");
    }
    parts
}

/// The input bytes of `LOGIN user password`, each argument an atom, a
/// quoted string or a literal as it needs, ending in CRLF.
pub fn login_line(user: &str, password: &str) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(login_parts(user, password).concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_quoting() {
        assert_eq!(*login_line("alice", "wonder"), b"LOGIN alice wonder\r\n");
        assert_eq!(
            *login_line("al ice", "p\"w\\d x"),
            b"LOGIN \"al ice\" \"p\\\"w\\\\d x\"\r\n"
        );
        assert_eq!(*login_line("bob", ""), b"LOGIN bob \"\"\r\n");
        assert_eq!(
            *login_line("bob", "pässwd"),
            "LOGIN bob {7}\r\npässwd\r\n".as_bytes()
        );
        assert_eq!(
            *login_parts("zoë", "pä ss"),
            [
                "LOGIN {4}\r\n".as_bytes(),
                "zoë {6}\r\n".as_bytes(),
                "pä ss\r\n".as_bytes()
            ]
        );
    }

    #[test]
    fn room_for_the_line_end_after_a_password() {
        // Appending CRLF must not move the password to a new buffer,
        // leaving the old one behind, not overwritten.
        for password in ["plain", "qu\"o\\ted", "8-bit pässwörd"] {
            let mut parts = Vec::new();
            astring(password, &mut parts);
            let last = parts.last().unwrap();
            assert!(last.capacity() - last.len() >= 2, "{password}");
        }
    }
}
