//! `--proxy` (SOCKS5, SOCKS5 with the name resolved by the proxy, HTTP
//! CONNECT) through small proxies the tests run on loopback, and
//! `--proxy-protocol` against Dovecot's haproxy listener.

use crate::support::dovecot::{Dovecot, Features};
use crate::support::proxies::{Behaviour, Kind, TestProxy};
use crate::support::scripted::{ScriptedServer, send};
use crate::support::{imaptalk, local, stderr_of};

fn proxy(kind: Kind, creds: Option<(&str, &str)>, refuse: bool) -> TestProxy {
    TestProxy::start(Behaviour {
        kind,
        creds: creds.map(|(u, p)| (u.to_string(), p.to_string())),
        refuse,
    })
}

/// A STATUS through `url` to Dovecot's implicit-TLS port by the name
/// `localhost`: the certificate is checked against that name.
fn status_through(d: &Dovecot, url: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let (user, pass) = d.user();
    let out = imaptalk()
        .env("IMAPTALK_PASSWORD", pass)
        .args(["-v", "--proxy", url, "-u", user, "--cafile"])
        .arg(d.ca_file())
        .args(extra)
        .arg(format!("imaps://localhost:{}", d.tls_port()))
        .args(["-c", "STATUS INBOX (MESSAGES)"])
        .output()
        .unwrap();
    (
        out.status.code(),
        stderr_of(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn socks5_socks5h_and_http_connect_carry_tls_to_the_real_name() {
    let d = Dovecot::start();
    let port = d.tls_port();

    let p = proxy(Kind::Socks5, None, false);
    let (code, err, out) = status_through(&d, &p.url("socks5", None), &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("* STATUS INBOX"), "{out}");
    assert!(
        err.contains("verification: OK (trusted chain, valid for 'localhost')"),
        "{err}"
    );
    // Resolved here: the proxy got an address.
    assert_eq!(p.seen(), [format!("socks5 addr 127.0.0.1:{port}")]);
    assert!(
        err.contains(&format!(
            "imaptalk: connected to 127.0.0.1:{port} through the proxy socks5://127.0.0.1:{}",
            p.port
        )),
        "{err}"
    );

    let p = proxy(Kind::Socks5, Some(("pu", "s3cret pw")), false);
    let url = format!("socks5h://pu:s3cret%20pw@127.0.0.1:{}", p.port);
    let (code, err, _) = status_through(&d, &url, &[]);
    assert_eq!(code, Some(0), "{err}");
    // Resolved by the proxy: it got the name.
    assert_eq!(
        p.seen(),
        [format!("socks5 name localhost:{port} auth pu:s3cret pw")]
    );
    assert!(!err.contains("s3cret"), "{err}");

    let p = proxy(Kind::Http, Some(("pu", "hunter2")), false);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("t.log");
    let (code, err, _) = status_through(
        &d,
        &p.url("http", Some(("pu", "hunter2"))),
        &["--echo", "--log", log.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(p.seen(), [format!("http localhost:{port} auth pu:hunter2")]);
    let transcript = std::fs::read_to_string(&log).unwrap();
    assert!(
        !err.contains("hunter2") && !transcript.contains("hunter2"),
        "{err}\n{transcript}"
    );
    assert!(
        transcript.contains("through http://pu@127.0.0.1:"),
        "{transcript}"
    );
}

#[test]
fn starttls_through_a_proxy_and_a_name_mismatch_is_still_caught() {
    let d = Dovecot::start();
    let p = proxy(Kind::Socks5, None, false);
    let out = imaptalk()
        .args(["--starttls", "--proxy", &p.url("socks5h", None), "--cafile"])
        .arg(d.ca_file())
        .arg(format!("localhost:{}", d.plain_port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // The name checked through the proxy is the one asked for, as
    // without a proxy: the certificate is not for imap.invalid.
    let out = imaptalk()
        .args(["--proxy", &p.url("socks5h", None), "--cafile"])
        .arg(d.ca_file())
        .arg(format!("imaps://localhost:{}", d.tls_port()))
        .args(["--servername", "imap.invalid", "-c", "NOOP"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("name mismatch"),
        "{}",
        stderr_of(&out)
    );
}

fn fails(args: &[&str]) -> (Option<i32>, String) {
    let out = imaptalk().args(args).output().unwrap();
    (out.status.code(), stderr_of(&out))
}

#[test]
fn proxy_failures_are_one_line_naming_the_proxy() {
    let server = ScriptedServer::start(vec![send("* OK never seen\n")]);
    let target = local(server.port());

    let p = proxy(Kind::Socks5, None, true);
    let (code, err) = fails(&["--proxy", &p.url("socks5", None), &target, "-c", "NOOP"]);
    assert_eq!(code, Some(3));
    assert_eq!(
        err,
        format!(
            "imaptalk: proxy socks5://127.0.0.1:{}: it cannot reach {target}: connection refused (SOCKS5 error 5)\n",
            p.port
        )
    );

    let p = proxy(Kind::Http, None, true);
    let (code, err) = fails(&["--proxy", &p.url("http", None), &target, "-c", "NOOP"]);
    assert_eq!(code, Some(3));
    assert_eq!(
        err,
        format!(
            "imaptalk: proxy http://127.0.0.1:{}: it refused to connect to {target}: HTTP/1.1 502 Bad Gateway\n",
            p.port
        )
    );

    for kind in [Kind::Socks5, Kind::Http] {
        let p = proxy(kind, Some(("u", "right")), false);
        let scheme = if kind == Kind::Http { "http" } else { "socks5" };
        let (code, err) = fails(&[
            "--proxy",
            &p.url(scheme, Some(("u", "wrong-pw"))),
            &target,
            "-c",
            "NOOP",
        ]);
        assert_eq!(code, Some(3), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("proxy {scheme}://u@127.0.0.1:{}: ", p.port)),
            "{err}"
        );
        assert!(err.contains("refused the user name and password"), "{err}");
        assert!(!err.contains("wrong-pw"), "{err}");
        let (code, err) = fails(&["--proxy", &p.url(scheme, None), &target, "-c", "NOOP"]);
        assert_eq!(code, Some(3), "{err}");
        assert!(err.contains("user name and password ("), "{err}");
    }

    // Nothing listening where the proxy should be.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (code, err) = fails(&[
        "--proxy",
        &format!("socks5://127.0.0.1:{port}"),
        &target,
        "-c",
        "NOOP",
    ]);
    assert_eq!(code, Some(3));
    assert!(
        err.starts_with(&format!(
            "imaptalk: proxy socks5://127.0.0.1:{port}: cannot connect to 127.0.0.1:{port}"
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    server.finish();

    let (code, err) = fails(&["--proxy", "gopher://h:1", "h", "-c", "NOOP"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unsupported proxy type 'gopher'"), "{err}");
}

#[test]
fn the_proxy_protocol_header_goes_first() {
    let d = Dovecot::start_with(Features {
        haproxy: true,
        ..Features::default()
    });
    let (user, pass) = d.user();
    for version in ["v1", "v2"] {
        let out = imaptalk()
            .args(["--proxy-protocol", version])
            .arg(local(d.haproxy_port()))
            .args(["-c", &format!("LOGIN {user} {pass}"), "-c", "NOOP"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{version}: {}\n{}",
            stderr_of(&out),
            d.log()
        );
        assert!(text.contains("a1 OK"), "{text}");
    }
    // Without the header, the haproxy listener does not talk IMAP.
    let out = imaptalk()
        .arg(local(d.haproxy_port()))
        .args(["--timeout", "5", "-c", "NOOP"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", stderr_of(&out));

    // The exact v1 line a scripted server receives.
    let server = ScriptedServer::start(vec![
        crate::support::scripted::Step::ExpectAny,
        send("* OK ready\n"),
    ]);
    let sport = server.port();
    let _ = imaptalk()
        .args(["--proxy-protocol", "v1", "--timeout", "5"])
        .arg(local(server.port()))
        .args(["-c", "NOOP"])
        .output()
        .unwrap();
    let t = server.finish();
    let first = t.lines.first().cloned().unwrap_or_default();
    assert!(
        first.starts_with("PROXY TCP4 127.0.0.1 127.0.0.1 ")
            && first.ends_with(&format!(" {sport}")),
        "{first}"
    );
}
