//! The server argument: `host`, `host:port`, `[v6]:port`, `imap://…`,
//! `imaps://…`.

use std::net::IpAddr;

pub const IMAP_PORT: u16 = 143;
pub const IMAPS_PORT: u16 = 993;

/// Which scheme, if any, the argument was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Imap,
    Imaps,
}

/// A parsed server argument. `host` carries no brackets, so it can be
/// resolved and used as a TLS name directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub scheme: Option<Scheme>,
}

impl Target {
    pub fn is_ip(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }

    /// `host:port`, bracketing IPv6 addresses, for messages.
    pub fn display(&self) -> String {
        crate::text::host_port(&self.host, self.port)
    }
}

pub fn parse(arg: &str) -> Result<Target, String> {
    let (scheme, rest) = if let Some(rest) = strip_prefix_ci(arg, "imaps://") {
        (Some(Scheme::Imaps), rest)
    } else if let Some(rest) = strip_prefix_ci(arg, "imap://") {
        (Some(Scheme::Imap), rest)
    } else if arg.contains("://") {
        return Err(format!(
            "'{arg}': unknown scheme (use imap:// or imaps://, or just host:port)"
        ));
    } else {
        (None, arg)
    };
    // A URL may end in '/'; a mailbox path is something we do not act on.
    let rest = if scheme.is_some() {
        match rest.split_once('/') {
            Some((authority, "")) => authority,
            Some(_) => {
                return Err(format!(
                    "'{arg}': paths in the URL are not supported; give the server only"
                ));
            }
            None => rest,
        }
    } else {
        rest
    };
    if rest.contains('@') {
        return Err(format!(
            "'{arg}': a user name in the server argument is not supported; log in with LOGIN after connecting"
        ));
    }
    let default_port = match scheme {
        Some(Scheme::Imaps) => IMAPS_PORT,
        _ => IMAP_PORT,
    };
    let (host, port) = split_host_port(rest).map_err(|e| format!("'{arg}': {e}"))?;
    let port = match port {
        Some(p) => parse_port(p).map_err(|e| format!("'{arg}': {e}"))?,
        None => default_port,
    };
    if host.is_empty() {
        return Err(format!("'{arg}': no host name"));
    }
    Ok(Target {
        host: host.to_string(),
        port,
        scheme,
    })
}

/// Whether the server argument names a port (`host:port`,
/// `imaps://host:993`): `--check` then checks that port alone, and both
/// 143 and 993 when it names none. Only for an argument [`parse`] took.
pub fn names_port(arg: &str) -> bool {
    let rest = strip_prefix_ci(arg, "imaps://")
        .or_else(|| strip_prefix_ci(arg, "imap://"))
        .unwrap_or(arg);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    split_host_port(rest).is_ok_and(|(_, port)| port.is_some())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = s.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or("missing ']' after an IPv6 address")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("'{host}' is not an IPv6 address"));
        }
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err("expected ':PORT' after ']'".into()),
            },
        };
    }
    match s.matches(':').count() {
        0 => Ok((s, None)),
        1 => {
            let (h, p) = s.split_once(':').unwrap_or((s, ""));
            Ok((h, Some(p)))
        }
        // Several colons: a bare IPv6 address, which cannot carry a port.
        _ if s.parse::<std::net::Ipv6Addr>().is_ok() => Ok((s, None)),
        _ => Err("an IPv6 address with a port must be written [ADDRESS]:PORT".into()),
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("'{p}' is not a port number (1-65535)")),
        Ok(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(host: &str, port: u16, scheme: Option<Scheme>) -> Target {
        Target {
            host: host.into(),
            port,
            scheme,
        }
    }

    #[test]
    fn whether_a_port_is_named() {
        for yes in ["h:143", "imaps://h:993/", "[::1]:1993", "IMAP://h:1"] {
            assert!(names_port(yes), "{yes}");
        }
        for no in ["h", "imaps://h", "imap://h/", "[::1]", "::1", "2001:db8::1"] {
            assert!(!names_port(no), "{no}");
        }
    }

    #[test]
    fn forms() {
        assert_eq!(
            parse("mail.example.com"),
            Ok(t("mail.example.com", 143, None))
        );
        assert_eq!(
            parse("imap.gmail.com:993"),
            Ok(t("imap.gmail.com", 993, None))
        );
        assert_eq!(parse("[::1]:1143"), Ok(t("::1", 1143, None)));
        assert_eq!(parse("[2001:db8::1]"), Ok(t("2001:db8::1", 143, None)));
        assert_eq!(parse("::1"), Ok(t("::1", 143, None)));
        assert_eq!(parse("imap://h"), Ok(t("h", 143, Some(Scheme::Imap))));
        assert_eq!(parse("IMAPS://h/"), Ok(t("h", 993, Some(Scheme::Imaps))));
        assert_eq!(
            parse("imaps://[::1]:10993"),
            Ok(t("::1", 10993, Some(Scheme::Imaps)))
        );
        assert_eq!(parse("127.0.0.1:143").unwrap().display(), "127.0.0.1:143");
        assert_eq!(parse("[::1]:143").unwrap().display(), "[::1]:143");
    }

    #[test]
    fn errors() {
        for bad in [
            "h:0",
            "h:99999",
            "h:",
            ":143",
            "pop3://h",
            "imap://h/INBOX",
            "imap://u@h",
            "[::1",
            "[nope]:1",
            "1:2:3:zz",
            "[::1]x",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }
}
