//! `[[delivery]]` configuration, validated at load with messages that name the key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::prefix::Template;
use crate::query::PartitionQuery;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON record per line (records must be JSON).
    #[default]
    Ndjson,
    /// Records back to back, byte for byte, as Firehose writes them.
    Concat,
    /// Records byte for byte, each followed by a newline, as Firehose's
    /// `AppendDelimiterToRecord` writes them (records need not be JSON).
    Lines,
    /// Columnar; schema declared in `schema` or inferred per object.
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Zstd,
    /// Parquet only.
    Snappy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `YYYY/MM/DD/HH/` like Firehose.
    #[default]
    Firehose,
    /// `year=YYYY/month=MM/day=DD/hour=HH/` so query engines discover partitions.
    Hive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    String,
    Int64,
    Float64,
    Boolean,
}

/// One column of a declared Parquet schema (`schema = [{ name, type }]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
}

/// Firehose's RecordDeAggregation processor: how one record splits into several before
/// partitioning and encoding. In TOML: `split_records = "json"`,
/// `split_records = { delimited = "####" }` (the delimiter's text) or
/// `split_records = { delimited_base64 = "IyMjIw==" }` (its bytes in base64, as Firehose's
/// `Delimiter` parameter takes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SplitToml", into = "SplitToml")]
pub enum Split {
    /// JSON objects back to back (`{"a":1}{"a":2}`) or one per line: one record each.
    Json,
    /// The pieces between occurrences of these bytes (empty pieces are left out).
    Delimited(Vec<u8>),
}

/// [`Split`] as TOML writes it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum SplitToml {
    Json,
    Delimited(String),
    DelimitedBase64(String),
}

impl TryFrom<SplitToml> for Split {
    type Error = String;

    fn try_from(t: SplitToml) -> Result<Self, String> {
        use base64::Engine;
        Ok(match t {
            SplitToml::Json => Split::Json,
            SplitToml::Delimited(text) => Split::Delimited(text.into_bytes()),
            SplitToml::DelimitedBase64(b64) => Split::Delimited(
                base64::engine::general_purpose::STANDARD
                    .decode(&b64)
                    .map_err(|e| format!("delimited_base64 = {b64:?} is not base64: {e}"))?,
            ),
        })
    }
}

