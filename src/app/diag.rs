//! What `-v`, `--show-certs` and `--expiry-warn` report about the
//! connection: where it went, how long it took, what TLS negotiated, and
//! the server's certificate chain, even when verification rejected it.
//!
//! All of it goes to stderr, except the PEM of `--show-certs`, which is
//! the output asked for and goes to stdout.

use crate::app::certinfo;
use crate::io::tcp::Tcp;
use crate::io::tls::{ClientAuthSeen, Presented, TlsInfo, TlsSetup, Verdict};
use crate::text::duration;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

/// What to report about the connection.
#[derive(Clone, Debug, Default)]
pub struct DiagOptions {
    /// `-v`: connection and TLS details on stderr.
    pub verbose: bool,
    /// `--show-certs`: print the chain as PEM and exit.
    pub show_certs: bool,
    /// `--expiry-warn`: exit 5 when a certificate expires within this many days.
    pub expiry_warn: Option<u32>,
    /// `-o FILE` with `--show-certs`: the PEM goes there, not to stdout.
    pub pem_to: Option<crate::app::render::OutputFile>,
}

/// `-v`: the address actually connected to.
pub fn connected(settings: &DiagOptions, tcp: &Tcp, tls_follows: bool) {
    if !settings.verbose {
        return;
    }
    let family = if tcp.addr.is_ipv4() { "IPv4" } else { "IPv6" };
    let plain = if tls_follows {
        ""
    } else {
        "; plaintext, no TLS"
    };
    match &tcp.proxy {
        None => crate::error::say(&format!(
            "imaptalk: connected to {} ({family}) in {}{plain}",
            tcp.addr,
            duration(tcp.took)
        )),
        Some(p) => {
            let server = tcp
                .server
                .map(|s| s.to_string())
                .unwrap_or_else(|| "the server (resolved by the proxy)".to_string());
            crate::error::say(&format!(
                "imaptalk: connected to {server} through the proxy {p} ({}, {family}) in {}{plain}",
                tcp.addr,
                duration(tcp.took)
            ));
        }
    }
}

/// After every TLS handshake, successful or not (`info` is None when it
/// failed): prints what `-v` and `--show-certs` ask for and checks
/// `--expiry-warn`. Returns whether a certificate expires within the
/// warning period.
pub fn handshake_done(
    settings: &DiagOptions,
    tls: &TlsSetup,
    info: Option<&TlsInfo>,
    took: Duration,
) -> bool {
    let presented = tls.take_presented();
    let summary = settings.verbose || settings.show_certs;
    let now = certinfo::now();
    let mut text = String::new();
    if settings.verbose
        && let Some(i) = info
    {
        let group = i
            .group
            .as_deref()
            .map(|g| format!(", key exchange {g}"))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "imaptalk: {}, cipher {}{group}, handshake {}",
            i.version,
            i.suite,
            duration(took)
        );
        if let Some(alpn) = &i.alpn {
            let _ = writeln!(text, "imaptalk: ALPN {}", crate::text::escape(alpn));
        }
    }
    let asked = tls.client_auth();
    if settings.verbose {
        let line = match (&asked, tls.has_client_cert()) {
            (Some(ClientAuthSeen::Sent(f)), _) => Some(format!(
                "the server asked for a client certificate; sent the one of --cert {}",
                f.display()
            )),
            (Some(ClientAuthSeen::NoneSent), true) => Some(
                "the server asked for a client certificate; none sent (the --cert key cannot sign in a way the server accepts)".to_string(),
            ),
            (Some(ClientAuthSeen::NoneSent), false) => {
                Some("the server asked for a client certificate; none sent (no --cert)".to_string())
            }
            (None, true) if info.is_some() => Some(
                "the server did not ask for a client certificate; --cert was not used".to_string(),
            ),
            (None, _) => None,
        };
        if let Some(line) = line {
            let _ = writeln!(text, "imaptalk: {line}");
        }
    }
    if summary {
        match &presented {
            Some(p) => chain_text(p, tls.name(), now, &mut text),
            None => text.push_str("imaptalk: the server presented no certificate\n"),
        }
    }
    if settings.show_certs
        && let Some(leaf) = presented.as_ref().and_then(|p| p.chain.first())
    {
        // The way to trust a self-signed server: copy this line.
        let _ = writeln!(
            text,
            "imaptalk: to trust exactly this server certificate: --pin {}",
            certinfo::pin(leaf)
        );
    }
    if let Some(text) = text.strip_suffix('\n') {
        crate::error::say(text);
    }
    if settings.show_certs
        && let Some(p) = &presented
    {
        let mut out: Box<dyn std::io::Write> = match &settings.pem_to {
            Some(file) => Box::new(file.clone()),
            None => Box::new(std::io::stdout().lock()),
        };
        for cert in &p.chain {
            let _ = out.write_all(certinfo::pem(cert).as_bytes());
        }
        let _ = out.flush();
    }
    match (settings.expiry_warn, &presented) {
        (Some(days), Some(p)) => expiring(p, days, now),
        _ => false,
    }
}

