//! `millrace status`: each component of a running `millrace up`, its state and its lag.

use anyhow::Context;
use clap::Args;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The admin API of the running `up` (its `admin=` ready line; [server].admin_addr).
    #[arg(long, default_value = "http://127.0.0.1:4580")]
    pub admin_url: String,
    /// Read the admin address from this config file instead.
    #[arg(short, long, value_name = "FILE.toml")]
    pub config: Option<std::path::PathBuf>,
    /// Print the raw JSON of GET /status.
    #[arg(long)]
    pub json: bool,
    /// A PEM certificate to trust for an https:// admin API (`[server] tls = true`; the
    /// self-signed one is DATA_DIR/state/tls/cert.pem).
    #[arg(long, env = "AWS_CA_BUNDLE", value_name = "FILE.pem")]
    pub ca_bundle: Option<std::path::PathBuf>,
}

pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let base = match &args.config {
        Some(path) => format!(
            "http://{}",
            crate::config::Config::load(path)?.server.admin_addr
        ),
        None => args.admin_url.trim_end_matches('/').to_owned(),
    };
    let url = format!("{base}/status");
    let mut client = reqwest::Client::builder();
    if let Some(path) = &args.ca_bundle {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        client = client.add_root_certificate(
            reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", path.display()))?,
        );
    }
    let mut req = client.build()?.get(&url);
    // Under [auth], the admin API wants a signature: the AWS environment's key, if set.
    if let (Ok(key), Ok(secret)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".into());
        let creds = crate::signing::Credentials {
            key: &key,
            secret: &secret,
            region,
        };
        for (k, v) in crate::signing::signed_headers(
            &creds,
            "GET",
            &url,
            "millrace",
            &[],
            crate::signing::Payload::Bytes(b""),
        )? {
            req = req.header(k, v);
        }
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("is millrace up running? could not reach {url}"))?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        anyhow::bail!(
            "{url} answered {status}: {} (under [auth], set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY to a key allowed millrace:GetStatus)",
            String::from_utf8_lossy(&body)
        );
    }
    let v: Value =
        serde_json::from_slice(&body).with_context(|| format!("{url} did not answer JSON"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let rows = |key: &str| v[key].as_array().cloned().unwrap_or_default();
    let s = |x: &Value| x.as_str().unwrap_or("").to_owned();
    println!("{:<10} {:<26} {:<9} detail", "component", "name", "state");
    for st in rows("streams") {
        println!(
            "{:<10} {:<26} {:<9} {} records",
            "stream",
            s(&st["name"]),
            "running",
            st["records"]
        );
    }
    for d in rows("deliveries") {
        let fresh = d["freshness_ms"].as_f64().unwrap_or(0.0) / 1000.0;
        let state = d["status"].as_str().unwrap_or("running");
        let err = d["last_error"]
            .as_str()
            .map(|e| format!("; retrying after error: {e}"))
            .unwrap_or_default();
        println!(
            "{:<10} {:<26} {:<9} {} records in {} objects from {}, {} errors; lag (oldest \
             record not in the lake) {fresh:.1} s{err}",
            "delivery",
            s(&d["name"]),
            state,
            d["records"],
            d["objects"],
            s(&d["stream"]),
            d["error_records"]
        );
    }
    for c in rows("channels") {
        let lag = c["freshness_ms"]
            .as_f64()
            .map(|ms| format!("; lag (oldest record not delivered) {:.1} s", ms / 1000.0))
            .unwrap_or_default();
        let reason = c["reason"]
            .as_str()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        println!(
            "{:<10} {:<26} {:<9} {} → bucket {}{reason}{lag}",
            "channel",
            s(&c["name"]),
            s(&c["status"]),
            s(&c["stream"]),
            s(&c["bucket"])
        );
    }
    for d in rows("delivery_streams") {
        let lag = d["freshness_ms"]
            .as_f64()
            .map(|ms| format!("; lag (oldest record not delivered) {:.1} s", ms / 1000.0))
            .unwrap_or_default();
        let reason = d["reason"]
            .as_str()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        let source = d["source"].as_str().unwrap_or("DirectPut").to_owned();
        let records = d["delivery"]["records"].as_u64().unwrap_or(0);
        println!(
            "{:<10} {:<26} {:<9} {source} → bucket {}, {records} records delivered{reason}{lag}",
            "firehose",
            s(&d["name"]),
            s(&d["status"]),
            s(&d["bucket"])
        );
    }
    for q in rows("queues") {
        println!(
            "{:<10} {:<26} {:<9} on {}: {} visible, {} in flight, {} dead letters",
            "queue",
            s(&q["name"]),
            "running",
            s(&q["stream"]),
            q["visible"],
            q["in_flight"],
            q["dead_letter"]
        );
    }
    for c in rows("pipeline") {
        let err = c["last_error"]
            .as_str()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        println!(
            "{:<10} {:<26} {:<9} {} ({} runs){err}",
            s(&c["kind"]),
            s(&c["name"]),
            s(&c["state"]),
            s(&c["detail"]),
            c["runs"]
        );
    }
    for sc in rows("scoring") {
        println!(
            "{:<10} {:<26} {:<9} {} → {} with {}: {} scored, {} errors; lag {} records \
             behind, last record {} ms from arrival to prediction",
            "scoring",
            s(&sc["name"]),
            "running",
            s(&sc["stream"]),
            s(&sc["to_stream"]),
            s(&sc["model"]),
            sc["records"],
            sc["errors"],
            sc["backlog"],
            sc["last_latency_ms"]
        );
    }
    if let Some(e) = v["endpoint"].as_object() {
        println!(
            "{:<10} {:<26} {:<9} serving {}",
            "endpoint",
            "",
            "running",
            e.get("serving")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(s).collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        );
    }
    Ok(())
}
