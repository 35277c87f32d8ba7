"""Apply one table's events of a micro-batch: schema evolution, decode, truncate, MERGE (thin layer).

Every statement comes from :mod:`lib.cdc.plan`; this module only runs them in order and counts.
Re-running it for the same events (a replayed batch) changes nothing: each MERGE only takes events
newer than the row, tombstones only move forward, truncates only delete older rows.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lib.cdc import history as H
from lib.cdc import plan as P
from lib.cdc.delta_rs_merge import merge_history_arrow, merge_with_delta_rs
from lib.cdc.outcome import TableOutcome
from lib.cdc.plan import TableSpec
from lib.cdc.table_changes import new_columns
from lib.fallback import failure_text
from lib.spark_sql import ident

log = logging.getLogger(__name__)

DEAD_LETTER_COLUMNS = (*P.KAFKA_COLUMNS, "__error AS __reason")


COMPACT = 0  # the version id of compact messages (no schema block): P.schema_id_sql


@dataclass(frozen=True)
class Version:
    """One envelope schema version of the table's events in the batch."""

    schema_id: int  # hash of the envelope schema's text; COMPACT for messages without one
    fields: Mapping[str, Mapping[str, Any]]  # after-image field schemas
    last_offset: int


def visible_expr(spec: TableSpec) -> str:
    """Spark SQL boolean over a decoded event: its transaction is contained in the bulk copy."""
    return spec.event_format.visible_sql(spec.snapshot_position, spec.snapshot_txids)


def evolve_schema(spark: SparkSession, spec: TableSpec, latest_fields: Mapping[str, Mapping[str, Any]],
                  lake_types: Mapping[str, str] | None = None) -> tuple[TableSpec, tuple[str, ...]]:
    """Add the source columns the lake table does not have yet (before the MERGE that fills them).
    Their lake type is ``lake_types[name]`` (the bulk path's mapping of the source catalog) when given,
    else derived from the Debezium field (messages with a schema block)."""
    new = list(new_columns(spec, latest_fields, lake_types))
    if not new:
        return spec, ()
    stored = {f.name: f.dataType.simpleString() for f in spark.read.format("delta").load(spec.location).schema.fields}
    missing = [(name, kind) for name, kind in new if name not in stored]  # a retried batch may have added them
    if missing:
        spark.sql(P.add_columns_sql(spec, missing))
    new = [(name, stored.get(name, kind)) for name, kind in new]
    log.info("%s: new source column(s) added to the lake table: %s", spec.name, ", ".join(f"{n} {t}" for n, t in new))
    return dataclasses.replace(spec, columns=spec.columns + tuple(new)), tuple(n for n, _ in new)


def decode(spec: TableSpec, events: DataFrame, versions: Sequence[Version]) -> tuple[DataFrame, tuple[str, ...]]:
    """Every event of the table decoded to lake values (one frame for all schema versions)."""
    names = [name for name, _ in spec.columns]
    frames, toastable = [], set()
    for version in versions:
        vplan = P.version_plan(spec, version.fields, compact=version.schema_id == COMPACT)
        for column, why in vplan.lossy:
            log.debug("%s.%s: %s", spec.name, column, why)
        for _column, why in vplan.errors:
            log.warning("%s: events of schema version %s go to the dead-letter table: %s", spec.name, version.schema_id, why)
        toastable.update(vplan.toastable)
        parse = P.parse_exprs(names, compact=version.schema_id == COMPACT, source_ddl=spec.event_format.source_ddl)
        frames.append(events.where(F.col("__schema_id") == version.schema_id).selectExpr(*parse).selectExpr(*vplan.select))
    flags = sorted(toastable)
    aligned = []
    for frame in frames:  # same columns in every frame: a version without a TOAST-able column never flags it
        missing = [c for c in (P.toast_flag(n) for n in flags) if c not in frame.columns]
        aligned.append(frame.select("*", *[F.lit(False).alias(c) for c in missing]))
    return reduce(lambda a, b: a.unionByName(b), aligned), tuple(flags)


