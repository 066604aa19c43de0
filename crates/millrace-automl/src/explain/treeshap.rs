//! Exact path-dependent TreeSHAP over millrace's [`Tree`]: the Shapley values of one row for
//! one tree, with each node's cover (the training rows that reached it) standing in for the
//! feature distribution, as in Lundberg, Erion and Lee ("Consistent Individualized Feature
//! Attribution for Tree Ensembles", 2018). The values add up exactly: `expected(tree) + Σ φ =
//! the leaf the row lands in`, for every output of a leaf (a forest's class frequencies have
//! several).
//!
//! The arithmetic is the one of Linear TreeSHAP (Yu, Shang, Zhao and Chen, NeurIPS 2022):
//! one walk, O(nodes × depth) instead of Algorithm 2's O(leaves × depth²). Along the path to a
//! leaf each distinct feature `j` has a factor `f_j(t) = a_j·t + b_j·(1 − t)`, where `a_j` says
//! whether the row follows every split on `j` (1 or 0) and `b_j` is the share of cover that
//! does. Because the Shapley weight `s!(n−s−1)!/n!` is `∫₀¹ tˢ(1−t)ⁿ⁻ˢ⁻¹ dt`, the leaf's share
//! of `φ_i` is `value · (a_i − b_i) · ∫₀¹ Π_{j≠i} f_j(t) dt`: the integral of a polynomial of
//! degree below the depth, which Gauss–Legendre quadrature with ⌈depth/2⌉ points computes
//! exactly. The walk carries `Π f_j` at those points down the tree and sums the leaves' values
//! times it back up, so each split adds its feature's share for every leaf below it whose last
//! split on that feature it is, once, in O(points) work.

use std::sync::OnceLock;

use crate::trees::tree::Tree;

/// Gauss–Legendre points and weights on [0, 1]: exact for polynomials of degree < 2 × points.
#[derive(Debug, Clone)]
///
/// The points come in blocks of `block` (a power of two, at most [`BLOCK`]), the last padded
/// with points of weight 0, so that a walk runs on fixed-size arrays the compiler unrolls; a
/// tree needing more points than a block is walked once per block.
struct Quadrature {
    t: Vec<f64>,
    w: Vec<f64>,
    /// `1 − t` and `w / (1 − t)` per point.
    omt: Vec<f64>,
    w_over_omt: Vec<f64>,
    block: usize,
}

/// The largest block of quadrature points a walk carries.
const BLOCK: usize = 16;

impl Quadrature {
    /// Newton's iteration on the Legendre polynomial's roots, from the usual cosine guesses.
    fn new(m: usize) -> Self {
        let (mut t, mut w) = (Vec::with_capacity(m), Vec::with_capacity(m));
        for i in 1..=m {
            let mut x = (std::f64::consts::PI * (i as f64 - 0.25) / (m as f64 + 0.5)).cos();
            let mut dp = 1.0;
            for _ in 0..100 {
                let (mut p0, mut p1) = (1.0, x);
                for j in 2..=m {
                    let jf = j as f64;
                    let p2 = ((2.0 * jf - 1.0) * x * p1 - (jf - 1.0) * p0) / jf;
                    p0 = p1;
                    p1 = p2;
                }
                // p1 = P_m(x), p0 = P_{m-1}(x)
                dp = m as f64 * (x * p1 - p0) / (x * x - 1.0);
                let step = p1 / dp;
                x -= step;
                if step.abs() < 1e-16 {
                    break;
                }
            }
            t.push((1.0 - x) / 2.0);
            w.push(1.0 / ((1.0 - x * x) * dp * dp));
        }
        let block = m.next_power_of_two().min(BLOCK);
        while t.len() % block != 0 {
            t.push(0.5);
            w.push(0.0);
        }
        let omt: Vec<f64> = t.iter().map(|t| 1.0 - t).collect();
        let w_over_omt = w.iter().zip(&omt).map(|(w, o)| w / o).collect();
        Self {
            t,
            w,
            omt,
            w_over_omt,
            block,
        }
    }

