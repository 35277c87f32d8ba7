"""Decoding Oracle Debezium values to exactly the bulk path's lake values (pure), where
lib/cdc/decode.py (written for PostgreSQL) has no or a different mapping. The stream uses it (through lib/dialects/oracle/cdc_events.py):
:func:`decode_column` handles these cases and hands every other field to lib.cdc.decode.decode_column.

| Debezium field (lib/dialects/oracle/cdc_fields.py) | lake (lib/dialects/oracle/types.py) | gap in lib/cdc/decode.py |
|---|---|---|
| int8..int64 of NUMBER(p, s<0), p - s < 19 | decimal(p-s,0) | integers decode to integer lake types only |
| io.debezium.time.Interval (ISO ``P1Y2M3DT4H5M6.5S``) | string, Oracle's TO_CHAR text (``+01-02``, ``+03 04:05:06.500000``) | decodes to PostgreSQL's interval text |
| io.debezium.time.NanoTimestamp of TIMESTAMP(7..9) | string ``YYYY-MM-DD HH24:MI:SS.FFn`` | decodes to timestamp_ntz (drops nanoseconds) |
| io.debezium.time.ZonedTimestamp of TIMESTAMP(7..9) WITH [LOCAL] TIME ZONE | string ``YYYY-MM-DDTHH24:MI:SS.FFnZ`` in UTC | decodes to timestamp only |
| bytes holding the LOB placeholder (BLOB not changed by the statement) | keep the stored value | the placeholder is checked in text, not in its base64 form |

Each case has a Python reference (``*_text``) the unit tests pin down, and the Spark SQL expression
the stream runs (``*_sql``), checked against the reference on Spark (tests/integration).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from lib.cdc.decode import DecodedColumn
from lib.cdc.decode import decode_column as generic_decode_column
from lib.dialects.base import Column
from lib.dialects.oracle.sql import base_type
from lib.dialects.oracle.types import fraction_digits, precision_of

UNAVAILABLE = "__debezium_unavailable_value"
UNAVAILABLE_BASE64 = base64.b64encode(UNAVAILABLE.encode()).decode()  # how a BLOB placeholder arrives with bytes as base64
ISO_INTERVAL = re.compile(r"^P(-?\d+)Y(-?\d+)M(-?\d+)DT(-?\d+)H(-?\d+)M(-?\d+(?:\.\d+)?)S$")
_ISO_INTERVAL_SQL = r"^P(-?[0-9]+)Y(-?[0-9]+)M(-?[0-9]+)DT(-?[0-9]+)H(-?[0-9]+)M(-?[0-9]+(?:[.][0-9]+)?)S$"
_ZONED = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")
_ZONED_SQL = r"^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:[.]([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})$"
NANOS = 1_000_000_000


# ---------------------------------------------------------------- Python references


def interval_text(iso: str, year_to_month: bool, leading: int, fraction: int) -> str:
    """Debezium's ISO interval as Oracle's TO_CHAR writes the column: ``+02-03`` (YEAR(2) TO MONTH),
    ``-01 02:03:04.500000`` (DAY(2) TO SECOND(6)). Oracle intervals carry one sign for all fields."""
    match = ISO_INTERVAL.match(iso)
    if not match:
        raise ValueError(f"not a Debezium interval: {iso!r}")
    years, months, days, hours, minutes = (int(g) for g in match.groups()[:5])
    seconds = match.group(6)
    negative = any(v < 0 for v in (years, months, days, hours, minutes)) or seconds.startswith("-")
    sign = "-" if negative else "+"
    if year_to_month:
        return f"{sign}{abs(years):0{leading}d}-{abs(months):02d}"
    whole, _, frac = seconds.lstrip("-").partition(".")
    text = f"{sign}{abs(days):0{leading}d} {abs(hours):02d}:{abs(minutes):02d}:{int(whole):02d}"
    return text + (f".{frac.ljust(fraction, '0')[:fraction]}" if fraction else "")


def nano_timestamp_text(nanos: int, digits: int) -> str:
    """NanoTimestamp (nanoseconds since the epoch, wall clock) as ``YYYY-MM-DD HH:MM:SS.fffffffff``
    cut to ``digits`` fraction digits, as TO_CHAR(.., 'FF<digits>') writes TIMESTAMP(digits)."""
    seconds, rest = divmod(nanos, NANOS)
    wall = datetime(1970, 1, 1) + timedelta(seconds=seconds)
    return wall.strftime("%Y-%m-%d %H:%M:%S") + "." + f"{rest:09d}"[:digits]


def zoned_utc_text(iso: str, digits: int) -> str:
    """ZonedTimestamp text (any offset, up to 9 fraction digits) as the same instant in UTC,
    ``YYYY-MM-DDTHH:MM:SS.<digits>Z``, as the bulk path's TO_CHAR(SYS_EXTRACT_UTC(..)) writes it."""
    match = _ZONED.match(iso)
    if not match:
        raise ValueError(f"not a Debezium ZonedTimestamp: {iso!r}")
    whole, frac, zone = match.groups()
    instant = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone)).astimezone(UTC)
    return instant.strftime("%Y-%m-%dT%H:%M:%S") + "." + (frac or "").ljust(9, "0")[:digits] + "Z"


