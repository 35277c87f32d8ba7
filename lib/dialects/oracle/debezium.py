"""The Debezium Oracle (LogMiner) connector config and the DBA's preparation SQL (pure).

The connector is registered with ``snapshot.mode=no_data`` before the bulk copy: it records the SCN it
starts at (``snapshot_scn`` in its offsets) and, with ``internal.log.mining.transaction.snapshot.boundary.mode=all``,
also the transactions open at that SCN, so every transaction committing after it is streamed. The bulk
copy reads ``AS OF SCN`` that same SCN. See docs/cdc-handoff.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.config.model import SourceConfig
from lib.debezium.common import base_settings, message_key_columns, schema_history
from lib.dialects.base import Table
from lib.dialects.oracle.sql import qualified, quote_ident

CONNECTOR_CLASS = "io.debezium.connector.oracle.OracleConnector"
UNAVAILABLE_VALUE = "__debezium_unavailable_value"


def connector_config(source: SourceConfig, tables: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Kafka Connect config of the source's connector; ``tables`` are the (owner, table) pairs to stream."""
    config = base_settings(source, CONNECTOR_CLASS, tables)
    assert source.cdc is not None
    cdc, conn = source.cdc, source.connection
    config.update(
        {
            "database.dbname": cdc.database_name or conn.service_name or conn.sid or "",
            "database.connection.adapter": "logminer",
            "log.mining.strategy": "online_catalog",
            "snapshot.mode": "no_data",  # the bulk load copies the data AS OF the connector's snapshot SCN
            # transactions still open at the snapshot SCN are mined from their start: none is lost
            "internal.log.mining.transaction.snapshot.boundary.mode": "all",
            "lob.enabled": "true",  # CLOB/NCLOB/BLOB values; unchanged LOBs arrive as the placeholder below
            "unavailable.value.placeholder": UNAVAILABLE_VALUE,
            **schema_history(source),
            **message_key_columns(source, tables),
        }
    )
    if conn.descriptor:
        config["database.url"] = f"jdbc:oracle:thin:@{conn.descriptor}"
    else:
        config["database.hostname"] = conn.host
        config["database.port"] = str(conn.port)
    if cdc.pdb_name:
        config["database.pdb.name"] = cdc.pdb_name
    return config


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
