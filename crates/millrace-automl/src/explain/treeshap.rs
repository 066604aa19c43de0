//! Exact path-dependent TreeSHAP (Lundberg, Erion and Lee, "Consistent Individualized Feature
//! Attribution for Tree Ensembles", 2018, Algorithm 2) over millrace's [`Tree`]: the Shapley
//! values of one row for one tree, in polynomial time, with each node's cover (the training
//! rows that reached it) standing in for the feature distribution.
//!
//! The values add up exactly: `expected(tree) + Σ φ = the leaf the row lands in`, for every
//! output of a leaf (a forest's class frequencies have several).

use crate::trees::tree::Tree;

/// One feature on the path from the root: the share of cover that follows it when the
/// feature is unknown (`zero`), whether the row's own value follows it (`one`), and the
/// weight of the subsets this position stands for.
#[derive(Debug, Clone, Copy)]
struct Step {
    feature: i64,
    zero: f64,
    one: f64,
    weight: f64,
}

/// Grows the path by one feature, updating the subset weights.
fn extend(path: &mut Vec<Step>, zero: f64, one: f64, feature: i64) {
    let depth = path.len();
    path.push(Step {
        feature,
        zero,
        one,
        weight: if depth == 0 { 1.0 } else { 0.0 },
    });
    let d = depth as f64;
    for i in (0..depth).rev() {
        path[i + 1].weight += one * path[i].weight * (i as f64 + 1.0) / (d + 1.0);
        path[i].weight = zero * path[i].weight * (d - i as f64) / (d + 1.0);
    }
}

/// Takes the feature at `at` back out of the path (a feature met a second time is merged).
fn unwind(path: &mut Vec<Step>, at: usize) {
    let last = path.len() - 1;
    let (one, zero) = (path[at].one, path[at].zero);
    let l = last as f64;
    let mut carry = path[last].weight;
    for j in (0..last).rev() {
        let jf = j as f64;
        if one != 0.0 {
            let before = path[j].weight;
            path[j].weight = carry * (l + 1.0) / ((jf + 1.0) * one);
            carry = before - path[j].weight * zero * (l - jf) / (l + 1.0);
        } else {
            path[j].weight = path[j].weight * (l + 1.0) / (zero * (l - jf));
        }
    }
    for j in at..last {
        path[j].feature = path[j + 1].feature;
        path[j].zero = path[j + 1].zero;
        path[j].one = path[j + 1].one;
    }
    path.pop();
}

/// The total weight the path would have with the feature at `at` unwound, without changing it.
fn unwound_sum(path: &[Step], at: usize) -> f64 {
    let last = path.len() - 1;
    let (one, zero) = (path[at].one, path[at].zero);
    let l = last as f64;
    let mut total = 0.0;
    if one != 0.0 {
        let mut carry = path[last].weight;
        for j in (0..last).rev() {
            let jf = j as f64;
            let part = carry / ((jf + 1.0) * one);
            total += part;
            carry = path[j].weight - part * zero * (l - jf);
        }
    } else {
        for j in (0..last).rev() {
            total += path[j].weight / (zero * (l - j as f64));
        }
    }
    total * (l + 1.0)
}

/// A tree with each node's cover, ready to explain rows.
pub(crate) struct Explainer<'a> {
    tree: &'a Tree,
    width: usize,
    /// Cover of each split node (the sum of the leaves under it).
    node_cover: Vec<f64>,
}

impl<'a> Explainer<'a> {
    /// `None` when the tree keeps no leaf covers (a model saved before explanations).
    pub fn new(tree: &'a Tree, width: usize) -> Option<Self> {
        let leaves = tree.values.len() / width.max(1);
        if tree.cover.len() != leaves {
            return None;
        }
        let mut node_cover = vec![f64::NAN; tree.nodes.len()];
        fn fill(tree: &Tree, c: i32, out: &mut [f64]) -> f64 {
            if c < 0 {
                return tree.cover[!c as usize];
            }
            let n = &tree.nodes[c as usize];
            let v = fill(tree, n.left, out) + fill(tree, n.right, out);
            out[c as usize] = v;
            v
        }
        if !tree.nodes.is_empty() {
            fill(tree, 0, &mut node_cover);
        }
        Some(Self {
            tree,
            width,
            node_cover,
        })
    }

    fn cover(&self, c: i32) -> f64 {
        if c < 0 {
            self.tree.cover[!c as usize]
        } else {
            self.node_cover[c as usize]
        }
    }

    /// The cover-weighted mean leaf (per output): what the tree predicts knowing nothing.
    pub fn expected(&self, out: &mut [f64]) {
        let total: f64 = self.tree.cover.iter().sum();
        let leaves = self.tree.cover.len();
        for (l, &c) in self.tree.cover.iter().enumerate() {
            let share = if total > 0.0 {
                c / total
            } else {
                1.0 / leaves as f64
            };
            for (o, v) in out.iter_mut().enumerate() {
                *v += share * self.tree.values[l * self.width + o];
            }
        }
    }

