//! InvokeEndpointAsync: `POST /endpoints/NAME/async-invocations`. The input is either the
//! object `X-Amzn-SageMaker-InputLocation` names (`s3://lake/KEY`, see `lake.rs`) or an inline
//! body of at most 128,000 bytes, never both; its type is `X-Amzn-SageMaker-Content-Type`. The
//! answer is 202 with the `InferenceId` (the client's `X-Amzn-SageMaker-Inference-Id`, or a
//! new UUID) and where the result will be: `X-Amzn-SageMaker-OutputLocation`,
//! `s3://lake/async-inference/output/[EXTENSION/]ID.out` (`S3OutputPathExtension`; the file
//! name is `X-Amzn-SageMaker-Filename` when given), or on failure
//! `X-Amzn-SageMaker-FailureLocation`, `s3://lake/async-inference/failures/ID-error.out`,
//! holding the error InvokeEndpoint would have answered (`ErrorCode`, `Message`, …). The ID is
//! escaped into one key segment (`millrace_common::keys::escape_segment`), so no client value
//! can name a path outside those folders.
//!
//! The scoring runs in a task after the answer: at most [`WORKERS`] at a time, [`MAX_PENDING`]
//! accepted and not finished (more is `ServiceUnavailable`). A request still waiting after
//! `RequestTTLSeconds` (default 6 h), or scoring longer than `InvocationTimeoutSeconds`
//! (default 15 min), fails. The queue is in memory: requests not finished when the endpoint
//! stops leave neither an output nor a failure object.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use millrace_automl::explain::Detail;
use millrace_common::keys::escape_segment;
use tokio::sync::Semaphore;

use super::{lake, read_counted, score_counted, target};
use crate::endpoint::{self, Endpoint, Invoked};
use crate::error::ServeError;

/// Asynchronous invocations scored at once.
pub const WORKERS: usize = 2;
/// Asynchronous invocations accepted and not finished, at most.
pub const MAX_PENDING: usize = 64;
/// The largest inline body (SageMaker's limit).
pub const MAX_INLINE_BODY: usize = 128_000;
/// The largest input object read from the lake.
pub const MAX_INPUT_OBJECT: u64 = 16 * 1024 * 1024;

const INPUT_LOCATION: &str = "X-Amzn-SageMaker-InputLocation";
const CONTENT_TYPE: &str = "X-Amzn-SageMaker-Content-Type";
const ACCEPT: &str = "X-Amzn-SageMaker-Accept";
const INFERENCE_ID: &str = "X-Amzn-SageMaker-Inference-Id";
const OUTPUT_EXTENSION: &str = "X-Amzn-SageMaker-S3OutputPathExtension";
const FILENAME: &str = "X-Amzn-SageMaker-Filename";
const REQUEST_TTL: &str = "X-Amzn-SageMaker-RequestTTLSeconds";
const INVOCATION_TIMEOUT: &str = "X-Amzn-SageMaker-InvocationTimeoutSeconds";

const OUTPUT_FOLDER: &str = "async-inference/output";
const FAILURE_FOLDER: &str = "async-inference/failures";

/// The asynchronous invocations accepted and not finished, and the permits to score.
pub struct AsyncQueue {
    pending: AtomicUsize,
    workers: Semaphore,
}

impl Default for AsyncQueue {
    fn default() -> Self {
        AsyncQueue {
            pending: AtomicUsize::new(0),
            workers: Semaphore::new(WORKERS),
        }
    }
}

/// A place in the queue, given back when the invocation is done (or dropped).
struct Ticket(Arc<Endpoint>);

