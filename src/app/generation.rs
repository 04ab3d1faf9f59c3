//! Shell completions and the man page, generated at run time from the one
//! clap definition in [`crate::app::cli`] (the hidden `--generate KIND` flag).

use crate::app::cli::{Cli, Generate};
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::Write;

/// Writes the requested completion script or man page to stdout. An I/O
/// error (a closed pipe included) is returned for `main` to map.
pub fn write(kind: Generate) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    // Rendered into memory first: clap_complete panics on a write error, and
    // a closed stdout must end quietly.
    let mut buf = Vec::new();
    let shell = match kind {
        Generate::CompleteBash => Shell::Bash,
        Generate::CompleteZsh => Shell::Zsh,
        Generate::CompleteFish => Shell::Fish,
        Generate::CompleteElvish => Shell::Elvish,
        Generate::CompletePowershell => Shell::PowerShell,
        Generate::Man => {
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            return emit(&buf);
        }
    };
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, &mut buf);
    emit(&buf)
}

fn emit(buf: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(buf)?;
    out.flush()?;
    Ok(())
}
