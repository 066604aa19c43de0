#!/usr/bin/env python3
"""SageMaker Runtime flows: boto3's `sagemaker-runtime` client against `millrace endpoint`.

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/sagemaker_flows.py --millrace target/debug/millrace \
        --csv ../shared/data/telco-customer-churn.csv

A churn model is trained once with `millrace train` on the CSV and `millrace predict` scores
the same CSV (the oracle). `millrace endpoint --model churn` then serves it on a free loopback
port, and the client is `boto3.client("sagemaker-runtime", endpoint_url=URL)`: nothing but the
URL differs from code written for AWS.

Flows:
 1. invoke_endpoint, every CSV row (without Churn) sent as JSON records in bodies of 1,000:
    each prediction equals `millrace predict` on the same row (label, probability to 1e-12);
    ContentType application/json, InvokedProductionVariant v1, CustomAttributes echoed. CSV
    rows with Accept text/csv answer `label,probability` lines equal to predict's.
 2. Endpoint names: churn-v1 and churn:v1 (percent-encoded by botocore) invoke v1;
    TargetVariant v1 too; churn-v2 is a ValidationError naming the versions there are.
 3. invoke_endpoint_with_response_stream with 300 rows: exactly one PayloadPart per record, in
    order, each a JSON line equal to predict's; with Accept text/csv, one CSV row per part.
 4. invoke_endpoint_async: the rows put in the data dir's lake, InputLocation
    s3://lake/in/rows.json: the answer's OutputLocation (s3://lake/...) appears as a file under
    <data-dir>/lake holding predictions equal to predict's; an inline Body likewise; a body the
    model refuses ends at FailureLocation as a ModelError; InputLocation in another bucket or
    with a `..` segment is a ValidationError and nothing is queued.
 5. Errors as AWS code meets them: an unknown endpoint is ValidationError "Endpoint nope of
    account 000000000000 not found."; a body the model refuses is ModelError (HTTP 424,
    catchable as client.exceptions.ModelError) with OriginalStatusCode 400 and the model's
    message naming the record; no ContentType is ModelError with OriginalStatusCode 415.
 6. The endpoint stops cleanly on SIGTERM.

Output: "ok - ..." / "FAIL - ..." lines, "# ..." notes, and last the line
"sagemaker flows: N passed, M failed"; exit status 1 when M > 0.
"""

import argparse
import csv
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
    from botocore.exceptions import ClientError
    from delivery_flows import Abort, CsvData, Procs, child_env, client, log_tail
    from flowkit import Checks, err_text, error_code, note
except ImportError as exc:  # pragma: no cover - reported as a failed check
    sys.stderr.write(f"sagemaker_flows.py: cannot import a dependency ({exc}); "
                     "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n")
    print("sagemaker flows: 0 passed, 1 failed")
    sys.exit(1)

SUMMARY_PREFIX = "sagemaker flows"
BODY_ROWS = 1000
STREAM_ROWS = 300
ASYNC_WAIT_SECS = 60.0
START_TIMEOUT_SECS = 60.0
STOP_TIMEOUT_SECS = 15.0
TOLERANCE = 1e-12


# ---------------------------------------------------------------------------------------------
# The oracle and the endpoint


def train_and_predict(ck, procs, args, env, data_dir, tmp):
    """Trains churn v1 on the CSV; returns customerID -> (label, probability) from predict."""
    log = os.path.join(tmp, "train.log")
    rc, secs = procs.run("millrace train", [
        args.millrace, "--data-dir", data_dir, "train", "--data", args.csv,
        "--target", "Churn", "--name", "churn"], log, env, 300)
    if not ck.check(f"millrace train on the CSV exits 0 ({secs:.1f}s)",
                    [] if rc == 0 else [f"exit {rc}"] + log_tail(log)):
        raise Abort("train")
    out = os.path.join(tmp, "batch.csv")
    log = os.path.join(tmp, "predict.log")
    rc, _ = procs.run("millrace predict", [
        args.millrace, "--data-dir", data_dir, "predict", "--model", "churn",
        "--input", args.csv, "--output", out], log, env, 120)
    if not ck.check("millrace predict over the CSV exits 0",
                    [] if rc == 0 else [f"exit {rc}"] + log_tail(log)):
        raise Abort("predict")
    with open(out, newline="") as f:
        return {r["customerID"]: (r["predicted_label"], float(r["probability"]))
                for r in csv.DictReader(f)}


