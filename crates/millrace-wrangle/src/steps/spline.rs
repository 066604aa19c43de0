//! `spline`: B-spline bases, smooth, local bends of a number that a linear model
//! can weight, the usual way to give a GAM-like shape to a logistic or ridge regression.
//!
//! The knots are quantiles of the training values, so every piece sees about as many rows;
//! `degree` more knots are laid outside each end at the spacing of the outermost pair, which
//! makes the basis complete across the training range. Values outside that range take the
//! basis at the nearest end (constant extrapolation): a record beyond anything seen in training
//! gets the edge's shape, not a polynomial running away.

use serde::{Deserialize, Serialize};

use super::input::{absent, need_num};
use super::params::Params;
use super::{FittedStep, Step};
use crate::error::{StepError, StepSpecError};
use crate::frame::{Column, Frame, Name};
use crate::stats::{quantile, sorted};

/// The highest degree (the recipe step refuses more): the evaluation works in fixed arrays.
pub const MAX_DEGREE: usize = 5;

/// A fitted basis for one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Basis {
    pub column: String,
    pub degree: usize,
    /// The full knot vector: `degree` outside knots, the quantile knots, `degree` outside.
    pub knots: Vec<f64>,
    /// Output column names, one per basis function kept.
    pub names: Vec<String>,
}

impl Basis {
    /// Fits the basis on sorted, non-missing values with `n_knots` quantile knots; `None` when
    /// fewer than two distinct knots remain (a near-constant column has no shape to bend).
    pub fn fit(column: &str, sorted: &[f64], n_knots: usize, degree: usize) -> Option<Basis> {
        if n_knots < 2 || degree > MAX_DEGREE {
            return None;
        }
        let mut base: Vec<f64> = (0..n_knots)
            .map(|i| quantile(sorted, i as f64 / (n_knots - 1) as f64))
            .collect();
        // Tied quantiles (a value repeated over many rows) would make empty pieces.
        base.dedup();
        if base.len() < 2 || base.iter().any(|k| !k.is_finite()) {
            return None;
        }
        let (first, last) = (base[0], base[base.len() - 1]);
        let d_lo = base[1] - base[0];
        let d_hi = base[base.len() - 1] - base[base.len() - 2];
        let mut knots = Vec::with_capacity(base.len() + 2 * degree);
        knots.extend((0..degree).map(|i| first - (degree - i) as f64 * d_lo));
        knots.extend_from_slice(&base);
        knots.extend((1..=degree).map(|i| last + i as f64 * d_hi));
        // Functions: knots − degree − 1. Inside the range they sum to one, the same as the
        // model's intercept, so the last one is left out (scikit-learn's include_bias=False).
        let functions = knots.len() - degree - 1 - 1;
        let names = (0..functions)
            .map(|j| format!("{column}_spline{j}"))
            .collect();
        Some(Basis {
            column: column.to_owned(),
            degree,
            knots,
            names,
        })
    }

    /// The kept basis functions at `x` into `out` (all missing for a missing `x`).
    pub fn eval(&self, x: f64, out: &mut [f64]) {
        let p = self.degree;
        let t = &self.knots;
        // A state file edited to a degree `fit` never makes has no defined basis here.
        if x.is_nan() || p > MAX_DEGREE || t.len() < 2 * p + 2 {
            out.fill(f64::NAN);
            return;
        }
        // The training range is [t[p], t[len - p - 1]]; outside it the value is held at the end.
        let lo = t[p];
        let hi = t[t.len() - p - 1];
        let x = x.clamp(lo, hi);
        // The span k with t[k] ≤ x < t[k+1], k in p..=len-p-2 (the right end belongs to the
        // last span).
        let last_span = t.len() - p - 2;
        let k = (t.partition_point(|&v| v <= x).saturating_sub(1)).clamp(p, last_span);
        // Cox–de Boor, the p + 1 functions that are not zero on span k (N_{k-p} … N_k).
        let mut n = [0.0f64; MAX_DEGREE + 1];
        let mut left = [0.0f64; MAX_DEGREE + 1];
        let mut right = [0.0f64; MAX_DEGREE + 1];
        n[0] = 1.0;
        for j in 1..=p {
            left[j] = x - t[k + 1 - j];
            right[j] = t[k + j] - x;
            let mut saved = 0.0;
            for r in 0..j {
                let temp = n[r] / (right[r + 1] + left[j - r]);
                n[r] = saved + right[r + 1] * temp;
                saved = left[j - r] * temp;
            }
            n[j] = saved;
        }
        out.fill(0.0);
        for (r, v) in n.iter().enumerate().take(p + 1) {
            if let Some(slot) = out.get_mut(k - p + r) {
                *slot = *v;
            }
        }
    }
}

pub fn parse(p: &mut Params) -> Result<Step, StepSpecError> {
    let columns = p.columns()?;
    let knots = p.count("knots", 10, 2)?;
    let degree = p.count("degree", 3, 1)?;
    if degree > MAX_DEGREE {
        return Err(StepSpecError::SplineDegree {
            at: p.at(),
            degree,
            max: MAX_DEGREE,
        });
    }
    Ok(Step::Spline {
        columns,
        knots,
        degree,
    })
}

