//! imaptalk: an interactive IMAP terminal client.
//!
//! # Layout
//!
//! Four layers, each using only those below it, over shared modules:
//!
//! - [`text`]: the one escaping rule for text from the server or a
//!   certificate, in its three notations (a line, a terminal, a record);
//!   sizes, durations, seconds, dates, I/O errors as people read them.
//! - [`error`]: failure classes and exit codes.
//! - [`platform`]: what differs between Unix and Windows (files and their
//!   privacy, the console, the shell), one module per concern; signals
//!   are in [`app::signals`].
//! - [`protocol`]: IMAP without IO.
//!   - [`protocol::framer`]: the server's bytes into response events,
//!     literals included, in bounded memory. The heart of the tool.
//!   - [`protocol::command`]: typed lines into wire commands: tags,
//!     literals, masking; [`protocol::command::Verb`] and the one table of
//!     what imaptalk knows of each command (`VERBS`).
//!   - [`protocol::caps`]: what the server advertised (CAPABILITY, ENABLED).
//!   - [`protocol::mutf7`]: modified UTF-7 mailbox names, decoded for people.
//!   - [`protocol::astring`]: astrings and mailbox names quoted for the
//!     wire, the mailbox of a LIST line.
//!   - [`protocol::literal`]: `{@path}` tokens and how a literal is announced.
//! - [`core`]: the conversation's rules, without IO.
//!   - [`core::options`]: what the session is asked to do (`Security`,
//!     `Input`, `SessionOptions`), decided by `app::cli`.
//!   - [`core::session`]: the session core: greeting, STARTTLS, `-u`
//!     login, outstanding tags, continuations, literals, `--pipeline`,
//!     `\idle`, the end of input and LOGOUT, signals — a state machine
//!     that takes events and input and yields actions.
//!   - [`core::pipeline`]: which script commands `--pipeline` may send
//!     before earlier ones complete.
//!   - [`core::sasl`]: mechanisms, SASL payloads, SCRAM, the
//!     [`core::sasl::Secret`].
//! - [`io`]: bytes to and from the server and local files.
//!   - [`io::tcp`]: resolving and connecting (`-4`/`-6`), keepalive.
//!   - [`io::proxy`]: `--proxy` (SOCKS5, HTTP CONNECT) and the
//!     `--proxy-protocol` header.
//!   - [`io::tls`]: TLS configuration (versions, client certificate, key
//!     log), verification (`--pin`, `--cafile`), the handshake.
//!   - [`io::connection`]: the `Connection` that owns the socket and the
//!     framer; STARTTLS and COMPRESS switch its stream.
//!   - [`io::compress`]: COMPRESS=DEFLATE, a layer under the framer, and
//!     `--compress`.
//!   - [`io::transcript`]: `--log`, the session recorded in a file.
//!   - [`io::fileliteral`]: the data of `{@path}` and `{@-}` literals.
//! - [`app`]: the program around the conversation.
//!   - [`app::cli`]: flags, validated in one step into `Settings`: the
//!     small option structs each layer takes (`ConnectOptions`,
//!     `TlsOptions`, `SessionOptions`, `OutputOptions`, `DiagOptions`,
//!     `TranscriptOptions`); nothing below `app` knows clap;
//!     [`app::target`]: the server argument (`host:port`, `imaps://…`).
//!   - [`app::driver`]: the one loop that does the session's IO: the
//!     connection, timers, input, output, signals, around the core.
//!   - [`app::repl`] and [`app::script`]: the interactive and
//!     non-interactive input sources; [`core::meta`]: the REPL's `\`
//!     meta-commands and command reference; [`app::complete`]: completion.
//!   - [`app::render`]: raw bytes for pipes, escaped and coloured text for
//!     people (long literals cut short on a terminal); [`app::progress`]:
//!     the progress bar for big literals going to a file.
//!   - [`app::auth`]: `-u`: where the password or token comes from, the
//!     plaintext rule.
//!   - [`app::diag`] and [`app::certinfo`]: `-v`, `--show-certs`,
//!     `--expiry-warn`: the connection, the TLS parameters and the
//!     certificate chain.
//!   - [`app::signals`]: SIGINT/SIGTERM (Ctrl-C, Ctrl-Break) end a script
//!     run with LOGOUT; the guard that keeps Ctrl-C from killing the REPL.
//!   - [`app::proxy`]: `--listen`, proxy mode: mail clients relayed to the
//!     server, both sides shown; [`protocol::client_framer`] frames the
//!     clients' commands, [`io::listen`] is the clients' side of TLS.
//!   - [`app::check`]: `--check`, the server's health report: the
//!     findings and their rules ([`app::check::report`], no IO) and the
//!     probes ([`app::check::probe`]).
//!   - [`app::generation`]: shell completions and the man page (`--generate`).

// No panics by construction: a hostile server or a bad script must end in
// a one-line error and an exit code, never a panic (tests may unwrap).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// eprintln! panics when stderr is a closed pipe (`2>&1 | head`): stderr
// is written through error::say, which drops what nobody reads.
#![cfg_attr(not(test), deny(clippy::print_stderr))]
// The few calls into the Windows API are in `platform`, each with the
// reason it is sound.
#![deny(unsafe_code)]

pub mod app;
pub mod core;
pub mod error;
pub mod io;
pub mod platform;
pub mod protocol;
pub mod text;

use crate::core::options::Input as Source;
use crate::core::session::Input;
use app::cli::{Cli, Settings};
use app::driver::{Driver, Editor};
use app::render::{Output, TextSink};
use app::{auth, generation, progress, repl, script, signals};
use std::process::ExitCode;

