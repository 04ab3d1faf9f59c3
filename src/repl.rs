//! The interactive driver: a rustyline prompt on its own thread, server
//! output printed above it as it arrives.
//!
//! rustyline is blocking and has no async interface, so the editor runs on
//! a thread and hands lines to the session over a channel. Server output
//! goes through rustyline's `ExternalPrinter` (which redraws the prompt and
//! the half-typed line below it) from a printer thread that batches
//! whatever has queued up: one `print` per line is ~20x slower on bulk
//! output, because each call redraws the prompt.

use crate::session::Input;
use anyhow::{Context, Result};
use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor, ExternalPrinter};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use tokio::sync::mpsc;

pub struct Repl {
    /// The session sends the next prompt whenever it is ready for input.
    pub prompt: std_mpsc::Sender<String>,
    /// Text to print above the prompt.
    pub printer: std_mpsc::Sender<String>,
    printer_thread: JoinHandle<()>,
    editing: Arc<AtomicBool>,
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
}

impl Repl {
    /// Starts the editor and printer threads; the receiver yields what is typed.
    pub fn start() -> Result<(Repl, mpsc::Receiver<Input>)> {
        #[cfg(unix)]
        let saved = nix::sys::termios::tcgetattr(std::io::stdin()).ok();
        let config = Config::builder()
            .auto_add_history(false)
            .history_ignore_space(true)
            .max_history_size(1000)
            .context("configuring the line editor")?
            .build();
        let mut editor = DefaultEditor::with_config(config).context("starting the line editor")?;
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
        let (prompt_tx, prompt_rx) = std_mpsc::channel::<String>();
        let editing = Arc::new(AtomicBool::new(true));
        let flag = editing.clone();
        std::thread::spawn(move || {
            edit_loop(&mut editor, &prompt_rx, &input_tx);
            flag.store(false, Ordering::SeqCst);
        });
        let repl = Repl {
            prompt: prompt_tx,
            printer: print_tx,
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

fn edit_loop(
    editor: &mut DefaultEditor,
    prompts: &std_mpsc::Receiver<String>,
    tx: &mpsc::Sender<Input>,
) {
    while let Ok(prompt) = prompts.recv() {
        let msg = match editor.readline(&prompt) {
            Ok(line) => {
                // Lines typed as continuation data (SASL responses, literal
                // data) and LOGIN/AUTHENTICATE lines never enter history.
                let command_prompt = !prompt.starts_with('+') && !prompt.starts_with('.');
                if command_prompt && !is_secret(&line) {
                    let _ = editor.add_history_entry(line.as_str());
                }
                let mut bytes = line.into_bytes();
                bytes.extend_from_slice(b"\r\n");
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

/// LOGIN and AUTHENTICATE lines carry secrets, with or without a tag.
fn is_secret(line: &str) -> bool {
    line.split_whitespace()
        .take(2)
        .any(|w| w.eq_ignore_ascii_case("LOGIN") || w.eq_ignore_ascii_case("AUTHENTICATE"))
}
