//! The IMAP protocol, without IO: the server's bytes framed into events
//! (and a mail client's, for `--listen`), typed lines into commands, capabilities, mailbox names.

pub mod astring;
pub mod caps;
pub mod client_framer;
pub mod command;
pub mod framer;
pub mod literal;
pub mod mutf7;
