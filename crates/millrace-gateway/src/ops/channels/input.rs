//! The channel operations' members read against botocore's model: every length, pattern, enum
//! and required member goes to one [`Checks`], so a request's model violations come back
//! together in one ValidationException. Member types were checked before (`check_types`), so
//! a value of the wrong type cannot reach here. Nothing here looks at state.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::channels::Logging;
use crate::error::ApiError;
use crate::ops::tags::parse_tag_map;
use crate::request::{Checks, Request};

pub(super) const CHANNEL_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:channel/\\S+";
const STREAM_ARN_PATTERN: &str = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+";
const NAME_PATTERN: &str = "[a-zA-Z0-9_.-]+";
const ROLE_ARN_PATTERN: &str = "arn:aws[-a-z0-9]*:iam::\\d{12}:role/[a-zA-Z_0-9+=,.@\\-_/]+";
const BUCKET_ARN_PATTERN: &str = "arn:aws[-a-z0-9]*:s3:::[a-z0-9._-]{3,63}";
const OWNER_PATTERN: &str = "\\d{12}";
const KEY_TEMPLATE_PATTERN: &str = "[0-9A-Za-z!\\-_'.*()\\/=:{}]+";
const ERROR_PREFIX_PATTERN: &str = "[0-9A-Za-z!\\-_'.*()\\/]+";
const LOG_GROUP_PATTERN: &str = "[\\.\\-_/#A-Za-z0-9]+";
const LOG_STREAM_PATTERN: &str = "[^:*]*";
const GSR_SCHEMA_ARN_PATTERN: &str =
    "arn:aws[-a-z0-9]*:glue:[-a-z0-9]+:\\d{12}:schema/[-a-zA-Z0-9_$#.]+/[-a-zA-Z0-9_$#.]+";
const TABLE_BUCKET_ARN_PATTERN: &str =
    "arn:aws[-a-z0-9]*:s3tables:[-a-z0-9]+:\\d{12}:bucket/[a-z0-9_-]{3,63}";
const TABLES_NAME_PATTERN: &str = "[0-9a-z_]+";
const PARTITION_SOURCE_PATTERN: &str = "[a-zA-Z0-9\\.\\_]+";

const RECORD_FORMATS: &[&str] = &["GSR_JSON", "JSON", "STRING", "BYTE_ARRAY"];
const STORAGE_CLASSES: &[&str] = &["STANDARD", "INTELLIGENT_TIERING", "GLACIER_IR"];
const COMPRESSIONS: &[&str] = &["NONE", "GZIP", "ZSTD"];
const TABLES_COMPRESSIONS: &[&str] = &["NONE", "ZSTD", "SNAPPY"];

/// CreateChannel's members, each within the model.
pub(super) struct CreateInput<'a> {
    pub name: &'a str,
    pub role_arn: &'a str,
    pub streams: Vec<StreamIn<'a>>,
    pub s3: Option<S3In<'a>>,
    /// `S3TablesDestinationConfiguration`, within the model.
    pub tables: Option<TablesIn<'a>>,
    pub kms_key_id: Option<&'a str>,
    pub logging: Logging,
    pub tags: BTreeMap<String, String>,
}

/// One `StreamConfigurationList` entry.
pub(super) struct StreamIn<'a> {
    pub arn: &'a str,
    pub format: &'a str,
    pub schema_arn: Option<&'a str>,
}

/// `S3DestinationConfiguration`.
pub(super) struct S3In<'a> {
    pub bucket_arn: &'a str,
    pub owner: &'a str,
    pub key_template: Option<&'a str>,
    pub storage_class: Option<&'a str>,
    pub compression: &'a str,
    pub freshness: Option<i64>,
    pub dead_letter: Option<DeadLetterIn<'a>>,
}

/// `S3TablesDestinationConfiguration` (its first table: one is supported per channel).
pub(super) struct TablesIn<'a> {
    pub freshness: Option<i64>,
    pub dead_letter: DeadLetterIn<'a>,
    pub tables: Vec<TableIn<'a>>,
}

/// One `S3TablesConfiguration`.
pub(super) struct TableIn<'a> {
    pub bucket_arn: &'a str,
    pub namespace: &'a str,
    pub table: &'a str,
    pub compression: &'a str,
    /// `TIME_HOUR` partition fields' source columns.
    pub hour_partitions: Vec<&'a str>,
}

