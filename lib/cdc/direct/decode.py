"""Debezium PostgreSQL field values -> lake values in Python, for the direct apply (pure).

The same mappings as :mod:`lib.cdc.decode` (whose Spark SQL expressions are the reference), for the
field encodings a compact message of the benchmark's and most tables' types carries: integers,
booleans, doubles, text, exact decimals, dates, timestamps with and without time zone, times,
intervals and bytes. Each :class:`Decoder` turns the value ``json.loads`` gives into the *storage*
value of its Arrow column (days for dates, microseconds for timestamps) and raises :class:`NotDirect`
for a value it cannot give exactly as the Spark expression would (the whole range is then applied by
Spark, which dead-letters what is undecodable). A field with no decoder here (arrays, ``real``,
``timetz``, ...) sends its table to Spark (:func:`decoder`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lib.cdc.decode import NUMERIC_SPECIALS, SOURCE_TYPE, iso_interval_to_pg, pg_time_text


class NotDirect(Exception):
    """What the direct apply cannot reproduce exactly: the range is applied by Spark instead."""


@dataclass(frozen=True)
class Decoder:
    convert: Callable[[Any], Any]  # the JSON value (not None) -> the storage value
    # the Arrow type the values are built as, then cast to the lake type's: int32 (dates), int64
    # (timestamps), string (decimals), or "" (built as the lake type)
    storage: str


_INT_RANGES = {"smallint": 1 << 15, "int": 1 << 31, "bigint": 1 << 63}
_KINDS = {"int16": "smallint", "int32": "int", "int64": "bigint"}
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)\Z")
_PLAIN_DECIMAL = re.compile(r"^-?([0-9]+)(?:[.]([0-9]+))?\Z")
_ZONED = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.]([0-9]{1,6}))?Z\Z")
_EPOCH = datetime(1970, 1, 1)
_MIN_US, _MAX_US = -62_135_596_800_000_000, 253_402_300_799_999_999  # 0001-01-01 .. 9999-12-31 23:59:59.999999
_MIN_DAY, _MAX_DAY = -719_162, 2_932_896
_TEXT_NAMES = {None, "io.debezium.data.Uuid", "io.debezium.data.Json", "io.debezium.data.Enum", "io.debezium.data.Xml",
               "io.debezium.data.Ltree", "io.debezium.data.EnumSet"}
_TS_FACTOR = {"io.debezium.time.Timestamp": 1000, "io.debezium.time.MicroTimestamp": 1}
_TIME_FACTOR = {"io.debezium.time.Time": 1000, "io.debezium.time.MicroTime": 1}
_DAY_US = 86_400_000_000


def _bad(value: Any, what: str) -> NotDirect:
    """The reason names the kind of value, never the value itself (logs must not carry source data)."""
    return NotDirect(f"a value that is not {what} ({type(value).__name__})")


def _integer(bound: int) -> Callable[[Any], int]:
    """An integer in [-bound, bound) (a JSON boolean is not one)."""
    def convert(v: Any) -> int:
        if type(v) is not int or not -bound <= v < bound:
            raise _bad(v, "an integer in range")
        return v
    return convert


def _boolean(v: Any) -> bool:
    if type(v) is not bool:
        raise _bad(v, "a boolean")
    return v


_SPECIAL_DOUBLES = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _double(v: Any) -> float:
    if type(v) is float or type(v) is int:
        return float(v)
    if isinstance(v, str) and v in _SPECIAL_DOUBLES:
        return _SPECIAL_DOUBLES[v]
    raise _bad(v, "a double")


def _text(v: Any) -> str:
    if type(v) is not str:
        raise _bad(v, "a string")
    return v


def _numeric_text(v: Any) -> str:
    return NUMERIC_SPECIALS.get(_text(v), v)


def _exact_decimal(precision: int, scale: int) -> Callable[[Any], str]:
    """lib.cdc.decode.exact_decimal_sql: a plain decimal string with at most ``scale`` significant
    fraction digits and ``precision - scale`` integer digits; kept as text, Arrow's cast to
    decimal(p,s) makes the number (exact: it refuses to round or overflow)."""
    def convert(v: Any) -> str:
        match = _PLAIN_DECIMAL.match(v) if type(v) is str else None
        if not match or len((match.group(2) or "").rstrip("0")) > scale or len(match.group(1).lstrip("0")) > precision - scale:
            raise _bad(v, f"a decimal({precision},{scale})")
        return v
    return convert


def _days(v: Any) -> int:
    if type(v) is not int or not _MIN_DAY <= v <= _MAX_DAY:
        raise _bad(v, "a date's days")
    return v


def _timestamp(factor: int) -> Callable[[Any], int]:
    def convert(v: Any) -> int:
        if type(v) is not int or not _MIN_US <= v * factor <= _MAX_US:
            raise _bad(v, "a timestamp in 0001..9999")
        return v * factor
    return convert


_MINUTES: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM" -> its microseconds since the epoch (a stream's instants share few minutes)
_SECONDS = re.compile(r":([0-9]{2})(?:[.]([0-9]{1,6}))?Z\Z")


def _minute(prefix: str) -> int:
    """Microseconds since the epoch of ``YYYY-MM-DDTHH:MM`` (UTC), checked strictly; cached."""
    micros = _MINUTES.get(prefix)
    if micros is None:
        match = _ZONED.match(prefix + ":00Z")
        if not match:
            raise _bad(prefix, "an ISO UTC instant")
        try:
            moment = datetime(*(int(g) for g in match.groups()[:5]))  # type: ignore[misc]
        except ValueError:
            raise _bad(prefix, "an ISO UTC instant") from None
        if len(_MINUTES) >= 100_000:
            _MINUTES.clear()
        micros = _MINUTES[prefix] = (moment - _EPOCH) // timedelta(microseconds=1)
    return micros


def _zoned_timestamp(v: Any) -> int:
    """Microseconds since the epoch of Debezium's ISO instant (``...Z``), as ``CAST(.. AS timestamp)``."""
    if type(v) is not str:
        raise _bad(v, "an ISO UTC instant")
    seconds = _SECONDS.match(v, 16)
    if seconds is None:  # (match() at 16 is anchored there; a "^" would not be)
        raise _bad(v, "an ISO UTC instant")
    fraction = seconds.group(2)
    second = int(seconds.group(1))
    if second > 59:
        raise _bad(v, "an ISO UTC instant")
    return _minute(v[:16]) + second * 1_000_000 + (int(fraction.ljust(6, "0")) if fraction else 0)


