//! Crash safety of delivery, end to end through the real binary.
//!
//! `millrace up` runs a 4-shard stream with a delivery into the local lake (NDJSON, flushed
//! every second or every MiB). Several producers write JSON records with unique ids while the
//! server is killed with SIGKILL at a moment when delivery is flushing (a staging file is in
//! the lake, or a shard's checkpoint holds an intent). After a restart on the same data
//! directory and one more batch, the lake must end with every acknowledged record exactly
//! once and nothing that was never sent; each shard's objects, in sequence order, must hold
//! exactly that shard's records in stream order (as GetRecords reads them back) under the
//! sequence ranges their names claim; no checkpoint may keep an intent; and no staging file
//! may be left in the lake. The kill/restart cycle runs several times on the same data
//! directory, so recovery itself goes through later crashes.

use crate::common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use common::kinesis::{
    ProducerReport, Producers, Stored, client, join_producers, read_all, seq_num, shards,
    wait_active,
};
use common::{Server, ServerLogs};
use rand::distr::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const STREAM: &str = "churn";
const DELIVERY: &str = "churn-lake";
const SHARDS: usize = 4;
const PRODUCERS: usize = 4;
const BATCH: usize = 100;
/// Each producer starts at most one batch per this period (about 16,000 records a second in
/// all): plenty of 1-MiB flushes, and a workload that does not grow with the machine's speed.
const PACE: Duration = Duration::from_millis(25);
const CYCLES: usize = 3;
/// How long the producers write before the kill is armed.
const LOAD: Duration = Duration::from_secs(2);
/// The kill also waits until this cycle added at least this many objects to the lake, so
/// delivery is demonstrably flushing under load.
const MIN_NEW_OBJECTS: usize = 4;
/// Once armed, how long the kill waits for a flush caught in the act before it fires anyway.
const AIM: Duration = Duration::from_secs(3);
/// After everything acknowledged is in the lake: time for late rewrites or duplicates to show.
const SETTLE: Duration = Duration::from_secs(2);
/// Upper bound for anything that waits on the server (start, readiness, delivery, reads).
const PATIENCE: Duration = Duration::from_secs(30);
/// The whole test, as a last resort against a hang.
const TEST_TIMEOUT: Duration = Duration::from_secs(180);

const CONFIG: &str = r#"
[[stream]]
name = "churn"
shards = 4

[[delivery]]
name = "churn-lake"
stream = "churn"
buffer_interval_secs = 1
buffer_size_mib = 1
"#;

/// What the kill waits for once armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aim {
    /// An object is being committed: a `.tmp-*` staging file is in the lake.
    Staging,
    /// A flush is between its intent and its commit: a checkpoint holds `pending`.
    Intent,
}

/// Everything the producers sent and everything the server acknowledged, across all cycles.
#[derive(Default)]
struct Ledger {
    /// Record id -> data, recorded *before* the request goes out.
    sent: HashMap<String, Vec<u8>>,
    /// Record id -> (shard, sequence number) it was acknowledged with.
    acked: HashMap<String, (String, String)>,
}

/// The `id` field of a JSON record (any other fields are skipped).
fn record_id(data: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Record<'a> {
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
    }
    serde_json::from_slice::<Record>(data)
        .ok()
        .map(|r| r.id.into_owned())
}

fn shorten(data: &[u8]) -> String {
    String::from_utf8_lossy(&data[..data.len().min(80)]).into_owned()
}

/// One JSON record with a unique id and a random amount of padding.
fn make_record(rng: &mut StdRng, id: &str) -> Vec<u8> {
    let len = rng.random_range(32..320);
    let pad: String = rng
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    serde_json::json!({ "id": id, "pad": pad })
        .to_string()
        .into_bytes()
}

/// Sends PutRecords batches of `BATCH` records (paced by `PACE`) until a request fails (the
/// server was killed) or `stop` is set.
async fn produce(
    p: usize,
    cycle: usize,
    client: Client,
    ledger: Arc<Mutex<Ledger>>,
    acked_now: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> ProducerReport {
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let mut n = 0usize;
    let mut report = ProducerReport::default();
    let mut pace = tokio::time::interval(PACE);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::SeqCst) {
        pace.tick().await;
        let mut ids = Vec::with_capacity(BATCH);
        let mut entries = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let id = format!("p{p}-c{cycle}-{n}");
            n += 1;
            let data = make_record(&mut rng, &id);
            ledger.lock().unwrap().sent.insert(id.clone(), data.clone());
            entries.push(
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("k{:016x}", rng.random::<u64>()))
                    .data(Blob::new(data))
                    .build()
                    .expect("a complete entry"),
            );
            ids.push(id);
        }
        let answer = client
            .put_records()
            .stream_name(STREAM)
            .set_records(Some(entries))
            .send()
            .await;
        let sent = {
            let mut l = ledger.lock().unwrap();
            report.put_records_answer(ids, answer, &acked_now, |id, shard, seq| {
                l.acked.insert(id, (shard.to_owned(), seq.to_owned()));
            })
        };
        if !sent {
            break;
        }
    }
    report
}

