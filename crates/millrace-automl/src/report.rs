//! What a build reports (`metrics.json`): the leaderboard (each candidate's cross-validated and
//! test score, fit time, ensemble weight), the ensemble's metrics on the out-of-fold and the
//! test predictions, confusion matrix, ROC and precision-recall curves, and column impact
//! (permutation importance on the test part).

use millrace_wrangle::{Column, Frame};
use serde::{Deserialize, Serialize};

use crate::error::AutoMlError;
use crate::features::{Columns, Family};
use crate::metrics::{self, BinaryMetrics, Confusion};
use crate::model::ModelArtifact;
use crate::objective::{Objective, argmax_rows};
use crate::problem::Task;
use crate::rng::Rng;
use crate::search::{Algo, Mode};

pub const FORMAT: &str = "millrace.model-report.v1";
/// Curves are thinned to about this many points.
const CURVE_POINTS: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub family: Family,
    /// The configuration (boosting: with the cross-validated round count).
    pub algo: Algo,
    /// Out-of-fold score on the training part (the objective).
    pub cv: f64,
    /// The refitted candidate's score on the test part (reported, never used to choose).
    pub test: f64,
    /// Binary: this candidate's own out-of-fold threshold.
    pub threshold: Option<f64>,
    pub cv_seconds: f64,
    pub fit_seconds: f64,
    /// Share in the ensemble (0 = not selected).
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Metrics {
    Binary(BinaryMetrics),
    Multiclass {
        accuracy: f64,
        macro_f1: f64,
        log_loss: f64,
        /// `confusion[true][predicted]`, classes in `classes` order.
        confusion: Vec<Vec<usize>>,
    },
    Regression {
        rmse: f64,
        mae: f64,
        r2: f64,
    },
}

