"""Connector settings shared by every dialect (pure): converters, precision, table lists, secrets."""

from __future__ import annotations

import re
from collections.abc import Sequence

from lib.config.envsubst import CONNECT_REFERENCE_EXPECTED, is_connect_reference
from lib.config.model import CdcConfig, SourceConfig
from lib.dialects.base import Table
from lib.errors import ConfigError
from lib.kafka.settings import schema_history_properties


# Compact messages (the default): JSON values without Kafka Connect's schema block. The stream knows
# every column's encoding from the source catalog (the dialect's ``debezium_field``), so the block,
# ~2.5 KB repeated in every message and most of the cost of reading it, is not needed.
# ``json_with_schema`` writes the block, as existing Debezium deployments do; the stream reads both,
# recognizing each message by its shape (docs/cdc-stream.md, "Message formats").
def json_converters(message_format: str) -> dict[str, str]:
    schemas = "true" if message_format == "json_with_schema" else "false"
    return {
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": schemas,
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": schemas,
    }


# Full precision: decimals and intervals as exact strings, times and timestamps in microseconds,
# and the source column type (length, scale, name) carried in every field's schema parameters.
PRECISION = {
    "decimal.handling.mode": "string",
    "time.precision.mode": "adaptive_time_microseconds",
    "interval.handling.mode": "string",
    "binary.handling.mode": "bytes",
    "column.propagate.source.type": ".*",
    "include.unknown.datatypes": "true",
}


# Recovery without a person (docs/operations.md): a retriable failure (the database gone for a while)
# restarts the connector's streaming inside its task after 10 s, forever (Debezium's errors.max.retries,
# retriable.restart.connector.wait.ms), instead of failing the task and waiting for someone to restart
# it; errors.retry.delay.max.ms bounds Kafka Connect's own retries of a failing conversion.
RECOVERY = {
    "errors.max.retries": "-1",
    "retriable.restart.connector.wait.ms": "10000",
    "errors.retry.delay.max.ms": "60000",
}

HEARTBEAT_TOPIC_PREFIX = "__debezium-heartbeat"


def heartbeat_settings(interval_ms: int) -> dict[str, str]:
    """Heartbeats: the connector writes one record to ``heartbeat_topic(prefix)`` every interval while it
    streams (also on a quiet database), so its offsets and the slot advance, and the CDC stream can tell
    a connector that streams from one that has stopped (lib/cdc/health/freshness.py)."""
    return {"heartbeat.interval.ms": str(interval_ms), "topic.heartbeat.prefix": HEARTBEAT_TOPIC_PREFIX}


def heartbeat_topic(topic_prefix: str) -> str:
    """The Kafka topic the connector's heartbeats go to (Debezium: ``<topic.heartbeat.prefix>.<topic.prefix>``)."""
    return f"{HEARTBEAT_TOPIC_PREFIX}.{topic_prefix}"


def include_list(names: Sequence[tuple[str, str]]) -> str:
    """Debezium's ``table.include.list``: comma-separated, anchored regexes of ``schema.table``."""
    for schema, table in names:
        if "," in schema or "," in table:
            raise ConfigError("sources", f"{schema}.{table}: table names with commas cannot be listed in a Debezium include list")
    return ",".join(f"{re.escape(schema)}\\.{re.escape(table)}" for schema, table in sorted(names))


def password_reference(source: SourceConfig) -> str:
    """How the connector reads the password, never the password itself."""
    cdc = source.cdc
    assert cdc is not None
    if cdc.password_reference:
        if not is_connect_reference(cdc.password_reference):  # the loader refuses it first; this guards direct callers
            raise ConfigError(f"sources.{source.name}.cdc.password_reference", CONNECT_REFERENCE_EXPECTED)
        return cdc.password_reference
    if source.connection.password_env:
        return "${env:" + source.connection.password_env + "}"
    raise ConfigError(
        f"sources.{source.name}.cdc.password_reference",
        "is required when connection.password is not an ${VAR} reference: the connector config must not contain the password "
        "(e.g. password_reference: '${file:/secrets/db.properties:password}')",
    )


def streamable(tables: Sequence[Table], cdc: CdcConfig) -> tuple[list[Table], dict[str, str]]:
    """(tables the stream covers, {qualified name: why not} for the others).

    A table needs a primary key, or ``cdc.replica_identity_full`` so the source logs whole old rows
    (PostgreSQL rejects UPDATE/DELETE on a published table without a replica identity, so we never
    publish a keyless table without it).
    """
    covered, refused = [], {}
    for table in tables:
        if '"' in table.schema or '"' in table.name:
            # Debezium's TableIdParser stops the connector task on such names ("Unexpected input")
            refused[table.qualified_name] = "CDC not enabled: Debezium cannot stream tables whose schema or name contains a double quote"
        elif table.primary_key or cdc.replica_identity_full:
            covered.append(table)
        else:
            refused[table.qualified_name] = (
                "CDC not enabled: the table has no primary key (set cdc.replica_identity_full: true to stream it "
                "with REPLICA IDENTITY FULL, and tables.<name>.key_columns for the key); the bulk copy is complete"
            )
    return covered, refused


def base_settings(source: SourceConfig, connector_class: str, tables: Sequence[tuple[str, str]]) -> dict[str, str]:
    """What every connector of this pipeline sets: identity, credentials by reference, the tables,
    truncates and tombstones delivered, heartbeats, endless retries, exact values, JSON (compact or with schemas)."""
    cdc = source.cdc
    if cdc is None:
        raise ValueError(f"source {source.name} has no cdc section")
    return {
        "connector.class": connector_class,
        "tasks.max": "1",
        "database.user": source.connection.user,
        "database.password": password_reference(source),
        "topic.prefix": cdc.topic_prefix,
        "table.include.list": include_list(tables),
        "skipped.operations": "none",  # deliver truncates too (op "t")
        "tombstones.on.delete": "true",
        "provide.transaction.metadata": "false",
        **RECOVERY,
        **heartbeat_settings(cdc.heartbeat_interval_ms),
        **({"heartbeat.action.query": cdc.heartbeat_action_query} if cdc.heartbeat_action_query else {}),
        **PRECISION,
        **json_converters(cdc.message_format),
    }


def schema_history(source: SourceConfig) -> dict[str, str]:
    """Oracle and SQL Server connectors keep the captured tables' DDL in a Kafka topic of their own;
    all tables' DDL, so tables added to the include list later are known."""
    assert source.cdc is not None
    return {
        "schema.history.internal.kafka.topic": f"schema-history.{source.cdc.topic_prefix}",
        "schema.history.internal.store.only.captured.tables.ddl": "false",
        **schema_history_properties(source.cdc.kafka),
    }


def message_key_columns(source: SourceConfig, tables: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Debezium's ``message.key.columns`` for tables whose key is configured (``tables.<t>.key_columns``)."""
    parts = [
        f"{schema}.{table}:{','.join(keys)}"
        for schema, table in sorted(tables)
        if (keys := source.override_for(schema, table).key_columns)
    ]
    return {"message.key.columns": ";".join(parts)} if parts else {}
