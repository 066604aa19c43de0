//! Turns a buffer of records into lake objects: validation, dynamic partitioning, prefixes,
//! NDJSON / concatenation / Parquet encoding and compression, and error records for whatever
//! cannot be delivered. Pure and deterministic: the same records give the same objects, which
//! is what makes replay after a crash rewrite instead of duplicate.
//!
//! A buffer's records are first expanded (KPL de-aggregation, decompression, CloudWatch Logs
//! message extraction, then record splitting, in Firehose's order), so every sub-record of a
//! source record is in the same buffer, under its sequence number.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use base64::Engine;
use bytes::Bytes;
use millrace_io::SourceRecord;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::cloudwatch::{self, LogsError};
use crate::config::{ColumnType, Compression, Decompress, DeliveryConfig, Format, Split};
use crate::prefix::{self, Template};
use crate::query::{self, PartitionQuery};
use crate::{DeliveryError, Result, kpl, split};
use millrace_common::keys::{MAX_SEGMENT_BYTES, escape_segment};

/// One object to commit.
#[derive(Debug)]
pub struct Object {
    pub key: String,
    pub bytes: Bytes,
    pub records: u64,
    pub data_bytes: u64,
    pub is_error: bool,
}

/// A delivery config made ready for encoding.
#[derive(Debug, Clone)]
pub struct Encoder {
    name: String,
    /// Records larger than this go to the error prefix (`max_record_kib`).
    max_record_bytes: usize,
    format: Format,
    compression: Compression,
    prefix: Template,
    error_prefix: Template,
    partitioning: Vec<(String, Vec<String>)>,
    /// `partition_query`, compiled once; exclusive with `partitioning`.
    query: Option<PartitionQuery>,
    schema: Option<Arc<Schema>>,
    /// `deaggregate_kpl`: KPL aggregated records become their user records.
    deaggregate_kpl: bool,
    /// `split_records`: Firehose's RecordDeAggregation.
    split: Option<Split>,
    /// `decompress`: Firehose's Decompression processor.
    decompress: Option<Decompress>,
    /// `extract_log_messages`: CloudWatchLogProcessing with DataMessageExtraction.
    extract_log_messages: bool,
    /// `file_extension`: the data objects' extension instead of the format's.
    file_extension: Option<String>,
}

struct Failed<'a> {
    /// The record as it failed: borrowed from the buffer, or a sub-record made from it.
    rec: Cow<'a, SourceRecord>,
    /// Firehose's error output type: the `!{firehose:error-output-type}` folder.
    kind: &'static str,
    /// The record's `errorCode`.
    code: &'static str,
    message: String,
}

impl<'a> Failed<'a> {
    /// A failure whose error code is its output type.
    fn new(rec: &'a SourceRecord, kind: &'static str, message: String) -> Self {
        Self {
            rec: Cow::Borrowed(rec),
            kind,
            code: kind,
            message,
        }
    }
}

/// Where records whose partition keys cannot be had go, as Firehose names it.
const PARTITIONING_FAILED: &str = "partitioning-failed";
/// Firehose's error code for them (inline parsing: jq, or here field paths too).
const METADATA_EXTRACTION_FAILED: &str = "DynamicPartitioning.MetadataExtractionFailed";
/// Where records that cannot be split go (Firehose's output type for processing failures).
const PROCESSING_FAILED: &str = "processing-failed";
/// Their error code (Firehose documents none for de-aggregation failures).
const DEAGGREGATION_FAILED: &str = "RecordDeAggregation.Failed";
/// The error codes of records the CloudWatch Logs processors cannot read.
const DECOMPRESSION_FAILED: &str = "Decompression.Failed";
const LOG_PROCESSING_FAILED: &str = "CloudWatchLogProcessing.Failed";

/// One group of records sharing a prefix: its partition values (the prefix is rendered again
/// for the object, with its random strings) and its records with their parsed JSON.
struct Group<'a> {
    parts: BTreeMap<String, String>,
    records: Vec<(&'a SourceRecord, Option<Value>)>,
}

impl Encoder {
    pub fn new(cfg: &DeliveryConfig) -> Result<Self> {
        let zone = cfg
            .time_zone
            .as_deref()
            .map(prefix::time_zone)
            .transpose()
            .map_err(|e| DeliveryError::Config(format!("time_zone: {e}")))?;
        let prefix = Template::parse(&cfg.prefix_template())
            .map_err(DeliveryError::Config)?
            .in_zone(zone);
        let error_prefix = Template::parse(&cfg.error_prefix_template())
            .map_err(DeliveryError::Config)?
            .in_zone(zone);
        let partitioning = cfg
            .partitioning
            .iter()
            .map(|(k, q)| {
                let path = q
                    .trim_start_matches('.')
                    .split('.')
                    .map(str::to_owned)
                    .collect();
                (k.clone(), path)
            })
            .collect();
        let query = cfg
            .partition_query
            .as_deref()
            .map(PartitionQuery::compile)
            .transpose()
            .map_err(|e| DeliveryError::Config(format!("partition_query: {e}")))?;
        let schema = (!cfg.schema.is_empty()).then(|| {
            Arc::new(Schema::new(
                cfg.schema
                    .iter()
                    .map(|c| Field::new(&c.name, arrow_type(c.kind), true))
                    .collect::<Vec<_>>(),
            ))
        });
        Ok(Self {
            name: cfg.name.clone(),
            max_record_bytes: cfg.max_record_kib as usize * 1024,
            format: cfg.format,
            compression: cfg.compression,
            prefix,
            error_prefix,
            partitioning,
            query,
            schema,
            deaggregate_kpl: cfg.deaggregate_kpl,
            split: cfg.split_records.clone(),
            decompress: cfg.decompress,
            extract_log_messages: cfg.extract_log_messages,
            file_extension: cfg.file_extension.clone(),
        })
    }

