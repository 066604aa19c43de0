//! Gradient-boosted trees, LightGBM-style: second-order (gradient and hessian) histogram
//! trees grown leaf-wise (best gain first) up to `max_leaves`, the sibling of each split's
//! smaller child found by histogram subtraction, per-round row subsampling and per-tree
//! feature sampling. Softmax grows one tree per class per round.
//!
//! There is no early stopping inside: `fit` reports the validation loss after every round, the
//! caller picks a round count from several folds' curves and `truncate`s. The random draws of
//! round `r` never depend on the total round count, so a truncated model is bit-identical to
//! one fitted with that many rounds.

use std::ops::{Add, Sub};

use serde::{Deserialize, Serialize};

use super::bins::Binned;
use super::tree::{Node, Parent, Tree, importance, link};
use super::{class_of, outputs, sigmoid, softmax};
use crate::explain::treeshap::{Explainer, Explainers};
use crate::linear::{Loss, Matrix};
use crate::rng::Rng;

/// Floor on a row's hessian: a confident logistic/softmax prediction has p(1-p) → 0, which
/// would otherwise make leaf values blow up.
const MIN_ROW_HESSIAN: f64 = 1e-16;

/// Interleaved histogram copies for big leaves (see `Grower::build`).
const LANES: usize = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtParams {
    /// Boosting rounds (Softmax: one tree per class per round).
    pub rounds: usize,
    pub learning_rate: f64,
    /// Leaves per tree, grown best-gain first.
    pub max_leaves: usize,
    /// 0 = unlimited.
    pub max_depth: usize,
    /// Minimum (sampled) rows per leaf.
    pub min_leaf: usize,
    /// Minimum sum of hessians per leaf.
    pub min_hessian: f64,
    /// L2 penalty on leaf values (λ in G²/(H+λ)).
    pub l2: f64,
    /// Share of the usable features each tree may split on.
    pub feature_fraction: f64,
    /// Share of the rows each round's trees see (drawn without replacement).
    pub subsample: f64,
    /// Value bins per feature, at most 255.
    pub max_bins: usize,
    pub seed: u64,
}

impl Default for GbdtParams {
    fn default() -> Self {
        Self {
            rounds: 500,
            learning_rate: 0.05,
            max_leaves: 15,
            max_depth: 6,
            min_leaf: 20,
            min_hessian: 1e-3,
            l2: 1.0,
            feature_fraction: 0.8,
            subsample: 0.8,
            max_bins: 255,
            seed: 0,
        }
    }
}

/// A fitted boosted model: the prior scores plus the trees, round after round (class after
/// class within a round for softmax). Leaf values already include the learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbdt {
    loss: Loss,
    cols: usize,
    init: Vec<f64>,
    trees: Vec<Tree>,
    /// Prepared on the first explanation, for the next ones.
    #[serde(skip)]
    explainers: Explainers,
}

/// Gradient and hessian sums and the row count of a histogram bin, a leaf or a split side.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    g: f64,
    h: f64,
    n: u32,
}

impl Add for Stats {
    type Output = Stats;
    fn add(self, o: Stats) -> Stats {
        Stats {
            g: self.g + o.g,
            h: self.h + o.h,
            n: self.n + o.n,
        }
    }
}

impl Sub for Stats {
    type Output = Stats;
    fn sub(self, o: Stats) -> Stats {
        Stats {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n.saturating_sub(o.n),
        }
    }
}

/// A candidate split of a leaf: usable feature, "bin ≤ bin goes left", and the left side.
#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    bin: usize,
    missing_left: bool,
    gain: f64,
    left: Stats,
}

/// A leaf while growing: its rows are `order[start..start + len]`.
struct Leaf {
    start: usize,
    len: usize,
    sums: Stats,
    depth: usize,
    /// Its histogram, while it may still split.
    slot: Option<usize>,
    parent: Parent,
    best: Option<Split>,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_leaves: usize,
    max_depth: usize,
    min_leaf: u32,
    min_hessian: f64,
    l2: f64,
}

