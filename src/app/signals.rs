//! Signals, and the Windows console's control events that stand for them.
//!
//! In script and `-c` mode SIGINT and SIGTERM end the session cleanly
//! (LOGOUT when the wire allows it, bounded by a second) and the run exits
//! with the shell's code for the signal, 128 + its number. On Windows,
//! Ctrl-C counts as SIGINT, and Ctrl-Break and closing the console window
//! as SIGTERM (Windows waits a few seconds for a process whose console
//! closes: enough for the LOGOUT).
//!
//! The interactive REPL handles Ctrl-C itself (it ends an IDLE or clears
//! the line); there, and at the password prompt, a [`Guard`] only keeps
//! Ctrl-C from killing the process.
//!
//! All signal handling that differs by platform is here.

use crate::error;
use crate::platform::console::{INTERRUPT_NAME, TERMINATE_NAME};

/// Which signal asked the run to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SIGINT; Ctrl-C on Windows.
    Interrupt,
    /// SIGTERM; Ctrl-Break or the console closing on Windows.
    Terminate,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Interrupt => INTERRUPT_NAME,
            Kind::Terminate => TERMINATE_NAME,
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Interrupt => error::INTERRUPTED,
            Kind::Terminate => error::TERMINATED,
        }
    }
}

/// The signals a script run listens for. Registering replaces the default
/// action (immediate death, which would leave the server a half-sent
/// command and no LOGOUT); if registration fails, the default stays.
pub struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(windows)]
    ctrl_c: Option<tokio::signal::windows::CtrlC>,
    #[cfg(windows)]
    ctrl_break: Option<tokio::signal::windows::CtrlBreak>,
    #[cfg(windows)]
    ctrl_close: Option<tokio::signal::windows::CtrlClose>,
}

impl Signals {
    /// Must be called inside the runtime.
    pub fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(windows)]
        {
            use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
            Signals {
                ctrl_c: ctrl_c().ok(),
                ctrl_break: ctrl_break().ok(),
                ctrl_close: ctrl_close().ok(),
            }
        }
    }

    /// The next signal; never returns if none can arrive.
    pub async fn recv(&mut self) -> Kind {
        #[cfg(unix)]
        {
            tokio::select! {
                () = one(self.int.as_mut().map(|s| s.recv())) => Kind::Interrupt,
                () = one(self.term.as_mut().map(|s| s.recv())) => Kind::Terminate,
            }
        }
        #[cfg(windows)]
        {
            tokio::select! {
                () = one(self.ctrl_c.as_mut().map(|s| s.recv())) => Kind::Interrupt,
                () = one(self.ctrl_break.as_mut().map(|s| s.recv())) => Kind::Terminate,
                () = one(self.ctrl_close.as_mut().map(|s| s.recv())) => Kind::Terminate,
            }
        }
    }
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}

/// Waits for one delivery of a listener (`None`: none could be set up);
/// never returns when nothing can arrive.
async fn one(recv: Option<impl Future<Output = Option<()>>>) {
    let received = match recv {
        Some(r) => r.await.is_some(),
        None => false,
    };
    if !received {
        std::future::pending::<()>().await;
    }
}

/// Keeps an interrupt (SIGINT, Ctrl-C) from killing the process while it
/// lives, and tells whether one came. For the times a terminal is cooked
/// while imaptalk waits: the interactive prompt waiting for the server,
/// and the password prompts, which read Ctrl-C themselves and raise the
/// interrupt with echo still off (rpassword raises SIGINT on Unix and a
/// console Ctrl-C event on Windows): without a handler that would end the
/// process before the terminal is restored, and without a LOGOUT.
pub struct Guard {
    #[cfg(unix)]
    listener: Option<tokio::signal::unix::Signal>,
    #[cfg(windows)]
    listener: Option<tokio::signal::windows::CtrlC>,
}

impl Guard {
    /// Must be called inside the runtime (`runtime.enter()`).
    pub fn new() -> Guard {
        #[cfg(unix)]
        let listener =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
        #[cfg(windows)]
        let listener = tokio::signal::windows::ctrl_c().ok();
        Guard { listener }
    }

    /// Whether an interrupt arrived since the guard was made (or last
    /// asked); does not wait.
    pub fn interrupted(&mut self, runtime: &tokio::runtime::Runtime) -> bool {
        self.listener.as_mut().is_some_and(|l| {
            runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::ZERO, l.recv())
                    .await
                    .is_ok()
            })
        })
    }
}

impl Guard {
    /// Whether the line editor's read can be interrupted for a redraw
    /// ([`Interruptible`]): on Unix a SIGINT sent to its thread is harmless
    /// once the guard's handler is in place; on Windows stdin must be a
    /// console, to type the redraw key into.
    pub fn redraws(&self) -> bool {
        #[cfg(unix)]
        return self.listener.is_some();
        #[cfg(windows)]
        crate::platform::console::can_type_redraw_key()
    }
}

/// A thread whose blocking read another thread can interrupt (the line
/// editor's, to redraw its prompt): with SIGINT on Unix, harmless while a
/// [`Guard`] stands; on Windows, where a console read cannot be
/// interrupted, by typing the editor a key it ends the line on
/// ([`REDRAW_F_KEY`](crate::platform::console::REDRAW_F_KEY)).
#[derive(Debug, Clone, Copy)]
pub struct Interruptible {
    #[cfg(unix)]
    thread: nix::sys::pthread::Pthread,
}

impl Interruptible {
    /// The calling thread.
    pub fn current() -> Option<Interruptible> {
        #[cfg(unix)]
        return Some(Interruptible {
            thread: nix::sys::pthread::pthread_self(),
        });
        #[cfg(windows)]
        crate::platform::console::can_type_redraw_key().then_some(Interruptible {})
    }

    /// Sends it SIGINT (types the redraw key on Windows); false if that
    /// failed.
    pub fn interrupt(self) -> bool {
        #[cfg(unix)]
        return nix::sys::pthread::pthread_kill(self.thread, nix::sys::signal::Signal::SIGINT)
            .is_ok();
        #[cfg(windows)]
        crate::platform::console::type_redraw_key()
    }
}

impl Default for Guard {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_shells_exit_codes() {
        assert_eq!(Kind::Interrupt.exit_code(), 130);
        assert_eq!(Kind::Terminate.exit_code(), 143);
        let names = (Kind::Interrupt.name(), Kind::Terminate.name());
        if cfg!(windows) {
            assert_eq!(names, ("Ctrl-C", "Ctrl-Break"));
        } else {
            assert_eq!(names, ("SIGINT", "SIGTERM"));
        }
    }

    #[test]
    fn a_guard_reports_no_interrupt_that_did_not_come() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut guard = {
            let _entered = runtime.enter();
            Guard::new()
        };
        assert!(!guard.interrupted(&runtime));
    }
}
