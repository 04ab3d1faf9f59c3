//! The session core without sockets: server bytes go through the real
//! framer, input is fed as the drivers feed it, and what the core asks
//! for is checked action by action.

use super::*;
use crate::error::{Class, Fail};
use crate::protocol::framer::Framer;
use proptest::prelude::*;

const GREETING: &str = "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN] ready\r\n";

fn config(source: Source) -> Config {
    Config {
        host: "imap.example.com".to_string(),
        port: 143,
        security: Security::Plain,
        source,
        pipeline: false,
        echo: false,
        render: false,
        verbose: false,
        timing: false,
        timeout: Some(Duration::from_secs(10)),
        compress: false,
        tag_prefix: "a".to_string(),
        login: None,
        plaintext_refusal: None,
        local: true,
        renew_idle: RENEW_IDLE,
    }
}

/// How a run ended: the exit code and last notice, or the failure.
type End = Result<(u8, Option<String>), (Class, String)>;

/// A core, a framer for the server's bytes, and a record of what the
/// core asked for.
struct T {
    core: Core,
    framer: Framer,
    now: Instant,
    /// Bytes sent, since the last `wire()`.
    wire: Vec<u8>,
    /// Every Send in order, with its log form.
    sends: Vec<(Vec<u8>, Log)>,
    other: Vec<Action>,
}

impl T {
    fn new(cfg: Config) -> T {
        let now = Instant::now();
        T {
            core: Core::new(cfg, false, false, now),
            framer: Framer::new(),
            now,
            wire: Vec::new(),
            sends: Vec::new(),
            other: Vec::new(),
        }
    }

    /// A session past its greeting.
    fn session(source: Source) -> T {
        let mut t = T::new(config(source));
        t.server(GREETING);
        t
    }

    fn drain(&mut self) {
        while let Some(a) = self.core.next_action() {
            match a {
                Action::Send { bytes, log } => {
                    self.wire.extend_from_slice(&bytes);
                    self.sends.push((bytes.to_vec(), log));
                }
                a => self.other.push(a),
            }
        }
    }

    fn server(&mut self, bytes: &str) {
        self.server_bytes(bytes.as_bytes());
    }

    fn server_bytes(&mut self, bytes: &[u8]) {
        self.framer.buffer_mut().extend_from_slice(bytes);
        self.core.server_activity(self.now);
        loop {
            match self.framer.next_event() {
                Ok(Some(ev)) => {
                    self.core.server_event(&ev, self.now);
                    self.drain();
                }
                Ok(None) => break,
                Err(e) => {
                    self.core.frame_error(e);
                    break;
                }
            }
        }
        self.drain();
    }

    fn input(&mut self, s: &str) {
        self.core
            .input(Input::Data(s.as_bytes().to_vec()), self.now);
        self.drain();
    }

    fn eof(&mut self) {
        self.core.input(Input::Eof, self.now);
        self.drain();
    }

    fn advance(&mut self, secs: f64) {
        self.now += Duration::from_secs_f64(secs);
        self.core.tick(self.now);
        self.drain();
    }

    fn signal(&mut self, s: Signal, torn: bool) {
        self.core.signal(s, torn, self.now);
        self.drain();
    }

