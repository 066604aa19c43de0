#!/usr/bin/env python3
"""Streaming-inference flows: `millrace score` and `up`'s [[scoring]] checked with boto3.

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/serve_flows.py --millrace target/debug/millrace \
        --csv ../shared/data/telco-customer-churn.csv

A churn model is trained once with `millrace train` on the CSV; every flow starts its own
`millrace up` on free loopback ports (processes in their own groups, killed at the end).

Flows:
 1. Live scoring through the Kinesis API. boto3 put_records of every CSV row (json.dumps of
    the row's strings, partition key customerID) into a 4-shard stream, plus three records
    that cannot be scored (not JSON; a JSON array; a nested object). `millrace score
    --source-endpoint-url URL --stream S --model churn --to-stream OUT --until-caught-up`.
    Checks, reading OUT and OUT-errors with boto3 (list_shards, get_shard_iterator
    TRIM_HORIZON, get_records to the end): exit 0; exactly one prediction per accepted input,
    matched by source_shard/source_sequence to what put_records returned; the customerID
    carried over; predicted_label and probability equal to `millrace predict` over the same
    CSV (1e-12); model_version 1; each prediction keyed by its input's partition key; the
    three bad records on OUT-errors once each, with a reason and the original data.
 2. Crash and restart. (a) A scorer run with MILLRACE_FAILPOINT=score-after-put:3 aborts
    after its third chunk of predictions is acknowledged and before its checkpoint; (b) a
    scorer running live is killed with SIGKILL while a producer is still putting; after each,
    a restart with --until-caught-up. Checks: the failpoint run died by a signal; after the
    restarts every input has exactly one prediction on the output stream.
 3. `millrace up -c` with a [[scoring]] section: rows put with boto3 while `up` runs appear
    as predictions on the output stream without any other command; SIGTERM, restart, more
    rows: still exactly one prediction per input.
 4. Batch transform on a real S3 API (moto's server mode): the CSV is uploaded with boto3,
    `millrace predict --input s3://B/in/churn.csv --output s3://B/scored/ --s3-endpoint-url`
    writes parts and a `_manifest.json`, and `--output s3://B/one.csv` one object. Checks,
    reading back with boto3: the manifest's rows and parts are the objects there; every row
    equals `millrace predict` on the local file, in order.
 5. Scorers on several machines: two live `millrace score --name shared --leases
    s3://B/leases --lease-time 3s` with their own data dirs share a 4-shard stream through
    shard leases on moto. Checks: one prediction per input; both scorers took leases; after
    one is killed with SIGKILL while records arrive, the other takes its shards over and every
    input still has exactly one prediction.

Output: "ok - ..." / "FAIL - ..." lines, "# ..." notes, and last the line
"serve flows: N passed, M failed"; exit status 1 when M > 0.
"""

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    from botocore.exceptions import BotoCoreError, ClientError
    from delivery_flows import (Abort, CsvData, Procs, StartError, child_env, client,
                                log_tail, put_rows, start_moto, start_up, stop_up,
                                wait_leases_taken, wait_stream_active)
    from flowkit import Checks, err_text, note
except ImportError as exc:  # pragma: no cover - reported as a failed check
    sys.stderr.write(f"serve_flows.py: cannot import a dependency ({exc}); "
                     "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n")
    print("serve flows: 0 passed, 1 failed")
    sys.exit(1)

SUMMARY_PREFIX = "serve flows"
SCORE_TIMEOUT_SECS = 120.0
LIVE_WAIT_SECS = 60.0
BAD_RECORDS = [b"this is not json", b'["an", "array"]', b'{"tenure": {"nested": 1}}']


def read_stream(kinesis, stream):
    """Every record of every shard, oldest first per shard: (shard, seq, pk, data)."""
    out = []
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    for sh in shards:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=sh["ShardId"],
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            r = kinesis.get_records(ShardIterator=it, Limit=10000)
            for x in r["Records"]:
                out.append((sh["ShardId"], x["SequenceNumber"], x["PartitionKey"], x["Data"]))
            it = r.get("NextShardIterator")
            if not r["Records"]:
                break
    return out


