//! Signals and pipes in script and `-c` mode: SIGINT and SIGTERM end the
//! session cleanly (LOGOUT when the wire allows it) with exit codes 130 and
//! 143; a closed stdout or stderr ends the run quietly.

use crate::support::scripted::{ScriptedServer, Step, Transcript, expect, send};
use crate::support::{imaptalk_std, local};
use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GREETING: &str = "* OK [CAPABILITY IMAP4rev1] signal test ready\n";

/// A running client whose stdout and stderr are collected as they come.
struct Client {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = Arc::clone(&buf);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

impl Client {
    fn start(port: u16, args: &[&str], stdin: Option<&[u8]>) -> Client {
        let mut child = imaptalk_std()
            .arg(local(port))
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(bytes) = stdin {
            // Written, and the pipe kept open: the script has not ended.
            child.stdin.as_mut().unwrap().write_all(bytes).unwrap();
        }
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Client {
            child,
            stdout,
            stderr,
        }
    }

    /// Waits until stdout shows `marker`: the server got that far.
    fn wait_for(&self, marker: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if String::from_utf8_lossy(&self.stdout.lock().unwrap()).contains(marker) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("stdout never showed {marker:?}");
    }

    fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Exit code, stdout, stderr; the run must end within 10 s.
    fn end(mut self) -> (Option<i32>, Vec<u8>, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("imaptalk did not end within 10 s of the signal");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        drop(self.child.stdin.take());
        // The readers end with the child's pipes.
        std::thread::sleep(Duration::from_millis(50));
        let out = self.stdout.lock().unwrap().clone();
        let err = String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
        (status.code(), out, err)
    }
}

fn lines(t: &Transcript) -> Vec<&str> {
    t.lines.iter().map(String::as_str).collect()
}

#[test]
fn sigint_mid_response_logs_out_and_exits_130() {
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 FETCH 1 BODY[]"),
        // Half a literal: the response is in the middle of arriving.
        Step::Send(b"* 1 FETCH (BODY[] {20}\r\nabc".to_vec()),
        expect("a2 LOGOUT"),
        send("defghijklmnopqrst)\na1 OK done\n* BYE logging out\na2 OK Logout completed.\n"),
        Step::Close,
    ]);
    let client = Client::start(server.port(), &["-c", "FETCH 1 BODY[]"], None);
    client.wait_for("{20}\r\nabc");
    client.signal("INT");
    let (code, stdout, stderr) = client.end();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(stderr, "imaptalk: interrupted by SIGINT: logged out\n");
    assert_eq!(lines(&t), ["a1 FETCH 1 BODY[]", "a2 LOGOUT"]);
    // Everything the server sent until the end is still relayed.
    assert_eq!(stdout, t.sent);
}

#[test]
fn sigterm_does_not_wait_for_a_server_that_never_answers() {
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 NOOP"),
        send("* 1 EXISTS\n"),
        expect("a2 LOGOUT"),
        // Neither a1 nor the LOGOUT is ever answered.
        Step::Sleep(Duration::from_secs(4)),
        Step::Close,
    ]);
    let client = Client::start(server.port(), &["-c", "NOOP"], None);
    client.wait_for("* 1 EXISTS");
    client.signal("TERM");
    let (code, _, stderr) = client.end();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(code, Some(143), "{stderr}");
    // The client gave up on its own, not because the server closed.
    assert_eq!(
        stderr,
        "imaptalk: interrupted by SIGTERM: sent LOGOUT; no answer within 1s\n"
    );
    assert_eq!(lines(&t), ["a1 NOOP", "a2 LOGOUT"]);
}

#[test]
fn sigint_in_the_middle_of_literal_data_sends_nothing_more() {
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 APPEND INBOX {10}"),
        send("+ go ahead\n"),
        // Half of the literal: the script has not supplied the rest yet.
        Step::ExpectBytes(b"hello".to_vec()),
        send("* 1 RECENT\n"),
        // A LOGOUT line now would be taken as literal data: nothing may
        // come but the close.
        Step::ExpectEof,
    ]);
    let client = Client::start(server.port(), &[], Some(b"APPEND INBOX {10}\nhello"));
    client.wait_for("* 1 RECENT");
    client.signal("INT");
    let (code, _, stderr) = client.end();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(
        stderr,
        "imaptalk: interrupted by SIGINT: in the middle of a command; closed the connection without LOGOUT\n"
    );
    assert_eq!(t.received, b"a1 APPEND INBOX {10}\r\nhello");
}

