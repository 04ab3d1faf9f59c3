//! `--check`'s report, without IO: findings with their stable ids and
//! levels, the rules that decide a level (expiry, key sizes, plaintext
//! logins, capabilities that change, latency), the table of notable
//! extensions, and the two ways the report is written: aligned (and
//! coloured) text for people, one JSON document for monitoring.
//!
//! Text that came from the server or a certificate is escaped (with
//! [`crate::text`]) before it goes into a finding's sentence; a finding's
//! values keep it as it was, and JSON escapes every character outside
//! printable ASCII, so neither form can drive a terminal.

use std::fmt::Write as _;
use std::time::Duration;

/// How a finding judges what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

/// A value of a finding, for JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    /// Milliseconds and the like; written with up to three decimals.
    Num(f64),
    Bool(bool),
    List(Vec<Value>),
    /// Pairs (JSON object), in order.
    Map(Vec<(String, Value)>),
    Null,
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Num(x)
    }
}

impl From<Vec<String>> for Value {
    fn from(v: Vec<String>) -> Value {
        Value::List(v.into_iter().map(Value::Str).collect())
    }
}

/// Milliseconds, as JSON carries durations.
pub fn ms(d: Duration) -> Value {
    Value::Num((d.as_secs_f64() * 1_000_000.0).round() / 1000.0)
}

/// One thing checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Stable, for monitoring: `tls.993.expiry`, `starttls.143.injection`.
    pub id: String,
    pub level: Level,
    /// What was found, a sentence (server text escaped).
    pub text: String,
    /// For WARN and FAIL: what to change.
    pub fix: Option<String>,
    /// Lines shown under the finding on a terminal (the extension table).
    pub detail: Vec<String>,
    pub values: Vec<(&'static str, Value)>,
}

impl Finding {
    pub fn new(id: impl Into<String>, level: Level, text: impl Into<String>) -> Finding {
        Finding {
            id: id.into(),
            level,
            text: text.into(),
            fix: None,
            detail: Vec::new(),
            values: Vec::new(),
        }
    }

    pub fn ok(id: impl Into<String>, text: impl Into<String>) -> Finding {
        Finding::new(id, Level::Ok, text)
    }

    pub fn warn(id: impl Into<String>, text: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding::new(id, Level::Warn, text).fix(fix)
    }

    pub fn fail(id: impl Into<String>, text: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding::new(id, Level::Fail, text).fix(fix)
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }

    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Finding {
        self.values.push((key, value.into()));
        self
    }
}

/// The whole report: findings in groups, in the order they are shown.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The server as given.
    pub server: String,
    groups: Vec<(String, Vec<Finding>)>,
}

impl Report {
    pub fn new(server: impl Into<String>) -> Report {
        Report {
            server: server.into(),
            groups: Vec::new(),
        }
    }

    /// Makes sure `group` exists, so that groups are shown in the order
    /// they are declared whatever order the probes finish in.
    pub fn group(&mut self, group: &str) {
        if !self.groups.iter().any(|g| g.0 == group) {
            self.groups.push((group.to_string(), Vec::new()));
        }
    }

