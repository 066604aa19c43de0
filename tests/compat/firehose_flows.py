#!/usr/bin/env python3
"""Firehose flows: the Amazon Data Firehose API driven with boto3 `firehose` and the AWS CLI
against `millrace up`, the lake read back with pyarrow.

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/firehose_flows.py --millrace target/debug/millrace \
        --csv ../shared/data/telco-customer-churn.csv

Every process it starts runs in its own process group on 127.0.0.1 and is killed at the end,
also on failure. Scratch files live in one temporary directory, removed at the end
(--keep-tmp keeps it).

The flow:
 1. `millrace up -c firehose.toml` whose [buckets] maps bucket `archive` to a folder.
 2. Delivery stream `telco-parquet` (DirectPut, ExtendedS3 into bucket `lake`): dynamic
    partitioning with a MetadataExtraction JQ query `{contract: .Contract | ascii_downcase}`,
    Prefix `telco/contract=!{partitionKeyFromQuery:contract}/`, Parquet conversion, an
    ErrorOutputPrefix. The Telco rows as JSON plus bad records (not JSON; no Contract) with
    put_record_batch: every good row exactly once in Parquet files under the partition its
    contract names (read with pyarrow), the bad ones under the error prefix with Firehose's
    error-record fields (errorCode, errorMessage, rawData...).
 3. Delivery stream `telco-archive` (DirectPut, the older S3DestinationConfiguration into bucket
    `archive`, GZIP, the default prefix YYYY/MM/DD/HH/): the rows as CSV lines, every row once.
 4. Delivery stream `telco-from-kinesis` (KinesisStreamAsSource, AppendDelimiterToRecord): rows
    put into a Kinesis stream with kinesis.put_records land once, one per line.
 5. Delivery stream `telco-kpl` (KinesisStreamAsSource): rows put into a second Kinesis stream
    as KPL aggregated records that this script builds from the published aggregation format
    (magic, a protobuf AggregatedRecord encoded here, MD5), mixed with plain records: every
    user record delivered once, one per line; an aggregate with a corrupted MD5 is a plain
    record, delivered as it is with a newline after it (AppendDelimiterToRecord appends a
    newline and checks nothing), and no object carries an extension.
    Delivery stream `telco-split` (DirectPut): RecordDeAggregation JSON splits records of
    several concatenated JSON rows, dynamic partitioning by contract, a
    !{firehose:random-string} folder: every row once under its partition; a JSON array
    record under processing-failed.
 6. Delivery stream `telco-logs` (DirectPut) as CloudWatch Logs feeds it: Decompression (GZIP)
    and CloudWatchLogProcessing (DataMessageExtraction), FileExtension .log, CustomTimeZone
    Asia/Tokyo, and source record backup (S3BackupMode Enabled) into bucket `backup`, which
    [buckets] maps onto a moto S3 server. Gzip subscription payloads of the rows as log
    events, a control message and a record that is not gzip: every row once as a line in .log
    objects under the Tokyo hour, the bad record under processing-failed, and the backup in
    moto holding every record exactly as it was put.
    The AWS CLI (`aws firehose ...`): list, describe, put-record, put-record-batch.
 7. A producer thread keeps putting batches to `telco-archive` while `up` is killed with
    kill -9 and started again: every acknowledged record is delivered exactly once.
 8. UpdateDestination (version check, new prefix), tags, encryption state; DescribeDeliveryStream
    and ListDeliveryStreams after a restart; bad input gets Firehose's error types.
 9. DeleteDeliveryStream: gone, its objects stay; `up` exits 0 on SIGTERM.

Output: "ok - ..." / "FAIL - ..." lines, "# ..." notes, and last the line
"firehose flows: N passed, M failed"; exit status 1 when M > 0.
"""

import base64
import collections
import csv
import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import threading
import time

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    import pyarrow.parquet as pq
    from flowkit import Checks, err_text, error_code, note
    from delivery_flows import Abort, StartError, run_csv_flow, start_up, stop_up
    from channel_flows import archive_objects, start_moto
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"firehose_flows.py: cannot import a dependency ({exc}); "
        "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n"
    )
    print("firehose flows: 0 passed, 1 failed")
    sys.exit(1)

SUMMARY_PREFIX = "firehose flows"
REGION = "us-east-1"
ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose-delivery"
BATCH = 500
# The kill -9 check puts the rows this many times over (distinct ids), so the kill lands
# while batches are still going in.
KILL_ROUNDS = 5
ACTIVE_WAIT_SECS = 15.0
DELIVERY_WAIT_SECS = 90.0
PARQUET, ARCHIVE, FROM_KINESIS = "telco-parquet", "telco-archive", "telco-from-kinesis"
SOURCE_STREAM = "telco-source"
PARQUET_PREFIX = "telco/contract=!{partitionKeyFromQuery:contract}/"
PARQUET_ERRORS = "telco-errors/!{firehose:error-output-type}/"
KPL, SPLIT = "telco-kpl", "telco-split"
LOGS = "telco-logs"
LOG_EVENTS_PER_PAYLOAD = 40
KPL_STREAM = "telco-kpl-source"
CONTRACT_QUERY = "{contract: .Contract | ascii_downcase | gsub(\" \"; \"-\")}"
# User records per KPL aggregated record, and rows per concatenated-JSON record.
KPL_PER_AGGREGATE = 30
ROWS_PER_SPLIT_RECORD = 10


