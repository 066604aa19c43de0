//! The registry's pages: every model with its production version, a model's versions and
//! stages, and a version's training measurements (`metrics.json`): test and cross-validated
//! metrics, the confusion matrix at the chosen threshold, the leaderboard, column impact as
//! bars and the ROC curve, both drawn as SVG on the server.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::pages::{arrival, error, page, refused};
use crate::{ModelSummary, Shared};

#[derive(Template)]
#[template(path = "models.html")]
struct Models {
    title: &'static str,
    models: Vec<ModelSummary>,
}

pub(crate) async fn models(State(source): State<Shared>) -> Response {
    match source.models() {
        Ok(models) => page(Models {
            title: "Models",
            models,
        }),
        Err(e) => refused(e),
    }
}

/// A version row: its summary and when it was trained, as text.
struct VersionRow {
    version: u32,
    stage: String,
    created: String,
    headline: String,
}

#[derive(Template)]
#[template(path = "model.html")]
struct ModelPage {
    title: String,
    production: Option<u32>,
    versions: Vec<VersionRow>,
    /// What the last promote or rollback did, from the redirect's query.
    note: Option<String>,
    /// The session's token, sent back by the forms.
    csrf: String,
}

/// The redirect after a promote or rollback says what happened.
#[derive(Deserialize, Default)]
pub(crate) struct Done {
    promoted: Option<u32>,
    replaced: Option<u32>,
    rolled_back: Option<u32>,
}

impl Done {
    fn note(&self) -> Option<String> {
        match (self.promoted, self.replaced, self.rolled_back) {
            (Some(v), Some(was), _) => {
                Some(format!("v{v} is now in production (it replaced v{was})."))
            }
            (Some(v), None, _) => Some(format!("v{v} is now in production.")),
            (_, _, Some(v)) => Some(format!("Rolled back: v{v} is in production again.")),
            _ => None,
        }
    }
}

/// The model named `name`, or the page saying why not.
fn find(source: &Shared, name: &str) -> Result<ModelSummary, Box<Response>> {
    let models = source.models().map_err(|e| Box::new(refused(e)))?;
    models.into_iter().find(|m| m.name == name).ok_or_else(|| {
        Box::new(error(
            StatusCode::NOT_FOUND,
            "No such model",
            format!("There is no model named {name:?}."),
        ))
    })
}

