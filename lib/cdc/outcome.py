"""What one table apply did (the Spark path's and the direct path's common result): counts,
positions, the deleted keys and the rows to dead-letter, for the apply loop's status and log line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lib.cdc.plan import TableSpec


@dataclass
class TableOutcome:
    spec: TableSpec
    path: str = "spark"  # who applied the range: "direct" (lib.cdc.direct), "direct+spark" (decoded directly, MERGEd by Spark) or "spark"
    why: str = ""  # why that path (lib.cdc.route; the reason the first path declined the range), for the apply's log line
    events: int = 0
    applied: int = 0  # events that passed the snapshot and truncate filters (before keeping the last per key;
    #                   a late event dropped at its key's tombstone counts here too)
    skipped: int = 0  # already in the bulk copy, or before a truncate
    dead: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    truncates: int = 0
    last_position: tuple[int, int] | None = None
    last_ts_ms: int | None = None
    ts_p50_ms: int | None = None  # median source commit time of the applied events
    ts_p05_ms: int | None = None
    visible_at: float | None = None  # when the MERGE committed (epoch seconds): the events are visible in the lake
    added_columns: tuple[str, ...] = ()
    tombstone_rows: tuple[Any, ...] = ()  # (schema, table, key, commit, change) of deleted keys, written by the caller
    error: str | None = None  # why the table failed in this batch (its events are all dead letters)
    dead_rows: Any = None  # a Spark DataFrame  # (__topic, __partition, __offset, __key, __raw, __reason), written by the caller
    cached: tuple[Any, ...] = ()  # Spark DataFrames to unpersist after the apply
