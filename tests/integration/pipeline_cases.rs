//! `--pipeline`: commands go out before earlier ones complete, except
//! around the commands that must be alone; completions are matched by tag
//! in any order; results and exit codes are those of the waiting mode.

use crate::support::scripted::{ScriptedServer, Step, expect, logout, send};
use crate::support::{imaptalk, local, stderr_of};
use std::time::Duration;

const GREETING: &str = "* OK [CAPABILITY IMAP4rev1] scripted ready\n";

fn silence() -> Step {
    Step::ExpectSilence(Duration::from_millis(200))
}

#[test]
fn commands_go_out_before_earlier_completions_which_may_come_in_any_order() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 LOGIN alice secret"),
        // Nothing is pipelined after LOGIN.
        silence(),
        send("a1 OK Logged in\n"),
        // All four arrive before the server has completed any of them.
        expect("a2 NOOP"),
        expect("a3 FETCH 1 FLAGS"),
        expect("a4 STATUS Nope (MESSAGES)"),
        expect("a5 NOOP"),
        // LOGOUT waits for every completion.
        silence(),
        send("* 1 FETCH (FLAGS (\\Seen))\na3 OK Fetch completed.\n"),
        send("a5 OK NOOP completed.\n"),
        send("a4 NO Mailbox doesn't exist: Nope\n"),
        silence(),
        send("a2 OK NOOP completed.\n"),
    ];
    steps.extend(logout("a6"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["--pipeline", "-c", "LOGIN alice secret", "-c", "NOOP"])
        .args([
            "-c",
            "FETCH 1 FLAGS",
            "-c",
            "STATUS Nope (MESSAGES)",
            "-c",
            "NOOP",
        ])
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(
        out.status.code(),
        Some(1),
        "one pipelined command failed: {}",
        stderr_of(&out)
    );
    assert_eq!(out.stdout, t.sent, "stdout is the server's bytes");
    assert_eq!(stderr_of(&out), "");
}

