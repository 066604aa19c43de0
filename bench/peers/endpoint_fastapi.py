"""The Python peer for bench/endpoint.sh: a scikit-learn churn model behind FastAPI + uvicorn.

Trained at start-up on the same CSV millrace trains on (target Churn): numbers coerced from
text with the median imputed, categoricals one-hot encoded, numbers scaled, logistic regression
(the model the issue's Python baseline used). POST /invocations takes one JSON record of
strings, as millrace's endpoint does, and answers with the same keys.

    uvicorn --app-dir bench/peers endpoint_fastapi:app --port 8081 --workers 2
(env CHURN_CSV = the training CSV)
"""

import os

import pandas as pd
from fastapi import FastAPI, Request
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"]

df = pd.read_csv(os.environ["CHURN_CSV"], dtype=str, keep_default_na=False)
y = (df["Churn"] == "Yes").astype(int)
X = df.drop(columns=["Churn", "customerID"])
CATEGORICAL = [c for c in X.columns if c not in NUMERIC]


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for c in NUMERIC:
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    return frame


model = Pipeline(
    [
        (
            "features",
            ColumnTransformer(
                [
                    ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), NUMERIC),
                    ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                ]
            ),
        ),
        ("lr", LogisticRegression(C=0.316, max_iter=1000)),
    ]
)
model.fit(prepare(X), y)
COLUMNS = list(X.columns)

app = FastAPI()


@app.get("/ping")
def ping():
    return "ok"


@app.post("/invocations")
async def invocations(request: Request):
    record = await request.json()
    frame = prepare(pd.DataFrame([{c: record.get(c) for c in COLUMNS}]))
    p = float(model.predict_proba(frame)[0, 1])
    return {
        "predictions": [
            {
                "predicted_label": "Yes" if p >= 0.5 else "No",
                "probability": p,
                "probabilities": [1 - p, p],
                "labels": ["No", "Yes"],
            }
        ]
    }
