"""Checksum queries: per-bucket row counts and hash sums, as PostgreSQL SQL and Spark SQL (pure).

Both sides select the same three values per row, built by :mod:`lib.validate.render`:

- ``b``: the bucket, the first hex digit(s) of the md5 of the key text (tables without a primary key:
  of the row text, so each bucket is a stable slice of the row multiset);
- ``k``: the key text (NULL without a primary key);
- ``h``: the row hash, a non-negative 60-bit integer.

A bucket's ``count(*)`` and ``sum(h)`` (numeric on PostgreSQL, decimal(38,0) in Spark) then agree on
both sides exactly when the bucket holds the same rows, in any order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lib.dialects.base import ColumnRead, Table
from lib.dialects.postgres.sql import quote_literal, select_sql
from lib.spark_sql import ident
from lib.validate import render


@dataclass(frozen=True)
class RowSpec:
    """What to render: the columns with their lake types, and the key columns (empty: no key)."""

    reads: tuple[ColumnRead, ...]
    key: tuple[str, ...]
    digits: int  # hex digits of the bucket


def _read(spec: RowSpec, name: str) -> ColumnRead:
    for read in spec.reads:
        if read.name == name:
            return read
    raise KeyError(name)


# ---------------------------------------------------------------- PostgreSQL


def pg_texts(table: Table, spec: RowSpec, alias: str = "q") -> tuple[str, str | None]:
    """(row text, key text or None without a key) over the columns of ``alias``, the loader's SELECT."""

    def field(name: str) -> str:
        read = _read(spec, name)
        try:
            col = table.column(name)
            typname, elem = col.info("typname"), col.info("elem_typname")
        except KeyError:
            typname = elem = None
        return render.pg_field(render.pg_value(render.pg_column(alias, name), read.spark_type, typname, elem))

    row = render.pg_join([field(r.name) for r in spec.reads])
    key = render.pg_join([field(c) for c in spec.key]) if spec.key else None
    return row, key


def pg_inner_sql(table: Table, spec: RowSpec) -> str:
    """The bulk loader's SELECT of every column, values converted as it reads them."""
    return select_sql(table, [r.select_sql for r in spec.reads], None)


def pg_rendered_sql(table: Table, spec: RowSpec) -> str:
    """``SELECT b, k, h`` per row of the source table; values converted as the bulk loader reads them."""
    row, key = pg_texts(table, spec)
    bucket = render.pg_bucket(key or row, spec.digits)
    return f"SELECT {bucket} AS b, {key or 'NULL::text'} AS k, {render.pg_hash60(row)} AS h FROM ({pg_inner_sql(table, spec)}) AS q"


def pg_bucket_sums_sql(table: Table, spec: RowSpec) -> str:
    return f"SELECT r.b, count(*), sum(r.h) FROM ({pg_rendered_sql(table, spec)}) AS r GROUP BY r.b"


def pg_drill_down_sql(table: Table, spec: RowSpec, buckets: Sequence[str]) -> str:
    """Key text and row hash of every row in ``buckets``."""
    listed = ", ".join(quote_literal(b) for b in buckets)
    return f"SELECT r.k, r.h FROM ({pg_rendered_sql(table, spec)}) AS r WHERE r.b IN ({listed})"


# ---------------------------------------------------------------- Spark


@dataclass(frozen=True)
class SparkRowExprs:
    bucket: str
    key: str
    hash: str


def spark_row_exprs(spec: RowSpec) -> SparkRowExprs:
    """Spark SQL expressions of ``b``, ``k`` and ``h`` over the lake table's columns."""

    def field(name: str) -> str:
        return render.spark_field(render.spark_value(ident(name), _read(spec, name).spark_type))

    row = render.spark_join([field(r.name) for r in spec.reads])
    key = render.spark_join([field(c) for c in spec.key]) if spec.key else None
    return SparkRowExprs(
        bucket=render.spark_bucket(key or row, spec.digits),
        key=key or "CAST(NULL AS string)",
        hash=render.spark_hash60(row),
    )
