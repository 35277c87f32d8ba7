"""The Oracle snapshot of a bulk copy: one SCN S, every partition reads ``AS OF SCN S``.

With CDC, Debezium picks S: the connector is registered with ``snapshot.mode=no_data`` before the
copy, and S is the ``snapshot_scn`` of its offsets. The connector streams every transaction that
commits after S (transactions open at S included, by
``internal.log.mining.transaction.snapshot.boundary.mode=all``); the copy holds exactly those
committed at or before S. When the connector already exists (a repeated or resumed load), it has been
capturing since its own S0, so the copy reads AS OF the current SCN S2 >= S0 and the stream skips a
table's events with commit_scn <= its recorded S2. Without CDC, S is the current SCN.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lib.config.model import SourceConfig
from lib.dialects.base import Snapshot, Table
from lib.dialects.oracle.sql import session_init_sql

# The SCN the connector's snapshot was taken at, in its offsets. Debezium 3.2.3 writes it as
# ``snapshot_scn`` (OracleOffsetContext.getOffset; the LogMiner adapter builds the snapshot offset with
# scn = snapshot_scn = the current SCN, checked in the plugin's bytecode). Later versions keep that SCN as
# ``snapshot_commit_scn`` and reuse ``snapshot_scn`` for where mining starts: read that one first.
SCN_KEYS = ("snapshot_commit_scn", "snapshot_scn")
RESUME_KEY = "scn"  # present in every offset the connector has committed


def snapshot_scn(payload: Any, partition: dict[str, str]) -> str | None:
    """The snapshot SCN in the connector's offsets (``GET /connectors/<name>/offsets``), else None."""
    from lib.debezium.start_position import offset_value

    for key in SCN_KEYS:
        value = offset_value(payload, key, partition)
        if value is not None:
            return value
    return None
CURRENT_SCN_SQL = "SELECT TO_CHAR(CURRENT_SCN) AS scn FROM V$DATABASE"


def server_partition(source: SourceConfig) -> dict[str, str]:
    """The source partition of the Oracle connector's offsets: ``{"server": <topic.prefix>}``."""
    assert source.cdc is not None
    return {"server": source.cdc.topic_prefix}


@contextmanager
def open_snapshot(dialect: Any, source: SourceConfig, tables: Sequence[Table]) -> Iterator[Snapshot]:
    if source.cdc is None:
        yield Snapshot(dialect.current_position(source.connection), session_init_sql(), "flashback-current-scn")
        return
    from lib.debezium.connect_client import ConnectClient
    from lib.debezium.handoff import register_connector
    from lib.debezium.start_position import offset_value, require_connect_cdc, start_and_read_position

    document = {"name": source.cdc.connector_name, "config": dialect.connector_config(source, dialect.connector_tables(source, tables))}
    partition = server_partition(source)
    if offset_value(ConnectClient.for_cdc(require_connect_cdc(source)).offsets(document["name"]), RESUME_KEY, partition) is not None:
        register_connector(source, document)  # running since its own snapshot SCN: read at the current SCN
        yield Snapshot(dialect.current_position(source.connection), session_init_sql(), "flashback-current-scn")
        return
    scn = start_and_read_position(source, document, lambda payload: snapshot_scn(payload, partition))
    yield Snapshot(scn, session_init_sql(), "connector-snapshot-scn")
