//! `millrace up`: every configured component in one process until SIGINT/SIGTERM.
//!
//! `run` opens the stream store, binds the Kinesis API and prints the ready line, then starts a
//! list of named [`Component`]s, each built by its own function below: the gateway, retention,
//! each `[[delivery]]`, each `[[prep]]` and `[[train]]` loop, each `[[scoring]]`, the endpoint
//! and the admin API. They all watch one [`CancellationToken`]. On SIGINT/SIGTERM (or when the
//! gateway fails) the gateway stops taking records first (its token is a child of that one),
//! then the token is cancelled and every other component is awaited by name: deliveries flush
//! their buffers and checkpoints, scorers checkpoint; then the store closes.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use millrace_common::layout::DataDir;
use millrace_gateway::Gateway;
use millrace_http::ServerLimits;
use millrace_stream::{Store, StreamError, StreamMode};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::admin::Admin;
use crate::config::Config;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Config file (TOML). Without one, defaults apply and no stream is pre-created.
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Address of the Kinesis API (overrides [server].kinesis_addr). Port 0 picks a free port.
    #[arg(long)]
    pub kinesis_addr: Option<SocketAddr>,
    /// When to fsync before acknowledging: always, group[:MS] or never (overrides
    /// [storage].fsync).
    #[arg(long)]
    pub fsync: Option<String>,
    /// Address of the admin API (/metrics, /status); overrides [server].admin_addr.
    #[arg(long)]
    pub admin_addr: Option<SocketAddr>,
    /// Also serve these models on the real-time endpoint (as `millrace endpoint` does):
    /// NAME follows the registry, NAME:vN is pinned. Repeat for several.
    #[arg(long)]
    pub endpoint_model: Vec<String>,
    /// Address of the real-time endpoint (with --endpoint-model).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub endpoint_addr: SocketAddr,
    /// Address of the web console (overrides [console].addr).
    #[arg(long)]
    pub console_addr: Option<SocketAddr>,
    /// Listen beyond loopback with `[auth] mode = "off"` (no signatures checked): only for a
    /// network where everyone who can reach the port may do anything.
    #[arg(long)]
    pub insecure: bool,
}

/// One long-running part of `up`: its name (in every log line about it) and its task.
struct Component {
    name: String,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Component {
    /// Starts `task`; an error it ends with is logged, with the component's name, when it
    /// happens (a failing delivery or scorer does not stop the others).
    fn spawn(
        name: impl Into<String>,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> Self {
        let name = name.into();
        let component = name.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = task.await {
                tracing::error!(component, error = %format!("{e:#}"), "component failed");
            }
            Ok(())
        });
        Self { name, task }
    }

    /// Waits for the component to finish; a panic comes back as an error with its name.
    async fn join(self) -> anyhow::Result<()> {
        let r = match self.task.await {
            Ok(r) => r,
            Err(e) => Err(anyhow::anyhow!("{}: {e}", self.name)),
        };
        tracing::debug!(component = %self.name, "stopped");
        r
    }
}

/// What every component of one `up` shares.
#[derive(Clone)]
struct Shared {
    data_dir: DataDir,
    store: Arc<Store>,
    /// Cancelled once, when `up` stops.
    stop: CancellationToken,
    /// The same stop signal as a flag, for deliveries and scorers, which take a `watch`.
    stop_flag: watch::Receiver<bool>,
    /// What `/status` and `/metrics` show; components register themselves here.
    admin: Admin,
    /// `[auth]`'s identities, for every API server (`None`: mode "off").
    auth: Option<Arc<millrace_auth::Auth>>,
    /// `[server] tls`'s certificate, for every server (`None`: plain HTTP).
    tls: Option<millrace_http::Tls>,
}

impl Shared {
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}

