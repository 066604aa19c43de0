//! `bin`: replace values by their bin number (0-based), with `bins` equal-width bins over the
//! training range or equal-count bins at its quantiles. Tied edges merge, so a long run of one
//! value never leaves an empty bin.

use serde::{Deserialize, Serialize};

use super::input::{need_num, num_mut};
use super::params::Params;
use super::{FittedStep, Step};
use crate::error::{StepError, StepSpecError};
use crate::frame::Frame;
use crate::stats::{quantile, sorted};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bin {
    Width,
    Quantile,
}

pub fn parse(p: &mut Params) -> Result<Step, StepSpecError> {
    Ok(Step::Bin {
        columns: p.columns()?,
        method: p.choice(
            "method",
            &[("width", Bin::Width), ("quantile", Bin::Quantile)],
            Some(Bin::Quantile),
        )?,
        bins: p.count("bins", 10, 2)?,
    })
}

/// The inner edges of each column's bins.
pub fn fit(
    frame: &Frame,
    columns: &[String],
    method: Bin,
    bins: usize,
) -> Result<FittedStep, StepError> {
    let mut out = Vec::new();
    for c in columns {
        let s = sorted(need_num(frame, c)?);
        let (Some(lo), Some(hi)) = (s.first().copied(), s.last().copied()) else {
            return Err(StepError::NoValues {
                column: c.clone(),
                purpose: "to fit on",
            });
        };
        let mut edges: Vec<f64> = (1..bins)
            .map(|i| {
                let f = i as f64 / bins as f64;
                match method {
                    Bin::Width => lo + (hi - lo) * f,
                    Bin::Quantile => quantile(&s, f),
                }
            })
            .collect();
        // Ties (a constant stretch of values) would make empty bins: merge them.
        edges.dedup();
        out.push((c.clone(), edges));
    }
    Ok(FittedStep::Bin { columns: out })
}

/// A value's bin is how many edges are ≤ it; missing stays missing.
pub fn apply(frame: &mut Frame, columns: &[(String, Vec<f64>)]) -> Result<(), StepError> {
    for (c, edges) in columns {
        for x in num_mut(frame, c)? {
            if !x.is_nan() {
                *x = edges.partition_point(|e| *e <= *x) as f64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fit;
    use super::super::testing::{numbers, one_step, recipe_error};
    use crate::frame::Column;

    #[test]
    fn values_become_bin_numbers_and_ties_merge_edges() {
        let mut f = numbers(&[("x", &[0.0, 1.0, 2.0, 3.0, 4.0, f64::NAN])]);
        let s = one_step("[[step]]\nop = \"bin\"\ncolumns = \"x\"\nmethod = \"width\"\nbins = 4\n");
        fit(&s, &mut f, None).unwrap();
        let Some(Column::Num(v)) = f.column("x") else {
            panic!()
        };
        assert_eq!(&v[..5], &[0.0, 1.0, 2.0, 3.0, 3.0]);
        assert!(v[5].is_nan());
        let mut f = numbers(&[("x", &[1.0, 1.0, 1.0, 1.0, 5.0])]);
        let s = one_step("[[step]]\nop = \"bin\"\ncolumns = \"x\"\nbins = 4\n");
        let fitted = fit(&s, &mut f, None).unwrap();
        assert_eq!(
            fitted,
            super::FittedStep::Bin {
                columns: vec![("x".into(), vec![1.0])]
            }
        );
    }

    #[test]
    fn a_bad_bin_count_names_the_key() {
        let e = recipe_error("[[step]]\nop = \"bin\"\ncolumns = [\"a\"]\nbins = \"ten\"\n");
        assert_eq!(
            e,
            "recipe r.toml: step 1 (bin): key `bins` must be an integer ≥ 2, got \"ten\""
        );
    }
}
