//! A property of the input side, end to end: for any script whose
//! commands carry `{n}`, `{n+}` or `~{n}` literals of arbitrary bytes, the
//! server receives each command line, then exactly n bytes of each literal
//! (after its `+` when synchronizing), then the rest of the line.

use crate::support::scripted::{ScriptedServer, Step, expect, send};
use crate::support::{imaptalk, local, stderr_of};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Literal {
    data: Vec<u8>,
    sync: bool,
    binary: bool,
}

fn literal() -> impl Strategy<Value = Literal> {
    // Data that looks like protocol (line ends, announcements, tags) is
    // the interesting kind; arbitrary bytes cover the rest.
    let data = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..48),
        proptest::collection::vec(
            prop_oneof![
                Just(b"\r\n".to_vec()),
                Just(b"\n".to_vec()),
                Just(b" {5}".to_vec()),
                Just(b"a2 OK done".to_vec()),
                Just(b"~{3+}\r\n".to_vec()),
                Just(b"x".to_vec()),
            ],
            0..8
        )
        .prop_map(|parts| parts.concat()),
    ];
    (data, any::<bool>(), any::<bool>()).prop_map(|(data, sync, binary)| Literal {
        data,
        sync,
        binary,
    })
}

fn announcement(l: &Literal) -> String {
    format!(
        "{}{{{}{}}}",
        if l.binary { "~" } else { "" },
        l.data.len(),
        if l.sync { "" } else { "+" }
    )
}

/// The script, and the steps of a server that checks every byte of it.
fn script_and_steps(commands: &[Vec<Literal>]) -> (Vec<u8>, Vec<Step>) {
    let mut script = Vec::new();
    let mut steps = vec![send("* OK [CAPABILITY IMAP4rev1 LITERAL+ BINARY] ready\n")];
    for (k, lits) in commands.iter().enumerate() {
        let tag = format!("a{}", k + 1);
        // Line i is what precedes literal i; the last line ends the command.
        let mut lines = vec![format!(
            "APPEND INBOX{}",
            if lits.is_empty() { "" } else { " " }
        )];
        for i in 1..=lits.len() {
            lines.push(if i == lits.len() {
                " END".to_string()
            } else {
                format!(" X{i} ")
            });
        }
        for (i, lit) in lits.iter().enumerate() {
            lines[i].push_str(&announcement(lit));
        }
        for (i, line) in lines.iter().enumerate() {
            script.extend_from_slice(line.as_bytes());
            script.push(b'\n');
            let wire = if i == 0 {
                format!("{tag} {line}")
            } else {
                line.clone()
            };
            steps.push(expect(&wire));
            if let Some(lit) = lits.get(i) {
                script.extend_from_slice(&lit.data);
                if lit.sync {
                    steps.push(send("+ go ahead\n"));
                }
                steps.push(Step::ExpectBytes(lit.data.clone()));
            }
        }
        steps.push(send(&format!("{tag} OK APPEND completed\n")));
    }
    let logout = format!("a{}", commands.len() + 1);
    steps.push(expect(&format!("{logout} LOGOUT")));
    steps.push(send(&format!("{logout} OK bye\n")));
    steps.push(Step::Close);
    (script, steps)
}

proptest! {
    // Each case runs the binary against a server: few, but varied, cases.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_literal_carries_exactly_its_announced_bytes(
        commands in proptest::collection::vec(proptest::collection::vec(literal(), 0..4), 1..4)
    ) {
        let (script, steps) = script_and_steps(&commands);
        let server = ScriptedServer::start(steps);
        let out = imaptalk()
            .arg(local(server.port()))
            .write_stdin(script)
            .output()
            .unwrap();
        let t = server.finish();
        prop_assert!(t.failures.is_empty(), "{:?}\nlog: {:?}", t.failures, t.log);
        prop_assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    }
}
