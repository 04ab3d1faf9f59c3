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
    /// `AUTHENTICATE SCRAM-SHA-1` (RFC 5802).
    ScramSha1,
    /// `AUTHENTICATE SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `AUTHENTICATE EXTERNAL` (RFC 4422 appendix A): the TLS client
    /// certificate says who logs in.
    External,
    /// `AUTHENTICATE ANONYMOUS` (RFC 4505).
    Anonymous,
}

/// What `--sasl` accepts.
pub const MECHANISMS: [Mechanism; 8] = [
    Mechanism::ScramSha256,
    Mechanism::ScramSha1,
    Mechanism::Plain,
    Mechanism::Login,
    Mechanism::External,
    Mechanism::Anonymous,
    Mechanism::OAuthBearer,
    Mechanism::XOAuth2,
];

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::External => "EXTERNAL",
            Mechanism::Anonymous => "ANONYMOUS",
        }
    }

    /// `--sasl NAME`, in any case.
    pub fn parse(name: &str) -> Option<Mechanism> {
        MECHANISMS
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Logs in with an OAuth2 token.
    pub fn oauth2(self) -> bool {
        matches!(self, Mechanism::XOAuth2 | Mechanism::OAuthBearer)
    }

    /// Needs no password or token: the certificate (EXTERNAL), or nobody
    /// (ANONYMOUS).
    pub fn secretless(self) -> bool {
        matches!(self, Mechanism::External | Mechanism::Anonymous)
    }

    /// The hash of a SCRAM mechanism.
    pub fn scram_hash(self) -> Option<ScramHash> {
        match self {
            Mechanism::ScramSha1 => Some(ScramHash::Sha1),
            Mechanism::ScramSha256 => Some(ScramHash::Sha256),
            _ => None,
        }
    }
}

/// The mechanism for a password or a token, from what the server offers:
/// the one `--sasl` names (`forced`), else the strongest offered.
pub fn choose(
    oauth2: bool,
    caps: &Capabilities,
    forced: Option<Mechanism>,
) -> Result<Mechanism, String> {
    match forced {
        Some(Mechanism::Login) if caps.has("LOGINDISABLED") => {
            return Err(format!(
                "the server refuses LOGIN here (LOGINDISABLED; it offers: {}); try --starttls or --tls",
                offered(caps)
            ));
        }
        Some(Mechanism::Login) => return Ok(Mechanism::Login),
        Some(m) if caps.has(&format!("AUTH={}", m.name())) => return Ok(m),
        Some(m) => {
            return Err(format!(
                "the server does not offer AUTH={} (it offers: {})",
                m.name(),
                offered(caps)
            ));
        }
        None => {}
    }
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
    // Strongest first: SCRAM never shows the password to the server.
    if let Some(m) = [
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ]
    .into_iter()
    .find(|m| caps.has(&format!("AUTH={}", m.name())))
    {
        Ok(m)
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
/// LOGIN; for SCRAM, see [`Scram::client_first`]). `host` and `port` go
/// into OAUTHBEARER's optional fields; for EXTERNAL `user` is the
/// authorization identity and for ANONYMOUS the trace (both may be
/// empty: an empty response).
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
        Mechanism::External | Mechanism::Anonymous => write!(raw, "{user}"),
        Mechanism::ScramSha1 | Mechanism::ScramSha256 => Ok(()),
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

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    fn pbkdf2(self) -> ring::pbkdf2::Algorithm {
        match self {
            ScramHash::Sha1 => ring::pbkdf2::PBKDF2_HMAC_SHA1,
            ScramHash::Sha256 => ring::pbkdf2::PBKDF2_HMAC_SHA256,
        }
    }
    fn hmac(self) -> ring::hmac::Algorithm {
        match self {
            ScramHash::Sha1 => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            ScramHash::Sha256 => ring::hmac::HMAC_SHA256,
        }
    }
    fn digest(self) -> &'static ring::digest::Algorithm {
        match self {
            ScramHash::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            ScramHash::Sha256 => &ring::digest::SHA256,
        }
    }
    fn len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
        }
    }
}

