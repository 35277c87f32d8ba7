"""One validation run of one source: for every selected table, reconcile the lake with the source,
run the expectations, then report (console, JSON + HTML) and append to the validation history."""

from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from lib.bulk.runner import discover_tables
from lib.cdc.history import lake_view_filter
from lib.config.model import Config, SourceConfig, TableRules
from lib.dialects.base import ColumnRead, Table
from lib.lake.paths import is_uri, normalize_root, table_path
from lib.lake.storage import apply_storage_conf, is_delta_table, path_exists, write_text
from lib.logs import redact
from lib.retry import short_error, with_retries
from lib.status.factory import open_status_store
from lib.status.record import StatusEvent
from lib.validate import reconcile, sides
from lib.validate.checksum_sql import RowSpec
from lib.validate.expectations import ExpectationSpec, default_specs, rule_specs
from lib.validate.ge_run import run_expectations
from lib.validate.history import append_history, history_rows
from lib.validate.model import Check, TableReport
from lib.validate.render import bucket_digits
from lib.validate.report import console_lines, report_document, write_reports

log = logging.getLogger("validate")


@dataclass(frozen=True)
class ValidateOptions:
    report_path: Path | str  # a local path, or a URI (abfss://, wasbs://) written through Hadoop's FileSystem
    tables: list[str] | None = None  # --tables globs
    repair: bool = False  # --repair: re-copy what differs, then validate those tables again (lib/validate/repair.py)


@dataclass(frozen=True)
class TableTask:
    """Everything decided about one table before anything is read (built from catalog, status and config)."""

    table: Table
    reads: tuple[ColumnRead, ...]  # expected lake columns and types, as the bulk loader maps them
    rules: TableRules
    specs: tuple[ExpectationSpec, ...]
    status: StatusEvent | None
    location: str


@dataclass(frozen=True)
class RunContext:
    spark: SparkSession
    config: Config
    source: SourceConfig
    dialect: Any
    secrets: tuple[str, ...]


def expected_reads(dialect: Any, source: SourceConfig, table: Table, status: StatusEvent | None) -> tuple[ColumnRead, ...]:
    """The loader's mapping; measured types (numeric without precision) from the load's recorded plan,
    else measured now."""
    reads = dialect.column_reads(table)
    measured = [r.name for r in reads if r.needs_profile]
    if not measured:
        return tuple(reads)
    planned = {r["name"]: ColumnRead(**r) for r in ((status.plan_data().get("reads") if status else None) or [])}
    if all(name in planned for name in measured):
        return tuple(planned[r.name] if r.needs_profile else r for r in reads)
    return tuple(dialect.column_reads(table, dialect.profile_columns(source.connection, None, table, measured)))


def prepare(ctx: RunContext, tables: list[Table], root: str, status: dict[tuple[str, str, str], StatusEvent]) -> list[TableTask]:
    """Plan every table; a rule that cannot apply raises ConfigError before any table is read."""
    tasks = []
    names = {t.qualified_name for t in tables}
    for key, _ in ctx.source.validation.tables:
        if key not in names:
            log.warning("sources.%s.validation.tables.%s: no such table selected in the source; its rules are ignored", ctx.source.name, key)
    for table in tables:
        event = status.get((ctx.source.name, table.schema, table.name))
        reads = expected_reads(ctx.dialect, ctx.source, table, event)
        rules = ctx.source.validation.rules_for(table.schema, table.name)
        path = f"sources.{ctx.source.name}.validation.tables.{table.qualified_name}"
        specs = (*default_specs(table), *rule_specs(rules, path, reads))
        location = table_path(root, ctx.source.name, table.schema, table.name)
        tasks.append(TableTask(table, reads, rules, specs, event, location))
    return tasks


def check_rules(config: Config, source_name: str, only: list[str] | None) -> None:
    """Reject rules that cannot apply (unknown column, regex on a number, ...) from the catalog alone,
    before a SparkSession exists, so a bad config fails fast. Columns whose lake type is measured from
    the data are checked again, with their measured type, when the run plans its tables."""
    source = config.source(source_name)
    if not source.validation.tables:
        return
    dialect, tables = discover_tables(config, source, only)
    for table in tables:
        rules = source.validation.rules_for(table.schema, table.name)
        reads = [r for r in dialect.column_reads(table) if not r.needs_profile]
        measured = {r.name for r in dialect.column_reads(table) if r.needs_profile}
        known = replace(rules, columns=tuple((c, rule) for c, rule in rules.columns if c not in measured))
        rule_specs(known, f"sources.{source.name}.validation.tables.{table.qualified_name}", reads)


