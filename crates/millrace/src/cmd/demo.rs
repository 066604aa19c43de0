//! `millrace demo`: runs the pipeline once, end to end, on this machine with no setup.
//!
//! The demo starts the Kinesis-compatible stream API in-process, streams churn records through
//! it with the AWS SDK (as a producer would), consumes them back and checks every record
//! arrived once and intact, delivers the stream into the local lake, runs the shipped churn
//! prep job on DataFusion over it, fits the churn feature recipe on the result, and trains a
//! churn model on the curated data (the AutoML quick build), promotes it in the registry,
//! serves it on the real-time endpoint (latency of single-record requests), and scores fresh
//! records live from a stream onto an output stream, showing predictions as they arrive.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use millrace_common::layout::DataDir;
use millrace_gateway::Gateway;
use millrace_io::{RecordSource, SinkRecord, Streams};
use millrace_stream::{Store, StoreOptions, StreamError, StreamMode};
use serde_json::{Map, Value};

use crate::cmd::produce::{partition_key, read_records, send_all};
use crate::generate::churn;
use crate::kinesis;

use crate::cmd::produce::RecordFileFormat;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use this churn CSV (e.g. the public Telco file) instead of generated data.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Number of records (default: 7,043 generated, or every row of --csv).
    #[arg(long)]
    pub rows: Option<usize>,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Run the stream stages on a Kafka topic, kafka://HOST:PORT/TOPIC, instead of the
    /// embedded Kinesis API: the records are produced there and delivered from there, and the
    /// live stage scores TOPIC-live into TOPIC-scored on the same brokers (topics are created
    /// when missing).
    #[arg(long, value_name = "kafka://HOST:PORT/TOPIC")]
    pub stream: Option<String>,
}

const STREAM: &str = "churn-demo";

/// The demo's streams: in the embedded store, or Kafka topics (`--stream`).
struct DemoStreams {
    input: String,
    live_in: String,
    live_out: String,
    kafka: bool,
}

impl DemoStreams {
    fn new(stream: Option<&str>) -> anyhow::Result<Self> {
        let Some(name) = stream else {
            return Ok(Self {
                input: STREAM.into(),
                live_in: LIVE_IN.into(),
                live_out: LIVE_OUT.into(),
                kafka: false,
            });
        };
        match millrace_io::KafkaUrl::parse(name) {
            Some(Ok(_)) => Ok(Self {
                input: name.to_owned(),
                live_in: format!("{name}-live"),
                live_out: format!("{name}-scored"),
                kafka: true,
            }),
            Some(Err(e)) => bail!("--stream {e}"),
            None => bail!(
                "--stream {name:?}: the demo's own stream is embedded; give a Kafka topic as kafka://HOST:PORT/TOPIC"
            ),
        }
    }
}

