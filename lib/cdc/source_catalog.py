"""The source columns the stream decodes compact messages with (thin layer over the dialect's discovery).

Compact messages carry values only. What each value means comes from the source catalog: the dialect
turns each column into the field schema Debezium would have sent (``debezium_field``) and, for a
column the lake table does not have yet, into the bulk path's lake type (``column_reads``). The
catalog is read once per schema, and again when an event shows a column it does not know.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from lib.config.model import SourceConfig
from lib.dialects.base import Table
from lib.retry import with_retries

log = logging.getLogger(__name__)


def stream_lake_type(spark_type: str, needs_profile: bool) -> str:
    """A new column's lake type: the bulk path's, except that a type the bulk path measures from the
    data (numeric without precision) is text here: a stream cannot know future values, text never rounds."""
    return "string" if needs_profile else spark_type


class SourceCatalog:
    def __init__(self, dialect: Any, source: SourceConfig, max_attempts: int = 3, backoff_seconds: float = 2.0) -> None:
        self.dialect = dialect
        self.source = source
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self._tables: dict[tuple[str, str], Table] = {}
        self._read: set[str] = set()
        self._lock = threading.Lock()

    def table(self, schema: str, name: str, refresh: bool = False) -> Table | None:
        """The table as the source catalog describes it (read again with ``refresh``)."""
        with self._lock:
            if refresh or schema not in self._read:
                tables = with_retries(f"{self.source.name}: reading the catalog of schema {schema}",
                                      lambda: self.dialect.stream_tables(self.source, [schema]),
                                      self.max_attempts, self.backoff_seconds)
                self._tables = {k: t for k, t in self._tables.items() if k[0] != schema}
                self._tables.update({(t.schema, t.name): t for t in tables})
                self._read.add(schema)
            return self._tables.get((schema, name))

    def fields(self, schema: str, name: str, event_columns: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """{column: Debezium field schema}; ``event_columns`` (a recent event's row image) naming a
        column the catalog read does not know makes it read the catalog again (a column was added)."""
        table = self.table(schema, name)
        if table is not None and event_columns and set(event_columns) - {c.name for c in table.columns}:
            table = self.table(schema, name, refresh=True)
        if table is None:
            raise LookupError(f"{schema}.{name} is not in the source catalog of {self.source.name}")
        try:
            return {c.name: self.dialect.debezium_field(c) for c in table.columns}
        except ValueError as exc:  # a column type the connector does not stream: no event of the table can be decoded
            raise LookupError(str(exc)) from exc

    def lake_types(self, schema: str, name: str) -> dict[str, str]:
        """{column: lake type} as the bulk path maps each column (types it measures become text)."""
        table = self.table(schema, name)
        if table is None:
            return {}
        return {r.name: stream_lake_type(r.spark_type, r.needs_profile) for r in self.dialect.column_reads(table)}
