//! Ending a script run on SIGINT or SIGTERM: log out if the wire allows
//! it, wait a second at most for the server to confirm, then go.

use super::{Feed, Session};
use crate::app::signals::{Kind, Signals};
use crate::protocol::command;
use std::time::Duration;

/// How long the server gets to answer the LOGOUT sent on a signal. A
/// person pressing Ctrl-C wants out now; a server that is mid-way through
/// a large literal will not answer in time, and that is fine.
const GRACE: Duration = Duration::from_secs(1);

impl Session {
    /// The run was interrupted by `kind` while `run` was between two
    /// awaits (it was dropped there). Returns the exit code.
    pub async fn stop(&mut self, kind: Kind, signals: &mut Signals) -> u8 {
        let _ = self.out.flush();
        let outcome = match self.send_logout().await {
            Ok(true) => self.await_logout(signals).await,
            Ok(false) => "in the middle of a command; closed the connection without LOGOUT",
            Err(_) => "the connection failed while sending LOGOUT",
        };
        let _ = self.out.finish();
        self.conn.shutdown().await;
        self.out
            .notice(&format!("interrupted by {}: {outcome}", kind.name()));
        kind.exit_code()
    }

    /// Sends what ends the session, if the server is at a point where a
    /// new command line is understood as one: not after part of a line,
    /// not inside a literal the server is counting. An IDLE gets DONE and
    /// an AUTHENTICATE `*` first. Returns whether a LOGOUT is outstanding.
    async fn send_logout(&mut self) -> anyhow::Result<bool> {
        if self.logged_out {
            return Ok(false);
        }
        if self.logout.is_some() {
            return Ok(true);
        }
        if self.conn.torn()
            || self.barrier.is_some()
            || matches!(self.feed, Feed::Literal { .. } | Feed::RestOfLine { .. })
        {
            return Ok(false);
        }
        if let Some(owner) = self.cont.clone()
            && !self.cont_cancelled
        {
            let name = self
                .outstanding
                .iter()
                .find(|o| o.tag == owner)
                .map(|o| o.name.as_str());
            match name {
                Some("IDLE") => self.conn.send(b"DONE\r\n").await?,
                Some("AUTHENTICATE") => self.conn.send(b"*\r\n").await?,
                // An extension command in the middle of its own exchange:
                // a LOGOUT line now would be taken as part of it.
                _ => return Ok(false),
            }
            self.cont_cancelled = true;
        }
        let p = command::prepare(b"LOGOUT", &mut self.tagger, |t| {
            self.outstanding.iter().any(|o| o.tag == t)
        })?;
        self.send_command(p).await?;
        Ok(true)
    }

    /// Shows what the server still sends until LOGOUT completes, the
    /// server closes, [`GRACE`] runs out, or a second signal arrives.
    async fn await_logout(&mut self, signals: &mut Signals) -> &'static str {
        let deadline = tokio::time::Instant::now() + GRACE;
        loop {
            loop {
                match self.conn.next_event() {
                    Ok(Some(ev)) => {
                        if self.on_event(ev).await.is_err() {
                            return "sent LOGOUT; the session broke before it completed";
                        }
                        if self.logged_out {
                            return "logged out";
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return "sent LOGOUT; the server's answer could not be framed",
                }
            }
            let _ = self.out.flush();
            tokio::select! {
                more = self.conn.fill() => match more {
                    Ok(true) => {}
                    // The server closed after our LOGOUT: a clean end.
                    Ok(false) => return "sent LOGOUT; the server closed the connection",
                    Err(_) => return "sent LOGOUT; the connection broke",
                },
                () = tokio::time::sleep_until(deadline) => {
                    return "sent LOGOUT; no answer within 1s";
                }
                _ = signals.recv() => return "sent LOGOUT; a second signal ended the wait",
            }
        }
    }
}
