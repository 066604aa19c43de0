#!/usr/bin/env bash
# The AutoML stage's evaluation: `millrace train` / `millrace predict` beside scikit-learn peers
# on the same five 80/20 splits (seeds 1-5), every metric computed outside millrace
# (bench/peers/automl_eval.py, sklearn.metrics).
#
#   bench/automl.sh [--peers-only] [telco|churn|wine|diabetes|all]     (default: all)
#
#   telco     ../shared/data/telco-customer-churn.csv as it is, target Churn, objective f1;
#             peers LogisticRegression (C by CV log loss) and HistGradientBoosting, both with
#             the F1 threshold tuned on out-of-fold predictions; the issue's targets beside
#   churn     `millrace generate churn --rows 7043 --seed 7`, same protocol
#   wine      multiclass (sklearn's bundled copy, target `class`): accuracy, macro F1, log loss
#   diabetes  regression (sklearn's bundled copy, target `progression`, splits not stratified)
#
# --peers-only runs the peers alone (no millrace train/predict; churn still needs the binary
# for its generator).
#
# Environment: MILLRACE_BIN (use this binary instead of `cargo build --release -p millrace`),
# TRAIN_ARGS (extra arguments for every `millrace train`, e.g. "--mode best --time-budget 30s"),
# PYTHON (default python3; makes bench/.venv-automl), TELCO_CSV (default
# ../shared/data/telco-customer-churn.csv). Tables go to stdout, progress to stderr, and each
# data set's JSON to bench/.data/automl-<dataset>.json (gitignored, like the other benches).
set -euo pipefail
cd "$(dirname "$0")/.."

peers_only=()
sets=()
for arg in "$@"; do
  case "$arg" in
    --peers-only) peers_only=(--peers-only) ;;
    telco | churn | wine | diabetes) sets+=("$arg") ;;
    all) sets+=(telco churn wine diabetes) ;;
    -h | --help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/automl.sh [--peers-only] [telco|churn|wine|diabetes|all]" >&2; exit 2 ;;
  esac
done
[[ ${#sets[@]} -gt 0 ]] || sets=(telco churn wine diabetes)

python="${PYTHON:-python3}"
venv="bench/.venv-automl"
results="$PWD/bench/.data"
telco_csv="${TELCO_CSV:-../shared/data/telco-customer-churn.csv}"
read -r -a train_args <<<"${TRAIN_ARGS:-}"

# The binary: needed for train/predict, and for the churn generator even with --peers-only.
bin=""
needs_bin=1
if [[ ${#peers_only[@]} -gt 0 && ! " ${sets[*]} " =~ " churn " ]]; then needs_bin=0; fi
if [[ $needs_bin -eq 1 ]]; then
  if [[ -n "${MILLRACE_BIN:-}" ]]; then
    bin="$MILLRACE_BIN"
  else
    cargo build --release -p millrace
    bin=target/release/millrace
  fi
  bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
  [[ -x "$bin" ]] || { echo "no millrace binary at $bin" >&2; exit 1; }
fi

if ! cmp -s bench/peers/automl_requirements.txt "$venv/automl_requirements.txt" 2>/dev/null; then
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/peers/automl_requirements.txt
  cp bench/peers/automl_requirements.txt "$venv/automl_requirements.txt"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$results"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
version=""
if [[ -n "$bin" ]]; then
  version="$("$bin" --version) ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- crates 2>/dev/null || echo '+dirty'))"
  echo "millrace: $bin, $version${TRAIN_ARGS:+, train args: $TRAIN_ARGS}"
fi
echo

for set in "${sets[@]}"; do
  source=()
  case "$set" in
    telco)
      [[ -f "$telco_csv" ]] || { echo "no $telco_csv (the public Telco churn CSV)" >&2; exit 1; }
      source=(--source "$(cd "$(dirname "$telco_csv")" && pwd)/$(basename "$telco_csv")") ;;
    churn)
      "$bin" generate churn --rows 7043 --seed 7 --out "$work/churn.csv"
      source=(--source "$work/churn.csv") ;;
  esac
  extra=()
  for a in "${train_args[@]}"; do extra+=("--train-arg=$a"); done
  "$venv/bin/python" bench/peers/automl_eval.py "$set" "${peers_only[@]}" "${source[@]}" \
    ${bin:+--bin "$bin"} --millrace-version "$version" "${extra[@]}" \
    --work "$work/$set" --data-dir "$work/$set/millrace-data" \
    --json "$results/automl-$set.json"
  echo "(results: bench/.data/automl-$set.json)"
  echo
done