def predictions(kinesis, stream):
    """{(source_shard, source_sequence): [record dict, ...]} plus problems."""
    by_src, problems = {}, []
    for shard, seq, pk, data in read_stream(kinesis, stream):
        try:
            d = json.loads(data)
        except ValueError:
            problems.append(f"{stream}/{shard}/{seq}: not JSON: {data[:80]!r}")
            continue
        d["_pk"] = pk
        by_src.setdefault((d.get("source_shard"), d.get("source_sequence")), []).append(d)
    return by_src, problems


def exactly_once(sent, by_src):
    problems = []
    want = {(s["shard"], s["seq"]) for s in sent}
    for s in sent:
        n = len(by_src.get((s["shard"], s["seq"]), []))
        if n != 1:
            problems.append(f"input {s['shard']}/{s['seq']} has {n} predictions, want 1")
    extra = [k for k in by_src if k not in want]
    if extra:
        problems.append(f"{len(extra)} predictions answer no input put here, e.g. {extra[0]}")
    return problems


def score(procs, args, env, data_dir, url, stream, out, log, extra_env=None, live=False):
    argv = [args.millrace, "--data-dir", data_dir, "score", "--source-endpoint-url", url,
            "--stream", stream, "--model", "churn", "--to-stream", out, "--poll-ms", "20"]
    e = dict(env)
    e.update(extra_env or {})
    if live:
        return procs.start("millrace score", argv, log, e)
    return procs.run("millrace score", argv + ["--until-caught-up"], log, e, SCORE_TIMEOUT_SECS)


def batch_predictions(ck, procs, args, env, data_dir, tmp):
    """customerID → (predicted_label, probability) from `millrace predict` on the CSV."""
    out = os.path.join(tmp, "batch.csv")
    rc, _ = procs.run("millrace predict", [args.millrace, "--data-dir", data_dir, "predict",
                                           "--model", "churn", "--input", args.csv,
                                           "--output", out],
                      os.path.join(tmp, "predict.log"), env, 120)
    if not ck.check("millrace predict over the CSV exits 0",
                    [] if rc == 0 else [f"exit {rc}"] + log_tail(os.path.join(tmp, "predict.log"))):
        raise Abort("predict")
    with open(out, newline="") as f:
        return {r["customerID"]: (r["predicted_label"], float(r["probability"]))
                for r in csv.DictReader(f)}


