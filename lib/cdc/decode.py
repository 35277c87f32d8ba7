"""Debezium PostgreSQL field values -> the lake values the bulk load produces (pure: Spark SQL text).

The stream parses ``payload.after`` / ``payload.before`` with every field as a STRING (the JSON text of
the value: numbers and booleans as their JSON text, strings unquoted, arrays as compact JSON), then
applies per column the expression of :func:`decode_column`. Each mapping reproduces what
``lib/dialects/postgres/types.py`` reads in the bulk path, for the connector settings of
``lib/debezium/common.py`` (decimals and intervals as strings, adaptive microsecond times, bytes as
base64, source types in the schema parameters):

| Debezium field                               | lake type       | expression                                 |
|----------------------------------------------|-----------------|--------------------------------------------|
| int16/int32/int64, boolean, float, double    | same            | ``try_cast`` (JSON ``"NaN"``/``"Infinity"``) |
| string of NUMERIC / MONEY                    | decimal(p,s)    | exact: NULL (not ok) when it would round   |
| string of NUMERIC                            | string          | as is; ``NAN``/``POSITIVE_INFINITY`` -> PG |
| io.debezium.time.Date (days)                 | date            | ``date_from_unix_date``                    |
| Timestamp / MicroTimestamp / NanoTimestamp   | timestamp_ntz   | epoch + ms / us: the same wall clock       |
| ZonedTimestamp (ISO, ``Z``)                  | timestamp       | the same instant                           |
| Time / MicroTime / NanoTime                  | string          | ``time::text``: ``HH:MM:SS[.f]``           |
| ZonedTime (normalized to UTC by Debezium)    | string          | ``HH:MM:SS[.f]+00`` (LOSSY, see below)     |
| Interval (ISO 8601 ``P1Y2M3DT4H5M6.78S``)    | string          | ``interval::text``, IntervalStyle postgres |
| Uuid, Json, Enum, Xml, cidr, macaddr, ...    | string          | as is (PostgreSQL's own text)              |
| bytes (base64)                               | binary          | ``try_to_binary(.., 'base64')``            |
| boolean of BIT / Bits (``bit(1)``)           | string          | ``'1'`` / ``'0'``                          |
| Bits, bytes (``bit(n)``, n > 1)              | string          | ``bit::text``: n digits ``'0'``/``'1'``    |
| array                                        | array<T>        | ``transform`` with the element's mapping   |

Every expression yields NULL for a NULL raw value and keeps empty strings. A non-null value that
cannot be decoded exactly (a decimal that would be rounded or overflow, a malformed value) yields
NULL, and ``DecodedColumn.ok`` is FALSE, so the stream can dead-letter the event instead of storing
a wrong value. ``timetz`` is lossy: Debezium sends the UTC time only, the source offset is gone, so
``'23:59:59.999999+05:30'`` arrives as ``18:29:59.999999Z`` and decodes to ``'18:29:59.999999+00'``
(equal to the bulk value only for values stored with offset +00).

``bit(n)`` arrives as the bit string read as an unsigned binary number, in little-endian bytes with
the most significant zero bytes left out (``''`` for all zeros): the value is exact because ``n`` is
known (the field's length). ``bit varying`` is not decodable: Debezium drops its leading zeros
(``'0101'`` and ``'101'`` both arrive as ``BQ==``), so its field is refused (:class:`UnsupportedField`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from lib.cdc.envelope import UNAVAILABLE, is_unavailable_expr  # re-exported: the MERGE's TOAST check

SOURCE_TYPE = "__debezium.source.column.type"
SOURCE_LENGTH = "__debezium.source.column.length"
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
_ISO_INTERVAL = r"^P(-?[0-9]+)Y(-?[0-9]+)M(-?[0-9]+)DT(-?[0-9]+)H(-?[0-9]+)M(-?[0-9]+(?:[.][0-9]+)?)S$"
_ZONED_TIME = r"^([0-9]{2}:[0-9]{2}:[0-9]{2})(?:[.]([0-9]*))?Z$"
_PLAIN_DECIMAL = r"^-?[0-9]+([.][0-9]+)?$"
NUMERIC_SPECIALS = {"NAN": "NaN", "POSITIVE_INFINITY": "Infinity", "NEGATIVE_INFINITY": "-Infinity"}
TIMETZ_LOSS = "Debezium normalizes timetz to UTC ('...Z'): the source offset is lost, decoded as '+00'"
_INTEGERS = {"int8": "tinyint", "int16": "smallint", "int32": "int", "int64": "bigint"}
_TIME_UNITS = {"io.debezium.time.Time": 1000, "io.debezium.time.MicroTime": 1, "io.debezium.time.NanoTime": -1000}
_TS_UNITS = {"io.debezium.time.Timestamp": "MILLISECOND", "io.debezium.time.MicroTimestamp": "MICROSECOND"}
_TEXT_NAMES = {"io.debezium.data.Uuid", "io.debezium.data.Json", "io.debezium.data.Enum", "io.debezium.data.Xml",
               "io.debezium.data.Ltree", "io.debezium.data.EnumSet"}


class UnsupportedField(ValueError):
    """The field's Debezium encoding has no exact decoding to the lake type (the stream must not start)."""


