use std::borrow::Cow;
use std::fmt::Write;

use millrace_stream::limits::{PUT_RECORDS_MAX_BYTES, PUT_RECORDS_MAX_RECORDS};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::protocol::{Out, Protocol};
use crate::request::{Checks, Request};
use crate::server::Gateway;

use super::put_record::{check_record_size, record_input};

/// One member of `Records` as the request carried it: each field absent (or null) or a
/// string, the data still base64.
struct Entry<'a> {
    data: Option<&'a str>,
    partition_key: Option<&'a str>,
    explicit_hash_key: Option<&'a str>,
}

/// PutRecords: validates the whole request (any invalid record rejects the call, as Kinesis
/// does), then appends; a record that fails to be stored is reported in its own slot.
pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let records = req.opt_list("Records")?;
    let mut entries = Vec::with_capacity(records.map_or(0, Vec::len));
    for (i, rec) in records.into_iter().flatten().enumerate() {
        let Value::Object(rec) = rec else {
            return Err(ApiError::serialization(format!(
                "Records[{i}] must be a structure"
            )));
        };
        let field = |name: &str| -> Result<Option<&str>, ApiError> {
            match rec.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(ApiError::serialization(format!(
                    "Records[{i}].{name} must be a string, found {}",
                    crate::protocol::kind(other)
                ))),
            }
        };
        entries.push(Entry {
            data: field("Data")?,
            partition_key: field("PartitionKey")?,
            explicit_hash_key: field("ExplicitHashKey")?,
        });
    }
    put_entries(gw, &req, records.is_some(), entries).await
}

/// A JSON PutRecords body read straight into borrowed strings, without the general
/// `serde_json::Value` tree: the ingest hot path. It has every member of the operation's input
/// shape with its type, so a body it accepts passes the type check too.
#[derive(Deserialize)]
pub struct FastBody<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<FastRecord<'a>>,
    #[serde(rename = "StreamName", borrow, default)]
    stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "StreamARN", borrow, default)]
    stream_arn: Option<Cow<'a, str>>,
    #[serde(rename = "StreamId", borrow, default)]
    _stream_id: Option<Cow<'a, str>>,
    #[serde(rename = "DryRun", default)]
    _dry_run: Option<bool>,
}

#[derive(Deserialize)]
struct FastRecord<'a> {
    #[serde(rename = "Data", borrow)]
    data: Cow<'a, str>,
    #[serde(rename = "PartitionKey", borrow)]
    partition_key: Cow<'a, str>,
    #[serde(rename = "ExplicitHashKey", borrow, default)]
    explicit_hash_key: Option<Cow<'a, str>>,
}

impl<'a> FastBody<'a> {
    /// `None` for anything unusual (a null, a missing member, a wrong type, a duplicate key,
    /// malformed JSON): such a body takes the general path, which words every error as
    /// Kinesis does.
    pub fn parse(body: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    /// The stream it names, for authorization.
    pub fn resource_names(&self) -> crate::auth::ResourceNames<'_> {
        crate::auth::ResourceNames {
            stream_name: self.stream_name.as_deref().map(Cow::Borrowed),
            stream_arn: self.stream_arn.as_deref().map(Cow::Borrowed),
            ..Default::default()
        }
    }
}

/// PutRecords from a [`FastBody`]: the same checks and appends as [`handle`].
pub async fn handle_fast(gw: &Gateway, body: FastBody<'_>) -> Result<Out, ApiError> {
    let mut fields = Map::new();
    if let Some(name) = &body.stream_name {
        fields.insert("StreamName".into(), Value::String(name.to_string()));
    }
    if let Some(arn) = &body.stream_arn {
        fields.insert("StreamARN".into(), Value::String(arn.to_string()));
    }
    let req = Request::new(fields, Protocol::Json);
    let entries = body
        .records
        .iter()
        .map(|r| Entry {
            data: Some(&r.data),
            partition_key: Some(&r.partition_key),
            explicit_hash_key: r.explicit_hash_key.as_deref(),
        })
        .collect();
    put_entries(gw, &req, true, entries).await
}

async fn put_entries(
    gw: &Gateway,
    req: &Request,
    has_records: bool,
    entries: Vec<Entry<'_>>,
) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    if !has_records {
        c.fail("records", "null", "Member must not be null");
    } else if entries.is_empty() || entries.len() > PUT_RECORDS_MAX_RECORDS {
        let constraint = if entries.is_empty() {
            "Member must have length greater than or equal to 1".to_owned()
        } else {
            format!("Member must have length less than or equal to {PUT_RECORDS_MAX_RECORDS}")
        };
        c.fail(
            "records",
            &format!("<{} records>", entries.len()),
            &constraint,
        );
    }
    let mut inputs = Vec::with_capacity(entries.len());
    let mut total = 0usize;
    // Kinesis names a member inside the list by its path in the request (1-based); one buffer
    // serves every record.
    let mut path = String::new();
    for (i, entry) in entries.iter().enumerate() {
        path.clear();
        let _ = write!(path, "records.{}.member.", i + 1);
        let data = match entry.data {
            Some(s) => Some(millrace_common::base64::decode(s).map_err(|e| {
                ApiError::serialization(format!("Records[{i}].Data is not valid base64: {e}"))
            })?),
            None => {
                c.fail(&format!("{path}data"), "null", "Member must not be null");
                None
            }
        };
        if let Some(input) = record_input(
            &mut c,
            &path,
            entry.partition_key,
            entry.explicit_hash_key,
            data,
        )? {
            total += input.data.len() + input.partition_key.len();
            inputs.push(input);
        }
    }
    c.finish()?;
    let name = gw.stream_name(req)?;
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

#[cfg(test)]
mod tests {
    use super::FastBody;

    fn takes(body: &str) -> bool {
        FastBody::parse(body.as_bytes()).is_some()
    }

    #[test]
    fn the_fast_path_takes_only_well_typed_bodies() {
        let rec = r#"{"Data":"AA==","PartitionKey":"k"}"#;
        assert!(takes(&format!(r#"{{"StreamName":"s","Records":[{rec}]}}"#)));
        // Unknown members are ignored, as AWS's JSON protocol does; escapes are decoded.
        assert!(takes(&format!(
            r#"{{"StreamName":"s\u0041","Other":[1],"Records":[{rec}]}}"#
        )));
        let body = r#"{"StreamName":"s\u0041","Records":[{"Data":"AA==","PartitionKey":"a\"b"}]}"#;
        let parsed = FastBody::parse(body.as_bytes()).unwrap();
        assert_eq!(parsed.stream_name.as_deref(), Some("sA"));
        assert_eq!(parsed.records[0].partition_key, "a\"b");
        // Everything else is left to the general path and its exact errors.
        for odd in [
            r#"{"StreamName":"s"}"#.to_owned(),
            r#"{"StreamName":"s","Records":[{"Data":null,"PartitionKey":"k"}]}"#.to_owned(),
            r#"{"StreamName":"s","Records":[{"Data":"AA==","PartitionKey":7}]}"#.to_owned(),
            r#"{"StreamName":"s","Records":[{"Data":"AA==","Data":"AA==","PartitionKey":"k"}]}"#
                .to_owned(),
            format!(r#"{{"StreamName":1,"Records":[{rec}]}}"#),
            format!(r#"{{"StreamId":true,"Records":[{rec}]}}"#),
            format!(r#"{{"DryRun":"yes","Records":[{rec}]}}"#),
            format!(r#"{{"Records":{rec}}}"#),
            format!(r#"{{"Records":[{rec}]"#),
        ] {
            assert!(!takes(&odd), "{odd}");
        }
    }
}
