//! millrace-wrangle: the "Data Wrangler" stage.
//!
//! - Recipes: a TOML file of ordered steps (drop, filter, impute, encode, scale, …). `fit` learns
//!   each step's state on training data; the fitted recipe then transforms a whole Arrow batch or
//!   one raw JSON record through the same code, so the endpoint computes exactly the features the
//!   model was trained on. The fitted recipe serialises to JSON and travels inside model
//!   artifacts. Each step family (parsing, fitting, applying) is a file under `steps/`.
//! - The data-quality report (`profile`): per-column statistics, correlations, each feature's
//!   power for the target, warnings, and a quick model's column impact, as JSON and as a
//!   self-contained HTML page.
//! - `stats`: the quantile, AUC and positive-class rule that recipes, the report and the
//!   AutoML trainer share.

pub mod error;
pub mod expr;
pub mod fitted;
pub mod frame;
pub mod profile;
pub mod recipe;
pub mod rng;
pub mod stats;
pub mod steps;

pub use error::WrangleError;
pub use fitted::FittedRecipe;
pub use frame::{Column, Frame, Kind};
pub use recipe::{Recipe, Step};
pub use steps::{FittedStep, Rows};
