//! Crash safety of the durable log, end to end through the real binary.
//!
//! Several producers write to a 4-shard stream (PutRecords batches and single PutRecord calls)
//! while the server is killed with SIGKILL. After a restart on the same data directory, every
//! record the server acknowledged must be there exactly once, under the shard and sequence
//! number it was acknowledged with and with identical bytes; nothing may appear that was never
//! sent; sequence numbers must strictly increase within each shard and keep each producer's
//! acknowledgement order; and the stream must keep accepting writes. The kill/restart cycle
//! runs several times so that the recovered log itself goes through later crashes.
//!
//! After the first cycle the stream's encryption is started (StartStreamEncryption with
//! `alias/aws/kinesis`), so the later cycles kill the server while it seals records, recover
//! sealed segments and read them back; at the end no record written after that is in any
//! segment file in the clear, while those of the first cycle are.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use common::kinesis::{
    ProducerReport, Producers, Stored, client, iterator, join_producers, read_all, read_from,
    seq_num, shards, wait_active,
};
use common::{Server, ServerLogs};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const STREAM: &str = "crash-test";
const SHARDS: usize = 4;
const PRODUCERS: usize = 4;
const BATCH: usize = 50;
const CYCLES: usize = 3;
/// How long the producers write before the kill (at least; see `MIN_ACKED_PER_CYCLE`).
const LOAD: Duration = Duration::from_millis(1500);
/// The kill waits until at least this many records of the cycle were acknowledged, so a slow
/// machine still exercises a log with real content.
const MIN_ACKED_PER_CYCLE: usize = 200;
/// Upper bound for anything that waits on the server (start, readiness, load, reads).
const PATIENCE: Duration = Duration::from_secs(60);
/// The whole test, as a last resort against a hang.
const TEST_TIMEOUT: Duration = Duration::from_secs(240);
/// Producer name used for the records written after each restart.
const POST: &str = "post";

/// Everything the producers sent and everything the server acknowledged, across all cycles.
#[derive(Default)]
struct Ledger {
    /// Record id -> (partition key, data), recorded *before* the request goes out.
    sent: HashMap<String, (String, Vec<u8>)>,
    /// Acknowledgements in the order each producer received them.
    acked: Vec<Ack>,
}

#[derive(Debug, Clone)]
struct Ack {
    producer: String,
    id: String,
    shard: String,
    seq: String,
}

/// The id at the front of a record's data, up to the first `|`.
fn record_id(data: &[u8]) -> Option<&str> {
    let end = data.iter().position(|&b| b == b'|')?;
    std::str::from_utf8(&data[..end]).ok()
}

/// Writes until a request fails (the server was killed) or `stop` is set: a PutRecords of
/// `BATCH` records, then one PutRecord, over and over.
async fn produce(
    p: usize,
    cycle: usize,
    client: Client,
    ledger: Arc<Mutex<Ledger>>,
    acked_now: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> ProducerReport {
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let producer = format!("p{p}");
    let mut seq = 0usize;
    let mut report = ProducerReport::default();
    let mut next_record = |rng: &mut StdRng| {
        let id = format!("p{p}-c{cycle}-{seq}");
        seq += 1;
        // Half the records share a few per-producer keys (so one producer's records pile up
        // in one shard and their order matters), half go anywhere.
        let key = if rng.random_bool(0.5) {
            format!("producer-{p}-{}", rng.random_range(0..3))
        } else {
            format!("k{:016x}", rng.random::<u64>())
        };
        let mut data = format!("{id}|").into_bytes();
        let extra = rng.random_range(0..256);
        data.extend((0..extra).map(|_| rng.random::<u8>()));
        ledger
            .lock()
            .unwrap()
            .sent
            .insert(id.clone(), (key.clone(), data.clone()));
        (id, key, data)
    };
    while !stop.load(Ordering::SeqCst) {
        let mut ids = Vec::with_capacity(BATCH);
        let mut entries = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let (id, key, data) = next_record(&mut rng);
            ids.push(id);
            entries.push(
                PutRecordsRequestEntry::builder()
                    .partition_key(key)
                    .data(Blob::new(data))
                    .build()
                    .expect("a complete entry"),
            );
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
                l.acked.push(Ack {
                    producer: producer.clone(),
                    id,
                    shard: shard.to_owned(),
                    seq: seq.to_owned(),
                })
            })
        };
        if !sent {
            break;
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (id, key, data) = next_record(&mut rng);
        match client
            .put_record()
            .stream_name(STREAM)
            .partition_key(key)
            .data(Blob::new(data))
            .send()
            .await
        {
            Ok(out) => {
                ledger.lock().unwrap().acked.push(Ack {
                    producer: producer.clone(),
                    id,
                    shard: out.shard_id().to_owned(),
                    seq: out.sequence_number().to_owned(),
                });
                report.acked += 1;
                acked_now.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                report.error = Some(aws_sdk_kinesis::error::DisplayErrorContext(e).to_string());
                break;
            }
        }
    }
    report
}

