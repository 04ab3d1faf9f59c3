//! `-u`: automatic login with a password (environment, file, terminal
//! prompt) or an OAuth2 token; the refusal to send credentials in
//! plaintext; and that no secret shows up in anything imaptalk repeats.

use crate::support::certs::{pki_for, rustls_server_config};
use crate::support::scripted::{ScriptedServer, Step, expect, send};
use crate::support::{imaptalk, local, stderr_of};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::time::{Duration, Instant};

#[cfg(unix)] // only the Dovecot tests use it
/// Runs `-u USER` with the password in IMAPTALK_PASSWORD and `--echo`.
fn env_login(args: &[&str], user: &str, password: &str) -> std::process::Output {
    imaptalk()
        .env("IMAPTALK_PASSWORD", password)
        .env_remove("IMAPTALK_OAUTH2_TOKEN")
        .args(["--echo", "-u", user])
        .args(args)
        .output()
        .unwrap()
}

#[cfg(unix)]
mod against_dovecot {
    use super::*;
    use crate::support::dovecot::Dovecot;

    #[test]
    fn password_from_the_environment_logs_in_with_authenticate_plain() {
        let d = Dovecot::start();
        d.deliver("alice", "INBOX", b"Subject: hi\r\n\r\nhello\r\n");
        let (user, pass) = d.user();
        let tls = format!("localhost:{}", d.tls_port());
        let ca = d.ca_file().to_str().unwrap().to_string();
        let out = env_login(
            &[
                "--tls",
                "--cafile",
                &ca,
                &tls,
                "-c",
                "STATUS INBOX (MESSAGES)",
            ],
            user,
            pass,
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("a1 OK [CAPABILITY "), "{stdout}");
        assert!(stdout.contains("* STATUS INBOX (MESSAGES 1)"), "{stdout}");
        assert!(err.contains("C: a1 AUTHENTICATE PLAIN ****\n"), "{err}");
        assert!(!err.contains(pass), "{err}");
        // Nor its base64 form ("\0alice\0wonderland").
        assert!(!err.contains("AGFsaWNlAHdvbmRlcmxhbmQ"), "{err}");
    }

    #[test]
    fn password_file_with_spaces_quotes_and_non_ascii_after_starttls() {
        let d = Dovecot::start();
        let (user, pass) = d.tricky_user();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, format!("{pass}\n")).unwrap();
        let out = imaptalk()
            .env_remove("IMAPTALK_PASSWORD")
            .args(["--echo", "--starttls", "-u", user, "--password-file"])
            .arg(&file)
            .arg("--cafile")
            .arg(d.ca_file())
            .arg(local(d.plain_port()))
            .args(["-c", "NOOP"])
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        // Capabilities are asked again over TLS before choosing.
        assert!(
            err.contains("C: a2 CAPABILITY\nC: a3 AUTHENTICATE PLAIN ****\nC: a4 NOOP\n"),
            "{err}"
        );
        assert!(!err.contains("wörd"), "{err}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("a3 OK ") && stdout.contains("Logged in"),
            "{stdout}"
        );
    }

    #[test]
    fn a_refused_login_ends_with_exit_1_before_the_script_runs() {
        let d = Dovecot::start();
        let (user, _) = d.user();
        let out = env_login(
            &[&local(d.plain_port()), "-c", "SELECT INBOX"],
            user,
            "not the password",
        );
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(
                "imaptalk: login as alice failed: a1 NO [AUTHENTICATIONFAILED] Authentication failed."
            ),
            "{err}"
        );
        assert!(!err.contains("not the password"), "{err}");
        assert!(!err.contains("SELECT"), "the script must not run: {err}");
    }
}

