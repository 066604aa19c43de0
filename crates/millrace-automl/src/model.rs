//! The trained artifact: everything needed to score a raw row the way training saw it — the
//! user's fitted recipe (if any), one fitted automatic feature recipe per model family, the
//! ensemble members with their weights, the threshold, the class labels and the input schema.
//! It serialises to one JSON document (`millrace.model.v1`); loading it back predicts
//! bit-identically (the workspace's serde_json keeps floats round-trip exact).

use millrace_wrangle::fitted::FieldSpec;
use millrace_wrangle::{FittedRecipe, Frame, Rows};
use serde::{Deserialize, Serialize};

use crate::ensemble::{self, Blend};
use crate::error::AutoMlError;
use crate::features::{self, Family};
use crate::linear::{Linear, Matrix};
use crate::objective::{Objective, argmax_rows};
use crate::problem::Task;
use crate::trees::{Forest, Gbdt};

pub const FORMAT: &str = "millrace.model.v1";

/// A fitted model of any family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum FittedModel {
    Linear(Linear),
    Gbdt(Gbdt),
    Forest(Forest),
}

impl FittedModel {
    /// Same layout for every family: one value per row, or `classes` probabilities per row.
    pub fn predict(&self, x: &Matrix) -> Vec<f64> {
        match self {
            FittedModel::Linear(m) => m.predict(x),
            FittedModel::Gbdt(m) => m.predict(x),
            FittedModel::Forest(m) => m.predict(x),
        }
    }

    /// What explaining (and scoring) one row walks: every tree's nodes and leaves, or a
    /// linear model's weights. Ensemble simplification weighs members by it.
    pub fn size(&self) -> usize {
        let nodes = |trees: &[crate::trees::tree::Tree]| -> usize {
            trees.iter().map(|t| 2 * t.nodes.len() + 1).sum()
        };
        match self {
            FittedModel::Linear(m) => m.weights.len(),
            FittedModel::Gbdt(m) => nodes(m.trees()),
            FittedModel::Forest(m) => nodes(m.trees()),
        }
    }
}

/// An automatic feature recipe for one model family, fitted on the training part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSet {
    pub family: Family,
    pub recipe: FittedRecipe,
    /// Matrix columns, in order.
    pub names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Candidate name on the leaderboard.
    pub candidate: String,
    /// Index into `ModelArtifact::features`.
    pub features: usize,
    pub weight: f64,
    pub model: FittedModel,
}

/// Where the training data came from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Lineage {
    /// `--data` as given.
    pub data: String,
    /// The dataset's prep manifest (`_manifest.json`) when the data is a prep output.
    pub manifest: Option<String>,
    /// Run id or content digest of the input, when known.
    pub digest: Option<String>,
    pub rows: usize,
    pub train_rows: usize,
    pub test_rows: usize,
    /// The members were refitted on every labelled row, the test part included, after the
    /// test figures were taken (see [`crate::train::Options::refit_all`]). False in models
    /// saved before the final refit existed, and with `--final-fit train`.
    #[serde(default)]
    pub refit_all: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    pub format: String,
    pub name: String,
    pub version: u32,
    pub target: String,
    pub task: Task,
    pub objective: Objective,
    /// Binary: a positive probability at or above this is the positive class.
    pub threshold: f64,
    pub seed: u64,
    /// Columns training read (the target included), with the kinds it saw.
    pub input: Vec<FieldSpec>,
    /// Columns passed through to predictions to identify rows (ID-like columns).
    pub id_columns: Vec<String>,
    /// The user's recipe (`--recipe`), fitted on the training part; applied first.
    pub recipe: Option<FittedRecipe>,
    pub features: Vec<FeatureSet>,
    pub members: Vec<Member>,
    /// How the members' outputs are averaged (models saved before it existed: the mean).
    #[serde(default)]
    pub blend: Blend,
    pub lineage: Lineage,
    /// The training part's feature distributions, for drift monitoring (absent in models
    /// trained before baselines existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<crate::baseline::Baseline>,
}

