"""The Kafka Connect field schema Debezium's PostgreSQL connector gives each column (pure).

Compact messages (``schemas.enable=false``) carry values only. The stream decodes them with the field
schema Debezium *would* have sent for the column, rebuilt here from the source catalog for the
connector settings of ``lib/debezium/common.py`` (``decimal.handling.mode=string``,
``time.precision.mode=adaptive_time_microseconds``, ``interval.handling.mode=string``,
``binary.handling.mode=bytes``, ``column.propagate.source.type=.*``). Only what decoding reads is
rebuilt: the Connect ``type``, the logical ``name``, array ``items`` and the propagated source type,
length and scale. ``tests/integration/test_cdc_decode.py`` checks every contract type against the
schema blocks the real connector writes.
"""

from __future__ import annotations

import re
from typing import Any

from lib.dialects.base import Column

SOURCE_TYPE = "__debezium.source.column.type"
LENGTH = "__debezium.source.column.length"
SCALE = "__debezium.source.column.scale"

_PLAIN: dict[str, str] = {
    "int2": "int16", "int4": "int32", "int8": "int64", "oid": "int64",
    "float4": "float", "float8": "double", "bool": "boolean",
    "text": "string", "varchar": "string", "bpchar": "string", "char": "string", "name": "string",
    "numeric": "string", "money": "string",  # decimal.handling.mode=string
    "inet": "string", "cidr": "string", "macaddr": "string", "macaddr8": "string",
    "bytea": "bytes",  # binary.handling.mode=bytes: base64 in JSON
}
_NAMED: dict[str, tuple[str, str]] = {
    "date": ("int32", "io.debezium.time.Date"),
    "timestamptz": ("string", "io.debezium.time.ZonedTimestamp"),
    "time": ("int64", "io.debezium.time.MicroTime"),
    "timetz": ("string", "io.debezium.time.ZonedTime"),
    "interval": ("string", "io.debezium.time.Interval"),
    "uuid": ("string", "io.debezium.data.Uuid"),
    "json": ("string", "io.debezium.data.Json"),
    "jsonb": ("string", "io.debezium.data.Json"),
    "xml": ("string", "io.debezium.data.Xml"),
    "ltree": ("string", "io.debezium.data.Ltree"),
}
UNBOUNDED_NUMERIC_LENGTH = 131089  # PostgreSQL's numeric limit (131072 + 16383 digits), as Debezium reports it
_PRECISION = re.compile(r"\((\d+)(?:\s*,\s*(-?\d+))?\)")


def _length_scale(source_type: str) -> tuple[int | None, int | None]:
    match = _PRECISION.search(source_type)
    if not match:
        return None, None
    return int(match.group(1)), (int(match.group(2)) if match.group(2) is not None else None)


def debezium_field(column: Column) -> dict[str, Any]:
    """The field schema of ``column`` in Debezium's change events (only the parts decoding reads)."""
    if column.info("typcategory") == "A":
        element = Column(column.name, column.source_type.removesuffix("[]"), True, column.ordinal,
                         (("typname", column.info("elem_typname")), ("typcategory", None), ("typtype", "b")))
        items = debezium_field(element)
        items.pop("parameters", None)
        out: dict[str, Any] = {"type": "array", "items": items}
        out["parameters"] = _parameters(column, "_" + str(column.info("elem_typname")))
        return out
    typname = str(column.info("typname"))
    out = _scalar(column, typname)
    out["parameters"] = _parameters(column, typname)
    return out


def _scalar(column: Column, typname: str) -> dict[str, Any]:
    if column.info("typtype") == "e":
        return {"type": "string", "name": "io.debezium.data.Enum"}
    if typname == "timestamp":
        precision, _ = _length_scale(column.source_type)
        name = "io.debezium.time.Timestamp" if precision is not None and precision <= 3 else "io.debezium.time.MicroTimestamp"
        return {"type": "int64", "name": name}
    if typname in ("bit", "varbit"):
        length, _ = _length_scale(column.source_type)
        if typname == "bit" and (length is None or length == 1):
            return {"type": "boolean", "name": "io.debezium.data.Bits"}
        return {"type": "bytes", "name": "io.debezium.data.Bits"}
    if typname in _NAMED:
        kind, name = _NAMED[typname]
        return {"type": kind, "name": name}
    # other types Debezium knows as text (ranges, ...) or, with include.unknown.datatypes, unknown
    return {"type": _PLAIN.get(typname, "string")}


def _parameters(column: Column, type_name: str) -> dict[str, str]:
    params = {SOURCE_TYPE: type_name.upper()}
    length, scale = _length_scale(column.source_type)
    if type_name.lstrip("_") == "numeric" and length is None:
        length, scale = UNBOUNDED_NUMERIC_LENGTH, 0  # what the connector reports for numeric without precision
    if length is not None:
        params[LENGTH] = str(length)
    if scale is not None:
        params[SCALE] = str(scale)
    return params
