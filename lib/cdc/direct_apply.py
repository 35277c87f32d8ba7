"""Apply one table's range without Spark: the Kafka client reads it, Python decodes it, delta-rs
MERGEs it (thin layer; the pass itself is lib.cdc.direct_events).

The Spark path of an apply runs three Spark jobs around its MERGE (read and summarize the range into
Spark's cache, the decode statistics, the last-event window collected as Arrow): on a backlog that is
most of the apply's cost, and twice the read+parse a plain Spark job needs (docs/benchmarks.md,
issue 11). For the common range (compact PostgreSQL events of a table delta-rs MERGEs, every value
decodable, no truncate, TOAST placeholder, new column or tombstone check) one Python pass computes the
same MERGE source and counts, and delta-rs runs the same MERGE clauses (lib.cdc.plan.merge_clauses).
Any other range raises :class:`NotDirect` before anything is written and is applied by Spark.
``stream.event_reader: spark`` turns this path off.
"""

from __future__ import annotations

import logging
import threading
import time

from lib.cdc.delta_rs_merge import merge_arrow
from lib.cdc.direct_decode import NotDirect
from lib.cdc.direct_events import arrow_rows, plan, summarize, tombstone_rows
from lib.cdc.kafka_range import KafkaRangeReader
from lib.cdc.offsets import Range
from lib.cdc.plan import TableSpec, after_deletes, merge_clauses, needs_tombstone_check
from lib.cdc.source_catalog import SourceCatalog
from lib.cdc.table_apply import TableOutcome

log = logging.getLogger(__name__)


class DirectApplier:
    """The direct path of every apply of one stream (one Kafka reader; what it left to Spark, logged once per table and reason)."""

    def __init__(self, reader: KafkaRangeReader, catalog: SourceCatalog) -> None:
        self.reader = reader
        self.catalog = catalog
        self._said: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def apply(self, spec: TableSpec, rng: Range) -> TableOutcome | None:
        """The range applied directly, or None when Spark must apply it (nothing was written then)."""
        try:
            return self._apply(spec, rng)
        except NotDirect as exc:
            with self._lock:
                first = (spec.name, str(exc)) not in self._said
                self._said.add((spec.name, str(exc)))
            log.log(logging.INFO if first else logging.DEBUG, "%s: applied by Spark, not directly: %s", spec.name, exc)
            return None

    def _apply(self, spec: TableSpec, rng: Range) -> TableOutcome:
        started = time.monotonic()
        p = plan(spec, self.catalog.fields(spec.schema, spec.table))
        messages = self.reader.read(rng)
        read = time.monotonic()
        batch = summarize(p, messages)
        del messages
        out = TableOutcome(spec, events=batch.events, applied=batch.applied, last_position=batch.last_position, last_ts_ms=batch.last_ts_ms,
                           ts_p05_ms=batch.ts_p05_ms, ts_p50_ms=batch.ts_p50_ms)
        out.skipped = batch.events - batch.applied
        if not batch.applied:
            return out
        if needs_tombstone_check(spec, batch.first):
            raise NotDirect("events at or before the table's latest tombstone (checked by Spark)")
        deleted = tombstone_rows(p, batch)
        data = arrow_rows(p, batch)
        decoded = time.monotonic()
        metrics = merge_arrow(spec.location, data, merge_clauses(spec, (), now="now()"))
        out.visible_at = time.time()
        out.inserted, out.updated, out.deleted = metrics["num_inserted_rows"], metrics["num_updated_rows"], metrics["num_deleted_rows"]
        out.tombstone_rows = deleted
        if deleted:
            out.spec = after_deletes(spec, batch.last_delete)
        log.debug("%s: %d events read in %.2fs, decoded to %d rows in %.2fs, MERGEd by delta-rs in %.2fs (direct)", spec.name, batch.events,
                  read - started, data.num_rows, decoded - read, time.monotonic() - decoded)
        return out
