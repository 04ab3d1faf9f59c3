//! `-v`, `--show-certs` and `--expiry-warn`: what the user learns about
//! the connection and the certificate chain, and the exit codes a
//! monitoring script can use.

use crate::support::certs::{pki_for, rustls_server_config, short_lived_pki_for, write_ca};
use crate::support::scripted::{ScriptedServer, Step, expect, send};
use crate::support::{imaptalk, stderr_of};

/// `AB:CD:…` SHA-256 of DER bytes, computed here without imaptalk's code.
fn sha256_colon_hex(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

#[cfg(unix)]
mod against_dovecot {
    use super::*;
    use crate::support::dovecot::Dovecot;
    use crate::support::local;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;

    /// The DER of every certificate in a PEM file (the test CA's server cert).
    fn pem_file_ders(path: &std::path::Path) -> Vec<Vec<u8>> {
        CertificateDer::pem_file_iter(path)
            .unwrap()
            .map(|c| c.unwrap().to_vec())
            .collect()
    }

    #[test]
    fn verbose_shows_address_tls_parameters_and_the_chain() {
        let d = Dovecot::start();
        let served = pem_file_ders(&d.dir().join("server-cert.pem"));
        assert_eq!(served.len(), 1);
        let out = imaptalk()
            .args(["-v", "--tls", "--cafile"])
            .arg(d.ca_file())
            .arg(format!("localhost:{}", d.tls_port()))
            .args(["-c", "NOOP"])
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(
            err.contains(&format!(
                "connected to 127.0.0.1:{} (IPv4) in ",
                d.tls_port()
            )),
            "{err}"
        );
        assert!(err.contains("imaptalk: TLS 1.3, cipher TLS13_"), "{err}");
        assert!(err.contains(", key exchange X25519, handshake "), "{err}");
        assert!(err.contains("  [0] subject: CN=localhost\n"), "{err}");
        assert!(
            err.contains("      issuer:  CN=imaptalk test CA\n"),
            "{err}"
        );
        assert!(
            err.contains("      names:   DNS:localhost, IP:127.0.0.1\n"),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "      sha256:  {}\n",
                sha256_colon_hex(&served[0])
            )),
            "{err}"
        );
        assert!(
            err.contains("verification: OK (trusted chain, valid for 'localhost')"),
            "{err}"
        );
        // Nothing of it reaches stdout, which holds the server's bytes.
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("* OK "));
    }

    #[test]
    fn verbose_starttls_asks_for_capabilities_again_over_tls() {
        let d = Dovecot::start();
        let out = imaptalk()
            .args(["-v", "--echo", "--starttls", "--cafile"])
            .arg(d.ca_file())
            .arg(local(d.plain_port()))
            .args(["-c", "NOOP"])
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.contains("C: a2 CAPABILITY\n"), "{err}");
        // Dovecot lists STARTTLS in plaintext, never over TLS.
        let line = err
            .lines()
            .find(|l| l.starts_with("imaptalk: capabilities over TLS: "))
            .unwrap_or_else(|| panic!("no capability line in {err}"));
        assert!(
            line.contains("IMAP4REV1") && !line.contains("STARTTLS"),
            "{line}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("* CAPABILITY IMAP4rev1"), "{stdout}");
        assert!(stdout.contains("a3 OK NOOP"), "{stdout}");
    }

    #[test]
    fn show_certs_with_starttls_prints_the_chain_as_pem_that_parses_back() {
        let d = Dovecot::start();
        let out = imaptalk()
            .args(["--show-certs", "--starttls", "--cafile"])
            .arg(d.ca_file())
            .arg(local(d.plain_port()))
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        let parsed: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&out.stdout)
            .map(|c| c.unwrap().to_vec())
            .collect();
        assert_eq!(parsed, pem_file_ders(&d.dir().join("server-cert.pem")));
        // stdout is the PEM and nothing else (no greeting, no LOGOUT reply).
        let text = String::from_utf8(out.stdout.clone()).unwrap();
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"), "{text}");
        assert!(text.ends_with("-----END CERTIFICATE-----\n"), "{text}");
        // The summary went to stderr.
        assert!(err.contains("[0] subject: CN=localhost"), "{err}");
    }

    #[test]
    fn show_certs_prints_the_chain_even_when_it_is_not_trusted() {
        let d = Dovecot::start();
        let out = imaptalk()
            .arg("--show-certs")
            .arg(format!("imaps://localhost:{}", d.tls_port()))
            .output()
            .unwrap();
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(3), "{err}");
        let parsed: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&out.stdout)
            .map(|c| c.unwrap().to_vec())
            .collect();
        assert_eq!(parsed, [d.pki().cert_der.clone()]);
        assert!(
            err.contains("verification: FAILED: issued by an unknown authority"),
            "{err}"
        );
        assert!(err.contains("certificate of 'localhost' rejected"), "{err}");
    }
}

