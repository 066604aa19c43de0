use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

const MIN_HOURS: i64 = 24;
const MAX_HOURS: i64 = 8760;

/// The stream and the requested hours, checked against Kinesis's bounds.
fn requested(gw: &Gateway, req: &Request) -> Result<(String, u32), ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let hours = req.int_in(&mut c, "RetentionPeriodHours", 1, 100_000)?;
    let hours = c.required("RetentionPeriodHours", hours);
    c.finish()?;
    let name = gw.stream_name(req)?;
    let hours = hours.expect("checked");
    if hours < MIN_HOURS {
        return Err(ApiError::invalid(format!(
            "Minimum allowed retention period is {MIN_HOURS} hours. Requested retention period \
             ({hours} hours) is too short."
        )));
    }
    if hours > MAX_HOURS {
        return Err(ApiError::invalid(format!(
            "Maximum allowed retention period is {MAX_HOURS} hours. Requested retention period \
             ({hours} hours) is too long."
        )));
    }
    Ok((name, hours as u32))
}

pub async fn increase(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    change(gw, req, Direction::Increase).await
}

pub async fn decrease(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    change(gw, req, Direction::Decrease).await
}

#[derive(PartialEq, Eq)]
enum Direction {
    Increase,
    Decrease,
}

/// Kinesis refuses an Increase that shortens retention and a Decrease that lengthens it.
async fn change(gw: &Gateway, req: Request, dir: Direction) -> Result<Out, ApiError> {
    let (name, hours) = requested(gw, &req)?;
    let stream = gw.store.stream(&name)?;
    let current = stream.meta().retention_hours;
    let (wrong_way, longer_or_shorter, other_api) = match dir {
        Direction::Increase => (hours < current, "shorter", "DecreaseRetentionPeriod"),
        Direction::Decrease => (hours > current, "longer", "IncreaseRetentionPeriod"),
    };
    if wrong_way {
        return Err(ApiError::invalid(format!(
            "Requested retention period ({hours} hours) for stream {name} can not be \
             {longer_or_shorter} than existing retention period ({current} hours). Use \
             {other_api} API."
        )));
    }
    // Rewrites meta.json with fsync: off the async threads.
    gw.blocking(move |_| stream.set_retention_hours(hours).map_err(ApiError::from))
        .await?;
    Ok(Out::map([]))
}
