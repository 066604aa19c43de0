#!/usr/bin/env python3
"""The model registry on S3 (moto's server mode): `--registry s3://BUCKET/registry` shared by
processes that share nothing else (each has its own data dir, as machines would).

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/registry_flows.py --millrace target/debug/millrace \
        --csv ../shared/data/telco-customer-churn.csv

Flows:
 1. Two `millrace train` runs started together against the same registry get distinct
    versions (1 and 2): each version's model.json names its own version, every file of a
    version was written by one run, each number was reserved once, and `millrace models list` from a
    third data dir shows both. Checked with boto3.
 2. Two `millrace endpoint` replicas (own data dirs, own ports) serve the production version;
    `millrace models promote` from a third data dir: both answer with the new version (the
    `x-millrace-model` header) within the bound (reload interval 1 s, bound 10 s; the time
    taken is printed); `models rollback`: both go back.
 3. Two processes promoting alternately at once (25 promotions each, conditional writes, no
    lock): every promotion a command reports as a change is in the log in S3, once, and
    production is the last entry.

Output: "ok - ..." / "FAIL - ..." lines, "# ..." notes, and last the line
"registry flows: N passed, M failed"; exit status 1 when M > 0.
"""

import argparse
import json
import os
import sys
import threading
import time
import urllib.request

try:
    from delivery_flows import Abort, client, flow_main, log_tail, run_flow, start_moto
    from flowkit import note
except ImportError as exc:  # pragma: no cover - reported as a failed check
    sys.stderr.write(f"registry_flows.py: cannot import a dependency ({exc}); "
                     "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n")
    print("registry flows: 0 passed, 1 failed")
    sys.exit(1)

SUMMARY_PREFIX = "registry flows"
SWAP_BOUND_SECS = 10.0
START_TIMEOUT_SECS = 60.0


class Registry:
    """The shared registry: the moto endpoint, the bucket, and millrace's arguments for it."""

    def __init__(self, args, procs, env, tmp, endpoint, bucket):
        self.args, self.procs, self.env, self.tmp = args, procs, env, tmp
        self.endpoint, self.bucket = endpoint, bucket
        self.url = f"s3://{bucket}/registry"
        self.env = dict(env, AWS_ENDPOINT_URL_S3=endpoint)

    def argv(self, data_dir, *rest):
        return [self.args.millrace, "--data-dir", data_dir, "--registry", self.url, *rest]

    def run(self, name, data_dir, rest, timeout=120):
        log = os.path.join(self.tmp, f"{name}.log")
        rc, secs = self.procs.run(name, self.argv(data_dir, *rest), log, self.env, timeout)
        return rc, secs, log

    def objects(self, s3):
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix="registry/"):
            for o in page.get("Contents", []):
                out[o["Key"][len("registry/"):]] = o
        return out