pub async fn run(data_dir: &Path, args: DemoArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let names = DemoStreams::new(args.stream.as_deref())?;
    let (records, source) = demo_records(&args)?;
    let bytes: usize = records.iter().map(|r| r.data.len()).sum();
    println!(
        "[1/10] source   {} records, {:.2} MB of JSON, from {source}",
        records.len(),
        bytes as f64 / 1e6
    );

    // The stream API, in this process, on a free loopback port.
    let root = data_dir.to_owned();
    let store = Arc::new(
        tokio::task::spawn_blocking(move || Store::open(&root, StoreOptions::default()))
            .await?
            .with_context(|| format!("opening the stream store in {}", data_dir.display()))?,
    );
    match store.create(
        STREAM,
        StreamMode::Provisioned,
        Some(4),
        24,
        Default::default(),
    ) {
        Ok(_) | Err(StreamError::StreamExists(_)) => {}
        Err(e) => return Err(e).context("creating the demo stream"),
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let key: [u8; 32] = rand::random();
    let server = tokio::spawn(millrace_gateway::serve(
        listener,
        Gateway::new(store.clone(), key).context("opening the Kinesis API state")?,
        async {
            let _ = stop_rx.await;
        },
    ));

    let client = kinesis::client(Some(&url)).await;
    let api = if names.kafka {
        // Kafka names open Kafka topics whatever the streams' home is.
        let api = Streams::Embedded(store.clone());
        api.ensure(&names.input, Some(4))
            .await
            .with_context(|| format!("creating {}", names.input))?;
        api
    } else {
        Streams::kinesis(client.clone())
    };
    let stream = names.input.as_str();
    // Start reading where the stream ends now, so a re-run checks only its own records.
    let reader = api.source(stream)?;
    let mut starts = Vec::new();
    for shard in reader.shards().await? {
        let newest = reader.newest(&shard).await?;
        starts.push((shard, newest));
    }

    let t = Instant::now();
    send_all(&*api.sink(stream)?, &records, true, None).await?;
    let produce_s = t.elapsed().as_secs_f64();
    let by = if names.kafka {
        format!("the brokers of {stream} (acks=all)")
    } else {
        format!("the Kinesis API at {url} (fsync before every acknowledgement)")
    };
    println!(
        "[2/10] stream   {} records acknowledged by {by} in {produce_s:.2}s ({:.0} records/s)",
        records.len(),
        records.len() as f64 / produce_s
    );

    consume_stage(&*reader, starts, &records).await?;
    let lake_dir = DataDir::new(data_dir).lake();
    deliver_stage(data_dir, &store, &lake_dir, stream).await?;

    let curated = prep_stage(data_dir, &lake_dir, stream).await?;
    let sample = records.first().map(|r| r.data.clone());
    wrangle_stage(data_dir, &lake_dir, &curated, sample.as_deref()).await?;
    let version = automl_stage(data_dir, &curated, sample.as_deref()).await?;
    let model_dir = serve_stage(data_dir, version, &records).await?;
    let fresh = match &args.csv {
        // The real file has no more customers: re-send a sample as fresh arrivals.
        Some(_) => records.iter().take(LIVE_RECORDS).cloned().collect(),
        None => generated(LIVE_RECORDS.min(records.len()), args.seed + 1)?,
    };
    live_stage(data_dir, &store, &client, &fresh, &names).await?;

    let _ = stop_tx.send(());
    server.await??;
    tokio::task::spawn_blocking(move || store.shutdown()).await?;
    print_done(t0, data_dir, &lake_dir, &model_dir);
    Ok(())
}

/// The demo's records: the CSV given (at most `--rows`), or generated churn data.
fn demo_records(args: &DemoArgs) -> anyhow::Result<(Vec<SinkRecord>, String)> {
    Ok(match &args.csv {
        Some(path) => {
            let mut recs = read_records(path, Some(RecordFileFormat::Csv), Some("customerID"))?;
            if let Some(n) = args.rows {
                recs.truncate(n);
            }
            (recs, format!("{}", path.display()))
        }
        None => {
            let rows = args.rows.unwrap_or(7043);
            (
                generated(rows, args.seed)?,
                format!("generated Telco-like churn data (seed {})", args.seed),
            )
        }
    })
}

/// Reads every shard from `starts` to its end with GetRecords and checks that each sent
/// record came back exactly once.
async fn consume_stage(
    reader: &dyn RecordSource,
    starts: Vec<(String, Option<String>)>,
    records: &[SinkRecord],
) -> anyhow::Result<()> {
    let t = Instant::now();
    let mut seen: HashMap<Bytes, usize> = HashMap::new();
    let mut per_shard = Vec::new();
    for (shard, mut after) in starts {
        let mut n = 0;
        loop {
            let b = reader
                .read(&shard, after.as_deref(), Duration::ZERO)
                .await?;
            let Some(last) = b.records.last() else {
                break;
            };
            after = Some(last.sequence.clone());
            n += b.records.len();
            for rec in b.records {
                *seen.entry(rec.data).or_default() += 1;
            }
        }
        per_shard.push(format!("{shard}: {n}"));
    }
    let read_s = t.elapsed().as_secs_f64();
    let missing = records
        .iter()
        .filter(|r| seen.get(&r.data).copied().unwrap_or(0) == 0)
        .count();
    let read: usize = seen.values().sum();
    println!(
        "[3/10] consume  {read} records read back with GetRecords in {read_s:.2}s; per shard {}",
        per_shard.join(", ")
    );
    if missing > 0 || read != records.len() {
        bail!(
            "{missing} records missing, {read} read for {} sent",
            records.len()
        );
    }
    Ok(())
}

/// Delivery into the lake, from the embedded stream, continuing from its checkpoints.
async fn deliver_stage(
    data_dir: &Path,
    store: &Arc<Store>,
    lake_dir: &Path,
    stream: &str,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let lake = millrace_lake::Lake::open(&lake_dir.display().to_string(), &Default::default())?;
    let mut config = millrace_delivery::DeliveryConfig::new("churn-demo-raw", stream);
    config.buffer_interval_secs = 1;
    let delivery = Arc::new(millrace_delivery::Delivery::new(
        config,
        lake,
        Streams::Embedded(store.clone()).source(stream)?,
        &DataDir::new(data_dir).state(),
    )?);
    let metrics = delivery.metrics();
    let (_keep, rx) = tokio::sync::watch::channel(false);
    delivery
        .run(millrace_delivery::RunMode::UntilCaughtUp, rx)
        .await
        .context("delivering the demo stream into the lake")?;
    let m = metrics.snapshot(millrace_stream::now_ms());
    println!(
        "[4/10] deliver  {} records into {} NDJSON objects under {} in {:.2}s ({} to the error prefix)",
        m.records,
        m.objects,
        lake_dir
            .join("raw")
            .join(millrace_io::kafka::short_name(stream))
            .display(),
        t.elapsed().as_secs_f64(),
        m.error_records
    );
    Ok(())
}

/// The closing lines: where everything went, and what to run next.
fn print_done(t0: Instant, data_dir: &Path, lake_dir: &Path, model_dir: &Path) {
    println!(
        "done in {:.1}s: every record arrived exactly once, byte-identical.",
        t0.elapsed().as_secs_f64()
    );
    println!(
        "  model    {} (model.json; report.html and metrics.json beside it)\n  \
         lake     {}/raw (NDJSON), {}/curated/churn (Parquet + manifest), {}/features/churn\n  \
         streams  {}\n\
         Next: millrace up -c examples/millrace.toml (the pipeline, continuously); millrace \
         endpoint --model churn; millrace score --stream S --model churn --to-stream OUT; \
         millrace query --table churn={}/curated/churn \"SELECT ...\"",
        model_dir.display(),
        lake_dir.display(),
        lake_dir.display(),
        lake_dir.display(),
        DataDir::new(data_dir).streams().display(),
        lake_dir.display()
    );
}

/// The reference AWS build's published test figures (Telco churn, SageMaker Autopilot).
const REF_ACCURACY: f64 = 0.7626;
const REF_F1: f64 = 0.642;

/// Fresh records streamed through the live scorer at the end.
const LIVE_RECORDS: usize = 300;
/// Their pace (records per second), one PutRecord each, as devices would send them.
const LIVE_RATE: f64 = 200.0;
/// Single-record requests sent to the endpoint.
const ENDPOINT_REQUESTS: usize = 1000;

/// Promotes the new version to production, serves it on the real-time endpoint (in this
/// process, on a free port) and times single-record JSON requests of raw records.
async fn serve_stage(
    data_dir: &Path,
    version: u32,
    records: &[SinkRecord],
) -> anyhow::Result<std::path::PathBuf> {
    let registry = crate::registry::open(data_dir);
    let r = registry.clone();
    tokio::task::spawn_blocking(move || r.promote("churn", version))
        .await?
        .context("promoting the demo model")?;
    let r = registry.clone();
    let ep = tokio::task::spawn_blocking(move || {
        millrace_serve::endpoint::Endpoint::load(r, &["churn".to_owned()])
    })
    .await??;
    let ep = Arc::new(ep);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/invocations", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ep.serve(
        listener,
        millrace_serve::endpoint::DEFAULT_MAX_BODY,
        async {
            let _ = stop_rx.await;
        },
    ));
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let n = ENDPOINT_REQUESTS.min(records.len()).max(1);
    let mut micros = Vec::with_capacity(n);
    let mut first = None;
    for rec in records.iter().cycle().take(n) {
        let t = Instant::now();
        let resp = http
            .post(&url)
            .header("content-type", "application/json")
            .body(rec.data.clone())
            .send()
            .await
            .context("calling the endpoint")?;
        let status = resp.status();
        let body = resp.text().await?;
        micros.push(t.elapsed().as_micros() as u64);
        if !status.is_success() {
            bail!("the endpoint answered {status}: {body}");
        }
        first.get_or_insert(body);
    }
    let _ = stop_tx.send(());
    server.await??;
    micros.sort_unstable();
    let q = |p: f64| micros[((micros.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    let dir = registry.version_dir("churn", version);
    println!(
        "[8/10] registry churn:v{version} promoted to production (atomic; rollback: millrace \
         models rollback churn)"
    );
    println!(
        "[9/10] endpoint {url} (SageMaker contract): {n} single-record JSON requests, one at a \
         time: p50 {:.2} ms, p99 {:.2} ms; first answer {}",
        q(0.5),
        q(0.99),
        first.unwrap_or_default().trim()
    );
    Ok(dir)
}

/// Streams fresh records one PutRecord at a time into a new stream that a scorer reads (the
/// same code `up` runs for a [[scoring]] section), and reads predictions off the output
/// stream as they arrive.
async fn live_stage(
    data_dir: &Path,
    store: &Arc<Store>,
    client: &aws_sdk_kinesis::Client,
    fresh: &[SinkRecord],
    names: &DemoStreams,
) -> anyhow::Result<()> {
    let scorer = live_scorer(data_dir, store, names).await?;
    let (live_in_name, live_out_name) = (names.live_in.as_str(), names.live_out.as_str());
    // Through the Kinesis API, polled every 2 ms when caught up: records go in one PutRecord
    // each, and predictions are read off the output from its end now, so a re-run shows only
    // its own.
    let api = Streams::Kinesis {
        client: client.clone(),
        poll: Duration::from_millis(2),
    };
    let live_in = api.sink(live_in_name)?;
    let out = api.source(live_out_name)?;
    let mut starts = Vec::new();
    for shard in out.shards().await? {
        let newest = out.newest(&shard).await?;
        starts.push((shard, newest));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let scoring = tokio::spawn(
        scorer
            .clone()
            .run(millrace_serve::score::RunMode::Forever, stop_rx.clone()),
    );
    let (tails, mut seen_rx) = tail_predictions(&out, starts, &stop_rx);
    // Let the scorer reach the stream's end and the readers take their positions.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let t = Instant::now();
    let start = tokio::time::Instant::now();
    let mut meter = LiveLatency::default();
    for (i, rec) in fresh.iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / LIVE_RATE)).await;
        let seq = live_in.put_record(rec).await?.sequence;
        meter.acknowledged(seq, Instant::now());
        while let Ok((seq, v, at)) = seen_rx.try_recv() {
            meter.predicted(seq, v, at);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while meter.waiting() > 0 && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), seen_rx.recv()).await {
            Ok(Some((seq, v, at))) => meter.predicted(seq, v, at),
            Ok(None) => break,
            Err(_) => {}
        }
    }
    let _ = stop_tx.send(true);
    scoring.await?.context("live scoring")?;
    for t in tails {
        let _ = t.await;
    }
    if meter.waiting() > 0 {
        bail!(
            "{} of {} fresh records got no prediction on {live_out_name} within 10 s",
            meter.waiting(),
            fresh.len()
        );
    }
    let (p50, p99) = meter.quantiles();
    println!(
        "[10/10] live    {} fresh records put one at a time ({LIVE_RATE:.0}/s) on {live_in_name}, \
         scored on arrival onto {live_out_name}: {} predictions, put ack → prediction readable \
         p50 {p50:.1} ms, p99 {p99:.1} ms, in {:.2}s",
        fresh.len(),
        meter.latencies.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

const LIVE_IN: &str = "churn-demo-live";
const LIVE_OUT: &str = "churn-demo-scored";

/// The live stage's input and output streams in the embedded store, and a scorer between them.
async fn live_scorer(
    data_dir: &Path,
    store: &Arc<Store>,
    names: &DemoStreams,
) -> anyhow::Result<Arc<millrace_serve::score::Scorer>> {
    let streams = Streams::Embedded(store.clone());
    streams
        .ensure(&names.live_in, Some(2))
        .await
        .context("creating the live stream")?;
    streams.ensure(&names.live_out, None).await?;
    let config = millrace_serve::score::ScoringConfig {
        name: Some("demo-live".into()),
        stream: names.live_in.clone(),
        model: "churn".into(),
        to_stream: names.live_out.clone(),
        error_stream: None,
        id_fields: None,
        explain: None,
        leases: None,
        lease_seconds: None,
    };
    let registry = crate::registry::open(data_dir);
    let state = DataDir::new(data_dir).state();
    let scorer = tokio::task::spawn_blocking(move || {
        millrace_serve::score::Scorer::new(config, registry, streams, &state, &Default::default())
    })
    .await??;
    Ok(Arc::new(scorer))
}

/// A prediction read off the output stream: its input's sequence number, the prediction, and
/// when it was read.
type Seen = (String, Value, Instant);

/// One reader per output shard, from `starts`, sending every prediction until `stop` is set.
fn tail_predictions(
    out: &Arc<dyn RecordSource>,
    starts: Vec<(String, Option<String>)>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> (
    Vec<tokio::task::JoinHandle<()>>,
    tokio::sync::mpsc::UnboundedReceiver<Seen>,
) {
    let (seen_tx, seen_rx) = tokio::sync::mpsc::unbounded_channel::<Seen>();
    let mut tails = Vec::new();
    for (shard, mut after) in starts {
        let (out, tx, stop) = (out.clone(), seen_tx.clone(), stop.clone());
        tails.push(tokio::spawn(async move {
            while !*stop.borrow() {
                let Ok(b) = out
                    .read(&shard, after.as_deref(), Duration::from_millis(100))
                    .await
                else {
                    break;
                };
                let now = Instant::now();
                if let Some(last) = b.records.last() {
                    after = Some(last.sequence.clone());
                }
                for rec in &b.records {
                    if let Ok(v) = serde_json::from_slice::<Value>(&rec.data) {
                        let seq = v
                            .get("source_sequence")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let _ = tx.send((seq, v, now));
                    }
                }
            }
        }));
    }
    (tails, seen_rx)
}

/// Pairs each acknowledged put with its prediction (either may be seen first) and keeps the
/// latency from the acknowledgement to the prediction being readable; prints the first few.
#[derive(Default)]
struct LiveLatency {
    acked: HashMap<String, Instant>,
    arrived: HashMap<String, (Value, Instant)>,
    latencies: Vec<f64>,
    shown: usize,
}

impl LiveLatency {
    fn acknowledged(&mut self, seq: String, at: Instant) {
        match self.arrived.remove(&seq) {
            Some((v, _)) => self.record(&v, 0.0),
            None => {
                self.acked.insert(seq, at);
            }
        }
    }

    fn predicted(&mut self, seq: String, v: Value, at: Instant) {
        match self.acked.remove(&seq) {
            Some(a) => {
                let ms = at.saturating_duration_since(a).as_secs_f64() * 1000.0;
                self.record(&v, ms);
            }
            None => {
                self.arrived.insert(seq, (v, at));
            }
        }
    }

    /// Acknowledged records without a prediction yet.
    fn waiting(&self) -> usize {
        self.acked.len()
    }

    fn record(&mut self, v: &Value, ms: f64) {
        self.latencies.push(ms);
        if self.shown < 5 {
            println!(
                "         live   {} → {} (churn probability {:.3}, model v{}) {ms:.1} ms after \
                 its PutRecord was acknowledged",
                v.get("customerID").and_then(Value::as_str).unwrap_or("?"),
                v.get("predicted_label")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
                v.get("probability")
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::NAN),
                v.get("model_version").and_then(Value::as_u64).unwrap_or(0)
            );
            self.shown += 1;
        }
    }

    /// p50 and p99 in milliseconds (NaN with no latencies).
    fn quantiles(&mut self) -> (f64, f64) {
        if self.latencies.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        self.latencies.sort_by(f64::total_cmp);
        let q = |p: f64| self.latencies[((self.latencies.len() - 1) as f64 * p).round() as usize];
        (q(0.5), q(0.99))
    }
}

/// The shipped churn job (examples/jobs/churn.toml) pointed at the demo's stream prefix.
const CHURN_JOB: &str = include_str!("../../../../examples/jobs/churn.toml");

async fn prep_stage(data_dir: &Path, lake_dir: &Path, stream: &str) -> anyhow::Result<String> {
    let t = Instant::now();
    let mut job = millrace_prep::Job::parse(CHURN_JOB, "examples/jobs/churn.toml", "churn")?;
    job.inputs[0].path = format!("raw/{}", millrace_io::kafka::short_name(stream));
    let opts = millrace_prep::RunOptions {
        default_lake: Some(lake_dir.display().to_string()),
        ..Default::default()
    };
    let _ = data_dir;
    let run = millrace_prep::JobRun::prepare(job, "examples/jobs/churn.toml", &opts).await?;
    let bar = crate::cmd::prep::ScanBar::start(run.progress());
    let report = run.execute().await;
    bar.finish();
    let report = report.context("running the churn prep job")?;
    let (input, output) = (&report.inputs[0], &report.outputs[0]);
    println!(
        "[5/10] prep     churn job (SQL on DataFusion): {} objects ({}) → {} customers, typed and \
         deduplicated, in {} (Parquet + manifest) in {:.2}s",
        input.objects,
        crate::cmd::prep::human_bytes(input.bytes),
        output.rows,
        output.location,
        t.elapsed().as_secs_f64()
    );
    // A first look at the curated data, through the same engine.
    let ctx = millrace_prep::context(&Default::default())?;
    let loc = millrace_prep::Location::resolve(&output.location, None, &Default::default())?;
    let table =
        millrace_prep::LakeTable::open("churn", &loc, None, None, &Default::default()).await?;
    ctx.register_table("churn", Arc::new(table))?;
    let (df, _) = millrace_prep::run_statements(
        &ctx,
        "SELECT Contract, count(*) AS customers, \
                round(avg(CASE WHEN Churn = 'Yes' THEN 1.0 ELSE 0.0 END), 3) AS churn_rate, \
                round(avg(tenure), 1) AS avg_tenure, round(avg(MonthlyCharges), 2) AS avg_monthly \
         FROM churn GROUP BY Contract ORDER BY churn_rate DESC",
        "demo summary",
        1,
    )
    .await?;
    if let Some(df) = df {
        let batches = df.collect().await?;
        println!(
            "{}",
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)?
        );
    }
    Ok(output.location.clone())
}

