//! Input lines to wire bytes: tags, command names, client literals, and
//! the masked form of a line for anything that repeats it to the user.
//!
//! A command's name is parsed once into a [`Verb`]; every rule about a
//! command (may a `+` be meant for it, does it carry a secret, must it go
//! alone under `--pipeline`, …), its place in completion and its help text
//! are read from the one table, [`VERBS`].

use crate::protocol::framer::{Announcement, FrameError, literal_announcement};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;

/// An IMAP command imaptalk knows (RFC 9051, RFC 3501 and the common
/// extensions), or `Other`. A line whose first word is a known verb gets
/// an automatic tag; a line whose *second* word is one is taken to carry
/// its own tag. The name as typed stays in [`Prepared::name`] for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    Append,
    Authenticate,
    Capability,
    Check,
    Close,
    Compress,
    Copy,
    Create,
    Delete,
    DeleteAcl,
    Enable,
    Esearch,
    Examine,
    Expunge,
    Fetch,
    GetAcl,
    GetMetadata,
    GetQuota,
    GetQuotaRoot,
    Id,
    Idle,
    List,
    ListRights,
    Login,
    Logout,
    Lsub,
    Move,
    MyRights,
    Namespace,
    Noop,
    Notify,
    Rename,
    Replace,
    Search,
    Select,
    SetAcl,
    SetMetadata,
    SetQuota,
    Sort,
    StartTls,
    Status,
    Store,
    Subscribe,
    Thread,
    Uid,
    Unauthenticate,
    Unselect,
    Unsubscribe,
    Xlist,
    /// A command this client does not know: an extension, or a typo. The
    /// server may answer it with `+`, so it is treated with caution.
    Other,
}

/// Which arguments of a command are secret, and so become `****` wherever
/// the line is shown or kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    None,
    /// LOGIN: everything after the user name, always shown as `****`.
    Password,
    /// AUTHENTICATE: the initial response after the mechanism, when there
    /// is one, and every line answering the server's `+`.
    InitialResponse,
}

/// What a command's success changes in the state the prompt shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    None,
    /// The user (LOGIN, AUTHENTICATE): capabilities change too.
    LogsIn,
    /// A mailbox is selected (SELECT, EXAMINE); a NO leaves none selected.
    Selects,
    /// No mailbox is selected any more (CLOSE, UNSELECT).
    Unselects,
    /// Back to the not-authenticated state (UNAUTHENTICATE).
    LogsOut,
}

/// When Tab completion offers a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Every server has it (RFC 9051 and RFC 3501).
    Always,
    /// Only when the server's CAPABILITY lists one of these (compared
    /// without the part from `=` on: `COMPRESS=DEFLATE` is `COMPRESS`).
    With(&'static [&'static str]),
}

/// What an argument of a command is, for completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// Nothing to offer.
    Any,
    /// A mailbox name (from LIST and LSUB replies).
    Mailbox,
    /// FETCH items; also every later argument (a parenthesised list).
    FetchItems,
    /// `FLAGS`, `+FLAGS.SILENT`, ….
    StoreItems,
    /// STATUS items.
    StatusItems,
}

/// The reference entry of a command: `\help NAME` and the hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Help {
    pub syntax: &'static str,
    pub about: &'static str,
    pub rfc: &'static str,
}

/// Everything imaptalk knows about one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Props {
    pub verb: Verb,
    /// Its name in upper case, as completion offers it.
    pub name: &'static str,
    /// A server's `+` may be meant for it (IDLE, AUTHENTICATE). A `+` for
    /// NOOP or FETCH is nobody's, and is not obeyed.
    pub takes_continuation: bool,
    pub secret: Secret,
    /// `--pipeline`: everything before it completes first, and nothing
    /// follows until it completes (see `pipeline`).
    pub alone_in_pipeline: bool,
    /// Nothing more is sent until it completes, in any mode: it changes
    /// the connection itself (STARTTLS, COMPRESS).
    pub barrier: bool,
    /// The prompt waits for its completion, so that it never shows a state
    /// the server has not confirmed.
    pub changes_prompt: bool,
    pub effect: Effect,
    /// Its lines never enter the REPL's history.
    pub never_history: bool,
    pub offer: Offer,
    /// Its arguments, for completion; those past the end are `Any`.
    pub args: &'static [Arg],
    /// The syntax of its UID form, when there is one (`UID FETCH …`).
    pub uid_syntax: Option<&'static str>,
    pub help: Help,
}

impl Props {
    const fn new(
        verb: Verb,
        name: &'static str,
        syntax: &'static str,
        about: &'static str,
        rfc: &'static str,
    ) -> Props {
        Props {
            verb,
            name,
            takes_continuation: false,
            secret: Secret::None,
            alone_in_pipeline: false,
            barrier: false,
            changes_prompt: false,
            effect: Effect::None,
            never_history: false,
            offer: Offer::Always,
            args: &[],
            uid_syntax: None,
            help: Help { syntax, about, rfc },
        }
    }
    const fn continuation(self) -> Props {
        Props {
            takes_continuation: true,
            ..self
        }
    }
    const fn secret(self, secret: Secret) -> Props {
        Props { secret, ..self }
    }
    const fn alone(self) -> Props {
        Props {
            alone_in_pipeline: true,
            ..self
        }
    }
    const fn barrier(self) -> Props {
        Props {
            barrier: true,
            ..self
        }
    }
    const fn prompt(self, effect: Effect) -> Props {
        Props {
            changes_prompt: true,
            effect,
            ..self
        }
    }
    const fn effect(self, effect: Effect) -> Props {
        Props { effect, ..self }
    }
    const fn no_history(self) -> Props {
        Props {
            never_history: true,
            ..self
        }
    }
    const fn with(self, caps: &'static [&'static str]) -> Props {
        Props {
            offer: Offer::With(caps),
            ..self
        }
    }
    const fn args(self, args: &'static [Arg]) -> Props {
        Props { args, ..self }
    }
    const fn uid(self, syntax: &'static str) -> Props {
        Props {
            uid_syntax: Some(syntax),
            ..self
        }
    }
}

use Arg::{FetchItems, Mailbox, StatusItems, StoreItems};

const ACL: &[&str] = &["ACL"];
const METADATA: &[&str] = &["METADATA", "METADATA-SERVER"];
const QUOTA: &[&str] = &["QUOTA"];

