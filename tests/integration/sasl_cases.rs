//! SASL beyond PLAIN: SCRAM-SHA-256 and SCRAM-SHA-1 (the server's
//! signature checked), EXTERNAL with a client certificate, ANONYMOUS,
//! `--sasl`; against a real Dovecot and, for a server that does not know
//! the password, a scripted one.

use crate::support::dovecot::{Dovecot, Features};
use crate::support::scripted::{ScriptedServer, Step, expect, send};
use crate::support::{imaptalk, local, stderr_of};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::path::{Path, PathBuf};

fn sasl_dovecot() -> Dovecot {
    Dovecot::start_with(Features {
        sasl: true,
        ..Features::default()
    })
}

/// `imaptalk -v -u USER` with the password in the environment, over
/// implicit TLS to Dovecot.
fn run(d: &Dovecot, args: &[&str], password: Option<&str>) -> (Option<i32>, String, String) {
    let mut cmd = imaptalk();
    match password {
        Some(p) => cmd.env("IMAPTALK_PASSWORD", p),
        None => cmd.env_remove("IMAPTALK_PASSWORD"),
    };
    let out = cmd
        .arg("-v")
        .arg("--cafile")
        .arg(d.ca_file())
        .args(args)
        .arg(format!("localhost:{}", d.tls_port()))
        .args(["--tls", "-c", "STATUS INBOX (MESSAGES)"])
        .output()
        .unwrap();
    (
        out.status.code(),
        stderr_of(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn scram_is_chosen_and_the_server_proves_it_knows_the_password() {
    let d = sasl_dovecot();
    let (user, pass) = d.user();
    let (code, err, out) = run(&d, &["-u", user], Some(pass));
    assert_eq!(code, Some(0), "{err}\n{}", d.log());
    assert!(
        err.contains("imaptalk: logging in as alice (AUTHENTICATE SCRAM-SHA-256 with SASL-IR)"),
        "{err}"
    );
    assert!(
        err.contains("imaptalk: SCRAM-SHA-256: the server proved that it knows the password"),
        "{err}"
    );
    assert!(out.contains("* STATUS INBOX (MESSAGES 0)"), "{out}");

    // SCRAM-SHA-1 when asked for; carol's password (spaces, quotes, a
    // backslash, non-ASCII) goes through PBKDF2 as UTF-8.
    let (user, pass) = d.tricky_user();
    let (code, err, _) = run(&d, &["-u", user, "--sasl", "scram-sha-1"], Some(pass));
    assert_eq!(code, Some(0), "{err}\n{}", d.log());
    assert!(
        err.contains("(AUTHENTICATE SCRAM-SHA-1 with SASL-IR)"),
        "{err}"
    );
    assert!(err.contains("SCRAM-SHA-1: the server proved"), "{err}");

    // --sasl PLAIN and LOGIN still work when asked for.
    let (user, pass) = d.user();
    let (code, err, _) = run(&d, &["-u", user, "--sasl", "PLAIN"], Some(pass));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("(AUTHENTICATE PLAIN with SASL-IR)"), "{err}");
    let (code, err, _) = run(&d, &["-u", user, "--sasl", "LOGIN"], Some(pass));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("logging in as alice (LOGIN)"), "{err}");
}

#[test]
fn a_wrong_scram_password_is_exit_1_and_one_line() {
    let d = sasl_dovecot();
    let (code, err, _) = run(&d, &["-u", "alice"], Some("not the password"));
    assert_eq!(code, Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("imaptalk: login as alice failed: a1 NO [AUTHENTICATIONFAILED]"),
        "{err}"
    );
    assert!(!err.contains("not the password"), "{err}");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn external_logs_in_with_the_client_certificate() {
    let d = sasl_dovecot();
    let dir = tempfile::tempdir().unwrap();
    let client = d.client_pki();
    let cert = write(dir.path(), "alice.pem", &client.cert_chain_pem);
    let key = write(dir.path(), "alice.key", &client.key_pem);
    let cert_args = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];

    let mut args = cert_args.to_vec();
    args.extend(["--sasl", "EXTERNAL"]);
    let (code, err, out) = run(&d, &args, None);
    assert_eq!(code, Some(0), "{err}\n{}", d.log());
    assert!(
        err.contains("imaptalk: the server asked for a client certificate; sent the one of --cert"),
        "{err}"
    );
    assert!(
        err.contains("(AUTHENTICATE EXTERNAL with SASL-IR)"),
        "{err}"
    );
    assert!(out.contains("* STATUS INBOX"), "{out}");

    // -u: the authorization identity, which must be the certificate's user.
    let mut with_user = args.clone();
    with_user.extend(["-u", "alice"]);
    let (code, err, _) = run(&d, &with_user, None);
    assert_eq!(code, Some(0), "{err}\n{}", d.log());
    let mut as_bob = args.clone();
    as_bob.extend(["-u", "bob"]);
    let (code, err, _) = run(&d, &as_bob, None);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("imaptalk: login as bob failed: a1 NO"),
        "{err}"
    );

    // Without the certificate there is nobody to log in as.
    let (code, err, _) = run(
        &d,
        &[
            "--sasl",
            "EXTERNAL",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--tls-max",
            "1.2",
        ],
        None,
    );
    assert_eq!(code, Some(0), "TLS 1.2 works the same: {err}");
}

