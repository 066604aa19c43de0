//! An S3 destination's meaning: what millrace can deliver (checked after the model, as
//! InvalidArgumentException naming what to change), and the delivery engine's configuration
//! that carries it out.

use base64::Engine;
use millrace_delivery::{
    Compression as DeliveryCompression, Decompress, DeliveryConfig, Format, PartitionQuery, Split,
};

use crate::error::FirehoseError;
use crate::input::{self, S3In};
use crate::registry::Registry;
use crate::spec::{Compression, DeliveryStreamSpec, S3Destination, SourceKind};

/// Firehose's time folders, appended to a prefix without expressions.
const TIME_FOLDERS: &str = "!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/";
/// The smallest buffer Firehose allows with dynamic partitioning, and its default then.
const PARTITIONING_MIN_MIB: u32 = 64;
const DEFAULT_SIZE_MIB: u32 = 5;
const DEFAULT_INTERVAL_SECS: u32 = 300;

fn invalid(message: impl Into<String>) -> FirehoseError {
    FirehoseError::Invalid(message.into())
}

/// The destination `d` describes (at creation), or `previous` changed by `d` (an update).
pub fn build(
    registry: &Registry,
    d: &S3In,
    extended: bool,
    previous: Option<&S3Destination>,
) -> Result<S3Destination, FirehoseError> {
    let mut out = match previous {
        Some(p) => p.clone(),
        None => S3Destination {
            extended,
            role_arn: String::new(),
            bucket_arn: String::new(),
            bucket: String::new(),
            prefix: None,
            error_prefix: None,
            size_mib: DEFAULT_SIZE_MIB,
            interval_secs: DEFAULT_INTERVAL_SECS,
            compression: Compression::Uncompressed,
            kms_key_arn: None,
            logging: None,
            processing_enabled: false,
            processors: Vec::new(),
            dynamic_partitioning: false,
            partitioning_retry_secs: None,
            parquet: false,
            format_conversion: None,
            file_extension: None,
            custom_time_zone: None,
            backup_enabled: false,
            backup: None,
        },
    };
    out.extended = out.extended || extended;
    if let Some(r) = &d.role_arn {
        out.role_arn = r.clone();
    }
    if let Some(arn) = &d.bucket_arn {
        let bucket = input::bucket_of_arn(arn).expect("checked against the model");
        if !registry.bucket_known(bucket) {
            return Err(invalid(format!(
                "Bucket {bucket} ({arn}) is not mapped: millrace delivers into the data dir's \
                 lake (arn:aws:s3:::lake) or a bucket that millrace up's config maps: add \
                 `{bucket} = \"<folder, file:// or s3://bucket/prefix>\"` to [buckets] \
                 (buckets.{bucket})."
            )));
        }
        out.bucket_arn = arn.clone();
        out.bucket = bucket.to_owned();
    }
    if out.bucket.is_empty() {
        return Err(invalid(
            "BucketARN is required: name the bucket the records are delivered into.",
        ));
    }
    if d.prefix.is_some() {
        out.prefix = d.prefix.clone().filter(|p| !p.is_empty());
    }
    if d.error_prefix.is_some() {
        out.error_prefix = d.error_prefix.clone().filter(|p| !p.is_empty());
    }
    if let Some(c) = &d.compression {
        out.compression = input::compression(Some(c)).map_err(invalid)?;
    }
    if d.kms_key_arn.is_some() {
        out.kms_key_arn = d.kms_key_arn.clone();
    }
    if d.logging.is_some() {
        out.logging = d.logging.clone();
    }
    if let Some((enabled, processors)) = &d.processing {
        out.processing_enabled = *enabled;
        out.processors = processors.clone();
    }
    if let Some((enabled, retry)) = d.dynamic_partitioning {
        if previous.is_some() && enabled != out.dynamic_partitioning {
            return Err(invalid(
                "Dynamic partitioning can only be enabled when the delivery stream is created; \
                 it cannot be turned on or off by UpdateDestination.",
            ));
        }
        out.dynamic_partitioning = enabled;
        out.partitioning_retry_secs = retry;
    }
    if let Some(v) = &d.format_conversion {
        out.parquet = parquet_conversion(v)?;
        out.format_conversion = Some(v.clone());
    }
    if let Some(e) = &d.file_extension {
        out.file_extension = Some(e.clone()).filter(|e| !e.is_empty());
    }
    if let Some(z) = &d.custom_time_zone {
        if !z.is_empty() {
            millrace_delivery::prefix::time_zone(z)
                .map_err(|e| invalid(format!("CustomTimeZone {z:?} is {e}.")))?;
        }
        out.custom_time_zone = Some(z.clone()).filter(|z| !z.is_empty());
    }
    if let Some(b) = &d.backup {
        let previous = out.backup.as_deref();
        out.backup = Some(Box::new(
            build(registry, b, false, previous)
                .map_err(|e| invalid(format!("S3BackupConfiguration: {e}")))?,
        ));
    }
    match d.s3_backup_mode.as_deref() {
        Some("Enabled") if out.backup.is_none() => {
            return Err(invalid(
                "S3BackupMode Enabled needs S3BackupConfiguration (S3BackupUpdate in \
                 UpdateDestination): the bucket the source records are backed up into.",
            ));
        }
        Some("Enabled") => out.backup_enabled = true,
        Some(_) if out.backup_enabled => {
            return Err(invalid(
                "Source record backup cannot be disabled once it is enabled (S3BackupMode \
                 Enabled cannot be updated to Disabled), as in Firehose.",
            ));
        }
        _ => {}
    }
    // Buffer size last: its floor depends on dynamic partitioning.
    let floor = if out.dynamic_partitioning {
        PARTITIONING_MIN_MIB
    } else {
        1
    };
    match d.size_mib {
        Some(s) if s < floor => {
            return Err(invalid(format!(
                "BufferingHints.SizeInMBs must be at least {floor} when dynamic partitioning is \
                 enabled (it is {s})."
            )));
        }
        Some(s) => out.size_mib = s,
        None if previous.is_none() => out.size_mib = floor.max(DEFAULT_SIZE_MIB),
        None => {}
    }
    if let Some(i) = d.interval_secs {
        out.interval_secs = i;
    }
    check(&out)?;
    Ok(out)
}