    /// The rule with `m` points, built once per process for the depths trees have.
    fn with(m: usize) -> std::borrow::Cow<'static, Quadrature> {
        const KEPT: usize = 64;
        static TABLE: OnceLock<Vec<Quadrature>> = OnceLock::new();
        if m > KEPT {
            return std::borrow::Cow::Owned(Quadrature::new(m));
        }
        let table = TABLE.get_or_init(|| (1..=KEPT).map(Quadrature::new).collect());
        std::borrow::Cow::Borrowed(&table[m - 1])
    }
}

/// What explaining rows with one tree needs that does not depend on the row, computed once
/// per model ([`Explainers`]).
pub(crate) struct Prepared {
    width: usize,
    /// Per split node: the shares of its cover that go left and right.
    shares: Vec<(f64, f64)>,
    depth: usize,
    /// One more than the highest feature index split on.
    features: usize,
    /// The features split on.
    used: Vec<usize>,
    quad: std::borrow::Cow<'static, Quadrature>,
    /// The cover-weighted mean leaf per output.
    expected: Vec<f64>,
}

impl Prepared {
    /// `None` when the tree keeps no leaf covers (a model saved before explanations).
    pub fn new(tree: &Tree, width: usize) -> Option<Self> {
        let leaves = tree.values.len() / width.max(1);
        if tree.cover.len() != leaves {
            return None;
        }
        let features = 1 + tree
            .nodes
            .iter()
            .map(|n| n.feature as usize)
            .max()
            .unwrap_or(0);
        let mut used: Vec<usize> = tree.nodes.iter().map(|n| n.feature as usize).collect();
        used.sort_unstable();
        used.dedup();
        let (shares, depth) = shares(tree);
        // `Π_{j≠i} f_j` has degree below the distinct features on the path.
        let distinct = widest(tree, 0, &mut vec![0; features], 0);
        Some(Self {
            width,
            shares,
            depth,
            features,
            used,
            quad: Quadrature::with(distinct.div_ceil(2).max(1)),
            expected: expected(tree, width),
        })
    }
}

/// The cover-weighted mean leaf (per output): what the tree predicts knowing nothing.
fn expected(tree: &Tree, width: usize) -> Vec<f64> {
    let mut out = vec![0.0; width];
    let total: f64 = tree.cover.iter().sum();
    let leaves = tree.cover.len();
    for (l, &c) in tree.cover.iter().enumerate() {
        let share = if total > 0.0 {
            c / total
        } else {
            1.0 / leaves as f64
        };
        for (o, v) in out.iter_mut().enumerate() {
            *v += share * tree.values[l * width + o];
        }
    }
    out
}

/// The explainers of a model's trees, prepared on first use and kept with the model (an
/// endpoint explains one record per request; preparing them each time cost a third of it).
/// Not saved; a clone starts empty; it never makes two models unequal.
#[derive(Default)]
pub(crate) struct Explainers(OnceLock<Option<Vec<Prepared>>>);

impl Explainers {
    /// One explainer per tree, or `None` when the trees keep no covers.
    pub fn of<'a>(&'a self, trees: &'a [Tree], width: usize) -> Option<Vec<Explainer<'a>>> {
        let prepared = self
            .0
            .get_or_init(|| trees.iter().map(|t| Prepared::new(t, width)).collect())
            .as_ref()?;
        Some(
            trees
                .iter()
                .zip(prepared)
                .map(|(tree, prep)| Explainer { tree, prep })
                .collect(),
        )
    }
}

impl Clone for Explainers {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for Explainers {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Explainers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Explainers")
    }
}

/// A tree and what was prepared for it, ready to explain rows.
pub(crate) struct Explainer<'a> {
    tree: &'a Tree,
    prep: &'a Prepared,
}

impl std::ops::Deref for Explainer<'_> {
    type Target = Prepared;

    fn deref(&self) -> &Prepared {
        self.prep
    }
}

