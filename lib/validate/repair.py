"""``jobs/validate.py --repair``: re-copy what differs, one Delta commit per table, then validate again
(thin layer: the plan and every statement come from :mod:`lib.validate.repair_plan`).

Per table that differs: a consistent source snapshot (the dialect's, as the bulk load takes it; for
PostgreSQL an exported snapshot, no replication slot), the rows of the differing keys (when the
validation named them all), of the differing key buckets, or of the whole table read from it over Spark
JDBC with the loader's column conversions, then one MERGE (or a ``replaceWhere`` bucket replacement)
that commits them at the snapshot's position. The MERGE is delta-rs' where the stream's would be
(``stream.merge_writer``: a lake delta-rs writes, a table without deletion vectors or column mapping,
within ``stream.merge_writer_max_table_mb``), Spark's otherwise or when delta-rs fails. A history or
soft-delete table is MERGEd by key in its current rows, keeping its versions and deleted rows
(:mod:`lib.validate.repair_history`). A failure or a refusal fails that table only; a kill at any point
leaves the table as it was or fully repaired, and running the command again repairs what still differs.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from lib.bulk.reader import POSITION_TYPE, spark_col
from lib.cdc.delta_rs_merge import merge_arrow
from lib.cdc.loop.specs import merge_reason, size_reason
from lib.cdc.plan import TOMB_CHANGE, TOMB_COMMIT, TOMB_KEY, TableSpec, key_json, tombstones_of_sql
from lib.dialects.base import Snapshot, Table
from lib.fallback import failure_text
from lib.lake.paths import normalize_root, tombstone_path
from lib.lake.storage import is_delta_table
from lib.logs import redact
from lib.retry import short_error, with_retries
from lib.sessions import MERGE_SETTINGS, tune
from lib.validate import repair_history as rh
from lib.validate import repair_plan as rp
from lib.validate.checksum_sql import RowSpec, spark_row_exprs
from lib.validate.model import Check, TableReport
from lib.validate.render import bucket_digits

if TYPE_CHECKING:
    from lib.validate.runner import RunContext, TableTask

log = logging.getLogger("validate.repair")


@dataclass(frozen=True)
class RepairOutcome:
    name: str
    ok: bool
    message: str
    seconds: float = 0.0

    def check(self) -> Check:
        return Check("repair", "repair", "pass" if self.ok else "fail", self.message)


@contextmanager
def repair_snapshot(ctx: RunContext, table: Table) -> Iterator[Snapshot]:
    """The source snapshot a repair reads in: the dialect's own. PostgreSQL exports one from a
    REPEATABLE READ transaction (position ``pg_current_wal_lsn()``), creating no slot and leaving the
    publication alone; the other dialects open theirs as the bulk load does."""
    if ctx.dialect.name == "postgres":
        with ctx.dialect.open_snapshot(ctx.source.connection, None, [table]) as snap:
            yield snap
    else:
        with ctx.dialect.open_source_snapshot(ctx.source, [table]) as snap:
            yield snap


def source_queries(ctx: RunContext, task: TableTask, spec: RowSpec, plan: rp.RepairPlan, snap: Snapshot) -> list[str]:
    """The source SELECTs of the rows to re-copy: one per batch of keys, or one of the buckets or the table."""
    pg = ctx.dialect.name == "postgres"
    if plan.by_key:
        if pg:
            return [rp.pg_key_select_sql(task.table, spec, batch) for batch in rp.key_batches(plan.keys, rp.PG_LOOKUP_BATCH)]
        inner = ctx.dialect.select_sql(task.table, task.reads, None, snap)
        return [rp.source_key_select_sql(ctx.dialect.name, inner, spec, batch) for batch in rp.key_batches(plan.keys, rp.SOURCE_LOOKUP_BATCH)]
    if pg:
        return [rp.pg_repair_select_sql(task.table, spec, plan)]
    inner = ctx.dialect.select_sql(task.table, task.reads, None, snap)
    return [rp.source_repair_select_sql(ctx.dialect.name, inner, spec, plan)]


def read_snapshot_rows(ctx: RunContext, task: TableTask, query: str, snap: Snapshot) -> DataFrame:
    """The query's rows read in ``snap`` over Spark JDBC, typed as the lake, with the added columns at
    the snapshot's position (``__op = 'r'``, as bulk rows)."""
    conn = ctx.source.connection
    reader = (
        ctx.spark.read.format("jdbc")
        .option("url", ctx.dialect.jdbc_url(conn))
        .option("dbtable", ctx.dialect.dbtable(query))
        .option("sessionInitStatement", snap.session_init_sql)
        .option("preferTimestampNTZ", "true")
    )
    for key, value in ctx.dialect.jdbc_properties(conn, ctx.config.bulk.fetch_size).items():
        reader = reader.option(key, value)
    df = reader.load()
    position = Decimal(ctx.dialect.position_number(snap.position))
    return df.select(
        *[spark_col(r.name).cast(r.spark_type).alias(r.name) for r in task.reads],
        F.lit(position).cast(POSITION_TYPE).alias("__source_commit_pos"),
        F.lit(Decimal(0)).cast(POSITION_TYPE).alias("__source_change_pos"),
        F.lit("r").alias("__op"),
        F.current_timestamp().alias("__ingested_at"),
    )


