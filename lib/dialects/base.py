"""What every source dialect provides, and the dialect-neutral catalog model.

A dialect module builds SQL and type mappings as pure functions and keeps its database calls in a
few small functions that take a connection config. The bulk loader only talks to this interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from lib.config.model import CdcConfig, ConnectionConfig, SourceConfig


@dataclass(frozen=True)
class Column:
    name: str
    source_type: str  # the type as the catalog spells it, e.g. "numeric(12,2)", "integer[]"
    nullable: bool
    ordinal: int
    type_info: tuple[tuple[str, Any], ...] = ()  # dialect-specific facts (base type, element type, ...)

    def info(self, key: str, default: Any = None) -> Any:
        return dict(self.type_info).get(key, default)


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    estimated_rows: int  # from catalog statistics; -1 when unknown
    size_bytes: int
    pages: int = 0  # storage pages (PostgreSQL), used for physical-range splits

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


@dataclass(frozen=True)
class ColumnRead:
    """How one source column is selected and which Spark type it lands as."""

    name: str
    select_sql: str  # expression in the source SELECT, aliased to the column's own name
    spark_type: str  # Spark SQL DDL type, e.g. "decimal(12,2)", "timestamp_ntz", "array<string>"
    needs_profile: bool = False  # type depends on the data (numeric without precision)


@dataclass(frozen=True)
class Snapshot:
    """A consistent read point: every partition reader runs ``session_init_sql`` before its query."""

    position: str  # source position in its canonical text form (PostgreSQL LSN "0/16B3748")
    session_init_sql: str
    method: str  # e.g. "replication-slot", "temporary-slot", "exported-snapshot"
    # The transactions visible in the snapshot, as the database writes them (PostgreSQL:
    # pg_current_snapshot()::text inside the snapshot, "xmin:xmax:xip1,xip2,..."); the CDC stream
    # skips exactly the events of these transactions (lib.cdc.visibility). None when unknown.
    txids: str | None = None


@dataclass(frozen=True)
class SplitSample:
    """Key values in source order, sampled from a table to place partition boundaries."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str | None, ...], ...] = field(default_factory=tuple)  # canonical text values


