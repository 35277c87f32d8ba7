"""Running the checksum on each side: PostgreSQL through psycopg2, the lake through Spark (thin layer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lib.config.model import ConnectionConfig
from lib.dialects.base import Table
from lib.dialects.postgres.connect import as_source_error, connect
from lib.spark_sql import ident
from lib.validate import source_checksum
from lib.validate.checksum_sql import RowSpec, pg_bucket_sums_sql, pg_drill_down_sql, spark_row_exprs
from lib.validate.reconcile import BucketSums

# The session the loader's JDBC readers run with, so ``::text`` renders values the same way.
SESSION_SQL = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET extra_float_digits = 3"


def _pg_query(conn: ConnectionConfig, query: str) -> list[tuple[Any, ...]]:
    db = connect(conn, application_name="lakehouse-validate")
    try:
        db.set_session(readonly=True)
        with db.cursor() as cur:
            cur.execute(SESSION_SQL)
            cur.execute(query)
            return cur.fetchall()
    except Exception as exc:  # noqa: BLE001 - every driver error becomes a SourceError
        raise as_source_error(exc, "validation query failed") from None
    finally:
        db.close()


def source_bucket_sums(conn: ConnectionConfig, table: Table, spec: RowSpec, dialect: Any = None) -> dict[str, tuple[int, int]]:
    if dialect is not None and dialect.name != "postgres":  # Oracle, SQL Server: over JDBC, sums as text
        query = source_checksum.bucket_sums_sql(dialect.name, source_checksum.inner_select(dialect, table, spec), spec)
        return {str(b): (int(n), int(s)) for b, n, s in dialect.query(conn, query)}
    return {b: (int(n), int(s)) for b, n, s in _pg_query(conn, pg_bucket_sums_sql(table, spec))}


def source_rows_in(conn: ConnectionConfig, table: Table, spec: RowSpec, buckets: Sequence[str], dialect: Any = None) -> list[tuple[str | None, int]]:
    if dialect is not None and dialect.name != "postgres":
        query = source_checksum.drill_down_sql(dialect.name, source_checksum.inner_select(dialect, table, spec), spec, buckets)
        return [(k, int(h)) for k, h in dialect.query(conn, query)]
    return [(k, int(h)) for k, h in _pg_query(conn, pg_drill_down_sql(table, spec, buckets))]


def _rendered(df: DataFrame, spec: RowSpec) -> DataFrame:
    exprs = spark_row_exprs(spec)
    return df.select(F.expr(exprs.bucket).alias("b"), F.expr(exprs.key).alias("k"), F.expr(exprs.hash).alias("h"))


def lake_bucket_sums(df: DataFrame, spec: RowSpec) -> BucketSums:
    agg = _rendered(df, spec).groupBy("b").agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("h").cast("decimal(38,0)")).alias("s"))
    return {r["b"]: (int(r["n"]), int(r["s"])) for r in agg.collect()}


def lake_rows_in(df: DataFrame, spec: RowSpec, buckets: Sequence[str]) -> list[tuple[str | None, int]]:
    rows = _rendered(df, spec).where(F.col("b").isin(list(buckets))).select("k", "h").collect()
    return [(r["k"], int(r["h"])) for r in rows]


def lake_key_stats(df: DataFrame, key: Sequence[str], examples: int = 5) -> tuple[int, int, int, list[str]]:
    """(rows with a NULL key column, duplicated keys, extra rows of duplicates, example duplicates)."""
    cols = [F.col(ident(c)) for c in key]
    groups = df.groupBy(*cols).agg(F.count(F.lit(1)).alias("__n"))
    any_null = F.lit(False)
    for c in key:
        any_null = any_null | F.col(ident(c)).isNull()
    stats = groups.agg(
        F.sum(F.when(any_null, F.col("__n")).otherwise(0)).alias("null_rows"),
        F.sum(F.when(F.col("__n") > 1, 1).otherwise(0)).alias("dup_keys"),
        F.sum(F.when(F.col("__n") > 1, F.col("__n") - 1).otherwise(0)).alias("dup_rows"),
    ).collect()[0]
    null_rows, dup_keys, dup_rows = (int(stats[i] or 0) for i in range(3))
    shown: list[str] = []
    if dup_keys:
        for row in groups.where(F.col("__n") > 1).limit(examples).collect():
            parts = [f"{c}={row[i]}" for i, c in enumerate(key)]
            shown.append((parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")") + f" x{row['__n']}")
    return null_rows, dup_keys, dup_rows, shown
