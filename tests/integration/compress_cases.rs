//! COMPRESS=DEFLATE (RFC 4978): against Dovecot's imap_zlib a compressed
//! session prints exactly what the uncompressed one does; bytes that arrive
//! with the OK are inflated, not framed; `--compress`; corrupt data.

#[cfg(unix)]
use crate::support::dovecot::Dovecot;
use crate::support::scripted::{ScriptedServer, Step, expect, lines, send};
use crate::support::{imaptalk, local, stderr_of};

#[cfg(unix)] // only the Dovecot tests use it
/// Dovecot's completions say how long they took, `(0.001 + 0.000 secs)`;
/// everything else of two runs of the same session is identical.
fn without_timings(out: &[u8]) -> Vec<u8> {
    let mut result = Vec::with_capacity(out.len());
    let mut rest = out;
    while let Some(at) = rest.windows(2).position(|w| w == b" (") {
        let after = &rest[at + 2..];
        let timing = after.iter().position(|&b| b == b')').filter(|&end| {
            after[..end].ends_with(b" secs")
                && after[..end - 5]
                    .iter()
                    .all(|b| b.is_ascii_digit() || b" .+".contains(b))
        });
        match timing {
            Some(end) => {
                result.extend_from_slice(&rest[..at]);
                rest = &after[end + 1..];
            }
            None => {
                result.extend_from_slice(&rest[..at + 2]);
                rest = after;
            }
        }
    }
    result.extend_from_slice(rest);
    result
}

#[cfg(unix)] // only the Dovecot tests use it
/// A message of about 600 KB: text that compresses well, and a binary part.
fn sizeable_message() -> Vec<u8> {
    let mut m = b"From: big@example.com\r\nSubject: sizeable\r\n\r\n".to_vec();
    for i in 0..8000 {
        m.extend_from_slice(
            format!("line {i:05} of a message that is long enough to compress well\r\n").as_bytes(),
        );
    }
    let mut x: u32 = 12345;
    for _ in 0..1000 {
        for _ in 0..64 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            m.push(b'A' + (x >> 16) as u8 % 26);
        }
        m.extend_from_slice(b"\r\n");
    }
    m
}

#[cfg(unix)]
#[test]
fn a_compressed_session_prints_what_the_uncompressed_one_does() {
    let d = Dovecot::start();
    assert!(
        d.has_compress(),
        "the test Dovecot needs the imap_zlib plugin (Debian: dovecot-imapd)"
    );
    let message = sizeable_message();
    d.deliver("alice", "INBOX", &message);
    let (user, pass) = d.user();
    let session = |compress: bool, log: Option<&std::path::Path>| {
        let mut script = format!("t1 LOGIN {user} {pass}\n");
        if compress {
            script.push_str("c1 COMPRESS DEFLATE\n");
        }
        script.push_str("t2 SELECT INBOX\nt3 FETCH 1 BODY.PEEK[]\n");
        let mut cmd = imaptalk();
        if let Some(log) = log {
            cmd.arg("--log").arg(log);
        }
        let out = cmd
            .arg(local(d.plain_port()))
            .write_stdin(script)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}",
            stderr_of(&out),
            d.log()
        );
        out.stdout
    };
    // The first session to select INBOX takes its \Recent flag: this one,
    // so that both sessions compared see `* 0 RECENT`.
    session(false, None);
    let plain = session(false, None);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("t.log");
    let compressed = session(true, Some(&log));

    let completion = compressed
        .windows(6)
        .position(|w| w == b"c1 OK ")
        .expect("COMPRESS completed OK");
    let line_end = completion
        + compressed[completion..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap();
    // Before the COMPRESS completion both sessions said the same.
    assert_eq!(
        without_timings(&compressed[..completion]),
        without_timings(&plain[..completion])
    );
    // After it, the compressed session's output is the uncompressed one's.
    assert_eq!(
        without_timings(&compressed[line_end + 1..]),
        without_timings(&plain[completion..])
    );
    let text = String::from_utf8_lossy(&compressed);
    assert!(text.contains("t3 OK"), "{text}");
    assert!(
        compressed.windows(message.len()).any(|w| w == message),
        "the message arrives byte for byte"
    );
    // The transcript shows the switch, and the protocol after it.
    let t = std::fs::read_to_string(&log).unwrap();
    let at = t.find(" *: compress deflate\n").expect(&t);
    assert!(t[at..].contains(" C: t2 SELECT INBOX\n"), "{t}");
    assert!(t[at..].contains(" S: t3 OK"), "{t}");
}

