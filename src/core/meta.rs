//! Meta-commands: lines that start with `\` are for imaptalk itself and
//! never reach the server (a backslash cannot begin an IMAP command line).
//! Also the command reference they show (the help texts of the command
//! table, `command::VERBS`), which the hints use too.

use crate::core::sasl::Secret;
use crate::protocol::command::{Help, VERBS, Verb};
use std::time::Duration;

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
pub fn lookup(name: &str) -> Option<&'static Help> {
    let first = name.split_whitespace().next()?;
    Verb::parse(first.as_bytes()).help()
}

/// The syntax of the command being typed: `name` is its first one or two
/// words (`UID FETCH`).
pub fn syntax(name: &str) -> Option<&'static str> {
    let mut words = name.split_whitespace();
    let first = words.next()?;
    if Verb::parse(first.as_bytes()) == Verb::Uid
        && let Some(second) = words.next()
        && let Some(s) = Verb::parse(second.as_bytes()).uid_syntax()
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
        password: Secret,
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
pub fn help(topic: Option<&str>, width: usize) -> String {
    wrap(&help_text(topic, width), width)
}

fn help_text(topic: Option<&str>, width: usize) -> String {
    let Some(topic) = topic else {
        let mut s = String::from("Meta-commands (never sent to the server):\n");
        for (_, syntax, what) in METAS {
            s.push_str(&format!("  {syntax:<18} {what}\n"));
        }
        s.push_str("IMAP commands (tags are added for you; \\help NAME for one):\n");
        // Columns of 15 fit the longest name, UNAUTHENTICATE: five of them
        // on 80 columns.
        let per = (width.saturating_sub(2) / 15).max(1);
        for chunk in VERBS.chunks(per) {
            let names: Vec<_> = chunk.iter().map(|p| format!("{:<15}", p.name)).collect();
            s.push_str(&format!("  {}\n", names.join("").trim_end()));
        }
        s.push_str("Keys: Tab completes, Up/Down recall history, Ctrl-D logs out. Ctrl-C clears the line, ends an IDLE, cancels an AUTHENTICATE, or stops waiting for the server (twice: ends the session).");
        return s;
    };
    // `\help idle` is the IMAP command, `\help \idle` the meta-command;
    // a name that is only a meta-command's finds it either way.
    let t = topic.trim_start_matches('\\');
    let meta = METAS.iter().find(|m| m.0[1..].eq_ignore_ascii_case(t));
    match (lookup(topic), meta) {
        (Some(d), _) if !topic.starts_with('\\') => {
            let syntax = syntax(topic).unwrap_or(d.syntax);
            format!("{syntax}\n  {}\n  {}", d.about, d.rfc)
        }
        (_, Some((_, syntax, what))) => format!("{syntax}\n  {what}"),
        _ => format!("no help for '{topic}'; \\help lists the commands"),
    }
}

/// Why a script or `-c` line that is a meta-command cannot work there
/// (`\login` needs a terminal; an unknown or malformed one), if it is one.
pub fn unusable_in_script(line: &str) -> Option<String> {
    if !line.trim_start().starts_with('\\') {
        return None;
    }
    match parse(line) {
        Request::Login(_) => Some(
            "\\login asks for a password at the terminal; write LOGIN USER PASSWORD, or use -u USER"
                .to_string(),
        ),
        Request::Error(e) => Some(e),
        _ => None,
    }
}