pub async fn run(data_dir: &DataDir, args: UpArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(location) = &config.registry.location {
        let location = crate::config::lake_url(data_dir, location);
        let s3 = config.lake.s3_options();
        crate::registry::choose(data_dir.root(), &location, &s3, "registry.location")?;
    }
    let opts = config.store_options(args.fsync.as_deref())?;
    let addr = args.kinesis_addr.unwrap_or(config.server.kinesis_addr);
    let fsync = opts.fsync;
    // The same bounds for the Kinesis API, the endpoint and the admin API (validated at load).
    let limits = config.server.limits();

    let root = data_dir.root().to_owned();
    let store = tokio::task::spawn_blocking(move || Store::open(&root, opts))
        .await?
        .with_context(|| format!("opening the stream store in {}", data_dir.root().display()))?;
    let store = Arc::new(store);
    create_streams(&store, &config)?;

    let key = iterator_key(data_dir)?;
    let api_store = store.clone();
    let api = tokio::task::spawn_blocking(move || Gateway::new(api_store, key))
        .await?
        .context("opening the Kinesis API state (queues, channels)")?;
    let (fh_store, fh_root) = (store.clone(), data_dir.root().to_owned());
    let firehose =
        tokio::task::spawn_blocking(move || millrace_firehose::Firehose::open(&fh_root, fh_store))
            .await?
            .context("opening the Firehose API state (delivery streams and their buffers)")?;
    firehose
        .registry
        .set_buckets(config.buckets.keys().cloned());
    let mut api = api.with_service(Arc::new(firehose.clone()));
    let auth = auth(data_dir, &config, addr, args.insecure)?;
    if let Some(auth) = &auth {
        api = api.with_auth(auth.clone());
    }
    let tls = tls(data_dir, &config, addr)?;
    if let Some(tls) = &tls {
        api = api.with_tls(tls.clone());
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    api.channels.set_buckets(config.buckets.keys().cloned());
    api.channels.set_tables(
        config.table_buckets.keys().cloned(),
        config.schemas.keys().cloned(),
    );
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the Kinesis API to {addr}"))?;
    let local = listener.local_addr()?;
    // The ready line: scripts and tests read the actual port from it.
    println!(
        "millrace up: kinesis={scheme}://{local} data_dir={} fsync={fsync:?}",
        data_dir.root().display()
    );

    let stop = CancellationToken::new();
    let shared = Shared {
        auth,
        tls,
        data_dir: data_dir.clone(),
        store: store.clone(),
        stop_flag: stop_flag(&stop),
        stop: stop.clone(),
        admin: Admin {
            store: store.clone(),
            deliveries: Default::default(),
            scorers: Default::default(),
            pipeline: Default::default(),
            endpoint: Default::default(),
            gateway: api.clone(),
            channels: Default::default(),
            firehose: firehose.clone(),
            delivery_streams: Default::default(),
            rates: Default::default(),
        },
    };
    let intake = stop.child_token();
    let gateway = gateway(&shared, listener, api, limits.clone(), intake.clone());
    let mut components = vec![
        retention(&shared),
        on_demand_scaling(&shared),
        rates(&shared),
    ];
    components.push(channels(&shared, &config));
    components.push(delivery_streams(&shared, &config, firehose));
    for d in &config.deliveries {
        components.push(delivery(&shared, &config, d)?);
    }
    components.extend(config.preps.iter().map(|p| prep(&shared, p)));
    components.extend(config.trains.iter().map(|t| train(&shared, t)));
    let lake_s3 = config.lake.s3_options();
    components.extend(
        config
            .scorings
            .iter()
            .map(|sc| scoring(&shared, sc, lake_s3.clone())),
    );
    // --endpoint-model wins over [endpoint].
    let (models, endpoint_addr) = match (&config.endpoint, args.endpoint_model.is_empty()) {
        (Some(e), true) => (e.models.clone(), e.addr),
        _ => (args.endpoint_model.clone(), args.endpoint_addr),
    };
    if !models.is_empty() {
        components.push(endpoint(&shared, models, endpoint_addr, limits.clone()).await?);
    }
    let admin_addr = args.admin_addr.unwrap_or(config.server.admin_addr);
    components.extend(console(&shared, &config, &args, limits.clone()).await?);
    components.push(admin(&shared, admin_addr, limits).await?);

    // Until a signal, or until the gateway fails and cancels the token itself.
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = stop.cancelled() => {}
    }
    // No new records first; then the rest flush what they have read.
    intake.cancel();
    let serving = gateway.join().await;
    stop.cancel();
    for c in components {
        if let Err(e) = c.join().await {
            tracing::error!("{e:#}");
        }
    }
    tokio::task::spawn_blocking(move || store.shutdown()).await?;
    serving?;
    eprintln!("millrace up: stopped cleanly");
    Ok(())
}

