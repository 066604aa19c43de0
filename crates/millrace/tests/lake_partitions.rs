//! Partition values and names are never path steps, and a delivery that cannot make progress
//! says so (issue 20, items 1 and 2), end to end through the real binary.
//!
//! `millrace up` delivers four streams: `hive` (Hive layout, one partition key), `two` (a
//! custom prefix with two partition keys), `victim` (a plain delivery whose prefix the others
//! must not reach) and `stuck` (its prefix folder is a regular file, so every object write
//! fails). Records carry partition values such as `..`, `.`, `a/b`, `a<NUL>b` and `/etc`, in
//! bare `!{partitionKeyFromQuery:…}/` segments (Firehose layout), where a value used to be a
//! path step: `{"a":"..","b":"victim"}` landed in `raw/victim/`. `lake_keys.rs` covers the
//! `key=value` form and recovery from a stall; this file adds another stream's prefix, the Hive
//! layout read back by `query`, and delivery after an overlong value across a restart.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, ServerLogs, millrace};
use serde_json::{Value, json};

/// Upper bound for anything that waits on the server (start, delivery, status).
const PATIENCE: Duration = Duration::from_secs(30);

const CONFIG: &str = r#"
[[stream]]
name = "hive"
shards = 1

[[stream]]
name = "two"
shards = 1

[[stream]]
name = "victim"
shards = 1

[[stream]]
name = "stuck"
shards = 1

[[delivery]]
name = "hive-lake"
stream = "hive"
buffer_interval_secs = 0
layout = "hive"
partitioning = { v = ".val" }

[[delivery]]
name = "two-lake"
stream = "two"
buffer_interval_secs = 0
prefix = "raw/two/!{partitionKeyFromQuery:a}/!{partitionKeyFromQuery:b}/"
partitioning = { a = ".a", b = ".b" }

[[delivery]]
name = "victim-lake"
stream = "victim"
buffer_interval_secs = 0

[[delivery]]
name = "stuck-lake"
stream = "stuck"
buffer_interval_secs = 0
"#;

/// The partition values that used to be path steps or to share a folder.
const NASTY: [&str; 7] = ["..", ".", "a/b", "a_b", "a%2Fb", "a\u{0}b", "/etc"];

fn start(data: &Path, config: &Path, logs: &mut ServerLogs) -> Server {
    let args = [
        "-c",
        config.to_str().unwrap(),
        "--kinesis-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
    ];
    Server::start(
        data,
        args,
        None,
        &["kinesis", "admin"],
        PATIENCE,
        logs.next(),
    )
}

