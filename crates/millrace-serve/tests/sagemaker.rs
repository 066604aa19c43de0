//! The SageMaker Runtime API on a real endpoint (127.0.0.1:0) serving a churn model trained on
//! Telco rows, over HTTP as the AWS SDKs send it: InvokeEndpoint answers what `/invocations`
//! answers, with the version that scored and the custom attributes; endpoint names and
//! TargetVariant pin versions; errors come in SageMaker's shapes (`x-amzn-errortype`,
//! `ModelError` with the model's status); the response stream carries one `PayloadPart` per
//! record, decoded with the SDKs' own event-stream reader, or ends in an exception event; an
//! asynchronous invocation writes its output (or failure) where its answer says, and no key a
//! client sends reaches outside the lake folder.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_smithy_eventstream::frame::read_message_from;
use aws_smithy_eventstream::smithy::parse_response_headers;
use millrace_automl::train::{self, Options, Trained};
use millrace_serve::endpoint::Endpoint;
use millrace_serve::registry::Registry;
use millrace_wrangle::{Column, Frame};
use serde_json::{Value, json};

fn telco() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/telco-customer-churn.csv")
}

/// The first rows of Telco, every value as text (blank = missing), as the stream carries them.
fn telco_rows(n: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(telco()).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .take(n)
        .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// A churn model trained once per test binary on 2,000 Telco rows.
fn trained() -> &'static Trained {
    static T: OnceLock<Trained> = OnceLock::new();
    T.get_or_init(|| {
        let (header, rows) = telco_rows(2000);
        let mut f = Frame::new(rows.len());
        for (i, name) in header.iter().enumerate() {
            let col = rows
                .iter()
                .map(|r| (!r[i].trim().is_empty()).then(|| r[i].clone()))
                .collect();
            f.set(name.as_str().into(), Column::Str(col));
        }
        let opts = Options {
            folds: 2,
            ..Options::new("Churn")
        };
        train::train(&f, &opts, &|_| {}).expect("training on Telco")
    })
}

/// Rows 3000.. of Telco as records without the target, as a client sends them.
fn records(n: usize) -> Vec<Value> {
    let (header, rows) = telco_rows(3000 + n);
    rows[3000..]
        .iter()
        .map(|r| {
            let m: serde_json::Map<String, Value> = header
                .iter()
                .zip(r)
                .filter(|(h, _)| *h != "Churn")
                .map(|(h, v)| (h.clone(), Value::from(v.as_str())))
                .collect();
            Value::Object(m)
        })
        .collect()
}

/// Saves version `v` of churn; `edit` may change the artifact's JSON first.
fn save_version(reg: &Registry, v: u32, edit: impl Fn(&mut Value)) {
    let dir = reg.root().join("churn").join(format!("v{v}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut model = trained().model.clone();
    model.name = "churn".into();
    model.version = v;
    let mut json: Value = serde_json::from_str(&model.to_json()).unwrap();
    edit(&mut json);
    std::fs::write(dir.join("model.json"), json.to_string()).unwrap();
}

/// An artifact whose first member points at a feature set that is not there: it loads, and
/// panics while scoring.
fn break_scoring(model: &mut Value) {
    model["members"][0]["features"] = json!(99);
}

struct Server {
    _dir: tempfile::TempDir,
    lake: PathBuf,
    url: String,
    client: reqwest::Client,
}

/// An endpoint serving churn (v1 and v2 saved, so v2 serves; v3 panics while scoring) with a
/// 1 MiB body limit.
async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::new(dir.path());
    save_version(&reg, 1, |_| {});
    save_version(&reg, 2, |_| {});
    let ep = Arc::new(Endpoint::load(reg.clone(), &["churn".to_owned()]).unwrap());
    save_version(&reg, 3, break_scoring);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ep.serve(listener, 1 << 20, std::future::pending()));
    Server {
        lake: dir.path().join("lake"),
        _dir: dir,
        url,
        client: reqwest::Client::new(),
    }
}

