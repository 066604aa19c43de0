//! The bounds of the three HTTP servers (Kinesis API, endpoint, admin API) against the real
//! binary: a half-sent request or a too-slow body is cut off, idle sockets beyond the
//! connection cap never lock a client out, parallel large PutRecords stay within the bytes in
//! flight (or get a retryable 503), only loopback and configured Host names are served, and a
//! bind beyond loopback is announced on stderr.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Running, Server, TELCO_CSV, millrace, read_csv, write_csv};

/// Starts `up` with `[server]` settings `server_toml` (and any further tables in `more_toml`)
/// on free ports; waits for the Kinesis API and the admin API.
fn start_up(dir: &Path, server_toml: &str, more_toml: &str) -> Server {
    let config = dir.join("millrace.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nkinesis_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.1:0\"\n\
             {server_toml}\n[storage]\nfsync = \"never\"\n{more_toml}"
        ),
    )
    .unwrap();
    Server::start(
        &dir.join("data"),
        ["-c".as_ref(), config.as_os_str()],
        None,
        &["kinesis", "admin"],
        Duration::from_secs(30),
        dir.join("server.log"),
    )
}

/// `http://127.0.0.1:PORT` → `127.0.0.1:PORT`.
fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

/// A raw HTTP exchange: sends `request` as is and reads until the server closes (at most
/// 10 s); returns the status and the whole response.
fn exchange(addr: &str, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP response from {addr}: {text:?}"));
    (status, text)
}

/// A Kinesis `ListStreams` naming `host`, with `Connection: close`.
fn list_streams(host: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nX-Amz-Target: Kinesis_20131202.ListStreams\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\
         Connection: close\r\n\r\n{{}}"
    )
    .into_bytes()
}

fn get(path: &str, host: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

/// Seconds until the server closes a connection that sent `partial` and nothing more; panics
/// if it is still open after `patience`.
fn seconds_until_closed(addr: &str, partial: &[u8], patience: Duration) -> (f64, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(patience)).unwrap();
    s.write_all(partial).unwrap();
    let start = Instant::now();
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "{addr}: connection still open after {:.1} s ({e}); the server waits forever for \
             a half-sent request",
            start.elapsed().as_secs_f64()
        ),
    }
    (
        start.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out).into_owned(),
    )
}

/// Sockets the process holds (listeners and connections).
fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Peak resident memory of a process, in MiB.
fn vm_hwm_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

