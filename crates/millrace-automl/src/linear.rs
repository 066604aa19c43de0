//! Regularised linear models — logistic (binary), softmax (multiclass) and ridge (regression) —
//! fitted with L-BFGS on a dense row-major matrix.
//!
//! The objective is the mean loss plus `l2 / 2 · ‖w‖²` (the intercepts are not penalised), so
//! `l2` means the same at any row count. Inputs should be scaled (the automatic features
//! standardise numbers); a missing value (NaN) counts as 0, the mean of a standardised column.
//! Everything is summed in row order, so a fit is deterministic.

use serde::{Deserialize, Serialize};

/// Row-major dense features.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "matrix data does not match its shape"
        );
        Self { rows, cols, data }
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// The rows listed in `idx`, in that order.
    pub fn take(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix::new(idx.len(), self.cols, data)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "loss", rename_all = "snake_case")]
pub enum Loss {
    Logistic,
    Softmax { classes: usize },
    Squared,
}

impl Loss {
    /// Scores per row: one, or one per class.
    pub(crate) fn outputs(self) -> usize {
        match self {
            Loss::Softmax { classes } => classes,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub l2: f64,
    pub max_iter: usize,
    pub tol: f64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            l2: 1e-3,
            max_iter: 200,
            tol: 1e-7,
        }
    }
}

/// A fitted linear model: per output, `cols` weights then the intercept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    pub loss: Loss,
    pub cols: usize,
    pub weights: Vec<f64>,
    pub iterations: usize,
    /// Each column's training mean (missing counted as 0, as the model reads it): the point
    /// explanations measure contributions from. Empty in models saved before explanations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub means: Vec<f64>,
}

fn value(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x }
}

/// Linear scores of one row for every output.
fn scores(w: &[f64], cols: usize, outputs: usize, row: &[f64], out: &mut [f64]) {
    for (k, o) in out.iter_mut().enumerate().take(outputs) {
        let wk = &w[k * (cols + 1)..(k + 1) * (cols + 1)];
        let mut z = wk[cols];
        for (a, b) in wk[..cols].iter().zip(row) {
            z += a * value(*b);
        }
        *o = z;
    }
}

pub(crate) fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Numerically stable softmax in place.
pub(crate) fn softmax(z: &mut [f64]) {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut s = 0.0;
    for v in z.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    for v in z.iter_mut() {
        *v /= s;
    }
}