impl Ticket {
    fn take(ep: &Arc<Endpoint>) -> Result<Ticket, ServeError> {
        let pending = &ep.queue().pending;
        let mut now = pending.load(Ordering::Relaxed);
        loop {
            if now >= MAX_PENDING {
                return Err(ServeError::AsyncQueueFull { pending: now });
            }
            match pending.compare_exchange(now, now + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Ok(Ticket(Arc::clone(ep))),
                Err(seen) => now = seen,
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.queue().pending.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) async fn invoke_endpoint_async(
    State(ep): State<Arc<Endpoint>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    accept(&ep, &name, &headers, body)
        .await
        .unwrap_or_else(ServeError::into_sagemaker_response)
}

/// Checks the request, queues it and answers where its result will be.
async fn accept(
    ep: &Arc<Endpoint>,
    name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ServeError> {
    let started = Instant::now();
    let target = target(ep, name, headers).await?;
    let body = read_counted(ep, &target, headers, body, started).await?;
    let job = Job::new(target, headers, body)?;
    let ticket = Ticket::take(ep)?;
    let resp = job.accepted();
    tokio::spawn(job.run(ticket));
    Ok(resp)
}

/// Where an invocation's input comes from.
enum Input {
    Inline(Bytes),
    Object(String),
}

/// One accepted asynchronous invocation.
struct Job {
    target: Invoked,
    inference_id: String,
    input: Input,
    content_type: Option<String>,
    csv: bool,
    /// `explain=K|all` in the custom attributes.
    explain: Option<Detail>,
    output_key: String,
    failure_key: String,
    ttl: Duration,
    timeout: Duration,
    accepted_at: Instant,
}

impl Job {
    fn new(target: Invoked, headers: &HeaderMap, body: Bytes) -> Result<Job, ServeError> {
        let inference_id = match super::header(headers, INFERENCE_ID)? {
            Some(id) => check_inference_id(id)?.to_owned(),
            None => millrace_common::ids::uuid_v4(),
        };
        let (output_key, failure_key) = result_keys(headers, &inference_id)?;
        Ok(Job {
            target,
            input: input(headers, body)?,
            content_type: super::header(headers, CONTENT_TYPE)?.map(str::to_owned),
            csv: endpoint::accepts_csv(super::header(headers, ACCEPT)?),
            explain: endpoint::explain_param(super::header(headers, super::CUSTOM_ATTRIBUTES)?)?,
            output_key,
            failure_key,
            ttl: seconds(headers, REQUEST_TTL, 60..=21_600, 21_600)?,
            timeout: seconds(headers, INVOCATION_TIMEOUT, 1..=3_600, 900)?,
            accepted_at: Instant::now(),
            inference_id,
        })
    }

    /// 202 with the InferenceId and the output and failure locations.
    fn accepted(&self) -> Response {
        let body = serde_json::json!({ "InferenceId": self.inference_id }).to_string();
        let mut resp = (
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        let h = resp.headers_mut();
        for (name, key) in [
            ("X-Amzn-SageMaker-OutputLocation", &self.output_key),
            ("X-Amzn-SageMaker-FailureLocation", &self.failure_key),
        ] {
            if let Ok(v) = HeaderValue::from_str(&lake::uri(key)) {
                h.insert(name, v);
            }
        }
        resp
    }

    /// Waits for a worker, scores, and writes the output or the failure object.
    async fn run(self, ticket: Ticket) {
        let ep = Arc::clone(&ticket.0);
        let Ok(_worker) = ep.queue().workers.acquire().await else {
            return;
        };
        let outcome = if self.accepted_at.elapsed() > self.ttl {
            Err(ServeError::Expired {
                limit: REQUEST_TTL,
                secs: self.ttl.as_secs(),
            })
        } else {
            tokio::time::timeout(self.timeout, self.score(&ep))
                .await
                .unwrap_or(Err(ServeError::Expired {
                    limit: INVOCATION_TIMEOUT,
                    secs: self.timeout.as_secs(),
                }))
        };
        let (key, bytes) = match outcome {
            Ok(bytes) => (&self.output_key, bytes),
            Err(e) => (&self.failure_key, self.failure(&e)),
        };
        if let Err(e) = self.write(&ep, key, bytes).await {
            tracing::warn!(inference_id = %self.inference_id, key = %key, error = %e,
                "cannot write the result of an asynchronous invocation");
        }
        drop(ticket);
    }

    /// The predictions, encoded as InvokeEndpoint answers them.
    async fn score(&self, ep: &Arc<Endpoint>) -> Result<Vec<u8>, ServeError> {
        let started = Instant::now();
        let body = match &self.input {
            Input::Inline(b) => b.clone(),
            Input::Object(key) => read_object(ep, key).await?,
        };
        let ct = self.content_type.as_deref();
        let predictions = score_counted(ep, &self.target, ct, &body, self.explain, started).await?;
        Ok(endpoint::encode_predictions(&predictions, self.csv).1)
    }

    /// The failure object: the error in SageMaker's shape, with its type and the request.
    fn failure(&self, e: &ServeError) -> Vec<u8> {
        let mut body = e.sagemaker_body();
        if let Some(o) = body.as_object_mut() {
            o.insert("ErrorCode".into(), e.sagemaker().as_str().into());
            o.insert("InferenceId".into(), self.inference_id.clone().into());
        }
        tracing::debug!(inference_id = %self.inference_id, error = %e, "asynchronous invocation failed");
        body.to_string().into_bytes()
    }

    async fn write(&self, ep: &Arc<Endpoint>, key: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        let (lake_dir, key) = (ep.lake().to_path_buf(), key.to_owned());
        tokio::task::spawn_blocking(move || lake::write(&lake_dir, &key, &bytes))
            .await
            .map_err(std::io::Error::other)?
    }
}

/// The input object's bytes, read off the async threads.
async fn read_object(ep: &Arc<Endpoint>, key: &str) -> Result<Bytes, ServeError> {
    let (lake_dir, key) = (ep.lake().to_path_buf(), key.to_owned());
    tokio::task::spawn_blocking(move || lake::read(&lake_dir, &key, MAX_INPUT_OBJECT))
        .await
        .map_err(|e| ServeError::Internal(format!("reading the input: {e}")))?
        .map(Bytes::from)
        .map_err(|problem| ServeError::BadHeader {
            header: INPUT_LOCATION,
            problem,
        })
}

/// The input: exactly one of an inline body and an input location.
fn input(headers: &HeaderMap, body: Bytes) -> Result<Input, ServeError> {
    let location = super::header(headers, INPUT_LOCATION)?;
    match (location, body.is_empty()) {
        (Some(uri), true) => lake::key_of(uri)
            .map(|k| Input::Object(k.to_owned()))
            .map_err(|problem| ServeError::BadHeader {
                header: INPUT_LOCATION,
                problem,
            }),
        (None, false) if body.len() > MAX_INLINE_BODY => Err(ServeError::Invalid(format!(
            "the inline Body is {} bytes, over the {MAX_INLINE_BODY}-byte limit; put the input \
             in the lake and pass InputLocation (s3://lake/KEY)",
            body.len()
        ))),
        (None, false) => Ok(Input::Inline(body)),
        _ => Err(ServeError::Invalid(
            "Body and InputLocation are mutually exclusive: provide exactly one of them".into(),
        )),
    }
}

/// An InferenceId as the API takes it: 1 to 64 printable characters, the first not a space.
fn check_inference_id(id: &str) -> Result<&str, ServeError> {
    let ok = (1..=64).contains(&id.chars().count())
        && id.chars().all(|c| !c.is_control())
        && !id.starts_with(char::is_whitespace);
    if ok {
        Ok(id)
    } else {
        Err(ServeError::BadHeader {
            header: INFERENCE_ID,
            problem: "1 to 64 printable characters, the first not a space".into(),
        })
    }
}

/// The output and failure keys of an invocation, checked.
fn result_keys(headers: &HeaderMap, id: &str) -> Result<(String, String), ServeError> {
    let id = escape_segment(id);
    let file = match super::header(headers, FILENAME)? {
        Some(f) => {
            millrace_common::keys::check_name(f).map_err(|problem| ServeError::BadHeader {
                header: FILENAME,
                problem,
            })?;
            f.to_owned()
        }
        None => format!("{id}.out"),
    };
    let output = match super::header(headers, OUTPUT_EXTENSION)? {
        Some(ext) => format!("{OUTPUT_FOLDER}/{}/{file}", ext.trim_matches('/')),
        None => format!("{OUTPUT_FOLDER}/{file}"),
    };
    lake::check(&output).map_err(|problem| ServeError::BadHeader {
        header: OUTPUT_EXTENSION,
        problem,
    })?;
    Ok((output, format!("{FAILURE_FOLDER}/{id}-error.out")))
}

/// An integer header within `range` seconds, or `default`.
fn seconds(
    headers: &HeaderMap,
    name: &'static str,
    range: std::ops::RangeInclusive<u64>,
    default: u64,
) -> Result<Duration, ServeError> {
    let Some(v) = super::header(headers, name)? else {
        return Ok(Duration::from_secs(default));
    };
    match v.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(ServeError::BadHeader {
            header: name,
            problem: format!("{v:?}: seconds from {} to {}", range.start(), range.end()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn result_keys_never_leave_their_folders() {
        let (out, fail) = result_keys(&HeaderMap::new(), "abc").unwrap();
        assert_eq!(out, "async-inference/output/abc.out");
        assert_eq!(fail, "async-inference/failures/abc-error.out");
        // An id is one segment, whatever it holds.
        let (out, fail) = result_keys(&HeaderMap::new(), "../../x").unwrap();
        assert_eq!(out, "async-inference/output/%2E.%2F..%2Fx.out");
        assert_eq!(fail, "async-inference/failures/%2E.%2F..%2Fx-error.out");
        let h = headers(&[(OUTPUT_EXTENSION, "daily/2026"), (FILENAME, "r.json")]);
        let (out, _) = result_keys(&h, "i").unwrap();
        assert_eq!(out, "async-inference/output/daily/2026/r.json");
        for (k, v) in [
            (OUTPUT_EXTENSION, "../../models"),
            (OUTPUT_EXTENSION, "a//b"),
            (FILENAME, ".."),
            (FILENAME, "a/b"),
        ] {
            let e = result_keys(&headers(&[(k, v)]), "i").unwrap_err();
            assert!(
                matches!(e, ServeError::BadHeader { header, .. } if header == k),
                "{k}: {v}"
            );
        }
    }

    #[test]
    fn the_input_is_a_body_or_a_location_never_both() {
        let loc = headers(&[(INPUT_LOCATION, "s3://lake/in/a.csv")]);
        assert!(matches!(input(&loc, Bytes::new()), Ok(Input::Object(k)) if k == "in/a.csv"));
        assert!(matches!(
            input(&HeaderMap::new(), Bytes::from_static(b"1,2")),
            Ok(Input::Inline(_))
        ));
        assert!(input(&loc, Bytes::from_static(b"1,2")).is_err());
        assert!(input(&HeaderMap::new(), Bytes::new()).is_err());
        let big = Bytes::from(vec![b'x'; MAX_INLINE_BODY + 1]);
        assert!(input(&HeaderMap::new(), big).is_err());
        let other = headers(&[(INPUT_LOCATION, "s3://other/a.csv")]);
        let e = input(&other, Bytes::new()).err().unwrap();
        assert!(e.to_string().contains("s3://lake/KEY"), "{e}");
        let escape = headers(&[(INPUT_LOCATION, "s3://lake/../state/iterator.key")]);
        assert!(input(&escape, Bytes::new()).is_err());
    }

    #[test]
    fn ids_and_durations_are_checked() {
        assert!(check_inference_id("a b/c").is_ok());
        assert!(check_inference_id(" lead").is_err());
        assert!(check_inference_id("").is_err());
        assert!(check_inference_id(&"x".repeat(65)).is_err());
        let h = headers(&[(REQUEST_TTL, "59")]);
        assert!(seconds(&h, REQUEST_TTL, 60..=21_600, 21_600).is_err());
        let h = headers(&[(REQUEST_TTL, "120")]);
        assert_eq!(
            seconds(&h, REQUEST_TTL, 60..=21_600, 21_600).unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(
            seconds(&HeaderMap::new(), INVOCATION_TIMEOUT, 1..=3_600, 900).unwrap(),
            Duration::from_secs(900)
        );
    }
}
