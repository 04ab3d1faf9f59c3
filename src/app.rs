//! The program around the conversation: flags, the REPL and script
//! drivers, the proxy (`--listen`), rendering, diagnostics, credentials, completion, help.

pub mod auth;
pub mod certinfo;
pub mod check;
pub mod cli;
pub mod complete;
pub mod diag;
pub mod driver;
pub mod generation;
pub mod progress;
pub mod proxy;
pub mod render;
pub mod repl;
pub mod script;
pub mod signals;
pub mod target;