def validate_source(spark: SparkSession, config: Config, source_name: str, options: ValidateOptions) -> int:
    """Validate every selected table of ``source_name``. Returns 0 all passed, 1 a table failed."""
    started = datetime.now(UTC)
    source = config.source(source_name)
    dialect, tables = discover_tables(config, source, options.tables)
    root = normalize_root(config.lake.root)
    apply_storage_conf(spark, config.lake.spark_conf)
    ctx = RunContext(spark, config, source, dialect, config.secrets())
    tasks = prepare(ctx, tables, root, open_status_store(spark, root, config.lake.pipeline_writer).latest(source.name))
    log.info("source %s: validating %d table(s) in %s (%s)", source.name, len(tasks), root, config.lake.format)
    reports = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="source-query") as pool:
        for task in tasks:
            reports.append(validate_table(ctx, task, pool))
            log.info("%s: %s in %.1fs", task.table.qualified_name, reports[-1].verdict, reports[-1].seconds)
        if options.repair:
            from lib.validate.repair import repair_and_recheck

            reports = repair_and_recheck(ctx, tasks, reports, lambda task: validate_table(ctx, task, pool))
    finished = datetime.now(UTC)
    run_id = uuid.uuid4().hex[:12]
    run = {
        "run_id": run_id,
        "source": source.name,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "lake_root": root,
        "lake_format": config.lake.format,
    }
    document = report_document(run, reports)
    if isinstance(options.report_path, str) and is_uri(options.report_path):
        html = write_reports(document, options.report_path, lambda path, text: write_text(spark, path, text))
    else:
        html = write_reports(document, Path(options.report_path))
    for line in console_lines(reports):
        print(redact(line, ctx.secrets))
    log.info("reports: %s, %s", options.report_path, html)
    code = 1 if any(r.verdict == "FAIL" for r in reports) else 0
    try:
        history = append_history(spark, root, history_rows(run_id, source.name, config.lake.format, started, finished, reports))
        log.info("history: appended %d row(s) to %s", len(reports), history)
    except Exception as exc:  # noqa: BLE001 - the reports exist; say the history is incomplete
        log.error("could not append to the validation history: %s", redact(short_error(exc), ctx.secrets))
        code = 1
    return code


def validate_table(ctx: RunContext, task: TableTask, pool: ThreadPoolExecutor) -> TableReport:
    """All checks of one table; never raises (an error becomes a failed check)."""
    started = time.monotonic()
    table = task.table
    event = task.status
    flight = event is not None and (event.phase == "cdc" or bool(event.cdc_position))
    checks: list[Check] = [_load_check(event)]
    source_rows = lake_rows = None
    try:
        if not _lake_exists(ctx, task.location):
            checks.append(Check("lake_table", "load", "fail", f"no {ctx.config.lake.format} table at {task.location}"))
            return TableReport(table.schema, table.name, task.location, tuple(checks), seconds=time.monotonic() - started)
        lake_all = ctx.spark.read.format(ctx.config.lake.format).load(task.location)
        mirrored = lake_view_filter(lake_all.columns)  # history and soft-delete tables: the current, not-deleted rows
        if mirrored:
            lake_all = lake_all.where(mirrored)
        data_columns = [f.name for f in lake_all.schema.fields if not f.name.startswith("__")]
        df = lake_all.select(*[lake_all[f"`{c.replace('`', '``')}`"] for c in data_columns])
        lake_types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
        schema = reconcile.schema_check(task.reads, lake_types)
        checks.append(schema)
        source_rows, lake_rows, recon = _reconcile(ctx, task, df, schema.status == "pass", pool)
        checks += [reconcile.in_flight(c) if flight else c for c in recon]
        checks += run_expectations(df, task.specs, _suite_name(table))
    except Exception as exc:  # noqa: BLE001 - one table's failure must not stop the others
        message = redact(short_error(exc), ctx.secrets)
        log.error("%s: validation failed: %s", table.qualified_name, message)
        log.debug("details", exc_info=True)
        checks.append(Check("error", "load", "fail", f"could not validate: {message}"))
    return TableReport(table.schema, table.name, task.location, tuple(checks), source_rows, lake_rows, flight, time.monotonic() - started)


