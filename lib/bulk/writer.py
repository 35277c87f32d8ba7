"""Writing one chunk to the lake as one atomic, idempotent commit (thin layer).

Delta: every chunk of a load carries ``txnAppId`` = the load's id and ``txnVersion`` = the chunk's
number. Delta records both in the same commit as the data and skips a write whose version it has
already committed for that app id, so re-running a chunk after a crash adds nothing twice.
Parquet has no such log: a resumed Parquet table is rewritten from its first chunk.
"""

from __future__ import annotations

import re

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from lib.lake.storage import is_delta_table


def write_chunk(df: DataFrame, path: str, fmt: str, load_id: str, chunk: int) -> int:
    """Write ``df`` (chunk 0 replaces the table, later chunks append); returns rows written.

    Callers skip chunks :func:`committed_chunk` reports as done, so a write here always runs a job.
    """
    observation = Observation(f"chunk_{chunk}")
    observed = df.observe(observation, F.count(F.lit(1)).alias("rows"))
    writer = observed.write.format(fmt).mode("overwrite" if chunk == 0 else "append")
    if fmt == "delta":
        writer = writer.option("txnAppId", load_id).option("txnVersion", chunk)
        if chunk == 0:
            writer = writer.option("overwriteSchema", "true")
            if needs_column_mapping(df.columns):
                writer = writer.option("delta.columnMapping.mode", "name")
    writer.save(path)
    return int(observation.get.get("rows", 0))


_DELTA_INVALID = re.compile(r"[ ,;{}()\n\t=]")


def needs_column_mapping(columns: list[str]) -> bool:
    """Delta stores names with spaces, commas, braces, ... only with column mapping mode ``name``
    (reader v2 / writer v5). Tables without such names keep the most widely readable protocol."""
    return any(_DELTA_INVALID.search(c) for c in columns)


def committed_chunk(spark: SparkSession, path: str, load_id: str) -> int:
    """The highest chunk number Delta has committed for ``load_id`` at ``path``; -1 if none."""
    if not is_delta_table(spark, path):
        return -1
    jvm = spark.sparkContext._jvm
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    version = delta_log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty()).transactions().get(load_id)
    return int(version.get()) if version.isDefined() else -1


def table_row_count(spark: SparkSession, path: str, fmt: str) -> int:
    return spark.read.format(fmt).load(path).count()
