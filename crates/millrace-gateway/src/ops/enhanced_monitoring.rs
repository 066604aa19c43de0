//! EnableEnhancedMonitoring and DisableEnhancedMonitoring: the stream's shard-level metrics,
//! kept in `StreamMeta.shard_level_metrics` in the model's order. `ALL` stands for all seven.

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// Every shard-level metric, in the order Kinesis lists them.
pub(crate) const METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];

pub async fn enable(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    change(gw, req, true).await
}

pub async fn disable(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    change(gw, req, false).await
}

/// The metrics a `ShardLevelMetrics` member names, `ALL` expanded; constraints fed to `c`.
fn requested(c: &mut Checks, req: &Request) -> Result<Vec<&'static str>, ApiError> {
    let list = c.required("ShardLevelMetrics", req.opt_list("ShardLevelMetrics")?);
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    if list.is_empty() || list.len() > 7 {
        let bound = if list.is_empty() {
            "Member must have length greater than or equal to 1"
        } else {
            "Member must have length less than or equal to 7"
        };
        c.fail("shardLevelMetrics", &format!("{list:?}"), bound);
    }
    let mut allowed: Vec<&str> = METRICS.to_vec();
    allowed.push("ALL");
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        // Types were checked against the model before the operation ran.
        let s = v.as_str().unwrap_or_default();
        if !c.one_of(&format!("shardLevelMetrics.{}.member", i + 1), s, &allowed) {
            continue;
        }
        if s == "ALL" {
            out.extend(METRICS);
        } else if let Some(m) = METRICS.iter().find(|m| **m == s) {
            out.push(*m);
        }
    }
    Ok(out)
}

fn list(metrics: &[String]) -> Out {
    Out::List(metrics.iter().map(Out::str).collect())
}

async fn change(gw: &Gateway, req: Request, enable: bool) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let metrics = requested(&mut c, &req)?;
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let stream = gw.store.stream(&name)?;
    let (current, desired) = gw
        .blocking(move |_| {
            let mut before = Vec::new();
            let mut after = Vec::new();
            stream.update_meta(|m| {
                before = m.shard_level_metrics.clone();
                let on = |x: &str| {
                    let was = m.shard_level_metrics.iter().any(|y| y == x);
                    let asked = metrics.contains(&x);
                    if enable { was || asked } else { was && !asked }
                };
                let next: Vec<String> = METRICS
                    .iter()
                    .filter(|x| on(x))
                    .map(|x| (*x).to_owned())
                    .collect();
                m.shard_level_metrics = next.clone();
                after = next;
                Ok(())
            })?;
            Ok((before, after))
        })
        .await?;
    Ok(Out::map([
        ("StreamName", Out::str(&name)),
        ("CurrentShardLevelMetrics", list(&current)),
        ("DesiredShardLevelMetrics", list(&desired)),
        ("StreamARN", Out::str(gw.arn(&name))),
    ]))
}