/// The chain, one block per certificate, and the verdict.
fn chain_text(p: &Presented, name: &str, now: i64, text: &mut String) {
    let n = p.chain.len();
    let plural = if n == 1 { "" } else { "s" };
    let _ = writeln!(
        text,
        "imaptalk: certificate chain ({n} certificate{plural}, as sent by the server):"
    );
    for (i, der) in p.chain.iter().enumerate() {
        match certinfo::summarize(der) {
            Ok(s) => {
                let names = if s.names.is_empty() {
                    "(none)".to_string()
                } else {
                    s.names.join(", ")
                };
                let _ = write!(
                    text,
                    "  [{i}] subject: {}\n      issuer:  {}\n      names:   {names}\n      valid:   {} to {} ({})\n      sha256:  {}\n",
                    s.subject,
                    s.issuer,
                    certinfo::date(s.not_before),
                    certinfo::date(s.not_after),
                    left(s.not_after, now),
                    s.sha256
                );
            }
            Err(e) => {
                let _ = writeln!(text, "  [{i}] {e}");
            }
        }
    }
    let name = crate::text::escape_str(name);
    let _ = match &p.verdict {
        Verdict::Trusted => writeln!(
            text,
            "imaptalk: verification: OK (trusted chain, valid for '{name}')"
        ),
        Verdict::Pinned(why) => writeln!(text, "imaptalk: verification: OK (pinned: {why})"),
        Verdict::Unchecked => writeln!(text, "imaptalk: verification: skipped (--insecure)"),
        Verdict::Rejected(why) => writeln!(
            text,
            "imaptalk: verification: FAILED: {}",
            crate::text::escape_str(why)
        ),
    };
}

fn left(not_after: i64, now: i64) -> String {
    match certinfo::days_left(not_after, now) {
        d if d < 0 => format!("EXPIRED {} days ago", -d),
        1 => "1 day left".to_string(),
        d => format!("{d} days left"),
    }
}

/// `--expiry-warn DAYS`: a warning line per certificate that expires
/// within DAYS (or has expired).
fn expiring(p: &Presented, days: u32, now: i64) -> bool {
    let limit = now.saturating_add(i64::from(days) * 86_400);
    let mut any = false;
    for (i, der) in p.chain.iter().enumerate() {
        let Ok(s) = certinfo::summarize(der) else {
            continue;
        };
        if s.not_after < limit {
            any = true;
            crate::error::say(&format!(
                "imaptalk: warning: certificate [{i}] ({}) expires {} ({}), within --expiry-warn {days}",
                s.subject,
                certinfo::date(s.not_after),
                left(s.not_after, now)
            ));
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_wording() {
        assert_eq!(left(86_400 * 40 + 5, 0), "40 days left");
        assert_eq!(left(86_400 + 5, 0), "1 day left");
        assert_eq!(left(-86_400 * 3, 0), "EXPIRED 3 days ago");
    }
}
