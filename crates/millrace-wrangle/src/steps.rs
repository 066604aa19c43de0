//! Fitting a step on training data and applying the fitted step to a frame.
//!
//! `fit` learns what a step needs (means, category lists, quantiles …) and returns a [`Fitted`]
//! step; `Fitted::apply` is the only code that turns inputs into features, for a million rows
//! or for one record. What happens to values a step did not see at fit time:
//!
//! | step | missing value | unknown category |
//! |---|---|---|
//! | `encode` one_hot | all its columns 0 | `{col}_other` = 1 (all 0 with `other = false`) |
//! | `encode` ordinal | missing | missing |
//! | `encode` target | the training mean | the training mean |
//! | `encode` frequency | missing | 0 |
//! | `scale`, `log`, `power`, `clip`, `bin`, `spline`, `derive` | missing | — |
//! | `impute` | filled | — |
//!
//! Numbers use NaN as "missing"; a model sees NaN (trees route it, linear models need `impute`).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::expr::Expr;
use crate::frame::{Column, Frame, Kind, Name, format_num};
use crate::recipe::{Bin, Clip, Encode, Impute, Scalar, Scale, Step};
use crate::spline::Basis;

/// Whether row-removing steps (`filter`, `drop_missing`, `dedupe`) remove rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Preparing data (fit, `millrace wrangle`): rows are removed.
    Drop,
    /// Scoring: every record gets features, so row-removing steps are skipped.
    Keep,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OneHot {
    pub column: String,
    pub categories: Vec<String>,
    /// Output names: one per category, then `{column}_other` when the rest have a column.
    pub names: Vec<String>,
    pub other: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lookup {
    pub column: String,
    pub values: BTreeMap<String, f64>,
    /// Value for a category not in `values`.
    #[serde(with = "nan_as_null")]
    pub unknown: f64,
    /// Value for a missing category.
    #[serde(with = "nan_as_null")]
    pub missing: f64,
}

/// JSON has no NaN: a missing-value result is written as `null`.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_nan() {
            s.serialize_none()
        } else {
            s.serialize_f64(*x)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// A step with what it learnt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Fitted {
    Drop {
        columns: Vec<String>,
    },
    Keep {
        columns: Vec<String>,
    },
    Rename {
        columns: BTreeMap<String, String>,
    },
    Filter {
        predicate: Expr,
    },
    DropMissing {
        columns: Vec<String>,
    },
    Cast {
        columns: Vec<String>,
        to: Kind,
    },
    Impute {
        fills: Vec<(String, Scalar)>,
    },
    OneHot {
        columns: Vec<OneHot>,
    },
    Ordinal {
        columns: Vec<(String, Vec<String>)>,
    },
    /// Target and frequency encodings: a value per category.
    Lookup {
        columns: Vec<Lookup>,
    },
    /// `(x - center) / scale` per column: standard, min-max and robust scaling.
    Affine {
        columns: Vec<(String, f64, f64)>,
    },
    Log {
        columns: Vec<String>,
    },
    Power {
        columns: Vec<String>,
        exponent: f64,
    },
    Clip {
        columns: Vec<(String, f64, f64)>,
    },
    /// Inner bin edges: value → how many edges are ≤ it.
    Bin {
        columns: Vec<(String, Vec<f64>)>,
    },
    /// B-spline bases added beside their columns.
    Spline {
        columns: Vec<Basis>,
    },
    Derive {
        name: String,
        expr: Expr,
    },
    Text {
        columns: Vec<String>,
        lower: bool,
        trim: bool,
    },
    Dedupe {
        columns: Vec<String>,
    },
}

fn need<'a>(frame: &'a Frame, name: &str) -> Result<&'a Column, String> {
    frame.column(name).ok_or_else(|| {
        format!(
            "column `{name}` not found (columns: {})",
            frame.names().join(", ")
        )
    })
}