#[cfg(unix)]
#[test]
fn compress_flag_after_login_over_tls() {
    let d = Dovecot::start();
    assert!(d.has_compress());
    d.deliver("alice", "INBOX", &sizeable_message());
    let (user, pass) = d.user();
    let out = imaptalk()
        .args(["--compress", "--echo", "-v", "--tls", "--cafile"])
        .arg(d.ca_file())
        .arg(format!("localhost:{}", d.tls_port()))
        .args(["-c", &format!("LOGIN {user} {pass}")])
        .args(["-c", "SELECT INBOX", "-c", "FETCH 1 BODY.PEEK[]"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}\n{}", d.log());
    let text = String::from_utf8_lossy(&out.stdout);
    // Dovecot lists COMPRESS=DEFLATE in its LOGIN OK: no CAPABILITY needed.
    let sent: Vec<&str> = err.lines().filter(|l| l.starts_with("C: ")).collect();
    assert_eq!(
        sent,
        [
            "C: a1 LOGIN alice ****",
            "C: a2 COMPRESS DEFLATE",
            "C: a3 SELECT INBOX",
            "C: a4 FETCH 1 BODY.PEEK[]",
            "C: a5 LOGOUT"
        ],
        "{err}"
    );
    assert!(text.contains("\r\na2 OK"), "{text}");
    assert!(text.contains("a4 OK Fetch completed"), "{text}");
    assert!(text.contains("a5 OK Logout completed"), "{text}");
    // -v: the ratio each way; the message compresses to well under half.
    assert!(err.contains("imaptalk: COMPRESS=DEFLATE active\n"), "{err}");
    let stats = err
        .lines()
        .find(|l| l.starts_with("imaptalk: COMPRESS=DEFLATE: received "))
        .unwrap_or_else(|| panic!("{err}"));
    let percent: u32 = stats
        .split('(')
        .nth(1)
        .unwrap()
        .split('%')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(percent < 50, "{stats}");
    assert!(
        stats.contains(" MiB of protocol") || stats.contains(" KiB of protocol"),
        "{stats}"
    );
    // After the automatic login of -u too (here over plaintext to this
    // machine, with the transcript showing the switch).
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("t.log");
    let out = imaptalk()
        .env("IMAPTALK_PASSWORD", pass)
        .args(["--compress", "--echo", "-u", user, "--log"])
        .arg(&log)
        .arg(local(d.plain_port()))
        .args(["-c", "SELECT INBOX"])
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}\n{}", d.log());
    let sent: Vec<&str> = err.lines().filter(|l| l.starts_with("C: ")).collect();
    assert_eq!(
        sent[1..],
        [
            "C: a2 COMPRESS DEFLATE",
            "C: a3 SELECT INBOX",
            "C: a4 LOGOUT"
        ],
        "{err}"
    );
    let t = std::fs::read_to_string(&log).unwrap();
    assert!(!t.contains(pass), "{t}");
    let at = t
        .find(" *: compress deflate\n")
        .unwrap_or_else(|| panic!("{t}"));
    assert!(t[at..].contains(" S: a3 OK [READ-WRITE]"), "{t}");
}