def start_endpoint(procs, args, env, data_dir, log):
    """`millrace endpoint --model churn` on a free port; returns (process, url)."""
    p = procs.start("millrace endpoint", [
        args.millrace, "--data-dir", data_dir, "endpoint", "--model", "churn",
        "--addr", "127.0.0.1:0"], log, env)
    pattern = re.compile(r"serving \S+ at (http://127\.0\.0\.1:[0-9]+)")
    deadline = time.monotonic() + START_TIMEOUT_SECS
    while time.monotonic() < deadline:
        with open(log, "rb") as f:
            m = pattern.search(f.read().decode("utf-8", "replace"))
        if m:
            return p, m.group(1)
        if p.poll() is not None:
            break
        time.sleep(0.05)
    raise Abort("the endpoint did not print its ready line\n" + "\n".join(log_tail(log)))


def stop_endpoint(procs, p, log):
    try:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=STOP_TIMEOUT_SECS)
    except subprocess.TimeoutExpired:
        procs.kill(p)
        return [f"still running {STOP_TIMEOUT_SECS:.0f}s after SIGTERM (killed)"] + log_tail(log)
    with open(log, "rb") as f:
        clean = b"endpoint stopped cleanly" in f.read()
    problems = [] if rc == 0 else [f"exit status {rc} after SIGTERM, want 0"]
    if not clean:
        problems.append("no 'endpoint stopped cleanly' line")
    return problems + (log_tail(log) if problems else [])


# ---------------------------------------------------------------------------------------------
# Bodies and comparisons


def records(rows):
    """The rows as JSON records without the target, every value a string."""
    return [{k: v for k, v in r.items() if k != "Churn"} for r in rows]


def csv_body(header, rows):
    """CSV rows without a header, in the training column order (the CSV's, without Churn)."""
    cols = [h for h in header if h != "Churn"]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    for r in rows:
        w.writerow([r[c] for c in cols])
    return out.getvalue().encode()


def compare(rows, predictions, batch, label):
    """Problems where a prediction differs from predict's for the same row."""
    problems = []
    if len(predictions) != len(rows):
        problems.append(f"{label}: {len(predictions)} predictions for {len(rows)} rows")
    for r, p in zip(rows, predictions):
        cid = r["customerID"]
        want = batch.get(cid)
        if want is None:
            problems.append(f"{cid}: missing from millrace predict's output")
        elif p.get("predicted_label") != want[0] or \
                abs(float(p.get("probability", -1)) - want[1]) > TOLERANCE:
            problems.append(f"{label} {cid}: {p.get('predicted_label')!r} "
                            f"{p.get('probability')!r}, predict says {want}")
    return problems


def compare_csv(rows, text, batch, label):
    lines = text.splitlines()
    preds = []
    for line in lines:
        lab, _, prob = line.rpartition(",")
        preds.append({"predicted_label": lab, "probability": prob})
    return compare(rows, preds, batch, label)


# ---------------------------------------------------------------------------------------------
# Flows


