"""Decoding SQL Server Debezium values to exactly the bulk path's lake values (pure), where
lib/cdc/decode.py (written for PostgreSQL) differs. The stream uses :func:`decode_column` (through lib/dialects/sqlserver/cdc_events.py).

| Debezium field (lib/dialects/sqlserver/cdc_fields.py) | lake (lib/dialects/sqlserver/types.py) | gap in lib/cdc/decode.py |
|---|---|---|
| io.debezium.time.MicroTime of time(n) | string ``HH:MM:SS.ffffff`` with exactly min(n, 6) fraction digits (CONVERT keeps trailing zeros) | writes PostgreSQL's time text (trailing zeros dropped) |
| io.debezium.time.NanoTimestamp of datetime2(7) before 1970 | timestamp_ntz: the JDBC path floors to the microsecond | ``div 1000`` truncates toward zero (1 us later for negative nanos with a 100 ns digit) |
| io.debezium.time.ZonedTimestamp of datetimeoffset | timestamp, the same instant | none (``try_cast`` keeps the offset's instant) |
| hierarchyid, geometry, geography, sql_variant | string | Debezium has no mapping: such columns are not streamed (cdc_fields.NotStreamed) |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lib.cdc.decode import DecodedColumn
from lib.cdc.decode import decode_column as generic_decode_column
from lib.dialects.base import Column

MICROS_PER_DAY = 86_400_000_000


def time_text(micros: int, scale: int) -> str:
    """MicroTime (microseconds after midnight) as the bulk path's ``LEFT(CONVERT(varchar(16), t), ..)``."""
    seconds, fraction = divmod(micros, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    text = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    digits = min(scale, 6)
    return text + (f".{fraction:06d}"[: digits + 1] if digits else "")


def nano_timestamp_micros(nanos: int) -> int:
    """Nanoseconds since the epoch floored to microseconds, as Spark's JDBC reader does."""
    return nanos // 1000


def time_sql(raw: str, scale: int) -> str:
    us = f"try_cast({raw} AS bigint)"
    hms = (
        f"concat(lpad(CAST({us} div 3600000000 AS string), 2, '0'), ':', lpad(CAST(({us} div 60000000) % 60 AS string), 2, '0'), ':', "
        f"lpad(CAST(({us} div 1000000) % 60 AS string), 2, '0'))"
    )
    digits = min(scale, 6)
    if not digits:
        return f"CASE WHEN {us} IS NOT NULL THEN {hms} END"
    return f"CASE WHEN {us} IS NOT NULL THEN concat({hms}, '.', substr(lpad(CAST({us} % 1000000 AS string), 6, '0'), 1, {digits})) END"


def nano_timestamp_sql(raw: str) -> str:
    n = f"try_cast({raw} AS bigint)"
    return f"timestampadd(MICROSECOND, ({n} - pmod({n}, 1000)) div 1000, TIMESTAMP_NTZ'1970-01-01 00:00:00')"


def decode_column(field: Mapping[str, Any], lake_type: str, source_column: str, column: Column) -> DecodedColumn:
    raw = f"({source_column})"
    name, lake = field.get("name"), lake_type.replace(" ", "").lower()
    value: str | None = None
    if name == "io.debezium.time.MicroTime" and lake == "string":
        scale = column.info("scale")
        value = time_sql(raw, 7 if scale is None else int(scale))
    elif name == "io.debezium.time.NanoTimestamp" and lake == "timestamp_ntz":
        value = nano_timestamp_sql(raw)
    if value is None:
        return generic_decode_column(field, lake_type, source_column)
    return DecodedColumn(value, f"({raw} IS NULL OR {value} IS NOT NULL)")
