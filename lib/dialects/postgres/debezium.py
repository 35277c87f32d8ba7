"""The Debezium PostgreSQL connector config for a source (pure).

The bulk load created the publication and the slot before copying; the connector streams from that
slot with ``snapshot.mode=no_data`` (the bulk load was the snapshot), so it starts exactly at the
handoff position. See docs/cdc-handoff.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.config.model import SourceConfig
from lib.debezium.common import base_settings

CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"

# A restarted task whose slot is still held (by the previous task's connection, which a Connect worker
# may leave open after a failed graceful stop: docs/operations.md) retries taking the slot every
# 10 s for 10 minutes (Debezium's default: 6 times), long enough for the stream's slot health check to
# terminate the stale connection (lib/cdc/health/slot_health.py) before the task gives up.
SLOT_RETRIES = {"slot.max.retries": "60", "slot.retry.delay.ms": "10000"}


def connector_config(source: SourceConfig, tables: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Kafka Connect config of the source's connector; ``tables`` are the (schema, table) pairs to stream."""
    config = base_settings(source, CONNECTOR_CLASS, tables)
    assert source.cdc is not None
    cdc, conn = source.cdc, source.connection
    config.update(
        {
            "database.hostname": conn.host,
            "database.port": str(conn.port),
            "database.dbname": conn.database or "",
            "plugin.name": "pgoutput",
            "slot.name": cdc.slot_name,
            "publication.name": cdc.publication_name,
            "publication.autocreate.mode": "disabled",  # the bulk load owns the publication
            "slot.drop.on.stop": "false",
            "snapshot.mode": "no_data",  # the bulk load took the snapshot; stream from the slot's position
            **SLOT_RETRIES,
            "status.update.interval.ms": "10000",  # the connector reports its position to the server this often
        }
    )
    if "sslmode" in dict(conn.properties):
        config["database.sslmode"] = dict(conn.properties)["sslmode"]
    return config
