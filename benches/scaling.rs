//! What rendering and the completion store cost as output grows: bytes
//! per second of escaped text on a terminal, and the cost of a key or a
//! Tab once 100,000 mailbox names are known.
//!
//!     cargo bench --bench scaling
//!
//! scripts/bench's scaling section measures the whole program on a real
//! terminal; this one measures the parts alone, without the terminal's
//! own cost (the kernel's tty layer), so that a slow path in imaptalk's
//! code stands out.

use bytes::Bytes;
use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use imaptalk::app::complete::{ReplHelper, Shared, learn};
use imaptalk::app::render::{Output, TextSink};
use imaptalk::app::repl::{Screen, ScreenTx};
use imaptalk::protocol::framer::{Event, Framer};
use imaptalk::text::Escaper;

fn main() {
    divan::main();
}

/// `* n FETCH (FLAGS (…))` for n in 1..=count, and the completion.
fn fetch_flags(count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 1..=count {
        let flags = match i {
            _ if i % 7 == 0 => "\\Flagged \\Seen",
            _ if i % 3 == 0 => "\\Seen",
            _ => "",
        };
        out.extend_from_slice(format!("* {i} FETCH (FLAGS ({flags}))\r\n").as_bytes());
    }
    out.extend_from_slice(b"a3 OK Fetch completed.\r\n");
    out
}

/// One SEARCH response of `count` numbers.
fn search(count: usize) -> Vec<u8> {
    let mut out = b"* SEARCH".to_vec();
    for i in 1..=count {
        out.extend_from_slice(format!(" {i}").as_bytes());
    }
    out.extend_from_slice(b"\r\na2 OK Search completed.\r\n");
    out
}

/// Text with some UTF-8 and a few controls, as message bodies have.
fn mail_text(size: usize) -> Vec<u8> {
    let line = "Grüße aus Köln, the quick brown fox\tjumps over the lazy dog. \u{1b}[31m\r\n";
    line.bytes().cycle().take(size).collect()
}

fn events(input: &[u8]) -> Vec<Event> {
    let mut f = Framer::new();
    let mut out = Vec::new();
    for read in input.chunks(imaptalk::io::READ_SIZE) {
        f.buffer_mut().extend_from_slice(read);
        while let Some(ev) = f.next_event().unwrap() {
            out.push(ev);
        }
    }
    out
}

/// Renders the events as on a terminal at the prompt (coloured, to the
/// REPL's screen, drained by a thread as the screen thread does).
fn render(events: &[Event]) {
    let (tx, rx) = std::sync::mpsc::channel::<Screen>();
    let drain = std::thread::spawn(move || rx.iter().count());
    let mut out = Output::text(true, TextSink::Printer(ScreenTx::new(tx)));
    for ev in events {
        out.event_noted(ev, None).unwrap();
    }
    out.finish().unwrap();
    drop(out);
    black_box(drain.join().unwrap());
}

#[divan::bench(args = [1_000, 10_000, 100_000])]
fn render_fetch_flags(bencher: Bencher, count: usize) {
    let input = fetch_flags(count);
    let evs = events(&input);
    bencher
        .counter(BytesCount::new(input.len()))
        .bench(|| render(&evs));
}

#[divan::bench(args = [10_000, 100_000, 1_000_000])]
fn render_search_line(bencher: Bencher, count: usize) {
    let input = search(count);
    let evs = events(&input);
    bencher
        .counter(BytesCount::new(input.len()))
        .bench(|| render(&evs));
}

/// The escaper alone on 4 MiB read in 64 KiB pieces.
#[divan::bench(args = ["digits", "mail"])]
fn escape(bencher: Bencher, kind: &str) {
    let input = match kind {
        "digits" => search(600_000),
        _ => mail_text(4 << 20),
    };
    let pieces: Vec<Bytes> = input
        .chunks(64 * 1024)
        .map(Bytes::copy_from_slice)
        .collect();
    bencher.counter(BytesCount::new(input.len())).bench(|| {
        let mut e = Escaper::default();
        let mut out = String::new();
        for p in &pieces {
            e.push(p, &mut out);
            out.clear();
        }
        e.finish(&mut out);
        black_box(out);
    });
}

fn helper_knowing(names: usize) -> ReplHelper {
    let known = Shared::default();
    for i in 1..=names {
        learn(
            &known,
            format!("* LIST (\\HasNoChildren) \".\" Tree.{i:06}\r\n").as_bytes(),
        );
    }
    ReplHelper {
        known,
        color: false,
        on_draw: None,
    }
}

/// Learning the names of a LIST of 100,000 mailboxes, per name.
#[divan::bench(args = [1_000, 100_000])]
fn learn_names(bencher: Bencher, names: usize) {
    let lines: Vec<Vec<u8>> = (1..=names)
        .map(|i| format!("* LIST (\\HasNoChildren) \".\" Tree.{i:06}\r\n").into_bytes())
        .collect();
    bencher.counter(ItemsCount::new(names)).bench(|| {
        let known = Shared::default();
        for l in &lines {
            learn(&known, l);
        }
        black_box(known);
    });
}

/// A key typed (the hint drawn) and a Tab pressed after `SELECT Tree.0999`
/// with 1,000 or 100,000 names known: must not grow with the names.
#[divan::bench(args = [1_000, 100_000])]
fn key_with_names_known(bencher: Bencher, names: usize) {
    let h = helper_knowing(names);
    let line = "SELECT Tree.0999";
    bencher.bench(|| black_box(h.hint_for(line, line.len())));
}

#[divan::bench(args = [1_000, 100_000])]
fn tab_with_names_known(bencher: Bencher, names: usize) {
    let h = helper_knowing(names);
    let line = "SELECT Tree.0009";
    bencher.bench(|| black_box(h.candidates(line, line.len())));
}
