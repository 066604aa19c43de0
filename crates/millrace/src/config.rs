//! `millrace.toml`: one serde struct per component, unknown keys rejected, and validation that
//! names the offending key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use millrace_common::layout::DataDir;
use millrace_http::ServerLimits;
use millrace_stream::{FsyncPolicy, StoreOptions};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    /// Streams created at start if they do not exist.
    #[serde(default, rename = "stream")]
    pub streams: Vec<StreamConfig>,
    #[serde(default)]
    pub lake: LakeConfig,
    /// Where models, versions and promotions live (`--registry` otherwise).
    #[serde(default)]
    pub registry: RegistryConfig,
    /// Buckets that channels (CreateChannel's BucketARN `arn:aws:s3:::NAME`) deliver into:
    /// `NAME = "folder, file://… or s3://bucket/prefix"`. Without an entry, bucket `lake` is
    /// the data dir's own lake.
    #[serde(default)]
    pub buckets: std::collections::BTreeMap<String, String>,
    /// Table buckets that channels write Iceberg tables into (S3TablesDestinationConfiguration's
    /// TableBucketARN `arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME`): `NAME = "folder"`
    /// (relative: under the data dir).
    #[serde(default)]
    pub table_buckets: std::collections::BTreeMap<String, PathBuf>,
    /// The JSON Schema file of each GSRSchemaARN a table channel names (there is no Glue
    /// Schema Registry): `"arn:aws:glue:…:schema/REGISTRY/NAME" = "file.json"` (relative to
    /// the config file).
    #[serde(default)]
    pub schemas: std::collections::BTreeMap<String, PathBuf>,
    /// Stream-to-lake deliveries run inside `up`.
    #[serde(default, rename = "delivery")]
    pub deliveries: Vec<millrace_delivery::DeliveryConfig>,
    /// Streaming inference run inside `up`: stream → model → output stream.
    #[serde(default, rename = "scoring")]
    pub scorings: Vec<millrace_serve::score::ScoringConfig>,
    /// Prep jobs run when new objects land under their inputs.
    #[serde(default, rename = "prep")]
    pub preps: Vec<crate::pipeline::PrepTrigger>,
    /// Models retrained when their dataset grows, promoted through the gate.
    #[serde(default, rename = "train")]
    pub trains: Vec<crate::pipeline::TrainTrigger>,
    /// The real-time endpoint.
    #[serde(default)]
    pub endpoint: Option<crate::pipeline::EndpointSection>,
    /// Who may call the APIs: SigV4 signatures and IAM policies.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Encryption at rest: where the keys are.
    #[serde(default)]
    pub encryption: EncryptionConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
}

/// `[encryption]`: `keyring = "PATH"` (relative to the config file), the keys that
/// StartStreamEncryption's KeyId names. Default: DATA_DIR/state/keyring.toml; keep it on another
/// disk than the data where a copied data disk or backup is the threat.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    pub keyring: Option<PathBuf>,
}

/// `[console]`: the web console `millrace up` serves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Where it listens. Left at the default and taken by another process, `up` says so and
    /// runs without the console; an address set here must be free.
    #[serde(default = "default_console_addr")]
    pub addr: SocketAddr,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: default_console_addr(),
        }
    }
}

fn default_true() -> bool {
    true
}

pub fn default_console_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4590))
}

/// `[auth]`: `mode = "off" | "log" | "enforce"` and the identities file (relative to the
/// config file) that `millrace identity add` writes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub mode: millrace_auth::Mode,
    pub identities: Option<PathBuf>,
}

/// `[registry]`: `location = "s3://bucket/prefix"` (or a folder) shares models, versions,
/// stages and the promotion log with other machines; reached with `[lake]`'s S3 settings.
/// Default: DATA_DIR/lake/models.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub location: Option<String>,
}

/// How to reach an S3 lake (credentials come from the AWS environment).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    pub s3_endpoint_url: Option<String>,
    #[serde(default)]
    pub s3_path_style: bool,
}

impl LakeConfig {
    /// The lake's S3 options, under the same path-style rule as `--s3-endpoint-url`.
    pub fn s3_options(&self) -> millrace_lake::S3Options {
        crate::cli::s3_options(self.s3_endpoint_url.clone(), self.s3_path_style)
    }
}

