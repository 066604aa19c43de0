//! Numeric building blocks of the report: a seeded row sample, a parallel map over columns, a
//! fast hasher, average ranks, Pearson, Spearman and mutual information. Quantiles, AUC and the
//! positive class are the crate's shared ones, in `crate::stats`.

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

/// FxHash-style hasher: the string dictionaries hash millions of short keys, where SipHash's
/// DoS resistance buys nothing and costs several times the speed.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.hash = (self.hash.rotate_left(5) ^ v).wrapping_mul(FX_SEED);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.hash = (self.hash.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(FX_SEED);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.hash = (self.hash.rotate_left(5) ^ i as u64).wrapping_mul(FX_SEED);
    }
    fn write_u64(&mut self, i: u64) {
        self.hash = (self.hash.rotate_left(5) ^ i).wrapping_mul(FX_SEED);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub type FxBuild = BuildHasherDefault<FxHasher>;
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuild>;

pub use crate::rng::Rng;
use crate::stats::quantile;

/// Sorted row indices of a seeded sample without replacement (all rows when `rows <= max`).
pub fn sample_indices(rows: usize, max: usize, seed: u64) -> Vec<usize> {
    let k = max.max(1).min(rows);
    if k == rows {
        return (0..rows).collect();
    }
    let mut all: Vec<u32> = (0..rows as u32).collect();
    let mut rng = Rng::new(seed);
    // Partial Fisher-Yates: the first k slots become a uniform sample.
    for i in 0..k {
        let j = i + rng.below(rows - i);
        all.swap(i, j);
    }
    let mut s: Vec<usize> = all[..k].iter().map(|&i| i as usize).collect();
    s.sort_unstable();
    s
}

/// Maps `f` over `items` on all cores (work-stealing by index), keeping the order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut out: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= items.len() {
                            break;
                        }
                        mine.push((i, f(&items[i])));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("profile worker panicked"))
            .collect()
    });
    out.sort_unstable_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// 1-based average ranks (ties share the mean of their ranks); NaN stays NaN.
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut idx: Vec<u32> = (0..values.len() as u32)
        .filter(|&i| !values[i as usize].is_nan())
        .collect();
    idx.sort_unstable_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]));
    let mut ranks = vec![f64::NAN; values.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && values[idx[j] as usize] == values[idx[i] as usize] {
            j += 1;
        }
        // Ranks i+1..=j averaged.
        let r = (i + 1 + j) as f64 / 2.0;
        for &k in &idx[i..j] {
            ranks[k as usize] = r;
        }
        i = j;
    }
    ranks
}

/// Pearson r over the positions where both are not NaN; None when undefined.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let (mut n, mut sx, mut sy) = (0usize, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        if !a.is_nan() && !b.is_nan() {
            n += 1;
            sx += a;
            sy += b;
        }
    }
    if n < 2 {
        return None;
    }
    let (mx, my) = (sx / n as f64, sy / n as f64);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        if !a.is_nan() && !b.is_nan() {
            let (da, db) = (a - mx, b - my);
            sxy += da * db;
            sxx += da * da;
            syy += db * db;
        }
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Spearman rho (Pearson of average ranks over rows where both present).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    let (mut a, mut b) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
    for (&u, &v) in x.iter().zip(y) {
        if !u.is_nan() && !v.is_nan() {
            a.push(u);
            b.push(v);
        }
    }
    pearson(&average_ranks(&a), &average_ranks(&b))
}

/// Mutual information in bits between two discrete codes (0..nx, 0..ny).
pub fn mutual_information_bits(x: &[u32], nx: usize, y: &[u32], ny: usize) -> f64 {
    let n = x.len();
    if n == 0 {
        return 0.0;
    }
    let mut joint = vec![0u64; nx * ny];
    let mut px = vec![0u64; nx];
    let mut py = vec![0u64; ny];
    for (&a, &b) in x.iter().zip(y) {
        joint[a as usize * ny + b as usize] += 1;
        px[a as usize] += 1;
        py[b as usize] += 1;
    }
    let nf = n as f64;
    let mut mi = 0.0;
    for a in 0..nx {
        for b in 0..ny {
            let c = joint[a * ny + b];
            if c > 0 {
                let pxy = c as f64 / nf;
                mi += pxy * (pxy / ((px[a] as f64 / nf) * (py[b] as f64 / nf))).log2();
            }
        }
    }
    mi.max(0.0)
}

/// Codes for `values` cut at the sample's quantiles into at most `bins` bins (ties merge bins);
/// NaN gets the extra last code. Returns (codes, number of codes).
pub fn quantile_bin_codes(values: &[f64], bins: usize) -> (Vec<u32>, usize) {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    let mut cuts: Vec<f64> = (1..bins)
        .map(|i| quantile(&sorted, i as f64 / bins as f64))
        .collect();
    cuts.dedup();
    cuts.retain(|c| !c.is_nan());
    let missing = cuts.len() as u32 + 1;
    let codes = values
        .iter()
        .map(|&v| {
            if v.is_nan() {
                missing
            } else {
                cuts.partition_point(|&c| c < v) as u32
            }
        })
        .collect();
    (codes, cuts.len() + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 10.0, 30.0]),
            vec![1.5, 3.0, 1.5, 4.0]
        );
    }

    #[test]
    fn sample_is_sorted_unique_and_seeded() {
        let a = sample_indices(1000, 100, 7);
        let b = sample_indices(1000, 100, 7);
        assert_eq!(a, b);
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
    }
}