/// The shipped churn recipe (examples/recipes/churn.toml).
const CHURN_RECIPE: &str = include_str!("../../../../examples/recipes/churn.toml");

/// Fits the churn recipe on the curated data, writes the features and the fitted recipe to the
/// lake, and runs one raw record (as the producer sent it) through the fitted recipe.
async fn wrangle_stage(
    data_dir: &Path,
    lake_dir: &Path,
    curated: &str,
    sample: Option<&[u8]>,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let recipe = millrace_wrangle::Recipe::parse(CHURN_RECIPE, "examples/recipes/churn.toml")?;
    let (schema, batches) =
        crate::cmd::data_io::read_table(data_dir, curated, &Default::default()).await?;
    let (fitted, out) = tokio::task::spawn_blocking(move || {
        let frame = millrace_wrangle::Frame::from_batches(&schema, &batches)?;
        recipe.fit(frame)
    })
    .await??;
    let dir = lake_dir.join("features").join("churn");
    std::fs::create_dir_all(&dir)?;
    let features = dir.join("part-0.parquet").display().to_string();
    let bytes = crate::cmd::data_io::encode(&features, &out.to_batch()?)?;
    crate::cmd::data_io::write_bytes(&features, bytes, &Default::default()).await?;
    let state = dir.join("recipe.json");
    fitted.save(&state)?;
    println!(
        "[6/10] wrangle  churn recipe (7 steps) fitted on {} rows: {} kept, {} feature columns + \
         target, in {} in {:.2}s",
        fitted.rows_in,
        fitted.rows_out,
        fitted.features().count(),
        features,
        t.elapsed().as_secs_f64()
    );
    if let Some(raw) = sample {
        let record: Map<String, Value> = serde_json::from_slice(raw)?;
        let t = Instant::now();
        let one = fitted.transform_record(&record)?;
        let took = t.elapsed();
        let shown: Vec<String> = one
            .record(0)
            .iter()
            .take(4)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "              one raw record (tenure={}) → {} features in {:.0} µs through the same \
             fitted recipe: {} …",
            record
                .get("tenure")
                .map(|v| v.to_string())
                .unwrap_or_default(),
            fitted.features().count(),
            took.as_secs_f64() * 1e6,
            shown.join(", ")
        );
    }
    Ok(())
}

