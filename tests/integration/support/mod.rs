//! Shared test support: the binary under test, a scripted IMAP server for
//! faults and ordering, a test PKI, and a throwaway Dovecot.
#![allow(dead_code)]

pub mod certs;
// Dovecot runs on Unix only; on Windows the suite runs without it.
#[cfg(unix)]
pub mod dovecot;
pub mod fake_imap;
pub mod listen;
pub mod proxies;
pub mod scripted;

use std::process::Command;

/// The built binary, with an environment that cannot leak the developer's
/// settings into the test (colour, home directory).
pub fn imaptalk() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_imaptalk"));
    cmd.env_remove("NO_COLOR")
        // Set in a developer's shell, it would add a warning to every TLS run.
        .env_remove("SSLKEYLOGFILE")
        .env("HOME", std::env::temp_dir())
        .timeout(std::time::Duration::from_secs(30));
    cmd
}

/// The same, as a std Command (for pipes the test controls itself).
pub fn imaptalk_std() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imaptalk"));
    cmd.env_remove("NO_COLOR")
        .env_remove("SSLKEYLOGFILE")
        .env("HOME", std::env::temp_dir());
    cmd
}

/// `127.0.0.1:PORT`.
pub fn local(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// A run's stderr as text, for assertions and failure messages.
pub fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Appends a small message to alice's INBOX from a connection of its own
/// (imaptalk with a LITERAL+ taken from the `-c` input), as a second
/// client would while another one idles.
#[cfg(unix)]
pub fn append_from_second_connection(d: &dovecot::Dovecot) {
    let (user, pass) = d.user();
    let out = imaptalk()
        .arg(local(d.plain_port()))
        .args([
            "-c",
            &format!("LOGIN {user} {pass}"),
            "-c",
            "APPEND INBOX {19+}",
            "-c",
            "Subject: new\r\n\r\nhi",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}
