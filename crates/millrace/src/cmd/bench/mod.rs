//! `millrace bench …`: end-to-end benchmarks against real servers, opt-in (not in tests).

mod deliver;
mod endpoint;
mod firehose;
mod ingest;
mod queue;
mod score;
mod wrangle;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;
use hdrhistogram::Histogram;
use millrace_common::layout::DataDir;
use serde_json::{Value, json};

use crate::signing;

use deliver::BenchDeliverArgs;
use endpoint::BenchEndpointArgs;
use firehose::BenchFirehoseArgs;
use ingest::BenchIngestArgs;
use queue::BenchQueueArgs;
use score::BenchScoreArgs;
use wrangle::BenchWrangleArgs;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// PutRecords load from concurrent clients, then GetRecords of everything written.
    ///
    /// Without --endpoint-url it starts `millrace up` on a free loopback port with a fresh
    /// data directory (default fsync policy) and measures that. Each --peer is measured with
    /// the same load in the same run, and the table shows the ratio. For the servers it
    /// starts itself (and on Linux), each row also shows the CPU a written record cost the
    /// server and the load clients (this process), read from /proc over the write load: with
    /// both on the same cores, that is what the throughput follows.
    Ingest(BenchIngestArgs),
    /// Delivery throughput (NDJSON, Parquet+zstd) under ingest load, and freshness (time from
    /// PutRecord acknowledgement to the record being readable in the lake) at buffer
    /// intervals 0 and 1 s. Runs `millrace up` child processes with local lakes.
    Deliver(BenchDeliverArgs),
    /// Recipe fit and transform over a CSV (rows/s, peak RSS) and one-record transform latency
    /// (median, p99) with the churn recipe or another; bench/wrangle.sh runs it beside pandas +
    /// scikit-learn.
    Wrangle(BenchWrangleArgs),
    /// Open-loop load on an HTTP scoring endpoint (millrace's or a peer's): single-record JSON
    /// requests sent on a fixed schedule at each --rates value, latency measured from the
    /// scheduled time (p50, p99, p99.9) and errors counted. bench/endpoint.sh runs it against
    /// `millrace endpoint` and a FastAPI + scikit-learn peer.
    Endpoint(BenchEndpointArgs),
    /// Streaming-inference latency: one PutRecord per record on a fixed schedule into a stream
    /// a scorer (`up` with [[scoring]], or `millrace score`) reads, and the time from each
    /// acknowledgement to its prediction being readable on the output stream (p50, p99,
    /// p99.9). bench/score.sh sets it all up.
    Score(BenchScoreArgs),
    /// Kinesis queues against GetRecords in one run: a backlog drained by competing queue
    /// consumers (receive 10 + durable acknowledge) and by one GetRecords reader a shard
    /// (Limit 10 and 10000), then put-to-receipt latency of long-polling queue consumers and
    /// of GetRecords readers polling without pause. Starts `millrace up` unless given
    /// --endpoint-url.
    Queue(BenchQueueArgs),
    /// The Firehose API: PutRecordBatch of 500 records from concurrent clients into a DirectPut
    /// delivery stream that delivers NDJSON at buffer interval 0 — accepted records/s and the
    /// time from acknowledgement to the record's object being committed — against peers
    /// (--peer NAME=URL, e.g. moto's server) in the same run. bench/firehose.sh runs moto.
    Firehose(BenchFirehoseArgs),
}

pub async fn run(data_dir: &DataDir, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest::ingest(args).await,
        BenchCommand::Deliver(args) => deliver::deliver(args).await,
        BenchCommand::Wrangle(args) => wrangle::wrangle(data_dir, args).await,
        BenchCommand::Endpoint(args) => endpoint::endpoint(args).await,
        BenchCommand::Score(args) => score::score(args).await,
        BenchCommand::Queue(args) => queue::queue(args).await,
        BenchCommand::Firehose(args) => firehose::firehose(args).await,
    }
}

/// A `millrace up` child process on a free port with a throwaway data directory.
struct LocalServer {
    child: Child,
    url: String,
    admin: String,
    dir: PathBuf,
    /// A folder of its own (config, identities) removed with it.
    owned: Option<PathBuf>,
}

