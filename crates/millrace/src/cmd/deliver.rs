//! `millrace deliver`: a standalone Firehose over any Kinesis API, and `deliver status`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use millrace_common::layout::DataDir;
use millrace_delivery::config::{ColumnType, Layout, SchemaColumn};
use millrace_delivery::{Compression, Delivery, DeliveryConfig, Format, RunMode};
use millrace_lake::Lake;

use crate::kinesis;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DeliverArgs {
    #[command(subcommand)]
    pub command: Option<DeliverCommand>,
    /// Kinesis API to read from, e.g. http://127.0.0.1:4567. Omit for Amazon Kinesis.
    #[arg(long)]
    pub source_endpoint_url: Option<String>,
    /// Stream to deliver: a Kinesis stream (through --source-endpoint-url), or a Kafka topic
    /// as kafka://HOST:PORT/TOPIC (its partitions are the shards, offsets the positions).
    #[arg(long)]
    pub stream: Option<String>,
    /// Lake: a directory, or s3://bucket/prefix.
    #[arg(long)]
    pub lake: Option<String>,
    /// Name of the delivery (checkpoints, object names, error prefix; for a Kafka topic also its
    /// consumer group, millrace-delivery-NAME, shared by deliveries of that name). Default:
    /// <stream>-lake (the topic for a Kafka stream).
    #[arg(long)]
    pub name: Option<String>,
    /// Key prefix template, e.g. 'raw/churn/!{timestamp:yyyy}/!{partitionKeyFromQuery:c}/'.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Close an object after this many seconds (0-900; 0 writes as soon as records arrive).
    #[arg(long, default_value_t = 60)]
    pub buffer_interval: u64,
    /// Close an object at this many MiB of records (1-128).
    #[arg(long, default_value_t = 5)]
    pub buffer_size: u64,
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: FormatArg,
    #[arg(long, value_enum, default_value = "none")]
    pub compression: CompressionArg,
    /// Time folders as YYYY/MM/DD/HH (firehose) or year=/month=/day=/hour= (hive).
    #[arg(long, value_enum, default_value = "firehose")]
    pub layout: LayoutArg,
    /// Dynamic partitioning key as NAME=.field.path (repeatable), e.g. contract=.Contract.
    #[arg(long = "partition")]
    pub partitions: Vec<String>,
    /// Declared Parquet schema as name:type,... (types: string, int64, float64, boolean).
    #[arg(long)]
    pub schema: Option<String>,
    /// S3-compatible endpoint for an s3:// lake (MinIO, moto, ...).
    #[arg(long)]
    pub s3_endpoint_url: Option<String>,
    /// Exit once everything in the stream at start is in the lake and checkpointed.
    #[arg(long)]
    pub until_caught_up: bool,
    /// Share the stream's shards with the other `deliver`s of this --name on any machine
    /// through leases kept at s3://bucket/prefix (each shard delivered by one process at a
    /// time; one that dies loses its shards after --lease-time and the next continues from
    /// its checkpoints). Not for Kafka topics: their consumer group does this.
    #[arg(long, value_name = "S3_URL")]
    pub leases: Option<String>,
    /// How long a delivery's leases last without renewal (renewed every third of it).
    #[arg(long, default_value = "10s", value_parser = crate::cli::parse_duration)]
    pub lease_time: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum DeliverCommand {
    /// Show the deliveries of a running `millrace up`: records, objects, errors, freshness.
    Status {
        /// Admin address of `millrace up`.
        #[arg(long, default_value = "http://127.0.0.1:4580")]
        admin_url: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// One JSON record per line; a record that is not JSON goes under the error prefix.
    Ndjson,
    /// Records back to back, byte for byte (Firehose with no processor).
    Concat,
    /// Records byte for byte, a newline after each (Firehose's AppendDelimiterToRecord).
    Lines,
    /// Columnar; records must be JSON objects.
    Parquet,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    None,
    Gzip,
    Zstd,
    Snappy,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LayoutArg {
    Firehose,
    Hive,
}

pub async fn run(data_dir: &Path, args: DeliverArgs) -> anyhow::Result<()> {
    if let Some(DeliverCommand::Status { admin_url }) = &args.command {
        return status(admin_url).await;
    }
    let stream = args.stream.clone().context("--stream is required")?;
    let lake_url = args.lake.clone().context("--lake is required")?;
    let config = to_config(&args, &stream)?;
    config
        .validate("deliver")
        .map_err(|e| anyhow::anyhow!(flag_names(&e)))?;
    let lake = Lake::open(
        &lake_url,
        &crate::cli::s3_options(args.s3_endpoint_url.clone(), false),
    )?;
    // A Kafka topic is read as a member of the group `millrace-delivery-NAME`: deliveries of
    // the same name on several machines share its partitions and checkpoints.
    let source = kinesis::streams_for(&[&stream], args.source_endpoint_url.as_deref())
        .await
        .group_source(&stream, &format!("millrace-delivery-{}", config.name))?;
    let delivery = Arc::new(
        Delivery::new(config, lake, source, &DataDir::new(data_dir).state())?
            .with_leases(&crate::cli::s3_options(args.s3_endpoint_url.clone(), false))?,
    );
    let metrics = delivery.metrics();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mode = if args.until_caught_up {
        RunMode::UntilCaughtUp
    } else {
        RunMode::Forever
    };
    eprintln!(
        "delivering stream {stream} to {} ({})",
        lake_url,
        if args.until_caught_up {
            "until caught up"
        } else {
            "until SIGINT/SIGTERM"
        }
    );
    let task = tokio::spawn(delivery.run(mode, stop_rx));
    tokio::pin!(task);
    let result = tokio::select! {
        r = &mut task => r,
        _ = crate::cmd::up::shutdown_signal() => {
            let _ = stop_tx.send(true);
            task.await
        }
    };
    result
        .context("delivery task")?
        .context("delivery failed")?;
    let s = metrics.snapshot(millrace_stream::now_ms());
    println!(
        "delivered {} records ({:.2} MB) in {} objects; {} records to the error prefix",
        s.records,
        s.bytes as f64 / 1e6,
        s.objects,
        s.error_records
    );
    Ok(())
}

/// Config validation names TOML keys; on the command line, say the flag instead.
fn flag_names(message: &str) -> String {
    [
        ("deliver.buffer_interval_secs", "--buffer-interval"),
        ("deliver.buffer_size_mib", "--buffer-size"),
        ("deliver.partitioning", "--partition"),
        ("deliver.error_prefix", "--prefix"),
        ("deliver.", "--"),
    ]
    .iter()
    .fold(message.to_owned(), |m, (key, flag)| m.replace(key, flag))
}

fn to_config(args: &DeliverArgs, stream: &str) -> anyhow::Result<DeliveryConfig> {
    let mut c = DeliveryConfig::new(
        &args
            .name
            .clone()
            .unwrap_or_else(|| format!("{}-lake", millrace_io::kafka::short_name(stream))),
        stream,
    );
    c.prefix = args.prefix.clone();
    c.leases = args.leases.clone();
    c.lease_seconds = args.leases.as_ref().map(|_| args.lease_time.as_secs());
    c.buffer_interval_secs = args.buffer_interval;
    c.buffer_size_mib = args.buffer_size;
    c.format = match args.format {
        FormatArg::Ndjson => Format::Ndjson,
        FormatArg::Concat => Format::Concat,
        FormatArg::Lines => Format::Lines,
        FormatArg::Parquet => Format::Parquet,
    };
    c.compression = match args.compression {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::Snappy => Compression::Snappy,
    };
    c.layout = match args.layout {
        LayoutArg::Firehose => Layout::Firehose,
        LayoutArg::Hive => Layout::Hive,
    };
    for p in &args.partitions {
        let (k, q) = p
            .split_once('=')
            .with_context(|| format!("--partition {p:?}: expected NAME=.field"))?;
        c.partitioning.insert(k.to_owned(), q.to_owned());
    }
    if let Some(schema) = &args.schema {
        for col in schema.split(',').filter(|s| !s.is_empty()) {
            let (name, kind) = col
                .split_once(':')
                .with_context(|| format!("--schema {col:?}: expected name:type"))?;
            let kind = match kind {
                "string" => ColumnType::String,
                "int64" => ColumnType::Int64,
                "float64" => ColumnType::Float64,
                "boolean" => ColumnType::Boolean,
                other => {
                    bail!("--schema {name}:{other}: type must be string, int64, float64 or boolean")
                }
            };
            c.schema.push(SchemaColumn {
                name: name.to_owned(),
                kind,
            });
        }
    }
    Ok(c)
}

async fn status(admin_url: &str) -> anyhow::Result<()> {
    let url = format!("{}/status", admin_url.trim_end_matches('/'));
    let body = reqwest::get(&url)
        .await
        .with_context(|| format!("is millrace up running? could not reach {url}"))?
        .bytes()
        .await?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).with_context(|| format!("{url} did not answer JSON"))?;
    println!(
        "{:<20} {:<16} {:<8} {:>10} {:>10} {:>8} {:>8} {:>12}",
        "delivery", "stream", "state", "records", "MB", "objects", "errors", "freshness s"
    );
    for d in v["deliveries"].as_array().into_iter().flatten() {
        println!(
            "{:<20} {:<16} {:<8} {:>10} {:>10.2} {:>8} {:>8} {:>12.1}",
            d["name"].as_str().unwrap_or(""),
            d["stream"].as_str().unwrap_or(""),
            d["status"].as_str().unwrap_or("running"),
            d["records"],
            d["bytes"].as_f64().unwrap_or(0.0) / 1e6,
            d["objects"],
            d["error_records"],
            d["freshness_ms"].as_f64().unwrap_or(0.0) / 1000.0
        );
        if let Some(e) = d["last_error"].as_str() {
            println!("  last error: {e}");
        }
    }
    Ok(())
}
