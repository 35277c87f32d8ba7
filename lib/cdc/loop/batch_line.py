"""The stream's log lines that tools read (the demo, the benchmark): their patterns (the per-apply
line is written by :func:`lib.cdc.loop.table_status.apply_line`), and the weighted median both use to
summarize latencies."""

from __future__ import annotations

import re
from typing import Any

_NUM = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
BATCH_LINE = re.compile(
    rf"cdc batch (?P<batch>\d+)(?: \[(?P<table>.*?)\])?: (?P<events>\d+) events?, (?P<tables>\d+) tables? in (?P<seconds>{_NUM})s "
    rf"\((?P<rate>{_NUM}) events/s\); inserted (?P<inserted>\d+) updated (?P<updated>\d+) deleted (?P<deleted>\d+) "
    rf"skipped (?P<skipped>\d+) dead-lettered (?P<dead_lettered>\d+); lag (?P<lag>\d+); "
    rf"latency p50 (?P<p50>{_NUM})s p95 (?P<p95>{_NUM})s(?:; by (?P<path>direct\+spark|direct|spark)(?: \((?P<why>.*)\))?)?"
)
EMPTY_BATCH_LINE = re.compile(r"cdc batch (?P<batch>\d+): no change events")
STARTED_LINE = re.compile(r"cdc stream started")
READY_LINE = re.compile(r"cdc stream ready: \d+ tables? to apply")  # the tables are known: changes from now on are applied as they come
STOPPED_LINE = re.compile(r"cdc stream stopped")
_INTS = ("batch", "events", "tables", "inserted", "updated", "deleted", "skipped", "dead_lettered", "lag")
_FLOATS = ("seconds", "rate", "p50", "p95")


def parse_batch_line(line: str) -> dict[str, Any] | None:
    """One micro-batch line of jobs/cdc_stream.py as numbers, or None when the line is not one (pure).
    A batch without change events ("cdc batch N: no change events") gives events 0 and no timings."""
    m = BATCH_LINE.search(line)
    if m:
        out: dict[str, Any] = {k: int(m[k]) for k in _INTS}
        out.update({k: float(m[k]) for k in _FLOATS})
        if m["table"] is not None:  # one table's apply
            out["table"] = m["table"]
        if m["path"] is not None:  # who applied it: the direct path, decoded directly and MERGEd by Spark, or Spark
            out["path"] = m["path"]
        if m["why"] is not None:
            out["why"] = m["why"]
        return out
    m = EMPTY_BATCH_LINE.search(line)
    if m:
        return {"batch": int(m["batch"]), "events": 0, "empty": True}
    return None


def weighted_median(pairs: list[tuple[float, int]]) -> float | None:
    """Median of values weighted by counts (pure): the smallest value at or above half the total
    weight; None when no value has a weight."""
    pairs = sorted((v, w) for v, w in pairs if w > 0)
    total = sum(w for _, w in pairs)
    if total == 0:
        return None
    running = 0
    for value, weight in pairs:
        running += weight
        if running * 2 >= total:
            return value
    return pairs[-1][0]