/// Every file under `dir` (recursively), skipping entries that vanish while we look.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            walk(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

fn is_staging(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(".tmp-"))
}

/// A delivered object: `raw/churn/YYYY/MM/DD/HH/churn-lake-<shard>-<first>-<last>.json`.
#[derive(Debug)]
struct LakeObject {
    key: String,
    shard: String,
    first: String,
    last: String,
    lines: Vec<Vec<u8>>,
    /// The id of each line, where it has one.
    ids: Vec<Option<String>>,
}

/// Splits an object key into (shard, first sequence, last sequence).
fn parse_key(key: &str) -> Option<(String, String, String)> {
    let rest = key.strip_prefix(&format!("raw/{STREAM}/"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [yyyy, mm, dd, hh, name] = parts.as_slice() else {
        return None;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(yyyy, 4) && digits(mm, 2) && digits(dd, 2) && digits(hh, 2)) {
        return None;
    }
    let stem = name
        .strip_prefix(&format!("{DELIVERY}-"))?
        .strip_suffix(".json")?;
    // Shard ids contain a dash themselves (`shardId-000000000000`): split from the right.
    let mut it = stem.rsplitn(3, '-');
    let last = it.next()?;
    let first = it.next()?;
    let shard = it.next()?;
    let seq = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (shard.starts_with("shardId-") && seq(first) && seq(last))
        .then(|| (shard.to_owned(), first.to_owned(), last.to_owned()))
}

/// Everything in the lake directory: delivered objects, staging files, and anything else.
struct LakeScan {
    objects: Vec<LakeObject>,
    staging: Vec<String>,
    other: Vec<String>,
}

fn key_of(lake: &Path, path: &Path) -> String {
    path.strip_prefix(lake)
        .expect("a path under the lake")
        .to_string_lossy()
        .into_owned()
}

fn split_lines(key: &str, bytes: &[u8]) -> Vec<Vec<u8>> {
    assert!(
        bytes.is_empty() || bytes.ends_with(b"\n"),
        "object {key} does not end with a newline"
    );
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn scan_lake(lake: &Path) -> LakeScan {
    let mut files = Vec::new();
    walk(lake, &mut files);
    files.sort();
    let mut scan = LakeScan {
        objects: Vec::new(),
        staging: Vec::new(),
        other: Vec::new(),
    };
    for path in files {
        let key = key_of(lake, &path);
        if is_staging(&path) {
            scan.staging.push(key);
            continue;
        }
        let Some((shard, first, last)) = parse_key(&key) else {
            scan.other.push(key);
            continue;
        };
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {key}: {e}"));
        let lines = split_lines(&key, &bytes);
        let ids = lines.iter().map(|l| record_id(l)).collect();
        scan.objects.push(LakeObject {
            key,
            shard,
            first,
            last,
            lines,
            ids,
        });
    }
    scan
}

/// A shard's checkpoint as delivery wrote it.
fn checkpoints(data_dir: &Path) -> BTreeMap<String, Value> {
    let dir = data_dir.join("state").join("delivery").join(DELIVERY);
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(shard) = name.strip_suffix(".json").filter(|s| !s.starts_with('.')) else {
            continue;
        };
        if let Ok(bytes) = std::fs::read(e.path())
            && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
        {
            out.insert(shard.to_owned(), v);
        }
    }
    out
}

fn has_pending(cp: &Value) -> bool {
    cp.get("pending").is_some_and(|p| !p.is_null())
}

/// Cheap look at the lake while it is being written: (objects, staging files).
fn look_at_lake(lake: &Path) -> (usize, HashSet<PathBuf>) {
    let mut files = Vec::new();
    walk(lake, &mut files);
    let (staging, objects): (Vec<PathBuf>, Vec<PathBuf>) =
        files.into_iter().partition(|p| is_staging(p));
    (objects.len(), staging.into_iter().collect())
}

/// Blocks until delivery is caught flushing (per `aim`; staging files in `old_staging` do not
/// count) after the lake grew by `MIN_NEW_OBJECTS`, or until `AIM` runs out. Returns whether
/// the flush was caught.
fn wait_for_flush(
    data_dir: &Path,
    aim: Aim,
    objects_before: usize,
    old_staging: &HashSet<PathBuf>,
    cycle: usize,
) -> bool {
    let lake = data_dir.join("lake");
    let started = Instant::now();
    while look_at_lake(&lake).0 < objects_before + MIN_NEW_OBJECTS {
        assert!(
            started.elapsed() < PATIENCE,
            "cycle {cycle}: delivery wrote fewer than {MIN_NEW_OBJECTS} objects in {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let armed = Instant::now();
    while armed.elapsed() < AIM {
        let caught = match aim {
            Aim::Staging => look_at_lake(&lake)
                .1
                .iter()
                .any(|p| !old_staging.contains(p)),
            Aim::Intent => checkpoints(data_dir).values().any(has_pending),
        };
        if caught {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Writes one PutRecords batch after a restart, with one record aimed at every shard so
/// each shard's delivery must get past everything stored before it. Everything must succeed.
async fn write_after_restart(
    client: &Client,
    cycle: usize,
    shards: &[(String, String)],
    ledger: &Mutex<Ledger>,
) {
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let mut ids = Vec::new();
    let mut entries = Vec::new();
    for i in 0..BATCH {
        let id = format!("post-c{cycle}-{i}");
        let data = make_record(&mut rng, &id);
        ledger.lock().unwrap().sent.insert(id.clone(), data.clone());
        let mut entry = PutRecordsRequestEntry::builder()
            .partition_key(format!("after-restart-{i}"))
            .data(Blob::new(data));
        if let Some((_, start_hash)) = shards.get(i) {
            entry = entry.explicit_hash_key(start_hash);
        }
        entries.push(entry.build().expect("a complete entry"));
        ids.push(id);
    }
    let out = client
        .put_records()
        .stream_name(STREAM)
        .set_records(Some(entries))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cycle {cycle}: PutRecords after the restart failed: {}",
                aws_sdk_kinesis::error::DisplayErrorContext(e)
            )
        });
    assert_eq!(out.failed_record_count(), Some(0), "cycle {cycle}: {out:?}");
    let mut l = ledger.lock().unwrap();
    for (i, (id, r)) in ids.into_iter().zip(out.records()).enumerate() {
        let shard = r.shard_id().expect("an acknowledged record has a shard");
        if let Some((want, _)) = shards.get(i) {
            assert_eq!(shard, want, "cycle {cycle}: explicit hash key of {id}");
        }
        let seq = r.sequence_number().expect("a sequence number");
        l.acked.insert(id, (shard.to_owned(), seq.to_owned()));
    }
}

/// Polls the lake until every acknowledged record is in it. Objects appear whole (renamed
/// into place), so each is read once.
async fn wait_delivered(lake: &Path, ledger: &Mutex<Ledger>, cycle: usize, server: &Server) {
    let acked: HashSet<String> = ledger.lock().unwrap().acked.keys().cloned().collect();
    let mut read: HashSet<PathBuf> = HashSet::new();
    let mut present: HashSet<String> = HashSet::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut files = Vec::new();
        walk(lake, &mut files);
        for path in files {
            if is_staging(&path) || read.contains(&path) {
                continue;
            }
            let key = key_of(lake, &path);
            if parse_key(&key).is_none() {
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            present.extend(
                split_lines(&key, &bytes)
                    .iter()
                    .filter_map(|l| record_id(l)),
            );
            read.insert(path);
        }
        let missing: Vec<&String> = acked.iter().filter(|id| !present.contains(*id)).collect();
        if missing.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            let status = admin_status(server.url("admin")).await;
            panic!(
                "cycle {cycle}: {} acknowledged record(s) not in the lake after {PATIENCE:?}, \
                 e.g. {:?}; /status: {status}",
                missing.len(),
                missing.iter().take(10).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn admin_status(admin: &str) -> Value {
    let text = reqwest::get(format!("{admin}/status"))
        .await
        .expect("GET /status")
        .error_for_status()
        .expect("/status answers 200")
        .text()
        .await
        .expect("/status body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {text}"))
}

/// Checks the lake against the ledger, the stream as read back, the checkpoints and /status.
/// Returns the problems found (empty when all is right).
fn verify(
    ledger: &Ledger,
    stream: &BTreeMap<String, Vec<Stored>>,
    scan: &LakeScan,
    checkpoints: &BTreeMap<String, Value>,
    status: &Value,
    killed_pids: &[u32],
) -> Problems {
    let mut problems = Problems::default();

    for key in &scan.staging {
        let pid = key.rsplit('-').next().unwrap_or("?");
        let by = if killed_pids.iter().any(|p| p.to_string() == pid) {
            "a killed server"
        } else {
            "the running server"
        };
        problems.add(
            "staging file left in the lake",
            format!("{key} (pid {pid}: {by}; killed so far: {killed_pids:?})"),
        );
    }
    for key in &scan.other {
        problems.add("unexpected file in the lake", key.clone());
    }

    // Every line once, sent, byte for byte.
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for o in &scan.objects {
        for (line, id) in o.lines.iter().zip(&o.ids) {
            let Some(id) = id else {
                problems.add(
                    "line that is not a record of ours",
                    format!("{}: {:?}", o.key, shorten(line)),
                );
                continue;
            };
            match ledger.sent.get(id) {
                None => problems.add(
                    "record never sent",
                    format!("{}: record {id} was never sent", o.key),
                ),
                Some(data) if data != line => problems.add(
                    "record bytes differ from what was sent",
                    format!(
                        "{}: record {id} differs from what was sent ({} bytes, sent {})",
                        o.key,
                        line.len(),
                        data.len()
                    ),
                ),
                Some(_) => {}
            }
            if let Some(prev) = seen.insert(id.as_str(), &o.key) {
                problems.add(
                    "record in the lake twice",
                    format!("record {id} is in the lake twice: {prev} and {}", o.key),
                );
            }
        }
    }

    // Per shard: objects in sequence order hold exactly the shard's records in stream order,
    // under the ranges their names claim.
    let mut by_shard: BTreeMap<&str, Vec<&LakeObject>> = BTreeMap::new();
    for o in &scan.objects {
        by_shard.entry(&o.shard).or_default().push(o);
    }
    for shard in by_shard.keys() {
        if !stream.contains_key(*shard) {
            problems.add("objects for an unknown shard", shard.to_string());
        }
    }
    // id -> (shard, seq) as the lake places it.
    let mut placed: HashMap<&str, (&str, &str)> = HashMap::new();
    for (shard, records) in stream {
        let mut objects = by_shard.remove(shard.as_str()).unwrap_or_default();
        objects.sort_by(|a, b| seq_num(&a.first).cmp(&seq_num(&b.first)));
        for w in objects.windows(2) {
            if seq_num(&w[1].first) <= seq_num(&w[0].last) {
                problems.add(
                    "objects overlap",
                    format!("{shard}: objects overlap: {} and {}", w[0].key, w[1].key),
                );
            }
        }
        let mut at = 0usize;
        for o in &objects {
            if seq_num(&o.last) < seq_num(&o.first) {
                problems.add("object range ends before it starts", o.key.clone());
            }
            let n = o.lines.len();
            if n == 0 {
                problems.add("empty object", o.key.clone());
                continue;
            }
            match (records.get(at), records.get(at + n - 1)) {
                (Some(first), Some(last)) if first.seq == o.first && last.seq == o.last => {}
                (first, last) => problems.add(
                    "object does not match its stream records",
                    format!(
                        "{shard}: {} ({n} lines) does not match the stream's records {at}..{} \
                     (sequence numbers {:?}..{:?})",
                        o.key,
                        at + n,
                        first.map(|r| &r.seq),
                        last.map(|r| &r.seq)
                    ),
                ),
            }
            for (i, id) in o.ids.iter().enumerate() {
                if let (Some(r), Some(id)) = (records.get(at + i), id) {
                    placed.entry(id).or_insert((shard.as_str(), r.seq.as_str()));
                }
            }
            at += n;
        }
        let lake_lines: Vec<&[u8]> = objects
            .iter()
            .flat_map(|o| o.lines.iter().map(Vec::as_slice))
            .collect();
        let stream_data: Vec<&[u8]> = records.iter().map(|r| r.data.as_slice()).collect();
        if lake_lines != stream_data {
            let i = lake_lines
                .iter()
                .zip(&stream_data)
                .position(|(a, b)| a != b)
                .unwrap_or(lake_lines.len().min(stream_data.len()));
            problems.add(
                "shard's lines differ from its stream records",
                format!(
                    "{shard}: the lake's lines ({}) differ from the stream's records ({}) first at \
                 #{i}: lake {:?}, stream {:?}",
                    lake_lines.len(),
                    stream_data.len(),
                    lake_lines.get(i).map(|l| shorten(l)),
                    stream_data.get(i).map(|d| shorten(d))
                ),
            );
        }

        // The checkpoint: no intent left, everything delivered.
        let last = records.last().map(|r| r.seq.as_str());
        match checkpoints.get(shard) {
            None if last.is_some() => {
                problems.add("no checkpoint", format!("{shard}: no checkpoint"))
            }
            None => {}
            Some(cp) => {
                if has_pending(cp) {
                    problems.add("checkpoint keeps an intent", format!("{shard}: {cp}"));
                }
                if cp.get("delivered").and_then(Value::as_str) != last {
                    problems.add(
                        "checkpoint behind the stream",
                        format!(
                            "{shard}: checkpoint {cp}, but the shard's last record is {last:?}"
                        ),
                    );
                }
            }
        }
    }

    // Every acknowledged record, where it was acknowledged.
    let mut missing = Vec::new();
    for (id, (shard, seq)) in &ledger.acked {
        match placed.get(id.as_str()) {
            None if !seen.contains_key(id.as_str()) => missing.push(id.as_str()),
            None => {}
            Some(&(s, q)) if s != shard || q != seq => problems.add(
                "record acknowledged elsewhere",
                format!(
                    "record {id} was acknowledged as {shard} {seq} but is in the lake as {s} {q}"
                ),
            ),
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        missing.sort_unstable();
        problems.add(
            "acknowledged records missing",
            format!(
                "{} acknowledged record(s) missing from the lake, e.g. {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            ),
        );
    }

    // What the running server reports.
    let deliveries = status["deliveries"].as_array().cloned().unwrap_or_default();
    match deliveries.iter().find(|d| d["name"] == DELIVERY) {
        None => problems.add(
            "/status",
            format!("/status has no delivery {DELIVERY}: {status}"),
        ),
        Some(d) => {
            if d["error_records"] != 0 {
                problems.add("/status", format!("/status reports error records: {d}"));
            }
            for (shard, records) in stream {
                let last = records.last().map(|r| r.seq.as_str());
                let reported = d["shards"][shard.as_str()]["delivered"].as_str();
                if reported != last {
                    problems.add(
                        "/status",
                        format!("/status: {shard} delivered {reported:?}, last record {last:?}"),
                    );
                }
            }
        }
    }
    problems
}

/// Problems found, by kind, with the first few examples of each.
#[derive(Default)]
struct Problems {
    kinds: BTreeMap<&'static str, (usize, Vec<String>)>,
}

impl Problems {
    const EXAMPLES: usize = 5;

    fn add(&mut self, kind: &'static str, example: String) {
        let (count, examples) = self.kinds.entry(kind).or_default();
        *count += 1;
        if examples.len() < Self::EXAMPLES {
            examples.push(example);
        }
    }
}

fn assert_no_problems(cycle: usize, problems: &Problems) {
    if problems.kinds.is_empty() {
        return;
    }
    let mut report = String::new();
    for (kind, (count, examples)) in &problems.kinds {
        report.push_str(&format!("{kind}: {count}, e.g.\n"));
        for e in examples {
            report.push_str(&format!("    {e}\n"));
        }
    }
    panic!("cycle {cycle}: problems after the restart:\n{report}");
}

async fn run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data_dir = tmp.path().join("data");
    let lake = data_dir.join("lake");
    let mut logs = ServerLogs::new(tmp.path().join("logs"));
    let config = tmp.path().join("millrace.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let started = Instant::now();

    let mut start = |data_dir: &Path| {
        let log = logs.next();
        let args = [
            OsStr::new("-c"),
            config.as_os_str(),
            OsStr::new("--kinesis-addr"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--admin-addr"),
            OsStr::new("127.0.0.1:0"),
        ];
        tokio::task::block_in_place(|| {
            Server::start(
                data_dir,
                args,
                // Delivery's info lines too, so replays of interrupted flushes land in the log.
                Some("warn,millrace=info,millrace_stream=info,millrace_delivery=info"),
                &["kinesis", "admin"],
                PATIENCE,
                log,
            )
        })
    };

    let mut server = start(&data_dir);
    let mut kinesis = client(server.url("kinesis")).await;
    wait_active(&kinesis, STREAM, SHARDS, PATIENCE).await;

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut killed_pids = Vec::new();
    let mut interrupted_flushes = 0usize;
    for cycle in 0..CYCLES {
        let cycle_started = Instant::now();
        let aim = if cycle % 2 == 0 {
            Aim::Staging
        } else {
            Aim::Intent
        };
        let (objects_before, old_staging) = look_at_lake(&lake);

        // Load, then kill -9 while delivery is flushing.
        let producers = Producers::spawn(PRODUCERS, |p, acked_now, stop| {
            produce(p, cycle, kinesis.clone(), ledger.clone(), acked_now, stop)
        });
        tokio::time::sleep(LOAD).await;
        let caught = tokio::task::block_in_place(|| {
            let caught = wait_for_flush(&data_dir, aim, objects_before, &old_staging, cycle);
            let still_running = producers.still_running();
            killed_pids.push(server.pid());
            server.kill9();
            assert_eq!(
                still_running, PRODUCERS,
                "cycle {cycle}: producers stopped before the kill"
            );
            caught
        });
        producers.stop.store(true, Ordering::SeqCst);
        let killed_after = cycle_started.elapsed();
        let totals = join_producers(producers.handles, cycle, PATIENCE).await;
        let acked_this_cycle = totals.acked;
        assert!(
            acked_this_cycle > 0,
            "cycle {cycle}: nothing acknowledged: {:?}",
            totals.reports
        );
        // What the kill interrupted, as left on disk.
        let (objects_at_kill, staging) = look_at_lake(&lake);
        let staging_at_kill = staging.difference(&old_staging).count();
        let intents_at_kill = checkpoints(&data_dir)
            .values()
            .filter(|c| has_pending(c))
            .count();
        interrupted_flushes += intents_at_kill;

        // Restart on the same data dir, write once more, and wait for the lake to catch up.
        let restarted = Instant::now();
        server = start(&data_dir);
        kinesis = client(server.url("kinesis")).await;
        wait_active(&kinesis, STREAM, SHARDS, PATIENCE).await;
        let shards = shards(&kinesis, STREAM, SHARDS).await;
        write_after_restart(&kinesis, cycle, &shards, &ledger).await;
        wait_delivered(&lake, &ledger, cycle, &server).await;
        let delivered_after = restarted.elapsed();
        tokio::time::sleep(SETTLE).await;
        let checked = Instant::now();

        let stream = read_all(&kinesis, STREAM, &shards, PATIENCE).await;
        let status = admin_status(server.url("admin")).await;
        let scan = tokio::task::block_in_place(|| scan_lake(&lake));
        let cps = checkpoints(&data_dir);
        let problems = verify(
            &ledger.lock().unwrap(),
            &stream,
            &scan,
            &cps,
            &status,
            &killed_pids,
        );
        let stored: usize = stream.values().map(Vec::len).sum();
        let lines: usize = scan.objects.iter().map(|o| o.lines.len()).sum();
        eprintln!(
            "cycle {cycle}: aimed at {aim:?} ({}); {acked_this_cycle} acknowledged this cycle, \
             {} in total; {} producer(s) saw the kill as a failed request, {} record(s) \
             rejected inside PutRecords; at the kill: \
             {objects_at_kill} objects, {staging_at_kill} new staging file(s), {intents_at_kill} \
             intent(s); the restart replayed {} flush(es); now {stored} records in the \
             stream, {lines} lines in {} objects; killed after {killed_after:.1?}, all \
             acknowledged records in the lake {delivered_after:.1?} after the restart, \
             checked in {:.1?}",
            if caught { "caught" } else { "missed" },
            ledger.lock().unwrap().acked.len(),
            totals.failed_in_flight,
            totals.failed_in_batch,
            server.log_count("replaying an interrupted flush"),
            scan.objects.len(),
            checked.elapsed()
        );
        assert_no_problems(cycle, &problems);
    }

    // Otherwise the replay of an interrupted flush was never exercised.
    assert!(
        interrupted_flushes > 0,
        "no kill of {CYCLES} interrupted a flush (no checkpoint held an intent)"
    );
    tokio::task::block_in_place(|| server.kill9());
    drop(server);
    eprintln!("delivery crash test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delivery_survives_kill_9_exactly_once_in_order() {
    tokio::time::timeout(TEST_TIMEOUT, run())
        .await
        .expect("the delivery crash test timed out");
}
