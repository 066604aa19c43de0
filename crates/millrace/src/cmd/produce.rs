//! `millrace produce`: a Kinesis producer over the official AWS SDK.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

use crate::cli::{InputFormat, ProduceArgs};
use crate::kinesis;

/// One record ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub key: String,
    pub data: Vec<u8>,
}

const MAX_BATCH_RECORDS: usize = 500;
const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;
const MAX_ATTEMPTS: u32 = 8;

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let records = read_records(&args.file, args.format, args.partition_key.as_deref())?;
    if records.is_empty() {
        bail!("{} holds no records", args.file.display());
    }
    let client = kinesis::client(args.endpoint_url.as_deref()).await;
    if let Some(shards) = args.create_shards {
        ensure_stream(&client, &args.stream, shards).await?;
    }
    let bytes: usize = records.iter().map(|r| r.data.len()).sum();
    let started = Instant::now();
    send_all(&client, &args.stream, &records, args.batch, args.rate).await?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "produced {} records ({:.1} MB) to stream {} in {secs:.2}s ({:.0} records/s); every record acknowledged",
        records.len(),
        bytes as f64 / 1e6,
        args.stream,
        records.len() as f64 / secs.max(1e-9),
    );
    Ok(())
}

/// Sends every record, with a progress bar, and returns once all are acknowledged.
pub async fn send_all(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    records: &[Outgoing],
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
    bar.set_message(format!("producing to {stream}"));
    let pacer = Pacer::new(rate);
    if batch {
        let mut i = 0;
        while i < records.len() {
            let mut end = i;
            let mut size = 0;
            while end < records.len() && end - i < MAX_BATCH_RECORDS {
                let s = records[end].data.len() + records[end].key.len();
                if end > i && size + s > MAX_BATCH_BYTES {
                    break;
                }
                size += s;
                end += 1;
            }
            pacer.wait(end as u64).await;
            put_batch(client, stream, &records[i..end], i).await?;
            bar.set_position(end as u64);
            i = end;
        }
    } else {
        for (i, r) in records.iter().enumerate() {
            pacer.wait(i as u64 + 1).await;
            client
                .put_record()
                .stream_name(stream)
                .partition_key(&r.key)
                .data(Blob::new(r.data.clone()))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!(kinesis::describe(&e)))
                .with_context(|| format!("PutRecord of record {i} (partition key {:?})", r.key))?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(())
}

/// Sends one PutRecords call, retrying only the records that failed, with backoff.
async fn put_batch(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    batch: &[Outgoing],
    first_index: usize,
) -> anyhow::Result<()> {
    let mut pending: Vec<usize> = (0..batch.len()).collect();
    for attempt in 0..MAX_ATTEMPTS {
        let entries = pending
            .iter()
            .map(|&j| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&batch[j].key)
                    .data(Blob::new(batch[j].data.clone()))
                    .build()
                    .expect("partition key and data are set")
            })
            .collect::<Vec<_>>();
        let out = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(kinesis::describe(&e)))
            .with_context(|| {
                format!(
                    "PutRecords of records {}..{}",
                    first_index,
                    first_index + batch.len()
                )
            })?;
        let mut failed = Vec::new();
        let mut last_error = String::new();
        for (slot, res) in pending.iter().zip(out.records()) {
            if let Some(code) = res.error_code() {
                last_error = format!("{code}: {}", res.error_message().unwrap_or(""));
                failed.push(*slot);
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        if attempt + 1 == MAX_ATTEMPTS {
            bail!(
                "{} records (first: record {}) were not acknowledged after {MAX_ATTEMPTS} \
                 attempts; last error {last_error}",
                failed.len(),
                first_index + failed[0]
            );
        }
        tracing::warn!(failed = failed.len(), error = %last_error, "retrying failed records");
        tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
        pending = failed;
    }
    unreachable!("loop returns or bails")
}

pub async fn ensure_stream(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    shards: u32,
) -> anyhow::Result<()> {
    match client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            client
                .create_stream()
                .stream_name(stream)
                .shard_count(shards as i32)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!(kinesis::describe(&e)))
                .with_context(|| format!("creating stream {stream}"))?;
            eprintln!("created stream {stream} with {shards} shards");
        }
        Err(e) => {
            return Err(anyhow::anyhow!(kinesis::describe(&e)))
                .with_context(|| format!("describing stream {stream}"));
        }
    }
    // Real Kinesis takes a while to make a new stream ACTIVE.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let s = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(kinesis::describe(&e)))?;
        let status = s
            .stream_description_summary()
            .map(|d| d.stream_status().clone());
        if status == Some(StreamStatus::Active) || status == Some(StreamStatus::Updating) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("stream {stream} did not become ACTIVE within 5 minutes");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
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
    format: Option<InputFormat>,
    key_field: Option<&str>,
) -> anyhow::Result<Vec<Outgoing>> {
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
                InputFormat::Csv
            } else {
                InputFormat::Json
            }
        });
        let objects = match fmt {
            InputFormat::Csv => read_csv(&file)?,
            InputFormat::Json => read_json(&file)?,
        };
        for (i, obj) in objects.into_iter().enumerate() {
            let key = match key_field {
                Some(field) => partition_key(&obj, field)
                    .with_context(|| format!("record {} of {}", i + 1, file.display()))?,
                None => format!("{:032x}", rand::random::<u128>()),
            };
            let data = serde_json::to_vec(&obj).expect("JSON values serialise");
            out.push(Outgoing { key, data });
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
        assert_eq!(recs[0].key, "A-1");
        assert_eq!(
            std::str::from_utf8(&recs[0].data).unwrap(),
            r#"{"id":"A-1","tenure":"58","z":""}"#
        );
        let err = read_records(&p, None, Some("missing")).unwrap_err();
        assert!(format!("{err:#}").contains("missing"));
    }
}
