//! The audit log: one JSON line per denied request and per administrative action (who, what,
//! on which resource, with what result), appended by a thread of its own so no request waits
//! on the disk, and rotated by size (`audit.log` → `audit.log.1` … `audit.log.N`).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// What happened to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Allowed,
    Denied,
    /// `mode = "log"`: enforcement would have denied it; it was let through.
    WouldDeny,
}

/// One line of the audit log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// RFC 3339, UTC.
    pub time: String,
    pub outcome: Outcome,
    /// The principal's ARN, or `anonymous` for a request that did not authenticate.
    pub principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    pub action: String,
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    /// Why it was denied (the error type and message); absent when allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where the audit log goes and when it rotates.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub dir: PathBuf,
    /// Rotate when the current file passes this size.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: usize,
}

impl AuditConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: 16 * 1024 * 1024,
            keep: 5,
        }
    }
}

/// The writer's handle: entries sent here are written in order by its thread; dropping every
/// handle flushes and ends the thread.
#[derive(Debug, Clone)]
pub struct Audit {
    tx: mpsc::Sender<Entry>,
}

impl Audit {
    /// Opens (creating) `config.dir/audit.log` and starts the writer.
    pub fn open(config: AuditConfig) -> std::io::Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        let writer = Writer::open(config)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("millrace-audit".into())
            .spawn(move || writer.run(rx))?;
        Ok(Self { tx })
    }

    pub fn record(&self, entry: Entry) {
        if self.tx.send(entry).is_err() {
            tracing::error!("the audit log writer has stopped; an entry was lost");
        }
    }
}

/// The path of the current audit log in `dir`.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("audit.log")
}

struct Writer {
    config: AuditConfig,
    file: BufWriter<File>,
    size: u64,
}

impl Writer {
    fn open(config: AuditConfig) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path(&config.dir))?;
        let size = file.metadata()?.len();
        Ok(Self {
            config,
            file: BufWriter::new(file),
            size,
        })
    }

    /// Writes entries as they come, flushing whenever the queue is empty.
    fn run(mut self, rx: mpsc::Receiver<Entry>) {
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(entry) = next {
                if let Err(e) = self.write(&entry) {
                    tracing::error!(error = %e, "writing the audit log");
                }
                next = rx.try_recv().ok();
            }
            if let Err(e) = self.file.flush() {
                tracing::error!(error = %e, "flushing the audit log");
            }
        }
        let _ = self.file.flush();
    }

    fn write(&mut self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.config.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&line)?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// `audit.log.{keep-1}` → `.{keep}` … `audit.log` → `audit.log.1`, then a fresh file.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        let base = log_path(&self.config.dir);
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", base.display()));
        for n in (1..self.config.keep).rev() {
            if numbered(n).exists() {
                std::fs::rename(numbered(n), numbered(n + 1))?;
            }
        }
        if self.config.keep > 0 {
            std::fs::rename(&base, numbered(1))?;
        } else {
            std::fs::remove_file(&base)?;
        }
        self.file = BufWriter::new(OpenOptions::new().create(true).append(true).open(&base)?);
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> Entry {
        Entry {
            time: "2026-12-06T00:00:00Z".into(),
            outcome: Outcome::Denied,
            principal: format!("arn:aws:iam::0:user/u{i}"),
            access_key_id: None,
            action: "kinesis:DeleteStream".into(),
            resource: "arn:aws:kinesis:us-east-1:0:stream/s".into(),
            source_ip: Some("127.0.0.1".into()),
            reason: Some("AccessDeniedException".into()),
        }
    }

    fn wait_for(path: &Path, lines: usize) -> String {
        for _ in 0..200 {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.lines().count() >= lines {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{} never had {lines} lines", path.display());
    }

    #[test]
    fn entries_are_json_lines_and_the_log_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig {
            max_bytes: 1000,
            keep: 2,
            ..AuditConfig::new(dir.path())
        };
        let audit = Audit::open(config).unwrap();
        audit.record(entry(0));
        let text = wait_for(&log_path(dir.path()), 1);
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(v["outcome"], "denied");
        assert_eq!(v["action"], "kinesis:DeleteStream");
        for i in 1..40 {
            audit.record(entry(i));
        }
        drop(audit);
        let rotated = PathBuf::from(format!("{}.1", log_path(dir.path()).display()));
        for _ in 0..200 {
            if PathBuf::from(format!("{}.2", log_path(dir.path()).display())).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(rotated.exists());
        assert!(!PathBuf::from(format!("{}.3", log_path(dir.path()).display())).exists());
        assert!(std::fs::metadata(&rotated).unwrap().len() <= 1000);
    }
}
