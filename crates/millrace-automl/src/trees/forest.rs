//! Randomised forests on the shared bins: random forests (best split among a random subset of
//! features at every node) and extremely randomised trees (one random cut per sampled feature).
//! Trees grow depth-first until pure, `min_leaf` or `max_depth`; classification leaves hold
//! class frequencies and regression leaves means, averaged over the trees.
//!
//! The criterion is the weighted impurity decrease Σ s²/n over the target channels (one-hot
//! classes for softmax, which is the Gini decrease; the 0/1 target for logistic, which is half
//! of it; the value for regression, which is the variance reduction).

use serde::{Deserialize, Serialize};

use super::bins::Binned;
use super::tree::{Node, Parent, Tree, importance, link};
use super::{class_of, outputs};
use crate::explain::treeshap::{Explainer, Explainers};
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
    /// Extremely randomised trees instead of the best cut: per sampled feature, one cut drawn
    /// uniformly among the bin boundaries between the node's lowest and highest occupied value
    /// bins (so uniform over quantile-like bins rather than over the value range).
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
    /// Prepared on the first explanation, for the next ones.
    #[serde(skip)]
    explainers: Explainers,
}

/// Interleaved histogram copies (see `Grower::dense`); a power of two.
const LANES: usize = 4;

/// No class: a softmax target outside `0..classes` counts as a row of no class.
const NO_CLASS: u32 = u32::MAX;

/// The target as per-node statistics: `[rows, channel sums...]`.
struct Target<'a> {
    y: &'a [f64],
    /// Softmax: each row's class (`NO_CLASS` if none); empty otherwise.
    class: Vec<u32>,
}

impl<'a> Target<'a> {
    fn new(y: &'a [f64], loss: Loss) -> Self {
        let class = match loss {
            Loss::Softmax { classes } => y
                .iter()
                .map(|v| class_of(*v, classes).map_or(NO_CLASS, |c| c as u32))
                .collect(),
            _ => Vec::new(),
        };
        Target { y, class }
    }

