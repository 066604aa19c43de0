//! The real-time endpoint: the SageMaker inference container contract (`GET /ping`,
//! `POST /invocations`) for the first model, `POST /models/NAME/invocations` for each, and
//! `GET /metrics`; beside it the SageMaker Runtime API (`POST /endpoints/NAME/…`, see
//! `crate::sagemaker`). A model named without a version follows the registry: a poller swaps in the
//! newly promoted (or newly trained, when none is promoted) version; requests in flight keep the
//! version they started with, so a swap fails nothing. Each loaded version with a training
//! baseline keeps a drift window over the records it scored (`monitor`): on `/metrics`, and
//! saved to `<data-dir>/state/monitor/NAME.json` every few seconds while records arrive.

use std::collections::VecDeque;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use millrace_automl::Task;
use millrace_automl::explain::Detail;
use millrace_automl::model::ModelArtifact;
use millrace_http::ServerLimits;
use millrace_wrangle::frame::Name;
use millrace_wrangle::{Column, Frame, Kind};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::checks::{Expected, Findings, InputChecks};
use crate::error::ServeError;
use crate::input::{self, BodyFormat, Record};
use crate::metrics::{self, ModelMetrics};
use crate::monitor::{DriftOptions, DriftReport, DriftWindow};
use crate::registry::Registry;
use crate::sagemaker::{self, AsyncQueue};

/// SageMaker's real-time payload limit.
pub const DEFAULT_MAX_BODY: usize = 6 * 1024 * 1024;
/// Batches above this many records are scored on a blocking thread, off the async workers.
pub(crate) const INLINE_RECORDS: usize = 64;
/// Versions other than the served ones (SageMaker endpoint names `NAME-vN`) kept loaded.
const PINNED_KEPT: usize = 4;

/// A model ready to score.
pub struct Loaded {
    pub name: String,
    pub version: u32,
    pub model: ModelArtifact,
    fields: Vec<(Name, Kind)>,
    /// The order of CSV rows and value arrays: the training columns without the target.
    pub columns: Vec<String>,
    /// The records this version scored, against its training baseline (`None` for a model
    /// trained before baselines existed).
    pub drift: Option<DriftWindow>,
    /// What the model reads, for the per-record warnings and refusals.
    expected: Expected,
    /// How odd records are treated (refusal share, strict mode).
    pub checks: InputChecks,
}

impl Loaded {
    pub fn new(name: &str, version: u32, model: ModelArtifact) -> Loaded {
        Loaded::with_drift(name, version, model, DriftOptions::default())
    }

    /// A loaded model whose drift window judges by `drift`.
    pub fn with_drift(
        name: &str,
        version: u32,
        model: ModelArtifact,
        drift: DriftOptions,
    ) -> Loaded {
        let fields = model
            .input
            .iter()
            .map(|f| (Name::from(f.name.as_str()), f.kind))
            .collect();
        let columns = model
            .input
            .iter()
            .filter(|f| f.name != model.target)
            .map(|f| f.name.clone())
            .collect();
        Loaded {
            name: name.to_owned(),
            version,
            expected: Expected::for_model(&model),
            checks: InputChecks::default(),
            drift: DriftWindow::for_model(name, version, &model, drift),
            model,
            fields,
            columns,
        }
    }

    /// Scores like [`Loaded::score`], then adds the records to the drift window.
    pub fn score_observed(
        &self,
        records: &[Record],
        explain: Option<Detail>,
    ) -> Result<Vec<Value>, ServeError> {
        let out = self.score(records, explain)?;
        if let Some(w) = &self.drift {
            w.observe(records);
        }
        Ok(out)
    }

    /// The same model under `checks` (how odd records are treated).
    pub fn checked(mut self, checks: InputChecks) -> Loaded {
        self.checks = checks;
        self
    }

    /// The records as one frame of the model's input columns.
    fn frame(&self, records: &[Record]) -> Frame {
        let mut cols: Vec<Column> = self
            .fields
            .iter()
            .map(|(_, k)| match k {
                Kind::Number => Column::Num(Vec::with_capacity(records.len())),
                Kind::String => Column::Str(Vec::with_capacity(records.len())),
            })
            .collect();
        for r in records {
            let one = Frame::from_record(r, &self.fields);
            for ((name, _), col) in self.fields.iter().zip(cols.iter_mut()) {
                match (col, one.column(name)) {
                    (Column::Num(v), Some(Column::Num(x))) => v.push(x[0]),
                    (Column::Str(v), Some(Column::Str(x))) => v.push(x[0].clone()),
                    (Column::Num(v), _) => v.push(f64::NAN),
                    (Column::Str(v), _) => v.push(None),
                }
            }
        }
        let mut f = Frame::new(records.len());
        for ((name, _), col) in self.fields.iter().zip(cols) {
            f.set(name.clone(), col);
        }
        f
    }

