#!/usr/bin/env python3
"""Channel flows: the Kinesis channel operations (CreateChannel, DescribeChannel, ListChannels,
UpdateChannel, DeleteChannel) driven with boto3 against `millrace up`, delivering into a local
lake and into a moto S3 server.

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/channel_flows.py --millrace target/debug/millrace \
        --csv ../shared/data/telco-customer-churn.csv

Every process it starts (moto, millrace up) runs in its own process group on 127.0.0.1 and is
killed at the end, also on failure. Scratch files live in one temporary directory, removed at
the end (--keep-tmp keeps it).

The flow:
 1. moto's S3 server on a free port and a bucket in it; `millrace up -c channels.toml` whose
    [buckets] maps bucket `archive` to s3://MOTO_BUCKET/archive ([lake] s3_endpoint_url,
    s3_path_style); bucket `lake` is not mapped: it is the data dir's own lake.
 2. Two ON_DEMAND streams: `telco-json` (each CSV row as a JSON object) and `telco-csv` (each
    CSV row as one CSV line ending in a newline). A third of the rows goes in before the
    channels exist.
 3. Channel `telco-lake`: telco-json → bucket lake, RecordFormatType JSON, GZIP,
    OutputKeyTemplate `telco/!{timestamp:yyyy-MM-dd}/`, DataFreshnessInSeconds 1.
    Channel `telco-archive`: telco-csv → bucket archive (moto), STRING, ZSTD, the default key
    template, DataFreshnessInSeconds 1. Checks: CREATING answered, ACTIVE within 15 s,
    everything given echoed by DescribeChannel, ListChannels (all, by StreamFilter, paged).
 4. The second third of the rows; UpdateChannel telco-lake to DataFreshnessInSeconds 2
    (UPDATING answered, ACTIVE again, the new value described); the last third.
 5. Both destinations hold every CSV row exactly once (customerIDs counted in the gunzipped
    NDJSON objects under DATA_DIR/lake/telco/DATE/ and in the zstd CSV objects under
    s3://MOTO_BUCKET/archive/telco-archive/YYYY/MM/DD/HH/), with nothing under errors/.
 6. `up` stopped with SIGTERM and started again on the same data dir: both channels listed
    and ACTIVE again, the update kept, the objects unchanged (nothing delivered twice);
    /status lists both channels with their lag.
 7. Bad input gets AWS's error types for every operation: ValidationException (model
    constraints; boto3's own parameter validation is off so the server sees the input),
    InvalidArgumentException (S3 Tables without a schema, an unmapped bucket, a PROVISIONED stream,
    an unknown key template placeholder, UpdateChannel with S3 Tables, a bad NextToken),
    ResourceNotFoundException (an unknown stream or channel ARN), ResourceInUseException (a
    duplicate name, DeleteStream of a stream with channels).
 8. DeleteChannel of both: they are gone (ResourceNotFoundException, empty ListChannels), the
    streams can be deleted, the delivered objects stay; `up` exits 0 on SIGTERM.

Output: "ok - ..." / "FAIL - ..." lines, "# ..." notes, and last the line
"channel flows: N passed, M failed"; exit status 1 when M > 0.
"""

import collections
import csv
import gzip
import io
import json
import os
import re
import sys
import time
import urllib.request

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    import pyarrow
    from flowkit import Checks, err_text, error_code, free_port, note, wait_http
    from delivery_flows import Abort, StartError, log_tail, run_csv_flow, start_up, stop_up
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"channel_flows.py: cannot import a dependency ({exc}); "
        "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n"
    )
    print("channel flows: 0 passed, 1 failed")
    sys.exit(1)

SUMMARY_PREFIX = "channel flows"
REGION = "us-east-1"
ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/millrace-channels"
PUT_BATCH = 500
ACTIVE_WAIT_SECS = 15.0
DELIVERY_WAIT_SECS = 90.0
JSON_STREAM, CSV_STREAM = "telco-json", "telco-csv"
LAKE_CHANNEL, ARCHIVE_CHANNEL = "telco-lake", "telco-archive"
LAKE_TEMPLATE = "telco/!{timestamp:yyyy-MM-dd}/"


