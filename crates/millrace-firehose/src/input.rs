//! Reading the Firehose operations' members against botocore's `firehose/2015-08-04` model:
//! every violated constraint joins one ValidationException (as the service answers), before
//! any check of meaning.

use std::collections::BTreeMap;

use millrace_gateway::ApiError;
use millrace_gateway::request::{Checks, Request};
use serde_json::{Map, Value};

use crate::spec::{Compression, Processor};

const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";
const BUCKET_ARN_PATTERN: &str = "arn:.*:s3:::[\\w\\.\\-]{1,255}";
const ROLE_ARN_PATTERN: &str = "arn:.*:iam::\\d{12}:role/[a-zA-Z_0-9+=,.@\\-_/]+";
const STREAM_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+";
const TYPES: &[&str] = &[
    "DirectPut",
    "KinesisStreamAsSource",
    "MSKAsSource",
    "DatabaseAsSource",
];
const COMPRESSIONS: &[&str] = &["UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"];
const PROCESSOR_TYPES: &[&str] = &[
    "RecordDeAggregation",
    "Decompression",
    "CloudWatchLogProcessing",
    "Lambda",
    "MetadataExtraction",
    "AppendDelimiterToRecord",
];
const PARAMETER_NAMES: &[&str] = &[
    "LambdaArn",
    "NumberOfRetries",
    "MetadataExtractionQuery",
    "JsonParsingEngine",
    "RoleArn",
    "BufferSizeInMBs",
    "BufferIntervalInSeconds",
    "SubRecordType",
    "Delimiter",
    "CompressionFormat",
    "DataMessageExtraction",
];
const KEY_TYPES: &[&str] = &["AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK"];
/// Destinations millrace does not deliver to: named in the refusal.
pub const OTHER_DESTINATIONS: &[&str] = &[
    "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationConfiguration",
    "SplunkDestinationConfiguration",
    "HttpEndpointDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationConfiguration",
    "SnowflakeDestinationConfiguration",
    "IcebergDestinationConfiguration",
];

/// An S3 destination as given (Extended or not), within the model.
#[derive(Debug, Clone, Default)]
pub struct S3In {
    pub role_arn: Option<String>,
    pub bucket_arn: Option<String>,
    pub prefix: Option<String>,
    pub error_prefix: Option<String>,
    pub size_mib: Option<u32>,
    pub interval_secs: Option<u32>,
    pub compression: Option<String>,
    pub kms_key_arn: Option<String>,
    pub logging: Option<(bool, String, String)>,
    pub processing: Option<(bool, Vec<Processor>)>,
    pub s3_backup_mode: Option<String>,
    pub dynamic_partitioning: Option<(bool, Option<u32>)>,
    pub format_conversion: Option<Value>,
    pub file_extension: Option<String>,
    pub custom_time_zone: Option<String>,
    /// `S3BackupConfiguration` (creating) or `S3BackupUpdate`.
    pub backup: Option<Box<S3In>>,
}

pub struct CreateInput {
    pub name: String,
    pub kind: String,
    pub throughput_hint_mb: Option<u32>,
    pub kinesis: Option<(String, String)>,
    pub encryption: Option<(String, Option<String>)>,
    /// `(extended, destination)`.
    pub s3: Option<(bool, S3In)>,
    pub other_destinations: Vec<&'static str>,
    pub tags: BTreeMap<String, String>,
}

