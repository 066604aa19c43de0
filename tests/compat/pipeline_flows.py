#!/usr/bin/env python3
"""The whole pipeline, continuously: `millrace up -c examples/millrace.toml` fed with boto3.

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/pipeline_flows.py --millrace target/debug/millrace \
        --csv ../shared/data/telco-customer-churn.csv --examples examples

The shipped example config is copied with its job file; only its addresses (free loopback
ports) and buffer intervals (1 s) are changed. Then, with no command but the producer:

 1. Every CSV row goes in with boto3 put_records. Checks, within 180 s: raw objects in the
    lake; the curated dataset (prep job, triggered by new objects) with one row per customer;
    model churn v1 trained and promoted to production; the endpoint answering /ping and
    /invocations with churn:v1; one prediction per input on churn-scored, read with boto3.
 2. A second batch (3,000 generated customers) triggers prep, a retrain, and the gate: v2
    exists and its stage is what the recorded decision says (production when promoted,
    candidate when kept); `millrace status` lists every component.
 3. SIGTERM: `up` exits 0 and says it stopped cleanly; restarted, a third batch goes in and
    every input of all three batches has exactly one prediction, the curated dataset one
    row per customer.
 4. kill -9 right after a fourth batch is acknowledged; restarted, every input of the four
    batches has exactly one prediction and the curated dataset every customer.

Output: "ok - ..." / "FAIL - ..." lines, "# ..." notes, and last the line
"pipeline flows: N passed, M failed"; exit status 1 when M > 0.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    from delivery_flows import (Abort, CsvData, Procs, StartError, child_env, client,
                                log_tail, put_rows, start_up, stop_up)
    from flowkit import Checks, err_text, free_port, note, wait_http
    from serve_flows import exactly_once, predictions
except ImportError as exc:  # pragma: no cover
    sys.stderr.write(f"pipeline_flows.py: cannot import a dependency ({exc})\n")
    print("pipeline flows: 0 passed, 1 failed")
    sys.exit(1)

WAIT_SECS = 180.0


def wait_for(what, fn, secs=WAIT_SECS):
    """Polls fn() (None = not yet) until it returns a value; returns (value, seconds)."""
    t0 = time.monotonic()
    while True:
        try:
            v = fn()
        except Exception:  # noqa: BLE001 - not ready yet
            v = None
        if v is not None or time.monotonic() - t0 > secs:
            return v, time.monotonic() - t0
        time.sleep(0.5)


def registry(data):
    with open(os.path.join(data, "lake", "models", "churn", "_registry.json")) as f:
        return json.load(f)


def manifest_rows(data):
    with open(os.path.join(data, "lake", "curated", "churn", "_manifest.json")) as f:
        return json.load(f)["rows"]


def decisions(data):
    with open(os.path.join(data, "state", "pipeline", "train-churn.json")) as f:
        return json.load(f)["decisions"]


def invoke(port, row):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                 data=json.dumps(row).encode(),
                                 headers={"content-type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=5) as r:
        return json.loads(r.read())


def generated_rows(args, env, tmp, n, seed):
    path = os.path.join(tmp, f"gen-{seed}.csv")
    subprocess.run([args.millrace, "generate", "churn", "--rows", str(n), "--seed", str(seed),
                    "--out", path], check=True, env=env, capture_output=True)
    return CsvData(path).rows


def flow(ck, args, data, tmp, procs, env):
    ex = os.path.join(tmp, "examples")
    shutil.copytree(args.examples, ex)
    cfg = os.path.join(ex, "millrace.toml")
    ep_port = free_port()
    with open(cfg) as f:
        text = f.read()
    text = re.sub(r'addr = "127\.0\.0\.1:8080"', f'addr = "127.0.0.1:{ep_port}"', text)
    text = re.sub(r"buffer_interval_secs = \d+", "buffer_interval_secs = 1", text)
    with open(cfg, "w") as f:
        f.write(text)
    d = os.path.join(tmp, "data")
    log = os.path.join(tmp, "up.log")
    p, url = start_up(procs, args.millrace, d, log, env, config=cfg)
    admin = re.search(r"admin=(http://[0-9.:]+)", open(log).read()).group(1)
    k = client("kinesis", url)

    # 1. The first batch.
    t0 = time.monotonic()
    sent = put_rows(ck, k, "churn", data.rows, "batch 1")
    raw, _ = wait_for("raw", lambda: [1 for _ in os.scandir(os.path.join(d, "lake", "raw",
                                                                          "churn"))] or None)
    ck.check("batch 1: raw objects delivered into the lake", [] if raw else ["none"])
    rows, secs = wait_for("curated", lambda: manifest_rows(d) if manifest_rows(d) else None)
    ck.check(f"batch 1: prep ran by itself: curated/churn has one row per customer "
             f"({rows} rows, {secs:.0f}s)",
             [] if rows == len(data.by_id) else [f"{rows} rows, want {len(data.by_id)}"] +
             log_tail(log))
    prod, secs = wait_for("v1", lambda: registry(d).get("production"))
    ck.check(f"batch 1: churn v1 trained and promoted by itself ({secs:.0f}s)",
             [] if prod == 1 else [f"production {prod!r}"] + log_tail(log))
    problems = []
    err = wait_http(f"http://127.0.0.1:{ep_port}/ping", 30)
    if err:
        problems.append(err)
    else:
        row = {k2: v for k2, v in data.rows[0].items() if k2 != "Churn"}
        out = invoke(ep_port, row)
        if "predicted_label" not in json.dumps(out):
            problems.append(f"/invocations answered {out}")
    ck.check("batch 1: the endpoint from [endpoint] serves the model", problems)
    by_src, secs = wait_for("preds", lambda: (lambda b: b if not exactly_once(sent, b) else None)(
        predictions(k, "churn-scored")[0]))
    ck.check(f"batch 1: one prediction per input on churn-scored, read with boto3 "
             f"({time.monotonic() - t0:.0f}s after the first put)",
             exactly_once(sent, by_src or predictions(k, "churn-scored")[0]))

    # 2. A second batch: retrain and the gate.
    gen = generated_rows(args, env, tmp, 3000, 9)
    sent2 = put_rows(ck, k, "churn", gen, "batch 2")
    dec, secs = wait_for("decision", lambda: decisions(d) if len(decisions(d)) >= 2 else None)
    problems = []
    if not dec:
        problems = ["no second decision"] + log_tail(log)
    else:
        note(f"gate: {dec[-1]}")
        reg = registry(d)
        want = 2 if " promoted" in dec[-1] else 1
        if "churn:v2" not in dec[-1]:
            problems.append(f"decision is not about v2: {dec[-1]}")
        if reg.get("production") != want:
            problems.append(f"production v{reg.get('production')}, decision says v{want}")
        if not os.path.isfile(os.path.join(d, "lake", "models", "churn", "v2", "model.json")):
            problems.append("no v2 model.json")
    ck.check(f"batch 2: new rows triggered a retrain and the gate decided ({secs:.0f}s)",
             problems)
    st = subprocess.run([args.millrace, "status", "--admin-url", admin], env=env,
                        capture_output=True, text=True, timeout=30)
    missing = [c for c in ("delivery", "prep", "train", "scoring", "endpoint")
               if not re.search(rf"^{c}\b", st.stdout, re.M)]
    ck.check("millrace status lists every component",
             ([f"exit {st.returncode}: {st.stderr}"] if st.returncode else []) +
             [f"no {c} line in:\n{st.stdout}" for c in missing])

    # 3. SIGTERM, restart, a third batch.
    ck.check("SIGTERM: up exits 0 and stops cleanly", stop_up(procs, p, log))
    log2 = os.path.join(tmp, "up2.log")
    p, url = start_up(procs, args.millrace, d, log2, env, config=cfg)
    k = client("kinesis", url)
    gen3 = generated_rows(args, env, tmp, 500, 11)
    sent3 = put_rows(ck, k, "churn", gen3, "batch 3 (after restart)")
    everything = sent + sent2 + sent3
    by_src, secs = wait_for("all", lambda: (lambda b: b if not exactly_once(everything, b)
                                            else None)(predictions(k, "churn-scored")[0]))
    ck.check(f"after the restart: exactly one prediction per input of all three batches "
             f"({len(everything)} inputs)",
             exactly_once(everything, by_src or predictions(k, "churn-scored")[0]))
    ids = set(data.by_id) | {r["customerID"] for r in gen} | {r["customerID"] for r in gen3}
    rows, secs = wait_for("curated3", lambda: manifest_rows(d) if manifest_rows(d) == len(ids)
                          else None)
    ck.check(f"after the restart: curated/churn has one row per customer ({len(ids)})",
             [] if rows == len(ids) else [f"{manifest_rows(d)} rows"] + log_tail(log2))
    ck.check("SIGTERM again: up stops cleanly", stop_up(procs, p, log2))

    # 4. kill -9 right after a batch is acknowledged, restart: nothing acknowledged is lost.
    p, url = start_up(procs, args.millrace, d, os.path.join(tmp, "up2b.log"), env, config=cfg)
    k = client("kinesis", url)
    gen4 = generated_rows(args, env, tmp, 1500, 13)
    sent4 = put_rows(ck, k, "churn", gen4, "batch 4 (then kill -9)")
    time.sleep(0.3)
    procs.kill(p)
    note("up killed with SIGKILL right after batch 4 was acknowledged")
    log3 = os.path.join(tmp, "up3.log")
    p, url = start_up(procs, args.millrace, d, log3, env, config=cfg)
    k = client("kinesis", url)
    everything += sent4
    by_src, secs = wait_for("all4", lambda: (lambda b: b if not exactly_once(everything, b)
                                             else None)(predictions(k, "churn-scored")[0]))
    ck.check(f"after kill -9 and restart: exactly one prediction per input of all four "
             f"batches ({len(everything)} inputs)",
             exactly_once(everything, by_src or predictions(k, "churn-scored")[0]))
    ids |= {r["customerID"] for r in gen4}
    rows, secs = wait_for("curated4", lambda: manifest_rows(d) if manifest_rows(d) == len(ids)
                          else None)
    ck.check(f"after kill -9 and restart: curated/churn has every customer ({len(ids)})",
             [] if rows == len(ids) else [f"{manifest_rows(d)} rows"] + log_tail(log3))
    ck.check("SIGTERM: up stops cleanly after the crash recovery", stop_up(procs, p, log3))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--millrace", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--examples", required=True, help="the repository's examples/ folder")
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args(argv)
    args.millrace = os.path.abspath(args.millrace)
    ck = Checks("pipeline flows")
    procs = Procs()
    t_start = time.monotonic()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    env = child_env()
    os.environ.clear()
    os.environ.update(env)
    tmp = tempfile.mkdtemp(prefix="millrace-pipeline-flows-")
    try:
        flow(ck, args, CsvData(args.csv), tmp, procs, env)
    except Abort as exc:
        note(f"stopped early: {exc}")
        ck.failed = max(ck.failed, 1)
    except StartError as exc:
        ck.check("start millrace up", exc.problems)
    except KeyboardInterrupt as exc:
        ck.check("interrupted", [f"{exc}"])
    except Exception as exc:  # noqa: BLE001
        ck.check("unexpected error", [err_text(exc)])
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
