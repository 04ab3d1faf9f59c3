//! Files: where they go, who may read them, and what kind they are.
//!
//! Privacy differs in kind, not degree. On Unix a file is private by its
//! mode, so the history, `--log` transcripts and spool copies are created
//! 0600 (directories 0700), and a password file others can read is warned
//! about. On Windows a new file takes the access list of its directory:
//! under the user's profile (Local AppData, `%TEMP%`) that admits the user,
//! SYSTEM and the administrators only, so nothing is added there, and
//! access lists are not inspected.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The home directory: `HOME` on Unix (then the password database); the
/// user profile on Windows (`USERPROFILE`, then the system's answer),
/// where `HOME`, if set at all, is some Unix tool's idea.
pub fn home_dir() -> Option<PathBuf> {
    std::env::home_dir().filter(|h| !h.as_os_str().is_empty())
}

/// The directory for imaptalk's own data (the history): the XDG data
/// directory on Unix, macOS included (`$XDG_DATA_HOME`, else
/// `~/.local/share`: etcetera's choice for command-line tools); Local
/// AppData on Windows, because Roaming AppData is copied to a server with
/// roaming profiles, and a history of IMAP commands should stay on the
/// machine it was typed on.
pub fn data_dir() -> Option<PathBuf> {
    use etcetera::BaseStrategy;
    let dirs = etcetera::choose_base_strategy().ok()?;
    #[cfg(windows)]
    return Some(dirs.cache_dir()); // %LOCALAPPDATA%
    #[cfg(not(windows))]
    Some(dirs.data_dir())
}

/// Makes a file created through `options` readable by its owner only.
pub fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

/// Creates `dir` and its parents, each new one private to the owner.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes an existing file private to its owner (one created before
/// imaptalk made it private, or by hand).
pub fn make_private(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}

/// Whether the file's mode lets others read it (always false on Windows,
/// whose access lists are not inspected).
pub fn others_may_read(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Whether `file` is a character device: `/dev/zero`, a terminal; on
/// Windows `NUL`, `CON`, a console. Its data never ends.
pub fn is_char_device(file: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        file.metadata()
            .is_ok_and(|m| m.file_type().is_char_device())
    }
    #[cfg(windows)]
    {
        windows::is_char_device(file)
    }
}

/// Creates a new file at `path` (an error if it exists), private, open for
/// reading and writing, that disappears by itself: unlinked at once on
/// Unix, deleted when its handle closes on Windows. Nothing is left behind
/// whatever happens to the process, and only this handle can reach it.
pub fn vanishing_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    private(&mut options);
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        options
            .custom_flags(windows::FILE_FLAG_DELETE_ON_CLOSE)
            .attributes(windows::FILE_ATTRIBUTE_TEMPORARY);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    std::fs::remove_file(path)?;
    Ok(file)
}

/// A path from the bytes of a `{@path}` token: any bytes on Unix, where a
/// path is bytes; UTF-8 on Windows, where it is UTF-16 (what is not UTF-8
/// could not have been typed there).
pub fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
    }
    #[cfg(not(unix))]
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod windows {
    use std::fs::File;
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::{FILE_TYPE_CHAR, GetFileType};

    pub use windows_sys::Win32::Storage::FileSystem::{
        FILE_ATTRIBUTE_TEMPORARY, FILE_FLAG_DELETE_ON_CLOSE,
    };

    pub fn is_char_device(file: &File) -> bool {
        // SAFETY: the handle belongs to `file`, open for this whole call;
        // GetFileType only asks the kernel what kind of object it is.
        unsafe { GetFileType(file.as_raw_handle()) == FILE_TYPE_CHAR }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn a_vanishing_file_works_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        let mut f = vanishing_file(&path).unwrap();
        f.write_all(b"data").unwrap();
        f.rewind().unwrap();
        let mut back = String::new();
        f.read_to_string(&mut back).unwrap();
        assert_eq!(back, "data");
        drop(f);
        assert!(!path.exists());
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn a_vanishing_file_never_replaces_one_that_exists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken");
        std::fs::write(&path, "mine").unwrap();
        let err = vanishing_file(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    }

    #[test]
    fn regular_files_are_no_character_devices() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "x").unwrap();
        assert!(!is_char_device(&File::open(&path).unwrap()));
        let null = if cfg!(windows) { "NUL" } else { "/dev/null" };
        assert!(is_char_device(&File::open(null).unwrap()));
    }

    #[cfg(unix)]
    #[test]
    fn private_files_and_directories_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        create_private_dir_all(&sub).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        let path = sub.join("f");
        let file = private(OpenOptions::new().create(true).append(true))
            .open(&path)
            .unwrap();
        assert_eq!(mode(&path), 0o600);
        assert!(!others_may_read(&path));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(others_may_read(&path));
        make_private(&file).unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn the_history_stays_on_this_machine() {
        let dir = data_dir().unwrap();
        if cfg!(windows) {
            let local = std::env::var_os("LOCALAPPDATA").unwrap();
            assert_eq!(dir, PathBuf::from(local));
        } else if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            assert_eq!(dir, PathBuf::from(xdg));
        } else {
            assert!(dir.ends_with(".local/share"), "{}", dir.display());
        }
    }
}
