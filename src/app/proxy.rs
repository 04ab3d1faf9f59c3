//! `--listen`: proxy mode. imaptalk listens for mail clients and relays
//! each one to SERVER over a connection of its own (made with the same
//! flags as a normal session), showing both sides of every conversation
//! as it happens, secrets masked.
//!
//! One task per client connection ([`conn`]), all on the one thread of
//! the runtime; their output goes through one writer thread ([`output`]);
//! [`view`] is how a connection is shown. Ctrl-C (or SIGTERM) stops
//! listening, closes every connection and exits 0.

pub mod conn;
pub mod output;
pub mod records;
pub mod view;

use crate::app::certinfo;
use crate::app::cli::Settings;
use crate::app::signals::Signals;
use crate::core::options::Security;
use crate::error;
use crate::io::listen::{GENERATED_NAMES, ListenOptions, ListenTls};
use crate::io::tls::TlsSetup;
use crate::io::transcript::{self, Literals};
use crate::text::io_text;
use anyhow::Result;
use output::{Msg, Output, Targets};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc::SyncSender;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use view::{Term, View};

/// How long connections get to close once the proxy is stopped.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// What every connection shares.
pub struct Context {
    pub settings: Settings,
    /// Toward the server (`--tls`, `--starttls`).
    pub upstream_tls: Option<TlsSetup>,
    /// Toward clients: `--listen-tls`, or STARTTLS when a client asks.
    pub listen_tls: Option<Rc<ListenTls>>,
    /// `--listen-tls`.
    pub implicit_tls: bool,
    out: Option<SyncSender<Msg>>,
    /// stdout is a terminal: it shows the view; otherwise records.
    terminal: bool,
    /// Records are kept (stdout is not a terminal, or `--log FILE`).
    records: bool,
    literals: Literals,
}

impl Context {
    /// The view of connection `n`.
    pub fn view(&self, n: u64) -> View {
        let term = match (&self.out, self.terminal) {
            (Some(tx), true) => Some(Term::new(
                tx.clone(),
                n,
                self.settings.output.color,
                self.settings.output.full,
            )),
            _ => None,
        };
        let log = match (&self.out, self.records) {
            (Some(tx), true) => {
                let tx = tx.clone();
                let send: records::Handover =
                    Box::new(move |b| tx.send(Msg::Log(b)).map_err(|_| ()));
                Some(records::Records::new(send, n, self.literals))
            }
            _ => None,
        };
        View::new(term, log)
    }
}

/// Runs the proxy until Ctrl-C; returns the exit code.
pub async fn run(settings: Settings, opts: ListenOptions) -> Result<u8> {
    // Everything that can be wrong with the flags fails before listening.
    let file = match &settings.log {
        Some(l) => Some((
            transcript::open_file(&l.path)?,
            l.path.display().to_string(),
        )),
        None => None,
    };
    let literals = opts.literals;
    let listen_tls = match &opts.cert {
        Some((cert, key)) => ListenTls::from_files(cert, key)?,
        None => ListenTls::generate()?,
    };
    let upstream_tls = match settings.session.security {
        Security::Plain => None,
        Security::Tls | Security::StartTls => Some(TlsSetup::new(&settings.tls)?),
    };
    let listener = TcpListener::bind(opts.listen).await.map_err(|e| {
        error::connect(format!("cannot listen on {}: {}", opts.listen, io_text(&e)))
    })?;
    let local = listener.local_addr().unwrap_or(opts.listen);
    announce(&settings, &opts, local, &listen_tls);
    let terminal = settings.output.render;
    let output = Output::start(Targets { terminal, file })
        .map_err(|e| error::lost(format!("cannot start the output: {}", io_text(&e))))?;
    let ctx = Rc::new(Context {
        records: !terminal || settings.log.is_some(),
        settings,
        upstream_tls,
        listen_tls: Some(Rc::new(listen_tls)),
        implicit_tls: opts.tls,
        out: output.sender(),
        terminal,
        literals,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut signals = Signals::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut n: u64 = 0;
    let failure = output.failure.clone();
    let stopped_by = loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    n += 1;
                    tasks.spawn_local(conn::serve(ctx.clone(), n, tcp, peer, stop_rx.clone()));
                }
                Err(e) => {
                    // Out of file descriptors, most likely: say so, and
                    // give the connections being served time to end.
                    error::say(&format!("imaptalk: cannot accept a connection: {}", io_text(&e)));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            kind = signals.recv() => break format!("stopped by {}", kind.name()),
            () = failure.notify.notified() => break "stopped: stdout was closed".to_string(),
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    };
    drop(listener);
    let _ = stop_tx.send(true);
    let all_ended = tokio::time::timeout(STOP_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    if !all_ended {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    drop(ctx);
    output.finish();
    if let Some(e) = failure.take()
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(error::lost(format!(
            "cannot write the output to stdout: {}",
            io_text(&e)
        )));
    }
    error::say(&format!(
        "imaptalk: {stopped_by}: {n} connection{} served",
        if n == 1 { "" } else { "s" }
    ));
    Ok(0)
}

/// The first lines on stderr: where to point the mail client, and how
/// to trust the proxy's certificate.
fn announce(settings: &Settings, opts: &ListenOptions, local: SocketAddr, tls: &ListenTls) {
    let how = match settings.session.security {
        Security::Plain => "plaintext",
        Security::Tls => "TLS",
        Security::StartTls => "STARTTLS",
    };
    let client = if opts.tls {
        "clients connect with TLS (--listen-tls)"
    } else {
        "clients connect in plaintext, or STARTTLS"
    };
    error::say(&format!(
        "imaptalk: listening on {local}, relaying each client to {} ({how}); {client}; Ctrl-C stops",
        settings.connect.display()
    ));
    let host = &settings.connect.host;
    let local_server = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback());
    if settings.session.security == Security::Plain && !local_server {
        error::say(&format!(
            "imaptalk: warning: the connections to {} are not encrypted (add --tls or --starttls): what clients send, passwords included, crosses the network in plaintext",
            settings.connect.display()
        ));
    }
    if !local.ip().is_loopback() {
        error::say(&format!(
            "imaptalk: warning: --listen-any: {local} is reachable from other machines, and whoever connects gets a connection to {} through this proxy",
            settings.connect.display()
        ));
    }
    let what = if tls.generated {
        format!(
            "a certificate generated for this run ({})",
            GENERATED_NAMES.join(", ")
        )
    } else {
        "the certificate of --listen-cert".to_string()
    };
    error::say(&format!(
        "imaptalk: TLS toward clients uses {what}, SHA-256 {}",
        certinfo::fingerprint(&tls.leaf)
    ));
}
