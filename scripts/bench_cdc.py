#!/usr/bin/env python3
"""Benchmark: the CDC stream against its targets (not a test). One run measures:

    backlog   sustained apply of a backlog (default 1,000,000 events over 20 tables of 5,000,000 rows) by
              ``jobs/cdc_stream.py --available-now``, beside plain Spark reading and parsing the same
              messages (scripts/bench_kafka_read.py); peak memory of the stream's process tree
    latency   500 events/s spread over the 20 tables: p50 / p95 after a warm-up
    rate      2,000 events/s over the 20 tables for 3 minutes: lag over time and its slope
    skew      500 events/s, 90% of them to one table: that table's p50 and the others'
    light     10 events/s over 3 tables: p50
    many      200 small tables (a second source, schema ``many``), 5 of them receiving 500 events/s: their p50
              (every table is first updated once, and the hot writes wait until each has had its apply)

Usage:  .venv/bin/python scripts/bench_cdc.py [--phases backlog,latency,rate,skew,light,many] [--rows N]
        [--backlog N] [--latency-seconds S] [--rate-seconds S] ...   (or `make bench`; --help lists every flag)
Quick check: --rows 200000 --backlog 20000 --warmup-seconds 20 --phase-warmup-seconds 10 --latency-seconds 20
        --rate-seconds 30 --skew-seconds 20 --light-seconds 20 --many-seconds 20 --wait-idle 0

Needs the local stack of `make up` (PostgreSQL, Kafka, Kafka Connect with Debezium). This process never
starts a JVM: every Spark job runs as a subprocess, exactly as a user runs it.

Setup (not measured): database ``bench_cdc`` (dropped first) with ``--tables`` tables ``public.t01`` ...
holding ``--rows`` rows in all, generated server-side, with the columns of ``--shape``
(bench_cdc_workload.SHAPES: ``plain`` 7 columns, ``mixed`` those and 12 of the other common types); a
temporary config (lake, checkpoints in a fresh temporary directory; topic prefix, slot, publication and
connector unique to the run) and
``jobs/bulk_load.py --fresh-start --yes --connector-config``: the lake copy plus the Debezium connector.
The ``many`` phase does the same for ``--many-tables`` tables ``many.m001`` ... of ``--many-rows`` rows
each, as a second source with its own connector.

Backlog: ``--backlog`` change events (60% updates, 25% inserts, 15% deletes of random keys) in
transactions of one table each, round robin; wait until Kafka holds them all; the baseline; then
``cdc_stream.py --available-now`` with its process tree's memory (PSS) sampled every second. Sustained
apply = the events of its apply lines / the wall time of its applies (from the start of the first to the
line of the last; applies of several tables overlap); the whole process's rate beside it. Then
``jobs/validate.py``: every table PASS.

``--writers spark,direct+spark``: then the same backlog is applied again by each of those apply paths,
each to a copy of the lake as it was before the first apply (status table included, so each starts
from the bulk copy's offsets), by one ``--available-now`` run with ``stream:`` settings that choose it:
``spark`` (``merge_writer: spark``, ``event_reader: spark``: Spark reads, decodes and MERGEs),
``direct+spark`` (``merge_writer: spark``: Python reads and decodes, Spark MERGEs), ``direct``
(``merge_writer: delta-rs``, the default of a local lake, again). Each is validated; its rate is
reported beside the first apply's, with the load average at its end.

Steady phases (latency, rate, skew, light: one ``cdc_stream.py`` in the background for all of them, in
that order; many: one of its own). Each phase writes at its rate, in transactions every 100 ms whose
table is chosen by weight, first a warm-up (``--warmup-seconds`` and 2 applies after the stream's start,
``--phase-warmup-seconds`` for the following phases), then the measured writes; then it waits until the
stream's apply lines account for every event written (drained) before the next phase. Measured: the
apply lines of the applies that started after the warm-up; latency is the stream's own per-apply
figures (source commit time -> the table's MERGE committed), event-weighted medians of the lines' p50
and p95, and the share of the applies (and of their events) the direct path applied rather than Spark
(each apply line ends with ``; by direct`` or ``; by spark``). Lag, sampled every second during the
measured writes: change events committed at the source minus change events the stream has logged as
applied (committed to the lake): what a reader of the lake does not see yet, Debezium's share
included. Its least-squares slope says whether it grows. The stream's own figure (the sum of each
table's lag in its last apply line, in Kafka messages) is sampled beside it. After the main source's steady phases and after ``many``: validate.

Report: ``reports/bench_cdc.json`` with every target as value, target and ratio
(``targets``), a summary on stdout, and cleanup (also after a failure): connectors, slots,
publications, database, this run's topics, temporary directory. Shared machines: like bench_bulk.py,
it waits (``--wait-idle``) for idle CPUs before each measured phase and reports the share of the machine
other processes used meanwhile; one benchmark at a time per PostgreSQL server.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from lib.cdc.loop.batch_line import parse_batch_line, weighted_median  # noqa: E402, F401  (tests/unit/test_bench_cdc_parse.py)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bulk import add_pg_arguments, host_memory_and_cpu, measured  # noqa: E402  (scripts/ is not a package)
from bench_cdc_infra import (  # noqa: E402
    DATABASE,
    KafkaWatch,
    _rest,
    delete_connector,
    drop_database,
    drop_slot,
    hold_bench_lock,
    pg_connect,
    table_names,
)
from bench_cdc_metrics import (  # noqa: E402
    lag_profile,
    latency_by_table,
    latency_of_tables,
    measured_after,
    skew_weights,
    spread_weights,
    summarize_batches,
    target_checks,
)
from bench_cdc_workload import MIX, PLAIN, SHAPES, Shape, Workload, split_mix, write_at_rate, write_backlog  # noqa: E402, F401
from job_watch import JobWatch  # noqa: E402
from proc_tree import RssSampler  # noqa: E402

SOURCE = "bench_cdc"
SCHEMA = "public"
MANY_SOURCE = "bench_cdc_many"
MANY_SCHEMA = "many"
STEADY_PHASES = ("latency", "rate", "skew", "light")  # in the main source's stream, in this order
PHASES = ("backlog", *STEADY_PHASES, "many")
ALIASES = {"apply": "backlog", "rate2000": "rate"}
# --writers: the stream settings that choose each apply path (lib.cdc.route) on a local lake
WRITERS: dict[str, dict[str, str]] = {
    "spark": {"merge_writer": "spark", "event_reader": "spark"},
    "direct+spark": {"merge_writer": "spark", "event_reader": "direct"},
    "direct": {"merge_writer": "delta-rs", "event_reader": "direct"},
}
# (phase, events/s, measured seconds, over which tables): the defaults are the targets' loads
PHASE_DEFAULTS = (
    ("latency", 500.0, 60.0, "spread over the tables"),
    ("rate", 2000.0, 180.0, "spread over the tables"),
    ("skew", 500.0, 60.0, "(--skew-share of them to the first table)"),
    ("light", 10.0, 60.0, "over --light-tables tables"),
    ("many", 500.0, 60.0, "over --many-hot of the --many-tables tables"),
)


@dataclass(frozen=True)
class Source:
    """One benchmark source: its name in the config, schema, tables and the run's CDC names."""

    name: str
    schema: str
    tables: tuple[str, ...]
    prefix: str  # Debezium topic prefix = slot = publication name
    shape: Shape = PLAIN  # the tables' columns, generated rows and updates

    @property
    def connector(self) -> str:
        return f"benchcdc-{self.prefix.removeprefix('benchcdc')}"

    def qualified(self, tables: Any) -> tuple[str, ...]:
        return tuple(f"{self.schema}.{t}" for t in tables)