/// A `[[delivery]]`'s `lake` as a URL: a URL or an absolute path as written, a relative path
/// under the data dir.
pub fn lake_url(data_dir: &DataDir, lake: &str) -> String {
    if lake.contains("://") || Path::new(lake).is_absolute() {
        lake.to_owned()
    } else {
        data_dir.root().join(lake).display().to_string()
    }
}

/// The addresses of `up`'s servers and the limits all three keep (`millrace_http`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_kinesis_addr")]
    pub kinesis_addr: SocketAddr,
    /// Prometheus `/metrics` and JSON `/status`.
    #[serde(default = "default_admin_addr")]
    pub admin_addr: SocketAddr,
    /// Seconds a client has to send a request's headers, from connect and after each response
    /// (so an idle keep-alive connection is closed after it too).
    #[serde(default = "default_header_timeout_secs")]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body; a slower one gets 408 and is closed.
    #[serde(default = "default_body_timeout_secs")]
    pub body_timeout_secs: u64,
    /// Open connections per server; at the cap a new one closes the one idle the longest.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// MiB of request bodies each server holds at once; past it a request waits, then gets 503.
    #[serde(default = "default_max_inflight_mb")]
    pub max_inflight_mb: usize,
    /// Host names served besides localhost, 127.0.0.1 and [::1] (any port).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// HTTPS on every listener (the Kinesis/Firehose API, the endpoint, the admin API).
    #[serde(default)]
    pub tls: bool,
    /// PEM certificate chain and private key (relative to the config file). Without them,
    /// `tls = true` generates a self-signed certificate in DATA_DIR/state/tls/ on first start.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The AWS account id in every ARN and message (12 digits).
    #[serde(default = "default_account_id")]
    pub account_id: String,
    /// The region in every ARN.
    #[serde(default = "default_region")]
    pub region: String,
}

fn default_account_id() -> String {
    "000000000000".into()
}
fn default_region() -> String {
    "us-east-1".into()
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            kinesis_addr: default_kinesis_addr(),
            admin_addr: default_admin_addr(),
            header_timeout_secs: default_header_timeout_secs(),
            body_timeout_secs: default_body_timeout_secs(),
            max_connections: default_max_connections(),
            max_inflight_mb: default_max_inflight_mb(),
            allowed_hosts: Vec::new(),
            tls: false,
            tls_cert: None,
            tls_key: None,
            account_id: default_account_id(),
            region: default_region(),
        }
    }
}

impl ServerConfig {
    /// The limits of the Kinesis API, the endpoint and the admin API.
    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            body_timeout: Duration::from_secs(self.body_timeout_secs),
            max_connections: self.max_connections,
            allowed_hosts: self.allowed_hosts.clone(),
            ..ServerLimits::default()
        }
        .with_inflight_mib(self.max_inflight_mb)
    }
}

fn default_header_timeout_secs() -> u64 {
    millrace_http::DEFAULT_HEADER_TIMEOUT.as_secs()
}
fn default_body_timeout_secs() -> u64 {
    millrace_http::DEFAULT_BODY_TIMEOUT.as_secs()
}
fn default_max_connections() -> usize {
    millrace_http::DEFAULT_MAX_CONNECTIONS
}
fn default_max_inflight_mb() -> usize {
    millrace_http::DEFAULT_MAX_INFLIGHT_MIB
}

fn default_admin_addr() -> SocketAddr {
    "127.0.0.1:4580".parse().expect("valid address")
}

fn default_kinesis_addr() -> SocketAddr {
    "127.0.0.1:4567".parse().expect("valid address")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `always`, `group`, `group:<ms>` or `never`.
    #[serde(default = "default_fsync")]
    pub fsync: String,
    #[serde(default = "default_segment_mb")]
    pub segment_mb: u64,
    #[serde(default = "default_max_shards")]
    pub max_shards: u32,
    #[serde(default = "default_on_demand_shards")]
    pub on_demand_shards: u32,
    /// Enforce Kinesis's per-shard throughput limits (write 1 MiB/s and 1,000 records/s, read
    /// 2 MiB/s and 5 GetRecords/s), answering ProvisionedThroughputExceededException.
    #[serde(default)]
    pub enforce_limits: bool,
    /// Fault injection for clients testing retries: this fraction (0.0 to 1.0) of PutRecord
    /// and GetRecords calls and of PutRecords records fails with
    /// ProvisionedThroughputExceededException whatever the rate. 0.0 (the default) is off.
    #[serde(default)]
    pub fault_probability: f64,
    /// Seed of the fault draws, for a repeatable sequence (random when absent).
    #[serde(default)]
    pub fault_seed: Option<u64>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            fsync: default_fsync(),
            segment_mb: default_segment_mb(),
            max_shards: default_max_shards(),
            on_demand_shards: default_on_demand_shards(),
            enforce_limits: false,
            fault_probability: 0.0,
            fault_seed: None,
        }
    }
}

