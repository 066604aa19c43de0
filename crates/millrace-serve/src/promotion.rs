//! The champion/challenger gate: whether a newly trained version (the challenger) replaces the
//! production version (the champion). A pure function of the two models and the challenger's
//! held-out test part: it reads no files and changes nothing, so `millrace up`'s retraining
//! loop, the CLI and the console get the same verdict and act on it themselves.
//!
//! The rule: no production version yet → promote. Gate off → promote. Otherwise both models
//! score the same rows: the challenger's test rows the champion did not train on (by ID), or
//! all of its test rows when IDs are unknown or fewer than [`MIN_FRESH_ROWS`] are fresh. The
//! challenger is kept as a candidate only when the champion scores strictly better (on the
//! challenger's objective, with the same task).

use std::collections::HashSet;

use millrace_automl::model::ModelArtifact;
use millrace_automl::train::Trained;
use millrace_wrangle::{Column, Frame};

use crate::error::ServeError;

/// Fewer fresh test rows than this and the gate compares on the whole test part.
pub const MIN_FRESH_ROWS: usize = 200;

/// The production version as the gate sees it.
pub enum Production<'a> {
    /// The gate is off: its scores are not needed.
    Ungated { version: u32 },
    /// The gate is on: the champion's model and the IDs of the rows it trained on.
    Gated {
        version: u32,
        model: &'a ModelArtifact,
        trained_on: &'a HashSet<String>,
    },
}

/// Both models' scores on the same rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The production version compared with.
    pub champion: u32,
    /// The challenger's objective (`auc`, `rmse`, …).
    pub metric: String,
    pub challenger_score: f64,
    pub champion_score: f64,
    /// Test rows both were scored on.
    pub rows: usize,
}

/// What happens to a challenger.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// No production version yet: the challenger wins by default (`score` on its test part).
    FirstModel { metric: String, score: f64 },
    /// The gate is off: the challenger replaces production version `champion` unjudged.
    GateOff { champion: u32 },
    /// The challenger scored at least as well as the champion.
    Promoted(Comparison),
    /// The champion scored better; the challenger stays a candidate.
    KeptAsCandidate(Comparison),
}

impl Verdict {
    /// Whether the challenger becomes the production version.
    pub fn promotes(&self) -> bool {
        !matches!(self, Verdict::KeptAsCandidate(_))
    }

    /// The verdict in words, for logs and the pipeline's decisions (`NAME:vN promoted: …`).
    pub fn describe(&self, name: &str, version: u32) -> String {
        match self {
            Verdict::FirstModel { metric, score } => format!(
                "{name}:v{version} promoted (first production model; test {metric} {score:.4})"
            ),
            Verdict::GateOff { .. } => format!("{name}:v{version} promoted (gate off)"),
            Verdict::KeptAsCandidate(c) => format!(
                "{name}:v{version} kept as candidate: {} {:.4} < production v{}'s {:.4} on the \
                 same {} fresh test rows",
                c.metric, c.challenger_score, c.champion, c.champion_score, c.rows
            ),
            Verdict::Promoted(c) => format!(
                "{name}:v{version} promoted: {} {:.4} ≥ production v{}'s {:.4} on the same {} \
                 fresh test rows",
                c.metric, c.challenger_score, c.champion, c.champion_score, c.rows
            ),
        }
    }
}

/// The challenger's row IDs in `frame` (its first ID column; none when it has no ID column),
/// as the gate matches them against the rows a champion trained on.
pub fn row_ids(model: &ModelArtifact, frame: &Frame) -> Vec<Option<String>> {
    match model.id_columns.first().and_then(|c| frame.column(c)) {
        Some(Column::Str(v)) => v.clone(),
        Some(Column::Num(v)) => v
            .iter()
            .map(|x| millrace_wrangle::frame::format_num(*x))
            .collect(),
        None => Vec::new(),
    }
}

/// Judges `challenger` against `production` (see the module docs). Errors only when the
/// champion cannot score the challenger's test rows.
pub fn judge(
    challenger: &Trained,
    production: Option<Production<'_>>,
) -> Result<Verdict, ServeError> {
    let model = &challenger.model;
    let metric = model.objective.name().to_owned();
    let (champion, champion_model, trained_on) = match production {
        None => {
            let score = model.objective.score(
                &model.task,
                &challenger.test_y,
                &challenger.test_values,
                model.threshold,
            );
            return Ok(Verdict::FirstModel { metric, score });
        }
        Some(Production::Ungated { version }) => {
            return Ok(Verdict::GateOff { champion: version });
        }
        Some(Production::Gated {
            version,
            model,
            trained_on,
        }) => (version, model, trained_on),
    };
    // The fresh holdout: the challenger's test rows the champion did not train on (all of them
    // when IDs are unknown or too few are fresh).
    let test_ids = row_ids(model, &challenger.test_frame);
    let n = challenger.test_y.len();
    let fresh: Vec<usize> = (0..n)
        .filter(|&i| {
            test_ids
                .get(i)
                .and_then(|x| x.as_deref())
                .is_none_or(|id| !trained_on.contains(id))
        })
        .collect();
    let rows: Vec<usize> = if fresh.len() >= MIN_FRESH_ROWS {
        fresh
    } else {
        (0..n).collect()
    };
    let frame = challenger.test_frame.take_rows(&rows);
    let y: Vec<f64> = rows.iter().map(|&i| challenger.test_y[i]).collect();
    let width = challenger.test_values.len() / n.max(1);
    let mine: Vec<f64> = rows
        .iter()
        .flat_map(|&i| {
            challenger.test_values[i * width..(i + 1) * width]
                .iter()
                .copied()
        })
        .collect();
    let challenger_score = model
        .objective
        .score(&model.task, &y, &mine, model.threshold);
    let p = champion_model.predict(&frame)?;
    let champion_score =
        model
            .objective
            .score(&model.task, &y, &p.values, champion_model.threshold);
    let comparison = Comparison {
        champion,
        metric,
        challenger_score,
        champion_score,
        rows: rows.len(),
    };
    let same_task = champion_model.task == model.task;
    Ok(
        if same_task && model.objective.better(champion_score, challenger_score) {
            Verdict::KeptAsCandidate(comparison)
        } else {
            Verdict::Promoted(comparison)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comparison() -> Comparison {
        Comparison {
            champion: 1,
            metric: "auc".into(),
            challenger_score: 0.81,
            champion_score: 0.83,
            rows: 250,
        }
    }

    #[test]
    fn verdicts_read_as_the_pipeline_logs_them() {
        let first = Verdict::FirstModel {
            metric: "auc".into(),
            score: 0.8,
        };
        assert!(first.promotes());
        assert_eq!(
            first.describe("churn", 1),
            "churn:v1 promoted (first production model; test auc 0.8000)"
        );
        assert_eq!(
            Verdict::GateOff { champion: 1 }.describe("churn", 2),
            "churn:v2 promoted (gate off)"
        );
        let kept = Verdict::KeptAsCandidate(comparison());
        assert!(!kept.promotes());
        assert_eq!(
            kept.describe("churn", 2),
            "churn:v2 kept as candidate: auc 0.8100 < production v1's 0.8300 on the same 250 \
             fresh test rows"
        );
        assert!(Verdict::Promoted(comparison()).promotes());
    }
}
