//! A channel into an Apache Iceberg table (S3 Tables destination), run by `up`'s channel
//! supervisor beside the object deliveries.
//!
//! One task per channel: every `DataFreshnessInSeconds` it reads each shard of the stream
//! after the table's own marks (the last sequence number per shard that the current snapshot
//! holds, see `millrace_tables`), turns the records into rows of the table's schema (JSON, or
//! GSR_JSON behind its 18-byte header), writes the records that do not fit as error objects
//! into the dead-letter bucket (keys named by their sequence range, so a replay rewrites the
//! same object), then appends the rest as one snapshot carrying the new marks. The table is
//! the checkpoint: a crash before the commit re-reads the same records, one after it does not.
//!
//! Schemas come from `[schemas]` (a JSON Schema file per GSRSchemaARN: there is no Glue
//! Schema Registry here); table buckets from `[table_buckets]` (local folders).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use millrace_delivery::DeliveryMetrics;
use millrace_gateway::channels::{ChannelSpec, RecordFormat, TablesDestination};
use millrace_io::{RecordSource, SourceRecord};
use millrace_lake::Lake;
use millrace_tables::{Column, ColumnKind, TableCompression, TableSpec, TableWriter};
use tokio::sync::watch;

/// Records read per shard and pass at most (one snapshot per pass).
const MAX_ROWS_PER_PASS: usize = 100_000;
/// The pause between passes when DataFreshnessInSeconds is 0.
const MIN_PAUSE: Duration = Duration::from_millis(200);

/// A table's columns from a JSON Schema: `properties` in order, `integer` → long, `number` →
/// double, `boolean`, `string` (with `format: date-time` → timestamptz); `required` columns
/// are not null.
pub fn columns_of_json_schema(text: &str) -> Result<Vec<Column>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let props = v["properties"]
        .as_object()
        .ok_or("a JSON Schema with \"properties\" is expected")?;
    let required: Vec<&str> = v["required"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    props
        .iter()
        .map(|(name, p)| {
            let types: Vec<&str> = match &p["type"] {
                serde_json::Value::String(t) => vec![t.as_str()],
                serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect(),
                _ => vec![],
            };
            let ty = types.iter().find(|t| **t != "null").copied().unwrap_or("");
            let kind = match (ty, p["format"].as_str()) {
                ("string", Some("date-time")) => ColumnKind::Timestamptz,
                ("string", _) => ColumnKind::String,
                ("integer", _) => ColumnKind::Long,
                ("number", _) => ColumnKind::Double,
                ("boolean", _) => ColumnKind::Boolean,
                (other, _) => {
                    return Err(format!(
                        "property {name}: type {other:?} is not supported (string, integer, \
                         number, boolean, string with format date-time)"
                    ));
                }
            };
            Ok(Column {
                name: name.clone(),
                kind,
                required: required.contains(&name.as_str()),
            })
        })
        .collect()
}

/// The JSON of a GSR_JSON record: after the 18-byte header (version 3, compression 0 or 5 =
/// zlib, a 16-byte schema version id).
fn gsr_payload(data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < 18 || data[0] != 3 {
        return Err("not a Glue Schema Registry record (no version-3 header)".into());
    }
    match data[1] {
        0 => Ok(data[18..].to_vec()),
        5 => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(&data[18..])
                .read_to_end(&mut out)
                .map_err(|e| format!("zlib: {e}"))?;
            Ok(out)
        }
        other => Err(format!("unknown GSR compression byte {other}")),
    }
}

pub struct TableRunner {
    pub spec: ChannelSpec,
    pub table: TableSpec,
    pub warehouse: PathBuf,
    pub source: Arc<dyn RecordSource>,
    pub errors: Lake,
    pub metrics: Arc<DeliveryMetrics>,
}

impl TableRunner {
    /// The runner of `spec`'s table: its schema read from `schema_file`.
    pub fn table_spec(t: &TablesDestination, schema_text: &str) -> Result<TableSpec, String> {
        let columns = columns_of_json_schema(schema_text)
            .map_err(|e| format!("schema {}: {e}", t.schema_arn))?;
        Ok(TableSpec {
            namespace: t.namespace.clone(),
            table: t.table.clone(),
            columns,
            hour_partition: t.hour_partitions.first().cloned(),
            compression: TableCompression::parse(&t.compression).unwrap_or_default(),
        })
    }

