//! Failures and the exit codes they map to, decided in one place.
//!
//! Code deep in the session raises a [`Fail`] carrying its class; `main`
//! turns whatever error ends the run into one line on stderr and the code
//! documented in the README: 0 ok, 1 a command completed NO or BAD, 2
//! usage, 3 connect, 4 lost, 130 SIGINT and 143 SIGTERM (script mode). Errors that were never classified are treated
//! as a lost connection, the most common cause of an unexpected failure.

use std::fmt;
use std::process::ExitCode;

/// Why a run failed, as far as the exit code is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The server said no: `-u` login refused (exit 1, as for a command
    /// that completed NO or BAD).
    Refused,
    /// Bad flags, a bad server argument, an unreadable local file, or a
    /// script that cannot be sent as written (exit 2).
    Usage,
    /// No session could be set up: resolution, TCP connect, TLS handshake,
    /// certificate verification, STARTTLS refused or tampered with, a
    /// greeting of BYE (exit 3).
    Connect,
    /// The session broke after it was set up: connection closed or reset,
    /// protocol error, timeout (exit 4).
    Lost,
}

impl Class {
    pub fn exit_code(self) -> u8 {
        match self {
            Class::Refused => COMMAND_FAILED,
            Class::Usage => 2,
            Class::Connect => 3,
            Class::Lost => 4,
        }
    }
}

/// A classified failure. Its message is complete in itself: it is printed
/// as the single line the user sees.
#[derive(Debug)]
pub struct Fail {
    pub class: Class,
    pub message: String,
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fail {}

pub fn refused(message: impl Into<String>) -> anyhow::Error {
    Fail {
        class: Class::Refused,
        message: message.into(),
    }
    .into()
}

pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Fail {
        class: Class::Usage,
        message: message.into(),
    }
    .into()
}

pub fn connect(message: impl Into<String>) -> anyhow::Error {
    Fail {
        class: Class::Connect,
        message: message.into(),
    }
    .into()
}

pub fn lost(message: impl Into<String>) -> anyhow::Error {
    Fail {
        class: Class::Lost,
        message: message.into(),
    }
    .into()
}

/// Exit code 1: the run went through, but a command completed NO or BAD.
pub const COMMAND_FAILED: u8 = 1;

/// Exit code 5: `--expiry-warn DAYS` and a certificate of the chain
/// expires within DAYS (the run itself went through).
pub const CERT_EXPIRING: u8 = 5;

/// Script or `-c` mode ended by SIGINT (Ctrl-C), after a LOGOUT where the
/// wire allowed one: 128 + 2, what shells report for a death by SIGINT,
/// so `cmd || echo failed` and `$?` read as they do for any tool.
pub const INTERRUPTED: u8 = 130;

/// The same for SIGTERM: 128 + 15.
pub const TERMINATED: u8 = 143;

/// Writes one line to stderr. Unlike `eprintln!`, a stderr nobody reads
/// any more (`imaptalk … 2>&1 | head`) is not a panic: the line is lost,
/// as it is for every Unix filter.
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The code for an error that ended the run.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    ExitCode::from(class_of(err).exit_code())
}

fn class_of(err: &anyhow::Error) -> Class {
    err.chain()
        .find_map(|e| e.downcast_ref::<Fail>().map(|f| f.class))
        .unwrap_or(Class::Lost)
}

/// Writing to a closed stdout (`imaptalk … | head`) is how a pipeline says
/// "enough": it ends the run quietly, as it does for every Unix filter.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(crate::platform::console::is_broken_pipe)
    })
}

/// The one line printed for an error: the first classified message if
/// there is one (it already says everything), else the whole chain.
pub fn message(err: &anyhow::Error) -> String {
    if let Some(f) = err.chain().find_map(|e| e.downcast_ref::<Fail>()) {
        return f.message.clone();
    }
    format!("{err:#}")
}
