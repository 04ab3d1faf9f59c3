//! The one escaping rule (`imaptalk::text`): whatever the bytes, no
//! notation lets a control or formatting character through, the one-line
//! form never breaks the line, the terminal form does not depend on how
//! the bytes were split into reads, and a transcript record gives back
//! exactly the bytes it was made from.
#![no_main]

use imaptalk::text::{Escaper, escape, escape_record, escape_str, shown_as_is, unescape_record};
use libfuzzer_sys::fuzz_target;

fn block(pieces: &[&[u8]]) -> String {
    let mut e = Escaper::default();
    let mut out = String::new();
    for p in pieces {
        e.push(p, &mut out);
    }
    e.finish(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let line = escape(data);
    assert!(line.chars().all(shown_as_is), "{line:?}");
    // Escaped text escapes to itself: escaping twice cannot hurt.
    assert_eq!(escape_str(&line), line);

    let mut record = String::new();
    escape_record(data, &mut record);
    assert!(record.chars().all(shown_as_is), "{record:?}");
    assert_eq!(unescape_record(&record).as_deref(), Some(data));

    // The first byte chooses where the read is split.
    let cut = data.first().map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let whole = block(&[data]);
    assert!(
        whole
            .chars()
            .all(|c| shown_as_is(c) || c == '\n' || c == '\t'),
        "{whole:?}"
    );
    assert_eq!(block(&[&data[..cut], &data[cut..]]), whole);
    let bytewise: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(block(&bytewise), whole);
});
