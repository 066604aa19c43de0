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

/// Each row's loss, whose mean [`loss`] is (squared errors for regression, whose mean's root
/// is the RMSE).
pub fn row_losses(task: &Task, y: &[f64], p: &[f64]) -> Vec<f64> {
    match task {
        Task::Binary { .. } => y
            .iter()
            .zip(p)
            .map(|(t, p)| metrics::log_loss_row(*t == 1.0, *p))
            .collect(),
        Task::Multiclass { classes } => {
            let k = classes.len().max(1);
            y.iter()
                .enumerate()
                .map(|(i, c)| metrics::log_loss_multi_row(p[i * k + *c as usize]))
                .collect()
        }
        Task::Regression => y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).collect(),
    }
}

/// A member is worth trying to drop when it is at least this share of the ensemble's size.
const COSTLY_SHARE: f64 = 0.1;

/// The ensemble after [`simplify`]: weights per candidate, and the candidates dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Simplified {
    pub weights: Vec<f64>,
    pub dropped: Vec<usize>,
    /// The kept members' summed size: over the budget when no more could go.
    pub size: usize,
    /// The simpler ensemble's mean out-of-fold loss increase per row, and its standard error
    /// (zeros when nothing was dropped).
    pub increase: (f64, f64),
}

/// Makes an ensemble that is large to explain smaller, where that costs no more than the noise
/// of the folds: while its size (`size` per candidate: the nodes an explanation walks, see
/// `FittedModel::size`) is over `budget`, the largest member that is at least a tenth of it is
/// left out and the ensemble selected again without it; the smaller ensemble is kept when its
/// out-of-fold loss is within one standard error of the selected ensemble's (the standard
/// error of the per-row loss difference, paired on the same rows): the one-standard-error rule
/// of Breiman et al. for pruning trees and of glmnet's `lambda.1se`.
pub fn simplify(
    task: &Task,
    blend: Blend,
    y: &[f64],
    oof: &[&[f64]],
    weights: Vec<f64>,
    size: &[usize],
    budget: usize,
) -> Simplified {
    let members = |w: &[f64]| -> Vec<(f64, &[f64])> {
        w.iter()
            .zip(oof)
            .filter(|(w, _)| **w > 0.0)
            .map(|(w, p)| (*w, *p))
            .collect()
    };
    let cost = |w: &[f64]| -> usize {
        w.iter()
            .zip(size)
            .filter(|(w, _)| **w > 0.0)
            .map(|(_, s)| s)
            .sum()
    };
    let best = row_losses(task, y, &combine(task, blend, &members(&weights)));
    let mut order: Vec<usize> = (0..oof.len()).collect();
    order.sort_by_key(|&j| std::cmp::Reverse(size[j]));
    let mut current = weights;
    let mut left_out = vec![false; oof.len()];
    let mut dropped = Vec::new();
    let mut increase = (0.0, 0.0);
    for j in order {
        let total = cost(&current);
        if total <= budget {
            break;
        }
        if current[j] == 0.0 || (size[j] as f64) < COSTLY_SHARE * total as f64 {
            continue;
        }
        left_out[j] = true;
        let kept: Vec<usize> = (0..oof.len()).filter(|&i| !left_out[i]).collect();
        let sub: Vec<&[f64]> = kept.iter().map(|&i| oof[i]).collect();
        let mut trial = vec![0.0; oof.len()];
        for (i, w) in kept.iter().zip(select(task, blend, y, &sub, ROUNDS)) {
            trial[*i] = w;
        }
        let rows = row_losses(task, y, &combine(task, blend, &members(&trial)));
        let (mean, se) = paired_increase(&best, &rows);
        if cost(&trial) < total && mean <= se {
            current = trial;
            dropped.push(j);
            increase = (mean, se);
        } else {
            left_out[j] = false;
        }
    }
    Simplified {
        size: cost(&current),
        weights: current,
        dropped,
        increase,
    }
}

