//! `\idle [SECONDS]` and `\sleep SECONDS` in scripts, `-c` and the REPL:
//! IDLE ended by time, by the next input line or by Enter; renewal before
//! the RFC 2177 limit (with the test-only short interval); meta-command
//! errors in scripts.

use crate::support::scripted::{ScriptedServer, Step, expect, logout, send};
use crate::support::{imaptalk, imaptalk_std, local, stderr_of};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

fn silence(ms: u64) -> Step {
    Step::ExpectSilence(Duration::from_millis(ms))
}

const GREETING: &str = "* OK [CAPABILITY IMAP4rev1 IDLE] ready\n";

#[test]
fn idle_is_renewed_before_the_limit_and_ends_after_its_seconds() {
    // Renewal every 1.5 s (test override of the 28 minutes), idle 2.5 s:
    // one renewal, then the end. --timeout 1 must not cut the idle short.
    let mut steps = vec![
        send(GREETING),
        expect("a1 IDLE"),
        send("+ idling\n"),
        silence(900),
        expect("DONE"),
        send("a1 OK Idle completed.\n"),
        expect("a2 IDLE"),
        send("+ idling\n* 3 EXISTS\n"),
        expect("DONE"),
        send("a2 OK Idle completed.\n"),
    ];
    steps.extend(logout("a3"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .env("IMAPTALK_TEST_RENEW_IDLE_SECS", "1.5")
        .arg(local(server.port()))
        .args(["--timeout", "1", "-c", "\\idle 2.5"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("* 3 EXISTS"), "{text}");
}

#[test]
fn sleep_pauses_the_script_between_commands() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 NOOP"),
        send("a1 OK done\n"),
        silence(700),
        expect("a2 NOOP"),
        send("a2 OK done\n"),
    ];
    steps.extend(logout("a3"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("NOOP\n\\sleep 1\nNOOP\n")
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn idle_without_seconds_ends_when_the_next_line_arrives() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 IDLE"),
        send("+ idling\n"),
        // No input yet: the IDLE goes on.
        silence(600),
        expect("DONE"),
        send("a1 OK Idle completed.\n"),
        // The DONE the script typed was for the IDLE; NOOP comes next.
        expect("a2 NOOP"),
        send("a2 OK done\n"),
    ];
    steps.extend(logout("a3"));
    let server = ScriptedServer::start(steps);
    let mut child = imaptalk_std()
        .arg(local(server.port()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\\idle\n").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    stdin.write_all(b"DONE\nNOOP\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn c_mode_idle_without_seconds_ends_with_stdin() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 IDLE"),
        send("+ idling\n"),
        silence(500),
        expect("DONE"),
        send("a1 OK Idle completed.\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let mut child = imaptalk_std()
        .arg(local(server.port()))
        .args(["-c", "\\idle"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn bad_meta_commands_in_a_script_are_usage_errors() {
    for (line, want) in [
        ("\\frob", "unknown meta-command \\frob"),
        ("\\login alice", "LOGIN USER PASSWORD"),
        ("\\idle soon", "seconds"),
    ] {
        let server = ScriptedServer::start(vec![
            send(GREETING),
            expect("a1 NOOP"),
            send("a1 OK done\n"),
            Step::ExpectEof,
        ]);
        // A script is read as it goes: the commands before the bad line
        // run, then the run ends.
        let out = imaptalk()
            .arg(local(server.port()))
            .write_stdin(format!("NOOP\n{line}\nNOOP\n"))
            .output()
            .unwrap();
        server.finish().assert_ok();
        assert_eq!(out.status.code(), Some(2), "{line}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains(want),
            "{line}: {}",
            stderr_of(&out)
        );
        // -c commands are all known at the start: nothing is sent (nothing
        // listens on port 1; a connection attempt would exit 3).
        let out = imaptalk()
            .arg("127.0.0.1:1")
            .args(["-c", "NOOP", "-c", line, "-c", "NOOP"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{line}: {}", stderr_of(&out));
        assert!(
            stderr_of(&out).contains(want),
            "{line}: {}",
            stderr_of(&out)
        );
    }
}

#[cfg(unix)]
mod dovecot {
    use super::*;
    use crate::dovecot_cases::Capture;
    use crate::support::append_from_second_connection;
    use crate::support::dovecot::Dovecot;

    #[test]
    fn idle_for_two_seconds_sees_a_message_from_a_second_connection() {
        let d = Dovecot::start();
        let (user, pass) = d.user();
        let mut idler = imaptalk_std()
            .arg(local(d.plain_port()))
            .args([
                "-c",
                &format!("LOGIN {user} {pass}"),
                "-c",
                "SELECT INBOX",
                "-c",
                "\\idle 2",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Capture::start(idler.stdout.take().unwrap());
        out.wait_for("+ idling");
        append_from_second_connection(&d);
        // DONE went out by itself after 2 s: IDLE completes, then LOGOUT.
        let status = idler.wait().unwrap();
        assert_eq!(status.code(), Some(0));
        out.wait_for("a4 OK Logout completed");
        let text = out.text();
        let at = |s: &str| {
            text.find(s)
                .unwrap_or_else(|| panic!("{s:?} not in {text}"))
        };
        assert!(at("+ idling") < at("* 1 EXISTS"), "{text}");
        assert!(at("* 1 EXISTS") < at("a3 OK Idle completed"), "{text}");
    }
}

#[cfg(unix)]
mod repl {
    use super::*;
    use rexpect::session::spawn_command;

    #[test]
    fn idle_at_the_prompt_ends_by_time_or_by_enter() {
        let mut steps = vec![
            send(GREETING),
            expect("a1 IDLE"),
            send("+ idling\n"),
            expect("DONE"),
            send("* 4 EXISTS\na1 OK Idle completed.\n"),
            expect("a2 IDLE"),
            send("+ idling\n"),
            expect("DONE"),
            send("a2 OK Idle completed.\n"),
        ];
        steps.extend(logout("a3"));
        let server = ScriptedServer::start(steps);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imaptalk"));
        cmd.env("TERM", "xterm-256color")
            .env("LANG", "C")
            .env_remove("LC_ALL")
            .env_remove("LC_CTYPE")
            .env("HOME", std::env::temp_dir())
            .args(["--no-history", &local(server.port())]);
        let mut p = spawn_command(cmd, Some(10_000)).unwrap();
        p.exp_string("a1> ").unwrap();
        p.send_line("\\idle 1").unwrap();
        p.exp_string("+ idling").unwrap();
        // DONE after a second, by itself.
        p.exp_string("a1 OK Idle completed.").unwrap();
        p.exp_string("a2> ").unwrap();
        p.send_line("\\idle").unwrap();
        p.exp_string("+> ").unwrap();
        p.send_line("").unwrap();
        p.exp_string("a2 OK Idle completed.").unwrap();
        p.exp_string("a3> ").unwrap();
        p.send_control('d').unwrap();
        p.exp_eof().unwrap();
        server.finish().assert_ok();
    }
}