@dataclass(frozen=True)
class DecodedColumn:
    value: str  # Spark SQL expression of the lake value
    ok: str  # Spark SQL boolean: FALSE when a non-null raw value could not be decoded exactly
    lossy: str | None = None  # why the value can differ from the bulk path's, when it can


def decode_expr(field_schema: Mapping[str, Any], lake_type: str, source_column: str) -> str:
    """Spark SQL expression turning the raw JSON text ``source_column`` into the bulk path's value."""
    return decode_column(field_schema, lake_type, source_column).value


def ok_expr(field_schema: Mapping[str, Any], lake_type: str, source_column: str) -> str:
    """Spark SQL boolean: the value decoded exactly (FALSE: dead-letter the event)."""
    return decode_column(field_schema, lake_type, source_column).ok


def decode_column(field_schema: Mapping[str, Any], lake_type: str, source_column: str) -> DecodedColumn:
    """The value expression, its ``ok`` check and any known loss, for one field and its lake type."""
    lake = lake_type.replace(" ", "").lower()
    raw = f"({source_column})"
    if field_schema.get("type") == "array":
        if not (lake.startswith("array<") and lake.endswith(">")):
            raise UnsupportedField(f"array field for lake type {lake_type}")
        value = _array(field_schema, lake[6:-1], raw)
        elements = f"from_json({raw}, 'array<string>')"
        nulls = "size(filter({a}, _n -> _n IS NULL))"
        ok = f"({raw} IS NULL OR ({value} IS NOT NULL AND {nulls.format(a=value)} = {nulls.format(a=elements)}))"
        return DecodedColumn(value, ok, _lossy(field_schema.get("items") or {}))
    value = _scalar(field_schema, lake, raw)
    return DecodedColumn(value, f"({raw} IS NULL OR {value} IS NOT NULL)", _lossy(field_schema))


def _lossy(field_schema: Mapping[str, Any]) -> str | None:
    return TIMETZ_LOSS if field_schema.get("name") == "io.debezium.time.ZonedTime" else None


def _array(field_schema: Mapping[str, Any], element_lake: str, raw: str) -> str:
    items = dict(field_schema.get("items") or {})
    if items.get("type") == "array":
        raise UnsupportedField("nested arrays are not supported (the bulk path does not support them either)")
    source_type = str((field_schema.get("parameters") or {}).get(SOURCE_TYPE, ""))
    items["parameters"] = {**(items.get("parameters") or {}), SOURCE_TYPE: source_type.removeprefix("_")}
    element = _scalar(items, element_lake, "_e")
    return f"transform(from_json({raw}, 'array<string>'), _e -> {element})"


