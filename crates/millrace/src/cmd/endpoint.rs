//! `millrace endpoint`: serve models over HTTP until SIGTERM or Ctrl-C.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use millrace_http::ServerLimits;
use millrace_serve::endpoint::{Endpoint, EndpointOptions};
use millrace_serve::monitor::{DEFAULT_MIN_RECORDS, DriftOptions};

use crate::cli::parse_duration;
use clap::Args;

#[derive(Debug, Args)]
pub struct EndpointArgs {
    /// Model to serve: NAME (the production version, or the latest when none is promoted;
    /// follows promotions) or NAME:vN (pinned). Repeat for several models.
    #[arg(long, required = true)]
    pub model: Vec<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Largest request body, in MiB (SageMaker's limit is 6).
    #[arg(long, default_value_t = 6)]
    pub max_payload_mb: usize,
    /// How often the registry is checked for a newly promoted version.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub reload_interval: std::time::Duration,
    /// Drift monitor: the latest scored records compared with each model's training baseline.
    #[arg(long, default_value_t = 1000)]
    pub drift_window: usize,
    /// Drift monitor: PSI at or above which a feature (and so the model) is drifting.
    #[arg(long, default_value_t = 0.2)]
    pub drift_threshold: f64,
    /// How often drift reports with new records are saved to <data-dir>/state/monitor/NAME.json
    /// (for `millrace monitor NAME`); also saved when the endpoint stops.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub drift_save_interval: std::time::Duration,
    /// Time a client has to send a request's headers, from connect and after each response
    /// (so an idle keep-alive connection is closed after it too).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Time a client has to send a request's body; a slower one gets 408 and its connection
    /// is closed.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Open connections at most. At the cap a new connection closes the one idle the longest;
    /// when every one has a request in flight the new one gets 503.
    #[arg(long, default_value_t = millrace_http::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Request bodies held at once, in MiB, summed over all requests; a request waits up to
    /// 2 s for room, then gets 503 (retry later).
    #[arg(long, default_value_t = millrace_http::DEFAULT_MAX_INFLIGHT_MIB)]
    pub max_inflight_mb: usize,
    /// A Host name to serve besides localhost, 127.0.0.1 and [::1] (any port), e.g. the
    /// machine's name when --addr is not loopback. Repeat for several.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Refuse (400, naming the fields) a record missing or unreadable in more than this share
    /// of the model's inputs. Records under it are scored, with `warnings` saying what was
    /// read as missing, unknown categories and ignored columns.
    #[arg(long, default_value_t = 0.5, value_name = "SHARE")]
    pub max_missing: f64,
    /// Refuse any record with a value that would be coerced (text where a number is read)
    /// instead of reading it as missing.
    #[arg(long)]
    pub strict: bool,
}

impl EndpointArgs {
    /// The server limits the flags give, checked (errors name the flag).
    fn limits(&self) -> anyhow::Result<ServerLimits> {
        let limits = ServerLimits {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            max_connections: self.max_connections,
            allowed_hosts: self.allowed_hosts.clone(),
            ..ServerLimits::default()
        }
        .with_inflight_mib(self.max_inflight_mb);
        limits
            .validate()
            .map_err(|e| anyhow::anyhow!(e.as_flag()))?;
        Ok(limits)
    }
}

pub async fn run(data_dir: &Path, args: EndpointArgs) -> anyhow::Result<()> {
    if args.max_payload_mb == 0 {
        anyhow::bail!("--max-payload-mb must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.max_missing) {
        anyhow::bail!(
            "--max-missing {}: must be a share between 0 and 1",
            args.max_missing
        );
    }
    if args.drift_window == 0 {
        anyhow::bail!("--drift-window must be at least 1");
    }
    let limits = args.limits()?;
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
        checks: millrace_serve::checks::InputChecks {
            max_missing: args.max_missing,
            strict: args.strict,
        },
    };
    let registry = crate::registry::open(data_dir);
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
        "serving {} at http://{addr} (POST /invocations, /models/NAME/invocations, the \
         SageMaker Runtime API on /endpoints/NAME/; GET /ping, /metrics)",
        serving.join(", ")
    );
    let reloader = ep.spawn_reloader(args.reload_interval);
    let max = args.max_payload_mb * 1024 * 1024;
    Arc::clone(&ep)
        .serve_with(listener, max, limits, crate::cmd::up::shutdown_signal())
        .await
        .context("serving")?;
    reloader.abort();
    // The last records scored since the previous save.
    let saver = Arc::clone(&ep);
    let _ = tokio::task::spawn_blocking(move || saver.save_drift_reports()).await;
    println!("endpoint stopped cleanly");
    Ok(())
}
