#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match imaptalk::app::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version: stdout, 0
        Err(e) => {
            imaptalk::error::say(&imaptalk::app::cli::usage_line(&e));
            return ExitCode::from(imaptalk::error::Class::Usage.exit_code());
        }
    };
    match imaptalk::run(cli) {
        Ok(code) => code,
        Err(err) if imaptalk::error::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            imaptalk::error::say(&format!("imaptalk: {}", imaptalk::error::message(&err)));
            imaptalk::error::exit_code(&err)
        }
    }
}
