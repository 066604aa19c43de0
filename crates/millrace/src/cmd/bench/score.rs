//! `millrace bench score`: streaming-inference latency, from PutRecord acknowledgement to the
//! prediction being readable on the output stream. Records leave on a fixed schedule (one
//! PutRecord each, open loop); readers poll every output shard in a tight loop from LATEST and
//! match each prediction to its input by `source_shard` and `source_sequence`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Mutex;

use crate::cli::parse_duration;

/// (source shard, source sequence) → when its input was acknowledged or its output read.
#[derive(Default)]
struct Matcher {
    acked: HashMap<(String, String), Instant>,
    read: HashMap<(String, String), Instant>,
    latencies_us: Vec<u64>,
}

impl Matcher {
    fn ack(&mut self, key: (String, String), at: Instant) {
        match self.read.remove(&key) {
            // Read before the acknowledgement was processed: zero, not negative.
            Some(_) => self.latencies_us.push(0),
            None => {
                self.acked.insert(key, at);
            }
        }
    }

    fn seen(&mut self, key: (String, String), at: Instant) {
        match self.acked.remove(&key) {
            Some(acked) => self
                .latencies_us
                .push(at.saturating_duration_since(acked).as_micros() as u64),
            None => {
                self.read.insert(key, at);
            }
        }
    }
}

async fn tail_shard(
    client: aws_sdk_kinesis::Client,
    stream: String,
    shard: String,
    matcher: Arc<Mutex<Matcher>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut it = client
        .get_shard_iterator()
        .stream_name(&stream)
        .shard_id(&shard)
        .shard_iterator_type(ShardIteratorType::Latest)
        .send()
        .await
        .with_context(|| format!("GetShardIterator {stream}/{shard}"))?
        .shard_iterator()
        .map(str::to_owned)
        .context("no shard iterator")?;
    loop {
        let out = client
            .get_records()
            .shard_iterator(&it)
            .send()
            .await
            .with_context(|| format!("GetRecords {stream}/{shard}"))?;
        let now = Instant::now();
        for r in out.records() {
            let Ok(v) = serde_json::from_slice::<Value>(r.data().as_ref()) else {
                continue;
            };
            if let (Some(sh), Some(seq)) = (
                v.get("source_shard").and_then(Value::as_str),
                v.get("source_sequence").and_then(Value::as_str),
            ) {
                matcher
                    .lock()
                    .expect("matcher")
                    .seen((sh.to_owned(), seq.to_owned()), now);
            }
        }
        if let Some(next) = out.next_shard_iterator() {
            it = next.to_owned();
        }
        if out.records().is_empty() {
            if *stop.borrow() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchScoreArgs {
    /// The Kinesis API of the running `up`.
    #[arg(long)]
    pub endpoint_url: String,
    /// The stream the scorer reads.
    #[arg(long)]
    pub stream: String,
    /// The stream the scorer writes predictions to.
    #[arg(long)]
    pub out_stream: String,
    /// Rows to send (one JSON record of strings each, cycled).
    #[arg(long)]
    pub csv: PathBuf,
    /// Columns left out of the records (e.g. the target).
    #[arg(long)]
    pub drop_column: Vec<String>,
    /// Record rates to try, in order (records per second).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub rates: Vec<f64>,
    /// How long each rate runs.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    /// How long to wait for the last predictions after the load stops.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Also print the results as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn score(args: BenchScoreArgs) -> anyhow::Result<()> {
    let client = crate::kinesis::client(Some(&args.endpoint_url)).await;
    let bodies = super::endpoint::records(&args.csv, &args.drop_column, 1000)?;
    let shards: Vec<String> = client
        .list_shards()
        .stream_name(&args.out_stream)
        .send()
        .await
        .with_context(|| {
            format!(
                "ListShards {} (is a scorer writing there?)",
                args.out_stream
            )
        })?
        .shards()
        .iter()
        .map(|s| s.shard_id().to_owned())
        .collect();
    let mut results = Vec::new();
    eprintln!(
        "{:>8} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "rate/s", "sent", "matched", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for &rate in &args.rates {
        let matcher = Arc::new(Mutex::new(Matcher::default()));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tails = tokio::task::JoinSet::new();
        for sh in &shards {
            tails.spawn(tail_shard(
                client.clone(),
                args.out_stream.clone(),
                sh.clone(),
                matcher.clone(),
                stop_rx.clone(),
            ));
        }
        // Let the readers take their LATEST position first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let n = (rate * args.duration.as_secs_f64()).round() as usize;
        let start = tokio::time::Instant::now() + Duration::from_millis(20);
        let mut puts = tokio::task::JoinSet::new();
        for i in 0..n {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
            let (client, stream, body, matcher) = (
                client.clone(),
                args.stream.clone(),
                bodies[i % bodies.len()].clone(),
                matcher.clone(),
            );
            puts.spawn(async move {
                let out = client
                    .put_record()
                    .stream_name(stream)
                    .partition_key(format!("k{i}"))
                    .data(Blob::new(body.into_bytes()))
                    .send()
                    .await?;
                matcher.lock().expect("matcher").ack(
                    (out.shard_id().to_owned(), out.sequence_number().to_owned()),
                    Instant::now(),
                );
                anyhow::Ok(())
            });
        }
        let mut put_errors = 0;
        while let Some(r) = puts.join_next().await {
            if !matches!(r, Ok(Ok(()))) {
                put_errors += 1;
            }
        }
        // Wait for the last predictions (or give up after the timeout).
        let deadline = Instant::now() + args.timeout;
        while matcher.lock().expect("matcher").latencies_us.len() < n - put_errors
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop_tx.send(true);
        while let Some(r) = tails.join_next().await {
            r??;
        }
        let m = matcher.lock().expect("matcher");
        let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
        for &us in &m.latencies_us {
            hist.record(us.max(1))?;
        }
        let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
        eprintln!(
            "{:>8} {:>7} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            rate,
            n,
            m.latencies_us.len(),
            q(0.5),
            q(0.99),
            q(0.999),
            hist.max() as f64 / 1000.0
        );
        if put_errors > 0 {
            eprintln!("  {put_errors} PutRecord calls failed");
        }
        results.push(json!({
            "rate": rate, "sent": n, "put_errors": put_errors,
            "matched": m.latencies_us.len(),
            "p50_ms": q(0.5), "p99_ms": q(0.99), "p999_ms": q(0.999),
            "max_ms": hist.max() as f64 / 1000.0,
        }));
        if m.latencies_us.len() + put_errors < n {
            bail!(
                "{} of {n} predictions never appeared on {} within {:?}",
                n - put_errors - m.latencies_us.len(),
                args.out_stream,
                args.timeout
            );
        }
    }
    if args.json {
        println!(
            "{}",
            json!({ "endpoint_url": args.endpoint_url, "stream": args.stream,
                    "out_stream": args.out_stream, "duration_s": args.duration.as_secs_f64(),
                    "results": results })
        );
    }
    Ok(())
}
