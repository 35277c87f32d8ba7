"""The dead-letter table at ``<lake.root>/_pipeline/dead_letter``: events the stream could not apply.

One append per micro-batch, made idempotent with Delta's ``txnAppId`` (the stream's id) and
``txnVersion`` (the batch id): a batch replayed after a crash does not add its rows twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lib.lake.storage import ensure_delta_table

log = logging.getLogger(__name__)

SCHEMA_DDL = ("source STRING, topic STRING, partition INT, offset BIGINT, key STRING, value STRING, reason STRING, "
              "batch_id BIGINT, stream_id STRING, dead_lettered_at TIMESTAMP")


def ensure(spark: SparkSession, path: str) -> None:
    ensure_delta_table(spark, path, SCHEMA_DDL)


def write(spark: SparkSession, path: str, source: str, frames: Sequence[DataFrame], stream_id: str, batch_id: int, raw_sql: str = "__raw") -> int:
    """Append ``frames`` (the Kafka columns and ``__reason``); ``raw_sql`` rebuilds the message text
    from the cached row (lib.cdc.plan.raw_message_sql). Returns the rows written."""
    if not frames:
        return 0
    rows = reduce(DataFrame.unionByName, frames).coalesce(spark.sparkContext.defaultParallelism).select(
        F.lit(source).alias("source"), F.col("__topic").alias("topic"), F.col("__partition").cast("int").alias("partition"),
        F.col("__offset").alias("offset"), F.col("__key").alias("key"), F.expr(raw_sql).alias("value"), F.col("__reason").alias("reason"),
        F.lit(batch_id).cast("bigint").alias("batch_id"), F.lit(stream_id).alias("stream_id"),
        F.current_timestamp().alias("dead_lettered_at"))
    rows = rows.persist()
    try:
        count = rows.count()
        rows.write.format("delta").mode("append").option("txnAppId", f"dead-letter-{stream_id}").option("txnVersion", batch_id).save(path)
    finally:
        rows.unpersist()
    return count