def flow_invoke(ck, sm, data, batch):
    problems, meta = [], set()
    rows = data.rows
    for i in range(0, len(rows), BODY_ROWS):
        chunk = rows[i:i + BODY_ROWS]
        r = sm.invoke_endpoint(EndpointName="churn", ContentType="application/json",
                               Body=json.dumps(records(chunk)),
                               CustomAttributes=f"trace=chunk-{i}")
        body = json.loads(r["Body"].read())
        problems += compare(chunk, body.get("predictions", []), batch, f"body {i}")
        meta.add((r.get("ContentType"), r.get("InvokedProductionVariant")))
        if r.get("CustomAttributes") != f"trace=chunk-{i}":
            problems.append(f"body {i}: CustomAttributes {r.get('CustomAttributes')!r}")
    if meta != {("application/json", "v1")}:
        problems.append(f"ContentType and InvokedProductionVariant: {sorted(meta)}")
    ck.check(f"flow 1: invoke_endpoint over all {len(rows)} rows (JSON bodies of "
             f"{BODY_ROWS}) equals millrace predict, variant v1, custom attributes echoed",
             problems)
    chunk = rows[:BODY_ROWS]
    r = sm.invoke_endpoint(EndpointName="churn", ContentType="text/csv", Accept="text/csv",
                           Body=csv_body(data.header, chunk))
    problems = [] if r.get("ContentType") == "text/csv" else [f"ContentType {r.get('ContentType')}"]
    problems += compare_csv(chunk, r["Body"].read().decode(), batch, "csv")
    ck.check(f"flow 1: invoke_endpoint with CSV rows and Accept text/csv answers "
             f"label,probability rows equal to millrace predict ({len(chunk)} rows)", problems)


def flow_names(ck, sm, data, batch):
    rows = data.rows[:20]
    problems = []
    for name, variant in [("churn-v1", None), ("churn:v1", None), ("churn", "v1")]:
        kw = {"TargetVariant": variant} if variant else {}
        r = sm.invoke_endpoint(EndpointName=name, ContentType="application/json",
                               Body=json.dumps(records(rows)), **kw)
        if r.get("InvokedProductionVariant") != "v1":
            problems.append(f"{name} {variant}: variant {r.get('InvokedProductionVariant')}")
        problems += compare(rows, json.loads(r["Body"].read())["predictions"], batch, name)
    ck.check("flow 2: endpoint names churn-v1 and churn:v1, and TargetVariant v1, invoke "
             "version 1", problems)
    try:
        sm.invoke_endpoint(EndpointName="churn-v2", ContentType="application/json",
                           Body=json.dumps(records(rows)))
        problems = ["churn-v2 answered"]
    except ClientError as exc:
        msg = exc.response["Error"]["Message"]
        problems = [] if error_code(exc) == "ValidationError" and "v1" in msg else \
            [err_text(exc)]
    ck.check("flow 2: churn-v2 (no such version) is a ValidationError naming the versions",
             problems)


def flow_stream(ck, sm, data, batch):
    rows = data.rows[:STREAM_ROWS]
    r = sm.invoke_endpoint_with_response_stream(
        EndpointName="churn", ContentType="application/json", Body=json.dumps(records(rows)))
    problems, preds, other = [], [], []
    for event in r["Body"]:
        if "PayloadPart" in event:
            part = event["PayloadPart"]["Bytes"]
            if not part.endswith(b"\n") or part.count(b"\n") != 1:
                problems.append(f"part {len(preds)} is not one JSON line: {part[:80]!r}")
            preds.append(json.loads(part))
        else:
            other.append(event)
    if other:
        problems.append(f"events other than PayloadPart: {other[:3]}")
    if r.get("ContentType") != "application/jsonlines":
        problems.append(f"ContentType {r.get('ContentType')!r}")
    problems += compare(rows, preds, batch, "stream")
    ck.check(f"flow 3: invoke_endpoint_with_response_stream yields one PayloadPart per record "
             f"({len(preds)} for {len(rows)}), each equal to millrace predict", problems)
    r = sm.invoke_endpoint_with_response_stream(
        EndpointName="churn", ContentType="text/csv", Accept="text/csv",
        Body=csv_body(data.header, rows[:50]))
    parts = [e["PayloadPart"]["Bytes"] for e in r["Body"] if "PayloadPart" in e]
    problems = [] if len(parts) == 50 else [f"{len(parts)} parts for 50 rows"]
    problems += compare_csv(rows[:50], b"".join(parts).decode(), batch, "stream csv")
    ck.check("flow 3: with Accept text/csv, one label,probability row per PayloadPart", problems)


