//! `--proxy` (SOCKS5, RFC 1928 and 1929; HTTP CONNECT, RFC 9110 §9.3.6)
//! and `--proxy-protocol` (HAProxy's PROXY header, versions 1 and 2).
//!
//! Both proxy handshakes are a few bytes each way before the tunnel is a
//! plain TCP stream, on which TLS and STARTTLS run exactly as without a
//! proxy. Written here rather than taken from a crate: the handshakes are
//! short, and every failure must become one sentence naming the proxy,
//! with the password never in it.

use crate::core::sasl::Secret;
use base64::Engine as _;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How the proxy is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `socks5://`: imaptalk resolves the server's name.
    Socks5,
    /// `socks5h://`: the proxy resolves it.
    Socks5h,
    /// `http://`: HTTP CONNECT.
    Http,
}

impl Kind {
    fn scheme(self) -> &'static str {
        match self {
            Kind::Socks5 => "socks5",
            Kind::Socks5h => "socks5h",
            Kind::Http => "http",
        }
    }
}

/// `--proxy URL`, parsed.
#[derive(Clone, Debug)]
pub struct Proxy {
    pub kind: Kind,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<Secret>,
}

impl Proxy {
    /// `socks5://user@host:port`: the URL without the password, for every
    /// message.
    pub fn display(&self) -> String {
        let user = match &self.user {
            Some(u) => format!("{}@", crate::text::escape_str(u)),
            None => String::new(),
        };
        format!(
            "{}://{user}{}",
            self.kind.scheme(),
            crate::text::host_port(&self.host, self.port)
        )
    }
}

/// The default port of each kind when the URL has none.
const SOCKS_PORT: u16 = 1080;
const HTTP_PORT: u16 = 8080;

/// Parses `socks5://[USER:PASSWORD@]HOST:PORT`, `socks5h://…`, `http://…`.
/// The error never repeats the password.
pub fn parse(url: &str) -> Result<Proxy, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        "--proxy: give a URL: socks5://HOST:PORT, socks5h://HOST:PORT or http://HOST:PORT"
            .to_string()
    })?;
    let kind = match scheme.to_ascii_lowercase().as_str() {
        "socks5" => Kind::Socks5,
        "socks5h" => Kind::Socks5h,
        "http" => Kind::Http,
        other => {
            return Err(format!(
                "--proxy: unsupported proxy type '{}' (socks5, socks5h or http)",
                crate::text::escape_str(other)
            ));
        }
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (name, pass) = match u.split_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (u, None),
            };
            let name = percent_decode(name)
                .ok_or("--proxy: the user name is not valid UTF-8 after %-decoding")?;
            let pass = match pass {
                Some(p) => Some(Secret::new(
                    percent_decode(p)
                        .ok_or("--proxy: the password is not valid UTF-8 after %-decoding")?,
                )),
                None => None,
            };
            (Some(name), pass)
        }
    };
    let default = if kind == Kind::Http {
        HTTP_PORT
    } else {
        SOCKS_PORT
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or("--proxy: unclosed [ in the address")?;
        let port = match after.strip_prefix(':') {
            Some(p) => p
                .parse()
                .map_err(|_| "--proxy: the port is not a number from 1 to 65535")?,
            None if after.is_empty() => default,
            None => return Err("--proxy: unexpected text after the ] of the address".into()),
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse()
                    .map_err(|_| "--proxy: the port is not a number from 1 to 65535")?,
            ),
            None => (hostport.to_string(), default),
        }
    };
    if host.is_empty() || port == 0 || host.contains(['/', '?', '#']) {
        return Err(
            "--proxy: give a URL: socks5://HOST:PORT, socks5h://HOST:PORT or http://HOST:PORT"
                .into(),
        );
    }
    if user.as_ref().is_some_and(|u| u.len() > 255)
        || password.as_ref().is_some_and(|p| p.expose().len() > 255)
    {
        return Err("--proxy: a SOCKS5 user name or password has at most 255 bytes".into());
    }
    Ok(Proxy {
        kind,
        host,
        port,
        user,
        password,
    })
}

