//! Every file the binary replaces is durable: after each rename into the data dir, the folder
//! that received the name is fsynced, or a crash can bring back the old file (or none). Checked
//! on the real binary's system calls with strace (Debian package `strace`, installed by
//! `scripts/test.sh`), for `train` (model files) and `up` (the iterator key).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::millrace;

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// `strace -f -y` of renames and fsyncs, written to `log`, in front of `millrace ARGS`.
fn traced(log: &Path) -> Command {
    let mut c = Command::new("strace");
    c.args(["-f", "-y", "-qq", "-e", "signal=none"])
        .args([
            "-e",
            "trace=rename,renameat,renameat2,fsync,fdatasync",
            "-o",
        ])
        .arg(log)
        .arg(common::BIN);
    c
}

/// The renames into `root` that no later fsync of the destination's folder followed.
fn renames_without_folder_sync(log: &Path, root: &Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let root = root.display().to_string();
    let mut checked = 0;
    let mut missing = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.contains("rename") || !line.trim_end().ends_with("= 0") {
            continue;
        }
        let Some(dest) = line.split('"').rev().nth(1) else {
            continue;
        };
        if !dest.starts_with(&root) {
            continue;
        }
        checked += 1;
        let folder = Path::new(dest).parent().unwrap().display().to_string();
        let synced = lines[i + 1..]
            .iter()
            .any(|l| l.contains("fsync(") && l.contains(&format!("<{folder}>")));
        if !synced {
            missing.push(dest.to_owned());
        }
    }
    (checked, missing)
}

fn strace_present() {
    let ok = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "strace is missing: install the Debian package strace (scripts/test.sh does)"
    );
}

#[test]
fn train_fsyncs_the_folder_after_every_rename() {
    strace_present();
    let dir = scratch("durable-train");
    let csv = dir.join("churn.csv");
    let st = millrace()
        .args(["generate", "churn", "--rows", "400", "--seed", "3", "--out"])
        .arg(&csv)
        .status()
        .unwrap();
    assert!(st.success());
    let data = dir.join("data");
    let log = dir.join("strace.log");
    let out = traced(&log)
        .arg("--data-dir")
        .arg(&data)
        .args([
            "train", "--target", "Churn", "--name", "churn", "--folds", "2",
        ])
        .arg("--data")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.join("lake/models/churn/v1/model.json").is_file());
    let (checked, missing) = renames_without_folder_sync(&log, &data);
    assert!(
        checked >= 3,
        "expected the model's files among the renames, saw {checked}"
    );
    assert!(missing.is_empty(), "no folder fsync after: {missing:?}");
}

#[test]
fn up_fsyncs_the_folder_after_writing_its_iterator_key() {
    strace_present();
    let dir = scratch("durable-up");
    let data = dir.join("data");
    let log = dir.join("strace.log");
    let mut child = traced(&log)
        .arg("--data-dir")
        .arg(&data)
        .args(["up", "--kinesis-addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let key = data.join("state/iterator.key");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !key.is_file() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the write finish its folder sync, then stop the server (strace exits with it).
    std::thread::sleep(Duration::from_millis(500));
    let pid = child.id().to_string();
    let _ = Command::new("pkill").args(["-TERM", "-P", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(key.is_file(), "up never wrote {}", key.display());
    let (checked, missing) = renames_without_folder_sync(&log, &data);
    assert!(checked >= 1, "expected the iterator key's rename");
    assert!(missing.is_empty(), "no folder fsync after: {missing:?}");
}