/// The identities, policies and audit log `[auth]` asks for; `None` under mode "off", which
/// is refused on an address beyond loopback unless `--insecure`.
fn auth(
    data_dir: &DataDir,
    config: &Config,
    addr: std::net::SocketAddr,
    insecure: bool,
) -> anyhow::Result<Option<Arc<millrace_auth::Auth>>> {
    use millrace_auth::{Audit, AuditConfig, Auth, Mode};
    let (mode, identities) = (config.auth.mode, config.auth.identities.as_deref());
    let Some(identities) = identities.filter(|_| mode != Mode::Off) else {
        if !addr.ip().is_loopback() && !insecure {
            anyhow::bail!(
                "refusing to serve the Kinesis API on {addr}, beyond loopback, with [auth] mode \
                 = \"off\": anyone who reaches it could do anything. Set [auth] mode = \
                 \"enforce\" and identities = \"FILE\" (see examples/identities.toml), or pass \
                 --insecure on a network you trust"
            );
        }
        return Ok(None);
    };
    let audit_dir = data_dir.audit();
    let audit = Audit::open(AuditConfig::new(&audit_dir))
        .with_context(|| format!("opening the audit log in {}", audit_dir.display()))?;
    let o = &config.server;
    let auth = Auth::new(mode, identities, &o.account_id, &o.region, audit)
        .context("loading [auth] identities")?;
    eprintln!(
        "millrace up: auth mode={} identities={} ({} principals) audit={}",
        format!("{mode:?}").to_lowercase(),
        identities.display(),
        auth.principal_count(),
        millrace_auth::log_path(&audit_dir).display()
    );
    Ok(Some(Arc::new(auth)))
}

/// The certificate `[server] tls` asks for: its files, or the self-signed one in
/// `state/tls/` (made on first start for localhost, the bound address and the allowed hosts).
fn tls(
    data_dir: &DataDir,
    config: &Config,
    addr: std::net::SocketAddr,
) -> anyhow::Result<Option<millrace_http::Tls>> {
    let s = &config.server;
    if !s.tls {
        return Ok(None);
    }
    let tls = match (&s.tls_cert, &s.tls_key) {
        (Some(cert), Some(key)) => millrace_http::Tls::from_pem_files(cert, key)?,
        _ => {
            let mut names = s.allowed_hosts.clone();
            if !addr.ip().is_unspecified() {
                names.push(addr.ip().to_string());
            }
            millrace_http::Tls::self_signed(&data_dir.tls(), &names)?
        }
    };
    eprintln!(
        "millrace up: TLS certificate {} (SHA-256 {}); clients: --ca-bundle or AWS_CA_BUNDLE",
        tls.cert_path.display(),
        tls.fingerprint
    );
    Ok(Some(tls))
}

/// The `[[stream]]`s of the config that do not exist yet, and each one's `enforce_limits`.
fn create_streams(store: &Store, config: &Config) -> anyhow::Result<()> {
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
        if let Some(enforce) = s.enforce_limits {
            store
                .stream(&s.name)
                .and_then(|stream| {
                    stream.update_meta(|m| {
                        m.enforce_limits = Some(enforce);
                        Ok(())
                    })
                })
                .with_context(|| format!("setting enforce_limits of stream {}", s.name))?;
        }
    }
    Ok(())
}

/// The stop token as a `watch` flag that turns true when the token is cancelled.
fn stop_flag(stop: &CancellationToken) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let stop = stop.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        let _ = tx.send(true);
        // Keep the sender until every receiver is gone, so none sees a closed channel.
        tx.closed().await;
    });
    rx
}

