"""Checksum queries for Oracle and SQL Server sources: the same ``b``, ``k``, ``h`` per row as
lib/validate/checksum_sql.py builds for PostgreSQL and Spark (pure). Aggregates come back as text, so
sums of 60-bit hashes need no numeric type mapping on the way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lib.dialects.base import Table
from lib.validate import render_source as rs
from lib.validate.checksum_sql import RowSpec


@dataclass(frozen=True)
class SourceSql:
    """One source dialect's rendering functions."""

    value: Callable[[str, str], str]
    field: Callable[[str], str]
    join: Callable[[list[str]], str]
    hash60: Callable[[str], str]
    bucket: Callable[[str, int], str]
    column: Callable[[str], str]  # the inner query's column reference
    null_text: str
    literal: Callable[[str], str]
    subquery_alias: str  # " q" (Oracle) / " AS q"


ORACLE = SourceSql(rs.ora_value, rs.ora_field, rs.ora_join, rs.ora_hash60, rs.ora_bucket, lambda n: 'q."' + n + '"', "CAST(NULL AS VARCHAR2(1))", lambda v: "'" + v.replace("'", "''") + "'", " q")
TSQL = SourceSql(rs.tsql_value, rs.tsql_field, rs.tsql_join, rs.tsql_hash60, rs.tsql_bucket, lambda n: "q.[" + n.replace("]", "]]") + "]", "CAST(NULL AS nvarchar(1))", lambda v: "N'" + v.replace("'", "''") + "'", " AS q")
BY_DIALECT = {"oracle": ORACLE, "sqlserver": TSQL}


def rendered_sql(dialect_name: str, inner_select: str, spec: RowSpec) -> str:
    """``SELECT b, k, h`` per row of ``inner_select`` (the loader's own SELECT of the table). Each value's
    text is computed once (``v<i>``), each row's and key's text once (``rt``, ``kt``)."""
    s = BY_DIALECT[dialect_name]
    names = [r.name for r in spec.reads]
    values = ", ".join(f"{s.value(s.column(r.name), r.spark_type)} AS v{i}" for i, r in enumerate(spec.reads))
    row = s.join([s.field(f"t1.v{i}") for i in range(len(names))])
    key = s.join([s.field(f"t1.v{names.index(c)}") for c in spec.key]) if spec.key else s.null_text
    texts = f"SELECT {row} AS rt, {key} AS kt FROM (SELECT {values} FROM ({inner_select}){s.subquery_alias}){s.subquery_alias.replace('q', 't1')}"
    bucket = s.bucket("t2.kt" if spec.key else "t2.rt", spec.digits)
    return f"SELECT {bucket} AS b, t2.kt AS k, {s.hash60('t2.rt')} AS h FROM ({texts}){s.subquery_alias.replace('q', 't2')}"


def bucket_sums_sql(dialect_name: str, inner_select: str, spec: RowSpec) -> str:
    cast = "TO_CHAR(SUM(r.h))" if dialect_name == "oracle" else "CONVERT(varchar(40), SUM(CAST(r.h AS decimal(38,0))))"
    alias = " r" if dialect_name == "oracle" else " AS r"
    return f"SELECT r.b, COUNT(*) AS n, {cast} AS s FROM ({rendered_sql(dialect_name, inner_select, spec)}){alias} GROUP BY r.b"


def drill_down_sql(dialect_name: str, inner_select: str, spec: RowSpec, buckets: Sequence[str]) -> str:
    s = BY_DIALECT[dialect_name]
    alias = " r" if dialect_name == "oracle" else " AS r"
    listed = ", ".join(s.literal(b) for b in buckets)
    h = "TO_CHAR(r.h)" if dialect_name == "oracle" else "CONVERT(varchar(20), r.h)"
    return f"SELECT r.k, {h} AS h FROM ({rendered_sql(dialect_name, inner_select, spec)}){alias} WHERE r.b IN ({listed})"


def inner_select(dialect: object, table: Table, spec: RowSpec) -> str:
    """The loader's SELECT of every column (no snapshot: validation reads the current state)."""
    return dialect.select_sql(table, spec.reads, None)  # type: ignore[attr-defined]
