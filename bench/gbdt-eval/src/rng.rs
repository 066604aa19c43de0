//! Tiny seeded RNG (SplitMix64) and the stratified split / k-fold used by the protocol.
//!
//! Stratified 80/20 split with seed s:
//!   for each class c in (0, 1) separately: take the row indices of class c in file
//!   order, Fisher-Yates shuffle them with SplitMix64(seed = s * 1_000_003 + c), and put
//!   the first round(0.2 * n_c) into test, the rest into train. Both lists are sorted.
//! Stratified k-fold (used inside the train part) with seed s:
//!   for each class separately, shuffle that class's positions (SplitMix64(s*7919 + c))
//!   and deal them round-robin to folds 0..k.

pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    /// uniform in [0, n) (n small, modulo bias negligible and irrelevant here)
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Returns (train_idx, test_idx) into the rows of `y` (labels 0/1).
pub fn stratified_split(y: &[f64], test_frac: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for c in 0..2u64 {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] as u64 == c).collect();
        let mut r = SplitMix64::new(seed.wrapping_mul(1_000_003).wrapping_add(c));
        r.shuffle(&mut idx);
        let n_test = (idx.len() as f64 * test_frac).round() as usize;
        test.extend_from_slice(&idx[..n_test]);
        train.extend_from_slice(&idx[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// Stratified k-fold over positions 0..y.len(); returns fold id per position.
pub fn stratified_folds(y: &[f64], k: usize, seed: u64) -> Vec<usize> {
    let mut fold = vec![0usize; y.len()];
    for c in 0..2u64 {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] as u64 == c).collect();
        let mut r = SplitMix64::new(seed.wrapping_mul(7919).wrapping_add(c));
        r.shuffle(&mut idx);
        for (j, &i) in idx.iter().enumerate() {
            fold[i] = j % k;
        }
    }
    fold
}
