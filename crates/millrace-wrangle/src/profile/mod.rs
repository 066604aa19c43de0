//! The Data Quality and Insights report: options, the serialisable `Report`, and `profile`, which
//! runs the column statistics, correlations, target analysis, feature power, warnings and the
//! quick model over Arrow batches. `render_html` turns a report into one self-contained page.
//!
//! Exact figures (row count, missing cells, unique counts, min/max/mean/std, quantiles,
//! histograms, duplicates) use every row. The costly parts (correlations, feature power, the
//! quick model) use a seeded random sample of at most `max_sample_rows` rows; `Report::sampling`
//! says so.

mod columns;
mod correlate;
mod html;
mod model;
mod power;
mod stats;
pub mod svg;
mod warnings;

use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

pub use html::render_html;

/// What `profile` should do beyond the always-on statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileOptions {
    /// The column to predict; enables target analysis, feature power and the quick model.
    pub target: Option<String>,
    /// Seed for the row sample, the fold assignment, the train/holdout split and the shuffles.
    pub seed: u64,
    /// Rows used for the quick model, correlations, feature power (a seeded sample above it).
    pub max_sample_rows: usize,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            target: None,
            seed: 42,
            max_sample_rows: 200_000,
        }
    }
}

/// Why no report could be made.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("no data: the input has no columns")]
    NoColumns,
    #[error("no data: the input has no rows")]
    EmptyData,
    #[error("target column `{0}` is not in the data")]
    TargetMissing(String),
    #[error("target column `{0}` has no non-missing values")]
    TargetEmpty(String),
    #[error("batches disagree on the schema: {0}")]
    SchemaMismatch(String),
    #[error("column `{column}`: {source}")]
    Arrow {
        column: String,
        #[source]
        source: arrow::error::ArrowError,
    },
}

/// The whole report; `report.json` is this serialised with serde.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub summary: DatasetSummary,
    pub sampling: Sampling,
    /// Warnings, most important kinds first.
    pub warnings: Vec<Warning>,
    pub columns: Vec<ColumnProfile>,
    pub correlations: Correlations,
    pub target: Option<TargetAnalysis>,
    /// Each feature's single-column power for the target, strongest first (empty without target).
    pub feature_power: Vec<FeaturePower>,
    pub model: Option<QuickModel>,
    /// Notes on methods and on what was skipped and why.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub rows: usize,
    pub columns: usize,
    pub numeric_columns: usize,
    pub categorical_columns: usize,
    /// Rows that exactly repeat an earlier row (all columns, raw values; NULL equals NULL).
    /// Rows are compared by a 128-bit hash of their raw values, so a false match is
    /// astronomically unlikely but not impossible.
    pub duplicate_rows: usize,
    /// NULL cells plus blank (empty or whitespace-only) strings.
    pub missing_cells: usize,
    pub missing_cells_pct: f64,
    /// Arrow memory of the input batches (`RecordBatch::get_array_memory_size`).
    pub memory_bytes: usize,
}

/// Which parts used the row sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sampling {
    pub total_rows: usize,
    pub sample_rows: usize,
    /// True when `sample_rows < total_rows`.
    pub sampled: bool,
    pub seed: u64,
    /// Report parts computed on the sample (all rows when `sampled` is false).
    pub sampled_parts: Vec<String>,
    /// Report parts computed on every row.
    pub exact_parts: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    Categorical,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    /// The Arrow data type as read.
    pub arrow_type: String,
    /// `numeric` for numeric Arrow types and for strings where at least 95% of the non-blank
    /// values parse as f64 after trimming; `categorical` otherwise (booleans included).
    pub inferred_type: ColumnKind,
    /// Non-missing values (for numeric columns: values that parsed).
    pub count: usize,
    /// NULLs plus blank strings.
    pub missing: usize,
    pub missing_pct: f64,
    pub nulls: usize,
    /// Empty or whitespace-only strings.
    pub blank: usize,
    /// Non-blank values that do not parse as numbers in a column inferred numeric.
    pub mismatched: usize,
    /// Examples of mismatched values (up to 5 distinct).
    pub mismatched_examples: Vec<String>,
    /// Distinct non-missing values (for numeric columns: distinct parsed numbers).
    pub unique: usize,
    pub unique_ratio: f64,
    pub mode: Option<String>,
    pub mode_count: usize,
    pub numeric: Option<NumericStats>,
    pub categories: Option<CategoryCounts>,
}

/// Statistics over a numeric column's parsed values (all rows).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NumericStats {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Sample standard deviation (n - 1 denominator); None with fewer than 2 values.
    pub std: Option<f64>,
    /// Quantiles by linear interpolation between order statistics (numpy's default, "type 7":
    /// position q * (n - 1) in the sorted values).
    pub quantiles: Quantiles,
    /// Adjusted Fisher-Pearson skewness G1 (what pandas' `skew` gives); None with fewer than 3
    /// values or zero variance.
    pub skewness: Option<f64>,
    /// Values outside [p25 - 1.5 IQR, p75 + 1.5 IQR].
    pub outliers: usize,
    pub outlier_pct: f64,
    pub lower_fence: f64,
    pub upper_fence: f64,
    pub histogram: Histogram,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Quantiles {
    pub p1: f64,
    pub p5: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
    pub p99: f64,
}

