//! The channel registry: what CreateChannel, UpdateChannel and DeleteChannel change and what
//! `millrace up` runs. A channel delivers one stream into a bucket through `millrace-delivery`
//! (run by the binary, which this crate does not depend on); here it is only its typed
//! [`ChannelSpec`] and its runtime status.
//!
//! On disk: one `state/channels/<name>.json` per channel, replaced through
//! `millrace_common::durable` (a channel exists iff its file does), read back at open. Every
//! change is published on a `watch` counter ([`Channels::subscribe`]) so the runner sees it at
//! once. The runner reports each channel's state per revision ([`Channels::report`]); a
//! channel's status is derived from the two:
//!
//! - CREATING: revision 0 and no runner has started it yet (without a runner it stays so);
//! - UPDATING: an UpdateChannel raised the revision and the runner has not restarted it yet;
//! - ACTIVE: the runner runs this revision's delivery;
//! - FAILED: the runner could not start it (an unmapped bucket, a lake that does not open) or
//!   its delivery is stalled; the reason says why.
//!
//! DeleteChannel removes the file at once (DELETING is never observed); the runner then
//! stops the delivery, which flushes what it buffered.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{ApiError, ErrorCode};

/// DataFreshnessInSeconds when a request gives none (the model's documented default).
pub const DEFAULT_FRESHNESS_SECS: u32 = 300;
/// The bucket every data dir has without a `[buckets]` entry: `DATA_DIR/lake/`.
pub const DATA_DIR_BUCKET: &str = "lake";

/// A channel as CreateChannel made it and UpdateChannel changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub name: String,
    /// A random UUID: it tells a channel from an earlier one of the same name (ARNs, state).
    pub id: String,
    pub created_ms: i64,
    /// 0 at creation, raised by every UpdateChannel: the runner restarts the delivery of a
    /// newer revision.
    pub revision: u64,
    /// `ServiceExecutionRoleARN`, kept and echoed (millrace assumes no role).
    pub role_arn: String,
    pub source: Source,
    pub destination: S3Destination,
    /// `EncryptionConfiguration.KeyId` (type KMS), kept and echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    pub logging: Logging,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// An S3 Tables destination (Apache Iceberg). Its dead-letter bucket and freshness are
    /// kept in `destination` (bucket = the dead-letter bucket), which then writes nothing else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<TablesDestination>,
}

/// The Iceberg table a channel appends to (`S3TablesConfiguration`, one per channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TablesDestination {
    /// The table bucket's name: a `[table_buckets]` key of `millrace up`'s config.
    pub table_bucket: String,
    pub table_bucket_arn: String,
    pub namespace: String,
    pub table: String,
    /// `S3TablesCompressionType`: NONE, ZSTD or SNAPPY (Parquet data files).
    pub compression: String,
    /// `TIME_HOUR` partition fields' source columns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hour_partitions: Vec<String>,
    /// `GSRSchemaARN`: a `[schemas]` key of `millrace up`'s config (there is no Glue).
    pub schema_arn: String,
}

/// The stream a channel reads (one per channel, as AWS supports today).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub stream: String,
    pub stream_created_ms: i64,
    pub record_format: RecordFormat,
}

/// `RecordFormatType` of an S3 destination (GSR_JSON is for S3 Tables only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecordFormat {
    /// Records are JSON: written one per line (NDJSON); a record that is not JSON goes to the
    /// error prefix.
    Json,
    /// Written byte for byte, back to back, as Firehose writes raw records.
    String,
    /// As `String`.
    ByteArray,
    /// JSON behind the Glue Schema Registry's 18-byte header (S3 Tables only).
    GsrJson,
}

impl RecordFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Json => "JSON",
            Self::String => "STRING",
            Self::ByteArray => "BYTE_ARRAY",
            Self::GsrJson => "GSR_JSON",
        }
    }
}

/// `S3CompressionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Gzip => "GZIP",
            Self::Zstd => "ZSTD",
        }
    }
}

