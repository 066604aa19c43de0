#!/usr/bin/env bash
# The prep stage's benchmark: the churn job (examples/jobs/churn.toml) run by millrace, DuckDB
# and PySpark on the same generated lakes, on the same machine, in the same run.
#
#   bench/prep.sh [SIZES...]     records per lake (default: 1000000 5000000)
#
# Environment knobs:
#   FORMATS   lake layouts to run (default "ndjson concat"; concat = Firehose's `{..}{..}`)
#   RUNS      timed runs per engine and lake (default 3; the table shows medians)
#   PYTHON    interpreter for the peers' virtualenv (default python3; duckdb 2 and pyspark 4.3
#             need 3.11+)
#
# The job: trim every string; SeniorCitizen and tenure to INT, MonthlyCharges and TotalCharges
# to DOUBLE with blanks as NULL; keep the latest record per customerID by arrival (object key,
# then row in the object); write the 21 columns as Parquet (zstd). The peers mirror its SQL:
# bench/peers/prep_duckdb.py and bench/peers/prep_pyspark.py (how each reads the two layouts,
# and what PySpark cannot read, is written at the top of each).
#
# Lakes come from `millrace generate churn-lake` (seed 42, ~5 MB objects, 2% of records are
# updates of a customer from an earlier object) into bench/.data/prep-<records>-<format>, once:
# delete a folder to make it again. Every run of every engine starts from an empty output
# folder. Afterwards the three outputs of each lake are compared: same row count and the same
# rows (values included); a difference fails the script after the table is printed.
#
# Results: a table on stdout, bench/.data/prep-results.csv (medians) and
# bench/.data/prep-runs.csv (every run); each run's output is in bench/.data/prep-logs/.
#
# Needs: cargo, python3 with venv, java 17+ on PATH (Spark 4), GNU time at /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a sizes <<<"${*:-1000000 5000000}"
read -r -a formats <<<"${FORMATS:-ndjson concat}"
runs="${RUNS:-3}"
python="${PYTHON:-python3}"
venv="bench/.venv-prep"
# Absolute paths: millrace, the peers and Spark each resolve relative ones their own way.
data="$PWD/bench/.data"
logs="$data/prep-logs"
job="examples/jobs/churn.toml"

die() { echo "prep.sh: $*" >&2; exit 1; }

for n in "${sizes[@]}"; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "bad size: $n"; done
for f in "${formats[@]}"; do [[ "$f" == ndjson || "$f" == concat ]] || die "bad format: $f"; done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "bad RUNS: $runs"
[[ -x /usr/bin/time ]] || die "GNU time not found at /usr/bin/time (apt-get install time)"
# Spark 4 refuses anything older than Java 17; say so now rather than after the lakes are made.
java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p')"
[[ -n "$java_major" && "$java_major" -ge 17 ]] || die "PySpark 4 needs java 17+ on PATH (found: ${java_major:-none})"

cargo build --release -p millrace
bin=target/release/millrace

# The peers' virtualenv, (re)installed whenever prep_requirements.txt changes: a copy of the
# file inside the venv records what was installed.
if ! cmp -s bench/peers/prep_requirements.txt "$venv/prep_requirements.txt" 2>/dev/null; then
  echo "installing the peers into $venv (pyspark is a ~460 MB download)"
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r bench/peers/prep_requirements.txt
  cp bench/peers/prep_requirements.txt "$venv/prep_requirements.txt"
fi
py="$venv/bin/python"

mkdir -p "$data" "$logs"
# Generate into a temporary folder and rename it when complete: an interrupted generate must not
# leave a partial lake that a later run would take for a finished one.
for n in "${sizes[@]}"; do
  for f in "${formats[@]}"; do
    lake="$data/prep-$n-$f"
    [[ -d "$lake/raw/churn" ]] && continue
    rm -rf "$lake.tmp"
    "$bin" generate churn-lake --out "$lake.tmp" --records "$n" --format "$f"
    mv "$lake.tmp" "$lake"
  done
done

echo "machine: $(nproc) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
echo "millrace: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo '+dirty'), release build"
echo "peers: $("$py" -c 'import duckdb, pyspark; print(f"duckdb {duckdb.__version__}, pyspark {pyspark.__version__}")'), java $(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p')"
echo "runs: $runs per engine and lake, engines interleaved; medians shown"