#[test]
fn login_literals_and_idle_are_sent_alone() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 NOOP"),
        expect("a2 CAPABILITY"),
        // LOGIN waits until everything before it has completed…
        silence(),
        send("* CAPABILITY IMAP4rev1 IDLE\na2 OK done\n"),
        silence(),
        send("a1 OK done\n"),
        expect("a3 LOGIN alice secret"),
        // …and nothing follows it until it has completed.
        silence(),
        send("a3 OK Logged in\n"),
        expect("a4 NOOP"),
        // A command with a synchronizing literal waits for the drain too…
        silence(),
        send("a4 OK done\n"),
        expect("a5 APPEND INBOX {5}"),
        silence(),
        send("+ go ahead\n"),
        Step::ExpectBytes(b"hello".to_vec()),
        expect(""),
        // …and for its own completion.
        silence(),
        send("a5 OK Append completed.\n"),
        expect("a6 NOOP"),
        silence(),
        send("a6 OK done\n"),
        expect("a7 IDLE"),
        send("+ idling\n"),
        expect("DONE"),
        // Nothing after IDLE until it has completed.
        silence(),
        send("a7 OK Idle completed.\n"),
        expect("a8 NOOP"),
        expect("a9 NOOP"),
        send("a8 OK done\na9 OK done\n"),
    ];
    steps.extend(logout("a10"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .arg("--pipeline")
        .write_stdin(
            "NOOP\nCAPABILITY\nLOGIN alice secret\nNOOP\nAPPEND INBOX {5}\nhello\nNOOP\nIDLE\nDONE\nNOOP\nNOOP\n",
        )
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(out.stdout, t.sent);
}

#[test]
fn at_most_a_window_of_commands_is_in_flight() {
    let window = 256;
    let mut steps = vec![send(GREETING)];
    for i in 1..=window {
        steps.push(expect(&format!("a{i} NOOP")));
    }
    // The window is full: the next NOOP waits for a completion.
    steps.push(silence());
    steps.push(send("a1 OK done\n"));
    let next = window + 1;
    steps.push(expect(&format!("a{next} NOOP")));
    steps.push(silence());
    let mut rest = String::new();
    for i in 2..=next {
        rest.push_str(&format!("a{i} OK done\n"));
    }
    steps.push(send(&rest));
    steps.extend(logout(&format!("a{}", next + 1)));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .arg("--pipeline")
        .write_stdin("NOOP\n".repeat(next))
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

/// Tagged completions with Dovecot's timings (`(0.001 + 0.000 secs)`)
/// removed, sorted; and every other line, sorted: a run's results modulo
/// the order the server chose.
#[cfg(unix)]
fn results(stdout: &[u8]) -> (Vec<String>, Vec<String>) {
    let text = String::from_utf8_lossy(stdout);
    let (mut tagged, mut other) = (Vec::new(), Vec::new());
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with("a")
            && line
                .split(' ')
                .nth(1)
                .is_some_and(|s| s == "OK" || s == "NO" || s == "BAD")
        {
            let cut = line.find(" (").unwrap_or(line.len());
            tagged.push(line[..cut].to_string());
        } else {
            other.push(line.to_string());
        }
    }
    tagged.sort();
    other.sort();
    (tagged, other)
}

#[cfg(unix)]
#[test]
fn dovecot_gives_the_same_results_with_and_without_pipelining() {
    use crate::support::dovecot::Dovecot;
    let d = Dovecot::start();
    for i in 1..=20 {
        d.deliver(
            "alice",
            "INBOX",
            format!("Subject: message {i}\r\n\r\nbody {i}\r\na9 OK not a completion\r\n")
                .as_bytes(),
        );
    }
    let (user, pass) = d.user();
    // EXAMINE: read-only, so the first run does not take \Recent away from
    // the second.
    let mut script = format!("LOGIN {user} {pass}\nEXAMINE INBOX\n");
    for i in 0..300 {
        let n = i % 20 + 1;
        script.push_str(match i % 4 {
            0 => "NOOP\n",
            1 => "STATUS INBOX (MESSAGES)\n",
            _ => "",
        });
        script.push_str(&format!("FETCH {n} (FLAGS BODY.PEEK[])\n"));
    }
    // One failure among them: the exit code is 1 both ways.
    script.push_str("FETCH 1 (NOSUCHITEM)\nNOOP\n");
    let run = |pipeline: bool| {
        let mut cmd = imaptalk();
        cmd.arg(local(d.plain_port()));
        if pipeline {
            cmd.arg("--pipeline");
        }
        cmd.write_stdin(script.clone()).output().unwrap()
    };
    let waiting = run(false);
    let pipelined = run(true);
    assert_eq!(waiting.status.code(), Some(1), "{}", stderr_of(&waiting));
    assert_eq!(
        pipelined.status.code(),
        Some(1),
        "{}",
        stderr_of(&pipelined)
    );
    let (tagged, other) = results(&waiting.stdout);
    // The completions (LOGIN, SELECT, 450 commands, the bad FETCH, NOOP,
    // LOGOUT), and each body's forged "a9 OK" line.
    assert_eq!(tagged.len(), 455 + 300);
    assert_eq!(tagged.iter().filter(|t| t.contains(" BAD ")).count(), 1);
    let (p_tagged, p_other) = results(&pipelined.stdout);
    assert_same("completions", &tagged, &p_tagged);
    assert_same("other lines", &other, &p_other);
    assert_eq!(stderr_of(&pipelined), "");
}

/// Two sorted lists are equal; otherwise says what only one of them has.
#[cfg(unix)]
fn assert_same(what: &str, waiting: &[String], pipelined: &[String]) {
    if waiting == pipelined {
        return;
    }
    let only = |a: &[String], b: &[String]| {
        let mut b = b.to_vec();
        let mut out = Vec::new();
        for x in a {
            match b.iter().position(|y| y == x) {
                Some(i) => {
                    b.remove(i);
                }
                None => out.push(x.clone()),
            }
        }
        out
    };
    panic!(
        "{what} differ\nonly without --pipeline: {:?}\nonly with --pipeline: {:?}",
        only(waiting, pipelined),
        only(pipelined, waiting)
    );
}
