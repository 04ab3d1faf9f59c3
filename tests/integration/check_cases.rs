//! `--check`: the report's findings, asserted by id and level in the
//! JSON, against a real Dovecot set up well and badly, and against fake
//! servers (STARTTLS command injection, capabilities that change under
//! TLS, a slow server); and the text form (aligned, escaped).

use crate::support::certs;
use crate::support::fake_imap::{Behaviour, FakeImap};
use crate::support::{imaptalk, local};
use std::time::Duration;

/// A report, as `--check --json` wrote it.
struct Report {
    json: String,
    code: Option<i32>,
    stderr: String,
}

impl Report {
    /// The line of finding `id` (one finding per line in the document).
    fn finding(&self, id: &str) -> &str {
        let start = format!("{{\"id\":\"{id}\",");
        self.json
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("no finding {id} in:\n{}\n{}", self.json, self.stderr))
    }

    fn level(&self, id: &str) -> &str {
        let line = self.finding(id);
        let at = line.find("\"level\":\"").expect("level") + 9;
        let end = at + line[at..].find('"').expect("end of level");
        &line[at..end]
    }

    /// Asserts the level of each finding named.
    fn expect(&self, levels: &[(&str, &str)]) {
        for (id, level) in levels {
            assert_eq!(
                self.level(id),
                *level,
                "{id}: {}\n--- report ---\n{}",
                self.finding(id),
                self.json
            );
        }
    }

    #[cfg(unix)]
    fn has(&self, id: &str) -> bool {
        let start = format!("{{\"id\":\"{id}\",");
        self.json.lines().any(|l| l.starts_with(&start))
    }
}

fn check(args: &[&str], password: Option<&str>) -> Report {
    let mut cmd = imaptalk();
    cmd.arg("--check").arg("--json").args(args);
    cmd.env_remove("IMAPTALK_PASSWORD")
        .env_remove("IMAPTALK_OAUTH2_TOKEN")
        .timeout(Duration::from_secs(90));
    if let Some(p) = password {
        cmd.env("IMAPTALK_PASSWORD", p);
    }
    let out = cmd.output().expect("run imaptalk");
    let json = String::from_utf8(out.stdout).expect("UTF-8 report");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(json.is_ascii(), "{json}");
    if let Err(at) = json_value(json.trim_end().as_bytes(), 0).and_then(|end| {
        if end == json.trim_end().len() {
            Ok(end)
        } else {
            Err(end)
        }
    }) {
        panic!("not one JSON document (at byte {at}):\n{json}\n{stderr}");
    }
    Report {
        json,
        code: out.status.code(),
        stderr,
    }
}

/// A JSON validator, small and strict enough to say that the report is
/// one well-formed document: returns where the value at `i` ends.
fn json_value(b: &[u8], i: usize) -> Result<usize, usize> {
    let ws = |mut i: usize| {
        while i < b.len() && b" \n\r\t".contains(&b[i]) {
            i += 1;
        }
        i
    };
    let i = ws(i);
    match b.get(i) {
        Some(b'{') => {
            let mut j = ws(i + 1);
            if b.get(j) == Some(&b'}') {
                return Ok(j + 1);
            }
            loop {
                if b.get(j) != Some(&b'"') {
                    return Err(j);
                }
                j = ws(json_value(b, j)?);
                if b.get(j) != Some(&b':') {
                    return Err(j);
                }
                j = ws(json_value(b, j + 1)?);
                match b.get(j) {
                    Some(b',') => j = ws(j + 1),
                    Some(b'}') => return Ok(j + 1),
                    _ => return Err(j),
                }
            }
        }
        Some(b'[') => {
            let mut j = ws(i + 1);
            if b.get(j) == Some(&b']') {
                return Ok(j + 1);
            }
            loop {
                j = ws(json_value(b, j)?);
                match b.get(j) {
                    Some(b',') => j += 1,
                    Some(b']') => return Ok(j + 1),
                    _ => return Err(j),
                }
            }
        }
        Some(b'"') => {
            let mut j = i + 1;
            loop {
                match b.get(j) {
                    Some(b'"') => return Ok(j + 1),
                    Some(b'\\') => match b.get(j + 1) {
                        Some(b'u')
                            if b.get(j + 2..j + 6)
                                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                        {
                            j += 6
                        }
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j += 2,
                        _ => return Err(j),
                    },
                    Some(c) if *c >= 0x20 => j += 1,
                    _ => return Err(j),
                }
            }
        }
        Some(b't') if b[i..].starts_with(b"true") => Ok(i + 4),
        Some(b'f') if b[i..].starts_with(b"false") => Ok(i + 5),
        Some(b'n') if b[i..].starts_with(b"null") => Ok(i + 4),
        Some(c) if c.is_ascii_digit() || *c == b'-' => {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_digit() || b".eE+-".contains(&b[j])) {
                j += 1;
            }
            Ok(j)
        }
        _ => Err(i),
    }
}

