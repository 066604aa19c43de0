//! Randomised forests on the shared bins: random forests (best split among a random subset of
//! features at every node) and extremely randomised trees (one random cut per sampled feature).
//! Trees grow depth-first until pure, `min_leaf` or `max_depth`; classification leaves hold
//! class frequencies and regression leaves means, averaged over the trees.
//!
//! The criterion is the weighted impurity decrease Σ s²/n over the target channels (one-hot
//! classes for softmax, which is Gini; the 0/1 target for logistic, which is Gini halved; the
//! value for regression, which is variance reduction).

use serde::{Deserialize, Serialize};

use super::bins::Binned;
use super::tree::{Node, Parent, Tree, link};
use super::{class_of, outputs};
use crate::linear::{Loss, Matrix};
use crate::rng::Rng;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    pub trees: usize,
    /// 0 = unlimited.
    pub max_depth: usize,
    /// Minimum rows (bootstrap copies counted) per leaf.
    pub min_leaf: usize,
    /// Share of the usable features tried at each split, counting only features that vary
    /// within the node (as scikit-learn does). 0.5 by default; √p / p is the classic choice for
    /// classification.
    pub feature_fraction: f64,
    /// Extremely randomised trees (a uniformly random cut between the node's lowest and highest
    /// occupied bins, per sampled feature) instead of the best cut.
    pub extra: bool,
    /// Draw each tree's rows with replacement (random forest); otherwise every tree sees every
    /// row (extra trees).
    pub bootstrap: bool,
    /// Value bins per feature, at most 255.
    pub max_bins: usize,
    pub seed: u64,
}

/// Extra trees: 300 unlimited-depth trees, leaves of at least 3 rows, half the features per
/// split, no bootstrap. For a random forest set `extra: false, bootstrap: true`.
impl Default for ForestParams {
    fn default() -> Self {
        Self {
            trees: 300,
            max_depth: 0,
            min_leaf: 3,
            feature_fraction: 0.5,
            extra: true,
            bootstrap: false,
            max_bins: 255,
            seed: 0,
        }
    }
}

/// A fitted forest; `prior` (the training target's frequencies or mean) is what it predicts
/// without trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    loss: Loss,
    cols: usize,
    prior: Vec<f64>,
    trees: Vec<Tree>,
}

/// The target as per-node statistics: `[rows, channel sums...]`.
struct Target<'a> {
    y: &'a [f64],
    classes: Option<usize>,
}

impl Target<'_> {
    fn add(&self, stats: &mut [f64], r: usize) {
        stats[0] += 1.0;
        match self.classes {
            Some(k) => {
                if let Some(c) = class_of(self.y[r], k) {
                    stats[1 + c] += 1.0;
                }
            }
            None => stats[1] += self.y[r],
        }
    }
}

/// Σ s²/n over the channels: the node's share of the criterion (higher is purer).
fn score(stats: &[f64]) -> f64 {
    if stats[0] <= 0.0 {
        return 0.0;
    }
    stats[1..].iter().map(|s| s * s).sum::<f64>() / stats[0]
}

/// The split chosen for a node: usable feature, "bin ≤ bin goes left", missing direction.
#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    bin: usize,
    missing_left: bool,
    gain: f64,
}

struct Grower<'a> {
    data: &'a Binned,
    target: Target<'a>,
    /// 1 + channels.
    stride: usize,
    min_leaf: f64,
    max_depth: usize,
    mtry: usize,
    extra: bool,
    /// 256 bins × stride, kept zeroed between uses.
    dense: Vec<f64>,
    touched: Vec<u8>,
    /// The node's occupied value bins, ascending, and their stats.
    ebins: Vec<usize>,
    estats: Vec<f64>,
    miss: Vec<f64>,
    total: Vec<f64>,
    acc: Vec<f64>,
    side: Vec<f64>,
    order: Vec<u32>,
    scratch: Vec<u32>,
    perm: Vec<usize>,
}

