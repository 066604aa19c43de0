#!/usr/bin/env python3
"""Prep on a Ballista cluster of millrace processes: `millrace ballista scheduler`, two
`millrace ballista executor`s, and `millrace prep --engine ballista://HOST:PORT`.

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/ballista_flows.py --millrace target/debug/millrace \
        [--records 1000000] [--s3-records 1000000]

Flows:
 1. Local lake: `millrace generate churn-lake` writes --records churn records (2% of them
    updates of earlier customers). The shipped churn job (examples/jobs/churn.toml:
    `latest_by` in the scan, trims and casts) runs on the local engine and on the cluster
    into two output folders. Both exit 0; pyarrow reads both datasets (the files their
    manifests list): the same rows, row for row; the manifests list the same input objects
    (size, ETag), the same row count and bad-record count; no scan report is left behind.
 2. The same over S3 (moto's server, every process with --s3-endpoint-url): the lake
    generated locally is uploaded with boto3 (--s3-records of it), the job runs with
    `lake = s3://BUCKET/lake` on both engines, and the outputs are compared the same way
    (downloaded with boto3).
 3. An executor killed (SIGKILL) in the middle of a cluster job, checked to be still running
    then: the job either finishes with the local engine's rows (row for row: no row lost or
    repeated) or exits nonzero with an error on stderr, within the flow's time limit (a hang
    fails); on failure the output folder holds no file (no partial output), and the other
    executor stays up. Which of the two happened is printed. It is done once per kill time:
    --kill-after seconds (1.0) into the job, and 80% of the cluster job's time in flow 1 (its
    last stage, on a machine of any speed); the killed executor is restarted between rounds.

Output: "ok - ..." / "FAIL - ..." lines, "# ..." notes, and last the line
"ballista flows: N passed, M failed"; exit status 1 when M > 0.
"""

import argparse
import io
import json
import os
import sys
import time

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from delivery_flows import Abort, client, flow_main, log_tail, run_flow, start_moto
    from flowkit import err_text, free_port, note
except ImportError as exc:  # pragma: no cover - reported as a failed check
    sys.stderr.write(f"ballista_flows.py: cannot import a dependency ({exc}); "
                     "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n")
    print("ballista flows: 0 passed, 1 failed")
    sys.exit(1)

SUMMARY_PREFIX = "ballista flows"
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHURN_JOB = os.path.join(REPO, "examples", "jobs", "churn.toml")
JOB_TIMEOUT_SECS = 600


class Cluster:
    """A scheduler and two executors, each its own process."""

    def __init__(self, args, procs, env, tmp):
        self.args, self.procs, self.env, self.tmp = args, procs, env, tmp
        self.port = free_port()
        self.url = f"ballista://127.0.0.1:{self.port}"
        self.executors = []
        self.job_secs = None  # the cluster job's time in flow 1

    def start(self, ck):
        log = os.path.join(self.tmp, "scheduler.log")
        self.scheduler = self.procs.start(
            "scheduler", [self.args.millrace, "ballista", "scheduler", "--addr",
                          f"127.0.0.1:{self.port}", "--executor-timeout", "10s"], log, self.env)
        ok = wait_log(log, "listening on", 30)
        if not ck.check(f"scheduler listens on 127.0.0.1:{self.port}",
                        [] if ok else log_tail(log)):
            raise Abort("no scheduler")
        for i in range(2):
            self.start_executor(ck, i)
        time.sleep(3)  # both registered (executors connect at once, then heartbeat)

    def restart_executor(self, ck, i):
        """Starts executor `i` again (after it was killed) and waits for it to register."""
        self.executors.pop(i)
        self.start_executor(ck, i, again=True)
        time.sleep(3)

    def start_executor(self, ck, i, again=False):
        name = f"executor-{i}" + ("-again" if again else "")
        log = os.path.join(self.tmp, f"{name}.log")
        work = os.path.join(self.tmp, name)
        os.makedirs(work, exist_ok=True)
        p = self.procs.start(
            name, [self.args.millrace, "ballista", "executor", "--scheduler",
                              f"127.0.0.1:{self.port}", "--port", str(free_port()),
                              "--grpc-port", str(free_port()), "--work-dir", work,
                              "--concurrent-tasks", "2"], log, self.env)
        ok = wait_log(log, "ballista executor on", 30)
        time.sleep(0.5)
        if not ck.check(f"executor {i} starts" + (" again" if again else ""),
                        [] if ok and p.poll() is None else log_tail(log)):
            raise Abort("no executor")
        self.executors.insert(i, (p, log))