def _lake(ctx: RunContext, task: TableTask) -> DataFrame:
    return ctx.spark.read.format("delta").load(task.location)


def _cols(names: Sequence[str]) -> list[Column]:
    return [spark_col(c) for c in names]


def _not_deleted_since(ctx: RunContext, task: TableTask, rows: DataFrame, position: int) -> DataFrame:
    """``rows`` without the keys the stream deleted after the snapshot (their tombstone is newer):
    inserting them again would bring back a row whose delete is already applied."""
    path = tombstone_path(normalize_root(ctx.config.lake.root), ctx.source.name)
    if not is_delta_table(ctx.spark, path):
        return rows
    spec = TableSpec(ctx.source.name, task.table.schema, task.table.name, task.location, tuple(task.table.primary_key), ())
    view = f"__repair_tomb_{uuid.uuid4().hex[:10]}"
    ctx.spark.read.format("delta").load(path).createOrReplaceTempView(view)
    try:
        tombs = ctx.spark.sql(tombstones_of_sql(spec, rp.q(view)))
        newer = tombs.where(rp.newer_than_snapshot("", position, TOMB_COMMIT, TOMB_CHANGE)).select(TOMB_KEY).collect()
    finally:
        ctx.spark.catalog.dropTempView(view)
    gone = [r[0] for r in newer]
    return rows.where(~F.expr(key_json(spec)).isin(gone)) if gone else rows


def _planned_rows(ctx: RunContext, spec: RowSpec, plan: rp.RepairPlan, lake: DataFrame) -> DataFrame:
    """The lake rows the plan re-copies: those of its keys, of its buckets, or all."""
    if plan.by_key:
        keys = ctx.spark.createDataFrame(list(plan.keys), rp.key_schema_ddl(spec))
        return lake.join(F.broadcast(keys), list(spec.key), "left_semi")
    return lake.where(rp.bucket_predicate(spec, plan))


def _delta_rs_reason(ctx: RunContext, task: TableTask) -> str | None:
    """Why the repair's MERGE of this table is Spark's (None: delta-rs'): the stream's own rules
    (``stream.merge_writer``, a lake and table delta-rs can write, ``stream.merge_writer_max_table_mb``)."""
    why = merge_reason(ctx.spark, task.location, ctx.config.stream.merge_writer)
    if why is None:
        size = ctx.spark.sql(f"DESCRIBE DETAIL delta.{rp.q(task.location)}").select("sizeInBytes").collect()[0][0]
        why = size_reason(size, ctx.config.stream.merge_writer_max_table_mb)
    return why


