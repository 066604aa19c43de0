//! `millrace bench queue`: Kinesis queues against the plain GetRecords path, in one run.
//!
//! 1. Throughput: a backlog of records on a 4-shard on-demand stream is drained by
//!    `--consumers` competing queue consumers (ReceiveQueueRecords of 10, then
//!    AcknowledgeQueueRecords of the batch, acknowledgements durable), and the same backlog
//!    by one GetRecords reader per shard, at Limit 10 (the queue's batch) and Limit 10000.
//! 2. Latency: records put one at a time on a fixed schedule, received by long-polling queue
//!    consumers, and by GetRecords readers polling without pause: time from each put's
//!    acknowledgement to its receipt (p50, p99).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::{LocalServer, call, create_stream};

#[derive(Debug, Args)]
pub struct BenchQueueArgs {
    /// Measure this endpoint instead of a fresh local server.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Records in the backlog each reader drains.
    #[arg(long, default_value_t = 100_000)]
    pub records: usize,
    /// Competing queue consumers (GetRecords uses one reader per shard).
    #[arg(long, default_value_t = 4)]
    pub consumers: usize,
    /// Shards of the benchmark stream.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    /// Approximate size of each record in bytes.
    #[arg(long, default_value_t = 300)]
    pub record_bytes: usize,
    /// Seconds of the latency phase, per path.
    #[arg(long, default_value_t = 10.0)]
    pub latency_seconds: f64,
    /// Records per second put during the latency phase.
    #[arg(long, default_value_t = 200.0)]
    pub latency_rate: f64,
    /// Write the results as JSON to this file too.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Drain {
    path: String,
    records: u64,
    seconds: f64,
    records_per_s: f64,
    call_p50_ms: f64,
    call_p99_ms: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Latency {
    path: String,
    records: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn json_call(http: &reqwest::Client, url: &str, op: &str, v: Value) -> anyhow::Result<Value> {
    call(http, url, op, serde_json::to_vec(&v)?).await
}

/// A stream of `shards` shards switched to ON_DEMAND (queues need one). Returns its ARN.
async fn on_demand_stream(
    http: &reqwest::Client,
    url: &str,
    stream: &str,
    shards: u32,
) -> anyhow::Result<String> {
    create_stream(http, url, stream, shards).await?;
    let d = json_call(
        http,
        url,
        "DescribeStreamSummary",
        json!({"StreamName": stream}),
    )
    .await?;
    let arn = d["StreamDescriptionSummary"]["StreamARN"]
        .as_str()
        .context("no StreamARN")?
        .to_owned();
    json_call(
        http,
        url,
        "UpdateStreamMode",
        json!({"StreamARN": arn, "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
    )
    .await?;
    Ok(arn)
}

async fn create_queue(
    http: &reqwest::Client,
    url: &str,
    name: &str,
    stream_arn: &str,
    start: &str,
) -> anyhow::Result<String> {
    let q = json_call(
        http,
        url,
        "CreateQueue",
        json!({
            "QueueName": name,
            "StreamConfigurationList": [{"StreamARN": stream_arn, "StartingPosition": {"Type": start}}],
            "QueueAttributes": {"VisibilityTimeoutSeconds": 300},
        }),
    )
    .await?;
    Ok(q["QueueDescription"]["QueueARN"]
        .as_str()
        .context("no QueueARN")?
        .to_owned())
}

/// Puts `n` records of about `bytes` bytes in PutRecords calls of 500.
async fn fill(
    http: &reqwest::Client,
    url: &str,
    stream: &str,
    n: usize,
    bytes: usize,
) -> anyhow::Result<()> {
    let pad = "x".repeat(bytes.saturating_sub(20));
    for start in (0..n).step_by(500) {
        let recs: Vec<Value> = (start..(start + 500).min(n))
            .map(|i| json!({"Data": STANDARD.encode(format!("{i:012}-{pad}")), "PartitionKey": format!("{i}")}))
            .collect();
        let r = json_call(
            http,
            url,
            "PutRecords",
            json!({"StreamName": stream, "Records": recs}),
        )
        .await?;
        if r["FailedRecordCount"].as_u64() != Some(0) {
            bail!(
                "PutRecords failed records while filling the backlog: {}",
                r["FailedRecordCount"]
            );
        }
    }
    Ok(())
}

fn handles(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .map(|r| json!({"ReceiptHandle": r["ReceiptHandle"]}))
        .collect()
}

/// Competing consumers drain the queue: receive 10, acknowledge them, until a long poll of
/// one second comes back empty.
async fn drain_queue(
    http: &reqwest::Client,
    url: &str,
    queue: &str,
    consumers: usize,
) -> anyhow::Result<Drain> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let (http, url, queue) = (http.clone(), url.to_owned(), queue.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let mut n = 0u64;
            let mut last = Instant::now();
            loop {
                let t = Instant::now();
                let r = json_call(
                    &http,
                    &url,
                    "ReceiveQueueRecords",
                    json!({"QueueARN": queue, "WaitTimeSeconds": 1}),
                )
                .await?;
                let recs = r["QueueRecords"].as_array().cloned().unwrap_or_default();
                if recs.is_empty() {
                    break;
                }
                let a = json_call(
                    &http,
                    &url,
                    "AcknowledgeQueueRecords",
                    json!({"QueueARN": queue, "Entries": handles(&recs)}),
                )
                .await?;
                hist.record(t.elapsed().as_micros() as u64).ok();
                let ok = a["Successful"].as_array().map_or(0, Vec::len);
                if ok != recs.len() {
                    bail!(
                        "acknowledged {ok} of {} records: {}",
                        recs.len(),
                        a["Failed"]
                    );
                }
                n += ok as u64;
                last = Instant::now();
            }
            anyhow::Ok((hist, n, last))
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let (mut records, mut end) = (0, started);
    for t in tasks {
        let (h, n, last) = t.await??;
        hist.add(h)?;
        records += n;
        end = end.max(last);
    }
    // The time to the last acknowledgement, not the final empty long poll.
    let seconds = (end - started).as_secs_f64();
    Ok(Drain {
        path: format!("queue: {consumers} consumers, receive 10 + acknowledge"),
        records,
        seconds,
        records_per_s: records as f64 / seconds.max(1e-9),
        call_p50_ms: ms(&hist, 0.5),
        call_p99_ms: ms(&hist, 0.99),
    })
}

async fn shard_ids(http: &reqwest::Client, url: &str, stream: &str) -> anyhow::Result<Vec<String>> {
    let s = json_call(http, url, "ListShards", json!({"StreamName": stream})).await?;
    Ok(s["Shards"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["ShardId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

async fn iterator(
    http: &reqwest::Client,
    url: &str,
    stream: &str,
    shard: &str,
    kind: &str,
) -> anyhow::Result<String> {
    let it = json_call(
        http,
        url,
        "GetShardIterator",
        json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": kind}),
    )
    .await?;
    Ok(it["ShardIterator"]
        .as_str()
        .context("no ShardIterator")?
        .to_owned())
}

/// One GetRecords reader per shard reads the backlog with `limit` records a call.
async fn drain_get_records(
    http: &reqwest::Client,
    url: &str,
    stream: &str,
    limit: usize,
    total: usize,
) -> anyhow::Result<Drain> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for shard in shard_ids(http, url, stream).await? {
        let (http, url, stream) = (http.clone(), url.to_owned(), stream.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut it = iterator(&http, &url, &stream, &shard, "TRIM_HORIZON").await?;
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let mut n = 0u64;
            loop {
                let t = Instant::now();
                let r = json_call(
                    &http,
                    &url,
                    "GetRecords",
                    json!({"ShardIterator": it, "Limit": limit}),
                )
                .await?;
                hist.record(t.elapsed().as_micros() as u64).ok();
                let got = r["Records"].as_array().map_or(0, Vec::len);
                n += got as u64;
                if got == 0 || r["MillisBehindLatest"] == 0 && got < limit {
                    break;
                }
                it = r["NextShardIterator"]
                    .as_str()
                    .context("no NextShardIterator")?
                    .to_owned();
            }
            anyhow::Ok((hist, n))
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let mut records = 0;
    for t in tasks {
        let (h, n) = t.await??;
        hist.add(h)?;
        records += n;
    }
    let seconds = started.elapsed().as_secs_f64();
    if records as usize != total {
        bail!("GetRecords read {records} records, the backlog has {total}");
    }
    Ok(Drain {
        path: format!("GetRecords: 1 reader a shard, Limit {limit}"),
        records,
        seconds,
        records_per_s: records as f64 / seconds.max(1e-9),
        call_p50_ms: ms(&hist, 0.5),
        call_p99_ms: ms(&hist, 0.99),
    })
}

/// Microseconds since `epoch`, as a record carries its put time.
fn stamp(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

fn latency_of(data_b64: &str, epoch: Instant) -> Option<u64> {
    let raw = STANDARD.decode(data_b64).ok()?;
    let t: u64 = std::str::from_utf8(&raw).ok()?.parse().ok()?;
    Some(stamp(epoch).saturating_sub(t))
}

/// Puts one record at a time on a fixed schedule; each carries the time its put was
/// acknowledged... approximately: the time just before the call, plus half the call.
async fn paced_puts(
    http: reqwest::Client,
    url: String,
    stream: String,
    epoch: Instant,
    rate: f64,
    seconds: f64,
) -> anyhow::Result<u64> {
    let gap = Duration::from_secs_f64(1.0 / rate);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut next = Instant::now();
    let mut n = 0;
    while Instant::now() < until {
        tokio::time::sleep_until(next.into()).await;
        next += gap;
        let data = STANDARD.encode(stamp(epoch).to_string());
        json_call(
            &http,
            &url,
            "PutRecord",
            json!({"StreamName": stream, "Data": data, "PartitionKey": format!("{n}")}),
        )
        .await?;
        n += 1;
    }
    Ok(n)
}

/// Long-polling queue consumers receive (and acknowledge) the paced records.
async fn queue_latency(
    http: &reqwest::Client,
    url: &str,
    stream: &str,
    queue: &str,
    args: &BenchQueueArgs,
) -> anyhow::Result<Latency> {
    let epoch = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..args.consumers {
        let (http, url, queue, stop) =
            (http.clone(), url.to_owned(), queue.to_owned(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = json_call(
                    &http,
                    &url,
                    "ReceiveQueueRecords",
                    json!({"QueueARN": queue, "WaitTimeSeconds": 2}),
                )
                .await?;
                let recs = r["QueueRecords"].as_array().cloned().unwrap_or_default();
                for rec in &recs {
                    if let Some(us) = rec["Data"].as_str().and_then(|d| latency_of(d, epoch)) {
                        hist.record(us).ok();
                    }
                }
                if !recs.is_empty() {
                    json_call(
                        &http,
                        &url,
                        "AcknowledgeQueueRecords",
                        json!({"QueueARN": queue, "Entries": handles(&recs)}),
                    )
                    .await?;
                }
            }
            anyhow::Ok(hist)
        }));
    }
    let path = format!("queue: {} consumers long-polling", args.consumers);
    measure_readers(http, url, stream, args, epoch, &stop, tasks, path).await
}

/// GetRecords readers (one a shard) polling without pause read the paced records.
async fn get_records_latency(
    http: &reqwest::Client,
    url: &str,
    stream: &str,
    args: &BenchQueueArgs,
) -> anyhow::Result<Latency> {
    let epoch = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for shard in shard_ids(http, url, stream).await? {
        let (http, url, stream, stop) = (
            http.clone(),
            url.to_owned(),
            stream.to_owned(),
            stop.clone(),
        );
        let mut it = iterator(&http, &url, &stream, &shard, "LATEST").await?;
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = json_call(&http, &url, "GetRecords", json!({"ShardIterator": it})).await?;
                for rec in r["Records"].as_array().into_iter().flatten() {
                    if let Some(us) = rec["Data"].as_str().and_then(|d| latency_of(d, epoch)) {
                        hist.record(us).ok();
                    }
                }
                it = r["NextShardIterator"]
                    .as_str()
                    .context("no NextShardIterator")?
                    .to_owned();
            }
            anyhow::Ok(hist)
        }));
    }
    let path = "GetRecords: 1 reader a shard, polling without pause".to_owned();
    measure_readers(http, url, stream, args, epoch, &stop, tasks, path).await
}

/// Readers each returning a histogram of put → receipt latencies, running until `stop`.
type Readers = Vec<tokio::task::JoinHandle<anyhow::Result<Histogram<u64>>>>;

/// The paced puts while `readers` run, then the readers stopped and their latencies merged;
/// fails unless every record put was received once.
#[allow(clippy::too_many_arguments)]
async fn measure_readers(
    http: &reqwest::Client,
    url: &str,
    stream: &str,
    args: &BenchQueueArgs,
    epoch: Instant,
    stop: &std::sync::atomic::AtomicBool,
    readers: Readers,
    path: String,
) -> anyhow::Result<Latency> {
    let sent = paced_puts(
        http.clone(),
        url.to_owned(),
        stream.to_owned(),
        epoch,
        args.latency_rate,
        args.latency_seconds,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new(3)?;
    for t in readers {
        hist.add(t.await??)?;
    }
    if hist.len() != sent {
        bail!("{path}: received {} of {sent} records", hist.len());
    }
    Ok(Latency {
        path,
        records: hist.len(),
        p50_ms: ms(&hist, 0.5),
        p99_ms: ms(&hist, 0.99),
        max_ms: hist.max() as f64 / 1000.0,
    })
}

pub async fn queue(args: BenchQueueArgs) -> anyhow::Result<()> {
    let server = match &args.endpoint_url {
        Some(_) => None,
        None => Some(LocalServer::start(None)?),
    };
    let url = args
        .endpoint_url
        .clone()
        .or_else(|| server.as_ref().map(|s| s.url.clone()))
        .expect("a target");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.consumers * 2 + 8)
        .build()?;
    let stream = format!("qbench-{:08x}", rand::random::<u32>());
    let arn = on_demand_stream(&http, &url, &stream, args.shards).await?;
    eprintln!(
        "filling {stream} with {} records of ~{} B",
        args.records, args.record_bytes
    );
    fill(&http, &url, &stream, args.records, args.record_bytes).await?;
    let q = create_queue(
        &http,
        &url,
        &format!("{stream}-drain"),
        &arn,
        "TRIM_HORIZON",
    )
    .await?;
    let mut drains = vec![drain_queue(&http, &url, &q, args.consumers).await?];
    if drains[0].records as usize != args.records {
        bail!(
            "the queue consumers acknowledged {} of {} records",
            drains[0].records,
            args.records
        );
    }
    for limit in [10, 10_000] {
        drains.push(drain_get_records(&http, &url, &stream, limit, args.records).await?);
    }
    println!(
        "{:<48} {:>9} {:>8} {:>12} {:>10} {:>10}",
        "drain a backlog", "records", "seconds", "records/s", "call p50", "call p99"
    );
    for d in &drains {
        println!(
            "{:<48} {:>9} {:>8.2} {:>12.0} {:>8.2}ms {:>8.2}ms",
            d.path, d.records, d.seconds, d.records_per_s, d.call_p50_ms, d.call_p99_ms
        );
    }
    println!(
        "ratio queue/GetRecords(Limit 10): {:.2}x; queue/GetRecords(Limit 10000): {:.2}x",
        drains[0].records_per_s / drains[1].records_per_s.max(1e-9),
        drains[0].records_per_s / drains[2].records_per_s.max(1e-9)
    );

    let lat_stream = format!("{stream}-lat");
    let lat_arn = on_demand_stream(&http, &url, &lat_stream, args.shards).await?;
    let lq = create_queue(
        &http,
        &url,
        &format!("{stream}-latency"),
        &lat_arn,
        "LATEST",
    )
    .await?;
    eprintln!(
        "latency: {} records/s for {}s per path",
        args.latency_rate, args.latency_seconds
    );
    let lat = vec![
        queue_latency(&http, &url, &lat_stream, &lq, &args).await?,
        get_records_latency(&http, &url, &lat_stream, &args).await?,
    ];
    println!(
        "{:<48} {:>9} {:>10} {:>10} {:>10}",
        "put acknowledged → received", "records", "p50", "p99", "max"
    );
    for l in &lat {
        println!(
            "{:<48} {:>9} {:>8.2}ms {:>8.2}ms {:>8.2}ms",
            l.path, l.records, l.p50_ms, l.p99_ms, l.max_ms
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&json!({"drain": drains, "latency": lat}))?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    drop(server);
    Ok(())
}
