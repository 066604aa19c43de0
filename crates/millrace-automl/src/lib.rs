//! millrace-automl: the "Autopilot / Canvas quick build" stage.
//!
//! Built so far: problem detection (`problem`), seeded stratified splits and folds (`split`),
//! metrics and F1 threshold tuning (`metrics`), regularised linear models fitted with L-BFGS
//! (`linear`), automatic features written as wrangle recipes (`features`), and the
//! cross-validated linear baseline (`quick`). Still to come (issue 6): gradient-boosted and
//! randomised trees, the search within a time budget, ensemble selection, model artifacts and
//! `millrace train` / `predict`.

pub mod ensemble;
pub mod error;
pub mod features;
pub mod linear;
pub mod metrics;
pub mod model;
pub mod objective;
pub mod problem;
pub mod quick;
pub mod report;
pub mod report_html;
pub mod search;
pub mod split;
pub mod train;
pub mod trees;

pub use error::AutoMlError;
pub use millrace_wrangle::rng;
pub use problem::Task;
