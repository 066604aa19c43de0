#!/usr/bin/env bash
# The stream stage's ingest benchmark: millrace against kinesalite and ferrokinesis (in memory
# and durable), same load, same run.
#
#   bench/ingest.sh [SECONDS]        (default 20; PROFILE=dev to skip the release build)
#
# Starts three peers on 127.0.0.1:
#   kinesalite      kinesalite 3.3.3 (npm, Node.js, in memory)        bench/peers/kinesalite.sh
#   ferro-memory    ferrokinesis 0.7.0 (Rust, in memory)              bench/peers/ferrokinesis.sh
#   ferro-durable   ferrokinesis 0.7.0 with --state-dir (WAL fsynced per request)
# then one `millrace bench ingest` invocation starts its own `millrace up` on a free loopback
# port with the default fsync policy and runs 4 clients x PutRecords of 500 x ~600-byte records
# into 4 shards against each target in turn (millrace first), then reads everything back.
# Results: a table on stdout (ratios are millrace / each peer) and target/bench/ingest.json.
#
# Environment: PROFILE (release | dev; dev builds the test profile: our crates at opt-level 1,
# dependencies at 3), MILLRACE_BIN (use this binary, skip the build), KINESALITE_PORT (4568),
# FERRO_MEMORY_PORT (4569), FERRO_DURABLE_PORT (4570). The peers' own knobs: see their scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
profile="${PROFILE:-release}"
kl_port="${KINESALITE_PORT:-4568}"
fm_port="${FERRO_MEMORY_PORT:-4569}"
fd_port="${FERRO_DURABLE_PORT:-4570}"
out="$PWD/target/bench"
mkdir -p "$out"

if [[ -n "${MILLRACE_BIN:-}" ]]; then
  bin="$MILLRACE_BIN"
  profile="$profile (MILLRACE_BIN=$bin)"
elif [ "$profile" = release ]; then
  cargo build --release -p millrace
  bin=target/release/millrace
else
  cargo build -p millrace
  bin=target/debug/millrace
fi

stop_peers() {
  bench/peers/kinesalite.sh stop "$out/kinesalite" || true
  bench/peers/ferrokinesis.sh stop "$out/ferro-memory" || true
  bench/peers/ferrokinesis.sh stop "$out/ferro-durable" || true
}
trap stop_peers EXIT

bench/peers/kinesalite.sh start "$kl_port" "$out/kinesalite"
bench/peers/ferrokinesis.sh start "$fm_port" "$out/ferro-memory"
bench/peers/ferrokinesis.sh start "$fd_port" "$out/ferro-durable" --durable

echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "profile: $profile"
"$bin" bench ingest --seconds "$seconds" \
  --peer "kinesalite=http://127.0.0.1:$kl_port" \
  --peer "ferro-memory=http://127.0.0.1:$fm_port" \
  --peer "ferro-durable=http://127.0.0.1:$fd_port" \
  --json "$out/ingest.json"
