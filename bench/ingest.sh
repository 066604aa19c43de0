#!/usr/bin/env bash
# The stream stage's ingest benchmark: millrace against kinesalite, same load, same run.
#
#   bench/ingest.sh [SECONDS]        (default 20; PROFILE=dev to skip the release build)
#
# Starts kinesalite (npm, in-memory, 127.0.0.1) as the peer, then `millrace bench ingest`
# starts its own `millrace up` on a free loopback port with the default fsync policy and runs
# 4 clients x PutRecords of 500 x ~600-byte records into 4 shards against each target, then
# reads everything back. Results: a table on stdout and target/bench/ingest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
profile="${PROFILE:-release}"
port="${KINESALITE_PORT:-4568}"
out="$PWD/target/bench"
mkdir -p "$out"

if [ "$profile" = release ]; then
  cargo build --release -p millrace
  bin=target/release/millrace
else
  cargo build -p millrace
  bin=target/debug/millrace
fi

bench/peers/kinesalite.sh start "$port" "$out/kinesalite"
trap 'bench/peers/kinesalite.sh stop "$out/kinesalite" || true' EXIT

echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "profile: $profile"
"$bin" bench ingest --seconds "$seconds" --peer "kinesalite=http://127.0.0.1:$port" \
  --json "$out/ingest.json"
