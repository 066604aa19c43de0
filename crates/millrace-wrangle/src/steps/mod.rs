//! Recipe steps: one file per family, each holding its steps' parsing (from the `[[step]]`
//! table), fitting, applying and unit tests; this file holds the two enums that are the wire
//! format — [`Step`] as written in a recipe, [`FittedStep`] as learnt — and the matches that
//! forward to the families.
//!
//! | file | ops |
//! |---|---|
//! | `select.rs` | `drop`, `keep`, `rename` |
//! | `rows.rs` | `filter`, `drop_missing`, `dedupe` (the row-removing steps) |
//! | `cast.rs` | `cast` |
//! | `impute.rs` | `impute` |
//! | `encode.rs` | `encode` (one_hot, ordinal, target, frequency) |
//! | `scale.rs` | `scale` |
//! | `power.rs` | `log`, `power` |
//! | `clip.rs` | `clip` |
//! | `bin.rs` | `bin` |
//! | `spline.rs` | `spline` (and its B-spline basis) |
//! | `derive.rs` | `derive` |
//! | `text.rs` | `text` |
//!
//! `fit` learns what a step needs (means, category lists, quantiles …) and returns a
//! [`FittedStep`]; [`FittedStep::apply`] is the only code that turns inputs into features, for
//! a million rows or for one record. What happens to values a step did not see at fit time:
//!
//! | step | missing value | unknown category |
//! |---|---|---|
//! | `encode` one_hot | all its columns 0 | `{col}_other` = 1 (all 0 with `other = false`) |
//! | `encode` ordinal | missing | missing |
//! | `encode` target | the training mean | the training mean |
//! | `encode` frequency | missing | 0 |
//! | `scale`, `log`, `power`, `clip`, `bin`, `spline`, `derive` | missing | — |
//! | `impute` | filled | — |
//!
//! Numbers use NaN as "missing"; a model sees NaN (trees route it, linear models need `impute`).
//!
//! Both enums are serialised inside fitted recipes and model artifacts (`"op"` tag, snake_case
//! variant and field names): their variants and fields are a file format and must not change.

mod bin;
mod cast;
mod clip;
mod derive;
mod encode;
mod impute;
mod input;
mod params;
mod power;
mod rows;
mod scale;
mod select;
pub mod spline;
mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use bin::Bin;
pub use clip::Clip;
pub use encode::{Encode, Lookup, OneHot, folds};
pub use impute::{Impute, Scalar};
pub use scale::Scale;
pub use spline::Basis;

use crate::error::{StepAt, StepError, StepSpecError};
use crate::expr::Expr;
use crate::frame::{Frame, Kind};
use params::{Params, describe};

/// Whether row-removing steps (`filter`, `drop_missing`, `dedupe`) remove rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Preparing data (fit, `millrace wrangle`): rows are removed.
    Drop,
    /// Scoring: every record gets features, so row-removing steps are skipped.
    Keep,
}

/// Every op a recipe may use.
pub const OPS: &[&str] = &[
    "drop",
    "keep",
    "rename",
    "filter",
    "drop_missing",
    "cast",
    "impute",
    "encode",
    "scale",
    "log",
    "power",
    "clip",
    "bin",
    "spline",
    "derive",
    "text",
    "dedupe",
];

