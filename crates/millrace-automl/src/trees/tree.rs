//! The fitted tree shared by boosting and forests: split nodes on raw `f64` thresholds and a
//! flat array of leaf values, so a saved model predicts without its training bins.

use serde::{Deserialize, Serialize};

/// One split: rows with `value <= threshold` go left, missing values go where `missing_left`
/// says. A child `c >= 0` is a node index, `c < 0` is the leaf `!c`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Node {
    pub feature: u32,
    pub threshold: f64,
    pub missing_left: bool,
    pub left: i32,
    pub right: i32,
    /// The split's gain, summed per feature for importance reports.
    pub gain: f64,
}

/// A tree with `values.len() / width` leaves; no nodes means a single leaf.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tree {
    pub nodes: Vec<Node>,
    pub values: Vec<f64>,
    /// Training rows that reached each leaf (bootstrap copies counted): what TreeSHAP weighs
    /// the branches by. Empty in models saved before explanations existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cover: Vec<f64>,
}

impl Tree {
    /// The leaf a raw row lands in. A column the row lacks counts as missing, and infinities
    /// compare as ±`f64::MAX`, as they were binned.
    pub fn leaf(&self, row: &[f64]) -> usize {
        if self.nodes.is_empty() {
            return 0;
        }
        let mut c = 0i32;
        while c >= 0 {
            let n = &self.nodes[c as usize];
            let v = row.get(n.feature as usize).copied().unwrap_or(f64::NAN);
            let left = if v.is_nan() {
                n.missing_left
            } else {
                v.min(f64::MAX) <= n.threshold
            };
            c = if left { n.left } else { n.right };
        }
        !c as usize
    }

    pub fn add_importance(&self, importance: &mut [f64]) {
        for n in &self.nodes {
            if let Some(v) = importance.get_mut(n.feature as usize) {
                *v += n.gain;
            }
        }
    }
}

/// The summed split gain per feature of `trees` (one entry per training column): the
/// importance boosting and forests both report.
pub(crate) fn importance(trees: &[Tree], cols: usize) -> Vec<f64> {
    let mut imp = vec![0.0; cols];
    for t in trees {
        t.add_importance(&mut imp);
    }
    imp
}

/// Where a pending leaf hangs: its parent node and whether it is the left child.
pub(crate) type Parent = Option<(usize, bool)>;

/// Points the parent's child slot at `child` (a node index, or `!leaf`).
pub(crate) fn link(nodes: &mut [Node], parent: Parent, child: i32) {
    if let Some((p, is_left)) = parent {
        if is_left {
            nodes[p].left = child;
        } else {
            nodes[p].right = child;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_threshold_and_missing_direction() {
        let t = Tree {
            nodes: vec![
                Node {
                    feature: 0,
                    threshold: 1.0,
                    missing_left: false,
                    left: !0,
                    right: 1,
                    gain: 1.0,
                },
                Node {
                    feature: 1,
                    threshold: f64::MAX,
                    missing_left: false,
                    left: !1,
                    right: !2,
                    gain: 2.0,
                },
            ],
            cover: Vec::new(),
            values: vec![10.0, 20.0, 30.0],
        };
        assert_eq!(t.leaf(&[1.0, 0.0]), 0);
        assert_eq!(t.leaf(&[f64::NAN, 0.0]), 1);
        assert_eq!(t.leaf(&[2.0, f64::INFINITY]), 1);
        assert_eq!(t.leaf(&[2.0, f64::NAN]), 2);
        assert_eq!(t.leaf(&[2.0]), 2);
        let mut imp = vec![0.0; 2];
        t.add_importance(&mut imp);
        assert_eq!(imp, vec![1.0, 2.0]);
    }
}
