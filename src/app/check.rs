//! `--check`: a server's health report in one command. Connects to
//! every address and port, reads the greeting, probes TLS (each version
//! on its own, the certificate point by point), STARTTLS and its command
//! injection, the capabilities before TLS, after TLS and after login
//! (with `-u`), the server's ID and the round-trip time, and writes one
//! finding per line, or one JSON document.
//!
//! Read-only by construction: the commands sent are CAPABILITY, NOOP,
//! ID, STARTTLS, the login, LIST, EXAMINE and LOGOUT; a password is only
//! sent over TLS to a server whose certificate verified as it would for
//! a session.
//!
//! [`report`] holds the findings and the rules (no IO); [`probe`] the
//! conversations.

pub mod plan;
pub mod probe;
pub mod report;

use crate::app::certinfo;
use crate::app::cli::Settings;
use crate::app::signals;
use crate::error;
use crate::io::tcp;
use crate::io::tls::{ChainStatus, Presented, TlsSetup, Verdict, Version};
use crate::protocol::framer::Status;
use crate::text::{duration, escape, escape_str};
use anyhow::Result;
pub use plan::{CheckOptions, Port};
use probe::{Imap, Injection};
use report::{Finding, Level, Report, Value, ms};
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long each step may take without `--timeout`.
pub const DEFAULT_STEP: Duration = Duration::from_secs(10);

const REACH: &str = "reachability";
const CAPS: &str = "capabilities";
const SERVER: &str = "server";
const LOGIN: &str = "login";
const LATENCY: &str = "latency";

fn group_of(p: Port) -> String {
    if p.implicit {
        format!("port {} (implicit TLS)", p.number)
    } else {
        format!("port {} (plaintext, STARTTLS)", p.number)
    }
}

/// Runs the check and writes the report; the exit code: 0 nothing
/// failed, 1 something did (or warned, with `--strict`), 3 the server
/// could not be reached at all, 130/143 interrupted.
pub async fn main(settings: Settings) -> Result<u8> {
    let Some(opts) = settings.check.clone() else {
        return Ok(0);
    };
    let mut signals = signals::Signals::new();
    let (report, reached) = tokio::select! {
        r = check(&settings, &opts) => r?,
        kind = signals.recv() => {
            error::say(&format!(
                "imaptalk: interrupted by {} during the check; no report",
                kind.name()
            ));
            return Ok(kind.exit_code());
        }
    };
    let text = if opts.json {
        report.json()
    } else {
        report.text(settings.output.color)
    };
    let written = match &settings.output.file {
        Some(file) => {
            let mut f = file.clone();
            f.write_all(text.as_bytes()).and_then(|()| f.flush())
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
    };
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(0);
        }
        return Err(error::lost(format!(
            "cannot write the report: {}",
            crate::text::io_text(&e)
        )));
    }
    if !reached {
        return Ok(error::Class::Connect.exit_code());
    }
    Ok(report.exit_code(opts.strict))
}

/// A TLS connection kept for the checks that need one session: the
/// server's ID, the login, the latency.
struct Kept {
    imap: Imap,
    port: u16,
    /// The capabilities over TLS.
    caps: Vec<String>,
    /// The certificate verified as it would for a session (a password
    /// may go there).
    verified: Option<String>,
    /// TLS is up (a plaintext-only port is kept for ID and latency).
    tls: bool,
}

/// What one port told about capabilities, for the extension table.
#[derive(Default)]
struct Seen {
    plain: Option<Vec<String>>,
    tls: Option<Vec<String>>,
    login: Option<Vec<String>>,
}

async fn check(s: &Settings, opts: &CheckOptions) -> Result<(Report, bool)> {
    let step = s.session.timeout.unwrap_or(DEFAULT_STEP);
    let mut r = match opts.ports.as_slice() {
        [one] => Report::new(crate::text::host_port(&s.connect.host, one.number)),
        _ => Report::new(s.connect.host.clone()),
    };
    r.group(REACH);
    for p in &opts.ports {
        r.group(&group_of(*p));
    }
    for g in [CAPS, SERVER, LOGIN, LATENCY] {
        r.group(g);
    }
    // Built once: a --cert or --cafile that cannot be used is a usage
    // error before anything is connected, and --keylog warns once. One
    // handshake at a time uses it (each records what it was shown).
    let setup = TlsSetup::for_check(&s.tls)?;
    let reachable = reachability(s, opts, step, &mut r).await;
    let mut seen = Seen::default();
    let mut deep_done = false;
    // 993 first: a login goes there when it can.
    let mut order = opts.ports.clone();
    order.sort_by_key(|p| !p.implicit);
    for p in order {
        if !reachable.contains(&p.number) {
            continue;
        }
        let got = if p.implicit {
            implicit(s, p, step, &setup, &mut r, &mut seen).await?
        } else {
            starttls(s, p, step, &setup, &mut r, &mut seen).await?
        };
        // At once, on the first session that works: a server may end an
        // idle connection before the other port's checks are done.
        match got {
            Some(k) if !deep_done => {
                deep(s, Some(k), &mut r, &mut seen).await;
                deep_done = true;
            }
            Some(k) => k.imap.logout().await,
            None => {}
        }
    }
    if !deep_done {
        deep(s, None, &mut r, &mut seen).await;
    }
    if seen.plain.is_some() || seen.tls.is_some() {
        let mut columns: Vec<(&str, Option<&[String]>)> = Vec::new();
        if opts.ports.iter().any(|p| !p.implicit) {
            columns.push(("before TLS", seen.plain.as_deref()));
        }
        columns.push(("after TLS", seen.tls.as_deref()));
        if s.login.is_some() {
            columns.push(("after login", seen.login.as_deref()));
        }
        let best = seen
            .login
            .as_deref()
            .or(seen.tls.as_deref())
            .or(seen.plain.as_deref())
            .unwrap_or_default();
        let offered: Vec<String> = report::NOTABLE
            .iter()
            .filter(|e| report::has(best, e))
            .map(|e| e.to_string())
            .collect();
        let mut f = Finding::ok(
            "caps.notable",
            format!(
                "{} of {} notable extensions offered: {}",
                offered.len(),
                report::NOTABLE.len(),
                offered.join(" ")
            ),
        );
        f.detail = report::extension_table(&columns);
        let table = report::NOTABLE
            .iter()
            .map(|e| (e.to_string(), Value::Bool(report::has(best, e))))
            .collect();
        r.add(CAPS, f.with("extensions", Value::Map(table)));
    }
    Ok((r, !reachable.is_empty()))
}

