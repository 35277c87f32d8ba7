"""Pure figures of scripts/bench_cdc.py: summaries of the stream's apply lines, lag profiles, table
weights of the workload, and the issue-11 targets as checks (no database, no Kafka, no JVM;
tests/unit/test_bench_cdc_parse.py).

An *apply line* is one parsed ``cdc batch N [schema.table]: ...`` line of jobs/cdc_stream.py
(lib.cdc.loop.batch_line.parse_batch_line) with the wall time it appeared added as ``at``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lib.cdc.loop.batch_line import weighted_median

OPS = ("inserted", "updated", "deleted", "skipped", "dead_lettered")


def _full(batches: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in batches if not b.get("empty")]


def summarize_batches(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of parsed apply lines: events, the sum of their own seconds, their wall span (from the
    start of the first to the line of the last: applies of several tables overlap), operation counts,
    and event-weighted medians of their latencies (each line's p50 and p95 weighted by its events)."""
    full = _full(batches)
    events = sum(b["events"] for b in full)
    seconds = sum(b["seconds"] for b in full)
    out: dict[str, Any] = {
        "batches": len(batches),
        "batches_with_events": sum(1 for b in full if b["events"] > 0),
        "events": events,
        "batch_seconds": round(seconds, 2),
        "events_per_batch_second": round(events / seconds) if seconds > 0 else None,
    }
    timed = [b for b in full if "at" in b]
    if timed:
        span = max(b["at"] for b in timed) - min(b["at"] - b["seconds"] for b in timed)
        out["apply_wall_seconds"] = round(span, 2)
        out["events_per_apply_wall_second"] = round(events / span) if span > 0 else None
    for key in OPS:
        out[key] = sum(b[key] for b in full)
    out.update(latency_summary(full))
    out.update(direct_share(full))
    return out