pub fn fit(
    frame: &Frame,
    columns: &[String],
    knots: usize,
    degree: usize,
) -> Result<FittedStep, StepError> {
    let mut out = Vec::new();
    for c in columns {
        let s = sorted(need_num(frame, c)?);
        // One value (or none) has no shape to bend: no columns, rather than an error that
        // would fail a cross-validation fold that happens to see a single value.
        let Some(basis) = Basis::fit(c, &s, knots, degree) else {
            continue;
        };
        if let Some(taken) = basis.names.iter().find(|n| frame.column(n).is_some()) {
            return Err(StepError::ColumnExists {
                step: "spline",
                from: c.clone(),
                column: taken.clone(),
            });
        }
        out.push(basis);
    }
    Ok(FittedStep::Spline { columns: out })
}

/// Adds each basis's columns right after its column.
pub fn apply(frame: &mut Frame, columns: &[Basis]) -> Result<(), StepError> {
    for basis in columns {
        let Some(at) = frame.index(&basis.column) else {
            return Err(absent(&basis.column));
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
            // A record that already carries such a column gets it replaced, never a second
            // column of one name.
            if frame.column(name).is_some() {
                frame.set(Name::from(name.as_str()), Column::Num(col));
            } else {
                frame.insert_at(at + 1 + j, Name::from(name.as_str()), Column::Num(col));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(b: &Basis, x: f64) -> Vec<f64> {
        // Every function, the dropped last one included, to check the partition of unity.
        let all = b.knots.len() - b.degree - 1;
        let wide = Basis {
            names: (0..all).map(|j| j.to_string()).collect(),
            ..b.clone()
        };
        let mut out = vec![0.0; all];
        wide.eval(x, &mut out);
        out
    }

    #[test]
    fn the_basis_sums_to_one_and_is_never_negative() {
        let v: Vec<f64> = (0..100).map(|i| (i as f64).powf(1.5)).collect();
        for degree in 1..=5 {
            let b = Basis::fit("x", &v, 10, degree).unwrap();
            assert_eq!(b.names.len(), 10 + degree - 2);
            for i in 0..=400 {
                let x = -100.0 + i as f64 * 3.0;
                let f = full(&b, x);
                let sum: f64 = f.iter().sum();
                assert!(
                    (sum - 1.0).abs() < 1e-12,
                    "degree {degree} x {x}: sum {sum}"
                );
                assert!(
                    f.iter().all(|v| *v >= -1e-15),
                    "degree {degree} x {x}: {f:?}"
                );
            }
        }
    }

    #[test]
    fn linear_pieces_interpolate_between_knots() {
        // Degree 1 on knots 0, 1, 2: hat functions.
        let v = [0.0, 0.5, 1.0, 1.5, 2.0];
        let b = Basis::fit("x", &v, 3, 1).unwrap();
        assert_eq!(b.knots, vec![-1.0, 0.0, 1.0, 2.0, 3.0]);
        let f = full(&b, 0.25);
        assert_eq!(f, vec![0.75, 0.25, 0.0]);
        let f = full(&b, 2.0);
        assert_eq!(f, vec![0.0, 0.0, 1.0]);
        // Beyond the range: held at the end.
        assert_eq!(full(&b, 9.0), full(&b, 2.0));
        assert_eq!(full(&b, -9.0), full(&b, 0.0));
    }

    #[test]
    fn cubic_values_match_a_known_spline() {
        // Uniform cubic B-spline: at a knot, the three non-zero functions are 1/6, 2/3, 1/6.
        let v: Vec<f64> = (0..=4).map(f64::from).collect();
        let b = Basis::fit("x", &v, 5, 3).unwrap();
        let f = full(&b, 2.0);
        let nz: Vec<f64> = f.into_iter().filter(|x| *x > 1e-12).collect();
        assert_eq!(nz.len(), 3);
        for (got, want) in nz.iter().zip([1.0 / 6.0, 2.0 / 3.0, 1.0 / 6.0]) {
            assert!((got - want).abs() < 1e-12, "{got} against {want}");
        }
    }

    #[test]
    fn missing_stays_missing_and_constant_columns_have_no_basis() {
        let b = Basis::fit("x", &[1.0, 2.0, 3.0], 4, 3).unwrap();
        let mut out = vec![0.0; b.names.len()];
        b.eval(f64::NAN, &mut out);
        assert!(out.iter().all(|v| v.is_nan()));
        assert!(Basis::fit("x", &[5.0; 10], 10, 3).is_none());
    }

    #[test]
    fn a_degree_beyond_the_limit_gives_no_basis_and_no_panic() {
        assert!(Basis::fit("x", &[1.0, 2.0, 3.0], 3, MAX_DEGREE + 1).is_none());
        // A damaged state file: missing values instead of an out-of-bounds index.
        let mut b = Basis::fit("x", &[1.0, 2.0, 3.0], 3, 3).unwrap();
        b.degree = 9;
        let mut out = vec![0.0; b.names.len()];
        b.eval(2.0, &mut out);
        assert!(out.iter().all(|v| v.is_nan()));
    }
}