impl Limits {
    fn of(p: &GbdtParams) -> Limits {
        Limits {
            max_leaves: p.max_leaves.max(1),
            max_depth: p.max_depth,
            min_leaf: p.min_leaf.clamp(1, u32::MAX as usize) as u32,
            // `max` also turns a NaN setting into 0.
            min_hessian: p.min_hessian.max(0.0),
            l2: p.l2.max(0.0),
        }
    }

    /// Gain of splitting `parent` (whose own term is `parent_score`) into `l` and `r`, if
    /// both sides are big enough.
    fn gain(&self, l: Stats, r: Stats, parent_score: f64) -> Option<f64> {
        if l.n < self.min_leaf
            || r.n < self.min_leaf
            || l.h < self.min_hessian
            || r.h < self.min_hessian
        {
            return None;
        }
        let g = self.score(l) + self.score(r) - parent_score;
        g.is_finite().then_some(g)
    }

    fn score(&self, s: Stats) -> f64 {
        s.g * s.g / (s.h + self.l2)
    }
}

/// Grows one tree at a time, keeping its buffers (histogram slots, row order, gathered
/// gradients) between trees so the boosting loop does not allocate.
struct Grower<'a> {
    data: &'a Binned,
    lim: Limits,
    /// Where each usable feature's bins start within a histogram slot.
    offsets: Vec<usize>,
    /// Bins per slot (all features, missing bins included).
    width: usize,
    hist: Vec<Stats>,
    slots: usize,
    free: Vec<usize>,
    order: Vec<u32>,
    scratch: Vec<u32>,
    og: Vec<f64>,
    oh: Vec<f64>,
    /// `LANES` scratch histograms of 256 bins, zeroed between uses.
    lanes: Vec<Stats>,
    leaves: Vec<Leaf>,
    /// The binned twin of each node of the tree being grown: (usable feature, bin, missing
    /// left), to route rows left out of the sample.
    splits: Vec<(usize, usize, bool)>,
    /// The usable features this tree may use, ascending.
    feats: Vec<usize>,
    /// Tests: build every histogram directly instead of by subtraction.
    #[cfg(test)]
    direct: bool,
}

impl<'a> Grower<'a> {
    fn new(data: &'a Binned, lim: Limits) -> Self {
        let mut offsets = Vec::with_capacity(data.features.len());
        let mut width = 0;
        for k in 0..data.features.len() {
            offsets.push(width);
            width += data.value_bins(k) + 1;
        }
        Grower {
            data,
            lim,
            offsets,
            width,
            hist: Vec::new(),
            slots: 0,
            free: Vec::new(),
            order: Vec::new(),
            scratch: Vec::new(),
            og: Vec::new(),
            oh: Vec::new(),
            lanes: vec![Stats::default(); LANES * 256],
            leaves: Vec::new(),
            splits: Vec::new(),
            feats: Vec::new(),
            #[cfg(test)]
            direct: false,
        }
    }

    fn alloc(&mut self) -> usize {
        if let Some(s) = self.free.pop() {
            return s;
        }
        self.slots += 1;
        self.hist.resize(self.slots * self.width, Stats::default());
        self.slots - 1
    }

    fn can_split(&self, leaf: &Leaf) -> bool {
        !self.feats.is_empty()
            && leaf.len >= 2 * self.lim.min_leaf as usize
            && (self.lim.max_depth == 0 || leaf.depth < self.lim.max_depth)
            && leaf.sums.h >= 2.0 * self.lim.min_hessian
    }

