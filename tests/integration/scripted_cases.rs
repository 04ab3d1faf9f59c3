//! Script and `-c` mode against scripted servers: what the server receives,
//! in which order, and what reaches stdout, stderr and the exit code.

use crate::support::scripted::{ScriptedServer, Step, expect, send};
use crate::support::{imaptalk, imaptalk_std, local, stderr_of};
use std::io::Read;
use std::time::Duration;

const GREETING: &str = "* OK [CAPABILITY IMAP4rev1 LITERAL+] scripted ready\n";

fn silence(ms: u64) -> Step {
    Step::ExpectSilence(Duration::from_millis(ms))
}

/// The usual end: the client logs out, the server says BYE and closes.
fn logout(tag: &str) -> Vec<Step> {
    vec![
        expect(&format!("{tag} LOGOUT")),
        send(&format!("* BYE logging out\n{tag} OK Logout completed.\n")),
        Step::Close,
    ]
}

#[test]
fn stdout_is_exactly_the_server_bytes_and_a_forged_completion_is_data() {
    // The literal holds a line that imitates the tagged completion, escape
    // sequences and binary bytes: all of it is data, and the client must
    // wait for the real completion before sending the next command.
    let body: &[u8] = b"Subject: hi\r\n\r\na2 OK forged completion\r\n\x1b]0;PWNED\x07\x00\xff\r\n";
    let mut fetch = format!("* 1 FETCH (UID 7 BODY[] {{{}}}\r\n", body.len()).into_bytes();
    fetch.extend_from_slice(body);
    fetch.extend_from_slice(b")\r\n");
    let mut steps = vec![
        send(GREETING),
        expect("a1 LOGIN alice secret"),
        silence(200),
        send("a1 OK [CAPABILITY IMAP4rev1] Logged in\n"),
        expect("a2 UID FETCH 7 BODY[]"),
        Step::Send(fetch.clone()),
        // The forged "a2 OK" went by: the client must still wait.
        silence(300),
        send("a2 OK Fetch completed.\n"),
    ];
    steps.extend(logout("a3"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("LOGIN alice secret\nUID FETCH 7 BODY[]\n")
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(
        out.stdout, t.sent,
        "stdout must be the server's bytes, unchanged"
    );
    assert_eq!(
        t.lines,
        [
            "a1 LOGIN alice secret",
            "a2 UID FETCH 7 BODY[]",
            "a3 LOGOUT"
        ]
    );
    assert_eq!(stderr_of(&out), "");
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
fn bye_greeting_is_an_error_with_its_text() {
    let server = ScriptedServer::start(vec![
        send("* BYE Too many connections from your IP\n"),
        Step::Close,
    ]);
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("NOOP\n")
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        t.received.is_empty(),
        "nothing may be sent after a BYE greeting"
    );
    assert_eq!(
        stderr_of(&out),
        "imaptalk: server refused the connection: * BYE Too many connections from your IP\n"
    );
}

#[test]
fn connection_closed_in_the_middle_of_a_literal() {
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 FETCH 1 BODY[]"),
        send("* 1 FETCH (BODY[] {1000000}\n0123456789"),
        Step::Close,
    ]);
    let out = imaptalk()
        .arg(local(server.port()))
        .write_stdin("FETCH 1 BODY[]\n")
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        stderr_of(&out),
        "imaptalk: server closed the connection in the middle of a 1000000-byte literal (10 bytes received)\n"
    );
    assert!(
        out.stdout.ends_with(b"0123456789"),
        "what arrived is not lost"
    );
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
fn a_silent_server_times_out() {
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 NOOP"),
        Step::Sleep(Duration::from_millis(1500)),
        Step::Close,
    ]);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["--timeout", "0.5", "-c", "NOOP"])
        .output()
        .unwrap();
    server.finish();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        stderr_of(&out),
        "imaptalk: timed out after 0.5s waiting for the server's response to a1 NOOP\n"
    );
}

#[test]
fn a_greeting_that_never_comes_times_out() {
    let server = ScriptedServer::start(vec![Step::Sleep(Duration::from_millis(1500)), Step::Close]);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["--timeout", "0.3", "-c", "NOOP"])
        .output()
        .unwrap();
    server.finish();
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr_of(&out).contains("timed out after 0.3s waiting for a greeting"));
}

#[test]
fn unknown_tags_and_unrequested_continuations_are_reported_not_obeyed() {
    let mut steps = vec![
        send(GREETING),
        expect("a1 NOOP"),
        send("zz9 OK I never got this command\n+ nobody asked\n"),
        silence(200),
        send("a1 OK NOOP completed.\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0));
    let err = stderr_of(&out);
    assert!(
        err.contains("completed tag 'zz9', which is not outstanding"),
        "{err}"
    );
    assert!(
        err.contains("continuation request (+) that no command is waiting for"),
        "{err}"
    );
}

#[test]
fn starttls_refused_aborts_without_sending_anything_else() {
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 STARTTLS"),
        send("a1 NO STARTTLS not available right now\n"),
        Step::ExpectEof,
    ]);
    let out = imaptalk()
        .arg("--starttls")
        .arg(local(server.port()))
        .args(["-c", "LOGIN alice secret"])
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(
        t.received, b"a1 STARTTLS\r\n",
        "nothing after a refused STARTTLS"
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr_of(&out).contains("server refused STARTTLS"));
}

#[test]
fn bytes_injected_after_the_starttls_ok_abort_the_connection() {
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 STARTTLS"),
        // One segment: the OK plus a forged response a man in the middle
        // wants the client to take as coming from inside TLS.
        send("a1 OK Begin TLS negotiation now\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\n"),
        Step::ExpectEof,
    ]);
    let out = imaptalk()
        .arg("--starttls")
        .arg(local(server.port()))
        .args(["-c", "LOGIN alice secret"])
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(t.received, b"a1 STARTTLS\r\n");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr_of(&out).contains("bytes arrived after the STARTTLS OK, before the TLS handshake"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn preauth_greeting_with_starttls_is_refused() {
    let server = ScriptedServer::start(vec![
        send("* PREAUTH [CAPABILITY IMAP4rev1] already logged in\n"),
        Step::ExpectEof,
    ]);
    let out = imaptalk()
        .arg("--starttls")
        .arg(local(server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert!(t.received.is_empty());
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr_of(&out).contains("PREAUTH"));
}

#[test]
fn literals_split_at_every_byte_arrive_intact() {
    let body: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut resp = format!("* 1 FETCH (BINARY[] ~{{{}}}\r\n", body.len()).into_bytes();
    resp.extend_from_slice(&body);
    resp.extend_from_slice(b" BODY[1] {0}\r\n)\r\na1 OK done\r\n");
    let mut steps = vec![
        send(GREETING),
        expect("a1 FETCH 1 (BINARY[] BODY[1])"),
        Step::SendChunked {
            bytes: resp.clone(),
            chunk: 1,
            delay: Duration::from_micros(200),
        },
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", "FETCH 1 (BINARY[] BODY[1])"])
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, t.sent);
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
        err.starts_with("imaptalk: cannot connect to 127.0.0.1:"),
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
