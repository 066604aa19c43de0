#!/usr/bin/env bash
# The Firehose API against moto's Firehose in the same run: PutRecordBatch of 500 records of
# ~600 bytes from 4 clients into a DirectPut delivery stream that delivers NDJSON at buffer
# interval 0 (AppendDelimiterToRecord); accepted records/s for both, and for millrace the time
# from each batch's acknowledgement to its records' object being committed in the lake (moto
# writes one S3 object per call, in memory, before it answers), and the same clients against a
# server that only answers (`--ceiling`: what the load generator can send on this machine at
# all). `millrace bench firehose` starts
# `millrace up` itself (fresh data dir, fsync = always: every acknowledged record is on disk).
#
#   bench/firehose.sh [RECORDS] [RUNS]      (default 200000 records per target, 3 runs)
#
# Environment: MILLRACE_BIN (skip the release build), VENV (a venv with moto[server] and boto3,
# default target/compat-venv, created by tests/compat/setup_venv.sh).
# Results: bench/.data/firehose-N.json.
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-200000}"
runs="${2:-3}"
venv="${VENV:-target/compat-venv}"
[[ -x "$venv/bin/python" ]] || bash tests/compat/setup_venv.sh "$venv"

if [[ -n "${MILLRACE_BIN:-}" ]]; then bin="$MILLRACE_BIN"; else
  cargo build --release -p millrace
  bin=target/release/millrace
fi
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$venv/bin/python" -m moto.server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
echo "moto $("$venv/bin/python" -c 'import moto; print(moto.__version__)') at http://127.0.0.1:$port"
mkdir -p bench/.data
for run in $(seq 1 "$runs"); do
  bucket="bench-firehose-$run"
  "$venv/bin/python" - "$port" "$bucket" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
s3.create_bucket(Bucket=sys.argv[2])
PY
  # moto keeps delivery streams by name: a fresh one per run.
  "$venv/bin/python" - "$port" <<'PY'
import sys, boto3
fh = boto3.client("firehose", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
try:
    fh.delete_delivery_stream(DeliveryStreamName="bench-firehose")
except fh.exceptions.ResourceNotFoundException:
    pass
PY
  echo "== run $run of $runs: $records records per target"
  "$bin" bench firehose --records "$records" --peer "moto=http://127.0.0.1:$port" \
    --peer-bucket "$bucket" --ceiling --json "bench/.data/firehose-$run.json"
done