/// The Kinesis API, until `intake` is cancelled. A failure to serve stops every component,
/// and `up` exits with that error.
fn gateway(
    shared: &Shared,
    listener: TcpListener,
    gateway: Gateway,
    limits: ServerLimits,
    intake: CancellationToken,
) -> Component {
    let stop = shared.stop.clone();
    Component {
        name: "gateway".into(),
        task: tokio::spawn(async move {
            let served =
                millrace_gateway::serve_with(listener, gateway, limits, intake.cancelled_owned())
                    .await
                    .context("serving the Kinesis API");
            stop.cancel();
            served
        }),
    }
}

/// Splits busy shards of ON_DEMAND streams (`millrace_stream::OnDemandScaler`), every 10 s.
fn on_demand_scaling(shared: &Shared) -> Component {
    let (store, stop) = (shared.store.clone(), shared.stop.clone());
    Component::spawn("on-demand scaling", async move {
        let scaler =
            std::sync::Arc::new(std::sync::Mutex::new(millrace_stream::OnDemandScaler::new()));
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return Ok(()),
            }
            let (s, scaler) = (store.clone(), scaler.clone());
            let r = tokio::task::spawn_blocking(move || {
                let mut scaler = scaler.lock().unwrap_or_else(|p| p.into_inner());
                scaler.pass(&s, std::time::Instant::now())
            })
            .await;
            if let Ok(Err(e)) = r {
                tracing::warn!(error = %e, "on-demand scaling pass failed");
            }
        }
    })
}

/// Removes segments past their stream's retention, once a minute.
/// Every second until `stop`: a sample of each stream's counters for its rates in and out.
fn rates(shared: &Shared) -> Component {
    let (admin, stop) = (shared.admin.clone(), shared.stop.clone());
    Component::spawn("rates", async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return Ok(()),
            }
            admin.rates.sample(&admin.store, millrace_stream::now_ms());
        }
    })
}

fn retention(shared: &Shared) -> Component {
    let (store, stop) = (shared.store.clone(), shared.stop.clone());
    Component::spawn("retention", async move {
        retention_loop(store, stop).await;
        Ok(())
    })
}

/// Every minute until `stop`: removes `store`'s segments past their retention.
async fn retention_loop(store: Arc<Store>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let s = store.clone();
        let r = tokio::task::spawn_blocking(move || s.enforce_retention(millrace_stream::now_ms()))
            .await;
        match r {
            Ok(Ok(n)) if n > 0 => {
                tracing::info!(segments = n, root = %store.root().display(), "retention removed old segments")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "retention pass failed"),
            _ => {}
        }
    }
}

/// A `[[delivery]]`: reads the embedded store directly (woken on append), or a Kafka topic,
/// once its stream exists, and on stop flushes its buffers and checkpoints.
fn delivery(
    shared: &Shared,
    config: &Config,
    d: &millrace_delivery::DeliveryConfig,
) -> anyhow::Result<Component> {
    let lake_url = crate::config::lake_url(&shared.data_dir, &d.lake);
    let lake = millrace_lake::Lake::open(&lake_url, &config.lake.s3_options())
        .with_context(|| format!("delivery {}: opening lake {}", d.name, d.lake))?;
    tracing::info!(delivery = %d.name, stream = %d.stream, lake = %lake_url, "delivery running");
    let (shared, cfg) = (shared.clone(), d.clone());
    let s3 = config.lake.s3_options();
    Ok(Component::spawn(
        format!("delivery {}", d.name),
        async move {
            let streams = millrace_io::Streams::Embedded(shared.store.clone());
            if !wait_for_stream(&streams, &cfg.stream, &shared.stop).await {
                return Ok(());
            }
            let group = format!("millrace-delivery-{}", cfg.name);
            let source = streams
                .group_source(&cfg.stream, &group)
                .context("not started")?;
            let delivery =
                millrace_delivery::Delivery::new(cfg, lake, source, &shared.data_dir.state())
                    .and_then(|d| d.with_leases(&s3))
                    .context("not started")?;
            let delivery = Arc::new(delivery);
            shared
                .admin
                .deliveries
                .lock()
                .expect("metrics registry")
                .push(delivery.metrics());
            delivery
                .run(millrace_delivery::RunMode::Forever, shared.stop_flag)
                .await
                .context("stopped")
        },
    ))
}

