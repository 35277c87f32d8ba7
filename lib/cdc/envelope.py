"""The Debezium JSON envelope as the stream parses it, and TOAST placeholders (pure).

A message value is either compact, the change event itself (``{"before", "after", "source", "op",
"ts_ms", ...}``, ``schemas.enable=false``), or ``{"schema": {...}, "payload": <the same>}``. The stream
parses the event with :func:`payload_ddl` (every row field as STRING, so each value keeps its JSON text
for :mod:`lib.cdc.decode`). The per-field Connect schemas come from the ``schema`` block
(:func:`field_schemas`) or, for compact messages, from the dialect's ``debezium_field`` of each
source column.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from lib.spark_sql import ident

UNAVAILABLE = "__debezium_unavailable_value"  # Debezium's default unavailable.value.placeholder




def row_ddl(columns: Sequence[str]) -> str:
    """``struct<...>`` of a row image with every column as STRING (the value's JSON text)."""
    return "struct<" + ", ".join(f"{ident(c)}: string" for c in columns) + ">"


# The ``source`` block fields of the PostgreSQL connector's events; each source type's own are its
# ``dialect.cdc_events.source_ddl`` (lib.cdc.event_format).
# ``lsn`` and ``txId`` are read as text and checked (lib.dialects.postgres.cdc_events): a number parsed
# as bigint would turn a malformed value into NULL, indistinguishable from an absent one.
SOURCE_DDL = "lsn: string, sequence: string, txId: string, ts_ms: bigint, snapshot: string, schema: string, table: string"


def payload_ddl(columns: Sequence[str], source_ddl: str = SOURCE_DDL) -> str:
    """Spark DDL of a change event's payload for ``from_json``: the row images and source position.
    A compact message (``schemas.enable=false``) is exactly this document."""
    row = row_ddl(columns)
    return f"struct<before: {row}, after: {row}, source: struct<{source_ddl}>, op: string, ts_ms: bigint>"


def envelope_ddl(columns: Sequence[str], source_ddl: str = SOURCE_DDL) -> str:
    """Spark DDL of a message with a schema block (``{"schema": ..., "payload": ...}``) for ``from_json``."""
    return f"struct<payload: {payload_ddl(columns, source_ddl)}>"


def field_schemas(message_schema: Mapping[str, Any], image: str = "after") -> dict[str, dict[str, Any]]:
    """{column: Connect schema of its field} of the ``after`` (or ``before``) image of an envelope schema."""
    for part in message_schema.get("fields", []):
        if part.get("field") == image:
            return {f["field"]: dict(f) for f in part.get("fields", [])}
    raise ValueError(f"the envelope schema has no {image!r} image")


def unavailable_values(kind: str, placeholder: str = UNAVAILABLE) -> list[str]:
    """Raw texts (as the all-string parse yields them) that mean "unchanged TOAST value, not sent".

    Debezium 3.x sends the placeholder as a string, as base64 of its bytes for bytea, as a one-element
    array for text-like and uuid arrays (uuid: the name-based UUID of its bytes) and as the list of
    its byte values for integer arrays. Compact JSON, as Spark re-serializes arrays.
    """
    data = placeholder.encode()
    digest = bytearray(hashlib.md5(data).digest())  # Java's UUID.nameUUIDFromBytes (version 3)
    digest[6] = (digest[6] & 0x0F) | 0x30
    digest[8] = (digest[8] & 0x3F) | 0x80
    encoded = base64.b64encode(data).decode()
    compact = lambda v: json.dumps(v, separators=(",", ":"))  # noqa: E731
    if kind == "string":
        return [placeholder]
    if kind == "bytes":
        return [encoded]
    if kind == "array":
        return [compact([placeholder]), compact([encoded]), compact(list(data)), compact([str(uuid.UUID(bytes=bytes(digest)))])]
    return []


def is_unavailable_expr(field_schema: Mapping[str, Any], raw_expr: str, placeholder: str = UNAVAILABLE) -> str:
    """Spark SQL boolean: the raw value is Debezium's unchanged-TOAST placeholder, so the MERGE must
    keep the stored value. Only types PostgreSQL can TOAST (varlena: strings, bytes, arrays) can hold
    it; fixed-size types never do (FALSE). A source value equal to the placeholder is indistinguishable."""
    values = unavailable_values(str(field_schema.get("type")), placeholder)
    if not values:
        return "false"
    literals = ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)
    return f"coalesce(({raw_expr}) IN ({literals}), false)"