Tombstones = Callable[[], str]  # returns a quoted relation with the tombstone table's columns, up to date for the table


def apply_table(spark: SparkSession, spec: TableSpec, events: DataFrame, versions: Sequence[Version], tombstones: Tombstones | None,
                batch_id: int, lake_types: Mapping[str, str] | None = None) -> TableOutcome:
    """Apply the table's events; returns counts, the deleted keys, and the rows to dead-letter (still cached).

    ``spark`` must be the session of ``events`` (the MERGE reads a temporary view of it).
    ``tombstones`` is called only when the events must be checked against the table's tombstones
    (:func:`lib.cdc.plan.needs_tombstone_check`); None when there is no tombstone table."""
    started = time.monotonic()
    latest = max(versions, key=lambda v: v.last_offset)
    spec, added = evolve_schema(spark, spec, latest.fields, lake_types)
    decoded, toastable = decode(spec, events, versions)
    decoded = decoded.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return _apply_decoded(spark, spec, decoded, toastable, added, tombstones, batch_id, started)
    except Exception:
        decoded.unpersist()  # a retry decodes again
        raise


def _apply_decoded(spark: SparkSession, spec: TableSpec, decoded: DataFrame, toastable: tuple[str, ...], added: tuple[str, ...],
                   tombstones: Tombstones | None, batch_id: int, started: float) -> TableOutcome:
    visible = visible_expr(spec)
    keep = P.apply_filter(spec, visible)
    stats = decoded.agg(
        F.count(F.lit(1)).alias("events"),
        F.count(F.col("__error")).alias("dead"),
        F.sum(F.expr(f"CASE WHEN {keep} THEN 1 ELSE 0 END")).alias("applied"),
        F.sum(F.expr(f"CASE WHEN {keep} AND __op = 'd' THEN 1 ELSE 0 END")).alias("deletes"),
        F.max(F.expr(f"CASE WHEN {P.truncate_filter(visible)} THEN struct({P.COMMIT}, {P.CHANGE}, __source_ts_ms) END")).alias("truncate"),
        F.max(F.expr(f"CASE WHEN __error IS NULL THEN struct({P.COMMIT}, {P.CHANGE}) END")).alias("last"),
        F.min(F.expr(f"CASE WHEN {keep} THEN struct({P.COMMIT}, {P.CHANGE}) END")).alias("first"),
        F.max(F.expr(f"CASE WHEN {keep} AND __op = 'd' THEN struct({P.COMMIT}, {P.CHANGE}) END")).alias("last_delete"),
        F.max(F.expr("CASE WHEN __error IS NULL THEN __source_ts_ms END")).alias("last_ts"),
        F.expr(f"percentile_approx(CASE WHEN {keep} THEN __source_ts_ms END, array(0.05, 0.5))").alias("ts"),
        F.sum(F.expr(f"CASE WHEN {P.truncate_filter(visible)} THEN 1 ELSE 0 END")).alias("truncates"),
    ).collect()[0]
    decoded_at = time.monotonic()
    out = TableOutcome(spec, events=stats["events"], dead=stats["dead"], added_columns=added, cached=(decoded,),
                       last_ts_ms=stats["last_ts"], truncates=stats["truncates"] or 0)
    if stats["last"] is not None:
        out.last_position = (int(stats["last"][0]), int(stats["last"][1]))
    if stats["ts"]:
        out.ts_p05_ms, out.ts_p50_ms = int(stats["ts"][0]), int(stats["ts"][1])
    if out.dead:
        out.dead_rows = decoded.where("__error IS NOT NULL").selectExpr(*DEAD_LETTER_COLUMNS)
    if stats["truncate"] is not None:
        commit, change = int(stats["truncate"][0]), int(stats["truncate"][1])
        if spec.history.plain:
            deleted = spark.sql(P.truncate_sql(spec, commit, change)).collect()
        else:  # the rows stay: current versions are closed, or rows marked deleted (lib/cdc/history.py)
            # the changes before the truncate are applied first (scd2: versions; soft deletes: rows the
            # truncate then marks deleted, as if they had been applied in an apply of their own)
            before = _before_truncate(spark, spec, decoded, keep, toastable, tombstones, bool(stats["deletes"]), batch_id, commit, change)
            if before is not None:
                out.cached += (before["last"],)
                out.tombstone_rows += before["tombstones"]
                out.inserted += before["inserted"]
                out.updated += before["updated"]
                out.deleted += before["deleted"]
                out.applied += before["applied"]
            at = f"timestamp_millis({int(stats['truncate'][2])})" if stats["truncate"][2] is not None else "current_timestamp()"
            spark.sql(H.truncate_history_sql(spec, commit, change, at)).collect()
            deleted = []
        spark.sql(P.truncate_property_sql(spec, commit, change))
        spec = dataclasses.replace(spec, truncated_at=(commit, change))
        out.spec = spec
        out.deleted += int(deleted[0][0]) if deleted else 0
        log.info("%s: truncate at position %d/%d applied", spec.name, commit, change)
    good = decoded.where(P.apply_filter(spec, visible))  # re-evaluated: a truncate in this batch moved the floor
    out.applied = int(stats["applied"] or 0) if stats["truncate"] is None else out.applied + good.count()
    if out.applied:
        first = _position(stats["first"]) if stats["truncate"] is None else _position(good.agg(F.min(F.struct(P.COMMIT, P.CHANGE))).first()[0])
        checked = P.needs_tombstone_check(spec, first)
        if checked and tombstones is None:
            raise ValueError(f"{spec.name} has tombstones but no tombstone table was given (a bug: its events would not be checked)")
        if not checked and spec.has_tombstones:
            log.debug("%s: every event is after the latest tombstone %s: no tombstone check", spec.name, spec.tombstones_until)
        merged = _merge(spark, spec, good, toastable, tombstones if checked else None, bool(stats["deletes"]), batch_id)
        out.visible_at = time.time()
        out.cached += (merged["last"],)
        out.tombstone_rows += merged["tombstones"]
        out.inserted += merged["inserted"]
        out.updated += merged["updated"]
        out.deleted += merged["deleted"]
        if out.tombstone_rows:
            out.spec = spec = P.after_deletes(spec, _position(stats["last_delete"]))
    out.skipped = out.events - out.dead - out.applied - out.truncates
    log.debug("%s: %d events decoded in %.1fs, applied in %.1fs", spec.name, out.events, decoded_at - started, time.monotonic() - decoded_at)
    return out


