"""millrace's quick and best builds against AutoGluon on the Telco protocol of automl_eval.py
(the same five 80/20 splits, seeds 1-5, every metric computed here with sklearn.metrics), for
bench/automl-autogluon.sh.

    autogluon_eval.py --source TELCO_CSV --work DIR --json FILE --bin MILLRACE
                      [--time-limit 300] [--preset best_quality] [--best-budget 60s]

Engines, each on the same splits:
- millrace quick: `millrace train` with defaults (F1 objective, as automl_eval.py's telco);
- millrace best: `millrace train --mode best --time-budget BEST_BUDGET`;
- AutoGluon: `TabularPredictor(label="Churn", eval_metric="roc_auc").fit(train, presets=PRESET,
  time_limit=TIME_LIMIT)` on the 80% with customerID dropped (as the peers of automl_eval.py
  drop it), then `calibrate_decision_threshold(metric="f1")`, which picks the cut on
  AutoGluon's own validation data, never the test part. Single-row latency: `predict_proba` of
  one test row at a time after `persist()`, 200 rows, median and p99.

Prints a markdown table on stdout, progress on stderr; writes everything to --json.
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import automl_eval as ev  # noqa: E402


def autogluon_split(cfg, split, args):
    from autogluon.tabular import TabularPredictor

    train = split["train"].drop(columns=cfg["drop"])
    test = split["test"].drop(columns=cfg["drop"] + [cfg["target"]])
    for df in (train, test):
        for c in cfg["numeric"]:
            df[c] = ev.pd.to_numeric(df[c].str.strip(), errors="coerce")
    path = os.path.join(split["dir"], "autogluon")
    t = time.perf_counter()
    predictor = TabularPredictor(label=cfg["target"], eval_metric="roc_auc", path=path,
                                 verbosity=1).fit(train, presets=args.preset,
                                                  time_limit=args.time_limit)
    threshold = predictor.calibrate_decision_threshold(metric="f1")
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    proba = predictor.predict_proba(test)[cfg["positive"]].to_numpy()
    predict_s = time.perf_counter() - t
    negative = [c for c in predictor.class_labels if c != cfg["positive"]][0]
    label = np.where(proba >= threshold, cfg["positive"], negative)
    m = ev.score(cfg, split["test"][cfg["target"]].to_numpy(), label=label, proba=proba)
    predictor.persist()
    lat = []
    for i in range(min(200, len(test))):
        row = test.iloc[[i]]
        t = time.perf_counter()
        predictor.predict_proba(row)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return {"seed": split["seed"], "metrics": m, "fit_s": fit_s, "predict_s": predict_s,
            "threshold": float(threshold), "latency_ms_p50": statistics.median(lat),
            "latency_ms_p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "best_model": predictor.model_best}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True, help="the Telco churn CSV")
    ap.add_argument("--work", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--bin", required=True, help="the millrace binary")
    ap.add_argument("--time-limit", type=int, default=300, help="AutoGluon's seconds per split")
    ap.add_argument("--preset", default="best_quality")
    ap.add_argument("--best-budget", default="60s", help="millrace --time-budget in best mode")
    args = ap.parse_args()
    args.data_dir = os.path.join(args.work, "millrace-data")
    cfg = ev.DATASETS["telco"]
    os.makedirs(args.work, exist_ok=True)
    ev_args = argparse.Namespace(source=args.source)
    df, eol, src = ev.source_frame("telco", ev_args, args.work)
    splits = ev.make_splits("telco", cfg, df, eol, args.work)
    import autogluon.tabular
    engines = [
        ("millrace-quick", "millrace quick", []),
        ("millrace-best", f"millrace best ({args.best_budget})",
         ["--mode", "best", "--time-budget", args.best_budget]),
        ("autogluon", f"AutoGluon {autogluon.tabular.__version__} {args.preset} "
                      f"({args.time_limit} s)", None),
    ]
    keys = ["auc", "f1", "accuracy"]
    result = {"source": src, "seeds": ev.SEEDS, "machine": ev.machine(),
              "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "engines": {}}
    for eid, label, train_args in engines:
        runs = []
        for split in splits:
            ev.log(f"split {split['seed']}: {label} ...")
            if train_args is None:
                r = autogluon_split(cfg, split, args)
            else:
                a = argparse.Namespace(bin=args.bin, data_dir=args.data_dir,
                                       train_arg=train_args)
                r = ev.millrace_split(f"telco_{eid.replace('-', '_')}", cfg, split,
                                      ["No", "Yes"], a)
                r.pop("train_stdout", None)
                r.pop("train_stderr", None)
            ev.log(f"  {', '.join(f'{k}={ev.fmt(v, k)}' for k, v in r['metrics'].items())}, "
                   f"fit {r['fit_s']:.1f} s")
            runs.append(r)
        result["engines"][eid] = {"label": label, "splits": runs,
                                  "summary": ev.summarise(runs, keys)}
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o))
        f.write("\n")
    m = result["machine"]
    print(f"Telco, five 80/20 splits (seeds 1-5); {m['cores']} cores, {m['cpu']}")
    print("| engine | AUC (mean ± sd) | F1 | accuracy | fit s (mean) | single-row p50 / p99 |")
    print("|---|---|---|---|---|---|")
    for eid, e in result["engines"].items():
        s = e["summary"]
        auc = [r["metrics"]["auc"] for r in e["splits"]]
        f1 = [r["metrics"]["f1"] for r in e["splits"]]
        acc = [r["metrics"]["accuracy"] for r in e["splits"]]
        lat = "—"
        if eid == "autogluon":
            p50 = statistics.median(r["latency_ms_p50"] for r in e["splits"])
            p99 = statistics.median(r["latency_ms_p99"] for r in e["splits"])
            lat = f"{p50:.1f} / {p99:.1f} ms"
        print(f"| {e['label']} | {statistics.mean(auc):.4f} ± {statistics.stdev(auc):.4f} | "
              f"{statistics.mean(f1):.4f} | {statistics.mean(acc):.4f} | "
              f"{s['fit_s_mean']:.1f} | {lat} |")


if __name__ == "__main__":
    main()
