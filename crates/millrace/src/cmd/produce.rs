//! `millrace produce`: a Kinesis (PutRecord/PutRecords) or Firehose (PutRecord/PutRecordBatch)
//! producer over the official AWS SDKs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use millrace_io::sink::{self, Retry};
use millrace_io::{RecordSink, SinkRecord};
use serde_json::{Map, Value};

use crate::kinesis;

use clap::{Args, ValueEnum};

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// API endpoint, e.g. http://127.0.0.1:4567 (millrace serves Kinesis and Firehose on one
    /// port). Omit for real Amazon Kinesis / Data Firehose.
    #[arg(long)]
    pub endpoint_url: Option<String>,
    /// Stream to write to: a Kinesis stream, a Kafka topic as kafka://HOST:PORT/TOPIC (records
    /// keyed by partition key, Kafka's Java partitioner), or with --to firehose a delivery stream.
    #[arg(long)]
    pub stream: String,
    /// The API to write with: kinesis (PutRecord/PutRecords) or firehose (PutRecord/
    /// PutRecordBatch into a DirectPut delivery stream).
    #[arg(long, value_enum, default_value_t = Target::Kinesis)]
    pub to: Target,
    /// Input: a .csv file (header row), an NDJSON/JSON file, or a folder of such files.
    #[arg(long)]
    pub file: PathBuf,
    /// Field whose value is each record's partition key (default: a random key per record).
    #[arg(long)]
    pub partition_key: Option<String>,
    /// Most records per second (default: as fast as the stream acknowledges).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Send in batches (PutRecords: 500 records / 5 MiB per call; PutRecordBatch: 500 / 4 MiB)
    /// instead of one PutRecord each.
    #[arg(long)]
    pub batch: bool,
    /// Create the stream with this many shards if it does not exist, and wait until active
    /// (a Kinesis stream's shards, or a Kafka topic's partitions).
    #[arg(long)]
    pub create_shards: Option<u32>,
    /// Format of --file when its extension does not tell.
    #[arg(long, value_enum)]
    pub format: Option<RecordFileFormat>,
}

/// Which API `produce` writes with.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Target {
    Kinesis,
    Firehose,
}

/// The format of a file of records sent to a stream (`produce --format`).
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RecordFileFormat {
    Csv,
    /// One JSON value per line, or JSON values one after another (Firehose style).
    Json,
}

/// Tries per PutRecords batch: failed (throttled) records are re-sent alone, after 50 ms
/// doubling up to 3.2 s.
const RETRY: Retry = Retry {
    attempts: 8,
    first_backoff: Duration::from_millis(50),
    max_backoff: Duration::from_millis(3200),
};

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let records = read_records(&args.file, args.format, args.partition_key.as_deref())?;
    if records.is_empty() {
        bail!("{} holds no records", args.file.display());
    }
    let sink = sink(&args).await?;
    let bytes: usize = records.iter().map(|r| r.data.len()).sum();
    let started = Instant::now();
    send_all(&*sink, &records, args.batch, args.rate).await?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "produced {} records ({:.1} MB) to {} {} in {secs:.2}s ({:.0} records/s); every record acknowledged",
        records.len(),
        bytes as f64 / 1e6,
        match args.to {
            Target::Kinesis => "stream",
            Target::Firehose => "delivery stream",
        },
        args.stream,
        records.len() as f64 / secs.max(1e-9),
    );
    Ok(())
}

/// The stream `args` names, through the API it names.
async fn sink(args: &ProduceArgs) -> anyhow::Result<std::sync::Arc<dyn RecordSink>> {
    let endpoint = args.endpoint_url.as_deref();
    if args.to == Target::Firehose {
        if args.create_shards.is_some() {
            bail!(
                "--create-shards is for Kinesis streams; create delivery streams with CreateDeliveryStream"
            );
        }
        let client = kinesis::firehose_client(endpoint).await;
        return Ok(std::sync::Arc::new(millrace_io::FirehoseSink::new(
            client,
            &args.stream,
        )));
    }
    let streams = kinesis::streams_for(&[&args.stream], endpoint).await;
    if let Some(shards) = args.create_shards {
        let created = streams
            .ensure(&args.stream, Some(shards))
            .await
            .with_context(|| format!("creating stream {}", args.stream))?;
        if created {
            eprintln!("created stream {} with {shards} shards", args.stream);
        }
    }
    Ok(streams.sink(&args.stream)?)
}

