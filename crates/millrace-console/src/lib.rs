//! The web console `millrace up` serves at `[console] addr`: the pipeline as a diagram with each
//! component's live state, the streams with their shards, and a record browser that tails a
//! shard. Pages are rendered on the server from askama templates (checked when the crate
//! compiles) and read without JavaScript; a small script (`static/console.js`, in the binary)
//! keeps the overview live from a server-sent event stream.
//!
//! The console reads a running millrace through [`Source`], which the binary implements over
//! its components; nothing here knows how streams are stored.
//!
//! - [`stages`] (`stages.rs`): the pipeline's stages and their state, from the admin API's
//!   `/status` document, shared by the page and the event stream.
//! - [`pages`] (`pages.rs`): the routes, their templates and the record decoding.
//! - [`models`] (`models.rs`): the registry's pages: models, versions, and a version's
//!   metrics, confusion matrix, leaderboard, column impact and ROC curve (SVG); promote and
//!   roll back.
//! - [`predict`] (`predict.rs`): a version's what-if form (one record, its prediction and
//!   every column's contribution) and batch prediction of an uploaded CSV.
//! - [`sql`] (`sql.rs`): the SQL box: a read-only query over the lake, its first rows, and
//!   the whole result as CSV or Parquet.
//! - [`quality`] (`quality.rs`): data-quality reports of lake folders, started from the
//!   console and read in place.
//! - [`monitor`] (`monitor.rs`): each served model's drift, its alert state and drift over
//!   time.
//! - [`train`] (`train.rs`): training a model from a lake folder (target, objective, quick or
//!   best, time budget), its progress and the leaderboard filling in as candidates finish.
//! - [`guard`] (`guard.rs`): the check every form post passes (same-origin only).
//! - [`auth`] (`auth.rs`): sign-in, sessions, the forms' tokens and each page's permission when
//!   identities are on.

pub mod auth;
pub mod guard;
pub mod models;
pub mod monitor;
pub mod pages;
pub mod predict;
pub mod quality;
pub mod sql;
pub mod stages;
pub mod train;

use std::sync::Arc;
use std::time::Duration;

pub use pages::router;

/// What the console reads from a running millrace.
pub trait Source: Send + Sync + 'static {
    /// The admin API's `/status` document.
    fn status(&self) -> serde_json::Value;
    /// Every stream, by name.
    fn streams(&self) -> Vec<StreamInfo>;
    /// The newest records of a shard, oldest first, at most `limit`.
    fn tail(&self, stream: &str, shard: &str, limit: usize) -> Result<Vec<Record>, SourceError>;
    /// The folders and objects directly under `prefix` (`""` or `a/b/`) of the data dir's lake;
    /// a prefix that would leave the lake is [`SourceError::NotFound`].
    fn lake_list(&self, prefix: &str) -> Result<Vec<LakeEntry>, SourceError>;
    /// The first `rows` rows of the lake object `key`, as a table.
    fn lake_preview(&self, key: &str, rows: usize) -> Result<Preview, SourceError>;
    /// Every model in the registry with its versions.
    fn models(&self) -> Result<Vec<ModelSummary>, SourceError>;
    /// A version's `metrics.json` (what training measured).
    fn model_metrics(&self, name: &str, version: u32) -> Result<serde_json::Value, SourceError>;
    /// The columns `name:vN` reads from a record (the target and ID columns left out), in
    /// training order: what its what-if form asks for.
    fn model_inputs(&self, name: &str, version: u32) -> Result<Vec<Input>, SourceError>;
    /// Scores one record (column → value; an absent or blank value is missing) as the endpoint
    /// does with `?explain=all`: its prediction object with an `explanation`.
    fn predict_one(
        &self,
        name: &str,
        version: u32,
        record: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Value, SourceError>;
    /// Scores every row of a CSV file: the CSV `millrace predict --output FILE.csv` writes
    /// (ID columns, prediction columns, warnings, error).
    fn predict_csv(&self, name: &str, version: u32, csv: Vec<u8>) -> Result<Vec<u8>, SourceError>;
    /// Makes `version` the production version; the version it replaced, if any.
    fn promote(&self, name: &str, version: u32) -> Result<Option<u32>, SourceError>;
    /// Puts the previous production version back; the version now in production.
    fn rollback(&self, name: &str) -> Result<u32, SourceError>;
    /// The tables every SQL query can name without being told (the running configuration's
    /// deliveries).
    fn tables(&self) -> Vec<TableInfo>;
    /// Runs one read-only SQL statement with prep's engine over [`Source::tables`] and the
    /// query's own lake folders: its first `max_rows` rows as text. A statement that does not
    /// plan, would change anything, names a folder outside the lake or runs past its time
    /// limit is [`SourceError::Invalid`] with the reason.
    fn query(&self, q: &SqlQuery) -> Result<QueryTable, SourceError>;
    /// As [`Source::query`], the first `max_rows` rows as a file.
    fn query_download(&self, q: &SqlQuery, format: Download) -> Result<Vec<u8>, SourceError>;
    /// Every data-quality report made from the console.
    fn profiles(&self) -> Result<Vec<ProfileInfo>, SourceError>;
    /// The columns of the lake folder `prefix` (what a report's target is chosen from); a
    /// folder outside the lake is [`SourceError::NotFound`].
    fn profile_columns(&self, prefix: &str) -> Result<Vec<String>, SourceError>;
    /// Starts a report of the lake folder `prefix` (the target column's checks with
    /// `target`); its id at once, while it runs.
    fn start_profile(&self, prefix: &str, target: Option<&str>) -> Result<String, SourceError>;
    /// One report's state and summary.
    fn profile(&self, id: &str) -> Result<ProfileInfo, SourceError>;
    /// A finished report's `report.html` or `report.json`.
    fn profile_file(&self, id: &str, name: &str) -> Result<Vec<u8>, SourceError>;
    /// Every training started from the console.
    fn trainings(&self) -> Result<Vec<TrainingInfo>, SourceError>;
    /// Starts training a model on a lake folder; its id at once, while it runs. A folder
    /// outside the lake is [`SourceError::NotFound`]; a bad name, target, objective or budget
    /// is [`SourceError::Invalid`] with the reason.
    fn start_training(&self, request: &TrainRequest) -> Result<String, SourceError>;
    /// One training's state, progress and leaderboard so far.
    fn training(&self, id: &str) -> Result<TrainingInfo, SourceError>;
    /// Every model with a saved drift report (by name), without history.
    fn drifts(&self) -> Result<Vec<Drift>, SourceError>;
    /// A model's drift report with its history.
    fn drift(&self, name: &str) -> Result<Drift, SourceError>;
}

