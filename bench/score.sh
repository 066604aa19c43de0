#!/usr/bin/env bash
# Streaming inference latency: PutRecord acknowledgement → prediction readable on the output
# stream, for (1) `millrace up` with a [[scoring]] section (the scorer reads the embedded store,
# woken on append) and (2) the standalone `millrace score` reading and writing through the
# Kinesis API (--poll-ms 5). Both score with a model trained by `millrace train` on the Telco
# CSV; records are single PutRecord calls of raw strings sent on a fixed schedule by
# `millrace bench score`, which also tails the output stream. fsync = always throughout (every
# acknowledged record and every prediction is on disk before its reply).
#
#   bench/score.sh [RATES] [DURATION]     (default 100,1000 and 10s)
#
# Environment: MILLRACE_BIN (skip the release build), TELCO_CSV. Results: bench/.data/score.json.
set -euo pipefail
cd "$(dirname "$0")/.."
rates="${1:-100,1000}"
duration="${2:-10s}"
csv="${TELCO_CSV:-../shared/data/telco-customer-churn.csv}"
csv="$(cd "$(dirname "$csv")" && pwd)/$(basename "$csv")"

if [[ -n "${MILLRACE_BIN:-}" ]]; then bin="$MILLRACE_BIN"; else
  cargo build --release -p millrace
  bin=target/release/millrace
fi
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$bin" --data-dir "$work/a" train --data "$csv" --target Churn --name churn >/dev/null
mkdir -p "$work/b/lake" && cp -r "$work/a/lake/models" "$work/b/lake/"

start_up() { # DATA_DIR CONFIG → sets url
  local port admin
  port=$(free_port); admin=$(free_port)
  sed -e "s/@PORT@/$port/; s/@ADMIN@/$admin/" "$2" >"$1.toml"
  "$bin" --data-dir "$1" up -c "$1.toml" >"$1.log" 2>&1 &
  pids+=($!)
  url="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do grep -q "admin=" "$1.log" && return 0; sleep 0.1; done
  cat "$1.log" >&2; return 1
}

cat >"$work/with-scoring.toml" <<'TOML'
[server]
kinesis_addr = "127.0.0.1:@PORT@"
admin_addr = "127.0.0.1:@ADMIN@"
[[stream]]
name = "churn-in"
shards = 2
[[scoring]]
stream = "churn-in"
model = "churn"
to_stream = "churn-scored"
TOML
start_up "$work/a" "$work/with-scoring.toml"
for _ in $(seq 1 100); do grep -q "scoring running" "$work/a.log" && break; sleep 0.1; done
sleep 1
echo "== up with [[scoring]] (embedded store), $rates records/s, $duration each"
"$bin" bench score --endpoint-url "$url" --stream churn-in --out-stream churn-scored --csv "$csv" \
  --drop-column Churn --rates "$rates" --duration "$duration" --json >"$work/embedded.json"
kill -TERM "${pids[0]}"; wait "${pids[0]}" || true

sed -e '/\[\[scoring\]\]/,$d' "$work/with-scoring.toml" >"$work/plain.toml"
start_up "$work/b" "$work/plain.toml"
"$bin" produce --endpoint-url "$url" --stream churn-in --file "$csv" --partition-key customerID \
  --batch >/dev/null 2>&1 || true
"$bin" --data-dir "$work/b" score --source-endpoint-url "$url" --stream churn-in --model churn \
  --to-stream churn-cli --poll-ms 5 >"$work/score.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "scoring churn-in" "$work/score.log" && break; sleep 0.1; done
sleep 2
echo "== millrace score through the Kinesis API (--poll-ms 5), $rates records/s, $duration each"
"$bin" bench score --endpoint-url "$url" --stream churn-in --out-stream churn-cli --csv "$csv" \
  --drop-column Churn --rates "$rates" --duration "$duration" --json >"$work/cli.json"

mkdir -p bench/.data
python3 - "$work/embedded.json" "$work/cli.json" >bench/.data/score.json <<'PY'
import json, sys
print(json.dumps({"embedded": json.load(open(sys.argv[1])), "cli_poll_5ms": json.load(open(sys.argv[2]))}, indent=1))
PY
echo "results: bench/.data/score.json"