impl CreateInput {
    pub fn read(req: &Request) -> Result<Self, ApiError> {
        let mut c = Checks::new();
        let name = read_name(&mut c, req)?;
        let kind = req.opt_str("DeliveryStreamType")?.unwrap_or("DirectPut");
        c.one_of("DeliveryStreamType", kind, TYPES);
        let throughput_hint_mb = req
            .opt_object("DirectPutSourceConfiguration")?
            .and_then(|m| {
                let v = c.required(
                    "DirectPutSourceConfiguration.ThroughputHintInMBs",
                    int(m, "ThroughputHintInMBs"),
                )?;
                c.range(
                    "DirectPutSourceConfiguration.ThroughputHintInMBs",
                    v,
                    1,
                    100,
                )
                .then_some(v as u32)
            });
        let kinesis = match req.opt_object("KinesisStreamSourceConfiguration")? {
            Some(m) => {
                let p = "KinesisStreamSourceConfiguration";
                let arn = c.required(
                    &format!("{p}.KinesisStreamARN"),
                    text(m, "KinesisStreamARN"),
                );
                if let Some(a) = arn
                    && c.len(&format!("{p}.KinesisStreamARN"), a, 1, 512)
                {
                    c.pattern(
                        &format!("{p}.KinesisStreamARN"),
                        a,
                        is_stream_arn(a),
                        STREAM_ARN_PATTERN,
                    );
                }
                let role = c.required(&format!("{p}.RoleARN"), text(m, "RoleARN"));
                if let Some(r) = role {
                    role_arn(&mut c, &format!("{p}.RoleARN"), r);
                }
                arn.zip(role).map(|(a, r)| (a.to_owned(), r.to_owned()))
            }
            None => None,
        };
        let encryption = req
            .opt_object("DeliveryStreamEncryptionConfigurationInput")?
            .and_then(|m| read_encryption(&mut c, m));
        let s3 = match (
            req.opt_object("ExtendedS3DestinationConfiguration")?,
            req.opt_object("S3DestinationConfiguration")?,
        ) {
            (Some(m), _) => Some((
                true,
                read_s3(&mut c, m, "ExtendedS3DestinationConfiguration", true),
            )),
            (None, Some(m)) => Some((
                false,
                read_s3(&mut c, m, "S3DestinationConfiguration", true),
            )),
            (None, None) => None,
        };
        let other_destinations = OTHER_DESTINATIONS
            .iter()
            .copied()
            .filter(|d| req.has(d))
            .collect();
        let tags = match req.opt_list("Tags")? {
            Some(l) => read_tag_list(&mut c, l, "Tags", 1, 50),
            None => BTreeMap::new(),
        };
        c.finish()?;
        Ok(Self {
            name: name.expect("checked"),
            kind: kind.to_owned(),
            throughput_hint_mb,
            kinesis,
            encryption,
            s3,
            other_destinations,
            tags,
        })
    }
}

pub struct UpdateInput {
    pub name: String,
    pub version: String,
    pub destination_id: String,
    pub s3: Option<(bool, S3In)>,
    pub other_destinations: Vec<&'static str>,
}

impl UpdateInput {
    pub fn read(req: &Request) -> Result<Self, ApiError> {
        let mut c = Checks::new();
        let name = read_name(&mut c, req)?;
        let version = c.required(
            "CurrentDeliveryStreamVersionId",
            req.opt_str("CurrentDeliveryStreamVersionId")?,
        );
        if let Some(v) = version
            && c.len("CurrentDeliveryStreamVersionId", v, 1, 50)
        {
            c.pattern(
                "CurrentDeliveryStreamVersionId",
                v,
                v.bytes().all(|b| b.is_ascii_digit()),
                "[0-9]+",
            );
        }
        let destination_id = c.required("DestinationId", req.opt_str("DestinationId")?);
        if let Some(d) = destination_id {
            c.len("DestinationId", d, 1, 100);
        }
        let s3 = match (
            req.opt_object("ExtendedS3DestinationUpdate")?,
            req.opt_object("S3DestinationUpdate")?,
        ) {
            (Some(m), _) => Some((
                true,
                read_s3(&mut c, m, "ExtendedS3DestinationUpdate", false),
            )),
            (None, Some(m)) => Some((false, read_s3(&mut c, m, "S3DestinationUpdate", false))),
            (None, None) => None,
        };
        let other_destinations = OTHER_DESTINATIONS
            .iter()
            .map(|d| d.replace("Configuration", "Update"))
            .zip(OTHER_DESTINATIONS.iter().copied())
            .filter(|(update, _)| req.has(update))
            .map(|(_, d)| d)
            .collect();
        c.finish()?;
        Ok(Self {
            name: name.expect("checked"),
            version: version.expect("checked").to_owned(),
            destination_id: destination_id.expect("checked").to_owned(),
            s3,
            other_destinations,
        })
    }
}

