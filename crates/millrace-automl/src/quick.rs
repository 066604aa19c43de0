//! The linear baseline of the quick build: automatic features, regularisation chosen by
//! stratified k-fold cross-validation on the training part, the decision threshold tuned on
//! out-of-fold predictions, a refit on the whole training part, and metrics on a held-out test
//! part that no choice looked at.
//!
//! Leakage rules this code keeps (and tests check): the feature recipe is refitted inside every
//! fold from that fold's training rows only; the threshold and the regularisation come from
//! out-of-fold predictions only; the test rows are used once, to report.

use millrace_wrangle::{FittedRecipe, Frame, Rows};
use serde::{Deserialize, Serialize};

use crate::error::AutoMlError;
use crate::features::{self, Family};
use crate::linear::{Linear, Loss, Params};
use crate::metrics::{self, Confusion};
use crate::problem::{self, Target, Task, Want};
use crate::split;

#[derive(Debug, Clone)]
pub struct Options {
    pub target: String,
    pub want: Want,
    pub test_fraction: f64,
    pub folds: usize,
    pub seed: u64,
    /// Regularisation strengths tried (the mean-loss scale of `linear::Params::l2`).
    pub l2_grid: Vec<f64>,
}

impl Options {
    pub fn new(target: &str) -> Self {
        Self {
            target: target.to_owned(),
            want: Want::Auto,
            test_fraction: 0.2,
            folds: 5,
            seed: 42,
            l2_grid: vec![1e-4, 1e-3, 1e-2, 1e-1],
        }
    }
}

/// Binary metrics at a threshold (and AUC, which needs none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    pub auc: f64,
    pub f1: f64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub log_loss: f64,
    pub confusion: Confusion,
}

impl BinaryMetrics {
    pub fn of(y: &[bool], p: &[f64], threshold: f64) -> Self {
        let c = Confusion::of(y, &metrics::at(p, threshold));
        Self {
            auc: metrics::auc(y, p),
            f1: c.f1(),
            accuracy: c.accuracy(),
            balanced_accuracy: c.balanced_accuracy(),
            precision: c.precision(),
            recall: c.recall(),
            log_loss: metrics::log_loss(y, p),
            confusion: c,
        }
    }
}

/// A trained binary linear model with how it was chosen and how it scored.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub task: Task,
    pub l2: f64,
    pub threshold: f64,
    /// Out-of-fold metrics on the training part at the chosen threshold.
    pub cv: BinaryMetrics,
    /// Held-out test metrics.
    pub test: BinaryMetrics,
    pub recipe: FittedRecipe,
    pub model: Linear,
    pub feature_names: Vec<String>,
    pub train_rows: Vec<usize>,
    pub test_rows: Vec<usize>,
    /// Test probabilities, in `test_rows` order.
    pub test_probability: Vec<f64>,
}

/// Fits the automatic linear recipe and a logistic model on `rows` of `frame`; returns them.
fn fit_on(
    frame: &Frame,
    target: &str,
    rows: &[usize],
    y: &[f64],
    l2: f64,
) -> Result<(FittedRecipe, Linear, Vec<String>), AutoMlError> {
    let part = frame.take_rows(rows);
    let cols = features::inspect(&part, target);
    let recipe = features::recipe(&cols, target, Family::Linear);
    let (fitted, out) = recipe
        .fit(part)
        .map_err(|e| AutoMlError::Data(format!("automatic features: {e}")))?;
    let all: Vec<usize> = (0..out.rows()).collect();
    let (x, names) = features::matrix(&out, target, &all);
    let model = Linear::fit(
        &x,
        y,
        Loss::Logistic,
        &Params {
            l2,
            ..Params::default()
        },
    );
    Ok((fitted, model, names))
}

fn predict(
    fitted: &FittedRecipe,
    model: &Linear,
    frame: &Frame,
    target: &str,
    rows: &[usize],
) -> Result<Vec<f64>, AutoMlError> {
    let out = fitted
        .transform(frame.take_rows(rows), Rows::Keep)
        .map_err(|e| AutoMlError::Data(format!("automatic features: {e}")))?;
    let all: Vec<usize> = (0..out.rows()).collect();
    let (x, _) = features::matrix(&out, target, &all);
    Ok(model.predict(&x))
}

