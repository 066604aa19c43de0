//! Helpers shared by the integration tests of the `millrace` binary: how to run it, a
//! `millrace up` that is started, waited for and killed, the shared Telco data, and (in
//! `kinesis`) an SDK client and the stream reads the crash tests check the log with.
//!
//! Cargo builds every file in `tests/` as its own crate, and each one that says `mod common;`
//! compiles this module again, using only part of it: hence the allowance below, so that the
//! helpers one test binary does not call are not reported as dead code in it.
#![allow(dead_code)]

pub mod kinesis;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_millrace");

/// The Telco customer churn CSV from the shared data folder.
pub const TELCO_CSV: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/telco-customer-churn.csv"
);

/// A command for the binary under test.
pub fn millrace() -> Command {
    Command::new(BIN)
}

/// A CSV file's header and rows, as strings.
pub fn read_csv(path: impl AsRef<Path>) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// Writes `header` and `rows` as a CSV file.
pub fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
}

/// `millrace --data-dir DATA train --target Churn --name churn --data CSV EXTRA…`, which must
/// succeed: the churn model the endpoint and scoring tests serve.
pub fn train_churn(data: &Path, csv: &Path, extra: &[&str]) {
    let out = millrace()
        .arg("--data-dir")
        .arg(data)
        .args(["train", "--target", "Churn", "--name", "churn", "--data"])
        .arg(csv)
        .args(extra)
        .output()
        .unwrap();
    assert_ran(&out);
}

/// Panics with the command's stderr unless it exited 0.
pub fn assert_ran(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Trains model `m` in DATA on 80 rows `id,x,z,label` where the label says whether x > z
/// (the CSV is written in `scratch`): a model small enough for tests of scoring plumbing.
pub fn train_tiny(data: &Path, scratch: &Path) {
    let csv = scratch.join("tiny-train.csv");
    let mut rows = String::from("id,x,z,label\n");
    for i in 0..80 {
        let (x, z) = ((i * 37 % 100) as f64 / 100.0, (i * 61 % 100) as f64 / 100.0);
        let label = if x > z { "yes" } else { "no" };
        rows.push_str(&format!("c{i},{x},{z},{label}\n"));
    }
    std::fs::write(&csv, rows).unwrap();
    let out = millrace()
        .arg("--data-dir")
        .arg(data)
        .args([
            "train", "--target", "label", "--name", "m", "--folds", "2", "--data",
        ])
        .arg(&csv)
        .output()
        .unwrap();
    assert_ran(&out);
}

/// A child process that is killed and reaped when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `millrace --data-dir DATA endpoint ARGS` (stderr inherited) and waits for its first
/// line; returns it and the URL that line names.
pub fn start_endpoint(data: &Path, args: &[&str]) -> (Running, String) {
    let mut child = millrace()
        .arg("--data-dir")
        .arg(data)
        .arg("endpoint")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let running = Running(child);
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (running, url)
}

/// Numbers the log files of a server's successive incarnations: `server-1.log`, ….
pub struct ServerLogs {
    dir: PathBuf,
    incarnation: usize,
}

impl ServerLogs {
    /// Logs in `dir`, which is created.
    pub fn new(dir: PathBuf) -> ServerLogs {
        std::fs::create_dir_all(&dir).unwrap();
        ServerLogs {
            dir,
            incarnation: 0,
        }
    }

    /// The log file of the next incarnation.
    pub fn next(&mut self) -> PathBuf {
        self.incarnation += 1;
        self.dir.join(format!("server-{}.log", self.incarnation))
    }
}

/// A running `millrace up`. Dropping it kills the process (SIGKILL) and reaps it, so a failed
/// assertion never leaves a server behind; when dropped during a panic it also prints the tail
/// of the server's log.
pub struct Server {
    child: Child,
    /// What the ready lines named: `kinesis` -> `http://127.0.0.1:PORT`, ….
    urls: BTreeMap<String, String>,
    log: PathBuf,
}

impl Server {
    /// Starts `millrace --data-dir DATA_DIR up ARGS` with its stderr in `log` and waits (no
    /// fixed sleeps, at most `patience`) until its stdout has named a URL for each of `ready`
    /// (`kinesis` for `kinesis=http://…`, `admin`, …); each must be on 127.0.0.1.
    /// `log_filter` is `MILLRACE_LOG`; without one the server's default filter applies.
    pub fn start(
        data_dir: &Path,
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
        log_filter: Option<&str>,
        ready: &[&str],
        patience: Duration,
        log: PathBuf,
    ) -> Server {
        Self::start_wrapped(&[], data_dir, args, log_filter, ready, patience, log)
    }

    /// As [`Server::start`], with the binary run by `wrapper`, a program that execs it (the
    /// same process), e.g. `["prlimit", "--nofile=1024:1024"]`; none when empty.
    pub fn start_wrapped(
        wrapper: &[&str],
        data_dir: &Path,
        args: impl IntoIterator<Item = impl AsRef<OsStr>>,
        log_filter: Option<&str>,
        ready: &[&str],
        patience: Duration,
        log: PathBuf,
    ) -> Server {
        let stderr = File::create(&log).expect("creating the server log file");
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut c = Command::new(program);
                c.args(wrapper_args).arg(BIN);
                c
            }
            None => millrace(),
        };
        command.arg("--data-dir").arg(data_dir).arg("up").args(args);
        match log_filter {
            Some(filter) => command.env("MILLRACE_LOG", filter),
            None => command.env_remove("MILLRACE_LOG"),
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawning millrace up");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = Server {
            child,
            urls: BTreeMap::new(),
            log,
        };
        let wanted: Vec<String> = ready.iter().map(|name| format!("{name}=")).collect();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut urls = BTreeMap::new();
            while urls.len() < wanted.len() {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) => {
                        let _ = tx.send(Err(None));
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(Some(e)));
                        return;
                    }
                }
                for word in line.split_whitespace() {
                    for w in &wanted {
                        if let Some(url) = word.strip_prefix(w.as_str()) {
                            urls.insert(w.trim_end_matches('=').to_owned(), url.to_owned());
                        }
                    }
                }
            }
            let _ = tx.send(Ok(urls));
            // Keep draining so the server never blocks on (or dies of) a full or closed pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        server.urls = match rx.recv_timeout(patience) {
            Ok(Ok(urls)) => urls,
            Ok(Err(None)) => panic!(
                "the server closed stdout before its ready lines; log:\n{}",
                server.log_tail()
            ),
            Ok(Err(Some(e))) => panic!("reading the server's ready lines: {e}"),
            Err(e) => panic!("no ready lines from the server within {patience:?}: {e}"),
        };
        for url in server.urls.values() {
            assert!(url.starts_with("http://127.0.0.1:"), "ready URL {url:?}");
        }
        server
    }

    /// The URL the ready lines named for `name` (one of `ready` at the start).
    pub fn url(&self, name: &str) -> &str {
        self.urls
            .get(name)
            .unwrap_or_else(|| panic!("the server was not started waiting for {name}="))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap, so the next incarnation never overlaps with this one.
    pub fn kill9(&mut self) {
        self.child.kill().expect("sending SIGKILL to the server");
        let status = self.child.wait().expect("reaping the killed server");
        assert!(!status.success(), "the server exited cleanly: {status}");
    }

    /// How many lines of this incarnation's log contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The last 8 KiB of the log.
    pub fn log_tail(&self) -> String {
        let Ok(mut f) = File::open(&self.log) else {
            return String::new();
        };
        let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(8192)));
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- tail of server log {} ---\n{}",
                self.log.display(),
                self.log_tail()
            );
        }
    }
}
