//! Automatic login (`-u USER`): where the password or OAuth2 token comes
//! from, and the rule that no credential goes over plaintext to another
//! machine. The mechanisms and SASL payloads are in
//! [`core::sasl`](crate::core::sasl).
//!
//! Secrets never come from argv for passwords (the environment, a file or
//! the terminal), live in a [`Secret`] that prints as `****`, and are
//! masked in everything imaptalk repeats: `--echo`, transcripts, errors.

use crate::core::options::Security;
use crate::core::sasl::Secret;
use crate::error;
use crate::platform::process::{SHELL, shell};
use crate::text::{escape_str, io_text};
use anyhow::Result;
use std::io::Read as _;
use std::net::IpAddr;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// The environment variable a password may come from.
pub const PASSWORD_ENV: &str = "IMAPTALK_PASSWORD";
/// The environment variable an OAuth2 access token may come from.
pub const TOKEN_ENV: &str = "IMAPTALK_OAUTH2_TOKEN";

/// Where the credential comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// `--password-file`, else `IMAPTALK_PASSWORD`, else a prompt on the
    /// terminal.
    Password { file: Option<PathBuf> },
    /// `--oauth2-token` or `IMAPTALK_OAUTH2_TOKEN`.
    Token(Secret),
    /// `--oauth2-token-command`: its stdout is the token.
    TokenCommand(String),
    /// `--sasl EXTERNAL` or `ANONYMOUS`: no secret at all.
    Nothing,
}

impl Source {
    pub fn is_oauth2(&self) -> bool {
        matches!(self, Source::Token(_) | Source::TokenCommand(_))
    }

    /// No secret is needed.
    pub fn is_none(&self) -> bool {
        matches!(self, Source::Nothing)
    }
}

/// `-u USER` and where its secret comes from; `secret` is filled in by
/// [`obtain`] before connecting.
#[derive(Clone, Debug)]
pub struct Login {
    /// Empty for `--sasl EXTERNAL` or `ANONYMOUS` without `-u`.
    pub user: String,
    pub source: Source,
    pub secret: Option<Secret>,
    /// `--sasl`.
    pub mech: Option<crate::core::sasl::Mechanism>,
}

/// Whether a host name or address is this machine: `localhost` (and
/// `*.localhost`, RFC 6761), 127.0.0.0/8, `::1` and `::ffff:127.x.y.z`.
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ip.to_canonical().is_loopback();
    }
    let lower = host.to_ascii_lowercase();
    lower == "localhost" || lower.ends_with(".localhost")
}

/// Whether a credential would travel encrypted: the plaintext rule needs
/// no more than that (STARTTLS is done before any login).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Plaintext,
    Encrypted,
}

impl Channel {
    pub fn of(security: Security) -> Channel {
        match security {
            Security::Plain => Channel::Plaintext,
            Security::Tls | Security::StartTls => Channel::Encrypted,
        }
    }
}

/// The rule for sending a credential: never in plaintext to another
/// machine unless `--allow-plaintext-auth`. Returns the error message when
/// the login must be refused. Checked before connecting (by name) and
/// again after (by the address actually connected to).
pub fn plaintext_refusal(
    channel: Channel,
    host: &str,
    allow_plaintext: bool,
    what: &str,
) -> Option<String> {
    if channel == Channel::Encrypted || allow_plaintext || is_loopback(host) {
        return None;
    }
    Some(format!(
        "refusing to send {what} to {} over an unencrypted connection: add --starttls (port 143) or --tls (port 993), or --allow-plaintext-auth to send it anyway",
        escape_str(host)
    ))
}

/// Reads the secret, before connecting: a prompt is answered before the
/// server can time out, and a missing password is an error before
/// anything is sent. `host` is for the prompt.
pub fn obtain(login: &Login, host: &str) -> Result<Secret> {
    match &login.source {
        Source::Password { file: Some(path) } => read_password_file(path),
        Source::Password { file: None } => match std::env::var(PASSWORD_ENV) {
            Ok(p) => Ok(Secret::new(p)),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(error::usage(format!("{PASSWORD_ENV} is not valid UTF-8")))
            }
            Err(std::env::VarError::NotPresent) => prompt(&login.user, host),
        },
        Source::Token(t) => {
            if t.expose().trim().is_empty() {
                return Err(error::usage("the OAuth2 token is empty"));
            }
            Ok(Secret::new(t.expose().trim().to_string()))
        }
        Source::TokenCommand(cmd) => token_command(cmd),
        Source::Nothing => Ok(Secret::default()),
    }
}

/// A password file holds one password, not a mailbox: anything longer is
/// the wrong file (or `/dev/zero`), and is refused before it fills memory.
pub const MAX_PASSWORD: u64 = 4096;

/// An OAuth2 access token is a few KiB at most (a large Azure AD JWT is
/// under 8 KiB); a command printing more is not printing a token.
pub const MAX_TOKEN: u64 = 64 * 1024;

fn read_password_file(path: &std::path::Path) -> Result<Secret> {
    let shown = path.display();
    // Room for the most that is read, so the buffer never grows and leaves
    // a copy of the password behind; overwritten when dropped.
    let mut text = Zeroizing::new(String::with_capacity(MAX_PASSWORD as usize + 1));
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PASSWORD + 1).read_to_string(&mut text))
        .map_err(|e| error::usage(format!("--password-file {shown}: {}", io_text(&e))))?;
    if text.len() as u64 > MAX_PASSWORD {
        return Err(error::usage(format!(
            "--password-file {shown}: longer than {MAX_PASSWORD} bytes; a password file holds the password alone"
        )));
    }
    if crate::platform::files::others_may_read(path) {
        error::say(&format!(
            "imaptalk: warning: --password-file {shown} can be read by other users (chmod 600 it)"
        ));
    }
    // The line end an editor adds is not part of the password; anything
    // else (spaces included) is.
    let password = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text)
        .to_string();
    Ok(Secret::new(password))
}

