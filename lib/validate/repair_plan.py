"""Planning a repair (pure): which tables, which key buckets or the whole table, and the SQL that
re-copies them, for the source (PostgreSQL, Oracle, SQL Server) and the lake (Spark SQL, Delta).

A repair re-copies the rows of the key buckets the checksums name from one consistent source snapshot
at position ``S``, and commits them to the lake in one Delta commit per table:

- tables with a primary key: the snapshot rows of the buckets are compared with the lake's by key and
  row hash (the checksum's); one MERGE then writes only what differs: missing and changed rows from
  the snapshot, lake keys the snapshot lacks deleted; rows the stream has already moved past the
  snapshot are left alone (:func:`newer_than_snapshot`). When the validation's drill-down named every
  differing key (and the key's types allow it, :func:`lookup_keys`), only those keys are read from the
  source (an index lookup, :func:`pg_key_select_sql`) and compared with the lake;
- tables without a key, or with duplicated keys in the lake: the buckets are replaced (Delta's
  ``replaceWhere`` on the bucket expression: delete and insert in one commit).

Re-copied rows carry ``__source_commit_pos = S``, ``__source_change_pos = 0`` and ``__op = 'r'``, as
the bulk copy's rows do: the stream's MERGE position guard lets every later change event win over them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from lib.cdc.plan import MergeClauses, merge_statement
from lib.dialects.base import Table
from lib.dialects.postgres.sql import quote_literal
from lib.spark_sql import ident
from lib.validate import render
from lib.validate import source_checksum as sc
from lib.validate.checksum_sql import RowSpec, pg_inner_sql, pg_texts, spark_row_exprs
from lib.validate.model import Check, TableReport

# Above this share of differing buckets the whole table is re-copied: the source read is then a plain
# scan (no bucket filter to evaluate) and the lake side is the same MERGE over every row.
WHOLE_TABLE_SHARE = 0.5
POSITION_COLUMNS = ("__source_commit_pos", "__source_change_pos")
ADDED_COLUMNS = ("__source_commit_pos", "__source_change_pos", "__op", "__ingested_at")

Mode = Literal["buckets", "table"]
Method = Literal["merge", "replace"]
Key = tuple[int, ...]  # one primary key's values (integer key columns: LOOKUP_KEY_TYPES)

# Key columns whose canonical text (lib/validate/render.py) is the value's own SQL literal: the repair
# can look such keys up at the source through its primary-key index.
LOOKUP_KEY_TYPES = frozenset({"tinyint", "smallint", "int", "integer", "bigint"})
MAX_LOOKUP_KEYS = 200_000  # more differing keys: the buckets are read (one scan beats that many lookups)
PG_LOOKUP_BATCH = 10_000  # keys per source query: PostgreSQL (one array literal)
SOURCE_LOOKUP_BATCH = 1_000  # Oracle and SQL Server (Oracle's limit of an IN list)
_INTEGER = re.compile(r"-?[0-9]{1,19}")


@dataclass(frozen=True)
class RepairPlan:
    """What one table's repair re-copies and how it commits."""

    name: str  # schema.table
    mode: Mode
    buckets: tuple[str, ...]  # the differing buckets ("table": every differing bucket, for the log)
    total_buckets: int
    method: Method
    keys: tuple[Key, ...] = ()  # every differing key, when only those are read (MERGE only)

    @property
    def filtered(self) -> bool:
        """Whether the source read and the lake delete are restricted to ``buckets``."""
        return self.mode == "buckets"

    @property
    def by_key(self) -> bool:
        """Whether only the rows of ``keys`` are read from the source and compared with the lake."""
        return bool(self.keys)

    def describe(self) -> str:
        what = f"{len(self.buckets)} of {self.total_buckets} bucket(s)" if self.filtered else f"the whole table ({len(self.buckets)} of {self.total_buckets} buckets differ)"
        if self.by_key:
            what = f"the {len(self.keys)} differing key(s) of {what}"
        return f"{what} by {'MERGE' if self.method == 'merge' else 'replaceWhere'}"