@dataclass(frozen=True)
class PhaseSpec:
    """A steady phase: ``rate`` events/s for ``seconds`` with these table ``weights``; ``hot`` (qualified
    names) are reported apart from the other tables."""

    name: str
    rate: float
    seconds: float
    weights: dict[str, float]
    hot: tuple[str, ...] = ()
    touch_all: bool = False  # one update on every table first (their topics exist, as they do in production)


# ------------------------------------------------------------------------------------ PostgreSQL


def create_database(args: argparse.Namespace) -> None:
    drop_database(args)
    admin = pg_connect(args, "postgres", superuser=True)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {DATABASE} OWNER {args.pg_user}")
    admin.close()


def create_tables(args: argparse.Namespace, source: Source, rows: int) -> dict[str, Any]:
    """The source's tables, of its shape, holding ``rows`` rows in all, generated server-side, then VACUUM ANALYZE."""
    schema, tables, shape = source.schema, source.tables, source.shape
    started = time.monotonic()
    per_table = [rows // len(tables) + (1 if i < rows % len(tables) else 0) for i in range(len(tables))]
    db = pg_connect(args, DATABASE)
    db.autocommit = True
    try:
        with db.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '256MB'")
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            for name, n in zip(tables, per_table, strict=True):
                qualified = f"{schema}.{name}"
                cur.execute("BEGIN")
                cur.execute(shape.create_sql(qualified))
                cur.execute(shape.insert_sql(qualified), {"low": 1, "high": n})
                cur.execute("COMMIT")
                cur.execute(f"VACUUM ANALYZE {qualified}")
            cur.execute("SELECT pg_database_size(%s)", (DATABASE,))
            size = cur.fetchone()[0]
    finally:
        db.close()
    seconds = time.monotonic() - started
    print(f"setup: {len(tables)} tables in {schema} of shape {shape.name} ({len(shape.columns)} columns), {rows:,} rows generated "
          f"in {seconds:.1f}s (database {size / 2**20:,.0f} MiB)", flush=True)
    return {"tables": len(tables), "shape": shape.name, "columns": list(shape.names), "rows": rows, "rows_per_table": per_table[:3] + (["..."] if len(per_table) > 3 else []),
            "database_bytes": size, "seconds": round(seconds, 1)}


def next_ids(args: argparse.Namespace, source: Source) -> dict[str, int]:
    """The next free key per table (max(id) + 1)."""
    db = pg_connect(args, DATABASE)
    try:
        out = {}
        with db.cursor() as cur:
            for t in source.tables:
                cur.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {source.schema}.{t}")
                out[t] = int(cur.fetchone()[0])
        return out
    finally:
        db.close()


def new_workload(args: argparse.Namespace, source: Source) -> Workload:
    workload = Workload(lambda: pg_connect(args, DATABASE), source.schema, list(source.tables), next_ids(args, source), source.shape)
    workload.connect()
    return workload


# ------------------------------------------------------------------------------------ subprocesses


def job_env(args: argparse.Namespace) -> dict[str, str]:
    return dict(os.environ, SHOP_DB_PASSWORD=args.pg_password, PYTHONUNBUFFERED="1")


def job_cmd(job: str, config: Path, source: Source, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "jobs" / job), "--config", str(config), "--source", source.name, *extra]


def run_job(cmd: list[str], env: dict[str, str], log_path: Path, timeout: float, sample_memory: bool = False
            ) -> tuple[int, float, JobWatch, dict[str, Any] | None]:
    started = time.monotonic()
    job = JobWatch(cmd, env, log_path)
    sampler = RssSampler(job.proc.pid).start() if sample_memory else None
    try:
        code = job.finish(timeout)
    finally:
        memory = sampler.stop() if sampler else None
    return code, time.monotonic() - started, job, memory


# ---------------------------------------------------------------------------------------- setup


def write_config(args: argparse.Namespace, work: Path, sources: list[Source]) -> Path:
    def cdc(source: Source) -> dict[str, Any]:
        return {"topic_prefix": source.prefix, "slot_name": source.prefix, "publication_name": source.prefix,
                "connector_name": source.connector, "connect_url": args.connect_url, "password_reference": "${env:SHOP_DB_PASSWORD}"}

    connection = {"host": args.pg_host, "port": args.pg_port, "database": DATABASE, "user": args.pg_user, "password": "${SHOP_DB_PASSWORD}"}
    doc = {
        "lake": {"root": str(work / "lake"), "format": "delta"},
        "kafka": {"bootstrap_servers": args.kafka_bootstrap},
        "checkpoints": {"root": str(work / "checkpoints")},
        "bulk": {"parallel_tables": 2, "partitions": 2},
        "sources": {s.name: {"type": "postgres", "connection": connection, "schemas": [s.schema], "cdc": cdc(s)} for s in sources},
    }
    path = work / "bench_cdc.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def bulk_load(args: argparse.Namespace, config: Path, work: Path, source: Source, parallel_tables: int = 2) -> dict[str, Any]:
    connector_file = work / f"debezium_{source.name}.json"
    cmd = job_cmd("bulk_load.py", config, source, "--fresh-start", "--yes", "--connector-config", str(connector_file),
                  "--parallel-tables", str(parallel_tables))
    code, seconds, job, _ = run_job(cmd, job_env(args), work / f"bulk_load_{source.name}.log", args.job_timeout)
    if code != 0:
        print("\n".join(job.last_lines()), file=sys.stderr)
        raise RuntimeError(f"bulk_load.py --source {source.name} exited with {code} (log {job.log_path})")
    print(f"setup: bulk load of {len(source.tables)} tables + connector {source.connector} in {seconds:.1f}s", flush=True)
    return {"seconds": round(seconds, 1)}


def validate(args: argparse.Namespace, config: Path, work: Path, source: Source, label: str) -> dict[str, Any]:
    report = work / f"validation_{label}.json"
    cmd = job_cmd("validate.py", config, source, "--report", str(report))
    code, seconds, job, _ = run_job(cmd, job_env(args), work / f"validate_{label}.log", args.job_timeout)
    text = job.log_path.read_text(encoding="utf-8", errors="replace")
    verdicts = re.findall(r"^(PASS|FAIL|INFLIGHT) (\S+)", text, re.M)
    not_passed = [f"{v} {t}" for v, t in verdicts if v != "PASS"]
    lines = [ln for ln in text.splitlines() if re.match(r"(FAIL|INFLIGHT) ", ln)]
    # Its exit code alone would not do: a table in CDC that differs is INFLIGHT, not FAIL, and exit 0 allows that.
    ok = code == 0 and len(verdicts) == len(source.tables) and not not_passed
    result = {"exit_code": code, "seconds": round(seconds, 1), "tables": len(verdicts), "passed": sum(1 for v, _ in verdicts if v == "PASS"),
              "not_passed": not_passed, "lake_equals_source": ok}
    if lines:
        result["details"] = lines[:20]
    verdict = "lake equals source" if ok else "LAKE DIFFERS FROM SOURCE (or validation failed)"
    print(f"validate ({label}): exit {code}, {result['passed']}/{len(verdicts)} PASS in {seconds:.0f}s: {verdict}", flush=True)
    for line in lines[:10]:
        print(f"  {line}", flush=True)
    return result


