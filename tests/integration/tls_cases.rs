//! TLS: implicit TLS, STARTTLS, and the certificate errors users see.

use crate::support::certs::{
    expired_pki_for, expired_self_signed_for, pin_of, pki_for, rustls_server_config,
    self_signed_for, write_ca,
};
use crate::support::scripted::{ScriptedServer, Step, expect, send};
use crate::support::{imaptalk, local, stderr_of};

fn session_steps(first_tag: u32) -> Vec<Step> {
    let (a, b) = (format!("a{first_tag}"), format!("a{}", first_tag + 1));
    vec![
        expect(&format!("{a} NOOP")),
        send(&format!("{a} OK NOOP completed.\n")),
        expect(&format!("{b} LOGOUT")),
        send(&format!("* BYE bye\n{b} OK Logout completed.\n")),
        // Many servers close without a TLS close_notify after LOGOUT.
        Step::Reset,
    ]
}

#[test]
fn implicit_tls_with_a_private_ca() {
    let pki = pki_for(&["localhost", "127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let mut steps = vec![send("* OK [CAPABILITY IMAP4rev1] TLS ready\n")];
    steps.extend(session_steps(1));
    let server = ScriptedServer::start_tls(steps, rustls_server_config(&pki));
    let out = imaptalk()
        .args(["--tls", "--cafile"])
        .arg(&ca)
        .arg(format!("localhost:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(out.stdout, t.sent);
}

#[test]
fn starttls_upgrades_before_anything_else_is_sent() {
    let pki = pki_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let mut steps = vec![
        send("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] plain ready\n"),
        expect("a1 STARTTLS"),
        send("a1 OK Begin TLS negotiation now.\n"),
        Step::StartTls,
    ];
    steps.extend(session_steps(2));
    let server = ScriptedServer::start_starttls(steps, rustls_server_config(&pki));
    let out = imaptalk()
        .args(["--starttls", "--cafile"])
        .arg(&ca)
        .arg(format!("imap://localhost:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert!(t.pre_tls_plaintext.is_empty());
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // The plaintext greeting and STARTTLS answer are shown too.
    assert_eq!(out.stdout, t.sent);
}

#[test]
fn unknown_issuer_is_one_readable_line_with_a_hint() {
    let pki = pki_for(&["localhost"]);
    let server = ScriptedServer::start_tls(vec![], rustls_server_config(&pki));
    let out = imaptalk()
        .arg(format!("imaps://localhost:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr_of(&out),
        "imaptalk: certificate of 'localhost' rejected: issued by an unknown authority (use --cafile FILE to trust its CA, or --insecure to skip verification)\n"
    );
}

#[test]
fn name_mismatch_says_which_names_the_certificate_has() {
    let pki = pki_for(&["imap.test"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let server = ScriptedServer::start_tls(vec![], rustls_server_config(&pki));
    let out = imaptalk()
        .arg("--cafile")
        .arg(&ca)
        .arg(format!("imaps://localhost:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr_of(&out);
    assert!(
        err.contains(
            "certificate of 'localhost' rejected: name mismatch: it is only valid for imap.test"
        ),
        "{err}"
    );
    // The CA is trusted: --cafile is not the fix, the name is.
    assert!(err.contains("--servername NAME"), "{err}");
    assert!(!err.contains("--cafile"), "{err}");
}

#[test]
fn servername_chooses_the_name_verified() {
    let pki = pki_for(&["imap.test"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let mut steps = vec![send("* OK ready\n")];
    steps.extend(session_steps(1));
    let server = ScriptedServer::start_tls(steps, rustls_server_config(&pki));
    let out = imaptalk()
        .args(["--servername", "imap.test", "--cafile"])
        .arg(&ca)
        .arg(format!("imaps://127.0.0.1:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn expired_certificate_says_when() {
    let pki = expired_pki_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let server = ScriptedServer::start_tls(vec![], rustls_server_config(&pki));
    let out = imaptalk()
        .arg("--cafile")
        .arg(&ca)
        .arg(format!("imaps://localhost:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr_of(&out);
    assert!(
        err.contains("certificate of 'localhost' rejected: expired on "),
        "{err}"
    );
}

#[test]
fn insecure_connects_anyway_and_warns() {
    let pki = pki_for(&["somewhere.else"]);
    let mut steps = vec![send("* OK ready\n")];
    steps.extend(session_steps(1));
    let server = ScriptedServer::start_tls(steps, rustls_server_config(&pki));
    let out = imaptalk()
        .arg("--insecure")
        .arg(format!("imaps://127.0.0.1:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr_of(&out).contains("warning: --insecure"));
}

#[test]
fn tls_to_a_plaintext_port_is_explained() {
    let server = ScriptedServer::start(vec![send("* OK plain ready\n"), Step::Close]);
    let out = imaptalk()
        .arg("--tls")
        .arg(local(server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr_of(&out);
    assert!(
        err.contains("TLS handshake with '127.0.0.1' failed"),
        "{err}"
    );
    assert!(err.contains("--starttls"), "{err}");
}

/// A session over implicit TLS to a server with `pki`'s certificate,
/// imaptalk run with `args`; returns (exit code, stderr, server ok).
fn run_against(pki: &crate::support::certs::TestPki, args: &[&str]) -> (Option<i32>, String) {
    let mut steps = vec![send("* OK ready\n")];
    steps.extend(session_steps(1));
    let server = ScriptedServer::start_tls(steps, rustls_server_config(pki));
    let out = imaptalk()
        .args(args)
        .arg(format!("imaps://localhost:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    let t = server.finish();
    if out.status.code() == Some(0) {
        t.assert_ok();
    }
    (out.status.code(), stderr_of(&out))
}

#[test]
fn a_self_signed_ca_true_certificate_is_trusted_by_pin_and_by_cafile() {
    let pki = self_signed_for(&["localhost"]);
    let pin = pin_of(&pki.cert_der);
    // Without either: the CA flag is named, and the ways to trust it.
    let (code, err) = run_against(&pki, &[]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("it is a CA certificate") || err.contains("unknown authority"),
        "{err}"
    );
    for spelled in [
        format!("sha256:{pin}"),
        pin.to_ascii_uppercase(),
        pin.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":"),
    ] {
        let (code, err) = run_against(&pki, &["-v", "--pin", &spelled]);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            err.contains(
                "imaptalk: verification: OK (pinned: its SHA-256 fingerprint matches --pin)"
            ),
            "{err}"
        );
    }
    // A pin trusts whatever the name: the certificate is the identity.
    let other = self_signed_for(&["imap.test"]);
    let (code, err) = run_against(&other, &["--pin", &pin_of(&other.cert_der)]);
    assert_eq!(code, Some(0), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let (code, err) = run_against(&pki, &["-v", "--cafile", ca.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("verification: OK (pinned: the server's own certificate is in --cafile)"),
        "{err}"
    );
}

#[test]
fn the_leaf_alone_as_cafile_is_trusted_for_its_names_only() {
    // What --show-certs prints for a server whose CA is private: the leaf.
    let pki = pki_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let leaf = dir.path().join("leaf.pem");
    std::fs::write(&leaf, &pki.cert_chain_pem).unwrap();
    let (code, err) = run_against(&pki, &["--cafile", leaf.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    // The same certificate for another name is still a name mismatch.
    let imap = pki_for(&["imap.test"]);
    std::fs::write(&leaf, &imap.cert_chain_pem).unwrap();
    let (code, err) = run_against(&imap, &["--cafile", leaf.to_str().unwrap()]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("rejected: name mismatch: it is only valid for imap.test"),
        "{err}"
    );
}

#[test]
fn a_wrong_pin_is_one_line_and_exit_3() {
    let pki = self_signed_for(&["localhost"]);
    let wrong = "00".repeat(32);
    let (code, err) = run_against(&pki, &["--pin", &wrong]);
    assert_eq!(code, Some(3), "{err}");
    let fp = pin_of(&pki.cert_der).to_ascii_uppercase();
    let colons: Vec<&str> = (0..32).map(|i| &fp[2 * i..2 * i + 2]).collect();
    assert_eq!(
        err,
        format!(
            "imaptalk: certificate of 'localhost' rejected: its SHA-256 fingerprint {} matches no --pin (if the server's certificate was replaced on purpose, look at the new one with --show-certs and pin that)\n",
            colons.join(":")
        )
    );
    // A malformed pin is a usage error before connecting.
    let out = imaptalk()
        .args(["--pin", "abc", "imaps://localhost:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr_of(&out).lines().count(), 1, "{}", stderr_of(&out));
}

#[test]
fn an_expired_pinned_certificate_is_rejected() {
    let pki = expired_self_signed_for(&["localhost"]);
    let (code, err) = run_against(&pki, &["--pin", &pin_of(&pki.cert_der)]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("imaptalk: certificate of 'localhost' rejected: expired on 2001-01-01"),
        "{err}"
    );
}

#[test]
fn show_certs_prints_the_pin_that_trusts_the_server() {
    let pki = self_signed_for(&["localhost"]);
    let server = ScriptedServer::start_tls(vec![send("* OK ready\n")], rustls_server_config(&pki));
    let out = imaptalk()
        .arg("--show-certs")
        .arg(format!("imaps://localhost:{}", server.port()))
        .output()
        .unwrap();
    server.finish();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("imaptalk: to trust exactly this server certificate: --pin "))
        .unwrap_or_else(|| panic!("no --pin line: {err}"));
    // The line works as it is.
    let (code, err) = run_against(&pki, &["--pin", line]);
    assert_eq!(code, Some(0), "{err}");
}
