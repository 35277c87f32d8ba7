"""The status table written and read by delta-rs, on a lake on local disk or on Azure storage (ADLS Gen2,
Blob: deltalake's object store with the job's ``storage:`` accounts, lib/lake/delta_rs_storage.py; a commit
there is a conditional put, atomic between concurrent writers without a locking provider).

Same table, same rows, same readers as :class:`lib.status.store.StatusStore` (Spark): ``jobs/status.py``,
Spark, delta-rs, DuckDB read it alike, and both stores may write one table (a bulk load and a stream in
two processes, or an older version's table): the schema is the one of ``SCHEMA_DDL``, all columns
nullable, and columns a table lacks are added on append (``schema_mode="merge"``, as Spark's
``mergeSchema``). What changes is the cost: each Delta-Spark operation on this small table costs a
Spark job or a commit in the JVM (measured on 100 tables: creating the table 5.1 s, the plans' commit
4.1 s, in a freshly started JVM); delta-rs does each in tens of milliseconds, without the JVM.

An accelerator, never a new way to fail (lib/fallback.py): when a delta-rs operation on the table
(its creation, an append, a read, a delete) raises, the same operation is made by Spark's store, and
Spark keeps the table for the rest of the process (:func:`spark_took_over`, said once at WARNING):
one failure is not repeated on every status commit. Nothing is lost either way: a delta-rs commit is
atomic, so a failed one left nothing in the table, and one that landed before its failure was
reported makes Spark's append repeat identical events, which readers resolve by ``seq`` as any retry.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from lib.fallback import failure_text
from lib.lake.delta_rs_storage import target
from lib.lake.local_writer import delta_table_exists
from lib.status.record import SCHEMA_DDL, StatusEvent, latest
from lib.status.store import StatusStore

log = logging.getLogger(__name__)

_KEY = ["source", "schema", "table"]
# Every append adds a file; a stream appends every few seconds and every reader (the stream's own
# table discovery every 30 s, jobs/status.py) reads them all. Compacted after this many appends of
# this process: the read cost stays bounded however long the stream runs.
COMPACT_EVERY_APPENDS = 500

# Status tables (by path) whose delta-rs operations failed in this process: Spark keeps them from then on.
_TAKEN_OVER: dict[str, str] = {}
_TAKEN_OVER_LOCK = threading.Lock()


def spark_took_over(path: str) -> str | None:
    """Why Spark keeps the status table at ``path`` for the rest of this process; None while delta-rs does."""
    with _TAKEN_OVER_LOCK:
        return _TAKEN_OVER.get(path)


def ddl_columns(ddl: str = SCHEMA_DDL) -> list[tuple[str, str]]:
    """``(name, type)`` of a flat Spark DDL column list such as :data:`SCHEMA_DDL` (pure)."""
    out = []
    depth, start = 0, 0
    for i, ch in enumerate(ddl + ","):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            name, _, kind = ddl[start:i].strip().partition(" ")
            out.append((name, kind.strip().upper()))
            start = i + 1
    return out


def arrow_schema(ddl: str = SCHEMA_DDL) -> Any:
    """The Arrow schema delta-rs writes for ``ddl``: the Delta types Spark's DDL gives, all nullable."""
    import pyarrow as pa

    types = {"STRING": pa.string(), "BIGINT": pa.int64(), "INT": pa.int32(), "TIMESTAMP": pa.timestamp("us", tz="UTC"), "ARRAY<STRING>": pa.list_(pa.string())}
    fields = []
    for name, kind in ddl_columns(ddl):
        if kind not in types:
            raise ValueError(f"status column {name}: no Arrow type for {kind}")
        fields.append(pa.field(name, types[kind], nullable=True))
    return pa.schema(fields)


def sql_string(value: str) -> str:
    """``value`` as a SQL string literal for a delta-rs predicate (pure)."""
    return "'" + value.replace("'", "''") + "'"