def _merge(ctx: RunContext, task: TableTask, pending: DataFrame, key: Sequence[str], columns: Sequence[str], position: int) -> tuple[dict[str, Any], str]:
    """MERGE ``pending`` into the table in one commit: delta-rs where it writes the table (its failure
    hands the same MERGE to Spark; delta-rs commits all or nothing), Spark otherwise. Returns the
    metrics (Spark's names) and who merged."""
    name = task.table.qualified_name
    why = _delta_rs_reason(ctx, task)
    if why is None:
        try:
            data = pending.toArrow()
            metrics = merge_arrow(task.location, data, rp.merge_clauses(key, columns, position))
            return {**metrics, "num_affected_rows": sum(metrics.values())}, "delta-rs"
        except Exception as exc:  # noqa: BLE001 - an accelerator: Spark's MERGE does the same
            log.warning("%s: the delta-rs MERGE failed, Spark MERGEs instead: %s", name, failure_text(exc))
    else:
        log.info("%s: MERGEd by Spark: %s", name, why)
    view = f"__repair_{uuid.uuid4().hex[:10]}"
    pending.createOrReplaceTempView(view)
    try:
        out = ctx.spark.sql(rp.merge_sql(task.location, view, key, columns, position)).collect()
    finally:
        ctx.spark.catalog.dropTempView(view)
    return (out[0].asDict() if out else {}), "Spark"


def _commit_merge(ctx: RunContext, task: TableTask, spec: RowSpec, plan: rp.RepairPlan, rows: DataFrame, position: int) -> str:
    """Compare the snapshot rows of the keys or buckets with the lake's by key and row hash, then MERGE
    only what differs (nothing when nothing does)."""
    key = list(spec.key)
    exprs = spark_row_exprs(spec)
    name = task.table.qualified_name
    started = time.monotonic()
    snap = rows.withColumn(rp.ROW_HASH, F.expr(exprs.hash)).persist()
    lake: DataFrame | None = None
    try:
        log.info("%s: %d snapshot row(s) read in %.1fs", name, snap.count(), time.monotonic() - started)
        started = time.monotonic()
        # cached: both comparisons below read it, and the lake is scanned once
        lake = _planned_rows(ctx, spec, plan, _lake(ctx, task)).select(*_cols(key), F.expr(exprs.hash).alias("__lake_hash")).persist()
        upserts = snap.join(lake, [*key], "left_outer").where(F.col("__lake_hash").isNull() | (F.col("__lake_hash") != F.col(rp.ROW_HASH)))
        upserts = _not_deleted_since(ctx, task, upserts.select(*_cols(rows.columns)), position)
        gone = lake.select(*_cols(key)).join(snap.select(*_cols(key)), [*key], "left_anti")
        deletes = gone.select(*[spark_col(c) if c in key else F.lit(None).cast(rows.schema[c].dataType).alias(c) for c in rows.columns])
        source = upserts.withColumn(rp.DELETE_FLAG, F.lit(False)).unionByName(deletes.withColumn(rp.DELETE_FLAG, F.lit(True)))
        pending = source.persist()
        try:
            counts = pending.agg(F.count(F.lit(1)).alias("n"), F.sum(F.col(rp.DELETE_FLAG).cast("int")).alias("d")).first()
            n_del = int((counts["d"] if counts else 0) or 0)
            n_up = int(counts["n"] if counts else 0) - n_del
            log.info("%s: compared with the lake: %d row(s) missing or changed, %d extra, in %.1fs", name, n_up, n_del, time.monotonic() - started)
            if n_up == 0 and n_del == 0:
                return "nothing differs from the snapshot (no commit)"
            started = time.monotonic()
            m, writer = _merge(ctx, task, pending, key, rows.columns, position)
            log.info("%s: MERGE (%s) committed in %.1fs", name, writer, time.monotonic() - started)
        finally:
            pending.unpersist()
    finally:
        snap.unpersist()
        if lake is not None:
            lake.unpersist()
    skipped = n_up + n_del - int(m.get("num_affected_rows", n_up + n_del))
    return (f"{n_up} row(s) missing or changed, {n_del} extra: {m.get('num_updated_rows', '?')} updated, "
            f"{m.get('num_inserted_rows', '?')} inserted, {m.get('num_deleted_rows', '?')} deleted"
            + (f", {skipped} left to the stream (newer than the snapshot)" if skipped else ""))