/// More PBKDF2 iterations than this are refused: a hostile server could
/// otherwise make the client compute for hours (Dovecot uses 4096).
pub const SCRAM_MAX_ITERATIONS: u32 = 1_000_000;

/// Where a SCRAM exchange (RFC 5802, RFC 7677) stands.
#[derive(Debug)]
enum ScramState {
    /// client-first sent; waiting for server-first.
    First,
    /// client-final sent; the signature the server must send back.
    Final {
        server_signature: Zeroizing<Vec<u8>>,
    },
    /// The server proved that it knows the password.
    Verified,
}

/// The client side of SCRAM without channel binding (`n,,`). The nonce
/// comes from outside (the driver draws it), so the exchange is
/// reproducible in tests.
#[derive(Debug)]
pub struct Scram {
    hash: ScramHash,
    password: Secret,
    nonce: String,
    /// `n=user,r=nonce`: part of what both sides sign.
    first_bare: String,
    state: ScramState,
}

impl Scram {
    pub fn new(hash: ScramHash, user: &str, password: &Secret, nonce: &str) -> Scram {
        Scram {
            hash,
            password: password.clone(),
            nonce: nonce.to_string(),
            first_bare: format!("n={},r={nonce}", sasl_name(user)),
            state: ScramState::First,
        }
    }

    /// client-first-message, base64 (no secret in it: the user name and
    /// the nonce).
    pub fn client_first(&self) -> String {
        STANDARD.encode(format!("n,,{}", self.first_bare))
    }

    /// Whether the server has proved that it knows the password.
    pub fn verified(&self) -> bool {
        matches!(self.state, ScramState::Verified)
    }

    /// The answer to the server's next challenge (base64 in, base64 out):
    /// client-final for server-first; for server-final, an empty answer
    /// once its signature is checked. Err: why the exchange must stop.
    pub fn step(&mut self, challenge: &[u8]) -> Result<Secret, String> {
        let raw = STANDARD_PAD_INDIFFERENT
            .decode(challenge.trim_ascii())
            .map_err(|_| "the server's SCRAM message is not base64".to_string())?;
        let text = String::from_utf8(raw)
            .map_err(|_| "the server's SCRAM message is not UTF-8".to_string())?;
        match std::mem::replace(&mut self.state, ScramState::First) {
            ScramState::First => self.server_first(&text),
            ScramState::Final { server_signature } => {
                if let Some(e) = text.strip_prefix("e=") {
                    return Err(format!(
                        "the server ended SCRAM with an error: {}",
                        escape_str(e)
                    ));
                }
                let v = attribute(&text, 'v')
                    .and_then(|v| STANDARD.decode(v).ok())
                    .ok_or_else(|| {
                        format!(
                            "the server's last SCRAM message has no signature: {}",
                            escape_str(&text)
                        )
                    })?;
                if !constant_time_eq(&v, &server_signature) {
                    return Err("the server's SCRAM signature is wrong: it does not know the password (an impostor, or something in the middle)".into());
                }
                self.state = ScramState::Verified;
                Ok(Secret::default())
            }
            ScramState::Verified => {
                Err("the server asked for more after SCRAM was complete".into())
            }
        }
    }