def wait_log(path, text, secs):
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                if text in f.read():
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def run_prep(args, procs, env, tmp, job, name, extra, background=False):
    log = os.path.join(tmp, f"prep-{name}.log")
    argv = [args.millrace, "--data-dir", os.path.join(tmp, "data"), "prep", "--job", job] + extra
    if background:
        return procs.start(f"prep-{name}", argv, log, env), log
    rc, secs = procs.run(f"prep-{name}", argv, log, env, JOB_TIMEOUT_SECS)
    return rc, secs, log


def job_file(tmp, name, lake, output):
    """The shipped churn job with its output moved to `output` (and `lake` set when given)."""
    with open(CHURN_JOB, encoding="utf-8") as f:
        text = f.read()
    text = text.replace('path = "curated/churn"', f'path = "{output}"')
    if lake:
        text = f'lake = "{lake}"\n' + text
    path = os.path.join(tmp, f"{name}.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


class LocalStore:
    def __init__(self, root):
        self.root = root

    def get(self, key):
        with open(os.path.join(self.root, key), "rb") as f:
            return f.read()

    def keys(self, prefix):
        base = os.path.join(self.root, prefix)
        out = []
        for d, _, files in os.walk(base):
            for n in files:
                out.append(os.path.relpath(os.path.join(d, n), self.root))
        return sorted(out)


class S3Store:
    def __init__(self, s3, bucket, root):
        self.s3, self.bucket, self.root = s3, bucket, root

    def get(self, key):
        return self.s3.get_object(Bucket=self.bucket, Key=f"{self.root}/{key}")["Body"].read()

    def keys(self, prefix):
        out = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.root}/{prefix}"):
            out += [o["Key"][len(self.root) + 1:] for o in page.get("Contents", [])]
        return sorted(out)


def dataset(store, folder):
    """(manifest, table sorted by customerID) of a dataset written by prep."""
    m = json.loads(store.get(f"{folder}/_manifest.json"))
    tables = [pq.read_table(io.BytesIO(store.get(f"{folder}/{f['key']}"))) for f in m["files"]]
    t = pa.concat_tables(tables) if tables else None
    if t is not None:
        t = t.sort_by([("customerID", "ascending")])
    return m, t


def compare(ck, label, store, local, remote):
    problems = []
    try:
        (ma, ta), (mb, tb) = dataset(store, local), dataset(store, remote)
    except Exception as exc:  # noqa: BLE001
        ck.check(f"{label}: both datasets read back", [err_text(exc)])
        return None
    if ta is None or tb is None or ta.num_rows == 0:
        problems.append("an output is empty")
    elif not ta.equals(tb):
        problems.append(f"rows differ: local {ta.num_rows}, cluster {tb.num_rows}; "
                        f"schemas {ta.schema} / {tb.schema}")
    for k in ("inputs", "rows", "bad_record_count", "statements", "run_inputs"):
        if ma.get(k) != mb.get(k):
            problems.append(f"manifest {k} differs: {str(ma.get(k))[:200]} / "
                            f"{str(mb.get(k))[:200]}")
    listed = {f["key"] for f in mb["files"]}
    stray = [k for k in store.keys(remote) if k[len(remote) + 1:] not in listed
             and not any(seg.startswith(("_", ".")) for seg in k.split("/"))]
    if stray:
        problems.append(f"files no manifest lists: {stray[:5]}")
    left = store.keys("_millrace/")
    if left:
        problems.append(f"scan reports left behind: {left[:5]}")
    ck.check(f"{label}: the cluster's output is the local engine's, row for row "
             f"({ta.num_rows if ta is not None else 0} rows), with the same manifest", problems)
    return ta


def flow_local(ck, args, procs, env, tmp, cluster, lake):
    label = "flow 1 (local lake)"
    results = {}
    for engine, extra in [("local", []), ("cluster", ["--engine", cluster.url])]:
        job = job_file(tmp, f"local-{engine}", None, f"out/{engine}")
        rc, secs, log = run_prep(args, procs, env, tmp, job, f"local-{engine}",
                                 ["--lake", lake] + extra)
        ck.check(f"{label}: prep on the {engine} engine exits 0", [] if rc == 0
                 else [f"exit {rc}"] + log_tail(log))
        note(f"{label}: {engine} engine {secs:.1f}s ({args.records} records)")
        results[engine] = rc
        if engine == "cluster" and rc == 0:
            cluster.job_secs = secs
    if all(rc == 0 for rc in results.values()):
        compare(ck, label, LocalStore(lake), "out/local", "out/cluster")