#[test]
fn anonymous_logs_in_without_a_secret() {
    let d = sasl_dovecot();
    let (code, err, out) = run(&d, &["--sasl", "ANONYMOUS"], None);
    assert_eq!(code, Some(0), "{err}\n{}", d.log());
    assert!(
        err.contains("logging in as anonymous (AUTHENTICATE ANONYMOUS with SASL-IR)"),
        "{err}"
    );
    assert!(out.contains("* STATUS INBOX"), "{out}");
}

#[test]
fn a_mechanism_the_server_does_not_offer_is_exit_1() {
    let d = Dovecot::start();
    let out = imaptalk()
        .env("IMAPTALK_PASSWORD", "wonderland")
        .args(["-u", "alice", "--sasl", "SCRAM-SHA-256"])
        .arg(local(d.plain_port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert!(
        err.starts_with("imaptalk: cannot log in as alice: the server does not offer AUTH=SCRAM-SHA-256 (it offers: AUTH=PLAIN AUTH=LOGIN"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn sasl_flag_errors_are_usage_errors() {
    for (args, msg) in [
        (
            &["--sasl", "CRAM-MD5", "-u", "a", "h:993"][..],
            "--sasl CRAM-MD5: imaptalk knows SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, LOGIN, EXTERNAL, ANONYMOUS, OAUTHBEARER, XOAUTH2",
        ),
        (
            &["--sasl", "PLAIN", "h:993"][..],
            "--sasl PLAIN needs -u USER",
        ),
        (
            &["--sasl", "EXTERNAL", "h:993"][..],
            "--sasl EXTERNAL logs in with the client certificate: give it with --cert FILE",
        ),
        (
            &["--sasl", "XOAUTH2", "-u", "a", "h:993"][..],
            "--sasl XOAUTH2 needs an OAuth2 token",
        ),
        (
            &["--sasl", "PLAIN", "-u", "a", "--oauth2-token", "t", "h:993"][..],
            "--sasl PLAIN needs a password, not an OAuth2 token",
        ),
    ] {
        let out = imaptalk()
            .env_remove("IMAPTALK_OAUTH2_TOKEN")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr_of(&out);
        assert!(
            err.starts_with(&format!("imaptalk: {msg}")),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// RFC 7677's example: user "user", password "pencil", and the nonce the
/// test fixes through IMAPTALK_TEST_SCRAM_NONCE.
const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

fn scram_server(last: Vec<Step>) -> ScriptedServer {
    let mut steps = vec![
        send("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=SCRAM-SHA-256] ready\n"),
        expect(&format!(
            "a1 AUTHENTICATE SCRAM-SHA-256 {}",
            STANDARD.encode(format!("n,,n=user,r={NONCE}"))
        )),
        send(&format!("+ {}\n", STANDARD.encode(SERVER_FIRST))),
        expect(&STANDARD.encode(CLIENT_FINAL)),
    ];
    steps.extend(last);
    ScriptedServer::start(steps)
}

fn scram_run(server: &ScriptedServer) -> std::process::Output {
    imaptalk()
        .env("IMAPTALK_PASSWORD", "pencil")
        .env("IMAPTALK_TEST_SCRAM_NONCE", NONCE)
        .args(["-u", "user"])
        .arg(local(server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap()
}

#[test]
fn a_scram_server_with_a_wrong_signature_is_detected() {
    // Accepts any proof, as a server that does not know the password must.
    let server = scram_server(vec![
        send(&format!(
            "+ {}\n",
            STANDARD.encode("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        )),
        Step::ExpectEof,
    ]);
    let out = scram_run(&server);
    let t = server.finish();
    t.assert_ok();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_of(&out),
        "imaptalk: login as user failed: the server's SCRAM signature is wrong: it does not know the password (an impostor, or something in the middle)\n"
    );
    assert!(!String::from_utf8_lossy(&t.received).contains("NOOP"));

    // An OK without any signature is no better.
    let server = scram_server(vec![send("a1 OK logged in\n"), Step::ExpectEof]);
    let out = scram_run(&server);
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("without proving that it knows the password"),
        "{}",
        stderr_of(&out)
    );

    // The right signature: logged in, the script runs.
    let server = scram_server(vec![
        send(&format!(
            "+ {}\n",
            STANDARD.encode("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
        )),
        expect(""),
        send("a1 OK logged in\n"),
        expect("a2 NOOP"),
        send("a2 OK\n"),
        expect("a3 LOGOUT"),
        send("* BYE\na3 OK\n"),
        Step::Close,
    ]);
    let out = scram_run(&server);
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}
