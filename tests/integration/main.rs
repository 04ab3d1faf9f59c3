//! Integration tests: the built `imaptalk` binary against scripted servers,
//! a real Dovecot and a real pseudo-terminal. One test binary, one link.

mod auth_cases;
mod check_cases;
mod cli_cases;
mod compress_cases;
mod conn_cases;
mod diag_cases;
#[cfg(unix)]
mod dovecot_cases;
mod fileliteral_cases;
mod generation_cases;
#[cfg(unix)]
mod hostile_cases;
mod idle_cases;
#[cfg(unix)]
mod literal_display_cases;
mod literal_property_cases;
#[cfg(target_os = "linux")]
mod memory_cases;
mod notes_cases;
mod output_cases;
mod pipeline_cases;
#[cfg(unix)]
mod proxy_cases;
#[cfg(unix)]
mod pty_cases;
#[cfg(unix)]
mod sasl_cases;
mod scripted_cases;
#[cfg(unix)]
mod signal_cases;
mod support;
mod tls_cases;
mod transcript_cases;
#[cfg(unix)]
mod tunnel_cases;
