use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When a shard writer makes appended records durable before acknowledging them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// fdatasync before every acknowledgement. Requests that queue up while a sync is in flight
    /// share the next one (group commit), so this stays fast under load. The default.
    #[default]
    Always,
    /// Gather requests for up to the interval, then write and fdatasync once, then acknowledge.
    /// Trades latency for fewer syncs on slow disks. Still durable before acknowledgement.
    Group { interval_ms: u64 },
    /// Acknowledge after `write(2)`; the OS flushes later. Survives a process crash, not a
    /// power loss.
    Never,
}

impl FsyncPolicy {
    /// Parses the CLI/TOML spelling: `always`, `never`, `group` (5 ms) or `group:<ms>`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "always" => Some(Self::Always),
            "never" => Some(Self::Never),
            "group" => Some(Self::Group { interval_ms: 5 }),
            _ => s
                .strip_prefix("group:")
                .and_then(|ms| ms.parse().ok())
                .map(|interval_ms| Self::Group { interval_ms }),
        }
    }

    pub(crate) fn gather_window(&self) -> Option<Duration> {
        match self {
            Self::Group { interval_ms } => Some(Duration::from_millis(*interval_ms)),
            _ => None,
        }
    }
}

/// Tunables of the embedded store. Defaults are what `millrace up` uses.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub fsync: FsyncPolicy,
    /// A segment is closed and a new one started once it reaches this size.
    pub segment_bytes: u64,
    /// Most shards across all streams (Kinesis has a per-account shard quota).
    pub max_shards: u32,
    /// Shards of an ON_DEMAND stream.
    pub on_demand_shards: u32,
    /// The account and region named in ARNs and messages.
    pub account_id: String,
    pub region: String,
    /// Enforce Kinesis's per-shard throughput limits on every stream (a stream's own setting
    /// overrides this).
    pub enforce_limits: bool,
    /// Fault injection for clients testing retries: this fraction (0.0 to 1.0) of PutRecord
    /// and GetRecords calls and of PutRecords records is answered
    /// ProvisionedThroughputExceededException whatever the rate. 0.0, the default, is off.
    pub fault_probability: f64,
    /// Seed of the fault draws, for a repeatable sequence; `None` seeds from the OS.
    pub fault_seed: Option<u64>,
    /// The keyring encrypted streams take their keys from; `None` is `state/keyring.toml`
    /// under the store's root.
    pub keyring: Option<std::path::PathBuf>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::Always,
            segment_bytes: 64 * 1024 * 1024,
            max_shards: 512,
            on_demand_shards: 4,
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
            enforce_limits: false,
            fault_probability: 0.0,
            fault_seed: None,
            keyring: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policies() {
        assert_eq!(FsyncPolicy::parse("always"), Some(FsyncPolicy::Always));
        assert_eq!(
            FsyncPolicy::parse("group:20"),
            Some(FsyncPolicy::Group { interval_ms: 20 })
        );
        assert_eq!(FsyncPolicy::parse("never"), Some(FsyncPolicy::Never));
        assert_eq!(FsyncPolicy::parse("sometimes"), None);
    }
}