/// `DeadLetterQueueS3Configuration`.
pub(super) struct DeadLetterIn<'a> {
    pub bucket_arn: &'a str,
    pub owner: &'a str,
    pub prefix: Option<&'a str>,
}

/// UpdateChannel's members.
pub(super) struct UpdateInput<'a> {
    pub arn: &'a str,
    /// `S3DestinationConfiguration.DataFreshnessInSeconds`.
    pub s3_freshness: Option<i64>,
    /// `S3TablesDestinationConfiguration.DataFreshnessInSeconds`.
    pub tables_freshness: Option<i64>,
    pub logging: Option<Logging>,
}

/// ListChannels' members.
pub(super) struct ListInput<'a> {
    pub filters: Vec<StreamFilterIn>,
    pub max: Option<i64>,
    pub token: Option<&'a str>,
}

/// One `StreamFilter` of ListChannels: a stream ARN and maybe its creation time (ms).
pub(super) struct StreamFilterIn {
    pub arn: String,
    pub created_ms: Option<i64>,
}

impl<'a> CreateInput<'a> {
    pub fn read(req: &'a Request) -> Result<Self, ApiError> {
        let mut c = Checks::new();
        let name = c.required("ChannelName", req.opt_str("ChannelName")?);
        if let Some(n) = name {
            check_channel_name(&mut c, n);
        }
        let role_arn = c.required(
            "ServiceExecutionRoleARN",
            req.opt_str("ServiceExecutionRoleARN")?,
        );
        if let Some(r) = role_arn {
            check_role_arn(&mut c, "ServiceExecutionRoleARN", r);
        }
        let streams = c.required(
            "StreamConfigurationList",
            req.opt_list("StreamConfigurationList")?,
        );
        let streams = streams.map_or_else(Vec::new, |l| read_stream_list(&mut c, l));
        let s3 = req
            .opt_object("S3DestinationConfiguration")?
            .and_then(|m| read_s3(&mut c, m, "S3DestinationConfiguration"));
        let tables = req
            .opt_object("S3TablesDestinationConfiguration")?
            .and_then(|t| read_tables(&mut c, t, "S3TablesDestinationConfiguration"));
        let kms_key_id = req
            .opt_object("EncryptionConfiguration")?
            .and_then(|m| read_encryption(&mut c, m, "EncryptionConfiguration"));
        let logging = req
            .opt_object("LoggingConfiguration")?
            .map(|m| read_logging(&mut c, m, "LoggingConfiguration"))
            .unwrap_or_default();
        let tags = req
            .opt_object("Tags")?
            .map(|m| read_tags(&mut c, m))
            .unwrap_or_default();
        c.finish()?;
        Ok(Self {
            name: name.expect("checked"),
            role_arn: role_arn.expect("checked"),
            streams,
            s3,
            tables,
            kms_key_id,
            logging,
            tags,
        })
    }
}

impl<'a> UpdateInput<'a> {
    pub fn read(req: &'a Request) -> Result<Self, ApiError> {
        let mut c = Checks::new();
        let arn = read_channel_arn(&mut c, req)?;
        let s3_freshness = req.opt_object("S3DestinationConfiguration")?.and_then(|m| {
            c.required(
                "S3DestinationConfiguration.DataFreshnessInSeconds",
                int(m, "DataFreshnessInSeconds"),
            )
        });
        let tables_freshness = req
            .opt_object("S3TablesDestinationConfiguration")?
            .and_then(|t| {
                c.required(
                    "S3TablesDestinationConfiguration.DataFreshnessInSeconds",
                    int(t, "DataFreshnessInSeconds"),
                )
            });
        let logging = req
            .opt_object("LoggingConfiguration")?
            .map(|m| read_logging(&mut c, m, "LoggingConfiguration"));
        c.finish()?;
        Ok(Self {
            arn: arn.expect("checked"),
            s3_freshness,
            tables_freshness,
            logging,
        })
    }
}

/// The `ChannelARN` of DescribeChannel, UpdateChannel and DeleteChannel (required).
pub(super) fn channel_arn(req: &Request) -> Result<&str, ApiError> {
    let mut c = Checks::new();
    let arn = read_channel_arn(&mut c, req)?;
    c.finish()?;
    Ok(arn.expect("checked"))
}

