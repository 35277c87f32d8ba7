"""The lake read three ways, in one comparable form: delta-rs (DataFusion), Spark, and the source.

Timestamps become integer microseconds since 1970 (UTC instants; ``timestamp_ntz`` wall clocks as if UTC)
on every side, so values outside what Python's or PySpark's datetime conversions survive (year 1 in
PySpark, pre-1677 / post-2262 in nanosecond readers) compare exactly; everything else keeps its value.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder

from .compare import _float_eq, normalize, source_rows

EPOCH = datetime(1970, 1, 1)
MICRO = timedelta(microseconds=1)


def delta_rs_arrow(path: str) -> pa.Table:
    """The table as delta-rs's DataFusion reader returns it (column mapping and deletion vectors applied)."""
    return pa.table(QueryBuilder().register("t", DeltaTable(path)).execute("SELECT * FROM t").read_all())


def _micros_type(t: pa.DataType) -> pa.DataType | None:
    if pa.types.is_timestamp(t):
        return pa.int64()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _micros_type(t.value_type)
        return pa.list_(inner) if inner is not None else None
    return None


def arrow_rows(table: pa.Table, columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows of ``columns``: timestamps as microseconds (after a lossless cast to microseconds)."""
    arrays = []
    for name in columns:
        arr = table.column(name)
        target = _micros_type(arr.type)
        if target is not None:
            micros = pa.timestamp("us", arr.type.tz) if pa.types.is_timestamp(arr.type) else pa.list_(pa.timestamp("us", arr.type.value_type.tz))
            arr = arr.cast(micros).cast(target)  # raises if a value had sub-microsecond digits
        arrays.append(arr.to_pylist())
    return [canonical(row) for row in zip(*arrays, strict=True)]


def spark_rows(spark: Any, path: str, columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows of ``columns`` as Spark reads them; timestamps turned into microseconds inside Spark."""
    df = spark.read.format("delta").load(path)
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    exprs = []
    for name in columns:
        ref = "`" + name.replace("`", "``") + "`"
        kind = types[name]
        if kind in ("timestamp", "timestamp_ntz"):
            exprs.append(f"unix_micros(CAST({ref} AS timestamp)) AS {ref}")  # ntz as UTC: the session time zone
        elif kind in ("array<timestamp>", "array<timestamp_ntz>"):
            exprs.append(f"transform({ref}, x -> unix_micros(CAST(x AS timestamp))) AS {ref}")
        else:
            exprs.append(ref)
    return [canonical(tuple(r)) for r in df.selectExpr(*exprs).collect()]


class _UtcSource:
    """``src`` queried in a UTC session: timestamptz values come back as UTC instants (year 1 included)."""

    def __init__(self, src: Any) -> None:
        self.src, self.schema = src, src.schema

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        conn = self.src.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SET TIME ZONE 'UTC'")
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()


def source_table_rows(src: Any, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    columns, rows = source_rows(_UtcSource(src), src.schema, table)
    return columns, [canonical(r) for r in rows]


def canonical(value: Any) -> Any:
    value = normalize(value)
    if isinstance(value, tuple):
        return tuple(canonical(v) for v in value)
    if isinstance(value, datetime):
        return (value - EPOCH) // MICRO
    return value


def assert_same_rows(left: list[tuple[Any, ...]], right: list[tuple[Any, ...]], columns: list[str], key: str, what: str) -> None:
    """Row sets equal by ``key``, every value equal (NaN equals NaN, float32 compared as float32)."""
    k = columns.index(key)
    lmap, rmap = {r[k]: r for r in left}, {r[k]: r for r in right}
    assert len(lmap) == len(left) and len(rmap) == len(right), f"{what}: duplicate keys"
    assert set(lmap) == set(rmap), f"{what}: keys differ: only left {sorted(set(lmap) - set(rmap))[:5]}, only right {sorted(set(rmap) - set(lmap))[:5]}"
    for key_value, lrow in lmap.items():
        for name, lv, rv in zip(columns, lrow, rmap[key_value], strict=True):
            assert _float_eq(lv, rv), f"{what}: key {key_value!r} column {name!r}: {lv!r} != {rv!r}"
