//! What the server has said it supports: the capabilities of the greeting's
//! `[CAPABILITY …]`, of `* CAPABILITY` responses and of `OK [CAPABILITY …]`
//! after login, and the extensions `ENABLE` turned on (`* ENABLED …`).
//!
//! The session consults this record (file literals choose `{n+}`, `{n}` or
//! `~{n}` by it); completion uses the same parser for command names.

/// The capability atoms of a server line, in the order sent: the data of
/// `* CAPABILITY …`, or a `[CAPABILITY …]` response code in any status
/// response (`* OK [CAPABILITY …] ready`, `a1 OK [CAPABILITY …] Logged in`).
/// None when the line carries no capability list. `line` is a response's
/// first line, with or without its line end.
pub fn parse(line: &str) -> Option<Vec<&str>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let span = span(line)?;
    Some(line[span.list].split_whitespace().collect())
}

/// Where a line's capability list is.
struct Span {
    /// The atoms (`a b` of `* CAPABILITY a b` or of `[CAPABILITY a b]`).
    list: std::ops::Range<usize>,
    /// The whole response code, brackets included, when it is one.
    code: Option<std::ops::Range<usize>>,
}

fn span(line: &str) -> Option<Span> {
    let data = line.strip_prefix("* ").filter(|r| {
        r.len() >= 11 && r.is_char_boundary(11) && r[..11].eq_ignore_ascii_case("CAPABILITY ")
    });
    if data.is_some() {
        return Some(Span {
            list: 13..line.len(),
            code: None,
        });
    }
    // Every response's first line comes through here: search without
    // making an upper-case copy of it, by memchr (a substring search set
    // up per line cost more than the rest of a FETCH response's handling).
    let bytes = line.as_bytes();
    let i = memchr::memchr_iter(b'[', bytes)
        .filter(|&j| j > 0 && bytes[j - 1] == b' ')
        .map(|j| j - 1)
        .find(|&i| {
            bytes
                .get(i + 2..i + 13)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"CAPABILITY "))
        })?;
    let end = i + 13 + line[i + 13..].find(']')?;
    Some(Span {
        list: i + 13..end,
        code: Some(i + 1..end + 1),
    })
}

/// A server line as `--listen` shows it to a mail client: the capability
/// atoms `drop` says no to are left out, and those of `add` not there are
/// appended. None when the line carries no capability list or nothing
/// changes, so every other line goes on byte for byte.
pub fn rewrite(line: &[u8], drop: impl Fn(&str) -> bool, add: &[&str]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(line).ok()?;
    let body = text.trim_end_matches(['\r', '\n']);
    let span = span(body)?;
    let atoms: Vec<&str> = body[span.list.clone()].split_whitespace().collect();
    let mut kept: Vec<&str> = atoms.iter().copied().filter(|a| !drop(a)).collect();
    for a in add {
        if !kept.iter().any(|k| k.eq_ignore_ascii_case(a)) {
            kept.push(a);
        }
    }
    if kept == atoms {
        return None;
    }
    let mut out = body[..span.list.start].to_string();
    out.push_str(&kept.join(" "));
    out.push_str(&text[span.list.end..]);
    Some(out.into_bytes())
}

/// The line without its `[CAPABILITY …]` response code (and the blank
/// after it): `* OK [CAPABILITY …] ready` becomes `* OK ready`. None when
/// it has none. For a greeting read before STARTTLS, whose list must not
/// be relied on once TLS is up.
pub fn without_code(line: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(line).ok()?;
    let code = span(text.trim_end_matches(['\r', '\n']))?.code?;
    let after = &text[code.end..];
    let mut out = text[..code.start].to_string();
    out.push_str(after.strip_prefix(' ').unwrap_or(after));
    Some(out.into_bytes())
}

