//! Kafka topics as streams, end to end through the real binary: `produce`, `deliver` and
//! `score` given `kafka://BROKERS/TOPIC` names, against librdkafka's mock cluster (a
//! Kafka-protocol broker hosted by this test process), or with `MILLRACE_TEST_KAFKA=HOST:PORT`
//! against that broker (`scripts/kafka-broker-tests.sh` starts tansu, a Kafka broker from
//! crates.io, and runs them so; topics are then made through CreateTopics). Delivery and scoring are killed with -9
//! while they work and started again: every record sent lands in the lake exactly once, and
//! every input gets exactly one prediction. Two deliveries of one name (one consumer group)
//! split the partitions, and when one is killed the other takes its partitions over from the
//! checkpoints in the group. Each restart after a kill waits out the group's session timeout
//! (10 s), so these tests take about a minute each.

use crate::common::{self, Running, Server, ServerLogs, train_tiny};

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use millrace_io::sink::{self, Retry};
use millrace_io::{KafkaSink, KafkaSource, KafkaUrl, RecordSource, SinkRecord};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

const PATIENCE: Duration = Duration::from_secs(60);

/// The broker a test runs against: librdkafka's mock cluster in this process, or the real
/// one `MILLRACE_TEST_KAFKA` names (topic names then get a suffix of their own per run).
enum Cluster {
    Mock(MockCluster<'static, DefaultProducerContext>),
    Real { brokers: String, suffix: String },
}

impl Cluster {
    fn start() -> Self {
        match std::env::var("MILLRACE_TEST_KAFKA") {
            Ok(brokers) => Cluster::Real {
                brokers,
                suffix: format!(
                    "-{}-{}",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_nanos()
                ),
            },
            Err(_) => Cluster::Mock(MockCluster::new(1).unwrap()),
        }
    }