/// Checks the recovered log against the ledger. Returns the problems found (empty when the
/// log is right) and how many stored records were sent but never acknowledged.
fn verify(ledger: &Ledger, log: &BTreeMap<String, Vec<Stored>>) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    // id -> (shard, seq) of every record read back.
    let mut seen: HashMap<&str, (&str, &str)> = HashMap::new();
    for (shard, records) in log {
        let mut prev: Option<&str> = None;
        for r in records {
            if let Some(p) = prev
                && seq_num(&r.seq) <= seq_num(p)
            {
                problems.push(format!(
                    "{shard}: sequence numbers do not strictly increase: {p} then {}",
                    r.seq
                ));
            }
            prev = Some(&r.seq);
            let Some(id) = record_id(&r.data) else {
                problems.push(format!(
                    "{shard} {}: data was never sent (no id): {:?}",
                    r.seq,
                    String::from_utf8_lossy(&r.data[..r.data.len().min(64)])
                ));
                continue;
            };
            match ledger.sent.get(id) {
                None => problems.push(format!("{shard} {}: record {id} was never sent", r.seq)),
                Some((key, data)) => {
                    if key != &r.key {
                        problems.push(format!(
                            "{shard} {}: record {id} has partition key {:?}, sent {key:?}",
                            r.seq, r.key
                        ));
                    }
                    if data != &r.data {
                        problems.push(format!(
                            "{shard} {}: record {id} has different bytes than were sent \
                             ({} bytes read, {} sent)",
                            r.seq,
                            r.data.len(),
                            data.len()
                        ));
                    }
                }
            }
            if let Some((s0, q0)) = seen.insert(id, (shard, &r.seq)) {
                problems.push(format!(
                    "record {id} appears twice: {s0} {q0} and {shard} {}",
                    r.seq
                ));
            }
        }
    }
    let mut acked_ids = 0usize;
    let mut by_producer_shard: BTreeMap<(&str, &str), Vec<&Ack>> = BTreeMap::new();
    for a in &ledger.acked {
        acked_ids += 1;
        match seen.get(a.id.as_str()) {
            None => problems.push(format!(
                "acknowledged record {} ({} {}) is missing after the restart",
                a.id, a.shard, a.seq
            )),
            Some(&(shard, seq)) if shard != a.shard || seq != a.seq => problems.push(format!(
                "acknowledged record {} was acknowledged as {} {} but is stored as {shard} {seq}",
                a.id, a.shard, a.seq
            )),
            Some(_) => {}
        }
        by_producer_shard
            .entry((&a.producer, &a.shard))
            .or_default()
            .push(a);
    }
    // Each producer waits for one acknowledgement before sending more, so its records in one
    // shard must sit in the log in the order they were acknowledged.
    for ((producer, shard), acks) in &by_producer_shard {
        for w in acks.windows(2) {
            if seq_num(&w[1].seq) <= seq_num(&w[0].seq) {
                problems.push(format!(
                    "{producer} in {shard}: {} ({}) was acknowledged after {} ({}) but has a \
                     lower or equal sequence number",
                    w[1].id, w[1].seq, w[0].id, w[0].seq
                ));
            }
        }
    }
    let unacked_present = seen.len().saturating_sub(acked_ids);
    (problems, unacked_present)
}

fn assert_no_problems(cycle: usize, problems: &[String]) {
    if problems.is_empty() {
        return;
    }
    let shown: Vec<&str> = problems.iter().take(25).map(String::as_str).collect();
    panic!(
        "cycle {cycle}: {} problem(s) in the recovered log, first {}:\n{}",
        problems.len(),
        shown.len(),
        shown.join("\n")
    );
}