fn default_fsync() -> String {
    "always".into()
}
fn default_segment_mb() -> u64 {
    64
}
fn default_max_shards() -> u32 {
    512
}
fn default_on_demand_shards() -> u32 {
    4
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub name: String,
    /// Shard count of a provisioned stream; omit for on-demand.
    pub shards: Option<u32>,
    #[serde(default = "default_retention")]
    pub retention_hours: u32,
    /// Kinesis's per-shard throughput limits for this stream, overriding
    /// `storage.enforce_limits`; applied by `up` to the stream, new or existing.
    #[serde(default)]
    pub enforce_limits: Option<bool>,
}

fn default_retention() -> u32 {
    24
}

/// A `[buckets]` entry: an S3 bucket name (3-63 of `a-z 0-9 . _ -`, as a BucketARN holds) and
/// a lake location `Lake::open` takes (a folder, `file://` or `s3://bucket[/prefix]`).
fn check_bucket(name: &str, location: &str) -> anyhow::Result<()> {
    let name_ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !name_ok {
        bail!(
            "buckets.{name:?}: not a bucket name (3-63 characters of a-z, 0-9, '.', '_', '-', \
             as in arn:aws:s3:::NAME)"
        );
    }
    let location_ok = match location.split_once("://") {
        None => !location.trim().is_empty(),
        Some(("file", path)) => !path.is_empty(),
        Some(("s3", rest)) => !rest.split('/').next().unwrap_or_default().is_empty(),
        Some(_) => false,
    };
    if !location_ok {
        bail!(
            "buckets.{name} = {location:?}: expected a folder (relative to the data dir), \
             file:///path or s3://bucket[/prefix]"
        );
    }
    Ok(())
}

