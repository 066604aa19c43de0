//! The console's view of a running `up`: the admin API's status document, the stream store,
//! the lake folder and the model registry, behind [`millrace_console::Source`]. Predictions
//! run the code the endpoint runs (one record) and `millrace predict` runs (a CSV file).

use std::collections::VecDeque;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use millrace_automl::baseline::Bins;
use millrace_automl::explain::Detail;
use millrace_console::{
    Download, Drift, DriftPoint, Input, InputKind, LakeEntry, ModelSummary, Preview, ProfileInfo,
    QueryTable, Record, ShardInfo, SourceError, SqlQuery, StreamInfo, TableInfo, TrainRequest,
    TrainingInfo, VersionSummary,
};
use millrace_serve::ServeError;
use millrace_serve::endpoint::Loaded;
use millrace_serve::monitor::DriftReport;
use millrace_serve::registry::Registry;

use crate::admin::Admin;

/// Bytes one record-browser read may return at most.
const TAIL_BYTES: usize = 16 << 20;
/// Model versions the what-if form keeps loaded (each keystroke scores one record).
const KEPT_MODELS: usize = 4;

pub struct ConsoleSource {
    pub admin: Arc<Admin>,
    /// The data dir (batch predictions run as `millrace predict` does there).
    pub data_dir: PathBuf,
    /// The data dir's lake folder.
    pub lake: PathBuf,
    pub registry: Registry,
    /// Versions loaded for what-if predictions, most recently used last.
    pub loaded: Mutex<VecDeque<Arc<Loaded>>>,
    /// What the SQL box reads.
    pub sql: crate::console_sql::SqlTables,
    /// Data-quality reports made from the console.
    pub profiles: crate::console_profile::Profiles,
    /// Trainings started from the console.
    pub trainings: crate::console_train::Trainings,
    /// The S3 lakes the configuration delivers into, browsed read-only.
    pub s3_lakes: crate::console_s3::S3Lakes,
}

impl ConsoleSource {
    pub fn new(
        admin: Arc<Admin>,
        data_dir: &Path,
        sql: crate::console_sql::SqlTables,
        profiles: crate::console_profile::Profiles,
        trainings: crate::console_train::Trainings,
        s3_lakes: crate::console_s3::S3Lakes,
    ) -> ConsoleSource {
        let dirs = millrace_common::layout::DataDir::new(data_dir);
        ConsoleSource {
            sql,
            profiles,
            trainings,
            s3_lakes,
            admin,
            data_dir: data_dir.to_path_buf(),
            lake: dirs.lake(),
            registry: crate::registry::open(data_dir),
            loaded: Mutex::new(VecDeque::new()),
        }
    }

    /// `name:vN`, loaded once and kept among the last [`KEPT_MODELS`] used.
    fn load(&self, name: &str, version: u32) -> Result<Arc<Loaded>, SourceError> {
        let mut kept = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = kept
            .iter()
            .position(|l| l.name == name && l.version == version)
        {
            let l = kept.remove(at).expect("found");
            kept.push_back(l.clone());
            return Ok(l);
        }
        let (model, v) = self
            .registry
            .load(&format!("{name}:v{version}"))
            .map_err(serve_error)?;
        let l = Arc::new(Loaded::new(name, v, model));
        kept.push_back(l.clone());
        if kept.len() > KEPT_MODELS {
            kept.pop_front();
        }
        Ok(l)
    }
}

/// A registry or scoring error as the console shows it: the client's mistakes apart.
fn serve_error(e: ServeError) -> SourceError {
    match e {
        ServeError::ModelNotFound { .. }
        | ServeError::VersionNotFound { .. }
        | ServeError::InvalidName { .. }
        | ServeError::InvalidSpec { .. } => SourceError::NotFound(e.to_string()),
        ServeError::NoRollback { .. }
        | ServeError::Invalid(_)
        | ServeError::BadInput(_)
        | ServeError::RegistryBusy { .. } => SourceError::Invalid(e.to_string()),
        e => SourceError::Failed(e.to_string()),
    }
}

/// Numbers a batch prediction's temporary files.
static UPLOADS: AtomicU64 = AtomicU64::new(0);

impl millrace_console::Source for ConsoleSource {
    fn status(&self) -> serde_json::Value {
        crate::admin::status_json(&self.admin)
    }

