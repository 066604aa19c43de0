#!/usr/bin/env python3
"""Prep benchmark peer: the churn job (examples/jobs/churn.toml) in DuckDB.

    prep_duckdb.py LAKE_DIR FORMAT OUT_DIR      FORMAT: ndjson | concat

Reads LAKE_DIR/raw/churn/**, trims every string, casts SeniorCitizen/tenure to INT and
MonthlyCharges/TotalCharges to DOUBLE (blank -> NULL), keeps the latest record per customerID
by arrival (object path, then row in the object, both descending) and writes the 21 typed
columns as one Parquet file (zstd) into OUT_DIR. Prints `rows N`.

DuckDB runs with its defaults (threads = cores, memory_limit = 80% of RAM, insertion order
preserved): the peer as a user would run it. millrace's job caps itself at 1 GiB; the peak RSS
column of bench/prep.sh shows what each engine actually used.

Notes, checked with duckdb 2.0.1:
  * read_json has no file_row_number column (read_parquet has one), so the row index is
    row_number() OVER () over the scan. With preserve_insertion_order (the default) the scan
    hands rows on in file order and the streaming window numbers them in that order; the
    numbers are global, not per object, which orders rows inside one object the same way.
    `FROM read_json(...) WITH ORDINALITY` gives the same numbers at the same cost.
  * Concatenated JSON (`{..}{..}`, no separator, as Firehose writes it) is read with
    format='unstructured' (format='auto' detects it too); 'newline_delimited' rejects it
    ("unexpected content after document").
"""
import os
import sys
import time

import duckdb

COLUMNS = [
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
    "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
    "TechSupport", "StreamingTV", "StreamingMovies", "Contract", "PaperlessBilling",
    "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn",
]
INTS = {"SeniorCitizen", "tenure"}
DOUBLES = {"MonthlyCharges", "TotalCharges"}
JSON_FORMAT = {"ndjson": "newline_delimited", "concat": "unstructured"}


def sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def typed(col: str) -> str:
    if col in INTS:
        return f"TRY_CAST(NULLIF(TRIM({col}), '') AS INT) AS {col}"
    if col in DOUBLES:
        return f"TRY_CAST(NULLIF(TRIM({col}), '') AS DOUBLE) AS {col}"
    return f"TRIM({col}) AS {col}"


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[2] not in JSON_FORMAT:
        sys.exit("usage: prep_duckdb.py LAKE_DIR ndjson|concat OUT_DIR")
    lake, fmt, out = sys.argv[1:]
    started = time.monotonic()
    os.makedirs(out, exist_ok=True)
    glob = os.path.join(lake, "raw", "churn", "**", "*")
    # Every value is a string in the producers' JSON: read them all as VARCHAR, as the job does.
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in COLUMNS) + "}"
    con = duckdb.connect()
    # The job's two views, same SQL. `filename` is the object's path, so path order is key order.
    con.execute(f"""
        CREATE VIEW raw_churn AS
        SELECT * EXCLUDE (filename), filename AS _object, row_number() OVER () AS _row
        FROM read_json({sql_string(glob)}, format = '{JSON_FORMAT[fmt]}',
                       columns = {columns}, filename = true)
    """)
    con.execute(f"""
        CREATE VIEW typed AS
        SELECT {", ".join(typed(c) for c in COLUMNS)}, _object, _row
        FROM raw_churn
        WHERE customerID IS NOT NULL AND TRIM(customerID) <> ''
    """)
    con.execute(f"""
        CREATE VIEW latest AS
        SELECT {", ".join(COLUMNS)}
        FROM (
          SELECT *, ROW_NUMBER() OVER (PARTITION BY customerID ORDER BY _object DESC, _row DESC) AS rn
          FROM typed
        )
        WHERE rn = 1
    """)
    target = os.path.join(out, "part-0.parquet")
    # COPY returns the number of rows it wrote.
    rows = con.execute(
        f"COPY latest TO {sql_string(target)} (FORMAT parquet, COMPRESSION zstd)"
    ).fetchone()[0]
    print(f"duckdb {duckdb.__version__}: rows {rows} in {time.monotonic() - started:.2f} s -> {target}")


if __name__ == "__main__":
    main()