    /// Adds `scale ×` this tree's Shapley values for `row` to `phi` (`features × width`,
    /// feature-major). `paths` is scratch memory reused across calls.
    pub fn add_shap(&self, row: &[f64], scale: f64, phi: &mut [f64], paths: &mut Paths) {
        if self.tree.nodes.is_empty() {
            return; // a single leaf: the expected value is the prediction
        }
        paths.level(0).clear();
        self.recurse(0, (row, scale), paths, 0, (1.0, 1.0, -1), phi);
    }

    /// Visits node `c` with the path at `paths[k]`, grown by `(zero, one, feature)`. The hot
    /// child gets a copy at level `k + 1`; the cold child, visited last, keeps level `k`.
    fn recurse(
        &self,
        c: i32,
        (row, scale): (&[f64], f64),
        paths: &mut Paths,
        k: usize,
        (zero, one, feature): (f64, f64, i64),
        phi: &mut [f64],
    ) {
        extend(paths.level(k), zero, one, feature);
        if c < 0 {
            let path = &paths.0[k];
            let leaf = !c as usize;
            let values = &self.tree.values[leaf * self.width..(leaf + 1) * self.width];
            for i in 1..path.len() {
                let w = unwound_sum(path, i) * (path[i].one - path[i].zero) * scale;
                let f = path[i].feature as usize;
                for (o, v) in values.iter().enumerate() {
                    if let Some(p) = phi.get_mut(f * self.width + o) {
                        *p += w * v;
                    }
                }
            }
            return;
        }
        let n = &self.tree.nodes[c as usize];
        let v = row.get(n.feature as usize).copied().unwrap_or(f64::NAN);
        let goes_left = if v.is_nan() {
            n.missing_left
        } else {
            v.min(f64::MAX) <= n.threshold
        };
        let (hot, cold) = if goes_left {
            (n.left, n.right)
        } else {
            (n.right, n.left)
        };
        let (mut in_zero, mut in_one) = (1.0, 1.0);
        let path = &mut paths.0[k];
        if let Some(at) = (1..path.len()).find(|&i| path[i].feature == i64::from(n.feature)) {
            in_zero = path[at].zero;
            in_one = path[at].one;
            unwind(path, at);
        }
        let here = self.cover(c);
        let share = |child: i32| {
            if here > 0.0 {
                self.cover(child) / here
            } else {
                0.0
            }
        };
        let feature = i64::from(n.feature);
        let (hot_zero, cold_zero) = (in_zero * share(hot), in_zero * share(cold));
        paths.copy_down(k);
        self.recurse(
            hot,
            (row, scale),
            paths,
            k + 1,
            (hot_zero, in_one, feature),
            phi,
        );
        self.recurse(cold, (row, scale), paths, k, (cold_zero, 0.0, feature), phi);
    }
}

/// The paths of one walk, a level per depth, kept between calls so a walk allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct Paths(Vec<Vec<Step>>);

impl Paths {
    fn level(&mut self, k: usize) -> &mut Vec<Step> {
        while self.0.len() <= k {
            self.0.push(Vec::with_capacity(32));
        }
        &mut self.0[k]
    }

    /// Level `k + 1` becomes a copy of level `k`.
    fn copy_down(&mut self, k: usize) {
        self.level(k + 1);
        let (upper, lower) = self.0.split_at_mut(k + 1);
        lower[0].clear();
        lower[0].extend_from_slice(&upper[k]);
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

    /// Shapley values by their definition: every subset of the other features, with the
    /// path-dependent expectation of the tree given a subset.
    fn brute(t: &Tree, row: &[f64], features: usize) -> Vec<f64> {
        fn cond(t: &Tree, c: i32, row: &[f64], known: &[bool]) -> f64 {
            if c < 0 {
                return t.values[!c as usize];
            }
            let n = &t.nodes[c as usize];
            let e = Explainer::new(t, 1).unwrap();
            if known[n.feature as usize] {
                let v = row[n.feature as usize];
                let left = if v.is_nan() {
                    n.missing_left
                } else {
                    v <= n.threshold
                };
                cond(t, if left { n.left } else { n.right }, row, known)
            } else {
                let (l, r, h) = (e.cover(n.left), e.cover(n.right), e.cover(c));
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
        let e = Explainer::new(&t, 1).unwrap();
        for row in [
            [0.0, 0.0],
            [0.0, 1.0],
            [1.0, 0.0],
            [f64::NAN, 1.0],
            [1.0, f64::NAN],
        ] {
            let mut phi = vec![0.0; 2];
            e.add_shap(&row, 1.0, &mut phi, &mut Paths::default());
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
        let e = Explainer::new(&t, 1).unwrap();
        for row in [[0.1, 0.0], [0.3, 1.0], [0.9, 0.1], [0.9, 0.9]] {
            let mut phi = vec![0.0; 2];
            e.add_shap(&row, 1.0, &mut phi, &mut Paths::default());
            let want = brute(&t, &row, 2);
            for (a, b) in phi.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{row:?}: {phi:?} vs {want:?}");
            }
        }
    }
}