/// The destination bucket and how objects are written into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Destination {
    /// The bucket name of `bucket_arn`: a `[buckets]` key of `millrace up`'s config, or
    /// [`DATA_DIR_BUCKET`].
    pub bucket: String,
    pub bucket_arn: String,
    pub expected_owner: String,
    /// `OutputKeyTemplate` as given (`None`: [`ChannelSpec::key_template`]'s default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_key_template: Option<String>,
    /// `StorageClass` as given, kept and echoed (a lake has one class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    pub compression: Compression,
    pub freshness_secs: u32,
    /// `DeadLetterQueueS3Configuration` as given (`None`: the destination bucket, prefix
    /// `errors/<channel>/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<DeadLetter>,
}

/// Where records that cannot be delivered go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    pub bucket_arn: String,
    pub expected_owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_output_prefix: Option<String>,
}

/// `LoggingConfiguration.CloudWatchLogs`, kept and echoed (millrace logs to its own output).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logging {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_stream: Option<String>,
}

impl ChannelSpec {
    /// `arn:aws:kinesis:REGION:ACCOUNT:channel/NAME/ID`.
    pub fn arn(&self, region: &str, account: &str) -> String {
        format!(
            "arn:aws:kinesis:{region}:{account}:channel/{}/{}",
            self.name, self.id
        )
    }

    /// The delivery's key prefix (Firehose expressions): `OutputKeyTemplate`, or
    /// `<channel>/YYYY/MM/DD/HH/` of each record's arrival. Object names
    /// (`<channel>-<shard>-<first>-<last><ext>`) follow it.
    pub fn key_template(&self) -> String {
        self.destination
            .output_key_template
            .clone()
            .unwrap_or_else(|| format!("{}/{TIME_FOLDERS}", self.name))
    }

    /// The dead-letter configuration in effect: as given, or the destination bucket with the
    /// prefix `errors/<channel>/`.
    /// The bucket error records go to: the dead-letter configuration's, else the destination.
    pub fn dead_letter_bucket(&self) -> &str {
        self.destination
            .dead_letter
            .as_ref()
            .and_then(|d| d.bucket_arn.rsplit_once(":::"))
            .map_or(self.destination.bucket.as_str(), |(_, b)| b)
    }

    pub fn dead_letter(&self) -> DeadLetter {
        let d = &self.destination;
        d.dead_letter.clone().unwrap_or_else(|| DeadLetter {
            bucket_arn: d.bucket_arn.clone(),
            expected_owner: d.expected_owner.clone(),
            error_output_prefix: Some(format!("errors/{}/", self.name)),
        })
    }

    /// The delivery's error prefix: the dead-letter prefix (a literal: the model allows no
    /// expressions in it) followed, as Firehose does, by the error type and the arrival hour.
    pub fn error_template(&self) -> String {
        let prefix = self
            .dead_letter()
            .error_output_prefix
            .unwrap_or_else(|| format!("errors/{}/", self.name));
        format!("{prefix}!{{firehose:error-output-type}}/{TIME_FOLDERS}")
    }
}

const TIME_FOLDERS: &str = "!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/";