    fn server_first(&mut self, text: &str) -> Result<Secret, String> {
        if text.starts_with("m=") {
            return Err("the server wants a SCRAM extension imaptalk does not know".into());
        }
        let bad = || {
            format!(
                "the server's first SCRAM message is malformed: {}",
                escape_str(text)
            )
        };
        let nonce = attribute(text, 'r').ok_or_else(bad)?;
        let salt = attribute(text, 's')
            .and_then(|s| STANDARD.decode(s).ok())
            .ok_or_else(bad)?;
        let iterations: u32 = attribute(text, 'i')
            .and_then(|i| i.parse().ok())
            .ok_or_else(bad)?;
        // The server's nonce must extend ours: else this answers another
        // exchange (a replay).
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's SCRAM nonce does not extend imaptalk's (a replayed or forged exchange)".into());
        }
        let iterations = match std::num::NonZeroU32::new(iterations) {
            Some(n) if n.get() <= SCRAM_MAX_ITERATIONS => n,
            _ => {
                return Err(format!(
                    "the server asks for {iterations} SCRAM iterations (imaptalk accepts 1 to {SCRAM_MAX_ITERATIONS})"
                ));
            }
        };
        let h = self.hash;
        let mut salted = Zeroizing::new(vec![0u8; h.len()]);
        ring::pbkdf2::derive(
            h.pbkdf2(),
            iterations,
            &salt,
            self.password.expose().as_bytes(),
            &mut salted,
        );
        let key = ring::hmac::Key::new(h.hmac(), &salted);
        let client_key = Zeroizing::new(ring::hmac::sign(&key, b"Client Key").as_ref().to_vec());
        let server_key = Zeroizing::new(ring::hmac::sign(&key, b"Server Key").as_ref().to_vec());
        let stored_key = ring::digest::digest(h.digest(), &client_key);
        // c=biws: base64 of the GS2 header "n,,", no channel binding.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.first_bare);
        let signature = ring::hmac::sign(
            &ring::hmac::Key::new(h.hmac(), stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Zeroizing<Vec<u8>> = Zeroizing::new(
            client_key
                .iter()
                .zip(signature.as_ref())
                .map(|(a, b)| a ^ b)
                .collect(),
        );
        let server_signature = ring::hmac::sign(
            &ring::hmac::Key::new(h.hmac(), &server_key),
            auth_message.as_bytes(),
        );
        self.state = ScramState::Final {
            server_signature: Zeroizing::new(server_signature.as_ref().to_vec()),
        };
        let last = Zeroizing::new(format!("{without_proof},p={}", STANDARD.encode(&*proof)));
        Ok(Secret::new(STANDARD.encode(last.as_bytes())))
    }
}

/// The value of `x=` in a SCRAM message.
fn attribute(text: &str, name: char) -> Option<&str> {
    text.split(',').find_map(|part| {
        let mut c = part.chars();
        (c.next() == Some(name) && c.next() == Some('=')).then(|| &part[2..])
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        STANDARD.encode(s).into_bytes()
    }

    fn unb64(s: &Secret) -> String {
        String::from_utf8(STANDARD.decode(s.expose()).unwrap()).unwrap()
    }

    #[test]
    fn scram_sha256_rfc7677_example() {
        let pw = Secret::new("pencil".into());
        let mut s = Scram::new(ScramHash::Sha256, "user", &pw, "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            String::from_utf8(STANDARD.decode(s.client_first()).unwrap()).unwrap(),
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        let last = s
            .step(&b64("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"))
            .unwrap();
        assert_eq!(
            unb64(&last),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(!s.verified());
        let done = s
            .step(&b64("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
            .unwrap();
        assert_eq!(done.expose(), "");
        assert!(s.verified());
    }

    #[test]
    fn scram_sha1_rfc5802_example_and_a_wrong_signature() {
        let pw = Secret::new("pencil".into());
        let first = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
        let mut s = Scram::new(ScramHash::Sha1, "user", &pw, "fyko+d2lbbFgONRv9qkxdawL");
        let last = s.step(&b64(first)).unwrap();
        assert_eq!(
            unb64(&last),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        s.step(&b64("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")).unwrap();
        assert!(s.verified());

        let mut s = Scram::new(ScramHash::Sha1, "user", &pw, "fyko+d2lbbFgONRv9qkxdawL");
        s.step(&b64(first)).unwrap();
        let e = s.step(&b64("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=")).unwrap_err();
        assert!(e.contains("does not know the password"), "{e}");
        assert!(!s.verified());
    }

    #[test]
    fn scram_refuses_what_a_hostile_server_sends() {
        let pw = Secret::new("pencil".into());
        let fresh = || Scram::new(ScramHash::Sha256, "u,=x", &pw, "abc");
        assert_eq!(
            String::from_utf8(STANDARD.decode(fresh().client_first()).unwrap()).unwrap(),
            "n,,n=u=2C=3Dx,r=abc"
        );
        for (challenge, expect) in [
            ("r=xyz123,s=QSXCR+Q6sek8bf92,i=4096", "does not extend"),
            ("r=abc,s=QSXCR+Q6sek8bf92,i=4096", "does not extend"),
            ("r=abcd,s=QSXCR+Q6sek8bf92,i=0", "iterations"),
            ("r=abcd,s=QSXCR+Q6sek8bf92,i=4000000000", "iterations"),
            ("r=abcd,i=4096", "malformed"),
            ("m=ext,r=abcd,s=QSXCR+Q6sek8bf92,i=4096", "extension"),
            ("e=unknown-user", "malformed"),
        ] {
            let e = fresh().step(&b64(challenge)).unwrap_err();
            assert!(e.contains(expect), "{challenge}: {e}");
        }
        assert!(fresh().step(b"%%%").unwrap_err().contains("not base64"));
        let mut s = fresh();
        s.step(&b64("r=abcd,s=QSXCR+Q6sek8bf92,i=1")).unwrap();
        let e = s.step(&b64("e=invalid-proof")).unwrap_err();
        assert!(e.contains("invalid-proof"), "{e}");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "**** ****");
    }

    #[test]
    fn mechanism_from_capabilities() {
        let c = Capabilities::from_line("* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=XOAUTH2");
        assert_eq!(choose(false, &c, None), Ok(Mechanism::Plain));
        assert_eq!(choose(true, &c, None), Ok(Mechanism::XOAuth2));
        let c = Capabilities::from_line("* CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER AUTH=XOAUTH2");
        assert_eq!(choose(true, &c, None), Ok(Mechanism::OAuthBearer));
        assert_eq!(choose(false, &c, None), Ok(Mechanism::Login));
        let c = Capabilities::from_line("* CAPABILITY IMAP4rev1 LOGINDISABLED STARTTLS");
        assert!(
            choose(false, &c, None)
                .unwrap_err()
                .contains("LOGINDISABLED")
        );
        let e = choose(true, &c, None).unwrap_err();
        assert!(e.contains("no AUTH= mechanisms"), "{e}");
        let e = choose(false, &c, Some(Mechanism::Login)).unwrap_err();
        assert!(e.contains("LOGINDISABLED"), "{e}");
        // The strongest offered: SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN > LOGIN.
        let c = Capabilities::from_line(
            "* CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=SCRAM-SHA-1 AUTH=SCRAM-SHA-256 AUTH=EXTERNAL",
        );
        assert_eq!(choose(false, &c, None), Ok(Mechanism::ScramSha256));
        let c = Capabilities::from_line("* CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=SCRAM-SHA-1");
        assert_eq!(choose(false, &c, None), Ok(Mechanism::ScramSha1));
        // --sasl: that one, if offered.
        assert_eq!(
            choose(false, &c, Some(Mechanism::Plain)),
            Ok(Mechanism::Plain)
        );
        assert_eq!(
            choose(false, &c, Some(Mechanism::Login)),
            Ok(Mechanism::Login)
        );
        let e = choose(false, &c, Some(Mechanism::External)).unwrap_err();
        assert_eq!(
            e,
            "the server does not offer AUTH=EXTERNAL (it offers: AUTH=PLAIN AUTH=SCRAM-SHA-1)"
        );
        assert_eq!(
            Mechanism::parse("scram-sha-256"),
            Some(Mechanism::ScramSha256)
        );
        assert_eq!(Mechanism::parse("CRAM-MD5"), None);
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
