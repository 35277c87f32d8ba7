"""Which writer keeps the status table of a run: delta-rs where it can, else Spark."""

from __future__ import annotations

from pyspark.sql import SparkSession

from lib.lake.local_writer import table_properties, uses_delta_rs
from lib.lake.paths import status_path
from lib.status.delta_rs_store import DeltaRsStatusStore
from lib.status.store import StatusStore


def open_status_store(spark: SparkSession, lake_root: str, writer: str = "delta-rs") -> StatusStore:
    """The status table of ``lake_root``, handled by delta-rs where it can (``lake.pipeline_writer``,
    lib/lake/local_writer.py), else by Spark."""
    if uses_delta_rs(spark, lake_root, writer, "status table", status_path(lake_root)):
        return DeltaRsStatusStore(spark, lake_root, table_properties(spark.conf.getAll))
    return StatusStore(spark, lake_root)
