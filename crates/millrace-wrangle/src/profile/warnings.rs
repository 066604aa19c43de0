//! Data-quality warnings and their thresholds.

use super::columns::DecodedColumn;
use super::{
    ColumnKind, ColumnProfile, FeaturePower, ProblemType, TargetAnalysis, Warning, WarningKind,
};

/// A categorical column whose distinct values exceed this share of its values is ID-like.
pub const ID_UNIQUE_RATIO: f64 = 0.95;
/// A binary target is imbalanced when its minority class is below this share of the rows.
pub const CLASS_IMBALANCE_SHARE: f64 = 0.35;
/// Single-feature power (AUC, or |Spearman| for regression) above this suggests leakage.
pub const LEAKAGE_POWER: f64 = 0.98;
/// Missing share (percent) above which a column is flagged.
pub const HIGH_MISSING_PCT: f64 = 20.0;
/// |skewness| above this is flagged.
pub const SKEW_LIMIT: f64 = 2.0;
/// Share of values (percent) outside the IQR fences above which a column is flagged.
pub const OUTLIER_PCT: f64 = 5.0;
/// Categorical columns with more distinct values than this (and not ID-like) are flagged.
pub const HIGH_CARDINALITY: usize = 100;

/// ID-like: a categorical column of (nearly) all-distinct values, or an integer column with
/// every row distinct that counts like a row index (consecutive values or strictly increasing).
pub fn is_id_like(col: &DecodedColumn, p: &ColumnProfile) -> bool {
    let rows = p.count + p.missing;
    if rows < 2 || p.count == 0 {
        return false;
    }
    match col.kind {
        ColumnKind::Categorical => p.unique_ratio > ID_UNIQUE_RATIO,
        ColumnKind::Numeric => {
            let Some(s) = &p.numeric else { return false };
            if p.missing > 0 || p.unique != rows || col.num.iter().any(|v| v.fract() != 0.0) {
                return false;
            }
            let consecutive = s.max - s.min + 1.0 == rows as f64;
            let increasing = col.num.windows(2).all(|w| w[0] < w[1]);
            consecutive || increasing
        }
    }
}

fn pct(v: f64) -> String {
    format!("{v:.1}%")
}

pub fn warnings(
    cols: &[DecodedColumn],
    profiles: &[ColumnProfile],
    id_like: &[bool],
    target: Option<&TargetAnalysis>,
    power: &[FeaturePower],
) -> Vec<Warning> {
    let mut out = Vec::new();
    let mut push = |kind, column: Option<&str>, message: String| {
        out.push(Warning {
            kind,
            column: column.map(str::to_string),
            message,
        })
    };
    let target_name = target.map(|t| t.column.as_str());
    for fp in power {
        let i = profiles.iter().position(|p| p.name == fp.column);
        if i.is_some_and(|i| id_like[i]) {
            continue;
        }
        let (value, what) = match (fp.auc, fp.abs_spearman) {
            (Some(a), _) => (a, "AUC"),
            (None, Some(r)) => (r, "|Spearman|"),
            _ => continue,
        };
        if value > LEAKAGE_POWER {
            push(
                WarningKind::TargetLeakage,
                Some(&fp.column),
                format!(
                    "`{}` alone predicts the target almost perfectly ({what} {value:.3}); check that it is \
                     known before the outcome.",
                    fp.column
                ),
            );
        }
    }
    if let Some(t) = target
        && t.problem_type == ProblemType::Binary
        && let Some(share) = t.minority_share.filter(|&s| s < CLASS_IMBALANCE_SHARE)
    {
        let minority = t.classes.last().map(|c| c.value.as_str()).unwrap_or("");
        push(
            WarningKind::ClassImbalance,
            Some(&t.column),
            format!(
                "Minority class `{minority}` is {} of rows (below {}); prefer AUC/PR metrics and \
                         stratified splits.",
                pct(100.0 * share),
                pct(100.0 * CLASS_IMBALANCE_SHARE)
            ),
        );
    }
    for (i, (col, p)) in cols.iter().zip(profiles).enumerate() {
        let name = Some(col.name.as_str());
        if id_like[i] {
            push(
                WarningKind::IdLike,
                name,
                format!(
                    "`{}` looks like an identifier ({} distinct of {} values); exclude it from models.",
                    col.name, p.unique, p.count
                ),
            );
        }
        if p.unique <= 1 {
            let what = p
                .mode
                .as_deref()
                .map(|m| format!("the single value `{m}`"))
                .unwrap_or_else(|| "no values".into());
            push(
                WarningKind::Constant,
                name,
                format!("`{}` has {what}; it carries no information.", col.name),
            );
        }
        if p.missing_pct > HIGH_MISSING_PCT {
            push(
                WarningKind::HighMissing,
                name,
                format!(
                    "`{}` is missing in {} of rows.",
                    col.name,
                    pct(p.missing_pct)
                ),
            );
        }
        if p.mismatched > 0 || (p.inferred_type == ColumnKind::Numeric && p.blank > 0) {
            let mut parts = Vec::new();
            if p.mismatched > 0 {
                let examples: Vec<String> = p
                    .mismatched_examples
                    .iter()
                    .map(|e| format!("{e:?}"))
                    .collect();
                parts.push(format!(
                    "{} non-numeric value(s) (e.g. {})",
                    p.mismatched,
                    examples.join(", ")
                ));
            }
            if p.blank > 0 {
                parts.push(format!("{} blank string(s)", p.blank));
            }
            push(
                WarningKind::Mismatched,
                name,
                format!(
                    "`{}` is numeric but holds {}; they are treated as missing.",
                    col.name,
                    parts.join(" and ")
                ),
            );
        }
        if col.kind == ColumnKind::Categorical
            && !id_like[i]
            && p.unique > HIGH_CARDINALITY
            && Some(col.name.as_str()) != target_name
        {
            push(
                WarningKind::HighCardinality,
                name,
                format!(
                    "`{}` has {} categories; one-hot encoding will be wide (the quick model keeps the top 20).",
                    col.name, p.unique
                ),
            );
        }
        // Skew and IQR fences mean nothing for ID-like or two-valued (0/1) columns.
        if let Some(s) = &p.numeric
            && !id_like[i]
            && p.unique > 2
        {
            if let Some(sk) = s.skewness.filter(|sk| sk.abs() > SKEW_LIMIT) {
                push(
                    WarningKind::Skewed,
                    name,
                    format!(
                        "`{}` is skewed (skewness {sk:.2}); consider a log transform.",
                        col.name
                    ),
                );
            }
            if s.outlier_pct > OUTLIER_PCT {
                push(
                    WarningKind::Outliers,
                    name,
                    format!(
                        "`{}` has {} values ({}) outside the 1.5 IQR fences.",
                        col.name,
                        s.outliers,
                        pct(s.outlier_pct)
                    ),
                );
            }
        }
    }
    // Most important kinds first (the enum's order), columns in data order within a kind.
    out.sort_by_key(|w| w.kind as u8);
    out
}
