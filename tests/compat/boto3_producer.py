#!/usr/bin/env python3
"""boto3 producer compatibility check for a Kinesis Data Streams endpoint.

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/boto3_producer.py --endpoint-url http://127.0.0.1:4567 \
        --csv /work/shared/data/telco-customer-churn.csv [--shards 4] [--rows N]

What it does, mirroring the reference producer:
  * create a stream with --shards shards and wait until it is ACTIVE;
  * for each CSV row (csv.DictReader, so every value is a string) one put_record with
    Data=json.dumps(row) and PartitionKey=row["customerID"], recording the ShardId and
    SequenceNumber each call returned;
  * read every shard back from TRIM_HORIZON with get_records until caught up
    (an empty page with MillisBehindLatest == 0) or the shard is closed
    (no NextShardIterator);
  * delete the stream.

Checks (each one line "ok - ..." / "FAIL - ..."; the last line is always
"boto3 producer: P passed, F failed"; exit status 1 when F > 0):
  * the stream becomes ACTIVE with the requested number of open shards;
  * list_shards' HashKeyRanges tile [0, 2^128 - 1];
  * every put_record succeeded and returned a known ShardId and a decimal SequenceNumber;
  * the ShardId is the shard whose HashKeyRange holds MD5(PartitionKey) as a 128-bit
    big-endian integer (Kinesis' partitioning rule);
  * sequence numbers are unique, and strictly increasing (as integers) per shard in put order;
  * every record is read back exactly once, under the shard and sequence number put_record
    returned, byte-identical, with the same partition key and an ApproximateArrivalTimestamp;
  * per-shard read order equals put order; nothing is read that was not put;
  * delete_stream succeeds and the stream goes away.

Real-Kinesis behaviour relied on, and kinesalite deviations tolerated (millrace must behave
like real Kinesis; none of these is encoded as an expectation):
  * kinesalite always reports MillisBehindLatest = 0 on open shards, even when more records
    are pending; real Kinesis reports the lag. The reader therefore only treats an *empty*
    page with MillisBehindLatest == 0 as "caught up", which is correct for both.
  * Real Kinesis may return empty pages while MillisBehindLatest > 0; the reader keeps going
    (with a short sleep), bounded by --read-timeout.
  * If a shard looks caught up but fewer records than were put have been read, the reader
    polls a few more times before failing; real Kinesis makes acknowledged records readable
    immediately, so this only delays a failure.
"""

import argparse
import csv
import datetime
import hashlib
import json
import os
import sys
import time

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"boto3_producer.py: cannot import boto3 ({exc}); "
        "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n"
    )
    print("boto3 producer: 0 passed, 1 failed")
    sys.exit(1)

MAX_HASH = 2**128 - 1
SUMMARY_PREFIX = "boto3 producer"


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, problems):
        """problems: list of strings; empty means pass."""
        if problems:
            self.failed += 1
            print(f"FAIL - {name}")
            for p in problems[:10]:
                print(f"    {p}")
            if len(problems) > 10:
                print(f"    ... and {len(problems) - 10} more")
        else:
            self.passed += 1
            print(f"ok - {name}")
        sys.stdout.flush()
        return not problems

    def summary(self):
        return f"{SUMMARY_PREFIX}: {self.passed} passed, {self.failed} failed"


class Abort(Exception):
    """A step failed that later steps depend on."""


def md5_hash_key(partition_key):
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def err_text(exc):
    if isinstance(exc, ClientError):
        e = exc.response.get("Error", {})
        return f"{e.get('Code')}: {e.get('Message')}"
    return f"{type(exc).__name__}: {exc}"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint-url", required=True)
    ap.add_argument("--csv", required=True, help="CSV file with a customerID column")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--rows", type=int, default=None, help="only the first N rows")
    ap.add_argument("--stream-name", default=None, help="default: a unique name")
    ap.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    ap.add_argument("--progress-every", type=int, default=1000)
    ap.add_argument("--read-limit", type=int, default=10000, help="GetRecords Limit")
    ap.add_argument("--read-timeout", type=float, default=600.0,
                    help="seconds allowed for reading all shards back")
    args = ap.parse_args(argv)
    if args.shards < 1:
        ap.error("--shards must be >= 1")
    if args.rows is not None and args.rows < 1:
        ap.error("--rows must be >= 1")
    return args


def make_client(args):
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    config = Config(
        region_name=args.region,
        retries={"max_attempts": 10, "mode": "standard"},
        max_pool_connections=64,
        connect_timeout=5,
        read_timeout=60,
        tcp_keepalive=True,
    )
    return boto3.session.Session().client(
        "kinesis",
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "millrace"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "millrace"),
        config=config,
    )


