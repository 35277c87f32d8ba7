"""Debezium PostgreSQL field values -> lake values in Python, for the direct apply (pure).

The same mappings as :mod:`lib.cdc.decode` (whose Spark SQL expressions are the reference), for every
field encoding it decodes: integers, booleans, ``real`` (float32) and doubles, text, exact decimals
(``numeric``, ``money``; ``numeric`` kept as text when the lake column is text), dates, timestamps
(milli, micro and nano) with and without time zone, times (milli, micro, nano), ``timetz``, intervals,
bytes, ``bit(n)`` and arrays of any of these. Each :class:`Decoder` turns the value ``json.loads``
gives into the *storage* value of its Arrow column (days for dates, microseconds for timestamps, lists
of those for arrays) and raises :class:`NotDirect` for a value it cannot give exactly as the Spark
expression would (the whole range is then applied by Spark, which dead-letters what is undecodable).
A field with no decoder here sends its table to Spark (:func:`decoder`): what the Spark decoders refuse
too (``bit varying``, nested arrays, arrays of bytes, ...) and combinations the bulk load never makes
(a JSON float into an integer column, ...).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lib.cdc.decode import NUMERIC_SPECIALS, SOURCE_TYPE, UnsupportedField, bits_length, iso_interval_to_pg, pg_time_text
from lib.cdc.envelope import unavailable_values


class NotDirect(Exception):
    """What the direct apply cannot reproduce exactly: the range is applied by Spark instead."""


@dataclass(frozen=True)
class Decoder:
    convert: Callable[[Any], Any]  # the JSON value (not None) -> the storage value
    # the Arrow type the values are built as, then cast to the lake type's: int32 (dates), int64
    # (timestamps), string (decimals), list<...> of those (arrays of them), or "" (built as the lake
    # type); :func:`arrow_storage` makes it
    storage: str


def arrow_storage(storage: str) -> Any:
    """The pyarrow type of a :attr:`Decoder.storage` name (not ""): ``int64``, ``list<int32>``, ..."""
    import pyarrow as pa

    if storage.startswith("list<") and storage.endswith(">"):
        return pa.list_(pa.field("element", arrow_storage(storage[5:-1])))
    return getattr(pa, storage)()


_INT_RANGES = {"smallint": 1 << 15, "int": 1 << 31, "bigint": 1 << 63}
_INTEGER_KINDS = frozenset(("int8", "int16", "int32", "int64"))  # lib.cdc.decode._INTEGERS
_NUMBER_KINDS = _INTEGER_KINDS | {"float", "float32", "double", "float64"}
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
_INT64_MIN, _INT64_END = -(1 << 63), 1 << 63
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


_FLOAT32 = struct.Struct("<f")
_BITS32 = struct.Struct("<I")
_SPECIAL_REALS = {k: _FLOAT32.unpack(_FLOAT32.pack(v))[0] for k, v in _SPECIAL_DOUBLES.items()}


def _real(v: Any) -> float:
    """``try_cast(<the JSON number's text> AS float)``: Java's ``Float.parseFloat``, the float32 nearest
    the decimal text (``Infinity``, ``-Infinity``, ``NaN`` as the strings Debezium sends for them).

    ``json.loads`` has made the double nearest the text, and packing it rounds that to float32 (half to
    even): the same float32 unless the double lies exactly halfway between two float32 values (the text
    could lie on either side of it), which is refused; so is a number beyond float32's range (Spark
    would give an infinity, Debezium never sends one). The result is exactly a float32 value, so Arrow's
    float32 column takes it unchanged."""
    t = type(v)
    if t is not float and t is not int:
        if isinstance(v, str) and v in _SPECIAL_REALS:
            return _SPECIAL_REALS[v]
        raise _bad(v, "a float32")
    try:
        packed = _FLOAT32.pack(v)
    except (OverflowError, struct.error):
        raise _bad(v, "a float32 in range") from None
    f = _FLOAT32.unpack(packed)[0]
    if f == v or f != f:  # exact (zeros and infinities included), or NaN
        return f
    bits = _BITS32.unpack(packed)[0]
    # the float32 on v's other side: one step further from zero when |v| > |f|, else one step closer
    other = _FLOAT32.unpack(_BITS32.pack(bits + 1 if abs(v) > abs(f) else bits - 1))[0]
    if 2 * v == f + other:  # exact arithmetic: f + other has at most 26 significant bits
        raise _bad(v, "a float32 (halfway between two)")
    return f


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


def _trunc_div_1000(v: Any, what: str) -> int:
    """``try_cast(v AS bigint) div 1000``: Spark's integral division truncates toward zero."""
    if type(v) is not int or not _INT64_MIN <= v < _INT64_END:
        raise _bad(v, what)
    return v // 1000 if v >= 0 else -(-v // 1000)


