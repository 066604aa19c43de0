//! Identities through aws-sdk-kinesis: a gateway with `mode = "enforce"` on a loopback port,
//! principals issued by `millrace_auth::identities::add`, real signed requests.

use std::sync::Arc;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::primitives::Blob;
use millrace_auth::identities::{self, NewKey};
use millrace_auth::{Audit, AuditConfig, Auth, Mode};
use millrace_gateway::Gateway;
use millrace_stream::{Store, StoreOptions};

const ADMIN: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const PRODUCER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Action":["kinesis:PutRecord","kinesis:PutRecords"],
  "Resource":"arn:aws:kinesis:us-east-1:000000000000:stream/orders"}]}"#;

struct Server {
    url: String,
    dir: tempfile::TempDir,
    admin: NewKey,
    producer: NewKey,
}

async fn start(mode: Mode) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("identities.toml");
    let admin = identities::add(&ids, "admin", &[ADMIN.into()]).unwrap();
    let producer = identities::add(&ids, "producer", &[PRODUCER.into()]).unwrap();
    let store = Arc::new(Store::open(dir.path().join("data"), StoreOptions::default()).unwrap());
    let audit = Audit::open(AuditConfig::new(dir.path().join("audit"))).unwrap();
    let auth = Auth::new(mode, &ids, "000000000000", "us-east-1", audit).unwrap();
    let gw = Gateway::new(store, [7; 32])
        .unwrap()
        .with_auth(Arc::new(auth));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(millrace_gateway::serve(
        listener,
        gw,
        std::future::pending(),
    ));
    Server {
        url,
        dir,
        admin,
        producer,
    }
}

async fn client(url: &str, key_id: &str, secret: &str) -> Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            key_id, secret, None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    Client::new(&conf)
}

async fn as_key(s: &Server, k: &NewKey) -> Client {
    client(&s.url, &k.access_key_id, &k.secret_access_key).await
}

#[tokio::test]
async fn the_sdk_signs_in_and_policies_decide_what_each_principal_may_do() {
    let s = start(Mode::Enforce).await;
    let admin = as_key(&s, &s.admin).await;
    let producer = as_key(&s, &s.producer).await;
    admin
        .create_stream()
        .stream_name("orders")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    producer
        .put_record()
        .stream_name("orders")
        .partition_key("k")
        .data(Blob::new("a"))
        .send()
        .await
        .unwrap();
    let err = producer
        .delete_stream()
        .stream_name("orders")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"), "{err:?}");
    let msg = err.message().unwrap_or_default();
    assert!(
        msg.contains("arn:aws:iam::000000000000:user/producer")
            && msg.contains("kinesis:DeleteStream")
            && msg.contains("stream/orders"),
        "{msg}"
    );
    // The stream is still there.
    admin
        .describe_stream_summary()
        .stream_name("orders")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn signature_failures_get_aws_error_types() {
    let s = start(Mode::Enforce).await;
    let wrong = client(&s.url, &s.admin.access_key_id, "not-the-secret").await;
    let err = wrong.list_streams().send().await.unwrap_err();
    assert_eq!(err.code(), Some("InvalidSignatureException"), "{err:?}");
    let ghost = client(&s.url, "AKIAGHOSTGHOSTGHOST2", "x").await;
    let err = ghost.list_streams().send().await.unwrap_err();
    assert_eq!(err.code(), Some("UnrecognizedClientException"), "{err:?}");
    let (status, body) = post(&s.url, "ListStreams", &[]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["__type"], "MissingAuthenticationTokenException");
}

#[tokio::test]
async fn log_mode_lets_refusals_through_and_audits_them() {
    let s = start(Mode::Log).await;
    let producer = as_key(&s, &s.producer).await;
    producer
        .create_stream()
        .stream_name("x")
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let (status, body) = post(&s.url, "ListStreams", &[]).await;
    assert_eq!(status, 200, "{body}");
    let log = millrace_auth::log_path(&s.dir.path().join("audit"));
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|e| e["outcome"] == "would-deny"
            && e["action"] == "kinesis:CreateStream"
            && e["principal"] == "arn:aws:iam::000000000000:user/producer"),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|e| e["outcome"] == "would-deny" && e["principal"] == "anonymous"),
        "{text}"
    );
}

/// An unsigned POST of `{}` to operation `op`.
async fn post(url: &str, op: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("Kinesis_20131202.{op}"))
        .body("{}");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}
