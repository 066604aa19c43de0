//! Predictions from the browser: a version's what-if form and batch prediction of a CSV.
//!
//! - `GET /models/{name}/v{N}/predict?COLUMN=VALUE…` renders a form with one field per input
//!   column (categories as choices, numbers with their training range), scores the record the
//!   form describes (missing fields take the training median or the most frequent category)
//!   and shows the prediction and every column's contribution to it as SVG bars. The URL is
//!   the record, so a what-if can be bookmarked or sent; with `_fragment=1` only the result is
//!   returned, which the page's script fetches as values change.
//! - `POST /models/{name}/v{N}/predict` with a CSV file (`multipart/form-data`, field `csv`)
//!   answers the CSV `millrace predict` writes, as a download.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value};

use crate::pages::{error, page, refused};
use crate::{Input, InputKind, Shared, SourceError};

/// Largest CSV upload for batch prediction.
pub const MAX_UPLOAD: usize = 64 << 20;
/// The query key that asks for the result alone (no column is named so in practice; a column
/// that is still gets its value, the key is only read as a flag).
const FRAGMENT: &str = "_fragment";

/// One field of the form.
struct Field {
    name: String,
    /// The HTML id (column names may hold anything).
    id: String,
    number: bool,
    value: String,
    /// A category's choices and whether each is the current value.
    choices: Vec<(String, bool)>,
    /// What training saw: the range, or how many categories.
    hint: String,
}

#[derive(Template)]
#[template(path = "predict.html")]
struct WhatIf {
    title: String,
    name: String,
    version: u32,
    fields: Vec<Field>,
    /// The rendered [`Outcome`].
    outcome: String,
    /// The session's token, sent back by the upload form.
    csrf: String,
}

/// A bar of the contribution chart.
struct Bar {
    label: String,
    /// The label cut to fit left of the chart (the table beside it has it whole).
    short: String,
    value: String,
    /// Left edge and width in SVG units; bars grow right (toward the predicted class or a
    /// higher value) or left from the centre line.
    x: usize,
    width: usize,
    y: usize,
    up: bool,
}

#[derive(Template)]
#[template(path = "outcome.html")]
struct Outcome {
    headline: String,
    detail: String,
    sum: String,
    bars: Vec<Bar>,
    height: usize,
    centre: usize,
    labels: usize,
    warnings: Vec<String>,
    error: Option<String>,
}

/// Row height, half the chart's bar span, and the centre line, in SVG units.
/// Labels end at `LABELS`; a value's text sits beyond its bar, so the longest bar on the left
/// still leaves room for it before the labels.
const ROW: usize = 22;
const HALF: usize = 120;
const CENTRE: usize = 440;
const LABELS: usize = 220;

/// `v3` → 3.
fn version_number(v: &str) -> Option<u32> {
    v.strip_prefix('v')?.parse().ok()
}

fn bad_version(name: &str, version: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "No such version",
        format!("Model {name:?} has no version {version:?} (versions are v1, v2, …)."),
    )
}

/// Runs a [`crate::Source`] call on a blocking thread (models load from disk; scoring is CPU).
pub(crate) async fn blocking<T: Send + 'static>(
    source: &Shared,
    f: impl FnOnce(&dyn crate::Source) -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    let s = source.clone();
    tokio::task::spawn_blocking(move || f(&*s))
        .await
        .map_err(|e| SourceError::Failed(format!("the console's worker failed: {e}")))?
}

/// A number as a form shows it: no trailing zeros, at most 6 significant decimals.
fn show(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_owned() }
}

/// The form's value of each input: what the query says, else the typical training value.
fn values(inputs: &[Input], query: &HashMap<String, String>) -> Vec<String> {
    inputs
        .iter()
        .map(|i| match query.get(&i.name) {
            Some(v) => v.clone(),
            None => match &i.kind {
                InputKind::Number { median, .. } => median.map(show).unwrap_or_default(),
                InputKind::Category { choices } => choices.first().cloned().unwrap_or_default(),
            },
        })
        .collect()
}

/// The record the endpoint scores: numbers as JSON numbers, blanks left out (missing).
fn record(inputs: &[Input], values: &[String]) -> Map<String, Value> {
    inputs
        .iter()
        .zip(values)
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(i, v)| {
            let v = v.trim();
            let value = match (&i.kind, v.parse::<f64>()) {
                (InputKind::Number { .. }, Ok(x)) if x.is_finite() => Value::from(x),
                _ => Value::from(v),
            };
            (i.name.clone(), value)
        })
        .collect()
}