/// Mean loss + penalty, and its gradient.
fn objective(x: &Matrix, y: &[f64], loss: Loss, l2: f64, w: &[f64], grad: &mut [f64]) -> f64 {
    let (cols, k) = (x.cols, loss.outputs());
    grad.iter_mut().for_each(|g| *g = 0.0);
    let mut z = vec![0.0; k];
    let mut total = 0.0;
    for (i, yi) in y.iter().enumerate().take(x.rows) {
        let row = x.row(i);
        scores(w, cols, k, row, &mut z);
        // d loss / d z_k for this row, left in z.
        match loss {
            Loss::Logistic => {
                let t = *yi;
                // log(1 + e^z) - t z, stably.
                total += z[0].max(0.0) + (-z[0].abs()).exp().ln_1p() - t * z[0];
                z[0] = sigmoid(z[0]) - t;
            }
            Loss::Squared => {
                let r = z[0] - yi;
                total += 0.5 * r * r;
                z[0] = r;
            }
            Loss::Softmax { .. } => {
                softmax(&mut z);
                let c = *yi as usize;
                total -= z[c].max(1e-300).ln();
                z[c] -= 1.0;
            }
        }
        for (kk, d) in z.iter().enumerate() {
            let g = &mut grad[kk * (cols + 1)..(kk + 1) * (cols + 1)];
            for (gj, xj) in g[..cols].iter_mut().zip(row) {
                *gj += d * value(*xj);
            }
            g[cols] += d;
        }
    }
    let n = x.rows.max(1) as f64;
    let mut penalty = 0.0;
    for kk in 0..k {
        let base = kk * (cols + 1);
        for j in 0..cols {
            grad[base + j] = grad[base + j] / n + l2 * w[base + j];
            penalty += w[base + j] * w[base + j];
        }
        grad[base + cols] /= n;
    }
    total / n + 0.5 * l2 * penalty
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises `f` (which writes its gradient) from `x` with L-BFGS (memory 10) and a
/// backtracking Armijo line search. Returns the point and the iterations used.
fn lbfgs(
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    mut x: Vec<f64>,
    max_iter: usize,
    tol: f64,
) -> (Vec<f64>, usize) {
    const M: usize = 10;
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut g_new = vec![0.0; n];
    let mut iters = 0;
    for it in 0..max_iter {
        iters = it + 1;
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) < tol {
            break;
        }
        // Two-loop recursion: d = -H g.
        let mut q = g.clone();
        let mut alpha = vec![0.0; s_hist.len()];
        for j in (0..s_hist.len()).rev() {
            let rho = 1.0 / dot(&y_hist[j], &s_hist[j]);
            alpha[j] = rho * dot(&s_hist[j], &q);
            for (qi, yi) in q.iter_mut().zip(&y_hist[j]) {
                *qi -= alpha[j] * yi;
            }
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            _ => 1.0 / g.iter().map(|v| v * v).sum::<f64>().sqrt().max(1.0),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for j in 0..s_hist.len() {
            let rho = 1.0 / dot(&y_hist[j], &s_hist[j]);
            let beta = rho * dot(&y_hist[j], &q);
            for (qi, si) in q.iter_mut().zip(&s_hist[j]) {
                *qi += (alpha[j] - beta) * si;
            }
        }
        let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction (curvature went wrong): restart from the gradient.
            s_hist.clear();
            y_hist.clear();
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        let mut t = 1.0;
        let mut x_new = vec![0.0; n];
        let mut f_new = f64::INFINITY;
        for _ in 0..40 {
            for ((xn, xi), di) in x_new.iter_mut().zip(&x).zip(&d) {
                *xn = xi + t * di;
            }
            f_new = f(&x_new, &mut g_new);
            if f_new <= fx + 1e-4 * t * slope {
                break;
            }
            t *= 0.5;
        }
        if !f_new.is_finite() || f_new > fx {
            break;
        }
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let yv: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        if dot(&s, &yv) > 1e-12 {
            if s_hist.len() == M {
                s_hist.remove(0);
                y_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(yv);
        }
        let improvement = fx - f_new;
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        fx = f_new;
        if improvement.abs() <= tol * fx.abs().max(1.0) {
            break;
        }
    }
    (x, iters)
}

impl Linear {
    /// Fits on `x` and targets `y` (0/1 for logistic, the class index for softmax, values for
    /// squared loss).
    pub fn fit(x: &Matrix, y: &[f64], loss: Loss, params: &Params) -> Linear {
        let k = loss.outputs();
        let mut w0 = vec![0.0; k * (x.cols + 1)];
        // Start the intercept at the answer for a model without features.
        let n = y.len().max(1) as f64;
        match loss {
            Loss::Logistic => {
                let p = (y.iter().sum::<f64>() / n).clamp(1e-6, 1.0 - 1e-6);
                w0[x.cols] = (p / (1.0 - p)).ln();
            }
            Loss::Squared => w0[x.cols] = y.iter().sum::<f64>() / n,
            Loss::Softmax { classes } => {
                for c in 0..classes {
                    let share =
                        (y.iter().filter(|v| **v as usize == c).count() as f64 / n).max(1e-6);
                    w0[c * (x.cols + 1) + x.cols] = share.ln();
                }
            }
        }
        let (weights, iterations) = lbfgs(
            |w, g| objective(x, y, loss, params.l2, w, g),
            w0,
            params.max_iter,
            params.tol,
        );
        let mut means = vec![0.0; x.cols];
        for i in 0..x.rows {
            for (m, v) in means.iter_mut().zip(x.row(i)) {
                *m += value(*v);
            }
        }
        for m in &mut means {
            *m /= x.rows.max(1) as f64;
        }
        Linear {
            loss,
            cols: x.cols,
            weights,
            iterations,
            means,
        }
    }

    /// Per row: the positive-class probability (logistic), the value (squared), or `classes`
    /// probabilities in a row (softmax).
    pub fn predict(&self, x: &Matrix) -> Vec<f64> {
        let k = self.loss.outputs();
        let mut out = Vec::with_capacity(x.rows * k);
        let mut z = vec![0.0; k];
        for i in 0..x.rows {
            scores(&self.weights, self.cols, k, x.row(i), &mut z);
            match self.loss {
                Loss::Logistic => out.push(sigmoid(z[0])),
                Loss::Squared => out.push(z[0]),
                Loss::Softmax { .. } => {
                    softmax(&mut z);
                    out.extend_from_slice(&z);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics;
    use crate::rng::Rng;

    fn normal(rng: &mut Rng) -> f64 {
        // Box-Muller.
        let (u, v) = (rng.unit().max(1e-12), rng.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    #[test]
    fn ridge_recovers_a_linear_target() {
        let mut rng = Rng::new(1);
        let n = 2000;
        let mut data = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let (a, b) = (normal(&mut rng), normal(&mut rng));
            data.extend([a, b]);
            y.push(3.0 * a - 2.0 * b + 5.0 + 0.01 * normal(&mut rng));
        }
        let x = Matrix::new(n, 2, data);
        let m = Linear::fit(
            &x,
            &y,
            Loss::Squared,
            &Params {
                l2: 0.0,
                ..Default::default()
            },
        );
        assert!((m.weights[0] - 3.0).abs() < 0.01, "{:?}", m.weights);
        assert!((m.weights[1] + 2.0).abs() < 0.01);
        assert!((m.weights[2] - 5.0).abs() < 0.01);
        assert!(metrics::r2(&y, &m.predict(&x)) > 0.9999);
    }

    #[test]
    fn logistic_separates_and_softmax_finds_three_blobs() {
        let mut rng = Rng::new(2);
        let n = 1000;
        let mut data = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = (i % 2) as f64;
            data.extend([normal(&mut rng) + 3.0 * c, normal(&mut rng)]);
            y.push(c);
        }
        let x = Matrix::new(n, 2, data);
        let m = Linear::fit(&x, &y, Loss::Logistic, &Params::default());
        let p = m.predict(&x);
        let yb: Vec<bool> = y.iter().map(|v| *v == 1.0).collect();
        assert!(metrics::auc(&yb, &p) > 0.97);
        assert!(metrics::Confusion::of(&yb, &metrics::at(&p, 0.5)).accuracy() > 0.9);
        // Deterministic: the same fit twice gives the same bits.
        assert_eq!(m, Linear::fit(&x, &y, Loss::Logistic, &Params::default()));

        let mut data = Vec::new();
        let mut class = Vec::new();
        for i in 0..900 {
            let c = i % 3;
            let (cx, cy) = [(0.0, 0.0), (4.0, 0.0), (0.0, 4.0)][c];
            data.extend([cx + normal(&mut rng), cy + normal(&mut rng)]);
            class.push(c);
        }
        let x = Matrix::new(900, 2, data);
        let yf: Vec<f64> = class.iter().map(|c| *c as f64).collect();
        let m = Linear::fit(&x, &yf, Loss::Softmax { classes: 3 }, &Params::default());
        let p = m.predict(&x);
        let pred: Vec<usize> = (0..900)
            .map(|i| {
                (0..3)
                    .max_by(|a, b| p[i * 3 + a].total_cmp(&p[i * 3 + b]))
                    .unwrap()
            })
            .collect();
        assert!(metrics::accuracy_multi(&class, &pred) > 0.9);
        assert!((p[..3].iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
