use crate::error::ApiError;
use crate::protocol::Out;
use crate::request::{Checks, Request};
use crate::server::Gateway;

pub async fn handle(gw: &Gateway, req: Request) -> Result<Out, ApiError> {
    let mut c = Checks::new();
    req.check_stream(&mut c)?;
    c.finish()?;
    let name = gw.stream_name(&req)?;
    let enforce = req.opt_bool("EnforceConsumerDeletion")?.unwrap_or(false);
    // As Kinesis: a stream with registered consumers goes only with EnforceConsumerDeletion.
    let consumers = gw.store.stream(&name)?.meta().consumers.len();
    if consumers > 0 && !enforce {
        return Err(ApiError::new(
            crate::error::ErrorCode::ResourceInUse,
            format!(
                "Stream {name} under account {} has {consumers} registered consumer(s). Set \
                 EnforceConsumerDeletion to true to delete the stream and its consumers.",
                gw.store.options().account_id
            ),
        ));
    }
    // A queue must be deleted before its stream, whatever EnforceConsumerDeletion says.
    let queues = gw.queues.on_stream(&name);
    if queues > 0 {
        return Err(ApiError::new(
            crate::error::ErrorCode::ResourceInUse,
            format!(
                "Stream {name} under account {} has {queues} queue(s). Delete every queue on \
                 the stream (ListQueues with a StreamFilter finds them) before the stream.",
                gw.store.options().account_id
            ),
        ));
    }
    let (n, channels) = (name.clone(), gw.channels.clone());
    // A stream with channels stays (ResourceInUse); the check holds the channel registry's lock
    // through the deletion, so no channel of the stream is created meanwhile.
    gw.blocking(move |store| channels.unless_read(&n, || store.delete(&n).map_err(ApiError::from)))
        .await?;
    tracing::info!(stream = %name, "deleted stream");
    Ok(Out::map([]))
}