class Dialect(Protocol):
    """What the bulk loader, the handoff and the CDC tools call on a source dialect.

    Every source provides, besides SQL and types:

    - a *snapshot position* (PostgreSQL LSN, Oracle SCN, SQL Server LSN) in its canonical text form,
      and ``position_number`` mapping it to an integer that orders positions (stored as decimal(38,0));
    - ``open_source_snapshot``: the consistent read point of the copy, taken so that the connector
      starts exactly at it (PostgreSQL: the slot's exported snapshot; Oracle and SQL Server: the
      connector is registered with ``snapshot.mode=no_data`` first and its own starting position,
      read back from Kafka Connect's offsets API, is the copy's position; docs/cdc-handoff.md);
    - ``connector_tables``: the (schema, table) pairs the connector streams;
    - CDC preparation and cleanup: ``prepare_sql`` (what a DBA runs once, printed by
      ``cdc_connector.py prepare-sql``) and ``cleanup_cdc`` (what ``drop`` removes on the source);
    - ``event_order``: the ordering key of a change event, from its Debezium ``source`` block and
      Kafka offset, as integers that compare as decimal(38,0) values.
    """

    name: str
    jdbc_driver: str
    can_split_physically: bool  # tables without a key can be split by storage location (PostgreSQL ctid)
    catalog_via_jdbc: bool  # planning queries run over JDBC in the job's SparkSession (not a Python driver)

    # --- SQL and types (pure)
    def quote_ident(self, name: str) -> str: ...

    def jdbc_url(self, conn: ConnectionConfig) -> str: ...

    def jdbc_properties(self, conn: ConnectionConfig, fetch_size: int) -> dict[str, str]: ...

    def column_reads(self, table: Table, profile: dict[str, Any] | None = None) -> list[ColumnRead]: ...

    def range_predicates(self, table: Table, sample: SplitSample, partitions: int) -> list[str]: ...

    def physical_predicates(self, table: Table, partitions: int) -> list[str] | None: ...

    def select_sql(self, table: Table, reads: Sequence[ColumnRead], predicate: str | None, snapshot: Snapshot | None = None) -> str: ...

    def dbtable(self, query: str) -> str:
        """``query`` as a derived table for Spark's ``dbtable`` option (Oracle takes no ``AS``)."""
        ...

    def position_number(self, position: str) -> int: ...

    def position_text(self, number: int) -> str: ...  # inverse of position_number: the source's notation

    def connector_config(self, source: SourceConfig, tables: Sequence[tuple[str, str]]) -> dict[str, str]: ...

    def prepare_sql(self, source: SourceConfig, tables: Sequence[Table]) -> list[str]:
        """The statements a DBA runs once so the database can be streamed (pure)."""
        ...

    def event_order(self, source_block: Mapping[str, Any], kafka_offset: int) -> tuple[int, ...]:
        """Ordering key of one change event (pure): compare tuples to apply events in source order."""
        ...

    def debezium_field(self, column: Column) -> dict[str, Any]:
        """The Connect field schema the source's connector emits for ``column`` (compact messages)."""
        ...

    # How the CDC stream reads this source's change events (positions, snapshot rule, decoding,
    # placeholders, topics): a lib.cdc.event_format.EventFormat, from ``<dialect>/cdc_events.py``.
    cdc_events: Any

    # --- database calls
    def discover(self, conn: ConnectionConfig, schemas: Sequence[str]) -> list[Table]: ...

    def stream_tables(self, source: SourceConfig, schemas: Sequence[str]) -> list[Table]:
        """The tables of ``schemas`` as the CDC stream decodes their compact events: discovery with the
        source's column policies (the columns the bulk load copies and the connector streams)."""
        ...

    def count_rows(self, conn: ConnectionConfig, snap: Snapshot | None, table: Table) -> int: ...

    def count_rows_many(self, conn: ConnectionConfig, snap: Snapshot | None, tables: Sequence[Table]) -> dict[tuple[str, str], int | Exception]: ...

    def profile_columns(self, conn: ConnectionConfig, snap: Snapshot | None, table: Table, columns: Sequence[str]) -> dict[str, Any]: ...

    def sample_split_keys(self, conn: ConnectionConfig, table: Table, columns: Sequence[str], target: int, total_rows: int) -> SplitSample: ...

    def check_ranges(self, conn: ConnectionConfig, table: Table, sample: SplitSample, partitions: int) -> None: ...

    def open_snapshot(self, conn: ConnectionConfig, cdc: CdcConfig | None, tables: Sequence[Table]) -> AbstractContextManager[Snapshot]: ...

    def open_source_snapshot(self, source: SourceConfig, tables: Sequence[Table]) -> AbstractContextManager[Snapshot]: ...

    def connector_tables(self, source: SourceConfig, tables: Sequence[Table]) -> list[tuple[str, str]]: ...

    def streamable(self, source: SourceConfig, tables: Sequence[Table]) -> tuple[list[Table], dict[str, str]]:
        """(tables the connector streams, {qualified name: why not} for the others) (pure)."""
        ...

    def cleanup_cdc(self, source: SourceConfig) -> list[str]:
        """Remove the source-side CDC objects the load created (not the DBA's preparation); what was done."""
        ...

    def published_tables(self, conn: ConnectionConfig, publication: str) -> list[tuple[str, str]]: ...

    def slot_info(self, conn: ConnectionConfig, slot: str) -> dict[str, Any] | None: ...

    def drop_slot(self, conn: ConnectionConfig, slot: str, wait_seconds: float = 30.0) -> bool: ...

    def drop_publication(self, conn: ConnectionConfig, publication: str) -> bool: ...
