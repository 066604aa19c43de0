//! Account-level settings (the Kinesis API's DescribeAccountSettings / UpdateAccountSettings),
//! persisted as `<store root>/account.json` and replaced durably on every change.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result, StreamError};
use crate::meta::Encryption;
use crate::store::{Store, StreamHandle};

pub(crate) const ACCOUNT_FILE: &str = "account.json";

/// Serialises read-modify-write of `account.json` (one store per root in a process).
static UPDATE: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Status of the minimum throughput billing commitment, as the API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommitmentStatus {
    Enabled,
    #[default]
    Disabled,
    /// Disabled before its earliest allowed end: it stays on until then.
    EnabledUntilEarliestAllowedEnd,
}

impl CommitmentStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
            Self::Disabled => "DISABLED",
            Self::EnabledUntilEarliestAllowedEnd => "ENABLED_UNTIL_EARLIEST_ALLOWED_END",
        }
    }
}

/// `MinimumThroughputBillingCommitment`: times in epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BillingCommitment {
    pub status: CommitmentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_allowed_end_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    #[serde(default)]
    pub minimum_throughput_billing_commitment: BillingCommitment,
}

fn path(root: &Path) -> PathBuf {
    root.join(ACCOUNT_FILE)
}

/// The settings saved under `root`, or the defaults when none were saved.
pub(crate) fn load(root: &Path) -> Result<AccountSettings> {
    let path = path(root);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(AccountSettings::default());
        }
        Err(e) => return Err(e).at(&path),
    };
    serde_json::from_slice(&bytes).map_err(|e| StreamError::CorruptMeta {
        path,
        message: e.to_string(),
    })
}

/// Replaces `account.json` durably (temporary file, fsync, rename, fsync of the folder).
pub(crate) fn save(root: &Path, settings: &AccountSettings) -> Result<()> {
    let path = path(root);
    let bytes = serde_json::to_vec_pretty(settings).expect("account settings serialise");
    millrace_common::durable::write_file(&path, &bytes).at(&path)
}

impl Store {
    /// The account settings as last saved (defaults if never changed).
    pub fn account_settings(&self) -> Result<AccountSettings> {
        load(self.root())
    }

    /// Applies `f` to a copy of the settings and saves the result durably before returning it;
    /// `f` may refuse the change.
    pub fn update_account_settings(
        &self,
        f: impl FnOnce(&mut AccountSettings) -> Result<()>,
    ) -> Result<AccountSettings> {
        let _guard = UPDATE.lock();
        let current = load(self.root())?;
        let mut next = current.clone();
        f(&mut next)?;
        if next != current {
            save(self.root(), &next)?;
        }
        Ok(next)
    }
}

impl StreamHandle {
    /// The stream's server-side encryption setting, without copying the rest of its metadata
    /// (PutRecord and PutRecords report it on every reply).
    pub fn encryption(&self) -> Option<Encryption> {
        self.meta.read().encryption.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), AccountSettings::default());
        let s = AccountSettings {
            minimum_throughput_billing_commitment: BillingCommitment {
                status: CommitmentStatus::Enabled,
                started_ms: Some(1),
                ended_ms: None,
                earliest_allowed_end_ms: Some(2),
            },
        };
        save(dir.path(), &s).unwrap();
        assert_eq!(load(dir.path()).unwrap(), s);
        std::fs::write(dir.path().join(ACCOUNT_FILE), b"{oops").unwrap();
        assert!(load(dir.path()).is_err());
    }
}