def _nano_timestamp(v: Any) -> int:
    micros = _trunc_div_1000(v, "a timestamp in 0001..9999")
    if not _MIN_US <= micros <= _MAX_US:
        raise _bad(v, "a timestamp in 0001..9999")
    return micros


def _nano_time(v: Any) -> str:
    micros = _trunc_div_1000(v, "a time of day")
    if not 0 <= micros <= _DAY_US:
        raise _bad(v, "a time of day")
    return pg_time_text(micros)


_ZONED_TIME = re.compile(r"([0-9]{2}:[0-9]{2}:[0-9]{2})(?:[.]([0-9]*))?Z\Z")  # lib.cdc.decode._ZONED_TIME


def _zoned_time(v: Any) -> str:
    """``HH:MM:SS[.f]+00`` of Debezium's UTC time (``...Z``), the fraction without trailing zeros, as
    the Spark expression gives it (the source's offset is already lost: lib.cdc.decode.TIMETZ_LOSS)."""
    match = _ZONED_TIME.match(v) if type(v) is str else None
    if match is None:
        raise _bad(v, "an ISO UTC time")
    fraction = (match.group(2) or "").rstrip("0")
    return f"{match.group(1)}.{fraction}+00" if fraction else match.group(1) + "+00"


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


def _bit_string(length: int) -> Callable[[Any], str]:
    """``bit(n)::text`` of Debezium's Bits bytes (lib.cdc.decode.bits_sql): the little-endian number
    printed as ``n`` binary digits; a number of more than ``n`` bits is refused."""
    digits = f"0{length}b"

    def convert(v: Any) -> str:
        if type(v) is not str:
            raise _bad(v, f"a bit({length})")
        try:
            number = int.from_bytes(base64.b64decode(v, validate=True), "little")
        except (binascii.Error, ValueError):
            raise _bad(v, f"a bit({length})") from None
        if number >> length:
            raise _bad(v, f"a bit({length})")
        return format(number, digits)
    return convert


