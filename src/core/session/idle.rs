//! Meta-command lines in scripts and `-c` (`\idle`, `\sleep`, `\help`, …)
//! and `\idle` itself: IDLE, DONE when the time is up (or on the next
//! input line, or at the end of input), and a fresh IDLE before the
//! server's 30-minute limit (RFC 2177).

use super::*;

impl Core {
    /// A line starting with `\` in a script or `-c`: never sent.
    pub(super) fn meta_line(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let m = match meta::parse(&text) {
            Request::Help(topic) => Meta::Help(topic),
            Request::Quit => Meta::Quit,
            Request::Idle(d) => Meta::Idle(d),
            Request::Sleep(d) => Meta::Sleep(d),
            Request::Show(text) => Meta::Show(text),
            // At the prompt the editor asks for the password itself; a
            // \login that reaches the core is one it could not take.
            Request::Login(_) if self.cfg.interactive() => {
                return self.notice("\\login: type it on a line of its own; nothing was sent");
            }
            Request::Login(_) => {
                return self.fail(error::usage(
                    "in the input: \\login asks for a password at the terminal; in a script write LOGIN USER PASSWORD",
                ));
            }
            Request::Error(e) if self.cfg.interactive() => return self.notice(e),
            Request::Error(e) => return self.fail(error::usage(format!("in the input: {e}"))),
        };
        self.on_meta(m);
    }

    /// A meta-command: help and messages are shown, `\quit` is the end of
    /// input, `\login` queues a LOGIN line quoted as it needs.
    pub(super) fn on_meta(&mut self, m: Meta) {
        match m {
            Meta::Help(topic) => self.actions.push_back(Action::Help(topic)),
            Meta::Say(text) => self.notice(text),
            Meta::Show(text) => self.actions.push_back(Action::Message(text)),
            Meta::Quit if self.cfg.interactive() => self.leave(),
            Meta::Quit => {
                self.input_eof = true;
                // In a script, the lines after \quit are not sent.
                self.input.clear();
                self.scanned = 0;
            }
            Meta::Sleep(d) => self.sleep_until = Some(self.now + d),
            Meta::Idle(d) => {
                if !matches!(self.feed, Feed::Command) || self.cont.is_some() || self.idle.is_some()
                {
                    self.notice("\\idle: the current command is not finished; nothing was sent");
                } else {
                    self.start_idle(d);
                }
            }
            Meta::Login { user, password } => {
                if !matches!(self.feed, Feed::Command) || self.cont.is_some() {
                    self.notice("\\login: the current command is not finished; nothing was sent");
                    return;
                }
                self.input
                    .extend_from_slice(&crate::protocol::astring::login_line(
                        &user,
                        password.expose(),
                    ));
                self.meta_login = true;
            }
        }
    }

    pub(super) fn start_idle(&mut self, secs: Option<Duration>) {
        let tag = self.send_auto(b"IDLE");
        let watch = secs.is_none() && self.cfg.source == Source::Commands;
        if watch {
            self.actions.push_back(Action::WatchStdin);
        }
        self.idle = Some(MetaIdle {
            tag,
            until: secs.map(|d| self.now + d),
            renew_at: self.now + self.cfg.renew_idle,
            done_sent: false,
            renewing: false,
            watch,
            entered: false,
        });
    }

    /// While `\sleep` or `\idle` runs, input waits; decides when an idle
    /// ends or is renewed. None: the input may be read as usual.
    pub(super) fn meta_gate(&mut self) -> Option<Stop> {
        if let Some(t) = self.sleep_until {
            if self.now < t {
                return Some(Stop::Blocked);
            }
            self.sleep_until = None;
        }
        let by_commands = self.cfg.source == Source::Commands;
        let now = self.now;
        let idle = self.idle.as_mut()?;
        if idle.done_sent || self.cont.as_ref().map(|c| c.tag.as_str()) != Some(idle.tag.as_str()) {
            // Waiting for the server's `+` or for the completion.
            return Some(Stop::Blocked);
        }
        if idle.until.is_some_and(|t| now >= t) {
            self.idle_done(false);
            return Some(Stop::Blocked);
        }
        // Without SECONDS the next line ends it (Enter, at the prompt).
        if idle.until.is_none() {
            let ended = if by_commands {
                idle.entered || !idle.watch
            } else {
                let line = memchr::memchr(b'\n', &self.input);
                if let Some(i) = line {
                    // Enter or DONE was meant for this IDLE; anything else
                    // is the next command, sent after IDLE completes.
                    let typed = self.input[..i].trim_ascii();
                    if typed.is_empty() || typed.eq_ignore_ascii_case(b"DONE") {
                        let _ = self.input.split_to(i + 1);
                        self.scanned = 0;
                    }
                }
                line.is_some() || self.input_eof
            };
            if ended {
                self.idle_done(false);
                return Some(Stop::Blocked);
            }
        }
        let idle = self.idle.as_ref()?;
        if now >= idle.renew_at {
            self.idle_done(true);
            return Some(Stop::Blocked);
        }
        Some(if idle.until.is_none() && !by_commands {
            Stop::NeedInput
        } else {
            Stop::Blocked
        })
    }

    pub(super) fn idle_done(&mut self, renew: bool) {
        let Some(idle) = &mut self.idle else {
            return;
        };
        idle.done_sent = true;
        idle.renewing = renew;
        let tag = idle.tag.clone();
        if renew && self.cfg.render {
            self.notice(format!(
                "ending {tag} IDLE to start a new one (servers may drop an IDLE after 30 minutes, RFC 2177)"
            ));
        }
        self.send(b"DONE\r\n".to_vec(), Log::More);
        self.echo("DONE");
        if let Some(c) = &mut self.cont {
            c.ready = false;
            // Nothing else may end this IDLE again (a signal, the end of
            // input).
            c.cancelled = true;
        }
        if self.cfg.interactive() {
            self.hold = Some(tag);
        }
    }

    /// A command completed: if it was `\idle`'s IDLE ended for renewal,
    /// IDLE again; otherwise the `\idle` is over.
    pub(super) fn idle_completed(&mut self, tag: &str, status: Status) {
        let Some(idle) = &self.idle else {
            return;
        };
        if idle.tag != tag {
            return;
        }
        let again = idle.renewing
            && status == Status::Ok
            && self.logout.is_none()
            && idle.until.is_none_or(|t| self.now < t);
        let Some(mut idle) = self.idle.take() else {
            return;
        };
        if !again {
            return;
        }
        idle.tag = self.send_auto(b"IDLE");
        idle.done_sent = false;
        idle.renewing = false;
        idle.renew_at = self.now + self.cfg.renew_idle;
        self.idle = Some(idle);
    }

    /// When the session must wake up on its own for `\idle`.
    pub(super) fn idle_wake_at(&self) -> Option<Instant> {
        self.idle
            .as_ref()
            .filter(|i| {
                !i.done_sent && self.cont.as_ref().map(|c| c.tag.as_str()) == Some(i.tag.as_str())
            })
            .map(|i| i.until.map_or(i.renew_at, |u| u.min(i.renew_at)))
    }

    /// The session is waiting on purpose (`\sleep`, or `\idle` between its
    /// `+` and DONE): the `--timeout` for server responses does not apply.
    pub(super) fn meta_waiting(&self) -> bool {
        self.sleep_until.is_some() || self.idle_wake_at().is_some()
    }
}
