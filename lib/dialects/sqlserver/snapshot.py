"""The SQL Server position of a bulk copy: a CDC LSN L taken before the first read.

Parallel JDBC sessions cannot share one snapshot in SQL Server. So: L is fixed before any partition
reads; each row is tagged with L; every change after L is streamed and replayed in order by the
idempotent MERGE. A row read after a later change already shows it; replaying the change's full
after-image converges to the same state, and a delete deletes. With CDC, L is the ``commit_lsn`` of
the connector's first offset (registered with ``snapshot.mode=no_data`` before the copy, it streams
every change committed after its start). When the connector already exists, it has been capturing
since then, so L is the current ``sys.fn_cdc_get_max_lsn()``. Without CDC, L is informational
(0 when CDC is not enabled on the database).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lib.config.model import SourceConfig
from lib.dialects.base import Snapshot, Table
from lib.dialects.sqlserver.cdc_order import lsn_number, lsn_text
from lib.dialects.sqlserver.sql import session_init_sql

LSN_KEY = "commit_lsn"


def server_partition(source: SourceConfig) -> dict[str, str]:
    """The SQL Server connector's offset partition: ``{"server": <topic.prefix>, "database": <db>}``."""
    assert source.cdc is not None
    return {"server": source.cdc.topic_prefix, "database": source.connection.database or ""}


def canonical_lsn(value: str | None) -> str:
    """Any LSN text (Debezium's or the 0x hex of fn_cdc_get_max_lsn; NULL -> 0) as ``xxxxxxxx:xxxxxxxx:xxxx``."""
    return lsn_text(lsn_number(value))


@contextmanager
def open_snapshot(dialect: Any, source: SourceConfig, tables: Sequence[Table]) -> Iterator[Snapshot]:
    init = session_init_sql(source.connection.read_isolation)
    if source.cdc is None:
        yield Snapshot(dialect.current_position(source.connection), init, "max-lsn")
        return
    from lib.debezium.connect_client import ConnectClient
    from lib.debezium.handoff import register_connector
    from lib.debezium.start_position import offset_value, require_connect_cdc, start_and_read_position

    document = {"name": source.cdc.connector_name, "config": dialect.connector_config(source, dialect.connector_tables(source, tables))}
    partition = server_partition(source)
    if offset_value(ConnectClient.for_cdc(require_connect_cdc(source)).offsets(document["name"]), LSN_KEY, partition) is not None:
        register_connector(source, document)
        yield Snapshot(dialect.current_position(source.connection), init, "max-lsn")
        return
    lsn = start_and_read_position(source, document, lambda payload: offset_value(payload, LSN_KEY, partition))
    yield Snapshot(canonical_lsn(lsn), init, "connector-start-lsn")
