//! The interactive driver: a rustyline prompt on its own thread, server
//! output printed above it as it arrives.
//!
//! rustyline is blocking and has no async interface, so the editor runs on
//! a thread and hands each line to the session over a channel as soon as
//! Enter is pressed. It never waits for the session between lines: what is
//! typed or pasted while a command runs is read, shown, and queued by the
//! session core, which decides when it goes and what it is (a command, an
//! answer to `+`, literal data, a line for history). Ctrl-C and Ctrl-D are
//! keys the editor always sees, so they reach the core as inputs at any
//! time.
//!
//! The prompt follows the session: the driver sends it (through the screen
//! thread, in order with the output) whenever it changes. rustyline fixes
//! the prompt of a line once it starts reading it, so the screen thread
//! interrupts the editor with a SIGINT aimed at its thread (rustyline
//! turns it into `Interrupted`, like Ctrl-C), and the editor erases the
//! old prompt and starts again with the new one and the half-typed line as
//! it was.
//!
//! Output is written the same way: the screen thread gathers what has
//! queued up (one redraw per line would be ~20x slower on bulk output),
//! has the editor step aside (erase its prompt and line), writes, and the
//! editor draws them again below. So output is never drawn over, erased
//! or reordered, which rustyline's `ExternalPrinter` cannot promise: what
//! it has not drawn when a line ends waits for the next line, and output
//! written in between would come first. (On Windows a console read cannot
//! be interrupted by a signal: the screen thread types the editor a key
//! bound to the same end instead, see `signals::Interruptible`.) The
//! printer is still used where the editor cannot be interrupted (no
//! SIGINT handler, stdin no console).

use crate::app::complete::{DrawHook, ReplHelper, Shared};
use crate::app::signals::Interruptible;
use crate::core::meta::{self, Meta, Request};
use crate::core::sasl::Secret;
use crate::core::session::Input;
use crate::platform::console::TerminalMode;
use crate::platform::files;
use anyhow::{Context, Result};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Editor, Event, EventContext,
    EventHandler, ExternalPrinter, KeyEvent, RepeatCount,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc;
use unicode_width::{UnicodeWidthChar as _, UnicodeWidthStr as _};

/// How long the editor waits, after a line, for the session's answer (the
/// next prompt) before it reads on with the prompt it has. The session
/// answers in microseconds unless it is busy writing; a later answer
/// redraws the prompt.
const ANSWER_WAIT: Duration = Duration::from_millis(200);

/// How long the screen thread waits for the editor to redraw its prompt
/// before it prints on (a safety net: the editor always answers).
const REDRAW_WAIT: Duration = Duration::from_secs(1);

/// What the editor shows for the line being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    pub kind: PromptKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// A command line.
    Command,
    /// A line that waits for a command's answer (queued).
    Waiting,
    /// An answer to the server's `+` (SASL data, IDLE's DONE).
    Continuation,
    /// Data of a literal the typed line announced.
    Literal,
}

/// What the command prompt shows: the state the server has confirmed.
#[derive(Debug, Clone, Copy)]
pub struct PromptState<'a> {
    pub host: &'a str,
    pub tls: bool,
    /// Logged in, as this user (`?` when the server did not say who).
    pub user: Option<&'a str>,
    /// The selected mailbox.
    pub mailbox: Option<&'a str>,
    pub tag: &'a str,
}

