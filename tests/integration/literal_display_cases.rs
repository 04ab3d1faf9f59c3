//! How big literals are shown: a progress bar on a terminal's stderr
//! while stdout goes to a file, and a long literal cut short when stdout
//! is a terminal — without changing a byte of what goes to a file.

use crate::support::scripted::{ScriptedServer, Step, expect, logout, send};
use crate::support::{imaptalk, local, stderr_of};
use rexpect::session::{PtySession, spawn_command};
use std::process::Command;
use std::time::Duration;

const GREETING: &str = "* OK scripted ready\n";

/// A server that answers `a1 FETCH 1 BODY[]` with `body`, sent in 16
/// pieces 60 ms apart, so that a transfer takes about a second.
fn fetch_server(body: &[u8]) -> ScriptedServer {
    let mut steps = vec![
        send(GREETING),
        expect("a1 FETCH 1 BODY[]"),
        send(&format!("* 1 FETCH (BODY[] {{{}}}\n", body.len())),
        Step::SendChunked {
            bytes: body.to_vec(),
            chunk: body.len().div_ceil(16),
            delay: Duration::from_millis(60),
        },
        send(")\na1 OK Fetch completed.\n"),
    ];
    steps.extend(logout("a2"));
    ScriptedServer::start(steps)
}

/// 6 MiB of numbered lines: over the progress bar's threshold.
fn big_body() -> Vec<u8> {
    let mut body = Vec::new();
    let mut i = 0;
    while body.len() < 6 * 1024 * 1024 {
        i += 1;
        body.extend_from_slice(format!("line {i:07}\r\n").as_bytes());
    }
    body
}

fn env(cmd: &mut Command) {
    cmd.env("TERM", "xterm-256color")
        .env("HOME", std::env::temp_dir())
        .env("LANG", "C")
        .env_remove("NO_COLOR");
}

/// imaptalk with stdin, stderr (and the terminal) on a pty and stdout
/// redirected to `stdout`.
fn spawn_to_file(args: &[&str], stdout: &std::path::Path) -> PtySession {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"out="$1"; shift; exec "$@" > "$out""#)
        .arg("sh")
        .arg(stdout)
        .arg(env!("CARGO_BIN_EXE_imaptalk"))
        .args(args);
    env(&mut cmd);
    spawn_command(cmd, Some(15_000)).unwrap()
}

fn exit_code(p: &PtySession) -> String {
    format!("{:?}", p.process().wait().unwrap())
}

#[test]
fn a_progress_bar_shows_on_a_terminal_while_a_big_literal_goes_to_a_file() {
    let body = big_body();
    let server = fetch_server(&body);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out");
    let mut p = spawn_to_file(&[&local(server.port()), "-c", "FETCH 1 BODY[]"], &file);
    p.exp_string("imaptalk: ").unwrap();
    p.exp_string("ETA").unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(exit_code(&p).contains(", 0)"), "{}", exit_code(&p));
    let t = server.finish();
    t.assert_ok();
    assert_eq!(
        std::fs::read(&file).unwrap(),
        t.sent,
        "the file is unchanged"
    );
    // The bar erased itself: nothing of it is left after its last clear.
    let after = rest.rsplit("\x1b[2K").next().unwrap_or(&rest);
    assert!(
        without_csi(after).trim_matches(['\r', '\n']).is_empty(),
        "left on the terminal: {after:?}"
    );
}

#[test]
fn the_progress_bar_leaves_room_for_an_echoed_ctrl_c() {
    // The `^C` a terminal echoes on Ctrl-C goes after the bar: were it to
    // wrap to a new line, the bar's clearing would miss the line it
    // stands on, which would stay on the screen.
    let body = big_body();
    let server = fetch_server(&body);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"stty cols 60 rows 20; out="$1"; shift; exec "$@" > "$out""#)
        .arg("sh")
        .arg(&file)
        .arg(env!("CARGO_BIN_EXE_imaptalk"))
        .args([&local(server.port()), "-c", "FETCH 1 BODY[]"]);
    env(&mut cmd);
    let mut p = spawn_command(cmd, Some(15_000)).unwrap();
    p.exp_string("ETA").unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(exit_code(&p).contains(", 0)"), "{}", exit_code(&p));
    server.finish().assert_ok();
    let drawn: Vec<String> = without_csi(&rest)
        .split(['\r', '\n'])
        .filter(|l| l.contains("ETA"))
        .map(str::to_string)
        .collect();
    assert!(!drawn.is_empty(), "no bar drawn after the first: {rest:?}");
    for line in drawn {
        assert!(
            line.chars().count() < 60,
            "{} columns: {line:?}",
            line.chars().count()
        );
    }
}

/// Text without its cursor movements (`ESC [ digits letter`).
fn without_csi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn quiet_means_no_progress_bar() {
    let server = fetch_server(&big_body());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out");
    let mut p = spawn_to_file(
        &[&local(server.port()), "--quiet", "-c", "FETCH 1 BODY[]"],
        &file,
    );
    let all = p.exp_eof().unwrap();
    assert!(exit_code(&p).contains(", 0)"), "{}", exit_code(&p));
    server.finish().assert_ok();
    assert_eq!(all, "", "nothing on the terminal");
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let server = fetch_server(&big_body());
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", "FETCH 1 BODY[]"])
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stderr_of(&out), "");
    assert_eq!(out.stdout, t.sent);
}

/// 10,000 numbered lines: 120,000 bytes, over the terminal's limit.
fn long_body() -> Vec<u8> {
    (1..=10_000)
        .flat_map(|i| format!("line {i:05}\r\n").into_bytes())
        .collect()
}

fn spawn_on_terminal(args: &[&str]) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imaptalk"));
    cmd.args(args);
    env(&mut cmd);
    spawn_command(cmd, Some(15_000)).unwrap()
}

#[test]
fn a_long_literal_is_cut_short_on_a_terminal_and_the_framing_holds() {
    let server = fetch_server(&long_body());
    let mut p = spawn_on_terminal(&[&local(server.port()), "-c", "FETCH 1 BODY[]"]);
    let shown = p.exp_string("cut short").unwrap();
    assert!(shown.contains("line 00040"), "{shown}");
    assert!(!shown.contains("line 00041"), "{shown}");
    let note = p.exp_string("a1 OK Fetch completed.").unwrap();
    assert!(
        note.contains("40 lines shown; --full shows it all, --raw or a redirect (> file) gives the exact bytes]"),
        "{note}"
    );
    assert!(!note.contains("line 0"), "{note}");
    let rest = p.exp_eof().unwrap();
    assert!(rest.contains("a2 OK Logout completed."), "{rest}");
    assert!(exit_code(&p).contains(", 0)"), "{}", exit_code(&p));
    server.finish().assert_ok();
}

#[test]
fn full_shows_a_long_literal_in_full() {
    let server = fetch_server(&long_body());
    let mut p = spawn_on_terminal(&[&local(server.port()), "--full", "-c", "FETCH 1 BODY[]"]);
    let shown = p.exp_string("a1 OK Fetch completed.").unwrap();
    assert!(shown.contains("line 05000") && shown.contains("line 10000"));
    assert!(!shown.contains("cut short"));
    p.exp_eof().unwrap();
    assert!(exit_code(&p).contains(", 0)"), "{}", exit_code(&p));
    server.finish().assert_ok();
}