/// A served model's input drift as its endpoint or scorer last saved it.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    pub model: String,
    pub version: u32,
    pub at_ms: i64,
    pub drifting: bool,
    /// `drifting: yes (max PSI 0.53 on MonthlyCharges, threshold 0.2, 1000 records)`.
    pub summary: String,
    pub threshold: f64,
    pub window_records: usize,
    pub min_records: usize,
    /// Every feature's PSI, largest first.
    pub features: Vec<(String, f64)>,
    /// The saves before it, oldest first.
    pub history: Vec<DriftPoint>,
}

/// One save of a drift report.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftPoint {
    pub at_ms: i64,
    pub drifting: bool,
    /// Every feature's PSI, largest first.
    pub psi: Vec<(String, f64)>,
}

/// A data-quality report made from the console.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProfileInfo {
    pub id: String,
    /// The lake folder profiled.
    pub dataset: String,
    pub target: Option<String>,
    /// `waiting` (for another report to finish), `running`, `done` or `failed`.
    pub state: String,
    pub started_ms: i64,
    /// How long it took, once done.
    pub seconds: Option<f64>,
    pub rows: Option<u64>,
    pub columns: Option<u64>,
    /// The report's warnings, in its order.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// What the "train a model" form asks for.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainRequest {
    /// The lake folder to train on.
    pub dataset: String,
    pub target: String,
    /// The model's name: the run saves its next version.
    pub name: String,
    /// The metric to optimise; the problem's default when `None`.
    pub objective: Option<String>,
    /// `quick` (the fixed list) or `best` (then random configurations for the budget).
    pub mode: String,
    /// `best` mode's search time, in seconds.
    pub budget_s: u64,
}

/// A training started from the console, as it runs and once it is over.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainingInfo {
    pub id: String,
    /// What was asked (the dataset without a trailing `/`).
    #[serde(flatten)]
    pub asked: TrainRequest,
    /// `waiting` (for another training to finish), `running`, `done` or `failed`.
    pub state: String,
    pub started_ms: i64,
    /// How long it took, once over.
    pub seconds: Option<f64>,
    /// The metric candidates are compared on, once the problem is known.
    pub metric: Option<String>,
    pub higher_is_better: bool,
    /// Candidates planned so far (grows in `best` mode).
    pub planned: usize,
    /// Candidates cross-validated so far, in the order they finished.
    pub candidates: Vec<TrainedCandidate>,
    /// What training said along the way (problem type, columns left out, the ensemble).
    pub lines: Vec<String>,
    /// The version saved, once done.
    pub version: Option<u32>,
    /// Why it failed.
    pub error: Option<String>,
}

impl TrainingInfo {
    /// Over, one way or the other.
    pub fn finished(&self) -> bool {
        matches!(self.state.as_str(), "done" | "failed")
    }

    /// The candidates so far, best first by the metric (one without a figure last).
    pub fn ranked(&self) -> Vec<TrainedCandidate> {
        let mut all = self.candidates.clone();
        all.sort_by(|a, b| {
            let order = a.cv.total_cmp(&b.cv);
            let order = if self.higher_is_better {
                order.reverse()
            } else {
                order
            };
            a.cv.is_nan().cmp(&b.cv.is_nan()).then(order)
        });
        all
    }
}