pub(crate) async fn model(
    State(source): State<Shared>,
    Path(name): Path<String>,
    Query(done): Query<Done>,
    session: Option<axum::Extension<crate::auth::Session>>,
) -> Response {
    let m = match find(&source, &name) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let versions = m
        .versions
        .iter()
        .rev()
        .map(|v| VersionRow {
            version: v.version,
            stage: v.stage.clone(),
            created: arrival(v.created_ms),
            headline: v
                .headline
                .iter()
                .map(|(k, x)| format!("{k} {x:.4}"))
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    page(ModelPage {
        title: m.name,
        production: m.production,
        versions,
        note: done.note(),
        csrf: crate::auth::csrf(&session),
    })
}

#[derive(Deserialize)]
pub(crate) struct PromoteForm {
    version: u32,
}

/// `POST /models/{name}/promote` (`version=N`): makes vN the production version, then back to
/// the model's page, which says what changed. Endpoints and scorers that follow the name
/// pick it up as they do after `millrace models promote`.
pub(crate) async fn promote(
    State(source): State<Shared>,
    Path(name): Path<String>,
    Form(form): Form<PromoteForm>,
) -> Response {
    let s = source.clone();
    let n = name.clone();
    let done = tokio::task::spawn_blocking(move || s.promote(&n, form.version)).await;
    match done {
        Ok(Ok(replaced)) => {
            let mut to = format!("/models/{}?promoted={}", escape_path(&name), form.version);
            if let Some(r) = replaced.filter(|r| *r != form.version) {
                to.push_str(&format!("&replaced={r}"));
            }
            Redirect::to(&to).into_response()
        }
        Ok(Err(e)) => refused(e),
        Err(e) => refused(crate::SourceError::Failed(format!("promoting: {e}"))),
    }
}

/// `POST /models/{name}/rollback`: the previous production version back.
pub(crate) async fn rollback(State(source): State<Shared>, Path(name): Path<String>) -> Response {
    let s = source.clone();
    let n = name.clone();
    match tokio::task::spawn_blocking(move || s.rollback(&n)).await {
        Ok(Ok(v)) => {
            Redirect::to(&format!("/models/{}?rolled_back={v}", escape_path(&name))).into_response()
        }
        Ok(Err(e)) => refused(e),
        Err(e) => refused(crate::SourceError::Failed(format!("rolling back: {e}"))),
    }
}

/// A model name as one URL path segment (registry names are letters, digits, `-`, `_` and
/// `.`, but a redirect must never carry anything else into a header).
pub(crate) fn escape_path(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A metric's name and value, as shown.
struct Metric {
    name: String,
    test: String,
    cv: String,
}

/// A leaderboard row.
struct Candidate {
    name: String,
    cv: String,
    test: String,
    weight: String,
    seconds: String,
}

/// A bar of the column-impact chart.
struct Bar {
    column: String,
    value: String,
    y: usize,
    width: usize,
}

#[derive(Template)]
#[template(path = "version.html")]
struct VersionPage {
    title: String,
    name: String,
    version: u32,
    stage: String,
    task: String,
    objective: String,
    threshold: String,
    rows: String,
    metrics: Vec<Metric>,
    /// tp, fp, fn, tn at the threshold (binary only).
    confusion: Option<[u64; 4]>,
    leaderboard: Vec<Candidate>,
    impact_title: String,
    bars: Vec<Bar>,
    bars_height: usize,
    /// The ROC curve as SVG polyline points in a 200 × 200 box.
    roc: String,
    /// The precision-recall curve's points, and the guessing line's height.
    pr: String,
    pr_guess: f64,
    slider: Option<Slider>,
}

/// The threshold slider: the exact confusion counts at each cut training recorded.
struct Slider {
    /// `[[threshold, tp, fp], …]`, highest threshold first.
    cuts: String,
    count: usize,
    /// The cut the chosen threshold falls on.
    start: usize,
    positives: u64,
    negatives: u64,
}

/// The slider, when metrics.json has the cuts and a binary confusion matrix.
fn slider(m: &Value, threshold: f64) -> Option<Slider> {
    let cuts: Vec<(f64, u64, u64)> = m["curves"]["cuts"]
        .as_array()?
        .iter()
        .filter_map(|c| Some((c[0].as_f64()?, c[1].as_u64()?, c[2].as_u64()?)))
        .collect();
    let [tp, fp, fn_, tn] = confusion(m)?;
    if cuts.is_empty() {
        return None;
    }
    // Positive at probability ≥ threshold: the lowest cut still at or above it.
    let start = cuts.iter().rposition(|c| c.0 >= threshold).unwrap_or(0);
    Some(Slider {
        cuts: serde_json::to_string(&cuts).ok()?,
        count: cuts.len(),
        start,
        positives: tp + fn_,
        negatives: fp + tn,
    })
}

fn fmt(v: Option<&Value>) -> String {
    match v.and_then(Value::as_f64) {
        Some(x) => format!("{x:.4}"),
        None => "—".into(),
    }
}

/// The metrics test and cross-validation both report, in the order training prints them.
fn metrics(m: &Value) -> Vec<Metric> {
    let (test, cv) = (&m["test"], &m["cv"]);
    let Some(names) = test.as_object() else {
        return Vec::new();
    };
    names
        .iter()
        .filter(|(_, v)| v.is_number())
        .map(|(k, v)| Metric {
            name: k.clone(),
            test: fmt(Some(v)),
            cv: fmt(cv.get(k)),
        })
        .collect()
}

fn confusion(m: &Value) -> Option<[u64; 4]> {
    let c = m["test"].get("confusion")?;
    let n = |k: &str| c.get(k).and_then(Value::as_u64);
    Some([n("tp")?, n("fp")?, n("fn")?, n("tn")?])
}

fn leaderboard(m: &Value) -> Vec<Candidate> {
    m["leaderboard"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|c| Candidate {
            name: c["name"].as_str().unwrap_or("?").to_owned(),
            cv: fmt(c.get("cv")),
            test: fmt(c.get("test")),
            weight: c["weight"]
                .as_f64()
                .map_or("—".into(), |w| format!("{w:.2}")),
            seconds: c["fit_seconds"]
                .as_f64()
                .map_or("—".into(), |s| format!("{s:.2}")),
        })
        .collect()
}

/// Bar height and the chart's widest bar, in SVG units.
const BAR: usize = 22;
const BAR_WIDTH: usize = 300;

/// Column impact: mean |contribution| where the model has explanations, else the permutation
/// figure.
fn bars(m: &Value) -> (String, Vec<Bar>) {
    let (title, items, key) = match m["contributions"].as_array() {
        Some(c) if !c.is_empty() => ("mean |contribution| to the margin", c, "mean_abs"),
        _ => match m["impact"].as_array() {
            Some(i) => ("metric drop when the column is shuffled", i, "drop"),
            None => return (String::new(), Vec::new()),
        },
    };
    let values: Vec<(String, f64)> = items
        .iter()
        .filter_map(|i| Some((i["column"].as_str()?.to_owned(), i[key].as_f64()?)))
        .take(15)
        .collect();
    let top = values
        .iter()
        .map(|(_, v)| v.abs())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let bars = values
        .into_iter()
        .enumerate()
        .map(|(i, (column, v))| Bar {
            column,
            value: format!("{v:.4}"),
            y: i * BAR,
            width: ((v.abs() / top) * BAR_WIDTH as f64).round() as usize,
        })
        .collect();
    (title.to_owned(), bars)
}

/// `x,y x,y …` of the ROC curve in a 200 × 200 box (y up).
fn roc(m: &Value) -> String {
    m["curves"]["roc"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
        .map(|(fpr, tpr)| format!("{:.1},{:.1}", fpr * 200.0, 200.0 - tpr * 200.0))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The precision-recall curve in the same box, from the test part's exact counts at each cut
/// (`curves.cuts`): `x,y …` (recall across, precision up) and the height of a classifier
/// that guesses (precision = the positives' share). Empty without cuts.
fn pr(m: &Value) -> (String, f64) {
    let Some([tp, fp, fn_, tn]) = confusion(m) else {
        return (String::new(), 0.0);
    };
    let (pos, all) = (tp + fn_, tp + fp + fn_ + tn);
    if pos == 0 || all == 0 {
        return (String::new(), 0.0);
    }
    let points: Vec<String> = m["curves"]["cuts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .filter_map(|c| Some((c[1].as_u64()?, c[2].as_u64()?)))
        .filter(|(tp, fp)| tp + fp > 0)
        .map(|(tp, fp)| {
            let recall = tp as f64 / pos as f64;
            let precision = tp as f64 / (tp + fp) as f64;
            format!("{:.1},{:.1}", recall * 200.0, 200.0 - precision * 200.0)
        })
        .collect();
    let guess = 200.0 - pos as f64 / all as f64 * 200.0;
    (points.join(" "), guess)
}

pub(crate) async fn version(
    State(source): State<Shared>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    let m = match find(&source, &name) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let Some(v) = version
        .strip_prefix('v')
        .and_then(|n| n.parse::<u32>().ok())
        .and_then(|n| m.versions.iter().find(|v| v.version == n))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "No such version",
            format!("Model {name:?} has no version {version:?} (versions are v1, v2, …)."),
        );
    };
    let metrics_json = match source.model_metrics(&name, v.version) {
        Ok(j) => j,
        Err(e) => return refused(e),
    };
    let (pr, pr_guess) = pr(&metrics_json);
    let (impact_title, bars) = bars(&metrics_json);
    page(VersionPage {
        title: format!("{name}:v{}", v.version),
        version: v.version,
        stage: v.stage.clone(),
        task: metrics_json["task"]["kind"]
            .as_str()
            .unwrap_or("?")
            .to_owned(),
        objective: metrics_json["objective"].as_str().unwrap_or("?").to_owned(),
        threshold: fmt(metrics_json.get("threshold")),
        rows: format!(
            "{} training rows, {} test rows",
            metrics_json["train_rows"].as_u64().unwrap_or(0),
            metrics_json["test_rows"].as_u64().unwrap_or(0)
        ),
        metrics: metrics(&metrics_json),
        confusion: confusion(&metrics_json),
        leaderboard: leaderboard(&metrics_json),
        impact_title,
        bars_height: bars.len() * BAR + 4,
        bars,
        roc: roc(&metrics_json),
        pr,
        pr_guess,
        slider: slider(
            &metrics_json,
            metrics_json["threshold"].as_f64().unwrap_or(0.5),
        ),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_precision_recall_curve_is_the_test_parts_counts_at_each_cut() {
        // 5 positives, 6 negatives.
        let m = json!({
            "test": {"confusion": {"tp": 3, "fp": 1, "tn": 5, "fn": 2}},
            "curves": {"cuts": [[0.99, 0, 0], [0.9, 1, 0], [0.6, 4, 1], [0.2, 5, 6]]}
        });
        let (points, guess) = pr(&m);
        // recall 1/5 at precision 1; 4/5 at 4/5; 5/5 at 5/11 (the cut with nothing predicted
        // positive has no precision and is left out).
        assert_eq!(points, "40.0,0.0 160.0,40.0 200.0,109.1");
        assert!((guess - (200.0 - 5.0 / 11.0 * 200.0)).abs() < 1e-9);
    }

    #[test]
    fn metrics_confusion_bars_and_curve_come_from_metrics_json() {
        let m = json!({
            "test": {"kind": "binary", "auc": 0.86, "f1": 0.65,
                     "confusion": {"tp": 3, "fp": 1, "tn": 5, "fn": 2}},
            "cv": {"auc": 0.85},
            "contributions": [{"column": "tenure", "mean_abs": 0.5},
                              {"column": "Contract", "mean_abs": -0.25}],
            "curves": {"roc": [[0.0, 0.0], [0.5, 0.75], [1.0, 1.0]]}
        });
        let ms = metrics(&m);
        assert_eq!(ms.len(), 2);
        assert_eq!(
            (ms[0].name.as_str(), ms[0].test.as_str()),
            ("auc", "0.8600")
        );
        assert_eq!((ms[0].cv.as_str(), ms[1].cv.as_str()), ("0.8500", "—"));
        assert_eq!(confusion(&m), Some([3, 1, 2, 5]));
        let (title, b) = bars(&m);
        assert!(title.starts_with("mean |contribution|"));
        assert_eq!(
            (b[0].width, b[1].width, b[1].y),
            (BAR_WIDTH, BAR_WIDTH / 2, BAR)
        );
        assert_eq!(roc(&m), "0.0,200.0 100.0,50.0 200.0,0.0");
        assert_eq!(pr(&m).0, "", "no cuts, no curve");
        assert!(confusion(&json!({"test": {"kind": "regression"}})).is_none());
        assert!(slider(&m, 0.5).is_none(), "no cuts, no slider");
        let mut m = m;
        m["curves"]["cuts"] = json!([[0.9, 1, 0], [0.6, 3, 1], [0.2, 5, 6]]);
        let s = slider(&m, 0.5).unwrap();
        assert_eq!((s.count, s.start, s.positives, s.negatives), (3, 1, 5, 6));
        assert_eq!(s.cuts, "[[0.9,1,0],[0.6,3,1],[0.2,5,6]]");
    }
}