/// Why an `OutputKeyTemplate` cannot be a delivery prefix, if it cannot. The delivery engine
/// renders `!{timestamp:FORMAT}` (FORMAT of `yMdHms` and `-_/.`); any other `{…}` (another
/// namespace, a bare `{name}`, an unclosed brace) is named, as is a key that would leave its
/// folder (`..`, `.`, an empty segment, a leading `/`).
pub fn key_template_problem(template: &str) -> Option<String> {
    let mut unknown = Vec::new();
    let mut literal = String::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        let start = if rest[..open].ends_with('!') && rest[open..].starts_with('{') {
            open - 1
        } else {
            open
        };
        literal.push_str(&rest[..start]);
        let Some(close) = rest[open..].find('}').map(|i| open + i) else {
            unknown.push(rest[start..].to_owned());
            rest = "";
            break;
        };
        let expr = &rest[start..=close];
        if !is_timestamp_expression(expr) {
            unknown.push(expr.to_owned());
        }
        literal.push('0'); // an expression renders to digits and separators
        rest = &rest[close + 1..];
    }
    literal.push_str(rest);
    if !unknown.is_empty() {
        return Some(format!(
            "OutputKeyTemplate has placeholders millrace cannot render: {}. Supported: \
             !{{timestamp:FORMAT}} with FORMAT of yyyy, MM, dd, HH, mm, ss and - _ / . (for \
             example !{{timestamp:yyyy-MM-dd}}).",
            unknown.join(", ")
        ));
    }
    let sample = format!("{literal}object");
    millrace_common::keys::key_problem(&sample)
        .map(|p| format!("OutputKeyTemplate '{template}' cannot name objects: {p}."))
}

fn is_timestamp_expression(expr: &str) -> bool {
    expr.strip_prefix("!{timestamp:")
        .and_then(|e| e.strip_suffix('}'))
        .is_some_and(|fmt| !fmt.is_empty() && fmt.chars().all(|c| "yMdHms-_/.".contains(c)))
}

/// A channel's state as its runner reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// The delivery of this revision runs.
    Active,
    /// It could not start, or it is stalled: the reason.
    Failed(String),
}

/// `ChannelStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelStatus {
    Creating,
    Active,
    Updating,
    Failed,
}

impl ChannelStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Creating => "CREATING",
            Self::Active => "ACTIVE",
            Self::Updating => "UPDATING",
            Self::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone)]
struct Reported {
    id: String,
    revision: u64,
    state: RunState,
}

