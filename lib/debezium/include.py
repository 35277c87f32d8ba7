"""A connector's table list from the config alone (pure), for ``cdc_connector.py config``.

Without the database, the tables are known only as the source's ``schemas`` and ``include`` /
``exclude`` globs. They become one Debezium ``table.include.list`` of anchored Java regexes over
``schema.table`` (Debezium refuses an include list and an exclude list together, so exclusions are
negative lookaheads). The bulk load registers the discovered tables instead (PostgreSQL: its
publication's; Oracle, SQL Server: the selected tables with a key); both select the same tables
except that this one cannot leave out tables without a key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from lib.config.model import SourceConfig


def glob_regex(glob: str) -> str:
    """A glob (``*``, ``?``) as a Java/Python regex fragment matching the same names."""
    return "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in glob)


def _table_patterns(schema: str, globs: Sequence[str]) -> list[str]:
    """Table-name regexes of the globs that can match in ``schema`` (a glob matches the table name
    alone or ``schema.table``)."""
    out = []
    for glob in globs:
        out.append(glob_regex(glob))
        if "." in glob:
            schema_glob, _, table_glob = glob.partition(".")
            if re.fullmatch(glob_regex(schema_glob), schema):
                out.append(glob_regex(table_glob))
    return out


def include_regexes(source: SourceConfig) -> str:
    """``table.include.list`` for the source's schemas, include and exclude globs."""
    parts = []
    for schema in source.schemas:
        include = "|".join(_table_patterns(schema, source.include))
        exclude = "|".join(_table_patterns(schema, source.exclude))
        guard = f"(?!(?:{exclude})$)" if exclude else ""
        parts.append(f"{re.escape(schema)}\\.{guard}(?:{include})")
    if any("," in p for p in parts):
        raise ValueError("globs with commas cannot be written into a Debezium include list")
    return ",".join(parts)


def connector_config_from_globs(source: SourceConfig, dialect: Any) -> dict[str, str]:
    overridden = [tuple(key.split(".", 1)) for key, _ in source.tables]  # their key_columns -> message.key.columns
    config = dialect.connector_config(source, overridden)
    config["table.include.list"] = include_regexes(source)
    return config
