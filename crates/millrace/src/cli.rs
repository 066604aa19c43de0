//! Command-line definitions: the top level ([`Cli`], [`Command`]) and the argument groups that
//! several subcommands share ([`S3Args`]); each subcommand's own arguments live beside its
//! `run` in `cmd/`. `--help` on each subcommand is the user's manual, so the doc comments are
//! written for users.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// millrace: from a live stream of records to a deployed model, in one binary.
///
/// The stream speaks the Amazon Kinesis Data Streams API, so the AWS CLI, boto3 and every
/// Kinesis SDK work against it unchanged. Everything runs on this machine with no account.
#[derive(Debug, Parser)]
#[command(name = "millrace", version, propagate_version = true)]
pub struct Cli {
    /// Where streams, the lake and state live.
    #[arg(
        long,
        global = true,
        env = "MILLRACE_DATA_DIR",
        default_value = "./millrace-data"
    )]
    pub data_dir: PathBuf,

    /// Where models, versions, stages and the promotion log live: a folder, or
    /// s3://bucket/prefix to share them between machines (endpoint replicas on several hosts
    /// follow the same promotions; trainers never take the same version number). Default:
    /// DATA_DIR/lake/models. The S3 endpoint comes from AWS_ENDPOINT_URL_S3 (MinIO, moto, ...)
    /// and credentials from the usual AWS environment.
    #[arg(long, global = true, env = "MILLRACE_REGISTRY")]
    pub registry: Option<String>,

    /// More log output (-v, -vv). MILLRACE_LOG=<filter> overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline once on this machine, offline, in about 10 seconds.
    ///
    /// Streams churn records through the Kinesis API (in-process, on a free port) and reads
    /// them back, delivers them into the lake, runs the churn prep job, fits the churn recipe,
    /// trains a model (quick build) and prints its test accuracy, F1 and AUC, promotes it,
    /// serves it on the real-time endpoint (latency of 1,000 requests), and scores fresh
    /// records live from a stream onto an output stream. Uses generated Telco-like data
    /// unless --csv names the real file.
    Demo(crate::cmd::demo::DemoArgs),
    /// Run the pipeline continuously, as configured, until SIGINT or SIGTERM.
    ///
    /// One process runs every component the config names: [[stream]]s (the Kinesis API),
    /// [[delivery]]s into the lake, [[prep]] jobs run when new objects land, [[train]]
    /// retraining when a dataset grows (promoted only through the champion/challenger gate),
    /// the [endpoint] (hot-swapping promoted versions) and [[scoring]] onto output streams.
    /// Every acknowledged record is on disk (fsync before the reply, by default) and survives
    /// kill -9; SIGTERM flushes buffers and checkpoints. `millrace status` shows each
    /// component. Example: millrace up -c examples/millrace.toml
    Up(crate::cmd::up::UpArgs),
    /// Send a CSV, NDJSON or JSON file (or a folder of them) to a stream as JSON records.
    ///
    /// Uses the official AWS SDK, so it works against millrace and real Amazon Kinesis alike
    /// (credentials and region from the usual AWS environment; against a loopback endpoint,
    /// dummy credentials are used when none are set). Each CSV row becomes a JSON object whose
    /// values are all strings, as the reference producer did. Exits 0 only when every record
    /// was acknowledged.
    Produce(crate::cmd::produce::ProduceArgs),
    /// Deliver a stream into the lake, Firehose style (or `deliver status` of a running `up`).
    ///
    /// Reads every shard of a stream through any Kinesis API (millrace, kinesalite, Amazon
    /// Kinesis) from the oldest record on first start and from durable checkpoints after, and
    /// writes objects under time (and optional dynamic-partition) prefixes. Every record lands
    /// exactly once, even across crashes; records that cannot be delivered go to the error
    /// prefix with their reason.
    Deliver(crate::cmd::deliver::DeliverArgs),
    /// Ad-hoc SQL over lake prefixes, local folders, files or s3:// URLs (like Athena).
    ///
    /// Each --table registers NAME over every object below PATH (names starting with `_` or
    /// `.` are skipped; `key=value` folders become columns; a folder written by `millrace prep`
    /// is read through its manifest). Formats: json (NDJSON or Firehose's concatenated objects,
    /// decided per object), ndjson, concat, csv, parquet; gzip and zstd are undone by magic
    /// bytes. Column names keep their case: `SELECT customerID FROM raw`. A JSON value that
    /// cannot be read is skipped and reported with its object and byte offset.
    ///
    /// Example: millrace query --table raw=millrace-data/lake/raw/churn:json
    ///   "SELECT Contract, count(*) FROM raw GROUP BY Contract"
    Query(crate::cmd::query::QueryArgs),
    /// Run a SQL job file: read inputs, run statements, write outputs with a manifest.
    ///
    /// Outputs (Parquet or CSV, optionally Hive-partitioned) are committed atomically with a
    /// `_manifest.json` that records every input object (size, etag), the SQL, the row count
    /// and the time. With `incremental = true` only objects absent from the last manifest are
    /// read and the output is appended to. See examples/jobs/churn.toml.
    Prep(crate::cmd::prep::PrepArgs),
    /// The roles of an Apache DataFusion Ballista cluster for prep jobs and queries that
    /// outgrow one machine: `ballista scheduler` and `ballista executor`, then
    /// `millrace prep --engine ballista://HOST:PORT`. Same SQL, same outputs and manifests.
    #[command(subcommand)]
    Ballista(crate::cmd::ballista::BallistaCommand),
    /// Fit a feature recipe on data and write the features (or apply a fitted recipe).
    ///
    /// A recipe is a TOML file of ordered [[step]] tables: drop, keep, rename, filter,
    /// drop_missing, cast, impute, encode (one_hot, ordinal, target, frequency), scale, log,
    /// power, clip, bin, derive, text, dedupe. Fitting learns each step's state (means,
    /// categories, quantiles); the fitted recipe (JSON, from --fit-only or --save-state)
    /// transforms new data, or one record at the endpoint, exactly the same way. Passing a
    /// fitted .json as --recipe applies it without refitting. See examples/recipes/churn.toml.
    Wrangle(crate::cmd::wrangle::WrangleArgs),
    /// Data-quality and insights report: report.html (self-contained, inline SVG charts) and
    /// report.json.
    ///
    /// Per column: inferred type (numbers held as text count as numbers), missing and
    /// mismatched values, unique, mode, min/max/mean/std/quantiles, histogram or top
    /// categories. Correlations (Pearson, Spearman, Cramér's V); with --target, each feature's
    /// power (single-feature AUC, mutual information), a quick model's column impact
    /// (permutation importance on a holdout), and warnings: ID-like and constant columns,
    /// target leakage, class imbalance, heavy skew, outliers, high missing rates.
    Profile(crate::cmd::profile::ProfileArgs),
    /// AutoML quick build: from a table and a target column to a model, in seconds.
    ///
    /// Detects the problem (binary, multiclass, regression; prints the positive class), holds
    /// out a seeded stratified test part (--test-fraction), and cross-validates regularised
    /// linear models, gradient-boosted trees and randomised forests on the rest, with feature
    /// handling per family (numbers in text cast, ID-like and constant columns dropped,
    /// one-hot + scaling for linear models, ordinal codes for trees). A greedy weighted
    /// ensemble is selected on out-of-fold predictions and, for binary targets, the decision
    /// threshold is tuned there for the objective. Nothing is chosen by the test part: it only
    /// scores the result.
    ///
    /// Saves the model as the next version under <data-dir>/lake/models/NAME/vN/ (model.json,
    /// metrics.json, report.html) and prints the leaderboard. Example:
    ///   millrace train --data telco.csv --target Churn --name churn
    Train(crate::cmd::train::TrainArgs),
    /// Batch transform: score a file, folder, lake prefix or s3:// URL with a trained model,
    /// one output row per input row, in input order.
    ///
    /// Writes the input's ID columns, then `predicted_label` and `probability` (binary:
    /// probability of the positive class), `predicted_label` and `probability_<class>` per
    /// class (multiclass), or `prediction` (regression). The target column may be absent.
    /// The input streams through in chunks (memory holds a few, whatever its size). --output
    /// is one file (.csv, .parquet, .ndjson; local or s3://), or a folder (ending in /, an
    /// existing folder, or a name without an extension) that gets part files and a
    /// _manifest.json committed last (model, input objects, rows, time); a relative folder
    /// that does not exist here is a prefix of the data dir's lake, readable by
    /// `millrace query --table p=PREFIX`. On failure nothing is left behind.
    /// Examples: millrace predict --model churn --input new.csv --output scored.csv
    ///           millrace predict --model churn --input curated/churn --output scored/churn/
    Predict(crate::cmd::predict::PredictArgs),
    /// Real-time endpoint: the SageMaker inference container contract over HTTP.
    ///
    /// GET /ping answers 200 once a model is loaded; POST /invocations scores with the first
    /// --model, POST /models/NAME/invocations with any. Bodies: application/json (one record,
    /// an array, or {"instances": [...]}), application/jsonlines, or text/csv rows without a
    /// header in the training column order; values may be raw strings as on the stream. Each
    /// record gets predicted_label, probability, probabilities and labels (or prediction);
    /// Accept: text/csv answers in CSV. Bad input: 400 naming the record and field; bodies over
    /// --max-payload-mb: 413. A model named without a version follows the registry: promoting
    /// (or training, when none is promoted) a new version swaps it in without failing a
    /// request. GET /metrics: Prometheus text (requests, latency histogram, model version,
    /// and the drift monitor's PSI per feature and drifting flag; see `millrace monitor`).
    /// The SageMaker Runtime API answers beside it (boto3's sagemaker-runtime client with
    /// endpoint_url): InvokeEndpoint, InvokeEndpointWithResponseStream and InvokeEndpointAsync
    /// on endpoint NAME (follows promotions) or NAME-vN (that version); asynchronous results
    /// go to <data-dir>/lake/async-inference/ (s3://lake/...).
    /// Example: millrace endpoint --model churn --addr 127.0.0.1:8080
    Endpoint(crate::cmd::endpoint::EndpointArgs),
    /// Streaming inference: score each record of a stream on arrival onto an output stream.
    ///
    /// Reads every shard through any Kinesis API (millrace's `up`, Amazon Kinesis) from the
    /// oldest record on first start and from durable checkpoints after, scores each record with
    /// the model's recipes (raw all-string records are fine), and puts {id fields,
    /// predicted_label, probability, model, model_version, scored_at, source_stream,
    /// source_shard, source_sequence} on --to-stream, keyed by the input's partition key.
    /// Records that cannot be scored go to --error-stream with the reason. Exactly one output
    /// per input, even across crashes and restarts. A bare model name follows promotions.
    /// Example: millrace score --source-endpoint-url http://127.0.0.1:4567 --stream churn
    ///   --model churn --to-stream churn-predictions
    Score(crate::cmd::score::ScoreArgs),
    /// Each component of a running `millrace up` (streams, deliveries, prep jobs, training,
    /// scoring, the endpoint): its state, what it did last, and its lag.
    Status(crate::cmd::status::StatusArgs),
    /// The model registry: versions, stages (candidate / production / archived), promotion.
    #[command(subcommand)]
    Models(crate::cmd::models::ModelsCommand),
    /// Principals who may call the APIs under `[auth] mode = "enforce"`: their access keys
    /// (sealed at rest) and IAM policies. See examples/identities.toml.
    #[command(subcommand)]
    Identity(crate::cmd::identity::IdentityCommand),
    /// The keyring of encryption at rest: the keys StartStreamEncryption's KeyId names. A
    /// stream's records are sealed with AES-256-GCM under a key derived per shard from one of
    /// these; its segment files hold no plaintext record.
    #[command(subcommand)]
    Key(crate::cmd::key::KeyCommand),
    /// Drift monitor: are the records a model scores still like the data it was trained on?
    ///
    /// Training saves a baseline with the model: per input column, the share of training
    /// rows in each of ~10 quantile bins (numbers, including numbers sent as text) or in each
    /// of the top 20 categories plus "other", and a missing bucket. The population stability
    /// index (PSI = Σ (now − training) · ln(now / training) over the buckets) measures how far
    /// the latest records have moved per feature: under 0.1 stable, 0.1–0.2 moderate, 0.2 and
    /// above a significant shift. The model is drifting when the window holds at least
    /// --min-records records and any feature's PSI reaches --threshold.
    ///
    /// Without --data, shows the report a running `millrace endpoint` saves every few seconds
    /// (its last 1,000 scored records; also on its /metrics as millrace_feature_psi and
    /// millrace_model_drifting). With --data, compares the last --window rows of a file with
    /// the baseline. Prints per feature the PSI, a bar (the threshold at its middle), a flag and
    /// the bucket that moved most, then `drifting: yes|no (...)`. --fail-on-drift exits with
    /// status 3 when drifting (1 on errors, 0 otherwise).
    /// Example: millrace monitor churn --data last-week.csv --fail-on-drift
    Monitor(crate::cmd::monitor::MonitorArgs),
    /// Write synthetic data sets.
    #[command(subcommand)]
    Generate(crate::cmd::generate::GenerateCommand),
    /// Measure performance end to end.
    #[command(subcommand)]
    Bench(crate::cmd::bench::BenchCommand),
}

