//! `millrace bench deliver`: delivery throughput (NDJSON and Parquet+zstd) under the ingest
//! load, and freshness: time from PutRecord acknowledgement to the record being readable in
//! the lake, with buffer intervals of 0 and 1 s. Every figure comes from a real `millrace up`
//! child process with a `[[delivery]]` into a local lake.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;

use super::{Load, LocalServer, call, write_load};

#[derive(Debug, serde::Serialize)]
struct Throughput {
    format: String,
    ingest_records_per_s: f64,
    delivered_records: u64,
    delivered_records_per_s: f64,
    delivered_mb_per_s: f64,
    caught_up_after_load_s: f64,
}

#[derive(Debug, serde::Serialize)]
struct Freshness {
    buffer_interval_secs: u64,
    records: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Args)]
pub struct BenchDeliverArgs {
    /// Seconds of write load for each throughput run.
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    /// Seconds of steady load for each freshness run.
    #[arg(long, default_value_t = 10.0)]
    pub freshness_seconds: f64,
    /// Records per second during freshness runs.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Write the results as JSON to this file too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub async fn deliver(args: BenchDeliverArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let mut throughput = Vec::new();
    for (label, format, compression) in [
        ("ndjson", "ndjson", "none"),
        ("parquet+zstd", "parquet", "zstd"),
    ] {
        eprintln!(
            "throughput, {label}: 4 clients x PutRecords of 500 x ~600 B for {}s",
            args.seconds
        );
        throughput.push(run_throughput(&http, label, format, compression, args.seconds).await?);
    }
    let mut freshness = Vec::new();
    for interval in [0u64, 1] {
        eprintln!(
            "freshness, interval {interval}s: {} records/s for {}s",
            args.rate, args.freshness_seconds
        );
        freshness.push(run_freshness(&http, interval, args.rate, args.freshness_seconds).await?);
    }

