//! `millrace bench ingest`: the ingest benchmark of the stream stage.
//!
//! Clients send pre-encoded PutRecords bodies so the client side costs little and the same
//! load hits every target (millrace and any peer such as kinesalite). Against a server under
//! `[auth]` each body's SHA-256 is taken once, when it is encoded, and every request is still
//! signed afresh over it: the server hashes every body it receives, as it must, while the
//! load clients, which share its two cores here, do not hash the same 400 KB again per call,
//! as clients on their own machines would not cost it anything.

use super::{CpuMeter, Load, LocalServer, call, create_stream, write_load};

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;

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
    /// CPU microseconds per record written, during the write load: the server's (a local
    /// server only) and the load clients' (this process).
    server_cpu_us_per_record: Option<f64>,
    client_cpu_us_per_record: Option<f64>,
}

#[derive(Debug, Args)]
pub struct BenchIngestArgs {
    /// Measure this endpoint instead of a fresh local server.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Another Kinesis API to measure with the same load, as NAME=URL (repeatable).
    #[arg(long = "peer")]
    pub peers: Vec<String>,
    /// Shards of the benchmark stream.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    /// Before the load, reshard the stream to this many open shards with UpdateShardCount
    /// (UNIFORM_SCALING), so the load runs on child shards (e.g. `--shards 4 --reshard-to 8`).
    #[arg(long)]
    pub reshard_to: Option<u32>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Seconds of write load.
    #[arg(long, default_value_t = 20.0)]
    pub seconds: f64,
    /// Records per PutRecords call.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Approximate size of each JSON record in bytes.
    #[arg(long, default_value_t = 600)]
    pub record_bytes: usize,
    /// Write the results as JSON to this file too.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also measure a second local server under `[auth] mode = "enforce"`, in the same run:
    /// every request signed with SigV4 (aws-sigv4, as the SDK does) and checked against an
    /// allow-all IAM policy. The ratio line is the cost of authentication.
    #[arg(long)]
    pub auth: bool,
    /// With --auth: that server also serves HTTPS (`[server] tls = true`, its self-signed
    /// certificate trusted by the load clients), so the ratio is the cost of both.
    #[arg(long, requires = "auth")]
    pub tls: bool,
    /// Also measure the local server on a stream encrypted at rest (StartStreamEncryption
    /// with alias/aws/kinesis before the load), in the same run: the ratio line is the cost of
    /// sealing every record with AES-256-GCM and opening it on read.
    #[arg(long, conflicts_with = "endpoint_url")]
    pub encrypt: bool,
    /// Measure every target this many times, on the same servers, each round in the order
    /// opposite to the last (so no target always goes first), then print each target's median
    /// and the median of the per-round ratios.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
}

