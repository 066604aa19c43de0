//! The resource a `ResourceARN` names, found in the store: a stream, one of its consumers, or
//! a queue (its policy is kept with its stream's). Shared by the resource-policy and
//! resource-tag operations.

use std::collections::BTreeMap;
use std::sync::Arc;

use millrace_stream::{StreamError, StreamHandle};

use crate::arn::{ResourceArn, consumer_arn, parse_resource_arn};
use crate::error::{ApiError, ErrorCode};
use crate::request::{Checks, Request};
use crate::server::Gateway;

/// A stream or consumer that exists now.
pub(crate) struct Resource {
    pub stream: Arc<StreamHandle>,
    /// The consumer's name, for a consumer ARN.
    pub consumer: Option<String>,
    /// The resource's canonical ARN.
    pub arn: String,
    account: String,
    /// For a queue ARN: the registry and the queue, which keeps its own tags.
    queue: Option<(Arc<millrace_queue::Queues>, Arc<millrace_queue::Queue>)>,
    /// For a channel ARN: the registry and the channel, which keeps its own tags.
    channel: Option<(Arc<crate::channels::Channels>, crate::channels::ChannelSpec)>,
}

/// Feeds the required `ResourceARN` member's model constraints to `c`.
pub(crate) fn check(c: &mut Checks, req: &Request) -> Result<(), ApiError> {
    if let Some(arn) = c.required("ResourceARN", req.opt_str("ResourceARN")?) {
        crate::arn::check_resource_arn(c, "ResourceARN", arn);
    }
    Ok(())
}

/// The resource `ResourceARN` names; `ResourceNotFoundException` when there is none.
pub(crate) fn find(gw: &Gateway, req: &Request) -> Result<Resource, ApiError> {
    let arn = req.str("ResourceARN")?;
    if arn.contains(":queue/") {
        let queue = super::queues::by_arn(gw, arn)?;
        let stream = gw.store.stream(&queue.config().stream)?;
        return Ok(Resource {
            arn: super::queues::queue_arn(gw, &queue.id()),
            stream,
            consumer: None,
            account: gw.store.options().account_id.clone(),
            queue: Some((gw.queues.clone(), queue)),
            channel: None,
        });
    }
    if arn.contains(":channel/") {
        let spec = super::channels::find(gw, arn)?;
        let stream = gw.store.stream(&spec.source.stream)?;
        return Ok(Resource {
            arn: gw.channels.arn(&spec),
            stream,
            consumer: None,
            account: gw.store.options().account_id.clone(),
            queue: None,
            channel: Some((gw.channels.clone(), spec)),
        });
    }
    match parse_resource_arn(gw.store.options(), arn)? {
        ResourceArn::Stream(name) => {
            let stream = gw.store.stream(&name)?;
            Ok(Resource {
                arn: gw.arn(&name),
                stream,
                consumer: None,
                account: gw.store.options().account_id.clone(),
                queue: None,
                channel: None,
            })
        }
        ResourceArn::Consumer {
            stream,
            consumer,
            created_s,
        } => {
            let handle = gw
                .store
                .stream(&stream)
                .map_err(|_| consumer_not_found(&gw.store.options().account_id, arn))?;
            let meta = handle.meta();
            let found = meta
                .consumer(&consumer)
                .filter(|c| c.created_ms.div_euclid(1000) == created_s)
                .ok_or_else(|| consumer_not_found(&gw.store.options().account_id, arn))?;
            Ok(Resource {
                arn: consumer_arn(&gw.arn(&stream), &found.name, found.created_ms),
                stream: handle,
                consumer: Some(consumer),
                account: gw.store.options().account_id.clone(),
                queue: None,
                channel: None,
            })
        }
    }
}

fn consumer_not_found(account: &str, arn: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("Consumer {arn} under account {account} not found."),
    )
}

impl Resource {
    /// Changes this resource's tags with `f` (durably); a consumer deregistered meanwhile is
    /// `ResourceNotFoundException`.
    pub(crate) fn update_tags(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), StreamError>,
    ) -> Result<(), ApiError> {
        if let Some((queues, queue)) = &self.queue {
            let mut tags = queue.config().tags;
            f(&mut tags)?;
            queues.set_tags(&queue.id(), tags)?;
            return Ok(());
        }
        if let Some((channels, spec)) = &self.channel {
            let mut tags = channels
                .get(&spec.name)
                .filter(|s| s.id == spec.id)
                .map(|s| s.tags)
                .unwrap_or_default();
            f(&mut tags)?;
            return channels.set_tags(&spec.name, &spec.id, tags);
        }
        let mut gone = false;
        self.stream.update_meta(|m| match &self.consumer {
            None => f(&mut m.tags),
            Some(name) => match m.consumers.iter_mut().find(|c| &c.name == name) {
                Some(c) => f(&mut c.tags),
                None => {
                    gone = true;
                    Ok(())
                }
            },
        })?;
        if gone {
            return Err(consumer_not_found(&self.account, &self.arn));
        }
        Ok(())
    }

    /// This resource's tags now.
    pub(crate) fn tags(&self) -> BTreeMap<String, String> {
        if let Some((_, queue)) = &self.queue {
            return queue.config().tags;
        }
        if let Some((_, spec)) = &self.channel {
            return spec.tags.clone();
        }
        let meta = self.stream.meta();
        match &self.consumer {
            None => meta.tags,
            Some(name) => meta
                .consumer(name)
                .map(|c| c.tags.clone())
                .unwrap_or_default(),
        }
    }
}
