//! Enhanced fan-out with aws-sdk-kinesis: consumers (register, describe, list, deregister,
//! their limits and errors, surviving a restart) and SubscribeToShard over HTTP/2 (a client
//! forced to prior knowledge, as the SDKs use it against AWS) and HTTP/1.1 (the default
//! client): records put after subscribing arrive in order with their ContinuationSequenceNumber,
//! and a closed shard's end brings ChildShards. Nothing here measures latency.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    ShardIteratorType, StartingPosition, SubscribeToShardEvent, SubscribeToShardEventStream,
};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use common::TestServer;
use millrace_gateway::Gateway;
use millrace_stream::{Store, StoreOptions};

const WAIT: Duration = Duration::from_secs(30);

/// An HTTP client for the SDK that speaks only HTTP/2 with prior knowledge, counting the
/// responses that came back over HTTP/2.
#[derive(Debug, Clone)]
struct H2Only {
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        SdkBody,
    >,
    h2_responses: Arc<AtomicUsize>,
}

impl H2Only {
    fn new() -> Self {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .http2_only(true)
                .build_http();
        Self {
            client,
            h2_responses: Arc::default(),
        }
    }
}

impl HttpConnector for H2Only {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let this = self.clone();
        HttpConnectorFuture::new(async move {
            let req = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?;
            let resp = this
                .client
                .request(req)
                .await
                .map_err(|e| ConnectorError::io(e.into()))?;
            if resp.version() == hyper::Version::HTTP_2 {
                this.h2_responses.fetch_add(1, Ordering::Relaxed);
            }
            HttpResponse::try_from(resp.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

impl HttpClient for H2Only {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

async fn sdk_with(url: &str, http: Option<SharedHttpClient>) -> Client {
    let mut conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
            "test", "test", None, None, "test",
        ));
    if let Some(h) = http {
        conf = conf.http_client(h);
    }
    Client::new(&conf.load().await)
}

async fn create(client: &Client, name: &str, shards: i32) -> String {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .unwrap();
    client
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap()
        .stream_arn
}

async fn register(client: &Client, stream_arn: &str, name: &str) -> String {
    let c = client
        .register_stream_consumer()
        .stream_arn(stream_arn)
        .consumer_name(name)
        .send()
        .await
        .unwrap()
        .consumer
        .unwrap();
    assert_eq!(c.consumer_name, name);
    assert_eq!(c.consumer_status.as_str(), "ACTIVE");
    c.consumer_arn
}

fn position(kind: ShardIteratorType) -> StartingPosition {
    StartingPosition::builder().r#type(kind).build().unwrap()
}

type Events = aws_sdk_kinesis::primitives::event_stream::EventReceiver<
    SubscribeToShardEventStream,
    aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError,
>;

async fn subscribe(client: &Client, consumer: &str, pos: StartingPosition) -> Events {
    client
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id("shardId-000000000000")
        .starting_position(pos)
        .send()
        .await
        .unwrap()
        .event_stream
}

async fn next_event(events: &mut Events) -> Option<SubscribeToShardEvent> {
    match tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event within the wait")
        .unwrap()
    {
        Some(SubscribeToShardEventStream::SubscribeToShardEvent(e)) => Some(e),
        Some(other) => panic!("unexpected event {other:?}"),
        None => None,
    }
}

/// Puts `n` records after the subscription started and reads them back from its events: in
/// order, each event's ContinuationSequenceNumber its last record's.
async fn records_arrive_in_order(client: &Client, stream: &str, consumer: &str, n: usize) {
    let mut events = subscribe(client, consumer, position(ShardIteratorType::Latest)).await;
    let mut acked = Vec::new();
    for i in 0..n {
        let out = client
            .put_record()
            .stream_name(stream)
            .partition_key(format!("k{i}"))
            .data(Blob::new(format!("record-{i}")))
            .send()
            .await
            .unwrap();
        acked.push(out.sequence_number);
    }
    let mut got: Vec<(String, Vec<u8>)> = Vec::new();
    while got.len() < n {
        let e = next_event(&mut events).await.expect("stream still open");
        if let Some(last) = e.records.last() {
            assert_eq!(e.continuation_sequence_number, last.sequence_number);
        }
        for r in e.records {
            assert!(r.approximate_arrival_timestamp.is_some());
            got.push((r.sequence_number, r.data.into_inner()));
        }
    }
    let seqs: Vec<_> = got.iter().map(|(s, _)| s.clone()).collect();
    assert_eq!(seqs, acked);
    for (i, (_, data)) in got.iter().enumerate() {
        assert_eq!(data, format!("record-{i}").as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_over_http2_receives_records_pushed_after_subscribing() {
    let server = TestServer::start().await;
    let h2 = H2Only::new();
    let client = sdk_with(&server.url, Some(SharedHttpClient::new(h2.clone()))).await;
    let arn = create(&client, "fan-h2", 1).await;
    let consumer = register(&client, &arn, "c-h2").await;
    records_arrive_in_order(&client, "fan-h2", &consumer, 50).await;
    assert!(
        h2.h2_responses.load(Ordering::Relaxed) > 0,
        "the server answered over HTTP/2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_over_http1_receives_records_pushed_after_subscribing() {
    let server = TestServer::start().await;
    let client = server.sdk().await;
    let arn = create(&client, "fan-h1", 1).await;
    let consumer = register(&client, &arn, "c-h1").await;
    records_arrive_in_order(&client, "fan-h1", &consumer, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_shard_read_to_its_end_brings_child_shards() {
    let server = TestServer::start().await;
    let client = server.sdk().await;
    let arn = create(&client, "fan-split", 1).await;
    let consumer = register(&client, &arn, "c").await;
    for i in 0..3 {
        client
            .put_record()
            .stream_name("fan-split")
            .partition_key(format!("k{i}"))
            .data(Blob::new(vec![i as u8]))
            .send()
            .await
            .unwrap();
    }
    let mut events = subscribe(&client, &consumer, position(ShardIteratorType::TrimHorizon)).await;
    let mut got = 0;
    while got < 3 {
        got += next_event(&mut events).await.unwrap().records.len();
    }
    let store = server.store.clone();
    tokio::task::spawn_blocking(move || {
        store
            .split_shard("fan-split", "shardId-000000000000", 1u128 << 127)
            .unwrap()
    })
    .await
    .unwrap();
    let children = loop {
        let e = next_event(&mut events)
            .await
            .expect("ChildShards before the end");
        assert!(e.records.is_empty());
        if let Some(c) = e.child_shards {
            break c;
        }
    };
    let mut ids: Vec<_> = children.iter().map(|c| c.shard_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["shardId-000000000001", "shardId-000000000002"]);
    for c in &children {
        assert_eq!(c.parent_shards, ["shardId-000000000000"]);
    }
    assert!(next_event(&mut events).await.is_none(), "the stream ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_operations_limits_and_errors() {
    let server = TestServer::start().await;
    let client = server.sdk().await;
    let arn = create(&client, "fan-ops", 1).await;
    let first = register(&client, &arn, "c00").await;
    assert!(
        first.starts_with(&format!("{arn}/consumer/c00:")),
        "{first}"
    );

    let dup = client
        .register_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("c00")
        .send()
        .await
        .unwrap_err();
    assert!(dup.into_service_error().is_resource_in_use_exception());

    // Describe by ARN and by stream ARN + name.
    let d = client
        .describe_stream_consumer()
        .consumer_arn(&first)
        .send()
        .await
        .unwrap()
        .consumer_description
        .unwrap();
    assert_eq!(d.consumer_name, "c00");
    assert_eq!(d.stream_arn, arn);
    let d = client
        .describe_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("c00")
        .send()
        .await
        .unwrap()
        .consumer_description
        .unwrap();
    assert_eq!(d.consumer_arn, first);

    for i in 1..20 {
        register(&client, &arn, &format!("c{i:02}")).await;
    }
    let over = client
        .register_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("c20")
        .send()
        .await
        .unwrap_err();
    assert!(over.into_service_error().is_limit_exceeded_exception());

    // Paging: 20 consumers, 7 at a time.
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let mut req = client.list_stream_consumers();
        req = match &token {
            Some(t) => req.stream_arn(&arn).next_token(t),
            None => req.stream_arn(&arn),
        };
        let page = req.max_results(7).send().await.unwrap();
        let consumers = page.consumers.unwrap_or_default();
        assert!(consumers.len() <= 7);
        names.extend(consumers.into_iter().map(|c| c.consumer_name));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    let want: Vec<String> = (0..20).map(|i| format!("c{i:02}")).collect();
    assert_eq!(names, want);

    // A second subscription within 5 s of the first is refused.
    let _events = subscribe(&client, &first, position(ShardIteratorType::Latest)).await;
    let again = client
        .subscribe_to_shard()
        .consumer_arn(&first)
        .shard_id("shardId-000000000000")
        .starting_position(position(ShardIteratorType::Latest))
        .send()
        .await
        .unwrap_err();
    assert!(again.into_service_error().is_resource_in_use_exception());

    client
        .deregister_stream_consumer()
        .consumer_arn(&first)
        .send()
        .await
        .unwrap();
    let gone = client
        .describe_stream_consumer()
        .consumer_arn(&first)
        .send()
        .await
        .unwrap_err();
    assert!(gone.into_service_error().is_resource_not_found_exception());
    let gone = client
        .subscribe_to_shard()
        .consumer_arn(&first)
        .shard_id("shardId-000000000000")
        .starting_position(position(ShardIteratorType::Latest))
        .send()
        .await
        .unwrap_err();
    assert!(gone.into_service_error().is_resource_not_found_exception());
    // Deregistered by stream ARN + name too; room for one more now.
    client
        .deregister_stream_consumer()
        .stream_arn(&arn)
        .consumer_name("c01")
        .send()
        .await
        .unwrap();
    register(&client, &arn, "c20").await;
    register(&client, &arn, "c00").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_survives_a_store_restart() {
    let server = TestServer::start().await;
    let client = sdk_with(&server.url, None).await;
    let arn = create(&client, "fan-restart", 1).await;
    let consumer = register(&client, &arn, "durable").await;
    let server = server.restart().await;
    let client = sdk_with(&server.url, None).await;
    let d = client
        .describe_stream_consumer()
        .consumer_arn(&consumer)
        .send()
        .await
        .unwrap()
        .consumer_description
        .unwrap();
    assert_eq!(d.consumer_name, "durable");
    assert_eq!(d.consumer_status.as_str(), "ACTIVE");
    records_arrive_in_order(&client, "fan-restart", &consumer, 5).await;
}

/// HTTP/2 has no header-read timer: a connection with nothing in flight is closed after
/// `header_timeout` whichever protocol it speaks, and one that never sends a byte too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_and_silent_connections_are_closed_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), StoreOptions::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = millrace_http::ServerLimits {
        header_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    tokio::spawn(millrace_gateway::serve_with(
        listener,
        Gateway::new(store, [1; 32]).unwrap(),
        limits,
        std::future::pending(),
    ));
    // The HTTP/2 preface and an empty SETTINGS frame, then nothing.
    let preface: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    for hello in [preface, b""] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(hello).await.unwrap();
        let mut sink = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut sink)).await;
        assert!(
            closed.is_ok(),
            "an idle connection stays open past the header timeout"
        );
    }
}
