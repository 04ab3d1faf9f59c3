//! `-o FILE`: what would go to stdout goes to FILE, byte for byte, for
//! shells whose `>` re-encodes (PowerShell 5.1 writes UTF-16).

use crate::support::certs::{pki_for, rustls_server_config, write_ca};
use crate::support::scripted::{ScriptedServer, Step, expect, send};
use crate::support::{imaptalk, local, stderr_of};

/// A literal with CR, LF, 8-bit bytes and an escape sequence: none of it
/// may be changed on the way to the file.
const BODY: &[u8] = b"Subject: x\r\n\r\n\xc3\xa9t\xe9 \x1b[2J\xff\xfe\r\nend\n";

#[test]
fn output_file_gets_the_exact_bytes_and_stdout_nothing() {
    let mut reply = format!("* 1 FETCH (BODY[] {{{}}}\r\n", BODY.len()).into_bytes();
    reply.extend_from_slice(BODY);
    reply.extend_from_slice(b")\r\na1 OK done\r\n");
    let server = ScriptedServer::start(vec![
        send("* OK ready\r\n"),
        expect("a1 FETCH 1 BODY[]"),
        Step::Send(reply.clone()),
        expect("a2 LOGOUT"),
        send("* BYE bye\r\na2 OK bye\r\n"),
        Step::Close,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.bin");
    // What was there before is replaced, as with `> FILE`.
    std::fs::write(&path, vec![b'x'; 10_000]).unwrap();
    let out = imaptalk()
        .arg(local(server.port()))
        .args(["-c", "FETCH 1 BODY[]", "-o"])
        .arg(&path)
        .output()
        .unwrap();
    let t = server.finish();
    t.assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    let mut want = b"* OK ready\r\n".to_vec();
    want.extend_from_slice(&reply);
    want.extend_from_slice(b"* BYE bye\r\na2 OK bye\r\n");
    assert_eq!(std::fs::read(&path).unwrap(), want);
}

#[test]
fn an_output_file_that_cannot_be_created_fails_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/out.bin");
    let why = imaptalk::text::io_text(&std::fs::File::create(&path).unwrap_err());
    // Nothing listens on port 1: a connection attempt would be exit 3.
    let out = imaptalk()
        .args(["127.0.0.1:1", "-c", "NOOP", "--output"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr_of(&out),
        format!("imaptalk: -o {}: {why}\n", path.display())
    );
}

#[test]
fn show_certs_writes_the_pem_to_the_output_file() {
    let pki = pki_for(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(dir.path(), &pki);
    let server = ScriptedServer::start_tls(
        vec![
            send("* OK ready\r\n"),
            expect("a1 LOGOUT"),
            send("* BYE bye\r\na1 OK bye\r\n"),
            Step::Close,
        ],
        rustls_server_config(&pki),
    );
    let path = dir.path().join("chain.pem");
    let out = imaptalk()
        .args(["--show-certs", "--cafile"])
        .arg(&ca)
        .arg(format!("imaps://localhost:{}", server.port()))
        .arg("-o")
        .arg(&path)
        .output()
        .unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty());
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
    let first = pem.split("-----END CERTIFICATE-----").next().unwrap();
    assert_eq!(
        first.replace(['\n', '\r'], ""),
        pki.cert_chain_pem
            .split("-----END CERTIFICATE-----")
            .next()
            .unwrap()
            .replace(['\n', '\r'], "")
    );
}
