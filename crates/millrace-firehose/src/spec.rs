//! What a delivery stream is, as stored in `state/firehose/ds-<name>.json` and described by
//! DescribeDeliveryStream.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Firehose's only destination id for single-destination streams.
pub const DESTINATION_ID: &str = "destinationId-000000000001";

/// `DeliveryStreamType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourceKind {
    DirectPut,
    KinesisStreamAsSource,
}

impl SourceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::DirectPut => "DirectPut",
            Self::KinesisStreamAsSource => "KinesisStreamAsSource",
        }
    }
}

/// `KinesisStreamSourceConfiguration`: a millrace stream, by ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisSource {
    pub stream_arn: String,
    pub stream: String,
    pub role_arn: String,
}

/// `CompressionFormat` (what the delivery engine writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    Uncompressed,
    Gzip,
}

impl Compression {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Uncompressed => "UNCOMPRESSED",
            Self::Gzip => "GZIP",
        }
    }
}

/// One processor of `ProcessingConfiguration`, kept as given (type and parameters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Processor {
    pub kind: String,
    pub parameters: Vec<(String, String)>,
}

impl Processor {
    /// The value of the parameter `name` (the first, when given twice).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `ExtendedS3DestinationConfiguration` (or the older `S3DestinationConfiguration`, stored the
/// same way with `extended: false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Destination {
    pub extended: bool,
    pub role_arn: String,
    pub bucket_arn: String,
    /// The bucket's name: `lake` or a `[buckets]` key of `millrace up`'s config.
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_prefix: Option<String>,
    pub size_mib: u32,
    pub interval_secs: u32,
    pub compression: Compression,
    /// `EncryptionConfiguration.KMSEncryptionConfig.AWSKMSKeyARN`, kept and echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// `CloudWatchLoggingOptions` (enabled, group, stream), kept and echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<(bool, String, String)>,
    #[serde(default)]
    pub processing_enabled: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processors: Vec<Processor>,
    #[serde(default)]
    pub dynamic_partitioning: bool,
    /// Retry duration of dynamic partitioning (kept and echoed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioning_retry_secs: Option<u32>,
    /// `DataFormatConversionConfiguration` enabled with a Parquet serializer: the delivery
    /// writes Parquet, columns inferred per object (there is no Glue catalog here).
    #[serde(default)]
    pub parquet: bool,
    /// `DataFormatConversionConfiguration` as given (echoed by Describe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_conversion: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_extension: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_time_zone: Option<String>,
    /// `S3BackupMode` Enabled: the source records, as they were put, are also delivered into
    /// `backup` (Firehose's source record backup). Once on, it stays on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backup_enabled: bool,
    /// `S3BackupConfiguration`: the backup's bucket, prefixes, buffering and compression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<Box<S3Destination>>,
}

impl S3Destination {
    /// The JQ query of the `MetadataExtraction` processor, when dynamic partitioning is on.
    pub fn metadata_query(&self) -> Option<&str> {
        self.processors
            .iter()
            .filter(|p| p.kind == "MetadataExtraction")
            .flat_map(|p| &p.parameters)
            .find(|(k, _)| k == "MetadataExtractionQuery")
            .map(|(_, v)| v.as_str())
    }

    /// The processors of type `kind` that run (none while processing is disabled).
    pub fn processors_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Processor> {
        self.processors
            .iter()
            .filter(move |p| self.processing_enabled && p.kind == kind)
    }

    /// Whether an `AppendDelimiterToRecord` processor is on (a newline after each record).
    pub fn appends_delimiter(&self) -> bool {
        self.processing_enabled
            && self
                .processors
                .iter()
                .any(|p| p.kind == "AppendDelimiterToRecord")
    }
}

/// Server-side encryption of the delivery stream (kept: millrace does not encrypt at rest yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// ENABLED or DISABLED.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_arn: Option<String>,
}

impl Default for Encryption {
    fn default() -> Self {
        Self {
            status: "DISABLED".into(),
            key_type: None,
            key_arn: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryStreamSpec {
    pub name: String,
    /// A random id: names the delivery's checkpoints (`state/firehose/<id>/`), so a stream
    /// created again under the same name starts afresh.
    pub id: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// `VersionId`: 1 at creation, raised by every UpdateDestination.
    pub version: u64,
    pub kind: SourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis: Option<KinesisSource>,
    /// `DirectPutSourceConfiguration.ThroughputHintInMBs`, kept and echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_hint_mb: Option<u32>,
    pub destination: S3Destination,
    #[serde(default)]
    pub encryption: Encryption,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl DeliveryStreamSpec {
    pub fn arn(&self, region: &str, account: &str) -> String {
        format!(
            "arn:aws:firehose:{region}:{account}:deliverystream/{}",
            self.name
        )
    }

    /// The stream a DirectPut delivery stream's records are kept in until delivered (in the
    /// Firehose store, not among the Kinesis streams): `ds-<id>`, so a stream created again
    /// under a deleted one's name never sees its records.
    pub fn buffer_stream(&self) -> String {
        buffer_stream_name(&self.id)
    }
}

/// The buffer stream of the delivery stream with id `id`.
pub fn buffer_stream_name(id: &str) -> String {
    format!("ds-{id}")
}
