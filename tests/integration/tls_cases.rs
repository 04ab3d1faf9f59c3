//! TLS: implicit TLS, STARTTLS, and the certificate errors users see.

use crate::support::certs::{expired_pki_for, pki_for, rustls_server_config, write_ca};
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
