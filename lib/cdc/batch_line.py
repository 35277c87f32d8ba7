"""The stream's log lines that tools read (the demo, the benchmark): their patterns, next to
:func:`lib.cdc.batch._log` which writes the per-batch one, and the weighted median both use to
summarize latencies."""

from __future__ import annotations

import re

_NUM = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
BATCH_LINE = re.compile(
    rf"cdc batch (?P<batch>\d+): (?P<events>\d+) events?, (?P<tables>\d+) tables? in (?P<seconds>{_NUM})s "
    rf"\((?P<rate>{_NUM}) events/s\); inserted (?P<inserted>\d+) updated (?P<updated>\d+) deleted (?P<deleted>\d+) "
    rf"skipped (?P<skipped>\d+) dead-lettered (?P<dead_lettered>\d+); lag (?P<lag>\d+); "
    rf"latency p50 (?P<p50>{_NUM})s p95 (?P<p95>{_NUM})s"
)
EMPTY_BATCH_LINE = re.compile(r"cdc batch (?P<batch>\d+): no change events")
STARTED_LINE = re.compile(r"cdc stream started")
STOPPED_LINE = re.compile(r"cdc stream stopped")


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
