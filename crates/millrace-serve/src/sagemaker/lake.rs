//! The objects the SageMaker API names as `s3://lake/KEY`: files under the data dir's lake
//! folder (`<data-dir>/lake`, the `lake` bucket of `millrace up`'s channels). A key from a
//! client passes `millrace_common::keys::key_problem` (no `..` or `.` segment, no leading
//! `/`, no empty segment or NUL) and the file it names must resolve inside the lake folder,
//! symbolic links included, before anything is read or written. Writes are atomic, as the
//! lake's own: a `.tmp-NAME` file beside the object (which lake listings skip), fsynced and
//! renamed over it.

use std::io::Read;
use std::path::{Path, PathBuf};

use millrace_common::keys::key_problem;

/// The one bucket the endpoint reads and writes.
pub const BUCKET: &str = "lake";

/// `s3://lake/KEY`.
pub fn uri(key: &str) -> String {
    format!("s3://{BUCKET}/{key}")
}

/// The key of an `s3://lake/KEY` URI, or why it is not one this endpoint can read.
pub fn key_of(uri: &str) -> Result<&str, String> {
    let Some(rest) = uri.strip_prefix("s3://") else {
        return Err(format!(
            "{uri:?} is not an s3:// URI; the endpoint reads s3://{BUCKET}/KEY, a file under \
             the data dir's lake folder"
        ));
    };
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket != BUCKET {
        return Err(format!(
            "bucket {bucket:?}: the endpoint reads only s3://{BUCKET}/KEY, the data dir's lake \
             folder"
        ));
    }
    check(key)?;
    Ok(key)
}

/// Why `key` cannot name an object of the lake, if it cannot.
pub fn check(key: &str) -> Result<(), String> {
    match key_problem(key) {
        Some(problem) => Err(format!("key {key:?}: {problem}")),
        None => Ok(()),
    }
}

/// The file of `key`, provided it resolves inside `lake` (`path` itself must exist).
fn inside(lake: &Path, path: &Path, key: &str) -> Result<PathBuf, String> {
    let root = lake
        .canonicalize()
        .map_err(|e| format!("the lake folder {}: {e}", lake.display()))?;
    let real = path
        .canonicalize()
        .map_err(|e| format!("no object {} ({}: {e})", uri(key), path.display()))?;
    if real.starts_with(&root) {
        Ok(real)
    } else {
        Err(format!(
            "{} resolves to {}, outside the lake folder",
            uri(key),
            real.display()
        ))
    }
}

/// The bytes of object `key`, at most `limit` of them (blocking).
pub fn read(lake: &Path, key: &str, limit: u64) -> Result<Vec<u8>, String> {
    check(key)?;
    let path = inside(lake, &lake.join(key), key)?;
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is a folder, not an object", uri(key)));
    }
    if meta.len() > limit {
        return Err(format!(
            "{} is {} bytes, over the {limit}-byte limit of an asynchronous input",
            uri(key),
            meta.len()
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes)
}

/// Writes object `key` whole or not at all, durable when it returns (blocking).
pub fn write(lake: &Path, key: &str, bytes: &[u8]) -> std::io::Result<()> {
    check(key).map_err(std::io::Error::other)?;
    let path = lake.join(key);
    let dir = path.parent().unwrap_or(lake);
    std::fs::create_dir_all(dir)?;
    inside(lake, dir, key).map_err(std::io::Error::other)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("object");
    let tmp = dir.join(format!(".tmp-{name}"));
    millrace_common::durable::write_file_staged(&path, &tmp, bytes, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lake_keys_that_stay_inside_are_taken() {
        assert_eq!(key_of("s3://lake/in/a.csv"), Ok("in/a.csv"));
        for (uri, why) in [
            ("s3://other/in/a.csv", "bucket \"other\""),
            ("https://lake.s3.amazonaws.com/a", "not an s3:// URI"),
            ("s3://lake/../etc/passwd", "`..` segment"),
            ("s3://lake/a/./b", "`.` segment"),
            ("s3://lake//etc/passwd", "starts with `/`"),
            ("s3://lake/a//b", "empty segment"),
            ("s3://lake/", "empty"),
            ("s3://lake", "empty"),
        ] {
            let e = key_of(uri).unwrap_err();
            assert!(e.contains(why), "{uri}: {e}");
        }
    }

    #[test]
    fn reads_and_writes_stay_in_the_lake() {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        std::fs::create_dir_all(&lake).unwrap();
        write(&lake, "out/a/b.out", b"hello").unwrap();
        assert_eq!(read(&lake, "out/a/b.out", 100).unwrap(), b"hello");
        assert!(
            read(&lake, "out/a/b.out", 3)
                .unwrap_err()
                .contains("over the 3-byte")
        );
        assert!(
            read(&lake, "out/none", 100)
                .unwrap_err()
                .contains("no object")
        );
        assert!(read(&lake, "out/a", 100).unwrap_err().contains("folder"));
        assert!(write(&lake, "../escaped", b"x").is_err());
        assert!(!dir.path().join("escaped").exists());
        // A link inside the lake that points out of it is not followed.
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.path(), lake.join("link")).unwrap();
        let e = read(&lake, "link/secret", 100).unwrap_err();
        assert!(e.contains("outside the lake folder"), "{e}");
        assert!(write(&lake, "link/planted", b"x").is_err());
        assert!(!dir.path().join("planted").exists());
    }
}