/// DNS and a TCP connect to each address on each port. Returns the
/// ports that took a connection.
async fn reachability(
    s: &Settings,
    opts: &CheckOptions,
    step: Duration,
    r: &mut Report,
) -> Vec<u16> {
    let mut ok = Vec::new();
    if let Some(proxy) = &s.connect.proxy {
        for p in &opts.ports {
            let start = Instant::now();
            let id = format!("reach.{}.proxy", p.number);
            match Imap::connect(&s.connect, p.number, None, step).await {
                Ok((imap, _)) => {
                    imap.close().await;
                    ok.push(p.number);
                    r.add(
                        REACH,
                        Finding::ok(
                            id,
                            format!(
                                "port {} connected through {} in {}",
                                p.number,
                                proxy.display(),
                                duration(start.elapsed())
                            ),
                        )
                        .with("ms", ms(start.elapsed())),
                    );
                }
                Err(e) => r.add(
                    REACH,
                    Finding::fail(
                        id,
                        error::message(&e),
                        "check the proxy and that the server listens on this port",
                    ),
                ),
            }
        }
        return ok;
    }
    let addrs = match tcp::addresses(&s.connect, step).await {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => {
            r.add(
                REACH,
                Finding::fail(
                    "dns",
                    format!("'{}' has no addresses", escape_str(&s.connect.host)),
                    "publish an A and/or AAAA record for the server",
                ),
            );
            return ok;
        }
        Err(e) => {
            r.add(
                REACH,
                Finding::fail(
                    "dns",
                    error::message(&e),
                    "publish an A and/or AAAA record for the server (and check the name)",
                ),
            );
            return ok;
        }
    };
    let mut ips: Vec<std::net::IpAddr> = Vec::new();
    for a in &addrs {
        if !ips.contains(&a.ip()) {
            ips.push(a.ip());
        }
    }
    let shown: Vec<String> = ips
        .iter()
        .map(|ip| format!("{ip} ({})", family(ip)))
        .collect();
    let v6 = ips.iter().any(std::net::IpAddr::is_ipv6);
    r.add(
        REACH,
        Finding::ok(
            "dns",
            format!("{}: {}", escape_str(&s.connect.host), shown.join(", ")),
        )
        .with(
            "ipv4",
            ips.iter()
                .filter(|i| i.is_ipv4())
                .map(|i| i.to_string())
                .collect::<Vec<_>>(),
        )
        .with(
            "ipv6",
            ips.iter()
                .filter(|i| i.is_ipv6())
                .map(|i| i.to_string())
                .collect::<Vec<_>>(),
        )
        .with("has_ipv6", v6),
    );
    for p in &opts.ports {
        let mut any = false;
        let mut failed = Vec::new();
        for ip in &ips {
            let addr = SocketAddr::new(*ip, p.number);
            let id = format!("reach.{}.{ip}", p.number);
            match tcp::connect_addr(addr, step).await {
                Ok((stream, took)) => {
                    drop(stream);
                    any = true;
                    r.add(
                        REACH,
                        Finding::ok(
                            id,
                            format!("{addr} ({}): connected in {}", family(ip), duration(took)),
                        )
                        .with("address", ip.to_string())
                        .with("port", u64::from(p.number))
                        .with("ms", ms(took)),
                    );
                }
                Err(e) => failed.push((id, addr, error::message(&e))),
            }
        }
        // One address that fails while another works is a WARN: clients
        // that pick it wait or fail. None working is a FAIL.
        for (id, addr, why) in failed {
            let f = if any {
                Finding::warn(
                    id,
                    why,
                    format!("make the server listen on {addr} too, or remove the address from DNS"),
                )
            } else {
                Finding::fail(
                    id,
                    why,
                    format!(
                        "start the server or open port {} in the firewall (is it the right port?)",
                        p.number
                    ),
                )
            };
            r.add(
                REACH,
                f.with("address", addr.ip().to_string())
                    .with("port", u64::from(p.number)),
            );
        }
        if any {
            ok.push(p.number);
        }
    }
    ok
}