fn read_channel_arn<'a>(c: &mut Checks, req: &'a Request) -> Result<Option<&'a str>, ApiError> {
    let arn = c.required("ChannelARN", req.opt_str("ChannelARN")?);
    if let Some(a) = arn
        && c.len("ChannelARN", a, 1, 2048)
    {
        c.pattern(
            "ChannelARN",
            a,
            kinesis_arn_of(a, "channel"),
            CHANNEL_ARN_PATTERN,
        );
    }
    Ok(arn)
}

/// ListChannels' `StreamFilter`, `MaxResults` and `NextToken`.
impl<'a> ListInput<'a> {
    pub fn read(req: &'a Request) -> Result<Self, ApiError> {
        let mut c = Checks::new();
        let mut filters = Vec::new();
        if let Some(list) = req.opt_list("StreamFilter")? {
            list_len(&mut c, "StreamFilter", list.len(), 1, 10_000);
            for (i, item) in list.iter().enumerate() {
                let Some(m) = item.as_object() else { continue };
                let path = format!("StreamFilter.{}.member", i + 1);
                let arn = c.required(&format!("{path}.StreamARN"), text(m, "StreamARN"));
                if let Some(a) = arn {
                    check_stream_arn(&mut c, &format!("{path}.StreamARN"), a);
                }
                let created_ms = match m.get("StreamCreationTimestamp").filter(|v| !v.is_null()) {
                    Some(v) => Some(req.timestamp_ms("StreamCreationTimestamp", v)?),
                    None => None,
                };
                if let Some(a) = arn {
                    filters.push(StreamFilterIn {
                        arn: a.to_owned(),
                        created_ms,
                    });
                }
            }
        }
        let max = req.int_in(&mut c, "MaxResults", 1, 10_000)?;
        let token = req.str_len(&mut c, "NextToken", 1, 1_048_576)?;
        c.finish()?;
        Ok(Self {
            filters,
            max,
            token,
        })
    }
}

fn check_channel_name(c: &mut Checks, name: &str) {
    if c.len("ChannelName", name, 1, 128) {
        c.pattern("ChannelName", name, is_name(name), NAME_PATTERN);
    }
}

fn read_stream_list<'a>(c: &mut Checks, list: &'a [Value]) -> Vec<StreamIn<'a>> {
    list_len(c, "StreamConfigurationList", list.len(), 1, 10_000);
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let Some(m) = item.as_object() else { continue };
        let path = format!("StreamConfigurationList.{}.member", i + 1);
        let arn = c.required(&format!("{path}.StreamARN"), text(m, "StreamARN"));
        if let Some(a) = arn {
            check_stream_arn(c, &format!("{path}.StreamARN"), a);
        }
        let record = format!("{path}.RecordConfiguration");
        let Some(r) = c.required(&record, obj(m, "RecordConfiguration")) else {
            continue;
        };
        let format = c.required(
            &format!("{record}.RecordFormatType"),
            text(r, "RecordFormatType"),
        );
        if let Some(f) = format {
            c.one_of(&format!("{record}.RecordFormatType"), f, RECORD_FORMATS);
        }
        let schema_arn = text(r, "GSRSchemaARN");
        if let Some(s) = schema_arn {
            let field = format!("{record}.GSRSchemaARN");
            if c.len(&field, s, 1, 512) {
                c.pattern(&field, s, is_gsr_schema_arn(s), GSR_SCHEMA_ARN_PATTERN);
            }
        }
        if let (Some(arn), Some(format)) = (arn, format) {
            out.push(StreamIn {
                arn,
                format,
                schema_arn,
            });
        }
    }
    out
}