def client(service, endpoint_url, validate=True):
    config = Config(region_name=REGION, retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=5, read_timeout=60, parameter_validation=validate)
    return boto3.session.Session().client(
        service, endpoint_url=endpoint_url, region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing", config=config)


def csv_line(header, row):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([row[h] for h in header])
    return buf.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Reading the lake back


def files_under(root):
    out = {}
    for folder, _dirs, names in os.walk(root):
        for n in names:
            if not n.startswith("."):
                path = os.path.join(folder, n)
                out[os.path.relpath(path, root)] = path
    return out


def parquet_rows(lake):
    """(partition folder, customerID) of every row in the Parquet files under telco/."""
    out = []
    for rel, path in files_under(os.path.join(lake, "telco")).items():
        folder = rel.split("/")[0]
        for cid in pq.read_table(path).column("customerID").to_pylist():
            out.append((folder, cid))
    return out


def error_records(root):
    """Every error record (a JSON line) in the files under `root`."""
    out = []
    for path in files_under(root).values():
        with open(path, "rb") as f:
            body = f.read()
        if path.endswith(".gz"):
            body = gzip.decompress(body)
        out.extend(json.loads(line) for line in body.splitlines() if line.strip())
    return out


def archive_ids(root, header):
    """customerID of every CSV line in the gzip objects under `root` (errors excluded)."""
    ids = []
    for rel, path in files_under(root).items():
        if "failed" in rel:
            continue
        with open(path, "rb") as f:
            text = gzip.decompress(f.read()).decode("utf-8")
        for row in csv.reader(io.StringIO(text)):
            ids.append(dict(zip(header, row))["customerID"])
    return ids


def wait_for(read, want, timeout=DELIVERY_WAIT_SECS):
    """Polls read() until it holds every item of `want`; returns (items, secs)."""
    t0 = time.monotonic()
    while True:
        got = read()
        if set(want) <= set(got) or time.monotonic() - t0 > timeout:
            return got, time.monotonic() - t0
        time.sleep(0.5)


def exactly_once(got, want):
    counts = collections.Counter(got)
    problems = []
    missing = [w for w in want if w not in counts]
    if missing:
        problems.append(f"{len(missing)} missing, e.g. {missing[:3]}")
    twice = [k for k, n in counts.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} more than once, e.g. {twice[:3]}")
    extra = [k for k in counts if k not in set(want)]
    if extra:
        problems.append(f"{len(extra)} unexpected, e.g. {extra[:3]}")
    return problems


# ---------------------------------------------------------------------------------------------
# The delivery streams


def wait_active(fh, name, timeout=ACTIVE_WAIT_SECS):
    t0 = time.monotonic()
    while True:
        d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        if d["DeliveryStreamStatus"] == "ACTIVE" or time.monotonic() - t0 > timeout:
            return d, time.monotonic() - t0
        time.sleep(0.2)


def create_streams(ck, fh, kinesis):
    problems = []
    fh.create_delivery_stream(
        DeliveryStreamName=PARQUET, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake",
            "Prefix": PARQUET_PREFIX, "ErrorOutputPrefix": PARQUET_ERRORS,
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
            "CompressionFormat": "UNCOMPRESSED",
            "DynamicPartitioningConfiguration": {"Enabled": True},
            "ProcessingConfiguration": {"Enabled": True, "Processors": [{
                "Type": "MetadataExtraction", "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery", "ParameterValue": CONTRACT_QUERY},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]},
            "DataFormatConversionConfiguration": {
                "Enabled": True,
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                "OutputFormatConfiguration": {"Serializer": {"ParquetSerDe": {}}},
                "SchemaConfiguration": {"RoleARN": ROLE, "DatabaseName": "telco",
                                        "TableName": "customers"}},
        },
        Tags=[{"Key": "flow", "Value": "firehose_flows"}])
    fh.create_delivery_stream(
        DeliveryStreamName=ARCHIVE,
        S3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::archive",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "CompressionFormat": "GZIP"})
    kinesis.create_stream(StreamName=SOURCE_STREAM, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=SOURCE_STREAM,
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    fh.create_delivery_stream(
        DeliveryStreamName=FROM_KINESIS, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={
            "KinesisStreamARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{SOURCE_STREAM}",
            "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake", "Prefix": "kin/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "ProcessingConfiguration": {"Enabled": True, "Processors": [
                {"Type": "AppendDelimiterToRecord"}]}})
    for name in (PARQUET, ARCHIVE, FROM_KINESIS):
        d, secs = wait_active(fh, name)
        if d["DeliveryStreamStatus"] != "ACTIVE":
            problems.append(f"{name}: {d['DeliveryStreamStatus']} after {secs:.0f}s "
                            f"({d.get('FailureDescription')})")
    d = fh.describe_delivery_stream(DeliveryStreamName=PARQUET)["DeliveryStreamDescription"]
    s3 = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    if s3.get("Prefix") != PARQUET_PREFIX or not s3["DynamicPartitioningConfiguration"]["Enabled"]:
        problems.append(f"described {s3}")
    if d["Source"] != {"DirectPutSourceDescription": {}}:
        problems.append(f"Source {d['Source']}")
    d = fh.describe_delivery_stream(DeliveryStreamName=FROM_KINESIS)["DeliveryStreamDescription"]
    if d["DeliveryStreamType"] != "KinesisStreamAsSource" or \
            "KinesisStreamSourceDescription" not in d["Source"]:
        problems.append(f"{FROM_KINESIS}: {d['DeliveryStreamType']} {d['Source']}")
    names = fh.list_delivery_streams()["DeliveryStreamNames"]
    if sorted(names) != sorted([PARQUET, ARCHIVE, FROM_KINESIS]):
        problems.append(f"listed {names}")
    ck.check("create_delivery_stream x3 (DirectPut with jq dynamic partitioning + Parquet; "
             "DirectPut GZIP into a mapped bucket; KinesisStreamAsSource): ACTIVE, described "
             "back, listed", problems)