    fn streams(&self) -> Vec<StreamInfo> {
        let store = &self.admin.store;
        store
            .list()
            .iter()
            .filter_map(|s| store.stream(&s.name).ok())
            .map(|h| {
                let rate = self.admin.rates.rate(&h.meta().name);
                StreamInfo {
                    in_per_s: rate.map(|r| r.r#in),
                    out_per_s: rate.map(|r| r.out),
                    ..info(&h)
                }
            })
            .collect()
    }

    fn tail(&self, stream: &str, shard: &str, limit: usize) -> Result<Vec<Record>, SourceError> {
        let h = self
            .admin
            .store
            .stream(stream)
            .map_err(|_| SourceError::NotFound(format!("no stream named {stream:?}")))?;
        let sh = h.shard_by_id(shard).map_err(|_| {
            SourceError::NotFound(format!("stream {stream:?} has no shard {shard:?}"))
        })?;
        let from = sh.tip().saturating_sub(limit as u64).max(sh.trim_horizon());
        let batch = sh
            .read(from, limit, TAIL_BYTES)
            .map_err(|e| SourceError::Failed(format!("reading {shard}: {e}")))?;
        Ok(batch
            .records
            .into_iter()
            .map(|r| Record {
                sequence: h.sequence(sh.index(), r.counter).to_string(),
                arrival_ms: r.arrival_ms,
                partition_key: r.partition_key,
                data: r.data.to_vec(),
            })
            .collect())
    }

    fn lake_list(&self, prefix: &str) -> Result<Vec<LakeEntry>, SourceError> {
        if prefix.starts_with("s3://") {
            return tokio::runtime::Handle::current().block_on(self.s3_lakes.list(prefix));
        }
        let dir = inside(&self.lake, prefix)?;
        if !dir.is_dir() {
            return if prefix.is_empty() {
                Ok(self.s3_lakes.root_entries()) // no local lake yet
            } else {
                Err(SourceError::NotFound(format!(
                    "no folder {prefix:?} in the lake"
                )))
            };
        }
        let read = std::fs::read_dir(&dir)
            .map_err(|e| SourceError::Failed(format!("listing {prefix:?}: {e}")))?;
        let base = prefix.trim_matches('/');
        let mut out: Vec<LakeEntry> = read
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let meta = e.metadata().ok()?;
                let folder = meta.is_dir();
                let key = match (base.is_empty(), folder) {
                    (true, true) => format!("{name}/"),
                    (true, false) => name.clone(),
                    (false, true) => format!("{base}/{name}/"),
                    (false, false) => format!("{base}/{name}"),
                };
                let modified_ms = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as i64);
                Some(LakeEntry {
                    name,
                    key,
                    folder,
                    bytes: if folder { 0 } else { meta.len() },
                    modified_ms,
                })
            })
            .collect();
        out.sort_by(|a, b| b.folder.cmp(&a.folder).then(a.name.cmp(&b.name)));
        if prefix.is_empty() {
            out.splice(0..0, self.s3_lakes.root_entries());
        }
        Ok(out)
    }

    fn lake_preview(&self, key: &str, rows: usize) -> Result<Preview, SourceError> {
        if key.starts_with("s3://") {
            return tokio::runtime::Handle::current().block_on(self.s3_lakes.preview(key, rows));
        }
        let path = inside(&self.lake, key)?;
        if !path.is_file() {
            return Err(SourceError::NotFound(format!(
                "no object {key:?} in the lake"
            )));
        }
        crate::console_preview::preview(&path, rows)
            .map_err(|e| SourceError::Failed(format!("reading {key:?}: {e:#}")))
    }

    fn models(&self) -> Result<Vec<ModelSummary>, SourceError> {
        let models = self
            .registry
            .list()
            .map_err(|e| SourceError::Failed(format!("reading the model registry: {e}")))?;
        Ok(models
            .into_iter()
            .map(|m| ModelSummary {
                name: m.name,
                production: m.production,
                versions: m
                    .versions
                    .into_iter()
                    .map(|v| VersionSummary {
                        version: v.version,
                        stage: v.stage.name().to_owned(),
                        created_ms: v.created_ms,
                        headline: v.headline,
                    })
                    .collect(),
            })
            .collect())
    }

    fn model_metrics(&self, name: &str, version: u32) -> Result<serde_json::Value, SourceError> {
        Registry::check_name(name).map_err(|e| SourceError::NotFound(e.to_string()))?;
        let text = self
            .registry
            .version_file(name, version, "metrics.json")
            .map_err(|e| {
                SourceError::NotFound(format!(
                    "{name}:v{version} has no readable metrics.json: {e}"
                ))
            })?
            .ok_or_else(|| {
                SourceError::NotFound(format!("{name}:v{version} has no metrics.json"))
            })?;
        serde_json::from_slice(&text)
            .map_err(|e| SourceError::Failed(format!("{name}:v{version} metrics.json: {e}")))
    }

    fn model_inputs(&self, name: &str, version: u32) -> Result<Vec<Input>, SourceError> {
        let loaded = self.load(name, version)?;
        let model = &loaded.model;
        let baseline = model.baseline.as_ref();
        Ok(loaded
            .columns
            .iter()
            .filter(|c| !model.id_columns.contains(c))
            .map(|c| {
                let spec = model.input.iter().find(|f| &f.name == c);
                let seen = baseline.and_then(|b| b.features.iter().find(|f| &f.name == c));
                let kind = match seen.map(|f| (&f.bins, f)) {
                    Some((Bins::Categorical { categories }, _)) => InputKind::Category {
                        choices: categories.clone(),
                    },
                    Some((Bins::Numeric { edges }, f)) => InputKind::Number {
                        range: f.range,
                        // The fifth decile edge, or the middle one when values repeat.
                        median: edges.get(4).or(edges.get(edges.len() / 2)).copied(),
                    },
                    None => match spec.map(|f| f.kind) {
                        Some(millrace_wrangle::Kind::String) => InputKind::Category {
                            choices: Vec::new(),
                        },
                        _ => InputKind::Number {
                            range: None,
                            median: None,
                        },
                    },
                };
                Input {
                    name: c.clone(),
                    kind,
                }
            })
            .collect())
    }

    fn predict_one(
        &self,
        name: &str,
        version: u32,
        record: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Value, SourceError> {
        let loaded = self.load(name, version)?;
        let mut out = loaded
            .score(std::slice::from_ref(record), Some(Detail::All))
            .map_err(serve_error)?;
        out.pop()
            .ok_or_else(|| SourceError::Failed("the model returned no prediction".into()))
    }

    fn predict_csv(&self, name: &str, version: u32, csv: Vec<u8>) -> Result<Vec<u8>, SourceError> {
        let dir = millrace_common::layout::DataDir::new(&self.data_dir)
            .state()
            .join("console");
        std::fs::create_dir_all(&dir)
            .map_err(|e| SourceError::Failed(format!("creating {}: {e}", dir.display())))?;
        let n = UPLOADS.fetch_add(1, Ordering::Relaxed);
        let stem = format!("upload-{}-{n}", std::process::id());
        let (input, output) = (
            dir.join(format!("{stem}.csv")),
            dir.join(format!("{stem}-out.csv")),
        );
        let result = (|| {
            std::fs::write(&input, &csv)
                .map_err(|e| SourceError::Failed(format!("saving the upload: {e}")))?;
            let args = crate::cmd::predict::PredictArgs::for_files(
                &format!("{name}:v{version}"),
                &input,
                &output,
            )
            .map_err(|e| SourceError::Failed(format!("{e:#}")))?;
            tokio::runtime::Handle::current()
                .block_on(crate::cmd::predict::run(&self.data_dir, args))
                .map_err(|e| SourceError::Invalid(format!("{e:#}")))?;
            std::fs::read(&output)
                .map_err(|e| SourceError::Failed(format!("reading the predictions: {e}")))
        })();
        let _ = std::fs::remove_file(&input);
        let _ = std::fs::remove_file(&output);
        result
    }

    fn promote(&self, name: &str, version: u32) -> Result<Option<u32>, SourceError> {
        self.registry.promote(name, version).map_err(serve_error)
    }

    fn rollback(&self, name: &str) -> Result<u32, SourceError> {
        self.registry.rollback(name).map_err(serve_error)
    }

    fn tables(&self) -> Vec<TableInfo> {
        self.sql.infos()
    }

    fn query(&self, q: &SqlQuery) -> Result<QueryTable, SourceError> {
        tokio::runtime::Handle::current()
            .block_on(self.sql.run(q))?
            .table()
    }

    fn query_download(&self, q: &SqlQuery, format: Download) -> Result<Vec<u8>, SourceError> {
        tokio::runtime::Handle::current()
            .block_on(self.sql.run(q))?
            .file(format)
    }

    fn profiles(&self) -> Result<Vec<ProfileInfo>, SourceError> {
        self.profiles.list()
    }

    fn profile_columns(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let path = self.lake_folder(prefix)?;
        tokio::runtime::Handle::current().block_on(crate::console_sql::columns(&path))
    }

    fn start_profile(&self, prefix: &str, target: Option<&str>) -> Result<String, SourceError> {
        let path = self.lake_folder(prefix)?;
        if let Some(t) = target {
            let columns =
                tokio::runtime::Handle::current().block_on(crate::console_sql::columns(&path))?;
            if !columns.iter().any(|c| c == t) {
                return Err(SourceError::Invalid(format!(
                    "{prefix} has no column {t:?}; its columns: {}",
                    columns.join(", ")
                )));
            }
        }
        self.profiles.start(prefix, path, target)
    }

    fn profile(&self, id: &str) -> Result<ProfileInfo, SourceError> {
        self.profiles.get(id)
    }

    fn profile_file(&self, id: &str, name: &str) -> Result<Vec<u8>, SourceError> {
        self.profiles.file(id, name)
    }

    fn trainings(&self) -> Result<Vec<TrainingInfo>, SourceError> {
        self.trainings.list()
    }

    fn start_training(&self, request: &TrainRequest) -> Result<String, SourceError> {
        let path = self.lake_folder(&request.dataset)?;
        let columns =
            tokio::runtime::Handle::current().block_on(crate::console_sql::columns(&path))?;
        self.trainings.start(request, path, &columns)
    }

    fn training(&self, id: &str) -> Result<TrainingInfo, SourceError> {
        self.trainings.get(id)
    }

    fn drifts(&self) -> Result<Vec<Drift>, SourceError> {
        let dir = millrace_common::layout::DataDir::new(&self.data_dir).monitor_state();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.strip_suffix(".json").map(str::to_owned)
            })
            .filter(|n| millrace_common::keys::check_name(n).is_ok())
            .collect();
        names.sort();
        let mut all = Vec::new();
        for n in names {
            match DriftReport::load(&self.data_dir, &n) {
                Ok(Some(r)) => all.push(drift(r, Vec::new())),
                Ok(None) => {}
                // One unreadable report does not hide the others; its own page says why.
                Err(e) => tracing::warn!(report = %n, error = %e, "an unreadable drift report"),
            }
        }
        Ok(all)
    }

    fn drift(&self, name: &str) -> Result<Drift, SourceError> {
        let missing = || SourceError::NotFound(format!("there is no drift report for {name:?}"));
        millrace_common::keys::check_name(name).map_err(|_| missing())?;
        let report = DriftReport::load(&self.data_dir, name)
            .map_err(serve_error)?
            .ok_or_else(missing)?;
        let history = DriftReport::history(&self.data_dir, name)
            .map_err(serve_error)?
            .into_iter()
            .map(|p| DriftPoint {
                at_ms: p.at_ms,
                drifting: p.drifting,
                psi: p.psi,
            })
            .collect();
        Ok(drift(report, history))
    }
}

