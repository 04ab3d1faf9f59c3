//! Against a real Dovecot, started privately for each test: plain,
//! STARTTLS and implicit TLS; LOGIN, LIST, SELECT, FETCH of 8-bit and
//! binary messages byte for byte; APPEND with a literal; IDLE.

use crate::support::dovecot::Dovecot;
use crate::support::{append_from_second_connection, imaptalk, imaptalk_std, local, stderr_of};
use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The data of the literal that follows `marker` (which ends just before
/// `{n}` or `~{n}`) in a raw capture.
pub(crate) fn literal_after<'a>(capture: &'a [u8], marker: &[u8]) -> &'a [u8] {
    let at = capture
        .windows(marker.len())
        .position(|w| w == marker)
        .unwrap_or_else(|| panic!("{:?} not in output", String::from_utf8_lossy(marker)));
    let rest = &capture[at + marker.len()..];
    let rest = rest.strip_prefix(b"~").unwrap_or(rest);
    let close = rest.iter().position(|&b| b == b'}').unwrap();
    let n: usize = std::str::from_utf8(&rest[1..close])
        .unwrap()
        .parse()
        .unwrap();
    let data = &rest[close + 3..]; // "}\r\n"
    &data[..n]
}

fn login(d: &Dovecot) -> String {
    let (u, p) = d.user();
    format!("LOGIN {u} {p}")
}

/// 8-bit text and every byte value Dovecot serves unchanged (all but NUL
/// and bare LF, which it normalises, with CRLF line ends).
fn messages() -> (Vec<u8>, Vec<u8>) {
    let utf8 = "From: Zoë <zoe@example.com>\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln, 日本語のテキスト.\r\na3 OK this line is data, not a completion\r\n".as_bytes().to_vec();
    let mut binary =
        b"From: bin@example.com\r\nSubject: binary\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            .to_vec();
    for _ in 0..40 {
        binary.extend((1..=255u8).filter(|&b| b != b'\n' && b != b'\r'));
        binary.extend_from_slice(b"\r\n\x1b]0;title\x07\r\r\n");
    }
    (utf8, binary)
}

#[test]
fn plain_login_list_select_fetch_byte_for_byte() {
    let d = Dovecot::start();
    let (utf8, binary) = messages();
    d.deliver("alice", "INBOX", &utf8);
    d.deliver("alice", "INBOX", &binary);
    d.deliver("alice", "Archive", b"Subject: old\r\n\r\nold\r\n");
    let out = imaptalk()
        .arg(local(d.plain_port()))
        .write_stdin(format!(
            "{}\nLIST \"\" *\nSELECT INBOX\nFETCH 1 BODY.PEEK[]\nFETCH 2 BODY.PEEK[]\n",
            login(&d)
        ))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stderr_of(&out),
        d.log()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("a1 OK"), "{text}");
    assert!(text.contains("Archive"), "{text}");
    assert!(text.contains("* 2 EXISTS"), "{text}");
    assert!(text.contains("a5 OK"), "{text}");
    assert!(text.contains("a6 OK"), "LOGOUT completes: {text}");
    assert_eq!(literal_after(&out.stdout, b"* 1 FETCH (BODY[] "), &utf8[..]);
    assert_eq!(
        literal_after(&out.stdout, b"* 2 FETCH (BODY[] "),
        &binary[..]
    );
    assert_eq!(stderr_of(&out), "");
}

#[test]
fn binary_fetch_with_nul_bytes_arrives_as_literal8() {
    let d = Dovecot::start();
    let mut msg = b"Subject: nul\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
    msg.extend_from_slice(b"a\x00b\x00\x00c\x01\x7f\r\n");
    d.deliver("alice", "INBOX", &msg);
    let out = imaptalk()
        .arg(local(d.plain_port()))
        .args([
            "-c",
            &login(&d),
            "-c",
            "EXAMINE INBOX",
            "-c",
            "FETCH 1 BINARY.PEEK[]",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        out.stdout.windows(11).any(|w| w == b"BINARY[] ~{"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(literal_after(&out.stdout, b"BINARY[] "), &msg[..]);
}

#[test]
fn starttls_and_implicit_tls_with_the_test_ca() {
    let d = Dovecot::start();
    let ca = d.ca_file().to_str().unwrap().to_string();
    for (args, addr) in [
        (vec!["--starttls"], format!("127.0.0.1:{}", d.plain_port())),
        (vec!["--tls"], format!("localhost:{}", d.tls_port())),
    ] {
        let out = imaptalk()
            .args(&args)
            .args(["--cafile", &ca])
            .arg(&addr)
            .args(["-c", &login(&d), "-c", "STATUS INBOX (MESSAGES)"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr_of(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("* STATUS INBOX (MESSAGES 0)"), "{text}");
    }
    // Wrong password: the answer to "are these credentials valid?" is exit 1.
    let out = imaptalk()
        .args(["--tls", "--cafile", &ca])
        .arg(format!("localhost:{}", d.tls_port()))
        .args(["-c", "LOGIN alice not-the-password"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("a1 NO [AUTHENTICATIONFAILED]"));
    // Without the CA, verification fails.
    let out = imaptalk()
        .arg(format!("imaps://localhost:{}", d.tls_port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr_of(&out).contains("unknown authority"));
}

#[test]
fn append_with_a_synchronizing_literal_and_fetch_it_back() {
    let d = Dovecot::start();
    let msg = "From: me@example.com\r\nSubject: appended\r\n\r\nline one\r\nläuft ✓\r\n".as_bytes();
    let mut script =
        format!("{}\nAPPEND INBOX (\\Seen) {{{}}}\n", login(&d), msg.len()).into_bytes();
    script.extend_from_slice(msg);
    script.extend_from_slice(b"\nSELECT INBOX\nFETCH 1 (FLAGS BODY.PEEK[])\n");
    let out = imaptalk()
        .arg(local(d.plain_port()))
        .write_stdin(script)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("+ OK"), "the server's continuation: {text}");
    assert!(text.contains("a2 OK [APPENDUID"), "{text}");
    assert!(text.contains("\\Seen"), "{text}");
    assert_eq!(literal_after(&out.stdout, b"BODY[] "), msg);
}

/// Collects a child's stdout on a thread, so the test can wait for text.
pub(crate) struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub(crate) fn start(mut from: impl Read + Send + 'static) -> Capture {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = from.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                b.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Capture(buf)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub(crate) fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if String::from_utf8_lossy(&self.0.lock().unwrap()).contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{needle:?} never appeared in: {}",
            String::from_utf8_lossy(&self.0.lock().unwrap())
        );
    }
}

#[test]
fn idle_sees_a_message_appended_from_a_second_connection() {
    let d = Dovecot::start();
    let mut idler = imaptalk_std()
        .arg(local(d.plain_port()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = idler.stdin.take().unwrap();
    let out = Capture::start(idler.stdout.take().unwrap());
    writeln!(stdin, "{}\nSELECT INBOX\nIDLE", login(&d)).unwrap();
    out.wait_for("+ idling");

    append_from_second_connection(&d);

    out.wait_for("* 1 EXISTS");
    writeln!(stdin, "DONE").unwrap();
    drop(stdin);
    let status = idler.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    out.wait_for("a3 OK Idle completed");
    out.wait_for("a4 OK Logout completed");
}