    fn add(&self, stats: &mut [f64], r: usize) {
        stats[0] += 1.0;
        if self.class.is_empty() {
            stats[1] += self.y[r];
        } else if self.class[r] != NO_CLASS {
            stats[1 + self.class[r] as usize] += 1.0;
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

/// A node waiting to grow: rows `order[start..start + len]`, depth, where it hangs, and its
/// known constant features as an (offset, length) range of `consts`.
type Pending = (usize, usize, usize, Parent, (usize, usize));

struct Grower<'a> {
    data: &'a Binned,
    target: Target<'a>,
    /// 1 + channels.
    stride: usize,
    min_leaf: f64,
    max_depth: usize,
    mtry: usize,
    extra: bool,
    /// `LANES` histograms of 256 bins × stride, kept zeroed between uses. Consecutive rows go to
    /// different lanes: rows of one bin in a row would otherwise wait on each other's stores.
    dense: Vec<f64>,
    /// Lanes in use for the current histogram (1 or `LANES`).
    lanes: usize,
    /// The bins of a small node's rows, when sorting them beats sweeping the bin range.
    touched: Vec<u8>,
    /// The node's occupied value bins, ascending, and their stats.
    ebins: Vec<usize>,
    estats: Vec<f64>,
    miss: Vec<f64>,
    total: Vec<f64>,
    acc: Vec<f64>,
    left: Vec<f64>,
    side: Vec<f64>,
    order: Vec<u32>,
    scratch: Vec<u32>,
    /// The features a node may draw from (usable ones not known to be constant in it).
    cand: Vec<usize>,
    /// Features found constant, per pending node: a feature constant in a node is constant in
    /// all its descendants, so they never pay for it again (deep nodes of one-hot data would
    /// otherwise scan most columns for nothing). Used as a stack in depth-first order.
    consts: Vec<usize>,
    known: Vec<bool>,
}

impl Grower<'_> {
    /// The compact histogram of feature `k` over the node's rows: occupied value bins in
    /// `ebins`/`estats`, missing rows in `miss`.
    fn histogram(&mut self, k: usize, start: usize, len: usize) {
        let s = self.stride;
        let col = self.data.column(k);
        let rows = &self.order[start..start + len];
        let (mut lo, mut hi) = (usize::MAX, 0);
        let lane = 256 * s;
        // Small nodes use one lane: summing lanes would cost more than it saves.
        self.lanes = if len >= 64 { LANES } else { 1 };
        let mask = self.lanes - 1;
        if self.target.class.is_empty() {
            let y = self.target.y;
            for (i, &r) in rows.iter().enumerate() {
                let b = col[r as usize] as usize;
                let at = (i & mask) * lane + 2 * b;
                self.dense[at] += 1.0;
                self.dense[at + 1] += y[r as usize];
                lo = lo.min(b);
                hi = hi.max(b);
            }
        } else {
            for (i, &r) in rows.iter().enumerate() {
                let b = col[r as usize] as usize;
                let at = (i & mask) * lane + b * s;
                self.dense[at] += 1.0;
                let c = self.target.class[r as usize];
                if c != NO_CLASS {
                    self.dense[at + 1 + c as usize] += 1.0;
                }
                lo = lo.min(b);
                hi = hi.max(b);
            }
        }
        self.ebins.clear();
        self.estats.clear();
        self.miss.fill(0.0);
        let nvb = self.data.value_bins(k);
        if hi < lo {
            return;
        }
        // Sweep the occupied range in bin order, unless a small node is spread over a wide
        // range: then sort its rows' bins instead.
        if hi - lo < 4 * len + 16 {
            for b in lo..=hi {
                if (0..self.lanes).any(|l| self.dense[l * lane + b * s] > 0.0) {
                    self.take_bin(b, nvb);
                }
            }
        } else {
            self.touched.clear();
            self.touched.extend(rows.iter().map(|r| col[*r as usize]));
            self.touched.sort_unstable();
            self.touched.dedup();
            for i in 0..self.touched.len() {
                let b = self.touched[i] as usize;
                self.take_bin(b, nvb);
            }
        }
    }

    /// Moves bin `b`'s stats (summed over the lanes) to the compact histogram, zeroing it.
    fn take_bin(&mut self, b: usize, nvb: usize) {
        let s = self.stride;
        let lane = 256 * s;
        let into = if b == nvb {
            self.miss.fill(0.0);
            &mut self.miss
        } else {
            self.ebins.push(b);
            let n = self.estats.len();
            self.estats.resize(n + s, 0.0);
            &mut self.estats[n..]
        };
        for l in 0..self.lanes {
            let e = &mut self.dense[l * lane + b * s..l * lane + (b + 1) * s];
            for (a, v) in into.iter_mut().zip(e.iter_mut()) {
                *a += *v;
                *v = 0.0;
            }
        }
    }

    /// Scores "left = `left`, right = the rest" and keeps it if it beats `best`. Any valid cut
    /// is taken over none, even without gain (as scikit-learn does): a split that does not
    /// pay alone can still set up ones that do, and growth ends at purity or `min_leaf`.
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
        if gain.is_finite() && gain > best.map_or(f64::NEG_INFINITY, |b| b.gain) {
            *best = Some(Split {
                feature: k,
                bin,
                // No missing rows in the node: unseen ones follow the bigger side.
                missing_left: missing_left.unwrap_or(left[0] >= self.side[0]),
                gain,
            });
        }
    }

