//! Input lines to wire bytes: tags, command names, client literals, and
//! the masked form of a line for anything that repeats it to the user.

use crate::protocol::framer::{Announcement, FrameError, literal_announcement};

/// IMAP command names (RFC 9051, RFC 3501 and the common extensions). A
/// line whose first word is one of these gets an automatic tag; a line
/// whose *second* word is one is taken to carry its own tag.
const COMMANDS: &[&str] = &[
    "APPEND",
    "AUTHENTICATE",
    "CAPABILITY",
    "CHECK",
    "CLOSE",
    "COMPRESS",
    "COPY",
    "CREATE",
    "DELETE",
    "DELETEACL",
    "ENABLE",
    "ESEARCH",
    "EXAMINE",
    "EXPUNGE",
    "FETCH",
    "GETACL",
    "GETMETADATA",
    "GETQUOTA",
    "GETQUOTAROOT",
    "ID",
    "IDLE",
    "LIST",
    "LISTRIGHTS",
    "LOGIN",
    "LOGOUT",
    "LSUB",
    "MOVE",
    "MYRIGHTS",
    "NAMESPACE",
    "NOOP",
    "NOTIFY",
    "RENAME",
    "REPLACE",
    "SEARCH",
    "SELECT",
    "SETACL",
    "SETMETADATA",
    "SETQUOTA",
    "SORT",
    "STARTTLS",
    "STATUS",
    "STORE",
    "SUBSCRIBE",
    "THREAD",
    "UID",
    "UNAUTHENTICATE",
    "UNSELECT",
    "UNSUBSCRIBE",
    "XLIST",
];

pub fn is_command(word: &[u8]) -> bool {
    COMMANDS
        .iter()
        .any(|c| c.as_bytes().eq_ignore_ascii_case(word))
}

/// Whether a server's `+` may be meant for this command: IDLE and
/// AUTHENTICATE wait for one, and so may extension commands we do not know.
/// A `+` for NOOP or FETCH is nobody's, and is not obeyed.
pub fn takes_continuation(name: &str) -> bool {
    matches!(name, "IDLE" | "AUTHENTICATE")
        || !is_command(name.split(' ').next().unwrap_or("").as_bytes())
}

/// A tag may hold any ASTRING-CHAR except `+` (RFC 9051 §9).
fn valid_tag(word: &[u8]) -> bool {
    !word.is_empty()
        && word.iter().all(|&b| {
            b > b' '
                && b < 0x7f
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
        })
}

/// Hands out `a1`, `a2`, … and skips any tag a user typed that is still in use.
pub struct Tagger {
    prefix: String,
    next: u64,
}

impl Tagger {
    pub fn new(prefix: &str) -> Tagger {
        Tagger {
            prefix: prefix.to_string(),
            next: 1,
        }
    }

    /// The tag the next automatic command will get.
    pub fn peek(&self, in_use: impl Fn(&str) -> bool) -> String {
        let mut n = self.next;
        loop {
            let tag = format!("{}{n}", self.prefix);
            if !in_use(&tag) {
                return tag;
            }
            n += 1;
        }
    }

    pub fn take(&mut self, in_use: impl Fn(&str) -> bool) -> String {
        let tag = self.peek(&in_use);
        self.next = tag[self.prefix.len()..].parse::<u64>().unwrap_or(self.next) + 1;
        tag
    }
}

/// A command line ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub tag: String,
    /// The command name in upper case, `UID FETCH` style for UID commands.
    pub name: String,
    /// The line as it goes on the wire, without its CRLF.
    pub wire: Vec<u8>,
    /// A literal announced at the end of the line: its data follows.
    pub literal: Option<Announcement>,
}