def client(service, endpoint_url, validate=True):
    kw = {"s3": {"addressing_style": "path"}} if service == "s3" else {}
    config = Config(region_name=REGION, retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=5, read_timeout=60, parameter_validation=validate, **kw)
    return boto3.session.Session().client(
        service, endpoint_url=endpoint_url, region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing", config=config)


def stream_arn(name):
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def error_of(call):
    """The AWS error code `call()` fails with ('' when it succeeds)."""
    try:
        call()
    except ClientError as exc:
        return error_code(exc)
    return ""


# ---------------------------------------------------------------------------------------------
# Producing


def csv_line(header, row):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([row[h] for h in header])
    return buf.getvalue().encode("utf-8")


def put_part(ck, kinesis, data, rows, label):
    """Each row to both streams (JSON object, CSV line) with put_records."""
    problems = []
    for stream, encode in ((JSON_STREAM, lambda r: json.dumps(r).encode("utf-8")),
                           (CSV_STREAM, lambda r: csv_line(data.header, r))):
        for start in range(0, len(rows), PUT_BATCH):
            chunk = rows[start:start + PUT_BATCH]
            entries = [{"Data": encode(r), "PartitionKey": r["customerID"]} for r in chunk]
            try:
                resp = kinesis.put_records(StreamName=stream, Records=entries)
            except (ClientError, BotoCoreError) as exc:
                problems.append(f"{stream} rows {start}..: {err_text(exc)}")
                break
            if resp.get("FailedRecordCount") != 0:
                problems.append(f"{stream} rows {start}..: FailedRecordCount "
                                f"{resp.get('FailedRecordCount')}")
    ck.check(f"{label}: put_records of {len(rows)} rows to {JSON_STREAM} and {CSV_STREAM}",
             problems)


# ---------------------------------------------------------------------------------------------
# Channels


def create_channel(kinesis, name, stream, bucket, fmt, compression, template=None):
    storage = {"BucketARN": f"arn:aws:s3:::{bucket}", "ExpectedBucketOwner": ACCOUNT,
               "CompressionType": compression}
    if template:
        storage["OutputKeyTemplate"] = template
    return kinesis.create_channel(
        ChannelName=name, ServiceExecutionRoleARN=ROLE,
        StreamConfigurationList=[{"StreamARN": stream_arn(stream),
                                  "RecordConfiguration": {"RecordFormatType": fmt}}],
        S3DestinationConfiguration={"DataFreshnessInSeconds": 1,
                                    "StorageConfiguration": storage},
        Tags={"flow": "channel_flows"})["ChannelDescription"]


def wait_active(kinesis, arn, timeout=ACTIVE_WAIT_SECS):
    """Polls DescribeChannel until ACTIVE; returns (description, seconds) or raises."""
    t0 = time.monotonic()
    while True:
        d = kinesis.describe_channel(ChannelARN=arn)["ChannelDescription"]
        if d["ChannelStatus"] == "ACTIVE" or time.monotonic() - t0 > timeout:
            return d, time.monotonic() - t0
        time.sleep(0.2)


def check_created(ck, kinesis, created, want):
    """created: CreateChannel's description; want: (stream, bucket, fmt, compression, tpl)."""
    name = created["ChannelName"]
    stream, bucket, fmt, compression, template = want
    problems = []
    if created.get("ChannelStatus") != "CREATING":
        problems.append(f"CreateChannel answered {created.get('ChannelStatus')}, want CREATING")
    pattern = rf"^arn:aws:kinesis:{REGION}:{ACCOUNT}:channel/{re.escape(name)}/\S+$"
    if not re.match(pattern, created.get("ChannelARN", "")):
        problems.append(f"ChannelARN {created.get('ChannelARN')!r} is not {pattern}")
    d, secs = wait_active(kinesis, created["ChannelARN"])
    if d["ChannelStatus"] != "ACTIVE":
        problems.append(f"still {d['ChannelStatus']} after {secs:.0f}s "
                        f"({d.get('ChannelStatusReason')})")
    s3 = d.get("S3DestinationConfiguration", {})
    storage = s3.get("StorageConfiguration", {})
    got = (d["StreamConfigurationList"][0]["StreamARN"],
           d["StreamConfigurationList"][0]["RecordConfiguration"]["RecordFormatType"],
           storage.get("BucketARN"), storage.get("CompressionType"),
           storage.get("OutputKeyTemplate"), s3.get("DataFreshnessInSeconds"),
           d.get("ServiceExecutionRoleARN"),
           d.get("LoggingConfiguration", {}).get("CloudWatchLogs", {}).get("Enabled"),
           s3.get("DeadLetterQueueS3Configuration", {}).get("BucketARN"))
    expected = (stream_arn(stream), fmt, f"arn:aws:s3:::{bucket}", compression, template, 1,
                ROLE, False, f"arn:aws:s3:::{bucket}")
    if got != expected:
        problems.append(f"described {got}, want {expected}")
    ck.check(f"create_channel {name}: CREATING, then ACTIVE ({secs:.1f}s), its settings "
             "described back (stream, format, bucket, compression, template, freshness, "
             "role, logging off, dead letters into the bucket)", problems)
    return d


def check_list(ck, kinesis, arns):
    problems = []
    listed = kinesis.list_channels()["ChannelSummaries"]
    if sorted(c["ChannelARN"] for c in listed) != sorted(arns.values()):
        problems.append(f"listed {[c['ChannelName'] for c in listed]}")
    bad = [c["ChannelName"] for c in listed
           if c.get("ChannelDestinationType") != "S3" or c.get("ChannelStatus") != "ACTIVE"]
    if bad:
        problems.append(f"not ACTIVE S3 channels: {bad}")
    by_stream = kinesis.list_channels(
        StreamFilter=[{"StreamARN": stream_arn(CSV_STREAM)}])["ChannelSummaries"]
    if [c["ChannelName"] for c in by_stream] != [ARCHIVE_CHANNEL]:
        problems.append(f"StreamFilter {CSV_STREAM}: {[c['ChannelName'] for c in by_stream]}")
    page = kinesis.list_channels(MaxResults=1)
    rest = kinesis.list_channels(MaxResults=1, NextToken=page.get("NextToken", ""))
    names = [c["ChannelName"] for c in page["ChannelSummaries"] + rest["ChannelSummaries"]]
    if names != sorted(arns) or rest.get("NextToken"):
        problems.append(f"pages of 1: {names}, last NextToken {rest.get('NextToken')!r}")
    ck.check("list_channels: both ACTIVE S3 channels, StreamFilter, MaxResults/NextToken "
             "pages", problems)


def check_update(ck, kinesis, arn):
    problems = []
    d = kinesis.update_channel(
        ChannelARN=arn, S3DestinationConfiguration={"DataFreshnessInSeconds": 2}
    )["ChannelDescription"]
    if d["ChannelStatus"] != "UPDATING":
        problems.append(f"UpdateChannel answered {d['ChannelStatus']}, want UPDATING")
    d, secs = wait_active(kinesis, arn)
    if d["ChannelStatus"] != "ACTIVE":
        problems.append(f"still {d['ChannelStatus']} after {secs:.0f}s")
    if d["S3DestinationConfiguration"]["DataFreshnessInSeconds"] != 2:
        problems.append(f"described {d['S3DestinationConfiguration']}")
    ck.check(f"update_channel {LAKE_CHANNEL} DataFreshnessInSeconds 1 -> 2: UPDATING, then "
             f"ACTIVE ({secs:.1f}s) with the new value", problems)


# ---------------------------------------------------------------------------------------------
# Reading the destinations back


def lake_objects(data_dir):
    """{key: bytes} of every file under DATA_DIR/lake (staging files excluded)."""
    root = os.path.join(data_dir, "lake")
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if f.startswith(".tmp-"):
                continue
            full = os.path.join(dirpath, f)
            with open(full, "rb") as fh:
                out[os.path.relpath(full, root).replace(os.sep, "/")] = fh.read()
    return out


def archive_objects(s3, bucket):
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def lake_ids(objects):
    """customerIDs of the NDJSON lines of the .json.gz objects, and problems."""
    ids, problems = collections.Counter(), []
    key_re = re.compile(rf"^telco/\d{{4}}-\d{{2}}-\d{{2}}/{LAKE_CHANNEL}-shardId-\d{{12}}-"
                        r"\d+-\d+\.json\.gz$")
    for key, body in objects.items():
        if not key_re.match(key):
            problems.append(f"unexpected object {key}")
            continue
        for line in gzip.decompress(body).splitlines():
            ids[json.loads(line)["customerID"]] += 1
    return ids, problems


def archive_ids(objects, header):
    ids, problems = collections.Counter(), []
    key_re = re.compile(rf"^archive/{ARCHIVE_CHANNEL}/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/"
                        rf"{ARCHIVE_CHANNEL}-shardId-\d{{12}}-\d+-\d+\.zst$")
    col = header.index("customerID")
    for key, body in objects.items():
        if not key_re.match(key):
            problems.append(f"unexpected object {key}")
            continue
        raw = pyarrow.CompressedInputStream(pyarrow.BufferReader(body), "zstd").read()
        for row in csv.reader(io.StringIO(bytes(raw).decode("utf-8"))):
            ids[row[col]] += 1
    return ids, problems


def exactly_once(ids, data):
    want = set(data.by_id)
    problems = []
    missing = want - set(ids)
    dup = [k for k, n in ids.items() if n > 1]
    extra = set(ids) - want
    if missing:
        problems.append(f"{len(missing)} of {len(want)} rows missing, e.g. {sorted(missing)[:3]}")
    if dup:
        problems.append(f"{len(dup)} rows more than once, e.g. {dup[:3]}")
    if extra:
        problems.append(f"{len(extra)} unknown customerIDs, e.g. {sorted(extra)[:3]}")
    return problems


def wait_delivered(read, data, timeout=DELIVERY_WAIT_SECS):
    """Polls `read()` -> (ids, problems) until every row is there; returns the last result."""
    t0 = time.monotonic()
    while True:
        ids, problems = read()
        if set(ids) >= set(data.by_id) or time.monotonic() - t0 > timeout:
            return ids, problems, time.monotonic() - t0
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------
# Error types


def check_errors(ck, k, arns, moto_bucket):
    """Each operation's AWS error types for bad input (boto3 validation off: `k`)."""
    lake_arn = arns[LAKE_CHANNEL]
    missing_arn = re.sub(r"/[^/]+$", "/no-such-id", lake_arn)
    storage = {"BucketARN": "arn:aws:s3:::lake", "ExpectedBucketOwner": ACCOUNT,
               "CompressionType": "NONE"}
    streams = [{"StreamARN": stream_arn(JSON_STREAM),
                "RecordConfiguration": {"RecordFormatType": "JSON"}}]

    def create(name="bad-input", streams=streams, storage=storage, **extra):
        kw = {"ChannelName": name, "ServiceExecutionRoleARN": ROLE,
              "StreamConfigurationList": streams}
        if storage is not None:
            kw["S3DestinationConfiguration"] = {"StorageConfiguration": storage}
        kw.update(extra)
        return lambda: k.create_channel(**kw)

    tables = {"DeadLetterQueueS3Configuration": {"BucketARN": "arn:aws:s3:::lake",
                                                 "ExpectedBucketOwner": ACCOUNT},
              "S3TablesConfigurationList": [{
                  "TableBucketARN": f"arn:aws:s3tables:{REGION}:{ACCOUNT}:bucket/telco",
                  "Namespace": "churn", "TableName": "rows", "CompressionType": "ZSTD"}]}
    cases = [
        ("CreateChannel, name with a space", create(name="bad name"), "ValidationException"),
        ("CreateChannel, CompressionType LZ4",
         create(storage=dict(storage, CompressionType="LZ4")), "ValidationException"),
        ("CreateChannel, S3 Tables without a GSRSchemaARN",
         create(storage=None, S3TablesDestinationConfiguration=tables),
         "InvalidArgumentException"),
        ("CreateChannel, unmapped bucket",
         create(storage=dict(storage, BucketARN="arn:aws:s3:::not-mapped")),
         "InvalidArgumentException"),
        ("CreateChannel, unknown OutputKeyTemplate placeholder",
         create(storage=dict(storage, OutputKeyTemplate="x/{shard}/")),
         "InvalidArgumentException"),
        ("CreateChannel, PROVISIONED stream",
         create(streams=[dict(streams[0], StreamARN=stream_arn("telco-provisioned"))]),
         "InvalidArgumentException"),
        ("CreateChannel, unknown stream",
         create(streams=[dict(streams[0], StreamARN=stream_arn("no-such-stream"))]),
         "ResourceNotFoundException"),
        ("CreateChannel, a name in use", create(name=LAKE_CHANNEL), "ResourceInUseException"),
        ("DescribeChannel, not a channel ARN",
         lambda: k.describe_channel(ChannelARN=f"arn:aws:s3:::{moto_bucket}"),
         "ValidationException"),
        ("DescribeChannel, unknown channel", lambda: k.describe_channel(ChannelARN=missing_arn),
         "ResourceNotFoundException"),
        ("ListChannels, MaxResults 0", lambda: k.list_channels(MaxResults=0),
         "ValidationException"),
        ("ListChannels, a NextToken it never issued",
         lambda: k.list_channels(NextToken="bm90IGEgdG9rZW4"), "InvalidArgumentException"),
        ("UpdateChannel, no ChannelARN",
         lambda: k.update_channel(S3DestinationConfiguration={"DataFreshnessInSeconds": 5}),
         "ValidationException"),
        ("UpdateChannel, S3 Tables settings on an S3 channel",
         lambda: k.update_channel(ChannelARN=lake_arn, S3TablesDestinationConfiguration={
             "DataFreshnessInSeconds": 5}), "InvalidArgumentException"),
        ("UpdateChannel, unknown channel",
         lambda: k.update_channel(ChannelARN=missing_arn, S3DestinationConfiguration={
             "DataFreshnessInSeconds": 5}), "ResourceNotFoundException"),
        ("DeleteChannel, ChannelARN too long",
         lambda: k.delete_channel(ChannelARN="arn:aws:kinesis:" + "x" * 2100),
         "ValidationException"),
        ("DeleteChannel, unknown channel", lambda: k.delete_channel(ChannelARN=missing_arn),
         "ResourceNotFoundException"),
        ("DeleteStream of a stream with a channel",
         lambda: k.delete_stream(StreamName=JSON_STREAM), "ResourceInUseException"),
    ]
    for what, call, want in cases:
        got = error_of(call)
        ck.check(f"errors: {what} -> {want}", [] if got == want else [f"got {got or 'success'}"])


# ---------------------------------------------------------------------------------------------


def admin_url(log_path):
    with open(log_path, "rb") as f:
        m = re.search(rb"admin=(http://[0-9.]+:[0-9]+)", f.read())
    return m.group(1).decode() if m else None


def check_status(ck, log_path):
    problems = []
    url = admin_url(log_path)
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{url}/status", timeout=5) as r:
            status = json.loads(r.read())
        channels = {c["name"]: c for c in status.get("channels", [])}
        for name in (LAKE_CHANNEL, ARCHIVE_CHANNEL):
            c = channels.get(name)
            if c is None or c.get("status") != "ACTIVE" or c.get("freshness_ms") is None:
                problems.append(f"{name}: {c}")
    except (OSError, ValueError, TypeError) as exc:
        problems.append(f"GET {url}/status: {exc}")
    ck.check("/status lists both channels ACTIVE with their lag (freshness_ms)", problems)


def start_moto(ck, procs, tmp, env):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = os.path.join(tmp, "moto.log")
    moto = procs.start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                "-p", str(port)], log, env)
    problem = wait_http(endpoint + "/", 30)
    if problem is None and moto.poll() is not None:
        problem = f"moto exited with status {moto.returncode}"
    if not ck.check(f"moto server answers on {endpoint}",
                    [problem] + log_tail(log) if problem else []):
        raise Abort("no S3 server")
    return endpoint


