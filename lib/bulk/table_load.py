"""Copy one table: plan it (or pick up its stored plan), then read and commit it chunk by chunk."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession

from lib.bulk.arrow_writer import unsupported_reason, without_leftovers, write_with_delta_rs
from lib.bulk.direct_read import DirectReaderUnavailable, DirectReadUnsupported, rows_to_arrow
from lib.bulk.planner import TablePlan, choose_split, describe, group_chunks, sample_target, type_fits
from lib.bulk.progress import Progress
from lib.bulk.reader import ADDED_COLUMNS, read_chunk
from lib.bulk.recopy_wait import carried_note
from lib.bulk.writer import committed_chunk, table_row_count, write_chunk
from lib.config.model import BulkConfig, SourceConfig
from lib.dialects.base import Snapshot, Table
from lib.fallback import failure_text
from lib.lake.local_writer import delta_table_exists
from lib.logs import redact, without_values
from lib.retry import short_error, with_retries
from lib.status.batch import StatusBatcher
from lib.status.record import StatusEvent

log = logging.getLogger("bulk")


@dataclass(frozen=True)
class LoadContext:
    """Everything a table load needs that is the same for every table of the run."""

    spark: SparkSession
    source: SourceConfig
    dialect: Any
    bulk: BulkConfig
    lake_format: str
    status: StatusBatcher  # events are committed in batches
    progress: Progress
    partitions: int  # --partitions, else bulk.partitions
    secrets: tuple[str, ...]
    notes: dict[str, str]  # per qualified table name: e.g. why CDC is not enabled
    delta_rs: bool = False  # new small tables committed by delta-rs (lib/bulk/arrow_writer.py)
    delta_properties: dict[str, str] = field(default_factory=dict)  # their table properties
    # those tables read by the source's Python driver, not Spark (lib/bulk/direct_read.py): an object
    # with read(query) -> rows (e.g. lib/dialects/postgres/snapshot_reader.py), None for Spark JDBC
    direct_reader: Any = None
    time_zone: str = "UTC"  # Spark's session time zone: the Arrow type of TIMESTAMP columns
    copy_note: str | None = None  # the note of this run's copies until they complete (BulkOptions.note)


@dataclass(frozen=True)
class TableResult:
    schema: str
    table: str
    ok: bool
    rows: int
    seconds: float
    error: str | None = None


def build_plan(source: SourceConfig, dialect: Any, bulk: BulkConfig, partitions: int, table: Table, snap: Snapshot | None) -> TablePlan:
    """Measure what must be measured (row count, numeric profiles, key sample) and plan the copy."""
    conn = source.connection
    total = table.estimated_rows if table.estimated_rows >= 0 else dialect.count_rows(conn, snap, table)
    reads = dialect.column_reads(table)
    unbounded = [r.name for r in reads if r.needs_profile]
    if unbounded:
        reads = dialect.column_reads(table, dialect.profile_columns(conn, snap, table, unbounded))
    override = source.override_for(table.schema, table.name)
    split = choose_split(table, override, partitions, bulk.rows_per_chunk, bulk.min_rows_to_split, total, dialect.can_split_physically)
    predicates: list[str] = ["TRUE"]
    if split.kind == "range":
        sample = dialect.sample_split_keys(conn, table, split.columns, sample_target(split), total)
        dialect.check_ranges(conn, table, sample, split.total_ranges)
        predicates = dialect.range_predicates(table, sample, split.total_ranges)
    elif split.kind == "physical":
        predicates = dialect.physical_predicates(table, split.partitions) or ["TRUE"]
    return TablePlan(table.schema, table.name, total, split, group_chunks(predicates, split.chunks), tuple(reads))


@dataclass(frozen=True)
class TableJob:
    """A planned table copy: what :func:`copy_table` runs, and the event recorded before it starts."""

    table: Table
    location: str
    plan: TablePlan
    first_chunk: int
    event: StatusEvent  # state "pending", with the plan and load id: recorded before any copy starts

    @property
    def small(self) -> bool:
        return self.plan.split.kind == "none"


def is_small(rows: int, bulk: BulkConfig) -> bool:
    """Small tables (fewer rows than ``bulk.min_rows_to_split``, read in one piece) run in their own,
    wider pool and log their own lines at DEBUG only."""
    return 0 <= rows < bulk.min_rows_to_split


def prepare_table(ctx: LoadContext, table: Table, location: str, prior: StatusEvent | None, snap: Snapshot, resume: bool) -> TableJob | TableResult:
    """Plan ``table`` (or pick up its stored plan and committed chunks): the job, or the failure."""
    started = time.monotonic()
    base = prior or StatusEvent(ctx.source.name, table.schema, table.name, "bulk", "pending", location)
    try:
        plan, load_id, first_chunk, position, txids = _plan_or_resume(ctx, table, location, prior, snap, resume)
    except Exception as exc:  # noqa: BLE001 - a table that cannot be planned fails alone
        return _failed(ctx, table, base, exc, started)
    event = base.next(
        phase="bulk",
        state="pending",
        location=location,
        primary_key=table.primary_key,
        snapshot_position=position,
        snapshot_txids=txids,
        snapshot_method=snap.method if first_chunk == 0 else (prior.snapshot_method if prior else snap.method),
        **CDC_CLEARED,
        note=carried_note(prior, ctx.copy_note),
        attempts=(base.attempts or 0) + 1,
        last_error=None,
        started_at=base.started_at if first_chunk > 0 else None,
        load_id=load_id,
        chunks_total=len(plan.chunks),
        chunks_done=first_chunk,
        plan=plan.to_json(),
        row_count=None,
    )
    return TableJob(table, location, plan, first_chunk, event)


def copy_table(ctx: LoadContext, job: TableJob, snap: Snapshot) -> TableResult:
    """Copy the chunks of ``job`` not committed yet; never raises for table-level failures (they are
    returned). Its status events go through the batcher (``ctx.status``)."""
    started = time.monotonic()
    table, plan, name = job.table, job.plan, job.table.qualified_name
    level = logging.DEBUG if is_small(plan.total_rows, ctx.bulk) else logging.INFO
    event = job.event
    try:
        log.log(level, "%s: start (%s)", name, describe(plan))
        event = event.next(state="running", started_at=event.started_at or event.updated_at)
        ctx.status.record(event)
        load_id = event.load_id or ""
        url = ctx.dialect.jdbc_url(ctx.source.connection)
        props = ctx.dialect.jdbc_properties(ctx.source.connection, ctx.bulk.fetch_size)
        row_position = ctx.dialect.position_number(snap.position)
        delta_rs = _delta_rs_writes(ctx, job, [r.name for r in plan.reads] + list(ADDED_COLUMNS))
        fast = {"delta_rs": delta_rs}  # cleared when the delta-rs path fails: retries of the table stay with Spark
        copied = 0
        for index in range(job.first_chunk, len(plan.chunks)):
            chunk_started = time.monotonic()

            def copy_chunk(index: int = index) -> int:
                if fast["delta_rs"]:
                    try:
                        data = _read_directly(ctx, job, snap, row_position)
                        if data is None:
                            data = read_chunk(ctx.spark, ctx.dialect, url, props, plan, plan.chunks[index], snap, row_position).toArrow()
                        return write_with_delta_rs(data, job.location, load_id, ctx.delta_properties)
                    except Exception as exc:  # noqa: BLE001 - an accelerator, never a new way to fail: Spark reads and writes the table
                        # Nothing of it is committed (write_with_delta_rs removed what the failed write left).
                        fast["delta_rs"] = False
                        log.warning("%s: read and written by Spark (the delta-rs path failed: %s)", name, redact(failure_text(exc), ctx.secrets))
                if delta_rs and committed_chunk(ctx.spark, job.location, load_id) >= index:
                    # committed by an earlier attempt after all: Delta would skip the write (exactly-once)
                    return table_row_count(ctx.spark, job.location, ctx.lake_format)
                df = read_chunk(ctx.spark, ctx.dialect, url, props, plan, plan.chunks[index], snap, row_position)
                if delta_rs:  # a new table handed over by the delta-rs path: a failed write leaves its path as it was
                    return without_leftovers(job.location, lambda: write_chunk(df, job.location, ctx.lake_format, load_id, index))
                return write_chunk(df, job.location, ctx.lake_format, load_id, index)

            rows = with_retries(f"{name} chunk {index + 1}/{len(plan.chunks)}", copy_chunk, ctx.bulk.max_attempts, ctx.bulk.retry_backoff_seconds)
            copied += rows
            ctx.progress.add_rows(rows)
            elapsed = time.monotonic() - chunk_started
            if len(plan.chunks) > 1:
                log.log(level, "%s: chunk %d/%d committed, %d rows in %.1fs (%s rows/s)", name, index + 1, len(plan.chunks), rows, elapsed, _rate(rows, elapsed))
            if index + 1 < len(plan.chunks):  # the last chunk is recorded by the completion event
                event = event.next(chunks_done=index + 1)
                ctx.status.record(event)
        # Copied whole in this run: the writes' own counts are exact. Resumed: count the table.
        rows = copied if job.first_chunk == 0 else table_row_count(ctx.spark, job.location, ctx.lake_format)
        seconds = time.monotonic() - started
        ctx.status.record(event.next(state="completed", chunks_done=len(plan.chunks), row_count=rows, note=ctx.notes.get(name)))
        log.log(level, "%s: completed, %d rows in %.1fs (%s rows/s)", name, rows, seconds, _rate(rows, seconds))
        ctx.progress.table_finished(failed=False)
        return TableResult(table.schema, table.name, True, rows, seconds)
    except Exception as exc:  # noqa: BLE001 - a failing table must not stop the others
        return _failed(ctx, table, event, exc, started)


def _delta_rs_writes(ctx: LoadContext, job: TableJob, columns: list[str]) -> bool:
    """Whether delta-rs commits this table: a new small table in one chunk, where the result is the
    table Spark would create (lib/bulk/arrow_writer.py)."""
    if not (ctx.delta_rs and job.small and len(job.plan.chunks) == 1):
        return False
    reason = unsupported_reason(ctx.lake_format, job.location, columns)
    if reason is None and delta_table_exists(job.location):
        reason = "a Delta table exists there (a reload)"
    if reason:
        log.debug("%s: written by Spark (%s)", job.table.qualified_name, reason)
    return reason is None


def _read_directly(ctx: LoadContext, job: TableJob, snap: Snapshot, position: int) -> Any:
    """The table's only chunk as Arrow, read by ``ctx.direct_reader``; None where Spark must read it
    (no direct reader, a value it cannot give exactly: lib/bulk/direct_read.py, or any error of the
    read, said at WARNING). Never raises: Spark's read joins the same snapshot."""
    if ctx.direct_reader is None or len(job.plan.chunks[0]) != 1:
        return None
    name = job.table.qualified_name
    try:
        query = ctx.dialect.select_sql(job.table, job.plan.reads, job.plan.chunks[0][0], snap)
        data = rows_to_arrow(ctx.direct_reader.read(query), job.plan.reads, position, ctx.time_zone)
    except DirectReaderUnavailable as exc:  # said once by the reader
        log.debug("%s: read by Spark (the direct reader is off: %s)", name, exc)
        return None
    except DirectReadUnsupported as exc:
        log.debug("%s: read by Spark (the direct reader refuses %s)", name, without_values(str(exc)))
        return None
    except Exception as exc:  # noqa: BLE001 - an accelerator, never a new way to fail: nothing is written yet
        log.warning("%s: read by Spark (the direct reader failed: %s)", name, redact(failure_text(exc), ctx.secrets))
        return None
    log.debug("%s: read directly, %d rows", job.table.qualified_name, data.num_rows)
    return data