def _scalar(field: Mapping[str, Any], lake: str, raw: str) -> str:
    kind, name = field.get("type"), field.get("name")
    source_type = str((field.get("parameters") or {}).get(SOURCE_TYPE, "")).upper()

    def need(*lakes: str) -> None:
        if lake not in lakes:
            raise UnsupportedField(f"{name or kind} ({source_type or '?'}) cannot be decoded to lake type {lake}")

    if name in ("org.apache.kafka.connect.data.Decimal", "io.debezium.data.VariableScaleDecimal"):
        raise UnsupportedField(f"{name}: configure decimal.handling.mode=string (exact decimals as text)")
    if name == "io.debezium.time.Date":
        need("date")
        return f"date_from_unix_date(try_cast({raw} AS int))"
    if name in _TS_UNITS:
        need("timestamp_ntz")
        return f"timestampadd({_TS_UNITS[name]}, try_cast({raw} AS bigint), TIMESTAMP_NTZ'1970-01-01 00:00:00')"
    if name == "io.debezium.time.NanoTimestamp":
        need("timestamp_ntz")
        return f"timestampadd(MICROSECOND, try_cast({raw} AS bigint) div 1000, TIMESTAMP_NTZ'1970-01-01 00:00:00')"
    if name == "io.debezium.time.ZonedTimestamp":
        need("timestamp")
        return f"try_cast({raw} AS timestamp)"
    if name in _TIME_UNITS:
        need("string")
        unit = _TIME_UNITS[name]
        micros = f"try_cast({raw} AS bigint) * {unit}" if unit > 0 else f"try_cast({raw} AS bigint) div {-unit}"
        return pg_time_sql(micros)
    if name == "io.debezium.time.ZonedTime":
        need("string")
        fraction = f"regexp_replace(regexp_extract({raw}, '{_ZONED_TIME}', 2), '0+$', '')"
        return (f"CASE WHEN {raw} RLIKE '{_ZONED_TIME}' THEN concat(regexp_extract({raw}, '{_ZONED_TIME}', 1), "
                f"CASE WHEN {fraction} = '' THEN '' ELSE concat('.', {fraction}) END, '+00') END")
    if name == "io.debezium.time.Interval":
        need("string")
        return pg_interval_sql(raw)
    if kind == "boolean" and (name == "io.debezium.data.Bits" or (name is None and source_type == "BIT" and lake == "string")):
        # bit(1): the connector's field is a plain boolean of source type BIT (the catalog rebuild names it Bits)
        need("string")
        return f"CASE try_cast({raw} AS boolean) WHEN true THEN '1' WHEN false THEN '0' END"
    if name == "io.debezium.data.Bits" and kind == "bytes":
        need("string")
        return bits_sql(raw, bits_length(field))
    if name is not None and name not in _TEXT_NAMES:
        raise UnsupportedField(f"{name} ({source_type}) has no exact decoding to {lake}")
    if kind in _INTEGERS and lake == "string" and source_type == "OID":
        return raw  # the bulk path reads oid as its text: the JSON number's digits
    if kind in _INTEGERS or kind in ("float", "double", "float32", "float64", "boolean"):
        need("tinyint", "smallint", "int", "bigint", "float", "double", "boolean")
        return f"try_cast({raw} AS {lake})"
    if kind == "bytes":
        need("binary")
        return f"try_to_binary({raw}, 'base64')"
    if kind != "string":
        raise UnsupportedField(f"{kind} ({source_type}) has no exact decoding to {lake}")
    decimal = _DECIMAL.match(lake)
    if decimal:
        return exact_decimal_sql(raw, int(decimal.group(1)), int(decimal.group(2)))
    need("string")
    if source_type == "NUMERIC":
        cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in NUMERIC_SPECIALS.items())
        return f"CASE {raw} {cases} ELSE {raw} END"
    return raw


def exact_decimal_sql(raw: str, precision: int, scale: int) -> str:
    """``decimal(p,s)`` of a plain decimal string, NULL when it has more significant fraction digits
    than ``s`` (Spark's cast would round) or more integer digits than ``p - s`` (overflow)."""
    fraction = f"regexp_extract({raw}, '[.]([0-9]*?)0*$', 1)"
    return (f"CASE WHEN {raw} RLIKE '{_PLAIN_DECIMAL}' AND length({fraction}) <= {scale} "
            f"THEN try_cast({raw} AS decimal({precision},{scale})) END")


