//! What the session is asked to do, as decided from the flags by
//! [`app::cli`](crate::app::cli): how the connection is secured, where the
//! commands come from, and how commands are sent and shown.

use std::time::Duration;

/// How the connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    Plain,
    Tls,
    StartTls,
}

/// Where the commands come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A person at a terminal: the line-editing prompt.
    Interactive,
    /// A script on stdin.
    Stdin,
    /// `-c` commands.
    Commands(Vec<String>),
}

/// How the session runs the conversation.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub security: Security,
    /// `--timeout`: for each response (and each send) in script mode.
    pub timeout: Option<Duration>,
    pub tag_prefix: String,
    /// `--echo`: each command as sent, on stdout.
    pub echo: bool,
    /// `--timing`: each command's time on stderr.
    pub timing: bool,
    /// Script mode: send commands without waiting for each completion.
    pub pipeline: bool,
    /// `--compress`: COMPRESS DEFLATE after login when offered.
    pub compress: bool,
    /// `--allow-plaintext-auth`: `-u` may send its secret unencrypted.
    pub allow_plaintext_auth: bool,
    /// `--spool-limit`: the most a literal read once (stdin, a pipe) is
    /// copied to a temporary file.
    pub spool_limit: u64,
}
