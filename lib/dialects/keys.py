"""Which tables an Oracle or SQL Server connector streams (pure).

A change can only be applied by key: a table needs a primary key, or ``tables.<schema.table>.key_columns``
in the config (passed to Debezium as ``message.key.columns``). Keyless tables are still bulk-copied.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.config.model import SourceConfig
from lib.dialects.base import Table


def streamable(source: SourceConfig, tables: Sequence[Table]) -> tuple[list[Table], dict[str, str]]:
    """(tables the stream covers, {qualified name: why not} for the others)."""
    covered, refused = [], {}
    for table in tables:
        if table.primary_key or source.override_for(table.schema, table.name).key_columns:
            covered.append(table)
        else:
            refused[table.qualified_name] = (
                "CDC not enabled: the table has no primary key (set tables.<schema.table>.key_columns to stream it); "
                "the bulk copy is complete"
            )
    return covered, refused