def lake_path(lake, uri):
    if not uri or not uri.startswith("s3://lake/"):
        raise Abort(f"location {uri!r} is not s3://lake/...")
    return os.path.join(lake, uri[len("s3://lake/"):])


def wait_file(path):
    deadline = time.monotonic() + ASYNC_WAIT_SECS
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path, "rb") as f:
                return f.read()
        time.sleep(0.1)
    return None


def flow_async(ck, sm, data, batch, data_dir):
    lake = os.path.join(data_dir, "lake")
    rows = data.rows[:2000]
    os.makedirs(os.path.join(lake, "in"), exist_ok=True)
    with open(os.path.join(lake, "in", "rows.json"), "w") as f:
        json.dump(records(rows), f)
    r = sm.invoke_endpoint_async(EndpointName="churn", ContentType="application/json",
                                 InputLocation="s3://lake/in/rows.json", InferenceId="ci-rows")
    problems = []
    if r["ResponseMetadata"]["HTTPStatusCode"] != 202 or r.get("InferenceId") != "ci-rows":
        problems.append(f"status {r['ResponseMetadata']['HTTPStatusCode']}, "
                        f"InferenceId {r.get('InferenceId')!r}")
    note(f"flow 4: OutputLocation {r.get('OutputLocation')}, "
         f"FailureLocation {r.get('FailureLocation')}")
    out = wait_file(lake_path(lake, r.get("OutputLocation")))
    if out is None:
        problems.append(f"{r.get('OutputLocation')} did not appear in {ASYNC_WAIT_SECS:.0f}s")
    else:
        problems += compare(rows, json.loads(out).get("predictions", []), batch, "async")
    ck.check(f"flow 4: invoke_endpoint_async from s3://lake/in/rows.json writes predictions "
             f"equal to millrace predict where OutputLocation says ({len(rows)} rows)", problems)

    r = sm.invoke_endpoint_async(EndpointName="churn", ContentType="application/json",
                                 Body=json.dumps(records(rows[:50])).encode())
    out = wait_file(lake_path(lake, r.get("OutputLocation")))
    problems = [] if out is not None else [f"{r.get('OutputLocation')} did not appear"]
    if out is not None:
        problems += compare(rows[:50], json.loads(out)["predictions"], batch, "inline")
    ck.check(f"flow 4: invoke_endpoint_async with an inline Body (generated InferenceId "
             f"{r.get('InferenceId')}) writes its output likewise", problems)

    r = sm.invoke_endpoint_async(EndpointName="churn", ContentType="application/json",
                                 Body=b"[1, 2]")
    failure = wait_file(lake_path(lake, r.get("FailureLocation")))
    problems = []
    if failure is None:
        problems.append(f"{r.get('FailureLocation')} did not appear")
    else:
        err = json.loads(failure)
        if err.get("ErrorCode") != "ModelError" or err.get("OriginalStatusCode") != 400:
            problems.append(f"failure object {err}")
    if os.path.exists(lake_path(lake, r.get("OutputLocation"))):
        problems.append("an output was written too")
    ck.check("flow 4: a body the model refuses ends at FailureLocation as a ModelError "
             "(OriginalStatusCode 400), with no output", problems)

    results = os.path.join(lake, "async-inference")
    before = sorted(os.path.relpath(os.path.join(d, f), results)
                    for d, _, fs in os.walk(results) for f in fs)
    problems = []
    for loc in ["s3://other-bucket/in/rows.json", "s3://lake/../state/x.json",
                "s3://lake//etc/passwd"]:
        try:
            sm.invoke_endpoint_async(EndpointName="churn", ContentType="application/json",
                                     InputLocation=loc)
            problems.append(f"{loc}: accepted")
        except ClientError as exc:
            if error_code(exc) != "ValidationError":
                problems.append(f"{loc}: {err_text(exc)}")
            else:
                note(f"flow 4: {loc}: {exc.response['Error']['Message']}")
    after = sorted(os.path.relpath(os.path.join(d, f), results)
                   for d, _, fs in os.walk(results) for f in fs)
    if after != before:
        problems.append(f"results written for refused requests: {sorted(set(after) - set(before))}")
    ck.check("flow 4: InputLocation in another bucket, or leaving the lake, is a "
             "ValidationError, and nothing is queued", problems)


