//! `--log FILE`: the transcript's records, its redaction of secrets, literal
//! data in full or by size, TLS events, and that the server's bytes can be
//! recovered from it exactly.

use crate::support::certs::{pki_for, rustls_server_config, write_ca};
#[cfg(unix)]
use crate::support::dovecot::Dovecot;
use crate::support::scripted::{ScriptedServer, Step, expect, send};
use crate::support::{imaptalk, local, stderr_of};
use imaptalk::io::transcript::unescape;
use std::path::Path;

/// A record: (timestamp, mark such as "S:", text).
fn records(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "{text}");
    text.lines()
        .map(|l| {
            let (ts, rest) = l.split_once(' ').unwrap_or_else(|| panic!("{l:?}"));
            // 2026-11-21T10:00:00.123Z
            let b = ts.as_bytes();
            assert!(
                b.len() == 24
                    && b[4] == b'-'
                    && b[7] == b'-'
                    && b[10] == b'T'
                    && b[13] == b':'
                    && b[16] == b':'
                    && b[19] == b'.'
                    && b[23] == b'Z'
                    && b
                        .iter()
                        .enumerate()
                        .all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit()),
                "bad timestamp in {l:?}"
            );
            let (mark, text) = rest.split_at(2);
            assert!(
                ["C:", "C+", "C-", "C#", "S:", "S+", "S-", "S#", "*:"].contains(&mark),
                "bad mark in {l:?}"
            );
            let text = text.strip_prefix(' ').unwrap_or_else(|| panic!("{l:?}"));
            assert!(unescape(text).is_some(), "bad escape in {l:?}");
            (ts.to_string(), mark.to_string(), text.to_string())
        })
        .collect()
}

/// "MARK TEXT" for each record.
fn shown(recs: &[(String, String, String)]) -> Vec<String> {
    recs.iter().map(|(_, m, t)| format!("{m} {t}")).collect()
}

/// The bytes one side sent, rebuilt from the records (README grammar).
fn rebuilt(recs: &[(String, String, String)], side: char) -> Vec<u8> {
    let mut out = Vec::new();
    for (_, mark, text) in recs {
        let mut m = mark.chars();
        if m.next() != Some(side) {
            continue;
        }
        match m.next() {
            Some(':' | '+') => {
                out.extend(unescape(text).unwrap());
                out.extend_from_slice(b"\r\n");
            }
            Some('-') => out.extend(unescape(text).unwrap()),
            _ => {}
        }
    }
    out
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn scripted_session_over_starttls_with_secrets_redacted() {
    let pki = pki_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let log = dir.path().join("session.log");
    let body: &[u8] = b"Subject: hi\r\n\r\nline\x1b]0;x\x07 back\\slash\r\nlast";
    assert_eq!(body.len(), 42);
    let mut fetch = format!("* 1 FETCH (BODY[] {{{}}}\r\n", body.len()).into_bytes();
    fetch.extend_from_slice(body);
    fetch.extend_from_slice(b")\r\na5 OK done\r\n");
    let steps = vec![
        send("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] plain ready\n"),
        expect("a1 STARTTLS"),
        send("a1 OK Begin TLS\n"),
        Step::StartTls,
        expect("a2 LOGIN alice s3cr3t-pw"),
        send("a2 NO wrong\n"),
        expect("a3 LOGIN bob {9}"),
        send("+ ok\n"),
        Step::ExpectBytes(b"literalpw".to_vec()),
        expect(""),
        send("a3 NO nope\n"),
        expect("a4 AUTHENTICATE PLAIN"),
        send("+ \n"),
        expect("AGFsaWNlAHMzY3IzdC1wdw=="),
        send("a4 OK [CAPABILITY IMAP4rev1] Logged in\n"),
        expect("a5 FETCH 1 BODY[]"),
        Step::Send(fetch),
        expect("a6 LOGOUT"),
        send("* BYE bye\na6 OK Logout completed.\n"),
        Step::Close,
    ];
    let server = ScriptedServer::start_starttls(steps, rustls_server_config(&pki));
    let port = server.port();
    let out = imaptalk()
        .args(["--starttls", "--cafile"])
        .arg(&ca)
        .arg("--log")
        .arg(&log)
        .arg(format!("imap://localhost:{}", server.port()))
        .write_stdin(
            "LOGIN alice s3cr3t-pw\nLOGIN bob {9}\nliteralpw\nAUTHENTICATE PLAIN\nAGFsaWNlAHMzY3IzdC1wdw==\nFETCH 1 BODY[]\n",
        )
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));

    let file = std::fs::read_to_string(&log).unwrap();
    for secret in ["s3cr3t", "literalpw", "AGFsaWNl"] {
        assert!(
            !file.contains(secret),
            "{secret} in the transcript:\n{file}"
        );
    }
    #[cfg(unix)]
    assert_eq!(mode(&log), 0o600);
    let recs = records(&log);
    let mut lines = shown(&recs);
    let tls = lines.remove(4);
    assert!(
        tls.starts_with("*: tls TLS 1.") && tls.ends_with(" (STARTTLS)"),
        "{tls}"
    );
    assert_eq!(
        lines,
        [
            format!("*: connect localhost:{port} (127.0.0.1:{port})").as_str(),
            "S: * OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] plain ready",
            "C: a1 STARTTLS",
            "S: a1 OK Begin TLS",
            "C: a2 LOGIN alice ****",
            "S: a2 NO wrong",
            "C: a3 LOGIN bob ****",
            "C# literal 9 bytes redacted",
            "S: + ok",
            "C: ",
            "S: a3 NO nope",
            "C: a4 AUTHENTICATE PLAIN",
            "S: + ",
            "C: ****",
            "S: a4 OK [CAPABILITY IMAP4rev1] Logged in",
            "C: a5 FETCH 1 BODY[]",
            "S: * 1 FETCH (BODY[] {42}",
            "S# literal 42 bytes",
            "S+ Subject: hi",
            "S+ ",
            "S+ line\\x1b]0;x\\x07 back\\\\slash",
            "S- last",
            "S: )",
            "S: a5 OK done",
            "C: a6 LOGOUT",
            "S: * BYE bye",
            "S: a6 OK Logout completed.",
            "*: close",
        ]
    );
    // Everything the server said can be recovered from the file exactly.
    assert_eq!(rebuilt(&recs, 'S'), t.sent);
    // Timestamps never go backwards.
    assert!(recs.windows(2).all(|w| w[0].0 <= w[1].0));
}