    /// The buffer's records after KPL de-aggregation and record splitting (borrowed as they
    /// are when neither is on), and the records that could not be split. Sub-records keep
    /// their source record's sequence number and arrival time.
    fn expand<'a>(
        &self,
        records: &'a [SourceRecord],
    ) -> (Cow<'a, [SourceRecord]>, Vec<Failed<'static>>) {
        // Most Kinesis records are not aggregated: then nothing is copied.
        let any_aggregate =
            self.deaggregate_kpl && records.iter().any(|r| r.data.starts_with(&kpl::MAGIC));
        let logs = self.decompress.is_some() || self.extract_log_messages;
        if !any_aggregate && !logs && self.split.is_none() {
            return (Cow::Borrowed(records), Vec::new());
        }
        let mut out = Vec::with_capacity(records.len());
        let mut failed = Vec::new();
        for rec in records {
            for user in self.user_records(rec) {
                let users = match self.log_records(user) {
                    Ok(users) => users,
                    Err((user, e)) => {
                        let code = match e {
                            LogsError::Gzip(_) | LogsError::TooLarge => DECOMPRESSION_FAILED,
                            _ => LOG_PROCESSING_FAILED,
                        };
                        failed.push(Failed {
                            rec: Cow::Owned(user),
                            kind: PROCESSING_FAILED,
                            code,
                            message: e.to_string(),
                        });
                        continue;
                    }
                };
                for user in users {
                    match &self.split {
                        None => out.push(user),
                        Some(how) => match split::split(&user.data, how) {
                            Ok(pieces) => out.extend(pieces.into_iter().map(|data| SourceRecord {
                                data,
                                ..user.clone()
                            })),
                            Err(e) => failed.push(Failed {
                                rec: Cow::Owned(user),
                                kind: PROCESSING_FAILED,
                                code: DEAGGREGATION_FAILED,
                                message: e.to_string(),
                            }),
                        },
                    }
                }
            }
        }
        (Cow::Owned(out), failed)
    }

    /// A record after the CloudWatch Logs processors: inflated (`decompress`), then one
    /// record per log message (`extract_log_messages`); the record as it came when it cannot
    /// be read so.
    fn log_records(
        &self,
        rec: SourceRecord,
    ) -> std::result::Result<Vec<SourceRecord>, (SourceRecord, LogsError)> {
        let data = match self.decompress {
            Some(Decompress::Gzip) => match cloudwatch::gunzip(&rec.data) {
                Ok(d) => d,
                Err(e) => return Err((rec, e)),
            },
            None => rec.data.clone(),
        };
        if !self.extract_log_messages {
            return Ok(vec![SourceRecord { data, ..rec }]);
        }
        match cloudwatch::log_messages(&data) {
            Ok(lines) => Ok(lines
                .into_iter()
                .map(|data| SourceRecord {
                    data,
                    ..rec.clone()
                })
                .collect()),
            Err(e) => Err((rec, e)),
        }
    }

    /// A record's KPL user records when it is an aggregated one (and de-aggregation is on),
    /// otherwise the record itself.
    fn user_records(&self, rec: &SourceRecord) -> Vec<SourceRecord> {
        let users = match self.deaggregate_kpl.then(|| kpl::deaggregate(&rec.data)) {
            Some(Ok(users)) => users,
            _ => return vec![rec.clone()],
        };
        users
            .into_iter()
            .map(|u| SourceRecord {
                sequence: rec.sequence.clone(),
                arrival_ms: rec.arrival_ms,
                partition_key: u.partition_key,
                data: u.data,
            })
            .collect()
    }

    /// The data objects' extension: `file_extension`, or the format's.
    fn data_extension(&self) -> &str {
        self.file_extension
            .as_deref()
            .unwrap_or_else(|| self.extension())
    }

    fn extension(&self) -> &'static str {
        match (self.format, self.compression) {
            (Format::Parquet, _) => ".parquet",
            (Format::Ndjson, Compression::Gzip) => ".json.gz",
            (Format::Ndjson, Compression::Zstd) => ".json.zst",
            (Format::Ndjson, _) => ".json",
            (Format::Concat | Format::Lines, Compression::Gzip) => ".gz",
            (Format::Concat | Format::Lines, Compression::Zstd) => ".zst",
            (Format::Concat | Format::Lines, _) => "",
        }
    }

    /// Encodes the records of one shard's buffer into objects (data and errors).
    pub fn encode(&self, shard: &str, records: &[SourceRecord]) -> Result<Vec<Object>> {
        if self.query.is_none() {
            return self.encode_here(shard, records);
        }
        // jq runs on a thread with a stack of known size, started once per buffer.
        query::on_eval_stack(|| self.encode_here(shard, records)).map_err(|e| {
            DeliveryError::Encode(format!("starting the partition_query thread: {e}"))
        })?
    }

    fn encode_here(&self, shard: &str, records: &[SourceRecord]) -> Result<Vec<Object>> {
        let (records, mut failed) = self.expand(records);
        // A parsed tree is needed for Parquet and partitioning; NDJSON alone only validates,
        // which is several times cheaper.
        let needs_tree =
            self.format == Format::Parquet || !self.partitioning.is_empty() || self.query.is_some();
        let validate = self.format == Format::Ndjson;
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        for rec in records.iter() {
            if rec.data.len() > self.max_record_bytes {
                failed.push(Failed::new(
                    rec,
                    "record-too-large",
                    format!(
                        "record of {} bytes exceeds the {}-byte delivery limit (max_record_kib)",
                        rec.data.len(),
                        self.max_record_bytes
                    ),
                ));
                continue;
            }
            let multiline = validate && (rec.data.contains(&b'\n') || rec.data.contains(&b'\r'));
            let parsed = if needs_tree || multiline {
                serde_json::from_slice::<Value>(&rec.data).map(Some)
            } else if validate {
                serde_json::from_slice::<serde::de::IgnoredAny>(&rec.data).map(|_| None)
            } else {
                Ok(None)
            };
            let value = match parsed {
                Ok(v) => v,
                Err(e) => {
                    failed.push(Failed::new(
                        rec,
                        "invalid-json",
                        format!("record is not JSON: {e}"),
                    ));
                    continue;
                }
            };
            let parts = match self.partition_keys(value.as_ref()) {
                Ok(parts) => parts,
                Err(message) => {
                    failed.push(Failed {
                        rec: Cow::Borrowed(rec),
                        kind: PARTITIONING_FAILED,
                        code: METADATA_EXTRACTION_FAILED,
                        message,
                    });
                    continue;
                }
            };
            let prefix = self.prefix.render(rec.arrival_ms, &parts, "");
            groups
                .entry(prefix)
                .or_insert_with(|| Group {
                    parts,
                    records: Vec::new(),
                })
                .records
                .push((rec, value));
        }

        let mut objects = Vec::new();
        for (
            prefix,
            Group {
                parts,
                records: group,
            },
        ) in groups
        {
            let (body, kept) = match self.format {
                Format::Ndjson => {
                    let mut buf =
                        Vec::with_capacity(group.iter().map(|(r, _)| r.data.len() + 1).sum());
                    for (rec, value) in &group {
                        if rec.data.contains(&b'\n') || rec.data.contains(&b'\r') {
                            // Pretty-printed JSON would break the one-record-per-line contract.
                            serde_json::to_writer(&mut buf, value.as_ref().expect("parsed"))
                                .expect("writing to a Vec");
                        } else {
                            buf.extend_from_slice(&rec.data);
                        }
                        buf.push(b'\n');
                    }
                    (buf, group.iter().map(|(r, _)| *r).collect::<Vec<_>>())
                }
                Format::Concat | Format::Lines => {
                    let newline = self.format == Format::Lines;
                    let size = group.iter().map(|(r, _)| r.data.len() + 1).sum();
                    let mut buf = Vec::with_capacity(size);
                    for (rec, _) in &group {
                        buf.extend_from_slice(&rec.data);
                        if newline {
                            buf.push(b'\n');
                        }
                    }
                    (buf, group.iter().map(|(r, _)| *r).collect())
                }
                Format::Parquet => {
                    let (batch, kept, bad) = self.to_arrow(&group);
                    failed.extend(bad);
                    if kept.is_empty() {
                        continue;
                    }
                    (self.parquet(&batch)?, kept)
                }
            };
            if kept.is_empty() {
                continue;
            }
            let body = self.compress(body)?;
            let name = format!(
                "{}-{shard}-{}-{}{}",
                self.name,
                kept[0].sequence,
                kept[kept.len() - 1].sequence,
                self.data_extension()
            );
            let prefix = object_prefix(&self.prefix, prefix, &name, |identity| {
                self.prefix
                    .render_object(kept[0].arrival_ms, &parts, "", identity)
            });
            objects.push(Object {
                key: format!("{prefix}{name}"),
                bytes: Bytes::from(body),
                records: kept.len() as u64,
                data_bytes: kept.iter().map(|r| r.data.len() as u64).sum(),
                is_error: false,
            });
        }
        objects.extend(self.error_objects(shard, failed));
        Ok(objects)
    }

    /// The escaped `!{partitionKeyFromQuery:NAME}` values of one record, from the field paths
    /// of `partitioning` or from `partition_query`; empty without dynamic partitioning.
    fn partition_keys(&self, value: Option<&Value>) -> Result<BTreeMap<String, String>, String> {
        let mut parts = BTreeMap::new();
        let segment = |key: &str, text: &str, source: &dyn std::fmt::Display| {
            let segment = escape_segment(text);
            if segment.len() > MAX_SEGMENT_BYTES {
                return Err(format!(
                    "partition key {key}: the value {source} is {} bytes escaped, over the \
                     {MAX_SEGMENT_BYTES}-byte limit of one key segment",
                    segment.len()
                ));
            }
            Ok(segment)
        };
        if let Some(query) = &self.query {
            let value = value.expect("parsed for the query");
            let keys = query.eval(value)?;
            // Only the keys the prefix names matter; extra keys are ignored, as the query's
            // keys cannot be known before it runs.
            for key in self.prefix.partition_keys() {
                let text = keys.get(key).ok_or_else(|| {
                    let got: Vec<&str> = keys.keys().map(String::as_str).collect();
                    format!(
                        "partition key {key}: the partition_query's output has no key {key:?} \
                         (it has {got:?})"
                    )
                })?;
                parts.insert(key.to_owned(), segment(key, text, &"from partition_query")?);
            }
            return Ok(parts);
        }
        for (key, path) in &self.partitioning {
            let text = match value.and_then(|v| lookup(v, path)) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                _ => {
                    return Err(format!(
                        "partition key {key}: field .{} is missing, null or not a scalar",
                        path.join(".")
                    ));
                }
            };
            let source = format!("of field .{}", path.join("."));
            parts.insert(key.clone(), segment(key, &text, &source)?);
        }
        Ok(parts)
    }

    /// Error records in Firehose's error format, one NDJSON object per error type and hour.
    fn error_objects(&self, shard: &str, failed: Vec<Failed>) -> Vec<Object> {
        let mut groups: BTreeMap<String, Vec<Failed>> = BTreeMap::new();
        for f in failed {
            let prefix = self
                .error_prefix
                .render(f.rec.arrival_ms, &BTreeMap::new(), f.kind);
            groups.entry(prefix).or_default().push(f);
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        groups
            .into_iter()
            .map(|(prefix, mut list)| {
                list.sort_by(|a, b| millrace_io::seq_cmp(&a.rec.sequence, &b.rec.sequence));
                let mut buf = Vec::new();
                for f in &list {
                    let line = serde_json::json!({
                        "attemptsMade": 1,
                        "arrivalTimestamp": f.rec.arrival_ms,
                        "errorCode": f.code,
                        "errorMessage": f.message,
                        "shardId": shard,
                        "sequenceNumber": f.rec.sequence,
                        "partitionKey": f.rec.partition_key,
                        "rawData": b64.encode(&f.rec.data),
                    });
                    serde_json::to_writer(&mut buf, &line).expect("writing to a Vec");
                    buf.push(b'\n');
                }
                let name = format!(
                    "{}-{shard}-{}-{}.json",
                    self.name,
                    list[0].rec.sequence,
                    list[list.len() - 1].rec.sequence
                );
                let prefix = object_prefix(&self.error_prefix, prefix, &name, |identity| {
                    self.error_prefix.render_object(
                        list[0].rec.arrival_ms,
                        &BTreeMap::new(),
                        list[0].kind,
                        identity,
                    )
                });
                Object {
                    key: format!("{prefix}{name}"),
                    bytes: Bytes::from(buf),
                    records: list.len() as u64,
                    data_bytes: list.iter().map(|f| f.rec.data.len() as u64).sum(),
                    is_error: true,
                }
            })
            .collect()
    }

    fn compress(&self, body: Vec<u8>) -> Result<Vec<u8>> {
        if self.format == Format::Parquet {
            return Ok(body); // compressed inside the file
        }
        match self.compression {
            Compression::None | Compression::Snappy => Ok(body),
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 4),
                    flate2::Compression::new(6),
                );
                enc.write_all(&body)
                    .and_then(|_| enc.finish())
                    .map_err(|e| DeliveryError::Encode(format!("gzip: {e}")))
            }
            Compression::Zstd => zstd::bulk::compress(&body, 3)
                .map_err(|e| DeliveryError::Encode(format!("zstd: {e}"))),
        }
    }

    /// Converts JSON records to one Arrow batch. Records that do not fit the declared schema
    /// are returned as failures instead.
    fn to_arrow<'a>(
        &self,
        group: &[(&'a SourceRecord, Option<Value>)],
    ) -> (RecordBatch, Vec<&'a SourceRecord>, Vec<Failed<'a>>) {
        let schema = match &self.schema {
            Some(s) => s.clone(),
            None => infer_schema(group.iter().filter_map(|(_, v)| v.as_ref())),
        };
        let mut rows: Vec<Vec<Cell>> = Vec::with_capacity(group.len());
        let mut kept = Vec::with_capacity(group.len());
        let mut failed = Vec::new();
        'records: for (rec, value) in group {
            let Some(Value::Object(obj)) = value else {
                failed.push(Failed::new(
                    rec,
                    "format-conversion-failed",
                    "a Parquet record must be a JSON object".into(),
                ));
                continue;
            };
            let mut row = Vec::with_capacity(schema.fields().len());
            for field in schema.fields() {
                match convert(obj.get(field.name()), field.data_type()) {
                    Ok(c) => row.push(c),
                    Err(why) => {
                        failed.push(Failed::new(
                            rec,
                            "format-conversion-failed",
                            format!("field {}: {why}", field.name()),
                        ));
                        continue 'records;
                    }
                }
            }
            rows.push(row);
            kept.push(*rec);
        }
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| build_column(f.data_type(), rows.iter().map(|r| &r[i])))
            .collect();
        let batch = RecordBatch::try_new(schema, columns).expect("columns match the schema");
        (batch, kept, failed)
    }

    fn parquet(&self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let compression = match self.compression {
            Compression::Snappy => PqCompression::SNAPPY,
            Compression::None => PqCompression::UNCOMPRESSED,
            _ => PqCompression::ZSTD(ZstdLevel::try_new(3).expect("valid level")),
        };
        let props = WriterProperties::builder()
            .set_compression(compression)
            .build();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props))
            .map_err(|e| DeliveryError::Encode(format!("parquet: {e}")))?;
        w.write(batch)
            .and_then(|_| w.close().map(|_| ()))
            .map_err(|e| DeliveryError::Encode(format!("parquet: {e}")))?;
        Ok(out)
    }
}

