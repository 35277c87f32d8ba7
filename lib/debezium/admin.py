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


def cdc_status(source: SourceConfig, dialect: Any) -> dict[str, Any]:
    """Connector state (when cdc.connect_url is set), slot state and WAL lag, published tables."""
    cdc = _cdc(source)
    report: dict[str, Any] = {"source": source.name, "connector": cdc.connector_name, "slot_name": cdc.slot_name, "publication": cdc.publication_name}
    if cdc.connect_url:
        status = ConnectClient(cdc.connect_url).status(cdc.connector_name)
        report["connector_state"] = connector_state(status)
        report["tasks"] = [t.get("state") for t in (status or {}).get("tasks", [])]
        if report["connector_state"] == "FAILED":
            report["connector_error"] = failure_trace(status)
    else:
        report["connector_state"] = "unknown (no cdc.connect_url)"
    if dialect.name != "postgres":  # no slot nor publication: the connector's offsets are its position
        report["slot_name"] = report["publication"] = None
        if cdc.connect_url:
            report["offsets"] = ConnectClient(cdc.connect_url).offsets(cdc.connector_name)
        return report
    report["slot"] = dialect.slot_info(source.connection, cdc.slot_name)
    report["published_tables"] = len(dialect.published_tables(source.connection, cdc.publication_name))
    return report


def status_lines(report: dict[str, Any]) -> list[str]:
    """Human lines for ``cdc_connector.py status`` (pure)."""
    lines = [f"connector {report['connector']}: {report['connector_state']}" + (f" tasks={report['tasks']}" if report.get("tasks") else "")]
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
            f"lag {slot['lag_bytes']:,} bytes, WAL retained {slot['retained_wal_bytes']:,} bytes (server at {slot['current_wal_lsn']})"
        )
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
