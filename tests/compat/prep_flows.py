#!/usr/bin/env python3
"""Prep flows: `millrace query` and `millrace prep` over an S3 lake, checked with real clients.

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/prep_flows.py --millrace target/debug/millrace \
        --json ../shared/data/firehose-s3-object-example.json

One moto S3 server (`python -m moto.server`) on a free 127.0.0.1 port holds every object; the
script writes the raw objects with boto3, runs millrace against it with --s3-endpoint-url, and
reads what millrace wrote back with boto3 and pyarrow. Every process it starts runs in its own
process group and is killed at the end, also on failure or SIGINT/SIGTERM. Scratch files (job
files, stdout/stderr of each run) live in one temporary directory, removed at the end
(--keep-tmp keeps it). millrace runs with that directory as its working directory and
`--data-dir` inside it, so nothing is read from or written to the checkout.

Expected values are computed here from the input file (144 concatenated JSON objects, every
value a string), parsed with json.JSONDecoder.raw_decode; none is hard-coded.

Steps (later steps use the objects of earlier ones; a failed check does not stop the run, a
failed setup step stops it):

 a. Query over S3. The input file as is at raw/churn/2021/01/01/00/obj1 and the first 50
    records as gzip-compressed NDJSON at raw/churn/2021/01/01/01/obj2.gz. `millrace query
    --table raw=s3://BUCKET/raw/churn --format csv "SELECT count(*) AS n,
    sum(CAST(tenure AS INT)) AS t FROM raw"` prints the header and the count and sum computed
    here, and no warning; `--format json` with `count(DISTINCT customerID)` (a mixed-case
    column as written) prints one JSON object; `--source-columns` gives each object's `_object`
    (its key) with its row count.
 b. Hidden objects: raw/churn/_SUCCESS (empty), raw/churn/.x (not JSON) and a valid JSON
    object under raw/churn/_temporary/ are not read: the same count and sum, no warning.
 c. A truncated object at raw/broken/2021/01/01/00/obj3 (three records and half of a fourth):
    exit 0, count 3, and one stderr line starting "warning: skipped" that names the object key
    and the byte offset where the fourth record starts; with --strict a nonzero exit whose
    stderr names the object.
 d. `millrace prep --job` (lake s3://BUCKET/lake, input s3://BUCKET/raw/churn as json with
    source columns, SQL that casts tenure to INT and keeps the latest record per customerID,
    output curated/churn as Parquet). Checks: lake/curated/churn/ holds _manifest.json and
    part-<run>-NNNNN.parquet files; the manifest (mode overwrite) lists exactly obj1 and
    obj2.gz with their S3 sizes (and ETags), the files with their rows and bytes, the
    statements, rows = run_rows = distinct customers, no bad records; pyarrow reads the files
    (downloaded with boto3): the row count, unique customerIDs, tenure an integer type with the
    latest-wins sum. Then a new object (5 new customers, one of them sent twice) and a second
    job file with `incremental = true` and no `lake` (given with --lake): mode append,
    run_inputs 1, inputs the union of 3 objects, run_rows 5, rows cumulative, the earlier
    files kept. `millrace query` over s3://BUCKET/lake/curated/churn:parquet returns the
    manifest's row count (after each run) and the expected tenure sum. A third run with
    nothing new leaves the manifest and files as they were.
 e. Bad SQL: a job whose second statement names a table that does not exist exits nonzero,
    stderr names the job file and "statement 2", and nothing is written to its output.

Output: "ok - ..." / "FAIL - ..." lines, "# ..." notes, and last the line
"prep flows: N passed, M failed"; exit status 1 when M > 0.

moto accepts any credentials; the script sets dummy AWS_* variables (test/test, us-east-1)
for itself and for millrace, and clears AWS_PROFILE / AWS_ENDPOINT_URL* / proxy settings.
"""

import argparse
import collections
import csv
import gzip
import io
import json
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
    import pyarrow.types as pat
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        f"prep_flows.py: cannot import a dependency ({exc}); "
        "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n"
    )
    print("prep flows: 0 passed, 1 failed")
    sys.exit(1)

SUMMARY_PREFIX = "prep flows"
REGION = "us-east-1"
RUN_TIMEOUT_SECS = 180.0
GZ_RECORDS = 50
NEW_RECORDS = 5

KEY_OBJ1 = "raw/churn/2021/01/01/00/obj1"
KEY_OBJ2 = "raw/churn/2021/01/01/01/obj2.gz"
KEY_OBJ4 = "raw/churn/2021/01/01/02/obj4"
KEY_BROKEN = "raw/broken/2021/01/01/00/obj3"
HIDDEN_KEYS = ("raw/churn/_SUCCESS", "raw/churn/.x", "raw/churn/_temporary/0/obj-tmp")
OUTPUT_PREFIX = "lake/curated/churn/"
BAD_OUTPUT_PREFIX = "lake/curated/bad/"

SQL_TYPED = ("CREATE VIEW typed AS SELECT customerID, CAST(tenure AS INT) AS tenure, "
             "Contract, MonthlyCharges, _object, _row FROM raw_churn")
