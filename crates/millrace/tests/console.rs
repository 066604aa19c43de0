//! The web console against a real `millrace up`: the overview's stages, the streams list, the
//! record browser (records decoded, client data escaped), its errors, the live event stream,
//! the model pages, predictions from the browser (what-if and a CSV upload), promotion and
//! rollback (refused from other sites), training a model from a lake folder, and sign-in with
//! an access key with each page authorized under `[auth]`.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::{Server, assert_ran, millrace, train_tiny};

fn start_up(dir: &Path, more_toml: &str, ready: &[&str]) -> Server {
    let config = dir.join("millrace.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nkinesis_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.1:0\"\n\
             [storage]\nfsync = \"never\"\n[[stream]]\nname = \"churn\"\nshards = 2\n{more_toml}"
        ),
    )
    .unwrap();
    Server::start(
        &dir.join("data"),
        ["-c".as_ref(), config.as_os_str()],
        None,
        ready,
        Duration::from_secs(30),
        dir.join("server.log"),
    )
}

/// `up` with the console on a free port: the server and the console's URL.
fn start_console(dir: &Path) -> (Server, String) {
    let up = start_up(
        dir,
        "[console]\naddr = \"127.0.0.1:0\"\n",
        &["kinesis", "admin", "console"],
    );
    let console = up.url("console").to_owned();
    (up, console)
}

/// GET `path` from `base` (`http://127.0.0.1:PORT`), reading at most `limit` bytes: the
/// status and the body.
fn get(base: &str, path: &str, limit: usize) -> (u16, String) {
    let (status, _, body) = request(base, "GET", path, &[], b"", limit);
    (status, body)
}

/// Sends one request (`headers` as `Name: value` lines) and reads at most `limit` bytes of
/// the answer: the status, the head and the body.
fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
    limit: usize,
) -> (u16, String, String) {
    let (status, head, body) = request_bytes(base, method, path, headers, body, limit);
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// As [`request`], the body as bytes.
fn request_bytes(
    base: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &[u8],
    limit: usize,
) -> (u16, String, Vec<u8>) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while out.len() < limit {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let split = out.windows(4).position(|w| w == b"\r\n\r\n");
    let head = String::from_utf8_lossy(&out[..split.unwrap_or(out.len())]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP response for {path}: {head:?}"));
    let body = split.map_or(Vec::new(), |at| out[at + 4..].to_vec());
    (status, head, body)
}

/// Puts `lines` (one record each) into stream `churn` with `millrace produce`.
fn produce(dir: &Path, kinesis: &str, lines: &[&str]) {
    let file = dir.join("records.ndjson");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = millrace()
        .args(["produce", "--endpoint-url", kinesis, "--stream", "churn"])
        .arg("--file")
        .arg(&file)
        .env("AWS_ACCESS_KEY_ID", "t")
        .env("AWS_SECRET_ACCESS_KEY", "t")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_ran(&out);
}

#[test]
fn pages_show_the_pipeline_streams_and_decoded_records() {
    let dir = tempfile::tempdir().unwrap();
    let (up, console) = start_console(dir.path());
    produce(
        dir.path(),
        up.url("kinesis"),
        &[
            r#"{"customerID":"A-1","Contract":"Two year"}"#,
            r#"{"customerID":"<script>alert(1)</script>","Contract":"Month-to-month"}"#,
            r#""a bare JSON string""#,
        ],
    );

    let (status, html) = get(&console, "/", 1 << 20);
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"<tr id="row-stream" class="running">"#),
        "{html}"
    );
    assert!(html.contains("1 stream, 3 records"), "{html}");
    assert!(
        html.contains(r#"<tr id="row-endpoint" class="off">"#),
        "{html}"
    );
    assert!(html.contains("<svg class=\"diagram\""), "{html}");

    let (status, html) = get(&console, "/streams", 1 << 20);
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"<a href="/streams/churn">churn</a>"#),
        "{html}"
    );
    assert!(html.contains("PROVISIONED"), "{html}");

    // Every record, from whichever shard it was routed to.
    let mut shown = String::new();
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let (status, html) = get(&console, &format!("/streams/churn?shard={shard}"), 1 << 20);
        assert_eq!(status, 200, "{html}");
        shown.push_str(&html);
    }
    assert!(
        shown.contains("&#34;customerID&#34;: &#34;A-1&#34;"),
        "{shown}"
    );
    assert!(shown.contains("&#34;a bare JSON string&#34;"), "{shown}");
    assert!(
        !shown.contains("<script>alert(1)</script>"),
        "client data reached the page unescaped"
    );
    assert!(
        shown.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{shown}"
    );

    let (status, html) = get(&console, "/streams/nope", 1 << 20);
    assert_eq!(status, 404);
    assert!(html.contains("There is no stream named"), "{html}");
    let (status, _) = get(
        &console,
        "/streams/churn?shard=shardId-000000000009",
        1 << 20,
    );
    assert_eq!(status, 404);
    let (status, _) = get(&console, "/no/such/page", 1 << 20);
    assert_eq!(status, 404);
    let (status, css) = get(&console, "/static/console.css", 1 << 20);
    assert_eq!(status, 200);
    assert!(css.contains(".diagram"));

    // The live stream: the first event comes at once, with the stages as JSON.
    let (status, events) = get(&console, "/events", 4096);
    assert_eq!(status, 200);
    let data = events
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no event data: {events}"));
    let stages: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(stages[0]["key"], "stream");
    let detail = stages[0]["detail"].as_str().unwrap();
    assert!(detail.starts_with("1 stream, 3 records"), "{detail}");
    assert!(events.contains("event: stages"), "{events}");

    // Rates over the last ten seconds: the three records in, and out the ones the record
    // browser read above.
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    loop {
        let (_, html) = get(&console, "/streams/churn", 1 << 20);
        let rates = html
            .split("records per second over the last 10 s: ")
            .nth(1)
            .and_then(|r| r.split(" out").next())
            .unwrap_or_default()
            .to_owned();
        let nums: Vec<f64> = rates
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter_map(|n| n.parse().ok())
            .collect();
        if nums.len() == 2 && nums[0] > 0.0 && nums[1] > 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "rates {rates:?}: {html}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_lake_browser_lists_and_previews_and_never_leaves_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, console) = start_console(dir.path());
    let lake = dir.path().join("data").join("lake");
    std::fs::create_dir_all(lake.join("raw/day=1")).unwrap();
    std::fs::write(
        lake.join("raw/day=1/part 1.ndjson"),
        "{\"customerID\":\"A-1\",\"tenure\":5}\n{\"customerID\":\"B-2\",\"tenure\":7}\n",
    )
    .unwrap();
    // A file outside the lake, and a link inside the lake pointing at it.
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "the secret outside the lake\n").unwrap();
    std::os::unix::fs::symlink(&secret, lake.join("raw/link.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path(), lake.join("up")).unwrap();

    let (status, html) = get(&console, "/lake", 1 << 20);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("raw/</a>"), "{html}");
    let (status, html) = get(&console, "/lake?prefix=raw%2Fday%3D1%2F", 1 << 20);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("part 1.ndjson"), "{html}");
    let (status, html) = get(
        &console,
        "/lake/object?key=raw%2Fday%3D1%2Fpart%201.ndjson",
        1 << 20,
    );
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<th scope=\"col\">customerID</th>"), "{html}");
    assert!(html.contains("<td>B-2</td>"), "{html}");

    for bad in [
        "/lake?prefix=..%2F",
        "/lake?prefix=%2Fetc%2F",
        "/lake?prefix=raw%2F..%2F..%2F",
        "/lake?prefix=up%2F",
        "/lake/object?key=..%2Fsecret.txt",
        "/lake/object?key=%2Fetc%2Fpasswd",
        "/lake/object?key=raw%2Flink.txt",
        "/lake/object?key=up%2Fsecret.txt",
        "/lake/object?key=raw%2Fnone.json",
    ] {
        let (status, html) = get(&console, bad, 1 << 20);
        assert_eq!(status, 404, "{bad}: {html}");
        assert!(!html.contains("the secret outside"), "{bad} leaked: {html}");
        assert!(!html.contains("root:"), "{bad} leaked: {html}");
    }
}

