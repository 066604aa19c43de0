//! InvokeEndpointWithResponseStream: `POST /endpoints/NAME/invocations-response-stream`. The
//! body is parsed whole first (a body the model refuses is a `ModelError`, before the stream
//! starts); then the records are scored in chunks and each prediction is sent as soon as its
//! chunk is scored, as one `PayloadPart` event: a JSON object and a newline (JSON lines), or a
//! `label,probability` row for `X-Amzn-SageMaker-Accept: text/csv`. Joined, the parts are the
//! predictions of InvokeEndpoint, one per line, in order. A failure while scoring ends the
//! stream with a `ModelStreamError` or `InternalStreamFailure` event; a client that goes away
//! stops the scoring.

use millrace_automl::explain::Detail;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use http_body::Frame;
use millrace_http::eventstream;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{custom_attributes, describe, read_counted, target};
use crate::endpoint::{self, Endpoint, INLINE_RECORDS, Invoked};
use crate::error::ServeError;
use crate::input::Record;

const ACCEPT: &str = "X-Amzn-SageMaker-Accept";
const CONTENT_TYPE: &str = "X-Amzn-SageMaker-Content-Type";
/// Events scored but not yet sent; scoring waits for a slow reader beyond this.
const BUFFERED_EVENTS: usize = 256;

pub(super) async fn invoke_endpoint_with_response_stream(
    State(ep): State<Arc<Endpoint>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    start(&ep, &name, &headers, body)
        .await
        .unwrap_or_else(ServeError::into_sagemaker_response)
}

/// Checks the request and parses its body, then answers with the stream that a task fills.
async fn start(
    ep: &Arc<Endpoint>,
    name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ServeError> {
    let started = Instant::now();
    let target = target(ep, name, headers).await?;
    let attributes = custom_attributes(headers)?;
    let explain = endpoint::explain_param(super::header(headers, super::CUSTOM_ATTRIBUTES)?)?;
    let csv = endpoint::accepts_csv(super::header(headers, ACCEPT)?);
    let body = read_counted(ep, &target, headers, body, started).await?;
    let content_type = super::header(headers, "content-type")?;
    let records = endpoint::parse_body(&target.loaded, content_type, &body)
        .inspect_err(|e| ep.observe(target.slot, e.status().as_u16(), 0, started))?;
    let (tx, rx) = mpsc::channel(BUFFERED_EVENTS);
    let mut resp = Response::new(Body::new(EventBody(rx)));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(eventstream::CONTENT_TYPE),
    );
    let parts_type = if csv {
        "text/csv"
    } else {
        "application/jsonlines"
    };
    h.insert(CONTENT_TYPE, HeaderValue::from_static(parts_type));
    describe(&mut resp, &target, attributes);
    tokio::spawn(send_parts(
        Arc::clone(ep),
        target,
        records,
        (csv, explain),
        tx,
        started,
    ));
    Ok(resp)
}

/// Scores `records` a chunk at a time and sends one `PayloadPart` per prediction, or the
/// exception that ends the stream; counts the request when done.
async fn send_parts(
    ep: Arc<Endpoint>,
    target: Invoked,
    mut records: Vec<Record>,
    (csv, explain): (bool, Option<Detail>),
    tx: mpsc::Sender<Bytes>,
    started: Instant,
) {
    let (mut scored, mut status) = (0, 200);
    'chunks: while !records.is_empty() {
        let rest = records.split_off(INLINE_RECORDS.min(records.len()));
        let chunk = std::mem::replace(&mut records, rest);
        let n = chunk.len();
        match endpoint::score_records(&target.loaded, chunk, explain).await {
            Ok(predictions) => {
                scored += n;
                for p in &predictions {
                    if tx.send(payload_part(p, csv)).await.is_err() {
                        break 'chunks; // the client went away
                    }
                }
            }
            Err(e) => {
                status = e.status().as_u16();
                let _ = tx.send(e.sagemaker_stream_exception()).await;
                break;
            }
        }
    }
    ep.observe(target.slot, status, scored, started);
}

/// One prediction as a `PayloadPart` event: a JSON line, or a CSV row.
fn payload_part(prediction: &Value, csv: bool) -> Bytes {
    let bytes = if csv {
        endpoint::to_csv(std::slice::from_ref(prediction)).into_bytes()
    } else {
        let mut line = prediction.to_string().into_bytes();
        line.push(b'\n');
        line
    };
    eventstream::event("PayloadPart", "application/octet-stream", bytes)
}

/// The response body: the events as the scoring task sends them, ending when it is done.
struct EventBody(mpsc::Receiver<Bytes>);

impl http_body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|event| event.map(|bytes| Ok(Frame::data(bytes))))
    }
}