/// Whether a `DataFormatConversionConfiguration` converts to Parquet (it is off when
/// `Enabled` is false); ORC and a missing serializer are refused.
fn parquet_conversion(v: &serde_json::Value) -> Result<bool, FirehoseError> {
    if v.get("Enabled").and_then(|e| e.as_bool()) == Some(false) {
        return Ok(false);
    }
    let serializer = v
        .pointer("/OutputFormatConfiguration/Serializer")
        .and_then(|s| s.as_object());
    match serializer {
        Some(s) if s.contains_key("ParquetSerDe") => Ok(true),
        Some(s) if s.contains_key("OrcSerDe") => Err(invalid(
            "DataFormatConversionConfiguration: ORC output is not supported; use ParquetSerDe.",
        )),
        _ => Err(invalid(
            "DataFormatConversionConfiguration needs OutputFormatConfiguration.Serializer \
             .ParquetSerDe when it is enabled.",
        )),
    }
}

/// The rules between members that hold once everything is known.
fn check(d: &S3Destination) -> Result<(), FirehoseError> {
    if d.parquet && d.compression != Compression::Uncompressed {
        return Err(invalid(
            "CompressionFormat must be UNCOMPRESSED when data format conversion is enabled: \
             the Parquet files are compressed inside (ParquetSerDe.Compression).",
        ));
    }
    if d.processing_enabled {
        for p in &d.processors {
            match p.kind.as_str() {
                "Lambda" => {
                    return Err(invalid(
                        "Lambda processors are not supported: millrace runs no Lambda \
                         functions. Transform records before they are put, or with a SQL prep \
                         job after delivery (millrace prep).",
                    ));
                }
                "MetadataExtraction" | "AppendDelimiterToRecord" | "RecordDeAggregation" => {}
                "Decompression" => match p.parameter("CompressionFormat") {
                    Some("GZIP") | None => {}
                    Some(other) => {
                        return Err(invalid(format!(
                            "The Decompression processor's CompressionFormat {other} is not \
                             valid: use GZIP (what CloudWatch Logs sends)."
                        )));
                    }
                },
                "CloudWatchLogProcessing" => {
                    match p.parameter("DataMessageExtraction") {
                        Some("true" | "false") | None => {}
                        Some(other) => {
                            return Err(invalid(format!(
                                "The CloudWatchLogProcessing processor's DataMessageExtraction \
                                 {other} is not valid: use true or false."
                            )));
                        }
                    }
                    if d.processors_of("Decompression").next().is_none() {
                        return Err(invalid(
                            "The CloudWatchLogProcessing processor needs a Decompression \
                             processor (GZIP) before it: CloudWatch Logs sends its records \
                             compressed.",
                        ));
                    }
                }
                other => {
                    return Err(invalid(format!(
                        "The {other} processor is not supported: millrace runs \
                         MetadataExtraction, RecordDeAggregation, AppendDelimiterToRecord, \
                         Decompression and CloudWatchLogProcessing."
                    )));
                }
            }
        }
    }
    if record_split(d)?.is_some() && !d.dynamic_partitioning {
        return Err(invalid(
            "The RecordDeAggregation processor can only be present when dynamic partitioning \
             is enabled (DynamicPartitioningConfiguration.Enabled), as in Firehose.",
        ));
    }
    if let Some(e) = &d.error_prefix
        && e.contains("!{")
        && !e.contains("!{firehose:error-output-type}")
    {
        return Err(invalid(format!(
            "ErrorOutputPrefix {e:?} uses expressions, so it must include \
             !{{firehose:error-output-type}} (the folder of each error type)."
        )));
    }
    let query = d.processing_enabled.then(|| d.metadata_query()).flatten();
    if query.is_some() && !d.dynamic_partitioning {
        return Err(invalid(
            "The MetadataExtraction processor needs DynamicPartitioningConfiguration.Enabled.",
        ));
    }
    if d.dynamic_partitioning {
        let prefix = d.prefix.as_deref().unwrap_or_default();
        if !prefix.contains("!{partitionKeyFrom") {
            return Err(invalid(
                "When dynamic partitioning is enabled, the Prefix must use \
                 !{partitionKeyFromQuery:KEY} expressions.",
            ));
        }
        if d.error_prefix.is_none() {
            return Err(invalid(
                "When dynamic partitioning is enabled, an ErrorOutputPrefix is required.",
            ));
        }
        if prefix.contains("!{partitionKeyFromLambda:") {
            return Err(invalid(
                "!{partitionKeyFromLambda:…} needs a Lambda processor, which millrace does not \
                 run: extract the keys with a MetadataExtraction query \
                 (!{partitionKeyFromQuery:…}).",
            ));
        }
        let query = query.ok_or_else(|| {
            invalid(
                "Dynamic partitioning needs a MetadataExtraction processor with a \
                 MetadataExtractionQuery (JQ) that produces the prefix's keys.",
            )
        })?;
        PartitionQuery::compile(query)
            .map_err(|e| invalid(format!("MetadataExtractionQuery {query:?}: {e}")))?;
    }
    let config = delivery_config_of("check", "check", d)?;
    config
        .validate("destination")
        .map_err(|e| invalid(e.replace("destination.", "")))?;
    Ok(())
}

