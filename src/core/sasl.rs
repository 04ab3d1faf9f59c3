//! SASL for `-u` and the secrets it carries: which mechanism to use from
//! what the server offers, the initial responses, the OAuth2 error
//! challenge decoded for people.
//!
//! Secrets live in a [`Secret`] that prints as `****` and is masked in
//! everything imaptalk repeats: `--echo`, transcripts, errors.

use crate::protocol::caps::Capabilities;
use crate::text::escape_str;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use std::fmt;
use std::fmt::Write as _;
use zeroize::Zeroizing;

/// A password or token. Debug and Display show `****`, so a `{:?}` of the
/// settings cannot leak it; its memory is overwritten when it is dropped
/// (zeroize: a plain loop of stores may be optimised away).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(Zeroizing::new(s))
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
        Ok(Secret::new(s.to_string()))
    }
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
    // Room for all of it up front: a String that grows leaves copies of
    // the secret behind in memory that nothing overwrites.
    let room = 64 + 3 * user.len() + host.len() + s.len();
    let mut raw = Zeroizing::new(String::with_capacity(room));
    let _ = match mech {
        // authzid NUL authcid NUL password; no authzid: log in as yourself.
        Mechanism::Plain | Mechanism::Login => write!(raw, "\0{user}\0{s}"),
        Mechanism::XOAuth2 => write!(raw, "user={user}\x01auth=Bearer {s}\x01\x01"),
        Mechanism::OAuthBearer => write!(
            raw,
            "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {s}\x01\x01",
            sasl_name(user)
        ),
    };
    Secret::new(STANDARD.encode(raw.as_bytes()))
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
    // Padding or not: what the server meant is shown either way.
    let text = match STANDARD_PAD_INDIFFERENT.decode(challenge.trim_ascii()) {
        Ok(json) if !json.is_empty() => String::from_utf8_lossy(&json).into_owned(),
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
    fn secrets_never_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "**** ****");
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
            STANDARD.decode(plain.expose().as_bytes()).unwrap(),
            b"\0alice\0pass word"
        );
        let tok = Secret::new("ya29.tok".into());
        let x = initial_response(Mechanism::XOAuth2, "a@gmail.com", &tok, "h", 993);
        assert_eq!(
            STANDARD.decode(x.expose().as_bytes()).unwrap(),
            b"user=a@gmail.com\x01auth=Bearer ya29.tok\x01\x01"
        );
        let o = initial_response(Mechanism::OAuthBearer, "a,b=c", &tok, "imap.x", 993);
        assert_eq!(
            STANDARD.decode(o.expose().as_bytes()).unwrap(),
            b"n,a=a=2Cb=3Dc,\x01host=imap.x\x01port=993\x01auth=Bearer ya29.tok\x01\x01"
        );
        assert_eq!(error_ack(Mechanism::XOAuth2), "");
        assert_eq!(error_ack(Mechanism::OAuthBearer), "AQ==");
    }

    #[test]
    fn oauth_errors_are_decoded_and_escaped() {
        let json = r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
        assert_eq!(
            oauth_error(STANDARD.encode(json.as_bytes()).as_bytes()),
            json
        );
        let hostile = STANDARD.encode(b"{\"status\":\"\x1b[2J\"}");
        assert_eq!(oauth_error(hostile.as_bytes()), "{\"status\":\"\\x1b[2J\"}");
        assert_eq!(oauth_error(b"not base64!"), "not base64!");
        // Without its padding, still decoded.
        let unpadded = STANDARD.encode(b"{\"a\":1}");
        assert!(unpadded.ends_with('='));
        assert_eq!(
            oauth_error(unpadded.trim_end_matches('=').as_bytes()),
            "{\"a\":1}"
        );
    }
}
