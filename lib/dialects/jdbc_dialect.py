"""What the Oracle and SQL Server dialects share: database calls over JDBC (lib.dialects.jdbc) and
the CDC plumbing of a connector that starts before the copy. Subclasses supply the SQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from lib.config.model import ConnectionConfig, SourceConfig
from lib.dialects import jdbc
from lib.dialects.base import ColumnRead, Snapshot, SplitSample, Table

log = logging.getLogger("bulk")
PLANNING_FETCH_SIZE = 10_000


class JdbcDialect:
    name: ClassVar[str]
    can_split_physically = True  # hash buckets
    catalog_via_jdbc = True

    # --- supplied by the subclass: its modules, as for PostgreSQL (connect.py, catalog.py, sql.py)
    connect: ClassVar[Any]  # jdbc_url, jdbc_properties, target, is_transient, DRIVER
    catalog: ClassVar[Any]  # tables_sql, columns_sql, primary_keys_sql, build_tables
    sql: ClassVar[Any]  # boundaries_ascending_sql, ...
    handoff: ClassVar[Any]  # snapshot.py: open_snapshot(dialect, source, tables)

    def jdbc_url(self, conn: ConnectionConfig) -> str:
        return str(self.connect.jdbc_url(conn))

    def jdbc_properties(self, conn: ConnectionConfig, fetch_size: int) -> dict[str, str]:
        return dict(self.connect.jdbc_properties(conn, fetch_size))

    def target(self, conn: ConnectionConfig) -> str:
        return str(self.connect.target(conn))

    def is_transient(self, message: str) -> bool:
        return bool(self.connect.is_transient(message))

    def catalog_queries(self, schemas: Sequence[str]) -> tuple[str, str, str]:
        return self.catalog.tables_sql(schemas), self.catalog.columns_sql(schemas), self.catalog.primary_keys_sql(schemas)

    def build_tables(self, tables: list[tuple[Any, ...]], columns: list[tuple[Any, ...]], keys: list[tuple[Any, ...]]) -> list[Table]:
        return list(self.catalog.build_tables(tables, columns, keys))

    def ascending_query(self, table: Table, sample: SplitSample, partitions: int) -> str | None:
        return self.sql.boundaries_ascending_sql(table, sample, partitions)  # type: ignore[no-any-return]

    def session_init(self, conn: ConnectionConfig) -> str:
        raise NotImplementedError

    def column_read(self, col: Any, profile: dict[str, Any] | None) -> ColumnRead:
        raise NotImplementedError

    def sample_query(self, table: Table, columns: Sequence[Any], percent: float | None, step: int) -> str:
        raise NotImplementedError

    def current_position(self, conn: ConnectionConfig) -> str:
        raise NotImplementedError

    @contextmanager
    def open_source_snapshot(self, source: SourceConfig, tables: Sequence[Table]) -> Iterator[Snapshot]:
        """The copy's position, with the connector started at it (docs/cdc-handoff.md)."""
        with self.handoff.open_snapshot(self, source, tables) as snap:
            yield snap

    # --- shared
    position_text = staticmethod(str)  # a position number in the source's notation (Oracle: the SCN itself)

    def count_rows_many(self, conn: ConnectionConfig, snap: Snapshot | None, tables: Sequence[Table]) -> dict[tuple[str, str], int | Exception]:
        """Exact row counts of ``tables``, one query each; a table that cannot be counted gets its error."""
        out: dict[tuple[str, str], int | Exception] = {}
        for table in tables:
            try:
                out[(table.schema, table.name)] = self.count_rows(conn, snap, table)
            except Exception as exc:  # noqa: BLE001 - this table's error; the others are still counted
                out[(table.schema, table.name)] = exc
        return out


    def column_reads(self, table: Table, profile: dict[str, Any] | None = None) -> list[ColumnRead]:
        return [self.column_read(col, profile) for col in table.columns]

    def query(self, conn: ConnectionConfig, query: str) -> list[tuple[Any, ...]]:
        return jdbc.run_query(
            self.jdbc_url(conn),
            self.jdbc_properties(conn, PLANNING_FETCH_SIZE),
            query,
            where=f"{self.name} at {self.target(conn)}",
            transient=self.is_transient,
            session_init=self.session_init(conn),
        )

    def discover(self, conn: ConnectionConfig, schemas: Sequence[str]) -> list[Table]:
        tables_q, columns_q, keys_q = self.catalog_queries(schemas)
        return self.build_tables(self.query(conn, tables_q), self.query(conn, columns_q), self.query(conn, keys_q))

    def discover_source(self, source: SourceConfig) -> list[Table]:
        return self.discover(source.connection, source.schemas)

    def list_tables(self, source: SourceConfig) -> list[tuple[str, str]]:
        """The names of the source's tables (what discovery finds), for new and dropped tables."""
        return [(str(row[0]), str(row[1])) for row in self.query(source.connection, self.catalog.list_tables_sql(source.schemas))]

    def stream_tables(self, source: SourceConfig, schemas: Sequence[str]) -> list[Table]:
        return self.discover(source.connection, schemas)

    def sample_split_keys(self, conn: ConnectionConfig, table: Table, columns: Sequence[str], target: int, total_rows: int) -> SplitSample:
        """Key values in the database's order: a row sample of about ``target`` rows, or every n-th key
        when the table is small or the sample came back too thin; sorted by the rank the database gave."""
        cols = [table.column(c) for c in columns]
        rows: list[tuple[Any, ...]] = []
        if total_rows > 4 * target:
            percent = max(0.000001, min(99.999999, 100.0 * target / total_rows))
            rows = self.query(conn, self.sample_query(table, cols, percent, 1))
        if len(rows) < target // 4:
            rows = self.query(conn, self.sample_query(table, cols, None, max(1, total_rows // max(target, 1))))
        ordered = sorted(rows, key=lambda r: int(r[-1]))
        return SplitSample(tuple(columns), tuple(tuple(None if v is None else str(v) for v in r[:-1]) for r in ordered))

    def check_ranges(self, conn: ConnectionConfig, table: Table, sample: SplitSample, partitions: int) -> None:
        """Fail unless the database itself orders the split points strictly ascending."""
        query = self.ascending_query(table, sample, partitions)
        if query and int(self.query(conn, query)[0][0]) != 1:
            raise ValueError(f"{table.qualified_name}: split points are not strictly ascending; refusing to read overlapping ranges")

    @staticmethod
    def streamable(source: SourceConfig, tables: Sequence[Table]) -> tuple[list[Table], dict[str, str]]:
        """Tables with a primary key or configured key_columns; why not for the others."""
        from lib.dialects.keys import streamable

        return streamable(source, tables)

    def connector_tables(self, source: SourceConfig, tables: Sequence[Table]) -> list[tuple[str, str]]:
        """Every streamable table the source's include/exclude selects, also when ``--tables`` restricted
        this run to ``tables``: the connector's include list is replaced on each registration."""
        from lib.dialects.keys import streamable
        from lib.selection import select_tables

        found = {(t.schema, t.name): t for t in self.discover_source(source)}
        for table in tables:
            found.setdefault((table.schema, table.name), table)
        keep = set(select_tables(list(found), source.include, source.exclude)) | {(t.schema, t.name) for t in tables}
        return sorted((t.schema, t.name) for t in streamable(source, [found[k] for k in keep])[0])

    def cleanup_cdc(self, source: SourceConfig) -> list[str]:
        """The load creates nothing in the database (the connector's state lives in Kafka Connect);
        what the DBA enabled (prepare-sql) stays."""
        return []

    # PostgreSQL's replication objects do not exist here
    def drop_slot(self, conn: ConnectionConfig, slot: str, wait_seconds: float = 30.0) -> bool:
        return False

    def slot_info(self, conn: ConnectionConfig, slot: str) -> Mapping[str, Any] | None:
        return None