/// The command prompt, e.g. `alice@imap.example.com 🔒 INBOX a7> `. Parts
/// are dropped (host first, then the user, then the lock and mailbox) until
/// the prompt takes at most half of `width` columns, so there is room to
/// type; `utf8` false gives a plain-ASCII form (`tls` instead of the lock)
/// for terminals that cannot show it ([`shows_emoji`](crate::platform::console::shows_emoji)).
pub fn command_prompt(s: &PromptState, width: usize, utf8: bool) -> String {
    let lock = match (s.tls, utf8) {
        (true, true) => "\u{1f512}",
        (false, true) => "\u{1f513}",
        (true, false) => "tls",
        (false, false) => "plain",
    };
    let who = match s.user {
        Some(u) => format!("{u}@{}", s.host),
        None => s.host.to_string(),
    };
    let mailbox = s.mailbox.map(|m| format!(" {m}")).unwrap_or_default();
    let tag = s.tag;
    let forms = [
        format!("{who} {lock}{mailbox} {tag}> "),
        match s.user {
            Some(u) => format!("{u} {lock}{mailbox} {tag}> "),
            None => format!("{lock}{mailbox} {tag}> "),
        },
        format!("{lock}{mailbox} {tag}> "),
        format!("{tag}> "),
    ];
    let budget = width / 2;
    forms
        .iter()
        .find(|f| f.width() <= budget)
        .unwrap_or(&forms[3])
        .clone()
}

/// Columns of the terminal on stdout (80 when it cannot be told).
pub fn terminal_width() -> usize {
    terminal_size::terminal_size()
        .map(|(w, _)| usize::from(w.0))
        .filter(|&w| w > 0)
        .unwrap_or(80)
}

/// What the REPL is told, in order: output, the prompt, history.
#[derive(Debug)]
pub enum Screen {
    /// Text to print above the prompt.
    Text(String),
    /// A line of progress drawn before the prompt, in place (a long
    /// literal being received); None takes it away.
    Status(Option<String>),
    /// The prompt changed.
    Prompt(Prompt),
    /// A line for history (the session decided it may be kept).
    History(String),
}

/// Where the driver and the renderer send what the REPL shows.
#[derive(Debug, Clone)]
pub struct ScreenTx(Tx);

#[derive(Debug, Clone)]
enum Tx {
    /// The REPL's: at most [`SCREEN_QUEUE`] items wait, so that a server
    /// faster than the terminal is slowed down to it (as a write to
    /// stdout is) instead of its output piling up in memory.
    Bounded(std_mpsc::SyncSender<Screen>),
    /// Read after the fact (tests).
    Unbounded(std_mpsc::Sender<Screen>),
}

/// How many texts (each at most what one read of the server renders to,
/// or 64 KiB of a long line) and prompts may wait for the screen thread.
const SCREEN_QUEUE: usize = 4;

impl ScreenTx {
    /// A screen whose receiver may be read after the fact, all at once.
    pub fn new(tx: std_mpsc::Sender<Screen>) -> ScreenTx {
        ScreenTx(Tx::Unbounded(tx))
    }

    fn send(&self, item: Screen) -> bool {
        match &self.0 {
            Tx::Bounded(tx) => tx.send(item).is_ok(),
            Tx::Unbounded(tx) => tx.send(item).is_ok(),
        }
    }

    /// False when the screen is gone (the terminal closed).
    pub fn text(&self, text: String) -> bool {
        self.send(Screen::Text(text))
    }

    pub fn prompt(&self, prompt: Prompt) {
        let _ = self.send(Screen::Prompt(prompt));
    }

    pub fn history(&self, line: String) {
        let _ = self.send(Screen::History(line));
    }

    pub fn status(&self, status: Option<String>) {
        let _ = self.send(Screen::Status(status));
    }
}

/// What the screen thread and the editor thread share.
struct Link {
    prompt: Prompt,
    /// Progress shown before the prompt.
    status: Option<String>,
    /// Counts the prompts the session sent (one answers each line).
    generation: u64,
    /// The prompt the line being read shows (with the status).
    shown: Prompt,
    state: State,
    /// The editor was interrupted (to redraw or to let output through),
    /// not by Ctrl-C.
    poked: bool,
    /// The screen thread has output to write: the editor steps aside.
    pause: bool,
    /// The line, cursor and hint as last drawn.
    line: String,
    pos: usize,
    hint: Option<String>,
    history: Vec<String>,
    /// A SIGINT handler is in place: the editor may be interrupted.
    can_poke: bool,
    /// Not a terminal rustyline can drive (TERM=dumb): lines are read as
    /// the terminal delivers them, and the prompt is printed again after
    /// output instead of redrawn.
    dumb: bool,
    /// The editor's thread, to interrupt its read (Unix only).
    thread: Option<Interruptible>,
}

