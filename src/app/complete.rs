//! Tab completion and hints for the REPL.
//!
//! The session sees every server line; it records here what completion
//! can use (capabilities, mailbox names from LIST and LSUB), and the editor
//! thread reads it when Tab is pressed. Both hold an `Arc<Mutex<Known>>`.

use crate::core::meta;
use crate::protocol::astring::{listed_mailbox, quote_mailbox};
use crate::protocol::command::{Arg, Verb, is_command};
use crate::text::{escape_str, shown_as_is};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

/// What this session has learned from the server.
#[derive(Debug, Default)]
pub struct Known {
    /// The commands completion offers by the server's latest CAPABILITY
    /// (the table's `Offer`); before any, those every server has.
    pub commands: BTreeSet<Verb>,
    /// Mailbox names from LIST and LSUB responses.
    mailboxes: BTreeSet<String>,
    /// The other forms a name is found by (form, name): its quoted form's
    /// inside where that escapes a `"` or `\`, its decoded form where it
    /// is modified UTF-7. Kept sorted as the names are, so that a Tab
    /// looks only at the names the typed word begins, however many the
    /// server listed (a LIST of 100,000 names must not slow typing).
    other_forms: BTreeSet<(String, String)>,
}

impl Known {
    /// Learns a mailbox name: O(log n) in the names known.
    pub fn add_mailbox(&mut self, name: String) {
        let forms = [
            quoted_inside(&name),
            crate::protocol::mutf7::readable(&name),
        ];
        // Most names have no other form: one insertion, as the set alone.
        if forms.iter().any(Option::is_some) && !self.mailboxes.contains(&name) {
            for form in forms.into_iter().flatten() {
                self.other_forms.insert((form, name.clone()));
            }
        }
        self.mailboxes.insert(name);
    }

    /// The names known, in order.
    pub fn mailboxes(&self) -> impl Iterator<Item = &str> {
        self.mailboxes.iter().map(String::as_str)
    }

    /// The names that `bare` (a word typed without its opening quote)
    /// begins in any of their forms, in order, each once. `looked` counts
    /// the names examined: those that match, and one more per form.
    fn starting(&self, bare: &str, looked: &mut usize) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        let from = (Bound::Included(bare), Bound::Unbounded);
        for name in self.mailboxes.range::<str, _>(from) {
            *looked += 1;
            if !name.starts_with(bare) {
                break;
            }
            // A name with a `"` or `\` is typed escaped: found by that form.
            if quoted_inside(name).is_none() {
                out.insert(name.as_str());
            }
        }
        let from = (bare.to_string(), String::new());
        for (form, name) in self.other_forms.range(from..) {
            *looked += 1;
            if !form.starts_with(bare) {
                break;
            }
            out.insert(name.as_str());
        }
        // A quoted name typed whole, closing quote and all.
        if let Some(inside) = bare.strip_suffix('"') {
            let name = unescape_inside(inside);
            if let Some(name) = self.mailboxes.get(&name)
                && quote_mailbox(name) == format!("\"{inside}\"")
            {
                *looked += 1;
                out.insert(name.as_str());
            }
        }
        out
    }
}