# ---------------------------------------------------------------- Spark SQL


def interval_sql(raw: str, year_to_month: bool, leading: int, fraction: int) -> str:
    def part(i: int) -> str:
        return f"regexp_extract({raw}, '{_ISO_INTERVAL_SQL}', {i})"

    negative = " OR ".join(f"{part(i)} LIKE '-%'" for i in range(1, 7))
    sign = f"CASE WHEN {negative} THEN '-' ELSE '+' END"

    def num(i: int, width: int) -> str:
        return f"lpad(CAST(abs(CAST({part(i)} AS bigint)) AS string), {width}, '0')"

    if year_to_month:
        body = f"concat({sign}, {num(1, leading)}, '-', {num(2, 2)})"
    else:
        secs = f"regexp_replace({part(6)}, '^-', '')"
        whole = f"lpad(split_part({secs}, '.', 1), 2, '0')"
        frac = f"concat('.', substr(rpad(split_part({secs}, '.', 2), {fraction}, '0'), 1, {fraction}))" if fraction else "''"
        body = f"concat({sign}, {num(3, leading)}, ' ', {num(4, 2)}, ':', {num(5, 2)}, ':', {whole}, {frac})"
    return f"CASE WHEN {raw} RLIKE '{_ISO_INTERVAL_SQL}' THEN {body} END"


def nano_timestamp_sql(raw: str, digits: int) -> str:
    n = f"try_cast({raw} AS bigint)"
    seconds = f"(({n} - pmod({n}, {NANOS})) div {NANOS})"
    wall = f"date_format(timestampadd(SECOND, {seconds}, TIMESTAMP_NTZ'1970-01-01 00:00:00'), 'yyyy-MM-dd HH:mm:ss')"
    return f"concat({wall}, '.', substr(lpad(CAST(pmod({n}, {NANOS}) AS string), 9, '0'), 1, {digits}))"


def zoned_utc_sql(raw: str, digits: int) -> str:
    """Needs the session time zone UTC (the jobs set it): date_format renders in the session zone."""
    whole = f"regexp_extract({raw}, '{_ZONED_SQL}', 1)"
    frac = f"regexp_extract({raw}, '{_ZONED_SQL}', 2)"
    zone = f"regexp_extract({raw}, '{_ZONED_SQL}', 3)"
    instant = f"try_cast(concat({whole}, CASE WHEN {zone} = 'Z' THEN '+00:00' ELSE {zone} END) AS timestamp)"
    return (
        f"CASE WHEN {raw} RLIKE '{_ZONED_SQL}' THEN concat(date_format({instant}, \"yyyy-MM-dd'T'HH:mm:ss\"), '.', "
        f"substr(rpad({frac}, 9, '0'), 1, {digits}), 'Z') END"
    )


def decode_column(field: Mapping[str, Any], lake_type: str, source_column: str, column: Column) -> DecodedColumn:
    """The Oracle column's value expression: Oracle-specific cases here, the rest generic."""
    raw = f"({source_column})"
    kind, name, lake = field.get("type"), field.get("name"), lake_type.replace(" ", "").lower()
    value: str | None = None
    if kind in ("int8", "int16", "int32", "int64") and lake.startswith("decimal("):
        value = f"try_cast({raw} AS {lake})"
    elif name == "io.debezium.time.Interval" and lake == "string":
        ym = "YEAR" in base_type(column)
        value = interval_sql(raw, ym, precision_of(column) or 2, 0 if ym else fraction_digits(column))
    elif name == "io.debezium.time.NanoTimestamp" and lake == "string":
        value = nano_timestamp_sql(raw, fraction_digits(column))
    elif name == "io.debezium.time.ZonedTimestamp" and lake == "string":
        value = zoned_utc_sql(raw, fraction_digits(column))
    if value is None:
        return generic_decode_column(field, lake_type, source_column)
    return DecodedColumn(value, f"({raw} IS NULL OR {value} IS NOT NULL)")


def is_unavailable_sql(raw: str, field: Mapping[str, Any]) -> str:
    """TRUE when the raw value is Debezium's placeholder for a LOB the statement did not change (text
    columns carry it as is, binary columns base64-encoded): the MERGE must keep the stored value."""
    placeholder = UNAVAILABLE_BASE64 if field.get("type") == "bytes" else UNAVAILABLE
    return f"(({raw}) <=> '{placeholder}')"