def _commit_versions(ctx: RunContext, task: TableTask, spec: RowSpec, plan: rp.RepairPlan, rows: DataFrame, position: int,
                     kind: rh.Kind) -> str:
    """A history or soft-delete table: its current rows of the buckets compared with the snapshot rows,
    then one MERGE closing and opening versions, or inserting, updating and marking rows deleted
    (lib/validate/repair_history.py)."""
    key = list(spec.key)
    exprs = spark_row_exprs(spec)
    name = task.table.qualified_name
    data = [r.name for r in task.reads]
    at_micros = int(time.time() * 1_000_000)  # the repair's time: where a closed version ends and its successor starts
    started = time.monotonic()
    snap = rows.withColumn(rp.ROW_HASH, F.expr(exprs.hash)).persist()
    views = {v: f"__repair_{v}_{uuid.uuid4().hex[:10]}" for v in ("snapshot", "upsertable", "lake", "source")}
    try:
        log.info("%s: %d snapshot row(s) read in %.1fs", name, snap.count(), time.monotonic() - started)
        started = time.monotonic()
        lake = _lake(ctx, task).where(rh.current_filter(kind)).where(rp.bucket_predicate(spec, plan)).withColumn(rh.LAKE_HASH, F.expr(exprs.hash))
        snap.createOrReplaceTempView(views["snapshot"])
        _not_deleted_since(ctx, task, snap, position).createOrReplaceTempView(views["upsertable"])
        lake.createOrReplaceTempView(views["lake"])
        names = rh.Views(views["snapshot"], views["upsertable"], views["lake"])
        pending = ctx.spark.sql(rh.source_sql(kind, key, data, position, at_micros, names)).persist()
        try:
            counts = {r[0]: int(r[1]) for r in pending.groupBy(rh.ROLE).count().collect()}
            log.info("%s: compared with the lake's current rows: %s, in %.1fs", name, counts or "nothing differs", time.monotonic() - started)
            if not counts:
                return "nothing differs from the snapshot (no commit)"
            started = time.monotonic()
            pending.createOrReplaceTempView(views["source"])
            metrics = ctx.spark.sql(rh.merge_sql(kind, f"delta.{rp.q(task.location)}", views["source"], key, data, position)).collect()
            log.info("%s: MERGE committed in %.1fs", name, time.monotonic() - started)
        finally:
            pending.unpersist()
    finally:
        for view in views.values():
            ctx.spark.catalog.dropTempView(view)
        snap.unpersist()
    m = metrics[0].asDict() if metrics else {}
    what = (f"{counts.get('insert', 0)} version(s) opened, {counts.get('close', 0)} closed" if kind == "scd2" else
            f"{counts.get('upsert', 0)} row(s) missing or changed, {counts.get('delete', 0)} marked deleted")
    return f"{what}: {m.get('num_updated_rows', '?')} updated, {m.get('num_inserted_rows', '?')} inserted"


def _commit_replace(ctx: RunContext, task: TableTask, spec: RowSpec, plan: rp.RepairPlan, rows: DataFrame, position: int) -> str:
    observation = Observation(f"repair_{uuid.uuid4().hex[:8]}")
    observed = rows.observe(observation, F.count(F.lit(1)).alias("rows"))
    writer = observed.write.format("delta").mode("overwrite")
    if plan.filtered:
        writer = writer.option("replaceWhere", rp.bucket_predicate(spec, plan))
    writer.save(task.location)
    return f"bucket(s) replaced by {int(observation.get.get('rows', 0))} row(s)"


