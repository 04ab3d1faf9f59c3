//! The system shell, for `--oauth2-token-command CMD`: CMD is run the way
//! `system()` runs it on each platform, so it is written in the syntax the
//! user's other tools use there.

use std::process::Command;

/// The shell's name, for messages (`cannot run sh: …`).
#[cfg(unix)]
pub const SHELL: &str = "sh";
#[cfg(windows)]
pub const SHELL: &str = "cmd.exe";

/// `sh -c CMD`.
#[cfg(unix)]
pub fn shell(cmd: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd);
    c
}

/// `cmd.exe /S /C "CMD"`: cmd.exe parses its own command line, so CMD goes
/// in as written, not quoted the way a program's argument would be; `/S`
/// makes cmd.exe take off just the outer quotes and run the rest
/// unchanged, quotes inside CMD included (`"C:\Program Files\x.exe" -t`).
/// %ComSpec% names cmd.exe where Windows is not on C:.
#[cfg(windows)]
pub fn shell(cmd: &str) -> Command {
    use std::os::windows::process::CommandExt;
    let comspec = std::env::var_os("ComSpec")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "cmd.exe".into());
    let mut c = Command::new(comspec);
    c.raw_arg(format!("/S /C \"{cmd}\""));
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_runs_the_command_line_as_written() {
        // Quotes, spaces and an exit code, in syntax both shells read.
        let out = shell("echo \"a  b\"&& exit 3").output().unwrap();
        assert_eq!(out.status.code(), Some(3));
        let text = String::from_utf8_lossy(&out.stdout);
        // cmd.exe's echo keeps the quotes; sh takes them off.
        let want = if cfg!(windows) { "\"a  b\"" } else { "a  b" };
        assert_eq!(text.trim_end(), want);
    }
}
