"""How the stream reads one source type's Debezium change events (pure: Spark SQL text).

What differs between connectors lives behind this interface, one subclass per dialect
(``lib/dialects/<type>/cdc_events.py``, reached as ``dialect.cdc_events``), so the apply
(lib.cdc.plan, lib.cdc.spark.table_apply) has no per-source branches:

- ``source_ddl``: the fields of the event's ``source`` block the stream parses;
- ``positions_sql``: the event's position as the two decimal(38,0) numbers every lake row carries
  (``__source_commit_pos``, ``__source_change_pos``), compared as values: transactions in commit
  order, changes within one in their own order;
- ``position_error_sql``: when an event's position is missing or out of range (a dead letter, never a
  guessed order);
- ``visible_sql``: the event is already in the bulk copy (skipped);
- ``decode_column`` / ``unavailable_sql`` / ``lake_type``: a field's value as the bulk path's lake
  value, Debezium's "value not sent" placeholder, the lake type of a new column;
- ``topic``: the table's Kafka topic.

The defaults here are what every connector shares (lib.cdc.decode's decoding, Debezium's default topic
naming); the subclasses override what their connector does differently.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from lib.cdc.decode import DecodedColumn
from lib.cdc.decode import decode_column as generic_decode_column
from lib.cdc.envelope import is_unavailable_expr

COMMIT, CHANGE = "__source_commit_pos", "__source_change_pos"
DECIMAL_DIGITS = 38  # decimal(38,0): the position columns' type


def sanitize_topic(name: str) -> str:
    """A topic name as Debezium's default naming strategy writes it: every character a Kafka topic
    cannot hold replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def digits_sql(text: str, width: int) -> str:
    """Spark SQL: ``text`` (a string of decimal digits) left-padded to ``width`` digits; NULL when it
    is not 1..``width`` digits (so a concatenation of such parts is NULL, never a wrong number)."""
    return f"CASE WHEN ({text}) RLIKE '^[0-9]{{1,{width}}}$' THEN lpad({text}, {width}, '0') END"


def packed_sql(high: str, low: str, low_width: int) -> str:
    """Spark SQL decimal(38,0) of ``high * 10^low_width + low`` for two digit strings, by concatenating
    their digits (exact, no arithmetic overflow); NULL when either is not a digit string that fits."""
    return f"CAST(concat({digits_sql(high, DECIMAL_DIGITS - low_width)}, {digits_sql(low, low_width)}) AS decimal(38,0))"


def unpacked(number: int, low_width: int) -> tuple[int, int]:
    """The inverse of :func:`packed`: (high, low)."""
    return divmod(number, 10**low_width)


def packed(high: int, low: int, low_width: int) -> int:
    """Python reference of :func:`packed_sql`."""
    if not (0 <= low < 10**low_width and 0 <= high < 10 ** (DECIMAL_DIGITS - low_width)):
        raise ValueError(f"position parts out of range: {high}, {low} (low part < 10^{low_width})")
    return high * 10**low_width + low


class EventFormat:
    """The shared behaviour; subclasses set ``source_ddl`` and ``positions_sql`` at least."""

    name = "generic"
    source_ddl = "ts_ms: bigint, snapshot: string, schema: string, table: string"
    txid_sql = "CAST(NULL AS bigint)"  # the event's transaction id as the visibility rule reads it

    def positions_sql(self) -> tuple[str, str]:
        """(commit, change) position expressions over the parsed event ``__p`` and ``__offset``."""
        raise NotImplementedError

    def position_error_sql(self) -> str | None:
        """Spark SQL boolean: the event's position cannot be read (then it is a dead letter); None when
        every event has one."""
        commit, change = self.positions_sql()
        return f"({commit} IS NULL OR {change} IS NULL)"

    def visible_sql(self, snapshot_position: int, snapshot_txids: str | None) -> str:
        """The event is contained in the bulk copy: by default, its transaction committed at or before
        the copy's position (the connector-first handoff, docs/cdc-handoff.md)."""
        return f"({COMMIT} <= {int(snapshot_position)})"

    def decode_column(self, field: Mapping[str, Any], lake_type: str, raw: str) -> DecodedColumn:
        return generic_decode_column(field, lake_type, raw)

    def unavailable_sql(self, field: Mapping[str, Any], raw: str) -> str:
        """Spark SQL boolean: the value is Debezium's placeholder for a value the connector did not send
        (the MERGE keeps the stored one); ``false`` when the column cannot carry it."""
        return is_unavailable_expr(field, raw)

    def lake_type(self, field: Mapping[str, Any]) -> str:
        """The lake type of a new column known only by its field schema (messages with a schema block)."""
        from lib.cdc.lake_types import lake_type_for  # imports PostgreSQL's type limits: not at module load

        return lake_type_for(field)

    def change_text(self, number: int, position_text: Callable[[int], str]) -> str:
        """A stored change position in the source's notation (``position_text``: the dialect's, for one
        position number); jobs/status.py shows it beside the commit position."""
        return position_text(number)

    def topic(self, prefix: str, database: str | None, schema: str, table: str) -> str:
        """``<prefix>.<schema>.<table>`` (Debezium's default topic naming)."""
        return sanitize_topic(f"{prefix}.{schema}.{table}")