def write_config(tmp, endpoint, bucket, name="channels.toml", archive=True):
    """The config of `up`; without `archive`, bucket archive is not mapped."""
    path = os.path.join(tmp, name)
    mapping = f'archive = "s3://{bucket}/archive"' if archive else ""
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"""# written by tests/compat/channel_flows.py
[lake]
s3_endpoint_url = "{endpoint}"
s3_path_style = true

# Bucket `lake` is not mapped: it is the data dir's own lake.
[buckets]
{mapping}
""")
    return path


def check_unmapped(ck, procs, args, env, data_dir, log, config, arns):
    """`up` with a config that no longer maps bucket archive: that channel FAILED with the
    reason, the other ACTIVE."""
    try:
        up, url = start_up(procs, args.millrace, data_dir, log, env, config=config)
    except StartError as exc:
        ck.check("millrace up starts without the archive mapping", exc.problems)
        raise Abort("no restart")
    kinesis = client("kinesis", url)
    problems = []
    lake, _ = wait_active(kinesis, arns[LAKE_CHANNEL])
    if lake["ChannelStatus"] != "ACTIVE":
        problems.append(f"{LAKE_CHANNEL}: {lake['ChannelStatus']}")
    t0 = time.monotonic()
    while True:
        d = kinesis.describe_channel(ChannelARN=arns[ARCHIVE_CHANNEL])["ChannelDescription"]
        if d["ChannelStatus"] == "FAILED" or time.monotonic() - t0 > ACTIVE_WAIT_SECS:
            break
        time.sleep(0.2)
    reason = d.get("ChannelStatusReason") or ""
    if d["ChannelStatus"] != "FAILED" or "buckets.archive" not in reason:
        problems.append(f"{ARCHIVE_CHANNEL}: {d['ChannelStatus']} ({reason!r})")
    summaries = {c["ChannelName"]: c for c in kinesis.list_channels()["ChannelSummaries"]}
    if summaries.get(ARCHIVE_CHANNEL, {}).get("ChannelStatusReason") != reason:
        problems.append(f"ListChannels: {summaries.get(ARCHIVE_CHANNEL)}")
    ck.check(f"up without [buckets] archive: {ARCHIVE_CHANNEL} FAILED with a reason naming "
             f"buckets.archive ({reason[:60]}...), {LAKE_CHANNEL} ACTIVE", problems)
    ck.check("SIGTERM stops millrace up with status 0 (without the mapping)",
             stop_up(procs, up, log))


