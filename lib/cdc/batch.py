"""One micro-batch of the CDC stream: route messages to tables, apply tables in parallel, record.

Order of work per batch (each step's statement is built in :mod:`lib.cdc.plan`):
1. cache the batch's messages and summarize them per (topic, schema version): one small job;
2. route each topic to its lake table (from the events' ``source.schema/table``); messages of unknown
   tables, keyless tables, failed tables and unparseable messages become dead letters;
3. apply the tables in a thread pool (``stream.apply_threads``): one MERGE per table;
4. append the dead letters (one idempotent commit) and one status event per table (one commit);
5. log one line with counts, rate, lag and latency.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lib.cdc import dead_letter
from lib.cdc.batch_line import weighted_median
from lib.cdc.envelope import field_schemas
from lib.cdc.kafka_lag import EndOffsets, lag
from lib.cdc.plan import (
    KAFKA_COLUMNS,
    TableSpec,
    batch_tombstones_sql,
    body_sql,
    q,
    raw_message_sql,
    schema_id_sql,
    schema_text_sql,
    table_topic,
    tombstone_merge_sql,
)
from lib.cdc.table_apply import TableOutcome, Version, apply_table
from lib.retry import with_retries
from lib.status.record import StatusEvent
from lib.status.store import StatusStore

log = logging.getLogger(__name__)


@dataclass
class StreamState:
    """What the stream keeps between batches (driver memory; rebuilt from the lake at start)."""

    specs: dict[tuple[str, str], TableSpec]
    events: dict[tuple[str, str], StatusEvent]  # latest status event per table
    tombstones: str | None  # the source's tombstone table
    failed: dict[tuple[str, str], str] = field(default_factory=dict)  # table -> why it stopped
    schemas: dict[int, str] = field(default_factory=dict)  # envelope schema text per version id


@dataclass
class BatchContext:
    spark: SparkSession
    source: str
    topic_prefix: str
    state: StreamState
    status: StatusStore
    dead_letter_path: str
    end_offsets: EndOffsets
    stream_id: Callable[[], str]
    apply_threads: int
    max_attempts: int
    retry_backoff_seconds: float
    refresh: Callable[[], None]  # re-read the status table (a table finished its bulk load meanwhile)
    secrets: tuple[str, ...] = ()


def apply_batch(ctx: BatchContext, batch: DataFrame, batch_id: int) -> None:
    started = time.monotonic()
    spark = batch.sparkSession  # foreachBatch's own session: its temporary views are the MERGE's sources
    value = "CAST(value AS STRING)"
    messages = batch.selectExpr(  # cached without the schema blocks: a fraction of the messages' size
        "topic AS __topic", "partition AS __partition", "offset AS __offset", "CAST(key AS STRING) AS __key",
        f"{body_sql(value)} AS __raw", f"{schema_id_sql(value)} AS __schema_id").persist(StorageLevel.MEMORY_AND_DISK)
    cached: list[DataFrame] = [messages]
    try:
        counts = messages.groupBy("__topic", "__partition", "__schema_id").agg(
            F.count("__raw").alias("n"), F.max("__offset").alias("last_offset"), F.max_by("__raw", "__offset").alias("sample")).collect()
        processed: dict[tuple[str, int], int] = {}
        for r in counts:  # null values (the Kafka tombstones after deletes) count as processed, not as events
            tp = (r["__topic"], r["__partition"])
            processed[tp] = max(processed.get(tp, -1), r["last_offset"])
        groups = [r for r in counts if r["n"]]
        if not groups:
            log.info("cdc batch %d: no change events", batch_id)
            return
        summarized = time.monotonic()
        _learn_schemas(ctx, batch, {r["__schema_id"] for r in groups} - set(ctx.state.schemas) - {0})
        routes, dead_frames = _route(ctx, messages, groups)
        routed = time.monotonic()
        outcomes = _apply_tables(ctx, messages, routes, batch_id, dead_frames)
        applied = time.monotonic()
        cached += [df for o in outcomes for df in o.cached]
        dead_frames += [o.dead_rows for o in outcomes if o.dead_rows is not None]
        _record_tombstones(spark, ctx, [o.tombstones for o in outcomes if o.tombstones is not None], batch_id)
        dead = dead_letter.write(spark, ctx.dead_letter_path, ctx.source, dead_frames, ctx.stream_id(), batch_id,
                                 raw_message_sql({i: ctx.state.schemas[i] for i in {r["__schema_id"] for r in groups} if i in ctx.state.schemas}))
        table_lag = _lag(ctx, processed, routes)
        finished = time.time()
        _record(ctx, outcomes, table_lag, finished)
        log.debug("cdc batch %d phases: read+summarize %.1fs, schemas+route %.1fs, tables %.1fs, tombstones+dead letters+status %.1fs",
                  batch_id, summarized - started, routed - summarized, applied - routed, time.monotonic() - applied)
        _log(batch_id, outcomes, sum(r["n"] for r in groups), dead, time.monotonic() - started, sum(table_lag.values()), finished)
    finally:
        for df in cached:
            df.unpersist()


def _learn_schemas(ctx: BatchContext, batch: DataFrame, unknown: set[int]) -> None:
    """Read the schema block of each new version once (from the batch's messages: one more Kafka read,
    only when versions appear: the first batch, a schema change)."""
    if not unknown:
        return
    value = "CAST(value AS STRING)"
    rows = batch.selectExpr(f"{schema_id_sql(value)} AS id", f"{schema_text_sql(value)} AS text").where(F.col("id").isin(sorted(unknown))) \
        .groupBy("id").agg(F.first("text").alias("text")).collect()
    ctx.state.schemas.update({r["id"]: r["text"] for r in rows})


def _route(ctx: BatchContext, messages: DataFrame, groups: list[Any]) -> tuple[dict[tuple[str, str], list[tuple[str, Version]]], list[DataFrame]]:
    """{table: [(topic, version)]}, and the dead-letter frames of messages no table can take."""
    routes: dict[tuple[str, str], list[tuple[str, Version]]] = {}
    dead: list[DataFrame] = []
    refreshed = False
    merged: dict[tuple[str, int], Any] = {}
    for row in groups:  # one group per (topic, version): the counts came per partition
        key = (row["__topic"], row["__schema_id"])
        if key in merged:
            prior = merged[key]
            newest = row if row["last_offset"] > prior["last_offset"] else prior
            merged[key] = {**newest.asDict(), "n": prior["n"] + row["n"]}
        else:
            merged[key] = row.asDict()

    def reject(row: dict[str, Any], reason: str) -> None:
        log.warning("%d message(s) of topic %s go to the dead-letter table: %s", row["n"], row["__topic"], reason)
        dead.append(messages.where((F.col("__topic") == row["__topic"]) & (F.col("__schema_id") == row["__schema_id"]))
                    .select(*KAFKA_COLUMNS, F.lit(reason).alias("__reason")))

    for row in merged.values():
        try:
            source = json.loads(row["sample"])["payload"]["source"]
            table = (source["schema"], source["table"])
            fields = field_schemas(json.loads(ctx.state.schemas[row["__schema_id"]] + "}")["schema"], "after")
        except (ValueError, KeyError, TypeError):
            reject(row, "unparseable: not a Debezium change event with its schema (JsonConverter, schemas.enable=true)")
            continue
        if table not in ctx.state.specs and not refreshed:
            ctx.refresh()
            refreshed = True
        spec = ctx.state.specs.get(table)
        if spec is None:
            reject(row, f"unknown table {table[0]}.{table[1]}: no completed bulk load in the status table")
        elif row["__topic"] != table_topic(ctx.topic_prefix, *table):
            reject(row, f"topic {row['__topic']} is not the topic of {spec.name} ({table_topic(ctx.topic_prefix, *table)}): "
                        "another source's events, or a topic routing this stream does not support")
        elif not spec.key_columns:
            reject(row, f"table {spec.name} has no primary key: changes cannot be applied by key")
        elif table in ctx.state.failed:
            reject(row, f"table {spec.name} stopped applying changes after a failure: {ctx.state.failed[table]}")
        else:
            routes.setdefault(table, []).append((row["__topic"], Version(row["__schema_id"], fields, row["last_offset"])))
    return routes, dead


def _apply_tables(ctx: BatchContext, messages: DataFrame, routes: dict[tuple[str, str], list[tuple[str, Version]]],
                  batch_id: int, dead: list[DataFrame]) -> list[TableOutcome]:
    def one(table: tuple[str, str]) -> TableOutcome:
        spec = ctx.state.specs[table]
        topics = sorted({t for t, _ in routes[table]})
        events = messages.where(F.col("__topic").isin(topics))
        versions = [v for _, v in routes[table]]
        try:
            outcome = with_retries(f"{spec.name} batch {batch_id}",
                                   lambda: apply_table(messages.sparkSession, ctx.state.specs[table], events, versions,
                                                       q(tombstones[0]) if tombstones else None, batch_id),
                                   ctx.max_attempts, ctx.retry_backoff_seconds)
        except Exception as exc:  # noqa: BLE001 - one failing table must not stop the others
            from lib.logs import redact

            reason = redact(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500], ctx.secrets)
            log.error("%s: FAILED applying batch %d, its events go to the dead-letter table and the table stops: %s", spec.name, batch_id, reason)
            ctx.state.failed[table] = reason
            rows = events.select(*KAFKA_COLUMNS, F.lit(f"apply failed: {reason}").alias("__reason"))
            return TableOutcome(spec, error=reason, dead_rows=rows)
        ctx.state.specs[table] = outcome.spec  # new columns, truncate position
        return outcome

    tables = sorted(routes)
    tombstones = _batch_tombstones(messages.sparkSession, ctx, tables, batch_id)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(ctx.apply_threads, len(tables)))) as pool:
            return list(pool.map(one, tables))
    finally:
        if tombstones is not None:
            view, frame = tombstones
            messages.sparkSession.catalog.dropTempView(view)
            frame.unpersist()


def _batch_tombstones(spark: SparkSession, ctx: BatchContext, tables: list[tuple[str, str]], batch_id: int) -> tuple[str, DataFrame] | None:
    """The tombstones of the batch's tables that have any, read and cached once for all of them (one
    Delta scan per batch, not one per table), as a temporary view; None when no table has any."""
    with_tombstones = [t for t in tables if ctx.state.specs[t].has_tombstones]
    if not with_tombstones or ctx.state.tombstones is None:
        return None
    frame = spark.sql(batch_tombstones_sql(ctx.state.tombstones, with_tombstones)).persist(StorageLevel.MEMORY_AND_DISK)
    view = f"cdc_{batch_id}_tombstones_read_{uuid.uuid4().hex[:8]}"
    frame.createOrReplaceTempView(view)
    return view, frame


def _record_tombstones(spark: SparkSession, ctx: BatchContext, frames: list[DataFrame], batch_id: int) -> None:
    """One MERGE of every deleted key of the batch into the source's tombstone table (after the tables'
    MERGEs: a crash in between replays the batch, and the tables' MERGEs are no-ops then)."""
    if not frames or ctx.state.tombstones is None:
        return
    view = f"cdc_{batch_id}_tombstones_{uuid.uuid4().hex[:8]}"
    # Materialized once, with its lineage cut: the MERGE's jobs would otherwise re-plan the twenty
    # tables' decode plans and schedule their stages (seconds per job).
    deleted = reduce(DataFrame.unionByName, frames).coalesce(spark.sparkContext.defaultParallelism).localCheckpoint()
    deleted.createOrReplaceTempView(view)
    try:
        spark.sql(tombstone_merge_sql(ctx.state.tombstones, view))
    finally:
        spark.catalog.dropTempView(view)


