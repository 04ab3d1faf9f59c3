//! The input side: any typed line becomes a wire line that starts with its
//! tag, never panics, and announces exactly the literal the line ends with.
#![no_main]

use imaptalk::command::{Tagger, masked, prepare, trailing_literal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if line.contains(&b'\n') {
        return; // the session splits input into lines before this point
    }
    let mut tagger = Tagger::new("a");
    let Ok(p) = prepare(line, &mut tagger, |_| false) else {
        // Only an impossible literal count is refused.
        assert!(trailing_literal(line).is_err());
        return;
    };
    assert!(p.wire.starts_with(p.tag.as_bytes()));
    assert_eq!(p.wire[p.tag.len()], b' ');
    assert_eq!(trailing_literal(&p.wire).ok().flatten(), p.literal);
    if let Some(lit) = p.literal {
        // The count the server will read is the count on the line.
        let digits: Vec<u8> = p
            .wire
            .iter()
            .rev()
            .skip_while(|b| !b.is_ascii_digit())
            .take_while(|b| b.is_ascii_digit())
            .copied()
            .collect();
        let n: u64 = digits.iter().rev().fold(0, |n, d| n * 10 + u64::from(d - b'0'));
        assert_eq!(n, lit.len);
    }
    let shown = masked(&p);
    if p.name == "LOGIN" {
        assert!(shown.ends_with("****"));
    }
});