    /// Histograms of the tree's features over `order[start..start + len]` into `slot`.
    fn build(&mut self, slot: usize, start: usize, len: usize, g: &[f64], h: &[f64]) {
        let rows = &self.order[start..start + len];
        // Gathered once so each feature's pass reads gradients sequentially.
        self.og.clear();
        self.og.extend(rows.iter().map(|r| g[*r as usize]));
        self.oh.clear();
        self.oh.extend(rows.iter().map(|r| h[*r as usize]));
        let base = slot * self.width;
        for &k in &self.feats {
            let nb = self.data.value_bins(k) + 1;
            let lo = base + self.offsets[k];
            let hs = &mut self.hist[lo..lo + nb];
            let col = self.data.column(k);
            if len >= 4 * nb {
                // Consecutive rows into different lanes: rows of one bin in a row would
                // otherwise wait on each other's stores.
                let lanes = &mut self.lanes;
                for (i, ((r, gi), hi)) in rows.iter().zip(&self.og).zip(&self.oh).enumerate() {
                    let e = &mut lanes[(i % LANES) * 256 + col[*r as usize] as usize];
                    e.g += gi;
                    e.h += hi;
                    e.n += 1;
                }
                for (b, out) in hs.iter_mut().enumerate() {
                    let mut t = Stats::default();
                    for l in 0..LANES {
                        t = t + std::mem::take(&mut lanes[l * 256 + b]);
                    }
                    *out = t;
                }
            } else {
                hs.fill(Stats::default());
                for ((r, gi), hi) in rows.iter().zip(&self.og).zip(&self.oh) {
                    let e = &mut hs[col[*r as usize] as usize];
                    e.g += gi;
                    e.h += hi;
                    e.n += 1;
                }
            }
        }
    }

    /// Turns the parent's histogram in `parent` into its larger child's by taking away the
    /// smaller child's in `small`.
    fn subtract(&mut self, parent: usize, small: usize) {
        let (pb, sb) = (parent * self.width, small * self.width);
        for &k in &self.feats {
            let lo = self.offsets[k];
            for i in lo..lo + self.data.value_bins(k) + 1 {
                let s = self.hist[sb + i];
                let p = &mut self.hist[pb + i];
                *p = *p - s;
            }
        }
    }

    /// The best split of a leaf with totals `sums` and its histogram in `slot`: for every
    /// boundary between non-empty value bins, missing values tried on each side.
    fn find_best(&self, slot: usize, sums: Stats) -> Option<Split> {
        let parent = self.lim.score(sums);
        let base = slot * self.width;
        let mut best: Option<Split> = None;
        let mut consider = |feature: usize, bin: usize, left: Stats, missing_left: bool| {
            if let Some(gain) = self.lim.gain(left, sums - left, parent)
                && gain > best.map_or(0.0, |b| b.gain)
            {
                best = Some(Split {
                    feature,
                    bin,
                    missing_left,
                    gain,
                    left,
                });
            }
        };
        for &k in &self.feats {
            let nvb = self.data.value_bins(k);
            let lo = base + self.offsets[k];
            let hs = &self.hist[lo..lo + nvb + 1];
            let miss = hs[nvb];
            let Some(last) = hs[..nvb].iter().rposition(|e| e.n > 0) else {
                continue;
            };
            let mut acc = Stats::default();
            for (b, e) in hs[..=last].iter().enumerate() {
                if e.n == 0 {
                    continue;
                }
                acc = acc + *e;
                // "All values left" becomes the last bin so unseen large values stay with
                // the values rather than with the missing ones.
                let bin = if b == last { nvb - 1 } else { b };
                if miss.n > 0 {
                    consider(k, bin, acc, false);
                    consider(k, bin, acc + miss, true);
                } else {
                    // No missing rows here: send unseen ones to the heavier side.
                    let right = sums - acc;
                    consider(k, bin, acc, acc.h >= right.h);
                }
            }
        }
        best
    }

    /// Stable partition of a leaf's rows; returns how many went left.
    fn partition(&mut self, start: usize, len: usize, s: &Split) -> usize {
        super::partition(
            self.data,
            &mut self.order,
            &mut self.scratch,
            (start, len),
            (s.feature, s.bin, s.missing_left),
        )
    }

