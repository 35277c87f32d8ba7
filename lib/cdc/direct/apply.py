"""Apply one table's range without Spark: the Kafka client reads it, Python decodes it, delta-rs
MERGEs it (thin layer; the pass itself is lib.cdc.direct.events).

The Spark path of an apply runs three Spark jobs around its MERGE (read and summarize the range into
Spark's cache, the decode statistics, the last-event window collected as Arrow): on a backlog that is
most of the apply's cost, and twice the read+parse a plain Spark job needs (docs/benchmarks.md).
For the common range (compact PostgreSQL events of a table delta-rs MERGEs, every value decodable, no
tombstone check) one Python pass computes the same MERGE source and counts, and delta-rs runs the same
MERGE clauses (lib.cdc.plan.merge_clauses). A truncate in the range and source columns the lake table
lacks are applied as the Spark path applies them (lib.cdc.table_changes, lib.cdc.direct.lake_changes):
the columns added first, the truncate and the MERGE in one commit, then the truncate's position.
History tables (``history: scd2``: every event a version) and soft-delete tables are applied here too
(lib.cdc.direct.history: the same versions and MERGE clauses as the Spark path's, one commit), but
for a range holding a truncate.
Any other range raises :class:`NotDirect` before anything is written and is applied by Spark; so is a
range on which the direct path meets any error at all (a malformed message, a delta-rs failure, a worker
that died): the direct path is an accelerator, never a new way for a table to fail.
``stream.event_reader: spark`` turns this path off.

Tables Spark must MERGE (lib.cdc.route: ``direct+spark``) take the same pass without the MERGE
(:func:`decode_directly`): the worker hands back the MERGE's source rows as Arrow and the stream's
process has Spark MERGE them (lib.cdc.spark.arrow_merge), one Spark job per apply. A truncate, new
columns or a range needing the tombstone check are Spark's there (NotDirect, nothing written).

The pass is Python, so the applies of several tables in one process would share one core (the GIL).
They run in a pool of worker processes instead, one per CPU at most (``processes``): each reads its
range with its own Kafka consumer, decodes and MERGEs, and hands back only the outcome (counts,
positions, the deleted keys). The workers are spawned (never forked from the process holding the
JVM) and hold no state but their Kafka consumer.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from lib.cdc.delta_rs_merge import merge_arrow
from lib.cdc.direct import history, lake_changes
from lib.cdc.direct.decode import NotDirect
from lib.cdc.direct.events import DirectBatch, DirectPlan, UnknownColumns, arrow_rows, plan, summarize, toasted_names, tombstone_rows
from lib.cdc.direct.kafka_range import KafkaRangeReader
from lib.cdc.offsets import Range
from lib.cdc.outcome import TableOutcome
from lib.cdc.plan import TableSpec, after_deletes, merge_clauses, needs_tombstone_check
from lib.cdc.source_catalog import SourceCatalog
from lib.cdc.table_changes import new_columns, with_columns
from lib.config.model import StorageAccount
from lib.fallback import failure_text
from lib.lake.delta_rs_storage import register_accounts, registered_accounts

log = logging.getLogger(__name__)

_readers: dict[tuple[tuple[str, str], ...], KafkaRangeReader] = {}  # this process's Kafka consumer per client settings (a worker has one)
_readers_lock = threading.Lock()


def apply_directly(spec: TableSpec, fields: Mapping[str, Mapping[str, Any]], rng: Range, kafka: Mapping[str, Any],
                   added: Sequence[tuple[str, str]] = ()) -> tuple[TableOutcome, tuple[float, float, float, int]]:
    """Read, decode and MERGE ``rng`` of the table (in a worker process, or in the caller's thread);
    ``added``: (name, lake type) of the source columns the lake table lacks (lib.cdc.table_changes.new_columns).
    Returns the outcome and (read, decode, MERGE seconds, MERGE source rows); NotDirect when Spark must."""
    started = time.monotonic()
    evolved = with_columns(spec, added)
    p, batch, read = _read(evolved, fields, rng, kafka, every_event=spec.history.scd2)  # scd2: every event is (part of) a version
    out = _outcome(spec, batch, "direct")
    if not batch.events:  # Kafka tombstones only: nothing to apply, as on the Spark path (no column added either)
        return out, (read - started, time.monotonic() - read, 0.0, 0)
    out.spec, out.added_columns = evolved, tuple(name for name, _ in added)
    if batch.truncate is not None:
        out.spec = dataclasses.replace(evolved, truncated_at=batch.truncate)
    if not (batch.applied or batch.truncate or added):
        return out, (read - started, time.monotonic() - read, 0.0, 0)
    if batch.applied and needs_tombstone_check(out.spec, batch.first):
        raise NotDirect("events at or before the table's latest tombstone (checked by Spark)")
    if not spec.history.plain:
        history.check(spec, batch)
        return _apply_history(spec, p, batch, out, added, started, read)
    deleted = tombstone_rows(p, batch) if batch.deletes else ()
    data = arrow_rows(p, batch) if batch.applied else None
    fields_to_add = lake_changes.columns_to_add(spec.location, added) if added else []  # NotDirect before any commit
    decoded = time.monotonic()
    # the commits, each atomic, in the Spark path's order: the new columns, then the truncate with the MERGE
    # (one commit), then the truncate's position; a replay of the range repeats none of their changes
    lake_changes.add_columns(spec.location, fields_to_add)
    metrics = {"num_inserted_rows": 0, "num_updated_rows": 0, "num_deleted_rows": 0}
    if batch.truncate is not None:
        if data is None:
            metrics["num_deleted_rows"] = lake_changes.delete_before_truncate(spec.location, batch.truncate)
        else:
            metrics = lake_changes.merge_after_truncate(evolved, data, toasted_names(p, batch), batch.truncate)
        lake_changes.record_truncate(spec.location, batch.truncate)
    elif data is not None:
        metrics = merge_arrow(spec.location, data, merge_clauses(evolved, toasted_names(p, batch), now="now()"))
    out.visible_at = time.time()
    out.inserted, out.updated, out.deleted = metrics["num_inserted_rows"], metrics["num_updated_rows"], metrics["num_deleted_rows"]
    out.tombstone_rows = deleted
    if deleted:
        out.spec = after_deletes(out.spec, batch.last_delete)
    return out, (read - started, decoded - read, time.monotonic() - decoded, data.num_rows if data is not None else 0)


@dataclass
class Decoded:
    """A range the Python pass decoded for Spark's MERGE (:func:`decode_directly`): the outcome (but the
    MERGE's counts and ``visible_at``), the MERGE's source rows as Arrow (None: nothing to MERGE) and
    the columns some row keeps the stored value of (its ``toastable``)."""

    outcome: TableOutcome
    rows: Any
    toastable: tuple[str, ...]
    read_seconds: float
    decode_seconds: float


def decode_directly(spec: TableSpec, fields: Mapping[str, Mapping[str, Any]], rng: Range, kafka: Mapping[str, Any]) -> Decoded:
    """Read and decode ``rng`` of a plain mirror Spark MERGEs, as :func:`apply_directly` does, and write
    nothing: the MERGE's source rows go back to the stream's process. NotDirect (Spark's to apply) for a
    range holding a truncate or needing the tombstone check."""
    started = time.monotonic()
    if not spec.history.plain:
        raise NotDirect("history or soft deletes on a table Spark MERGEs")
    p, batch, read = _read(spec, fields, rng, kafka)
    out = _outcome(spec, batch, "direct+spark")
    if batch.truncate is not None:
        raise NotDirect("a truncate on a table Spark MERGEs (Spark applies it)")
    if batch.applied and needs_tombstone_check(spec, batch.first):
        raise NotDirect("events at or before the table's latest tombstone (checked by Spark)")
    rows = arrow_rows(p, batch) if batch.applied else None
    out.tombstone_rows = tombstone_rows(p, batch) if batch.deletes else ()
    if out.tombstone_rows:
        out.spec = after_deletes(spec, batch.last_delete)
    return Decoded(out, rows, toasted_names(p, batch) if rows is not None else (), read - started, time.monotonic() - read)


def _read(spec: TableSpec, fields: Mapping[str, Mapping[str, Any]], rng: Range, kafka: Mapping[str, Any], every_event: bool = False
          ) -> tuple[DirectPlan, DirectBatch, float]:
    """The range read with this process's Kafka consumer and summarized by the Python pass; when the read ended."""
    p = plan(spec, fields)
    with _readers_lock:
        reader = _readers.get(_reader_key(kafka)) or _readers.setdefault(_reader_key(kafka), KafkaRangeReader(kafka))
    messages = reader.read(rng)
    read = time.monotonic()
    batch = summarize(p, messages, every_event=every_event)
    return p, batch, read


def _outcome(spec: TableSpec, batch: DirectBatch, path: str) -> TableOutcome:
    """The outcome's counts and positions the pass computed (the MERGE's counts come later)."""
    out = TableOutcome(spec, path=path, events=batch.events, applied=batch.applied, truncates=batch.truncates, last_position=batch.last_position,
                       last_ts_ms=batch.last_ts_ms, ts_p05_ms=batch.ts_p05_ms, ts_p50_ms=batch.ts_p50_ms)
    out.skipped = batch.events - batch.applied - batch.truncates
    return out


def _apply_history(spec: TableSpec, p: DirectPlan, batch: DirectBatch, out: TableOutcome, added: Sequence[tuple[str, str]], started: float,
                   read: float) -> tuple[TableOutcome, tuple[float, float, float, int]]:
    """A history or soft-delete range (no truncate: lib.cdc.direct.history.check): the columns added,
    then one MERGE of the versions (scd2) or of the last events per key (soft deletes)."""
    data = arrow_rows(p, batch) if spec.history.soft_deletes and batch.applied else None
    fields_to_add = lake_changes.columns_to_add(spec.location, added) if added else []  # NotDirect before any commit
    decoded = time.monotonic()
    lake_changes.add_columns(spec.location, fields_to_add)
    deleted: tuple[tuple[Any, ...], ...] = ()
    rows = 0
    if spec.history.scd2:
        metrics, deleted, rows = history.apply_scd2(p, batch) if batch.applied else ({}, (), 0)
    elif data is not None:
        metrics, deleted, rows = history.apply_soft(p.spec, data, toasted_names(p, batch)), tombstone_rows(p, batch) if batch.deletes else (), data.num_rows
    else:
        metrics = {}
    out.visible_at = time.time()
    out.inserted, out.updated, out.deleted = (int(metrics.get(k) or 0) for k in ("num_inserted_rows", "num_updated_rows", "num_deleted_rows"))
    out.tombstone_rows = deleted
    if deleted:
        out.spec = after_deletes(out.spec, batch.last_delete)
    return out, (read - started, decoded - read, time.monotonic() - decoded, rows)


def _init_worker(accounts: tuple[StorageAccount, ...]) -> None:
    """A worker process's initializer: the job's ``storage:`` accounts, so delta-rs reaches a lake on Azure
    storage from the worker as from the job's process (lib.lake.delta_rs_storage)."""
    register_accounts(accounts)


def _warm_up() -> None:
    """A worker's first task: the imports of a pass (Arrow, delta-rs, the Kafka client)."""
    import confluent_kafka  # noqa: F401
    import deltalake  # noqa: F401
    import pyarrow  # noqa: F401


class DirectApplier:
    """The direct path of every apply of one stream: the worker processes (``processes`` 0: the
    caller's thread), and what it left to Spark, logged once per table and reason."""

    def __init__(self, kafka: Mapping[str, Any], catalog: SourceCatalog, processes: int) -> None:
        self.kafka = dict(kafka)  # the Kafka client settings (lib/kafka/settings.py)
        self.catalog = catalog
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._said: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def apply(self, spec: TableSpec, rng: Range) -> TableOutcome | None:
        """The range applied directly, or None when Spark must apply it (nothing was written then)."""
        result = self.attempt(spec, rng)
        return result if isinstance(result, TableOutcome) else None

    def attempt(self, spec: TableSpec, rng: Range, spark_merge: bool = False) -> TableOutcome | Decoded | str:
        """The range applied directly; with ``spark_merge`` (lib.cdc.route's ``direct+spark``) decoded only,
        for Spark to MERGE; else why Spark must apply it (nothing was written then)."""
        try:
            if spark_merge:
                return self._attempt(spec, rng, spark_merge=True)  # type: ignore[return-value]
            out, (read, decode, merge, rows) = self._attempt(spec, rng)  # type: ignore[misc]
        except NotDirect as exc:
            self._hand_over(spec, str(exc), logging.INFO)
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - an accelerator, never a new way to fail: Spark applies the range
            # Nothing was committed: delta-rs commits the MERGE atomically as the pass's last step (a
            # failure after its commit would only make Spark re-apply the same range, which changes nothing;
            # so would one after a range's added columns or truncate: Spark adds, deletes and records nothing twice).
            reason = f"the direct path failed ({failure_text(exc)})"
            self._hand_over(spec, reason, logging.WARNING)
            return reason
        log.debug("%s: %d events read in %.2fs, decoded to %d rows in %.2fs, MERGEd by delta-rs in %.2fs (direct)", spec.name, out.events,
                  read, rows, decode, merge)
        if out.added_columns:
            log.info("%s: new source column(s) added to the lake table: %s; by direct", spec.name,
                     ", ".join(f"{n} {t}" for n, t in out.spec.columns if n in out.added_columns))
        if out.truncates and out.spec.truncated_at is not None:
            log.info("%s: truncate at position %d/%d applied; by direct", spec.name, *out.spec.truncated_at)
        return out

    def _attempt(self, spec: TableSpec, rng: Range, spark_merge: bool = False) -> tuple[TableOutcome, tuple[float, float, float, int]] | Decoded:
        """The direct apply with the source catalog's columns (those the lake table lacks are added); when
        an event names a column the catalog read did not know (added since), once more after reading the
        catalog again, as the Spark path reads it again for such an event."""
        fields = self.catalog.fields(spec.schema, spec.table)
        while True:
            known = set(fields)
            added = new_columns(spec, fields, self.catalog.lake_types(spec.schema, spec.table)) if known - {n for n, _ in spec.columns} else ()
            plan(with_columns(spec, added), fields)  # a table the direct path cannot take is known before reading anything
            if spark_merge and added:
                raise NotDirect("new source columns on a table Spark MERGEs (Spark adds them)")
            try:
                return self._run(spec, fields, rng, added, spark_merge)
            except UnknownColumns as exc:
                fields = self.catalog.fields(spec.schema, spec.table, dict.fromkeys(exc.columns))
                if not set(exc.columns) <= set(fields) - known:  # the catalog does not have them either: Spark's to apply
                    raise

    def _hand_over(self, spec: TableSpec, reason: str, level: int) -> None:
        """Log once per table and reason (DEBUG after that) that Spark applies the range."""
        with self._lock:
            first = (spec.name, reason) not in self._said
            self._said.add((spec.name, reason))
        log.log(level if first else logging.DEBUG, "%s: applied by Spark, not directly: %s", spec.name, reason)

    def start(self) -> None:
        """Start the worker processes now, each importing what a pass needs, so the first applies do not
        wait for a process spawn and its imports (a second or two each); nothing waits for them here."""
        if self.processes <= 0:
            return
        pool = self._worker_pool()
        for _ in range(self.processes):
            pool.submit(_warm_up)

    def _worker_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self.processes, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_init_worker, initargs=(registered_accounts(),))
            return self._pool

    def _run(self, spec: TableSpec, fields: Mapping[str, Mapping[str, Any]], rng: Range, added: Sequence[tuple[str, str]], spark_merge: bool = False
             ) -> tuple[TableOutcome, tuple[float, float, float, int]] | Decoded:
        if self.processes <= 0:
            return decode_directly(spec, fields, rng, self.kafka) if spark_merge else apply_directly(spec, fields, rng, self.kafka, added)
        pool = self._worker_pool()
        try:
            if spark_merge:
                return pool.submit(decode_directly, spec, fields, rng, self.kafka).result()
            return pool.submit(apply_directly, spec, fields, rng, self.kafka, added).result()
        except BrokenProcessPool:
            with self._lock:  # a worker died (killed, out of memory): the next apply gets a new pool; Spark applies this one
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        with _readers_lock:
            reader = _readers.pop(_reader_key(self.kafka), None)
        if reader is not None:
            reader.close()


def _reader_key(kafka: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((key, str(value)) for key, value in kafka.items()))