# ---------------------------------------------------------------------------------------------
# KPL aggregated records, built from the published format (amazon-kinesis-producer's
# aggregation-format.md): magic, a protobuf AggregatedRecord, the MD5 of the protobuf bytes.

KPL_MAGIC = b"\xf3\x89\x9a\xc2"


def pb_varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def pb_bytes(field, value):
    """A length-delimited field (wire type 2)."""
    return pb_varint(field << 3 | 2) + pb_varint(len(value)) + value


def pb_uint(field, value):
    """A varint field (wire type 0)."""
    return pb_varint(field << 3) + pb_varint(value)


def kpl_aggregate(records):
    """One aggregated record of [(partition key, data)]: AggregatedRecord {1: partition key
    table, 3: Record {1: partition_key_index, 3: data}}."""
    keys, body = [], b""
    for key, data in records:
        if key not in keys:
            keys.append(key)
        body += pb_bytes(3, pb_uint(1, keys.index(key)) + pb_bytes(3, data))
    message = b"".join(pb_bytes(1, k.encode()) for k in keys) + body
    return KPL_MAGIC + message + hashlib.md5(message).digest()


def put_batches(fh, name, payloads):
    """put_record_batch in batches of 500; returns (acknowledged payloads, problems)."""
    acked, problems = [], []
    for start in range(0, len(payloads), BATCH):
        chunk = payloads[start:start + BATCH]
        try:
            resp = fh.put_record_batch(DeliveryStreamName=name,
                                       Records=[{"Data": p} for p in chunk])
        except (ClientError, BotoCoreError) as exc:
            problems.append(f"{name} records {start}..: {err_text(exc)}")
            continue
        for p, r in zip(chunk, resp["RequestResponses"]):
            if "RecordId" in r:
                acked.append(p)
        if resp["FailedPutCount"]:
            problems.append(f"{name} records {start}..: FailedPutCount {resp['FailedPutCount']}")
    return acked, problems


def check_parquet(ck, fh, data, data_dir):
    lake = os.path.join(data_dir, "lake")
    rows = [json.dumps(r).encode() for r in data.rows]
    no_contract = json.dumps({"customerID": "NO-CONTRACT"}).encode()
    bad = [b"not json at all", no_contract]
    _, problems = put_batches(fh, PARQUET, rows + bad)
    ck.check(f"put_record_batch of {len(rows)} JSON rows and {len(bad)} bad records to "
             f"{PARQUET}", problems)
    want = [(f"contract={r['Contract'].lower().replace(' ', '-')}", r["customerID"])
            for r in data.rows]
    got, secs = wait_for(lambda: parquet_rows(lake), want)
    want_folders = {f for f, _ in want}
    folders = {f for f, _ in got}
    problems = exactly_once(got, want)
    if folders != want_folders:
        problems.append(f"partition folders {sorted(folders)}, want {sorted(want_folders)}")
    ck.check(f"{PARQUET}: every row exactly once in Parquet under "
             f"telco/contract=<jq result>/ ({len(folders)} partitions, {secs:.1f}s)", problems)
    errors, secs = wait_for(lambda: [base64.b64decode(e["rawData"])
                                     for e in error_records(os.path.join(lake, "telco-errors"))],
                            bad)
    records = error_records(os.path.join(lake, "telco-errors"))
    problems = exactly_once(errors, bad)
    fields = {"attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage", "rawData"}
    for e in records:
        if not fields <= set(e):
            problems.append(f"error record lacks {sorted(fields - set(e))}: {e}")
    kinds = sorted({os.path.relpath(p, os.path.join(lake, "telco-errors")).split("/")[0]
                    for p in files_under(os.path.join(lake, "telco-errors")).values()})
    ck.check(f"{PARQUET}: the bad records once each under telco-errors/<error type>/ "
             f"({kinds}) with Firehose's error-record fields", problems)


def check_archive(ck, fh, data, data_dir, archive_dir):
    lines = [csv_line(data.header, r) for r in data.rows]
    _, problems = put_batches(fh, ARCHIVE, lines)
    ck.check(f"put_record_batch of {len(lines)} CSV lines to {ARCHIVE}", problems)
    want = [r["customerID"] for r in data.rows]
    got, secs = wait_for(lambda: archive_ids(archive_dir, data.header), want)
    keys = list(files_under(archive_dir))
    bad_keys = [k for k in keys if not (k.count("/") == 4 and k.endswith(".gz"))]
    ck.check(f"{ARCHIVE}: every CSV line exactly once in gzip objects under YYYY/MM/DD/HH/ of "
             f"bucket archive ({len(keys)} objects, {secs:.1f}s)",
             exactly_once(got, want) + [f"unexpected keys {bad_keys[:3]}"] * bool(bad_keys))