/// The channels of the Kinesis API (CreateChannel …): one delivery per channel into the lake
/// `[buckets]` maps its bucket to, kept in step with the registry (`crate::channels`).
fn channels(shared: &Shared, config: &Config) -> Component {
    let jobs = crate::channels::ChannelJobs {
        data_dir: shared.data_dir.clone(),
        store: shared.store.clone(),
        channels: shared.admin.gateway.channels.clone(),
        buckets: crate::channels::Buckets::from_config(&shared.data_dir, config),
    };
    let supervisor = crate::supervise::Supervisor::new(jobs, shared.admin.channels.clone());
    Component::spawn("channels", supervisor.run(shared.stop.clone()))
}

/// The delivery streams of the Firehose API (CreateDeliveryStream …): one delivery per
/// stream, from its DirectPut buffer or Kinesis stream into its bucket (`crate::firehose`).
fn delivery_streams(
    shared: &Shared,
    config: &Config,
    firehose: millrace_firehose::Firehose,
) -> Component {
    let (buffers, stop) = (firehose.buffers.clone(), shared.stop.clone());
    let jobs = crate::firehose::FirehoseJobs {
        data_dir: shared.data_dir.clone(),
        firehose,
        buckets: crate::channels::Buckets::from_config(&shared.data_dir, config),
    };
    let supervisor = crate::supervise::Supervisor::new(jobs, shared.admin.delivery_streams.clone());
    Component::spawn("delivery streams", async move {
        let retention = retention_loop(buffers, stop.clone());
        let (served, _) = tokio::join!(supervisor.run(stop), retention);
        served
    })
}

/// A `[[prep]]` job, run when enough new objects land under its inputs.
fn prep(shared: &Shared, p: &crate::pipeline::PrepTrigger) -> Component {
    tracing::info!(job = %p.job.display(), every_objects = p.every_objects, every_secs = p.every_secs, "prep job configured");
    let task = crate::pipeline::prep_loop(
        p.clone(),
        shared.data_dir.root().to_owned(),
        shared.admin.pipeline.clone(),
        shared.stop.clone(),
    );
    let name = p.job.file_stem().unwrap_or(p.job.as_os_str());
    Component::spawn(format!("prep {}", name.to_string_lossy()), async move {
        task.await;
        Ok(())
    })
}

/// A `[[train]]` model, retrained when its dataset grows and promoted through the gate.
fn train(shared: &Shared, t: &crate::pipeline::TrainTrigger) -> Component {
    tracing::info!(model = %t.name, data = %t.data, gate = t.gate, "training configured");
    let task = crate::pipeline::train_loop(
        t.clone(),
        shared.data_dir.root().to_owned(),
        shared.admin.pipeline.clone(),
        shared.stop.clone(),
    );
    Component::spawn(format!("train {}", t.name), async move {
        task.await;
        Ok(())
    })
}