/// Scores for a batch of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub rows: usize,
    /// Values per row: 1 (binary positive probability, regression value) or one per class.
    pub width: usize,
    pub values: Vec<f64>,
}

impl Predictions {
    /// The predicted label of every row: the class name, or the regression value as text.
    pub fn labels(&self, model: &ModelArtifact) -> Vec<String> {
        match &model.task {
            Task::Binary { positive, negative } => self
                .values
                .iter()
                .map(|p| {
                    if *p >= model.threshold {
                        positive.clone()
                    } else {
                        negative.clone()
                    }
                })
                .collect(),
            Task::Multiclass { classes } => argmax_rows(&self.values, self.width)
                .into_iter()
                .map(|c| classes[c].clone())
                .collect(),
            Task::Regression => self.values.iter().map(|v| v.to_string()).collect(),
        }
    }
}

/// The model-family matrix of `frame` (already through the user's recipe).
pub(crate) fn family_matrix(set: &FeatureSet, frame: &Frame) -> Result<Matrix, AutoMlError> {
    let out = set
        .recipe
        .transform(frame.clone(), Rows::Keep)
        .map_err(|e| AutoMlError::Data(format!("automatic features: {e}")))?;
    Ok(features::matrix_named(&out, &set.names))
}

impl ModelArtifact {
    pub fn width(&self) -> usize {
        match &self.task {
            Task::Multiclass { classes } => classes.len(),
            _ => 1,
        }
    }

    /// Scores every row of `frame` (any columns; the target may be absent), one output row
    /// per input row, in order.
    pub fn predict(&self, frame: &Frame) -> Result<Predictions, AutoMlError> {
        match &self.recipe {
            Some(r) => {
                let prepared = r
                    .transform(frame.clone(), Rows::Keep)
                    .map_err(|e| AutoMlError::Data(format!("recipe: {e}")))?;
                self.predict_prepared(&prepared)
            }
            None => self.predict_prepared(frame),
        }
    }

    /// Scores rows already through the user's recipe (or raw rows when there is none).
    pub fn predict_prepared(&self, frame: &Frame) -> Result<Predictions, AutoMlError> {
        let matrices = self
            .features
            .iter()
            .map(|s| family_matrix(s, frame))
            .collect::<Result<Vec<_>, _>>()?;
        let width = self.width();
        let total: f64 = self.members.iter().map(|m| m.weight).sum();
        let outputs: Vec<Vec<f64>> = self
            .members
            .iter()
            .map(|m| m.model.predict(&matrices[m.features]))
            .collect();
        let weighted: Vec<(f64, &[f64])> = self
            .members
            .iter()
            .zip(&outputs)
            .map(|(m, p)| (m.weight / total, p.as_slice()))
            .collect();
        let mut values = ensemble::combine(&self.task, self.blend, &weighted);
        values.resize(frame.rows() * width, 0.0);
        Ok(Predictions {
            rows: frame.rows(),
            width,
            values,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(text: &str, origin: &str) -> Result<Self, AutoMlError> {
        let mut m: ModelArtifact = serde_json::from_str(text)
            .map_err(|e| AutoMlError::Data(format!("{origin}: not a millrace model: {e}")))?;
        if m.format != FORMAT {
            return Err(AutoMlError::Data(format!(
                "{origin}: format `{}`, expected `{FORMAT}`",
                m.format
            )));
        }
        // Fitted recipes rebuild their lookup tables on load.
        let reload = |r: &FittedRecipe| FittedRecipe::from_json(&r.to_json(), origin);
        if let Some(r) = &m.recipe {
            m.recipe = Some(reload(r).map_err(|e| AutoMlError::Data(e.to_string()))?);
        }
        for s in &mut m.features {
            s.recipe = reload(&s.recipe).map_err(|e| AutoMlError::Data(e.to_string()))?;
        }
        Ok(m)
    }
}
