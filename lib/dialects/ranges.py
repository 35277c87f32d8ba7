"""Range predicates for SQL without row-value comparisons (Oracle, SQL Server), pure.

PostgreSQL compares composite keys as row values (``(a, b) < (1, 2)``); Oracle and T-SQL cannot, so a
composite bound is spelled out lexicographically: ``a < 1 OR (a = 1 AND b < 2)``. Split points are
picked exactly as for PostgreSQL (:func:`lib.dialects.postgres.sql.pick_boundaries`): positions in a
sample sorted by the database, never Python comparisons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

from lib.dialects.base import Column, SplitSample, Table
from lib.dialects.postgres.sql import pick_boundaries

# (column, canonical text of a key value) -> a literal of the column's type
Literal = Callable[[Column, str], str]


def lex_compare(keys: Sequence[str], literals: Sequence[str], strict: str, last: str) -> str:
    """``keys`` compared lexicographically with ``literals``: ``strict`` is ``<`` or ``>`` for the
    leading columns, ``last`` the operator of the final column (``<``, ``>=``)."""
    expr = f"{keys[-1]} {last} {literals[-1]}"
    for key, lit in zip(reversed(keys[:-1]), reversed(literals[:-1]), strict=True):
        expr = f"{key} {strict} {lit} OR ({key} = {lit} AND ({expr}))"
    return expr if len(keys) == 1 else f"({expr})"


def range_predicates(table: Table, sample: SplitSample, partitions: int, quote: Callable[[str], str], literal: Literal) -> list[str]:
    """Half-open ranges ``[b_i, b_i+1)`` covering every row once; the first also takes NULL keys."""
    columns = [table.column(c) for c in sample.columns]
    if len(columns) > 1 and any(c.nullable for c in columns):
        raise ValueError(f"composite split keys must be NOT NULL columns: {', '.join(sample.columns)}")
    bounds = pick_boundaries(sample.rows, partitions)
    if not bounds:
        return ["1 = 1"]
    keys = [quote(c.name) for c in columns]
    lits = [[literal(c, v) for c, v in zip(columns, b, strict=True)] for b in bounds]
    first = lex_compare(keys, lits[0], "<", "<")
    if columns[0].nullable:
        first = f"{first} OR {keys[0]} IS NULL"
    predicates = [first]
    for lo, hi in pairwise(lits):
        predicates.append(f"{lex_compare(keys, lo, '>', '>=')} AND {lex_compare(keys, hi, '<', '<')}")
    predicates.append(lex_compare(keys, lits[-1], ">", ">="))
    return predicates


def ascending_condition(table: Table, sample: SplitSample, partitions: int, literal: Literal) -> str | None:
    """A condition true iff the split points ascend strictly in the database's own order."""
    columns = [table.column(c) for c in sample.columns]
    bounds = pick_boundaries(sample.rows, partitions)
    if len(bounds) < 2:
        return None
    parts = []
    for lo, hi in pairwise(bounds):
        lo_l = [literal(c, v) for c, v in zip(columns, lo, strict=True)]
        hi_l = [literal(c, v) for c, v in zip(columns, hi, strict=True)]
        parts.append(lex_compare(lo_l, hi_l, "<", "<"))
    return " AND ".join(f"({p})" for p in parts)