/// Where the editor is, for the screen thread: output is written only
/// while rustyline draws nothing, so that nothing printed is drawn over,
/// erased, or shown out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not in a line (between lines, asking for a password): output may
    /// be written; the next line is drawn below it.
    Idle,
    /// rustyline is reading a line (and its SIGINT handler is in place).
    Reading,
    /// The line ended; the editor is erasing it or about to step aside.
    Busy,
    /// Erased and waiting for the screen thread to write.
    Paused,
    /// The editor thread has ended.
    Gone,
}

impl Link {
    /// The prompt as drawn: the progress, if any, before it.
    fn display(&self) -> Prompt {
        match &self.status {
            Some(status) => Prompt {
                text: format!("{status} {}", self.prompt.text),
                kind: self.prompt.kind,
            },
            None => self.prompt.clone(),
        }
    }
}

#[derive(Clone)]
struct LinkRef(Arc<(Mutex<Link>, Condvar)>);

impl LinkRef {
    fn lock(&self) -> MutexGuard<'_, Link> {
        self.0.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        self.0.1.notify_all();
    }

    /// Waits (at most `limit`) until `done` holds.
    fn wait_until(&self, limit: Duration, done: impl Fn(&Link) -> bool) {
        drop(self.wait_with(self.lock(), limit, done));
    }

    /// The same, with the lock held before and after.
    fn wait_with<'a>(
        &'a self,
        guard: MutexGuard<'a, Link>,
        limit: Duration,
        done: impl Fn(&Link) -> bool,
    ) -> MutexGuard<'a, Link> {
        match self.0.1.wait_timeout_while(guard, limit, |l| !done(l)) {
            Ok((g, _)) => g,
            Err(e) => e.into_inner().0,
        }
    }
}

pub struct Repl {
    /// Output, prompts and history for the screen.
    pub screen: ScreenTx,
    /// What the session learns for completion (capabilities, mailboxes).
    pub known: Shared,
    printer_thread: JoinHandle<()>,
    editing: Arc<AtomicBool>,
    saved: Option<TerminalMode>,
}

