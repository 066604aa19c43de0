//! Data quality: the data-quality and insights reports (`millrace profile`'s) of lake folders,
//! made from the console and read in place.
//!
//! | route | page |
//! |---|---|
//! | `/quality` | every report: dataset, target, state, rows, warnings |
//! | `/quality/new?prefix=P` | the form: the folder's columns to choose the target from |
//! | `POST /quality` | starts a report of `prefix` (with `target`), then its page |
//! | `/quality/{id}` | a report's state (refreshing itself while it runs), its warnings and the report itself |
//! | `/quality/{id}/report`, `/quality/{id}/report.json` | the report as `millrace profile` writes it |

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::pages::{arrival, page, refused};
use crate::predict::blocking;
use crate::{ProfileInfo, Shared};

#[derive(Template)]
#[template(path = "quality.html")]
struct QualityPage {
    title: &'static str,
    reports: Vec<Row>,
}

/// A report as a row of the list.
struct Row {
    info: ProfileInfo,
    started: String,
}

fn row(info: ProfileInfo) -> Row {
    Row {
        started: arrival(info.started_ms),
        info,
    }
}

/// `GET /quality`.
pub(crate) async fn list(State(source): State<Shared>) -> Response {
    match blocking(&source, |s| s.profiles()).await {
        Ok(mut all) => {
            all.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
            page(QualityPage {
                title: "Data quality",
                reports: all.into_iter().map(row).collect(),
            })
        }
        Err(e) => refused(e),
    }
}

#[derive(Template)]
#[template(path = "quality_new.html")]
struct NewPage {
    title: &'static str,
    prefix: String,
    columns: Vec<String>,
    /// The session's token, sent back by the form.
    csrf: String,
}

/// `GET /quality/new?prefix=P`: the form, with the folder's columns as target choices.
pub(crate) async fn new(
    State(source): State<Shared>,
    Query(q): Query<crate::pages::FolderQuery>,
    session: Option<axum::Extension<crate::auth::Session>>,
) -> Response {
    let prefix = q.prefix.unwrap_or_default();
    let p = prefix.clone();
    match blocking(&source, move |s| s.profile_columns(&p)).await {
        Ok(columns) => page(NewPage {
            title: "Profile a dataset",
            prefix,
            columns,
            csrf: crate::auth::csrf(&session),
        }),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct StartForm {
    prefix: String,
    #[serde(default)]
    target: String,
}

/// `POST /quality`: starts the report, then its page.
pub(crate) async fn start(State(source): State<Shared>, Form(form): Form<StartForm>) -> Response {
    let target = Some(form.target.trim().to_owned()).filter(|t| !t.is_empty());
    match blocking(&source, move |s| {
        s.start_profile(&form.prefix, target.as_deref())
    })
    .await
    {
        Ok(id) => {
            Redirect::to(&format!("/quality/{}", crate::models::escape_path(&id))).into_response()
        }
        Err(e) => refused(e),
    }
}

#[derive(Template)]
#[template(path = "quality_report.html")]
struct ReportPage {
    title: String,
    report: Row,
    /// Seconds since it started (while it runs).
    running_s: u64,
}

/// `GET /quality/{id}`.
pub(crate) async fn report(State(source): State<Shared>, Path(id): Path<String>) -> Response {
    let i = id.clone();
    match blocking(&source, move |s| s.profile(&i)).await {
        Ok(info) => {
            let running_s = if info.state == "done" || info.state == "failed" {
                0
            } else {
                (millrace_common::time::now_ms() - info.started_ms).max(0) as u64 / 1000
            };
            page(ReportPage {
                title: format!("Data quality of {}", info.dataset),
                report: row(info),
                running_s,
            })
        }
        Err(e) => refused(e),
    }
}

/// `GET /quality/{id}/report`: the report's HTML, sandboxed (it is shown in a frame of the
/// report's page and may hold the data's own strings).
pub(crate) async fn report_html(State(source): State<Shared>, Path(id): Path<String>) -> Response {
    file(&source, id, "report.html", "text/html; charset=utf-8").await
}

/// `GET /quality/{id}/report.json`.
pub(crate) async fn report_json(State(source): State<Shared>, Path(id): Path<String>) -> Response {
    file(&source, id, "report.json", "application/json").await
}

async fn file(source: &Shared, id: String, name: &'static str, mime: &'static str) -> Response {
    match blocking(source, move |s| s.profile_file(&id, name)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, mime),
                // The report draws with inline styles and SVG; it runs nothing and loads nothing.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => refused(e),
    }
}