/// A `[[scoring]]`: reads the embedded store (or a Kafka topic) and waits for its stream and
/// its model to exist (the model may be trained after `up` starts). `s3` reaches its leases.
fn scoring(
    shared: &Shared,
    sc: &millrace_serve::score::ScoringConfig,
    s3: millrace_lake::S3Options,
) -> Component {
    let name = sc.name();
    tracing::info!(scoring = %name, stream = %sc.stream, model = %sc.model, to = %sc.to_stream, "scoring configured");
    let (shared, cfg) = (shared.clone(), sc.clone());
    Component::spawn(format!("scoring {name}"), async move {
        let streams = millrace_io::Streams::Embedded(shared.store.clone());
        if !wait_for_stream(&streams, &cfg.stream, &shared.stop).await {
            return Ok(());
        }
        let registry = crate::registry::open(shared.data_dir.root());
        let mut warned = false;
        let scorer = loop {
            let (c, r, s, st) = (
                cfg.clone(),
                registry.clone(),
                millrace_io::Streams::Embedded(shared.store.clone()),
                shared.data_dir.state(),
            );
            let s3 = s3.clone();
            match tokio::task::spawn_blocking(move || {
                millrace_serve::score::Scorer::new(c, r, s, &st, &s3)
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
                Err(_) => return Ok(()),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = shared.stop.cancelled() => return Ok(()),
            }
        };
        let (model, version) = scorer.serving();
        shared
            .admin
            .scorers
            .lock()
            .expect("scorers")
            .push(scorer.clone());
        tracing::info!(scoring = %name, model = %model, version, "scoring running");
        scorer
            .run(millrace_serve::score::RunMode::Forever, shared.stop_flag)
            .await
            .context("stopped")
    })
}

/// The real-time endpoint (--endpoint-model or [endpoint]), bound now; it serves once its
/// models exist, so a pipeline can train the first one after `up` starts.
async fn endpoint(
    shared: &Shared,
    models: Vec<String>,
    addr: SocketAddr,
    limits: ServerLimits,
) -> anyhow::Result<Component> {
    use millrace_serve::endpoint::Endpoint;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the endpoint to {addr}"))?;
    let local = listener.local_addr()?;
    let registry = crate::registry::open(shared.data_dir.root());
    // Already trained: load now and say what is served in the ready line.
    let (r, specs) = (registry.clone(), models.clone());
    let now = tokio::task::spawn_blocking(move || Endpoint::load(r, &specs)).await?;
    match &now {
        Ok(ep) => {
            let serving: Vec<String> = ep
                .serving()
                .into_iter()
                .map(|(n, v)| format!("{n}:v{v}"))
                .collect();
            println!(
                "millrace up: endpoint={}://{local} serving {}",
                shared.scheme(),
                serving.join(", ")
            );
        }
        Err(_) => println!(
            "millrace up: endpoint={}://{local} waiting for model {}",
            shared.scheme(),
            models.join(", ")
        ),
    }
    let (stop, served) = (shared.stop.clone(), shared.admin.endpoint.clone());
    let (auth, tls) = (shared.auth.clone(), shared.tls.clone());
    Ok(Component::spawn("endpoint", async move {
        let mut now = Some(now);
        let ep = loop {
            let attempt = match now.take() {
                Some(r) => r,
                None => {
                    let (r, specs) = (registry.clone(), models.clone());
                    match tokio::task::spawn_blocking(move || Endpoint::load(r, &specs)).await {
                        Ok(r) => r,
                        Err(_) => return Ok(()),
                    }
                }
            };
            match attempt {
                Ok(ep) => break Arc::new(ep),
                Err(e) => tracing::debug!(error = %e, "endpoint waits for its model"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stop.cancelled() => return Ok(()),
            }
        };
        if let Some(auth) = auth {
            ep.set_auth(auth);
        }
        if let Some(tls) = tls {
            ep.set_tls(tls);
        }
        let _ = served.set(ep.clone());
        tracing::info!(addr = %local, serving = ?ep.serving(), "endpoint serving");
        let reloader = ep.spawn_reloader(Duration::from_secs(1));
        let served = ep
            .serve_with(
                listener,
                millrace_serve::endpoint::DEFAULT_MAX_BODY,
                limits,
                stop.cancelled_owned(),
            )
            .await;
        reloader.abort();
        served.context("serving")
    }))
}

/// The admin API (/metrics, /status) over what the other components registered, under the
/// same limits as the other servers.
async fn admin(
    shared: &Shared,
    addr: SocketAddr,
    limits: ServerLimits,
) -> anyhow::Result<Component> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the admin API to {addr}"))?;
    println!(
        "millrace up: admin={}://{}",
        shared.scheme(),
        listener.local_addr()?
    );
    let app = millrace_http::App {
        name: "the admin API",
        router: crate::admin::router(shared.admin.clone(), shared.auth.clone()),
        body_limit: ADMIN_BODY_LIMIT,
        refusal_body: millrace_http::json_refusal,
        authenticated: shared.auth.is_some(),
        tls: shared.tls.clone(),
    };
    let stop = shared.stop.clone();
    Ok(Component::spawn("admin", async move {
        millrace_http::serve(listener, app, limits, stop.cancelled_owned())
            .await
            .context("serving")
    }))
}

/// The web console (`[console]`), when it is enabled and can be served safely: while `[auth]`
/// checks the APIs, its pages need a sign-in with an access key and each one is authorized as
/// the identity's API calls are; without `[auth]`, beyond loopback it needs `--insecure` as the
/// APIs do. The default address taken by another process leaves `up` running without it.
async fn console(
    shared: &Shared,
    config: &Config,
    args: &UpArgs,
    limits: ServerLimits,
) -> anyhow::Result<Option<Component>> {
    if !config.console.enabled {
        return Ok(None);
    }
    let addr = args.console_addr.unwrap_or(config.console.addr);
    if !addr.ip().is_loopback() && !args.insecure && shared.auth.is_none() {
        anyhow::bail!(
            "[console] addr = {addr} is beyond loopback with [auth] mode = \"off\" (no sign-in): \
             turn [auth] on, use a loopback address, or --insecure on a network where everyone \
             may see the data"
        );
    }
    let chosen = args.console_addr.is_some() || addr != crate::config::default_console_addr();
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) if !chosen => {
            eprintln!("millrace up: console off: {addr} is not free ({e}); set [console] addr");
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("binding the console to {addr}")),
    };
    println!(
        "millrace up: console={}://{}",
        shared.scheme(),
        listener.local_addr()?
    );
    let sql = crate::console_sql::SqlTables::new(
        crate::cmd::query::delivery_tables(config, &shared.data_dir),
        &shared.data_dir,
        config.lake.s3_options(),
    );
    let profiles =
        crate::console_profile::Profiles::new(&shared.data_dir, config.lake.s3_options());
    let trainings =
        crate::console_train::Trainings::new(&shared.data_dir, config.lake.s3_options());
    let s3_lakes = crate::console_s3::S3Lakes::new(
        config
            .deliveries
            .iter()
            .map(|d| d.lake.as_str())
            .chain(config.buckets.values().map(String::as_str)),
        config.lake.s3_options(),
    );
    let source = crate::console::ConsoleSource::new(
        Arc::new(shared.admin.clone()),
        shared.data_dir.root(),
        sql,
        profiles,
        trainings,
        s3_lakes,
    );
    let keeper = shared.auth.clone().map(|auth| {
        let gate = crate::console_gate::AuthGate(auth);
        Arc::new(millrace_console::auth::Keeper::new(Arc::new(gate)))
    });
    let app = millrace_http::App {
        name: "the console",
        router: millrace_console::router(Arc::new(source), keeper),
        // Batch prediction uploads a CSV; the console's own routes bound every other body.
        body_limit: millrace_console::predict::MAX_UPLOAD,
        refusal_body: millrace_http::json_refusal,
        authenticated: false,
        tls: shared.tls.clone(),
    };
    let stop = shared.stop.clone();
    Ok(Some(Component::spawn("console", async move {
        millrace_http::serve(listener, app, limits, stop.cancelled_owned())
            .await
            .context("serving")
    })))
}

