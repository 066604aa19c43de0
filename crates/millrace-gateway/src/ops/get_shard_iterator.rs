use millrace_stream::SequenceNumber;

use crate::error::ApiError;
use crate::iterator::Position;
use crate::protocol::Out;
use crate::request::Request;
use crate::server::Gateway;

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let name = gw.stream_name(&req)?;
    let shard_id = req.str("ShardId")?.to_owned();
    crate::request::check_len("ShardId", &shard_id, 1, 128)?;
    let kind = req.str("ShardIteratorType")?.to_owned();
    let seq = req.opt_str("StartingSequenceNumber")?.map(str::to_owned);
    let ts = req.opt_timestamp_ms("Timestamp")?;
    if let Some(s) = &seq {
        let well_formed = !s.is_empty()
            && s.len() <= 129
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        if !well_formed {
            return Err(ApiError::validation(
                "startingSequenceNumber",
                &format!("'{s}'"),
                "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})",
            ));
        }
        if matches!(kind.as_str(), "TRIM_HORIZON" | "LATEST" | "AT_TIMESTAMP") {
            return Err(ApiError::invalid(format!(
                "Request specified {kind} and also a StartingSequenceNumber. Only one of these \
                 may be specified."
            )));
        }
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
        other => {
            return Err(ApiError::validation(
                "shardIteratorType",
                &format!("'{other}'"),
                "Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, \
                 AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]",
            ));
        }
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
