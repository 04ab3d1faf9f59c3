//! Meta-commands: lines that start with `\` are for imaptalk itself and
//! never reach the server (a backslash cannot begin an IMAP command line).
//! Also the command reference they show, which the hints use too.

use std::time::Duration;

/// One IMAP command in the reference.
pub struct Doc {
    pub name: &'static str,
    pub syntax: &'static str,
    pub about: &'static str,
    pub rfc: &'static str,
}

const fn doc(
    name: &'static str,
    syntax: &'static str,
    about: &'static str,
    rfc: &'static str,
) -> Doc {
    Doc {
        name,
        syntax,
        about,
        rfc,
    }
}

/// The commands people type most, with RFC 9051 sections unless noted.
pub const DOCS: &[Doc] = &[
    doc(
        "APPEND",
        "APPEND <mailbox> [(flags)] [date] <literal>",
        "Adds a message to a mailbox. End the line with {n} (n = the message size in bytes, with CRLF line ends), then type the message at the ..> prompt once the server's + arrives; or end it with {@FILE} to send a file, counted for you.",
        "RFC 9051 §6.3.12",
    ),
    doc(
        "AUTHENTICATE",
        "AUTHENTICATE <mechanism> [initial-response]",
        "Logs in with a SASL mechanism (PLAIN, XOAUTH2, …). Answer each + with base64 at the +> prompt; * cancels. These lines never enter history.",
        "RFC 9051 §6.2.2",
    ),
    doc(
        "CAPABILITY",
        "CAPABILITY",
        "Lists what the server supports: the IMAP revision, extensions, AUTH= mechanisms. Capabilities can change after STARTTLS and after logging in.",
        "RFC 9051 §6.1.1",
    ),
    doc(
        "CHECK",
        "CHECK",
        "Asks the server to checkpoint the selected mailbox. Removed in IMAP4rev2; NOOP does the same.",
        "RFC 3501 §6.4.1",
    ),
    doc(
        "CLOSE",
        "CLOSE",
        "Leaves the selected mailbox, silently expunging messages flagged \\Deleted (use UNSELECT to leave without expunging).",
        "RFC 9051 §6.4.1",
    ),
    doc(
        "COPY",
        "COPY <sequence-set> <mailbox>",
        "Copies messages of the selected mailbox to another mailbox.",
        "RFC 9051 §6.4.7",
    ),
    doc(
        "CREATE",
        "CREATE <mailbox>",
        "Creates a mailbox; use the hierarchy delimiter LIST shows for sub-folders.",
        "RFC 9051 §6.3.4",
    ),
    doc(
        "DELETE",
        "DELETE <mailbox>",
        "Deletes a mailbox and the messages in it, permanently.",
        "RFC 9051 §6.3.5",
    ),
    doc(
        "ENABLE",
        "ENABLE <capability>...",
        "Turns on extensions that change how the server talks (UTF8=ACCEPT, CONDSTORE, QRESYNC, IMAP4rev2).",
        "RFC 9051 §6.3.1",
    ),
    doc(
        "EXAMINE",
        "EXAMINE <mailbox>",
        "Like SELECT, but read-only: flags do not change and nothing is expunged.",
        "RFC 9051 §6.3.3",
    ),
    doc(
        "EXPUNGE",
        "EXPUNGE",
        "Permanently removes the messages flagged \\Deleted from the selected mailbox.",
        "RFC 9051 §6.4.3",
    ),
    doc(
        "FETCH",
        "FETCH <sequence-set> <items>",
        "Retrieves data about messages of the selected mailbox: FLAGS, ENVELOPE, BODYSTRUCTURE, RFC822.SIZE, BODY[section] (BODY.PEEK[...] leaves \\Seen alone), or the macros ALL, FAST and FULL. A sequence set is like 1:*, 3,5 or 2:4.",
        "RFC 9051 §6.4.5",
    ),
    doc(
        "ID",
        "ID (\"name\" \"value\" ...) | ID NIL",
        "Tells the server who the client is, and shows who the server is.",
        "RFC 2971 §3.1",
    ),
    doc(
        "IDLE",
        "IDLE",
        "Waits for the server to report changes as they happen. End it with Enter on an empty line, Ctrl-C, or by typing DONE.",
        "RFC 9051 §6.3.13",
    ),
    doc(
        "LIST",
        "LIST <reference> <pattern>",
        "Lists mailboxes: LIST \"\" * for all, LIST \"\" % for the top level. The names seen here are offered by Tab completion.",
        "RFC 9051 §6.3.9",
    ),
    doc(
        "LOGIN",
        "LOGIN <user> <password>",
        "Logs in with a plaintext password (only over TLS, please). \\login USER asks for the password without echo; LOGIN lines never enter history.",
        "RFC 9051 §6.2.3",
    ),
    doc(
        "LOGOUT",
        "LOGOUT",
        "Ends the session; the server answers BYE and closes. Ctrl-D does the same.",
        "RFC 9051 §6.1.3",
    ),
    doc(
        "LSUB",
        "LSUB <reference> <pattern>",
        "Lists subscribed mailboxes. Deprecated: LIST (SUBSCRIBED) \"\" * in IMAP4rev2.",
        "RFC 3501 §6.3.9",
    ),
    doc(
        "MOVE",
        "MOVE <sequence-set> <mailbox>",
        "Moves messages of the selected mailbox to another mailbox, atomically.",
        "RFC 9051 §6.4.8",
    ),
    doc(
        "NAMESPACE",
        "NAMESPACE",
        "Shows the personal, other users' and shared namespaces and their hierarchy delimiters.",
        "RFC 9051 §6.3.10",
    ),
    doc(
        "NOOP",
        "NOOP",
        "Does nothing, so the server can report pending changes (new mail, expunges); also keeps the session alive.",
        "RFC 9051 §6.1.2",
    ),
    doc(
        "RENAME",
        "RENAME <mailbox> <new-name>",
        "Renames a mailbox; renaming INBOX moves its messages to the new mailbox.",
        "RFC 9051 §6.3.6",
    ),
    doc(
        "SEARCH",
        "SEARCH [CHARSET <charset>] <criteria>",
        "Finds messages in the selected mailbox: ALL, UNSEEN, FROM \"x\", SUBJECT \"x\", SINCE 1-Jan-2024, LARGER 10000, combined with OR and NOT.",
        "RFC 9051 §6.4.4",
    ),
    doc(
        "SELECT",
        "SELECT <mailbox>",
        "Opens a mailbox for reading and changing; the server reports its size, flags and UIDVALIDITY. The prompt shows it once the server confirms.",
        "RFC 9051 §6.3.2",
    ),
    doc(
        "STARTTLS",
        "STARTTLS",
        "Upgrades a plaintext connection to TLS. Prefer --starttls, which does it before anything else is sent.",
        "RFC 9051 §6.2.1",
    ),
    doc(
        "STATUS",
        "STATUS <mailbox> (<items>)",
        "Reports counters of a mailbox without selecting it: MESSAGES, UNSEEN, UIDNEXT, UIDVALIDITY, SIZE, RECENT.",
        "RFC 9051 §6.3.11",
    ),
    doc(
        "STORE",
        "STORE <sequence-set> [+|-]FLAGS[.SILENT] (<flags>)",
        "Sets, adds (+FLAGS) or removes (-FLAGS) flags of messages, e.g. STORE 3 +FLAGS (\\Deleted).",
        "RFC 9051 §6.4.6",
    ),
    doc(
        "SUBSCRIBE",
        "SUBSCRIBE <mailbox>",
        "Adds a mailbox to the subscription list.",
        "RFC 9051 §6.3.7",
    ),
    doc(
        "UID",
        "UID FETCH|STORE|COPY|MOVE|SEARCH|EXPUNGE <uid-set> ...",
        "The same commands with unique identifiers instead of sequence numbers; UIDs stay valid while UIDVALIDITY does not change.",
        "RFC 9051 §6.4.9",
    ),
    doc(
        "UNSELECT",
        "UNSELECT",
        "Leaves the selected mailbox without expunging anything.",
        "RFC 9051 §6.4.2",
    ),
    doc(
        "UNSUBSCRIBE",
        "UNSUBSCRIBE <mailbox>",
        "Removes a mailbox from the subscription list.",
        "RFC 9051 §6.3.8",
    ),
];