#[test]
fn half_sent_requests_and_slow_bodies_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_up(
        dir.path(),
        "header_timeout_secs = 1\nbody_timeout_secs = 1",
        "",
    );
    let patience = Duration::from_secs(15);
    for name in ["kinesis", "admin"] {
        let addr = host_port(server.url(name));
        // Headers never finished.
        let (secs, _) = seconds_until_closed(
            addr,
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-",
            patience,
        );
        eprintln!("{name}: half-sent headers closed after {secs:.2} s");
        // Connected, nothing sent.
        let (secs, _) = seconds_until_closed(addr, b"", patience);
        eprintln!("{name}: silent connection closed after {secs:.2} s");
    }
    // A keep-alive connection idle after its answer is closed too.
    let addr = host_port(server.url("admin"));
    let request = format!("GET /status HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let (secs, answer) = seconds_until_closed(addr, request.as_bytes(), patience);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    eprintln!("admin: idle keep-alive connection closed after {secs:.2} s");
    // A body announced as 100 bytes of which 10 arrive: 408, then the connection ends.
    let addr = host_port(server.url("kinesis"));
    let partial = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                   X-Amz-Target: Kinesis_20131202.ListStreams\r\n\
                   Content-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n{\"Limit\":";
    let (secs, answer) = seconds_until_closed(addr, partial.as_bytes(), patience);
    eprintln!("kinesis: slow body answered and closed after {secs:.2} s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("RequestTimeout"), "{answer}");
    // The server still serves.
    let (status, text) = exchange(addr, &list_streams(addr));
    assert_eq!(status, 200, "{text}");
}

#[test]
fn idle_sockets_beyond_the_cap_never_lock_a_client_out() {
    let dir = tempfile::tempdir().unwrap();
    // Idle connections would be closed after 60 s: only the cap can help within the test.
    let server = start_up(
        dir.path(),
        "header_timeout_secs = 60\nmax_connections = 8",
        "",
    );
    let addr = host_port(server.url("kinesis")).to_owned();
    let before = sockets(server.pid());
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    // A fresh client is answered, at once, while the 200 sockets are still open.
    let started = Instant::now();
    let (status, text) = exchange(&addr, &list_streams(&addr));
    assert!(
        status == 200 || (status == 503 && text.contains("ServiceUnavailable")),
        "{text}"
    );
    eprintln!(
        "fresh request among 200 idle sockets: {status} after {:.3} s",
        started.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_millis(500));
    let held = sockets(server.pid()) - before;
    eprintln!("the server holds {held} connections for 200 idle sockets (cap 8)");
    assert!(
        held <= 8 + 2,
        "the server holds {held} connections for 200 idle sockets; the cap is 8"
    );
    drop(idle);
    for _ in 0..20 {
        let (status, text) = exchange(&addr, &list_streams(&addr));
        assert_eq!(status, 200, "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_large_put_records_stay_within_the_bytes_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_up(
        dir.path(),
        "max_inflight_mb = 16",
        "[[stream]]\nname = \"big\"\nshards = 1\n",
    );
    let url = server.url("kinesis").to_owned();
    let pid = server.pid();
    let before = vm_hwm_mib(pid);
    // 5 records of 1,000,000 bytes: a 6.7 MB JSON body, near PutRecords' 5 MiB of data.
    let data = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; 1_000_000]);
    let records: Vec<String> = (0..5)
        .map(|i| format!("{{\"Data\":\"{data}\",\"PartitionKey\":\"k{i}\"}}"))
        .collect();
    let body = bytes::Bytes::from(format!(
        "{{\"StreamName\":\"big\",\"Records\":[{}]}}",
        records.join(",")
    ));
    let client = reqwest::Client::new();
    const PARALLEL: usize = 40;
    let tasks: Vec<_> = (0..PARALLEL)
        .map(|_| {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            tokio::spawn(async move {
                let r = client
                    .post(&url)
                    .header("x-amz-target", "Kinesis_20131202.PutRecords")
                    .header("content-type", "application/x-amz-json-1.1")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let kind = r
                    .headers()
                    .get("x-amzn-errortype")
                    .map(|v| v.to_str().unwrap().to_owned());
                (status, kind, r.text().await.unwrap())
            })
        })
        .collect();
    let (mut ok, mut unavailable) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (200, _, text) => {
                assert!(text.contains("\"FailedRecordCount\":0"), "{text}");
                ok += 1;
            }
            (503, Some(kind), text) if kind == "ServiceUnavailable" => {
                assert!(text.contains("\"__type\":\"ServiceUnavailable\""), "{text}");
                unavailable += 1;
            }
            other => panic!("neither stored nor a retryable 503: {other:?}"),
        }
    }
    let after = vm_hwm_mib(pid);
    eprintln!(
        "{PARALLEL} parallel {:.1} MiB PutRecords: {ok} stored, {unavailable} answered 503; \
         server VmHWM {before:.0} MiB -> {after:.0} MiB",
        body.len() as f64 / (1 << 20) as f64
    );
    assert!(ok >= 1, "no PutRecords got through");
    // Each request in flight costs several times its body (the body, the decoded JSON, the
    // records): 2 at a time measured 75-100 MiB; unbounded, all 40 at once took ~610 MiB.
    assert!(
        after - before < 250.0,
        "server peak memory grew from {before:.0} MiB to {after:.0} MiB with a 16 MiB budget"
    );
}

/// Whether a Host refusal came back: 421 with a message naming the host.
fn assert_refused(status: u16, text: &str) {
    assert_eq!(status, 421, "{text}");
    assert!(text.contains("evil.example"), "{text}");
}

#[test]
fn only_loopback_and_configured_hosts_are_served_by_up() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_up(dir.path(), "allowed_hosts = [\"stream.internal\"]", "");
    let kinesis = host_port(server.url("kinesis")).to_owned();
    let port = kinesis.rsplit(':').next().unwrap();
    let (status, text) = exchange(&kinesis, &list_streams("evil.example"));
    assert_refused(status, &text);
    assert!(
        text.contains("x-amzn-errortype: AccessDeniedException"),
        "{text}"
    );
    assert!(
        text.contains("\"__type\":\"AccessDeniedException\""),
        "{text}"
    );
    let (status, text) = exchange(&kinesis, &list_streams(&format!("evil.example:{port}")));
    assert_refused(status, &text);
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("stream.internal:{port}"),
    ] {
        let (status, text) = exchange(&kinesis, &list_streams(&host));
        assert_eq!(status, 200, "Host {host}: {text}");
    }
    let admin = host_port(server.url("admin")).to_owned();
    let port = admin.rsplit(':').next().unwrap();
    let (status, text) = exchange(&admin, &get("/status", "evil.example"));
    assert_refused(status, &text);
    assert!(text.contains("{\"error\":"), "{text}");
    let (status, text) = exchange(&admin, &get("/status", &format!("localhost:{port}")));
    assert_eq!(status, 200, "{text}");
}

