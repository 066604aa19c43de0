"""The Python peer for bench/batch.sh: batch scoring with pandas + scikit-learn.

    batch_sklearn.py train TRAIN_CSV MODEL.joblib [lr|hgb]
    batch_sklearn.py score MODEL.joblib INPUT_CSV OUTPUT_CSV [CHUNK_ROWS]

`train` fits on the CSV millrace trains on (target Churn): numbers coerced from text, the
rest categorical; `lr` = median impute + scaling + one-hot + LogisticRegression (the endpoint
peer's model), `hgb` = HistGradientBoostingClassifier with native categoricals (closest to
millrace's trees). `score` is what is timed: load the model, read the input CSV in chunks
(every column as text, as millrace reads it), predict_proba, write customerID,
predicted_label, probability per row, appending chunk by chunk. Prints one JSON line.
"""

import json
import sys
import time

import joblib
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

NUMERIC = ["tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"]
DROP = ["Churn", "customerID"]


def prepare(frame: pd.DataFrame, columns) -> pd.DataFrame:
    frame = frame.reindex(columns=columns)
    for c in NUMERIC:
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    return frame


def train(path: str, out: str, kind: str) -> None:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    y = (df["Churn"] == "Yes").astype(int)
    columns = [c for c in df.columns if c not in DROP]
    categorical = [c for c in columns if c not in NUMERIC]
    if kind == "lr":
        features = ColumnTransformer(
            [
                ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), NUMERIC),
                ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        )
        model = Pipeline([("features", features), ("lr", LogisticRegression(C=0.316, max_iter=1000))])
    else:
        features = ColumnTransformer(
            [
                ("num", "passthrough", NUMERIC),
                ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), categorical),
            ]
        )
        cat_mask = [False] * len(NUMERIC) + [True] * len(categorical)
        model = Pipeline(
            [("features", features), ("hgb", HistGradientBoostingClassifier(categorical_features=cat_mask, random_state=0))]
        )
    model.fit(prepare(df, columns), y)
    joblib.dump({"model": model, "columns": columns}, out)


def score(model_path: str, path: str, out: str, chunk_rows: int) -> None:
    started = time.perf_counter()
    saved = joblib.load(model_path)
    model, columns = saved["model"], saved["columns"]
    rows = 0
    with open(out, "w", newline="") as f:
        for i, chunk in enumerate(pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows)):
            p = model.predict_proba(prepare(chunk, columns))[:, 1]
            res = pd.DataFrame(
                {"customerID": chunk["customerID"].values, "predicted_label": ["Yes" if x >= 0.5 else "No" for x in p], "probability": p}
            )
            res.to_csv(f, header=(i == 0), index=False)
            rows += len(chunk)
    secs = time.perf_counter() - started
    print(json.dumps({"rows": rows, "seconds": secs, "rows_per_s": rows / secs}))


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "hgb")
    else:
        score(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 16384)