def load_rows(path, limit):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "customerID" not in reader.fieldnames:
            raise Abort(f"{path}: no customerID column")
        rows = []
        for row in reader:
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
    if not rows:
        raise Abort(f"{path}: no data rows")
    return rows


def list_all_shards(client, stream):
    shards, kwargs = [], {"StreamName": stream}
    while True:
        resp = client.list_shards(**kwargs)
        shards.extend(resp.get("Shards", []))
        token = resp.get("NextToken")
        if not token:
            return shards
        kwargs = {"NextToken": token}


def create_stream(client, ck, stream, shard_count):
    try:
        client.create_stream(StreamName=stream, ShardCount=shard_count)
    except (ClientError, BotoCoreError) as exc:
        ck.check(f"create_stream {stream} ({shard_count} shards)", [err_text(exc)])
        raise Abort("create_stream failed")
    ck.check(f"create_stream {stream} ({shard_count} shards)", [])


def wait_active(client, ck, stream, shard_count):
    problems = []
    try:
        client.get_waiter("stream_exists").wait(
            StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        s = client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        if s.get("StreamStatus") != "ACTIVE":
            problems.append(f"StreamStatus {s.get('StreamStatus')!r}, want 'ACTIVE'")
        if s.get("OpenShardCount") != shard_count:
            problems.append(f"OpenShardCount {s.get('OpenShardCount')!r}, want {shard_count}")
        if s.get("StreamName") != stream:
            problems.append(f"StreamName {s.get('StreamName')!r}")
    except Exception as exc:  # noqa: BLE001 - any failure here is a check failure
        problems.append(err_text(exc))
    if not ck.check(f"stream ACTIVE with {shard_count} open shards", problems):
        raise Abort("stream did not become ACTIVE")


def check_shard_map(client, ck, stream, shard_count):
    try:
        shards = list_all_shards(client, stream)
    except (ClientError, BotoCoreError) as exc:
        ck.check("list_shards", [err_text(exc)])
        raise Abort("list_shards failed")
    ranges = sorted(
        (int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]),
         s["ShardId"])
        for s in shards
    )
    problems = []
    if len(shards) != shard_count:
        problems.append(f"{len(shards)} shards listed, want {shard_count}")
    if len({s["ShardId"] for s in shards}) != len(shards):
        problems.append("duplicate ShardIds")
    if ranges:
        if ranges[0][0] != 0:
            problems.append(f"lowest StartingHashKey {ranges[0][0]}, want 0")
        if ranges[-1][1] != MAX_HASH:
            problems.append(f"highest EndingHashKey {ranges[-1][1]}, want 2^128-1")
        for (a_lo, a_hi, a_id), (b_lo, _b_hi, b_id) in zip(ranges, ranges[1:]):
            if a_hi + 1 != b_lo:
                problems.append(f"gap/overlap between {a_id} (..{a_hi}) and {b_id} ({b_lo}..)")
    if not ck.check(f"list_shards: {shard_count} shards, HashKeyRanges tile [0, 2^128-1]",
                    problems):
        raise Abort("shard map unusable")
    return {s["ShardId"]: s for s in shards}, ranges


def put_all(client, stream, rows, progress_every):
    """Returns a list of dicts (one per row, in put order) and error strings."""
    puts, errors = [], []
    consecutive_errors = 0
    t0 = time.monotonic()
    for i, row in enumerate(rows):
        payload = json.dumps(row)
        pk = row["customerID"]
        entry = {"i": i, "pk": pk, "data": payload.encode("utf-8"), "shard": None, "seq": None}
        try:
            resp = client.put_record(StreamName=stream, Data=payload, PartitionKey=pk)
            entry["shard"] = resp.get("ShardId")
            entry["seq"] = resp.get("SequenceNumber")
            consecutive_errors = 0
        except (ClientError, BotoCoreError) as exc:
            errors.append(f"row {i} ({pk}): {err_text(exc)}")
            consecutive_errors += 1
            if consecutive_errors >= 20:
                errors.append(f"giving up after 20 consecutive put_record errors at row {i}")
                puts.append(entry)
                break
        puts.append(entry)
        n = i + 1
        if progress_every and (n % progress_every == 0) and n < len(rows):
            dt = time.monotonic() - t0
            print(f"# put {n}/{len(rows)} records, {n / dt:.0f} rec/s")
            sys.stdout.flush()
    dt = time.monotonic() - t0
    print(f"# put {len(puts)} records in {dt:.1f}s ({len(puts) / max(dt, 1e-9):.0f} rec/s)")
    return puts, errors