    /// The leaf of training row `r`, routed on its bins.
    fn leaf_binned(&self, nodes: &[Node], r: usize) -> usize {
        if nodes.is_empty() {
            return 0;
        }
        let mut c = 0i32;
        while c >= 0 {
            let (k, b, ml) = self.splits[c as usize];
            let n = &nodes[c as usize];
            c = if self.data.goes_left(k, self.data.column(k)[r], b, ml) {
                n.left
            } else {
                n.right
            };
        }
        !c as usize
    }

    /// Grows one tree on the rows in `bag` (ascending) with these gradients; leaf `i` of the
    /// result holds `order[leaves[i].start..][..leaves[i].len]` afterwards.
    fn grow(&mut self, bag: &[u32], g: &[f64], h: &[f64], learning_rate: f64) -> Tree {
        self.order.clear();
        self.order.extend_from_slice(bag);
        self.leaves.clear();
        self.splits.clear();
        self.free.clear();
        self.free.extend((0..self.slots).rev());
        let mut sums = Stats::default();
        for &r in bag {
            sums.g += g[r as usize];
            sums.h += h[r as usize];
            sums.n += 1;
        }
        let mut root = Leaf {
            start: 0,
            len: bag.len(),
            sums,
            depth: 0,
            slot: None,
            parent: None,
            best: None,
        };
        if self.lim.max_leaves > 1 && self.can_split(&root) {
            let s = self.alloc();
            self.build(s, 0, bag.len(), g, h);
            root.slot = Some(s);
            root.best = self.find_best(s, sums);
        }
        self.leaves.push(root);
        let mut nodes: Vec<Node> = Vec::new();
        while self.leaves.len() < self.lim.max_leaves {
            // Best gain first; the lowest index wins ties so growth is deterministic.
            let mut pick: Option<(usize, f64)> = None;
            for (i, l) in self.leaves.iter().enumerate() {
                if let Some(s) = &l.best
                    && pick.is_none_or(|(_, g)| s.gain > g)
                {
                    pick = Some((i, s.gain));
                }
            }
            let Some((i, _)) = pick else { break };
            let Some(split) = self.leaves[i].best.take() else {
                break;
            };
            let (start, len, depth, parent) = {
                let l = &self.leaves[i];
                (l.start, l.len, l.depth, l.parent)
            };
            let parent_sums = self.leaves[i].sums;
            let parent_slot = self.leaves[i].slot.take();
            let left_len = self.partition(start, len, &split);
            let j = nodes.len();
            let right = self.leaves.len();
            nodes.push(Node {
                feature: self.data.features[split.feature] as u32,
                threshold: self.data.threshold(split.feature, split.bin),
                missing_left: split.missing_left,
                left: !(i as i32),
                right: !(right as i32),
                gain: split.gain,
            });
            self.splits
                .push((split.feature, split.bin, split.missing_left));
            link(&mut nodes, parent, j as i32);
            self.leaves[i] = Leaf {
                start,
                len: left_len,
                sums: split.left,
                depth: depth + 1,
                slot: None,
                parent: Some((j, true)),
                best: None,
            };
            self.leaves.push(Leaf {
                start: start + left_len,
                len: len - left_len,
                sums: parent_sums - split.left,
                depth: depth + 1,
                slot: None,
                parent: Some((j, false)),
                best: None,
            });
            let Some(ps) = parent_slot else { continue };
            let wanted = [i, right].map(|c| {
                self.leaves.len() < self.lim.max_leaves && self.can_split(&self.leaves[c])
            });
            if !wanted[0] && !wanted[1] {
                self.free.push(ps);
                continue;
            }
            // Build the smaller child; the parent's slot becomes the larger one's.
            let (small, large) = if left_len <= len - left_len {
                (i, right)
            } else {
                (right, i)
            };
            let ss = self.alloc();
            let (s_start, s_len) = (self.leaves[small].start, self.leaves[small].len);
            self.build(ss, s_start, s_len, g, h);
            #[cfg(test)]
            if self.direct {
                let (l_start, l_len) = (self.leaves[large].start, self.leaves[large].len);
                self.build(ps, l_start, l_len, g, h);
            } else {
                self.subtract(ps, ss);
            }
            #[cfg(not(test))]
            self.subtract(ps, ss);
            self.leaves[small].slot = Some(ss);
            self.leaves[large].slot = Some(ps);
            for (c, want) in [i, right].into_iter().zip(wanted) {
                let Some(slot) = self.leaves[c].slot else {
                    continue;
                };
                let best = if want {
                    self.find_best(slot, self.leaves[c].sums)
                } else {
                    None
                };
                self.leaves[c].best = best;
                if best.is_none() {
                    self.leaves[c].slot = None;
                    self.free.push(slot);
                }
            }
        }
        let values = self
            .leaves
            .iter()
            .map(|l| {
                let v = -l.sums.g / (l.sums.h + self.lim.l2) * learning_rate;
                if v.is_finite() { v } else { 0.0 }
            })
            .collect();
        let cover = self.leaves.iter().map(|l| l.sums.n as f64).collect();
        Tree {
            nodes,
            values,
            cover,
        }
    }
}