/// Syntax of the UID variants, for hints.
const UID_SYNTAX: &[(&str, &str)] = &[
    ("UID FETCH", "UID FETCH <uid-set> <items>"),
    (
        "UID STORE",
        "UID STORE <uid-set> [+|-]FLAGS[.SILENT] (<flags>)",
    ),
    ("UID COPY", "UID COPY <uid-set> <mailbox>"),
    ("UID MOVE", "UID MOVE <uid-set> <mailbox>"),
    ("UID SEARCH", "UID SEARCH [CHARSET <charset>] <criteria>"),
    ("UID EXPUNGE", "UID EXPUNGE <uid-set>"),
];

/// The meta-commands, with their syntax and what they do.
pub const METAS: &[(&str, &str, &str)] = &[
    (
        "\\help",
        "\\help [COMMAND]",
        "list the commands, or show one command's syntax",
    ),
    (
        "\\login",
        "\\login USER",
        "ask for the password without echo and send LOGIN",
    ),
    ("\\quit", "\\quit", "log out and exit (as Ctrl-D)"),
    (
        "\\idle",
        "\\idle [SECONDS]",
        "IDLE and print what arrives; DONE after SECONDS, or on Enter or the end of input",
    ),
    (
        "\\sleep",
        "\\sleep SECONDS",
        "wait before the next command (for scripts and -c)",
    ),
    (
        "\\mutf7",
        "\\mutf7 NAME",
        "convert a mailbox name to or from modified UTF-7 (&ZeVnLIqe- is 日本語)",
    ),
];

