"""Value-by-value comparison of a lake table with its source table.

The source side is read independently of the pipeline, in the value each contract type must have in
the lake (docs/reference.md): native Python values where psycopg2 has exact ones, PostgreSQL's own
text output for the types the contract stores as text, and numbers for money.
"""

from __future__ import annotations

import struct
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

TEXT_TYPES = {"time", "timetz", "interval", "uuid", "inet", "cidr", "macaddr", "json", "jsonb", "xml", "bit", "varbit"}


def source_rows(src: Any, schema: str, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cols = src.query(
        """SELECT a.attname, t.typname, t.typtype, t.typcategory, et.typname
           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
           WHERE a.attrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass AND a.attnum > 0 AND NOT a.attisdropped
           ORDER BY a.attnum""",
        (schema, table),
    )
    exprs = []
    for name, typname, typtype, category, elem in cols:
        ident = '"' + name.replace('"', '""') + '"'
        if category == "A" and elem not in ("int2", "int4", "int8", "float4", "float8", "bool", "text", "varchar", "bpchar", "date", "timestamp", "timestamptz", None):
            exprs.append(f"{ident}::text[]")
        elif typname == "inet":  # the output function's form (psql's), not the cast that keeps /32
            exprs.append(f"abbrev({ident})")
        elif typname in TEXT_TYPES or typtype == "e":
            exprs.append(f"{ident}::text")
        elif typname == "money":
            exprs.append(f"{ident}::numeric")
        else:
            exprs.append(ident)
    rows = src.query(f'SELECT {", ".join(exprs)} FROM "{schema.replace(chr(34), chr(34) * 2)}"."{table.replace(chr(34), chr(34) * 2)}"')
    return [c[0] for c in cols], rows


def normalize(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(normalize(v) for v in value)
    if isinstance(value, (memoryview, bytearray)):
        return bytes(value)
    if isinstance(value, float):
        return value
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _float_eq(a: Any, b: Any) -> bool:
    """Equal values: floats compared at float32 when one side is float32, decimals by value (never
    rounded), decimals stored as text (numeric too wide for any decimal type) by their exact value."""
    if isinstance(a, str) and isinstance(b, Decimal):
        a, b = b, a
    if isinstance(a, Decimal) and isinstance(b, str):
        return (a.is_finite() and Decimal(b) == a) or (not a.is_finite() and str(a) == b)
    if isinstance(a, float) and isinstance(b, float):
        if a != a and b != b:  # NaN
            return True
        return a == b or struct.pack("f", a) == struct.pack("f", b)
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return all(_float_eq(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _multiset_repr(row: tuple[Any, ...]) -> str:
    """Rows as comparable text; floats squeezed to float32 so real columns compare by value."""
    return repr(tuple(struct.unpack("f", struct.pack("f", v))[0] if isinstance(v, float) and v == v else v for v in row))


def lake_rows(spark: Any, path: str, columns: list[str], fmt: str = "delta") -> list[tuple[Any, ...]]:
    df = spark.read.format(fmt).load(path)
    return [tuple(r) for r in df.select(*[f"`{c.replace('`', '``')}`" for c in columns]).collect()]


def assert_lake_equals_source(spark: Any, src: Any, table: str, key: list[str] | None = None, fmt: str = "delta") -> int:
    """Every row and value of the lake table equals the source table now; returns the row count."""
    columns, expected = source_rows(src, src.schema, table)
    return assert_lake_equals_rows(spark, src.lake_path(table), columns, expected, key, fmt, table)


def assert_lake_equals_rows(
    spark: Any, path: str, columns: list[str], expected: list[tuple[Any, ...]], key: list[str] | None, fmt: str = "delta", table: str = ""
) -> int:
    """The lake table at ``path`` holds exactly ``expected`` (rows from :func:`source_rows`)."""
    actual = lake_rows(spark, path, columns, fmt)
    exp = [tuple(normalize(v) for v in r) for r in expected]
    act = [tuple(normalize(v) for v in r) for r in actual]
    assert len(act) == len(exp), f"{table}: lake has {len(act)} rows, source has {len(exp)}"
    if key:
        idx = [columns.index(k) for k in key]
        exp_by = {tuple(r[i] for i in idx): r for r in exp}
        act_by: dict[Any, Any] = {}
        for r in act:
            k = tuple(r[i] for i in idx)
            assert k not in act_by, f"{table}: duplicate key {k} in the lake"
            act_by[k] = r
        assert set(act_by) == set(exp_by), f"{table}: keys differ: missing {list(set(exp_by) - set(act_by))[:5]}, extra {list(set(act_by) - set(exp_by))[:5]}"
        for k, e in exp_by.items():
            a = act_by[k]
            for name, ev, av in zip(columns, e, a, strict=True):
                assert _float_eq(ev, av), f"{table} key {k} column {name!r}: source {ev!r} != lake {av!r}"
    else:
        fe, fa = Counter(map(_multiset_repr, exp)), Counter(map(_multiset_repr, act))
        assert fe == fa, f"{table}: row multisets differ: missing {list((fe - fa).elements())[:3]}, extra {list((fa - fe).elements())[:3]}"
    return len(act)
