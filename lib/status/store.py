"""Reading and appending status events in the Delta table at ``<lake.root>/_pipeline/status``."""

from __future__ import annotations

import logging
import threading

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from lib.cdc.plan import sql_string
from lib.lake.paths import status_path
from lib.lake.storage import delta_sql_ref, ensure_delta_table, is_delta_table
from lib.retry import with_retries
from lib.status.record import SCHEMA_DDL, StatusEvent, latest

log = logging.getLogger(__name__)
APPEND_ATTEMPTS = 3
APPEND_BACKOFF_SECONDS = 1.0


class StatusStore:
    def __init__(self, spark: SparkSession, lake_root: str) -> None:
        self.spark = spark
        self.path = status_path(lake_root)
        self._create_lock = threading.Lock()

    def ensure(self) -> None:
        """Create the table if it does not exist yet (call once before concurrent writers start)."""
        with self._create_lock:
            ensure_delta_table(self.spark, self.path, SCHEMA_DDL)

    def append(self, *events: StatusEvent) -> None:
        """Append ``events`` in one commit, retried: parallel table loads and the stream write at once,
        and a status commit that fails for a passing reason must not fail a table whose data is in.
        (An append retried after a commit that did land only repeats identical events.)"""
        rows = [e.as_row() for e in events]

        def write() -> None:
            # Timestamps are written as UTC instants; the session time zone is UTC in every job.
            # mergeSchema: a status table written by an older version gains the newer columns
            self.spark.createDataFrame(rows, SCHEMA_DDL).write.format("delta").mode("append").option("mergeSchema", "true").save(self.path)

        with_retries("status commit", write, APPEND_ATTEMPTS, APPEND_BACKOFF_SECONDS)

    def latest(self, source: str | None = None, phase: str | None = None) -> dict[tuple[str, str, str], StatusEvent]:
        """The current status of every table (of ``source``), newest event first per table; with ``phase``,
        the newest event of that phase (the stream asks for the newest bulk load of its tables)."""
        if not is_delta_table(self.spark, self.path):
            return {}
        df = self.spark.read.format("delta").load(self.path)
        if source is not None:
            df = df.where(df["source"] == source)
        if phase is not None:
            df = df.where(df["phase"] == phase)
        newest_first = Window.partitionBy("source", "schema", "table").orderBy(F.col("seq").desc())
        newest = df.withColumn("__rn", F.row_number().over(newest_first)).where(F.col("__rn") == 1).drop("__rn")
        return latest(StatusEvent.from_row(r.asDict()) for r in newest.collect())

    def delete_source(self, source: str) -> None:
        if is_delta_table(self.spark, self.path):
            # SQL, not the DeltaTable API: the same on classic Spark and Spark Connect
            self.spark.sql(f"DELETE FROM {delta_sql_ref(self.path)} WHERE source = {sql_string(source)}")
            log.info("status: removed every event of source %s", source)