fn read_s3<'a>(c: &mut Checks, m: &'a Map<String, Value>, path: &str) -> Option<S3In<'a>> {
    let freshness = int(m, "DataFreshnessInSeconds");
    let dead_letter = obj(m, "DeadLetterQueueS3Configuration")
        .and_then(|d| read_dead_letter(c, d, &format!("{path}.DeadLetterQueueS3Configuration")));
    let storage = format!("{path}.StorageConfiguration");
    let s = c.required(&storage, obj(m, "StorageConfiguration"))?;
    let bucket_arn = read_bucket(c, s, &storage);
    let owner = read_owner(c, s, &storage);
    let key_template = text(s, "OutputKeyTemplate");
    if let Some(t) = key_template {
        let field = format!("{storage}.OutputKeyTemplate");
        if c.len(&field, t, 1, 1024) {
            c.pattern(&field, t, is_key_template(t), KEY_TEMPLATE_PATTERN);
        }
    }
    let storage_class = text(s, "StorageClass");
    if let Some(sc) = storage_class {
        c.one_of(&format!("{storage}.StorageClass"), sc, STORAGE_CLASSES);
    }
    let compression = c.required(
        &format!("{storage}.CompressionType"),
        text(s, "CompressionType"),
    );
    if let Some(ct) = compression {
        c.one_of(&format!("{storage}.CompressionType"), ct, COMPRESSIONS);
    }
    Some(S3In {
        bucket_arn: bucket_arn?,
        owner: owner?,
        key_template,
        storage_class,
        compression: compression?,
        freshness,
        dead_letter,
    })
}

fn read_dead_letter<'a>(
    c: &mut Checks,
    m: &'a Map<String, Value>,
    path: &str,
) -> Option<DeadLetterIn<'a>> {
    let bucket_arn = read_bucket(c, m, path);
    let owner = read_owner(c, m, path);
    let prefix = text(m, "ErrorOutputPrefix");
    if let Some(p) = prefix {
        let field = format!("{path}.ErrorOutputPrefix");
        if c.len(&field, p, 1, 512) {
            c.pattern(&field, p, is_error_prefix(p), ERROR_PREFIX_PATTERN);
        }
    }
    Some(DeadLetterIn {
        bucket_arn: bucket_arn?,
        owner: owner?,
        prefix,
    })
}

fn read_bucket<'a>(c: &mut Checks, m: &'a Map<String, Value>, path: &str) -> Option<&'a str> {
    let field = format!("{path}.BucketARN");
    let arn = c.required(&field, text(m, "BucketARN"))?;
    if c.len(&field, arn, 1, 2048) {
        c.pattern(
            &field,
            arn,
            bucket_of_arn(arn).is_some(),
            BUCKET_ARN_PATTERN,
        );
    }
    Some(arn)
}

fn read_owner<'a>(c: &mut Checks, m: &'a Map<String, Value>, path: &str) -> Option<&'a str> {
    let field = format!("{path}.ExpectedBucketOwner");
    let owner = c.required(&field, text(m, "ExpectedBucketOwner"))?;
    if c.len(&field, owner, 12, 12) {
        c.pattern(&field, owner, is_account(owner), OWNER_PATTERN);
    }
    Some(owner)
}

/// `S3TablesDestinationConfiguration` with its model constraints fed to `c`.
fn read_tables<'a>(c: &mut Checks, m: &'a Map<String, Value>, path: &str) -> Option<TablesIn<'a>> {
    let dlq = format!("{path}.DeadLetterQueueS3Configuration");
    let dead_letter = c
        .required(&dlq, obj(m, "DeadLetterQueueS3Configuration"))
        .and_then(|d| read_dead_letter(c, d, &dlq));
    let freshness = int(m, "DataFreshnessInSeconds");
    let list_path = format!("{path}.S3TablesConfigurationList");
    let list = c.required(&list_path, list(m, "S3TablesConfigurationList"))?;
    list_len(c, &list_path, list.len(), 1, 10_000);
    let tables: Vec<TableIn<'a>> = list
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let t = item.as_object()?;
            read_table(c, t, &format!("{list_path}.{}.member", i + 1))
        })
        .collect();
    Some(TablesIn {
        freshness,
        dead_letter: dead_letter?,
        tables,
    })
}

