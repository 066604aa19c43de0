//! One module per Kinesis operation. Each takes the decoded [`Request`], validates it the way
//! Kinesis does, calls the store and builds the reply.

mod account_settings;
mod channels;
pub(crate) mod consumers;
mod create_stream;
mod delete_stream;
mod describe_limits;
mod describe_stream;
mod encryption;
mod enhanced_monitoring;
mod get_records;
mod get_shard_iterator;
mod list_shards;
mod list_streams;
mod max_record_size;
mod put_record;
pub(crate) mod put_records;
mod queue_records;
pub(crate) mod queues;
mod record_distribution;
mod reshard;
mod resource_policy;
mod resource_tags;
mod resources;
mod retention;
pub(crate) mod shards;
mod stream_mode;
pub mod subscribe_to_shard;
pub(crate) mod tags;
mod warm_throughput;

use millrace_stream::StreamMeta;

use crate::error::{ApiError, ErrorCode};
use crate::protocol::Out;
use crate::request::Request;
use crate::server::Gateway;

/// Routes an operation name to its handler.
pub async fn dispatch(gw: &Gateway, op: &str, req: Request) -> Result<Out, ApiError> {
    match op {
        "CreateStream" => create_stream::handle(gw, req).await,
        "DeleteStream" => delete_stream::handle(gw, req).await,
        "ListStreams" => list_streams::handle(gw, req),
        "DescribeStream" => describe_stream::describe(gw, req),
        "DescribeStreamSummary" => describe_stream::summary(gw, req),
        "ListShards" => list_shards::handle(gw, req),
        "PutRecord" => put_record::handle(gw, req).await,
        "PutRecords" => put_records::handle(gw, req).await,
        "GetShardIterator" => get_shard_iterator::handle(gw, req).await,
        "GetRecords" => get_records::handle(gw, req).await,
        "IncreaseStreamRetentionPeriod" => retention::increase(gw, req).await,
        "DecreaseStreamRetentionPeriod" => retention::decrease(gw, req).await,
        "AddTagsToStream" => tags::add(gw, req).await,
        "ListTagsForStream" => tags::list(gw, req),
        "RemoveTagsFromStream" => tags::remove(gw, req).await,
        "SplitShard" => reshard::split(gw, req).await,
        "MergeShards" => reshard::merge(gw, req).await,
        "UpdateShardCount" => reshard::update_shard_count(gw, req).await,
        "DescribeLimits" => describe_limits::handle(gw, req),
        "DescribeAccountSettings" => account_settings::describe(gw, req),
        "UpdateAccountSettings" => account_settings::update(gw, req).await,
        "EnableEnhancedMonitoring" => enhanced_monitoring::enable(gw, req).await,
        "DisableEnhancedMonitoring" => enhanced_monitoring::disable(gw, req).await,
        "StartStreamEncryption" => encryption::start(gw, req).await,
        "StopStreamEncryption" => encryption::stop(gw, req).await,
        "UpdateStreamMode" => stream_mode::handle(gw, req).await,
        "UpdateMaxRecordSize" => max_record_size::handle(gw, req).await,
        "UpdateStreamWarmThroughput" => warm_throughput::handle(gw, req).await,
        "PutResourcePolicy" => resource_policy::put(gw, req).await,
        "GetResourcePolicy" => resource_policy::get(gw, req),
        "DeleteResourcePolicy" => resource_policy::delete(gw, req).await,
        "TagResource" => resource_tags::tag(gw, req).await,
        "UntagResource" => resource_tags::untag(gw, req).await,
        "ListTagsForResource" => resource_tags::list(gw, req),
        "RegisterStreamConsumer" => consumers::register(gw, req).await,
        "DescribeStreamConsumer" => consumers::describe(gw, req),
        "ListStreamConsumers" => consumers::list(gw, req),
        "DeregisterStreamConsumer" => consumers::deregister(gw, req).await,
        "CreateChannel" => channels::create(gw, req).await,
        "DescribeChannel" => channels::describe(gw, req),
        "ListChannels" => channels::list(gw, req),
        "UpdateChannel" => channels::update(gw, req).await,
        "DeleteChannel" => channels::delete(gw, req).await,
        "UpdateStreamRecordDistributionStrategy" => record_distribution::handle(gw, req).await,
        "CreateQueue" => queues::create(gw, req).await,
        "DescribeQueue" => queues::describe(gw, req),
        "ListQueues" => queues::list(gw, req),
        "UpdateQueue" => queues::update(gw, req).await,
        "DeleteQueue" => queues::delete(gw, req).await,
        "ReceiveQueueRecords" => queue_records::receive_live(gw, req).await,
        "AcknowledgeQueueRecords" => queue_records::acknowledge_live(gw, req).await,
        "UpdateQueueRecordsVisibility" => queue_records::visibility_live(gw, req).await,
        "ReceiveDeadLetterQueueRecords" => queue_records::receive_dead(gw, req).await,
        "AcknowledgeDeadLetterQueueRecords" => queue_records::acknowledge_dead(gw, req).await,
        "UpdateDeadLetterQueueRecordsVisibility" => queue_records::visibility_dead(gw, req).await,
        "RestoreDeadLetterQueueRecords" => queue_records::restore_dead(gw, req).await,
        other => Err(ApiError::new(
            ErrorCode::UnknownOperation,
            format!("operation {other} is not supported by millrace"),
        )),
    }
}

/// Kinesis's ShardCount/Limit style bounds, shared by several operations.
pub(crate) const MAX_LIST_LIMIT: i64 = 10_000;

pub(crate) fn mode_out(meta: &StreamMeta) -> Out {
    Out::map([("StreamMode", Out::str(meta.mode.as_str()))])
}