    /// One prediction object per record, with Autopilot's keys; with `explain`, each has an
    /// `explanation` (`base_value`, `margin`, `space`, `contributions` largest first).
    pub fn score(
        &self,
        records: &[Record],
        explain: Option<Detail>,
    ) -> Result<Vec<Value>, ServeError> {
        let findings: Vec<Findings> = records
            .iter()
            .map(|r| self.expected.check(r, self.checks))
            .collect();
        if let Some((i, why)) = findings
            .iter()
            .enumerate()
            .find_map(|(i, f)| f.refused.as_ref().map(|w| (i, w)))
        {
            return Err(ServeError::Invalid(format!("record {i}: {why}")));
        }
        let frame = self.frame(records);
        let (p, explanations) = match explain {
            Some(_) => {
                let (p, e) = self.model.explain(&frame)?;
                (p, Some(e))
            }
            None => (self.model.predict(&frame)?, None),
        };
        let labels = p.labels(&self.model);
        let classes = self.model.task.classes();
        Ok((0..p.rows)
            .map(|i| {
                let row = &p.values[i * p.width..(i + 1) * p.width];
                let mut v = self.prediction(&labels[i], row, &classes);
                if let (Some(e), Some(detail)) = (&explanations, explain) {
                    v["explanation"] = e[i].to_json(&self.model.task, detail);
                }
                if !findings[i].warnings.is_empty() {
                    v["warnings"] = json!(findings[i].warnings);
                }
                v
            })
            .collect())
    }

    /// One record's prediction object.
    fn prediction(&self, label: &str, row: &[f64], classes: &[String]) -> Value {
        match &self.model.task {
            Task::Regression => json!({ "prediction": row[0] }),
            Task::Binary { .. } => json!({
                "predicted_label": label,
                "probability": row[0],
                "probabilities": [1.0 - row[0], row[0]],
                "labels": classes,
            }),
            Task::Multiclass { .. } => json!({
                "predicted_label": label,
                "probability": row.iter().copied().fold(0.0, f64::max),
                "probabilities": row,
                "labels": classes,
            }),
        }
    }
}

struct Slot {
    name: String,
    /// Follows the registry (a bare name); a pinned `NAME:vN` never swaps.
    follow: bool,
    current: ArcSwap<Loaded>,
    metrics: ModelMetrics,
}

/// Settings of an endpoint beyond the models it serves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointOptions {
    /// How each model's drift window judges drift.
    pub drift: DriftOptions,
    /// How often drift reports with new records are saved to `state/monitor/NAME.json`.
    pub drift_save_every: Duration,
    /// How odd records are treated: the share of inputs a record may miss, strict mode.
    pub checks: InputChecks,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions {
            drift: DriftOptions::default(),
            drift_save_every: Duration::from_secs(5),
            checks: InputChecks::default(),
        }
    }
}

pub struct Endpoint {
    registry: Registry,
    slots: Vec<Slot>,
    options: EndpointOptions,
    /// Largest body accepted (set by `router`).
    max_body: std::sync::atomic::AtomicUsize,
    /// Versions asked for by number that no slot serves now, most recently used last.
    pinned: Mutex<VecDeque<Arc<Loaded>>>,
    /// The SageMaker API's asynchronous invocations waiting or running.
    queue: AsyncQueue,
    /// Identities and policies (`[auth]`), set once before serving; unset: no checks.
    auth: std::sync::OnceLock<Arc<millrace_auth::Auth>>,
    /// HTTPS, set once before serving; unset: plain HTTP.
    tls: std::sync::OnceLock<millrace_http::Tls>,
}

/// What one invocation scores with: the served model it counts under, and the version.
pub(crate) struct Invoked {
    pub slot: usize,
    pub loaded: Arc<Loaded>,
}

impl Endpoint {
    /// Loads each model spec (`NAME` or `NAME:vN`) from the registry.
    pub fn load(registry: Registry, specs: &[String]) -> Result<Endpoint, ServeError> {
        Endpoint::load_with(registry, specs, EndpointOptions::default())
    }

