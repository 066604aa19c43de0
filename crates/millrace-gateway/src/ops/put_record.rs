use bytes::Bytes;
use millrace_stream::limits::RECORD_MAX_BYTES_CEILING;
use millrace_stream::{PutInput, StreamHandle};

use crate::error::{ApiError, ErrorCode};
use crate::protocol::Out;
use crate::request::{Checks, Request, decode_blob};
use crate::server::Gateway;

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let data = req
        .raw("Data")
        .map(|v| decode_blob("Data", v))
        .transpose()?;
    let data = c.required("Data", data);
    let input = record_input(
        &mut c,
        "",
        req.opt_str("PartitionKey")?,
        req.opt_str("ExplicitHashKey")?,
        data,
    )?;
    if let Some(s) = req.opt_str("SequenceNumberForOrdering")? {
        // Sequence numbers only grow within a shard, so the ordering it asks for holds.
        c.sequence_number("SequenceNumberForOrdering", s);
    }
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let input = input.expect("a record whose checks passed");
    let stream = gw.store.stream(&name)?;
    check_record_size(&stream, &input)?;
    let out = gw
        .throttle
        .put(&stream, vec![input])
        .await
        .pop()
        .expect("one result per record")?;
    let mut fields = vec![
        ("ShardId", Out::str(format!("shardId-{:012}", out.shard))),
        ("SequenceNumber", Out::str(out.sequence.to_string())),
    ];
    if let Some(e) = stream.encryption() {
        fields.push(("EncryptionType", Out::str(e.kind)));
    }
    Ok(Out::Map(fields))
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

/// Feeds one record's model constraints to `c` the way Kinesis checks them (shared with
/// PutRecords, where `path` is `records.N.member.`); the record is `None` when a member is
/// missing. A hash key out of the key space is an `InvalidArgumentException`.
pub(crate) fn record_input(
    c: &mut Checks,
    path: &str,
    partition_key: Option<&str>,
    explicit_hash_key: Option<&str>,
    data: Option<Vec<u8>>,
) -> Result<Option<PutInput>, ApiError> {
    if let Some(data) = &data
        && data.len() > RECORD_MAX_BYTES_CEILING
    {
        c.fail(
            &format!("{path}data"),
            &format!("<{} bytes>", data.len()),
            &format!("Member must have length less than or equal to {RECORD_MAX_BYTES_CEILING}"),
        );
    }
    let key = match partition_key {
        None => {
            c.fail(
                &format!("{path}partitionKey"),
                "null",
                "Member must not be null",
            );
            None
        }
        Some(s) => {
            // The member path is formatted only for a key that breaks its bounds.
            if !(1..=256).contains(&s.chars().count()) {
                c.len(&format!("{path}partitionKey"), s, 1, 256);
            }
            Some(s)
        }
    };
    let explicit = match explicit_hash_key {
        None => None,
        Some(h) => match parse_hash_key(&format!("{path}explicitHashKey"), h) {
            Ok(k) => Some(k),
            // Out of the key space: reported once every model constraint held.
            Err(mut e) if e.code == ErrorCode::InvalidArgument => {
                // Inside PutRecords, say which record (`records.N.member.` is 1-based).
                if let Some(n) = path
                    .strip_prefix("records.")
                    .and_then(|r| r.split('.').next())
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    e.message = format!("Records[{}]: {}", n - 1, e.message);
                }
                c.later(e);
                None
            }
            Err(e) => c.absorb(Err(e))?,
        },
    };
    let (Some(key), Some(data)) = (key, data) else {
        return Ok(None);
    };
    if explicit_hash_key.is_some() && explicit.is_none() {
        return Ok(None);
    }
    Ok(Some(PutInput {
        partition_key: key.to_owned(),
        explicit_hash_key: explicit,
        data: Bytes::from(data),
    }))
}

fn parse_hash_key(member: &str, h: &str) -> Result<u128, ApiError> {
    let well_formed = !h.is_empty()
        && h.len() <= 39
        && h.bytes().all(|b| b.is_ascii_digit())
        && (h == "0" || !h.starts_with('0'));
    if !well_formed {
        return Err(ApiError::validation(
            member,
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