fn need_num<'a>(frame: &'a Frame, name: &str) -> Result<&'a [f64], String> {
    match need(frame, name)? {
        Column::Num(v) => Ok(v),
        Column::Str(_) => Err(format!(
            "column `{name}` holds text; this step needs numbers (add a `cast` step with to = \"number\" first)"
        )),
    }
}

/// Sorted non-missing values.
fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    s.sort_unstable_by(f64::total_cmp);
    s
}

/// Quantile `q` of sorted values, linear between the closest ranks (numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Mean and population standard deviation of the non-missing values.
pub fn mean_std(v: &[f64]) -> (f64, f64, usize) {
    let (mut n, mut sum) = (0usize, 0.0);
    for x in v.iter().filter(|x| !x.is_nan()) {
        n += 1;
        sum += x;
    }
    if n == 0 {
        return (f64::NAN, f64::NAN, 0);
    }
    let mean = sum / n as f64;
    let var = v
        .iter()
        .filter(|x| !x.is_nan())
        .map(|x| (x - mean) * (x - mean))
        .sum::<f64>()
        / n as f64;
    (mean, var.sqrt(), n)
}

/// A value as a category (numbers by their text form).
fn category(col: &Column, row: usize) -> Option<std::borrow::Cow<'_, str>> {
    match col {
        Column::Str(v) => v[row].as_deref().map(std::borrow::Cow::Borrowed),
        Column::Num(v) => format_num(v[row]).map(std::borrow::Cow::Owned),
    }
}

/// Category counts, most frequent first (ties by text), for deterministic order.
fn counts(col: &Column) -> Vec<(String, usize)> {
    let mut m: HashMap<String, usize> = HashMap::new();
    for i in 0..col.len() {
        if let Some(c) = category(col, i) {
            match m.get_mut(c.as_ref()) {
                Some(n) => *n += 1,
                None => {
                    m.insert(c.into_owned(), 1);
                }
            }
        }
    }
    let mut v: Vec<(String, usize)> = m.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Finds `s` in `cats`: a scan for the short lists encoders keep, a map for long ones.
struct Index<'a> {
    cats: &'a [String],
    map: Option<HashMap<&'a str, usize>>,
}

impl<'a> Index<'a> {
    fn new(cats: &'a [String]) -> Self {
        let map = (cats.len() > 32).then(|| {
            cats.iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i))
                .collect()
        });
        Self { cats, map }
    }

    fn get(&self, s: &str) -> Option<usize> {
        match &self.map {
            Some(m) => m.get(s).copied(),
            None => self.cats.iter().position(|c| c == s),
        }
    }
}

/// Fold of each row: a seeded shuffle dealt round-robin, so folds differ in size by at most one.
pub fn folds(rows: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows).collect();
    crate::rng::Rng::new(seed).shuffle(&mut order);
    let mut fold = vec![0; rows];
    for (pos, row) in order.into_iter().enumerate() {
        fold[row] = pos % k;
    }
    fold
}

/// The target as numbers for target encoding: numeric as is; two-class text as 1 for the
/// positive class ("yes", "true", "1", or else the rarer class) and 0 for the other.
fn target_values(frame: &Frame, target: Option<&str>) -> Result<Vec<f64>, String> {
    let name = target.ok_or("target encoding needs the recipe's `target`")?;
    match need(frame, name).map_err(|e| format!("target {e}"))? {
        Column::Num(v) => Ok(v.clone()),
        c @ Column::Str(v) => {
            let classes = counts(c);
            if classes.len() != 2 {
                return Err(format!(
                    "target encoding needs a numeric or two-class target; `{name}` has {} classes",
                    classes.len()
                ));
            }
            let positive = classes
                .iter()
                .find(|(c, _)| {
                    matches!(c.trim().to_ascii_lowercase().as_str(), "yes" | "true" | "1")
                })
                .unwrap_or(&classes[1])
                .0
                .clone();
            Ok(v.iter()
                .map(|s| match s {
                    Some(s) => f64::from(u8::from(*s == positive)),
                    None => f64::NAN,
                })
                .collect())
        }
    }
}