def _load_check(event: StatusEvent | None) -> Check:
    if event is None:
        return Check("load_status", "load", "skipped", "no entry in the status table", "completed", None)
    if event.phase == "bulk" and event.state != "completed":
        return Check("load_status", "load", "fail", f"bulk load is {event.state}" + (f": {event.last_error}" if event.last_error else ""), "completed", event.state)
    return Check("load_status", "load", "pass", f"{event.phase} {event.state}", "completed", f"{event.phase} {event.state}")


def _lake_exists(ctx: RunContext, location: str) -> bool:
    if ctx.config.lake.format == "delta":
        return is_delta_table(ctx.spark, location)
    return path_exists(ctx.spark, location)


def _retry(ctx: RunContext, what: str, fn: Any) -> Any:
    return with_retries(what, fn, ctx.config.bulk.max_attempts, ctx.config.bulk.retry_backoff_seconds)


def _reconcile(ctx: RunContext, task: TableTask, df: DataFrame, schema_ok: bool, pool: ThreadPoolExecutor) -> tuple[int, int, list[Check]]:
    """(source rows, lake rows, checks): row count, primary key, checksum with the differing keys."""
    table, conn, name = task.table, ctx.source.connection, task.table.qualified_name
    validation = ctx.source.validation
    spec = RowSpec(task.reads, table.primary_key, bucket_digits(validation.checksum_buckets))
    do_checksum = task.rules.checksum and schema_ok
    future: Future[Any]
    if do_checksum:
        future = pool.submit(_retry, ctx, f"{name} source checksum", lambda: sides.source_bucket_sums(conn, table, spec, ctx.dialect))
    else:
        future = pool.submit(_retry, ctx, f"{name} source count", lambda: ctx.dialect.count_rows(conn, None, table))
    checks: list[Check] = []
    lake_sums = sides.lake_bucket_sums(df, spec) if do_checksum else None
    lake_rows = reconcile.total_rows(lake_sums) if lake_sums is not None else df.count()
    if table.primary_key:
        null_rows, dup_keys, dup_rows, examples = sides.lake_key_stats(df, table.primary_key)
        checks.append(reconcile.key_check(table.primary_key, null_rows, dup_keys, dup_rows, examples))
    result = future.result()
    source_sums = result if do_checksum else None
    source_rows = reconcile.total_rows(source_sums) if source_sums is not None else int(result)
    checks.insert(0, reconcile.row_count_check(source_rows, lake_rows))
    if source_sums is None or lake_sums is None:
        why = "disabled for this table" if not task.rules.checksum else "schema differs"
        checks.append(Check("checksum", "reconciliation", "skipped", f"checksum not compared: {why}"))
        return source_rows, lake_rows, checks
    differing = reconcile.differing_buckets(source_sums, lake_sums)
    diff, skipped, keys = None, None, None
    if differing:
        rows = max(sum(source_sums.get(b, (0, 0))[0] for b in differing), sum(lake_sums.get(b, (0, 0))[0] for b in differing))
        if rows <= validation.drill_down_rows:
            src = _retry(ctx, f"{name} source drill-down", lambda: sides.source_rows_in(conn, table, spec, differing, ctx.dialect))
            diff = reconcile.diff_rows(table.primary_key, src, sides.lake_rows_in(df, spec, differing))
            keys = diff.keys if table.primary_key else None
        else:
            skipped = f"{rows} rows in the differing buckets, more than validation.drill_down_rows ({validation.drill_down_rows}): keys not listed"
    checks.append(reconcile.checksum_check(validation.checksum_buckets, differing, diff, skipped, keys))
    return source_rows, lake_rows, checks


def _suite_name(table: Table) -> str:
    return f"{table.schema}.{table.name}.{uuid.uuid4().hex[:6]}"