    /// [`Endpoint::load`] with settings.
    pub fn load_with(
        registry: Registry,
        specs: &[String],
        options: EndpointOptions,
    ) -> Result<Endpoint, ServeError> {
        let mut slots: Vec<Slot> = Vec::new();
        for spec in specs {
            let (model, version) = registry.load(spec)?;
            let name = spec.split(':').next().unwrap_or(spec).to_owned();
            let name = if model.name.is_empty() {
                name
            } else {
                model.name.clone()
            };
            if slots.iter().any(|s| s.name == name) {
                return Err(ServeError::Invalid(format!(
                    "model {name} is named twice; serve one version of each model"
                )));
            }
            let metrics = ModelMetrics::default();
            metrics
                .version
                .store(u64::from(version), std::sync::atomic::Ordering::Relaxed);
            slots.push(Slot {
                follow: !spec.contains(':') && !std::path::Path::new(spec).exists(),
                current: ArcSwap::from_pointee(
                    Loaded::with_drift(&name, version, model, options.drift)
                        .checked(options.checks),
                ),
                name,
                metrics,
            });
        }
        if slots.is_empty() {
            return Err(ServeError::Invalid("no model to serve".into()));
        }
        Ok(Endpoint {
            registry,
            slots,
            options,
            max_body: std::sync::atomic::AtomicUsize::new(DEFAULT_MAX_BODY),
            pinned: Mutex::new(VecDeque::new()),
            queue: AsyncQueue::default(),
            auth: std::sync::OnceLock::new(),
            tls: std::sync::OnceLock::new(),
        })
    }

    /// Serves HTTPS with `tls`. Only the first call takes effect.
    pub fn set_tls(&self, tls: millrace_http::Tls) {
        let _ = self.tls.set(tls);
    }

    /// Checks every request (but `/ping`) with `auth`: SigV4 for `sagemaker` and the
    /// principal's policies (see `crate::auth`). Only the first call takes effect.
    pub fn set_auth(&self, auth: Arc<millrace_auth::Auth>) {
        let _ = self.auth.set(auth);
    }

    pub(crate) fn auth(&self) -> Option<&millrace_auth::Auth> {
        self.auth.get().map(|a| a.as_ref())
    }

