"""The AutoML stage's evaluation, for bench/automl.sh: millrace train/predict beside
scikit-learn peers on the same five 80/20 splits (seeds 1-5), every metric computed here with
sklearn.metrics, never by millrace.

    automl_eval.py DATASET --work DIR --json FILE [--bin MILLRACE] [--peers-only]
                   [--source CSV] [--train-arg ARG ...]

DATASET: telco (the public Telco churn CSV, --source), churn (a CSV from `millrace generate
churn`, --source), wine (multiclass, sklearn's bundled copy), diabetes (regression, sklearn's
bundled copy). Splits: `train_test_split(df, test_size=0.2, stratify=target, random_state=seed)`
(diabetes: not stratified) on the file read with every column as text, written back with the
source's quoting and line endings. millrace trains on the 80% (target included) and predicts
the 20% with the target column removed.

Peers (fit time = tuning + out-of-fold predictions + the final refit, on the 80%):
- binary: LogisticRegression (customerID dropped by hand, the four numeric columns to numbers
  with the training median imputed, one-hot + standard scaling; C by 5-fold CV log loss) and
  HistGradientBoostingClassifier (categoricals native, early stopping at its default), each
  with its decision threshold tuned for F1 on 5-fold out-of-fold probabilities
  (cross_val_predict) of the 80%.
- multiclass: LogisticRegression (scaled, C by 5-fold CV log loss), HistGradientBoostingClassifier.
- regression: RidgeCV (scaled), HistGradientBoostingRegressor.

Prints markdown tables on stdout, progress on stderr; writes everything to --json.
"""

import argparse
import csv
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import (accuracy_score, f1_score, log_loss, mean_absolute_error,
                             precision_recall_curve, r2_score, roc_auc_score, root_mean_squared_error)
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

SEEDS = [1, 2, 3, 4, 5]
C_GRID = np.logspace(-3, 3, 13)
RIDGE_ALPHAS = np.logspace(-3, 3, 13)
CHURN_NUMS = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]

# The reference targets for the Telco protocol (means over the five splits).
TELCO_TARGETS = {"auc": 0.850, "f1": 0.635, "accuracy": 0.765, "train_s": 10.0}

DATASETS = {
    "telco": {"task": "binary", "target": "Churn", "positive": "Yes", "objective": "f1",
              "drop": ["customerID"], "numeric": CHURN_NUMS},
    "churn": {"task": "binary", "target": "Churn", "positive": "Yes", "objective": "f1",
              "drop": ["customerID"], "numeric": CHURN_NUMS},
    "wine": {"task": "multiclass", "target": "class", "objective": None, "drop": [], "numeric": None},
    "diabetes": {"task": "regression", "target": "progression", "objective": None, "drop": [],
                 "numeric": None},
}

