//! The interactive side, through a real pseudo-terminal: the REPL, and
//! what reaches a terminal from a hostile server.

use crate::support::certs::{pki_for, rustls_server_config, write_ca};
use crate::support::local;
use crate::support::scripted::{Gate, ScriptedServer, Step, expect, send};
use rexpect::session::{PtySession, spawn_command};
use std::process::Command;
use std::time::Duration;

/// The binary with an environment of its own: no developer settings, and
/// the default history in a directory of the test binary's own.
fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imaptalk"));
    cmd.env("TERM", "xterm-256color")
        .env("HOME", std::env::temp_dir())
        .env(
            "XDG_DATA_HOME",
            std::env::temp_dir().join(format!("imaptalk-pty-{}", std::process::id())),
        )
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("LC_CTYPE")
        .env_remove("NO_COLOR");
    cmd
}

fn spawn(args: &[&str]) -> PtySession {
    let mut cmd = command();
    cmd.args(args);
    spawn_command(cmd, Some(10_000)).expect("spawn imaptalk on a pty")
}

fn exit_code(p: &PtySession) -> String {
    format!("{:?}", p.process().wait().unwrap())
}

#[test]
fn repl_tags_commands_prints_responses_and_logs_out_on_ctrl_d() {
    let server = ScriptedServer::start(vec![
        send("* OK scripted ready\n"),
        expect("a1 NOOP"),
        send("a1 OK NOOP completed.\n"),
        expect("x7 CAPABILITY"),
        send("* CAPABILITY IMAP4rev1 IDLE\nx7 OK done\n"),
        expect("a2 LOGOUT"),
        send("* BYE bye\na2 OK Logout completed.\n"),
        Step::Close,
    ]);
    let mut p = spawn(&[&local(server.port())]);
    p.exp_string("* OK scripted ready").unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line("NOOP").unwrap();
    p.exp_string("a1 OK NOOP completed.").unwrap();
    p.exp_string("a2> ").unwrap();
    p.send_line("x7 CAPABILITY").unwrap();
    p.exp_string("x7 OK done").unwrap();
    p.send_control('d').unwrap();
    p.exp_string("a2 OK Logout completed.").unwrap();
    p.exp_eof().unwrap();
    assert!(exit_code(&p).contains(", 0)"), "{}", exit_code(&p));
    server.finish().assert_ok();
}

