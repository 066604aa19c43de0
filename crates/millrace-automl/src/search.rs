//! The candidates a build tries, good defaults first, and the random configurations `best`
//! mode adds while its time budget lasts.
//!
//! Quick mode's list is fixed and small enough for a 7,000-row table in a few seconds on two
//! cores: ridge/logistic at five strengths (1e-4 to 1: the strong ones win on small tables),
//! four boosted-tree shapes (rounds chosen by cross-validation), extremely randomised trees and
//! two random forests. Defaults follow what works across tabular benchmarks: small learning
//! rate with early stopping, leaf-wise trees of 4–15 leaves, row and feature subsampling, one
//! strongly regularised shape for small tables — and the plain defaults of LightGBM and of
//! scikit-learn's random forest, so the build is never behind a default library model that
//! cross-validation would have preferred (bench/automl-varied.sh measures this).

use serde::{Deserialize, Serialize};

use crate::features::Family;
use crate::linear::Params;
use crate::rng::Rng;
use crate::trees::{ForestParams, GbdtParams};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum Algo {
    Linear(Params),
    Gbdt(GbdtParams),
    Forest(ForestParams),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub name: String,
    pub algo: Algo,
}

impl Candidate {
    pub fn family(&self) -> Family {
        match self.algo {
            Algo::Linear(_) => Family::Linear,
            _ => Family::Trees,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Quick,
    Best,
}

fn linear(l2: f64) -> Candidate {
    Candidate {
        name: format!("linear l2={l2:e}"),
        algo: Algo::Linear(Params {
            l2,
            ..Params::default()
        }),
    }
}

fn gbdt(name: &str, p: GbdtParams) -> Candidate {
    Candidate {
        name: name.to_owned(),
        algo: Algo::Gbdt(p),
    }
}

/// Trees per forest in the quick list: averaged probabilities settle well before 300 trees,
/// and forests are the slowest candidates.
const QUICK_TREES: usize = 100;

/// The fixed list, in the order it is tried.
pub fn defaults(seed: u64, rows: usize) -> Vec<Candidate> {
    // Fewer rows per leaf on small tables, or the trees cannot split at all.
    let min_leaf = (rows / 200).clamp(3, 20);
    let base = GbdtParams {
        seed,
        min_leaf,
        ..GbdtParams::default()
    };
    vec![
        linear(1e-3),
        gbdt(
            "gbdt leaves=15 lr=0.05",
            GbdtParams {
                max_leaves: 15,
                ..base.clone()
            },
        ),
        linear(1e-2),
        gbdt(
            "gbdt leaves=4 lr=0.05",
            GbdtParams {
                max_leaves: 4,
                max_depth: 2,
                ..base.clone()
            },
        ),
        Candidate {
            name: "extra_trees".into(),
            algo: Algo::Forest(ForestParams {
                trees: QUICK_TREES,
                extra: true,
                bootstrap: false,
                min_leaf: min_leaf.max(5),
                seed,
                ..ForestParams::default()
            }),
        },
        linear(1e-4),
        linear(1e-1),
        linear(1.0),
        gbdt(
            "gbdt leaves=8 lr=0.03 l2=10",
            GbdtParams {
                max_leaves: 8,
                learning_rate: 0.03,
                feature_fraction: 0.5,
                l2: 10.0,
                min_leaf: min_leaf * 2,
                ..base.clone()
            },
        ),
        Candidate {
            name: "random_forest".into(),
            algo: Algo::Forest(ForestParams {
                trees: QUICK_TREES,
                extra: false,
                bootstrap: true,
                min_leaf: min_leaf.max(5),
                seed,
                ..ForestParams::default()
            }),
        },
        // The common library defaults, so the build is never behind them: LightGBM's shape
        // (31 leaves, no depth limit, learning rate 0.1, 20 rows per leaf, every row and
        // feature; rounds still chosen on the folds) and scikit-learn's fully grown forest.
        gbdt(
            "gbdt leaves=31 lr=0.1",
            GbdtParams {
                max_leaves: 31,
                max_depth: 0,
                learning_rate: 0.1,
                min_leaf: 20,
                l2: 0.0,
                feature_fraction: 1.0,
                subsample: 1.0,
                ..base.clone()
            },
        ),
        Candidate {
            name: "random_forest leaf=1".into(),
            algo: Algo::Forest(ForestParams {
                trees: QUICK_TREES,
                extra: false,
                bootstrap: true,
                min_leaf: 1,
                seed,
                ..ForestParams::default()
            }),
        },
    ]
}

/// A random configuration for `best` mode (number `i`).
pub fn random(rng: &mut Rng, i: usize, seed: u64, rows: usize) -> Candidate {
    let pick = |rng: &mut Rng, v: &[f64]| v[rng.below(v.len())];
    match rng.below(4) {
        0 => {
            let mut c = linear(pick(rng, &[3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1]));
            c.name = c.name.replace("linear ", &format!("linear #{i} "));
            c
        }
        1 => {
            let extra = rng.below(2) == 0;
            Candidate {
                name: format!(
                    "{} #{i}",
                    if extra {
                        "extra_trees"
                    } else {
                        "random_forest"
                    }
                ),
                algo: Algo::Forest(ForestParams {
                    extra,
                    bootstrap: !extra,
                    min_leaf: pick(rng, &[1.0, 3.0, 5.0, 10.0, 20.0]) as usize,
                    feature_fraction: pick(rng, &[0.3, 0.5, 0.7, 1.0]),
                    seed: seed ^ i as u64,
                    ..ForestParams::default()
                }),
            }
        }
        _ => {
            let leaves = pick(rng, &[4.0, 8.0, 15.0, 31.0, 63.0]) as usize;
            let lr = pick(rng, &[0.02, 0.03, 0.05, 0.1]);
            Candidate {
                name: format!("gbdt #{i} leaves={leaves} lr={lr}"),
                algo: Algo::Gbdt(GbdtParams {
                    max_leaves: leaves,
                    max_depth: 0,
                    learning_rate: lr,
                    min_leaf: ((rows / 200).clamp(3, 20) as f64 * pick(rng, &[0.5, 1.0, 2.0, 4.0]))
                        .max(2.0) as usize,
                    l2: pick(rng, &[0.0, 0.1, 1.0, 10.0]),
                    feature_fraction: pick(rng, &[0.5, 0.7, 0.9, 1.0]),
                    subsample: pick(rng, &[0.6, 0.8, 1.0]),
                    seed: seed ^ i as u64,
                    ..GbdtParams::default()
                }),
            }
        }
    }
}
