//! The session's side of `{@path}` file literals (see
//! [`crate::io::fileliteral`]): where the data of a literal comes from, and
//! the parts of a command line that follow each file's data.

use super::{Feed, Session};
use crate::core::options::Input;
use crate::error;
use crate::io::fileliteral::FileLiteral;
use crate::protocol::literal::Split;
use anyhow::Result;
use std::io::IsTerminal;

/// Where the data of a literal the client sends comes from.
#[derive(Debug)]
pub enum LiteralSource {
    /// The input itself: the bytes after the line that announced it.
    Input,
    /// A `{@…}` file, streamed from disk.
    File(Box<FileLiteral>),
}

impl LiteralSource {
    pub fn name(&self) -> Option<&str> {
        match self {
            LiteralSource::Input => None,
            LiteralSource::File(f) => Some(&f.name),
        }
    }
}

/// A part of a command line after a file literal's data: its text, ending
/// in the announcement of `file`'s literal when there is one.
#[derive(Debug)]
pub struct Segment {
    pub text: Vec<u8>,
    pub file: Option<Box<FileLiteral>>,
}

impl Session {
    /// Opens and scans every file of a command line before anything of it
    /// is sent, so a missing file or NUL data without BINARY stops the
    /// line whole. Returns the first part of the line (ending in the first
    /// literal's announcement) and queues the rest.
    pub(super) fn expand_files(&mut self, split: Split) -> Result<Vec<u8>> {
        let mut files = Vec::with_capacity(split.files.len());
        for path in &split.files {
            let f = if path == b"-" {
                self.open_stdin()?
            } else {
                FileLiteral::open(path, self.settings.session.spool_limit).map_err(error::usage)?
            };
            files.push(f);
        }
        let mut segments = std::collections::VecDeque::with_capacity(files.len() + 1);
        let mut files = files.into_iter();
        for mut text in split.texts {
            let file = match files.next() {
                Some(f) => {
                    let announce = f.announcement(&self.caps).map_err(|e| {
                        error::usage(format!("{e}; nothing of the command was sent"))
                    })?;
                    text.extend_from_slice(announce.as_bytes());
                    Some(Box::new(f))
                }
                None => None,
            };
            segments.push_back(Segment { text, file });
        }
        let first = segments.pop_front().unwrap_or(Segment {
            text: Vec::new(),
            file: None,
        });
        self.next_file = first.file;
        self.segments = segments;
        Ok(first.text)
    }

    /// `{@-}`: stdin, copied once to a temporary file. Only with `-c`, where
    /// stdin is not the script, and only once per run.
    fn open_stdin(&mut self) -> Result<FileLiteral> {
        match self.settings.input {
            Input::Commands(_) => {}
            Input::Stdin => {
                return Err(error::usage(
                    "{@-} reads stdin, which holds the script here: give the commands with -c, or name a file ({@FILE})",
                ));
            }
            Input::Interactive => {
                return Err(error::usage(
                    "{@-} reads stdin, which is the terminal here: name a file ({@FILE})",
                ));
            }
        }
        if self.stdin_used {
            return Err(error::usage(
                "{@-} can be used once per run: an earlier {@-} read stdin to its end",
            ));
        }
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Err(error::usage(
                "{@-}: stdin is a terminal; redirect the data (e.g. < message.eml) or name a file ({@FILE})",
            ));
        }
        self.stdin_used = true;
        FileLiteral::spooled(
            "{@-}".to_string(),
            &mut stdin.lock(),
            self.settings.session.spool_limit,
        )
        .map_err(error::usage)
    }

    /// The source of the literal the line just sent announced.
    pub(super) fn literal_source(&mut self) -> LiteralSource {
        match self.next_file.take() {
            Some(f) => LiteralSource::File(f),
            None => LiteralSource::Input,
        }
    }

    /// The next part of a command line with file literals, if one is due.
    pub(super) fn next_segment(&mut self) -> Option<Vec<u8>> {
        let seg = self.segments.pop_front()?;
        self.next_file = seg.file;
        Some(seg.text)
    }

    /// A line with file literals is under way: no prompt until it is sent.
    pub(super) fn sending_files(&self) -> bool {
        !self.segments.is_empty()
            || matches!(
                self.feed,
                Feed::Literal {
                    source: LiteralSource::File(_),
                    ..
                }
            )
    }

    /// The server refused a command before its file literals were sent:
    /// drop them. The only input still owed is the data of a literal typed
    /// at the very end of the line; that is skipped. Returns the bytes of
    /// file data not sent, or None when the line had no file literals.
    pub(super) fn drop_file_literals(&mut self) -> Option<u64> {
        let file_feed = matches!(
            self.feed,
            Feed::Literal {
                source: LiteralSource::File(_),
                ..
            }
        );
        if !file_feed && self.segments.is_empty() {
            return None;
        }
        let mut unsent = match &self.feed {
            Feed::Literal {
                remaining,
                source: LiteralSource::File(_),
                ..
            } => *remaining,
            _ => 0,
        };
        unsent += self
            .segments
            .iter()
            .filter_map(|s| s.file.as_ref().map(|f| f.len))
            .sum::<u64>();
        let typed = self
            .segments
            .back()
            .filter(|s| s.file.is_none())
            .and_then(|s| {
                crate::protocol::command::trailing_literal(&s.text)
                    .ok()
                    .flatten()
            });
        self.segments.clear();
        self.next_file = None;
        self.feed = match typed {
            Some(lit) => Feed::Skip { remaining: lit.len },
            None => Feed::Command,
        };
        Some(unsent)
    }
}
