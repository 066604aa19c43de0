//! Ensemble selection over out-of-fold predictions (Caruana et al., 2004): start from the best
//! single model, then repeatedly add (with replacement) the candidate whose addition most
//! improves the averaged predictions; a model's weight is how often it was picked.
//!
//! Selection minimises a smooth loss — log loss for classification, squared error for
//! regression — rather than a threshold metric such as F1, whose out-of-fold value jumps with a
//! handful of rows and would pick noise. The threshold is tuned afterwards on the ensemble.
//!
//! Classifiers are averaged in log-odds (binary) or log-probability (multiclass) space and
//! mapped back through the sigmoid or softmax ([`Blend::Logit`]): a confident, well-ranked
//! member is not flattened towards the others' hedged probabilities, and the blend stays a
//! proper probability. On out-of-fold predictions (selected on some folds, scored on the
//! others) it matched the plain average on binary data and lowered multiclass log loss.

use serde::{Deserialize, Serialize};

use crate::metrics;
use crate::problem::Task;

/// Rounds of selection: enough for weights in 1/25 steps.
pub const ROUNDS: usize = 25;

/// How members' predictions are averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blend {
    /// The weighted mean of the outputs (probabilities or values); models saved before
    /// `blend` existed use it.
    #[default]
    Mean,
    /// Classification: the weighted mean of log-odds (binary) or log-probabilities
    /// (multiclass), back through the sigmoid or softmax.
    Logit,
}

/// Probabilities are clipped to this before their logarithm, so a leaf that saw one class
/// only (probability exactly 0 or 1) cannot outvote every other member.
const CLIP: f64 = 1e-6;

impl Blend {
    /// The blend a build uses for `task`.
    pub fn for_task(task: &Task) -> Blend {
        match task {
            Task::Regression => Blend::Mean,
            _ => Blend::Logit,
        }
    }

    /// One member's outputs in the space they are averaged in.
    pub(crate) fn to_space(self, task: &Task, p: &[f64]) -> Vec<f64> {
        match (self, task) {
            (Blend::Logit, Task::Binary { .. }) => p
                .iter()
                .map(|v| {
                    let v = v.clamp(CLIP, 1.0 - CLIP);
                    (v / (1.0 - v)).ln()
                })
                .collect(),
            (Blend::Logit, Task::Multiclass { .. }) => {
                p.iter().map(|v| v.clamp(CLIP, 1.0).ln()).collect()
            }
            _ => p.to_vec(),
        }
    }

    /// Averaged values back to outputs, in place.
    fn finish(self, task: &Task, z: &mut [f64]) {
        match (self, task) {
            (Blend::Logit, Task::Binary { .. }) => {
                for v in z.iter_mut() {
                    *v = crate::linear::sigmoid(*v);
                }
            }
            (Blend::Logit, Task::Multiclass { classes }) => {
                for row in z.chunks_mut(classes.len().max(1)) {
                    crate::linear::softmax(row);
                }
            }
            _ => {}
        }
    }
}

/// The ensemble's outputs: `(weight, outputs)` per member, weights summing to 1, every output
/// vector the same layout. Training's out-of-fold ensemble and the saved model both use it.
pub fn combine(task: &Task, blend: Blend, members: &[(f64, &[f64])]) -> Vec<f64> {
    let len = members.first().map_or(0, |(_, p)| p.len());
    let mut out = vec![0.0; len];
    for (w, p) in members {
        if blend == Blend::Mean {
            for (v, p) in out.iter_mut().zip(p.iter()) {
                *v += w * p;
            }
        } else {
            for (v, z) in out.iter_mut().zip(blend.to_space(task, p)) {
                *v += w * z;
            }
        }
    }
    blend.finish(task, &mut out);
    out
}

/// The loss the selection minimises.
pub fn loss(task: &Task, y: &[f64], p: &[f64]) -> f64 {
    match task {
        Task::Binary { .. } => {
            let yb: Vec<bool> = y.iter().map(|v| *v == 1.0).collect();
            metrics::log_loss(&yb, p)
        }
        Task::Multiclass { classes } => {
            let class: Vec<usize> = y.iter().map(|v| *v as usize).collect();
            metrics::log_loss_multi(&class, p, classes.len())
        }
        Task::Regression => metrics::rmse(y, p),
    }
}