def choose_mode(differing: Sequence[str], total_buckets: int, whole_share: float = WHOLE_TABLE_SHARE) -> Mode:
    """Buckets while at most ``whole_share`` of them differ, else the whole table."""
    if total_buckets <= 0:
        raise ValueError(f"total_buckets must be positive, got {total_buckets}")
    return "table" if len(differing) > whole_share * total_buckets else "buckets"


def _check(report: TableReport, name: str) -> Check | None:
    return next((c for c in report.checks if c.name == name), None)


def differing_buckets(report: TableReport) -> tuple[str, ...] | None:
    """The buckets a report's checksum names as different (failed, or in flight on a streamed table);
    an empty tuple when the checksum is equal; None when no checksum was compared."""
    check = _check(report, "checksum")
    if check is None or check.status == "skipped":
        return None
    if check.status in ("fail", "in_flight"):
        return tuple(str(b) for b in check.details.get("buckets", ()))
    return ()


def refusal(report: TableReport, lake_columns: Sequence[str], lake_format: str, key: Sequence[str] = ()) -> str | None:
    """Why this table cannot be repaired in place (None: it can). Re-copying rows fixes content, not
    a missing table or a schema that differs. A table with history or soft deletes is repaired by key
    (lib/validate/repair_history.py): one without a primary key, or with duplicated current keys, is not."""
    if lake_format != "delta":
        return f"repair needs lake.format delta (this lake is {lake_format}): reload with jobs/bulk_load.py --tables {report.name} --no-resume"
    if any(c.name in ("lake_table", "error") and c.failed for c in report.checks):
        return f"the lake table cannot be read: reload with jobs/bulk_load.py --tables {report.name} --no-resume"
    schema = _check(report, "schema")
    if schema is not None and schema.failed:
        return f"the lake schema differs from the source: reload with jobs/bulk_load.py --tables {report.name} --no-resume"
    load = _check(report, "load_status")
    if load is not None and load.failed:
        return f"its bulk load is not completed: run jobs/bulk_load.py --tables {report.name}"
    if any(c in lake_columns for c in ("__is_current", "__is_deleted", "__valid_from")):
        key_check = _check(report, "primary_key")
        if not key or (key_check is not None and key_check.failed):
            return ("a table with history or soft deletes (cdc.history / cdc.deletes) is repaired by primary key, and this one has "
                    f"{'duplicated current keys' if key else 'none'}: reload with jobs/bulk_load.py --tables {report.name} --no-resume")
    return None


def needs_repair(report: TableReport) -> bool:
    """A table differs from its source: its checksum (or, without one, its row count) failed or is in flight."""
    buckets = differing_buckets(report)
    if buckets is not None:
        return bool(buckets)
    rows = _check(report, "row_count")
    return rows is not None and rows.status in ("fail", "in_flight")


def plan_table(report: TableReport, key: Sequence[str], total_buckets: int, whole_share: float = WHOLE_TABLE_SHARE,
               spec: RowSpec | None = None) -> RepairPlan:
    """The repair of one differing table. Without a compared checksum the whole table is re-copied.
    With ``spec`` (a plain table MERGEd by key), only the differing keys when :func:`lookup_keys` has them."""
    buckets = differing_buckets(report)
    mode: Mode = "table" if not buckets else choose_mode(buckets, total_buckets, whole_share)
    key_check = _check(report, "primary_key")
    method: Method = "merge" if key and not (key_check is not None and key_check.failed) else "replace"
    keys = lookup_keys(report, spec) if method == "merge" and spec is not None and buckets else None
    return RepairPlan(report.name, mode, tuple(buckets or ()), total_buckets, method, keys or ())