pub fn parse_fsync(value: &str, key: &str) -> anyhow::Result<FsyncPolicy> {
    FsyncPolicy::parse(value).with_context(|| {
        format!("{key} = {value:?}: expected \"always\", \"group\", \"group:<ms>\" or \"never\"")
    })
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut config =
            Self::parse(&text).with_context(|| format!("in config {}", path.display()))?;
        // Job and schema files are named relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        for (arn, file) in config.schemas.iter_mut() {
            if file.is_relative() {
                *file = base.join(&*file);
            }
            if !file.is_file() {
                bail!(
                    "in config {}: schemas.\"{arn}\" = {:?}: no such file",
                    path.display(),
                    file.display()
                );
            }
        }
        for file in [&mut config.server.tls_cert, &mut config.server.tls_key]
            .into_iter()
            .flatten()
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        if let Some(ring) = &mut config.encryption.keyring
            && ring.is_relative()
        {
            // May not exist yet: `millrace key add` or the first StartStreamEncryption makes it.
            *ring = base.join(&*ring);
        }
        if let Some(ids) = &mut config.auth.identities {
            if ids.is_relative() {
                *ids = base.join(&*ids);
            }
            if !ids.is_file() {
                bail!(
                    "in config {}: auth.identities = {:?}: no such file (create it with \
                     `millrace identity add NAME --identities {}`)",
                    path.display(),
                    ids.display(),
                    ids.display()
                );
            }
        }
        for (i, p) in config.preps.iter_mut().enumerate() {
            if p.job.is_relative() {
                p.job = base.join(&p.job);
            }
            if !p.job.is_file() {
                bail!(
                    "in config {}: prep[{i}].job = {:?}: no such file",
                    path.display(),
                    p.job.display()
                );
            }
        }
        Ok(config)
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.server
            .limits()
            .validate()
            .map_err(|e| anyhow::anyhow!(e.in_config("server")))?;
        parse_fsync(&self.storage.fsync, "storage.fsync")?;
        let s = &self.server;
        match (&s.tls_cert, &s.tls_key) {
            (Some(_), None) => bail!("server.tls_cert is set without server.tls_key"),
            (None, Some(_)) => bail!("server.tls_key is set without server.tls_cert"),
            (Some(_), Some(_)) if !s.tls => {
                bail!("server.tls_cert and tls_key are set but server.tls = false")
            }
            _ => {}
        }
        if self.auth.mode != millrace_auth::Mode::Off && self.auth.identities.is_none() {
            bail!(
                "auth.mode = {:?} needs auth.identities, the identities file (create one with \
                 `millrace identity add NAME --identities FILE`)",
                format!("{:?}", self.auth.mode).to_lowercase()
            );
        }
        if !(1..=4096).contains(&self.storage.segment_mb) {
            bail!(
                "storage.segment_mb = {}: must be between 1 and 4096",
                self.storage.segment_mb
            );
        }
        if self.storage.max_shards == 0 {
            bail!("storage.max_shards must be at least 1");
        }
        if self.storage.on_demand_shards == 0 {
            bail!("storage.on_demand_shards must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.storage.fault_probability) {
            bail!(
                "storage.fault_probability = {}: must be between 0.0 and 1.0",
                self.storage.fault_probability
            );
        }
        if self.server.account_id.len() != 12
            || !self.server.account_id.bytes().all(|b| b.is_ascii_digit())
        {
            bail!(
                "server.account_id = {:?}: must be 12 digits",
                self.server.account_id
            );
        }
        let region_ok = !self.server.region.is_empty()
            && self.server.region.len() <= 32
            && self
                .server
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            bail!(
                "server.region = {:?}: must be a region name like us-east-1 (a-z, 0-9, -)",
                self.server.region
            );
        }
        for (i, s) in self.streams.iter().enumerate() {
            millrace_gateway::request::validate_stream_name(&s.name)
                .map_err(|e| anyhow::anyhow!("stream[{i}].name = {:?}: {}", s.name, e.message))?;
            if s.shards == Some(0) {
                bail!("stream[{i}].shards must be at least 1");
            }
            if !(24..=8760).contains(&s.retention_hours) {
                bail!(
                    "stream[{i}].retention_hours = {}: must be between 24 and 8760",
                    s.retention_hours
                );
            }
        }
        for (name, location) in &self.buckets {
            check_bucket(name, location)?;
        }
        for (name, folder) in &self.table_buckets {
            let ok = (3..=63).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
            if !ok {
                bail!(
                    "table_buckets.{name:?}: not a table bucket name (3-63 characters of a-z, \
                     0-9, '_', '-', as in arn:aws:s3tables:REGION:ACCOUNT:bucket/NAME)"
                );
            }
            if folder.as_os_str().is_empty() || folder.to_string_lossy().contains("://") {
                bail!(
                    "table_buckets.{name} = {:?}: expected a folder (relative to the data dir); \
                     table buckets on S3 are not supported yet",
                    folder.display()
                );
            }
        }
        for arn in self.schemas.keys() {
            if !arn.starts_with("arn:aws") || !arn.contains(":glue:") || !arn.contains(":schema/") {
                bail!(
                    "schemas.\"{arn}\": expected a Glue schema ARN \
                     (arn:aws:glue:REGION:ACCOUNT:schema/REGISTRY/NAME)"
                );
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, d) in self.deliveries.iter().enumerate() {
            d.validate(&format!("delivery[{i}]"))
                .map_err(|e| anyhow::anyhow!(e))?;
            if !names.insert(d.name.as_str()) {
                bail!(
                    "delivery[{i}].name = {:?}: another delivery has this name",
                    d.name
                );
            }
        }
        for (i, p) in self.preps.iter().enumerate() {
            p.validate(&format!("prep[{i}]"))
                .map_err(|e| anyhow::anyhow!(e))?;
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, t) in self.trains.iter().enumerate() {
            t.validate(&format!("train[{i}]"))
                .map_err(|e| anyhow::anyhow!(e))?;
            if !names.insert(t.name.clone()) {
                bail!(
                    "train[{i}].name = {:?}: another [[train]] has this name",
                    t.name
                );
            }
        }
        if let Some(e) = &self.endpoint
            && e.models.is_empty()
        {
            bail!("endpoint.models must name at least one model");
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, sc) in self.scorings.iter().enumerate() {
            sc.validate(&format!("scoring[{i}]"))
                .map_err(|e| anyhow::anyhow!(e))?;
            if !names.insert(sc.name()) {
                bail!(
                    "scoring[{i}].name = {:?}: another scoring has this name",
                    sc.name()
                );
            }
        }
        Ok(())
    }

    pub fn store_options(&self, fsync_override: Option<&str>) -> anyhow::Result<StoreOptions> {
        let fsync = match fsync_override {
            Some(v) => parse_fsync(v, "--fsync")?,
            None => parse_fsync(&self.storage.fsync, "storage.fsync")?,
        };
        Ok(StoreOptions {
            fsync,
            segment_bytes: self.storage.segment_mb * 1024 * 1024,
            max_shards: self.storage.max_shards,
            on_demand_shards: self.storage.on_demand_shards,
            account_id: self.server.account_id.clone(),
            region: self.server.region.clone(),
            enforce_limits: self.storage.enforce_limits,
            fault_probability: self.storage.fault_probability,
            fault_seed: self.storage.fault_seed,
            keyring: self.encryption.keyring.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_streams() {
        let c = Config::parse(
            r#"
            [server]
            kinesis_addr = "127.0.0.1:9999"
            [[stream]]
            name = "churn"
            shards = 2
            "#,
        )
        .unwrap();
        assert_eq!(c.server.kinesis_addr.port(), 9999);
        assert_eq!(c.server.limits(), millrace_http::ServerLimits::default());
        assert_eq!(c.streams[0].retention_hours, 24);
        assert_eq!(c.store_options(None).unwrap().fsync, FsyncPolicy::Always);
        let o = c.store_options(None).unwrap();
        assert!(!o.enforce_limits);
        assert_eq!((o.fault_probability, o.fault_seed), (0.0, None));
        assert_eq!(c.streams[0].enforce_limits, None);
    }

    #[test]
    fn throughput_limits_and_faults() {
        let c = Config::parse(
            r#"
            [storage]
            enforce_limits = true
            fault_probability = 0.25
            fault_seed = 42
            [[stream]]
            name = "free"
            shards = 1
            enforce_limits = false
            "#,
        )
        .unwrap();
        let o = c.store_options(None).unwrap();
        assert!(o.enforce_limits);
        assert_eq!((o.fault_probability, o.fault_seed), (0.25, Some(42)));
        assert_eq!(c.streams[0].enforce_limits, Some(false));
        for bad in ["1.5", "-0.1", "nan"] {
            let e = Config::parse(&format!("[storage]\nfault_probability = {bad}\n")).unwrap_err();
            assert!(
                format!("{e:#}").contains("storage.fault_probability"),
                "{e:#}"
            );
        }
        let e = Config::parse("[storage]\nfault_probability = \"often\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("fault_probability"), "{e:#}");
        let e = Config::parse("[storage]\nfault_seed = -1\n").unwrap_err();
        assert!(format!("{e:#}").contains("fault_seed"), "{e:#}");
        let e = Config::parse("[[stream]]\nname = \"a\"\nenforce_limits = \"yes\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("enforce_limits"), "{e:#}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse(
            "[[scoring]]\nstream = \"churn\"\nmodel = \"churn\"\nto_stream = \"churn\"\n",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("scoring[0].to_stream"), "{e:#}");
        let e = Config::parse("[[scoring]]\nstream = \"churn\"\nmodel = \"churn\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("to_stream"), "{e:#}");
        let e = Config::parse("[storage]\nfsync = \"sometimes\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("storage.fsync"), "{e:#}");
        let e = Config::parse("[server]\nmax_connections = 0\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("server.max_connections = 0"),
            "{e:#}"
        );
        let e = Config::parse("[server]\nallowed_hosts = [\"evil example\"]\n").unwrap_err();
        assert!(format!("{e:#}").contains("server.allowed_hosts"), "{e:#}");
        let e = Config::parse("[server]\nheader_timeout_secs = 0\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("server.header_timeout_secs = 0"),
            "{e:#}"
        );
        let e = Config::parse("[server]\nkinesis_adr = \"x\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("kinesis_adr"), "{e:#}");
        let e = Config::parse("[[stream]]\nname = \"a/b\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("stream[0].name"), "{e:#}");
        let e =
            Config::parse("[[delivery]]\nname = \"d\"\nstream = \"s\"\nbuffer_size_mib = 500\n")
                .unwrap_err();
        assert!(
            format!("{e:#}").contains("delivery[0].buffer_size_mib"),
            "{e:#}"
        );
        let e = Config::parse("[[delivery]]\nname = \"d\"\nstream = \"s\"\nformat = \"xml\"\n")
            .unwrap_err();
        assert!(format!("{e:#}").contains("xml"), "{e:#}");
        // A Kafka topic is a stream name wherever one is taken; a broken one names the key.
        let c = Config::parse(
            "[[delivery]]\nname = \"d\"\nstream = \"kafka://127.0.0.1:9092/churn\"\n\n\
             [[scoring]]\nstream = \"kafka://b1:9092,b2:9092/churn\"\nmodel = \"m\"\n\
             to_stream = \"kafka://b1:9092/scored\"\n",
        )
        .unwrap();
        assert_eq!(
            c.deliveries[0].prefix_template(),
            "raw/churn/!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/"
        );
        assert_eq!(c.scorings[0].name(), "churn-to-scored");
        let e = Config::parse("[[delivery]]\nname = \"d\"\nstream = \"kafka://127.0.0.1/churn\"\n")
            .unwrap_err();
        assert!(format!("{e:#}").contains("delivery[0].stream"), "{e:#}");
        assert!(format!("{e:#}").contains("kafka://HOST:PORT"), "{e:#}");
        for bad in ["[buckets]\nAB = \"x\"\n", "[buckets]\nab = \"/x\"\n"] {
            let e = Config::parse(bad).unwrap_err();
            assert!(format!("{e:#}").contains("buckets."), "{e:#}");
        }
        for bad in ["\"memory://\"", "\"s3://\"", "\"\"", "\"http://h/b\"", "1"] {
            let e = Config::parse(&format!("[buckets]\nraw-data = {bad}\n")).unwrap_err();
            assert!(format!("{e:#}").contains("raw-data"), "{e:#}");
        }
        let c = Config::parse(
            "[buckets]\nraw-data = \"s3://b/p\"\narchive = \"file:///tmp/a\"\nlake = \"other\"\n",
        )
        .unwrap();
        assert_eq!(c.buckets["raw-data"], "s3://b/p");
        assert_eq!(c.buckets.len(), 3);
        for (bad, names) in [
            ("[table_buckets]\nAB = \"t\"\n", "table_buckets.\"AB\""),
            ("[table_buckets]\ntbl = \"s3://b/t\"\n", "table_buckets.tbl"),
            ("[table_buckets]\ntbl = \"\"\n", "table_buckets.tbl"),
            (
                "[schemas]\n\"arn:aws:s3:::b\" = \"s.json\"\n",
                "schemas.\"arn:aws:s3:::b\"",
            ),
        ] {
            let e = Config::parse(bad).unwrap_err();
            assert!(format!("{e:#}").contains(names), "{bad}: {e:#}");
        }
        let c = Config::parse(
            "[table_buckets]\nanalytics = \"tables\"\n[schemas]\n\
             \"arn:aws:glue:us-east-1:000000000000:schema/r/s\" = \"s.json\"\n",
        )
        .unwrap();
        assert_eq!(c.table_buckets["analytics"], PathBuf::from("tables"));
        assert_eq!(c.schemas.len(), 1);
        // Schema files are named relative to the config file, and must exist.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("up.toml");
        let arn = "arn:aws:glue:us-east-1:000000000000:schema/r/s";
        std::fs::write(&path, format!("[schemas]\n\"{arn}\" = \"s.json\"\n")).unwrap();
        let e = Config::load(&path).unwrap_err();
        assert!(format!("{e:#}").contains("no such file"), "{e:#}");
        std::fs::write(dir.path().join("s.json"), "{}").unwrap();
        assert_eq!(
            Config::load(&path).unwrap().schemas[arn],
            dir.path().join("s.json")
        );
        // The keyring is named relative to the config file too, and may not exist yet.
        std::fs::write(&path, "[encryption]\nkeyring = \"keys/ring.toml\"\n").unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(
            c.store_options(None).unwrap().keyring,
            Some(dir.path().join("keys/ring.toml"))
        );
        let e = Config::parse("[encryption]\nkeyrings = \"k\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("keyrings"), "{e:#}");
        let e = Config::parse("[[stream]]\nname = \"a\"\nretention_hours = 1\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("stream[0].retention_hours"),
            "{e:#}"
        );
    }
}

#[cfg(test)]
mod example {
    /// The shipped example config must load and validate.
    #[test]
    fn example_config_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/millrace.toml");
        let c = super::Config::load(std::path::Path::new(path)).unwrap();
        assert_eq!(c.deliveries.len(), 2);
        assert_eq!(c.deliveries[1].schema.len(), 6);
    }
}
