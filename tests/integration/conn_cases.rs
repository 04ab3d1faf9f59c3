//! Connection options: -4/-6, --tls-min/--tls-max, --keylog, client
//! certificates (--cert/--key).

use crate::support::certs::{
    TestPki, client_pki_for, pki_for, rustls_server_config, rustls_server_config_client_auth,
    rustls_server_config_versions, write_ca,
};
use crate::support::scripted::{ScriptedServer, Step, expect, send};
use crate::support::{imaptalk, stderr_of};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio_rustls::rustls;

fn noop_session() -> Vec<Step> {
    vec![
        send("* OK ready\n"),
        expect("a1 NOOP"),
        send("a1 OK NOOP completed.\n"),
        expect("a2 LOGOUT"),
        send("* BYE bye\na2 OK Logout completed.\n"),
        Step::Reset,
    ]
}

#[test]
fn ipv6_only_and_ipv4_only() {
    let server = ScriptedServer::start_on("[::1]:0", noop_session(), None, None);
    let out = imaptalk()
        .args(["-6", "-v"])
        .arg(format!("[::1]:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("connected to [::1]:"), "{err}");
    assert!(err.contains("(IPv6)"), "{err}");

    let server = ScriptedServer::start(noop_session());
    let out = imaptalk()
        .args(["--ipv4", "-v"])
        .arg(format!("127.0.0.1:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("(IPv4)"), "{err}");

    // The wrong family: one line, exit 3, nothing tried.
    let out = imaptalk()
        .args(["-4", "[::1]:1", "-c", "NOOP"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr_of(&out),
        "imaptalk: '::1' has no IPv4 address (-4 asks for one; it has ::1)\n"
    );
    let out = imaptalk()
        .args(["-6", "127.0.0.1:1", "-c", "NOOP"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr_of(&out),
        "imaptalk: '127.0.0.1' has no IPv6 address (-6 asks for one; it has 127.0.0.1)\n"
    );
    let out = imaptalk().args(["-4", "-6", "h"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A TLS session against a scripted server with `cfg`; (code, stderr).
fn tls_run(cfg: Arc<rustls::ServerConfig>, ca: &Path, args: &[&str]) -> (Option<i32>, String) {
    let server = ScriptedServer::start_tls(noop_session(), cfg);
    let out = imaptalk()
        .arg("--cafile")
        .arg(ca)
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
fn tls_version_limits() {
    let pki = pki_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let both = rustls_server_config(&pki);
    let (code, err) = tls_run(both.clone(), &ca, &["-v", "--tls-max", "1.2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("imaptalk: TLS 1.2, cipher"), "{err}");
    let (code, err) = tls_run(both, &ca, &["-v", "--tls-min", "1.3"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("imaptalk: TLS 1.3, cipher"), "{err}");

    let only12 = rustls_server_config_versions(&pki, &[&rustls::version::TLS12], None);
    let (code, err) = tls_run(only12, &ca, &["--tls-min", "1.3"]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(
        err,
        "imaptalk: TLS handshake with 'localhost' failed: the server does not speak TLS 1.3 (--tls-min/--tls-max)\n"
    );

    let out = imaptalk()
        .args(["--tls-min", "1.3", "--tls-max", "1.2", "h:993"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr_of(&out).contains("no TLS version is left"));
    let out = imaptalk()
        .args(["--tls-min", "1.1", "h:993"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A server that answers any ClientHello with a TLS 1.1 ServerHello, as
/// one that speaks nothing newer does.
fn old_tls_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut hello = [0u8; 5];
        s.read_exact(&mut hello).unwrap();
        let len = usize::from(u16::from_be_bytes([hello[3], hello[4]]));
        let mut rest = vec![0u8; len];
        s.read_exact(&mut rest).unwrap();
        // ServerHello: version 3.2, a random, no session id,
        // TLS_RSA_WITH_AES_128_CBC_SHA, no compression, no extensions.
        let mut body = vec![0x03, 0x02];
        body.extend_from_slice(&[7u8; 32]);
        body.extend_from_slice(&[0x00, 0x00, 0x2f, 0x00]);
        let mut hs = vec![0x02, 0x00, 0x00, u8::try_from(body.len()).unwrap()];
        hs.extend_from_slice(&body);
        let mut record = vec![0x16, 0x03, 0x02, 0x00, u8::try_from(hs.len()).unwrap()];
        record.extend_from_slice(&hs);
        let _ = s.write_all(&record);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    });
    (port, handle)
}

#[test]
fn a_server_with_only_old_tls_gets_a_clear_message() {
    let (port, handle) = old_tls_server();
    let out = imaptalk()
        .args(["--tls", &format!("127.0.0.1:{port}"), "-c", "NOOP"])
        .output()
        .unwrap();
    handle.join().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr_of(&out),
        "imaptalk: TLS handshake with '127.0.0.1' failed: the server offers only TLS 1.0 or 1.1 (or SSL), which are broken and not supported by imaptalk: the server needs upgrading to TLS 1.2 or 1.3\n"
    );
}

/// The server's own record of the session secrets, to check the
/// client's key log against.
#[derive(Debug, Default)]
struct ServerKeys(Mutex<Vec<String>>);

impl rustls::KeyLog for ServerKeys {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        self.0
            .lock()
            .unwrap()
            .push(format!("{label} {} {}", hex(client_random), hex(secret)));
    }
}

fn keylog_session(version: &'static rustls::SupportedProtocolVersion, keylog: &Path, env: bool) {
    let pki = pki_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let keys = Arc::new(ServerKeys::default());
    let cfg = rustls_server_config_versions(&pki, &[version], Some(keys.clone()));
    let server = ScriptedServer::start_tls(noop_session(), cfg);
    let mut cmd = imaptalk();
    cmd.arg("--cafile").arg(&ca);
    if env {
        cmd.env("SSLKEYLOGFILE", keylog);
    } else {
        cmd.arg("--keylog").arg(keylog).env_remove("SSLKEYLOGFILE");
    }
    let out = cmd
        .arg(format!("imaps://localhost:{}", server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    server.finish().assert_ok();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "imaptalk: warning: TLS session keys are written to {}",
            keylog.display()
        )),
        "{err}"
    );
    let server_lines = keys.0.lock().unwrap().clone();
    let text = std::fs::read_to_string(keylog).unwrap();
    let labels: &[&str] = if version == &rustls::version::TLS13 {
        &["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0"]
    } else {
        &["CLIENT_RANDOM"]
    };
    for label in labels {
        let theirs = server_lines
            .iter()
            .find(|l| l.starts_with(&format!("{label} ")))
            .unwrap_or_else(|| panic!("server logged no {label}: {server_lines:?}"));
        // This session's line, byte for byte: same client random, same secret.
        assert!(
            text.lines().any(|l| l == theirs),
            "{label} of this session missing from the key log:\n{text}\nserver: {theirs}"
        );
    }
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 3, "{line}");
        assert_eq!(f[1].len(), 64, "{line}");
        assert!(
            f[1..]
                .iter()
                .all(|h| h.bytes().all(|b| b.is_ascii_hexdigit())),
            "{line}"
        );
    }
}

#[test]
fn the_key_log_holds_this_sessions_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let keylog: PathBuf = dir.path().join("keys.log");
    keylog_session(&rustls::version::TLS13, &keylog, false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keylog).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let first = std::fs::read_to_string(&keylog).unwrap().lines().count();
    // Appended to, and SSLKEYLOGFILE works the same; TLS 1.2 logs CLIENT_RANDOM.
    keylog_session(&rustls::version::TLS12, &keylog, true);
    let text = std::fs::read_to_string(&keylog).unwrap();
    assert!(text.lines().count() > first, "{text}");
    assert!(
        text.lines()
            .take(first)
            .all(|l| !l.starts_with("CLIENT_RANDOM"))
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn openssl(args: &[&str]) -> String {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (installed with Dovecot)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        stderr_of(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Client certificate tests against a server that requires one.
fn client_run(server_pki: &TestPki, client: &TestPki, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), server_pki);
    let cfg = rustls_server_config_client_auth(server_pki, &client.ca_der, true);
    tls_run(cfg, &ca, args)
}

#[test]
fn a_client_certificate_is_sent_when_asked_for() {
    let server = pki_for(&["localhost"]);
    let client = client_pki_for("alice");
    let dir = tempfile::tempdir().unwrap();
    let cert = write(dir.path(), "cert.pem", &client.cert_chain_pem);
    let key = write(dir.path(), "key.pem", &client.key_pem);
    let (code, err) = client_run(
        &server,
        &client,
        &[
            "-v",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "imaptalk: the server asked for a client certificate; sent the one of --cert {}",
            cert.display()
        )),
        "{err}"
    );
    // The key in the certificate file; SEC1 ("EC PRIVATE KEY") too.
    let sec1 = openssl(&["pkey", "-in", key.to_str().unwrap(), "-traditional"]);
    assert!(sec1.contains("BEGIN EC PRIVATE KEY"), "{sec1}");
    let both = write(
        dir.path(),
        "both.pem",
        &format!("{}{sec1}", client.cert_chain_pem),
    );
    let (code, err) = client_run(&server, &client, &["--cert", both.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");

    // Without --cert: the server's refusal says what to do.
    let (code, err) = client_run(&server, &client, &[]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("the server requires a client certificate") && err.contains("--cert FILE"),
        "{err}"
    );
    // A certificate from a CA the server does not trust.
    let stranger = client_pki_for("mallory");
    let cert = write(dir.path(), "s.pem", &stranger.cert_chain_pem);
    let key = write(dir.path(), "sk.pem", &stranger.key_pem);
    let (code, err) = client_run(
        &server,
        &client,
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("the server refused the client certificate of --cert"),
        "{err}"
    );
}

#[test]
fn an_rsa_pkcs1_client_key_works() {
    let dir = tempfile::tempdir().unwrap();
    let p8 = openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
    ]);
    let key = rcgen::KeyPair::from_pem(&p8).unwrap();
    let client = crate::support::certs::client_pki_with_key("alice", key);
    let p8_path = write(dir.path(), "p8.pem", &p8);
    let pkcs1 = openssl(&["pkey", "-in", p8_path.to_str().unwrap(), "-traditional"]);
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"), "{pkcs1}");
    let cert = write(dir.path(), "cert.pem", &client.cert_chain_pem);
    let key = write(dir.path(), "key.pem", &pkcs1);
    let server = pki_for(&["localhost"]);
    let (code, err) = client_run(
        &server,
        &client,
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn bad_client_keys_are_one_line_before_connecting() {
    let client = client_pki_for("alice");
    let other = client_pki_for("bob");
    let dir = tempfile::tempdir().unwrap();
    let cert = write(dir.path(), "cert.pem", &client.cert_chain_pem);
    let wrong = write(dir.path(), "wrong.pem", &other.key_pem);
    let key = write(dir.path(), "key.pem", &client.key_pem);
    let encrypted = openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-aes256",
        "-passout",
        "pass:secret",
    ]);
    let encrypted = write(dir.path(), "enc.pem", &encrypted);
    // Nothing listens on port 1: these fail before connecting.
    let run = |args: &[&str]| {
        let out = imaptalk()
            .args(["--cert", cert.to_str().unwrap()])
            .args(args)
            .args(["imaps://localhost:1", "-c", "NOOP"])
            .output()
            .unwrap();
        (out.status.code(), stderr_of(&out))
    };
    let (code, err) = run(&["--key", wrong.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err,
        format!(
            "imaptalk: --key {}: the private key does not belong to the certificate in --cert {}\n",
            wrong.display(),
            cert.display()
        )
    );
    let (code, err) = run(&["--key", encrypted.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("the private key is encrypted"), "{err}");
    let (code, err) = run(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no private key in the file"), "{err}");
}

#[test]
fn v_says_when_no_client_certificate_was_asked_for() {
    let server = pki_for(&["localhost"]);
    let client = client_pki_for("alice");
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &server);
    let cert = write(dir.path(), "cert.pem", &client.cert_chain_pem);
    let key = write(dir.path(), "key.pem", &client.key_pem);
    let (code, err) = tls_run(
        rustls_server_config(&server),
        &ca,
        &[
            "-v",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(
            "imaptalk: the server did not ask for a client certificate; --cert was not used"
        ),
        "{err}"
    );
    // Asked (optional) but none given.
    let cfg = rustls_server_config_client_auth(&server, &client.ca_der, false);
    let (code, err) = tls_run(cfg, &ca, &["-v"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("imaptalk: the server asked for a client certificate; none sent (no --cert)"),
        "{err}"
    );
}