/// The name that `inside` (what is between quotes) stands for.
fn unescape_inside(inside: &str) -> String {
    let mut out = String::with_capacity(inside.len());
    let mut chars = inside.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// What is typed between the quotes of a name that must be quoted, where
/// that differs from the name (a `"` or `\` escaped).
fn quoted_inside(name: &str) -> Option<String> {
    if !name.contains(['"', '\\']) {
        return None;
    }
    let q = quote_mailbox(name);
    let inside = q.strip_prefix('"').and_then(|q| q.strip_suffix('"'))?;
    Some(inside.to_string())
}

pub type Shared = Arc<Mutex<Known>>;

const FETCH_ITEMS: &[&str] = &[
    "ALL",
    "FAST",
    "FULL",
    "BODY",
    "BODY[",
    "BODY.PEEK[",
    "BODYSTRUCTURE",
    "BINARY[",
    "BINARY.PEEK[",
    "BINARY.SIZE[",
    "ENVELOPE",
    "FLAGS",
    "INTERNALDATE",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.SIZE",
    "RFC822.TEXT",
    "UID",
    "MODSEQ",
];

const FLAGS: &[&str] = &["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"];

const STORE_ITEMS: &[&str] = &[
    "FLAGS",
    "FLAGS.SILENT",
    "+FLAGS",
    "+FLAGS.SILENT",
    "-FLAGS",
    "-FLAGS.SILENT",
];

const STATUS_ITEMS: &[&str] = &[
    "MESSAGES",
    "UNSEEN",
    "UIDNEXT",
    "UIDVALIDITY",
    "SIZE",
    "RECENT",
    "DELETED",
];

/// Records what a server line teaches: capabilities and mailbox names.
/// `line` is the first line of a response, CRLF included or not.
pub fn learn(known: &Shared, line: &[u8]) {
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(caps) = capabilities(line) {
        let mut k = known.lock().unwrap_or_else(|e| e.into_inner());
        k.commands = caps;
    } else if let Some(name) = listed_mailbox(line) {
        let mut k = known.lock().unwrap_or_else(|e| e.into_inner());
        k.add_mailbox(name);
    }
}

/// The commands `* CAPABILITY …` or a `[CAPABILITY …]` response code make
/// available (the latest list replaces the earlier: capabilities change
/// after STARTTLS and LOGIN). Only commands of the table: a capability is
/// not a command of its name (ESEARCH names a form of SEARCH results; the
/// ESEARCH command comes with MULTISEARCH).
fn capabilities(line: &str) -> Option<BTreeSet<Verb>> {
    let names: Vec<String> = crate::protocol::caps::parse(line)?
        .iter()
        .map(|cap| {
            let base = cap.split('=').next().unwrap_or("");
            base.to_ascii_uppercase()
        })
        .collect();
    let advertised = |name: &str| names.iter().any(|n| n == name);
    Some(Verb::all().filter(|v| v.offered(&advertised)).collect())
}

/// The editor's helper: completion, hints, dimmed hints.
pub struct ReplHelper {
    pub known: Shared,
    pub color: bool,
    /// Told the line, the cursor and the hint each time the editor draws
    /// them (the REPL redraws an interrupted line from this).
    pub on_draw: Option<DrawHook>,
}

/// See [`ReplHelper::on_draw`].
pub type DrawHook = Box<dyn Fn(&str, usize, Option<&str>) + Send + Sync>;

/// Splits the line before the cursor into finished words and the word
/// being typed (quoted strings count as one word).
fn words(before: &str) -> (Vec<String>, usize) {
    let mut done = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        if in_quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quote = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            ' ' => {
                if i > start {
                    done.push(before[start..i].to_string());
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    (done, start)
}

/// The command in `words`: its name in upper case (`FETCH` for `UID
/// FETCH`), how many words precede its arguments (tag, UID included), and
/// whether it is a UID command.
fn command_words(words: &[String]) -> (Option<String>, usize, bool) {
    let mut head = 0;
    if let Some(first) = words.first()
        && !is_command(first.as_bytes())
        && !first.starts_with('\\')
        && words.len() >= 2
        && is_command(words[1].as_bytes())
    {
        head = 1;
    }
    let Some(c) = words.get(head) else {
        return (None, head, false);
    };
    if words.len() == 1 && !is_command(c.as_bytes()) && !c.starts_with('\\') {
        // A typed tag: the command comes next.
        return (None, 1, false);
    }
    let name = c.to_ascii_uppercase();
    head += 1;
    if Verb::parse(name.as_bytes()) == Verb::Uid
        && let Some(sub) = words.get(head)
    {
        return (Some(sub.to_ascii_uppercase()), head + 1, true);
    }
    (Some(name), head, false)
}

fn matching(candidates: impl IntoIterator<Item = String>, typed: &str) -> Vec<Pair> {
    let lower = !typed.is_empty() && typed.chars().all(|c| !c.is_ascii_uppercase());
    let mut out: Vec<Pair> = candidates
        .into_iter()
        .filter(|c| {
            c.len() >= typed.len()
                && c.is_char_boundary(typed.len())
                && c[..typed.len()].eq_ignore_ascii_case(typed)
        })
        .map(|c| {
            let replacement = if lower && c.bytes().all(|b| !b.is_ascii_lowercase()) {
                c.to_ascii_lowercase()
            } else {
                c.clone()
            };
            Pair {
                display: c,
                replacement,
            }
        })
        .collect();
    out.dedup_by(|a, b| a.display == b.display);
    out
}

impl ReplHelper {
    /// The commands to offer, in the order of their names: those every
    /// server has, and those the server's capabilities add.
    fn offered(&self) -> Vec<Verb> {
        let k = self.known.lock().unwrap_or_else(|e| e.into_inner());
        Verb::all()
            .filter(|v| v.offered(&|_| false) || k.commands.contains(v))
            .collect()
    }

    fn command_names(&self) -> Vec<String> {
        let names = self.offered().into_iter().filter_map(Verb::name);
        names.map(str::to_string).collect()
    }

    /// The commands UID may precede (`UID FETCH`).
    fn uid_commands(&self) -> Vec<String> {
        let uid = self
            .offered()
            .into_iter()
            .filter(|v| v.uid_syntax().is_some());
        uid.filter_map(Verb::name).map(str::to_string).collect()
    }

    /// Candidates for the word at `start..pos`.
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<Pair>) {
        let before = &line[..pos];
        let (done, mut start) = words(before);
        let mut typed = &before[start..];
        // Inside a parenthesised list: complete the item after ( .
        if let Some(i) = typed.rfind('(') {
            start += i + 1;
            typed = &before[start..];
        }
        let (name, head, _) = command_words(&done);
        let args = &done[head.min(done.len())..];
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let verb = name.as_deref().map(|n| Verb::parse(n.as_bytes()));
        let list = match (name.as_deref(), verb) {
            (None, _) if typed.starts_with('\\') => {
                owned(&meta::METAS.iter().map(|m| m.0).collect::<Vec<_>>())
            }
            (None, _) => {
                // The first word, or the second after a typed tag.
                self.command_names()
            }
            (Some("\\HELP"), _) if args.is_empty() => self.command_names(),
            (_, Some(Verb::Uid)) => self.uid_commands(),
            (Some(_), _) if typed.starts_with('\\') => owned(FLAGS),
            (_, Some(v)) if v.arg(args.len()) == Arg::FetchItems => owned(FETCH_ITEMS),
            (_, Some(v)) if v.arg(args.len()) == Arg::StoreItems => owned(STORE_ITEMS),
            (_, Some(v)) if v.arg(args.len()) == Arg::StatusItems => owned(STATUS_ITEMS),
            (_, Some(v)) if v.arg(args.len()) == Arg::Mailbox => {
                let k = self.known.lock().unwrap_or_else(|e| e.into_inner());
                // The name goes in as the server knows it (modified UTF-7);
                // its decoded form is shown, and may be typed to find it.
                // A name holding a control or formatting character is not
                // offered: the editor would put those very characters into
                // the line, and the terminal would obey them. Matched with
                // or without the opening quote typed.
                let bare = typed.strip_prefix('"').unwrap_or(typed);
                let mut out: Vec<Pair> = k
                    .starting(bare, &mut 0)
                    .into_iter()
                    .filter(|m| m.chars().all(shown_as_is))
                    .map(|m| {
                        let q = quote_mailbox(m);
                        Pair {
                            display: match crate::protocol::mutf7::readable(m) {
                                Some(d) => format!("{} [{d}]", escape_str(&q)),
                                None => escape_str(&q),
                            },
                            replacement: q,
                        }
                    })
                    .collect();
                drop(k);
                out.dedup_by(|a, b| a.display == b.display);
                return (start, out);
            }
            _ => Vec::new(),
        };
        (start, matching(list, typed))
    }

    /// The syntax still to type, redis-cli style: only at the end of the line.
    pub fn hint_for(&self, line: &str, pos: usize) -> Option<String> {
        if pos < line.len() || line.trim().is_empty() {
            return None;
        }
        let (done, start) = words(line);
        let typing = &line[start..];
        let mut all = done.clone();
        if !typing.is_empty() {
            all.push(typing.to_string());
        }
        let (name, head, uid) = command_words(&all);
        let name = name?;
        let full = if name.starts_with('\\') {
            name.to_ascii_lowercase()
        } else if uid {
            format!("UID {name}")
        } else {
            name
        };
        let syntax = meta::syntax(&full)?;
        let name_words = full.split(' ').count();
        // Only once the command name is whole (`FET` gets no hint).
        let syntax_name = syntax.split(' ').take(name_words).collect::<Vec<_>>();
        if !syntax_name.join(" ").eq_ignore_ascii_case(&full) {
            return None;
        }
        // The argument being typed hides its own placeholder: redis-cli style.
        let typing_arg = !typing.is_empty() && all.len() > head;
        let skip = done.len().saturating_sub(head) + usize::from(typing_arg);
        let rest: Vec<&str> = syntax.split(' ').skip(name_words + skip).collect();
        if rest.is_empty() {
            return None;
        }
        let lead = if typing.is_empty() { "" } else { " " };
        Some(format!("{lead}{}", escape_str(&rest.join(" "))))
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(self.candidates(line, pos))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        let hint = self.hint_for(line, pos);
        if let Some(hook) = &self.on_draw {
            hook(line, pos, hint.as_deref());
        }
        hint
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }
}

impl Validator for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> ReplHelper {
        let known: Shared = Arc::default();
        learn(
            &known,
            b"* CAPABILITY IMAP4rev1 IDLE QUOTA XLIST COMPRESS=DEFLATE LITERAL+\r\n",
        );
        learn(&known, b"* LIST (\\HasNoChildren) \"/\" INBOX\r\n");
        learn(&known, b"* LIST (\\HasNoChildren) \"/\" \"Sent Items\"\r\n");
        learn(&known, b"* LSUB () \".\" Archive.2024\r\n");
        learn(&known, b"* LIST () NIL {5}\r\n");
        learn(&known, b"* LIST () \"/\" \"&ZeVnLIqe-\"\r\n");
        ReplHelper {
            known,
            color: false,
            on_draw: None,
        }
    }

    fn complete(h: &ReplHelper, line: &str) -> (usize, Vec<String>) {
        let (start, pairs) = h.candidates(line, line.len());
        (start, pairs.into_iter().map(|p| p.replacement).collect())
    }

    #[test]
    fn learns_capabilities_and_mailboxes() {
        let h = helper();
        let k = h.known.lock().unwrap();
        assert!(k.commands.contains(&Verb::GetQuotaRoot) && k.commands.contains(&Verb::Xlist));
        assert!(k.commands.contains(&Verb::Compress));
        assert!(!k.commands.contains(&Verb::GetAcl) && !k.commands.contains(&Verb::Other));
        let boxes: Vec<_> = k.mailboxes().collect();
        assert_eq!(boxes, ["&ZeVnLIqe-", "Archive.2024", "INBOX", "Sent Items"]);
        drop(k);
        // The latest list replaces the earlier one.
        learn(&h.known, b"a1 OK [CAPABILITY IMAP4rev1 acl] Logged in\r\n");
        let k = h.known.lock().unwrap();
        assert!(k.commands.contains(&Verb::MyRights) && !k.commands.contains(&Verb::Xlist));
    }

    #[test]
    fn only_commands_are_completed_never_capabilities_of_another_name() {
        let h = helper();
        // Gmail's and Dovecot's capability lists: ESEARCH and X-GM-EXT-1
        // name no command, and a server answers BAD to them.
        learn(
            &h.known,
            b"* CAPABILITY IMAP4rev1 ESEARCH X-GM-EXT-1 XAPPLEPUSHSERVICE CONDSTORE SPECIAL-USE\r\n",
        );
        for typed in ["ESE", "X", "CON", "SPEC", "IMAP"] {
            assert_eq!(complete(&h, typed).1, Vec::<String>::new(), "{typed}");
        }
        assert_eq!(complete(&h, "x1 ES").1, Vec::<String>::new());
        // The ESEARCH command comes with MULTISEARCH.
        learn(&h.known, b"* CAPABILITY IMAP4rev1 ESEARCH MULTISEARCH\r\n");
        assert_eq!(complete(&h, "ESE").1, ["ESEARCH"]);
        // Extension commands go only with their capability; base ones always.
        assert_eq!(complete(&h, "GETQ").1, Vec::<String>::new());
        assert_eq!(complete(&h, "UNS").1, ["UNSELECT", "UNSUBSCRIBE"]);
        assert_eq!(complete(&h, "UNA").1, Vec::<String>::new());
        // A server that says nothing of its capabilities gets the base ones.
        let bare = ReplHelper {
            known: Arc::default(),
            color: false,
            on_draw: None,
        };
        assert_eq!(complete(&bare, "NO").1, ["NOOP"]);
        assert_eq!(complete(&bare, "ES").1, Vec::<String>::new());
        assert_eq!(complete(&bare, "UID S").1, ["SEARCH", "STORE"]);
    }

    #[test]
    fn completes_commands_mailboxes_items_flags_and_metas() {
        let h = helper();
        assert_eq!(complete(&h, "SEL"), (0, vec!["SELECT".to_string()]));
        assert_eq!(complete(&h, "sel"), (0, vec!["select".to_string()]));
        assert_eq!(complete(&h, "x1 getq").1, ["getquota", "getquotaroot"]);
        assert_eq!(complete(&h, "XL").1, ["XLIST"]);
        assert_eq!(
            complete(&h, "SELECT S"),
            (7, vec!["\"Sent Items\"".to_string()])
        );
        assert_eq!(complete(&h, "SELECT \"Se").1, ["\"Sent Items\""]);
        assert_eq!(complete(&h, "select ").1.len(), 4);
        // Encoded names go in encoded; the decoded form finds them too.
        assert_eq!(complete(&h, "SELECT &Ze").1, ["&ZeVnLIqe-"]);
        assert_eq!(complete(&h, "SELECT 日本").1, ["&ZeVnLIqe-"]);
        let (_, pairs) = h.candidates("SELECT 日", 10);
        assert_eq!(pairs[0].display, "&ZeVnLIqe- [日本語]");
        assert_eq!(complete(&h, "MOVE 1:3 A").1, ["Archive.2024"]);
        assert!(complete(&h, "MOVE 1:").1.is_empty());
        assert_eq!(complete(&h, "FETCH 1 (FL"), (9, vec!["FLAGS".to_string()]));
        assert_eq!(complete(&h, "UID FETCH 1:* BODY.P").1, ["BODY.PEEK["]);
        assert_eq!(complete(&h, "UID F").1, ["FETCH"]);
        assert_eq!(complete(&h, "STORE 1 +FL").1, ["+FLAGS", "+FLAGS.SILENT"]);
        assert_eq!(complete(&h, "STORE 1 +FLAGS (\\De").1, ["\\Deleted"]);
        assert_eq!(complete(&h, "\\he").1, ["\\help"]);
        assert_eq!(complete(&h, "\\help FE").1, ["FETCH"]);
    }

    /// A Tab looks only at the names the typed word begins: with 100,000
    /// names known, one that begins ten looks at about ten.
    #[test]
    fn a_tab_looks_only_at_the_names_it_may_offer() {
        let mut k = Known::default();
        for i in 1..=100_000 {
            k.add_mailbox(format!("Tree.{i:06}-box"));
        }
        k.add_mailbox("Sent Items".to_string());
        k.add_mailbox("&ZeVnLIqe-".to_string());
        let mut looked = 0;
        assert_eq!(k.starting("Tree.01234", &mut looked).len(), 10);
        assert!(looked <= 13, "looked at {looked} names");
        let mut looked = 0;
        assert_eq!(
            k.starting("Tree.012345-box", &mut looked)
                .into_iter()
                .collect::<Vec<_>>(),
            ["Tree.012345-box"]
        );
        assert!(looked <= 3, "looked at {looked} names");
        let mut looked = 0;
        assert_eq!(k.starting("日", &mut looked).len(), 1);
        assert!(looked <= 3, "looked at {looked} names");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// What a Tab offered when it tried every name known.
        fn by_trying_all<'a>(names: &'a BTreeSet<String>, typed: &str) -> Vec<&'a str> {
            let bare = typed.strip_prefix('"').unwrap_or(typed);
            names
                .iter()
                .filter(|m| {
                    let q = quote_mailbox(m);
                    let decoded = crate::protocol::mutf7::readable(m);
                    q.starts_with(typed)
                        || q.strip_prefix('"').unwrap_or(&q).starts_with(bare)
                        || decoded.is_some_and(|d| d.starts_with(bare))
                })
                .map(String::as_str)
                .collect()
        }

        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                "[aA& \"\\\\.-]{1,6}",
                Just("&ZeVnLIqe-".to_string()),
                Just("a&ZeVnLIqe-b".to_string()),
                Just("Sent Items".to_string()),
            ]
        }

        proptest! {
            #[test]
            fn the_names_a_tab_offers_are_those_trying_all_would(
                names in proptest::collection::btree_set(name(), 0..20),
                typed in prop_oneof!["[\"]?[aA& \"\\\\.-]{0,4}", name(), "\"?日本?"],
            ) {
                let mut k = Known::default();
                for n in &names {
                    k.add_mailbox(n.clone());
                }
                // Typed as a prefix of what completion shows, too.
                for typed in [typed.clone(), quote_mailbox(&typed), format!("\"{typed}")] {
                    let bare = typed.strip_prefix('"').unwrap_or(&typed);
                    let found: Vec<&str> = k.starting(bare, &mut 0).into_iter().collect();
                    prop_assert_eq!(found, by_trying_all(&names, &typed), "typed {:?}", typed);
                }
            }
        }
    }

    #[test]
    fn mailbox_names_never_bring_controls_to_the_terminal() {
        let h = helper();
        learn(&h.known, b"* LIST () \"/\" \"\x1b]0;PWN\x07\"\r\n");
        learn(
            &h.known,
            "* LIST () \"/\" \"A\u{202e}gpj.exe\"\r\n".as_bytes(),
        );
        learn(&h.known, "* LIST () \"/\" \"Z\u{200b}\"\r\n".as_bytes());
        let (_, pairs) = h.candidates("SELECT ", 7);
        let shown: Vec<&str> = pairs.iter().map(|p| p.display.as_str()).collect();
        assert_eq!(pairs.len(), 4, "{shown:?}");
        for p in &pairs {
            for s in [&p.display, &p.replacement] {
                assert!(s.chars().all(shown_as_is), "{s:?}");
            }
        }
    }

    #[test]
    fn hints_show_the_syntax_still_to_type() {
        let h = helper();
        let hint = |l: &str| h.hint_for(l, l.len());
        assert_eq!(hint("FETCH").as_deref(), Some(" <sequence-set> <items>"));
        assert_eq!(hint("fetch ").as_deref(), Some("<sequence-set> <items>"));
        assert_eq!(hint("FETCH 1:*").as_deref(), Some(" <items>"));
        assert_eq!(hint("FETCH 1:* ").as_deref(), Some("<items>"));
        assert_eq!(hint("FETCH 1:* FLAGS"), None);
        assert_eq!(hint("UID FETCH ").as_deref(), Some("<uid-set> <items>"));
        assert_eq!(hint("a5 SELECT ").as_deref(), Some("<mailbox>"));
        assert_eq!(
            hint("APPEND INBOX ").as_deref(),
            Some("[(flags)] [date] <literal>")
        );
        assert_eq!(hint("\\login ").as_deref(), Some("USER"));
        assert_eq!(hint("FET"), None);
        assert_eq!(hint("NOOP"), None);
        assert_eq!(hint(""), None);
    }
}
