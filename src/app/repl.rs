//! The interactive driver: a rustyline prompt on its own thread, server
//! output printed above it as it arrives.
//!
//! rustyline is blocking and has no async interface, so the editor runs on
//! a thread and hands lines to the session over a channel. Server output
//! goes through rustyline's `ExternalPrinter` (which redraws the prompt and
//! the half-typed line below it) from a printer thread that batches
//! whatever has queued up: one `print` per line is ~20x slower on bulk
//! output, because each call redraws the prompt.

use crate::app::complete::{ReplHelper, Shared};
use crate::core::meta::{self, Meta, Request};
use crate::core::sasl::Secret;
use crate::core::session::Input;
use crate::protocol::command::Verb;
use anyhow::{Context, Result};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Config, Editor, ExternalPrinter};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use tokio::sync::mpsc;
use unicode_width::UnicodeWidthStr as _;

/// What the editor shows next: exactly one per line it is to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    pub kind: PromptKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// A command line.
    Command,
    /// An answer to the server's `+` (SASL data, IDLE's DONE): never kept.
    Continuation,
    /// Data of a literal the typed line announced: never kept.
    Literal,
}

/// What the command prompt shows: the state the server has confirmed.
#[derive(Debug, Clone, Copy)]
pub struct PromptState<'a> {
    pub host: &'a str,
    pub tls: bool,
    /// Logged in, as this user (`?` when the server did not say who).
    pub user: Option<&'a str>,
    /// The selected mailbox.
    pub mailbox: Option<&'a str>,
    pub tag: &'a str,
}

/// The command prompt, e.g. `alice@imap.example.com 🔒 INBOX a7> `. Parts
/// are dropped (host first, then the user, then the lock and mailbox) until
/// the prompt takes at most half of `width` columns, so there is room to
/// type; `utf8` false gives a plain-ASCII form (`tls` instead of the lock).
pub fn command_prompt(s: &PromptState, width: usize, utf8: bool) -> String {
    let lock = match (s.tls, utf8) {
        (true, true) => "\u{1f512}",
        (false, true) => "\u{1f513}",
        (true, false) => "tls",
        (false, false) => "plain",
    };
    let who = match s.user {
        Some(u) => format!("{u}@{}", s.host),
        None => s.host.to_string(),
    };
    let mailbox = s.mailbox.map(|m| format!(" {m}")).unwrap_or_default();
    let tag = s.tag;
    let forms = [
        format!("{who} {lock}{mailbox} {tag}> "),
        match s.user {
            Some(u) => format!("{u} {lock}{mailbox} {tag}> "),
            None => format!("{lock}{mailbox} {tag}> "),
        },
        format!("{lock}{mailbox} {tag}> "),
        format!("{tag}> "),
    ];
    let budget = width / 2;
    forms
        .iter()
        .find(|f| f.width() <= budget)
        .unwrap_or(&forms[3])
        .clone()
}

/// Whether the locale asks for UTF-8 (LC_ALL, then LC_CTYPE, then LANG).
pub fn utf8_locale() -> bool {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        })
}

/// Columns of the terminal on stdout (80 when it cannot be told).
pub fn terminal_width() -> usize {
    terminal_size::terminal_size()
        .map(|(w, _)| usize::from(w.0))
        .filter(|&w| w > 0)
        .unwrap_or(80)
}

pub struct Repl {
    /// The session sends the next prompt whenever it is ready for input.
    pub prompt: std_mpsc::Sender<Prompt>,
    /// Text to print above the prompt.
    pub printer: std_mpsc::Sender<String>,
    /// What the session learns for completion (capabilities, mailboxes).
    pub known: Shared,
    printer_thread: JoinHandle<()>,
    editing: Arc<AtomicBool>,
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
}

