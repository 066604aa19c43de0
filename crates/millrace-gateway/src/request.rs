//! Typed access to a decoded request with the errors Kinesis gives: a member of the wrong type
//! is a `SerializationException` (checked for the whole body against the operation's input
//! shape by [`check_types`] before anything else); missing or out-of-range members are one
//! `ValidationException` naming every failed constraint ([`Checks`]), in AWS's wording.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::protocol::{Protocol, kind};
use crate::shapes::Ty;

pub struct Request {
    fields: Map<String, Value>,
    protocol: Protocol,
}

/// AWS names members in validation messages in lowerCamelCase, each step of a path
/// (`StreamModeDetails.StreamMode` → `streamModeDetails.streamMode`).
pub fn member(field: &str) -> String {
    field
        .split('.')
        .map(|step| {
            let mut c = step.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(".")
}

fn wrong_type(field: &str, want: &str, got: &Value) -> ApiError {
    ApiError::serialization(format!("{field} must be {want}, found {}", kind(got)))
}

impl Request {
    pub fn new(fields: Map<String, Value>, protocol: Protocol) -> Self {
        Self { fields, protocol }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field).filter(|v| !v.is_null())
    }

    /// The raw member, for operations that walk nested structures themselves.
    pub fn raw(&self, field: &str) -> Option<&Value> {
        self.get(field)
    }

    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    pub fn missing(field: &str) -> ApiError {
        ApiError::validation(&member(field), "null", "Member must not be null")
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<&str>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(wrong_type(field, "a string", v)),
        }
    }

    pub fn str(&self, field: &str) -> Result<&str, ApiError> {
        self.opt_str(field)?.ok_or_else(|| Self::missing(field))
    }

    /// A string whose length (in characters) must lie in `min..=max`.
    pub fn opt_str_len(
        &self,
        field: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<&str>, ApiError> {
        let Some(s) = self.opt_str(field)? else {
            return Ok(None);
        };
        check_len(field, s, min, max)?;
        Ok(Some(s))
    }

    pub fn opt_int(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| wrong_type(field, "an integer", &Value::Number(n.clone()))),
            Some(v) => Err(wrong_type(field, "an integer", v)),
        }
    }

    /// An integer that must lie in `min..=max` (a `ValidationException` otherwise).
    pub fn opt_int_in(&self, field: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let v = self.opt_int(field)?;
        if let Some(i) = v {
            if i < min {
                return Err(ApiError::validation(
                    &member(field),
                    &format!("'{i}'"),
                    &format!("Member must have value greater than or equal to {min}"),
                ));
            }
            if i > max {
                return Err(ApiError::validation(
                    &member(field),
                    &format!("'{i}'"),
                    &format!("Member must have value less than or equal to {max}"),
                ));
            }
        }
        Ok(v)
    }

    pub fn opt_bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(wrong_type(field, "a boolean", v)),
        }
    }

    /// A timestamp in epoch milliseconds: JSON sends seconds (possibly fractional) or an
    /// ISO-8601 string; CBOR sends a number (under tag 1 or not), see [`cbor_timestamp_ms`].
    pub fn opt_timestamp_ms(&self, field: &str) -> Result<Option<i64>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => self.timestamp_ms(field, v).map(Some),
        }
    }

    /// A timestamp member's value (top-level or nested, like `ShardFilter.Timestamp`) in epoch
    /// milliseconds.
    pub fn timestamp_ms(&self, field: &str, v: &Value) -> Result<i64, ApiError> {
        match v {
            Value::Number(n) => {
                let f = n.as_f64().unwrap_or(0.0);
                Ok(match self.protocol {
                    Protocol::Json => (f * 1000.0).round() as i64,
                    Protocol::Cbor => cbor_timestamp_ms(f),
                })
            }
            Value::String(s) => parse_iso8601_ms(s)
                .ok_or_else(|| ApiError::serialization(format!("{field} is not a timestamp: {s}"))),
            v => Err(wrong_type(field, "a timestamp", v)),
        }
    }

    pub fn opt_object(&self, field: &str) -> Result<Option<&Map<String, Value>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(v) => Err(wrong_type(field, "a structure", v)),
        }
    }

    pub fn opt_list(&self, field: &str) -> Result<Option<&Vec<Value>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(wrong_type(field, "a list", v)),
        }
    }

    /// The stream a request targets, by `StreamName` or `StreamARN`.
    pub fn stream_name(&self) -> Result<String, ApiError> {
        if let Some(name) = self.opt_str("StreamName")? {
            validate_stream_name(name)?;
            return Ok(name.to_owned());
        }
        if let Some(arn) = self.opt_str("StreamARN")? {
            check_len("StreamARN", arn, 1, 2048)?;
            let name = stream_of_arn(arn).ok_or_else(|| {
                ApiError::validation(
                    "streamARN",
                    &format!("'{arn}'"),
                    "Member must satisfy regular expression pattern: \
                         arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
                )
            })?;
            validate_stream_name(name)?;
            return Ok(name.to_owned());
        }
        Err(ApiError::invalid(
            "Either StreamName or StreamARN should be provided.",
        ))
    }
}