impl Explainer<'_> {
    /// Adds the cover-weighted mean leaf (per output) to `out`: what the tree predicts
    /// knowing nothing.
    pub fn expected(&self, out: &mut [f64]) {
        for (o, e) in out.iter_mut().zip(&self.prep.expected) {
            *o += e;
        }
    }

    /// Adds `scale ×` this tree's Shapley values for `row` to `phi` (`features × width`,
    /// feature-major): for every output, or only for `output`. `scratch` is memory reused
    /// across calls, so a walk allocates nothing.
    pub fn add_shap(
        &self,
        row: &[f64],
        output: Option<usize>,
        scale: f64,
        phi: &mut [f64],
        scratch: &mut Scratch,
    ) {
        if self.tree.nodes.is_empty() {
            return; // a single leaf: the expected value is the prediction
        }
        let outputs = match output {
            Some(o) if o < self.width => o..o + 1,
            _ => 0..self.width,
        };
        let call = (row, outputs, scale);
        match self.quad.block {
            1 => self.walk::<1>(call, phi, scratch),
            2 => self.walk::<2>(call, phi, scratch),
            4 => self.walk::<4>(call, phi, scratch),
            8 => self.walk::<8>(call, phi, scratch),
            _ => self.walk::<BLOCK>(call, phi, scratch),
        }
    }

    /// The walks of one row, one per block of `B` quadrature points.
    fn walk<const B: usize>(
        &self,
        (row, outputs, scale): (&[f64], std::ops::Range<usize>, f64),
        phi: &mut [f64],
        sc: &mut Scratch,
    ) {
        sc.prepare(self.features, self.depth + 1, B, outputs.len());
        let q = &self.quad;
        for block in 0..q.t.len() / B {
            let walk = Walk::<B> {
                ex: self,
                row,
                outputs: outputs.clone(),
                t: block_of(&q.t, block),
                w: block_of(&q.w, block),
                omt: block_of(&q.omt, block),
                w_over_omt: block_of(&q.w_over_omt, block),
            };
            *at::<B>(&mut sc.p, 0) = [1.0; B];
            walk.visit(0, 0, sc);
        }
        let w = outputs.len();
        for &f in &self.used {
            for (j, o) in outputs.clone().enumerate() {
                let acc = at::<B>(&mut sc.acc, f * w + j);
                let total: f64 = acc.iter().sum();
                *acc = [0.0; B];
                if let Some(p) = phi.get_mut(f * self.width + o) {
                    *p += scale * total;
                }
            }
        }
    }
}

/// Per split node, the shares of its cover that go left and right; and the tree's depth.
fn shares(tree: &Tree) -> (Vec<(f64, f64)>, usize) {
    /// Fills the covers under `c`; returns its cover and the depth below it.
    fn fill(tree: &Tree, c: i32, out: &mut [f64]) -> (f64, usize) {
        if c < 0 {
            return (tree.cover[!c as usize], 0);
        }
        let n = &tree.nodes[c as usize];
        let (l, dl) = fill(tree, n.left, out);
        let (r, dr) = fill(tree, n.right, out);
        out[c as usize] = l + r;
        (l + r, 1 + dl.max(dr))
    }
    if tree.nodes.is_empty() {
        return (Vec::new(), 0);
    }
    let mut covers = vec![f64::NAN; tree.nodes.len()];
    let depth = fill(tree, 0, &mut covers).1;
    let cover = |c: i32| {
        if c < 0 {
            tree.cover[!c as usize]
        } else {
            covers[c as usize]
        }
    };
    let shares = tree
        .nodes
        .iter()
        .zip(&covers)
        .map(|(n, &here)| {
            if here > 0.0 {
                (cover(n.left) / here, cover(n.right) / here)
            } else {
                (0.0, 0.0)
            }
        })
        .collect();
    (shares, depth)
}