def bits_length(field: Mapping[str, Any]) -> int:
    """The ``n`` of a ``bit(n)`` field of Debezium's ``io.debezium.data.Bits`` bytes (its ``length``
    parameter, or the propagated source column length); UnsupportedField for ``bit varying`` (Debezium
    drops its leading zeros: ``'0101'`` and ``'101'`` arrive alike) and without a length."""
    params = field.get("parameters") or {}
    source_type = str(params.get(SOURCE_TYPE, "")).upper()
    if source_type != "BIT":
        raise UnsupportedField(f"io.debezium.data.Bits ({source_type or '?'}) has no exact decoding: only bit(n) keeps its leading zeros")
    length = str(params.get("length") or params.get(SOURCE_LENGTH) or "")
    if not length.isdigit() or not 0 < int(length) <= 83_886_080:  # PostgreSQL's bit length limit
        raise UnsupportedField("io.debezium.data.Bits (BIT) without its length has no exact decoding")
    return int(length)


def bits_sql(raw: str, length: int) -> str:
    """``bit(n)::text`` (``n`` digits) of Debezium's base64 Bits bytes: little-endian, so the bytes'
    hex pairs are reversed, each hex digit becomes 4 binary digits, and the result is padded to ``n``
    with zeros; NULL when the number needs more than ``n`` bits (or the base64 is not valid)."""
    pairs = f"reverse(regexp_extract_all(hex(try_to_binary({raw}, 'base64')), '[0-9A-F]{{2}}', 0))"
    digits = f"array_join(transform({pairs}, _x -> lpad(conv(_x, 16, 2), 8, '0')), '')"
    body = (f"CASE WHEN length(_b) <= {length} THEN lpad(_b, {length}, '0') "
            f"WHEN instr(left(_b, length(_b) - {length}), '1') = 0 THEN right(_b, {length}) END")
    return _let(digits, "_b", body)


def bits_text(data: bytes, length: int) -> str | None:
    """Pure Python reference of :func:`bits_sql`: ``bit(n)::text`` of the little-endian bytes, None when
    the number needs more than ``n`` bits."""
    number = int.from_bytes(data, "little")
    return format(number, f"0{length}b") if number >> length == 0 else None


def _let(value: str, var: str, body: str) -> str:
    """``body`` with ``var`` bound to ``value`` (evaluated once), NULL when ``value`` is NULL."""
    return f"element_at(transform(array({value}), {var} -> CASE WHEN {var} IS NULL THEN NULL ELSE {body} END), 1)"


def _fraction_sql(micros: str) -> str:
    return f"CASE WHEN {micros} % 1000000 = 0 THEN '' ELSE concat('.', regexp_replace(format_string('%06d', {micros} % 1000000), '0+$', '')) END"


def pg_time_sql(micros: str) -> str:
    """PostgreSQL's ``time::text`` of microseconds after midnight: ``HH:MM:SS`` plus the fraction
    without trailing zeros (``24:00:00`` included)."""
    body = f"concat(format_string('%02d:%02d:%02d', _t div 3600000000, _t div 60000000 % 60, _t div 1000000 % 60), {_fraction_sql('_t')})"
    return _let(micros, "_t", body)


