//! What `--check` was asked to check: the ports, and how the report is
//! written. Decided by `app::cli`; no IO.

use crate::app::target::{IMAP_PORT, IMAPS_PORT};

/// What `--check` was asked to do.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// The ports to check, in order.
    pub ports: Vec<Port>,
    /// `--json`.
    pub json: bool,
    /// `--strict`: a WARN fails the check too.
    pub strict: bool,
}

/// A port and how it is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    pub number: u16,
    /// TLS from the first byte (993); else plaintext, then STARTTLS.
    pub implicit: bool,
}

/// The ports to check: the one named (implicit TLS when 993, `imaps://`
/// or `--tls` say so), or both 143 and 993 when none is named.
pub fn plan(port: Option<u16>, implicit: bool) -> Vec<Port> {
    match port {
        Some(number) => vec![Port { number, implicit }],
        None => vec![
            Port {
                number: IMAP_PORT,
                implicit: false,
            },
            Port {
                number: IMAPS_PORT,
                implicit: true,
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_port_both_are_checked() {
        assert_eq!(
            plan(None, false),
            [
                Port {
                    number: 143,
                    implicit: false
                },
                Port {
                    number: 993,
                    implicit: true
                }
            ]
        );
        assert_eq!(
            plan(Some(1993), true),
            [Port {
                number: 1993,
                implicit: true
            }]
        );
    }
}
