"""PostgreSQL column types -> lake types, and the SELECT expression that reads each one (pure).

The type mapping of docs/reference.md is implemented here. Types Spark's JDBC reader would
get wrong are cast on the server: to text (time, interval, uuid, inet, enum, json, ...), to a bounded
numeric (money), or to a numeric whose precision is measured from the data (numeric without precision).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lib.dialects.base import Column, ColumnRead
from lib.dialects.postgres.sql import quote_ident

# Types Spark's JDBC reader maps correctly by itself: typname -> lake type.
NATIVE: dict[str, str] = {
    "int2": "smallint",
    "int4": "int",
    "int8": "bigint",
    "float4": "float",
    "float8": "double",
    "bool": "boolean",
    "text": "string",
    "varchar": "string",
    "bpchar": "string",
    "date": "date",
    "timestamp": "timestamp_ntz",
    "timestamptz": "timestamp",
    "bytea": "binary",
}
# Array element types Spark reads natively (other element types are read as text[]).
NATIVE_ELEMENTS = ("int2", "int4", "int8", "float4", "float8", "bool", "text", "varchar", "bpchar", "date", "timestamp", "timestamptz")
MONEY_TYPE = "decimal(19,2)"  # money's range (+-92233720368547758.07) at the default 2 fraction digits
MAX_DECIMAL_PRECISION = 38  # Spark's DecimalType limit
DEFAULT_UNBOUNDED_DECIMAL = "decimal(38,18)"  # numeric without precision whose column holds no value

_NUMERIC = re.compile(r"^numeric\((\d+),(-?\d+)\)$")


def column_read(col: Column, profile: Mapping[str, Any] | None = None) -> ColumnRead:
    """How to read ``col``: the SELECT expression and the lake (Spark DDL) type."""
    ident = quote_ident(col.name)
    typname = col.info("typname")
    if col.info("typcategory") == "A":
        return _array_read(col, ident)
    if typname in NATIVE:
        return ColumnRead(col.name, ident, NATIVE[typname])
    if typname == "numeric":
        bounded = _bounded_numeric(col.source_type)
        if bounded:
            return ColumnRead(col.name, ident, f"decimal({bounded[0]},{bounded[1]})")
        return _profiled_numeric(col, ident, (profile or {}).get(col.name))
    if typname == "money":
        return ColumnRead(col.name, f"{ident}::numeric(19,2) AS {ident}", MONEY_TYPE)
    if typname == "inet":
        # The output function's form (what psql shows, and what Debezium sends): abbrev(inet) returns
        # exactly that, while the explicit cast inet::text always appends the netmask (/32, /128).
        return ColumnRead(col.name, f"abbrev({ident}) AS {ident}", "string")
    # time, timetz, interval, uuid, cidr, macaddr, json, jsonb, xml, bit, enums, ranges, ...:
    # the server's own text output is the canonical form.
    return ColumnRead(col.name, f"{ident}::text AS {ident}", "string")


def _array_read(col: Column, ident: str) -> ColumnRead:
    element = col.info("elem_typname")
    if element in NATIVE_ELEMENTS:
        return ColumnRead(col.name, ident, f"array<{NATIVE[element]}>")
    if element == "numeric" and col.source_type.endswith("[]"):
        bounded = _bounded_numeric(col.source_type[:-2])
        if bounded:
            return ColumnRead(col.name, ident, f"array<decimal({bounded[0]},{bounded[1]})>")
    # other element types, and numeric[] without precision (not measured): the elements' text form
    return ColumnRead(col.name, f"{ident}::text[] AS {ident}", "array<string>")


def _bounded_numeric(source_type: str) -> tuple[int, int] | None:
    match = _NUMERIC.match(source_type.replace(" ", ""))
    if not match:
        return None
    precision, scale = int(match.group(1)), int(match.group(2))
    if precision > MAX_DECIMAL_PRECISION or scale < 0 or scale > precision:
        return None
    return precision, scale


def _profiled_numeric(col: Column, ident: str, stats: Mapping[str, Any] | None) -> ColumnRead:
    if stats is None:
        return ColumnRead(col.name, ident, DEFAULT_UNBOUNDED_DECIMAL, needs_profile=True)
    lake_type = decimal_for_profile(stats)
    if lake_type == "string":
        return ColumnRead(col.name, f"{ident}::text AS {ident}", "string", needs_profile=True)
    return ColumnRead(col.name, f"{ident}::{lake_type.replace('decimal', 'numeric')} AS {ident}", lake_type, needs_profile=True)


def decimal_for_profile(stats: Mapping[str, Any]) -> str:
    """The narrowest ``decimal(p,s)`` holding every value described by ``stats``, else ``"string"``.

    ``stats`` has ``max_scale`` (digits after the point), ``max_int_digits`` (digits before it),
    ``specials`` (count of NaN / Infinity) and ``non_null`` (count of values).
    """
    if stats.get("specials"):
        return "string"
    if not stats.get("non_null"):
        return DEFAULT_UNBOUNDED_DECIMAL
    scale = int(stats.get("max_scale") or 0)
    int_digits = max(int(stats.get("max_int_digits") or 1), 1)
    precision = int_digits + scale
    if precision > MAX_DECIMAL_PRECISION:
        return "string"
    return f"decimal({precision},{scale})"


def profile_sql(qualified_table: str, columns: list[str]) -> str:
    """One aggregate query measuring every unbounded numeric column of a table."""
    parts = []
    for name in columns:
        c = quote_ident(name)
        finite = f"CASE WHEN {c} IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE {c} END"
        parts.append(
            f"max(scale({finite})), max(length(trunc(abs({finite}))::text)), "
            f"count(*) FILTER (WHERE {c} IN ('NaN', 'Infinity', '-Infinity')), count({c})"
        )
    return f"SELECT {', '.join(parts)} FROM {qualified_table}"


def parse_profile(columns: list[str], row: tuple[Any, ...]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(columns):
        max_scale, max_int, specials, non_null = row[4 * i : 4 * i + 4]
        out[name] = {"max_scale": max_scale, "max_int_digits": max_int, "specials": specials, "non_null": non_null}
    return out