#[test]
fn the_model_pages_show_versions_metrics_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    train_tiny(&dir.path().join("data"), dir.path());
    let (_up, console) = start_console(dir.path());

    let (status, html) = get(&console, "/models", 1 << 20);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"<a href="/models/m">m</a>"#), "{html}");
    let (status, html) = get(&console, "/models/m", 1 << 20);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"<a href="/models/m/v1">v1</a>"#), "{html}");
    let (status, html) = get(&console, "/models/m/v1", 1 << 20);
    assert_eq!(status, 200, "{html}");
    for part in [
        "binary, objective f1",
        r#"<th scope="row">auc</th>"#,
        r#"<table class="confusion">"#,
        r#"<polyline points="0.0,200.0"#,
        "Precision-recall curve (test part)",
        "Column impact",
        "Leaderboard",
    ] {
        assert!(html.contains(part), "{part} missing: {html}");
    }
    // The matrix adds up to the test rows.
    let cell = |id: &str| -> u64 {
        let at = html.find(&format!(r#"id="{id}">"#)).unwrap() + id.len() + 6;
        html[at..].split('<').next().unwrap().parse().unwrap()
    };
    let test_rows: u64 = html
        .split(" test rows")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(cell("tp") + cell("fp") + cell("fn") + cell("tn"), test_rows);
    // The slider's cuts: at the chosen threshold's cut, the rendered matrix (a test part this
    // small is not thinned).
    assert!(html.contains(r#"<div id="slider" hidden"#), "{html}");
    let json = html
        .split(r#"<script type="application/json" id="cuts">"#)
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .unwrap();
    let cuts: Vec<(f64, u64, u64)> = serde_json::from_str(json).unwrap();
    let start: usize = html
        .split(r#"step="1" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!((cuts[start].1, cuts[start].2), (cell("tp"), cell("fp")));
    let last = cuts.last().unwrap();
    assert_eq!(
        last.1 + last.2,
        test_rows,
        "the lowest cut calls every row positive"
    );

    for bad in [
        "/models/nope",
        "/models/m/v9",
        "/models/m/1",
        "/models/..%2Fm/v1",
    ] {
        let (status, html) = get(&console, bad, 1 << 20);
        assert_eq!(status, 404, "{bad}: {html}");
    }
}

/// The numbers of the what-if result's sentence "base value B + … = M" and its table.
fn explained(html: &str) -> (f64, f64, f64) {
    let sentence = html.split("base value ").nth(1).unwrap();
    let base: f64 = sentence.split(' ').next().unwrap().parse().unwrap();
    let margin: f64 = sentence
        .split("= ")
        .nth(1)
        .and_then(|m| m.split(". ").next())
        .unwrap()
        .parse()
        .unwrap();
    let table = html.split("<tbody>").last().unwrap();
    let sum: f64 = table
        .split(r#"<td class="num">"#)
        .skip(1)
        .map(|c| c.split('<').next().unwrap().parse::<f64>().unwrap())
        .sum();
    (base, margin, sum)
}

#[test]
fn predictions_promotion_and_rollback_work_from_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    train_tiny(&dir.path().join("data"), dir.path());
    train_tiny(&dir.path().join("data"), dir.path());
    let (_up, console) = start_console(dir.path());

    // The what-if form: one field per input, numbers with their training range, and the
    // prediction of the typical record with every column's contribution.
    let (status, html) = get(&console, "/models/m/v1/predict", 1 << 20);
    assert_eq!(status, 200, "{html}");
    for part in [
        r#"<label for="in-0">x</label>"#,
        r#"<label for="in-1">z</label>"#,
        "training saw 0 to 0.99",
        r#"<p class="headline" id="predicted">Predicted: "#,
        r#"<svg class="contributions""#,
        r#"enctype="multipart/form-data""#,
    ] {
        assert!(html.contains(part), "{part} missing: {html}");
    }
    assert!(
        !html.contains(r#"<label for="in-2">"#),
        "the ID column is no input"
    );
    // The URL is the record; `_fragment` answers the result alone, for the page's script.
    let (status, yes) = get(
        &console,
        "/models/m/v1/predict?x=0.95&z=0.05&_fragment=1",
        1 << 20,
    );
    assert_eq!(status, 200, "{yes}");
    assert!(!yes.contains("<html"), "a fragment, not a page: {yes}");
    assert!(yes.contains("Predicted: yes"), "{yes}");
    let (base, margin, sum) = explained(&yes);
    assert!(
        (base + sum - margin).abs() < 1e-3,
        "{base} + {sum} != {margin}: {yes}"
    );
    assert!(margin > base, "x > z pushes toward yes: {yes}");
    let (_, no) = get(
        &console,
        "/models/m/v1/predict?x=0.05&z=0.95&_fragment=1",
        1 << 20,
    );
    assert!(no.contains("Predicted: no"), "{no}");
    assert!(no.contains("x = 0.05"), "{no}");
    // A blank field is missing: scored, with a warning naming it. With both inputs missing or
    // unreadable the record is refused (as the endpoint refuses it), shown on the page, not a
    // server error.
    let (status, half) = get(
        &console,
        "/models/m/v1/predict?x=&z=0.5&_fragment=1",
        1 << 20,
    );
    assert_eq!(status, 200, "{half}");
    assert!(half.contains("Predicted: "), "{half}");
    assert!(
        half.contains(r#"<p class="warning">"#) && half.contains("x = missing"),
        "{half}"
    );
    let (status, odd) = get(
        &console,
        "/models/m/v1/predict?x=&z=abc&_fragment=1",
        1 << 20,
    );
    assert_eq!(status, 200, "{odd}");
    assert!(odd.contains("Cannot score this record: record 0:"), "{odd}");
    assert!(!odd.contains("Predicted: "), "{odd}");
    let (status, _) = get(&console, "/models/m/v7/predict", 1 << 20);
    assert_eq!(status, 404);

    // Batch prediction: a CSV upload answers `millrace predict`'s CSV, as a download.
    let boundary = "----millrace-test";
    let upload = |csv: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"rows.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
        )
    };
    let content_type = format!("Content-Type: multipart/form-data; boundary={boundary}");
    let body = upload("id,x,z\nc1,0.9,0.1\nc2,0.1,0.9\n");
    let (status, head, csv) = request(
        &console,
        "POST",
        "/models/m/v1/predict",
        &[&content_type, "Sec-Fetch-Site: same-origin"],
        body.as_bytes(),
        1 << 20,
    );
    assert_eq!(status, 200, "{head}\n{csv}");
    assert!(head.contains("filename=\"m-v1-predictions.csv\""), "{head}");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("id,predicted_label,probability"),
        "{csv}"
    );
    assert!(
        lines[1].starts_with("c1,yes,") && lines[2].starts_with("c2,no,"),
        "{csv}"
    );
    let (status, _, page) = request(
        &console,
        "POST",
        "/models/m/v1/predict",
        &[&content_type],
        upload("").as_bytes(),
        1 << 20,
    );
    assert_eq!(status, 400, "an empty file: {page}");
    assert!(page.contains("choose a CSV file"), "{page}");

    // Promotion and rollback, from the console's own pages only.
    let promote = |version: u32, extra: &str| {
        request(
            &console,
            "POST",
            "/models/m/promote",
            &["Content-Type: application/x-www-form-urlencoded", extra],
            format!("version={version}").as_bytes(),
            1 << 20,
        )
    };
    let (status, _, page) = promote(2, "Origin: https://evil.example");
    assert_eq!(status, 403, "{page}");
    let (_, html) = get(&console, "/models/m", 1 << 20);
    assert!(html.contains("No version in production."), "{html}");
    let (status, head, _) = promote(1, "Sec-Fetch-Site: same-origin");
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /models/m?promoted=1"), "{head}");
    let (status, head, _) = promote(2, &format!("Origin: {console}"));
    assert_eq!(status, 303, "{head}");
    assert!(
        head.contains("location: /models/m?promoted=2&replaced=1"),
        "{head}"
    );
    let (_, html) = get(&console, "/models/m?promoted=2&replaced=1", 1 << 20);
    assert!(
        html.contains("v2 is now in production (it replaced v1)."),
        "{html}"
    );
    assert!(
        html.contains(r#"In production: <a href="/models/m/v2">v2</a>"#),
        "{html}"
    );
    let (status, head, _) = request(
        &console,
        "POST",
        "/models/m/rollback",
        &["Sec-Fetch-Site: same-origin"],
        b"",
        1 << 20,
    );
    assert_eq!(status, 303, "{head}");
    let (_, html) = get(&console, "/models/m", 1 << 20);
    assert!(
        html.contains(r#"In production: <a href="/models/m/v1">v1</a>"#),
        "{html}"
    );
    let (status, _, page) = promote(9, "Sec-Fetch-Site: same-origin");
    assert_eq!(status, 404, "{page}");
}

/// `q` as a query-string value.
fn enc(q: &str) -> String {
    url::form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

#[test]
fn the_sql_box_reads_the_lake_and_downloads_the_result_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let up = start_up(
        dir.path(),
        "[console]\naddr = \"127.0.0.1:0\"\n\
         [[delivery]]\nname = \"churn-lake\"\nstream = \"churn\"\nlake = \"lake\"\n\
         buffer_interval_secs = 0\nprefix = \"raw/churn/\"\n",
        &["kinesis", "admin", "console"],
    );
    let console = up.url("console").to_owned();
    produce(
        dir.path(),
        up.url("kinesis"),
        &[
            r#"{"customerID":"A-1","tenure":5}"#,
            r#"{"customerID":"B-2","tenure":7}"#,
            r#"{"customerID":"C-3","tenure":1}"#,
        ],
    );
    // The delivery's table, once every record is in the lake.
    let count = format!("/sql?q={}", enc("SELECT count(*) AS n FROM churn_lake"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, html) = get(&console, &count, 1 << 20);
        if status == 200 && html.contains("<td>3</td>") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}: {html}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, html) = get(&console, "/sql", 1 << 20);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<code>churn_lake</code>"), "{html}");
    assert!(html.contains(r#"<label for="q">"#), "{html}");

    // Rows in the query's order, and downloads of the same rows.
    let sql = "SELECT customerID, tenure FROM churn_lake ORDER BY tenure";
    let (status, html) = get(&console, &format!("/sql?q={}", enc(sql)), 1 << 20);
    assert_eq!(status, 200, "{html}");
    let at = |id: &str| {
        html.find(&format!("<td>{id}</td>"))
            .unwrap_or_else(|| panic!("{id}: {html}"))
    };
    assert!(at("C-3") < at("A-1") && at("A-1") < at("B-2"), "{html}");
    assert!(html.contains("3 row(s)"), "{html}");
    let download = |format: &str| {
        let path = format!("/sql?q={}&format={format}", enc(sql));
        let (status, head, body) = request_bytes(&console, "GET", &path, &[], b"", 1 << 20);
        assert_eq!(status, 200, "{head}");
        let name = format!("attachment; filename=\"query.{format}\"");
        assert!(head.contains(&name), "{head}");
        body
    };
    assert_eq!(
        String::from_utf8(download("csv")).unwrap(),
        "customerID,tenure\nC-3,1\nA-1,5\nB-2,7\n"
    );
    let parquet = download("parquet");
    assert!(parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"));
    let file = dir.path().join("query.parquet");
    std::fs::write(&file, &parquet).unwrap();
    let out = millrace()
        .args([
            "query",
            "SELECT customerID FROM t ORDER BY tenure",
            "--format",
            "csv",
        ])
        .arg("--table")
        .arg(format!("t={}:parquet", file.display()))
        .output()
        .unwrap();
    assert_ran(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "customerID\nC-3\nA-1\nB-2\n"
    );

    // The row limit: the first 100 rows shown, and the page says more followed.
    let (status, html) = get(
        &console,
        &format!(
            "/sql?q={}",
            enc("SELECT value FROM generate_series(1, 150)")
        ),
        1 << 20,
    );
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("the first 100: more were left out"), "{html}");
    assert_eq!(html.matches("<tr>").count(), 101, "a header and 100 rows");

    // A lake folder named in the address is a table; the lake page links to it.
    let (status, html) = get(&console, "/lake?prefix=raw%2Fchurn%2F", 1 << 20);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Query this folder with SQL"), "{html}");
    let (status, html) = get(
        &console,
        &format!(
            "/sql?table=r%3Draw%2Fchurn%2F&q={}",
            enc("SELECT max(tenure) AS m FROM r")
        ),
        1 << 20,
    );
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<td>7</td>"), "{html}");

    // Nothing that would change anything, nothing outside the lake.
    let outside = dir.path().join("copied.csv");
    std::fs::write(dir.path().join("secret.json"), "{\"secret\":\"outside\"}\n").unwrap();
    let lake = dir.path().join("data").join("lake");
    std::fs::create_dir_all(lake.join("linked")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.json"), lake.join("linked/s.json")).unwrap();
    for (path, why) in [
        (
            format!(
                "/sql?q={}",
                enc(&format!("COPY (SELECT 1) TO '{}'", outside.display()))
            ),
            "DML not supported",
        ),
        (
            format!("/sql?q={}", enc("CREATE TABLE t AS SELECT 1")),
            "DDL not supported",
        ),
        (
            format!(
                "/sql?q={}",
                enc(&format!(
                    "CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '{}'",
                    dir.path().join("secret.json").display()
                ))
            ),
            "DDL not supported",
        ),
        (format!("/sql?q={}", enc("SELEC 1")), "the query"),
        (format!("/sql?q={}", enc("SELECT * FROM nope")), "nope"),
        (
            format!("/sql?table=x%3D..%2F&q={}", enc("SELECT * FROM x")),
            "..",
        ),
        (
            format!("/sql?table=x%3D%2Fetc&q={}", enc("SELECT * FROM x")),
            "absolute path",
        ),
        (
            format!("/sql?table=x%3Dlinked%2F&q={}", enc("SELECT * FROM x")),
            "links out of the lake",
        ),
        ("/sql?q=1&format=xlsx".to_owned(), "csv or parquet"),
        ("/sql?q=1&limit=7".to_owned(), "limit must be"),
    ] {
        let (status, html) = get(&console, &path, 1 << 20);
        assert_eq!(status, 400, "{path}: {html}");
        assert!(html.contains(why), "{path}: {why} missing: {html}");
        assert!(!html.contains("outside"), "{path} leaked: {html}");
    }
    assert!(!outside.exists(), "COPY wrote a file");
    // The refused query stays in the form, to be fixed.
    let (_, html) = get(
        &console,
        &format!("/sql?q={}", enc("SELECT * FROM nope")),
        1 << 20,
    );
    assert!(html.contains(">SELECT * FROM nope</textarea>"), "{html}");
}

/// The lake page of folder `ds/` links to `form` (`link` its text), and the form offers each
/// of `columns` to choose from: the form's HTML.
fn folder_offers(console: &str, form: &str, link: &str, columns: &[&str]) -> String {
    let (_, html) = get(console, "/lake?prefix=ds%2F", 1 << 20);
    assert!(
        html.contains(&format!(r#"<a href="{form}?prefix=ds%2F">{link}</a>"#)),
        "{html}"
    );
    let (status, html) = get(console, &format!("{form}?prefix=ds%2F"), 1 << 20);
    assert_eq!(status, 200, "{html}");
    for c in columns {
        assert!(
            html.contains(&format!("<option>{c}</option>")),
            "{c}: {html}"
        );
    }
    html
}

/// POSTs the form `body` to `path` with one more header (where it comes from).
fn post_form(console: &str, path: &str, body: &str, header: &str) -> (u16, String, String) {
    request(
        console,
        "POST",
        path,
        &["Content-Type: application/x-www-form-urlencoded", header],
        body.as_bytes(),
        1 << 20,
    )
}

/// The `Location` of a redirect's head.
fn location(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("no location: {head}"))
        .to_owned()
}

#[test]
fn data_quality_reports_are_made_from_the_lake_and_read_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, console) = start_console(dir.path());
    let folder = dir.path().join("data").join("lake").join("ds");
    std::fs::create_dir_all(&folder).unwrap();
    let rows: String = (0..40)
        .map(|i| {
            format!(
                "{{\"customerID\":\"C-{i}\",\"tenure\":{i},\"plan\":\"{}\",\"same\":\"x\",\"churn\":\"{}\"}}\n",
                if i % 3 == 0 { "basic" } else { "pro" },
                if i % 4 == 0 { "Yes" } else { "No" }
            )
        })
        .collect();
    std::fs::write(folder.join("part-0.ndjson"), rows).unwrap();

    folder_offers(
        &console,
        "/quality/new",
        "Profile this folder",
        &["customerID", "tenure", "plan", "same", "churn"],
    );
    let post = |body: &str, origin: &str| post_form(&console, "/quality", body, origin);
    let (status, _, page) = post("prefix=ds%2F&target=churn", "Origin: https://evil.example");
    assert_eq!(status, 403, "{page}");
    let (status, head, page) = post("prefix=ds%2F&target=churn", "Sec-Fetch-Site: same-origin");
    assert_eq!(status, 303, "{head}{page}");
    let at = location(&head);
    assert!(at.starts_with("/quality/"), "{at}");
    // It runs in the background; its page refreshes itself until it is done.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let html = loop {
        let (status, html) = get(&console, &at, 1 << 20);
        assert_eq!(status, 200, "{html}");
        if html.contains(r#"<span class="state">done</span>"#) {
            break html;
        }
        assert!(!html.contains("failed"), "{html}");
        assert!(html.contains(r#"http-equiv="refresh""#), "{html}");
        assert!(std::time::Instant::now() < deadline, "{html}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(html.contains("40 rows × 5 columns"), "{html}");
    assert!(
        html.contains("`same` has"),
        "the constant column's warning: {html}"
    );
    assert!(html.contains("<iframe class=\"report\""), "{html}");
    assert!(!html.contains("http-equiv=\"refresh\""), "{html}");
    let (status, head, report) =
        request(&console, "GET", &format!("{at}/report"), &[], b"", 1 << 22);
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-security-policy: sandbox"), "{head}");
    assert!(report.contains("<svg"), "the report draws its charts");
    let (status, json) = get(&console, &format!("{at}/report.json"), 1 << 22);
    assert_eq!(status, 200);
    let json = json.trim_start_matches(|c| c != '{');
    let report: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(report["summary"]["rows"], 40);
    assert_eq!(report["target"]["column"], "churn");
    let (_, list) = get(&console, "/quality", 1 << 20);
    assert!(
        list.contains(">ds</a>") && list.contains("<td class=\"state\">done</td>"),
        "{list}"
    );

    // A target the folder lacks, and folders outside the lake.
    let (status, _, page) = post("prefix=ds%2F&target=nope", "Sec-Fetch-Site: same-origin");
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("has no column"), "{page}");
    for body in [
        "prefix=..%2F",
        "prefix=%2Fetc",
        "prefix=",
        "prefix=nothere%2F",
    ] {
        let (status, _, page) = post(body, "Sec-Fetch-Site: same-origin");
        assert_eq!(status, 404, "{body}: {page}");
    }
    for path in [
        "/quality/new?prefix=..%2F",
        "/quality/nope",
        "/quality/..",
        "/quality/nope/report",
    ] {
        let (status, _) = get(&console, path, 1 << 20);
        assert_eq!(status, 404, "{path}");
    }
}

/// A lake folder `ds/` of `rows` customers whose `churn` follows their plan and tenure.
fn churn_folder(dir: &Path, rows: usize) {
    let folder = dir.join("data").join("lake").join("ds");
    std::fs::create_dir_all(&folder).unwrap();
    let lines: String = (0..rows)
        .map(|i| {
            let plan = ["basic", "pro", "team"][i % 3];
            let tenure = (i * 7) % 72;
            let churn = (plan == "basic" && tenure < 30) || (i % 11 == 0);
            format!(
                "{{\"customerID\":\"C-{i}\",\"tenure\":{tenure},\"plan\":\"{plan}\",\"charges\":{},\"churn\":\"{}\"}}\n",
                20 + (i * 13) % 90,
                if churn { "Yes" } else { "No" }
            )
        })
        .collect();
    std::fs::write(folder.join("part-0.ndjson"), lines).unwrap();
}

/// Reads a `/train/{id}/events` stream to its end: each `training` event's JSON.
fn training_events(console: &str, id: &str) -> Vec<serde_json::Value> {
    let (status, _, body) = request(
        console,
        "GET",
        &format!("/train/{id}/events"),
        &[],
        b"",
        64 << 20,
    );
    assert_eq!(status, 200, "{body}");
    let mut events = Vec::new();
    let mut kind = "";
    for line in body.lines() {
        if let Some(k) = line.strip_prefix("event: ") {
            kind = k;
        } else if let Some(data) = line.strip_prefix("data: ") {
            assert_eq!(kind, "training", "{body}");
            events.push(serde_json::from_str(data).unwrap());
        }
    }
    events
}

#[test]
fn a_model_is_trained_from_a_lake_folder_and_its_leaderboard_fills_in() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, console) = start_console(dir.path());
    churn_folder(dir.path(), 1500);

    let html = folder_offers(
        &console,
        "/train/new",
        "Train a model on this folder",
        &["customerID", "tenure", "plan", "charges", "churn"],
    );
    assert!(
        html.contains(r#"id="name" name="name" value="ds""#),
        "{html}"
    );
    assert!(html.contains(r#"<option value="auc">"#), "{html}");
    let post = |body: &str, origin: &str| post_form(&console, "/train", body, origin);
    let form = "prefix=ds%2F&target=churn&name=churn-ds&objective=auc&mode=quick&budget_s=60";
    let (status, _, page) = post(form, "Origin: https://evil.example");
    assert_eq!(status, 403, "{page}");

    // Refused before anything runs, each problem named.
    for (body, status_wanted, says) in [
        ("prefix=ds%2F&target=nope&name=m", 400, "has no column"),
        ("prefix=ds%2F&target=churn&name=..%2Fm", 400, "model name"),
        (
            "prefix=ds%2F&target=churn&name=m&objective=rmse%3B",
            400,
            "metric",
        ),
        (
            "prefix=ds%2F&target=churn&name=m&mode=slow",
            400,
            "quick or best",
        ),
        (
            "prefix=ds%2F&target=churn&name=m&budget_s=1",
            400,
            "between 10 and 3600",
        ),
        (
            "prefix=ds%2F&target=churn&name=m&budget_s=x",
            400,
            "whole number",
        ),
        ("prefix=..%2F&target=churn&name=m", 404, "not a"),
        ("prefix=%2Fetc&target=churn&name=m", 404, "not a"),
        ("prefix=nothere%2F&target=churn&name=m", 404, "not a"),
    ] {
        let (status, _, page) = post(body, "Sec-Fetch-Site: same-origin");
        assert_eq!(status, status_wanted, "{body}: {page}");
        assert!(page.contains(says), "{body}: {page}");
    }
    let (_, list) = get(&console, "/train", 1 << 20);
    assert!(list.contains("No trainings yet"), "{list}");

    let (status, head, page) = post(form, "Sec-Fetch-Site: same-origin");
    assert_eq!(status, 303, "{head}{page}");
    let at = location(&head);
    let id = at.strip_prefix("/train/").unwrap_or_else(|| panic!("{at}"));
    let (status, html) = get(&console, &at, 1 << 20);
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(r#"<noscript><meta http-equiv="refresh" content="2"></noscript>"#),
        "a running training's page refreshes itself without JavaScript: {html}"
    );

    // The event stream follows it to the end, one event per change.
    let events = training_events(&console, id);
    let last = events.last().unwrap_or_else(|| panic!("no events"));
    assert_eq!(last["state"], "done", "{last}");
    let counts: Vec<usize> = events
        .iter()
        .map(|e| e["candidates"].as_array().unwrap().len())
        .collect();
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "candidates only come in: {counts:?}"
    );
    let planned = last["planned"].as_u64().unwrap() as usize;
    assert!(planned >= 5, "{last}");
    assert_eq!(counts.last(), Some(&planned), "{last}");
    assert_eq!(last["metric"], "auc");
    assert_eq!(last["higher_is_better"], true);
    let ranked: Vec<f64> = last["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cv"].as_f64().unwrap())
        .collect();
    assert_eq!(ranked.len(), planned);
    assert!(
        ranked.windows(2).all(|w| w[0] >= w[1]),
        "best first: {ranked:?}"
    );
    assert!(
        ranked[0] > 0.8,
        "the folder's pattern is learnt: {ranked:?}"
    );
    assert_eq!(last["version"], 1);
    assert_eq!(last["version_link"], "/models/churn-ds/v1");
    let lines = last["lines"].as_array().unwrap();
    assert!(
        lines[0]
            .as_str()
            .unwrap()
            .starts_with("read 1500 rows × 5 columns from ds"),
        "{lines:?}"
    );

    // The finished page: the saved version, the whole leaderboard, no refreshing.
    let (_, html) = get(&console, &at, 1 << 20);
    assert!(
        html.contains(r#"<span class="state" id="train-state">done</span>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"href="/models/churn-ds/v1">churn-ds:v1</a>"#),
        "{html}"
    );
    assert!(!html.contains("http-equiv"), "{html}");
    assert_eq!(
        html.matches(r#"<tr><td class="num">"#).count(),
        planned,
        "{html}"
    );
    let (status, version) = get(&console, "/models/churn-ds/v1", 1 << 22);
    assert_eq!(status, 200, "{version}");
    assert!(version.contains("auc"), "{version}");
    assert!(
        dir.path()
            .join("data/lake/models/churn-ds/v1/model.json")
            .is_file(),
        "saved in the registry as `millrace train` saves"
    );
    let (_, list) = get(&console, "/train", 1 << 20);
    assert!(
        list.contains(&format!(r#"<a href="/train/{id}">churn-ds</a>"#))
            && list.contains(r#"<td class="state">done</td>"#)
            && list.contains(r#"<a href="/models/churn-ds/v1">v1</a>"#),
        "{list}"
    );
    for path in ["/train/nope", "/train/..", "/train/nope/events"] {
        let (status, body) = get(&console, path, 1 << 20);
        assert!(
            status == 404 || body.contains("event: gone"),
            "{path}: {status} {body}"
        );
    }

    // A metric the problem does not take passes the form (it is a metric) and fails in
    // training, which says why; the page shows it.
    let (status, head, _) = post(
        "prefix=ds%2F&target=churn&name=churn-rmse&objective=rmse",
        "Sec-Fetch-Site: same-origin",
    );
    assert_eq!(status, 303, "{head}");
    let at = location(&head);
    let events = training_events(&console, at.strip_prefix("/train/").unwrap());
    let last = events.last().unwrap();
    assert_eq!(last["state"], "failed", "{last}");
    let why = last["error"].as_str().unwrap();
    assert!(why.contains("does not apply to a binary target"), "{why}");
    let (_, html) = get(&console, &at, 1 << 20);
    assert!(
        html.contains(r#"<p class="problem" role="alert" id="train-error">"#)
            && html.contains("does not apply to a binary target"),
        "{html}"
    );
    assert!(last["version"].is_null() && !dir.path().join("data/lake/models/churn-rmse").exists());
}

#[test]
fn the_monitor_shows_each_models_drift_its_alert_and_its_history() {
    use millrace_serve::monitor::{DriftReport, FeatureDrift};
    let dir = tempfile::tempdir().unwrap();
    let (_up, console) = start_console(dir.path());
    let (status, html) = get(&console, "/monitor", 1 << 20);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("No drift reports yet"), "{html}");

    // Saved as an endpoint saves them: three times, the input moving away.
    let data = dir.path().join("data");
    let report = |at_ms: i64, tenure: f64| DriftReport {
        model: "churn".into(),
        version: 3,
        at_ms,
        window: 1000,
        window_records: 1000,
        observed_records: 5000,
        min_records: 200,
        threshold: 0.2,
        drifting: tenure >= 0.2,
        features: vec![
            FeatureDrift {
                feature: "tenure".into(),
                psi: tenure,
                moved: None,
            },
            FeatureDrift {
                feature: "<Contract>".into(),
                psi: 0.01,
                moved: None,
            },
        ],
    };
    for (at, psi) in [
        (1_796_558_700_000, 0.02),
        (1_796_558_710_000, 0.15),
        (1_796_558_720_000, 0.4),
    ] {
        report(at, psi).save(&data, "churn").unwrap();
    }
    let (status, html) = get(&console, "/monitor", 1 << 20);
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(r#"<a href="/monitor/churn">churn</a>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<td class="state">drifting</td>"#),
        "{html}"
    );
    assert!(html.contains("tenure (PSI 0.400)"), "{html}");

    let (status, html) = get(&console, "/monitor/churn", 1 << 20);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(r#"id="alert">drifting</p>"#), "{html}");
    assert!(
        html.contains("drifting: yes (max PSI 0.400 on tenure"),
        "{html}"
    );
    // Time across, PSI up (0.4 is the top): tenure's line rises to the top right.
    assert!(
        html.contains(
            r#"<polyline points="0.0,190.0 300.0,125.0 600.0,0.0" class="l0"><title>tenure</title>"#
        ),
        "{html}"
    );
    assert!(html.contains("3 save(s)"), "{html}");
    assert!(
        html.contains("&#60;Contract&#62;"),
        "feature names escaped: {html}"
    );
    assert!(!html.contains("<Contract>"), "{html}");
    for path in ["/monitor/nope", "/monitor/..", "/monitor/a%2Fb"] {
        let (status, _) = get(&console, path, 1 << 20);
        assert_eq!(status, 404, "{path}");
    }
}

/// `millrace identity add NAME --policy FILE`: the access key ID and secret.
fn identity(dir: &Path, name: &str, policy: &str) -> (String, String) {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, policy).unwrap();
    let out = millrace()
        .args(["identity", "add", name, "--identities"])
        .arg(dir.join("identities.toml"))
        .arg("--policy")
        .arg(&file)
        .output()
        .unwrap();
    assert_ran(&out);
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        key["AccessKeyId"].as_str().unwrap().to_owned(),
        key["SecretAccessKey"].as_str().unwrap().to_owned(),
    )
}

/// The `Set-Cookie` value of a response head, up to its first `;`.
fn session_cookie(head: &str) -> String {
    let line = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    line.split(';').next().unwrap().to_owned()
}

/// Waits (up to 10 s: the audit log is written by its own thread) until one line of the data
/// dir's audit log holds every one of `words`.
fn audited(data: &Path, words: &[&str], what: &str) {
    let log = millrace_auth::log_path(&data.join("state").join("audit"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().any(|l| words.iter().all(|w| l.contains(w))) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} is not audited ({words:?}): {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn under_auth_the_console_signs_in_with_an_access_key_and_each_page_needs_its_permission() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    train_tiny(&data, scratch.path());
    train_tiny(&data, scratch.path());
    let admin = identity(
        dir.path(),
        "admin",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    );
    let analyst = identity(
        dir.path(),
        "analyst",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[
            "millrace:GetStatus","kinesis:List*","kinesis:Describe*","s3:ListBucket",
            "sagemaker:Describe*","sagemaker:List*"],"Resource":"*"}]}"#,
    );
    let up = start_up(
        dir.path(),
        "[auth]\nmode = \"enforce\"\nidentities = \"identities.toml\"\n\
         [console]\naddr = \"127.0.0.1:0\"\n",
        &["kinesis", "admin", "console"],
    );
    let console = up.url("console").to_owned();
    let same = "Sec-Fetch-Site: same-origin";
    let form = "Content-Type: application/x-www-form-urlencoded";

    // Nobody signed in: every page sends to the sign-in form, which says where to come back.
    let (status, head, _) = request(&console, "GET", "/models/m", &[], b"", 1 << 20);
    assert_eq!(status, 303, "{head}");
    assert!(
        head.contains("location: /signin?next=%2Fmodels%2Fm"),
        "{head}"
    );
    let (status, page) = get(&console, "/signin?next=%2Fmodels%2Fm", 1 << 20);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(r#"name="next" value="/models/m""#) && page.contains(r#"type="password""#),
        "{page}"
    );
    let (status, _, page) = request(
        &console,
        "POST",
        "/models/m/promote",
        &[same, form],
        b"version=2",
        1 << 20,
    );
    assert_eq!(status, 401, "{page}");

    let sign_in = |(key, secret): &(String, String), headers: &[&str]| {
        let body = format!(
            "access_key_id={key}&secret_access_key={}&next=%2Fmodels%2Fm",
            secret.replace('+', "%2B").replace('/', "%2F")
        );
        request(
            &console,
            "POST",
            "/signin",
            headers,
            body.as_bytes(),
            1 << 20,
        )
    };
    let wrong = (analyst.0.clone(), "not-the-secret".to_owned());
    let (status, head, page) = sign_in(&wrong, &[same, form]);
    assert_eq!(status, 401, "{page}");
    assert!(!head.contains("set-cookie"), "{head}");
    assert!(page.contains("do not match an identity"), "{page}");
    let (status, _, page) = sign_in(&analyst, &["Origin: https://evil.example", form]);
    assert_eq!(status, 403, "a sign-in from another site: {page}");

    // The analyst: reads what their policy allows, and nothing else.
    let (status, head, _) = sign_in(&analyst, &[same, form]);
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /models/m"), "{head}");
    let set = head
        .lines()
        .find(|l| l.starts_with("set-cookie: "))
        .unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    let cookie = format!("Cookie: {}", session_cookie(&head));
    let read = |path: &str| request(&console, "GET", path, &[&cookie], b"", 1 << 22);
    let (status, _, page) = read("/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("signed in as analyst"), "{page}");
    for path in [
        "/streams",
        "/streams/churn",
        "/lake",
        "/models",
        "/models/m",
        "/models/m/v2",
    ] {
        let (status, _, page) = read(path);
        assert_eq!(status, 200, "{path}: {page}");
    }
    for (path, action) in [
        (
            "/streams/churn?shard=shardId-000000000000",
            "kinesis:GetRecords",
        ),
        (
            "/lake/object?key=models%2Fm%2Fv1%2Fmodel.json",
            "s3:GetObject",
        ),
        ("/sql?q=SELECT+1", "s3:GetObject"),
        ("/models/m/v1/predict", "sagemaker:InvokeEndpoint"),
    ] {
        let (status, _, page) = read(path);
        assert_eq!(status, 403, "{path}: {page}");
        assert!(
            page.contains("AccessDeniedException") && page.contains(action),
            "{path}: {page}"
        );
    }
    // Its model page's forms carry the session's token; without it a post is refused before
    // anything else, with it the policy still decides.
    let (_, _, page) = read("/models/m");
    let token = page
        .split("/promote?csrf=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("{page}"))
        .to_owned();
    assert_eq!(token.len(), 64, "{token}");
    let post = |path: &str, cookie: &str| {
        request(
            &console,
            "POST",
            path,
            &[cookie, same, form],
            b"version=1",
            1 << 20,
        )
    };
    let (status, _, page) = post("/models/m/promote", &cookie);
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("not from your session"), "{page}");
    let (status, _, page) = post(&format!("/models/m/promote?csrf={token}"), &cookie);
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("sagemaker:UpdateModelPackage"), "{page}");

    // The admin may promote, with its own session's token only.
    let (_, head, _) = sign_in(&admin, &[same, form]);
    let admin_cookie = format!("Cookie: {}", session_cookie(&head));
    let (status, _, page) = post(&format!("/models/m/promote?csrf={token}"), &admin_cookie);
    assert_eq!(status, 403, "another session's token: {page}");
    let (_, _, page) = request(&console, "GET", "/models/m", &[&admin_cookie], b"", 1 << 20);
    assert!(page.contains("signed in as admin"), "{page}");
    let admin_token = page
        .split("/promote?csrf=")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let (status, head, page) = post(
        &format!("/models/m/promote?csrf={admin_token}"),
        &admin_cookie,
    );
    assert_eq!(status, 303, "{head}{page}");

    // Signing out ends the session on the server, not only in the browser.
    let (status, head, _) = request(
        &console,
        "POST",
        &format!("/signout?csrf={token}"),
        &[&cookie, same],
        b"",
        1 << 20,
    );
    assert_eq!(status, 303, "{head}");
    assert!(
        head.contains("location: /signin") && head.contains("Max-Age=0"),
        "{head}"
    );
    let (status, head, _) = read("/models");
    assert_eq!(status, 303, "signed out: {head}");
    audited(&data, &["console:SignIn"], "the failed sign-in");
    audited(&data, &["kinesis:GetRecords"], "the refused page");
}

#[test]
fn under_auth_log_the_console_is_open_and_what_it_would_refuse_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    identity(
        dir.path(),
        "reader",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"millrace:GetStatus","Resource":"*"}]}"#,
    );
    let up = start_up(
        dir.path(),
        "[auth]\nmode = \"log\"\nidentities = \"identities.toml\"\n\
         [console]\naddr = \"127.0.0.1:0\"\n",
        &["kinesis", "admin", "console"],
    );
    let console = up.url("console").to_owned();
    let (status, page) = get(&console, "/streams", 1 << 20);
    assert_eq!(status, 200, "nobody needs to sign in under log: {page}");
    assert!(!page.contains("signed in as"), "{page}");
    audited(
        &dir.path().join("data"),
        &["would-deny", "kinesis:ListStreams"],
        "what enforce would refuse",
    );
}