SQL_LATEST = ("CREATE VIEW latest AS SELECT customerID, tenure, Contract, MonthlyCharges FROM "
              "(SELECT customerID, tenure, Contract, MonthlyCharges, ROW_NUMBER() OVER "
              "(PARTITION BY customerID ORDER BY _object DESC, _row DESC) AS rn FROM typed) "
              "AS ranked WHERE rn = 1")


class Abort(Exception):
    """A step failed that the rest of the run depends on (already reported)."""


def text_tail(label, text, lines=15):
    tail = text.splitlines()[-lines:]
    if not tail:
        return [f"{label}: (empty)"]
    return [f"{label} (last {len(tail)} lines):"] + [f"  | {t}" for t in tail]


def log_tail(path, lines=15):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return [f"(no log at {path}: {exc})"]
    return text_tail(f"log {path}", text, lines)


# ---------------------------------------------------------------------------------------------
# Processes


class Procs:
    """Every child runs in its own session (process group); cleanup() kills the groups."""

    def __init__(self):
        self.children = []

    def start(self, name, argv, log_path, env, cwd=None):
        with open(log_path, "wb") as log:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                 start_new_session=True)
        self.children.append((name, p))
        return p

    def run(self, name, argv, out_path, err_path, env, cwd, timeout):
        """Runs argv to completion, stdout to out_path and stderr to err_path. Returns
        (rc, stdout, stderr, secs); rc is None when it was killed after `timeout` seconds."""
        t0 = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 env=env, cwd=cwd, start_new_session=True)
        self.children.append((name, p))
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(p)
            rc = None
        secs = time.monotonic() - t0
        texts = []
        for path in (out_path, err_path):
            with open(path, "rb") as f:
                texts.append(f.read().decode("utf-8", "replace"))
        return rc, texts[0], texts[1], secs

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
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "MILLRACE_DATA_DIR"):
            del env[k]
    env.update({
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_COLOR": "1",  # plain lines in the failure output
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    return env


# ---------------------------------------------------------------------------------------------
# Clients and data


def s3_client(endpoint_url):
    config = Config(region_name=REGION, retries={"max_attempts": 5, "mode": "standard"},
                    connect_timeout=5, read_timeout=60, s3={"addressing_style": "path"})
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=REGION,
        aws_access_key_id="test", aws_secret_access_key="test", config=config)


def list_objects(s3, bucket, prefix):
    """{key: {"size", "etag", "last_modified_ms"}} under prefix (paginated)."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 100}):
        for o in page.get("Contents", []):
            out[o["Key"]] = {"size": o["Size"], "etag": o.get("ETag"),
                             "last_modified_ms": int(o["LastModified"].timestamp() * 1000)}
    return out


def get_bytes(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


class JsonData:
    """The concatenated-JSON input file: records (dicts) and their exact text pieces."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.raw = f.read()
        text = self.raw.decode("utf-8")
        dec = json.JSONDecoder()
        self.records, self.pieces = [], []
        i = 0
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                break
            obj, end = dec.raw_decode(text, i)
            if not isinstance(obj, dict):
                raise ValueError(f"{path}: value at {i} is not a JSON object")
            self.records.append(obj)
            self.pieces.append(text[i:end].encode("utf-8"))
            i = end
        if len(self.records) < GZ_RECORDS + 4:
            raise ValueError(f"{path}: only {len(self.records)} records, want at least "
                             f"{GZ_RECORDS + 4}")
        missing = [n for n, r in enumerate(self.records)
                   if not isinstance(r.get("customerID"), str) or not
                   isinstance(r.get("tenure"), str)]
        if missing:
            raise ValueError(f"{path}: records {missing[:5]} lack string customerID/tenure")


def tenure_sum(records):
    return sum(int(r["tenure"]) for r in records)


def latest_wins(ordered_records):
    """{customerID: record}, later records replacing earlier ones."""
    out = {}
    for r in ordered_records:
        out[r["customerID"]] = r
    return out


class Ctx:
    """What every step needs."""

    def __init__(self, args, data, tmp, procs, env):
        self.args, self.data, self.tmp, self.procs, self.env = args, data, tmp, procs, env
        self.endpoint = None
        self.bucket = None
        self.s3 = None
        self.runs = 0

    def millrace(self, ck, label, argv_tail, want_ok=True):
        """Runs `millrace --data-dir D ARGS...`; returns (rc, stdout, stderr). With want_ok,
        records a check that it exits 0 within the timeout."""
        self.runs += 1
        n = self.runs
        argv = [self.args.millrace, "--data-dir", os.path.join(self.tmp, "data")] + argv_tail
        note(f"{label}: {' '.join(argv)}")
        out_path = os.path.join(self.tmp, f"run{n:02d}.stdout")
        err_path = os.path.join(self.tmp, f"run{n:02d}.stderr")
        rc, out, err, secs = self.procs.run(f"millrace {argv_tail[0]}", argv, out_path,
                                            err_path, self.env, self.tmp, RUN_TIMEOUT_SECS)
        if want_ok:
            problems = []
            if rc is None:
                problems.append(f"still running after {RUN_TIMEOUT_SECS:.0f}s (killed)")
            elif rc != 0:
                problems.append(f"exit status {rc}")
            if problems:
                problems += text_tail("stderr", err) + text_tail("stdout", out)
            ck.check(f"{label}: millrace {argv_tail[0]} exits 0 ({secs:.1f}s)", problems)
        return rc, out, err

    def query(self, ck, label, tables, sql, fmt="csv", extra=(), want_ok=True):
        argv = ["query"]
        for t in tables:
            argv += ["--table", t]
        argv += ["--s3-endpoint-url", self.endpoint, "--format", fmt] + list(extra) + [sql]
        return self.millrace(ck, label, argv, want_ok=want_ok)

    def url(self, key):
        return f"s3://{self.bucket}/{key}"


def parse_csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def parse_json_lines(text):
    out = []
    for line in text.splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def csv_ints(text, cols):
    """The single CSV row of `text` as ints for `cols`, or (None, problems)."""
    try:
        rows = parse_csv_rows(text)
    except csv.Error as exc:
        return None, [f"stdout is not CSV: {exc}"] + text_tail("stdout", text)
    if len(rows) != 1:
        return None, [f"{len(rows)} CSV data rows, want 1"] + text_tail("stdout", text)
    header = list(rows[0].keys())
    if header != list(cols):
        return None, [f"CSV header {header}, want {list(cols)}"] + text_tail("stdout", text)
    try:
        return {c: int(rows[0][c]) for c in cols}, []
    except (TypeError, ValueError):
        return None, [f"CSV values {rows[0]} are not integers"]


def warnings_in(stderr):
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


# ---------------------------------------------------------------------------------------------
# Steps


def setup_s3(ck, c):
    label = "setup"
    port = free_port()
    c.endpoint = f"http://127.0.0.1:{port}"
    moto_log = os.path.join(c.tmp, "moto.log")
    moto = c.procs.start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                  "-p", str(port)], moto_log, c.env)
    problem = wait_http(c.endpoint + "/", 30)
    if problem is None and moto.poll() is not None:
        problem = f"moto exited with status {moto.returncode}"
    if not ck.check(f"{label}: moto server answers on {c.endpoint}",
                    [problem] + log_tail(moto_log) if problem else []):
        raise Abort("no S3 server")
    c.s3 = s3_client(c.endpoint)
    c.bucket = f"millrace-prep-{os.getpid()}"
    try:
        c.s3.create_bucket(Bucket=c.bucket)
        problems = []
    except (ClientError, BotoCoreError) as exc:
        problems = [err_text(exc)]
    if not ck.check(f"{label}: boto3 create_bucket {c.bucket}", problems):
        raise Abort("no bucket")