/// One step as written in the recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// Remove columns.
    Drop {
        columns: Vec<String>,
    },
    /// Keep only these columns (and the target), in this order.
    Keep {
        columns: Vec<String>,
    },
    /// `columns = { old = "new" }`.
    Rename {
        columns: BTreeMap<String, String>,
    },
    /// Keep rows where the predicate is true (a missing value makes it not true).
    Filter {
        predicate: Expr,
        text: String,
    },
    /// Drop rows with a missing value in `columns` (every column when empty).
    DropMissing {
        columns: Vec<String>,
    },
    /// Convert to numbers (unparsable text becomes missing) or to text.
    Cast {
        columns: Vec<String>,
        to: Kind,
    },
    Impute {
        columns: Vec<String>,
        strategy: Impute,
        value: Option<Scalar>,
    },
    Encode {
        columns: Vec<String>,
        method: Encode,
        /// one_hot: most frequent categories kept; the rest share one "other" column.
        max_categories: usize,
        /// one_hot: whether the rest get an `{column}_other` column (else they are all zeros).
        other: bool,
        /// ordinal: the order of categories (else sorted).
        categories: Option<Vec<String>>,
        /// target: weight of the overall mean, in rows.
        smoothing: f64,
        /// target: folds for the out-of-fold values the training rows get.
        folds: usize,
        seed: u64,
    },
    Scale {
        columns: Vec<String>,
        method: Scale,
    },
    /// sign(x)·ln(1 + |x|).
    Log {
        columns: Vec<String>,
    },
    /// sign(x)·|x|^exponent.
    Power {
        columns: Vec<String>,
        exponent: f64,
    },
    Clip {
        columns: Vec<String>,
        method: Clip,
        lower: f64,
        upper: f64,
        z: f64,
    },
    /// Replace values by their bin number (0-based).
    Bin {
        columns: Vec<String>,
        method: Bin,
        bins: usize,
    },
    /// Adds a cubic (by default) B-spline basis of each column beside it, `{column}_spline0`
    /// … `{column}_spline{knots + degree - 3}`, on knots at the training data's quantiles:
    /// smooth bends a linear model can weight, where `bin` gives it steps. A column with fewer
    /// than two distinct values gets no spline columns.
    Spline {
        columns: Vec<String>,
        knots: usize,
        degree: usize,
    },
    /// A new (or replaced) column from an expression.
    Derive {
        name: String,
        expr: Expr,
        text: String,
    },
    Text {
        columns: Vec<String>,
        lower: bool,
        trim: bool,
    },
    /// Drop repeated rows (all columns, or the listed ones), keeping the first.
    Dedupe {
        columns: Vec<String>,
    },
}

/// A step with what it learnt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FittedStep {
    Drop {
        columns: Vec<String>,
    },
    Keep {
        columns: Vec<String>,
    },
    Rename {
        columns: BTreeMap<String, String>,
    },
    Filter {
        predicate: Expr,
    },
    DropMissing {
        columns: Vec<String>,
    },
    Cast {
        columns: Vec<String>,
        to: Kind,
    },
    Impute {
        fills: Vec<(String, Scalar)>,
    },
    OneHot {
        columns: Vec<OneHot>,
    },
    Ordinal {
        columns: Vec<(String, Vec<String>)>,
    },
    /// Target and frequency encodings: a value per category.
    Lookup {
        columns: Vec<Lookup>,
    },
    /// `(x - center) / scale` per column: standard, min-max and robust scaling.
    Affine {
        columns: Vec<(String, f64, f64)>,
    },
    Log {
        columns: Vec<String>,
    },
    Power {
        columns: Vec<String>,
        exponent: f64,
    },
    Clip {
        columns: Vec<(String, f64, f64)>,
    },
    /// Inner bin edges: value → how many edges are ≤ it.
    Bin {
        columns: Vec<(String, Vec<f64>)>,
    },
    /// B-spline bases added beside their columns.
    Spline {
        columns: Vec<Basis>,
    },
    Derive {
        name: String,
        expr: Expr,
    },
    Text {
        columns: Vec<String>,
        lower: bool,
        trim: bool,
    },
    Dedupe {
        columns: Vec<String>,
    },
}