/// Spawns `millrace ARGS` with stderr in `stderr`; returns the child and its first stdout line.
fn spawn_reading_first_line(args: &[&str], stderr: &Path) -> (Running, String) {
    let mut child = millrace()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // Keep draining: a closed pipe would make the next ready line kill the server.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (Running(child), line)
}

/// Waits (at most 10 s) until `path` contains `needle`; returns the file's text.
fn wait_for_text(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn up_bound_beyond_loopback_with_insecure_warns_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("stderr.log");
    let (_up, line) = spawn_reading_first_line(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "up",
            "--insecure",
            "--kinesis-addr",
            "0.0.0.0:0",
            "--admin-addr",
            "127.0.0.1:0",
        ],
        &log,
    );
    assert!(line.contains("kinesis=http://0.0.0.0:"), "{line}");
    let text = wait_for_text(&log, "WARNING");
    assert!(
        text.contains("WARNING: the Kinesis API listens on 0.0.0.0:")
            && text.contains("no authentication"),
        "no warning on stderr:\n{text}"
    );
    assert!(!text.contains("the admin API listens"), "{text}");
}

/// Trains `churn` on the first 600 Telco rows (seconds, not minutes).
fn train_small_model(dir: &Path, data: &Path) {
    let (header, rows) = read_csv(TELCO_CSV);
    let csv = dir.join("small.csv");
    write_csv(&csv, &header, &rows[..600]);
    common::train_churn(data, &csv, &["--folds", "2"]);
}

#[test]
fn the_endpoint_cuts_half_sent_requests_refuses_other_hosts_and_warns_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    train_small_model(dir.path(), &data);
    let data_arg = data.to_str().unwrap();

    let log = dir.path().join("endpoint.log");
    let (_ep, line) = spawn_reading_first_line(
        &[
            "--data-dir",
            data_arg,
            "endpoint",
            "--model",
            "churn",
            "--addr",
            "127.0.0.1:0",
            "--header-timeout",
            "1s",
        ],
        &log,
    );
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    let addr = host_port(url).to_owned();
    let port = addr.rsplit(':').next().unwrap();
    let (secs, _) = seconds_until_closed(
        &addr,
        b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-",
        Duration::from_secs(15),
    );
    eprintln!("endpoint: half-sent headers closed after {secs:.2} s");
    let (status, text) = exchange(&addr, &get("/ping", "evil.example"));
    assert_refused(status, &text);
    assert!(text.contains("{\"error\":"), "{text}");
    let (status, text) = exchange(&addr, &get("/ping", &format!("localhost:{port}")));
    assert_eq!(status, 200, "{text}");
    assert!(!std::fs::read_to_string(&log).unwrap().contains("WARNING"));

    // Bound to every interface: the warning, on stderr.
    let log = dir.path().join("endpoint-exposed.log");
    let (_exposed, line) = spawn_reading_first_line(
        &[
            "--data-dir",
            data_arg,
            "endpoint",
            "--model",
            "churn",
            "--addr",
            "0.0.0.0:0",
        ],
        &log,
    );
    assert!(line.contains("http://0.0.0.0:"), "{line}");
    let text = wait_for_text(&log, "WARNING");
    assert!(
        text.contains("WARNING: the endpoint listens on 0.0.0.0:")
            && text.contains("no authentication"),
        "no warning on stderr:\n{text}"
    );
}

#[test]
fn limits_out_of_range_are_refused_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[server]\nmax_inflight_mb = 0\n").unwrap();
    let out = millrace()
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("up")
        .arg("-c")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.max_inflight_mb = 0"), "{err}");
    let out = millrace()
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["endpoint", "--model", "churn", "--max-connections", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-connections 0"), "{err}");
}