def lookup_keys(report: TableReport, spec: RowSpec, limit: int = MAX_LOOKUP_KEYS) -> tuple[Key, ...] | None:
    """Every differing key of the table, as values, when the repair can read only those rows: the
    checksum's drill-down named them all (``Check.keys``), there are at most ``limit``, and every key
    column is an integer (:data:`LOOKUP_KEY_TYPES`). None: read the differing buckets instead."""
    check = _check(report, "checksum")
    texts = check.keys if check is not None else None
    if not texts or not spec.key or len(texts) > limit:
        return None
    types = {r.name: r.spark_type for r in spec.reads}
    if any(types.get(k) not in LOOKUP_KEY_TYPES for k in spec.key):
        return None
    keys: set[Key] = set()
    for text in texts:
        try:
            values = render.parse_fields(text)
        except ValueError:
            return None
        if len(values) != len(spec.key) or not all(v is not None and _INTEGER.fullmatch(v) for v in values):
            return None
        keys.add(tuple(int(v) for v in values))  # type: ignore[arg-type]  # checked above: not None
    return tuple(sorted(keys))


def key_batches(keys: Sequence[Key], size: int) -> list[tuple[Key, ...]]:
    """``keys`` in runs of at most ``size`` (one source query each)."""
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return [tuple(keys[i : i + size]) for i in range(0, len(keys), size)]


def key_schema_ddl(spec: RowSpec) -> str:
    """The Spark schema of a DataFrame of the key values (the lake's key columns and types)."""
    types = {r.name: r.spark_type for r in spec.reads}
    return ", ".join(f"{q(k)} {types[k]}" for k in spec.key)


# ---------------------------------------------------------------- source SQL


def pg_repair_select_sql(table: Table, spec: RowSpec, plan: RepairPlan) -> str:
    """The loader's SELECT of the table, restricted to the plan's buckets (PostgreSQL)."""
    inner = pg_inner_sql(table, spec)
    if not plan.filtered:
        return inner
    row, key = pg_texts(table, spec)
    bucket = render.pg_bucket(key or row, spec.digits)
    listed = ", ".join(quote_literal(b) for b in plan.buckets)
    return f"SELECT q.* FROM ({inner}) AS q WHERE {bucket} IN ({listed})"


def pg_key_select_sql(table: Table, spec: RowSpec, keys: Sequence[Key]) -> str:
    """The loader's SELECT of the rows of ``keys`` (PostgreSQL): the predicate on the table's own key
    columns, which PostgreSQL pushes into the subquery and answers from the primary-key index."""
    if not keys or not spec.key:
        raise ValueError("a key lookup needs keys")
    cols = [render.pg_column("q", k) for k in spec.key]
    if len(cols) == 1:
        cond = f"{cols[0]} = ANY(ARRAY[{', '.join(str(int(k[0])) for k in keys)}]::bigint[])"
    else:
        rows = ", ".join("(" + ", ".join(f"{int(v)}::bigint" for v in k) + ")" for k in keys)
        cond = f"({', '.join(cols)}) IN (VALUES {rows})"
    return f"SELECT q.* FROM ({pg_inner_sql(table, spec)}) AS q WHERE {cond}"


def source_key_select_sql(dialect_name: str, inner_select: str, spec: RowSpec, keys: Sequence[Key]) -> str:
    """The same for Oracle and SQL Server (at most :data:`SOURCE_LOOKUP_BATCH` keys per query)."""
    if not keys or not spec.key:
        raise ValueError("a key lookup needs keys")
    s = sc.BY_DIALECT[dialect_name]
    cols = [s.column(k) for k in spec.key]
    if len(cols) == 1:
        cond = f"{cols[0]} IN ({', '.join(str(int(k[0])) for k in keys)})"
    else:
        cond = " OR ".join("(" + " AND ".join(f"{c} = {int(v)}" for c, v in zip(cols, k, strict=True)) + ")" for k in keys)
    return f"SELECT q.* FROM ({inner_select}){s.subquery_alias} WHERE {cond}"