    /// What was sent since the last call, as text.
    fn wire(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.wire)).into_owned()
    }

    fn notices(&self) -> Vec<String> {
        self.other
            .iter()
            .filter_map(|a| match a {
                Action::Notice(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// The end of the run: Ok(exit code and last notice) or the failure.
    fn end(&mut self) -> Option<End> {
        self.other.iter().find_map(|a| match a {
            Action::Finish { code, last, .. } => Some(Ok((*code, last.clone()))),
            Action::Fail(e) => {
                let f = e.downcast_ref::<Fail>().expect("a classified failure");
                Some(Err((f.class, f.message.clone())))
            }
            _ => None,
        })
    }

    fn failure(&mut self) -> (Class, String) {
        match self.end() {
            Some(Err(f)) => f,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn exit(&mut self) -> u8 {
        match self.end() {
            Some(Ok((code, _))) => code,
            other => panic!("expected the end, got {other:?}"),
        }
    }

    fn prompts(&self) -> Vec<PromptView> {
        self.other
            .iter()
            .filter_map(|a| match a {
                Action::Prompt(p) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    fn has(&self, f: impl Fn(&Action) -> bool) -> bool {
        self.other.iter().any(f)
    }
}

// ----- greetings ---------------------------------------------------------

#[test]
fn an_ok_greeting_starts_the_session() {
    let mut t = T::session(Source::Stdin);
    assert_eq!(t.wire(), "");
    t.input("NOOP\n");
    assert_eq!(t.wire(), "a1 NOOP\r\n");
    assert!(t.core.capabilities().has("LITERAL+"));
}

#[test]
fn input_read_before_the_greeting_waits_for_it() {
    let mut t = T::new(config(Source::Stdin));
    t.input("NOOP\n");
    assert_eq!(t.wire(), "");
    t.server(GREETING);
    assert_eq!(t.wire(), "a1 NOOP\r\n");
}

#[test]
fn a_preauth_greeting_is_a_logged_in_session() {
    let mut t = T::new(config(Source::Interactive));
    t.server("* PREAUTH ready\r\n");
    assert_eq!(
        t.prompts().last(),
        Some(&PromptView::Command {
            tag: "a1".into(),
            tls: false,
            user: Some("?".into()),
            mailbox: None
        })
    );
}

#[test]
fn a_bye_greeting_fails_to_connect() {
    let mut t = T::new(config(Source::Stdin));
    t.server("* BYE too many connections\r\n");
    let (class, msg) = t.failure();
    assert_eq!(class, Class::Connect);
    assert_eq!(
        msg,
        "server refused the connection: * BYE too many connections"
    );
}

#[test]
fn a_garbage_greeting_is_not_imap() {
    let mut t = T::new(config(Source::Stdin));
    t.server("SSH-2.0-OpenSSH_9.2\r\n");
    let (class, msg) = t.failure();
    assert_eq!(class, Class::Connect);
    assert!(
        msg.starts_with("this does not look like an IMAP server"),
        "{msg}"
    );
}

#[test]
fn a_close_before_the_greeting_hints_at_tls() {
    let mut t = T::new(config(Source::Stdin));
    t.core.server_closed(t.now);
    t.drain();
    let (class, msg) = t.failure();
    assert_eq!(class, Class::Connect);
    assert!(
        msg.ends_with("(if this port expects TLS from the start, add --tls)"),
        "{msg}"
    );
}

#[test]
fn a_silent_server_times_out_before_the_greeting() {
    let mut t = T::new(config(Source::Interactive));
    t.advance(5.0);
    assert_eq!(t.core.deadline(), Some(t.now + Duration::from_secs(5)));
    t.advance(4.0);
    assert!(t.end().is_none());
    t.advance(1.5);
    let (class, msg) = t.failure();
    assert_eq!(class, Class::Connect);
    assert_eq!(
        msg,
        "timed out after 10s waiting for a greeting (if this port expects TLS from the start, add --tls)"
    );
}

#[test]
fn a_silent_plaintext_server_gets_the_tls_hint_once_and_the_wait_goes_on() {
    let mut cfg = config(Source::Interactive);
    cfg.timeout = None;
    let mut t = T::new(cfg);
    assert_eq!(t.core.deadline(), Some(t.now + GREETING_HINT));
    t.advance(4.9);
    assert!(t.notices().is_empty());
    t.advance(0.2);
    assert_eq!(
        t.notices(),
        [
            "no greeting from imap.example.com:143 after 5s; if this port expects TLS from the start, add --tls (still waiting)"
        ]
    );
    assert_eq!(t.core.deadline(), None, "said once, then it just waits");
    t.advance(60.0);
    assert_eq!(t.notices().len(), 1);
    assert!(t.end().is_none());
    t.server(GREETING);
    assert!(t.core.in_session());
    // Over TLS the silence has other causes: no hint.
    let mut t = T::new(config(Source::Interactive));
    t.core = Core::new(config(Source::Interactive), true, false, t.now);
    t.advance(9.0);
    assert!(t.notices().is_empty());
}

#[test]
fn greeting_bytes_restart_the_wait() {
    let mut t = T::new(config(Source::Stdin));
    t.advance(8.0);
    t.server_bytes(b"* OK [CAPABILITY IMAP4rev1] rea");
    t.advance(8.0);
    assert!(t.end().is_none(), "part of a greeting restarts the timer");
}

// ----- STARTTLS ----------------------------------------------------------

fn starttls() -> T {
    let mut cfg = config(Source::Stdin);
    cfg.security = Security::StartTls;
    T::new(cfg)
}

#[test]
fn starttls_goes_first_and_nothing_follows_until_tls_is_up() {
    let mut t = starttls();
    t.input("LOGIN alice secret\n");
    t.server(GREETING);
    assert_eq!(t.wire(), "a1 STARTTLS\r\n");
    t.server("a1 OK Begin TLS negotiation now\r\n");
    assert!(t.has(|a| matches!(a, Action::StartTls)));
    assert_eq!(t.wire(), "", "nothing in plaintext after STARTTLS OK");
    t.core.tls_up(Some("TLSv1.3"), false, t.now);
    t.drain();
    assert_eq!(t.wire(), "a2 LOGIN alice secret\r\n");
    assert!(
        t.core.capabilities().list().is_empty(),
        "capabilities from plaintext are forgotten"
    );
}

#[test]
fn a_refused_starttls_sends_nothing_else() {
    let mut t = starttls();
    t.input("LOGIN alice secret\n");
    t.server(GREETING);
    t.wire();
    t.server("a1 NO not now\r\n");
    assert_eq!(t.wire(), "");
    let (class, msg) = t.failure();
    assert_eq!(class, Class::Connect);
    assert_eq!(
        msg,
        "server refused STARTTLS: a1 NO not now (nothing else was sent)"
    );
}

#[test]
fn a_continuation_answering_starttls_aborts() {
    let mut t = starttls();
    t.server(GREETING);
    t.server("+ go on\r\n");
    let (class, msg) = t.failure();
    assert_eq!(class, Class::Connect);
    assert!(msg.starts_with("unexpected answer to STARTTLS"), "{msg}");
}

#[test]
fn bye_during_starttls_aborts() {
    let mut t = starttls();
    t.server(GREETING);
    t.server("* BYE shutting down\r\n");
    assert_eq!(t.failure().0, Class::Connect);
}

#[test]
fn preauth_makes_starttls_impossible() {
    let mut t = starttls();
    t.server("* PREAUTH hi\r\n");
    assert_eq!(t.wire(), "");
    assert!(t.failure().1.contains("STARTTLS is impossible"));
}

#[test]
fn a_typed_starttls_is_a_barrier_until_tls_is_up() {
    let mut t = T::session(Source::Interactive);
    t.input("STARTTLS\nNOOP\n");
    assert_eq!(t.wire(), "a1 STARTTLS\r\n");
    t.server("a1 OK go\r\n");
    assert!(t.has(|a| matches!(a, Action::StartTls)));
    assert_eq!(t.wire(), "");
    t.core.tls_up(None, false, t.now);
    t.drain();
    assert_eq!(t.wire(), "a2 NOOP\r\n");
}

#[test]
fn verbose_starttls_shows_the_capabilities_over_tls() {
    let mut cfg = config(Source::Stdin);
    cfg.security = Security::StartTls;
    cfg.verbose = true;
    let mut t = T::new(cfg);
    t.server(GREETING);
    t.server("a1 OK go\r\n");
    t.core.tls_up(None, false, t.now);
    t.drain();
    assert_eq!(t.wire(), "a1 STARTTLS\r\na2 CAPABILITY\r\n");
    t.server("* CAPABILITY IMAP4rev1 IDLE\r\na2 OK done\r\n");
    assert!(t.has(
        |a| matches!(a, Action::Say(s) if s == "imaptalk: capabilities over TLS: IMAP4REV1 IDLE")
    ));
}

// ----- literals ----------------------------------------------------------

#[test]
fn a_synchronizing_literal_waits_for_the_plus() {
    let mut t = T::session(Source::Stdin);
    t.input("APPEND INBOX {5}\nhello\nNOOP\n");
    assert_eq!(t.wire(), "a1 APPEND INBOX {5}\r\n");
    t.server("+ ready\r\n");
    assert_eq!(t.wire(), "hello\r\n");
    t.server("a1 OK appended\r\n");
    assert_eq!(t.wire(), "a2 NOOP\r\n");
}

#[test]
fn a_synchronizing_literal_refused_before_its_plus_is_skipped() {
    let mut t = T::session(Source::Stdin);
    t.input("APPEND INBOX {5}\nhello\nNOOP\n");
    t.wire();
    t.server("a1 NO [TOOBIG] too large\r\n");
    assert_eq!(t.wire(), "a2 NOOP\r\n");
    assert!(
        t.notices()
            .iter()
            .any(|n| n.contains("was refused before its literal was sent; 5 bytes"))
    );
}

#[test]
fn a_non_synchronizing_literal_goes_at_once() {
    let mut t = T::session(Source::Stdin);
    t.input("APPEND INBOX {5+}\nhello\n");
    assert_eq!(t.wire(), "a1 APPEND INBOX {5+}\r\nhello\r\n");
}

#[test]
fn a_refused_non_synchronizing_literal_is_still_sent_in_full() {
    let mut t = T::session(Source::Stdin);
    t.input("APPEND INBOX {10+}\nhello");
    assert_eq!(t.wire(), "a1 APPEND INBOX {10+}\r\nhello");
    t.server("a1 NO [TOOBIG] too large\r\n");
    assert_eq!(t.wire(), "", "nothing but the literal may follow");
    t.input("world\nNOOP\n");
    assert_eq!(t.wire(), "world\r\na2 NOOP\r\n");
}

#[test]
fn a_synchronizing_literal_refused_after_its_plus_is_still_sent_in_full() {
    let mut t = T::session(Source::Stdin);
    t.input("APPEND INBOX {10}\nhello");
    t.server("+ go\r\n");
    assert_eq!(t.wire(), "a1 APPEND INBOX {10}\r\nhello");
    t.server("a1 NO no space\r\n");
    t.input("world\nNOOP\n");
    assert_eq!(t.wire(), "world\r\na2 NOOP\r\n");
}

#[test]
fn after_a_refusal_a_later_synchronizing_literal_is_skipped() {
    let mut t = T::session(Source::Stdin);
    t.input("X {3+}\nabc {4}\ndefg\nNOOP\n");
    t.server("a1 NO no\r\n");
    assert_eq!(t.wire(), "a1 X {3+}\r\nabc {4}\r\na2 NOOP\r\n");
}

#[test]
fn a_command_completed_ok_before_it_was_sent_is_a_protocol_error() {
    let mut t = T::session(Source::Stdin);
    t.input("APPEND INBOX {5}\n");
    t.server("a1 OK done\r\n");
    let (class, msg) = t.failure();
    assert_eq!(class, Class::Lost);
    assert!(msg.starts_with("protocol error"), "{msg}");
}

#[test]
fn input_ending_inside_a_literal_is_a_usage_error() {
    let mut t = T::session(Source::Stdin);
    t.input("APPEND INBOX {10+}\nhello");
    t.eof();
    let (class, msg) = t.failure();
    assert_eq!(class, Class::Usage);
    assert_eq!(msg, "input ended inside the literal of a1: 5 bytes missing");
}

#[test]
fn a_literal_prompt_counts_the_bytes_left() {
    let mut t = T::session(Source::Interactive);
    t.input("APPEND INBOX {12}\r\n");
    t.server("+ go\r\n");
    t.input("hello\r\n");
    assert_eq!(t.prompts().last(), Some(&PromptView::Literal(5)));
}

#[test]
fn a_file_literal_is_opened_by_the_driver_and_streamed() {
    let mut t = T::session(Source::Stdin);
    t.input("APPEND INBOX {@/nonexistent/x}\n");
    assert!(t.has(
        |a| matches!(a, Action::OpenFiles { paths } if paths == &[b"/nonexistent/x".to_vec()])
    ));
    assert_eq!(t.wire(), "");
    t.core
        .files_opened(Err(error::usage("/nonexistent/x: No such file")), t.now);
    t.drain();
    assert_eq!(
        t.failure(),
        (Class::Usage, "/nonexistent/x: No such file".into())
    );
}

#[test]
fn a_file_literal_goes_between_its_line_and_the_rest() {
    let mut t = T::session(Source::Stdin);
    t.input("APPEND INBOX {@m.eml} FLAGS\nNOOP\n");
    let file = FileRef {
        id: 0,
        name: "{@m.eml}".into(),
        len: 5,
        nul: false,
    };
    t.core.files_opened(Ok(vec![file]), t.now);
    t.drain();
    let announced = t.wire();
    assert!(announced.starts_with("a1 APPEND INBOX {5"), "{announced}");
    if announced.ends_with("{5}\r\n") {
        t.server("+ go\r\n");
    }
    assert!(t.has(|a| matches!(a, Action::SendFile { file: 0, len: 5 })));
    assert_eq!(t.wire(), "", "nothing else until the file is sent");
    t.core.file_sent(t.now);
    t.drain();
    assert_eq!(t.wire(), " FLAGS\r\n");
    t.server("a1 OK\r\n");
    assert_eq!(t.wire(), "a2 NOOP\r\n");
}

#[test]
fn stdin_as_a_file_is_refused_when_stdin_is_the_script() {
    let mut t = T::session(Source::Stdin);
    t.input("APPEND INBOX {@-}\n");
    assert!(t.failure().1.contains("holds the script"));
}

// ----- continuations: IDLE and AUTHENTICATE ------------------------------

#[test]
fn idle_and_done_go_untagged() {
    let mut t = T::session(Source::Stdin);
    t.input("IDLE\nDONE\n");
    assert_eq!(t.wire(), "a1 IDLE\r\n");
    t.server("+ idling\r\n");
    assert_eq!(t.wire(), "DONE\r\n");
    t.server("a1 OK done\r\n");
    t.eof();
    assert_eq!(t.wire(), "a2 LOGOUT\r\n");
}

#[test]
fn the_end_of_input_during_idle_sends_done_then_logout() {
    let mut t = T::session(Source::Stdin);
    t.input("IDLE\n");
    t.server("+ idling\r\n");
    t.eof();
    assert_eq!(t.wire(), "a1 IDLE\r\nDONE\r\n");
    t.server("a1 OK done\r\n");
    assert_eq!(t.wire(), "a2 LOGOUT\r\n");
    t.server("* BYE\r\na2 OK bye\r\n");
    assert_eq!(t.exit(), 0);
}

#[test]
fn ctrl_c_at_the_prompt_ends_an_idle() {
    let mut t = T::session(Source::Interactive);
    t.input("IDLE\r\n");
    t.server("+ idling\r\n");
    t.wire();
    t.core.input(Input::Interrupt, t.now);
    t.drain();
    assert_eq!(t.wire(), "DONE\r\n");
}

#[test]
fn enter_on_an_empty_line_ends_an_idle_at_the_prompt() {
    let mut t = T::session(Source::Interactive);
    t.input("IDLE\r\n");
    t.server("+ idling\r\n");
    t.wire();
    t.input("\r\n");
    assert_eq!(t.wire(), "DONE\r\n");
}

#[test]
fn a_typed_authenticate_answer_is_masked_in_the_log() {
    let mut t = T::session(Source::Stdin);
    t.input("AUTHENTICATE PLAIN\nAGFsaWNlAHNlY3JldA==\n");
    t.server("+ \r\n");
    let (bytes, log) = t.sends.last().unwrap().clone();
    assert_eq!(bytes, b"AGFsaWNlAHNlY3JldA==\r\n");
    assert_eq!(log, Log::Line(Some("****".into())));
}

#[test]
fn the_end_of_input_during_authenticate_cancels_it() {
    let mut t = T::session(Source::Stdin);
    t.input("AUTHENTICATE PLAIN\n");
    t.server("+ \r\n");
    t.eof();
    assert!(t.wire().ends_with("*\r\n"));
}

#[test]
fn a_stray_plus_is_ignored_and_floods_are_counted() {
    let mut t = T::session(Source::Stdin);
    t.input("NOOP\n");
    for _ in 0..100 {
        t.server("+ hi\r\n");
    }
    let warned = t
        .notices()
        .iter()
        .filter(|n| n.contains("continuation request"))
        .count();
    assert_eq!(warned, 3);
    t.server("a1 OK done\r\n");
    t.eof();
    t.server("a2 OK bye\r\n");
    assert!(
        t.notices()
            .iter()
            .any(|n| n.contains("97 more continuation requests"))
    );
}

#[test]
fn invalid_utf8_in_an_unknown_tag_is_shown_as_bytes() {
    let mut t = T::session(Source::Stdin);
    t.server_bytes(b"a\xff OK forged\r\n");
    let n = t.notices();
    assert!(n[0].contains("'a\\xff'"), "{n:?}");
}

#[test]
fn an_unknown_tag_is_shown_escaped() {
    let mut t = T::session(Source::Stdin);
    t.server("a\x1b]0;x\x07 OK forged\r\n");
    let n = t.notices();
    assert!(n[0].contains("'a\\x1b]0;x\\x07'"), "{n:?}");
}

// ----- scripts, --pipeline, LOGOUT ---------------------------------------

#[test]
fn a_script_waits_for_each_completion() {
    let mut t = T::session(Source::Stdin);
    t.input("NOOP\nNOOP\n");
    assert_eq!(t.wire(), "a1 NOOP\r\n");
    t.server("a1 OK\r\n");
    assert_eq!(t.wire(), "a2 NOOP\r\n");
}

#[test]
fn pipeline_sends_ahead_but_not_past_a_barrier() {
    let mut cfg = config(Source::Stdin);
    cfg.pipeline = true;
    let mut t = T::new(cfg);
    t.server(GREETING);
    t.input("NOOP\nNOOP\nSELECT INBOX\nNOOP\n");
    assert_eq!(t.wire(), "a1 NOOP\r\na2 NOOP\r\n");
    t.server("a1 OK\r\na2 OK\r\n");
    assert_eq!(t.wire(), "a3 SELECT INBOX\r\n");
    t.server("a3 OK\r\n");
    assert_eq!(t.wire(), "a4 NOOP\r\n");
}

#[test]
fn pipeline_keeps_to_its_window() {
    let mut cfg = config(Source::Stdin);
    cfg.pipeline = true;
    let mut t = T::new(cfg);
    t.server(GREETING);
    t.input(&"NOOP\n".repeat(pipeline::WINDOW + 10));
    let sent = t.wire().matches("NOOP").count();
    assert_eq!(sent, pipeline::WINDOW);
}

#[test]
fn logout_after_the_last_completion_and_the_exit_code() {
    let mut t = T::session(Source::Stdin);
    t.input("NOOP\n");
    t.eof();
    assert_eq!(t.wire(), "a1 NOOP\r\n");
    t.server("a1 NO nope\r\n");
    assert_eq!(t.wire(), "a2 LOGOUT\r\n");
    t.server("* BYE\r\na2 OK\r\n");
    assert_eq!(t.exit(), error::COMMAND_FAILED);
}

#[test]
fn interactive_end_of_input_logs_out_at_once() {
    let mut t = T::session(Source::Interactive);
    t.input("NOOP\r\n");
    t.eof();
    assert_eq!(t.wire(), "a1 NOOP\r\na2 LOGOUT\r\n");
    t.server("a1 NO x\r\na2 OK\r\n");
    assert_eq!(t.exit(), 0, "a NO at the prompt is not a failed run");
}

#[test]
fn input_after_logout_is_warned_about() {
    let mut t = T::session(Source::Stdin);
    t.input("LOGOUT\nNOOP\n");
    t.server("a1 OK\r\n");
    assert!(
        t.notices()
            .iter()
            .any(|n| n == "warning: input after LOGOUT was not sent")
    );
}

#[test]
fn the_server_closing_without_logout_is_lost() {
    let mut t = T::session(Source::Stdin);
    t.input("NOOP\n");
    t.server("* BYE going away\r\n");
    t.core.server_closed(t.now);
    t.drain();
    assert_eq!(
        t.failure(),
        (
            Class::Lost,
            "server closed the connection: * BYE going away".into()
        )
    );
}

#[test]
fn a_command_line_without_end_is_bounded() {
    let mut t = T::session(Source::Stdin);
    let chunk = "x".repeat(64 * 1024);
    for _ in 0..(MAX_INPUT_LINE / chunk.len() + 2) {
        if t.end().is_some() {
            break;
        }
        t.input(&chunk);
    }
    assert_eq!(t.failure().0, Class::Usage);
    assert_eq!(t.wire(), "");
}

#[test]
fn a_line_arriving_in_pieces_is_one_command() {
    let mut t = T::session(Source::Stdin);
    t.input("NO");
    t.input("O");
    assert_eq!(t.wire(), "");
    t.input("P\r\n");
    assert_eq!(t.wire(), "a1 NOOP\r\n");
}

#[test]
fn a_typed_tag_is_kept() {
    let mut t = T::session(Source::Stdin);
    t.input(". LIST \"\" *\n");
    assert_eq!(t.wire(), ". LIST \"\" *\r\n");
}

// ----- timeouts, \sleep and \idle ----------------------------------------

#[test]
fn a_script_times_out_waiting_for_a_response() {
    let mut t = T::session(Source::Stdin);
    t.input("NOOP\n");
    t.advance(10.5);
    assert_eq!(
        t.failure(),
        (
            Class::Lost,
            "timed out after 10s waiting for the server's response to a1 NOOP".into()
        )
    );
}

#[test]
fn the_prompt_never_times_out() {
    let mut t = T::session(Source::Interactive);
    t.input("NOOP\r\n");
    assert_eq!(t.core.deadline(), None);
}

#[test]
fn server_bytes_restart_the_response_timeout() {
    let mut t = T::session(Source::Stdin);
    t.input("FETCH 1:* BODY[]\n");
    t.advance(8.0);
    t.server("* 1 FETCH (FLAGS ())\r\n");
    t.advance(8.0);
    assert!(t.end().is_none());
}

#[test]
fn sleep_holds_the_next_command() {
    let mut t = T::session(Source::Stdin);
    t.input("\\sleep 2\nNOOP\n");
    assert_eq!(t.wire(), "");
    assert_eq!(t.core.deadline(), Some(t.now + Duration::from_secs(2)));
    t.advance(2.0);
    assert_eq!(t.wire(), "a1 NOOP\r\n");
}

#[test]
fn meta_idle_with_seconds_ends_with_done() {
    let mut t = T::session(Source::Stdin);
    t.input("\\idle 5\nNOOP\n");
    assert_eq!(t.wire(), "a1 IDLE\r\n");
    t.server("+ idling\r\n");
    t.advance(4.0);
    assert_eq!(t.wire(), "");
    t.advance(1.0);
    assert_eq!(t.wire(), "DONE\r\n");
    t.server("a1 OK\r\n");
    assert_eq!(t.wire(), "a2 NOOP\r\n");
}

#[test]
fn meta_idle_is_renewed_before_the_server_drops_it() {
    let mut cfg = config(Source::Stdin);
    cfg.renew_idle = Duration::from_secs(60);
    let mut t = T::new(cfg);
    t.server(GREETING);
    t.input("\\idle 150\n");
    t.server("+ idling\r\n");
    t.advance(60.0);
    assert_eq!(t.wire(), "a1 IDLE\r\nDONE\r\n");
    t.server("a1 OK\r\n");
    assert_eq!(t.wire(), "a2 IDLE\r\n");
}

#[test]
fn meta_idle_in_commands_mode_watches_stdin() {
    let mut t = T::session(Source::Commands);
    t.input("\\idle\n");
    assert!(t.has(|a| matches!(a, Action::WatchStdin)));
    t.server("+ idling\r\n");
    t.wire();
    t.core.input(Input::StdinLine, t.now);
    t.drain();
    assert_eq!(t.wire(), "DONE\r\n");
}

#[test]
fn login_in_a_script_is_an_error() {
    let mut t = T::session(Source::Stdin);
    t.input("\\login alice\n");
    assert_eq!(t.failure().0, Class::Usage);
}

// ----- signals -------------------------------------------------------------

#[test]
fn a_signal_before_the_session_ends_without_sending() {
    let mut t = T::new(config(Source::Stdin));
    t.signal(Signal::Interrupt, false);
    assert_eq!(t.wire(), "");
    assert_eq!(t.exit(), 130);
}

#[test]
fn a_signal_between_commands_logs_out() {
    let mut t = T::session(Source::Stdin);
    t.input("NOOP\n");
    t.server("a1 OK\r\n");
    t.wire();
    t.signal(Signal::Interrupt, false);
    assert_eq!(t.wire(), "a2 LOGOUT\r\n");
    t.server("* BYE\r\na2 OK\r\n");
    assert_eq!(
        t.end(),
        Some(Ok((
            130,
            Some(format!(
                "interrupted by {}: logged out",
                Signal::Interrupt.name()
            ))
        )))
    );
}

#[test]
fn a_signal_waiting_for_a_response_logs_out_too() {
    let mut t = T::session(Source::Stdin);
    t.input("NOOP\n");
    t.wire();
    t.signal(Signal::Terminate, false);
    assert_eq!(t.wire(), "a2 LOGOUT\r\n");
    t.advance(1.0);
    assert_eq!(
        t.end(),
        Some(Ok((
            143,
            Some(format!(
                "interrupted by {}: sent LOGOUT; no answer within 1s",
                Signal::Terminate.name()
            ))
        )))
    );
}

#[test]
fn a_signal_inside_literal_data_sends_nothing_more() {
    let mut t = T::session(Source::Stdin);
    t.input("APPEND INBOX {10}\nhello");
    t.server("+ go\r\n");
    t.wire();
    t.signal(Signal::Interrupt, false);
    assert_eq!(t.wire(), "");
    assert_eq!(
        t.end().unwrap().unwrap().1.unwrap(),
        format!(
            "interrupted by {}: in the middle of a command; closed the connection without LOGOUT",
            Signal::Interrupt.name()
        )
    );
}

#[test]
fn a_signal_while_files_are_opened_drops_the_line_and_logs_out() {
    let mut t = T::session(Source::Commands);
    t.input("APPEND INBOX {@/some/fifo}\n");
    assert!(t.has(|a| matches!(a, Action::OpenFiles { .. })));
    t.signal(Signal::Interrupt, false);
    assert_eq!(t.wire(), "a1 LOGOUT\r\n");
    // The files opened late change nothing.
    t.core.files_opened(Ok(Vec::new()), t.now);
    t.drain();
    assert_eq!(t.wire(), "");
    t.server("a1 OK\r\n");
    assert_eq!(t.exit(), 130);
}

#[test]
fn a_signal_during_a_torn_write_sends_nothing_more() {
    let mut t = T::session(Source::Stdin);
    t.signal(Signal::Interrupt, true);
    assert_eq!(t.wire(), "");
    assert_eq!(t.exit(), 130);
}

#[test]
fn a_signal_during_idle_sends_done_then_logout() {
    let mut t = T::session(Source::Stdin);
    t.input("IDLE\n");
    t.server("+ idling\r\n");
    t.wire();
    t.signal(Signal::Interrupt, false);
    assert_eq!(t.wire(), "DONE\r\na2 LOGOUT\r\n");
}

#[test]
fn a_second_signal_ends_the_wait() {
    let mut t = T::session(Source::Stdin);
    t.signal(Signal::Interrupt, false);
    t.signal(Signal::Interrupt, false);
    assert_eq!(
        t.end().unwrap().unwrap().1.unwrap(),
        format!(
            "interrupted by {}: sent LOGOUT; a second signal ended the wait",
            Signal::Interrupt.name()
        )
    );
}

#[test]
fn a_signal_during_starttls_setup_sends_nothing_more() {
    let mut t = starttls();
    t.server(GREETING);
    t.wire();
    t.signal(Signal::Interrupt, false);
    assert_eq!(t.wire(), "");
    assert_eq!(t.exit(), 130);
}

// ----- -u login ------------------------------------------------------------

fn login(oauth2: bool) -> Config {
    let mut cfg = config(Source::Stdin);
    cfg.login = Some(AutoLogin {
        user: "alice".into(),
        secret: Secret::new("wonder land".into()),
        oauth2,
        mech: None,
        nonce: "rOprNGfwEbeRWgbNEkqO".into(),
    });
    cfg
}

#[test]
fn u_logs_in_with_authenticate_plain_and_sasl_ir() {
    let mut t = T::new(login(false));
    t.input("NOOP\n");
    t.server(GREETING);
    let (bytes, log) = t.sends[0].clone();
    assert!(bytes.starts_with(b"a1 AUTHENTICATE PLAIN "));
    assert_eq!(log, Log::Line(Some("a1 AUTHENTICATE PLAIN ****".into())));
    t.wire();
    t.server("a1 OK logged in\r\n");
    assert_eq!(t.wire(), "a2 NOOP\r\n");
}

#[test]
fn u_without_sasl_ir_sends_the_response_after_the_plus() {
    let mut t = T::new(login(false));
    t.server("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n");
    assert_eq!(t.wire(), "a1 AUTHENTICATE PLAIN\r\n");
    t.server("+ \r\n");
    let (_, log) = t.sends.last().unwrap().clone();
    assert_eq!(log, Log::Line(Some("****".into())));
}

#[test]
fn u_with_login_when_plain_is_not_offered() {
    let mut t = T::new(login(false));
    t.server("* OK [CAPABILITY IMAP4rev1] hi\r\n");
    assert_eq!(t.wire(), "a1 LOGIN alice \"wonder land\"\r\n");
    assert_eq!(t.sends[0].1, Log::Line(Some("a1 LOGIN alice ****".into())));
}

#[test]
fn u_asks_for_capabilities_when_the_greeting_has_none() {
    let mut t = T::new(login(false));
    t.server("* OK hi\r\n");
    assert_eq!(t.wire(), "a1 CAPABILITY\r\n");
    t.server("* CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR\r\na1 OK\r\n");
    assert!(t.wire().starts_with("a2 AUTHENTICATE PLAIN "));
}

#[test]
fn u_refused_in_a_script_ends_the_run_before_the_script() {
    let mut t = T::new(login(false));
    t.input("NOOP\n");
    t.server(GREETING);
    t.wire();
    t.server("a1 NO [AUTHENTICATIONFAILED] bad\r\n");
    assert_eq!(t.wire(), "");
    assert_eq!(t.failure().0, Class::Refused);
}

#[test]
fn u_refused_at_the_prompt_goes_on() {
    let mut cfg = login(false);
    cfg.source = Source::Interactive;
    let mut t = T::new(cfg);
    t.server(GREETING);
    t.server("a1 NO bad\r\n");
    assert!(
        t.notices()
            .iter()
            .any(|n| n.ends_with("\\login USER tries again"))
    );
    assert!(!t.prompts().is_empty());
}

#[test]
fn u_plain_after_cancel_more_pluses_end_the_run() {
    let mut t = T::new(login(false));
    t.server("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n");
    t.server("+ \r\n");
    t.server("+ \r\n");
    assert!(t.wire().ends_with("*\r\n"));
    for _ in 0..2000 {
        t.server("+ \r\n");
    }
    assert_eq!(t.wire(), "", "no answer after the cancel");
    assert_eq!(t.failure().0, Class::Lost);
}

#[test]
fn u_refuses_plaintext_to_another_host() {
    let mut cfg = login(false);
    cfg.plaintext_refusal = Some("refusing to send a password".into());
    let mut t = T::new(cfg);
    t.server(GREETING);
    assert_eq!(t.wire(), "");
    assert_eq!(
        t.failure(),
        (Class::Usage, "refusing to send a password".into())
    );
}

#[test]
fn u_is_not_used_after_preauth() {
    let mut t = T::new(login(false));
    t.server("* PREAUTH hi\r\n");
    assert_eq!(t.wire(), "");
    assert!(t.notices()[0].contains("PREAUTH"));
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn sasl_login(user: &str, secret: &str, mech: Option<crate::core::sasl::Mechanism>) -> Config {
    let mut cfg = config(Source::Stdin);
    cfg.login = Some(AutoLogin {
        user: user.into(),
        secret: Secret::new(secret.into()),
        oauth2: false,
        mech,
        nonce: "rOprNGfwEbeRWgbNEkqO".into(),
    });
    cfg
}

const SCRAM_GREETING: &str =
    "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN AUTH=SCRAM-SHA-1 AUTH=SCRAM-SHA-256] hi\r\n";
/// RFC 7677's example exchange (user "user", password "pencil").
const SCRAM_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const SCRAM_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SCRAM_SIGNATURE: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

#[test]
fn u_prefers_scram_sha_256_and_checks_the_server_signature() {
    let mut cfg = sasl_login("user", "pencil", None);
    cfg.verbose = true;
    let mut t = T::new(cfg);
    t.input("NOOP\n");
    t.server(SCRAM_GREETING);
    assert_eq!(
        t.wire(),
        format!(
            "a1 AUTHENTICATE SCRAM-SHA-256 {}\r\n",
            b64("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        )
    );
    assert_eq!(
        t.sends[0].1,
        Log::Line(Some("a1 AUTHENTICATE SCRAM-SHA-256 ****".into()))
    );
    t.server(&format!("+ {}\r\n", b64(SCRAM_FIRST)));
    assert_eq!(t.wire(), format!("{}\r\n", b64(SCRAM_FINAL)));
    assert_eq!(t.sends[1].1, Log::Line(Some("****".into())));
    t.server(&format!("+ {}\r\n", b64(SCRAM_SIGNATURE)));
    assert_eq!(t.wire(), "\r\n");
    t.server("a1 OK logged in\r\n");
    assert_eq!(t.wire(), "a2 NOOP\r\n");
    let said: Vec<String> = t
        .other
        .iter()
        .filter_map(|a| match a {
            Action::Say(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert!(
        said.iter()
            .any(|s| s == "imaptalk: logging in as user (AUTHENTICATE SCRAM-SHA-256 with SASL-IR)"),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|s| s.contains("SCRAM-SHA-256: the server proved that it knows the password")),
        "{said:?}"
    );
}

#[test]
fn u_scram_with_a_wrong_server_signature_is_refused() {
    let mut t = T::new(sasl_login("user", "pencil", None));
    t.input("NOOP\n");
    t.server(SCRAM_GREETING);
    t.server(&format!("+ {}\r\n", b64(SCRAM_FIRST)));
    t.wire();
    t.server(&format!(
        "+ {}\r\n",
        b64("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    ));
    assert_eq!(t.wire(), "", "nothing more goes to an impostor");
    let (class, msg) = t.failure();
    assert_eq!(class, Class::Refused);
    assert!(
        msg.starts_with("login as user failed: the server's SCRAM signature is wrong"),
        "{msg}"
    );
}

#[test]
fn u_scram_ok_without_a_server_signature_is_refused() {
    let mut t = T::new(sasl_login("user", "pencil", None));
    t.input("NOOP\n");
    t.server(SCRAM_GREETING);
    t.server(&format!("+ {}\r\n", b64(SCRAM_FIRST)));
    t.wire();
    t.server("a1 OK logged in\r\n");
    assert_eq!(t.wire(), "");
    let (class, msg) = t.failure();
    assert_eq!(class, Class::Refused);
    assert!(
        msg.contains("without proving that it knows the password"),
        "{msg}"
    );
}

#[test]
fn sasl_scram_sha_1_and_the_other_mechanisms_when_named() {
    use crate::core::sasl::Mechanism;
    let mut t = T::new(sasl_login("user", "pencil", Some(Mechanism::ScramSha1)));
    t.server(SCRAM_GREETING);
    assert!(t.wire().starts_with("a1 AUTHENTICATE SCRAM-SHA-1 "));
    let mut t = T::new(sasl_login("user", "pencil", Some(Mechanism::Plain)));
    t.server(SCRAM_GREETING);
    assert!(t.wire().starts_with("a1 AUTHENTICATE PLAIN "));
    let mut t = T::new(sasl_login("user", "pencil", Some(Mechanism::External)));
    t.server(SCRAM_GREETING);
    assert_eq!(t.wire(), "");
    let (class, msg) = t.failure();
    assert_eq!(class, Class::Refused);
    assert!(msg.contains("does not offer AUTH=EXTERNAL"), "{msg}");
}

#[test]
fn sasl_external_sends_the_authorization_identity_or_nothing() {
    use crate::core::sasl::Mechanism;
    let ext = "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=EXTERNAL] hi\r\n";
    let mut t = T::new(sasl_login("", "", Some(Mechanism::External)));
    t.input("NOOP\n");
    t.server(ext);
    // RFC 4959: "=" is the empty initial response.
    assert_eq!(t.wire(), "a1 AUTHENTICATE EXTERNAL =\r\n");
    t.server("a1 OK logged in\r\n");
    assert_eq!(t.wire(), "a2 NOOP\r\n");

    let mut t = T::new(sasl_login("alice", "", Some(Mechanism::External)));
    t.server(ext);
    assert_eq!(
        t.wire(),
        format!("a1 AUTHENTICATE EXTERNAL {}\r\n", b64("alice"))
    );

    // Without SASL-IR the (empty) response follows the +.
    let mut t = T::new(sasl_login("", "", Some(Mechanism::External)));
    t.server("* OK [CAPABILITY IMAP4rev1 AUTH=EXTERNAL] hi\r\n");
    assert_eq!(t.wire(), "a1 AUTHENTICATE EXTERNAL\r\n");
    t.server("+ \r\n");
    assert_eq!(t.wire(), "\r\n");
    t.server("a1 NO [AUTHENTICATIONFAILED] no certificate\r\n");
    let (class, msg) = t.failure();
    assert_eq!(class, Class::Refused);
    assert_eq!(
        msg,
        "login as the user of the client certificate failed: a1 NO [AUTHENTICATIONFAILED] no certificate"
    );
}

#[test]
fn sasl_anonymous_sends_its_trace() {
    use crate::core::sasl::Mechanism;
    let mut t = T::new(sasl_login("", "", Some(Mechanism::Anonymous)));
    t.input("NOOP\n");
    t.server("* OK [CAPABILITY IMAP4rev1 AUTH=ANONYMOUS] hi\r\n");
    assert_eq!(t.wire(), "a1 AUTHENTICATE ANONYMOUS\r\n");
    t.server("+ \r\n");
    assert_eq!(t.wire(), "\r\n");
    t.server("+ \r\n");
    assert_eq!(t.wire(), "*\r\n", "one response, then cancel");
    let mut t = T::new(sasl_login("me@example.com", "", Some(Mechanism::Anonymous)));
    t.server("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=ANONYMOUS] hi\r\n");
    assert_eq!(
        t.wire(),
        format!("a1 AUTHENTICATE ANONYMOUS {}\r\n", b64("me@example.com"))
    );
}

#[test]
fn a_typed_login_over_plaintext_to_another_machine_is_warned_about_once() {
    let mut cfg = config(Source::Stdin);
    cfg.local = false;
    let mut t = T::new(cfg);
    t.server(GREETING);
    t.input("LOGIN alice secret\n");
    let warned: Vec<String> = t
        .notices()
        .into_iter()
        .filter(|n| n.starts_with("warning: this LOGIN sends the password unencrypted"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains("imap.example.com"), "{warned:?}");
    // Before it is sent.
    let notice_at = t
        .other
        .iter()
        .position(|a| matches!(a, Action::Notice(n) if n.starts_with("warning: this LOGIN")));
    assert!(notice_at.is_some());
    assert_eq!(t.wire(), "a1 LOGIN alice secret\r\n");
    t.server("a1 NO bad\r\n");
    t.input("LOGIN alice secret2\n");
    let again = t
        .notices()
        .into_iter()
        .filter(|n| n.starts_with("warning: this LOGIN"))
        .count();
    assert_eq!(again, 1, "once per session");

    // This machine, or TLS: no warning.
    let mut t = T::session(Source::Stdin);
    t.input("LOGIN alice secret\n");
    assert!(
        t.notices()
            .iter()
            .all(|n| !n.starts_with("warning: this LOGIN"))
    );
    let mut cfg = config(Source::Stdin);
    cfg.local = false;
    let mut t = T::new(cfg);
    t.core = Core::new(t.core.cfg.clone(), true, false, t.now);
    t.server(GREETING);
    t.input("LOGIN alice secret\n");
    assert!(
        t.notices()
            .iter()
            .all(|n| !n.starts_with("warning: this LOGIN"))
    );
}

#[test]
fn v_lists_the_logins_offered_before_and_after_tls() {
    let mut cfg = config(Source::Stdin);
    cfg.verbose = true;
    cfg.security = Security::StartTls;
    let mut t = T::new(cfg);
    t.server("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n");
    assert_eq!(t.wire(), "a1 STARTTLS\r\n");
    t.server("a1 OK go\r\n");
    t.core.tls_up(Some("TLS 1.3"), false, t.now);
    t.drain();
    assert_eq!(t.wire(), "a2 CAPABILITY\r\n");
    t.server("* CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=SCRAM-SHA-256\r\na2 OK\r\n");
    let said: Vec<String> = t
        .other
        .iter()
        .filter_map(|a| match a {
            Action::Say(s) if s.contains("logins offered") => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        said,
        [
            "imaptalk: logins offered before TLS: LOGINDISABLED (no LOGIN)",
            "imaptalk: logins offered over TLS: LOGIN, AUTH=PLAIN, AUTH=SCRAM-SHA-256"
        ]
    );
}

// ----- COMPRESS --------------------------------------------------------------

#[test]
fn compress_is_a_barrier_and_starts_deflate() {
    let mut t = T::session(Source::Interactive);
    t.input("COMPRESS DEFLATE\r\nNOOP\r\n");
    assert_eq!(t.wire(), "a1 COMPRESS DEFLATE\r\n");
    t.server("a1 OK deflate\r\n");
    assert!(t.has(|a| matches!(a, Action::StartDeflate)));
    assert_eq!(t.wire(), "a2 NOOP\r\n");
}

#[test]
fn auto_compress_after_preauth() {
    let mut cfg = config(Source::Stdin);
    cfg.compress = true;
    let mut t = T::new(cfg);
    t.server("* PREAUTH [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] hi\r\n");
    t.input("NOOP\n");
    assert_eq!(t.wire(), "a1 COMPRESS DEFLATE\r\n");
    t.server("a1 OK\r\n");
    assert!(t.has(|a| matches!(a, Action::StartDeflate)));
    assert_eq!(t.wire(), "a2 NOOP\r\n");
}

// ----- the prompt --------------------------------------------------------------

#[test]
fn the_prompt_follows_confirmed_state() {
    let mut t = T::session(Source::Interactive);
    t.input("LOGIN alice secret\r\n");
    let before = t.prompts().len();
    t.server("a1 OK\r\n");
    assert_eq!(
        t.prompts().len(),
        before + 1,
        "the prompt waited for the completion"
    );
    t.input("SELECT INBOX\r\n");
    t.server("a2 OK\r\n");
    assert_eq!(
        t.prompts().last(),
        Some(&PromptView::Command {
            tag: "a3".into(),
            tls: false,
            user: Some("alice".into()),
            mailbox: Some("INBOX".into())
        })
    );
}

// ----- the prompt: type-ahead, Ctrl-C, Ctrl-D -----------------------------------

fn interrupt(t: &mut T) {
    t.core.input(Input::Interrupt, t.now);
    t.drain();
}

fn sent_shown(t: &T) -> Vec<String> {
    t.other
        .iter()
        .filter_map(|a| match a {
            Action::Sent(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn history(t: &T) -> Vec<String> {
    t.other
        .iter()
        .filter_map(|a| match a {
            Action::History(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn waiting(after: &str) -> PromptView {
    PromptView::Waiting {
        after: after.into(),
        tls: false,
        user: None,
        mailbox: None,
    }
}

fn rendered(source: Source) -> T {
    let mut cfg = config(source);
    cfg.render = true;
    let mut t = T::new(cfg);
    t.server(GREETING);
    t
}

#[test]
fn lines_typed_while_a_login_runs_wait_for_it_and_go_in_order() {
    let mut t = rendered(Source::Interactive);
    t.input("LOGIN alice secret\r\n");
    assert_eq!(t.wire(), "a1 LOGIN alice secret\r\n");
    assert_eq!(t.prompts().last(), Some(&waiting("a1")));
    assert!(sent_shown(&t).is_empty(), "the prompt showed it as typed");
    t.input("SELECT INBOX\r\n");
    t.input("FETCH 1 FLAGS\r\n");
    assert_eq!(t.wire(), "", "queued until LOGIN is answered");
    assert_eq!(t.prompts().last(), Some(&waiting("a1")));
    t.server("a1 OK\r\n");
    // SELECT decides the prompt too: FETCH waits for it in turn.
    assert_eq!(t.wire(), "a2 SELECT INBOX\r\n");
    t.server("a2 OK\r\n");
    assert_eq!(t.wire(), "a3 FETCH 1 FLAGS\r\n");
    assert_eq!(sent_shown(&t), ["a2 SELECT INBOX", "a3 FETCH 1 FLAGS"]);
    assert_eq!(
        t.prompts().last(),
        Some(&PromptView::Command {
            tag: "a4".into(),
            tls: false,
            user: Some("alice".into()),
            mailbox: Some("INBOX".into())
        })
    );
}

#[test]
fn a_line_typed_under_a_waiting_prompt_is_shown_even_if_the_wait_ended() {
    let mut t = rendered(Source::Interactive);
    t.input("NOOP\r\n");
    t.core
        .input(Input::Queued(b"CAPABILITY\r\n".to_vec()), t.now);
    t.drain();
    assert_eq!(t.wire(), "a1 NOOP\r\na2 CAPABILITY\r\n");
    assert_eq!(sent_shown(&t), ["a2 CAPABILITY"]);
}

#[test]
fn the_prompt_shows_a_mailbox_in_modified_utf7_decoded() {
    let mut t = T::session(Source::Interactive);
    t.input("SELECT &ZeVnLIqe-\r\n");
    t.server("a1 OK\r\n");
    assert!(matches!(
        t.prompts().last(),
        Some(PromptView::Command { mailbox: Some(m), .. }) if m == "日本語"
    ));
    // Not modified UTF-7 after all: shown as it is.
    t.input("SELECT &bad\r\n");
    t.server("a2 OK\r\n");
    assert!(matches!(
        t.prompts().last(),
        Some(PromptView::Command { mailbox: Some(m), .. }) if m == "&bad"
    ));
}

#[test]
fn every_input_gets_a_prompt_and_a_change_sends_one() {
    let mut t = T::session(Source::Interactive);
    let before = t.prompts().len();
    t.input("\r\n");
    assert_eq!(t.prompts().len(), before + 1, "an answer to the line");
    t.input("NOOP\r\n");
    assert_eq!(t.prompts().len(), before + 2);
    t.server("a1 OK\r\n");
    assert_eq!(t.prompts().len(), before + 2, "nothing changed");
    t.input("IDLE\r\n");
    assert_eq!(t.prompts().last(), Some(&waiting("a2")));
    t.server("+ idling\r\n");
    assert_eq!(t.prompts().last(), Some(&PromptView::Continuation));
}

#[test]
fn a_line_typed_before_the_plus_of_authenticate_is_its_answer() {
    let mut t = T::session(Source::Interactive);
    t.input("AUTHENTICATE PLAIN\r\n");
    t.input("AGFsaWNlAHNlY3JldA==\r\n");
    assert_eq!(t.wire(), "a1 AUTHENTICATE PLAIN\r\n");
    t.server("+ \r\n");
    assert_eq!(t.wire(), "AGFsaWNlAHNlY3JldA==\r\n");
    assert_eq!(history(&t), Vec::<String>::new());
}

#[test]
fn history_gets_commands_but_never_secrets_answers_or_literal_data() {
    let mut t = T::session(Source::Interactive);
    t.input("NOOP\r\n");
    t.input("x1 login alice pw\r\n");
    t.server("x1 OK\r\n");
    t.input("APPEND INBOX {7}\r\n");
    t.server("+ go\r\n");
    t.input("hello\r\n");
    t.input("\r\n");
    t.server("a2 OK\r\n");
    t.input("IDLE\r\n");
    t.server("+ idling\r\n");
    t.input("DONE\r\n");
    t.server("a3 OK\r\n");
    t.input("\\help FETCH\r\n");
    assert_eq!(
        history(&t),
        ["NOOP", "APPEND INBOX {7}", "IDLE", "\\help FETCH"]
    );
}

#[test]
fn ctrl_c_stops_waiting_drops_the_queue_and_a_second_one_ends_the_session() {
    let mut t = T::session(Source::Interactive);
    t.input("SELECT INBOX\r\n");
    t.input("NOOP\r\n");
    t.wire();
    interrupt(&mut t);
    assert_eq!(
        t.notices().last().unwrap(),
        "stopped waiting: a1 SELECT still outstanding (its answer is shown when it arrives); 1 line typed ahead not sent; Ctrl-C again within 3s or Ctrl-D ends the session"
    );
    assert!(matches!(
        t.prompts().last(),
        Some(PromptView::Command { tag, .. }) if tag == "a2"
    ));
    t.advance(1.0);
    interrupt(&mut t);
    assert_eq!(t.wire(), "a2 LOGOUT\r\n", "between commands: LOGOUT");
    assert!(t.end().is_none());
    t.advance(1.1);
    assert_eq!(
        t.end(),
        Some(Ok((
            error::INTERRUPTED,
            Some(format!(
                "interrupted by {}: sent LOGOUT; no answer within 1s",
                Signal::Interrupt.name()
            ))
        )))
    );
}

#[test]
fn after_ctrl_c_the_prompt_is_free_and_typing_means_the_next_ctrl_c_is_a_first() {
    let mut t = T::session(Source::Interactive);
    t.input("XSLOW\r\n");
    interrupt(&mut t);
    t.wire();
    t.input("NOOP\r\n");
    assert_eq!(t.wire(), "a2 NOOP\r\n", "sent at once");
    interrupt(&mut t);
    assert!(t.end().is_none());
    assert!(
        t.notices()
            .last()
            .unwrap()
            .starts_with("stopped waiting: a1 XSLOW, a2 NOOP still outstanding")
    );
}

#[test]
fn a_second_ctrl_c_long_after_the_first_stops_waiting_again() {
    let mut t = T::session(Source::Interactive);
    t.input("XSLOW\r\n");
    interrupt(&mut t);
    t.advance(AGAIN.as_secs_f64() + 0.1);
    interrupt(&mut t);
    assert!(t.end().is_none());
    assert_eq!(t.notices().len(), 2);
    assert!(t.notices()[1].starts_with("stopped waiting: a1 XSLOW still outstanding"));
}

#[test]
fn ctrl_c_at_an_idle_prompt_does_nothing() {
    let mut t = T::session(Source::Interactive);
    interrupt(&mut t);
    interrupt(&mut t);
    assert!(t.end().is_none());
    assert!(t.notices().is_empty());
    assert_eq!(t.wire(), "");
}

#[test]
fn ctrl_d_while_a_command_hangs_logs_out_and_ends_within_the_grace() {
    let mut t = T::session(Source::Interactive);
    t.input("XSLOW\r\n");
    t.wire();
    t.eof();
    assert_eq!(t.wire(), "a2 LOGOUT\r\n");
    t.advance(0.9);
    assert!(t.end().is_none());
    t.advance(0.2);
    assert_eq!(
        t.end(),
        Some(Ok((0, Some("sent LOGOUT; no answer within 1s".into()))))
    );
}

#[test]
fn ctrl_d_drops_what_is_queued() {
    let mut t = T::session(Source::Interactive);
    t.input("LOGIN alice pw\r\n");
    t.input("SELECT INBOX\r\n");
    t.wire();
    t.eof();
    assert_eq!(t.wire(), "a2 LOGOUT\r\n");
    assert!(
        t.notices()
            .contains(&"1 line typed ahead not sent".to_string())
    );
    t.server("a1 OK\r\n* BYE\r\na2 OK\r\n");
    assert_eq!(t.end(), Some(Ok((0, None))));
}

#[test]
fn ctrl_c_at_a_literal_says_what_is_owed_and_a_second_disconnects() {
    let mut t = T::session(Source::Interactive);
    t.input("APPEND INBOX {10}\r\n");
    t.server("+ go\r\n");
    t.input("abc\r\n");
    t.wire();
    interrupt(&mut t);
    assert_eq!(
        t.notices().last().unwrap(),
        "a1 APPEND still needs 5 bytes of literal data; once announced they cannot be taken back: type them, or press Ctrl-C again within 3s to disconnect"
    );
    interrupt(&mut t);
    assert_eq!(t.wire(), "", "nothing the user did not type");
    assert_eq!(
        t.end(),
        Some(Ok((
            error::INTERRUPTED,
            Some(format!(
                "interrupted by {}: in the middle of a command; closed the connection without LOGOUT",
                Signal::Interrupt.name()
            ))
        )))
    );
}

#[test]
fn ctrl_d_at_a_literal_closes_without_a_usage_error() {
    let mut t = T::session(Source::Interactive);
    t.input("APPEND INBOX {10}\r\n");
    t.wire();
    t.eof();
    assert_eq!(t.wire(), "");
    assert!(matches!(t.end(), Some(Ok((0, Some(_))))));
}

#[test]
fn ctrl_c_cancels_an_authenticate_waiting_for_its_answer() {
    let mut t = T::session(Source::Interactive);
    t.input("AUTHENTICATE PLAIN\r\n");
    t.server("+ \r\n");
    t.wire();
    interrupt(&mut t);
    assert_eq!(t.wire(), "*\r\n");
    t.server("a1 BAD cancelled\r\n");
    assert!(matches!(
        t.prompts().last(),
        Some(PromptView::Command { tag, .. }) if tag == "a2"
    ));
}

#[test]
fn ctrl_c_or_ctrl_d_before_the_session_ends_the_run_at_once() {
    let mut t = T::new(config(Source::Interactive));
    interrupt(&mut t);
    assert_eq!(t.end(), Some(Ok((error::INTERRUPTED, None))));
    let mut t = T::new(config(Source::Interactive));
    t.eof();
    assert_eq!(t.end(), Some(Ok((0, None))));
    assert_eq!(t.wire(), "");
}

#[test]
fn a_bad_meta_command_at_the_prompt_is_a_notice_not_the_end() {
    let mut t = T::session(Source::Interactive);
    t.input("\\frobnicate\r\n");
    assert!(t.end().is_none());
    assert!(t.notices()[0].contains("\\frobnicate"));
    t.input("\\quit\r\n");
    assert_eq!(t.wire(), "a1 LOGOUT\r\n");
}

#[test]
fn lines_sent_by_imaptalk_or_a_script_are_shown_on_a_terminal() {
    let mut t = rendered(Source::Stdin);
    t.input("NOOP\n");
    t.server("a1 OK\r\n");
    t.eof();
    assert_eq!(sent_shown(&t), ["a1 NOOP", "a2 LOGOUT"]);
    // Not on a pipe, and not twice with --echo.
    let mut t = T::session(Source::Stdin);
    t.input("NOOP\n");
    assert!(sent_shown(&t).is_empty());
}

#[test]
fn a_typed_line_longer_than_the_literal_is_refused_and_nothing_of_it_sent() {
    let mut t = T::session(Source::Interactive);
    t.input("APPEND INBOX {5}\r\n");
    t.server("+ go\r\n");
    t.wire();
    t.input("hello world\r\n");
    assert_eq!(t.wire(), "");
    assert_eq!(
        t.notices().last().unwrap(),
        "a1 APPEND: this line was not sent: the literal still expects 5 bytes and the line has 11 bytes (13 with its line end); type 5 bytes, or lines that add up to 5 counting 2 for each line end, or Ctrl-C"
    );
    assert_eq!(t.prompts().last(), Some(&PromptView::Literal(5)));
    // A line whose line end would be split is refused too.
    t.input("abcd\r\n");
    assert_eq!(t.wire(), "");
    t.input("hello\r\n");
    assert_eq!(t.wire(), "hello\r\n");
    t.server("a1 OK\r\n");
    assert!(matches!(
        t.prompts().last(),
        Some(PromptView::Command { .. })
    ));
}

#[test]
fn typed_literal_lines_before_the_plus_are_checked_as_they_come() {
    let mut t = T::session(Source::Interactive);
    t.input("APPEND INBOX {7}\r\n");
    t.wire();
    t.input("abc\r\n");
    assert_eq!(t.prompts().last(), Some(&PromptView::Literal(2)));
    t.input("too long\r\n");
    assert!(
        t.notices()
            .last()
            .unwrap()
            .contains("still expects 2 bytes")
    );
    // Exactly what is left: its line end ends the command line, and what
    // is typed next is the next command, queued.
    t.input("ab\r\n");
    assert_eq!(t.prompts().last(), Some(&waiting("a1")));
    t.input("NOOP\r\n");
    assert_eq!(t.wire(), "", "all waits for the +");
    t.server("+ go\r\n");
    assert_eq!(t.wire(), "abc\r\nab\r\na2 NOOP\r\n");
}

#[test]
fn a_queued_literal_line_is_checked_when_its_turn_comes() {
    let mut t = T::session(Source::Interactive);
    t.input("SELECT INBOX\r\n");
    t.input("APPEND INBOX {5}\r\n");
    t.input("hello world\r\n");
    t.input("hello\r\n");
    t.server("a1 OK\r\n");
    assert_eq!(t.wire(), "a1 SELECT INBOX\r\na2 APPEND INBOX {5}\r\n");
    t.server("+ go\r\n");
    assert_eq!(t.wire(), "hello\r\n");
    assert!(
        t.notices()
            .iter()
            .any(|n| n.contains("the line has 11 bytes"))
    );
}

// ----- properties ------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Input(&'static str),
    Server(String),
    Eof,
    Tick(u8),
    Signal(bool),
    TlsUp,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    let inputs = prop::sample::select(vec![
        "NOOP\n",
        "APPEND INBOX {5}\n",
        "APPEND INBOX {5+}\n",
        "APPEND INBOX {3-}\n",
        "X ~{4+}\n",
        "hello",
        "\n",
        "IDLE\n",
        "DONE\n",
        "AUTHENTICATE PLAIN\n",
        "STARTTLS\n",
        "COMPRESS DEFLATE\n",
        "LOGIN a b\n",
        "\\sleep 1\n",
        "\\idle 2\n",
        "x {2}\nab {3+}\nabc\n",
    ]);
    prop_oneof![
        4 => inputs.prop_map(Op::Input),
        4 => (0u8..8, prop::sample::select(vec!["OK", "NO", "BAD"]))
            .prop_map(|(n, s)| Op::Server(format!("a{n} {s} done\r\n"))),
        2 => Just(Op::Server("+ go\r\n".into())),
        1 => Just(Op::Server("* 1 EXISTS\r\n".into())),
        1 => Just(Op::Server("* 1 FETCH (BODY[] {3}\r\nabc)\r\n".into())),
        1 => Just(Op::Server("* BYE bye\r\n".into())),
        1 => Just(Op::Eof),
        1 => (0u8..20).prop_map(Op::Tick),
        1 => any::<bool>().prop_map(Op::Signal),
        1 => Just(Op::TlsUp),
        1 => Just(Op::Close),
    ]
}

/// Checks the sends of a run: nothing after STARTTLS until TLS is up, and
/// a literal that must be sent (non-synchronizing, or after its `+`) is
/// sent whole before anything else.
struct Wire {
    /// Bytes of literal data still owed.
    owed: u64,
    /// A synchronizing literal was announced by this tag: the next `+` is
    /// its, unless the command completes first.
    sync_pending: Option<(u64, String)>,
    /// The tag of the command line being sent.
    tag: String,
    starttls_sent: bool,
    starttls_tag: String,
    tls: bool,
}

impl Wire {
    fn check(&mut self, bytes: &[u8], log: &Log) -> Result<(), String> {
        if self.starttls_sent && !self.tls {
            return Err(format!("sent in plaintext after STARTTLS: {bytes:?}"));
        }
        if self.owed > 0 {
            if matches!(log, Log::Line(_)) {
                return Err(format!(
                    "a new line while {} literal bytes are owed",
                    self.owed
                ));
            }
            let n = (bytes.len() as u64).min(self.owed);
            self.owed -= n;
            if (bytes.len() as u64) == n {
                return Ok(());
            }
        }
        if matches!(log, Log::Line(_)) {
            let word = bytes.split(|&b| b == b' ').next().unwrap_or_default();
            if bytes.ends_with(b" STARTTLS\r\n") {
                self.starttls_sent = true;
                self.starttls_tag = String::from_utf8_lossy(word).into_owned();
            }
            let tagged =
                word.len() > 1 && word[0] == b'a' && word[1..].iter().all(u8::is_ascii_digit);
            if !tagged {
                // An answer to a `+` (IDLE, AUTHENTICATE): a raw line, no
                // command, no literal.
                return Ok(());
            }
            self.tag = String::from_utf8_lossy(word).into_owned();
        }
        if let Ok(Some(lit)) = command::trailing_literal(strip_line_end(bytes)) {
            if lit.non_sync {
                self.owed = lit.len;
            } else {
                self.sync_pending = Some((lit.len, self.tag.clone()));
            }
        }
        Ok(())
    }

    fn server(&mut self, line: &str) {
        // A typed STARTTLS the server refuses leaves the session as it was
        // (--starttls ends the run instead: the core fails, sends nothing).
        if self.starttls_sent
            && line.starts_with(&format!("{} ", self.starttls_tag))
            && !line.contains(" OK ")
        {
            self.starttls_sent = false;
        }
        if line.starts_with('+') {
            if let Some((n, _)) = self.sync_pending.take() {
                self.owed = n;
            }
        } else if let Some((_, tag)) = &self.sync_pending
            && line.starts_with(&format!("{tag} "))
        {
            self.sync_pending = None;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_core_keeps_its_promises_whatever_happens(
        starttls_first in any::<bool>(),
        script in any::<bool>(),
        ops in prop::collection::vec(op(), 0..40),
    ) {
        let mut cfg = config(if script { Source::Stdin } else { Source::Interactive });
        if starttls_first {
            cfg.security = Security::StartTls;
        }
        let mut t = T::new(cfg);
        let mut wire = Wire { owed: 0, sync_pending: None, tag: String::new(), starttls_sent: false, starttls_tag: String::new(), tls: false };
        t.server(GREETING);
        let mut checked = 0;
        for op in ops {
            match op {
                Op::Input(s) => t.input(s),
                Op::Server(s) => {
                    // A `+` goes to a literal waiting for one before anyone.
                    wire.server(&s);
                    t.server(&s)
                }
                Op::Eof => t.eof(),
                Op::Tick(s) => t.advance(f64::from(s)),
                Op::Signal(torn) => t.signal(Signal::Interrupt, torn),
                Op::TlsUp => {
                    if t.has(|a| matches!(a, Action::StartTls)) && !wire.tls {
                        wire.tls = true;
                        wire.starttls_sent = false;
                        t.core.tls_up(None, false, t.now);
                        t.drain();
                    }
                }
                Op::Close => {
                    t.core.server_closed(t.now);
                    t.drain();
                }
            }
            for (bytes, log) in &t.sends[checked..] {
                if let Err(e) = wire.check(bytes, log) {
                    prop_assert!(false, "{e}; sends: {:?}", t.sends);
                }
            }
            checked = t.sends.len();
            if t.end().is_some() {
                // After the end, nothing more is asked for.
                t.input("NOOP\n");
                t.server("+ go\r\n");
                prop_assert_eq!(t.sends.len(), checked);
                break;
            }
        }
    }
}