def make_streams(ck, kinesis):
    problems = []
    for name in (JSON_STREAM, CSV_STREAM):
        kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    kinesis.create_stream(StreamName="telco-provisioned", ShardCount=1)
    for name in (JSON_STREAM, CSV_STREAM, "telco-provisioned"):
        kinesis.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ck.check(f"ON_DEMAND streams {JSON_STREAM} and {CSV_STREAM} (and a PROVISIONED one)",
             problems)


def check_delivered(ck, label, data_dir, s3, bucket, data):
    """Both destinations hold every row exactly once; returns the objects read."""
    lake = {}

    def read_lake():
        lake.clear()
        lake.update(lake_objects(data_dir))
        return lake_ids({k: v for k, v in lake.items() if not k.startswith("errors/")})

    ids, problems, secs = wait_delivered(read_lake, data)
    errors = [k for k in lake if k.startswith("errors/")]
    ck.check(f"{label}: {LAKE_CHANNEL} (JSON, GZIP, bucket lake = DATA_DIR/lake): every row "
             f"exactly once in telco/DATE/*.json.gz ({secs:.1f}s), no error objects",
             problems + exactly_once(ids, data) + [f"error objects: {errors[:3]}"] * bool(errors))
    archive = {}

    def read_archive():
        archive.clear()
        archive.update(archive_objects(s3, bucket))
        return archive_ids({k: v for k, v in archive.items()
                            if not k.startswith("archive/errors/")}, data.header)

    ids, problems, secs = wait_delivered(read_archive, data)
    errors = [k for k in archive if k.startswith("archive/errors/")]
    ck.check(f"{label}: {ARCHIVE_CHANNEL} (STRING, ZSTD, bucket archive = moto "
             f"s3://{bucket}/archive): every row exactly once in "
             f"{ARCHIVE_CHANNEL}/YYYY/MM/DD/HH/*.zst ({secs:.1f}s)",
             problems + exactly_once(ids, data) + [f"error objects: {errors[:3]}"] * bool(errors))
    return dict(lake), dict(archive)


