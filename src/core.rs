//! The conversation's rules, without IO or a terminal: the session's
//! options, the session core every driver runs on, the meta-commands,
//! what `--pipeline` may send ahead, the SASL payloads.

pub mod compress;
pub mod meta;
pub mod options;
pub mod pipeline;
pub mod sasl;
pub mod session;
