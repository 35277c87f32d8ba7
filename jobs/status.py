"""Print the status table: one line per table, or one JSON object per line with --json.

    python jobs/status.py --config config/pipeline.yaml [--source shop] [--json]
"""

from __future__ import annotations

import json
from datetime import datetime

try:
    import _cli
except ModuleNotFoundError:  # this file alone, the project from the wheel (spark-submit --py-files, docs/deploy.md)
    from jobs import _cli

from lib.config import Config
from lib.dialects import get_dialect
from lib.errors import ConfigError
from lib.lake.paths import normalize_root
from lib.selection import matches, parse_globs
from lib.status.display import PositionText, cdc_position_text
from lib.status.record import StatusEvent
from lib.status.store import StatusStore

COLUMNS = (
    "source", "schema", "table", "phase", "state", "row_count", "chunks", "snapshot_position", "cdc_position",
    "cdc_event_time", "cdc_counts", "lag", "latency_ms", "attempts", "updated_at", "error_or_note",
)


def _time(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else ""


def _text(value: object) -> str:
    return "" if value is None else str(value)


def render_table(events: list[StatusEvent], notations: dict[str, PositionText] | None = None) -> list[str]:
    """Aligned text lines (pure), header first. ``cdc_counts`` is inserted/updated/deleted; CDC
    positions in the notation of the source's dialect (``notations``: source name -> formatter)."""
    rows = [COLUMNS]
    for e in events:
        cdc_position = cdc_position_text(e.cdc_position, (notations or {}).get(e.source))
        chunks = f"{e.chunks_done}/{e.chunks_total}" if e.chunks_total else ""
        counts = (e.cdc_inserted, e.cdc_updated, e.cdc_deleted)
        cdc_counts = "/".join(str(n or 0) for n in counts) if any(n is not None for n in counts) else ""
        rows.append(
            (e.source, e.schema, e.table, e.phase, e.state, _text(e.row_count), chunks, e.snapshot_position or "", cdc_position,
             _time(e.cdc_event_time), cdc_counts, _text(e.cdc_lag), _text(e.cdc_latency_ms), str(e.attempts), _time(e.updated_at),
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


def main() -> int:
    p = _cli.parser("Show the pipeline status table.", source_required=False)
    p.add_argument("--json", action="store_true", help="one JSON object per table and line")
    args = p.parse_args()
    config = _cli.load(args)
    spark = _cli.spark(config, "status")
    latest = StatusStore(spark, normalize_root(config.lake.root)).latest(args.source)
    globs = parse_globs(args.tables)
    events = sorted((e for e in latest.values() if not globs or matches(e.schema, e.table, globs)), key=lambda e: e.key)
    notations = position_notations(config)
    if args.json:
        for e in events:
            summary = e.summary()
            summary["cdc_position_text"] = cdc_position_text(e.cdc_position, notations.get(e.source)) or None
            print(json.dumps(summary, sort_keys=True))
    else:
        for line in render_table(events, notations) if events else ["(no tables in the status table yet)"]:
            print(line)
    return 0


if __name__ == "__main__":
    _cli.run(main)
