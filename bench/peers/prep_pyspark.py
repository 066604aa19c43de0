#!/usr/bin/env python3
"""Prep benchmark peer: the churn job (examples/jobs/churn.toml) in PySpark, local mode.

    prep_pyspark.py LAKE_DIR FORMAT OUT_DIR      FORMAT: ndjson | concat

Same job as prep_duckdb.py and millrace: trim every string, SeniorCitizen/tenure -> INT,
MonthlyCharges/TotalCharges -> DOUBLE (blank -> NULL), latest record per customerID by arrival
(object path, then row in the object, both descending), 21 typed columns as Parquet (zstd) in
OUT_DIR (mode overwrite). Prints `rows N`.

Spark runs as local[2] (the benchmark machine's 2 cores) with a 4 GiB driver heap and
otherwise default settings (adaptive execution on, 200 shuffle partitions before coalescing).
Environment knobs: PREP_SPARK_MASTER (default local[2]), PREP_SPARK_DRIVER_MEMORY (default 4g).

How each format is read:
  * ndjson: spark.read.json with an explicit all-string schema (no inference pass). The object
    is the hidden `_metadata.file_path` column (what input_file_name() returns, as a file
    source column that also works for the text reader below) and the row is monotonically_increasing_id(): it increases with
    the read order inside a partition, and a partition reads each object (or object split) in
    file order, so inside one object a later row has a larger id.
  * concat (`{..}{..}` with no separator, as Firehose writes it): Spark's JSON reader cannot
    read this, and says nothing: in line mode and in multiLine mode alike it returns the first
    record of each object and drops the rest (checked with 4.3.0: 3 rows from 3 objects of ~100
    records). So each object is read whole as text (wholetext=True: one row per
    object, so an object must fit in one string, < 2 GiB), split between `}` and `{` with a
    lookbehind/lookahead regex, numbered with posexplode and parsed with from_json. The split
    is not JSON-aware: a string value containing `}{` would be cut in two (valid JSON has `}{`
    nowhere else; the generated lakes have no braces inside values).

Peak memory: the work happens in the JVM that PySpark starts as a child process. PySpark lets
that JVM die on its own when the Python process exits (it watches its stdin), which means
nobody waits for it and its resource usage never reaches our parent: /usr/bin/time would report
the Python driver's ~100 MB. So we stop Spark, close the JVM's stdin and wait for it; then
/usr/bin/time's %M (the largest process in the tree) is the JVM's peak RSS.
"""
import os
import sys
import time

COLUMNS = [
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
    "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
    "TechSupport", "StreamingTV", "StreamingMovies", "Contract", "PaperlessBilling",
    "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn",
]
INTS = {"SeniorCitizen", "tenure"}
DOUBLES = {"MonthlyCharges", "TotalCharges"}


def typed(col: str) -> str:
    if col in INTS:
        return f"TRY_CAST(NULLIF(TRIM({col}), '') AS INT) AS {col}"
    if col in DOUBLES:
        return f"TRY_CAST(NULLIF(TRIM({col}), '') AS DOUBLE) AS {col}"
    return f"TRIM({col}) AS {col}"


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[2] not in ("ndjson", "concat"):
        sys.exit("usage: prep_pyspark.py LAKE_DIR ndjson|concat OUT_DIR")
    lake, fmt, out = sys.argv[1:]
    started = time.monotonic()
    # Bind the driver to loopback (the VM's hostname resolves to 127.0.0.1 and Spark warns and
    # picks another interface otherwise); nothing here needs a network.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

    from pyspark.sql import SparkSession, functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    spark = (
        SparkSession.builder.appName("millrace-prep-bench")
        .master(os.environ.get("PREP_SPARK_MASTER", "local[2]"))
        .config("spark.driver.memory", os.environ.get("PREP_SPARK_DRIVER_MEMORY", "4g"))
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    jvm = spark.sparkContext._gateway.proc  # the JVM's Popen, to reap it at the end

    schema = StructType([StructField(c, StringType(), True) for c in COLUMNS])
    root = os.path.abspath(os.path.join(lake, "raw", "churn"))
    if fmt == "ndjson":
        raw = (
            spark.read.schema(schema)
            .option("recursiveFileLookup", "true")
            .json(root)
            .select(
                *COLUMNS,
                F.col("_metadata.file_path").alias("_object"),
                F.monotonically_increasing_id().alias("_row"),
            )
        )
    else:
        objects = (
            spark.read.option("recursiveFileLookup", "true")
            .text(root, wholetext=True)
            .select(F.col("_metadata.file_path").alias("_object"), "value")
        )
        records = objects.select(
            "_object",
            F.posexplode(F.split("value", r"(?<=\})\s*(?=\{)")).alias("_row", "json"),
        ).where(F.trim("json") != "")  # an empty object file splits into one empty string
        raw = records.select(
            F.from_json("json", schema).alias("r"), "_object", "_row"
        ).select(*[F.col(f"r.{c}").alias(c) for c in COLUMNS], "_object", "_row")
    raw.createOrReplaceTempView("raw_churn")

    # The job's two views, same SQL (Spark dialect: the values are strings already, so the
    # job's CAST(x AS VARCHAR) is left out).
    spark.sql(f"""
        CREATE OR REPLACE TEMP VIEW typed AS
        SELECT {", ".join(typed(c) for c in COLUMNS)}, _object, _row
        FROM raw_churn
        WHERE customerID IS NOT NULL AND TRIM(customerID) <> ''
    """)
    latest = spark.sql(f"""
        SELECT {", ".join(COLUMNS)}
        FROM (
          SELECT *, ROW_NUMBER() OVER (PARTITION BY customerID ORDER BY _object DESC, _row DESC) AS rn
          FROM typed
        )
        WHERE rn = 1
    """)
    latest.write.mode("overwrite").option("compression", "zstd").parquet(out)
    # Spark's writer does not hand back a row count; counting the written files needs no
    # column data (row counts come from the Parquet metadata), a small part of the run.
    rows = spark.read.parquet(out).count()
    version = spark.version
    spark.stop()
    jvm.stdin.close()
    jvm.wait()
    print(f"pyspark {version}: rows {rows} in {time.monotonic() - started:.2f} s -> {out}")


if __name__ == "__main__":
    main()
