"""The dead-letter table at ``<lake.root>/_pipeline/dead_letter``: events the stream could not apply.

Rows are merged on (source, topic, partition, offset), so a range applied again after a crash does
not add its dead letters twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lib.lake.storage import ensure_delta_table
from lib.spark_sql import delta_path, ident

log = logging.getLogger(__name__)

SCHEMA_DDL = ("source STRING, topic STRING, partition INT, offset BIGINT, key STRING, value STRING, reason STRING, "
              "batch_id BIGINT, stream_id STRING, dead_lettered_at TIMESTAMP")
COLUMNS = [c.split()[0] for c in SCHEMA_DDL.split(", ")]


def ensure(spark: SparkSession, path: str) -> None:
    ensure_delta_table(spark, path, SCHEMA_DDL)


def merge_sql(path: str, view: str) -> str:
    """Insert the view's rows that are not in the table yet (pure)."""
    names = ", ".join(f"`{c}`" for c in COLUMNS)
    values = ", ".join(f"s.`{c}`" for c in COLUMNS)
    return (f"MERGE INTO {delta_path(path)} AS t USING {ident(view)} AS s "
            "ON t.source = s.source AND t.topic = s.topic AND t.partition = s.partition AND t.offset = s.offset "
            f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})")


def write(spark: SparkSession, path: str, source: str, frames: Sequence[DataFrame], stream_id: str, batch_id: int, raw_sql: str = "__raw") -> int:
    """Merge ``frames`` (the Kafka columns and ``__reason``) into the table; ``raw_sql`` rebuilds the
    message text from the cached row (lib.cdc.plan.raw_message_sql). Returns the rows given."""
    if not frames:
        return 0
    rows = reduce(DataFrame.unionByName, frames).coalesce(1).select(
        F.lit(source).alias("source"), F.col("__topic").alias("topic"), F.col("__partition").cast("int").alias("partition"),
        F.col("__offset").alias("offset"), F.col("__key").alias("key"), F.expr(raw_sql).alias("value"), F.col("__reason").alias("reason"),
        F.lit(batch_id).cast("bigint").alias("batch_id"), F.lit(stream_id).alias("stream_id"),
        F.current_timestamp().alias("dead_lettered_at")).localCheckpoint()
    view = f"dead_letters_{uuid.uuid4().hex[:8]}"
    rows.createOrReplaceTempView(view)
    try:
        count = rows.count()
        spark.sql(merge_sql(path, view))
    finally:
        spark.catalog.dropTempView(view)
    return count
