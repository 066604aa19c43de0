use millrace_stream::SequenceNumber;

use crate::error::ApiError;
use crate::iterator::Position;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// The iterator types of the model's `ShardIteratorType` enum.
const ITERATOR_TYPES: [&str; 5] = [
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
    "LATEST",
    "AT_TIMESTAMP",
];

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    if let Some(id) = c.required("ShardId", req.opt_str("ShardId")?) {
        check_shard_id(&mut c, "ShardId", id);
    }
    let kind = c.required("ShardIteratorType", req.opt_str("ShardIteratorType")?);
    if let Some(k) = kind {
        c.one_of("ShardIteratorType", k, &ITERATOR_TYPES);
    }
    let seq = req.opt_str("StartingSequenceNumber")?.map(str::to_owned);
    if let Some(s) = &seq {
        c.sequence_number("StartingSequenceNumber", s);
    }
    let ts = req.opt_timestamp_ms("Timestamp")?;
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let shard_id = req.str("ShardId")?.to_owned();
    let kind = kind.expect("checked").to_owned();
    if seq.is_some() && matches!(kind.as_str(), "TRIM_HORIZON" | "LATEST" | "AT_TIMESTAMP") {
        return Err(ApiError::invalid(format!(
            "Request specified {kind} and also a StartingSequenceNumber. Only one of these \
             may be specified."
        )));
    }
    if kind == "AT_TIMESTAMP"
        && let Some(ms) = ts
    {
        not_in_the_future(ms)?;
    }
    let stream = gw.store.stream(&name)?;
    let shard = stream.shard_by_id(&shard_id)?.clone();
    let created = stream.created_ms();

    let from_sequence = |required_for: &str| -> Result<u64, ApiError> {
        let s = seq.as_deref().ok_or_else(|| {
            ApiError::invalid(format!(
                "StartingSequenceNumber must be specified for ShardIteratorType {required_for}"
            ))
        })?;
        match SequenceNumber::parse(s) {
            Some(n)
                if n.stream_created_ms == created.rem_euclid(10_i64.pow(13))
                    && n.shard == shard.index()
                    && n.counter < shard.tip() =>
            {
                Ok(n.counter)
            }
            _ => Err(ApiError::invalid(format!(
                "StartingSequenceNumber {s} used in GetShardIterator on shard {shard_id} in \
                 stream {name} under account 000000000000 is invalid because it did not come \
                 from this stream."
            ))),
        }
    };
    let counter = match kind.as_str() {
        "TRIM_HORIZON" => shard.trim_horizon(),
        "LATEST" => shard.tip(),
        "AT_SEQUENCE_NUMBER" => from_sequence("AT_SEQUENCE_NUMBER")?,
        "AFTER_SEQUENCE_NUMBER" => from_sequence("AFTER_SEQUENCE_NUMBER")? + 1,
        "AT_TIMESTAMP" => {
            let ms = ts.ok_or_else(|| {
                ApiError::invalid(
                    "Must specify timestampInMillis parameter for iterator of type \
                     AT_TIMESTAMP. Current request has no timestamp parameter.",
                )
            })?;
            let sh = shard.clone();
            gw.blocking(move |_| sh.counter_at_time(ms).map_err(ApiError::from))
                .await?
        }
        other => unreachable!("iterator type {other} passed the enum check"),
    };
    let token = gw.iterators.encode(&Position {
        stream: name,
        stream_created_ms: created,
        shard: shard.index(),
        counter,
        issued_ms: millrace_stream::now_ms(),
    });
    Ok(Out::map([("ShardIterator", Out::str(token))]))
}

/// A `ShardId` member's model constraints: 1 to 128 of `[a-zA-Z0-9_.-]`.
pub(crate) fn check_shard_id(c: &mut Checks, field: &str, id: &str) -> bool {
    c.len(field, id, 1, 128)
        && c.pattern(
            field,
            id,
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')),
            "[a-zA-Z0-9_.-]+",
        )
}

/// Kinesis refuses a position in time after now (GetShardIterator AT_TIMESTAMP, ListShards'
/// timestamp filters), in its own words.
pub(crate) fn not_in_the_future(ms: i64) -> Result<(), ApiError> {
    let now = millrace_stream::now_ms();
    if ms > now {
        return Err(ApiError::invalid(format!(
            "The timestampInMillis parameter cannot be greater than the \
             currentTimestampInMillis. timestampInMillis: {ms}, currentTimestampInMillis: {now}"
        )));
    }
    Ok(())
}
