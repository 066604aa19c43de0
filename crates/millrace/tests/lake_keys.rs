//! Partition values and names never move data out of its folder, and a delivery that cannot
//! write shows as stalled instead of running: `millrace up` with a dynamically partitioned
//! delivery receives values such as `..`, `.`, `a/b`, `/etc` and NUL. Every object lands inside
//! the delivery's prefix, distinct values get distinct folders, `millrace query` reads the
//! original values back, a value too long for a folder goes to the error prefix while the
//! records after it are delivered, and a delivery blocked by the file system shows `stalled`
//! with its error and a real lag until the obstacle is gone.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use common::{Server, ServerLogs, millrace};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(60);

const CONFIG: &str = r#"
[[stream]]
name = "s1"
shards = 1

[[delivery]]
name = "keys"
stream = "s1"
lake = "lake"
buffer_interval_secs = 0
prefix = "raw/s1/pa=!{partitionKeyFromQuery:pa}/pb=!{partitionKeyFromQuery:pb}/"
partitioning = { pa = ".a", pb = ".b" }

[[delivery]]
name = "blocked"
stream = "s1"
lake = "lake"
buffer_interval_secs = 0
prefix = "blocked/s1/"
"#;

/// The (a, b) partition values sent, in order; record `id` is the index.
fn values() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = ["..", ".", "a/b", "a_b", "a%2Fb", "a\u{0}b", "/etc", "_x"]
        .iter()
        .map(|a| (a.to_string(), "x".to_owned()))
        .collect();
    v.push(("..".into(), "victim".into()));
    v.push(("../..".into(), "../../etc".into()));
    v
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

async fn status(admin: &str) -> Value {
    let body = reqwest::get(format!("{admin}/status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

fn delivery<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["deliveries"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == name))
        .unwrap_or(&Value::Null)
}

/// Waits until `check` holds for the named delivery's status.
async fn wait_for(admin: &str, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let s = status(admin).await;
        let d = delivery(&s, name).clone();
        if check(&d) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "delivery {name}: never {what}; last {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_values_stay_inside_the_prefix_and_stalls_show() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("millrace.toml");
    std::fs::write(&config, CONFIG).unwrap();
    // A file where the blocked delivery must make a folder: it cannot write until removed.
    std::fs::create_dir_all(data.join("lake")).unwrap();
    std::fs::write(data.join("lake/blocked"), b"not a folder").unwrap();
    let mut logs = ServerLogs::new(dir.path().join("logs"));
    let server = Server::start(
        &data,
        [
            "-c".as_ref(),
            config.as_os_str(),
            "--kinesis-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--admin-addr".as_ref(),
            "127.0.0.1:0".as_ref(),
        ],
        None,
        &["kinesis", "admin"],
        PATIENCE,
        logs.next(),
    );
    let admin = server.url("admin").to_owned();
    let client = common::kinesis::client(server.url("kinesis")).await;
    common::kinesis::wait_active(&client, "s1", 1, PATIENCE).await;

    let sent = values();
    let long = "v".repeat(300);
    let mut records: Vec<Value> = sent
        .iter()
        .enumerate()
        .map(|(id, (a, b))| json!({"id": id, "a": a, "b": b}))
        .collect();
    records.push(json!({"id": sent.len(), "a": long, "b": "x"}));
    records.push(json!({"id": sent.len() + 1, "a": "after", "b": "x"}));
    for r in &records {
        client
            .put_record()
            .stream_name("s1")
            .partition_key("k")
            .data(Blob::new(r.to_string()))
            .send()
            .await
            .unwrap();
    }
    let total = records.len() as u64;
    let keys = wait_for(&admin, "keys", "delivered everything", |d| {
        d["records"].as_u64().unwrap_or(0) + d["error_records"].as_u64().unwrap_or(0) >= total
    })
    .await;
    assert_eq!(keys["error_records"], 1, "{keys}");
    assert_eq!(keys["status"], "running", "{keys}");

    // Every object inside the delivery's prefix (or its error prefix), one folder per value.
    let lake = data.join("lake").canonicalize().unwrap();
    let raw = lake.join("raw/s1");
    let mut folders = BTreeSet::new();
    for f in files_under(&lake) {
        let f = f.canonicalize().unwrap();
        assert!(f.starts_with(&lake), "{} left the lake", f.display());
        let rel = f.strip_prefix(&lake).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        assert!(
            ["raw", "errors", "blocked"].contains(&top.as_str()),
            "{}",
            rel.display()
        );
        if f.starts_with(&raw) {
            folders.insert(f.parent().unwrap().to_path_buf());
        }
    }
    assert!(!lake.join("raw/victim").exists() && !lake.join("raw/s1/victim").exists());
    assert_eq!(folders.len(), sent.len() + 1, "{folders:#?}");

    // The query side reads the original values back from the folders.
    let out = millrace()
        .arg("--data-dir")
        .arg(&data)
        .args(["query", "--format", "json", "--table"])
        .arg(format!("t={}:json", raw.display()))
        .arg("SELECT id, pa, pb FROM t ORDER BY id")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Value> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut want: Vec<(String, String)> = sent.clone();
    want.push(("after".into(), "x".into()));
    assert_eq!(rows.len(), want.len(), "{text}");
    for (row, (a, b)) in rows.iter().zip(&want) {
        assert_eq!(row["pa"].as_str(), Some(a.as_str()), "{row}");
        assert_eq!(row["pb"].as_str(), Some(b.as_str()), "{row}");
    }

    // The blocked delivery is stalled, with its error and a real lag, not "running, 0 s".
    let blocked = wait_for(&admin, "blocked", "stalled", |d| d["status"] == "stalled").await;
    assert!(
        blocked["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{blocked}"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let blocked = delivery(&status(&admin).await, "blocked").clone();
    assert!(
        blocked["freshness_ms"].as_i64().unwrap_or(0) >= 1000,
        "{blocked}"
    );
    let printed = millrace()
        .args(["status", "--admin-url", &admin])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&printed.stdout);
    let line = printed
        .lines()
        .find(|l| l.contains("blocked"))
        .unwrap_or("");
    assert!(
        line.contains("stalled") && line.contains("error"),
        "{printed}"
    );

    // Once the obstacle is gone it delivers everything and runs again; nothing was skipped.
    std::fs::remove_file(data.join("lake/blocked")).unwrap();
    let blocked = wait_for(&admin, "blocked", "recovered", |d| {
        d["status"] == "running" && d["records"].as_u64() == Some(total)
    })
    .await;
    assert_eq!(blocked["freshness_ms"], 0, "{blocked}");
}
