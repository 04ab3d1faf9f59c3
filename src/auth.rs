//! Automatic login (`-u USER`): where the password or OAuth2 token comes
//! from, which mechanism to use, the SASL payloads, and the rule that no
//! credential goes over plaintext to another machine.
//!
//! Secrets never come from argv for passwords (the environment, a file or
//! the terminal), live in a [`Secret`] that prints as `****`, and are
//! masked in everything imaptalk repeats: `--echo`, transcripts, errors.

use crate::b64;
use crate::caps::Capabilities;
use crate::cli::Security;
use crate::error;
use crate::render::escape_str;
use anyhow::Result;
use std::fmt;
use std::io::Read as _;
use std::net::IpAddr;
use std::path::PathBuf;

/// The environment variable a password may come from.
pub const PASSWORD_ENV: &str = "IMAPTALK_PASSWORD";
/// The environment variable an OAuth2 access token may come from.
pub const TOKEN_ENV: &str = "IMAPTALK_OAUTH2_TOKEN";

/// A password or token. Debug and Display show `****`, so a `{:?}` of the
/// settings cannot leak it; the bytes are overwritten when it is dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }

    /// The secret itself, for building what is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: copies made on the way (the terminal driver, the
        // socket buffers) are out of reach, but this one is not left behind.
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&bytes);
    }
}

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
}

impl Source {
    pub fn is_oauth2(&self) -> bool {
        !matches!(self, Source::Password { .. })
    }
}

/// `-u USER` and where its secret comes from; `secret` is filled in by
/// [`obtain`] before connecting.
#[derive(Clone, Debug)]
pub struct Login {
    pub user: String,
    pub source: Source,
    pub secret: Option<Secret>,
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

/// The rule for sending a credential: never in plaintext to another
/// machine unless `--allow-plaintext-auth`. Returns the error message when
/// the login must be refused. Checked before connecting (by name) and
/// again after (by the address actually connected to).
pub fn plaintext_refusal(
    security: Security,
    host: &str,
    allow_plaintext: bool,
    what: &str,
) -> Option<String> {
    if security != Security::Plain || allow_plaintext || is_loopback(host) {
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
            Ok(p) => Ok(Secret(p)),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(error::usage(format!("{PASSWORD_ENV} is not valid UTF-8")))
            }
            Err(std::env::VarError::NotPresent) => prompt(&login.user, host),
        },
        Source::Token(t) => {
            if t.expose().trim().is_empty() {
                return Err(error::usage("the OAuth2 token is empty"));
            }
            Ok(Secret(t.expose().trim().to_string()))
        }
        Source::TokenCommand(cmd) => token_command(cmd),
    }
}

fn read_password_file(path: &std::path::Path) -> Result<Secret> {
    let shown = path.display();
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| {
            error::usage(format!(
                "--password-file {shown}: {}",
                crate::transport::io_text(&e)
            ))
        })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            error::say(&format!(
                "imaptalk: warning: --password-file {shown} can be read by other users (chmod 600 it)"
            ));
        }
    }
    // The line end an editor adds is not part of the password; anything
    // else (spaces included) is.
    let password = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text)
        .to_string();
    text.replace_range(.., &"\0".repeat(text.len()));
    Ok(Secret(password))
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
    .map(Secret)
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::Interrupted {
            return anyhow::Error::new(e);
        }
        error::usage(format!(
            "cannot ask for the password: no terminal ({}); set {PASSWORD_ENV} or use --password-file FILE",
            crate::transport::io_text(&e)
        ))
    })
}

/// `--oauth2-token-command CMD`: runs CMD with the shell; its stdout,
/// trimmed, is the token. The password variable is not passed on.
fn token_command(cmd: &str) -> Result<Secret> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env_remove(PASSWORD_ENV)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| {
            error::usage(format!(
                "--oauth2-token-command: cannot run sh: {}",
                crate::transport::io_text(&e)
            ))
        })?;
    if !out.status.success() {
        return Err(error::usage(format!(
            "--oauth2-token-command failed ({}); no token",
            out.status
        )));
    }
    let token = String::from_utf8(out.stdout)
        .map_err(|_| error::usage("--oauth2-token-command printed a token that is not UTF-8"))?;
    let token = Secret(token);
    if token.expose().trim().is_empty() {
        return Err(error::usage("--oauth2-token-command printed no token"));
    }
    Ok(Secret(token.expose().trim().to_string()))
}

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `AUTHENTICATE PLAIN` (RFC 4616).
    Plain,
    /// `LOGIN user password`.
    Login,
    /// `AUTHENTICATE XOAUTH2` (Google, Microsoft).
    XOAuth2,
    /// `AUTHENTICATE OAUTHBEARER` (RFC 7628).
    OAuthBearer,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// The mechanism for a password or a token, from what the server offers.
pub fn choose(oauth2: bool, caps: &Capabilities) -> Result<Mechanism, String> {
    if oauth2 {
        // OAUTHBEARER is the standard one; XOAUTH2 is what Outlook has.
        return if caps.has("AUTH=OAUTHBEARER") {
            Ok(Mechanism::OAuthBearer)
        } else if caps.has("AUTH=XOAUTH2") {
            Ok(Mechanism::XOAuth2)
        } else {
            Err(format!(
                "the server offers neither AUTH=OAUTHBEARER nor AUTH=XOAUTH2 (it offers: {})",
                offered(caps)
            ))
        };
    }
    if caps.has("AUTH=PLAIN") {
        Ok(Mechanism::Plain)
    } else if caps.has("LOGINDISABLED") {
        Err(format!(
            "the server accepts no password here (LOGINDISABLED, and no AUTH=PLAIN; it offers: {}); try --starttls or --tls",
            offered(caps)
        ))
    } else {
        Ok(Mechanism::Login)
    }
}