/// The most distinct features on one path below `c`, given `on` (counts per feature on the
/// path so far) holding `distinct` of them.
fn widest(tree: &Tree, c: i32, on: &mut [u32], distinct: usize) -> usize {
    if c < 0 || tree.nodes.is_empty() {
        return distinct;
    }
    let n = &tree.nodes[c as usize];
    let f = n.feature as usize;
    let distinct = distinct + usize::from(on[f] == 0);
    on[f] += 1;
    let most = widest(tree, n.left, on, distinct).max(widest(tree, n.right, on, distinct));
    on[f] -= 1;
    most
}

/// Block `i` of `B` values of `v`.
fn block_of<const B: usize>(v: &[f64], i: usize) -> &[f64; B] {
    v[i * B..(i + 1) * B]
        .try_into()
        .expect("a block of B values")
}

/// Entry `i` of `v` read as `B`-value arrays.
fn at<const B: usize>(v: &mut [f64], i: usize) -> &mut [f64; B] {
    (&mut v[i * B..(i + 1) * B])
        .try_into()
        .expect("a block of B values")
}

/// One row's walk through one tree, on one block of `B` quadrature points.
struct Walk<'e, 'a, const B: usize> {
    ex: &'e Explainer<'a>,
    row: &'e [f64],
    /// The leaf outputs explained.
    outputs: std::ops::Range<usize>,
    /// The block's points, weights, `1 − t` and `w / (1 − t)`.
    t: &'e [f64; B],
    w: &'e [f64; B],
    omt: &'e [f64; B],
    w_over_omt: &'e [f64; B],
}

impl<const B: usize> Walk<'_, '_, B> {
    /// Visits node `c` at depth `lvl`, whose `Π f_j` at the points is `scratch.p[lvl]`, and
    /// leaves in `scratch.s[lvl]` the sum over its leaves of value × `Π f_j` (per output
    /// explained, per point).
    ///
    /// A split on feature `i` adds to `φ_i`, for each child, the leaves below whose last split
    /// on `i` it is: all the leaves below, less those under deeper splits on `i`. Each deeper
    /// split takes its own leaves back out of its nearest ancestor's share itself, since that
    /// ancestor's factor is the one it replaces.
    fn visit(&self, c: i32, lvl: usize, sc: &mut Scratch) {
        let w = self.outputs.len();
        if c < 0 {
            let leaf = !c as usize;
            let width = self.ex.width;
            let values = &self.ex.tree.values[leaf * width..(leaf + 1) * width];
            let p = *at::<B>(&mut sc.p, lvl);
            for (o, v) in values[self.outputs.clone()].iter().enumerate() {
                let s = at::<B>(&mut sc.s, lvl * w + o);
                for k in 0..B {
                    s[k] = v * p[k];
                }
            }
            return;
        }
        for j in 0..w {
            *at::<B>(&mut sc.s, lvl * w + j) = [0.0; B];
        }
        let n = &self.ex.tree.nodes[c as usize];
        let i = n.feature as usize;
        let v = self.row.get(i).copied().unwrap_or(f64::NAN);
        let goes_left = if v.is_nan() {
            n.missing_left
        } else {
            v.min(f64::MAX) <= n.threshold
        };
        let (left_share, right_share) = self.ex.shares[c as usize];
        let (a_prev, b_prev) = (sc.a[i], sc.b[i]);
        // Feature `i` already on the path with the row on its side: its old factor's
        // reciprocal and share, once for both children.
        let seen = a_prev == 1.0 && b_prev != 1.0;
        if seen {
            let mut inv = [0.0; B];
            let mut old = [0.0; B];
            for k in 0..B {
                inv[k] = 1.0 / (self.t[k] + b_prev * self.omt[k]);
                old[k] = self.w[k] * (1.0 - b_prev) * inv[k];
            }
            *at::<B>(&mut sc.inv, lvl) = inv;
            *at::<B>(&mut sc.old, lvl) = old;
        }
        for (child, hot, share) in [
            (n.left, goes_left, left_share),
            (n.right, !goes_left, right_share),
        ] {
            let a = if hot { a_prev } else { 0.0 };
            let b = b_prev * share;
            if a == 0.0 && b == 0.0 {
                // `f_i ≡ 0`: every leaf below adds nothing to anyone.
                continue;
            }
            let coef = self.down(lvl, (a_prev, b_prev, seen), (a, b), sc);
            (sc.a[i], sc.b[i]) = (a, b);
            self.visit(child, lvl + 1, sc);
            (sc.a[i], sc.b[i]) = (a_prev, b_prev);
            for j in 0..w {
                let below = *at::<B>(&mut sc.s, (lvl + 1) * w + j);
                let mine = at::<B>(&mut sc.s, lvl * w + j);
                for k in 0..B {
                    mine[k] += below[k];
                }
                if let Some(coef) = &coef {
                    // Summed over the points once the walk is done.
                    let acc = at::<B>(&mut sc.acc, i * w + j);
                    for k in 0..B {
                        acc[k] += below[k] * coef[k];
                    }
                }
            }
        }
    }

