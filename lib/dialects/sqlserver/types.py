"""SQL Server column types -> lake types, and the SELECT expression reading each one exactly (pure).

| SQL Server | lake | read as |
|---|---|---|
| bit | boolean | the column |
| tinyint (0..255) | smallint | CAST (Spark's dialect may map it to a signed byte) |
| smallint, int, bigint | smallint, int, bigint | the column |
| real, float(1..24) / float(25..53) | float / double | the column |
| decimal(p,s), numeric(p,s) | decimal(p,s) | the column |
| money / smallmoney | decimal(19,4) / decimal(10,4) | CAST |
| char, varchar, text, nchar, nvarchar, ntext, sysname | string | the column (text/ntext CAST to (n)varchar(max)) |
| date | date | the column |
| datetime, smalldatetime | timestamp_ntz | the column (datetime's 1/300 s ticks arrive as .000/.003/.007) |
| datetime2(0..7) | timestamp_ntz, microseconds: datetime2(7)'s 7th digit (100 ns) is cut off, never rounded | the column |
| datetimeoffset(n) | timestamp, the same instant (microseconds, 100 ns cut off) | SWITCHOFFSET to UTC as datetime2 |
| time(n) | string `HH:MM:SS[.ffffff]`, at most 6 fraction digits (100 ns cut off) | CONVERT + LEFT |
| uniqueidentifier | string, upper-case as SQL Server writes it | CONVERT(char(36)) |
| binary, varbinary, image, rowversion/timestamp | binary | the column (image CAST to varbinary(max)) |
| xml | string | CAST to nvarchar(max) |
| hierarchyid, geometry, geography | string, their ToString() text (WKT for spatial types; SRID not kept) | .ToString() |
| sql_variant | string: the value CAST to nvarchar(4000) | CAST |
"""

from __future__ import annotations

from lib.dialects.base import Column, ColumnRead
from lib.dialects.sqlserver.sql import base_type, quote_ident

NATIVE: dict[str, str] = {
    "bit": "boolean",
    "smallint": "smallint",
    "int": "int",
    "bigint": "bigint",
    "real": "float",
    "char": "string",
    "varchar": "string",
    "nchar": "string",
    "nvarchar": "string",
    "sysname": "string",
    "date": "date",
    "datetime": "timestamp_ntz",
    "smalldatetime": "timestamp_ntz",
    "datetime2": "timestamp_ntz",
    "binary": "binary",
    "varbinary": "binary",
    "timestamp": "binary",  # rowversion
    "rowversion": "binary",
}
MAX_DECIMAL_PRECISION = 38


class UnsupportedColumn(ValueError):
    """A column the loader cannot read without losing data: the table fails loudly naming it."""


def _int_info(col: Column, key: str) -> int | None:
    value = col.info(key)
    return None if value is None else int(value)


def column_read(col: Column) -> ColumnRead:
    ident = quote_ident(col.name)
    kind = base_type(col)
    if kind == "float":
        precision = _int_info(col, "precision") or 53
        return ColumnRead(col.name, ident, "float" if precision <= 24 else "double")
    if kind in NATIVE:
        return ColumnRead(col.name, ident, NATIVE[kind])
    if kind == "tinyint":
        return ColumnRead(col.name, f"CAST({ident} AS smallint) AS {ident}", "smallint")
    if kind in ("decimal", "numeric"):
        precision, scale = _int_info(col, "precision") or 18, _int_info(col, "scale") or 0
        return ColumnRead(col.name, ident, f"decimal({precision},{scale})")
    if kind == "money":
        return ColumnRead(col.name, f"CAST({ident} AS decimal(19,4)) AS {ident}", "decimal(19,4)")
    if kind == "smallmoney":
        return ColumnRead(col.name, f"CAST({ident} AS decimal(10,4)) AS {ident}", "decimal(10,4)")
    if kind == "text":
        return ColumnRead(col.name, f"CAST({ident} AS varchar(max)) AS {ident}", "string")
    if kind == "ntext":
        return ColumnRead(col.name, f"CAST({ident} AS nvarchar(max)) AS {ident}", "string")
    if kind == "image":
        return ColumnRead(col.name, f"CAST({ident} AS varbinary(max)) AS {ident}", "binary")
    if kind == "datetimeoffset":
        return ColumnRead(col.name, f"CAST(SWITCHOFFSET({ident}, '+00:00') AS datetime2(7)) AS {ident}", "timestamp")
    if kind == "time":
        scale = _int_info(col, "scale")
        digits = 7 if scale is None else scale
        width = 8 + (min(digits, 6) + 1 if digits else 0)  # HH:MM:SS[.ffffff]
        return ColumnRead(col.name, f"LEFT(CONVERT(varchar(16), {ident}), {width}) AS {ident}", "string")
    if kind == "uniqueidentifier":
        return ColumnRead(col.name, f"CONVERT(char(36), {ident}) AS {ident}", "string")
    if kind == "xml":
        return ColumnRead(col.name, f"CAST({ident} AS nvarchar(max)) AS {ident}", "string")
    if kind in ("hierarchyid", "geometry", "geography"):
        return ColumnRead(col.name, f"{ident}.ToString() AS {ident}", "string")
    if kind == "sql_variant":
        return ColumnRead(col.name, f"CAST({ident} AS nvarchar(4000)) AS {ident}", "string")
    raise UnsupportedColumn(f"column {col.name} has type {col.source_type}, which the sqlserver dialect cannot read exactly")