fn fields(inputs: &[Input], values: &[String]) -> Vec<Field> {
    inputs
        .iter()
        .zip(values)
        .enumerate()
        .map(|(n, (i, v))| {
            let (number, choices, hint) = match &i.kind {
                InputKind::Number { range, .. } => (
                    true,
                    Vec::new(),
                    range.map_or("number".into(), |(a, b)| {
                        format!("number; training saw {} to {}", show(a), show(b))
                    }),
                ),
                InputKind::Category { choices } => {
                    let mut c: Vec<(String, bool)> =
                        choices.iter().map(|c| (c.clone(), c == v)).collect();
                    if !v.is_empty() && !choices.contains(v) {
                        c.push((v.clone(), true)); // a value from the URL training never saw
                    }
                    let hint = format!("{} categories in training", choices.len());
                    (false, c, hint)
                }
            };
            Field {
                name: i.name.clone(),
                id: format!("in-{n}"),
                number,
                value: v.clone(),
                choices,
                hint,
            }
        })
        .collect()
}

/// The result box for a prediction object (or the reason there is none).
fn outcome(scored: Result<Value, SourceError>, record: &Map<String, Value>) -> Outcome {
    let p = match scored {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                headline: String::new(),
                detail: String::new(),
                sum: String::new(),
                bars: Vec::new(),
                height: 0,
                centre: CENTRE,
                labels: LABELS,
                warnings: Vec::new(),
                error: Some(e.to_string()),
            };
        }
    };
    let (headline, detail) = match (p.get("predicted_label"), p.get("prediction")) {
        (Some(label), _) => (
            format!("Predicted: {}", label.as_str().unwrap_or("?")),
            p["probability"]
                .as_f64()
                .map_or(String::new(), |x| format!("probability {x:.4}")),
        ),
        (None, Some(v)) => (
            format!("Predicted: {}", v.as_f64().map_or("?".into(), show)),
            String::new(),
        ),
        (None, None) => ("Predicted: ?".into(), String::new()),
    };
    let e = &p["explanation"];
    let space = e["space"].as_str().unwrap_or("margin").replace('_', "-");
    let class = e["class"]
        .as_str()
        .map_or(String::new(), |c| format!(" of class {c}"));
    let sum = match (e["base_value"].as_f64(), e["margin"].as_f64()) {
        (Some(b), Some(m)) => {
            format!("In {space}{class}: base value {b:.4} + the contributions below = {m:.4}.")
        }
        _ => String::new(),
    };
    let mut items: Vec<(String, f64)> = e["contributions"]
        .as_object()
        .map(|c| {
            c.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    items.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    let top = items
        .iter()
        .map(|(_, v)| v.abs())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let bars: Vec<Bar> = items
        .into_iter()
        .enumerate()
        .map(|(n, (column, v))| {
            let width = ((v.abs() / top) * HALF as f64).round() as usize;
            let shown = match record.get(&column) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.as_f64().map_or(n.to_string(), show),
                Some(x) => x.to_string(),
                None => "missing".into(),
            };
            let label = format!("{column} = {shown}");
            Bar {
                short: if label.chars().count() > 30 {
                    label.chars().take(29).chain(['…']).collect()
                } else {
                    label.clone()
                },
                label,
                value: format!("{v:+.4}"),
                x: if v >= 0.0 { CENTRE } else { CENTRE - width },
                width,
                y: n * ROW,
                up: v >= 0.0,
            }
        })
        .collect();
    let warnings = p["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|x| x.as_str().map_or(x.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Outcome {
        headline,
        detail,
        sum,
        height: bars.len() * ROW + 4,
        centre: CENTRE,
        labels: LABELS,
        bars,
        warnings,
        error: None,
    }
}

fn render(t: impl Template) -> String {
    t.render()
        .unwrap_or_else(|e| format!("<p>rendering: {e}</p>"))
}

