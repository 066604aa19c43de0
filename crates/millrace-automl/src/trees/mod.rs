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
pub(crate) mod tree;

pub use forest::{Forest, ForestParams};
pub use gbdt::{Gbdt, GbdtParams};

use crate::linear::Loss;
// The link functions are the linear models' own, so both families map scores the same way.
pub(crate) use crate::linear::{sigmoid, softmax};

/// Scores per row: one, or one per class.
fn outputs(loss: Loss) -> usize {
    loss.outputs()
}

/// A stable partition of `order[start..start + len]` by a split (values going left first,
/// each side in its original order, so fits stay deterministic); `scratch` is reused memory.
/// Returns how many went left.
pub(crate) fn partition(
    data: &bins::Binned,
    order: &mut [u32],
    scratch: &mut Vec<u32>,
    (start, len): (usize, usize),
    (feature, bin, missing_left): (usize, usize, bool),
) -> usize {
    let col = data.column(feature);
    scratch.clear();
    let mut l = start;
    for i in start..start + len {
        let r = order[i];
        if data.goes_left(feature, col[r as usize], bin, missing_left) {
            order[l] = r;
            l += 1;
        } else {
            scratch.push(r);
        }
    }
    order[l..start + len].copy_from_slice(scratch);
    l - start
}

/// The class index a softmax target encodes (`None` when it names no class).
fn class_of(y: f64, classes: usize) -> Option<usize> {
    (y >= 0.0 && y < classes as f64).then_some(y as usize)
}
