#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = imaptalk::cli::Cli::parse();
    match imaptalk::run(cli) {
        Ok(code) => code,
        Err(err) if imaptalk::error::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            imaptalk::error::say(&format!("imaptalk: {}", imaptalk::error::message(&err)));
            imaptalk::error::exit_code(&err)
        }
    }
}