def flow_cli(ck, args, data, tmp, procs, env, model_dir, batch):
    d = os.path.join(tmp, "f1")
    shutil.copytree(model_dir, os.path.join(d, "lake", "models"))
    p, url = start_up(procs, args.millrace, d, os.path.join(tmp, "f1-up.log"), env)
    k = client("kinesis", url)
    k.create_stream(StreamName="churn", ShardCount=4)
    ck.check("flow 1: input stream active", wait_stream_active(k, "churn", 4))
    sent = put_rows(ck, k, "churn", data.rows, "flow 1")
    bad = []
    for i, b in enumerate(BAD_RECORDS):
        r = k.put_record(StreamName="churn", Data=b, PartitionKey=f"bad{i}")
        bad.append({"shard": r["ShardId"], "seq": r["SequenceNumber"], "data": b})
    log = os.path.join(tmp, "f1-score.log")
    rc, secs = score(procs, args, env, d, url, "churn", "preds", log)
    if not ck.check("flow 1: millrace score --until-caught-up exits 0",
                    [] if rc == 0 else [f"exit {rc}"] + log_tail(log)):
        raise Abort("score")
    note(f"flow 1: scored {len(sent) + len(bad)} records in {secs:.1f}s (process wall time)")
    by_src, problems = predictions(k, "preds")
    problems += exactly_once(sent, by_src)
    ck.check(f"flow 1: exactly one prediction per input on the output stream "
             f"({len(sent)} inputs, read with boto3)", problems)
    problems = []
    for s in sent:
        preds = by_src.get((s["shard"], s["seq"]))
        if not preds:
            continue
        p1, row = preds[0], s["row"]
        cid = row["customerID"]
        if p1.get("customerID") != cid:
            problems.append(f"{cid}: customerID {p1.get('customerID')!r}")
        if p1["_pk"] != cid:
            problems.append(f"{cid}: partition key {p1['_pk']!r}")
        want = batch.get(cid)
        if want is None:
            problems.append(f"{cid}: missing from millrace predict's output")
            continue
        if p1.get("predicted_label") != want[0] or \
                abs(float(p1.get("probability", -1)) - want[1]) > 1e-12:
            problems.append(f"{cid}: stream {p1.get('predicted_label')!r} "
                            f"{p1.get('probability')!r}, batch {want}")
        if p1.get("model") != "churn" or p1.get("model_version") != 1 or not p1.get("scored_at"):
            problems.append(f"{cid}: model fields {p1.get('model')!r} "
                            f"{p1.get('model_version')!r} {p1.get('scored_at')!r}")
    ck.check("flow 1: every prediction equals millrace predict on the same row "
             "(label, probability to 1e-12), carries customerID, model, model_version, "
             "scored_at, and the input's partition key", problems)
    errs, problems = predictions(k, "preds-errors")
    problems += exactly_once(bad, errs)
    for b in bad:
        for e in errs.get((b["shard"], b["seq"]), []):
            if not e.get("error"):
                problems.append(f"{b['seq']}: no reason")
            if e.get("data", "").encode() != b["data"]:
                problems.append(f"{b['seq']}: data {e.get('data')!r}, want {b['data']!r}")
    reasons = sorted(e[0].get("error", "") for e in errs.values() if e)
    note("flow 1: error reasons: " + " | ".join(reasons))
    ck.check("flow 1: the 3 unscorable records are on preds-errors once each, "
             "with a reason and the original data", problems)
    ck.check("flow 1: up stops cleanly", stop_up(procs, p, os.path.join(tmp, "f1-up.log")))


def flow_crash(ck, args, data, tmp, procs, env, model_dir):
    d = os.path.join(tmp, "f2")
    shutil.copytree(model_dir, os.path.join(d, "lake", "models"))
    p, url = start_up(procs, args.millrace, d, os.path.join(tmp, "f2-up.log"), env)
    k = client("kinesis", url)
    k.create_stream(StreamName="churn", ShardCount=2)
    wait_stream_active(k, "churn", 2)
    rows = data.rows
    half = len(rows) // 2
    sent = put_rows(ck, k, "churn", rows[:half], "flow 2a")
    log = os.path.join(tmp, "f2-fail.log")
    rc, _ = score(procs, args, env, d, url, "churn", "crash", log,
                  extra_env={"MILLRACE_FAILPOINT": "score-after-put:3"})
    ck.check("flow 2a: the failpoint run dies after a put, before its checkpoint",
             [] if rc is not None and rc < 0 else [f"exit {rc}, want death by signal"] +
             log_tail(log))
    by_src, _ = predictions(k, "crash")
    note(f"flow 2a: {sum(len(v) for v in by_src.values())} predictions on the output "
         "stream before the restart")
    log = os.path.join(tmp, "f2-restart.log")
    rc, _ = score(procs, args, env, d, url, "churn", "crash", log)
    by_src, problems = predictions(k, "crash")
    problems = ([] if rc == 0 else [f"restart exit {rc}"] + log_tail(log)) + problems
    ck.check("flow 2a: after the restart, exactly one prediction per input",
             problems + exactly_once(sent, by_src))

    # (b) kill -9 while live, with records still arriving.
    log = os.path.join(tmp, "f2-live.log")
    live = score(procs, args, env, d, url, "churn", "crash", log, live=True)
    more = []
    rest = rows[half:]
    for i in range(0, len(rest), 500):
        more += put_rows(ck, k, "churn", rest[i:i + 500], f"flow 2b batch {i // 500}")
        if i == 1500:
            before = sum(len(v) for v in predictions(k, "crash")[0].values())
            procs.kill(live)
            note(f"flow 2b: scorer killed with SIGKILL while records were arriving "
                 f"({before} predictions on the output stream then)")
        time.sleep(0.1)
    log = os.path.join(tmp, "f2-restart2.log")
    rc, _ = score(procs, args, env, d, url, "churn", "crash", log)
    by_src, problems = predictions(k, "crash")
    problems = ([] if rc == 0 else [f"restart exit {rc}"] + log_tail(log)) + problems
    ck.check(f"flow 2b: after SIGKILL and restart, exactly one prediction per input "
             f"({len(sent) + len(more)} inputs)", problems + exactly_once(sent + more, by_src))
    ck.check("flow 2: up stops cleanly", stop_up(procs, p, os.path.join(tmp, "f2-up.log")))


