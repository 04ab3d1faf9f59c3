//! File and stdin literals, the reading side: `{@path}` in a command line
//! stands for the contents of that file, sent as a literal with its exact
//! byte count; `{@-}` stands for stdin (only with `-c`, where stdin holds no
//! script). The tokens and the announcement are in
//! [`protocol::literal`](crate::protocol::literal).
//!
//! The count must be on the wire before the data, and whether the data
//! holds a NUL byte decides between `{n}` and `~{n}` (literal8, RFC 3516).
//! So a regular file is read twice and never held in memory: a streaming
//! scan (memchr) counts its bytes and looks for NUL before anything of the
//! command is sent, then the data goes out in chunks. Stdin and other
//! files that can be read only once (pipes, `<(…)`, `/dev/stdin`) are
//! first copied to a temporary file in `$TMPDIR` that nothing else can
//! reach and that vanishes by itself
//! ([`vanishing_file`](crate::platform::files::vanishing_file)), scanned
//! on the way, then sent from there.
//!
//! Nothing local may fill the disk: a copy stops at the spool limit
//! (`--spool-limit`, [`SPOOL_LIMIT`] by default) with an error, and a
//! character device (`/dev/zero`, `/dev/urandom`, a terminal) is refused
//! outright: it has no end, and no message is one.

use crate::platform::files::{self, path_from_bytes};
use crate::protocol::caps::Capabilities;
use crate::protocol::literal::announcement;
use crate::text::io_text;
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// How much of a file is read (and sent) at a time.
const CHUNK: usize = 128 * 1024;

/// The default `--spool-limit`: the most a source that can be read only
/// once (stdin, a pipe) is copied to `$TMPDIR` — often a RAM disk. Far
/// above what servers accept as one message; a regular file is never
/// copied, so it has no such limit.
pub const SPOOL_LIMIT: u64 = 256 * 1024 * 1024;

/// One file literal: counted and scanned, ready to be sent in chunks.
#[derive(Debug)]
pub struct FileLiteral {
    /// The token as the user wrote it (`{@msg.eml}`), for messages.
    pub name: String,
    /// Exact byte count, from the scan (not from metadata).
    pub len: u64,
    /// The data holds at least one NUL byte.
    pub nul: bool,
    file: File,
    buf: Vec<u8>,
}

impl FileLiteral {
    /// Opens and scans the file named in a `{@…}` token. A leading `~/`
    /// (or `~\` on Windows) means the home directory (the shell does not expand it
    /// inside a quoted -c argument, and cmd.exe never does).
    /// `spool_limit`: see [`spooled`](Self::spooled).
    pub fn open(path: &[u8], spool_limit: u64) -> Result<FileLiteral, String> {
        let name = format!("{{@{}}}", String::from_utf8_lossy(path));
        let fail = |what: &str, e: &io::Error| format!("{name}: {what}: {}", io_text(e));
        let path = expand_home(path);
        let mut file = File::open(&path).map_err(|e| {
            // Windows refuses to open a directory as a file ("Access is
            // denied"): say what it is, as on Unix.
            if is_dir(&path) {
                format!("{name}: is a directory")
            } else {
                fail("cannot open", &e)
            }
        })?;
        // Before the metadata, which Windows cannot tell for a console.
        if files::is_char_device(&file) {
            return Err(format!(
                "{name}: is a character device (such as /dev/zero or a terminal), whose data has no end to count; name a regular file, or pipe the data to {{@-}}"
            ));
        }
        let meta = file.metadata().map_err(|e| fail("cannot read", &e))?;
        if meta.is_dir() {
            return Err(format!("{name}: is a directory"));
        }
        if !meta.is_file() {
            // A pipe can be read once only: keep a copy.
            return FileLiteral::spooled(name, &mut file, spool_limit);
        }
        let (len, nul) = scan(&mut file).map_err(|e| fail("cannot read", &e))?;
        file.rewind().map_err(|e| fail("cannot read", &e))?;
        Ok(FileLiteral {
            name,
            len,
            nul,
            file,
            buf: Vec::new(),
        })
    }

    /// Copies all of `source` into a temporary file, counting and scanning
    /// on the way, and reads the literal from there. A source of more than
    /// `limit` bytes is an error, and what was copied is freed.
    pub fn spooled(
        name: String,
        source: &mut impl Read,
        limit: u64,
    ) -> Result<FileLiteral, String> {
        let fail = |what: &str, e: &io::Error| format!("{name}: {what}: {}", io_text(e));
        let mut file = spool_file().map_err(|e| fail("cannot create a temporary copy", &e))?;
        let mut buf = vec![0; CHUNK];
        let (mut len, mut nul) = (0u64, false);
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(fail("cannot read", &e)),
            };
            nul = nul || memchr::memchr(0, &buf[..n]).is_some();
            len += n as u64;
            if len > limit {
                return Err(format!(
                    "{name}: more than {} to copy to the temporary directory (--spool-limit); raise it with --spool-limit SIZE, or name a regular file, which is sent without a copy",
                    crate::text::size(limit)
                ));
            }
            file.write_all(&buf[..n])
                .map_err(|e| fail("cannot write the temporary copy", &e))?;
        }
        file.rewind()
            .map_err(|e| fail("cannot read the temporary copy", &e))?;
        Ok(FileLiteral {
            name,
            len,
            nul,
            file,
            buf,
        })
    }

    /// How this literal is announced to a server with `caps`.
    pub fn announcement(&self, caps: &Capabilities) -> Result<String, String> {
        announcement(self.len, self.nul, caps).map_err(|e| format!("{} {e}", self.name))
    }

    /// The next chunk of data, at most `remaining` bytes (what is still
    /// owed on the wire). A file that got shorter since it was counted is
    /// an error: the announced count can no longer be honoured.
    pub fn next_chunk(&mut self, remaining: u64) -> Result<&[u8], String> {
        let want = usize::try_from(remaining).map_or(CHUNK, |r| r.min(CHUNK));
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let n = loop {
            match self.file.read(&mut self.buf[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("{}: cannot read: {}", self.name, io_text(&e))),
            }
        };
        if n == 0 && want > 0 {
            return Err(format!(
                "{} got shorter while it was being sent ({remaining} of its {} bytes missing); the command cannot be completed",
                self.name, self.len
            ));
        }
        Ok(&self.buf[..n])
    }
}

