"""The lake tables the stream applies to: built from the status table and each Delta table (thin layer)."""

from __future__ import annotations

import logging
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lib.cdc.plan import (
    TOMBSTONE_DDL,
    TRUNCATE_PROPERTY,
    TableSpec,
    delta_ref,
    parse_truncated_at,
    tombstone_expiry_sql,
    tombstones_until_sql,
)
from lib.lake.paths import tombstone_path
from lib.lake.storage import ensure_delta_table
from lib.status.record import StatusEvent

log = logging.getLogger(__name__)
DELETION_VECTORS = "delta.enableDeletionVectors"


def ready_for_cdc(event: StatusEvent) -> bool:
    """The bulk copy of the table completed (or the stream already applies to it)."""
    return event.phase == "cdc" or (event.phase == "bulk" and event.state == "completed")


def load_spec(spark: SparkSession, event: StatusEvent, dialect: Any, deletion_vectors: bool = False) -> TableSpec:
    """The table's spec: lake columns and types from its Delta schema, keys and snapshot from its status.
    With ``deletion_vectors``, turn them on for the table (MERGEs then rewrite only the changed rows)."""
    table = DeltaTable.forPath(spark, event.location)
    columns = tuple((f.name, f.dataType.simpleString()) for f in table.toDF().schema.fields if not f.name.startswith("__"))
    properties = table.detail().select("properties").collect()[0][0] or {}
    if deletion_vectors and properties.get(DELETION_VECTORS) != "true":
        spark.sql(f"ALTER TABLE {delta_ref(event.location)} SET TBLPROPERTIES ('{DELETION_VECTORS}' = 'true')")
        log.info("%s.%s: Delta deletion vectors enabled", event.schema, event.table)
    position = dialect.position_number(event.snapshot_position) if event.snapshot_position else 0
    return TableSpec(
        source=event.source,
        schema=event.schema,
        table=event.table,
        location=event.location,
        key_columns=tuple(event.primary_key),
        columns=columns,
        snapshot_txids=getattr(event, "snapshot_txids", None),
        snapshot_position=position,
        truncated_at=parse_truncated_at(properties.get(TRUNCATE_PROPERTY)),
        event_format=dialect.cdc_events,
    )


def ensure_tombstones(spark: SparkSession, lake_root: str, source: str, retention_hours: float) -> tuple[str, dict[tuple[str, str], tuple[int, int]]]:
    """Create the source's tombstone table if needed, drop entries older than the retention; returns
    its path and, per table that has entries, the latest delete position among them."""
    path = tombstone_path(lake_root, source)
    if not ensure_delta_table(spark, path, TOMBSTONE_DDL):
        spark.sql(tombstone_expiry_sql(path, retention_hours))
    return path, {(r["schema"], r["table"]): (int(r["until"]["c"]), int(r["until"]["h"])) for r in spark.sql(tombstones_until_sql(path)).collect()}