fn read_table<'a>(c: &mut Checks, t: &'a Map<String, Value>, path: &str) -> Option<TableIn<'a>> {
    let field = format!("{path}.TableBucketARN");
    let bucket_arn = c.required(&field, text(t, "TableBucketARN"));
    if let Some(a) = bucket_arn
        && c.len(&field, a, 1, 2048)
    {
        c.pattern(&field, a, is_table_bucket_arn(a), TABLE_BUCKET_ARN_PATTERN);
    }
    let mut names = Vec::new();
    for key in ["Namespace", "TableName"] {
        let field = format!("{path}.{key}");
        let v = c.required(&field, text(t, key));
        if let Some(v) = v
            && c.len(&field, v, 1, 255)
        {
            c.pattern(&field, v, is_tables_name(v), TABLES_NAME_PATTERN);
        }
        names.push(v);
    }
    let field = format!("{path}.CompressionType");
    let compression = c.required(&field, text(t, "CompressionType"));
    if let Some(v) = compression {
        c.one_of(&field, v, TABLES_COMPRESSIONS);
    }
    let hour_partitions = match obj(t, "PartitionSpec") {
        Some(spec) => {
            check_partition_spec(c, spec, &format!("{path}.PartitionSpec"));
            list(spec, "PartitionFields")
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_object().and_then(|f| text(f, "SourceName")))
                .collect()
        }
        None => Vec::new(),
    };
    Some(TableIn {
        bucket_arn: bucket_arn?,
        namespace: names[0]?,
        table: names[1]?,
        compression: compression?,
        hour_partitions,
    })
}

fn check_partition_spec(c: &mut Checks, spec: &Map<String, Value>, path: &str) {
    let list_path = format!("{path}.PartitionFields");
    let Some(fields) = c.required(&list_path, list(spec, "PartitionFields")) else {
        return;
    };
    list_len(c, &list_path, fields.len(), 1, 10);
    for (i, f) in fields.iter().enumerate() {
        let Some(f) = f.as_object() else { continue };
        let path = format!("{list_path}.{}.member", i + 1);
        let field = format!("{path}.Transform");
        if let Some(v) = c.required(&field, text(f, "Transform")) {
            c.one_of(&field, v, &["TIME_HOUR"]);
        }
        let field = format!("{path}.SourceName");
        if let Some(v) = c.required(&field, text(f, "SourceName"))
            && c.len(&field, v, 1, 255)
        {
            let ok = all_of(v, |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'));
            c.pattern(&field, v, ok, PARTITION_SOURCE_PATTERN);
        }
    }
}

/// `EncryptionConfiguration`: its KMS key id.
fn read_encryption<'a>(c: &mut Checks, m: &'a Map<String, Value>, path: &str) -> Option<&'a str> {
    let field = format!("{path}.EncryptionType");
    if let Some(t) = c.required(&field, text(m, "EncryptionType")) {
        c.one_of(&field, t, &["KMS"]);
    }
    let field = format!("{path}.KeyId");
    let key = c.required(&field, text(m, "KeyId"))?;
    c.len(&field, key, 1, 2048);
    Some(key)
}

/// `LoggingConfiguration` (CreateChannel) or its update input (UpdateChannel): one shape.
fn read_logging(c: &mut Checks, m: &Map<String, Value>, path: &str) -> Logging {
    let cw_path = format!("{path}.CloudWatchLogs");
    let Some(cw) = c.required(&cw_path, obj(m, "CloudWatchLogs")) else {
        return Logging::default();
    };
    let enabled = c.required(
        &format!("{cw_path}.Enabled"),
        cw.get("Enabled").and_then(Value::as_bool),
    );
    let log_group = text(cw, "LogGroupName");
    if let Some(g) = log_group {
        let field = format!("{cw_path}.LogGroupName");
        if c.len(&field, g, 1, 512) {
            let ok = all_of(g, |b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/' | b'#')
            });
            c.pattern(&field, g, ok, LOG_GROUP_PATTERN);
        }
    }
    let log_stream = text(cw, "LogStreamName");
    if let Some(s) = log_stream {
        let field = format!("{cw_path}.LogStreamName");
        if c.len(&field, s, 1, 512) {
            let ok = !s.contains([':', '*']);
            c.pattern(&field, s, ok, LOG_STREAM_PATTERN);
        }
    }
    Logging {
        enabled: enabled.unwrap_or(false),
        log_group: log_group.map(str::to_owned),
        log_stream: log_stream.map(str::to_owned),
    }
}

/// `Tags` (1 to 200 entries, keys 1-128 and values 0-256 characters).
fn read_tags(c: &mut Checks, m: &Map<String, Value>) -> BTreeMap<String, String> {
    if m.is_empty() {
        c.fail(
            "tags",
            "{}",
            "Member must have length greater than or equal to 1",
        );
    }
    parse_tag_map(c, m, 200)
}

