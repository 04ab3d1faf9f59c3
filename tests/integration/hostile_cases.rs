//! The hostile-server suite: one table of scenarios a broken or malicious
//! server can play, run by one driver. Each row states what the client
//! must do about it: its exit code, its one-line message, every line the
//! server received (order, tags, untagged continuations), and where it
//! matters the exact bytes on stdout — or, with `tty`, what reached a
//! pseudo-terminal. Timeouts, keepalive and signals have tests of their
//! own below the table, because their servers are not scripts.
//!
//! One case can be run alone: `HOSTILE_CASE='bare CR' cargo test --test
//! integration hostile_cases::table`.

use crate::support::certs::{pki_for, rustls_server_config, write_ca};
use crate::support::scripted::{ScriptedServer, Step, Transcript, expect, logout, send};
use crate::support::{imaptalk, local, stderr_of};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const GREETING: &str = "* OK [CAPABILITY IMAP4rev1 LITERAL+ STARTTLS] hostile ready\n";

/// How the scripted server talks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    Plain,
    /// Plaintext, with `Step::StartTls` upgrading using a certificate the
    /// client trusts through `{ca}`.
    StartTls,
    /// Like `StartTls`, but with a certificate from a CA nobody trusts.
    StartTlsUntrusted,
}

/// What the server must have received.
enum Received {
    /// Exactly these lines, CRLF-terminated, nothing else.
    Lines(Vec<&'static str>),
    /// These lines, then a TLS ClientHello (a handshake the server let
    /// stall or answered with garbage).
    LinesThenTls(Vec<&'static str>),
    /// These lines first, then anything (literal data too big to list).
    StartsWith(Vec<&'static str>),
}

/// What stdout (or the terminal) must show.
enum Out {
    /// Exactly the bytes the server sent: a faithful capture.
    Sent,
    /// Exactly these bytes.
    Exact(Vec<u8>),
    /// On a terminal: these strings appear (escaped forms), and none of
    /// the forbidden bytes (ESC, BEL, C1 controls) ever does.
    Screen(Vec<&'static str>),
    /// Not checked (a blocked send: what arrived depends on timing).
    Any,
}

struct Case {
    name: &'static str,
    server: Server,
    steps: Vec<Step>,
    /// Arguments after the server address (`{ca}` becomes the CA file).
    args: Vec<&'static str>,
    stdin: Vec<u8>,
    /// Run in a pseudo-terminal (stdout and stderr are the terminal).
    tty: bool,
    exit: i32,
    /// A substring of stderr; empty: stderr must be empty.
    stderr: &'static str,
    received: Received,
    stdout: Out,
    /// The server's own script is expected to fail with this (a handshake
    /// the client rightly aborted); None: the client followed the script.
    server_fails: Option<&'static str>,
}

impl Case {
    fn new(name: &'static str, steps: Vec<Step>) -> Case {
        Case {
            name,
            server: Server::Plain,
            steps,
            args: Vec::new(),
            stdin: Vec::new(),
            tty: false,
            exit: 0,
            stderr: "",
            received: Received::Lines(Vec::new()),
            stdout: Out::Sent,
            server_fails: None,
        }
    }
    fn args(mut self, args: &[&'static str]) -> Case {
        self.args = args.to_vec();
        self
    }
    fn stdin(mut self, stdin: impl Into<Vec<u8>>) -> Case {
        self.stdin = stdin.into();
        self
    }
    fn exit(mut self, code: i32, stderr: &'static str) -> Case {
        self.exit = code;
        self.stderr = stderr;
        self
    }
    fn received(mut self, lines: &[&'static str]) -> Case {
        self.received = Received::Lines(lines.to_vec());
        self
    }
    fn received_then_tls(mut self, lines: &[&'static str]) -> Case {
        self.received = Received::LinesThenTls(lines.to_vec());
        self
    }
    fn received_starts(mut self, lines: &[&'static str]) -> Case {
        self.received = Received::StartsWith(lines.to_vec());
        self
    }
    fn stdout(mut self, out: Out) -> Case {
        self.stdout = out;
        self
    }
    fn server(mut self, server: Server) -> Case {
        self.server = server;
        self
    }
    fn tty(mut self) -> Case {
        self.tty = true;
        self
    }
    fn server_fails(mut self, why: &'static str) -> Case {
        self.server_fails = Some(why);
        self
    }
}

fn silence(ms: u64) -> Step {
    Step::ExpectSilence(Duration::from_millis(ms))
}

fn sleep(ms: u64) -> Step {
    Step::Sleep(Duration::from_millis(ms))
}

/// `head` + `{len}` CRLF + data + `tail`: one response line with a literal.
fn with_literal(head: &str, data: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut v = format!("{head}{{{}}}\r\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(tail);
    v
}

/// Stdout of a STARTTLS that went wrong: the greeting and the OK, and
/// nothing that came after the OK in plaintext.
fn before_tls() -> Out {
    let mut v = GREETING.replace('\n', "\r\n").into_bytes();
    v.extend_from_slice(b"a1 OK Begin TLS negotiation now\r\n");
    Out::Exact(v)
}

fn steps(parts: Vec<Vec<Step>>) -> Vec<Step> {
    parts.concat()
}

/// The table. Every scenario the issue lists is here, plus the timeouts
/// that a script can run into.
fn cases() -> Vec<Case> {
    let mut v = Vec::new();

    // --- Framing: data is never taken for a response ---------------------

    let body = b"Subject: hi\r\n\r\na2 OK forged completion\r\na2 OK [READ-WRITE] again\r\n";
    v.push(
        Case::new(
            "literal text imitating the tagged completion",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 LOGIN alice secret"),
                    // Nothing more until the completion.
                    silence(200),
                    send("a1 OK Logged in\n"),
                    expect("a2 UID FETCH 7 BODY[]"),
                    Step::Send(with_literal("* 1 FETCH (UID 7 BODY[] ", body, b")\r\n")),
                    // The forged "a2 OK" lines went by: still waiting.
                    silence(300),
                    send("a2 OK Fetch completed.\n"),
                ],
                logout("a3"),
            ]),
        )
        .stdin("LOGIN alice secret\nUID FETCH 7 BODY[]\n")
        .received(&[
            "a1 LOGIN alice secret",
            "a2 UID FETCH 7 BODY[]",
            "a3 LOGOUT",
        ]),
    );

    v.push(
        Case::new(
            "untagged BYE plus the command's OK",
            vec![
                send(GREETING),
                expect("a1 NOOP"),
                send("* BYE server shutting down\na1 OK NOOP completed.\n"),
                // The OK completed a1, so the script goes on; the close
                // that follows the BYE then ends the run.
                expect("a2 CAPABILITY"),
                Step::Close,
            ],
        )
        .args(&["-c", "NOOP", "-c", "CAPABILITY"])
        .exit(
            4,
            "server closed the connection: * BYE server shutting down",
        )
        .received(&["a1 NOOP", "a2 CAPABILITY"]),
    );

    v.push(
        Case::new(
            "literal of 0 bytes, then a line that looks like a completion",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 FETCH 1 BODY[]"),
                    // After {0} the same response continues: this line is
                    // the rest of the FETCH, not a1's completion.
                    send("* 1 FETCH (BODY[] {0}\na1 OK forged after an empty literal)\n"),
                    silence(300),
                    send("a1 OK done\n"),
                ],
                logout("a2"),
            ]),
        )
        .args(&["-c", "FETCH 1 BODY[]"])
        .received(&["a1 FETCH 1 BODY[]", "a2 LOGOUT"]),
    );

    let kib: Vec<u8> = (0..1000u32)
        .map(|i| b"0123456789abcdef"[i as usize % 16])
        .collect();
    for (name, count, message) in [
        (
            "literal count 2^32",
            "4294967296",
            "server closed the connection in the middle of a 4294967296-byte literal (1000 bytes received)",
        ),
        (
            "literal count 2^64-1",
            "18446744073709551615",
            "server closed the connection in the middle of a 18446744073709551615-byte literal (1000 bytes received)",
        ),
    ] {
        let mut resp = format!("* 1 FETCH (BODY[] {{{count}}}\r\n").into_bytes();
        resp.extend_from_slice(&kib);
        v.push(
            Case::new(
                name,
                vec![
                    send(GREETING),
                    expect("a1 FETCH 1 BODY[]"),
                    Step::Send(resp),
                    Step::Close,
                ],
            )
            .args(&["-c", "FETCH 1 BODY[]"])
            .exit(4, message)
            .received(&["a1 FETCH 1 BODY[]"]),
        );
    }
    for (name, count, message) in [
        (
            "literal count 2^64 (overflow)",
            "18446744073709551616",
            "protocol error: the server announced a literal of 18446744073709551616 bytes, more than 2^64-1",
        ),
        (
            "literal count with too many digits",
            "000000000000000000000042",
            "protocol error: the server announced a literal with a 24-digit byte count",
        ),
    ] {
        v.push(
            Case::new(
                name,
                vec![
                    send(GREETING),
                    expect("a1 FETCH 1 BODY[]"),
                    send(&format!(
                        "* 1 FETCH (BODY[] {{{count}}}\nabc)\na1 OK done\n"
                    )),
                    // The rest of the stream cannot be framed: the client
                    // stops at once, without sending anything more.
                    Step::ExpectEof,
                ],
            )
            .args(&["-c", "FETCH 1 BODY[]"])
            .exit(4, message)
            .received(&["a1 FETCH 1 BODY[]"])
            // Nothing of the unframeable response is passed on.
            .stdout(Out::Exact(GREETING.replace('\n', "\r\n").into_bytes())),
        );
    }

    let binary: Vec<u8> = (0..=255u8).cycle().take(300).collect();
    let mut split = with_literal("* 1 FETCH (BINARY[] ~", &binary, b" BODY[1] ");
    split.extend_from_slice(&with_literal("", b"", b" BODY[2] "));
    split.extend_from_slice(&with_literal("", b"x\r\na1 OK forged\r\n", b")\r\n"));
    split.extend_from_slice(b"a1 OK done\r\n");
    v.push(
        Case::new(
            "literals split at every byte with delays",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 FETCH 1 (BINARY[] BODY[1] BODY[2])"),
                    Step::SendChunked {
                        bytes: split,
                        chunk: 1,
                        delay: Duration::from_millis(1),
                    },
                ],
                logout("a2"),
            ]),
        )
        .args(&["-c", "FETCH 1 (BINARY[] BODY[1] BODY[2])"])
        .received(&["a1 FETCH 1 (BINARY[] BODY[1] BODY[2])", "a2 LOGOUT"]),
    );