def _failed(ctx: LoadContext, table: Table, event: StatusEvent, exc: Exception, started: float) -> TableResult:
    message = redact(short_error(exc), ctx.secrets)
    seconds = time.monotonic() - started
    log.error("%s: FAILED after %.1fs: %s", table.qualified_name, seconds, message)
    ctx.status.record(event.next(state="failed", last_error=message, attempts=max(event.attempts, 1)))
    ctx.progress.table_finished(failed=True)
    return TableResult(table.schema, table.name, False, 0, seconds, message)


# A (re)load replaces what the stream applied before (a --no-resume reload of a table in phase "cdc"):
# its CDC fields start again when the stream takes the table over.
CDC_CLEARED: dict[str, Any] = dict.fromkeys(
    ("cdc_position", "cdc_event_time", "cdc_inserted", "cdc_updated", "cdc_deleted", "cdc_lag", "cdc_latency_ms")
)


def _plan_or_resume(
    ctx: LoadContext, table: Table, location: str, prior: StatusEvent | None, snap: Snapshot, resume: bool
) -> tuple[TablePlan, str, int, str, str | None]:
    """(plan, load id, first chunk to copy, the table's snapshot position, that snapshot's txids)."""

    def fresh_plan() -> TablePlan:
        return with_retries(
            f"{table.qualified_name} planning",
            lambda: build_plan(ctx.source, ctx.dialect, ctx.bulk, ctx.partitions, table, snap),
            ctx.bulk.max_attempts,
            ctx.bulk.retry_backoff_seconds,
        )

    # "pending": planned and recorded by a run that stopped before (or while) copying the table
    resumable = prior is not None and prior.phase == "bulk" and prior.state in ("pending", "running", "failed")
    if resume and resumable and prior.plan and prior.load_id and ctx.lake_format == "delta":
        stored = TablePlan.from_json(prior.plan)
        done = committed_chunk(ctx.spark, location, prior.load_id) + 1
        if 0 < done < len(stored.chunks) and stored.split.kind == "range" and _types_still_fit(ctx, table, stored, snap):
            log.info("%s: resuming at chunk %d/%d of load %s", table.qualified_name, done + 1, len(stored.chunks), prior.load_id)
            return (stored, prior.load_id, done, *_earliest_snapshot(prior, snap))
        if done >= len(stored.chunks):
            log.log(logging.INFO if len(stored.chunks) > 1 else logging.DEBUG, "%s: every chunk of load %s is already committed", table.qualified_name, prior.load_id)
            return (stored, prior.load_id, done, *_earliest_snapshot(prior, snap))
    return fresh_plan(), uuid.uuid4().hex, 0, snap.position, snap.txids


