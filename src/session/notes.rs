//! What terminal rendering adds after a server line (dimmed): the time a
//! command took on its tagged completion, the decoded name of a mailbox
//! in modified UTF-7 on LIST, LSUB and STATUS; and `--timing`, the time
//! per command on stderr for scripts.

use super::{Outstanding, Session};
use crate::protocol::framer::{Event, Kind, LineEnd};
use crate::text::duration;

impl Session {
    /// The note shown after this line in terminal rendering, if any: only
    /// on the line that ends a response.
    pub(super) fn note_for(&self, ev: &Event) -> Option<String> {
        if !self.settings.output.render {
            return None;
        }
        let Event::Line {
            data,
            head,
            end: LineEnd::Response,
        } = ev
        else {
            return None;
        };
        let whole_line = head.is_some();
        let head = head.as_ref().or(self.response.as_ref().map(|r| &r.0))?;
        match &head.kind {
            // After ENABLE UTF8=ACCEPT names are UTF-8 (RFC 6855).
            Kind::Untagged(_) if whole_line && !self.caps.utf8_accept => {
                crate::protocol::mutf7::note(data)
            }
            Kind::Tagged { tag, .. } => {
                let o = self
                    .outstanding
                    .iter()
                    .find(|o| o.tag.as_bytes() == &tag[..])?;
                Some(format!("({})", duration(o.started.elapsed())))
            }
            _ => None,
        }
    }

    /// `--timing`: one line per completed command on stderr, e.g.
    /// `a3 28.1 ms SELECT`. At the prompt the rendered completion already
    /// shows it.
    pub(super) fn report_timing(&mut self, o: &Outstanding) {
        if !self.settings.session.timing || (self.prompt.is_some() && self.settings.output.render) {
            return;
        }
        let ms = o.started.elapsed().as_secs_f64() * 1000.0;
        self.out
            .message(&format!("{} {ms:.1} ms {}", o.tag, o.name));
    }
}