/// `%41` → `A`, as URLs escape `@`, `:` and `/` in a user name or password.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Where the tunnel goes: an address (`socks5://`, resolved here) or a
/// name the proxy resolves.
pub enum Target<'a> {
    Addr(SocketAddr),
    Name(&'a str, u16),
}

impl Target<'_> {
    fn text(&self) -> String {
        match self {
            Target::Addr(a) => a.to_string(),
            Target::Name(h, p) => crate::text::host_port(h, *p),
        }
    }
}

/// Opens the tunnel on a connection to the proxy. Err: what went wrong,
/// as the end of a sentence that starts with the proxy's name.
pub async fn tunnel(s: &mut TcpStream, proxy: &Proxy, target: &Target<'_>) -> Result<(), String> {
    match proxy.kind {
        Kind::Socks5 | Kind::Socks5h => socks5(s, proxy, target).await,
        Kind::Http => http_connect(s, proxy, target).await,
    }
}

fn io(what: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        return format!("it closed the connection during the {what}");
    }
    format!("{what} failed: {}", crate::text::io_text(e))
}

async fn socks5(s: &mut TcpStream, proxy: &Proxy, target: &Target<'_>) -> Result<(), String> {
    const NO_AUTH: u8 = 0x00;
    const USER_PASS: u8 = 0x02;
    let creds = proxy.user.is_some();
    let hello: &[u8] = if creds {
        &[5, 2, NO_AUTH, USER_PASS]
    } else {
        &[5, 1, NO_AUTH]
    };
    s.write_all(hello)
        .await
        .map_err(|e| io("SOCKS5 greeting", &e))?;
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply)
        .await
        .map_err(|e| io("SOCKS5 greeting", &e))?;
    if reply[0] != 5 {
        return Err("it does not speak SOCKS5 (is it an HTTP proxy? use http://)".into());
    }
    match reply[1] {
        NO_AUTH => {}
        USER_PASS if creds => {
            let user = proxy.user.as_deref().unwrap_or("");
            let pass = proxy.password.as_ref().map_or("", Secret::expose);
            // RFC 1929: version 1, then each field with its length.
            let mut msg = zeroize::Zeroizing::new(Vec::with_capacity(3 + user.len() + pass.len()));
            msg.push(1);
            msg.push(u8::try_from(user.len()).unwrap_or(u8::MAX));
            msg.extend_from_slice(user.as_bytes());
            msg.push(u8::try_from(pass.len()).unwrap_or(u8::MAX));
            msg.extend_from_slice(pass.as_bytes());
            s.write_all(&msg)
                .await
                .map_err(|e| io("SOCKS5 authentication", &e))?;
            let mut status = [0u8; 2];
            s.read_exact(&mut status)
                .await
                .map_err(|e| io("SOCKS5 authentication", &e))?;
            if status[1] != 0 {
                return Err("it refused the user name and password of the --proxy URL".into());
            }
        }
        USER_PASS => {
            return Err(
                "it wants a user name and password (give them as socks5://USER:PASSWORD@HOST:PORT)"
                    .into(),
            );
        }
        _ if !creds => {
            return Err("it accepts no connection without authentication: it may want a user name and password (give them as socks5://USER:PASSWORD@HOST:PORT)".into());
        }
        _ => {
            return Err("it accepts neither no authentication nor a user name and password, the ways imaptalk knows".into());
        }
    }
    let mut req = vec![5, 1, 0];
    match target {
        Target::Addr(SocketAddr::V4(a)) => {
            req.push(1);
            req.extend_from_slice(&a.ip().octets());
            req.extend_from_slice(&a.port().to_be_bytes());
        }
        Target::Addr(SocketAddr::V6(a)) => {
            req.push(4);
            req.extend_from_slice(&a.ip().octets());
            req.extend_from_slice(&a.port().to_be_bytes());
        }
        Target::Name(host, port) => {
            let len = u8::try_from(host.len()).map_err(|_| {
                "the server's name is longer than the 255 bytes SOCKS5 can carry".to_string()
            })?;
            req.push(3);
            req.push(len);
            req.extend_from_slice(host.as_bytes());
            req.extend_from_slice(&port.to_be_bytes());
        }
    }
    s.write_all(&req)
        .await
        .map_err(|e| io("SOCKS5 connect request", &e))?;
    let mut head = [0u8; 4];
    s.read_exact(&mut head)
        .await
        .map_err(|e| io("SOCKS5 connect request", &e))?;
    if head[1] != 0 {
        let why = match head[1] {
            1 => "a general failure",
            2 => "not allowed by its rules",
            3 => "network unreachable",
            4 => "host unreachable",
            5 => "connection refused",
            6 => "TTL expired",
            7 => "command not supported",
            8 => "address type not supported",
            _ => "an unknown error",
        };
        return Err(format!(
            "it cannot reach {}: {why} (SOCKS5 error {})",
            target.text(),
            head[1]
        ));
    }
    // The address the proxy bound, which nothing here needs: skip it.
    let skip = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len)
                .await
                .map_err(|e| io("SOCKS5 connect reply", &e))?;
            usize::from(len[0]) + 2
        }
        _ => return Err("it sent a malformed SOCKS5 reply".into()),
    };
    let mut rest = vec![0u8; skip];
    s.read_exact(&mut rest)
        .await
        .map_err(|e| io("SOCKS5 connect reply", &e))?;
    Ok(())
}

