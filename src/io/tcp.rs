//! The TCP connection to the server: name resolution, every address
//! tried in turn, keepalive.

use super::proxy::{self, Proxy};
use crate::error;
use crate::text::{io_text, secs};
use anyhow::Result;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

/// Where to connect, and how patiently.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// A name or an address, without brackets.
    pub host: String,
    pub port: u16,
    /// `--timeout`: for resolving and connecting together.
    pub timeout: Option<Duration>,
    /// `-v`: each address that refused is reported.
    pub verbose: bool,
    /// `-4` / `-6`: only addresses of this family are tried (for every
    /// name resolved here: the server's, the proxy's).
    pub family: Option<Family>,
    /// `--proxy`.
    pub proxy: Option<Proxy>,
    /// `--proxy-protocol`: a PROXY header first.
    pub proxy_protocol: Option<proxy::Header>,
}

/// An address family, for `-4` and `-6`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &SocketAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Family::V4 => "-4",
            Family::V6 => "-6",
        }
    }
}

impl ConnectOptions {
    /// `host:port`, for messages.
    pub fn display(&self) -> String {
        crate::text::host_port(&self.host, self.port)
    }
}

/// A connected socket, and how it got there (for `-v`).
pub struct Tcp {
    pub stream: TcpStream,
    /// The address actually connected to (a name may have several; the
    /// proxy's, with `--proxy`).
    pub addr: SocketAddr,
    /// Time for the TCP connect that succeeded (name resolution excluded;
    /// with a proxy, the tunnel included).
    pub took: Duration,
    /// `--proxy`: the proxy, as messages show it (no password).
    pub proxy: Option<String>,
    /// The server's address, when known here (not when the proxy
    /// resolved its name).
    pub server: Option<SocketAddr>,
}

/// Resolves and connects, trying every address the name has; through the
/// proxy with `--proxy`; then sends the PROXY header with
/// `--proxy-protocol`.
pub async fn connect_tcp(t: &ConnectOptions) -> Result<Tcp> {
    let work = async {
        let mut tcp = match &t.proxy {
            None => {
                let (stream, addr, took) = direct(&t.host, t.port, t, None).await?;
                Tcp {
                    stream,
                    addr,
                    took,
                    proxy: None,
                    server: Some(addr),
                }
            }
            Some(p) => via_proxy(p, t).await?,
        };
        if let Some(version) = t.proxy_protocol {
            let local = tcp.stream.local_addr().map_err(|e| {
                error::connect(format!("cannot send the PROXY header: {}", io_text(&e)))
            })?;
            let header = proxy::header(version, local, tcp.server);
            tcp.stream.write_all(&header).await.map_err(|e| {
                error::connect(format!(
                    "cannot send the PROXY header to {}: {}",
                    t.display(),
                    io_text(&e)
                ))
            })?;
        }
        Ok(tcp)
    };
    match t.timeout {
        Some(d) => tokio::time::timeout(d, work).await.map_err(|_| {
            error::connect(format!(
                "timed out after {} connecting to {}",
                secs(d),
                t.display()
            ))
        })?,
        None => work.await,
    }
}

/// Resolves `host` and connects to each address in turn. `proxy`: the
/// proxy's name for messages, when this is the connection to it.
async fn direct(
    host: &str,
    port: u16,
    t: &ConnectOptions,
    proxy: Option<&str>,
) -> Result<(TcpStream, SocketAddr, Duration)> {
    let prefix = proxy.map(|p| format!("proxy {p}: ")).unwrap_or_default();
    let addrs = resolve(host, port, t)
        .await
        .map_err(|e| error::connect(format!("{prefix}{}", crate::error::message(&e))))?;
    let mut last = None;
    for addr in &addrs {
        let start = Instant::now();
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                keepalive(&s);
                return Ok((s, *addr, start.elapsed()));
            }
            Err(e) => {
                if t.verbose {
                    error::say(&format!(
                        "imaptalk: {prefix}cannot connect to {addr}: {}",
                        io_text(&e)
                    ));
                }
                last = Some((addr, e));
            }
        }
    }
    Err(match last {
        Some((addr, e)) => {
            // The address only when the name was not already one.
            let named = crate::text::host_port(host, port);
            let at = if named == addr.to_string() {
                String::new()
            } else {
                format!(" ({addr})")
            };
            let next = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                "; nothing listens there: is the server running, and is the port right? (IMAP: 143, or 993 with TLS)"
            } else {
                ""
            };
            error::connect(format!(
                "{prefix}cannot connect to {named}{at}: {}{next}",
                io_text(&e)
            ))
        }
        None => error::connect(format!("{prefix}cannot resolve '{host}': no addresses")),
    })
}

