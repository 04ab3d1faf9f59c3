//! Script and `-c` mode against scripted servers: what the server receives,
//! in which order, and what reaches stdout, stderr and the exit code. The
//! scenarios of a hostile server are one table in `hostile_cases.rs`.

use crate::support::scripted::{ScriptedServer, Step, expect, logout, send};
use crate::support::{imaptalk, imaptalk_std, local, stderr_of};
use std::io::Read;
use std::time::Duration;

const GREETING: &str = "* OK [CAPABILITY IMAP4rev1 LITERAL+] scripted ready\n";

fn silence(ms: u64) -> Step {
    Step::ExpectSilence(Duration::from_millis(ms))
}

#[test]
fn a_synchronizing_literal_waits_for_the_continuation() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 APPEND INBOX {12}"),
        // No byte of the literal before the server's "+".
        silence(300),
        send("+ Ready for literal data\n"),
        Step::ExpectBytes(b"Hello\r\nWorld".to_vec()),
        expect(" FLAGS"),
        send("a1 OK [APPENDUID 1 1] Append completed.\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    // The literal's 12 bytes are taken verbatim (CRLF inside included),
    // then the rest of the line follows.
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("APPEND INBOX {12}\r\nHello\r\nWorld FLAGS\n")
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn literal_plus_goes_out_without_waiting() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 APPEND INBOX {5+}"),
        // No "+" is sent: the data must arrive on its own.
        Step::ExpectBytes(b"hello".to_vec()),
        expect(""),
        send("a1 OK Append completed.\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("APPEND INBOX {5+}\nhello\n")
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

/// Issue 13 item 1: a non-synchronizing literal refused while it is being
/// sent is still sent in full (the server counts it, RFC 7888); before,
/// the next command went out inside the announced literal.
#[test]
fn a_literal_plus_refused_mid_data_is_still_sent_whole() {
    const LEN: usize = 16 * 1024 * 1024;
    let data: Vec<u8> = (0..LEN).map(|i| b'a' + (i % 26) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.eml");
    std::fs::write(&file, &data).unwrap();
    let mut steps = vec![
        send("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\n"),
        expect(&format!("a1 APPEND INBOX {{{LEN}+}}")),
        // Refused at once, while most of the data is still to come.
        send("a1 NO [TOOBIG] Message too large\n"),
        Step::ExpectBytes(data),
        expect(""),
        expect("a2 NOOP"),
        send("a2 OK NOOP completed.\n"),
    ];
    steps.extend(logout("a3"));
    let server = ScriptedServer::start(steps);
    let line = format!("APPEND INBOX {{@{}}}", file.display());
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", &line, "-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
}

#[test]
fn a_refused_synchronizing_literal_is_not_sent() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 APPEND INBOX {5}"),
        send("a1 NO [TOOBIG] Message too large\n"),
        // The next thing on the wire is the next command, not "hello".
        expect("a2 NOOP"),
        send("a2 OK NOOP completed.\n"),
    ];
    steps.extend(logout("a3"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("APPEND INBOX {5}\nhello\nNOOP\n")
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(1), "a NO makes the exit code 1");
    let err = stderr_of(&out);
    assert!(
        err.contains("was refused before its literal was sent"),
        "{err}"
    );
}

#[test]
fn idle_and_done_go_untagged() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 IDLE"),
        silence(200),
        send("+ idling\n"),
        send("* 4 EXISTS\n"),
        expect("DONE"),
        send("a1 OK Idle completed.\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("IDLE\nDONE\n")
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("* 4 EXISTS"));
}

#[test]
fn end_of_input_during_idle_sends_done_then_logout() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 IDLE"),
        send("+ idling\n"),
        expect("DONE"),
        send("a1 OK Idle completed.\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", "IDLE"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn authenticate_responses_go_untagged_and_are_masked_in_echo() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 AUTHENTICATE PLAIN"),
        silence(200),
        send("+ \n"),
        expect("AGFsaWNlAHNlY3JldA=="),
        send("a1 OK Logged in\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .arg("--echo")
        .write_stdin("AUTHENTICATE PLAIN\nAGFsaWNlAHNlY3JldA==\n")
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0));
    let err = stderr_of(&out);
    assert!(err.contains("C: a1 AUTHENTICATE PLAIN"), "{err}");
    assert!(err.contains("C: ****"), "{err}");
    assert!(
        !err.contains("AGFsaWNl"),
        "the SASL response must not be echoed: {err}"
    );
}

