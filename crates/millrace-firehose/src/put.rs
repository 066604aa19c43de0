//! PutRecord and PutRecordBatch: records into a DirectPut delivery stream's buffer, answered
//! once durable.

use bytes::Bytes;
use millrace_gateway::ApiError;
use millrace_gateway::protocol::Out;
use millrace_gateway::request::{Checks, Request, decode_blob};
use millrace_stream::PutInput;
use serde_json::Value;

use crate::error::FirehoseError;
use crate::spec::SourceKind;
use crate::{Firehose, input};

/// Largest record (`Data`, before base64): 1,000 KiB.
pub const MAX_RECORD_BYTES: usize = 1_024_000;
/// Records per PutRecordBatch.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Data per PutRecordBatch: 4 MiB.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Shards of a new DirectPut buffer: each is delivered by its own worker, so encoding and
/// writing objects use two cores. A call's records go to one shard (in order), calls take
/// turns; Firehose promises no order across calls.
pub const BUFFER_SHARDS: u32 = 2;
/// Partition key of buffer records (routing is by explicit hash key).
const PARTITION_KEY: &str = "firehose";
/// Which shard the next call's records go to.
static NEXT_SHARD: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub async fn put_record(fh: &Firehose, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let name = input::read_name(&mut c, &req)?;
    let record = c.required("Record", req.opt_object("Record")?);
    let data = match record {
        Some(r) => record_data(&mut c, r.get("Data"), "Record.Data")?,
        None => None,
    };
    c.finish()?;
    let name = name.expect("checked");
    let (mut results, encrypted) = append(fh, &name, vec![data.expect("checked")]).await?;
    match results.pop().expect("one result") {
        Ok(id) => Ok(Out::map([
            ("RecordId", Out::Str(id)),
            ("Encrypted", Out::Bool(encrypted)),
        ])),
        Err(message) => Err(FirehoseError::Unavailable(message).into()),
    }
}

pub async fn put_record_batch(fh: &Firehose, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let name = input::read_name(&mut c, &req)?;
    let records = c.required("Records", req.opt_list("Records")?);
    let mut data = Vec::new();
    if let Some(list) = records {
        if list.is_empty() || list.len() > MAX_BATCH_RECORDS {
            c.fail(
                "records",
                &format!("<list of {}>", list.len()),
                &if list.is_empty() {
                    "Member must have length greater than or equal to 1".to_owned()
                } else {
                    format!("Member must have length less than or equal to {MAX_BATCH_RECORDS}")
                },
            );
        }
        for (i, r) in list.iter().enumerate() {
            let field = format!("records.{}.member.data", i + 1);
            if let Some(d) = record_data(&mut c, r.get("Data"), &field)? {
                data.push(d);
            }
        }
    }
    c.finish()?;
    let total: usize = data.iter().map(Bytes::len).sum();
    if total > MAX_BATCH_BYTES {
        return Err(FirehoseError::Invalid(format!(
            "Records size exceeds 4 MiB limit: the batch carries {total} bytes of data."
        ))
        .into());
    }
    batch_reply(fh, &name.expect("checked"), data).await
}

/// A well-formed PutRecordBatch body read without the general value tree (the ingest hot
/// path): borrowed strings, base64 decoded once. Anything unusual (an escape in a string, a
/// member out of the model's bounds) is `None`, and the general path answers it.
#[derive(serde::Deserialize)]
pub struct FastBatch<'a> {
    #[serde(rename = "DeliveryStreamName", borrow)]
    name: &'a str,
    #[serde(rename = "Records", borrow)]
    records: Vec<FastRecord<'a>>,
}

#[derive(serde::Deserialize)]
struct FastRecord<'a> {
    #[serde(rename = "Data", borrow)]
    data: &'a str,
}

impl<'a> FastBatch<'a> {
    pub fn parse(body: &'a [u8]) -> Option<Self> {
        let b: Self = serde_json::from_slice(body).ok()?;
        let name_ok = (1..=64).contains(&b.name.len())
            && b.name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        (name_ok && (1..=MAX_BATCH_RECORDS).contains(&b.records.len())).then_some(b)
    }
}

