"""The two table-level changes an apply can carry besides rows: a truncate and source columns the lake
table does not have yet (pure: the rules both apply paths share).

**New columns.** A source column the lake table lacks is added with the bulk path's type mapping of the
source catalog (``lake_types``), else the type its Debezium field gives (messages with a schema block),
after the table's other columns; rows the range does not change keep NULL in it
(:func:`new_columns`, :func:`with_columns`). The Spark path adds them with ``ALTER TABLE ... ADD
COLUMNS`` (lib.cdc.spark.table_apply.evolve_schema), the direct path with delta-rs' add-columns commit
(lib.cdc.direct.lake_changes), both before the MERGE that fills them and skipping a column a retried
apply already added.

**Truncates.** The Spark path applies a range holding a truncate in three steps: it deletes every row
older than the range's latest truncate (bulk rows, ``__op = 'r'``, and rows at an earlier position),
records that position in the table property ``lakehouse.cdc.truncatedAt``, and MERGEs the events after
the truncate. :func:`truncate_merge` is the same change as one MERGE (one atomic commit): a row older
than the truncate that an event of the range matches is replaced by that event as the Spark path's
INSERT would write it (an unchanged-TOAST value becomes NULL: the row it came from was truncated), or
deleted by a delete; one no event matches is deleted (``WHEN NOT MATCHED BY SOURCE``); rows newer than
the truncate (a replay) meet the ordinary clauses. :func:`counts_after_truncate` turns its metrics into
the Spark path's counts (a replaced row is a delete and an insert there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.cdc.plan import CHANGE, COMMIT, MergeClauses, TableSpec, merge_clauses, q

Position = tuple[int, int]


def new_columns(spec: TableSpec, fields: Mapping[str, Mapping[str, Any]], lake_types: Mapping[str, str] | None = None
                ) -> tuple[tuple[str, str], ...]:
    """(name, lake type) of the source columns in ``fields`` (Debezium field schemas, in source order)
    the lake table does not have: the bulk path's type (``lake_types``) when known, else the field's."""
    known = {name for name, _ in spec.columns}
    return tuple((name, (lake_types or {}).get(name) or spec.event_format.lake_type(f)) for name, f in fields.items() if name not in known)


def with_columns(spec: TableSpec, columns: Sequence[tuple[str, str]]) -> TableSpec:
    """The spec once ``columns`` are added to the lake table (after its other columns)."""
    return dataclasses.replace(spec, columns=spec.columns + tuple(columns)) if columns else spec


def _decimal(value: int) -> str:
    """An exact decimal(38,0) literal for delta-rs' SQL (a bare integer past 2^63 would not be one)."""
    return f"CAST('{int(value)}' AS DECIMAL(38,0))"


def older_than_sql(truncate: Position, alias: str = "t") -> str:
    """The row is older than the truncate at ``truncate``: what the truncate deletes
    (lib.cdc.plan.truncate_sql's condition, for delta-rs). ``alias``: the row's table alias ("" for none)."""
    a = f"{alias}." if alias else ""
    commit, change = _decimal(truncate[0]), _decimal(truncate[1])
    return (f"({a}`__op` = 'r' OR {a}{COMMIT} < {commit} OR ({a}{COMMIT} = {commit} AND {a}{CHANGE} < {change}))")


@dataclass(frozen=True)
class TruncateMerge:
    """A range's MERGE with the truncate before it, as one statement (for delta-rs), in clause order:
    ``WHEN MATCHED AND clauses.delete_when THEN DELETE``, ``WHEN MATCHED AND replace_when THEN UPDATE SET
    replaces``, ``WHEN MATCHED AND clauses.update_when THEN UPDATE SET clauses.updates``, ``WHEN NOT
    MATCHED AND clauses.insert_when THEN INSERT clauses.inserts``, ``WHEN NOT MATCHED BY SOURCE AND
    drop_when THEN DELETE``."""

    clauses: MergeClauses
    replace_when: str
    replaces: tuple[tuple[str, str], ...]
    drop_when: str


def truncate_merge(spec: TableSpec, toastable: Sequence[str], truncate: Position, now: str = "now()") -> TruncateMerge:
    """The MERGE of the events after the truncate at ``truncate`` (every event of the source is after
    it) that also applies the truncate. The ordinary delete clause deletes a truncated row too: its guard
    holds for a row older than the truncate (a bulk row, or one at an earlier position than the event)."""
    clauses = merge_clauses(spec, toastable, now)
    keys = {q(k) for k in spec.key_columns}
    return TruncateMerge(
        clauses=clauses,
        replace_when=f"{older_than_sql(truncate)} AND s.`__op` <> 'd'",
        replaces=tuple((column, value) for column, value in clauses.inserts if column not in keys),
        drop_when=older_than_sql(truncate),
    )


def counts_after_truncate(metrics: Mapping[str, int], replaced: int) -> dict[str, int]:
    """The Spark path's counts of a truncate and MERGE from the one MERGE's (``num_inserted_rows``...):
    ``replaced`` rows older than the truncate were replaced by an event of the range, which the Spark
    path counts as deleted (by the truncate) and inserted (by its MERGE), not updated."""
    return {"num_inserted_rows": int(metrics.get("num_inserted_rows") or 0) + replaced,
            "num_updated_rows": int(metrics.get("num_updated_rows") or 0) - replaced,
            "num_deleted_rows": int(metrics.get("num_deleted_rows") or 0) + replaced}

