//! Set-up steps after the greeting and STARTTLS, before the session
//! proper: `-v` asks for the capabilities again over TLS, and `-u` logs in.
//!
//! These run before any input is read, one command at a time, through
//! [`Session::setup_response`], like the greeting and STARTTLS.

use super::Session;
use crate::app::auth;
use crate::core::options::Security;
use crate::core::sasl::{self, Mechanism, Secret};
use crate::error;
use crate::io::transcript::Sending;
use crate::protocol::framer::{Kind, Status};
use crate::text::escape_str;
use anyhow::Result;

/// Continuation requests answered during one AUTHENTICATE before it is
/// cancelled: PLAIN and the OAuth2 mechanisms need at most two.
const MAX_ROUNDS: u32 = 3;

/// How the server answered a set-up command.
pub(super) enum Reply {
    /// `+`: the server wants more; the raw text after `+ `.
    More(Vec<u8>),
    /// The tagged completion and its text.
    Done(Status, String),
}

impl Session {
    /// Everything between STARTTLS and the first line of input.
    pub(super) async fn after_greeting(&mut self) -> Result<()> {
        if self.settings.session.security == Security::StartTls && self.settings.diag.verbose {
            // Capabilities seen before TLS are not to be trusted (RFC 9051
            // §6.2.1): show the ones the server states over TLS.
            let caps = self.capability().await?;
            error::say(&format!(
                "imaptalk: capabilities over TLS: {}",
                escape_str(&caps.join(" "))
            ));
        }
        self.auto_login().await
    }