# -------------------------------------------------------------------------------------- backlog


def backlog_phase(args: argparse.Namespace, config: Path, work: Path, source: Source, workload: Workload,
                  kafka: KafkaWatch, report: dict[str, Any]) -> str | None:
    """Write the backlog, wait for Kafka, the baseline, the --available-now apply, validate; returns what failed."""
    before = dict(workload.counts)
    events_before, started = workload.events, time.monotonic()
    # Small backlogs in smaller transactions: every table gets several of them.
    txn_size = min(args.txn_size, max(50, args.backlog // (5 * len(source.tables))))
    written = write_backlog(workload, args.backlog, txn_size)
    counts = {k: workload.counts[k] - before[k] for k in before}
    events = workload.events - events_before
    print(f"backlog: {events:,} events ({counts['update']:,} updates, {counts['insert']:,} inserts, {counts['delete']:,} deletes) "
          f"in {written['seconds']:.1f}s", flush=True)
    wait = kafka.wait_for(workload.messages, args.kafka_stall_seconds, "backlog")
    in_kafka = time.monotonic() - started
    print(f"backlog: Kafka holds all {workload.messages:,} messages {in_kafka:.1f}s after the first write: "
          f"Debezium ~{events / in_kafka:,.0f} events/s", flush=True)
    report["backlog"] = {"events": events, **counts, "kafka_messages": workload.messages, "txn_size": txn_size,
                         "write_seconds": round(written["seconds"], 1), "write_events_per_s": round(events / written["seconds"]),
                         "in_kafka_after_first_write_seconds": round(in_kafka, 1), "debezium_events_per_s": round(events / in_kafka),
                         "kafka_samples": wait["samples"]}

    base = measured(args, "baseline", lambda: kafka_read_baseline(args, source, work))
    report["baseline"] = base
    print(f"baseline: plain Spark reads the {base['events']:,} messages in {base['read_seconds']:.1f}s ({base['read_events_per_s']:,}/s), "
          f"reads and parses them in {base['parse_seconds']:.1f}s ({base['parse_events_per_s']:,}/s)", flush=True)
    before_apply = lake_versions(work, source) if args.history else {}
    if args.writers:  # the lake as the first apply finds it, for each writer's apply of the same backlog
        shutil.copytree(work / "lake", work / "lake_before_backlog", symlinks=True)
    apply = measured(args, "apply", lambda: stream_available_now(args, config, work, source, events))
    report["apply"] = apply
    print(f"apply: {apply['events']:,} events (expected {events:,}) in {apply['batches']} applies; "
          f"applies' wall time {apply.get('apply_wall_seconds') or 0:.1f}s -> {apply.get('events_per_apply_wall_second') or 0:,} events/s; "
          f"process {apply['process_seconds']:.1f}s -> {apply['events_per_process_second'] or 0:,} events/s; "
          f"peak memory (PSS) {apply['memory']['peak_pss_mib']:,} MiB; exit {apply['exit_code']}; {_direct(apply)}", flush=True)
    failed = checked_apply(args, config, work, source, events, apply, "the backlog apply", "after_backlog")
    if args.history:
        failed += history_phase(args, work, source, events, before_apply, report)
    for writer in args.writers:
        failed += writer_phase(args, work, source, events, writer, report)
    return failed


def writer_phase(args: argparse.Namespace, work: Path, source: Source, events: int, writer: str, report: dict[str, Any]) -> list[str]:
    """--writers: the same backlog applied by one apply path (``WRITERS``) to the lake as it was before
    the first apply (a copy taken then), validated; its rate beside the first apply's."""
    shutil.rmtree(work / "lake")
    shutil.copytree(work / "lake_before_backlog", work / "lake", symlinks=True)
    doc = yaml.safe_load((work / "bench_cdc.yaml").read_text(encoding="utf-8"))
    doc["stream"] = {**doc.get("stream", {}), **WRITERS[writer]}
    config = work / f"bench_cdc_{writer.replace('+', '_')}.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    label = f"writer_{writer.replace('+', '_')}"
    apply = measured(args, label, lambda: stream_available_now(args, config, work, source, events, label))
    apply["stream_settings"] = WRITERS[writer]
    apply["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report.setdefault("writers", {})[writer] = apply
    first = report["apply"]
    for key in ("events_per_apply_wall_second", "events_per_process_second"):
        apply[f"{key}_ratio_to_first_apply"] = round((apply.get(key) or 0) / first[key], 3) if first.get(key) else None
    print(f"writer {writer}: {apply['events']:,} events in {apply['batches']} applies; applies' wall time "
          f"{apply.get('apply_wall_seconds') or 0:.1f}s -> {apply.get('events_per_apply_wall_second') or 0:,} events/s; "
          f"process {apply['process_seconds']:.1f}s -> {apply['events_per_process_second'] or 0:,} events/s; "
          f"applies by path {apply.get('applies_by_path')}; load average {apply['load_average_at_end']}; exit {apply['exit_code']}", flush=True)
    return checked_apply(args, config, work, source, events, apply, f"the {writer} apply", f"after_{label}")


def checked_apply(args: argparse.Namespace, config: Path, work: Path, source: Source, events: int, apply: dict[str, Any],
                  what: str, report_label: str) -> list[str]:
    """What went wrong with one measured ``--available-now`` apply of the backlog: its exit code, the events its apply
    lines count, and the lake validated against the source afterwards (recorded in ``apply["validation"]``)."""
    failed = []
    if apply["exit_code"] != 0:
        failed.append(f"cdc_stream.py --available-now ({what}) exited with {apply['exit_code']}")
    if apply["events"] != events:
        failed.append(f"{what}: the stream's apply lines count {apply['events']:,} events, the backlog has {events:,}")
    apply["validation"] = validate(args, config, work, source, report_label)
    if not apply["validation"]["lake_equals_source"]:
        failed.append(f"lake differs from source after {what}")
    return failed


def _pipeline_tables(work: Path, source: Source) -> list[str]:
    root = work / "lake"
    return [str(root / source.name / source.schema / t) for t in source.tables] + \
        [str(root / "_pipeline" / "status"), str(root / "_pipeline" / "tombstones" / source.name), str(root / "_pipeline" / "dead_letter")]


def lake_versions(work: Path, source: Source) -> dict[str, int | None]:
    """The Delta version of each lake table, the status, tombstone and dead-letter tables (None: absent)."""
    from deltalake import DeltaTable

    out: dict[str, int | None] = {}
    for path in _pipeline_tables(work, source):
        out[path] = DeltaTable(path).version() if (Path(path) / "_delta_log").exists() else None
    return out


def history_phase(args: argparse.Namespace, work: Path, source: Source, events: int, before: dict[str, int | None],
                  report: dict[str, Any]) -> list[str]:
    """--history: the same backlog applied again to the same tables as scd2 history tables: every table
    (lake, status, tombstones, dead letters) restored to its version before the mirror apply, the
    config switched to ``cdc.history: scd2``, the stream run --available-now, validated (current rows)."""
    from deltalake import DeltaTable

    for path, version in before.items():
        if version is None:
            shutil.rmtree(path, ignore_errors=True)
        else:
            DeltaTable(path).restore(version)
    doc = yaml.safe_load((work / "bench_cdc.yaml").read_text(encoding="utf-8"))
    doc["sources"][source.name]["cdc"]["history"] = "scd2"
    config = work / "bench_cdc_history.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    apply = measured(args, "history", lambda: stream_available_now(args, config, work, source, events, "history"))
    report["history"] = apply
    mirror = report["apply"].get("events_per_apply_wall_second") or 0
    rate = apply.get("events_per_apply_wall_second") or 0
    apply["ratio_to_mirror"] = round(rate / mirror, 3) if mirror else None
    print(f"history: {apply['events']:,} events in {apply['batches']} applies as scd2 tables; applies' wall time "
          f"{apply.get('apply_wall_seconds') or 0:.1f}s -> {rate:,} events/s = {apply['ratio_to_mirror']} of the mirror's {mirror:,}; "
          f"process {apply['process_seconds']:.1f}s; exit {apply['exit_code']}; {_direct(apply)}", flush=True)
    failed = []
    if apply["exit_code"] != 0:
        failed.append(f"cdc_stream.py --available-now (history) exited with {apply['exit_code']}")
    apply["validation"] = validate(args, config, work, source, "after_history")
    if not apply["validation"]["lake_equals_source"]:
        failed.append("current history rows differ from the source after the history apply")
    return failed


def kafka_read_baseline(args: argparse.Namespace, source: Source, work: Path) -> dict[str, Any]:
    """Plain Spark reading (and parsing) the backlog's messages: the ceiling for the apply rate."""
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / "bench_kafka_read.py"), "--bootstrap", args.kafka_bootstrap,
           "--pattern", f"\\Q{source.prefix}\\E[.]{source.schema}[.].+", "--columns", ",".join(source.shape.names)]
    code, seconds, job, _ = run_job(cmd, job_env(args), work / "bench_kafka_read.log", args.job_timeout)
    result = next((json.loads(line) for line in reversed(job.last_lines(50)) if line.startswith("{")), None)
    if code != 0 or result is None:
        print("\n".join(job.last_lines()), file=sys.stderr)
        raise RuntimeError(f"bench_kafka_read.py exited with {code} (log {job.log_path})")
    return {**result, "process_seconds": round(seconds, 2)}


def stream_available_now(args: argparse.Namespace, config: Path, work: Path, source: Source, expected_events: int,
                         label: str = "available_now") -> dict[str, Any]:
    extra = ["--available-now", "--log-level", args.stream_log_level]
    if args.max_offsets_per_trigger:
        extra += ["--max-offsets-per-trigger", str(args.max_offsets_per_trigger)]
    cmd = job_cmd("cdc_stream.py", config, source, *extra)
    code, seconds, job, memory = run_job(cmd, job_env(args), work / f"cdc_stream_{label}.log", args.job_timeout, sample_memory=True)
    summary = summarize_batches(job.batches)
    result: dict[str, Any] = {"exit_code": code, "process_seconds": round(seconds, 2), **summary, "expected_events": expected_events,
                              "memory": memory}
    full = [b for b in job.batches if not b.get("empty")]
    if job.started_at is not None and full:
        span = full[-1]["at"] - job.started_at
        result["started_to_last_batch_seconds"] = round(span, 2)
        result["events_per_second_started_to_last_batch"] = round(summary["events"] / span) if span > 0 else None
    result["events_per_process_second"] = round(summary["events"] / seconds) if seconds > 0 else None
    result["per_table"] = latency_by_table(full)
    if code != 0:
        print("\n".join(job.last_lines()), file=sys.stderr)
        print(f"apply: cdc_stream.py --available-now exited with {code} (log {job.log_path})", file=sys.stderr)
    return result


# -------------------------------------------------------------------------------- steady phases


def steady_specs(args: argparse.Namespace, main: Source, many: Source) -> dict[str, PhaseSpec]:
    tables = list(main.tables)
    hot = tables[0]
    light = tables[: args.light_tables]
    many_hot = list(many.tables[: args.many_hot])
    return {
        "latency": PhaseSpec("latency", args.latency_rate, args.latency_seconds, spread_weights(tables)),
        "rate": PhaseSpec("rate", args.rate_rate, args.rate_seconds, spread_weights(tables)),
        "skew": PhaseSpec("skew", args.skew_rate, args.skew_seconds, skew_weights(tables, hot, args.skew_share), main.qualified([hot])),
        "light": PhaseSpec("light", args.light_rate, args.light_seconds, spread_weights(light), main.qualified(light)),
        "many": PhaseSpec("many", args.many_rate, args.many_seconds, spread_weights(many_hot), many.qualified(many_hot), touch_all=True),
    }


class StreamRun:
    """``jobs/cdc_stream.py`` running in the background for one or more steady phases."""

    def __init__(self, args: argparse.Namespace, config: Path, work: Path, source: Source, label: str) -> None:
        self.args = args
        extra = ["--trigger-seconds", str(args.trigger_seconds)] if args.trigger_seconds else []
        extra += ["--log-level", args.stream_log_level]
        self.job = JobWatch(job_cmd("cdc_stream.py", config, source, *extra), job_env(args), work / f"cdc_stream_{label}.log")
        self.memory = RssSampler(self.job.proc.pid).start()
        self.phases_run = 0
        if not self.job.wait_until(lambda j: j.started_at is not None or j.batches, timeout=600):
            print("\n".join(self.job.last_lines()), file=sys.stderr)
            self.job.kill()
            self.memory.stop()
            raise RuntimeError(f"cdc_stream.py did not start (exit {self.job.proc.poll()}; log {self.job.log_path})")
        self.startup_seconds = round((self.job.started_at or self.job.batches[0]["at"]) - self.job.t0, 1)
        print(f"{label}: stream started after {self.startup_seconds:.1f}s", flush=True)

    def alive(self) -> None:
        if self.job.proc.poll() is not None:
            print("\n".join(self.job.last_lines()), file=sys.stderr)
            raise RuntimeError(f"cdc_stream.py exited with {self.job.proc.returncode} during the writes (log {self.job.log_path})")

    def stop(self) -> dict[str, Any]:
        try:
            code, killed, seconds = self.job.stop(grace=60.0)
        finally:
            self.job.kill()
            memory = self.memory.stop()
        return {"startup_seconds": self.startup_seconds, "exit_code": code, "killed": killed, "stop_seconds": round(seconds, 1),
                "stopped_line": self.job.stopped_line, "memory": memory}

    def stream_lag(self) -> int:
        """The sum over tables of the lag in each table's last apply line (Kafka messages; the stream's own view)."""
        last: dict[str, int] = {}
        for b in list(self.job.batches):
            if b.get("table") is not None:
                last[b["table"]] = b["lag"]
        return sum(last.values())

    def phase(self, spec: PhaseSpec, workload: Workload, kafka: KafkaWatch) -> dict[str, Any]:
        """Warm-up, measured writes with lag samples, drain; the applies that started after the warm-up."""
        args, job = self.args, self.job
        workload.set_weights(spec.weights)
        first = self.phases_run == 0
        self.phases_run += 1
        base_idx, base_events = len(job.batches), workload.events  # drained: everything before is applied

        def applied() -> int:
            return sum(b["events"] for b in job.batches[base_idx:])

        if spec.touch_all:
            # Every table's topic exists and each quiet table has had an apply before the hot writes
            # start: the touches' one-event applies are a one-off queue (200 applies), not the steady
            # state measured; writing meanwhile would make the window measure the catch-up after it.
            touched = {f"{workload.schema}.{t}" for t in workload.tables}
            for table in workload.tables:
                workload.transaction(1, 0, 0, table=table)
            touch_started = time.monotonic()
            done = job.wait_until(lambda j: touched <= {b.get("table") for b in j.batches[base_idx:] if b["events"] > 0}, timeout=args.job_timeout)
            print(f"{spec.name}: every one of {len(touched)} tables touched and applied in {time.monotonic() - touch_started:.0f}s"
                  f"{'' if done else ' (NOT all: --job-timeout)'}", flush=True)
            base_idx, base_events = len(job.batches), workload.events
        warmup_seconds = args.warmup_seconds if first else args.phase_warmup_seconds
        print(f"{spec.name}: warming up at {spec.rate:g} events/s for at least {warmup_seconds:g}s and 2 applies", flush=True)
        carry: dict[str, float] = {}

        def warm() -> bool:
            return len([b for b in job.batches[base_idx:] if b["events"] > 0]) >= 2

        warmup = write_at_rate(workload, spec.rate, warmup_seconds, carry, self.alive, until=warm, limit=args.drain_timeout)
        warm_end = time.time()
        measured_events_before = workload.events
        samples: list[tuple[float, int, int]] = []
        t0 = time.monotonic()
        last = [-1.0]

        def tick() -> None:
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                samples.append((round(now - t0, 2), (workload.events - base_events) - applied(), self.stream_lag()))

        print(f"{spec.name}: warmed up after {warmup['seconds']:.0f}s ({warmup['events']:,} events); writing {spec.rate:g} events/s "
              f"for {spec.seconds:g}s", flush=True)
        write = write_at_rate(workload, spec.rate, spec.seconds, carry, self.alive, tick=tick)
        tick()
        commits = write["commits"]
        last_commit = commits[-1] if commits else time.time()
        events = workload.events - measured_events_before
        print(f"{spec.name}: wrote {events:,} events in {len(commits)} transactions ({events / write['seconds']:,.0f}/s); draining ...", flush=True)
        kafka_wait = kafka.wait_for(workload.messages, args.kafka_stall_seconds, spec.name)
        written = workload.events - base_events

        def drain_line(batches: list[dict[str, Any]]) -> dict[str, Any] | None:
            total = 0
            for b in batches:
                total += b["events"]
                if total >= written:
                    return b
            return None

        caught_up = job.wait_until(lambda j: drain_line(j.batches[base_idx:]) is not None, timeout=args.drain_timeout)
        new = list(job.batches[base_idx:])
        drained = drain_line(new)
        measured_lines = measured_after(new, warm_end)
        result: dict[str, Any] = {
            "rate": spec.rate, "seconds": spec.seconds, "tables_written": len(spec.weights),
            "warmup_seconds": round(warmup["seconds"], 1), "warmup_events": warmup["events"],
            "warmup_latency_p50_weighted_median_s": summarize_batches(new[: len(new) - len(measured_lines)])["latency_p50_weighted_median_s"],
            "events_written": events, "transactions": len(commits),
            "achieved_rate": round(events / write["seconds"]) if write["seconds"] > 0 else None,
            "kafka_complete_after_last_commit_seconds": round(kafka_wait["seconds"], 1),
            "caught_up": caught_up,
            "drain_seconds_after_last_commit": round(drained["at"] - last_commit, 1) if drained else None,
            **summarize_batches(measured_lines),
            "lag": lag_profile([(t, lag) for t, lag, _ in samples], spec.rate),
            "stream_lag": lag_profile([(t, lag) for t, _, lag in samples], spec.rate),
            "lag_samples": [list(s) for s in samples[:: max(1, len(samples) // 60)]],
            "per_table": latency_by_table(measured_lines),
        }
        if spec.hot:
            result["hot_tables"] = list(spec.hot)
            result["hot"] = latency_of_tables(measured_lines, spec.hot)
            result["others"] = latency_of_tables(measured_lines, spec.hot, include=False)
        p50, p95 = result["latency_p50_weighted_median_s"], result["latency_p95_weighted_median_s"]
        print(f"{spec.name}: {result['events']:,} events in {result['batches_with_events']} measured applies; p50 {_fmt(p50)}s p95 {_fmt(p95)}s; "
              f"lag start/middle/end {result['lag'].get('lag_start')}/{result['lag'].get('lag_middle')}/{result['lag'].get('lag_end')} "
              f"slope {result['lag'].get('slope_events_per_s')}/s; drained {_fmt(result['drain_seconds_after_last_commit'])}s "
              f"after the last commit; {_direct(result)}", flush=True)
        if not caught_up:
            raise RuntimeError(f"{spec.name}: the stream did not apply every event within {args.drain_timeout:.0f}s after the writes")
        return result


def steady_phases(args: argparse.Namespace, config: Path, work: Path, source: Source, workload: Workload, kafka: KafkaWatch,
                  specs: list[PhaseSpec], label: str, report: dict[str, Any]) -> list[str]:
    """One background stream for ``specs`` in order (a phase that does not drain ends the stream's
    phases: the next would not start without lag), then validate; returns what failed."""
    phases = report.setdefault("phases", {})
    run = StreamRun(args, config, work, source, label)
    failed = []
    try:
        for spec in specs:
            try:
                phases[spec.name] = measured(args, spec.name, lambda spec=spec: run.phase(spec, workload, kafka))
            except RuntimeError as exc:
                phases[spec.name] = {"measured": False, "why": str(exc)}
                failed.append(str(exc))
                break
    finally:
        stream = run.stop()
        report.setdefault("streams", {})[label] = stream
    print(f"{label}: SIGTERM -> exit {stream['exit_code']} in {stream['stop_seconds']}s{' (KILLED)' if stream['killed'] else ''}; "
          f"peak memory (PSS) {stream['memory']['peak_pss_mib']:,} MiB", flush=True)
    if stream["exit_code"] != 0 or stream["killed"]:
        failed.append(f"the {label} stream did not stop cleanly on SIGTERM (exit {stream['exit_code']}, killed {stream['killed']})")
    stream["validation"] = validate(args, config, work, source, f"after_{label}")
    if not stream["validation"]["lake_equals_source"]:
        failed.append(f"lake differs from source after the {label} phases")
    return failed


# ------------------------------------------------------------------------------------------ run


def run_id_now() -> str:
    return "benchcdc" + time.strftime("%Y%m%d%H%M%S", time.gmtime())


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    mem_kib, cpu = host_memory_and_cpu()
    versions: dict[str, Any] = {"python": platform.python_version()}
    for pkg in ("pyspark", "delta-spark", "confluent-kafka", "psycopg2-binary"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    with contextlib.suppress(Exception):
        db = pg_connect(args, "postgres")
        with db.cursor() as cur:
            cur.execute("SHOW server_version")
            versions["postgresql"] = cur.fetchone()[0]
        db.close()
    with contextlib.suppress(Exception):
        _, info = _rest(args.connect_url, "GET", "/")
        versions["kafka_connect"] = info.get("version")
        _, plugins = _rest(args.connect_url, "GET", "/connector-plugins")
        versions["debezium_postgres"] = next((p["version"] for p in plugins if "PostgresConnector" in p["class"]), None)
    return {
        "repo_commit": _git("rev-parse", "--short", "HEAD"),
        "repo_dirty_paths": len((_git("status", "--porcelain", "--", "lib", "jobs") or "").splitlines()),
        "cdc_stream_commit": _git("log", "-1", "--format=%h", "--", "jobs/cdc_stream.py") or None,
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 2**20, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "versions": versions,
    }


def _git(*argv: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO_ROOT), *argv], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cleanup(args: argparse.Namespace, sources: list[Source], kafka: dict[str, KafkaWatch], work: Path) -> None:
    """Per source connector, slot, publication, topics; then database, temporary directory; each step on its own."""
    steps: list[str] = []
    for source in sources:
        with contextlib.suppress(Exception):
            if delete_connector(args.connect_url, source.connector):
                steps.append(f"connector {source.connector}")
        try:
            admin = pg_connect(args, "postgres", superuser=True)
            admin.autocommit = True
            with admin.cursor() as cur:
                if drop_slot(cur, source.prefix):
                    steps.append(f"slot {source.prefix}")
            admin.close()
        except Exception as exc:  # noqa: BLE001 - go on with the rest
            print(f"cleanup: could not drop slot {source.prefix}: {exc}", file=sys.stderr)
        with contextlib.suppress(Exception):
            db = pg_connect(args, DATABASE)
            db.autocommit = True
            with db.cursor() as cur:
                cur.execute(f'DROP PUBLICATION IF EXISTS "{source.prefix}"')
            db.close()
            steps.append(f"publication {source.prefix}")
        watch = kafka.get(source.name)
        if watch is not None and not args.keep:
            with contextlib.suppress(Exception):
                deleted = watch.delete_topics(source.prefix)
                steps.append(f"{len(deleted)} topic(s) {source.prefix}.*")
    if not args.keep:
        try:
            drop_database(args)
            steps.append(f"database {DATABASE}")
        except Exception as exc:  # noqa: BLE001
            print(f"cleanup: could not drop database {DATABASE}: {exc}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        steps.append("temporary directory")
    else:
        print(f"kept: database {DATABASE}, topics, {work}")
    print("cleanup: removed " + (", ".join(steps) or "nothing"), flush=True)


def main() -> int:
    args = parse_args()
    lock = hold_bench_lock(args)
    total_started = time.monotonic()
    run_id = run_id_now()
    shape = SHAPES[args.shape]
    main_src = Source(SOURCE, SCHEMA, tuple(table_names(args.tables)), run_id, shape)
    many_src = Source(MANY_SOURCE, MANY_SCHEMA, tuple(table_names(args.many_tables, "m")), f"{run_id}_many", shape)
    specs = steady_specs(args, main_src, many_src)
    work = Path(tempfile.mkdtemp(prefix="bench_cdc_", dir="/tmp"))
    sources: list[Source] = []
    kafka: dict[str, KafkaWatch] = {}
    report: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items() if not k.startswith("pg_") and k != "output"},
        "machine": machine_info(args),
    }
    report["settings"].update(mix=dict(MIX), run_id=run_id, phase_specs={
        n: {"rate": s.rate, "seconds": s.seconds, "tables_written": len(s.weights), "hot": list(s.hot)} for n, s in specs.items()})
    failed: list[str] = []  # what went wrong; the other phases still run
    try:
        if args.pg_password != "loader" and not os.environ.get("SHOP_DB_PASSWORD"):
            print("note: the Connect worker of `make up` reads the password from its SHOP_DB_PASSWORD", flush=True)
        create_database(args)
        sources = [main_src] if args.phases & {"backlog", *STEADY_PHASES} else []
        sources += [many_src] if "many" in args.phases else []
        config = write_config(args, work, sources)
        report["setup"] = {}
        if main_src in sources:
            report["setup"]["main"] = create_tables(args, main_src, args.rows)
            report["setup"]["main"]["bulk_load_seconds"] = bulk_load(args, config, work, main_src)["seconds"]
            kafka[main_src.name] = KafkaWatch(args.kafka_bootstrap, main_src.prefix, main_src.schema)
            workload = new_workload(args, main_src)
            try:
                if "backlog" in args.phases:
                    failed += backlog_phase(args, config, work, main_src, workload, kafka[main_src.name], report)
                steady = [specs[n] for n in STEADY_PHASES if n in args.phases]
                if steady:
                    failed += steady_phases(args, config, work, main_src, workload, kafka[main_src.name], steady, "main", report)
            finally:
                workload.close()
        if many_src in sources:
            report["setup"]["many"] = create_tables(args, many_src, args.many_tables * args.many_rows)
            report["setup"]["many"]["bulk_load_seconds"] = bulk_load(args, config, work, many_src, args.many_parallel_tables)["seconds"]
            kafka[many_src.name] = KafkaWatch(args.kafka_bootstrap, many_src.prefix, many_src.schema)
            workload = new_workload(args, many_src)
            try:
                failed += steady_phases(args, config, work, many_src, workload, kafka[many_src.name], [specs["many"]], "many", report)
            finally:
                workload.close()
    except Exception as exc:  # noqa: BLE001 - report, clean up, exit 1
        failed.append(f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        print(f"bench_cdc: FAILED: {failed[-1]}", file=sys.stderr)
    finally:
        report["failed"] = "; ".join(failed) or None
        report["targets"] = target_checks(report)
        report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        report["benchmark_seconds"] = round(time.monotonic() - total_started, 1)
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        print_summary(report)
        print(f"\nreport: {out}  (benchmark took {report['benchmark_seconds']:.0f}s)", flush=True)
        if (failed or args.keep_logs) and not args.keep:
            keep_logs(work)
        try:
            cleanup(args, sources, kafka, work)
        finally:
            for watch in kafka.values():
                watch.close()
            lock.close()
    return 1 if failed else 0


def keep_logs(work: Path) -> None:
    """Copy the job logs (and the Delta log of the first lake table: MERGE metrics) out of the temporary directory."""
    logs = sorted(work.glob("*.log"))
    if logs:
        dest = Path(tempfile.mkdtemp(prefix="bench_cdc_logs_", dir="/tmp"))
        for log in logs:
            shutil.copy2(log, dest / log.name)
        first = table_names(1)[0]
        delta_log = work / "lake" / SOURCE / SCHEMA / first / "_delta_log"
        if delta_log.is_dir():
            shutil.copytree(delta_log, dest / f"{first}_delta_log", ignore=shutil.ignore_patterns("*.crc", "*.checkpoint*"))
        print(f"job logs kept in {dest}", file=sys.stderr, flush=True)


# -------------------------------------------------------------------------------------- summary


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def _direct(figures: dict[str, Any]) -> str:
    """The direct path's share of the applies and of their events, as the summary says it."""
    applies, events = figures.get("direct_share_applies"), figures.get("direct_share_events")
    if applies is None:
        return "by direct: - (no apply line says who applied it)"
    share = f"by direct: {100 * applies:.0f}% of the applies, {100 * (events or 0):.0f}% of the events"
    others = [(path, n) for path, n in (figures.get("applies_by_path") or {}).items() if path != "direct"]
    if not others:
        return share
    return share + "".join(f" ({'Spark' if path == 'spark' else path}: {n['applies']} appl{'y' if n['applies'] == 1 else 'ies'}, {n['events']:,} events)"
                           for path, n in others)


def _row(label: str, seconds: float | None, rate: Any, unit: str = "events/s") -> str:
    return f"{label:<52}{_fmt(seconds):>9}s {rate or 0:>12,} {unit}"


def print_summary(report: dict[str, Any]) -> None:
    print()
    s, m = report["settings"], report["machine"]
    print(f"machine: {m['nproc']} CPU(s) {m['cpu']}, {m['memory_gib']} GiB; load average {m['load_average_at_start']} at the start, "
          f"{report.get('load_average_at_end')} at the end; repo {m['repo_commit']} ({m['repo_dirty_paths']} changed path(s) under lib/ and jobs/)")
    data = [f"{s['rows']:,} rows in {s['tables']} tables"] if set(s["phases"]) - {"many"} else []
    data += [f"backlog {s['backlog']:,} events"] if "backlog" in s["phases"] else []
    data += [f"{s['many_tables']} tables of {s['many_rows']:,} rows, {s['many_hot']} written"] if "many" in s["phases"] else []
    print(f"data: {'; '.join(data)}; shape {s.get('shape', 'plain')}; phases {', '.join(s['phases'])}")
    b, base, a = report.get("backlog"), report.get("baseline") or {}, report.get("apply") or {}
    if b:
        print(_row("backlog written", b["write_seconds"], b["write_events_per_s"]))
        print(_row("Debezium: all in Kafka after the first write", b["in_kafka_after_first_write_seconds"], b["debezium_events_per_s"]))
    if base.get("events") is not None:
        print(_row("baseline: plain Spark reads the messages", base["read_seconds"], base["read_events_per_s"], "messages/s"))
        print(_row("baseline: ... and parses their payloads", base["parse_seconds"], base["parse_events_per_s"], "messages/s"))
    if a.get("events") is not None:
        print(_row("apply --available-now, whole process", a["process_seconds"], a["events_per_process_second"]))
        print(_row("apply, wall time of the applies (sustained)", a.get("apply_wall_seconds"), a.get("events_per_apply_wall_second")))
        print(_row("apply, sum of the applies' own seconds", a["batch_seconds"], a["events_per_batch_second"]))
        print(f"  {a['events']:,} events in {a['batches']} applies; inserted {a['inserted']:,} updated {a['updated']:,} deleted {a['deleted']:,} "
              f"skipped {a['skipped']:,} dead-lettered {a['dead_lettered']:,}; other CPU {100 * a.get('other_cpu_share', 0):.0f}%")
        print(f"  {_direct(a)}")
        mem = a.get("memory") or {}
        print(f"  peak memory of the stream's process tree: PSS {mem.get('peak_pss_mib', 0):,} MiB {mem.get('peak_pss_by_command_mib')} "
              f"(sum of RSS {mem.get('peak_rss_sum_mib', 0):,} MiB)")
        v = a.get("validation") or {}
        if v:
            print(f"  validate: exit {v['exit_code']}, {v['passed']}/{v['tables']} PASS")
    h = report.get("history") or {}
    if h.get("events") is not None:
        print(_row("history (scd2), same backlog, wall time of the applies", h.get("apply_wall_seconds"), h.get("events_per_apply_wall_second")))
        print(f"  {h['events']:,} events in {h['batches']} applies; {h.get('ratio_to_mirror')} of the mirror's rate (target >= 0.5); "
              f"validate {(h.get('validation') or {}).get('passed')}/{(h.get('validation') or {}).get('tables')} PASS; {_direct(h)}")
    for name, ph in (report.get("phases") or {}).items():
        if ph.get("events") is None:
            print(f"{name}: not measured ({ph.get('why')})")
            continue
        lag = ph.get("lag") or {}
        print(f"{name}: {ph['achieved_rate']:,} events/s to {ph['tables_written']} table(s) for {ph['seconds']:g}s after a "
              f"{ph['warmup_seconds']:.0f}s warm-up; {ph['batches_with_events']} measured applies; p50 {_fmt(ph['latency_p50_weighted_median_s'])}s "
              f"p95 {_fmt(ph['latency_p95_weighted_median_s'])}s (worst {_fmt(ph['latency_p95_max_s'])}s); other CPU {100 * ph.get('other_cpu_share', 0):.0f}%")
        print(f"  {_direct(ph)}")
        if "hot" in ph:
            print(f"  hot {', '.join(ph['hot_tables'][:5])}: p50 {_fmt(ph['hot']['latency_p50_weighted_median_s'])}s "
                  f"p95 {_fmt(ph['hot']['latency_p95_weighted_median_s'])}s; the other tables: p50 {_fmt(ph['others']['latency_p50_weighted_median_s'])}s "
                  f"p95 {_fmt(ph['others']['latency_p95_weighted_median_s'])}s ({ph['others']['latency_events']:,} events)")
        print(f"  lag (events committed at the source, not yet applied) start/middle/end/max {lag.get('lag_start')}/{lag.get('lag_middle')}/"
              f"{lag.get('lag_end')}/{lag.get('lag_max')}, slope {lag.get('slope_events_per_s')}/s; "
              f"drained {_fmt(ph['drain_seconds_after_last_commit'])}s after the last commit")
    for label, st in (report.get("streams") or {}).items():
        v = st.get("validation") or {}
        print(f"stream '{label}': started in {st['startup_seconds']}s, SIGTERM -> exit {st['exit_code']} in {st['stop_seconds']}s"
              f"{' (KILLED)' if st['killed'] else ''}; peak memory (PSS) {st['memory']['peak_pss_mib']:,} MiB; "
              f"validate: exit {v.get('exit_code')}, {v.get('passed')}/{v.get('tables')} PASS")
    print("\ntargets (value, target, value/target):")
    for t in report.get("targets") or []:
        verdict = "not measured" if t["met"] is None else ("met" if t["met"] else "NOT MET")
        value = "-" if t["value"] is None else f"{t['value']:,}"
        target = "-" if t["target"] is None else f"{t['target']:,}"
        print(f"  {t['what']:<82} {value:>10} {t['op']} {target:<8} {t['unit']:<9} ratio {t['ratio_to_target'] if t['ratio_to_target'] is not None else '-':<6} {verdict}")
    if report.get("failed"):
        print(f"FAILED: {report['failed']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark the CDC stream against its latency and throughput targets.")
    p.add_argument("--phases", default=",".join(PHASES),
                   help=f"which of {','.join(PHASES)} to run (default all; apply = backlog, rate2000 = rate)")
    p.add_argument("--rows", type=int, default=5_000_000, help="rows over the main tables (default 5,000,000)")
    p.add_argument("--tables", type=int, default=20, help="main tables (default 20)")
    p.add_argument("--shape", default="plain", choices=sorted(SHAPES),
                   help="the tables' columns: plain (7 columns: bigint key, int, numeric(12,2), text, timestamptz, boolean, int; the default) "
                        "or mixed (those and 12 more: text[], int[], real, jsonb, uuid, inet, date, bytea, smallint, boolean, "
                        "numeric without precision, varchar(40), with NULLs, empty arrays and NULLs inside arrays)")
    p.add_argument("--backlog", type=int, default=1_000_000, help="change events in the backlog (default 1,000,000)")
    p.add_argument("--txn-size", type=int, default=2000, help="rows changed per backlog transaction (default 2000)")
    p.add_argument("--max-offsets-per-trigger", type=int, help="passed to the --available-now run (default: the stream's)")
    p.add_argument("--history", action="store_true",
                   help="backlog phase: then restore the tables and apply the same backlog again as cdc.history: scd2 tables (ratio to the mirror)")
    p.add_argument("--writers", default="", help="backlog phase: then apply the same backlog again by each of these apply paths, "
                   f"comma-separated, among {','.join(WRITERS)} (each to a copy of the lake before the first apply; default none)")
    p.add_argument("--trigger-seconds", type=float, help="the stream's trigger in the steady phases (default: the stream's)")
    p.add_argument("--warmup-seconds", type=float, default=60.0,
                   help="warm-up writes of a stream's first phase: at least this long and 2 applies (default 60)")
    p.add_argument("--phase-warmup-seconds", type=float, default=20.0,
                   help="warm-up writes of the following phases at their own rate (default 20)")
    for phase, rate, seconds, what in PHASE_DEFAULTS:
        old = ["--steady-rate"] if phase == "latency" else []  # the flags of the issue-4 benchmark
        p.add_argument(f"--{phase}-rate", *old, type=float, default=rate, help=f"{phase} phase: events/s {what} (default {rate:g})")
        p.add_argument(f"--{phase}-seconds", *(["--steady-seconds"] if old else []), type=float, default=seconds,
                       help=f"{phase} phase: seconds of measured writes (default {seconds:g})")
    p.add_argument("--skew-share", type=float, default=0.9, help="skew phase: share of the events to the first table (default 0.9)")
    p.add_argument("--light-tables", type=int, default=3, help="light phase: tables written (default 3)")
    p.add_argument("--many-tables", type=int, default=200, help="many phase: tables of the second source (default 200)")
    p.add_argument("--many-rows", type=int, default=1000, help="many phase: rows per table (default 1000)")
    p.add_argument("--many-parallel-tables", type=int, default=4,
                   help="many phase: tables its bulk load copies at once (default 4: small tables, the time is per-table overhead)")
    p.add_argument("--many-hot", type=int, default=5, help="many phase: tables written (default 5)")
    p.add_argument("--job-timeout", type=float, default=3600.0, help="seconds a job subprocess may take (default 3600)")
    p.add_argument("--kafka-stall-seconds", type=float, default=180.0, help="fail when Kafka gets nothing new for this long (default 180)")
    p.add_argument("--drain-timeout", type=float, default=600.0, help="seconds the stream may take to catch up after a phase's writes")
    p.add_argument("--output", default=str(REPO_ROOT / "reports" / "bench_cdc.json"), help="JSON report (default reports/bench_cdc.json)")
    p.add_argument("--wait-idle", type=float, default=120.0, metavar="SECONDS",
                   help="wait up to this long for idle CPUs before each measured phase (0: do not)")
    p.add_argument("--keep", action="store_true", help="keep the database, topics and temporary directory (connectors and slots are always removed)")
    p.add_argument("--stream-log-level", default="INFO", choices=["DEBUG", "INFO"],
                   help="log level of the streams, backlog and steady phases (DEBUG adds per-apply timings; default INFO)")
    p.add_argument("--keep-logs", action="store_true", help="copy the job logs out of the temporary directory even when the run succeeds")
    add_pg_arguments(p)
    p.add_argument("--kafka-bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--connect-url", default=os.environ.get("CONNECT_URL", "http://127.0.0.1:8083"))
    args = p.parse_args(argv)
    args.phases = parse_phases(args.phases, p.error)
    args.writers = [w.strip() for w in args.writers.split(",") if w.strip()]
    if set(args.writers) - set(WRITERS):
        p.error(f"--writers: unknown {', '.join(sorted(set(args.writers) - set(WRITERS)))} (expected some of {','.join(WRITERS)})")
    positive = ("rows", "tables", "backlog", "txn_size", "latency_rate", "latency_seconds", "rate_rate", "rate_seconds", "skew_rate",
                "skew_seconds", "light_rate", "light_tables", "light_seconds", "many_tables", "many_rows", "many_parallel_tables", "many_hot", "many_rate", "many_seconds")
    bad = [f"--{k.replace('_', '-')}" for k in positive if getattr(args, k) <= 0]
    if bad:
        p.error(f"{', '.join(bad)}: must be positive")
    if args.rows < args.tables:
        p.error("--rows must be at least --tables")
    if args.light_tables > args.tables or args.many_hot > args.many_tables:
        p.error("--light-tables must be at most --tables, --many-hot at most --many-tables")
    if not 0 < args.skew_share <= 1 or (args.tables < 2 and args.skew_share < 1):
        p.error("--skew-share must be in (0, 1] (1 with a single table)")
    return args


def parse_phases(text: str, error: Any) -> set[str]:
    """The phases named in ``text`` (comma-separated; aliases resolved; "none" for none)."""
    names = {ALIASES.get(x.strip(), x.strip()) for x in text.split(",") if x.strip() and x.strip() != "none"}
    unknown = names - set(PHASES)
    if unknown:
        error(f"--phases: unknown {', '.join(sorted(unknown))} (expected some of {','.join(PHASES)})")
    return names


if __name__ == "__main__":
    sys.exit(main())
