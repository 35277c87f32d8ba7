"""The lake type of a column that appears in the source while the stream runs (pure).

A new column's type comes from its Debezium field schema (Connect type, logical name and the source
column type the connector propagates), following docs/reference.md like the bulk path does. One
difference: a ``numeric`` without precision becomes ``string`` here (the bulk path measures the data to
pick the narrowest decimal; a stream cannot know future values, and a string never rounds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lib.cdc.decode import SOURCE_TYPE
from lib.dialects.postgres.types import MAX_DECIMAL_PRECISION, MONEY_TYPE

LENGTH = "__debezium.source.column.length"
SCALE = "__debezium.source.column.scale"
_CONNECT = {"int8": "tinyint", "int16": "smallint", "int32": "int", "int64": "bigint", "float": "float", "float32": "float",
            "double": "double", "float64": "double", "boolean": "boolean", "bytes": "binary"}
_NAMED = {
    "io.debezium.time.Date": "date",
    "io.debezium.time.Timestamp": "timestamp_ntz",
    "io.debezium.time.MicroTimestamp": "timestamp_ntz",
    "io.debezium.time.NanoTimestamp": "timestamp_ntz",
    "io.debezium.time.ZonedTimestamp": "timestamp",
    "io.debezium.data.Bits": "string",
}


def lake_type_for(field_schema: Mapping[str, Any]) -> str:
    """Spark DDL type of the lake column for a Debezium field."""
    if field_schema.get("type") == "array":
        items = dict(field_schema.get("items") or {})
        source_type = str((field_schema.get("parameters") or {}).get(SOURCE_TYPE, ""))
        params = field_schema.get("parameters") or {}
        items["parameters"] = {**(items.get("parameters") or {}), SOURCE_TYPE: source_type.removeprefix("_"),
                               **{k: params[k] for k in (LENGTH, SCALE) if k in params}}
        return f"array<{lake_type_for(items)}>"
    name = field_schema.get("name")
    if name in _NAMED:
        return _NAMED[name]
    params = field_schema.get("parameters") or {}
    source_type = str(params.get(SOURCE_TYPE, "")).upper()
    if source_type == "OID":
        return "string"  # as the bulk path reads it (text)
    if field_schema.get("type") == "string" and source_type == "MONEY":
        return MONEY_TYPE
    if field_schema.get("type") == "string" and source_type == "NUMERIC":
        precision, scale = _int(params.get(LENGTH)), _int(params.get(SCALE))
        if precision is not None and 0 < precision <= MAX_DECIMAL_PRECISION and scale is not None and 0 <= scale <= precision:
            return f"decimal({precision},{scale})"
        return "string"
    if name is None and field_schema.get("type") in _CONNECT:
        return _CONNECT[str(field_schema["type"])]
    return "string"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
