//! millrace-automl: the "Autopilot / Canvas quick build" stage.
//!
//! From a table and a target column to a model: problem detection (`problem`), seeded
//! stratified splits and folds (`split`), automatic features written as wrangle recipes
//! (`features`), model families — L-BFGS linear models (`linear`), histogram boosted trees and
//! forests (`trees`) —, the candidate list and random search (`search`), cross-validation and
//! refit (`train`), ensemble selection (`ensemble`), objectives and thresholds (`objective`,
//! `metrics`), the saved artifact (`model`) and the report (`report`, `report_html`).
//! `baseline` describes the training data's feature distributions, saved with the model for
//! drift monitoring.

pub mod baseline;
pub mod ensemble;
pub mod error;
pub mod explain;
pub mod features;
pub mod linear;
pub mod metrics;
pub mod model;
pub mod objective;
pub mod problem;
pub mod report;
pub mod report_html;
pub mod search;
pub mod split;
pub mod train;
pub mod trees;

pub use error::AutoMlError;
pub use millrace_wrangle::rng;
pub use problem::Task;
