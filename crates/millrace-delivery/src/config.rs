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
        }
    }

    /// The key prefix template, filled in from the layout when not given.
    pub fn prefix_template(&self) -> String {
        if let Some(p) = &self.prefix {
            return p.clone();
        }
        let mut t = format!("raw/{}/", self.stream);
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
        let name_ok = |s: &str| millrace_common::keys::check_name(s).is_ok();
        if let Err(e) = millrace_common::keys::check_name(&self.name) {
            return Err(format!("{path}.name = {e}"));
        }
        if !name_ok(&self.stream) {
            return Err(format!(
                "{path}.stream = {:?}: not a valid stream name",
                self.stream
            ));
        }
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
            (Format::Ndjson | Format::Concat, Compression::Snappy) => {
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
