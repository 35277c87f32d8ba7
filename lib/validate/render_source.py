"""The canonical row text of lib/validate/render.py, as Oracle SQL and as T-SQL (pure).

The same rules as PostgreSQL's (render.py's table), rendered from the value the bulk loader's SELECT
produced for each column (so by its *lake* type):

| lake type | Oracle | T-SQL |
|---|---|---|
| decimal(p,s) | TO_CHAR with an FM mask of p-s integer and s fraction digits | CONVERT(varchar, CAST(x AS decimal(p,s))) |
| integers | TO_CHAR(x) | CONVERT(varchar(20), x) |
| boolean | 'true' / 'false' | bit 1 / 0 -> 'true' / 'false' |
| float / double | IEEE bits of UTL_RAW.CAST_FROM_BINARY_FLOAT/DOUBLE as a signed integer | CAST(CAST(x AS binary(4/8)) AS int/bigint) |
| string | the string | the string |
| date | days since 1970-01-01 | DATEDIFF(day, ...) |
| timestamp, timestamp_ntz | microseconds since 1970-01-01 of the (UTC) wall clock, from the interval to the epoch | DATEDIFF_BIG(microsecond, ...) (floors, as the JDBC read does) |
| binary | lower-case hex | CONVERT(varchar(max), x, 2), lower-cased |

Fields are ``<length>:<text>`` or ``N``, joined by ``|``; the hash is the first 15 hex digits of the
md5 of the UTF-8 row text. Requirements this relies on, stated in docs/validation.md: Oracle's database
character set AL32UTF8 (STANDARD_HASH hashes the VARCHAR2's bytes) and row texts within the VARCHAR2
limit (4000 bytes, 32767 with MAX_STRING_SIZE=EXTENDED: longer rows fail with ORA-01489, loudly);
SQL Server 2019+ / Azure SQL for the UTF-8 collation that turns the text into UTF-8 bytes.
"""

from __future__ import annotations

import re

from lib.validate.render import DOUBLE_NAN_BITS, FLOAT_NAN_BITS, NULL_FIELD, UnsupportedType

_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_INTEGERS = ("tinyint", "smallint", "int", "integer", "bigint")
UTF8_COLLATION = "Latin1_General_100_BIN2_UTF8"


# ---------------------------------------------------------------- Oracle


def decimal_mask(precision: int, scale: int) -> str:
    """``FM990.00``: no padding, a 0 before the point, exactly ``scale`` fraction digits."""
    integer = "9" * (max(precision - scale, 1) - 1) + "0"
    return "FM" + integer + ("." + "0" * scale if scale else "")


def ora_value(expr: str, lake_type: str) -> str:
    decimal = _DECIMAL.match(lake_type)
    if decimal:
        p, s = int(decimal.group(1)), int(decimal.group(2))
        return f"TO_CHAR({expr}, '{decimal_mask(p, s)}', 'NLS_NUMERIC_CHARACTERS=''.,''')"
    if lake_type in _INTEGERS:
        return f"TO_CHAR({expr})"
    if lake_type == "boolean":
        return f"CASE WHEN {expr} THEN 'true' WHEN NOT {expr} THEN 'false' END"
    if lake_type == "float":
        bits = f"TO_NUMBER(RAWTOHEX(UTL_RAW.CAST_FROM_BINARY_FLOAT({expr})), 'XXXXXXXX')"
        signed = f"CASE WHEN {bits} >= 2147483648 THEN {bits} - 4294967296 ELSE {bits} END"
        return f"CASE WHEN {expr} IS NAN THEN '{FLOAT_NAN_BITS}' ELSE TO_CHAR({signed}) END"
    if lake_type == "double":
        bits = f"TO_NUMBER(RAWTOHEX(UTL_RAW.CAST_FROM_BINARY_DOUBLE({expr})), 'XXXXXXXXXXXXXXXX')"
        signed = f"CASE WHEN {bits} >= 9223372036854775808 THEN {bits} - 18446744073709551616 ELSE {bits} END"
        return f"CASE WHEN {expr} IS NAN THEN '{DOUBLE_NAN_BITS}' ELSE TO_CHAR({signed}) END"
    if lake_type == "string":
        return f"TO_CHAR({expr})"
    if lake_type == "date":
        return f"TO_CHAR(TRUNC({expr}) - DATE '1970-01-01')"
    if lake_type in ("timestamp", "timestamp_ntz"):
        delta = f"(CAST({expr} AS TIMESTAMP(6)) - TIMESTAMP '1970-01-01 00:00:00')"
        micros = (
            f"EXTRACT(DAY FROM {delta}) * 86400000000 + EXTRACT(HOUR FROM {delta}) * 3600000000 + "
            f"EXTRACT(MINUTE FROM {delta}) * 60000000 + EXTRACT(SECOND FROM {delta}) * 1000000"
        )
        return f"TO_CHAR({micros})"
    if lake_type == "binary":
        return f"LOWER(RAWTOHEX({expr}))"
    raise UnsupportedType(f"no canonical Oracle rendering for lake type {lake_type!r}")


