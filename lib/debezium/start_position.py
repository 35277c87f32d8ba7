"""Start a connector before the bulk copy and read the position it starts at (Oracle, SQL Server).

The connector is registered with ``snapshot.mode=no_data``: it records where it starts streaming in
its source offsets, which Kafka Connect commits after the first record (a heartbeat on a quiet
database) and serves at ``GET /connectors/<name>/offsets``. That position is the bulk copy's snapshot
position (docs/cdc-handoff.md). The offsets parsing is pure; waiting is the thin part.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from lib.config.model import CdcConfig, SourceConfig
from lib.debezium.connect_client import ConnectClient
from lib.errors import ConfigError, SourceError

log = logging.getLogger("handoff")


def offset_value(payload: Mapping[str, Any] | None, key: str, partition: Mapping[str, str] | None = None) -> str | None:
    """The value of ``key`` in the connector's stored offset (of ``partition`` when given), else None."""
    for entry in (payload or {}).get("offsets", []) or []:
        if partition is not None and any(str(entry.get("partition", {}).get(k)) != v for k, v in partition.items()):
            continue
        value = (entry.get("offset") or {}).get(key)
        if value is not None:
            return str(value)
    return None


def require_connect_cdc(source: SourceConfig) -> CdcConfig:
    """The source's cdc settings, which must name Kafka Connect (``cdc.connect_url``)."""
    cdc = source.cdc
    assert cdc is not None
    if not cdc.connect_url:
        raise ConfigError(
            f"sources.{source.name}.cdc.connect_url",
            f"is required for a {source.type} source with cdc: the connector is started before the copy and its "
            "starting position is the copy's snapshot position (docs/cdc-handoff.md)",
        )
    return cdc


def start_and_read_position(
    source: SourceConfig,
    document: dict[str, Any],
    read: Callable[[Mapping[str, Any] | None], str | None],
    timeout: float = 300.0,
    poll: float = 2.0,
) -> str:
    """Register (or keep) the connector, wait until it runs, then until its offsets carry a position."""
    from lib.debezium.handoff import register_connector

    client = ConnectClient.for_cdc(require_connect_cdc(source))
    register_connector(source, document)
    deadline = time.monotonic() + timeout
    while True:
        position = read(client.offsets(document["name"]))
        if position is not None:
            log.info("connector %s starts at %s", document["name"], position)
            return position
        if time.monotonic() > deadline:
            raise SourceError(
                f"connector {document['name']} committed no offset within {timeout:.0f}s (heartbeat.interval.ms and the "
                "worker's offset.flush.interval.ms decide when the first one is written)",
                transient=False,
            )
        time.sleep(poll)