/// The delivery engine's configuration of `spec`, reading `stream` (a Kinesis stream's name
/// or a DirectPut buffer's). Records from a Kinesis stream are KPL-de-aggregated, as Firehose
/// always does for that source.
pub fn delivery_config(
    spec: &DeliveryStreamSpec,
    stream: &str,
) -> Result<DeliveryConfig, FirehoseError> {
    let mut c = delivery_config_of(&spec.name, stream, &spec.destination)?;
    c.deaggregate_kpl = spec.kind == SourceKind::KinesisStreamAsSource;
    Ok(c)
}

/// The source record backup's delivery (`S3BackupMode` Enabled): the records of `stream` as
/// they were put, back to back and unprocessed, into the backup's bucket; named
/// `<name>-backup`, so its objects and checkpoints never meet the main delivery's.
pub fn backup_config(
    spec: &DeliveryStreamSpec,
    stream: &str,
) -> Result<Option<(String, DeliveryConfig)>, FirehoseError> {
    let Some(b) = spec.destination.backup.as_deref() else {
        return Ok(None);
    };
    if !spec.destination.backup_enabled {
        return Ok(None);
    }
    let c = delivery_config_of(&format!("{}-backup", spec.name), stream, b)?;
    Ok(Some((b.bucket.clone(), c)))
}

/// The `RecordDeAggregation` processor's split (`SubRecordType` JSON, or DELIMITED by the
/// base64 `Delimiter`), when one runs.
fn record_split(d: &S3Destination) -> Result<Option<Split>, FirehoseError> {
    let mut found = d.processors_of("RecordDeAggregation");
    let Some(p) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(invalid(
            "Only one RecordDeAggregation processor can be given.",
        ));
    }
    if let Some((name, _)) = p
        .parameters
        .iter()
        .find(|(k, _)| k != "SubRecordType" && k != "Delimiter")
    {
        return Err(invalid(format!(
            "The RecordDeAggregation processor takes the parameters SubRecordType and \
             Delimiter, not {name}."
        )));
    }
    match p.parameter("SubRecordType") {
        Some("JSON") => Ok(Some(Split::Json)),
        Some("DELIMITED") => delimiter(p.parameter("Delimiter")).map(|d| Some(Split::Delimited(d))),
        Some(other) => Err(invalid(format!(
            "RecordDeAggregation SubRecordType {other} is not valid: use JSON or DELIMITED."
        ))),
        None => Err(invalid(
            "The RecordDeAggregation processor needs a SubRecordType parameter: JSON or \
             DELIMITED.",
        )),
    }
}