/// `DeliveryStreamName` (required) within the model.
pub fn read_name(c: &mut Checks, req: &Request) -> Result<Option<String>, ApiError> {
    let name = c.required("DeliveryStreamName", req.opt_str("DeliveryStreamName")?);
    if let Some(n) = name {
        delivery_stream_name(c, "DeliveryStreamName", n);
    }
    Ok(name.map(str::to_owned))
}

/// The name of an operation that takes only `DeliveryStreamName` and simple members.
pub fn name_only(req: &Request) -> Result<String, ApiError> {
    let mut c = Checks::new();
    let name = read_name(&mut c, req)?;
    c.finish()?;
    Ok(name.expect("checked"))
}

pub fn delivery_stream_name(c: &mut Checks, field: &str, n: &str) -> bool {
    c.len(field, n, 1, 64) && c.pattern(field, n, is_name(n), NAME_PATTERN)
}

fn role_arn(c: &mut Checks, field: &str, r: &str) {
    if c.len(field, r, 1, 512) {
        c.pattern(field, r, is_role_arn(r), ROLE_ARN_PATTERN);
    }
}

fn read_encryption(c: &mut Checks, m: &Map<String, Value>) -> Option<(String, Option<String>)> {
    let p = "DeliveryStreamEncryptionConfigurationInput";
    let key_type = c.required(&format!("{p}.KeyType"), text(m, "KeyType"))?;
    c.one_of(&format!("{p}.KeyType"), key_type, KEY_TYPES);
    let key_arn = text(m, "KeyARN");
    if let Some(k) = key_arn {
        c.len(&format!("{p}.KeyARN"), k, 1, 512);
    }
    Some((key_type.to_owned(), key_arn.map(str::to_owned)))
}

/// An S3 destination's members; `creating` makes RoleARN and BucketARN required.
fn read_s3(c: &mut Checks, m: &Map<String, Value>, p: &str, creating: bool) -> S3In {
    let f = |k: &str| format!("{p}.{k}");
    let mut d = S3In::default();
    let role = text(m, "RoleARN");
    let role = if creating {
        c.required(&f("RoleARN"), role)
    } else {
        role
    };
    if let Some(r) = role {
        role_arn(c, &f("RoleARN"), r);
    }
    d.role_arn = role.map(str::to_owned);
    let bucket = text(m, "BucketARN");
    let bucket = if creating {
        c.required(&f("BucketARN"), bucket)
    } else {
        bucket
    };
    if let Some(b) = bucket
        && c.len(&f("BucketARN"), b, 1, 2048)
    {
        c.pattern(
            &f("BucketARN"),
            b,
            bucket_of_arn(b).is_some(),
            BUCKET_ARN_PATTERN,
        );
    }
    d.bucket_arn = bucket.map(str::to_owned);
    for (key, slot) in [
        ("Prefix", &mut d.prefix),
        ("ErrorOutputPrefix", &mut d.error_prefix),
    ] {
        if let Some(v) = text(m, key) {
            c.len(&f(key), v, 0, 1024);
            *slot = Some(v.to_owned());
        }
    }
    if let Some(b) = obj(m, "BufferingHints") {
        if let Some(v) = int(b, "SizeInMBs") {
            c.range(&f("BufferingHints.SizeInMBs"), v, 1, 128)
                .then(|| d.size_mib = Some(v as u32));
        }
        if let Some(v) = int(b, "IntervalInSeconds") {
            c.range(&f("BufferingHints.IntervalInSeconds"), v, 0, 900)
                .then(|| d.interval_secs = Some(v as u32));
        }
    }
    if let Some(v) = text(m, "CompressionFormat") {
        c.one_of(&f("CompressionFormat"), v, COMPRESSIONS);
        d.compression = Some(v.to_owned());
    }
    if let Some(e) = obj(m, "EncryptionConfiguration") {
        d.kms_key_arn = obj(e, "KMSEncryptionConfig")
            .and_then(|k| text(k, "AWSKMSKeyARN"))
            .map(str::to_owned);
        if let Some(v) = text(e, "NoEncryptionConfig") {
            c.one_of(
                &f("EncryptionConfiguration.NoEncryptionConfig"),
                v,
                &["NoEncryption"],
            );
        }
    }
    if let Some(l) = obj(m, "CloudWatchLoggingOptions") {
        d.logging = Some((
            l.get("Enabled").and_then(Value::as_bool).unwrap_or(false),
            text(l, "LogGroupName").unwrap_or_default().to_owned(),
            text(l, "LogStreamName").unwrap_or_default().to_owned(),
        ));
    }
    if let Some(pc) = obj(m, "ProcessingConfiguration") {
        let enabled = pc.get("Enabled").and_then(Value::as_bool).unwrap_or(false);
        let processors = list(pc, "Processors")
            .map(|l| read_processors(c, l, &f("ProcessingConfiguration.Processors")))
            .unwrap_or_default();
        d.processing = Some((enabled, processors));
    }
    if let Some(v) = text(m, "S3BackupMode") {
        c.one_of(&f("S3BackupMode"), v, &["Disabled", "Enabled"]);
        d.s3_backup_mode = Some(v.to_owned());
    }
    let backup_key = if creating {
        "S3BackupConfiguration"
    } else {
        "S3BackupUpdate"
    };
    if let Some(b) = obj(m, backup_key) {
        d.backup = Some(Box::new(read_s3(c, b, &f(backup_key), creating)));
    }
    if let Some(dp) = obj(m, "DynamicPartitioningConfiguration") {
        let enabled = dp.get("Enabled").and_then(Value::as_bool).unwrap_or(false);
        let retry = obj(dp, "RetryOptions").and_then(|r| int(r, "DurationInSeconds"));
        if let Some(r) = retry {
            c.range(
                &f("DynamicPartitioningConfiguration.RetryOptions.DurationInSeconds"),
                r,
                0,
                7200,
            );
        }
        d.dynamic_partitioning = Some((enabled, retry.map(|r| r as u32)));
    }
    if let Some(v) = m
        .get("DataFormatConversionConfiguration")
        .filter(|v| v.is_object())
    {
        d.format_conversion = Some(v.clone());
    }
    if let Some(v) = text(m, "FileExtension") {
        if c.len(&f("FileExtension"), v, 0, 128) {
            c.pattern(
                &f("FileExtension"),
                v,
                v.is_empty() || millrace_delivery::is_file_extension(v),
                "^$|\\.[0-9a-z!\\-_.*'()]+",
            );
        }
        d.file_extension = Some(v.to_owned());
    }
    if let Some(v) = text(m, "CustomTimeZone") {
        if c.len(&f("CustomTimeZone"), v, 0, 50) {
            c.pattern(
                &f("CustomTimeZone"),
                v,
                v.is_empty()
                    || v.bytes()
                        .all(|b| b.is_ascii_alphabetic() || b"/_".contains(&b)),
                "^$|[a-zA-Z/_]+",
            );
        }
        d.custom_time_zone = Some(v.to_owned());
    }
    d
}