def flow_concurrent_train(ck, reg, s3):
    runs = []

    def train(i):
        runs.append((i, reg.run(f"train-{i}", os.path.join(reg.tmp, f"trainer-{i}"), [
            "train", "--data", reg.args.csv, "--target", "Churn", "--name", "churn"], 600)))

    threads = [threading.Thread(target=train, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    problems = []
    for i, (rc, secs, log) in sorted(runs):
        note(f"train {i}: exit {rc} in {secs:.1f}s")
        if rc != 0:
            problems += [f"train {i}: exit {rc}"] + log_tail(log)
    if not ck.check("flow 1: two trains at once against the S3 registry exit 0", problems):
        raise Abort("train")
    objects = reg.objects(s3)
    versions = sorted(int(k.split("/")[1][1:]) for k in objects
                      if k.startswith("churn/v") and k.endswith("/model.json"))
    problems = [] if versions == [1, 2] else [f"versions {versions}, want [1, 2]"]
    for v in versions:
        model = json.loads(s3.get_object(Bucket=reg.bucket,
                                         Key=f"registry/churn/v{v}/model.json")["Body"].read())
        if model.get("version") != v or model.get("name") != "churn":
            problems.append(f"v{v}/model.json says {model.get('name')}:v{model.get('version')}")
        metrics = json.loads(s3.get_object(
            Bucket=reg.bucket, Key=f"registry/churn/v{v}/metrics.json")["Body"].read())
        if metrics.get("version") != v:
            problems.append(f"v{v}/metrics.json is of version {metrics.get('version')}")
    reserved = sorted(int(k.split("/")[1][1:]) for k in objects if k.endswith("/.reserved"))
    if reserved != [1, 2]:
        problems.append(f"reservations {reserved}, want [1, 2] (kept so no number is reused)")
    ck.check("flow 1: the two runs got distinct versions 1 and 2, each whole and its own, "
             "each number reserved once", problems)
    rc, _, log = reg.run("models-list", os.path.join(reg.tmp, "admin"), ["models", "list"])
    with open(log, encoding="utf-8", errors="replace") as f:
        text = f.read()
    problems = [] if rc == 0 else [f"exit {rc}"] + log_tail(log)
    rows = {tuple(line.split()[:2]) for line in text.splitlines() if line.startswith("churn ")}
    if not problems and rows != {("churn", "v1"), ("churn", "v2")}:
        problems.append(f"models list rows {sorted(rows)}, want churn v1 and v2\n{text}")
    ck.check("flow 1: `models list` from another data dir shows the model with both versions",
             problems)


def start_endpoint(reg, name):
    log = os.path.join(reg.tmp, f"{name}.log")
    p = reg.procs.start(name, reg.argv(os.path.join(reg.tmp, name), "endpoint", "--model",
                                       "churn", "--addr", "127.0.0.1:0", "--reload-interval",
                                       "1s"), log, reg.env)
    deadline = time.monotonic() + START_TIMEOUT_SECS
    import re
    pattern = re.compile(r"serving \S+ at (http://127\.0\.0\.1:[0-9]+)")
    while time.monotonic() < deadline:
        with open(log, "rb") as f:
            m = pattern.search(f.read().decode("utf-8", "replace"))
        if m:
            return p, m.group(1)
        if p.poll() is not None:
            break
        time.sleep(0.05)
    raise Abort(f"{name} did not print its ready line\n" + "\n".join(log_tail(log)))


def served(url, record):
    req = urllib.request.Request(url + "/invocations", data=json.dumps(record).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
        return r.headers.get("x-millrace-model")


def wait_all(urls, record, want):
    """Seconds until every replica answers `want`, or None after the bound."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < SWAP_BOUND_SECS:
        if all(served(u, record) == want for u in urls):
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def flow_replicas(ck, reg, record):
    admin = os.path.join(reg.tmp, "admin")
    rc, _, log = reg.run("promote-1", admin, ["models", "promote", "churn:v1"])
    if not ck.check("flow 2: models promote churn:v1 exits 0",
                    [] if rc == 0 else [f"exit {rc}"] + log_tail(log)):
        raise Abort("promote")
    urls = [start_endpoint(reg, f"replica-{i}")[1] for i in (1, 2)]
    got = [served(u, record) for u in urls]
    ck.check("flow 2: both replicas serve the production version churn:v1",
             [] if got == ["churn:v1", "churn:v1"] else [f"replicas answer {got}"])
    for step, argv, want in [("promote", ["models", "promote", "churn:v2"], "churn:v2"),
                             ("rollback", ["models", "rollback", "churn"], "churn:v1")]:
        rc, _, log = reg.run(f"{step}-swap", admin, argv)
        took = wait_all(urls, record, want) if rc == 0 else None
        problems = [f"exit {rc}"] + log_tail(log) if rc != 0 else []
        if rc == 0 and took is None:
            problems.append(f"replicas answer {[served(u, record) for u in urls]} after "
                            f"{SWAP_BOUND_SECS:.0f}s, want {want}")
        if took is not None:
            note(f"{step}: both replicas answered {want} {took:.2f}s after the command")
        ck.check(f"flow 2: after `models {step}` from another data dir both replicas answer "
                 f"{want} within {SWAP_BOUND_SECS:.0f}s", problems)


def flow_concurrent_promotions(ck, reg, s3):
    rounds = 25
    failures, changed = [], []

    def promoter(name, a, b):
        for i in range(rounds):
            v = a if i % 2 == 0 else b
            rc, _, log = reg.run(f"{name}-{i}", os.path.join(reg.tmp, name),
                                 ["models", "promote", f"churn:v{v}"])
            with open(log, encoding="utf-8", errors="replace") as f:
                text = f.read()
            if rc != 0:
                failures.append([f"{name} round {i}: exit {rc}"] + log_tail(log))
            elif "is now in production" in text:
                changed.append(v)

    state = json.loads(s3.get_object(Bucket=reg.bucket,
                                     Key="registry/churn/_registry.json")["Body"].read())
    before = len(state["history"])
    # Both alternate between the two versions, so most promotions change production.
    threads = [threading.Thread(target=promoter, args=("promoter-a", 1, 2)),
               threading.Thread(target=promoter, args=("promoter-b", 2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    problems = [line for f in failures for line in f]
    state = json.loads(s3.get_object(Bucket=reg.bucket,
                                     Key="registry/churn/_registry.json")["Body"].read())
    added = [p["version"] for p in state["history"][before:]]
    # Every command that said it changed production has its entry in the log, and no other
    # entry was added: a lost update (two writers from one state) would leave fewer.
    if sorted(added) != sorted(changed):
        problems.append(f"log entries added {added}, but the commands that changed "
                        f"production promoted {changed}")
    if state["history"][-1]["version"] != state["production"]:
        problems.append(f"production {state['production']} is not the last promotion "
                        f"{state['history'][-1]}")
    note(f"{len(added)} of {2 * rounds} promotions changed production")
    ck.check("flow 3: two processes promoting at once: every command exits 0, every change a "
             "command reported is in the log once, and production is its last entry",
             problems)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--millrace", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args(argv)
    args.millrace = os.path.abspath(args.millrace)
    args.csv = os.path.abspath(args.csv)

    def body(ck, procs, env, tmp):
        endpoint = start_moto(ck, procs, env, tmp, "registry")
        s3 = client("s3", endpoint)
        bucket = f"millrace-registry-{os.getpid()}"
        s3.create_bucket(Bucket=bucket)
        reg = Registry(args, procs, env, tmp, endpoint, bucket)
        with open(args.csv, newline="") as f:
            import csv
            row = next(csv.DictReader(f))
        record = {k: v for k, v in row.items() if k != "Churn"}
        for key, flow in [("1", lambda: flow_concurrent_train(ck, reg, s3)),
                          ("2", lambda: flow_replicas(ck, reg, record)),
                          ("3", lambda: flow_concurrent_promotions(ck, reg, s3))]:
            run_flow(ck, key, flow)

    return flow_main(SUMMARY_PREFIX, "millrace-registry-flows-", args.keep_tmp, body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
