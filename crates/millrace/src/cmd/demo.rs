//! `millrace demo`: runs the pipeline once, end to end, on this machine with no setup.
//!
//! The demo starts the Kinesis-compatible stream API in-process, streams churn records through
//! it with the AWS SDK (as a producer would), consumes them back and checks every record
//! arrived once and intact, delivers the stream into the local lake, runs the shipped churn
//! prep job on DataFusion over it, fits the churn feature recipe on the result, and trains a
//! churn model on the curated data (the AutoML quick build), scoring one raw record with it.
//! Serving extends this command when it lands.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use aws_sdk_kinesis::types::ShardIteratorType;
use millrace_gateway::Gateway;
use millrace_stream::{Store, StoreOptions, StreamError, StreamMode};
use serde_json::{Map, Value};

use crate::cli::{DemoArgs, InputFormat};
use crate::cmd::produce::{Outgoing, partition_key, read_records, send_all};
use crate::generate::churn;
use crate::kinesis;

const STREAM: &str = "churn-demo";

pub async fn run(data_dir: &Path, args: DemoArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let (records, source) = match &args.csv {
        Some(path) => {
            let mut recs = read_records(path, Some(InputFormat::Csv), Some("customerID"))?;
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
    };
    let bytes: usize = records.iter().map(|r| r.data.len()).sum();
    println!(
        "[1/7] source   {} records, {:.2} MB of JSON, from {source}",
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
        Gateway::new(store.clone(), key),
        async {
            let _ = stop_rx.await;
        },
    ));

    let client = kinesis::client(Some(&url)).await;
    // Start reading where the stream ends now, so a re-run checks only its own records.
    let shards = client
        .list_shards()
        .stream_name(STREAM)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(kinesis::describe(&e)))?;
    let mut iterators = Vec::new();
    for shard in shards.shards() {
        let it = client
            .get_shard_iterator()
            .stream_name(STREAM)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::Latest)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(kinesis::describe(&e)))?;
        iterators.push((
            shard.shard_id().to_owned(),
            it.shard_iterator().unwrap_or_default().to_owned(),
        ));
    }

    let t = Instant::now();
    send_all(&client, STREAM, &records, true, None).await?;
    let produce_s = t.elapsed().as_secs_f64();
    println!(
        "[2/7] stream   {} records acknowledged by the Kinesis API at {url} in {produce_s:.2}s \
         ({:.0} records/s, fsync before every acknowledgement)",
        records.len(),
        records.len() as f64 / produce_s
    );

    let t = Instant::now();
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut per_shard = Vec::new();
    for (shard, mut it) in iterators {
        let mut n = 0;
        loop {
            let r = client
                .get_records()
                .shard_iterator(&it)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!(kinesis::describe(&e)))?;
            for rec in r.records() {
                *seen.entry(rec.data().as_ref().to_vec()).or_default() += 1;
            }
            n += r.records().len();
            it = r.next_shard_iterator().unwrap_or_default().to_owned();
            if r.records().is_empty() && r.millis_behind_latest() == Some(0) {
                break;
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
        "[3/7] consume  {read} records read back with GetRecords in {read_s:.2}s; per shard {}",
        per_shard.join(", ")
    );
    if missing > 0 || read != records.len() {
        bail!(
            "{missing} records missing, {read} read for {} sent",
            records.len()
        );
    }

    // Delivery into the lake, from the embedded stream, continuing from its checkpoints.
    let t = Instant::now();
    let lake_dir = data_dir.join("lake");
    let lake = millrace_lake::Lake::open(&lake_dir.display().to_string(), &Default::default())?;
    let mut config = millrace_delivery::DeliveryConfig::new("churn-demo-raw", STREAM);
    config.buffer_interval_secs = 1;
    let delivery = Arc::new(millrace_delivery::Delivery::new(
        config,
        lake,
        Arc::new(millrace_delivery::source::EmbeddedSource::new(
            store.stream(STREAM)?,
        )),
        &data_dir.join("state"),
    )?);
    let metrics = delivery.metrics();
    let (_keep, rx) = tokio::sync::watch::channel(false);
    delivery
        .run(millrace_delivery::RunMode::UntilCaughtUp, rx)
        .await
        .context("delivering the demo stream into the lake")?;
    let m = metrics.snapshot(millrace_stream::now_ms());
    println!(
        "[4/7] deliver  {} records into {} NDJSON objects under {} in {:.2}s ({} to the error prefix)",
        m.records,
        m.objects,
        lake_dir.join("raw").join(STREAM).display(),
        t.elapsed().as_secs_f64(),
        m.error_records
    );

    let _ = stop_tx.send(());
    server.await??;
    tokio::task::spawn_blocking(move || store.shutdown()).await?;

    let curated = prep_stage(data_dir, &lake_dir).await?;
    let sample = records.first().map(|r| r.data.clone());
    wrangle_stage(data_dir, &lake_dir, &curated, sample.as_deref()).await?;
    automl_stage(data_dir, &curated, sample.as_deref()).await?;
    println!(
        "done in {:.1}s: every record arrived exactly once, byte-identical. Stream data is in {}.",
        t0.elapsed().as_secs_f64(),
        data_dir.join("streams").join(STREAM).display()
    );
    println!(
        "Serving (the real-time endpoint) is not built yet. Query the curated data: millrace \
         query --table churn={}/curated/churn \"SELECT ...\"; profile it: millrace profile \
         --data {}/curated/churn --target Churn --out report; score a file: millrace predict \
         --model churn --input FILE.csv --output scored.csv",
        lake_dir.display(),
        lake_dir.display()
    );
    Ok(())
}