impl Metrics {
    pub fn of(task: &Task, y: &[f64], p: &[f64], threshold: f64) -> Metrics {
        match task {
            Task::Binary { .. } => {
                let yb: Vec<bool> = y.iter().map(|v| *v == 1.0).collect();
                Metrics::Binary(BinaryMetrics::of(&yb, p, threshold))
            }
            Task::Multiclass { classes } => {
                let k = classes.len();
                let class: Vec<usize> = y.iter().map(|v| *v as usize).collect();
                let pred = argmax_rows(p, k);
                let mut confusion = vec![vec![0; k]; k];
                for (t, q) in class.iter().zip(&pred) {
                    confusion[*t][*q] += 1;
                }
                Metrics::Multiclass {
                    accuracy: metrics::accuracy_multi(&class, &pred),
                    macro_f1: metrics::macro_f1(&class, &pred, k),
                    log_loss: metrics::log_loss_multi(&class, p, k),
                    confusion,
                }
            }
            Task::Regression => Metrics::Regression {
                rmse: metrics::rmse(y, p),
                mae: metrics::mae(y, p),
                r2: metrics::r2(y, p),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curves {
    /// (false positive rate, true positive rate)
    pub roc: Vec<(f64, f64)>,
    /// (recall, precision)
    pub pr: Vec<(f64, f64)>,
    /// (threshold, true positives, false positives) on the test part when a record is
    /// positive at probability ≥ threshold: every distinct probability, thinned evenly by
    /// rank to at most `CURVE_POINTS`, highest first. Exact confusion matrices at those cuts,
    /// for a threshold slider (absent in older reports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cuts: Vec<(f64, u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Impact {
    pub column: String,
    /// How much worse the test score gets when this column's values are shuffled.
    pub drop: f64,
}

/// One input column's contributions to the margin over a sample of test rows: what the
/// report's mean-|contribution| impact and beeswarm are drawn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnContributions {
    pub column: String,
    /// Mean |contribution| over the sample.
    pub mean_abs: f64,
    /// Per sampled row: its contribution, and where its value sits among the sample's
    /// (0 lowest to 1 highest; `None` for text).
    pub points: Vec<(f64, Option<f64>)>,
}

/// Test rows the contribution figures are computed on (evenly spaced): TreeSHAP on deep forests
/// takes milliseconds a row.
const CONTRIBUTION_ROWS: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
    pub name: String,
    pub version: u32,
    pub target: String,
    pub task: Task,
    pub objective: Objective,
    pub threshold: f64,
    pub seed: u64,
    pub mode: Mode,
    pub folds: usize,
    pub train_rows: usize,
    pub test_rows: usize,
    pub columns: Columns,
    pub leaderboard: Vec<Entry>,
    /// The ensemble on out-of-fold predictions of the training part.
    pub cv: Metrics,
    /// The same, fold by fold: the spread of the estimate (absent in reports written before
    /// it existed). Its weights and threshold were chosen on these predictions too, so it is
    /// a little optimistic; the test part is the unbiased figure, on one split.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cv_folds: Vec<Metrics>,
    /// The ensemble on the held-out test part.
    pub test: Metrics,
    pub curves: Option<Curves>,
    /// Metric the impact is measured in (`auc`, `log_loss`, `rmse`).
    pub impact_metric: String,
    pub impact: Vec<Impact>,
    /// Per input column, largest mean |contribution| first (absent in older reports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contributions: Vec<ColumnContributions>,
    pub seconds: f64,
}

pub(crate) struct Inputs<'a> {
    pub columns: &'a Columns,
    pub folds: usize,
    pub mode: Mode,
    pub leaderboard: Vec<Entry>,
    pub cv_y: &'a [f64],
    pub cv_values: &'a [f64],
    /// Per fold, its validation rows (indices into `cv_y`).
    pub cv_folds: &'a [Vec<usize>],
    pub test_frame: &'a Frame,
    pub test_y: &'a [f64],
    pub test_values: &'a [f64],
    pub seconds: f64,
}

/// The confusion counts at each distinct probability taken as the threshold (see
/// [`Curves::cuts`]).
fn cuts(y: &[bool], p: &[f64]) -> Vec<(f64, u64, u64)> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_finite()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let mut all: Vec<(f64, u64, u64)> = Vec::new();
    let (mut tp, mut fp) = (0u64, 0u64);
    for (k, &i) in order.iter().enumerate() {
        if y[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        // A cut after the last record of each distinct probability.
        if order.get(k + 1).is_none_or(|&j| p[j] != p[i]) {
            all.push((p[i], tp, fp));
        }
    }
    if all.len() <= CURVE_POINTS {
        return all;
    }
    // Every `step`-th cut and the last one: at most CURVE_POINTS.
    let last = all.len() - 1;
    let step = last.div_ceil(CURVE_POINTS - 1);
    all.into_iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == last)
        .map(|(_, c)| c)
        .collect()
}

fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if points.len() <= CURVE_POINTS {
        return points;
    }
    let step = points.len().div_ceil(CURVE_POINTS);
    let last = points.len() - 1;
    points
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == last)
        .map(|(_, p)| p)
        .collect()
}

/// A threshold-free score for impact: AUC (binary), log loss (multiclass), RMSE (regression).
fn impact_score(task: &Task, y: &[f64], p: &[f64]) -> (Objective, f64) {
    let o = match task {
        Task::Binary { .. } => Objective::Auc,
        Task::Multiclass { .. } => Objective::LogLoss,
        Task::Regression => Objective::Rmse,
    };
    (o, o.score(task, y, p, 0.5))
}