    /// The index of the served model named `name`.
    pub(crate) fn slot_named(&self, name: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.name == name)
    }

    /// The names of the served models, in the order they were given.
    pub(crate) fn slot_names(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.name.clone()).collect()
    }

    /// The largest body a request may send.
    pub(crate) fn max_body(&self) -> usize {
        self.max_body.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The lake the registry lives in (`<data-dir>/lake`).
    pub(crate) fn lake(&self) -> &FsPath {
        self.registry.lake()
    }

    pub(crate) fn queue(&self) -> &AsyncQueue {
        &self.queue
    }

    /// Counts one request against the served model `slot`.
    pub(crate) fn observe(&self, slot: usize, status: u16, records: usize, started: Instant) {
        self.slots[slot]
            .metrics
            .observe(status, records, started.elapsed().as_secs_f64());
    }

    /// What an invocation of the served model `slot` scores with: the version served now (it
    /// keeps it even if a new one is swapped in meanwhile), or version `version` of the model,
    /// loaded from the registry off the async threads and kept among the last few asked for.
    pub(crate) async fn invoked(
        self: &Arc<Self>,
        slot: usize,
        version: Option<u32>,
    ) -> Result<Invoked, ServeError> {
        let current = self.slots[slot].current.load_full();
        let loaded = match version {
            None => current,
            Some(v) if v == current.version => current,
            Some(v) => self.pinned_version(slot, v).await?,
        };
        Ok(Invoked { slot, loaded })
    }

    async fn pinned_version(
        self: &Arc<Self>,
        slot: usize,
        version: u32,
    ) -> Result<Arc<Loaded>, ServeError> {
        let name = self.slots[slot].name.clone();
        if let Some(hit) = self.take_pinned(&name, version) {
            return Ok(hit);
        }
        let ep = Arc::clone(self);
        let spec = format!("{name}:v{version}");
        let (model, version) = tokio::task::spawn_blocking(move || ep.registry.load(&spec))
            .await
            .map_err(|e| ServeError::Internal(format!("loading {name}:v{version}: {e}")))??;
        let loaded = Arc::new(
            Loaded::with_drift(&name, version, model, self.options.drift)
                .checked(self.options.checks),
        );
        self.keep_pinned(Arc::clone(&loaded));
        Ok(loaded)
    }

    /// A kept version, marked as the most recently used.
    fn take_pinned(&self, name: &str, version: u32) -> Option<Arc<Loaded>> {
        let mut kept = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        let i = kept
            .iter()
            .position(|l| l.name == name && l.version == version)?;
        let hit = kept.remove(i)?;
        kept.push_back(Arc::clone(&hit));
        Some(hit)
    }

    fn keep_pinned(&self, loaded: Arc<Loaded>) {
        let mut kept = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|l| !(l.name == loaded.name && l.version == loaded.version));
        kept.push_back(loaded);
        while kept.len() > PINNED_KEPT {
            kept.pop_front();
        }
    }

    /// (name, version) of every model served now.
    pub fn serving(&self) -> Vec<(String, u32)> {
        self.slots
            .iter()
            .map(|s| (s.name.clone(), s.current.load().version))
            .collect()
    }

    /// Checks the registry once; swaps in versions that changed. Returns what was swapped.
    pub fn reload(&self) -> Vec<(String, u32)> {
        let mut swapped = Vec::new();
        for s in self.slots.iter().filter(|s| s.follow) {
            let Ok(v) = self.registry.current(&s.name) else {
                continue;
            };
            if v == s.current.load().version {
                continue;
            }
            match self.registry.load(&format!("{}:v{v}", s.name)) {
                Ok((model, version)) => {
                    // A new version starts a fresh drift window.
                    s.current.store(Arc::new(
                        Loaded::with_drift(&s.name, version, model, self.options.drift)
                            .checked(self.options.checks),
                    ));
                    s.metrics
                        .version
                        .store(u64::from(version), std::sync::atomic::Ordering::Relaxed);
                    tracing::info!(model = %s.name, version, "swapped in");
                    swapped.push((s.name.clone(), version));
                }
                Err(e) => {
                    tracing::warn!(model = %s.name, error = %e, "cannot load the new version; still serving the old one")
                }
            }
        }
        swapped
    }

    /// The drift report of every served model that has a baseline, as of now.
    pub fn drift_reports(&self) -> Vec<DriftReport> {
        self.slots
            .iter()
            .filter_map(|s| s.current.load().drift.as_ref().map(|w| w.report()))
            .collect()
    }

    /// Saves the drift report of every model whose window got records since the last save to
    /// `<data-dir>/state/monitor/NAME.json`; returns how many were saved. Failures are logged:
    /// monitoring never stops serving.
    pub fn save_drift_reports(&self) -> usize {
        let data_dir = self.registry.data_dir();
        let mut saved = 0;
        for s in &self.slots {
            let loaded = s.current.load();
            let Some(w) = loaded.drift.as_ref().filter(|w| w.take_changed()) else {
                continue;
            };
            let report = w.report();
            match report.save(data_dir, &s.name) {
                Ok(_) => {
                    saved += 1;
                    if report.drifting {
                        tracing::warn!(model = %s.name, "{}", report.summary());
                    }
                }
                Err(e) => {
                    tracing::warn!(model = %s.name, error = %e, "cannot save the drift report")
                }
            }
        }
        saved
    }

    /// Polls the registry every `every`, and saves drift reports every
    /// `EndpointOptions::drift_save_every`, on a blocking thread (both touch files).
    pub fn spawn_reloader(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let ep = Arc::clone(self);
        let save_every = self.options.drift_save_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.min(save_every));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let (mut reloaded, mut saved) = (Instant::now(), Instant::now());
            loop {
                tick.tick().await;
                let reload = reloaded.elapsed() >= every;
                let save = saved.elapsed() >= save_every;
                if reload {
                    reloaded = Instant::now();
                }
                if save {
                    saved = Instant::now();
                }
                let ep = Arc::clone(&ep);
                let _ = tokio::task::spawn_blocking(move || {
                    if reload {
                        ep.reload();
                    }
                    if save {
                        ep.save_drift_reports();
                    }
                })
                .await;
            }
        })
    }

    pub fn router(self: Arc<Self>, max_body: usize) -> Router {
        self.max_body
            .store(max_body, std::sync::atomic::Ordering::Relaxed);
        Router::new()
            .route("/ping", get(ping))
            .route("/invocations", post(invoke_default))
            .route("/models/{name}/invocations", post(invoke_named))
            .route("/metrics", get(metrics_text))
            .merge(sagemaker::routes())
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                crate::auth::check,
            ))
            // The handler enforces the limit itself (see `read_body`).
            .layer(DefaultBodyLimit::disable())
            .with_state(self)
    }

    /// Serves under the default [`ServerLimits`] until `shutdown` resolves, then finishes the
    /// requests in flight.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        max_body: usize,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_with(listener, max_body, ServerLimits::default(), shutdown)
            .await
    }

    /// As [`Endpoint::serve`], under `limits` (connections, timeouts, allowed hosts, bytes in
    /// flight); refusals are JSON (`{"error": …}`) like the endpoint's own errors, or
    /// SageMaker's error shape to the AWS SDKs ([`crate::error::endpoint_refusal`]).
    pub async fn serve_with(
        self: Arc<Self>,
        listener: TcpListener,
        max_body: usize,
        limits: ServerLimits,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let authenticated = self.auth.get().is_some();
        let tls = self.tls.get().cloned();
        let app = millrace_http::App {
            name: "the endpoint",
            router: self.router(max_body),
            body_limit: max_body,
            refusal_body: crate::error::endpoint_refusal,
            authenticated,
            tls,
        };
        millrace_http::serve(listener, app, limits, shutdown).await
    }
}

