//! DescribeDeliveryStream's `DeliveryStreamDescription`.

use millrace_gateway::protocol::Out;

use crate::registry::{Registry, Status};
use crate::spec::{DESTINATION_ID, DeliveryStreamSpec, S3Destination, SourceKind};

pub fn description(registry: &Registry, spec: &DeliveryStreamSpec) -> Out {
    let status = registry.status(spec);
    let mut f = vec![
        ("DeliveryStreamName", Out::str(&spec.name)),
        ("DeliveryStreamARN", Out::str(registry.arn(spec))),
        ("DeliveryStreamStatus", Out::str(status.as_str())),
    ];
    if let Status::CreatingFailed(reason) = &status {
        f.push((
            "FailureDescription",
            Out::map([
                ("Type", Out::str("UNKNOWN_ERROR")),
                ("Details", Out::str(reason)),
            ]),
        ));
    }
    f.push(("DeliveryStreamEncryptionConfiguration", encryption(spec)));
    f.push(("DeliveryStreamType", Out::str(spec.kind.as_str())));
    f.push(("VersionId", Out::str(spec.version.to_string())));
    f.push(("CreateTimestamp", Out::Time(spec.created_ms)));
    if spec.updated_ms != spec.created_ms {
        f.push(("LastUpdateTimestamp", Out::Time(spec.updated_ms)));
    }
    f.push(("Source", source(spec)));
    f.push((
        "Destinations",
        Out::List(vec![Out::Map(vec![
            ("DestinationId", Out::str(DESTINATION_ID)),
            ("S3DestinationDescription", s3(&spec.destination)),
            (
                "ExtendedS3DestinationDescription",
                extended(&spec.destination),
            ),
        ])]),
    ));
    f.push(("HasMoreDestinations", Out::Bool(false)));
    Out::Map(f)
}

fn encryption(spec: &DeliveryStreamSpec) -> Out {
    let e = &spec.encryption;
    let mut f = vec![("Status", Out::str(&e.status))];
    if let Some(k) = &e.key_type {
        f.push(("KeyType", Out::str(k)));
    }
    if let Some(k) = &e.key_arn {
        f.push(("KeyARN", Out::str(k)));
    }
    Out::Map(f)
}

fn source(spec: &DeliveryStreamSpec) -> Out {
    match (&spec.kind, &spec.kinesis) {
        (SourceKind::KinesisStreamAsSource, Some(k)) => Out::map([(
            "KinesisStreamSourceDescription",
            Out::map([
                ("KinesisStreamARN", Out::str(&k.stream_arn)),
                ("RoleARN", Out::str(&k.role_arn)),
                ("DeliveryStartTimestamp", Out::Time(spec.created_ms)),
            ]),
        )]),
        _ => {
            let mut d = Vec::new();
            if let Some(t) = spec.throughput_hint_mb {
                d.push(("ThroughputHintInMBs", Out::Int(t.into())));
            }
            Out::map([("DirectPutSourceDescription", Out::Map(d))])
        }
    }
}

/// The members both descriptions share.
fn common(d: &S3Destination) -> Vec<(&'static str, Out)> {
    let mut f = vec![
        ("RoleARN", Out::str(&d.role_arn)),
        ("BucketARN", Out::str(&d.bucket_arn)),
    ];
    if let Some(p) = &d.prefix {
        f.push(("Prefix", Out::str(p)));
    }
    if let Some(p) = &d.error_prefix {
        f.push(("ErrorOutputPrefix", Out::str(p)));
    }
    f.push((
        "BufferingHints",
        Out::map([
            ("SizeInMBs", Out::Int(d.size_mib.into())),
            ("IntervalInSeconds", Out::Int(d.interval_secs.into())),
        ]),
    ));
    f.push(("CompressionFormat", Out::str(d.compression.as_str())));
    f.push((
        "EncryptionConfiguration",
        match &d.kms_key_arn {
            Some(k) => Out::map([(
                "KMSEncryptionConfig",
                Out::map([("AWSKMSKeyARN", Out::str(k))]),
            )]),
            None => Out::map([("NoEncryptionConfig", Out::str("NoEncryption"))]),
        },
    ));
    let (enabled, group, stream) = d.logging.clone().unwrap_or_default();
    let mut logging = vec![("Enabled", Out::Bool(enabled))];
    if !group.is_empty() {
        logging.push(("LogGroupName", Out::Str(group)));
    }
    if !stream.is_empty() {
        logging.push(("LogStreamName", Out::Str(stream)));
    }
    f.push(("CloudWatchLoggingOptions", Out::Map(logging)));
    f
}

