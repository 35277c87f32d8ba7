"""T-SQL text: bracketed identifiers, literals and partition predicates (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

from lib.dialects import ranges
from lib.dialects.base import Column, SplitSample, Table

DATETIME_STYLE = 121  # ODBC canonical yyyy-mm-dd hh:mi:ss.fffffff, independent of language and DATEFORMAT
_NUMERIC_TYPES = ("tinyint", "smallint", "int", "bigint", "decimal", "numeric", "money", "smallmoney", "bit")
_CHAR_TYPES = ("char", "varchar")
_NCHAR_TYPES = ("nchar", "nvarchar", "sysname")
_DATETIME_TYPES = ("date", "datetime", "datetime2", "smalldatetime", "time")


def quote_ident(name: str) -> str:
    """``[name]``; a closing bracket inside is doubled (``a]b`` -> ``[a]]b]``)."""
    if "\x00" in name:
        raise ValueError("identifiers cannot contain NUL characters")
    return "[" + name.replace("]", "]]") + "]"


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def quote_literal(value: str) -> str:
    """``N'...'``: Unicode literal, quotes doubled."""
    if "\x00" in value:
        raise ValueError("string literals cannot contain NUL characters")
    return "N'" + value.replace("'", "''") + "'"


def in_list(values: Sequence[str]) -> str:
    return ", ".join(quote_literal(v) for v in values)


def base_type(col: Column) -> str:
    return str(col.info("base_type") or col.source_type).lower()


def key_text_expr(col: Column) -> str:
    ident = quote_ident(col.name)
    kind = base_type(col)
    if kind in _NUMERIC_TYPES:
        return f"CONVERT(varchar(64), {ident})"
    if kind in _DATETIME_TYPES:
        return f"CONVERT(varchar(40), {ident}, {DATETIME_STYLE})"
    if kind == "uniqueidentifier":
        return f"CONVERT(char(36), {ident})"
    if kind in ("binary", "varbinary"):
        return f"CONVERT(varchar(max), {ident}, 1)"
    if kind in _CHAR_TYPES + _NCHAR_TYPES:
        return ident
    raise ValueError(f"column {col.name} of type {col.source_type} cannot be a split key")


def key_literal(col: Column, text: str) -> str:
    kind = base_type(col)
    if kind in _NUMERIC_TYPES:
        return f"CONVERT({col.source_type}, {quote_literal(text)})"
    if kind in _DATETIME_TYPES:
        return f"CONVERT({col.source_type}, {quote_literal(text)}, {DATETIME_STYLE})"
    if kind == "uniqueidentifier":
        return f"CONVERT(uniqueidentifier, {quote_literal(text)})"
    if kind in ("binary", "varbinary"):
        return f"CONVERT({col.source_type}, {quote_literal(text)}, 1)"
    if kind in _CHAR_TYPES:
        return "'" + text.replace("'", "''") + "'"
    return quote_literal(text)


def range_predicates(table: Table, sample: SplitSample, partitions: int) -> list[str]:
    return ranges.range_predicates(table, sample, partitions, quote_ident, key_literal)


def boundaries_ascending_sql(table: Table, sample: SplitSample, partitions: int) -> str | None:
    cond = ranges.ascending_condition(table, sample, partitions, key_literal)
    return None if cond is None else f"SELECT CASE WHEN {cond} THEN 1 ELSE 0 END AS ok"


def hash_bucket(partitions: int) -> str:
    """A row's bucket in [0, n): BINARY_CHECKSUM over the row's comparable columns, an int that may
    be negative, normalised by ``((x % n) + n) % n`` in bigint (ABS would overflow on -2^31)."""
    return f"((CAST(BINARY_CHECKSUM(*) AS bigint) % {partitions}) + {partitions}) % {partitions}"


def physical_predicates(table: Table, partitions: int) -> list[str] | None:
    """Tables without a key: hash buckets of the row content (SQL Server has no stable row address).
    Parallel readers share no snapshot here: rows changed during the copy are replayed by the stream
    for keyed tables; for keyless ones see docs/sources.md."""
    if partitions <= 1:
        return None
    bucket = hash_bucket(partitions)
    return [f"{bucket} = {i}" for i in range(partitions)]


def select_sql(table: Table, select_exprs: Sequence[str], predicate: str | None) -> str:
    where = f" WHERE {predicate}" if predicate and predicate not in ("TRUE", "1 = 1") else ""
    return f"SELECT {', '.join(select_exprs)} FROM {qualified(table.schema, table.name)}{where}"


def count_sql(table: Table) -> str:
    return f"SELECT COUNT_BIG(*) AS n FROM {qualified(table.schema, table.name)}"


def sample_sql(table: Table, columns: Sequence[Column], percent: float | None, step: int) -> str:
    """Key texts with their rank in the key's order (``rn``); callers sort by ``rn``. ``percent``: a
    row sample (``RAND(CHECKSUM(NEWID()))`` per row, so keys stored in order do not cluster it; TABLESAMPLE
    picks whole pages); else every ``step``-th key."""
    order = ", ".join(quote_ident(c.name) for c in columns)
    texts = ", ".join(f"{key_text_expr(c)} AS k{i}" for i, c in enumerate(columns))
    keys = ", ".join(f"s.k{i}" for i in range(len(columns)))
    source = qualified(table.schema, table.name)
    ranked = f"SELECT {texts}, ROW_NUMBER() OVER (ORDER BY {order}) AS rn FROM {source}"
    if percent is not None:
        return f"{ranked} WHERE RAND(CHECKSUM(NEWID())) * 100 < {percent:.6f}"
    return f"SELECT {keys}, s.rn FROM ({ranked}) AS s WHERE s.rn % {step} = 0"


def session_init_sql(read_isolation: str) -> str:
    """Every reader's session: its isolation level (``snapshot`` needs ALLOW_SNAPSHOT_ISOLATION ON),
    ISO date parsing, no lock waits longer than 60 s."""
    level = {"read_committed": "READ COMMITTED", "snapshot": "SNAPSHOT"}[read_isolation]
    return f"SET TRANSACTION ISOLATION LEVEL {level}; SET DATEFORMAT ymd; SET LOCK_TIMEOUT 60000"


MAX_LSN_SQL = "SELECT CONVERT(varchar(22), sys.fn_cdc_get_max_lsn(), 1) AS lsn"
