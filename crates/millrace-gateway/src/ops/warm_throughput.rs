//! UpdateStreamWarmThroughput: the throughput an ON_DEMAND stream is kept ready for, in MiB/s
//! (`StreamMeta.warm_throughput_mibps`). As in Kinesis, only ON_DEMAND streams of an account
//! with the minimum throughput billing commitment enabled have one, at most 10 GiB/s.

use millrace_stream::{StreamError, StreamMode};

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// 10 GiB/s, the most Kinesis scales an on-demand stream to.
pub(crate) const MAX_MIBPS: i64 = 10 * 1024;

/// Refuses a warm throughput the account may not have: over [`MAX_MIBPS`], or without the
/// billing commitment.
pub(crate) fn check_allowed(gw: &Gateway, mibps: i64) -> Result<(), ApiError> {
    if mibps > MAX_MIBPS {
        return Err(ApiError::invalid(format!(
            "WarmThroughputMiBps {mibps} exceeds the maximum of {MAX_MIBPS} MiB/s for an \
             on-demand stream."
        )));
    }
    if !super::account_settings::commitment_enabled(gw)? {
        return Err(ApiError::invalid(format!(
            "Warm throughput requires MinimumThroughputBillingCommitment to be enabled for \
             account {} (see UpdateAccountSettings).",
            gw.store.options().account_id
        )));
    }
    Ok(())
}

/// Sets the warm throughput of ON_DEMAND stream `name`; returns the previous one.
pub(crate) async fn set(gw: &Gateway, name: &str, mibps: i64) -> Result<Option<u32>, ApiError> {
    check_allowed(gw, mibps)?;
    let stream = gw.store.stream(name)?;
    let account = gw.store.options().account_id.clone();
    gw.blocking(move |_| {
        let mut before = None;
        stream.update_meta(|m| {
            if m.mode != StreamMode::OnDemand {
                return Err(StreamError::InvalidArgument(format!(
                    "Stream {} under account {account} is in PROVISIONED mode: warm throughput \
                     is only supported for ON_DEMAND streams.",
                    m.name
                )));
            }
            before = m.warm_throughput_mibps;
            m.warm_throughput_mibps = Some(mibps as u32);
            Ok(())
        })?;
        Ok(before)
    })
    .await
}

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let mibps = req.int_in(&mut c, "WarmThroughputMiBps", 0, i64::MAX)?;
    let mibps = c.required("WarmThroughputMiBps", mibps);
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let mibps = mibps.expect("checked");
    set(gw, &name, mibps).await?;
    Ok(Out::map([
        ("StreamARN", Out::str(gw.arn(&name))),
        ("StreamName", Out::str(&name)),
        (
            "WarmThroughput",
            Out::map([
                ("TargetMiBps", Out::Int(mibps)),
                // Nothing to warm up here: the target is in place at once.
                ("CurrentMiBps", Out::Int(mibps)),
            ]),
        ),
    ]))
}
