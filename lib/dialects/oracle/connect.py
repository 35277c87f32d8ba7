"""Oracle JDBC connection: URL, driver properties and error classification (pure)."""

from __future__ import annotations

import re

from lib.config.model import ConnectionConfig

DRIVER = "oracle.jdbc.OracleDriver"
# ORA- codes a retry cannot fix: bad credentials, locked account, missing objects or privileges,
# snapshot too old (the flashback SCN left the undo retention: the same SCN fails again).
PERMANENT_CODES = ("ORA-01017", "ORA-28000", "ORA-00942", "ORA-01031", "ORA-00904", "ORA-01555", "ORA-08180", "ORA-00972", "ORA-01466")


def target(conn: ConnectionConfig) -> str:
    """Where the server is, for messages: ``db1:1521/ORCLPDB1``, ``db1:1521:ORCL`` or the descriptor."""
    if conn.descriptor:
        hosts = re.findall(r"HOST\s*=\s*([^)\s]+)", conn.descriptor, flags=re.IGNORECASE)
        return f"descriptor (host {', '.join(hosts)})" if hosts else "descriptor"
    if conn.service_name:
        return f"{conn.host}:{conn.port}/{conn.service_name}"
    return f"{conn.host}:{conn.port}:{conn.sid}"


def jdbc_url(conn: ConnectionConfig) -> str:
    """Thin-driver URL by service name (``@//host:port/service``), SID (``@host:port:SID``) or a full
    descriptor (``@(DESCRIPTION=...)``). No credentials: Spark shows URLs in plans and errors."""
    if conn.descriptor:
        return f"jdbc:oracle:thin:@{conn.descriptor}"
    if conn.service_name:
        return f"jdbc:oracle:thin:@//{conn.host}:{conn.port}/{conn.service_name}"
    return f"jdbc:oracle:thin:@{conn.host}:{conn.port}:{conn.sid}"


def jdbc_properties(conn: ConnectionConfig, fetch_size: int) -> dict[str, str]:
    props = {
        "driver": DRIVER,
        "user": conn.user,
        "password": conn.password,
        # Rows per round trip: the driver's default is 10, far too few for a bulk copy.
        "fetchsize": str(fetch_size),
        "defaultRowPrefetch": str(fetch_size),
        "oracle.net.CONNECT_TIMEOUT": "10000",
        "oracle.jdbc.timezoneAsRegion": "false",
        "v$session.program": "lakehouse-ingest",
    }
    props.update(dict(conn.properties))
    return props


def is_transient(message: str) -> bool:
    """Network errors, listener refusals and resource limits are retried; permanent ORA- codes are not."""
    if any(code in message for code in PERMANENT_CODES):
        return False
    return not ("invalid username" in message.lower() or "ORA-00900" in message)
