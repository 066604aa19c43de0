//! `millrace score`: streaming inference from one stream to another through any Kinesis API.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use millrace_common::layout::DataDir;
use millrace_io::Streams;
use millrace_serve::score::{RunMode, Scorer, ScoringConfig};

use crate::kinesis;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The Kinesis API to read and write (millrace's `up`, or Amazon Kinesis when omitted:
    /// region and credentials come from the usual AWS environment).
    #[arg(long, value_name = "URL")]
    pub source_endpoint_url: Option<String>,
    /// The stream of records to score (JSON objects, values may be raw strings): a Kinesis
    /// stream or a Kafka topic as kafka://HOST:PORT/TOPIC.
    #[arg(long)]
    pub stream: String,
    /// NAME follows the registry (a promotion swaps the new version in); NAME:vN pins one.
    #[arg(long)]
    pub model: String,
    /// Where predictions go (a Kinesis stream or kafka://HOST:PORT/TOPIC); created if missing.
    #[arg(long, value_name = "STREAM")]
    pub to_stream: String,
    /// Where records that cannot be scored go, with the reason (default: TO_STREAM-errors).
    #[arg(long, value_name = "STREAM")]
    pub error_stream: Option<String>,
    /// Input fields copied into each prediction (default: the model's ID columns).
    #[arg(long, value_delimiter = ',', value_name = "FIELD,...")]
    pub id_fields: Option<Vec<String>>,
    /// Add an `explanation` to each prediction: base_value, margin and the K largest
    /// contributions of the input fields (or all of them with `all`).
    #[arg(long, value_name = "K|all")]
    pub explain: Option<millrace_automl::explain::Detail>,
    /// Names the checkpoints under DATA_DIR/state/scoring/ (default: STREAM-to-TO_STREAM).
    /// Two scorers with the same name share progress; a different name starts from the oldest
    /// record.
    #[arg(long)]
    pub name: Option<String>,
    /// Stop once every shard has been read to its end and every prediction is acknowledged.
    #[arg(long)]
    pub until_caught_up: bool,
    /// How often a caught-up shard is polled, in ms (Amazon Kinesis allows 5 reads per second
    /// per shard; against a local millrace 5–10 ms gives low latency).
    #[arg(long, default_value_t = 200)]
    pub poll_ms: u64,
    /// Share the stream's shards with the other `score`s of this --name on any machine
    /// through leases kept at s3://bucket/prefix (each shard read by one scorer at a time;
    /// a scorer that dies loses its shards after --lease-time, and the next one continues
    /// from its checkpoints). Not for Kafka topics: their consumer group does this.
    #[arg(long, value_name = "S3_URL")]
    pub leases: Option<String>,
    /// How long a scorer's leases last without renewal (renewed every third of it).
    #[arg(long, default_value = "10s", value_parser = crate::cli::parse_duration)]
    pub lease_time: Duration,
    #[command(flatten)]
    pub s3: crate::cli::S3Args,
}

pub async fn run(data_dir: &Path, args: ScoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let error_stream = args
        .error_stream
        .clone()
        .unwrap_or_else(|| format!("{}-errors", args.to_stream));
    let names = [args.stream.as_str(), &args.to_stream, &error_stream];
    let client = kinesis::client_for(&names, args.source_endpoint_url.as_deref()).await;
    let config = ScoringConfig {
        name: args.name.clone(),
        stream: args.stream.clone(),
        model: args.model.clone(),
        to_stream: args.to_stream.clone(),
        error_stream: args.error_stream.clone(),
        id_fields: args.id_fields.clone(),
        explain: args.explain,
        leases: args.leases.clone(),
        lease_seconds: Some(args.lease_time.as_secs()),
    };
    config
        .validate("score")
        .map_err(|m| anyhow::anyhow!(m.replace("score.", "--").replace('_', "-")))?;
    let streams = Streams::Kinesis {
        client,
        poll: Duration::from_millis(args.poll_ms),
    };
    let registry = crate::registry::open(data_dir);
    let state = DataDir::new(data_dir).state();
    let s3 = args.s3.options();
    let scorer =
        tokio::task::spawn_blocking(move || Scorer::new(config, registry, streams, &state, &s3))
            .await?
            .with_context(|| format!("--model {}", args.model))?;
    let scorer = Arc::new(scorer);
    let (model, version) = scorer.serving();
    let error_stream = scorer.config().error_stream();
    println!(
        "scoring {} with {model}:v{version} → {} (unscorable records → {error_stream}); \
         checkpoints in {}",
        args.stream,
        args.to_stream,
        scorer.checkpoints().describe()
    );
    let metrics = scorer.metrics();
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let ticker = {
        let (bar, metrics) = (bar.clone(), metrics.clone());
        tokio::spawn(async move {
            loop {
                bar.set_message(format!(
                    "{} scored, {} errors, model v{}",
                    metrics.records.load(Ordering::Relaxed),
                    metrics.errors.load(Ordering::Relaxed),
                    metrics.model_version.load(Ordering::Relaxed)
                ));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal = tokio::spawn(async move {
        crate::cmd::up::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mode = if args.until_caught_up {
        RunMode::UntilCaughtUp
    } else {
        RunMode::Forever
    };
    let result = scorer.run(mode, stop_rx).await;
    signal.abort();
    ticker.abort();
    bar.finish_and_clear();
    result.context("scoring")?;
    println!(
        "scored {} records ({} errors) in {:.2} s; outputs are on {}",
        metrics.records.load(Ordering::Relaxed),
        metrics.errors.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        args.to_stream
    );
    Ok(())
}