impl From<Split> for SplitToml {
    fn from(s: Split) -> Self {
        use base64::Engine;
        match s {
            Split::Json => SplitToml::Json,
            Split::Delimited(bytes) => match String::from_utf8(bytes) {
                Ok(text) => SplitToml::Delimited(text),
                Err(e) => SplitToml::DelimitedBase64(
                    base64::engine::general_purpose::STANDARD.encode(e.as_bytes()),
                ),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Names the delivery's checkpoints, objects and error prefix.
    pub name: String,
    /// Source stream.
    pub stream: String,
    /// Lake URL: a path (relative paths are under the data dir), `s3://bucket/prefix`.
    #[serde(default = "default_lake")]
    pub lake: String,
    /// Key prefix template; default `raw/<stream>/` plus the layout's time folders.
    pub prefix: Option<String>,
    /// Error prefix template; default `errors/<name>/!{firehose:error-output-type}/` + time.
    pub error_prefix: Option<String>,
    #[serde(default = "default_interval")]
    pub buffer_interval_secs: u64,
    #[serde(default = "default_size")]
    pub buffer_size_mib: u64,
    /// Largest record delivered, in KiB: Firehose's 1,000 by default; up to 10,240 for streams
    /// whose records are larger (UpdateMaxRecordSize). Larger records go to the error prefix.
    #[serde(default = "default_max_record_kib")]
    pub max_record_kib: u64,
    #[serde(default)]
    pub format: Format,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default)]
    pub layout: Layout,
    /// Dynamic partitioning: key name → field path in the JSON record (`.Contract`, `.a.b`).
    #[serde(default)]
    pub partitioning: BTreeMap<String, String>,
    /// Dynamic partitioning by a jq query, as Firehose's `MetadataExtractionQuery`: one
    /// object per record, e.g. `{customer_id: .customer.id, year: .ts | strftime("%Y")}`,
    /// whose values fill `!{partitionKeyFromQuery:NAME}`. Needs `prefix`; not with
    /// `partitioning`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_query: Option<String>,
    /// Declared Parquet schema; without it, columns are inferred per object.
    #[serde(default)]
    pub schema: Vec<SchemaColumn>,
    /// KPL de-aggregation (`deaggregate_kpl = true`): a record in the Kinesis Producer
    /// Library's aggregated format (magic, protobuf, MD5) is delivered as its user records,
    /// as Firehose does for a Kinesis source; any other record as it is.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deaggregate_kpl: bool,
    /// Firehose's RecordDeAggregation (`split_records`, see [`Split`]): after KPL
    /// de-aggregation, each record splits into its sub-records (at most 500); one that does
    /// not split goes to the error prefix under `processing-failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_records: Option<Split>,
    /// Firehose's Decompression processor (`decompress = "gzip"`): each record is inflated
    /// first (CloudWatch Logs sends gzip); one that is not gzip goes to the error prefix under
    /// `processing-failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decompress: Option<Decompress>,
    /// Firehose's CloudWatchLogProcessing with DataMessageExtraction
    /// (`extract_log_messages = true`): a CloudWatch Logs subscription payload becomes one
    /// record per log event's message, each followed by a newline; control messages are
    /// dropped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub extract_log_messages: bool,
    /// The data objects' file extension (Firehose's `FileExtension`, e.g. `.jsonl`) instead of
    /// the one the format and compression give; error objects keep theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_extension: Option<String>,
    /// The IANA time zone (`Europe/Paris`) the prefixes' `!{timestamp:…}` are rendered in
    /// (Firehose's `CustomTimeZone`); UTC by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// `s3://bucket/prefix`: deliveries of this name on several machines share a Kinesis
    /// stream's shards through leases kept there (`delivery-NAME/`), checkpoints included.
    /// Kafka topics need none: their consumer group shares the partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leases: Option<String>,
    /// Seconds after which a delivery that stopped renewing its leases (killed) loses its
    /// shards to the others (3 to 600; default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u64>,
}

/// How records are decompressed before anything else (Firehose's Decompression processor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decompress {
    Gzip,
}

