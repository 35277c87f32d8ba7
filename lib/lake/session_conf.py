"""The Spark SQL settings every job's session needs so the lake's files read the same in every reader (pure).

Spark writes ``timestamp`` (with time zone) columns as Parquet INT96 unless told otherwise. Readers other
than Spark (delta-rs / Polars / DuckDB, pyarrow) decode INT96 as nanoseconds since 1970 and overflow
outside 1677-2262 (a ``2999-12-31`` instant read back as ``1830-11-23``, silently). INT64
``TIMESTAMP_MICROS`` is the Delta protocol's own timestamp encoding and holds every value Spark can.
``timestamp_ntz`` columns are INT64 microseconds whatever this says.

Dates and timestamps are written in the proleptic Gregorian calendar (``CORRECTED``): Spark 4's default,
not the default of every runtime (Spark 3.x based ones refuse or rebase dates before 1582), and the
calendar every other reader assumes.

All are runtime SQL settings: ``jobs/_session.py`` sets them on the session a job runs in, also one that
was active before the job started (spark-submit, Databricks), where builder settings have no effect.
Files already written keep their encoding and are read as before (Parquet records the type per file).
"""

from __future__ import annotations

LAKE_SQL_CONF: dict[str, str] = {
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
}


def lake_sql_conf() -> dict[str, str]:
    """The settings (a fresh dict) a session writing the lake must carry."""
    return dict(LAKE_SQL_CONF)
