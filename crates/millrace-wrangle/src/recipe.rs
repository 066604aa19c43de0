//! The recipe file: ordered `[[step]]` tables, validated at load.
//!
//! Steps are read key by key rather than through serde's derive so that every mistake names
//! the step number, its `op` and the key (`recipe churn.toml, step 4 (bin): key `bins` must be
//! a positive integer, got "ten"`), and an unknown key is an error instead of being ignored.
//! Each op's keys are read by its family in `steps/`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{RecipeError, StepSpecError, WrangleError};
pub use crate::steps::{Bin, Clip, Encode, Impute, OPS, Scalar, Scale, Step};

/// A recipe: what to learn from training data and how to turn rows into features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub name: Option<String>,
    /// The column to predict: never transformed unless a step names it, and what target
    /// encoding learns from.
    pub target: Option<String>,
    pub steps: Vec<Step>,
}

impl Recipe {
    pub fn load(path: &Path) -> Result<Recipe, WrangleError> {
        let origin = format!("recipe {}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| WrangleError::Recipe {
            origin: origin.clone(),
            error: RecipeError::Read(e.to_string()),
        })?;
        Recipe::parse(&text, &origin)
    }

    /// Parses and validates recipe text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Recipe, WrangleError> {
        Recipe::from_toml(text).map_err(|error| WrangleError::Recipe {
            origin: origin.to_owned(),
            error,
        })
    }

    fn from_toml(text: &str) -> Result<Recipe, RecipeError> {
        let doc: toml::Table =
            toml::from_str(text).map_err(|e| RecipeError::Syntax(e.to_string()))?;
        let mut name = None;
        let mut target = None;
        let mut steps = Vec::new();
        for (key, value) in &doc {
            match key.as_str() {
                "name" => name = Some(string(value, "name")?),
                "target" => target = Some(string(value, "target")?),
                "step" => {
                    let list = value.as_array().ok_or(RecipeError::StepsNotAnArray)?;
                    for (i, v) in list.iter().enumerate() {
                        let t = v
                            .as_table()
                            .ok_or(StepSpecError::NotATable { step: i + 1 })?;
                        steps.push(Step::parse(t, i + 1)?);
                    }
                }
                other => return Err(RecipeError::UnknownKey(other.to_owned())),
            }
        }
        Ok(Recipe {
            name,
            target,
            steps,
        })
    }
}

fn string(v: &toml::Value, key: &'static str) -> Result<String, RecipeError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or(RecipeError::NotAString(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::testing::recipe_error;

    #[test]
    fn mistakes_name_the_step_and_key() {
        let e = recipe_error(
            "[[step]]\nop = \"drop\"\ncolumns = [\"a\"]\n[[step]]\nop = \"frobnicate\"\n",
        );
        assert!(
            e.starts_with("recipe r.toml: step 2: unknown op `frobnicate`"),
            "{e}"
        );
        let e = recipe_error("targte = \"x\"\n");
        assert!(e.contains("unknown key `targte`"), "{e}");
        let e = recipe_error("[[step]]\ncolumns = [\"a\"]\n");
        assert!(
            e.contains("step 1: missing key `op` (one of drop, keep"),
            "{e}"
        );
        let e = recipe_error("name = 3\n");
        assert_eq!(e, "recipe r.toml: key `name` must be a string");
    }

    #[test]
    fn errors_are_typed() {
        let Err(WrangleError::Recipe { error, .. }) =
            Recipe::parse("[[step]]\nop = \"scale\"\ncolumns = 4\n", "r")
        else {
            panic!()
        };
        let RecipeError::Step(StepSpecError::BadValue { at, key, .. }) = error else {
            panic!("{error:?}")
        };
        assert_eq!((at.step, at.op, key), (1, "scale", "columns"));
    }
}