/// The scores of a model without trees: log-odds, log class shares, or the mean.
fn prior(y: &[f64], loss: Loss) -> Vec<f64> {
    let n = y.len();
    if n == 0 {
        return vec![0.0; outputs(loss)];
    }
    let nf = n as f64;
    match loss {
        Loss::Logistic => {
            let p = (y.iter().sum::<f64>() / nf).clamp(1e-6, 1.0 - 1e-6);
            vec![(p / (1.0 - p)).ln()]
        }
        Loss::Squared => vec![y.iter().sum::<f64>() / nf],
        Loss::Softmax { classes } => {
            let mut counts = vec![0usize; classes];
            for v in y {
                if let Some(c) = class_of(*v, classes) {
                    counts[c] += 1;
                }
            }
            counts
                .iter()
                .map(|c| (*c as f64 / nf).max(1e-6).ln())
                .collect()
        }
    }
}

/// Gradients and hessians of every row's loss at `score` (row-major, `k` per row), written
/// class-major (`g[c * n + r]`) so each class's tree reads its own slice.
fn gradients(loss: Loss, y: &[f64], score: &[f64], g: &mut [f64], h: &mut [f64]) {
    let n = y.len();
    match loss {
        Loss::Logistic => {
            for r in 0..n {
                let p = sigmoid(score[r]);
                g[r] = p - y[r];
                h[r] = (p * (1.0 - p)).max(MIN_ROW_HESSIAN);
            }
        }
        Loss::Squared => {
            for r in 0..n {
                g[r] = score[r] - y[r];
                h[r] = 1.0;
            }
        }
        Loss::Softmax { classes: k } => {
            // The diagonal hessian scaled by k/(k-1), as LightGBM does, which makes the
            // Newton steps less timid with many classes.
            let factor = if k > 1 {
                k as f64 / (k as f64 - 1.0)
            } else {
                1.0
            };
            let mut z = vec![0.0; k];
            for r in 0..n {
                z.copy_from_slice(&score[r * k..(r + 1) * k]);
                softmax(&mut z);
                let t = class_of(y[r], k);
                for (c, p) in z.iter().enumerate() {
                    let hit = if t == Some(c) { 1.0 } else { 0.0 };
                    g[c * n + r] = p - hit;
                    h[c * n + r] = (factor * p * (1.0 - p)).max(MIN_ROW_HESSIAN);
                }
            }
        }
    }
}