/// Each line wrapped at spaces to `width` columns (a word longer than
/// that stays whole). A wrapped line goes on under its text: after a gap
/// of two spaces or more (`  SYNTAX   what it does`), else at its indent.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let lead = line.len() - line.trim_start().len();
        let hang = line[lead..]
            .find("  ")
            .and_then(|gap| {
                let after = &line[lead + gap..];
                let text_at = after.len() - after.trim_start().len();
                (text_at < after.len()).then_some(lead + gap + text_at)
            })
            .unwrap_or(lead);
        // Too deep a hang leaves no room: two columns in instead.
        let hang = if hang + 12 > width { lead + 2 } else { hang };
        let mut col = 0;
        for (j, word) in line.split(' ').enumerate() {
            let w = word.chars().count();
            if j > 0 {
                if col > hang && col + 1 + w > width && !word.is_empty() {
                    out.push('\n');
                    out.push_str(&" ".repeat(hang));
                    col = hang;
                } else {
                    out.push(' ');
                    col += 1;
                }
            }
            out.push_str(word);
            col += w;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_is_wrapped_to_the_width_between_words() {
        for width in [40, 60, 80, 120] {
            for topic in [None, Some("FETCH"), Some("\\idle"), Some("APPEND")] {
                let text = help(topic, width);
                for line in text.lines() {
                    let longest = line
                        .split(' ')
                        .map(|w| w.chars().count())
                        .max()
                        .unwrap_or(0);
                    assert!(
                        line.chars().count() <= width || longest > width - 4,
                        "{width}: {line:?}"
                    );
                }
                // Every word is there, whole, in order.
                let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
                assert_eq!(
                    words(&text),
                    words(&help_text(topic, width)),
                    "{width} {topic:?}"
                );
            }
        }
        // A wrapped meta-command description goes on under its text.
        let narrow = help(None, 40);
        let i = narrow.find("\\login USER").unwrap();
        let next = narrow[i..].lines().nth(1).unwrap();
        assert!(next.starts_with(&" ".repeat(21)), "{narrow}");
    }

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
    fn a_login_never_shows_its_password() {
        let m = Meta::Login {
            user: "alice".into(),
            password: Secret::new("hunter2".into()),
        };
        let shown = format!("{m:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn help_texts() {
        let all = help(None, 80);
        assert!(all.contains("\\login USER") && all.contains("FETCH"));
        let fetch = help(Some("fetch"), 80);
        assert!(fetch.starts_with("FETCH <sequence-set> <items>\n"));
        assert!(fetch.contains("RFC 9051 §6.4.5"));
        assert!(help(Some("uid fetch"), 80).starts_with("UID FETCH <uid-set> <items>"));
        assert!(help(Some("XYZZY"), 80).contains("no help"));
        assert_eq!(
            syntax("uid store"),
            Some("UID STORE <uid-set> [+|-]FLAGS[.SILENT] (<flags>)")
        );
        assert_eq!(syntax("uid xyzzy"), Some(Verb::Uid.help().unwrap().syntax));
        assert_eq!(syntax("\\login"), Some("\\login USER"));
    }

    #[test]
    fn help_covers_every_command_of_the_table() {
        let all = help(None, 80);
        let lines: Vec<&str> = all
            .lines()
            .skip_while(|l| !l.starts_with("IMAP commands"))
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            .collect();
        assert!(lines.iter().all(|l| l.len() <= 80), "{lines:?}");
        let listed: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
        let names: Vec<_> = VERBS.iter().map(|p| p.name).collect();
        assert_eq!(listed, names);
        for p in VERBS {
            let h = help_text(Some(&p.name.to_ascii_lowercase()), 80);
            assert!(h.starts_with(&format!("{}\n", p.help.syntax)), "{h}");
            assert!(h.contains(p.help.about) && h.contains(p.help.rfc), "{h}");
            if let Some(uid) = p.uid_syntax {
                assert!(help(Some(&format!("UID {}", p.name)), 80).starts_with(uid));
                assert_eq!(syntax(&format!("uid {}", p.name)), Some(uid));
            }
        }
        assert!(help(Some("COMPRESS"), 80).starts_with("COMPRESS DEFLATE\n"));
        // A command and a meta-command of the same name: the backslash tells.
        assert!(help(Some("idle"), 80).starts_with("IDLE\n"));
        assert!(help(Some("\\idle"), 80).starts_with("\\idle [SECONDS]\n"));
        assert!(help(Some("\\login"), 80).starts_with("\\login USER\n"));
        assert!(help(Some("sleep"), 80).starts_with("\\sleep SECONDS\n"));
    }
}
