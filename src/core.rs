//! The conversation's rules, without IO or a terminal: the session's
//! options, what `--pipeline` may send ahead, the SASL payloads.

pub mod options;
pub mod pipeline;
pub mod sasl;
