//! Bytes to and from the server and local files: TCP, TLS, the connection
//! and its COMPRESS layer, proxies, the `--log` transcript, file literals.

/// How much is read from the socket at once. Large reads keep the number
/// of system calls (and TLS records decrypted per call) low when a big
/// literal streams through.
pub const READ_SIZE: usize = 128 * 1024;

pub mod compress;
pub mod connection;
pub mod fileliteral;
pub mod listen;
pub mod proxy;
pub mod tcp;
pub mod tls;
pub mod transcript;