    /// Runs until `stop` turns true, then makes one last pass.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), String> {
        let mut writer = TableWriter::open(&self.warehouse, self.table.clone())
            .await
            .map_err(|e| {
                format!(
                    "opening table {}.{}: {e}",
                    self.table.namespace, self.table.table
                )
            })?;
        let pause = Duration::from_secs(self.spec.destination.freshness_secs.into()).max(MIN_PAUSE);
        loop {
            let stopping = *stop.borrow();
            self.pass(&mut writer).await?;
            if stopping {
                return Ok(());
            }
            tokio::select! {
                _ = stop.changed() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Reads what every shard has after the table's marks and appends it as one snapshot.
    async fn pass(&self, writer: &mut TableWriter) -> Result<(), String> {
        let marks = writer.committed();
        let mut records: Vec<(String, SourceRecord)> = Vec::new();
        let mut new_marks = BTreeMap::new();
        let shards = self.source.shards().await.map_err(|e| e.to_string())?;
        for shard in shards {
            let mut after = marks.get(&shard).cloned();
            let mut taken = 0;
            while taken < MAX_ROWS_PER_PASS {
                let batch = self
                    .source
                    .read(&shard, after.as_deref(), Duration::ZERO)
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(last) = batch.records.last() else {
                    break;
                };
                after = Some(last.sequence.clone());
                taken += batch.records.len();
                records.extend(batch.records.into_iter().map(|r| (shard.clone(), r)));
                if batch.caught_up {
                    break;
                }
            }
            if let Some(a) = after.filter(|a| marks.get(&shard) != Some(a)) {
                new_marks.insert(shard, a);
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        let (rows, mut failed) = self.rows(&records);
        let kept: Vec<serde_json::Value> = rows.iter().map(|(_, v)| v.clone()).collect();
        let table = format!("{}.{}", self.table.namespace, self.table.table);
        // Error objects first: a crash before the commit writes the same keys again.
        let rejected = writer.check(&kept).map_err(|e| format!("{table}: {e}"))?;
        for (i, e) in &rejected {
            failed.push((rows[*i].0, "format-conversion-failed", e.to_string()));
        }
        self.write_errors(&records, &failed).await?;
        writer
            .append(&kept, &new_marks)
            .await
            .map_err(|e| format!("appending to {table}: {e}"))?;
        let m = &self.metrics;
        m.records
            .fetch_add((kept.len() - rejected.len()) as u64, Ordering::Relaxed);
        m.error_records
            .fetch_add(failed.len() as u64, Ordering::Relaxed);
        m.objects.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Each record as a JSON row (with its index), and those that are not JSON objects.
    #[allow(clippy::type_complexity)]
    fn rows(
        &self,
        records: &[(String, SourceRecord)],
    ) -> (
        Vec<(usize, serde_json::Value)>,
        Vec<(usize, &'static str, String)>,
    ) {
        let mut rows = Vec::new();
        let mut failed = Vec::new();
        for (i, (_, r)) in records.iter().enumerate() {
            let bytes = match self.spec.source.record_format {
                RecordFormat::GsrJson => match gsr_payload(&r.data) {
                    Ok(b) => b,
                    Err(e) => {
                        failed.push((i, "invalid-gsr-record", e));
                        continue;
                    }
                },
                _ => r.data.to_vec(),
            };
            match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(v) if v.is_object() => rows.push((i, v)),
                Ok(_) => failed.push((i, "invalid-json", "the record is not a JSON object".into())),
                Err(e) => failed.push((i, "invalid-json", format!("the record is not JSON: {e}"))),
            }
        }
        (rows, failed)
    }

    /// Error records in Firehose's shape, one object per error type, named by the range.
    async fn write_errors(
        &self,
        records: &[(String, SourceRecord)],
        failed: &[(usize, &'static str, String)],
    ) -> Result<(), String> {
        let mut by_type: BTreeMap<&str, Vec<&(usize, &'static str, String)>> = BTreeMap::new();
        for f in failed {
            by_type.entry(f.1).or_default().push(f);
        }
        let prefix = self
            .spec
            .dead_letter()
            .error_output_prefix
            .unwrap_or_else(|| format!("errors/{}/", self.spec.name));
        for (kind, list) in by_type {
            let mut body = String::new();
            for (i, _, message) in &list {
                let (shard, r) = &records[*i];
                body.push_str(
                    &serde_json::json!({
                        "attemptsMade": 1,
                        "arrivalTimestamp": r.arrival_ms,
                        "errorCode": kind,
                        "errorMessage": message,
                        "shardId": shard,
                        "sequenceNumber": r.sequence,
                        "rawData": STANDARD.encode(&r.data),
                    })
                    .to_string(),
                );
                body.push('\n');
            }
            let first = &records[list[0].0].1.sequence;
            let last = &records[list[list.len() - 1].0].1.sequence;
            let key = format!("{prefix}{kind}/{}-{first}-{last}.json", self.spec.name);
            self.errors
                .put(&key, bytes::Bytes::from(body))
                .await
                .map_err(|e| format!("writing error object {key}: {e}"))?;
        }
        Ok(())
    }
}