METRICS = {
    "binary": [("auc", "AUC"), ("f1", "F1"), ("accuracy", "accuracy")],
    "multiclass": [("accuracy", "accuracy"), ("macro_f1", "macro F1"), ("log_loss", "log loss")],
    "regression": [("rmse", "RMSE"), ("mae", "MAE"), ("r2", "R²")],
}
PEERS = {
    "binary": [("logreg", "LogisticRegression"), ("hgb", "HistGradientBoosting")],
    "multiclass": [("logreg", "LogisticRegression"), ("hgb", "HistGradientBoosting")],
    "regression": [("ridge", "RidgeCV"), ("hgb", "HistGradientBoosting")],
}
SHORT = {"millrace": "millrace", "logreg": "LR", "hgb": "HGB", "ridge": "ridge"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Data and splits


def line_ending(path):
    with open(path, "rb") as f:
        first = f.readline()
    return "\r\n" if first.endswith(b"\r\n") else "\n"


def source_frame(name, args, work):
    """The data set as text columns, and the line ending to write it back with."""
    if name in ("telco", "churn"):
        src = args.source
        if not src:
            sys.exit(f"{name}: --source CSV is required")
        return pd.read_csv(src, dtype=str, keep_default_na=False), line_ending(src), src
    from sklearn import datasets
    if name == "wine":
        bunch = datasets.load_wine(as_frame=True)
        df = bunch.data.copy()
        df["class"] = [f"class_{int(v)}" for v in bunch.target]
    else:
        bunch = datasets.load_diabetes(as_frame=True, scaled=False)
        df = bunch.data.copy()
        df["progression"] = bunch.target
    # Written once and read back as text, so every engine starts from the same CSV.
    path = os.path.join(work, f"{name}.csv")
    df.to_csv(path, index=False)
    return pd.read_csv(path, dtype=str, keep_default_na=False), "\n", f"sklearn.datasets.load_{name}"


def write_csv(df, path, eol):
    # QUOTE_MINIMAL (pandas' default) quotes only what needs it, as the source files do.
    df.to_csv(path, index=False, lineterminator=eol, quoting=csv.QUOTE_MINIMAL)


def make_splits(name, cfg, df, eol, work):
    splits = []
    for seed in SEEDS:
        strat = df[cfg["target"]] if cfg["task"] != "regression" else None
        train, test = train_test_split(df, test_size=0.2, stratify=strat, random_state=seed)
        d = os.path.join(work, f"{name}-s{seed}")
        os.makedirs(d, exist_ok=True)
        paths = {"train": os.path.join(d, "train.csv"), "test": os.path.join(d, "test.csv")}
        write_csv(train, paths["train"], eol)
        write_csv(test.drop(columns=[cfg["target"]]), paths["test"], eol)
        splits.append({"seed": seed, "train": train.reset_index(drop=True),
                       "test": test.reset_index(drop=True), "paths": paths, "dir": d})
    return splits


# ---------------------------------------------------------------------------------------------
# Metrics (all here, from the predictions alone)


def binary_metrics(y_true, label, proba, positive):
    y = (np.asarray(y_true) == positive).astype(int)
    return {
        "auc": float(roc_auc_score(y, proba)),
        "f1": float(f1_score(y_true, label, pos_label=positive)),
        "accuracy": float(accuracy_score(y_true, label)),
    }


def multiclass_metrics(y_true, label, proba, classes):
    return {
        "accuracy": float(accuracy_score(y_true, label)),
        "macro_f1": float(f1_score(y_true, label, average="macro", labels=classes)),
        "log_loss": float(log_loss(y_true, proba, labels=classes)),
    }


def regression_metrics(y_true, pred):
    return {
        "rmse": float(root_mean_squared_error(y_true, pred)),
        "mae": float(mean_absolute_error(y_true, pred)),
        "r2": float(r2_score(y_true, pred)),
    }


def score(cfg, y_true, label=None, proba=None, pred=None, classes=None):
    if cfg["task"] == "binary":
        return binary_metrics(y_true, label, proba, cfg["positive"])
    if cfg["task"] == "multiclass":
        return multiclass_metrics(y_true, label, proba, classes)
    return regression_metrics(y_true, pred)


# ---------------------------------------------------------------------------------------------
# millrace


def run_millrace(argv, what):
    t = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        log(f"millrace {what} failed (exit {p.returncode}): {' '.join(argv)}")
        if p.stdout:
            log("--- stdout ---\n" + p.stdout.rstrip())
        log("--- stderr ---\n" + p.stderr.rstrip())
        sys.exit(p.returncode or 1)
    return p, wall


def millrace_split(name, cfg, split, classes, args):
    seed, data_dir = split["seed"], args.data_dir
    model = f"{name}_s{seed}"
    train = [args.bin, "--data-dir", data_dir, "train", "--data", split["paths"]["train"],
             "--target", cfg["target"], "--name", model, "--seed", str(seed)]
    if cfg["objective"]:
        train += ["--objective", cfg["objective"]]
    train += args.train_arg
    p, train_s = run_millrace(train, "train")
    out = os.path.join(split["dir"], "predictions.csv")
    _, predict_s = run_millrace(
        [args.bin, "--data-dir", data_dir, "predict", "--model", model,
         "--input", split["paths"]["test"], "--output", out], "predict")

    pred = pd.read_csv(out, dtype=str, keep_default_na=False)
    test = split["test"]
    if len(pred) != len(test):
        sys.exit(f"millrace predict wrote {len(pred)} rows for {len(test)} input rows ({out})")
    y_true = test[cfg["target"]].to_numpy()

    def need(col):
        if col not in pred.columns:
            sys.exit(f"millrace predict output lacks column {col!r} (has {list(pred.columns)}): {out}")
        return pred[col]

    if cfg["task"] == "binary":
        m = score(cfg, y_true, label=need("predicted_label").to_numpy(),
                  proba=need("probability").astype(float).to_numpy())
    elif cfg["task"] == "multiclass":
        proba = np.column_stack([need(f"probability_{c}").astype(float).to_numpy() for c in classes])
        m = score(cfg, y_true, label=need("predicted_label").to_numpy(), proba=proba, classes=classes)
    else:
        m = score(cfg, y_true.astype(float), pred=need("prediction").astype(float).to_numpy())
    return {"seed": seed, "metrics": m, "fit_s": train_s, "predict_s": predict_s,
            "n_train": len(split["train"]), "n_test": len(test),
            "train_stdout": p.stdout, "train_stderr": p.stderr}


# ---------------------------------------------------------------------------------------------
# Peers


def features(cfg, df):
    """Features as the peers see them: hand-dropped columns gone, numbers parsed (blank -> NaN)."""
    X = df.drop(columns=[cfg["target"]] + cfg["drop"])
    nums = cfg["numeric"] if cfg["numeric"] is not None else list(X.columns)
    for c in nums:
        X[c] = pd.to_numeric(X[c].str.strip(), errors="coerce")
    cats = [c for c in X.columns if c not in nums]
    for c in cats:
        X[c] = X[c].astype(object)
    return X, nums, cats


def f1_threshold(y, proba):
    """The cut on out-of-fold probabilities that maximises F1 (predict positive at >= cut)."""
    prec, rec, thr = precision_recall_curve(y, proba)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(prec + rec > 0, 2 * prec * rec / (prec + rec), 0.0)[:-1]
    i = int(np.argmax(f1))
    return float(thr[i]), float(f1[i])


def peer_estimator(cfg, kind, nums, cats, seed):
    task = cfg["task"]
    if kind == "hgb":
        if task == "regression":
            model = HistGradientBoostingRegressor(random_state=seed)
        else:
            # Text columns ordinal-coded (unseen or blank -> missing) and marked categorical, so
            # the trees split on category sets natively.
            mask = [True] * len(cats) + [False] * len(nums)
            model = HistGradientBoostingClassifier(
                categorical_features=mask if cats else None, random_state=seed)
        if not cats:
            return model
        enc = ColumnTransformer(
            [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                    encoded_missing_value=np.nan), cats),
             ("num", "passthrough", nums)])
        return Pipeline([("enc", enc), ("model", model)])
    pre = ColumnTransformer(
        [("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), nums)]
        + ([("cat", OneHotEncoder(handle_unknown="ignore"), cats)] if cats else []))
    if kind == "ridge":
        return Pipeline([("pre", pre), ("model", RidgeCV(alphas=RIDGE_ALPHAS))])
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    pipe = Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=5000))])
    return GridSearchCV(pipe, {"model__C": C_GRID}, scoring="neg_log_loss", cv=cv)


