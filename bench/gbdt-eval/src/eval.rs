//! Protocol driver and metrics.

use crate::data::Dataset;
use crate::rng::{stratified_folds, stratified_split};
use std::time::Instant;

pub const SPLIT_SEEDS: [u64; 5] = [1, 2, 3, 4, 5];
pub const TEST_FRAC: f64 = 0.2;
pub const CV_FOLDS: usize = 5;
/// how many times the test-set prediction is repeated for the timing (median taken)
pub const PREDICT_REPS: usize = 15;

pub trait Fitted {
    /// probabilities of class 1 for row-major x (n x p)
    fn predict(&self, x: &[f64], p: usize) -> Vec<f64>;
    /// serialise to a string, load it back, predict x again; returns (bytes, bit-identical?)
    fn roundtrip(&self, x: &[f64], p: usize) -> (usize, bool);
}

pub type FitFn = Box<dyn Fn(&[f64], &[f64], usize, u64) -> Box<dyn Fitted>>;

pub struct Spec {
    pub name: String,
    pub fit: FitFn,
}

pub struct Summary {
    pub name: String,
    pub auc: Vec<f64>,
    pub f1: Vec<f64>,
    pub acc: Vec<f64>,
    pub thr: Vec<f64>,
    pub fit_s: Vec<f64>,
    pub pred_ms_per_1k: Vec<f64>,
    pub deterministic: bool,
    pub hash: u64,
    pub model_bytes: Vec<usize>,
    pub roundtrip_ok: bool,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}
fn sd(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() as f64 - 1.0)).sqrt()
}
fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { 0.5 * (s[n / 2 - 1] + s[n / 2]) }
}

impl Summary {
    pub fn header() -> String {
        "config\tauc_mean\tauc_sd\tf1_mean\tf1_sd\tacc_mean\tthr_mean\tfit_s_median\tpredict_ms_per_1k_median\tdeterministic\tpred_hash\tmodel_bytes_median\tsave_load_identical".into()
    }
    pub fn row(&self) -> String {
        let mb: Vec<f64> = self.model_bytes.iter().map(|&b| b as f64).collect();
        format!(
            "{}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{:.4}\t{:.3}\t{:.3}\t{:.3}\t{}\t{:016x}\t{:.0}\t{}",
            self.name,
            mean(&self.auc),
            sd(&self.auc),
            mean(&self.f1),
            sd(&self.f1),
            mean(&self.acc),
            mean(&self.thr),
            median(&self.fit_s),
            median(&self.pred_ms_per_1k),
            if self.deterministic { "yes" } else { "NO" },
            self.hash,
            median(&mb),
            if self.roundtrip_ok { "yes" } else { "NO" },
        )
    }
}

/// ROC AUC via the Mann-Whitney statistic with average ranks for ties.
pub fn auc(p: &[f64], y: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[a].partial_cmp(&p[b]).unwrap());
    let mut ranks = vec![0.0; p.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && p[idx[j + 1]] == p[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = r;
        }
        i = j + 1;
    }
    let n_pos = y.iter().filter(|&&v| v == 1.0).count() as f64;
    let n_neg = y.len() as f64 - n_pos;
    let sum_pos: f64 = (0..y.len()).filter(|&i| y[i] == 1.0).map(|i| ranks[i]).sum();
    (sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// (f1, accuracy) when predicting positive iff p >= thr
pub fn f1_acc(p: &[f64], y: &[f64], thr: f64) -> (f64, f64) {
    let (mut tp, mut fp, mut fnn, mut tn) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..p.len() {
        match (p[i] >= thr, y[i] == 1.0) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fnn += 1.0,
            (false, false) => tn += 1.0,
        }
    }
    let f1 = if tp == 0.0 { 0.0 } else { 2.0 * tp / (2.0 * tp + fp + fnn) };
    (f1, (tp + tn) / p.len() as f64)
}

/// Threshold (one of the score values) maximising F1 for the rule p >= thr.
pub fn best_f1_threshold(p: &[f64], y: &[f64]) -> f64 {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[b].partial_cmp(&p[a]).unwrap()); // descending
    let n_pos = y.iter().filter(|&&v| v == 1.0).count() as f64;
    let (mut tp, mut fp) = (0.0, 0.0);
    let (mut best, mut best_thr) = (-1.0, 0.5);
    let mut i = 0;
    while i < idx.len() {
        let v = p[idx[i]];
        while i < idx.len() && p[idx[i]] == v {
            if y[idx[i]] == 1.0 { tp += 1.0 } else { fp += 1.0 }
            i += 1;
        }
        let f1 = 2.0 * tp / (tp + fp + n_pos);
        if f1 > best {
            best = f1;
            best_thr = v;
        }
    }
    best_thr
}