/// Fits `step` on `frame` and applies it there, as training needs: the frame afterwards is the
/// training data for the next step. Target encoding gives the training rows out-of-fold values
/// (a row's own target never shapes its feature); `Fitted::apply` uses the full-data means.
pub fn fit(step: &Step, frame: &mut Frame, target: Option<&str>) -> Result<Fitted, String> {
    let fitted = match step {
        Step::Drop { columns } => {
            for c in columns {
                need(frame, c)?;
            }
            Fitted::Drop {
                columns: columns.clone(),
            }
        }
        Step::Keep { columns } => {
            for c in columns {
                need(frame, c)?;
            }
            let mut columns = columns.clone();
            if let Some(t) = target
                && frame.index(t).is_some()
                && !columns.iter().any(|c| c == t)
            {
                columns.push(t.to_owned());
            }
            Fitted::Keep { columns }
        }
        Step::Rename { columns } => {
            for c in columns.keys() {
                need(frame, c)?;
            }
            Fitted::Rename {
                columns: columns.clone(),
            }
        }
        Step::Filter { predicate, .. } => {
            for c in predicate.columns() {
                need(frame, &c)?;
            }
            Fitted::Filter {
                predicate: predicate.clone(),
            }
        }
        Step::DropMissing { columns } => {
            for c in columns {
                need(frame, c)?;
            }
            Fitted::DropMissing {
                columns: if columns.is_empty() {
                    frame.names().iter().map(|n| n.to_string()).collect()
                } else {
                    columns.clone()
                },
            }
        }
        Step::Cast { columns, to } => {
            for c in columns {
                need(frame, c)?;
            }
            Fitted::Cast {
                columns: columns.clone(),
                to: *to,
            }
        }
        Step::Impute {
            columns,
            strategy,
            value,
        } => {
            let mut fills = Vec::new();
            for c in columns {
                let col = need(frame, c)?;
                let fill = match (strategy, col) {
                    (Impute::Mean, Column::Num(v)) => Scalar::Number(mean_std(v).0),
                    (Impute::Median, Column::Num(v)) => Scalar::Number(quantile(&sorted(v), 0.5)),
                    (Impute::Mean | Impute::Median, Column::Str(_)) => {
                        return Err(format!(
                            "column `{c}` holds text; mean and median need numbers (use strategy = \"mode\" or \"constant\")"
                        ));
                    }
                    (Impute::Mode, col) => {
                        match col {
                            // Ties go to the smallest number, like the text case goes to the first text.
                            Column::Num(v) => {
                                let s = sorted(v);
                                let mut best = (f64::NAN, 0usize);
                                let mut i = 0;
                                while i < s.len() {
                                    let j = s[i..].iter().take_while(|x| **x == s[i]).count();
                                    if j > best.1 {
                                        best = (s[i], j);
                                    }
                                    i += j;
                                }
                                Scalar::Number(best.0)
                            }
                            Column::Str(_) => match counts(col).into_iter().next() {
                                Some((c, _)) => Scalar::Text(c),
                                None => Scalar::Text(String::new()),
                            },
                        }
                    }
                    (Impute::Constant, col) => match (value, col) {
                        (Some(Scalar::Number(x)), Column::Num(_)) => Scalar::Number(*x),
                        (Some(Scalar::Number(x)), Column::Str(_)) => {
                            Scalar::Text(format_num(*x).unwrap_or_default())
                        }
                        (Some(Scalar::Text(s)), Column::Str(_)) => Scalar::Text(s.clone()),
                        (Some(Scalar::Text(s)), Column::Num(_)) => {
                            return Err(format!(
                                "column `{c}` holds numbers; the constant {s:?} is text"
                            ));
                        }
                        (None, _) => return Err("strategy = \"constant\" needs `value`".into()),
                    },
                };
                if matches!(fill, Scalar::Number(x) if x.is_nan()) {
                    return Err(format!("column `{c}` has no values to compute a fill from"));
                }
                fills.push((c.clone(), fill));
            }
            Fitted::Impute { fills }
        }
        Step::Encode {
            columns,
            method,
            max_categories,
            other,
            categories,
            smoothing,
            folds: k,
            seed,
        } => match method {
            Encode::OneHot => {
                let mut out = Vec::new();
                for c in columns {
                    let all = counts(need(frame, c)?);
                    let rest = all.len() > *max_categories;
                    let cats: Vec<String> = all
                        .into_iter()
                        .take(*max_categories)
                        .map(|(c, _)| c)
                        .collect();
                    let mut names: Vec<String> = cats.iter().map(|v| format!("{c}_{v}")).collect();
                    let other = *other && rest;
                    if other {
                        names.push(format!("{c}_other"));
                    }
                    out.push(OneHot {
                        column: c.clone(),
                        categories: cats,
                        names,
                        other,
                    });
                }
                Fitted::OneHot { columns: out }
            }
            Encode::Ordinal => {
                let mut out = Vec::new();
                for c in columns {
                    let col = need(frame, c)?;
                    let cats = match categories {
                        Some(list) => list.clone(),
                        None => {
                            let mut v: Vec<String> =
                                counts(col).into_iter().map(|(c, _)| c).collect();
                            v.sort_unstable();
                            v
                        }
                    };
                    out.push((c.clone(), cats));
                }
                Fitted::Ordinal { columns: out }
            }
            Encode::Frequency => {
                let mut out = Vec::new();
                for c in columns {
                    let col = need(frame, c)?;
                    let n = col.len().max(1) as f64;
                    out.push(Lookup {
                        column: c.clone(),
                        values: counts(col)
                            .into_iter()
                            .map(|(k, m)| (k, m as f64 / n))
                            .collect(),
                        unknown: 0.0,
                        missing: f64::NAN,
                    });
                }
                Fitted::Lookup { columns: out }
            }
            Encode::Target => {
                let y = target_values(frame, target)?;
                let fold = folds(frame.rows(), *k, *seed);
                let mut out = Vec::new();
                let mut oof_cols = Vec::new();
                for c in columns {
                    if Some(c.as_str()) == target {
                        return Err(format!("`{c}` is the target; it cannot encode itself"));
                    }
                    let col = need(frame, c)?;
                    let (full, oof) = target_encode(col, &y, &fold, *k, *smoothing);
                    out.push(Lookup {
                        column: c.clone(),
                        values: full.0,
                        unknown: full.1,
                        missing: full.1,
                    });
                    oof_cols.push((c.clone(), oof));
                }
                // Training rows get out-of-fold values; later data gets the full-data means.
                for (c, v) in oof_cols {
                    frame.set(Name::from(c.as_str()), Column::Num(v));
                }
                return Ok(Fitted::Lookup { columns: out });
            }
        },
        Step::Scale { columns, method } => {
            let mut out = Vec::new();
            for c in columns {
                let v = need_num(frame, c)?;
                let (center, scale) = match method {
                    Scale::Standard => {
                        let (m, s, _) = mean_std(v);
                        (m, s)
                    }
                    Scale::MinMax => {
                        let s = sorted(v);
                        match (s.first(), s.last()) {
                            (Some(lo), Some(hi)) => (*lo, hi - lo),
                            _ => (f64::NAN, f64::NAN),
                        }
                    }
                    Scale::Robust => {
                        let s = sorted(v);
                        (quantile(&s, 0.5), quantile(&s, 0.75) - quantile(&s, 0.25))
                    }
                };
                if center.is_nan() {
                    return Err(format!("column `{c}` has no values to fit on"));
                }
                // A constant column would divide by zero: leave its spread alone.
                let scale = if scale > 0.0 && scale.is_finite() {
                    scale
                } else {
                    1.0
                };
                out.push((c.clone(), center, scale));
            }
            Fitted::Affine { columns: out }
        }
        Step::Log { columns } => {
            for c in columns {
                need_num(frame, c)?;
            }
            Fitted::Log {
                columns: columns.clone(),
            }
        }
        Step::Power { columns, exponent } => {
            for c in columns {
                need_num(frame, c)?;
            }
            Fitted::Power {
                columns: columns.clone(),
                exponent: *exponent,
            }
        }
        Step::Clip {
            columns,
            method,
            lower,
            upper,
            z,
        } => {
            let mut out = Vec::new();
            for c in columns {
                let v = need_num(frame, c)?;
                let (lo, hi) = match method {
                    Clip::Quantile => {
                        let s = sorted(v);
                        (quantile(&s, *lower), quantile(&s, *upper))
                    }
                    Clip::Zscore => {
                        let (m, s, _) = mean_std(v);
                        (m - z * s, m + z * s)
                    }
                };
                if lo.is_nan() {
                    return Err(format!("column `{c}` has no values to fit on"));
                }
                out.push((c.clone(), lo, hi));
            }
            Fitted::Clip { columns: out }
        }
        Step::Bin {
            columns,
            method,
            bins,
        } => {
            let mut out = Vec::new();
            for c in columns {
                let s = sorted(need_num(frame, c)?);
                let (Some(lo), Some(hi)) = (s.first().copied(), s.last().copied()) else {
                    return Err(format!("column `{c}` has no values to fit on"));
                };
                let mut edges: Vec<f64> = (1..*bins)
                    .map(|i| {
                        let f = i as f64 / *bins as f64;
                        match method {
                            Bin::Width => lo + (hi - lo) * f,
                            Bin::Quantile => quantile(&s, f),
                        }
                    })
                    .collect();
                // Ties (a constant stretch of values) would make empty bins: merge them.
                edges.dedup();
                out.push((c.clone(), edges));
            }
            Fitted::Bin { columns: out }
        }
        Step::Spline {
            columns,
            knots,
            degree,
        } => {
            let mut out = Vec::new();
            for c in columns {
                let s = sorted(need_num(frame, c)?);
                // One value (or none) has no shape to bend: no columns, rather than an error
                // that would fail a cross-validation fold that happens to see a single value.
                let Some(basis) = Basis::fit(c, &s, *knots, *degree) else {
                    continue;
                };
                if let Some(taken) = basis.names.iter().find(|n| frame.column(n).is_some()) {
                    return Err(format!(
                        "spline of `{c}` would write column `{taken}`, which already exists"
                    ));
                }
                out.push(basis);
            }
            Fitted::Spline { columns: out }
        }
        Step::Derive { name, expr, .. } => {
            for c in expr.columns() {
                need(frame, &c)?;
            }
            Fitted::Derive {
                name: name.clone(),
                expr: expr.clone(),
            }
        }
        Step::Text {
            columns,
            lower,
            trim,
        } => {
            for c in columns {
                if let Column::Num(_) = need(frame, c)? {
                    return Err(format!("column `{c}` holds numbers; text steps need text"));
                }
            }
            Fitted::Text {
                columns: columns.clone(),
                lower: *lower,
                trim: *trim,
            }
        }
        Step::Dedupe { columns } => {
            for c in columns {
                need(frame, c)?;
            }
            Fitted::Dedupe {
                columns: columns.clone(),
            }
        }
    };
    fitted.apply(frame, Rows::Drop)?;
    Ok(fitted)
}

