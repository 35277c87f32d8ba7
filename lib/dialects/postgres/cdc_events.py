"""How the stream reads the Debezium PostgreSQL connector's change events (pure; lib.cdc.event_format).

Positions: ``(source.sequence[0], source.lsn)``. Debezium's ``sequence[0]`` is the LSN of the last
commit it processed before the event's transaction (transactions in commit order); ``source.lsn``
orders the changes within a transaction. An event is in the bulk copy when its transaction
(``source.txId``) is visible in the copy's snapshot (``snapshot_txids``, lib.cdc.visibility); tables
recorded without txids fall back to ``source.lsn <= snapshot LSN`` (docs/cdc-stream.md).
"""

from __future__ import annotations

from lib.cdc.envelope import SOURCE_DDL
from lib.cdc.event_format import EventFormat


class PostgresEvents(EventFormat):
    name = "postgres"
    source_ddl = SOURCE_DDL
    txid_sql = "try_cast(__p.source.txId AS bigint)"

    def positions_sql(self) -> tuple[str, str]:
        return ("coalesce(CAST(from_json(__p.source.sequence, 'array<string>')[0] AS decimal(38,0)), CAST(0 AS decimal(38,0)))",
                "try_cast(__p.source.lsn AS decimal(38,0))")

    def position_error_sql(self) -> str | None:
        """pgoutput events always carry an LSN of digits, a ``sequence`` of LSN texts (or null) and a
        numeric ``txId`` (or null): anything else is not the connector's event (a dead letter), the same
        rule as the direct path's (lib.cdc.direct.events)."""
        return ("NOT coalesce(__p.source.lsn RLIKE '^[0-9]{1,38}$', false)"
                " OR (__p.source.sequence IS NOT NULL AND NOT (startswith(__p.source.sequence, '[')"
                " AND substring(__p.source.sequence, 2) RLIKE '^(\"[0-9]{1,38}\"|null),'))"
                " OR (__p.source.txId IS NOT NULL AND try_cast(__p.source.txId AS bigint) IS NULL)")

    def visible_sql(self, snapshot_position: int, snapshot_txids: str | None) -> str:
        if snapshot_txids:
            from lib.cdc.visibility import parse_snapshot_txids, visible_sql

            return visible_sql("__txid", parse_snapshot_txids(snapshot_txids))
        from lib.cdc.visibility import lsn_fallback_visible

        return lsn_fallback_visible(int(snapshot_position))


EVENTS = PostgresEvents()