/// A saved drift report as the console shows it.
fn drift(r: DriftReport, history: Vec<DriftPoint>) -> Drift {
    Drift {
        summary: r.summary(),
        model: r.model,
        version: r.version,
        at_ms: r.at_ms,
        drifting: r.drifting,
        threshold: r.threshold,
        window_records: r.window_records,
        min_records: r.min_records,
        features: r.features.into_iter().map(|f| (f.feature, f.psi)).collect(),
        history,
    }
}

impl ConsoleSource {
    /// A folder of the lake named by a client: inside the lake, there, and holding no link
    /// out of it.
    fn lake_folder(&self, prefix: &str) -> Result<PathBuf, SourceError> {
        let path = inside(&self.lake, prefix)?;
        if prefix.trim_matches('/').is_empty() || !path.is_dir() {
            return Err(SourceError::NotFound(format!(
                "{prefix:?} is not a folder of the lake"
            )));
        }
        crate::console_sql::stays_in_lake(&self.lake, &path, prefix)?;
        Ok(path)
    }
}

/// `rel` (a lake key or prefix from a client) under `root`, refused unless every part is a
/// plain name and the result, symbolic links followed, stays inside `root`.
fn inside(root: &Path, rel: &str) -> Result<PathBuf, SourceError> {
    let outside = || SourceError::NotFound(format!("{rel:?} is not a key in the lake"));
    let rel = rel.trim_end_matches('/');
    let mut path = root.to_path_buf();
    for part in Path::new(rel).components() {
        match part {
            Component::Normal(p) => path.push(p),
            _ => return Err(outside()),
        }
    }
    if path.exists() {
        let (Ok(real), Ok(real_root)) = (path.canonicalize(), root.canonicalize()) else {
            return Err(outside());
        };
        if !real.starts_with(real_root) {
            return Err(outside());
        }
    }
    Ok(path)
}

fn info(h: &millrace_stream::StreamHandle) -> StreamInfo {
    let meta = h.meta();
    let id = |index: u32| h.shard(index).map(|s| s.id()).unwrap_or_default();
    let shards = h
        .shards()
        .iter()
        .map(|sh| {
            let m = meta.shards.iter().find(|m| m.index == sh.index());
            let parents = m
                .map(|m| {
                    [m.parent, m.adjacent_parent]
                        .into_iter()
                        .flatten()
                        .map(id)
                        .collect()
                })
                .unwrap_or_default();
            ShardInfo {
                id: sh.id(),
                open: !sh.is_closed(),
                parents,
                records: sh.tip(),
                retained: sh.tip().saturating_sub(sh.trim_horizon()),
            }
        })
        .collect();
    StreamInfo {
        name: meta.name.clone(),
        mode: meta.mode.as_str().to_owned(),
        retention_hours: meta.retention_hours,
        created_ms: meta.created_ms,
        shards,
        in_per_s: None,
        out_per_s: None,
    }
}
