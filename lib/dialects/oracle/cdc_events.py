"""How the stream reads the Debezium Oracle connector's change events (pure; lib.cdc.event_format).

Order (lib/dialects/oracle/cdc_order.py): ``(commit_scn, scn, Kafka offset)``, compared as numbers.
Stored as the two position columns: ``__source_commit_pos = commit_scn`` and
``__source_change_pos = scn * 10^18 + Kafka offset`` (an SCN is below 2^64 < 10^20, an offset below
10^18 in any real topic; outside those the event is a dead letter, never misordered). An event is in
the bulk copy when its ``commit_scn`` is at or below the SCN the copy read AS OF (docs/cdc-handoff.md).

Values: lib/dialects/oracle/cdc_decode.py (what differs from lib.cdc.decode), with the column facts
(precision, fraction digits) read back from the field's propagated source type parameters. Oracle
sends the LOB placeholder only for CLOB, NCLOB and BLOB columns an UPDATE did not change (Debezium
Oracle connector, "Binary and Character LOB types"); XMLTYPE and JSON are stored as LOBs and treated
alike. Topics: ``<prefix>.<OWNER>.<TABLE>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from lib.cdc.decode import DecodedColumn
from lib.cdc.event_format import EventFormat, packed, packed_sql, unpacked
from lib.dialects.base import Column
from lib.dialects.oracle import cdc_decode
from lib.dialects.oracle.cdc_fields import SOURCE_TYPE
from lib.dialects.oracle.cdc_order import event_order
from lib.dialects.oracle.sql import base_type

LENGTH, SCALE = "__debezium.source.column.length", "__debezium.source.column.scale"  # the propagated source column parameters

OFFSET_DIGITS = 18
LOB_TYPES = ("CLOB", "NCLOB", "BLOB", "XMLTYPE", "JSON")


def column_of(field: Mapping[str, Any]) -> Column:
    """The source column facts the decoders need, from the field's propagated parameters
    (``column.propagate.source.type``): the type, its length (precision) and scale."""
    params = field.get("parameters") or {}
    data_type = str(params.get(SOURCE_TYPE) or "")
    length, scale = params.get(LENGTH), params.get(SCALE)
    number = None if length is None else int(length)
    numeric = re.sub(r"\(.*", "", data_type).upper() in ("NUMBER", "FLOAT") or data_type.upper().startswith("INTERVAL")
    info = (("data_type", data_type), ("precision", number if numeric else None), ("scale", None if scale is None else int(scale)),
            ("char_length", None if numeric else number))  # cdc_fields sends the precision, else the character length
    return Column(str(field.get("field") or ""), data_type, bool(field.get("optional", True)), 0, info)


def positions(source_block: Mapping[str, Any], kafka_offset: int) -> tuple[int, int]:
    """Python reference of the stored positions: (commit_scn, scn * 10^18 + offset)."""
    commit, scn, offset = event_order(source_block, kafka_offset)
    return commit, packed(scn, offset, OFFSET_DIGITS)


class OracleEvents(EventFormat):
    name = "oracle"
    source_ddl = "scn: string, commit_scn: string, txId: string, ts_ms: bigint, snapshot: string, schema: string, table: string"

    def positions_sql(self) -> tuple[str, str]:
        commit = f"CAST({_digits('__p.source.commit_scn', 38)} AS decimal(38,0))"
        return commit, packed_sql("trim(__p.source.scn)", "CAST(__offset AS string)", OFFSET_DIGITS)

    def change_text(self, number: int, position_text: Callable[[int], str]) -> str:
        scn, offset = unpacked(number, OFFSET_DIGITS)
        return f"{position_text(scn)} offset {offset}"

    def decode_column(self, field: Mapping[str, Any], lake_type: str, raw: str) -> DecodedColumn:
        return cdc_decode.decode_column(field, lake_type, raw, column_of(field))

    def unavailable_sql(self, field: Mapping[str, Any], raw: str) -> str:
        if base_type(column_of(field)) not in LOB_TYPES:
            return "false"
        return f"coalesce({cdc_decode.is_unavailable_sql(raw, field)}, false)"

    def lake_type(self, field: Mapping[str, Any]) -> str:
        from lib.cdc.source_catalog import stream_lake_type
        from lib.dialects.oracle.types import column_read

        read = column_read(column_of(field))
        return stream_lake_type(read.spark_type, read.needs_profile)


def _digits(expr: str, width: int) -> str:
    return f"CASE WHEN trim({expr}) RLIKE '^[0-9]{{1,{width}}}$' THEN trim({expr}) END"


EVENTS = OracleEvents()
