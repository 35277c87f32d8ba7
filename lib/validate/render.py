"""The canonical text of a row, as SQL for PostgreSQL and for Spark that agree exactly (pure).

Both sides render every value of a row to text by its *lake* type, the same way, then hash that text.
A value renders as:

| lake type | canonical text |
|---|---|
| smallint, int, bigint | the decimal integer |
| decimal(p,s) | plain decimal with exactly s fraction digits, no exponent (`-0.0000000001`) |
| float, double | the IEEE 754 bits as a signed integer (every NaN as the canonical NaN): exact, no formatting |
| boolean | `true` / `false` |
| string | the string (PostgreSQL `char(n)` keeps its padding, as the lake does) |
| date | days since 1970-01-01 |
| timestamp | microseconds since 1970-01-01 00:00 UTC (the instant) |
| timestamp_ntz | microseconds since 1970-01-01 00:00 of the wall clock (no zone involved) |
| binary | lower-case hex |
| array<T> | `[` + the elements' fields joined by `,` + `]` (an empty array is `[]`) |

A *field* is ``<length>:<text>`` for a value and ``N`` for NULL, so NULL, an empty string and any
separator inside a value stay distinct. A row is its fields joined by ``|``; a key is its key columns'
fields joined the same way. The row hash is the first 15 hex digits of the md5 of the row text (UTF-8)
as a non-negative bigint; the bucket is the first 1-3 hex digits of the md5 of the key text.
"""

from __future__ import annotations

import re

from lib.dialects.postgres.sql import quote_ident

NULL_FIELD = "N"
FLOAT_NAN_BITS = 2143289344  # Float.floatToIntBits(Float.NaN) == 0x7fc00000
DOUBLE_NAN_BITS = 9221120237041090560  # Double.doubleToLongBits(Double.NaN) == 0x7ff8000000000000
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_INTEGERS = ("tinyint", "smallint", "int", "integer", "bigint")
_EPOCH_NTZ = "TIMESTAMP_NTZ'1970-01-01 00:00:00'"


class UnsupportedType(ValueError):
    """A lake type this module has no canonical rendering for."""




def _element_type(lake_type: str) -> str | None:
    if lake_type.startswith("array<") and lake_type.endswith(">"):
        return lake_type[len("array<") : -1]
    return None


# ---------------------------------------------------------------- PostgreSQL


def pg_value(expr: str, lake_type: str, typname: str | None = None, elem_typname: str | None = None) -> str:
    """SQL text of ``expr`` (a value already converted as the loader's SELECT does) in canonical form.

    ``typname`` / ``elem_typname`` are the source column's (base) type and array element type: only
    ``bpchar`` matters, whose padding ``::text`` would strip.
    """
    element = _element_type(lake_type)
    if element is not None:
        inner = pg_field(pg_value("u.x", element, elem_typname))
        return (
            f"CASE WHEN {expr} IS NULL THEN NULL ELSE '[' || array_to_string(ARRAY("
            f"SELECT {inner} FROM unnest({expr}) WITH ORDINALITY AS u(x, i) ORDER BY u.i), ',') || ']' END"
        )
    decimal = _DECIMAL.match(lake_type)
    if decimal:
        return f"({expr})::numeric({decimal.group(1)},{decimal.group(2)})::text"
    if lake_type in _INTEGERS or lake_type == "boolean":
        return f"({expr})::text"
    if lake_type == "float":
        bits = f"('x' || encode(float4send({expr}), 'hex'))::bit(32)::int::text"
        return f"CASE WHEN {expr} = 'NaN'::float4 THEN '{FLOAT_NAN_BITS}' ELSE {bits} END"
    if lake_type == "double":
        bits = f"('x' || encode(float8send({expr}), 'hex'))::bit(64)::bigint::text"
        return f"CASE WHEN {expr} = 'NaN'::float8 THEN '{DOUBLE_NAN_BITS}' ELSE {bits} END"
    if lake_type == "string":
        # concat() keeps char(n) padding (::text strips it) but turns NULL into '': guard it
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE concat({expr}) END" if typname == "bpchar" else f"({expr})::text"
    if lake_type == "date":
        return f"(({expr}) - DATE '1970-01-01')::text"
    if lake_type in ("timestamp", "timestamp_ntz"):
        # extract(epoch ...) is exact numeric (PostgreSQL 14+); for timestamp without time zone it is the
        # wall clock read as UTC, for timestamptz the instant.
        return f"(extract(epoch FROM {expr}) * 1000000)::bigint::text"
    if lake_type == "binary":
        return f"encode({expr}, 'hex')"
    raise UnsupportedType(f"no canonical rendering for lake type {lake_type!r}")


