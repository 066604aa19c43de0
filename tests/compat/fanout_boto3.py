#!/usr/bin/env python3
"""boto3 enhanced fan-out check for a Kinesis Data Streams endpoint (starts nothing itself).

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/fanout_boto3.py --endpoint-url http://127.0.0.1:4567 [--records 100]

What it does: create a one-shard stream, register a consumer and wait for it to be ACTIVE,
check describe/list, subscribe_to_shard at LATEST (boto3 speaks HTTP/1.1 and reads the
event stream), put --records records, read them back from the subscription's
SubscribeToShardEvents, then deregister the consumer and delete the stream.

Checks (each one line "ok - ..." / "FAIL - ..."; the last line is always
"fanout_boto3: P passed, F failed"; exit status 1 when F > 0):
  * register_stream_consumer returns an ARN under the stream's ARN; a second registration of
    the name is ResourceInUseException; describe (by ARN and by stream ARN + name) and list
    show it ACTIVE;
  * the subscription's first event is an event of SubscribeToShardEvent (boto3 consumes the
    initial-response itself);
  * every record put after subscribing arrives once, in put order, byte-identical, with the
    sequence number put_record returned, and each event's ContinuationSequenceNumber is its
    last record's;
  * after deregistering, describe_stream_consumer is ResourceNotFoundException.
"""

import argparse
import sys
import time
import uuid

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"fanout_boto3.py: cannot import boto3 ({exc}); "
        "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n"
    )
    sys.exit(2)

import flowkit  # noqa: E402  (tests/compat/, beside this script)

CHECKS = flowkit.Checks("fanout_boto3")
check = CHECKS.expect
error_code = flowkit.error_code


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint-url", required=True)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--records", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()

    kinesis = boto3.client(
        "kinesis",
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 2}, read_timeout=30),
    )
    stream = f"fanout-boto3-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream)
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)[
        "StreamDescriptionSummary"
    ]["StreamARN"]
    try:
        run(kinesis, stream, stream_arn, args)
    finally:
        try:
            kinesis.delete_stream(StreamName=stream, EnforceConsumerDeletion=True)
        except ClientError as exc:
            print(f"# delete_stream: {exc}")
    print(CHECKS.summary())
    return 1 if CHECKS.failed else 0


def run(kinesis, stream, stream_arn, args):
    consumer = kinesis.register_stream_consumer(StreamARN=stream_arn, ConsumerName="boto3")[
        "Consumer"
    ]
    arn = consumer["ConsumerARN"]
    check(arn.startswith(stream_arn + "/consumer/boto3:"), f"consumer ARN {arn}")
    try:
        kinesis.register_stream_consumer(StreamARN=stream_arn, ConsumerName="boto3")
        check(False, "a second registration of the name is refused")
    except ClientError as exc:
        check(
            error_code(exc) == "ResourceInUseException",
            f"a second registration is ResourceInUseException ({error_code(exc)})",
        )
    deadline = time.time() + args.timeout
    status = None
    while time.time() < deadline:
        status = kinesis.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"][
            "ConsumerStatus"
        ]
        if status == "ACTIVE":
            break
        time.sleep(0.2)
    check(status == "ACTIVE", "the consumer becomes ACTIVE")
    by_name = kinesis.describe_stream_consumer(StreamARN=stream_arn, ConsumerName="boto3")
    check(
        by_name["ConsumerDescription"]["ConsumerARN"] == arn,
        "describe by stream ARN and name finds it",
    )
    listed = kinesis.list_stream_consumers(StreamARN=stream_arn)["Consumers"]
    check([c["ConsumerARN"] for c in listed] == [arn], "list_stream_consumers lists it")

    sub = kinesis.subscribe_to_shard(
        ConsumerARN=arn,
        ShardId="shardId-000000000000",
        StartingPosition={"Type": "LATEST"},
    )
    events = iter(sub["EventStream"])
    acked = []
    for i in range(args.records):
        out = kinesis.put_record(
            StreamName=stream, PartitionKey=f"k{i}", Data=f"record-{i}".encode()
        )
        acked.append(out["SequenceNumber"])
    got = []
    continuation_ok = True
    saw_event = False
    while len(got) < len(acked) and time.time() < deadline:
        try:
            event = next(events)
        except StopIteration:
            break
        if "SubscribeToShardEvent" not in event:
            check(False, f"unexpected event {sorted(event)}")
            break
        saw_event = True
        e = event["SubscribeToShardEvent"]
        if e["Records"] and e["ContinuationSequenceNumber"] != e["Records"][-1]["SequenceNumber"]:
            continuation_ok = False
        for r in e["Records"]:
            got.append((r["SequenceNumber"], r["Data"], r["PartitionKey"]))
    sub["EventStream"].close()
    check(saw_event, "SubscribeToShardEvent events arrive")
    check(len(got) == len(acked), f"{len(got)} of {len(acked)} records arrived")
    check([s for s, _, _ in got] == acked, "records arrive in put order under their sequence numbers")
    check(
        all(d == f"record-{i}".encode() and k == f"k{i}" for i, (_, d, k) in enumerate(got)),
        "data and partition keys are byte-identical",
    )
    check(continuation_ok, "ContinuationSequenceNumber is each event's last record")

    kinesis.deregister_stream_consumer(ConsumerARN=arn)
    try:
        kinesis.describe_stream_consumer(ConsumerARN=arn)
        check(False, "a deregistered consumer is gone")
    except ClientError as exc:
        check(
            error_code(exc) == "ResourceNotFoundException",
            f"a deregistered consumer is ResourceNotFoundException ({error_code(exc)})",
        )


if __name__ == "__main__":
    sys.exit(main())
