//! Replacing a local file so that a reader sees the old content or the new, never a mix, and the
//! new content survives a crash once the call returns. The sequence is always the same, and
//! every step matters:
//!
//! 1. write a temporary file beside the target (same file system, so the rename is atomic);
//! 2. fsync it (the data is on disk before the name points at it);
//! 3. rename it over the target;
//! 4. fsync the folder (the rename itself is on disk: without it a crash can bring back the old
//!    file, or no file at all for a new name).
//!
//! Every durable write in millrace goes through [`commit`]; nothing else renames state files.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Permissions of a file that holds a secret (owner read/write only).
pub const PRIVATE: u32 = 0o600;

/// Replaces `path` with `bytes` through a temporary file of its own (`.{name}.{pid}.{n}.tmp`),
/// so two writers of one path in a process cannot interleave; the last rename wins. Creates the
/// folder if missing. For state files: checkpoints, registries, reports, model files.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_file_staged(path, &unique_temp(path), bytes, None)
}

/// As [`write_file`], with the file created with `mode` permissions (Unix), e.g. [`PRIVATE`].
pub fn write_private_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_file_staged(path, &unique_temp(path), bytes, Some(PRIVATE))
}

/// As [`write_file`], staging in the caller's `tmp` (which must sit in the same folder): for
/// callers whose readers know to skip that name, or that reuse one staging name per key so a
/// replay after a crash truncates what a killed writer left. The temporary file is removed if
/// any step before the rename fails.
pub fn write_file_staged(
    path: &Path,
    tmp: &Path,
    bytes: &[u8],
    mode: Option<u32>,
) -> io::Result<()> {
    if let Some(dir) = parent(path) {
        std::fs::create_dir_all(dir)?;
    }
    let staged = (|| {
        let mut f = create(tmp, mode)?;
        f.write_all(bytes)?;
        commit(f, tmp, path)
    })();
    if staged.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    staged
}

/// Steps 2 to 4 for a file the caller wrote itself (streamed output): fsync `file` (written at
/// `tmp`), rename it to `path`, fsync the folder.
pub fn commit(file: File, tmp: &Path, path: &Path) -> io::Result<()> {
    file.sync_all()?;
    drop(file);
    std::fs::rename(tmp, path)?;
    sync_dir(parent(path).unwrap_or(Path::new(".")))
}

/// fsyncs a folder, so names created, renamed or removed in it are on disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes every file and folder of the file system that holds `path` (`syncfs(2)`; elsewhere
/// than Linux, `path` itself). For files a library writes without fsync (Iceberg's data and
/// metadata files), before a commit point ([`write_file`]) names them.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor stays open for the call (`f` lives until the end).
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    f.sync_all()
}

/// A staging name beside `path` that no other call in this process uses.
pub fn unique_temp(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = format!(".{name}.{}.{n}.tmp", std::process::id());
    match parent(path) {
        Some(dir) => dir.join(tmp),
        None => PathBuf::from(tmp),
    }
}

fn parent(path: &Path) -> Option<&Path> {
    path.parent().filter(|d| !d.as_os_str().is_empty())
}

fn create(path: &Path, mode: Option<u32>) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if let Some(mode) = mode {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_staging_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/state.json");
        write_file(&path, b"one").unwrap();
        write_file(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn failed_rename_removes_the_staging_file() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a non-empty folder: the rename fails after the data was written.
        let path = dir.path().join("taken");
        std::fs::create_dir_all(path.join("inside")).unwrap();
        let tmp = dir.path().join(".tmp-taken");
        assert!(write_file_staged(&path, &tmp, b"x", None).is_err());
        assert!(!tmp.exists());
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_private_file(&path, &[7; 32]).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, PRIVATE);
    }
}