/// Splits off the first space-separated word.
fn word(s: &[u8]) -> (&[u8], &[u8]) {
    let s = trim_start(s);
    match s.iter().position(|&b| b == b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

/// The command name after the tag (`UID FETCH` for UID commands).
fn command_name(after_tag: &[u8]) -> String {
    let (first, rest) = word(after_tag);
    let mut name = String::from_utf8_lossy(first).to_ascii_uppercase();
    if name == "UID" {
        let (second, _) = word(rest);
        name.push(' ');
        name.push_str(&String::from_utf8_lossy(second).to_ascii_uppercase());
    }
    name
}

/// Turns a typed line (without its line end) into a command: an automatic
/// tag unless the line carries its own, and the literal it announces.
pub fn prepare(
    line: &[u8],
    tagger: &mut Tagger,
    in_use: impl Fn(&str) -> bool,
) -> Result<Prepared, FrameError> {
    let literal = literal_announcement(line, false)?;
    let (first, rest) = word(line);
    let (second, _) = word(rest);
    if !is_command(first) && is_command(second) && valid_tag(first) {
        return Ok(Prepared {
            tag: String::from_utf8_lossy(first).into_owned(),
            name: command_name(rest),
            wire: trim_start(line).to_vec(),
            literal,
        });
    }
    let tag = tagger.take(in_use);
    let body = trim_start(line);
    let mut wire = Vec::with_capacity(tag.len() + 1 + body.len());
    wire.extend_from_slice(tag.as_bytes());
    wire.push(b' ');
    wire.extend_from_slice(body);
    Ok(Prepared {
        tag,
        name: command_name(body),
        wire,
        literal,
    })
}

/// The argument that matters for the prompt once the command succeeds:
/// the user of LOGIN (or of AUTHENTICATE PLAIN with an initial response),
/// the mailbox of SELECT and EXAMINE. None when it is not on the line (a
/// literal, a SASL exchange).
pub fn state_argument(p: &Prepared) -> Option<String> {
    let (_tag, rest) = word(&p.wire);
    let (_name, args) = word(rest);
    match p.name.as_str() {
        "LOGIN" | "SELECT" | "EXAMINE" => first_astring(args),
        "AUTHENTICATE" => {
            let (mech, ir) = word(args);
            if !mech.eq_ignore_ascii_case(b"PLAIN") {
                return None;
            }
            // authzid NUL authcid NUL password: the authcid is the user.
            let plain = crate::b64::decode(word(ir).0)?;
            let user = plain.split(|&b| b == 0).nth(1)?;
            (!user.is_empty()).then(|| String::from_utf8_lossy(user).into_owned())
        }
        _ => None,
    }
}

/// An astring (atom or quoted string) at the start of `args`; None for a
/// literal or nothing.
pub fn first_astring(args: &[u8]) -> Option<String> {
    let args = trim_start(args);
    match args.first()? {
        b'"' => {
            let mut out = Vec::new();
            let mut i = 1;
            while i < args.len() {
                match args[i] {
                    b'\\' if i + 1 < args.len() => {
                        out.push(args[i + 1]);
                        i += 2;
                    }
                    b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                    b => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            None
        }
        b'{' | b'~' => None,
        _ => Some(String::from_utf8_lossy(word(args).0).into_owned()),
    }
}

/// The literal announced at the end of a continuation of a command line
/// (the text after a literal's data).
pub fn trailing_literal(rest: &[u8]) -> Result<Option<Announcement>, FrameError> {
    literal_announcement(rest, false)
}

/// Why a literal announced in the input cannot be sent. The framer's
/// wording is about the server; in the input the count is the user's.
pub fn input_error(e: &FrameError) -> String {
    match e {
        FrameError::CountTooLong { digits } => {
            format!("a literal count of {digits} digits does not fit in 64 bits")
        }
        FrameError::CountOverflow { count } => {
            format!("a literal of {count} bytes is more than 2^64-1")
        }
        other => other.to_string(),
    }
}

/// A line as it may be shown to the user or kept anywhere: LOGIN passwords
/// and AUTHENTICATE initial responses become `****`.
pub fn masked(p: &Prepared) -> String {
    let text = String::from_utf8_lossy(&p.wire);
    let mut parts = text.splitn(3, ' ');
    let (tag, name, args) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    match p.name.as_str() {
        "LOGIN" => {
            let user = login_user(args.as_bytes());
            format!("{tag} {name} {user} ****")
        }
        "AUTHENTICATE" => {
            let (mech, ir) = word(args.as_bytes());
            let mech = String::from_utf8_lossy(mech);
            if ir.is_empty() {
                format!("{tag} {name} {mech}")
            } else {
                format!("{tag} {name} {mech} ****")
            }
        }
        _ => text.into_owned(),
    }
}

/// The user name argument of LOGIN, quoted string or atom or literal.
fn login_user(args: &[u8]) -> String {
    let args = trim_start(args);
    if args.first() == Some(&b'"') {
        let mut i = 1;
        while i < args.len() {
            match args[i] {
                b'\\' => i += 2,
                b'"' => return String::from_utf8_lossy(&args[..=i]).into_owned(),
                _ => i += 1,
            }
        }
        return String::from_utf8_lossy(args).into_owned();
    }
    String::from_utf8_lossy(word(args).0).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prep(line: &str, t: &mut Tagger) -> Prepared {
        prepare(line.as_bytes(), t, |_| false).unwrap()
    }

    #[test]
    fn automatic_and_typed_tags() {
        let mut t = Tagger::new("a");
        let p = prep("LOGIN alice secret", &mut t);
        assert_eq!(
            (p.tag.as_str(), p.wire.as_slice()),
            ("a1", &b"a1 LOGIN alice secret"[..])
        );
        let p = prep("a1 LOGIN alice secret", &mut t);
        assert_eq!((p.tag.as_str(), p.name.as_str()), ("a1", "LOGIN"));
        assert_eq!(p.wire, b"a1 LOGIN alice secret");
        let p = prep(". LIST \"\" *", &mut t);
        assert_eq!(
            (p.tag.as_str(), p.wire.as_slice()),
            (".", &b". LIST \"\" *"[..])
        );
        let p = prep("A select INBOX", &mut t);
        assert_eq!((p.tag.as_str(), p.name.as_str()), ("A", "SELECT"));
        let p = prep("uid fetch 1:* flags", &mut t);
        assert_eq!((p.tag.as_str(), p.name.as_str()), ("a2", "UID FETCH"));
        let p = prep("XSTRANGE thing", &mut t);
        assert_eq!(p.wire, b"a3 XSTRANGE thing");
        // A word that is a command first wins: "search NOOP" is a SEARCH.
        let p = prep("search NOOP", &mut t);
        assert_eq!(p.tag, "a4");
    }

    #[test]
    fn leading_blanks_never_reach_the_wire() {
        // Found by the `command` fuzz target: a typed tag after blanks was
        // sent with the blanks in front of it.
        let mut t = Tagger::new("a");
        let p = prep(" U UID ID \x05V", &mut t);
        assert_eq!(
            (p.tag.as_str(), p.wire.as_slice()),
            ("U", &b"U UID ID \x05V"[..])
        );
        let p = prep("\t NOOP", &mut t);
        assert_eq!(p.wire, b"a1 NOOP");
    }

    #[test]
    fn tags_in_use_are_skipped() {
        let mut t = Tagger::new("x");
        let p = prepare(b"NOOP", &mut t, |tag| tag == "x1" || tag == "x2").unwrap();
        assert_eq!(p.tag, "x3");
        assert_eq!(t.peek(|_| false), "x4");
    }

    #[test]
    fn literals_on_the_line() {
        let mut t = Tagger::new("a");
        let p = prep("APPEND INBOX {12}", &mut t);
        assert_eq!(
            p.literal,
            Some(Announcement {
                len: 12,
                binary: false,
                non_sync: false
            })
        );
        let p = prep("APPEND INBOX ~{3+}", &mut t);
        assert_eq!(
            p.literal,
            Some(Announcement {
                len: 3,
                binary: true,
                non_sync: true
            })
        );
        let p = prep("LOGIN {5-}", &mut t);
        assert_eq!(p.literal.map(|l| l.non_sync), Some(true));
        assert!(prepare(b"APPEND x {99999999999999999999999}", &mut t, |_| false).is_err());
    }

    #[test]
    fn state_arguments() {
        let mut t = Tagger::new("a");
        let arg = |line: &str, t: &mut Tagger| state_argument(&prep(line, t));
        assert_eq!(arg("LOGIN alice pw", &mut t).as_deref(), Some("alice"));
        assert_eq!(
            arg("x LOGIN \"al \\\"ice\" pw", &mut t).as_deref(),
            Some("al \"ice")
        );
        assert_eq!(arg("LOGIN {5}", &mut t), None);
        assert_eq!(arg("select INBOX", &mut t).as_deref(), Some("INBOX"));
        assert_eq!(
            arg("EXAMINE \"Sent Items\"", &mut t).as_deref(),
            Some("Sent Items")
        );
        // "\0alice\0wonderland"
        assert_eq!(
            arg("AUTHENTICATE PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=", &mut t).as_deref(),
            Some("alice")
        );
        assert_eq!(arg("AUTHENTICATE PLAIN", &mut t), None);
        assert_eq!(arg("NOOP", &mut t), None);
    }

    #[test]
    fn masking() {
        let mut t = Tagger::new("a");
        assert_eq!(
            masked(&prep("LOGIN alice s3cret", &mut t)),
            "a1 LOGIN alice ****"
        );
        assert_eq!(
            masked(&prep("x LOGIN \"al ice\" \"pw d\"", &mut t)),
            "x LOGIN \"al ice\" ****"
        );
        assert_eq!(
            masked(&prep("AUTHENTICATE PLAIN AGFsaWNlAHB3", &mut t)),
            "a2 AUTHENTICATE PLAIN ****"
        );
        assert_eq!(
            masked(&prep("AUTHENTICATE PLAIN", &mut t)),
            "a3 AUTHENTICATE PLAIN"
        );
        assert_eq!(masked(&prep("SELECT INBOX", &mut t)), "a4 SELECT INBOX");
    }
    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashSet;

        /// A tag a user may type: valid, and not itself a command name.
        fn typed_tag() -> impl Strategy<Value = String> {
            "[A-Za-z0-9.!#$&',/:;<=>?@^_`|~-]{1,8}"
                .prop_filter("a command name", |t| !is_command(t.as_bytes()))
        }

        proptest! {
            #[test]
            fn arbitrary_lines_never_panic_and_keep_their_bytes(
                line in proptest::collection::vec(any::<u8>(), 0..200)
            ) {
                let mut t = Tagger::new("a");
                match prepare(&line, &mut t, |_| false) {
                    Ok(p) => {
                        // The tag, one space, the line without leading blanks:
                        // nothing added, nothing lost.
                        let body = trim_start(&line);
                        let automatic = [format!("{} ", p.tag).as_bytes(), body].concat();
                        prop_assert!(p.wire == automatic || p.wire == body);
                        prop_assert!(p.wire.starts_with(p.tag.as_bytes()));
                        prop_assert_eq!(p.wire.get(p.tag.len()), Some(&b' '));
                        // The server reads the same count from the wire as
                        // the client will send.
                        prop_assert_eq!(literal_announcement(&p.wire, false), Ok(p.literal));
                        let _ = masked(&p);
                        let _ = state_argument(&p);
                    }
                    Err(e) => prop_assert_eq!(literal_announcement(&line, false), Err(e)),
                }
            }

            #[test]
            fn announced_literals_are_read_back_exactly(
                prefix in "[ -z|~]{0,40}",
                len in any::<u64>(),
                binary in any::<bool>(),
                mark in prop_oneof![Just(""), Just("+"), Just("-")],
            ) {
                let line = format!("APPEND INBOX {prefix} {}{{{len}{mark}}}", if binary { "~" } else { "" });
                let p = prepare(line.as_bytes(), &mut Tagger::new("a"), |_| false).unwrap();
                let lit = p.literal.unwrap();
                prop_assert_eq!(lit.len, len);
                prop_assert_eq!(lit.binary, binary);
                prop_assert_eq!(lit.non_sync, !mark.is_empty());
                prop_assert!(p.wire.ends_with(line.as_bytes()));
            }

            #[test]
            fn automatic_tags_are_unique_increasing_and_never_in_use(
                prefix in "[a-zA-Z.]{1,4}",
                busy in proptest::collection::hash_set(1u64..60, 0..30),
                n in 1usize..50,
            ) {
                let busy: HashSet<String> = busy.iter().map(|i| format!("{prefix}{i}")).collect();
                let mut t = Tagger::new(&prefix);
                let mut seen = HashSet::new();
                let mut last = 0u64;
                for _ in 0..n {
                    let peeked = t.peek(|x| busy.contains(x));
                    let tag = t.take(|x| busy.contains(x));
                    prop_assert_eq!(&peeked, &tag);
                    prop_assert!(!busy.contains(&tag));
                    let num: u64 = tag[prefix.len()..].parse().unwrap();
                    prop_assert!(num > last);
                    last = num;
                    prop_assert!(seen.insert(tag));
                }
            }

            #[test]
            fn typed_tags_are_kept_and_the_line_goes_out_as_typed(
                tag in typed_tag(),
                name in proptest::sample::select(COMMANDS),
                args in "[ -~]{0,40}",
            ) {
                let line = format!("{tag} {name} {args}");
                let mut t = Tagger::new("a");
                if let Ok(p) = prepare(line.as_bytes(), &mut t, |_| false) {
                    prop_assert_eq!(&p.tag, &tag);
                    prop_assert_eq!(p.wire, line.as_bytes());
                    prop_assert!(p.name.starts_with(name));
                    // No automatic tag was used up.
                    prop_assert_eq!(t.peek(|_| false), "a1");
                }
            }
        }
    }
}