/// The extensions of `* ENABLED …` (RFC 5161), None for any other line.
fn enabled(line: &str) -> Option<Vec<&str>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let rest = line.strip_prefix("* ")?;
    let (word, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    word.eq_ignore_ascii_case("ENABLED")
        .then(|| rest.split_whitespace().collect())
}

/// Whether a line can be a capability list, a response code holding one,
/// or an ENABLED response, judged on its bytes: most lines (FETCH, NOOP
/// completions) are none, and making text of each was most of the cost of
/// a pipelined command's responses.
fn may_tell(line: &[u8]) -> bool {
    let untagged_word = |w: &[u8]| {
        line.len() >= 2 + w.len()
            && line.starts_with(b"* ")
            && line[2..2 + w.len()].eq_ignore_ascii_case(w)
    };
    memchr::memchr(b'[', line).is_some()
        || untagged_word(b"CAPABILITY ")
        || untagged_word(b"ENABLED")
}

/// The server's capabilities as last announced, and what ENABLE enabled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Upper case. The latest list replaces the earlier one: capabilities
    /// change after STARTTLS and after login.
    list: Vec<String>,
    /// `* ENABLED UTF8=ACCEPT`: mailbox names are UTF-8 from now on, not
    /// modified UTF-7 (RFC 6855).
    pub utf8_accept: bool,
}

impl Capabilities {
    /// Records what a response's first line announces, if anything.
    /// Returns true when the line carried a capability list.
    pub fn learn(&mut self, line: &[u8]) -> bool {
        // Only the ASCII start matters; a lossy copy of a huge line is not
        // worth making for lines that cannot be capability lists.
        let cut = &line[..line.len().min(16 * 1024)];
        if !may_tell(cut) {
            return false;
        }
        let text = String::from_utf8_lossy(cut);
        if let Some(caps) = parse(&text) {
            self.list = caps.iter().map(|c| c.to_ascii_uppercase()).collect();
            return true;
        }
        if let Some(exts) = enabled(&text)
            && exts.iter().any(|e| e.eq_ignore_ascii_case("UTF8=ACCEPT"))
        {
            self.utf8_accept = true;
        }
        false
    }

    /// The capabilities as announced (upper case); empty before any list.
    pub fn list(&self) -> &[String] {
        &self.list
    }