def check_puts(ck, puts, put_errors, shard_map, ranges, n_rows):
    problems = list(put_errors)
    if len(puts) != n_rows:
        problems.append(f"{len(puts)} puts attempted, {n_rows} rows")
    for p in puts:
        if p["shard"] is None and p["seq"] is None:
            continue  # already reported as an error
        if p["shard"] not in shard_map:
            problems.append(f"row {p['i']}: ShardId {p['shard']!r} not in list_shards")
        if not (isinstance(p["seq"], str) and p["seq"].isdigit()):
            problems.append(f"row {p['i']}: SequenceNumber {p['seq']!r} is not a decimal integer")
    ck.check(f"put_record x{n_rows}: all succeeded with a known ShardId and numeric "
             "SequenceNumber", problems)

    good = [p for p in puts if p["shard"] in shard_map and isinstance(p["seq"], str)
            and p["seq"].isdigit()]

    problems = []
    for p in good:
        h = md5_hash_key(p["pk"])
        owner = [sid for lo, hi, sid in ranges if lo <= h <= hi]
        if owner != [p["shard"]]:
            problems.append(f"row {p['i']} key {p['pk']!r}: MD5 hash key {h} belongs to "
                            f"{owner}, put_record said {p['shard']}")
    ck.check("put_record ShardId = shard whose HashKeyRange holds MD5(PartitionKey)", problems)

    problems = []
    seen = {}
    for p in good:
        if p["seq"] in seen:
            problems.append(f"rows {seen[p['seq']]} and {p['i']} got the same SequenceNumber "
                            f"{p['seq']}")
        seen.setdefault(p["seq"], p["i"])
    last = {}
    for p in good:
        prev = last.get(p["shard"])
        if prev is not None and int(p["seq"]) <= int(prev["seq"]):
            problems.append(f"{p['shard']}: row {p['i']} seq {p['seq']} <= row {prev['i']} "
                            f"seq {prev['seq']}")
        last[p["shard"]] = p
    ck.check("put_record SequenceNumbers unique and strictly increasing per shard in put order",
             problems)
    return good