def put(c, key, body):
    c.s3.put_object(Bucket=c.bucket, Key=key, Body=body)


def step_a(ck, c):
    label = "a (query over S3)"
    data = c.data
    ndjson = b"".join(json.dumps(r).encode("utf-8") + b"\n" for r in data.records[:GZ_RECORDS])
    gz = gzip.compress(ndjson)
    try:
        put(c, KEY_OBJ1, data.raw)
        put(c, KEY_OBJ2, gz)
        problems = []
    except (ClientError, BotoCoreError) as exc:
        problems = [err_text(exc)]
    if not ck.check(f"{label}: put {KEY_OBJ1} ({len(data.raw)} bytes, {len(data.records)} "
                    f"concatenated JSON objects) and {KEY_OBJ2} (first {GZ_RECORDS} as gzip "
                    f"NDJSON, {len(gz)} bytes)", problems):
        raise Abort("raw objects not written")

    all_recs = data.records + data.records[:GZ_RECORDS]
    want = {"n": len(all_recs), "t": tenure_sum(all_recs)}
    table = f"raw={c.url('raw/churn')}"
    sql = "SELECT count(*) AS n, sum(CAST(tenure AS INT)) AS t FROM raw"
    rc, out, err = c.query(ck, label, [table], sql)
    if rc == 0:
        got, problems = csv_ints(out, ["n", "t"])
        if got is not None and got != want:
            problems.append(f"got {got}, want {want} (computed from the input file)")
        ck.check(f"{label}: --format csv prints header n,t and n = {want['n']}, t = "
                 f"{want['t']} (obj1 + gzip obj2)", problems)
        warn = warnings_in(err)
        ck.check(f"{label}: no warning on stderr", [f"stderr: {w}" for w in warn])

    ids = len({r["customerID"] for r in all_recs})
    rc, out, err = c.query(ck, f"{label}, --format json",
                           [table], "SELECT count(DISTINCT customerID) AS ids FROM raw",
                           fmt="json")
    if rc == 0:
        problems = []
        try:
            rows = parse_json_lines(out)
            if rows != [{"ids": ids}]:
                problems.append(f"got {rows}, want [{{'ids': {ids}}}]")
        except ValueError as exc:
            problems.append(f"stdout is not JSON lines: {exc}")
            problems += text_tail("stdout", out)
        ck.check(f"{label}: --format json prints one object per line; "
                 f"count(DISTINCT customerID) = {ids} (column name as written)", problems)

    rc, out, err = c.query(ck, f"{label}, --source-columns", [table],
                           "SELECT _object, count(*) AS n FROM raw GROUP BY _object "
                           "ORDER BY _object", fmt="json", extra=["--source-columns"])
    if rc == 0:
        problems = []
        try:
            rows = parse_json_lines(out)
        except ValueError as exc:
            rows = []
            problems.append(f"stdout is not JSON lines: {exc}")
        want_rows = [(KEY_OBJ1, len(data.records)), (KEY_OBJ2, GZ_RECORDS)]
        got_rows = [(r.get("_object"), r.get("n")) for r in rows]
        if len(got_rows) != len(want_rows) or any(
                not isinstance(o, str) or not (o == k or o.endswith("/" + k)) or n != wn
                for (o, n), (k, wn) in zip(got_rows, want_rows)):
            problems.append(f"got {got_rows}, want _object ending in the key and n: "
                            f"{want_rows}")
        ck.check(f"{label}: --source-columns: _object names each object's key, "
                 f"{len(data.records)} and {GZ_RECORDS} rows", problems)
    return want


