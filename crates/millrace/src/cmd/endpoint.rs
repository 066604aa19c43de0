//! `millrace endpoint`: serve models over HTTP until SIGTERM or Ctrl-C.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use millrace_serve::endpoint::Endpoint;
use millrace_serve::registry::Registry;

use crate::cli::EndpointArgs;

pub async fn run(data_dir: &Path, args: EndpointArgs) -> anyhow::Result<()> {
    if args.max_payload_mb == 0 {
        anyhow::bail!("--max-payload-mb must be at least 1");
    }
    let registry = Registry::new(data_dir);
    let specs = args.model.clone();
    let ep = tokio::task::spawn_blocking(move || Endpoint::load(registry, &specs))
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
    ep.serve(listener, max, crate::cmd::up::shutdown_signal())
        .await
        .context("serving")?;
    reloader.abort();
    println!("endpoint stopped cleanly");
    Ok(())
}
