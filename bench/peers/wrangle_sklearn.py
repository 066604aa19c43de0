"""The churn recipe (examples/recipes/churn.toml) in pandas + scikit-learn, for bench/wrangle.sh.

Same steps: drop customerID; tenure, MonthlyCharges, TotalCharges to numbers (blank -> NaN);
trim the text columns; drop rows with a missing value; keep tenure > 0; one-hot the 15
categoricals (unknown categories ignored); standard-scale the three numbers. Timed like
`millrace bench wrangle`: fit+transform on the whole file, transform again, and one record
(a dict of strings, as the stream carries it) at a time through the fitted pipeline.

Prints one JSON object.
"""

import json
import resource
import sys
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMS = ["tenure", "MonthlyCharges", "TotalCharges"]
CATS = ["gender", "Partner", "Dependents", "PhoneService", "MultipleLines", "InternetService",
        "OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport", "StreamingTV",
        "StreamingMovies", "Contract", "PaperlessBilling", "PaymentMethod"]


def clean(df, drop_rows):
    df = df.drop(columns=["customerID"])
    for c in NUMS:
        df[c] = pd.to_numeric(df[c].astype(str).str.strip(), errors="coerce")
    for c in CATS + ["Churn"]:
        df[c] = df[c].astype(str).str.strip()
    if drop_rows:
        df = df.dropna()
        df = df[df["tenure"] > 0]
    return df


def main():
    path, n_records = sys.argv[1], int(sys.argv[2])
    t = time.perf_counter()
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    read_s = time.perf_counter() - t
    rows = len(raw)

    t = time.perf_counter()
    df = clean(raw, True)
    ct = ColumnTransformer([
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATS),
        ("scale", StandardScaler(), NUMS),
    ])
    out = ct.fit_transform(df)
    fit_s = time.perf_counter() - t
    columns = out.shape[1] + 1  # + the target

    t = time.perf_counter()
    ct.transform(clean(raw, True))
    transform_s = time.perf_counter() - t

    records = raw.head(n_records).to_dict(orient="records")
    for r in records[:200]:
        ct.transform(clean(pd.DataFrame([r]), False))
    lat = []
    for r in records:
        t = time.perf_counter()
        ct.transform(clean(pd.DataFrame([r]), False))
        lat.append((time.perf_counter() - t) * 1e6)
    lat = np.array(lat)
    print(json.dumps({
        "rows": rows,
        "read_s": read_s,
        "fit_transform_s": fit_s,
        "fit_transform_rows_per_s": rows / fit_s,
        "transform_s": transform_s,
        "transform_rows_per_s": rows / transform_s,
        "rows_kept": int(len(df)),
        "output_columns": int(columns),
        "record_count": len(lat),
        "record_median_us": float(np.median(lat)),
        "record_p99_us": float(np.percentile(lat, 99)),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