# One timed run: ENGINE LAKE FORMAT RECORDS RUN. Appends a line to the runs CSV.
# /usr/bin/time's %e is wall seconds and %M the peak RSS (KiB) of the largest single process
# among the command and the descendants it waited for, not a sum: for millrace and DuckDB that
# is the one process; for PySpark it is the JVM (prep_pyspark.py waits for its JVM so that the
# JVM counts at all), and the Python driver's ~100 MB beside it is not added.
runs_csv="$data/prep-runs.csv"
echo "records,format,engine,run,wall_s,peak_rss_kib,rows" >"$runs_csv"
timed() {
  local engine="$1" lake="$2" fmt="$3" n="$4" run="$5"
  local log="$logs/$n-$fmt-$engine-$run.log" times="$logs/$n-$fmt-$engine-$run.time"
  local out="$data/prep-out/$engine" rows wall rss
  local -a cmd
  case "$engine" in
    millrace) out="$lake/curated"; cmd=("$bin" prep --job "$job" --lake "$lake") ;;
    duckdb)   cmd=("$py" bench/peers/prep_duckdb.py "$lake" "$fmt" "$out") ;;
    pyspark)  cmd=("$py" bench/peers/prep_pyspark.py "$lake" "$fmt" "$out") ;;
  esac
  rm -rf "$out"
  # No root, so no `echo 3 > /proc/sys/vm/drop_caches`: instead every run starts with the lake
  # read once, untimed, so each engine finds it in the page cache (the lakes are a few GB; the
  # other engines' memory use in between could have evicted some of it). The figures are
  # therefore for warm reads: parsing and compute, not the disk.
  find "$lake/raw" -type f -exec cat {} + >/dev/null
  if ! /usr/bin/time -f '%e %M' -o "$times" "${cmd[@]}" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "$engine failed on $lake (run $run); log: $log"
  fi
  case "$engine" in
    millrace) rows="$(sed -n 's/^ *output \([0-9]*\) rows in .*/\1/p' "$log" | head -1)" ;;
    *)        rows="$(sed -n 's/.*: rows \([0-9]*\) in .*/\1/p' "$log" | tail -1)" ;;
  esac
  [[ -n "$rows" ]] || die "no row count in $log"
  read -r wall rss <"$times"
  echo "$n,$fmt,$engine,$run,$wall,$rss,$rows" >>"$runs_csv"
  printf '  %-9s %-7s %-9s run %d: %7.2f s  %6d MiB  %s rows\n' \
    "$n" "$fmt" "$engine" "$run" "$wall" "$((rss / 1024))" "$rows"
}

check_failed=0
for n in "${sizes[@]}"; do
  for f in "${formats[@]}"; do
    lake="$data/prep-$n-$f"
    echo "lake $lake: $(find "$lake/raw" -type f | wc -l) objects, $(du -sh "$lake/raw" | cut -f1)"
    for ((r = 1; r <= runs; r++)); do
      for engine in millrace duckdb pyspark; do
        timed "$engine" "$lake" "$f" "$n" "$r"
      done
    done
    # The last run's three outputs: same rows, same values (EXCEPT ALL both ways, in DuckDB;
    # untimed). The data files only: millrace keeps _manifest.json beside its Parquet files.
    if ! "$py" - "$lake/curated/churn" "$data/prep-out/duckdb" "$data/prep-out/pyspark" <<'EOF'
import sys
import duckdb

con = duckdb.connect()
dirs = dict(zip(["millrace", "duckdb", "pyspark"], sys.argv[1:]))
rel = {e: f"read_parquet('{d}/**/*.parquet')" for e, d in dirs.items()}
counts = {e: con.execute(f"SELECT count(*) FROM {r}").fetchall()[0][0] for e, r in rel.items()}
ok = len(set(counts.values())) == 1
for peer in ("duckdb", "pyspark"):
    a, b = rel["millrace"], rel[peer]
    only = [con.execute(f"SELECT count(*) FROM (FROM {x} EXCEPT ALL FROM {y})").fetchall()[0][0]
            for x, y in ((a, b), (b, a))]
    if any(only):
        ok = False
        print(f"    values differ: {only[0]} rows only in millrace's output, "
              f"{only[1]} only in {peer}'s")
print(f"    check: rows {counts}, values {'identical' if ok else 'DIFFER'}")
sys.exit(0 if ok else 1)
EOF
    then
      check_failed=1
    fi
  done
done

# Medians per engine and lake, ratios against millrace, the table and the results CSV.
"$py" - "$runs_csv" "$data/prep-results.csv" <<'EOF'
import csv
import statistics
import sys

runs = list(csv.DictReader(open(sys.argv[1])))
groups = {}
for r in runs:
    groups.setdefault((int(r["records"]), r["format"], r["engine"]), []).append(r)
rows = []
for (n, fmt, engine), rs in groups.items():
    rows.append({
        "records": n, "format": fmt, "engine": engine, "runs": len(rs),
        "median_wall_s": statistics.median(float(r["wall_s"]) for r in rs),
        "median_peak_rss_mib": statistics.median(int(r["peak_rss_kib"]) for r in rs) / 1024,
        # One count when every run agrees (the checks compare engines); all of them when not.
        "rows": "/".join(sorted({r["rows"] for r in rs}, key=int)),
    })
base = {(r["records"], r["format"]): r["median_wall_s"] for r in rows if r["engine"] == "millrace"}
for r in rows:
    r["wall_vs_millrace"] = r["median_wall_s"] / base[(r["records"], r["format"])]

head = ("records", "format", "engine", "wall s", "peak RSS MiB", "rows", "wall vs millrace")
table = [head] + [(f"{r['records']:,}", r["format"], r["engine"], f"{r['median_wall_s']:.2f}",
                   f"{r['median_peak_rss_mib']:,.0f}",
                   "/".join(f"{int(c):,}" for c in r["rows"].split("/")),
                   f"{r['wall_vs_millrace']:.2f}x")
                  for r in rows]
width = [max(len(row[i]) for row in table) for i in range(len(head))]
print()
for i, row in enumerate(table):
    print("  ".join(c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(row, width))))
    if i == 0:
        print("  ".join("-" * w for w in width))

with open(sys.argv[2], "w", newline="") as out:
    w = csv.DictWriter(out, fieldnames=list(rows[0]))
    w.writeheader()
    for r in rows:
        w.writerow({**r, "median_wall_s": f"{r['median_wall_s']:.3f}",
                    "median_peak_rss_mib": f"{r['median_peak_rss_mib']:.1f}",
                    "wall_vs_millrace": f"{r['wall_vs_millrace']:.3f}"})
print(f"\nresults: {sys.argv[2]}, every run: {sys.argv[1]}")
EOF

[[ "$check_failed" == 0 ]] || die "the engines' outputs differ (see the checks above)"
