use serde::{Deserialize, Serialize};
use crate::linear::{Loss, Matrix};
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestParams { pub trees: usize, pub max_depth: usize, pub min_leaf: usize, pub feature_fraction: f64, pub extra: bool, pub bootstrap: bool, pub max_bins: usize, pub seed: u64 }
impl Default for ForestParams { fn default() -> Self { todo!() } }
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest { x: u8 }
impl Forest {
 pub fn fit(_x: &Matrix, _y: &[f64], _loss: Loss, _p: &ForestParams) -> Forest { todo!() }
 pub fn predict(&self, _x: &Matrix) -> Vec<f64> { todo!() }
}
