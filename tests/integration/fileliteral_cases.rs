//! `{@path}` and `{@-}` file literals: the exact count, the form the
//! server's capabilities call for (`{n+}`, `{n}` waiting for `+`, `~{n}`),
//! and the data byte for byte — against scripted servers, which can
//! withhold LITERAL+ and BINARY, and against Dovecot, which stores it.

use crate::support::scripted::{ScriptedServer, Step, expect, logout, send};
use crate::support::{imaptalk, local, stderr_of};
use std::path::Path;
use std::time::Duration;

/// Deterministic bytes (xorshift), every value 0..=255 among them.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Bytes without NUL, CR or LF, in CRLF-terminated lines: what Dovecot's
/// BODY[] serves back unchanged (it rewrites NUL to 0x80 and bare LF to
/// CRLF).
fn text_without_nul(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 256);
    let line: Vec<u8> = (1..=255u8).filter(|&b| b != b'\r' && b != b'\n').collect();
    while out.len() < len {
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    out.truncate(len);
    out.truncate(out.len() - out.len() % (line.len() + 2));
    out
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn without_literal_plus_a_file_waits_for_the_plus_and_sends_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data = text_without_nul(200_000);
    let file = write(dir.path(), "msg.eml", &data);
    let mut steps = vec![
        send("* OK [CAPABILITY IMAP4rev1] no literal+\n"),
        expect(&format!("a1 APPEND INBOX (\\Seen) {{{}}}", data.len())),
        // A synchronizing literal: not one byte before the `+`.
        Step::ExpectSilence(Duration::from_millis(400)),
        send("+ go ahead\n"),
        Step::ExpectBytes(data.clone()),
        expect(""),
        send("a1 OK [APPENDUID 1 1] Append completed.\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", &format!("APPEND INBOX (\\Seen) {{@{file}}}")])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn literal_minus_goes_without_waiting_only_up_to_4096_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let small = noise(4096, 7)
        .into_iter()
        .map(|b| b | 1)
        .collect::<Vec<u8>>();
    let big = noise(4097, 9)
        .into_iter()
        .map(|b| b | 1)
        .collect::<Vec<u8>>();
    let (f1, f2) = (
        write(dir.path(), "small", &small),
        write(dir.path(), "big", &big),
    );
    let mut steps = vec![
        send("* OK [CAPABILITY IMAP4rev1 LITERAL-] ready\n"),
        expect("a1 APPEND INBOX {4096+}"),
        Step::ExpectBytes(small.clone()),
        expect(""),
        send("a1 OK done\n"),
        expect("a2 APPEND INBOX {4097}"),
        Step::ExpectSilence(Duration::from_millis(300)),
        send("+ ok\n"),
        Step::ExpectBytes(big.clone()),
        expect(""),
        send("a2 OK done\n"),
    ];
    steps.extend(logout("a3"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .args([
            "-c",
            &format!("APPEND INBOX {{@{f1}}}"),
            "-c",
            &format!("APPEND INBOX {{@{f2}}}"),
        ])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn several_files_in_one_line_and_the_escape_for_a_literal_brace_at() {
    let dir = tempfile::tempdir().unwrap();
    let (user, pass) = (
        write(dir.path(), "user", b"alice"),
        write(dir.path(), "pass", b"wonder land"),
    );
    let mut steps = vec![
        send("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\n"),
        expect("a1 LOGIN {5+}"),
        Step::ExpectBytes(b"alice {11+}\r\nwonder land\r\n".to_vec()),
        send("a1 OK logged in\n"),
        expect("a2 SEARCH SUBJECT \"{@x}\""),
        send("* SEARCH\na2 OK done\n"),
    ];
    steps.extend(logout("a3"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .arg("--echo")
        .args([
            "-c",
            &format!("LOGIN {{@{user}}} {{@{pass}}}"),
            "-c",
            "SEARCH SUBJECT \"{@@x}\"",
        ])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    // --echo shows sizes and file names, never the data (a password here).
    assert!(err.contains("C: a1 LOGIN {5+} ****"), "{err}");
    assert!(
        err.contains(&format!("C: [11 bytes of literal data from {{@{pass}}}]")),
        "{err}"
    );
    assert!(!err.contains("wonder land"), "{err}");
}

#[test]
fn nul_data_without_binary_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "has-nul.bin", b"Subject: x\r\n\r\na\x00b\r\n");
    let server = ScriptedServer::start(vec![
        send("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\n"),
        expect("a1 NOOP"),
        send("a1 OK done\n"),
        Step::ExpectEof,
    ]);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", "NOOP", "-c", &format!("APPEND INBOX {{@{file}}}")])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("NUL") && err.contains("BINARY"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn binary_without_literal_plus_is_a_synchronizing_literal8() {
    let dir = tempfile::tempdir().unwrap();
    let data = noise(70_000, 3);
    assert!(data.contains(&0));
    let file = write(dir.path(), "bin", &data);
    let mut steps = vec![
        send("* OK [CAPABILITY IMAP4rev1 BINARY] ready\n"),
        expect("a1 APPEND INBOX ~{70000}"),
        Step::ExpectSilence(Duration::from_millis(300)),
        send("+ ok\n"),
        Step::ExpectBytes(data.clone()),
        expect(""),
        send("a1 OK done\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", &format!("APPEND INBOX {{@{file}}}")])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn a_refused_file_literal_is_not_sent_and_the_script_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "big", &text_without_nul(50_000));
    let mut steps = vec![
        send("* OK [CAPABILITY IMAP4rev1] ready\n"),
        expect(&format!("a1 APPEND INBOX {{{}}}", 50_000 - 50_000 % 255)),
        send("a1 NO [TOOBIG] too big\n"),
        // Nothing of the file: the next line is the next command.
        expect("a2 NOOP"),
        send("a2 OK done\n"),
    ];
    steps.extend(logout("a3"));
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", &format!("APPEND INBOX {{@{file}}}"), "-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("not sent"), "{}", stderr_of(&out));
}

#[test]
fn stdin_literal_needs_c_mode_and_a_missing_file_is_a_usage_error() {
    for (args, stdin, want) in [
        (vec![], "APPEND INBOX {@-}\n", "-c"),
        (
            vec!["-c", "APPEND INBOX {@/nonexistent/msg.eml}"],
            "",
            "cannot open",
        ),
        (vec!["-c", "APPEND INBOX {@msg.eml"], "", "{@@"),
    ] {
        let server = ScriptedServer::start(vec![
            send("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\n"),
            Step::ExpectEof,
        ]);
        let out = imaptalk()
            .arg(local(server.port()))
            .args(&args)
            .write_stdin(stdin)
            .output()
            .unwrap();
        server.finish().assert_ok();
        assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
        assert!(stderr_of(&out).contains(want), "{}", stderr_of(&out));
    }
}

#[cfg(unix)]
mod dovecot {
    use super::*;
    use crate::dovecot_cases::literal_after;
    use crate::support::dovecot::Dovecot;

    fn login(d: &Dovecot) -> String {
        let (u, p) = d.user();
        format!("LOGIN {u} {p}")
    }

    /// 3 MiB of every byte value, NUL, bare CR and bare LF included, as a
    /// binary message: APPEND with `~{n+}` (Dovecot offers BINARY and
    /// LITERAL+ after login), then BINARY.PEEK[], which Dovecot serves
    /// unchanged (BODY[] would turn NUL into 0x80 and bare LF into CRLF).
    #[test]
    fn a_multi_megabyte_binary_file_comes_back_byte_for_byte() {
        let d = Dovecot::start();
        let dir = tempfile::tempdir().unwrap();
        let mut msg = b"From: bin@example.com\r\nSubject: binary\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
        msg.extend_from_slice(&noise(3 << 20, 42));
        assert!(msg.contains(&0) && msg.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'));
        let file = write(dir.path(), "binary.eml", &msg);
        let out = imaptalk()
            .arg(local(d.plain_port()))
            .arg("--echo")
            .args([
                "-c",
                &login(&d),
                "-c",
                "CREATE Binary",
                "-c",
                &format!("APPEND Binary {{@{file}}}"),
                "-c",
                "EXAMINE Binary",
                "-c",
                "FETCH 1 BINARY.PEEK[]",
            ])
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}",
            stderr_of(&out),
            d.log()
        );
        let err = stderr_of(&out);
        assert!(
            err.contains(&format!("C: a3 APPEND Binary ~{{{}+}}", msg.len())),
            "{err}"
        );
        assert!(
            literal_after(&out.stdout, b"BINARY[] ") == &msg[..],
            "BINARY[] differs from the file"
        );
    }

    /// `{@-}` with -c: stdin is spooled, counted, and sent as `{n+}` (no
    /// NUL); BODY.PEEK[] gives it back unchanged.
    #[test]
    fn stdin_literal_via_c_stores_the_message_byte_for_byte() {
        let d = Dovecot::start();
        let mut msg =
            b"From: t@example.com\r\nSubject: 8bit\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                .to_vec();
        msg.extend_from_slice(&text_without_nul(2 << 20));
        let out = imaptalk()
            .arg(local(d.plain_port()))
            .arg("--echo")
            .args([
                "-c",
                &login(&d),
                "-c",
                "CREATE Eight",
                "-c",
                "APPEND Eight (\\Seen) {@-}",
                "-c",
                "EXAMINE Eight",
                "-c",
                "FETCH 1 (FLAGS BODY.PEEK[])",
            ])
            .write_stdin(msg.clone())
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}",
            stderr_of(&out),
            d.log()
        );
        let err = stderr_of(&out);
        assert!(
            err.contains(&format!("C: a3 APPEND Eight (\\Seen) {{{}+}}", msg.len())),
            "{err}"
        );
        assert!(
            literal_after(&out.stdout, b"BODY[] ") == &msg[..],
            "BODY[] differs from stdin"
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("\\Seen"));
    }
}