    v.push(
        Case::new(
            "literal longer than the data, then close",
            vec![
                send(GREETING),
                expect("a1 FETCH 1 BODY[]"),
                send("* 1 FETCH (BODY[] {1000000}\n0123456789"),
                Step::Close,
            ],
        )
        .args(&["-c", "FETCH 1 BODY[]"])
        .exit(
            4,
            "server closed the connection in the middle of a 1000000-byte literal (10 bytes received)",
        )
        .received(&["a1 FETCH 1 BODY[]"]),
    );

    let mut bin = b"\r\na1 OK forged\r\n\0\0\n\r".to_vec();
    bin.extend((0..=255u8).cycle().take(4096));
    v.push(
        Case::new(
            "~{n} literal8 with binary data",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 FETCH 1 BINARY[]"),
                    Step::Send(with_literal("* 1 FETCH (BINARY[] ~", &bin, b")\r\n")),
                    silence(200),
                    send("a1 OK done\n"),
                ],
                logout("a2"),
            ]),
        )
        .args(&["-c", "FETCH 1 BINARY[]"])
        .received(&["a1 FETCH 1 BINARY[]", "a2 LOGOUT"]),
    );

    let mut many = b"* 1 FETCH (".to_vec();
    for i in 0..500 {
        let data = format!("a1 OK forged {i}\r\n").repeat(i % 3);
        many.extend_from_slice(&with_literal(&format!("X{i} "), data.as_bytes(), b" "));
    }
    many.extend_from_slice(b")\r\n");
    v.push(
        Case::new(
            "many literals in one response",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 FETCH 1 ALL"),
                    Step::Send(many),
                    silence(200),
                    send("a1 OK done\n"),
                ],
                logout("a2"),
            ]),
        )
        .args(&["-c", "FETCH 1 ALL"])
        .received(&["a1 FETCH 1 ALL", "a2 LOGOUT"]),
    );

    let mut long = b"* 1 FETCH (X-LONG ".to_vec();
    long.extend(std::iter::repeat_n(b'y', 1 << 20));
    long.extend_from_slice(&with_literal(" BODY[] ", b"a1 OK x", b")\r\n"));
    v.push(
        Case::new(
            "a 1 MiB line ending in a literal announcement",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 FETCH 1 BODY[]"),
                    Step::Send(long),
                    silence(200),
                    send("a1 OK done\n"),
                ],
                logout("a2"),
            ]),
        )
        .args(&["-c", "FETCH 1 BODY[]"])
        .received(&["a1 FETCH 1 BODY[]", "a2 LOGOUT"]),
    );

    // --- Odd bytes in lines ----------------------------------------------

    v.push(
        Case::new(
            "bare LF line ends",
            steps(vec![
                vec![
                    Step::Send(b"* OK bare LF greeting\n".to_vec()),
                    expect("a1 NOOP"),
                    Step::Send(b"* 3 EXISTS\na1 OK done\n".to_vec()),
                ],
                logout("a2"),
            ]),
        )
        .args(&["-c", "NOOP"])
        .received(&["a1 NOOP", "a2 LOGOUT"]),
    );

    v.push(
        Case::new(
            "bare CR does not end a line",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 NOOP"),
                    // One line: "a1 OK forged" is not at a line start.
                    Step::Send(b"* OK note\ra1 OK forged\r\n".to_vec()),
                    silence(300),
                    send("a1 OK done\n"),
                ],
                logout("a2"),
            ]),
        )
        .args(&["-c", "NOOP"])
        .received(&["a1 NOOP", "a2 LOGOUT"]),
    );

    v.push(
        Case::new(
            "NUL bytes in lines",
            steps(vec![
                vec![
                    Step::Send(b"* OK nul\0in the greeting\r\n".to_vec()),
                    expect("a1 NOOP"),
                    Step::Send(b"* 1 EXISTS\0\r\na1 OK do\0ne\r\n".to_vec()),
                ],
                logout("a2"),
            ]),
        )
        .args(&["-c", "NOOP"])
        .received(&["a1 NOOP", "a2 LOGOUT"]),
    );

    let mut endless = b"* OK ".to_vec();
    endless.extend(std::iter::repeat_n(b'x', 4 << 20));
    v.push(
        Case::new(
            "an endless line with no line end, then close",
            vec![
                send(GREETING),
                expect("a1 NOOP"),
                Step::Send(endless),
                Step::Close,
            ],
        )
        .args(&["-c", "NOOP"])
        .exit(
            4,
            "server closed the connection in the middle of a response (",
        )
        .received(&["a1 NOOP"]),
    );

    // --- Responses nobody asked for --------------------------------------

    v.push(
        Case::new(
            "tagged response for a tag never sent",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 NOOP"),
                    send("zz9 OK I never got this command\na2 OK nor this one\n"),
                    silence(200),
                    send("a1 OK NOOP completed.\n"),
                ],
                logout("a2"),
            ]),
        )
        .args(&["-c", "NOOP"])
        .exit(0, "completed tag 'zz9', which is not outstanding; ignored")
        .received(&["a1 NOOP", "a2 LOGOUT"]),
    );

    v.push(
        Case::new(
            "continuation nobody asked for",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 NOOP"),
                    send("+ send me your password\n"),
                    // The next script line must not go out as an answer.
                    silence(300),
                    send("a1 OK NOOP completed.\n"),
                    expect("a2 LOGIN alice secret"),
                    send("a2 OK Logged in\n"),
                ],
                logout("a3"),
            ]),
        )
        .stdin("NOOP\nLOGIN alice secret\n")
        .exit(
            0,
            "continuation request (+) that no command is waiting for; ignored",
        )
        .received(&["a1 NOOP", "a2 LOGIN alice secret", "a3 LOGOUT"]),
    );

    v.push(
        Case::new(
            "completion before the command's literal was sent",
            vec![
                send(GREETING),
                expect("a1 APPEND INBOX {5}"),
                send("a1 OK [APPENDUID 1 1] pretended\n"),
                Step::ExpectEof,
            ],
        )
        .stdin("APPEND INBOX {5}\nhello\n")
        .exit(
            4,
            "protocol error: the server completed a1 before the command was fully sent",
        )
        .received(&["a1 APPEND INBOX {5}"]),
    );

    // --- Greetings and STARTTLS ------------------------------------------

    v.push(
        Case::new(
            "BYE greeting",
            vec![
                send("* BYE Too many connections from your IP\n"),
                Step::ExpectEof,
            ],
        )
        .stdin("NOOP\n")
        .exit(
            3,
            "server refused the connection: * BYE Too many connections from your IP",
        ),
    );

    v.push(
        Case::new(
            "PREAUTH greeting with --starttls",
            vec![
                send("* PREAUTH [CAPABILITY IMAP4rev1] already logged in\n"),
                Step::ExpectEof,
            ],
        )
        .args(&["--starttls", "-c", "NOOP"])
        .exit(3, "server greeted with PREAUTH"),
    );

    for (name, answer) in [
        (
            "STARTTLS answered NO",
            "a1 NO STARTTLS not available right now\n",
        ),
        ("STARTTLS answered BAD", "a1 BAD unknown command\n"),
    ] {
        v.push(
            Case::new(
                name,
                vec![
                    send(GREETING),
                    expect("a1 STARTTLS"),
                    send(answer),
                    Step::ExpectEof,
                ],
            )
            .args(&["--starttls", "-c", "LOGIN alice secret"])
            .exit(3, "server refused STARTTLS")
            .received(&["a1 STARTTLS"]),
        );
    }

    v.push(
        Case::new(
            "STARTTLS OK with injected plaintext",
            vec![
                send(GREETING),
                expect("a1 STARTTLS"),
                // One segment: the OK plus a response a man in the middle
                // wants taken as coming from inside TLS.
                send("a1 OK Begin TLS negotiation now\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\n"),
                Step::ExpectEof,
            ],
        )
        .args(&["--starttls", "-c", "LOGIN alice secret"])
        .exit(
            3,
            "bytes arrived after the STARTTLS OK, before the TLS handshake (possible response injection)",
        )
        .received(&["a1 STARTTLS"])
        // The injected line is never passed on.
        .stdout(before_tls()),
    );

    v.push(
        Case::new(
            "STARTTLS OK, then a certificate nobody trusts",
            vec![
                send(GREETING),
                expect("a1 STARTTLS"),
                send("a1 OK Begin TLS negotiation now\n"),
                Step::StartTls,
            ],
        )
        .server(Server::StartTlsUntrusted)
        .args(&["--starttls", "-c", "LOGIN alice secret"])
        .exit(
            3,
            "certificate of '127.0.0.1' rejected: issued by an unknown authority",
        )
        .received(&["a1 STARTTLS"])
        .server_fails("STARTTLS handshake failed"),
    );

    v.push(
        Case::new(
            "STARTTLS OK, then plaintext instead of a TLS handshake",
            vec![
                send(GREETING),
                expect("a1 STARTTLS"),
                send("a1 OK Begin TLS negotiation now\n"),
                // Let the ClientHello arrive, then answer it in plaintext.
                sleep(300),
                send("* OK still plaintext\n"),
                Step::Close,
            ],
        )
        .args(&["--starttls", "-c", "LOGIN alice secret"])
        .exit(
            3,
            "injection detected: after its OK to STARTTLS, '127.0.0.1' sent plaintext instead of a TLS handshake",
        )
        .received_then_tls(&["a1 STARTTLS"])
        .stdout(before_tls()),
    );

    v.push(
        Case::new(
            "STARTTLS to a trusted server: the script goes out only inside TLS",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 STARTTLS"),
                    send("a1 OK Begin TLS negotiation now\n"),
                    Step::StartTls,
                    expect("a2 LOGIN alice secret"),
                    send("a2 OK Logged in\n"),
                ],
                logout("a3"),
            ]),
        )
        .server(Server::StartTls)
        .args(&["--starttls", "--cafile", "{ca}", "-c", "LOGIN alice secret"])
        .received(&["a1 STARTTLS", "a2 LOGIN alice secret", "a3 LOGOUT"]),
    );

    // --- Broken connections ----------------------------------------------

    let mut partial = b"* 1 FETCH (BODY[] {100000}\r\n".to_vec();
    partial.extend(std::iter::repeat_n(b'z', 5000));
    v.push(
        Case::new(
            "connection reset in the middle of a literal",
            vec![
                send(GREETING),
                expect("a1 FETCH 1 BODY[]"),
                Step::Send(partial),
                // Let the data be read before the RST discards it.
                sleep(300),
                Step::Reset,
            ],
        )
        .args(&["-c", "FETCH 1 BODY[]"])
        .exit(4, "lost: Connection reset by peer")
        .received(&["a1 FETCH 1 BODY[]"]),
    );

    // --- Timeouts (--timeout) ----------------------------------------------

    v.push(
        Case::new("greeting that never comes", vec![sleep(1500), Step::Close])
            .args(&["--timeout", "0.3", "-c", "NOOP"])
            .exit(3, "timed out after 0.3s waiting for a greeting"),
    );

    v.push(
        Case::new(
            "server stops answering mid-response",
            vec![
                send(GREETING),
                expect("a1 FETCH 1 BODY[]"),
                send("* 1 FETCH (BODY[] {100}\nabc"),
                sleep(2000),
                Step::Close,
            ],
        )
        .args(&["--timeout", "0.5", "-c", "FETCH 1 BODY[]"])
        .exit(
            4,
            "timed out after 0.5s waiting for the server's response to a1 FETCH",
        )
        .received(&["a1 FETCH 1 BODY[]"]),
    );

    v.push(
        Case::new(
            "server silent after a command",
            vec![send(GREETING), expect("a1 NOOP"), sleep(1500), Step::Close],
        )
        .args(&["--timeout", "0.5", "-c", "NOOP"])
        .exit(
            4,
            "timed out after 0.5s waiting for the server's response to a1 NOOP",
        )
        .received(&["a1 NOOP"]),
    );

    v.push(
        Case::new(
            "no continuation for a synchronizing literal",
            vec![
                send(GREETING),
                expect("a1 APPEND INBOX {5}"),
                sleep(1500),
                Step::Close,
            ],
        )
        .stdin("APPEND INBOX {5}\nhello\n")
        .args(&["--timeout", "0.5"])
        .exit(
            4,
            "timed out after 0.5s waiting for the server's '+' to send the literal of a1",
        )
        .received(&["a1 APPEND INBOX {5}"]),
    );

    v.push(
        Case::new(
            "TLS handshake that never completes",
            vec![sleep(1500), Step::Close],
        )
        .args(&["--tls", "--timeout", "0.5", "-c", "NOOP"])
        .exit(
            3,
            "timed out after 0.5s in the TLS handshake with '127.0.0.1'",
        )
        .received_then_tls(&[]),
    );

    v.push(
        Case::new(
            "STARTTLS never answered",
            vec![
                send(GREETING),
                expect("a1 STARTTLS"),
                sleep(1500),
                Step::Close,
            ],
        )
        .args(&["--starttls", "--timeout", "0.5", "-c", "NOOP"])
        .exit(3, "timed out after 0.5s waiting for the answer to STARTTLS")
        .received(&["a1 STARTTLS"]),
    );

    v.push(
        Case::new(
            "STARTTLS handshake that never completes",
            vec![
                send(GREETING),
                expect("a1 STARTTLS"),
                send("a1 OK Begin TLS negotiation now\n"),
                sleep(1500),
                Step::Close,
            ],
        )
        .args(&["--starttls", "--timeout", "0.5", "-c", "NOOP"])
        .exit(
            3,
            "timed out after 0.5s in the TLS handshake with '127.0.0.1'",
        )
        .received_then_tls(&["a1 STARTTLS"]),
    );

    // 32 MiB is more than loopback socket buffers hold, so the send blocks.
    let mut append = format!("APPEND INBOX {{{}+}}\n", 32 << 20).into_bytes();
    append.extend(std::iter::repeat_n(b'm', 32 << 20));
    append.extend_from_slice(b"\n");
    v.push(
        Case::new(
            "server stops reading while a literal is sent",
            vec![send(GREETING), sleep(2500), Step::Close],
        )
        .stdin(append)
        .args(&["--timeout", "0.5"])
        .exit(4, "(the server is not reading)")
        .received_starts(&["a1 APPEND INBOX {33554432+}"])
        .stdout(Out::Any),
    );

    // --- Local input: nothing read may fill memory or the disk ------------

    v.push(
        Case::new(
            "a file literal from /dev/zero is refused",
            vec![
                send(GREETING),
                expect("a1 NOOP"),
                send("a1 OK done\n"),
                Step::ExpectEof,
            ],
        )
        .args(&["-c", "NOOP", "-c", "APPEND INBOX {@/dev/zero}"])
        .exit(2, "{@/dev/zero}: is a character device")
        .received(&["a1 NOOP"]),
    );

    v.push(
        Case::new(
            "a file literal from /dev/urandom is refused",
            vec![send(GREETING), Step::ExpectEof],
        )
        .args(&["-c", "APPEND INBOX {@/dev/urandom}"])
        .exit(2, "{@/dev/urandom}: is a character device"),
    );

    v.push(
        Case::new(
            "stdin literal over the spool limit",
            vec![
                send(GREETING),
                expect("a1 NOOP"),
                send("a1 OK done\n"),
                Step::ExpectEof,
            ],
        )
        .args(&[
            "--spool-limit",
            "1M",
            "-c",
            "NOOP",
            "-c",
            "APPEND INBOX {@-}",
        ])
        .stdin(vec![b'x'; (1 << 20) + 1])
        .exit(2, "{@-}: more than 1.00 MiB to copy")
        .received(&["a1 NOOP"]),
    );

    v.push(
        Case::new(
            "stdin literal at the spool limit",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 APPEND INBOX {1024+}"),
                    Step::ExpectBytes(vec![b'y'; 1024]),
                    expect(""),
                    send("a1 OK stored\n"),
                ],
                logout("a2"),
            ]),
        )
        .args(&["--spool-limit", "1K", "-c", "APPEND INBOX {@-}"])
        .stdin(vec![b'y'; 1024])
        .received_starts(&["a1 APPEND INBOX {1024+}"]),
    );

    // --- A terminal: nothing the server sends may drive it -----------------

    v.push(
        Case::new(
            "escape sequences in lines on a terminal",
            steps(vec![
                vec![
                    Step::Send(
                        b"* OK \x1b]0;PWNED\x07 title \x1b[2J\x1b[H clear \x9b31m c1 \xc2\x9b32m \x07\x07 bell\r\n"
                            .to_vec(),
                    ),
                    expect("a1 NOOP"),
                    Step::Send(b"* 1 EXISTS \x1bc reset \x1bP dcs \x1b\\\r\na1 OK \x1b[1A\x1b[2Kerased\r\n".to_vec()),
                ],
                logout("a2"),
            ]),
        )
        .tty()
        .args(&["-c", "NOOP"])
        .received(&["a1 NOOP", "a2 LOGOUT"])
        .stdout(Out::Screen(vec![
            "\\x1b]0;PWNED\\x07 title \\x1b[2J\\x1b[H clear \\x9b31m c1 \\u{9b}32m \\x07\\x07 bell",
            "* 1 EXISTS \\x1bc reset \\x1bP dcs \\x1b\\",
            "a1 OK \\x1b[1A\\x1b[2Kerased",
        ])),
    );

    v.push(
        Case::new(
            "invisible and bidi formatting characters on a terminal",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 NOOP"),
                    send(
                        "* OK zero\u{200b}width join\u{200d}er bom\u{feff} shy\u{ad} ls\u{2028}ps\u{2029} rlo\u{202e} tag\u{e0041}\r\na1 OK done\r\n",
                    ),
                ],
                logout("a2"),
            ]),
        )
        .tty()
        .args(&["-c", "NOOP"])
        .received(&["a1 NOOP", "a2 LOGOUT"])
        .stdout(Out::Screen(vec![
            "* OK zero\\u{200b}width join\\u{200d}er bom\\u{feff} shy\\u{ad} ls\\u{2028}ps\\u{2029} rlo\\u{202e} tag\\u{e0041}",
        ])),
    );

    let evil =
        b"Subject: \x1b]2;owned\x07\r\n\r\n\x1b[2J\x1b]52;c;ZXZpbA==\x07\x9b6n\xc2\x85next\x07\r\n";
    v.push(
        Case::new(
            "escape sequences in a literal on a terminal",
            steps(vec![
                vec![
                    send(GREETING),
                    expect("a1 FETCH 1 BODY[]"),
                    Step::Send(with_literal(
                        "* 1 FETCH (BODY[] ",
                        evil,
                        b")\r\na1 OK done\r\n",
                    )),
                ],
                logout("a2"),
            ]),
        )
        .tty()
        .args(&["-c", "FETCH 1 BODY[]"])
        .received(&["a1 FETCH 1 BODY[]", "a2 LOGOUT"])
        .stdout(Out::Screen(vec![
            "Subject: \\x1b]2;owned\\x07",
            "\\x1b[2J\\x1b]52;c;ZXZpbA==\\x07\\x9b6n\\u{85}next\\x07",
        ])),
    );

    v
}

