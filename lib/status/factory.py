"""Which writer keeps the status table of a run: delta-rs where it can, else Spark (also once delta-rs
failed on that table in this process: lib/status/delta_rs_store.py)."""

from __future__ import annotations

from pyspark.sql import SparkSession

from lib.lake.local_writer import table_properties, uses_delta_rs
from lib.lake.paths import status_path
from lib.status.delta_rs_store import DeltaRsStatusStore, spark_took_over
from lib.status.store import StatusStore


def open_status_store(spark: SparkSession, lake_root: str, writer: str = "delta-rs") -> StatusStore:
    """The status table of ``lake_root``, handled by delta-rs where it can (``lake.pipeline_writer``,
    lib/lake/local_writer.py), else by Spark: also where delta-rs failed on it earlier in this process."""
    path = status_path(lake_root)
    if writer == "delta-rs" and spark_took_over(path) is not None:
        return StatusStore(spark, lake_root)
    if uses_delta_rs(spark, lake_root, writer, "status table", path):
        return DeltaRsStatusStore(spark, lake_root, table_properties(spark.conf.getAll))
    return StatusStore(spark, lake_root)