/// One candidate's cross-validated figure.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainedCandidate {
    pub name: String,
    pub cv: f64,
    pub seconds: f64,
}

/// A query of the SQL box.
#[derive(Debug, Clone)]
pub struct SqlQuery {
    pub sql: String,
    /// Tables of this query alone: (name, folder of the data dir's lake).
    pub tables: Vec<(String, String)>,
    pub max_rows: usize,
    pub time_limit: Duration,
}

/// A table the SQL box can read.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: String,
    /// Where its objects are (a lake folder or an `s3://` URL).
    pub location: String,
    /// `ndjson`, `concat`, `parquet`, … or empty when read from the object names.
    pub format: String,
}

/// A query's result as the page shows it.
#[derive(Debug, Clone, Default)]
pub struct QueryTable {
    pub columns: Vec<String>,
    /// Each row's values as text (a NULL is empty).
    pub rows: Vec<Vec<String>>,
    /// More rows followed the ones shown.
    pub more: bool,
    pub elapsed_ms: u64,
    /// Unreadable JSON values the scan skipped, and the first one's reason.
    pub skipped: u64,
    pub skipped_first: String,
}

/// A file format a query result downloads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Download {
    Csv,
    /// zstd-compressed.
    Parquet,
}

/// One input of a model, as its what-if form shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: String,
    pub kind: InputKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InputKind {
    /// A number: the training part's smallest and largest values and its median, when known.
    Number {
        range: Option<(f64, f64)>,
        median: Option<f64>,
    },
    /// A category: the training part's most frequent values, most frequent first (a form may
    /// also send one it never saw).
    Category { choices: Vec<String> },
}

/// A model in the registry.
#[derive(Debug, Clone)]
pub struct ModelSummary {
    pub name: String,
    /// The version endpoints and scorers serve for a bare name.
    pub production: Option<u32>,
    /// Ascending.
    pub versions: Vec<VersionSummary>,
}

/// One version of a model.
#[derive(Debug, Clone)]
pub struct VersionSummary {
    pub version: u32,
    /// `candidate`, `production` or `archived`.
    pub stage: String,
    pub created_ms: i64,
    /// Headline test metrics.
    pub headline: Vec<(String, f64)>,
}

/// A folder or an object in the lake.
#[derive(Debug, Clone)]
pub struct LakeEntry {
    /// The last part of its key.
    pub name: String,
    /// Its key from the lake's root (a folder's ends with `/`).
    pub key: String,
    pub folder: bool,
    pub bytes: u64,
    pub modified_ms: i64,
}

/// The first rows of an object: column names and each row's values as text, and what was
/// left out.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub note: String,
}

/// A shared [`Source`].
pub type Shared = Arc<dyn Source>;

/// Why a [`Source`] could not answer.
#[derive(Debug)]
pub enum SourceError {
    /// No such stream, shard, model or version.
    NotFound(String),
    /// The request cannot be done as asked (a CSV that does not parse, no version to roll
    /// back to): the client's to fix.
    Invalid(String),
    /// Reading failed.
    Failed(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::NotFound(m) | SourceError::Invalid(m) | SourceError::Failed(m) => {
                f.write_str(m)
            }
        }
    }
}

/// One stream as the console lists it.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub name: String,
    /// `PROVISIONED` or `ON_DEMAND`.
    pub mode: String,
    pub retention_hours: u32,
    pub created_ms: i64,
    pub shards: Vec<ShardInfo>,
    /// Records per second appended, and answered by reads, over the last ten seconds (`None`
    /// until measured).
    pub in_per_s: Option<f64>,
    pub out_per_s: Option<f64>,
}

impl StreamInfo {
    pub fn records(&self) -> u64 {
        self.shards.iter().map(|s| s.records).sum()
    }

    /// `12.5 in, 0 out per second`, or `–` before the first measurement.
    pub fn rates(&self) -> String {
        match (self.in_per_s, self.out_per_s) {
            (Some(i), Some(o)) => format!("{} in, {} out", per_s(i), per_s(o)),
            _ => "–".into(),
        }
    }

    pub fn open_shards(&self) -> usize {
        self.shards.iter().filter(|s| s.open).count()
    }
}

/// A rate as the pages show it: whole records per second, one decimal below 10.
pub fn per_s(x: f64) -> String {
    if x < 10.0 {
        let s = format!("{x:.1}");
        s.strip_suffix(".0").map_or(s.clone(), str::to_owned)
    } else {
        format!("{x:.0}")
    }
}

/// One shard: open or closed by a reshard, with its parents.
#[derive(Debug, Clone)]
pub struct ShardInfo {
    pub id: String,
    pub open: bool,
    pub parents: Vec<String>,
    /// Records appended since the shard opened (the tip's counter).
    pub records: u64,
    /// Records still within retention.
    pub retained: u64,
}

/// A record as stored.
#[derive(Debug, Clone)]
pub struct Record {
    pub sequence: String,
    pub arrival_ms: i64,
    pub partition_key: String,
    pub data: Vec<u8>,
}