def peer_split(cfg, kind, split, classes):
    seed, target = split["seed"], cfg["target"]
    Xtr, nums, cats = features(cfg, split["train"])
    Xte, _, _ = features(cfg, split["test"])
    ytr, yte = split["train"][target].to_numpy(), split["test"][target].to_numpy()
    info = {}
    t = time.perf_counter()
    est = peer_estimator(cfg, kind, nums, cats, seed)
    if cfg["task"] == "regression":
        est.fit(Xtr, ytr.astype(float))
    else:
        est.fit(Xtr, ytr)
    if cfg["task"] == "binary":
        # Threshold for F1 on out-of-fold probabilities of the training part, with the tuned
        # hyper-parameters (for the logistic model: the C picked above).
        base = est.best_estimator_ if hasattr(est, "best_estimator_") else est
        oof = cross_val_predict(clone(base), Xtr, ytr,
                                cv=StratifiedKFold(5, shuffle=True, random_state=seed),
                                method="predict_proba")
        pos = list(base.classes_).index(cfg["positive"])
        info["threshold"], info["oof_f1"] = f1_threshold((ytr == cfg["positive"]).astype(int), oof[:, pos])
    fit_s = time.perf_counter() - t
    if hasattr(est, "best_params_"):
        info["C"] = float(est.best_params_["model__C"])
    if kind == "ridge":
        info["alpha"] = float(est.named_steps["model"].alpha_)

    t = time.perf_counter()
    if cfg["task"] == "binary":
        proba = est.predict_proba(Xte)[:, list(est.classes_).index(cfg["positive"])]
        neg = [c for c in est.classes_ if c != cfg["positive"]][0]
        label = np.where(proba >= info["threshold"], cfg["positive"], neg)
        m = score(cfg, yte, label=label, proba=proba)
    elif cfg["task"] == "multiclass":
        p = est.predict_proba(Xte)
        order = [list(est.classes_).index(c) for c in classes]
        m = score(cfg, yte, label=est.predict(Xte), proba=p[:, order], classes=classes)
    else:
        m = score(cfg, yte.astype(float), pred=est.predict(Xte))
    predict_s = time.perf_counter() - t
    return {"seed": seed, "metrics": m, "fit_s": fit_s, "predict_s": predict_s,
            "n_train": len(Xtr), "n_test": len(Xte), "params": info}