fn family(ip: &std::net::IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Port 993 style: the handshake, the certificate, the greeting, the
/// capabilities, each TLS version.
async fn implicit(
    s: &Settings,
    p: Port,
    step: Duration,
    setup: &TlsSetup,
    r: &mut Report,
    seen: &mut Seen,
) -> Result<Option<Kept>> {
    let g = group_of(p);
    let n = p.number;
    let (mut imap, took) = match Imap::connect(&s.connect, n, Some(setup), step).await {
        Ok(x) => x,
        Err(e) => {
            r.add(
                &g,
                Finding::fail(
                    format!("tls.{n}.handshake"),
                    error::message(&e),
                    "make the server speak TLS on this port (or check the plaintext port with --check HOST:143)",
                ),
            );
            certificate(r, &g, n, setup.take_presented(), setup.name());
            versions(s, p, step, r).await;
            return Ok(None);
        }
    };
    negotiated(r, &g, n, &imap, took.unwrap_or_default());
    let presented = setup.take_presented();
    let verified = trusted(presented.as_ref());
    certificate(r, &g, n, presented, setup.name());
    let Some(greeting_caps) = greeting(&mut imap, r, &g, n, true).await else {
        versions(s, p, step, r).await;
        imap.close().await;
        return Ok(None);
    };
    let id = format!("caps.{n}.tls");
    let fix = "the server must answer CAPABILITY";
    let Some(caps) = caps_found(&mut imap, r, id, "over TLS", greeting_caps, fix).await else {
        imap.close().await;
        versions(s, p, step, r).await;
        return Ok(None);
    };
    seen.tls.get_or_insert_with(|| caps.clone());
    versions(s, p, step, r).await;
    Ok(Some(Kept {
        imap,
        port: n,
        caps,
        verified,
        tls: true,
    }))
}

/// Port 143 style: the greeting and capabilities in plaintext, STARTTLS
/// offered, plaintext logins, the upgrade and the certificate, the
/// capabilities over TLS and how they changed, the injection probe, each
/// TLS version.
async fn starttls(
    s: &Settings,
    p: Port,
    step: Duration,
    setup: &TlsSetup,
    r: &mut Report,
    seen: &mut Seen,
) -> Result<Option<Kept>> {
    let g = group_of(p);
    let n = p.number;
    let (mut imap, _) = match Imap::connect(&s.connect, n, None, step).await {
        Ok(x) => x,
        Err(e) => {
            r.add(
                &g,
                Finding::fail(
                    format!("greeting.{n}"),
                    error::message(&e),
                    "check that the server listens on this port",
                ),
            );
            return Ok(None);
        }
    };
    let Some(greeting_caps) = greeting(&mut imap, r, &g, n, false).await else {
        imap.close().await;
        return Ok(None);
    };
    let id = format!("caps.{n}.plaintext");
    let fix = "the server must answer CAPABILITY";
    let Some(plain) = caps_found(&mut imap, r, id, "before TLS", greeting_caps, fix).await else {
        imap.close().await;
        return Ok(None);
    };
    seen.plain = Some(plain.clone());
    let offered = report::has(&plain, "STARTTLS");
    r.add(
        &g,
        if offered {
            Finding::ok(format!("starttls.{n}.offered"), "STARTTLS is offered")
        } else {
            Finding::fail(
                format!("starttls.{n}.offered"),
                "STARTTLS is not offered: everything on this port, passwords included, goes in plaintext",
                "enable TLS on the server (Dovecot: ssl = yes with ssl_cert and ssl_key), or close this port and use 993",
            )
        }
        .with("offered", offered),
    );
    let logins = report::plaintext_logins(&plain);
    r.add(
        &g,
        if logins.is_empty() {
            Finding::ok(format!("starttls.{n}.plaintext-login"), "no login is offered before TLS (LOGINDISABLED, no AUTH=PLAIN or AUTH=LOGIN)")
        } else {
            Finding::warn(
                format!("starttls.{n}.plaintext-login"),
                format!("a password may be sent before TLS: {}", logins.join(", ")),
                "refuse logins without TLS (Dovecot: disable_plaintext_auth = yes, or ssl = required; Postfix-style servers: advertise LOGINDISABLED before STARTTLS)",
            )
        }
        .with("offered", logins),
    );
    if !offered {
        // Still good for ID and the latency; never for a login.
        return Ok(Some(Kept {
            imap,
            port: n,
            caps: plain,
            verified: None,
            tls: false,
        }));
    }
    let took = match imap.starttls(setup).await {
        Ok(t) => t,
        Err(why) => {
            r.add(
                &g,
                Finding::fail(
                    format!("tls.{n}.handshake"),
                    why,
                    "fix STARTTLS on the server (its TLS settings and certificate)",
                ),
            );
            certificate(r, &g, n, setup.take_presented(), setup.name());
            imap.close().await;
            injection(s, p, step, setup, r, false).await;
            versions(s, p, step, r).await;
            return Ok(None);
        }
    };
    negotiated(r, &g, n, &imap, took);
    let presented = setup.take_presented();
    let verified = trusted(presented.as_ref());
    certificate(r, &g, n, presented, setup.name());
    let id = format!("caps.{n}.tls");
    let fix = "the server must answer CAPABILITY after STARTTLS";
    let Some(tls) = caps_found(&mut imap, r, id, "after STARTTLS", None, fix).await else {
        imap.close().await;
        injection(s, p, step, setup, r, true).await;
        versions(s, p, step, r).await;
        return Ok(None);
    };
    seen.tls.get_or_insert_with(|| tls.clone());
    let (gone, new) = report::suspicious_changes(&plain, &tls);
    r.add(
        CAPS,
        if gone.is_empty() && new.is_empty() {
            Finding::ok(format!("caps.{n}.changed"), "the capabilities over TLS are those of plaintext, with the expected changes (STARTTLS, LOGINDISABLED, AUTH=)")
        } else {
            let mut parts = Vec::new();
            if !gone.is_empty() {
                parts.push(format!("only before TLS: {}", escape_str(&gone.join(" "))));
            }
            if !new.is_empty() {
                parts.push(format!("only after TLS: {}", escape_str(&new.join(" "))));
            }
            Finding::warn(
                format!("caps.{n}.changed"),
                format!("the capabilities change between plaintext and TLS beyond the expected: {}", parts.join("; ")),
                "something other than the server answers in plaintext (a middlebox or proxy rewriting the list, or another server behind a TLS proxy): find it; clients must ask again after STARTTLS",
            )
        }
        .with("only_plaintext", gone)
        .with("only_tls", new),
    );
    injection(s, p, step, setup, r, true).await;
    versions(s, p, step, r).await;
    Ok(Some(Kept {
        imap,
        port: n,
        caps: tls,
        verified,
        tls: true,
    }))
}

/// The greeting: how long it took, its status and text. Returns the
/// capabilities it carried (`Some(None)`: none), or None when the
/// session cannot go on (BYE, PREAUTH before STARTTLS, nothing).
async fn greeting(
    imap: &mut Imap,
    r: &mut Report,
    g: &str,
    n: u16,
    tls: bool,
) -> Option<Option<Vec<String>>> {
    let id = format!("greeting.{n}");
    let start = Instant::now();
    let resp = match imap.read().await {
        Ok(x) => x,
        Err(e) => {
            let hint = if tls {
                "the server must greet (* OK) right after the TLS handshake"
            } else {
                "the server must greet (* OK) at once; if this port speaks TLS from the first byte, check it with --tls"
            };
            r.add(
                g,
                Finding::fail(id, format!("no greeting: {}", error::message(&e)), hint),
            );
            return None;
        }
    };
    let took = start.elapsed();
    let line = escape(resp.trimmed());
    let status = resp.status();
    let caps = resp.capabilities();
    let word = match status {
        Some(Status::Ok) => "OK",
        Some(Status::Preauth) => "PREAUTH",
        Some(Status::Bye) => "BYE",
        _ => "not IMAP",
    };
    let f = match status {
        Some(Status::Ok) if took > report::GREETING_SLOW => Finding::warn(
            id,
            format!("greeted after {}: {line}", duration(took)),
            "find what delays the greeting (reverse DNS lookups, an overloaded login process, a tarpit); every client waits for it",
        ),
        Some(Status::Ok) => Finding::ok(id, format!("greeted in {}: {line}", duration(took))),
        Some(Status::Preauth) if !tls => Finding::fail(
            id,
            format!("PREAUTH in plaintext: a session without TLS or a login ({line})"),
            "never pre-authenticate a network port; STARTTLS is impossible after PREAUTH",
        ),
        Some(Status::Preauth) => Finding::warn(
            id,
            format!("PREAUTH: logged in without credentials ({line})"),
            "pre-authentication is for local ports; require a login",
        ),
        Some(Status::Bye) => Finding::fail(
            id,
            format!("the server refuses connections: {line}"),
            "see the server's reason; it may be overloaded or refusing this address",
        ),
        _ => Finding::fail(
            id,
            format!("this is not an IMAP greeting: {line}"),
            "check that this port is IMAP",
        ),
    };
    r.add(
        g,
        f.with("ms", ms(took))
            .with("status", word)
            .with("text", String::from_utf8_lossy(resp.trimmed()).into_owned())
            .with(
                "capabilities",
                caps.clone().map_or(Value::Null, Value::from),
            ),
    );
    matches!(status, Some(Status::Ok)).then_some(caps)
}

/// The capability list: the one given (from the greeting) or a
/// CAPABILITY command's.
async fn capabilities(imap: &mut Imap, known: Option<Vec<String>>) -> Result<Vec<String>> {
    if let Some(c) = known {
        return Ok(c);
    }
    let a = imap.command("CAPABILITY").await?;
    match a.capabilities() {
        Some(c) if a.ok() => Ok(c),
        _ => Err(error::lost(format!(
            "CAPABILITY was answered: {}",
            escape(a.done.trimmed())
        ))),
    }
}

/// The capabilities (`known` from the greeting, else asked for) as the
/// finding `id`; None, with a FAIL saying `fix`, when the server would not
/// tell them.
async fn caps_found(
    imap: &mut Imap,
    r: &mut Report,
    id: String,
    when: &str,
    known: Option<Vec<String>>,
    fix: &str,
) -> Option<Vec<String>> {
    match capabilities(imap, known).await {
        Ok(c) => {
            r.add(CAPS, caps_finding(&id, when, &c));
            Some(c)
        }
        Err(e) => {
            r.add(CAPS, Finding::fail(id, error::message(&e), fix));
            None
        }
    }
}

fn caps_finding(id: &str, when: &str, caps: &[String]) -> Finding {
    Finding::ok(id, format!("{when}: {}", escape_str(&caps.join(" ")))).with("list", caps.to_vec())
}

fn negotiated(r: &mut Report, g: &str, n: u16, imap: &Imap, took: Duration) {
    let Some(i) = imap.tls_info() else {
        return;
    };
    let group = i.group.clone().unwrap_or_else(|| "unknown".into());
    r.add(
        g,
        Finding::ok(
            format!("tls.{n}.negotiated"),
            format!(
                "{}, cipher {}, key exchange {group}, handshake {}",
                i.version,
                i.suite,
                duration(took)
            ),
        )
        .with("version", i.version.clone())
        .with("cipher", i.suite.clone())
        .with("key_exchange", group)
        .with("ms", ms(took)),
    );
}

/// The verdict of a session's own verification, when it would have let
/// a session go on: what a password may be sent to.
fn trusted(p: Option<&Presented>) -> Option<String> {
    match &p?.verdict {
        Verdict::Trusted => Some("trusted chain".into()),
        Verdict::Pinned(why) => Some((*why).to_string()),
        Verdict::Unchecked | Verdict::Rejected(_) => None,
    }
}

/// The chain, the name, the expiry and the key, each a finding.
fn certificate(r: &mut Report, g: &str, n: u16, p: Option<Presented>, name: &str) {
    let Some(p) = p else {
        return;
    };
    let now = certinfo::now();
    let summaries: Vec<_> = p.chain.iter().map(|c| certinfo::summarize(c)).collect();
    let Some(Ok(leaf)) = summaries.first() else {
        r.add(
            g,
            Finding::fail(
                format!("tls.{n}.chain"),
                "the server's certificate cannot be read",
                "install a well-formed certificate",
            ),
        );
        return;
    };
    let subjects: Vec<String> = summaries
        .iter()
        .map(|s| s.as_ref().map_or_else(|e| e.clone(), |s| s.subject.clone()))
        .collect();
    let self_signed = leaf.subject == leaf.issuer;
    if let Some(x) = &p.examined {
        let id = format!("tls.{n}.chain");
        let sent = format!(
            "{} sent: {}",
            plural(p.chain.len(), "certificate"),
            subjects.join(" <- ")
        );
        let f = match &x.chain {
            ChainStatus::Trusted => Finding::ok(id, format!("complete and trusted ({sent})")).with("status", "trusted"),
            ChainStatus::Pinned(why) if self_signed => Finding::warn(
                id,
                format!("self-signed, trusted here only because {why} ({sent})"),
                "mail clients refuse it unless each is told to trust it: use a certificate from a CA (Let's Encrypt is free)",
            )
            .with("status", "self-signed"),
            ChainStatus::Pinned(why) => Finding::ok(id, format!("trusted because {why} ({sent})")).with("status", "pinned"),
            ChainStatus::SelfSigned => Finding::fail(
                id,
                format!("self-signed: {} ({sent})", leaf.subject),
                "use a certificate from a CA (Let's Encrypt is free); to check this one as it is, trust it with --pin (printed by --show-certs)",
            )
            .with("status", "self-signed"),
            ChainStatus::Incomplete { issuer } => Finding::fail(
                id,
                format!("incomplete: the chain stops at the issuer '{issuer}', whose certificate the server does not send and which is not trusted here: an intermediate certificate is missing, or this is a private CA ({sent})"),
                "configure the full chain, the server's certificate followed by its intermediates (the 'fullchain.pem' of Let's Encrypt; Dovecot: ssl_cert = </path/fullchain.pem); for a private CA, give it with --cafile",
            )
            .with("status", "incomplete")
            .with("missing_issuer", issuer.clone()),
            ChainStatus::Untrusted(why) => Finding::fail(
                id,
                format!("not trusted: {why} ({sent})"),
                "use a certificate from a CA that mail clients trust; for a private CA, give it with --cafile",
            )
            .with("status", "untrusted"),
        };
        r.add(g, f.with("chain", subjects.clone()));
        let id = format!("tls.{n}.name");
        let shown = escape_str(name);
        r.add(
            g,
            match &x.name {
                Ok(()) => Finding::ok(id, format!("valid for '{shown}' ({})", leaf.names.join(", "))),
                Err(why) => Finding::fail(
                    id,
                    format!("not valid for '{shown}': {why}"),
                    format!("get a certificate that names '{shown}' (as clients are configured), or check the name clients use with --servername"),
                ),
            }
            .with("name", name)
            .with("valid", x.name.is_ok())
            .with("names", leaf.names.clone()),
        );
    }
    // The certificate that expires first decides.
    if let Some((i, s)) = summaries
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().ok().map(|s| (i, s)))
        .min_by_key(|(_, s)| s.not_after)
    {
        let days = certinfo::days_left(s.not_after, now);
        let which = if i == 0 {
            "the server's certificate".to_string()
        } else {
            format!("certificate [{i}] of the chain ({})", s.subject)
        };
        let when = certinfo::date(s.not_after);
        let text = if days < 0 {
            format!(
                "{which} expired {} ago ({when})",
                plural(days.unsigned_abs() as usize, "day")
            )
        } else {
            format!(
                "{which} expires in {} ({when})",
                plural(days as usize, "day")
            )
        };
        let id = format!("tls.{n}.expiry");
        let f = match report::expiry_level(days) {
            Level::Ok => Finding::ok(id, text),
            level => Finding::new(id, level, text).fix(format!(
                "renew it before it expires (certbot renew, or your CA), then reload the server; WARN under {} days, FAIL under {}",
                report::EXPIRY_WARN_DAYS,
                report::EXPIRY_FAIL_DAYS
            )),
        };
        r.add(
            g,
            f.with("days_left", days)
                .with("not_after", when)
                .with("subject", s.subject.clone())
                .with("index", i),
        );
    }
    if let Some((kind, name, bits)) = p.chain.first().and_then(|c| key_of(c)) {
        let id = format!("tls.{n}.key");
        let text = format!("{name}, {bits} bits");
        let f = match report::key_level(kind, bits) {
            Level::Ok => Finding::ok(id, text),
            level => Finding::new(id, level, format!("{text}: too weak or unknown to clients"))
                .fix("use an RSA key of 2048 bits or more, or an ECDSA P-256 key"),
        };
        r.add(g, f.with("type", name).with("bits", bits));
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The leaf's key: its kind, as people name it, and its size in bits.
fn key_of(der: &[u8]) -> Option<(report::KeyKind, String, usize)> {
    use x509_parser::public_key::PublicKey;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let spki = cert.public_key();
    let oid = spki.algorithm.algorithm.to_id_string();
    Some(match spki.parsed() {
        Ok(PublicKey::RSA(k)) => (report::KeyKind::Rsa, "RSA".into(), k.key_size()),
        Ok(PublicKey::EC(k)) => (report::KeyKind::Ec, "ECDSA".into(), k.key_size()),
        _ if oid == "1.3.101.112" => (report::KeyKind::Ed25519, "Ed25519".into(), 256),
        _ => (report::KeyKind::Other, format!("algorithm {oid}"), 0),
    })
}

/// Each TLS version on its own connection.
async fn versions(s: &Settings, p: Port, step: Duration, r: &mut Report) {
    let g = group_of(p);
    let n = p.number;
    let v13 = probe::version_probe(&s.connect, &s.tls, n, !p.implicit, Version::Tls13, step).await;
    let v12 = probe::version_probe(&s.connect, &s.tls, n, !p.implicit, Version::Tls12, step).await;
    let both_refused = v12.is_err() && v13.is_err();
    for (version, result, key) in [
        (Version::Tls13, &v13, "tls13"),
        (Version::Tls12, &v12, "tls12"),
    ] {
        let id = format!("tls.{n}.{key}");
        let f = match result {
            Ok(info) => Finding::ok(
                id,
                format!(
                    "{} accepted (cipher {}, key exchange {})",
                    version.name(),
                    info.suite,
                    info.group.as_deref().unwrap_or("unknown")
                ),
            )
            .with("cipher", info.suite.clone())
            .with(
                "key_exchange",
                info.group.clone().map_or(Value::Null, Value::from),
            ),
            Err(why) if both_refused => Finding::fail(
                id,
                format!("{} refused: {why}", version.name()),
                "enable TLS 1.2 and 1.3 on the server",
            ),
            Err(why) if version == Version::Tls13 => Finding::warn(
                id,
                format!("TLS 1.3 refused: {why}"),
                "enable TLS 1.3 (faster handshakes, no weak ciphers): a current OpenSSL and, for Dovecot, no ssl_max_protocol below TLSv1.3",
            ),
            Err(why) => Finding::warn(
                id,
                format!("TLS 1.2 refused: {why}"),
                "accept TLS 1.2 too: many mail clients (older Outlook, Windows 7/8, Android before 10) have no TLS 1.3 (Dovecot: ssl_min_protocol = TLSv1.2)",
            ),
        };
        r.add(&g, f.with("accepted", result.is_ok()));
    }
}

/// The STARTTLS command-injection probe, on a connection of its own.
async fn injection(
    s: &Settings,
    p: Port,
    step: Duration,
    setup: &TlsSetup,
    r: &mut Report,
    starttls_works: bool,
) {
    let g = group_of(p);
    let n = p.number;
    let id = format!("starttls.{n}.injection");
    let outcome = async {
        let (mut imap, _) = Imap::connect(&s.connect, n, None, step)
            .await
            .map_err(|e| error::message(&e))?;
        imap.read().await.map_err(|e| error::message(&e))?;
        let got = imap.injection_probe(setup).await;
        imap.close().await;
        Ok::<_, String>(got)
    }
    .await
    .unwrap_or_else(Injection::Inconclusive);
    let fix = "the server must discard whatever the client sent after STARTTLS before the TLS handshake (CVE-2011-0411): update it";
    let f = match outcome {
        Injection::Refused => Finding::ok(id, "a command sent with STARTTLS in one segment was discarded, not run inside TLS").with("result", "discarded"),
        Injection::Closed(why) => Finding::ok(id, format!("a command sent with STARTTLS in one segment was not run; the server closed the connection ({why})")).with("result", "closed"),
        Injection::Executed => Finding::fail(
            id,
            "vulnerable to STARTTLS command injection: a NOOP sent in the same segment as STARTTLS was run inside TLS; an attacker on the path can inject commands into the encrypted session",
            fix,
        )
        .with("result", "executed"),
        Injection::PlaintextAfterOk => Finding::fail(
            id,
            "after its OK to STARTTLS the server answered the command sent with it in plaintext, before the TLS handshake",
            fix,
        )
        .with("result", "plaintext"),
        Injection::HandshakeFailed(why) if starttls_works => Finding::ok(
            id,
            format!("a command sent with STARTTLS in one segment was not run: the server took it for TLS data and the handshake failed ({why})"),
        )
        .with("result", "handshake-failed"),
        Injection::HandshakeFailed(why) | Injection::Inconclusive(why) => Finding::warn(id, format!("could not be tested: {why}"), "make STARTTLS work, then check again").with("result", "inconclusive"),
    };
    r.add(&g, f);
}

/// On the one session kept: the server's ID, the login, the
/// capabilities after it, mailboxes, INBOX, the latency.
async fn deep(s: &Settings, kept: Option<Kept>, r: &mut Report, seen: &mut Seen) {
    let Some(mut k) = kept else {
        if s.login.is_some() {
            r.add(
                LOGIN,
                Finding::fail(
                    "login",
                    "not attempted: no TLS session could be set up, and imaptalk never sends a password in plaintext",
                    "fix the TLS findings above",
                ),
            );
        }
        return;
    };
    if report::has(&k.caps, "ID") {
        match k.imap.command("ID NIL").await {
            Ok(a) => {
                let pairs = a
                    .data
                    .iter()
                    .find_map(|d| report::parse_id(d.trimmed()))
                    .unwrap_or_default();
                let shown: Vec<String> = pairs
                    .iter()
                    .map(|(key, v)| {
                        format!(
                            "{}={}",
                            escape_str(key),
                            v.as_deref().map_or("NIL".into(), escape_str)
                        )
                    })
                    .collect();
                let text = if shown.is_empty() {
                    "ID offered, but the server does not say what it is".to_string()
                } else {
                    shown.join(", ")
                };
                let map = pairs
                    .into_iter()
                    .map(|(key, v)| (key, v.map_or(Value::Null, Value::Str)))
                    .collect();
                r.add(
                    SERVER,
                    Finding::ok("server.id", text).with("id", Value::Map(map)),
                );
            }
            Err(e) => r.add(
                SERVER,
                Finding::warn(
                    "server.id",
                    format!("ID failed: {}", error::message(&e)),
                    "the server offers ID: it must answer it",
                ),
            ),
        }
    } else {
        r.add(
            SERVER,
            Finding::ok("server.id", "the server does not offer ID (RFC 2971)")
                .with("id", Value::Null),
        );
    }
    if let (Some(login), Some(secret)) =
        (&s.login, s.login.as_ref().and_then(|l| l.secret.as_ref()))
    {
        logged_in(s, &mut k, login, secret, r, seen).await;
    }
    let (times, failure) = k.imap.noops(report::NOOPS).await;
    let id = "latency";
    let f = match (report::latency(&times), failure) {
        (_, Some(why)) => Finding::fail(
            id,
            format!(
                "NOOP {} of {} failed: {why}",
                times.len() + 1,
                report::NOOPS
            ),
            "find what makes the server slow or silent (load, storage, network)",
        ),
        (Some((median, worst)), None) if median > report::NOOP_SLOW => Finding::warn(
            id,
            format!(
                "slow: median {}, worst {} over {} NOOPs (port {})",
                duration(median),
                duration(worst),
                times.len(),
                k.port
            ),
            "find what makes the server slow (load, storage, network); clients feel every round trip",
        ),
        (Some((median, worst)), None) => Finding::ok(
            id,
            format!(
                "median {}, worst {} over {} NOOPs (port {})",
                duration(median),
                duration(worst),
                times.len(),
                k.port
            ),
        ),
        (None, None) => Finding::warn(id, "not measured", "check again"),
    };
    let stats = report::latency(&times);
    r.add(
        LATENCY,
        f.with("median_ms", stats.map_or(Value::Null, |s| ms(s.0)))
            .with("worst_ms", stats.map_or(Value::Null, |s| ms(s.1)))
            .with("samples", times.len())
            .with("port", u64::from(k.port)),
    );
    k.imap.logout().await;
}

/// `-u`: the login over TLS, and what a logged-in session shows.
async fn logged_in(
    s: &Settings,
    k: &mut Kept,
    login: &crate::app::auth::Login,
    secret: &crate::core::sasl::Secret,
    r: &mut Report,
    seen: &mut Seen,
) {
    let offered: Vec<String> = k
        .caps
        .iter()
        .filter(|c| c.starts_with("AUTH="))
        .cloned()
        .collect();
    let mut caps = crate::protocol::caps::Capabilities::default();
    caps.learn(format!("* CAPABILITY {}", k.caps.join(" ")).as_bytes());
    if !k.tls {
        r.add(
            LOGIN,
            Finding::fail(
                "login",
                format!("not attempted: port {} offers no TLS, and imaptalk never sends a password in plaintext", k.port),
                "enable TLS on the server (STARTTLS, or port 993)",
            ),
        );
        return;
    }
    if k.verified.is_none() {
        r.add(
            LOGIN,
            Finding::fail(
                "login",
                format!("not attempted on port {}: the certificate did not verify, and a password must only go to a server that proved who it is", k.port),
                "fix the certificate findings above, or trust the certificate with --cafile or --pin",
            ),
        );
        return;
    }
    let nonce = crate::app::driver::scram_nonce();
    let l = probe::Login {
        user: &login.user,
        secret,
        oauth2: login.source.is_oauth2(),
        mech: login.mech,
        nonce: &nonce,
        host: &s.connect.host,
        port: k.port,
    };
    let start = Instant::now();
    let result = k.imap.login(&l, &caps).await;
    let took = start.elapsed();
    let user = if login.user.is_empty() {
        "(no user)".to_string()
    } else {
        escape_str(&login.user)
    };
    let mech_name =
        |m: Option<crate::core::sasl::Mechanism>| m.map_or(Value::Null, |m| Value::from(m.name()));
    let used = match &result {
        Ok((m, _)) => Some(*m),
        Err((m, _)) => *m,
    };
    r.add(
        LOGIN,
        Finding::ok(
            "login.mechanisms",
            format!(
                "offered over TLS: {}; {}",
                if offered.is_empty() {
                    "no AUTH= mechanisms (LOGIN only)".to_string()
                } else {
                    escape_str(&offered.join(" "))
                },
                used.map_or("none usable".to_string(), |m| format!("using {}", m.name()))
            ),
        )
        .with("offered", offered.clone())
        .with("used", mech_name(used)),
    );
    let answer = match result {
        Ok((m, a)) if a.ok() => {
            r.add(
                LOGIN,
                Finding::ok(
                    "login",
                    format!(
                        "logged in as {user} with {} in {}",
                        m.name(),
                        duration(took)
                    ),
                )
                .with("user", login.user.clone())
                .with("mechanism", m.name())
                .with("ms", ms(took)),
            );
            a
        }
        Ok((m, a)) => {
            r.add(
                LOGIN,
                Finding::fail(
                    "login",
                    format!(
                        "login as {user} with {} refused: {}",
                        m.name(),
                        escape(a.done.trimmed())
                    ),
                    "check the user name and password (and the server's log)",
                )
                .with("user", login.user.clone())
                .with("mechanism", m.name()),
            );
            return;
        }
        Err((_, why)) => {
            r.add(
                LOGIN,
                Finding::fail(
                    "login",
                    format!("login as {user} failed: {why}"),
                    "check the user name, the password and the mechanisms the server offers",
                ),
            );
            return;
        }
    };
    let after = match answer.capabilities() {
        Some(c) => Some(c),
        None => capabilities(&mut k.imap, None).await.ok(),
    };
    if let Some(c) = &after {
        r.add(CAPS, caps_finding("caps.login", "after login", c));
        k.caps = c.clone();
    }
    seen.login = after;
    match k.imap.command("LIST \"\" \"*\"").await {
        Ok(a) if a.ok() => {
            let n = a
                .data
                .iter()
                .filter(|d| {
                    d.line()
                        .get(..7)
                        .is_some_and(|w| w.eq_ignore_ascii_case("* LIST "))
                })
                .count();
            r.add(
                LOGIN,
                Finding::ok(
                    "login.mailboxes",
                    format!(
                        "{} (LIST \"\" \"*\")",
                        plural(n, "mailbox").replace("mailboxs", "mailboxes")
                    ),
                )
                .with("count", n),
            );
        }
        Ok(a) => r.add(
            LOGIN,
            Finding::warn(
                "login.mailboxes",
                format!("LIST answered: {}", escape(a.done.trimmed())),
                "the server must list the mailboxes",
            ),
        ),
        Err(e) => r.add(
            LOGIN,
            Finding::warn(
                "login.mailboxes",
                format!("LIST failed: {}", error::message(&e)),
                "the server must list the mailboxes",
            ),
        ),
    }
    // EXAMINE, not SELECT: read-only, no \Recent or \Seen changes.
    match k.imap.command("EXAMINE INBOX").await {
        Ok(a) if a.ok() => {
            let exists = a.data.iter().find_map(|d| {
                let line = d.line();
                let rest = line.strip_prefix("* ")?;
                let (n, word) = rest.split_once(' ')?;
                word.eq_ignore_ascii_case("EXISTS")
                    .then(|| n.parse::<u64>().ok())
                    .flatten()
            });
            match exists {
                Some(count) => r.add(
                    LOGIN,
                    Finding::ok(
                        "login.inbox",
                        format!(
                            "INBOX holds {} (EXAMINE, read-only)",
                            plural(count as usize, "message")
                        ),
                    )
                    .with("messages", count),
                ),
                None => r.add(
                    LOGIN,
                    Finding::warn(
                        "login.inbox",
                        "EXAMINE INBOX gave no message count (EXISTS)",
                        "the server must report EXISTS on EXAMINE",
                    ),
                ),
            }
        }
        Ok(a) => r.add(
            LOGIN,
            Finding::warn(
                "login.inbox",
                format!("EXAMINE INBOX answered: {}", escape(a.done.trimmed())),
                "every account must have an INBOX",
            ),
        ),
        Err(e) => r.add(
            LOGIN,
            Finding::warn(
                "login.inbox",
                format!("EXAMINE INBOX failed: {}", error::message(&e)),
                "every account must have an INBOX",
            ),
        ),
    }
}