impl Repl {
    /// Starts the editor and screen threads; the receiver yields what is
    /// typed. History is loaded from and appended to `history`, if given.
    /// `color`: hints are shown dimmed. `first`: the prompt until the
    /// session sends one (while connecting). `redraw`: a SIGINT handler is
    /// in place for the whole run, so the editor may be interrupted to
    /// redraw its prompt (else the prompt changes at the next line only).
    pub fn start(
        history: Option<PathBuf>,
        color: bool,
        first: Prompt,
        redraw: bool,
    ) -> Result<(Repl, mpsc::Receiver<Input>)> {
        let saved = TerminalMode::save();
        let config = Config::builder()
            .auto_add_history(false)
            .history_ignore_space(true)
            .max_history_size(1000)
            .context("configuring the line editor")?
            .completion_type(CompletionType::List)
            .build();
        let mut editor: LineEditor =
            Editor::with_config(config).context("starting the line editor")?;
        let known = Shared::default();
        let link = LinkRef(Arc::new((
            Mutex::new(Link {
                shown: first.clone(),
                status: None,
                prompt: first,
                generation: 0,
                state: State::Idle,
                poked: false,
                pause: false,
                line: String::new(),
                pos: 0,
                hint: None,
                history: Vec::new(),
                can_poke: redraw,
                dumb: false,
                thread: None,
            }),
            Condvar::new(),
        )));
        let seen = link.clone();
        let on_draw: DrawHook = Box::new(move |line, pos, hint| {
            let mut l = seen.lock();
            if l.state == State::Idle {
                // The first drawing of a line: rustyline's handler is in
                // place now. A prompt that changed since the line started,
                // or output waiting, interrupts it at once.
                l.state = State::Reading;
                if (l.display() != l.shown || l.pause) && !l.poked {
                    l.poked = poke(&l);
                }
            }
            l.line.clear();
            l.line.push_str(line);
            l.pos = pos;
            l.hint = hint.map(str::to_string);
        });
        // Ctrl-C is told apart from the SIGINT that interrupts the editor
        // to redraw: both end the line as `Interrupted`.
        let ctrl_c = Arc::new(AtomicBool::new(false));
        editor.bind_sequence(
            KeyEvent::ctrl('C'),
            EventHandler::Conditional(Box::new(CtrlC(ctrl_c.clone()))),
        );
        // On Windows the redraw comes as a key the screen thread types
        // (platform::console::REDRAW_F_KEY): it ends the line like the SIGINT.
        editor.bind_sequence(
            KeyEvent(
                rustyline::KeyCode::F(crate::platform::console::REDRAW_F_KEY),
                rustyline::Modifiers::CTRL_ALT_SHIFT,
            ),
            EventHandler::Simple(Cmd::Interrupt),
        );
        editor.set_helper(Some(ReplHelper {
            known: known.clone(),
            color,
            on_draw: Some(on_draw),
        }));
        let history = history.and_then(|path| match open_history(&path) {
            Ok(()) => {
                if let Err(e) = editor.load_history(&path) {
                    crate::error::say(&format!(
                        "imaptalk: warning: history {}: {e}",
                        path.display()
                    ));
                }
                Some(path)
            }
            Err(e) => {
                crate::error::say(&format!(
                    "imaptalk: warning: history {}: {e}; keeping it in memory only",
                    path.display()
                ));
                None
            }
        });
        let (screen_tx, screen_rx) = std_mpsc::sync_channel::<Screen>(SCREEN_QUEUE);
        let printer = editor.create_external_printer().ok();
        link.lock().dumb = printer.is_none();
        let screen_link = link.clone();
        let printer_thread = std::thread::spawn(move || {
            screen_loop(&screen_rx, printer, &screen_link);
        });
        let (input_tx, input_rx) = mpsc::channel(64);
        let editing = Arc::new(AtomicBool::new(true));
        let flag = editing.clone();
        std::thread::spawn(move || {
            link.lock().thread = Interruptible::current();
            edit_loop(&mut editor, history.as_deref(), &link, &ctrl_c, &input_tx);
            let mut l = link.lock();
            l.state = State::Gone;
            l.poked = false;
            l.can_poke = false;
            drop(l);
            link.notify();
            flag.store(false, Ordering::SeqCst);
        });
        let repl = Repl {
            screen: ScreenTx(Tx::Bounded(screen_tx)),
            known,
            printer_thread,
            editing,
            saved,
        };
        Ok((repl, input_rx))
    }

