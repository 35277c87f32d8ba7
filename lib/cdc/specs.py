"""The lake tables the stream applies to: built from the status table and each Delta table (thin layer)."""

from __future__ import annotations

import logging
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from lib.bulk.writer import needs_column_mapping
from lib.cdc.plan import TRUNCATE_PROPERTY, TableSpec, parse_truncated_at, tombstone_ddl, tombstone_expiry_sql
from lib.lake.paths import tombstone_path
from lib.lake.storage import is_delta_table
from lib.status.record import StatusEvent

log = logging.getLogger(__name__)


def ready_for_cdc(event: StatusEvent) -> bool:
    """The bulk copy of the table completed (or the stream already applies to it)."""
    return event.phase == "cdc" or (event.phase == "bulk" and event.state == "completed")


def load_spec(spark: SparkSession, event: StatusEvent, dialect: Any) -> TableSpec:
    """The table's spec: lake columns and types from its Delta schema, keys and snapshot from its status."""
    table = DeltaTable.forPath(spark, event.location)
    columns = tuple((f.name, f.dataType.simpleString()) for f in table.toDF().schema.fields if not f.name.startswith("__"))
    properties = table.detail().select("properties").collect()[0][0] or {}
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
    )


def ensure_tombstones(spark: SparkSession, lake_root: str, spec: TableSpec, retention_hours: float) -> tuple[str, bool]:
    """Create the table's tombstone side table if needed, drop entries older than the retention;
    returns its path and whether it holds any entry."""
    path = tombstone_path(lake_root, spec.source, spec.schema, spec.table)
    if not is_delta_table(spark, path):
        writer = spark.createDataFrame([], tombstone_ddl(spec)).write.format("delta").mode("append")
        if needs_column_mapping(list(spec.key_columns)):
            writer = writer.option("delta.columnMapping.mode", "name")
        writer.save(path)
        return path, False
    spark.sql(tombstone_expiry_sql(path, retention_hours))
    return path, bool(spark.read.format("delta").load(path).limit(1).count())
