//! Synthetic data generators, so the demo and load tests run with no download.

pub mod churn;