def _earliest_snapshot(prior: StatusEvent, snap: Snapshot) -> tuple[str, str | None]:
    """The position and txids a resumed table records: those of the snapshot its first chunk was read in.

    Rows keep the position of the snapshot they were read in (``__source_commit_pos``): chunks copied
    before the interruption in the earliest snapshot, the rest in this run's newer one. The table
    records the earliest snapshot, position and txids alike, so the stream replays every transaction
    that is not in the earliest snapshot: everything any chunk missed. Rows read in the newer snapshot
    already contain some of those replayed transactions; the stream applies them again, in source
    order (its MERGE treats bulk rows as older than any event), so such a row passes through states it
    already had and ends at the source's state: replays are idempotent. The newer snapshot's txids
    would instead make the stream skip transactions that committed between the two snapshots, which
    the early chunks do not contain: lost changes. Position and txids always come from the same
    snapshot: a prior event from before txids were recorded keeps None (the stream then falls back to
    comparing LSNs with the earliest position), never this run's txids.
    """
    if prior.snapshot_position:
        return prior.snapshot_position, prior.snapshot_txids
    return snap.position, snap.txids


def _types_still_fit(ctx: LoadContext, table: Table, stored: TablePlan, snap: Snapshot) -> bool:
    """A resumed chunk reads in a newer snapshot: the columns must be the same, and data-sized numeric
    types must still hold every value."""
    if [c.name for c in table.columns] != [r.name for r in stored.reads]:
        log.warning("%s: the source columns changed since the load started; reloading from scratch", table.qualified_name)
        return False
    measured = [r.name for r in stored.reads if r.needs_profile]
    if not measured:
        return True
    profile = ctx.dialect.profile_columns(ctx.source.connection, snap, table, measured)
    now = {r.name: r.spark_type for r in ctx.dialect.column_reads(table, profile)}
    changed = [r.name for r in stored.reads if r.needs_profile and not type_fits(now[r.name], r.spark_type)]
    if changed:
        log.warning("%s: values of %s no longer fit the stored types; reloading from scratch", table.qualified_name, ", ".join(changed))
    return not changed


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds > 0 else "-"