def _before_truncate(spark: SparkSession, spec: TableSpec, decoded: DataFrame, keep: str, toastable: Sequence[str], tombstones: Tombstones | None,
                     deletes: bool, batch_id: int, commit: int, change: int) -> dict[str, Any] | None:
    """The range's changes before its truncate, applied before the truncate closes them (scd2: as
    versions) or marks them deleted (soft deletes); a replay finds them at or before their keys'
    current versions or rows, or before the recorded truncate."""
    before = decoded.where(keep).where(f"NOT {P.position_after(commit, change)}")
    applied = before.count()
    if not applied:
        return None
    first = _position(before.agg(F.min(F.struct(P.COMMIT, P.CHANGE))).first()[0])
    checked = P.needs_tombstone_check(spec, first) and tombstones is not None
    merged = _merge(spark, spec, before, toastable, tombstones if checked else None, deletes, batch_id)
    return {**merged, "applied": applied}


def _position(value: Any) -> tuple[int, int] | None:
    return None if value is None else (int(value[0]), int(value[1]))


def _merge(spark: SparkSession, spec: TableSpec, good: DataFrame, toastable: Sequence[str], tombstones: Tombstones | None, deletes: bool,
           batch_id: int) -> dict[str, Any]:
    live = good
    if tombstones is not None:  # a late or replayed event must not resurrect a deleted key
        tomb = spark.sql(P.tombstones_of_sql(spec, tombstones()))
        live = good.withColumn(P.TOMB_KEY, F.expr(P.key_json(spec))).join(tomb, on=P.TOMB_KEY, how="left") \
            .where(P.tombstone_filter()).drop(P.TOMB_KEY, P.TOMB_COMMIT, P.TOMB_CHANGE)
    if spec.history.scd2:
        return _history_merge(spark, spec, live, toastable, deletes, batch_id)
    last = live.selectExpr(*P.fill_exprs(spec, toastable)).where(P.LAST_EVENT).selectExpr(*P.last_event_exprs(spec, toastable))
    if spec.merge_by == "delta-rs" and spec.history.plain:  # one Spark job collects the rows (and the deleted keys) for delta-rs
        try:
            metrics, deleted = merge_with_delta_rs(spec, last, toastable, deletes)
            return {"tombstones": deleted, "last": last, **_counts(metrics)}
        except Exception as exc:  # noqa: BLE001 - delta-rs is an accelerator: Delta-Spark MERGEs instead (its commit is atomic:
            # nothing of the failed MERGE is in the table, and a MERGE that did commit is a replay to Spark's, which changes nothing)
            _delta_rs_failed(spec, exc)
    last = last.persist(StorageLevel.MEMORY_AND_DISK)  # unpersisted by the caller, after the tombstones are merged
    try:
        metrics = _spark_merge(spark, spec, last, toastable, batch_id)
    except Exception:
        last.unpersist()  # a retry computes it again
        raise
    deleted = tuple(last.where("__op = 'd'").selectExpr(*P.tombstone_rows_exprs(spec)).collect()) if deletes else ()
    return {"tombstones": deleted, "last": last, **_counts(metrics)}


