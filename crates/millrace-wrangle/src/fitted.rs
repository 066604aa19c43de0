//! `FittedRecipe`: a recipe with what each step learnt, the columns it was fitted on and the
//! features it produces. It is what `millrace wrangle --fit-only` writes and what model
//! artifacts embed; loading it back transforms bit for bit as before.

use std::path::Path;

use arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::error::WrangleError;
use crate::frame::{Frame, Kind, Name};
use crate::recipe::Recipe;
use crate::steps::{self, FittedStep, Rows};

pub const FORMAT: &str = "millrace.fitted-recipe.v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldSpec {
    pub name: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedRecipe {
    pub format: String,
    pub recipe: Recipe,
    /// Columns the recipe was fitted on; data to transform is read as these (absent columns
    /// are missing values, others are ignored).
    pub input: Vec<FieldSpec>,
    pub steps: Vec<FittedStep>,
    /// Columns it produces, in order (the target included when it was present).
    pub output: Vec<FieldSpec>,
    pub rows_in: usize,
    pub rows_out: usize,
    #[serde(skip)]
    input_names: Vec<(Name, Kind)>,
    #[serde(skip)]
    output_names: Vec<(Name, Kind)>,
}

fn names(fields: &[FieldSpec]) -> Vec<(Name, Kind)> {
    fields
        .iter()
        .map(|f| (Name::from(f.name.as_str()), f.kind))
        .collect()
}

fn specs(kinds: &[(Name, Kind)]) -> Vec<FieldSpec> {
    kinds
        .iter()
        .map(|(n, k)| FieldSpec {
            name: n.to_string(),
            kind: *k,
        })
        .collect()
}

impl Recipe {
    /// Fits every step in order on `frame` (each step sees the previous steps' output) and
    /// returns the fitted recipe with the transformed training data.
    pub fn fit(&self, mut frame: Frame) -> Result<(FittedRecipe, Frame), WrangleError> {
        let input = frame.kinds();
        let rows_in = frame.rows();
        if let Some(t) = &self.target
            && frame.index(t).is_none()
        {
            return Err(WrangleError::Data {
                message: format!(
                    "target column `{t}` not found (columns: {})",
                    frame.names().join(", ")
                ),
            });
        }
        let mut fitted = Vec::with_capacity(self.steps.len());
        for (i, step) in self.steps.iter().enumerate() {
            let f = steps::fit(step, &mut frame, self.target.as_deref()).map_err(|error| {
                WrangleError::Step {
                    step: i + 1,
                    op: step.op(),
                    error,
                }
            })?;
            fitted.push(f);
        }
        let output = frame.kinds();
        let recipe = FittedRecipe {
            format: FORMAT.to_owned(),
            recipe: self.clone(),
            input: specs(&input),
            steps: fitted,
            output: specs(&output),
            rows_in,
            rows_out: frame.rows(),
            input_names: input,
            output_names: output,
        };
        Ok((recipe, frame))
    }
}

impl FittedRecipe {
    pub fn save(&self, path: &Path) -> Result<(), WrangleError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| WrangleError::State {
            origin: path.display().to_string(),
            message: e.to_string(),
        })?;
        std::fs::write(path, text)?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self, WrangleError> {
        let text = std::fs::read_to_string(path).map_err(|e| WrangleError::State {
            origin: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    pub fn from_json(text: &str, origin: &str) -> Result<Self, WrangleError> {
        let mut r: FittedRecipe = serde_json::from_str(text).map_err(|e| WrangleError::State {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?;
        if r.format != FORMAT {
            return Err(WrangleError::State {
                origin: origin.to_owned(),
                message: format!("format `{}`, expected `{FORMAT}`", r.format),
            });
        }
        r.input_names = names(&r.input);
        r.output_names = names(&r.output);
        Ok(r)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn target(&self) -> Option<&str> {
        self.recipe.target.as_deref()
    }

    /// Output columns other than the target: what a model is trained on.
    pub fn features(&self) -> impl Iterator<Item = &FieldSpec> {
        let t = self.target();
        self.output
            .iter()
            .filter(move |f| Some(f.name.as_str()) != t)
    }

    pub fn input_fields(&self) -> &[(Name, Kind)] {
        &self.input_names
    }

    fn run(&self, mut frame: Frame, rows: Rows) -> Result<Frame, WrangleError> {
        for (i, s) in self.steps.iter().enumerate() {
            s.apply(&mut frame, rows)
                .map_err(|error| WrangleError::Step {
                    step: i + 1,
                    op: s.op(),
                    error,
                })?;
        }
        Ok(frame.select(&self.output_names))
    }

    /// Transforms a frame of any columns: it is first read as the fitted input columns.
    pub fn transform(&self, frame: Frame, rows: Rows) -> Result<Frame, WrangleError> {
        self.run(frame.select(&self.input_names), rows)
    }

    pub fn transform_batches(
        &self,
        schema: &arrow::datatypes::Schema,
        batches: &[RecordBatch],
        rows: Rows,
    ) -> Result<RecordBatch, WrangleError> {
        let frame = Frame::from_batches(schema, batches)?;
        self.transform(frame, rows)?.to_batch()
    }

    /// One raw record (as it arrives on the stream: numbers may be strings, fields may be
    /// missing) to its features, through the same steps as a batch. Row-removing steps do not
    /// apply: a record sent for scoring is always scored.
    pub fn transform_record(
        &self,
        record: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Frame, WrangleError> {
        self.run(Frame::from_record(record, &self.input_names), Rows::Keep)
    }
}