    pub fn add(&mut self, group: &str, f: Finding) {
        self.group(group);
        if let Some(g) = self.groups.iter_mut().find(|g| g.0 == group) {
            g.1.push(f);
        }
    }

    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.groups.iter().flat_map(|g| g.1.iter())
    }

    pub fn find(&self, id: &str) -> Option<&Finding> {
        self.findings().find(|f| f.id == id)
    }

    /// How many findings of each level: OK, WARN, FAIL.
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |l| self.findings().filter(|f| f.level == l).count();
        (n(Level::Ok), n(Level::Warn), n(Level::Fail))
    }

    /// The worst level found (OK for an empty report).
    pub fn worst(&self) -> Level {
        self.findings().map(|f| f.level).max().unwrap_or(Level::Ok)
    }

    /// 0 when nothing failed, 1 when something did (`--strict`: or warned).
    pub fn exit_code(&self, strict: bool) -> u8 {
        match self.worst() {
            Level::Fail => 1,
            Level::Warn if strict => 1,
            _ => 0,
        }
    }

    /// For people: one finding per line, grouped, levels and ids aligned,
    /// the fix on the line below; a summary at the end.
    pub fn text(&self, color: bool) -> String {
        let width = self
            .findings()
            .map(|f| f.id.chars().count())
            .max()
            .unwrap_or(0)
            .min(36);
        let paint = |level: Level| -> (String, String) {
            if !color {
                return (String::new(), String::new());
            }
            let c = match level {
                Level::Ok => anstyle::AnsiColor::Green,
                Level::Warn => anstyle::AnsiColor::Yellow,
                Level::Fail => anstyle::AnsiColor::Red,
            };
            let s = anstyle::Style::new().fg_color(Some(c.into())).bold();
            (s.render().to_string(), s.render_reset().to_string())
        };
        let bold = |t: &str| -> String {
            if color {
                let s = anstyle::Style::new().bold();
                format!("{}{t}{}", s.render(), s.render_reset())
            } else {
                t.to_string()
            }
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}",
            bold(&format!(
                "imaptalk --check {}",
                crate::text::escape_str(&self.server)
            ))
        );
        let indent = " ".repeat(2 + 4 + 2 + width + 2);
        for (group, findings) in &self.groups {
            if findings.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{}", bold(group));
            for f in findings {
                let (on, off) = paint(f.level);
                let _ = writeln!(
                    out,
                    "  {on}{:<4}{off}  {:<width$}  {}",
                    f.level.name(),
                    f.id,
                    f.text
                );
                for line in &f.detail {
                    let _ = writeln!(out, "{indent}{line}");
                }
                if let Some(fix) = &f.fix {
                    let _ = writeln!(out, "{indent}fix: {fix}");
                }
            }
        }
        let (ok, warn, fail) = self.counts();
        let (on, off) = paint(self.worst());
        let _ = writeln!(
            out,
            "{on}{}{off}: {ok} OK, {warn} WARN, {fail} FAIL",
            self.worst().name()
        );
        out
    }

    /// For monitoring: one JSON document (pure ASCII).
    pub fn json(&self) -> String {
        let (ok, warn, fail) = self.counts();
        let mut out = String::from("{\"server\":");
        json_str(&self.server, &mut out);
        let _ = write!(
            out,
            ",\"imaptalk\":\"{}\",\"result\":\"{}\",\"counts\":{{\"ok\":{ok},\"warn\":{warn},\"fail\":{fail}}},\"findings\":[",
            env!("CARGO_PKG_VERSION"),
            self.worst().name()
        );
        for (i, f) in self.findings().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("\n{\"id\":");
            json_str(&f.id, &mut out);
            let group = self
                .groups
                .iter()
                .find(|g| g.1.iter().any(|x| std::ptr::eq(x, f)))
                .map_or("", |g| g.0.as_str());
            out.push_str(",\"group\":");
            json_str(group, &mut out);
            let _ = write!(out, ",\"level\":\"{}\",\"message\":", f.level.name());
            json_str(&f.text, &mut out);
            out.push_str(",\"fix\":");
            match &f.fix {
                Some(fix) => json_str(fix, &mut out),
                None => out.push_str("null"),
            }
            out.push_str(",\"values\":");
            json_value(
                &Value::Map(
                    f.values
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect(),
                ),
                &mut out,
            );
            out.push('}');
        }
        out.push_str("\n]}\n");
        out
    }
}

/// A JSON string: quotes, backslashes and every character outside
/// printable ASCII escaped (`\u001b`, `\u202e`, surrogate pairs beyond
/// the BMP), so the document is ASCII and safe to show anywhere.
pub fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

fn json_value(v: &Value, out: &mut String) {
    match v {
        Value::Str(s) => json_str(s, out),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Num(x) if x.is_finite() => {
            let _ = write!(out, "{x}");
        }
        Value::Num(_) | Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(item, out);
            }
            out.push(']');
        }
        Value::Map(pairs) => {
            out.push('{');
            for (i, (k, item)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(k, out);
                out.push(':');
                json_value(item, out);
            }
            out.push('}');
        }
    }
}

/// Under this many days to expiry a certificate is a WARN...
pub const EXPIRY_WARN_DAYS: i64 = 21;
/// ...and under this many (or expired) a FAIL.
pub const EXPIRY_FAIL_DAYS: i64 = 7;

pub fn expiry_level(days_left: i64) -> Level {
    if days_left < EXPIRY_FAIL_DAYS {
        Level::Fail
    } else if days_left < EXPIRY_WARN_DAYS {
        Level::Warn
    } else {
        Level::Ok
    }
}

/// A server key's algorithm, as `--check` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Ec,
    Ed25519,
    Other,
}