fn offered(caps: &Capabilities) -> String {
    let auth: Vec<&str> = caps
        .list()
        .iter()
        .filter(|c| c.starts_with("AUTH="))
        .map(String::as_str)
        .collect();
    if auth.is_empty() {
        "no AUTH= mechanisms".to_string()
    } else {
        escape_str(&auth.join(" "))
    }
}

/// The initial response of a SASL mechanism, base64-encoded (not for
/// LOGIN). `host` and `port` go into OAUTHBEARER's optional fields.
pub fn initial_response(
    mech: Mechanism,
    user: &str,
    secret: &Secret,
    host: &str,
    port: u16,
) -> Secret {
    let s = secret.expose();
    let raw = match mech {
        // authzid NUL authcid NUL password; no authzid: log in as yourself.
        Mechanism::Plain | Mechanism::Login => format!("\0{user}\0{s}"),
        Mechanism::XOAuth2 => format!("user={user}\x01auth=Bearer {s}\x01\x01"),
        Mechanism::OAuthBearer => format!(
            "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {s}\x01\x01",
            sasl_name(user)
        ),
    };
    let secret = Secret(raw);
    Secret(b64::encode(secret.expose().as_bytes()))
}

/// RFC 5801's saslname: `,` and `=` escaped in the GS2 header.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// What a client must answer to an OAuth2 error challenge so that the
/// server can finish with NO: XOAUTH2 wants an empty line; OAUTHBEARER
/// wants a single %x01 (RFC 7628 §3.2.3), base64 `AQ==`.
pub fn error_ack(mech: Mechanism) -> &'static str {
    match mech {
        Mechanism::OAuthBearer => "AQ==",
        _ => "",
    }
}

/// The server's OAuth2 error challenge (base64 JSON such as
/// `{"status":"401","schemes":"bearer","scope":"…"}`), decoded for the
/// user; escaped and cut short, as anything from the server.
pub fn oauth_error(challenge: &[u8]) -> String {
    let text = match b64::decode(challenge.trim_ascii()) {
        Some(json) if !json.is_empty() => String::from_utf8_lossy(&json).into_owned(),
        _ => String::from_utf8_lossy(challenge).into_owned(),
    };
    let mut shown: String = text.chars().take(300).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    escape_str(&shown)
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
        assert!(refuse(Security::Plain, "mail.example.com", false));
        assert!(refuse(Security::Plain, "192.0.2.1", false));
        assert!(!refuse(Security::Plain, "mail.example.com", true));
        assert!(!refuse(Security::Plain, "localhost", false));
        assert!(!refuse(Security::Plain, "127.0.0.1", false));
        assert!(!refuse(Security::StartTls, "mail.example.com", false));
        assert!(!refuse(Security::Tls, "mail.example.com", false));
        let msg =
            plaintext_refusal(Security::Plain, "mail.example.com", false, "the password").unwrap();
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
        };
        let shown = format!("{login:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("tok\""),
            "{shown}"
        );
    }

    #[test]
    fn mechanism_from_capabilities() {
        let c = Capabilities::from_line("* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2");
        assert_eq!(choose(false, &c), Ok(Mechanism::Plain));
        assert_eq!(choose(true, &c), Ok(Mechanism::XOAuth2));
        let c = Capabilities::from_line("* CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER AUTH=XOAUTH2");
        assert_eq!(choose(true, &c), Ok(Mechanism::OAuthBearer));
        assert_eq!(choose(false, &c), Ok(Mechanism::Login));
        let c = Capabilities::from_line("* CAPABILITY IMAP4rev1 LOGINDISABLED STARTTLS");
        assert!(choose(false, &c).unwrap_err().contains("LOGINDISABLED"));
        let e = choose(true, &c).unwrap_err();
        assert!(e.contains("no AUTH= mechanisms"), "{e}");
    }

    #[test]
    fn sasl_payloads() {
        let pw = Secret::new("pass word".into());
        let plain = initial_response(Mechanism::Plain, "alice", &pw, "h", 993);
        assert_eq!(
            b64::decode(plain.expose().as_bytes()).unwrap(),
            b"\0alice\0pass word"
        );
        let tok = Secret::new("ya29.tok".into());
        let x = initial_response(Mechanism::XOAuth2, "a@gmail.com", &tok, "h", 993);
        assert_eq!(
            b64::decode(x.expose().as_bytes()).unwrap(),
            b"user=a@gmail.com\x01auth=Bearer ya29.tok\x01\x01"
        );
        let o = initial_response(Mechanism::OAuthBearer, "a,b=c", &tok, "imap.x", 993);
        assert_eq!(
            b64::decode(o.expose().as_bytes()).unwrap(),
            b"n,a=a=2Cb=3Dc,\x01host=imap.x\x01port=993\x01auth=Bearer ya29.tok\x01\x01"
        );
        assert_eq!(error_ack(Mechanism::XOAuth2), "");
        assert_eq!(error_ack(Mechanism::OAuthBearer), "AQ==");
    }

    #[test]
    fn oauth_errors_are_decoded_and_escaped() {
        let json = r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
        assert_eq!(oauth_error(b64::encode(json.as_bytes()).as_bytes()), json);
        let hostile = b64::encode(b"{\"status\":\"\x1b[2J\"}");
        assert_eq!(oauth_error(hostile.as_bytes()), "{\"status\":\"\\x1b[2J\"}");
        assert_eq!(oauth_error(b"not base64!"), "not base64!");
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
        let t = token_command("printf ' tok123\\n'").unwrap();
        assert_eq!(t.expose(), "tok123");
        assert!(token_command("exit 3").is_err());
        assert!(token_command("true").is_err());
    }
}
