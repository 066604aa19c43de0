#!/usr/bin/env bash
# The wrangle stage's benchmark: the churn recipe (examples/recipes/churn.toml) fitted and
# applied by millrace and by pandas + scikit-learn on the same generated CSV, in the same run;
# one-record transform latency (a dict of strings through the fitted recipe / pipeline); and
# the data-quality report on the same file.
#
#   bench/wrangle.sh [ROWS]        rows of generated churn data (default 1000000)
#
# Environment: RUNS (default 3; medians are shown), RECORDS (one-record timings, default 20000),
# PYTHON (default python3). Data and results go to bench/.data/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."

rows="${1:-1000000}"
runs="${RUNS:-3}"
records="${RECORDS:-20000}"
python="${PYTHON:-python3}"
venv="bench/.venv-wrangle"
data="$PWD/bench/.data"
mkdir -p "$data"

cargo build --release -p millrace
bin=target/release/millrace

if ! cmp -s bench/peers/wrangle_requirements.txt "$venv/wrangle_requirements.txt" 2>/dev/null; then
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/peers/wrangle_requirements.txt
  cp bench/peers/wrangle_requirements.txt "$venv/wrangle_requirements.txt"
fi

csv="$data/churn-$rows.csv"
if [[ ! -f "$csv" ]]; then
  "$bin" generate churn --rows "$rows" --out "$csv.tmp"
  mv "$csv.tmp" "$csv"
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "data: $csv ($rows rows)"
results="$data/wrangle-runs.jsonl"
: >"$results"
for i in $(seq 1 "$runs"); do
  "$bin" bench wrangle --data "$csv" --records "$records" --json "$data/wrangle-millrace.json" >/dev/null
  echo "{\"engine\":\"millrace\",\"run\":$i,\"result\":$(cat "$data/wrangle-millrace.json")}" >>"$results"
  out=$("$venv/bin/python" bench/peers/wrangle_sklearn.py "$csv" "$records")
  echo "{\"engine\":\"sklearn\",\"run\":$i,\"result\":$out}" >>"$results"
  /usr/bin/time -f "%e %M" -o "$data/profile-time.txt" \
    "$bin" profile --data "$csv" --target Churn --out "$data/profile-report" >/dev/null 2>&1
  read -r secs kb <"$data/profile-time.txt"
  echo "{\"engine\":\"millrace-profile\",\"run\":$i,\"result\":{\"wall_s\":$secs,\"peak_rss_mib\":$((kb / 1024))}}" >>"$results"
  echo "run $i done"
done

python3 - "$results" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def med(engine, key):
    v = [r["result"][key] for r in runs if r["engine"] == engine]
    return statistics.median(v)
m, s = "millrace", "sklearn"
print(f"{'':34}{'millrace':>12}{'pandas+sklearn':>16}{'ratio':>8}")
for key, label, better_low in [
    ("fit_transform_s", "fit+transform (s)", True),
    ("transform_s", "transform again (s)", True),
    ("record_median_us", "one record, median (µs)", True),
    ("record_p99_us", "one record, p99 (µs)", True),
    ("peak_rss_mib", "peak RSS (MiB)", True),
]:
    a, b = med(m, key), med(s, key)
    print(f"{label:34}{a:12.2f}{b:16.2f}{b / a:7.1f}x")
print(f"{'fit+transform rows/s':34}{med(m, 'fit_transform_rows_per_s'):12.0f}{med(s, 'fit_transform_rows_per_s'):16.0f}")
print(f"{'rows kept / output columns':34}{med(m, 'rows_kept'):>8.0f}/{med(m, 'output_columns'):<3.0f}{med(s, 'rows_kept'):>12.0f}/{med(s, 'output_columns'):<3.0f}")
print(f"profile report (millrace profile, whole process): {med('millrace-profile', 'wall_s'):.2f} s, "
      f"{med('millrace-profile', 'peak_rss_mib'):.0f} MiB peak RSS")
PY