/// The most of an HTTP CONNECT reply head that is read.
const HTTP_HEAD_MAX: usize = 16 * 1024;

async fn http_connect(s: &mut TcpStream, proxy: &Proxy, target: &Target<'_>) -> Result<(), String> {
    let authority = target.text();
    let mut req = zeroize::Zeroizing::new(format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
    ));
    if let Some(user) = &proxy.user {
        let pass = proxy.password.as_ref().map_or("", Secret::expose);
        let creds = zeroize::Zeroizing::new(format!("{user}:{pass}"));
        let _ = write!(
            req,
            "Proxy-Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(creds.as_bytes())
        );
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| io("HTTP CONNECT request", &e))?;
    // Byte by byte: what follows the blank line is the server's greeting,
    // which must stay in the socket for the session (or TLS) to read.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() >= HTTP_HEAD_MAX {
            return Err("its answer to CONNECT has no end".into());
        }
        let b = s.read_u8().await.map_err(|e| io("HTTP CONNECT", &e))?;
        head.push(b);
    }
    let status_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line.trim_ascii());
    let mut words = status_line.split_whitespace();
    let version = words.next().unwrap_or("");
    let code = words.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        return Err(format!(
            "it does not answer like an HTTP proxy ({}; is it SOCKS? use socks5://)",
            crate::text::escape_str(&status_line)
        ));
    }
    match code {
        c if c.starts_with('2') => Ok(()),
        "407" if proxy.user.is_some() => {
            Err("it refused the user name and password of the --proxy URL (407)".into())
        }
        "407" => Err(
            "it wants a user name and password (407; give them as http://USER:PASSWORD@HOST:PORT)"
                .into(),
        ),
        _ => Err(format!(
            "it refused to connect to {authority}: {}",
            crate::text::escape_str(&status_line)
        )),
    }
}

/// `--proxy-protocol`: the version of HAProxy's PROXY header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    V1,
    V2,
}

