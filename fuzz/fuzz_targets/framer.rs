//! The framer never panics, never holds more than a bounded amount of
//! data, and hands out every byte it was given exactly once, in order.
#![no_main]

use imaptalk::protocol::framer::{Event, Framer, LineEnd, MAX_LINE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut f = Framer::new();
    let mut out = Vec::with_capacity(input.len());
    let mut literal_left: u64 = 0;
    for piece in input.chunks(chunk) {
        f.buffer_mut().extend_from_slice(piece);
        loop {
            match f.next_event() {
                Ok(Some(Event::Line { data, end, .. })) => {
                    assert_eq!(literal_left, 0, "a line inside a literal");
                    if let LineEnd::Literal { len, .. } = end {
                        literal_left = len;
                    }
                    out.extend_from_slice(&data);
                }
                Ok(Some(Event::Literal { data, remaining })) => {
                    assert!(data.len() as u64 <= literal_left);
                    literal_left -= data.len() as u64;
                    assert_eq!(remaining, literal_left);
                    out.extend_from_slice(&data);
                }
                Ok(None) => break,
                // A protocol error ends the stream; that is a valid outcome.
                Err(_) => return,
            }
        }
        assert!(f.buffered() <= MAX_LINE + chunk, "memory must stay bounded");
    }
    let _ = f.finish();
    assert_eq!(out.len() + f.buffered(), input.len());
    assert_eq!(
        &out[..],
        &input[..out.len()],
        "bytes out == bytes in, in order"
    );
});
