"""The Oracle dialect: discovery, type mapping, partitioned flashback reads and the Debezium handoff."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lib.config.model import ConnectionConfig, SourceConfig
from lib.dialects.base import Column, ColumnRead, Snapshot, Table
from lib.dialects.jdbc_dialect import JdbcDialect
from lib.dialects.oracle import catalog, connect, debezium, snapshot, sql, types
from lib.dialects.oracle.cdc_events import EVENTS as CDC_EVENTS
from lib.dialects.oracle.cdc_fields import debezium_field
from lib.dialects.oracle.cdc_order import event_order
from lib.dialects.postgres.types import parse_profile

log = logging.getLogger("bulk")
PROFILE_BATCH = 20


class OracleDialect(JdbcDialect):
    name = "oracle"
    jdbc_driver = connect.DRIVER
    connect = connect
    catalog = catalog
    sql = sql
    handoff = snapshot

    quote_ident = staticmethod(sql.quote_ident)
    range_predicates = staticmethod(sql.range_predicates)
    physical_predicates = staticmethod(sql.physical_predicates)  # ORA_HASH(ROWID) buckets
    position_number = staticmethod(sql.scn_to_int)
    connector_config = staticmethod(debezium.connector_config)
    prepare_sql = staticmethod(debezium.prepare_sql)
    event_order = staticmethod(event_order)
    debezium_field = staticmethod(debezium_field)  # decoding of compact (schemaless) events
    cdc_events = CDC_EVENTS  # how the stream reads its change events (lib.cdc.event_format)

    def session_init(self, conn: ConnectionConfig) -> str:
        return sql.session_init_sql()

    def column_read(self, col: Column, profile: dict[str, Any] | None) -> ColumnRead:
        return types.column_read(col, profile)

    def sample_query(self, table: Table, columns: Sequence[Column], percent: float | None, step: int) -> str:
        return sql.sample_sql(table, columns, None, percent, step)

    @staticmethod
    def dbtable(query: str) -> str:
        return f"({query}) q"  # Oracle takes no AS before a table alias

    def select_sql(self, table: Table, reads: Sequence[ColumnRead], predicate: str | None, snapshot: Snapshot | None = None) -> str:
        return sql.select_sql(table, [r.select_sql for r in reads], predicate, snapshot.position if snapshot else None)

    # --- database calls (JDBC through the job's SparkSession)

    def discover_source(self, source: SourceConfig) -> list[Table]:
        tables, warnings = catalog.apply_column_policies(self.discover(source.connection, source.schemas), source.long_columns)
        for warning in warnings:
            log.warning("%s", warning)
        return tables

    def stream_tables(self, source: SourceConfig, schemas: Sequence[str]) -> list[Table]:
        """LONG columns left out by ``long_columns: exclude`` and BFILEs are neither in the lake nor in the events."""
        return catalog.apply_column_policies(self.discover(source.connection, schemas), source.long_columns)[0]

    def current_position(self, conn: ConnectionConfig) -> str:
        return str(self.query(conn, snapshot.CURRENT_SCN_SQL)[0][0])

    def count_rows(self, conn: ConnectionConfig, snap: Snapshot | None, table: Table) -> int:
        return int(self.query(conn, sql.count_sql(table, snap.position if snap else None))[0][0])

    def profile_columns(self, conn: ConnectionConfig, snap: Snapshot | None, table: Table, columns: Sequence[str]) -> dict[str, Any]:
        """Measure NUMBER columns without precision, AS OF the snapshot's SCN when given."""
        result: dict[str, Any] = {}
        for start in range(0, len(columns), PROFILE_BATCH):
            batch = list(columns[start : start + PROFILE_BATCH])
            query = types.profile_sql(sql.qualified(table.schema, table.name), batch, sql.flashback(snap.position if snap else None))
            result.update(parse_profile(batch, self.query(conn, query)[0]))
        return result
