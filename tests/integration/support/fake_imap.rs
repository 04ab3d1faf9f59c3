//! A fake IMAP server that takes any number of connections and answers
//! by rules, not by a script: `--check` opens several connections (the
//! reachability connect, the session, the injection probe, one per TLS
//! version) whose order a script would have to guess.
//!
//! It knows CAPABILITY, NOOP, ID, STARTTLS and LOGOUT; anything else is
//! BAD. What makes it a test case is its [`Behaviour`]: capabilities that
//! differ between plaintext and TLS, a STARTTLS that keeps the bytes
//! pipelined after it and runs them inside TLS (the CVE-2011-0411 bug),
//! a slow greeting, NOOPs never answered.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

#[derive(Clone, Debug)]
pub struct Behaviour {
    /// The greeting line, without its CRLF.
    pub greeting: String,
    /// Waited before the greeting, on every connection.
    pub greeting_delay: Duration,
    /// What CAPABILITY answers before TLS, and over TLS.
    pub plain_caps: String,
    pub tls_caps: String,
    /// TLS from the first byte (else plaintext with STARTTLS).
    pub implicit: bool,
    /// STARTTLS keeps what the client sent after it and runs it once TLS
    /// is up.
    pub injectable: bool,
    /// NOOP gets no answer at all.
    pub noop_hangs: bool,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour {
            greeting: "* OK fake IMAP ready".into(),
            greeting_delay: Duration::ZERO,
            plain_caps: "IMAP4rev1 STARTTLS LOGINDISABLED ID IDLE".into(),
            tls_caps: "IMAP4rev1 ID IDLE AUTH=PLAIN".into(),
            implicit: false,
            injectable: false,
            noop_hangs: false,
        }
    }
}

/// The running server; stopped when dropped.
pub struct FakeImap {
    pub port: u16,
    /// Every command line received, on any connection (TLS decrypted).
    pub received: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeImap {
    pub fn start(b: Behaviour, tls: Arc<ServerConfig>) -> FakeImap {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("listener");
                let b = Arc::new(b);
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((tcp, _)) = accepted else { continue };
                            let _ = tcp.set_nodelay(true);
                            tokio::spawn(connection(tcp, b.clone(), tls.clone(), log.clone()));
                        }
                    }
                }
            });
        });
        FakeImap {
            port,
            received,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for FakeImap {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Log = Arc<Mutex<Vec<String>>>;

async fn connection(mut tcp: TcpStream, b: Arc<Behaviour>, tls: Arc<ServerConfig>, log: Log) {
    if b.implicit {
        let Ok(s) = TlsAcceptor::from(tls).accept(tcp).await else {
            return;
        };
        session(s, &b, true, Vec::new(), true, &log).await;
        return;
    }
    tokio::time::sleep(b.greeting_delay).await;
    if tcp
        .write_all(format!("{}\r\n", b.greeting).as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let mut buf = Vec::new();
    loop {
        let Some(line) = read_line(&mut tcp, &mut buf).await else {
            return;
        };
        log.lock().unwrap().push(line.clone());
        let (tag, verb) = split(&line);
        if verb.eq_ignore_ascii_case("STARTTLS") {
            if tcp
                .write_all(format!("{tag} OK Begin TLS negotiation now\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            // The bug: what came after STARTTLS in the same read is kept.
            let pending = if b.injectable { buf } else { Vec::new() };
            let Ok(s) = TlsAcceptor::from(tls).accept(tcp).await else {
                return;
            };
            session(s, &b, true, pending, false, &log).await;
            return;
        }
        match answer(&b, &tag, &verb, false) {
            Some(reply) => {
                if tcp.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
            None if verb.eq_ignore_ascii_case("NOOP") => {}
            None => return,
        }
        if verb.eq_ignore_ascii_case("LOGOUT") {
            return;
        }
    }
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    b: &Behaviour,
    tls: bool,
    mut buf: Vec<u8>,
    greet: bool,
    log: &Log,
) {
    if greet {
        tokio::time::sleep(b.greeting_delay).await;
        if s.write_all(format!("{}\r\n", b.greeting).as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
    loop {
        let Some(line) = read_line(&mut s, &mut buf).await else {
            return;
        };
        log.lock().unwrap().push(line.clone());
        let (tag, verb) = split(&line);
        if let Some(reply) = answer(b, &tag, &verb, tls)
            && s.write_all(reply.as_bytes()).await.is_err()
        {
            return;
        }
        if verb.eq_ignore_ascii_case("LOGOUT") {
            let _ = s.shutdown().await;
            return;
        }
    }
}

fn split(line: &str) -> (String, String) {
    let mut words = line.split_whitespace();
    let tag = words.next().unwrap_or("*").to_string();
    let verb = words.next().unwrap_or("").to_string();
    (tag, verb)
}

/// The reply to a command; None: no reply (a hanging NOOP).
fn answer(b: &Behaviour, tag: &str, verb: &str, tls: bool) -> Option<String> {
    let verb = verb.to_ascii_uppercase();
    Some(match verb.as_str() {
        "CAPABILITY" => format!(
            "* CAPABILITY {}\r\n{tag} OK CAPABILITY completed\r\n",
            if tls { &b.tls_caps } else { &b.plain_caps }
        ),
        "NOOP" if b.noop_hangs => return None,
        "NOOP" => format!("{tag} OK NOOP completed\r\n"),
        "ID" => format!(
            "* ID (\"name\" \"fake\u{1b}[31m\" \"version\" \"1\")\r\n{tag} OK ID completed\r\n"
        ),
        "LOGOUT" => format!("* BYE bye\r\n{tag} OK LOGOUT completed\r\n"),
        "STARTTLS" => format!("{tag} BAD TLS is already active\r\n"),
        _ => format!("{tag} BAD unknown command\r\n"),
    })
}

/// The next line (CRLF cut off) from `buf`, reading more when needed.
async fn read_line<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(i) = buf.iter().position(|&c| c == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line);
            return Some(text.trim_end_matches(['\r', '\n']).to_string());
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
