"""What every source dialect provides, and the dialect-neutral catalog model.

A dialect module builds SQL and type mappings as pure functions and keeps its database calls in a
few small functions that take a connection config. The bulk loader only talks to this interface.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    """What the bulk loader, the handoff and the CDC tools call on a source dialect."""

    name: str
    can_split_physically: bool  # tables without a key can be split by storage location (PostgreSQL ctid)

    # --- SQL and types (pure)
    def quote_ident(self, name: str) -> str: ...

    def jdbc_url(self, conn: ConnectionConfig) -> str: ...

    def jdbc_properties(self, conn: ConnectionConfig, fetch_size: int) -> dict[str, str]: ...

    def column_reads(self, table: Table, profile: dict[str, Any] | None = None) -> list[ColumnRead]: ...

    def range_predicates(self, table: Table, sample: SplitSample, partitions: int) -> list[str]: ...

    def physical_predicates(self, table: Table, partitions: int) -> list[str] | None: ...

    def select_sql(self, table: Table, reads: Sequence[ColumnRead], predicate: str | None) -> str: ...

    def position_number(self, position: str) -> int: ...

    def connector_config(self, source: SourceConfig, tables: Sequence[tuple[str, str]]) -> dict[str, str]: ...

    # --- database calls
    def discover(self, conn: ConnectionConfig, schemas: Sequence[str]) -> list[Table]: ...

    def count_rows(self, conn: ConnectionConfig, snap: Snapshot | None, table: Table) -> int: ...

    def profile_columns(self, conn: ConnectionConfig, snap: Snapshot | None, table: Table, columns: Sequence[str]) -> dict[str, Any]: ...

    def sample_split_keys(self, conn: ConnectionConfig, table: Table, columns: Sequence[str], target: int, total_rows: int) -> SplitSample: ...

    def check_ranges(self, conn: ConnectionConfig, table: Table, sample: SplitSample, partitions: int) -> None: ...

    def open_snapshot(self, conn: ConnectionConfig, cdc: CdcConfig | None, tables: Sequence[Table]) -> AbstractContextManager[Snapshot]: ...

    def published_tables(self, conn: ConnectionConfig, publication: str) -> list[tuple[str, str]]: ...

    def slot_info(self, conn: ConnectionConfig, slot: str) -> dict[str, Any] | None: ...

    def drop_slot(self, conn: ConnectionConfig, slot: str, wait_seconds: float = 30.0) -> bool: ...

    def drop_publication(self, conn: ConnectionConfig, publication: str) -> bool: ...
