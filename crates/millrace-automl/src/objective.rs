//! What "better" means: the metric a build is chosen by (`--objective`), its default per task,
//! how it scores predictions, and the decision threshold it implies for a binary model.
//!
//! Threshold metrics (F1, accuracy, balanced accuracy) tune the binary threshold on
//! out-of-fold predictions; ranking and probability metrics (AUC, log loss) keep 0.5, where a
//! calibrated model's most likely label is.

use serde::{Deserialize, Serialize};

use crate::error::AutoMlError;
use crate::metrics::{self, Confusion};
use crate::problem::Task;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    F1,
    Accuracy,
    BalancedAccuracy,
    Auc,
    LogLoss,
    MacroF1,
    Rmse,
    Mae,
    R2,
}

/// Names `--objective` accepts, per task.
const BINARY: [Objective; 5] = [
    Objective::F1,
    Objective::Accuracy,
    Objective::BalancedAccuracy,
    Objective::Auc,
    Objective::LogLoss,
];
const MULTICLASS: [Objective; 3] = [Objective::Accuracy, Objective::MacroF1, Objective::LogLoss];
const REGRESSION: [Objective; 3] = [Objective::Rmse, Objective::Mae, Objective::R2];

impl Objective {
    pub fn name(self) -> &'static str {
        match self {
            Objective::F1 => "f1",
            Objective::Accuracy => "accuracy",
            Objective::BalancedAccuracy => "balanced_accuracy",
            Objective::Auc => "auc",
            Objective::LogLoss => "log_loss",
            Objective::MacroF1 => "macro_f1",
            Objective::Rmse => "rmse",
            Objective::Mae => "mae",
            Objective::R2 => "r2",
        }
    }

    fn allowed(task: &Task) -> &'static [Objective] {
        match task {
            Task::Binary { .. } => &BINARY,
            Task::Multiclass { .. } => &MULTICLASS,
            Task::Regression => &REGRESSION,
        }
    }

    /// The default for a task: F1 for binary (as Autopilot), accuracy for multiclass, RMSE for
    /// regression.
    pub fn default_for(task: &Task) -> Objective {
        match task {
            Task::Binary { .. } => Objective::F1,
            Task::Multiclass { .. } => Objective::Accuracy,
            Task::Regression => Objective::Rmse,
        }
    }

    /// `name` (as `--objective` gives it) for `task`, or an error listing what the task takes.
    pub fn parse(name: &str, task: &Task) -> Result<Objective, AutoMlError> {
        let allowed = Self::allowed(task);
        let kind = match task {
            Task::Binary { .. } => "binary",
            Task::Multiclass { .. } => "multiclass",
            Task::Regression => "regression",
        };
        let wanted = name.trim().to_ascii_lowercase().replace('-', "_");
        allowed
            .iter()
            .copied()
            .find(|o| o.name() == wanted || (wanted == "roc_auc" && *o == Objective::Auc))
            .ok_or_else(|| {
                AutoMlError::Data(format!(
                    "objective `{name}` does not apply to a {kind} target; use one of: {}",
                    allowed
                        .iter()
                        .map(|o| o.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(self, Objective::LogLoss | Objective::Rmse | Objective::Mae)
    }

    /// Whether a binary model's threshold is tuned for this metric.
    pub fn tunes_threshold(self) -> bool {
        matches!(
            self,
            Objective::F1 | Objective::Accuracy | Objective::BalancedAccuracy
        )
    }

    /// `a` is better than `b` on this metric (NaN is never better).
    pub fn better(self, a: f64, b: f64) -> bool {
        if a.is_nan() {
            return false;
        }
        if b.is_nan() {
            return true;
        }
        if self.higher_is_better() {
            a > b
        } else {
            a < b
        }
    }

    /// The binary decision threshold for probabilities `p` of labels `y`, and the metric there.
    pub fn threshold(self, y: &[bool], p: &[f64]) -> f64 {
        match self {
            Objective::F1 => metrics::best_f1_threshold(y, p).0,
            Objective::Accuracy | Objective::BalancedAccuracy => {
                best_threshold(y, p, |c| match self {
                    Objective::Accuracy => c.accuracy(),
                    _ => c.balanced_accuracy(),
                })
            }
            _ => 0.5,
        }
    }

    /// Scores predictions: binary `p` is the positive probability (labels at `threshold`),
    /// multiclass `p` holds `k` probabilities per row, regression `p` the values.
    pub fn score(self, task: &Task, y: &[f64], p: &[f64], threshold: f64) -> f64 {
        match task {
            Task::Binary { .. } => {
                let yb: Vec<bool> = y.iter().map(|v| *v == 1.0).collect();
                let c = || Confusion::of(&yb, &metrics::at(p, threshold));
                match self {
                    Objective::F1 => c().f1(),
                    Objective::Accuracy => c().accuracy(),
                    Objective::BalancedAccuracy => c().balanced_accuracy(),
                    Objective::Auc => metrics::auc(&yb, p),
                    _ => metrics::log_loss(&yb, p),
                }
            }
            Task::Multiclass { classes } => {
                let k = classes.len();
                let class: Vec<usize> = y.iter().map(|v| *v as usize).collect();
                match self {
                    Objective::LogLoss => metrics::log_loss_multi(&class, p, k),
                    Objective::MacroF1 => macro_f1_of(&class, p, k),
                    _ => metrics::accuracy_multi(&class, &argmax_rows(p, k)),
                }
            }
            Task::Regression => match self {
                Objective::Mae => metrics::mae(y, p),
                Objective::R2 => metrics::r2(y, p),
                _ => metrics::rmse(y, p),
            },
        }
    }
}

fn macro_f1_of(class: &[usize], p: &[f64], k: usize) -> f64 {
    metrics::macro_f1(class, &argmax_rows(p, k), k)
}

/// The most probable class of each row of `k` probabilities (ties: the first).
pub fn argmax_rows(p: &[f64], k: usize) -> Vec<usize> {
    p.chunks(k.max(1))
        .map(|row| {
            let mut best = 0;
            for (j, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// The threshold (midpoint between neighbouring distinct scores) that maximises `metric`.
fn best_threshold(y: &[bool], p: &[f64], metric: impl Fn(&Confusion) -> f64) -> f64 {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_unstable_by(|a, b| p[*b].total_cmp(&p[*a]));
    let pos = y.iter().filter(|b| **b).count();
    let neg = y.len() - pos;
    // Start with everything negative (threshold above the top score).
    let mut c = Confusion {
        tp: 0,
        fp: 0,
        tn: neg,
        fn_: pos,
    };
    let (mut best, mut best_t) = (metric(&c), p.iter().copied().fold(0.5, f64::max) + 1e-9);
    let mut i = 0;
    while i < order.len() {
        let v = p[order[i]];
        while i < order.len() && p[order[i]] == v {
            if y[order[i]] {
                c.tp += 1;
                c.fn_ -= 1;
            } else {
                c.fp += 1;
                c.tn -= 1;
            }
            i += 1;
        }
        let m = metric(&c);
        if m > best {
            best = m;
            best_t = order.get(i).map_or(v, |n| (v + p[*n]) / 2.0);
        }
    }
    best_t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary() -> Task {
        Task::Binary {
            positive: "Yes".into(),
            negative: "No".into(),
        }
    }

    #[test]
    fn parse_names_what_a_task_takes() {
        assert_eq!(Objective::parse("F1", &binary()).unwrap(), Objective::F1);
        assert_eq!(
            Objective::parse("roc-auc", &binary()).unwrap(),
            Objective::Auc
        );
        let e = Objective::parse("rmse", &binary()).unwrap_err().to_string();
        assert!(e.contains("does not apply to a binary target"), "{e}");
        assert!(
            e.contains("f1, accuracy, balanced_accuracy, auc, log_loss"),
            "{e}"
        );
        assert_eq!(
            Objective::parse("macro_f1", &Task::Multiclass { classes: vec![] }).unwrap(),
            Objective::MacroF1
        );
    }

    #[test]
    fn accuracy_threshold_is_the_best_cut() {
        let y = [true, true, false, false, true, false];
        let p = [0.9, 0.6, 0.55, 0.2, 0.3, 0.1];
        let t = Objective::Accuracy.threshold(&y, &p);
        let acc = Objective::Accuracy.score(&binary(), &y.map(|b| f64::from(u8::from(b))), &p, t);
        // Best cut: predict {0.9, 0.6} positive → 5/6 correct? 0.55 negative ok, 0.3 missed → 5/6.
        assert!((acc - 5.0 / 6.0).abs() < 1e-12, "{acc} at {t}");
        assert!(t > 0.55 && t < 0.6, "{t}");
    }
}
