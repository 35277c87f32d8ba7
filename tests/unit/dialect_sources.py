"""Oracle and SQL Server sources as the config loader builds them (shared by the dialect unit tests)."""

from __future__ import annotations

from typing import Any

from lib.config import parse_config
from lib.config.model import SourceConfig

ENV = {"ORA_PASSWORD": "ora-secret-1", "MSS_PASSWORD": "mss-secret-2"}


def oracle_source(connection: dict[str, Any] | None = None, **extra: Any) -> SourceConfig:
    conn = {"host": "ora1.internal", "service_name": "ORCLPDB1", "user": "dbz", "password": "${ORA_PASSWORD}"}
    conn.update(connection or {})
    raw = {
        "kafka": {"bootstrap_servers": "kafka1:9092"},
        "sources": {"ora": {"type": "oracle", "connection": conn, "schemas": ["SHOP"], "cdc": {"topic_prefix": "ora"}, **extra}},
    }
    return parse_config(raw, ENV).source("ora")


def sqlserver_source(connection: dict[str, Any] | None = None, **extra: Any) -> SourceConfig:
    conn = {"host": "mss1.internal", "database": "shop", "user": "dbz", "password": "${MSS_PASSWORD}"}
    conn.update(connection or {})
    raw = {
        "kafka": {"bootstrap_servers": "kafka1:9092"},
        "sources": {"mss": {"type": "sqlserver", "connection": conn, "schemas": ["dbo"], "cdc": {"topic_prefix": "mss"}, **extra}},
    }
    return parse_config(raw, ENV).source("mss")