    /// Makes topic `topic` with `partitions` partitions.
    async fn create_topic(&self, topic: &str, partitions: i32) {
        match self {
            Cluster::Mock(mock) => mock.create_topic(topic, partitions, 1).unwrap(),
            Cluster::Real { .. } => {
                let created =
                    millrace_io::kafka::ensure(&url(self, topic), Some(partitions as u32))
                        .await
                        .unwrap();
                assert!(created, "{topic} existed");
            }
        }
    }
}

fn stream(cluster: &Cluster, topic: &str) -> String {
    match cluster {
        Cluster::Mock(mock) => format!("kafka://{}/{topic}", mock.bootstrap_servers()),
        Cluster::Real { brokers, suffix } => format!("kafka://{brokers}/{topic}{suffix}"),
    }
}

fn url(cluster: &Cluster, topic: &str) -> KafkaUrl {
    KafkaUrl::parse(&stream(cluster, topic)).unwrap().unwrap()
}

/// Puts records `ids` (JSON with an `id`, `x` and `z`), keyed over 7 keys.
async fn put(sink: &KafkaSink, ids: std::ops::Range<usize>) {
    let records: Vec<SinkRecord> = ids
        .map(|i| {
            let x = (i * 37 % 100) as f64 / 100.0;
            SinkRecord::new(
                format!("k{}", i % 7),
                format!(r#"{{"id":"r{i}","x":{x},"z":0.5}}"#),
            )
        })
        .collect();
    sink::put_all(sink, &records, Retry::default())
        .await
        .unwrap();
}

/// Every record of every partition of a topic, oldest first per partition.
async fn read_topic(source: &KafkaSource) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for shard in source.shards().await.unwrap() {
        let mut after: Option<String> = None;
        loop {
            let batch = source
                .read(&shard, after.as_deref(), Duration::from_millis(200))
                .await
                .unwrap();
            for r in &batch.records {
                out.push(serde_json::from_slice(&r.data).unwrap());
            }
            if let Some(last) = batch.records.last() {
                after = Some(last.sequence.clone());
            }
            if batch.caught_up {
                break;
            }
        }
    }
    out
}

fn spawn(data: &Path, args: &[&str]) -> Running {
    Running(
        common::millrace()
            .arg("--data-dir")
            .arg(data)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Like [`spawn`], with the log (info) in `log`.
fn spawn_logged(data: &Path, args: &[&str], log: &Path) -> Running {
    Running(
        common::millrace()
            .env("MILLRACE_LOG", "info")
            .arg("--data-dir")
            .arg(data)
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// The partitions a member's log says the group gave it, less those it handed back.
fn assigned(log: &Path) -> Vec<i32> {
    let mut owned = std::collections::BTreeSet::new();
    for line in strip_ansi(&std::fs::read_to_string(log).unwrap_or_default()).lines() {
        let Some(list) = line
            .split("partitions=[")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
        else {
            continue;
        };
        let ps = list.split(',').filter_map(|p| p.trim().parse::<i32>().ok());
        if line.contains("assigned by the group") {
            owned.extend(ps);
        } else if line.contains("handed back to the group") {
            for p in ps {
                owned.remove(&p);
            }
        }
    }
    owned.into_iter().collect()
}

/// The text without terminal colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A cluster with `topics` (name, partitions), and a data dir holding model `m` (the tiny one).
async fn scoring_setup(topics: &[(&str, i32)]) -> (Cluster, tempfile::TempDir, std::path::PathBuf) {
    let cluster = Cluster::start();
    for (topic, partitions) in topics {
        cluster.create_topic(topic, *partitions).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    train_tiny(&data, dir.path());
    (cluster, dir, data)
}

fn run(data: &Path, args: &[&str]) {
    let out = common::millrace()
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    common::assert_ran(&out);
}

fn kill9(mut child: Running) {
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "exited by itself: {status}");
}

/// The lake's objects (relative paths) and the ids of the records they hold.
fn lake_ids(lake: &Path) -> (Vec<String>, Vec<String>) {
    let (mut objects, mut ids) = (Vec::new(), Vec::new());
    let mut stack = vec![lake.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            objects.push(path.strip_prefix(lake).unwrap().display().to_string());
            for line in std::fs::read_to_string(&path).unwrap_or_default().lines() {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                    ids.push(v["id"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
    }
    (objects, ids)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_is_delivered_into_the_lake_exactly_once_across_kill_9() {
    let cluster = Cluster::start();
    cluster.create_topic("churn", 3).await;
    let name = stream(&cluster, "churn");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let lake = dir.path().join("lake");

    // `millrace produce` writes a topic as it writes a Kinesis stream.
    let file = dir.path().join("first.ndjson");
    let lines: String = (0..500)
        .map(|i| format!("{{\"id\":\"p{i}\",\"x\":1}}\n"))
        .collect();
    std::fs::write(&file, lines).unwrap();
    run(
        &data,
        &[
            "produce",
            "--stream",
            &name,
            "--batch",
            "--partition-key",
            "id",
            "--file",
            file.to_str().unwrap(),
        ],
    );

    let sink = KafkaSink::new(url(&cluster, "churn")).unwrap();
    let deliver = [
        "deliver",
        "--stream",
        &name,
        "--lake",
        lake.to_str().unwrap(),
        "--name",
        "churn-lake",
        "--buffer-interval",
        "0",
        "--buffer-size",
        "1",
    ];
    let mut sent = 500;
    for cycle in 0..2 {
        let child = spawn(&data, &deliver);
        put(&sink, sent..sent + 3000).await;
        sent += 3000;
        // Kill once this run has written something, while records are still arriving.
        let before = lake_ids(&lake).1.len();
        wait_until("objects from this run", || lake_ids(&lake).1.len() > before);
        put(&sink, sent..sent + 500).await;
        sent += 500;
        kill9(child);
        eprintln!(
            "cycle {cycle}: killed with {} records in the lake",
            lake_ids(&lake).1.len()
        );
    }
    put(&sink, sent..sent + 200).await;
    sent += 200;
    let mut until = deliver.to_vec();
    until.push("--until-caught-up");
    run(&data, &until);

    let (objects, ids) = lake_ids(&lake);
    assert!(
        objects.iter().all(|o| !o.contains(".tmp-")),
        "staging files left: {objects:?}"
    );
    assert!(
        objects
            .iter()
            .all(|o| o.starts_with("raw/churn/") && o.contains("-partition-")),
        "object names: {objects:?}"
    );
    let expected = (0..500)
        .map(|i| format!("p{i}"))
        .chain((500..sent).map(|i| format!("r{i}")));
    assert_each_once("in the lake", &ids, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_is_scored_into_a_topic_once_per_input_across_kill_9() {
    let (cluster, _dir, data) =
        scoring_setup(&[("in", 2), ("preds", 2), ("preds-errors", 1)]).await;
    let (input, output, errors) = (
        stream(&cluster, "in"),
        stream(&cluster, "preds"),
        stream(&cluster, "preds-errors"),
    );
    let score = [
        "score",
        "--name",
        "churn",
        "--stream",
        &input,
        "--model",
        "m",
        "--to-stream",
        &output,
        "--error-stream",
        &errors,
        "--poll-ms",
        "10",
    ];
    let sink = KafkaSink::new(url(&cluster, "in")).unwrap();
    let preds = KafkaSource::new(url(&cluster, "preds")).unwrap();
    let mut sent = 0;
    for _ in 0..2 {
        let child = spawn(&data, &score);
        put(&sink, sent..sent + 400).await;
        sent += 400;
        let deadline = Instant::now() + PATIENCE;
        let before = read_topic(&preds).await.len();
        while read_topic(&preds).await.len() <= before {
            assert!(Instant::now() < deadline, "no predictions");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        put(&sink, sent..sent + 400).await;
        sent += 400;
        kill9(child);
    }
    let mut until = score.to_vec();
    until.push("--until-caught-up");
    run(&data, &until);

    let mut answered = Vec::new();
    for p in read_topic(&preds).await {
        assert_eq!(p["model"], "m", "{p}");
        let id = p["id"].as_str().unwrap_or_else(|| panic!("no id: {p}"));
        answered.push(id.to_owned());
    }
    assert_each_once("predictions", &answered, (0..sent).map(|i| format!("r{i}")));
}

/// Every id of `expected` once in `got`, and nothing else.
fn assert_each_once(what: &str, got: &[String], expected: impl IntoIterator<Item = String>) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in got {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "{what} twice: {twice:?}");
    let expected: Vec<String> = expected.into_iter().collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !counts.contains_key(id.as_str()))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "{what} missing: {missing:?}");
    assert_eq!(got.len(), expected.len(), "{what}: unexpected ids");
}

/// Records `r{ids}` in the lake once each, and no staging file left.
fn assert_exactly_once(lake: &Path, ids: std::ops::Range<usize>) {
    let (objects, got) = lake_ids(lake);
    assert!(objects.iter().all(|o| !o.contains(".tmp-")), "{objects:?}");
    assert_each_once("in the lake", &got, ids.map(|i| format!("r{i}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliveries_of_one_name_split_the_partitions_and_take_over_after_kill_9() {
    let cluster = Cluster::start();
    cluster.create_topic("events", 4).await;
    let name = stream(&cluster, "events");
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let deliver = [
        "deliver",
        "--stream",
        &name,
        "--lake",
        lake.to_str().unwrap(),
        "--name",
        "events-lake",
        "--buffer-interval",
        "0",
        "--buffer-size",
        "1",
    ];
    // Two members with data directories of their own, as on two machines.
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let a = spawn_logged(&dir.path().join("a"), &deliver, &log_a);
    let b = spawn_logged(&dir.path().join("b"), &deliver, &log_b);
    let sink = KafkaSink::new(url(&cluster, "events")).unwrap();
    let logs = || {
        format!(
            "a:\n{}\nb:\n{}",
            std::fs::read_to_string(&log_a).unwrap_or_default(),
            std::fs::read_to_string(&log_b).unwrap_or_default()
        )
    };
    let deadline = Instant::now() + PATIENCE;
    while assigned(&log_a).is_empty() || assigned(&log_b).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the group did not give both members partitions:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (pa, pb) = (assigned(&log_a), assigned(&log_b));
    let mut all: Vec<i32> = pa.iter().chain(&pb).copied().collect();
    all.sort_unstable();
    assert_eq!(all, [0, 1, 2, 3], "a has {pa:?}, b has {pb:?}");

    put(&sink, 0..4000).await;
    wait_until("every record in the lake", || {
        lake_ids(&lake).1.len() >= 4000
    });
    assert_exactly_once(&lake, 0..4000);

    // a dies with records arriving; b gets its partitions once a's session times out and
    // continues from a's checkpoints in the group.
    put(&sink, 4000..6000).await;
    kill9(a);
    put(&sink, 6000..8000).await;
    wait_until("b to take every partition", || {
        assigned(&log_b) == [0, 1, 2, 3]
    });
    wait_until("every record in the lake", || {
        lake_ids(&lake).1.len() >= 8000
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_exactly_once(&lake, 0..8000);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_delivers_and_scores_kafka_topics_named_in_its_config() {
    let (cluster, dir, data) =
        scoring_setup(&[("churn", 2), ("scored", 2), ("scored-errors", 1)]).await;
    let config = dir.path().join("millrace.toml");
    std::fs::write(
        &config,
        format!(
            "[[delivery]]\nname = \"churn-raw\"\nstream = \"{input}\"\nbuffer_interval_secs = 0\n\n\
             [[scoring]]\nname = \"churn\"\nstream = \"{input}\"\nmodel = \"m\"\n\
             to_stream = \"{scored}\"\nerror_stream = \"{errors}\"\n",
            input = stream(&cluster, "churn"),
            scored = stream(&cluster, "scored"),
            errors = stream(&cluster, "scored-errors"),
        ),
    )
    .unwrap();
    let mut logs = ServerLogs::new(dir.path().join("logs"));
    let server = Server::start(
        &data,
        [
            "--kinesis-addr",
            "127.0.0.1:0",
            "-c",
            config.to_str().unwrap(),
        ],
        None,
        &["kinesis"],
        PATIENCE,
        logs.next(),
    );
    let sink = KafkaSink::new(url(&cluster, "churn")).unwrap();
    put(&sink, 0..300).await;
    let lake = data.join("lake").join("raw");
    wait_until("the topic in the lake", || lake_ids(&lake).1.len() >= 300);
    assert_exactly_once(&lake, 0..300);
    let scored = KafkaSource::new(url(&cluster, "scored")).unwrap();
    let deadline = Instant::now() + PATIENCE;
    let predictions = loop {
        let got = read_topic(&scored).await;
        if got.len() >= 300 {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "{} of 300 predictions; log: {}",
            got.len(),
            server.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let answered: Vec<String> = predictions
        .iter()
        .map(|p| p["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_each_once("predictions", &answered, (0..300).map(|i| format!("r{i}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_a_kafka_topic() {
    let cluster = Cluster::start();
    for (topic, partitions) in [
        ("demo", 4),
        ("demo-live", 2),
        ("demo-scored", 4),
        ("demo-scored-errors", 4),
    ] {
        cluster.create_topic(topic, partitions).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = stream(&cluster, "demo");
    let out = common::millrace()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--rows", "600", "--stream", &input])
        .output()
        .unwrap();
    common::assert_ran(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("acknowledged by the brokers of {input}")),
        "{stdout}"
    );
    assert!(
        stdout.contains("every record arrived exactly once"),
        "{stdout}"
    );
    let (_, ids) = lake_ids(&dir.path().join("lake").join("raw"));
    assert_eq!(ids.len(), 600, "{stdout}");

    let out = common::millrace()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--rows", "10", "--stream", "churn"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kafka://HOST:PORT/TOPIC"), "{stderr}");
}