fn fake(b: Behaviour) -> (FakeImap, tempfile::TempDir, String) {
    let pki = certs::pki_for(&["localhost", "127.0.0.1"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = certs::write_ca(dir.path(), &pki);
    let server = FakeImap::start(b, certs::rustls_server_config(&pki));
    (server, dir, ca.display().to_string())
}

#[test]
fn a_server_that_runs_commands_injected_after_starttls_fails() {
    let (server, _dir, ca) = fake(Behaviour {
        injectable: true,
        ..Behaviour::default()
    });
    let addr = local(server.port);
    let r = check(&["--cafile", &ca, &addr], None);
    let p = server.port;
    r.expect(&[
        (&format!("starttls.{p}.injection"), "FAIL"),
        (&format!("starttls.{p}.offered"), "OK"),
        (&format!("starttls.{p}.plaintext-login"), "OK"),
        (&format!("tls.{p}.chain"), "OK"),
        (&format!("greeting.{p}"), "OK"),
    ]);
    assert!(
        r.finding(&format!("starttls.{p}.injection"))
            .contains("\"result\":\"executed\""),
        "{}",
        r.json
    );
    assert!(r.json.contains("\"result\":\"FAIL\""), "{}", r.json);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    // The probe's connection carried STARTTLS and NOOPs, nothing else.
    let received = server.received.lock().unwrap().clone();
    assert!(
        received.iter().any(|l| l.ends_with(" NOOP")),
        "{received:?}"
    );

    // The same server without the bug: the injected NOOP is dropped.
    let (server, _dir, ca) = fake(Behaviour::default());
    let p = server.port;
    let r = check(&["--cafile", &ca, &local(p)], None);
    r.expect(&[
        (&format!("starttls.{p}.injection"), "OK"),
        (&format!("caps.{p}.changed"), "OK"),
        ("latency", "OK"),
        ("server.id", "OK"),
    ]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.json, r.stderr);
}

#[test]
fn without_tls_no_password_is_sent_and_the_rest_is_still_checked() {
    let (server, _dir, ca) = fake(Behaviour {
        plain_caps: "IMAP4rev1 ID AUTH=PLAIN".into(),
        ..Behaviour::default()
    });
    let p = server.port;
    let r = check(&["--cafile", &ca, "-u", "alice", &local(p)], Some("secret"));
    r.expect(&[
        (&format!("starttls.{p}.offered"), "FAIL"),
        (&format!("starttls.{p}.plaintext-login"), "WARN"),
        ("login", "FAIL"),
        ("server.id", "OK"),
        ("latency", "OK"),
    ]);
    assert!(
        r.finding("login")
            .contains("never sends a password in plaintext"),
        "{}",
        r.json
    );
    let received = server.received.lock().unwrap().clone();
    assert!(
        received
            .iter()
            .all(|l| !l.contains("secret") && !l.contains("LOGIN") && !l.contains("AUTHENTICATE")),
        "{received:?}"
    );
    // Read-only: nothing but these was ever sent.
    for line in &received {
        let verb = line.split_whitespace().nth(1).unwrap_or("");
        assert!(
            ["CAPABILITY", "NOOP", "ID", "STARTTLS", "LOGOUT"].contains(&verb),
            "{line}"
        );
    }
    assert_eq!(r.code, Some(1));
}

#[test]
fn capabilities_that_change_under_tls_are_a_warning() {
    let (server, _dir, ca) = fake(Behaviour {
        plain_caps: "IMAP4rev1 STARTTLS LOGINDISABLED IDLE MOVE".into(),
        tls_caps: "IMAP4rev1 AUTH=PLAIN X-BACKEND".into(),
        ..Behaviour::default()
    });
    let p = server.port;
    let keys = tempfile::tempdir().expect("tempdir");
    let keylog = keys.path().join("keys.log");
    let keylog = keylog.display().to_string();
    let r = check(&["--cafile", &ca, "--keylog", &keylog, &local(p)], None);
    r.expect(&[(&format!("caps.{p}.changed"), "WARN")]);
    // --keylog warns once, however many handshakes the check makes.
    assert_eq!(
        r.stderr.matches("TLS session keys are written").count(),
        1,
        "{}",
        r.stderr
    );
    let f = r.finding(&format!("caps.{p}.changed"));
    assert!(
        f.contains("\"only_plaintext\":[\"IDLE\",\"MOVE\"]")
            && f.contains("\"only_tls\":[\"X-BACKEND\"]"),
        "{f}"
    );
    // A WARN alone passes, unless --strict.
    assert_eq!(r.code, Some(0), "{}", r.json);
    let strict = check(&["--strict", "--cafile", &ca, &local(p)], None);
    assert_eq!(strict.code, Some(1), "{}", strict.json);
}

#[test]
fn a_slow_server_gives_findings_not_a_hang() {
    // The greeting comes late (a WARN), and NOOP is never answered (a
    // FAIL once --timeout runs out): the check ends with its report.
    let (server, _dir, ca) = fake(Behaviour {
        implicit: true,
        greeting_delay: Duration::from_millis(2500),
        noop_hangs: true,
        ..Behaviour::default()
    });
    let p = server.port;
    let r = check(
        &["--timeout", "6", "--tls", "--cafile", &ca, &local(p)],
        None,
    );
    r.expect(&[
        (&format!("greeting.{p}"), "WARN"),
        ("latency", "FAIL"),
        (&format!("tls.{p}.negotiated"), "OK"),
        (&format!("tls.{p}.tls12"), "OK"),
        (&format!("tls.{p}.tls13"), "OK"),
    ]);
    assert!(
        r.finding("latency").contains("within 6"),
        "{}",
        r.finding("latency")
    );
    assert_eq!(r.code, Some(1));
}

/// A fake server with this certificate, over implicit TLS.
fn fake_with(pki: &certs::TestPki) -> FakeImap {
    FakeImap::start(
        Behaviour {
            implicit: true,
            ..Behaviour::default()
        },
        certs::rustls_server_config(pki),
    )
}

#[test]
fn every_certificate_problem_is_a_finding_of_its_own() {
    // Self-signed, expired and for another name: a session stops at the
    // first; the check reports all three, and the rest of the port.
    let pki = certs::expired_self_signed_for(&["imap.test"]);
    let server = fake_with(&pki);
    let p = server.port;
    let r = check(&["--tls", &local(p)], None);
    r.expect(&[
        (&format!("tls.{p}.chain"), "FAIL"),
        (&format!("tls.{p}.expiry"), "FAIL"),
        (&format!("tls.{p}.name"), "FAIL"),
        (&format!("tls.{p}.key"), "OK"),
        (&format!("tls.{p}.negotiated"), "OK"),
        (&format!("greeting.{p}"), "OK"),
        ("latency", "OK"),
    ]);
    assert!(
        r.finding(&format!("tls.{p}.chain"))
            .contains("\"status\":\"self-signed\""),
        "{}",
        r.json
    );
    assert!(
        r.finding(&format!("tls.{p}.expiry")).contains("expired"),
        "{}",
        r.json
    );
    assert!(
        r.finding(&format!("tls.{p}.name")).contains("imap.test"),
        "{}",
        r.json
    );

    // Pinned, a self-signed certificate is trusted here, yet clients
    // would refuse it: a WARN.
    let pki = certs::self_signed_for(&["localhost"]);
    let server = fake_with(&pki);
    let p = server.port;
    let pin = certs::pin_of(&pki.cert_der);
    let r = check(&["--tls", "--pin", &pin, &format!("localhost:{p}")], None);
    r.expect(&[
        (&format!("tls.{p}.chain"), "WARN"),
        (&format!("tls.{p}.name"), "OK"),
        (&format!("tls.{p}.expiry"), "OK"),
    ]);
    assert_eq!(r.code, Some(0), "{}", r.json);
}

#[test]
fn through_a_proxy_the_server_is_checked_behind_it() {
    use crate::support::proxies::{Behaviour as ProxyBehaviour, Kind, TestProxy};
    let (server, _dir, ca) = fake(Behaviour::default());
    let p = server.port;
    let proxy = TestProxy::start(ProxyBehaviour {
        kind: Kind::Socks5,
        creds: None,
        refuse: false,
    });
    let url = proxy.url("socks5h", None);
    let r = check(
        &["--proxy", &url, "--cafile", &ca, &format!("localhost:{p}")],
        None,
    );
    r.expect(&[
        (&format!("reach.{p}.proxy"), "OK"),
        (&format!("greeting.{p}"), "OK"),
        (&format!("tls.{p}.chain"), "OK"),
        (&format!("starttls.{p}.injection"), "OK"),
        (&format!("tls.{p}.tls12"), "OK"),
        ("latency", "OK"),
    ]);
    // The proxy resolves the name: no DNS finding of imaptalk's own.
    assert!(!r.json.contains("{\"id\":\"dns\""), "{}", r.json);
    assert!(
        proxy
            .seen()
            .iter()
            .all(|s| s == &format!("socks5 name localhost:{p}")),
        "{:?}",
        proxy.seen()
    );
    assert_eq!(r.code, Some(0), "{}", r.json);
}

#[test]
fn nothing_listening_is_exit_3_with_a_report() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let r = check(&[&local(port)], None);
    r.expect(&[("dns", "OK"), (&format!("reach.{port}.127.0.0.1"), "FAIL")]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
}

#[test]
fn the_text_form_is_aligned_and_escaped() {
    let (server, _dir, ca) = fake(Behaviour {
        greeting: "* OK \u{1b}]0;owned\u{7} ready \u{202e}".into(),
        ..Behaviour::default()
    });
    let p = server.port;
    let out = imaptalk()
        .args(["--check", "--cafile", &ca, &local(p)])
        .output()
        .expect("run");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    assert!(
        text.contains("\\x1b]0;owned\\x07 ready \\u{202e}"),
        "{text}"
    );
    // The server's ID value holds an escape sequence too.
    assert!(text.contains("name=fake\\x1b[31m"), "{text}");
    assert!(
        text.starts_with(&format!("imaptalk --check 127.0.0.1:{p}\n")),
        "{text}"
    );
    // Every finding's text starts in the same column.
    let columns: Vec<usize> = text
        .lines()
        .filter(|l| l.starts_with("  OK ") || l.starts_with("  WARN ") || l.starts_with("  FAIL "))
        .map(|l| {
            let after_id = l[8..].find("  ").expect("two spaces after the id") + 8;
            after_id + l[after_id..].len() - l[after_id..].trim_start().len()
        })
        .collect();
    assert!(columns.len() > 10, "{text}");
    assert!(
        columns.iter().all(|c| *c == columns[0]),
        "{columns:?}\n{text}"
    );
    assert!(
        text.lines().last().unwrap_or("").starts_with("OK: "),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn usage_errors_keep_exit_2() {
    for args in [
        &["--check", "--insecure", "h"][..],
        &["--check", "-c", "NOOP", "h"],
        &["--json", "h"],
        &["--strict", "h"],
    ] {
        let out = imaptalk().args(args).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[cfg(unix)]
mod dovecot {
    use super::*;
    use crate::support::dovecot::{Cert, Dovecot, Features};

    #[test]
    fn a_well_configured_dovecot_passes_with_a_login() {
        let d = Dovecot::start_with(Features {
            no_plaintext_auth: true,
            cert: Cert::FullChain,
            ..Features::default()
        });
        d.deliver("alice", "INBOX", b"Subject: hi\r\n\r\nhello\r\n");
        let (user, pass) = d.user();
        let ca = d.ca_file().display().to_string();
        // 127.0.0.2: Dovecot takes 127.0.0.1 to 127.0.0.1 for a local,
        // secure connection (see Features::no_plaintext_auth).
        let host = if cfg!(target_os = "linux") {
            "127.0.0.2"
        } else {
            "127.0.0.1"
        };
        let plain = format!("{host}:{}", d.plain_port());
        let r = check(
            &[
                "--cafile",
                &ca,
                "--servername",
                "localhost",
                "-u",
                user,
                &plain,
            ],
            Some(pass),
        );
        let p = d.plain_port();
        let mut levels = vec![
            (format!("reach.{p}.{host}"), "OK"),
            (format!("greeting.{p}"), "OK"),
            (format!("starttls.{p}.offered"), "OK"),
            (format!("starttls.{p}.injection"), "OK"),
            (format!("tls.{p}.negotiated"), "OK"),
            (format!("tls.{p}.chain"), "OK"),
            (format!("tls.{p}.name"), "OK"),
            (format!("tls.{p}.expiry"), "OK"),
            (format!("tls.{p}.key"), "OK"),
            (format!("tls.{p}.tls12"), "OK"),
            (format!("tls.{p}.tls13"), "OK"),
            (format!("caps.{p}.plaintext"), "OK"),
            (format!("caps.{p}.tls"), "OK"),
            (format!("caps.{p}.changed"), "OK"),
            ("caps.login".into(), "OK"),
            ("caps.notable".into(), "OK"),
            ("server.id".into(), "OK"),
            ("login.mechanisms".into(), "OK"),
            ("login".into(), "OK"),
            ("login.mailboxes".into(), "OK"),
            ("login.inbox".into(), "OK"),
            ("latency".into(), "OK"),
        ];
        if cfg!(target_os = "linux") {
            levels.push((format!("starttls.{p}.plaintext-login"), "OK"));
        }
        let levels: Vec<(&str, &str)> = levels.iter().map(|(i, l)| (i.as_str(), *l)).collect();
        r.expect(&levels);
        assert!(
            r.finding(&format!("tls.{p}.chain"))
                .contains("\"chain\":[\"CN=localhost\",\"CN=imaptalk test intermediate CA\"]"),
            "{}",
            r.json
        );
        assert!(
            r.finding("login.inbox").contains("\"messages\":1"),
            "{}",
            r.json
        );
        assert!(
            r.finding("server.id").contains("\"name\":\"Dovecot\""),
            "{}",
            r.json
        );
        assert!(
            r.json.contains("\"result\":\"OK\""),
            "{}\n{}",
            r.json,
            r.stderr
        );
        assert_eq!(r.code, Some(0));
        // Read-only: the message is still new (EXAMINE, not SELECT).
        assert!(
            std::fs::read_dir(d.maildir("alice").join("new"))
                .expect("new/")
                .count()
                == 1,
            "EXAMINE must not move the message out of new/"
        );

        let tls = format!("{host}:{}", d.tls_port());
        let r = check(
            &["--tls", "--cafile", &ca, "--servername", "localhost", &tls],
            None,
        );
        let p = d.tls_port();
        r.expect(&[
            (&format!("tls.{p}.chain"), "OK"),
            (&format!("tls.{p}.tls13"), "OK"),
            (&format!("greeting.{p}"), "OK"),
            ("latency", "OK"),
        ]);
        assert!(!r.has("login"), "{}", r.json);
        assert_eq!(r.code, Some(0), "{}", r.json);
    }

    #[test]
    fn a_badly_configured_dovecot_fails_and_says_why() {
        // Plaintext logins, a certificate that expires in 5 days, TLS 1.3 only.
        let d = Dovecot::start_with(Features {
            cert: Cert::ExpiresIn(5),
            tls13_only: true,
            ..Features::default()
        });
        let ca = d.ca_file().display().to_string();
        let p = d.plain_port();
        let r = check(&["--cafile", &ca, &local(p)], None);
        r.expect(&[
            (&format!("starttls.{p}.plaintext-login"), "WARN"),
            (&format!("tls.{p}.expiry"), "FAIL"),
            (&format!("tls.{p}.tls12"), "WARN"),
            (&format!("tls.{p}.tls13"), "OK"),
            (&format!("tls.{p}.chain"), "OK"),
        ]);
        let expiry = r.finding(&format!("tls.{p}.expiry"));
        assert!(
            expiry.contains("\"days_left\":4") || expiry.contains("\"days_left\":5"),
            "{expiry}"
        );
        assert!(expiry.contains("renew"), "{expiry}");
        assert!(r.json.contains("\"result\":\"FAIL\""), "{}", r.json);
        assert_eq!(r.code, Some(1));
    }

    #[test]
    fn a_chain_without_its_intermediate_is_incomplete_and_no_password_goes() {
        let d = Dovecot::start_with(Features {
            cert: Cert::NoIntermediate,
            ..Features::default()
        });
        let (user, pass) = d.user();
        let ca = d.ca_file().display().to_string();
        let p = d.tls_port();
        let r = check(
            &["--tls", "--cafile", &ca, "-u", user, &local(p)],
            Some(pass),
        );
        r.expect(&[
            (&format!("tls.{p}.chain"), "FAIL"),
            (&format!("tls.{p}.name"), "OK"),
            (&format!("tls.{p}.expiry"), "OK"),
            ("login", "FAIL"),
        ]);
        let chain = r.finding(&format!("tls.{p}.chain"));
        assert!(chain.contains("\"status\":\"incomplete\""), "{chain}");
        assert!(
            chain.contains("\"missing_issuer\":\"CN=imaptalk test intermediate CA\""),
            "{chain}"
        );
        assert!(r.finding("login").contains("not attempted"), "{}", r.json);
        assert!(
            !d.log().contains("user=<alice>"),
            "no login may reach the server:\n{}",
            d.log()
        );
        assert_eq!(r.code, Some(1));
    }
}