/// Bytes that must never reach a terminal from the server: ESC, BEL, a
/// raw C1 CSI, and C1 controls encoded in UTF-8 (CSI, NEL).
const FORBIDDEN: &[&[u8]] = &[
    b"\x1b",
    b"\x07",
    b"\x9b",
    b"\xc2\x9b",
    b"\xc2\x85",
    "\u{200b}".as_bytes(),
    "\u{200d}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{202e}".as_bytes(),
    "\u{feff}".as_bytes(),
    "\u{ad}".as_bytes(),
    "\u{e0041}".as_bytes(),
];

/// What one run of the binary left behind.
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

fn run_piped(args: &[String], stdin: &[u8]) -> Run {
    let out = imaptalk()
        .args(args)
        .write_stdin(stdin.to_vec())
        .output()
        .expect("run imaptalk");
    Run {
        code: out.status.code(),
        stderr: stderr_of(&out),
        stdout: out.stdout,
    }
}

/// Runs the binary on a pseudo-terminal; stdout and stderr are both the
/// terminal, so both end up in `stdout` (and `stderr` repeats it).
fn run_tty(args: &[String]) -> Run {
    use rexpect::process::PtyProcess;
    use std::io::Read;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imaptalk"));
    cmd.args(args)
        .env("TERM", "xterm-256color")
        .env("NO_COLOR", "1")
        .env("HOME", std::env::temp_dir())
        .env("LANG", "C.UTF-8");
    let mut p = PtyProcess::new(cmd).expect("spawn on a pty");
    let mut master = p.get_file_handle().expect("pty master");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut screen = Vec::new();
        let mut buf = [0u8; 8192];
        // Linux answers EIO once the child side is closed: the end.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            screen.extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(screen);
    });
    let screen = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(s) => s,
        Err(_) => {
            let _ = p.exit();
            b"<no end of output within 30 s>".to_vec()
        }
    };
    // `Exited(Pid(n), code)`; rexpect does not re-export nix's WaitStatus.
    let status = p.wait().map(|s| format!("{s:?}")).unwrap_or_default();
    let code = status
        .strip_prefix("Exited(")
        .and_then(|s| s.rsplit_once(", "))
        .and_then(|(_, c)| c.trim_end_matches(')').parse().ok());
    Run {
        code,
        stderr: String::from_utf8_lossy(&screen).into_owned(),
        stdout: screen,
    }
}

