//! Integration tests: the built `imaptalk` binary against scripted servers,
//! a real Dovecot and a real pseudo-terminal. One test binary, one link.

mod scripted_cases;
mod support;