def source_repair_select_sql(dialect_name: str, inner_select: str, spec: RowSpec, plan: RepairPlan) -> str:
    """The same for Oracle and SQL Server: ``inner_select`` is the dialect's own SELECT of the table."""
    if not plan.filtered:
        return inner_select
    s = sc.BY_DIALECT[dialect_name]
    reads = {r.name: r for r in spec.reads}

    def field(name: str) -> str:
        return s.field(s.value(s.column(name), reads[name].spark_type))

    text = s.join([field(c) for c in spec.key]) if spec.key else s.join([field(r.name) for r in spec.reads])
    listed = ", ".join(s.literal(b) for b in plan.buckets)
    return f"SELECT q.* FROM ({inner_select}){s.subquery_alias} WHERE {s.bucket(text, spec.digits)} IN ({listed})"


# ---------------------------------------------------------------- lake SQL


def q(name: str) -> str:
    """A Spark SQL identifier: backquoted, backquotes doubled."""
    return ident(name)


def _literals(buckets: Sequence[str]) -> str:
    return ", ".join("'" + b.replace("\\", "\\\\").replace("'", "\\'") + "'" for b in buckets)


def bucket_predicate(spec: RowSpec, plan: RepairPlan) -> str:
    """Spark SQL over the lake table's own columns: the row is in one of the plan's buckets (``TRUE``:
    the whole table). Also the ``replaceWhere`` of a bucket replacement."""
    if not plan.filtered:
        return "TRUE"
    return f"{spark_row_exprs(spec).bucket} IN ({_literals(plan.buckets)})"


def newer_than_snapshot(alias: str, position: int, commit: str = "`__source_commit_pos`", change: str = "`__source_change_pos`") -> str:
    """Spark SQL: the row (of ``alias``: a lake row, or a tombstone with the same position columns)
    comes from a change the snapshot at ``position`` cannot contain: the last commit before its
    transaction is after the snapshot (``__source_commit_pos > S``), or the change itself was written
    at or after it (``__source_change_pos >= S``). Such a row is the stream's, newer than the snapshot:
    the repair leaves it alone. Bulk and repaired rows (``__op = 'r'``) carry change position 0."""
    prefix = f"{alias}." if alias else ""
    return f"({prefix}{commit} > {int(position)} OR {prefix}{change} >= {int(position)})"


DELETE_FLAG = "__repair_delete"
ROW_HASH = "__repair_hash"


def merge_clauses(key: Sequence[str], columns: Sequence[str], position: int) -> MergeClauses:
    """The repair's MERGE as data, over the target ``t`` and the source ``s`` (Spark SQL, which delta-rs'
    DataFusion parser reads too): ``s`` holds the snapshot rows missing or differing in the lake, and
    ``DELETE_FLAG`` rows naming lake keys the snapshot lacks. Rows the stream has moved past the
    snapshot (:func:`newer_than_snapshot`) are never overwritten or deleted. ``columns``: the data
    columns and the added ``__`` columns, as the source holds them."""
    if not key:
        raise ValueError("a MERGE repair needs a primary key")
    keep = f"NOT {newer_than_snapshot('t', position)}"
    return MergeClauses(
        on=" AND ".join(f"t.{q(k)} = s.{q(k)}" for k in key),
        delete_when=f"s.{q(DELETE_FLAG)} AND {keep}",
        update_when=f"NOT s.{q(DELETE_FLAG)} AND {keep}",
        updates=tuple((q(c), f"s.{q(c)}") for c in columns if c not in key),
        insert_when=f"NOT s.{q(DELETE_FLAG)}",
        inserts=tuple((q(c), f"s.{q(c)}") for c in columns),
    )


def merge_sql(location: str, source_view: str, key: Sequence[str], columns: Sequence[str], position: int) -> str:
    """:func:`merge_clauses` as one Spark SQL MERGE statement reading the view ``source_view``."""
    return merge_statement(f"delta.{q(location)}", source_view, merge_clauses(key, columns, position))
