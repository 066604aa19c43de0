#!/usr/bin/env bash
# Batch transform: `millrace predict` over generated churn rows (`millrace generate churn`, seed
# 42, the file bench/wrangle.sh uses), as one CSV file and as a Parquet lake prefix (written by
# `millrace prep`), to a CSV file and to a lake folder of Parquet parts with a manifest; the
# model is the Telco quick build (`millrace train`, defaults). Beside it, in the same run,
# pandas + scikit-learn (bench/peers/batch_sklearn.py): read_csv in chunks → predict_proba →
# CSV, with a HistGradientBoosting and a LogisticRegression pipeline trained on the same file.
# Each case is a whole process timed by /usr/bin/time (wall and peak RSS; /proc when absent):
# rows/s = rows / wall, median of RUNS.
#
#   bench/batch.sh [ROWS]        (default 1000000)
#
# Environment: MILLRACE_BIN (skip the release build), RUNS (default 3), PEER (default 1; 0
# skips the peer), PYTHON (default python3; makes bench/.venv-batch), TELCO_CSV. Tables go to
# stdout, progress to stderr, results to bench/.data/batch.json (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."

rows="${1:-1000000}"
runs="${RUNS:-3}"
peer="${PEER:-1}"
python="${PYTHON:-python3}"
venv="bench/.venv-batch"
data="$PWD/bench/.data"
telco="${TELCO_CSV:-../shared/data/telco-customer-churn.csv}"
telco="$(cd "$(dirname "$telco")" && pwd)/$(basename "$telco")"
mkdir -p "$data"

if [[ -n "${MILLRACE_BIN:-}" ]]; then bin="$MILLRACE_BIN"; else
  cargo build --release -p millrace
  bin=target/release/millrace
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

if [[ "$peer" == 1 ]] && ! cmp -s bench/peers/batch_requirements.txt "$venv/requirements.txt" 2>/dev/null; then
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/peers/batch_requirements.txt
  cp bench/peers/batch_requirements.txt "$venv/requirements.txt"
fi

csv="$data/churn-$rows.csv"
if [[ ! -f "$csv" ]]; then
  "$bin" generate churn --rows "$rows" --out "$csv.tmp"
  mv "$csv.tmp" "$csv"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/millrace-batch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
dd="$work/data"

# `measure NAME CMD...`: runs CMD once, appends {"case", "wall_s", "peak_rss_mib"} to the runs.
runs_file="$work/runs.jsonl"
measure() {
  local name="$1"
  shift
  local wall kb
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" ||
      { cat "$work/stderr.txt" >&2; exit 1; }
    read -r wall kb <"$work/time.txt"
  else
    local start pid peak=0 hwm
    start=$(date +%s.%N)
    "$@" >/dev/null 2>"$work/stderr.txt" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
      [[ -n "$hwm" && "$hwm" -gt "$peak" ]] && peak=$hwm
      sleep 0.05
    done
    wait "$pid" || { cat "$work/stderr.txt" >&2; exit 1; }
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    kb=$peak
  fi
  echo "{\"case\":\"$name\",\"wall_s\":$wall,\"peak_rss_mib\":$((kb / 1024))}" >>"$runs_file"
  echo "  $name: $wall s, $((kb / 1024)) MiB" >&2
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "millrace: $bin, $("$bin" --version) ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- crates 2>/dev/null || echo '+dirty'))"
echo "data: $csv ($rows rows); model: millrace train --data $(basename "$telco") --target Churn"
"$bin" --data-dir "$dd" train --data "$telco" --target Churn --name churn >/dev/null 2>&1
# The same rows as a Parquet dataset in the lake, as a prep job leaves it.
cat >"$work/to-parquet.toml" <<EOF
[[input]]
table = "c"
path = "$csv"

[[output]]
path = "bench/churn"
table = "c"
format = "parquet"
EOF
"$bin" --data-dir "$dd" prep --job "$work/to-parquet.toml" >/dev/null
if [[ "$peer" == 1 ]]; then
  "$venv/bin/python" bench/peers/batch_sklearn.py train "$telco" "$work/hgb.joblib" hgb
  "$venv/bin/python" bench/peers/batch_sklearn.py train "$telco" "$work/lr.joblib" lr
fi

predict=("$bin" --data-dir "$dd" predict --model churn)
: >"$runs_file"
for i in $(seq 1 "$runs"); do
  echo "run $i" >&2
  measure "csv-to-csv" "${predict[@]}" --input "$csv" --output "$work/scored.csv"
  measure "csv-to-lake" "${predict[@]}" --input "$csv" --output scored/csv/
  measure "parquet-lake-to-lake" "${predict[@]}" --input bench/churn --output scored/parquet/
  if [[ "$peer" == 1 ]]; then
    measure "sklearn-hgb" "$venv/bin/python" bench/peers/batch_sklearn.py score "$work/hgb.joblib" "$csv" "$work/peer.csv"
    measure "sklearn-lr" "$venv/bin/python" bench/peers/batch_sklearn.py score "$work/lr.joblib" "$csv" "$work/peer.csv"
  fi
done
# The outputs hold one row per input row.
[[ $(($(wc -l <"$work/scored.csv") - 1)) -eq "$rows" ]] || { echo "scored.csv has the wrong row count" >&2; exit 1; }

python3 - "$runs_file" "$rows" "$data/batch.json" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
rows = int(sys.argv[2])
labels = {
    "csv-to-csv": "millrace predict: CSV file → CSV file",
    "csv-to-lake": "millrace predict: CSV file → lake folder (Parquet parts)",
    "parquet-lake-to-lake": "millrace predict: Parquet lake prefix → lake folder",
    "sklearn-hgb": "pandas + sklearn HistGradientBoosting: CSV → CSV",
    "sklearn-lr": "pandas + sklearn LogisticRegression: CSV → CSV",
}
out = {"rows": rows, "cases": {}}
print(f"{'':58}{'rows/s':>10}{'wall s':>9}{'peak RSS MiB':>14}")
for case, label in labels.items():
    rs = [r for r in runs if r["case"] == case]
    if not rs:
        continue
    wall = statistics.median(r["wall_s"] for r in rs)
    rss = max(r["peak_rss_mib"] for r in rs)
    out["cases"][case] = {"label": label, "wall_s_median": wall, "rows_per_s": rows / wall,
                          "peak_rss_mib_max": rss, "runs": rs}
    print(f"{label:58}{rows / wall:10.0f}{wall:9.2f}{rss:14d}")
json.dump(out, open(sys.argv[3], "w"), indent=2)
print(f"(results: bench/.data/batch.json)")
PY