def flow_s3(ck, args, procs, env, tmp, cluster, lake):
    label = "flow 2 (S3 lake via moto)"
    endpoint = start_moto(ck, procs, env, tmp, label)
    s3 = client("s3", endpoint)
    bucket = f"millrace-ballista-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    keys = LocalStore(lake).keys("raw/churn")
    budget = args.s3_records
    uploaded = 0
    t0 = time.monotonic()
    for key in keys:
        if uploaded >= budget:
            break
        body = LocalStore(lake).get(key)
        s3.put_object(Bucket=bucket, Key=f"lake/{key}", Body=body)
        uploaded += body.count(b"\n")
    note(f"{label}: uploaded {uploaded} records in {time.monotonic() - t0:.1f}s")
    s3env = dict(env, AWS_ENDPOINT_URL_S3=endpoint)
    for engine, extra in [("local", []), ("cluster", ["--engine", cluster.url])]:
        job = job_file(tmp, f"s3-{engine}", f"s3://{bucket}/lake", f"out/{engine}")
        rc, secs, log = run_prep(args, procs, s3env, tmp, job, f"s3-{engine}",
                                 ["--s3-endpoint-url", endpoint] + extra)
        ck.check(f"{label}: prep on the {engine} engine exits 0", [] if rc == 0
                 else [f"exit {rc}"] + log_tail(log))
        note(f"{label}: {engine} engine {secs:.1f}s")
        if rc != 0:
            return
    compare(ck, label, S3Store(s3, bucket, "lake"), "out/local", "out/cluster")


def flow_kill(ck, args, procs, env, tmp, cluster, lake):
    times = [args.kill_after]
    if cluster.job_secs:
        times.append(round(0.8 * cluster.job_secs, 2))
    for n, after in enumerate(times, 1):
        if n > 1:
            cluster.restart_executor(ck, 0)
        kill_round(ck, args, procs, env, tmp, cluster, lake, n, after)


def kill_round(ck, args, procs, env, tmp, cluster, lake, n, after):
    label = f"flow 3 (an executor killed {after:.2f}s into the job)"
    out = f"out/killed-{n}"
    job = job_file(tmp, f"kill-{n}", None, out)
    p, log = run_prep(args, procs, env, tmp, job, f"kill-{n}",
                      ["--lake", lake, "--engine", cluster.url], background=True)
    time.sleep(after)
    running = p.poll() is None
    victim, vlog = cluster.executors[0]
    victim.kill()
    victim.wait()
    note(f"{label}: executor 0 killed")
    ck.check(f"{label}: the job was still running when the executor was killed",
             [] if running else [f"it had exited ({p.returncode}) within "
                                 f"{after:.2f}s: use a larger --records"])
    t0 = time.monotonic()
    try:
        rc = p.wait(timeout=JOB_TIMEOUT_SECS)
    except Exception:  # noqa: BLE001
        procs.kill(p)
        rc = None
    with open(log, encoding="utf-8", errors="replace") as f:
        out_text = f.read()
    store = LocalStore(lake)
    if rc == 0:
        note(f"{label}: the job finished on the remaining executor "
             f"{time.monotonic() - t0:.1f}s after the kill")
        compare(ck, label, store, "out/local", out)
    else:
        note(f"{label}: the job failed (exit {rc})")
        ck.check(f"{label}: the job ends within {JOB_TIMEOUT_SECS}s, with its error on stderr",
                 [] if rc is not None and "error:" in out_text
                 else [f"exit {rc}"] + log_tail(log))
        leftovers = [k for k in store.keys(out)]
        ck.check(f"{label}: no partial output", [] if not leftovers
                 else [f"left: {leftovers[:5]}"])
    other, olog = cluster.executors[1]
    ck.check(f"{label}: the other executor is still up",
             [] if other.poll() is None else log_tail(olog))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--millrace", required=True)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--s3-records", type=int, default=1_000_000)
    ap.add_argument("--kill-after", type=float, default=1.0)
    ap.add_argument("--flows", default="123")
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args(argv)
    args.millrace = os.path.abspath(args.millrace)

    def body(ck, procs, env, tmp):
        lake = os.path.join(tmp, "lake")
        t0 = time.monotonic()
        rc, _ = procs.run("generate", [args.millrace, "generate", "churn-lake", "--out", lake,
                                       "--records", str(args.records)],
                          os.path.join(tmp, "generate.log"), env, 600)
        if not ck.check(f"generate a lake of {args.records} churn records", [] if rc == 0
                        else [f"exit {rc}"] + log_tail(os.path.join(tmp, "generate.log"))):
            raise Abort("no lake")
        note(f"generated in {time.monotonic() - t0:.1f}s")
        cluster = Cluster(args, procs, env, tmp)
        cluster.start(ck)
        flows = [("1", lambda: flow_local(ck, args, procs, env, tmp, cluster, lake)),
                 ("2", lambda: flow_s3(ck, args, procs, env, tmp, cluster, lake)),
                 ("3", lambda: flow_kill(ck, args, procs, env, tmp, cluster, lake))]
        for key, flow in flows:
            if key in args.flows:
                run_flow(ck, key, flow)

    return flow_main(SUMMARY_PREFIX, "millrace-ballista-flows-", args.keep_tmp, body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
