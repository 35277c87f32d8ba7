"""The Kafka Connect field schema Debezium's SQL Server connector emits for a column (pure), under the
settings of :mod:`lib.dialects.sqlserver.debezium` (``decimal.handling.mode=string``,
``time.precision.mode=adaptive_time_microseconds``, ``binary.handling.mode=bytes``,
``column.propagate.source.type=.*``).

Source: Debezium 3.2 SQL Server connector, "Data type mappings"
(https://debezium.io/documentation/reference/3.2/connectors/sqlserver.html#sqlserver-data-types),
checked against ``SqlServerValueConverters.schemaBuilder`` of the 3.2.3 plugin jar (tinyint -> int16,
money -> the decimal mode, datetimeoffset -> ZonedTimestamp, the rest JdbcValueConverters').
"""

from __future__ import annotations

from typing import Any

from lib.dialects.base import Column
from lib.dialects.sqlserver.sql import base_type

SOURCE_TYPE = "__debezium.source.column.type"
_PLAIN = {
    "bit": "boolean",
    "tinyint": "int16",
    "smallint": "int16",
    "int": "int32",
    "bigint": "int64",
    "real": "float",
    "float": "double",
    "char": "string",
    "varchar": "string",
    "text": "string",
    "nchar": "string",
    "nvarchar": "string",
    "ntext": "string",
    "sysname": "string",
    "uniqueidentifier": "string",
    "decimal": "string",  # decimal.handling.mode=string
    "numeric": "string",
    "money": "string",
    "smallmoney": "string",
    "binary": "bytes",
    "varbinary": "bytes",
    "image": "bytes",
    "timestamp": "bytes",
    "rowversion": "bytes",
}


class NotStreamed(ValueError):
    """Debezium's SQL Server connector has no mapping for this type (hierarchyid, spatial, sql_variant)."""


def debezium_field(column: Column) -> dict[str, Any]:
    kind = base_type(column)
    scale = column.info("scale")
    schema: dict[str, Any]
    if kind == "float" and (column.info("precision") or 53) <= 24:
        schema = {"type": "float"}
    elif kind in _PLAIN:
        schema = {"type": _PLAIN[kind]}
    elif kind == "xml":
        schema = {"type": "string", "name": "io.debezium.data.Xml", "version": 1}
    elif kind == "datetimeoffset":
        schema = {"type": "string", "name": "io.debezium.time.ZonedTimestamp", "version": 1}
    elif kind == "date":
        schema = {"type": "int32", "name": "io.debezium.time.Date", "version": 1}
    elif kind == "time":
        schema = {"type": "int64", "name": "io.debezium.time.MicroTime", "version": 1}  # adaptive_time_microseconds
    elif kind in ("datetime", "smalldatetime"):
        schema = {"type": "int64", "name": "io.debezium.time.Timestamp", "version": 1}
    elif kind == "datetime2":
        digits = 7 if scale is None else int(scale)
        name = "io.debezium.time.Timestamp" if digits <= 3 else "io.debezium.time.MicroTimestamp" if digits <= 6 else "io.debezium.time.NanoTimestamp"
        schema = {"type": "int64", "name": name, "version": 1}
    else:
        raise NotStreamed(f"column {column.name}: Debezium's SQL Server connector does not stream {column.source_type}")
    parameters = {SOURCE_TYPE: kind.upper(), "__debezium.source.column.name": column.name}
    precision, length = column.info("precision"), column.info("max_length")
    if kind in ("decimal", "numeric", "money", "smallmoney") and precision is not None:
        parameters["__debezium.source.column.length"] = str(precision)
    elif length is not None:
        parameters["__debezium.source.column.length"] = str(length)
    if scale is not None:
        parameters["__debezium.source.column.scale"] = str(scale)
    return {**schema, "optional": column.nullable, "field": column.name, "parameters": parameters}