/// Smoothed per-category target means: the full-data map (and the prior for unknowns), and
/// each row's out-of-fold value.
#[allow(clippy::type_complexity)]
fn target_encode(
    col: &Column,
    y: &[f64],
    fold: &[usize],
    k: usize,
    m: f64,
) -> ((BTreeMap<String, f64>, f64), Vec<f64>) {
    // Per category: (sum, count) overall and per fold.
    let mut stats: HashMap<String, (f64, f64, Vec<(f64, f64)>)> = HashMap::new();
    let mut total = (0.0, 0.0);
    let mut per_fold = vec![(0.0, 0.0); k];
    for i in 0..col.len() {
        if y[i].is_nan() {
            continue;
        }
        total.0 += y[i];
        total.1 += 1.0;
        per_fold[fold[i]].0 += y[i];
        per_fold[fold[i]].1 += 1.0;
        if let Some(c) = category(col, i) {
            let e = stats
                .entry(c.into_owned())
                .or_insert_with(|| (0.0, 0.0, vec![(0.0, 0.0); k]));
            e.0 += y[i];
            e.1 += 1.0;
            e.2[fold[i]].0 += y[i];
            e.2[fold[i]].1 += 1.0;
        }
    }
    let prior = if total.1 > 0.0 {
        total.0 / total.1
    } else {
        0.0
    };
    let smooth = |sum: f64, n: f64, prior: f64| (sum + prior * m) / (n + m);
    let full: BTreeMap<String, f64> = stats
        .iter()
        .map(|(c, (s, n, _))| (c.clone(), smooth(*s, *n, prior)))
        .collect();
    let oof = (0..col.len())
        .map(|i| {
            let f = fold[i];
            let rest = (total.0 - per_fold[f].0, total.1 - per_fold[f].1);
            let prior_f = if rest.1 > 0.0 { rest.0 / rest.1 } else { prior };
            match category(col, i).and_then(|c| stats.get(c.as_ref())) {
                Some((s, n, folds)) => smooth(s - folds[f].0, n - folds[f].1, prior_f),
                None => prior_f,
            }
        })
        .collect();
    ((full, prior), oof)
}