class DeltaRsStatusStore(StatusStore):
    """:class:`StatusStore` whose operations run in delta-rs; ``properties`` are the table properties
    a new status table gets (the session's Delta defaults, as Delta-Spark would set them)."""

    def __init__(self, spark: Any, lake_root: str, properties: Mapping[str, str] | None = None) -> None:
        super().__init__(spark, lake_root)
        self.uri, self.options = target(self.path)  # a local path and no options, or az://... and the account's
        self.local = self.uri  # the table's path or URI as deltalake opens it
        self.properties = dict(properties or {})
        self._schema = arrow_schema()
        self._appends = 0

    def exists(self) -> bool:
        return delta_table_exists(self.path)

    def _by_delta_rs(self) -> bool:
        return spark_took_over(self.path) is None

    def _hand_over(self, operation: str, exc: Exception) -> None:
        """Spark keeps the table for the rest of the process from now on; said once per table."""
        reason = f"{operation} failed ({failure_text(exc)})"
        with _TAKEN_OVER_LOCK:
            first = self.path not in _TAKEN_OVER
            _TAKEN_OVER.setdefault(self.path, reason)
        log.log(logging.WARNING if first else logging.DEBUG,
                "status: the delta-rs %s; Spark's Delta writer keeps the status table for the rest of this process", reason)

    def ensure(self) -> None:
        if self._by_delta_rs():
            try:
                self._ensure_by_delta_rs()
                return
            except Exception as exc:  # noqa: BLE001 - an accelerator, never a new way to fail: Spark creates it
                self._hand_over("creation of the table", exc)
        super().ensure()

    def _ensure_by_delta_rs(self) -> None:
        from deltalake import DeltaTable

        with self._create_lock:
            if self.exists():
                return
            try:
                DeltaTable.create(self.uri, self._schema, mode="ignore", configuration=self.properties or None, storage_options=self.options)
            except Exception:
                if not self.exists():  # not another writer creating it at the same moment
                    raise

    def append(self, *events: StatusEvent) -> None:
        if self._by_delta_rs():
            try:
                self._append_by_delta_rs(events)
            except Exception as exc:  # noqa: BLE001 - an accelerator, never a new way to fail: Spark appends them (retried)
                self._hand_over("append", exc)
            else:
                self._appends += 1
                if self._appends % COMPACT_EVERY_APPENDS == 0:
                    self.compact()
                return
        super().append(*events)

    def _append_by_delta_rs(self, events: tuple[StatusEvent, ...]) -> None:
        import pyarrow as pa
        from deltalake import write_deltalake

        data = pa.Table.from_pylist([dict(zip(self._schema.names, e.as_row(), strict=True)) for e in events], schema=self._schema)
        write_deltalake(self.uri, data, mode="append", schema_mode="merge", configuration=self.properties or None, storage_options=self.options)

    def compact(self) -> None:
        """Rewrite the table's small files into few (``OPTIMIZE``; rows and history unchanged). Safe
        beside other writers' appends; a failure (e.g. a concurrent delete) only waits for the next turn."""

        started = time.monotonic()
        try:
            metrics = self._table().optimize.compact()
        except Exception as exc:  # noqa: BLE001 - housekeeping: the table stays correct, only slower to read
            log.warning("status: compaction skipped (%s)", failure_text(exc))
            return
        log.info("status: compacted %d files into %d in %.1fs", metrics.get("numFilesRemoved", 0), metrics.get("numFilesAdded", 0),
                 time.monotonic() - started)

    def _table(self) -> Any:
        from deltalake import DeltaTable

        return DeltaTable(self.uri, storage_options=self.options)

    def latest(self, source: str | None = None, phase: str | None = None) -> dict[tuple[str, str, str], StatusEvent]:
        if self._by_delta_rs():
            try:
                return self._latest_by_delta_rs(source, phase)
            except Exception as exc:  # noqa: BLE001 - an accelerator, never a new way to fail: Spark reads it
                self._hand_over("read", exc)
        return super().latest(source, phase)

    def _latest_by_delta_rs(self, source: str | None, phase: str | None = None) -> dict[tuple[str, str, str], StatusEvent]:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.fs as pafs

        if not self.exists():
            return {}
        # Files read through pyarrow's own local filesystem: with delta-rs' default one, the process
        # aborts at exit ("terminate called without an active exception", exit code 134) once a dataset
        # was scanned (deltalake 1.6.6, every run here).
        # On a remote lake delta-rs' own object store reads them.
        files = pafs.SubTreeFileSystem(os.path.abspath(self.uri), pafs.LocalFileSystem()) if self.options is None else None
        # Columns an older table lacks read as nulls (``schema``). Filters on strings run after the
        # read: files rewritten by delta-rs (its delete) store strings as string_view, which pyarrow's
        # scanner cannot compare; the seq filter (integers) is pushed down.
        dataset = self._table().to_pyarrow_dataset(filesystem=files, schema=self._schema)

        def of_source(t: Any) -> Any:
            if source is not None:
                t = t.filter(pc.equal(t.column("source").cast("string"), source))
            return t if phase is None else t.filter(pc.equal(t.column("phase").cast("string"), phase))

        keys = of_source(dataset.to_table(columns=[*_KEY, "phase", "seq"])).select([*_KEY, "seq"])
        if keys.num_rows == 0:
            return {}
        keys = keys.cast(pa.schema([pa.field(k, pa.string()) for k in _KEY] + [pa.field("seq", pa.int64())]))
        newest = keys.group_by(_KEY).aggregate([("seq", "max")]).column("seq_max")
        # Only the rows holding a newest seq (nanosecond clock values: one per table, but for ties); then the newest per table.
        rows = of_source(dataset.to_table(filter=pc.field("seq").isin(newest)))
        return latest(StatusEvent.from_row(r) for r in rows.to_pylist())

    def delete_source(self, source: str) -> None:
        if self._by_delta_rs():
            try:
                self._delete_by_delta_rs(source)
                return
            except Exception as exc:  # noqa: BLE001 - an accelerator, never a new way to fail: Spark deletes them
                self._hand_over("delete", exc)
        super().delete_source(source)

    def _delete_by_delta_rs(self, source: str) -> None:

        if self.exists():
            self._table().delete(f'"source" = {sql_string(source)}')
            log.info("status: removed every event of source %s", source)

