#!/usr/bin/env python3
"""Server time per console page at the size the console issue names: `millrace up` with 100
streams (2 shards each, the first holding 1,000 records), 1,000 objects in one lake folder and
a model with 50 versions (trained first on a generated 500-row table, ~2 s each), then each
page requested N times in a row over loopback (keep-alive off, as a browser's first visit),
timing request to last byte. Reports p50 / p95 / max per page. Standard library only.

    python3 bench/console.py [--millrace target/release/millrace] [--requests 200] [--versions 50]

The issue's target: p95 ≤ 50 ms per page.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request

STREAMS = 100
OBJECTS = 1000
RECORDS = 1000


def start(binary, tmp):
    cfg = os.path.join(tmp, "millrace.toml")
    with open(cfg, "w") as f:
        f.write(
            '[server]\nkinesis_addr = "127.0.0.1:0"\nadmin_addr = "127.0.0.1:0"\n'
            '[storage]\nfsync = "never"\n[console]\naddr = "127.0.0.1:0"\n'
        )
        for i in range(STREAMS):
            f.write(f'[[stream]]\nname = "s{i:03}"\nshards = 2\n')
    p = subprocess.Popen(
        [binary, "--data-dir", os.path.join(tmp, "data"), "up", "-c", cfg],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    urls = {}
    while len(urls) < 2:
        line = p.stdout.readline()
        if not line:
            raise SystemExit("millrace up exited before its ready lines")
        for word in line.split():
            for name in ("kinesis", "console"):
                if word.startswith(name + "="):
                    urls[name] = word.split("=", 1)[1]
    return p, urls


def fill(binary, tmp, kinesis):
    rows = os.path.join(tmp, "rows.ndjson")
    with open(rows, "w") as f:
        for i in range(RECORDS):
            f.write(json.dumps({"customerID": f"C-{i}", "tenure": i % 72, "note": "x" * 200}) + "\n")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t", AWS_REGION="us-east-1")
    subprocess.run(
        [binary, "produce", "--endpoint-url", kinesis, "--stream", "s000", "--file", rows],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    folder = os.path.join(tmp, "data", "lake", "raw")
    os.makedirs(folder, exist_ok=True)
    for i in range(OBJECTS):
        shutil.copyfile(rows, os.path.join(folder, f"part-{i:04}.ndjson"))
    one = os.path.join(tmp, "data", "lake", "one")
    os.makedirs(one, exist_ok=True)
    shutil.copyfile(rows, os.path.join(one, "part-0.ndjson"))


def train(binary, tmp, versions):
    """`versions` versions of model `m` on a 500-row table: two numbers, a category, an id."""
    csv = os.path.join(tmp, "train.csv")
    with open(csv, "w") as f:
        f.write("id,x,z,plan,label\n")
        for i in range(500):
            x, z = (i * 37 % 100) / 100, (i * 61 % 100) / 100
            plan = ("basic", "plus", "pro")[i % 3]
            f.write(f"c{i},{x},{z},{plan},{'yes' if x + (plan == 'pro') * 0.2 > z else 'no'}\n")
    for v in range(versions):
        subprocess.run(
            [binary, "--data-dir", os.path.join(tmp, "data"), "train", "--data", csv,
             "--target", "label", "--name", "m", "--folds", "2"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(f"trained m v{v + 1}", end="\r", flush=True)
    print()


def timed(url, n):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    out = []
    for _ in range(n):
        t = time.perf_counter()
        with opener.open(url, timeout=60) as r:
            r.read()
            if r.status != 200:
                raise SystemExit(f"{url}: {r.status}")
        out.append((time.perf_counter() - t) * 1000)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--millrace", default="target/release/millrace")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--versions", type=int, default=50)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="millrace-console-bench-")
    train(args.millrace, tmp, args.versions)
    last = f"v{args.versions}"
    p, urls = start(args.millrace, tmp)
    try:
        fill(args.millrace, tmp, urls["kinesis"])
        c = urls["console"]
        pages = [
            ("overview", "/"),
            ("streams (100)", "/streams"),
            ("stream + 20 records", "/streams/s000?shard=shardId-000000000000"),
            ("stream + 500 records", "/streams/s000?shard=shardId-000000000000&last=500"),
            ("lake folder (1,000 objects)", "/lake?prefix=raw%2F"),
            ("object preview", "/lake/object?key=raw%2Fpart-0500.ndjson"),
            (f"models ({args.versions} versions)", "/models"),
            (f"a model's {args.versions} versions", "/models/m"),
            ("a version's metrics", f"/models/m/{last}"),
            ("what-if page (scores 1 record)", f"/models/m/{last}/predict"),
            ("what-if update (fragment)", f"/models/m/{last}/predict?x=0.3&z=0.6&plan=pro&_fragment=1"),
            ("trainings (list)", "/train"),
            ("train form (1,000 objects' columns)", "/train/new?prefix=raw%2F"),
            ("SQL box (empty)", "/sql"),
            ("SQL: 1 object, 100 rows", "/sql?table=r%3Done%2F&q="
             "SELECT+*+FROM+r+LIMIT+100"),
        ]
        # A query over the whole folder is a scan of 1,000 objects (~250 MB of JSON), not a
        # page: timed apart, 10 times.
        scans = [
            ("SQL: GROUP BY over 1,000 objects", "/sql?table=r%3Draw%2F&q="
             "SELECT+tenure%2C+count%28*%29+FROM+r+GROUP+BY+tenure+ORDER+BY+tenure", 10),
        ]
        print(f"{'page':<30} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
        for name, path, n in [(a, b, args.requests) for a, b in pages] + scans:
            timed(c + path, min(5, n))  # warm-up
            t = sorted(timed(c + path, n))
            p95 = t[int(0.95 * (len(t) - 1))]
            print(f"{name:<30} {statistics.median(t):>8.2f} {p95:>8.2f} {t[-1]:>8.2f}")
    finally:
        p.terminate()
        p.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
