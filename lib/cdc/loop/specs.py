"""The lake tables the stream applies to: built from the status table and each Delta table (thin layer)."""

from __future__ import annotations

import logging
from typing import Any

from pyspark.sql import SparkSession

from lib.cdc import history as H
from lib.cdc import plan as P
from lib.cdc.plan import (
    TOMBSTONE_DDL,
    TRUNCATE_PROPERTY,
    TableSpec,
    delta_ref,
    parse_truncated_at,
    tombstone_expiry_sql,
    tombstones_until_sql,
)
from lib.config.model import HistoryMode
from lib.lake.delta_rs_storage import deletion_vectors_reason
from lib.lake.local_writer import PROTOCOL_UNREADABLE, delta_rs_reason, writable_reason
from lib.lake.paths import tombstone_path
from lib.lake.storage import ensure_delta_table, turn_off_deletion_vectors
from lib.status.record import StatusEvent

log = logging.getLogger(__name__)
DELETION_VECTORS = "delta.enableDeletionVectors"


def ready_for_cdc(event: StatusEvent) -> bool:
    """The bulk copy of the table completed (or the stream already applies to it), and the source still has it."""
    if event.state == "dropped":  # dropped at the source (lib.cdc.new_tables): nothing to apply
        return False
    return event.phase == "cdc" or (event.phase == "bulk" and event.state == "completed")


def load_spec(spark: SparkSession, event: StatusEvent, dialect: Any, deletion_vectors: bool | None = False, merge_writer: str = "spark",
              max_table_mb: int = 256, history: HistoryMode | None = None) -> TableSpec:
    """The table's spec: lake columns and types from its Delta schema, keys and snapshot from its status.

    Who MERGEs into it: delta-rs when ``merge_writer`` asks for it, delta-rs can write the table and it
    holds at most ``max_table_mb`` (lib/cdc/delta_rs_merge.py), else Spark. ``deletion_vectors``: True turns them on for the table
    (Spark's MERGEs then rewrite only the changed rows; delta-rs cannot write such a table), False leaves
    the table as it is, None (auto) turns them on where Spark MERGEs. ``history``: the table's history
    mode (scd2 or soft deletes: its ``__`` columns are added and filled first)."""
    history = history or HistoryMode()
    if not history.plain:
        prepare_history(spark, event, history)
    # Delta's DataFrame reader and DESCRIBE DETAIL: the same on classic Spark and Spark Connect (the DeltaTable
    # Python API needs Delta's Connect plugin on a Connect server).
    schema = spark.read.format("delta").load(event.location).schema
    columns = tuple((f.name, f.dataType.simpleString()) for f in schema.fields if not f.name.startswith("__"))
    detail = spark.sql(f"DESCRIBE DETAIL {delta_ref(event.location)}").select("properties", "sizeInBytes").collect()[0]
    properties = detail["properties"] or {}
    why_not = merge_reason(spark, event.location, merge_writer) or size_reason(detail["sizeInBytes"], max_table_mb)
    if deletion_vectors is not False and (unreadable := deletion_vectors_reason(event.location)) is not None:  # delta-rs could not read them
        if turn_off_deletion_vectors(spark, event.location, properties):
            log.info("%s.%s: Delta deletion vectors turned off and purged: %s", event.schema, event.table, unreadable)
        else:
            log.info("%s.%s: no Delta deletion vectors: %s", event.schema, event.table, unreadable)
    elif (deletion_vectors or (deletion_vectors is None and why_not is not None)) and properties.get(DELETION_VECTORS) != "true":
        spark.sql(f"ALTER TABLE {delta_ref(event.location)} SET TBLPROPERTIES ('{DELETION_VECTORS}' = 'true')")
        log.info("%s.%s: Delta deletion vectors enabled", event.schema, event.table)
        why_not = why_not or "deletion vectors are on (stream.deletion_vectors)"
    if why_not and merge_writer == "delta-rs":
        log.log(logging.WARNING if why_not.startswith(PROTOCOL_UNREADABLE) else logging.INFO, "%s.%s: MERGEd by Spark: %s",
                event.schema, event.table, why_not)
    if history.scd2:
        log.info("%s.%s: history: scd2 (every change a version); MERGEd by %s", event.schema,
                 event.table, "Spark" if why_not else "delta-rs")
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
        merge_by="spark" if why_not else "delta-rs",
        spark_merge_reason=why_not or None,
        history=history,
    )