/// CPU seconds (user and system, every thread) process `pid` has used so far, from
/// `/proc/PID/stat`: `None` where there is no procfs (not Linux) or the process is gone.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf reads a constant of the running system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks / per_second as f64)
}

/// CPU time used over a stretch of work, by a server process and by this one (the load
/// clients), per record: what a record costs each side, however the two share the cores.
struct CpuMeter {
    server: Option<u32>,
    start: (Option<f64>, Option<f64>),
}

impl CpuMeter {
    /// Starts measuring `server` (a local child's pid; `None` for a peer we cannot see) and
    /// this process.
    fn start(server: Option<u32>) -> Self {
        let start = (server.and_then(|p| cpu_seconds(Some(p))), cpu_seconds(None));
        Self { server, start }
    }

    /// Microseconds of CPU per record since `start`, for the server and for the clients.
    fn per_record(&self, records: u64) -> (Option<f64>, Option<f64>) {
        let per = |now: Option<f64>, then: Option<f64>| {
            let used = now? - then?;
            (records > 0).then(|| used * 1e6 / records as f64)
        };
        (
            per(self.server.and_then(|p| cpu_seconds(Some(p))), self.start.0),
            per(cpu_seconds(None), self.start.1),
        )
    }
}

impl LocalServer {
    /// The server process's id.
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `millrace up` (with `config`, whose relative lake paths land in the fresh data
    /// directory) on free loopback ports and waits for both ready lines.
    fn start(config: Option<&Path>) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("millrace-bench-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir)?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("--data-dir").arg(&dir).args([
            "up",
            "--kinesis-addr",
            "127.0.0.1:0",
            "--admin-addr",
            "127.0.0.1:0",
        ]);
        if let Some(c) = config {
            cmd.arg("-c").arg(c);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting millrace up")?;
        let mut reader = std::io::BufReader::new(child.stdout.take().expect("piped"));
        let (mut url, mut admin) = (None, None);
        while url.is_none() || admin.is_none() {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                bail!("millrace up exited before it was ready");
            }
            for w in line.split_whitespace() {
                if let Some(u) = w.strip_prefix("kinesis=") {
                    url = Some(u.to_owned());
                }
                if let Some(u) = w.strip_prefix("admin=") {
                    admin = Some(u.to_owned());
                }
            }
        }
        Ok(Self {
            child,
            url: url.expect("set"),
            admin: admin.expect("set"),
            dir,
            owned: None,
        })
    }

    /// As [`LocalServer::start`] under `[auth] mode = "enforce"` with one principal allowed
    /// everything (and `[server] tls = true` with `tls`: its self-signed certificate is
    /// [`LocalServer::tls_cert`]); returns it and its URL with that principal's key in the
    /// userinfo (see [`signing::Target`]).
    fn start_with_auth(tls: bool) -> anyhow::Result<(Self, String)> {
        let dir = std::env::temp_dir().join(format!(
            "millrace-bench-auth-{:016x}",
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir)?;
        let ids = dir.join("identities.toml");
        let allow_all = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let key = millrace_auth::identities::add(&ids, "bench", &[allow_all.to_owned()])?;
        let config = dir.join("millrace.toml");
        let server = if tls { "[server]\ntls = true\n\n" } else { "" };
        std::fs::write(
            &config,
            format!("{server}[auth]\nmode = \"enforce\"\nidentities = \"identities.toml\"\n"),
        )?;
        let mut server = Self::start(Some(&config))?;
        server.owned = Some(dir);
        let mut url = url::Url::parse(&server.url)?;
        let _ = url.set_username(&key.access_key_id);
        let secret = percent_encoding::utf8_percent_encode(
            &key.secret_access_key,
            percent_encoding::NON_ALPHANUMERIC,
        )
        .to_string();
        let _ = url.set_password(Some(&secret));
        Ok((server, url.to_string()))
    }
}

