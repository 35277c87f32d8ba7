"""SQL Server / Azure SQL JDBC connection: URL, driver properties and error classification (pure)."""

from __future__ import annotations

from lib.config.model import ConnectionConfig

DRIVER = "com.microsoft.sqlserver.jdbc.SQLServerDriver"
DEFAULT_PORT = 1433
# Errors a retry cannot fix: login failed (18456), cannot open database (4060), permission denied
# (229, 230), invalid object / column (208, 207), CDC not enabled (22985), SSL/certificate trust failures.
PERMANENT_MARKERS = ("Login failed", "Cannot open database", "permission was denied", "Invalid object name", "Invalid column name", "PKIX path", "certificate")


def target(conn: ConnectionConfig) -> str:
    """``host:port/db`` or ``host\\instance/db`` for messages."""
    where = f"{conn.host}\\{conn.instance}" if conn.instance else f"{conn.host}:{conn.port}"
    return f"{where}/{conn.database}"


def jdbc_url(conn: ConnectionConfig) -> str:
    """``jdbc:sqlserver://host:port;databaseName=db;...``; with a named instance ``host\\instance``
    (its port is resolved by the SQL Server Browser unless ``port`` is set to something else than 1433).
    No credentials in the URL."""
    server = conn.host
    if conn.instance:
        server += f"\\{conn.instance}"
        if conn.port != DEFAULT_PORT:
            server += f":{conn.port}"
    else:
        server += f":{conn.port}"
    parts = [
        f"databaseName={{{conn.database}}}",
        f"encrypt={'true' if conn.encrypt else 'false'}",
        f"trustServerCertificate={'true' if conn.trust_server_certificate else 'false'}",
        "applicationName=lakehouse-ingest",
        "loginTimeout=10",
    ]
    return f"jdbc:sqlserver://{server};" + ";".join(parts)


def jdbc_properties(conn: ConnectionConfig, fetch_size: int) -> dict[str, str]:
    props = {
        "driver": DRIVER,
        "user": conn.user,
        "password": conn.password,
        "fetchsize": str(fetch_size),
        "selectMethod": "direct",
        "responseBuffering": "adaptive",  # stream rows, never buffer a whole result
    }
    props.update(dict(conn.properties))
    return props


def is_transient(message: str) -> bool:
    return not any(marker.lower() in message.lower() for marker in PERMANENT_MARKERS)