    /// Extra trees: a uniformly random cut between the node's lowest and highest occupied value
    /// bins of feature `k` (values against missing when there is one value), found in two
    /// cheap passes instead of a histogram. Leaves the stats of the values at or below the cut
    /// in `left` and the missing rows' in `miss`; `None` when the feature is constant here.
    fn random_cut(
        &mut self,
        k: usize,
        start: usize,
        len: usize,
        rng: &mut Rng,
        left: &mut [f64],
    ) -> Option<(usize, bool)> {
        let col = self.data.column(k);
        let rows = &self.order[start..start + len];
        let m = self.data.value_bins(k);
        let (mut lo, mut hi, mut n_miss) = (usize::MAX, 0, 0usize);
        for &r in rows {
            let b = col[r as usize] as usize;
            if b == m {
                n_miss += 1;
            } else {
                lo = lo.min(b);
                hi = hi.max(b);
            }
        }
        let has_miss = n_miss > 0;
        if hi < lo || (lo == hi && !has_miss) {
            return None;
        }
        let cut = if lo < hi {
            lo + rng.below(hi - lo)
        } else {
            m - 1
        };
        left.fill(0.0);
        self.miss.fill(0.0);
        if self.target.class.is_empty() {
            // Branch-free (the side of a row is a coin toss for the branch predictor): a row's
            // value is masked to +0.0 on the other side, which leaves a sum unchanged.
            let y = self.target.y;
            let (mut ln, mut mn) = (0u64, 0u64);
            let (mut ly, mut my) = (0.0, 0.0);
            for &r in rows {
                let b = col[r as usize] as usize;
                let v = y[r as usize].to_bits();
                let l = u64::from(b <= cut);
                let q = u64::from(b == m);
                ln += l;
                mn += q;
                ly += f64::from_bits(v & l.wrapping_neg());
                my += f64::from_bits(v & q.wrapping_neg());
            }
            left[0] = ln as f64;
            left[1] = ly;
            self.miss[0] = mn as f64;
            self.miss[1] = my;
        } else {
            for &r in rows {
                let b = col[r as usize] as usize;
                if b <= cut {
                    self.target.add(left, r as usize);
                } else if b == m {
                    self.target.add(&mut self.miss, r as usize);
                }
            }
        }
        Some((cut, has_miss))
    }

    /// The node's split over up to `mtry` features that vary in it, drawn in random order
    /// from `cand`; features found constant are pushed onto `consts`.
    fn best_split(&mut self, start: usize, len: usize, rng: &mut Rng) -> Option<Split> {
        let parent = score(&self.total);
        let s = self.stride;
        let u = self.cand.len();
        let mut best = None;
        let mut visited = 0;
        let mut left = std::mem::take(&mut self.left);
        for i in 0..u {
            let j = i + rng.below(u - i);
            self.cand.swap(i, j);
            let k = self.cand[i];
            if self.extra {
                let Some((bin, has_miss)) = self.random_cut(k, start, len, rng, &mut left) else {
                    self.consts.push(k);
                    continue;
                };
                visited += 1;
                self.try_sides(&mut left, parent, k, bin, has_miss, &mut best);
            } else {
                self.histogram(k, start, len);
                let entries = self.ebins.len();
                let has_miss = self.miss[0] > 0.0;
                if entries + usize::from(has_miss) < 2 {
                    self.consts.push(k);
                    continue;
                }
                visited += 1;
                let nvb = self.data.value_bins(k);
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
        self.left = left;
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
        super::partition(
            self.data,
            &mut self.order,
            &mut self.scratch,
            (start, len),
            (s.feature, s.bin, s.missing_left),
        )
    }

    /// Grows one tree on `bag` (ascending row indices, repeated for bootstrap copies).
    fn grow(&mut self, bag: &[u32], rng: &mut Rng) -> Tree {
        self.order.clear();
        self.order.extend_from_slice(bag);
        let mut nodes: Vec<Node> = Vec::new();
        let mut values = Vec::new();
        let mut cover = Vec::new();
        self.consts.clear();
        let mut stack: Vec<Pending> = vec![(0, bag.len(), 0, None, (0, 0))];
        while let Some((start, len, depth, parent, (c_off, c_len))) = stack.pop() {
            // Later entries belong to subtrees already grown.
            self.consts.truncate(c_off + c_len);
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
            let mut known = (c_off, c_len);
            let split = if splittable {
                for &f in &self.consts[c_off..c_off + c_len] {
                    self.known[f] = true;
                }
                self.cand.clear();
                self.cand
                    .extend((0..self.known.len()).filter(|f| !self.known[*f]));
                for &f in &self.consts[c_off..c_off + c_len] {
                    self.known[f] = false;
                }
                // The children's list: this node's, plus what this node finds constant.
                let off = self.consts.len();
                self.consts.extend_from_within(c_off..c_off + c_len);
                let split = self.best_split(start, len, rng);
                known = (off, self.consts.len() - off);
                split
            } else {
                None
            };
            match split {
                None => {
                    let width = self.stride - 1;
                    let leaf = values.len().checked_div(width).unwrap_or(0);
                    let n = self.total[0];
                    values.extend(self.total[1..].iter().map(|s| s / n));
                    cover.push(n);
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
                        gain: s.gain.max(0.0),
                    });
                    link(&mut nodes, parent, j as i32);
                    // Right pushed first so the left subtree is grown first.
                    stack.push((
                        start + left_len,
                        len - left_len,
                        depth + 1,
                        Some((j, false)),
                        known,
                    ));
                    stack.push((start, left_len, depth + 1, Some((j, true)), known));
                }
            }
        }
        Tree {
            nodes,
            values,
            cover,
        }
    }
}

