#!/usr/bin/env bash
# The Kafka tests against a real Kafka-protocol broker instead of librdkafka's mock cluster:
# tansu 0.6.0 (crates.io; in memory, on loopback) is installed into target/tools unless
# TANSU=/path/to/tansu names one, started on a free port, and
# `cargo test -p millrace --test integration kafka::` runs with MILLRACE_TEST_KAFKA pointing at
# it (topics are then made through CreateTopics, with names of their own per run).
#
# Not part of .ci/run: building tansu takes 15-20 minutes on the 2-core CI machine, so CI runs
# the same tests against the mock cluster. Usage: bash scripts/kafka-broker-tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0

tansu=${TANSU:-target/tools/bin/tansu}
if [ ! -x "$tansu" ]; then
  echo "== installing tansu 0.6.0 (storage engine: memory) into target/tools"
  cargo install tansu --version 0.6.0 --locked --features dynostore --root target/tools
  tansu=target/tools/bin/tansu
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
"$tansu" broker --storage-engine memory://tansu/ \
  --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" >"$log" 2>&1 &
broker=$!
trap 'kill "$broker" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    break
  fi
  if ! kill -0 "$broker" 2>/dev/null; then
    echo "tansu did not start:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "== $("$tansu" --version 2>/dev/null || echo tansu) on 127.0.0.1:$port"

MILLRACE_TEST_KAFKA="127.0.0.1:$port" cargo test -p millrace --test integration kafka:: -- --test-threads 1