def step_b(ck, c, want):
    label = "b (hidden objects)"
    tmp_obj = b"".join(c.data.pieces[:3])  # valid JSON: counted if it were read
    try:
        put(c, HIDDEN_KEYS[0], b"")
        put(c, HIDDEN_KEYS[1], b"not json at all {")
        put(c, HIDDEN_KEYS[2], tmp_obj)
        problems = []
    except (ClientError, BotoCoreError) as exc:
        problems = [err_text(exc)]
    if not ck.check(f"{label}: put {', '.join(HIDDEN_KEYS)}", problems):
        raise Abort("hidden objects not written")
    rc, out, err = c.query(ck, label, [f"raw={c.url('raw/churn')}"],
                           "SELECT count(*) AS n, sum(CAST(tenure AS INT)) AS t FROM raw")
    if rc == 0:
        got, problems = csv_ints(out, ["n", "t"])
        if got is not None and got != want:
            problems.append(f"got {got}, want {want} (as before the hidden objects)")
        problems += [f"stderr: {w}" for w in warnings_in(err)]
        ck.check(f"{label}: _SUCCESS, .x and _temporary/ are skipped: n and t unchanged, "
                 "no warning", problems)


def step_c(ck, c):
    label = "c (truncated object)"
    pieces = c.data.pieces
    good = b"".join(pieces[:3])
    body = good + pieces[3][:len(pieces[3]) // 2]
    offset = len(good)
    try:
        put(c, KEY_BROKEN, body)
        problems = []
    except (ClientError, BotoCoreError) as exc:
        problems = [err_text(exc)]
    if not ck.check(f"{label}: put {KEY_BROKEN} (3 records + half of the 4th, which starts "
                    f"at byte {offset})", problems):
        raise Abort("truncated object not written")
    table = f"bad={c.url('raw/broken')}"
    sql = "SELECT count(*) AS n FROM bad"
    rc, out, err = c.query(ck, label, [table], sql)
    if rc == 0:
        got, problems = csv_ints(out, ["n"])
        if got is not None and got != {"n": 3}:
            problems.append(f"got {got}, want n = 3 (the good records)")
        ck.check(f"{label}: the 3 good records are counted", problems)
        lines = [line for line in err.splitlines() if line.startswith("warning: skipped")]
        problems = []
        if not lines:
            problems.append("no stderr line starting 'warning: skipped'")
            problems += text_tail("stderr", err)
        else:
            w = lines[0]
            if KEY_BROKEN not in w:
                problems.append(f"warning does not name {KEY_BROKEN}: {w}")
            if not re.search(rf"(?<!\d){offset}(?!\d)", w):
                problems.append(f"warning does not name byte offset {offset}: {w}")
        ck.check(f"{label}: stderr warning names the object and byte offset {offset}",
                 problems)

    rc, out, err = c.query(ck, f"{label}, --strict", [table], sql, extra=["--strict"],
                           want_ok=False)
    problems = []
    if rc is None:
        problems.append(f"still running after {RUN_TIMEOUT_SECS:.0f}s (killed)")
    elif rc == 0:
        problems.append("exit status 0")
        problems += text_tail("stdout", out)
    elif KEY_BROKEN not in err:
        problems.append(f"stderr does not name {KEY_BROKEN}")
        problems += text_tail("stderr", err)
    ck.check(f"{label}: --strict exits nonzero and stderr names the object", problems)


def write_job(c, name, text):
    path = os.path.join(c.tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def job_toml(c, name, incremental, with_lake, sql, input_path, output_path, output_table):
    lines = ["# written by tests/compat/prep_flows.py", f'name = "{name}"']
    if with_lake:
        lines.append(f'lake = "s3://{c.bucket}/lake"')
    lines.append(f"incremental = {'true' if incremental else 'false'}")
    lines.append("sql = [")
    for s in sql:
        lines.append(f"'''{s}''',")
    lines.append("]")
    lines += ["", "[[input]]", 'table = "raw_churn"', f'path = "{input_path}"',
              'format = "json"', "source_columns = true", "",
              "[[output]]", f'path = "{output_path}"', f'table = "{output_table}"',
              'format = "parquet"', ""]
    return "\n".join(lines)


def read_manifest(ck, c, label, prefix):
    key = prefix + "_manifest.json"
    try:
        body = get_bytes(c.s3, c.bucket, key)
    except (ClientError, BotoCoreError) as exc:
        ck.check(f"{label}: s3://{c.bucket}/{key} exists", [err_text(exc)])
        return None, None
    try:
        m = json.loads(body)
        problems = [] if isinstance(m, dict) else ["not a JSON object"]
    except ValueError as exc:
        m, problems = None, [f"not JSON: {exc}"]
    want_keys = {"rows", "run_rows", "files", "inputs", "statements", "query", "mode",
                 "bad_record_count", "bad_records", "run_inputs", "run_id"}
    if not problems:
        missing = sorted(want_keys - set(m))
        if missing:
            problems.append(f"missing keys {missing}")
    if not ck.check(f"{label}: {key} is a JSON object with "
                    f"{', '.join(sorted(want_keys))}", problems):
        return None, body
    return m, body


def object_matches(obj, key):
    """The manifest names objects by location (s3://BUCKET/KEY); accept any URL ending in
    the key."""
    return isinstance(obj, str) and (obj == key or obj.endswith("/" + key))


def check_manifest_inputs(ck, c, label, m, want_keys, listing):
    """inputs: exactly want_keys (for table raw_churn), each with its S3 size and ETag."""
    problems = []
    inputs = m.get("inputs")
    if not isinstance(inputs, dict) or set(inputs) != {"raw_churn"}:
        tables = sorted(inputs) if isinstance(inputs, dict) else inputs
        problems.append(f"inputs has tables {tables!r}, want ['raw_churn']")
        ck.check(f"{label}: manifest inputs list every input object", problems)
        return
    entries = inputs["raw_churn"]
    got = {}
    for e in entries:
        obj = e.get("object") if isinstance(e, dict) else None
        key = next((k for k in want_keys if object_matches(obj, k)), None)
        if key is None:
            problems.append(f"unexpected input {e!r}")
            continue
        if key in got:
            problems.append(f"{key} listed twice")
        got[key] = e
        info = listing.get(key)
        if info is None:
            continue
        if e.get("size") != info["size"]:
            problems.append(f"{key}: size {e.get('size')!r}, S3 says {info['size']}")
        etag = e.get("etag")
        if etag is not None and etag.strip('"') != (info["etag"] or "").strip('"'):
            problems.append(f"{key}: etag {etag!r}, S3 says {info['etag']!r}")
        lm = e.get("last_modified_ms")
        if not isinstance(lm, int) or abs(lm - info["last_modified_ms"]) > 2000:
            problems.append(f"{key}: last_modified_ms {lm!r}, S3 says "
                            f"{info['last_modified_ms']}")
    missing = [k for k in want_keys if k not in got]
    if missing:
        problems.append(f"missing inputs {missing}")
    ck.check(f"{label}: manifest inputs are exactly {', '.join(want_keys)} with their S3 "
             "sizes, ETags and modification times (hidden objects not listed)", problems)


def check_files(ck, c, label, m, run_id):
    """Data files in S3 equal the manifest's; pyarrow reads each. Returns rows (dicts),
    schemas and the file names of this run, or None when the files cannot be read."""
    listing = list_objects(c.s3, c.bucket, OUTPUT_PREFIX)
    data_keys = sorted(k for k in listing
                       if not any(seg.startswith(("_", "."))
                                  for seg in k[len(OUTPUT_PREFIX):].split("/")))
    problems = []
    files = m.get("files") or []
    by_s3_key = {}
    for f in files:
        k = f.get("key") if isinstance(f, dict) else None
        if not isinstance(k, str):
            problems.append(f"file entry {f!r} has no key")
            continue
        # Manifest file keys are relative to the dataset folder.
        s3_key = OUTPUT_PREFIX + k.lstrip("/")
        by_s3_key[s3_key] = f
    if sorted(by_s3_key) != data_keys:
        problems.append(f"manifest files {sorted(by_s3_key)} != data objects in S3 "
                        f"{data_keys}")
    name_re = re.compile(r"^part-(?P<run>.+)-(?P<seq>\d{5})\.parquet$")
    this_run = []
    for s3_key, f in sorted(by_s3_key.items()):
        name = s3_key.rsplit("/", 1)[-1]
        mm = name_re.match(name)
        if not mm:
            problems.append(f"{s3_key}: name is not part-<run>-NNNNN.parquet")
        elif mm.group("run") != f.get("run_id"):
            problems.append(f"{s3_key}: named for run {mm.group('run')}, manifest says "
                            f"run_id {f.get('run_id')!r}")
        if f.get("run_id") == run_id:
            this_run.append(s3_key)
        if s3_key in listing and f.get("bytes") != listing[s3_key]["size"]:
            problems.append(f"{s3_key}: bytes {f.get('bytes')!r}, S3 size "
                            f"{listing[s3_key]['size']}")
    ck.check(f"{label}: {OUTPUT_PREFIX} holds exactly the manifest's data files "
             f"({len(by_s3_key)}), named part-<run>-NNNNN.parquet, with their sizes", problems)

    rows, schemas, read_p = [], {}, []
    for s3_key, f in sorted(by_s3_key.items()):
        if s3_key not in listing:
            continue
        try:
            table = pq.read_table(io.BytesIO(get_bytes(c.s3, c.bucket, s3_key)))
        except Exception as exc:  # noqa: BLE001 - any read failure is a check failure
            read_p.append(f"{s3_key}: {type(exc).__name__}: {exc}")
            continue
        schemas[s3_key] = table.schema
        if table.num_rows != f.get("rows"):
            read_p.append(f"{s3_key}: {table.num_rows} rows, manifest says {f.get('rows')!r}")
        rows.extend(table.to_pylist())
    if not ck.check(f"{label}: pyarrow {pyarrow.__version__} reads every data file, row "
                    "counts as in the manifest", read_p):
        return None
    return rows, schemas, this_run


def check_schema(ck, label, schemas):
    problems = []
    for k, schema in sorted(schemas.items()):
        names = schema.names
        if "tenure" not in names or "customerID" not in names:
            problems.append(f"{k}: columns {names}, want customerID and tenure among them")
            continue
        t = schema.field("tenure").type
        if not pat.is_integer(t):
            problems.append(f"{k}: tenure is {t}, want an integer type")
        if "_object" in names or "_row" in names or "rn" in names:
            problems.append(f"{k}: helper columns in the output: {names}")
    if not schemas:
        problems.append("no data files")
    ck.check(f"{label}: tenure is an integer column (CAST AS INT), no helper columns",
             problems)


def check_rows(ck, label, rows, want_latest):
    problems = []
    ids = [r.get("customerID") for r in rows]
    if len(rows) != len(want_latest):
        problems.append(f"{len(rows)} rows, want {len(want_latest)} (distinct customerIDs)")
    if len(set(ids)) != len(ids):
        problems.append(f"{len(ids) - len(set(ids))} duplicate customerIDs")
    if set(ids) != set(want_latest):
        problems.append(f"customerIDs differ: {len(set(want_latest) - set(ids))} missing, "
                        f"{len(set(ids) - set(want_latest))} unknown")
    got_sum = sum(r["tenure"] for r in rows if isinstance(r.get("tenure"), int))
    want_sum = tenure_sum(want_latest.values())
    if got_sum != want_sum:
        problems.append(f"sum(tenure) {got_sum}, want {want_sum}")
    wrong = [(r.get("customerID"), r.get("tenure")) for r in rows
             if r.get("customerID") in want_latest
             and r.get("tenure") != int(want_latest[r["customerID"]]["tenure"])]
    if wrong:
        problems.append(f"{len(wrong)} rows with another tenure than the latest record's, "
                        f"e.g. {wrong[:3]}")
    ck.check(f"{label}: {len(want_latest)} rows, one per customerID, tenure of the latest "
             f"record (sum {want_sum})", problems)


def query_curated(ck, c, label, want_rows, want_sum):
    rc, out, err = c.query(ck, label, [f"c={c.url('lake/curated/churn')}:parquet"],
                           "SELECT count(*) AS n, sum(tenure) AS t FROM c")
    if rc == 0:
        got, problems = csv_ints(out, ["n", "t"])
        want = {"n": want_rows, "t": want_sum}
        if got is not None and got != want:
            problems.append(f"got {got}, want {want}")
        ck.check(f"{label}: query over s3://.../lake/curated/churn:parquet returns the "
                 f"manifest's {want_rows} rows (sum(tenure) {want_sum})", problems)


def step_d(ck, c):
    label = "d (prep)"
    data = c.data
    raw_url = c.url("raw/churn")
    job1 = write_job(c, "churn-full.toml", job_toml(
        c, "churn-compat", False, True, [SQL_TYPED, SQL_LATEST], raw_url, "curated/churn",
        "latest"))
    rc, out, err = c.millrace(ck, label, ["prep", "--job", job1, "--s3-endpoint-url",
                                          c.endpoint])
    if rc != 0:
        raise Abort("prep failed")

    # Latest wins in key order (obj1 < obj2.gz), then row order.
    latest1 = latest_wins(data.records + data.records[:GZ_RECORDS])
    m1, _ = read_manifest(ck, c, label, OUTPUT_PREFIX)
    if m1 is None:
        raise Abort("no manifest")
    raw_listing = list_objects(c.s3, c.bucket, "raw/churn/")
    check_manifest_inputs(ck, c, label, m1, [KEY_OBJ1, KEY_OBJ2], raw_listing)
    problems = []
    if m1.get("mode") != "overwrite":
        problems.append(f"mode {m1.get('mode')!r}, want 'overwrite'")
    if m1.get("rows") != len(latest1) or m1.get("run_rows") != len(latest1):
        problems.append(f"rows {m1.get('rows')!r}, run_rows {m1.get('run_rows')!r}, want "
                        f"{len(latest1)} both")
    if m1.get("run_inputs") != {"raw_churn": 2}:
        problems.append(f"run_inputs {m1.get('run_inputs')!r}, want {{'raw_churn': 2}}")
    stmts = [s.strip() for s in m1.get("statements") or []]
    if stmts != [SQL_TYPED, SQL_LATEST]:
        problems.append(f"statements {stmts!r}, want the job's two")
    if "latest" not in str(m1.get("query")):
        problems.append(f"query {m1.get('query')!r} does not name the output table 'latest'")
    if m1.get("bad_record_count") != 0 or m1.get("bad_records") != []:
        problems.append(f"bad_record_count {m1.get('bad_record_count')!r}, bad_records "
                        f"{m1.get('bad_records')!r}, want 0 and []")
    files_rows = sum(f.get("rows", 0) for f in m1.get("files") or [] if isinstance(f, dict))
    if files_rows != m1.get("rows"):
        problems.append(f"files hold {files_rows} rows, rows says {m1.get('rows')!r}")
    ck.check(f"{label}: manifest mode overwrite, rows = run_rows = {len(latest1)}, "
             "run_inputs 2, statements and query of the job, no bad records", problems)
    run1 = m1.get("run_id")
    got = check_files(ck, c, label, m1, run1)
    if got is not None:
        rows, schemas, _ = got
        check_schema(ck, label, schemas)
        check_rows(ck, label, rows, latest1)
    query_curated(ck, c, label, m1.get("rows"), tenure_sum(latest1.values()))

    # Incremental run: one new object, a second job file without `lake` (given with --lake).
    label = "d (prep, incremental)"
    new = []
    for i in range(NEW_RECORDS):
        r = dict(data.records[i])
        r["customerID"] = f"NEW-{i:05d}"
        r["tenure"] = str(1000 + i)
        new.append(r)
    again = dict(new[0], tenure="2000")  # the same customer later in the object: it wins
    new_recs = new + [again]
    body = b"".join(json.dumps(r).encode("utf-8") for r in new_recs)
    try:
        put(c, KEY_OBJ4, body)
        problems = []
    except (ClientError, BotoCoreError) as exc:
        problems = [err_text(exc)]
    if not ck.check(f"{label}: put {KEY_OBJ4} ({len(new_recs)} records, {NEW_RECORDS} new "
                    "customers)", problems):
        raise Abort("new object not written")
    job2 = write_job(c, "churn-incremental.toml", job_toml(
        c, "churn-compat", True, False, [SQL_TYPED, SQL_LATEST], raw_url, "curated/churn",
        "latest"))
    lake_url = c.url("lake")
    argv2 = ["prep", "--job", job2, "--lake", lake_url, "--s3-endpoint-url", c.endpoint]
    rc, out, err = c.millrace(ck, label, argv2)
    if rc != 0:
        raise Abort("incremental prep failed")
    latest_new = latest_wins(new_recs)
    m2, _ = read_manifest(ck, c, label, OUTPUT_PREFIX)
    if m2 is None:
        raise Abort("no manifest")
    raw_listing = list_objects(c.s3, c.bucket, "raw/churn/")
    check_manifest_inputs(ck, c, label, m2, [KEY_OBJ1, KEY_OBJ2, KEY_OBJ4], raw_listing)
    problems = []
    want_total = (m1.get("rows") or 0) + len(latest_new)
    if m2.get("mode") != "append":
        problems.append(f"mode {m2.get('mode')!r}, want 'append'")
    if m2.get("run_inputs") != {"raw_churn": 1}:
        problems.append(f"run_inputs {m2.get('run_inputs')!r}, want {{'raw_churn': 1}} "
                        "(only the new object)")
    if m2.get("run_rows") != len(latest_new):
        problems.append(f"run_rows {m2.get('run_rows')!r}, want {len(latest_new)}")
    if m2.get("rows") != want_total:
        problems.append(f"rows {m2.get('rows')!r}, want {want_total} (cumulative)")
    if m2.get("run_id") == run1:
        problems.append(f"run_id {run1!r} unchanged")
    if "previous_run_id" in m2 and m2.get("previous_run_id") != run1:
        problems.append(f"previous_run_id {m2.get('previous_run_id')!r}, want {run1!r}")
    old_files = [f.get("key") for f in m1.get("files") or [] if isinstance(f, dict)]
    new_files = [f.get("key") for f in m2.get("files") or [] if isinstance(f, dict)]
    if new_files[:len(old_files)] != old_files:
        problems.append(f"files {new_files} do not start with the first run's {old_files}")
    if m2.get("bad_record_count") != 0:
        problems.append(f"bad_record_count {m2.get('bad_record_count')!r}, want 0")
    ck.check(f"{label}: manifest mode append, run_inputs 1 (only {KEY_OBJ4}), run_rows "
             f"{len(latest_new)}, rows {want_total}, the first run's files kept", problems)
    run2 = m2.get("run_id")
    got = check_files(ck, c, label, m2, run2)
    want_all = dict(latest1)
    want_all.update(latest_new)
    if got is not None:
        rows, schemas, this_run = got
        check_schema(ck, label, schemas)
        check_rows(ck, label, rows, want_all)
        ck.check(f"{label}: this run wrote at least one new data file",
                 [] if this_run else [f"no file with run_id {run2!r}"])
    query_curated(ck, c, label, m2.get("rows"), tenure_sum(want_all.values()))

    # Nothing new: the dataset stays as it is.
    label = "d (prep, incremental, nothing new)"
    before = list_objects(c.s3, c.bucket, OUTPUT_PREFIX)
    before_manifest = get_bytes(c.s3, c.bucket, OUTPUT_PREFIX + "_manifest.json")
    rc, out, err = c.millrace(ck, label, argv2)
    if rc == 0:
        after = list_objects(c.s3, c.bucket, OUTPUT_PREFIX)
        after_manifest = get_bytes(c.s3, c.bucket, OUTPUT_PREFIX + "_manifest.json")
        problems = []
        if after_manifest != before_manifest:
            problems.append("_manifest.json changed")
        data_before = {k: v["size"] for k, v in before.items() if "/_" not in k}
        data_after = {k: v["size"] for k, v in after.items() if "/_" not in k}
        if data_after != data_before:
            problems.append(f"data files changed: {sorted(set(data_after) ^ set(data_before))}")
        ck.check(f"{label}: manifest and data files unchanged", problems)


def step_e(ck, c):
    label = "e (bad SQL)"
    job = write_job(c, "bad-sql.toml", job_toml(
        c, "bad-sql", False, True,
        ["CREATE VIEW ok AS SELECT customerID FROM raw_churn",
         "CREATE VIEW broken AS SELECT customerID FROM no_such_table"],
        c.url("raw/churn"), "curated/bad", "broken"))
    rc, out, err = c.millrace(ck, label, ["prep", "--job", job, "--s3-endpoint-url",
                                          c.endpoint], want_ok=False)
    problems = []
    if rc is None:
        problems.append(f"still running after {RUN_TIMEOUT_SECS:.0f}s (killed)")
    elif rc == 0:
        problems.append("exit status 0")
    else:
        if job not in err:
            problems.append(f"stderr does not name the job file {job}")
        if "statement 2" not in err:
            problems.append("stderr does not say 'statement 2'")
    if problems:
        problems += text_tail("stderr", err)
    ck.check(f"{label}: a missing table in statement 2 exits nonzero; stderr names the job "
             "file and 'statement 2'", problems)
    try:
        written = sorted(list_objects(c.s3, c.bucket, BAD_OUTPUT_PREFIX))
        problems = [f"objects written: {written}"] if written else []
    except (ClientError, BotoCoreError) as exc:
        problems = [err_text(exc)]
    ck.check(f"{label}: nothing written under {BAD_OUTPUT_PREFIX}", problems)


# ---------------------------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--millrace", required=True, help="the millrace binary")
    ap.add_argument("--json", required=True, help="firehose-s3-object-example.json")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the scratch directory")
    args = ap.parse_args(argv)
    args.millrace = os.path.abspath(args.millrace)
    return args


def main(argv):
    args = parse_args(argv)
    ck = Checks(SUMMARY_PREFIX)
    procs = Procs()
    t_start = time.monotonic()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    env = child_env()
    os.environ.clear()
    os.environ.update(env)  # boto3 in this process sees the same settings
    tmp = tempfile.mkdtemp(prefix="millrace-prep-flows-")
    try:
        problems = []
        if not (os.path.isfile(args.millrace) and os.access(args.millrace, os.X_OK)):
            problems.append(f"{args.millrace} is not an executable file")
        data = None
        try:
            data = JsonData(args.json)
        except (OSError, ValueError) as exc:
            problems.append(str(exc))
        if not ck.check(f"inputs: millrace binary and JSON file ({args.json})", problems):
            raise Abort("inputs")
        note(f"millrace {args.millrace}, {len(data.records)} JSON records, boto3 "
             f"{boto3.__version__}, pyarrow {pyarrow.__version__}, scratch {tmp}")
        c = Ctx(args, data, tmp, procs, env)
        setup_s3(ck, c)
        note(f"S3 at {c.endpoint}, bucket {c.bucket}")
        want = None
        for key, step in (("a", step_a), ("b", step_b), ("c", step_c), ("d", step_d),
                          ("e", step_e)):
            t0 = time.monotonic()
            try:
                if key == "a":
                    want = step(ck, c)
                elif key == "b":
                    if want is None:
                        note("skip - b: step a did not finish")
                        continue
                    step(ck, c, want)
                else:
                    step(ck, c)
            except Abort as exc:
                note(f"step {key} stopped early: {exc}")
                if ck.failed == 0:
                    ck.failed = 1
                if key == "a":
                    raise
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - report, go on with the next step
                ck.check(f"step {key}: unexpected error", [err_text(exc)])
            note(f"step {key} took {time.monotonic() - t0:.1f}s")
    except Abort as exc:
        note(f"stopped: {exc}")
    except KeyboardInterrupt as exc:
        ck.check("interrupted", [f"{exc}"])
    finally:
        procs.cleanup()
        if args.keep_tmp:
            note(f"scratch kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    note(f"total {time.monotonic() - t_start:.1f}s")
    print(ck.summary())
    sys.stdout.flush()
    return 0 if ck.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
