//! The commands in flight: sent (or being sent) and not yet completed, in
//! the order they were sent.
//!
//! With `--pipeline` up to [`crate::core::pipeline::WINDOW`] commands are
//! in flight, and every command sent asks whether its tag is in use and
//! whether one in flight must be alone; answering those by looking
//! through the whole window made each command cost the size of the
//! window. Here they are answered from counts kept as commands come and
//! go.

use super::Outstanding;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a: tags are a few bytes, and SipHash's set-up was a tenth of the
/// CPU of a pipelined command (callgrind). Flooding is no concern: only
/// the client's own tags are ever keys; a server's tags are only looked up.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct InFlight {
    order: VecDeque<Outstanding>,
    /// How many commands in flight have each tag (a script may reuse one).
    tags: HashMap<String, u32, BuildHasherDefault<Fnv>>,
    /// How many of them are sent alone.
    alone: usize,
}

impl InFlight {
    pub fn push(&mut self, o: Outstanding) {
        *self.tags.entry(o.tag.clone()).or_default() += 1;
        self.alone += usize::from(o.alone);
        self.order.push_back(o);
    }

    /// Takes the oldest command with this tag out of the table.
    pub fn complete(&mut self, tag: &str) -> Option<Outstanding> {
        if !self.in_use(tag) {
            return None;
        }
        // Completions mostly come in order: the first few match.
        let i = self.order.iter().position(|o| o.tag == tag)?;
        let o = self.order.remove(i)?;
        if let Some(n) = self.tags.get_mut(tag) {
            *n -= 1;
            if *n == 0 {
                self.tags.remove(tag);
            }
        }
        self.alone -= usize::from(o.alone);
        Some(o)
    }

    pub fn in_use(&self, tag: &str) -> bool {
        self.tags.contains_key(tag)
    }

    /// A command in flight must be alone: nothing may join it.
    pub fn holds_alone(&self) -> bool {
        self.alone > 0
    }

    /// Every byte of the command tagged `tag` has now been sent.
    pub fn mark_sent(&mut self, tag: &str) {
        if let Some(o) = self.order.iter_mut().find(|o| o.tag == tag) {
            o.sent = true;
        }
    }

    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, Outstanding> {
        self.order.iter()
    }

    pub fn front(&self) -> Option<&Outstanding> {
        self.order.front()
    }

    pub fn back(&self) -> Option<&Outstanding> {
        self.order.back()
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::command::Verb;
    use std::time::Instant;

    fn cmd(tag: &str, alone: bool) -> Outstanding {
        Outstanding {
            tag: tag.to_string(),
            name: "NOOP".to_string(),
            verb: Verb::Noop,
            sent: true,
            arg: None,
            alone,
            started: Instant::now(),
        }
    }

    #[test]
    fn counts_follow_commands_in_and_out() {
        let mut f = InFlight::default();
        f.push(cmd("a1", false));
        f.push(cmd("a2", true));
        f.push(cmd("a1", false));
        assert!(f.in_use("a1") && f.in_use("a2") && !f.in_use("a3"));
        assert!(f.holds_alone());
        assert!(f.complete("a3").is_none());
        assert!(!f.complete("a2").expect("a2").tag.is_empty());
        assert!(!f.holds_alone());
        // The oldest of a reused tag completes first; the tag stays in use
        // while the other is in flight.
        f.complete("a1").expect("first a1");
        assert!(f.in_use("a1"));
        assert_eq!(f.len(), 1);
        f.complete("a1").expect("second a1");
        assert!(!f.in_use("a1") && f.is_empty());
        assert!(f.complete("a1").is_none());
    }

    #[test]
    fn completion_out_of_order_keeps_the_order_of_the_rest() {
        let mut f = InFlight::default();
        for t in ["t1", "t2", "t3", "t4"] {
            f.push(cmd(t, false));
        }
        f.complete("t3");
        let left: Vec<_> = f.iter().map(|o| o.tag.as_str()).collect();
        assert_eq!(left, ["t1", "t2", "t4"]);
        assert_eq!(f.front().map(|o| o.tag.as_str()), Some("t1"));
        assert_eq!(f.back().map(|o| o.tag.as_str()), Some("t4"));
    }
}
