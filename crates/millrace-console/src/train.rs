//! Training from the console: a lake folder, the column to predict, the model's name, the
//! metric, quick or best with its time budget; then the training's page, where the
//! leaderboard fills in as candidates finish (live over server-sent events, or by the page
//! refreshing itself without JavaScript) and, once done, links to the version it saved.
//!
//! | route | page |
//! |---|---|
//! | `/train` | every training: dataset, target, model, state, progress |
//! | `/train/new?prefix=P` | the form: the folder's columns to choose the target from |
//! | `POST /train` | starts a training, then its page |
//! | `/train/{id}` | its state, progress, leaderboard so far and what training said |
//! | `/train/{id}/events` | `training` events: the training as JSON whenever it changes, until it is over |

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::models::escape_path;
use crate::pages::{arrival, page, refused};
use crate::predict::blocking;
use crate::{Shared, TrainRequest, TrainedCandidate, TrainingInfo};

/// How often `/train/{id}/events` looks for a change.
const POLL: Duration = Duration::from_millis(250);
/// `best` mode's budget unless the form says otherwise, and its bounds.
const DEFAULT_BUDGET_S: u64 = 60;
pub const BUDGET_S: std::ops::RangeInclusive<u64> = 10..=3_600;
/// Every metric training knows, with the problems it applies to (the form's choices).
pub const OBJECTIVES: [(&str, &str); 9] = [
    ("f1", "binary (default)"),
    ("accuracy", "binary; multiclass (default)"),
    ("balanced_accuracy", "binary"),
    ("auc", "binary"),
    ("log_loss", "binary, multiclass"),
    ("macro_f1", "multiclass"),
    ("rmse", "regression (default)"),
    ("mae", "regression"),
    ("r2", "regression"),
];

/// A training as a row of the list.
struct Row {
    info: TrainingInfo,
    started: String,
    /// `/models/NAME/vN` once saved.
    version_link: Option<String>,
}

fn row(info: TrainingInfo) -> Row {
    Row {
        started: arrival(info.started_ms),
        version_link: info
            .version
            .map(|v| format!("/models/{}/v{v}", escape_path(&info.asked.name))),
        info,
    }
}

#[derive(Template)]
#[template(path = "train.html")]
struct ListPage {
    title: &'static str,
    trainings: Vec<Row>,
}

/// `GET /train`.
pub(crate) async fn list(State(source): State<Shared>) -> Response {
    match blocking(&source, |s| s.trainings()).await {
        Ok(mut all) => {
            all.sort_by_key(|t| std::cmp::Reverse(t.started_ms));
            page(ListPage {
                title: "Training",
                trainings: all.into_iter().map(row).collect(),
            })
        }
        Err(e) => refused(e),
    }
}

#[derive(Template)]
#[template(path = "train_new.html")]
struct NewPage {
    title: &'static str,
    prefix: String,
    columns: Vec<String>,
    /// A model name to start from: the folder's last part, made a valid name.
    name: String,
    objectives: Vec<(&'static str, &'static str)>,
    budget_s: u64,
    budget_min: u64,
    budget_max: u64,
    /// The session's token, sent back by the form.
    csrf: String,
}

/// `GET /train/new?prefix=P`: the form; without a folder, a field to name one.
pub(crate) async fn new(
    State(source): State<Shared>,
    Query(q): Query<crate::pages::FolderQuery>,
    session: Option<axum::Extension<crate::auth::Session>>,
) -> Response {
    let prefix = q.prefix.unwrap_or_default();
    let columns = if prefix.trim_matches('/').is_empty() {
        Vec::new()
    } else {
        let p = prefix.clone();
        match blocking(&source, move |s| s.profile_columns(&p)).await {
            Ok(c) => c,
            Err(e) => return refused(e),
        }
    };
    page(NewPage {
        title: "Train a model",
        name: suggested_name(&prefix),
        prefix,
        columns,
        objectives: OBJECTIVES.to_vec(),
        csrf: crate::auth::csrf(&session),
        budget_s: DEFAULT_BUDGET_S,
        budget_min: *BUDGET_S.start(),
        budget_max: *BUDGET_S.end(),
    })
}

/// A model name from a folder (`prep/churn-curated/` → `churn-curated`): letters, digits,
/// `.`, `-` and `_` kept, anything else a `-`; no leading `.` or `-`.
fn suggested_name(prefix: &str) -> String {
    let last = prefix
        .trim_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_start_matches(['-', '.']).trim_end_matches('-');
    if name.is_empty() {
        "model".into()
    } else {
        name.chars().take(128).collect()
    }
}