impl LocalServer {
    /// The self-signed certificate a `[server] tls = true` server made on start.
    fn tls_cert(&self) -> PathBuf {
        DataDir::new(&self.dir).tls().join("cert.pem")
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(dir) = &self.owned {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub(crate) async fn call(
    http: &reqwest::Client,
    url: &str,
    op: &str,
    body: Vec<u8>,
) -> anyhow::Result<Value> {
    let bytes = call_raw(http, url, op, body).await?;
    if bytes.is_empty() {
        // Operations without output may answer with an empty body (kinesalite does).
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).with_context(|| format!("{op}: response is not JSON"))
}

/// One Kinesis JSON call; the reply body of a success as sent.
async fn call_raw(
    http: &reqwest::Client,
    url: &str,
    op: &str,
    body: impl Into<bytes::Bytes>,
) -> anyhow::Result<bytes::Bytes> {
    post_json(http, url, &format!("Kinesis_20131202.{op}"), body).await
}

/// A body a load client sends many times, hashed once for its signatures.
#[derive(Clone)]
struct Prepared {
    body: bytes::Bytes,
    sha256: Arc<str>,
}

impl Prepared {
    fn new(body: Vec<u8>) -> Self {
        let sha256 = signing::sha256_hex(&body).into();
        Self {
            body: body.into(),
            sha256,
        }
    }
}

/// One AWS JSON 1.1 call to `target` (`Service_Version.Operation`), signed as
/// [`signing::Target`] says; the reply body of a success as sent.
async fn post_json(
    http: &reqwest::Client,
    url: &str,
    target: &str,
    body: impl Into<bytes::Bytes>,
) -> anyhow::Result<bytes::Bytes> {
    post_signed(http, url, target, body.into(), None).await
}

/// [`post_json`] of a body whose hex SHA-256 is `sha256` when given (hashed here otherwise).
async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    target: &str,
    body: bytes::Bytes,
    sha256: Option<&str>,
) -> anyhow::Result<bytes::Bytes> {
    let op = target.rsplit('.').next().unwrap_or(target);
    let to = signing::Target::parse(url)?;
    // moto's server picks the service from the credential scope.
    let service = if target.starts_with("Firehose_") {
        "firehose"
    } else {
        "kinesis"
    };
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target),
    ];
    let mut req = http.post(&to.url);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let payload = match sha256 {
        Some(h) => signing::Payload::Sha256(h),
        None => signing::Payload::Bytes(&body),
    };
    for (k, v) in to.auth_headers(service, &headers, payload)? {
        req = req.header(k, v);
    }
    let resp = req.body(body).send().await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        bail!(
            "{op} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(bytes)
}

/// What a load client needs of a PutRecords reply: how many records it answered for and how
/// many of those failed (the per-record entries are skipped, not built).
#[derive(serde::Deserialize)]
struct PutRecordsReply {
    #[serde(rename = "FailedRecordCount")]
    failed: Option<u64>,
    #[serde(rename = "Records", default)]
    records: Vec<serde::de::IgnoredAny>,
}

/// Creates a stream through the API and waits until it is ACTIVE.
async fn create_stream(
    http: &reqwest::Client,
    url: &str,
    stream: &str,
    shards: u32,
) -> anyhow::Result<()> {
    call(
        http,
        url,
        "CreateStream",
        serde_json::to_vec(&json!({"StreamName": stream, "ShardCount": shards}))?,
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = call(
            http,
            url,
            "DescribeStreamSummary",
            serde_json::to_vec(&json!({"StreamName": stream}))?,
        )
        .await?;
        if d["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("stream {stream} did not become ACTIVE");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A PutRecords write load.
struct Load {
    clients: usize,
    seconds: f64,
    batch: usize,
    record_bytes: usize,
}

struct LoadOutcome {
    written: u64,
    bytes: u64,
    failed: u64,
    latency_us: Histogram<u64>,
    seconds: f64,
}

/// Concurrent clients posting pre-encoded PutRecords bodies as fast as acknowledged.
async fn write_load(
    http: &reqwest::Client,
    url: &str,
    stream: &str,
    load: &Load,
) -> anyhow::Result<LoadOutcome> {
    // Pre-encoded bodies: distinct random partition keys, churn-like JSON padded to size.
    // `Bytes`, so sending one shares it instead of copying 300 KB per call, and hashed once
    // for SigV4 (a signed call still carries, and the server still checks, the body's hash).
    let bodies: Arc<Vec<(Prepared, u64)>> = Arc::new(
        (0..16)
            .map(|b| {
                let (body, data) = make_body(stream, load.batch, load.record_bytes, b);
                (Prepared::new(body), data)
            })
            .collect(),
    );
    let until = Instant::now() + Duration::from_secs_f64(load.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..load.clients {
        let http = http.clone();
        let url = url.to_owned();
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("histogram");
            let (mut ok, mut bytes, mut failed) = (0u64, 0u64, 0u64);
            let mut i = c;
            while Instant::now() < until {
                let (body, data_bytes) = &bodies[i % bodies.len()];
                i += 1;
                let t = Instant::now();
                let resp = post_signed(
                    &http,
                    &url,
                    "Kinesis_20131202.PutRecords",
                    body.body.clone(),
                    Some(&body.sha256),
                )
                .await?;
                hist.record(t.elapsed().as_micros() as u64).ok();
                let reply: PutRecordsReply = serde_json::from_slice(&resp)
                    .context("PutRecords: response is not a PutRecords reply")?;
                let n = reply.records.len() as u64;
                let f = reply.failed.unwrap_or(n);
                ok += n - f;
                failed += f;
                bytes += data_bytes * (n - f) / n.max(1);
            }
            anyhow::Ok((hist, ok, bytes, failed))
        }));
    }
    let mut out = LoadOutcome {
        written: 0,
        bytes: 0,
        failed: 0,
        latency_us: Histogram::<u64>::new(3)?,
        seconds: 0.0,
    };
    for t in tasks {
        let (h, ok, b, f) = t.await??;
        out.latency_us.add(h)?;
        out.written += ok;
        out.bytes += b;
        out.failed += f;
    }
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// A PutRecords JSON body and the number of data bytes it carries.
fn make_body(stream: &str, records: usize, record_bytes: usize, salt: usize) -> (Vec<u8>, u64) {
    let mut data_bytes = 0u64;
    let recs: Vec<Value> = (0..records)
        .map(|i| {
            let mut rec = format!(
                r#"{{"customerID":"{:04}-{:05}","gender":"Female","SeniorCitizen":"0","tenure":"{}","Contract":"Month-to-month","MonthlyCharges":"70.35","TotalCharges":"1397.475","Churn":"No","pad":""#,
                salt,
                i,
                i % 72
            );
            let pad = record_bytes.saturating_sub(rec.len() + 2);
            rec.push_str(&"x".repeat(pad));
            rec.push_str("\"}");
            data_bytes += rec.len() as u64;
            json!({
                "Data": STANDARD.encode(rec.as_bytes()),
                "PartitionKey": format!("{:032x}", rand::random::<u128>()),
            })
        })
        .collect();
    let body = serde_json::to_vec(&json!({"StreamName": stream, "Records": recs})).expect("json");
    (body, data_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn cpu_time_is_read_for_this_process_and_grows_with_work() {
        let before = cpu_seconds(None).expect("/proc/self/stat is read on Linux");
        let meter = CpuMeter::start(Some(std::process::id()));
        // Work until this process has used 0.2 s more CPU (other tests share the cores, so
        // wall time says little); a reading that never grows fails at the deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut x = 1u64;
        loop {
            for _ in 0..1_000_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            let now = cpu_seconds(None).expect("still readable");
            if now - before >= 0.2 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "CPU time stayed at {now}"
            );
        }
        std::hint::black_box(x);
        let (server, client) = meter.per_record(1000);
        // The "server" here is this process too: both saw at least the same 0.2 s.
        let (server, client) = (server.expect("measured"), client.expect("measured"));
        assert!(
            server >= 200.0 && client >= 200.0,
            "{server} {client} µs a record"
        );
        assert_eq!(meter.per_record(0), (None, None));
        assert_eq!(cpu_seconds(Some(u32::MAX)), None, "no such process");
    }
}