def pg_interval_sql(raw: str) -> str:
    """PostgreSQL's ``interval::text`` (IntervalStyle ``postgres``) of Debezium's ISO 8601 string.

    Debezium splits PostgreSQL's three fields (months, days, microseconds) into Y/M/D/H/M/S; they are
    added back up, then printed as ``EncodeInterval`` does: ``N year(s) N mon(s) N day(s)`` for the
    non-zero parts, a ``+`` before a positive part that follows a negative one, and the time as
    ``[-|+]HH:MM:SS[.ffffff]`` when it is non-zero or everything else is zero.
    """
    group = lambda i: f"regexp_extract({raw}, '{_ISO_INTERVAL}', {i})"  # noqa: E731
    seconds = f"try_cast(try_cast({group(6)} AS decimal(38,6)) * 1000000 AS bigint)"
    parts = (f"named_struct('y', try_cast({group(1)} AS bigint), 'm', try_cast({group(2)} AS bigint), 'd', try_cast({group(3)} AS bigint), "
             f"'u', try_cast({group(4)} AS bigint) * 3600000000 + try_cast({group(5)} AS bigint) * 60000000 + {seconds})")
    fields = "named_struct('y', (_p.y * 12 + _p.m) div 12, 'm', (_p.y * 12 + _p.m) % 12, 'd', _p.d, 'u', _p.u)"

    def unit(value: str, name: str, before: list[str]) -> str:
        space = f"CASE WHEN {' OR '.join(f'{b} <> 0' for b in before)} THEN ' ' ELSE '' END" if before else "''"
        plus = f"CASE WHEN {value} > 0 AND {_last_negative(before)} THEN '+' ELSE '' END" if before else "''"
        plural = f"CASE WHEN {value} <> 1 THEN 's' ELSE '' END"
        return f"CASE WHEN {value} <> 0 THEN concat({space}, {plus}, cast({value} AS string), ' {name}', {plural}) ELSE '' END"

    y, m, d, u = "_i.y", "_i.m", "_i.d", "_i.u"
    clock = f"format_string('%02d:%02d:%02d', abs({u}) div 3600000000, abs({u}) div 60000000 % 60, abs({u}) div 1000000 % 60)"
    sign = f"CASE WHEN {u} < 0 THEN '-' WHEN {_last_negative([y, m, d])} THEN '+' ELSE '' END"
    time = (f"CASE WHEN {u} <> 0 OR ({y} = 0 AND {m} = 0 AND {d} = 0) THEN concat(CASE WHEN {y} <> 0 OR {m} <> 0 OR {d} <> 0 THEN ' ' ELSE '' END, "
            f"{sign}, {clock}, {_fraction_sql(f'abs({u})')}) ELSE '' END")
    body = f"concat({unit(y, 'year', [])}, {unit(m, 'mon', [y])}, {unit(d, 'day', [y, m])}, {time})"
    valid = f"CASE WHEN _p.y IS NULL OR _p.m IS NULL OR _p.d IS NULL OR _p.u IS NULL THEN NULL ELSE {_let(fields, '_i', body)} END"
    return _let(parts, "_p", valid)


def _last_negative(before: list[str]) -> str:
    """PostgreSQL's ``is_before``: the last non-zero part printed before this one was negative."""
    return f"coalesce({', '.join(f'nullif({b}, 0)' for b in reversed(before))}, 0) < 0"


# Pure Python references of the two text forms (documentation, unit tests, and checking events).


def pg_time_text(micros: int) -> str:
    """``time::text`` of microseconds after midnight."""
    seconds, fraction = divmod(micros, 1_000_000)
    text = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return text + (("." + f"{fraction:06d}".rstrip("0")) if fraction else "")


def iso_interval_to_pg(iso: str) -> str:
    """``interval::text`` (IntervalStyle postgres) of Debezium's ISO 8601 interval string."""
    match = re.match(_ISO_INTERVAL, iso)
    if not match:
        raise ValueError(f"not a Debezium interval: {iso!r}")
    years, months, days, hours, minutes = (int(g) for g in match.groups()[:5])
    # Debezium computes the seconds in floating point (e.g. ``4.7764109999``): rounded half up to whole
    # microseconds, as the SQL's CAST(.. AS decimal(38,6)) rounds them
    seconds = Decimal(match.group(6)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    micros = hours * 3_600_000_000 + minutes * 60_000_000 + int(seconds * 1_000_000)
    total_months = years * 12 + months
    year, month = int(total_months / 12), total_months - 12 * int(total_months / 12)  # C truncation
    out, last_negative = [], False
    for value, name in ((year, "year"), (month, "mon"), (days, "day")):
        if value:
            out.append(f"{'+' if last_negative and value > 0 else ''}{value} {name}{'s' if value != 1 else ''}")
            last_negative = value < 0
    if micros or not out:
        sign = "-" if micros < 0 else ("+" if last_negative else "")
        seconds, fraction = divmod(abs(micros), 1_000_000)
        clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        out.append(sign + clock + (("." + f"{fraction:06d}".rstrip("0")) if fraction else ""))
    return " ".join(out)


__all__ = ["UNAVAILABLE", "DecodedColumn", "UnsupportedField", "decode_column", "decode_expr", "is_unavailable_expr", "ok_expr"]