    /// `-u`: logs in with the secret read before connecting. Refused: in
    /// script and `-c` mode the run ends with exit 1 before any input is
    /// sent (the script assumes a login); interactively the prompt comes
    /// up anyway, so the user can try `\login`.
    async fn auto_login(&mut self) -> Result<()> {
        let Some(login) = self.settings.login.clone() else {
            return Ok(());
        };
        let Some(secret) = login.secret.clone() else {
            return Ok(());
        };
        let user = login.user.as_str();
        if self.user.is_some() {
            self.out
                .notice("the server greeted with PREAUTH: already logged in; -u is not used");
            return Ok(());
        }
        let what = if login.source.is_oauth2() {
            "an OAuth2 token"
        } else {
            "a password"
        };
        // The name was checked before connecting; the address it led to
        // must be this machine too.
        let local = self
            .conn
            .peer
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().to_canonical().is_loopback());
        if !self.conn.is_tls() && !local && !self.settings.session.allow_plaintext_auth {
            let why =
                auth::plaintext_refusal(auth::Channel::Plaintext, &self.conn.peer, false, what)
                    .unwrap_or_default();
            return Err(error::usage(why));
        }
        if self.caps.list().is_empty() {
            self.capability().await?;
        }
        let shown_user = escape_str(user);
        let mech = sasl::choose(login.source.is_oauth2(), &self.caps)
            .map_err(|e| error::refused(format!("cannot log in as {shown_user}: {e}")))?;
        if self.settings.diag.verbose {
            let how = match mech {
                Mechanism::Login => "LOGIN".to_string(),
                m if self.caps.has("SASL-IR") => format!("AUTHENTICATE {} with SASL-IR", m.name()),
                m => format!("AUTHENTICATE {}", m.name()),
            };
            error::say(&format!("imaptalk: logging in as {shown_user} ({how})"));
        }
        // --compress: only capabilities announced from now on count.
        self.auto_compress.sending("LOGIN");
        let refusal = match mech {
            Mechanism::Login => self.login_command(user, &secret).await?,
            _ => self.authenticate(mech, user, &secret).await?,
        };
        match refusal {
            None => {
                self.user = Some(user.to_string());
                if let Some(notice) = self.auto_compress.logged_in() {
                    self.out.notice(notice);
                }
                Ok(())
            }
            Some(text) => {
                let msg = format!("login as {shown_user} failed: {text}");
                if self.wait {
                    Err(error::refused(msg))
                } else {
                    self.out.notice(&format!("{msg}; \\login USER tries again"));
                    Ok(())
                }
            }
        }
    }

    /// `LOGIN user password`, quoted or as literals as they need; a literal
    /// waits for the server's `+`. Returns the refusal, if any.
    async fn login_command(&mut self, user: &str, secret: &Secret) -> Result<Option<String>> {
        let parts = crate::protocol::astring::login_parts(user, secret.expose());
        let tag = self.tagger.take(|_| false);
        let shown = format!(
            "{tag} LOGIN {} ****",
            crate::protocol::astring::quote_mailbox(user)
        );
        let mut first = format!("{tag} ").into_bytes();
        let mut rest = parts.iter();
        first.extend_from_slice(rest.next().map_or(&[][..], Vec::as_slice));
        self.setup_write(&first, Sending::Line(Some(&shown)), Some(&shown))
            .await?;
        for part in rest {
            match self.setup_wait(&tag, "the answer to LOGIN").await? {
                Reply::More(_) => {
                    self.setup_write(part, Sending::More, None).await?;
                }
                Reply::Done(status, text) => return Ok(refusal(status, text, None)),
            }
        }
        match self.setup_wait(&tag, "the answer to LOGIN").await? {
            Reply::Done(status, text) => Ok(refusal(status, text, None)),
            Reply::More(_) => Err(error::lost(
                "the server asked for more of a LOGIN that was complete; aborting",
            )),
        }
    }

    /// `AUTHENTICATE mech`, with the initial response on the command line
    /// when the server has SASL-IR. An OAuth2 failure comes as a `+` with
    /// a base64 JSON error, which must be answered (empty line for XOAUTH2,
    /// `AQ==` for OAUTHBEARER) before the server completes with NO.
    async fn authenticate(
        &mut self,
        mech: Mechanism,
        user: &str,
        secret: &Secret,
    ) -> Result<Option<String>> {
        let t = &self.settings.connect;
        let ir = sasl::initial_response(mech, user, secret, &t.host, t.port);
        let tag = self.tagger.take(|_| false);
        let name = mech.name();
        let mut ir_sent = self.caps.has("SASL-IR");
        let (wire, shown) = if ir_sent {
            (
                format!("{tag} AUTHENTICATE {name} {}\r\n", ir.expose()),
                format!("{tag} AUTHENTICATE {name} ****"),
            )
        } else {
            (
                format!("{tag} AUTHENTICATE {name}\r\n"),
                format!("{tag} AUTHENTICATE {name}"),
            )
        };
        self.setup_write(wire.as_bytes(), Sending::Line(Some(&shown)), Some(&shown))
            .await?;
        let (mut rounds, mut oauth_error) = (0, None);
        let what = format!("the answer to AUTHENTICATE {name}");
        loop {
            let challenge = match self.setup_wait(&tag, &what).await? {
                Reply::Done(status, text) => return Ok(refusal(status, text, oauth_error)),
                Reply::More(challenge) => challenge,
            };
            rounds += 1;
            let answer = if !ir_sent {
                ir_sent = true;
                ir.clone()
            } else if rounds > MAX_ROUNDS || matches!(mech, Mechanism::Plain | Mechanism::Login) {
                // PLAIN is done after its one response: cancel.
                Secret::new("*".to_string())
            } else {
                oauth_error = Some(sasl::oauth_error(&challenge));
                Secret::new(sasl::error_ack(mech).to_string())
            };
            let mut line = answer.expose().as_bytes().to_vec();
            line.extend_from_slice(b"\r\n");
            let shown = match answer.expose() {
                "*" | "" | "AQ==" => answer.expose().to_string(),
                _ => "****".to_string(),
            };
            self.setup_write(&line, Sending::Line(Some("****")), Some(&shown))
                .await?;
        }
    }

    /// Writes set-up bytes, telling the transcript what they are, and
    /// shows `echo` with `--echo`.
    async fn setup_write(
        &mut self,
        bytes: &[u8],
        sending: Sending<'_>,
        echo: Option<&str>,
    ) -> Result<()> {
        if self.settings.session.echo
            && let Some(shown) = echo
        {
            self.out.echo(shown);
        }
        self.conn
            .send_as(bytes, sending)
            .await
            .map_err(|e| error::connect(error::message(&e)))
    }

    /// Sends CAPABILITY and returns the list the server gave.
    pub(super) async fn capability(&mut self) -> Result<Vec<String>> {
        self.caps.forget();
        let tag = self.setup_send(b"CAPABILITY", "CAPABILITY").await?;
        match self.setup_wait(&tag, "the answer to CAPABILITY").await? {
            Reply::Done(Status::Ok, _) => {}
            Reply::Done(_, text) => {
                return Err(error::connect(format!("server refused CAPABILITY: {text}")));
            }
            Reply::More(text) => {
                return Err(error::connect(format!(
                    "server answered CAPABILITY with a continuation request (+ {}); aborting",
                    escape_str(&String::from_utf8_lossy(&text))
                )));
            }
        }
        match self.caps.list() {
            [] => Err(error::connect(
                "server answered CAPABILITY without a capability list",
            )),
            list => Ok(list.to_vec()),
        }
    }

    /// Sends `TAG <args>` (args may hold a literal's data: the caller sends
    /// it in pieces); `shown` is what `--echo` shows after the tag. Returns
    /// the tag.
    pub(super) async fn setup_send(&mut self, args: &[u8], shown: &str) -> Result<String> {
        let tag = self.tagger.take(|_| false);
        let mut wire = format!("{tag} ").into_bytes();
        wire.extend_from_slice(args);
        wire.extend_from_slice(b"\r\n");
        let shown = format!("{tag} {shown}");
        self.setup_write(&wire, Sending::Line(None), Some(&shown))
            .await?;
        Ok(tag)
    }

    /// Reads responses until `tag` completes or the server sends `+`.
    pub(super) async fn setup_wait(&mut self, tag: &str, what: &str) -> Result<Reply> {
        loop {
            let (head, text) = self.setup_response(what).await?;
            match head.kind {
                Kind::Tagged { tag: t, status } if t == tag.as_bytes() => {
                    return Ok(Reply::Done(status, text));
                }
                Kind::Continuation => {
                    let raw = self.last_line.get(1..).unwrap_or_default();
                    return Ok(Reply::More(raw.trim_ascii_start().to_vec()));
                }
                Kind::Untagged(Status::Bye) => {
                    return Err(error::connect(format!(
                        "server closed the session while waiting for {what}: {text}"
                    )));
                }
                Kind::Untagged(_) => {}
                Kind::Tagged { .. } => {
                    return Err(error::connect(format!(
                        "unexpected completion while waiting for {what}: {text}; aborting"
                    )));
                }
            }
        }
    }
}

/// None for OK; else what the server said (and, for OAuth2, its decoded
/// error challenge).
fn refusal(status: Status, text: String, oauth_error: Option<String>) -> Option<String> {
    if status == Status::Ok {
        return None;
    }
    Some(match oauth_error {
        Some(e) => format!("{text} (the server's error: {e})"),
        None => text,
    })
}
