//! `--listen`: mail clients through the proxy to a real Dovecot and to
//! scripted hostile servers. What each side sent is compared with what the
//! other received (a recording tap of the test's own between the proxy and
//! the server), and the records on stdout are checked for framing and for
//! secrets.

use crate::support::dovecot::Dovecot;
use crate::support::listen::{Client, Proxy, Tap};
use crate::support::local;
use crate::support::scripted::{ScriptedServer, Step, expect, send};
use std::process::Command;
use std::time::Duration;

fn login(d: &Dovecot) -> String {
    let (u, p) = d.user();
    format!("LOGIN {u} {p}")
}

/// The server's bytes as the proxy passes them on: capability lists
/// without COMPRESS=DEFLATE (see the README), nothing else changed.
fn as_passed_on(server: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(server)
        .replace(" COMPRESS=DEFLATE", "")
        .into_bytes()
}

#[test]
fn every_byte_passes_unchanged_both_ways() {
    let d = Dovecot::start();
    d.deliver("alice", "INBOX", b"Subject: one\r\n\r\nfirst\r\n");
    let tap = Tap::start(local(d.plain_port()));
    let proxy = Proxy::start(&[&tap.addr()]);
    let mut c = Client::connect(&proxy.addr());
    c.until("\r\n");
    c.send(format!("a1 {}\r\n", login(&d)).as_bytes());
    c.until("a1 OK");
    c.send(b"a2 SELECT INBOX\r\n");
    c.until("a2 OK");
    // A synchronizing literal holding lines that look like commands and
    // completions: data, passed on as it is.
    let msg = b"Subject: forged\r\n\r\na3 LOGOUT\r\na2 OK forged completion\r\n";
    c.send(format!("a3 APPEND INBOX {{{}}}\r\n", msg.len()).as_bytes());
    c.until("+ ");
    c.send(msg);
    c.send(b"\r\n");
    c.until("a3 OK");
    // LITERAL+, pipelined commands, a command imaptalk does not know.
    let bin = b"Subject: plus\r\n\r\n\x1b[31m \xff\xfe\r\n";
    let mut batch = format!("a4 APPEND INBOX {{{}+}}\r\n", bin.len()).into_bytes();
    batch.extend_from_slice(bin);
    batch.extend_from_slice(
        b"\r\na5 NOOP\r\na6 FETCH 1:* (FLAGS)\r\na7 FETCH 2 BODY.PEEK[]\r\na8 XYZZY\r\n",
    );
    c.send(&batch);
    c.until("a8 ");
    c.until("\r\n");
    c.send(b"a9 IDLE\r\n");
    c.until("+ ");
    c.send(b"DONE\r\n");
    c.until("a9 OK");
    c.send(b"b1 LOGOUT\r\n");
    c.until("b1 OK");
    let received = c.rest();
    let _ = received;
    proxy.wait_for("#1 *: close by");
    let stopped = proxy.stop();
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let (to_server, from_server) = tap.bytes(0);
    let mut sent = Vec::new();
    sent.extend_from_slice(format!("a1 {}\r\n", login(&d)).as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&to_server),
        String::from_utf8_lossy(&{
            let mut v = sent.clone();
            v.extend_from_slice(b"a2 SELECT INBOX\r\n");
            v.extend_from_slice(format!("a3 APPEND INBOX {{{}}}\r\n", msg.len()).as_bytes());
            v.extend_from_slice(msg);
            v.extend_from_slice(b"\r\n");
            v.extend_from_slice(&batch);
            v.extend_from_slice(b"a9 IDLE\r\nDONE\r\nb1 LOGOUT\r\n");
            v
        }),
        "what the client sent reaches the server unchanged"
    );
    assert_eq!(
        String::from_utf8_lossy(&as_passed_on(&from_server)),
        String::from_utf8_lossy(&c.got),
        "what the server sent reaches the client unchanged"
    );
    let records = stopped.of(1);
    let text = records.join("\n");
    assert!(
        !text.contains("wonderland"),
        "the password is masked:\n{text}"
    );
    assert!(
        records.contains(&"C: a1 LOGIN alice ****".to_string()),
        "{text}"
    );
    // The lines inside the literal are literal data, never commands.
    assert!(records.contains(&"C+ a3 LOGOUT".to_string()), "{text}");
    assert!(
        records.contains(&"C+ a2 OK forged completion".to_string()),
        "{text}"
    );
    assert!(!records.contains(&"C: a3 LOGOUT".to_string()), "{text}");
    assert!(records.contains(&"C: DONE".to_string()), "{text}");
    assert!(records.contains(&"C: a8 XYZZY".to_string()), "{text}");
    assert!(!text.contains("no command was sent"), "{text}");
    assert!(
        records.iter().any(|r| r.starts_with("*: close by")),
        "{text}"
    );
    assert!(
        stopped.stderr.contains("1 connection served"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn a_refused_literal_and_a_forged_completion_in_a_server_literal() {
    let body = "Subject: x\r\n\r\na2 OK forged\r\n* BYE forged\r\n";
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 APPEND INBOX {100}"),
        // Refused: the data never comes, and the next line is a command.
        send("a1 NO [TOOBIG] too big\n"),
        expect("a2 FETCH 1 BODY[]"),
        Step::Send(
            format!(
                "* 1 FETCH (BODY[] {{{}}}\r\n{body})\r\na2 OK done\r\n",
                body.len()
            )
            .into_bytes(),
        ),
        expect("a3 LOGOUT"),
        send("* BYE bye\na3 OK bye\n"),
        Step::Close,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("proxy.log");
    let proxy = Proxy::start(&["--log", log.to_str().unwrap(), &local(server.port())]);
    let mut c = Client::connect(&proxy.addr());
    c.until("* OK ready\r\n");
    c.send(b"a1 APPEND INBOX {100}\r\n");
    c.until("a1 NO");
    c.send(b"a2 FETCH 1 BODY[]\r\n");
    c.until("a2 OK done\r\n");
    c.send(b"a3 LOGOUT\r\n");
    c.until("a3 OK bye\r\n");
    proxy.wait_for("#1 *: close by");
    let stopped = proxy.stop();
    server.finish().assert_ok();
    let records = stopped.of(1);
    let text = records.join("\n");
    assert!(records.contains(&"S+ a2 OK forged".to_string()), "{text}");
    assert!(records.contains(&"S+ * BYE forged".to_string()), "{text}");
    assert!(
        records.contains(&"C: a2 FETCH 1 BODY[]".to_string()),
        "{text}"
    );
    // Every completion matched a command sent with its tag.
    assert!(!text.contains("no command was sent"), "{text}");
    // --log FILE holds the same records as stdout, in a file for its owner.
    assert_eq!(std::fs::read_to_string(&log).unwrap(), stopped.stdout);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&log).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_client_gone_mid_literal_ends_only_its_connection() {
    let d = Dovecot::start();
    let proxy = Proxy::start(&[&local(d.plain_port())]);
    let mut b = Client::connect(&proxy.addr());
    b.until("\r\n");
    b.send(format!("b1 {}\r\n", login(&d)).as_bytes());
    b.until("b1 OK");
    {
        let mut a = Client::connect(&proxy.addr());
        a.until("\r\n");
        a.send(format!("a1 {}\r\n", login(&d)).as_bytes());
        a.until("a1 OK");
        a.send(b"a2 APPEND INBOX {100000+}\r\n");
        a.send(&[b'x'; 5000]);
    }
    proxy.wait_for("in the middle of a 100000-byte literal");
    b.send(b"b2 NOOP\r\n");
    b.until("b2 OK");
    let mut c = Client::connect(&proxy.addr());
    c.until("\r\n");
    c.send(b"c1 LOGOUT\r\n");
    c.until("c1 OK");
    let stopped = proxy.stop();
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let a = stopped.of(2).join("\n");
    assert!(
        a.contains("*: the client closed the connection in the middle of a 100000-byte literal (5000 bytes sent)"),
        "{a}"
    );
    assert!(a.contains("*: close by client"), "{a}");
    assert!(stopped.of(3).join("\n").contains("C: c1 LOGOUT"));
    assert!(
        stopped.stderr.contains("3 connections served"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn twenty_clients_at_once() {
    let d = Dovecot::start();
    d.deliver("alice", "INBOX", b"Subject: one\r\n\r\nfirst\r\n");
    let proxy = Proxy::start(&[&local(d.plain_port())]);
    let addr = proxy.addr();
    let login = login(&d);
    // All connected before any logs in: twenty at once, for real.
    let mut clients: Vec<Client> = (0..20).map(|_| Client::connect(&addr)).collect();
    std::thread::scope(|s| {
        for (i, c) in clients.iter_mut().enumerate() {
            let login = login.clone();
            s.spawn(move || {
                c.until("\r\n");
                c.send(format!("x{i} {login}\r\n").as_bytes());
                c.until(&format!("x{i} OK"));
                c.send(format!("y{i} SELECT INBOX\r\nz{i} FETCH 1 BODY.PEEK[]\r\n").as_bytes());
                let fetched = c.until(&format!("z{i} OK"));
                assert!(fetched.contains("first"), "{fetched}");
                c.send(format!("w{i} LOGOUT\r\n").as_bytes());
                c.until(&format!("w{i} OK"));
            });
        }
    });
    for n in 1..=20 {
        proxy.wait_for(&format!("#{n} *: close by"));
    }
    let stopped = proxy.stop();
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    for n in 1..=20 {
        let r = stopped.of(n);
        assert!(
            r.iter().any(|l| l.ends_with(" LOGIN alice ****")),
            "#{n}: {r:?}"
        );
        assert!(r.iter().any(|l| l.starts_with("S+ first")), "#{n}: {r:?}");
    }
}

#[test]
fn an_unreachable_server_gets_the_client_a_bye() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let proxy = Proxy::start(&[&local(port)]);
    let mut c = Client::connect(&proxy.addr());
    let rest = String::from_utf8_lossy(&c.rest()).into_owned();
    assert!(
        rest.starts_with("* BYE [UNAVAILABLE] imaptalk --listen: cannot connect to 127.0.0.1:"),
        "{rest}"
    );
    // The proxy goes on: the next client is served (and told the same).
    let mut c = Client::connect(&proxy.addr());
    assert!(String::from_utf8_lossy(&c.rest()).contains("* BYE [UNAVAILABLE]"));
    let stopped = proxy.stop();
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("2 connections served"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn ctrl_c_closes_every_connection_and_exits_0() {
    let d = Dovecot::start();
    let proxy = Proxy::start(&[&local(d.plain_port())]);
    let mut a = Client::connect(&proxy.addr());
    a.until("\r\n");
    let mut b = Client::connect(&proxy.addr());
    b.until("\r\n");
    b.send(b"b1 IDLE\r\n");
    proxy.wait_for("#2 C: b1 IDLE");
    let stopped = proxy.stop();
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    // Both clients see the end of their connection.
    a.rest();
    b.rest();
    for n in 1..=2 {
        assert!(
            stopped
                .of(n)
                .iter()
                .any(|r| r.starts_with("*: close by imaptalk (stopped)")),
            "{:?}",
            stopped.of(n)
        );
    }
    assert!(
        stopped
            .stderr
            .contains("imaptalk: stopped by SIGINT: 2 connections served"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn starttls_toward_the_server_hides_the_plaintext_capabilities() {
    let d = Dovecot::start();
    let ca = d.ca_file().to_str().unwrap().to_string();
    let proxy = Proxy::start(&[
        "--starttls",
        "--cafile",
        &ca,
        &format!("localhost:{}", d.plain_port()),
    ]);
    let mut c = Client::connect(&proxy.addr());
    let greeting = c.until("\r\n");
    assert!(
        greeting.starts_with("* OK ") && !greeting.contains("CAPABILITY"),
        "{greeting}"
    );
    c.send(b"a1 CAPABILITY\r\n");
    let caps = c.until("a1 OK");
    assert!(!caps.contains("LOGINDISABLED"), "{caps}");
    // The proxy may do STARTTLS toward the client: it says so.
    assert!(caps.contains("STARTTLS"), "{caps}");
    c.send(format!("a2 {}\r\na3 COMPRESS DEFLATE\r\na4 LOGOUT\r\n", login(&d)).as_bytes());
    let rest = c.until("a4 OK");
    assert!(rest.contains("a2 OK"), "{rest}");
    assert!(!rest.contains("COMPRESS=DEFLATE"), "{rest}");
    assert!(
        rest.contains("a3 NO COMPRESS is not passed on by imaptalk --listen"),
        "{rest}"
    );
    let stopped = proxy.stop();
    let r = stopped.of(1).join("\n");
    assert!(r.contains("*: tls TLS 1."), "{r}");
    assert!(r.contains("(STARTTLS)"), "{r}");
    assert!(
        r.contains("*: greeting shown to the client without its capabilities"),
        "{r}"
    );
    assert!(r.contains("*: imaptalk answered a3 NO"), "{r}");
}

/// Python's imaplib (standard library): LOGIN, AUTHENTICATE PLAIN, APPEND,
/// FETCH, over plaintext, STARTTLS toward the proxy and TLS toward it.
#[test]
fn python_imaplib_plain_starttls_and_tls() {
    if Command::new("python3")
        .arg("-c")
        .arg("import imaplib, ssl")
        .status()
        .map_or(true, |s| !s.success())
    {
        panic!("python3 with imaplib and ssl is needed for this test");
    }
    let d = Dovecot::start();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &d.pki().cert_chain_pem).unwrap();
    std::fs::write(&key, &d.pki().key_pem).unwrap();
    let ca = d.ca_file().to_str().unwrap().to_string();
    let (user, pass) = d.user();
    let script = |mode: &str, port: u16| {
        format!(
            r#"
import imaplib, ssl, sys
ctx = ssl.create_default_context(cafile={ca:?})
mode = {mode:?}
if mode == "tls":
    m = imaplib.IMAP4_SSL("localhost", {port}, ssl_context=ctx)
else:
    m = imaplib.IMAP4("localhost", {port})
    if mode == "starttls":
        m.starttls(ssl_context=ctx)
if mode == "plain":
    m.authenticate("PLAIN", lambda _: b"\0{user}\0{pass}")
else:
    m.login({user:?}, {pass:?})
typ, _ = m.append("INBOX", None, None, b"Subject: from python\r\n\r\na9 OK forged " + mode.encode() + b"\r\n")
assert typ == "OK", typ
m.select("INBOX")
typ, data = m.search(None, "ALL")
last = data[0].split()[-1]
typ, data = m.fetch(last, "(BODY.PEEK[])")
assert b"forged " + mode.encode() in data[0][1], data
m.logout()
print("ok", mode)
"#,
            ca = ca,
            mode = mode,
            port = port,
            user = user,
            pass = pass
        )
    };
    for (mode, flags) in [
        ("plain", vec![]),
        (
            "starttls",
            vec![
                "--listen-cert",
                cert.to_str().unwrap(),
                "--listen-key",
                key.to_str().unwrap(),
            ],
        ),
        (
            "tls",
            vec![
                "--listen-tls",
                "--listen-cert",
                cert.to_str().unwrap(),
                "--listen-key",
                key.to_str().unwrap(),
            ],
        ),
    ] {
        let mut args = flags.clone();
        let server = local(d.plain_port());
        args.push(&server);
        let proxy = Proxy::start(&args);
        let out = Command::new("python3")
            .arg("-c")
            .arg(script(mode, proxy.port))
            .output()
            .unwrap();
        let stopped = proxy.stop();
        assert!(
            out.status.success(),
            "{mode}: {}{}\nproxy:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            stopped.stdout,
            stopped.stderr
        );
        let r = stopped.of(1).join("\n");
        assert!(!r.contains(pass), "{mode}: the password leaked:\n{r}");
        assert!(
            !r.contains("AGFsaWNl"),
            "{mode}: the SASL response leaked:\n{r}"
        );
        assert!(
            r.contains(&format!("S+ a9 OK forged {mode}")),
            "{mode}:\n{r}"
        );
        match mode {
            "plain" => {
                assert!(r.contains(" AUTHENTICATE PLAIN"), "{r}");
                assert!(r.contains("C: ****"), "{r}");
            }
            "starttls" => assert!(r.contains("(client side, STARTTLS)"), "{r}"),
            _ => assert!(
                r.contains("*: tls TLS 1.3") && r.contains("(client side)"),
                "{r}"
            ),
        }
    }
}

/// How a client reaches the proxy, and the proxy's flags for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientTls {
    Plain,
    StartTls,
    Tls,
}

const ALL_TLS: [ClientTls; 3] = [ClientTls::Plain, ClientTls::StartTls, ClientTls::Tls];

/// Certificate and key files for the proxy's side (the Dovecot PKI's
/// leaf, valid for localhost, signed by the CA the clients trust).
struct ProxyCert {
    _dir: tempfile::TempDir,
    cert: String,
    key: String,
}

impl ProxyCert {
    fn new(d: &Dovecot) -> ProxyCert {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, &d.pki().cert_chain_pem).unwrap();
        std::fs::write(&key, &d.pki().key_pem).unwrap();
        ProxyCert {
            cert: cert.to_str().unwrap().to_string(),
            key: key.to_str().unwrap().to_string(),
            _dir: dir,
        }
    }

    fn proxy(&self, tls: ClientTls, server: &str) -> Proxy {
        let mut args = vec!["--listen-cert", &self.cert, "--listen-key", &self.key];
        if tls == ClientTls::Tls {
            args.push("--listen-tls");
        }
        args.push(server);
        Proxy::start(&args)
    }
}

fn need(program: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{program} is needed (scripts/test installs it with apt-get)"
    );
}

/// Messages for the real clients: text with a forged completion, 8-bit
/// text, and one of 300 KiB (a literal the terminal view cuts short).
fn deliver_mail(d: &Dovecot) {
    d.deliver(
        "alice",
        "INBOX",
        b"From: a@example.com\r\nSubject: forged\r\n\r\na2 OK not a completion\r\n* BYE not a bye\r\n",
    );
    d.deliver(
        "alice",
        "INBOX",
        "From: z@example.com\r\nSubject: 8bit\r\n\r\nGr\u{fc}\u{df}e, \u{65e5}\u{672c}\r\n"
            .as_bytes(),
    );
    let mut big = b"From: b@example.com\r\nSubject: big\r\n\r\n".to_vec();
    for i in 0..4000 {
        big.extend_from_slice(
            format!("{i:06} abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n")
                .as_bytes(),
        );
    }
    d.deliver("alice", "INBOX", &big);
}

/// The messages of a Maildir, sorted (file names differ from sync to
/// sync), without the X-TUID header mbsync adds with a random value.
fn maildir_messages(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries {
            let m = std::fs::read(e.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&m);
            let kept: String = text
                .split_inclusive('\n')
                .filter(|l| !l.starts_with("X-TUID: "))
                .collect();
            out.push(kept.into_bytes());
        }
    }
    out.sort();
    out
}

/// mbsync (isync) pulls INBOX into a Maildir through the proxy over each
/// kind of client connection: the same messages as a direct sync.
#[test]
fn mbsync_through_the_proxy_gets_what_a_direct_sync_gets() {
    need("mbsync");
    let d = Dovecot::start();
    deliver_mail(&d);
    let certs = ProxyCert::new(&d);
    let (user, pass) = d.user();
    let ca = d.ca_file().to_str().unwrap().to_string();
    let sync = |port: u16, ssl: &str, name: &str| -> Vec<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        std::fs::create_dir_all(&maildir).unwrap();
        let config = dir.path().join("mbsyncrc");
        std::fs::write(
            &config,
            format!(
                "IMAPAccount a\nHost localhost\nPort {port}\nUser {user}\nPass {pass}\nSSLType {ssl}\nSystemCertificates no\nCertificateFile {ca}\n\n\
                 IMAPStore remote\nAccount a\n\n\
                 MaildirStore local\nPath {m}/\nInbox {m}/INBOX\n\n\
                 Channel c\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nSync Pull\nSyncState *\n",
                m = maildir.display()
            ),
        )
        .unwrap();
        let out = Command::new("mbsync")
            .args(["-c", config.to_str().unwrap(), "-a"])
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mbsync {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        maildir_messages(&maildir.join("INBOX"))
    };
    let direct = sync(d.plain_port(), "STARTTLS", "direct");
    assert_eq!(direct.len(), 3);
    for tls in ALL_TLS {
        let proxy = certs.proxy(tls, &local(d.plain_port()));
        let ssl = match tls {
            ClientTls::Plain => "None",
            ClientTls::StartTls => "STARTTLS",
            ClientTls::Tls => "IMAPS",
        };
        let got = sync(proxy.port, ssl, ssl);
        proxy.wait_for("#1 *: close by");
        let stopped = proxy.stop();
        assert!(
            got == direct,
            "{tls:?}: the synced messages differ: {:?}\nvs direct {:?}\n{}",
            got.iter()
                .map(|m| String::from_utf8_lossy(&m[..m.len().min(300)]).into_owned())
                .collect::<Vec<_>>(),
            direct
                .iter()
                .map(|m| String::from_utf8_lossy(&m[..m.len().min(300)]).into_owned())
                .collect::<Vec<_>>(),
            stopped.stderr
        );
        let r = stopped.of(1).join("\n");
        assert!(!r.contains(pass), "{tls:?}: password in the records");
        assert!(r.contains("S+ a2 OK not a completion"), "{tls:?}:\n{r}");
        assert!(!r.contains("no command was sent"), "{tls:?}:\n{r}");
        assert!(!r.contains("close after an error"), "{tls:?}:\n{r}");
    }
}

/// curl: APPEND with -T and FETCH by UID, through the proxy over each
/// kind of client connection; the same bytes as fetched directly.
#[test]
fn curl_appends_and_fetches_through_the_proxy() {
    need("curl");
    let d = Dovecot::start();
    let certs = ProxyCert::new(&d);
    let (user, pass) = d.user();
    let ca = d.ca_file().to_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let curl = |url: &str, extra: &[&str]| -> Vec<u8> {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "20",
                "--cacert",
                &ca,
                "-u",
                &format!("{user}:{pass}"),
            ])
            .args(extra)
            .arg(url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {url} {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    for (i, tls) in ALL_TLS.into_iter().enumerate() {
        let proxy = certs.proxy(tls, &local(d.plain_port()));
        let base = match tls {
            ClientTls::Tls => format!("imaps://localhost:{}", proxy.port),
            _ => format!("imap://localhost:{}", proxy.port),
        };
        let ssl: &[&str] = if tls == ClientTls::StartTls {
            &["--ssl-reqd"]
        } else {
            &[]
        };
        let message = format!(
            "From: c@example.com\r\nSubject: curl {i}\r\n\r\na1 OK forged by curl's mail {i}\r\n"
        );
        let file = dir.path().join(format!("m{i}.eml"));
        std::fs::write(&file, &message).unwrap();
        let mut args = ssl.to_vec();
        args.extend(["-T", file.to_str().unwrap()]);
        curl(&format!("{base}/INBOX"), &args);
        let uid = i + 1;
        let fetched = curl(&format!("{base}/INBOX;UID={uid}"), ssl);
        let direct = curl(
            &format!("imap://localhost:{}/INBOX;UID={uid}", d.plain_port()),
            &["--ssl-reqd"],
        );
        assert_eq!(String::from_utf8_lossy(&fetched), message, "{tls:?}");
        assert_eq!(fetched, direct, "{tls:?}");
        proxy.wait_for("#2 *: close by");
        let stopped = proxy.stop();
        let r = stopped.records().join("\n");
        assert!(!r.contains(pass), "{tls:?}: password in the records:\n{r}");
        assert!(
            r.contains(&format!("C+ a1 OK forged by curl's mail {i}")),
            "{tls:?}:\n{r}"
        );
        assert!(
            r.contains(&format!("S+ a1 OK forged by curl's mail {i}")),
            "{tls:?}:\n{r}"
        );
        assert!(!r.contains("no command was sent"), "{tls:?}:\n{r}");
    }
}

/// fetchmail retrieves every message through the proxy (kept on the
/// server), in plaintext and with STARTTLS toward the proxy.
#[test]
fn fetchmail_retrieves_through_the_proxy() {
    need("fetchmail");
    let d = Dovecot::start();
    deliver_mail(&d);
    let certs = ProxyCert::new(&d);
    let (user, pass) = d.user();
    let ca = d.ca_file().to_str().unwrap().to_string();
    for tls in [ClientTls::Plain, ClientTls::StartTls] {
        let proxy = certs.proxy(tls, &local(d.plain_port()));
        let dir = tempfile::tempdir().unwrap();
        let out_file = dir.path().join("out.mbox");
        let rc = dir.path().join("fetchmailrc");
        let ssl = match tls {
            ClientTls::StartTls => format!("sslproto TLS1.2+ sslcertck sslcertfile {ca:?}"),
            _ => "sslproto ''".to_string(),
        };
        std::fs::write(
            &rc,
            format!(
                "poll localhost service {} protocol IMAP auth password\n  user {user:?} there with password {pass:?} is root here\n  keep fetchall {ssl}\n  mda \"/bin/sh -c 'cat >> {}'\"\n",
                proxy.port,
                out_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let out = Command::new("fetchmail")
            .args([
                "-f",
                rc.to_str().unwrap(),
                "--nodetach",
                "--nosyslog",
                "--pidfile",
            ])
            .arg(dir.path().join("pid"))
            .env("HOME", dir.path())
            .env("FETCHMAILHOME", dir.path())
            .output()
            .unwrap();
        proxy.wait_for("#1 *: close by");
        let stopped = proxy.stop();
        assert!(
            out.status.success(),
            "fetchmail {tls:?}: {}{}\nproxy:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            stopped.stdout
        );
        let got = std::fs::read(&out_file).unwrap();
        let got = String::from_utf8_lossy(&got);
        assert!(got.contains("a2 OK not a completion"), "{tls:?}: {got}");
        assert!(
            got.contains("003999 abcdefghij"),
            "{tls:?}: the big message"
        );
        let r = stopped.of(1).join("\n");
        assert!(!r.contains(pass), "{tls:?}: password in the records");
        if tls == ClientTls::StartTls {
            assert!(r.contains("(client side, STARTTLS)"), "{r}");
        }
    }
}

/// On a terminal: both sides labelled, escaped, the password masked, the
/// completion with its command's time; Ctrl-C stops with exit 0.
#[test]
fn on_a_terminal_both_sides_are_shown_with_times_and_secrets_masked() {
    use rexpect::session::spawn_command;
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 LOGIN alice s3cret"),
        send("a1 OK logged in\n"),
        expect("a2 FETCH 1 BODY[]"),
        Step::Send(b"* 1 FETCH (BODY[] {12}\r\n\x1b]0;pwned\x07\r\n)\r\na2 OK done\r\n".to_vec()),
        expect("a3 LOGOUT"),
        send("* BYE bye\na3 OK bye\n"),
        Step::Close,
    ]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imaptalk"));
    cmd.env("TERM", "xterm-256color")
        .env("HOME", std::env::temp_dir())
        .env_remove("NO_COLOR")
        .args(["--listen", "0", "--color", "never", &local(server.port())]);
    let mut p = spawn_command(cmd, Some(20_000)).expect("spawn on a pty");
    let (_, port) = p.exp_regex(r"listening on 127\.0\.0\.1:[0-9]+").unwrap();
    let port = port.rsplit(':').next().unwrap().to_string();
    let mut c = Client::connect(&format!("127.0.0.1:{port}"));
    c.until("* OK ready\r\n");
    c.send(b"a1 LOGIN alice s3cret\r\n");
    c.until("a1 OK");
    c.send(b"a2 FETCH 1 BODY[]\r\n");
    c.until("a2 OK done\r\n");
    c.send(b"a3 LOGOUT\r\n");
    c.until("a3 OK bye\r\n");
    p.exp_string("#1 S: * OK ready").unwrap();
    p.exp_string("#1 C: a1 LOGIN alice ****").unwrap();
    p.exp_regex(r"#1 S: a1 OK logged in  \([0-9.]+ m?s\)")
        .unwrap();
    p.exp_string("#1 S# literal, 12 bytes").unwrap();
    p.exp_string("#1 S| \\x1b]0;pwned\\x07").unwrap();
    p.exp_regex(r"#1 S: a2 OK done  \([0-9.]+ m?s\)").unwrap();
    p.exp_string("#1 * close by server").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("stopped by SIGINT: 1 connection served")
        .unwrap();
    let status = format!("{:?}", p.process().wait().unwrap());
    assert!(status.contains(", 0)"), "{status}");
    server.finish().assert_ok();
}

/// A literal count that fits no 64-bit number, from the server or from
/// the client, ends that connection with the reason; the proxy goes on.
#[test]
fn a_count_over_2_64_ends_that_connection_with_the_reason() {
    let server = ScriptedServer::start(vec![
        send("* OK ready\n"),
        expect("a1 FETCH 1 BODY[]"),
        send("* 1 FETCH (BODY[] {18446744073709551616}\nxyz"),
        Step::ExpectEof,
    ]);
    let proxy = Proxy::start(&[&local(server.port())]);
    let mut c = Client::connect(&proxy.addr());
    c.until("* OK ready\r\n");
    c.send(b"a1 FETCH 1 BODY[]\r\n");
    c.rest();
    server.finish().assert_ok();
    // The client's side: the next connection (its server is gone: a BYE).
    let mut c = Client::connect(&proxy.addr());
    c.rest();
    let stopped = proxy.stop();
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let r = stopped.of(1).join("\n");
    assert!(
        r.contains("*: close after an error: protocol error: the server announced a literal of 18446744073709551616 bytes, more than 2^64-1"),
        "{r}"
    );
    assert!(
        stopped
            .of(2)
            .join("\n")
            .contains("*: close after an error: cannot connect")
    );
}

#[test]
fn a_client_announcing_an_impossible_literal_is_closed() {
    let d = Dovecot::start();
    let proxy = Proxy::start(&[&local(d.plain_port())]);
    let mut c = Client::connect(&proxy.addr());
    c.until("\r\n");
    c.send(b"a1 APPEND INBOX {99999999999999999999999}\r\n");
    c.rest();
    let mut ok = Client::connect(&proxy.addr());
    ok.until("\r\n");
    ok.send(b"b1 LOGOUT\r\n");
    ok.until("b1 OK");
    let stopped = proxy.stop();
    let r = stopped.of(1).join("\n");
    assert!(
        r.contains("*: close after an error: protocol error: the client announced a literal with a 23-digit byte count"),
        "{r}"
    );
    assert!(stopped.of(2).contains(&"C: b1 LOGOUT".to_string()));
}

/// Without --listen-cert, a certificate is generated at start: the
/// fingerprint printed is the one a TLS client gets, so it can be trusted.
#[test]
fn the_generated_certificate_is_the_one_whose_fingerprint_is_printed() {
    let d = Dovecot::start();
    let proxy = Proxy::start(&["--listen-tls", &local(d.plain_port())]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !proxy.stderr_now().contains("SHA-256") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let said = proxy.stderr_now();
    let printed = said
        .lines()
        .find_map(|l| {
            l.strip_prefix("imaptalk: TLS toward clients uses a certificate generated for this run (localhost, 127.0.0.1, ::1), SHA-256 ")
        })
        .unwrap_or_else(|| panic!("no fingerprint: {said}"))
        .to_string();
    let script = format!(
        r#"
import hashlib, imaplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4_SSL("127.0.0.1", {port}, ssl_context=ctx)
der = m.sock.getpeercert(binary_form=True)
print(":".join("%02X" % b for b in hashlib.sha256(der).digest()))
m.logout()
"#,
        port = proxy.port
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), printed);
    let stopped = proxy.stop();
    assert!(
        stopped.of(1).join("\n").contains("*: tls TLS 1.3"),
        "{}",
        stopped.stdout
    );
}

/// The proxy, like a session, is woken by the server's socket only once a
/// read's worth of a long literal is there; what a server sends before it
/// pauses must still reach the client at once (the script fails if the
/// test does not see it before the gate's deadline).
#[test]
fn a_literal_that_pauses_is_passed_on_as_far_as_it_came() {
    use crate::support::scripted::Gate;
    const LEN: usize = 600_000;
    let (more, rest_gate) = (Gate::default(), Gate::default());
    let mut head = format!("* 1 FETCH (BODY[] {{{LEN}}}\r\n").into_bytes();
    let announced = head.len();
    head.extend_from_slice(&[b'x'; 1000]);
    head.extend_from_slice(b"<one>");
    let mut second = vec![b'x'; 40_000];
    second.extend_from_slice(b"<two>");
    let mut rest = vec![b'x'; LEN - (head.len() - announced) - second.len()];
    rest.extend_from_slice(b")\r\na1 OK done\r\n");
    let steps = vec![
        send("* OK ready\n"),
        expect("a1 FETCH 1 BODY[]"),
        Step::Send(head),
        Step::Wait(more.clone()),
        // Less than the proxy waits to be woken for, with more to come.
        Step::Send(second),
        Step::Wait(rest_gate.clone()),
        Step::Send(rest),
        expect("a2 LOGOUT"),
        send("* BYE bye\na2 OK bye\n"),
        Step::Close,
    ];
    let server = ScriptedServer::start(steps);
    let proxy = Proxy::start(&["--log-literals", "size", &local(server.port())]);
    let mut c = Client::connect(&proxy.addr());
    c.until("* OK ready\r\n");
    c.send(b"a1 FETCH 1 BODY[]\r\n");
    c.until("<one>");
    more.open();
    c.until("<two>");
    rest_gate.open();
    c.until("a1 OK done\r\n");
    c.send(b"a2 LOGOUT\r\n");
    c.until("a2 OK bye\r\n");
    server.finish().assert_ok();
    let stopped = proxy.stop();
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
}