/// Ctrl-C at the password prompt: [`obtain`] failed with this.
pub fn interrupted(err: &anyhow::Error) -> bool {
    err.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::Interrupted)
}

/// Asks on the controlling terminal, without echo: stdin may be a script.
fn prompt(user: &str, host: &str) -> Result<Secret> {
    rpassword::prompt_password(format!(
        "Password for {}@{}: ",
        escape_str(user),
        escape_str(host)
    ))
    .map(Secret::new)
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::Interrupted {
            return anyhow::Error::new(e);
        }
        error::usage(format!(
            "cannot ask for the password: no terminal ({}); set {PASSWORD_ENV} or use --password-file FILE",
            io_text(&e)
        ))
    })
}

/// `--oauth2-token-command CMD`: runs CMD with the system's shell (`sh`,
/// `cmd.exe` on Windows); its stdout, trimmed, is the token. The password variable is not passed on.
/// At most [`MAX_TOKEN`] bytes of its output are read: a command that
/// prints more (`yes`) is stopped, and that is an error.
fn token_command(cmd: &str) -> Result<Secret> {
    use std::process::Stdio;
    let mut child = shell(cmd)
        .env_remove(PASSWORD_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            error::usage(format!(
                "--oauth2-token-command: cannot run {SHELL}: {}",
                io_text(&e)
            ))
        })?;
    // Sized for the most that is read (see read_password_file).
    let mut stdout = Zeroizing::new(Vec::with_capacity(MAX_TOKEN as usize + 1));
    let read = match child.stdout.take() {
        Some(out) => out.take(MAX_TOKEN + 1).read_to_end(&mut stdout),
        None => Ok(0),
    };
    let too_long = stdout.len() as u64 > MAX_TOKEN;
    if too_long || read.is_err() {
        // It may never stop printing: it is not waited for while it does.
        let _ = child.kill();
    }
    let status = child.wait();
    if too_long {
        return Err(error::usage(format!(
            "--oauth2-token-command printed more than {} KiB, which is no access token; stopped it",
            MAX_TOKEN / 1024
        )));
    }
    read.map_err(|e| {
        error::usage(format!(
            "--oauth2-token-command: cannot read its output: {}",
            io_text(&e)
        ))
    })?;
    let status = status.map_err(|e| {
        error::usage(format!(
            "--oauth2-token-command: cannot wait for it: {}",
            io_text(&e)
        ))
    })?;
    if !status.success() {
        return Err(error::usage(format!(
            "--oauth2-token-command failed ({status}); no token"
        )));
    }
    let token = std::str::from_utf8(&stdout)
        .map_err(|_| error::usage("--oauth2-token-command printed a token that is not UTF-8"))?
        .trim();
    if token.is_empty() {
        return Err(error::usage("--oauth2-token-command printed no token"));
    }
    Ok(Secret::new(token.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_and_addresses() {
        for h in [
            "localhost",
            "LOCALHOST.",
            "imap.localhost",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "192.0.2.1",
            "10.0.0.1",
            "::2",
            "mail.example.com",
            "localhost.example.com",
            "127.0.0.1.nip.io",
            "",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn plaintext_is_refused_only_to_other_machines() {
        let refuse = |s, h, allow| plaintext_refusal(s, h, allow, "the password").is_some();
        assert!(refuse(Channel::Plaintext, "mail.example.com", false));
        assert!(refuse(Channel::Plaintext, "192.0.2.1", false));
        assert!(!refuse(Channel::Plaintext, "mail.example.com", true));
        assert!(!refuse(Channel::Plaintext, "localhost", false));
        assert!(!refuse(Channel::Plaintext, "127.0.0.1", false));
        assert!(!refuse(
            Channel::of(Security::StartTls),
            "mail.example.com",
            false
        ));
        assert!(!refuse(
            Channel::of(Security::Tls),
            "mail.example.com",
            false
        ));
        let msg = plaintext_refusal(
            Channel::Plaintext,
            "mail.example.com",
            false,
            "the password",
        )
        .unwrap();
        assert!(msg.contains("--starttls") && msg.contains("--tls"), "{msg}");
        assert!(msg.contains("--allow-plaintext-auth"), "{msg}");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "**** ****");
        let login = Login {
            user: "alice".into(),
            source: Source::Token(Secret::new("tok".into())),
            secret: Some(s),
            mech: None,
        };
        let shown = format!("{login:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok\""),
            "{shown}"
        );
    }

    #[test]
    fn password_file_loses_only_its_last_line_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, " pa ss \"wörd\"\r\n").unwrap();
        assert_eq!(
            read_password_file(&path).unwrap().expose(),
            " pa ss \"wörd\""
        );
        std::fs::write(&path, "x\n\n").unwrap();
        assert_eq!(read_password_file(&path).unwrap().expose(), "x\n");
        let e = read_password_file(&dir.path().join("missing")).unwrap_err();
        assert!(error::message(&e).starts_with("--password-file "), "{e}");
    }

    #[test]
    fn token_command_output_is_the_token() {
        // In words that sh and cmd.exe both read.
        let t = token_command("echo  tok123 ").unwrap();
        assert_eq!(t.expose(), "tok123");
        let e = token_command("exit 3").unwrap_err();
        assert!(error::message(&e).contains("failed"), "{e}");
        let e = token_command("exit 0").unwrap_err();
        assert!(error::message(&e).contains("printed no token"), "{e}");
    }
}