def _array(element: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    """A JSON array, every element decoded by ``element`` (nulls kept); an element that does not decode
    refuses the array (the Spark path's ``ok``: no element may turn NULL)."""
    def convert(v: Any) -> list[Any]:
        if type(v) is not list:
            raise _bad(v, "an array")
        return [None if e is None else element(e) for e in v]
    return convert


_int64 = _integer(1 << 63)


def _oid(v: Any) -> str:
    return str(_int64(v))


def decoder(field: Mapping[str, Any], lake_type: str) -> Decoder:
    """The decoder of one column (its Debezium field schema, its lake type); NotDirect when the direct
    apply has none for it (the table is applied by Spark)."""
    lake = lake_type.replace(" ", "").lower()
    if field.get("type") == "array":
        found = _array_decoder(field, lake)
    else:
        found = _decoder(field, lake)
    if found is None:
        source_type = str((field.get("parameters") or {}).get(SOURCE_TYPE, "")).upper()
        raise NotDirect(f"{field.get('name') or field.get('type')} ({source_type or '?'}) as {lake_type} has no direct decoding")
    return found


def _array_decoder(field: Mapping[str, Any], lake: str) -> Decoder | None:
    """lib.cdc.decode._array: the element's decoder for the items' schema with the array's source type
    without its leading ``_``, for the lake's element type; nested arrays have none."""
    items = dict(field.get("items") or {})
    if not (lake.startswith("array<") and lake.endswith(">")) or items.get("type") == "array":
        return None
    source_type = str((field.get("parameters") or {}).get(SOURCE_TYPE, ""))
    items["parameters"] = {**(items.get("parameters") or {}), SOURCE_TYPE: source_type.removeprefix("_")}
    element = _decoder(items, lake[len("array<"):-1])
    if element is None:
        return None
    return Decoder(_array(element.convert), f"list<{element.storage}>" if element.storage else "")


def _decoder(field: Mapping[str, Any], lake: str) -> Decoder | None:
    """lib.cdc.decode._scalar's cases, for the lake types the bulk load gives them."""
    kind, name = field.get("type"), field.get("name")
    source_type = str((field.get("parameters") or {}).get(SOURCE_TYPE, "")).upper()
    if kind in _NUMBER_KINDS and name is None:
        if kind in _INTEGER_KINDS and lake in _INT_RANGES:
            return Decoder(_integer(_INT_RANGES[lake]), "")
        if kind in _INTEGER_KINDS and lake == "string" and source_type == "OID":
            return Decoder(_oid, "")
        if lake == "double":
            return Decoder(_double, "")
        if lake == "float":
            return Decoder(_real, "")
        return None
    if kind == "boolean" and name is None and lake == "boolean":
        return Decoder(_boolean, "")
    if kind == "boolean" and name is None and source_type == "BIT" and lake == "string":  # bit(1) as the connector's field has it
        return Decoder(_bits, "")
    if name == "io.debezium.data.Bits" and lake == "string":
        if kind == "boolean":
            return Decoder(_bits, "")
        if kind == "bytes":
            try:
                return Decoder(_bit_string(bits_length(field)), "")
            except UnsupportedField:
                return None
        return None
    if name == "io.debezium.time.Date" and lake == "date":
        return Decoder(_days, "int32")
    if name in _TS_FACTOR and lake == "timestamp_ntz":
        return Decoder(_timestamp(_TS_FACTOR[name]), "int64")
    if name == "io.debezium.time.NanoTimestamp" and lake == "timestamp_ntz":
        return Decoder(_nano_timestamp, "int64")
    if name == "io.debezium.time.ZonedTimestamp" and lake == "timestamp":
        return Decoder(_zoned_timestamp, "int64")
    if name in _TIME_FACTOR and lake == "string":
        return Decoder(_time(_TIME_FACTOR[name]), "")
    if name == "io.debezium.time.NanoTime" and lake == "string":
        return Decoder(_nano_time, "")
    if name == "io.debezium.time.ZonedTime" and lake == "string":
        return Decoder(_zoned_time, "")
    if name == "io.debezium.time.Interval" and lake == "string":
        return Decoder(_interval, "")
    if kind == "bytes" and name is None and lake == "binary":
        return Decoder(_base64, "")
    if kind != "string" or name not in _TEXT_NAMES:
        return None
    decimal = _DECIMAL.match(lake)
    if decimal:
        return Decoder(_exact_decimal(int(decimal.group(1)), int(decimal.group(2))), "string")
    if lake != "string":
        return None
    return Decoder(_numeric_text if source_type == "NUMERIC" else _text, "")


def toast_values(field: Mapping[str, Any]) -> frozenset[str] | tuple[Any, ...]:
    """Debezium's unchanged-TOAST placeholder in the forms ``json.loads`` gives it for this field, for
    the pass's ``raw in ...`` check: strings (text, base64 bytes) in a set; for an array, its lists
    (the placeholder text, its base64, its bytes as numbers, its name-based UUID) in a tuple, compared
    by ``==`` (a list cannot be looked up in a set)."""
    kind = str(field.get("type"))
    values = unavailable_values(kind)
    if kind == "array":
        return tuple(json.loads(v) for v in values)
    return frozenset(values)
