//! The steps before the session proper, one command at a time: the
//! greeting, `--starttls`, the capabilities `-v` shows over TLS, and the
//! `-u` login (LOGIN, or AUTHENTICATE with its rounds of `+`).

use super::{Core, Log, Phase, Security};
use crate::core::sasl::{self, Mechanism, Secret};
use crate::error;
use crate::protocol::framer::{Head, Kind, Status};
use crate::text::escape_str;
use zeroize::Zeroizing;

/// Continuation requests answered during one AUTHENTICATE before it is
/// cancelled: PLAIN and the OAuth2 mechanisms need at most two.
const MAX_ROUNDS: u32 = 3;

/// A set-up command under way.
#[derive(Debug)]
pub(super) enum Step {
    /// CAPABILITY, to show (`-v` after `--starttls`) or to choose a login
    /// mechanism.
    Capability { tag: String, show: bool },
    /// `-u` with LOGIN: the parts still to send after each `+`.
    Login {
        tag: String,
        /// Zeroed when dropped: the password is among them.
        rest: Zeroizing<Vec<Vec<u8>>>,
    },
    /// `-u` with AUTHENTICATE.
    Authenticate {
        tag: String,
        mech: Mechanism,
        ir: Secret,
        /// SCRAM: the rest of the exchange, and the server's proof.
        scram: Option<sasl::Scram>,
        ir_sent: bool,
        rounds: u32,
        /// `*` was sent: one more `+` is a protocol error.
        cancelled: bool,
        oauth_error: Option<String>,
    },
}

impl Step {
    fn tag(&self) -> &str {
        match self {
            Step::Capability { tag, .. }
            | Step::Login { tag, .. }
            | Step::Authenticate { tag, .. } => tag,
        }
    }

    fn waiting_for(&self) -> String {
        match self {
            Step::Capability { .. } => "the answer to CAPABILITY".to_string(),
            Step::Login { .. } => "the answer to LOGIN".to_string(),
            Step::Authenticate { mech, .. } => {
                format!("the answer to AUTHENTICATE {}", mech.name())
            }
        }
    }
}

/// How the server answered a set-up command.
enum Reply {
    /// `+`: the server wants more; the raw text after `+ `.
    More(Vec<u8>),
    /// The tagged completion and its text.
    Done(Status, String),
}

impl Core {
    /// What the set-up is waiting for, for messages.
    pub(super) fn waiting_for(&self) -> String {
        match &self.phase {
            Phase::Greeting => "a greeting".to_string(),
            Phase::StartTls(_) => "the answer to STARTTLS".to_string(),
            Phase::Setup(step) => step.waiting_for(),
            _ => "the server".to_string(),
        }
    }

    pub(super) fn on_greeting(&mut self, head: Head, text: String) {
        match head.kind {
            Kind::Untagged(Status::Ok) => {}
            Kind::Untagged(Status::Preauth) if self.cfg.security == Security::StartTls => {
                return self.fail(error::connect(
                    "server greeted with PREAUTH (a session already open in plaintext), so STARTTLS is impossible; nothing was sent",
                ));
            }
            Kind::Untagged(Status::Preauth) => {
                self.user = Some("?".to_string());
                if let Some(notice) = self.auto_compress.logged_in() {
                    self.notice(notice);
                }
            }
            Kind::Untagged(Status::Bye) => {
                return self.fail(error::connect(format!(
                    "server refused the connection: {text}"
                )));
            }
            _ => {
                return self.fail(error::connect(format!(
                    "this does not look like an IMAP server; it said: {text}"
                )));
            }
        }
        self.say_login_offer();
        if self.cfg.security == Security::StartTls {
            // The first command, before anything else can be sent.
            let tag = self.tagger.take(|_| false);
            let line = format!("{tag} STARTTLS");
            self.echo(line.clone());
            self.send(format!("{line}\r\n").into_bytes(), Log::Line(None));
            self.phase = Phase::StartTls(tag);
        } else {
            self.after_tls();
        }
    }