/// An object's prefix: `grouped` (what its records were grouped by) or, when the template has
/// random strings, `render` of the object's identity (`grouped` and its name, which hold its
/// shard and sequence range).
fn object_prefix(
    template: &Template,
    grouped: String,
    name: &str,
    render: impl FnOnce(&str) -> String,
) -> String {
    if !template.has_random_string() {
        return grouped;
    }
    render(&format!("{grouped}\n{name}"))
}

fn arrow_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::String => DataType::Utf8,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
    }
}

fn lookup<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// Columns in order of first appearance; a column is Int64, Float64 or Boolean only when every
/// value is, otherwise a string (numbers in strings stay strings: the schema decides).
fn infer_schema<'a>(values: impl Iterator<Item = &'a Value>) -> Arc<Schema> {
    let mut order: Vec<String> = Vec::new();
    let mut kinds: BTreeMap<String, DataType> = BTreeMap::new();
    for v in values {
        let Value::Object(obj) = v else { continue };
        for (k, v) in obj {
            let t = match v {
                Value::Null => continue,
                Value::Bool(_) => DataType::Boolean,
                Value::Number(n) if n.is_i64() => DataType::Int64,
                Value::Number(_) => DataType::Float64,
                _ => DataType::Utf8,
            };
            match kinds.get(k) {
                None => {
                    order.push(k.clone());
                    kinds.insert(k.clone(), t);
                }
                Some(prev) if *prev == t => {}
                Some(DataType::Int64 | DataType::Float64)
                    if matches!(t, DataType::Int64 | DataType::Float64) =>
                {
                    kinds.insert(k.clone(), DataType::Float64);
                }
                Some(_) => {
                    kinds.insert(k.clone(), DataType::Utf8);
                }
            }
        }
    }
    Arc::new(Schema::new(
        order
            .iter()
            .map(|k| Field::new(k, kinds[k].clone(), true))
            .collect::<Vec<_>>(),
    ))
}