/// Typed at the prompt: the file goes after the server's `+`, and no
/// literal prompt asks for data the file supplies.
#[cfg(unix)]
#[test]
fn a_file_literal_typed_at_the_prompt() {
    use rexpect::session::spawn_command;
    let dir = tempfile::tempdir().unwrap();
    let data = text_without_nul(100_000);
    let file = write(dir.path(), "msg.eml", &data);
    let mut steps = vec![
        send("* OK [CAPABILITY IMAP4rev1] ready\n"),
        expect(&format!("a1 APPEND INBOX {{{}}}", data.len())),
        Step::ExpectSilence(Duration::from_millis(300)),
        send("+ go ahead\n"),
        Step::ExpectBytes(data.clone()),
        expect(""),
        send("a1 OK [APPENDUID 1 1] Append completed.\n"),
    ];
    steps.extend(logout("a2"));
    let server = ScriptedServer::start(steps);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imaptalk"));
    cmd.env("TERM", "dumb")
        .env("HOME", std::env::temp_dir())
        .args(["--no-history", &local(server.port())]);
    let mut p = spawn_command(cmd, Some(10_000)).unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line(&format!("APPEND INBOX {{@{file}}}")).unwrap();
    let before = p
        .exp_string("a1 OK [APPENDUID 1 1] Append completed.")
        .unwrap();
    // The literal prompts for typed data ({n}> and ..>) never show.
    assert!(
        !before.contains("}> ") && !before.contains("..> "),
        "{before:?}"
    );
    if !before.contains("a2> ") {
        p.exp_string("a2> ").unwrap();
    }
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}
