//! Histogram decision trees for the AutoML trainer: gradient boosting ([`Gbdt`], second-order,
//! leaf-wise, LightGBM-style) and randomised forests ([`Forest`]: random forests or extremely
//! randomised trees).
//!
//! Written here rather than bound from LightGBM (CMake, libclang and a long C++ build) or taken
//! from crates needing nightly. Both families share the binning (`bins`: ≤ 255 value bins per
//! feature plus a missing bin, `u8` column-major) and the fitted tree (`tree`: raw `f64`
//! thresholds, so saved models predict on raw rows). Fits are single-threaded and sum in a
//! fixed order, so the same inputs and seed give bit-identical models; the caller runs folds
//! in parallel. Prediction layouts match `Linear::predict`.

mod bins;
mod forest;
mod gbdt;
mod tree;

pub use forest::{Forest, ForestParams};
pub use gbdt::{Gbdt, GbdtParams};

use crate::linear::Loss;

/// Scores per row: one, or one per class.
fn outputs(loss: Loss) -> usize {
    match loss {
        Loss::Softmax { classes } => classes,
        _ => 1,
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Numerically stable softmax in place.
fn softmax(z: &mut [f64]) {
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

/// The class index a softmax target encodes (`None` when it names no class).
fn class_of(y: f64, classes: usize) -> Option<usize> {
    (y >= 0.0 && y < classes as f64).then_some(y as usize)
}
