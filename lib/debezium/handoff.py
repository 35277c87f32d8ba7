"""After the copy: write the source's Debezium connector config and (with cdc.connect_url) register it.

The connector streams the tables of the publication the bulk load maintains, from the slot the bulk
load created, so it continues exactly where the copy's snapshot ends (docs/cdc-handoff.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lib.config.model import SourceConfig
from lib.debezium.connect_client import ConnectClient
from lib.dialects.base import Table

log = logging.getLogger("handoff")


def connector_document(source: SourceConfig, dialect: Any, tables: Sequence[Table]) -> dict[str, Any]:
    """``{"name": ..., "config": {...}}`` for the tables the connector streams (no secret inside):
    PostgreSQL's publication, the streamable selected tables of Oracle and SQL Server."""
    assert source.cdc is not None
    return {"name": source.cdc.connector_name, "config": dialect.connector_config(source, dialect.connector_tables(source, tables))}


def write_connector_file(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    log.info("connector config for %d table(s) written to %s", _table_count(document), path)


def register_connector(source: SourceConfig, document: dict[str, Any], timeout: float = 120.0) -> None:
    """Create or update the connector and wait until it and its task are RUNNING."""
    assert source.cdc is not None and source.cdc.connect_url
    client = ConnectClient.for_cdc(source.cdc)
    outcome = client.put_config(document["name"], document["config"])
    status = client.wait_running(document["name"], timeout=timeout, config=document["config"])
    log.info(
        "connector %s %s at %s: RUNNING with %d task(s)",
        document["name"],
        outcome,
        source.cdc.connect_url,
        len(status.get("tasks", [])),
    )


def remove_connector(source: SourceConfig) -> bool:
    """Delete the source's connector and its stored offsets if Kafka Connect knows it (before its slot
    can be dropped)."""
    if source.cdc is None or not source.cdc.connect_url:
        return False
    deleted = ConnectClient.for_cdc(source.cdc).delete_with_offsets(source.cdc.connector_name)
    if deleted:
        log.info("connector %s deleted", source.cdc.connector_name)
    return deleted


def _table_count(document: dict[str, Any]) -> int:
    include = document["config"].get("table.include.list", "")
    return len(include.split(",")) if include else 0