#[test]
fn compress_flag_asks_for_capabilities_and_says_when_not_offered() {
    let server = ScriptedServer::start(vec![
        send("* OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] ready\n"),
        expect("a1 LOGIN alice secret"),
        // The OK lists nothing, and pre-login capabilities do not count.
        send("a1 OK Logged in\n"),
        expect("a2 CAPABILITY"),
        send("* CAPABILITY IMAP4rev1 IDLE\na2 OK done\n"),
        expect("a3 NOOP"),
        send("a3 OK done\n"),
        expect("a4 LOGOUT"),
        send("* BYE bye\na4 OK bye\n"),
        Step::Close,
    ]);
    let out = imaptalk()
        .arg("--compress")
        .arg(local(server.port()))
        .args(["-c", "LOGIN alice secret", "-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("does not offer COMPRESS=DEFLATE"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn bytes_that_arrive_with_the_ok_are_inflated() {
    // The OK and the first compressed bytes leave in one write (one TCP
    // segment): they are in the client's buffer when it sees the OK.
    let steps = vec![
        send("* OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] ready\n"),
        expect("a1 COMPRESS DEFLATE"),
        Step::Compress {
            ok: lines("a1 OK DEFLATE active\n"),
            then: lines("* 3 EXISTS\n* OK [ALERT] sent with the OK\n"),
        },
        expect("a2 NOOP"),
        send("* 4 EXISTS\na2 OK NOOP completed\n"),
        expect("a3 LOGOUT"),
        send("* BYE bye\na3 OK Logout completed\n"),
        Step::Close,
    ];
    let server = ScriptedServer::start(steps);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("t.log");
    let out = imaptalk()
        .arg("--log")
        .arg(&log)
        .arg(local(server.port()))
        .args(["-c", "COMPRESS DEFLATE", "-c", "NOOP"])
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // stdout is the protocol, decompressed, nothing lost or mangled.
    assert_eq!(out.stdout, t.sent);
    let file = std::fs::read_to_string(&log).unwrap();
    let records: Vec<&str> = file.lines().map(|l| &l[25..]).collect();
    assert_eq!(
        records[2..],
        [
            "C: a1 COMPRESS DEFLATE",
            "S: a1 OK DEFLATE active",
            "*: compress deflate",
            // The script may go on at once; the buffered bytes are read next.
            "C: a2 NOOP",
            "S: * 3 EXISTS",
            "S: * OK [ALERT] sent with the OK",
            "S: * 4 EXISTS",
            "S: a2 OK NOOP completed",
            "C: a3 LOGOUT",
            "S: * BYE bye",
            "S: a3 OK Logout completed",
            "*: close",
        ]
    );
}

/// Interactively, commands go out as typed, but not past COMPRESS: the
/// NOOP typed while COMPRESS is outstanding is queued until its OK, then
/// goes out compressed. On a terminal, the session ends with the ratio.
#[cfg(unix)]
#[test]
fn interactive_input_waits_for_the_compress_completion() {
    let server = ScriptedServer::start(vec![
        send("* OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] ready\n"),
        expect("a1 COMPRESS DEFLATE"),
        Step::ExpectSilence(std::time::Duration::from_millis(800)),
        Step::Compress {
            ok: lines("a1 OK DEFLATE active\n"),
            then: lines("* 1 EXISTS\n"),
        },
        expect("a2 NOOP"),
        send("a2 OK done\n"),
        expect("a3 LOGOUT"),
        send("* BYE bye\na3 OK Logout completed\n"),
        Step::Close,
    ]);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imaptalk"));
    cmd.env("TERM", "dumb")
        .env("LANG", "C")
        .env("HOME", std::env::temp_dir())
        .arg("--no-history")
        .arg(local(server.port()));
    let mut p = rexpect::session::spawn_command(cmd, Some(10_000)).unwrap();
    p.exp_string("a1> ").unwrap();
    p.send_line("COMPRESS DEFLATE").unwrap();
    // Typed while COMPRESS is outstanding: queued, under a prompt that
    // says so.
    p.exp_string("(after a1)> ").unwrap();
    p.send_line("NOOP").unwrap();
    p.exp_string("COMPRESS=DEFLATE active").unwrap();
    p.exp_string("C: a2 NOOP").unwrap();
    p.exp_string("* 1 EXISTS").unwrap();
    p.exp_string("a2 OK done").unwrap();
    p.send_control('d').unwrap();
    p.exp_string("a3 OK Logout completed").unwrap();
    let (_, ratio) = p
        .exp_regex(r"COMPRESS=DEFLATE: received \d+ bytes on the wire for \d+ bytes of protocol \(\d+%\), sent \d+ bytes for \d+ bytes \(\d+%\)")
        .unwrap();
    // In: "* 1 EXISTS", a2's OK, BYE and a3's OK; out: NOOP and LOGOUT.
    assert!(
        ratio.contains("for 59 bytes of protocol") && ratio.contains("for 20 bytes ("),
        "{ratio}"
    );
    p.exp_eof().unwrap();
    server.finish().assert_ok();
}

#[test]
fn corrupt_compressed_data_is_a_clean_exit_4() {
    let mut ok = lines("* OK ready\n");
    let server = ScriptedServer::start(vec![
        Step::Send(std::mem::take(&mut ok)),
        expect("a1 COMPRESS DEFLATE"),
        // BTYPE 11 is reserved: no deflate stream starts like this.
        Step::Send(
            [
                &lines("a1 OK DEFLATE active\n")[..],
                b"\xff\xfe\xfd garbage",
            ]
            .concat(),
        ),
        Step::Sleep(std::time::Duration::from_millis(500)),
    ]);
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", "COMPRESS DEFLATE", "-c", "NOOP"])
        .output()
        .unwrap();
    server.finish();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("compressed data is corrupt"), "{err}");
}