/// `--check`: the addresses of the server's name (of the `-4`/`-6`
/// family), each to be tried on its own, within `--timeout`.
pub async fn addresses(t: &ConnectOptions, limit: Duration) -> Result<Vec<SocketAddr>> {
    tokio::time::timeout(limit, resolve(&t.host, t.port, t))
        .await
        .map_err(|_| {
            error::connect(format!(
                "timed out after {} resolving '{}'",
                secs(limit),
                t.host
            ))
        })?
}

/// `--check`: one TCP connect to one address, and how long it took.
pub async fn connect_addr(addr: SocketAddr, limit: Duration) -> Result<(TcpStream, Duration)> {
    let start = Instant::now();
    match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok((s, start.elapsed()))
        }
        Ok(Err(e)) => Err(error::connect(format!(
            "cannot connect to {addr}: {}",
            io_text(&e)
        ))),
        Err(_) => Err(error::connect(format!(
            "no answer from {addr} within {}",
            secs(limit)
        ))),
    }
}

/// The addresses of a name, of the `-4`/`-6` family.
async fn resolve(host: &str, port: u16, t: &ConnectOptions) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| error::connect(format!("cannot resolve '{host}': {}", io_text(&e))))?
        .collect();
    only_family(addrs, host, t.family)
}

/// Through `--proxy`: a connection to the proxy, then its tunnel to the
/// server. `socks5://` resolves the server's name here and tries each
/// address through the proxy; `socks5h://` and `http://` pass the name on.
async fn via_proxy(p: &Proxy, t: &ConnectOptions) -> Result<Tcp> {
    let shown = p.display();
    let fail = |why: String| error::connect(format!("proxy {shown}: {why}"));
    let targets: Vec<Option<SocketAddr>> = match p.kind {
        proxy::Kind::Socks5 => resolve(&t.host, t.port, t)
            .await?
            .into_iter()
            .map(Some)
            .collect(),
        proxy::Kind::Socks5h | proxy::Kind::Http => vec![None],
    };
    let mut last = None;
    for server in targets {
        let (mut stream, addr, took) = direct(&p.host, p.port, t, Some(&shown)).await?;
        let start = Instant::now();
        let target = match server {
            Some(a) => proxy::Target::Addr(a),
            None => proxy::Target::Name(&t.host, t.port),
        };
        match proxy::tunnel(&mut stream, p, &target).await {
            Ok(()) => {
                return Ok(Tcp {
                    stream,
                    addr,
                    took: took + start.elapsed(),
                    proxy: Some(shown.clone()),
                    server,
                });
            }
            Err(why) => {
                if t.verbose {
                    error::say(&format!("imaptalk: proxy {shown}: {why}"));
                }
                last = Some(why);
            }
        }
    }
    Err(fail(last.unwrap_or_else(|| {
        format!("'{}' has no addresses", t.host)
    })))
}

/// `-4` / `-6`: the addresses of that family, or why there are none.
fn only_family(
    addrs: Vec<SocketAddr>,
    host: &str,
    family: Option<Family>,
) -> Result<Vec<SocketAddr>> {
    let Some(family) = family else {
        return Ok(addrs);
    };
    let (wanted, other): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| Family::of(a) == family);
    if !wanted.is_empty() || other.is_empty() {
        return Ok(wanted);
    }
    let others: Vec<String> = other.iter().map(|a| a.ip().to_string()).collect();
    Err(error::connect(format!(
        "'{}' has no {} address ({} asks for one; it has {})",
        host,
        family.name(),
        family.flag(),
        others.join(", ")
    )))
}

/// TCP keepalive: idle time before the first probe, then the interval
/// and number of unanswered probes after which the connection is dead.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
pub const KEEPALIVE_RETRIES: u32 = 6;

/// Without keepalive, a read from a server that vanished (a NAT entry
/// expired, a host powered off) waits forever: nothing is ever sent that
/// could fail. With it, such a connection fails after about two minutes
/// of silence, with or without `--timeout`. Best effort: a platform that
/// refuses the option still works, it just cannot notice a dead peer.
fn keepalive(s: &TcpStream) {
    let params = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE);
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "windows"
    ))]
    let params = params
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    let _ = socket2::SockRef::from(s).set_tcp_keepalive(&params);
}