def wait_predictions(k, stream, sent, secs):
    deadline = time.monotonic() + secs
    while True:
        try:
            by_src, problems = predictions(k, stream)
        except (ClientError, BotoCoreError):
            by_src, problems = {}, []
        missing = [s for s in sent if (s["shard"], s["seq"]) not in by_src]
        if not missing or time.monotonic() > deadline:
            return by_src, problems
        time.sleep(0.5)


def flow_up(ck, args, data, tmp, procs, env, model_dir):
    d = os.path.join(tmp, "f3")
    shutil.copytree(model_dir, os.path.join(d, "lake", "models"))
    cfg = os.path.join(tmp, "f3.toml")
    with open(cfg, "w") as f:
        f.write('[[stream]]\nname = "churn"\nshards = 2\n\n'
                '[[scoring]]\nstream = "churn"\nmodel = "churn"\nto_stream = "churn-scored"\n')
    log = os.path.join(tmp, "f3-up.log")
    p, url = start_up(procs, args.millrace, d, log, env, config=cfg)
    k = client("kinesis", url)
    wait_stream_active(k, "churn", 2)
    rows = data.rows
    t0 = time.monotonic()
    sent = put_rows(ck, k, "churn", rows[:3000], "flow 3")
    by_src, problems = wait_predictions(k, "churn-scored", sent, LIVE_WAIT_SECS)
    note(f"flow 3: predictions for all {len(sent)} inputs readable "
         f"{time.monotonic() - t0:.1f}s after the first put")
    ck.check("flow 3: up with [[scoring]] puts one prediction per input on churn-scored, "
             "with no other command", problems + exactly_once(sent, by_src))
    ck.check("flow 3: up stops cleanly on SIGTERM", stop_up(procs, p, log))
    log2 = os.path.join(tmp, "f3-up2.log")
    p, url = start_up(procs, args.millrace, d, log2, env, config=cfg)
    k = client("kinesis", url)
    more = put_rows(ck, k, "churn", rows[3000:], "flow 3 after restart")
    by_src, problems = wait_predictions(k, "churn-scored", sent + more, LIVE_WAIT_SECS)
    ck.check(f"flow 3: after SIGTERM and restart, still exactly one prediction per input "
             f"({len(sent) + len(more)} inputs)", problems + exactly_once(sent + more, by_src))
    ck.check("flow 3: up stops cleanly again", stop_up(procs, p, log2))


