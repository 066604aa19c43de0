//! InvokeEndpoint: `POST /endpoints/NAME/invocations`. The body and `Content-Type` are those
//! of `/invocations`, and so is the answer (`{"predictions": [...]}`, or `label,probability`
//! rows for `Accept: text/csv`), with the version that scored in
//! `x-Amzn-Invoked-Production-Variant` and the custom attributes echoed.
//! `X-Amzn-SageMaker-Inference-Id`, `-Target-Model`, `-Target-Container-Hostname`,
//! `-Inference-Component`, `-Session-Id` and `-Enable-Explanations` are accepted and have
//! nothing to select here: one container serves each model.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::{custom_attributes, describe, read_counted, score_counted, target};
use crate::endpoint::{self, Endpoint};
use crate::error::ServeError;

pub(super) async fn invoke_endpoint(
    State(ep): State<Arc<Endpoint>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    invoke(&ep, &name, &headers, body)
        .await
        .unwrap_or_else(ServeError::into_sagemaker_response)
}

async fn invoke(
    ep: &Arc<Endpoint>,
    name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ServeError> {
    let started = Instant::now();
    let target = target(ep, name, headers).await?;
    let attributes = custom_attributes(headers)?;
    let explain = endpoint::explain_param(super::header(headers, super::CUSTOM_ATTRIBUTES)?)?;
    let body = read_counted(ep, &target, headers, body, started).await?;
    let content_type = super::header(headers, "content-type")?;
    let predictions = score_counted(ep, &target, content_type, &body, explain, started).await?;
    let csv = endpoint::accepts_csv(super::header(headers, "accept")?);
    let (content_type, body) = endpoint::encode_predictions(&predictions, csv);
    let mut resp = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    describe(&mut resp, &target, attributes);
    Ok(resp)
}
