//! `--compress`: when to send COMPRESS DEFLATE — after a successful login,
//! when the capabilities announced since then offer it (asking for them
//! when the login did not list them). The deflate stream itself is
//! [`io::compress`](crate::io::compress).

use crate::protocol::command::{Effect, Verb};

/// `--compress`: COMPRESS DEFLATE after a successful login, when offered.
#[derive(Debug, Default)]
pub struct Auto {
    enabled: bool,
    /// What the capabilities seen since the last LOGIN or AUTHENTICATE was
    /// sent say (those from before login do not count: they change).
    offered: Option<bool>,
    state: AutoState,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum AutoState {
    #[default]
    Waiting,
    /// This command is to be sent next.
    Due(&'static str),
    /// CAPABILITY was sent with this tag; decide at its completion.
    Asking(String),
    Done,
}

const NOT_OFFERED: &str =
    "--compress: the server does not offer COMPRESS=DEFLATE; the session stays uncompressed";

impl Auto {
    pub fn new(enabled: bool) -> Auto {
        Auto {
            enabled,
            ..Auto::default()
        }
    }

    /// Every capability list the server announces, as just recorded (the
    /// session's one record: no second parse of every response line).
    pub fn saw_capabilities(&mut self, caps: &crate::protocol::caps::Capabilities) {
        if self.enabled {
            self.offered = Some(caps.has("COMPRESS=DEFLATE"));
        }
    }

    /// Every command the session sends.
    pub fn sending_verb(&mut self, verb: Verb) {
        if verb.effect() == Effect::LogsIn {
            // Capabilities change once logged in: ask again.
            self.offered = None;
        }
        if verb == Verb::Compress {
            self.state = AutoState::Done;
        }
    }

    /// Login succeeded (or the greeting was PREAUTH); returns a notice.
    pub fn logged_in(&mut self) -> Option<&'static str> {
        if !self.enabled || self.state != AutoState::Waiting {
            return None;
        }
        self.decide(true)
    }

    fn decide(&mut self, may_ask: bool) -> Option<&'static str> {
        self.state = match self.offered {
            Some(true) => AutoState::Due("COMPRESS DEFLATE"),
            None if may_ask => AutoState::Due("CAPABILITY"),
            _ => {
                self.state = AutoState::Done;
                return Some(NOT_OFFERED);
            }
        };
        None
    }

    /// The command to send now, if one is due.
    pub fn due(&self) -> Option<&'static str> {
        match self.state {
            AutoState::Due(c) => Some(c),
            _ => None,
        }
    }

    /// The due command went out with this tag.
    pub fn sent(&mut self, tag: &str) {
        self.state = match self.state {
            AutoState::Due("CAPABILITY") => AutoState::Asking(tag.to_string()),
            _ => AutoState::Done,
        };
    }

    /// A command completed; returns a notice.
    pub fn completed(&mut self, tag: &str) -> Option<&'static str> {
        match &self.state {
            AutoState::Asking(t) if t == tag => self.decide(false),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saw(a: &mut Auto, caps: &mut crate::protocol::caps::Capabilities, line: &[u8]) {
        if caps.learn(line) {
            a.saw_capabilities(caps);
        }
    }

    #[test]
    fn auto_asks_for_capabilities_when_login_did_not_list_them() {
        let caps = &mut crate::protocol::caps::Capabilities::default();
        let mut a = Auto::new(true);
        saw(
            &mut a,
            caps,
            b"* OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] hi\r\n",
        );
        a.sending_verb(Verb::Login);
        saw(&mut a, caps, b"a1 OK Logged in\r\n");
        assert_eq!(a.logged_in(), None);
        assert_eq!(a.due(), Some("CAPABILITY"));
        a.sent("a2");
        assert_eq!(a.due(), None);
        saw(&mut a, caps, b"* CAPABILITY IMAP4rev1 compress=deflate\r\n");
        assert_eq!(a.completed("a1"), None);
        assert_eq!(a.completed("a2"), None);
        assert_eq!(a.due(), Some("COMPRESS DEFLATE"));
        a.sent("a3");
        assert_eq!(a.due(), None);
        assert_eq!(a.logged_in(), None);

        let mut a = Auto::new(true);
        a.sending_verb(Verb::Authenticate);
        saw(
            &mut a,
            caps,
            b"a1 OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATEX] Logged in\r\n",
        );
        assert_eq!(a.logged_in(), Some(NOT_OFFERED));
        assert_eq!(a.due(), None);

        let mut a = Auto::new(false);
        saw(
            &mut a,
            caps,
            b"a1 OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] Logged in\r\n",
        );
        assert_eq!(a.logged_in(), None);
        assert_eq!(a.due(), None);
    }
}
