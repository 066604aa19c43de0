#!/usr/bin/env python3
"""Delivery flows: millrace's Firehose-style delivery checked end to end with real clients.

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/delivery_flows.py --millrace target/debug/millrace \
        --csv ../shared/data/telco-customer-churn.csv [--kinesalite-url http://127.0.0.1:4567]

Every process the script starts (moto, millrace up, millrace deliver) runs in its own process
group on 127.0.0.1 and is killed at the end, also on failure or SIGINT/SIGTERM. Scratch files
live in one temporary directory, removed at the end (--keep-tmp keeps it).

Flows (each one independent of the others; a failure in one does not skip the next):

 1. S3 lake through a real S3 API server. moto's server mode on a free port, a bucket made
    with boto3, `millrace up -c millrace.toml` with a 4-shard [[stream]] and a [[delivery]]
    into s3://BUCKET/lake (buffer_interval_secs = 1, partitioning contract = ".Contract",
    [lake] s3_endpoint_url + s3_path_style). Every CSV row goes in with boto3 put_records
    (json.dumps of the row's strings, partition key customerID, 500 a call), then the bucket
    is listed (list_objects_v2, paginated) until every record is there or 60 s pass.
    Checks: FailedRecordCount 0; each record exactly once, byte-identical; every key is
    lake/raw/<stream>/<Contract>/YYYY/MM/DD/HH/<delivery>-<shardId>-<firstSeq>-<lastSeq>.json,
    with the hour of the record's arrival, the shard and sequence range put_records returned
    for its records, lines in sequence order; the three Contract partitions with the counts
    computed from the CSV, every line in a partition carrying that Contract; nothing under
    lake/errors/ and nothing else in the bucket; SIGTERM stops `up` with status 0 within 10 s.
 2. Parquet read back with pyarrow. A fresh `millrace up`, a 2-shard stream with every row,
    then `millrace deliver --format parquet --compression zstd --schema ... --until-caught-up`
    through the Kinesis API into a local lake. Checks: exit 0 with every record reported;
    object names and per-object shard/sequence ranges; zstd column chunks; 7,043 rows with
    unique customerIDs equal to the CSV's; column types (string, int64, double); sums of
    tenure and MonthlyCharges equal to the CSV's (1e-6); TotalCharges null exactly for the 11
    blank strings; every row's values equal to the CSV's. A second run with the same
    --data-dir delivers nothing new (checkpoints). Then an inferred-schema run (no --schema,
    snappy) into another lake: every column a string, every row equal to the CSV row.
 3. Standalone delivery against kinesalite (only with --kinesalite-url): a 2-shard stream on
    kinesalite, 1,000 rows with put_records, `millrace deliver --buffer-interval 1
    --until-caught-up` into a local lake. Checks: exit 0; each record exactly once, NDJSON
    lines byte-identical; object names match the shards and (56-digit) sequence ranges.
 4. Deliveries on several machines: two live `millrace deliver --name churn-raw --leases
    s3://B/leases --lease-time 3s` with their own data dirs share a 4-shard stream of `up`
    through shard leases on moto, into one lake s3://B/lake. Checks: both take shards; every
    row put (one delivery is killed with SIGKILL after 2,000) is in the lake exactly once,
    byte-identical, under the layout and names of flow 3.

Output: "ok - ..." / "FAIL - ..." lines, "# ..." notes, and last the line
"delivery flows: N passed, M failed"; exit status 1 when M > 0.

Real-service behaviour relied on, and kinesalite deviations (none is encoded as an
expectation of millrace):
  * kinesalite 3.3.3 always answers MillisBehindLatest = 0 and pages GetRecords at 10,000
    records. millrace deliver --until-caught-up treats a page with MillisBehindLatest = 0 as
    the end of the shard, which is right for Kinesis (and millrace) but would stop early on
    a kinesalite shard holding more than 10,000 records; flow 3 stays far below that.
  * kinesalite sequence numbers are 56-digit decimal strings; they are compared as integers.
  * moto accepts any credentials; the script sets dummy AWS_* variables for itself and for
    millrace, and clears AWS_PROFILE / AWS_ENDPOINT_URL* / proxy settings for loopback.
"""

import argparse
import collections
import csv
import datetime
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    from flowkit import Checks, err_text, free_port, note, wait_http
    import pyarrow
    import pyarrow.parquet as pq
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"delivery_flows.py: cannot import a dependency ({exc}); "
        "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n"
    )
    print("delivery flows: 0 passed, 1 failed")
    sys.exit(1)

SUMMARY_PREFIX = "delivery flows"
REGION = "us-east-1"
PUT_BATCH = 500
S3_WAIT_SECS = 60.0
DELIVER_TIMEOUT_SECS = 90.0
STOP_TIMEOUT_SECS = 10.0
PARQUET_SCHEMA = ("customerID:string,tenure:int64,MonthlyCharges:float64,"
                  "TotalCharges:float64,Churn:string")


class Abort(Exception):
    """A step failed that the rest of the flow depends on (already reported)."""


def log_tail(path, lines=15):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return [f"(no log at {path}: {exc})"]
    tail = text.splitlines()[-lines:]
    return [f"log {path} (last {len(tail)} lines):"] + [f"  | {t}" for t in tail]


# ---------------------------------------------------------------------------------------------
# Processes


class Procs:
    """Every child runs in its own session (process group); cleanup() kills the groups."""

    def __init__(self):
        self.children = []

    def start(self, name, argv, log_path, env):
        with open(log_path, "wb") as log:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.children.append((name, p))
        return p

    def run(self, name, argv, log_path, env, timeout):
        """Runs argv to completion (stdout and stderr to log_path). Returns (rc, secs);
        rc is None when it was killed after `timeout` seconds."""
        t0 = time.monotonic()
        p = self.start(name, argv, log_path, env)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(p)
            rc = None
        return rc, time.monotonic() - t0

    @staticmethod
    def kill(p):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def cleanup(self):
        for _name, p in reversed(self.children):
            self.kill(p)
        self.children = []