#[test]
fn show_certs_on_a_plaintext_connection_is_a_usage_error() {
    let out = imaptalk()
        .args(["--show-certs", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr_of(&out),
        "imaptalk: --show-certs needs a TLS connection: add --tls (implicit TLS, port 993) or --starttls (port 143)\n"
    );
}

fn expiry_run(pki_days: u64, warn_days: &str) -> (std::process::Output, String) {
    let pki = short_lived_pki_for(&["localhost"], pki_days);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let server = ScriptedServer::start_tls(
        vec![
            send("* OK ready\n"),
            expect("a1 NOOP"),
            send("a1 OK done\n"),
            expect("a2 LOGOUT"),
            send("* BYE bye\na2 OK bye\n"),
            Step::Close,
        ],
        rustls_server_config(&pki),
    );
    let out = imaptalk()
        .args(["--expiry-warn", warn_days, "--cafile"])
        .arg(&ca)
        .arg(format!("imaps://localhost:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    let err = stderr_of(&out);
    (out, err)
}

#[test]
fn expiry_warn_fires_for_a_certificate_that_expires_soon() {
    // Valid for two more days: a 7-day warning fires, the session still runs.
    let (out, err) = expiry_run(2, "7");
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains("warning: certificate [0] (CN=localhost) expires "),
        "{err}"
    );
    assert!(err.contains("within --expiry-warn 7"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("a1 OK done"));
}

#[test]
fn expiry_warn_is_quiet_when_the_certificate_lasts_longer() {
    let (out, err) = expiry_run(2, "1");
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("expires"), "{err}");
}

#[test]
fn a_failed_command_outranks_an_expiring_certificate() {
    let pki = short_lived_pki_for(&["localhost"], 2);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let server = ScriptedServer::start_tls(
        vec![
            send("* OK ready\n"),
            expect("a1 NOOP"),
            send("a1 NO nope\n"),
            expect("a2 LOGOUT"),
            send("* BYE bye\na2 OK bye\n"),
            Step::Close,
        ],
        rustls_server_config(&pki),
    );
    let out = imaptalk()
        .args(["--expiry-warn", "30", "--cafile"])
        .arg(&ca)
        .arg(format!("imaps://localhost:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
}

#[test]
fn verbose_shows_the_chain_before_a_verification_failure() {
    let pki = pki_for(&["imap.test"]);
    let server = ScriptedServer::start_tls(vec![], rustls_server_config(&pki));
    let out = imaptalk()
        .arg("-v")
        .arg(format!("imaps://localhost:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let at = |s: &str| err.find(s).unwrap_or_else(|| panic!("{s:?} not in {err}"));
    let chain = at("[0] subject: CN=imap.test");
    let verdict = at("verification: FAILED: issued by an unknown authority");
    let error = at("imaptalk: certificate of 'localhost' rejected");
    assert!(chain < verdict && verdict < error, "{err}");
    assert!(
        err.contains(&format!("sha256:  {}", sha256_colon_hex(&pki.cert_der))),
        "{err}"
    );
}

#[test]
fn verbose_after_a_typed_starttls_asks_for_capabilities_again() {
    let pki = pki_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let server = ScriptedServer::start_starttls(
        vec![
            send("* OK [CAPABILITY IMAP4rev1 STARTTLS X-PLAIN] ready\n"),
            expect("a1 STARTTLS"),
            send("a1 OK go\n"),
            Step::StartTls,
            expect("a2 CAPABILITY"),
            send("* CAPABILITY IMAP4rev1 X-OVER-TLS\na2 OK done\n"),
            expect("a3 NOOP"),
            send("a3 OK done\n"),
            expect("a4 LOGOUT"),
            send("* BYE\na4 OK bye\n"),
            Step::Close,
        ],
        rustls_server_config(&pki),
    );
    let out = imaptalk()
        .args(["-v", "--cafile"])
        .arg(&ca)
        .arg(format!("imap://localhost:{}", server.port()))
        .args(["-c", "STARTTLS", "-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("verification: OK"), "{err}");
    // --cafile was used: no warning may say it had no effect.
    assert!(!err.contains("no effect"), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("* CAPABILITY IMAP4rev1 X-OVER-TLS"),
        "{stdout}"
    );
}