/// The bytes of a DELIMITED split's `Delimiter` (base64, as Firehose takes it).
fn delimiter(b64: Option<&str>) -> Result<Vec<u8>, FirehoseError> {
    const HOW: &str = "give the delimiter's bytes in base64, e.g. IyMjIw== for ####";
    let b64 = b64.ok_or_else(|| {
        invalid(format!(
            "RecordDeAggregation with SubRecordType DELIMITED needs a Delimiter parameter: {HOW}."
        ))
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| {
            invalid(format!(
                "The RecordDeAggregation Delimiter {b64:?} is not base64 ({e}): {HOW}."
            ))
        })?;
    if bytes.is_empty() {
        return Err(invalid(format!(
            "The RecordDeAggregation Delimiter is empty: {HOW}."
        )));
    }
    Ok(bytes)
}

fn delivery_config_of(
    name: &str,
    stream: &str,
    d: &S3Destination,
) -> Result<DeliveryConfig, FirehoseError> {
    let mut c = DeliveryConfig::new(name, stream);
    c.prefix = Some(prefix(d.prefix.as_deref(), d.dynamic_partitioning));
    c.file_extension = d.file_extension.clone();
    c.time_zone = d.custom_time_zone.clone();
    c.decompress = d
        .processors_of("Decompression")
        .next()
        .map(|_| Decompress::Gzip);
    c.extract_log_messages = d
        .processors_of("CloudWatchLogProcessing")
        .any(|p| p.parameter("DataMessageExtraction") == Some("true"));
    c.error_prefix = Some(error_prefix(d.error_prefix.as_deref()));
    c.buffer_interval_secs = d.interval_secs.into();
    c.buffer_size_mib = d.size_mib.into();
    c.format = if d.parquet {
        Format::Parquet
    } else if d.appends_delimiter() {
        Format::Lines
    } else {
        Format::Concat
    };
    c.compression = match (d.parquet, d.compression) {
        (true, _) => DeliveryCompression::Snappy,
        (false, Compression::Gzip) => DeliveryCompression::Gzip,
        (false, Compression::Uncompressed) => DeliveryCompression::None,
    };
    if d.dynamic_partitioning {
        c.partition_query = d.metadata_query().map(str::to_owned);
    }
    c.split_records = record_split(d)?;
    Ok(c)
}

/// Firehose's prefix rule: without a timestamp expression, the time folders follow the prefix
/// (not with dynamic partitioning, whose prefix is taken as it is).
fn prefix(p: Option<&str>, dynamic: bool) -> String {
    match p {
        None => TIME_FOLDERS.to_owned(),
        Some(p) if p.contains("!{timestamp:") || dynamic => p.to_owned(),
        Some(p) => format!("{p}{TIME_FOLDERS}"),
    }
}

/// Firehose's error prefix rule: the error type and time folders follow a prefix without
/// expressions (and are the whole prefix when none is given).
fn error_prefix(p: Option<&str>) -> String {
    let tail = format!("!{{firehose:error-output-type}}/{TIME_FOLDERS}");
    match p {
        None => tail,
        Some(p) if p.contains("!{") => p.to_owned(),
        Some(p) => format!("{p}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_firehose_rules() {
        assert_eq!(prefix(None, false), TIME_FOLDERS);
        assert_eq!(prefix(Some("raw/"), false), format!("raw/{TIME_FOLDERS}"));
        assert_eq!(
            prefix(Some("raw/!{timestamp:yyyy}/"), false),
            "raw/!{timestamp:yyyy}/"
        );
        assert_eq!(
            prefix(Some("raw/!{firehose:random-string}/"), false),
            format!("raw/!{{firehose:random-string}}/{TIME_FOLDERS}")
        );
        assert_eq!(
            prefix(Some("p/!{partitionKeyFromQuery:k}/"), true),
            "p/!{partitionKeyFromQuery:k}/"
        );
        assert_eq!(
            error_prefix(Some("bad/")),
            format!("bad/!{{firehose:error-output-type}}/{TIME_FOLDERS}")
        );
    }
}