fn check_role_arn(c: &mut Checks, field: &str, arn: &str) {
    if c.len(field, arn, 1, 512) {
        c.pattern(field, arn, is_role_arn(arn), ROLE_ARN_PATTERN);
    }
}

fn check_stream_arn(c: &mut Checks, field: &str, arn: &str) {
    if c.len(field, arn, 1, 2048) {
        c.pattern(
            field,
            arn,
            kinesis_arn_of(arn, "stream"),
            STREAM_ARN_PATTERN,
        );
    }
}

/// A list member's length within `min..=max`, in AWS's words.
fn list_len(c: &mut Checks, field: &str, n: usize, min: usize, max: usize) {
    let constraint = if n < min {
        format!("Member must have length greater than or equal to {min}")
    } else if n > max {
        format!("Member must have length less than or equal to {max}")
    } else {
        return;
    };
    c.fail(
        &crate::request::member(field),
        &format!("<list of {n}>"),
        &constraint,
    );
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

/// Non-empty, every byte satisfying `ok`.
fn all_of(s: &str, ok: impl Fn(u8) -> bool) -> bool {
    !s.is_empty() && s.bytes().all(ok)
}

fn is_name(s: &str) -> bool {
    all_of(s, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
    })
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_key_template(s: &str) -> bool {
    all_of(s, |b| {
        b.is_ascii_alphanumeric() || b"!-_'.*()/=:{}".contains(&b)
    })
}

fn is_error_prefix(s: &str) -> bool {
    all_of(s, |b| {
        b.is_ascii_alphanumeric() || b"!-_'.*()/".contains(&b)
    })
}

fn is_tables_name(s: &str) -> bool {
    all_of(s, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
    })
}

/// What follows `arn:aws[-a-z0-9]*:SERVICE:` in `arn`.
fn after_service<'a>(arn: &'a str, service: &str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:aws")?;
    let end = rest.find(|c: char| !(c == '-' || c.is_ascii_lowercase() || c.is_ascii_digit()))?;
    rest[end..]
        .strip_prefix(':')?
        .strip_prefix(service)?
        .strip_prefix(':')
}

/// `REGION:ACCOUNT:` with REGION of `[-a-z0-9]+` (empty when `region_may_be_empty`) and a
/// 12-digit ACCOUNT: what follows it.
fn after_region_account(s: &str, region_may_be_empty: bool) -> Option<&str> {
    let (region, rest) = s.split_once(':')?;
    let region_ok = (region_may_be_empty || !region.is_empty())
        && region
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_lowercase() || b.is_ascii_digit());
    let (account, rest) = rest.split_once(':')?;
    (region_ok && is_account(account)).then_some(rest)
}

/// `arn:aws[-a-z0-9]*:iam::\d{12}:role/[a-zA-Z_0-9+=,.@\-_/]+`.
fn is_role_arn(arn: &str) -> bool {
    after_service(arn, "iam")
        .and_then(|r| r.strip_prefix(':'))
        .and_then(|r| r.split_once(':'))
        .is_some_and(|(account, rest)| {
            is_account(account)
                && rest.strip_prefix("role/").is_some_and(|role| {
                    all_of(role, |b| {
                        b.is_ascii_alphanumeric() || b"_+=,.@-/".contains(&b)
                    })
                })
        })
}

/// The bucket of `arn:aws[-a-z0-9]*:s3:::[a-z0-9._-]{3,63}`.
pub(super) fn bucket_of_arn(arn: &str) -> Option<&str> {
    let bucket = after_service(arn, "s3")?.strip_prefix("::")?;
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    ok.then_some(bucket)
}

/// `arn:aws[-a-z0-9]*:glue:[-a-z0-9]+:\d{12}:schema/[-a-zA-Z0-9_$#.]+/[-a-zA-Z0-9_$#.]+`.
fn is_gsr_schema_arn(arn: &str) -> bool {
    let part = |s: &str| all_of(s, |b| b.is_ascii_alphanumeric() || b"-_$#.".contains(&b));
    after_service(arn, "glue")
        .and_then(|r| after_region_account(r, false))
        .and_then(|r| r.strip_prefix("schema/"))
        .and_then(|r| r.split_once('/'))
        .is_some_and(|(registry, schema)| part(registry) && part(schema))
}

