//! `millrace bench endpoint`: an open-loop load generator for any HTTP scoring endpoint
//! (millrace's or a peer's). Requests leave on a fixed schedule — request i at start + i/rate —
//! whatever the server's pace, so a server that falls behind shows it in the tail instead of
//! slowing the load (no coordinated omission). Latency runs from the moment a request is
//! handed to the client; the generator's lag behind its schedule is reported beside it, so a
//! late generator cannot hide. The schedule is kept by a thread sleeping to each send time
//! (tokio's millisecond timer would release requests in bursts).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

use crate::cli::parse_duration;

/// One raw record per CSV row, every value a string (as the stream carries them).
pub(super) fn records(
    path: &std::path::Path,
    drop: &[String],
    limit: usize,
) -> anyhow::Result<Vec<String>> {
    let mut r = csv::Reader::from_path(path).with_context(|| format!("{}", path.display()))?;
    let header: Vec<String> = r.headers()?.iter().map(str::to_owned).collect();
    let mut out = Vec::new();
    for rec in r.records().take(limit) {
        let rec = rec?;
        let m: Map<String, Value> = header
            .iter()
            .zip(rec.iter())
            .filter(|(h, _)| !drop.contains(h))
            .map(|(h, v)| (h.clone(), Value::String(v.to_owned())))
            .collect();
        out.push(Value::Object(m).to_string());
    }
    if out.is_empty() {
        bail!("{}: no rows to send", path.display());
    }
    Ok(out)
}

struct RateResult {
    rate: f64,
    sent: usize,
    ok: usize,
    errors: usize,
    achieved: f64,
    hist: Histogram<u64>,
    /// How late each request left against its schedule.
    lags: Histogram<u64>,
}

async fn run_rate(
    client: &reqwest::Client,
    url: &str,
    bodies: &Arc<Vec<String>>,
    rate: f64,
    duration: Duration,
    timeout: Duration,
) -> RateResult {
    let n = (rate * duration.as_secs_f64()).round() as usize;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Option<u64>, u64)>();
    let began = Instant::now();
    // The schedule is kept by a plain thread sleeping to each send time: tokio's timer ticks
    // in whole milliseconds, which would release 5 requests at once at 5,000/s and measure
    // the burst, not the server. nanosleep is accurate to tens of microseconds.
    let handle = tokio::runtime::Handle::current();
    let (client, url, bodies) = (client.clone(), url.to_owned(), bodies.clone());
    let pacer = std::thread::spawn(move || {
        let start = Instant::now() + Duration::from_millis(50);
        for i in 0..n {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            let (client, url, body, tx) = (
                client.clone(),
                url.clone(),
                bodies[i % bodies.len()].clone(),
                tx.clone(),
            );
            handle.spawn(async move {
                let sent = Instant::now();
                let lag = sent.saturating_duration_since(at).as_micros() as u64;
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .timeout(timeout)
                    .body(body)
                    .send()
                    .await;
                let ok = match r {
                    Ok(resp) if resp.status().is_success() => resp.bytes().await.is_ok(),
                    _ => false,
                };
                let us = sent.elapsed().as_micros() as u64;
                let _ = tx.send((ok.then_some(us), lag));
            });
        }
    });
    let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let mut lags = hist.clone();
    let (mut ok, mut errors) = (0, 0);
    while let Some((r, lag)) = rx.recv().await {
        let _ = lags.record(lag.max(1));
        match r {
            Some(us) => {
                ok += 1;
                let _ = hist.record(us.max(1));
            }
            None => errors += 1,
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    RateResult {
        rate,
        sent: n,
        ok,
        errors,
        achieved: ok as f64 / elapsed.max(1e-9),
        hist,
        lags,
    }
}

#[derive(Debug, Args)]
pub struct BenchEndpointArgs {
    /// The scoring URL, e.g. http://127.0.0.1:8080/invocations.
    #[arg(long)]
    pub url: String,
    /// Rows to send (one JSON record of strings per request, cycled).
    #[arg(long)]
    pub csv: PathBuf,
    /// Columns left out of the records (e.g. the target).
    #[arg(long)]
    pub drop_column: Vec<String>,
    /// Request rates to try, in order (requests per second).
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000,5000")]
    pub rates: Vec<f64>,
    /// How long each rate runs.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    /// Idle keep-alive connections kept by the client.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// A request not answered in this time counts as an error.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Also print the results as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn endpoint(args: BenchEndpointArgs) -> anyhow::Result<()> {
    let bodies = Arc::new(records(&args.csv, &args.drop_column, 1000)?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .tcp_nodelay(true)
        .build()?;
    // Warm up: connections, caches, the server's first requests.
    for b in bodies.iter().take(200) {
        let r = client
            .post(&args.url)
            .header("content-type", "application/json")
            .body(b.clone())
            .send()
            .await
            .with_context(|| format!("warm-up request to {}", args.url))?;
        if !r.status().is_success() {
            bail!(
                "warm-up request to {} answered {}: {}",
                args.url,
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
    }
    let mut out = Vec::new();
    eprintln!(
        "{:>8} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "rate/s", "achieved", "errors", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "lag p99 ms"
    );
    for &rate in &args.rates {
        let r = run_rate(
            &client,
            &args.url,
            &bodies,
            rate,
            args.duration,
            args.timeout,
        )
        .await;
        let q = |p: f64| r.hist.value_at_quantile(p) as f64 / 1000.0;
        let lag99 = r.lags.value_at_quantile(0.99) as f64 / 1000.0;
        eprintln!(
            "{:>8} {:>9.0} {:>7} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>12.3}",
            r.rate,
            r.achieved,
            r.errors,
            q(0.5),
            q(0.99),
            q(0.999),
            r.hist.max() as f64 / 1000.0,
            lag99
        );
        out.push(json!({
            "rate": r.rate, "sent": r.sent, "ok": r.ok, "errors": r.errors,
            "achieved": r.achieved, "p50_ms": q(0.5), "p99_ms": q(0.99),
            "p999_ms": q(0.999), "max_ms": r.hist.max() as f64 / 1000.0,
            "lag_p99_ms": lag99,
        }));
        // Past saturation there is nothing more to learn, and the backlog takes long to drain.
        if r.errors > 0 && q(0.99) > 1000.0 {
            break;
        }
    }
    if args.json {
        println!(
            "{}",
            json!({ "url": args.url, "duration_s": args.duration.as_secs_f64(), "connections": args.connections, "results": out })
        );
    }
    Ok(())
}
