//! Framer throughput on literal-heavy input, in bytes per second.
//!
//!     cargo bench --bench framer
//!
//! The input is what a big FETCH looks like on the wire. It is fed to the
//! framer the way `Connection::fill` does: appended to the framer's buffer
//! in 128 KiB reads (the copy stands in for the kernel's copy into the
//! read buffer), then drained with `next_event` until it needs more. Each
//! event is dropped at once, as the session does after writing it, so the
//! buffer's memory is reused.

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use imaptalk::io::READ_SIZE;
use imaptalk::protocol::framer::Framer;

fn main() {
    divan::main();
}

/// `count` FETCH responses, each with a literal of `size` bytes of text.
fn fetches(count: usize, size: usize) -> Vec<u8> {
    let line: Vec<u8> =
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit a4 OK\r\n".to_vec();
    let body: Vec<u8> = line.iter().copied().cycle().take(size).collect();
    let mut out = Vec::with_capacity(count * (size + 64));
    for i in 1..=count {
        out.extend_from_slice(format!("* {i} FETCH (UID {i} BODY[] {{{size}}}\r\n").as_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(b" FLAGS (\\Seen))\r\n");
    }
    out.extend_from_slice(b"a4 OK Fetch completed.\r\n");
    out
}

fn frame_all(input: &[u8]) -> usize {
    let mut framer = Framer::new();
    let mut events = 0;
    for read in input.chunks(READ_SIZE) {
        framer.buffer_mut().reserve(READ_SIZE);
        framer.buffer_mut().extend_from_slice(read);
        while let Some(ev) = framer.next_event().unwrap() {
            black_box(&ev);
            events += 1;
        }
    }
    events
}

/// One big message: 64 MiB in a single literal.
#[divan::bench]
fn one_64_mib_literal(bencher: Bencher) {
    let input = fetches(1, 64 << 20);
    bencher
        .counter(BytesCount::new(input.len()))
        .bench(|| frame_all(black_box(&input)));
}

/// Many mid-sized messages: 256 literals of 256 KiB.
#[divan::bench]
fn literals_of_256_kib(bencher: Bencher) {
    let input = fetches(256, 256 << 10);
    bencher
        .counter(BytesCount::new(input.len()))
        .bench(|| frame_all(black_box(&input)));
}

/// Small messages: 16,384 literals of 4 KiB, a response line each.
#[divan::bench]
fn literals_of_4_kib(bencher: Bencher) {
    let input = fetches(16_384, 4 << 10);
    bencher
        .counter(BytesCount::new(input.len()))
        .bench(|| frame_all(black_box(&input)));
}