struct Env {
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
    trusted: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
    untrusted: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
}

fn env() -> Env {
    let pki = pki_for(&["localhost", "127.0.0.1"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = write_ca(dir.path(), &pki);
    Env {
        ca,
        _dir: dir,
        trusted: rustls_server_config(&pki),
        untrusted: rustls_server_config(&pki_for(&["localhost", "127.0.0.1"])),
    }
}

/// Runs one case; returns what went wrong (empty: the case passed).
fn check(case: Case, env: &Env) -> Vec<String> {
    let steps = case.steps;
    let server = match case.server {
        Server::Plain => ScriptedServer::start(steps),
        Server::StartTls => ScriptedServer::start_starttls(steps, env.trusted.clone()),
        Server::StartTlsUntrusted => ScriptedServer::start_starttls(steps, env.untrusted.clone()),
    };
    let mut args = vec![local(server.port())];
    let ca = env.ca.display().to_string();
    args.extend(case.args.iter().map(|a| a.replace("{ca}", &ca)));
    let run = if case.tty {
        run_tty(&args)
    } else {
        run_piped(&args, &case.stdin)
    };
    let t = server.finish();
    let mut problems = Vec::new();

    if run.code != Some(case.exit) {
        problems.push(format!("exit code {:?}, expected {}", run.code, case.exit));
    }
    if case.stderr.is_empty() {
        if !case.tty && !run.stderr.is_empty() {
            problems.push("stderr should be empty".into());
        }
    } else if !run.stderr.contains(case.stderr) {
        problems.push(format!("stderr lacks {:?}", case.stderr));
    }
    if !case.tty && run.stderr.lines().count() > 1 && case.exit > 1 {
        problems.push("a failure must be one line on stderr".into());
    }
    check_received(&case.received, &t, &mut problems);
    match (&case.server_fails, t.failures.is_empty()) {
        (None, false) => problems.push(format!("server script failed: {:?}", t.failures)),
        (Some(why), _) if !t.failures.iter().any(|f| f.contains(why)) => {
            problems.push(format!(
                "server script should have failed with {why:?}: {:?}",
                t.failures
            ));
        }
        _ => {}
    }
    match &case.stdout {
        Out::Sent if run.stdout != t.sent => problems.push(format!(
            "stdout is not the server's bytes ({} bytes, server sent {})",
            run.stdout.len(),
            t.sent.len()
        )),
        Out::Exact(want) if &run.stdout != want => problems.push(format!(
            "stdout {:?}, expected {:?}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(want)
        )),
        Out::Screen(want) => {
            let screen = String::from_utf8_lossy(&run.stdout);
            for w in want {
                if !screen.contains(w) {
                    problems.push(format!("the terminal does not show {w:?}"));
                }
            }
            for bad in FORBIDDEN {
                if run.stdout.windows(bad.len()).any(|w| w == *bad) {
                    problems.push(format!("{bad:x?} reached the terminal"));
                }
            }
        }
        _ => {}
    }
    if !problems.is_empty() {
        problems.push(format!(
            "stderr: {:?}\n      received: {:?}\n      server log: {:?}",
            run.stderr,
            String::from_utf8_lossy(&t.received[..t.received.len().min(2000)]),
            &t.log[..t.log.len().min(30)]
        ));
    }
    problems
}

fn check_received(want: &Received, t: &Transcript, problems: &mut Vec<String>) {
    let expected: Vec<u8> = match want {
        Received::Lines(l) | Received::LinesThenTls(l) | Received::StartsWith(l) => l
            .iter()
            .flat_map(|l| format!("{l}\r\n").into_bytes())
            .collect(),
    };
    let ok = match want {
        Received::Lines(_) => t.received == expected,
        Received::StartsWith(_) => t.received.starts_with(&expected),
        // A TLS record starts with 0x16 (handshake) then version 3.x.
        Received::LinesThenTls(_) => {
            t.received.starts_with(&expected)
                && t.received[expected.len()..].starts_with(&[0x16, 0x03])
        }
    };
    if !ok {
        problems.push(format!(
            "the server received {:?}",
            String::from_utf8_lossy(&t.received[..t.received.len().min(300)])
        ));
    }
}

#[test]
fn table() {
    let only = std::env::var("HOSTILE_CASE").ok();
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| only.as_deref().is_none_or(|o| c.name.contains(o)))
        .collect();
    if only.is_none() {
        assert!(cases.len() >= 25, "the table shrank to {}", cases.len());
    }
    let names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "case names must be unique");

    let env = env();
    let queue = Mutex::new(cases.into_iter());
    let failures = Mutex::new(Vec::new());
    let done = AtomicUsize::new(0);
    // Most cases spend their time waiting (silences, timeouts); a few run
    // at once. The machine may be small and shared: not too many.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some(case) = next else { break };
                    let name = case.name;
                    let problems = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        check(case, &env)
                    }))
                    .unwrap_or_else(|_| vec!["the driver panicked".into()]);
                    done.fetch_add(1, Ordering::Relaxed);
                    if !problems.is_empty() {
                        failures
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("{name}:\n    {}", problems.join("\n    ")));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    assert!(
        failures.is_empty(),
        "{} of {} hostile cases failed:\n{}",
        failures.len(),
        done.load(Ordering::Relaxed),
        failures.join("\n")
    );
}