def run_flow(ck, args, data, tmp, procs, env):
    endpoint = start_moto(ck, procs, tmp, env)
    s3 = client("s3", endpoint)
    bucket = f"millrace-channels-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    config = write_config(tmp, endpoint, bucket)
    data_dir = os.path.join(tmp, "data")
    log = os.path.join(tmp, "up.log")
    try:
        up, url = start_up(procs, args.millrace, data_dir, log, env, config=config)
    except StartError as exc:
        ck.check("millrace up -c channels.toml starts", exc.problems)
        raise Abort("millrace up did not start")
    note(f"millrace up at {url}, moto S3 at {endpoint}, bucket {bucket}")
    kinesis = client("kinesis", url)
    make_streams(ck, kinesis)
    third = len(data.rows) // 3
    put_part(ck, kinesis, data, data.rows[:third], "before the channels")
    arns = {}
    for name, want in ((LAKE_CHANNEL, (JSON_STREAM, "lake", "JSON", "GZIP", LAKE_TEMPLATE)),
                       (ARCHIVE_CHANNEL, (CSV_STREAM, "archive", "STRING", "ZSTD", None))):
        stream, bucket_name, fmt, compression, template = want
        created = create_channel(kinesis, name, stream, bucket_name, fmt, compression, template)
        arns[name] = created["ChannelARN"]
        check_created(ck, kinesis, created, want)
    check_list(ck, kinesis, arns)
    put_part(ck, kinesis, data, data.rows[third:2 * third], "with the channels running")
    check_update(ck, kinesis, arns[LAKE_CHANNEL])
    put_part(ck, kinesis, data, data.rows[2 * third:], "after the update")
    lake, archive = check_delivered(ck, "delivered", data_dir, s3, bucket, data)
    check_status(ck, log)

    ck.check("SIGTERM stops millrace up with status 0", stop_up(procs, up, log))
    unmapped = write_config(tmp, endpoint, bucket, "unmapped.toml", archive=False)
    check_unmapped(ck, procs, args, env, data_dir, log + ".unmapped", unmapped, arns)
    try:
        up, url = start_up(procs, args.millrace, data_dir, log + ".2", env, config=config)
    except StartError as exc:
        ck.check("millrace up starts again on the same data dir", exc.problems)
        raise Abort("no restart")
    kinesis = client("kinesis", url)
    problems = []
    for name, arn in arns.items():
        d, secs = wait_active(kinesis, arn)
        if d["ChannelStatus"] != "ACTIVE":
            problems.append(f"{name}: {d['ChannelStatus']} after {secs:.0f}s")
    fresh = kinesis.describe_channel(ChannelARN=arns[LAKE_CHANNEL])["ChannelDescription"]
    if fresh["S3DestinationConfiguration"]["DataFreshnessInSeconds"] != 2:
        problems.append("the update was lost")
    time.sleep(3)  # longer than either freshness: a replay would have written by now
    if lake_objects(data_dir) != lake or archive_objects(s3, bucket) != archive:
        problems.append("objects changed after the restart")
    ck.check("after a restart of millrace up: both channels ACTIVE again, the update kept, "
             "no object written again", problems)

    check_errors(ck, client("kinesis", url, validate=False), arns, bucket)

    problems = []
    for name, arn in arns.items():
        kinesis.delete_channel(ChannelARN=arn)
        if error_of(lambda: kinesis.describe_channel(ChannelARN=arn)) != \
                "ResourceNotFoundException":
            problems.append(f"{name} still described")
    if kinesis.list_channels()["ChannelSummaries"]:
        problems.append("ListChannels not empty")
    for stream in (JSON_STREAM, CSV_STREAM):
        got = error_of(lambda: kinesis.delete_stream(StreamName=stream))
        if got:
            problems.append(f"delete_stream {stream}: {got}")
    ids, _ = lake_ids({k: v for k, v in lake_objects(data_dir).items()
                       if not k.startswith("errors/")})
    if set(ids) != set(data.by_id):
        problems.append("delivered objects gone from the lake")
    ck.check("delete_channel of both: gone from Describe and List, their streams can be "
             "deleted, delivered objects stay", problems)
    ck.check("SIGTERM stops millrace up with status 0 (after the restart)",
             stop_up(procs, up, log + ".2"))


def main(argv):
    return run_csv_flow(argv, __doc__, "channel", SUMMARY_PREFIX, run_flow)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