/// Trains the binary linear baseline on `frame` (target included).
pub fn train_binary_linear(frame: &Frame, opts: &Options) -> Result<Outcome, AutoMlError> {
    let column = frame
        .column(&opts.target)
        .ok_or_else(|| AutoMlError::Target {
            column: opts.target.clone(),
            message: format!("not in the data (columns: {})", frame.names().join(", ")),
        })?;
    let target = problem::detect(&opts.target, column, opts.want)?;
    if !matches!(target.task, Task::Binary { .. }) {
        return Err(AutoMlError::Data(
            "the linear baseline handles binary targets only so far".into(),
        ));
    }
    let labelled = frame.take_rows(&target.rows);
    let (train, test) = split::train_test(
        Some(&target.class),
        target.rows.len(),
        opts.test_fraction,
        opts.seed,
    )?;
    train_with_split(&labelled, &target, &train, &test, opts)
}

/// The same, on a given split of `frame`'s rows (which all have a target): the seam a test
/// uses to prove the test rows never steer a choice.
pub fn train_with_split(
    frame: &Frame,
    target: &Target,
    train: &[usize],
    test: &[usize],
    opts: &Options,
) -> Result<Outcome, AutoMlError> {
    let name = opts.target.as_str();
    let y_train: Vec<f64> = train.iter().map(|i| target.y[*i]).collect();
    let class_train: Vec<usize> = train.iter().map(|i| target.class[*i]).collect();
    let fold = split::folds(
        Some(&class_train),
        train.len(),
        opts.folds,
        opts.seed ^ 0x5EED,
    );
    let yb_train: Vec<bool> = y_train.iter().map(|v| *v == 1.0).collect();
    let mut best: Option<(f64, f64, Vec<f64>)> = None;
    for &l2 in &opts.l2_grid {
        let mut oof = vec![0.0; train.len()];
        for k in 0..opts.folds {
            let fit_idx: Vec<usize> = (0..train.len()).filter(|i| fold[*i] != k).collect();
            let val_idx: Vec<usize> = (0..train.len()).filter(|i| fold[*i] == k).collect();
            let rows_fit: Vec<usize> = fit_idx.iter().map(|i| train[*i]).collect();
            let rows_val: Vec<usize> = val_idx.iter().map(|i| train[*i]).collect();
            let y_fit: Vec<f64> = fit_idx.iter().map(|i| y_train[*i]).collect();
            let (fitted, model, _) = fit_on(frame, name, &rows_fit, &y_fit, l2)?;
            let p = predict(&fitted, &model, frame, name, &rows_val)?;
            for (i, p) in val_idx.iter().zip(p) {
                oof[*i] = p;
            }
        }
        // Regularisation by out-of-fold log loss: it rewards calibrated ranking, which the
        // threshold then turns into F1.
        let loss = metrics::log_loss(&yb_train, &oof);
        if best.as_ref().is_none_or(|(_, b, _)| loss < *b) {
            best = Some((l2, loss, oof));
        }
    }
    let (l2, _, oof) = best.ok_or_else(|| AutoMlError::Data("empty regularisation grid".into()))?;
    let (threshold, _) = metrics::best_f1_threshold(&yb_train, &oof);
    let cv = BinaryMetrics::of(&yb_train, &oof, threshold);
    let (recipe, model, feature_names) = fit_on(frame, name, train, &y_train, l2)?;
    let test_probability = predict(&recipe, &model, frame, name, test)?;
    let yb_test: Vec<bool> = test.iter().map(|i| target.y[*i] == 1.0).collect();
    let test_metrics = BinaryMetrics::of(&yb_test, &test_probability, threshold);
    Ok(Outcome {
        task: target.task.clone(),
        l2,
        threshold,
        cv,
        test: test_metrics,
        recipe,
        model,
        feature_names,
        train_rows: train.to_vec(),
        test_rows: test.to_vec(),
        test_probability,
    })
}
