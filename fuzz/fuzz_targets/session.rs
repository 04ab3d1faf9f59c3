//! The session core under any interleaving of server bytes, input, timers,
//! signals and TLS: it never panics, never sends in plaintext after
//! `--starttls` asked for STARTTLS until TLS is up, and once it announced a
//! non-synchronizing literal it sends exactly that many bytes of it before
//! any new line.
#![no_main]

use imaptalk::core::sasl::Secret;
use imaptalk::core::session::{
    Action, AutoLogin, Config, Core, Input, Log, Security, Signal, Source,
};
use imaptalk::protocol::command::trailing_literal;
use imaptalk::protocol::framer::{Framer, strip_line_end};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

struct Check {
    starttls_first: bool,
    plaintext_closed: bool,
    tls: bool,
    owed: u64,
    ended: bool,
}

impl Check {
    fn sent(&mut self, bytes: &[u8], log: &Log) {
        assert!(!self.ended, "sent after the end of the run");
        assert!(
            !(self.plaintext_closed && !self.tls),
            "plaintext after STARTTLS: {bytes:?}"
        );
        let mut rest = bytes;
        if self.owed > 0 {
            assert!(
                matches!(log, Log::More),
                "a new line inside an owed literal"
            );
            let n = (rest.len() as u64).min(self.owed);
            self.owed -= n;
            rest = &rest[n as usize..];
            if rest.is_empty() {
                return;
            }
        }
        if self.starttls_first && bytes.ends_with(b" STARTTLS\r\n") {
            self.plaintext_closed = true;
        }
        // A command line of the core's (its tags are `aN`; typed input
        // never starts a line with `a` here) or the rest of one after a
        // literal; answers to a `+` are raw lines and announce nothing.
        let command = matches!(log, Log::More)
            || rest.first() == Some(&b'a') && rest.get(1).is_some_and(u8::is_ascii_digit);
        if let Ok(Some(lit)) = trailing_literal(strip_line_end(rest))
            && command
            && lit.non_sync
            && rest.ends_with(b"\n")
        {
            self.owed = lit.len;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut data)) = data.split_first() else {
        return;
    };
    let source = match flags & 3 {
        0 => Source::Interactive,
        1 => Source::Stdin,
        _ => Source::Commands,
    };
    let starttls_first = flags & 4 != 0;
    let cfg = Config {
        host: "h".into(),
        port: 143,
        security: if starttls_first {
            Security::StartTls
        } else {
            Security::Plain
        },
        source,
        pipeline: flags & 8 != 0,
        echo: flags & 16 != 0,
        render: flags & 32 != 0,
        verbose: flags & 64 != 0,
        timing: false,
        timeout: Some(Duration::from_secs(5)),
        compress: flags & 128 != 0,
        tag_prefix: "a".into(),
        login: (flags & 0x30 == 0x30).then(|| AutoLogin {
            user: "u".into(),
            secret: Secret::new("p w".into()),
            oauth2: false,
            mech: None,
            nonce: "n0nce".into(),
        }),
        plaintext_refusal: None,
        local: flags & 2 == 0,
        renew_idle: Duration::from_secs(3),
    };
    let mut now = Instant::now();
    let mut core = Core::new(cfg, false, false, now);
    let mut framer = Framer::new();
    let mut check = Check {
        starttls_first,
        plaintext_closed: false,
        tls: false,
        owed: 0,
        ended: false,
    };
    let mut tls_asked = false;
    let mut line_start = true;
    let drain = |core: &mut Core, check: &mut Check, tls_asked: &mut bool| {
        while let Some(a) = core.next_action() {
            match a {
                Action::Send { bytes, log } => check.sent(&bytes, &log),
                Action::StartTls => *tls_asked = true,
                Action::Finish { .. } | Action::Fail(_) => check.ended = true,
                Action::OpenFiles { .. } => core.files_opened(Ok(Vec::new()), Instant::now()),
                _ => {}
            }
        }
    };
    while let Some((&op, rest)) = data.split_first() {
        let len = (rest.first().copied().unwrap_or(0) as usize).min(rest.len().saturating_sub(1));
        let chunk = rest.get(1..1 + len).unwrap_or_default();
        data = rest.get(1 + len..).unwrap_or_default();
        match op % 8 {
            0 | 1 => {
                framer.buffer_mut().extend_from_slice(chunk);
                core.server_activity(now);
                loop {
                    match framer.next_event() {
                        Ok(Some(ev)) => {
                            let _ = core.note_for(&ev);
                            core.server_event(&ev, now);
                            drain(&mut core, &mut check, &mut tls_asked);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            core.frame_error(e);
                            break;
                        }
                    }
                }
            }
            2 | 3 => {
                // Typed lines never start with `a`: only the core's own
                // tags do (see Check::sent).
                let mut typed = chunk.to_vec();
                for b in &mut typed {
                    if *b == b'a' && line_start {
                        *b = b'b';
                    }
                    line_start = *b == b'\n';
                }
                core.input(Input::Data(typed), now)
            }
            4 => core.input(Input::Eof, now),
            5 => {
                now += Duration::from_millis(u64::from(chunk.first().copied().unwrap_or(1)) * 50);
                core.tick(now);
            }
            6 => core.signal(
                if op & 8 == 0 {
                    Signal::Interrupt
                } else {
                    Signal::Terminate
                },
                op & 16 != 0,
                now,
            ),
            _ => {
                if tls_asked && !check.tls {
                    check.tls = true;
                    core.tls_up(None, false, now);
                } else {
                    core.input(Input::Interrupt, now);
                }
            }
        }
        drain(&mut core, &mut check, &mut tls_asked);
        let _ = core.deadline();
        let _ = core.wants_input();
    }
});
