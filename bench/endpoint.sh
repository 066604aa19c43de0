#!/usr/bin/env bash
# The real-time endpoint under open-loop load: `millrace endpoint` serving a model trained by
# `millrace train` on the Telco CSV, beside a FastAPI + uvicorn + scikit-learn peer
# (bench/peers/endpoint_fastapi.py, 2 workers) trained on the same file, both measured by the
# same load generator (`millrace bench endpoint`) in the same run. Single-record JSON requests
# of raw strings; latency from the scheduled send time.
#
#   bench/endpoint.sh [RATES] [DURATION]     (default 1000,2000,5000,10000 and 10s)
#
# Environment: MILLRACE_BIN (skip the release build), PEER_RATES (default 250,500,1000,2000;
# empty: millrace alone), QUERY (added to millrace's URL, e.g. `explain=all` for every
# prediction's contributions), TELCO_CSV. The load generator runs on the same 2 cores as the
# server it measures.
set -euo pipefail
cd "$(dirname "$0")/.."
rates="${1:-1000,2000,5000,10000}"
duration="${2:-10s}"
peer_rates="${PEER_RATES-250,500,1000,2000}"
query="${QUERY:+?$QUERY}"
csv="${TELCO_CSV:-../shared/data/telco-customer-churn.csv}"
csv="$(cd "$(dirname "$csv")" && pwd)/$(basename "$csv")"
venv=bench/.venv-endpoint

if [[ -n "${MILLRACE_BIN:-}" ]]; then bin="$MILLRACE_BIN"; else
  cargo build --release -p millrace
  bin=target/release/millrace
fi
if ! cmp -s bench/peers/endpoint_requirements.txt "$venv/requirements.txt" 2>/dev/null; then
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/peers/endpoint_requirements.txt
  cp bench/peers/endpoint_requirements.txt "$venv/requirements.txt"
fi

work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ping() {
  for _ in $(seq 1 300); do curl -sf "$1/ping" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "no answer from $1/ping" >&2; return 1
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$bin" --data-dir "$work/data" train --data "$csv" --target Churn --name churn 2>&1 |
  grep -E '^(ensemble of|left out)' || true
port=$(free_port)
"$bin" --data-dir "$work/data" endpoint --model churn --addr "127.0.0.1:$port" >"$work/millrace.log" 2>&1 &
pids+=($!)
wait_ping "http://127.0.0.1:$port"
echo "== millrace endpoint (ensemble of the quick build${query:+, $query}), $rates req/s, $duration each"
"$bin" bench endpoint --url "http://127.0.0.1:$port/invocations$query" --csv "$csv" --drop-column Churn \
  --rates "$rates" --duration "$duration" --json >"$work/millrace.json"
kill "${pids[0]}"
mkdir -p bench/.data
cp "$work/millrace.json" bench/.data/endpoint-millrace.json
[[ -n "$peer_rates" ]] || exit 0

peer_port=$(free_port)
CHURN_CSV="$csv" "$venv/bin/uvicorn" --app-dir bench/peers endpoint_fastapi:app --host 127.0.0.1 \
  --port "$peer_port" --workers 2 --log-level warning >"$work/peer.log" 2>&1 &
pids+=($!)
wait_ping "http://127.0.0.1:$peer_port"
echo "== FastAPI + uvicorn (2 workers) + scikit-learn LogisticRegression, $peer_rates req/s, $duration each"
"$bin" bench endpoint --url "http://127.0.0.1:$peer_port/invocations" --csv "$csv" --drop-column Churn \
  --rates "$peer_rates" --duration "$duration" --json >"$work/peer.json"
mkdir -p bench/.data
cp "$work/millrace.json" bench/.data/endpoint-millrace.json
cp "$work/peer.json" bench/.data/endpoint-peer.json
