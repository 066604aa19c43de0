//! DescribeAccountSettings and UpdateAccountSettings: the account's minimum throughput billing
//! commitment, saved in the store's `account.json`.
//!
//! Enabling starts a commitment whose earliest allowed end is [`COMMITMENT_MIN_MS`] later.
//! Disabling before then leaves it `ENABLED_UNTIL_EARLIEST_ALLOWED_END` (ending at the earliest
//! allowed end); disabling after ends it at once.

use millrace_stream::{AccountSettings, BillingCommitment, CommitmentStatus, now_ms};

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// The shortest commitment: 24 hours.
pub(crate) const COMMITMENT_MIN_MS: i64 = 24 * 3600 * 1000;

/// The commitment as it stands at `now`: one that was to end at its earliest allowed end has
/// ended once that passed.
pub(crate) fn effective(c: &BillingCommitment, now: i64) -> BillingCommitment {
    let mut c = c.clone();
    if c.status == CommitmentStatus::EnabledUntilEarliestAllowedEnd
        && c.ended_ms.is_some_and(|end| end <= now)
    {
        c.status = CommitmentStatus::Disabled;
    }
    c
}

/// Whether the account's commitment is in force now (warm throughput needs it).
pub(crate) fn commitment_enabled(gw: &Gateway) -> Result<bool, ApiError> {
    let s = gw.store.account_settings()?;
    Ok(
        effective(&s.minimum_throughput_billing_commitment, now_ms()).status
            != CommitmentStatus::Disabled,
    )
}

fn settings_out(s: &AccountSettings) -> Out {
    let c = effective(&s.minimum_throughput_billing_commitment, now_ms());
    let mut fields = vec![("Status", Out::str(c.status.as_str()))];
    if let Some(t) = c.started_ms {
        fields.push(("StartedAt", Out::Time(t)));
    }
    if let Some(t) = c.ended_ms {
        fields.push(("EndedAt", Out::Time(t)));
    }
    if let Some(t) = c.earliest_allowed_end_ms {
        fields.push(("EarliestAllowedEndAt", Out::Time(t)));
    }
    Out::map([("MinimumThroughputBillingCommitment", Out::Map(fields))])
}

pub fn describe(gw: &Gateway, _req: Request) -> Result<Out, ApiError> {
    Ok(settings_out(&gw.store.account_settings()?))
}

pub async fn update(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let commitment = c.required(
        "MinimumThroughputBillingCommitment",
        req.opt_object("MinimumThroughputBillingCommitment")?,
    );
    let mut enable = None;
    if let Some(commitment) = commitment {
        let status = commitment.get("Status").and_then(|v| v.as_str());
        if let Some(s) = c.required("MinimumThroughputBillingCommitment.Status", status)
            && c.one_of(
                "MinimumThroughputBillingCommitment.Status",
                s,
                &["ENABLED", "DISABLED"],
            )
        {
            enable = Some(s == "ENABLED");
        }
    }
    c.finish()?;
    let enable = enable.expect("checked");
    let settings = gw
        .blocking(move |store| {
            store
                .update_account_settings(|s| {
                    let now = now_ms();
                    let cur = effective(&s.minimum_throughput_billing_commitment, now);
                    s.minimum_throughput_billing_commitment = next(cur, enable, now);
                    Ok(())
                })
                .map_err(ApiError::from)
        })
        .await?;
    Ok(settings_out(&settings))
}

/// The commitment after asking to enable or disable it at `now`.
fn next(cur: BillingCommitment, enable: bool, now: i64) -> BillingCommitment {
    use CommitmentStatus::*;
    match (cur.status, enable) {
        // Already on: nothing changes.
        (Enabled, true) => cur,
        // Asked to end early, then asked to stay: the commitment goes on.
        (EnabledUntilEarliestAllowedEnd, true) => BillingCommitment {
            status: Enabled,
            ended_ms: None,
            ..cur
        },
        (Disabled, true) => BillingCommitment {
            status: Enabled,
            started_ms: Some(now),
            ended_ms: None,
            earliest_allowed_end_ms: Some(now + COMMITMENT_MIN_MS),
        },
        (Enabled, false) => {
            let earliest = cur.earliest_allowed_end_ms.unwrap_or(now);
            if now < earliest {
                BillingCommitment {
                    status: EnabledUntilEarliestAllowedEnd,
                    ended_ms: Some(earliest),
                    ..cur
                }
            } else {
                BillingCommitment {
                    status: Disabled,
                    ended_ms: Some(now),
                    ..cur
                }
            }
        }
        (EnabledUntilEarliestAllowedEnd | Disabled, false) => cur,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_states() {
        let off = BillingCommitment::default();
        let on = next(off.clone(), true, 1000);
        assert_eq!(on.status, CommitmentStatus::Enabled);
        assert_eq!(on.earliest_allowed_end_ms, Some(1000 + COMMITMENT_MIN_MS));
        let ending = next(on.clone(), false, 2000);
        assert_eq!(
            ending.status,
            CommitmentStatus::EnabledUntilEarliestAllowedEnd
        );
        assert_eq!(ending.ended_ms, Some(1000 + COMMITMENT_MIN_MS));
        assert_eq!(
            effective(&ending, 1000 + COMMITMENT_MIN_MS).status,
            CommitmentStatus::Disabled
        );
        assert_eq!(next(ending, true, 3000), on);
        let late = next(on, false, 5000 + COMMITMENT_MIN_MS);
        assert_eq!(late.status, CommitmentStatus::Disabled);
        assert_eq!(late.ended_ms, Some(5000 + COMMITMENT_MIN_MS));
    }
}