# ---------------------------------------------------------------------------------------------
# Report


def summarise(runs, keys):
    fits = [r["fit_s"] for r in runs]
    return {"mean": {k: statistics.fmean(r["metrics"][k] for r in runs) for k in keys},
            "std": {k: statistics.pstdev([r["metrics"][k] for r in runs]) for k in keys},
            "fit_s_mean": statistics.fmean(fits), "fit_s_median": statistics.median(fits),
            "predict_s_mean": statistics.fmean(r["predict_s"] for r in runs)}


def fmt(v, key):
    if key in ("rmse", "mae"):
        return f"{v:.2f}"
    return f"{v:.4f}" if key == "log_loss" else f"{v:.3f}"


def secs(v):
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def report(name, cfg, result, engines, src):
    keys = METRICS[cfg["task"]]
    task = cfg["task"]
    head = f"### {name}: {task}, target `{cfg['target']}`"
    if cfg["objective"]:
        head += f", objective {cfg['objective']}"
    print(head)
    print()
    print(f"Data: {src} ({result['rows']} rows); five "
          f"{'stratified ' if task != 'regression' else ''}80/20 splits, seeds "
          f"{', '.join(map(str, SEEDS))}. Metrics computed outside millrace (sklearn.metrics). "
          f"Fit s = wall time of `millrace train` / of the peer's tuning + refit. "
          f"{', '.join(f'{SHORT[e]} = {l}' for e, l in engines if e != 'millrace')}.")
    print()
    cols = ["split"]
    for eid, _ in engines:
        cols += [f"{SHORT[eid]} {k}" for _, k in keys] + [f"{SHORT[eid]} fit s"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for i, seed in enumerate(SEEDS):
        row = [str(seed)]
        for eid, _ in engines:
            r = result["engines"][eid]["splits"][i]
            row += [fmt(r["metrics"][k], k) for k, _ in keys] + [secs(r["fit_s"])]
        print("| " + " | ".join(row) + " |")
    row = ["**mean**"]
    for eid, _ in engines:
        s = result["engines"][eid]["summary"]
        row += [f"**{fmt(s['mean'][k], k)}**" for k, _ in keys] + [f"**{secs(s['fit_s_mean'])}**"]
    print("| " + " | ".join(row) + " |")
    print()

    # Summary: means, spread, fit times and the ratio to millrace's train time.
    base = result["engines"].get("millrace", {}).get("summary")
    cols = ["engine"] + [f"{k} (mean ± sd)" for _, k in keys] + ["fit s, mean", "fit s, median"]
    if base:
        cols.append("fit time vs millrace")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    targets = result.get("targets")
    if targets:
        row = ["issue's target"] + [f"≥ {targets[k]:.3f}" for k, _ in keys] + [f"≤ {targets['train_s']:.0f}", ""]
        if base:
            row.append("")
        print("| " + " | ".join(row) + " |")
    for eid, label in engines:
        s = result["engines"][eid]["summary"]
        row = [label] + [f"{fmt(s['mean'][k], k)} ± {fmt(s['std'][k], k)}" for k, _ in keys]
        row += [secs(s["fit_s_mean"]), secs(s["fit_s_median"])]
        if base:
            row.append("1.00×" if eid == "millrace" else f"{s['fit_s_mean'] / base['fit_s_mean']:.2f}×")
        print("| " + " | ".join(row) + " |")
    print()
    if targets and base:
        checks = [f"{k} {fmt(base['mean'][k], k)} {'≥' if base['mean'][k] >= targets[k] else '<'} {targets[k]:.3f}"
                  for k, _ in keys]
        t_ok = base["fit_s_median"] <= targets["train_s"]
        checks.append(f"median train {secs(base['fit_s_median'])} s {'≤' if t_ok else '>'} {targets['train_s']:.0f} s")
        met = all(base["mean"][k] >= targets[k] for k, _ in keys) and t_ok
        print(f"Targets: {'met' if met else 'NOT met'} ({'; '.join(checks)}).")
        print()
    extra = []
    for eid, label in engines:
        ps = [r.get("params") for r in result["engines"][eid]["splits"]]
        if ps and ps[0]:
            extra.append(f"{label}: " + "; ".join(
                ", ".join(f"{k}={v:.3g}" for k, v in p.items()) for p in ps))
    if extra:
        print("Peer choices per split — " + " | ".join(extra))
        print()


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "numpy": np.__version__, "pandas": pd.__version__, "scikit_learn": sklearn.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", choices=sorted(DATASETS))
    ap.add_argument("--work", required=True, help="scratch folder for splits and predictions")
    ap.add_argument("--json", required=True, help="where to write the results")
    ap.add_argument("--bin", help="the millrace binary (needed unless --peers-only)")
    ap.add_argument("--data-dir", help="millrace --data-dir (default: WORK/millrace-data)")
    ap.add_argument("--source", help="the CSV for telco / churn")
    ap.add_argument("--peers-only", action="store_true", help="skip millrace; only the peers")
    ap.add_argument("--train-arg", action="append", default=[],
                    help="extra argument for `millrace train` (repeatable)")
    ap.add_argument("--millrace-version", default="", help="recorded in the JSON")
    args = ap.parse_args()
    if not args.peers_only and not args.bin:
        ap.error("--bin is required unless --peers-only")
    args.data_dir = args.data_dir or os.path.join(args.work, "millrace-data")

    name, cfg = args.dataset, DATASETS[args.dataset]
    os.makedirs(args.work, exist_ok=True)
    df, eol, src = source_frame(name, args, args.work)
    if cfg["target"] not in df.columns:
        sys.exit(f"{src}: no column {cfg['target']!r}")
    classes = sorted(df[cfg["target"]].unique()) if cfg["task"] != "regression" else None
    splits = make_splits(name, cfg, df, eol, args.work)

    engines = ([] if args.peers_only else [("millrace", "millrace")]) + PEERS[cfg["task"]]
    keys = [k for k, _ in METRICS[cfg["task"]]]
    result = {
        "dataset": name, "task": cfg["task"], "target": cfg["target"], "objective": cfg["objective"],
        "positive_class": cfg.get("positive"), "classes": classes, "source": src, "rows": len(df),
        "columns": len(df.columns), "seeds": SEEDS, "peers_only": args.peers_only,
        "millrace": None if args.peers_only else {"bin": args.bin, "version": args.millrace_version,
                                                 "train_args": args.train_arg},
        "peer_hand_dropped_columns": cfg["drop"],
        "machine": machine(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "targets": TELCO_TARGETS if name == "telco" else None,
        "engines": {},
    }
    for eid, label in engines:
        runs = []
        for split in splits:
            log(f"{name} split {split['seed']}: {label} ...")
            if eid == "millrace":
                r = millrace_split(name, cfg, split, classes, args)
            else:
                r = peer_split(cfg, eid, split, classes)
            log(f"  {', '.join(f'{k}={fmt(v, k)}' for k, v in r['metrics'].items())}, fit {r['fit_s']:.2f} s")
            runs.append(r)
        result["engines"][eid] = {"label": label, "splits": runs, "summary": summarise(runs, keys)}
    if "millrace" in result["engines"]:
        base = result["engines"]["millrace"]["summary"]["fit_s_mean"]
        for eid, e in result["engines"].items():
            e["summary"]["fit_s_ratio_to_millrace"] = e["summary"]["fit_s_mean"] / base

    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o))
        f.write("\n")
    report(name, cfg, result, engines, src)


if __name__ == "__main__":
    main()
