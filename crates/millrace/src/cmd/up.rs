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

    let scorers: crate::admin::Scorers = Default::default();
    let board: crate::pipeline::Board = Default::default();
    for p in &config.preps {
        deliveries.spawn(crate::pipeline::prep_loop(
            p.clone(),
            data_dir.to_owned(),
            board.clone(),
            stop_rx.clone(),
        ));
        tracing::info!(job = %p.job.display(), every_objects = p.every_objects, every_secs = p.every_secs, "prep job configured");
    }
    for t in &config.trains {
        deliveries.spawn(crate::pipeline::train_loop(
            t.clone(),
            data_dir.to_owned(),
            board.clone(),
            stop_rx.clone(),
        ));
        tracing::info!(model = %t.name, data = %t.data, gate = t.gate, "training configured");
    }
    // Streaming scorers read the embedded store and wait for their stream and model to exist
    // (the model may be trained after `up` starts).
    for sc in &config.scorings {
        let (store, cfg, data_dir, mut rx, registered) = (
            store.clone(),
            sc.clone(),
            data_dir.to_owned(),
            stop_rx.clone(),
            scorers.clone(),
        );
        let name = sc.name();
        tracing::info!(scoring = %name, stream = %sc.stream, model = %sc.model, to = %sc.to_stream, "scoring configured");
        deliveries.spawn(async move {
            if wait_for_stream(&store, &cfg.stream, &mut rx).await.is_none() {
                return;
            }
            let registry = millrace_serve::registry::Registry::new(&data_dir);
            let mut warned = false;
            let scorer = loop {
                let (c, r, s, st) = (
                    cfg.clone(),
                    registry.clone(),
                    millrace_serve::score::streams::Streams::Embedded(store.clone()),
                    data_dir.join("state"),
                );
                match tokio::task::spawn_blocking(move || {
                    millrace_serve::score::Scorer::new(c, r, s, &st)
                })
                .await
                {
                    Ok(Ok(s)) => break Arc::new(s),
                    Ok(Err(e)) => {
                        if !warned {
                            tracing::warn!(scoring = %name, error = %e, "scoring waits for its model");
                            warned = true;
                        }
                    }
                    Err(_) => return,
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = rx.changed() => return,
                }
                if *rx.borrow() {
                    return;
                }
            };
            let (model, version) = scorer.serving();
            registered.lock().expect("scorers").push(scorer.clone());
            tracing::info!(scoring = %name, model = %model, version, "scoring running");
            if let Err(e) = scorer.run(millrace_serve::score::RunMode::Forever, rx).await {
                tracing::error!(scoring = %name, error = %e, "scoring stopped");
            }
        });
    }

    // The real-time endpoint (--endpoint-model or [endpoint]); it starts once its models
    // exist, so a pipeline can train the first one after `up` starts.
    let (models, endpoint_addr) = match (&config.endpoint, args.endpoint_model.is_empty()) {
        (Some(e), true) => (e.models.clone(), e.addr),
        _ => (args.endpoint_model.clone(), args.endpoint_addr),
    };
    let served: Arc<std::sync::OnceLock<Arc<millrace_serve::endpoint::Endpoint>>> =
        Default::default();
    let endpoint = if models.is_empty() {
        None
    } else {
        let listener = TcpListener::bind(endpoint_addr)
            .await
            .with_context(|| format!("binding the endpoint to {endpoint_addr}"))?;
        let local = listener.local_addr()?;
        let registry = millrace_serve::registry::Registry::new(data_dir);
        // Already trained: load now and say what is served in the ready line.
        let specs = models.clone();
        let r = registry.clone();
        let now = tokio::task::spawn_blocking(move || {
            millrace_serve::endpoint::Endpoint::load(r, &specs)
        })
        .await?;
        match &now {
            Ok(ep) => {
                let serving: Vec<String> = ep
                    .serving()
                    .into_iter()
                    .map(|(n, v)| format!("{n}:v{v}"))
                    .collect();
                println!(
                    "millrace up: endpoint=http://{local} serving {}",
                    serving.join(", ")
                );
            }
            Err(_) => println!(
                "millrace up: endpoint=http://{local} waiting for model {}",
                models.join(", ")
            ),
        }
        let mut rx = stop_rx.clone();
        let served = served.clone();
        Some(tokio::spawn(async move {
            let mut now = Some(now);
            let ep = loop {
                let attempt = match now.take() {
                    Some(r) => r,
                    None => {
                        let (r, specs) = (registry.clone(), models.clone());
                        match tokio::task::spawn_blocking(move || {
                            millrace_serve::endpoint::Endpoint::load(r, &specs)
                        })
                        .await
                        {
                            Ok(r) => r,
                            Err(_) => return,
                        }
                    }
                };
                match attempt {
                    Ok(ep) => break Arc::new(ep),
                    Err(e) => tracing::debug!(error = %e, "endpoint waits for its model"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = rx.changed() => return,
                }
                if *rx.borrow() {
                    return;
                }
            };
            let _ = served.set(ep.clone());
            tracing::info!(addr = %local, serving = ?ep.serving(), "endpoint serving");
            let reloader = ep.spawn_reloader(Duration::from_secs(1));
            let stopped = async move {
                let _ = rx.wait_for(|stop| *stop).await;
            };
            let _ = ep
                .serve(
                    listener,
                    millrace_serve::endpoint::DEFAULT_MAX_BODY,
                    stopped,
                )
                .await;
            reloader.abort();
        }))
    };

    let admin_addr = args.admin_addr.unwrap_or(config.server.admin_addr);
    let admin_listener = TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("binding the admin API to {admin_addr}"))?;
    println!("millrace up: admin=http://{}", admin_listener.local_addr()?);
    let admin = crate::admin::router(crate::admin::Admin {
        store: store.clone(),
        deliveries: delivery_metrics,
        scorers,
        pipeline: board,
        endpoint: served,
    });
    let admin_task = tokio::spawn(async move { axum::serve(admin_listener, admin).await });

    let gateway = Gateway::new(store.clone(), key);
    millrace_gateway::serve(listener, gateway, shutdown_signal())
        .await
        .context("serving the Kinesis API")?;
    // Flush delivery buffers and checkpoints before the store closes.
    let _ = stop_tx.send(true);
    if let Some(task) = endpoint {
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
