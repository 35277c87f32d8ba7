"""The status event one table apply leads to, and the apply's log line (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lib.cdc import offsets as O
from lib.cdc.outcome import TableOutcome
from lib.status.record import StatusEvent


def applied_event(prior: StatusEvent, outcome: TableOutcome, next_offsets: O.Offsets, lag: int, now: float) -> StatusEvent:
    """The table's next status event after an apply: cumulative counts, position, offsets, lag, latency."""
    if outcome.error is not None:
        return prior.next(phase="cdc", state="failed", last_error=outcome.error, cdc_offsets=O.to_json(next_offsets))
    carried = prior.phase == "cdc"

    def total(name: str, add: int) -> int:
        return ((getattr(prior, name) or 0) if carried else 0) + add

    changes: dict[str, Any] = {
        "phase": "cdc", "state": "running", "last_error": None,
        "cdc_inserted": total("cdc_inserted", outcome.inserted), "cdc_updated": total("cdc_updated", outcome.updated),
        "cdc_deleted": total("cdc_deleted", outcome.deleted), "cdc_lag": lag, "cdc_offsets": O.to_json(next_offsets),
    }
    if outcome.last_position:
        changes["cdc_position"] = f"{outcome.last_position[0]}/{outcome.last_position[1]}"
    if outcome.last_ts_ms is not None:
        changes["cdc_event_time"] = datetime.fromtimestamp(outcome.last_ts_ms / 1000, UTC)
    if outcome.ts_p50_ms is not None:
        changes["cdc_latency_ms"] = int(visible_ms(outcome, now) - outcome.ts_p50_ms)
    return prior.next(**changes)


def visible_ms(outcome: TableOutcome, fallback: float) -> float:
    """When the table's events became visible in the lake (its MERGE's commit), in epoch ms."""
    return (outcome.visible_at if outcome.visible_at is not None else fallback) * 1000


def apply_line(seq: int, outcome: TableOutcome, messages: int, dead: int, seconds: float, lag: int, now: float) -> str:
    """The apply's log line (lib.cdc.loop.batch_line parses it): events, time, counts, lag, latency."""
    ok = outcome.error is None
    p50 = (visible_ms(outcome, now) - outcome.ts_p50_ms) / 1000 if ok and outcome.ts_p50_ms is not None else 0.0
    p95 = (visible_ms(outcome, now) - outcome.ts_p05_ms) / 1000 if ok and outcome.ts_p05_ms is not None else 0.0
    events = outcome.events if outcome.events else messages
    return (f"cdc batch {seq} [{outcome.spec.name}]: {events} events, 1 table in {seconds:.1f}s ({events / seconds if seconds > 0 else 0.0:.0f} events/s); "
            f"inserted {outcome.inserted} updated {outcome.updated} deleted {outcome.deleted} skipped {outcome.skipped} "
            f"dead-lettered {dead}; lag {lag}; latency p50 {p50:.1f}s p95 {p95:.1f}s; by {outcome.path}{f' ({outcome.why})' if outcome.why else ''}")