/// Why a registry change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("Channel {name} under account {account} already exists.")]
    Exists { name: String, account: String },
    #[error("Channel {arn} under account {account} not found.")]
    NotFound { arn: String, account: String },
    #[error(
        "Stream {stream} under account {account} has {} channel(s): {}. Delete them first \
         (ListChannels with a StreamFilter finds them).",
        channels.len(), channels.join(", ")
    )]
    StreamInUse {
        stream: String,
        account: String,
        channels: Vec<String>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a channel: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl From<ChannelError> for ApiError {
    fn from(e: ChannelError) -> Self {
        let code = match &e {
            ChannelError::Exists { .. } | ChannelError::StreamInUse { .. } => {
                ErrorCode::ResourceInUse
            }
            ChannelError::NotFound { .. } => ErrorCode::ResourceNotFound,
            ChannelError::Io { .. } | ChannelError::Corrupt { .. } => {
                tracing::error!(error = %e, "channel registry failure");
                ErrorCode::InternalFailure
            }
        };
        ApiError::new(code, e.to_string())
    }
}

/// The channels of one data dir, their runtime states and the buckets they may name.
#[derive(Debug)]
pub struct Channels {
    dir: PathBuf,
    account: String,
    region: String,
    specs: Mutex<BTreeMap<String, ChannelSpec>>,
    reported: Mutex<BTreeMap<String, Reported>>,
    /// Buckets of `[buckets]` (set by `up`); [`DATA_DIR_BUCKET`] is always known.
    buckets: RwLock<BTreeSet<String>>,
    /// Table buckets of `[table_buckets]` and schema ARNs of `[schemas]` (set by `up`).
    tables: RwLock<(BTreeSet<String>, BTreeSet<String>)>,
    changes: watch::Sender<u64>,
}

impl Channels {
    /// Reads every `<name>.json` under `dir` (missing: no channels). ARNs and messages carry
    /// `account` and `region`.
    pub fn open(dir: &Path, account: &str, region: &str) -> Result<Self, ChannelError> {
        let mut specs = BTreeMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => Some(e),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(io(dir, source)),
        };
        for entry in entries.into_iter().flatten() {
            let path = entry.map_err(|e| io(dir, e))?.path();
            let Some(name) = spec_name(&path) else {
                continue; // checkpoint folders, staging files
            };
            let spec = read_spec(&path)?;
            if spec.name != name {
                return Err(ChannelError::Corrupt {
                    path,
                    source: serde::de::Error::custom(format!(
                        "holds channel {:?}, not {name:?}",
                        spec.name
                    )),
                });
            }
            specs.insert(spec.name.clone(), spec);
        }
        Ok(Self {
            dir: dir.to_owned(),
            account: account.to_owned(),
            region: region.to_owned(),
            specs: Mutex::new(specs),
            reported: Mutex::default(),
            buckets: RwLock::default(),
            tables: RwLock::default(),
            changes: watch::channel(0).0,
        })
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// A channel's ARN under this registry's account and region.
    pub fn arn(&self, spec: &ChannelSpec) -> String {
        spec.arn(&self.region, &self.account)
    }

    /// The buckets `up`'s `[buckets]` maps; [`DATA_DIR_BUCKET`] is known without an entry.
    pub fn set_buckets(&self, names: impl IntoIterator<Item = String>) {
        *self.buckets.write().unwrap_or_else(|p| p.into_inner()) = names.into_iter().collect();
    }

    pub fn bucket_known(&self, name: &str) -> bool {
        name == DATA_DIR_BUCKET
            || self
                .buckets
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(name)
    }

    /// The table buckets of `[table_buckets]` and the schema ARNs of `[schemas]`.
    pub fn set_tables(
        &self,
        table_buckets: impl IntoIterator<Item = String>,
        schemas: impl IntoIterator<Item = String>,
    ) {
        *self.tables.write().unwrap_or_else(|p| p.into_inner()) = (
            table_buckets.into_iter().collect(),
            schemas.into_iter().collect(),
        );
    }

    pub fn table_bucket_known(&self, name: &str) -> bool {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .contains(name)
    }

    pub fn schema_known(&self, arn: &str) -> bool {
        self.tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .contains(arn)
    }

    /// A counter raised by every change; the runner waits on it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Every channel, by name.
    pub fn list(&self) -> Vec<ChannelSpec> {
        self.specs().values().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Option<ChannelSpec> {
        self.specs().get(name).cloned()
    }

    /// Names of the channels that read `stream`.
    pub fn on_stream(&self, stream: &str) -> Vec<String> {
        self.specs()
            .values()
            .filter(|s| s.source.stream == stream)
            .map(|s| s.name.clone())
            .collect()
    }

    /// Adds `spec` (blocking file I/O). `source_ready` runs under the registry's lock, so a
    /// DeleteStream ([`Channels::unless_read`]) cannot slip between its check and the write.
    pub fn create(
        &self,
        spec: ChannelSpec,
        source_ready: impl FnOnce() -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let mut specs = self.specs();
        if specs.contains_key(&spec.name) {
            return Err(ChannelError::Exists {
                name: spec.name,
                account: self.account.clone(),
            }
            .into());
        }
        source_ready()?;
        self.write(&spec)?;
        specs.insert(spec.name.clone(), spec);
        drop(specs);
        self.changed();
        Ok(())
    }

    /// Changes the channel `name` with id `id` by `f` and raises its revision (blocking file
    /// I/O); returns it as stored.
    pub fn update(
        &self,
        name: &str,
        id: &str,
        f: impl FnOnce(&mut ChannelSpec) -> Result<(), ApiError>,
    ) -> Result<ChannelSpec, ApiError> {
        let mut specs = self.specs();
        let spec = specs
            .get_mut(name)
            .filter(|s| s.id == id)
            .ok_or_else(|| self.not_found(name, id))?;
        let mut next = spec.clone();
        f(&mut next)?;
        next.revision += 1;
        self.write(&next)?;
        *spec = next.clone();
        drop(specs);
        self.changed();
        Ok(next)
    }

    /// Replaces the tags of channel `name` with id `id` (blocking file I/O). Tags do not
    /// change the delivery, so the revision stays.
    pub fn set_tags(
        &self,
        name: &str,
        id: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let mut specs = self.specs();
        let spec = specs
            .get_mut(name)
            .filter(|s| s.id == id)
            .ok_or_else(|| self.not_found(name, id))?;
        let mut next = spec.clone();
        next.tags = tags;
        self.write(&next)?;
        *spec = next;
        Ok(())
    }

    /// Removes the channel `name` with id `id` (blocking file I/O).
    pub fn delete(&self, name: &str, id: &str) -> Result<(), ApiError> {
        let mut specs = self.specs();
        if specs.get(name).is_none_or(|s| s.id != id) {
            return Err(self.not_found(name, id));
        }
        let path = self.path(name);
        std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        millrace_common::durable::sync_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
        specs.remove(name);
        drop(specs);
        self.reported().remove(name);
        self.changed();
        Ok(())
    }

    /// Runs `f` (DeleteStream's deletion) only if no channel reads `stream`, under the
    /// registry's lock so no channel of it can be created meanwhile.
    pub fn unless_read<T>(
        &self,
        stream: &str,
        f: impl FnOnce() -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let specs = self.specs();
        let channels: Vec<String> = specs
            .values()
            .filter(|s| s.source.stream == stream)
            .map(|s| s.name.clone())
            .collect();
        if !channels.is_empty() {
            return Err(ChannelError::StreamInUse {
                stream: stream.to_owned(),
                account: self.account.clone(),
                channels,
            }
            .into());
        }
        f()
    }

    /// The runner's word on revision `revision` of channel `name` (id `id`).
    pub fn report(&self, name: &str, id: &str, revision: u64, state: RunState) {
        self.reported().insert(
            name.to_owned(),
            Reported {
                id: id.to_owned(),
                revision,
                state,
            },
        );
    }

    /// The status of `spec` and, when FAILED, the reason.
    pub fn status(&self, spec: &ChannelSpec) -> (ChannelStatus, Option<String>) {
        let reported = self.reported();
        match reported
            .get(&spec.name)
            .filter(|r| r.id == spec.id && r.revision == spec.revision)
        {
            Some(Reported {
                state: RunState::Active,
                ..
            }) => (ChannelStatus::Active, None),
            Some(Reported {
                state: RunState::Failed(reason),
                ..
            }) => (ChannelStatus::Failed, Some(reason.clone())),
            None if spec.revision == 0 => (ChannelStatus::Creating, None),
            None => (ChannelStatus::Updating, None),
        }
    }

    fn not_found(&self, name: &str, id: &str) -> ApiError {
        let arn = format!(
            "arn:aws:kinesis:{}:{}:channel/{name}/{id}",
            self.region, self.account
        );
        ChannelError::NotFound {
            arn,
            account: self.account.clone(),
        }
        .into()
    }

    fn write(&self, spec: &ChannelSpec) -> Result<(), ChannelError> {
        let path = self.path(&spec.name);
        let bytes = serde_json::to_vec_pretty(spec).expect("a spec serialises");
        millrace_common::durable::write_file(&path, &bytes).map_err(|e| io(&path, e))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    fn specs(&self) -> MutexGuard<'_, BTreeMap<String, ChannelSpec>> {
        self.specs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reported(&self) -> MutexGuard<'_, BTreeMap<String, Reported>> {
        self.reported.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn io(path: &Path, source: std::io::Error) -> ChannelError {
    ChannelError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The channel name of a spec file (`<name>.json`, the name not starting with `.`).
fn spec_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let name = file.strip_suffix(".json")?;
    (!name.is_empty() && !name.starts_with('.') && path.is_file()).then(|| name.to_owned())
}

fn read_spec(path: &Path) -> Result<ChannelSpec, ChannelError> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| ChannelError::Corrupt {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, stream: &str) -> ChannelSpec {
        ChannelSpec {
            name: name.into(),
            id: millrace_common::ids::uuid_v4(),
            created_ms: 1,
            revision: 0,
            role_arn: "arn:aws:iam::000000000000:role/r".into(),
            source: Source {
                stream: stream.into(),
                stream_created_ms: 1,
                record_format: RecordFormat::Json,
            },
            destination: S3Destination {
                bucket: "lake".into(),
                bucket_arn: "arn:aws:s3:::lake".into(),
                expected_owner: "000000000000".into(),
                output_key_template: None,
                storage_class: None,
                compression: Compression::Gzip,
                freshness_secs: 60,
                dead_letter: None,
            },
            kms_key_id: None,
            logging: Logging::default(),
            tags: BTreeMap::new(),
            tables: None,
        }
    }

    #[test]
    fn changes_persist_and_statuses_follow_revisions() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Channels::open(dir.path(), "000000000000", "us-east-1").unwrap();
        let mut seen = reg.subscribe();
        let c = spec("c1", "s");
        reg.create(c.clone(), || Ok(())).unwrap();
        assert!(seen.has_changed().unwrap());
        seen.mark_unchanged();
        let dup = reg.create(spec("c1", "s"), || Ok(())).unwrap_err();
        assert_eq!(dup.code, ErrorCode::ResourceInUse);
        assert_eq!(reg.status(&c).0, ChannelStatus::Creating);
        reg.report("c1", &c.id, 0, RunState::Active);
        assert_eq!(reg.status(&c).0, ChannelStatus::Active);
        let c2 = reg
            .update("c1", &c.id, |s| {
                s.destination.freshness_secs = 5;
                Ok(())
            })
            .unwrap();
        assert!(seen.has_changed().unwrap());
        assert_eq!(
            (c2.revision, reg.status(&c2).0),
            (1, ChannelStatus::Updating)
        );
        reg.report("c1", &c.id, 1, RunState::Failed("no bucket".into()));
        assert_eq!(
            reg.status(&c2),
            (ChannelStatus::Failed, Some("no bucket".into()))
        );
        let in_use = reg.unless_read("s", || Ok(())).unwrap_err();
        assert_eq!(in_use.code, ErrorCode::ResourceInUse);
        assert!(in_use.message.contains("c1"), "{}", in_use.message);

        let again = Channels::open(dir.path(), "000000000000", "us-east-1").unwrap();
        assert_eq!(again.get("c1"), Some(c2.clone()));
        assert_eq!(
            again.update("c1", "other-id", |_| Ok(())).unwrap_err().code,
            ErrorCode::ResourceNotFound
        );
        again.delete("c1", &c.id).unwrap();
        assert!(again.unless_read("s", || Ok(())).is_ok());
        let empty = Channels::open(dir.path(), "000000000000", "us-east-1").unwrap();
        assert!(empty.list().is_empty());
    }

    #[test]
    fn templates_name_what_cannot_render() {
        assert_eq!(key_template_problem("raw/!{timestamp:yyyy-MM-dd}/x="), None);
        assert_eq!(key_template_problem("data/"), None);
        let p =
            key_template_problem("a/{name}/!{partitionKeyFromQuery:k}/!{timestamp:yyyy}").unwrap();
        assert!(
            p.contains("{name}") && p.contains("!{partitionKeyFromQuery:k}"),
            "{p}"
        );
        assert!(!p.contains("timestamp:yyyy}"), "{p}");
        assert!(key_template_problem("a/!{timestamp:yyyy").is_some());
        assert!(key_template_problem("a}").is_some());
        assert!(key_template_problem("../x/").is_some());
        assert!(key_template_problem("/x/").is_some());
        assert!(key_template_problem("a//b").is_some());
        let c = spec("c", "s");
        assert_eq!(
            c.key_template(),
            "c/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"
        );
        assert!(
            c.error_template()
                .starts_with("errors/c/!{firehose:error-output-type}/")
        );
        assert_eq!(
            c.dead_letter().error_output_prefix.as_deref(),
            Some("errors/c/")
        );
    }
}
