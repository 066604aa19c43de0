//! Typed access to a decoded request with the errors Kinesis gives: a member of the wrong type
//! is a `SerializationException`; a missing or out-of-range member is a `ValidationException`
//! naming the member and the constraint.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::protocol::{Protocol, kind};

pub struct Request {
    fields: Map<String, Value>,
    protocol: Protocol,
}

/// AWS names members in validation messages in lowerCamelCase.
pub(crate) fn member(field: &str) -> String {
    let mut c = field.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
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
    /// ISO-8601 string; CBOR sends milliseconds.
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
                    Protocol::Cbor => f as i64,
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
        Value::String(s) => STANDARD
            .decode(s)
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
fn stream_of_arn(arn: &str) -> Option<&str> {
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
    fn stream_names() {
        assert!(validate_stream_name("a-b_c.1").is_ok());
        assert!(validate_stream_name("").is_err());
        assert!(validate_stream_name("a/b").is_err());
        assert!(validate_stream_name("..").is_err());
        assert!(validate_stream_name(&"a".repeat(129)).is_err());
    }
}