impl Repl {
    /// Starts the editor and printer threads; the receiver yields what is typed.
    /// History is loaded from and appended to `history`, if given.
    /// `color`: hints are shown dimmed.
    pub fn start(history: Option<PathBuf>, color: bool) -> Result<(Repl, mpsc::Receiver<Input>)> {
        #[cfg(unix)]
        let saved = nix::sys::termios::tcgetattr(std::io::stdin()).ok();
        let config = Config::builder()
            .auto_add_history(false)
            .history_ignore_space(true)
            .max_history_size(1000)
            .context("configuring the line editor")?
            .completion_type(CompletionType::List)
            .build();
        let mut editor: LineEditor =
            Editor::with_config(config).context("starting the line editor")?;
        let known = Shared::default();
        editor.set_helper(Some(ReplHelper {
            known: known.clone(),
            color,
        }));
        let history = history.and_then(|path| match open_history(&path) {
            Ok(()) => {
                if let Err(e) = editor.load_history(&path) {
                    crate::error::say(&format!(
                        "imaptalk: warning: history {}: {e}",
                        path.display()
                    ));
                }
                Some(path)
            }
            Err(e) => {
                crate::error::say(&format!(
                    "imaptalk: warning: history {}: {e}; keeping it in memory only",
                    path.display()
                ));
                None
            }
        });
        let (print_tx, print_rx) = std_mpsc::channel::<String>();
        let printer_thread = match editor.create_external_printer() {
            Ok(printer) => std::thread::spawn(move || print_loop(print_rx, printer)),
            // No printer (not a real terminal): print directly.
            Err(_) => std::thread::spawn(move || {
                let mut out = std::io::stdout();
                while let Ok(s) = print_rx.recv() {
                    let _ = write!(out, "{s}");
                    if !s.ends_with('\n') {
                        let _ = writeln!(out);
                    }
                    let _ = out.flush();
                }
            }),
        };
        let (input_tx, input_rx) = mpsc::channel(16);
        let (prompt_tx, prompt_rx) = std_mpsc::channel::<Prompt>();
        let editing = Arc::new(AtomicBool::new(true));
        let flag = editing.clone();
        std::thread::spawn(move || {
            edit_loop(&mut editor, history.as_deref(), &prompt_rx, &input_tx);
            flag.store(false, Ordering::SeqCst);
        });
        let repl = Repl {
            prompt: prompt_tx,
            printer: print_tx,
            known,
            printer_thread,
            editing,
            #[cfg(unix)]
            saved,
        };
        Ok((repl, input_rx))
    }

    /// Waits until everything queued is printed, and puts the terminal back
    /// the way it was if the editor is still in the middle of a prompt
    /// (the server ended the session while the user was typing).
    pub fn finish(self) {
        let Repl {
            printer,
            printer_thread,
            prompt,
            known: _,
            editing,
            #[cfg(unix)]
            saved,
        } = self;
        drop(printer);
        drop(prompt);
        let _ = printer_thread.join();
        if editing.load(Ordering::SeqCst) {
            #[cfg(unix)]
            if let Some(t) = &saved {
                let _ = nix::sys::termios::tcsetattr(
                    std::io::stdin(),
                    nix::sys::termios::SetArg::TCSANOW,
                    t,
                );
            }
            // Bracketed paste off, and leave the shell a fresh line.
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x1b[?2004l\n");
            let _ = out.flush();
        }
    }
}

fn print_loop(rx: std_mpsc::Receiver<String>, mut printer: impl ExternalPrinter) {
    while let Ok(mut batch) = rx.recv() {
        // rustyline adds a missing line end only while a prompt is active:
        // end every piece with one, so output never runs into the shell's.
        if !batch.ends_with('\n') {
            batch.push('\n');
        }
        while batch.len() < 256 * 1024 {
            match rx.try_recv() {
                Ok(more) => {
                    batch.push_str(&more);
                    if !batch.ends_with('\n') {
                        batch.push('\n');
                    }
                }
                Err(_) => break,
            }
        }
        if printer.print(batch).is_err() {
            break;
        }
    }
}

/// Creates the history file (and its directory) private to the user before
/// anything is written to it; an existing file is made private too.
fn open_history(path: &Path) -> std::io::Result<()> {
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    let mut file = std::fs::OpenOptions::new();
    file.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        dir.mode(0o700);
        file.mode(0o600);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            dir.create(parent)?;
        }
        let f = file.open(path)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            dir.create(parent)?;
        }
        file.open(path)?;
    }
    Ok(())
}

type LineEditor = Editor<ReplHelper, FileHistory>;