    /// Waits until everything queued is printed, and puts the terminal back
    /// the way it was if the editor is still in the middle of a line (the
    /// session ended while the user was typing).
    pub fn finish(self) {
        let Repl {
            screen,
            printer_thread,
            known: _,
            editing,
            saved,
        } = self;
        drop(screen);
        let _ = printer_thread.join();
        if editing.load(Ordering::SeqCst) {
            if let Some(t) = &saved {
                t.restore();
            }
            // Bracketed paste off, and leave the shell a fresh line: the
            // prompt of the line being typed is not left behind either.
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\r\x1b[2K\x1b[?2004l");
            let _ = out.flush();
        }
    }
}

/// Interrupts the editor's read so that it redraws; false if it cannot be.
fn poke(l: &Link) -> bool {
    if !l.can_poke {
        return false;
    }
    l.thread.is_some_and(Interruptible::interrupt)
}

/// Prints output above the prompt, keeps the prompt and history for the
/// editor, and has it redraw when the prompt changes.
fn screen_loop(
    rx: &std_mpsc::Receiver<Screen>,
    mut printer: Option<impl ExternalPrinter>,
    link: &LinkRef,
) {
    let mut batch = String::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        // Whatever has queued up: text in one batch, the prompt and
        // history in their place.
        while let Some(item) = next.take() {
            match item {
                Screen::Text(text) => {
                    batch.push_str(&text);
                    // rustyline adds a missing line end only while a prompt
                    // is active: end every piece with one, so output never
                    // runs into the shell's.
                    if !batch.ends_with('\n') {
                        batch.push('\n');
                    }
                }
                Screen::History(line) => link.lock().history.push(line),
                Screen::Status(status) => {
                    let mut l = link.lock();
                    l.status = status;
                    if l.state == State::Reading && l.display() != l.shown && !l.dumb && !l.poked {
                        l.poked = poke(&l);
                    }
                }
                Screen::Prompt(prompt) => {
                    if !print(&mut printer, &mut batch, link) {
                        return;
                    }
                    let mut l = link.lock();
                    l.prompt = prompt;
                    // The editor waiting for the answer to its line has it.
                    l.generation += 1;
                    if l.state == State::Reading && l.display() != l.shown {
                        if l.dumb {
                            reprint(&mut l);
                        } else if !l.poked {
                            l.poked = poke(&l);
                        }
                    }
                    drop(l);
                    link.notify();
                }
            }
            if batch.len() < 256 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        if !print(&mut printer, &mut batch, link) {
            return;
        }
    }
}

/// Prints the batch above the prompt; false when the terminal is gone.
///
/// Where the editor can be interrupted, the text is written here, while
/// rustyline draws nothing: the editor erases its prompt and line, the
/// text goes, and the editor draws them again below it. rustyline's own
/// printer is not used there: what it has not drawn yet when a line ends
/// waits for the next line, and output written meanwhile would come first.
fn print(printer: &mut Option<impl ExternalPrinter>, batch: &mut String, link: &LinkRef) -> bool {
    if batch.is_empty() {
        return true;
    }
    let text = std::mem::take(batch);
    let mut l = link.lock();
    if l.can_poke && !l.dumb {
        if matches!(l.state, State::Reading | State::Busy) {
            l.pause = true;
            if l.state == State::Reading && !l.poked {
                l.poked = poke(&l);
            }
            l = link.wait_with(l, REDRAW_WAIT, |l| {
                matches!(l.state, State::Paused | State::Idle | State::Gone)
            });
        }
        let ok = write_out(&text);
        l.pause = false;
        drop(l);
        link.notify();
        return ok;
    }
    drop(l);
    match printer {
        Some(p) => p.print(text).is_ok(),
        // No printer (not a terminal rustyline can drive): print
        // directly, and the prompt again below.
        None => {
            let ok = write_out(&text);
            let mut l = link.lock();
            if l.state == State::Reading {
                reprint(&mut l);
            }
            ok
        }
    }
}

fn write_out(text: &str) -> bool {
    let mut out = std::io::stdout();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

/// A dumb terminal: the prompt is printed as it is now.
fn reprint(l: &mut Link) {
    let mut out = std::io::stdout();
    let _ = out.write_all(l.prompt.text.as_bytes());
    let _ = out.flush();
    l.shown = l.display();
}

/// Creates the history file (and its directory) private to the user before
/// anything is written to it; an existing file is made private too.
fn open_history(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        files::create_private_dir_all(parent)?;
    }
    let f = files::private(std::fs::OpenOptions::new().create(true).append(true)).open(path)?;
    files::make_private(&f)
}

type LineEditor = Editor<ReplHelper, FileHistory>;

/// Ctrl-C pressed: noted, then the line ends as rustyline ends it.
struct CtrlC(Arc<AtomicBool>);

impl ConditionalEventHandler for CtrlC {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext) -> Option<Cmd> {
        self.0.store(true, Ordering::SeqCst);
        Some(Cmd::Interrupt)
    }
}

fn edit_loop(
    editor: &mut LineEditor,
    history: Option<&Path>,
    link: &LinkRef,
    ctrl_c: &AtomicBool,
    tx: &mpsc::Sender<Input>,
) {
    let mut restore: Option<(String, usize)> = None;
    loop {
        let (prompt, generation, kept) = {
            let mut l = link.lock();
            l.shown = l.display();
            l.poked = false;
            l.line.clear();
            l.hint = None;
            // No drawing tells of the read on a dumb terminal.
            if l.dumb {
                l.state = State::Reading;
            }
            (
                l.shown.clone(),
                l.generation,
                std::mem::take(&mut l.history),
            )
        };
        for line in kept {
            if editor.add_history_entry(line.as_str()).unwrap_or(false)
                && let Some(path) = history
            {
                // Appended at once: the session may end any moment.
                let _ = editor.append_history(path);
            }
        }
        let read = match restore.take() {
            Some((line, pos)) => {
                let pos = if line.is_char_boundary(pos) {
                    pos
                } else {
                    line.len()
                };
                editor.readline_with_initial(&prompt.text, (&line[..pos], &line[pos..]))
            }
            None => editor.readline(&prompt.text),
        };
        let (poked, line, pos, hint) = {
            let mut l = link.lock();
            l.state = State::Busy;
            let poked = std::mem::take(&mut l.poked);
            (poked, std::mem::take(&mut l.line), l.pos, l.hint.take())
        };
        let pressed = ctrl_c.swap(false, Ordering::SeqCst);
        let interrupted = matches!(
            read,
            Err(ReadlineError::Interrupted | ReadlineError::Signal(_))
        );
        // Interrupted to redraw, not by Ctrl-C (which may come at the same
        // moment and must not be lost): the line is erased and read on.
        let redraw = interrupted && poked && !pressed;
        if redraw {
            erase(&prompt.text, &line, pos, hint.as_deref());
        }
        step_aside(link);
        let sent = match read {
            Ok(text) => {
                // A bracketed paste comes back as one text of several
                // lines: each is a line of its own, as if typed.
                let mut ok = true;
                let queued = prompt.kind == PromptKind::Waiting;
                for line in text.split('\n') {
                    ok = ok && send_line(editor, history, line, queued, tx);
                }
                ok
            }
            Err(ReadlineError::Interrupted | ReadlineError::Signal(_)) if redraw => {
                restore = Some((line, pos));
                continue;
            }
            Err(ReadlineError::Interrupted | ReadlineError::Signal(_)) => {
                tx.blocking_send(Input::Interrupt).is_ok()
            }
            Err(_) => {
                let _ = tx.blocking_send(Input::Eof);
                return;
            }
        };
        if !sent {
            return;
        }
        // The session answers a line with the prompt for the next one.
        link.wait_until(ANSWER_WAIT, |l| l.generation != generation);
    }
}

/// The line has ended (or was erased): output waiting is written now, and
/// the editor is Idle (output may be written) until its next line starts.
fn step_aside(link: &LinkRef) {
    let mut l = link.lock();
    if l.pause {
        l.state = State::Paused;
        link.notify();
        l = link.wait_with(l, REDRAW_WAIT, |l| !l.pause);
    }
    l.state = State::Idle;
    drop(l);
    link.notify();
}

/// After a redraw interrupted the line: rustyline left the cursor on the
/// line below it. The old prompt and line go, so the new prompt is drawn
/// where they were. Rows are counted as rustyline lays them out.
fn erase(prompt: &str, line: &str, pos: usize, hint: Option<&str>) {
    let cols = terminal_width().max(1);
    let pos = if line.is_char_boundary(pos) {
        pos
    } else {
        line.len()
    };
    let mut at = (0usize, 0usize);
    for part in [prompt, &line[..pos], &line[pos..], hint.unwrap_or("")] {
        at = advance(at, part, cols);
    }
    let up = at.0 + 1;
    let mut out = std::io::stdout();
    let _ = write!(out, "\x1b[{up}A\r\x1b[J");
    let _ = out.flush();
}

/// Where the cursor ends after `text` from `(row, col)` on a terminal
/// `cols` wide (a character that does not fit wraps to the next row).
fn advance((mut row, mut col): (usize, usize), text: &str, cols: usize) -> (usize, usize) {
    for c in text.chars() {
        if c == '\n' {
            row += 1;
            col = 0;
            continue;
        }
        let w = if c == '\t' {
            8 - col % 8
        } else {
            c.width().unwrap_or(0)
        };
        col += w;
        if col > cols {
            row += 1;
            col = w;
        }
    }
    if col == cols {
        row += 1;
        col = 0;
    }
    (row, col)
}

/// One typed line to the session (`queued`: typed at a prompt that said
/// it waits). `\login` asks for the password here, on
/// the editor's thread, with echo off (the terminal is not in raw mode
/// now); every other line, meta-commands included, goes to the session,
/// which takes them in order. False when the session is gone.
fn send_line(
    editor: &mut LineEditor,
    history: Option<&Path>,
    line: &str,
    queued: bool,
    tx: &mpsc::Sender<Input>,
) -> bool {
    if let Request::Login(user) = meta::parse(line)
        && line.trim_start().starts_with("\\")
    {
        if editor.add_history_entry(line).unwrap_or(false)
            && let Some(path) = history
        {
            let _ = editor.append_history(path);
        }
        let m = match rpassword::prompt_password(format!("Password for {user}: ")) {
            Ok(password) => Meta::Login {
                user,
                password: Secret::new(password),
            },
            Err(_) => Meta::Say("\\login cancelled; nothing was sent".to_string()),
        };
        return tx.blocking_send(Input::Meta(m)).is_ok();
    }
    let mut bytes = line.as_bytes().to_vec();
    bytes.extend_from_slice(b"\r\n");
    let input = if queued {
        Input::Queued(bytes)
    } else {
        Input::Data(bytes)
    };
    tx.blocking_send(input).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state<'a>(user: Option<&'a str>, mailbox: Option<&'a str>) -> PromptState<'a> {
        PromptState {
            host: "imap.example.com",
            tls: true,
            user,
            mailbox,
            tag: "a7",
        }
    }

    #[test]
    fn prompt_shows_confirmed_state() {
        let s = state(Some("alice"), Some("INBOX"));
        assert_eq!(
            command_prompt(&s, 200, true),
            "alice@imap.example.com \u{1f512} INBOX a7> "
        );
        assert_eq!(
            command_prompt(&s, 200, false),
            "alice@imap.example.com tls INBOX a7> "
        );
        let s = PromptState {
            tls: false,
            ..state(None, None)
        };
        assert_eq!(
            command_prompt(&s, 200, false),
            "imap.example.com plain a7> "
        );
    }

    #[test]
    fn prompt_gets_shorter_on_narrow_terminals() {
        let s = state(Some("alice"), Some("INBOX"));
        assert_eq!(command_prompt(&s, 60, false), "alice tls INBOX a7> ");
        assert_eq!(command_prompt(&s, 30, false), "tls INBOX a7> ");
        assert_eq!(command_prompt(&s, 10, false), "a7> ");
    }

    #[test]
    fn wide_characters_are_measured_in_columns() {
        // 太郎@日本.example 🔒 INBOX a7> : 31 columns for 27 characters.
        let s = PromptState {
            host: "日本.example",
            ..state(Some("太郎"), Some("INBOX"))
        };
        let full = "太郎@日本.example \u{1f512} INBOX a7> ";
        assert_eq!(full.width(), 31);
        assert_eq!(command_prompt(&s, 62, true), full);
        assert_eq!(command_prompt(&s, 61, true), "太郎 \u{1f512} INBOX a7> ");
        // A combining accent takes no column of its own.
        let s = PromptState {
            host: "cafe\u{301}.example",
            ..state(None, None)
        };
        assert_eq!(
            command_prompt(&s, 2 * "café.example \u{1f512} a7> ".width(), true),
            "cafe\u{301}.example \u{1f512} a7> "
        );
    }
}
