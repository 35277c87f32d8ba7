"""Opening PostgreSQL connections from the driver (psycopg2). Passwords go in as keyword arguments only."""

from __future__ import annotations

from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from lib.config.model import ConnectionConfig
from lib.errors import SourceError

# SQLSTATE classes worth retrying: connection exceptions, insufficient resources, operator intervention
# (admin shutdown, cannot connect now), serialization failures and deadlocks.
_TRANSIENT_CLASSES = ("08", "53", "57", "40")
# Connection failures carry no SQLSTATE in libpq; these messages will not change on a retry.
_PERMANENT_CONNECT_ERRORS = ("password authentication failed", "no pg_hba.conf entry", "does not exist", "permission denied")


def connect(conn: ConnectionConfig, *, replication: bool = False, application_name: str = "lakehouse-ingest") -> Any:
    """A new psycopg2 connection (logical replication protocol when ``replication``)."""
    kwargs: dict[str, Any] = {
        "host": conn.host,
        "port": conn.port,
        "dbname": conn.database,
        "user": conn.user,
        "password": conn.password,
        "application_name": application_name,
        "connect_timeout": 10,
    }
    kwargs.update({k: v for k, v in conn.properties if k in ("sslmode", "sslrootcert", "options")})
    if replication:
        kwargs["connection_factory"] = psycopg2.extras.LogicalReplicationConnection
    try:
        return psycopg2.connect(**kwargs)
    except psycopg2.Error as exc:
        raise as_source_error(exc, f"cannot connect to postgres at {conn.host}:{conn.port}/{conn.database}") from None


def as_source_error(exc: BaseException, context: str) -> SourceError:
    """A SourceError with the server's message, marked transient when a retry may succeed."""
    code = getattr(exc, "pgcode", None)
    transient = code is None or code[:2] in _TRANSIENT_CLASSES
    if code is None and any(marker in str(exc) for marker in _PERMANENT_CONNECT_ERRORS):
        transient = False
    message = (getattr(exc, "pgerror", None) or str(exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    return SourceError(f"{context}: {message}", transient=transient)
