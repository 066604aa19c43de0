//! Errors of recipes: where in the recipe (step number, operation, key) and what is wrong.
//!
//! Mistakes in the recipe file are [`RecipeError`] (a `[[step]]` table's are [`StepSpecError`]),
//! found when it is read, before any data; a step that cannot be fitted on (or applied to) the
//! data it meets is a [`StepError`], wrapped in [`WrangleError::Step`] with its position. Each
//! variant names what a caller can act on — the key, the column, the value — and prints the
//! message a user reads. Wrapped errors are part of the outer message, not a `source`, so an
//! error chain prints each fact once.

use std::fmt;

use thiserror::Error;

use crate::steps::OPS;

#[derive(Debug, Error)]
pub enum WrangleError {
    /// The recipe file itself is wrong (found at load, before any data is read).
    #[error("{origin}: {error}")]
    Recipe { origin: String, error: RecipeError },

    /// A step cannot be fitted or applied to this data (a missing column, a string column where
    /// numbers are needed …).
    #[error("step {step} ({op}): {error}")]
    Step {
        step: usize,
        op: &'static str,
        error: StepError,
    },

    /// An expression in `filter` or `derive` does not parse or refers to something unknown.
    #[error("expression `{expr}`: {message}")]
    Expr { expr: String, message: String },

    #[error("{message}")]
    Data { message: String },

    #[error("fitted recipe {origin}: {message}")]
    State { origin: String, message: String },

    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),

    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What is wrong with a recipe file.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RecipeError {
    #[error("cannot read: {0}")]
    Read(String),

    /// Not TOML (the parser's message, with line and column).
    #[error("{0}")]
    Syntax(String),

    /// `name` or `target` is not a string.
    #[error("key `{0}` must be a string")]
    NotAString(&'static str),

    #[error("`step` must be an array of tables: write each as [[step]]")]
    StepsNotAnArray,

    #[error("unknown key `{0}` (a recipe has `name`, `target` and [[step]] tables)")]
    UnknownKey(String),

    #[error("{0}")]
    Step(#[from] StepSpecError),
}

/// Where a step sits: its 1-based number and its op; prints as `step 4 (bin)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepAt {
    pub step: usize,
    pub op: &'static str,
}

impl fmt::Display for StepAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {} ({})", self.step, self.op)
    }
}

/// A mistake in one `[[step]]` table.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StepSpecError {
    #[error("step {step}: must be a table ([[step]])")]
    NotATable { step: usize },

    #[error("step {step}: missing key `op` (one of {})", OPS.join(", "))]
    MissingOp { step: usize },

    #[error("step {step}: key `op` must be a string, got {got}")]
    OpNotAString { step: usize, got: String },

    #[error("step {step}: unknown op `{op}` (one of {})", OPS.join(", "))]
    UnknownOp { step: usize, op: String },

    /// A required key is absent; `expected` says what it should hold.
    #[error("{at}: missing key `{key}` ({expected})")]
    MissingKey {
        at: StepAt,
        key: &'static str,
        expected: String,
    },

    /// A key has the wrong type, or a value outside what it accepts.
    #[error("{at}: key `{key}` must be {expected}, got {got}")]
    BadValue {
        at: StepAt,
        key: &'static str,
        expected: String,
        got: String,
    },

    /// A key this op does not take (often a misspelling); `takes` lists the ones it does.
    #[error("{at}: unknown key `{key}` (this step takes: {})", takes.join(", "))]
    UnknownKey {
        at: StepAt,
        key: String,
        takes: Vec<&'static str>,
    },

    /// A `where` or `expr` that does not parse; `message` is the parser's.
    #[error("{at}: key `{key}`: {message}")]
    BadExpression {
        at: StepAt,
        key: &'static str,
        message: String,
    },

    #[error(
        "{at}: need 0 ≤ lower < upper ≤ 1 (quantiles) and z > 0, got lower = {lower}, upper = {upper}, z = {z}"
    )]
    ClipBounds {
        at: StepAt,
        lower: f64,
        upper: f64,
        z: f64,
    },

    #[error("{at}: degree must be 1 to {max}, got {degree}")]
    SplineDegree {
        at: StepAt,
        degree: usize,
        max: usize,
    },
}

/// Why a step cannot be fitted on, or applied to, a frame.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StepError {
    /// `available` lists the frame's columns (empty when applying a fitted step, whose input
    /// was checked at fit time).
    #[error("column `{column}` not found{}", list_columns(available))]
    UnknownColumn {
        column: String,
        available: Vec<String>,
    },

    /// A text column where the step needs numbers; `hint` says what to do.
    #[error("column `{column}` holds text; {hint}")]
    NeedsNumbers { column: String, hint: &'static str },

    #[error("column `{column}` holds numbers; text steps need text")]
    NeedsText { column: String },

    /// A fitted step meets a column of the other kind (a damaged state file).
    #[error("column `{column}` holds {found}, {expected}")]
    WrongKind {
        column: String,
        found: &'static str,
        expected: &'static str,
    },

    /// Every value is missing, so there is nothing to learn from; `purpose` says what for.
    #[error("column `{column}` has no values {purpose}")]
    NoValues {
        column: String,
        purpose: &'static str,
    },

    /// `impute` with a text constant for a number column.
    #[error("column `{column}` holds numbers; the constant {value:?} is text")]
    TextConstant { column: String, value: String },

    #[error("strategy = \"constant\" needs `value`")]
    MissingConstant,

    #[error("target encoding needs the recipe's `target`")]
    NoTarget,

    #[error("target column `{column}` not found{}", list_columns(available))]
    UnknownTarget {
        column: String,
        available: Vec<String>,
    },

    #[error(
        "target encoding needs a numeric or two-class target; `{column}` has {classes} classes"
    )]
    TargetClasses { column: String, classes: usize },

    #[error("`{column}` is the target; it cannot encode itself")]
    EncodesTarget { column: String },

    /// A step would write a column that is already there.
    #[error("{step} of `{from}` would write column `{column}`, which already exists")]
    ColumnExists {
        step: &'static str,
        from: String,
        column: String,
    },

    /// Evaluating a `filter` or `derive` expression failed.
    #[error("{0}")]
    Expr(String),
}

fn list_columns(available: &[String]) -> String {
    if available.is_empty() {
        String::new()
    } else {
        format!(" (columns: {})", available.join(", "))
    }
}

pub type Result<T, E = WrangleError> = std::result::Result<T, E>;
