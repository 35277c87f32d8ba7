"""Discovery from the Oracle data dictionary (ALL_TABLES, ALL_TAB_COLUMNS, ALL_CONSTRAINTS,
ALL_CONS_COLUMNS; row estimates from the optimizer statistics in ALL_TABLES). SQL and assembly are pure;
``discover`` in the dialect runs them over JDBC."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from lib.dialects.base import Column, Table
from lib.dialects.oracle.sql import in_list
from lib.dialects.oracle.types import LONG_TYPES, SKIPPED_TYPES

log = logging.getLogger(__name__)


def tables_sql(schemas: Sequence[str]) -> str:
    """Ordinary heap, partitioned and index-organized tables; not nested, secondary (domain index),
    temporary, dropped (recycle bin) or external tables, nor IOT overflow segments."""
    return (
        "SELECT t.OWNER, t.TABLE_NAME, CAST(NVL(t.NUM_ROWS, -1) AS NUMBER(19)) AS NUM_ROWS, "
        "CAST(NVL(t.BLOCKS, 0) AS NUMBER(19)) AS BLOCKS, CAST(NVL(t.NUM_ROWS, 0) * NVL(t.AVG_ROW_LEN, 0) AS NUMBER(19)) AS BYTES "
        "FROM ALL_TABLES t "
        f"WHERE t.OWNER IN ({in_list(schemas)}) AND t.NESTED = 'NO' AND t.SECONDARY = 'N' AND t.TEMPORARY = 'N' "
        "AND t.DROPPED = 'NO' AND (t.IOT_TYPE IS NULL OR t.IOT_TYPE = 'IOT') "
        "AND NOT EXISTS (SELECT 1 FROM ALL_EXTERNAL_TABLES x WHERE x.OWNER = t.OWNER AND x.TABLE_NAME = t.TABLE_NAME)"
    )


def list_tables_sql(schemas: Sequence[str]) -> str:
    """The names of the tables ``tables_sql`` discovers (its filters, so both see the same tables), nothing
    else: the running stream lists them to find tables created or dropped since (lib/cdc/new_tables.py)."""
    return f"SELECT q.OWNER, q.TABLE_NAME FROM ({tables_sql(schemas)}) q"


def columns_sql(schemas: Sequence[str]) -> str:
    """Every visible column with its type, precision and scale (DATA_PRECISION is NULL for NUMBER
    without precision; FLOAT's is binary), in column order."""
    return (
        "SELECT c.OWNER, c.TABLE_NAME, c.COLUMN_NAME, CAST(c.COLUMN_ID AS NUMBER(10)) AS COLUMN_ID, c.NULLABLE, c.DATA_TYPE, "
        "c.DATA_TYPE_OWNER, CAST(c.DATA_PRECISION AS NUMBER(10)) AS DATA_PRECISION, CAST(c.DATA_SCALE AS NUMBER(10)) AS DATA_SCALE, "
        "CAST(c.CHAR_LENGTH AS NUMBER(10)) AS CHAR_LENGTH "
        f"FROM ALL_TAB_COLUMNS c WHERE c.OWNER IN ({in_list(schemas)})"
    )


def primary_keys_sql(schemas: Sequence[str]) -> str:
    return (
        "SELECT c.OWNER, c.TABLE_NAME, cc.COLUMN_NAME, CAST(cc.POSITION AS NUMBER(10)) AS POSITION "
        "FROM ALL_CONSTRAINTS c JOIN ALL_CONS_COLUMNS cc "
        "ON cc.OWNER = c.OWNER AND cc.CONSTRAINT_NAME = c.CONSTRAINT_NAME AND cc.TABLE_NAME = c.TABLE_NAME "
        f"WHERE c.CONSTRAINT_TYPE = 'P' AND c.OWNER IN ({in_list(schemas)})"
    )


def source_type(data_type: str, precision: Any, scale: Any, char_length: Any) -> str:
    """The type as DDL spells it: NUMBER(12,2), NUMBER, VARCHAR2(40), TIMESTAMP(6) WITH TIME ZONE."""
    if data_type == "NUMBER":
        if precision is None:
            return "NUMBER" if scale is None else f"NUMBER(*,{int(scale)})"
        return f"NUMBER({int(precision)},{int(scale or 0)})"
    if data_type == "FLOAT" and precision is not None:
        return f"FLOAT({int(precision)})"
    if data_type in ("VARCHAR2", "NVARCHAR2", "CHAR", "NCHAR", "RAW") and char_length:
        return f"{data_type}({int(char_length)})"
    return data_type


def build_tables(table_rows: Sequence[tuple[Any, ...]], column_rows: Sequence[tuple[Any, ...]], pk_rows: Sequence[tuple[Any, ...]]) -> list[Table]:
    """Assemble dictionary rows (any order) into Table objects, columns by COLUMN_ID (pure)."""
    columns: dict[tuple[str, str], list[Column]] = {}
    for owner, table, name, column_id, nullable, data_type, type_owner, precision, scale, char_length in sorted(column_rows, key=lambda r: (r[0], r[1], int(r[3]))):
        info = (
            ("data_type", data_type),
            ("type_owner", type_owner),
            ("precision", None if precision is None else int(precision)),
            ("scale", None if scale is None else int(scale)),
            ("char_length", None if char_length is None else int(char_length)),
        )
        col = Column(name, source_type(data_type, precision, scale, char_length), nullable == "Y", int(column_id), info)
        columns.setdefault((owner, table), []).append(col)
    keys: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for owner, table, column, position in pk_rows:
        keys.setdefault((owner, table), []).append((int(position), column))
    tables = []
    for owner, name, num_rows, blocks, size in sorted(table_rows, key=lambda r: (r[0], r[1])):
        tables.append(
            Table(
                schema=owner,
                name=name,
                columns=tuple(columns.get((owner, name), [])),
                primary_key=tuple(c for _, c in sorted(keys.get((owner, name), []))),
                estimated_rows=int(num_rows) if num_rows is not None and int(num_rows) >= 0 else -1,
                size_bytes=int(size or 0),
                pages=int(blocks or 0),
            )
        )
    return tables


def apply_column_policies(tables: Sequence[Table], long_columns: str) -> tuple[list[Table], list[str]]:
    """BFILE columns are left out; LONG / LONG RAW columns per ``long_columns`` (exclude: left out;
    skip_table: the table is left out; error: kept, so reading the table fails naming the column).
    Returns the tables and one warning per decision (pure)."""
    kept: list[Table] = []
    warnings: list[str] = []
    for table in tables:
        drop = [c for c in table.columns if c.info("data_type") in SKIPPED_TYPES]
        longs = [c for c in table.columns if c.info("data_type") in LONG_TYPES]
        if longs and long_columns == "skip_table":
            warnings.append(f"{table.qualified_name}: skipped (LONG column {', '.join(c.name for c in longs)}; long_columns: skip_table)")
            continue
        for col in drop:
            warnings.append(f"{table.qualified_name}.{col.name}: BFILE column left out of the lake table (a pointer to a file outside the database)")
        if longs and long_columns == "exclude":
            drop += longs
            for col in longs:
                warnings.append(f"{table.qualified_name}.{col.name}: {col.info('data_type')} column left out of the lake table (long_columns: exclude)")
        if drop:
            names = {c.name for c in drop}
            table = Table(table.schema, table.name, tuple(c for c in table.columns if c.name not in names), table.primary_key, table.estimated_rows, table.size_bytes, table.pages)
        kept.append(table)
    return kept, warnings
