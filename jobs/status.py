"""Print the status table: one line per table, or one JSON object per line with --json.

    python jobs/status.py --config config/pipeline.yaml [--source shop] [--json] [--check]

``behind`` is how far each lake table is behind its source in time (from the connector's heartbeats,
lib/cdc/health/freshness.py); a table more than ``stream.stall_seconds`` behind is flagged STALLED. With
--check the exit code is 1 when a table is stalled or failed (for monitoring), else 0. Tables that keep
history or soft deletes (cdc.history, cdc.deletes) also get their versions counted from the lake table:
all versions, current versions, and how many of those are deletes.
"""

from __future__ import annotations

import functools
import json
import sys
from datetime import UTC, datetime
from typing import Any

try:
    import _cli
except ModuleNotFoundError:  # this file alone, the project from the wheel (spark-submit --py-files, docs/deploy.md)
    from jobs import _cli

from lib.cdc.health.freshness import behind_seconds, heartbeat_seen, stalled, streamed
from lib.cdc.history import version_counts_sql
from lib.config import Config
from lib.dialects import get_dialect
from lib.errors import ConfigError
from lib.lake.paths import normalize_root
from lib.selection import matches, parse_globs
from lib.status.display import PositionText, cdc_position_text
from lib.status.factory import open_status_store
from lib.status.record import StatusEvent

COLUMNS = (
    "source", "schema", "table", "phase", "state", "row_count", "chunks", "snapshot_position", "cdc_position",
    "cdc_event_time", "cdc_counts", "lag", "latency_ms", "behind", "attempts", "updated_at", "error_or_note",
)