def check_from_kinesis(ck, kinesis, data, data_dir):
    problems = []
    rows = data.rows[:1000]
    for start in range(0, len(rows), BATCH):
        chunk = rows[start:start + BATCH]
        resp = kinesis.put_records(StreamName=SOURCE_STREAM, Records=[
            {"Data": json.dumps(r).encode(), "PartitionKey": r["customerID"]} for r in chunk])
        if resp["FailedRecordCount"]:
            problems.append(f"put_records {start}..: {resp['FailedRecordCount']} failed")
    root = os.path.join(data_dir, "lake", "kin")

    def read():
        ids = []
        for path in files_under(root).values():
            with open(path, "rb") as f:
                ids.extend(json.loads(line)["customerID"] for line in f.read().splitlines())
        return ids

    want = [r["customerID"] for r in rows]
    got, secs = wait_for(read, want)
    ck.check(f"{FROM_KINESIS}: {len(rows)} rows put into Kinesis stream {SOURCE_STREAM} "
             f"delivered exactly once, one JSON record per line ({secs:.1f}s)",
             problems + exactly_once(got, want))


def create_expanding_streams(ck, fh, kinesis):
    """telco-kpl (a Kinesis source: KPL de-aggregation) and telco-split (RecordDeAggregation
    JSON with dynamic partitioning and a random-string folder)."""
    problems = []
    kinesis.create_stream(StreamName=KPL_STREAM, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=KPL_STREAM,
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    fh.create_delivery_stream(
        DeliveryStreamName=KPL, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={
            "KinesisStreamARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{KPL_STREAM}",
            "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake", "Prefix": "kpl/",
            "ErrorOutputPrefix": "kpl-errors/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "ProcessingConfiguration": {"Enabled": True, "Processors": [
                {"Type": "AppendDelimiterToRecord"}]}})
    fh.create_delivery_stream(
        DeliveryStreamName=SPLIT, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake",
            "Prefix": "split/contract=!{partitionKeyFromQuery:contract}/"
                      "!{firehose:random-string}/",
            "ErrorOutputPrefix": "split-errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
            "DynamicPartitioningConfiguration": {"Enabled": True},
            "ProcessingConfiguration": {"Enabled": True, "Processors": [
                {"Type": "RecordDeAggregation", "Parameters": [
                    {"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]},
                {"Type": "MetadataExtraction", "Parameters": [
                    {"ParameterName": "MetadataExtractionQuery",
                     "ParameterValue": CONTRACT_QUERY},
                    {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
                {"Type": "AppendDelimiterToRecord"}]}})
    for name in (KPL, SPLIT):
        d, secs = wait_active(fh, name)
        if d["DeliveryStreamStatus"] != "ACTIVE":
            problems.append(f"{name}: {d['DeliveryStreamStatus']} after {secs:.0f}s "
                            f"({d.get('FailureDescription')})")
    d = fh.describe_delivery_stream(DeliveryStreamName=SPLIT)["DeliveryStreamDescription"]
    processors = d["Destinations"][0]["ExtendedS3DestinationDescription"][
        "ProcessingConfiguration"]["Processors"]
    if [p["Type"] for p in processors] != ["RecordDeAggregation", "MetadataExtraction",
                                           "AppendDelimiterToRecord"]:
        problems.append(f"{SPLIT} processors described as {processors}")
    ck.check(f"create_delivery_stream {KPL} (KinesisStreamAsSource) and {SPLIT} (DirectPut, "
             "RecordDeAggregation JSON + jq partitioning + random-string prefix): ACTIVE",
             problems)


def json_lines_under(root, key="customerID"):
    """`key` of every JSON line in the files under `root`, with each file's relative path."""
    out = []
    for rel, path in files_under(root).items():
        with open(path, "rb") as f:
            out.extend((rel, json.loads(line)[key]) for line in f.read().splitlines())
    return out


def check_kpl(ck, kinesis, data, data_dir):
    rows = data.rows[1000:2000]
    aggregated, plain = rows[:900], rows[900:]
    entries = []
    for start in range(0, len(aggregated), KPL_PER_AGGREGATE):
        chunk = aggregated[start:start + KPL_PER_AGGREGATE]
        users = [(r["customerID"], json.dumps(r).encode()) for r in chunk]
        entries.append({"Data": kpl_aggregate(users), "PartitionKey": users[0][0]})
    entries.extend({"Data": json.dumps(r).encode(), "PartitionKey": r["customerID"]}
                   for r in plain)
    corrupt = bytearray(kpl_aggregate([("c", b'{"customerID":"CORRUPT"}')]))
    corrupt[-1] ^= 0xFF
    entries.append({"Data": bytes(corrupt), "PartitionKey": "c"})
    random.Random(7).shuffle(entries)
    problems = []
    for start in range(0, len(entries), BATCH):
        resp = kinesis.put_records(StreamName=KPL_STREAM, Records=entries[start:start + BATCH])
        if resp["FailedRecordCount"]:
            problems.append(f"put_records {start}..: {resp['FailedRecordCount']} failed")
    root = os.path.join(data_dir, "lake", "kpl")
    # AppendDelimiterToRecord appends a newline and nothing else: the corrupt aggregate (not
    # JSON, and binary) is delivered as it is, a newline after it, like every other record.
    as_is = bytes(corrupt) + b"\n"

    def delivered():
        out = []
        for path in files_under(root).values():
            with open(path, "rb") as f:
                body = f.read()
            out.extend(["CORRUPT AS IS"] * body.count(as_is))
            out.extend(json.loads(line)["customerID"]
                       for line in body.replace(as_is, b"").splitlines())
        return out
    want = [r["customerID"] for r in rows] + ["CORRUPT AS IS"]
    got, secs = wait_for(delivered, want)
    problems += exactly_once(got, want)
    keys = list(files_under(root))
    if any(k.count("/") != 4 for k in keys):
        problems.append(f"keys not under kpl/YYYY/MM/DD/HH/: {keys[:3]}")
    if any("." in k.rsplit("/", 1)[-1] for k in keys):
        problems.append(f"keys with an extension (Firehose adds none): {keys[:3]}")
    errors = files_under(os.path.join(data_dir, "lake", "kpl-errors"))
    if errors:
        problems.append(f"objects under kpl-errors/: {list(errors)[:3]}")
    ck.check(f"{KPL}: {len(aggregated)} user records in {len(aggregated) // KPL_PER_AGGREGATE} "
             f"KPL aggregated records and {len(plain)} plain records put with "
             f"kinesis.put_records: every user record delivered exactly once, one per line; an "
             f"aggregate whose MD5 does not match is a plain record, delivered once as it is "
             f"with a newline ({secs:.1f}s)", problems)


def check_split(ck, fh, data, data_dir):
    rows = data.rows
    records = []
    for start in range(0, len(rows), ROWS_PER_SPLIT_RECORD):
        chunk = [json.dumps(r) for r in rows[start:start + ROWS_PER_SPLIT_RECORD]]
        # Back to back, and one per line, as Firehose's documentation shows both.
        records.append(("" if start % 20 == 0 else "\n").join(chunk).encode())
    bad = json.dumps([{"customerID": "ARRAY"}]).encode()
    _, problems = put_batches(fh, SPLIT, records + [bad])
    ck.check(f"put_record_batch of {len(records)} records holding "
             f"{ROWS_PER_SPLIT_RECORD} JSON rows each (and a JSON array) to {SPLIT}", problems)
    root = os.path.join(data_dir, "lake", "split")
    want = [(f"contract={r['Contract'].lower().replace(' ', '-')}", r["customerID"])
            for r in rows]

    def read():
        out = []
        for rel, cid in json_lines_under(root):
            parts = rel.split("/")
            rand = parts[1] if len(parts) == 3 else ""
            ok = len(rand) == 11 and all(c in "0123456789abcdef" for c in rand)
            out.append((parts[0], cid) if ok else (rel, cid))
        return out

    got, secs = wait_for(read, want)
    problems = exactly_once(got, want)
    rands = {rel.split("/")[1] for rel in files_under(root)}
    objects = len(files_under(root))
    if len(rands) != objects:
        problems.append(f"{objects} objects but {len(rands)} random strings")
    ck.check(f"{SPLIT}: every row of the split records exactly once under "
             f"split/contract=<jq result>/<11-character random string>/ ({objects} objects, "
             f"{secs:.1f}s)", problems)
    errors_root = os.path.join(data_dir, "lake", "split-errors")
    raw, secs = wait_for(lambda: [base64.b64decode(e["rawData"])
                                  for e in error_records(errors_root)], [bad])
    problems = exactly_once(raw, [bad])
    kinds = sorted({rel.split("/")[0] for rel in files_under(errors_root)})
    if kinds != ["processing-failed"]:
        problems.append(f"error folders {kinds}")
    ck.check(f"{SPLIT}: a record that does not split (a JSON array) once under "
             f"split-errors/processing-failed/", problems)


def log_payload(message_type, messages):
    """A CloudWatch Logs subscription payload, gzip-compressed as CloudWatch Logs sends it."""
    body = {"messageType": message_type, "owner": ACCOUNT, "logGroup": "/telco/app",
            "logStream": "web-1", "subscriptionFilters": ["to-firehose"],
            "logEvents": [{"id": str(i), "timestamp": 1, "message": m}
                          for i, m in enumerate(messages)]}
    return gzip.compress(json.dumps(body).encode())


def tokyo_hour(epoch):
    return time.strftime("%Y-%m-%d-%H", time.gmtime(epoch + 9 * 3600))


def check_logs(ck, fh, data, data_dir, s3, moto_bucket):
    problems = []
    fh.create_delivery_stream(
        DeliveryStreamName=LOGS, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake",
            "Prefix": "logs/!{timestamp:yyyy-MM-dd-HH}/",
            "ErrorOutputPrefix": "logs-errors/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
            "FileExtension": ".log", "CustomTimeZone": "Asia/Tokyo",
            "ProcessingConfiguration": {"Enabled": True, "Processors": [
                {"Type": "Decompression", "Parameters": [
                    {"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]},
                {"Type": "CloudWatchLogProcessing", "Parameters": [
                    {"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]}]},
            "S3BackupMode": "Enabled",
            "S3BackupConfiguration": {
                "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::backup", "Prefix": "logs-source/",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1}}})
    d, secs = wait_active(fh, LOGS)
    if d["DeliveryStreamStatus"] != "ACTIVE":
        problems.append(f"{LOGS}: {d['DeliveryStreamStatus']} ({d.get('FailureDescription')})")
    dest = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    seen = {k: dest.get(k) for k in ("S3BackupMode", "FileExtension", "CustomTimeZone")}
    if seen != {"S3BackupMode": "Enabled", "FileExtension": ".log",
                "CustomTimeZone": "Asia/Tokyo"}:
        problems.append(f"described as {seen}")
    if dest.get("S3BackupDescription", {}).get("BucketARN") != "arn:aws:s3:::backup":
        problems.append(f"S3BackupDescription {dest.get('S3BackupDescription')}")
    ck.check(f"create {LOGS}: Decompression + CloudWatchLogProcessing, FileExtension, "
             "CustomTimeZone and S3BackupMode Enabled described as given", problems)

    messages = [json.dumps(r) for r in data.rows]
    payloads = [log_payload("DATA_MESSAGE", messages[i:i + LOG_EVENTS_PER_PAYLOAD])
                for i in range(0, len(messages), LOG_EVENTS_PER_PAYLOAD)]
    payloads.append(log_payload("CONTROL_MESSAGE",
                                ["CWL CONTROL MESSAGE: Checking health of destination"]))
    not_gzip = b"a record that is not gzip"
    payloads.append(not_gzip)
    hours = {tokyo_hour(time.time())}
    acked, problems = put_batches(fh, LOGS, payloads)
    hours.add(tokyo_hour(time.time()))
    ck.check(f"put_record_batch of {len(payloads)} gzip log payloads "
             f"({len(messages)} log events) to {LOGS}", problems)

    root = os.path.join(data_dir, "lake", "logs")

    def delivered():
        out = []
        for rel, path in files_under(root).items():
            with open(path, "rb") as f:
                out.extend((rel, line) for line in f.read().decode().splitlines())
        return out
    want = [r["customerID"] for r in data.rows]
    got, secs = wait_for(lambda: [json.loads(line)["customerID"] for _, line in delivered()],
                         want)
    problems = exactly_once(got, want)
    rels = [rel for rel, _ in delivered()]
    bad_keys = [r for r in set(rels) if not (r.split("/")[0] in hours and r.endswith(".log"))]
    if bad_keys:
        problems.append(f"keys not under the Tokyo hour {sorted(hours)} with .log: "
                        f"{bad_keys[:3]}")
    errors = error_records(os.path.join(data_dir, "lake", "logs-errors"))
    codes = [(e.get("errorCode"), base64.b64decode(e.get("rawData", ""))) for e in errors]
    if codes != [("Decompression.Failed", not_gzip)]:
        problems.append(f"error records {codes}")
    ck.check(f"{LOGS}: every log message once as a line of .log objects under the Tokyo hour "
             f"({len(set(rels))} objects, {secs:.1f}s), the record that is not gzip under "
             "processing-failed, the control message dropped", problems)

    def backup():
        objects = archive_objects(s3, moto_bucket)
        return {k: v for k, v in objects.items() if k.startswith("backup/logs-source/")}
    t0 = time.monotonic()
    while True:
        objects = backup()
        blob = b"".join(objects.values())
        if len(blob) >= sum(map(len, acked)) or time.monotonic() - t0 > DELIVERY_WAIT_SECS:
            break
        time.sleep(0.5)
    problems = []
    if len(blob) != sum(map(len, acked)):
        problems.append(f"{len(blob)} bytes backed up, {sum(map(len, acked))} put")
    missing = [p for p in acked if p not in blob]
    if missing:
        problems.append(f"{len(missing)} records missing from the backup")
    ck.check(f"{LOGS}: the source records backed up unprocessed into moto "
             f"(s3://{moto_bucket}/backup/logs-source/, {len(objects)} objects, "
             f"{time.monotonic() - t0:.1f}s)", problems)

    d = fh.describe_delivery_stream(DeliveryStreamName=LOGS)["DeliveryStreamDescription"]
    problems = []
    try:
        fh.update_destination(
            DeliveryStreamName=LOGS, CurrentDeliveryStreamVersionId=d["VersionId"],
            DestinationId=d["Destinations"][0]["DestinationId"],
            ExtendedS3DestinationUpdate={"S3BackupMode": "Disabled"})
        problems.append("backup disabled")
    except ClientError as exc:
        if error_code(exc) != "InvalidArgumentException":
            problems.append(err_text(exc))
    ck.check("update_destination cannot turn source record backup off once on "
             "(InvalidArgumentException)", problems)


def check_cli(ck, args, url, env):
    aws = args.aws_cli
    if not aws:
        note("no AWS CLI given (--aws-cli): CLI checks skipped")
        return
    base = [aws, "--endpoint-url", url, "--region", REGION, "--output", "json", "firehose"]
    cli_env = dict(env, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    problems = []

    def run(*argv):
        p = subprocess.run(base + list(argv), capture_output=True, text=True, env=cli_env,
                           timeout=60)
        if p.returncode != 0:
            problems.append(f"aws firehose {' '.join(argv)}: {p.stderr.strip()[:300]}")
            return {}
        return json.loads(p.stdout or "{}")

    names = run("list-delivery-streams").get("DeliveryStreamNames", [])
    if ARCHIVE not in names:
        problems.append(f"list-delivery-streams: {names}")
    d = run("describe-delivery-stream", "--delivery-stream-name", ARCHIVE)
    if d.get("DeliveryStreamDescription", {}).get("DeliveryStreamStatus") != "ACTIVE":
        problems.append(f"describe-delivery-stream: {d}")
    one = run("put-record", "--delivery-stream-name", ARCHIVE,
              "--record", json.dumps({"Data": "cli-1,cli\n"}))
    if not one.get("RecordId"):
        problems.append(f"put-record: {one}")
    ck.check("AWS CLI: aws firehose list-delivery-streams, describe-delivery-stream, "
             "put-record", problems)


class Producer(threading.Thread):
    """Puts CSV lines to ARCHIVE in batches of 100 until stopped or done. A batch that fails
    (up is down) is not retried: its rows are `unknown` (appended or not, never twice)."""

    def __init__(self, url, header, rows):
        super().__init__(daemon=True)
        self.url, self.header, self.rows = url, header, rows
        self.acked, self.unknown, self.sent = [], [], 0
        self.stop = threading.Event()

    def run(self):
        fh = client("firehose", self.url)
        while not self.stop.is_set() and self.sent < len(self.rows):
            chunk = self.rows[self.sent:self.sent + 100]
            self.sent += len(chunk)
            try:
                resp = fh.put_record_batch(DeliveryStreamName=ARCHIVE, Records=[
                    {"Data": csv_line(self.header, r)} for r in chunk])
            except (ClientError, BotoCoreError, OSError):
                self.unknown.extend(r["customerID"] for r in chunk)
                time.sleep(0.05)
                continue
            for r, res in zip(chunk, resp["RequestResponses"]):
                (self.acked if "RecordId" in res else self.unknown).append(r["customerID"])


def check_kill(ck, procs, args, data, data_dir, archive_dir, log, env, config, up):
    """kill -9 while a producer puts and the delivery writes: every acknowledged record is
    delivered exactly once; one whose batch failed at most once."""
    rows = [dict(r, customerID=f"K{n}-{r['customerID']}") for n in range(KILL_ROUNDS)
            for r in data.rows]
    first = Producer(up[1], data.header, rows)
    first.start()
    time.sleep(random.uniform(0.2, 0.8))
    procs.kill(up[0])
    note(f"kill -9 of up after {len(first.acked)} acknowledged records")
    up = start(ck, procs, args, data_dir, log + ".kill", env, config, "after kill -9")
    first.stop.set()
    first.join(timeout=60)
    rest = Producer(up[1], data.header, rows[first.sent:])
    rest.start()
    rest.join(timeout=180)
    acked = first.acked + rest.acked
    unknown = set(first.unknown + rest.unknown)
    want = [r["customerID"] for r in data.rows] + acked + ["cli-1"]
    got, secs = wait_for(lambda: archive_ids(archive_dir, data.header), want)
    got_known = [g for g in got if g not in unknown]
    problems = exactly_once(got_known, want)
    twice = [k for k, n in collections.Counter(got).items() if k in unknown and n > 1]
    if twice:
        problems.append(f"{len(twice)} records of failed batches twice, e.g. {twice[:3]}")
    landed = sum(1 for g in set(got) if g in unknown)
    ck.check(f"kill -9 of up while records are put and delivered: all {len(acked)} "
             f"acknowledged records delivered exactly once, {landed} of {len(unknown)} from "
             f"batches cut by the kill at most once ({secs:.1f}s)", problems)
    return up


def check_update_and_errors(ck, fh_raw, fh):
    problems = []
    d = fh.describe_delivery_stream(DeliveryStreamName=ARCHIVE)["DeliveryStreamDescription"]
    fh.update_destination(DeliveryStreamName=ARCHIVE,
                          CurrentDeliveryStreamVersionId=d["VersionId"],
                          DestinationId=d["Destinations"][0]["DestinationId"],
                          S3DestinationUpdate={"Prefix": "archived/"})
    after = fh.describe_delivery_stream(DeliveryStreamName=ARCHIVE)["DeliveryStreamDescription"]
    if after["VersionId"] != str(int(d["VersionId"]) + 1) or \
            after["Destinations"][0]["S3DestinationDescription"].get("Prefix") != "archived/":
        problems.append(f"after update: {after['VersionId']} {after['Destinations'][0]}")
    fh.tag_delivery_stream(DeliveryStreamName=ARCHIVE, Tags=[{"Key": "k", "Value": "v"}])
    tags = fh.list_tags_for_delivery_stream(DeliveryStreamName=ARCHIVE)["Tags"]
    if tags != [{"Key": "k", "Value": "v"}]:
        problems.append(f"tags {tags}")
    fh.start_delivery_stream_encryption(
        DeliveryStreamName=ARCHIVE,
        DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"})
    enc = fh.describe_delivery_stream(DeliveryStreamName=ARCHIVE)[
        "DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]
    if enc.get("Status") != "ENABLED":
        problems.append(f"encryption {enc}")
    ck.check("update_destination (new prefix, version raised), tags, encryption state",
             problems)

    def code(call):
        try:
            call()
        except ClientError as exc:
            return error_code(exc)
        return "success"

    cases = [
        ("update_destination with a stale version", lambda: fh.update_destination(
            DeliveryStreamName=ARCHIVE, CurrentDeliveryStreamVersionId="1",
            DestinationId="destinationId-000000000001", S3DestinationUpdate={"Prefix": "x/"}),
         "ConcurrentModificationException"),
        ("describe an unknown stream", lambda: fh.describe_delivery_stream(
            DeliveryStreamName="nope"), "ResourceNotFoundException"),
        ("create a name in use", lambda: fh.create_delivery_stream(
            DeliveryStreamName=ARCHIVE, S3DestinationConfiguration={
                "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake"}),
         "ResourceInUseException"),
        ("an unmapped bucket", lambda: fh.create_delivery_stream(
            DeliveryStreamName="x", S3DestinationConfiguration={
                "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::elsewhere"}),
         "InvalidArgumentException"),
        ("a Lambda processor", lambda: fh.create_delivery_stream(
            DeliveryStreamName="x", ExtendedS3DestinationConfiguration={
                "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake",
                "ProcessingConfiguration": {"Enabled": True, "Processors": [{
                    "Type": "Lambda", "Parameters": [{"ParameterName": "LambdaArn",
                    "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:f"}]}]}}),
         "InvalidArgumentException"),
        ("put_record to a Kinesis-source stream", lambda: fh.put_record(
            DeliveryStreamName=FROM_KINESIS, Record={"Data": b"x"}),
         "InvalidArgumentException"),
        ("put_record_batch of 501 records", lambda: fh_raw.put_record_batch(
            DeliveryStreamName=ARCHIVE, Records=[{"Data": b"x"}] * 501),
         "ValidationException"),
        ("a name with a slash", lambda: fh_raw.describe_delivery_stream(
            DeliveryStreamName="a/b"), "ValidationException"),
    ]
    for what, call, want in cases:
        got = code(call)
        ck.check(f"errors: {what} -> {want}", [] if got == want else [f"got {got}"])


def start(ck, procs, args, data_dir, log, env, config, what):
    try:
        return start_up(procs, args.millrace, data_dir, log, env, config=config)
    except StartError as exc:
        ck.check(f"millrace up starts ({what})", exc.problems)
        raise Abort("millrace up did not start")


def run_flow(ck, args, data, tmp, procs, env):
    data_dir = os.path.join(tmp, "data")
    archive_dir = os.path.join(data_dir, "archive")
    endpoint = start_moto(ck, procs, tmp, env)
    s3 = client("s3", endpoint)
    moto_bucket = f"millrace-firehose-{os.getpid()}"
    s3.create_bucket(Bucket=moto_bucket)
    config = os.path.join(tmp, "firehose.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"""# written by tests/compat/firehose_flows.py
[lake]
s3_endpoint_url = "{endpoint}"
s3_path_style = true

[buckets]
archive = "archive"
backup = "s3://{moto_bucket}/backup"
""")
    log = os.path.join(tmp, "up.log")
    up = start(ck, procs, args, data_dir, log, env, config, "first")
    note(f"millrace up at {up[1]}")
    fh, kinesis = client("firehose", up[1]), client("kinesis", up[1])
    create_streams(ck, fh, kinesis)
    check_parquet(ck, fh, data, data_dir)
    check_archive(ck, fh, data, data_dir, archive_dir)
    check_from_kinesis(ck, kinesis, data, data_dir)
    create_expanding_streams(ck, fh, kinesis)
    check_kpl(ck, kinesis, data, data_dir)
    check_split(ck, fh, data, data_dir)
    check_logs(ck, fh, data, data_dir, s3, moto_bucket)
    check_cli(ck, args, up[1], env)
    up = check_kill(ck, procs, args, data, data_dir, archive_dir, log, env, config, up)
    fh = client("firehose", up[1])
    check_update_and_errors(ck, client("firehose", up[1], validate=False), fh)

    ck.check("SIGTERM stops millrace up with status 0", stop_up(procs, up[0], log + ".kill"))
    up = start(ck, procs, args, data_dir, log + ".3", env, config, "after SIGTERM")
    fh = client("firehose", up[1])
    problems = []
    for name in (PARQUET, ARCHIVE, FROM_KINESIS):
        d, secs = wait_active(fh, name)
        if d["DeliveryStreamStatus"] != "ACTIVE":
            problems.append(f"{name}: {d['DeliveryStreamStatus']}")
    d = fh.describe_delivery_stream(DeliveryStreamName=ARCHIVE)["DeliveryStreamDescription"]
    if d["Destinations"][0]["S3DestinationDescription"].get("Prefix") != "archived/":
        problems.append("the update was lost")
    ck.check("after a restart: all three ACTIVE again, the update kept", problems)

    before = files_under(os.path.join(data_dir, "lake", "telco"))
    fh.delete_delivery_stream(DeliveryStreamName=PARQUET)
    problems = []
    try:
        fh.describe_delivery_stream(DeliveryStreamName=PARQUET)
        problems.append("still described")
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            problems.append(err_text(exc))
    if files_under(os.path.join(data_dir, "lake", "telco")) != before:
        problems.append("delivered objects changed")
    ck.check("delete_delivery_stream: gone, its objects stay", problems)
    ck.check("SIGTERM stops millrace up with status 0 (at the end)",
             stop_up(procs, up[0], log + ".3"))


def main(argv):
    return run_csv_flow(argv, __doc__, "firehose", SUMMARY_PREFIX, run_flow, aws_cli=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
