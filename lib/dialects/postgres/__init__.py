"""The PostgreSQL dialect: discovery, type mapping, split planning SQL and the snapshot handoff."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib.config.model import ConnectionConfig
from lib.dialects.base import ColumnRead, Snapshot, SplitSample, Table
from lib.dialects.postgres import catalog, snapshot, sql, types
from lib.dialects.postgres.connect import as_source_error, connect

PROFILE_BATCH = 20  # numeric columns measured per aggregate query


class PostgresDialect:
    name = "postgres"
    jdbc_driver = "org.postgresql.Driver"

    quote_ident = staticmethod(sql.quote_ident)
    range_predicates = staticmethod(sql.range_predicates)
    physical_predicates = staticmethod(sql.physical_predicates)
    discover = staticmethod(catalog.discover)
    open_snapshot = staticmethod(snapshot.open_snapshot)
    drop_slot = staticmethod(snapshot.drop_slot)
    position_number = staticmethod(sql.lsn_to_int)
    can_split_physically = True  # ctid page ranges

    def jdbc_url(self, conn: ConnectionConfig) -> str:
        # No credentials in the URL: Spark shows URLs in plans and errors. They go in properties.
        return f"jdbc:postgresql://{conn.host}:{conn.port}/{conn.database}"

    def jdbc_properties(self, conn: ConnectionConfig, fetch_size: int) -> dict[str, str]:
        props = {
            "driver": self.jdbc_driver,
            "user": conn.user,
            "password": conn.password,
            "fetchsize": str(fetch_size),
            "ApplicationName": "lakehouse-ingest",
            "connectTimeout": "10",
            "tcpKeepAlive": "true",
        }
        props.update(dict(conn.properties))
        return props

    def column_reads(self, table: Table, profile: dict[str, Any] | None = None) -> list[ColumnRead]:
        return [types.column_read(col, profile) for col in table.columns]

    def profile_columns(self, conn: ConnectionConfig, snap: Snapshot | None, table: Table, columns: Sequence[str]) -> dict[str, Any]:
        """Measure unbounded numeric columns (inside ``snap`` when given, so the sizes hold for the copy)."""
        result: dict[str, Any] = {}
        for start in range(0, len(columns), PROFILE_BATCH):
            batch = list(columns[start : start + PROFILE_BATCH])
            query = types.profile_sql(sql.qualified(table.schema, table.name), batch)
            rows = self._query(conn, snap, query)
            result.update(types.parse_profile(batch, rows[0]))
        return result

    def count_rows(self, conn: ConnectionConfig, snap: Snapshot | None, table: Table) -> int:
        return int(self._query(conn, snap, f"SELECT count(*) FROM {sql.qualified(table.schema, table.name)}")[0][0])

    def sample_split_keys(self, conn: ConnectionConfig, table: Table, columns: Sequence[str], target: int, total_rows: int) -> SplitSample:
        """Key values in the database's order: a block sample of about ``target`` rows, or every
        n-th key when the table is small or the sample came back too thin."""
        keys = ", ".join(sql.quote_ident(c) for c in columns)
        texts = ", ".join(f"{sql.quote_ident(c)}::text" for c in columns)
        source = sql.qualified(table.schema, table.name)
        rows: list[tuple[Any, ...]] = []
        if total_rows > 4 * target:
            percent = max(0.0001, min(100.0, 100.0 * target / total_rows))
            rows = self._query(conn, None, f"SELECT {texts} FROM {source} TABLESAMPLE SYSTEM ({percent:.6f}) ORDER BY {keys}")
        if len(rows) < target // 4:
            step = max(1, total_rows // max(target, 1))
            rows = self._query(
                conn,
                None,
                f"SELECT {', '.join(f'k{i}' for i in range(len(columns)))} FROM (SELECT "
                + ", ".join(f"{sql.quote_ident(c)}::text AS k{i}" for i, c in enumerate(columns))
                + f", row_number() OVER (ORDER BY {keys}) AS rn FROM {source}) s WHERE rn % {step} = 0 ORDER BY rn",
            )
        return SplitSample(tuple(columns), tuple(tuple(r) for r in rows))

    def select_sql(self, table: Table, reads: Sequence[ColumnRead], predicate: str | None) -> str:
        return sql.select_sql(table, [r.select_sql for r in reads], predicate)

    def ping(self, conn: ConnectionConfig) -> None:
        self._query(conn, None, "SELECT 1")

    @staticmethod
    def _query(conn: ConnectionConfig, snap: Snapshot | None, query: str) -> list[tuple[Any, ...]]:
        if snap is not None:
            return snapshot.run_in_snapshot(conn, snap, query)
        db = connect(conn)
        try:
            with db.cursor() as cur:
                cur.execute(query)
                return cur.fetchall()
        except Exception as exc:  # noqa: BLE001
            raise as_source_error(exc, "query failed") from None
        finally:
            db.close()
