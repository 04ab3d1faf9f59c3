//! Non-interactive input: a script on stdin or `-c` commands.
//!
//! Stdin is read as raw bytes on a plain thread, not through rustyline
//! (which drops invalid UTF-8 and applies backspaces): a script may carry
//! 8-bit literal data that must reach the server untouched. The channel is
//! bounded, so a long script is read only as fast as it is sent.

use crate::core::session::Input;
use std::io::Read;
use tokio::sync::mpsc;

const CHUNK: usize = 64 * 1024;

/// Reads stdin on its own thread into the channel.
pub fn stdin() -> mpsc::Receiver<Input> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut buf = vec![0; CHUNK];
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Input::Data(buf)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    crate::error::say(&format!("imaptalk: cannot read the script from stdin: {e}"));
                    break;
                }
            }
        }
        let _ = tx.blocking_send(Input::Eof);
    });
    rx
}

/// `-c` commands, one line each, as if they were a script.
pub fn commands(commands: &[String]) -> mpsc::Receiver<Input> {
    let mut bytes = Vec::new();
    for c in commands {
        bytes.extend_from_slice(c.as_bytes());
        bytes.push(b'\n');
    }
    let (tx, rx) = mpsc::channel(2);
    // A fresh channel with room for two: these sends cannot fail.
    let _ = tx.try_send(Input::Data(bytes));
    let _ = tx.try_send(Input::Eof);
    rx
}
