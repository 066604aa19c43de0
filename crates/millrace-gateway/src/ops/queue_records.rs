//! Queues, the data plane: ReceiveQueueRecords, AcknowledgeQueueRecords and
//! UpdateQueueRecordsVisibility, and their dead-letter twins ReceiveDeadLetterQueueRecords,
//! AcknowledgeDeadLetterQueueRecords, UpdateDeadLetterQueueRecordsVisibility and
//! RestoreDeadLetterQueueRecords.
//!
//! The batch operations answer 200 with each entry in `Successful` or `Failed` (its AWS error
//! code and message); only a bad request or an unknown queue fails the whole call.

use std::time::Duration;

use millrace_queue::{Change, Delivered, EntryError, ReceiveOptions, Side};
use serde_json::Value;

use super::queues::queue_of;
use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// ReceiveQueueRecords' `Limit` and `WaitTimeSeconds` when absent.
const DEFAULT_LIMIT: i64 = 10;
const DEFAULT_WAIT_S: i64 = 9;
const MAX_VISIBILITY_S: i64 = 43_200;

fn record_out(d: Delivered) -> Out {
    Out::map([
        ("ReceiptHandle", Out::Str(d.receipt_handle)),
        ("RecordId", Out::Str(d.record_id)),
        ("PartitionKey", Out::Str(d.partition_key)),
        ("Data", Out::Blob(d.data)),
        ("ApproximateArrivalTimestamp", Out::Time(d.arrival_ms)),
        ("FirstReceiveTimestamp", Out::Time(d.first_receive_ms)),
        ("ReceiveCount", Out::Int(d.receive_count.into())),
    ])
}

async fn receive(gw: &Gateway, req: Request, side: Side) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let limit = req.int_in(&mut c, "Limit", 1, 10)?;
    let wait = req.int_in(&mut c, "WaitTimeSeconds", 1, 20)?;
    let visibility = req.int_in(&mut c, "VisibilityTimeoutSeconds", 0, MAX_VISIBILITY_S)?;
    let queue = queue_of(gw, &req, c)?;
    let opts = ReceiveOptions {
        side,
        limit: limit.unwrap_or(DEFAULT_LIMIT) as usize,
        wait: Duration::from_secs(wait.unwrap_or(DEFAULT_WAIT_S) as u64),
        visibility_timeout_s: visibility.map(|v| v as u32),
    };
    let records = queue.receive(opts).await?;
    Ok(Out::map([(
        "QueueRecords",
        Out::List(records.into_iter().map(record_out).collect()),
    )]))
}

pub async fn receive_live(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    receive(gw, req, Side::Live).await
}

pub async fn receive_dead(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    receive(gw, req, Side::DeadLetter).await
}

/// The `Entries` of a batch call: each receipt handle and, for visibility changes, its
/// timeout, with every model constraint fed to `c`.
fn parse_entries(
    req: &Request,
    c: &mut Checks,
    with_timeout: bool,
) -> Result<Vec<(String, u32)>, ApiError> {
    let Some(list) = c.required("Entries", req.opt_list("Entries")?) else {
        return Ok(Vec::new());
    };
    if list.is_empty() || list.len() > 10 {
        c.fail(
            "entries",
            &format!("'<{} entries>'", list.len()),
            if list.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 10"
            },
        );
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let path = format!("Entries.{}.member", i + 1);
        let obj = item.as_object();
        let handle = obj
            .and_then(|o| o.get("ReceiptHandle"))
            .and_then(Value::as_str);
        let handle = c.required(&format!("{path}.ReceiptHandle"), handle);
        if let Some(h) = handle {
            c.len(&format!("{path}.ReceiptHandle"), h, 1, 1024);
        }
        let mut timeout = 0;
        if with_timeout {
            let v = obj
                .and_then(|o| o.get("VisibilityTimeoutSeconds"))
                .and_then(Value::as_i64);
            let field = format!("{path}.VisibilityTimeoutSeconds");
            if let Some(v) = c.required(&field, v)
                && c.range(&field, v, 0, MAX_VISIBILITY_S)
            {
                timeout = v as u32;
            }
        }
        out.push((handle.unwrap_or_default().to_owned(), timeout));
    }
    Ok(out)
}

fn failed_out(handle: &str, e: &EntryError) -> Out {
    Out::map([
        ("ReceiptHandle", Out::str(handle)),
        ("ErrorCode", Out::str(e.code.as_str())),
        ("ErrorMessage", Out::str(&e.message)),
    ])
}

async fn batch(
    gw: &Gateway,
    req: Request,
    side: Side,
    change: impl Fn(u32) -> Change,
    with_timeout: bool,
) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    let entries = parse_entries(&req, &mut c, with_timeout)?;
    let queue = queue_of(gw, &req, c)?;
    let changes: Vec<(String, Change)> = entries
        .iter()
        .map(|(h, t)| (h.clone(), change(*t)))
        .collect();
    let results = queue.change(side, changes).await?;
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for ((handle, _), r) in entries.iter().zip(results) {
        match r {
            Ok(()) => ok.push(Out::map([("ReceiptHandle", Out::str(handle))])),
            Err(e) => failed.push(failed_out(handle, &e)),
        }
    }
    Ok(Out::map([
        ("Successful", Out::List(ok)),
        ("Failed", Out::List(failed)),
    ]))
}

pub async fn acknowledge_live(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    batch(gw, req, Side::Live, |_| Change::Acknowledge, false).await
}

pub async fn acknowledge_dead(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    batch(gw, req, Side::DeadLetter, |_| Change::Acknowledge, false).await
}

pub async fn visibility_live(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    batch(gw, req, Side::Live, Change::Visibility, true).await
}

pub async fn visibility_dead(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    batch(gw, req, Side::DeadLetter, Change::Visibility, true).await
}

pub async fn restore_dead(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    batch(gw, req, Side::DeadLetter, |_| Change::Restore, false).await
}
