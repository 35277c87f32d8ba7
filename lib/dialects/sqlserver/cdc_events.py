"""How the stream reads the Debezium SQL Server connector's change events (pure; lib.cdc.event_format).

Order (lib/dialects/sqlserver/cdc_order.py): ``(commit_lsn, change_lsn, event_serial_no)``, LSNs as
80-bit numbers. Stored as the two position columns: ``__source_commit_pos = commit_lsn`` and
``__source_change_pos = change_lsn * 10^13 + event_serial_no`` (2^80 * 10^13 < 10^38; a serial
number at or above 10^13, or a malformed LSN, makes the event a dead letter). An event is in the bulk
copy when its ``commit_lsn`` is at or below the copy's position L (docs/cdc-handoff.md): the rows
were tagged with L and every change after it is replayed.

Values: lib/dialects/sqlserver/cdc_decode.py (time with its fixed fraction digits, datetime2(7)
floored like the JDBC read), the column's scale read back from the field's parameters. Topics:
``<prefix>.<database>.<schema>.<table>`` (Debezium's naming since 2.0).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lib.cdc.decode import DecodedColumn
from lib.cdc.event_format import EventFormat, packed, packed_sql, sanitize_topic, unpacked
from lib.dialects.base import Column
from lib.dialects.sqlserver import cdc_decode
from lib.dialects.sqlserver.cdc_fields import SOURCE_TYPE
from lib.dialects.sqlserver.cdc_order import event_order

LENGTH, SCALE = "__debezium.source.column.length", "__debezium.source.column.scale"  # the propagated source column parameters

SERIAL_DIGITS = 13
_LSN = "^[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8}:[0-9A-Fa-f]{4}$"


def column_of(field: Mapping[str, Any]) -> Column:
    params = field.get("parameters") or {}
    base = str(params.get(SOURCE_TYPE) or "").lower()
    length, scale = params.get(LENGTH), params.get(SCALE)
    number = None if length is None else int(length)
    decimal = base in ("decimal", "numeric", "money", "smallmoney")  # cdc_fields puts their precision in the length
    info = (("base_type", base), ("max_length", None if decimal else number), ("precision", number if decimal else None),
            ("scale", None if scale is None else int(scale)))
    return Column(str(field.get("field") or ""), base, bool(field.get("optional", True)), 0, info)


def lsn_sql(expr: str) -> str:
    """Spark SQL decimal(38,0) of a Debezium LSN text ``xxxxxxxx:xxxxxxxx:xxxx`` (hex) as one 80-bit
    number (high 32 bits * 2^48 + low 48 bits: ``conv`` handles 64 bits at most); NULL when malformed."""
    hexes = f"replace({expr}, ':', '')"
    high = f"CAST(conv(substr({hexes}, 1, 8), 16, 10) AS decimal(38,0))"
    low = f"CAST(conv(substr({hexes}, 9, 12), 16, 10) AS decimal(38,0))"
    return f"CASE WHEN {expr} RLIKE '{_LSN}' THEN CAST({high} * CAST(281474976710656 AS decimal(38,0)) + {low} AS decimal(38,0)) END"


def positions(source_block: Mapping[str, Any], kafka_offset: int) -> tuple[int, int]:
    """Python reference of the stored positions: (commit_lsn, change_lsn * 10^13 + event_serial_no)."""
    commit, change, serial = event_order(source_block, kafka_offset)
    return commit, packed(change, serial, SERIAL_DIGITS)


class SqlServerEvents(EventFormat):
    name = "sqlserver"
    source_ddl = ("change_lsn: string, commit_lsn: string, event_serial_no: bigint, ts_ms: bigint, snapshot: string, "
                  "schema: string, table: string")

    def positions_sql(self) -> tuple[str, str]:
        change = f"CAST({lsn_sql('__p.source.change_lsn')} AS string)"
        serial = "CAST(coalesce(__p.source.event_serial_no, 0) AS string)"
        return lsn_sql("__p.source.commit_lsn"), packed_sql(change, serial, SERIAL_DIGITS)

    def change_text(self, number: int, position_text: Callable[[int], str]) -> str:
        lsn, serial = unpacked(number, SERIAL_DIGITS)
        return f"{position_text(lsn)} serial {serial}"

    def decode_column(self, field: Mapping[str, Any], lake_type: str, raw: str) -> DecodedColumn:
        return cdc_decode.decode_column(field, lake_type, raw, column_of(field))

    def lake_type(self, field: Mapping[str, Any]) -> str:
        from lib.dialects.sqlserver.types import column_read

        return column_read(column_of(field)).spark_type

    def topic(self, prefix: str, database: str | None, schema: str, table: str) -> str:
        return sanitize_topic(f"{prefix}.{database}.{schema}.{table}")


EVENTS = SqlServerEvents()