#[derive(Deserialize)]
pub(crate) struct StartForm {
    prefix: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    objective: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    budget_s: String,
}

/// `POST /train`: starts the training, then its page.
pub(crate) async fn start(State(source): State<Shared>, Form(form): Form<StartForm>) -> Response {
    let budget_s = match form.budget_s.trim() {
        "" => DEFAULT_BUDGET_S,
        b => match b.parse() {
            Ok(n) => n,
            Err(_) => {
                return refused(crate::SourceError::Invalid(format!(
                    "time budget {b:?}: a whole number of seconds"
                )));
            }
        },
    };
    let request = TrainRequest {
        dataset: form.prefix,
        target: form.target.trim().to_owned(),
        name: form.name.trim().to_owned(),
        objective: Some(form.objective.trim().to_owned()).filter(|o| !o.is_empty()),
        mode: match form.mode.trim() {
            "" => "quick".into(),
            m => m.to_owned(),
        },
        budget_s,
    };
    match blocking(&source, move |s| s.start_training(&request)).await {
        Ok(id) => Redirect::to(&format!("/train/{}", escape_path(&id))).into_response(),
        Err(e) => refused(e),
    }
}

#[derive(Template)]
#[template(path = "train_job.html")]
struct JobPage {
    title: String,
    job: Row,
    ranked: Vec<TrainedCandidate>,
    /// Seconds since it started (while it runs).
    running_s: u64,
}

/// `GET /train/{id}`.
pub(crate) async fn job(State(source): State<Shared>, Path(id): Path<String>) -> Response {
    let i = id.clone();
    match blocking(&source, move |s| s.training(&i)).await {
        Ok(info) => {
            let running_s = if info.finished() {
                0
            } else {
                (millrace_common::time::now_ms() - info.started_ms).max(0) as u64 / 1000
            };
            page(JobPage {
                title: format!("Training {} on {}", info.asked.name, info.asked.dataset),
                ranked: info.ranked(),
                job: row(info),
                running_s,
            })
        }
        Err(e) => refused(e),
    }
}

/// What a `training` event carries: the training with its candidates ranked and the link to
/// the version once saved.
fn event_json(info: &TrainingInfo) -> String {
    let mut v = serde_json::to_value(info).unwrap_or_default();
    v["ranked"] = serde_json::to_value(info.ranked()).unwrap_or_default();
    v["version_link"] = serde_json::to_value(row(info.clone()).version_link).unwrap_or_default();
    v.to_string()
}

/// `GET /train/{id}/events`: the training whenever it changes, ending once it is over.
pub(crate) async fn events(
    State(source): State<Shared>,
    Path(id): Path<String>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    // (source, id, last JSON sent, over)
    let start = (source, id, String::new(), false);
    let stream = futures::stream::unfold(start, |(source, id, last, over)| async move {
        if over {
            return None;
        }
        loop {
            let i = id.clone();
            let info = match blocking(&source, move |s| s.training(&i)).await {
                Ok(info) => info,
                Err(e) => {
                    let event = Event::default().event("gone").data(e.to_string());
                    return Some((Ok(event), (source, id, last, true)));
                }
            };
            let json = event_json(&info);
            if json != last {
                let event = Event::default().event("training").data(json.clone());
                let over = info.finished();
                return Some((Ok(event), (source, id, json, over)));
            }
            tokio::time::sleep(POLL).await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suggested_name_is_the_folders_last_part_made_a_model_name() {
        assert_eq!(suggested_name("prep/churn-curated/"), "churn-curated");
        assert_eq!(suggested_name("raw"), "raw");
        assert_eq!(suggested_name("a/b c.d/"), "b-c.d");
        assert_eq!(suggested_name(""), "model");
        assert_eq!(suggested_name("/"), "model");
        assert_eq!(suggested_name("x/.hidden/"), "hidden");
        assert_eq!(suggested_name(&"x".repeat(200)).len(), 128);
    }

    #[test]
    fn the_leaderboard_ranks_by_the_metric_and_puts_a_missing_figure_last() {
        let c = |name: &str, cv| TrainedCandidate {
            name: name.into(),
            cv,
            seconds: 1.0,
        };
        let mut t = TrainingInfo {
            higher_is_better: true,
            candidates: vec![c("a", 0.7), c("b", f64::NAN), c("c", 0.9), c("d", 0.8)],
            ..TrainingInfo::default()
        };
        let names =
            |t: &TrainingInfo| -> Vec<String> { t.ranked().into_iter().map(|c| c.name).collect() };
        assert_eq!(names(&t), ["c", "d", "a", "b"]);
        t.higher_is_better = false;
        assert_eq!(names(&t), ["a", "d", "c", "b"]);
    }
}
