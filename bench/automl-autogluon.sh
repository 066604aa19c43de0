#!/usr/bin/env bash
# millrace's quick and best builds against AutoGluon (best_quality, 300 s a split) on the Telco
# protocol of bench/automl.sh: the same five 80/20 splits (seeds 1-5), metrics computed by
# bench/peers/autogluon_eval.py with sklearn, AutoGluon's F1 threshold chosen on its own
# validation data. AutoGluon installs into bench/.venv-autogluon (autogluon.tabular with
# LightGBM, CatBoost and XGBoost; not torch, so its neural-network models are skipped).
#
#   bench/automl-autogluon.sh              about 35 minutes on 2 cores
#
# Environment knobs: BIN (default target/release/millrace, built if missing), TELCO_CSV
# (default ../shared/data/telco-customer-churn.csv), TIME_LIMIT (AutoGluon's seconds a split,
# default 300), BEST_BUDGET (millrace's --time-budget in best mode, default 60s), PYTHON.
# Results: a table on stdout, bench/.data/automl-autogluon.json.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

bin="$(bench_bin)"
telco="${TELCO_CSV:-../shared/data/telco-customer-churn.csv}"
[[ -f "$telco" ]] || { echo "no Telco CSV at $telco (set TELCO_CSV)" >&2; exit 1; }
venv="bench/.venv-autogluon"
if ! cmp -s bench/peers/autogluon_requirements.txt "$venv/requirements.txt" 2>/dev/null; then
  [[ -x "$venv/bin/python" ]] || "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r bench/peers/autogluon_requirements.txt
  cp bench/peers/autogluon_requirements.txt "$venv/requirements.txt"
fi
work="bench/.data/automl-autogluon"
rm -rf "$work"
mkdir -p "$work"
"$venv/bin/python" bench/peers/autogluon_eval.py --source "$telco" --work "$work" \
  --json bench/.data/automl-autogluon.json --bin "$bin" \
  --time-limit "${TIME_LIMIT:-300}" --best-budget "${BEST_BUDGET:-60s}"
