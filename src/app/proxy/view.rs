//! What one proxied connection looks like: on a terminal, both sides as
//! imaptalk shows a session (each line labelled with the connection and
//! the side, escaped, coloured, literals framed with their size and cut
//! short, each completion with its command's time); and the records of
//! the `--log` grammar (`io::transcript`, labelled `#N`) for stdout when it
//! is not a terminal and for `--log FILE`.
//!
//! Secrets are masked by the caller's `shown` text (the one masking rule of
//! `protocol::command`); a secret command's literal data and the rest of
//! its lines are never shown.

use super::output::Msg;
use super::records::Records;
use crate::app::render::style_for;
use crate::protocol::client_framer::{self, End};
use crate::protocol::framer::{self, LineEnd, strip_line_end};
use crate::text::{escape_into, size};
use anstyle::{AnsiColor, Style};
use std::fmt::Write as _;
use std::sync::mpsc::SyncSender;

/// On a terminal, a literal longer than this is cut short (unless `--full`).
pub use crate::app::render::CUT_LITERAL;
/// How much of a cut literal is shown: this many lines or bytes, whichever
/// comes first.
const HEAD_LINES: usize = 40;
const HEAD_BYTES: usize = 8 * 1024;
/// Literal data without a line end is shown in pieces of this size.
const PIECE: usize = 4096;

/// The view of one connection.
pub struct View {
    term: Option<Term>,
    log: Option<Records>,
}

/// The terminal rendering of one connection.
pub struct Term {
    tx: SyncSender<Msg>,
    label: String,
    color: bool,
    full: bool,
    buf: String,
    client: Side,
    server: Side,
}

/// Which side a line came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum From {
    Client,
    Server,
}

#[derive(Default)]
struct Side {
    /// Literal data since its last line end.
    pending: Vec<u8>,
    /// The literal being shown, when it is cut short.
    cut: Option<Cut>,
    /// A secret command is being sent (client side).
    secret: bool,
    /// The style of the response being shown (server side).
    style: Option<Style>,
}

/// How much of a long literal has been shown.
struct Cut {
    len: u64,
    lines: usize,
    bytes: usize,
    hiding: bool,
}

impl View {
    pub fn new(term: Option<Term>, log: Option<Records>) -> View {
        View { term, log }
    }

    /// Something that happened to the connection.
    pub fn event(&mut self, text: &str) {
        if let Some(t) = &mut self.term {
            t.event(text);
        }
        if let Some(log) = &mut self.log {
            log.event(text);
        }
    }

    /// A piece of the server's output; `note` (escaped already) follows
    /// the line that ends a response on a terminal: the command's time.
    pub fn server(&mut self, ev: &framer::Event, note: Option<&str>) {
        if let Some(t) = &mut self.term {
            t.server(ev, note);
        }
        if let Some(log) = &mut self.log {
            log.server(ev);
        }
    }

    /// A piece of what the client sent; `shown` is the masked form of a
    /// secret command's (or answer's) first line.
    pub fn client(&mut self, ev: &client_framer::Event, shown: Option<&str>) {
        if let Some(t) = &mut self.term {
            t.client(ev, shown);
        }
        if let Some(log) = &mut self.log {
            log.client_event(ev, shown);
        }
    }

    /// Hands what was shown to the output thread (before waiting).
    pub fn flush(&mut self) {
        if let Some(t) = &mut self.term {
            t.flush();
        }
        if let Some(log) = &mut self.log {
            log.flush();
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        self.flush();
    }
}

impl Term {
    pub fn new(tx: SyncSender<Msg>, n: u64, color: bool, full: bool) -> Term {
        Term {
            tx,
            label: format!("#{n}"),
            color,
            full,
            buf: String::new(),
            client: Side::default(),
            server: Side::default(),
        }
    }

    fn paint(&mut self, style: Option<Style>, text: impl FnOnce(&mut String)) {
        match style.filter(|_| self.color) {
            Some(s) => {
                let _ = write!(self.buf, "{}", s.render());
                text(&mut self.buf);
                let _ = write!(self.buf, "{}", s.render_reset());
            }
            None => text(&mut self.buf),
        }
    }

    /// `#3 C: ` and the like.
    fn prefix(&mut self, from: From, mark: char) {
        let label = std::mem::take(&mut self.label);
        self.paint(Some(Style::new().dimmed()), |b| b.push_str(&label));
        self.label = label;
        self.buf.push(' ');
        let (letter, style) = match from {
            From::Client => (
                'C',
                Style::new().bold().fg_color(Some(AnsiColor::Blue.into())),
            ),
            From::Server => ('S', Style::new().bold()),
        };
        let style = if mark == ':' {
            style
        } else {
            Style::new().dimmed()
        };
        self.paint(Some(style), |b| {
            b.push(letter);
            b.push(mark);
        });
        self.buf.push(' ');
    }

