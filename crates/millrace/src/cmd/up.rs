//! `millrace up`: every service in one process until SIGINT/SIGTERM.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use millrace_gateway::Gateway;
use millrace_stream::{Store, StreamError, StreamMode};
use tokio::net::TcpListener;

use crate::cli::UpArgs;
use crate::config::Config;

pub async fn run(data_dir: &Path, args: UpArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let opts = config.store_options(args.fsync.as_deref())?;
    let addr = args.kinesis_addr.unwrap_or(config.server.kinesis_addr);
    let fsync = opts.fsync;

    let root = data_dir.to_owned();
    let store = tokio::task::spawn_blocking(move || Store::open(&root, opts))
        .await?
        .with_context(|| format!("opening the stream store in {}", data_dir.display()))?;
    let store = Arc::new(store);
    for s in &config.streams {
        let mode = if s.shards.is_some() {
            StreamMode::Provisioned
        } else {
            StreamMode::OnDemand
        };
        match store.create(
            &s.name,
            mode,
            s.shards,
            s.retention_hours,
            Default::default(),
        ) {
            Ok(_) => tracing::info!(stream = %s.name, "created stream from config"),
            Err(StreamError::StreamExists(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("creating stream {}", s.name)),
        }
    }

    let key = iterator_key(data_dir)?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the Kinesis API to {addr}"))?;
    let local = listener.local_addr()?;
    // The ready line: scripts and tests read the actual port from it.
    println!(
        "millrace up: kinesis=http://{local} data_dir={} fsync={fsync:?}",
        data_dir.display()
    );

    let retention = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let s = store.clone();
                let r = tokio::task::spawn_blocking(move || {
                    s.enforce_retention(millrace_stream::now_ms())
                })
                .await;
                match r {
                    Ok(Ok(n)) if n > 0 => {
                        tracing::info!(segments = n, "retention removed old segments")
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "retention pass failed"),
                    _ => {}
                }
            }
        })
    };

    // Deliveries read the embedded store directly and are woken on append.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut deliveries = tokio::task::JoinSet::new();
    let delivery_metrics: crate::admin::Registry = Default::default();
    for d in &config.deliveries {
        let lake_url = if d.lake.contains("://") || Path::new(&d.lake).is_absolute() {
            d.lake.clone()
        } else {
            data_dir.join(&d.lake).display().to_string()
        };
        let lake = millrace_lake::Lake::open(
            &lake_url,
            &millrace_lake::S3Options {
                endpoint_url: config.lake.s3_endpoint_url.clone(),
                path_style: config.lake.s3_path_style,
            },
        )
        .with_context(|| format!("delivery {}: opening lake {}", d.name, d.lake))?;
        let name = d.name.clone();
        let mut rx = stop_rx.clone();
        let (store, cfg, state, registry) = (
            store.clone(),
            d.clone(),
            data_dir.join("state"),
            delivery_metrics.clone(),
        );
        deliveries.spawn(async move {
            let Some(stream) = wait_for_stream(&store, &cfg.stream, &mut rx).await else {
                return;
            };
            let source = Arc::new(millrace_delivery::source::EmbeddedSource::new(stream));
            let delivery = match millrace_delivery::Delivery::new(cfg, lake, source, &state) {
                Ok(d) => Arc::new(d),
                Err(e) => {
                    tracing::error!(delivery = %name, error = %e, "delivery not started");
                    return;
                }
            };
            registry
                .lock()
                .expect("metrics registry")
                .push(delivery.metrics());
            if let Err(e) = delivery.run(millrace_delivery::RunMode::Forever, rx).await {
                tracing::error!(delivery = %name, error = %e, "delivery stopped");
            }
        });
        tracing::info!(delivery = %d.name, stream = %d.stream, lake = %lake_url, "delivery running");
    }

    let admin_addr = args.admin_addr.unwrap_or(config.server.admin_addr);
    let admin_listener = TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("binding the admin API to {admin_addr}"))?;
    println!("millrace up: admin=http://{}", admin_listener.local_addr()?);
    let admin = crate::admin::router(crate::admin::Admin {
        store: store.clone(),
        deliveries: delivery_metrics,
    });
    let admin_task = tokio::spawn(async move { axum::serve(admin_listener, admin).await });

    // The real-time endpoint, when asked for: the models must exist (train them first).
    let endpoint = if args.endpoint_model.is_empty() {
        None
    } else {
        let registry = millrace_serve::registry::Registry::new(data_dir);
        let specs = args.endpoint_model.clone();
        let ep = tokio::task::spawn_blocking(move || {
            millrace_serve::endpoint::Endpoint::load(registry, &specs)
        })
        .await?
        .context("--endpoint-model")?;
        let ep = Arc::new(ep);
        let listener = TcpListener::bind(args.endpoint_addr)
            .await
            .with_context(|| format!("binding the endpoint to {}", args.endpoint_addr))?;
        let serving: Vec<String> = ep
            .serving()
            .into_iter()
            .map(|(n, v)| format!("{n}:v{v}"))
            .collect();
        println!(
            "millrace up: endpoint=http://{} serving {}",
            listener.local_addr()?,
            serving.join(", ")
        );
        let reloader = ep.spawn_reloader(std::time::Duration::from_secs(1));
        let mut rx = stop_rx.clone();
        let stopped = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let task = tokio::spawn(Arc::clone(&ep).serve(
            listener,
            millrace_serve::endpoint::DEFAULT_MAX_BODY,
            stopped,
        ));
        Some((task, reloader))
    };

    let gateway = Gateway::new(store.clone(), key);
    millrace_gateway::serve(listener, gateway, shutdown_signal())
        .await
        .context("serving the Kinesis API")?;
    // Flush delivery buffers and checkpoints before the store closes.
    let _ = stop_tx.send(true);
    if let Some((task, reloader)) = endpoint {
        reloader.abort();
        let _ = task.await;
    }
    while deliveries.join_next().await.is_some() {}
    admin_task.abort();
    retention.abort();
    tokio::task::spawn_blocking(move || store.shutdown()).await?;
    eprintln!("millrace up: stopped cleanly");
    Ok(())
}

pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}

/// A delivery may be configured before a producer creates its stream: wait for it, or for
/// shutdown (then `None`).
async fn wait_for_stream(
    store: &Store,
    name: &str,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Arc<millrace_stream::StreamHandle>> {
    let mut warned = false;
    loop {
        if let Ok(s) = store.stream(name) {
            return Some(s);
        }
        if *stop.borrow() {
            return None;
        }
        if !warned {
            tracing::warn!(stream = name, "delivery waits for its stream to be created");
            warned = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The key that signs shard iterators, kept in `state/` so iterators survive a restart.
fn iterator_key(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = data_dir.join("state");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("iterator.key");
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(key);
        }
        tracing::warn!(path = %path.display(), "iterator key has the wrong size; making a new one");
    }
    let key: [u8; 32] = rand::random();
    let tmp = dir.join("iterator.key.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(&key)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(key)
}