/// Secrets are read before connecting: nothing listens on port 9.
fn secret_run(args: &[&str]) -> Run {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.push("127.0.0.1:9".into());
    run_piped(&all, b"")
}

#[test]
fn a_password_file_of_endless_zeros_is_refused_at_once() {
    let start = std::time::Instant::now();
    let run = secret_run(&["-u", "alice", "--password-file", "/dev/zero"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--password-file /dev/zero: longer than 4096 bytes"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // It read 4 KiB, not a gigabyte.
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn an_endless_oauth2_token_command_is_stopped() {
    let run = secret_run(&["-u", "alice", "--oauth2-token-command", "yes"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--oauth2-token-command printed more than 64 KiB"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn a_full_stdout_is_named() {
    let server = ScriptedServer::start(steps(vec![
        vec![
            send(GREETING),
            expect("a1 NOOP"),
            send("* 1 EXISTS\na1 OK done\n"),
        ],
        logout("a2"),
    ]));
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // not Linux
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_imaptalk"))
        .args([local(server.port()).as_str(), "-c", "NOOP"])
        .stdout(full)
        .output()
        .expect("run imaptalk");
    let _ = server.finish();
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert_eq!(
        err.trim_end(),
        "imaptalk: cannot write the output to stdout: No space left on device"
    );
}

#[test]
fn connect_timeout_names_the_connect() {
    // A listener with a backlog of 0 that never accepts: once one
    // connection waits in its queue, further SYNs go unanswered, like a
    // host that drops packets.
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let _queued = std::net::TcpStream::connect(addr).unwrap();
    let _also = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200));
    let out = imaptalk()
        .arg(addr.to_string())
        .args(["--timeout", "0.5", "-c", "NOOP"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert_eq!(
        stderr_of(&out),
        format!("imaptalk: timed out after 0.5s connecting to {addr}\n")
    );
}

/// The client's end of its connection to `server_port` in /proc/net/tcp:
/// the timer field, `tr:when` (tr 2: the keepalive timer; when: jiffies).
#[cfg(target_os = "linux")]
fn client_timer(server_port: u16) -> Option<(u32, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let remote = format!("0100007F:{server_port:04X}");
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // Established (01) connections whose far end is the server.
        if f.get(2) != Some(&remote.as_str()) || f.get(3) != Some(&"01") {
            return None;
        }
        let (tr, when) = f.get(5)?.split_once(':')?;
        Some((
            u32::from_str_radix(tr, 16).ok()?,
            u64::from_str_radix(when, 16).ok()?,
        ))
    })
}

#[cfg(target_os = "linux")]
#[test]
fn keepalive_is_on_so_a_dead_connection_is_noticed() {
    // Without --timeout, a server that vanishes mid-wait must still be
    // noticed: the kernel's keepalive timer runs on the idle connection.
    let server = ScriptedServer::start(vec![
        send(GREETING),
        expect("a1 NOOP"),
        sleep(3000),
        send("a1 OK done\n"),
        expect("a2 LOGOUT"),
        send("a2 OK bye\n"),
        Step::Close,
    ]);
    let port = server.port();
    let child = std::thread::spawn(move || {
        imaptalk()
            .arg(local(port))
            .args(["-c", "NOOP"])
            .output()
            .unwrap()
    });
    let deadline = std::time::Instant::now() + Duration::from_millis(2500);
    let mut seen = None;
    while std::time::Instant::now() < deadline {
        if let Some((2, when)) = client_timer(port) {
            seen = Some(when);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.join().unwrap();
    server.finish().assert_ok();
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let when = seen.expect("no keepalive timer on the client's idle connection");
    // The first probe is due about 60 s after the last traffic (the
    // field counts USER_HZ ticks, 100 a second).
    assert!(
        (5000..=6000).contains(&when),
        "keepalive due in {when} ticks, expected about 6000"
    );
}