/// The mean of `trial − best` per row and its standard error; an infinite mean when there
/// are too few rows to tell, or the losses are not finite.
fn paired_increase(best: &[f64], trial: &[f64]) -> (f64, f64) {
    let n = best.len();
    if n < 2 || trial.len() != n {
        return (f64::INFINITY, 0.0);
    }
    let d: Vec<f64> = trial.iter().zip(best).map(|(t, b)| t - b).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
    if mean.is_finite() && var.is_finite() {
        (mean, (var / n as f64).sqrt())
    } else {
        (f64::INFINITY, 0.0)
    }
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

    fn noisy(rng: &mut crate::rng::Rng, y: &[f64], sd: f64) -> Vec<f64> {
        y.iter()
            .map(|v| {
                let (u, w) = (rng.unit().max(1e-12), rng.unit());
                v + sd * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * w).cos()
            })
            .collect()
    }

    #[test]
    fn simplify_drops_a_large_member_only_when_it_does_not_earn_its_place() {
        let mut rng = crate::rng::Rng::new(7);
        let task = Task::Regression;
        let y: Vec<f64> = (0..400).map(|i| (i % 37) as f64).collect();
        let small = noisy(&mut rng, &y, 1.0);
        // Independent errors as large as the small model's: averaging halves the variance,
        // far more than one standard error.
        let helpful = noisy(&mut rng, &y, 1.0);
        // The small model's errors plus a little noise: picked for a hair of improvement.
        let hair = noisy(&mut rng, &small, 0.05);
        let sizes = [10, 10_000];

        let oof: [&[f64]; 2] = [&small, &helpful];
        let w = select(&task, Blend::Mean, &y, &oof, ROUNDS);
        assert!(w[1] > 0.2, "{w:?}");
        let s = simplify(&task, Blend::Mean, &y, &oof, w.clone(), &sizes, 1_000);
        assert_eq!(s.weights, w, "a member that helps stays");
        assert!(s.dropped.is_empty());

        let oof: [&[f64]; 2] = [&small, &hair];
        let w = select(&task, Blend::Mean, &y, &oof, ROUNDS);
        assert!(w[1] > 0.0, "the large member is picked at first: {w:?}");
        // Within budget, nothing is dropped.
        let s = simplify(&task, Blend::Mean, &y, &oof, w.clone(), &sizes, 10_010);
        assert_eq!(s.size, 10_010);
        assert_eq!((s.weights, s.dropped), (w.clone(), vec![]));
        let s = simplify(&task, Blend::Mean, &y, &oof, w, &sizes, 1_000);
        assert_eq!(s.weights, vec![1.0, 0.0]);
        assert_eq!(s.size, 10);
        assert_eq!(s.dropped, vec![1]);
        assert!(s.increase.0 <= s.increase.1 && s.increase.1 > 0.0, "{s:?}");
    }

    #[test]
    fn row_losses_average_to_the_selection_loss() {
        let binary = Task::Binary {
            positive: "y".into(),
            negative: "n".into(),
        };
        let (y, p) = ([1.0, 0.0, 1.0], [0.8, 0.3, 0.4]);
        let rows = row_losses(&binary, &y, &p);
        assert!((rows.iter().sum::<f64>() / 3.0 - loss(&binary, &y, &p)).abs() < 1e-12);
        let three = Task::Multiclass {
            classes: vec!["a".into(), "b".into(), "c".into()],
        };
        let (y, p) = ([2.0, 0.0], [0.2, 0.2, 0.6, 0.5, 0.3, 0.2]);
        let rows = row_losses(&three, &y, &p);
        assert!((rows.iter().sum::<f64>() / 2.0 - loss(&three, &y, &p)).abs() < 1e-12);
        let (y, p) = ([1.0, 3.0], [2.0, 1.0]);
        let rows = row_losses(&Task::Regression, &y, &p);
        assert_eq!(rows, vec![1.0, 4.0]);
        assert!(
            ((rows.iter().sum::<f64>() / 2.0).sqrt() - loss(&Task::Regression, &y, &p)).abs()
                < 1e-12
        );
    }
}