fn read_processors(c: &mut Checks, l: &[Value], p: &str) -> Vec<Processor> {
    let mut out = Vec::new();
    for (i, v) in l.iter().enumerate() {
        let Some(m) = v.as_object() else { continue };
        let at = format!("{p}[{i}]");
        let Some(kind) = c.required(&format!("{at}.Type"), text(m, "Type")) else {
            continue;
        };
        c.one_of(&format!("{at}.Type"), kind, PROCESSOR_TYPES);
        let mut parameters = Vec::new();
        for (j, pv) in list(m, "Parameters").into_iter().flatten().enumerate() {
            let Some(pm) = pv.as_object() else { continue };
            let pat = format!("{at}.Parameters[{j}]");
            let name = c.required(&format!("{pat}.ParameterName"), text(pm, "ParameterName"));
            let value = c.required(&format!("{pat}.ParameterValue"), text(pm, "ParameterValue"));
            if let Some(n) = name {
                c.one_of(&format!("{pat}.ParameterName"), n, PARAMETER_NAMES);
            }
            if let Some(v) = value
                && c.len(&format!("{pat}.ParameterValue"), v, 1, 5120)
            {
                c.pattern(
                    &format!("{pat}.ParameterValue"),
                    v,
                    !v.trim().is_empty(),
                    "^(?!\\s*$).+",
                );
            }
            if let (Some(n), Some(v)) = (name, value) {
                parameters.push((n.to_owned(), v.to_owned()));
            }
        }
        out.push(Processor {
            kind: kind.to_owned(),
            parameters,
        });
    }
    out
}