    /// Going down an edge that turns feature `i`'s factor from `(a0, b0)` into `(a1, b1)`
    /// (`(1, 1)`, the factor 1, for a feature not yet on the path): sets `scratch.p[lvl + 1]`
    /// to `scratch.p[lvl]` with the factor replaced, and returns what a leaf's `Π f_j` is
    /// multiplied by at each point for `φ_i`: its share under the new factor less the share
    /// its nearest ancestor split on `i` counted under the old one (`seen`: `scratch.old[lvl]`
    /// holds that share and `scratch.inv[lvl]` the old factor's reciprocal). `None` when the
    /// edge adds no share (the row left `i`'s path higher up: both factors are `b·(1 − t)`,
    /// whose shares cancel).
    ///
    /// `a` is 1 or 0, so the factors are `t + b·(1 − t)` or `b·(1 − t)`: only the first needs
    /// a division per point.
    fn down(
        &self,
        lvl: usize,
        (a0, b0, seen): (f64, f64, bool),
        (a1, b1): (f64, f64),
        sc: &mut Scratch,
    ) -> Option<[f64; B]> {
        let p = *at::<B>(&mut sc.p, lvl);
        let mut next = [0.0; B];
        if a0 == 0.0 {
            let r = b1 / b0; // `(a0, b0) ≠ (0, 0)`: such a branch is skipped
            for k in 0..B {
                next[k] = p[k] * r;
            }
            *at::<B>(&mut sc.p, lvl + 1) = next;
            return None;
        }
        let (mut ratio, mut coef) = ([0.0; B], [0.0; B]);
        if a1 == 1.0 {
            for k in 0..B {
                ratio[k] = self.t[k] + b1 * self.omt[k];
                coef[k] = self.w[k] * (1.0 - b1) / ratio[k];
            }
        } else {
            for k in 0..B {
                ratio[k] = b1 * self.omt[k];
                coef[k] = -self.w_over_omt[k];
            }
        }
        if seen {
            let (inv, old) = (*at::<B>(&mut sc.inv, lvl), *at::<B>(&mut sc.old, lvl));
            for k in 0..B {
                ratio[k] *= inv[k];
                coef[k] -= old[k];
            }
        }
        for k in 0..B {
            next[k] = p[k] * ratio[k];
        }
        *at::<B>(&mut sc.p, lvl + 1) = next;
        Some(coef)
    }
}

/// Memory one walk needs, kept between calls: the path's factors per feature, and per depth
/// the products, the leaf sums and the share coefficients.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Per feature: the path's `a_j` and `b_j` (1 and 1 off the path).
    a: Vec<f64>,
    b: Vec<f64>,
    /// Per depth × point: `Π f_j`.
    p: Vec<f64>,
    /// Per depth × point: for a split on a feature already on the path, its old factor's
    /// reciprocal and the share the nearest ancestor split counted with it.
    inv: Vec<f64>,
    old: Vec<f64>,
    /// Per depth × output × point: the sums of the leaves below.
    s: Vec<f64>,
    /// Per feature × output × point: the contributions so far (0 between walks).
    acc: Vec<f64>,
}