/// The admin API takes GETs only; a body sent anyway reserves at most this much.
const ADMIN_BODY_LIMIT: usize = 64 * 1024;

pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
}

/// A delivery or scorer may be configured before a producer creates its stream (in the
/// embedded store, or a Kafka topic): wait for it, or for shutdown (then `false`).
async fn wait_for_stream(
    streams: &millrace_io::Streams,
    name: &str,
    stop: &CancellationToken,
) -> bool {
    let mut warned = false;
    loop {
        let problem = match streams.exists(name).await {
            Ok(true) => return true,
            Ok(false) => "waits for its stream to be created".to_owned(),
            Err(e) => format!("cannot reach its stream yet: {e}"),
        };
        if stop.is_cancelled() {
            return false;
        }
        if !warned {
            tracing::warn!(stream = name, "{problem}");
            warned = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.cancelled() => {}
        }
    }
}

/// The key that signs shard iterators, kept in `state/` so iterators survive a restart.
fn iterator_key(data_dir: &DataDir) -> anyhow::Result<[u8; 32]> {
    let dir = data_dir.state();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = data_dir.iterator_key();
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(key);
        }
        tracing::warn!(path = %path.display(), "iterator key has the wrong size; making a new one");
    }
    let key: [u8; 32] = rand::random();
    millrace_common::durable::write_private_file(&path, &key)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}