/// The one table: one entry a verb, in the order of [`Verb`] (which is
/// the alphabetical order of the names), RFC 9051 sections unless noted.
pub const VERBS: &[Props] = &[
    Props::new(
        Verb::Append,
        "APPEND",
        "APPEND <mailbox> [(flags)] [date] <literal>",
        "Adds a message to a mailbox. End the line with {n} (n = the message size in bytes, with CRLF line ends), then type the message at the ..> prompt once the server's + arrives; or end it with {@FILE} to send a file, counted for you.",
        "RFC 9051 §6.3.12",
    )
    .args(&[Mailbox]),
    Props::new(
        Verb::Authenticate,
        "AUTHENTICATE",
        "AUTHENTICATE <mechanism> [initial-response]",
        "Logs in with a SASL mechanism (PLAIN, XOAUTH2, …). Answer each + with base64 at the +> prompt; * cancels. These lines never enter history.",
        "RFC 9051 §6.2.2",
    )
    .continuation()
    .secret(Secret::InitialResponse)
    .alone()
    .effect(Effect::LogsIn)
    .no_history(),
    Props::new(
        Verb::Capability,
        "CAPABILITY",
        "CAPABILITY",
        "Lists what the server supports: the IMAP revision, extensions, AUTH= mechanisms. Capabilities can change after STARTTLS and after logging in.",
        "RFC 9051 §6.1.1",
    ),
    Props::new(
        Verb::Check,
        "CHECK",
        "CHECK",
        "Asks the server to checkpoint the selected mailbox. Removed in IMAP4rev2; NOOP does the same.",
        "RFC 3501 §6.4.1",
    ),
    Props::new(
        Verb::Close,
        "CLOSE",
        "CLOSE",
        "Leaves the selected mailbox, silently expunging messages flagged \\Deleted (use UNSELECT to leave without expunging).",
        "RFC 9051 §6.4.1",
    )
    .alone()
    .prompt(Effect::Unselects),
    Props::new(
        Verb::Compress,
        "COMPRESS",
        "COMPRESS DEFLATE",
        "Compresses the rest of the connection, both ways, with DEFLATE. Nothing else is sent until the server answers; --compress does it for you after logging in.",
        "RFC 4978 §3",
    )
    .alone()
    .barrier()
    .with(&["COMPRESS"]),
    Props::new(
        Verb::Copy,
        "COPY",
        "COPY <sequence-set> <mailbox>",
        "Copies messages of the selected mailbox to another mailbox.",
        "RFC 9051 §6.4.7",
    )
    .args(&[Arg::Any, Mailbox])
    .uid("UID COPY <uid-set> <mailbox>"),
    Props::new(
        Verb::Create,
        "CREATE",
        "CREATE <mailbox>",
        "Creates a mailbox; use the hierarchy delimiter LIST shows for sub-folders.",
        "RFC 9051 §6.3.4",
    )
    .args(&[Mailbox]),
    Props::new(
        Verb::Delete,
        "DELETE",
        "DELETE <mailbox>",
        "Deletes a mailbox and the messages in it, permanently.",
        "RFC 9051 §6.3.5",
    )
    .args(&[Mailbox]),
    Props::new(
        Verb::DeleteAcl,
        "DELETEACL",
        "DELETEACL <mailbox> <identifier>",
        "Removes an identifier (a user or group) from the access control list of a mailbox.",
        "RFC 4314 §3.2",
    )
    .with(ACL),
    Props::new(
        Verb::Enable,
        "ENABLE",
        "ENABLE <capability>...",
        "Turns on extensions that change how the server talks (UTF8=ACCEPT, CONDSTORE, QRESYNC, IMAP4rev2).",
        "RFC 9051 §6.3.1",
    )
    .alone(),
    Props::new(
        Verb::Esearch,
        "ESEARCH",
        "ESEARCH [IN (<sources>)] [RETURN (<options>)] [CHARSET <charset>] <criteria>",
        "Searches several mailboxes at once without selecting them: IN (personal), IN (subtree \"Archive\"), IN (mailboxes (INBOX Sent)); one ESEARCH response for each mailbox with matches. Needs the MULTISEARCH capability: a server listing ESEARCH only sends SEARCH results in that form.",
        "RFC 7377",
    )
    .with(&["MULTISEARCH"]),
    Props::new(
        Verb::Examine,
        "EXAMINE",
        "EXAMINE <mailbox>",
        "Like SELECT, but read-only: flags do not change and nothing is expunged.",
        "RFC 9051 §6.3.3",
    )
    .alone()
    .prompt(Effect::Selects)
    .args(&[Mailbox]),
    Props::new(
        Verb::Expunge,
        "EXPUNGE",
        "EXPUNGE",
        "Permanently removes the messages flagged \\Deleted from the selected mailbox.",
        "RFC 9051 §6.4.3",
    )
    .uid("UID EXPUNGE <uid-set>"),
    Props::new(
        Verb::Fetch,
        "FETCH",
        "FETCH <sequence-set> <items>",
        "Retrieves data about messages of the selected mailbox: FLAGS, ENVELOPE, BODYSTRUCTURE, RFC822.SIZE, BODY[section] (BODY.PEEK[...] leaves \\Seen alone), or the macros ALL, FAST and FULL. A sequence set is like 1:*, 3,5 or 2:4.",
        "RFC 9051 §6.4.5",
    )
    .args(&[Arg::Any, FetchItems])
    .uid("UID FETCH <uid-set> <items>"),
    Props::new(
        Verb::GetAcl,
        "GETACL",
        "GETACL <mailbox>",
        "Shows the access control list of a mailbox: each identifier with its rights (l r s w i p k x t e a).",
        "RFC 4314 §3.3",
    )
    .with(ACL)
    .args(&[Mailbox]),
    Props::new(
        Verb::GetMetadata,
        "GETMETADATA",
        "GETMETADATA [(<options>)] <mailbox> <entries>",
        "Reads annotations of a mailbox, or of the server with the mailbox \"\": an entry such as /private/comment, or a list of them in parentheses. Options: MAXSIZE <n>, DEPTH 0|1|infinity.",
        "RFC 5464 §4.2",
    )
    .with(METADATA),
    Props::new(
        Verb::GetQuota,
        "GETQUOTA",
        "GETQUOTA <quota-root>",
        "Shows the usage and the limits of a quota root (GETQUOTAROOT tells which roots a mailbox has).",
        "RFC 9208 §4.1.1",
    )
    .with(QUOTA),
    Props::new(
        Verb::GetQuotaRoot,
        "GETQUOTAROOT",
        "GETQUOTAROOT <mailbox>",
        "Lists the quota roots of a mailbox, with the usage and the limits of each.",
        "RFC 9208 §4.1.2",
    )
    .with(QUOTA)
    .args(&[Mailbox]),
    Props::new(
        Verb::Id,
        "ID",
        "ID (\"name\" \"value\" ...) | ID NIL",
        "Tells the server who the client is, and shows who the server is.",
        "RFC 2971 §3.1",
    )
    .with(&["ID"]),
    Props::new(
        Verb::Idle,
        "IDLE",
        "IDLE",
        "Waits for the server to report changes as they happen. End it with Enter on an empty line, Ctrl-C, or by typing DONE.",
        "RFC 9051 §6.3.13",
    )
    .continuation()
    .alone(),
    Props::new(
        Verb::List,
        "LIST",
        "LIST <reference> <pattern>",
        "Lists mailboxes: LIST \"\" * for all, LIST \"\" % for the top level. The names seen here are offered by Tab completion.",
        "RFC 9051 §6.3.9",
    ),
    Props::new(
        Verb::ListRights,
        "LISTRIGHTS",
        "LISTRIGHTS <mailbox> <identifier>",
        "Shows which rights may be granted to an identifier on a mailbox, and which it always has.",
        "RFC 4314 §3.4",
    )
    .with(ACL),
    Props::new(
        Verb::Login,
        "LOGIN",
        "LOGIN <user> <password>",
        "Logs in with a plaintext password (only over TLS, please). \\login USER asks for the password without echo; LOGIN lines never enter history.",
        "RFC 9051 §6.2.3",
    )
    .secret(Secret::Password)
    .alone()
    .prompt(Effect::LogsIn)
    .no_history(),
    Props::new(
        Verb::Logout,
        "LOGOUT",
        "LOGOUT",
        "Ends the session; the server answers BYE and closes. Ctrl-D does the same.",
        "RFC 9051 §6.1.3",
    )
    .alone(),
    Props::new(
        Verb::Lsub,
        "LSUB",
        "LSUB <reference> <pattern>",
        "Lists subscribed mailboxes. Deprecated: LIST (SUBSCRIBED) \"\" * in IMAP4rev2.",
        "RFC 3501 §6.3.9",
    ),
    Props::new(
        Verb::Move,
        "MOVE",
        "MOVE <sequence-set> <mailbox>",
        "Moves messages of the selected mailbox to another mailbox, atomically.",
        "RFC 9051 §6.4.8",
    )
    .args(&[Arg::Any, Mailbox])
    .uid("UID MOVE <uid-set> <mailbox>"),
    Props::new(
        Verb::MyRights,
        "MYRIGHTS",
        "MYRIGHTS <mailbox>",
        "Shows the rights the logged-in user has on a mailbox.",
        "RFC 4314 §3.5",
    )
    .with(ACL)
    .args(&[Mailbox]),
    Props::new(
        Verb::Namespace,
        "NAMESPACE",
        "NAMESPACE",
        "Shows the personal, other users' and shared namespaces and their hierarchy delimiters.",
        "RFC 9051 §6.3.10",
    ),
    Props::new(
        Verb::Noop,
        "NOOP",
        "NOOP",
        "Does nothing, so the server can report pending changes (new mail, expunges); also keeps the session alive.",
        "RFC 9051 §6.1.2",
    ),
    Props::new(
        Verb::Notify,
        "NOTIFY",
        "NOTIFY NONE | NOTIFY SET [STATUS] (<mailboxes> (<events>)) ...",
        "Asks the server to report events (MessageNew, MessageExpunge, FlagChange, MailboxName, …) of the selected and other mailboxes as they happen, without IDLE; NOTIFY NONE stops them.",
        "RFC 5465",
    )
    .with(&["NOTIFY"]),
    Props::new(
        Verb::Rename,
        "RENAME",
        "RENAME <mailbox> <new-name>",
        "Renames a mailbox; renaming INBOX moves its messages to the new mailbox.",
        "RFC 9051 §6.3.6",
    )
    .args(&[Mailbox, Mailbox]),
    Props::new(
        Verb::Replace,
        "REPLACE",
        "REPLACE <sequence-number> <mailbox> [(flags)] [date] <literal>",
        "Replaces a message of the selected mailbox with a new one, in one step: the new one is appended to the mailbox and the old one expunged. The literal works as for APPEND.",
        "RFC 8508",
    )
    .with(&["REPLACE"]),
    Props::new(
        Verb::Search,
        "SEARCH",
        "SEARCH [CHARSET <charset>] <criteria>",
        "Finds messages in the selected mailbox: ALL, UNSEEN, FROM \"x\", SUBJECT \"x\", SINCE 1-Jan-2024, LARGER 10000, combined with OR and NOT.",
        "RFC 9051 §6.4.4",
    )
    .uid("UID SEARCH [CHARSET <charset>] <criteria>"),
    Props::new(
        Verb::Select,
        "SELECT",
        "SELECT <mailbox>",
        "Opens a mailbox for reading and changing; the server reports its size, flags and UIDVALIDITY. The prompt shows it once the server confirms.",
        "RFC 9051 §6.3.2",
    )
    .alone()
    .prompt(Effect::Selects)
    .args(&[Mailbox]),
    Props::new(
        Verb::SetAcl,
        "SETACL",
        "SETACL <mailbox> <identifier> [+|-]<rights>",
        "Grants (+), takes away (-) or sets the rights of an identifier on a mailbox, e.g. SETACL INBOX bob +lr.",
        "RFC 4314 §3.1",
    )
    .with(ACL),
    Props::new(
        Verb::SetMetadata,
        "SETMETADATA",
        "SETMETADATA <mailbox> (<entry> <value> ...)",
        "Sets annotations of a mailbox, or of the server with the mailbox \"\"; the value NIL removes one.",
        "RFC 5464 §4.3",
    )
    .with(METADATA),
    Props::new(
        Verb::SetQuota,
        "SETQUOTA",
        "SETQUOTA <quota-root> (<resource> <limit> ...)",
        "Sets the limits of a quota root, e.g. SETQUOTA \"\" (STORAGE 512000); usually for administrators only.",
        "RFC 9208 §4.1.3",
    )
    .with(QUOTA),
    Props::new(
        Verb::Sort,
        "SORT",
        "SORT (<sort-criteria>) <charset> <search-criteria>",
        "Like SEARCH, but the matches come sorted: by ARRIVAL, DATE, FROM, SIZE, SUBJECT, TO or CC, each may follow REVERSE. The charset is required: SORT (REVERSE DATE) UTF-8 ALL.",
        "RFC 5256 §3",
    )
    .with(&["SORT"]),
    Props::new(
        Verb::StartTls,
        "STARTTLS",
        "STARTTLS",
        "Upgrades a plaintext connection to TLS. Prefer --starttls, which does it before anything else is sent.",
        "RFC 9051 §6.2.1",
    )
    .alone()
    .barrier(),
    Props::new(
        Verb::Status,
        "STATUS",
        "STATUS <mailbox> (<items>)",
        "Reports counters of a mailbox without selecting it: MESSAGES, UNSEEN, UIDNEXT, UIDVALIDITY, SIZE, RECENT.",
        "RFC 9051 §6.3.11",
    )
    .args(&[Mailbox, StatusItems]),
    Props::new(
        Verb::Store,
        "STORE",
        "STORE <sequence-set> [+|-]FLAGS[.SILENT] (<flags>)",
        "Sets, adds (+FLAGS) or removes (-FLAGS) flags of messages, e.g. STORE 3 +FLAGS (\\Deleted).",
        "RFC 9051 §6.4.6",
    )
    .args(&[Arg::Any, StoreItems])
    .uid("UID STORE <uid-set> [+|-]FLAGS[.SILENT] (<flags>)"),
    Props::new(
        Verb::Subscribe,
        "SUBSCRIBE",
        "SUBSCRIBE <mailbox>",
        "Adds a mailbox to the subscription list.",
        "RFC 9051 §6.3.7",
    )
    .args(&[Mailbox]),
    Props::new(
        Verb::Thread,
        "THREAD",
        "THREAD <algorithm> <charset> <search-criteria>",
        "Like SEARCH, but the matches come as threads (nested lists), by an algorithm the server lists as THREAD=ORDEREDSUBJECT or THREAD=REFERENCES: THREAD REFERENCES UTF-8 ALL.",
        "RFC 5256 §3",
    )
    .with(&["THREAD"]),
    Props::new(
        Verb::Uid,
        "UID",
        "UID FETCH|STORE|COPY|MOVE|SEARCH|EXPUNGE <uid-set> ...",
        "The same commands with unique identifiers instead of sequence numbers; UIDs stay valid while UIDVALIDITY does not change.",
        "RFC 9051 §6.4.9",
    ),
    Props::new(
        Verb::Unauthenticate,
        "UNAUTHENTICATE",
        "UNAUTHENTICATE",
        "Logs out but keeps the connection: back to the not-authenticated state, ready for another LOGIN or AUTHENTICATE.",
        "RFC 8437",
    )
    .alone()
    .prompt(Effect::LogsOut)
    .with(&["UNAUTHENTICATE"]),
    Props::new(
        Verb::Unselect,
        "UNSELECT",
        "UNSELECT",
        "Leaves the selected mailbox without expunging anything.",
        "RFC 9051 §6.4.2",
    )
    .alone()
    .prompt(Effect::Unselects),
    Props::new(
        Verb::Unsubscribe,
        "UNSUBSCRIBE",
        "UNSUBSCRIBE <mailbox>",
        "Removes a mailbox from the subscription list.",
        "RFC 9051 §6.3.8",
    )
    .args(&[Mailbox]),
    Props::new(
        Verb::Xlist,
        "XLIST",
        "XLIST <reference> <pattern>",
        "Gmail's old LIST that marks special folders (\\Inbox, \\Sent, \\AllMail, …). Where the server offers SPECIAL-USE, LIST shows the same flags.",
        "no RFC; superseded by RFC 6154",
    )
    .with(&["XLIST"]),
];

