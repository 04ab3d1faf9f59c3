//! Memory stays flat whatever the server sends: a literal of hundreds of
//! MiB and a line of tens of MiB go through the binary while its peak
//! resident size (VmHWM) stays under a fixed bound. A bound on memory,
//! never on time.

use crate::support::imaptalk_std;
use crate::support::local;
use crate::support::scripted::{ScriptedServer, Step, expect, send};
use std::io::Read;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;
const LITERAL_MIB: usize = 300;
const LINE_MIB: usize = 40;
/// Far above what the client needs (a few MiB: one 128 KiB read buffer,
/// one output buffer, the runtime) and far below what holding either
/// stream would cost.
const BOUND_KIB: u64 = 32 * 1024;

/// The peak resident size of a running process, in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_300_mib_literal_and_a_40_mib_line_keep_memory_flat() {
    let greeting = "* OK [CAPABILITY IMAP4rev1] memory test ready\r\n";
    let head = format!("* 1 FETCH (BODY[] {{{}}}\r\n", LITERAL_MIB * MIB);
    let chunk: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    let line_head = "* 2 FETCH (X-LONG ";
    let tail = ")\r\na1 OK done\r\n";
    let expected = (greeting.len()
        + head.len()
        + LITERAL_MIB * MIB
        + ")\r\n".len()
        + line_head.len()
        + LINE_MIB * MIB
        + tail.len()) as u64;
    let server = ScriptedServer::start(vec![
        send(greeting),
        expect("a1 FETCH 1 BODY[]"),
        Step::Send(head.into_bytes()),
        // Generated piece by piece: the test never holds the streams either.
        Step::SendRepeated {
            bytes: chunk,
            times: LITERAL_MIB,
        },
        Step::Send(b")\r\n".to_vec()),
        Step::Send(line_head.as_bytes().to_vec()),
        Step::SendRepeated {
            bytes: vec![b'y'; MIB],
            times: LINE_MIB,
        },
        Step::Send(tail.as_bytes().to_vec()),
        expect("a2 LOGOUT"),
        // Everything has been relayed: the peak is read now, while the
        // client waits for this answer.
        Step::Sleep(Duration::from_millis(500)),
        send("a2 OK bye\n"),
        Step::Close,
    ]);
    let mut child = imaptalk_std()
        .arg(local(server.port()))
        .args(["-c", "FETCH 1 BODY[]", "--quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let count = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&count);
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    while count.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // All data is through, the LOGOUT answer is still held back.
    let peak = vm_hwm_kib(pid);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(
        count.load(Ordering::Relaxed),
        t.sent_len,
        "every byte relayed"
    );
    let peak = peak.expect("VmHWM read while the client was still running");
    assert!(
        peak < BOUND_KIB,
        "peak RSS {peak} KiB relaying {LITERAL_MIB} MiB + {LINE_MIB} MiB, bound {BOUND_KIB} KiB"
    );
    eprintln!("peak RSS {peak} KiB");
}