/// The PROXY header for a connection from `src` to `dst` (both of one
/// family; an IPv4 address beside an IPv6 one is given in its IPv6 form).
/// `None` for `dst`: the server's address is not known here (the proxy
/// resolved it): v1 says UNKNOWN, v2 sends the LOCAL command.
pub fn header(version: Header, src: SocketAddr, dst: Option<SocketAddr>) -> Vec<u8> {
    let pair = dst.map(|d| same_family(src, d));
    match version {
        Header::V1 => match pair {
            Some((s, d)) => {
                let fam = if s.is_ipv4() { "TCP4" } else { "TCP6" };
                format!(
                    "PROXY {fam} {} {} {} {}\r\n",
                    s.ip(),
                    d.ip(),
                    s.port(),
                    d.port()
                )
                .into_bytes()
            }
            None => b"PROXY UNKNOWN\r\n".to_vec(),
        },
        Header::V2 => {
            let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
            match pair {
                Some((s, d)) => {
                    out.push(0x21); // version 2, PROXY
                    let mut addrs = Vec::new();
                    match (s.ip(), d.ip()) {
                        (IpAddr::V4(a), IpAddr::V4(b)) => {
                            out.push(0x11); // TCP over IPv4
                            addrs.extend_from_slice(&a.octets());
                            addrs.extend_from_slice(&b.octets());
                        }
                        (a, b) => {
                            out.push(0x21); // TCP over IPv6
                            addrs.extend_from_slice(&v6(a).octets());
                            addrs.extend_from_slice(&v6(b).octets());
                        }
                    }
                    addrs.extend_from_slice(&s.port().to_be_bytes());
                    addrs.extend_from_slice(&d.port().to_be_bytes());
                    out.extend_from_slice(&u16::try_from(addrs.len()).unwrap_or(0).to_be_bytes());
                    out.extend_from_slice(&addrs);
                }
                None => {
                    out.push(0x20); // version 2, LOCAL
                    out.push(0x00); // unspecified
                    out.extend_from_slice(&[0, 0]);
                }
            }
            out
        }
    }
}

fn v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

fn same_family(s: SocketAddr, d: SocketAddr) -> (SocketAddr, SocketAddr) {
    if s.is_ipv4() == d.is_ipv4() {
        return (s, d);
    }
    let up = |a: SocketAddr| SocketAddr::new(IpAddr::V6(v6(a.ip())), a.port());
    (up(s), up(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let p = parse("socks5://127.0.0.1:1080").unwrap();
        assert_eq!(
            (p.kind, p.host.as_str(), p.port),
            (Kind::Socks5, "127.0.0.1", 1080)
        );
        assert!(p.user.is_none());
        let p = parse("SOCKS5H://u%40x:p%3Ass@[::1]:9050/").unwrap();
        assert_eq!(
            (p.kind, p.host.as_str(), p.port),
            (Kind::Socks5h, "::1", 9050)
        );
        assert_eq!(p.user.as_deref(), Some("u@x"));
        assert_eq!(p.password.as_ref().map(Secret::expose), Some("p:ss"));
        assert_eq!(p.display(), "socks5h://u@x@[::1]:9050");
        let p = parse("http://proxy.example").unwrap();
        assert_eq!((p.kind, p.port), (Kind::Http, 8080));
        assert_eq!(parse("socks5://h").unwrap().port, 1080);
        for bad in [
            "proxy:1080",
            "ftp://h:1",
            "socks5://:1080",
            "socks5://h:0",
            "socks5://h:x",
            "socks5://[::1",
            "http://h:1/path",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let e = parse("socks5://u:hunter2@h:99999").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let p = parse("socks5://u:hunter2@h:1").unwrap();
        assert!(!format!("{} {p:?}", p.display()).contains("hunter2"));
    }

    #[test]
    fn proxy_headers() {
        let s: SocketAddr = "192.0.2.1:56324".parse().unwrap();
        let d: SocketAddr = "198.51.100.7:143".parse().unwrap();
        assert_eq!(
            header(Header::V1, s, Some(d)),
            b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 143\r\n"
        );
        assert_eq!(header(Header::V1, s, None), b"PROXY UNKNOWN\r\n");
        let v2 = header(Header::V2, s, Some(d));
        assert_eq!(
            &v2[..12],
            b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a"
        );
        assert_eq!(&v2[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&v2[16..20], &[192, 0, 2, 1]);
        assert_eq!(&v2[20..24], &[198, 51, 100, 7]);
        assert_eq!(&v2[24..], &[0xdc, 0x04, 0, 143]);
        let s6: SocketAddr = "[2001:db8::1]:1000".parse().unwrap();
        let v2 = header(Header::V2, s6, Some(d));
        assert_eq!(&v2[12..16], &[0x21, 0x21, 0, 36]);
        assert_eq!(v2.len(), 16 + 36);
        assert_eq!(
            header(Header::V1, s6, Some(d)),
            b"PROXY TCP6 2001:db8::1 ::ffff:198.51.100.7 1000 143\r\n"
        );
        assert_eq!(&header(Header::V2, s, None)[12..], &[0x20, 0, 0, 0]);
    }
}