def _lag(ctx: BatchContext, processed: dict[tuple[str, int], int], routes: dict[tuple[str, str], list[tuple[str, Version]]]) -> dict[tuple[str, str], int]:
    behind = lag(ctx.end_offsets.fetch(sorted(processed)), processed)
    worst = sorted(((n, tp) for tp, n in behind.items() if n > 0), reverse=True)[:5]
    if worst:
        log.info("lag by topic-partition: %s", ", ".join(f"{topic}[{partition}]={n}" for n, (topic, partition) in worst))
    return {table: sum(n for (topic, _), n in behind.items() if topic in {t for t, _ in versions}) for table, versions in routes.items()}


def _record(ctx: BatchContext, outcomes: list[TableOutcome], table_lag: dict[tuple[str, str], int], now: float) -> None:
    from datetime import UTC, datetime

    events = []
    for o in outcomes:
        table = (o.spec.schema, o.spec.table)
        prior = ctx.state.events[table]
        if o.error is not None:
            event = prior.next(phase="cdc", state="failed", last_error=o.error)
        else:
            changes: dict[str, Any] = {
                "phase": "cdc", "state": "running", "last_error": None,
                "cdc_inserted": (getattr(prior, "cdc_inserted", None) or 0) + o.inserted if prior.phase == "cdc" else o.inserted,
                "cdc_updated": (getattr(prior, "cdc_updated", None) or 0) + o.updated if prior.phase == "cdc" else o.updated,
                "cdc_deleted": (getattr(prior, "cdc_deleted", None) or 0) + o.deleted if prior.phase == "cdc" else o.deleted,
                "cdc_lag": table_lag.get(table, 0),
            }
            if o.last_position:
                changes["cdc_position"] = f"{o.last_position[0]}/{o.last_position[1]}"
            if o.last_ts_ms is not None:
                changes["cdc_event_time"] = datetime.fromtimestamp(o.last_ts_ms / 1000, UTC)
            if o.ts_p50_ms is not None:
                changes["cdc_latency_ms"] = int(_visible_ms(o, now) - o.ts_p50_ms)
            event = prior.next(**changes)
        ctx.state.events[table] = event
        events.append(event)
    if events:
        ctx.status.append(*events)