impl Grower<'_> {
    /// The compact histogram of feature `k` over the node's rows: occupied value bins in
    /// `ebins`/`estats`, missing rows in `miss`.
    fn histogram(&mut self, k: usize, start: usize, len: usize) {
        let s = self.stride;
        let col = self.data.column(k);
        self.touched.clear();
        for &r in &self.order[start..start + len] {
            let b = col[r as usize] as usize;
            let e = &mut self.dense[b * s..(b + 1) * s];
            if e[0] == 0.0 {
                self.touched.push(b as u8);
            }
            self.target.add(e, r as usize);
        }
        self.ebins.clear();
        self.estats.clear();
        self.miss.fill(0.0);
        let nvb = self.data.value_bins(k);
        // Small nodes visit only the bins they touched; big ones sweep all bins in order.
        if self.touched.len() * 8 < nvb {
            self.touched.sort_unstable();
            for i in 0..self.touched.len() {
                let b = self.touched[i] as usize;
                self.take_bin(b, nvb);
            }
        } else {
            for b in 0..=nvb {
                if self.dense[b * s] > 0.0 {
                    self.take_bin(b, nvb);
                }
            }
        }
    }

    fn take_bin(&mut self, b: usize, nvb: usize) {
        let s = self.stride;
        let e = &mut self.dense[b * s..(b + 1) * s];
        if b == nvb {
            self.miss.copy_from_slice(e);
        } else {
            self.ebins.push(b);
            self.estats.extend_from_slice(e);
        }
        e.fill(0.0);
    }

    /// Scores "left = `left`, right = the rest" and keeps it if it beats `best`.
    fn consider(
        &mut self,
        left: &[f64],
        parent: f64,
        k: usize,
        bin: usize,
        missing_left: Option<bool>,
        best: &mut Option<Split>,
    ) {
        for ((r, t), l) in self.side.iter_mut().zip(&self.total).zip(left) {
            *r = t - l;
        }
        if left[0] < self.min_leaf || self.side[0] < self.min_leaf {
            return;
        }
        let gain = score(left) + score(&self.side) - parent;
        if gain.is_finite() && gain > best.map_or(0.0, |b| b.gain) {
            *best = Some(Split {
                feature: k,
                bin,
                // No missing rows in the node: unseen ones follow the bigger side.
                missing_left: missing_left.unwrap_or(left[0] >= self.side[0]),
                gain,
            });
        }
    }

    /// The node's split over up to `mtry` features that vary in it, drawn in random order.
    fn best_split(&mut self, start: usize, len: usize, rng: &mut Rng) -> Option<Split> {
        let parent = score(&self.total);
        let s = self.stride;
        let u = self.perm.len();
        let mut best = None;
        let mut visited = 0;
        let mut left = vec![0.0; s];
        for i in 0..u {
            let j = i + rng.below(u - i);
            self.perm.swap(i, j);
            let k = self.perm[i];
            self.histogram(k, start, len);
            let entries = self.ebins.len();
            let has_miss = self.miss[0] > 0.0;
            if entries + usize::from(has_miss) < 2 {
                continue;
            }
            visited += 1;
            let nvb = self.data.value_bins(k);
            if self.extra {
                left.fill(0.0);
                let bin = if entries >= 2 {
                    let (lo, hi) = (self.ebins[0], self.ebins[entries - 1]);
                    let cut = lo + rng.below(hi - lo);
                    for (e, b) in self.ebins.iter().enumerate() {
                        if *b > cut {
                            break;
                        }
                        for (a, v) in left.iter_mut().zip(&self.estats[e * s..(e + 1) * s]) {
                            *a += v;
                        }
                    }
                    cut
                } else {
                    // One value and missing ones: values against missing.
                    left.copy_from_slice(&self.estats[..s]);
                    nvb - 1
                };
                self.try_sides(&mut left, parent, k, bin, has_miss, &mut best);
            } else {
                self.acc.fill(0.0);
                for e in 0..entries {
                    for c in 0..s {
                        self.acc[c] += self.estats[e * s + c];
                    }
                    let bin = if e + 1 == entries {
                        nvb - 1
                    } else {
                        self.ebins[e]
                    };
                    left.copy_from_slice(&self.acc);
                    self.try_sides(&mut left, parent, k, bin, has_miss, &mut best);
                }
            }
            if visited == self.mtry {
                break;
            }
        }
        best
    }

    /// Considers the cut with the missing rows on the right, then (if any) on the left.
    fn try_sides(
        &mut self,
        left: &mut [f64],
        parent: f64,
        k: usize,
        bin: usize,
        has_miss: bool,
        best: &mut Option<Split>,
    ) {
        if has_miss {
            self.consider(left, parent, k, bin, Some(false), best);
            for (a, m) in left.iter_mut().zip(&self.miss) {
                *a += m;
            }
            self.consider(left, parent, k, bin, Some(true), best);
        } else {
            self.consider(left, parent, k, bin, None, best);
        }
    }

    fn partition(&mut self, start: usize, len: usize, s: &Split) -> usize {
        let col = self.data.column(s.feature);
        self.scratch.clear();
        let mut l = start;
        for i in start..start + len {
            let r = self.order[i];
            if self
                .data
                .goes_left(s.feature, col[r as usize], s.bin, s.missing_left)
            {
                self.order[l] = r;
                l += 1;
            } else {
                self.scratch.push(r);
            }
        }
        self.order[l..start + len].copy_from_slice(&self.scratch);
        l - start
    }

    /// Grows one tree on `bag` (ascending row indices, repeated for bootstrap copies).
    fn grow(&mut self, bag: &[u32], rng: &mut Rng) -> Tree {
        self.order.clear();
        self.order.extend_from_slice(bag);
        let mut nodes: Vec<Node> = Vec::new();
        let mut values = Vec::new();
        let mut stack: Vec<(usize, usize, usize, Parent)> = vec![(0, bag.len(), 0, None)];
        while let Some((start, len, depth, parent)) = stack.pop() {
            self.total.fill(0.0);
            let first = self.target.y[self.order[start] as usize];
            let mut pure = true;
            for i in start..start + len {
                let r = self.order[i] as usize;
                self.target.add(&mut self.total, r);
                pure &= self.target.y[r] == first;
            }
            let splittable = !pure
                && len as f64 >= 2.0 * self.min_leaf
                && (self.max_depth == 0 || depth < self.max_depth);
            let split = if splittable {
                self.best_split(start, len, rng)
            } else {
                None
            };
            match split {
                None => {
                    let width = self.stride - 1;
                    let leaf = values.len().checked_div(width).unwrap_or(0);
                    let n = self.total[0];
                    values.extend(self.total[1..].iter().map(|s| s / n));
                    link(&mut nodes, parent, !(leaf as i32));
                }
                Some(s) => {
                    let left_len = self.partition(start, len, &s);
                    let j = nodes.len();
                    nodes.push(Node {
                        feature: self.data.features[s.feature] as u32,
                        threshold: self.data.threshold(s.feature, s.bin),
                        missing_left: s.missing_left,
                        left: 0,
                        right: 0,
                        gain: s.gain,
                    });
                    link(&mut nodes, parent, j as i32);
                    // Right pushed first so the left subtree is grown first.
                    stack.push((
                        start + left_len,
                        len - left_len,
                        depth + 1,
                        Some((j, false)),
                    ));
                    stack.push((start, left_len, depth + 1, Some((j, true))));
                }
            }
        }
        Tree { nodes, values }
    }
}

