//! Shell completions and the man page, generated at run time from the one
//! clap definition in [`crate::app::cli`] (the hidden `--generate KIND` flag).

use crate::app::cli::{Cli, Generate};
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::Write;

/// Writes the requested completion script or man page to stdout. An I/O
/// error (a closed pipe included) is returned for `main` to map.
pub fn write(kind: Generate) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    // Rendered into memory first: clap_complete panics on a write error, and
    // a closed stdout must end quietly.
    let mut buf = Vec::new();
    let shell = match kind {
        Generate::CompleteBash => Shell::Bash,
        Generate::CompleteZsh => Shell::Zsh,
        Generate::CompleteFish => Shell::Fish,
        Generate::CompleteElvish => Shell::Elvish,
        Generate::CompletePowershell => Shell::PowerShell,
        Generate::Man => {
            man(cmd, &mut buf)?;
            return emit(&buf);
        }
    };
    let name = cmd.get_name().to_owned();
    clap_complete::generate(shell, &mut cmd, name, &mut buf);
    emit(&buf)
}

/// The README, whose sections the man page carries (one text, never out
/// of date).
const README: &str = include_str!("../../README.md");

/// The sections of the README the page carries, as (heading, man section).
const SECTIONS: [(&str, &str); 6] = [
    ("## Usage", "USAGE"),
    ("### Interactive mode", "AT THE PROMPT"),
    (
        "### Script format (stdin and `-c`)",
        "SCRIPT FORMAT AND META-COMMANDS",
    ),
    ("### Server check (`--check`)", "SERVER CHECK"),
    ("## Exit codes", "EXIT STATUS"),
    ("## Security behaviour", "SECURITY"),
];

/// clap's page (name, synopsis, description, options) and the README's
/// usage, interactive mode, script format and meta-commands, exit codes
/// and security behaviour. clap's "extra" section (the examples and exit
/// codes of `--help`) is left out: the README's come with their line
/// breaks kept.
fn man(cmd: clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let page = clap_mangen::Man::new(cmd);
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    page.render_description_section(out)?;
    page.render_options_section(out)?;
    for (heading, name) in SECTIONS {
        let body = section(README, heading);
        out.extend_from_slice(format!(".SH \"{name}\"\n").as_bytes());
        out.extend_from_slice(roff(&body, heading == "## Usage").as_bytes());
    }
    page.render_version_section(out)?;
    page.render_authors_section(out)
}

/// The body of the README section under `heading`, up to the next heading
/// of its level or above (its own subsections belong to it, except
/// under Usage, whose subsections are sections of the page themselves).
fn section(md: &str, heading: &str) -> String {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut lines = md.lines().skip_while(|l| *l != heading).skip(1);
    let mut body = String::new();
    let mut fenced = false;
    for line in lines.by_ref() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            let l = line.chars().take_while(|&c| c == '#').count();
            if l <= level || heading == "## Usage" {
                break;
            }
        }
        body.push_str(line);
        body.push('\n');
    }
    body
}

/// The Markdown of the README (paragraphs, `-` lists, fenced code, tables,
/// inline code, bold, links) as roff. Code keeps its line breaks. `skip_options`:
/// the flag table is left out (the OPTIONS section has it).
fn roff(md: &str, skip_options: bool) -> String {
    let mut out = String::new();
    let mut fenced = false;
    let mut table_header = false;
    let mut in_options = false;
    let mut prev_blank = true;
    for line in md.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            if fenced {
                out.push_str(".fi\n.RE\n");
            } else {
                out.push_str(".RS 4\n.nf\n");
            }
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push_str(&roff_line(&escape(line)));
            out.push('\n');
            continue;
        }
        if trimmed.is_empty() {
            if !prev_blank {
                out.push_str(".PP\n");
            }
            prev_blank = true;
            in_options = false;
            continue;
        }
        prev_blank = false;
        if let Some(row) = trimmed.strip_prefix('|') {
            let cells: Vec<&str> = row
                .trim_end_matches('|')
                .split(" | ")
                .map(str::trim)
                .collect();
            if row.chars().all(|ch| matches!(ch, '-' | '|' | ':' | ' ')) {
                continue;
            }
            if !table_header {
                // The first row names the columns.
                table_header = true;
                in_options = skip_options && cells.first() == Some(&"option");
                continue;
            }
            if in_options {
                continue;
            }
            out.push_str(".TP\n");
            out.push_str(&roff_line(&inline(cells.first().copied().unwrap_or(""))));
            out.push('\n');
            // Further columns after a dash; each escaped on its own, so
            // the dash stays roff's, and an empty one leaves none.
            let rest: Vec<String> = cells[1..]
                .iter()
                .filter(|c| !c.is_empty())
                .map(|c| inline(c))
                .collect();
            out.push_str(&roff_line(&rest.join(" \\(em ")));
            out.push('\n');
            continue;
        }
        table_header = false;
        let lead = line.len() - trimmed.len();
        if let Some(item) = trimmed.strip_prefix("- ") {
            if lead > 0 {
                out.push_str(".RS 2\n.IP \\(bu 2\n");
            } else {
                out.push_str(".IP \\(bu 2\n");
            }
            out.push_str(&roff_line(&inline(item)));
            out.push('\n');
            if lead > 0 {
                out.push_str(".RE\n");
            }
            continue;
        }
        out.push_str(&roff_line(&inline(trimmed)));
        out.push('\n');
    }
    out
}

/// Backslashes and hyphens as roff wants them written.
fn escape(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// Inline Markdown: `code` and **bold** in bold, links by their text.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    let mut code = false;
    let mut bold = false;
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            out.push_str(if code { "\\fR" } else { "\\fB" });
            code = !code;
            rest = &rest[1..];
        } else if !code && rest.starts_with("**") {
            out.push_str(if bold { "\\fR" } else { "\\fB" });
            bold = !bold;
            rest = &rest[2..];
        } else if !code
            && c == '*'
            && let Some(end) = emphasis(rest)
        {
            out.push_str("\\fI");
            out.push_str(&escape(&rest[1..end]));
            out.push_str("\\fR");
            rest = &rest[end + 1..];
        } else if !code
            && c == '['
            && let Some(close) = rest.find("](")
            && let Some(end) = rest[close..].find(')')
        {
            out.push_str(&inline(&rest[1..close]));
            rest = &rest[close + end + 1..];
        } else {
            out.push_str(&escape(&c.to_string()));
            rest = &rest[c.len_utf8()..];
        }
    }
    if code || bold {
        out.push_str("\\fR");
    }
    out
}

/// `*word*` (emphasis): where its closing `*` is. A lone `*` (`LIST "" *`)
/// is text.
fn emphasis(rest: &str) -> Option<usize> {
    let inner = rest.get(1..)?;
    if !inner.starts_with(|c: char| c.is_alphanumeric()) {
        return None;
    }
    let end = inner.find('*')?;
    let word = &inner[..end];
    (word.ends_with(|c: char| c.is_alphanumeric()) && !word.contains('`')).then_some(end + 1)
}

/// A text line that roff would take for a request is kept as text.
fn roff_line(line: &str) -> String {
    if line.starts_with('.') || line.starts_with('\'') {
        format!("\\&{line}")
    } else {
        line.to_string()
    }
}

fn emit(buf: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(buf)?;
    out.flush()?;
    Ok(())
}
