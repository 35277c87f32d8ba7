"""Status events (pure): what the status table holds per table, and how the latest one is chosen.

The table is an append-only log: every state change of a table appends one event. Writers never read
before writing, so concurrent writers (parallel table loads, the bulk job and the CDC job) only make
blind appends, which Delta commits without conflicts. Readers take the newest event per table.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Phase = Literal["bulk", "cdc"]
State = Literal["pending", "running", "completed", "failed", "dropped"]  # dropped: at the source; the lake table stays

# Column order = StatusEvent's field order (tests/unit/test_status_record.py checks it).
SCHEMA_DDL = (
    "source STRING, schema STRING, table STRING, phase STRING, state STRING, location STRING, row_count BIGINT, "
    "primary_key ARRAY<STRING>, snapshot_position STRING, snapshot_method STRING, cdc_position STRING, "
    "attempts INT, last_error STRING, started_at TIMESTAMP, updated_at TIMESTAMP, "
    "load_id STRING, chunks_total INT, chunks_done INT, plan STRING, note STRING, seq BIGINT, "
    # added later: a status table written before gains them on its next append (mergeSchema)
    "snapshot_txids STRING, cdc_event_time TIMESTAMP, cdc_inserted BIGINT, cdc_updated BIGINT, cdc_deleted BIGINT, "
    "cdc_lag BIGINT, cdc_latency_ms BIGINT, cdc_offsets STRING, source_current_at TIMESTAMP"
)
TIMESTAMPS = ("started_at", "updated_at", "cdc_event_time", "source_current_at")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StatusEvent:
    source: str
    schema: str
    table: str
    phase: Phase
    state: State
    location: str
    row_count: int | None = None
    primary_key: tuple[str, ...] = ()
    snapshot_position: str | None = None
    snapshot_method: str | None = None
    cdc_position: str | None = None
    attempts: int = 0
    last_error: str | None = None
    started_at: datetime | None = None
    updated_at: datetime = field(default_factory=_now)
    load_id: str | None = None
    chunks_total: int | None = None
    chunks_done: int | None = None
    plan: str | None = None  # JSON: the chunk predicates and lake schema, so a resume reuses them
    note: str | None = None  # e.g. why CDC is not enabled for the table
    seq: int = field(default_factory=time.time_ns)
    # The bulk snapshot's visible transactions (PostgreSQL pg_current_snapshot() text): the stream skips
    # events of exactly these transactions (lib.cdc.visibility). None: unknown, the stream compares LSNs.
    snapshot_txids: str | None = None
    # Filled by the CDC stream (phase "cdc"):
    cdc_event_time: datetime | None = None  # source commit time of the last applied event
    cdc_inserted: int | None = None  # cumulative counts of applied events
    cdc_updated: int | None = None
    cdc_deleted: int | None = None
    cdc_lag: int | None = None  # events behind the Kafka end offsets, over the table's topic partitions
    cdc_latency_ms: int | None = None  # end-to-end latency of the last batch (p50)
    cdc_offsets: str | None = None  # JSON {partition: next offset} of the table's topic: where the stream resumes
    # The lake table holds every source change the connector had read by this time (its heartbeat's, lib/cdc/health/freshness.py)
    source_current_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.source, self.schema, self.table)

    def next(self, **changes: Any) -> StatusEvent:
        """The following event for the same table: ``changes`` applied, new timestamp and sequence."""
        changes.setdefault("updated_at", _now())
        changes.setdefault("seq", max(time.time_ns(), self.seq + 1))
        return dataclasses.replace(self, **changes)

    def as_row(self) -> tuple[Any, ...]:
        values = dataclasses.asdict(self)
        values["primary_key"] = list(self.primary_key)
        return tuple(values[f.name] for f in dataclasses.fields(self))

    def summary(self) -> dict[str, Any]:
        """JSON-friendly view for ``jobs/status.py --json`` (no plan blob)."""
        out = dataclasses.asdict(self)
        out.pop("plan")
        out["primary_key"] = list(self.primary_key)
        for key in TIMESTAMPS:
            out[key] = out[key].isoformat() if out[key] else None
        return out

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StatusEvent:
        """From a status table row; columns a row does not have (older tables) take their defaults."""
        values = {f.name: row[f.name] for f in dataclasses.fields(cls) if f.name in row}
        values["primary_key"] = tuple(values.get("primary_key") or ())
        for key in TIMESTAMPS:
            if values.get(key) is not None and values[key].tzinfo is None:
                values[key] = values[key].replace(tzinfo=UTC)
        return cls(**values)

    def plan_data(self) -> dict[str, Any]:
        return json.loads(self.plan) if self.plan else {}


def latest(events: Iterable[StatusEvent]) -> dict[tuple[str, str, str], StatusEvent]:
    """The newest event per (source, schema, table), by sequence number."""
    out: dict[tuple[str, str, str], StatusEvent] = {}
    for event in events:
        current = out.get(event.key)
        if current is None or event.seq > current.seq:
            out[event.key] = event
    return out