_said: set[tuple[str, str]] = set()


def _delta_rs_failed(spec: TableSpec, exc: Exception) -> None:
    """Say once per table and kind of error that a delta-rs MERGE failed and Delta-Spark MERGEs instead."""
    key = (spec.name, type(exc).__name__)
    level = logging.DEBUG if key in _said else logging.WARNING
    _said.add(key)
    log.log(level, "%s: the delta-rs MERGE failed (%s), Delta-Spark MERGEs the rows instead", spec.name, failure_text(exc))


def _counts(metrics: Mapping[str, Any]) -> dict[str, int]:
    return {"inserted": int(metrics.get("num_inserted_rows") or 0), "updated": int(metrics.get("num_updated_rows") or 0),
            "deleted": int(metrics.get("num_deleted_rows") or 0)}


def _spark_merge(spark: SparkSession, spec: TableSpec, last: DataFrame, toastable: Sequence[str], batch_id: int) -> dict[str, Any]:
    view = f"cdc_{batch_id}_{uuid.uuid4().hex[:8]}"
    try:
        last.createOrReplaceTempView(view)
        sql = H.soft_merge_sql(spec, view, toastable) if spec.history.soft_deletes else P.merge_sql(spec, view, toastable, _key_filter(spec, last))
        metrics = spark.sql(sql).collect()[0].asDict()
    finally:
        spark.catalog.dropTempView(view)
    if spec.history.soft_deletes:  # a soft delete is an update of the row: counted as the delete it applies
        deleted = last.where("__op = 'd'").count()
        metrics = {**metrics, "num_deleted_rows": deleted, "num_updated_rows": max(0, int(metrics.get("num_updated_rows") or 0) - deleted)}
    return metrics


def _key_filter(spec: TableSpec, last: DataFrame) -> str | None:
    """The MERGE source's first-key values for its ON condition (lib.cdc.plan.key_filter: Spark then joins
    only the target rows holding them); one small job over ``last``, which it also caches for the MERGE."""
    if not spec.key_columns:
        return None
    rows = last.select(F.col(ident(spec.key_columns[0]))).distinct().limit(P.KEY_FILTER_MAX + 1).collect()
    return P.key_filter(spec, [r[0] for r in rows])


