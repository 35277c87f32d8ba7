"""The Kafka Connect field schema Debezium's Oracle connector emits for a column (pure), under the
settings of :mod:`lib.dialects.oracle.debezium` (``decimal.handling.mode=string``,
``time.precision.mode=adaptive_time_microseconds``, ``interval.handling.mode=string``,
``binary.handling.mode=bytes``, ``column.propagate.source.type=.*``, ``lob.enabled=true``).

Source: Debezium 3.2 Oracle connector, "Data type mappings"
(https://debezium.io/documentation/reference/3.2/connectors/oracle.html#oracle-data-type-mappings),
checked against ``OracleValueConverters.schemaBuilder`` / ``getNumericSchema`` of the 3.2.3 plugin jar.
The compact (schemaless) stream decodes values with these schemas (lib/dialects/oracle/cdc_decode.py).
"""

from __future__ import annotations

from typing import Any

from lib.dialects.base import Column
from lib.dialects.oracle.sql import base_type
from lib.dialects.oracle.types import fraction_digits, precision_of, scale_of

SOURCE_TYPE = "__debezium.source.column.type"


class NotStreamed(ValueError):
    """Debezium does not stream this column type (the table must leave it out, see long_columns)."""


def _ts_name(digits: int) -> str:
    if digits <= 3:
        return "io.debezium.time.Timestamp"
    return "io.debezium.time.MicroTimestamp" if digits <= 6 else "io.debezium.time.NanoTimestamp"


def _integer_type(col: Column) -> str | None:
    """NUMBER(p, s < 0) narrower than 19 digits arrives as an integer (Debezium's width rule); with
    decimal.handling.mode=string, NUMBER(p, 0) arrives as a string like every other decimal
    (OracleValueConverters.getNumericSchema in the 3.2.3 plugin: scale 0 and a mode other than precise
    take the decimal mode's schema before the width rule is reached)."""
    precision, scale = precision_of(col), scale_of(col)
    if precision is None or scale is None or scale >= 0:
        return None
    width = precision - scale
    for limit, kind in ((3, "int8"), (5, "int16"), (10, "int32"), (19, "int64")):
        if width < limit:
            return kind
    return None


def debezium_field(column: Column) -> dict[str, Any]:
    """``{"type", "optional", "field", "name"?, "parameters"}`` as in a change event's schema block."""
    kind = base_type(column)
    schema: dict[str, Any]
    if kind in ("CHAR", "NCHAR", "VARCHAR", "VARCHAR2", "NVARCHAR2", "CLOB", "NCLOB", "ROWID"):
        schema = {"type": "string"}
    elif kind in ("RAW", "BLOB"):
        schema = {"type": "bytes"}
    elif kind == "BINARY_FLOAT":
        schema = {"type": "float"}
    elif kind == "BINARY_DOUBLE":
        schema = {"type": "double"}
    elif kind == "BOOLEAN":
        schema = {"type": "boolean"}
    elif kind in ("NUMBER", "INTEGER", "FLOAT"):
        integer = _integer_type(column) if kind == "NUMBER" else None
        schema = {"type": integer} if integer else {"type": "string"}  # decimal.handling.mode=string
    elif kind == "DATE":
        schema = {"type": "int64", "name": "io.debezium.time.Timestamp", "version": 1}
    elif kind == "TIMESTAMP":
        schema = {"type": "int64", "name": _ts_name(fraction_digits(column)), "version": 1}
    elif kind in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITH LOCAL TIME ZONE"):
        schema = {"type": "string", "name": "io.debezium.time.ZonedTimestamp", "version": 1}
    elif kind.startswith("INTERVAL"):
        schema = {"type": "string", "name": "io.debezium.time.Interval"}  # interval.handling.mode=string
    elif kind == "XMLTYPE":
        schema = {"type": "string", "name": "io.debezium.data.Xml", "version": 1}
    elif kind == "JSON":
        schema = {"type": "string", "name": "io.debezium.data.Json", "version": 1}
    else:
        raise NotStreamed(f"column {column.name}: Debezium's Oracle connector does not stream {column.source_type}")
    parameters = {SOURCE_TYPE: str(column.info("data_type") or column.source_type), "__debezium.source.column.name": column.name}
    precision, scale = precision_of(column), scale_of(column)
    length = precision if precision is not None else column.info("char_length")
    if length is not None:
        parameters["__debezium.source.column.length"] = str(length)
    if scale is not None:
        parameters["__debezium.source.column.scale"] = str(scale)
    return {**schema, "optional": column.nullable, "field": column.name, "parameters": parameters}