/// Mean log loss / multiclass log loss / squared error of raw scores (NaN without rows).
fn mean_loss(loss: Loss, y: &[f64], score: &[f64]) -> f64 {
    if y.is_empty() {
        return f64::NAN;
    }
    let mut total = 0.0;
    match loss {
        Loss::Logistic => {
            for (z, t) in score.iter().zip(y) {
                total += z.max(0.0) + (-z.abs()).exp().ln_1p() - t * z;
            }
        }
        Loss::Squared => {
            for (z, t) in score.iter().zip(y) {
                total += (z - t) * (z - t);
            }
        }
        Loss::Softmax { classes: k } => {
            for (z, t) in score.chunks_exact(k.max(1)).zip(y) {
                let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                if let Some(c) = class_of(*t, k) {
                    total += lse - z[c];
                }
            }
        }
    }
    total / y.len() as f64
}

/// Turns one row's raw scores into the `Linear::predict` layout.
fn push_output(loss: Loss, z: &mut [f64], out: &mut Vec<f64>) {
    match loss {
        Loss::Logistic => out.push(sigmoid(z[0])),
        Loss::Squared => out.push(z[0]),
        Loss::Softmax { .. } => {
            softmax(z);
            out.extend_from_slice(z);
        }
    }
}

impl Gbdt {
    /// Fits on `x` and `y` (0/1, class index, or value per `loss`). With `valid`, also returns
    /// the validation loss (mean log loss, multiclass log loss, or MSE) after each round (NaN
    /// for a validation set without rows); the curve is empty otherwise. Without training rows
    /// the model predicts the prior and no rounds are fitted.
    pub fn fit(
        x: &Matrix,
        y: &[f64],
        loss: Loss,
        params: &GbdtParams,
        valid: Option<(&Matrix, &[f64])>,
    ) -> (Gbdt, Vec<f64>) {
        let (model, curve, _) = Self::fit_scores(x, y, loss, params, valid);
        (model, curve)
    }

