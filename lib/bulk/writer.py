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

from lib.lake.storage import is_delta_table, spark_file_path


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


# The transaction identifiers (``txn``) of Delta log actions, read from the log's files by Spark.
TXN_SCHEMA = "txn STRUCT<appId: STRING, version: BIGINT>"


def committed_chunk(spark: SparkSession, path: str, load_id: str) -> int:
    """The highest chunk number Delta has committed for ``load_id`` at ``path``; -1 if none.

    Read from the Delta log's own files with Spark's JSON and Parquet readers (public on classic Spark and
    Spark Connect, any file system): the ``txn`` actions of the commit files, and of the checkpoints when
    log clean-up has removed early commits (then the first commit file left is not version 0)."""
    if not is_delta_table(spark, path):
        return -1
    log_dir = spark_file_path(f"{path.rstrip('/')}/_delta_log")
    commits = spark.read.format("json").schema(TXN_SCHEMA).option("pathGlobFilter", "*.json").load(log_dir)
    row = commits.agg(
        F.min(F.regexp_extract(F.col("_metadata.file_name"), r"^(\d+)\.", 1).try_cast("bigint")).alias("first"),
        F.max(F.when(F.col("txn.appId") == F.lit(load_id), F.col("txn.version"))).alias("version"),
    ).first()
    versions = [row["version"]] if row is not None else []
    if row is None or row["first"] != 0:  # early commits cleaned up: their transactions live on in the checkpoints
        checkpoints = spark.read.format("parquet").schema(TXN_SCHEMA).option("pathGlobFilter", "*.checkpoint*.parquet").load(log_dir)
        versions.append(checkpoints.where(F.col("txn.appId") == F.lit(load_id)).agg(F.max("txn.version").alias("v")).first()["v"])  # type: ignore[index]
    found = [int(v) for v in versions if v is not None]
    return max(found) if found else -1


def table_row_count(spark: SparkSession, path: str, fmt: str) -> int:
    return spark.read.format(fmt).load(path).count()
