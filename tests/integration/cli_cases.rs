//! The command line as a user meets it: usage errors are one line with
//! exit 2, like every other failure, and `--help` and the README's flag
//! table name the same flags.

use crate::support::{imaptalk, stderr_of};

#[test]
fn usage_errors_are_one_line_with_exit_2() {
    let cases: [(&[&str], &str); 6] = [
        (&["--fulll", "h"], "'--fulll'"),
        (&[], "<SERVER>"),
        (&["--timeout", "x", "h"], "--timeout"),
        (&["--color", "bleh", "h"], "auto, always, never"),
        (&["--show-certs", "-u", "a", "h:993"], "--show-certs"),
        (&["--password-file", "f", "h"], "--user"),
    ];
    for (args, says) in cases {
        let out = imaptalk().args(args).output().unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("imaptalk: "), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A close misspelling still gets clap's suggestion.
    let out = imaptalk().args(["--fulll", "h"]).output().unwrap();
    assert!(stderr_of(&out).contains("'--full'"), "{}", stderr_of(&out));
}

#[test]
fn help_and_version_still_go_to_stdout_with_exit_0() {
    for flag in ["--help", "-h", "--version"] {
        let out = imaptalk().arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(!out.stdout.is_empty(), "{flag}");
    }
}

/// The long flags a text names, in order of first mention.
fn long_flags(text: &str) -> Vec<String> {
    let mut flags: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("--") {
        let start = i + at + 2;
        let end = start
            + text[start..]
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
                .unwrap_or(text.len() - start);
        let preceded_ok = i + at == 0 || !bytes[i + at - 1].is_ascii_alphanumeric();
        let flag = &text[start..end];
        if preceded_ok && flag.len() > 1 && !flags.iter().any(|f| f == flag) {
            flags.push(flag.to_string());
        }
        i = end.max(start);
    }
    flags
}

#[test]
fn the_readme_flag_table_and_help_name_the_same_flags() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table: String = readme
        .lines()
        .skip_while(|l| !l.starts_with("| option | meaning |"))
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').nth(1).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!table.is_empty(), "no flag table in the README");
    let out = imaptalk().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let options: String = help
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .collect::<Vec<_>>()
        .join(" ");
    let mut in_help = long_flags(&options);
    in_help.retain(|f| f != "help" && f != "version");
    let in_table = long_flags(&table);
    let missing: Vec<_> = in_help.iter().filter(|f| !in_table.contains(f)).collect();
    let stale: Vec<_> = in_table.iter().filter(|f| !in_help.contains(f)).collect();
    assert!(
        missing.is_empty(),
        "in --help but not in the README table: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "in the README table but not in --help: {stale:?}"
    );
}

#[test]
fn a_meta_command_that_cannot_work_with_c_is_refused_before_connecting() {
    // Nothing listens on port 1: had it connected, the exit would be 3.
    for (meta, says) in [
        ("\\login bob", "\\login asks for a password at the terminal"),
        ("\\frob", "unknown meta-command \\frob"),
    ] {
        let out = imaptalk()
            .args(["127.0.0.1:1", "-c", "LOGIN alice wonderland", "-c", meta])
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(says) && err.ends_with("nothing was sent\n"),
            "{err}"
        );
    }
}