def read_shard(client, stream, shard_id, expected, limit, deadline):
    """Read a shard from TRIM_HORIZON to the tip. Returns (records, problems, pages)."""
    records, problems = [], []
    it = client.get_shard_iterator(StreamName=stream, ShardId=shard_id,
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    pages = 0
    settle = 0
    while True:
        if time.monotonic() > deadline:
            problems.append(f"{shard_id}: read timeout after {pages} pages, "
                            f"{len(records)}/{expected} records")
            return records, problems, pages
        resp = client.get_records(ShardIterator=it, Limit=limit)
        pages += 1
        batch = resp.get("Records", [])
        records.extend(batch)
        behind = resp.get("MillisBehindLatest")
        nxt = resp.get("NextShardIterator")
        if behind is None and nxt:
            # Real Kinesis always reports it on open shards; flag once, then treat as 0.
            if not any("MillisBehindLatest" in p for p in problems):
                problems.append(f"{shard_id}: GetRecords response lacks MillisBehindLatest")
            behind = 0
        if not nxt:
            return records, problems, pages  # closed shard, fully read
        it = nxt
        if batch:
            settle = 0
            continue
        if behind == 0:
            if len(records) >= expected:
                return records, problems, pages
            settle += 1
            if settle > 5:
                problems.append(f"{shard_id}: caught up (MillisBehindLatest 0, empty page) "
                                f"with only {len(records)}/{expected} records")
                return records, problems, pages
            time.sleep(1.0)
        else:
            time.sleep(0.2)


def read_back(client, ck, stream, shard_map, good, args):
    expected = {sid: 0 for sid in shard_map}
    for p in good:
        expected[p["shard"]] += 1
    deadline = time.monotonic() + args.read_timeout
    t0 = time.monotonic()
    reads = {}
    problems = []
    total_pages = 0
    for sid in sorted(shard_map):
        try:
            recs, probs, pages = read_shard(client, stream, sid, expected[sid],
                                            args.read_limit, deadline)
        except (ClientError, BotoCoreError) as exc:
            recs, probs, pages = [], [f"{sid}: {err_text(exc)}"], 0
        reads[sid] = recs
        problems.extend(probs)
        total_pages += pages
    dt = time.monotonic() - t0
    n = sum(len(v) for v in reads.values())
    print(f"# read {n} records from {len(shard_map)} shards in {total_pages} GetRecords calls, "
          f"{dt:.1f}s")
    ck.check("get_records from TRIM_HORIZON reaches the tip of every shard", problems)
    return reads


def check_reads(ck, good, reads):
    put_by_seq = {p["seq"]: p for p in good}
    read_by_seq = {}
    for sid, recs in reads.items():
        for r in recs:
            read_by_seq.setdefault(r.get("SequenceNumber"), []).append((sid, r))

    problems = []
    for p in good:
        got = read_by_seq.get(p["seq"], [])
        if len(got) != 1:
            problems.append(f"row {p['i']} seq {p['seq']}: read {len(got)} times")
    extra = [s for s in read_by_seq if s not in put_by_seq]
    if extra:
        problems.append(f"{len(extra)} records read that were never put, e.g. {extra[:3]}")
    ck.check(f"every record ({len(good)}) read back exactly once, nothing extra", problems)

    shard_p, data_p, pk_p, ts_p = [], [], [], []
    for p in good:
        got = read_by_seq.get(p["seq"], [])
        if len(got) != 1:
            continue
        sid, r = got[0]
        if sid != p["shard"]:
            shard_p.append(f"row {p['i']}: put_record said {p['shard']}, read from {sid}")
        data = r.get("Data")
        if data != p["data"]:
            if isinstance(data, (bytes, bytearray)):
                at = next((k for k, (a, b) in enumerate(zip(data, p["data"])) if a != b),
                          min(len(data), len(p["data"])))
                data_p.append(f"row {p['i']}: {len(data)} bytes read, {len(p['data'])} sent, "
                              f"first difference at byte {at}: read {data[at:at + 40]!r}, "
                              f"sent {p['data'][at:at + 40]!r}")
            else:
                data_p.append(f"row {p['i']}: Data is {type(data).__name__}, not bytes")
        if r.get("PartitionKey") != p["pk"]:
            pk_p.append(f"row {p['i']}: PartitionKey {r.get('PartitionKey')!r} != {p['pk']!r}")
        if not isinstance(r.get("ApproximateArrivalTimestamp"), datetime.datetime):
            ts_p.append(f"row {p['i']}: ApproximateArrivalTimestamp "
                        f"{r.get('ApproximateArrivalTimestamp')!r}")
    ck.check("records read under the shard and SequenceNumber put_record returned", shard_p)
    ck.check("record Data byte-identical to what was sent", data_p)
    ck.check("record PartitionKey identical", pk_p)
    ck.check("records carry ApproximateArrivalTimestamp", ts_p)

    problems = []
    for sid, recs in sorted(reads.items()):
        have = [r.get("SequenceNumber") for r in recs]
        want = [p["seq"] for p in good if p["shard"] == sid]
        if have != want:
            first = next((k for k, (a, b) in enumerate(zip(have, want)) if a != b),
                         min(len(have), len(want)))
            problems.append(f"{sid}: read order differs from put order at position {first} "
                            f"({len(have)} read, {len(want)} put)")
        try:
            ints = [int(s) for s in have]
        except (TypeError, ValueError):
            problems.append(f"{sid}: non-integer SequenceNumber in read")
            continue
        bad = next((k for k in range(1, len(ints)) if ints[k] <= ints[k - 1]), None)
        if bad is not None:
            problems.append(f"{sid}: SequenceNumber not strictly increasing at position {bad}")
    ck.check("per-shard read order equals put order, SequenceNumbers strictly increasing",
             problems)


def delete_stream(client, ck, stream):
    problems = []
    try:
        client.delete_stream(StreamName=stream)
        client.get_waiter("stream_not_exists").wait(
            StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
    except Exception as exc:  # noqa: BLE001
        problems.append(err_text(exc))
    ck.check("delete_stream, stream gone", problems)


def main(argv):
    args = parse_args(argv)
    ck = Checks()
    stream = args.stream_name or f"millrace-compat-boto3-{int(time.time())}-{os.getpid()}"
    client = make_client(args)
    created = False
    t_start = time.monotonic()
    try:
        rows = load_rows(args.csv, args.rows)
        print(f"# endpoint {args.endpoint_url}, stream {stream}, {args.shards} shards, "
              f"{len(rows)} rows from {args.csv} (boto3 {boto3.__version__})")
        create_stream(client, ck, stream, args.shards)
        created = True
        wait_active(client, ck, stream, args.shards)
        shard_map, ranges = check_shard_map(client, ck, stream, args.shards)
        puts, put_errors = put_all(client, stream, rows, args.progress_every)
        good = check_puts(ck, puts, put_errors, shard_map, ranges, len(rows))
        reads = read_back(client, ck, stream, shard_map, good, args)
        check_reads(ck, good, reads)
    except Abort as exc:
        print(f"aborting: {exc}")
        if ck.failed == 0:
            ck.failed = 1
    except Exception as exc:  # noqa: BLE001 - report and fail, never crash without a summary
        ck.check("unexpected error", [err_text(exc)])
    finally:
        if created:
            delete_stream(client, ck, stream)
    print(f"# total {time.monotonic() - t_start:.1f}s")
    print(ck.summary())
    return 0 if ck.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