#[test]
fn prompt_shows_user_and_mailbox_once_the_server_confirms_them() {
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 LOGIN alice wonderland"),
        send("a1 OK Logged in\n"),
        expect("a2 SELECT \"Sent Items\""),
        send("* 0 EXISTS\na2 OK [READ-WRITE] done\n"),
        expect("a3 SELECT Nope"),
        send("a3 NO no such mailbox\n"),
        expect("a4 EXAMINE INBOX"),
        send("a4 OK [READ-ONLY] done\n"),
        expect("a5 CLOSE"),
        send("a5 OK closed\n"),
        expect("a6 LOGOUT"),
        send("a6 OK bye\n"),
        Step::Close,
    ]);
    let mut p = spawn(&[&local(server.port())]);
    p.exp_string("127.0.0.1 plain a1> ").unwrap();
    p.send_line("LOGIN alice wonderland").unwrap();
    p.exp_string("alice@127.0.0.1 plain a2> ").unwrap();
    p.send_line("SELECT \"Sent Items\"").unwrap();
    p.exp_string("alice@127.0.0.1 plain Sent Items a3> ")
        .unwrap();
    p.send_line("SELECT Nope").unwrap();
    p.exp_string("a3 NO no such mailbox").unwrap();
    p.exp_string("alice@127.0.0.1 plain a4> ").unwrap();
    p.send_line("EXAMINE INBOX").unwrap();
    p.exp_string("alice@127.0.0.1 plain INBOX a5> ").unwrap();
    p.send_line("CLOSE").unwrap();
    p.exp_string("alice@127.0.0.1 plain a6> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

#[test]
fn prompt_shows_a_lock_for_tls_in_a_utf8_locale() {
    let pki = pki_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let server = ScriptedServer::start_tls(
        vec![
            send("* OK ready\n"),
            expect("a1 LOGOUT"),
            send("a1 OK bye\n"),
            Step::Reset,
        ],
        rustls_server_config(&pki),
    );
    let mut cmd = command();
    cmd.args(["--tls", "--cafile"])
        .arg(&ca)
        .arg(format!("localhost:{}", server.port()))
        .env("LC_ALL", "C.UTF-8");
    let mut p = spawn_command(cmd, Some(10_000)).unwrap();
    // rexpect reads bytes as Latin-1: expect the lock's UTF-8 bytes.
    let lock: String = "\u{1f512}".bytes().map(char::from).collect();
    p.exp_string(&format!("localhost {lock} a1> ")).unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

#[test]
fn history_file_is_private_and_holds_no_password() {
    // "\0alice\0s3cret-pw" in base64, typed as the answer to the `+`.
    let sasl = "AGFsaWNlAHMzY3JldC1wdw==";
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 LOGIN alice s3cret-pw"),
        send("a1 NO [AUTHENTICATIONFAILED] try again\n"),
        expect("a2 AUTHENTICATE PLAIN"),
        send("+ \n"),
        expect(sasl),
        send("a2 OK done\n"),
        expect("a3 APPEND INBOX {9}"),
        send("+ go\n"),
        Step::ExpectBytes(b"literally".to_vec()),
        expect(""),
        send("a3 OK appended\n"),
        expect("a4 NOOP"),
        send("a4 OK noop\n"),
        expect("a5 LOGOUT"),
        send("a5 OK bye\n"),
        Step::Close,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sub").join("hist");
    let mut p = spawn(&["--history", file.to_str().unwrap(), &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send_line("LOGIN alice s3cret-pw").unwrap();
    p.exp_string("a2> ").unwrap();
    p.send_line("AUTHENTICATE PLAIN").unwrap();
    p.exp_string("+> ").unwrap();
    p.send_line(sasl).unwrap();
    p.exp_string("a3> ").unwrap();
    p.send_line("APPEND INBOX {9}").unwrap();
    p.exp_string("{9}> ").unwrap();
    p.send_line("literally").unwrap();
    p.exp_string("a3 OK appended").unwrap();
    p.send_line("NOOP").unwrap();
    p.exp_string("a4 OK noop").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
    let kept = std::fs::read_to_string(&file).unwrap();
    assert!(kept.contains("APPEND INBOX {9}"), "{kept:?}");
    assert!(kept.contains("NOOP"), "{kept:?}");
    for secret in ["s3cret", "LOGIN", sasl, "AUTHENTICATE", "literally"] {
        assert!(!kept.contains(secret), "{secret:?} in history: {kept:?}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[test]
fn history_defaults_to_the_data_dir_and_is_recalled_next_time() {
    let data = tempfile::tempdir().unwrap();
    for recall in [false, true] {
        let server = ScriptedServer::start(vec![
            send("* OK ready\n"),
            expect("a1 STATUS INBOX (MESSAGES)"),
            send("a1 OK status\n"),
            expect("a2 LOGOUT"),
            send("a2 OK bye\n"),
            Step::Close,
        ]);
        let mut cmd = command();
        cmd.arg(local(server.port()))
            .env("XDG_DATA_HOME", data.path());
        let mut p = spawn_command(cmd, Some(10_000)).unwrap();
        p.exp_string("a1> ").unwrap();
        if recall {
            // Up arrow brings back the line from the first session.
            p.send("\x1b[A").unwrap();
            p.flush().unwrap();
            p.exp_string("STATUS INBOX (MESSAGES)").unwrap();
            p.send("\r").unwrap();
            p.flush().unwrap();
        } else {
            p.send_line("STATUS INBOX (MESSAGES)").unwrap();
        }
        p.exp_string("a1 OK status").unwrap();
        p.send_control('d').unwrap();
        p.exp_eof().unwrap();
        server.finish().assert_ok();
    }
    let kept = std::fs::read_to_string(data.path().join("imaptalk/history")).unwrap();
    assert!(kept.contains("STATUS INBOX (MESSAGES)"), "{kept:?}");
}

#[test]
fn no_history_writes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 NOOP"),
        send("a1 OK noop\n"),
        expect("a2 LOGOUT"),
        send("a2 OK bye\n"),
        Step::Close,
    ]);
    let mut cmd = command();
    cmd.args(["--no-history", &local(server.port())])
        .env("XDG_DATA_HOME", data.path());
    let mut p = spawn_command(cmd, Some(10_000)).unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line("NOOP").unwrap();
    p.exp_string("a1 OK noop").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
    assert!(!data.path().join("imaptalk").exists());
}

#[test]
fn meta_commands_are_never_sent_and_login_asks_for_the_password() {
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 LOGIN alice \"wonder land\\\"x\""),
        send("a1 OK Logged in\n"),
        expect("a2 LOGOUT"),
        send("a2 OK bye\n"),
        Step::Close,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hist");
    let mut p = spawn(&["--history", file.to_str().unwrap(), &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send_line("\\help FETCH").unwrap();
    p.exp_string("FETCH <sequence-set> <items>").unwrap();
    p.exp_string("6.4.5").unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line("\\help").unwrap();
    p.exp_string("\\login USER").unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line("\\frobnicate now").unwrap();
    p.exp_string("unknown meta-command \\frobnicate").unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line("\\login alice").unwrap();
    p.exp_string("Password for alice: ").unwrap();
    p.send_line("wonder land\"x").unwrap();
    p.exp_string("a1 OK Logged in").unwrap();
    p.exp_string("alice@127.0.0.1 plain a2> ").unwrap();
    p.send_line("\\quit").unwrap();
    p.exp_string("a2 OK bye").unwrap();
    p.exp_eof().unwrap();
    assert!(exit_code(&p).contains(", 0)"), "{}", exit_code(&p));
    server.finish().assert_ok();
    let kept = std::fs::read_to_string(&file).unwrap();
    assert!(kept.contains("\\login alice"), "{kept:?}");
    assert!(!kept.contains("wonder"), "{kept:?}");
}

#[test]
fn meta_login_sends_an_8bit_password_as_a_literal() {
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 LOGIN bob {7}"),
        send("+ go ahead\n"),
        Step::ExpectBytes("p\u{e4}sswd".as_bytes().to_vec()),
        expect(""),
        send("a1 OK Logged in\n"),
        expect("a2 LOGOUT"),
        send("a2 OK bye\n"),
        Step::Close,
    ]);
    let mut p = spawn(&["--no-history", &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    // Ctrl-C at the password prompt cancels the login, not the session.
    p.send_line("\\login bob").unwrap();
    p.exp_string("Password for bob: ").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("login cancelled; nothing was sent").unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line("\\login bob").unwrap();
    p.exp_string("Password for bob: ").unwrap();
    p.send_line("p\u{e4}sswd").unwrap();
    p.exp_string("a1 OK Logged in").unwrap();
    p.exp_string("bob@127.0.0.1 plain a2> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

#[test]
fn tab_completes_learned_mailboxes_and_capability_commands_and_hints_show_syntax() {
    // QUOTA brings its commands; ESEARCH is a capability only (the ESEARCH
    // command needs MULTISEARCH), so `ESE` + Tab leaves `ESE` as typed.
    let server = ScriptedServer::start(vec![
        send("* OK [CAPABILITY IMAP4rev1 ESEARCH QUOTA] ready\n"),
        expect("a1 LIST \"\" *"),
        send("* LIST (\\HasNoChildren) \"/\" \"Sent Items\"\n* LIST () \"/\" INBOX\na1 OK done\n"),
        expect("a2 SELECT \"Sent Items\""),
        send("a2 OK [READ-WRITE] selected\n"),
        expect("a3 GETQUOTAROOT"),
        send("a3 OK quota\n"),
        expect("a4 ESE"),
        send("a4 BAD no such command\n"),
        expect("a5 LOGOUT"),
        send("a5 OK bye\n"),
        Step::Close,
    ]);
    let mut p = spawn(&["--no-history", &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send_line("LIST \"\" *").unwrap();
    p.exp_string("a1 OK done").unwrap();
    p.exp_string("a2> ").unwrap();
    p.send("SELECT Se\t").unwrap();
    p.flush().unwrap();
    p.exp_string("\"Sent Items\"").unwrap();
    p.send("\r").unwrap();
    p.flush().unwrap();
    p.exp_string("Sent Items a3> ").unwrap();
    p.send("GETQUOTAR\t").unwrap();
    p.flush().unwrap();
    p.exp_string("GETQUOTAROOT").unwrap();
    p.send("\r").unwrap();
    p.flush().unwrap();
    p.exp_string("a3 OK quota").unwrap();
    p.exp_string("a4> ").unwrap();
    // Nothing to complete: the line goes out as typed (the server script
    // fails on `a4 ESEARCH`).
    p.send("ESE\t\r").unwrap();
    p.flush().unwrap();
    p.exp_string("a4 BAD no such command").unwrap();
    p.exp_string("a5> ").unwrap();
    // The hint: the syntax of what is being typed, after the cursor.
    p.send("UID FETCH ").unwrap();
    p.flush().unwrap();
    p.exp_string("<uid-set> <items>").unwrap();
    // Ctrl-U clears the line (in the same prompt, so no key can be typed
    // ahead of the next one); nothing of it is sent.
    p.send_control('u').unwrap();
    p.send_control('d').unwrap();
    p.exp_string("a5 OK bye").unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

#[test]
fn repl_shows_unsolicited_output_while_waiting_at_the_prompt() {
    let server = ScriptedServer::start(vec![
        send("* OK scripted ready\n"),
        Step::Sleep(Duration::from_millis(500)),
        send("* 3 EXISTS\n* OK [ALERT] System going down for maintenance\n"),
        expect("a1 LOGOUT"),
        send("a1 OK bye\n"),
        Step::Close,
    ]);
    let mut p = spawn(&[&local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.exp_string("* 3 EXISTS").unwrap();
    p.exp_string("System going down").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

#[test]
fn repl_ends_with_a_message_and_code_4_when_the_server_hangs_up() {
    let server = ScriptedServer::start(vec![
        send("* OK scripted ready\n"),
        Step::Sleep(Duration::from_millis(300)),
        send("* BYE Autologout\n"),
        Step::Close,
    ]);
    let mut p = spawn(&[&local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.exp_string("server closed the connection: * BYE Autologout")
        .unwrap();
    p.exp_eof().unwrap();
    assert!(exit_code(&p).contains(", 4)"), "{}", exit_code(&p));
    server.finish();
}

#[test]
fn escape_sequences_from_the_server_never_reach_the_terminal() {
    let hostile = "* OK \x1b]0;PWNED\x07 \x1b[2J\u{9b}31m \u{202e}gnp.exe\n";
    let body = "\x1b]52;c;ZXZpbA==\x07clipboard\r\n";
    let server = ScriptedServer::start(vec![
        send(hostile),
        expect("a1 FETCH 1 BODY[]"),
        Step::Send(
            format!(
                "* 1 FETCH (BODY[] {{{}}}\r\n{body})\r\na1 OK done\r\n",
                body.len()
            )
            .into_bytes(),
        ),
        expect("a2 LOGOUT"),
        send("a2 OK bye\n"),
        Step::Close,
    ]);
    // -c: script mode, but stdout is a terminal, so output is rendered.
    let mut p = spawn(&[&local(server.port()), "-c", "FETCH 1 BODY[]"]);
    let screen = p.exp_eof().unwrap();
    server.finish().assert_ok();
    assert!(
        screen.contains("\\x1b]0;PWNED\\x07 \\x1b[2J\\u{9b}31m \\u{202e}gnp.exe"),
        "{screen:?}"
    );
    assert!(
        screen.contains("\\x1b]52;c;ZXZpbA==\\x07clipboard"),
        "{screen:?}"
    );
    for raw in [
        "\x1b]0;", "\x1b]52;", "\x1b[2J", "\u{9b}", "\u{202e}", "\x07",
    ] {
        assert!(
            !screen.contains(raw),
            "{raw:?} reached the terminal: {screen:?}"
        );
    }
}

#[test]
fn completions_are_coloured_on_a_terminal_unless_no_color() {
    for (color, env_no_color) in [(true, false), (false, true)] {
        let server = ScriptedServer::start(vec![
            send("* OK ready\n"),
            expect("a1 NOOP"),
            send("a1 NO nope\n"),
            expect("a2 LOGOUT"),
            send("a2 OK bye\n"),
            Step::Close,
        ]);
        let mut cmd = command();
        cmd.args([&local(server.port()), "-c", "NOOP"]);
        if env_no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let mut p = spawn_command(cmd, Some(10_000)).unwrap();
        let screen = p.exp_eof().unwrap();
        server.finish().assert_ok();
        // Yellow for NO.
        assert_eq!(screen.contains("\x1b[33ma1 NO nope"), color, "{screen:?}");
        assert!(screen.contains("a1 NO nope"));
    }
}

#[test]
fn idle_ends_with_enter_on_an_empty_line_or_ctrl_c() {
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 IDLE"),
        send("+ idling\n"),
        expect("DONE"),
        send("a1 OK Idle completed.\n"),
        expect("a2 IDLE"),
        send("+ idling\n"),
        expect("DONE"),
        send("a2 OK Idle completed.\n"),
        expect("a3 LOGOUT"),
        send("a3 OK bye\n"),
        Step::Close,
    ]);
    let mut p = spawn(&["--no-history", &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send_line("IDLE").unwrap();
    p.exp_string("+> ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("a1 OK Idle completed.").unwrap();
    p.exp_string("a2> ").unwrap();
    p.send_line("IDLE").unwrap();
    p.exp_string("+> ").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("a2 OK Idle completed.").unwrap();
    p.exp_string("a3> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

#[test]
fn repl_against_dovecot_idle_delivery_keeps_the_typed_line_and_history_has_no_password() {
    let d = crate::support::dovecot::Dovecot::start();
    let (user, pass) = d.user();
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let mut p = spawn(&[
        "--history",
        history.to_str().unwrap(),
        &local(d.plain_port()),
    ]);
    p.exp_string("a1> ").unwrap();
    p.send_line(&format!("LOGIN {user} {pass}")).unwrap();
    p.exp_string("a1 OK").unwrap();
    p.send_line("SELECT INBOX").unwrap();
    p.exp_string("a2 OK").unwrap();

    // A typed literal: the prompt counts the bytes still expected.
    p.send_line("APPEND INBOX {7}").unwrap();
    p.exp_string("{7}> ").unwrap();
    p.send_line("hello").unwrap(); // 5 bytes + CRLF = 7
    p.exp_string("..> ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("a3 OK [APPENDUID").unwrap();

    p.send_line("IDLE").unwrap();
    p.exp_string("+ idling").unwrap();
    p.exp_string("+> ").unwrap();
    p.send("NOO").unwrap();
    p.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // A second connection appends while the user is typing.
    crate::support::append_from_second_connection(&d);
    p.exp_string("* 2 EXISTS").unwrap();
    // The half-typed line is drawn again below the new output.
    p.exp_string("NOO").unwrap();
    p.send_control('u').unwrap();
    p.send_line("").unwrap();
    p.exp_string("a4 OK Idle completed").unwrap();
    p.exp_string("a5> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_string("a5 OK Logout completed").unwrap();
    p.exp_eof().unwrap();

    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.contains("SELECT INBOX"), "{saved}");
    assert!(
        !saved.contains(pass),
        "the password is in the history: {saved}"
    );
    assert!(
        !saved.contains("hello"),
        "literal data is in the history: {saved}"
    );
}

#[test]
fn literal_typed_before_the_servers_plus_goes_on_to_the_rest_of_the_line() {
    let server = ScriptedServer::start(vec![
        send("* OK scripted ready\n"),
        expect("a1 APPEND INBOX {7}"),
        // A slow server: the data is typed before its `+`, and waits.
        Step::ExpectSilence(Duration::from_millis(800)),
        send("+ OK\n"),
        Step::ExpectBytes(b"hello\r\n".to_vec()),
        expect(""),
        send("a1 OK appended\n"),
        expect("a2 LOGOUT"),
        send("* BYE bye\na2 OK bye\n"),
        Step::Close,
    ]);
    let mut p = spawn(&["--no-history", &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send_line("APPEND INBOX {7}").unwrap();
    p.exp_string("{7}> ").unwrap();
    p.send_line("hello").unwrap();
    // All 7 bytes are typed: the prompt asks for the rest of the line,
    // not for `{0}` more bytes.
    p.exp_string("..> ").unwrap();
    p.send_line("").unwrap();
    p.exp_string("a1 OK appended").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

#[test]
fn a_line_that_cannot_be_sent_is_refused_and_the_prompt_comes_back() {
    // A typo in a file name or a literal count at the prompt is the
    // user's to correct: nothing of the line was sent, so the session
    // goes on (in a script the same line ends the run with exit 2).
    let server = ScriptedServer::start(vec![
        send("* OK [CAPABILITY IMAP4rev1] ready\n"),
        expect("a1 NOOP"),
        send("a1 OK NOOP completed.\n"),
        expect("a2 LOGOUT"),
        send("* BYE bye\na2 OK Logout completed.\n"),
        Step::Close,
    ]);
    let mut p = spawn(&["--no-history", &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send_line("APPEND INBOX {@/nonexistent/imaptalk-qa.eml}")
        .unwrap();
    p.exp_string("cannot open").unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line("APPEND INBOX {@-}").unwrap();
    p.exp_string("name a file").unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line("NOOP {99999999999999999999999999}").unwrap();
    p.exp_string("26 digits").unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line("NOOP").unwrap();
    p.exp_string("a1 OK NOOP completed.").unwrap();
    p.exp_string("a2> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_string("a2 OK Logout completed.").unwrap();
    p.exp_eof().unwrap();
    assert!(exit_code(&p).contains(", 0)"), "{}", exit_code(&p));
    server.finish().assert_ok();
}

#[test]
fn ctrl_c_at_the_password_prompt_of_u_restores_the_terminal() {
    // The prompt turns echo off; a Ctrl-C there must not kill the process
    // before the terminal is put back (sh, unlike bash, does not restore
    // it), and nothing is sent: the prompt comes before connecting.
    let mut sh = Command::new("sh");
    for (k, v) in command().get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.env_remove("IMAPTALK_PASSWORD")
        .env_remove("IMAPTALK_OAUTH2_TOKEN")
        .arg("-c")
        .arg(r#"echo "before=$(stty -g)"; "$@"; echo "exit=$?"; echo "after=$(stty -g)""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_imaptalk"))
        .args(["-u", "alice", "127.0.0.1:1"]);
    let mut p = spawn_command(sh, Some(10_000)).expect("spawn sh on a pty");
    p.exp_string("before=").unwrap();
    let before = p.read_line().unwrap();
    p.exp_string("Password for alice@127.0.0.1: ").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("interrupted by SIGINT before connecting")
        .unwrap();
    p.exp_string("exit=130").unwrap();
    p.exp_string("after=").unwrap();
    let after = p.read_line().unwrap();
    assert_eq!(after, before, "terminal settings (stty -g) changed");
}

#[test]
fn ctrl_c_while_the_oauth2_token_command_runs_ends_the_run() {
    // Nothing listens on port 1: a run that went on after the Ctrl-C
    // would end with "connection refused" and exit 3.
    let mut cmd = command();
    cmd.env_remove("IMAPTALK_PASSWORD").args([
        "-u",
        "alice",
        "--oauth2-token-command",
        "sleep 3; echo token",
        "127.0.0.1:1",
    ]);
    let mut p = spawn_command(cmd, Some(10_000)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    p.send_control('c').unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(
        rest.contains("interrupted by SIGINT before connecting"),
        "{rest}"
    );
    assert!(exit_code(&p).contains("130"), "{}: {rest}", exit_code(&p));
}

#[test]
fn lines_typed_ahead_or_pasted_are_all_sent_in_order() {
    // Each group of lines reaches the terminal in one write, as tmux
    // send-keys and an unbracketed paste deliver them: the editor reads
    // them all at once and must keep what comes after the first line.
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 NOOP"),
        expect("a2 CAPABILITY"),
        send("a1 OK noop\n* CAPABILITY IMAP4rev1\na2 OK capability\n"),
        expect("a3 LOGIN alice wonderland"),
        send("a3 OK logged in\n"),
        expect("a4 SELECT INBOX"),
        send("* 2 EXISTS\na4 OK [READ-WRITE] selected\n"),
        expect("a5 FETCH 1:* (FLAGS)"),
        send("* 1 FETCH (FLAGS ())\n* 2 FETCH (FLAGS ())\na5 OK fetched\n"),
        expect("a6 NOOP"),
        send("a6 OK noop\n"),
        expect("a7 EXAMINE INBOX"),
        send("a7 OK [READ-ONLY] examined\n"),
        expect("a8 LOGIN bob builder"),
        send("a8 NO [AUTHENTICATIONFAILED] nope\n"),
        expect("a9 LOGOUT"),
        send("a9 OK bye\n"),
        Step::Close,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hist");
    let mut p = spawn(&["--history", file.to_str().unwrap(), &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send("NOOP\rCAPABILITY\r").unwrap();
    p.flush().unwrap();
    p.exp_string("a2 OK capability").unwrap();
    p.send("LOGIN alice wonderland\rSELECT INBOX\rFETCH 1:* (FLAGS)\rNOOP\r")
        .unwrap();
    p.flush().unwrap();
    p.exp_string("a6 OK noop").unwrap();
    // A bracketed paste is one edit of several lines, sent with Enter:
    // each line is a command of its own, and a LOGIN among them stays out
    // of history like a typed one.
    p.send("\x1b[200~EXAMINE INBOX\rLOGIN bob builder\x1b[201~\r")
        .unwrap();
    p.flush().unwrap();
    p.exp_string("a8 NO").unwrap();
    p.send_control('d').unwrap();
    p.exp_string("a9 OK bye").unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
    let kept = std::fs::read_to_string(&file).unwrap();
    for line in [
        "NOOP",
        "CAPABILITY",
        "SELECT INBOX",
        "FETCH 1:* (FLAGS)",
        "EXAMINE INBOX",
    ] {
        assert!(kept.lines().any(|l| l == line), "{line:?} not in {kept:?}");
    }
    assert!(!kept.contains("builder"), "{kept:?}");
    assert!(!kept.contains("wonderland"), "{kept:?}");
}

/// Waits for `prompt` with nothing typed after it: the prompt for the
/// next line, once the line before was taken. The editor draws the whole
/// line again as a hint comes and goes ("(after a1)> SELECT <mailbox>"),
/// so the prompt's text alone may be a redraw of the line still being
/// typed; an empty line is drawn as the prompt and a carriage return
/// that puts the cursor after it.
fn exp_fresh_prompt(p: &mut PtySession, prompt: &str) {
    p.exp_string(&format!("{prompt}\r")).unwrap();
}

#[test]
fn lines_typed_while_a_command_runs_are_queued_shown_and_sent_after_it() {
    // The server answers LOGIN only once the next lines are typed: they
    // wait, under a prompt that says for what, and are shown as they go.
    let gate = Gate::default();
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 LOGIN alice wonderland"),
        Step::Wait(gate.clone()),
        send("a1 OK logged in\n"),
        expect("a2 SELECT INBOX"),
        send("* 2 EXISTS\na2 OK [READ-WRITE] selected\n"),
        expect("a3 NOOP"),
        send("a3 OK noop\n"),
        expect("a4 LOGOUT"),
        send("a4 OK bye\n"),
        Step::Close,
    ]);
    let mut p = spawn(&["--no-history", &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send_line("LOGIN alice wonderland").unwrap();
    exp_fresh_prompt(&mut p, "(after a1)> ");
    p.send_line("SELECT INBOX").unwrap();
    exp_fresh_prompt(&mut p, "(after a1)> ");
    p.send_line("NOOP").unwrap();
    exp_fresh_prompt(&mut p, "(after a1)> ");
    gate.open();
    p.exp_string("a1 OK logged in").unwrap();
    p.exp_string("C: a2 SELECT INBOX").unwrap();
    p.exp_string("a2 OK [READ-WRITE] selected").unwrap();
    p.exp_string("C: a3 NOOP").unwrap();
    p.exp_string("a3 OK noop").unwrap();
    p.exp_string("alice@127.0.0.1 plain INBOX a4> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_string("a4 OK bye").unwrap();
    p.exp_eof().unwrap();
    assert!(exit_code(&p).contains(", 0)"), "{}", exit_code(&p));
    server.finish().assert_ok();
}

#[test]
fn a_half_typed_line_survives_the_prompt_changing_under_it() {
    let gate = Gate::default();
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 LOGIN alice wonderland"),
        Step::Wait(gate.clone()),
        send("a1 OK logged in\n"),
        expect("a2 SELECT INBOX"),
        send("a2 OK [READ-WRITE] selected\n"),
        expect("a3 LOGOUT"),
        send("a3 OK bye\n"),
        Step::Close,
    ]);
    let mut p = spawn(&["--no-history", &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send_line("LOGIN alice wonderland").unwrap();
    exp_fresh_prompt(&mut p, "(after a1)> ");
    p.send("SELECT I").unwrap();
    p.flush().unwrap();
    // Drawn with the hint gone once the mailbox is being typed.
    p.exp_string("(after a1)> SELECT I").unwrap();
    p.send("N").unwrap();
    p.flush().unwrap();
    p.exp_string("N").unwrap();
    gate.open();
    // The completion changes the prompt; the line is drawn again after it
    // and typing goes on where it was.
    p.exp_string("alice@127.0.0.1 plain a2> SELECT IN").unwrap();
    p.send_line("BOX").unwrap();
    p.exp_string("a2 OK [READ-WRITE] selected").unwrap();
    p.exp_string("INBOX a3> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

#[test]
fn ctrl_c_stops_waiting_for_a_silent_server_and_a_second_one_ends_the_session() {
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 XSLOW"),
        expect("a2 LOGOUT"),
        // Never answered: the session ends on its own within 2 s.
        Step::ExpectEof,
    ]);
    let mut p = spawn(&["--no-history", &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send_line("XSLOW").unwrap();
    exp_fresh_prompt(&mut p, "(after a1)> ");
    p.send_line("NOOP").unwrap();
    exp_fresh_prompt(&mut p, "(after a1)> ");
    p.send_control('c').unwrap();
    p.exp_string("stopped waiting: a1 XSLOW still outstanding")
        .unwrap();
    p.exp_string("1 line typed ahead not sent").unwrap();
    p.exp_string("a2> ").unwrap();
    let second = std::time::Instant::now();
    p.send_control('c').unwrap();
    p.exp_string("C: a2 LOGOUT").unwrap();
    p.exp_string("interrupted by SIGINT: sent LOGOUT; no answer within 1s")
        .unwrap();
    p.exp_eof().unwrap();
    // 1 s of grace; the rest is room for a loaded machine.
    assert!(
        second.elapsed() < Duration::from_secs(5),
        "{:?}",
        second.elapsed()
    );
    assert!(exit_code(&p).contains("130"), "{}", exit_code(&p));
    server.finish().assert_ok();
}

#[test]
fn ctrl_d_leaves_a_silent_server_at_once() {
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 XSLOW"),
        expect("a2 LOGOUT"),
        Step::ExpectEof,
    ]);
    let mut p = spawn(&["--no-history", &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send_line("XSLOW").unwrap();
    exp_fresh_prompt(&mut p, "(after a1)> ");
    let start = std::time::Instant::now();
    p.send_control('d').unwrap();
    p.exp_string("C: a2 LOGOUT").unwrap();
    p.exp_string("sent LOGOUT; no answer within 1s").unwrap();
    p.exp_eof().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(exit_code(&p).contains(", 0)"), "{}", exit_code(&p));
    server.finish().assert_ok();
}

#[test]
fn ctrl_c_before_the_greeting_or_during_the_handshake_ends_the_attempt() {
    // Plaintext to a server that says nothing: after 5 s the --tls hint,
    // then Ctrl-C ends the attempt with 130 and nothing sent.
    let server = ScriptedServer::start(vec![Step::ExpectSilence(Duration::from_secs(30))]);
    let mut p = spawn(&["--no-history", &local(server.port())]);
    p.exp_string("(connecting)> ").unwrap();
    p.exp_string("after 5s; if this port expects TLS from the start, add --tls (still waiting)")
        .unwrap();
    p.send_control('c').unwrap();
    p.exp_string("interrupted by SIGINT before the session was set up")
        .unwrap();
    p.exp_eof().unwrap();
    assert!(exit_code(&p).contains("130"), "{}", exit_code(&p));
    drop(server);
    // --tls to a server that never answers the ClientHello.
    let server = ScriptedServer::start(vec![Step::ExpectSilence(Duration::from_secs(30))]);
    let mut p = spawn(&["--no-history", "--tls", &local(server.port())]);
    p.exp_string("(connecting)> ").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("interrupted by SIGINT before the session was set up")
        .unwrap();
    p.exp_eof().unwrap();
    assert!(exit_code(&p).contains("130"), "{}", exit_code(&p));
}

#[test]
fn a_literal_takes_no_line_past_its_count_and_ctrl_c_says_what_is_owed() {
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 APPEND INBOX {5}"),
        send("+ go\n"),
        Step::ExpectBytes(b"hello\r\n".to_vec()),
        send("a1 OK appended\n"),
        expect("a2 APPEND INBOX {10}"),
        send("+ go\n"),
        // The second Ctrl-C closes the connection: nothing of the data.
        Step::ExpectEof,
    ]);
    let mut p = spawn(&["--no-history", &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send_line("APPEND INBOX {5}").unwrap();
    p.exp_string("{5}> ").unwrap();
    p.send_line("hello world").unwrap();
    p.exp_string(
        "this line was not sent: the literal still expects 5 bytes and the line has 11 bytes",
    )
    .unwrap();
    p.exp_string("{5}> ").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("a1 APPEND still needs 5 bytes of literal data")
        .unwrap();
    p.exp_string("{5}> ").unwrap();
    p.send_line("hello").unwrap();
    p.exp_string("a1 OK appended").unwrap();
    p.exp_string("a2> ").unwrap();
    p.send_line("APPEND INBOX {10}").unwrap();
    p.exp_string("{10}> ").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("press Ctrl-C again within 3s to disconnect")
        .unwrap();
    p.send_control('c').unwrap();
    p.exp_string("closed the connection without LOGOUT")
        .unwrap();
    p.exp_eof().unwrap();
    assert!(exit_code(&p).contains("130"), "{}", exit_code(&p));
    server.finish().assert_ok();
}

#[test]
fn help_is_wrapped_to_a_narrow_terminal_between_words() {
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 LOGOUT"),
        send("a1 OK bye\n"),
        Step::Close,
    ]);
    let mut sh = Command::new("sh");
    for (k, v) in command().get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.arg("-c")
        .arg(r#"stty cols 40 rows 30; exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_imaptalk"))
        .args(["--no-history", &local(server.port())]);
    let mut p = spawn_command(sh, Some(10_000)).unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line("\\help").unwrap();
    // At 40 columns the description goes on under itself, word by word.
    p.exp_string(&format!(
        "list the commands,\r\n{}or show one",
        " ".repeat(21)
    ))
    .unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

#[test]
fn the_prompt_shows_a_modified_utf7_mailbox_decoded() {
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 SELECT &ZeVnLIqe-"),
        send("a1 OK [READ-WRITE] selected\n"),
        expect("a2 LOGOUT"),
        send("a2 OK bye\n"),
        Step::Close,
    ]);
    let mut cmd = command();
    cmd.args(["--no-history", &local(server.port())])
        .env("LC_ALL", "C.UTF-8");
    let mut p = spawn_command(cmd, Some(10_000)).unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line("SELECT &ZeVnLIqe-").unwrap();
    // rexpect reads bytes as Latin-1: expect the name's UTF-8 bytes.
    let name: String = "日本語 a2> ".bytes().map(char::from).collect();
    p.exp_string(&name).unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

#[test]
fn a_long_literal_at_the_prompt_shows_its_progress_until_it_is_complete() {
    // 300,000 bytes: cut short after 40 lines; the second half comes only
    // once the test has seen the progress of the first.
    let line = "x".repeat(98) + "\r\n";
    let body = line.repeat(3000);
    let (first, second) = body.split_at(150_000);
    let gate = Gate::default();
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 FETCH 1 BODY[]"),
        Step::Send(format!("* 1 FETCH (BODY[] {{{}}}\r\n{first}", body.len()).into_bytes()),
        Step::Wait(gate.clone()),
        Step::Send(format!("{second})\r\na1 OK done\r\n").into_bytes()),
        expect("a2 LOGOUT"),
        send("a2 OK bye\n"),
        Step::Close,
    ]);
    let mut p = spawn(&["--no-history", &local(server.port())]);
    p.exp_string("a1> ").unwrap();
    p.send_line("FETCH 1 BODY[]").unwrap();
    p.exp_string("of 292.97 KiB (").unwrap();
    p.exp_string("/s] 127.0.0.1 plain a2> ").unwrap();
    gate.open();
    p.exp_string("cut short: 40 lines shown").unwrap();
    p.exp_string("a1 OK done").unwrap();
    // Complete: the prompt is drawn without it.
    p.exp_string("\r\x1b[K127.0.0.1 plain a2> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

#[test]
fn what_imaptalk_sends_by_itself_is_shown_and_no_prompt_is_left_after_logout() {
    // --starttls, -u and the session's commands on a terminal: every line
    // sent is shown where it went (the password masked).
    let pki = pki_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let server = ScriptedServer::start_starttls(
        vec![
            send("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\n"),
            expect("a1 STARTTLS"),
            send("a1 OK Begin TLS negotiation now.\n"),
            Step::StartTls,
            expect("a2 CAPABILITY"),
            send("* CAPABILITY IMAP4rev1\na2 OK\n"),
            expect("a3 LOGIN alice s3cret"),
            send("a3 OK logged in\n"),
            expect("a4 LOGOUT"),
            send("* BYE bye\na4 OK Logout completed.\n"),
            Step::Close,
        ],
        rustls_server_config(&pki),
    );
    let mut cmd = command();
    cmd.args(["--no-history", "--starttls", "-u", "alice", "--cafile"])
        .arg(&ca)
        .arg(format!("localhost:{}", server.port()))
        .env("IMAPTALK_PASSWORD", "s3cret");
    let mut p = spawn_command(cmd, Some(10_000)).unwrap();
    p.exp_string("C: a1 STARTTLS").unwrap();
    p.exp_string("a1 OK Begin TLS").unwrap();
    p.exp_string("C: a2 CAPABILITY").unwrap();
    p.exp_string("C: a3 LOGIN alice ****").unwrap();
    p.exp_string("a3 OK logged in").unwrap();
    p.exp_string("alice@localhost tls a4> ").unwrap();
    p.send_line("LOGOUT").unwrap();
    p.exp_string("a4 OK Logout completed.").unwrap();
    // A prompt drawn while LOGOUT was answered is erased at the end: the
    // shell's prompt does not follow a dead one.
    let rest = p.exp_eof().unwrap();
    if let Some(at) = rest.rfind("> ") {
        assert!(rest[at..].contains("\r\x1b[2K"), "{rest:?}");
    }
    assert!(exit_code(&p).contains(", 0)"), "{}", exit_code(&p));
    server.finish().assert_ok();
}