    pub(super) fn on_starttls_response(&mut self, head: Head, text: String) {
        let Phase::StartTls(tag) = &self.phase else {
            return;
        };
        match head.kind {
            Kind::Tagged { tag: t, status } if t == tag.as_bytes() => {
                if status != Status::Ok {
                    return self.fail(error::connect(format!(
                        "server refused STARTTLS: {text} (nothing else was sent)"
                    )));
                }
                self.phase = Phase::Handshake { typed: false };
                self.actions.push_back(super::Action::StartTls);
            }
            Kind::Untagged(Status::Bye) => self.fail(error::connect(format!(
                "server closed the session during STARTTLS: {text}"
            ))),
            Kind::Untagged(_) => {}
            _ => self.fail(error::connect(format!(
                "unexpected answer to STARTTLS: {text}; aborting"
            ))),
        }
    }

    /// After the greeting, and after TLS when `--starttls` asked for it.
    pub(super) fn after_tls(&mut self) {
        if self.cfg.security == Security::StartTls && self.cfg.verbose {
            // Capabilities seen before TLS are not to be trusted (RFC 9051
            // §6.2.1): show the ones the server states over TLS.
            return self.capability(true);
        }
        self.auto_login();
    }

    fn capability(&mut self, show: bool) {
        self.caps.forget();
        let tag = self.tagger.take(|_| false);
        self.echo(format!("{tag} CAPABILITY"));
        self.send(
            format!("{tag} CAPABILITY\r\n").into_bytes(),
            Log::Line(None),
        );
        self.phase = Phase::Setup(Step::Capability { tag, show });
    }

    /// `-u`: logs in with the secret read before connecting. Refused: in
    /// script and `-c` mode the run ends with exit 1 before any input is
    /// sent (the script assumes a login); interactively the prompt comes
    /// up anyway, so the user can try `\login`.
    fn auto_login(&mut self) {
        let Some(login) = self.cfg.login.clone() else {
            return self.start_session();
        };
        let user = login.user.as_str();
        let forced = login.mech;
        if self.user.is_some() {
            self.notice("the server greeted with PREAUTH: already logged in; -u is not used");
            return self.start_session();
        }
        if !self.tls
            && let Some(why) = self.cfg.plaintext_refusal.clone()
        {
            return self.fail(error::usage(why));
        }
        if self.caps.list().is_empty() {
            return self.capability(false);
        }
        let shown_user = login.shown();
        let mech = match sasl::choose(login.oauth2, &self.caps, forced) {
            Ok(m) => m,
            Err(e) => {
                return self.fail(error::refused(format!(
                    "cannot log in as {shown_user}: {e}"
                )));
            }
        };
        if self.cfg.verbose {
            let how = match mech {
                Mechanism::Login => "LOGIN".to_string(),
                m if self.caps.has("SASL-IR") => format!("AUTHENTICATE {} with SASL-IR", m.name()),
                m => format!("AUTHENTICATE {}", m.name()),
            };
            self.say(format!("imaptalk: logging in as {shown_user} ({how})"));
        }
        // --compress: only capabilities announced from now on count.
        self.auto_compress
            .sending_verb(crate::protocol::command::Verb::Login);
        let tag = self.tagger.take(|_| false);
        match mech {
            Mechanism::Login => {
                let mut parts = crate::protocol::astring::login_parts(user, login.secret.expose());
                let shown = format!(
                    "{tag} LOGIN {} ****",
                    crate::protocol::astring::quote_mailbox(user)
                );
                let mut first = format!("{tag} ").into_bytes();
                if !parts.is_empty() {
                    first.extend_from_slice(&Zeroizing::new(parts.remove(0)));
                }
                self.echo(shown.clone());
                self.send(first, Log::Line(Some(shown)));
                self.phase = Phase::Setup(Step::Login { tag, rest: parts });
            }
            _ => {
                let t = (&self.cfg.host, self.cfg.port);
                let scram = mech
                    .scram_hash()
                    .map(|h| sasl::Scram::new(h, user, &login.secret, &login.nonce));
                let ir = match &scram {
                    Some(s) => Secret::new(s.client_first()),
                    None => sasl::initial_response(mech, user, &login.secret, t.0, t.1),
                };
                let name = mech.name();
                let ir_sent = self.caps.has("SASL-IR");
                let (wire, shown) = if ir_sent {
                    // RFC 4959: "=" is an empty initial response.
                    let ir_text = match ir.expose() {
                        "" => "=",
                        text => text,
                    };
                    (
                        format!("{tag} AUTHENTICATE {name} {ir_text}\r\n"),
                        format!("{tag} AUTHENTICATE {name} ****"),
                    )
                } else {
                    (
                        format!("{tag} AUTHENTICATE {name}\r\n"),
                        format!("{tag} AUTHENTICATE {name}"),
                    )
                };
                self.echo(shown.clone());
                self.send(wire.into_bytes(), Log::Line(Some(shown)));
                self.phase = Phase::Setup(Step::Authenticate {
                    tag,
                    mech,
                    ir,
                    scram,
                    ir_sent,
                    rounds: 0,
                    cancelled: false,
                    oauth_error: None,
                });
            }
        }
    }