#[test]
fn typed_tags_are_kept_and_tracked() {
    let mut steps = vec![
        send(GREETING),
        expect("x1 LOGIN alice secret"),
        send("x1 OK Logged in\n"),
        expect(". LIST \"\" *"),
        send("* LIST () \"/\" INBOX\n. OK List completed.\n"),
        expect("A select INBOX"),
        send("* 0 EXISTS\nA OK [READ-WRITE] Select completed.\n"),
        expect("a1 NOOP"),
        send("a1 OK NOOP completed.\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("x1 LOGIN alice secret\n. LIST \"\" *\nA select INBOX\nNOOP\n")
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn dash_c_commands_exit_1_when_a_command_fails() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 LOGIN alice wrong"),
        send("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\n"),
        expect("a2 STATUS INBOX (MESSAGES)"),
        send("a2 BAD Not logged in\n"),
    ];
    steps.extend(logout("a3"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", "LOGIN alice wrong", "-c", "STATUS INBOX (MESSAGES)"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("AUTHENTICATIONFAILED"));
}

#[test]
fn blank_and_comment_lines_are_skipped_and_crlf_is_sent() {
    let mut steps = vec![send(GREETING), expect("a1 NOOP"), send("a1 OK done\n")];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("# a comment\n\n   \nNOOP\n\n# the end")
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.received, b"a1 NOOP\r\na2 LOGOUT\r\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn an_explicit_logout_ends_the_script() {
    let steps = vec![
        send(GREETING),
        expect("a1 LOGOUT"),
        send("* BYE logging out\na1 OK Logout completed.\n"),
        Step::ExpectEof,
    ];
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("LOGOUT\nNOOP\n")
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.received, b"a1 LOGOUT\r\n");
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr_of(&out).contains("input after LOGOUT was not sent"));
}

#[test]
fn server_closing_without_logout_is_a_lost_connection() {
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 NOOP"),
        send("* BYE Autologout; idle for too long\n"),
        Step::Close,
    ]);
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("NOOP\n")
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr_of(&out).contains("server closed the connection: * BYE Autologout"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let big = vec![b'x'; 4 << 20];
    let mut resp = format!("* 1 FETCH (BODY[] {{{}}}\r\n", big.len()).into_bytes();
    resp.extend_from_slice(&big);
    resp.extend_from_slice(b")\r\na1 OK done\r\n");
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 FETCH 1 BODY[]"),
        Step::Send(resp),
        Step::Sleep(Duration::from_millis(300)),
        Step::Close,
    ]);
    let mut child = imaptalk_std()
        .arg(local(server.port()))
        .args(["-c", "FETCH 1 BODY[]"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The reading end is dropped here, as `| head -c 10` would.
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    server.finish();
    assert_eq!(&head, b"* OK [CAPA");
    assert_eq!(status.code(), Some(0));
    assert_eq!(err, "");
}

#[test]
fn server_output_lines_convert_lf_in_the_script_to_crlf() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 SELECT INBOX"),
        send("a1 OK done\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("SELECT INBOX\r\n")
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.received, b"a1 SELECT INBOX\r\na2 LOGOUT\r\n");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn connection_refused_and_bad_arguments_have_their_exit_codes() {
    // Bind then drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = imaptalk()
        .arg(local(port))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr_of(&out);
    assert!(
        err.starts_with(&format!("imaptalk: cannot connect to 127.0.0.1:{port}: ")),
        "the address once: {err}"
    );
    assert!(
        err.trim_end().ends_with("nothing listens there: is the server running, and is the port right? (IMAP: 143, or 993 with TLS)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    let out = imaptalk().arg("host:99999").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = imaptalk()
        .arg("no.such.host.invalid")
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr_of(&out).starts_with("imaptalk: cannot resolve 'no.such.host.invalid'"));
}

#[test]
fn a_server_closing_before_the_greeting_suggests_tls() {
    // What a TLS-only port does to a plaintext client.
    let server = ScriptedServer::start(vec![Step::Close]);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert!(t.received.is_empty());
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr_of(&out),
        "imaptalk: server closed the connection before sending a greeting (if this port expects TLS from the start, add --tls)\n"
    );
}

#[test]
fn an_impossible_literal_count_in_the_input_is_the_scripts_fault_not_the_servers() {
    let server = ScriptedServer::start(vec![send("* OK ready\n"), Step::ExpectEof]);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", "NOOP {99999999999999999999999999}"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("26 digits"), "{err}");
    assert!(!err.contains("server"), "{err}");
}

/// Issue 13 item 4(a): thousands of stray `+` and unknown completions are
/// warned about a few times, then counted: a real error stays visible.
#[test]
fn floods_of_stray_responses_are_counted_not_repeated() {
    let mut flood = String::new();
    for i in 0..10_000 {
        flood.push_str("+ more?\n");
        flood.push_str(&format!("x{i} OK forged\n"));
    }
    flood.push_str("a1 OK NOOP completed.\n");
    let mut steps = vec![send(GREETING), expect("a1 NOOP"), send(&flood)];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.lines().count() <= 8, "{err}");
    assert!(
        err.contains(
            "9997 more continuation requests (+) that no command was waiting for were ignored"
        ),
        "{err}"
    );
    assert!(
        err.contains("9997 more completions of tags that were not outstanding were ignored"),
        "{err}"
    );
}