/// After a restart: one PutRecord into every shard succeeds, lands after everything stored
/// before the crash, and is exactly what an AFTER_SEQUENCE_NUMBER iterator on the last
/// pre-crash record returns.
async fn write_after_restart(
    client: &Client,
    cycle: usize,
    shards: &[(String, String)],
    log: &BTreeMap<String, Vec<Stored>>,
    ledger: &Mutex<Ledger>,
) {
    for (i, (shard, start_hash)) in shards.iter().enumerate() {
        let id = format!("{POST}-c{cycle}-s{i}");
        let key = format!("after-restart-{cycle}");
        let mut data = format!("{id}|").into_bytes();
        data.extend_from_slice(b"written after a restart");
        ledger
            .lock()
            .unwrap()
            .sent
            .insert(id.clone(), (key.clone(), data.clone()));
        let out = client
            .put_record()
            .stream_name(STREAM)
            .partition_key(&key)
            .explicit_hash_key(start_hash)
            .data(Blob::new(data.clone()))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cycle {cycle}: PutRecord into {shard} after the restart failed: {}",
                    aws_sdk_kinesis::error::DisplayErrorContext(e)
                )
            });
        assert_eq!(out.shard_id(), shard, "explicit hash key {start_hash}");
        let seq = out.sequence_number().to_owned();
        ledger.lock().unwrap().acked.push(Ack {
            producer: POST.to_owned(),
            id: id.clone(),
            shard: shard.clone(),
            seq: seq.clone(),
        });

        let before = &log[shard];
        let it = match before.last() {
            Some(last) => {
                assert!(
                    seq_num(&seq) > seq_num(&last.seq),
                    "cycle {cycle}: {shard}: new record {seq} is not after the last pre-crash \
                     record {}",
                    last.seq
                );
                iterator(
                    client,
                    STREAM,
                    shard,
                    ShardIteratorType::AfterSequenceNumber,
                    Some(&last.seq),
                )
                .await
            }
            None => iterator(client, STREAM, shard, ShardIteratorType::TrimHorizon, None).await,
        };
        let after = read_from(client, shard, it, PATIENCE).await;
        let got: Vec<(&str, &[u8])> = after
            .iter()
            .map(|r| (r.seq.as_str(), r.data.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![(seq.as_str(), data.as_slice())],
            "cycle {cycle}: {shard}: reading after the last pre-crash record must return \
             exactly the new record"
        );
    }
}

/// Simulates a write cut off mid-record on top of whatever the kill left: appends the start of
/// an entry (a length that promises more bytes than follow, and a few of them) to the newest
/// segment of shard `index`. Uses the on-disk layout documented in `millrace-stream`
/// (`streams/<stream>/shard-<index>/<base>.log`). Returns the file and its length before.
fn tear_tail(data_dir: &Path, index: usize) -> (PathBuf, u64) {
    let dir = data_dir
        .join("streams")
        .join(STREAM)
        .join(format!("shard-{index:06}"));
    let newest = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
        .unwrap_or_else(|| panic!("no segment in {}", dir.display()));
    let before = std::fs::metadata(&newest).expect("segment metadata").len();
    let mut torn = Vec::new();
    torn.extend_from_slice(&200u32.to_le_bytes()); // entry length: 200 bytes after the frame
    torn.extend_from_slice(&0xdead_beef_u32.to_le_bytes()); // CRC
    torn.extend_from_slice(&[0x5a; 40]); // ...but only 40 of them made it
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .expect("opening the newest segment");
    std::io::Write::write_all(&mut f, &torn).expect("appending a torn entry");
    (newest, before)
}

/// Record ids carry their cycle (`p0-c1-17|`, `post-c2-s0|`): those of cycle 0 were written
/// before encryption started and must be in the segments in the clear (so this check can
/// fail), those of later cycles must not.
fn assert_sealed_after_the_first_cycle(data_dir: &Path) {
    let stream_dir = data_dir.join("streams").join(STREAM);
    let mut segments = Vec::new();
    for shard in std::fs::read_dir(&stream_dir).expect("the stream's folder") {
        let shard = shard.expect("an entry").path();
        if shard.is_dir() {
            for seg in std::fs::read_dir(&shard).expect("a shard folder") {
                segments.push(std::fs::read(seg.expect("an entry").path()).expect("a segment"));
            }
        }
    }
    // A whole id (`p0-c1-17|`): the bare `-c1-` also turns up by chance in ~100 MB of
    // ciphertext now and then (2^-32 a position).
    let is_id = |s: &[u8], at: usize, len: usize| {
        let before = at.checked_sub(1).map(|i| s[i]);
        let rest = &s[at + len..s.len().min(at + len + 12)];
        before.is_some_and(|b| b.is_ascii_alphanumeric())
            && rest
                .iter()
                .position(|&b| b == b'|')
                .is_some_and(|end| end > 0 && rest[..end].iter().all(u8::is_ascii_alphanumeric))
    };
    let found = |needle: &[u8]| {
        segments.iter().any(|s| {
            s.windows(needle.len())
                .enumerate()
                .any(|(at, w)| w == needle && is_id(s, at, needle.len()))
        })
    };
    assert!(
        found(b"-c0-"),
        "the records of cycle 0 are not in the segments in the clear"
    );
    for cycle in 1..CYCLES {
        let needle = format!("-c{cycle}-");
        assert!(
            !found(needle.as_bytes()),
            "a record of cycle {cycle} (written after StartStreamEncryption) is in a segment \
             in the clear"
        );
    }
}