    pub(super) fn on_setup_response(&mut self, head: Head, text: String, raw: Vec<u8>) {
        let Phase::Setup(step) = &self.phase else {
            return;
        };
        let what = step.waiting_for();
        let reply = match head.kind {
            Kind::Tagged { tag: t, status } if t == step.tag().as_bytes() => {
                Reply::Done(status, text)
            }
            Kind::Continuation => Reply::More(raw),
            Kind::Untagged(Status::Bye) => {
                return self.fail(error::connect(format!(
                    "server closed the session while waiting for {what}: {text}"
                )));
            }
            Kind::Untagged(_) => return,
            Kind::Tagged { .. } => {
                return self.fail(error::connect(format!(
                    "unexpected completion while waiting for {what}: {text}; aborting"
                )));
            }
        };
        // Every branch below sets the next phase (or fails).
        let Phase::Setup(step) = std::mem::replace(&mut self.phase, Phase::Greeting) else {
            return;
        };
        match step {
            Step::Capability { show, .. } => self.capability_done(show, reply),
            Step::Login { tag, mut rest } => match reply {
                Reply::More(_) => match (!rest.is_empty()).then(|| rest.remove(0)) {
                    Some(part) => {
                        self.send(part, Log::More);
                        self.phase = Phase::Setup(Step::Login { tag, rest });
                    }
                    None => self.fail(error::lost(
                        "the server asked for more of a LOGIN that was complete; aborting",
                    )),
                },
                Reply::Done(status, text) => self.login_done(refusal(status, text, None)),
            },
            Step::Authenticate {
                tag,
                mech,
                ir,
                mut scram,
                mut ir_sent,
                mut rounds,
                cancelled,
                mut oauth_error,
            } => {
                let challenge = match reply {
                    Reply::Done(Status::Ok, _) if scram.as_ref().is_some_and(|s| !s.verified()) => {
                        // A server that does not know the password can
                        // still say OK: only its signature proves it does.
                        return self.fail(error::refused(format!(
                            "login as {} aborted: the server accepted {} without proving that it knows the password (no SCRAM server signature); it may be an impostor",
                            self.login_shown(),
                            mech.name()
                        )));
                    }
                    Reply::Done(status, text) => {
                        return self.login_done(refusal(status, text, oauth_error));
                    }
                    Reply::More(challenge) => challenge,
                };
                if cancelled {
                    return self.fail(error::lost(format!(
                        "the server asked for more of AUTHENTICATE {} after it was cancelled; aborting",
                        mech.name()
                    )));
                }
                rounds += 1;
                let answer = if !ir_sent {
                    ir_sent = true;
                    ir.clone()
                } else if let Some(s) = scram.as_mut() {
                    match s.step(&challenge) {
                        Ok(answer) => {
                            if s.verified() && self.cfg.verbose {
                                self.say(format!(
                                    "imaptalk: {}: the server proved that it knows the password",
                                    mech.name()
                                ));
                            }
                            answer
                        }
                        Err(e) => {
                            return self.fail(error::refused(format!(
                                "login as {} failed: {e}",
                                self.login_shown()
                            )));
                        }
                    }
                } else if rounds > MAX_ROUNDS || !mech.oauth2() {
                    // PLAIN, EXTERNAL and ANONYMOUS are done after their
                    // one response: cancel.
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
                self.echo(shown);
                self.send(line, Log::Line(Some("****".to_string())));
                let cancelled = answer.expose() == "*";
                self.phase = Phase::Setup(Step::Authenticate {
                    tag,
                    mech,
                    ir,
                    scram,
                    ir_sent,
                    rounds,
                    cancelled,
                    oauth_error,
                });
            }
        }
    }

    fn capability_done(&mut self, show: bool, reply: Reply) {
        match reply {
            Reply::Done(Status::Ok, _) => {}
            Reply::Done(_, text) => {
                return self.fail(error::connect(format!("server refused CAPABILITY: {text}")));
            }
            Reply::More(text) => {
                return self.fail(error::connect(format!(
                    "server answered CAPABILITY with a continuation request (+ {}); aborting",
                    escape_str(&String::from_utf8_lossy(&text))
                )));
            }
        }
        if self.caps.list().is_empty() {
            return self.fail(error::connect(
                "server answered CAPABILITY without a capability list",
            ));
        }
        if show {
            let list = self.caps.list().join(" ");
            self.say(format!(
                "imaptalk: capabilities over TLS: {}",
                escape_str(&list)
            ));
        }
        self.say_login_offer();
        self.auto_login();
    }

    fn login_done(&mut self, refusal: Option<String>) {
        let Some(login) = &self.cfg.login else {
            return self.start_session();
        };
        let user = login.shown();
        match refusal {
            None => {
                self.user = Some(match login.user.as_str() {
                    "" => "?".to_string(),
                    u => u.to_string(),
                });
                if let Some(notice) = self.auto_compress.logged_in() {
                    self.notice(notice);
                }
                self.start_session();
            }
            Some(text) => {
                let msg = format!("login as {user} failed: {text}");
                if self.cfg.wait() {
                    self.fail(error::refused(msg));
                } else {
                    self.notice(format!("{msg}; \\login USER tries again"));
                    self.start_session();
                }
            }
        }
    }

    /// `-v`: the ways to log in the server offers, before TLS and again
    /// over it (what a server offers in plaintext is often less, and is
    /// not to be trusted).
    fn say_login_offer(&mut self) {
        if !self.cfg.verbose || self.caps.list().is_empty() || self.offer_shown == Some(self.tls) {
            return;
        }
        self.offer_shown = Some(self.tls);
        let mut ways: Vec<String> = Vec::new();
        if self.caps.has("LOGINDISABLED") {
            ways.push("LOGINDISABLED (no LOGIN)".to_string());
        } else {
            ways.push("LOGIN".to_string());
        }
        ways.extend(
            self.caps
                .list()
                .iter()
                .filter(|c| c.len() > 5 && c[..5].eq_ignore_ascii_case("AUTH="))
                .map(|c| escape_str(c)),
        );
        let when = if self.tls { "over TLS" } else { "before TLS" };
        self.say(format!(
            "imaptalk: logins offered {when}: {}",
            ways.join(", ")
        ));
    }

    /// Who `-u` logs in as, for messages.
    fn login_shown(&self) -> String {
        self.cfg
            .login
            .as_ref()
            .map(super::AutoLogin::shown)
            .unwrap_or_default()
    }

    fn start_session(&mut self) {
        self.phase = Phase::Session;
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
