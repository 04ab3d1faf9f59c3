//! `--generate`: shell completions and the man page, written to stdout
//! without a server and without connecting.

use crate::support::imaptalk;

fn generate(kind: &str) -> String {
    let out = imaptalk().args(["--generate", kind]).assert().success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

#[test]
fn bash_completion_knows_the_flags() {
    let script = generate("complete-bash");
    assert!(script.contains("--starttls"), "{script}");
    assert!(script.contains("--cafile"), "{script}");
}

#[test]
fn every_kind_needs_no_server() {
    for kind in [
        "complete-bash",
        "complete-zsh",
        "complete-fish",
        "complete-elvish",
        "complete-powershell",
        "man",
    ] {
        assert!(!generate(kind).is_empty(), "{kind}");
    }
}

#[test]
fn man_page_is_roff() {
    let page = generate("man");
    let th = page
        .lines()
        .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"))
        .unwrap_or_default();
    assert!(th.to_ascii_lowercase().starts_with(".th"), "{page}");
    assert!(page.contains("starttls"), "{page}");
}

#[test]
fn man_page_carries_the_readme_sections_with_examples_unbroken() {
    let page = generate("man");
    for section in [
        ".SH \"USAGE\"",
        ".SH \"AT THE PROMPT\"",
        ".SH \"SCRIPT FORMAT AND META-COMMANDS\"",
        ".SH \"SERVER CHECK\"",
        ".SH \"EXIT STATUS\"",
        ".SH \"SECURITY\"",
    ] {
        assert!(page.contains(section), "{section} missing");
    }
    // An example stays one line, in a no-fill block: never reflowed.
    let example =
        "imaptalk host:993 \\-c 'LOGIN alice secret' \\-c 'STATUS INBOX (MESSAGES UNSEEN)'";
    let at = page.find(example).expect("the -c example");
    let before = &page[..at];
    assert!(
        before.rfind(".nf") > before.rfind(".fi"),
        "not in a .nf block"
    );
    // The meta-commands, the exit codes and the security rules are there.
    assert!(page.contains("\\fB\\elogin\\fR"), "\\login");
    assert!(page.contains(".TP\n130 / 143\n"), "exit codes");
    assert!(page.contains("STARTTLS never falls back to plaintext"));
    assert!(
        page.contains("starttls.P.injection"),
        "the --check findings"
    );
    // --help's own examples paragraph (reflowed by roff) is not repeated.
    assert!(!page.contains("Examples:"), "clap's extra section");
    // No text line would be read as a roff request.
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix('.') {
            let request = rest.split_whitespace().next().unwrap_or("");
            assert!(
                request
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '\\' || c == '"'),
                "{line:?}"
            );
        }
    }
}

#[test]
fn without_server_or_generate_is_a_usage_error() {
    imaptalk().assert().code(2);
}

#[test]
fn help_lists_generate_and_server_as_the_usage_line_does() {
    // The completions offer --generate: so does --help. SERVER is
    // required everywhere but with --generate, and listed so.
    let out = imaptalk().arg("--help").assert().success();
    let help = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(help.contains("--generate <KIND>"), "{help}");
    assert!(
        help.contains("Usage: imaptalk [OPTIONS] <SERVER>"),
        "{help}"
    );
    assert!(help.contains("\n  <SERVER>\n"), "{help}");
    assert!(!help.contains("[SERVER]"), "{help}");
    imaptalk()
        .args(["--generate", "man", "host"])
        .assert()
        .code(2);
}

#[test]
fn closed_stdout_ends_quietly() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = crate::support::imaptalk_std()
        .args(["--generate", "man"])
        .stdout(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
