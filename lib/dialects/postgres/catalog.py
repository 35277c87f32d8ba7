"""Discovery of tables, columns, primary keys and size estimates from the PostgreSQL catalog."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lib.config.model import ConnectionConfig
from lib.dialects.base import Column, Table
from lib.dialects.postgres.connect import as_source_error, connect

# Ordinary and partitioned tables; partitions themselves are read through their parent.
_TABLES = """
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY(%s)
ORDER BY 1, 2
"""
TABLES_SQL = """
SELECT n.nspname::text, c.relname::text, c.reltuples::bigint, c.relpages::bigint,
       pg_total_relation_size(c.oid)::bigint""" + _TABLES

# The names of the tables TABLES_SQL discovers (the same filters), nothing else: the running stream lists
# them every cdc.auto_add_interval_seconds to find tables created or dropped since (lib/cdc/new_tables.py).
LIST_TABLES_SQL = """
SELECT n.nspname::text, c.relname::text""" + _TABLES

# Domains resolve to their base type; arrays carry their element type.
COLUMNS_SQL = """
SELECT n.nspname::text, c.relname::text, a.attname::text, a.attnum::int, NOT a.attnotnull,
       format_type(bt.oid, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END),
       bt.typname::text, bt.typtype::text, bt.typcategory::text, et.typname::text
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname = ANY(%s)
ORDER BY 1, 2, 4
"""

PRIMARY_KEYS_SQL = """
SELECT n.nspname::text, c.relname::text, array_agg(a.attname::text ORDER BY k.ord)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE con.contype = 'p' AND n.nspname = ANY(%s)
GROUP BY 1, 2
"""


def build_tables(table_rows: Sequence[tuple[Any, ...]], column_rows: Sequence[tuple[Any, ...]], pk_rows: Sequence[tuple[Any, ...]]) -> list[Table]:
    """Assemble catalog query results into Table objects (pure)."""
    columns: dict[tuple[str, str], list[Column]] = {}
    for schema, table, name, ordinal, nullable, fmt, typname, typtype, typcategory, elem in column_rows:
        info = (("typname", typname), ("typtype", typtype), ("typcategory", typcategory), ("elem_typname", elem))
        columns.setdefault((schema, table), []).append(Column(name, fmt, bool(nullable), int(ordinal), info))
    keys = {(schema, table): tuple(cols) for schema, table, cols in pk_rows}
    tables = []
    for schema, name, reltuples, relpages, size in table_rows:
        tables.append(
            Table(
                schema=schema,
                name=name,
                columns=tuple(columns.get((schema, name), [])),
                primary_key=keys.get((schema, name), ()),
                estimated_rows=int(reltuples) if reltuples is not None and reltuples >= 0 else -1,
                size_bytes=int(size or 0),
                pages=int(relpages or 0),
            )
        )
    return tables


def discover(conn: ConnectionConfig, schemas: Sequence[str]) -> list[Table]:
    """Every table of ``schemas`` with its columns, primary key and size estimates."""
    db = connect(conn)
    try:
        with db.cursor() as cur:
            cur.execute(TABLES_SQL, (list(schemas),))
            table_rows = cur.fetchall()
            cur.execute(COLUMNS_SQL, (list(schemas),))
            column_rows = cur.fetchall()
            cur.execute(PRIMARY_KEYS_SQL, (list(schemas),))
            pk_rows = cur.fetchall()
    except Exception as exc:  # noqa: BLE001 - every driver error becomes a SourceError
        raise as_source_error(exc, "reading the postgres catalog failed") from None
    finally:
        db.close()
    return build_tables(table_rows, column_rows, pk_rows)


def list_tables(conn: ConnectionConfig, schemas: Sequence[str]) -> list[tuple[str, str]]:
    """(schema, table) of every table of ``schemas`` discovery would find (LIST_TABLES_SQL)."""
    db = connect(conn)
    try:
        with db.cursor() as cur:
            cur.execute(LIST_TABLES_SQL, (list(schemas),))
            return [(str(schema), str(table)) for schema, table in cur.fetchall()]
    except Exception as exc:  # noqa: BLE001 - every driver error becomes a SourceError
        raise as_source_error(exc, "listing the postgres tables failed") from None
    finally:
        db.close()
