"""The Debezium SQL Server connector config and the DBA's CDC enablement SQL (pure).

The connector reads the CDC change tables SQL Server fills (``sys.sp_cdc_enable_table``). It is
registered with ``snapshot.mode=no_data`` before the bulk copy; the ``commit_lsn`` of its first
offset is the copy's position L (docs/cdc-handoff.md). Topics are ``<prefix>.<database>.<schema>.<table>``.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.config.model import SourceConfig
from lib.debezium.common import base_settings, message_key_columns, schema_history
from lib.dialects.base import Table
from lib.dialects.sqlserver.sql import quote_ident, quote_literal

CONNECTOR_CLASS = "io.debezium.connector.sqlserver.SqlServerConnector"


def connector_config(source: SourceConfig, tables: Sequence[tuple[str, str]]) -> dict[str, str]:
    config = base_settings(source, CONNECTOR_CLASS, tables)
    conn = source.connection
    config.update(
        {
            "database.hostname": conn.host,
            "database.port": str(conn.port),
            "database.names": conn.database or "",
            "database.encrypt": "true" if conn.encrypt else "false",
            "database.trustServerCertificate": "true" if conn.trust_server_certificate else "false",
            "snapshot.mode": "no_data",  # the bulk load copies the data; the connector starts at the max LSN
            "snapshot.isolation.mode": "read_committed",
            **schema_history(source),
            **message_key_columns(source, tables),
        }
    )
    if conn.instance:
        config["database.instance"] = conn.instance
    return config


def prepare_sql(source: SourceConfig, tables: Sequence[Table]) -> list[str]:
    """What a DBA (db_owner; sysadmin for sp_cdc_enable_db) runs once. SQL Server Agent must run:
    its capture job fills the change tables, its cleanup job trims them after the retention."""
    conn = source.connection
    user = quote_ident(conn.user)
    statements = [f"USE {quote_ident(conn.database or '')}", "EXEC sys.sp_cdc_enable_db"]
    for t in tables:
        statements.append(
            f"EXEC sys.sp_cdc_enable_table @source_schema = {quote_literal(t.schema)}, @source_name = {quote_literal(t.name)}, "
            "@role_name = NULL, @supports_net_changes = 0"
        )
    statements += [
        "-- CDC retention must cover the bulk load and any pause of the connector (minutes; default 4320 = 3 days):",
        "EXEC sys.sp_cdc_change_job @job_type = N'cleanup', @retention = 4320",
        f"GRANT SELECT ON SCHEMA::[cdc] TO {user}",
        f"GRANT VIEW DATABASE STATE TO {user}",
        *[f"GRANT SELECT ON {quote_ident(t.schema)}.{quote_ident(t.name)} TO {user}" for t in tables],
    ]
    if conn.read_isolation == "snapshot":
        statements.append(f"ALTER DATABASE {quote_ident(conn.database or '')} SET ALLOW_SNAPSHOT_ISOLATION ON")
    return statements
