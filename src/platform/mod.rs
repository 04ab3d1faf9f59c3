//! What differs between Unix and Windows, one module per concern, so that
//! the rest of imaptalk is written once: nothing outside `platform` (and
//! the signal handling in `app::signals`) names a `cfg(unix)` or
//! `cfg(windows)`.
//!
//! - [`files`]: files private to the user, the home directory, the
//!   history's directory, temporary files that vanish, character devices.
//! - [`console`]: colour on the Windows console, whether the terminal can
//!   show the lock symbol, the terminal mode put back after the editor,
//!   raw bytes to a console, a closed stdout pipe.
//! - [`net`]: the socket option that wakes a reader only once enough
//!   has arrived (`SO_RCVLOWAT`).
//! - [`process`]: the shell that runs `--oauth2-token-command`.
//!
//! Shared, like `text` and `error`: any layer may use it, and it uses none.

pub mod console;
pub mod files;
pub mod net;
pub mod process;