/// Contributions on up to [`CONTRIBUTION_ROWS`] evenly spaced test rows, per column, largest
/// mean |contribution| first (empty when the model cannot be explained).
fn contributions(model: &ModelArtifact, test: &Frame) -> Vec<ColumnContributions> {
    let n = test.rows();
    if n == 0 {
        return Vec::new();
    }
    let step = n.div_ceil(CONTRIBUTION_ROWS).max(1);
    let rows: Vec<usize> = (0..n).step_by(step).collect();
    let sample = test.take_rows(&rows);
    let Ok((_, explained)) = model.explain_prepared(&sample) else {
        return Vec::new();
    };
    let Some(first) = explained.first() else {
        return Vec::new();
    };
    let mut out: Vec<ColumnContributions> = first
        .contributions
        .iter()
        .enumerate()
        .map(|(j, (column, _))| {
            let values = ranks(sample.column(column.as_str()));
            let points: Vec<(f64, Option<f64>)> = explained
                .iter()
                .enumerate()
                .map(|(r, e)| (e.contributions[j].1, values.get(r).copied().flatten()))
                .collect();
            let mean_abs = points.iter().map(|p| p.0.abs()).sum::<f64>() / points.len() as f64;
            ColumnContributions {
                column: column.clone(),
                mean_abs,
                points,
            }
        })
        .collect();
    out.sort_by(|a, b| b.mean_abs.total_cmp(&a.mean_abs));
    out
}

/// Each value's place among the column's (0 lowest, 1 highest) when the column is numbers or
/// text that reads as numbers; `None` per value otherwise.
fn ranks(col: Option<&Column>) -> Vec<Option<f64>> {
    let values: Vec<f64> = match col {
        Some(Column::Num(v)) => v.clone(),
        Some(Column::Str(v)) => v
            .iter()
            .map(|s| millrace_wrangle::frame::coerce_str(s.as_deref()))
            .collect(),
        None => return Vec::new(),
    };
    let (lo, hi) = values
        .iter()
        .filter(|v| !v.is_nan())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(*v), h.max(*v))
        });
    let numeric = values.iter().filter(|v| !v.is_nan()).count() * 2 > values.len();
    values
        .iter()
        .map(|v| (numeric && !v.is_nan() && hi > lo).then(|| (v - lo) / (hi - lo)))
        .collect()
}

fn shuffled(col: &Column, order: &[usize]) -> Column {
    match col {
        Column::Num(v) => Column::Num(order.iter().map(|i| v[*i]).collect()),
        Column::Str(v) => Column::Str(order.iter().map(|i| v[*i].clone()).collect()),
    }
}

pub(crate) fn build(model: &ModelArtifact, inp: &Inputs) -> Result<Report, AutoMlError> {
    let task = &model.task;
    let curves = match task {
        Task::Binary { .. } => {
            let yb: Vec<bool> = inp.test_y.iter().map(|v| *v == 1.0).collect();
            Some(Curves {
                roc: thin(metrics::roc_curve(&yb, inp.test_values)),
                pr: thin(metrics::pr_curve(&yb, inp.test_values)),
                cuts: cuts(&yb, inp.test_values),
            })
        }
        _ => None,
    };
    // Permutation importance: each feature column shuffled (seeded) on the test part.
    let (metric, base) = impact_score(task, inp.test_y, inp.test_values);
    let mut rng = Rng::new(model.seed ^ 0x1A7AC7);
    let mut order: Vec<usize> = (0..inp.test_frame.rows()).collect();
    let mut impact = Vec::new();
    for (name, col) in inp.test_frame.columns() {
        if **name == *model.target || inp.columns.dropped.iter().any(|(c, _)| **c == **name) {
            continue;
        }
        rng.shuffle(&mut order);
        let mut f = inp.test_frame.clone();
        f.set(name.clone(), shuffled(col, &order));
        let p = model.predict_prepared(&f)?.values;
        let (_, s) = impact_score(task, inp.test_y, &p);
        let drop = if metric.higher_is_better() {
            base - s
        } else {
            s - base
        };
        impact.push(Impact {
            column: name.to_string(),
            drop,
        });
    }
    impact.sort_by(|a, b| b.drop.total_cmp(&a.drop));
    let contributions = contributions(model, inp.test_frame);
    Ok(Report {
        format: FORMAT.to_owned(),
        name: model.name.clone(),
        version: model.version,
        target: model.target.clone(),
        task: task.clone(),
        objective: model.objective,
        threshold: model.threshold,
        seed: model.seed,
        mode: inp.mode,
        folds: inp.folds,
        train_rows: inp.cv_y.len(),
        test_rows: inp.test_y.len(),
        columns: inp.columns.clone(),
        leaderboard: inp.leaderboard.clone(),
        cv: Metrics::of(task, inp.cv_y, inp.cv_values, model.threshold),
        cv_folds: inp
            .cv_folds
            .iter()
            .map(|rows| {
                let w = model.width();
                let y: Vec<f64> = rows.iter().map(|&i| inp.cv_y[i]).collect();
                let p: Vec<f64> = rows
                    .iter()
                    .flat_map(|&i| inp.cv_values[i * w..(i + 1) * w].iter().copied())
                    .collect();
                Metrics::of(task, &y, &p, model.threshold)
            })
            .collect(),
        test: Metrics::of(task, inp.test_y, inp.test_values, model.threshold),
        curves,
        impact_metric: metric.name().to_owned(),
        impact,
        contributions,
        seconds: inp.seconds,
    })
}