def _log(batch_id: int, outcomes: list[TableOutcome], messages: int, dead: int, seconds: float, total_lag: int, now: float) -> None:
    ok = [o for o in outcomes if o.error is None]
    weighted = sorted((_visible_ms(o, now) - o.ts_p50_ms, o.applied) for o in ok if o.ts_p50_ms is not None)
    p50 = _weighted_median(weighted) / 1000 if weighted else 0.0
    p95 = max((_visible_ms(o, now) - o.ts_p05_ms for o in ok if o.ts_p05_ms is not None), default=0.0) / 1000
    log.info("cdc batch %d: %d events, %d tables in %.1fs (%.0f events/s); inserted %d updated %d deleted %d skipped %d dead-lettered %d; "
             "lag %d; latency p50 %.1fs p95 %.1fs", batch_id, messages, len(outcomes), seconds, messages / seconds if seconds > 0 else 0.0,
             sum(o.inserted for o in ok), sum(o.updated for o in ok), sum(o.deleted for o in ok), sum(o.skipped for o in ok), dead,
             total_lag, p50, p95)


def _visible_ms(outcome: TableOutcome, batch_end: float) -> float:
    """When the table's events became visible in the lake (its MERGE's commit), in epoch ms."""
    return (outcome.visible_at if outcome.visible_at is not None else batch_end) * 1000


def _weighted_median(values: list[tuple[float, int]]) -> float:
    """Median of per-table medians weighted by their event counts (an approximation of the batch's);
    the plain median when no table applied events."""
    median = weighted_median(values)
    return statistics.median(v for v, _ in values) if median is None else median