def flow_s3_batch(ck, args, tmp, procs, env, train_dir, batch):
    import io
    endpoint = start_moto(ck, procs, env, tmp, "flow 4")
    s3 = client("s3", endpoint)
    bucket = f"millrace-serve-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    with open(args.csv, "rb") as f:
        s3.put_object(Bucket=bucket, Key="in/churn.csv", Body=f.read())

    def predict(output, name):
        plog = os.path.join(tmp, f"{name}.log")
        rc, secs = procs.run("millrace predict", [
            args.millrace, "--data-dir", train_dir, "predict", "--model", "churn",
            "--input", f"s3://{bucket}/in/churn.csv", "--output", output,
            "--s3-endpoint-url", endpoint], plog, env, 300)
        return [] if rc == 0 else [f"exit {rc}"] + log_tail(plog)

    def rows_equal(label, text):
        got = list(csv.DictReader(io.StringIO(text)))
        problems = []
        if len(got) != len(batch):
            problems.append(f"{len(got)} rows, want {len(batch)}")
        for r in got:
            want = batch.get(r.get("customerID"))
            if want is None or r["predicted_label"] != want[0] or \
                    abs(float(r["probability"]) - want[1]) > 1e-12:
                problems.append(f"{r.get('customerID')}: {r.get('predicted_label')} "
                                f"{r.get('probability')}, local predict says {want}")
        return problems

    problems = predict(f"s3://{bucket}/one.csv", "predict-s3-file")
    if not problems:
        body = s3.get_object(Bucket=bucket, Key="one.csv")["Body"].read().decode()
        problems = rows_equal("file", body)
    ck.check("flow 4: predict s3:// CSV → one s3:// object: every row equals predict on the "
             "local file", problems)

    problems = predict(f"s3://{bucket}/scored/", "predict-s3-folder")
    if not problems:
        keys = {o["Key"]: o["Size"] for o in
                s3.list_objects_v2(Bucket=bucket, Prefix="scored/").get("Contents", [])}
        if "scored/_manifest.json" not in keys:
            problems.append(f"no scored/_manifest.json among {sorted(keys)}")
        else:
            m = json.loads(s3.get_object(Bucket=bucket, Key="scored/_manifest.json")["Body"]
                           .read())
            parts = [k for k in keys if k.startswith("scored/part-")]
            listed = {f.get("key") for f in m["files"]}
            if m.get("rows") != len(batch):
                problems.append(f"manifest rows {m.get('rows')}, want {len(batch)}")
            if listed != {k.split("/", 1)[1] for k in parts}:
                problems.append(f"parts {sorted(parts)} vs manifest files {listed}")
            if not problems and parts:
                import pyarrow.parquet as pq
                text = io.StringIO()
                w = None
                for k in sorted(parts):
                    t = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"]
                                                 .read()))
                    for row in t.to_pylist():
                        if w is None:
                            w = csv.DictWriter(text, fieldnames=list(row))
                            w.writeheader()
                        w.writerow(row)
                problems = rows_equal("folder", text.getvalue())
    ck.check("flow 4: predict s3:// CSV → s3:// folder: Parquet parts and a _manifest.json "
             "naming them, every row equal to predict on the local file", problems)