    fn note(&mut self, text: &str) {
        self.paint(Some(Style::new().dimmed()), |b| b.push_str(text));
    }

    fn event(&mut self, text: &str) {
        let label = self.label.clone();
        self.paint(Some(Style::new().dimmed()), |b| {
            b.push_str(&label);
            b.push_str(" * ");
            escape_into(text.as_bytes(), b);
        });
        self.buf.push('\n');
    }

    fn server(&mut self, ev: &framer::Event, note: Option<&str>) {
        match ev {
            framer::Event::Line { data, head, end } => {
                if let Some(head) = head {
                    self.server.style = style_for(head);
                }
                let body: &[u8] = if *end == LineEnd::Partial {
                    data
                } else {
                    strip_line_end(data)
                };
                self.prefix(From::Server, ':');
                let style = self.server.style;
                self.paint(style, |b| push_text(body, b));
                if let Some(n) = note.filter(|_| *end == LineEnd::Response) {
                    self.buf.push_str("  ");
                    self.note(n);
                }
                self.buf.push('\n');
                match end {
                    LineEnd::Literal { len, .. } => self.literal_header(From::Server, *len, false),
                    LineEnd::Response => self.server.style = None,
                    LineEnd::Partial => {}
                }
            }
            framer::Event::Literal { data, remaining } => {
                self.literal_data(From::Server, data, *remaining == 0);
            }
        }
    }

    fn client(&mut self, ev: &client_framer::Event, shown: Option<&str>) {
        match ev {
            client_framer::Event::Line { data, head, end } => {
                if head.is_some() {
                    self.client.secret = shown.is_some();
                }
                let body: &[u8] = if *end == End::Partial {
                    data
                } else {
                    strip_line_end(data)
                };
                let text: Option<&[u8]> = match (head, shown) {
                    (Some(_), Some(masked)) => Some(masked.as_bytes()),
                    (None, _) if self.client.secret => {
                        (*end != End::Partial && !body.is_empty()).then_some(&b"****"[..])
                    }
                    _ => Some(body),
                };
                if let Some(text) = text {
                    self.prefix(From::Client, ':');
                    let style = Some(Style::new().fg_color(Some(AnsiColor::Blue.into())));
                    self.paint(style, |b| push_text(text, b));
                    self.buf.push('\n');
                }
                match end {
                    End::Literal(ann) => {
                        let secret = self.client.secret;
                        self.literal_header(From::Client, ann.len, secret);
                    }
                    End::Command => self.client.secret = false,
                    End::Partial => {}
                }
            }
            client_framer::Event::Literal { data, remaining } => {
                if !self.client.secret {
                    self.literal_data(From::Client, data, *remaining == 0);
                }
            }
        }
    }

    fn side(&mut self, from: From) -> &mut Side {
        match from {
            From::Client => &mut self.client,
            From::Server => &mut self.server,
        }
    }

    fn literal_header(&mut self, from: From, len: u64, secret: bool) {
        self.prefix(from, '#');
        let mut text = format!("literal, {}", size(len));
        if secret {
            text.push_str(", not shown (secret)");
        }
        self.note(&text);
        self.buf.push('\n');
        let cut = (len > CUT_LITERAL && !self.full).then_some(Cut {
            len,
            lines: 0,
            bytes: 0,
            hiding: false,
        });
        let side = self.side(from);
        side.pending.clear();
        side.cut = cut;
    }

