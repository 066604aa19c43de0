use bytes::Bytes;
use millrace_stream::limits::RECORD_MAX_BYTES_CEILING;
use millrace_stream::{PutInput, StreamHandle};
use serde_json::Value;

use crate::error::{ApiError, ErrorCode};
use crate::protocol::Out;
use crate::request::{Request, check_len, decode_blob};
use crate::server::Gateway;

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let name = gw.stream_name(&req)?;
    let data = req
        .raw("Data")
        .map(|v| decode_blob("Data", v))
        .transpose()?
        .ok_or_else(|| Request::missing("Data"))?;
    let input = record_input(
        req.raw("PartitionKey"),
        req.opt_str("ExplicitHashKey")?,
        data,
    )?;
    req.opt_str("SequenceNumberForOrdering")?;
    let stream = gw.store.stream(&name)?;
    check_record_size(&stream, &input)?;
    let out = stream
        .put(vec![input])
        .await
        .pop()
        .expect("one result per record")?;
    Ok(Out::map([
        ("ShardId", Out::str(format!("shardId-{:012}", out.shard))),
        ("SequenceNumber", Out::str(out.sequence.to_string())),
    ]))
}

/// The stream's maximum record size (UpdateMaxRecordSize) counts data and partition key.
pub(crate) fn check_record_size(stream: &StreamHandle, input: &PutInput) -> Result<(), ApiError> {
    let bytes = input.data.len() + input.partition_key.len();
    let max = stream.max_record_bytes();
    if bytes > max {
        return Err(ApiError::invalid(format!(
            "Record size of {bytes} bytes (data and partition key) exceeds the maximum record \
             size of {max} bytes of stream {} (see UpdateMaxRecordSize)",
            stream.name()
        )));
    }
    Ok(())
}

/// Validates one record's members the way Kinesis does (shared with PutRecords).
pub(crate) fn record_input(
    partition_key: Option<&Value>,
    explicit_hash_key: Option<&str>,
    data: Vec<u8>,
) -> Result<PutInput, ApiError> {
    if data.len() > RECORD_MAX_BYTES_CEILING {
        return Err(ApiError::validation(
            "data",
            &format!("<{} bytes>", data.len()),
            &format!("Member must have length less than or equal to {RECORD_MAX_BYTES_CEILING}"),
        ));
    }
    let key = match partition_key {
        None => return Err(Request::missing("PartitionKey")),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(ApiError::serialization(format!(
                "PartitionKey must be a string, found {}",
                crate::protocol::kind(other)
            )));
        }
    };
    check_len("PartitionKey", key, 1, 256)?;
    let explicit = match explicit_hash_key {
        None => None,
        Some(h) => Some(parse_hash_key(h)?),
    };
    Ok(PutInput {
        partition_key: key.clone(),
        explicit_hash_key: explicit,
        data: Bytes::from(data),
    })
}

fn parse_hash_key(h: &str) -> Result<u128, ApiError> {
    let well_formed = !h.is_empty()
        && h.len() <= 39
        && h.bytes().all(|b| b.is_ascii_digit())
        && (h == "0" || !h.starts_with('0'));
    if !well_formed {
        return Err(ApiError::validation(
            "explicitHashKey",
            &format!("'{h}'"),
            "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
        ));
    }
    h.parse::<u128>().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. \
                 Specified value was {h}"
            ),
        )
    })
}