/// The reference entry of a command name (`uid fetch` finds UID).
pub fn lookup(name: &str) -> Option<&'static Doc> {
    let first = name.split_whitespace().next()?;
    DOCS.iter().find(|d| d.name.eq_ignore_ascii_case(first))
}

/// The syntax of the command being typed: `name` is its first one or two
/// words (`UID FETCH`).
pub fn syntax(name: &str) -> Option<&'static str> {
    let mut words = name.split_whitespace();
    let first = words.next()?;
    if first.eq_ignore_ascii_case("UID")
        && let Some(second) = words.next()
        && let Some((_, s)) = UID_SYNTAX
            .iter()
            .find(|(n, _)| n[4..].eq_ignore_ascii_case(second))
    {
        return Some(s);
    }
    if let Some(m) = METAS.iter().find(|m| m.0.eq_ignore_ascii_case(first)) {
        return Some(m.1);
    }
    lookup(first).map(|d| d.syntax)
}

/// What a meta-command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Help(Option<String>),
    Login(String),
    Quit,
    /// `\idle`: IDLE until this long has passed, or (None) until the next
    /// input line or the end of input.
    Idle(Option<Duration>),
    Sleep(Duration),
    /// Text to show (`\mutf7`).
    Show(String),
    /// A usage error or an unknown meta-command: this message.
    Error(String),
}

/// What the editor hands the session once a meta-command is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    Help(Option<String>),
    Login {
        user: String,
        password: String,
    },
    Quit,
    Idle(Option<Duration>),
    Sleep(Duration),
    /// Text to show as it is.
    Show(String),
    /// Something to tell the user, nothing to send.
    Say(String),
}

/// Parses a line that starts with `\`.
pub fn parse(line: &str) -> Request {
    let line = line.trim();
    let (name, rest) = match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], line[i..].trim()),
        None => (line, ""),
    };
    match name.to_ascii_lowercase().as_str() {
        "\\help" | "\\h" | "\\?" => Request::Help((!rest.is_empty()).then(|| rest.to_string())),
        "\\quit" | "\\q" | "\\exit" => Request::Quit,
        "\\idle" if rest.is_empty() => Request::Idle(None),
        "\\idle" => match seconds(rest) {
            Some(d) => Request::Idle(Some(d)),
            None => Request::Error(format!(
                "\\idle {rest}: give a positive number of seconds, or none to idle until Enter or the end of input"
            )),
        },
        "\\mutf7" if rest.is_empty() => {
            Request::Error("usage: \\mutf7 NAME (a mailbox name, encoded or not)".to_string())
        }
        "\\mutf7" => Request::Show(crate::protocol::mutf7::convert(rest)),
        "\\sleep" => match seconds(rest) {
            Some(d) => Request::Sleep(d),
            None => Request::Error(format!(
                "\\sleep {rest}: give a positive number of seconds (usage: \\sleep SECONDS)"
            )),
        },
        "\\login" if rest.is_empty() => {
            Request::Error("usage: \\login USER (the password is asked for)".to_string())
        }
        "\\login" => {
            let user = rest
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .unwrap_or(rest);
            Request::Login(user.to_string())
        }
        _ => Request::Error(format!(
            "unknown meta-command {name} (not sent to the server); \\help lists them"
        )),
    }
}