/// PutRecordBatch from a [`FastBatch`].
pub async fn put_fast(fh: &Firehose, batch: FastBatch<'_>) -> Result<Out, ApiError> {
    let mut data = Vec::with_capacity(batch.records.len());
    for (i, r) in batch.records.iter().enumerate() {
        let bytes = millrace_common::base64::decode(r.data).map_err(|e| {
            ApiError::serialization(format!("Records[{i}].Data is not valid base64: {e}"))
        })?;
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(ApiError::validation(
                &format!("records.{}.member.data", i + 1),
                "<blob>",
                &format!("Member must have length less than or equal to {MAX_RECORD_BYTES}"),
            ));
        }
        data.push(Bytes::from(bytes));
    }
    let total: usize = data.iter().map(Bytes::len).sum();
    if total > MAX_BATCH_BYTES {
        return Err(FirehoseError::Invalid(format!(
            "Records size exceeds 4 MiB limit: the batch carries {total} bytes of data."
        ))
        .into());
    }
    batch_reply(fh, batch.name, data).await
}

/// Appends a batch and answers PutRecordBatch.
async fn batch_reply(fh: &Firehose, name: &str, data: Vec<Bytes>) -> Result<Out, ApiError> {
    let (results, encrypted) = append(fh, name, data).await?;
    let mut failed = 0;
    let responses = results
        .into_iter()
        .map(|r| match r {
            Ok(id) => Out::map([("RecordId", Out::Str(id))]),
            Err(message) => {
                failed += 1;
                Out::map([
                    ("ErrorCode", Out::str("ServiceUnavailableException")),
                    ("ErrorMessage", Out::Str(message)),
                ])
            }
        })
        .collect();
    Ok(Out::map([
        ("FailedPutCount", Out::Int(failed)),
        ("Encrypted", Out::Bool(encrypted)),
        ("RequestResponses", Out::List(responses)),
    ]))
}

/// A record's `Data` (required, at most 1,000 KiB).
fn record_data(c: &mut Checks, v: Option<&Value>, field: &str) -> Result<Option<Bytes>, ApiError> {
    let Some(v) = c.required(field, v.filter(|v| !v.is_null())) else {
        return Ok(None);
    };
    let data = decode_blob(field, v)?;
    if data.len() > MAX_RECORD_BYTES {
        c.fail(
            field,
            "<blob>",
            &format!("Member must have length less than or equal to {MAX_RECORD_BYTES}"),
        );
        return Ok(None);
    }
    Ok(Some(Bytes::from(data)))
}

/// Appends `records` to `name`'s buffer: each one's RecordId, or why it was not taken, and
/// whether the stream is encrypted (read from the one lookup of its spec a call makes).
async fn append(
    fh: &Firehose,
    name: &str,
    records: Vec<Bytes>,
) -> Result<(Vec<Result<String, String>>, bool), ApiError> {
    let spec = fh.registry.get(name)?;
    if spec.kind != SourceKind::DirectPut {
        return Err(FirehoseError::Invalid(format!(
            "Firehose {name} reads Kinesis stream {}: records go into that stream \
             (PutRecord/PutRecords), not into the delivery stream.",
            spec.kinesis.as_ref().map_or("", |k| k.stream.as_str())
        ))
        .into());
    }
    let buffer = fh
        .buffers
        .stream(&spec.buffer_stream())
        .map_err(|_| fh.registry.not_found(name))?;
    // The start of one of the buffer's evenly split hash key ranges.
    let shards = u128::from(buffer.open_shard_count().max(1));
    let turn = u128::from(NEXT_SHARD.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) % shards;
    let hash_key = turn * (u128::MAX / shards);
    let inputs = records
        .into_iter()
        .map(|data| PutInput {
            partition_key: PARTITION_KEY.to_owned(),
            explicit_hash_key: Some(hash_key),
            data,
        })
        .collect();
    let results = buffer
        .put(inputs)
        .await
        .into_iter()
        .map(|r| {
            r.map(|o| record_id(o.shard, &o.sequence.to_string()))
                .map_err(|e| e.to_string())
        })
        .collect();
    Ok((results, spec.encryption.status == "ENABLED"))
}

/// A RecordId: where the record sits in the buffer (opaque to clients).
fn record_id(shard: u32, sequence: &str) -> String {
    format!("{shard:04x}{sequence}")
}