def _time(factor: int) -> Callable[[Any], str]:
    def convert(v: Any) -> str:
        if type(v) is not int or not 0 <= v * factor <= _DAY_US:
            raise _bad(v, "a time of day")
        return pg_time_text(v * factor)
    return convert


def _interval(v: Any) -> str:
    try:
        return iso_interval_to_pg(_text(v))
    except ValueError:
        raise _bad(v, "an ISO interval") from None


def _base64(v: Any) -> bytes:
    try:
        return base64.b64decode(_text(v), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(v, "base64") from None


def _bits(v: Any) -> str:
    return "1" if _boolean(v) else "0"


_int64 = _integer(1 << 63)


def _oid(v: Any) -> str:
    return str(_int64(v))


def decoder(field: Mapping[str, Any], lake_type: str) -> Decoder:
    """The decoder of one column (its Debezium field schema, its lake type); NotDirect when the direct
    apply has none for it (the table is applied by Spark)."""
    kind, name = field.get("type"), field.get("name")
    source_type = str((field.get("parameters") or {}).get(SOURCE_TYPE, "")).upper()
    lake = lake_type.replace(" ", "").lower()
    found = _decoder(kind, name, source_type, lake)
    if found is None:
        raise NotDirect(f"{name or kind} ({source_type or '?'}) as {lake_type} has no direct decoding")
    return found


def _decoder(kind: Any, name: Any, source_type: str, lake: str) -> Decoder | None:
    if kind in _KINDS and name is None:
        if lake == _KINDS[kind]:
            return Decoder(_integer(_INT_RANGES[lake]), "")
        if lake == "string" and source_type == "OID":
            return Decoder(_oid, "")
        return None
    if kind == "boolean" and name is None and lake == "boolean":
        return Decoder(_boolean, "")
    if kind == "boolean" and name == "io.debezium.data.Bits" and lake == "string":
        return Decoder(_bits, "")
    if kind in ("double", "float64") and name is None and lake == "double":
        return Decoder(_double, "")
    if name == "io.debezium.time.Date" and lake == "date":
        return Decoder(_days, "int32")
    if name in _TS_FACTOR and lake == "timestamp_ntz":
        return Decoder(_timestamp(_TS_FACTOR[name]), "int64")
    if name == "io.debezium.time.ZonedTimestamp" and lake == "timestamp":
        return Decoder(_zoned_timestamp, "int64")
    if name in _TIME_FACTOR and lake == "string":
        return Decoder(_time(_TIME_FACTOR[name]), "")
    if name == "io.debezium.time.Interval" and lake == "string":
        return Decoder(_interval, "")
    if kind == "bytes" and name is None and lake == "binary":
        return Decoder(_base64, "")
    if kind != "string" or name not in _TEXT_NAMES:
        return None
    decimal = _DECIMAL.match(lake)
    if decimal and name is None:
        return Decoder(_exact_decimal(int(decimal.group(1)), int(decimal.group(2))), "string")
    if lake != "string":
        return None
    return Decoder(_numeric_text if source_type == "NUMERIC" and name is None else _text, "")