/// A positive, finite number of seconds (fractions allowed).
fn seconds(s: &str) -> Option<Duration> {
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && v > 0.0 && v < 1e9).then(|| Duration::from_secs_f64(v))
}

/// The text `\help` shows.
pub fn help(topic: Option<&str>) -> String {
    let Some(topic) = topic else {
        let mut s = String::from("Meta-commands (never sent to the server):\n");
        for (_, syntax, what) in METAS {
            s.push_str(&format!("  {syntax:<18} {what}\n"));
        }
        s.push_str("IMAP commands (tags are added for you; \\help NAME for one):\n");
        for chunk in DOCS.chunks(6) {
            let names: Vec<_> = chunk.iter().map(|d| format!("{:<13}", d.name)).collect();
            s.push_str(&format!("  {}\n", names.join("").trim_end()));
        }
        s.push_str("Keys: Tab completes, Up/Down recall history, Ctrl-C clears the line (or ends IDLE), Ctrl-D logs out.");
        return s;
    };
    let t = topic.trim_start_matches('\\');
    if let Some((_, syntax, what)) = METAS.iter().find(|m| m.0[1..].eq_ignore_ascii_case(t)) {
        return format!("{syntax}\n  {what}");
    }
    match lookup(topic) {
        Some(d) => {
            let syntax = syntax(topic).unwrap_or(d.syntax);
            format!("{syntax}\n  {}\n  {}", d.about, d.rfc)
        }
        None => format!("no help for '{topic}'; \\help lists the commands"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(parse("\\help"), Request::Help(None));
        assert_eq!(parse("\\HELP fetch"), Request::Help(Some("fetch".into())));
        assert_eq!(parse("\\quit"), Request::Quit);
        assert_eq!(parse("\\login alice"), Request::Login("alice".into()));
        assert_eq!(parse("\\login \"al ice\""), Request::Login("al ice".into()));
        assert!(matches!(parse("\\login"), Request::Error(_)));
        assert!(matches!(parse("\\frob"), Request::Error(m) if m.contains("\\frob")));
        assert_eq!(parse("\\idle"), Request::Idle(None));
        assert_eq!(
            parse("\\idle 2.5"),
            Request::Idle(Some(Duration::from_millis(2500)))
        );
        assert_eq!(parse("\\sleep 1"), Request::Sleep(Duration::from_secs(1)));
        assert_eq!(
            parse("\\mutf7 日本語"),
            Request::Show("日本語 in modified UTF-7: &ZeVnLIqe-".into())
        );
        assert!(matches!(parse("\\mutf7"), Request::Error(_)));
        for bad in [
            "\\idle 0",
            "\\idle x",
            "\\sleep",
            "\\sleep -1",
            "\\sleep inf",
        ] {
            assert!(matches!(parse(bad), Request::Error(_)), "{bad}");
        }
    }

    #[test]
    fn help_texts() {
        let all = help(None);
        assert!(all.contains("\\login USER") && all.contains("FETCH"));
        let fetch = help(Some("fetch"));
        assert!(fetch.starts_with("FETCH <sequence-set> <items>\n"));
        assert!(fetch.contains("RFC 9051 §6.4.5"));
        assert!(help(Some("uid fetch")).starts_with("UID FETCH <uid-set> <items>"));
        assert!(help(Some("XYZZY")).contains("no help"));
        assert_eq!(syntax("uid store"), Some(UID_SYNTAX[1].1));
        assert_eq!(syntax("\\login"), Some("\\login USER"));
    }
}
