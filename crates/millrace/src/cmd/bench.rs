//! `millrace bench ingest`: the ingest benchmark of the stream stage.
//!
//! Clients send pre-encoded PutRecords bodies over plain HTTP so the client side costs little
//! and the same load hits every target (millrace and any peer such as kinesalite).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::cli::BenchIngestArgs;

#[derive(Debug, Clone, serde::Serialize)]
struct Outcome {
    target: String,
    records_written: u64,
    bytes_written: u64,
    failed_records: u64,
    write_seconds: f64,
    write_records_per_s: f64,
    write_mb_per_s: f64,
    put_p50_ms: f64,
    put_p99_ms: f64,
    records_read: u64,
    read_seconds: f64,
    read_records_per_s: f64,
    read_mb_per_s: f64,
}

pub async fn ingest(args: BenchIngestArgs) -> anyhow::Result<()> {
    let mut server = None;
    let mut targets = Vec::new();
    match &args.endpoint_url {
        Some(url) => targets.push(("target".to_owned(), url.clone())),
        None => {
            let s = LocalServer::start()?;
            eprintln!(
                "started millrace up at {} (data in {})",
                s.url,
                s.dir.display()
            );
            targets.push(("millrace".to_owned(), s.url.clone()));
            server = Some(s);
        }
    }
    for p in &args.peers {
        let (name, url) = p
            .split_once('=')
            .with_context(|| format!("--peer {p:?}: expected NAME=URL"))?;
        targets.push((name.to_owned(), url.to_owned()));
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients * 2)
        .build()?;
    let mut results = Vec::new();
    for (name, url) in &targets {
        eprintln!(
            "{name}: {} clients x PutRecords of {} x ~{} B records into {} shards for {}s",
            args.clients, args.batch, args.record_bytes, args.shards, args.seconds
        );
        let r = run_target(&http, name, url, &args)
            .await
            .with_context(|| format!("benchmarking {name} at {url}"))?;
        results.push(r);
    }
    drop(server);

    println!(
        "{:<12} {:>12} {:>9} {:>9} {:>9} {:>12} {:>9} {:>8}",
        "target",
        "write rec/s",
        "write MB/s",
        "p50 ms",
        "p99 ms",
        "read rec/s",
        "read MB/s",
        "failed"
    );
    for r in &results {
        println!(
            "{:<12} {:>12.0} {:>9.1} {:>9.2} {:>9.2} {:>12.0} {:>9.1} {:>8}",
            r.target,
            r.write_records_per_s,
            r.write_mb_per_s,
            r.put_p50_ms,
            r.put_p99_ms,
            r.read_records_per_s,
            r.read_mb_per_s,
            r.failed_records
        );
    }
    if let Some((first, peers)) = results.split_first() {
        for p in peers {
            println!(
                "ratio {}/{}: write {:.1}x, read {:.1}x",
                first.target,
                p.target,
                first.write_records_per_s / p.write_records_per_s.max(1e-9),
                first.read_records_per_s / p.read_records_per_s.max(1e-9)
            );
        }
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    for r in &results {
        if r.records_read != r.records_written {
            bail!(
                "{}: wrote {} acknowledged records but read back {}",
                r.target,
                r.records_written,
                r.records_read
            );
        }
    }
    Ok(())
}

/// A `millrace up` child process on a free port with a throwaway data directory.
struct LocalServer {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl LocalServer {
    fn start() -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("millrace-bench-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)?;
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--data-dir")
            .arg(&dir)
            .args(["up", "--kinesis-addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting millrace up")?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("kinesis="))
            .with_context(|| format!("unexpected ready line from millrace up: {line:?}"))?
            .to_owned();
        Ok(Self { child, url, dir })
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn call(http: &reqwest::Client, url: &str, op: &str, body: Vec<u8>) -> anyhow::Result<Value> {
    let resp = http
        .post(url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("Kinesis_20131202.{op}"))
        .header("x-amz-date", "20261125T120000Z")
        // Emulators check that a SigV4 header is present; nobody verifies it.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=bench/20261125/us-east-1/kinesis/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00",
        )
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        bail!(
            "{op} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    if bytes.is_empty() {
        // Operations without output may answer with an empty body (kinesalite does).
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{op}: response is not JSON"))
}

async fn run_target(
    http: &reqwest::Client,
    name: &str,
    url: &str,
    args: &BenchIngestArgs,
) -> anyhow::Result<Outcome> {
    let stream = format!("bench-{:08x}", rand::random::<u32>());
    call(
        http,
        url,
        "CreateStream",
        serde_json::to_vec(&json!({"StreamName": stream, "ShardCount": args.shards}))?,
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = call(
            http,
            url,
            "DescribeStreamSummary",
            serde_json::to_vec(&json!({"StreamName": stream}))?,
        )
        .await?;
        if d["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE" {
            break;
        }
        if Instant::now() > deadline {
            bail!("stream {stream} did not become ACTIVE");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Pre-encoded bodies: distinct random partition keys, churn-like JSON padded to size.
    let bodies: Arc<Vec<(Vec<u8>, u64)>> = Arc::new(
        (0..16)
            .map(|b| make_body(&stream, args.batch, args.record_bytes, b))
            .collect(),
    );
    let until = Instant::now() + Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let http = http.clone();
        let url = url.to_owned();
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let (mut ok, mut bytes, mut failed) = (0u64, 0u64, 0u64);
            let mut i = c;
            while Instant::now() < until {
                let (body, data_bytes) = &bodies[i % bodies.len()];
                i += 1;
                let t = Instant::now();
                let resp = call(&http, &url, "PutRecords", body.clone()).await?;
                hist.record(t.elapsed().as_micros() as u64).ok();
                let n = resp["Records"].as_array().map(|a| a.len()).unwrap_or(0) as u64;
                let f = resp["FailedRecordCount"].as_u64().unwrap_or(n);
                ok += n - f;
                failed += f;
                bytes += data_bytes * (n - f) / n.max(1);
            }
            anyhow::Ok((hist, ok, bytes, failed))
        }));
    }
    let mut hist = Histogram::<u64>::new(3)?;
    let (mut written, mut bytes_written, mut failed) = (0, 0, 0);
    for t in tasks {
        let (h, ok, b, f) = t.await??;
        hist.add(h)?;
        written += ok;
        bytes_written += b;
        failed += f;
    }
    let write_seconds = started.elapsed().as_secs_f64();
    eprintln!("{name}: wrote {written} records, reading them back");

    let shards = call(
        http,
        url,
        "ListShards",
        serde_json::to_vec(&json!({"StreamName": stream}))?,
    )
    .await?;
    let shard_ids: Vec<String> = shards["Shards"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["ShardId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let read_started = Instant::now();
    let mut readers = Vec::new();
    for shard in shard_ids {
        let http = http.clone();
        let url = url.to_owned();
        let stream = stream.clone();
        readers.push(tokio::spawn(async move {
            let it = call(
                &http,
                &url,
                "GetShardIterator",
                serde_json::to_vec(&json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}))?,
            )
            .await?;
            let mut iter = it["ShardIterator"].as_str().unwrap_or_default().to_owned();
            let (mut n, mut bytes) = (0u64, 0u64);
            loop {
                let r = call(
                    &http,
                    &url,
                    "GetRecords",
                    serde_json::to_vec(&json!({"ShardIterator": iter, "Limit": 10000}))?,
                )
                .await?;
                let recs = r["Records"].as_array().cloned().unwrap_or_default();
                for rec in &recs {
                    let data = STANDARD.decode(rec["Data"].as_str().unwrap_or_default())?;
                    bytes += data.len() as u64;
                }
                n += recs.len() as u64;
                match r["NextShardIterator"].as_str() {
                    Some(next) if !recs.is_empty() => iter = next.to_owned(),
                    _ => break,
                }
            }
            anyhow::Ok((n, bytes))
        }));
    }
    let (mut read, mut bytes_read) = (0u64, 0u64);
    for r in readers {
        let (n, b) = r.await??;
        read += n;
        bytes_read += b;
    }
    let read_seconds = read_started.elapsed().as_secs_f64();
    let _ = call(
        http,
        url,
        "DeleteStream",
        serde_json::to_vec(&json!({"StreamName": stream}))?,
    )
    .await;
    Ok(Outcome {
        target: name.to_owned(),
        records_written: written,
        bytes_written,
        failed_records: failed,
        write_seconds,
        write_records_per_s: written as f64 / write_seconds,
        write_mb_per_s: bytes_written as f64 / write_seconds / 1e6,
        put_p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
        put_p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        records_read: read,
        read_seconds,
        read_records_per_s: read as f64 / read_seconds,
        read_mb_per_s: bytes_read as f64 / read_seconds / 1e6,
    })
}

/// A PutRecords JSON body and the number of data bytes it carries.
fn make_body(stream: &str, records: usize, record_bytes: usize, salt: usize) -> (Vec<u8>, u64) {
    let mut data_bytes = 0u64;
    let recs: Vec<Value> = (0..records)
        .map(|i| {
            let mut rec = format!(
                r#"{{"customerID":"{:04}-{:05}","gender":"Female","SeniorCitizen":"0","tenure":"{}","Contract":"Month-to-month","MonthlyCharges":"70.35","TotalCharges":"1397.475","Churn":"No","pad":""#,
                salt,
                i,
                i % 72
            );
            let pad = record_bytes.saturating_sub(rec.len() + 2);
            rec.push_str(&"x".repeat(pad));
            rec.push_str("\"}");
            data_bytes += rec.len() as u64;
            json!({
                "Data": STANDARD.encode(rec.as_bytes()),
                "PartitionKey": format!("{:032x}", rand::random::<u128>()),
            })
        })
        .collect();
    let body = serde_json::to_vec(&json!({"StreamName": stream, "Records": recs})).expect("json");
    (body, data_bytes)
}