def _time(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else ""


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _behind(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def problems(events: list[StatusEvent], now: datetime, stall_seconds: float) -> dict[str, list[str]]:
    """{"failed": [...], "stalled": [...]} table names (pure): what --check fails on."""
    return {"failed": [f"{e.source}.{e.schema}.{e.table}" for e in events if e.state == "failed"],
            "stalled": [f"{e.source}.{e.schema}.{e.table}" for e in events if stalled(e, now, stall_seconds)]}


def render_table(events: list[StatusEvent], notations: dict[str, PositionText] | None = None, now: datetime | None = None,
                 stall_seconds: float = 90.0, change_notations: dict[str, PositionText] | None = None) -> list[str]:
    """Aligned text lines (pure), header first. ``cdc_counts`` is inserted/updated/deleted; CDC
    positions in the notation of the source's dialect (``notations``: source name -> formatter;
    ``change_notations``: of the change position, when it differs); ``behind``: how far the table is behind its source, STALLED beyond ``stall_seconds``."""
    rows = [COLUMNS]
    now = now or datetime.now(UTC)
    for e in events:
        behind = _behind(behind_seconds(e, now)) if streamed(e) and e.state != "dropped" else ""  # dropped at the source: nothing to be behind
        if e.phase == "cdc" and streamed(e) and not heartbeat_seen(e) and e.state != "dropped":
            behind = f"{behind} (no heartbeat seen yet)".strip()
        if stalled(e, now, stall_seconds):
            behind = f"STALLED {behind}"
        cdc_position = cdc_position_text(e.cdc_position, (notations or {}).get(e.source), (change_notations or {}).get(e.source))
        chunks = f"{e.chunks_done}/{e.chunks_total}" if e.chunks_total else ""
        counts = (e.cdc_inserted, e.cdc_updated, e.cdc_deleted)
        cdc_counts = "/".join(str(n or 0) for n in counts) if any(n is not None for n in counts) else ""
        rows.append(
            (e.source, e.schema, e.table, e.phase, e.state, _text(e.row_count), chunks, e.snapshot_position or "", cdc_position,
             _time(e.cdc_event_time), cdc_counts, _text(e.cdc_lag), _text(e.cdc_latency_ms), behind, str(e.attempts), _time(e.updated_at),
             (e.last_error or e.note or "")[:120])
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def position_notations(config: Config) -> dict[str, PositionText]:
    """Per configured source: its dialect's position notation (sources of unknown dialects: none)."""
    out: dict[str, PositionText] = {}
    for name, source in config.sources:
        try:
            out[name] = get_dialect(source.type, f"sources.{name}.type").position_text
        except (ConfigError, AttributeError):
            continue
    return out


def change_notations(config: Config) -> dict[str, PositionText]:
    """Per configured source: how its stream's change position reads (``dialect.cdc_events.change_text``)."""
    out: dict[str, PositionText] = {}
    for name, source in config.sources:
        try:
            dialect = get_dialect(source.type, f"sources.{name}.type")
            out[name] = functools.partial(dialect.cdc_events.change_text, position_text=dialect.position_text)
        except (ConfigError, AttributeError):
            continue
    return out


def version_counts(spark: Any, config: Config, events: list[StatusEvent]) -> dict[tuple[str, str, str], dict[str, int]]:
    """Versions, current versions and deleted current versions of each table whose source keeps
    history or soft deletes (cdc.history, cdc.deletes): read from the lake table."""
    out: dict[tuple[str, str, str], dict[str, int]] = {}
    for e in events:
        try:
            if config.source(e.source).history_for(e.schema, e.table).plain:
                continue
            sql = version_counts_sql(e.location, spark.read.format("delta").load(e.location).columns)
            if sql:
                out[e.key] = spark.sql(sql).collect()[0].asDict()
        except Exception as exc:  # noqa: BLE001 - the status table is shown whatever a lake table says
            print(f"{e.schema}.{e.table}: versions not counted: {type(exc).__name__}", file=sys.stderr)
    return out


def main() -> int:
    p = _cli.parser("Show the pipeline status table.", source_required=False)
    p.add_argument("--json", action="store_true", help="one JSON object per table and line")
    p.add_argument("--check", action="store_true", help="exit 1 when a table is failed or stalled (more than stream.stall_seconds behind its source)")
    args = p.parse_args()
    config = _cli.load(args)
    spark = _cli.spark(config, "status")
    latest = open_status_store(spark, normalize_root(config.lake.root), config.lake.pipeline_writer).latest(args.source)
    globs = parse_globs(args.tables)
    events = sorted((e for e in latest.values() if not globs or matches(e.schema, e.table, globs)), key=lambda e: e.key)
    notations, changes = position_notations(config), change_notations(config)
    now, stall = datetime.now(UTC), config.stream.stall_seconds
    versions = version_counts(spark, config, events)
    if args.json:
        for e in events:
            summary = e.summary()
            summary["cdc_position_text"] = cdc_position_text(e.cdc_position, notations.get(e.source), changes.get(e.source)) or None
            summary["behind_seconds"] = behind_seconds(e, now) if streamed(e) else None
            summary["stalled"] = stalled(e, now, stall)
            summary["heartbeat_seen"] = heartbeat_seen(e)
            summary["versions"] = versions.get(e.key)
            print(json.dumps(summary, sort_keys=True))
    else:
        for line in render_table(events, notations, now, stall, changes) if events else ["(no tables in the status table yet)"]:
            print(line)
        for key, counts in sorted(versions.items()):
            print(f"{key[1]}.{key[2]}: {counts['versions']} versions, {counts['current']} current, {counts['deleted']} of them deleted")
    if not args.check:
        return 0
    found = problems(events, now, stall)
    if not any(found.values()):
        print(f"check: OK ({len(events)} table(s), none failed, none more than {stall:g}s behind its source)")
        return 0
    print(f"check: FAILED: {len(found['stalled'])} table(s) stalled (more than {stall:g}s behind their source: "
          f"{', '.join(found['stalled']) or '-'}), {len(found['failed'])} failed ({', '.join(found['failed']) or '-'})")
    return 1


if __name__ == "__main__":
    _cli.run(main)
