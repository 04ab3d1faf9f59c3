//! File-literal tokens in a command line, and how a literal is announced.
//! `{@path}` stands for the contents of a file, `{@-}` for stdin; the data
//! itself is read by [`io::fileliteral`](crate::io::fileliteral).
//!
//! To send the characters `{@` themselves, write `{@@`: one `@` is removed
//! (`{@@x}` goes out as `{@x}`). A file whose name starts with `@` is
//! named with a directory: `{@./@notes}`.

use crate::protocol::caps::Capabilities;

/// The largest literal LITERAL- lets go without waiting for `+` (RFC 7888).
pub const LITERAL_MINUS_MAX: u64 = 4096;

/// A command line cut at its `{@…}` tokens.
#[derive(Debug, PartialEq, Eq)]
pub struct Split {
    /// The text before, between and after the tokens: one more than
    /// `files`, with every `{@@` already turned into `{@`.
    pub texts: Vec<Vec<u8>>,
    /// The file names as written (`-` is stdin).
    pub files: Vec<Vec<u8>>,
}

/// Finds the `{@…}` tokens of a line; None when it has no `{@` at all (the
/// line goes out untouched).
pub fn split(line: &[u8]) -> Result<Option<Split>, String> {
    if memchr::memmem::find(line, b"{@").is_none() {
        return Ok(None);
    }
    let mut texts = Vec::new();
    let mut files = Vec::new();
    let mut text = Vec::new();
    let mut rest = line;
    while let Some(i) = memchr::memmem::find(rest, b"{@") {
        text.extend_from_slice(&rest[..i]);
        let after = &rest[i + 2..];
        if let Some(tail) = after.strip_prefix(b"@") {
            text.extend_from_slice(b"{@");
            rest = tail;
            continue;
        }
        let Some(close) = memchr::memchr(b'}', after) else {
            return Err(
                "'{@' starts a file literal, but no '}' ends the file name (to send the characters {@ themselves, write {@@)"
                    .to_string(),
            );
        };
        if close == 0 {
            return Err("'{@}' names no file (write {@FILE}, or {@-} for stdin)".to_string());
        }
        files.push(after[..close].to_vec());
        texts.push(std::mem::take(&mut text));
        rest = &after[close + 1..];
    }
    text.extend_from_slice(rest);
    texts.push(text);
    Ok(Some(Split { texts, files }))
}

/// How a literal of `len` bytes is announced to this server: `{n+}` with
/// LITERAL+ (or LITERAL- up to 4096 bytes), otherwise `{n}`, which waits
/// for the server's `+`; `~{…}` (literal8) when the data holds NUL, which
/// only a server with BINARY accepts (RFC 3516; RFC 7888 allows `~{n+}`).
pub fn announcement(len: u64, nul: bool, caps: &Capabilities) -> Result<String, String> {
    if nul && !caps.has("BINARY") {
        return Err("holds NUL bytes, which only a binary literal (~{n}) can carry, and the server does not advertise BINARY (RFC 3516)".to_string());
    }
    let tilde = if nul { "~" } else { "" };
    let plus = caps.has("LITERAL+") || (caps.has("LITERAL-") && len <= LITERAL_MINUS_MAX);
    let plus = if plus { "+" } else { "" };
    Ok(format!("{tilde}{{{len}{plus}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_and_escapes_undone() {
        assert_eq!(split(b"NOOP").unwrap(), None);
        assert_eq!(split(b"X {5}").unwrap(), None);
        let s = split(b"APPEND INBOX (\\Seen) {@msg.eml}").unwrap().unwrap();
        assert_eq!(s.texts, [&b"APPEND INBOX (\\Seen) "[..], b""]);
        assert_eq!(s.files, [b"msg.eml"]);
        let s = split(b"LOGIN {@u} {@-} x").unwrap().unwrap();
        assert_eq!(s.texts, [&b"LOGIN "[..], b" ", b" x"]);
        assert_eq!(s.files, [&b"u"[..], b"-"]);
        let s = split(b"SEARCH SUBJECT \"{@@x}\" {@My File.eml}")
            .unwrap()
            .unwrap();
        assert_eq!(s.texts, [&b"SEARCH SUBJECT \"{@x}\" "[..], b""]);
        assert_eq!(s.files, [b"My File.eml"]);
        let s = split(b"X {@@").unwrap().unwrap();
        assert_eq!((s.texts, s.files.len()), (vec![b"X {@".to_vec()], 0));
        assert!(split(b"APPEND INBOX {@msg").unwrap_err().contains("{@@"));
        assert!(split(b"APPEND INBOX {@}").is_err());
    }

    #[test]
    fn announcement_follows_the_capabilities() {
        let plain = Capabilities::from_line("* CAPABILITY IMAP4rev1");
        let plus = Capabilities::from_line("* CAPABILITY IMAP4rev1 LITERAL+ BINARY");
        let minus = Capabilities::from_line("* CAPABILITY IMAP4rev1 LITERAL-");
        assert_eq!(announcement(10, false, &plain).unwrap(), "{10}");
        assert_eq!(announcement(10, false, &plus).unwrap(), "{10+}");
        assert_eq!(announcement(10, true, &plus).unwrap(), "~{10+}");
        assert_eq!(announcement(4096, false, &minus).unwrap(), "{4096+}");
        assert_eq!(announcement(4097, false, &minus).unwrap(), "{4097}");
        assert!(
            announcement(3, true, &minus)
                .unwrap_err()
                .contains("BINARY")
        );
        let binary_only = Capabilities::from_line("* CAPABILITY IMAP4rev1 BINARY");
        assert_eq!(announcement(3, true, &binary_only).unwrap(), "~{3}");
    }
}