fn s3(d: &S3Destination) -> Out {
    Out::Map(common(d))
}

fn extended(d: &S3Destination) -> Out {
    let mut f = common(d);
    let processors = d
        .processors
        .iter()
        .map(|p| {
            Out::map([
                ("Type", Out::str(&p.kind)),
                (
                    "Parameters",
                    Out::List(
                        p.parameters
                            .iter()
                            .map(|(k, v)| {
                                Out::map([
                                    ("ParameterName", Out::str(k)),
                                    ("ParameterValue", Out::str(v)),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ])
        })
        .collect();
    f.push((
        "ProcessingConfiguration",
        Out::map([
            ("Enabled", Out::Bool(d.processing_enabled)),
            ("Processors", Out::List(processors)),
        ]),
    ));
    let mode = if d.backup_enabled {
        "Enabled"
    } else {
        "Disabled"
    };
    f.push(("S3BackupMode", Out::str(mode)));
    if let Some(b) = &d.backup {
        f.push(("S3BackupDescription", s3(b)));
    }
    if let Some(v) = &d.format_conversion {
        f.push(("DataFormatConversionConfiguration", json_out(v)));
    }
    let mut partitioning = vec![("Enabled", Out::Bool(d.dynamic_partitioning))];
    if let Some(r) = d.partitioning_retry_secs {
        partitioning.push((
            "RetryOptions",
            Out::map([("DurationInSeconds", Out::Int(r.into()))]),
        ));
    }
    f.push(("DynamicPartitioningConfiguration", Out::Map(partitioning)));
    if let Some(z) = &d.custom_time_zone {
        f.push(("CustomTimeZone", Out::str(z)));
    }
    if let Some(e) = &d.file_extension {
        f.push(("FileExtension", Out::str(e)));
    }
    Out::Map(f)
}

/// A stored JSON value echoed as given (DataFormatConversionConfiguration).
fn json_out(v: &serde_json::Value) -> Out {
    match v {
        serde_json::Value::Null => Out::Null,
        serde_json::Value::Bool(b) => Out::Bool(*b),
        serde_json::Value::Number(n) => n.as_i64().map_or(Out::Null, Out::Int),
        serde_json::Value::String(s) => Out::str(s),
        serde_json::Value::Array(a) => Out::List(a.iter().map(json_out).collect()),
        serde_json::Value::Object(m) => Out::Map(
            m.iter()
                .filter_map(|(k, v)| known_key(k).map(|k| (k, json_out(v))))
                .collect(),
        ),
    }
}

/// `Out::Map` takes static keys: the member names of DataFormatConversionConfiguration (an
/// unknown member given by a client is not echoed).
fn known_key(k: &str) -> Option<&'static str> {
    const KEYS: &[&str] = &[
        "SchemaConfiguration",
        "InputFormatConfiguration",
        "OutputFormatConfiguration",
        "Enabled",
        "RoleARN",
        "CatalogId",
        "DatabaseName",
        "TableName",
        "Region",
        "VersionId",
        "Deserializer",
        "OpenXJsonSerDe",
        "HiveJsonSerDe",
        "ConvertDotsInJsonKeysToUnderscores",
        "CaseInsensitive",
        "ColumnToJsonKeyMappings",
        "TimestampFormats",
        "Serializer",
        "ParquetSerDe",
        "OrcSerDe",
        "BlockSizeBytes",
        "PageSizeBytes",
        "Compression",
        "EnableDictionaryCompression",
        "MaxPaddingBytes",
        "WriterVersion",
    ];
    KEYS.iter().copied().find(|x| *x == k)
}
