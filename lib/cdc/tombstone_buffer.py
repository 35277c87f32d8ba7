"""Deleted keys held on the driver between status commits, then appended to the tombstone table in one
blind append (thin layer; columns from lib.cdc.plan).

An apply that deletes keys hands their tombstones (schema, table, key, delete position) to the buffer
instead of writing them itself: one Delta commit per status flush for every table, not one small file
and commit per apply. The status of an apply is only recorded after its tombstones are written (the
apply loop flushes the buffer first), so a crash loses nothing that a replay would not write again.
An apply that must check its events against tombstones the buffer still holds for its table flushes
it first (:meth:`TombstoneBuffer.flush_for`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

from lib.cdc.plan import CHANGE, COMMIT, tombstone_append_exprs
from lib.retry import with_retries

log = logging.getLogger(__name__)

ROW_DDL = f"`schema` string, `table` string, `key` string, {COMMIT} decimal(38,0), {CHANGE} decimal(38,0)"


class TombstoneBuffer:
    def __init__(self, path: str | None, max_rows: int = 200_000) -> None:
        self.path = path
        self.max_rows = max_rows  # the loop flushes early past this many rows (driver memory stays bounded)
        self._rows: list[Sequence[Any]] = []
        self._tables: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def add(self, schema: str, table: str, rows: Sequence[Sequence[Any]]) -> None:
        """Hold ``rows`` (schema, table, key, commit, change) of one apply's deletes."""
        if rows:
            with self._lock:
                self._rows.extend(rows)
                self._tables.add((schema, table))

    def __len__(self) -> int:
        return len(self._rows)

    def holds(self, schema: str, table: str) -> bool:
        with self._lock:
            return (schema, table) in self._tables

    def flush_for(self, spark: SparkSession, schema: str, table: str) -> None:
        """Write the buffer when it holds tombstones of the table (before its events are checked)."""
        if self.holds(schema, table):
            self.flush(spark)

    def flush(self, spark: SparkSession) -> int:
        """Append every held tombstone in one commit; returns how many. A blind append: it never
        conflicts with the MERGEs or with another append, and is retried on passing storage errors."""
        with self._lock:
            if not self._rows or not self.path:
                self._rows, self._tables = [], set()
                return 0
            started = time.monotonic()
            frame = spark.createDataFrame(self._rows, StructType.fromDDL(ROW_DDL)).selectExpr(*tombstone_append_exprs())
            path = self.path
            with_retries("tombstones append", lambda: frame.coalesce(1).write.format("delta").mode("append").save(path), 3, 0.5)
            count, tables = len(self._rows), len(self._tables)
            self._rows, self._tables = [], set()
        log.debug("tombstones: %d deleted keys of %d tables appended in %.2fs", count, tables, time.monotonic() - started)
        return count