impl Server {
    async fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> reqwest::Response {
        let mut req = self.client.post(format!("{}{path}", self.url)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// What `/invocations` answers for this body.
    async fn invocations(&self, headers: &[(&str, &str)], body: Vec<u8>) -> Vec<u8> {
        let resp = self.post("/invocations", headers, body).await;
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap().to_vec()
    }

    async fn metrics(&self) -> String {
        let resp = self.client.get(format!("{}/metrics", self.url)).send();
        resp.await.unwrap().text().await.unwrap()
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// The error type and JSON body of a SageMaker error answer, checking its status.
async fn sagemaker_error(resp: reqwest::Response, status: u16) -> (String, Value) {
    assert_eq!(resp.status(), status);
    let kind = header(&resp, "x-amzn-errortype").to_owned();
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    (kind, body)
}

/// Every message of an event stream: (message type, event or exception type, payload).
fn events(mut bytes: &[u8]) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let m = read_message_from(&mut bytes).unwrap();
        let h = parse_response_headers(&m).unwrap();
        out.push((
            h.message_type.as_str().to_owned(),
            h.smithy_type.as_str().to_owned(),
            m.payload().to_vec(),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_endpoint_answers_as_invocations_with_the_variant_and_attributes() {
    let s = start().await;
    let body = serde_json::to_vec(&records(5)).unwrap();
    let want = s.invocations(&[JSON], body.clone()).await;
    let resp = s
        .post(
            "/endpoints/churn/invocations",
            &[JSON, ("X-Amzn-SageMaker-Custom-Attributes", "trace=abc-1")],
            body.clone(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/json");
    assert_eq!(header(&resp, "x-amzn-invoked-production-variant"), "v2");
    assert_eq!(header(&resp, "x-millrace-model"), "churn:v2");
    assert_eq!(
        header(&resp, "x-amzn-sagemaker-custom-attributes"),
        "trace=abc-1"
    );
    assert_eq!(header(&resp, "x-amzn-requestid").len(), 36);
    let got = resp.bytes().await.unwrap();
    assert_eq!(got, want);
    let predictions: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(predictions["predictions"].as_array().unwrap().len(), 5);

    // CSV in, CSV out (Accept), as /invocations.
    let (header_row, rows) = telco_rows(3005);
    let churn = header_row.iter().position(|h| h == "Churn").unwrap();
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in &rows[3000..] {
        let r: Vec<&String> = r
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != churn)
            .map(|(_, v)| v)
            .collect();
        w.write_record(r).unwrap();
    }
    let csv_body = w.into_inner().unwrap();
    let csv = [("content-type", "text/csv"), ("accept", "text/csv")];
    let want = s.invocations(&csv, csv_body.clone()).await;
    let resp = s.post("/endpoints/churn/invocations", &csv, csv_body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "text/csv");
    assert!(
        !resp
            .headers()
            .contains_key("x-amzn-sagemaker-custom-attributes")
    );
    assert_eq!(resp.bytes().await.unwrap(), want);

    // Counted with the model's requests: 2 on /invocations, 2 here.
    let m = s.metrics().await;
    assert!(
        m.contains("millrace_endpoint_requests_total{model=\"churn\",status=\"2xx\"} 4"),
        "{m}"
    );
    assert!(
        m.contains("millrace_endpoint_records_total{model=\"churn\"} 20"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_names_and_target_variants_pick_versions() {
    let s = start().await;
    let body = serde_json::to_vec(&records(2)).unwrap();
    for (path, variant, want) in [
        ("/endpoints/churn/invocations", None, "v2"),
        ("/endpoints/churn-v1/invocations", None, "v1"),
        ("/endpoints/churn%3Av1/invocations", None, "v1"),
        ("/endpoints/churn-v2/invocations", None, "v2"),
        ("/endpoints/churn/invocations", Some("v1"), "v1"),
        ("/endpoints/churn-v1/invocations", Some("v1"), "v1"),
    ] {
        let mut headers = vec![JSON];
        if let Some(v) = variant {
            headers.push(("X-Amzn-SageMaker-Target-Variant", v));
        }
        let resp = s.post(path, &headers, body.clone()).await;
        assert_eq!(resp.status(), 200, "{path} {variant:?}");
        assert_eq!(
            header(&resp, "x-amzn-invoked-production-variant"),
            want,
            "{path} {variant:?}"
        );
    }
    // A version asked for twice is loaded once and kept: still right after the cache is used.
    let resp = s
        .post("/endpoints/churn-v1/invocations", &[JSON], body.clone())
        .await;
    assert_eq!(header(&resp, "x-millrace-model"), "churn:v1");

    for (path, variant, says) in [
        ("/endpoints/churn-v9/invocations", None, "has no version v9"),
        (
            "/endpoints/churn/invocations",
            Some("v9"),
            "has no version v9",
        ),
        (
            "/endpoints/churn-v1/invocations",
            Some("v2"),
            "one variant, v1",
        ),
        (
            "/endpoints/churn/invocations",
            Some("AllTraffic"),
            "Target-Variant",
        ),
    ] {
        let mut headers = vec![JSON];
        if let Some(v) = variant {
            headers.push(("X-Amzn-SageMaker-Target-Variant", v));
        }
        let resp = s.post(path, &headers, body.clone()).await;
        let (kind, err) = sagemaker_error(resp, 400).await;
        assert_eq!(kind, "ValidationError", "{path}");
        let message = err["Message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_in_sagemaker_shapes() {
    let s = start().await;
    // An unknown endpoint, in SageMaker's words.
    let resp = s
        .post("/endpoints/nope/invocations", &[JSON], b"{}".to_vec())
        .await;
    let (kind, err) = sagemaker_error(resp, 400).await;
    assert_eq!(kind, "ValidationError");
    let message = err["Message"].as_str().unwrap();
    assert!(
        message.starts_with("Endpoint nope of account 000000000000 not found."),
        "{message}"
    );
    assert!(message.contains("churn"), "{message}");

    // A body the model refuses: ModelError with the model's own status and message.
    let bad = json!([{"tenure": "1"}, {"tenure": {"nested": 1}}]);
    let resp = s
        .post(
            "/endpoints/churn/invocations",
            &[JSON],
            bad.to_string().into_bytes(),
        )
        .await;
    let (kind, err) = sagemaker_error(resp, 424).await;
    assert_eq!(kind, "ModelError");
    assert_eq!(err["OriginalStatusCode"], 400);
    let original = err["OriginalMessage"].as_str().unwrap();
    assert!(original.contains("record 1: field `tenure`"), "{original}");
    let message = err["Message"].as_str().unwrap();
    assert!(
        message.starts_with("Received client error (400) from model"),
        "{message}"
    );

    // No Content-Type (botocore sends none unless ContentType is given): 415 from the model.
    let resp = s
        .post("/endpoints/churn/invocations", &[], b"{}".to_vec())
        .await;
    let (kind, err) = sagemaker_error(resp, 424).await;
    assert_eq!(kind, "ModelError");
    assert_eq!(err["OriginalStatusCode"], 415);

    // Over the body limit: refused by the service before the model sees it.
    let resp = s
        .post(
            "/endpoints/churn/invocations",
            &[JSON],
            vec![b' '; (1 << 20) + 1],
        )
        .await;
    let (kind, err) = sagemaker_error(resp, 400).await;
    assert_eq!(kind, "ValidationError");
    assert!(err["Message"].as_str().unwrap().contains("limit"), "{err}");

    // A model that fails while scoring: our fault, InternalFailure.
    let body = serde_json::to_vec(&records(2)).unwrap();
    let resp = s
        .post("/endpoints/churn-v3/invocations", &[JSON], body)
        .await;
    let (kind, err) = sagemaker_error(resp, 500).await;
    assert_eq!(kind, "InternalFailure");
    assert!(
        err["Message"].as_str().unwrap().contains("scoring failed"),
        "{err}"
    );

    // /invocations keeps its own shape.
    let resp = s
        .post("/invocations", &[JSON], bad.to_string().into_bytes())
        .await;
    assert_eq!(resp.status(), 400);
    assert!(!resp.headers().contains_key("x-amzn-errortype"));
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("record 1"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_stream_has_one_payload_part_per_record() {
    let s = start().await;
    // More records than one scoring chunk (64), so parts follow chunk after chunk.
    let recs = records(150);
    let body = serde_json::to_vec(&recs).unwrap();
    let want: Value = serde_json::from_slice(&s.invocations(&[JSON], body.clone()).await).unwrap();
    let want = want["predictions"].as_array().unwrap().clone();
    let path = "/endpoints/churn/invocations-response-stream";
    let resp = s
        .post(
            path,
            &[JSON, ("X-Amzn-SageMaker-Custom-Attributes", "a=1")],
            body.clone(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "content-type"),
        "application/vnd.amazon.eventstream"
    );
    assert_eq!(
        header(&resp, "x-amzn-sagemaker-content-type"),
        "application/jsonlines"
    );
    assert_eq!(header(&resp, "x-amzn-invoked-production-variant"), "v2");
    assert_eq!(header(&resp, "x-amzn-sagemaker-custom-attributes"), "a=1");
    let parts = events(&resp.bytes().await.unwrap());
    assert_eq!(parts.len(), 150);
    for ((kind, event, payload), want) in parts.iter().zip(&want) {
        assert_eq!((kind.as_str(), event.as_str()), ("event", "PayloadPart"));
        assert_eq!(payload.last(), Some(&b'\n'));
        let got: Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(&got, want);
    }

    // CSV rows when asked.
    let resp = s
        .post(
            path,
            &[JSON, ("X-Amzn-SageMaker-Accept", "text/csv")],
            serde_json::to_vec(&recs[..3]).unwrap(),
        )
        .await;
    assert_eq!(header(&resp, "x-amzn-sagemaker-content-type"), "text/csv");
    let csv_want = s
        .invocations(
            &[JSON, ("accept", "text/csv")],
            serde_json::to_vec(&recs[..3]).unwrap(),
        )
        .await;
    let parts = events(&resp.bytes().await.unwrap());
    let joined: Vec<u8> = parts.iter().flat_map(|(_, _, p)| p.clone()).collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(joined, csv_want);

    // A body the model refuses is an error before the stream starts.
    let resp = s.post(path, &[JSON], b"[1, 2]".to_vec()).await;
    let (kind, err) = sagemaker_error(resp, 424).await;
    assert_eq!(kind, "ModelError");
    assert_eq!(err["OriginalStatusCode"], 400);

    // A failure while scoring ends the stream with an exception event.
    let resp = s
        .post(
            "/endpoints/churn-v3/invocations-response-stream",
            &[JSON],
            serde_json::to_vec(&recs[..2]).unwrap(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let parts = events(&resp.bytes().await.unwrap());
    assert_eq!(parts.len(), 1, "{parts:?}");
    let (kind, exception, payload) = &parts[0];
    assert_eq!(
        (kind.as_str(), exception.as_str()),
        ("exception", "InternalStreamFailure")
    );
    let err: Value = serde_json::from_slice(payload).unwrap();
    assert!(
        err["Message"].as_str().unwrap().contains("scoring failed"),
        "{err}"
    );
}

/// Waits for a file to appear; its bytes.
async fn wait_for(path: &Path) -> Vec<u8> {
    for _ in 0..200 {
        if let Ok(b) = std::fs::read(path) {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} did not appear", path.display());
}

/// The lake file an `s3://lake/KEY` header names.
fn lake_file(s: &Server, resp: &reqwest::Response, name: &str) -> PathBuf {
    let uri = header(resp, name);
    s.lake.join(
        uri.strip_prefix("s3://lake/")
            .unwrap_or_else(|| panic!("{uri}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_invocations_write_their_output_where_they_say() {
    let s = start().await;
    let path = "/endpoints/churn/async-invocations";
    let recs = serde_json::to_vec(&records(80)).unwrap();
    let want = s.invocations(&[JSON], recs.clone()).await;

    // Input from the lake, output where the answer says.
    std::fs::create_dir_all(s.lake.join("in")).unwrap();
    std::fs::write(s.lake.join("in/batch.json"), &recs).unwrap();
    let resp = s
        .post(
            path,
            &[
                ("X-Amzn-SageMaker-InputLocation", "s3://lake/in/batch.json"),
                ("X-Amzn-SageMaker-Content-Type", "application/json"),
                ("X-Amzn-SageMaker-Inference-Id", "batch-1"),
            ],
            Vec::new(),
        )
        .await;
    assert_eq!(resp.status(), 202);
    assert_eq!(
        header(&resp, "x-amzn-sagemaker-outputlocation"),
        "s3://lake/async-inference/output/batch-1.out"
    );
    assert_eq!(
        header(&resp, "x-amzn-sagemaker-failurelocation"),
        "s3://lake/async-inference/failures/batch-1-error.out"
    );
    let output = lake_file(&s, &resp, "x-amzn-sagemaker-outputlocation");
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body, json!({"InferenceId": "batch-1"}));
    assert_eq!(wait_for(&output).await, want);

    // An inline body, a generated id, an output path extension, a file name, CSV out.
    let resp = s
        .post(
            path,
            &[
                ("X-Amzn-SageMaker-Content-Type", "application/json"),
                ("X-Amzn-SageMaker-Accept", "text/csv"),
                ("X-Amzn-SageMaker-S3OutputPathExtension", "daily/2026-05-01"),
                ("X-Amzn-SageMaker-Filename", "scores.csv"),
            ],
            recs.clone(),
        )
        .await;
    assert_eq!(resp.status(), 202);
    assert_eq!(
        header(&resp, "x-amzn-sagemaker-outputlocation"),
        "s3://lake/async-inference/output/daily/2026-05-01/scores.csv"
    );
    let output = lake_file(&s, &resp, "x-amzn-sagemaker-outputlocation");
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["InferenceId"].as_str().unwrap().len(), 36);
    let csv_want = s
        .invocations(&[JSON, ("accept", "text/csv")], recs.clone())
        .await;
    assert_eq!(wait_for(&output).await, csv_want);

    // What the model refuses, and an input that is not there, fail at the failure location.
    for (headers, body, kind, says) in [
        (
            vec![("X-Amzn-SageMaker-Content-Type", "application/json")],
            b"[1]".to_vec(),
            "ModelError",
            "record 0",
        ),
        (
            vec![(
                "X-Amzn-SageMaker-InputLocation",
                "s3://lake/in/missing.json",
            )],
            Vec::new(),
            "ValidationError",
            "no object s3://lake/in/missing.json",
        ),
    ] {
        let resp = s.post(path, &headers, body).await;
        assert_eq!(resp.status(), 202);
        let output = lake_file(&s, &resp, "x-amzn-sagemaker-outputlocation");
        let failure = lake_file(&s, &resp, "x-amzn-sagemaker-failurelocation");
        let err: Value = serde_json::from_slice(&wait_for(&failure).await).unwrap();
        assert_eq!(err["ErrorCode"], kind, "{err}");
        assert!(err["Message"].as_str().unwrap().contains(says), "{err}");
        assert!(!output.exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_invocations_refuse_locations_outside_the_lake() {
    let s = start().await;
    let path = "/endpoints/churn/async-invocations";
    let outside = s.lake.parent().unwrap();
    std::fs::write(outside.join("secret.json"), b"[{}]").unwrap();
    for (headers, body, says) in [
        (
            vec![(
                "X-Amzn-SageMaker-InputLocation",
                "s3://other-bucket/in.json",
            )],
            Vec::new(),
            "bucket \"other-bucket\"",
        ),
        (
            vec![("X-Amzn-SageMaker-InputLocation", "s3://lake/../secret.json")],
            Vec::new(),
            "`..` segment",
        ),
        (
            vec![("X-Amzn-SageMaker-InputLocation", "s3://lake//etc/passwd")],
            Vec::new(),
            "starts with `/`",
        ),
        (
            vec![("X-Amzn-SageMaker-S3OutputPathExtension", "../../state")],
            b"[{}]".to_vec(),
            "`..` segment",
        ),
        (
            vec![("X-Amzn-SageMaker-Filename", "..")],
            b"[{}]".to_vec(),
            "Filename",
        ),
        (
            vec![("X-Amzn-SageMaker-InputLocation", "s3://lake/in.json")],
            b"[{}]".to_vec(),
            "mutually exclusive",
        ),
        (vec![], Vec::new(), "mutually exclusive"),
        (vec![], vec![b' '; 128_001], "128000-byte limit"),
        (
            vec![("X-Amzn-SageMaker-RequestTTLSeconds", "5")],
            b"[{}]".to_vec(),
            "RequestTTLSeconds",
        ),
    ] {
        let resp = s.post(path, &headers, body).await;
        let (kind, err) = sagemaker_error(resp, 400).await;
        assert_eq!(kind, "ValidationError");
        let message = err["Message"].as_str().unwrap();
        assert!(message.contains(says), "{headers:?}: {message}");
    }
    // An inference id is one file name, whatever it holds.
    let resp = s
        .post(
            path,
            &[
                ("X-Amzn-SageMaker-Inference-Id", "../../escaped"),
                ("X-Amzn-SageMaker-Content-Type", "application/json"),
            ],
            serde_json::to_vec(&records(1)).unwrap(),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let output = lake_file(&s, &resp, "x-amzn-sagemaker-outputlocation");
    assert_eq!(
        output.parent().unwrap(),
        s.lake.join("async-inference/output")
    );
    wait_for(&output).await;
    assert!(!outside.join("escaped.out").exists());
    // Nothing was written outside the lake.
    let mut names: Vec<String> = std::fs::read_dir(outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["lake", "secret.json"]);
}
