//! The quick model: L2-regularised logistic (binary) or ridge (regression) regression fitted by
//! Newton's method on standardized numerics + one-hot categoricals, scored on a seeded 80/20
//! holdout, with permutation importance per original column.

use super::columns::{DecodedColumn, MISSING};
use super::power::TargetEnc;
use super::stats::Rng;
use super::{
    ColumnImpact, ColumnKind, ColumnProfile, ExcludedColumn, ProblemType, QuickModel,
    TargetAnalysis,
};
use crate::stats::auc;

/// Share of rows held out for scoring.
const HOLDOUT_SHARE: f64 = 0.2;
/// L2 penalty on the summed loss (sklearn's C = 1 convention); the intercept is not penalised.
const L2: f64 = 1.0;
/// One-hot columns per categorical: its most frequent training values.
const ONE_HOT_TOP: usize = 20;
const MAX_NEWTON_ITERATIONS: usize = 50;
/// Shuffles per column for permutation importance.
const PERMUTATION_REPEATS: usize = 3;

/// A row-sparse design: each row has the same numeric slots plus at most one active one-hot
/// index per categorical, so Newton steps cost O(rows * nnz^2), not O(rows * features^2).
struct Design {
    n_num: usize,
    n_cat: usize,
    /// Row-major standardized numerics (missing -> 0, the training mean).
    dense: Vec<f64>,
    /// Row-major feature index of the active one-hot column, `MISSING` when none.
    cats: Vec<u32>,
    /// Features including the intercept at 0; numerics at 1..=n_num.
    p: usize,
}

impl Design {
    fn eta(&self, w: &[f64], i: usize) -> f64 {
        let mut e = w[0];
        for (k, v) in self.dense[i * self.n_num..(i + 1) * self.n_num]
            .iter()
            .enumerate()
        {
            e += w[1 + k] * v;
        }
        for &c in &self.cats[i * self.n_cat..(i + 1) * self.n_cat] {
            if c != MISSING {
                e += w[c as usize];
            }
        }
        e
    }