async fn run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data_dir = tmp.path().join("data");
    let mut logs = ServerLogs::new(tmp.path().join("logs"));
    let started = Instant::now();

    let mut start = |data_dir: &Path| {
        let log = logs.next();
        tokio::task::block_in_place(|| {
            Server::start(
                data_dir,
                ["--kinesis-addr", "127.0.0.1:0"],
                // Default log filter, so recovery's warnings land in the log.
                None,
                &["kinesis"],
                PATIENCE,
                log,
            )
        })
    };

    let mut server = start(&data_dir);
    let mut kinesis = client(server.url("kinesis")).await;
    kinesis
        .create_stream()
        .stream_name(STREAM)
        .shard_count(SHARDS as i32)
        .send()
        .await
        .expect("CreateStream");
    wait_active(&kinesis, STREAM, SHARDS, PATIENCE).await;

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for cycle in 0..CYCLES {
        // Load, then kill -9 while requests are in flight.
        let producers = Producers::spawn(PRODUCERS, |p, acked_now, stop| {
            produce(p, cycle, kinesis.clone(), ledger.clone(), acked_now, stop)
        });
        let load_started = Instant::now();
        tokio::time::sleep(LOAD).await;
        while producers.acked_now.load(Ordering::SeqCst) < MIN_ACKED_PER_CYCLE
            && producers.still_running() > 0
        {
            assert!(
                load_started.elapsed() < PATIENCE,
                "cycle {cycle}: only {} records acknowledged in {PATIENCE:?}",
                producers.acked_now.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let still_running = producers.still_running();
        tokio::task::block_in_place(|| server.kill9());
        producers.stop.store(true, Ordering::SeqCst);
        let totals = join_producers(producers.handles, cycle, PATIENCE).await;
        let acked_this_cycle = totals.acked;
        assert_eq!(
            still_running, PRODUCERS,
            "cycle {cycle}: producers stopped before the kill: {:?}",
            totals.reports
        );
        assert!(
            acked_this_cycle >= MIN_ACKED_PER_CYCLE,
            "cycle {cycle}: only {acked_this_cycle} acknowledged"
        );

        // On top of any tail the kill tore, tear one shard's tail for certain.
        let (torn, len_before) = tear_tail(&data_dir, cycle % SHARDS);

        // Restart on the same data dir and check everything acknowledged so far.
        server = start(&data_dir);
        let len_after = std::fs::metadata(&torn).expect("segment metadata").len();
        assert!(
            len_after <= len_before,
            "cycle {cycle}: recovery did not cut the torn entry off {} ({len_before} bytes \
             before it was appended, {len_after} after the restart)",
            torn.display()
        );
        kinesis = client(server.url("kinesis")).await;
        wait_active(&kinesis, STREAM, SHARDS, PATIENCE).await;
        let shards = shards(&kinesis, STREAM, SHARDS).await;
        let log = read_all(&kinesis, STREAM, &shards, PATIENCE).await;
        let (problems, unacked_present) = verify(&ledger.lock().unwrap(), &log);
        assert_no_problems(cycle, &problems);
        let stored: usize = log.values().map(Vec::len).sum();
        eprintln!(
            "cycle {cycle}: {acked_this_cycle} acknowledged this cycle, {} in total; {stored} \
             stored ({unacked_present} sent but unacknowledged); {} producer(s) saw the kill as a \
             failed request; {} record(s) rejected inside PutRecords; recovery cut {} torn \
             tail(s)",
            ledger.lock().unwrap().acked.len(),
            totals.failed_in_flight,
            totals.failed_in_batch,
            server.log_count("torn or corrupt tail")
        );

        // The recovered stream keeps accepting writes, right after the recovered tail.
        write_after_restart(&kinesis, cycle, &shards, &log, &ledger).await;
        if cycle == 0 {
            kinesis
                .start_stream_encryption()
                .stream_name(STREAM)
                .encryption_type(aws_sdk_kinesis::types::EncryptionType::Kms)
                .key_id("alias/aws/kinesis")
                .send()
                .await
                .expect("StartStreamEncryption");
        }
    }
    assert_sealed_after_the_first_cycle(&data_dir);

    // The acknowledgements of the last post-restart writes are checked by one more read.
    let shards = shards(&kinesis, STREAM, SHARDS).await;
    let log = read_all(&kinesis, STREAM, &shards, PATIENCE).await;
    let (problems, _) = verify(&ledger.lock().unwrap(), &log);
    assert_no_problems(CYCLES, &problems);

    tokio::task::block_in_place(|| server.kill9());
    eprintln!("crash test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_records_survive_kill_9_exactly_once_and_in_order() {
    tokio::time::timeout(TEST_TIMEOUT, run())
        .await
        .expect("the crash test timed out");
}