/// RSA under 2048 bits and EC under 256 are breakable or refused by
/// clients (NIST SP 800-57, the CA/Browser Forum's minimums).
pub fn key_level(kind: KeyKind, bits: usize) -> Level {
    match kind {
        KeyKind::Rsa if bits < 2048 => Level::Fail,
        KeyKind::Ec if bits < 256 => Level::Fail,
        KeyKind::Rsa | KeyKind::Ec | KeyKind::Ed25519 => Level::Ok,
        KeyKind::Other => Level::Warn,
    }
}

/// The extensions a mail admin wants to know about, in the order shown.
pub const NOTABLE: [&str; 20] = [
    "IMAP4rev2",
    "IDLE",
    "CONDSTORE",
    "QRESYNC",
    "MOVE",
    "UIDPLUS",
    "SPECIAL-USE",
    "COMPRESS=DEFLATE",
    "LITERAL+",
    "LITERAL-",
    "ID",
    "NAMESPACE",
    "QUOTA",
    "ACL",
    "METADATA",
    "UTF8=ACCEPT",
    "SASL-IR",
    "ENABLE",
    "ESEARCH",
    "LIST-STATUS",
];

pub fn has(caps: &[String], cap: &str) -> bool {
    caps.iter().any(|c| c.eq_ignore_ascii_case(cap))
}

/// The extension table: one row per notable extension, one column per
/// list given (`-` where that list is unknown). The first line is the
/// header.
pub fn extension_table(columns: &[(&str, Option<&[String]>)]) -> Vec<String> {
    let mut rows = Vec::new();
    let mut header = format!("{:<18}", "extension");
    for (name, _) in columns {
        let _ = write!(header, " {name:<11}");
    }
    rows.push(header.trim_end().to_string());
    for ext in NOTABLE {
        let mut row = format!("{ext:<18}");
        for (_, caps) in columns {
            let cell = match caps {
                None => "-",
                Some(c) if has(c, ext) => "yes",
                Some(_) => "no",
            };
            let _ = write!(row, " {cell:<11}");
        }
        rows.push(row.trim_end().to_string());
    }
    rows
}

/// Before TLS: a way to send a password in plaintext is offered when
/// `LOGINDISABLED` is absent (LOGIN works) or `AUTH=PLAIN` / `AUTH=LOGIN`
/// is advertised. Returns what is offered (empty: nothing).
pub fn plaintext_logins(caps: &[String]) -> Vec<String> {
    let mut offered = Vec::new();
    if !has(caps, "LOGINDISABLED") {
        offered.push("LOGIN (no LOGINDISABLED)".to_string());
    }
    for m in ["AUTH=PLAIN", "AUTH=LOGIN"] {
        if has(caps, m) {
            offered.push(m.to_string());
        }
    }
    offered
}

/// Capabilities expected to differ between plaintext and TLS: STARTTLS
/// and LOGINDISABLED go away, login mechanisms may appear.
fn expected_change(cap: &str) -> bool {
    let c = cap.to_ascii_uppercase();
    c == "STARTTLS" || c == "LOGINDISABLED" || c.starts_with("AUTH=") || c == "SASL-IR"
}

/// What changed between the capabilities before TLS and after, beyond
/// the expected: (only before TLS, only after). Anything else differing
/// means that what answers in plaintext is not what answers over TLS
/// (a middlebox rewriting the plaintext list, another server behind a
/// TLS proxy), and the plaintext list cannot be trusted.
pub fn suspicious_changes(plain: &[String], tls: &[String]) -> (Vec<String>, Vec<String>) {
    let gone = plain
        .iter()
        .filter(|c| !expected_change(c) && !has(tls, c))
        .cloned()
        .collect();
    let new = tls
        .iter()
        .filter(|c| !expected_change(c) && !has(plain, c))
        .cloned()
        .collect();
    (gone, new)
}

/// A greeting later than this is a WARN: clients wait for it on every
/// connection.
pub const GREETING_SLOW: Duration = Duration::from_secs(2);
/// A median NOOP round trip above this is a WARN.
pub const NOOP_SLOW: Duration = Duration::from_secs(1);
/// How many NOOP round trips the latency is measured over.
pub const NOOPS: usize = 10;

/// Median and worst of round-trip times (None for none).
pub fn latency(samples: &[Duration]) -> Option<(Duration, Duration)> {
    let mut s = samples.to_vec();
    s.sort();
    let worst = *s.last()?;
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2
    };
    Some((median, worst))
}