/// The shipped churn job (examples/jobs/churn.toml) pointed at the demo's stream prefix.
const CHURN_JOB: &str = include_str!("../../../../examples/jobs/churn.toml");

async fn prep_stage(data_dir: &Path, lake_dir: &Path) -> anyhow::Result<String> {
    let t = Instant::now();
    let mut job = millrace_prep::Job::parse(CHURN_JOB, "examples/jobs/churn.toml", "churn")?;
    job.inputs[0].path = format!("raw/{STREAM}");
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
        "[5/7] prep     churn job (SQL on DataFusion): {} objects ({}) → {} customers, typed and \
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
        "[6/7] wrangle  churn recipe (7 steps) fitted on {} rows: {} kept, {} feature columns + \
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
async fn automl_stage(data_dir: &Path, curated: &str, sample: Option<&[u8]>) -> anyhow::Result<()> {
    use millrace_automl::report::Metrics;
    let t = Instant::now();
    let frame = crate::cmd::data_io::read_frame(data_dir, curated, &Default::default()).await?;
    let mut trained = tokio::task::spawn_blocking(move || {
        millrace_automl::train::train(
            &frame,
            &millrace_automl::train::Options::new("Churn"),
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
        "[7/7] automl   {} candidates cross-validated on {} rows, ensemble of {members}: {test} \
         ({} held-out rows) → {} in {:.2}s",
        r.leaderboard.len(),
        r.train_rows,
        r.test_rows,
        dir.display(),
        t.elapsed().as_secs_f64()
    );
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
    Ok(())
}

/// Generated churn rows as JSON records of strings, keyed by customerID, like the reference
/// producer sent them.
fn generated(rows: usize, seed: u64) -> anyhow::Result<Vec<Outgoing>> {
    churn::generate(rows, seed)
        .map(|row| {
            let obj: Map<String, Value> = churn::COLUMNS
                .iter()
                .zip(row)
                .map(|(k, v)| ((*k).to_owned(), Value::String(v)))
                .collect();
            let obj = Value::Object(obj);
            Ok(Outgoing {
                key: partition_key(&obj, "customerID")?,
                data: serde_json::to_vec(&obj)?,
            })
        })
        .collect()
}