def flow_leases(ck, args, data, tmp, procs, env, model_dir):
    """Two live scorers of one name, each with its own data dir (as on two machines), share a
    4-shard stream through leases on moto; one is killed with SIGKILL mid-stream."""
    d = os.path.join(tmp, "f5")
    shutil.copytree(model_dir, os.path.join(d, "lake", "models"))
    p, url = start_up(procs, args.millrace, d, os.path.join(tmp, "f5-up.log"), env)
    k = client("kinesis", url)
    k.create_stream(StreamName="churn", ShardCount=4)
    wait_stream_active(k, "churn", 4)
    endpoint = start_moto(ck, procs, env, tmp, "flow 5")
    bucket = f"millrace-leases-{os.getpid()}"
    client("s3", endpoint).create_bucket(Bucket=bucket)
    scorers, logs = [], []
    for who in ("a", "b"):
        own = os.path.join(tmp, f"f5-{who}")
        shutil.copytree(model_dir, os.path.join(own, "lake", "models"))
        log = os.path.join(tmp, f"f5-score-{who}.log")
        argv = [args.millrace, "--data-dir", own, "score", "--source-endpoint-url", url,
                "--stream", "churn", "--model", "churn", "--to-stream", "shared",
                "--name", "shared", "--poll-ms", "20", "--leases", f"s3://{bucket}/leases",
                "--lease-time", "3s", "--s3-endpoint-url", endpoint]
        scorers.append(procs.start(f"millrace score ({who})", argv, log, env))
        logs.append(log)
    wait_leases_taken(ck, "flow 5", logs, LIVE_WAIT_SECS)
    rows = data.rows
    half = len(rows) // 2
    sent = put_rows(ck, k, "churn", rows[:half], "flow 5")
    by_src, problems = wait_predictions(k, "shared", sent, LIVE_WAIT_SECS)
    ck.check(f"flow 5: two scorers sharing the stream through leases put one prediction per "
             f"input ({len(sent)} inputs)", problems + exactly_once(sent, by_src))
    more = []
    rest = rows[half:]
    for i in range(0, len(rest), 500):
        more += put_rows(ck, k, "churn", rest[i:i + 500], f"flow 5 batch {i // 500}")
        if i == 500:
            procs.kill(scorers[0])
            note("flow 5: scorer a killed with SIGKILL while records were arriving")
        time.sleep(0.1)
    by_src, problems = wait_predictions(k, "shared", sent + more, LIVE_WAIT_SECS)
    ck.check(f"flow 5: after SIGKILL of one scorer the other takes its shards over: still "
             f"exactly one prediction per input ({len(sent) + len(more)} inputs)",
             problems + exactly_once(sent + more, by_src))
    procs.kill(scorers[1])
    ck.check("flow 5: up stops cleanly", stop_up(procs, p, os.path.join(tmp, "f5-up.log")))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--millrace", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--flows", default="1,2,3,4,5")
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args(argv)
    args.millrace = os.path.abspath(args.millrace)
    args.csv = os.path.abspath(args.csv)
    flows_wanted = {f.strip() for f in args.flows.split(",") if f.strip()}
    ck = Checks(SUMMARY_PREFIX)
    procs = Procs()
    t_start = time.monotonic()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    env = child_env()
    os.environ.clear()
    os.environ.update(env)
    tmp = tempfile.mkdtemp(prefix="millrace-serve-flows-")
    try:
        data = CsvData(args.csv)
        train_dir = os.path.join(tmp, "train")
        log = os.path.join(tmp, "train.log")
        rc, secs = procs.run("millrace train", [
            args.millrace, "--data-dir", train_dir, "train", "--data", args.csv,
            "--target", "Churn", "--name", "churn"], log, env, 300)
        if not ck.check(f"millrace train on the CSV exits 0 ({secs:.1f}s)",
                        [] if rc == 0 else [f"exit {rc}"] + log_tail(log)):
            raise Abort("train")
        model_dir = os.path.join(train_dir, "lake", "models")
        batch = batch_predictions(ck, procs, args, env, train_dir, tmp)
        for key, flow in [("1", lambda: flow_cli(ck, args, data, tmp, procs, env, model_dir,
                                                  batch)),
                          ("2", lambda: flow_crash(ck, args, data, tmp, procs, env, model_dir)),
                          ("3", lambda: flow_up(ck, args, data, tmp, procs, env, model_dir)),
                          ("4", lambda: flow_s3_batch(ck, args, tmp, procs, env, train_dir,
                                                      batch)),
                          ("5", lambda: flow_leases(ck, args, data, tmp, procs, env,
                                                    model_dir))]:
            if key not in flows_wanted:
                continue
            t0 = time.monotonic()
            try:
                flow()
            except Abort as exc:
                note(f"flow {key} stopped early: {exc}")
                ck.failed = max(ck.failed, 1)
            except StartError as exc:
                ck.check(f"flow {key}: start millrace up", exc.problems)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - report, go on with the next flow
                ck.check(f"flow {key}: unexpected error", [err_text(exc)])
            finally:
                procs.cleanup()
            note(f"flow {key} took {time.monotonic() - t0:.1f}s")
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
