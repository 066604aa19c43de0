//! The console's routes: each page is an askama template over a small view, rendered on the
//! server; `/events` streams the overview's stages as server-sent events.
//!
//! | route | page |
//! |---|---|
//! | `/` | the pipeline diagram and each stage's state (live) |
//! | `/streams` | every stream: mode, shards open and closed, records, retention |
//! | `/streams/{name}` | its shards (parents, records), and with `?shard=ID&last=N` the newest records of that shard, decoded |
//! | `/lake?prefix=P` | the folders and objects under a prefix of the data dir's lake |
//! | `/lake/object?key=K` | an object's first rows as a table |
//! | `/sql?q=SQL&limit=N&table=NAME=FOLDER` | a read-only query's first rows; `&format=csv` or `parquet` downloads the result (see `sql.rs`) |
//! | `/quality…` | data-quality reports of lake folders (see `quality.rs`) |
//! | `/train…` | training a model on a lake folder, its progress and leaderboard (see `train.rs`) |
//! | `/monitor`, `/monitor/{name}` | served models' drift and its history (see `monitor.rs`) |
//! | `/models`, `/models/{name}`, `/models/{name}/v{N}` | the registry (see `models.rs`) |
//! | `POST /models/{name}/promote`, `POST /models/{name}/rollback` | change the production version |
//! | `/models/{name}/v{N}/predict` | the what-if form; `POST` a CSV for batch predictions (see `predict.rs`) |
//! | `/events` | `stages` events: the stages as JSON, every second |
//! | `/signin`, `/signout` | sign-in with an access key when identities are on (see `auth.rs`) |

use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::stages::{Stage, stages};
use crate::{LakeEntry, Preview, Record, Shared, SourceError, StreamInfo};

/// How often `/events` sends the stages.
const EVERY: Duration = Duration::from_secs(1);
/// Records shown by the record browser unless `last` says otherwise, and at most.
const DEFAULT_LAST: usize = 20;
const MOST_LAST: usize = 500;

/// The console's routes over `source`; with `keeper`, behind sign-in and each identity's
/// permissions (`auth.rs`).
pub fn router(source: Shared, keeper: crate::auth::SharedKeeper) -> Router {
    Router::new()
        .route(
            "/signin",
            get(crate::auth::sign_in_page).post(crate::auth::sign_in),
        )
        .route(
            "/signout",
            get(crate::auth::sign_out_page).post(crate::auth::sign_out),
        )
        .route("/", get(overview))
        .route("/events", get(events))
        .route("/streams", get(streams))
        .route("/streams/{name}", get(stream))
        .route("/lake", get(lake))
        .route("/lake/object", get(object))
        .route("/sql", get(crate::sql::sql))
        .route(
            "/quality",
            get(crate::quality::list).post(crate::quality::start),
        )
        .route("/quality/new", get(crate::quality::new))
        .route("/train", get(crate::train::list).post(crate::train::start))
        .route("/train/new", get(crate::train::new))
        .route("/train/{id}", get(crate::train::job))
        .route("/train/{id}/events", get(crate::train::events))
        .route("/monitor", get(crate::monitor::list))
        .route("/monitor/{name}", get(crate::monitor::model))
        .route("/quality/{id}", get(crate::quality::report))
        .route("/quality/{id}/report", get(crate::quality::report_html))
        .route(
            "/quality/{id}/report.json",
            get(crate::quality::report_json),
        )
        .route("/models", get(crate::models::models))
        .route("/models/{name}", get(crate::models::model))
        .route("/models/{name}/{version}", get(crate::models::version))
        .route("/models/{name}/promote", post(crate::models::promote))
        .route("/models/{name}/rollback", post(crate::models::rollback))
        .route(
            "/models/{name}/{version}/predict",
            get(crate::predict::what_if).post(crate::predict::batch),
        )
        // Batch prediction uploads a CSV; every other post is a small form.
        .layer(DefaultBodyLimit::max(crate::predict::MAX_UPLOAD))
        .route_layer(axum::middleware::from_fn(crate::guard::same_origin))
        .route("/static/console.css", get(css))
        .route("/static/console.js", get(js))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            keeper.clone(),
            crate::auth::check,
        ))
        .layer(axum::Extension(keeper))
        .with_state(source)
}