    /// Literal data, one terminal line per line of data.
    fn literal_data(&mut self, from: From, data: &[u8], last: bool) {
        let hidden = self.side(from).cut.as_ref().is_some_and(|c| c.hiding);
        // Once a literal is cut short, the rest of it is not even looked at.
        let mut rest = if hidden { &[][..] } else { data };
        while !rest.is_empty() {
            let (line, more) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..=i], true),
                None => (rest, false),
            };
            rest = &rest[line.len()..];
            let side = self.side(from);
            if side.cut.as_ref().is_some_and(|c| c.hiding) {
                break;
            }
            side.pending.extend_from_slice(line);
            if more || side.pending.len() >= PIECE || (last && !side.pending.is_empty()) {
                let piece = std::mem::take(&mut side.pending);
                if let Some(c) = &mut side.cut {
                    c.lines += 1;
                    c.bytes += piece.len();
                    c.hiding = c.lines >= HEAD_LINES || c.bytes >= HEAD_BYTES;
                }
                self.prefix(from, '|');
                push_text(strip_line_end(&piece), &mut self.buf);
                self.buf.push('\n');
            }
        }
        if last && let Some(cut) = self.side(from).cut.take().filter(|c| c.hiding) {
            self.prefix(from, '#');
            let text = format!(
                "literal of {} cut short: {} shown; --full shows it all, --log FILE keeps the exact bytes",
                size(cut.len),
                match cut.lines {
                    1 => "1 line".to_string(),
                    n => format!("{n} lines"),
                }
            );
            self.note(&text);
            self.buf.push('\n');
        }
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.tx.send(Msg::View(std::mem::take(&mut self.buf)));
        }
    }
}

/// Text on a terminal line: escaped by the one rule, tabs kept.
fn push_text(bytes: &[u8], out: &mut String) {
    let mut parts = bytes.split(|&b| b == b'\t');
    if let Some(first) = parts.next() {
        escape_into(first, out);
    }
    for p in parts {
        out.push('\t');
        escape_into(p, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::client_framer::ClientFramer;
    use crate::protocol::framer::Framer;

    fn term() -> (View, std::sync::mpsc::Receiver<Msg>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(1 << 16);
        (View::new(Some(Term::new(tx, 3, false, false)), None), rx)
    }

    fn text(view: View, rx: std::sync::mpsc::Receiver<Msg>) -> String {
        drop(view);
        rx.try_iter()
            .map(|m| match m {
                Msg::View(s) => s,
                Msg::Record(_) | Msg::Log(_) => unreachable!(),
            })
            .collect()
    }

    fn server(view: &mut View, bytes: &[u8]) {
        let mut f = Framer::new();
        f.buffer_mut().extend_from_slice(bytes);
        while let Some(ev) = f.next_event().unwrap() {
            view.server(&ev, None);
        }
    }

    #[test]
    fn both_sides_labelled_escaped_and_secrets_masked() {
        let (mut v, rx) = term();
        let mut f = ClientFramer::new();
        f.buffer_mut()
            .extend_from_slice(b"a1 LOGIN {5}\r\nalice pw0rd\r\na2 SELECT \x1b[2J\r\n");
        loop {
            while let Some(ev) = f.next_event().unwrap() {
                let shown = match &ev {
                    client_framer::Event::Line {
                        data,
                        head: Some(_),
                        ..
                    } if data.starts_with(b"a1") => Some("a1 LOGIN {5} ****"),
                    _ => None,
                };
                v.client(&ev, shown);
            }
            if !f.go() {
                break;
            }
        }
        server(&mut v, b"* OK \xe2\x80\xae hi\r\n");
        v.event("close by client");
        let t = text(v, rx);
        assert!(!t.contains("alice") && !t.contains("pw0rd"), "{t}");
        assert_eq!(
            t,
            "#3 C: a1 LOGIN {5} ****\n\
             #3 C# literal, 5 bytes, not shown (secret)\n\
             #3 C: ****\n\
             #3 C: a2 SELECT \\x1b[2J\n\
             #3 S: * OK \\u{202e} hi\n\
             #3 * close by client\n"
        );
    }

    #[test]
    fn literals_are_framed_and_long_ones_cut_short() {
        let (mut v, rx) = term();
        let body: String = (1..=10_000).map(|i| format!("line {i:05}\r\n")).collect();
        let mut input = format!("* 1 FETCH (BODY[] {{{}}}\r\n", body.len()).into_bytes();
        input.extend_from_slice(body.as_bytes());
        input.extend_from_slice(b")\r\n* 2 FETCH (BODY[] {7}\r\nab\tc\r\nd)\r\n");
        server(&mut v, &input);
        let t = text(v, rx);
        assert!(
            t.starts_with(
                "#3 S: * 1 FETCH (BODY[] {120000}\n#3 S# literal, 117.19 KiB\n#3 S| line 00001\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("#3 S| line 00040\n#3 S# literal of 117.19 KiB cut short: 40 lines shown;"),
            "{t}"
        );
        assert!(!t.contains("line 00041"));
        assert!(t.ends_with("#3 S: )\n#3 S: * 2 FETCH (BODY[] {7}\n#3 S# literal, 7 bytes\n#3 S| ab\tc\n#3 S| d\n#3 S: )\n"), "{t}");
    }
}
