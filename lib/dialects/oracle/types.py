"""Oracle column types -> lake types, and the SELECT expression reading each one exactly (pure).

Spark's Oracle dialect reads NUMBER and FLOAT without precision as decimal(38,10), rounding every
value with more than 10 fraction digits, and reads TIMESTAMP WITH TIME ZONE through the driver's
session zone. So every column is selected by an explicit expression here, and the lake type is the
contract's (docs/reference.md):

| Oracle | lake | read as |
|---|---|---|
| NUMBER(p,s), 0 <= s <= p <= 38 | decimal(p,s) | the column |
| NUMBER(p,s), s < 0 | decimal(p-s,0) (string beyond 38 digits) | CAST to NUMBER(p-s,0) |
| NUMBER(p,s), s > p | decimal(s,s) | CAST to NUMBER(s,s) |
| NUMBER, FLOAT(b) without a decimal precision | narrowest decimal holding every value present, else string | measured first (profile_sql) |
| BINARY_FLOAT, BINARY_DOUBLE | float, double | the column |
| DATE | timestamp_ntz (keeps the time of day) | CAST AS TIMESTAMP(0) |
| TIMESTAMP(0..6) | timestamp_ntz | the column |
| TIMESTAMP(7..9) | string `YYYY-MM-DD HH24:MI:SS.FFn` (nanoseconds kept) | TO_CHAR |
| TIMESTAMP(0..6) WITH [LOCAL] TIME ZONE | timestamp (the same instant) | SYS_EXTRACT_UTC |
| TIMESTAMP(7..9) WITH [LOCAL] TIME ZONE | string `...FFnZ` in UTC | TO_CHAR(SYS_EXTRACT_UTC) |
| INTERVAL YEAR TO MONTH, INTERVAL DAY TO SECOND | string, Oracle's text (`+02-03`, `+01 02:03:04.500000`) | TO_CHAR |
| CHAR, NCHAR, VARCHAR2, NVARCHAR2, CLOB, NCLOB | string | the column |
| RAW, BLOB | binary | the column |
| XMLTYPE | string (serialized) | XMLSERIALIZE |
| JSON (21c) | string | JSON_SERIALIZE |
| BOOLEAN (23ai) | boolean | the column |
| ROWID, UROWID | string | ROWIDTOCHAR / CAST |
| LONG, LONG RAW | per `long_columns`: left out, table skipped, or the table fails | - |
| BFILE | left out of the lake table, with a warning (a pointer to a file outside the database) | - |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lib.dialects.base import Column, ColumnRead
from lib.dialects.oracle.sql import base_type, quote_ident
from lib.dialects.postgres.types import DEFAULT_UNBOUNDED_DECIMAL, MAX_DECIMAL_PRECISION, decimal_for_profile

NATIVE: dict[str, str] = {
    "BINARY_FLOAT": "float",
    "BINARY_DOUBLE": "double",
    "CHAR": "string",
    "NCHAR": "string",
    "VARCHAR2": "string",
    "VARCHAR": "string",
    "NVARCHAR2": "string",
    "CLOB": "string",
    "NCLOB": "string",
    "RAW": "binary",
    "BLOB": "binary",
    "BOOLEAN": "boolean",
}
LONG_TYPES = ("LONG", "LONG RAW")
SKIPPED_TYPES = ("BFILE",)  # always left out, with a warning
MICROS = 6  # the lake's timestamps hold microseconds


class UnsupportedColumn(ValueError):
    """A column the loader cannot read without losing data: the table fails loudly naming it."""


def precision_of(col: Column) -> int | None:
    value = col.info("precision")
    return None if value is None else int(value)


def scale_of(col: Column) -> int | None:
    value = col.info("scale")
    return None if value is None else int(value)


def fraction_digits(col: Column, default: int = 6) -> int:
    """Fractional-second digits of TIMESTAMP(n) / INTERVAL DAY TO SECOND(n) (catalog DATA_SCALE)."""
    scale = scale_of(col)
    if scale is not None:
        return scale
    match = re.search(r"TIMESTAMP\((\d)\)", str(col.info("data_type") or col.source_type).upper())
    return int(match.group(1)) if match else default


def column_read(col: Column, profile: Mapping[str, Any] | None = None) -> ColumnRead:
    """How to read ``col``: the SELECT expression and the lake (Spark DDL) type."""
    ident = quote_ident(col.name)
    kind = base_type(col)
    if kind in NATIVE:
        return ColumnRead(col.name, ident, NATIVE[kind])
    if kind in ("NUMBER", "FLOAT", "INTEGER"):
        return _number_read(col, ident, kind, (profile or {}).get(col.name))
    if kind == "DATE":
        return ColumnRead(col.name, f"CAST({ident} AS TIMESTAMP(0)) AS {ident}", "timestamp_ntz")
    if kind == "TIMESTAMP":
        digits = fraction_digits(col)
        if digits <= MICROS:
            return ColumnRead(col.name, ident, "timestamp_ntz")
        return ColumnRead(col.name, f"TO_CHAR({ident}, 'YYYY-MM-DD HH24:MI:SS.FF{digits}') AS {ident}", "string")
    if kind in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH LOCAL TIME ZONE"):
        utc = f"SYS_EXTRACT_UTC({ident})" if kind == "TIMESTAMP WITH TIME ZONE" else f"SYS_EXTRACT_UTC(CAST({ident} AS TIMESTAMP WITH TIME ZONE))"
        digits = fraction_digits(col)
        if digits <= MICROS:
            return ColumnRead(col.name, f"{utc} AS {ident}", "timestamp")
        return ColumnRead(col.name, f"TO_CHAR({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS.FF{digits}\"Z\"') AS {ident}", "string")
    if kind.startswith("INTERVAL"):
        return ColumnRead(col.name, f"TO_CHAR({ident}) AS {ident}", "string")
    if kind == "XMLTYPE":
        return ColumnRead(col.name, f"XMLSERIALIZE(CONTENT {ident} AS CLOB) AS {ident}", "string")
    if kind == "JSON":
        return ColumnRead(col.name, f"JSON_SERIALIZE({ident} RETURNING CLOB) AS {ident}", "string")
    if kind == "ROWID":
        return ColumnRead(col.name, f"ROWIDTOCHAR({ident}) AS {ident}", "string")
    if kind == "UROWID":
        return ColumnRead(col.name, f"CAST({ident} AS VARCHAR2(4000)) AS {ident}", "string")
    if kind in LONG_TYPES:
        raise UnsupportedColumn(
            f"column {col.name} is {kind}: Spark cannot page it and Debezium cannot stream it; set "
            "sources.<name>.long_columns to exclude (leave the column out) or skip_table"
        )
    raise UnsupportedColumn(f"column {col.name} has type {col.source_type}, which the oracle dialect cannot read exactly")


def _number_read(col: Column, ident: str, kind: str, stats: Mapping[str, Any] | None) -> ColumnRead:
    precision, scale = precision_of(col), scale_of(col)
    if kind != "FLOAT" and precision is None and scale == 0:  # INTEGER, NUMBER(*,0): at most 38 digits
        return ColumnRead(col.name, ident, f"decimal({MAX_DECIMAL_PRECISION},0)")
    if kind != "FLOAT" and precision is not None:
        scale = scale or 0
        if 0 <= scale <= precision <= MAX_DECIMAL_PRECISION:
            return ColumnRead(col.name, ident, f"decimal({precision},{scale})")
        if scale < 0 and precision - scale <= MAX_DECIMAL_PRECISION:
            digits = precision - scale
            return ColumnRead(col.name, f"CAST({ident} AS NUMBER({digits},0)) AS {ident}", f"decimal({digits},0)")
        if scale > precision:
            return ColumnRead(col.name, f"CAST({ident} AS NUMBER({scale},{scale})) AS {ident}", f"decimal({scale},{scale})")
        return ColumnRead(col.name, f"{number_text(ident)} AS {ident}", "string")
    # NUMBER without precision, FLOAT(b) (binary precision): measured from the data
    if stats is None:
        return ColumnRead(col.name, ident, DEFAULT_UNBOUNDED_DECIMAL, needs_profile=True)
    lake_type = decimal_for_profile(stats)
    if lake_type == "string":
        return ColumnRead(col.name, f"{number_text(ident)} AS {ident}", "string", needs_profile=True)
    p, s = lake_type[len("decimal(") : -1].split(",")
    return ColumnRead(col.name, f"CAST({ident} AS NUMBER({p},{s})) AS {ident}", lake_type, needs_profile=True)


def number_text(expr: str) -> str:
    """A NUMBER as plain decimal text with a leading zero (``0.5``, ``-0.5``), as Java's
    BigDecimal.toPlainString prints it (what Debezium sends with decimal.handling.mode=string);
    TO_CHAR's TM9 writes ``.5`` and switches to E-notation only beyond 64 characters."""
    text = _tm9(expr)
    return f"REGEXP_REPLACE({text}, '^(-?)\\.', '\\10.')"