#[test]
fn sigint_during_idle_sends_done_then_logout() {
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 IDLE"),
        send("+ idling\n* 2 EXISTS\n"),
        expect("DONE"),
        expect("a2 LOGOUT"),
        send("a1 OK Idle completed.\n* BYE bye\na2 OK Logout completed.\n"),
        Step::Close,
    ]);
    let client = Client::start(server.port(), &[], Some(b"IDLE\n"));
    client.wait_for("* 2 EXISTS");
    client.signal("INT");
    let (code, stdout, stderr) = client.end();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(stderr, "imaptalk: interrupted by SIGINT: logged out\n");
    assert_eq!(lines(&t), ["a1 IDLE", "DONE", "a2 LOGOUT"]);
    assert_eq!(stdout, t.sent);
}

/// Issue 13 item 3(f): a FIFO (or `{@-}`) being copied to a spool file no
/// longer blocks the session: a signal still ends the run with LOGOUT.
#[cfg(target_os = "linux")]
#[test]
fn sigint_while_a_fifo_literal_is_being_read_logs_out() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // Held open for writing and never closed: the copy never ends.
    let mut writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    writer.write_all(b"From: a\r\n").unwrap();
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 LOGOUT"),
        send("* BYE bye\na1 OK Logout completed.\n"),
        Step::Close,
    ]);
    let line = format!("APPEND INBOX {{@{}}}", fifo.display());
    let client = Client::start(server.port(), &["-c", &line], None);
    // The client has the FIFO open: it is copying it.
    let fd_dir = format!("/proc/{}/fd", client.child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let opened = || {
        std::fs::read_dir(&fd_dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| std::fs::read_link(e.path()).is_ok_and(|p| p == fifo))
        })
    };
    while !opened() {
        assert!(
            Instant::now() < deadline,
            "the client never opened the FIFO"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    client.signal("INT");
    let (code, _, stderr) = client.end();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(stderr, "imaptalk: interrupted by SIGINT: logged out\n");
    drop(writer);
}

/// Whether a connection to `port` on 127.0.0.1 is established (the
/// client is past its start-up, its signal handlers are in place).
/// Read from /proc/net/tcp, so Linux only, like its one user.
#[cfg(target_os = "linux")]
fn connected(port: u16) -> bool {
    let remote = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp").is_ok_and(|t| {
        t.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(2) == Some(&remote.as_str()) && f.get(3) == Some(&"01")
        })
    })
}

#[cfg(target_os = "linux")]
#[test]
fn sigint_before_the_greeting_exits_130_without_sending() {
    let server = ScriptedServer::start(vec![Step::Sleep(Duration::from_secs(3)), Step::Close]);
    let port = server.port();
    let client = Client::start(port, &["-c", "NOOP"], None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !connected(port) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    client.signal("INT");
    let (code, stdout, stderr) = client.end();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(
        stderr,
        "imaptalk: interrupted by SIGINT before the session was set up\n"
    );
    assert!(stdout.is_empty());
    assert!(t.received.is_empty());
}

#[test]
fn a_closed_stderr_pipe_ends_quietly_too() {
    // `imaptalk … 2>&1 | head`: once the reader is gone, a warning that
    // cannot be written must not turn into a panic (exit 101).
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 NOOP"),
        send("zz9 OK a tag nobody sent\n+ a continuation nobody asked for\na1 OK done\n"),
        expect("a2 LOGOUT"),
        send("a2 OK bye\n"),
        Step::Close,
    ]);
    let mut child = imaptalk_std()
        .arg(local(server.port()))
        .args(["-c", "NOOP"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    server.finish().assert_ok();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_closed_stderr_pipe_is_no_panic_for_diagnostics_and_warnings() {
    // What -v, a flag warning and a password-file warning write goes to
    // stderr too; with nobody reading it, each must be lost quietly.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not used on a plaintext connection\n").unwrap();
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "secret\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let cases: [(&[&str], &str); 3] = [
        (&["-v", "-c", "NOOP"], "a1 NOOP"),
        (&["--cafile", ca.to_str().unwrap(), "-c", "NOOP"], "a1 NOOP"),
        (
            &["-u", "alice", "--password-file", pass.to_str().unwrap()],
            "a1 LOGIN alice secret",
        ),
    ];
    for (args, first) in cases {
        let server = ScriptedServer::start(vec![
            send(GREETING),
            expect(first),
            send("a1 OK done\n"),
            expect("a2 LOGOUT"),
            send("* BYE bye\na2 OK bye\n"),
            Step::Close,
        ]);
        let mut child = imaptalk_std()
            .arg(local(server.port()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        server.finish().assert_ok();
        assert_eq!(status.code(), Some(0), "{args:?}");
    }
}