/// `arn:aws[-a-z0-9]*:s3tables:[-a-z0-9]+:\d{12}:bucket/[a-z0-9_-]{3,63}`.
/// The table bucket's name in a (checked) `TableBucketARN`.
pub(super) fn table_bucket_of_arn(arn: &str) -> Option<&str> {
    arn.rsplit_once(":bucket/").map(|(_, b)| b)
}

fn is_table_bucket_arn(arn: &str) -> bool {
    after_service(arn, "s3tables")
        .and_then(|r| after_region_account(r, false))
        .and_then(|r| r.strip_prefix("bucket/"))
        .is_some_and(|b| {
            (3..=63).contains(&b.len())
                && b.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-".contains(&c))
        })
}

/// Whether `arn` matches `arn:aws.*:kinesis:.*:\d{12}:KIND/\S+` (anchored, as AWS's patterns
/// are): some `:KIND/` with a non-blank rest, after 12 digits and a colon, after `:kinesis:`.
pub(super) fn kinesis_arn_of(arn: &str, kind: &str) -> bool {
    if !arn.starts_with("arn:aws") {
        return false;
    }
    let marker = format!(":{kind}/");
    arn.match_indices(&marker).any(|(i, _)| {
        let tail = &arn[i + marker.len()..];
        let head = &arn[..i];
        let Some(n) = head
            .len()
            .checked_sub(12)
            .filter(|&n| head.is_char_boundary(n))
        else {
            return false;
        };
        let (pre, account) = head.split_at(n);
        !tail.is_empty()
            && !tail.chars().any(char::is_whitespace)
            && is_account(account)
            && pre
                .strip_suffix(':')
                .and_then(|p| p.get(7..))
                .is_some_and(|mid| mid.contains(":kinesis:"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_patterns() {
        assert!(is_role_arn(
            "arn:aws:iam::123456789012:role/service-role/r_1"
        ));
        assert!(is_role_arn("arn:aws-cn:iam::123456789012:role/r"));
        assert!(!is_role_arn("arn:aws:iam:us-east-1:123456789012:role/r"));
        assert!(!is_role_arn("arn:aws:iam::12345:role/r"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/r"));
        assert_eq!(
            bucket_of_arn("arn:aws:s3:::my.bucket-1"),
            Some("my.bucket-1")
        );
        assert_eq!(bucket_of_arn("arn:aws:s3:::ab"), None);
        assert_eq!(bucket_of_arn("arn:aws:s3:::Upper"), None);
        assert_eq!(bucket_of_arn("arn:aws:s3:us-east-1::b"), None);
        for ok in [
            "arn:aws:kinesis:us-east-1:123456789012:channel/c/1",
            "arn:aws:kinesis::123456789012:channel/c",
            "arn:aws-cn:kinesis:x:y:123456789012:channel/c",
        ] {
            assert!(kinesis_arn_of(ok, "channel"), "{ok}");
        }
        for bad in [
            "arn:aws:kinesis:us-east-1:123456789012:stream/c",
            "arn:aws:kinesis:us-east-1:1234:channel/c",
            "arn:aws:kinesis:us-east-1:123456789012:channel/",
            "arn:aws:kinesis:us-east-1:123456789012:channel/a b",
            "arn:aws:s3:us-east-1:123456789012:channel/c",
            "channel/c",
        ] {
            assert!(!kinesis_arn_of(bad, "channel"), "{bad}");
        }
        assert!(is_gsr_schema_arn(
            "arn:aws:glue:us-east-1:123456789012:schema/reg/sch"
        ));
        assert!(!is_gsr_schema_arn(
            "arn:aws:glue::123456789012:schema/reg/sch"
        ));
        assert!(is_table_bucket_arn(
            "arn:aws:s3tables:us-east-1:123456789012:bucket/tb_1"
        ));
        assert!(!is_table_bucket_arn(
            "arn:aws:s3tables:us-east-1:123456789012:bucket/TB"
        ));
        assert!(is_key_template("a/!{timestamp:yyyy}/x=1:2"));
        assert!(!is_key_template("a b"));
        assert!(is_error_prefix("errors/(x)*'!"));
        assert!(!is_error_prefix("errors/{x}"));
    }
}
