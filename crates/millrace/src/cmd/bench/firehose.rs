//! `millrace bench firehose`: PutRecordBatch into a DirectPut delivery stream that delivers
//! one record per line (AppendDelimiterToRecord) at buffer interval 0, against peers in the
//! same run.
//!
//! `--clients` clients each send batches of `--batch` records of about `--record-bytes` bytes
//! (JSON with a unique id) until `--records` are accepted in all; the figure is accepted
//! records per second (wall clock, first send to last acknowledgement) and the PutRecordBatch
//! call latency. For millrace (`millrace up` started here, the lake a local folder) a watcher
//! also reads every object as it is committed (the lake folder polled every 2 ms) and records,
//! for each record, the time from its batch's acknowledgement to its object's commit
//! (freshness; 0 when the object was there before the acknowledgement came back). A peer
//! (`--peer NAME=URL`, e.g. moto's server) is measured with the same load into a delivery
//! stream on its bucket `--peer-bucket`, created through its own Firehose API.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::{LocalServer, post_json};

const STREAM: &str = "bench-firehose";

#[derive(Debug, Args)]
pub struct BenchFirehoseArgs {
    /// Records accepted per target.
    #[arg(long, default_value_t = 200_000)]
    pub records: usize,
    /// Concurrent PutRecordBatch clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Records per PutRecordBatch.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Approximate size of each record in bytes.
    #[arg(long, default_value_t = 600)]
    pub record_bytes: usize,
    /// A peer's Firehose API: NAME=URL (e.g. moto=http://127.0.0.1:5000).
    #[arg(long)]
    pub peer: Vec<String>,
    /// The S3 bucket (existing) peers deliver into.
    #[arg(long, default_value = "bench-firehose")]
    pub peer_bucket: String,
    /// Also run the same clients against a server that answers every call with success
    /// without reading the records: the most records/s the load generator itself can send
    /// on this machine, the ceiling of any figure the run reports.
    #[arg(long)]
    pub ceiling: bool,
    /// Write the results as JSON to this file too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Outcome {
    target: String,
    records: u64,
    seconds: f64,
    records_per_s: f64,
    call_p50_ms: f64,
    call_p99_ms: f64,
    /// Acknowledgement to object committed (millrace only).
    freshness_p50_ms: Option<f64>,
    freshness_p99_ms: Option<f64>,
    freshness_max_ms: Option<f64>,
    objects: Option<usize>,
}

