//! Ensemble selection over out-of-fold predictions (Caruana et al., 2004): start from the best
//! single model, then repeatedly add (with replacement) the candidate whose addition most
//! improves the averaged predictions; a model's weight is how often it was picked.
//!
//! Selection minimises a smooth loss — log loss for classification, squared error for
//! regression — rather than a threshold metric such as F1, whose out-of-fold value jumps with a
//! handful of rows and would pick noise. The threshold is tuned afterwards on the ensemble.

use crate::metrics;
use crate::problem::Task;

/// Rounds of selection: enough for weights in 1/25 steps.
pub const ROUNDS: usize = 25;

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

/// Weights (summing to 1) for `oof` predictions of each candidate (all the same layout).
///
/// Runs every round (an addition that hurts now can pave the way for a better blend later)
/// and keeps the prefix of picks with the lowest loss, as Caruana et al. do.
pub fn select(task: &Task, y: &[f64], oof: &[&[f64]], rounds: usize) -> Vec<f64> {
    let m = oof.len();
    if m == 0 {
        return Vec::new();
    }
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
        let w = select(&task, &y, &[&bad, &good], ROUNDS);
        assert_eq!(w, vec![0.0, 1.0]);
        // Errors of opposite sign: the average beats either alone.
        let high = [1.5, 2.5, 3.5, 4.5];
        let low = [0.5, 1.5, 2.5, 3.5];
        let w = select(&task, &y, &[&high, &low], ROUNDS);
        assert!(
            (w[0] - 0.5).abs() < 0.05 && (w[1] - 0.5).abs() < 0.05,
            "{w:?}"
        );
    }
}