/// The pairs of an `* ID (…)` response (RFC 2971), values None for NIL;
/// None when the line is not an ID response or does not parse. Strings
/// may be quoted or literals (`{n}` CRLF, then the bytes, as the
/// response's text holds them).
pub fn parse_id(response: &[u8]) -> Option<Vec<(String, Option<String>)>> {
    let text = response.strip_prefix(b"* ")?;
    let (word, rest) = text.split_at(text.iter().position(|&b| b == b' ')?);
    if !word.eq_ignore_ascii_case(b"ID") {
        return None;
    }
    let rest = rest.trim_ascii();
    if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(b"NIL") {
        return Some(Vec::new());
    }
    let mut p = Parser {
        b: rest.strip_prefix(b"(")?,
        i: 0,
    };
    let mut items = Vec::new();
    loop {
        p.skip_spaces();
        if p.b.get(p.i) == Some(&b')') {
            break;
        }
        items.push(p.string()?);
        if items.len() > 64 {
            return None;
        }
    }
    let mut pairs = Vec::new();
    for pair in items.chunks(2) {
        let key = pair.first()?.clone()?;
        pairs.push((key, pair.get(1).cloned().flatten()));
    }
    Some(pairs)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        while self.b.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }

    /// A quoted string, a literal or NIL.
    fn string(&mut self) -> Option<Option<String>> {
        match *self.b.get(self.i)? {
            b'"' => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match *self.b.get(self.i)? {
                        b'"' => break,
                        b'\\' => {
                            self.i += 1;
                            out.push(*self.b.get(self.i)?);
                        }
                        c => out.push(c),
                    }
                    self.i += 1;
                }
                self.i += 1;
                Some(Some(String::from_utf8_lossy(&out).into_owned()))
            }
            b'{' => {
                let close = self.i + self.b[self.i..].iter().position(|&b| b == b'}')?;
                let n: usize = std::str::from_utf8(&self.b[self.i + 1..close])
                    .ok()?
                    .trim_end_matches('+')
                    .parse()
                    .ok()?;
                let start = close + 1 + usize::from(self.b.get(close + 1) == Some(&b'\r')) + 1;
                let data = self.b.get(start..start.checked_add(n)?)?;
                self.i = start + n;
                Some(Some(String::from_utf8_lossy(data).into_owned()))
            }
            _ => {
                let word = self.b.get(self.i..self.i + 3)?;
                if !word.eq_ignore_ascii_case(b"NIL") {
                    return None;
                }
                self.i += 3;
                Some(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn expiry_thresholds() {
        assert_eq!(expiry_level(90), Level::Ok);
        assert_eq!(expiry_level(21), Level::Ok);
        assert_eq!(expiry_level(20), Level::Warn);
        assert_eq!(expiry_level(7), Level::Warn);
        assert_eq!(expiry_level(6), Level::Fail);
        assert_eq!(expiry_level(0), Level::Fail);
        assert_eq!(expiry_level(-3), Level::Fail);
    }

    #[test]
    fn key_sizes() {
        assert_eq!(key_level(KeyKind::Rsa, 1024), Level::Fail);
        assert_eq!(key_level(KeyKind::Rsa, 2048), Level::Ok);
        assert_eq!(key_level(KeyKind::Ec, 256), Level::Ok);
        assert_eq!(key_level(KeyKind::Ec, 160), Level::Fail);
        assert_eq!(key_level(KeyKind::Ed25519, 256), Level::Ok);
        assert_eq!(key_level(KeyKind::Other, 0), Level::Warn);
    }

    #[test]
    fn plaintext_login_offers() {
        assert!(plaintext_logins(&caps("IMAP4rev1 STARTTLS LOGINDISABLED")).is_empty());
        assert_eq!(
            plaintext_logins(&caps("IMAP4rev1 STARTTLS AUTH=PLAIN")),
            ["LOGIN (no LOGINDISABLED)", "AUTH=PLAIN"]
        );
        assert_eq!(
            plaintext_logins(&caps("IMAP4rev1 LOGINDISABLED auth=login")),
            ["AUTH=LOGIN"]
        );
    }

    #[test]
    fn capability_changes() {
        let plain = caps("IMAP4rev1 SASL-IR ID ENABLE IDLE STARTTLS LOGINDISABLED");
        let tls = caps("IMAP4rev1 SASL-IR ID ENABLE IDLE AUTH=PLAIN AUTH=SCRAM-SHA-256");
        let (gone, new) = suspicious_changes(&plain, &tls);
        assert!(gone.is_empty() && new.is_empty(), "{gone:?} {new:?}");
        let tls = caps("IMAP4rev1 ID X-BACKEND AUTH=PLAIN");
        let (gone, new) = suspicious_changes(&plain, &tls);
        assert_eq!(gone, ["ENABLE", "IDLE"]);
        assert_eq!(new, ["X-BACKEND"]);
    }

    #[test]
    fn latency_median_and_worst() {
        let ms = Duration::from_millis;
        assert_eq!(latency(&[]), None);
        assert_eq!(latency(&[ms(5), ms(1), ms(3)]), Some((ms(3), ms(5))));
        assert_eq!(latency(&[ms(4), ms(2), ms(9), ms(1)]), Some((ms(3), ms(9))));
    }

    #[test]
    fn id_responses() {
        assert_eq!(
            parse_id(b"* ID (\"name\" \"Dovecot\" \"version\" NIL)").unwrap(),
            [
                ("name".to_string(), Some("Dovecot".to_string())),
                ("version".to_string(), None)
            ]
        );
        assert_eq!(parse_id(b"* ID NIL").unwrap(), []);
        assert_eq!(
            parse_id(b"* ID (\"a\\\"b\" {3}\r\nx\x1by)").unwrap(),
            [("a\"b".to_string(), Some("x\x1by".to_string()))]
        );
        assert_eq!(parse_id(b"* OK hi"), None);
        assert_eq!(parse_id(b"* ID (\"unterminated)"), None);
        assert_eq!(parse_id(b"* ID (\"a\" {99}\r\nshort)"), None);
    }

    #[test]
    fn table_rows() {
        let plain = caps("IDLE STARTTLS");
        let t = extension_table(&[("before TLS", Some(&plain)), ("after login", None)]);
        assert_eq!(t.len(), NOTABLE.len() + 1);
        assert_eq!(t[0], "extension          before TLS  after login");
        assert_eq!(t[2], "IDLE               yes         -");
        assert_eq!(t[1], "IMAP4rev2          no          -");
    }

    fn sample() -> Report {
        let mut r = Report::new("mail.example.com");
        r.group("reachability");
        r.add(
            "reachability",
            Finding::ok("reach.993.192.0.2.7", "connected in 3.0 ms").with("ms", 3.0_f64),
        );
        r.add(
            "TLS 993",
            Finding::warn(
                "tls.993.expiry",
                "expires in 5 days: CN=x\\x1b[31m",
                "renew it",
            )
            .with("days", 5i64)
            .with("subject", "CN=x\x1b[31m\u{202e}\u{1F600}"),
        );
        r
    }

    #[test]
    fn verdict_and_exit_codes() {
        let mut r = sample();
        assert_eq!(r.worst(), Level::Warn);
        assert_eq!((r.exit_code(false), r.exit_code(true)), (0, 1));
        r.add(
            "TLS 993",
            Finding::fail("tls.993.chain", "incomplete", "add it"),
        );
        assert_eq!((r.exit_code(false), r.counts()), (1, (1, 1, 1)));
        assert_eq!(Report::new("x").exit_code(true), 0);
    }

    #[test]
    fn text_is_aligned_grouped_and_plain() {
        let text = sample().text(false);
        let expected = "imaptalk --check mail.example.com\n\
            reachability\n\
            \x20 OK    reach.993.192.0.2.7  connected in 3.0 ms\n\
            TLS 993\n\
            \x20 WARN  tls.993.expiry       expires in 5 days: CN=x\\x1b[31m\n\
            \x20                            fix: renew it\n\
            WARN: 1 OK, 1 WARN, 0 FAIL\n";
        assert_eq!(text, expected);
        let colored = sample().text(true);
        assert!(colored.contains("\x1b["), "{colored}");
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn json_is_escaped_and_ascii() {
        let json = sample().json();
        assert!(json.is_ascii(), "{json}");
        assert!(json.contains("\"result\":\"WARN\""), "{json}");
        assert!(
            json.contains("\"counts\":{\"ok\":1,\"warn\":1,\"fail\":0}"),
            "{json}"
        );
        assert!(
            json.contains("\"subject\":\"CN=x\\u001b[31m\\u202e\\ud83d\\ude00\""),
            "{json}"
        );
        assert!(json.contains("\"fix\":null"), "{json}");
        assert!(json.contains("\"values\":{\"ms\":3}"), "{json}");
        let mut s = String::new();
        json_str("a\"b\\c\nd", &mut s);
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\"");
    }
}
