"""Oracle SQL text: identifiers, literals, flashback reads and partition predicates (pure functions).

Names are always double-quoted exactly as the catalog spells them: unquoted Oracle names are stored
upper-case (``ORDERS``), quoted mixed-case names keep their case (``"Gift Cards"``), and ``"ORDERS"``
names the same table as ``orders`` unquoted, so quoting every name is exact for both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lib.dialects import ranges
from lib.dialects.base import Column, SplitSample, Table

# The canonical text of key values (sampled by the server) and the literal reading it back exactly.
DATE_FORMAT = "YYYY-MM-DD HH24:MI:SS"
TIMESTAMP_FORMAT = "YYYY-MM-DD HH24:MI:SS.FF9"
_NUMBER_TEXT = re.compile(r"^-?(\d+\.?\d*|\.\d+)(E[+-]?\d+)?$", re.IGNORECASE)


def quote_ident(name: str) -> str:
    """``"NAME"``; Oracle identifiers cannot contain double quotes or NUL at all."""
    if '"' in name or "\x00" in name:
        raise ValueError(f"Oracle identifiers cannot contain double quotes or NUL: {name!r}")
    return f'"{name}"'


def qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def quote_literal(value: str) -> str:
    if "\x00" in value:
        raise ValueError("string literals cannot contain NUL characters")
    return "'" + value.replace("'", "''") + "'"


def in_list(values: Sequence[str]) -> str:
    return ", ".join(quote_literal(v) for v in values)


def base_type(col: Column) -> str:
    """The catalog's DATA_TYPE without precision: ``TIMESTAMP(6) WITH TIME ZONE`` -> ``TIMESTAMP WITH TIME ZONE``."""
    return re.sub(r"\(\d+\)", "", str(col.info("data_type") or col.source_type)).strip().upper()


def key_text_expr(col: Column) -> str:
    """The SELECT expression sampling a key column as canonical text (NLS-independent)."""
    ident = quote_ident(col.name)
    kind = base_type(col)
    if kind in ("NUMBER", "FLOAT", "INTEGER"):
        return f"TO_CHAR({ident}, 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,''')"
    if kind == "DATE":
        return f"TO_CHAR({ident}, '{DATE_FORMAT}')"
    if kind == "TIMESTAMP":
        return f"TO_CHAR({ident}, '{TIMESTAMP_FORMAT}')"
    if kind in ("RAW",):
        return f"RAWTOHEX({ident})"
    if kind in ("VARCHAR2", "CHAR", "NVARCHAR2", "NCHAR"):
        return ident
    raise ValueError(f"column {col.name} of type {col.source_type} cannot be a split key (use a NUMBER, DATE, TIMESTAMP, RAW or character column)")


def key_literal(col: Column, text: str) -> str:
    """A literal of ``col``'s type holding ``text`` (as :func:`key_text_expr` rendered it)."""
    kind = base_type(col)
    if kind in ("NUMBER", "FLOAT", "INTEGER"):
        if not _NUMBER_TEXT.match(text):
            raise ValueError(f"not a number: {text!r}")
        return text  # a numeric literal: exact and independent of NLS settings
    if kind == "DATE":
        return f"TO_DATE({quote_literal(text)}, '{DATE_FORMAT}')"
    if kind == "TIMESTAMP":
        return f"TO_TIMESTAMP({quote_literal(text)}, '{TIMESTAMP_FORMAT}')"
    if kind == "RAW":
        return f"HEXTORAW({quote_literal(text)})"
    if kind in ("NVARCHAR2", "NCHAR"):
        return "N" + quote_literal(text)
    return quote_literal(text)


def range_predicates(table: Table, sample: SplitSample, partitions: int) -> list[str]:
    return ranges.range_predicates(table, sample, partitions, quote_ident, key_literal)


def boundaries_ascending_sql(table: Table, sample: SplitSample, partitions: int) -> str | None:
    cond = ranges.ascending_condition(table, sample, partitions, key_literal)
    return None if cond is None else f"SELECT CASE WHEN {cond} THEN 1 ELSE 0 END AS ok FROM DUAL"


def physical_predicates(table: Table, partitions: int) -> list[str] | None:
    """Tables without a key: ``ORA_HASH(ROWID, n-1)`` buckets. Every row has exactly one ROWID at the
    flashback SCN all partitions read, so the buckets cover every row once (each partition scans the
    table; ROWID extent ranges would avoid that but need DBA_EXTENTS, which the loader is not granted)."""
    if partitions <= 1:
        return None
    return [f"ORA_HASH(ROWID, {partitions - 1}) = {i}" for i in range(partitions)]


def flashback(scn: str | None) -> str:
    """``AS OF SCN <n>``: the read sees exactly the transactions committed at or before SCN n."""
    if scn is None:
        return ""
    if not scn.isdigit():
        raise ValueError(f"not an Oracle SCN: {scn!r}")
    return f" AS OF SCN {scn}"


def select_sql(table: Table, select_exprs: Sequence[str], predicate: str | None, scn: str | None = None) -> str:
    where = f" WHERE {predicate}" if predicate and predicate not in ("TRUE", "1 = 1") else ""
    return f"SELECT {', '.join(select_exprs)} FROM {qualified(table.schema, table.name)}{flashback(scn)}{where}"


def count_sql(table: Table, scn: str | None) -> str:
    return f"SELECT COUNT(*) AS n FROM {qualified(table.schema, table.name)}{flashback(scn)}"


def sample_sql(table: Table, columns: Sequence[Column], scn: str | None, percent: float | None, step: int) -> str:
    """Key texts with their rank in the database's key order (``rn``); callers sort by ``rn``.

    ``percent``: a block-free row sample (``SAMPLE (p)``: rows picked independently); else every
    ``step``-th key of the whole table."""
    order = ", ".join(quote_ident(c.name) for c in columns)
    texts = ", ".join(f"{key_text_expr(c)} AS k{i}" for i, c in enumerate(columns))
    keys = ", ".join(f"k{i}" for i in range(len(columns)))
    source = qualified(table.schema, table.name)
    if percent is not None:
        return f"SELECT {texts}, ROW_NUMBER() OVER (ORDER BY {order}) AS rn FROM {source} SAMPLE ({percent:.6f}){flashback(scn)}"
    return f"SELECT {keys}, rn FROM (SELECT {texts}, ROW_NUMBER() OVER (ORDER BY {order}) AS rn FROM {source}{flashback(scn)}) WHERE MOD(rn, {step}) = 0"


def scn_to_int(scn: str) -> int:
    """SCNs are decimal integers (up to 2^64 since 12.2): their numeric value orders them."""
    text = scn.strip()
    if not text.isdigit():
        raise ValueError(f"not an Oracle SCN: {scn!r}")
    return int(text)


def session_init_sql() -> str:
    """Run by every JDBC session before its query: UTC session time zone (TIMESTAMP WITH LOCAL TIME
    ZONE values are presented in it), binary string ordering (split points sorted by ORDER BY must
    compare the same way in WHERE), '.' as the decimal separator."""
    statements = [
        "ALTER SESSION SET TIME_ZONE = ''UTC''",
        "ALTER SESSION SET NLS_SORT = ''BINARY''",
        "ALTER SESSION SET NLS_COMP = ''BINARY''",
        "ALTER SESSION SET NLS_NUMERIC_CHARACTERS = ''.,''",
    ]
    return "BEGIN " + " ".join(f"EXECUTE IMMEDIATE '{s}';" for s in statements) + " END;"