/// Weights (summing to 1) for `oof` predictions of each candidate (all the same layout),
/// averaged as `blend` says.
///
/// Runs every round (an addition that hurts now can pave the way for a better blend later)
/// and keeps the prefix of picks with the lowest loss, as Caruana et al. do.
pub fn select(task: &Task, blend: Blend, y: &[f64], oof: &[&[f64]], rounds: usize) -> Vec<f64> {
    let m = oof.len();
    if m == 0 {
        return Vec::new();
    }
    let oof: Vec<Vec<f64>> = oof.iter().map(|p| blend.to_space(task, p)).collect();
    let len = oof[0].len();
    let mut sum = vec![0.0; len];
    let mut trial = vec![0.0; len];
    let mut picks: Vec<usize> = Vec::new();
    let mut best_prefix = (0usize, f64::INFINITY);
    for round in 0..rounds.max(1) {
        let mut best: Option<(usize, f64)> = None;
        for (j, p) in oof.iter().enumerate() {
            let n = (round + 1) as f64;
            for ((t, s), v) in trial.iter_mut().zip(&sum).zip(p.iter()) {
                *t = (s + v) / n;
            }
            blend.finish(task, &mut trial);
            let l = loss(task, y, &trial);
            // Strictly better only: ties keep the earlier (simpler, better-ranked) candidate.
            if l.is_finite() && best.is_none_or(|(_, b)| l < b) {
                best = Some((j, l));
            }
        }
        let Some((j, l)) = best else { break };
        picks.push(j);
        for (s, v) in sum.iter_mut().zip(oof[j].iter()) {
            *s += v;
        }
        if l < best_prefix.1 - 1e-12 {
            best_prefix = (picks.len(), l);
        }
    }
    let keep = &picks[..best_prefix.0.max(1).min(picks.len())];
    let mut counts = vec![0usize; m];
    for j in keep {
        counts[*j] += 1;
    }
    let total = keep.len().max(1) as f64;
    counts.iter().map(|c| *c as f64 / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_better_model_and_blends_complementary_ones() {
        let task = Task::Regression;
        let y = [1.0, 2.0, 3.0, 4.0];
        let good = [1.1, 2.1, 3.1, 4.1];
        let bad = [4.0, 1.0, 0.0, 9.0];
        let w = select(&task, Blend::Mean, &y, &[&bad, &good], ROUNDS);
        assert_eq!(w, vec![0.0, 1.0]);
        // Errors of opposite sign: the average beats either alone.
        let high = [1.5, 2.5, 3.5, 4.5];
        let low = [0.5, 1.5, 2.5, 3.5];
        let w = select(&task, Blend::Mean, &y, &[&high, &low], ROUNDS);
        assert!(
            (w[0] - 0.5).abs() < 0.05 && (w[1] - 0.5).abs() < 0.05,
            "{w:?}"
        );
    }

    #[test]
    fn logit_blend_averages_log_odds_and_keeps_probabilities() {
        let binary = Task::Binary {
            positive: "y".into(),
            negative: "n".into(),
        };
        let (a, b) = ([0.9, 0.5], [0.5, 0.1]);
        let p = combine(&binary, Blend::Logit, &[(0.5, &a), (0.5, &b)]);
        // log-odds ±ln 9 and 0 average to ±ln 3: probabilities 3/4 and 1/4.
        assert!(
            (p[0] - 0.75).abs() < 1e-12 && (p[1] - 0.25).abs() < 1e-12,
            "{p:?}"
        );
        let mean = combine(&binary, Blend::Mean, &[(0.5, &a), (0.5, &b)]);
        assert!((mean[0] - 0.7).abs() < 1e-12, "{mean:?}");
        // A member sure of a class (probability 0) is clipped, not allowed to veto.
        let sure = [0.0, 1.0];
        let p = combine(&binary, Blend::Logit, &[(0.25, &sure), (0.75, &a)]);
        assert!(p.iter().all(|v| *v > 0.0 && *v < 1.0), "{p:?}");

        let three = Task::Multiclass {
            classes: vec!["a".into(), "b".into(), "c".into()],
        };
        let (a, b) = ([0.7, 0.2, 0.1], [0.2, 0.2, 0.6]);
        let p = combine(&three, Blend::Logit, &[(0.5, &a), (0.5, &b)]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{p:?}");
        // The geometric mean, renormalised.
        let g: Vec<f64> = a.iter().zip(&b).map(|(x, y)| (x * y).sqrt()).collect();
        let total: f64 = g.iter().sum();
        for (p, g) in p.iter().zip(&g) {
            assert!((p - g / total).abs() < 1e-12, "{p} vs {}", g / total);
        }
        // Selection in log-odds space still prefers the better model outright.
        let y = [1.0, 0.0, 1.0, 0.0];
        let good = [0.8, 0.2, 0.7, 0.3];
        let bad = [0.3, 0.6, 0.4, 0.5];
        assert_eq!(
            select(&binary, Blend::Logit, &y, &[&bad, &good], ROUNDS),
            vec![0.0, 1.0]
        );
    }
}