/// Sends every record, with a progress bar, and returns once all are acknowledged: in
/// PutRecords batches (split by the Kinesis limits, failed records retried) when `batch`,
/// otherwise one PutRecord each.
pub async fn send_all(
    sink: &dyn RecordSink,
    records: &[SinkRecord],
    batch: bool,
    rate: Option<f64>,
) -> anyhow::Result<()> {
    let bar = ProgressBar::new(records.len() as u64).with_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} records ({per_sec}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(format!("producing to {}", sink.stream()));
    let pacer = Pacer::new(rate);
    if batch {
        for range in sink::batches_for(sink, records) {
            let (start, end) = (range.start, range.end);
            pacer.wait(end as u64).await;
            sink::put_with_retry(sink, &records[range], RETRY)
                .await
                .map_err(|e| sink::offset(e, start))
                .with_context(|| format!("PutRecords of records {start}..{end}"))?;
            bar.set_position(end as u64);
        }
    } else {
        for (i, r) in records.iter().enumerate() {
            pacer.wait(i as u64 + 1).await;
            sink.put_record(r).await.with_context(|| {
                format!(
                    "PutRecord of record {i} (partition key {:?})",
                    r.partition_key
                )
            })?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// Keeps the send rate at or under `rate` records per second.
struct Pacer {
    rate: Option<f64>,
    start: Instant,
}

impl Pacer {
    fn new(rate: Option<f64>) -> Self {
        Self {
            rate: rate.filter(|r| *r > 0.0),
            start: Instant::now(),
        }
    }

    /// Waits until `sent` records may have been sent.
    async fn wait(&self, sent: u64) {
        if let Some(rate) = self.rate {
            let due = self.start + Duration::from_secs_f64(sent.saturating_sub(1) as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

pub fn read_records(
    path: &Path,
    format: Option<RecordFileFormat>,
    key_field: Option<&str>,
) -> anyhow::Result<Vec<SinkRecord>> {
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading folder {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_owned()]
    };
    let mut out = Vec::new();
    for file in files {
        let fmt = format.unwrap_or_else(|| {
            if file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
            {
                RecordFileFormat::Csv
            } else {
                RecordFileFormat::Json
            }
        });
        let objects = match fmt {
            RecordFileFormat::Csv => read_csv(&file)?,
            RecordFileFormat::Json => read_json(&file)?,
        };
        for (i, obj) in objects.into_iter().enumerate() {
            let key = match key_field {
                Some(field) => partition_key(&obj, field)
                    .with_context(|| format!("record {} of {}", i + 1, file.display()))?,
                None => format!("{:032x}", rand::random::<u128>()),
            };
            let data = serde_json::to_vec(&obj).expect("JSON values serialise");
            out.push(SinkRecord::new(key, data));
        }
    }
    Ok(out)
}

pub fn partition_key(obj: &Value, field: &str) -> anyhow::Result<String> {
    let v = obj
        .get(field)
        .with_context(|| format!("has no field {field:?} for --partition-key"))?;
    let key = match v {
        Value::String(s) => s.clone(),
        Value::Null => bail!("field {field:?} is null; a partition key needs a value"),
        other => other.to_string(),
    };
    if key.is_empty() || key.chars().count() > 256 {
        bail!("field {field:?} must give a partition key of 1 to 256 characters, got {key:?}");
    }
    Ok(key)
}

/// Each row becomes a JSON object of strings, keyed by the header, in column order.
fn read_csv(path: &Path) -> anyhow::Result<Vec<Value>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?
        .clone();
    let mut rows = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
        let mut obj = Map::new();
        for (h, v) in headers.iter().zip(row.iter()) {
            obj.insert(h.to_owned(), Value::String(v.to_owned()));
        }
        rows.push(Value::Object(obj));
    }
    Ok(rows)
}

/// JSON values one per line or back to back (`{..}{..}`, as Firehose writes them).
fn read_json(path: &Path) -> anyhow::Result<Vec<Value>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut values = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(&bytes).into_iter::<Value>();
    loop {
        let offset = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(v)) => values.push(v),
            Some(Err(e)) => bail!(
                "{}: invalid JSON after byte {offset} (record {}): {e}",
                path.display(),
                values.len() + 1
            ),
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_concatenated_json_objects() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        std::fs::write(
            &p,
            br#"{"a":"1"}{"a":"2"}
{"a":"3"}"#,
        )
        .unwrap();
        let v = read_json(&p).unwrap();
        assert_eq!(v.len(), 3);
        std::fs::write(&p, br#"{"a":"1"}{"a":"#).unwrap();
        let e = read_json(&p).unwrap_err().to_string();
        assert!(e.contains("record 2"), "{e}");
    }

    #[test]
    fn csv_rows_become_string_objects_in_column_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "id,tenure,z\nA-1,58,\n").unwrap();
        let recs = read_records(&p, None, Some("id")).unwrap();
        assert_eq!(recs[0].partition_key, "A-1");
        assert_eq!(
            std::str::from_utf8(&recs[0].data).unwrap(),
            r#"{"id":"A-1","tenure":"58","z":""}"#
        );
        let err = read_records(&p, None, Some("missing")).unwrap_err();
        assert!(format!("{err:#}").contains("missing"));
    }
}
