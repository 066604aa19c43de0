#!/usr/bin/env python3
"""boto3 check of the Kinesis operations the AWS CLI flow and the fan-out check do not cover
(starts nothing itself).

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/boto3_ops.py --endpoint-url http://127.0.0.1:4567

Each operation is called as botocore's model describes it, and a later call must observe what
it changed: DescribeLimits, Describe/UpdateAccountSettings, Enable/DisableEnhancedMonitoring,
Start/StopStreamEncryption (PutRecord then reports KMS), UpdateStreamMode, UpdateMaxRecordSize
(a 2 MiB record is refused before and stored after), UpdateStreamWarmThroughput,
Put/Get/DeleteResourcePolicy, Tag/UntagResource and ListTagsForResource by ARN, ListShards with
a ShardFilter, SplitShard / MergeShards / UpdateShardCount by StreamARN, and DeleteStream with
EnforceConsumerDeletion. Bad input gets AWS's error types.

Each check prints "ok - ..." or "FAIL - ..."; the last line is always
"boto3_ops: P passed, F failed"; exit status 1 when F > 0.
"""

import argparse
import json
import sys
import uuid

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(f"boto3_ops.py: cannot import boto3 ({exc}); use the compat venv\n")
    sys.exit(2)

import flowkit  # noqa: E402  (tests/compat/, beside this script)

CHECKS = flowkit.Checks("boto3_ops")
check = CHECKS.expect
error_code = flowkit.error_code


def error_of(call):
    """The AWS error code `call()` fails with ('' when it succeeds)."""
    try:
        call()
    except ClientError as exc:
        return error_code(exc)
    return ""


def summary(k, stream):
    return k.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint-url", required=True)
    ap.add_argument("--region", default="us-east-1")
    args = ap.parse_args()
    k = boto3.client(
        "kinesis",
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 2}),
    )
    stream = f"boto3-ops-{uuid.uuid4().hex[:8]}"
    k.create_stream(StreamName=stream, ShardCount=2)
    k.get_waiter("stream_exists").wait(StreamName=stream)
    arn = summary(k, stream)["StreamARN"]
    try:
        run(k, stream, arn)
    finally:
        err = error_of(lambda: k.delete_stream(StreamName=stream, EnforceConsumerDeletion=True))
        check(err == "", f"delete_stream with EnforceConsumerDeletion ({err or 'ok'})")
    print(CHECKS.summary())
    return 1 if CHECKS.failed else 0


