"""One bulk-load run of one source: discover, select, snapshot, copy tables in parallel, summarize."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from lib.bulk.planner import describe
from lib.bulk.progress import Progress
from lib.bulk.recopy_wait import may_be_streamed, wait_for_holds
from lib.bulk.small_session import small_table_session
from lib.bulk.table_load import LoadContext, TableJob, TableResult, build_plan, copy_table, prepare_table
from lib.config.model import Config, SourceConfig
from lib.debezium.handoff import connector_document, register_connector, remove_connector, write_connector_file
from lib.dialects import get_dialect
from lib.dialects.base import Snapshot, Table
from lib.errors import ConfigError, UsageError
from lib.fallback import failure_text
from lib.lake.local_writer import table_properties, uses_delta_rs
from lib.lake.paths import normalize_root, source_path, table_path
from lib.lake.storage import apply_storage_conf, delete_path
from lib.name_collisions import collisions_error, source_collisions, touching
from lib.retry import with_retries
from lib.selection import select_tables
from lib.status.batch import StatusBatcher
from lib.status.factory import open_status_store
from lib.status.record import StatusEvent
from lib.status.store import StatusStore

log = logging.getLogger("bulk")
STATUS_BATCH_SECONDS = 1.0  # status events of the table threads are committed together at this interval
SKIPPED_LINES = 10  # skipped tables listed one per line up to this many


@dataclass(frozen=True)
class BulkOptions:
    tables: list[str] | None = None  # --tables globs
    resume: bool = True  # False with --no-resume
    fresh_start: bool = False
    parallel_tables: int | None = None
    partitions: int | None = None
    connector_config_path: Path | None = None  # where the Debezium connector config is written (with cdc)
    # the note the status events of this run's copies carry until they complete (the CDC stream marks the
    # copies it starts, lib.cdc.new_tables.STREAM_COPY_NOTE); None: the jobs/bulk_load.py run's copies
    note: str | None = None


def already_loaded(prior: StatusEvent | None) -> bool:
    """The table's bulk load completed: its latest event says so, or the CDC stream has taken it over
    (phase "cdc" events carry the completed bulk event's fields forward, whatever the stream's state)."""
    return prior is not None and (prior.phase == "cdc" or (prior.phase == "bulk" and prior.state == "completed"))


def discover_tables(config: Config, source: SourceConfig, only: Sequence[str] | None, refuse_collisions: bool = False) -> tuple[Any, list[Table]]:
    """The dialect and the selected tables of ``source``, with config overrides checked against them.
    ``refuse_collisions`` (the bulk load's planning): selected tables whose names collide on a Kafka topic or
    a lake path are a config error (lib/name_collisions.py)."""
    dialect = get_dialect(source.type, f"sources.{source.name}.type")
    found = with_retries(
        f"discovering {source.name}",
        lambda: dialect.discover_source(source),
        config.bulk.max_attempts,
        config.bulk.retry_backoff_seconds,
    )
    by_name = {(t.schema, t.name): t for t in found}
    chosen = select_tables(list(by_name), source.include, source.exclude, only)
    if not chosen:
        if only:
            raise UsageError(f"--tables {','.join(only)}: no table of source {source.name!r} matches")
        raise ConfigError(f"sources.{source.name}.include", f"no table in schemas {', '.join(source.schemas)} matches the include/exclude globs")
    if refuse_collisions:
        # Before anything is touched: the tables the globs select share the source's topics and lake directory;
        # two of them colliding is a config error when this run (--tables) would load either of them.
        selected = select_tables(list(by_name), source.include, source.exclude)
        collisions = touching(source_collisions(source, selected, normalize_root(config.lake.root)), only)
        if collisions:
            raise collisions_error(source.name, collisions)
    tables = [by_name[k] for k in chosen]
    _check_overrides(source, by_name)
    return dialect, tables


def _check_overrides(source: SourceConfig, by_name: dict[tuple[str, str], Table]) -> None:
    for key, override in source.tables:
        path = f'sources.{source.name}.tables."{key}"'
        schema, _, name = key.partition(".")
        table = by_name.get((schema, name))
        if table is None:
            log.warning("%s: no such table in the source; the override is ignored", path)
            continue
        names = {c.name for c in table.columns}
        for col in (override.split_column,) if override.split_column else ():
            if col not in names:
                raise ConfigError(f"{path}.split_column", f"table {key} has no column {col!r}")
        for col in override.key_columns or ():
            if col not in names:
                raise ConfigError(f"{path}.key_columns", f"table {key} has no column {col!r}")


def with_counts(config: Config, source: SourceConfig, dialect: Any, tables: list[Table], snap: Snapshot | None) -> list[Table]:
    """``tables`` with exact row counts where the catalog has no estimate (never analyzed), counted in
    one session instead of one connection per table. A table that cannot be counted keeps -1: its own
    planning counts it again and fails alone."""
    unknown = [t for t in tables if t.estimated_rows < 0]
    if not unknown:
        return tables
    counts = with_retries(
        f"counting {len(unknown)} table(s) of {source.name}",
        lambda: dialect.count_rows_many(source.connection, snap, unknown),
        config.bulk.max_attempts,
        config.bulk.retry_backoff_seconds,
    )
    out = []
    for t in tables:
        n = counts.get((t.schema, t.name))
        out.append(dataclasses.replace(t, estimated_rows=n) if isinstance(n, int) else t)
    return out


def plan_source(config: Config, source: SourceConfig, options: BulkOptions) -> list[str]:
    """The ``--dry-run`` output: one line per table. Reads the catalog and samples keys; writes nothing."""
    dialect, tables = discover_tables(config, source, options.tables, refuse_collisions=True)
    tables = with_counts(config, source, dialect, tables, None)
    partitions = options.partitions or config.bulk.partitions
    root = normalize_root(config.lake.root)
    lines = [f"source {source.name} ({source.type}): {len(tables)} table(s), lake {root} ({config.lake.format})"]
    for table in tables:
        plan = build_plan(source, dialect, config.bulk, partitions, table, None)
        lines.append("  " + describe(plan) + f" -> {table_path(root, source.name, table.schema, table.name)}")
    return lines


def run_bulk_load(spark: SparkSession, config: Config, source_name: str, options: BulkOptions) -> int:
    """Load every selected table of ``source_name``. Returns the exit code: 0 all done, 1 a table failed."""
    started = time.monotonic()
    source = config.source(source_name)
    dialect, tables = discover_tables(config, source, options.tables, refuse_collisions=True)
    # The connector config before any copy: a config error in it (e.g. a missing cdc.password_reference)
    # stops the run now, not after the tables are copied. It is built again at the handoff: PostgreSQL's
    # lists the publication's tables, which the snapshot creates.
    if source.cdc is not None:
        connector_document(source, dialect, tables)

    def document() -> dict[str, Any]:
        return connector_document(source, dialect, tables)
    root = normalize_root(config.lake.root)
    apply_storage_conf(spark, config.lake.spark_conf)
    status = open_status_store(spark, root, config.lake.pipeline_writer)
    if options.fresh_start:
        _fresh_start(spark, status, dialect, source, root)
    status.ensure()
    # After a fresh start this source has no status rows left: skip reading the table (~3 s).
    current = {} if options.fresh_start else status.latest(source.name)
    pending = []
    skipped = []
    for table in tables:
        prior = current.get((source.name, table.schema, table.name))
        if options.resume and already_loaded(prior):
            skipped.append((table, prior))
            continue
        pending.append((table, prior))
    _log_skipped(skipped)
    notes: dict[str, str] = {}
    if source.cdc is not None:
        _covered, notes = dialect.streamable(source, tables)
        for name, why in notes.items():
            log.warning("%s: %s", name, why)
    if not pending:
        log.info("source %s: all %d selected tables are already loaded", source.name, len(tables))
        return _handoff(config, source, options, 0, document)
    parallel = options.parallel_tables or config.bulk.parallel_tables
    small_parallel = config.bulk.parallel_small_tables
    with dialect.open_source_snapshot(source, tables) as snap:
        planning = time.monotonic()
        counted = {(t.schema, t.name): t for t in with_counts(config, source, dialect, [t for t, _ in pending], snap)}
        pending = [(counted[(t.schema, t.name)], prior) for t, prior in pending]
        estimated = sum(max(t.estimated_rows, 0) for t, _ in pending)
        progress = Progress(len(pending), estimated, config.bulk.progress_interval_seconds)
        with StatusBatcher(status.append, STATUS_BATCH_SECONDS) as batcher:
            ctx = LoadContext(
                spark=spark,
                source=source,
                dialect=dialect,
                bulk=config.bulk,
                lake_format=config.lake.format,
                status=batcher,
                progress=progress,
                partitions=options.partitions or config.bulk.partitions,
                secrets=config.secrets(),
                notes=notes,
                copy_note=options.note,
            )
            prepared = [prepare_table(ctx, t, table_path(root, source.name, t.schema, t.name), prior, snap, options.resume) for t, prior in pending]
            jobs = [p for p in prepared if isinstance(p, TableJob)]
            # The plans and load ids of every table, in one commit before any copy: a crash from here on
            # loses no more than the completions not yet recorded (the next run finds their data by load id).
            status.append(*(j.event for j in jobs))
            if source.cdc is not None:  # a running stream stops applying the tables copied again before they are overwritten
                priors = {(t.schema, t.name): prior for t, prior in pending}
                wait_for_holds(status, source.name, [j.event for j in jobs if may_be_streamed(priors[(j.table.schema, j.table.name)], j.first_chunk)])
            small = [j for j in jobs if j.small]
            log.info(
                "source %s: loading %d of %d tables (~%d rows): %d small ones %d at a time, %d others %d at a time (planned in %.1fs)",
                source.name, len(pending), len(tables), estimated, len(small), small_parallel, len(jobs) - len(small), parallel,
                time.monotonic() - planning,
            )
            with (
                progress,
                ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="table") as large_pool,
                ThreadPoolExecutor(max_workers=small_parallel, thread_name_prefix="small-table") as small_pool,
            ):
                small_ctx = dataclasses.replace(ctx, spark=small_table_session(spark), **_small_table_writer(spark, config, dialect, source, snap)) if small else ctx
                try:
                    futures = {id(j): small_pool.submit(copy_table, small_ctx, j, snap) if j.small else large_pool.submit(copy_table, ctx, j, snap) for j in jobs}
                    results = [p if isinstance(p, TableResult) else futures[id(p)].result() for p in prepared]
                finally:
                    if small_ctx.direct_reader is not None:
                        small_ctx.direct_reader.close()
        unrecorded = batcher.pending
    if unrecorded:
        log.error("status: %d event(s) could not be recorded; the next run records the tables whose data is committed", unrecorded)
    code = _summarize(source.name, results, time.monotonic() - started)
    return _handoff(config, source, options, 1 if unrecorded else code, document)


def _small_table_writer(spark: SparkSession, config: Config, dialect: Any, source: SourceConfig, snap: Snapshot) -> dict[str, Any]:
    """The LoadContext fields that choose who commits new small tables (lib/bulk/arrow_writer.py) and
    who reads those delta-rs commits (lib/bulk/direct_read.py)."""
    if not uses_delta_rs(spark, None, config.bulk.small_table_writer, "small tables"):
        return {"delta_rs": False}
    fields: dict[str, Any] = {"delta_rs": True, "delta_properties": table_properties(spark.conf.getAll)}
    opener = getattr(dialect, "snapshot_reader", None)  # dialects whose Python driver reads small tables
    if config.bulk.small_table_reader != "direct" or opener is None:
        return fields
    try:
        # The reader's session gets the time zone Spark's JDBC readers get: the default zone of the JVM
        # they run in (asked through SQL: the same on classic Spark and Spark Connect).
        jvm_zone = spark.sql("SELECT java_method('java.time.ZoneId', 'systemDefault') AS zone").first()["zone"]  # type: ignore[index]
    except Exception as exc:  # noqa: BLE001 - a platform that refuses java_method: Spark reads them
        log.info("small tables are read by Spark (the JVM's time zone cannot be asked here: %s)", failure_text(exc))
        return fields
    fields["direct_reader"] = opener(source.connection, snap, str(jvm_zone))
    fields["time_zone"] = spark.conf.get("spark.sql.session.timeZone") or "UTC"
    return fields


def _log_skipped(skipped: list[tuple[Table, StatusEvent]]) -> None:
    """One line per skipped table when there are a few, else one line for all (each at DEBUG)."""
    verbose = len(skipped) <= SKIPPED_LINES
    for table, prior in skipped:
        what = "the CDC stream applies to it" if prior.phase == "cdc" else f"{prior.row_count} rows"
        log.log(logging.INFO if verbose else logging.DEBUG, "%s: already completed (%s), skipped (use --no-resume to reload)", table.qualified_name, what)
    if not verbose:
        log.info("%d tables already completed, skipped (use --no-resume to reload; --log-level DEBUG lists them)", len(skipped))


def _handoff(config: Config, source: SourceConfig, options: BulkOptions, code: int, build: Callable[[], dict[str, Any]]) -> int:
    """With CDC configured: write the connector config and register it (also after partial failures:
    the slot holds every change, and failed tables are reloaded by the next run)."""
    if source.cdc is None:
        return code
    document = build()
    if options.connector_config_path is not None:
        write_connector_file(document, options.connector_config_path)
    if source.cdc.connect_url:
        with_retries(f"registering connector {document['name']}", lambda: register_connector(source, document), config.bulk.max_attempts, config.bulk.retry_backoff_seconds)
    return code


def _fresh_start(spark: SparkSession, status: StatusStore, dialect: Any, source: SourceConfig, root: str) -> None:
    """Drop this source's connector, lake tables, status rows and replication slot."""
    remove_connector(source)
    if delete_path(spark, source_path(root, source.name)):
        log.info("fresh start: deleted %s", source_path(root, source.name))
    status.delete_source(source.name)
    if source.cdc is not None and dialect.drop_slot(source.connection, source.cdc.slot_name):
        log.info("fresh start: dropped replication slot %s", source.cdc.slot_name)


def _summarize(source: str, results: list[TableResult], seconds: float) -> int:
    """The final summary: failed tables first (with their errors), then the totals."""
    failed = [r for r in results if not r.ok]
    if failed:
        log.error("source %s: %d table(s) FAILED:", source, len(failed))
    for r in failed:
        log.error("FAILED %s.%s: %s", r.schema, r.table, r.error)
    rows = sum(r.rows for r in results)
    rate = rows / seconds if seconds > 0 else 0.0
    log.info(
        "source %s: %d table(s) loaded, %d failed, %d rows in %.1fs (%s rows/s)",
        source,
        len(results) - len(failed),
        len(failed),
        rows,
        seconds,
        f"{rate:,.0f}",
    )
    return 1 if failed else 0