    println!(
        "{:<14} {:>14} {:>16} {:>12} {:>18}",
        "format", "ingest rec/s", "delivered rec/s", "lake MB/s", "caught up after s"
    );
    for t in &throughput {
        println!(
            "{:<14} {:>14.0} {:>16.0} {:>12.1} {:>18.2}",
            t.format,
            t.ingest_records_per_s,
            t.delivered_records_per_s,
            t.delivered_mb_per_s,
            t.caught_up_after_load_s
        );
    }
    println!(
        "{:<14} {:>10} {:>10} {:>10} {:>10}",
        "interval", "records", "p50 ms", "p99 ms", "max ms"
    );
    for f in &freshness {
        println!(
            "{:<14} {:>10} {:>10.1} {:>10.1} {:>10.1}",
            format!("{}s", f.buffer_interval_secs),
            f.records,
            f.p50_ms,
            f.p99_ms,
            f.max_ms
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&json!({"throughput": throughput, "freshness": freshness}))?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn write_config(
    dir: &Path,
    format: &str,
    compression: &str,
    interval: u64,
    size_mib: u64,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("bench-{}.toml", rand::random::<u32>()));
    std::fs::write(
        &path,
        format!(
            "[[stream]]\nname = \"bench\"\nshards = 4\n\n[[delivery]]\nname = \"bench\"\n\
             stream = \"bench\"\nformat = \"{format}\"\ncompression = \"{compression}\"\n\
             buffer_interval_secs = {interval}\nbuffer_size_mib = {size_mib}\n"
        ),
    )?;
    Ok(path)
}

async fn delivered(http: &reqwest::Client, admin: &str) -> anyhow::Result<(u64, u64)> {
    let body = http
        .get(format!("{admin}/status"))
        .send()
        .await?
        .bytes()
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let d = &v["deliveries"][0];
    Ok((
        d["records"].as_u64().unwrap_or(0),
        d["bytes"].as_u64().unwrap_or(0),
    ))
}

async fn run_throughput(
    http: &reqwest::Client,
    label: &str,
    format: &str,
    compression: &str,
    seconds: f64,
) -> anyhow::Result<Throughput> {
    let cfg = write_config(&std::env::temp_dir(), format, compression, 1, 64)?;
    let server = LocalServer::start(Some(&cfg))?;
    let started = Instant::now();
    let load = write_load(
        http,
        &server.url,
        "bench",
        &Load {
            clients: 4,
            seconds,
            batch: 500,
            record_bytes: 600,
        },
    )
    .await?;
    let load_end = Instant::now();
    let deadline = load_end + Duration::from_secs(300);
    let (records, bytes) = loop {
        let (r, b) = delivered(http, &server.admin).await?;
        if r >= load.written {
            break (r, b);
        }
        if Instant::now() > deadline {
            bail!(
                "{label}: delivery did not catch up: {r} of {} records in the lake",
                load.written
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let caught_up = Instant::now();
    let total = (caught_up - started).as_secs_f64();
    let _ = std::fs::remove_file(cfg);
    Ok(Throughput {
        format: label.to_owned(),
        ingest_records_per_s: load.written as f64 / load.seconds,
        delivered_records: records,
        delivered_records_per_s: records as f64 / total,
        delivered_mb_per_s: bytes as f64 / total / 1e6,
        caught_up_after_load_s: (caught_up - load_end).as_secs_f64(),
    })
}

async fn run_freshness(
    http: &reqwest::Client,
    interval: u64,
    rate: u64,
    seconds: f64,
) -> anyhow::Result<Freshness> {
    let cfg = write_config(&std::env::temp_dir(), "ndjson", "none", interval, 5)?;
    let server = LocalServer::start(Some(&cfg))?;
    let lake = server.dir.join("lake");
    // The watcher records when each record id first becomes readable in the lake.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::task::spawn_blocking({
        let lake = lake.clone();
        move || -> HashMap<String, Instant> {
            let mut seen_files = HashSet::new();
            let mut seen = HashMap::new();
            loop {
                scan_lake(&lake, &mut seen_files, &mut seen);
                if *stop_rx.borrow_and_update() {
                    scan_lake(&lake, &mut seen_files, &mut seen);
                    return seen;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    // Steady producer: batches every 20 ms, each record with a unique id.
    let per_batch = (rate / 50).max(1) as usize;
    let mut acked: HashMap<String, Instant> = HashMap::new();
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut n = 0u64;
    while Instant::now() < until {
        tick.tick().await;
        let ids: Vec<String> = (0..per_batch)
            .map(|i| format!("f-{}", n + i as u64))
            .collect();
        n += per_batch as u64;
        let records: Vec<_> = ids
            .iter()
            .map(|id| {
                let data = format!("{{\"id\":\"{id}\",\"pad\":\"{}\"}}", "x".repeat(500));
                json!({"Data": STANDARD.encode(data), "PartitionKey": id})
            })
            .collect();
        let body = serde_json::to_vec(&json!({"StreamName": "bench", "Records": records}))?;
        let resp = call(http, &server.url, "PutRecords", body).await?;
        let now = Instant::now();
        if resp["FailedRecordCount"].as_u64() != Some(0) {
            bail!("PutRecords failed: {resp}");
        }
        for id in ids {
            acked.insert(id, now);
        }
    }
    // Let the last records arrive, then stop the watcher.
    let settle = Instant::now() + Duration::from_secs(interval + 5);
    while Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(true);
    let seen = watcher.await?;
    let mut hist = Histogram::<u64>::new(3)?;
    let mut missing = 0;
    for (id, ack) in &acked {
        match seen.get(id) {
            // Readable before the client saw the acknowledgement counts as 0.
            Some(t) => hist.record(t.saturating_duration_since(*ack).as_micros() as u64)?,
            None => missing += 1,
        }
    }
    let _ = std::fs::remove_file(cfg);
    if missing > 0 {
        bail!("{missing} acknowledged records never appeared in the lake");
    }
    Ok(Freshness {
        buffer_interval_secs: interval,
        records: acked.len() as u64,
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: hist.max() as f64 / 1000.0,
    })
}

/// Reads every new object under `dir` and notes when each record id was first seen.
fn scan_lake(dir: &Path, seen_files: &mut HashSet<PathBuf>, seen: &mut HashMap<String, Instant>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            scan_lake(&path, seen_files, seen);
            continue;
        }
        let name = e.file_name();
        if name.to_string_lossy().starts_with(".tmp-") || seen_files.contains(&path) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let now = Instant::now();
        seen_files.insert(path);
        for line in text.lines() {
            if let Some(id) = line
                .strip_prefix("{\"id\":\"")
                .and_then(|r| r.split('"').next())
            {
                seen.entry(id.to_owned()).or_insert(now);
            }
        }
    }
}