    /// Whether the server announced `cap` (case-insensitive).
    pub fn has(&self, cap: &str) -> bool {
        self.list.iter().any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// What one response line announces (tests build records this way).
    #[cfg(test)]
    pub fn from_line(line: &str) -> Capabilities {
        let mut c = Capabilities::default();
        c.learn(line.as_bytes());
        c
    }

    /// After STARTTLS nothing said in plaintext may be relied on (RFC 9051
    /// §6.2.1): the client must ask again.
    pub fn forget(&mut self) {
        *self = Capabilities::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The check on bytes never turns away a line that says something.
        #[test]
        fn the_quick_check_never_misses_a_list(
            pieces in proptest::collection::vec(prop_oneof![
                Just(b"* ".to_vec()), Just(b"CAPABILITY ".to_vec()), Just(b"capability".to_vec()),
                Just(b"ENABLED".to_vec()), Just(b"enabled ".to_vec()), Just(b"[".to_vec()),
                Just(b"]".to_vec()), Just(b"OK ".to_vec()), Just(b"a1 ".to_vec()),
                Just(b"IMAP4rev1 ".to_vec()), Just(b"UTF8=ACCEPT".to_vec()), Just(b"\r\n".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..4),
            ], 0..10),
        ) {
            let line = pieces.concat();
            let text = String::from_utf8_lossy(&line);
            if parse(&text).is_some() || enabled(&text).is_some() {
                prop_assert!(may_tell(&line), "{text:?}");
            }
        }
    }

    #[test]
    fn lists_from_data_and_response_codes() {
        assert_eq!(
            parse("* CAPABILITY IMAP4rev1 LITERAL+ IDLE\r\n"),
            Some(vec!["IMAP4rev1", "LITERAL+", "IDLE"])
        );
        assert_eq!(
            parse("* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready."),
            Some(vec!["IMAP4rev1", "STARTTLS"])
        );
        assert_eq!(
            parse("a1 OK [CAPABILITY IMAP4rev1 BINARY] Logged in"),
            Some(vec!["IMAP4rev1", "BINARY"])
        );
        assert_eq!(
            parse("* ok [capability IMAP4rev1 Idle] hi"),
            Some(vec!["IMAP4rev1", "Idle"])
        );
        assert_eq!(parse("* OK [CAPABILITY IMAP4rev1 unterminated"), None);
        assert_eq!(parse("* 3 EXISTS"), None);
        assert_eq!(parse("* CAPABILITIES x"), None);
        assert_eq!(parse("* CAPABILITé x"), None);
    }

    #[test]
    fn lists_rewritten_for_a_proxied_client() {
        let compress = |a: &str| a.to_ascii_uppercase().starts_with("COMPRESS=");
        let r = |line: &str, add: &[&str]| {
            rewrite(line.as_bytes(), compress, add).map(|v| String::from_utf8(v).unwrap())
        };
        assert_eq!(
            r("* CAPABILITY IMAP4rev1 COMPRESS=DEFLATE IDLE\r\n", &[]).as_deref(),
            Some("* CAPABILITY IMAP4rev1 IDLE\r\n")
        );
        assert_eq!(
            r(
                "a1 OK [CAPABILITY IMAP4rev1 compress=deflate] Logged in\r\n",
                &["STARTTLS"]
            )
            .as_deref(),
            Some("a1 OK [CAPABILITY IMAP4rev1 STARTTLS] Logged in\r\n")
        );
        assert_eq!(
            r(
                "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\n",
                &["STARTTLS"]
            )
            .as_deref(),
            Some("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN STARTTLS] ready\n")
        );
        // Nothing to change, or no list: the line goes on as it came.
        assert_eq!(
            r("* CAPABILITY IMAP4rev1  starttls\r\n", &["STARTTLS"]),
            None
        );
        assert_eq!(r("* 1 FETCH (BODY[] {3}\r\n", &["STARTTLS"]), None);
        assert_eq!(r("* OK [CAPABILITY x COMPRESS=DEFLATE\r\n", &[]), None);
        assert_eq!(
            rewrite(b"* CAPABILITY \xff COMPRESS=DEFLATE\r\n", compress, &[]),
            None
        );
    }

    #[test]
    fn a_greeting_without_its_capabilities() {
        assert_eq!(
            without_code(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Dovecot ready.\r\n"),
            Some(b"* OK Dovecot ready.\r\n".to_vec())
        );
        assert_eq!(
            without_code(b"* OK [CAPABILITY IMAP4rev1]\r\n"),
            Some(b"* OK \r\n".to_vec())
        );
        assert_eq!(without_code(b"* OK Dovecot ready.\r\n"), None);
        assert_eq!(without_code(b"* CAPABILITY IMAP4rev1\r\n"), None);
    }

    #[test]
    fn the_latest_list_wins_and_starttls_forgets() {
        let mut c = Capabilities::default();
        c.learn(b"* OK [CAPABILITY IMAP4rev1 LITERAL+ STARTTLS] hi\r\n");
        assert!(c.has("literal+") && c.has("STARTTLS") && !c.has("BINARY"));
        c.learn(b"* 1 EXISTS\r\n");
        assert!(c.has("LITERAL+"));
        c.learn(b"a1 OK [CAPABILITY IMAP4rev1 BINARY LITERAL-] Logged in\r\n");
        assert!(c.has("BINARY") && c.has("LITERAL-") && !c.has("LITERAL+"));
        assert!(!c.utf8_accept);
        c.learn(b"* ENABLED CONDSTORE utf8=accept\r\n");
        assert!(c.utf8_accept);
        c.forget();
        assert_eq!(c, Capabilities::default());
    }
}