    /// Contribution of used column `slot` (numerics first, then categoricals) to row i.
    fn contribution(&self, w: &[f64], slot: usize, i: usize) -> f64 {
        if slot < self.n_num {
            w[1 + slot] * self.dense[i * self.n_num + slot]
        } else {
            let c = self.cats[i * self.n_cat + slot - self.n_num];
            if c == MISSING { 0.0 } else { w[c as usize] }
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Solves H x = b in place for symmetric positive definite H (Cholesky); false if not SPD.
fn cholesky_solve(h: &mut [f64], b: &mut [f64], p: usize) -> bool {
    for j in 0..p {
        let mut d = h[j * p + j];
        for k in 0..j {
            d -= h[j * p + k] * h[j * p + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        h[j * p + j] = d;
        for i in j + 1..p {
            let mut s = h[i * p + j];
            for k in 0..j {
                s -= h[i * p + k] * h[j * p + k];
            }
            h[i * p + j] = s / d;
        }
    }
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= h[i * p + k] * b[k];
        }
        b[i] = s / h[i * p + i];
    }
    for i in (0..p).rev() {
        let mut s = b[i];
        for k in i + 1..p {
            s -= h[k * p + i] * b[k];
        }
        b[i] = s / h[i * p + i];
    }
    true
}

/// Penalised objective: logistic loss or half squared error, summed, plus L2/2 |w[1..]|^2.
fn objective(d: &Design, w: &[f64], y: &[f64], rows: &[usize], logistic: bool) -> f64 {
    let mut f = 0.0;
    for &i in rows {
        let e = d.eta(w, i);
        f += if logistic {
            // log(1 + exp(e)) - y e, stable for large |e|.
            (if e > 0.0 {
                e + (-e).exp().ln_1p()
            } else {
                e.exp().ln_1p()
            }) - y[i] * e
        } else {
            0.5 * (e - y[i]).powi(2)
        };
    }
    f + 0.5 * L2 * w[1..].iter().map(|v| v * v).sum::<f64>()
}

/// Newton's method (IRLS for the logistic loss) with step halving. Returns (w, iterations,
/// converged).
fn fit(d: &Design, y: &[f64], rows: &[usize], logistic: bool) -> (Vec<f64>, usize, bool) {
    let p = d.p;
    let mut w = vec![0.0; p];
    let mut f = objective(d, &w, y, rows, logistic);
    let mut idx: Vec<usize> = Vec::with_capacity(1 + d.n_num + d.n_cat);
    let mut val: Vec<f64> = Vec::with_capacity(1 + d.n_num + d.n_cat);
    for it in 1..=MAX_NEWTON_ITERATIONS {
        let mut h = vec![0.0; p * p];
        let mut g = vec![0.0; p];
        for &i in rows {
            let e = d.eta(&w, i);
            let (resid, weight) = if logistic {
                let pr = sigmoid(e);
                (pr - y[i], (pr * (1.0 - pr)).max(1e-10))
            } else {
                (e - y[i], 1.0)
            };
            idx.clear();
            val.clear();
            idx.push(0);
            val.push(1.0);
            for k in 0..d.n_num {
                idx.push(1 + k);
                val.push(d.dense[i * d.n_num + k]);
            }
            for &c in &d.cats[i * d.n_cat..(i + 1) * d.n_cat] {
                if c != MISSING {
                    idx.push(c as usize);
                    val.push(1.0);
                }
            }
            // Indices are increasing, so (a, b) with a <= b fills the lower triangle (row b).
            for a in 0..idx.len() {
                g[idx[a]] += resid * val[a];
                let wa = weight * val[a];
                for b in a..idx.len() {
                    h[idx[b] * p + idx[a]] += wa * val[b];
                }
            }
        }
        for k in 0..p {
            let pen = if k == 0 { 1e-8 } else { L2 };
            h[k * p + k] += pen;
            if k > 0 {
                g[k] += L2 * w[k];
            }
        }
        // Mirror the lower triangle so the solver sees the full symmetric matrix.
        for a in 0..p {
            for b in a + 1..p {
                h[a * p + b] = h[b * p + a];
            }
        }
        let mut step = g;
        if !cholesky_solve(&mut h, &mut step, p) {
            return (w, it, false);
        }
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..20 {
            let cand: Vec<f64> = w.iter().zip(&step).map(|(a, s)| a - t * s).collect();
            let fc = objective(d, &cand, y, rows, logistic);
            if fc <= f + 1e-12 * f.abs() {
                let change = f - fc;
                w = cand;
                f = fc;
                accepted = true;
                let max_step = step.iter().fold(0.0f64, |m, s| m.max((t * s).abs()));
                if max_step < 1e-6 || change <= 1e-10 * f.abs().max(1.0) {
                    return (w, it, true);
                }
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            return (w, it, true);
        }
    }
    (w, MAX_NEWTON_ITERATIONS, false)
}

fn r2(pred: &[f64], y: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let ss_tot: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let ss_res: f64 = pred.iter().zip(y).map(|(p, v)| (v - p).powi(2)).sum();
    if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        f64::NAN
    }
}

#[allow(clippy::too_many_arguments)]
pub fn quick_model(
    cols: &[DecodedColumn],
    profiles: &[ColumnProfile],
    id_like: &[bool],
    target_index: usize,
    t: &TargetAnalysis,
    enc: &TargetEnc,
    seed: u64,
) -> Option<QuickModel> {
    let logistic = match t.problem_type {
        ProblemType::Binary => true,
        ProblemType::Regression => false,
        ProblemType::Multiclass => return None,
    };
    let n = enc.rows.len();
    let mut excluded = Vec::new();
    let mut used = Vec::new();
    for (j, col) in cols.iter().enumerate() {
        if j == target_index {
            continue;
        }
        let reason = if id_like[j] {
            Some("id_like")
        } else if profiles[j].unique <= 1 {
            Some("constant")
        } else {
            None
        };
        match reason {
            Some(r) => excluded.push(ExcludedColumn {
                column: col.name.clone(),
                reason: r.to_string(),
            }),
            None => used.push(j),
        }
    }
    // Numerics first, then categoricals: the slot order of `Design`.
    used.sort_by_key(|&j| (cols[j].kind == ColumnKind::Categorical, j));

    // Seeded split (stratified for binary targets).
    let mut rng = Rng::new(seed ^ 0x5EED_5117);
    let mut holdout_mask = vec![false; n];
    let groups: Vec<Vec<usize>> = if logistic {
        vec![
            (0..n).filter(|&i| enc.y[i] == 1.0).collect(),
            (0..n).filter(|&i| enc.y[i] != 1.0).collect(),
        ]
    } else {
        vec![(0..n).collect()]
    };
    for mut g in groups {
        rng.shuffle(&mut g);
        let k = (g.len() as f64 * HOLDOUT_SHARE).round() as usize;
        for &i in &g[..k] {
            holdout_mask[i] = true;
        }
    }
    let train: Vec<usize> = (0..n).filter(|&i| !holdout_mask[i]).collect();
    let holdout: Vec<usize> = (0..n).filter(|&i| holdout_mask[i]).collect();
    if train.len() < 10 || holdout.len() < 2 {
        return None;
    }
    if logistic {
        let pos = train.iter().filter(|&&i| enc.y[i] == 1.0).count();
        if pos == 0 || pos == train.len() {
            return None;
        }
    }

    let num_cols: Vec<usize> = used
        .iter()
        .copied()
        .filter(|&j| cols[j].kind == ColumnKind::Numeric)
        .collect();
    let cat_cols: Vec<usize> = used
        .iter()
        .copied()
        .filter(|&j| cols[j].kind == ColumnKind::Categorical)
        .collect();
    let (n_num, n_cat) = (num_cols.len(), cat_cols.len());
    let mut dense = vec![0.0; n * n_num];
    for (k, &j) in num_cols.iter().enumerate() {
        let (mut s, mut c) = (0.0, 0usize);
        for &i in &train {
            let v = cols[j].num[enc.rows[i]];
            if !v.is_nan() {
                s += v;
                c += 1;
            }
        }
        let mean = if c > 0 { s / c as f64 } else { 0.0 };
        let mut ss = 0.0;
        for &i in &train {
            let v = cols[j].num[enc.rows[i]];
            if !v.is_nan() {
                ss += (v - mean).powi(2);
            }
        }
        let sd = if c > 1 {
            (ss / (c - 1) as f64).sqrt()
        } else {
            0.0
        };
        let sd = if sd > 0.0 { sd } else { 1.0 };
        for i in 0..n {
            let v = cols[j].num[enc.rows[i]];
            dense[i * n_num + k] = if v.is_nan() { 0.0 } else { (v - mean) / sd };
        }
    }
    let mut p = 1 + n_num;
    let mut cats = vec![MISSING; n * n_cat];
    for (k, &j) in cat_cols.iter().enumerate() {
        let col = &cols[j];
        let mut counts = vec![0usize; col.labels.len()];
        for &i in &train {
            let c = col.cat[enc.rows[i]];
            if c != MISSING {
                counts[c as usize] += 1;
            }
        }
        let mut order: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] > 0).collect();
        order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
        let mut feature = vec![MISSING; counts.len()];
        for &c in order.iter().take(ONE_HOT_TOP) {
            feature[c] = p as u32;
            p += 1;
        }
        for i in 0..n {
            let c = col.cat[enc.rows[i]];
            cats[i * n_cat + k] = if c == MISSING {
                MISSING
            } else {
                feature[c as usize]
            };
        }
    }
    let design = Design {
        n_num,
        n_cat,
        dense,
        cats,
        p,
    };
    let (w, iterations, converged) = fit(&design, &enc.y, &train, logistic);

    let hy: Vec<f64> = holdout.iter().map(|&i| enc.y[i]).collect();
    let hlabels: Vec<bool> = hy.iter().map(|&v| v == 1.0).collect();
    let score = |eta: &[f64]| -> f64 {
        if logistic {
            auc(&hlabels, eta).unwrap_or(f64::NAN)
        } else {
            r2(eta, &hy)
        }
    };
    let base_eta: Vec<f64> = holdout.iter().map(|&i| design.eta(&w, i)).collect();
    let base = score(&base_eta);

    let mut impact = Vec::with_capacity(used.len());
    let mut perm: Vec<usize> = (0..holdout.len()).collect();
    let mut eta = vec![0.0; holdout.len()];
    for (slot, &j) in num_cols.iter().chain(&cat_cols).enumerate() {
        let contrib: Vec<f64> = holdout
            .iter()
            .map(|&i| design.contribution(&w, slot, i))
            .collect();
        let mut drops = Vec::with_capacity(PERMUTATION_REPEATS);
        for r in 0..PERMUTATION_REPEATS {
            let mut rng = Rng::new(seed ^ ((j as u64 + 1) << 20) ^ (r as u64 + 1));
            rng.shuffle(&mut perm);
            for (k, e) in eta.iter_mut().enumerate() {
                *e = base_eta[k] - contrib[k] + contrib[perm[k]];
            }
            drops.push(base - score(&eta));
        }
        let mean = drops.iter().sum::<f64>() / drops.len() as f64;
        let var =
            drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (drops.len() - 1).max(1) as f64;
        impact.push(ColumnImpact {
            column: cols[j].name.clone(),
            importance: mean,
            std: var.sqrt(),
        });
    }
    impact.sort_by(|a, b| {
        b.importance
            .total_cmp(&a.importance)
            .then(a.column.cmp(&b.column))
    });

    Some(QuickModel {
        model: if logistic {
            "logistic_regression"
        } else {
            "ridge_regression"
        }
        .to_string(),
        metric: if logistic { "auc" } else { "r2" }.to_string(),
        holdout_score: base,
        train_rows: train.len(),
        holdout_rows: holdout.len(),
        features: p - 1,
        l2: L2,
        iterations,
        converged,
        excluded,
        impact,
    })
}