/// `GET /models/{name}/v{N}/predict`: the what-if form and its prediction.
pub(crate) async fn what_if(
    State(source): State<Shared>,
    Path((name, version)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    session: Option<axum::Extension<crate::auth::Session>>,
) -> Response {
    let Some(v) = version_number(&version) else {
        return bad_version(&name, &version);
    };
    let n = name.clone();
    let inputs = match blocking(&source, move |s| s.model_inputs(&n, v)).await {
        Ok(i) => i,
        Err(e) => return refused(e),
    };
    let values = values(&inputs, &query);
    let rec = record(&inputs, &values);
    let (n, r) = (name.clone(), rec.clone());
    let scored = blocking(&source, move |s| s.predict_one(&n, v, &r)).await;
    let result = render(outcome(scored, &rec));
    if query.contains_key(FRAGMENT) {
        return Html(result).into_response();
    }
    page(WhatIf {
        title: format!("Predict with {name}:v{v}"),
        fields: fields(&inputs, &values),
        name,
        version: v,
        outcome: result,
        csrf: crate::auth::csrf(&session),
    })
}

/// `POST /models/{name}/v{N}/predict`: the uploaded CSV's predictions, as a CSV download.
pub(crate) async fn batch(
    State(source): State<Shared>,
    Path((name, version)): Path<(String, String)>,
    mut form: Multipart,
) -> Response {
    let Some(v) = version_number(&version) else {
        return bad_version(&name, &version);
    };
    let mut csv = None;
    loop {
        match form.next_field().await {
            Ok(Some(f)) if f.name() == Some("csv") => match f.bytes().await {
                Ok(b) => csv = Some(b.to_vec()),
                Err(e) => return upload_error(format!("reading the upload: {e}")),
            },
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => return upload_error(format!("reading the upload: {e}")),
        }
    }
    let Some(csv) = csv.filter(|c| !c.is_empty()) else {
        return upload_error("choose a CSV file with a header row to score".into());
    };
    let n = name.clone();
    match blocking(&source, move |s| s.predict_csv(&n, v, csv)).await {
        Ok(out) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"{}-v{v}-predictions.csv\"",
                        crate::models::escape_path(&name)
                    ),
                ),
            ],
            out,
        )
            .into_response(),
        Err(e) => refused(e),
    }
}

fn upload_error(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "Cannot score that file", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inputs() -> Vec<Input> {
        vec![
            Input {
                name: "tenure".into(),
                kind: InputKind::Number {
                    range: Some((0.0, 72.0)),
                    median: Some(29.0),
                },
            },
            Input {
                name: "Contract".into(),
                kind: InputKind::Category {
                    choices: vec!["Month-to-month".into(), "Two year".into()],
                },
            },
        ]
    }

    #[test]
    fn the_form_starts_at_typical_values_and_the_url_overrides_them() {
        let i = inputs();
        let v = values(&i, &HashMap::new());
        assert_eq!(v, ["29", "Month-to-month"]);
        let q = HashMap::from([("tenure".to_owned(), " 5.5".to_owned())]);
        let v = values(&i, &q);
        let r = record(&i, &v);
        assert_eq!(r["tenure"], json!(5.5));
        assert_eq!(r["Contract"], json!("Month-to-month"));
        let blank = values(&i, &HashMap::from([("tenure".to_owned(), String::new())]));
        assert!(
            !record(&i, &blank).contains_key("tenure"),
            "blank is missing"
        );
        let odd = values(
            &i,
            &HashMap::from([("Contract".to_owned(), "Weekly".to_owned())]),
        );
        let f = fields(&i, &odd);
        assert_eq!(f[0].hint, "number; training saw 0 to 72");
        assert_eq!(f[1].choices.last(), Some(&("Weekly".to_owned(), true)));
    }

    #[test]
    fn contributions_become_bars_either_side_of_the_centre() {
        let p = json!({
            "predicted_label": "Yes", "probability": 0.7,
            "explanation": {"base_value": -1.0, "margin": 0.85, "space": "log_odds",
                "contributions": {"tenure": -0.25, "Contract": 2.1}}
        });
        let r = record(&inputs(), &["5".into(), "Month-to-month".into()]);
        let o = outcome(Ok(p), &r);
        assert_eq!(o.headline, "Predicted: Yes");
        assert_eq!(o.detail, "probability 0.7000");
        assert!(o.sum.contains("log-odds: base value -1.0000"), "{}", o.sum);
        assert_eq!(o.bars[0].label, "Contract = Month-to-month");
        assert!(o.bars[0].up && !o.bars[1].up);
        assert_eq!((o.bars[0].x, o.bars[0].width), (CENTRE, HALF));
        assert_eq!(o.bars[1].x + o.bars[1].width, CENTRE);
        assert_eq!(o.bars[1].label, "tenure = 5");
        let e = outcome(Err(SourceError::Invalid("record 0: no inputs".into())), &r);
        assert_eq!(e.error.as_deref(), Some("record 0: no inputs"));
    }
}