pub fn check_len(field: &str, s: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = s.chars().count();
    if n < min {
        return Err(ApiError::validation(
            &member(field),
            &format!("'{s}'"),
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        let shown: String = s.chars().take(64).collect();
        return Err(ApiError::validation(
            &member(field),
            &format!("'{shown}...'"),
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// Kinesis stream names: 1-128 of `[a-zA-Z0-9_.-]`. `.` and `..` are refused too because the
/// name is a directory on disk.
pub fn validate_stream_name(name: &str) -> Result<(), ApiError> {
    check_len("StreamName", name, 1, 128)?;
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(ApiError::validation(
            "streamName",
            &format!("'{name}'"),
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    if name == "." || name == ".." {
        return Err(ApiError::invalid(format!(
            "Stream name '{name}' is reserved"
        )));
    }
    Ok(())
}

/// Decodes a base64 blob member.
pub fn decode_blob(field: &str, v: &Value) -> Result<Vec<u8>, ApiError> {
    match v {
        Value::String(s) => millrace_common::base64::decode(s)
            .map_err(|e| ApiError::serialization(format!("{field} is not valid base64: {e}"))),
        other => Err(wrong_type(field, "a base64-encoded blob", other)),
    }
}

/// An ISO-8601 timestamp as AWS accepts it: `2026-11-25T12:00:00Z`, `2026-11-25T12:00:00.123+00:00`,
/// or without an offset (UTC) → epoch ms. Impossible dates (`9999-99-99T99:99:99Z`) are `None`.
fn parse_iso8601_ms(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc().timestamp_millis())
}

/// The stream name inside a `StreamARN`, if the ARN has the shape AWS requires:
/// `arn:aws<partition>:kinesis:<region>:<12-digit account>:stream/<name>`.
pub(crate) fn stream_of_arn(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:aws")?;
    let (_partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("kinesis:")?;
    let (head, name) = rest.rsplit_once(":stream/")?;
    let (_region, account) = head.rsplit_once(':')?;
    let valid = account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && !name.chars().any(char::is_whitespace);
    valid.then_some(name)
}

/// A CBOR timestamp number in epoch milliseconds. The AWS SDKs that speak CBOR (Java v1/v2, the
/// KPL) put epoch *milliseconds* under tag 1; RFC 8949's tag 1 is epoch *seconds* (integer or
/// float). Both are accepted: a magnitude below 10^11 is seconds (10^11 ms is March 1973, 10^11 s
/// is the year 5138), anything larger is milliseconds.
pub fn cbor_timestamp_ms(f: f64) -> i64 {
    if f.abs() < 1e11 {
        (f * 1000.0).round() as i64
    } else {
        f.round() as i64
    }
}

/// Checks the type of every member of a request body against operation `op`'s input shape
/// (`shapes.rs`, generated from botocore's model), nested lists, maps and structures included.
/// The first mismatch is a `SerializationException` naming the member's path; this runs before
/// any other check, as in Kinesis. Unknown members are ignored (as AWS's JSON protocol does) and
/// `null` stands for an absent member. Operations the model does not have are not checked.
pub fn check_types(op: &str, fields: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(Ty::Struct(members)) = crate::shapes::input(op) else {
        return Ok(());
    };
    // The member path is built in one buffer as the walk goes and copied only into an error:
    // a PutRecords of 500 records is checked without an allocation per member.
    let mut path = String::new();
    check_members(members, fields, &mut path)
}

fn check_members(
    members: &[(&str, Ty)],
    fields: &Map<String, Value>,
    path: &mut String,
) -> Result<(), ApiError> {
    for (name, ty) in members {
        if let Some(v) = fields.get(*name) {
            let len = path.len();
            path.push_str(name);
            check_value(ty, v, path)?;
            path.truncate(len);
        }
    }
    Ok(())
}

fn check_value(ty: &Ty, v: &Value, path: &mut String) -> Result<(), ApiError> {
    use std::fmt::Write;
    if v.is_null() {
        return Ok(());
    }
    let want = match (ty, v) {
        (Ty::Str, Value::String(_)) | (Ty::Bool, Value::Bool(_)) | (Ty::Num, Value::Number(_)) => {
            return Ok(());
        }
        (Ty::Int, Value::Number(n)) if n.is_i64() => return Ok(()),
        (Ty::Blob, Value::String(s)) => {
            if !looks_like_base64(s) {
                return Err(ApiError::serialization(format!(
                    "{path} is not valid base64"
                )));
            }
            return Ok(());
        }
        (Ty::Time, Value::Number(_)) => return Ok(()),
        (Ty::Time, Value::String(s)) => {
            if parse_iso8601_ms(s).is_none() {
                return Err(ApiError::serialization(format!(
                    "{path} is not a timestamp: {s}"
                )));
            }
            return Ok(());
        }
        (Ty::List(item), Value::Array(items)) => {
            let len = path.len();
            for (i, v) in items.iter().enumerate() {
                let _ = write!(path, "[{i}]");
                check_value(item, v, path)?;
                path.truncate(len);
            }
            return Ok(());
        }
        (Ty::Map(value), Value::Object(m)) => {
            let len = path.len();
            for (k, v) in m {
                let _ = write!(path, "[{k:?}]");
                check_value(value, v, path)?;
                path.truncate(len);
            }
            return Ok(());
        }
        (Ty::Struct(members), Value::Object(m)) => {
            path.push('.');
            return check_members(members, m, path);
        }
        (Ty::Str, _) => "a string",
        (Ty::Int, _) => "an integer",
        (Ty::Num, _) => "a number",
        (Ty::Bool, _) => "a boolean",
        (Ty::Blob, _) => "a base64-encoded blob",
        (Ty::Time, _) => "a timestamp",
        (Ty::List(_), _) => "a list",
        (Ty::Map(_), _) => "a map",
        (Ty::Struct(_), _) => "a structure",
    };
    Err(wrong_type(path, want, v))
}

/// Whether `s` is padded standard base64 by its alphabet and length, without decoding it (the
/// operation decodes the blob once, and reports what this cheap scan lets through).
fn looks_like_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let body = b
        .strip_suffix(b"==")
        .or_else(|| b.strip_suffix(b"="))
        .unwrap_or(b);
    body.iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/'))
}

/// Every failed model constraint of one request, reported together in AWS's wording:
/// `2 validation errors detected: Value 'a b' at 'streamName' failed to satisfy constraint:
/// Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '0' at 'shardCount'
/// failed to satisfy constraint: Member must have value greater than or equal to 1`.
///
/// Operations feed it every member, then call [`Checks::finish`]; values read through it may
/// break their constraints until `finish` returned `Ok`. Semantic conflicts between valid
/// members stay `InvalidArgumentException`s, checked after `finish`.
#[derive(Debug, Default)]
pub struct Checks {
    failures: Vec<String>,
    count: usize,
    later: Option<ApiError>,
}

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one failed constraint. `member` is the path AWS names (lowerCamelCase, list
    /// items as `records.2.member.data`); `value` is shown as given (`'x'`, `null`).
    pub fn fail(&mut self, member: &str, value: &str, constraint: &str) {
        self.failures.push(format!(
            "Value {value} at '{member}' failed to satisfy constraint: {constraint}"
        ));
        self.count += 1;
    }

    pub fn is_clean(&self) -> bool {
        self.count == 0
    }

    /// An error found while checking that Kinesis reports only when every model constraint
    /// held (an `InvalidArgumentException` such as a hash key out of the key space): `finish`
    /// returns the first one.
    pub fn later(&mut self, e: ApiError) {
        self.later.get_or_insert(e);
    }

    /// Takes in the result of a check that stops at its first failure: a `ValidationException`
    /// joins the others (`None`), any other error is returned.
    pub fn absorb<T>(&mut self, r: Result<T, ApiError>) -> Result<Option<T>, ApiError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code == crate::error::ErrorCode::Validation => {
                let (n, rest) = split_validation_message(&e.message);
                self.failures.push(rest.to_owned());
                self.count += n;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `Ok` when every constraint held, else one `ValidationException` naming them all.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.count {
            0 => self.later.map_or(Ok(()), Err),
            n => Err(ApiError::new(
                crate::error::ErrorCode::Validation,
                format!(
                    "{n} validation error{} detected: {}",
                    if n == 1 { "" } else { "s" },
                    self.failures.join("; ")
                ),
            )),
        }
    }

    /// A required member: records `Member must not be null` when it is absent.
    pub fn required<T>(&mut self, field: &str, v: Option<T>) -> Option<T> {
        if v.is_none() {
            self.fail(&member(field), "null", "Member must not be null");
        }
        v
    }

    /// A string member's length (in characters) within `min..=max`; `field` is the path as
    /// the request spells it (`Records[1].PartitionKey` or `records.2.member.partitionKey`).
    pub fn len(&mut self, field: &str, s: &str, min: usize, max: usize) -> bool {
        let r = check_len(field, s, min, max);
        self.absorb(r).ok().flatten().is_some()
    }

    /// An integer member within `min..=max`.
    pub fn range(&mut self, field: &str, i: i64, min: i64, max: i64) -> bool {
        let constraint = if i < min {
            format!("Member must have value greater than or equal to {min}")
        } else if i > max {
            format!("Member must have value less than or equal to {max}")
        } else {
            return true;
        };
        self.fail(&member(field), &format!("'{i}'"), &constraint);
        false
    }

    /// A string member that must match the model's `pattern` (`matches` says whether it does).
    pub fn pattern(&mut self, field: &str, s: &str, matches: bool, pattern: &str) -> bool {
        if !matches {
            self.fail(
                &member(field),
                &format!("'{}'", shown(s)),
                &format!("Member must satisfy regular expression pattern: {pattern}"),
            );
        }
        matches
    }

    /// A string member that must be one of an enum's values.
    pub fn one_of(&mut self, field: &str, s: &str, allowed: &[&str]) -> bool {
        let ok = allowed.contains(&s);
        if !ok {
            self.fail(
                &member(field),
                &format!("'{}'", shown(s)),
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
        ok
    }

    /// A stream name's model constraints: 1-128 of `[a-zA-Z0-9_.-]`.
    pub fn stream_name(&mut self, field: &str, name: &str) -> bool {
        self.len(field, name, 1, 128) && self.pattern(field, name, is_name(name), "[a-zA-Z0-9_.-]+")
    }

    /// A sequence number's model pattern (`StartingSequenceNumber`, `SequenceNumberForOrdering`).
    pub fn sequence_number(&mut self, field: &str, s: &str) -> bool {
        self.pattern(field, s, is_sequence_number(s), SEQUENCE_NUMBER_PATTERN)
    }
}

/// The model's pattern of `SequenceNumber` members.
pub const SEQUENCE_NUMBER_PATTERN: &str = "0|([1-9]\\d{0,128})";

/// Whether `s` matches `0|([1-9]\d{0,128})`.
pub fn is_sequence_number(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 129
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A value as shown in a message: long ones cut to 64 characters.
fn shown(s: &str) -> String {
    if s.chars().count() > 64 {
        format!("{}...", s.chars().take(64).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// `("N validation error(s) detected: rest")` → `(N, rest)`; a message of another shape is one.
fn split_validation_message(m: &str) -> (usize, &str) {
    if let Some((n, rest)) = m.split_once(' ')
        && let Ok(n) = n.parse::<usize>()
        && let Some(rest) = rest
            .strip_prefix("validation errors detected: ")
            .or_else(|| rest.strip_prefix("validation error detected: "))
    {
        return (n, rest);
    }
    (1, m)
}

impl Request {
    /// Feeds the `StreamName` / `StreamARN` model constraints to `c`; which of them names the
    /// stream (and whether one does) is checked after, by `stream_name`.
    pub fn check_stream(&self, c: &mut Checks) -> Result<(), ApiError> {
        if let Some(name) = self.opt_str("StreamName")? {
            c.stream_name("StreamName", name);
        }
        if let Some(arn) = self.opt_str("StreamARN")?
            && c.len("StreamARN", arn, 1, 2048)
        {
            c.pattern(
                "StreamARN",
                arn,
                stream_of_arn(arn).is_some(),
                "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
            );
        }
        Ok(())
    }

    /// An optional integer member, its range fed to `c`.
    pub fn int_in(
        &self,
        c: &mut Checks,
        field: &str,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, ApiError> {
        let v = self.opt_int(field)?;
        if let Some(i) = v {
            c.range(field, i, min, max);
        }
        Ok(v)
    }

    /// An optional string member, its length fed to `c`.
    pub fn str_len(
        &self,
        c: &mut Checks,
        field: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<&str>, ApiError> {
        let v = self.opt_str(field)?;
        if let Some(s) = v {
            c.len(field, s, min, max);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_timestamps() {
        assert_eq!(parse_iso8601_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_iso8601_ms("2023-11-14T22:13:20.5Z"),
            Some(1_700_000_000_500)
        );
        assert_eq!(
            parse_iso8601_ms("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_iso8601_ms("2023-11-14 22:13:20"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_iso8601_ms("yesterday"), None);
        assert_eq!(parse_iso8601_ms("9999-99-99T99:99:99Z"), None);
        assert_eq!(parse_iso8601_ms("2023-02-30T00:00:00Z"), None);
    }

    #[test]
    fn stream_arns() {
        let ok = "arn:aws:kinesis:us-east-1:123456789012:stream/s1";
        assert_eq!(stream_of_arn(ok), Some("s1"));
        assert_eq!(
            stream_of_arn("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s1"),
            Some("s1")
        );
        for bad in [
            "arn:x:stream/s1",
            "arn:aws:s3:us-east-1:123456789012:stream/s1",
            "arn:aws:kinesis:us-east-1:1234:stream/s1",
            "arn:aws:kinesis:us-east-1:123456789012:stream/",
            "arn:aws:kinesis:us-east-1:123456789012:table/s1",
        ] {
            assert_eq!(stream_of_arn(bad), None, "{bad}");
        }
    }

    #[test]
    fn checks_join_every_failure_in_aws_wording() {
        let mut c = Checks::new();
        assert!(!c.stream_name("StreamName", "a b"));
        assert!(!c.range("ShardCount", 0, 1, 100));
        assert!(c.range("Limit", 5, 1, 100));
        let e = c.finish().unwrap_err();
        assert_eq!(
            e.message,
            "2 validation errors detected: Value 'a b' at 'streamName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value \
             '0' at 'shardCount' failed to satisfy constraint: Member must have value greater \
             than or equal to 1"
        );
        let mut c = Checks::new();
        c.absorb::<()>(Err(ApiError::validation(
            "data",
            "'x'",
            "Member must not be null",
        )))
        .unwrap();
        c.required::<()>("PartitionKey", None);
        let e = c.finish().unwrap_err();
        assert!(
            e.message
                .starts_with("2 validation errors detected: Value 'x' at 'data'")
        );
        assert!(Checks::new().finish().is_ok());
    }

    #[test]
    fn types_follow_the_model() {
        let body = |v: Value| v.as_object().unwrap().clone();
        let ok = body(
            serde_json::json!({"StreamName": "s", "ShardCount": 2, "Tags": {"a": "b"},
            "Unknown": [1]}),
        );
        assert!(check_types("CreateStream", &ok).is_ok());
        let e = check_types(
            "CreateStream",
            &body(serde_json::json!({"ShardCount": 1.5})),
        )
        .unwrap_err();
        assert_eq!(e.message, "ShardCount must be an integer, found a number");
        let e = check_types(
            "PutRecords",
            &body(serde_json::json!({"Records": [{"Data": "aGk="}, {"Data": 1}]})),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "Records[1].Data must be a base64-encoded blob, found a number"
        );
        let e = check_types(
            "AddTagsToStream",
            &body(serde_json::json!({"Tags": {"k": 3}})),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("Tags[\"k\"] must be a string"),
            "{}",
            e.message
        );
        let e = check_types("PutRecord", &body(serde_json::json!({"Data": "a b="}))).unwrap_err();
        assert_eq!(e.message, "Data is not valid base64");
        assert!(check_types("NoSuchOperation", &ok).is_ok());
    }

    #[test]
    fn cbor_timestamps_in_seconds_or_millis() {
        assert_eq!(cbor_timestamp_ms(1_700_000_000.5), 1_700_000_000_500);
        assert_eq!(cbor_timestamp_ms(1_700_000_000_123.0), 1_700_000_000_123);
        assert_eq!(cbor_timestamp_ms(0.0), 0);
    }

    #[test]
    fn stream_names() {
        assert!(validate_stream_name("a-b_c.1").is_ok());
        assert!(validate_stream_name("").is_err());
        assert!(validate_stream_name("a/b").is_err());
        assert!(validate_stream_name("..").is_err());
        assert!(validate_stream_name(&"a".repeat(129)).is_err());
    }
}