def repair_table(ctx: RunContext, task: TableTask, report: TableReport) -> RepairOutcome:
    """Repair one table; never raises (a failure is the outcome)."""
    started = time.monotonic()
    name = task.table.qualified_name
    try:
        lake_columns = ctx.spark.read.format("delta").load(task.location).columns if ctx.config.lake.format == "delta" else []
        why = rp.refusal(report, lake_columns, ctx.config.lake.format, task.table.primary_key)
        if why:
            log.error("%s: not repaired: %s", name, why)
            return RepairOutcome(name, False, f"not repaired: {why}", time.monotonic() - started)
        total = ctx.source.validation.checksum_buckets
        spec = RowSpec(task.reads, task.table.primary_key, bucket_digits(total))
        kind = rh.history_kind(lake_columns)
        plan = rp.plan_table(report, task.table.primary_key, total, spec=spec if kind is None else None)
        commit: Callable[..., str] = _commit_merge if plan.method == "merge" else _commit_replace
        if kind is not None:  # refusal() made sure of its key: a MERGE by key, keeping versions or deleted rows
            commit = functools.partial(_commit_versions, kind=kind)
        log.info("%s: repairing %s", name, plan.describe())
        with repair_snapshot(ctx, task.table) as snap:
            queries = source_queries(ctx, task, spec, plan, snap)

            position = ctx.dialect.position_number(snap.position)

            def attempt() -> str:
                parts = [read_snapshot_rows(ctx, task, query, snap) for query in queries]
                return commit(ctx, task, spec, plan, functools.reduce(DataFrame.unionByName, parts), position)

            done = with_retries(f"{name} repair", attempt, ctx.config.bulk.max_attempts, ctx.config.bulk.retry_backoff_seconds)
        seconds = time.monotonic() - started
        message = f"repaired {plan.describe()} from the snapshot at {snap.position} ({snap.method}): {done} in {seconds:.1f}s"
        log.info("%s: %s", name, message)
        return RepairOutcome(name, True, message, seconds)
    except Exception as exc:  # noqa: BLE001 - one table's failure leaves the others alone
        message = redact(short_error(exc), ctx.secrets)
        log.error("%s: repair failed: %s", name, message)
        log.debug("details", exc_info=True)
        return RepairOutcome(name, False, f"repair failed: {message}", time.monotonic() - started)


def repair_and_recheck(
    ctx: RunContext,
    tasks: Sequence[TableTask],
    reports: list[TableReport],
    validate: Callable[[TableTask], TableReport],
) -> list[TableReport]:
    """Repair every table whose report says it differs, validate those again, and return the reports
    of the run: the second report of a repaired table (with its ``repair`` check), the first otherwise."""
    out = list(reports)
    todo = [(i, task) for i, (task, report) in enumerate(zip(tasks, reports, strict=True)) if rp.needs_repair(report)]
    log.info("repair: %d of %d table(s) differ from the source", len(todo), len(tasks))
    if todo:
        tune(ctx.spark, MERGE_SETTINGS)  # the repair's MERGEs, as the stream's (their sources are cached already)
    repaired = 0
    for i, task in todo:
        outcome = repair_table(ctx, task, reports[i])
        if outcome.ok:
            repaired += 1
            again = validate(task)
            log.info("%s: after repair %s", task.table.qualified_name, again.verdict)
        else:
            again = reports[i]
        out[i] = _with_check(again, outcome.check())
    log.info("repair: %d table(s) repaired, %d not", repaired, len(todo) - repaired)
    return out


def _with_check(report: TableReport, check: Check) -> TableReport:
    return TableReport(report.schema, report.table, report.location, (*report.checks, check), report.source_rows,
                       report.lake_rows, report.in_flight, report.seconds)