/// Trains the churn model on the curated data (quick mode), saves it as the next version of
/// `churn`, and scores one raw record as the producer sent it.
async fn automl_stage(
    data_dir: &Path,
    curated: &str,
    sample: Option<&[u8]>,
) -> anyhow::Result<u32> {
    use millrace_automl::report::Metrics;
    let t = Instant::now();
    let frame = crate::cmd::data_io::read_frame(data_dir, curated, &Default::default()).await?;
    let mut trained = tokio::task::spawn_blocking(move || {
        // The model the test figures describe (no final refit on every row), so scoring the
        // holdout written beside it reproduces them.
        millrace_automl::train::train(
            &frame,
            &millrace_automl::train::Options {
                refit_all: false,
                ..millrace_automl::train::Options::new("Churn")
            },
            &|_| {},
        )
    })
    .await?
    .context("training the churn model")?;
    let (version, dir) = crate::cmd::train::save(
        data_dir,
        "churn",
        curated,
        &mut trained,
        &Default::default(),
    )
    .await?;
    // The held-out rows the test figures come from, beside the model, so anyone can score
    // them with `millrace predict` and check the figures.
    let holdout = dir.join("holdout.csv").display().to_string();
    let bytes = crate::cmd::data_io::encode(&holdout, &trained.test_frame.to_batch()?)?;
    crate::cmd::data_io::write_bytes(&holdout, bytes, &Default::default()).await?;
    let r = &trained.report;
    let members = trained.model.members.len();
    let test = match &r.test {
        Metrics::Binary(m) => format!(
            "test AUC {:.3}, F1 {:.3}, accuracy {:.3} at threshold {:.3}",
            m.auc, m.f1, m.accuracy, r.threshold
        ),
        _ => String::new(),
    };
    println!(
        "[7/10] automl   {} candidates cross-validated on {} rows, ensemble of {members}: {test} \
         ({} held-out rows) → {} in {:.2}s",
        r.leaderboard.len(),
        r.train_rows,
        r.test_rows,
        dir.display(),
        t.elapsed().as_secs_f64()
    );
    if let Metrics::Binary(m) = &r.test {
        println!(
            "              test split: accuracy {:.4}, F1 {:.4}, AUC {:.4} — the reference build \
             (SageMaker Autopilot, ~10 min on AWS) published accuracy {REF_ACCURACY}, F1 \
             {REF_F1} on its own split; the {} held-out rows: {holdout}",
            m.accuracy, m.f1, m.auc, r.test_rows
        );
    }
    if let Some(line) = crate::cmd::train::cv_line(r) {
        println!("            {line}");
    }
    if let Some(raw) = sample {
        let record: Map<String, Value> = serde_json::from_slice(raw)?;
        let model = &trained.model;
        let fields: Vec<(millrace_wrangle::frame::Name, millrace_wrangle::Kind)> = model
            .input
            .iter()
            .map(|f| (f.name.as_str().into(), f.kind))
            .collect();
        let t = Instant::now();
        let one = millrace_wrangle::Frame::from_record(&record, &fields);
        let p = model.predict(&one)?;
        let took = t.elapsed();
        println!(
            "              one raw record → churn probability {:.3}, label {:?}, in {:.0} µs \
             (model {}:v{version})",
            p.values[0],
            p.labels(model)[0],
            took.as_secs_f64() * 1e6,
            model.name
        );
    }
    Ok(version)
}

/// Generated churn rows as JSON records of strings, keyed by customerID, like the reference
/// producer sent them.
fn generated(rows: usize, seed: u64) -> anyhow::Result<Vec<SinkRecord>> {
    churn::generate(rows, seed)
        .map(|row| {
            let obj: Map<String, Value> = churn::COLUMNS
                .iter()
                .zip(row)
                .map(|(k, v)| ((*k).to_owned(), Value::String(v)))
                .collect();
            let obj = Value::Object(obj);
            Ok(SinkRecord::new(
                partition_key(&obj, "customerID")?,
                serde_json::to_vec(&obj)?,
            ))
        })
        .collect()
}
