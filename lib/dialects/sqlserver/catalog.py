"""Discovery from the SQL Server catalog views (sys.tables, sys.schemas, sys.columns, sys.types,
sys.indexes, sys.index_columns, sys.partitions, sys.allocation_units). SQL and assembly are pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib.dialects.base import Column, Table
from lib.dialects.sqlserver.sql import in_list

_SIZED = ("char", "varchar", "binary", "varbinary")
_NSIZED = ("nchar", "nvarchar")


def tables_sql(schemas: Sequence[str]) -> str:
    """User tables with row counts (heap or clustered index partitions) and allocated bytes."""
    return (
        "SELECT s.name AS schema_name, t.name AS table_name, "
        "(SELECT SUM(p.rows) FROM sys.partitions p WHERE p.object_id = t.object_id AND p.index_id IN (0, 1)) AS row_count, "
        "(SELECT SUM(a.total_pages) FROM sys.partitions p JOIN sys.allocation_units a ON a.container_id = p.partition_id "
        "WHERE p.object_id = t.object_id) AS pages "
        "FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id "
        f"WHERE t.is_ms_shipped = 0 AND s.name IN ({in_list(schemas)})"
    )


def list_tables_sql(schemas: Sequence[str]) -> str:
    """The names of the tables ``tables_sql`` discovers (its filters, so both see the same tables), nothing
    else: the running stream lists them to find tables created or dropped since (lib/cdc/new_tables.py)."""
    return f"SELECT q.schema_name, q.table_name FROM ({tables_sql(schemas)}) q"


def columns_sql(schemas: Sequence[str]) -> str:
    """Columns with their type: alias (user-defined) types resolve to their system type; CLR types
    (hierarchyid, geometry, geography) keep their own name."""
    return (
        "SELECT s.name AS schema_name, t.name AS table_name, c.name AS column_name, c.column_id, c.is_nullable, "
        "CASE WHEN ty.is_user_defined = 0 OR ty.is_assembly_type = 1 THEN ty.name ELSE TYPE_NAME(c.system_type_id) END AS base_type, "
        "c.max_length, c.precision, c.scale, c.is_computed "
        "FROM sys.columns c JOIN sys.tables t ON t.object_id = c.object_id "
        "JOIN sys.schemas s ON s.schema_id = t.schema_id JOIN sys.types ty ON ty.user_type_id = c.user_type_id "
        f"WHERE t.is_ms_shipped = 0 AND s.name IN ({in_list(schemas)})"
    )


def primary_keys_sql(schemas: Sequence[str]) -> str:
    return (
        "SELECT s.name AS schema_name, t.name AS table_name, c.name AS column_name, ic.key_ordinal "
        "FROM sys.indexes i JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id "
        "JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id "
        "JOIN sys.tables t ON t.object_id = i.object_id JOIN sys.schemas s ON s.schema_id = t.schema_id "
        f"WHERE i.is_primary_key = 1 AND s.name IN ({in_list(schemas)})"
    )


def source_type(base: str, max_length: Any, precision: Any, scale: Any) -> str:
    """The type as DDL spells it: decimal(12,2), nvarchar(40), varbinary(max), datetime2(7)."""
    length = None if max_length is None else int(max_length)
    if base in _SIZED + _NSIZED:
        if length == -1:
            return f"{base}(max)"
        return f"{base}({length // 2 if base in _NSIZED else length})"
    if base in ("decimal", "numeric"):
        return f"{base}({int(precision)},{int(scale)})"
    if base in ("datetime2", "datetimeoffset", "time"):
        return f"{base}({int(scale)})"
    if base == "float":
        return "real" if precision is not None and int(precision) <= 24 else "float"
    return base


def build_tables(table_rows: Sequence[tuple[Any, ...]], column_rows: Sequence[tuple[Any, ...]], pk_rows: Sequence[tuple[Any, ...]]) -> list[Table]:
    columns: dict[tuple[str, str], list[Column]] = {}
    for schema, table, name, column_id, nullable, base, max_length, precision, scale, computed in sorted(column_rows, key=lambda r: (r[0], r[1], int(r[3]))):
        info = (
            ("base_type", base),
            ("max_length", None if max_length is None else int(max_length)),
            ("precision", None if precision is None else int(precision)),
            ("scale", None if scale is None else int(scale)),
            ("computed", bool(computed)),
        )
        columns.setdefault((schema, table), []).append(Column(name, source_type(base, max_length, precision, scale), bool(nullable), int(column_id), info))
    keys: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for schema, table, column, ordinal in pk_rows:
        keys.setdefault((schema, table), []).append((int(ordinal), column))
    tables = []
    for schema, name, rows, pages in sorted(table_rows, key=lambda r: (r[0], r[1])):
        tables.append(
            Table(
                schema=schema,
                name=name,
                columns=tuple(columns.get((schema, name), [])),
                primary_key=tuple(c for _, c in sorted(keys.get((schema, name), []))),
                estimated_rows=int(rows) if rows is not None else -1,
                size_bytes=int(pages or 0) * 8192,
                pages=int(pages or 0),
            )
        )
    return tables
