//! Meta-command lines in scripts and `-c` (`\idle`, `\sleep`, `\help`, …)
//! and the session's side of `\idle`: IDLE, print what arrives, DONE when
//! the time is up (or on the next input line, or at the end of input), and
//! a fresh IDLE before the server's 30-minute limit (RFC 2177).

use super::{Session, Stop};
use crate::app::meta::{self, Meta, Request};
use crate::core::options::Input;
use crate::error;
use crate::protocol::command;
use crate::protocol::framer::Status;
use anyhow::Result;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long one IDLE runs before `\idle` renews it. RFC 2177: servers may
/// end an IDLE after 30 minutes; clients should re-issue it at least every
/// 29 minutes.
pub const RENEW_IDLE: Duration = Duration::from_secs(28 * 60);

/// Test-only override of [`RENEW_IDLE`], in seconds, so a test of the
/// renewal runs in seconds. Not documented for users.
const RENEW_IDLE_ENV: &str = "IMAPTALK_TEST_RENEW_IDLE_SECS";

fn renew_interval() -> Duration {
    std::env::var(RENEW_IDLE_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map_or(RENEW_IDLE, Duration::from_secs_f64)
}

/// An IDLE started by `\idle`.
#[derive(Debug)]
pub struct MetaIdle {
    /// The IDLE command now running.
    tag: String,
    /// When to send DONE for good; None: on the next input line (Enter)
    /// or at the end of input.
    until: Option<Instant>,
    /// When to send DONE and IDLE again.
    renew_at: Instant,
    done_sent: bool,
    /// DONE was sent to renew the IDLE, not to end it.
    renewing: bool,
    /// `-c` mode without SECONDS: the commands are all given, so Enter (or
    /// the end) of stdin ends the IDLE.
    enter: Option<mpsc::Receiver<()>>,
    entered: bool,
}

/// What woke the session.
pub enum Wake {
    Timer,
    Enter,
}

/// Sleeps until `at`, or until a line (or the end) of stdin, whichever
/// comes first; forever when there is neither.
pub async fn wake(at: Option<Instant>, enter: Option<&mut mpsc::Receiver<()>>) -> Wake {
    let timer = async {
        match at {
            Some(t) => tokio::time::sleep_until(t).await,
            None => std::future::pending().await,
        }
    };
    let enter = async {
        match enter {
            Some(rx) => {
                let _ = rx.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = timer => Wake::Timer,
        () = enter => Wake::Enter,
    }
}

/// The stdin watch of a `\idle` without SECONDS in `-c` mode, if one is
/// pending (it borrows only the idle, so the session can read meanwhile).
pub fn enter_receiver(idle: &mut Option<MetaIdle>) -> Option<&mut mpsc::Receiver<()>> {
    idle.as_mut()
        .filter(|i| !i.entered)
        .and_then(|i| i.enter.as_mut())
}

/// Signals once a line has been read from stdin, or stdin has ended.
fn stdin_line() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut line = Vec::new();
        let _ = std::io::stdin().lock().read_until(b'\n', &mut line);
        let _ = tx.blocking_send(());
    });
    rx
}

impl Session {
    /// A line starting with `\` in a script or `-c`: never sent.
    pub(super) async fn meta_line(&mut self, line: &[u8]) -> Result<()> {
        let text = String::from_utf8_lossy(line);
        let m = match meta::parse(&text) {
            Request::Help(topic) => Meta::Help(topic),
            Request::Quit => Meta::Quit,
            Request::Idle(d) => Meta::Idle(d),
            Request::Sleep(d) => Meta::Sleep(d),
            Request::Show(text) => Meta::Show(text),
            Request::Login(_) => {
                return Err(error::usage(
                    "in the input: \\login asks for a password at the terminal; in a script write LOGIN USER PASSWORD",
                ));
            }
            Request::Error(e) => return Err(error::usage(format!("in the input: {e}"))),
        };
        self.on_meta(m).await
    }

    /// `\idle`: sends IDLE; the rest happens in [`Session::meta_gate`].
    pub(super) async fn start_idle(&mut self, secs: Option<Duration>) -> Result<()> {
        let p = command::prepare(b"IDLE", &mut self.tagger, |t| {
            self.outstanding.iter().any(|o| o.tag == t)
        })
        .map_err(|e| error::usage(e.to_string()))?;
        let tag = p.tag.clone();
        self.send_command(p).await?;
        let now = Instant::now();
        let enter =
            (secs.is_none() && matches!(self.settings.input, Input::Commands(_))).then(stdin_line);
        self.idle = Some(MetaIdle {
            tag,
            until: secs.map(|d| now + d),
            renew_at: now + renew_interval(),
            done_sent: false,
            renewing: false,
            enter,
            entered: false,
        });
        Ok(())
    }

    /// `\sleep`: nothing more is sent until the time has passed.
    pub(super) fn start_sleep(&mut self, d: Duration) {
        self.sleep_until = Some(Instant::now() + d);
    }