impl Step {
    pub fn op(&self) -> &'static str {
        match self {
            Step::Drop { .. } => "drop",
            Step::Keep { .. } => "keep",
            Step::Rename { .. } => "rename",
            Step::Filter { .. } => "filter",
            Step::DropMissing { .. } => "drop_missing",
            Step::Cast { .. } => "cast",
            Step::Impute { .. } => "impute",
            Step::Encode { .. } => "encode",
            Step::Scale { .. } => "scale",
            Step::Log { .. } => "log",
            Step::Power { .. } => "power",
            Step::Clip { .. } => "clip",
            Step::Bin { .. } => "bin",
            Step::Spline { .. } => "spline",
            Step::Derive { .. } => "derive",
            Step::Text { .. } => "text",
            Step::Dedupe { .. } => "dedupe",
        }
    }

    /// Whether the step removes rows (skipped when scoring records; see `Rows`).
    pub fn drops_rows(&self) -> bool {
        matches!(
            self,
            Step::Filter { .. } | Step::DropMissing { .. } | Step::Dedupe { .. }
        )
    }

    /// Reads step number `n` (1-based) from its `[[step]]` table.
    pub fn parse(t: &toml::Table, n: usize) -> Result<Step, StepSpecError> {
        let op = match t.get("op") {
            Some(toml::Value::String(s)) => s.as_str(),
            Some(v) => {
                return Err(StepSpecError::OpNotAString {
                    step: n,
                    got: describe(v),
                });
            }
            None => return Err(StepSpecError::MissingOp { step: n }),
        };
        let Some(op) = OPS.iter().copied().find(|o| *o == op) else {
            return Err(StepSpecError::UnknownOp {
                step: n,
                op: op.to_owned(),
            });
        };
        let mut p = Params::new(t, StepAt { step: n, op });
        let step = match op {
            "drop" => select::parse_drop(&mut p)?,
            "keep" => select::parse_keep(&mut p)?,
            "rename" => select::parse_rename(&mut p)?,
            "filter" => rows::parse_filter(&mut p)?,
            "drop_missing" => rows::parse_drop_missing(&mut p)?,
            "dedupe" => rows::parse_dedupe(&mut p)?,
            "cast" => cast::parse(&mut p)?,
            "impute" => impute::parse(&mut p)?,
            "encode" => encode::parse(&mut p)?,
            "scale" => scale::parse(&mut p)?,
            "log" => power::parse_log(&mut p)?,
            "power" => power::parse_power(&mut p)?,
            "clip" => clip::parse(&mut p)?,
            "bin" => bin::parse(&mut p)?,
            "spline" => spline::parse(&mut p)?,
            "derive" => derive::parse(&mut p)?,
            "text" => text::parse(&mut p)?,
            _ => unreachable!("op checked against OPS"),
        };
        p.finish()?;
        Ok(step)
    }
}

/// Fits `step` on `frame` and applies it there, as training needs: the frame afterwards is the
/// training data for the next step. Target encoding gives the training rows out-of-fold values
/// (a row's own target never shapes its feature); `FittedStep::apply` uses the full-data means.
pub fn fit(step: &Step, frame: &mut Frame, target: Option<&str>) -> Result<FittedStep, StepError> {
    let fitted = match step {
        Step::Drop { columns } => select::fit_drop(frame, columns)?,
        Step::Keep { columns } => select::fit_keep(frame, columns, target)?,
        Step::Rename { columns } => select::fit_rename(frame, columns)?,
        Step::Filter { predicate, .. } => rows::fit_filter(frame, predicate)?,
        Step::DropMissing { columns } => rows::fit_drop_missing(frame, columns)?,
        Step::Dedupe { columns } => rows::fit_dedupe(frame, columns)?,
        Step::Cast { columns, to } => cast::fit(frame, columns, *to)?,
        Step::Impute {
            columns,
            strategy,
            value,
        } => impute::fit(frame, columns, *strategy, value.as_ref())?,
        Step::Encode {
            columns,
            method,
            max_categories,
            other,
            categories,
            smoothing,
            folds,
            seed,
        } => match method {
            Encode::OneHot => encode::fit_one_hot(frame, columns, *max_categories, *other)?,
            Encode::Ordinal => encode::fit_ordinal(frame, columns, categories.as_deref())?,
            Encode::Frequency => encode::fit_frequency(frame, columns)?,
            // Transforms its training rows itself, with out-of-fold values.
            Encode::Target => {
                return encode::fit_target(frame, columns, target, *smoothing, *folds, *seed);
            }
        },
        Step::Scale { columns, method } => scale::fit(frame, columns, *method)?,
        Step::Log { columns } => power::fit_log(frame, columns)?,
        Step::Power { columns, exponent } => power::fit_power(frame, columns, *exponent)?,
        Step::Clip {
            columns,
            method,
            lower,
            upper,
            z,
        } => clip::fit(frame, columns, *method, (*lower, *upper), *z)?,
        Step::Bin {
            columns,
            method,
            bins,
        } => bin::fit(frame, columns, *method, *bins)?,
        Step::Spline {
            columns,
            knots,
            degree,
        } => spline::fit(frame, columns, *knots, *degree)?,
        Step::Derive { name, expr, .. } => derive::fit(frame, name, expr)?,
        Step::Text {
            columns,
            lower,
            trim,
        } => text::fit(frame, columns, *lower, *trim)?,
    };
    fitted.apply(frame, Rows::Drop)?;
    Ok(fitted)
}

