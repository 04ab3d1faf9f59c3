//! Try imaptalk without a mail account: starts a private, throwaway Dovecot
//! on 127.0.0.1 with demo users and messages, prints how to connect, and
//! stops it on Enter, Ctrl-C or end of input.
//!
//!     cargo run --example demo_server      (or scripts/demo)
//!
//! For scripts (scripts/bench): `--big-mib N` also delivers an N MiB
//! message to alice's folder `Big`, and `--env-file FILE` writes
//! `PLAIN_PORT=…`, `TLS_PORT=…` and `CA=…` lines to FILE once the server
//! is ready. For scripts/bench's scaling section: `--fill NAME=N`
//! (repeatable) gives alice a folder NAME of N small messages, some
//! `\Seen`, some `\Flagged`; `--folders N` gives bob N empty folders
//! (`Tree.000001-box` …) for a LIST of N names.
//!
//! Needs Dovecot 2.3 (Debian: dovecot-imapd). Nothing of the system Dovecot
//! is used or touched.

// Dovecot runs on Unix only: elsewhere the example says so and exits.
#[cfg(unix)]
#[path = "../tests/integration/support/certs.rs"]
mod certs;
#[cfg(unix)]
#[path = "../tests/integration/support/dovecot.rs"]
mod dovecot;

#[cfg(unix)]
use dovecot::Dovecot;
#[cfg(unix)]
use std::path::PathBuf;

#[cfg(not(unix))]
fn main() {
    eprintln!("demo_server: Dovecot runs on Unix only; run the demo on Linux or macOS");
    std::process::exit(1);
}

#[cfg(unix)]
#[tokio::main(flavor = "current_thread")]
async fn main() {
    use tokio::signal::unix::{SignalKind, signal};
    let opts = options();
    // Caught from the start: a signal while the mailboxes are written
    // (scripts/bench stopped, Ctrl-C) waits for the end of them, and the
    // temp dir is removed then, not left behind.
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let server = Dovecot::start();
    deliver_demo_mail(&server);
    if let Some(mib) = opts.big_mib {
        server.deliver("alice", "Big", &big_message(mib));
    }
    for (name, count) in &opts.fill {
        server.fill("alice", name, *count, small_message, |i| match i {
            _ if i % 7 == 0 => "FS",
            _ if i % 3 == 0 => "S",
            _ => "",
        });
    }
    if opts.folders > 0 {
        server.create_folders(
            "bob",
            (1..=opts.folders).map(|i| format!("Tree.{i:06}-box")),
        );
    }
    if let Some(path) = opts.env_file {
        let env = format!(
            "PLAIN_PORT={}\nTLS_PORT={}\nCA={}\n",
            server.plain_port(),
            server.tls_port(),
            server.ca_file().display()
        );
        std::fs::write(&path, env).expect("write the --env-file");
    }

    let ca = server.ca_file().display();
    println!("imaptalk demo Dovecot is running (press Enter or Ctrl-C to stop).");
    println!(
        "  plain + STARTTLS:  cargo run --release -- --starttls --cafile {ca} 127.0.0.1:{}",
        server.plain_port()
    );
    println!(
        "  implicit TLS:      cargo run --release -- --tls --cafile {ca} localhost:{}",
        server.tls_port()
    );
    for (user, pass) in dovecot::USERS {
        println!("  user {user}, password {pass}");
    }
    println!("  mailboxes: INBOX (3 messages: plain, UTF-8, binary attachment), Archive (1)");
    println!("  server log: {}", server.log_path().display());

    // Blocking stdin read on its own thread: tokio's stdin would keep the
    // runtime from shutting down while a read is pending.
    let (tx, mut stdin_done) = tokio::sync::mpsc::channel::<()>(1);
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = tx.blocking_send(());
    });
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
        _ = stdin_done.recv() => {}
    }

    println!("Stopping Dovecot.");
    drop(server); // stops Dovecot and removes its temp dir
    std::process::exit(0);
}

#[cfg(unix)]
#[derive(Default)]
struct Options {
    big_mib: Option<usize>,
    env_file: Option<PathBuf>,
    /// `--fill NAME=N`: alice's folder NAME gets N small messages.
    fill: Vec<(String, usize)>,
    /// `--folders N`: bob gets N empty folders.
    folders: usize,
}

