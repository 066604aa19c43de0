use millrace_stream::limits::{PUT_RECORDS_MAX_BYTES, PUT_RECORDS_MAX_RECORDS};
use serde_json::Value;

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request, decode_blob};
use crate::server::Gateway;

use super::put_record::{check_record_size, record_input};

/// PutRecords: validates the whole request (any invalid record rejects the call, as Kinesis
/// does), then appends; a record that fails to be stored is reported in its own slot.
pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let records = c
        .required("Records", req.opt_list("Records")?)
        .map_or(&[][..], Vec::as_slice);
    if req.has("Records") && (records.is_empty() || records.len() > PUT_RECORDS_MAX_RECORDS) {
        let constraint = if records.is_empty() {
            "Member must have length greater than or equal to 1".to_owned()
        } else {
            format!("Member must have length less than or equal to {PUT_RECORDS_MAX_RECORDS}")
        };
        c.fail(
            "records",
            &format!("<{} records>", records.len()),
            &constraint,
        );
    }
    let mut inputs = Vec::with_capacity(records.len());
    let mut total = 0usize;
    for (i, rec) in records.iter().enumerate() {
        let Value::Object(rec) = rec else {
            return Err(ApiError::serialization(format!(
                "Records[{i}] must be a structure"
            )));
        };
        // Kinesis names a member inside the list by its path in the request.
        let path = format!("records.{}.member.", i + 1);
        let data = match rec.get("Data").filter(|v| !v.is_null()) {
            Some(v) => Some(decode_blob(&format!("Records[{i}].Data"), v)?),
            None => {
                c.fail(&format!("{path}data"), "null", "Member must not be null");
                None
            }
        };
        let ehk = match rec.get("ExplicitHashKey").filter(|v| !v.is_null()) {
            None => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                return Err(ApiError::serialization(format!(
                    "Records[{i}].ExplicitHashKey must be a string"
                )));
            }
        };
        let pk = rec.get("PartitionKey").filter(|v| !v.is_null());
        if let Some(input) = record_input(&mut c, &path, pk, ehk, data)? {
            total += input.data.len() + input.partition_key.len();
            inputs.push(input);
        }
    }
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let stream = gw.store.stream(&name)?;
    // A stream whose records may be larger than 5 MiB takes one such record per request.
    let max_total = PUT_RECORDS_MAX_BYTES.max(stream.max_record_bytes());
    if total > max_total {
        return Err(ApiError::invalid(format!(
            "Records size exceeds {} MB limit: the request carries {total} bytes of data and \
             partition keys",
            max_total / (1024 * 1024)
        )));
    }
    for (i, input) in inputs.iter().enumerate() {
        check_record_size(&stream, input).map_err(|mut e| {
            e.message = format!("Records[{i}]: {}", e.message);
            e
        })?;
    }
    let results = gw.throttle.put(&stream, inputs).await;
    let mut failed = 0;
    let out: Vec<Out> = results
        .into_iter()
        .map(|r| match r {
            Ok(o) => Out::map([
                ("SequenceNumber", Out::str(o.sequence.to_string())),
                ("ShardId", Out::str(format!("shardId-{:012}", o.shard))),
            ]),
            Err(e) => {
                failed += 1;
                Out::map([
                    ("ErrorCode", Out::str(e.code.as_str())),
                    ("ErrorMessage", Out::str(e.message)),
                ])
            }
        })
        .collect();
    let mut fields = vec![
        ("FailedRecordCount", Out::Int(failed)),
        ("Records", Out::List(out)),
    ];
    if let Some(e) = stream.encryption() {
        fields.push(("EncryptionType", Out::str(e.kind)));
    }
    Ok(Out::Map(fields))
}
