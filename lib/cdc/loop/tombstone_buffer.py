"""Deleted keys held on the driver between status commits, then appended to the tombstone table in one
blind append (thin layer; columns from lib.cdc.plan).

An apply that deletes keys hands their tombstones (schema, table, key, delete position) to the buffer
instead of writing them itself: one Delta commit per status flush for every table, not one small file
and commit per apply. The status of an apply is only recorded after its tombstones are written (the
apply loop flushes the buffer first), so a crash loses nothing that a replay would not write again.
An apply that must check its events against tombstones the buffer still holds for its table flushes
it first (:meth:`TombstoneBuffer.flush_for`).

On a lake on local disk (``lake.pipeline_writer: delta-rs``) the append is made by delta-rs
(:func:`append_with_delta_rs`): the same rows and columns in one commit, without a Spark job. The flush
runs on the apply loop's thread, between dispatches: measured at 0.65-1.94 s per Spark append in the
light phase of ``scripts/bench_cdc.py`` (docs/benchmarks.md), during which no finished table was
handed its next apply. An accelerator, never a new way to fail (lib/fallback.py): when the delta-rs
append raises, Spark appends the same rows, and Spark makes this buffer's appends from then on (said
once at WARNING). A delta-rs commit is atomic: a failed one left nothing in the table; one that landed
before its failure was reported makes Spark's append repeat the same tombstones, which change nothing
(a key's tombstone is the latest delete position among its rows).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

from lib.cdc.plan import CHANGE, COMMIT, tombstone_append_exprs
from lib.fallback import failure_text
from lib.lake.delta_rs_storage import target
from lib.retry import with_retries

log = logging.getLogger(__name__)

ROW_DDL = f"`schema` string, `table` string, `key` string, {COMMIT} decimal(38,0), {CHANGE} decimal(38,0)"


_NAMES = ("schema", "table", "key", COMMIT, CHANGE)  # a held row's fields, in order


def arrow_schema() -> Any:
    """The tombstone table's columns (``TOMBSTONE_DDL``) as delta-rs writes them, all nullable as Spark's."""
    import pyarrow as pa

    return pa.schema([*((n, pa.string()) for n in _NAMES[:3]), (COMMIT, pa.decimal128(38, 0)), (CHANGE, pa.decimal128(38, 0)),
                      ("__deleted_at", pa.timestamp("us", tz="UTC"))])


def append_with_delta_rs(path: str, rows: Sequence[Sequence[Any]]) -> None:
    """Append tombstone ``rows`` (schema, table, key, commit, change), deleted now, to the table at
    ``path`` (local, or on Azure storage: lib/lake/delta_rs_storage.py) in one delta-rs commit."""
    import pyarrow as pa
    from deltalake import write_deltalake

    now = datetime.now(UTC)
    data = pa.Table.from_pylist([{**dict(zip(_NAMES, row, strict=True)), "__deleted_at": now} for row in rows], schema=arrow_schema())
    uri, options = target(path)
    write_deltalake(uri, data, mode="append", storage_options=options)


class TombstoneBuffer:
    def __init__(self, path: str | None, max_rows: int = 200_000, delta_rs: bool = False) -> None:
        self.path = path
        self.max_rows = max_rows  # the loop flushes early past this many rows (driver memory stays bounded)
        self.delta_rs = delta_rs  # appended by delta-rs (a lake on local disk or Azure storage), else by Spark
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
            path, rows = self.path, self._rows
            if not (self.delta_rs and self._append_with_delta_rs(path, rows)):
                frame = spark.createDataFrame(rows, StructType.fromDDL(ROW_DDL)).selectExpr(*tombstone_append_exprs())
                with_retries("tombstones append", lambda: frame.coalesce(1).write.format("delta").mode("append").save(path), 3, 0.5)
            count, tables = len(self._rows), len(self._tables)
            self._rows, self._tables = [], set()
        log.debug("tombstones: %d deleted keys of %d tables appended in %.2fs", count, tables, time.monotonic() - started)
        return count

    def _append_with_delta_rs(self, path: str, rows: Sequence[Sequence[Any]]) -> bool:
        """Append ``rows`` with delta-rs; False (and Spark from now on) when it raised: Spark appends them."""
        try:
            append_with_delta_rs(path, rows)
            return True
        except Exception as exc:  # noqa: BLE001 - an accelerator, never a new way to fail: Spark appends the rows
            self.delta_rs = False
            log.warning("tombstones: the delta-rs append failed (%s); Spark appends them, now and for the rest of this stream",
                        failure_text(exc))
            return False