// The table is indexed by the verb: a compile error, not a wrong lookup,
// if an entry is missing or out of place.
const _: () = {
    assert!(VERBS.len() == Verb::Other as usize);
    let mut i = 0;
    while i < VERBS.len() {
        assert!(VERBS[i].verb as usize == i);
        i += 1;
    }
};

impl Verb {
    /// The verb of a command name, in any case; `Other` when it is none
    /// imaptalk knows.
    pub fn parse(word: &[u8]) -> Verb {
        VERBS
            .iter()
            .find(|p| p.name.as_bytes().eq_ignore_ascii_case(word))
            .map_or(Verb::Other, |p| p.verb)
    }

    /// The verb of a name as [`Prepared::name`] holds it (`UID FETCH` is UID).
    pub fn of_name(name: &str) -> Verb {
        Verb::parse(name.split(' ').next().unwrap_or("").as_bytes())
    }

    /// Every known verb, in the order of their names.
    pub fn all() -> impl Iterator<Item = Verb> {
        VERBS.iter().map(|p| p.verb)
    }

    /// The table entry; None for `Other`.
    pub fn props(self) -> Option<&'static Props> {
        VERBS.get(self as usize)
    }

    /// The name in upper case; None for `Other` (the typed name is in
    /// [`Prepared::name`]).
    pub fn name(self) -> Option<&'static str> {
        self.props().map(|p| p.name)
    }

    /// Whether a server's `+` may be meant for this command: IDLE and
    /// AUTHENTICATE wait for one, and so may extension commands we do not
    /// know.
    pub fn takes_continuation(self) -> bool {
        self.props().is_none_or(|p| p.takes_continuation)
    }

    pub fn secret(self) -> Secret {
        self.props().map_or(Secret::None, |p| p.secret)
    }

    /// `--pipeline`: sent alone (a command we do not know may ask for a
    /// continuation, so it is).
    pub fn alone_in_pipeline(self) -> bool {
        self.props().is_none_or(|p| p.alone_in_pipeline)
    }

    pub fn barrier(self) -> bool {
        self.props().is_some_and(|p| p.barrier)
    }

    pub fn changes_prompt(self) -> bool {
        self.props().is_some_and(|p| p.changes_prompt)
    }

    pub fn effect(self) -> Effect {
        self.props().map_or(Effect::None, |p| p.effect)
    }

    pub fn never_history(self) -> bool {
        self.props().is_some_and(|p| p.never_history)
    }

    pub fn help(self) -> Option<&'static Help> {
        self.props().map(|p| &p.help)
    }

    pub fn uid_syntax(self) -> Option<&'static str> {
        self.props().and_then(|p| p.uid_syntax)
    }

    /// What argument `index` (0 = the first after the name) is, for completion.
    pub fn arg(self, index: usize) -> Arg {
        let args = self.props().map_or(&[][..], |p| p.args);
        match args.get(index) {
            Some(&a) => a,
            None if args.last() == Some(&FetchItems) => FetchItems,
            None => Arg::Any,
        }
    }

    /// Whether completion offers it to a server with these capabilities
    /// (the names without their `=…` part, in upper case).
    pub fn offered(self, caps: &dyn Fn(&str) -> bool) -> bool {
        match self.props().map(|p| p.offer) {
            Some(Offer::Always) => true,
            Some(Offer::With(names)) => names.iter().any(|n| caps(n)),
            None => false,
        }
    }
}