fn edit_loop(
    editor: &mut LineEditor,
    history: Option<&Path>,
    prompts: &std_mpsc::Receiver<Prompt>,
    tx: &mpsc::Sender<Input>,
) {
    while let Ok(prompt) = prompts.recv() {
        let msg = match editor.readline(&prompt.text) {
            Ok(line)
                if prompt.kind == PromptKind::Command && line.trim_start().starts_with('\\') =>
            {
                if editor.add_history_entry(line.as_str()).unwrap_or(false)
                    && let Some(path) = history
                {
                    let _ = editor.append_history(path);
                }
                let m = run_meta(&line);
                if m == Meta::Quit {
                    let _ = tx.blocking_send(Input::Meta(m));
                    return;
                }
                Input::Meta(m)
            }
            Ok(text) => {
                // A bracketed paste comes back as one text of several
                // lines: each is a command of its own, for history as for
                // the session.
                let mut bytes = Vec::with_capacity(text.len() + 2);
                for line in text.split('\n') {
                    // Lines typed as continuation data (SASL responses,
                    // literal data) and LOGIN/AUTHENTICATE lines never
                    // enter history.
                    if prompt.kind == PromptKind::Command
                        && !is_secret(line)
                        && editor.add_history_entry(line).unwrap_or(false)
                        && let Some(path) = history
                    {
                        // Appended at once: the session may end any moment.
                        let _ = editor.append_history(path);
                    }
                    bytes.extend_from_slice(line.as_bytes());
                    bytes.extend_from_slice(b"\r\n");
                }
                Input::Data(bytes)
            }
            Err(ReadlineError::Interrupted) => Input::Interrupt,
            Err(_) => {
                let _ = tx.blocking_send(Input::Eof);
                return;
            }
        };
        if tx.blocking_send(msg).is_err() {
            return;
        }
    }
}

/// A meta-command line: `\login` asks for the password here, on the
/// editor's thread, with echo off (the terminal is not in raw mode now).
fn run_meta(line: &str) -> Meta {
    match meta::parse(line) {
        Request::Help(topic) => Meta::Help(topic),
        Request::Quit => Meta::Quit,
        Request::Idle(d) => Meta::Idle(d),
        Request::Sleep(d) => Meta::Sleep(d),
        Request::Show(text) => Meta::Show(text),
        Request::Error(text) => Meta::Say(text),
        Request::Login(user) => {
            match rpassword::prompt_password(format!("Password for {user}: ")) {
                Ok(password) => Meta::Login {
                    user,
                    password: Secret::new(password),
                },
                Err(_) => Meta::Say("\\login cancelled; nothing was sent".to_string()),
            }
        }
    }
}

/// Lines of commands that never enter history (LOGIN, AUTHENTICATE: they
/// carry secrets), with or without a tag. Either of the first two words
/// counts, even where the line would not be read as a tagged command: a
/// password kept by mistake costs more than a line missing from history.
fn is_secret(line: &str) -> bool {
    line.split_whitespace()
        .take(2)
        .any(|w| Verb::parse(w.as_bytes()).never_history())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state<'a>(user: Option<&'a str>, mailbox: Option<&'a str>) -> PromptState<'a> {
        PromptState {
            host: "imap.example.com",
            tls: true,
            user,
            mailbox,
            tag: "a7",
        }
    }

    #[test]
    fn prompt_shows_confirmed_state() {
        let s = state(Some("alice"), Some("INBOX"));
        assert_eq!(
            command_prompt(&s, 200, true),
            "alice@imap.example.com \u{1f512} INBOX a7> "
        );
        assert_eq!(
            command_prompt(&s, 200, false),
            "alice@imap.example.com tls INBOX a7> "
        );
        let s = PromptState {
            tls: false,
            ..state(None, None)
        };
        assert_eq!(
            command_prompt(&s, 200, false),
            "imap.example.com plain a7> "
        );
    }

    #[test]
    fn prompt_gets_shorter_on_narrow_terminals() {
        let s = state(Some("alice"), Some("INBOX"));
        assert_eq!(command_prompt(&s, 60, false), "alice tls INBOX a7> ");
        assert_eq!(command_prompt(&s, 30, false), "tls INBOX a7> ");
        assert_eq!(command_prompt(&s, 10, false), "a7> ");
    }

    #[test]
    fn wide_characters_are_measured_in_columns() {
        // 太郎@日本.example 🔒 INBOX a7> : 31 columns for 27 characters.
        let s = PromptState {
            host: "日本.example",
            ..state(Some("太郎"), Some("INBOX"))
        };
        let full = "太郎@日本.example \u{1f512} INBOX a7> ";
        assert_eq!(full.width(), 31);
        assert_eq!(command_prompt(&s, 62, true), full);
        assert_eq!(command_prompt(&s, 61, true), "太郎 \u{1f512} INBOX a7> ");
        // A combining accent takes no column of its own.
        let s = PromptState {
            host: "cafe\u{301}.example",
            ..state(None, None)
        };
        assert_eq!(
            command_prompt(&s, 2 * "café.example \u{1f512} a7> ".width(), true),
            "cafe\u{301}.example \u{1f512} a7> "
        );
    }

    #[test]
    fn secrets_are_recognised_with_or_without_a_tag() {
        assert!(is_secret("LOGIN alice pw"));
        assert!(is_secret("x1 login alice pw"));
        assert!(is_secret("authenticate PLAIN"));
        assert!(!is_secret("SELECT INBOX"));
    }
}