def direct_share(batches: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Who applied the ranges: of the apply lines that say it (``; by direct`` or ``; by spark``), the
    share the direct path applied, counted in applies and in events, and the counts by path; the
    shares are None when no line says."""
    said = [b for b in _full(batches) if b.get("path")]
    direct = [b for b in said if b["path"] == "direct"]
    events = sum(b["events"] for b in said)
    by_path: dict[str, dict[str, int]] = {}
    for b in said:
        counts = by_path.setdefault(b["path"], {"applies": 0, "events": 0})
        counts["applies"] += 1
        counts["events"] += b["events"]
    return {
        "direct_share_applies": round(len(direct) / len(said), 4) if said else None,
        "direct_share_events": round(sum(b["events"] for b in direct) / events, 4) if events else None,
        "applies_by_path": dict(sorted(by_path.items())),
    }


def latency_summary(batches: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Event-weighted medians of the lines' p50 and p95, and the worst p95 (None without events)."""
    weighted = [b for b in _full(batches) if b["events"] > 0]
    return {
        "latency_events": sum(b["events"] for b in weighted),
        "latency_p50_weighted_median_s": weighted_median([(b["p50"], b["events"]) for b in weighted]),
        "latency_p95_weighted_median_s": weighted_median([(b["p95"], b["events"]) for b in weighted]),
        "latency_p95_max_s": max((b["p95"] for b in weighted), default=None),
    }


def latency_by_table(batches: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per table (the apply line's ``[schema.table]``): applies, events, p50 / p95 as above."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for b in _full(batches):
        if b["events"] > 0 and b.get("table"):
            groups.setdefault(b["table"], []).append(b)
    out = {}
    for table in sorted(groups):
        lat = latency_summary(groups[table])
        out[table] = {"applies": len(groups[table]), "events": lat["latency_events"],
                      "p50_s": lat["latency_p50_weighted_median_s"], "p95_s": lat["latency_p95_weighted_median_s"]}
    return out


def latency_of_tables(batches: Iterable[dict[str, Any]], tables: Iterable[str], include: bool = True) -> dict[str, Any]:
    """latency_summary of the lines of ``tables`` (``include=False``: of every other table)."""
    names = set(tables)
    return latency_summary(b for b in _full(batches) if (b.get("table") in names) == include)


def measured_after(batches: Sequence[dict[str, Any]], start: float) -> list[dict[str, Any]]:
    """The apply lines of applies that started at or after ``start`` (wall time); lines without timing
    (an empty batch) count by the time they appeared."""
    return [b for b in batches if b["at"] - b.get("seconds", 0.0) >= start]


# ------------------------------------------------------------------------------------------- lag


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Slope of the least-squares line through ``(x, y)`` points; None for fewer than 2 distinct x."""
    n = len(points)
    if n < 2:
        return None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def lag_profile(samples: Sequence[tuple[float, float]], rate: float, tolerance: float = 0.01) -> dict[str, Any]:
    """Lag samples ``(seconds since the window's start, lag in events)`` of one window: the lag at its
    start, middle and end, the largest, the least-squares slope (events/s) and whether the lag grows:
    the stream keeps up when the slope is at most ``tolerance`` of the write ``rate`` (it applies at
    least 99% of what is written, averaged over the window; lag that rises and falls with each apply
    has no slope)."""
    if not samples:
        return {"samples": 0, "keeps_up": None}
    t0, t1 = samples[0][0], samples[-1][0]
    middle = min(samples, key=lambda s: abs(s[0] - (t0 + t1) / 2))
    slope = least_squares_slope(samples)
    allowed = tolerance * rate
    return {
        "samples": len(samples),
        "window_seconds": round(t1 - t0, 1),
        "lag_start": samples[0][1],
        "lag_middle": middle[1],
        "lag_end": samples[-1][1],
        "lag_max": max(y for _, y in samples),
        "slope_events_per_s": None if slope is None else round(slope, 2),
        "slope_allowed_events_per_s": round(allowed, 2),
        "keeps_up": None if slope is None else slope <= allowed,
    }


# --------------------------------------------------------------------------------------- weights


def spread_weights(tables: Sequence[str]) -> dict[str, float]:
    """The same weight for every table."""
    return {t: 1.0 for t in tables}


def skew_weights(tables: Sequence[str], hot: str, share: float) -> dict[str, float]:
    """``share`` of the events to ``hot``, the rest spread evenly over the other tables."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    others = [t for t in tables if t != hot]
    if hot not in tables:
        raise ValueError(f"{hot} is not one of the tables")
    out = {hot: share}
    for t in others:
        out[t] = (1 - share) / len(others)
    return {t: w for t, w in out.items() if w > 0}


class TablePicker:
    """Chooses the table of each transaction so that, over any run of transactions, each table's share
    follows its weight as closely as whole transactions allow (smooth weighted round robin)."""

    def __init__(self, weights: dict[str, float]) -> None:
        if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        self.weights = {t: w for t, w in weights.items() if w > 0}
        self.total = sum(self.weights.values())
        self.current = dict.fromkeys(self.weights, 0.0)

    def next(self) -> str:
        for t, w in self.weights.items():
            self.current[t] += w
        best = max(self.current, key=lambda t: self.current[t])
        self.current[best] -= self.total
        return best


# --------------------------------------------------------------------------------------- targets

# (key, what, operator, target, unit): the CDC stream's targets
TARGETS = (
    ("backlog_apply_events_per_s", "backlog: sustained apply (events / wall time of the applies)", ">=", 12_000, "events/s"),
    ("backlog_apply_vs_parse_baseline", "backlog: sustained apply / plain-Spark read+parse baseline", ">=", 0.5, "x"),
    ("latency_p50_s", "500 events/s over 20 tables: p50", "<=", 15.0, "s"),
    ("latency_p95_s", "500 events/s over 20 tables: p95", "<=", 30.0, "s"),
    ("rate_lag_slope_events_per_s", "2,000 events/s over 20 tables: lag slope (keeps up: <= 1% of the rate)", "<=", None, "events/s"),
    ("skew_hot_p50_s", "skew, 90% to one table: that table's p50", "<=", 10.0, "s"),
    ("light_p50_s", "light load, 10 events/s over 3 tables: p50", "<=", 5.0, "s"),
    ("many_hot_p50_s", "200 tables, 5 of them at 500 events/s in all: their p50", "<=", 15.0, "s"),
)


def target_values(report: dict[str, Any]) -> dict[str, Any]:
    """The measured value of each target from the report (None when not measured)."""
    apply = report.get("apply") or {}
    base = report.get("baseline") or {}
    phases = report.get("phases") or {}
    rate = (phases.get("rate") or {}).get("lag") or {}
    sustained = apply.get("events_per_apply_wall_second")
    parse = base.get("parse_events_per_s")
    return {
        "backlog_apply_events_per_s": sustained,
        "backlog_apply_vs_parse_baseline": round(sustained / parse, 3) if sustained and parse else None,
        "latency_p50_s": (phases.get("latency") or {}).get("latency_p50_weighted_median_s"),
        "latency_p95_s": (phases.get("latency") or {}).get("latency_p95_weighted_median_s"),
        "rate_lag_slope_events_per_s": (rate.get("slope_events_per_s"), rate.get("slope_allowed_events_per_s")),
        "skew_hot_p50_s": ((phases.get("skew") or {}).get("hot") or {}).get("latency_p50_weighted_median_s"),
        "light_p50_s": (phases.get("light") or {}).get("latency_p50_weighted_median_s"),
        "many_hot_p50_s": ((phases.get("many") or {}).get("hot") or {}).get("latency_p50_weighted_median_s"),
    }


def target_checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: measured value, target, value / target and whether it is met (None: not measured).
    The lag target's limit is the run's own (1% of its write rate), carried with the value."""
    values = target_values(report)
    out = []
    for key, what, op, target, unit in TARGETS:
        value = values[key]
        if isinstance(value, tuple):
            value, target = value
        met = ratio = None
        if value is not None and target is not None:
            met = value >= target if op == ">=" else value <= target
            ratio = round(value / target, 3) if target else None
        out.append({"key": key, "what": what, "value": value, "op": op, "target": target, "unit": unit,
                    "ratio_to_target": ratio, "met": met})
    return out