def _history_versions(spark: SparkSession, spec: TableSpec, live: DataFrame, toastable: Sequence[str]) -> DataFrame:
    """The MERGE rows of an scd2 apply (lib/cdc/history.py), built on the lake's current versions as they are now."""
    keys = list(spec.key_columns)
    touched = F.broadcast(live.select(*keys).distinct())
    current = spark.read.format("delta").load(spec.location).where(H.CURRENT_ROW).join(touched, on=keys, how="left_semi") \
        .selectExpr(*H.current_rows_exprs(spec))
    return live.join(current, on=keys, how="left").where(H.new_events_filter()) \
        .selectExpr(*H.resolve_exprs(spec, toastable)).selectExpr(*H.opens_exprs(spec)).selectExpr(*H.group_exprs(spec)) \
        .selectExpr(*H.group_start_exprs(spec)).where(H.LAST_OF_GROUP).selectExpr(*H.chain_exprs(spec)) \
        .selectExpr(*H.merge_source_exprs())


def _history_merge(spark: SparkSession, spec: TableSpec, live: DataFrame, toastable: Sequence[str], deletes: bool,
                   batch_id: int) -> dict[str, Any]:
    """scd2: every event of the apply becomes (part of) a version, one MERGE (lib/cdc/history.py): by
    delta-rs where it MERGEs the table (the rows collected as Arrow), else by Delta-Spark."""
    if spec.merge_by == "delta-rs":
        rows = _history_versions(spark, spec, live, toastable)
        try:
            data = rows.selectExpr(*H.merge_rows_exprs(spec), *([f"{P.key_json(spec)} AS {P.TOMB_KEY}"] if deletes else [])).toArrow()
            metrics = merge_history_arrow(spec.location, data, H.history_merge_clauses(spec))
            deleted = _history_tombstones(spec, data) if deletes else ()
            return {"tombstones": deleted, "last": rows, "inserted": metrics["num_inserted_rows"], "updated": metrics["num_updated_rows"],
                    "deleted": len(deleted)}
        except Exception as exc:  # noqa: BLE001 - Delta-Spark MERGEs instead, on versions built again from the table as it is
            # now (a delta-rs MERGE that did commit leaves nothing to add: its events are at or before their keys' versions)
            _delta_rs_failed(spec, exc)
    versions = _history_versions(spark, spec, live, toastable).persist(StorageLevel.MEMORY_AND_DISK)  # unpersisted by the caller
    view = f"cdc_{batch_id}_{uuid.uuid4().hex[:8]}"
    try:
        versions.createOrReplaceTempView(view)
        metrics = spark.sql(H.history_merge_sql(spec, view)).collect()[0].asDict()
    except Exception:
        versions.unpersist()
        raise
    finally:
        spark.catalog.dropTempView(view)
    dead = versions.where("__op = 'd' AND __role = 'insert'")
    deleted = tuple(dead.selectExpr(*P.tombstone_rows_exprs(spec)).collect()) if deletes else ()
    return {"tombstones": deleted, "last": versions, "inserted": int(metrics.get("num_inserted_rows") or 0),
            "updated": int(metrics.get("num_updated_rows") or 0), "deleted": len(deleted)}


def _history_tombstones(spec: TableSpec, data: Any) -> tuple[tuple[Any, ...], ...]:
    """(schema, table, key, commit, change) of the deleted versions the apply inserted (pure, over the Arrow rows)."""
    cols = [data.column(c).to_pylist() for c in ("__op", "__role", P.TOMB_KEY, "__source_commit_pos", "__source_change_pos")]
    return tuple((spec.schema, spec.table, k, c, h) for op, role, k, c, h in zip(*cols, strict=True) if op == "d" and role == "insert")