def child_env():
    """Dummy credentials, a region, and nothing that could send loopback traffic elsewhere."""
    env = dict(os.environ)
    for k in list(env):
        if k.upper() in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY") or \
                k.startswith("AWS_ENDPOINT") or k in (
                    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
                    "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                    "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
            del env[k]
    env.update({
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_COLOR": "1",  # plain log lines in the failure output
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    return env


def run_flow(ck, key, flow):
    """Runs one flow: an unexpected error is a failed check and the next flow goes on; Abort
    and interrupts stop the run."""
    t0 = time.monotonic()
    try:
        flow()
    except (Abort, KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - report, go on with the next flow
        ck.check(f"flow {key}: unexpected error", [err_text(exc)])
    note(f"flow {key} took {time.monotonic() - t0:.1f}s")


def flow_main(prefix, tmp_prefix, keep_tmp, body):
    """The frame of a flow script: SIGTERM taken as an interrupt, child_env() for this process
    and its children, a scratch folder; `body(ck, procs, env, tmp)` runs the flows; at the end
    every child is killed, the scratch removed (unless keep_tmp) and the summary line printed.
    Returns the exit status."""
    ck = Checks(prefix)
    procs = Procs()
    t_start = time.monotonic()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    env = child_env()
    os.environ.clear()
    os.environ.update(env)
    tmp = tempfile.mkdtemp(prefix=tmp_prefix)
    try:
        body(ck, procs, env, tmp)
    except Abort as exc:
        note(f"stopped: {exc}")
        ck.failed = max(ck.failed, 1)
    except KeyboardInterrupt as exc:
        ck.check("interrupted", [f"{exc}"])
    finally:
        procs.cleanup()
        if keep_tmp:
            note(f"scratch kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    note(f"total {time.monotonic() - t_start:.1f}s")
    print(ck.summary())
    sys.stdout.flush()
    return 0 if ck.failed == 0 else 1


def start_up(procs, binary, data_dir, log_path, env, config=None, timeout=30.0):
    """Starts `millrace up` on free ports; returns (process, kinesis_url)."""
    argv = [binary, "--data-dir", data_dir, "up"]
    if config:
        argv += ["-c", config]
    argv += ["--kinesis-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"]
    p = procs.start("millrace up", argv, log_path, env)
    deadline = time.monotonic() + timeout
    pattern = re.compile(r"kinesis=(https?://[0-9.]+:[0-9]+)")
    admin = re.compile(r"admin=https?://")
    while time.monotonic() < deadline:
        with open(log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        m = pattern.search(text)
        if m and admin.search(text):
            return p, m.group(1)
        if p.poll() is not None:
            break
        time.sleep(0.05)
    rc = p.poll()
    procs.kill(p)
    raise StartError([f"millrace up did not print its ready lines "
                      f"(exit status {rc})"] + log_tail(log_path))


class StartError(Exception):
    def __init__(self, problems):
        super().__init__(problems[0])
        self.problems = problems


def stop_up(procs, p, log_path):
    """SIGTERM; returns problems (empty when it exited 0 within STOP_TIMEOUT_SECS)."""
    problems = []
    t0 = time.monotonic()
    try:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=STOP_TIMEOUT_SECS)
    except subprocess.TimeoutExpired:
        procs.kill(p)
        return [f"still running {STOP_TIMEOUT_SECS:.0f}s after SIGTERM (killed)"] + \
            log_tail(log_path)
    dt = time.monotonic() - t0
    if rc != 0:
        problems.append(f"exit status {rc} after SIGTERM, want 0")
    with open(log_path, "rb") as f:
        if b"stopped cleanly" not in f.read():
            problems.append("no 'stopped cleanly' line")
    if problems:
        problems += log_tail(log_path)
    else:
        note(f"millrace up stopped {dt:.2f}s after SIGTERM")
    return problems


# ---------------------------------------------------------------------------------------------
# Clients and data


def client(service, endpoint_url):
    kw = {}
    if service == "s3":
        kw["s3"] = {"addressing_style": "path"}
    config = Config(region_name=REGION, retries={"max_attempts": 5, "mode": "standard"},
                    connect_timeout=5, read_timeout=60, **kw)
    return boto3.session.Session().client(
        service, endpoint_url=endpoint_url, region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing", config=config)


class CsvData:
    def __init__(self, path):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            self.header = list(reader.fieldnames or [])
            self.rows = list(reader)
        missing = {"customerID", "Contract", "tenure", "MonthlyCharges", "TotalCharges",
                   "Churn"} - set(self.header)
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        if not self.rows:
            raise ValueError(f"{path}: no data rows")
        self.by_id = {r["customerID"]: r for r in self.rows}
        if len(self.by_id) != len(self.rows):
            raise ValueError(f"{path}: customerID is not unique")


def run_csv_flow(argv, doc, name, summary_prefix, run_flow, aws_cli=False):
    """The main() of a flow script over the Telco CSV against `millrace up`: reads --millrace,
    --csv, --keep-tmp (and --aws-cli), runs run_flow(ck, args, data, tmp, procs, env) in a
    scratch directory with every process it starts killed at the end, also on failure or
    SIGTERM, and prints the summary line. Returns the exit status (1 on a failed check)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--millrace", required=True, help="the millrace binary")
    ap.add_argument("--csv", required=True, help="telco-customer-churn.csv")
    if aws_cli:
        ap.add_argument("--aws-cli", default="", help="the AWS CLI (aws) to check too")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the scratch directory")
    args = ap.parse_args(argv)
    args.millrace = os.path.abspath(args.millrace)
    ck = Checks(summary_prefix)
    procs = Procs()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    env = child_env()
    os.environ.clear()
    os.environ.update(env)
    tmp = tempfile.mkdtemp(prefix=f"millrace-{name}-flows-")
    t0 = time.monotonic()
    try:
        data = CsvData(args.csv)
        note(f"millrace {args.millrace}, {len(data.rows)} CSV rows, boto3 {boto3.__version__}, "
             f"scratch {tmp}")
        run_flow(ck, args, data, tmp, procs, env)
    except Abort as exc:
        note(f"stopped early: {exc}")
        if ck.failed == 0:
            ck.failed = 1
    except KeyboardInterrupt as exc:
        ck.check("interrupted", [f"{exc}"])
    except Exception as exc:  # noqa: BLE001 - report, then clean up
        ck.check("unexpected error", [err_text(exc)])
        for line in log_tail(os.path.join(tmp, "up.log")):
            note(line)
    finally:
        procs.cleanup()
        if args.keep_tmp:
            note(f"scratch kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    note(f"total {time.monotonic() - t0:.1f}s")
    print(ck.summary())
    sys.stdout.flush()
    return 0 if ck.failed == 0 else 1


def wait_stream_active(kinesis, stream, shards):
    problems = []
    try:
        kinesis.get_waiter("stream_exists").wait(
            StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        s = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        if s.get("StreamStatus") != "ACTIVE":
            problems.append(f"StreamStatus {s.get('StreamStatus')!r}, want 'ACTIVE'")
        if s.get("OpenShardCount") != shards:
            problems.append(f"OpenShardCount {s.get('OpenShardCount')!r}, want {shards}")
    except (ClientError, BotoCoreError) as exc:
        problems.append(err_text(exc))
    return problems


def put_rows(ck, kinesis, stream, rows, label):
    """put_records in batches of PUT_BATCH. Returns the accepted records as dicts:
    data (bytes), row, shard, seq, t_lo / t_hi (wall clock around the call)."""
    sent, problems, calls = [], [], 0
    t0 = time.monotonic()
    for start in range(0, len(rows), PUT_BATCH):
        chunk = rows[start:start + PUT_BATCH]
        entries = [{"Data": json.dumps(r).encode("utf-8"), "PartitionKey": r["customerID"]}
                   for r in chunk]
        t_lo = time.time()
        try:
            resp = kinesis.put_records(StreamName=stream, Records=entries)
        except (ClientError, BotoCoreError) as exc:
            problems.append(f"put_records rows {start}..{start + len(chunk) - 1}: "
                            f"{err_text(exc)}")
            break
        t_hi = time.time()
        calls += 1
        if resp.get("FailedRecordCount") != 0:
            problems.append(f"put_records rows {start}..: FailedRecordCount "
                            f"{resp.get('FailedRecordCount')!r}")
        results = resp.get("Records", [])
        if len(results) != len(entries):
            problems.append(f"put_records rows {start}..: {len(results)} results for "
                            f"{len(entries)} records")
        for k, (e, r) in enumerate(zip(entries, results)):
            if r.get("ErrorCode") or not r.get("SequenceNumber") or not r.get("ShardId"):
                problems.append(f"row {start + k}: {r}")
                continue
            sent.append({"data": e["Data"], "row": chunk[k], "shard": r["ShardId"],
                         "seq": r["SequenceNumber"], "t_lo": t_lo, "t_hi": t_hi})
    dt = time.monotonic() - t0
    note(f"{label}: put {len(sent)} records in {calls} put_records calls, {dt:.1f}s")
    ck.check(f"{label}: put_records x{calls} ({len(rows)} rows, {PUT_BATCH} a call): "
             "FailedRecordCount 0, every entry has a ShardId and SequenceNumber", problems)
    if not sent:
        raise Abort("nothing was put")
    return sent


def hour_folders(t_lo, t_hi, slack=2.0):
    """The YYYY/MM/DD/HH folders a record that arrived between t_lo and t_hi can be in."""
    fmt = "%Y/%m/%d/%H"
    utc = datetime.timezone.utc
    return {datetime.datetime.fromtimestamp(t, utc).strftime(fmt)
            for t in (t_lo - slack, t_hi + slack)}


def parse_object_name(base, delivery, ext):
    """<delivery>-<shardId>-<firstSeq>-<lastSeq><ext> → (shard, first, last) or None."""
    if not base.startswith(delivery + "-") or not base.endswith(ext):
        return None
    middle = base[len(delivery) + 1:len(base) - len(ext)]
    parts = middle.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return parts[0], int(parts[1]), int(parts[2])


def check_ndjson_objects(ck, label, objects, sent, delivery, key_re, time_groups=None,
                         partition_group=None):
    """objects: {key: bytes}; key_re: regex with a named group `name` for the file name (and
    optionally `hour` YYYY/MM/DD/HH and `part`). Runs the exactly-once, byte-identity and
    object-name checks; returns {key: [line bytes]} for flow-specific checks."""
    by_data = {s["data"]: s for s in sent}
    seen = collections.Counter()
    unknown, format_p, name_p, layout_p = [], [], [], []
    lines_by_key = {}
    for key in sorted(objects):
        body = objects[key]
        m = key_re.match(key)
        if not m:
            layout_p.append(f"unexpected key {key!r}")
            continue
        if not body.endswith(b"\n"):
            format_p.append(f"{key}: does not end with a newline")
        lines = body.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        lines_by_key[key] = lines
        recs = []
        for n, line in enumerate(lines):
            seen[line] += 1
            s = by_data.get(line)
            if s is None:
                unknown.append(f"{key} line {n + 1}: not byte-identical to any record sent: "
                               f"{line[:80]!r}")
            else:
                recs.append(s)
        if not recs:
            continue
        parsed = parse_object_name(m.group("name"), delivery, ".json")
        if parsed is None:
            name_p.append(f"{key}: name is not {delivery}-<shardId>-<firstSeq>-<lastSeq>.json")
            continue
        shard, first, last = parsed
        shards = {s["shard"] for s in recs}
        seqs = [int(s["seq"]) for s in recs]
        if shards != {shard}:
            name_p.append(f"{key}: named for {shard}, holds records put to {sorted(shards)}")
        if (first, last) != (min(seqs), max(seqs)):
            name_p.append(f"{key}: named {first}-{last}, holds sequence numbers "
                          f"{min(seqs)}..{max(seqs)}")
        if seqs != sorted(seqs):
            name_p.append(f"{key}: lines are not in sequence-number order")
        if "hour" in key_re.groupindex:
            hour = m.group("hour")
            bad = [s for s in recs if hour not in hour_folders(s["t_lo"], s["t_hi"])]
            if bad:
                layout_p.append(f"{key}: {len(bad)} records arrived outside hour {hour} "
                                f"(e.g. put between {bad[0]['t_lo']:.3f} and "
                                f"{bad[0]['t_hi']:.3f})")
    missing = [s for s in sent if seen[s["data"]] == 0]
    dup = [d for d, c in seen.items() if c > 1]
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(sent)} records missing, e.g. customerID "
                        f"{missing[0]['row']['customerID']} ({missing[0]['shard']} "
                        f"seq {missing[0]['seq']})")
    if dup:
        problems.append(f"{len(dup)} records delivered more than once, e.g. {dup[0][:80]!r}")
    problems += unknown
    n_lines = sum(seen.values())
    ck.check(f"{label}: every record ({len(sent)}) in the lake exactly once, NDJSON lines "
             f"byte-identical, nothing extra ({n_lines} lines in {len(lines_by_key)} objects)",
             problems)
    ck.check(f"{label}: objects are newline-terminated NDJSON", format_p)
    ck.check(f"{label}: object keys follow the layout"
             + (" (hour folder = arrival hour)" if "hour" in key_re.groupindex else ""),
             layout_p)
    ck.check(f"{label}: object names carry the shard and first/last sequence number of their "
             "records, lines in sequence order", name_p)
    return lines_by_key


def walk_files(root):
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            full = os.path.join(dirpath, f)
            out[os.path.relpath(full, root).replace(os.sep, "/")] = full
    return out


# ---------------------------------------------------------------------------------------------
# Flow 1: S3 lake through moto


def list_all(s3, bucket, prefix):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 100}):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys


def start_moto(ck, procs, env, tmp, label):
    """moto's S3 server on a free port (log in tmp); returns its URL. A check named after
    `label` says whether it answers; Abort when it does not."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = os.path.join(tmp, f"moto-{port}.log")
    moto = procs.start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                "-p", str(port)], log, env)
    problem = wait_http(endpoint + "/", 30)
    if problem is None and moto.poll() is not None:
        problem = f"moto exited with status {moto.returncode}"
    if not ck.check(f"{label}: moto S3 server answers on {endpoint}",
                    [problem] + log_tail(log) if problem else []):
        raise Abort("no S3 server")
    return endpoint


def wait_leases_taken(ck, label, logs, secs=60):
    """Waits until every process whose log is in `logs` has taken a shard lease, and checks
    that they all did."""
    def taken():
        out = []
        for log in logs:
            with open(log, encoding="utf-8", errors="replace") as f:
                out.append(f.read().count("took the shard's lease"))
        return out

    t0 = time.monotonic()
    while not all(taken()) and time.monotonic() - t0 < secs:
        time.sleep(0.2)
    took = taken()
    note(f"{label}: {time.monotonic() - t0:.1f}s after start, leases taken: {took}")
    ck.check(f"{label}: every process takes shards (the leases split the stream between them)",
             [] if all(took) else [f"leases taken {took}"] +
             [line for log in logs for line in log_tail(log)])


def flow_s3(ck, args, data, tmp, procs, env):
    label = "flow 1 (S3 lake via moto)"
    note(f"{label}: start")
    stream, delivery = "churn-s3", "churn-s3-lake"
    bucket = f"millrace-compat-{os.getpid()}"
    endpoint = start_moto(ck, procs, env, tmp, label)

    s3 = client("s3", endpoint)
    try:
        s3.create_bucket(Bucket=bucket)
        problems = []
    except (ClientError, BotoCoreError) as exc:
        problems = [err_text(exc)]
    if not ck.check(f"{label}: boto3 create_bucket {bucket}", problems):
        raise Abort("no bucket")

    config = os.path.join(tmp, "millrace-s3.toml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(f"""# written by tests/compat/delivery_flows.py
[lake]
s3_endpoint_url = "{endpoint}"
s3_path_style = true

[[stream]]
name = "{stream}"
shards = 4

[[delivery]]
name = "{delivery}"
stream = "{stream}"
lake = "s3://{bucket}/lake"
buffer_interval_secs = 1
partitioning = {{ contract = ".Contract" }}
""")
    up_log = os.path.join(tmp, "up-s3.log")
    try:
        up, url = start_up(procs, args.millrace, os.path.join(tmp, "up-s3"), up_log, env,
                           config=config)
    except StartError as exc:
        ck.check(f"{label}: millrace up -c millrace.toml starts", exc.problems)
        raise Abort("millrace up did not start")
    note(f"{label}: millrace up at {url}, S3 at {endpoint}, bucket {bucket}")
    up_running = True
    try:
        kinesis = client("kinesis", url)
        if not ck.check(f"{label}: stream {stream} from the config is ACTIVE with 4 shards",
                        wait_stream_active(kinesis, stream, 4)):
            raise Abort("stream not active")
        sent = put_rows(ck, kinesis, stream, data.rows, label)

        # Poll the bucket until every record is there (or the time is up).
        objects, t0 = {}, time.monotonic()
        deadline = t0 + S3_WAIT_SECS
        poll_problems = []
        while True:
            try:
                for key in list_all(s3, bucket, "lake/"):
                    if key not in objects:
                        objects[key] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except (ClientError, BotoCoreError) as exc:
                poll_problems.append(err_text(exc))
                break
            lines = sum(b.count(b"\n") for k, b in objects.items()
                        if k.startswith("lake/raw/"))
            if lines >= len(sent) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        waited = time.monotonic() - t0
        note(f"{label}: {lines} lines in {len(objects)} objects after {waited:.1f}s")
        if lines < len(sent):
            poll_problems.append(f"only {lines} of {len(sent)} records in s3://{bucket}/lake/ "
                                 f"after {S3_WAIT_SECS:.0f}s")
            poll_problems += log_tail(up_log)
        ck.check(f"{label}: all records delivered to S3 within {S3_WAIT_SECS:.0f}s "
                 f"(took {waited:.1f}s)", poll_problems)

        up_running = False
        ck.check(f"{label}: SIGTERM stops millrace up with status 0 within "
                 f"{STOP_TIMEOUT_SECS:.0f}s", stop_up(procs, up, up_log))

        # Final listing after shutdown: whatever the shutdown flush wrote counts too.
        try:
            final = list_all(s3, bucket, "")
            for key in final:
                if key not in objects:
                    objects[key] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            objects = {k: objects[k] for k in final}
            problems = []
        except (ClientError, BotoCoreError) as exc:
            problems = [err_text(exc)]
        ck.check(f"{label}: bucket listed with list_objects_v2 pagination "
                 f"({len(objects)} objects)", problems)

        errors = sorted(k for k in objects if k.startswith("lake/errors/"))
        ck.check(f"{label}: nothing under lake/errors/",
                 [f"{len(errors)} error objects, e.g. {errors[0]}: "
                  f"{objects[errors[0]][:300]!r}"] if errors else [])
        data_objects = {k: v for k, v in objects.items() if not k.startswith("lake/errors/")}
        key_re = re.compile(
            rf"^lake/raw/{re.escape(stream)}/(?P<part>[^/]+)/"
            r"(?P<hour>\d{4}/\d{2}/\d{2}/\d{2})/(?P<name>[^/]+)$")
        lines_by_key = check_ndjson_objects(ck, label, data_objects, sent, delivery, key_re)

        # Dynamic partitioning by .Contract.
        want = collections.Counter(r["Contract"] for r in data.rows)
        got = collections.Counter()
        problems = []
        for key, lines in lines_by_key.items():
            part = key_re.match(key).group("part")
            for n, line in enumerate(lines):
                try:
                    contract = json.loads(line).get("Contract")
                except (ValueError, AttributeError):
                    problems.append(f"{key} line {n + 1}: not a JSON object")
                    continue
                if contract != part:
                    problems.append(f"{key} line {n + 1}: Contract {contract!r} in partition "
                                    f"{part!r}")
                got[part] += 1
        if dict(got) != dict(want):
            problems.insert(0, f"records per Contract partition {dict(sorted(got.items()))}, "
                               f"want {dict(sorted(want.items()))} (from the CSV)")
        ck.check(f"{label}: {len(want)} Contract partitions with the CSV's counts "
                 f"({', '.join(f'{k}: {v}' for k, v in sorted(want.items()))}), each line "
                 "in its Contract's partition", problems)
    finally:
        if up_running:
            procs.kill(up)


# ---------------------------------------------------------------------------------------------
# Flow 2: Parquet through `millrace deliver` from millrace up


def deliver(ck, procs, args, env, label, data_dir, log_path, extra):
    argv = [args.millrace, "--data-dir", data_dir, "deliver"] + extra
    note(f"{label}: {' '.join(argv)}")
    rc, secs = procs.run("millrace deliver", argv, log_path, env, DELIVER_TIMEOUT_SECS)
    with open(log_path, "rb") as f:
        out = f.read().decode("utf-8", "replace")
    problems = []
    if rc is None:
        problems.append(f"still running after {DELIVER_TIMEOUT_SECS:.0f}s (killed)")
    elif rc != 0:
        problems.append(f"exit status {rc}")
    if problems:
        problems += log_tail(log_path)
    ck.check(f"{label}: millrace deliver exits 0 ({secs:.1f}s)", problems)
    m = re.search(r"delivered (\d+) records .*?; (\d+) records to the error prefix", out)
    return (int(m.group(1)), int(m.group(2))) if m else None, rc == 0


def check_report(ck, label, report, want):
    problems = []
    if report is None:
        problems.append("no 'delivered N records ...; M records to the error prefix' line")
    elif report != (want, 0):
        problems.append(f"reported {report[0]} records delivered and {report[1]} to the "
                        f"error prefix, want {want} and 0")
    ck.check(f"{label}: reports {want} records delivered, 0 to the error prefix", problems)


def read_parquet_lake(ck, label, lake, stream, delivery, sent, codec):
    """Checks names and per-object shard/sequence ranges; returns rows (dicts) and schemas."""
    by_id = {s["row"]["customerID"]: s for s in sent}
    files = walk_files(lake)
    key_re = re.compile(rf"^raw/{re.escape(stream)}/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/"
                        r"(?P<name>[^/]+\.parquet)$")
    layout_p, name_p, read_p, codec_p = [], [], [], []
    rows, schemas = [], {}
    for rel in sorted(files):
        m = key_re.match(rel)
        if not m:
            layout_p.append(f"unexpected file {rel!r}")
            continue
        try:
            pf = pq.ParquetFile(files[rel])
            table = pf.read()
        except Exception as exc:  # noqa: BLE001 - any read failure is a check failure
            read_p.append(f"{rel}: {type(exc).__name__}: {exc}")
            continue
        schemas[rel] = table.schema
        md = pf.metadata
        codecs = {md.row_group(g).column(c).compression
                  for g in range(md.num_row_groups) for c in range(md.num_columns)}
        if codecs != {codec}:
            codec_p.append(f"{rel}: column chunk codecs {sorted(codecs)}, want {codec}")
        file_rows = table.to_pylist()
        rows.extend(file_rows)
        parsed = parse_object_name(m.group("name"), delivery, ".parquet")
        if parsed is None:
            name_p.append(f"{rel}: name is not {delivery}-<shardId>-<firstSeq>-<lastSeq>"
                          ".parquet")
            continue
        recs = [by_id[r.get("customerID")] for r in file_rows if r.get("customerID") in by_id]
        if not recs:
            name_p.append(f"{rel}: no row with a customerID that was sent")
            continue
        shard, first, last = parsed
        shards = {s["shard"] for s in recs}
        seqs = [int(s["seq"]) for s in recs]
        if shards != {shard}:
            name_p.append(f"{rel}: named for {shard}, holds records put to {sorted(shards)}")
        if (first, last) != (min(seqs), max(seqs)):
            name_p.append(f"{rel}: named {first}-{last}, holds sequence numbers "
                          f"{min(seqs)}..{max(seqs)}")
        if seqs != sorted(seqs):
            name_p.append(f"{rel}: rows are not in sequence-number order")
    if not schemas and not read_p:
        read_p.append(f"no .parquet files under {lake}")
    ck.check(f"{label}: only raw/{stream}/YYYY/MM/DD/HH/*.parquet objects in the lake "
             f"({len(schemas)} files), no errors/", layout_p)
    ck.check(f"{label}: pyarrow {pyarrow.__version__} reads every object", read_p)
    ck.check(f"{label}: every column chunk is {codec}", codec_p)
    ck.check(f"{label}: object names carry the shard and first/last sequence number of their "
             "rows, rows in sequence order", name_p)
    return rows, schemas


def flow_parquet(ck, args, data, tmp, procs, env):
    label = "flow 2 (Parquet)"
    note(f"{label}: start")
    stream = "churn-parquet"
    up_log = os.path.join(tmp, "up-parquet.log")
    try:
        up, url = start_up(procs, args.millrace, os.path.join(tmp, "up-parquet"), up_log, env)
    except StartError as exc:
        ck.check(f"{label}: millrace up starts", exc.problems)
        raise Abort("millrace up did not start")
    note(f"{label}: millrace up at {url}")
    try:
        kinesis = client("kinesis", url)
        try:
            kinesis.create_stream(StreamName=stream, ShardCount=2)
            problems = wait_stream_active(kinesis, stream, 2)
        except (ClientError, BotoCoreError) as exc:
            problems = [err_text(exc)]
        if not ck.check(f"{label}: create_stream {stream} (2 shards), ACTIVE", problems):
            raise Abort("no stream")
        sent = put_rows(ck, kinesis, stream, data.rows, label)

        # Declared schema, zstd.
        lake = os.path.join(tmp, "lake-parquet-declared")
        ddir = os.path.join(tmp, "deliver-parquet-declared")
        common = ["--source-endpoint-url", url, "--stream", stream, "--lake", lake,
                  "--format", "parquet"]
        declared = common + ["--compression", "zstd", "--schema", PARQUET_SCHEMA,
                             "--until-caught-up"]
        sub = f"{label}, declared schema"
        report, ok = deliver(ck, procs, args, env, sub, ddir,
                             os.path.join(tmp, "deliver-parquet-declared.log"), declared)
        if ok:
            check_report(ck, sub, report, len(sent))
        rows, schemas = read_parquet_lake(ck, sub, lake, stream, f"{stream}-lake", sent,
                                          "ZSTD")
        check_declared(ck, sub, data, rows, schemas)

        # Same data dir again: checkpoints say everything is delivered.
        before = {rel: os.stat(p).st_mtime_ns for rel, p in walk_files(lake).items()}
        sub2 = f"{label}, rerun with the same --data-dir"
        report, ok = deliver(ck, procs, args, env, sub2, ddir,
                             os.path.join(tmp, "deliver-parquet-rerun.log"), declared)
        after = {rel: os.stat(p).st_mtime_ns for rel, p in walk_files(lake).items()}
        problems = []
        if ok:
            if report is None or report[0] != 0:
                problems.append(f"reported {report and report[0]} records delivered, want 0")
        if after != before:
            changed = sorted(set(after) ^ set(before)) or \
                sorted(k for k in after if after[k] != before.get(k))
            problems.append(f"lake changed: {changed[:3]}")
        ck.check(f"{sub2}: delivers nothing again, lake unchanged", problems)

        # Inferred schema, snappy.
        lake2 = os.path.join(tmp, "lake-parquet-inferred")
        inferred = ["--source-endpoint-url", url, "--stream", stream, "--lake", lake2,
                    "--format", "parquet", "--compression", "snappy", "--until-caught-up"]
        sub3 = f"{label}, inferred schema"
        report, ok = deliver(ck, procs, args, env, sub3,
                             os.path.join(tmp, "deliver-parquet-inferred"),
                             os.path.join(tmp, "deliver-parquet-inferred.log"), inferred)
        if ok:
            check_report(ck, sub3, report, len(sent))
        rows, schemas = read_parquet_lake(ck, sub3, lake2, stream, f"{stream}-lake", sent,
                                          "SNAPPY")
        check_inferred(ck, sub3, data, rows, schemas)
    finally:
        ck.check(f"{label}: SIGTERM stops millrace up with status 0 within "
                 f"{STOP_TIMEOUT_SECS:.0f}s", stop_up(procs, up, up_log))


def csv_float(s):
    s = s.strip()
    return float(s) if s else None


def check_declared(ck, label, data, rows, schemas):
    want_types = [("customerID", pyarrow.string()), ("tenure", pyarrow.int64()),
                  ("MonthlyCharges", pyarrow.float64()), ("TotalCharges", pyarrow.float64()),
                  ("Churn", pyarrow.string())]
    problems = []
    for rel, schema in sorted(schemas.items()):
        got = [(f.name, f.type) for f in schema]
        if got != want_types:
            problems.append(f"{rel}: columns {[(n, str(t)) for n, t in got]}, want "
                            f"{[(n, str(t)) for n, t in want_types]}")
    ck.check(f"{label}: columns exactly customerID string, tenure int64, MonthlyCharges "
             "double, TotalCharges double, Churn string", problems)

    ids = [r.get("customerID") for r in rows]
    problems = []
    if len(rows) != len(data.rows):
        problems.append(f"{len(rows)} rows, want {len(data.rows)}")
    if len(set(ids)) != len(ids):
        problems.append(f"{len(ids) - len(set(ids))} duplicate customerIDs")
    if set(ids) != set(data.by_id):
        problems.append(f"customerIDs differ from the CSV: {len(set(data.by_id) - set(ids))} "
                        f"missing, {len(set(ids) - set(data.by_id))} unknown")
    ck.check(f"{label}: {len(data.rows)} rows, customerIDs unique and equal to the CSV's",
             problems)
    if problems:
        return

    want_tenure = sum(int(r["tenure"]) for r in data.rows)
    want_monthly = math.fsum(float(r["MonthlyCharges"]) for r in data.rows)
    problems = []
    try:
        got_tenure = sum(r["tenure"] for r in rows)
        got_monthly = math.fsum(r["MonthlyCharges"] for r in rows)
    except TypeError as exc:
        problems.append(f"cannot sum (nulls or wrong types): {exc}")
    else:
        if got_tenure != want_tenure:
            problems.append(f"sum(tenure) {got_tenure}, want {want_tenure}")
        if abs(got_monthly - want_monthly) > 1e-6:
            problems.append(f"sum(MonthlyCharges) {got_monthly!r}, want {want_monthly!r}")
    ck.check(f"{label}: sum(tenure) = {want_tenure} and sum(MonthlyCharges) = "
             f"{want_monthly:.2f} as computed from the CSV", problems)

    want_null = sorted(r["customerID"] for r in data.rows if not r["TotalCharges"].strip())
    got_null = sorted(r["customerID"] for r in rows if r.get("TotalCharges") is None)
    problems = []
    if got_null != want_null:
        problems.append(f"{len(got_null)} null TotalCharges ({got_null[:5]}...), want "
                        f"{len(want_null)} ({want_null[:5]}...)")
    ck.check(f"{label}: TotalCharges null exactly for the {len(want_null)} blank strings",
             problems)

    problems = []
    for r in rows:
        c = data.by_id[r["customerID"]]
        want = {"tenure": int(c["tenure"]), "MonthlyCharges": float(c["MonthlyCharges"]),
                "TotalCharges": csv_float(c["TotalCharges"]), "Churn": c["Churn"]}
        for k, v in want.items():
            if r.get(k) != v:
                problems.append(f"{r['customerID']}: {k} = {r.get(k)!r}, want {v!r}")
    ck.check(f"{label}: every row's values equal the CSV's", problems)


def check_inferred(ck, label, data, rows, schemas):
    problems = []
    for rel, schema in sorted(schemas.items()):
        names = [f.name for f in schema]
        if sorted(names) != sorted(data.header):
            problems.append(f"{rel}: columns {names}, want the CSV header's {data.header}")
        non_str = [(f.name, str(f.type)) for f in schema if f.type != pyarrow.string()]
        if non_str:
            problems.append(f"{rel}: non-string columns {non_str}")
    ck.check(f"{label}: every object has the CSV's {len(data.header)} columns, all strings",
             problems)
    problems = []
    ids = [r.get("customerID") for r in rows]
    if len(rows) != len(data.rows) or len(set(ids)) != len(ids) or set(ids) != set(data.by_id):
        problems.append(f"{len(rows)} rows with {len(set(ids))} distinct customerIDs, want "
                        f"the CSV's {len(data.rows)}")
    for r in rows:
        c = data.by_id.get(r.get("customerID"))
        if c is not None and r != c:
            diff = sorted(k for k in set(r) | set(c) if r.get(k) != c.get(k))
            problems.append(f"{r.get('customerID')}: differs in {diff} "
                            f"(e.g. {diff[0]}: {r.get(diff[0])!r} vs {c.get(diff[0])!r})")
    ck.check(f"{label}: {len(data.rows)} rows, each equal to its CSV row (strings as sent)",
             problems)


# ---------------------------------------------------------------------------------------------
# Flow 3: standalone delivery against kinesalite


def flow_kinesalite(ck, args, data, tmp, procs, env):
    label = "flow 3 (deliver from kinesalite)"
    note(f"{label}: start, kinesalite at {args.kinesalite_url}")
    stream = f"millrace-deliver-{int(time.time())}-{os.getpid()}"
    kinesis = client("kinesis", args.kinesalite_url)
    created = False
    try:
        try:
            kinesis.create_stream(StreamName=stream, ShardCount=2)
            created = True
            problems = wait_stream_active(kinesis, stream, 2)
        except (ClientError, BotoCoreError) as exc:
            problems = [err_text(exc)]
        if not ck.check(f"{label}: create_stream {stream} (2 shards), ACTIVE", problems):
            raise Abort("no stream")
        rows = data.rows[:args.kinesalite_rows]
        sent = put_rows(ck, kinesis, stream, rows, label)
        lake = os.path.join(tmp, "lake-kinesalite")
        extra = ["--source-endpoint-url", args.kinesalite_url, "--stream", stream,
                 "--lake", lake, "--buffer-interval", "1", "--until-caught-up"]
        report, ok = deliver(ck, procs, args, env, label, os.path.join(tmp, "deliver-kl"),
                             os.path.join(tmp, "deliver-kinesalite.log"), extra)
        if ok:
            check_report(ck, label, report, len(sent))
        objects = {}
        for rel, path in walk_files(lake).items():
            with open(path, "rb") as f:
                objects[rel] = f.read()
        key_re = re.compile(rf"^raw/{re.escape(stream)}/"
                            r"(?P<hour>\d{4}/\d{2}/\d{2}/\d{2})/(?P<name>[^/]+)$")
        check_ndjson_objects(ck, label, objects, sent, f"{stream}-lake", key_re)
    finally:
        if created:
            try:
                kinesis.delete_stream(StreamName=stream)
            except (ClientError, BotoCoreError) as exc:
                note(f"{label}: delete_stream {stream}: {err_text(exc)}")


def flow_leases(ck, args, data, tmp, procs, env):
    """Two live `millrace deliver`s of one name, each with its own data dir (as on two
    machines), share a 4-shard stream through shard leases on moto and write one S3 lake; one
    is killed with SIGKILL while records arrive."""
    label = "flow 4 (two deliveries sharing a stream through leases)"
    endpoint = start_moto(ck, procs, env, tmp, label)
    s3 = client("s3", endpoint)
    bucket = f"millrace-leases-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    up, url = start_up(procs, args.millrace, os.path.join(tmp, "leases-up"),
                       os.path.join(tmp, "leases-up.log"), env)
    kinesis = client("kinesis", url)
    kinesis.create_stream(StreamName="churn", ShardCount=4)
    wait_stream_active(kinesis, "churn", 4)
    workers, logs = [], []
    for who in ("a", "b"):
        log = os.path.join(tmp, f"leases-deliver-{who}.log")
        argv = [args.millrace, "--data-dir", os.path.join(tmp, f"leases-{who}"), "deliver",
                "--source-endpoint-url", url, "--stream", "churn", "--name", "churn-raw",
                "--lake", f"s3://{bucket}/lake", "--s3-endpoint-url", endpoint,
                "--buffer-interval", "1", "--leases", f"s3://{bucket}/leases",
                "--lease-time", "3s"]
        workers.append(procs.start(f"millrace deliver ({who})", argv, log, env))
        logs.append(log)

    wait_leases_taken(ck, label, logs)
    rows = data.rows
    sent = []
    for i in range(0, len(rows), 500):
        sent += put_rows(ck, kinesis, "churn", rows[i:i + 500], f"{label} batch {i // 500}")
        if i == 2000:
            procs.kill(workers[0])
            note(f"{label}: delivery a killed with SIGKILL while records were arriving")
        time.sleep(0.2)

    def lake_objects():
        out = {}
        for key in list_all(s3, bucket, "lake/"):
            out[key[len("lake/"):]] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return out

    want = {r["data"] for r in sent}
    deadline = time.monotonic() + 60
    while True:
        objects = lake_objects()
        lines = {line for body in objects.values() for line in body.split(b"\n") if line}
        if want <= lines or time.monotonic() > deadline:
            break
        time.sleep(1)
    # Let anything in flight land before counting duplicates.
    time.sleep(2)
    objects = lake_objects()
    procs.kill(workers[1])
    key_re = re.compile(r"^raw/churn/(?P<hour>\d{4}/\d{2}/\d{2}/\d{2})/(?P<name>[^/]+)$")
    check_ndjson_objects(ck, f"{label}, after SIGKILL of one delivery", objects, sent,
                         "churn-raw", key_re)
    ck.check(f"{label}: up stops cleanly", stop_up(procs, up, os.path.join(tmp, "leases-up.log")))


# ---------------------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--millrace", required=True, help="the millrace binary")
    ap.add_argument("--csv", required=True, help="telco-customer-churn.csv")
    ap.add_argument("--kinesalite-url", default=None,
                    help="run flow 3 against this kinesalite (e.g. http://127.0.0.1:4567)")
    ap.add_argument("--kinesalite-rows", type=int, default=1000)
    ap.add_argument("--flows", default="1,2,3,4", help="comma-separated subset of 1,2,3,4")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the scratch directory")
    args = ap.parse_args(argv)
    args.millrace = os.path.abspath(args.millrace)
    args.flows = {f.strip() for f in args.flows.split(",") if f.strip()}
    if not args.flows <= {"1", "2", "3", "4"}:
        ap.error("--flows takes 1, 2, 3 and/or 4")
    return args


def main(argv):
    args = parse_args(argv)

    def body(ck, procs, env, tmp):
        problems = []
        if not (os.path.isfile(args.millrace) and os.access(args.millrace, os.X_OK)):
            problems.append(f"{args.millrace} is not an executable file")
        try:
            data = CsvData(args.csv)
        except (OSError, ValueError) as exc:
            problems.append(str(exc))
        if not ck.check(f"inputs: millrace binary and CSV "
                        f"({args.csv})", problems):
            raise Abort("inputs")
        note(f"millrace {args.millrace}, {len(data.rows)} CSV rows, boto3 {boto3.__version__}, "
             f"pyarrow {pyarrow.__version__}, scratch {tmp}")
        flows = [("1", flow_s3), ("2", flow_parquet), ("4", flow_leases)]
        if args.kinesalite_url:
            flows.append(("3", flow_kinesalite))
        elif "3" in args.flows:
            note("skip - flow 3 (deliver from kinesalite): no --kinesalite-url")
        for key, flow in flows:
            if key not in args.flows:
                continue
            # A flow stopped early (Abort) fails and the next one still runs; each flow's
            # processes are stopped before the next starts.
            try:
                run_flow(ck, key, lambda flow=flow: flow(ck, args, data, tmp, procs, env))
            except Abort as exc:
                note(f"flow {key} stopped early: {exc}")
                ck.failed = max(ck.failed, 1)
            finally:
                procs.cleanup()

    return flow_main(SUMMARY_PREFIX, "millrace-delivery-flows-", args.keep_tmp, body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
