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
        }
    )
    if "sslmode" in dict(conn.properties):
        config["database.sslmode"] = dict(conn.properties)["sslmode"]
    return config
