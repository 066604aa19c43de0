//! Limits of the store, end to end through the real binary.
//!
//! - A scored stream receiving a 1 MiB binary record: the scorer's error record fits the
//!   per-record limit (a truncated payload with the input's size and SHA-256), the error stream
//!   stays readable, and after kill -9 and a restart every acknowledged record is still there.
//! - A store of the default 512 shards opens, serves and restarts under an open-file limit of
//!   1,024 (and of 256), with descriptors bounded whatever the shard count.
//! - When the OS refuses a descriptor, the Kinesis API answers LimitExceededException (400),
//!   never InternalFailure (500), and serves again once descriptors are free.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use base64::Engine;
use common::kinesis::{Stored, client, iterator, read_all, read_from, shards, wait_active};
use common::{Server, ServerLogs, train_tiny};
use sha2::{Digest, Sha256};

/// Upper bound for anything that waits on the server.
const PATIENCE: Duration = Duration::from_secs(60);
const MIB: usize = 1024 * 1024;

/// Starts `up` on free ports with `extra` arguments, through `wrapper` (e.g. prlimit).
fn start(wrapper: &[&str], data: &Path, extra: &[&str], logs: &mut ServerLogs) -> Server {
    let mut args = vec![
        "--kinesis-addr",
        "127.0.0.1:0",
        "--admin-addr",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Server::start_wrapped(
        wrapper,
        data,
        args,
        None,
        &["kinesis"],
        PATIENCE,
        logs.next(),
    )
}

/// Descriptors the process holds open now.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// The soft open-file limit that leaves `pid` exactly `spare` descriptors. The limit bounds
/// descriptor numbers, not their count, and a new descriptor takes the lowest free number: so
/// the limit sits just above the `spare`-th free number, holes below the highest open one
/// included (a limit of count + spare would leave more where the numbers have holes).
fn limit_leaving(pid: u32, spare: usize) -> String {
    let open: std::collections::BTreeSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let last_free = (0u64..)
        .filter(|n| !open.contains(n))
        .nth(spare - 1)
        .expect("descriptor numbers are unbounded");
    (last_free + 1).to_string()
}

/// The process's (soft, hard) open-file limits.
fn nofile(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[3].to_owned(), words[4].to_owned())
}