def pg_field(text_expr: str) -> str:
    return f"coalesce(length({text_expr})::text || ':' || {text_expr}, '{NULL_FIELD}')"


def pg_join(fields: list[str]) -> str:
    """Fields joined by ``|`` (``||`` rather than concat(): no 100-argument limit)."""
    return " || '|' || ".join(fields) if fields else "''"


def pg_hash60(text_expr: str) -> str:
    return f"('x' || substr(md5(convert_to({text_expr}, 'UTF8')), 1, 15))::bit(60)::bigint"


def pg_bucket(text_expr: str, digits: int) -> str:
    return f"substr(md5(convert_to({text_expr}, 'UTF8')), 1, {digits})"


def pg_column(alias: str, name: str) -> str:
    return f"{alias}.{quote_ident(name)}"


# ---------------------------------------------------------------- Spark


def spark_value(expr: str, lake_type: str) -> str:
    """Spark SQL text of ``expr`` (a lake column of ``lake_type``) in the same canonical form."""
    element = _element_type(lake_type)
    if element is not None:
        inner = spark_field(spark_value("__e", element))
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE concat('[', array_join(transform({expr}, __e -> {inner}), ','), ']') END"
    decimal = _DECIMAL.match(lake_type)
    if decimal:
        return f"CAST(CAST({expr} AS decimal({decimal.group(1)},{decimal.group(2)})) AS string)"
    if lake_type in _INTEGERS or lake_type == "boolean":
        return f"CAST({expr} AS string)"
    if lake_type == "float":
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE reflect('java.lang.Float', 'floatToIntBits', {expr}) END"
    if lake_type == "double":
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE reflect('java.lang.Double', 'doubleToLongBits', {expr}) END"
    if lake_type == "string":
        return expr
    if lake_type == "date":
        return f"CAST(unix_date({expr}) AS string)"
    if lake_type == "timestamp":
        return f"CAST(unix_micros({expr}) AS string)"
    if lake_type == "timestamp_ntz":
        return f"CAST(timestampdiff(MICROSECOND, {_EPOCH_NTZ}, {expr}) AS string)"
    if lake_type == "binary":
        return f"lower(hex({expr}))"
    raise UnsupportedType(f"no canonical rendering for lake type {lake_type!r}")


def spark_field(text_expr: str) -> str:
    return f"coalesce(concat(CAST(char_length({text_expr}) AS string), ':', {text_expr}), '{NULL_FIELD}')"


def spark_join(fields: list[str]) -> str:
    return "concat_ws('|', " + ", ".join(fields) + ")" if fields else "''"


def spark_hash60(text_expr: str) -> str:
    return f"CAST(conv(substr(md5({text_expr}), 1, 15), 16, 10) AS bigint)"


def spark_bucket(text_expr: str, digits: int) -> str:
    return f"substr(md5({text_expr}), 1, {digits})"


# ---------------------------------------------------------------- reading keys back


def parse_fields(text: str) -> list[str | None]:
    """The values of a key or row text (inverse of the field encoding), for showing keys to people."""
    values: list[str | None] = []
    pos = 0
    while pos < len(text):
        if text.startswith(NULL_FIELD, pos):
            values.append(None)
            pos += len(NULL_FIELD)
        else:
            colon = text.index(":", pos)
            length = int(text[pos:colon])
            values.append(text[colon + 1 : colon + 1 + length])
            pos = colon + 1 + length
        if pos < len(text):
            if text[pos] != "|":
                raise ValueError(f"not a canonical field list: {text[:80]!r}")
            pos += 1
    return values


def show_key(columns: list[str] | tuple[str, ...], key_text: str) -> str:
    """``id=17`` or ``(a=1, b=x)``; values as rendered (dates and timestamps as numbers)."""
    try:
        values = parse_fields(key_text)
    except ValueError:
        return key_text
    parts = [f"{c}={'NULL' if v is None else v}" for c, v in zip(columns, values, strict=False)]
    return parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def bucket_digits(buckets: int) -> int:
    """16 -> 1, 256 -> 2, 4096 -> 3 hex digits."""
    digits = {16: 1, 256: 2, 4096: 3}.get(buckets)
    if digits is None:
        raise ValueError(f"buckets must be 16, 256 or 4096, got {buckets}")
    return digits
