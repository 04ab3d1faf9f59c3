//! SIGINT and SIGTERM in script and `-c` mode: the session is ended
//! cleanly (LOGOUT when the wire allows it, bounded by a second) and the
//! run exits with the shell's code for the signal, 128 + its number.
//!
//! The interactive REPL handles Ctrl-C itself (it ends an IDLE or clears
//! the line); this module is not used there.

use crate::error;

/// Which signal asked the run to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Interrupt,
    Terminate,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Interrupt => "SIGINT",
            Kind::Terminate => "SIGTERM",
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
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal; never returns if none can arrive.
    pub async fn recv(&mut self) -> Kind {
        #[cfg(unix)]
        {
            async fn one(s: &mut Option<tokio::signal::unix::Signal>) {
                let received = match s {
                    Some(s) => s.recv().await.is_some(),
                    None => false,
                };
                if !received {
                    std::future::pending::<()>().await;
                }
            }
            tokio::select! {
                () = one(&mut self.int) => Kind::Interrupt,
                () = one(&mut self.term) => Kind::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            Kind::Interrupt
        }
    }
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}