    /// While `\sleep` or `\idle` runs, input waits; decides when an idle
    /// ends or is renewed. None: the input may be read as usual.
    pub(super) async fn meta_gate(&mut self) -> Result<Option<Stop>> {
        if let Some(t) = self.sleep_until {
            if Instant::now() < t {
                return Ok(Some(Stop::Blocked));
            }
            self.sleep_until = None;
        }
        let by_commands = matches!(self.settings.input, Input::Commands(_));
        let Some(idle) = &mut self.idle else {
            return Ok(None);
        };
        if idle.done_sent || self.cont.as_deref() != Some(idle.tag.as_str()) {
            // Waiting for the server's `+` or for the completion.
            return Ok(Some(Stop::Blocked));
        }
        let now = Instant::now();
        if idle.until.is_some_and(|t| now >= t) {
            self.idle_done(false).await?;
            return Ok(Some(Stop::Blocked));
        }
        // Without SECONDS the next line ends it (Enter, at the prompt).
        if idle.until.is_none() {
            let ended = if by_commands {
                idle.entered
            } else {
                let line = memchr::memchr(b'\n', &self.input);
                if let Some(i) = line {
                    // Enter or DONE was meant for this IDLE; anything else
                    // is the next command, sent after IDLE completes.
                    let typed = self.input[..i].trim_ascii();
                    if typed.is_empty() || typed.eq_ignore_ascii_case(b"DONE") {
                        let _ = self.input.split_to(i + 1);
                    }
                }
                line.is_some() || self.input_eof
            };
            if ended {
                self.idle_done(false).await?;
                return Ok(Some(Stop::Blocked));
            }
        }
        let Some(idle) = &mut self.idle else {
            return Ok(None);
        };
        if now >= idle.renew_at {
            self.idle_done(true).await?;
            return Ok(Some(Stop::Blocked));
        }
        Ok(Some(if idle.until.is_none() && !by_commands {
            Stop::NeedInput
        } else {
            Stop::Blocked
        }))
    }

    async fn idle_done(&mut self, renew: bool) -> Result<()> {
        let Some(idle) = &mut self.idle else {
            return Ok(());
        };
        idle.done_sent = true;
        idle.renewing = renew;
        let tag = idle.tag.clone();
        if renew && self.settings.output.render {
            self.out.notice(&format!(
                "ending {tag} IDLE to start a new one (servers may drop an IDLE after 30 minutes, RFC 2177)"
            ));
        }
        self.conn.send(b"DONE\r\n").await?;
        if self.settings.session.echo {
            self.out.echo("DONE");
        }
        self.cont_ready = false;
        // Nothing else may end this IDLE again (a signal, the end of input).
        self.cont_cancelled = true;
        if self.prompt.is_some() {
            self.prompt_hold = Some(tag);
        }
        Ok(())
    }

    /// A command completed: if it was `\idle`'s IDLE ended for renewal,
    /// IDLE again; otherwise the `\idle` is over.
    pub(super) async fn idle_completed(&mut self, tag: &str, status: Status) -> Result<()> {
        let Some(idle) = &self.idle else {
            return Ok(());
        };
        if idle.tag != tag {
            return Ok(());
        }
        let again = idle.renewing
            && status == Status::Ok
            && self.logout.is_none()
            && idle.until.is_none_or(|t| Instant::now() < t);
        let Some(mut idle) = self.idle.take() else {
            return Ok(());
        };
        if !again {
            return Ok(());
        }
        let p = command::prepare(b"IDLE", &mut self.tagger, |t| {
            self.outstanding.iter().any(|o| o.tag == t)
        })
        .map_err(|e| error::usage(e.to_string()))?;
        idle.tag = p.tag.clone();
        idle.done_sent = false;
        idle.renewing = false;
        idle.renew_at = Instant::now() + renew_interval();
        self.send_command(p).await?;
        self.idle = Some(idle);
        Ok(())
    }

    /// Ctrl-C ended the IDLE: `\idle` is over once it completes.
    pub(super) fn idle_interrupted(&mut self) {
        if let Some(idle) = &mut self.idle {
            idle.done_sent = true;
            idle.renewing = false;
        }
    }

    /// When the session must wake up on its own (`\sleep`, `\idle`).
    pub(super) fn wake_at(&self) -> Option<Instant> {
        let idle = self
            .idle
            .as_ref()
            .filter(|i| !i.done_sent && self.cont.as_deref() == Some(i.tag.as_str()))
            .map(|i| i.until.map_or(i.renew_at, |u| u.min(i.renew_at)));
        match (self.sleep_until, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn on_wake(&mut self, w: Wake) {
        if let (Wake::Enter, Some(idle)) = (w, &mut self.idle) {
            idle.entered = true;
            idle.enter = None;
        }
    }

    /// At the prompt, `\idle SECONDS` runs its time with the prompt held:
    /// a `+>` prompt left on screen after the timer's DONE would be stale.
    pub(super) fn idle_holds_prompt(&self) -> bool {
        self.idle.as_ref().is_some_and(|i| i.until.is_some())
    }

    /// The session is waiting on purpose (`\sleep`, or `\idle` between its
    /// `+` and DONE): the `--timeout` for server responses does not apply.
    pub(super) fn meta_waiting(&self) -> bool {
        self.sleep_until.is_some()
            || self
                .idle
                .as_ref()
                .is_some_and(|i| !i.done_sent && self.cont.as_deref() == Some(i.tag.as_str()))
    }
}