/// A `Tags` list (`[{Key, Value}]`) with its model constraints.
pub fn read_tag_list(
    c: &mut Checks,
    l: &[Value],
    field: &str,
    min: usize,
    max: usize,
) -> BTreeMap<String, String> {
    if l.len() < min || l.len() > max {
        c.fail(
            &millrace_gateway::request::member(field),
            &format!("<list of {}>", l.len()),
            &if l.len() < min {
                format!("Member must have length greater than or equal to {min}")
            } else {
                format!("Member must have length less than or equal to {max}")
            },
        );
    }
    let mut tags = BTreeMap::new();
    for (i, t) in l.iter().enumerate() {
        let Some(m) = t.as_object() else { continue };
        let at = format!("{field}[{i}]");
        let Some(key) = c.required(&format!("{at}.Key"), text(m, "Key")) else {
            continue;
        };
        if c.len(&format!("{at}.Key"), key, 1, 128) {
            c.pattern(
                &format!("{at}.Key"),
                key,
                !key.starts_with("aws:"),
                "^(?!aws:)[\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@%]*$",
            );
        }
        let value = text(m, "Value").unwrap_or_default();
        c.len(&format!("{at}.Value"), value, 0, 256);
        tags.insert(key.to_owned(), value.to_owned());
    }
    tags
}

/// The compression a destination asks for, or why millrace cannot write it.
pub fn compression(v: Option<&str>) -> Result<Compression, String> {
    match v.unwrap_or("UNCOMPRESSED") {
        "UNCOMPRESSED" => Ok(Compression::Uncompressed),
        "GZIP" => Ok(Compression::Gzip),
        other => Err(format!(
            "CompressionFormat {other} is not supported by millrace: use UNCOMPRESSED or GZIP \
             (or Parquet conversion, whose files are compressed inside)."
        )),
    }
}

/// The bucket name of `arn:…:s3:::NAME`.
pub fn bucket_of_arn(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let (_, name) = rest.split_once(":s3:::")?;
    let ok = (1..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    ok.then_some(name)
}

/// The stream name of `arn:aws…:kinesis:REGION:ACCOUNT:stream/NAME`.
pub fn stream_of_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:aws")?;
    let (_, rest) = rest.split_once(":kinesis:")?;
    let (region, rest) = rest.split_once(':')?;
    let (account, rest) = rest.split_once(':')?;
    let name = rest.strip_prefix("stream/")?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty())
        .then_some((region, account, name))
}

fn is_stream_arn(a: &str) -> bool {
    stream_of_arn(a).is_some_and(|(_, _, n)| !n.bytes().any(|b| b.is_ascii_whitespace()))
}

fn is_role_arn(r: &str) -> bool {
    let Some(rest) = r.strip_prefix("arn:") else {
        return false;
    };
    let Some((_, rest)) = rest.split_once(":iam::") else {
        return false;
    };
    let Some((account, role)) = rest.split_once(":role/") else {
        return false;
    };
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !role.is_empty()
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_/".contains(&b))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn obj<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Map<String, Value>> {
    m.get(key).and_then(Value::as_object)
}

fn list<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Vec<Value>> {
    m.get(key).and_then(Value::as_array)
}

fn text<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

fn int(m: &Map<String, Value>, key: &str) -> Option<i64> {
    m.get(key).and_then(Value::as_i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_taken_apart() {
        assert_eq!(bucket_of_arn("arn:aws:s3:::lake"), Some("lake"));
        assert_eq!(bucket_of_arn("arn:aws:s3:::a/b"), None);
        assert_eq!(bucket_of_arn("arn:aws:s3::lake"), None);
        assert_eq!(
            stream_of_arn("arn:aws:kinesis:us-east-1:000000000000:stream/orders"),
            Some(("us-east-1", "000000000000", "orders"))
        );
        assert!(stream_of_arn("arn:aws:kinesis:us-east-1:0:stream/o").is_none());
        assert!(is_role_arn("arn:aws:iam::000000000000:role/firehose"));
        assert!(!is_role_arn("arn:aws:iam::000000000000:user/x"));
        assert!(millrace_delivery::is_file_extension(".json.gz"));
        assert!(!millrace_delivery::is_file_extension("json"));
    }
}
