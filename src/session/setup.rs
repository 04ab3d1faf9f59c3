//! Set-up steps after the greeting and STARTTLS, before the session
//! proper: `-v` asks for the capabilities again over TLS.
//!
//! These run before any input is read, one command at a time, through
//! [`Session::setup_response`], like the greeting and STARTTLS.

use super::Session;
use crate::cli::Security;
use crate::error;
use crate::framer::{Kind, Status};
use crate::render::escape_str;
use anyhow::Result;

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
        if self.settings.security == Security::StartTls && self.settings.verbose {
            // Capabilities seen before TLS are not to be trusted (RFC 9051
            // §6.2.1): show the ones the server states over TLS.
            let caps = self.capability().await?;
            eprintln!(
                "imaptalk: capabilities over TLS: {}",
                escape_str(&caps.join(" "))
            );
        }
        Ok(())
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
        if self.settings.echo {
            self.out.echo(&format!("{tag} {shown}"));
        }
        self.conn
            .send(&wire)
            .await
            .map_err(|e| error::connect(error::message(&e)))?;
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