/// Equal-width bins from min to max: `edges` has one more entry than `counts`; the last bin is
/// closed on the right.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

/// The most frequent categories (up to 20) and the rest lumped together.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategoryCounts {
    pub top: Vec<ValueCount>,
    pub other_count: usize,
    pub other_categories: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValueCount {
    pub value: String,
    pub count: usize,
}

/// Correlation matrices (row-major, symmetric, null where undefined), on the sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Correlations {
    pub numeric_columns: Vec<String>,
    /// Pearson r over the rows where both columns have a value.
    pub pearson: Vec<Vec<Option<f64>>>,
    /// Spearman rho: Pearson of average ranks (ties share their mean rank). Ranks are taken
    /// per column over its non-missing sampled values; each pair then uses the rows where both
    /// are present (exact when neither column has missing values).
    pub spearman: Vec<Vec<Option<f64>>>,
    /// Categorical columns with at most 100 categories that are not ID-like.
    pub categorical_columns: Vec<String>,
    /// Cramér's V without bias correction, sqrt(chi2 / (n * (min(r, c) - 1))), over rows where
    /// both columns have a value.
    pub cramers_v: Vec<Vec<Option<f64>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemType {
    Binary,
    Multiclass,
    Regression,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetAnalysis {
    pub column: String,
    pub problem_type: ProblemType,
    /// Rows with a target value (all rows).
    pub rows: usize,
    pub missing: usize,
    /// Class counts, largest first (binary and multiclass).
    pub classes: Vec<ClassCount>,
    /// Binary: "Yes"/"1"/"true" when present (case-insensitive), else the minority class.
    pub positive_class: Option<String>,
    pub positive_rate: Option<f64>,
    /// Share of the smallest class.
    pub minority_share: Option<f64>,
    /// Largest class count / smallest class count.
    pub imbalance_ratio: Option<f64>,
    /// Regression: mean and sample std of the target.
    pub mean: Option<f64>,
    pub std: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassCount {
    pub value: String,
    pub count: usize,
    pub share: f64,
}

/// One feature's power to predict the target on its own (sample rows with a target value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeaturePower {
    pub column: String,
    pub kind: ColumnKind,
    /// Binary targets: single-feature AUC. Numeric features score by their raw value (rows where
    /// present), reported as max(auc, 1 - auc). Categorical ones score by the category's target
    /// rate learned out of fold (5 folds, one smoothing pseudo-row at the prior; missing is a
    /// category), which is already oriented, so it is reported as is: a column of unique IDs
    /// scores about 0.5 instead of a trivial 1.0.
    pub auc: Option<f64>,
    /// Mutual information with the target in bits. Numerics are cut into 10 quantile bins,
    /// categoricals keep their 20 most frequent values plus "other"; missing is its own bin; a
    /// regression target is cut into 10 quantile bins.
    pub mutual_information_bits: Option<f64>,
    /// Regression targets: |Spearman| of the feature (categoricals: out-of-fold target mean).
    pub abs_spearman: Option<f64>,
    /// The sort key: `auc` (binary), `mutual_information_bits` (multiclass), `abs_spearman`
    /// (regression).
    pub power: f64,
    pub metric: String,
}

/// A quick L2-regularised model on all usable columns and each column's permutation impact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuickModel {
    /// `logistic_regression` (binary) or `ridge_regression` (regression).
    pub model: String,
    /// `auc` or `r2`, on the holdout rows.
    pub metric: String,
    pub holdout_score: f64,
    pub train_rows: usize,
    pub holdout_rows: usize,
    /// Design columns: standardized numerics (missing -> mean) + one-hot of each categorical's
    /// 20 most frequent training values.
    pub features: usize,
    pub l2: f64,
    pub iterations: usize,
    pub converged: bool,
    /// Columns left out (ID-like, constant) with the reason.
    pub excluded: Vec<ExcludedColumn>,
    /// Drop in the holdout metric when the column is shuffled (mean of 3 seeded shuffles),
    /// largest first.
    pub impact: Vec<ColumnImpact>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExcludedColumn {
    pub column: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnImpact {
    pub column: String,
    pub importance: f64,
    /// Standard deviation over the repeats.
    pub std: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    TargetLeakage,
    IdLike,
    Constant,
    ClassImbalance,
    HighMissing,
    Mismatched,
    HighCardinality,
    Skewed,
    Outliers,
}

impl WarningKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::TargetLeakage => "target_leakage",
            WarningKind::IdLike => "id_like",
            WarningKind::Constant => "constant",
            WarningKind::ClassImbalance => "class_imbalance",
            WarningKind::HighMissing => "high_missing",
            WarningKind::Mismatched => "mismatched",
            WarningKind::HighCardinality => "high_cardinality",
            WarningKind::Skewed => "skewed",
            WarningKind::Outliers => "outliers",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Warning {
    pub kind: WarningKind,
    pub column: Option<String>,
    pub message: String,
}

impl Report {
    /// The profile of the named column.
    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether a warning of `kind` names `column`.
    pub fn has_warning(&self, kind: WarningKind, column: Option<&str>) -> bool {
        self.warnings
            .iter()
            .any(|w| w.kind == kind && w.column.as_deref() == column)
    }
}

/// Profiles the batches (one table, same schema) into a report.
pub fn profile(batches: &[RecordBatch], options: &ProfileOptions) -> Result<Report, ProfileError> {
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => return Err(ProfileError::EmptyData),
    };
    if schema.fields().is_empty() {
        return Err(ProfileError::NoColumns);
    }
    for b in batches {
        if b.schema().fields().len() != schema.fields().len() {
            return Err(ProfileError::SchemaMismatch(format!(
                "{} columns vs {}",
                b.num_columns(),
                schema.fields().len()
            )));
        }
    }
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows == 0 {
        return Err(ProfileError::EmptyData);
    }
    let target_index = match &options.target {
        Some(t) => match schema.fields().iter().position(|f| f.name() == t) {
            Some(i) => Some(i),
            None => return Err(ProfileError::TargetMissing(t.clone())),
        },
        None => None,
    };

    // Per-column decoding and statistics: the bulk of the work, spread over the cores.
    let indices: Vec<usize> = (0..schema.fields().len()).collect();
    let decoded = stats::par_map(&indices, |&i| {
        let field = schema.field(i);
        let arrays: Vec<_> = batches.iter().map(|b| b.column(i).clone()).collect();
        columns::decode(field.name(), field.data_type(), &arrays, rows)
    });
    let mut cols = Vec::with_capacity(decoded.len());
    for c in decoded {
        cols.push(c?);
    }

    let duplicate_rows = columns::count_duplicate_rows(&cols, rows);
    let memory_bytes = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let profiles: Vec<ColumnProfile> = stats::par_map(&cols, columns::column_profile);
    let missing_cells: usize = profiles.iter().map(|p| p.missing).sum();
    let numeric_columns = profiles
        .iter()
        .filter(|p| p.inferred_type == ColumnKind::Numeric)
        .count();
    let summary = DatasetSummary {
        rows,
        columns: cols.len(),
        numeric_columns,
        categorical_columns: cols.len() - numeric_columns,
        duplicate_rows,
        missing_cells,
        missing_cells_pct: 100.0 * missing_cells as f64 / (rows * cols.len()) as f64,
        memory_bytes,
    };
    let id_like: Vec<bool> = cols
        .iter()
        .zip(&profiles)
        .map(|(c, p)| warnings::is_id_like(c, p))
        .collect();

    let sample = stats::sample_indices(rows, options.max_sample_rows, options.seed);
    let sample_rows = sample.len();
    let correlations = correlate::correlations(&cols, &profiles, &id_like, &sample);

    let mut notes = vec![
        "Missing = NULL plus blank (empty or whitespace-only) strings.".to_string(),
        "Quantiles use linear interpolation between order statistics (numpy default).".to_string(),
        "Skewness is the adjusted Fisher-Pearson G1 (as pandas); std is the sample std (n-1)."
            .to_string(),
        "Cramér's V is not bias-corrected; columns with more than 100 categories or ID-like are \
         left out."
            .to_string(),
        "Mutual information is in bits.".to_string(),
    ];
    let mut target = None;
    let mut feature_power = Vec::new();
    let mut model = None;
    if let Some(ti) = target_index {
        let t = power::analyse_target(&cols[ti], &profiles[ti])
            .ok_or_else(|| ProfileError::TargetEmpty(cols[ti].name.clone()))?;
        let enc = power::encode_target(&cols[ti], &t, &sample, options.seed);
        feature_power = power::feature_power(&cols, ti, &t, &enc);
        match t.problem_type {
            ProblemType::Multiclass => notes.push(
                "The quick model is fitted for binary and regression targets only; this target is \
                 multiclass."
                    .to_string(),
            ),
            _ => model = model::quick_model(&cols, &profiles, &id_like, ti, &t, &enc, options.seed),
        }
        target = Some(t);
    } else {
        notes.push("No target given: no feature power and no quick model.".to_string());
    }
    let warnings = warnings::warnings(&cols, &profiles, &id_like, target.as_ref(), &feature_power);

    let mut sampled_parts = vec!["correlations (Pearson, Spearman, Cramér's V)".to_string()];
    if target.is_some() {
        sampled_parts.push("feature power (AUC, mutual information, Spearman)".to_string());
        sampled_parts.push("quick model and column impact".to_string());
    }
    Ok(Report {
        summary,
        sampling: Sampling {
            total_rows: rows,
            sample_rows,
            sampled: sample_rows < rows,
            seed: options.seed,
            sampled_parts,
            exact_parts: vec![
                "dataset summary (rows, duplicates, missing cells, memory)".to_string(),
                "per-column statistics (missing, unique, mode, min/max/mean/std, quantiles, \
                 skewness, outliers, histograms, category counts)"
                    .to_string(),
                "target class counts".to_string(),
            ],
        },
        warnings,
        columns: profiles,
        correlations,
        target,
        feature_power,
        model,
        notes,
    })
}
