use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    c.finish()?;
    let name = gw.stream_name(&req)?;
    req.opt_bool("EnforceConsumerDeletion")?;
    let n = name.clone();
    gw.blocking(move |store| store.delete(&n).map_err(ApiError::from))
        .await?;
    tracing::info!(stream = %name, "deleted stream");
    Ok(Out::map([]))
}