def profile_sql(qualified_table: str, columns: list[str], flashback: str = "") -> str:
    """One aggregate query measuring every unmeasured NUMBER column: digits after the point, digits
    before it, values TM9 can only write in E-notation (too wide for any decimal), non-null count.
    The inner query renders each value once as text (``t<i>``)."""
    texts = ", ".join(f"{_tm9(f'ABS({quote_ident(name)})')} AS t{i}" for i, name in enumerate(columns))
    parts = []
    for i in range(len(columns)):
        t, plain = f"t{i}", f"CASE WHEN INSTR(t{i}, 'E') = 0 THEN t{i} END"
        parts.append(
            f"MAX(CASE WHEN INSTR({plain}, '.') > 0 THEN LENGTH({t}) - INSTR({t}, '.') ELSE 0 END), "
            f"MAX(CASE WHEN INSTR({plain}, '.') > 0 THEN INSTR({t}, '.') - 1 ELSE LENGTH({plain}) END), "
            f"COUNT(CASE WHEN INSTR({t}, 'E') > 0 THEN 1 END), COUNT({t})"
        )
    return f"SELECT {', '.join(parts)} FROM (SELECT {texts} FROM {qualified_table}{flashback})"


def _tm9(expr: str) -> str:
    """``expr`` as TO_CHAR's text-minimum form with '.' as the decimal separator."""
    return f"TO_CHAR({expr}, 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,''')"
