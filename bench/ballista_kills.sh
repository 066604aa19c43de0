#!/usr/bin/env bash
# An executor killed at many points of a cluster prep job: for each kill time, a fresh cluster of
# millrace processes on this machine (a scheduler with --executor-timeout 10s and two executors
# of 2 tasks each), the shipped churn job (examples/jobs/churn.toml) on it, executor 0 killed with
# -9 that many seconds after the job started. Each run must end (a 120 s limit marks a hang)
# and, when it finishes, give the local engine's row count.
#
#   bench/ballista_kills.sh [RECORDS] [KILL_TIMES]   (default 1000000, "0.8 1.0 … 2.6")
#
# Environment knobs:
#   RUNS   runs per kill time (default 2)
#   BIN    the millrace binary (default: target/release/millrace, built if missing)
#
# The lake is `millrace generate churn-lake` into bench/.data/kills-<records>, once. Output: one
# line per run (kill time, exit status, seconds, rows) and bench/.data/kills/runN-T/ with every
# process's log (MILLRACE_LOG=info,millrace_ballista=debug,ballista_scheduler=debug).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

records="${1:-1000000}"
times="${2:-0.8 0.9 1.0 1.1 1.2 1.3 1.4 1.5 1.6 1.7 1.8 1.9 2.0 2.1 2.2 2.3 2.4 2.5 2.6}"
runs="${RUNS:-2}"
bench_count RECORDS "$records"
bench_count RUNS "$runs"
bin="$(bench_bin)"
data="$PWD/bench/.data"
lake="$data/kills-$records"
work="$data/kills"
if [[ ! -d "$lake/raw/churn" ]]; then
  "$bin" generate churn-lake --out "$lake" --records "$records" >/dev/null
fi
sed 's|path = "curated/churn"|path = "out/killed"|' examples/jobs/churn.toml > "$data/kills-job.toml"
rm -rf "$lake/out/local"
sed 's|path = "curated/churn"|path = "out/local"|' examples/jobs/churn.toml > "$data/kills-local.toml"
"$bin" --data-dir "$work/data" prep --job "$data/kills-local.toml" --lake "$lake" >/dev/null
rows_of() {
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['rows'])" "$1" 2>/dev/null || true
}
expected=$(rows_of "$lake/out/local/_manifest.json")
echo "local engine: $expected rows"
export MILLRACE_LOG="${MILLRACE_LOG:-info,millrace_ballista=debug,ballista_scheduler=debug}"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

finished=0 failed=0 hung=0 wrong=0
for t in $times; do
  for i in $(seq 1 "$runs"); do
    d="$work/run$i-$t"
    rm -rf "$d" "$lake/out/killed"
    mkdir -p "$d"
    port=$(free_port)
    "$bin" ballista scheduler --addr "127.0.0.1:$port" --executor-timeout 10s >"$d/scheduler.log" 2>&1 &
    pids=($!)
    sleep 1
    for e in 0 1; do
      mkdir -p "$d/ex$e"
      "$bin" ballista executor --scheduler "127.0.0.1:$port" --port "$(free_port)" \
        --grpc-port "$(free_port)" --work-dir "$d/ex$e" --concurrent-tasks 2 \
        >"$d/executor-$e.log" 2>&1 &
      pids+=($!)
    done
    sleep 3
    t0=$(date +%s.%N)
    timeout 120 "$bin" --data-dir "$d/data" prep --job "$data/kills-job.toml" --lake "$lake" \
      --engine "ballista://127.0.0.1:$port" >"$d/prep.log" 2>&1 &
    job=$!
    sleep "$t"
    kill -9 "${pids[1]}"
    wait "${pids[1]}" 2>/dev/null || true
    rc=0
    wait "$job" || rc=$?
    secs=$(python3 -c "import time; print(f'{time.time() - $t0:.1f}')")
    rows=$(rows_of "$lake/out/killed/_manifest.json")
    case "$rc" in
      0) if [[ "$rows" == "$expected" ]]; then finished=$((finished + 1)); else wrong=$((wrong + 1)); fi ;;
      124) hung=$((hung + 1)) ;;
      *) failed=$((failed + 1)) ;;
    esac
    echo "kill at ${t}s run $i: exit $rc, ${secs}s, rows ${rows:-none}"
    cleanup
    pids=()
  done
done
echo "finished with the local rows: $finished, failed with an error: $failed, wrong rows: $wrong, hung: $hung"
[[ $wrong -eq 0 && $hung -eq 0 ]]