fn num_mut<'a>(frame: &'a mut Frame, name: &str) -> Result<&'a mut Vec<f64>, String> {
    match frame.column_mut(name) {
        Some(Column::Num(v)) => Ok(v),
        Some(Column::Str(_)) => Err(format!("column `{name}` holds text, expected numbers")),
        None => Err(format!("column `{name}` not found")),
    }
}

impl Fitted {
    pub fn op(&self) -> &'static str {
        match self {
            Fitted::Drop { .. } => "drop",
            Fitted::Keep { .. } => "keep",
            Fitted::Rename { .. } => "rename",
            Fitted::Filter { .. } => "filter",
            Fitted::DropMissing { .. } => "drop_missing",
            Fitted::Cast { .. } => "cast",
            Fitted::Impute { .. } => "impute",
            Fitted::OneHot { .. } | Fitted::Ordinal { .. } | Fitted::Lookup { .. } => "encode",
            Fitted::Affine { .. } => "scale",
            Fitted::Log { .. } => "log",
            Fitted::Power { .. } => "power",
            Fitted::Clip { .. } => "clip",
            Fitted::Bin { .. } => "bin",
            Fitted::Spline { .. } => "spline",
            Fitted::Derive { .. } => "derive",
            Fitted::Text { .. } => "text",
            Fitted::Dedupe { .. } => "dedupe",
        }
    }

    /// Applies the fitted step. Columns a step names are present (a fitted recipe first gives
    /// its input every column it was fitted on), so errors here mean a damaged state file.
    pub fn apply(&self, frame: &mut Frame, rows: Rows) -> Result<(), String> {
        match self {
            Fitted::Drop { columns } => {
                for c in columns {
                    frame.remove(c);
                }
            }
            Fitted::Keep { columns } => {
                let kinds: Vec<(Name, Kind)> = columns
                    .iter()
                    .map(|c| {
                        let k = frame.column(c).map_or(Kind::String, Column::kind);
                        (Name::from(c.as_str()), k)
                    })
                    .collect();
                *frame = std::mem::take(frame).select(&kinds);
            }
            Fitted::Rename { columns } => {
                // All at once (by position), so `a -> b, b -> a` swaps.
                let idx: Vec<(usize, &String)> = columns
                    .iter()
                    .filter_map(|(from, to)| frame.index(from).map(|i| (i, to)))
                    .collect();
                for (i, to) in idx {
                    frame.rename_at(i, Name::from(to.as_str()));
                }
            }
            Fitted::Filter { predicate } => {
                if rows == Rows::Drop {
                    let keep = predicate.mask(frame)?;
                    frame.retain_rows(&keep);
                }
            }
            Fitted::DropMissing { columns } => {
                if rows == Rows::Drop {
                    let mut keep = vec![true; frame.rows()];
                    for c in columns {
                        if let Some(col) = frame.column(c) {
                            for (i, k) in keep.iter_mut().enumerate() {
                                *k = *k && !col.is_missing(i);
                            }
                        }
                    }
                    frame.retain_rows(&keep);
                }
            }
            Fitted::Cast { columns, to } => {
                for c in columns {
                    if let Some(i) = frame.index(c) {
                        let name = frame.names()[i].clone();
                        if let Some(col) = frame.remove(c) {
                            frame.insert_at(i, name, col.coerce(*to));
                        }
                    }
                }
            }
            Fitted::Impute { fills } => {
                for (c, fill) in fills {
                    match (frame.column_mut(c), fill) {
                        (Some(Column::Num(v)), Scalar::Number(x)) => {
                            v.iter_mut().filter(|v| v.is_nan()).for_each(|v| *v = *x)
                        }
                        (Some(Column::Str(v)), Scalar::Text(s)) => v
                            .iter_mut()
                            .filter(|v| v.is_none())
                            .for_each(|v| *v = Some(s.clone())),
                        (Some(Column::Str(v)), Scalar::Number(x)) => {
                            let s = format_num(*x);
                            v.iter_mut()
                                .filter(|v| v.is_none())
                                .for_each(|v| *v = s.clone())
                        }
                        (Some(Column::Num(_)), Scalar::Text(_)) => {
                            return Err(format!("column `{c}` holds numbers, the fill is text"));
                        }
                        (None, _) => return Err(format!("column `{c}` not found")),
                    }
                }
            }
            Fitted::OneHot { columns } => {
                for oh in columns {
                    let Some(at) = frame.index(&oh.column) else {
                        return Err(format!("column `{}` not found", oh.column));
                    };
                    let col = frame.remove(&oh.column).unwrap_or(Column::Num(Vec::new()));
                    let n = frame.rows();
                    let index = Index::new(&oh.categories);
                    let mut outs: Vec<Vec<f64>> = vec![vec![0.0; n]; oh.names.len()];
                    #[allow(clippy::needless_range_loop)] // `i` indexes the input and every output
                    for i in 0..n {
                        if let Some(c) = category(&col, i) {
                            match index.get(&c) {
                                Some(j) => outs[j][i] = 1.0,
                                None if oh.other => outs[oh.categories.len()][i] = 1.0,
                                None => {}
                            }
                        }
                    }
                    for (j, (name, v)) in oh.names.iter().zip(outs).enumerate() {
                        frame.insert_at(at + j, Name::from(name.as_str()), Column::Num(v));
                    }
                }
            }
            Fitted::Ordinal { columns } => {
                for (c, cats) in columns {
                    let Some(col) = frame.column(c) else {
                        return Err(format!("column `{c}` not found"));
                    };
                    let index = Index::new(cats);
                    let v: Vec<f64> = (0..col.len())
                        .map(|i| {
                            category(col, i)
                                .and_then(|s| index.get(&s))
                                .map_or(f64::NAN, |j| j as f64)
                        })
                        .collect();
                    frame.set(Name::from(c.as_str()), Column::Num(v));
                }
            }
            Fitted::Lookup { columns } => {
                for l in columns {
                    let Some(col) = frame.column(&l.column) else {
                        return Err(format!("column `{}` not found", l.column));
                    };
                    let v: Vec<f64> = (0..col.len())
                        .map(|i| match category(col, i) {
                            Some(s) => l.values.get(s.as_ref()).copied().unwrap_or(l.unknown),
                            None => l.missing,
                        })
                        .collect();
                    frame.set(Name::from(l.column.as_str()), Column::Num(v));
                }
            }
            Fitted::Affine { columns } => {
                for (c, center, scale) in columns {
                    for x in num_mut(frame, c)? {
                        *x = (*x - center) / scale;
                    }
                }
            }
            Fitted::Log { columns } => {
                for c in columns {
                    for x in num_mut(frame, c)? {
                        *x = x.signum() * x.abs().ln_1p();
                    }
                }
            }
            Fitted::Power { columns, exponent } => {
                for c in columns {
                    for x in num_mut(frame, c)? {
                        let y = x.signum() * x.abs().powf(*exponent);
                        *x = if y.is_finite() { y } else { f64::NAN };
                    }
                }
            }
            Fitted::Clip { columns } => {
                for (c, lo, hi) in columns {
                    for x in num_mut(frame, c)? {
                        if !x.is_nan() {
                            *x = x.clamp(*lo, *hi);
                        }
                    }
                }
            }
            Fitted::Bin { columns } => {
                for (c, edges) in columns {
                    for x in num_mut(frame, c)? {
                        if !x.is_nan() {
                            *x = edges.partition_point(|e| *e <= *x) as f64;
                        }
                    }
                }
            }
            Fitted::Spline { columns } => {
                for basis in columns {
                    let Some(at) = frame.index(&basis.column) else {
                        return Err(format!("column `{}` not found", basis.column));
                    };
                    let v = need_num(frame, &basis.column)?;
                    let mut outs: Vec<Vec<f64>> = vec![vec![0.0; v.len()]; basis.names.len()];
                    let mut row = vec![0.0; basis.names.len()];
                    for (i, x) in v.iter().enumerate() {
                        basis.eval(*x, &mut row);
                        for (o, r) in outs.iter_mut().zip(&row) {
                            o[i] = *r;
                        }
                    }
                    for (j, (name, col)) in basis.names.iter().zip(outs).enumerate() {
                        // A record that already carries such a column gets it replaced, never
                        // a second column of one name.
                        if frame.column(name).is_some() {
                            frame.set(Name::from(name.as_str()), Column::Num(col));
                        } else {
                            frame.insert_at(
                                at + 1 + j,
                                Name::from(name.as_str()),
                                Column::Num(col),
                            );
                        }
                    }
                }
            }
            Fitted::Derive { name, expr } => {
                let col = expr.eval(frame)?;
                frame.set(Name::from(name.as_str()), col);
            }
            Fitted::Text {
                columns,
                lower,
                trim,
            } => {
                for c in columns {
                    if let Some(Column::Str(v)) = frame.column_mut(c) {
                        for s in v.iter_mut().flatten() {
                            if *trim && s.trim().len() != s.len() {
                                *s = s.trim().to_owned();
                            }
                            if *lower && s.chars().any(char::is_uppercase) {
                                *s = s.to_lowercase();
                            }
                        }
                    }
                }
            }
            Fitted::Dedupe { columns } => {
                if rows == Rows::Drop {
                    let cols: Vec<&Column> = if columns.is_empty() {
                        frame.columns().map(|(_, c)| c).collect()
                    } else {
                        columns.iter().filter_map(|c| frame.column(c)).collect()
                    };
                    let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(frame.rows());
                    let keep: Vec<bool> = (0..frame.rows())
                        .map(|i| {
                            let mut key = Vec::new();
                            for c in &cols {
                                match c {
                                    Column::Num(v) => {
                                        // All NaNs are one "missing" value.
                                        let x = if v[i].is_nan() { f64::NAN } else { v[i] };
                                        key.extend_from_slice(&x.to_bits().to_le_bytes());
                                    }
                                    Column::Str(v) => match &v[i] {
                                        Some(s) => {
                                            key.push(1);
                                            key.extend_from_slice(&(s.len() as u64).to_le_bytes());
                                            key.extend_from_slice(s.as_bytes());
                                        }
                                        None => key.push(0),
                                    },
                                }
                            }
                            seen.insert(key)
                        })
                        .collect();
                    frame.retain_rows(&keep);
                }
            }
        }
        Ok(())
    }
}
