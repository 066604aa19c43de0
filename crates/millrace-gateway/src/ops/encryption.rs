//! StartStreamEncryption and StopStreamEncryption: records appended from then on are sealed
//! with AES-256-GCM under the keyring's key that KeyId names (`millrace_stream::keyring`), or
//! written in the clear again. The setting is kept in `StreamMeta.encryption` and reported by
//! DescribeStream(Summary) and PutRecord/PutRecords (`EncryptionType`). A KeyId the keyring
//! does not hold is KMSNotFoundException; `alias/aws/kinesis` is made on first use.

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
    gw.blocking(move |_| stream.start_encryption(&key_id).map_err(ApiError::from))
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
    gw.blocking(move |_| stream.stop_encryption(&key_id).map_err(ApiError::from))
        .await?;
    Ok(Out::map([]))
}
