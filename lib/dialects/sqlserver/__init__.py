"""The SQL Server dialect: discovery, type mapping, partitioned reads and the Debezium handoff."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lib.config.model import ConnectionConfig, SourceConfig
from lib.dialects.base import Column, ColumnRead, Snapshot, SplitSample, Table
from lib.dialects.jdbc_dialect import JdbcDialect
from lib.dialects.sqlserver import catalog, connect, debezium, snapshot, sql, types
from lib.dialects.sqlserver.cdc_order import event_order, lsn_number


class SqlServerDialect(JdbcDialect):
    name = "sqlserver"
    jdbc_driver = connect.DRIVER

    quote_ident = staticmethod(sql.quote_ident)
    range_predicates = staticmethod(sql.range_predicates)
    physical_predicates = staticmethod(sql.physical_predicates)  # normalised BINARY_CHECKSUM buckets
    position_number = staticmethod(lsn_number)
    connector_config = staticmethod(debezium.connector_config)
    prepare_sql = staticmethod(debezium.prepare_sql)
    event_order = staticmethod(event_order)

    def jdbc_url(self, conn: ConnectionConfig) -> str:
        return connect.jdbc_url(conn)

    def jdbc_properties(self, conn: ConnectionConfig, fetch_size: int) -> dict[str, str]:
        return connect.jdbc_properties(conn, fetch_size)

    def target(self, conn: ConnectionConfig) -> str:
        return connect.target(conn)

    def is_transient(self, message: str) -> bool:
        return connect.is_transient(message)

    def session_init(self, conn: ConnectionConfig) -> str:
        return sql.session_init_sql(conn.read_isolation)

    def catalog_queries(self, schemas: Sequence[str]) -> tuple[str, str, str]:
        return catalog.tables_sql(schemas), catalog.columns_sql(schemas), catalog.primary_keys_sql(schemas)

    def build_tables(self, tables: list[tuple[Any, ...]], columns: list[tuple[Any, ...]], keys: list[tuple[Any, ...]]) -> list[Table]:
        return catalog.build_tables(tables, columns, keys)

    def column_read(self, col: Column, profile: dict[str, Any] | None) -> ColumnRead:
        return types.column_read(col)  # every SQL Server type has a declared precision: nothing to measure

    def sample_query(self, table: Table, columns: Sequence[Column], percent: float | None, step: int) -> str:
        return sql.sample_sql(table, columns, percent, step)

    def ascending_query(self, table: Table, sample: SplitSample, partitions: int) -> str | None:
        return sql.boundaries_ascending_sql(table, sample, partitions)

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

    @contextmanager
    def open_source_snapshot(self, source: SourceConfig, tables: Sequence[Table]) -> Iterator[Snapshot]:
        with snapshot.open_snapshot(self, source, tables) as snap:
            yield snap
