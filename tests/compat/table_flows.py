#!/usr/bin/env python3
"""Table flows: Kinesis channels into S3 Tables (Apache Iceberg), driven with boto3 against
`millrace up` and read back with pyiceberg.

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/table_flows.py --millrace target/debug/millrace \
        --csv ../shared/data/telco-customer-churn.csv

Every process it starts (millrace up) runs in its own process group on 127.0.0.1 and is killed
at the end, also on failure. Scratch files live in one temporary directory, removed at the end
(--keep-tmp keeps it).

The flow:
 1. `millrace up -c tables.toml` whose [table_buckets] maps table bucket `telco` to the folder
    DATA_DIR/tables and whose [schemas] maps a Glue schema ARN to a JSON Schema of the Telco
    rows (event_time a date-time, tenure and SeniorCitizen integers, the charges numbers).
 2. Bad CreateChannel requests get InvalidArgumentException naming what to fix: an unmapped
    table bucket (table_buckets.NAME), an unknown schema (schemas."ARN"), no GSRSchemaARN, a
    STRING stream.
 3. An ON_DEMAND stream and channel `telco-table`: GSR_JSON records (the Glue Schema Registry's
    18-byte header before the JSON, every other record zlib-compressed as GSR producers do)
    into table `churn.customers`, SNAPPY, partitioned by TIME_HOUR(event_time), dead letters
    into bucket `lake` under `table-errors/`. CREATING, then ACTIVE; DescribeChannel echoes the
    table, the partition spec, the schema ARN; ListChannels says S3_TABLES.
 4. Half of the CSV rows, plus two records that cannot be rows (no GSR header; not JSON). The
    table (pyiceberg StaticTable on DATA_DIR/tables/churn/customers) holds every row exactly
    once except the rows whose TotalCharges is blank (not a number): those, and the two bad
    records, are error objects under table-errors/ with Firehose's error codes. The table's
    schema, hour partition, SNAPPY Parquet files and per-shard marks in the snapshot summary.
 5. The other half in three parts, each followed by kill -9 of `up` at a random point (often
    while it delivers) and `up` again on the same data dir: every good row exactly once (no
    row lost, none twice).
 6. UpdateChannel through S3TablesDestinationConfiguration (UPDATING, ACTIVE, described);
    through S3DestinationConfiguration: InvalidArgumentException.
 7. SIGTERM and a restart: no new snapshot (nothing written twice); DeleteChannel: gone, the
    table stays readable; `up` exits 0 on SIGTERM.

Output: "ok - ..." / "FAIL - ..." lines, "# ..." notes, and last the line
"table flows: N passed, M failed"; exit status 1 when M > 0.
"""

import base64
import collections
import json
import os
import random
import sys
import time
import uuid
import zlib

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    import pyarrow.parquet as pq
    from pyiceberg.table import StaticTable
    from flowkit import Checks, err_text, error_code, note
    from delivery_flows import Abort, StartError, run_csv_flow, start_up, stop_up
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"table_flows.py: cannot import a dependency ({exc}); "
        "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n"
    )
    print("table flows: 0 passed, 1 failed")
    sys.exit(1)

SUMMARY_PREFIX = "table flows"
REGION = "us-east-1"
ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/millrace-tables"
SCHEMA_ARN = f"arn:aws:glue:{REGION}:{ACCOUNT}:schema/telco/customers"
TABLE_BUCKET_ARN = f"arn:aws:s3tables:{REGION}:{ACCOUNT}:bucket/telco"
STREAM, CHANNEL = "telco-gsr", "telco-table"
NAMESPACE, TABLE = "churn", "customers"
ERROR_PREFIX = "table-errors/"
PUT_BATCH = 500
ACTIVE_WAIT_SECS = 15.0
KILLS = 3
DELIVERY_WAIT_SECS = 90.0
INTEGERS = ("SeniorCitizen", "tenure")
NUMBERS = ("MonthlyCharges", "TotalCharges")


