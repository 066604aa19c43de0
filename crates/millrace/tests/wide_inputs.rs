//! Very wide files stay within memory and time: `query` over a CSV of 20,000 columns keeps its
//! peak memory near its limit (it took 2.5 GB before batches were sized by the column count),
//! and `train` refuses a table wider than `--max-columns` at once, naming both numbers.
//!
//! The peak is the kernel's own count for that one child (`wait4`'s resource usage: its largest
//! resident set), so the other tests running in this binary do not count.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::millrace;

/// A CSV of `columns` one-digit columns and `rows` rows.
fn wide_csv(path: &Path, columns: usize, rows: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
    writeln!(f, "{}", header.join(",")).unwrap();
    for r in 0..rows {
        let row: Vec<String> = (0..columns)
            .map(|c| ((r * 7 + c) % 10).to_string())
            .collect();
        writeln!(f, "{}", row.join(",")).unwrap();
    }
    f.flush().unwrap();
}

/// Runs `cmd` to its end: its output and its largest resident set in bytes, from `wait4` on
/// that child alone.
fn run_measured(cmd: &mut std::process::Command) -> (std::process::Output, u64) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let mut stderr = Vec::new();
    err.read_to_end(&mut stderr).unwrap();
    let stdout = reader.join().unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 reaps this child (std never waits for it again: the Child is only
    // dropped) and writes the status and the struct it is given.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    drop(child);
    let output = std::process::Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout,
        stderr,
    };
    (output, usage.ru_maxrss as u64 * 1024)
}

#[test]
fn wide_files_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("wide.csv");
    wide_csv(&csv, 20_000, 50);
    let (out, peak) = run_measured(
        millrace()
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["query", "--memory-limit-mib", "512", "--table"])
            .arg(format!("w={}:csv", csv.display()))
            .arg("SELECT count(*) AS n FROM w"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("50"));
    assert!(peak < 640 << 20, "query peaked at {} MiB", peak >> 20);

    let started = Instant::now();
    let out = millrace()
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["train", "--target", "c0", "--name", "wide", "--data"])
        .arg(&csv)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("20000 columns") && err.contains("at most 2000"),
        "{err}"
    );
    assert!(err.contains("--max-columns"), "{err}");
    // Refused up front, not after a long search (no timing target: a bound far above it).
    assert!(started.elapsed() < Duration::from_secs(120));
    assert!(!dir.path().join("data/lake/models/wide").exists());
}
