#!/usr/bin/env python3
"""Generate a schema of N tables x M rows in PostgreSQL: the many-small-tables workload.

Usage:  .venv/bin/python scripts/many_tables.py --database many --schema public --tables 100 --rows 100

Used by scripts/bench_many_tables.py and by tests/integration/test_bulk_many_tables.py (through
:func:`create_tables`). Tables are named ``t0000``, ``t0001``, ...; each has a primary key and a mix of
column types (integer, numeric, text, timestamptz, boolean, date, jsonb); every third table is created
without a primary key. Values are derived from the row number and the table number, so reruns give
identical data. Everything is generated server-side, one statement per table, in one transaction;
``--analyze`` runs ``ANALYZE`` afterwards (the catalog's row estimates then are exact).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import psycopg2


def table_names(tables: int) -> list[str]:
    return [f"t{i:04d}" for i in range(tables)]


def table_sql(schema: str, name: str, number: int, rows: int) -> str:
    """DDL and fill of one generated table (pure)."""
    qualified = f'"{schema}"."{name}"'
    key = " PRIMARY KEY" if number % 3 else ""
    return f"""
CREATE TABLE {qualified} (
    id bigint{key},
    qty int,
    amount numeric(12,2),
    note text,
    created_at timestamptz,
    flag boolean,
    day date,
    attrs jsonb
);
INSERT INTO {qualified}
SELECT g,
       (g * 7 + {number}) % 1000,
       ((g * 104729 + {number}) % 1000000) / 100.0,
       'row ' || g || ' of {name} ' || substr(md5((g + {number})::text), 1, 4 + g % 9),
       timestamptz '2021-01-01 00:00:00+00' + (g * 13 + {number}) * interval '1 minute',
       (g + {number}) % 2 = 0,
       date '2020-01-01' + (g % 900)::int,
       CASE WHEN g % 5 = 0 THEN NULL ELSE jsonb_build_object('n', g, 't', '{name}') END
FROM generate_series(1, {int(rows)}) AS g;
"""


def create_tables(conn: Any, schema: str, tables: int, rows: int, analyze: bool = False) -> list[str]:
    """Create ``tables`` tables of ``rows`` rows in ``schema`` (created if missing, tables replaced).
    ``conn``: a psycopg2 connection allowed to create in the schema. Returns the table names."""
    names = table_names(tables)
    old = conn.autocommit
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for number, name in enumerate(names):
            cur.execute(f'DROP TABLE IF EXISTS "{schema}"."{name}"')
            cur.execute(table_sql(schema, name, number, rows))
    conn.commit()
    conn.autocommit = True
    if analyze:
        with conn.cursor() as cur:
            cur.execute(f'ANALYZE {", ".join(f""" "{schema}"."{n}" """.strip() for n in names)}')
    conn.autocommit = old
    return names


def ensure_database(host: str, port: int, database: str, owner: str, superuser: str, superuser_password: str) -> None:
    admin = psycopg2.connect(host=host, port=port, dbname="postgres", user=superuser, password=superuser_password, connect_timeout=10)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{database}" OWNER "{owner}"')
    admin.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--database", default="many")
    p.add_argument("--schema", default="public")
    p.add_argument("--tables", type=int, default=100)
    p.add_argument("--rows", type=int, default=100)
    p.add_argument("--analyze", action="store_true", help="ANALYZE the tables (exact catalog row estimates)")
    p.add_argument("--pg-host", default="127.0.0.1")
    p.add_argument("--pg-port", type=int, default=int(os.environ.get("PG_PORT", "55432")))
    p.add_argument("--pg-user", default="loader")
    p.add_argument("--pg-password", default=os.environ.get("SHOP_DB_PASSWORD", "loader"))
    p.add_argument("--pg-superuser", default="postgres")
    p.add_argument("--pg-superuser-password", default=os.environ.get("PG_SUPERUSER_PASSWORD", "postgres"))
    args = p.parse_args()
    ensure_database(args.pg_host, args.pg_port, args.database, args.pg_user, args.pg_superuser, args.pg_superuser_password)
    conn = psycopg2.connect(host=args.pg_host, port=args.pg_port, dbname=args.database, user=args.pg_user, password=args.pg_password)
    started = time.monotonic()
    create_tables(conn, args.schema, args.tables, args.rows, args.analyze)
    conn.close()
    print(f"{args.database}.{args.schema}: {args.tables} tables x {args.rows} rows in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
