//! `millrace endpoint`: serve models over HTTP until SIGTERM or Ctrl-C.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use millrace_serve::endpoint::{Endpoint, EndpointOptions};
use millrace_serve::monitor::{DEFAULT_MIN_RECORDS, DriftOptions};
use millrace_serve::registry::Registry;

use crate::cli::EndpointArgs;

pub async fn run(data_dir: &Path, args: EndpointArgs) -> anyhow::Result<()> {
    if args.max_payload_mb == 0 {
        anyhow::bail!("--max-payload-mb must be at least 1");
    }
    if args.drift_window == 0 {
        anyhow::bail!("--drift-window must be at least 1");
    }
    if !(args.drift_threshold.is_finite() && args.drift_threshold > 0.0) {
        anyhow::bail!(
            "--drift-threshold {}: must be a positive number",
            args.drift_threshold
        );
    }
    let options = EndpointOptions {
        drift: DriftOptions {
            window: args.drift_window,
            min_records: DEFAULT_MIN_RECORDS.min(args.drift_window),
            threshold: args.drift_threshold,
        },
        drift_save_every: args.drift_save_interval.max(Duration::from_millis(10)),
    };
    let registry = Registry::new(data_dir);
    let specs = args.model.clone();
    let ep = tokio::task::spawn_blocking(move || Endpoint::load_with(registry, &specs, options))
        .await?
        .context("loading the models")?;
    let ep = Arc::new(ep);
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("--addr {}: cannot listen", args.addr))?;
    let addr = listener.local_addr()?;
    let serving: Vec<String> = ep
        .serving()
        .into_iter()
        .map(|(n, v)| format!("{n}:v{v}"))
        .collect();
    println!(
        "serving {} at http://{addr} (POST /invocations, /models/NAME/invocations; GET /ping, \
         /metrics)",
        serving.join(", ")
    );
    let reloader = ep.spawn_reloader(args.reload_interval);
    let max = args.max_payload_mb * 1024 * 1024;
    Arc::clone(&ep)
        .serve(listener, max, crate::cmd::up::shutdown_signal())
        .await
        .context("serving")?;
    reloader.abort();
    // The last records scored since the previous save.
    let saver = Arc::clone(&ep);
    let _ = tokio::task::spawn_blocking(move || saver.save_drift_reports()).await;
    println!("endpoint stopped cleanly");
    Ok(())
}
