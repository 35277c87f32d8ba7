"""PostgreSQL SQL text: identifier quoting, literals and partition predicates (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from lib.dialects.base import SplitSample, Table


def quote_ident(name: str) -> str:
    """Double-quote an identifier; embedded double quotes are doubled (``a"b`` -> ``"a""b"``)."""
    if "\x00" in name:
        raise ValueError("identifiers cannot contain NUL characters")
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def quote_literal(value: str) -> str:
    """A standard SQL string literal (the server runs with ``standard_conforming_strings=on``)."""
    if "\x00" in value:
        raise ValueError("string literals cannot contain NUL characters")
    return "'" + value.replace("'", "''") + "'"


def typed_literal(text: str, source_type: str) -> str:
    """``'<text>'::<type>``: a value rendered by the server as text, read back exactly as that type."""
    return f"{quote_literal(text)}::{source_type}"


def row_expr(columns: Sequence[str]) -> str:
    quoted = [quote_ident(c) for c in columns]
    return quoted[0] if len(quoted) == 1 else "(" + ", ".join(quoted) + ")"


def row_literal(values: Sequence[str], types: Sequence[str]) -> str:
    literals = [typed_literal(v, t) for v, t in zip(values, types, strict=True)]
    return literals[0] if len(literals) == 1 else "(" + ", ".join(literals) + ")"


def pick_boundaries(rows: Sequence[tuple[str | None, ...]], partitions: int) -> list[tuple[str, ...]]:
    """Choose up to ``partitions - 1`` split points from key rows already sorted by the database.

    Only positions are used, never Python comparisons, so the database's collation decides the order.
    Rows holding NULLs are skipped (they go to the first partition) and consecutive duplicates
    collapse, so a skewed key yields fewer, never empty-by-construction, partitions.
    """
    usable = [r for r in rows if all(v is not None for v in r)]
    if partitions <= 1 or not usable:
        return []
    picked: list[tuple[str, ...]] = []
    for i in range(1, partitions):
        candidate = usable[(i * len(usable)) // partitions]
        if (not picked or candidate != picked[-1]) and candidate != usable[0]:
            picked.append(tuple(str(v) for v in candidate))
    return picked


def range_predicates(table: Table, sample: SplitSample, partitions: int) -> list[str]:
    """WHERE clauses that split ``table`` on ``sample.columns`` into ranges that cover every row once.

    Ranges are half-open ``[b_i, b_i+1)`` in the key's own order (a row value comparison for composite
    keys, which PostgreSQL answers from the key's index). The first range is open below and also takes
    rows whose key is NULL; the last is open above. Composite keys must be NOT NULL columns: a row value
    comparison with a NULL inside can be neither true nor false, which would lose the row.
    """
    columns = [table.column(c) for c in sample.columns]
    if len(columns) > 1 and any(c.nullable for c in columns):
        raise ValueError(f"composite split keys must be NOT NULL columns: {', '.join(sample.columns)}")
    bounds = pick_boundaries(sample.rows, partitions)
    if not bounds:
        return ["TRUE"]
    key = row_expr(sample.columns)
    literals = [row_literal(b, [c.source_type for c in columns]) for b in bounds]
    first = f"{key} < {literals[0]}"
    if columns[0].nullable:
        first += f" OR {key} IS NULL"
    predicates = [first]
    predicates += [f"{key} >= {lo} AND {key} < {hi}" for lo, hi in pairwise(literals)]
    predicates.append(f"{key} >= {literals[-1]}")
    return predicates


def boundaries_ascending_sql(table: Table, sample: SplitSample, partitions: int) -> str | None:
    """A query returning true iff the split points of :func:`range_predicates` ascend strictly in the
    database's own order (None when there is at most one point)."""
    bounds = pick_boundaries(sample.rows, partitions)
    if len(bounds) < 2:
        return None
    types = [table.column(c).source_type for c in sample.columns]
    literals = [row_literal(b, types) for b in bounds]
    return "SELECT " + " AND ".join(f"{lo} < {hi}" for lo, hi in pairwise(literals))


def physical_predicates(table: Table, partitions: int) -> list[str] | None:
    """Split a table without a usable key by ``ctid`` page ranges (TID range scans, PostgreSQL 14+).

    The last range is open-ended, so pages added after the catalog statistics were taken are read too.
    """
    pages = table.pages
    if partitions <= 1 or pages < partitions:
        return None
    step = pages // partitions
    starts = [i * step for i in range(partitions)]
    preds = []
    for lo, hi in pairwise(starts):
        preds.append(f"ctid >= '({lo},0)'::tid AND ctid < '({hi},0)'::tid")
    preds.append(f"ctid >= '({starts[-1]},0)'::tid")
    return preds


def select_sql(table: Table, select_exprs: Sequence[str], predicate: str | None) -> str:
    where = f" WHERE {predicate}" if predicate and predicate != "TRUE" else ""
    return f"SELECT {', '.join(select_exprs)} FROM {qualified(table.schema, table.name)}{where}"


def int_to_lsn(number: int) -> str:
    """97500059720 -> ``'16/B374D848'``: a position number in PostgreSQL's own LSN notation."""
    if number < 0:
        raise ValueError(f"not a PostgreSQL LSN: {number}")
    return f"{number >> 32:X}/{number & 0xFFFFFFFF:X}"


def lsn_to_int(lsn: str) -> int:
    """``'16/B374D848'`` -> 97500059720: LSNs compare correctly as numbers, not as text."""
    high, _, low = lsn.partition("/")
    if not low:
        raise ValueError(f"not a PostgreSQL LSN: {lsn!r}")
    return (int(high, 16) << 32) + int(low, 16)