fn fnv1a(h: &mut u64, v: &[f64]) {
    for x in v {
        for b in x.to_bits().to_le_bytes() {
            *h ^= b as u64;
            *h = h.wrapping_mul(0x100000001b3);
        }
    }
}

pub fn run_protocol(ds: &Dataset, spec: &Spec) -> Summary {
    let p = ds.p;
    let mut s = Summary {
        name: spec.name.clone(),
        auc: vec![],
        f1: vec![],
        acc: vec![],
        thr: vec![],
        fit_s: vec![],
        pred_ms_per_1k: vec![],
        deterministic: true,
        hash: 0xcbf29ce484222325,
        model_bytes: vec![],
        roundtrip_ok: true,
    };
    for &seed in &SPLIT_SEEDS {
        let (tr, te) = stratified_split(&ds.y, TEST_FRAC, seed);
        let (xtr, ytr) = ds.rows(&tr);
        let (xte, yte) = ds.rows(&te);

        // out-of-fold predictions on the training part only
        let folds = stratified_folds(&ytr, CV_FOLDS, seed);
        let mut oof = vec![f64::NAN; ytr.len()];
        for k in 0..CV_FOLDS {
            let fit_idx: Vec<usize> = (0..ytr.len()).filter(|&i| folds[i] != k).collect();
            let ho_idx: Vec<usize> = (0..ytr.len()).filter(|&i| folds[i] == k).collect();
            let (xa, ya) = sub(&xtr, &ytr, p, &fit_idx);
            let (xb, _) = sub(&xtr, &ytr, p, &ho_idx);
            let m = (spec.fit)(&xa, &ya, p, seed);
            let pb = m.predict(&xb, p);
            for (j, &i) in ho_idx.iter().enumerate() {
                oof[i] = pb[j];
            }
        }
        let thr = best_f1_threshold(&oof, &ytr);

        // final refit (timed)
        let t0 = Instant::now();
        let m = (spec.fit)(&xtr, &ytr, p, seed);
        let fit_s = t0.elapsed().as_secs_f64();
        let pte = m.predict(&xte, p);
        // predict timing: whole test part, repeated, median
        let mut pt = Vec::new();
        for _ in 0..PREDICT_REPS {
            let t = Instant::now();
            let q = m.predict(&xte, p);
            pt.push(t.elapsed().as_secs_f64());
            std::hint::black_box(q);
        }
        let ms_per_1k = median(&pt) * 1000.0 / te.len() as f64 * 1000.0;

        // determinism: same seed, same data, fit again
        let m2 = (spec.fit)(&xtr, &ytr, p, seed);
        let pte2 = m2.predict(&xte, p);
        let same = pte.iter().zip(&pte2).all(|(a, b)| a.to_bits() == b.to_bits());
        s.deterministic &= same;
        let (bytes, rt) = m.roundtrip(&xte, p);
        s.roundtrip_ok &= rt;
        s.model_bytes.push(bytes);
        fnv1a(&mut s.hash, &pte);

        let a = auc(&pte, &yte);
        let (f1, acc) = f1_acc(&pte, &yte, thr);
        eprintln!(
            "  split {seed}: n_train {} n_test {} thr {thr:.4} AUC {a:.4} F1 {f1:.4} acc {acc:.4} fit {fit_s:.3}s pred {ms_per_1k:.3}ms/1k same_seed_identical {same} model {bytes}B save_load_identical {rt}",
            tr.len(),
            te.len()
        );
        s.auc.push(a);
        s.f1.push(f1);
        s.acc.push(acc);
        s.thr.push(thr);
        s.fit_s.push(fit_s);
        s.pred_ms_per_1k.push(ms_per_1k);
    }
    s
}

pub fn sub(x: &[f64], y: &[f64], p: usize, idx: &[usize]) -> (Vec<f64>, Vec<f64>) {
    let mut xo = Vec::with_capacity(idx.len() * p);
    let mut yo = Vec::with_capacity(idx.len());
    for &i in idx {
        xo.extend_from_slice(&x[i * p..(i + 1) * p]);
        yo.push(y[i]);
    }
    (xo, yo)
}
