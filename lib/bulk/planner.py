"""Pure planning of a table copy: how to split it, into how many chunks, and what each chunk reads.

A table is copied in *chunks*; each chunk is one Spark job reading ``partitions`` ranges in parallel and
one atomic lake commit. Chunks are the unit of resume: a restarted load continues after the last
committed chunk. Split points come from the data (a sorted sample of the key), never from min/max
striding, so gaps, skew, negatives and non-numeric keys still give balanced ranges.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from lib.config.model import TableOverride
from lib.dialects.base import ColumnRead, Table
from lib.spark_sql import ident

SplitKind = Literal["range", "physical", "none"]


@dataclass(frozen=True)
class SplitChoice:
    kind: SplitKind
    columns: tuple[str, ...]  # key columns for "range"
    partitions: int  # ranges read in parallel per chunk
    chunks: int
    reason: str  # why this split, for --dry-run and logs

    @property
    def total_ranges(self) -> int:
        return self.partitions * self.chunks


@dataclass(frozen=True)
class TablePlan:
    schema: str
    table: str
    total_rows: int
    split: SplitChoice
    chunks: tuple[tuple[str, ...], ...]  # per chunk: one WHERE predicate per parallel partition
    reads: tuple[ColumnRead, ...]

    @property
    def lake_schema(self) -> str:
        return ", ".join(f"{ident(r.name)} {r.spark_type}" for r in self.reads)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TablePlan:
        data: dict[str, Any] = json.loads(text)
        split = SplitChoice(**{**data["split"], "columns": tuple(data["split"]["columns"])})
        return cls(
            schema=data["schema"],
            table=data["table"],
            total_rows=data["total_rows"],
            split=split,
            chunks=tuple(tuple(c) for c in data["chunks"]),
            reads=tuple(ColumnRead(**r) for r in data["reads"]),
        )


def choose_split(
    table: Table,
    override: TableOverride,
    partitions: int,
    rows_per_chunk: int,
    min_rows_to_split: int,
    total_rows: int,
    can_split_physically: bool,
) -> SplitChoice:
    """Decide how ``table`` is split (pure). ``partitions`` is the requested parallelism per chunk."""
    partitions = override.partitions or partitions
    if total_rows < min_rows_to_split or (partitions <= 1 and total_rows <= rows_per_chunk):
        return SplitChoice("none", (), 1, 1, f"{total_rows} rows: read in one piece")
    chunks = max(1, math.ceil(total_rows / rows_per_chunk))
    columns, reason = _split_columns(table, override)
    if columns:
        return SplitChoice("range", columns, partitions, chunks, reason)
    if can_split_physically:
        return SplitChoice("physical", (), partitions, 1, "no key: physical row-location ranges (one chunk)")
    return SplitChoice("none", (), 1, 1, "no key and no physical split: read in one piece")


def _split_columns(table: Table, override: TableOverride) -> tuple[tuple[str, ...], str]:
    if override.split_column:
        table.column(override.split_column)  # KeyError -> reported by the caller with the config path
        return (override.split_column,), f"split column {override.split_column!r} from config"
    keys = override.key_columns or table.primary_key
    source = "configured key" if override.key_columns else "primary key"
    if not keys:
        return (), ""
    cols = [table.column(k) for k in keys]
    if len(cols) == 1 or not any(c.nullable for c in cols):
        return tuple(keys), f"{source} ({', '.join(keys)})"
    return (keys[0],), f"first column of nullable {source} ({keys[0]})"


def group_chunks(predicates: list[str], chunks: int) -> tuple[tuple[str, ...], ...]:
    """Consecutive predicates grouped into ``chunks`` groups of (nearly) equal size (pure)."""
    chunks = max(1, min(chunks, len(predicates)))
    size = math.ceil(len(predicates) / chunks)
    return tuple(tuple(predicates[i : i + size]) for i in range(0, len(predicates), size))


def sample_target(split: SplitChoice) -> int:
    """How many key rows to sample: ~1000 per range keeps each range within a few percent of its share."""
    return max(5_000, min(500_000, 1_000 * split.total_ranges))


def describe(plan: TablePlan) -> str:
    """One human line for ``--dry-run`` and the load log."""
    split = plan.split
    on = f" on {', '.join(split.columns)}" if split.columns else ""
    return (
        f"{plan.schema}.{plan.table}: ~{plan.total_rows} rows, {len(plan.chunks)} chunk(s) x "
        f"{max(len(c) for c in plan.chunks)} partition(s), split {split.kind}{on} ({split.reason})"
    )


def type_fits(measured: str, stored: str) -> bool:
    """Whether values that need lake type ``measured`` can be written as ``stored`` without loss."""
    if measured == stored or stored == "string":
        return True
    m, s = _decimal(measured), _decimal(stored)
    if m is None or s is None:
        return False
    return m[0] - m[1] <= s[0] - s[1] and m[1] <= s[1]


def _decimal(spark_type: str) -> tuple[int, int] | None:
    if not spark_type.startswith("decimal(") or not spark_type.endswith(")"):
        return None
    precision, scale = spark_type[len("decimal(") : -1].split(",")
    return int(precision), int(scale)
