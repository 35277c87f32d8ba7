"""The SQL Server dialect: discovery, type mapping, partitioned reads and the Debezium handoff."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib.config.model import ConnectionConfig
from lib.dialects.base import Column, ColumnRead, Snapshot, Table
from lib.dialects.jdbc_dialect import JdbcDialect
from lib.dialects.sqlserver import catalog, connect, debezium, snapshot, sql, types
from lib.dialects.sqlserver.cdc_events import EVENTS as CDC_EVENTS
from lib.dialects.sqlserver.cdc_fields import debezium_field
from lib.dialects.sqlserver.cdc_order import event_order, lsn_number, lsn_text


class SqlServerDialect(JdbcDialect):
    name = "sqlserver"
    jdbc_driver = connect.DRIVER
    connect = connect
    catalog = catalog
    sql = sql
    handoff = snapshot

    quote_ident = staticmethod(sql.quote_ident)
    range_predicates = staticmethod(sql.range_predicates)
    physical_predicates = staticmethod(sql.physical_predicates)  # normalised BINARY_CHECKSUM buckets
    position_number = staticmethod(lsn_number)
    position_text = staticmethod(lsn_text)  # 00000027:00000758:0005
    connector_config = staticmethod(debezium.connector_config)
    prepare_sql = staticmethod(debezium.prepare_sql)
    event_order = staticmethod(event_order)
    debezium_field = staticmethod(debezium_field)  # decoding of compact (schemaless) events
    cdc_events = CDC_EVENTS  # how the stream reads its change events (lib.cdc.event_format)

    def session_init(self, conn: ConnectionConfig) -> str:
        return sql.session_init_sql(conn.read_isolation)

    def column_read(self, col: Column, profile: dict[str, Any] | None) -> ColumnRead:
        return types.column_read(col)  # every SQL Server type has a declared precision: nothing to measure

    def sample_query(self, table: Table, columns: Sequence[Column], percent: float | None, step: int) -> str:
        return sql.sample_sql(table, columns, percent, step)

    @staticmethod
    def dbtable(query: str) -> str:
        return f"({query}) AS q"

    def select_sql(self, table: Table, reads: Sequence[ColumnRead], predicate: str | None, snapshot: Snapshot | None = None) -> str:
        return sql.select_sql(table, [r.select_sql for r in reads], predicate)

    def current_position(self, conn: ConnectionConfig) -> str:
        return snapshot.canonical_lsn(self.query(conn, sql.MAX_LSN_SQL)[0][0])

    def count_rows(self, conn: ConnectionConfig, snap: Snapshot | None, table: Table) -> int:
        return int(self.query(conn, sql.count_sql(table))[0][0])

    def profile_columns(self, conn: ConnectionConfig, snap: Snapshot | None, table: Table, columns: Sequence[str]) -> dict[str, Any]:
        return {}