impl Scratch {
    fn prepare(&mut self, features: usize, levels: usize, m: usize, width: usize) {
        let grow = |v: &mut Vec<f64>, n: usize, fill: f64| {
            if v.len() < n {
                v.resize(n, fill);
            }
        };
        grow(&mut self.a, features, 1.0);
        grow(&mut self.b, features, 1.0);
        grow(&mut self.p, levels * m, 0.0);
        grow(&mut self.inv, levels * m, 0.0);
        grow(&mut self.old, levels * m, 0.0);
        grow(&mut self.s, levels * m * width, 0.0);
        grow(&mut self.acc, features * m * width, 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trees::tree::Node;

    /// x0 <= 0.5 ? (x1 <= 0.5 ? 1 : 2) : 3, covers 10, 30, 60.
    fn tree() -> Tree {
        Tree {
            nodes: vec![
                Node {
                    feature: 0,
                    threshold: 0.5,
                    missing_left: true,
                    left: 1,
                    right: !2,
                    gain: 1.0,
                },
                Node {
                    feature: 1,
                    threshold: 0.5,
                    missing_left: false,
                    left: !0,
                    right: !1,
                    gain: 1.0,
                },
            ],
            values: vec![1.0, 2.0, 3.0],
            cover: vec![10.0, 30.0, 60.0],
        }
    }

    /// The training rows under `c`.
    fn cover(t: &Tree, c: i32) -> f64 {
        if c < 0 {
            return t.cover[!c as usize];
        }
        let n = &t.nodes[c as usize];
        cover(t, n.left) + cover(t, n.right)
    }

    /// Shapley values by their definition: every subset of the other features, with the
    /// path-dependent expectation of the tree given a subset.
    fn brute(t: &Tree, row: &[f64], features: usize) -> Vec<f64> {
        fn cond(t: &Tree, c: i32, row: &[f64], known: &[bool]) -> f64 {
            if c < 0 {
                return t.values[!c as usize];
            }
            let n = &t.nodes[c as usize];
            if known[n.feature as usize] {
                let v = row[n.feature as usize];
                let left = if v.is_nan() {
                    n.missing_left
                } else {
                    v <= n.threshold
                };
                cond(t, if left { n.left } else { n.right }, row, known)
            } else {
                let (l, r, h) = (cover(t, n.left), cover(t, n.right), cover(t, c));
                (l * cond(t, n.left, row, known) + r * cond(t, n.right, row, known)) / h
            }
        }
        let fact = |n: usize| (1..=n).product::<usize>() as f64;
        let mut phi = vec![0.0; features];
        for (i, p) in phi.iter_mut().enumerate() {
            for mask in 0..(1usize << features) {
                if mask & (1 << i) != 0 {
                    continue;
                }
                let s = mask.count_ones() as usize;
                let w = fact(s) * fact(features - s - 1) / fact(features);
                let mut known: Vec<bool> = (0..features).map(|f| mask & (1 << f) != 0).collect();
                let without = cond(t, 0, row, &known);
                known[i] = true;
                *p += w * (cond(t, 0, row, &known) - without);
            }
        }
        phi
    }

    #[test]
    fn matches_the_definition_and_adds_up() {
        let t = tree();
        let prep = Prepared::new(&t, 1).unwrap();
        let e = Explainer {
            tree: &t,
            prep: &prep,
        };
        for row in [
            [0.0, 0.0],
            [0.0, 1.0],
            [1.0, 0.0],
            [f64::NAN, 1.0],
            [1.0, f64::NAN],
        ] {
            let mut phi = vec![0.0; 2];
            e.add_shap(&row, None, 1.0, &mut phi, &mut Scratch::default());
            let want = brute(&t, &row, 2);
            for (a, b) in phi.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{row:?}: {phi:?} vs {want:?}");
            }
            let mut base = [0.0];
            e.expected(&mut base);
            let leaf = t.values[t.leaf(&row)];
            assert!((base[0] + phi.iter().sum::<f64>() - leaf).abs() < 1e-12);
        }
    }

    #[test]
    fn quadrature_integrates_polynomials_below_twice_its_points_exactly() {
        for m in [1, 2, 3, 8, 20, 64] {
            let q = Quadrature::new(m);
            for deg in 0..2 * m {
                let got: f64 =
                    q.t.iter()
                        .zip(&q.w)
                        .map(|(t, w)| w * t.powi(deg as i32))
                        .sum();
                let want = 1.0 / (deg as f64 + 1.0);
                assert!(
                    (got - want).abs() < 1e-13,
                    "m {m} degree {deg}: {got} vs {want}"
                );
            }
        }
    }

    /// A random tree of `depth` levels over `features` features (features repeat on paths),
    /// some branches stopping early, with random covers and leaf values.
    fn random_tree(seed: u64, depth: usize, features: u32, width: usize) -> Tree {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut t = Tree {
            nodes: Vec::new(),
            values: Vec::new(),
            cover: Vec::new(),
        };
        fn grow(t: &mut Tree, d: usize, f: u32, w: usize, next: &mut dyn FnMut() -> f64) -> i32 {
            if d == 0 || (t.nodes.len() > 1 && next() < 0.2) {
                t.cover.push(1.0 + (next() * 50.0).floor());
                for _ in 0..w {
                    t.values.push(next() * 4.0 - 2.0);
                }
                return !(t.cover.len() as i32 - 1);
            }
            let at = t.nodes.len();
            t.nodes.push(Node {
                feature: ((next() * f as f64) as u32).min(f - 1),
                threshold: next(),
                missing_left: next() < 0.5,
                left: 0,
                right: 0,
                gain: 1.0,
            });
            let left = grow(t, d - 1, f, w, next);
            let right = grow(t, d - 1, f, w, next);
            t.nodes[at].left = left;
            t.nodes[at].right = right;
            at as i32
        }
        grow(&mut t, depth, features, width, &mut next);
        t
    }

    #[test]
    fn matches_the_definition_on_deep_trees_with_repeated_features() {
        for seed in 1..40u64 {
            let (depth, features) = (1 + seed as usize % 9, 1 + (seed % 6) as u32);
            let t = random_tree(seed, depth, features, 1);
            let prep = Prepared::new(&t, 1).unwrap();
            let e = Explainer {
                tree: &t,
                prep: &prep,
            };
            let f = features as usize;
            for r in 0..4 {
                let row: Vec<f64> = (0..f)
                    .map(|j| {
                        let v = ((seed * 31 + r * 7 + j as u64 * 13) % 11) as f64 / 10.0;
                        if (seed + r + j as u64).is_multiple_of(7) {
                            f64::NAN
                        } else {
                            v
                        }
                    })
                    .collect();
                let mut phi = vec![0.0; f];
                e.add_shap(&row, None, 1.0, &mut phi, &mut Scratch::default());
                let want = brute(&t, &row, f);
                for (a, b) in phi.iter().zip(&want) {
                    assert!(
                        (a - b).abs() < 1e-10,
                        "seed {seed} {row:?}: {phi:?} vs {want:?}"
                    );
                }
                let mut base = [0.0];
                e.expected(&mut base);
                let leaf = t.values[t.leaf(&row)];
                assert!((base[0] + phi.iter().sum::<f64>() - leaf).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn more_points_than_a_block_walk_once_per_block_and_agree() {
        for seed in 1..10u64 {
            let t = random_tree(seed, 8, 5, 1);
            let row = [0.2, 0.9, f64::NAN, 0.4, 0.6];
            let want = brute(&t, &row, 5);
            for points in [3, 20, 40] {
                let mut prep = Prepared::new(&t, 1).unwrap();
                prep.quad = Quadrature::with(points);
                assert_eq!(prep.quad.t.len() % BLOCK.min(points.next_power_of_two()), 0);
                let e = Explainer {
                    tree: &t,
                    prep: &prep,
                };
                let mut phi = vec![0.0; 5];
                e.add_shap(&row, None, 1.0, &mut phi, &mut Scratch::default());
                for (a, b) in phi.iter().zip(&want) {
                    assert!(
                        (a - b).abs() < 1e-10,
                        "{points} points: {phi:?} vs {want:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn several_outputs_and_a_reused_scratch_give_each_output_its_own_values() {
        let mut scratch = Scratch::default();
        for seed in 1..12u64 {
            let t = random_tree(seed, 12, 5, 3);
            let prep = Prepared::new(&t, 3).unwrap();
            let e = Explainer {
                tree: &t,
                prep: &prep,
            };
            let row = [0.3, f64::NAN, 0.7, 0.1, 0.9];
            let mut phi = vec![0.0; 5 * 3];
            e.add_shap(&row, None, 0.5, &mut phi, &mut scratch);
            let mut base = [0.0; 3];
            e.expected(&mut base);
            let leaf = t.leaf(&row);
            for o in 0..3 {
                let sum: f64 = (0..5).map(|j| phi[j * 3 + o]).sum();
                let want = 0.5 * (t.values[leaf * 3 + o] - base[o]);
                assert!(
                    (sum - want).abs() < 1e-10,
                    "seed {seed} output {o}: {sum} vs {want}"
                );
                let mut only = vec![0.0; 5 * 3];
                e.add_shap(&row, Some(o), 0.5, &mut only, &mut scratch);
                for j in 0..5 {
                    for other in 0..3 {
                        let want = if other == o { phi[j * 3 + o] } else { 0.0 };
                        assert!((only[j * 3 + other] - want).abs() < 1e-12, "seed {seed}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_feature_split_twice_on_one_path_is_counted_once() {
        // x0 <= 0.5 ? (x0 <= 0.2 ? 1 : 2) : (x1 <= 0.5 ? 3 : 4)
        let mut t = tree();
        t.nodes[1].feature = 0;
        t.nodes[1].threshold = 0.2;
        t.nodes[0].right = 2;
        t.nodes.push(Node {
            feature: 1,
            threshold: 0.5,
            missing_left: true,
            left: !2,
            right: !3,
            gain: 1.0,
        });
        t.values = vec![1.0, 2.0, 3.0, 4.0];
        t.cover = vec![5.0, 15.0, 50.0, 30.0];
        let prep = Prepared::new(&t, 1).unwrap();
        let e = Explainer {
            tree: &t,
            prep: &prep,
        };
        for row in [[0.1, 0.0], [0.3, 1.0], [0.9, 0.1], [0.9, 0.9]] {
            let mut phi = vec![0.0; 2];
            e.add_shap(&row, None, 1.0, &mut phi, &mut Scratch::default());
            let want = brute(&t, &row, 2);
            for (a, b) in phi.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{row:?}: {phi:?} vs {want:?}");
            }
        }
    }

    /// `cargo test -p millrace-automl --lib walk_speed -- --ignored --nocapture`: ns per node
    /// of one walk on forest-like trees (depth 14, 20 features).
    #[test]
    #[ignore]
    fn walk_speed() {
        let trees: Vec<Tree> = (1..=100).map(|s| random_tree(s, 14, 20, 1)).collect();
        let nodes: usize = trees.iter().map(|t| t.nodes.len()).sum();
        let cache = Explainers::default();
        let ex = cache.of(&trees, 1).unwrap();
        let mut scratch = Scratch::default();
        let mut phi = vec![0.0; 20];
        let rows = 200;
        let start = std::time::Instant::now();
        for r in 0..rows {
            let row: Vec<f64> = (0..20)
                .map(|j| ((r * 7 + j * 3) % 10) as f64 / 10.0)
                .collect();
            for e in &ex {
                e.add_shap(&row, Some(0), 1.0, &mut phi, &mut scratch);
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / (rows * nodes) as f64;
        let points = ex.iter().map(|e| e.quad.t.len()).max().unwrap_or(0);
        assert!(std::ptr::eq(
            cache.of(&trees, 1).unwrap()[0].prep,
            ex[0].prep
        ));
        println!("{nodes} nodes, {points} points: {ns:.1} ns per node");
    }
}
