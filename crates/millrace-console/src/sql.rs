//! The SQL box: one read-only query over the lake with prep's engine, its first rows shown as
//! a table and the whole result (up to [`DOWNLOAD_ROWS`]) downloadable as CSV or Parquet.
//!
//! Everything is in the address (`/sql?q=…&limit=…&table=NAME=PREFIX…`), so a query is a
//! link to keep or share and the page works without JavaScript. The tables are the running
//! configuration's deliveries ([`crate::Source::tables`]) and any lake folders the address
//! names (the lake page's "Query this folder" adds one); a folder is always inside the data
//! dir's lake. Statements that would change anything (DDL, DML, `COPY`, `SET`) are refused.

use std::time::Duration;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::pages::{error, page, refused};
use crate::predict::blocking;
use crate::{Download, QueryTable, Shared, SourceError, SqlQuery, TableInfo};

/// How long a query may run before it is stopped.
pub const TIME_LIMIT: Duration = Duration::from_secs(30);
/// Rows the page shows unless `limit` says otherwise, and the choices it offers.
pub const DEFAULT_ROWS: usize = 100;
const ROW_CHOICES: [usize; 3] = [100, 1_000, 10_000];
/// Most rows a download holds (the result is built in memory before it is sent).
pub const DOWNLOAD_ROWS: usize = 1_000_000;
/// Longest query text accepted.
const MAX_SQL: usize = 64 * 1024;

/// What the address asks for.
#[derive(Debug, Default, PartialEq)]
struct Asked {
    sql: String,
    rows: usize,
    /// Lake folders named as tables: (name, prefix), in the address's order.
    tables: Vec<(String, String)>,
    format: Option<String>,
}

/// Reads `q`, `limit`, `format` and every `table=NAME=PREFIX` from the query string.
fn asked(raw: Option<&str>) -> Result<Asked, String> {
    let mut a = Asked {
        rows: DEFAULT_ROWS,
        ..Asked::default()
    };
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match &*k {
            "q" => a.sql = v.into_owned(),
            "limit" => {
                a.rows = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| ROW_CHOICES.contains(n))
                    .ok_or_else(|| format!("limit must be one of {ROW_CHOICES:?}, not {v:?}"))?
            }
            "format" => a.format = Some(v.into_owned()),
            "table" if v.trim().is_empty() => {}
            "table" => a.tables.push(table(&v)?),
            _ => {}
        }
    }
    if a.sql.len() > MAX_SQL {
        return Err(format!("the query is over {} KiB", MAX_SQL / 1024));
    }
    Ok(a)
}

/// `NAME=PREFIX`: a table name of letters, digits and `_`, and a folder of the lake.
fn table(spec: &str) -> Result<(String, String), String> {
    let (name, prefix) = spec
        .split_once('=')
        .ok_or_else(|| format!("table {spec:?}: expected NAME=FOLDER, e.g. raw=raw/churn/"))?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "table {spec:?}: the name must be letters, digits and _"
        ));
    }
    Ok((name.to_owned(), prefix.trim().to_owned()))
}

#[derive(Template)]
#[template(path = "sql.html")]
struct SqlPage {
    title: &'static str,
    sql: String,
    rows: usize,
    choices: Vec<usize>,
    tables: Vec<TableInfo>,
    /// The address's own tables, kept in the form.
    extra: Vec<String>,
    result: Option<QueryTable>,
    problem: Option<String>,
    /// The address of this query without `format`, for the download links.
    link: String,
    time_limit_s: u64,
    download_rows: usize,
}

/// `GET /sql`: the form, and the result when the address holds a query.
pub(crate) async fn sql(State(source): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let asked = match asked(raw.as_deref()) {
        Ok(a) => a,
        Err(m) => return error(StatusCode::BAD_REQUEST, "Cannot run that", m),
    };
    if let Some(f) = asked.format.as_deref() {
        return download(&source, &asked, f).await;
    }
    let tables = source.tables();
    let (mut result, mut problem) = (None, None);
    if !asked.sql.trim().is_empty() {
        let q = query(&asked, asked.rows);
        match blocking(&source, move |s| s.query(&q)).await {
            Ok(r) => result = Some(r),
            Err(SourceError::Invalid(m)) => problem = Some(m),
            Err(e) => return refused(e),
        }
    }
    let failed = problem.is_some();
    let mut r = page(SqlPage {
        title: "SQL",
        link: link(&asked),
        extra: asked
            .tables
            .iter()
            .map(|(n, p)| format!("{n}={p}"))
            .collect(),
        sql: asked.sql,
        rows: asked.rows,
        choices: ROW_CHOICES.to_vec(),
        tables,
        result,
        problem,
        time_limit_s: TIME_LIMIT.as_secs(),
        download_rows: DOWNLOAD_ROWS,
    });
    if failed {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    r
}

fn query(asked: &Asked, max_rows: usize) -> SqlQuery {
    SqlQuery {
        sql: asked.sql.clone(),
        tables: asked.tables.clone(),
        max_rows,
        time_limit: TIME_LIMIT,
    }
}

/// `/sql?…` without `format`: the query, its tables and its row choice.
fn link(asked: &Asked) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("q", &asked.sql);
    s.append_pair("limit", &asked.rows.to_string());
    for (n, p) in &asked.tables {
        s.append_pair("table", &format!("{n}={p}"));
    }
    format!("/sql?{}", s.finish())
}

/// `GET /sql?…&format=csv|parquet`: the whole result as a file.
async fn download(source: &Shared, asked: &Asked, format: &str) -> Response {
    let (format, mime, ext) = match format {
        "csv" => (Download::Csv, "text/csv; charset=utf-8", "csv"),
        "parquet" => (
            Download::Parquet,
            "application/vnd.apache.parquet",
            "parquet",
        ),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                "Cannot download that",
                format!("format must be csv or parquet, not {other:?}"),
            );
        }
    };
    if asked.sql.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "Cannot download that",
            "there is no query to run: q is empty".into(),
        );
    }
    let q = query(asked, DOWNLOAD_ROWS);
    match blocking(source, move |s| s.query_download(&q, format)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, mime.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"query.{ext}\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(SourceError::Invalid(m)) => error(StatusCode::BAD_REQUEST, "Cannot run that", m),
        Err(e) => refused(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_holds_the_query_its_tables_and_its_rows() {
        let a = asked(Some(
            "q=SELECT+*+FROM+raw&limit=1000&table=raw%3Draw%2Fchurn%2F&table=&format=csv",
        ))
        .unwrap();
        assert_eq!(a.sql, "SELECT * FROM raw");
        assert_eq!(a.rows, 1000);
        assert_eq!(a.tables, vec![("raw".into(), "raw/churn/".into())]);
        assert_eq!(a.format.as_deref(), Some("csv"));
        assert_eq!(
            link(&a),
            "/sql?q=SELECT+*+FROM+raw&limit=1000&table=raw%3Draw%2Fchurn%2F"
        );
        assert_eq!(asked(None).unwrap().rows, DEFAULT_ROWS);
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        assert!(asked(Some("limit=5")).unwrap_err().contains("limit"));
        assert!(
            asked(Some("table=raw"))
                .unwrap_err()
                .contains("NAME=FOLDER")
        );
        assert!(
            asked(Some("table=a-b%3Dx"))
                .unwrap_err()
                .contains("letters, digits")
        );
        let long = format!("q={}", "x".repeat(MAX_SQL + 1));
        assert!(asked(Some(&long)).unwrap_err().contains("KiB"));
    }
}
