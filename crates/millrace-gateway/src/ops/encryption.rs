//! StartStreamEncryption and StopStreamEncryption: server-side encryption settings, kept in
//! `StreamMeta.encryption`. Records are not encrypted at rest by millrace; the setting is
//! reported by DescribeStream(Summary) and by PutRecord/PutRecords (`EncryptionType`).

use millrace_stream::{Encryption, StreamError};

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// The checked `EncryptionType` and `KeyId` members.
fn requested(req: &Request) -> Result<(String, String), ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let kind = c.required("EncryptionType", req.opt_str("EncryptionType")?);
    if let Some(k) = kind {
        c.one_of("EncryptionType", k, &["NONE", "KMS"]);
    }
    let key = req.str_len(&mut c, "KeyId", 1, 2048)?;
    let key = c.required("KeyId", key);
    c.finish()?;
    Ok((
        kind.expect("checked").to_owned(),
        key.expect("checked").to_owned(),
    ))
}

pub async fn start(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let (kind, key_id) = requested(&req)?;
    let name = gw.stream_name(&req)?;
    if kind != "KMS" {
        return Err(ApiError::invalid(format!(
            "Encryption type {kind} is not supported by StartStreamEncryption: use KMS."
        )));
    }
    let stream = gw.store.stream(&name)?;
    gw.blocking(move |_| {
        stream
            .update_meta(|m| {
                m.encryption = Some(Encryption {
                    kind: "KMS".into(),
                    key_id,
                });
                Ok(())
            })
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Out::map([]))
}

pub async fn stop(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let (kind, key_id) = requested(&req)?;
    let name = gw.stream_name(&req)?;
    if kind != "KMS" {
        return Err(ApiError::invalid(format!(
            "Encryption type {kind} is not supported by StopStreamEncryption: use KMS."
        )));
    }
    let stream = gw.store.stream(&name)?;
    let account = gw.store.options().account_id.clone();
    gw.blocking(move |_| {
        stream
            .update_meta(|m| match &m.encryption {
                None => Err(StreamError::InvalidArgument(format!(
                    "Stream {} under account {account} is not encrypted.",
                    m.name
                ))),
                Some(e) if e.key_id != key_id => Err(StreamError::InvalidArgument(format!(
                    "Invalid KeyId {key_id} for stream {} under account {account}: the stream \
                     is encrypted with a different key.",
                    m.name
                ))),
                Some(_) => {
                    m.encryption = None;
                    Ok(())
                }
            })
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Out::map([]))
}
