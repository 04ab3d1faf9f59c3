//! What rendering adds for people: each command's time on its completion
//! (`--timing` on stderr for scripts).

use crate::support::scripted::{ScriptedServer, Step, expect, logout, send};
use crate::support::{imaptalk, local, stderr_of};
use std::time::Duration;

#[test]
fn timing_prints_each_command_on_stderr_and_leaves_stdout_alone() {
    let mut steps = vec![
        send("* OK ready\n"),
        expect("a1 NOOP"),
        // The time covers the wait for the completion.
        Step::Sleep(Duration::from_millis(300)),
        send("a1 OK done\n"),
        expect("a2 UID FETCH 1 FLAGS"),
        send("* 1 FETCH (UID 1 FLAGS ())\na2 OK done\n"),
    ];
    steps.extend(logout("a3"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["--timing", "-c", "NOOP", "-c", "UID FETCH 1 FLAGS"])
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(out.stdout, t.sent, "stdout stays the server's bytes");
    let err = stderr_of(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    let parse = |line: &str, tag: &str, name: &str| -> f64 {
        let rest = line.strip_prefix(&format!("{tag} ")).unwrap();
        let (ms, cmd) = rest.split_once(" ms ").unwrap();
        assert_eq!(cmd, name, "{line}");
        let (whole, frac) = ms.split_once('.').unwrap();
        assert_eq!(frac.len(), 1, "{line}");
        assert!(whole.bytes().all(|b| b.is_ascii_digit()), "{line}");
        ms.parse().unwrap()
    };
    assert!(parse(lines[0], "a1", "NOOP") >= 300.0, "{err}");
    parse(lines[1], "a2", "UID FETCH");
    parse(lines[2], "a3", "LOGOUT");
}

#[cfg(unix)]
#[test]
fn a_terminal_shows_the_time_after_each_completion() {
    use rexpect::session::spawn_command;
    let mut steps = vec![
        send("* OK ready\n"),
        expect("a1 NOOP"),
        send("a1 OK NOOP completed.\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imaptalk"));
    cmd.env("TERM", "dumb")
        .env("HOME", std::env::temp_dir())
        .args([&local(server.port()), "-c", "NOOP"]);
    let mut p = spawn_command(cmd, Some(10_000)).unwrap();
    p.exp_regex(r"a1 OK NOOP completed\.  \([0-9]+(\.[0-9])? ms\)\r?\n")
        .unwrap();
    p.exp_regex(r"a2 OK Logout completed\.  \([0-9]+(\.[0-9])? ms\)")
        .unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

/// A pty running imaptalk with `args`, plain (no colour), and everything
/// it printed until it exited.
#[cfg(unix)]
fn on_a_terminal(args: &[&str]) -> String {
    use rexpect::session::spawn_command;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imaptalk"));
    cmd.env("TERM", "dumb")
        .env("HOME", std::env::temp_dir())
        .args(args);
    let mut p = spawn_command(cmd, Some(15_000)).unwrap();
    // rexpect hands out each byte as a char (Latin-1): undo that.
    let bytes: Vec<u8> = p.exp_eof().unwrap().chars().map(|c| c as u8).collect();
    String::from_utf8(bytes).unwrap()
}

#[cfg(unix)]
#[test]
fn encoded_names_are_shown_decoded_until_utf8_accept_is_enabled() {
    let mut steps = vec![
        send("* OK [CAPABILITY IMAP4rev1 ENABLE UTF8=ACCEPT] ready\n"),
        expect("a1 LIST \"\" *"),
        send("* LIST () \"/\" \"&ZeVnLIqe-\"\n* LIST () \"/\" &ABs-x\na1 OK done\n"),
        expect("a2 ENABLE UTF8=ACCEPT"),
        send("* ENABLED UTF8=ACCEPT\na2 OK done\n"),
        expect("a3 LIST \"\" *"),
        send("* LIST () \"/\" \"&ZeVnLIqe-\"\na3 OK done\n"),
    ];
    steps.extend(logout("a4"));
    let server = ScriptedServer::start(steps);
    let port = local(server.port());
    let all = on_a_terminal(&[
        &port,
        "-c",
        "LIST \"\" *",
        "-c",
        "ENABLE UTF8=ACCEPT",
        "-c",
        "LIST \"\" *",
    ]);
    server.finish().assert_ok();
    assert!(
        all.contains("* LIST () \"/\" \"&ZeVnLIqe-\"  [日本語]"),
        "{all}"
    );
    // A decoded name is escaped like any server text.
    assert!(all.contains("* LIST () \"/\" &ABs-x  [\\x1bx]"), "{all}");
    assert_eq!(all.matches("[日本語]").count(), 1, "{all}");
    assert!(all.find("[日本語]") < all.find("* ENABLED"), "{all}");
}

#[cfg(unix)]
mod dovecot {
    use super::*;
    use crate::support::dovecot::Dovecot;

    #[test]
    fn a_mailbox_with_a_non_ascii_name_is_created_and_listed() {
        let d = Dovecot::start();
        let (user, pass) = d.user();
        let port = local(d.plain_port());
        let login = format!("LOGIN {user} {pass}");
        let all = on_a_terminal(&[
            &port,
            "-c",
            "\\mutf7 日本語",
            "-c",
            &login,
            "-c",
            "CREATE &ZeVnLIqe-",
            "-c",
            "LIST \"\" *",
            "-c",
            "STATUS &ZeVnLIqe- (MESSAGES)",
        ]);
        assert!(
            all.contains("日本語 in modified UTF-7: &ZeVnLIqe-"),
            "{all}"
        );
        assert!(
            all.contains("* LIST (\\HasNoChildren) \".\" &ZeVnLIqe-  [日本語]"),
            "{all}"
        );
        assert!(
            all.contains("* STATUS &ZeVnLIqe- (MESSAGES 0)  [日本語]"),
            "{all}"
        );
        // Dovecot keeps the name as sent: the Maildir folder is encoded.
        assert!(d.maildir(user).join(".&ZeVnLIqe-").is_dir(), "{}", d.log());
        // Raw output (not a terminal) is never annotated.
        let out = imaptalk()
            .arg(&port)
            .args(["-c", &login, "-c", "LIST \"\" *"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("&ZeVnLIqe-\r\n") && !text.contains("日本語"),
            "{text}"
        );
    }
}
