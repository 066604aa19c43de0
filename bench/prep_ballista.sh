#!/usr/bin/env bash
# Prep on Ballista against the local engine: the churn job (examples/jobs/churn.toml) over the
# same generated lake, run by `millrace prep` locally, then with --engine ballista://… on a
# cluster of millrace processes on this machine (a scheduler and one executor, then two).
#
#   bench/prep_ballista.sh [RECORDS]       records in the lake (default 5000000)
#
# Environment knobs:
#   RUNS     timed runs per engine (default 3; the table shows medians)
#   BIN      the millrace binary (default: target/release/millrace, built if missing)
#   JOB      the job file (default examples/jobs/churn.toml; bench/jobs/by_contract.toml is an
#            aggregation with no `latest_by`, whose scan the cluster splits over tasks)
#
# On one machine the cluster cannot be faster: the executors share its cores, and the churn
# job's `latest_by` scan is one newest-first stream (one task). The figure is the cluster's
# overhead: planning on the scheduler, shipping the plan, and moving every output row through
# Arrow Flight to the client, which writes the Parquet files. After the runs the outputs are
# compared (the churn job: row count, distinct customers, sums of two columns; any other job:
# every row); a difference fails the script.
#
# Lakes come from `millrace generate churn-lake` into bench/.data/prep-<records>-ndjson (the same
# folders bench/prep.sh uses), once. Results: a table on stdout and
# bench/.data/prep-ballista-runs.csv (every run).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

records="${1:-5000000}"
runs="${RUNS:-3}"
job="${JOB:-examples/jobs/churn.toml}"
[[ -f "$job" ]] || { echo "no job file: $job" >&2; exit 1; }
bench_count RECORDS "$records"
bench_count RUNS "$runs"
bin="$(bench_bin)"
data="$PWD/bench/.data"
lake="$data/prep-$records-ndjson"
work="$data/prep-ballista"
mkdir -p "$data"
if [[ ! -d "$lake/raw/churn" ]]; then
  rm -rf "$lake.tmp"
  "$bin" generate churn-lake --out "$lake.tmp" --records "$records" --format ndjson
  mv "$lake.tmp" "$lake"
fi
rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_for() { for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no '$2' in $1" >&2; cat "$1" >&2; exit 1; }

sport=$(free_port)
"$bin" ballista scheduler --addr "127.0.0.1:$sport" >"$work/scheduler.log" 2>&1 &
pids+=($!)
wait_for "$work/scheduler.log" "listening on"
start_executor() {
  local i=$1
  mkdir -p "$work/executor-$i"
  "$bin" ballista executor --scheduler "127.0.0.1:$sport" --port "$(free_port)" \
    --grpc-port "$(free_port)" --work-dir "$work/executor-$i" >"$work/executor-$i.log" 2>&1 &
  pids+=($!)
  wait_for "$work/executor-$i.log" "ballista executor on"
  sleep 2
}

echo "engine,run,seconds,max_rss_kib" >"$data/prep-ballista-runs.csv"
run_engine() {
  local name=$1; shift
  for r in $(seq 1 "$runs"); do
    sed "s#path = \"curated/[^\"]*\"#path = \"bench-out/$name\"#" "$job" >"$work/job-$name.toml"
    rm -rf "$lake/bench-out/$name"
    /usr/bin/time -f "%e %M" -o "$work/time" "$bin" --data-dir "$work/data" prep \
      --job "$work/job-$name.toml" --lake "$lake" "$@" >"$work/prep-$name-$r.log" 2>&1 \
      || { cat "$work/prep-$name-$r.log" >&2; exit 1; }
    read -r secs rss <"$work/time"
    echo "$name,$r,$secs,$rss" >>"$data/prep-ballista-runs.csv"
    echo "  $name run $r: $secs s"
  done
}

# One untimed run first, so that every engine reads the lake from the page cache.
sed "s#path = \"curated/[^\"]*\"#path = \"bench-out/warm-up\"#" "$job" >"$work/job-warm-up.toml"
"$bin" --data-dir "$work/data" prep --job "$work/job-warm-up.toml" --lake "$lake" >/dev/null 2>&1
rm -rf "$lake/bench-out/warm-up"
run_engine local
start_executor 0
run_engine ballista-1 --engine "ballista://127.0.0.1:$sport"
start_executor 1
run_engine ballista-2 --engine "ballista://127.0.0.1:$sport"

check_sql="SELECT * FROM t ORDER BY 1"
if [[ "$(basename "$job")" == churn.toml ]]; then
  check_sql="SELECT count(*) AS n, count(DISTINCT customerID) AS c, sum(tenure) AS t, round(sum(MonthlyCharges), 2) AS m FROM t"
fi
check() {
  "$bin" --data-dir "$work/data" query --format csv \
    --table "t=$lake/bench-out/$1:parquet" "$check_sql"
}
want="$(check local)"
for e in ballista-1 ballista-2; do
  got="$(check "$e")"
  [[ "$got" == "$want" ]] || { echo "outputs differ: local $want / $e $got" >&2; exit 1; }
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); binary $bin"
echo "$(basename "$job" .toml) job over $records records (NDJSON), medians of $runs; outputs identical:"
echo "$want"
python3 - "$data/prep-ballista-runs.csv" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
med = {}
for e in ("local", "ballista-1", "ballista-2"):
    s = [float(r["seconds"]) for r in rows if r["engine"] == e]
    m = [int(r["max_rss_kib"]) for r in rows if r["engine"] == e]
    med[e] = (statistics.median(s), statistics.median(m))
print("| engine | median s | client peak RSS | / local |")
print("|---|---|---|---|")
for e, (s, m) in med.items():
    print(f"| {e} | {s:.2f} | {m / 1024:.0f} MiB | {s / med['local'][0]:.2f}× |")
EOF
