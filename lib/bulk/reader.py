"""Spark JDBC read of one chunk: one single-partition JDBC relation per range, unioned (thin layer).

Each range is a complete SELECT built by the dialect, so casts and predicates are exact SQL the unit
tests check. Every reader joins the load's snapshot through ``sessionInitStatement`` before its query.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from lib.bulk.planner import TablePlan
from lib.dialects.base import Snapshot
from lib.spark_sql import ident

POSITION_TYPE = DecimalType(38, 0)
# Columns the pipeline adds to every lake table (docs/reference.md).
ADDED_COLUMNS = ("__source_commit_pos", "__source_change_pos", "__op", "__ingested_at")


def spark_col(name: str) -> Column:
    """A column reference that survives dots, spaces and backticks in the name."""
    return F.col(ident(name))


def read_chunk(
    spark: SparkSession,
    dialect: Any,
    url: str,
    properties: dict[str, str],
    plan: TablePlan,
    predicates: Sequence[str],
    snapshot: Snapshot,
    position: int,
) -> DataFrame:
    """The rows of one chunk, with the lake's column types and the pipeline's ``__`` columns."""
    table = _table_stub(plan)
    frames = []
    for predicate in predicates:
        query = dialect.select_sql(table, plan.reads, predicate, snapshot)
        reader = (
            spark.read.format("jdbc")
            .option("url", url)
            .option("dbtable", dialect.dbtable(query))
            .option("sessionInitStatement", snapshot.session_init_sql)
            .option("preferTimestampNTZ", "true")
        )
        for key, value in properties.items():
            reader = reader.option(key, value)
        frames.append(reader.load())
    df = reduce(DataFrame.unionAll, frames)
    typed = [spark_col(r.name).cast(r.spark_type).alias(r.name) for r in plan.reads]
    return df.select(
        *typed,
        F.lit(Decimal(position)).cast(POSITION_TYPE).alias("__source_commit_pos"),
        F.lit(Decimal(0)).cast(POSITION_TYPE).alias("__source_change_pos"),
        F.lit("r").alias("__op"),
        F.current_timestamp().alias("__ingested_at"),
    )


def _table_stub(plan: TablePlan) -> Any:
    from lib.dialects.base import Table

    return Table(plan.schema, plan.table, (), (), plan.total_rows, 0)