impl FittedStep {
    pub fn op(&self) -> &'static str {
        match self {
            FittedStep::Drop { .. } => "drop",
            FittedStep::Keep { .. } => "keep",
            FittedStep::Rename { .. } => "rename",
            FittedStep::Filter { .. } => "filter",
            FittedStep::DropMissing { .. } => "drop_missing",
            FittedStep::Cast { .. } => "cast",
            FittedStep::Impute { .. } => "impute",
            FittedStep::OneHot { .. } | FittedStep::Ordinal { .. } | FittedStep::Lookup { .. } => {
                "encode"
            }
            FittedStep::Affine { .. } => "scale",
            FittedStep::Log { .. } => "log",
            FittedStep::Power { .. } => "power",
            FittedStep::Clip { .. } => "clip",
            FittedStep::Bin { .. } => "bin",
            FittedStep::Spline { .. } => "spline",
            FittedStep::Derive { .. } => "derive",
            FittedStep::Text { .. } => "text",
            FittedStep::Dedupe { .. } => "dedupe",
        }
    }

    /// Whether the step removes rows (it does nothing under `Rows::Keep`).
    pub fn drops_rows(&self) -> bool {
        matches!(
            self,
            FittedStep::Filter { .. } | FittedStep::DropMissing { .. } | FittedStep::Dedupe { .. }
        )
    }

    /// Applies the fitted step. Columns a step names are present (a fitted recipe first gives
    /// its input every column it was fitted on), so errors here mean a damaged state file.
    pub fn apply(&self, frame: &mut Frame, rows: Rows) -> Result<(), StepError> {
        if rows == Rows::Keep && self.drops_rows() {
            return Ok(());
        }
        match self {
            FittedStep::Drop { columns } => select::apply_drop(frame, columns),
            FittedStep::Keep { columns } => select::apply_keep(frame, columns),
            FittedStep::Rename { columns } => select::apply_rename(frame, columns),
            FittedStep::Filter { predicate } => rows::apply_filter(frame, predicate)?,
            FittedStep::DropMissing { columns } => rows::apply_drop_missing(frame, columns),
            FittedStep::Dedupe { columns } => rows::apply_dedupe(frame, columns),
            FittedStep::Cast { columns, to } => cast::apply(frame, columns, *to),
            FittedStep::Impute { fills } => impute::apply(frame, fills)?,
            FittedStep::OneHot { columns } => encode::apply_one_hot(frame, columns)?,
            FittedStep::Ordinal { columns } => encode::apply_ordinal(frame, columns)?,
            FittedStep::Lookup { columns } => encode::apply_lookup(frame, columns)?,
            FittedStep::Affine { columns } => scale::apply(frame, columns)?,
            FittedStep::Log { columns } => power::apply_log(frame, columns)?,
            FittedStep::Power { columns, exponent } => {
                power::apply_power(frame, columns, *exponent)?
            }
            FittedStep::Clip { columns } => clip::apply(frame, columns)?,
            FittedStep::Bin { columns } => bin::apply(frame, columns)?,
            FittedStep::Spline { columns } => spline::apply(frame, columns)?,
            FittedStep::Derive { name, expr } => derive::apply(frame, name, expr)?,
            FittedStep::Text {
                columns,
                lower,
                trim,
            } => text::apply(frame, columns, *lower, *trim),
        }
        Ok(())
    }
}

/// Helpers for the families' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::frame::{Column, Frame};
    use crate::recipe::Recipe;

    /// The error of loading recipe `text` (named `recipe r.toml`), as a user reads it.
    pub fn recipe_error(text: &str) -> String {
        Recipe::parse(text, "recipe r.toml")
            .unwrap_err()
            .to_string()
    }

    /// The only step of recipe `text`.
    pub fn one_step(text: &str) -> super::Step {
        let mut r = Recipe::parse(text, "r").unwrap();
        assert_eq!(r.steps.len(), 1);
        r.steps.remove(0)
    }

    /// A frame of number columns.
    pub fn numbers(cols: &[(&str, &[f64])]) -> Frame {
        let mut f = Frame::new(cols.first().map_or(0, |c| c.1.len()));
        for (name, v) in cols {
            f.set((*name).into(), Column::Num(v.to_vec()));
        }
        f
    }

    /// A frame of text columns (`None` = missing).
    pub fn texts(cols: &[(&str, &[Option<&str>])]) -> Frame {
        let mut f = Frame::new(cols.first().map_or(0, |c| c.1.len()));
        for (name, v) in cols {
            let v = v.iter().map(|s| s.map(str::to_owned)).collect();
            f.set((*name).into(), Column::Str(v));
        }
        f
    }
}
