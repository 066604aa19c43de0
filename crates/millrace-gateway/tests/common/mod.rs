//! Starts a real gateway on an ephemeral loopback port over a fresh store in a temp dir.

#![allow(dead_code)]

use std::sync::Arc;

use millrace_gateway::Gateway;
use millrace_stream::{Store, StoreOptions};

pub struct TestServer {
    pub url: String,
    pub store: Arc<Store>,
    dir: Option<tempfile::TempDir>,
    opts: StoreOptions,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(StoreOptions::default()).await
    }

    pub async fn start_with(opts: StoreOptions) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), opts).await
    }

    /// Stops the server, closes the store (its writers make everything durable) and opens it
    /// again on the same folder, as a process restart would.
    pub async fn restart(mut self) -> Self {
        let _ = self.shutdown.take().expect("running").send(());
        self.task.take().expect("running").await.unwrap();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.shutdown())
            .await
            .unwrap();
        let dir = self.dir.take().expect("a folder");
        Self::start_in(dir, self.opts.clone()).await
    }

    /// The store's folder.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.as_ref().expect("a folder").path()
    }

    async fn start_in(dir: tempfile::TempDir, opts: StoreOptions) -> Self {
        let store = Arc::new(Store::open(dir.path(), opts.clone()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let gw = Gateway::new(store.clone(), [42; 32]).unwrap();
        let task = tokio::spawn(async move {
            millrace_gateway::serve(listener, gw, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            store,
            dir: Some(dir),
            opts,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// An aws-sdk-kinesis client pointed at this server with dummy credentials.
    pub async fn sdk(&self) -> aws_sdk_kinesis::Client {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_kinesis::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await;
        aws_sdk_kinesis::Client::new(&conf)
    }

    /// Posts a raw body with the given target operation and content type.
    pub async fn raw(
        &self,
        target: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Vec<u8>) {
        let mut req = reqwest::Client::new()
            .post(&self.url)
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = target {
            req = req.header("x-amz-target", format!("Kinesis_20131202.{t}"));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.bytes().await.unwrap().to_vec())
    }

    /// Posts JSON that must succeed (status 200, else the test fails with the body); returns
    /// the parsed reply.
    pub async fn ok(&self, op: &str, body: serde_json::Value) -> serde_json::Value {
        let (status, reply) = self.json(op, body).await;
        assert_eq!(status, 200, "{op}: {reply}");
        reply
    }

    /// Posts JSON and returns (status, parsed body).
    pub async fn json(&self, op: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let (status, bytes) = self
            .raw(
                Some(op),
                "application/x-amz-json-1.1",
                serde_json::to_vec(&body).unwrap(),
            )
            .await;
        let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, v)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