impl Forest {
    /// Fits on `x` and `y` (0/1, class index, or value per `loss`). Classification trees
    /// average class frequencies (logistic: P(y = 1)); regression trees average means.
    pub fn fit(x: &Matrix, y: &[f64], loss: Loss, params: &ForestParams) -> Forest {
        let width = outputs(loss);
        let n = x.rows.min(y.len());
        let y = &y[..n];
        let classes = match loss {
            Loss::Softmax { classes } => Some(classes),
            _ => None,
        };
        let target = Target { y, classes };
        let stride = 1 + width;
        let mut total = vec![0.0; stride];
        for r in 0..n {
            target.add(&mut total, r);
        }
        let prior = if n == 0 {
            match loss {
                Loss::Logistic => vec![0.5],
                Loss::Squared => vec![0.0],
                Loss::Softmax { classes } => vec![1.0 / classes as f64; classes],
            }
        } else {
            total[1..].iter().map(|s| s / n as f64).collect()
        };
        let mut forest = Forest {
            loss,
            cols: x.cols,
            prior,
            trees: Vec::new(),
        };
        if n == 0 {
            return forest;
        }
        let data = Binned::fit(x, n, params.max_bins);
        let usable = data.features.len();
        let mtry = if params.feature_fraction < 1.0 {
            ((params.feature_fraction * usable as f64).round() as usize).max(1)
        } else {
            usable
        };
        let mut grower = Grower {
            data: &data,
            target,
            stride,
            min_leaf: params.min_leaf.max(1) as f64,
            max_depth: params.max_depth,
            mtry,
            extra: params.extra,
            dense: vec![0.0; 256 * stride],
            touched: Vec::new(),
            ebins: Vec::new(),
            estats: Vec::new(),
            miss: vec![0.0; stride],
            total: vec![0.0; stride],
            acc: vec![0.0; stride],
            side: vec![0.0; stride],
            order: Vec::new(),
            scratch: Vec::new(),
            perm: (0..usable).collect(),
        };
        let mut seeds = Rng::new(params.seed);
        let mut bag: Vec<u32> = Vec::with_capacity(n);
        let mut copies = vec![0u32; n];
        for _ in 0..params.trees {
            // Each tree its own stream, so a tree's draws do not depend on the one before.
            let mut rng = Rng::new(seeds.next_u64());
            bag.clear();
            if params.bootstrap {
                copies.fill(0);
                for _ in 0..n {
                    copies[rng.below(n)] += 1;
                }
                for (r, c) in copies.iter().enumerate() {
                    bag.extend(std::iter::repeat_n(r as u32, *c as usize));
                }
            } else {
                bag.extend(0..n as u32);
            }
            let tree = grower.grow(&bag, &mut rng);
            forest.trees.push(tree);
        }
        forest
    }

    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// The mean of the trees' leaves, in `Gbdt::predict`'s layout.
    pub fn predict(&self, x: &Matrix) -> Vec<f64> {
        let w = outputs(self.loss);
        let mut out = Vec::with_capacity(x.rows * w);
        if self.trees.is_empty() {
            for _ in 0..x.rows {
                out.extend_from_slice(&self.prior);
            }
            return out;
        }
        let t = self.trees.len() as f64;
        let mut acc = vec![0.0; w];
        for i in 0..x.rows {
            let row = x.row(i);
            acc.fill(0.0);
            for tree in &self.trees {
                let l = tree.leaf(row);
                if let Some(v) = tree.values.get(l * w..(l + 1) * w) {
                    for (a, b) in acc.iter_mut().zip(v) {
                        *a += b;
                    }
                }
            }
            out.extend(acc.iter().map(|a| a / t));
        }
        out
    }

    /// Total impurity decrease per feature (one entry per training column).
    pub fn importance(&self) -> Vec<f64> {
        let mut imp = vec![0.0; self.cols];
        for t in &self.trees {
            t.add_importance(&mut imp);
        }
        imp
    }
}