/// `--s3-endpoint-url`: how to reach s3:// paths, declared once for every subcommand that
/// reads or writes them.
#[derive(Debug, Clone, Default, Args)]
pub struct S3Args {
    /// S3-compatible endpoint for s3:// paths (MinIO, moto, ...).
    #[arg(long, env = "AWS_ENDPOINT_URL_S3")]
    pub s3_endpoint_url: Option<String>,
}

impl S3Args {
    /// The lake's S3 options for these flags.
    pub fn options(&self) -> millrace_lake::S3Options {
        s3_options(self.s3_endpoint_url.clone(), false)
    }
}

/// The one path-style rule, for flags and `[lake]` alike: path-style addressing
/// (`endpoint/bucket/key`, which MinIO, moto and LocalStack need) whenever an endpoint URL is
/// given, and otherwise only when asked for (`[lake] s3_path_style = true`).
pub fn s3_options(endpoint_url: Option<String>, path_style: bool) -> millrace_lake::S3Options {
    millrace_lake::S3Options {
        path_style: path_style || endpoint_url.is_some(),
        endpoint_url,
    }
}

/// `90s`, `2m`, `1h`, `1.5m` or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (examples: 30s, 2m, 1h)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" | "sec" | "secs" => v,
        "m" | "min" | "mins" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use ms, s, m or h)")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("`{s}`: the duration must be positive"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn an_endpoint_url_means_path_style() {
        assert!(!s3_options(None, false).path_style);
        assert!(s3_options(None, true).path_style);
        let o = s3_options(Some("http://127.0.0.1:9000".into()), false);
        assert!(o.path_style);
        assert_eq!(o.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        let cli = Cli::try_parse_from([
            "millrace",
            "prep",
            "--job",
            "j.toml",
            "--s3-endpoint-url",
            "http://127.0.0.1:9000",
        ])
        .unwrap();
        let Command::Prep(args) = cli.command else {
            panic!("parsed as prep")
        };
        assert!(args.s3.options().path_style);
    }
}