pub async fn ingest(args: BenchIngestArgs) -> anyhow::Result<()> {
    let mut server = None;
    let mut targets = Vec::new();
    match &args.endpoint_url {
        Some(url) => targets.push(("target".to_owned(), url.clone(), false, None)),
        None => {
            let s = LocalServer::start(None)?;
            eprintln!(
                "started millrace up at {} (data in {})",
                s.url,
                s.dir.display()
            );
            targets.push(("millrace".to_owned(), s.url.clone(), false, Some(s.pid())));
            if args.encrypt {
                targets.push((
                    "millrace+sealed".to_owned(),
                    s.url.clone(),
                    true,
                    Some(s.pid()),
                ));
            }
            server = Some(s);
        }
    }
    let mut auth_server = None;
    let mut trust = None;
    if args.auth {
        let (s, url) = LocalServer::start_with_auth(args.tls)?;
        eprintln!(
            "started millrace up with [auth] mode = \"enforce\" at {}",
            s.url
        );
        let name = if args.tls {
            "millrace+auth+tls"
        } else {
            "millrace+auth"
        };
        targets.push((name.to_owned(), url, false, Some(s.pid())));
        if args.tls {
            let pem = std::fs::read(s.tls_cert()).context("reading the server's certificate")?;
            trust = Some(reqwest::Certificate::from_pem(&pem)?);
        }
        auth_server = Some(s);
    }
    for p in &args.peers {
        let (name, url) = p
            .split_once('=')
            .with_context(|| format!("--peer {p:?}: expected NAME=URL"))?;
        targets.push((name.to_owned(), url.to_owned(), false, None));
    }
    let mut http = reqwest::Client::builder().pool_max_idle_per_host(args.clients * 2);
    if let Some(cert) = trust {
        http = http.add_root_certificate(cert);
    }
    let http = http.build()?;
    let mut rounds: Vec<Vec<Outcome>> = Vec::new();
    for round in 0..args.rounds {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut results = vec![None; targets.len()];
        for i in order {
            let (name, url, encrypt, pid) = &targets[i];
            eprintln!(
                "{name}{}: {} clients x PutRecords of {} x ~{} B records into {} shards for {}s",
                round_label(round, args.rounds),
                args.clients,
                args.batch,
                args.record_bytes,
                args.reshard_to.unwrap_or(args.shards),
                args.seconds
            );
            let r = run_target(&http, (name, url, *pid), *encrypt, &args)
                .await
                .with_context(|| format!("benchmarking {name} at {url}"))?;
            results[i] = Some(r);
        }
        let results: Vec<Outcome> = results.into_iter().flatten().collect();
        if args.rounds > 1 {
            println!("round {}", round + 1);
        }
        print_results(&results);
        rounds.push(results);
    }
    drop(server);
    drop(auth_server);
    if args.rounds > 1 {
        print_medians(&rounds);
    }
    let results: Vec<Outcome> = rounds.into_iter().flatten().collect();
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

/// " (round R of N)" when there are several rounds.
fn round_label(round: u32, rounds: u32) -> String {
    if rounds > 1 {
        format!(" (round {} of {rounds})", round + 1)
    } else {
        String::new()
    }
}

/// One round's table, and each peer's ratio to the first target.
fn print_results(results: &[Outcome]) {
    println!(
        "{:<12} {:>12} {:>9} {:>9} {:>9} {:>12} {:>9} {:>8} {:>14} {:>14}",
        "target",
        "write rec/s",
        "write MB/s",
        "p50 ms",
        "p99 ms",
        "read rec/s",
        "read MB/s",
        "failed",
        "server µs/rec",
        "client µs/rec"
    );
    for r in results {
        println!(
            "{:<12} {:>12.0} {:>9.1} {:>9.2} {:>9.2} {:>12.0} {:>9.1} {:>8} {:>14} {:>14}",
            r.target,
            r.write_records_per_s,
            r.write_mb_per_s,
            r.put_p50_ms,
            r.put_p99_ms,
            r.read_records_per_s,
            r.read_mb_per_s,
            r.failed_records,
            micros(r.server_cpu_us_per_record),
            micros(r.client_cpu_us_per_record)
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
}

/// A CPU figure in µs with two decimals, `-` where it was not measured.
fn micros(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

/// Each target's median over the rounds, and the median of each peer's per-round cost
/// against the first target (1 - peer/first: what the peer's extra work costs).
fn print_medians(rounds: &[Vec<Outcome>]) {
    let targets = rounds.first().map_or(0, Vec::len);
    println!("medians over {} rounds", rounds.len());
    for t in 0..targets {
        let write = median(rounds.iter().map(|r| r[t].write_records_per_s));
        let read = median(rounds.iter().map(|r| r[t].read_records_per_s));
        print!(
            "{:<18} write {write:>10.0} rec/s, read {read:>10.0} rec/s",
            rounds[0][t].target
        );
        let cpu = |f: fn(&Outcome) -> Option<f64>| {
            let v: Vec<f64> = rounds.iter().filter_map(|r| f(&r[t])).collect();
            (v.len() == rounds.len()).then(|| median(v.into_iter()))
        };
        if let (Some(server), Some(client)) = (
            cpu(|o| o.server_cpu_us_per_record),
            cpu(|o| o.client_cpu_us_per_record),
        ) {
            print!(", CPU a record written: server {server:.2} µs, clients {client:.2} µs");
        }
        if t > 0 {
            let cost = |f: fn(&Outcome) -> f64| {
                median(
                    rounds
                        .iter()
                        .map(|r| 100.0 * (1.0 - f(&r[t]) / f(&r[0]).max(1e-9))),
                )
            };
            print!(
                "; cost against {}: write {:.1}%, read {:.1}%",
                rounds[0][0].target,
                cost(|o| o.write_records_per_s),
                cost(|o| o.read_records_per_s)
            );
            // What the extra CPU a record costs in throughput where the server and the
            // clients share the cores: less noisy than the rates, which move with the
            // machine's state from round to round.
            let total =
                |o: &Outcome| Some(o.server_cpu_us_per_record? + o.client_cpu_us_per_record?);
            let per_round: Option<Vec<f64>> = rounds
                .iter()
                .map(|r| Some(100.0 * (1.0 - total(&r[0])? / total(&r[t])?)))
                .collect();
            if let Some(v) = per_round {
                print!(
                    " (from CPU a record written: {:.1}%)",
                    median(v.into_iter())
                );
            }
        }
        println!();
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// UpdateShardCount to `target`, then waits until the stream is ACTIVE with that many open
/// shards.
async fn reshard(
    http: &reqwest::Client,
    url: &str,
    stream: &str,
    target: u32,
) -> anyhow::Result<()> {
    call(
        http,
        url,
        "UpdateShardCount",
        serde_json::to_vec(&json!({"StreamName": stream, "TargetShardCount": target, "ScalingType": "UNIFORM_SCALING"}))?,
    )
    .await?;
    for _ in 0..600 {
        let d = call(
            http,
            url,
            "DescribeStreamSummary",
            serde_json::to_vec(&json!({"StreamName": stream}))?,
        )
        .await?;
        let s = &d["StreamDescriptionSummary"];
        if s["StreamStatus"] == "ACTIVE" && s["OpenShardCount"] == target {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    bail!("{url}: stream {stream} did not reach {target} open shards within 60 s")
}

/// One target's load: `(name, url, the server's pid when it is a local child)`.
async fn run_target(
    http: &reqwest::Client,
    (name, url, pid): (&str, &str, Option<u32>),
    encrypt: bool,
    args: &BenchIngestArgs,
) -> anyhow::Result<Outcome> {
    let stream = format!("bench-{:08x}", rand::random::<u32>());
    create_stream(http, url, &stream, args.shards).await?;
    if encrypt {
        call(
            http,
            url,
            "StartStreamEncryption",
            serde_json::to_vec(&json!({"StreamName": stream, "EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}))?,
        )
        .await?;
    }
    if let Some(target) = args.reshard_to {
        reshard(http, url, &stream, target).await?;
    }
    let cpu = CpuMeter::start(pid);
    let load = write_load(
        http,
        url,
        &stream,
        &Load {
            clients: args.clients,
            seconds: args.seconds,
            batch: args.batch,
            record_bytes: args.record_bytes,
        },
    )
    .await?;
    let (written, bytes_written, failed, hist, write_seconds) = (
        load.written,
        load.bytes,
        load.failed,
        load.latency_us,
        load.seconds,
    );
    let (server_cpu, client_cpu) = cpu.per_record(written);
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
                let recs = r["Records"].as_array().map_or(&[][..], Vec::as_slice);
                for rec in recs {
                    let data =
                        millrace_common::base64::decode(rec["Data"].as_str().unwrap_or_default())?;
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
        server_cpu_us_per_record: server_cpu,
        client_cpu_us_per_record: client_cpu,
    })
}
