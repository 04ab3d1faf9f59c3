//! The TCP connection to the server: name resolution, every address
//! tried in turn, keepalive.

use crate::error;
use crate::text::{io_text, secs};
use anyhow::Result;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
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
}

impl ConnectOptions {
    /// `host:port`, for messages.
    pub fn display(&self) -> String {
        host_port(&self.host, self.port)
    }
}

/// `host:port`, bracketing IPv6 addresses.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A connected socket, and how it got there (for `-v`).
pub struct Tcp {
    pub stream: TcpStream,
    /// The address actually connected to (a name may have several).
    pub addr: SocketAddr,
    /// Time for the TCP connect that succeeded (name resolution excluded).
    pub took: Duration,
}

/// Resolves and connects, trying every address the name has.
pub async fn connect_tcp(t: &ConnectOptions) -> Result<Tcp> {
    let work = async {
        let addrs: Vec<_> = tokio::net::lookup_host((t.host.as_str(), t.port))
            .await
            .map_err(|e| error::connect(format!("cannot resolve '{}': {}", t.host, io_text(&e))))?
            .collect();
        let mut last = None;
        for addr in &addrs {
            let start = Instant::now();
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    keepalive(&s);
                    return Ok(Tcp {
                        stream: s,
                        addr: *addr,
                        took: start.elapsed(),
                    });
                }
                Err(e) => {
                    if t.verbose {
                        error::say(&format!(
                            "imaptalk: cannot connect to {addr}: {}",
                            io_text(&e)
                        ));
                    }
                    last = Some((addr, e));
                }
            }
        }
        Err(match last {
            Some((addr, e)) => error::connect(format!(
                "cannot connect to {} ({addr}): {}",
                t.display(),
                io_text(&e)
            )),
            None => error::connect(format!("cannot resolve '{}': no addresses", t.host)),
        })
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