#[test]
fn plaintext_login_to_another_machine_is_refused_before_connecting() {
    // 192.0.2.1 (TEST-NET-1) is never answered: were it connected to, the
    // run would take the whole --timeout and end with exit 3.
    let start = Instant::now();
    let out = imaptalk()
        .env("IMAPTALK_PASSWORD", "secret")
        .args([
            "-u",
            "alice",
            "--timeout",
            "20",
            "192.0.2.1:143",
            "-c",
            "NOOP",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(
        stderr_of(&out),
        "imaptalk: refusing to send a password to 192.0.2.1 over an unencrypted connection: add --starttls (port 143) or --tls (port 993), or --allow-plaintext-auth to send it anyway\n"
    );
    // The same for a token.
    let out = imaptalk()
        .args([
            "-u",
            "alice",
            "--oauth2-token",
            "t",
            "mail.invalid",
            "-c",
            "NOOP",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("refusing to send an OAuth2 token to mail.invalid"));
}

#[test]
fn login_without_sasl_plain_quotes_the_password_or_sends_a_literal() {
    // No AUTH=PLAIN: LOGIN. Quotes and backslashes are escaped in a quoted
    // string; 8-bit text goes as a literal, after the server's `+`.
    let server = ScriptedServer::start(vec![
        send("* OK [CAPABILITY IMAP4rev1 AUTH=CRAM-MD5] ready\n"),
        expect("a1 LOGIN \"dr who\" {10}"),
        send("+ go ahead\n"),
        Step::ExpectBytes("pä \"ss\" \\\r\n".as_bytes().to_vec()),
        send("a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\n"),
        expect("a2 NOOP"),
        send("a2 OK done\n"),
        expect("a3 LOGOUT"),
        send("* BYE\na3 OK bye\n"),
        Step::Close,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("session.log");
    let out = imaptalk()
        .env("IMAPTALK_PASSWORD", "pä \"ss\" \\")
        .args(["--echo", "-u", "dr who", "--log"])
        .arg(&log)
        .arg(local(server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("C: a1 LOGIN \"dr who\" ****\n"), "{err}");
    assert!(!err.contains("ss\\\""), "{err}");
    let transcript = std::fs::read_to_string(&log).unwrap();
    assert!(
        transcript.contains("a1 LOGIN \"dr who\" ****"),
        "{transcript}"
    );
    assert!(!transcript.contains("pä"), "{transcript}");

    let server = ScriptedServer::start(vec![
        send("* OK [CAPABILITY IMAP4rev1] ready\n"),
        expect("a1 LOGIN bob \"a \\\"b\\\" \\\\c\""),
        send("a1 NO [AUTHENTICATIONFAILED] nope\n"),
        Step::ExpectEof,
    ]);
    let out = imaptalk()
        .env("IMAPTALK_PASSWORD", "a \"b\" \\c")
        .args(["-u", "bob"])
        .arg(local(server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn capabilities_from_before_starttls_are_not_trusted_for_the_login() {
    // The plaintext greeting offers AUTH=PLAIN; over TLS the server does
    // not: the login must follow what was said over TLS.
    let pki = pki_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::support::certs::write_ca(dir.path(), &pki);
    let server = ScriptedServer::start_starttls(
        vec![
            send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN STARTTLS] ready\n"),
            expect("a1 STARTTLS"),
            send("a1 OK go\n"),
            Step::StartTls,
            expect("a2 CAPABILITY"),
            send("* CAPABILITY IMAP4rev1\na2 OK done\n"),
            expect("a3 LOGIN alice wonderland"),
            send("a3 OK Logged in\n"),
            expect("a4 LOGOUT"),
            send("* BYE\na4 OK bye\n"),
            Step::Close,
        ],
        rustls_server_config(&pki),
    );
    let out = imaptalk()
        .env("IMAPTALK_PASSWORD", "wonderland")
        .args(["-u", "alice", "--starttls", "--cafile"])
        .arg(&ca)
        .arg(format!("localhost:{}", server.port()))
        .write_stdin("")
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn xoauth2_failure_decodes_the_error_and_answers_with_an_empty_line() {
    let json = r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
    let server = ScriptedServer::start(vec![
        send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=PLAIN] ready\n"),
        // base64("user=alice@example.com\x01auth=Bearer tok-123\x01\x01")
        expect(
            "a1 AUTHENTICATE XOAUTH2 dXNlcj1hbGljZUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB0b2stMTIzAQE=",
        ),
        send(
            "+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==\n",
        ),
        expect(""),
        send("a1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\n"),
        Step::ExpectEof,
    ]);
    let out = imaptalk()
        .env("IMAPTALK_OAUTH2_TOKEN", "tok-123")
        .env_remove("IMAPTALK_PASSWORD")
        .args(["--echo", "-u", "alice@example.com"])
        .arg(local(server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("C: a1 AUTHENTICATE XOAUTH2 ****\n"), "{err}");
    assert!(
        err.contains(&format!(
            "login as alice@example.com failed: a1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure) (the server's error: {json})"
        )),
        "{err}"
    );
    assert!(
        !err.contains("tok-123") && !err.contains("dXNlcj1h"),
        "{err}"
    );
}

#[test]
fn oauthbearer_without_sasl_ir_from_a_token_command() {
    let server = ScriptedServer::start(vec![
        send("* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=OAUTHBEARER] ready\n"),
        expect("a1 AUTHENTICATE OAUTHBEARER"),
        send("+ \n"),
        Step::ExpectAny,
        send("a1 OK [CAPABILITY IMAP4rev1 IDLE] Success\n"),
        expect("a2 NOOP"),
        send("a2 OK done\n"),
        expect("a3 LOGOUT"),
        send("* BYE\na3 OK bye\n"),
        Step::Close,
    ]);
    let port = server.port();
    let out = imaptalk()
        .env_remove("IMAPTALK_PASSWORD")
        .env_remove("IMAPTALK_OAUTH2_TOKEN")
        .args([
            "--echo",
            "-u",
            "alice",
            "--oauth2-token-command",
            "echo tok-456",
        ])
        .arg(format!("localhost:{port}"))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let payload = STANDARD.decode(t.lines[1].as_bytes()).unwrap();
    assert_eq!(
        String::from_utf8(payload).unwrap(),
        format!("n,a=alice,\x01host=localhost\x01port={port}\x01auth=Bearer tok-456\x01\x01")
    );
    assert!(
        err.contains("C: a1 AUTHENTICATE OAUTHBEARER\nC: ****\n"),
        "{err}"
    );
    assert!(!err.contains("tok-456"), "{err}");
}

#[cfg(target_os = "linux")]
#[test]
fn no_terminal_and_no_password_is_a_usage_error_before_connecting() {
    // setsid: a new session without a controlling terminal, so there is
    // no /dev/tty to ask on. Port 1 is closed: a connection attempt first
    // would end with exit 3 instead.
    let out = std::process::Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_imaptalk"))
        .env_remove("IMAPTALK_PASSWORD")
        .env_remove("IMAPTALK_OAUTH2_TOKEN")
        .args(["-u", "alice", "127.0.0.1:1", "-c", "NOOP"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("imaptalk: cannot ask for the password: no terminal ("),
        "{err}"
    );
    assert!(
        err.contains("set IMAPTALK_PASSWORD or use --password-file"),
        "{err}"
    );
}

/// The password prompt, through a real pseudo-terminal.
#[cfg(unix)]
mod prompt {
    use crate::support::dovecot::Dovecot;
    use rexpect::session::spawn_command;
    use std::process::Command;

    fn command(program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("TERM", "xterm-256color")
            .env("HOME", std::env::temp_dir())
            .env("LANG", "C")
            .env_remove("LC_ALL")
            .env_remove("LC_CTYPE")
            .env_remove("IMAPTALK_PASSWORD")
            .env_remove("IMAPTALK_OAUTH2_TOKEN");
        cmd
    }

    #[test]
    fn the_prompt_is_on_the_terminal_while_stdin_is_a_script() {
        let d = Dovecot::start();
        let (user, pass) = d.user();
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script.imap");
        std::fs::write(&script, "STATUS INBOX (MESSAGES)\n").unwrap();
        // stdin is the script file; the controlling terminal is the pty.
        let mut cmd = command("sh");
        cmd.arg("-c")
            .arg("exec \"$0\" -u \"$1\" --tls --cafile \"$2\" \"$3\" < \"$4\"")
            .arg(env!("CARGO_BIN_EXE_imaptalk"))
            .arg(user)
            .arg(d.ca_file())
            .arg(format!("localhost:{}", d.tls_port()))
            .arg(&script);
        let mut p = spawn_command(cmd, Some(10_000)).unwrap();
        p.exp_string(&format!("Password for {user}@localhost: "))
            .unwrap();
        p.send_line(pass).unwrap();
        let rest = p.exp_eof().unwrap();
        assert!(rest.contains("* STATUS INBOX (MESSAGES 0)"), "{rest}");
        assert!(rest.contains("Logged in"), "{rest}");
        // No echo: the password typed never came back from the terminal.
        assert!(!rest.contains(pass), "{rest}");
        let status = format!("{:?}", p.process().wait().unwrap());
        assert!(status.contains(", 0)"), "{status}");
    }

    #[test]
    fn interactive_prompt_shows_the_user_and_history_holds_no_password() {
        let d = Dovecot::start();
        let (user, pass) = d.user();
        let dir = tempfile::tempdir().unwrap();
        let history = dir.path().join("history");
        let mut cmd = command(env!("CARGO_BIN_EXE_imaptalk"));
        cmd.args(["-u", user, "--tls", "--cafile"])
            .arg(d.ca_file())
            .arg("--history")
            .arg(&history)
            .arg(format!("localhost:{}", d.tls_port()));
        let mut p = spawn_command(cmd, Some(10_000)).unwrap();
        p.exp_string(&format!("Password for {user}@localhost: "))
            .unwrap();
        p.send_line(pass).unwrap();
        p.exp_string("Logged in").unwrap();
        p.exp_string(&format!("{user}@localhost tls a2> ")).unwrap();
        p.send_line("NOOP").unwrap();
        p.exp_string("a2 OK NOOP").unwrap();
        p.send_control('d').unwrap();
        let rest = p.exp_eof().unwrap();
        assert!(rest.contains("a3 OK Logout"), "{rest}");
        let kept = std::fs::read_to_string(&history).unwrap_or_default();
        assert!(kept.contains("NOOP"), "{kept}");
        assert!(!kept.contains(pass), "{kept}");
    }
}

#[test]
fn echo_masks_the_password_after_a_literal_user_name() {
    // `LOGIN {5}` + `alice s3cret`: the literal is the user, the rest of
    // the line is the password.
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 LOGIN {5}"),
        send("+ go\n"),
        Step::ExpectBytes(b"alice s3cret\r\n".to_vec()),
        send("a1 OK Logged in\n"),
        expect("a2 LOGOUT"),
        send("* BYE\na2 OK bye\n"),
        Step::Close,
    ]);
    let out = imaptalk()
        .arg("--echo")
        .arg(local(server.port()))
        .write_stdin("LOGIN {5}\nalice s3cret\n")
        .output()
        .unwrap();
    server.finish().assert_ok();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("C: a1 LOGIN {5} ****\nC: [5 bytes of literal data]\nC: ****\n"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
}
