"""The PostgreSQL dialect: discovery, type mapping, split planning SQL and the snapshot handoff."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from lib.config.model import ConnectionConfig, SourceConfig
from lib.dialects.base import ColumnRead, Snapshot, SplitSample, Table
from lib.dialects.postgres import catalog, debezium, debezium_fields, snapshot, snapshot_reader, sql, types
from lib.dialects.postgres.cdc_events import EVENTS as CDC_EVENTS
from lib.dialects.postgres.connect import as_source_error, connect

PROFILE_BATCH = 20  # numeric columns measured per aggregate query


def jdbc_url(host: str, port: int, database: str) -> str:
    """``jdbc:postgresql://host:port/<database>`` with the database name percent-encoded as one path segment:
    pgjdbc (``Driver.parseURL``) cuts the URL at the first ``?`` and decodes the name with
    ``java.net.URLDecoder`` (``+`` is a space there), so ``/``, ``?``, ``&``, ``%``, ``+``, spaces and
    non-ASCII letters are all encoded (UTF-8); a name like ``my db/x?y`` connects to that database."""
    return f"jdbc:postgresql://{host}:{port}/{quote(database, safe='')}"


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
    position_text = staticmethod(sql.int_to_lsn)
    connector_config = staticmethod(debezium.connector_config)
    debezium_field = staticmethod(debezium_fields.debezium_field)  # decoding of compact (schemaless) events
    cdc_events = CDC_EVENTS  # how the stream reads its change events (lib.cdc.event_format)
    published_tables = staticmethod(snapshot.published_tables)
    slot_info = staticmethod(snapshot.slot_info)
    terminate_slot_holder = staticmethod(snapshot.terminate_slot_holder)
    drop_publication = staticmethod(snapshot.drop_publication)
    can_split_physically = True  # ctid page ranges
    catalog_via_jdbc = False  # psycopg2

    def discover_source(self, source: SourceConfig) -> list[Table]:
        return catalog.discover(source.connection, source.schemas)

    def stream_tables(self, source: SourceConfig, schemas: Sequence[str]) -> list[Table]:
        return self.discover(source.connection, schemas)

    @staticmethod
    def list_tables(source: SourceConfig) -> list[tuple[str, str]]:
        """The names of the source's tables (what discovery finds), for new and dropped tables."""
        return catalog.list_tables(source.connection, source.schemas)

    @staticmethod
    def prepare_capture(source: SourceConfig, tables: Sequence[Table]) -> None:
        """Add ``tables`` to the publication (before the connector's include list names them)."""
        assert source.cdc is not None
        snapshot.ensure_publication(source.connection, source.cdc, tables)

    @contextmanager
    def open_source_snapshot(self, source: SourceConfig, tables: Sequence[Table]) -> Iterator[Snapshot]:
        with self.open_snapshot(source.connection, source.cdc, tables) as snap:
            yield snap

    @staticmethod
    def snapshot_reader(conn: ConnectionConfig, snap: Snapshot, jvm_time_zone: str) -> snapshot_reader.SnapshotReader:
        """Reads small tables inside ``snap`` with psycopg2, without Spark (lib/bulk/direct_read.py)."""
        return snapshot_reader.SnapshotReader(conn, snap, jvm_time_zone)

    def connector_tables(self, source: SourceConfig, tables: Sequence[Table]) -> list[tuple[str, str]]:
        """The publication's tables: the publication is what the connector streams."""
        assert source.cdc is not None
        return snapshot.published_tables(source.connection, source.cdc.publication_name)

    @staticmethod
    def streamable(source: SourceConfig, tables: Sequence[Table]) -> tuple[list[Table], dict[str, str]]:
        """Tables with a primary key, or all with cdc.replica_identity_full; why not for the others."""
        from lib.debezium.common import streamable

        assert source.cdc is not None
        return streamable(tables, source.cdc)

    def prepare_sql(self, source: SourceConfig, tables: Sequence[Table]) -> list[str]:
        """The publication and the replica identities the bulk load would create (pure)."""
        assert source.cdc is not None
        from lib.debezium.common import streamable

        keyed, _refused = streamable(tables, source.cdc)
        return [
            *snapshot.replica_identity_sql([t for t in keyed if not t.primary_key], {}),
            *snapshot.publication_sql(source.cdc.publication_name, None, keyed),
        ]

    def cleanup_cdc(self, source: SourceConfig) -> list[str]:
        assert source.cdc is not None
        done = []
        if snapshot.drop_slot(source.connection, source.cdc.slot_name, wait_seconds=15.0, terminate_own=True):
            done.append(f"dropped replication slot {source.cdc.slot_name}")
        if snapshot.drop_publication(source.connection, source.cdc.publication_name):
            done.append(f"dropped publication {source.cdc.publication_name}")
        return done

    @staticmethod
    def event_order(source_block: Mapping[str, Any], kafka_offset: int) -> tuple[int, ...]:
        """(lsn, Kafka offset): pgoutput sends a transaction's changes in commit order."""
        return (int(source_block["lsn"]), kafka_offset)

    @staticmethod
    def dbtable(query: str) -> str:
        return f"({query}) AS q"

    def jdbc_url(self, conn: ConnectionConfig) -> str:
        # No credentials in the URL: Spark shows URLs in plans and errors. They go in properties.
        return jdbc_url(conn.host, conn.port, conn.database or "")

    def jdbc_properties(self, conn: ConnectionConfig, fetch_size: int) -> dict[str, str]:
        props = {
            "driver": self.jdbc_driver,
            "user": conn.user,
            "password": conn.password,
            "fetchsize": str(fetch_size),
            "ApplicationName": "lakehouse-ingest",
            "connectTimeout": "10",
            "tcpKeepAlive": "true",
            # Binary result transfer from the first execution (pgjdbc switches to it only after 5
            # executions of a statement, which a one-shot SELECT never reaches): less parsing per value.
            "prepareThreshold": "-1",
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

    def count_rows_many(self, conn: ConnectionConfig, snap: Snapshot | None, tables: Sequence[Table]) -> dict[tuple[str, str], int | Exception]:
        """Exact row counts of ``tables`` over one connection (inside ``snap`` when given). A table that
        cannot be counted (e.g. permission denied) gets its error, rolled back to a savepoint, so the
        others are still counted."""
        if not tables:
            return {}
        return snapshot.count_each(conn, snap, [(t.schema, t.name) for t in tables])

    def sample_split_keys(self, conn: ConnectionConfig, table: Table, columns: Sequence[str], target: int, total_rows: int) -> SplitSample:
        """Key values in the database's order: a row sample (BERNOULLI: one sequential scan, rows picked
        independently, so keys stored in order do not cluster the sample) of about ``target`` rows,
        or every n-th key when the table is small or the sample came back too thin."""
        # ORDER BY names the table's columns through the alias `src`: a bare "id" would mean the
        # output column "id"::text and sort the keys as text.
        order = ", ".join(f"src.{sql.quote_ident(c)}" for c in columns)
        texts = ", ".join(f"src.{sql.quote_ident(c)}::text AS k{i}" for i, c in enumerate(columns))
        source = sql.qualified(table.schema, table.name)
        rows: list[tuple[Any, ...]] = []
        if total_rows > 4 * target:
            percent = max(0.0001, min(100.0, 100.0 * target / total_rows))
            rows = self._query(conn, None, f"SELECT {texts} FROM {source} AS src TABLESAMPLE BERNOULLI ({percent:.6f}) ORDER BY {order}")
        if len(rows) < target // 4:
            step = max(1, total_rows // max(target, 1))
            keys = ", ".join(f"k{i}" for i in range(len(columns)))
            rows = self._query(
                conn,
                None,
                f"SELECT {keys} FROM (SELECT {texts}, row_number() OVER (ORDER BY {order}) AS rn FROM {source} AS src) s "
                f"WHERE rn % {step} = 0 ORDER BY rn",
            )
        return SplitSample(tuple(columns), tuple(tuple(r) for r in rows))

    def check_ranges(self, conn: ConnectionConfig, table: Table, sample: SplitSample, partitions: int) -> None:
        """Fail unless the database itself orders the split points strictly ascending, so the ranges
        can neither overlap (duplicates) nor leave gaps (lost rows)."""
        query = sql.boundaries_ascending_sql(table, sample, partitions)
        if query and self._query(conn, None, query)[0][0] is not True:
            raise ValueError(f"{table.qualified_name}: split points are not strictly ascending; refusing to read overlapping ranges")

    def select_sql(self, table: Table, reads: Sequence[ColumnRead], predicate: str | None, snapshot: Snapshot | None = None) -> str:
        # the snapshot is joined by the session (sessionInitStatement), not named in the query
        return sql.select_sql(table, [r.select_sql for r in reads], predicate)

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