def ora_field(text: str) -> str:
    return f"CASE WHEN {text} IS NULL THEN '{NULL_FIELD}' ELSE LENGTH({text}) || ':' || {text} END"


def ora_join(fields: list[str]) -> str:
    return " || '|' || ".join(fields) if fields else "''"


def ora_md5_hex(text: str) -> str:
    return f"LOWER(RAWTOHEX(STANDARD_HASH({text}, 'MD5')))"


def ora_hash60(text: str) -> str:
    return f"TO_NUMBER(SUBSTR({ora_md5_hex(text)}, 1, 15), 'XXXXXXXXXXXXXXX')"


def ora_bucket(text: str, digits: int) -> str:
    return f"SUBSTR({ora_md5_hex(text)}, 1, {digits})"


# ---------------------------------------------------------------- T-SQL


def tsql_value(expr: str, lake_type: str) -> str:
    decimal = _DECIMAL.match(lake_type)
    if decimal:
        return f"CONVERT(nvarchar(50), CAST({expr} AS decimal({decimal.group(1)},{decimal.group(2)})))"
    if lake_type in _INTEGERS:
        return f"CONVERT(nvarchar(20), {expr})"
    if lake_type == "boolean":
        return f"CASE {expr} WHEN 1 THEN N'true' WHEN 0 THEN N'false' END"
    if lake_type == "float":
        return f"CONVERT(nvarchar(20), CAST(CAST(CAST({expr} AS real) AS binary(4)) AS int))"
    if lake_type == "double":
        return f"CONVERT(nvarchar(20), CAST(CAST(CAST({expr} AS float) AS binary(8)) AS bigint))"
    if lake_type == "string":
        return f"CAST({expr} AS nvarchar(max))"
    if lake_type == "date":
        return f"CONVERT(nvarchar(20), DATEDIFF(day, '19700101', {expr}))"
    if lake_type in ("timestamp", "timestamp_ntz"):
        return f"CONVERT(nvarchar(20), DATEDIFF_BIG(microsecond, CAST('19700101' AS datetime2(7)), {expr}))"
    if lake_type == "binary":
        return f"LOWER(CONVERT(nvarchar(max), CAST({expr} AS varbinary(max)), 2))"
    raise UnsupportedType(f"no canonical T-SQL rendering for lake type {lake_type!r}")


def tsql_field(text: str) -> str:
    """LEN ignores trailing spaces: ``LEN(t + N'x') - 1`` counts them, as the lake keeps them."""
    return f"CASE WHEN {text} IS NULL THEN N'{NULL_FIELD}' ELSE CONVERT(nvarchar(20), LEN({text} + N'x') - 1) + N':' + {text} END"


def tsql_join(fields: list[str]) -> str:
    return " + N'|' + ".join(fields) if fields else "N''"


def tsql_md5(text: str) -> str:
    """The md5 of the text's UTF-8 bytes (nvarchar -> varchar in a UTF-8 collation, SQL Server 2019+)."""
    return f"HASHBYTES('MD5', CAST(({text}) COLLATE {UTF8_COLLATION} AS varchar(max)))"


def tsql_hash60(text: str) -> str:
    h = tsql_md5(text)
    return f"(CAST(SUBSTRING({h}, 1, 7) AS bigint) * 16 + CAST(SUBSTRING({h}, 8, 1) AS int) / 16)"


def tsql_bucket(text: str, digits: int) -> str:
    return f"LOWER(SUBSTRING(CONVERT(varchar(34), {tsql_md5(text)}, 2), 1, {digits}))"