impl Forest {
    /// Fits on `x` and `y` (0/1, class index, or value per `loss`). Classification trees
    /// average class frequencies (logistic: P(y = 1)); regression trees average means.
    pub fn fit(x: &Matrix, y: &[f64], loss: Loss, params: &ForestParams) -> Forest {
        let width = outputs(loss);
        let n = x.rows.min(y.len());
        let y = &y[..n];
        let target = Target::new(y, loss);
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
            explainers: Explainers::default(),
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
            dense: vec![0.0; LANES * 256 * stride],
            lanes: 1,
            touched: Vec::new(),
            ebins: Vec::new(),
            estats: Vec::new(),
            miss: vec![0.0; stride],
            total: vec![0.0; stride],
            acc: vec![0.0; stride],
            left: vec![0.0; stride],
            side: vec![0.0; stride],
            order: Vec::new(),
            scratch: Vec::new(),
            cand: Vec::new(),
            consts: Vec::new(),
            known: vec![false; usable],
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

    /// What the forest predicts without trees (explanations).
    pub(crate) fn prior(&self) -> &[f64] {
        &self.prior
    }

    /// The trees' explainers (`width` outputs per leaf), prepared once; `None` when the trees
    /// keep no covers (a model saved before explanations).
    pub(crate) fn explainers(&self, width: usize) -> Option<Vec<Explainer<'_>>> {
        self.explainers.of(&self.trees, width)
    }

    /// The trees (explanations).
    pub(crate) fn trees(&self) -> &[Tree] {
        &self.trees
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
        importance(&self.trees, self.cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fully_grown_trees_reproduce_a_function_of_the_row_exactly() {
        // Leaves are pure when grown to one row, so any disagreement between the binned routing
        // used while growing and the raw thresholds used to predict shows as a wrong value.
        let mut rng = Rng::new(3);
        let (n, mut data, mut y) = (800, Vec::new(), Vec::new());
        for _ in 0..n {
            let a = rng.below(30) as f64;
            let b = match rng.below(10) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                // Few enough distinct values for one bin each.
                _ => rng.below(100) as f64 / 100.0,
            };
            let up = rng.below(2) == 1;
            let d = if up {
                f64::from_bits(1.0f64.to_bits() + 1)
            } else {
                1.0
            };
            data.extend([a, b, d]);
            let bv = if b.is_nan() { -7.0 } else { b.clamp(-5.0, 5.0) };
            y.push(a + 10.0 * bv + if up { 100.0 } else { 0.0 });
        }
        let x = Matrix::new(n, 3, data);
        for extra in [true, false] {
            let p = ForestParams {
                trees: 3,
                min_leaf: 1,
                feature_fraction: 1.0,
                extra,
                bootstrap: false,
                max_bins: 255,
                ..ForestParams::default()
            };
            let f = Forest::fit(&x, &y, Loss::Squared, &p);
            let pred = f.predict(&x);
            for (p, t) in pred.iter().zip(&y) {
                assert!((p - t).abs() < 1e-9, "extra {extra}: {p} vs {t}");
            }
        }
    }
}