/// Whether `e` is an extension Firehose's `FileExtension` accepts: a dot, then lowercase
/// letters, digits and `!-_.*'()`.
pub fn is_file_extension(e: &str) -> bool {
    e.len() >= 2
        && e.len() <= 128
        && e.starts_with('.')
        && e[1..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!-_.*'()".contains(&b))
}

fn default_lake() -> String {
    "lake".into()
}
fn default_interval() -> u64 {
    60
}
fn default_size() -> u64 {
    5
}
fn default_max_record_kib() -> u64 {
    1000
}

impl DeliveryConfig {
    /// A delivery with every default, for `stream`.
    pub fn new(name: &str, stream: &str) -> Self {
        Self {
            name: name.into(),
            stream: stream.into(),
            lake: default_lake(),
            prefix: None,
            error_prefix: None,
            buffer_interval_secs: default_interval(),
            buffer_size_mib: default_size(),
            max_record_kib: default_max_record_kib(),
            format: Format::default(),
            compression: Compression::default(),
            layout: Layout::default(),
            partitioning: BTreeMap::new(),
            partition_query: None,
            schema: Vec::new(),
            deaggregate_kpl: false,
            split_records: None,
            decompress: None,
            extract_log_messages: false,
            file_extension: None,
            time_zone: None,
            leases: None,
            lease_seconds: None,
        }
    }

    /// The key prefix template, filled in from the layout when not given.
    pub fn prefix_template(&self) -> String {
        if let Some(p) = &self.prefix {
            return p.clone();
        }
        let mut t = format!("raw/{}/", millrace_io::kafka::short_name(&self.stream));
        for key in self.partitioning.keys() {
            t.push_str(&match self.layout {
                Layout::Hive => format!("{key}=!{{partitionKeyFromQuery:{key}}}/"),
                Layout::Firehose => format!("!{{partitionKeyFromQuery:{key}}}/"),
            });
        }
        t.push_str(match self.layout {
            Layout::Firehose => "!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/",
            Layout::Hive => {
                "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
            }
        });
        t
    }

    pub fn error_prefix_template(&self) -> String {
        self.error_prefix.clone().unwrap_or_else(|| {
            format!(
                "errors/{}/!{{firehose:error-output-type}}/!{{timestamp:yyyy}}/!{{timestamp:MM}}/!{{timestamp:dd}}/!{{timestamp:HH}}/",
                self.name
            )
        })
    }

    /// Checks every key; errors name the key as `<path>.<key>`.
    pub fn validate(&self, path: &str) -> Result<(), String> {
        if let Err(e) = millrace_common::keys::check_name(&self.name) {
            return Err(format!("{path}.name = {e}"));
        }
        if let Err(e) = millrace_io::check_stream_name(&self.stream) {
            return Err(format!("{path}.stream = {e}"));
        }
        millrace_io::Leases::check_settings(path, self.leases.as_deref(), self.lease_seconds)?;
        if self.buffer_interval_secs > 900 {
            return Err(format!(
                "{path}.buffer_interval_secs = {}: must be between 0 and 900",
                self.buffer_interval_secs
            ));
        }
        if !(1..=128).contains(&self.buffer_size_mib) {
            return Err(format!(
                "{path}.buffer_size_mib = {}: must be between 1 and 128",
                self.buffer_size_mib
            ));
        }
        if !(1..=10_240).contains(&self.max_record_kib) {
            return Err(format!(
                "{path}.max_record_kib = {}: must be between 1 and 10240",
                self.max_record_kib
            ));
        }
        match (self.format, self.compression) {
            (Format::Parquet, Compression::Gzip) => {
                return Err(format!(
                    "{path}.compression = \"gzip\": Parquet takes none, snappy or zstd"
                ));
            }
            (Format::Ndjson | Format::Concat | Format::Lines, Compression::Snappy) => {
                return Err(format!(
                    "{path}.compression = \"snappy\": only for Parquet; use gzip or zstd"
                ));
            }
            _ => {}
        }
        if !self.schema.is_empty() && self.format != Format::Parquet {
            return Err(format!(
                "{path}.schema: only used with format = \"parquet\""
            ));
        }
        for (key, query) in &self.partitioning {
            if !query.starts_with('.') || query.len() < 2 {
                return Err(format!(
                    "{path}.partitioning.{key} = {query:?}: expected a field path like \".Contract\""
                ));
            }
        }
        let t =
            Template::parse(&self.prefix_template()).map_err(|e| format!("{path}.prefix: {e}"))?;
        if let Some(query) = &self.partition_query {
            if !self.partitioning.is_empty() {
                return Err(format!(
                    "{path}.partition_query and {path}.partitioning are mutually exclusive: \
                     give the keys either as one jq query or as field paths"
                ));
            }
            PartitionQuery::compile(query)
                .map_err(|e| format!("{path}.partition_query = {query:?}: {e}"))?;
            // The query's keys are known only when it runs: the prefix names the ones it
            // uses, and a record whose result lacks one goes to the error prefix.
            if self.prefix.is_none() || t.partition_keys().next().is_none() {
                return Err(format!(
                    "{path}.prefix: with {path}.partition_query, give a prefix that uses the \
                     query's keys as !{{partitionKeyFromQuery:NAME}}"
                ));
            }
        } else {
            for key in t.partition_keys() {
                if !self.partitioning.contains_key(key) {
                    return Err(format!(
                        "{path}.prefix uses !{{partitionKeyFromQuery:{key}}} but {path}.partitioning has no key {key:?}"
                    ));
                }
            }
        }
        Template::parse(&self.error_prefix_template())
            .map_err(|e| format!("{path}.error_prefix: {e}"))?;
        if let Some(e) = &self.file_extension
            && !is_file_extension(e)
        {
            return Err(format!(
                "{path}.file_extension = {e:?}: give a dot and then lowercase letters, digits \
                 or !-_.*'() (e.g. \".jsonl\"), at most 128 characters"
            ));
        }
        if let Some(z) = &self.time_zone {
            crate::prefix::time_zone(z).map_err(|e| format!("{path}.time_zone = {z:?}: {e}"))?;
        }
        if self.split_records == Some(Split::Delimited(Vec::new())) {
            return Err(format!(
                "{path}.split_records: the delimiter is empty; give the bytes that stand \
                 between records"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_query(query: &str, prefix: Option<&str>) -> DeliveryConfig {
        let mut c = DeliveryConfig::new("d", "s");
        c.partition_query = Some(query.into());
        c.prefix = prefix.map(Into::into);
        c
    }

    #[test]
    fn partition_query_is_checked_at_load() {
        let prefix = Some("raw/!{partitionKeyFromQuery:customer}/");
        with_query("{customer: .customer.id}", prefix)
            .validate("delivery[0]")
            .unwrap();
        let e = with_query("{customer: .customer.id", prefix)
            .validate("delivery[0]")
            .unwrap_err();
        assert!(
            e.starts_with(
                "delivery[0].partition_query = \"{customer: .customer.id\": jq parse error"
            ),
            "{e}"
        );
        let e = with_query("{customer: .a | nope(1)}", prefix)
            .validate("delivery[2]")
            .unwrap_err();
        assert!(
            e.starts_with("delivery[2].partition_query") && e.contains("nope/1"),
            "{e}"
        );
        let e = with_query("{customer: .a}", None)
            .validate("delivery[0]")
            .unwrap_err();
        assert!(e.starts_with("delivery[0].prefix:"), "{e}");
        let e = with_query("{customer: .a}", Some("raw/!{timestamp:yyyy}/"))
            .validate("delivery[0]")
            .unwrap_err();
        assert!(e.contains("partitionKeyFromQuery"), "{e}");
        let mut both = with_query("{customer: .a}", prefix);
        both.partitioning.insert("customer".into(), ".a".into());
        let e = both.validate("delivery[1]").unwrap_err();
        assert!(
            e.contains("delivery[1].partition_query and delivery[1].partitioning"),
            "{e}"
        );
    }

    fn read(extra: &str) -> Result<DeliveryConfig, String> {
        toml::from_str::<DeliveryConfig>(&format!("name = \"d\"\nstream = \"s\"\n{extra}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn kpl_and_record_splitting_read_from_toml() {
        let c = read("deaggregate_kpl = true\nsplit_records = \"json\"").unwrap();
        assert!(c.deaggregate_kpl);
        assert_eq!(c.split_records, Some(Split::Json));
        c.validate("delivery[0]").unwrap();
        let hashes = Some(Split::Delimited(b"####".to_vec()));
        let c = read("split_records = { delimited = \"####\" }").unwrap();
        assert_eq!(c.split_records, hashes);
        let c = read("split_records = { delimited_base64 = \"IyMjIw==\" }").unwrap();
        assert_eq!(c.split_records, hashes);
        let e = read("split_records = { delimited_base64 = \"#\" }").unwrap_err();
        assert!(e.contains("is not base64"), "{e}");
        assert!(read("split_records = \"xml\"").is_err());
        let e = read("split_records = { delimited = \"\" }")
            .unwrap()
            .validate("delivery[3]")
            .unwrap_err();
        assert!(e.starts_with("delivery[3].split_records:"), "{e}");
        let plain = read("").unwrap();
        assert!(!plain.deaggregate_kpl && plain.split_records.is_none());
        let mut binary = DeliveryConfig::new("d", "s");
        binary.split_records = Some(Split::Delimited(vec![0xFF, 0x00]));
        let v = serde_json::to_value(&binary).unwrap();
        assert_eq!(
            v["split_records"],
            serde_json::json!({"delimited_base64": "/wA="})
        );
        assert!(v.get("deaggregate_kpl").is_none(), "{v}");
    }

    #[test]
    fn partition_query_reads_from_toml_and_is_left_out_when_unset() {
        let c: DeliveryConfig = toml::from_str(
            r#"
name = "d"
stream = "s"
prefix = "raw/!{partitionKeyFromQuery:year}/"
partition_query = '{year: .ts | strftime("%Y")}'
"#,
        )
        .unwrap();
        assert_eq!(
            c.partition_query.as_deref(),
            Some(r#"{year: .ts | strftime("%Y")}"#)
        );
        c.validate("delivery[0]").unwrap();
        let plain = serde_json::to_value(DeliveryConfig::new("d", "s")).unwrap();
        assert!(plain.get("partition_query").is_none(), "{plain}");
    }
}