/// Sets the soft open-file limit of a running process (the hard one is left).
fn set_soft_nofile(pid: u32, soft: &str) {
    let out = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={soft}:")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every record of `stream`, shard by shard in shard order; `None` while it does not exist.
async fn read_stream(client: &Client, stream: &str) -> Option<Vec<Stored>> {
    let listed = client.list_shards().stream_name(stream).send().await.ok()?;
    let ids: Vec<String> = listed
        .shards()
        .iter()
        .map(|s| s.shard_id().to_owned())
        .collect();
    let mut out = Vec::new();
    for id in ids {
        let it = iterator(client, stream, &id, ShardIteratorType::TrimHorizon, None).await;
        out.extend(read_from(client, &id, it, PATIENCE).await);
    }
    Some(out)
}

/// Puts one record per shard (routed by each shard's starting hash key), `tag` in its data;
/// per record, its shard's id and the sequence number or the error code.
async fn put_one_per_shard(
    client: &Client,
    stream: &str,
    shards: &[(String, String)],
    tag: &str,
) -> Vec<(String, Result<String, String>)> {
    let mut out = Vec::new();
    for chunk in shards.chunks(500) {
        let entries = chunk
            .iter()
            .map(|(id, start)| {
                PutRecordsRequestEntry::builder()
                    .partition_key("k")
                    .explicit_hash_key(start)
                    .data(Blob::new(format!("{tag} {id}")))
                    .build()
                    .unwrap()
            })
            .collect();
        let answer = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutRecords: {}", DisplayErrorContext(e)));
        for ((id, _), r) in chunk.iter().zip(answer.records()) {
            let result = match (r.shard_id(), r.sequence_number(), r.error_code()) {
                (Some(shard), Some(seq), None) => {
                    assert_eq!(shard, id, "record routed to another shard");
                    Ok(seq.to_owned())
                }
                _ => Err(format!(
                    "{}: {}",
                    r.error_code().unwrap_or("no code"),
                    r.error_message().unwrap_or_default()
                )),
            };
            out.push((id.clone(), result));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scored_one_mib_binary_record_leaves_a_readable_error_stream_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut logs = ServerLogs::new(dir.path().join("logs"));
    // A small model: which of two numbers is larger decides the label.
    train_tiny(&data, dir.path());
    let config = dir.path().join("millrace.toml");
    std::fs::write(
        &config,
        "[[stream]]\nname = \"in\"\nshards = 1\n\n\
         [[scoring]]\nstream = \"in\"\nmodel = \"m\"\nto_stream = \"preds\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let mut server = start(&[], &data, &["-c", config], &mut logs);
    let kinesis = client(server.url("kinesis")).await;
    wait_active(&kinesis, "in", 1, PATIENCE).await;

    // 1 MiB that is not UTF-8 (every byte has its high bit set, 0x80 alone included), then
    // records after it: two more the scorer refuses and two it scores.
    // 1 MiB with its one-byte key: the limit counts both.
    let big: Vec<u8> = (0..MIB - 1).map(|i| 0x80 | (i * 7 % 128) as u8).collect();
    let inputs: Vec<Vec<u8>> = vec![
        big.clone(),
        b"not json 1".to_vec(),
        br#"{"id":"a","x":0.9,"z":0.1}"#.to_vec(),
        b"not json 2".to_vec(),
        br#"{"id":"b","x":0.1,"z":0.9}"#.to_vec(),
    ];
    let mut seqs = Vec::new();
    for input in &inputs {
        let put = kinesis
            .put_record()
            .stream_name("in")
            .partition_key("k")
            .data(Blob::new(input.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutRecord: {}", DisplayErrorContext(e)));
        seqs.push(put.sequence_number().to_owned());
    }

    // The error stream answers GetRecords (it answered 500 when the scorer could write a
    // 1.4 MB record) and ends up with the three refused inputs.
    let deadline = Instant::now() + PATIENCE;
    let (errors, preds) = loop {
        let errors = read_stream(&kinesis, "preds-errors")
            .await
            .unwrap_or_default();
        let preds = read_stream(&kinesis, "preds").await.unwrap_or_default();
        if errors.len() >= 3 && preds.len() >= 2 {
            break (errors, preds);
        }
        assert!(
            Instant::now() < deadline,
            "the scorer did not answer every input: {} errors, {} predictions",
            errors.len(),
            preds.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((errors.len(), preds.len()), (3, 2));
    let parsed: Vec<serde_json::Value> = errors
        .iter()
        .map(|r| serde_json::from_slice(&r.data).unwrap())
        .collect();
    for r in &errors {
        assert!(r.data.len() + r.key.len() <= MIB, "{} bytes", r.data.len());
    }
    let of = |seq: &str| {
        parsed
            .iter()
            .find(|v| v["source_sequence"] == seq)
            .unwrap_or_else(|| panic!("no error record for {seq}: {parsed:?}"))
    };
    let big_err = of(&seqs[0]);
    assert_eq!(big_err["data_truncated"], true, "{}", big_err["error"]);
    assert_eq!(big_err["data_bytes"], MIB - 1);
    assert_eq!(
        big_err["data_sha256"],
        format!("{:x}", Sha256::digest(&big))
    );
    let kept = big_err["data_base64"].as_str().unwrap();
    let whole = base64::engine::general_purpose::STANDARD.encode(&big);
    assert!(whole.starts_with(kept));
    // As much of the input as fits: all but a few hundred bytes of the record's 1 MiB.
    assert!(kept.len() > MIB - 1024, "kept {} characters", kept.len());
    assert!(
        big_err["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let small_err = of(&seqs[1]);
    assert_eq!(small_err["data"], "not json 1");
    assert!(small_err.get("data_truncated").is_none());

    // kill -9 and a restart: every acknowledged record is still there, nothing was cut.
    let before: Vec<Vec<Stored>> = vec![read_stream(&kinesis, "in").await.unwrap(), errors, preds];
    assert_eq!(before[0].len(), inputs.len());
    server.kill9();
    let server = start(&[], &data, &["-c", config], &mut logs);
    let kinesis = client(server.url("kinesis")).await;
    for (stream, before) in ["in", "preds-errors", "preds"].iter().zip(&before) {
        let after = read_stream(&kinesis, stream).await.unwrap();
        assert!(after.len() >= before.len(), "{stream}: records lost");
        for (a, b) in after.iter().zip(before) {
            assert_eq!((&a.seq, &a.data), (&b.seq, &b.data), "{stream}");
        }
    }
    assert_eq!(server.log_count("recovery cut"), 0, "{}", server.log_tail());
}

/// `up` under `prlimit --nofile=LIMIT` creates a 512-shard stream, takes a record on every
/// shard, restarts after kill -9 under the same limit with every record there, and takes
/// records again. Returns the descriptors it held: idle, after writing, after the restart.
async fn serve_512_shards_under(limit: &str) -> (usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut logs = ServerLogs::new(dir.path().join("logs"));
    let wrapper = ["prlimit", limit];
    let mut server = start(&wrapper, &data, &[], &mut logs);
    let max = limit.rsplit(':').next().unwrap();
    assert_eq!(nofile(server.pid()), (max.to_owned(), max.to_owned()));
    let kinesis = client(server.url("kinesis")).await;
    kinesis
        .create_stream()
        .stream_name("wide")
        .shard_count(512)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStream of 512 shards: {}", DisplayErrorContext(e)));
    wait_active(&kinesis, "wide", 512, PATIENCE).await;
    let all = shards(&kinesis, "wide", 512).await;
    let idle = open_fds(server.pid());
    let acked = put_one_per_shard(&kinesis, "wide", &all, "first").await;
    for (shard, r) in &acked {
        assert!(r.is_ok(), "{shard}: {r:?}");
    }
    let written = open_fds(server.pid());
    // One descriptor per shard (or more) is what ran out at ~505 shards under 1,024.
    assert!(written < 512, "{written} descriptors open for 512 shards");

    server.kill9();
    let server = start(&wrapper, &data, &[], &mut logs);
    let restarted = open_fds(server.pid());
    let kinesis = client(server.url("kinesis")).await;
    let stored = read_all(&kinesis, "wide", &all, PATIENCE).await;
    for (shard, r) in &acked {
        let records = &stored[shard];
        assert_eq!(records.len(), 1, "{shard}");
        assert_eq!(&records[0].seq, r.as_ref().unwrap(), "{shard}");
        assert_eq!(records[0].data, format!("first {shard}").into_bytes());
    }
    for (shard, r) in put_one_per_shard(&kinesis, "wide", &all, "second").await {
        assert!(r.is_ok(), "{shard} after the restart: {r:?}");
    }
    (idle, written, restarted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_512_shard_store_opens_serves_and_restarts_under_1024_open_files() {
    let (idle, written, restarted) = serve_512_shards_under("--nofile=1024:1024").await;
    eprintln!(
        "descriptors of up with 512 shards under 1024: {idle} idle after CreateStream, \
         {written} after a record on every shard, {restarted} after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_512_shard_store_fits_a_hard_limit_of_256_open_files() {
    let (idle, written, restarted) = serve_512_shards_under("--nofile=256:256").await;
    eprintln!(
        "descriptors of up with 512 shards under 256: {idle} idle after CreateStream, \
         {written} after a record on every shard, {restarted} after the restart"
    );
    assert!(written < 256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_is_limit_exceeded_not_internal_failure() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut logs = ServerLogs::new(dir.path().join("logs"));
    let server = start(&[], &data, &[], &mut logs);
    let pid = server.pid();
    let kinesis = client(server.url("kinesis")).await;
    kinesis
        .create_stream()
        .stream_name("s")
        .shard_count(64)
        .send()
        .await
        .unwrap();
    wait_active(&kinesis, "s", 64, PATIENCE).await;
    let all = shards(&kinesis, "s", 64).await;

    // Two descriptors to spare, and then none: the OS refuses the next ones.
    let (soft, _) = nofile(pid);
    set_soft_nofile(pid, &limit_leaving(pid, 2));
    let first = put_one_per_shard(&kinesis, "s", &all, "first").await;
    for (shard, r) in &first {
        if let Err(e) = r {
            assert!(e.starts_with("LimitExceededException: "), "{shard}: {e}");
        }
    }
    // With no descriptor left the server may not even accept a new connection (the client
    // then sees the connection reset, no answer at all), or it closes a connection idle for a
    // second to free one and answers a request that raced onto it 503, retryable; what it
    // answers once a request runs must be the limit. (It used to close one idle for a moment:
    // the client's pooled connection, carrying this request, while the client raced a second
    // one, which became the next victim, try after try.) The client may have raced a second connection that
    // the server takes a while to get to, so the tries go on for a while.
    let deadline = Instant::now() + Duration::from_secs(20);
    let e = loop {
        let e = kinesis
            .create_stream()
            .stream_name("more")
            .shard_count(8)
            .send()
            .await
            .expect_err("CreateStream with no descriptor left");
        let retry = e.raw_response().is_none_or(|r| r.status().as_u16() == 503);
        if !retry || Instant::now() > deadline {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let status = e.raw_response().map(|r| r.status().as_u16());
    assert_eq!(
        (e.code(), status),
        (Some("LimitExceededException"), Some(400)),
        "{}",
        DisplayErrorContext(&e)
    );
    assert!(
        first.iter().any(|(_, r)| r.is_err()),
        "no record was refused with two descriptors to spare for 64 shards"
    );

    // Descriptors back: the same calls succeed, and nothing acknowledged was lost.
    set_soft_nofile(pid, &soft);
    kinesis
        .create_stream()
        .stream_name("more")
        .shard_count(8)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStream: {}", DisplayErrorContext(e)));
    let second = put_one_per_shard(&kinesis, "s", &all, "second").await;
    let stored = read_all(&kinesis, "s", &all, PATIENCE).await;
    for ((shard, r1), (_, r2)) in first.iter().zip(&second) {
        let r2 = r2.as_ref().unwrap_or_else(|e| panic!("{shard}: {e}"));
        let seqs: Vec<&String> = stored[shard].iter().map(|r| &r.seq).collect();
        match r1 {
            Ok(s1) => assert_eq!(seqs, vec![s1, r2], "{shard}"),
            Err(_) => assert_eq!(seqs, vec![r2], "{shard}"),
        }
    }
}

#[test]
fn up_raises_its_soft_open_file_limit_to_the_hard_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut logs = ServerLogs::new(dir.path().join("logs"));
    let server = Server::start_wrapped(
        &["prlimit", "--nofile=1024:4096"],
        &dir.path().join("data"),
        [
            "--kinesis-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ],
        Some("millrace_common=debug"),
        &["kinesis"],
        PATIENCE,
        logs.next(),
    );
    assert_eq!(nofile(server.pid()), ("4096".into(), "4096".into()));
    assert_eq!(
        server.log_count("raised the open-file limit to the hard limit"),
        1,
        "{}",
        server.log_tail()
    );
}
