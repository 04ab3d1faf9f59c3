//! `imaptalk --listen` under test: the proxy started on a free port, its
//! stdout (records, one a line) and stderr collected; and a `Tap`, a
//! recording relay of the test's own, to see what each side really sent.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `imaptalk --listen 0 … SERVER`.
pub struct Proxy {
    child: Option<Child>,
    pub port: u16,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// What a stopped proxy left.
pub struct Stopped {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Stopped {
    /// The records without their timestamps (`#1 C: a1 NOOP`).
    pub fn records(&self) -> Vec<String> {
        self.stdout
            .lines()
            .map(|l| {
                let (ts, rest) = l.split_once(' ').unwrap_or(("", l));
                assert_eq!(ts.len(), 24, "record without a timestamp: {l:?}");
                rest.to_string()
            })
            .collect()
    }

    /// The records of connection `n`, without the `#n ` label.
    pub fn of(&self, n: u64) -> Vec<String> {
        let label = format!("#{n} ");
        self.records()
            .into_iter()
            .filter_map(|r| r.strip_prefix(&label).map(str::to_string))
            .collect()
    }
}

impl Proxy {
    /// Starts the proxy with `args` (which must include SERVER) and waits
    /// for the line that says where it listens.
    pub fn start(args: &[&str]) -> Proxy {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_imaptalk"));
        cmd.env_remove("NO_COLOR")
            .env("HOME", std::env::temp_dir())
            .args(["--listen", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn imaptalk --listen");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut out = child.stdout.take().unwrap();
        let o = stdout.clone();
        let r1 = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let err = child.stderr.take().unwrap();
        let e = stderr.clone();
        let (tx, rx) = mpsc::channel();
        let r2 = std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("imaptalk: listening on ") {
                    let addr = rest.split(',').next().unwrap_or("");
                    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
                    let _ = tx.send(port);
                }
                let mut s = e.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = r2.join();
                panic!(
                    "the proxy did not say where it listens:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Proxy {
            child: Some(child),
            port,
            stdout,
            stderr,
            readers: vec![r1, r2],
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the proxy said on stderr so far.
    pub fn stderr_now(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The records so far.
    pub fn stdout_now(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// Waits until stdout holds `needle` (a connection's end, say).
    pub fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.stdout_now().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{needle:?} never came; stdout:\n{}\nstderr:\n{}",
                self.stdout_now(),
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ctrl-C, and what the proxy left.
    pub fn stop(mut self) -> Stopped {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Stopped {
            code: status.code(),
            stdout: String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned(),
            stderr: self.stderr.lock().unwrap().clone(),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Bytes recorded in one direction.
type Recorded = Arc<Mutex<Vec<u8>>>;

/// A relay of the test's own between two points, recording every byte
/// each way: what a side sent is compared with what the other received.
pub struct Tap {
    pub port: u16,
    /// (toward the target, back from it) of each connection, in order.
    pub conns: Arc<Mutex<Vec<(Recorded, Recorded)>>>,
}

impl Tap {
    pub fn start(target: String) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns: Arc<Mutex<Vec<(Recorded, Recorded)>>> = Arc::default();
        let c = conns.clone();
        std::thread::spawn(move || {
            for a in listener.incoming() {
                let Ok(a) = a else { break };
                let Ok(b) = TcpStream::connect(&target) else {
                    continue;
                };
                let fwd: Recorded = Arc::default();
                let back: Recorded = Arc::default();
                c.lock().unwrap().push((fwd.clone(), back.clone()));
                pipe(a.try_clone().unwrap(), b.try_clone().unwrap(), fwd);
                pipe(b, a, back);
            }
        });
        Tap { port, conns }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Bytes (toward the target, back) of connection `i`.
    pub fn bytes(&self, i: usize) -> (Vec<u8>, Vec<u8>) {
        let conns = self.conns.lock().unwrap();
        let (f, b) = &conns[i];
        (f.lock().unwrap().clone(), b.lock().unwrap().clone())
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, log: Recorded) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// A minimal IMAP client of the test's own over plain TCP: sends lines,
/// reads until a tagged completion.
pub struct Client {
    pub s: TcpStream,
    pub got: Vec<u8>,
    pos: usize,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Client {
            s,
            got: Vec::new(),
            pos: 0,
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Reads until `needle` arrives after the previous match; what came
    /// up to and including it.
    pub fn until(&mut self, needle: &str) -> String {
        let mut buf = [0u8; 65536];
        loop {
            let seen = &self.got[self.pos..];
            if let Some(i) = seen
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
            {
                let text = String::from_utf8_lossy(&seen[..i + needle.len()]).into_owned();
                self.pos += i + needle.len();
                return text;
            }
            match self.s.read(&mut buf) {
                Ok(0) => panic!(
                    "connection closed before {needle:?}; got {:?}",
                    String::from_utf8_lossy(&self.got)
                ),
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "{e} before {needle:?}; got {:?}",
                    String::from_utf8_lossy(&self.got)
                ),
            }
        }
    }

    /// Reads until the peer closes; what came.
    pub fn rest(&mut self) -> Vec<u8> {
        let mut buf = [0u8; 65536];
        let start = self.pos;
        loop {
            match self.s.read(&mut buf) {
                Ok(0) | Err(_) => return self.got[start..].to_vec(),
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
            }
        }
    }
}