impl Report {
    /// The headline test figures as `name value` pairs, for printing.
    pub fn headline(&self) -> Vec<(&'static str, f64)> {
        figures(&self.test)
    }

    /// The headline figures cross-validated: `(name, mean, standard deviation)` over the folds
    /// (empty for a report without per-fold figures).
    pub fn cv_spread(&self) -> Vec<(&'static str, f64, f64)> {
        let per_fold: Vec<Vec<(&'static str, f64)>> = self.cv_folds.iter().map(figures).collect();
        let Some(first) = per_fold.first() else {
            return Vec::new();
        };
        (0..first.len())
            .map(|j| {
                let v: Vec<f64> = per_fold.iter().map(|f| f[j].1).collect();
                let n = v.len() as f64;
                let mean = v.iter().sum::<f64>() / n;
                let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
                (first[j].0, mean, var.sqrt())
            })
            .collect()
    }

    pub fn confusion(&self) -> Option<Confusion> {
        match &self.test {
            Metrics::Binary(m) => Some(m.confusion),
            _ => None,
        }
    }
}

/// A set of metrics as `name value` pairs, headline first.
fn figures(m: &Metrics) -> Vec<(&'static str, f64)> {
    match m {
        Metrics::Binary(m) => vec![
            ("auc", m.auc),
            ("f1", m.f1),
            ("accuracy", m.accuracy),
            ("precision", m.precision),
            ("recall", m.recall),
            ("log_loss", m.log_loss),
        ],
        Metrics::Multiclass {
            accuracy,
            macro_f1,
            log_loss,
            ..
        } => vec![
            ("accuracy", *accuracy),
            ("macro_f1", *macro_f1),
            ("log_loss", *log_loss),
        ],
        Metrics::Regression { rmse, mae, r2 } => {
            vec![("rmse", *rmse), ("mae", *mae), ("r2", *r2)]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_are_the_confusion_counts_at_each_distinct_probability() {
        let y = [true, false, true, true, false, false, true];
        let p = [0.9, 0.8, 0.8, 0.4, 0.3, f64::NAN, 0.1];
        let got = cuts(&y, &p);
        assert_eq!(
            got,
            [
                (0.9, 1, 0),
                (0.8, 2, 1),
                (0.4, 3, 1),
                (0.3, 3, 2),
                (0.1, 4, 2)
            ]
        );
        for (t, tp, fp) in got {
            let c = metrics::Confusion::of(&y, &metrics::at(&p, t));
            assert_eq!((c.tp as u64, c.fp as u64), (tp, fp), "threshold {t}");
        }
        let many: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        let yy: Vec<bool> = (0..1000).map(|i| i % 3 == 0).collect();
        let thinned = cuts(&yy, &many);
        assert!(thinned.len() <= CURVE_POINTS);
        assert_eq!(thinned.last(), Some(&(0.0, 334, 666)));
    }
}
