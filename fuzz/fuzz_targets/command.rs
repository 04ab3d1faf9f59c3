//! The input side: any typed line becomes a wire line that starts with its
//! tag, never panics, and announces exactly the literal the line ends with.
#![no_main]

use imaptalk::protocol::command::{Tagger, masked, prepare, trailing_literal};
use imaptalk::protocol::literal as fileliteral;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if line.contains(&b'\n') {
        return; // the session splits input into lines before this point
    }
    // `{@FILE}` tokens: cutting a line at them loses nothing. Putting the
    // pieces back (re-escaping `{@` in the text as `{@@`) gives the line.
    if let Ok(Some(split)) = fileliteral::split(line) {
        assert_eq!(split.texts.len(), split.files.len() + 1);
        let escape = |t: &[u8]| {
            let mut out = Vec::new();
            let mut rest = t;
            while let Some(i) = rest.windows(2).position(|w| w == b"{@") {
                out.extend_from_slice(&rest[..i]);
                out.extend_from_slice(b"{@@");
                rest = &rest[i + 2..];
            }
            out.extend_from_slice(rest);
            out
        };
        let mut back = escape(&split.texts[0]);
        for (file, text) in split.files.iter().zip(&split.texts[1..]) {
            assert!(!file.is_empty() && !file.contains(&b'}'));
            back.extend_from_slice(b"{@");
            back.extend_from_slice(file);
            back.push(b'}');
            back.extend_from_slice(&escape(text));
        }
        assert_eq!(back, line);
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
        let n: u64 = digits
            .iter()
            .rev()
            .fold(0, |n, d| n * 10 + u64::from(d - b'0'));
        assert_eq!(n, lit.len);
    }
    let shown = masked(&p);
    if p.name == "LOGIN" {
        assert!(shown.ends_with("****"));
    }
});