    /// `fit`, also returning the final raw training scores (row-major, one per output), which
    /// must equal the model's own raw predictions on `x`.
    fn fit_scores(
        x: &Matrix,
        y: &[f64],
        loss: Loss,
        params: &GbdtParams,
        valid: Option<(&Matrix, &[f64])>,
    ) -> (Gbdt, Vec<f64>, Vec<f64>) {
        let k = outputs(loss);
        let n = x.rows.min(y.len());
        let y = &y[..n];
        let mut model = Gbdt {
            loss,
            cols: x.cols,
            init: prior(y, loss),
            trees: Vec::new(),
            explainers: Explainers::default(),
        };
        let mut curve = Vec::new();
        if n == 0 || k == 0 {
            return (model, curve, Vec::new());
        }
        let data = Binned::fit(x, n, params.max_bins);
        let mut grower = Grower::new(&data, Limits::of(params));
        let mut score: Vec<f64> = (0..n).flat_map(|_| model.init.iter().copied()).collect();
        let (vx, vy) = match valid {
            Some((vx, vy)) => {
                let vn = vx.rows.min(vy.len());
                (Some(vx), &vy[..vn])
            }
            None => (None, &[][..]),
        };
        let mut vscore: Vec<f64> = (0..vy.len())
            .flat_map(|_| model.init.iter().copied())
            .collect();
        let mut g = vec![0.0; n * k];
        let mut h = vec![0.0; n * k];
        let mut rng = Rng::new(params.seed);

        let bag_n = if params.subsample < 1.0 {
            ((params.subsample * n as f64).round() as usize).clamp(1, n)
        } else {
            n
        };
        let usable = data.features.len();
        let n_feats = if params.feature_fraction < 1.0 {
            ((params.feature_fraction * usable as f64).round() as usize).clamp(1, usable.max(1))
        } else {
            usable
        }
        .min(usable);
        let mut perm: Vec<usize> = (0..usable).collect();
        let mut bag: Vec<u32> = Vec::with_capacity(n);
        let mut in_bag = vec![true; n];

        for _ in 0..params.rounds {
            gradients(loss, y, &score, &mut g, &mut h);
            bag.clear();
            if bag_n < n {
                // Selection sampling: exactly `bag_n` rows, already in ascending order.
                in_bag.fill(false);
                let mut need = bag_n;
                for (r, flag) in in_bag.iter_mut().enumerate() {
                    if need == 0 {
                        break;
                    }
                    if rng.below(n - r) < need {
                        bag.push(r as u32);
                        *flag = true;
                        need -= 1;
                    }
                }
            } else {
                bag.extend(0..n as u32);
            }
            for c in 0..k {
                grower.feats.clear();
                if n_feats < usable {
                    for i in 0..n_feats {
                        let j = i + rng.below(usable - i);
                        perm.swap(i, j);
                    }
                    grower.feats.extend_from_slice(&perm[..n_feats]);
                    grower.feats.sort_unstable();
                } else {
                    grower.feats.extend(0..usable);
                }
                let tree = grower.grow(
                    &bag,
                    &g[c * n..(c + 1) * n],
                    &h[c * n..(c + 1) * n],
                    params.learning_rate,
                );
                for (leaf, v) in grower.leaves.iter().zip(&tree.values) {
                    for &r in &grower.order[leaf.start..leaf.start + leaf.len] {
                        score[r as usize * k + c] += v;
                    }
                }
                if bag.len() < n {
                    for r in (0..n).filter(|r| !in_bag[*r]) {
                        score[r * k + c] += tree.values[grower.leaf_binned(&tree.nodes, r)];
                    }
                }
                if let Some(vx) = vx {
                    for i in 0..vy.len() {
                        vscore[i * k + c] += tree.values[tree.leaf(vx.row(i))];
                    }
                }
                model.trees.push(tree);
            }
            if vx.is_some() {
                curve.push(mean_loss(loss, vy, &vscore));
            }
        }
        (model, curve, score)
    }

    /// Keeps the first `rounds` rounds.
    pub fn truncate(&mut self, rounds: usize) {
        let k = outputs(self.loss);
        self.trees.truncate(rounds.saturating_mul(k));
    }

    pub fn rounds(&self) -> usize {
        match outputs(self.loss) {
            0 => 0,
            k => self.trees.len() / k,
        }
    }

    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// The scores before any tree (explanations).
    pub(crate) fn init(&self) -> &[f64] {
        &self.init
    }