/// Sends `records` (JSON values, one per line) to `stream` with `millrace produce`.
fn produce(server: &Server, dir: &Path, stream: &str, records: &[Value]) {
    let file = dir.join(format!("{stream}-{}.ndjson", records.len()));
    let lines: Vec<String> = records.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = millrace()
        .args(["produce", "--endpoint-url", server.url("kinesis")])
        .args(["--stream", stream, "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "produce to {stream}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every regular file under `root`, as paths relative to it.
fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                todo.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

/// Polls `check` until it holds, at most [`PATIENCE`].
fn wait_for(what: &str, server: &Server, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "waited {PATIENCE:?} for {what}; server log:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Records of `lake`'s files under `prefix` (NDJSON objects; `.tmp-` staging files skipped).
fn records_under(lake: &Path, prefix: &str) -> Vec<Value> {
    files(lake)
        .iter()
        .filter(|p| p.starts_with(prefix))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .flat_map(|p| {
            let text = std::fs::read_to_string(lake.join(p)).unwrap();
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `millrace query` as CSV over `table` = `path`.
fn query(path: &Path, sql: &str) -> String {
    let out = millrace()
        .args(["query", "--format", "csv", "--table"])
        .arg(format!("t={}", path.display()))
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "query {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `millrace status` (table, or the admin's JSON with `--json`).
fn status(server: &Server, json: bool) -> String {
    let mut cmd: Command = millrace();
    cmd.args(["status", "--admin-url", server.url("admin")]);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn delivery_json(server: &Server, name: &str) -> Value {
    let v: Value = serde_json::from_str(&status(server, true)).unwrap();
    v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no delivery {name} in {v}"))
}

#[test]
fn partition_values_stay_inside_the_prefix_distinct_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let lake = data.join("lake");
    let config = dir.path().join("millrace.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut logs = ServerLogs::new(dir.path().join("logs"));
    let server = start(&data, &config, &mut logs);

    produce(&server, dir.path(), "victim", &[json!({"id": "legit"})]);
    let hive: Vec<Value> = NASTY
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"id": format!("h{i}"), "val": v}))
        .collect();
    produce(&server, dir.path(), "hive", &hive);
    let two = [
        json!({"id": "t0", "a": "..", "b": "victim"}),
        json!({"id": "t1", "a": "..", "b": ".."}),
        json!({"id": "t2", "a": "/etc", "b": "x"}),
        json!({"id": "t3", "a": ".", "b": "victim"}),
    ];
    produce(&server, dir.path(), "two", &two);
    wait_for("every record delivered", &server, || {
        [
            ("hive-lake", hive.len()),
            ("two-lake", two.len()),
            ("victim-lake", 1),
        ]
        .iter()
        .all(|(name, n)| delivery_json(&server, name)["records"] == *n)
    });

    // Nothing outside the lake, nothing outside each delivery's own prefix.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            ["data", "logs", "millrace.toml"].contains(&name.as_str()) || name.ends_with(".ndjson"),
            "{name} was written next to the data dir"
        );
    }
    for e in std::fs::read_dir(&data).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            ["streams", "lake", "state", "firehose"].contains(&name.as_str()),
            "{name} was written in the data dir, outside the lake"
        );
    }
    for f in files(&lake) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let owner = ["hive", "two", "victim", "stuck"]
            .iter()
            .find(|s| f.starts_with(format!("raw/{s}")))
            .unwrap_or_else(|| panic!("object {} outside every delivery's prefix", f.display()));
        assert!(
            name.starts_with(&format!("{owner}-lake-")),
            "object {} of another delivery under raw/{owner}/",
            f.display()
        );
    }
    assert_eq!(
        records_under(&lake, "raw/victim"),
        [json!({"id": "legit"})],
        "only the victim's own record is under raw/victim/"
    );
    assert_eq!(
        query(&lake.join("raw/victim"), "SELECT count(*) AS n FROM t"),
        "n\n1\n"
    );

    // Each value its own folder: seven values, seven `v=` folders, each one path segment.
    let folders: BTreeSet<String> = files(&lake.join("raw/hive"))
        .iter()
        .map(|p| p.iter().next().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders.len(), NASTY.len(), "{folders:?}");
    assert!(
        folders.contains("v=%2E%2E") && folders.contains("v=%2E"),
        "{folders:?}"
    );
    let two_folders: BTreeSet<String> = files(&lake.join("raw/two"))
        .iter()
        .map(|p| p.parent().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(two_folders.len(), two.len(), "{two_folders:?}");

    // The query side decodes the folders back to the original values.
    assert_eq!(
        query(
            &lake.join("raw/hive"),
            "SELECT count(*) AS n FROM t WHERE v = val"
        ),
        format!("n\n{}\n", NASTY.len()),
        "partition column v differs from the record's val: {}",
        query(&lake.join("raw/hive"), "SELECT v, val FROM t ORDER BY id")
    );
}

#[test]
fn an_overlong_value_goes_to_the_error_prefix_and_delivery_goes_on_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let lake = data.join("lake");
    let config = dir.path().join("millrace.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut logs = ServerLogs::new(dir.path().join("logs"));
    let mut server = start(&data, &config, &mut logs);

    let long = "x".repeat(300);
    produce(
        &server,
        dir.path(),
        "hive",
        &[json!({"id": "long", "val": long})],
    );
    produce(
        &server,
        dir.path(),
        "hive",
        &[
            json!({"id": "g1", "val": "fine"}),
            json!({"id": "g2", "val": "ok"}),
        ],
    );
    wait_for("the good records after the long one", &server, || {
        records_under(&lake, "raw/hive").len() == 2
    });
    let errors = records_under(&lake, "errors/hive-lake");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let reason = errors[0].to_string();
    assert!(
        reason.contains("partition") && reason.contains("200"),
        "the error record names its reason: {reason}"
    );

    server.kill9();
    let server = start(&data, &config, &mut logs);
    produce(
        &server,
        dir.path(),
        "hive",
        &[json!({"id": "g3", "val": "after restart"})],
    );
    wait_for("a good record after the restart", &server, || {
        records_under(&lake, "raw/hive").len() == 3
    });
    let d = delivery_json(&server, "hive-lake");
    assert_eq!(d["status"], "running", "{d}");
}

#[test]
fn a_delivery_that_cannot_write_shows_as_stalled_with_its_error_and_lag() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("millrace.toml");
    std::fs::write(&config, CONFIG).unwrap();
    // A regular file where the delivery must make its prefix folder: every write fails, and
    // not in a way a retry of the same object gets past (root ignores permissions; not this).
    std::fs::create_dir_all(data.join("lake/raw")).unwrap();
    std::fs::write(data.join("lake/raw/stuck"), "in the way").unwrap();
    let mut logs = ServerLogs::new(dir.path().join("logs"));
    let server = start(&data, &config, &mut logs);
    produce(&server, dir.path(), "stuck", &[json!({"id": "s1"})]);

    wait_for("the delivery to show as stalled", &server, || {
        delivery_json(&server, "stuck-lake")["status"] == "stalled"
    });
    std::thread::sleep(Duration::from_millis(1200));
    let d = delivery_json(&server, "stuck-lake");
    assert_eq!(d["status"], "stalled", "{d}");
    assert!(
        d["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("raw/stuck")),
        "the status names the error: {d}"
    );
    assert!(
        d["freshness_ms"].as_i64().unwrap() >= 1000,
        "the lag is the age of the undelivered record: {d}"
    );
    let table = status(&server, false);
    let line = table
        .lines()
        .find(|l| l.contains("stuck-lake"))
        .unwrap_or_else(|| panic!("no stuck-lake line in\n{table}"));
    assert!(
        line.contains("stalled")
            && line.contains("raw/stuck")
            && !line.contains("lag (oldest record not in the lake) 0.0 s"),
        "millrace status shows stalled, the error and the lag: {line}"
    );
    let out = millrace()
        .args(["deliver", "status", "--admin-url", server.url("admin")])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with("stuck-lake") && l.contains("stalled"))
            && printed.contains("last error:"),
        "millrace deliver status shows the stall:\n{printed}"
    );
    // The other deliveries are not stalled.
    let hive = delivery_json(&server, "hive-lake");
    assert_eq!(hive["status"], "running", "{hive}");
}
