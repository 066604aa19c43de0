//! The Data Quality and Insights report.