pub async fn firehose(args: BenchFirehoseArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.batch > 500 || args.clients == 0 {
        bail!("--batch must be 1..=500 and --clients at least 1");
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let mut results = Vec::new();
    {
        let server = LocalServer::start(None)?;
        let url = server.url.clone();
        create(&http, &url, "arn:aws:s3:::lake").await?;
        let lake = server.dir.join("lake");
        eprintln!(
            "millrace: {} records from {} clients…",
            args.records, args.clients
        );
        results.push(run_target(&http, "millrace", &url, &args, Some(&lake)).await?);
    }
    for peer in &args.peer {
        let (name, url) = peer
            .split_once('=')
            .with_context(|| format!("--peer {peer}: expected NAME=URL"))?;
        create(&http, url, &format!("arn:aws:s3:::{}", args.peer_bucket)).await?;
        eprintln!(
            "{name}: {} records from {} clients…",
            args.records, args.clients
        );
        results.push(run_target(&http, name, url, &args, None).await?);
    }
    if args.ceiling {
        let url = null_server().await?;
        eprintln!("the load generator alone (a server that only answers)…");
        results.push(run_target(&http, "ceiling", &url, &args, None).await?);
    }
    print_table(&results);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn fh(http: &reqwest::Client, url: &str, op: &str, body: Value) -> anyhow::Result<Value> {
    let bytes = post_json(
        http,
        url,
        &format!("Firehose_20150804.{op}"),
        serde_json::to_vec(&body)?,
    )
    .await?;
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{op}: response is not JSON"))
}

/// A DirectPut delivery stream writing one record per line (AppendDelimiterToRecord) at
/// interval 0, ACTIVE.
async fn create(http: &reqwest::Client, url: &str, bucket_arn: &str) -> anyhow::Result<()> {
    fh(
        http,
        url,
        "CreateDeliveryStream",
        json!({
            "DeliveryStreamName": STREAM,
            "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": "arn:aws:iam::000000000000:role/bench",
                "BucketARN": bucket_arn,
                "Prefix": "bench/",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
                "ProcessingConfiguration": {"Enabled": true, "Processors": [
                    {"Type": "AppendDelimiterToRecord"}]}
            }
        }),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = fh(
            http,
            url,
            "DescribeDeliveryStream",
            json!({"DeliveryStreamName": STREAM}),
        )
        .await?;
        if d["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("delivery stream {STREAM} at {url} did not become ACTIVE: {d}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One PutRecordBatch body of `n` records with ids from `first`, written straight into one
/// buffer: the load generator shares the machine with the server, so it builds no value tree.
fn batch_body(first: u64, n: usize, record_bytes: usize) -> Vec<u8> {
    use std::fmt::Write;
    let mut out = String::with_capacity(64 + n * (record_bytes * 4 / 3 + 16));
    write!(out, r#"{{"DeliveryStreamName":"{STREAM}","Records":["#).expect("string");
    let mut rec = String::with_capacity(record_bytes + 32);
    let padding = "x".repeat(record_bytes);
    for i in 0..n as u64 {
        rec.clear();
        write!(rec, r#"{{"id":{},"pad":""#, first + i).expect("string");
        let pad = record_bytes.saturating_sub(rec.len() + 2);
        rec.push_str(&padding[..pad]);
        rec.push_str("\"}");
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"Data":""#);
        STANDARD.encode_string(rec.as_bytes(), &mut out);
        out.push_str(r#""}"#);
    }
    out.push_str("]}");
    out.into_bytes()
}

/// What a load client needs of a PutRecordBatch reply (the per-record entries are skipped).
#[derive(serde::Deserialize)]
struct BatchReply {
    #[serde(rename = "FailedPutCount")]
    failed: Option<u64>,
}

/// The id of one delivered record: its line starts `{"id":N,` as [`batch_body`] wrote it
/// (read without a JSON parser, so the watcher takes little of the machine it measures).
fn record_id(line: &[u8]) -> anyhow::Result<u64> {
    let digits = line
        .strip_prefix(br#"{"id":"#)
        .map(|rest| rest.iter().take_while(|b| b.is_ascii_digit()).count())
        .filter(|&n| n > 0)
        .with_context(|| {
            format!(
                "a delivered record that is not one the bench sent: {}",
                String::from_utf8_lossy(&line[..line.len().min(80)])
            )
        })?;
    Ok(std::str::from_utf8(&line[6..6 + digits])?.parse()?)
}

/// A server on 127.0.0.1 that takes every request's body and answers a PutRecordBatch
/// success, in this process (on the clients' runtime, as a target shares their machine).
async fn null_server() -> anyhow::Result<String> {
    let app = axum::Router::new()
        .fallback(|_body: bytes::Bytes| async {
            (
                [("content-type", "application/x-amz-json-1.1")],
                r#"{"FailedPutCount":0,"Encrypted":false,"RequestResponses":[]}"#,
            )
        })
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// When each batch (by its first id) was acknowledged, since the run began.
type Acks = Arc<std::sync::Mutex<HashMap<u64, Duration>>>;

async fn run_target(
    http: &reqwest::Client,
    name: &str,
    url: &str,
    args: &BenchFirehoseArgs,
    lake: Option<&Path>,
) -> anyhow::Result<Outcome> {
    let batches = args.records.div_ceil(args.batch) as u64;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let acks: Acks = Arc::default();
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = lake.map(|l| {
        let (l, acks, stop) = (l.join("bench"), acks.clone(), stop.clone());
        let (batch, expected) = (args.batch as u64, batches * args.batch as u64);
        tokio::task::spawn_blocking(move || watch(&l, started, (batch, expected), &acks, &stop))
    });
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (http, url, next, acks) = (http.clone(), url.to_owned(), next.clone(), acks.clone());
        let (batch, record_bytes) = (args.batch, args.record_bytes);
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let mut accepted = 0u64;
            loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let body = batch_body(b * batch as u64, batch, record_bytes);
                let t = Instant::now();
                let reply =
                    post_json(&http, &url, "Firehose_20150804.PutRecordBatch", body).await?;
                hist.record(t.elapsed().as_micros() as u64).ok();
                acks.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(b * batch as u64, started.elapsed());
                let r: BatchReply = serde_json::from_slice(&reply)?;
                let failed = r.failed.unwrap_or(batch as u64);
                if failed > 0 {
                    bail!(
                        "PutRecordBatch: {failed} records failed: {}",
                        String::from_utf8_lossy(&reply)
                    );
                }
                accepted += batch as u64;
            }
            anyhow::Ok((hist, accepted))
        }));
    }
    let mut calls = Histogram::<u64>::new(3)?;
    let mut accepted = 0;
    for t in tasks {
        let (h, n) = t.await??;
        calls.add(h)?;
        accepted += n;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut outcome = Outcome {
        target: name.to_owned(),
        records: accepted,
        seconds,
        records_per_s: accepted as f64 / seconds,
        call_p50_ms: calls.value_at_quantile(0.5) as f64 / 1000.0,
        call_p99_ms: calls.value_at_quantile(0.99) as f64 / 1000.0,
        freshness_p50_ms: None,
        freshness_p99_ms: None,
        freshness_max_ms: None,
        objects: None,
    };
    if let Some(mut w) = watcher {
        // Until every record is in an object, at most 60 s more.
        let waited = tokio::time::timeout(Duration::from_secs(60), &mut w).await;
        let (fresh, objects, seen) = match waited {
            Ok(r) => r??,
            Err(_) => {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                w.await??
            }
        };
        if seen != accepted {
            bail!("{seen} of {accepted} accepted records reached the lake within 60 s");
        }
        outcome.freshness_p50_ms = Some(fresh.value_at_quantile(0.5) as f64 / 1000.0);
        outcome.freshness_p99_ms = Some(fresh.value_at_quantile(0.99) as f64 / 1000.0);
        outcome.freshness_max_ms = Some(fresh.max() as f64 / 1000.0);
        outcome.objects = Some(objects);
    }
    Ok(outcome)
}

/// Polls `dir` every 2 ms for new objects until `expected` records are seen (or `stop`):
/// the freshness of each record (commit seen − its batch's acknowledgement), the objects and
/// the records seen.
fn watch(
    dir: &Path,
    started: Instant,
    (batch, expected): (u64, u64),
    acks: &Acks,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<(Histogram<u64>, usize, u64)> {
    let mut fresh = Histogram::<u64>::new(3)?;
    let mut seen_files = HashSet::new();
    // Records seen before their batch's acknowledgement came back: settled once it does.
    let mut early: Vec<(u64, Duration)> = Vec::new();
    let mut seen = 0u64;
    loop {
        let all_seen = seen >= expected && early.is_empty();
        if all_seen || stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let mut new = Vec::new();
        list_files(dir, &mut |p| {
            if !seen_files.contains(p) {
                new.push(p.to_owned());
            }
        });
        let now = started.elapsed();
        for path in new {
            let bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
            seen_files.insert(path);
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let id = record_id(line)?;
                early.push((id - id % batch, now));
                seen += 1;
            }
        }
        let acks_now = acks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        early.retain(|(first, at)| match acks_now.get(first) {
            Some(acked) => {
                fresh
                    .record(at.saturating_sub(*acked).as_micros() as u64)
                    .ok();
                false
            }
            None => true,
        });
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok((fresh, seen_files.len(), seen))
}

/// Every file under `dir` (the entry's type from the directory listing: no `stat` per file,
/// which at a poll every 2 ms would take a share of the machine being measured).
fn list_files(dir: &Path, f: &mut impl FnMut(&Path)) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            list_files(&p, f);
        } else if !e.file_name().to_string_lossy().starts_with('.') {
            f(&p);
        }
    }
}

fn print_table(results: &[Outcome]) {
    let base = results.first().map_or(1.0, |r| r.records_per_s);
    println!(
        "| target | records | accepted records/s | vs millrace | PutRecordBatch p50 / p99 ms | ack → object committed p50 / p99 / max ms | objects |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in results {
        let fresh = match (r.freshness_p50_ms, r.freshness_p99_ms, r.freshness_max_ms) {
            (Some(a), Some(b), Some(c)) => format!("{a:.1} / {b:.1} / {c:.1}"),
            _ => "–".into(),
        };
        println!(
            "| {} | {} | {:.0} | {:.3}× | {:.1} / {:.1} | {fresh} | {} |",
            r.target,
            r.records,
            r.records_per_s,
            r.records_per_s / base,
            r.call_p50_ms,
            r.call_p99_ms,
            r.objects.map_or("–".into(), |o| o.to_string())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_body_is_the_put_record_batch_json_and_its_records_carry_their_ids() {
        let body: Value = serde_json::from_slice(&batch_body(1_000, 3, 600)).unwrap();
        assert_eq!(body["DeliveryStreamName"], STREAM);
        let records = body["Records"].as_array().unwrap();
        assert_eq!(records.len(), 3);
        for (i, r) in records.iter().enumerate() {
            let data = STANDARD.decode(r["Data"].as_str().unwrap()).unwrap();
            assert_eq!(data.len(), 600);
            let v: Value = serde_json::from_slice(&data).unwrap();
            assert_eq!(v["id"], 1_000 + i as u64);
            assert_eq!(record_id(&data).unwrap(), 1_000 + i as u64);
        }
        assert!(record_id(br#"{"pad":"x","id":3}"#).is_err());
        assert!(record_id(br#"{"id":,"#).is_err());
    }
}
