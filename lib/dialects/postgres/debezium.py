"""The Debezium PostgreSQL connector config for a source (pure).

The bulk load created the publication and the slot before copying; the connector streams from that
slot with ``snapshot.mode=no_data`` (the bulk load was the snapshot), so it starts exactly at the
handoff position. See docs/cdc-handoff.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.config.model import SourceConfig
from lib.debezium.common import JSON_CONVERTERS, PRECISION, include_list, password_reference

CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"


def connector_config(source: SourceConfig, tables: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Kafka Connect config of the source's connector; ``tables`` are the (schema, table) pairs to stream."""
    cdc = source.cdc
    if cdc is None:
        raise ValueError(f"source {source.name} has no cdc section")
    conn = source.connection
    config = {
        "connector.class": CONNECTOR_CLASS,
        "tasks.max": "1",
        "database.hostname": conn.host,
        "database.port": str(conn.port),
        "database.dbname": conn.database or "",
        "database.user": conn.user,
        "database.password": password_reference(source),
        "topic.prefix": cdc.topic_prefix,
        "plugin.name": "pgoutput",
        "slot.name": cdc.slot_name,
        "publication.name": cdc.publication_name,
        "publication.autocreate.mode": "disabled",  # the bulk load owns the publication
        "slot.drop.on.stop": "false",
        "snapshot.mode": "no_data",  # the bulk load took the snapshot; stream from the slot's position
        "table.include.list": include_list(tables),
        "skipped.operations": "none",  # deliver truncates too (op "t")
        "tombstones.on.delete": "true",
        "heartbeat.interval.ms": str(cdc.heartbeat_interval_ms),  # lets the slot advance on a quiet database
        "provide.transaction.metadata": "false",
        "errors.max.retries": "-1",
        "errors.retry.delay.max.ms": "60000",
        **PRECISION,
        **JSON_CONVERTERS,
    }
    if "sslmode" in dict(conn.properties):
        config["database.sslmode"] = dict(conn.properties)["sslmode"]
    return config