/// Issue 13 item 4(b): `-u` cancels AUTHENTICATE PLAIN with `*` once; a
/// server that keeps sending `+` ends the run with exit 4 and one line.
#[test]
fn u_does_not_answer_endless_continuations() {
    let server = ScriptedServer::start(vec![
        send("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\n"),
        expect("a1 AUTHENTICATE PLAIN"),
        send("+ \n"),
        Step::ExpectAny,
        send("+ \n"),
        expect("*"),
        send(&"+ \n".repeat(2000)),
        Step::ExpectEof,
    ]);
    let out = imaptalk()
        .env("IMAPTALK_PASSWORD", "wonderland")
        .args(["-u", "alice"])
        .arg(local(server.port()))
        .write_stdin("NOOP\n")
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(4), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("after it was cancelled"), "{err}");
}

/// While a long literal is read, imaptalk asks to be woken only once a
/// read's worth has arrived; a server that sends a part and then pauses
/// must still see that part passed on at once, not when the rest comes.
#[test]
fn a_literal_that_pauses_is_passed_on_as_far_as_it_came() {
    use crate::support::scripted::Gate;
    const LEN: usize = 600_000;
    const FIRST: usize = 1_000;
    const SECOND: usize = 40_000;
    let (more, rest_gate) = (Gate::default(), Gate::default());
    let mut head = format!("* 1 FETCH (BODY[] {{{LEN}}}\r\n").into_bytes();
    head.extend_from_slice(&[b'x'; FIRST]);
    let mut rest = vec![b'Z'; LEN - FIRST - SECOND];
    rest.extend_from_slice(b")\r\na1 OK done\r\n");
    let mut steps = vec![
        send(GREETING),
        expect("a1 FETCH 1 BODY[]"),
        Step::Send(head),
        // The first part is passed on; imaptalk now reads the literal, and
        // the next part is less than it waits to be woken for.
        Step::Wait(more.clone()),
        Step::Send(vec![b'x'; SECOND]),
        Step::Wait(rest_gate.clone()),
        Step::Send(rest),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let mut child = imaptalk_std()
        .arg(local(server.port()))
        .args(["-c", "FETCH 1 BODY[]"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for (want, gate) in [(FIRST, &more), (FIRST + SECOND, &rest_gate)] {
        while out.iter().filter(|&&b| b == b'x').count() < want {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "{want} bytes of the literal were sent, then the server paused: {} bytes of output",
                        out.len()
                    );
                }
            }
        }
        gate.open();
    }
    out.extend(rx.iter().flatten());
    reader.join().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    server.finish().assert_ok();
    assert_eq!(
        out.iter().filter(|&&b| b == b'Z').count(),
        LEN - FIRST - SECOND
    );
    assert!(out.ends_with(b"a2 OK Logout completed.\r\n"));
}