#[test]
fn implicit_tls_literal_sizes_only_and_appending() {
    let pki = pki_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let log = dir.path().join("t.log");
    std::fs::write(&log, "").unwrap();
    let run = || {
        let steps = vec![
            send("* OK TLS ready\n"),
            expect("a1 FETCH 1 BODY[]"),
            send("* 1 FETCH (BODY[] {12}\nhello\nworld)\na1 OK done\n"),
            expect("a2 APPEND INBOX {4+}"),
            Step::ExpectBytes(b"abc\n".to_vec()),
            expect(""),
            send("a2 OK appended\n"),
            expect("a3 LOGOUT"),
            send("* BYE bye\na3 OK Logout completed.\n"),
            Step::Close,
        ];
        let server = ScriptedServer::start_tls(steps, rustls_server_config(&pki));
        let out = imaptalk()
            .args(["--tls", "--log-literals", "size", "--cafile"])
            .arg(&ca)
            .arg("--log")
            .arg(&log)
            .arg(format!("localhost:{}", server.port()))
            .args([
                "-c",
                "FETCH 1 BODY[]",
                "-c",
                "APPEND INBOX {4+}",
                "-c",
                "abc",
            ])
            .output()
            .unwrap();
        server.finish().assert_ok();
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    };
    run();
    run();
    let file = std::fs::read_to_string(&log).unwrap();
    assert!(!file.contains("hello") && !file.contains("abc"), "{file}");
    let lines = shown(&records(&log));
    assert_eq!(lines.len() % 2, 0);
    let (first, second) = lines.split_at(lines.len() / 2);
    assert_eq!(first[2..], second[2..]);
    assert!(first[0].starts_with("*: connect localhost:"), "{lines:?}");
    assert!(first[1].starts_with("*: tls TLS 1."), "{lines:?}");
    assert!(second[0].starts_with("*: connect localhost:"), "{lines:?}");
    assert_eq!(
        &first[2..],
        [
            "S: * OK TLS ready",
            "C: a1 FETCH 1 BODY[]",
            "S: * 1 FETCH (BODY[] {12}",
            "S# literal 12 bytes not logged",
            "S: )",
            "S: a1 OK done",
            "C: a2 APPEND INBOX {4+}",
            "C# literal 4 bytes not logged",
            "C: ",
            "S: a2 OK appended",
            "C: a3 LOGOUT",
            "S: * BYE bye",
            "S: a3 OK Logout completed.",
            "*: close",
        ]
    );
}

