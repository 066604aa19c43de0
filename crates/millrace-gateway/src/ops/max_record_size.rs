//! UpdateMaxRecordSize: the largest record a stream takes, 1,024 to 10,240 KiB
//! (`StreamMeta.max_record_size_kib`; the store enforces it on every append).

use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

pub(crate) const MIN_KIB: i64 = 1024;
pub(crate) const MAX_KIB: i64 = 10_240;

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    let kib = req.int_in(&mut c, "MaxRecordSizeInKiB", MIN_KIB, MAX_KIB)?;
    let kib = c.required("MaxRecordSizeInKiB", kib);
    c.finish()?;
    // The operation names its stream by ARN only.
    if !req.has("StreamARN") {
        return Err(ApiError::invalid("StreamARN should be provided."));
    }
    let name = gw.stream_name(&req)?;
    let kib = kib.expect("checked") as u32;
    let stream = gw.store.stream(&name)?;
    gw.blocking(move |_| {
        stream
            .update_meta(|m| {
                m.max_record_size_kib = kib;
                Ok(())
            })
            .map_err(ApiError::from)
    })
    .await?;
    Ok(Out::map([]))
}
