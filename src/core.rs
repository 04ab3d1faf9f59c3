//! The conversation's rules, without IO or a terminal: what `--pipeline`
//! may send ahead, the SASL payloads.

pub mod pipeline;
pub mod sasl;