/// Whether a word (in any case) names a command imaptalk knows.
pub fn is_command(word: &[u8]) -> bool {
    Verb::parse(word) != Verb::Other
}

/// A tag may hold any ASTRING-CHAR except `+` (RFC 9051 §9).
fn valid_tag(word: &[u8]) -> bool {
    !word.is_empty()
        && word.iter().all(|&b| {
            b > b' '
                && b < 0x7f
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b'+')
        })
}

/// Hands out `a1`, `a2`, … and skips any tag a user typed that is still in use.
pub struct Tagger {
    prefix: String,
    next: u64,
}

impl Tagger {
    pub fn new(prefix: &str) -> Tagger {
        Tagger {
            prefix: prefix.to_string(),
            next: 1,
        }
    }

    /// The tag the next automatic command will get.
    pub fn peek(&self, in_use: impl Fn(&str) -> bool) -> String {
        let mut n = self.next;
        loop {
            let tag = format!("{}{n}", self.prefix);
            if !in_use(&tag) {
                return tag;
            }
            n += 1;
        }
    }

    pub fn take(&mut self, in_use: impl Fn(&str) -> bool) -> String {
        let tag = self.peek(&in_use);
        self.next = tag[self.prefix.len()..].parse::<u64>().unwrap_or(self.next) + 1;
        tag
    }
}

/// A command line ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub tag: String,
    /// The command name in upper case, `UID FETCH` style for UID commands:
    /// as typed, for messages.
    pub name: String,
    /// What the command is (UID for UID commands).
    pub verb: Verb,
    /// The line as it goes on the wire, without its CRLF.
    pub wire: Vec<u8>,
    /// A literal announced at the end of the line: its data follows.
    pub literal: Option<Announcement>,
}

impl Prepared {
    /// `--pipeline`: whether it is sent alone (see `pipeline`): by its
    /// verb, or because it carries a literal.
    pub fn alone_in_pipeline(&self) -> bool {
        self.literal.is_some() || self.verb.alone_in_pipeline()
    }
}