async fn ping(State(ep): State<Arc<Endpoint>>) -> Response {
    let serving: Vec<String> = ep
        .serving()
        .into_iter()
        .map(|(n, v)| format!("{n}:v{v}"))
        .collect();
    (StatusCode::OK, serving.join(" ")).into_response()
}

async fn metrics_text(State(ep): State<Arc<Endpoint>>) -> Response {
    let mut text = metrics::render(ep.slots.iter().map(|s| (s.name.as_str(), &s.metrics)));
    let drift: Vec<(&str, DriftReport)> = ep
        .slots
        .iter()
        .filter_map(|s| {
            let loaded = s.current.load();
            let report = loaded.drift.as_ref()?.report();
            Some((s.name.as_str(), report))
        })
        .collect();
    text.push_str(&metrics::render_drift(drift.iter().map(|(n, r)| (*n, r))));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

async fn invoke_default(
    State(ep): State<Arc<Endpoint>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    invoke(ep, 0, query, headers, body).await
}

async fn invoke_named(
    State(ep): State<Arc<Endpoint>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match ep.slots.iter().position(|s| s.name == name) {
        Some(i) => invoke(ep, i, query, headers, body).await,
        None => ServeError::NotServed {
            serving: ep.slots.iter().map(|s| s.name.clone()).collect(),
            name,
        }
        .into_response(),
    }
}

fn wants_csv(headers: &HeaderMap) -> bool {
    accepts_csv(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
}

/// Whether an `Accept` value asks for `label,probability` rows rather than JSON.
pub(crate) fn accepts_csv(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("text/csv"))
}

/// Predictions as `/invocations` answers them, with their content type: `label,probability`
/// rows when `csv`, else `{"predictions": [...]}`.
pub(crate) fn encode_predictions(predictions: &[Value], csv: bool) -> (&'static str, Vec<u8>) {
    if csv {
        ("text/csv", to_csv(predictions).into_bytes())
    } else {
        (
            "application/json",
            json!({ "predictions": predictions })
                .to_string()
                .into_bytes(),
        )
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `label,probability` rows (or the value of a regression), one per prediction.
pub(crate) fn to_csv(predictions: &[Value]) -> String {
    let mut out = String::new();
    for p in predictions {
        let line = match (
            p.get("predicted_label"),
            p.get("probability"),
            p.get("prediction"),
        ) {
            (Some(l), Some(pr), _) => {
                format!("{},{}", csv_field(l.as_str().unwrap_or_default()), pr)
            }
            (_, _, Some(v)) => v.to_string(),
            _ => String::new(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The body, or `PayloadTooLarge`: a declared Content-Length over the limit is refused before
/// a byte is read (a client sending `Expect: 100-continue` never uploads it), and a body
/// without one is cut off at the limit. A declared body at most twice the limit, from a client
/// that did not ask `Expect: 100-continue`, is read and dropped first: that client is already
/// sending it and would otherwise meet a closed socket (a broken pipe) instead of the answer.
pub(crate) async fn read_body(
    ep: &Endpoint,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ServeError> {
    let max = ep.max_body();
    let too_large = || ServeError::PayloadTooLarge { limit: max };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(n) = declared
        && n > max
    {
        let waits_for_continue = headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if !waits_for_continue && n <= max.saturating_mul(2) {
            let _ = axum::body::to_bytes(body, n).await;
        }
        return Err(too_large());
    }
    axum::body::to_bytes(body, max)
        .await
        .map_err(|_| too_large())
}

/// `explain=K|all` in a query string (`?explain=3`) or in SageMaker's custom attributes
/// (`explain=3`, among others separated by `;` or `,`).
pub(crate) fn explain_param(text: Option<&str>) -> Result<Option<Detail>, ServeError> {
    let Some(text) = text else { return Ok(None) };
    for part in text.split(['&', ';', ',']) {
        if let Some(v) = part.trim().strip_prefix("explain=") {
            return v.parse().map(Some).map_err(ServeError::Invalid);
        }
    }
    Ok(None)
}

async fn invoke(
    ep: Arc<Endpoint>,
    slot: usize,
    query: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let s = &ep.slots[slot];
    let explain = match explain_param(query.as_deref()) {
        Ok(e) => e,
        Err(e) => {
            s.metrics
                .observe(e.status().as_u16(), 0, started.elapsed().as_secs_f64());
            return e.into_response();
        }
    };
    let body = match read_body(&ep, &headers, body).await {
        Ok(b) => b,
        Err(e) => {
            s.metrics
                .observe(e.status().as_u16(), 0, started.elapsed().as_secs_f64());
            return e.into_response();
        }
    };
    // This request keeps this version even if a new one is swapped in meanwhile.
    let loaded = s.current.load_full();
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let (response, status, n) = match score_body(&loaded, ct, &body, explain).await {
        Ok((predictions, n)) => {
            let (content_type, body) = encode_predictions(&predictions, wants_csv(&headers));
            let resp = ([(header::CONTENT_TYPE, content_type)], body).into_response();
            (resp, 200, n)
        }
        Err((e, n)) => {
            let status = e.status().as_u16();
            (e.into_response(), status, n)
        }
    };
    s.metrics
        .observe(status, n, started.elapsed().as_secs_f64());
    let mut response = response;
    if let Ok(v) = format!("{}:v{}", loaded.name, loaded.version).parse() {
        response.headers_mut().insert("x-millrace-model", v);
    }
    response
}

/// Parses and scores a body: the predictions and the number of records, or the error and the
/// records it got to. A panic while scoring is an internal error, never a registry one.
pub(crate) async fn score_body(
    loaded: &Arc<Loaded>,
    content_type: Option<&str>,
    body: &[u8],
    explain: Option<Detail>,
) -> Result<(Vec<Value>, usize), (ServeError, usize)> {
    let records = parse_body(loaded, content_type, body).map_err(|e| (e, 0))?;
    let n = records.len();
    score_records(loaded, records, explain)
        .await
        .map(|p| (p, n))
        .map_err(|e| (e, n))
}

/// A body as records in the model's columns, in the format its `Content-Type` names.
pub(crate) fn parse_body(
    loaded: &Loaded,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<Record>, ServeError> {
    input::format_of(content_type)
        .and_then(|f: BodyFormat| Ok(input::parse(f, body, &loaded.columns)?))
}

/// Scores records (and observes them for drift): inline when few, else on a blocking thread.
pub(crate) async fn score_records(
    loaded: &Arc<Loaded>,
    records: Vec<Record>,
    explain: Option<Detail>,
) -> Result<Vec<Value>, ServeError> {
    if records.len() <= INLINE_RECORDS {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            loaded.score_observed(&records, explain)
        }))
        .unwrap_or_else(|panic| Err(scoring_panicked(panic_text(panic.as_ref()))))
    } else {
        let l = Arc::clone(loaded);
        tokio::task::spawn_blocking(move || l.score_observed(&records, explain))
            .await
            .unwrap_or_else(|e| Err(scoring_panicked(e.to_string())))
    }
}

fn scoring_panicked(what: String) -> ServeError {
    ServeError::Internal(format!("scoring failed: {what}"))
}

/// The message a panic carried, worded as a failed task's.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    match message {
        Some(m) => format!("panicked with message {m:?}"),
        None => "panicked".to_owned(),
    }
}
