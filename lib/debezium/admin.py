"""Operating a source's CDC plumbing: show connector status and slot lag, remove everything cleanly."""

from __future__ import annotations

import json
import logging
from typing import Any

from lib.config.model import SourceConfig
from lib.debezium.connect_client import ConnectClient, connector_state, failure_trace
from lib.debezium.handoff import remove_connector
from lib.errors import ConfigError

log = logging.getLogger("cdc")


def _cdc(source: SourceConfig) -> Any:
    if source.cdc is None:
        raise ConfigError(f"sources.{source.name}.cdc", f"source {source.name!r} has no cdc section")
    return source.cdc


# A connector that wrote no heartbeat for this many intervals is not called RUNNING without saying so.
SILENT_INTERVALS = 3


def heartbeat_age(source: SourceConfig) -> tuple[float | None, str | None]:
    """(seconds since the connector's newest heartbeat, None if it never wrote one; why unknown, if so)."""
    import time

    from lib.cdc.health.freshness import HeartbeatReader
    from lib.debezium.common import heartbeat_topic
    from lib.kafka.settings import librdkafka_settings

    cdc = _cdc(source)
    if not cdc.heartbeat_interval_ms:
        return None, "heartbeats are off (cdc.heartbeat_interval_ms: 0)"
    reader = HeartbeatReader(librdkafka_settings(cdc.kafka), heartbeat_topic(cdc.topic_prefix))
    try:
        beat = reader.latest()
    finally:
        reader.close()
    if not beat.ok:
        return None, f"Kafka at {cdc.kafka.bootstrap_servers} is not readable"
    return (None, "no heartbeat yet") if beat.at is None else (max(0.0, time.time() - beat.at), None)


def cdc_status(source: SourceConfig, dialect: Any) -> dict[str, Any]:
    """Connector state (when cdc.connect_url is set) and its newest heartbeat, slot state and WAL lag, published tables."""
    cdc = _cdc(source)
    report: dict[str, Any] = {"source": source.name, "connector": cdc.connector_name, "slot_name": cdc.slot_name, "publication": cdc.publication_name}
    report["heartbeat_age_seconds"], report["heartbeat_unknown"] = heartbeat_age(source)
    report["heartbeat_interval_seconds"] = cdc.heartbeat_interval_ms / 1000
    if cdc.connect_url:
        status = ConnectClient.for_cdc(cdc).status(cdc.connector_name)
        report["connector_state"] = connector_state(status)
        report["tasks"] = [t.get("state") for t in (status or {}).get("tasks", [])]
        if report["connector_state"] == "FAILED":
            report["connector_error"] = failure_trace(status)
    else:
        report["connector_state"] = "unknown (no cdc.connect_url)"
    if dialect.name != "postgres":  # no slot nor publication: the connector's offsets are its position
        report["slot_name"] = report["publication"] = None
        if cdc.connect_url:
            report["offsets"] = ConnectClient.for_cdc(cdc).offsets(cdc.connector_name)
        return report
    report["slot"] = dialect.slot_info(source.connection, cdc.slot_name)
    report["published_tables"] = len(dialect.published_tables(source.connection, cdc.publication_name))
    return report


def status_lines(report: dict[str, Any]) -> list[str]:
    """Human lines for ``cdc_connector.py status`` (pure)."""
    age, interval = report.get("heartbeat_age_seconds"), report.get("heartbeat_interval_seconds") or 0
    silent = interval > 0 and (age is None or age > SILENT_INTERVALS * interval) and report.get("heartbeat_unknown") != (
        "heartbeats are off (cdc.heartbeat_interval_ms: 0)")
    state = report["connector_state"]
    if silent and state == "RUNNING":
        state = "RUNNING but NOT STREAMING"
    lines = [f"connector {report['connector']}: {state}" + (f" tasks={report['tasks']}" if report.get("tasks") else "")]
    if age is not None:
        lines.append(f"  newest heartbeat {age:.0f}s ago (every {interval:g}s)" + (
            f": nothing has moved for {age / interval:.0f} heartbeat intervals (docs/operations.md)" if silent else ""))
    elif report.get("heartbeat_unknown"):
        lines.append(f"  heartbeat: {report['heartbeat_unknown']}")
    if report.get("connector_error"):
        lines.append(f"  error: {report['connector_error']}")
    if report.get("slot_name") is None:
        for entry in (report.get("offsets") or {}).get("offsets", []):
            lines.append(f"offset {json.dumps(entry.get('partition'), sort_keys=True)}: {json.dumps(entry.get('offset'), sort_keys=True)}")
        return lines
    slot = report.get("slot")
    if slot is None:
        lines.append(f"slot {report['slot_name']}: missing")
    else:
        lines.append(
            f"slot {slot['slot']}: {'active' if slot['active'] else 'inactive'}, confirmed {slot['confirmed_flush_lsn']}, "
            f"lag {slot['lag_bytes'] or 0:,} bytes, WAL retained {slot['retained_wal_bytes'] or 0:,} bytes (server at {slot['current_wal_lsn']})"
        )
        if slot.get("active_pid") is not None:
            started = slot.get("holder_started_at")
            lines.append(f"  held by pid {slot['active_pid']} (role {slot.get('holder_user')}, {slot.get('holder_application') or 'no application name'}, "
                         f"connected since {started:%Y-%m-%d %H:%M:%S})" if started else f"  held by pid {slot['active_pid']}")
    lines.append(f"publication {report['publication']}: {report['published_tables']} table(s)")
    return lines


def drop_cdc(source: SourceConfig, dialect: Any) -> list[str]:
    """Remove the connector, then the slot (once released), then the publication. Idempotent."""
    cdc = _cdc(source)
    done = []
    if remove_connector(source):
        done.append(f"deleted connector {cdc.connector_name}")
    done += dialect.cleanup_cdc(source)
    for line in done:
        log.info("%s", line)
    return done or ["nothing to drop"]