/// Splits off the first space-separated word.
fn word(s: &[u8]) -> (&[u8], &[u8]) {
    let s = trim_start(s);
    match s.iter().position(|&b| b == b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

/// The command name after the tag (`UID FETCH` for UID commands).
fn command_name(after_tag: &[u8], verb: Verb) -> String {
    let (first, rest) = word(after_tag);
    let mut name = String::with_capacity(first.len() + 8);
    push_upper(&mut name, first);
    if verb == Verb::Uid {
        let (second, _) = word(rest);
        name.push(' ');
        push_upper(&mut name, second);
    }
    name
}

/// Appends `word` in upper case; bytes that are not UTF-8 as U+FFFD.
fn push_upper(name: &mut String, word: &[u8]) {
    if word.is_ascii() {
        name.extend(word.iter().map(|b| char::from(b.to_ascii_uppercase())));
    } else {
        name.push_str(&String::from_utf8_lossy(word).to_ascii_uppercase());
    }
}

/// The verb of a typed line, and the line's own tag when it carries one:
/// a valid tag followed by a known verb (otherwise the first word is the
/// verb, known or not, and the command gets an automatic tag).
fn typed_verb(line: &[u8]) -> (Option<&[u8]>, Verb) {
    let (first, rest) = word(line);
    let verb = Verb::parse(first);
    if verb == Verb::Other && valid_tag(first) {
        let second = Verb::parse(word(rest).0);
        if second != Verb::Other {
            return (Some(first), second);
        }
    }
    (None, verb)
}

/// Turns a typed line (without its line end) into a command: an automatic
/// tag unless the line carries its own, and the literal it announces.
pub fn prepare(
    line: &[u8],
    tagger: &mut Tagger,
    in_use: impl Fn(&str) -> bool,
) -> Result<Prepared, FrameError> {
    let literal = literal_announcement(line, false)?;
    let (own_tag, verb) = typed_verb(line);
    if let Some(tag) = own_tag {
        return Ok(Prepared {
            tag: String::from_utf8_lossy(tag).into_owned(),
            name: command_name(word(line).1, verb),
            verb,
            wire: trim_start(line).to_vec(),
            literal,
        });
    }
    let tag = tagger.take(in_use);
    let body = trim_start(line);
    let mut wire = Vec::with_capacity(tag.len() + 1 + body.len());
    wire.extend_from_slice(tag.as_bytes());
    wire.push(b' ');
    wire.extend_from_slice(body);
    Ok(Prepared {
        tag,
        name: command_name(body, verb),
        verb,
        wire,
        literal,
    })
}

/// What [`prepare`] would answer to [`Prepared::alone_in_pipeline`] for
/// this line, without making the command (`--pipeline` asks it of every
/// line before the line is taken).
pub fn line_alone_in_pipeline(line: &[u8]) -> Result<bool, FrameError> {
    if literal_announcement(line, false)?.is_some() {
        return Ok(true);
    }
    Ok(typed_verb(line).1.alone_in_pipeline())
}

/// A command line as a client sent it, its own tag first (`--listen`
/// shows a mail client's commands): the tag is the first word, whatever
/// it is, and the verb the second. For [`masked`] and messages.
pub fn from_wire(line: &[u8]) -> Prepared {
    let line = crate::protocol::framer::strip_line_end(line);
    let (tag, rest) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &[][..]),
    };
    let verb = Verb::parse(word(rest).0);
    Prepared {
        tag: String::from_utf8_lossy(tag).into_owned(),
        name: command_name(rest, verb),
        verb,
        wire: line.to_vec(),
        literal: literal_announcement(line, false).ok().flatten(),
    }
}

/// The argument that matters for the prompt once the command succeeds:
/// the user of LOGIN (or of AUTHENTICATE PLAIN with an initial response),
/// the mailbox of SELECT and EXAMINE. None when it is not on the line (a
/// literal, a SASL exchange).
pub fn state_argument(p: &Prepared) -> Option<String> {
    let (_tag, rest) = word(&p.wire);
    let (_name, args) = word(rest);
    match p.verb {
        Verb::Login | Verb::Select | Verb::Examine => first_astring(args),
        Verb::Authenticate => {
            let (mech, ir) = word(args);
            if !mech.eq_ignore_ascii_case(b"PLAIN") {
                return None;
            }
            // authzid NUL authcid NUL password: the authcid is the user.
            let plain = STANDARD_PAD_INDIFFERENT.decode(word(ir).0).ok()?;
            let user = plain.split(|&b| b == 0).nth(1)?;
            (!user.is_empty()).then(|| String::from_utf8_lossy(user).into_owned())
        }
        _ => None,
    }
}