def run(k, stream, arn):
    limits = k.describe_limits()
    check(limits["OpenShardCount"] >= 2 and limits["ShardLimit"] >= limits["OpenShardCount"],
          f"describe_limits: {limits['OpenShardCount']} open of {limits['ShardLimit']}")

    k.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})
    status = k.describe_account_settings()["MinimumThroughputBillingCommitment"]["Status"]
    check(status == "ENABLED", f"update/describe_account_settings: {status}")

    out = k.enable_enhanced_monitoring(StreamName=stream, ShardLevelMetrics=["IncomingBytes"])
    check(out["DesiredShardLevelMetrics"] == ["IncomingBytes"], "enable_enhanced_monitoring")
    metrics = k.describe_stream(StreamName=stream)["StreamDescription"]["EnhancedMonitoring"]
    check(metrics[0]["ShardLevelMetrics"] == ["IncomingBytes"], "describe_stream shows the metric")
    k.disable_enhanced_monitoring(StreamName=stream, ShardLevelMetrics=["IncomingBytes"])
    metrics = k.describe_stream(StreamName=stream)["StreamDescription"]["EnhancedMonitoring"]
    check(metrics[0]["ShardLevelMetrics"] == [], "disable_enhanced_monitoring")

    k.start_stream_encryption(StreamName=stream, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    s = summary(k, stream)
    check(s["EncryptionType"] == "KMS" and s["KeyId"] == "alias/aws/kinesis",
          "start_stream_encryption: KMS with the key")
    put = k.put_record(StreamName=stream, PartitionKey="sealed-key", Data=b"sealed at rest")
    check(put.get("EncryptionType") == "KMS", "put_record reports EncryptionType KMS")
    it = k.get_shard_iterator(StreamName=stream, ShardId=put["ShardId"],
                              ShardIteratorType="AT_SEQUENCE_NUMBER",
                              StartingSequenceNumber=put["SequenceNumber"])["ShardIterator"]
    got = k.get_records(ShardIterator=it, Limit=1)["Records"]
    check(got and got[0]["Data"] == b"sealed at rest" and got[0]["PartitionKey"] == "sealed-key",
          "get_records opens a record sealed at rest")
    err = error_of(lambda: k.start_stream_encryption(StreamName=stream, EncryptionType="KMS",
                                                      KeyId="alias/not-in-the-keyring"))
    check(err == "KMSNotFoundException", f"start_stream_encryption with an unknown key: {err}")
    err = error_of(lambda: k.stop_stream_encryption(StreamName=stream, EncryptionType="KMS",
                                                     KeyId="another-key"))
    check(err == "InvalidArgumentException", f"stop with another key: {err}")
    k.stop_stream_encryption(StreamName=stream, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    check(summary(k, stream)["EncryptionType"] == "NONE", "stop_stream_encryption")

    big = b"b" * (2 * 1024 * 1024)
    err = error_of(lambda: k.put_record(StreamName=stream, PartitionKey="a", Data=big))
    check(err == "InvalidArgumentException", f"a 2 MiB record before update_max_record_size: {err}")
    k.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=4096)
    check(summary(k, stream)["MaxRecordSizeInKiB"] == 4096, "update_max_record_size to 4096 KiB")
    put = k.put_record(StreamName=stream, PartitionKey="a", Data=big)
    it = k.get_shard_iterator(StreamName=stream, ShardId=put["ShardId"],
                              ShardIteratorType="AT_SEQUENCE_NUMBER",
                              StartingSequenceNumber=put["SequenceNumber"])["ShardIterator"]
    got = k.get_records(ShardIterator=it, Limit=1)["Records"]
    check(got and got[0]["Data"] == big, "the 2 MiB record reads back whole")
    err = error_of(lambda: k.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=20000))
    check(err == "ValidationException", f"MaxRecordSizeInKiB 20000: {err}")

    k.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    check(summary(k, stream)["StreamModeDetails"]["StreamMode"] == "ON_DEMAND",
          "update_stream_mode to ON_DEMAND")
    out = k.update_stream_warm_throughput(StreamARN=arn, WarmThroughputMiBps=10)
    check(out["WarmThroughput"]["TargetMiBps"] == 10, "update_stream_warm_throughput")
    k.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "PROVISIONED"})
    check(summary(k, stream)["StreamModeDetails"]["StreamMode"] == "PROVISIONED",
          "update_stream_mode back to PROVISIONED")

    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
        "Action": "kinesis:GetRecords", "Resource": arn}]})
    k.put_resource_policy(ResourceARN=arn, Policy=policy)
    check(json.loads(k.get_resource_policy(ResourceARN=arn)["Policy"]) == json.loads(policy),
          "put/get_resource_policy")
    err = error_of(lambda: k.put_resource_policy(ResourceARN=arn, Policy="not json"))
    check(err == "InvalidArgumentException", f"a policy that is not JSON: {err}")
    k.delete_resource_policy(ResourceARN=arn)
    err = error_of(lambda: k.delete_resource_policy(ResourceARN=arn))
    check(err == "ResourceNotFoundException", f"delete_resource_policy twice: {err}")

    k.tag_resource(ResourceARN=arn, Tags={"team": "streams", "env": "ci"})
    k.untag_resource(ResourceARN=arn, TagKeys=["env"])
    tags = k.list_tags_for_resource(ResourceARN=arn)["Tags"]
    check(tags == [{"Key": "team", "Value": "streams"}], f"tag/untag/list_tags_for_resource: {tags}")
    other = arn.replace(":000000000000:", ":111111111111:")
    err = error_of(lambda: k.list_tags_for_resource(ResourceARN=other))
    check(err == "ResourceNotFoundException", f"another account's ARN: {err}")

    k.split_shard(StreamARN=arn, ShardToSplit="shardId-000000000000",
                  NewStartingHashKey=str(2 ** 125))
    k.get_waiter("stream_exists").wait(StreamName=stream)
    latest = k.list_shards(StreamARN=arn, ShardFilter={"Type": "AT_LATEST"})["Shards"]
    check([s["ShardId"] for s in latest] ==
          ["shardId-000000000001", "shardId-000000000002", "shardId-000000000003"],
          "split_shard by ARN; list_shards AT_LATEST")
    k.merge_shards(StreamARN=arn, ShardToMerge="shardId-000000000002",
                   AdjacentShardToMerge="shardId-000000000003")
    out = k.update_shard_count(StreamARN=arn, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    check(out["CurrentShardCount"] == 2 and summary(k, stream)["OpenShardCount"] == 4,
          "merge_shards and update_shard_count by ARN")

    k.register_stream_consumer(StreamARN=arn, ConsumerName="keeps-the-stream")
    err = error_of(lambda: k.delete_stream(StreamName=stream))
    check(err == "ResourceInUseException", f"delete_stream with a consumer: {err}")


if __name__ == "__main__":
    sys.exit(main())