#[cfg(unix)]
fn options() -> Options {
    let usage = || -> ! {
        eprintln!(
            "usage: demo_server [--big-mib N] [--env-file FILE] [--fill NAME=N]... [--folders N]"
        );
        std::process::exit(2);
    };
    let mut o = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--big-mib" => o.big_mib = Some(value().parse().unwrap_or_else(|_| usage())),
            "--env-file" => o.env_file = Some(PathBuf::from(value())),
            "--fill" => {
                let v = value();
                let (name, n) = v.split_once('=').unwrap_or_else(|| usage());
                let n = n.parse().unwrap_or_else(|_| usage());
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                    usage();
                }
                o.fill.push((name.to_string(), n));
            }
            "--folders" => o.folders = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    o
}

#[cfg(unix)]
/// Message `i` of a `--fill` folder: a few headers and a line (~250 bytes).
fn small_message(i: usize) -> Vec<u8> {
    format!(
        "Date: Mon, 1 Jun 2026 09:00:00 +0000\r\nFrom: bob@example.org\r\n\
         To: alice@example.org\r\nSubject: Message {i}\r\n\
         Message-ID: <fill-{i}@example.org>\r\n\r\nMessage number {i}.\r\n"
    )
    .into_bytes()
}

#[cfg(unix)]
/// A message of `mib` MiB: headers, then 78-byte lines of base64-like text
/// (bytes Dovecot serves unchanged).
fn big_message(mib: usize) -> Vec<u8> {
    let size = mib << 20;
    let mut msg = b"Date: Mon, 1 Jun 2026 09:00:00 +0000\r\nFrom: bob@example.org\r\n\
        To: alice@example.org\r\nSubject: A big message\r\nMessage-ID: <demo-big@example.org>\r\n\r\n"
        .to_vec();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut line = 0usize;
    while msg.len() + 78 <= size {
        msg.extend((0..76).map(|i| alphabet[(i * 7 + line * 13) % 64]));
        msg.extend_from_slice(b"\r\n");
        line += 1;
    }
    msg
}

#[cfg(unix)]
fn deliver_demo_mail(server: &Dovecot) {
    let date = "Date: Mon, 1 Jun 2026 09:00:00 +0000\r\n";
    server.deliver(
        "alice",
        "INBOX",
        format!(
            "{date}From: Bob <bob@example.org>\r\nTo: Alice <alice@example.org>\r\n\
             Subject: Welcome to imaptalk\r\nMessage-ID: <demo-1@example.org>\r\n\r\n\
             Hi Alice,\r\n\r\nthis is a plain ASCII message. Try:\r\n\
             \x20 SELECT INBOX\r\n  FETCH 1:* (FLAGS ENVELOPE)\r\n  FETCH 1 BODY[]\r\n\r\nBob\r\n"
        )
        .as_bytes(),
    );
    server.deliver(
        "alice",
        "INBOX",
        format!(
            "{date}From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@example.org>\r\n\
             To: alice@example.org\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_=E2=80=94_8-bit_body?=\r\n\
             Message-ID: <demo-2@example.org>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
             Grüße aus Köln! こんにちは 🦀\r\nRaw UTF-8 in the body, no encoding.\r\n"
        )
        .as_bytes(),
    );
    // A raw binary part with every byte value Dovecot 2.3 serves unchanged
    // (it rewrites NUL to 0x80 and bare LF to CRLF), terminal escapes
    // included: `FETCH 3 BODY[]` through a pipe is then byte for byte the
    // delivered file, and on a terminal shows how unsafe bytes are escaped.
    let mut binary = format!(
        "{date}From: bob@example.org\r\nTo: alice@example.org\r\n\
         Subject: Binary attachment\r\nMessage-ID: <demo-3@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"demo-boundary\"\r\n\r\n\
         --demo-boundary\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         The attachment holds every byte value but NUL and LF.\r\n\
         --demo-boundary\r\nContent-Type: application/octet-stream; name=\"bytes.bin\"\r\n\
         Content-Disposition: attachment; filename=\"bytes.bin\"\r\n\
         Content-Transfer-Encoding: binary\r\n\r\n"
    )
    .into_bytes();
    binary.extend((1..=255u8).filter(|&b| b != b'\n'));
    binary.extend_from_slice(b"\r\n--demo-boundary--\r\n");
    server.deliver("alice", "INBOX", &binary);
    server.deliver(
        "alice",
        "Archive",
        b"Date: Thu, 1 Jan 2026 12:00:00 +0000\r\nFrom: bob@example.org\r\n\
          To: alice@example.org\r\nSubject: An archived message\r\n\
          Message-ID: <demo-4@example.org>\r\n\r\nOld news.\r\n",
    );
    server.deliver(
        "bob",
        "INBOX",
        format!(
            "{date}From: alice@example.org\r\nTo: bob@example.org\r\nSubject: Hi Bob\r\n\
             Message-ID: <demo-5@example.org>\r\n\r\nA message for Bob.\r\n"
        )
        .as_bytes(),
    );
}