    /// The trees' explainers (`width` outputs per leaf), prepared once; `None` when the trees
    /// keep no covers (a model saved before explanations).
    pub(crate) fn explainers(&self, width: usize) -> Option<Vec<Explainer<'_>>> {
        self.explainers.of(&self.trees, width)
    }

    /// The trees, round after round (explanations).
    pub(crate) fn trees(&self) -> &[Tree] {
        &self.trees
    }

    /// Per row: the positive-class probability (logistic), the value (squared), or `classes`
    /// probabilities in a row (softmax), as `Linear::predict`.
    pub fn predict(&self, x: &Matrix) -> Vec<f64> {
        let k = outputs(self.loss);
        let mut out = Vec::with_capacity(x.rows * k);
        for z in self.raw_scores(x).chunks_exact_mut(k.max(1)) {
            push_output(self.loss, z, &mut out);
        }
        out
    }

    /// Raw scores (log-odds, class scores, values), row-major.
    fn raw_scores(&self, x: &Matrix) -> Vec<f64> {
        let k = outputs(self.loss);
        let mut out = Vec::with_capacity(x.rows * k);
        for i in 0..x.rows {
            let row = x.row(i);
            let at = out.len();
            out.extend_from_slice(&self.init);
            let z = &mut out[at..];
            // Same order of additions as the training scores: round by round.
            for (t, tree) in self.trees.iter().enumerate() {
                z[t % k] += tree.values.get(tree.leaf(row)).copied().unwrap_or(0.0);
            }
        }
        out
    }

    /// Total split gain per feature (one entry per training column).
    pub fn importance(&self) -> Vec<f64> {
        importance(&self.trees, self.cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values on and around the cuts, missing and infinite ones, more distinct values than
    /// bins (so cuts fall inside runs of values), and a logistic target.
    fn awkward(n: usize, seed: u64) -> (Matrix, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let mut data = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a = rng.below(40) as f64;
            let b = match rng.below(20) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                _ => rng.unit() * 10.0 - 5.0,
            };
            let c = if rng.below(3) == 0 { f64::NAN } else { 1.0 };
            // Adjacent floats: no midpoint between them, so the threshold is a value itself.
            let up = rng.below(2) == 1;
            let d = if up {
                f64::from_bits(1.0f64.to_bits() + 1)
            } else {
                1.0
            };
            data.extend([a, b, c, d]);
            let z = (a - 20.0) / 10.0 + b.clamp(-3.0, 3.0) - if c.is_nan() { 1.0 } else { 0.0 }
                + if up { 1.0 } else { -1.0 };
            y.push(f64::from(u8::from(rng.unit() < sigmoid(z))));
        }
        (Matrix::new(n, 4, data), y)
    }

    #[test]
    fn training_scores_match_predictions_on_raw_rows() {
        // Binned routing (sampled and left-out rows) must agree with the raw thresholds bit
        // for bit, or boosting would fit the gradients of a model it does not return.
        let (x, y) = awkward(1500, 1);
        let p = GbdtParams {
            rounds: 30,
            learning_rate: 0.3,
            max_bins: 16,
            min_leaf: 5,
            max_depth: 0,
            subsample: 0.7,
            feature_fraction: 0.7,
            ..GbdtParams::default()
        };
        for loss in [Loss::Logistic, Loss::Squared, Loss::Softmax { classes: 2 }] {
            let (m, _, score) = Gbdt::fit_scores(&x, &y, loss, &p, None);
            let raw = m.raw_scores(&x);
            assert_eq!(raw.len(), score.len());
            for (a, b) in raw.iter().zip(&score) {
                assert_eq!(a.to_bits(), b.to_bits(), "{loss:?}");
            }
            assert!(m.trees.iter().any(|t| t.nodes.len() > 3));
        }
    }

    #[test]
    fn subtraction_finds_the_same_splits_as_direct_histograms() {
        let (x, y) = awkward(3000, 2);
        let data = Binned::fit(&x, 3000, 255);
        let p = GbdtParams {
            max_leaves: 31,
            max_depth: 0,
            min_leaf: 5,
            ..GbdtParams::default()
        };
        let (mut g, mut h) = (vec![0.0; 3000], vec![0.0; 3000]);
        gradients(Loss::Logistic, &y, &[0.0; 3000], &mut g, &mut h);
        let bag: Vec<u32> = (0..3000).collect();
        let grow = |direct: bool| {
            let mut gr = Grower::new(&data, Limits::of(&p));
            gr.feats.extend(0..data.features.len());
            gr.direct = direct;
            gr.grow(&bag, &g, &h, 0.1)
        };
        let (a, b) = (grow(false), grow(true));
        assert_eq!(a.nodes.len(), 30);
        for (a, b) in a.nodes.iter().zip(&b.nodes) {
            assert_eq!(
                (a.feature, a.threshold, a.missing_left, a.left, a.right),
                (b.feature, b.threshold, b.missing_left, b.left, b.right)
            );
            assert!((a.gain - b.gain).abs() <= 1e-9 * a.gain.abs().max(1.0));
        }
        for (a, b) in a.values.iter().zip(&b.values) {
            assert!((a - b).abs() <= 1e-12, "{a} {b}");
        }
    }
}