enum Cell {
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// One JSON value as a column of type `t`. Strings holding numbers convert when the column is
/// numeric (that is why a schema is declared); blank strings are null.
fn convert(v: Option<&Value>, t: &DataType) -> Result<Cell, String> {
    let v = match v {
        None | Some(Value::Null) => return Ok(Cell::Null),
        Some(v) => v,
    };
    match t {
        DataType::Utf8 => Ok(Cell::Str(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
        DataType::Int64 => match v {
            Value::Number(n) => n
                .as_i64()
                .map(Cell::Int)
                .ok_or_else(|| format!("{n} is not an int64")),
            Value::String(s) if s.trim().is_empty() => Ok(Cell::Null),
            Value::String(s) => s
                .trim()
                .parse()
                .map(Cell::Int)
                .map_err(|_| format!("{s:?} is not an int64")),
            other => Err(format!("{other} is not an int64")),
        },
        DataType::Float64 => match v {
            Value::Number(n) => Ok(Cell::Float(n.as_f64().unwrap_or(f64::NAN))),
            Value::String(s) if s.trim().is_empty() => Ok(Cell::Null),
            Value::String(s) => s
                .trim()
                .parse()
                .map(Cell::Float)
                .map_err(|_| format!("{s:?} is not a float64")),
            other => Err(format!("{other} is not a float64")),
        },
        DataType::Boolean => match v {
            Value::Bool(b) => Ok(Cell::Bool(*b)),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Cell::Bool(true)),
                "false" => Ok(Cell::Bool(false)),
                "" => Ok(Cell::Null),
                _ => Err(format!("{s:?} is not a boolean")),
            },
            other => Err(format!("{other} is not a boolean")),
        },
        other => Err(format!("unsupported column type {other}")),
    }
}

fn build_column<'a>(t: &DataType, cells: impl Iterator<Item = &'a Cell>) -> ArrayRef {
    match t {
        DataType::Int64 => {
            let mut b = Int64Builder::new();
            for c in cells {
                b.append_option(if let Cell::Int(i) = c { Some(*i) } else { None });
            }
            Arc::new(b.finish())
        }
        DataType::Float64 => {
            let mut b = Float64Builder::new();
            for c in cells {
                b.append_option(match c {
                    Cell::Float(f) => Some(*f),
                    Cell::Int(i) => Some(*i as f64),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        DataType::Boolean => {
            let mut b = BooleanBuilder::new();
            for c in cells {
                b.append_option(if let Cell::Bool(x) = c {
                    Some(*x)
                } else {
                    None
                });
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = StringBuilder::new();
            for c in cells {
                match c {
                    Cell::Str(s) => b.append_value(s),
                    Cell::Null => b.append_null(),
                    Cell::Int(i) => b.append_value(i.to_string()),
                    Cell::Float(f) => b.append_value(f.to_string()),
                    Cell::Bool(x) => b.append_value(x.to_string()),
                }
            }
            Arc::new(b.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-25T13:05:09Z
    const ARRIVAL: i64 = 1_795_611_909_000;

    fn records(data: &[&str]) -> Vec<SourceRecord> {
        data.iter()
            .enumerate()
            .map(|(i, d)| SourceRecord {
                sequence: format!("{:056}", i + 1),
                arrival_ms: ARRIVAL,
                partition_key: "k".into(),
                data: Bytes::from(d.to_string()),
            })
            .collect()
    }

    fn lines(o: &Object) -> Vec<Value> {
        String::from_utf8(o.bytes.to_vec())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn query_config(query: &str) -> DeliveryConfig {
        let mut cfg = DeliveryConfig::new("d", "s");
        cfg.partition_query = Some(query.into());
        cfg.prefix = Some(
            "raw/customer=!{partitionKeyFromQuery:customer}/device=!{partitionKeyFromQuery:device}/!{timestamp:yyyy}/"
                .into(),
        );
        cfg.validate("delivery[0]").unwrap();
        cfg
    }

    #[test]
    fn a_partition_query_groups_records_and_sends_failures_to_the_error_prefix() {
        let cfg = query_config(
            r#"{customer: .customer.id | ascii_downcase, device: "\(.type.device)-\(.v)"}"#,
        );
        let enc = Encoder::new(&cfg).unwrap();
        let recs = records(&[
            r#"{"customer":{"id":"A"},"type":{"device":"mobile"},"v":1}"#,
            r#"{"customer":{"id":"B"},"type":{"device":"tv"},"v":2}"#,
            r#"{"customer":{"id":"a"},"type":{"device":"mobile"},"v":1}"#,
            // No customer: `null | ascii_downcase` is a jq error.
            r#"{"type":{"device":"tv"},"v":3}"#,
            // A value with a slash stays one folder.
            r#"{"customer":{"id":"x/y"},"type":{"device":"tv"},"v":2}"#,
            "not json",
        ]);
        let objects = enc.encode("shardId-000000000000", &recs).unwrap();
        let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        let seq = |i: usize| format!("{i:056}");
        assert_eq!(
            keys,
            [
                format!(
                    "raw/customer=a/device=mobile-1/2026/d-shardId-000000000000-{}-{}.json",
                    seq(1),
                    seq(3)
                ),
                format!(
                    "raw/customer=b/device=tv-2/2026/d-shardId-000000000000-{}-{}.json",
                    seq(2),
                    seq(2)
                ),
                format!(
                    "raw/customer=x%2Fy/device=tv-2/2026/d-shardId-000000000000-{}-{}.json",
                    seq(5),
                    seq(5)
                ),
                format!(
                    "errors/d/invalid-json/2026/11/25/13/d-shardId-000000000000-{}-{}.json",
                    seq(6),
                    seq(6)
                ),
                format!(
                    "errors/d/partitioning-failed/2026/11/25/13/d-shardId-000000000000-{}-{}.json",
                    seq(4),
                    seq(4)
                ),
            ]
        );
        assert_eq!(objects[0].records, 2);
        assert_eq!(lines(&objects[0])[1]["customer"]["id"], "a");
        let failed = &lines(&objects[4])[0];
        assert_eq!(
            failed["errorCode"],
            "DynamicPartitioning.MetadataExtractionFailed"
        );
        assert!(
            failed["errorMessage"]
                .as_str()
                .unwrap()
                .starts_with("jq error:"),
            "{failed}"
        );
        assert_eq!(failed["sequenceNumber"], seq(4));
        assert!(objects[4].is_error && !objects[0].is_error);
        // The same records encode to the same objects (replay rewrites, never duplicates).
        let again = enc.encode("shardId-000000000000", &recs).unwrap();
        assert_eq!(
            again.iter().map(|o| (&o.key, &o.bytes)).collect::<Vec<_>>(),
            objects
                .iter()
                .map(|o| (&o.key, &o.bytes))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_query_result_without_a_key_the_prefix_needs_fails_the_record() {
        let cfg = query_config(
            r#"if .kind == "full" then {customer: .c, device: .d, extra: 1} else {customer: .c} end"#,
        );
        let enc = Encoder::new(&cfg).unwrap();
        let recs = records(&[
            r#"{"kind":"full","c":"c1","d":"d1"}"#,
            r#"{"kind":"short","c":"c2","d":"d2"}"#,
            r#"{"kind":"full","c":"c3","d":"x"}"#,
            r#"{"kind":"full","c":"c4","d":null}"#,
            r#"{"kind":"full","c":"c5","d":["x"]}"#,
        ]);
        let objects = enc.encode("shardId-000000000001", &recs).unwrap();
        let data: Vec<&str> = objects
            .iter()
            .filter(|o| !o.is_error)
            .map(|o| o.key.split("/d-").next().unwrap())
            .collect();
        assert_eq!(
            data,
            [
                "raw/customer=c1/device=d1/2026",
                "raw/customer=c3/device=x/2026"
            ]
        );
        let errors: Vec<&Object> = objects.iter().filter(|o| o.is_error).collect();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].key.starts_with("errors/d/partitioning-failed/"));
        let messages: Vec<String> = lines(errors[0])
            .iter()
            .map(|l| {
                assert_eq!(l["errorCode"], METADATA_EXTRACTION_FAILED);
                l["errorMessage"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(messages.len(), 3);
        assert!(
            messages[0].contains("has no key \"device\"") && messages[0].contains("customer"),
            "{messages:?}"
        );
        assert!(messages[1].contains("\"device\" is null"), "{messages:?}");
        assert!(messages[2].contains("an array"), "{messages:?}");
    }

    #[test]
    fn a_runaway_query_fails_its_record_only() {
        let cfg = query_config(
            r#"{customer: .c, device: (if .spin then last(range(1e12)) | tostring else .d end)}"#,
        );
        let enc = Encoder::new(&cfg).unwrap();
        let recs = records(&[
            r#"{"c":"c1","d":"d1"}"#,
            r#"{"c":"c2","spin":true}"#,
            r#"{"c":"c3","d":"d3"}"#,
        ]);
        let objects = enc.encode("shardId-000000000000", &recs).unwrap();
        assert_eq!(objects.iter().filter(|o| !o.is_error).count(), 2);
        let error = objects.iter().find(|o| o.is_error).unwrap();
        let line = &lines(error)[0];
        assert!(
            line["errorMessage"]
                .as_str()
                .unwrap()
                .contains("evaluation steps"),
            "{line}"
        );
    }

    fn record(n: usize, data: Bytes) -> SourceRecord {
        SourceRecord {
            sequence: format!("{n:056}"),
            arrival_ms: ARRIVAL + n as i64,
            partition_key: "k".into(),
            data,
        }
    }

    #[test]
    fn kpl_records_and_split_records_expand_before_partitioning() {
        use crate::kpl::build::{aggregate, frame, message};
        let mut cfg = DeliveryConfig::new("d", "s");
        cfg.deaggregate_kpl = true;
        cfg.split_records = Some(Split::Json);
        cfg.partition_query = Some("{c: .c}".into());
        cfg.prefix = Some("raw/!{partitionKeyFromQuery:c}/!{firehose:random-string}/".into());
        cfg.validate("delivery[0]").unwrap();
        let enc = Encoder::new(&cfg).unwrap();
        let mut bad_digest = aggregate(&[("k9", b"{\"c\":\"z\"}")]).to_vec();
        *bad_digest.last_mut().unwrap() ^= 0xFF;
        let recs = vec![
            record(
                1,
                aggregate(&[
                    ("k1", b"{\"c\":\"a\",\"n\":1}{\"c\":\"b\",\"n\":2}"),
                    ("k2", b"{\"c\":\"a\",\"n\":3}"),
                ]),
            ),
            record(2, Bytes::from_static(b"{\"c\":\"b\",\"n\":4}\n")),
            record(
                3,
                frame(&message(&[
                    ("k3", b"[1,2]"),
                    ("k3", b"{\"c\":\"a\",\"n\":5}"),
                ])),
            ),
            // A bad digest: not an aggregate, so a plain record, which is not JSON objects.
            record(4, Bytes::from(bad_digest.clone())),
        ];
        let objects = enc.encode("shardId-000000000000", &recs).unwrap();
        let seq = |i: usize| format!("{i:056}");
        let summary: Vec<(String, Vec<Value>)> = objects
            .iter()
            .map(|o| {
                let (dir, name) = o.key.rsplit_once('/').unwrap();
                let dir = match dir.rsplit_once('/') {
                    Some((base, random)) if base.starts_with("raw/") => {
                        assert_eq!(random.len(), 11, "{}", o.key);
                        assert!(random.bytes().all(|b| b.is_ascii_hexdigit()), "{}", o.key);
                        base.to_owned()
                    }
                    _ => dir.to_owned(),
                };
                (format!("{dir}/{name}"), lines(o))
            })
            .collect();
        let ns = |o: &(String, Vec<Value>)| -> Vec<i64> {
            o.1.iter().map(|v| v["n"].as_i64().unwrap()).collect()
        };
        assert_eq!(
            summary[0].0,
            format!("raw/a/d-shardId-000000000000-{}-{}.json", seq(1), seq(3))
        );
        assert_eq!(ns(&summary[0]), [1, 3, 5]);
        assert_eq!(
            summary[1].0,
            format!("raw/b/d-shardId-000000000000-{}-{}.json", seq(1), seq(2))
        );
        assert_eq!(ns(&summary[1]), [2, 4]);
        assert_eq!(objects[0].records, 3);
        assert_eq!(
            summary[2].0,
            format!(
                "errors/d/processing-failed/2026/11/25/13/d-shardId-000000000000-{}-{}.json",
                seq(3),
                seq(4)
            )
        );
        let errors = &summary[2].1;
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0]["errorCode"], DEAGGREGATION_FAILED);
        assert_eq!(errors[0]["partitionKey"], "k3", "the user record's key");
        assert_eq!(errors[0]["arrivalTimestamp"], ARRIVAL + 3);
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(errors[0]["rawData"], b64.encode(b"[1,2]"));
        assert_eq!(errors[1]["rawData"], b64.encode(&bad_digest));
        assert!(
            errors[1]["errorMessage"]
                .as_str()
                .unwrap()
                .contains("not a JSON object"),
            "{}",
            errors[1]
        );
        assert_eq!(objects.len(), 3);
        // The two data objects got different random strings; a replay the same keys and bytes.
        assert_ne!(
            objects[0].key.split('/').nth(2),
            objects[1].key.split('/').nth(2)
        );
        let again = enc.encode("shardId-000000000000", &recs).unwrap();
        assert_eq!(
            again.iter().map(|o| (&o.key, &o.bytes)).collect::<Vec<_>>(),
            objects
                .iter()
                .map(|o| (&o.key, &o.bytes))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn cloudwatch_logs_records_inflate_into_their_messages_under_the_extension_and_zone() {
        let gzip = |data: &[u8]| {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(data).unwrap();
            Bytes::from(z.finish().unwrap())
        };
        let mut cfg = DeliveryConfig::new("d", "s");
        cfg.decompress = Some(Decompress::Gzip);
        cfg.extract_log_messages = true;
        cfg.format = Format::Concat;
        cfg.file_extension = Some(".log".into());
        cfg.time_zone = Some("Asia/Tokyo".into());
        cfg.prefix = Some("logs/!{timestamp:yyyy-MM-dd-HH}/".into());
        cfg.validate("delivery[0]").unwrap();
        let enc = Encoder::new(&cfg).unwrap();
        let data = br#"{"messageType":"DATA_MESSAGE","logEvents":[
            {"id":"1","timestamp":1,"message":"one"},{"id":"2","timestamp":2,"message":"two"}]}"#;
        let control = br#"{"messageType":"CONTROL_MESSAGE","logEvents":[]}"#;
        let recs = vec![
            record(1, gzip(data)),
            record(2, gzip(control)),
            record(3, Bytes::from_static(b"not gzip")),
            record(4, gzip(b"gzip, but not a subscription payload")),
        ];
        let objects = enc.encode("shardId-000000000000", &recs).unwrap();
        assert_eq!(objects.len(), 2, "{objects:?}");
        let seq = |i: usize| format!("{i:056}");
        // 13:05 UTC is 22:05 in Tokyo; the extension replaces the format's (none here).
        assert_eq!(
            objects[0].key,
            format!(
                "logs/2026-11-25-22/d-shardId-000000000000-{}-{}.log",
                seq(1),
                seq(1)
            )
        );
        assert_eq!(&objects[0].bytes[..], b"one\ntwo\n");
        assert_eq!(objects[0].records, 2);
        assert!(objects[1].is_error);
        assert!(
            objects[1]
                .key
                .starts_with("errors/d/processing-failed/2026/11/25/22/"),
            "{}",
            objects[1].key
        );
        assert!(objects[1].key.ends_with(".json"), "{}", objects[1].key);
        let errors = lines(&objects[1]);
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(errors[0]["errorCode"], DECOMPRESSION_FAILED);
        assert_eq!(errors[0]["rawData"], b64.encode(b"not gzip"));
        assert_eq!(errors[1]["errorCode"], LOG_PROCESSING_FAILED);
        assert_eq!(errors.len(), 2);

        cfg.file_extension = Some("log".into());
        assert!(cfg.validate("d").unwrap_err().contains("d.file_extension"));
        cfg.file_extension = None;
        cfg.time_zone = Some("Mars/Olympus".into());
        assert!(cfg.validate("d").unwrap_err().contains("d.time_zone"));
    }

    #[test]
    fn lines_keep_every_record_byte_for_byte_with_a_newline_after_it() {
        let mut cfg = DeliveryConfig::new("d", "s");
        cfg.format = Format::Lines;
        cfg.validate("delivery[0]").unwrap();
        let enc = Encoder::new(&cfg).unwrap();
        let bodies: [&[u8]; 4] = [br#"{"a":1}"#, b"a,b,c", b"", &[0xff, b'\n', 0x00]];
        let recs: Vec<_> = (0..)
            .zip(bodies)
            .map(|(i, b)| record(i, Bytes::copy_from_slice(b)))
            .collect();
        let objects = enc.encode("shardId-000000000000", &recs).unwrap();
        assert_eq!(objects.len(), 1, "nothing is refused: {objects:?}");
        assert_eq!(&objects[0].bytes[..], b"{\"a\":1}\na,b,c\n\n\xff\n\x00\n");
        assert_eq!(objects[0].records, 4);
        // No extension, as Firehose writes it.
        assert!(
            objects[0].key.ends_with(&format!("-{:056}", 3)),
            "{}",
            objects[0].key
        );

        cfg.compression = Compression::Snappy;
        assert!(cfg.validate("d").unwrap_err().contains("d.compression"));
    }

    #[test]
    fn kpl_records_are_left_whole_unless_asked_and_sub_records_arrive_with_their_parent() {
        use crate::kpl::build::aggregate;
        let agg = aggregate(&[("a", b"one,"), ("b", b"two,"), ("a", b"three,")]);
        let recs = vec![
            record(1, agg.clone()),
            record(2, Bytes::from_static(b"plain,")),
        ];
        let mut cfg = DeliveryConfig::new("d", "s");
        cfg.format = Format::Concat;
        cfg.prefix = Some("p/!{timestamp:yyyy}/".into());
        let whole = Encoder::new(&cfg)
            .unwrap()
            .encode("shardId-000000000000", &recs)
            .unwrap();
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].bytes, [&agg[..], b"plain,"].concat());
        cfg.deaggregate_kpl = true;
        let expanded = Encoder::new(&cfg)
            .unwrap()
            .encode("shardId-000000000000", &recs)
            .unwrap();
        assert_eq!(expanded.len(), 1);
        assert_eq!(&expanded[0].bytes[..], b"one,two,three,plain,");
        assert_eq!(expanded[0].records, 4);
        assert_eq!(
            expanded[0].key, whole[0].key,
            "named by source sequence numbers"
        );
        cfg.split_records = Some(Split::Delimited(b",".to_vec()));
        let split = Encoder::new(&cfg)
            .unwrap()
            .encode("shardId-000000000000", &recs)
            .unwrap();
        assert_eq!(&split[0].bytes[..], b"onetwothreeplain");
        assert_eq!(split[0].records, 4);
    }

    #[test]
    fn field_paths_and_the_query_give_the_same_partitions() {
        let recs = records(&[
            r#"{"customer":{"id":"A-1"},"device":"tv","n":7}"#,
            r#"{"customer":{"id":"B/2"},"device":"mobile","n":7.5}"#,
            r#"{"device":"tv"}"#,
        ]);
        let prefix = "p/!{partitionKeyFromQuery:customer}/!{partitionKeyFromQuery:n}/";
        let mut by_path = DeliveryConfig::new("d", "s");
        by_path.prefix = Some(prefix.into());
        by_path
            .partitioning
            .insert("customer".into(), ".customer.id".into());
        by_path.partitioning.insert("n".into(), ".n".into());
        let mut by_query = DeliveryConfig::new("d", "s");
        by_query.prefix = Some(prefix.into());
        by_query.partition_query = Some("{customer: .customer.id, n: .n}".into());
        let keys = |cfg: &DeliveryConfig| {
            cfg.validate("delivery[0]").unwrap();
            Encoder::new(cfg)
                .unwrap()
                .encode("shardId-000000000000", &recs)
                .unwrap()
                .into_iter()
                .map(|o| o.key.rsplit_once('/').unwrap().0.to_owned())
                .collect::<Vec<_>>()
        };
        let expected = [
            "p/A-1/7",
            "p/B%2F2/7.5",
            "errors/d/partitioning-failed/2026/11/25/13",
        ];
        assert_eq!(keys(&by_path), expected);
        assert_eq!(keys(&by_query), expected);
    }
}
