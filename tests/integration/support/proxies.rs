//! Small SOCKS5 and HTTP CONNECT proxies on 127.0.0.1 for the `--proxy`
//! tests: they relay to loopback only and record what they were asked.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Socks5,
    Http,
}

/// How the proxy behaves.
#[derive(Clone, Debug)]
pub struct Behaviour {
    pub kind: Kind,
    /// (user, password) it requires.
    pub creds: Option<(String, String)>,
    /// Refuse every tunnel (SOCKS5 error 5, HTTP 502).
    pub refuse: bool,
}

pub struct TestProxy {
    pub port: u16,
    /// One entry per request: `socks5 name localhost:143`, `socks5 addr
    /// 127.0.0.1:143`, `http localhost:143`, with ` auth USER:PASSWORD` when
    /// credentials came.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl TestProxy {
    pub fn start(b: Behaviour) -> TestProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        // Serves until the test binary exits.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (b, record) = (b.clone(), record.clone());
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
                    let _ = match b.kind {
                        Kind::Socks5 => socks5(conn, &b, &record),
                        Kind::Http => http(conn, &b, &record),
                    };
                });
            }
        });
        TestProxy { port, seen }
    }

    pub fn url(&self, scheme: &str, creds: Option<(&str, &str)>) -> String {
        match creds {
            Some((u, p)) => format!("{scheme}://{u}:{p}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// Only loopback: no traffic leaves the machine.
fn loopback_target(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| std::io::Error::other("not a loopback address"))
}

fn relay(client: TcpStream, server: TcpStream) {
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut c, mut s) = (client, server);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut s, &mut c);
    let _ = c.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

fn socks5(mut c: TcpStream, b: &Behaviour, record: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    c.read_exact(&mut head)?;
    let mut methods = vec![0u8; usize::from(head[1])];
    c.read_exact(&mut methods)?;
    let mut auth = String::new();
    if b.creds.is_some() {
        if !methods.contains(&2) {
            c.write_all(&[5, 0xff])?;
            return Ok(());
        }
        c.write_all(&[5, 2])?;
        let mut ver = [0u8; 2];
        c.read_exact(&mut ver)?;
        let mut user = vec![0u8; usize::from(ver[1])];
        c.read_exact(&mut user)?;
        let mut plen = [0u8; 1];
        c.read_exact(&mut plen)?;
        let mut pass = vec![0u8; usize::from(plen[0])];
        c.read_exact(&mut pass)?;
        let (user, pass) = (
            String::from_utf8_lossy(&user),
            String::from_utf8_lossy(&pass),
        );
        auth = format!(" auth {user}:{pass}");
        let ok = b
            .creds
            .as_ref()
            .is_some_and(|(u, p)| *u == user && *p == pass);
        c.write_all(&[1, if ok { 0 } else { 1 }])?;
        if !ok {
            record.lock().unwrap().push(format!("socks5 refused{auth}"));
            return Ok(());
        }
    } else {
        c.write_all(&[5, 0])?;
    }
    let mut req = [0u8; 4];
    c.read_exact(&mut req)?;
    let (what, host) = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            c.read_exact(&mut a)?;
            ("addr", Ipv4Addr::from(a).to_string())
        }
        4 => {
            let mut a = [0u8; 16];
            c.read_exact(&mut a)?;
            ("addr", Ipv6Addr::from(a).to_string())
        }
        _ => {
            let mut len = [0u8; 1];
            c.read_exact(&mut len)?;
            let mut name = vec![0u8; usize::from(len[0])];
            c.read_exact(&mut name)?;
            ("name", String::from_utf8_lossy(&name).into_owned())
        }
    };
    let mut port = [0u8; 2];
    c.read_exact(&mut port)?;
    let port = u16::from_be_bytes(port);
    record
        .lock()
        .unwrap()
        .push(format!("socks5 {what} {host}:{port}{auth}"));
    let reply = |code: u8| [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
    if b.refuse {
        c.write_all(&reply(5))?;
        return Ok(());
    }
    match loopback_target(&host, port).and_then(TcpStream::connect) {
        Ok(s) => {
            c.write_all(&reply(0))?;
            relay(c, s);
        }
        Err(_) => c.write_all(&reply(5))?,
    }
    Ok(())
}

fn http(mut c: TcpStream, b: &Behaviour, record: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let target = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("CONNECT "))
        .and_then(|l| l.strip_suffix(" HTTP/1.1"))
        .unwrap_or("")
        .to_string();
    let auth = text
        .lines()
        .find_map(|l| l.strip_prefix("Proxy-Authorization: Basic "))
        .map(|b64| {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap_or_default();
            format!(" auth {}", String::from_utf8_lossy(&raw))
        })
        .unwrap_or_default();
    record.lock().unwrap().push(format!("http {target}{auth}"));
    if let Some((u, p)) = &b.creds
        && auth != format!(" auth {u}:{p}")
    {
        c.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"t\"\r\n\r\n")?;
        return Ok(());
    }
    if b.refuse {
        c.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")?;
        return Ok(());
    }
    let (host, port) = target.rsplit_once(':').unwrap_or((&target, "0"));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match loopback_target(host, port.parse().unwrap_or(0)).and_then(TcpStream::connect) {
        Ok(s) => {
            c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
            relay(c, s);
        }
        Err(_) => c.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")?,
    }
    Ok(())
}