/// A page's template rendered, or a plain 500 naming the failure.
pub(crate) fn page(t: impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("rendering: {e}")).into_response(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: String,
    message: String,
}

pub(crate) fn error(status: StatusCode, title: &str, message: String) -> Response {
    let mut r = page(ErrorPage {
        title: title.to_owned(),
        message,
    });
    *r.status_mut() = status;
    r
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "Not found",
        "No such page in the console.".into(),
    )
}

/// A stage placed on the diagram.
struct Placed {
    stage: Stage,
    x: usize,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct Overview {
    title: &'static str,
    stages: Vec<Placed>,
}

/// Box width and gap of the diagram, in SVG units.
const BOX: usize = 130;
const GAP: usize = 30;

async fn overview(State(source): State<Shared>) -> Response {
    let status = source.status();
    let stages = stages(&status)
        .into_iter()
        .enumerate()
        .map(|(i, stage)| Placed {
            stage,
            x: 10 + i * (BOX + GAP),
        })
        .collect();
    page(Overview {
        title: "Overview",
        stages,
    })
}

async fn events(
    State(source): State<Shared>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold((source, true), |(source, first)| async move {
        if !first {
            tokio::time::sleep(EVERY).await;
        }
        let stages = stages(&source.status());
        let json = serde_json::to_string(&stages).unwrap_or_else(|_| "[]".into());
        let event = Event::default().event("stages").data(json);
        Some((Ok(event), (source, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A stream row of the list.
struct StreamRow {
    info: StreamInfo,
    open: usize,
    closed: usize,
    records: u64,
}

#[derive(Template)]
#[template(path = "streams.html")]
struct Streams {
    title: &'static str,
    streams: Vec<StreamRow>,
}

fn row(info: StreamInfo) -> StreamRow {
    let open = info.open_shards();
    StreamRow {
        closed: info.shards.len() - open,
        records: info.records(),
        open,
        info,
    }
}

async fn streams(State(source): State<Shared>) -> Response {
    let mut all: Vec<StreamRow> = source.streams().into_iter().map(row).collect();
    all.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    page(Streams {
        title: "Streams",
        streams: all,
    })
}

#[derive(Deserialize)]
struct Browse {
    shard: Option<String>,
    last: Option<usize>,
}

/// A record as the browser shows it.
struct Shown {
    sequence: String,
    arrival: String,
    partition_key: String,
    /// `json`, `text` or `hex`.
    kind: &'static str,
    body: String,
    bytes: usize,
}

#[derive(Template)]
#[template(path = "stream.html")]
struct StreamPage {
    title: String,
    stream: StreamRow,
    shard: Option<String>,
    last: usize,
    records: Vec<Shown>,
}

async fn stream(
    State(source): State<Shared>,
    Path(name): Path<String>,
    Query(browse): Query<Browse>,
) -> Response {
    let Some(info) = source.streams().into_iter().find(|s| s.name == name) else {
        return error(
            StatusCode::NOT_FOUND,
            "No such stream",
            format!("There is no stream named {name:?}."),
        );
    };
    let last = browse.last.unwrap_or(DEFAULT_LAST).clamp(1, MOST_LAST);
    let records = match &browse.shard {
        Some(shard) => match source.tail(&name, shard, last) {
            Ok(r) => r.iter().map(shown).collect(),
            Err(SourceError::NotFound(m)) => {
                return error(StatusCode::NOT_FOUND, "No such shard", m);
            }
            Err(e) => return refused(e),
        },
        None => Vec::new(),
    };
    page(StreamPage {
        title: name,
        stream: row(info),
        shard: browse.shard,
        last,
        records,
    })
}

/// A source's refusal as a page.
pub(crate) fn refused(e: SourceError) -> Response {
    match e {
        SourceError::NotFound(m) => error(StatusCode::NOT_FOUND, "Not found", m),
        SourceError::Invalid(m) => error(StatusCode::BAD_REQUEST, "Cannot do that", m),
        SourceError::Failed(m) => error(StatusCode::INTERNAL_SERVER_ERROR, "Reading failed", m),
    }
}

#[derive(Deserialize)]
struct LakeQuery {
    prefix: Option<String>,
    key: Option<String>,
}

/// A link of the breadcrumb: a folder's name and its prefix.
struct Crumb {
    name: String,
    prefix: String,
}

fn crumbs(prefix: &str) -> Vec<Crumb> {
    // An S3 lake's first crumb is its bucket, as a URL.
    let (mut at, rest) = match prefix.strip_prefix("s3://") {
        Some(rest) => ("s3://".to_owned(), rest),
        None => (String::new(), prefix),
    };
    let s3 = !at.is_empty();
    rest.split('/')
        .filter(|p| !p.is_empty())
        .enumerate()
        .map(|(i, part)| {
            at.push_str(part);
            at.push('/');
            Crumb {
                name: if s3 && i == 0 {
                    format!("s3://{part}")
                } else {
                    part.to_owned()
                },
                prefix: at.clone(),
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "lake.html")]
struct LakePage {
    title: &'static str,
    crumbs: Vec<Crumb>,
    entries: Vec<LakeEntry>,
    /// The SQL box with this folder as a table (none at the lake's root).
    query: Option<String>,
    /// The form that profiles this folder (none at the lake's root).
    profile: Option<String>,
    /// The form that trains a model on this folder (none at the lake's root).
    train: Option<String>,
}

/// `/sql` with `prefix` as a table named after its last folder, and a first look at it.
fn query_link(prefix: &str) -> Option<String> {
    let last = prefix.trim_end_matches('/').rsplit('/').next()?;
    if last.is_empty() {
        return None;
    }
    let mut name: String = last
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "t_");
    }
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("table", &format!("{name}={prefix}"));
    s.append_pair("q", &format!("SELECT * FROM {name} LIMIT 100"));
    Some(format!("/sql?{}", s.finish()))
}

/// `?prefix=P`: the lake folder a form is for.
#[derive(Deserialize)]
pub(crate) struct FolderQuery {
    pub prefix: Option<String>,
}

/// `page?prefix=PREFIX`, or none at the lake's root (nor for an S3 lake's folders, which
/// the SQL box, profiles and training do not read from the console).
fn folder_link(page: &str, prefix: &str) -> Option<String> {
    (!prefix.is_empty() && !prefix.starts_with("s3://")).then(|| {
        let p: String = url::form_urlencoded::byte_serialize(prefix.as_bytes()).collect();
        format!("{page}?prefix={p}")
    })
}

async fn lake(State(source): State<Shared>, Query(q): Query<LakeQuery>) -> Response {
    let prefix = q.prefix.unwrap_or_default();
    let p = prefix.clone();
    match crate::predict::blocking(&source, move |s| s.lake_list(&p)).await {
        Ok(entries) => page(LakePage {
            title: "Lake",
            crumbs: crumbs(&prefix),
            query: query_link(&prefix).filter(|_| !prefix.starts_with("s3://")),
            profile: folder_link("/quality/new", &prefix),
            train: folder_link("/train/new", &prefix),
            entries,
        }),
        Err(e) => refused(e),
    }
}

/// Rows an object preview shows.
const PREVIEW_ROWS: usize = 20;

#[derive(Template)]
#[template(path = "object.html")]
struct ObjectPage {
    title: String,
    crumbs: Vec<Crumb>,
    preview: Preview,
}

async fn object(State(source): State<Shared>, Query(q): Query<LakeQuery>) -> Response {
    let key = q.key.unwrap_or_default();
    let k = key.clone();
    let preview =
        crate::predict::blocking(&source, move |s| s.lake_preview(&k, PREVIEW_ROWS)).await;
    let folder = key.rsplit_once('/').map(|(f, _)| f).unwrap_or("");
    match preview {
        Ok(preview) => page(ObjectPage {
            crumbs: crumbs(folder),
            title: key,
            preview,
        }),
        Err(e) => refused(e),
    }
}

/// Decodes a record for display: pretty JSON if it parses, text if it is UTF-8, else the
/// first bytes in hex.
fn shown(r: &Record) -> Shown {
    const HEX_BYTES: usize = 256;
    let (kind, body) = match serde_json::from_slice::<serde_json::Value>(&r.data) {
        Ok(v) => ("json", serde_json::to_string_pretty(&v).unwrap_or_default()),
        Err(_) => match std::str::from_utf8(&r.data) {
            Ok(t) => ("text", t.to_owned()),
            Err(_) => {
                let mut hex: String = r.data[..r.data.len().min(HEX_BYTES)]
                    .iter()
                    .map(|b| format!("{b:02x} "))
                    .collect();
                if r.data.len() > HEX_BYTES {
                    hex.push('…');
                }
                ("hex", hex)
            }
        },
    };
    Shown {
        sequence: r.sequence.clone(),
        arrival: arrival(r.arrival_ms),
        partition_key: r.partition_key.clone(),
        kind,
        body,
        bytes: r.data.len(),
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm` UTC.
pub(crate) fn arrival(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../static/console.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../static/console.js"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_lakes_crumbs_start_at_its_bucket() {
        let c = |p: &str| -> Vec<(String, String)> {
            crumbs(p).into_iter().map(|c| (c.name, c.prefix)).collect()
        };
        assert_eq!(
            c("raw/2026/"),
            [
                ("raw".into(), "raw/".into()),
                ("2026".into(), "raw/2026/".into())
            ]
        );
        assert_eq!(
            c("s3://bkt/lake/raw/"),
            [
                ("s3://bkt".into(), "s3://bkt/".into()),
                ("lake".into(), "s3://bkt/lake/".into()),
                ("raw".into(), "s3://bkt/lake/raw/".into())
            ]
        );
        assert_eq!(folder_link("/train/new", "s3://bkt/lake/"), None);
        assert!(folder_link("/train/new", "raw/").is_some());
    }

    #[test]
    fn records_show_as_json_text_or_hex() {
        let rec = |data: &[u8]| Record {
            sequence: "1".into(),
            arrival_ms: 0,
            partition_key: "k".into(),
            data: data.to_vec(),
        };
        let j = shown(&rec(br#"{"a":1}"#));
        assert_eq!((j.kind, j.body.as_str()), ("json", "{\n  \"a\": 1\n}"));
        assert_eq!(shown(&rec(b"plain words")).kind, "text");
        let h = shown(&rec(&[0xff, 0x00, 0x10]));
        assert_eq!((h.kind, h.body.as_str()), ("hex", "ff 00 10 "));
    }

    #[test]
    fn a_lake_folder_links_to_the_sql_box_with_itself_as_a_table() {
        assert_eq!(query_link(""), None);
        assert_eq!(
            query_link("raw/churn-2026/"),
            Some(
                "/sql?table=churn_2026%3Draw%2Fchurn-2026%2F&q=SELECT+*+FROM+churn_2026+LIMIT+100"
                    .into()
            )
        );
        assert!(
            query_link("year=2026/")
                .unwrap()
                .contains("table=year_2026")
        );
        assert!(query_link("2026/").unwrap().contains("table=t_2026"));
    }

    #[test]
    fn arrival_times_are_utc_calendar_dates() {
        assert_eq!(arrival(0), "1970-01-01 00:00:00.000");
        assert_eq!(arrival(951_782_400_123), "2000-02-29 00:00:00.123");
        assert_eq!(arrival(1_796_558_706_789), "2026-12-06 12:05:06.789");
    }
}
