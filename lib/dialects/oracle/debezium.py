"""The Debezium Oracle (LogMiner) connector config and the DBA's preparation SQL (pure).

The connector is registered with ``snapshot.mode=no_data`` before the bulk copy: it records the SCN it
starts at (``snapshot_scn`` in its offsets) and, with ``internal.log.mining.transaction.snapshot.boundary.mode=all``,
also the transactions open at that SCN, so every transaction committing after it is streamed. The bulk
copy reads ``AS OF SCN`` that same SCN. See docs/cdc-handoff.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.config.model import SourceConfig
from lib.debezium.common import JSON_CONVERTERS, PRECISION, include_list, password_reference
from lib.dialects.base import Table
from lib.dialects.oracle.sql import qualified, quote_ident

CONNECTOR_CLASS = "io.debezium.connector.oracle.OracleConnector"
UNAVAILABLE_VALUE = "__debezium_unavailable_value"


def schema_history_topic(source: SourceConfig) -> str:
    assert source.cdc is not None
    return f"schema-history.{source.cdc.topic_prefix}"


def connector_config(source: SourceConfig, tables: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Kafka Connect config of the source's connector; ``tables`` are the (owner, table) pairs to stream."""
    cdc = source.cdc
    if cdc is None:
        raise ValueError(f"source {source.name} has no cdc section")
    conn = source.connection
    config = {
        "connector.class": CONNECTOR_CLASS,
        "tasks.max": "1",
        "database.user": conn.user,
        "database.password": password_reference(source),
        "database.dbname": cdc.database_name or conn.service_name or conn.sid or "",
        "topic.prefix": cdc.topic_prefix,
        "database.connection.adapter": "logminer",
        "log.mining.strategy": "online_catalog",
        "snapshot.mode": "no_data",  # the bulk load copies the data AS OF the connector's snapshot SCN
        # transactions still open at the snapshot SCN are mined from their start: none is lost
        "internal.log.mining.transaction.snapshot.boundary.mode": "all",
        "table.include.list": include_list(tables),
        "schema.history.internal.kafka.topic": schema_history_topic(source),
        "schema.history.internal.kafka.bootstrap.servers": cdc.kafka_bootstrap_servers,
        "schema.history.internal.store.only.captured.tables.ddl": "false",  # tables added later have their DDL in the history
        "lob.enabled": "true",  # CLOB/NCLOB/BLOB values; unchanged LOBs arrive as the placeholder below
        "unavailable.value.placeholder": UNAVAILABLE_VALUE,
        "skipped.operations": "none",  # truncates too (op "t")
        "tombstones.on.delete": "true",
        "heartbeat.interval.ms": str(cdc.heartbeat_interval_ms),  # offsets advance (and are committed) on a quiet database
        "provide.transaction.metadata": "false",
        "errors.max.retries": "-1",
        "errors.retry.delay.max.ms": "60000",
        **PRECISION,
        **JSON_CONVERTERS,
    }
    if conn.descriptor:
        config["database.url"] = f"jdbc:oracle:thin:@{conn.descriptor}"
    else:
        config["database.hostname"] = conn.host
        config["database.port"] = str(conn.port)
    if cdc.pdb_name:
        config["database.pdb.name"] = cdc.pdb_name
    keys = message_key_columns(source, tables)
    if keys:
        config["message.key.columns"] = keys
    return config


def message_key_columns(source: SourceConfig, tables: Sequence[tuple[str, str]]) -> str:
    """Debezium's ``message.key.columns`` for tables whose key is configured (``tables.<t>.key_columns``)."""
    parts = []
    for schema, table in sorted(tables):
        override = source.override_for(schema, table)
        if override.key_columns:
            parts.append(f"{schema}.{table}:{','.join(override.key_columns)}")
    return ";".join(parts)


def prepare_sql(source: SourceConfig, tables: Sequence[Table]) -> list[str]:
    """What a DBA runs once (as SYSDBA; in a CDB, in CDB$ROOT for the database-wide statements)."""
    user = quote_ident(source.connection.user.upper() if source.connection.user.islower() else source.connection.user)
    statements = [
        "-- LogMiner needs ARCHIVELOG mode (SELECT LOG_MODE FROM V$DATABASE; if NOARCHIVELOG: SHUTDOWN IMMEDIATE; "
        "STARTUP MOUNT; ALTER DATABASE ARCHIVELOG; ALTER DATABASE OPEN;)",
        "ALTER DATABASE ADD SUPPLEMENTAL LOG DATA",
        *[f"ALTER TABLE {qualified(t.schema, t.name)} ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS" for t in tables],
        "-- Flashback reads of the bulk copy (AS OF SCN) need undo kept for the whole load, else ORA-01555:",
        "-- ALTER SYSTEM SET UNDO_RETENTION = <seconds longer than the longest table copy>",
        f"GRANT CREATE SESSION TO {user}",
        f"GRANT SELECT ON V_$DATABASE TO {user}",
        f"GRANT FLASHBACK ANY TABLE TO {user}",
        f"GRANT SELECT ANY TABLE TO {user}",
        f"GRANT SELECT_CATALOG_ROLE TO {user}",
        f"GRANT EXECUTE_CATALOG_ROLE TO {user}",
        f"GRANT SELECT ANY TRANSACTION TO {user}",
        f"GRANT LOGMINING TO {user}",
        f"GRANT CREATE TABLE TO {user}",
        f"GRANT LOCK ANY TABLE TO {user}",
        f"GRANT CREATE SEQUENCE TO {user}",
        f"GRANT EXECUTE ON DBMS_LOGMNR TO {user}",
        f"GRANT EXECUTE ON DBMS_LOGMNR_D TO {user}",
        *[
            f"GRANT SELECT ON {view} TO {user}"
            for view in (
                "V_$LOG",
                "V_$LOG_HISTORY",
                "V_$LOGMNR_LOGS",
                "V_$LOGMNR_CONTENTS",
                "V_$LOGMNR_PARAMETERS",
                "V_$LOGFILE",
                "V_$ARCHIVED_LOG",
                "V_$ARCHIVE_DEST_STATUS",
                "V_$TRANSACTION",
                "V_$MYSTAT",
                "V_$STATNAME",
            )
        ],
    ]
    if source.cdc is not None and source.cdc.pdb_name:
        statements.append(f"GRANT SET CONTAINER TO {user} CONTAINER=ALL")
    return statements