def client(endpoint_url, validate=True):
    config = Config(region_name=REGION, retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=5, read_timeout=60, parameter_validation=validate)
    return boto3.session.Session().client(
        "kinesis", endpoint_url=endpoint_url, region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing", config=config)


def stream_arn(name):
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


# ---------------------------------------------------------------------------------------------
# Schema, config, records


def json_schema(header):
    props = {"event_time": {"type": "string", "format": "date-time"}}
    for h in header:
        if h in INTEGERS:
            props[h] = {"type": "integer"}
        elif h in NUMBERS:
            props[h] = {"type": ["number", "null"]}
        else:
            props[h] = {"type": "string"}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": props, "required": ["event_time", "customerID"]}


def write_config(tmp, header):
    schema = os.path.join(tmp, "customers.schema.json")
    with open(schema, "w", encoding="utf-8") as f:
        json.dump(json_schema(header), f, indent=1)
    path = os.path.join(tmp, "tables.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"""# written by tests/compat/table_flows.py
[table_buckets]
telco = "tables"

[schemas]
"{SCHEMA_ARN}" = "customers.schema.json"
""")
    return path


SCHEMA_VERSION = uuid.uuid4().bytes


def gsr_record(row, n):
    """The row as GSR producers send it: header version 3, compression 0 or 5 (zlib), the
    schema version's UUID, then the JSON."""
    body = dict(row, event_time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    payload = json.dumps(body).encode("utf-8")
    if n % 2:
        return bytes([3, 5]) + SCHEMA_VERSION + zlib.compress(payload)
    return bytes([3, 0]) + SCHEMA_VERSION + payload


def good(row):
    try:
        float(row["TotalCharges"])
        return True
    except ValueError:
        return False


def put(kinesis, entries):
    """put_records in batches; returns problems."""
    problems = []
    for start in range(0, len(entries), PUT_BATCH):
        try:
            resp = kinesis.put_records(StreamName=STREAM, Records=entries[start:start + PUT_BATCH])
        except (ClientError, BotoCoreError) as exc:
            return [f"records {start}..: {err_text(exc)}"]
        if resp.get("FailedRecordCount") != 0:
            problems.append(f"records {start}..: FailedRecordCount {resp['FailedRecordCount']}")
    return problems


def row_entries(rows, offset):
    return [{"Data": gsr_record(r, offset + i), "PartitionKey": r["customerID"]}
            for i, r in enumerate(rows)]


# ---------------------------------------------------------------------------------------------
# Reading the table and the dead letters back


def table_dir(data_dir):
    return os.path.join(data_dir, "tables", NAMESPACE, TABLE)


def load_table(data_dir):
    return StaticTable.from_metadata(table_dir(data_dir))


def table_ids(data_dir):
    """customerID -> count in the table's current snapshot (empty before the first one)."""
    if not os.path.exists(os.path.join(table_dir(data_dir), "metadata", "version-hint.text")):
        return collections.Counter()
    t = load_table(data_dir)
    if t.current_snapshot() is None:
        return collections.Counter()
    ids = t.scan(selected_fields=("customerID",)).to_arrow().column("customerID").to_pylist()
    return collections.Counter(ids)


def dead_letters(data_dir):
    """(errorCode, raw record) of every error object under table-errors/ in the lake."""
    root = os.path.join(data_dir, "lake", ERROR_PREFIX)
    out = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith("."):
                continue
            with open(os.path.join(folder, name), "rb") as f:
                for line in f.read().splitlines():
                    e = json.loads(line)
                    out.append((e["errorCode"], base64.b64decode(e["rawData"])))
    return out


def decoded_id(raw):
    """The customerID inside a GSR record ('' when it is not one)."""
    if len(raw) < 18 or raw[0] != 3:
        return ""
    body = zlib.decompress(raw[18:]) if raw[1] == 5 else raw[18:]
    try:
        return json.loads(body).get("customerID", "")
    except ValueError:
        return ""


def wait_rows(data_dir, want_ids):
    """Polls the table until it holds every id of `want_ids`; returns (counts, secs)."""
    t0 = time.monotonic()
    while True:
        counts = table_ids(data_dir)
        if set(want_ids) <= set(counts) or time.monotonic() - t0 > DELIVERY_WAIT_SECS:
            return counts, time.monotonic() - t0
        time.sleep(0.5)


def exactly_once(counts, want_ids):
    problems = []
    missing = sorted(set(want_ids) - set(counts))
    if missing:
        problems.append(f"{len(missing)} rows missing, e.g. {missing[:3]}")
    twice = sorted(i for i, n in counts.items() if n > 1)
    if twice:
        problems.append(f"{len(twice)} rows more than once, e.g. {twice[:3]}")
    extra = sorted(set(counts) - set(want_ids))
    if extra:
        problems.append(f"{len(extra)} rows that should not be there, e.g. {extra[:3]}")
    return problems


# ---------------------------------------------------------------------------------------------
# Channel operations


def tables_config(bucket_arn=TABLE_BUCKET_ARN, freshness=1):
    return {
        "DataFreshnessInSeconds": freshness,
        "DeadLetterQueueS3Configuration": {"BucketARN": "arn:aws:s3:::lake",
                                           "ExpectedBucketOwner": ACCOUNT,
                                           "ErrorOutputPrefix": ERROR_PREFIX},
        "S3TablesConfigurationList": [{
            "TableBucketARN": bucket_arn, "Namespace": NAMESPACE, "TableName": TABLE,
            "CompressionType": "SNAPPY",
            "PartitionSpec": {"PartitionFields": [{"Transform": "TIME_HOUR",
                                                   "SourceName": "event_time"}]}}]}


def create_request(fmt="GSR_JSON", schema=SCHEMA_ARN, bucket_arn=TABLE_BUCKET_ARN,
                   name=CHANNEL):
    record = {"RecordFormatType": fmt}
    if schema:
        record["GSRSchemaARN"] = schema
    return {"ChannelName": name, "ServiceExecutionRoleARN": ROLE,
            "StreamConfigurationList": [{"StreamARN": stream_arn(STREAM),
                                         "RecordConfiguration": record}],
            "S3TablesDestinationConfiguration": tables_config(bucket_arn)}


def check_refusals(ck, kinesis):
    other_schema = SCHEMA_ARN.replace("customers", "orders")
    cases = [
        ("an unmapped table bucket", create_request(
            bucket_arn=TABLE_BUCKET_ARN.replace("telco", "sales")), "table_buckets.sales"),
        ("an unknown schema", create_request(schema=other_schema), f'schemas."{other_schema}"'),
        ("no GSRSchemaARN", create_request(schema=None), "GSRSchemaARN is required"),
        ("a STRING stream", create_request(fmt="STRING"), "JSON or GSR_JSON"),
    ]
    for what, request, says in cases:
        try:
            kinesis.create_channel(**request)
            problems = ["the call succeeded"]
        except ClientError as exc:
            code, message = error_code(exc), exc.response["Error"].get("Message", "")
            problems = [] if code == "InvalidArgumentException" and says in message else \
                [f"{code}: {message}"]
        ck.check(f"create_channel with {what}: InvalidArgumentException naming {says!r}",
                 problems)


def wait_active(kinesis, arn, timeout=ACTIVE_WAIT_SECS):
    t0 = time.monotonic()
    while True:
        d = kinesis.describe_channel(ChannelARN=arn)["ChannelDescription"]
        if d["ChannelStatus"] == "ACTIVE" or time.monotonic() - t0 > timeout:
            return d, time.monotonic() - t0
        time.sleep(0.2)


def check_created(ck, kinesis):
    created = kinesis.create_channel(**create_request())["ChannelDescription"]
    problems = []
    if created.get("ChannelStatus") != "CREATING":
        problems.append(f"CreateChannel answered {created.get('ChannelStatus')}")
    d, secs = wait_active(kinesis, created["ChannelARN"])
    if d["ChannelStatus"] != "ACTIVE":
        problems.append(f"{d['ChannelStatus']} after {secs:.0f}s: {d.get('ChannelStatusReason')}")
    if "S3DestinationConfiguration" in d:
        problems.append("an S3DestinationConfiguration is described")
    t = d.get("S3TablesDestinationConfiguration", {})
    want = tables_config()
    if t != want:
        problems.append(f"described {t}, want {want}")
    record = d["StreamConfigurationList"][0]["RecordConfiguration"]
    if record != {"RecordFormatType": "GSR_JSON", "GSRSchemaARN": SCHEMA_ARN}:
        problems.append(f"RecordConfiguration {record}")
    listed = kinesis.list_channels()["ChannelSummaries"]
    if [(c["ChannelName"], c.get("ChannelDestinationType")) for c in listed] != \
            [(CHANNEL, "S3_TABLES")]:
        problems.append(f"ListChannels {listed}")
    ck.check(f"create_channel {CHANNEL} (GSR_JSON into {NAMESPACE}.{TABLE}, SNAPPY, "
             f"TIME_HOUR(event_time)): CREATING, ACTIVE in {secs:.1f}s, described back, "
             "listed as S3_TABLES", problems)
    return created["ChannelARN"]


def check_table_shape(ck, data_dir):
    problems = []
    t = load_table(data_dir)
    types = {f.name: str(f.field_type) for f in t.schema().fields}
    want = {"event_time": "timestamptz", "customerID": "string", "tenure": "long",
            "SeniorCitizen": "long", "MonthlyCharges": "double", "TotalCharges": "double",
            "Churn": "string"}
    for name, ty in want.items():
        if types.get(name) != ty:
            problems.append(f"column {name}: {types.get(name)}, want {ty}")
    required = {f.name for f in t.schema().fields if f.required}
    if required != {"event_time", "customerID"}:
        problems.append(f"required columns {sorted(required)}")
    fields = [(f.name, str(f.transform)) for f in t.spec().fields]
    if fields != [("event_time_hour", "hour")]:
        problems.append(f"partition spec {fields}")
    summary = t.current_snapshot().summary.additional_properties
    marks = {k: v for k, v in summary.items() if k.startswith("millrace.shard.")}
    if not marks:
        problems.append(f"no millrace.shard.* marks in the snapshot summary {summary}")
    codecs = set()
    for task in t.scan().plan_files():
        path = task.file.file_path.removeprefix("file://")
        meta = pq.ParquetFile(path).metadata
        for rg in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                codecs.add(meta.row_group(rg).column(c).compression)
    if codecs != {"SNAPPY"}:
        problems.append(f"Parquet codecs {codecs}")
    ck.check("the table's schema (long, double, timestamptz; customerID and event_time "
             f"required), hour partition, SNAPPY data files, marks for {len(marks)} shards",
             problems)


def check_dead_letters(ck, data_dir, label, want_ids, want_bad):
    letters = dead_letters(data_dir)
    by_code = collections.defaultdict(list)
    for code, raw in letters:
        by_code[code].append(raw)
    problems = []
    ids = {decoded_id(raw) for raw in by_code.get("format-conversion-failed", [])}
    if ids != set(want_ids):
        problems.append(f"format-conversion-failed rows {sorted(ids)[:5]}, want "
                        f"{sorted(want_ids)[:5]} ({len(ids)} / {len(want_ids)})")
    for code, raw in want_bad:
        if raw not in by_code.get(code, []):
            problems.append(f"no {code} error for {raw[:30]!r}")
    ck.check(f"{label}: error objects under {ERROR_PREFIX} hold the {len(want_ids)} rows with "
             "a blank TotalCharges (format-conversion-failed) and the bad records "
             "(invalid-gsr-record, invalid-json)", problems)


def snapshot_ids(data_dir):
    return [s.snapshot_id for s in load_table(data_dir).snapshots()]


# ---------------------------------------------------------------------------------------------
# The flow


def start(ck, procs, args, data_dir, log, env, config, what):
    try:
        return start_up(procs, args.millrace, data_dir, log, env, config=config)
    except StartError as exc:
        ck.check(f"millrace up starts ({what})", exc.problems)
        raise Abort("millrace up did not start")


def run_flow(ck, args, data, tmp, procs, env):
    config = write_config(tmp, data.header)
    data_dir = os.path.join(tmp, "data")
    log = os.path.join(tmp, "up.log")
    up, url = start(ck, procs, args, data_dir, log, env, config, "first")
    note(f"millrace up at {url}")
    kinesis = client(url)
    kinesis.create_stream(StreamName=STREAM, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    kinesis.get_waiter("stream_exists").wait(StreamName=STREAM,
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    check_refusals(ck, kinesis)
    arn = check_created(ck, kinesis)

    half = len(data.rows) // 2
    first, second = data.rows[:half], data.rows[half:]
    bad = [("invalid-gsr-record", b'{"customerID": "no-header"}'),
           ("invalid-json", bytes([3, 0]) + SCHEMA_VERSION + b"not json at all")]
    problems = put(kinesis, row_entries(first, 0) +
                   [{"Data": raw, "PartitionKey": "bad"} for _, raw in bad])
    ck.check(f"put_records of {len(first)} GSR_JSON rows and {len(bad)} bad records", problems)
    want = [r["customerID"] for r in first if good(r)]
    counts, secs = wait_rows(data_dir, want)
    ck.check(f"first half: {len(want)} rows read back by pyiceberg exactly once ({secs:.1f}s)",
             exactly_once(counts, want))
    blank = [r["customerID"] for r in first if not good(r)]
    check_dead_letters(ck, data_dir, "first half", blank, bad)
    check_table_shape(ck, data_dir)

    problems = []
    kills = []
    step = len(second) // KILLS + 1
    for k in range(KILLS):
        chunk = second[k * step:(k + 1) * step]
        problems += put(kinesis, row_entries(chunk, half + k * step))
        time.sleep(random.uniform(0.0, 1.5))
        procs.kill(up)
        kills.append(sum(table_ids(data_dir).values()))
        up, url = start(ck, procs, args, data_dir, f"{log}.kill{k}", env, config,
                        f"after kill -9 #{k + 1}")
        kinesis = client(url)
    note(f"rows in the table at each kill -9: {kills}")
    want_all = [r["customerID"] for r in data.rows if good(r)]
    counts, secs = wait_rows(data_dir, want_all)
    ck.check(f"the second half in {KILLS} parts, each followed by kill -9 of up at a random "
             f"point and a restart: all {len(want_all)} good rows exactly once "
             f"({secs:.1f}s)", problems + exactly_once(counts, want_all))
    check_dead_letters(ck, data_dir, "after the restart",
                       [r["customerID"] for r in data.rows if not good(r)], bad)

    problems = []
    d = kinesis.update_channel(ChannelARN=arn, S3TablesDestinationConfiguration={
        "DataFreshnessInSeconds": 2})["ChannelDescription"]
    if d["ChannelStatus"] != "UPDATING":
        problems.append(f"UpdateChannel answered {d['ChannelStatus']}")
    d, secs = wait_active(kinesis, arn)
    fresh = d.get("S3TablesDestinationConfiguration", {}).get("DataFreshnessInSeconds")
    if d["ChannelStatus"] != "ACTIVE" or fresh != 2:
        problems.append(f"{d['ChannelStatus']}, freshness {fresh}")
    try:
        client(url, validate=False).update_channel(
            ChannelARN=arn, S3DestinationConfiguration={"DataFreshnessInSeconds": 5})
        problems.append("S3DestinationConfiguration update accepted")
    except ClientError as exc:
        if error_code(exc) != "InvalidArgumentException":
            problems.append(f"S3DestinationConfiguration update: {err_text(exc)}")
    ck.check("update_channel through S3TablesDestinationConfiguration: UPDATING, ACTIVE with "
             "freshness 2; through S3DestinationConfiguration: InvalidArgumentException",
             problems)

    ck.check("SIGTERM stops millrace up with status 0",
             stop_up(procs, up, f"{log}.kill{KILLS - 1}"))
    snapshots = snapshot_ids(data_dir)
    up, url = start(ck, procs, args, data_dir, log + ".3", env, config, "third")
    kinesis = client(url)
    d, _ = wait_active(kinesis, arn)
    time.sleep(3)  # longer than the freshness: a replay would have committed by now
    problems = [] if d["ChannelStatus"] == "ACTIVE" else [f"{d['ChannelStatus']}"]
    if snapshot_ids(data_dir) != snapshots:
        problems.append(f"snapshots {len(snapshots)} -> {len(snapshot_ids(data_dir))}")
    problems += exactly_once(table_ids(data_dir), want_all)
    ck.check(f"after a clean restart: ACTIVE, no new snapshot ({len(snapshots)} in all), "
             "every row still once", problems)

    problems = []
    kinesis.delete_channel(ChannelARN=arn)
    try:
        kinesis.describe_channel(ChannelARN=arn)
        problems.append("still described")
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            problems.append(err_text(exc))
    if sum(table_ids(data_dir).values()) != len(want_all):
        problems.append("the table changed")
    ck.check("delete_channel: gone (ResourceNotFoundException), the table stays readable",
             problems)
    ck.check("SIGTERM stops millrace up with status 0 (at the end)",
             stop_up(procs, up, log + ".3"))


def main(argv):
    return run_csv_flow(argv, __doc__, "table", SUMMARY_PREFIX, run_flow)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
