//! Metrics, curves and the F1 threshold, computed the way scikit-learn does (so figures can be
//! checked against it): AUC from ranks with ties averaged (`millrace_wrangle::stats::auc`, the
//! one the data-quality report uses too), F1 of the positive class, log loss with
//! probabilities clipped to [1e-15, 1 - 1e-15].

use millrace_wrangle::stats;
use serde::{Deserialize, Serialize};

/// ROC AUC of scores for labels (`true` = positive); NaN when a class is absent.
pub fn auc(y: &[bool], score: &[f64]) -> f64 {
    stats::auc(y, score).unwrap_or(f64::NAN)
}

/// Binary metrics at a threshold (and AUC, which needs none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    pub auc: f64,
    pub f1: f64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub log_loss: f64,
    pub confusion: Confusion,
}

impl BinaryMetrics {
    pub fn of(y: &[bool], p: &[f64], threshold: f64) -> Self {
        let c = Confusion::of(y, &at(p, threshold));
        Self {
            auc: auc(y, p),
            f1: c.f1(),
            accuracy: c.accuracy(),
            balanced_accuracy: c.balanced_accuracy(),
            precision: c.precision(),
            recall: c.recall(),
            log_loss: log_loss(y, p),
            confusion: c,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Confusion {
    pub fn of(y: &[bool], predicted: &[bool]) -> Self {
        let mut c = Confusion::default();
        for (t, p) in y.iter().zip(predicted) {
            match (t, p) {
                (true, true) => c.tp += 1,
                (false, true) => c.fp += 1,
                (false, false) => c.tn += 1,
                (true, false) => c.fn_ += 1,
            }
        }
        c
    }

    pub fn f1(&self) -> f64 {
        let d = 2 * self.tp + self.fp + self.fn_;
        if d == 0 {
            0.0
        } else {
            2.0 * self.tp as f64 / d as f64
        }
    }

    pub fn accuracy(&self) -> f64 {
        let n = self.tp + self.fp + self.tn + self.fn_;
        if n == 0 {
            0.0
        } else {
            (self.tp + self.tn) as f64 / n as f64
        }
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    pub fn balanced_accuracy(&self) -> f64 {
        (ratio(self.tp, self.tp + self.fn_) + ratio(self.tn, self.tn + self.fp)) / 2.0
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Predictions at `threshold` (positive when the probability is at least it).
pub fn at(p: &[f64], threshold: f64) -> Vec<bool> {
    p.iter().map(|x| *x >= threshold).collect()
}

/// Probabilities are clipped to `[EPS, 1 − EPS]` before their logarithm.
const EPS: f64 = 1e-15;

/// One example's log loss: `p` the predicted probability of the positive class.
pub fn log_loss_row(positive: bool, p: f64) -> f64 {
    let p = p.clamp(EPS, 1.0 - EPS);
    if positive { -p.ln() } else { -(1.0 - p).ln() }
}

/// One example's multiclass log loss: `p` the predicted probability of its class.
pub fn log_loss_multi_row(p: f64) -> f64 {
    -p.clamp(EPS, 1.0 - EPS).ln()
}

pub fn log_loss(y: &[bool], p: &[f64]) -> f64 {
    let s: f64 = y.iter().zip(p).map(|(t, p)| log_loss_row(*t, *p)).sum();
    s / y.len().max(1) as f64
}

/// Cuts between distinct scores, from the highest down: for each distinct score, the positives
/// and negatives scoring at least it, and the next lower score (if any).
fn cuts(y: &[bool], score: &[f64]) -> Vec<(usize, usize, f64, Option<f64>)> {
    let mut order: Vec<usize> = (0..y.len()).collect();
    order.sort_unstable_by(|a, b| score[*b].total_cmp(&score[*a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut out = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let v = score[order[i]];
        while i < order.len() && score[order[i]] == v {
            if y[order[i]] {
                tp += 1
            } else {
                fp += 1
            }
            i += 1;
        }
        out.push((tp, fp, v, order.get(i).map(|n| score[*n])));
    }
    out
}

/// The threshold that maximises F1 on these (out-of-fold) probabilities, and that F1. Every
/// distinct probability is a candidate; the returned threshold is the midpoint between the
/// chosen probability and the next lower one, so a score equal to a training value lands on
/// the same side as in training.
pub fn best_f1_threshold(y: &[bool], p: &[f64]) -> (f64, f64) {
    let pos = y.iter().filter(|b| **b).count();
    if pos == 0 {
        return (0.5, 0.0);
    }
    let (mut best, mut best_t) = (-1.0, 0.5);
    for (tp, fp, v, next) in cuts(y, p) {
        // Everything scoring ≥ v is predicted positive.
        let f1 = 2.0 * tp as f64 / (2 * tp + fp + (pos - tp)) as f64;
        if f1 > best {
            best = f1;
            best_t = next.map_or(v, |n| (v + n) / 2.0);
        }
    }
    (best_t, best)
}

/// Points (false positive rate, true positive rate) of the ROC curve, one per distinct score.
pub fn roc_curve(y: &[bool], score: &[f64]) -> Vec<(f64, f64)> {
    let pos = y.iter().filter(|b| **b).count().max(1) as f64;
    let neg = (y.len() as f64 - pos).max(1.0);
    let mut out = vec![(0.0, 0.0)];
    out.extend(
        cuts(y, score)
            .into_iter()
            .map(|(tp, fp, _, _)| (fp as f64 / neg, tp as f64 / pos)),
    );
    out
}

/// Points (recall, precision) of the precision-recall curve, one per distinct score.
pub fn pr_curve(y: &[bool], score: &[f64]) -> Vec<(f64, f64)> {
    let pos = y.iter().filter(|b| **b).count().max(1) as f64;
    cuts(y, score)
        .into_iter()
        .map(|(tp, fp, _, _)| (tp as f64 / pos, tp as f64 / (tp + fp) as f64))
        .collect()
}

/// Multiclass: accuracy of the most probable class.
pub fn accuracy_multi(class: &[usize], predicted: &[usize]) -> f64 {
    let hit = class.iter().zip(predicted).filter(|(a, b)| a == b).count();
    hit as f64 / class.len().max(1) as f64
}

/// Multiclass: unweighted mean of each class's F1 (classes that never occur and are never
/// predicted are left out, as scikit-learn's labels default does).
pub fn macro_f1(class: &[usize], predicted: &[usize], k: usize) -> f64 {
    let mut sum = 0.0;
    let mut n = 0;
    for c in 0..k {
        let y: Vec<bool> = class.iter().map(|x| *x == c).collect();
        let p: Vec<bool> = predicted.iter().map(|x| *x == c).collect();
        if !y.iter().any(|b| *b) && !p.iter().any(|b| *b) {
            continue;
        }
        sum += Confusion::of(&y, &p).f1();
        n += 1;
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Multiclass log loss; `p` holds one row of `k` probabilities per example.
pub fn log_loss_multi(class: &[usize], p: &[f64], k: usize) -> f64 {
    let s: f64 = class
        .iter()
        .enumerate()
        .map(|(i, c)| log_loss_multi_row(p[i * k + c]))
        .sum();
    s / class.len().max(1) as f64
}

pub fn rmse(y: &[f64], p: &[f64]) -> f64 {
    (y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / y.len().max(1) as f64).sqrt()
}

pub fn mae(y: &[f64], p: &[f64]) -> f64 {
    y.iter().zip(p).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len().max(1) as f64
}

pub fn r2(y: &[f64], p: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
    let ss_tot: f64 = y.iter().map(|a| (a - mean) * (a - mean)).sum();
    let ss_res: f64 = y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum();
    if ss_tot == 0.0 {
        0.0
    } else {
        1.0 - ss_res / ss_tot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_is_nan_without_both_classes() {
        // The values themselves are `millrace_wrangle::stats::auc`'s, tested there.
        assert_eq!(auc(&[false, true, true], &[0.2, 0.2, 0.9]), 0.75);
        assert!(auc(&[true, true], &[0.1, 0.2]).is_nan());
    }

    #[test]
    fn confusion_metrics_and_threshold() {
        let y = [true, true, false, false, true, false];
        let p = [0.9, 0.6, 0.55, 0.2, 0.3, 0.1];
        let c = Confusion::of(&y, &at(&p, 0.5));
        assert_eq!((c.tp, c.fp, c.tn, c.fn_), (2, 1, 2, 1));
        assert!((c.f1() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.accuracy() - 4.0 / 6.0).abs() < 1e-12);
        // Cuts (top k predicted positive): k=2 → 4/5, k=3 → 4/6, k=4 → tp 3, fp 1 → 6/7 (best),
        // k=5 → 6/8.
        let (t, f1) = best_f1_threshold(&y, &p);
        assert!((f1 - 6.0 / 7.0).abs() < 1e-12, "{f1}");
        assert!((t - 0.25).abs() < 1e-12, "{t}");
        assert!((Confusion::of(&y, &at(&p, t)).f1() - f1).abs() < 1e-12);
        let roc = roc_curve(&y, &p);
        assert_eq!(roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        assert!(
            (log_loss(&[true, false], &[0.8, 0.4]) - (-(0.8f64.ln()) - 0.6f64.ln()) / 2.0).abs()
                < 1e-12
        );
    }

    #[test]
    fn multiclass_and_regression() {
        assert_eq!(accuracy_multi(&[0, 1, 2, 2], &[0, 2, 2, 2]), 0.75);
        // Class F1s: 0 → 1.0, 1 → 0.0, 2 → 0.8; mean 0.6.
        assert!((macro_f1(&[0, 1, 2, 2], &[0, 2, 2, 2], 3) - 0.6).abs() < 1e-12);
        assert_eq!(rmse(&[1.0, 3.0], &[2.0, 3.0]), (0.5f64).sqrt());
        assert_eq!(mae(&[1.0, 3.0], &[2.0, 5.0]), 1.5);
        assert_eq!(r2(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
    }
}
