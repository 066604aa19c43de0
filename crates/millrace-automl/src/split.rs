//! Seeded, stratified splits: the held-out test part and the cross-validation folds.
//!
//! Classification splits keep each class's share: every class is shuffled with the seed and
//! dealt out on its own. Regression splits deal a shuffled order. The same seed and labels
//! always give the same split.

use crate::error::AutoMlError;
use crate::rng::Rng;

/// Rows grouped by class (or one group for regression), each shuffled with `seed`.
fn groups(class: Option<&[usize]>, n: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = Rng::new(seed);
    let mut groups: Vec<Vec<usize>> = match class {
        Some(c) => {
            let k = c.iter().copied().max().map_or(0, |m| m + 1);
            let mut g = vec![Vec::new(); k];
            for (i, c) in c.iter().enumerate() {
                g[*c].push(i);
            }
            g
        }
        None => vec![(0..n).collect()],
    };
    for g in &mut groups {
        rng.shuffle(g);
    }
    groups
}

/// Splits rows `0..n` into (train, test), each sorted; `test_fraction` of every class (rounded,
/// at least one row of each class with two or more rows) goes to test.
pub fn train_test(
    class: Option<&[usize]>,
    n: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), AutoMlError> {
    if !(0.0..1.0).contains(&test_fraction) || test_fraction == 0.0 {
        return Err(AutoMlError::Data(format!(
            "test fraction must be between 0 and 1 (exclusive), got {test_fraction}"
        )));
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for g in groups(class, n, seed) {
        if g.is_empty() {
            continue;
        }
        let mut k = (g.len() as f64 * test_fraction).round() as usize;
        if class.is_some() {
            if g.len() < 2 {
                return Err(AutoMlError::Data(
                    "a class has a single row: it cannot be both trained on and tested".into(),
                ));
            }
            k = k.clamp(1, g.len() - 1);
        }
        test.extend_from_slice(&g[..k]);
        train.extend_from_slice(&g[k..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

/// The fold (0..k) of each of `n` rows, stratified by `class` when given.
pub fn folds(class: Option<&[usize]>, n: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut fold = vec![0; n];
    // Continue the round robin across classes so fold sizes differ by at most one overall.
    let mut next = 0;
    for g in groups(class, n, seed) {
        for i in g {
            fold[i] = next % k;
            next += 1;
        }
    }
    fold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_keep_class_shares_and_are_seeded() {
        let class: Vec<usize> = (0..1000).map(|i| usize::from(i % 4 == 0)).collect();
        let (train, test) = train_test(Some(&class), 1000, 0.2, 7).unwrap();
        assert_eq!((train.len(), test.len()), (800, 200));
        assert_eq!(test.iter().filter(|i| class[**i] == 1).count(), 50);
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(train_test(Some(&class), 1000, 0.2, 7).unwrap().1, test);
        assert_ne!(train_test(Some(&class), 1000, 0.2, 8).unwrap().1, test);
        let f = folds(Some(&class), 1000, 5, 3);
        for k in 0..5 {
            assert_eq!(f.iter().filter(|x| **x == k).count(), 200);
            let pos = (0..1000).filter(|i| f[*i] == k && class[*i] == 1).count();
            assert_eq!(pos, 50, "fold {k}");
        }
        let e = train_test(Some(&[0, 0, 1]), 3, 0.2, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("single row"), "{e}");
        let (tr, te) = train_test(None, 10, 0.3, 1).unwrap();
        assert_eq!((tr.len(), te.len()), (7, 3));
    }
}