#[test]
fn an_unwritable_log_is_a_usage_error_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/t.log");
    // The system's own words for it (they differ between systems).
    let why = imaptalk::text::io_text(&std::fs::File::create(&path).unwrap_err());
    let out = imaptalk()
        .arg("--log")
        .arg(&path)
        .args(["127.0.0.1:1", "-c", "NOOP"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(err.contains("--log") && err.contains(&why), "{err}");
}

/// A full disk (here /dev/full) stops the transcript with one warning;
/// the session itself goes on and ends normally.
#[cfg(target_os = "linux")]
#[test]
fn a_transcript_that_cannot_be_written_warns_once_and_the_session_goes_on() {
    let mut steps = vec![send("* OK ready\n")];
    for i in 1..=3 {
        steps.push(expect(&format!("a{i} NOOP")));
        steps.push(send(&format!("a{i} OK done\n")));
    }
    steps.extend([
        expect("a4 LOGOUT"),
        send("* BYE bye\na4 OK bye\n"),
        Step::Close,
    ]);
    let server = ScriptedServer::start(steps);
    let out = imaptalk()
        .args(["--log", "/dev/full"])
        .arg(local(server.port()))
        .args(["-c", "NOOP", "-c", "NOOP", "-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        err,
        "imaptalk: warning: cannot write the transcript to /dev/full: No space left on device; it stops here\n"
    );
}

#[cfg(unix)]
#[test]
fn dovecot_session_logged_in_full_without_passwords() {
    let d = Dovecot::start();
    let message = b"Subject: logged\r\nX-Bin: \x01\xff\r\n\r\nbody line\r\n".to_vec();
    d.deliver("alice", "INBOX", &message);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dovecot.log");
    let (user, pass) = d.user();
    let out = imaptalk()
        .arg("--log")
        .arg(&log)
        .arg(local(d.plain_port()))
        .args(["-c", &format!("LOGIN {user} {pass}")])
        .args(["-c", "SELECT INBOX", "-c", "FETCH 1 BODY.PEEK[]"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // AUTHENTICATE PLAIN with an initial response, appended to the same file.
    let out2 = imaptalk()
        .arg("--log")
        .arg(&log)
        .arg(local(d.plain_port()))
        .args(["-c", "AUTHENTICATE PLAIN AGFsaWNlAHdvbmRlcmxhbmQ="])
        .output()
        .unwrap();
    assert_eq!(out2.status.code(), Some(0), "{}", stderr_of(&out2));

    let file = std::fs::read_to_string(&log).unwrap();
    assert!(!file.contains(pass), "password in the transcript:\n{file}");
    assert!(
        !file.contains("AGFsaWNl"),
        "SASL data in the transcript:\n{file}"
    );
    let recs = records(&log);
    let lines = shown(&recs);
    let second = lines
        .iter()
        .rposition(|l| l.starts_with("*: connect "))
        .unwrap();
    assert!(second > 0);
    let (first, last) = recs.split_at(second);
    // The first run's server side is exactly what reached stdout.
    assert_eq!(rebuilt(first, 'S'), out.stdout);
    assert_eq!(rebuilt(last, 'S'), out2.stdout);
    assert!(
        lines[1].starts_with("S: * OK [CAPABILITY IMAP4rev1"),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("C: a1 LOGIN {user} ****")),
        "{lines:?}"
    );
    assert!(lines.contains(&"C: a3 FETCH 1 BODY.PEEK[]".to_string()));
    let n = message.len();
    let at = lines
        .iter()
        .position(|l| l == &format!("S# literal {n} bytes"))
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(
        &lines[at + 1..at + 5],
        [
            "S+ Subject: logged",
            "S+ X-Bin: \\x01\\xff",
            "S+ ",
            "S+ body line"
        ]
    );
    assert!(lines.contains(&"C: a1 AUTHENTICATE PLAIN ****".to_string()));
    assert_eq!(lines.iter().filter(|l| *l == "*: close").count(), 2);
}

#[test]
fn file_literals_are_logged_like_typed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.eml");
    std::fs::write(&file, b"Subject: from a file\r\n\r\nhello").unwrap();
    let log = dir.path().join("t.log");
    let server = ScriptedServer::start(vec![
        send("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\n"),
        expect("a1 APPEND INBOX {29+}"),
        Step::ExpectBytes(b"Subject: from a file\r\n\r\nhello".to_vec()),
        expect(""),
        send("a1 OK appended\n"),
        expect("a2 LOGOUT"),
        send("* BYE bye\na2 OK bye\n"),
        Step::Close,
    ]);
    let out = imaptalk()
        .arg("--log")
        .arg(&log)
        .arg(local(server.port()))
        .arg("-c")
        .arg(format!("APPEND INBOX {{@{}}}", file.display()))
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let lines = shown(&records(&log));
    assert_eq!(
        lines[2..8],
        [
            "C: a1 APPEND INBOX {29+}",
            "C# literal 29 bytes",
            "C+ Subject: from a file",
            "C+ ",
            "C- hello",
            "C: ",
        ]
    );
}