HISTORY_PROPERTY = "lakehouse.cdc.history"  # the history mode whose first versions the table's rows were given


def prepare_history(spark: SparkSession, event: StatusEvent, history: HistoryMode) -> None:
    """Add the ``__`` columns the table's history mode needs and give its rows their first version
    (valid from the bulk snapshot; current; not deleted). A crash in between is finished at the next
    start: only rows without the columns' values are filled, then the mode is recorded."""
    location = event.location
    spec = TableSpec(event.source, event.schema, event.table, location, tuple(event.primary_key), (), history=history)
    properties = spark.sql(f"DESCRIBE DETAIL {delta_ref(location)}").select("properties").collect()[0]["properties"] or {}
    mode = "scd2" if history.scd2 else "soft"
    if properties.get(HISTORY_PROPERTY) == mode:
        return
    stored = {f.name for f in spark.read.format("delta").load(location).schema.fields}
    wanted = H.history_columns_ddl(spec)
    missing = [(n, t) for n, t in wanted if n not in stored]
    if missing:
        spark.sql(P.add_columns_sql(spec, missing))
    snapshot = f"timestamp_micros({int(event.started_at.timestamp() * 1_000_000)})" if event.started_at else "`__ingested_at`"
    spark.sql(H.init_history_sql(spec, [n for n, _ in wanted], snapshot))
    spark.sql(f"ALTER TABLE {delta_ref(location)} SET TBLPROPERTIES ('{HISTORY_PROPERTY}' = '{mode}')")
    log.info("%s.%s: %s: rows given their first version (%s)", event.schema, event.table,
             "history: scd2" if history.scd2 else "deletes: soft", ", ".join(n for n, _ in wanted))


def merge_reason(spark: SparkSession, location: str, merge_writer: str) -> str | None:
    """Why the table at ``location`` is MERGEd by Spark; None when delta-rs MERGEs it."""
    if merge_writer != "delta-rs":
        return "stream.merge_writer is spark"
    return delta_rs_reason(spark, location) or writable_reason(location)  # a protocol delta-rs cannot read: Spark MERGEs


def size_reason(size_bytes: int | None, max_table_mb: int) -> str | None:
    """Why a table of ``size_bytes`` is too large for delta-rs' MERGE (pure): without deletion vectors it
    rewrites every file holding a changed row, so its cost grows with the table, while Delta-Spark's
    with deletion vectors grows with the changed rows only."""
    if size_bytes is not None and size_bytes > max_table_mb * 1024 * 1024:
        return f"it holds {size_bytes / 1024 / 1024:,.0f} MiB, more than stream.merge_writer_max_table_mb ({max_table_mb})"
    return None


def ensure_tombstones(spark: SparkSession, lake_root: str, source: str, retention_hours: float) -> tuple[str, dict[tuple[str, str], tuple[int, int]]]:
    """Create the source's tombstone table if needed, drop entries older than the retention; returns
    its path and, per table that has entries, the latest delete position among them."""
    path = tombstone_path(lake_root, source)
    if not ensure_delta_table(spark, path, TOMBSTONE_DDL):
        spark.sql(tombstone_expiry_sql(path, retention_hours))
    return path, {(r["schema"], r["table"]): (int(r["until"]["c"]), int(r["until"]["h"])) for r in spark.sql(tombstones_until_sql(path)).collect()}