fn is_dir(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_dir())
}

/// Counts the bytes of `file` and looks for NUL, a chunk at a time.
fn scan(file: &mut File) -> io::Result<(u64, bool)> {
    let mut buf = vec![0; CHUNK];
    let (mut len, mut nul) = (0u64, false);
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok((len, nul)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        nul = nul || memchr::memchr(0, &buf[..n]).is_some();
        len += n as u64;
    }
}

/// A new temporary file in `$TMPDIR` (`%TEMP%`), private, that vanishes
/// when it is closed or the process ends.
fn spool_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = io::Error::other("no name");
    for attempt in 0..16u32 {
        let path = dir.join(format!(
            "imaptalk-literal-{}-{nanos}-{attempt}",
            std::process::id()
        ));
        match files::vanishing_file(&path) {
            Ok(file) => return Ok(file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// `~/rest` (on Windows also `~\rest`) in the home directory, the rest as written.
fn expand_home(path: &[u8]) -> PathBuf {
    if let Some(rest) = path
        .strip_prefix(b"~/")
        .or_else(|| path.strip_prefix(b"~\\").filter(|_| cfg!(windows)))
        && let Some(home) = files::home_dir()
    {
        return home.join(path_from_bytes(rest));
    }
    path_from_bytes(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_counted_scanned_and_sent_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let mut data: Vec<u8> = (0..300_000u32).map(|i| (i % 251 + 1) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut f = FileLiteral::open(path.to_str().unwrap().as_bytes(), SPOOL_LIMIT).unwrap();
        assert_eq!((f.len, f.nul), (300_000, false));
        let mut got = Vec::new();
        while (got.len() as u64) < f.len {
            let remaining = f.len - got.len() as u64;
            let c = f.next_chunk(remaining).unwrap().to_vec();
            assert!(c.len() <= CHUNK);
            got.extend_from_slice(&c);
        }
        assert_eq!(got, data);
        data[299_999] = 0;
        std::fs::write(&path, &data).unwrap();
        let mut f = FileLiteral::open(path.to_str().unwrap().as_bytes(), SPOOL_LIMIT).unwrap();
        assert!(f.nul);
        // The file shrinks after it was counted: an error, never a short literal.
        std::fs::write(&path, b"short").unwrap();
        assert_eq!(f.next_chunk(300_000).unwrap(), b"short");
        assert!(f.next_chunk(300_000 - 5).unwrap_err().contains("shorter"));
        assert!(
            FileLiteral::open(b"/nonexistent/x", SPOOL_LIMIT)
                .unwrap_err()
                .starts_with("{@/nonexistent/x}: cannot open")
        );
        assert!(
            FileLiteral::open(dir.path().to_str().unwrap().as_bytes(), SPOOL_LIMIT)
                .unwrap_err()
                .contains("directory")
        );
    }

    #[test]
    fn a_tilde_means_the_home_directory() {
        let home = files::home_dir().unwrap();
        assert_eq!(expand_home(b"~/m/x.eml"), home.join("m/x.eml"));
        assert_eq!(expand_home(b"x~/y"), PathBuf::from("x~/y"));
        assert_eq!(expand_home(b"~other/y"), PathBuf::from("~other/y"));
        if cfg!(windows) {
            assert_eq!(expand_home(b"~\\x.eml"), home.join("x.eml"));
        }
    }

    #[test]
    fn spooled_sources_are_copied_once() {
        let data = b"a\x00b".repeat(100_000);
        let mut f = FileLiteral::spooled("{@-}".into(), &mut &data[..], 300_000).unwrap();
        assert_eq!((f.len, f.nul), (300_000, true));
        let mut got = Vec::new();
        while (got.len() as u64) < f.len {
            let c = f.next_chunk(f.len - got.len() as u64).unwrap().to_vec();
            got.extend_from_slice(&c);
        }
        assert_eq!(got, data);
    }

    #[test]
    fn spools_are_bounded_and_devices_refused() {
        let e = FileLiteral::spooled("{@-}".into(), &mut std::io::repeat(b'x'), 1000).unwrap_err();
        assert!(e.starts_with("{@-}: more than 1000 bytes"), "{e}");
        assert!(e.contains("--spool-limit SIZE"), "{e}");
        let devices: &[&str] = if cfg!(windows) {
            &["NUL"]
        } else {
            &["/dev/zero", "/dev/urandom", "/dev/null"]
        };
        for dev in devices {
            let e = FileLiteral::open(dev.as_bytes(), SPOOL_LIMIT).unwrap_err();
            assert!(e.contains("is a character device"), "{e}");
        }
    }
}