/// Runs imaptalk; the error, if any, is mapped to an exit code by `main`.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(kind) = cli.generate {
        generation::write(kind)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut settings = cli.settings()?;
    // One thread is plenty: the editor and the stdin reader have their own
    // threads, and everything else waits on one socket.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Some(listen) = settings.listen.clone() {
        // Every connection is a task on this one thread (a LocalSet: they
        // share the run's settings without locks).
        let code =
            tokio::task::LocalSet::new().block_on(&runtime, app::proxy::run(settings, listen));
        runtime.shutdown_background();
        return code.map(ExitCode::from);
    }
    if let Some(login) = &mut settings.login {
        // Before connecting: a prompt is answered before the server can
        // time out, and a missing password fails before anything is sent.
        // The guard keeps the prompt's Ctrl-C from killing the process
        // before the terminal is restored, and a Ctrl-C while the token
        // command runs ends the run here too.
        let mut guard = {
            let _entered = runtime.enter();
            signals::Guard::new()
        };
        let obtained = auth::obtain(login, &settings.connect.host);
        if guard.interrupted(&runtime) || obtained.as_ref().is_err_and(auth::interrupted) {
            error::say(&format!(
                "imaptalk: interrupted by {} before connecting; nothing was sent",
                signals::Kind::Interrupt.name()
            ));
            return Ok(ExitCode::from(error::INTERRUPTED));
        }
        login.secret = Some(obtained?);
    }
    if settings.check.is_some() {
        let code = runtime.block_on(app::check::main(settings));
        runtime.shutdown_background();
        return code.map(ExitCode::from);
    }
    let code = runtime.block_on(session_main(settings));
    // Don't wait for the stdin thread: it may be blocked reading forever.
    runtime.shutdown_background();
    code.map(ExitCode::from)
}

async fn session_main(settings: Settings) -> anyhow::Result<u8> {
    if settings.diag.show_certs {
        // stdout is for the PEM alone; with -v the server's lines go to
        // stderr with the rest of the report.
        let out = if settings.diag.verbose {
            Output::text(false, TextSink::Stderr)
        } else {
            Output::discard()
        };
        let mut driver = Driver::connect(settings, out, true, None).await?;
        return driver.run(script::commands(&[]), None).await;
    }
    match settings.input.clone() {
        Source::Interactive => {
            // Ctrl-C must never kill the session. The editor reads keys in
            // raw mode, but the terminal is cooked while the prompt waits for
            // the server and while \login asks for the password: the guard
            // stands for the whole run.
            let guard = signals::Guard::new();
            // With that handler in place, a SIGINT aimed at the editor's
            // thread only makes it redraw its prompt (Unix; elsewhere the
            // prompt changes at the next line).
            let redraw = guard.redraws();
            let first = repl::Prompt {
                text: "(connecting)> ".to_string(),
                kind: repl::PromptKind::Command,
            };
            let (repl, mut rx) = repl::Repl::start(
                settings.history.clone(),
                settings.output.color,
                first,
                redraw,
            )?;
            let out = if settings.output.render {
                Output::text(
                    settings.output.color,
                    TextSink::Printer(repl.screen.clone()),
                )
                .with_full_literals(settings.output.full)
            } else {
                Output::raw(settings.output.file.clone()).with_progress(progress::Progress::new(
                    settings.output.quiet,
                    settings.output.file.is_some(),
                ))
            };
            let editor = Editor {
                screen: repl.screen.clone(),
                known: repl.known.clone(),
            };
            let result = async {
                // Ctrl-C while connecting ends the attempt at once; lines
                // typed meanwhile are kept for the session.
                let mut early = Vec::new();
                let connect = Driver::connect(settings, out, false, Some(editor));
                tokio::pin!(connect);
                let mut driver = loop {
                    tokio::select! {
                        d = &mut connect => break d?,
                        input = rx.recv() => match input {
                            Some(Input::Interrupt) | None => {
                                error::say("imaptalk: interrupted by SIGINT before the session was set up");
                                return Ok(error::INTERRUPTED);
                            }
                            Some(Input::Eof) => {
                                error::say("imaptalk: input ended before the session was set up; nothing was sent");
                                return Ok(0);
                            }
                            Some(other) => early.push(other),
                        },
                    }
                };
                driver.run_with(early, rx, None).await
            }
            .await;
            repl.finish();
            result
        }
        Source::Stdin | Source::Commands(_) => {
            let out = if settings.output.render {
                Output::text(settings.output.color, TextSink::Stdout(std::io::stdout()))
                    .with_full_literals(settings.output.full)
            } else {
                Output::raw(settings.output.file.clone()).with_progress(progress::Progress::new(
                    settings.output.quiet,
                    settings.output.file.is_some(),
                ))
            };
            let rx = match &settings.input {
                Source::Commands(c) => script::commands(c),
                _ => script::stdin(),
            };
            // SIGINT/SIGTERM end a script cleanly: LOGOUT if possible.
            let mut signals = signals::Signals::new();
            let mut driver = tokio::select! {
                d = Driver::connect(settings, out, false, None) => d?,
                kind = signals.recv() => {
                    error::say(&format!(
                        "imaptalk: interrupted by {} before the session was set up",
                        kind.name()
                    ));
                    return Ok(kind.exit_code());
                }
            };
            driver.run(rx, Some(signals)).await
        }
    }
}