def expect_error(sm, kwargs):
    try:
        sm.invoke_endpoint(**kwargs)
    except ClientError as exc:
        return exc
    return None


def flow_errors(ck, sm, data):
    body = json.dumps(records(data.rows[:2]))
    exc = expect_error(sm, {"EndpointName": "nope", "ContentType": "application/json",
                            "Body": body})
    want = "Endpoint nope of account 000000000000 not found."
    problems = ["no error"] if exc is None else []
    if exc is not None and (error_code(exc) != "ValidationError" or
                            not exc.response["Error"]["Message"].startswith(want) or
                            exc.response["ResponseMetadata"]["HTTPStatusCode"] != 400):
        problems.append(err_text(exc))
    ck.check("flow 5: an unknown endpoint is ValidationError (400) 'Endpoint nope of account "
             "000000000000 not found.'", problems)

    bad = json.dumps([{"tenure": "1"}, {"tenure": {"nested": 1}}])
    problems = []
    try:
        sm.invoke_endpoint(EndpointName="churn", ContentType="application/json", Body=bad)
        problems.append("no error")
    except sm.exceptions.ModelError as exc:
        resp = exc.response
        note(f"flow 5: ModelError: {resp['Error']['Message']}")
        if resp.get("OriginalStatusCode") != 400 or \
                "record 1" not in resp.get("OriginalMessage", "") or \
                resp["ResponseMetadata"]["HTTPStatusCode"] != 424:
            problems.append(f"{resp}")
    except ClientError as exc:
        problems.append(err_text(exc))
    ck.check("flow 5: a body the model refuses is client.exceptions.ModelError (424) with "
             "OriginalStatusCode 400 and the model's message naming the record", problems)

    exc = expect_error(sm, {"EndpointName": "churn", "Body": body})
    problems = ["no error"] if exc is None else []
    if exc is not None and (error_code(exc) != "ModelError" or
                            exc.response.get("OriginalStatusCode") != 415):
        problems.append(f"{err_text(exc)} {exc.response.get('OriginalStatusCode')}")
    ck.check("flow 5: no ContentType is a ModelError with OriginalStatusCode 415", problems)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--millrace", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args(argv)
    args.millrace = os.path.abspath(args.millrace)
    args.csv = os.path.abspath(args.csv)
    ck = Checks(SUMMARY_PREFIX)
    procs = Procs()
    t_start = time.monotonic()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    env = child_env()
    os.environ.clear()
    os.environ.update(env)
    tmp = tempfile.mkdtemp(prefix="millrace-sagemaker-flows-")
    try:
        data = CsvData(args.csv)
        data_dir = os.path.join(tmp, "data")
        batch = train_and_predict(ck, procs, args, env, data_dir, tmp)
        log = os.path.join(tmp, "endpoint.log")
        p, url = start_endpoint(procs, args, env, data_dir, log)
        note(f"endpoint at {url}")
        sm = client("sagemaker-runtime", url)
        for key, flow in [("1", lambda: flow_invoke(ck, sm, data, batch)),
                          ("2", lambda: flow_names(ck, sm, data, batch)),
                          ("3", lambda: flow_stream(ck, sm, data, batch)),
                          ("4", lambda: flow_async(ck, sm, data, batch, data_dir)),
                          ("5", lambda: flow_errors(ck, sm, data))]:
            t0 = time.monotonic()
            try:
                flow()
            except Abort as exc:
                ck.check(f"flow {key}: stopped early", [str(exc)])
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - report, go on with the next flow
                ck.check(f"flow {key}: unexpected error", [err_text(exc)] + log_tail(log))
            note(f"flow {key} took {time.monotonic() - t0:.1f}s")
        ck.check("flow 6: the endpoint stops cleanly on SIGTERM", stop_endpoint(procs, p, log))
    except Abort as exc:
        ck.check("setup", [str(exc)])
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
