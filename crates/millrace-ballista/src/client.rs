//! The client side: a DataFusion session whose queries run on a Ballista cluster, planned with
//! prep's settings and the lake codecs.

use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::SessionContextExt;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use millrace_prep::EngineOptions;

use crate::cluster::{session_config, split_host_port};
use crate::error::{ClusterError, Result};
use crate::results::CheckedPlanner;

/// The scheme of an engine URL that names a Ballista scheduler.
pub const SCHEME: &str = "ballista://";

/// The scheduler's `HOST:PORT` in `ballista://HOST:PORT`.
pub fn scheduler_of(engine: &str) -> Result<String> {
    let rest = engine
        .strip_prefix(SCHEME)
        .ok_or_else(|| ClusterError::BadEngine {
            url: engine.to_owned(),
            reason: "the engine is `local` or starts with ballista://".into(),
        })?;
    let rest = rest.trim_end_matches('/');
    split_host_port(rest).map_err(|e| ClusterError::BadEngine {
        url: engine.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(rest.to_owned())
}

/// A session on the scheduler `engine` names. The scheduler is asked for at once, so a wrong
/// address is an error here rather than in the middle of a job.
pub async fn context(engine: &str, opts: &EngineOptions) -> Result<SessionContext> {
    let scheduler = scheduler_of(engine)?;
    match tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(&scheduler),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(source)) => {
            return Err(ClusterError::Unreachable {
                addr: scheduler,
                source,
            });
        }
        Err(_) => {
            return Err(ClusterError::Unreachable {
                addr: scheduler,
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 10 s"),
            });
        }
    }
    // Pull mode: the client polls the job's status. Ballista's push mode keeps the first job id
    // a query ran under, and `results` runs a query again when its result list is unsound.
    let config = millrace_prep::engine::configure(session_config(), opts)
        .set_bool(ballista_core::config::BALLISTA_CLIENT_PULL, true);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .build();
    let ctx = SessionContext::remote_with_state(&format!("df://{scheduler}"), state)
        .await
        .map_err(ClusterError::ballista)?;
    // Ballista's session brings DataFusion's functions back; prep's go over them again.
    let state = ctx.state();
    let planner = CheckedPlanner {
        inner: state.query_planner().clone(),
        scheduler,
    };
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_query_planner(Arc::new(planner))
        .build();
    millrace_prep::engine::register_functions(&mut state);
    Ok(SessionContext::new_with_state(state))
}
