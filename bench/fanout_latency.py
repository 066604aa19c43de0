#!/usr/bin/env python3
"""Enhanced fan-out latency: PutRecord acknowledgement to SubscribeToShard event receipt.

Usage (boto3 from tests/compat/setup_venv.sh; boto3 speaks HTTP/1.1):

    target/debug/millrace up --kinesis-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 &   # note the address
    target/compat-venv/bin/python bench/fanout_latency.py --endpoint-url http://127.0.0.1:PORT \
        [--rate 1000] [--seconds 10]

Creates a one-shard stream, registers a consumer, subscribes at LATEST, then a separate
producer thread puts --rate records/s (paced, one PutRecord per record, on --producers
threads) for --seconds. For every record it notes the time PutRecord returned; the subscriber
notes when the event holding it arrived. Latency = receipt - acknowledgement (negative when
the event beat the acknowledgement back, which push delivery can do; reported as is). Prints
the achieved put rate, how many records arrived, and p50/p90/p99/max in milliseconds.
"""

import argparse
import threading
import time
import uuid

import boto3
from botocore.config import Config


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[i]


def client(args):
    return boto3.client(
        "kinesis",
        endpoint_url=args.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 3}, max_pool_connections=32, read_timeout=30),
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint-url", required=True)
    ap.add_argument("--rate", type=int, default=1000, help="records per second")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--producers", type=int, default=4, help="producer threads sharing the rate")
    args = ap.parse_args()

    k = client(args)
    stream = f"fanout-bench-{uuid.uuid4().hex[:8]}"
    k.create_stream(StreamName=stream, ShardCount=1)
    k.get_waiter("stream_exists").wait(StreamName=stream)
    stream_arn = k.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    arn = k.register_stream_consumer(StreamARN=stream_arn, ConsumerName="bench")["Consumer"]["ConsumerARN"]

    acked = {}  # sequence number -> perf_counter at acknowledgement
    received = {}  # sequence number -> perf_counter at receipt
    lock = threading.Lock()
    total = int(args.rate * args.seconds)
    done = threading.Event()

    sub = k.subscribe_to_shard(
        ConsumerARN=arn, ShardId="shardId-000000000000", StartingPosition={"Type": "LATEST"}
    )

    def subscriber():
        stream_events = sub["EventStream"]
        for event in stream_events:
            now = time.perf_counter()
            e = event.get("SubscribeToShardEvent")
            if e is None:
                print(f"# unexpected event {sorted(event)}")
                break
            with lock:
                for r in e["Records"]:
                    received[r["SequenceNumber"]] = now
                if len(received) >= total:
                    break
            if done.is_set() and len(received) >= len(acked):
                break

    def producer(worker):
        pk = client(args)
        per_thread = args.rate / args.producers
        n = total // args.producers + (1 if worker < total % args.producers else 0)
        start = time.perf_counter()
        for i in range(n):
            due = start + i / per_thread
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            out = pk.put_record(StreamName=stream, PartitionKey=f"w{worker}-{i}", Data=b"x" * 100)
            t = time.perf_counter()
            with lock:
                acked[out["SequenceNumber"]] = t

    reader = threading.Thread(target=subscriber, daemon=True)
    reader.start()
    began = time.perf_counter()
    producers = [threading.Thread(target=producer, args=(w,)) for w in range(args.producers)]
    for p in producers:
        p.start()
    for p in producers:
        p.join()
    put_secs = time.perf_counter() - began
    done.set()
    reader.join(timeout=15)
    sub["EventStream"].close()

    with lock:
        lat = sorted((received[s] - t) * 1000 for s, t in acked.items() if s in received)
        missing = len(acked) - len(lat)
    print(f"stream {stream}: put {len(acked)} records in {put_secs:.2f}s "
          f"({len(acked) / put_secs:.0f}/s, target {args.rate}/s), received {len(lat)}, missing {missing}")
    print(f"ack->event latency ms: p50 {percentile(lat, 50):.2f}  p90 {percentile(lat, 90):.2f}  "
          f"p99 {percentile(lat, 99):.2f}  max {lat[-1] if lat else float('nan'):.2f}  "
          f"(min {lat[0] if lat else float('nan'):.2f}; {sum(1 for x in lat if x < 0)} events "
          f"arrived before their PutRecord's acknowledgement was read)")
    try:
        k.deregister_stream_consumer(ConsumerARN=arn)
        k.delete_stream(StreamName=stream, EnforceConsumerDeletion=True)
    except Exception as exc:  # noqa: BLE001 - cleanup only
        print(f"# cleanup: {exc}")


if __name__ == "__main__":
    main()