/// An astring (atom or quoted string) at the start of `args`; None for a
/// literal or nothing.
pub fn first_astring(args: &[u8]) -> Option<String> {
    let args = trim_start(args);
    match args.first()? {
        b'"' => {
            let mut out = Vec::new();
            let mut i = 1;
            while i < args.len() {
                match args[i] {
                    b'\\' if i + 1 < args.len() => {
                        out.push(args[i + 1]);
                        i += 2;
                    }
                    b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                    b => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            None
        }
        b'{' | b'~' => None,
        _ => Some(String::from_utf8_lossy(word(args).0).into_owned()),
    }
}

/// The literal announced at the end of a continuation of a command line
/// (the text after a literal's data).
pub fn trailing_literal(rest: &[u8]) -> Result<Option<Announcement>, FrameError> {
    literal_announcement(rest, false)
}

/// Why a literal announced in the input cannot be sent. The framer's
/// wording is about the server; in the input the count is the user's.
pub fn input_error(e: &FrameError) -> String {
    match e {
        FrameError::CountTooLong { digits } => {
            format!("a literal count of {digits} digits does not fit in 64 bits")
        }
        FrameError::CountOverflow { count } => {
            format!("a literal of {count} bytes is more than 2^64-1")
        }
        other => other.to_string(),
    }
}

/// A line as it may be shown to the user or kept anywhere: its secret
/// arguments ([`Secret`]: LOGIN passwords, AUTHENTICATE initial responses)
/// become `****`.
pub fn masked(p: &Prepared) -> String {
    let text = String::from_utf8_lossy(&p.wire);
    let mut parts = text.splitn(3, ' ');
    let (tag, name, args) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    match p.verb.secret() {
        Secret::Password => {
            let user = login_user(args.as_bytes());
            format!("{tag} {name} {user} ****")
        }
        Secret::InitialResponse => {
            let (mech, ir) = word(args.as_bytes());
            let mech = String::from_utf8_lossy(mech);
            if ir.is_empty() {
                format!("{tag} {name} {mech}")
            } else {
                format!("{tag} {name} {mech} ****")
            }
        }
        Secret::None => text.into_owned(),
    }
}

/// The user name argument of LOGIN, quoted string or atom or literal.
fn login_user(args: &[u8]) -> String {
    let args = trim_start(args);
    if args.first() == Some(&b'"') {
        let mut i = 1;
        while i < args.len() {
            match args[i] {
                b'\\' => i += 2,
                b'"' => return String::from_utf8_lossy(&args[..=i]).into_owned(),
                _ => i += 1,
            }
        }
        return String::from_utf8_lossy(args).into_owned();
    }
    String::from_utf8_lossy(word(args).0).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prep(line: &str, t: &mut Tagger) -> Prepared {
        prepare(line.as_bytes(), t, |_| false).unwrap()
    }

    #[test]
    fn automatic_and_typed_tags() {
        let mut t = Tagger::new("a");
        let p = prep("LOGIN alice secret", &mut t);
        assert_eq!(
            (p.tag.as_str(), p.wire.as_slice()),
            ("a1", &b"a1 LOGIN alice secret"[..])
        );
        let p = prep("a1 LOGIN alice secret", &mut t);
        assert_eq!((p.tag.as_str(), p.name.as_str()), ("a1", "LOGIN"));
        assert_eq!(p.wire, b"a1 LOGIN alice secret");
        let p = prep(". LIST \"\" *", &mut t);
        assert_eq!(
            (p.tag.as_str(), p.wire.as_slice()),
            (".", &b". LIST \"\" *"[..])
        );
        let p = prep("A select INBOX", &mut t);
        assert_eq!((p.tag.as_str(), p.name.as_str()), ("A", "SELECT"));
        let p = prep("uid fetch 1:* flags", &mut t);
        assert_eq!((p.tag.as_str(), p.name.as_str()), ("a2", "UID FETCH"));
        let p = prep("XSTRANGE thing", &mut t);
        assert_eq!(p.wire, b"a3 XSTRANGE thing");
        // A word that is a command first wins: "search NOOP" is a SEARCH.
        let p = prep("search NOOP", &mut t);
        assert_eq!(p.tag, "a4");
    }

    #[test]
    fn leading_blanks_never_reach_the_wire() {
        // Found by the `command` fuzz target: a typed tag after blanks was
        // sent with the blanks in front of it.
        let mut t = Tagger::new("a");
        let p = prep(" U UID ID \x05V", &mut t);
        assert_eq!(
            (p.tag.as_str(), p.wire.as_slice()),
            ("U", &b"U UID ID \x05V"[..])
        );
        let p = prep("\t NOOP", &mut t);
        assert_eq!(p.wire, b"a1 NOOP");
    }

    #[test]
    fn tags_in_use_are_skipped() {
        let mut t = Tagger::new("x");
        let p = prepare(b"NOOP", &mut t, |tag| tag == "x1" || tag == "x2").unwrap();
        assert_eq!(p.tag, "x3");
        assert_eq!(t.peek(|_| false), "x4");
    }

    #[test]
    fn literals_on_the_line() {
        let mut t = Tagger::new("a");
        let p = prep("APPEND INBOX {12}", &mut t);
        assert_eq!(
            p.literal,
            Some(Announcement {
                len: 12,
                binary: false,
                non_sync: false
            })
        );
        let p = prep("APPEND INBOX ~{3+}", &mut t);
        assert_eq!(
            p.literal,
            Some(Announcement {
                len: 3,
                binary: true,
                non_sync: true
            })
        );
        let p = prep("LOGIN {5-}", &mut t);
        assert_eq!(p.literal.map(|l| l.non_sync), Some(true));
        assert!(prepare(b"APPEND x {99999999999999999999999}", &mut t, |_| false).is_err());
    }

    #[test]
    fn state_arguments() {
        let mut t = Tagger::new("a");
        let arg = |line: &str, t: &mut Tagger| state_argument(&prep(line, t));
        assert_eq!(arg("LOGIN alice pw", &mut t).as_deref(), Some("alice"));
        assert_eq!(
            arg("x LOGIN \"al \\\"ice\" pw", &mut t).as_deref(),
            Some("al \"ice")
        );
        assert_eq!(arg("LOGIN {5}", &mut t), None);
        assert_eq!(arg("select INBOX", &mut t).as_deref(), Some("INBOX"));
        assert_eq!(
            arg("EXAMINE \"Sent Items\"", &mut t).as_deref(),
            Some("Sent Items")
        );
        // "\0alice\0wonderland"
        assert_eq!(
            arg("AUTHENTICATE PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=", &mut t).as_deref(),
            Some("alice")
        );
        assert_eq!(arg("AUTHENTICATE PLAIN", &mut t), None);
        assert_eq!(arg("NOOP", &mut t), None);
    }

    #[test]
    fn lines_as_a_client_sent_them() {
        let p = from_wire(b"A001 login alice {5}\r\n");
        assert_eq!(
            (p.tag.as_str(), p.name.as_str(), p.verb),
            ("A001", "LOGIN", Verb::Login)
        );
        assert_eq!(p.literal.map(|l| l.len), Some(5));
        assert_eq!(masked(&p), "A001 login alice ****");
        let p = from_wire(b"7 AUTHENTICATE PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=");
        assert_eq!(masked(&p), "7 AUTHENTICATE PLAIN ****");
        // A tag that is a verb, or no tag at all: still the first word.
        let p = from_wire(b"NOOP LOGOUT");
        assert_eq!((p.tag.as_str(), p.verb), ("NOOP", Verb::Logout));
        let p = from_wire(b"x1 uid fetch 1:* FLAGS");
        assert_eq!((p.name.as_str(), p.verb), ("UID FETCH", Verb::Uid));
        let p = from_wire(b"");
        assert_eq!((p.tag.as_str(), p.verb), ("", Verb::Other));
    }

    #[test]
    fn masking() {
        let mut t = Tagger::new("a");
        assert_eq!(
            masked(&prep("LOGIN alice s3cret", &mut t)),
            "a1 LOGIN alice ****"
        );
        assert_eq!(
            masked(&prep("x LOGIN \"al ice\" \"pw d\"", &mut t)),
            "x LOGIN \"al ice\" ****"
        );
        assert_eq!(
            masked(&prep("AUTHENTICATE PLAIN AGFsaWNlAHB3", &mut t)),
            "a2 AUTHENTICATE PLAIN ****"
        );
        assert_eq!(
            masked(&prep("AUTHENTICATE PLAIN", &mut t)),
            "a3 AUTHENTICATE PLAIN"
        );
        assert_eq!(masked(&prep("SELECT INBOX", &mut t)), "a4 SELECT INBOX");
    }
    /// The names with a property, to compare with the rules as they were
    /// before the table (each was a list of names in its own file).
    fn having(f: impl Fn(Verb) -> bool) -> Vec<&'static str> {
        Verb::all()
            .filter(|&v| f(v))
            .filter_map(Verb::name)
            .collect()
    }

    #[test]
    fn the_table_is_in_name_order_and_names_round_trip() {
        let names: Vec<_> = VERBS.iter().map(|p| p.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for (i, p) in VERBS.iter().enumerate() {
            assert_eq!(p.verb as usize, i);
            assert_eq!(Verb::parse(p.name.as_bytes()), p.verb);
            assert_eq!(Verb::parse(p.name.to_ascii_lowercase().as_bytes()), p.verb);
            assert_eq!(p.verb.name(), Some(p.name));
            assert!(p.name.bytes().all(|b| b.is_ascii_uppercase()), "{}", p.name);
            assert!(is_command(p.name.as_bytes()));
        }
        assert_eq!(Verb::all().count(), VERBS.len());
        assert_eq!(Verb::Other.name(), None);
        assert_eq!(Verb::Other.props(), None);
        for word in ["", "DONE", "XSTRANGE", "UID FETCH", "LOGIN ", "FETCHX"] {
            assert_eq!(Verb::parse(word.as_bytes()), Verb::Other, "{word}");
        }
        assert_eq!(Verb::of_name("UID FETCH"), Verb::Uid);
        assert_eq!(Verb::of_name("IDLE"), Verb::Idle);
    }

    #[test]
    fn every_verb_has_help_whose_syntax_starts_with_its_name() {
        for p in VERBS {
            let h = &p.help;
            assert_eq!(h.syntax.split(' ').next(), Some(p.name), "{}", p.name);
            assert!(!h.about.is_empty() && h.about.ends_with('.'), "{}", p.name);
            assert!(h.rfc.contains("RFC"), "{}", p.name);
            if let Some(uid) = p.uid_syntax {
                assert!(uid.starts_with(&format!("UID {} ", p.name)), "{uid}");
            }
        }
        // The UID entry names exactly the commands with a UID form.
        let listed = Verb::Uid.help().unwrap().syntax.split(' ').nth(1).unwrap();
        let listed: Vec<_> = listed.split('|').collect();
        let mut with_uid = having(|v| v.uid_syntax().is_some());
        with_uid.sort_by_key(|n| listed.iter().position(|l| l == n));
        assert_eq!(listed, with_uid);
    }

    #[test]
    fn properties_are_the_rules_as_they_were() {
        assert_eq!(having(Verb::takes_continuation), ["AUTHENTICATE", "IDLE"]);
        assert!(Verb::Other.takes_continuation());
        assert!(Verb::of_name("XSTRANGE").takes_continuation() && Verb::Idle.takes_continuation());
        assert!(
            !Verb::of_name("UID FETCH").takes_continuation() && !Verb::Noop.takes_continuation()
        );
        assert_eq!(
            having(Verb::alone_in_pipeline),
            [
                "AUTHENTICATE",
                "CLOSE",
                "COMPRESS",
                "ENABLE",
                "EXAMINE",
                "IDLE",
                "LOGIN",
                "LOGOUT",
                "SELECT",
                "STARTTLS",
                "UNAUTHENTICATE",
                "UNSELECT"
            ]
        );
        assert!(Verb::Other.alone_in_pipeline());
        assert_eq!(having(Verb::barrier), ["COMPRESS", "STARTTLS"]);
        assert_eq!(
            having(Verb::changes_prompt),
            [
                "CLOSE",
                "EXAMINE",
                "LOGIN",
                "SELECT",
                "UNAUTHENTICATE",
                "UNSELECT"
            ]
        );
        assert_eq!(having(Verb::never_history), ["AUTHENTICATE", "LOGIN"]);
        assert_eq!(
            having(|v| v.secret() != Secret::None),
            ["AUTHENTICATE", "LOGIN"]
        );
        assert_eq!(Verb::Login.secret(), Secret::Password);
        assert_eq!(Verb::Authenticate.secret(), Secret::InitialResponse);
        let effect = |e| having(|v| v.effect() == e);
        assert_eq!(effect(Effect::LogsIn), ["AUTHENTICATE", "LOGIN"]);
        assert_eq!(effect(Effect::Selects), ["EXAMINE", "SELECT"]);
        assert_eq!(effect(Effect::Unselects), ["CLOSE", "UNSELECT"]);
        assert_eq!(effect(Effect::LogsOut), ["UNAUTHENTICATE"]);
        for v in Verb::all().chain([Verb::Other]) {
            // A command the server may answer with `+`, or that changes
            // the connection or the state, never shares the wire.
            if v.takes_continuation() || v.barrier() || v.changes_prompt() {
                assert!(v.alone_in_pipeline(), "{v:?}");
            }
            if v.secret() != Secret::None {
                assert!(v.never_history(), "{v:?}");
            }
            // The prompt follows each state change: by waiting for the
            // completion, or (AUTHENTICATE) for the `+` first.
            if v.effect() != Effect::None {
                assert!(v.changes_prompt() || v.takes_continuation(), "{v:?}");
            }
        }
    }

    #[test]
    fn completion_offers_the_base_commands_always_and_extensions_by_capability() {
        let none = |_: &str| false;
        assert_eq!(
            having(|v| v.offered(&none)),
            [
                "APPEND",
                "AUTHENTICATE",
                "CAPABILITY",
                "CHECK",
                "CLOSE",
                "COPY",
                "CREATE",
                "DELETE",
                "ENABLE",
                "EXAMINE",
                "EXPUNGE",
                "FETCH",
                "IDLE",
                "LIST",
                "LOGIN",
                "LOGOUT",
                "LSUB",
                "MOVE",
                "NAMESPACE",
                "NOOP",
                "RENAME",
                "SEARCH",
                "SELECT",
                "STARTTLS",
                "STATUS",
                "STORE",
                "SUBSCRIBE",
                "UID",
                "UNSELECT",
                "UNSUBSCRIBE"
            ]
        );
        let only = |cap: &'static str| move |c: &str| c == cap;
        let added = |cap: &'static str| {
            let with = only(cap);
            having(|v| v.offered(&with) && !v.offered(&none))
        };
        assert_eq!(added("QUOTA"), ["GETQUOTA", "GETQUOTAROOT", "SETQUOTA"]);
        assert_eq!(
            added("ACL"),
            ["DELETEACL", "GETACL", "LISTRIGHTS", "MYRIGHTS", "SETACL"]
        );
        assert_eq!(added("METADATA-SERVER"), ["GETMETADATA", "SETMETADATA"]);
        assert_eq!(added("COMPRESS"), ["COMPRESS"]);
        // ESEARCH is a capability (a form of SEARCH results); the ESEARCH
        // command comes with MULTISEARCH.
        assert!(added("ESEARCH").is_empty());
        assert_eq!(added("MULTISEARCH"), ["ESEARCH"]);
        assert!(!Verb::Other.offered(&|_| true));
        // Every verb is offered by some capability list.
        assert_eq!(having(|v| v.offered(&|_| true)).len(), VERBS.len());
    }

    #[test]
    fn arguments_for_completion() {
        assert_eq!(Verb::Select.arg(0), Arg::Mailbox);
        assert_eq!(Verb::Select.arg(1), Arg::Any);
        assert_eq!(Verb::Rename.arg(1), Arg::Mailbox);
        assert_eq!(Verb::Copy.arg(0), Arg::Any);
        assert_eq!(Verb::Copy.arg(1), Arg::Mailbox);
        assert_eq!(Verb::Copy.arg(2), Arg::Any);
        assert_eq!(Verb::Fetch.arg(0), Arg::Any);
        assert_eq!(Verb::Fetch.arg(5), Arg::FetchItems);
        assert_eq!(Verb::Status.arg(1), Arg::StatusItems);
        assert_eq!(Verb::Status.arg(2), Arg::Any);
        assert_eq!(Verb::Other.arg(0), Arg::Any);
    }

    #[test]
    fn prepared_commands_carry_their_verb() {
        let mut t = Tagger::new("a");
        assert_eq!(prep("select INBOX", &mut t).verb, Verb::Select);
        assert_eq!(prep("x1 Idle", &mut t).verb, Verb::Idle);
        assert_eq!(prep("uid fetch 1 FLAGS", &mut t).verb, Verb::Uid);
        let p = prep("XSTRANGE thing", &mut t);
        assert_eq!((p.verb, p.name.as_str()), (Verb::Other, "XSTRANGE"));
        assert!(p.alone_in_pipeline());
        assert!(!prep("NOOP", &mut t).alone_in_pipeline());
        assert!(prep("APPEND INBOX {3}", &mut t).alone_in_pipeline());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashSet;

        /// A tag a user may type: valid, and not itself a command name.
        fn typed_tag() -> impl Strategy<Value = String> {
            "[A-Za-z0-9.!#$&',/:;<=>?@^_`|~-]{1,8}"
                .prop_filter("a command name", |t| !is_command(t.as_bytes()))
        }

        /// A name with each letter in a random case.
        fn any_case(name: &'static str) -> impl Strategy<Value = String> {
            proptest::collection::vec(any::<bool>(), name.len()).prop_map(move |upper| {
                name.chars()
                    .zip(upper)
                    .map(|(c, u)| {
                        if u {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect()
            })
        }

        proptest! {
            #[test]
            fn verbs_parse_in_any_case(
                (verb, typed) in proptest::sample::select(VERBS)
                    .prop_flat_map(|p| (Just(p.verb), any_case(p.name)))
            ) {
                prop_assert_eq!(Verb::parse(typed.as_bytes()), verb);
            }

            #[test]
            fn parsing_any_bytes_never_panics_and_ignores_case(
                word in proptest::collection::vec(any::<u8>(), 0..20)
            ) {
                let verb = Verb::parse(&word);
                prop_assert_eq!(Verb::parse(&word.to_ascii_uppercase()), verb);
                prop_assert_eq!(Verb::parse(&word.to_ascii_lowercase()), verb);
                match verb.name() {
                    Some(name) => prop_assert!(name.as_bytes().eq_ignore_ascii_case(&word)),
                    None => prop_assert_eq!(verb, Verb::Other),
                }
            }

            #[test]
            fn alone_in_pipeline_is_answered_as_prepare_would(
                words in proptest::collection::vec(prop_oneof![
                    proptest::sample::select(VERBS).prop_map(|p| p.name.to_string()),
                    Just("a1".to_string()), Just("x.y".to_string()), Just("{3}".to_string()),
                    Just("{3+}".to_string()), Just("\"q\"".to_string()), Just("*".to_string()),
                    "[ -~]{0,6}",
                ], 0..5),
                lead in "[ \t]{0,2}",
            ) {
                let line = format!("{lead}{}", words.join(" "));
                let full = prepare(line.as_bytes(), &mut Tagger::new("a"), |_| false)
                    .map(|p| p.alone_in_pipeline());
                prop_assert_eq!(line_alone_in_pipeline(line.as_bytes()), full, "{:?}", line);
            }

            #[test]
            fn arbitrary_lines_never_panic_and_keep_their_bytes(
                line in proptest::collection::vec(any::<u8>(), 0..200)
            ) {
                let mut t = Tagger::new("a");
                match prepare(&line, &mut t, |_| false) {
                    Ok(p) => {
                        // The tag, one space, the line without leading blanks:
                        // nothing added, nothing lost.
                        let body = trim_start(&line);
                        let automatic = [format!("{} ", p.tag).as_bytes(), body].concat();
                        prop_assert!(p.wire == automatic || p.wire == body);
                        prop_assert!(p.wire.starts_with(p.tag.as_bytes()));
                        prop_assert_eq!(p.wire.get(p.tag.len()), Some(&b' '));
                        // The server reads the same count from the wire as
                        // the client will send.
                        prop_assert_eq!(literal_announcement(&p.wire, false), Ok(p.literal));
                        let _ = masked(&p);
                        let _ = state_argument(&p);
                    }
                    Err(e) => prop_assert_eq!(literal_announcement(&line, false), Err(e)),
                }
            }

            #[test]
            fn announced_literals_are_read_back_exactly(
                prefix in "[ -z|~]{0,40}",
                len in any::<u64>(),
                binary in any::<bool>(),
                mark in prop_oneof![Just(""), Just("+"), Just("-")],
            ) {
                let line = format!("APPEND INBOX {prefix} {}{{{len}{mark}}}", if binary { "~" } else { "" });
                let p = prepare(line.as_bytes(), &mut Tagger::new("a"), |_| false).unwrap();
                let lit = p.literal.unwrap();
                prop_assert_eq!(lit.len, len);
                prop_assert_eq!(lit.binary, binary);
                prop_assert_eq!(lit.non_sync, !mark.is_empty());
                prop_assert!(p.wire.ends_with(line.as_bytes()));
            }

            #[test]
            fn automatic_tags_are_unique_increasing_and_never_in_use(
                prefix in "[a-zA-Z.]{1,4}",
                busy in proptest::collection::hash_set(1u64..60, 0..30),
                n in 1usize..50,
            ) {
                let busy: HashSet<String> = busy.iter().map(|i| format!("{prefix}{i}")).collect();
                let mut t = Tagger::new(&prefix);
                let mut seen = HashSet::new();
                let mut last = 0u64;
                for _ in 0..n {
                    let peeked = t.peek(|x| busy.contains(x));
                    let tag = t.take(|x| busy.contains(x));
                    prop_assert_eq!(&peeked, &tag);
                    prop_assert!(!busy.contains(&tag));
                    let num: u64 = tag[prefix.len()..].parse().unwrap();
                    prop_assert!(num > last);
                    last = num;
                    prop_assert!(seen.insert(tag));
                }
            }

            #[test]
            fn typed_tags_are_kept_and_the_line_goes_out_as_typed(
                tag in typed_tag(),
                name in proptest::sample::select(VERBS.iter().map(|p| p.name).collect::<Vec<_>>()),
                args in "[ -~]{0,40}",
            ) {
                let line = format!("{tag} {name} {args}");
                let mut t = Tagger::new("a");
                if let Ok(p) = prepare(line.as_bytes(), &mut t, |_| false) {
                    prop_assert_eq!(&p.tag, &tag);
                    prop_assert_eq!(p.wire, line.as_bytes());
                    prop_assert!(p.name.starts_with(name));
                    prop_assert_eq!(Some(p.verb), Verb::all().find(|v| v.name() == Some(name)));
                    // No automatic tag was used up.
                    prop_assert_eq!(t.peek(|_| false), "a1");
                }
            }
        }
    }
}
