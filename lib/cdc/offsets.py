"""Kafka offsets of the per-table apply loop (pure): what is pending, which range to apply next, and
how a table's progress is written down.

A table's progress is the *next* offset to read per partition of its topic, ``{partition: offset}``.
It is recorded in the status table (``cdc_offsets``, JSON) after everything an apply wrote is
committed (MERGE, tombstones, dead letters), so a restart resumes there; a crash in between replays
the range, which the MERGE's position guard and the tombstones make harmless.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

Offsets = dict[int, int]  # partition -> next offset to read


@dataclass(frozen=True)
class Range:
    """Messages ``[start, end)`` of each partition of one topic."""

    topic: str
    start: Offsets
    end: Offsets

    @property
    def messages(self) -> int:
        return sum(self.end[p] - self.start.get(p, 0) for p in self.end)

    def spark_options(self) -> dict[str, str]:
        """Options of Spark's Kafka batch source reading exactly this range."""
        parts = sorted(p for p in self.end if self.end[p] > self.start.get(p, 0))
        return {
            "assign": json.dumps({self.topic: parts}),
            "startingOffsets": json.dumps({self.topic: {str(p): self.start.get(p, 0) for p in parts}}),
            "endingOffsets": json.dumps({self.topic: {str(p): self.end[p] for p in parts}}),
        }


def pending(next_offsets: Mapping[int, int], end_offsets: Mapping[int, int]) -> int:
    """Messages written but not applied yet (a partition never read starts at 0)."""
    return sum(max(end - next_offsets.get(p, 0), 0) for p, end in end_offsets.items())


def next_range(topic: str, next_offsets: Mapping[int, int], end_offsets: Mapping[int, int], max_messages: int,
               low_offsets: Mapping[int, int] | None = None) -> Range | None:
    """The next range to apply: everything pending, at most ``max_messages`` (split over the partitions
    in proportion to what each has pending, at least one message each), None when nothing is pending.
    ``low_offsets`` (the partitions' first retained offsets) move the start past messages Kafka deleted."""
    start = {p: max(next_offsets.get(p, 0), (low_offsets or {}).get(p, 0)) for p in end_offsets}
    waiting = {p: end_offsets[p] - start[p] for p in end_offsets if end_offsets[p] > start[p]}
    if not waiting:
        return None
    total = sum(waiting.values())
    end = dict(start)
    if total <= max_messages:
        end.update({p: end_offsets[p] for p in waiting})
    else:
        for p, n in waiting.items():
            end[p] = start[p] + max(1, n * max_messages // total)
    return Range(topic, start, end)


def to_json(offsets: Mapping[int, int]) -> str:
    return json.dumps({str(p): int(o) for p, o in sorted(offsets.items())}, separators=(",", ":"))


def from_json(text: str | None) -> Offsets:
    """Offsets from the status table's text; empty (read from the start) when there is none."""
    if not text:
        return {}
    data = json.loads(text)
    return {int(p): int(o) for p, o in data.items()}
