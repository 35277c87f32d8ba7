#!/usr/bin/env python3
"""Benchmark: the CDC stream (issue 4) -- backlog apply throughput and steady-state latency (not a test).

Usage:  .venv/bin/python scripts/bench_cdc.py [--rows 5000000] [--tables 20] [--backlog 1000000]
                                              [--steady-rate 500] [--steady-seconds 60]      (or `make bench`)

Needs the local stack of `make up` (PostgreSQL, Kafka, Kafka Connect with Debezium). This process never
starts a JVM: every Spark job runs as a subprocess, exactly as a user runs it.

1. setup    Database ``bench_cdc`` (dropped first if it exists; owner ``loader``) with ``--tables`` tables
            ``public.t01`` ... holding ``--rows`` rows in all (bigint primary key, int, numeric(12,2),
            text, timestamptz, boolean, int), generated server-side with ``generate_series``, then
            ``VACUUM ANALYZE``. A temporary config (lake, checkpoints under a fresh temporary directory;
            ``cdc`` with a topic prefix, slot, publication and connector unique to this run) and
            ``jobs/bulk_load.py --fresh-start --yes --connector-config <tmp>/debezium.json``: the lake copy
            plus the Debezium connector streaming from the snapshot's slot. Timed, not a CDC measurement.
2. backlog  ``--backlog`` change events (about 60% updates, 25% inserts, 15% deletes of random keys),
            written server-side in transactions of ``--txn-size`` rows (fewer for small backlogs, so every
            table gets about five), one table per transaction, round robin; the exact counts come from each
            statement's row count. Then the benchmark waits until
            Kafka holds them all: the end offsets of the ``<prefix>.public.*`` topics must add up to
            inserts + updates + 2 x deletes (a delete is followed by a tombstone). Reported: write time and
            Debezium's production rate (change events into Kafka per second, from the first write).
3. apply    ``jobs/cdc_stream.py --available-now``: whole-process wall time (JVM start included), the span
            from its "cdc stream started" line to its last batch line, and the sum of its batches' own
            seconds, with events/s for each; the events applied must equal the backlog's change events.
            Then ``jobs/validate.py``: every table must be PASS (its exit code alone is not enough: a
            table in CDC is reported INFLIGHT, not FAIL, when it differs, and exit code 0 allows that).
4. latency  ``jobs/cdc_stream.py --trigger-seconds 5`` in the background; once it has started, a steady
            ``--steady-rate`` events/s in small transactions every 100 ms for ``--steady-seconds``; then
            wait until Kafka holds everything and the stream's batch lines show all of it applied (the lag
            the stream logged then is reported, expected 0); SIGTERM (SIGKILL after 60 s). Latency is the stream's own per-batch p50/p95, which
            measure *source commit time (Debezium source.ts_ms) -> MERGE committed*; reported as their
            event-weighted medians over the batches. Measured here from outside: the drain time, from the
            last write's commit to the log line of the batch that completes it. Then validate again.
5. A summary, ``reports/bench_cdc.json``, and cleanup (also after a failure): connector (stop, erase its
   offsets, delete), replication slot, publication, database, this run's Kafka topics, temporary dir.

While ``jobs/cdc_stream.py`` does not exist, phases 3 and 4 are reported as not measured.
Shared machines: like bench_bulk.py, it waits (``--wait-idle``) for idle CPUs before the measured phases
and reports the share of the machine other processes used meanwhile; one benchmark at a time per
PostgreSQL server (the same advisory lock as bench_bulk.py).
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
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from lib.cdc.batch_line import parse_batch_line, weighted_median  # noqa: E402, F401  (parse_batch_line: tests/unit/test_bench_cdc_parse.py)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bulk import add_pg_arguments, host_memory_and_cpu, measured  # noqa: E402  (scripts/ is not a package)
from job_watch import JobWatch  # noqa: E402

DATABASE = "bench_cdc"
SOURCE = "bench_cdc"
SCHEMA = "public"
LOCK_KEY = 0x62656E6368  # the same advisory lock as bench_bulk.py: one benchmark at a time per server
MIX = (("update", 0.60), ("insert", 0.25), ("delete", 0.15))

COLUMNS = (("id", "bigint PRIMARY KEY"), ("a", "int"), ("amount", "numeric(12,2)"), ("note", "text"), ("created_at", "timestamptz"),
           ("flag", "boolean"), ("qty", "int"))
CREATE_SQL = "CREATE TABLE {table} (\n" + ",\n".join(f"    {name} {kind}" for name, kind in COLUMNS) + "\n)"
# Values vary with the key; no random() in the initial data, so reruns start from identical tables.
# (%% is a literal % for psycopg2: the query always gets parameters.)
ROW_SELECT = """
SELECT g,
       ((g * 7919) %% 1000003)::int,
       (((g * 104729) %% 10000000) / 100.0)::numeric(12,2),
       'row ' || g || ' ' || substr(md5(g::text), 1, 8 + (g %% 17)::int),
       timestamptz '2020-01-01 00:00:00+00' + g * interval '7 seconds',
       g %% 3 = 0,
       (g %% 97)::int
FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS g"""
RANDOM_KEYS = "ARRAY(SELECT 1 + floor(random() * %(hi)s)::bigint FROM generate_series(1, %(n)s))"
UPDATE_SQL = (
    "UPDATE {table} SET a = a + 1, amount = amount + 1.25, note = 'upd ' || substr(md5(random()::text), 1, 12), "
    "created_at = now(), flag = NOT flag, qty = qty + 1 WHERE id = ANY(" + RANDOM_KEYS + ")"
)
DELETE_SQL = "DELETE FROM {table} WHERE id = ANY(" + RANDOM_KEYS + ")"
INSERT_SQL = "INSERT INTO {table} " + ROW_SELECT


# ------------------------------------------------------------------------------- stream log (pure)

def summarize_batches(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of parsed batch lines (pure): events, seconds, operation counts, event-weighted latencies."""
    full = [b for b in batches if not b.get("empty")]
    events = sum(b["events"] for b in full)
    seconds = sum(b["seconds"] for b in full)
    out: dict[str, Any] = {
        "batches": len(batches),
        "batches_with_events": sum(1 for b in full if b["events"] > 0),
        "events": events,
        "batch_seconds": round(seconds, 2),
        "events_per_batch_second": round(events / seconds) if seconds > 0 else None,
    }
    for key in ("inserted", "updated", "deleted", "skipped", "dead_lettered"):
        out[key] = sum(b[key] for b in full)
    weighted = [b for b in full if b["events"] > 0]
    out["latency_p50_weighted_median_s"] = weighted_median([(b["p50"], b["events"]) for b in weighted])
    out["latency_p95_weighted_median_s"] = weighted_median([(b["p95"], b["events"]) for b in weighted])
    out["latency_p95_max_s"] = max((b["p95"] for b in weighted), default=None)
    return out


# ------------------------------------------------------------------------------------ PostgreSQL


def pg_connect(args: argparse.Namespace, database: str, superuser: bool = False) -> Any:
    user, password = (args.pg_superuser, args.pg_superuser_password) if superuser else (args.pg_user, args.pg_password)
    return psycopg2.connect(host=args.pg_host, port=args.pg_port, dbname=database, user=user, password=password, connect_timeout=10)


def table_names(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"t{i:0{width}d}" for i in range(1, count + 1)]


def hold_bench_lock(args: argparse.Namespace) -> Any:
    db = pg_connect(args, "postgres", superuser=True)
    db.autocommit = True
    with db.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
        if not cur.fetchone()[0]:
            print("another benchmark (bench_bulk.py or bench_cdc.py) runs against this server: waiting ...", flush=True)
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    return db


def drop_database(args: argparse.Namespace) -> None:
    """Drop ``bench_cdc`` and what would keep it alive: leftover benchmark connectors and its slots."""
    for name in connectors(args.connect_url):
        if name.startswith("benchcdc-"):
            print(f"cleanup: deleting leftover connector {name}", flush=True)
            delete_connector(args.connect_url, name)
    admin = pg_connect(args, "postgres", superuser=True)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT slot_name FROM pg_replication_slots WHERE database = %s", (DATABASE,))
            for (slot,) in cur.fetchall():
                drop_slot(cur, slot)
            cur.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    finally:
        admin.close()


def drop_slot(cur: Any, slot: str, wait: float = 30.0) -> bool:
    """Drop a replication slot once no walsender uses it (terminating the user after ``wait`` s)."""
    deadline = time.monotonic() + wait
    while True:
        cur.execute("SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,))
        row = cur.fetchone()
        if row is None:
            return False
        active, pid = row
        if not active:
            cur.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return True
        if time.monotonic() > deadline:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.5)


def create_data(args: argparse.Namespace, tables: list[str]) -> dict[str, Any]:
    started = time.monotonic()
    drop_database(args)
    admin = pg_connect(args, "postgres", superuser=True)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {DATABASE} OWNER {args.pg_user}")
    admin.close()
    per_table = [args.rows // len(tables) + (1 if i < args.rows % len(tables) else 0) for i in range(len(tables))]
    db = pg_connect(args, DATABASE)
    db.autocommit = True
    try:
        with db.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '256MB'")
            for name, rows in zip(tables, per_table, strict=True):
                qualified = f"{SCHEMA}.{name}"
                cur.execute("BEGIN")
                cur.execute(CREATE_SQL.format(table=qualified))
                cur.execute(INSERT_SQL.format(table=qualified), {"low": 1, "high": rows})
                cur.execute("COMMIT")
                cur.execute(f"VACUUM ANALYZE {qualified}")
            cur.execute("SELECT pg_database_size(%s)", (DATABASE,))
            size = cur.fetchone()[0]
    finally:
        db.close()
    seconds = time.monotonic() - started
    print(f"setup: {len(tables)} tables, {args.rows:,} rows ({size / 2**20:,.0f} MiB) generated in {seconds:.1f}s", flush=True)
    return {"tables": len(tables), "rows": args.rows, "rows_per_table": per_table, "database_bytes": size, "seconds": round(seconds, 1)}


@dataclass
class Workload:
    """Writes change events server-side, one table per transaction, round robin; counts what happened."""

    args: argparse.Namespace
    tables: list[str]
    next_id: dict[str, int]
    counts: dict[str, int] = field(default_factory=lambda: {"update": 0, "insert": 0, "delete": 0})
    transactions: int = 0
    _turn: int = 0
    _conn: Any = None

    def connect(self) -> None:
        self._conn = pg_connect(self.args, DATABASE)
        self._conn.autocommit = False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def transaction(self, update: int, insert: int, delete: int) -> dict[str, int]:
        """One transaction on the next table: ``update`` random existing keys, ``insert`` new keys, then
        ``delete`` random existing keys (a key that is gone, or drawn twice, changes nothing: the counts are
        the statements' row counts). Deletes come last, so a table's topic often ends with a tombstone, as
        it does in real workloads. Returns what it changed."""
        table = self.tables[self._turn % len(self.tables)]
        self._turn += 1
        qualified = f"{SCHEMA}.{table}"
        hi = self.next_id[table] - 1
        done = {"update": 0, "insert": 0, "delete": 0}
        with self._conn.cursor() as cur:
            if update > 0:
                cur.execute(UPDATE_SQL.format(table=qualified), {"hi": hi, "n": update})
                done["update"] = cur.rowcount
            if insert > 0:
                low = self.next_id[table]
                cur.execute(INSERT_SQL.format(table=qualified), {"low": low, "high": low + insert - 1})
                done["insert"] = cur.rowcount
                self.next_id[table] = low + insert
            if delete > 0:
                cur.execute(DELETE_SQL.format(table=qualified), {"hi": hi, "n": delete})
                done["delete"] = cur.rowcount
        self._conn.commit()
        self.transactions += 1
        for k, v in done.items():
            self.counts[k] += v
        return done

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    @property
    def messages(self) -> int:
        """Kafka messages these changes produce: one per change, plus a tombstone per delete."""
        return self.events + self.counts["delete"]


def split_mix(n: int, carry: dict[str, float]) -> dict[str, int]:
    """``n`` events as updates / inserts / deletes in the MIX ratios; fractions carry to the next call (pure)."""
    out = {}
    for op, share in MIX:
        carry[op] = carry.get(op, 0.0) + n * share
        out[op] = int(carry[op])
        carry[op] -= out[op]
    return out


def write_backlog(workload: Workload, total: int, txn_size: int) -> dict[str, Any]:
    """Exactly ``total`` change events (deficits from missed random keys are made up in later transactions)."""
    target = {op: round(total * share) for op, share in MIX}
    target["update"] += total - sum(target.values())
    started = time.monotonic()
    last_print = started
    while True:
        remaining = {op: target[op] - workload.counts[op] for op in target}
        left = sum(max(v, 0) for v in remaining.values())
        if left <= 0:
            break
        scale = min(1.0, txn_size / left)
        request = {op: max(0, round(max(v, 0) * scale)) for op, v in remaining.items()}
        if sum(request.values()) == 0:
            request = {op: (1 if v > 0 else 0) for op, v in remaining.items()}
        workload.transaction(request["update"], request["insert"], request["delete"])
        if time.monotonic() - last_print > 10:
            last_print = time.monotonic()
            print(f"backlog: {workload.events:,}/{total:,} events written", flush=True)
    seconds = time.monotonic() - started
    return {"seconds": seconds, "transactions": workload.transactions}


# ------------------------------------------------------------------------------------------ Kafka


class KafkaWatch:
    """Total end offsets of this run's ``<prefix>.<schema>.*`` topics."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        from confluent_kafka import Consumer
        from confluent_kafka.admin import AdminClient

        self.prefix = f"{prefix}.{SCHEMA}."
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"bench_cdc_watch_{os.getpid()}", "enable.auto.commit": False}
        )

    def end_offsets(self) -> dict[str, int]:
        from confluent_kafka import TopicPartition

        meta = self.admin.list_topics(timeout=10)
        out = {}
        for name, topic in meta.topics.items():
            if not name.startswith(self.prefix):
                continue
            total = 0
            for partition in topic.partitions:
                _low, high = self.consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=10, cached=False)
                total += high
            out[name] = total
        return out

    def total(self) -> int:
        return sum(self.end_offsets().values())

    def wait_for(self, expected: int, stall_seconds: float, label: str) -> dict[str, Any]:
        """Poll until the topics hold ``expected`` messages; fail when nothing new arrives for ``stall_seconds``."""
        samples = []
        started = time.monotonic()
        last_change, last_total, last_print = started, -1, started
        while True:
            total = self.total()
            now = time.monotonic()
            samples.append((round(now - started, 1), total))
            if total != last_total:
                last_change, last_total = now, total
            if total >= expected:
                break
            if now - last_change > stall_seconds:
                raise RuntimeError(f"{label}: Kafka holds {total:,} of {expected:,} expected messages, none new for {stall_seconds:.0f}s")
            if now - last_print > 10:
                last_print = now
                print(f"{label}: Kafka holds {total:,}/{expected:,} messages", flush=True)
            time.sleep(0.5)
        return {"messages": total, "seconds": time.monotonic() - started, "samples": samples[:: max(1, len(samples) // 60)]}

    def close(self) -> None:
        self.consumer.close()

    def delete_topics(self, prefix: str) -> list[str]:
        meta = self.admin.list_topics(timeout=10)
        names = [n for n in meta.topics if n.startswith(f"{prefix}.") or n == f"__debezium-heartbeat.{prefix}"]
        if names:
            for fut in self.admin.delete_topics(names, operation_timeout=30).values():
                with contextlib.suppress(Exception):
                    fut.result()
        return names


# ------------------------------------------------------------------------------- Kafka Connect REST


def _rest(base: str, method: str, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(f"{base.rstrip('/')}{path}", method=method, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def connectors(base: str) -> list[str]:
    try:
        code, payload = _rest(base, "GET", "/connectors")
    except (urllib.error.URLError, OSError) as exc:
        raise SystemExit(f"Kafka Connect at {base} does not answer ({exc}): run `make up`") from None
    return list(payload) if code == 200 else []


def delete_connector(base: str, name: str) -> bool:
    """Stop the connector, erase its stored offsets, delete it. True when it existed."""
    path = "/connectors/" + urllib.parse.quote(name, safe="")
    code, _ = _rest(base, "GET", f"{path}/status")
    if code == 404:
        return False
    code, _ = _rest(base, "PUT", f"{path}/stop")
    if code in (202, 204):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            code, status = _rest(base, "GET", f"{path}/status")
            if code != 200 or (status or {}).get("connector", {}).get("state") == "STOPPED":
                break
            time.sleep(0.5)
        _rest(base, "DELETE", f"{path}/offsets")
    code, _ = _rest(base, "DELETE", path)
    return code == 204


# ------------------------------------------------------------------------------------ subprocesses


def job_env(args: argparse.Namespace) -> dict[str, str]:
    return dict(os.environ, SHOP_DB_PASSWORD=args.pg_password, PYTHONUNBUFFERED="1")


def job_cmd(job: str, config: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "jobs" / job), "--config", str(config), "--source", SOURCE, *extra]


def run_job(cmd: list[str], env: dict[str, str], log_path: Path, timeout: float) -> tuple[int, float, JobWatch]:
    started = time.monotonic()
    job = JobWatch(cmd, env, log_path)
    code = job.finish(timeout)
    return code, time.monotonic() - started, job


# -------------------------------------------------------------------------------------- the phases


def connector_name(run_id: str) -> str:
    return f"benchcdc-{run_id.removeprefix('benchcdc')}"


def write_config(args: argparse.Namespace, work: Path, run_id: str) -> Path:
    doc = {
        "lake": {"root": str(work / "lake"), "format": "delta"},
        "kafka": {"bootstrap_servers": args.kafka_bootstrap},
        "checkpoints": {"root": str(work / "checkpoints")},
        "bulk": {"parallel_tables": 2, "partitions": 2},
        "sources": {
            SOURCE: {
                "type": "postgres",
                "connection": {
                    "host": args.pg_host,
                    "port": args.pg_port,
                    "database": DATABASE,
                    "user": args.pg_user,
                    "password": "${SHOP_DB_PASSWORD}",
                },
                "schemas": [SCHEMA],
                "cdc": {
                    "topic_prefix": run_id,
                    "slot_name": run_id,
                    "publication_name": run_id,
                    "connector_name": connector_name(run_id),
                    "connect_url": args.connect_url,
                    "password_reference": "${env:SHOP_DB_PASSWORD}",
                },
            }
        },
    }
    path = work / "bench_cdc.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def bulk_load(args: argparse.Namespace, config: Path, work: Path) -> dict[str, Any]:
    connector_file = work / "debezium.json"
    cmd = job_cmd("bulk_load.py", config, "--fresh-start", "--yes", "--connector-config", str(connector_file))
    code, seconds, job = run_job(cmd, job_env(args), work / "bulk_load.log", args.job_timeout)
    if code != 0:
        print("\n".join(job.last_lines()), file=sys.stderr)
        raise RuntimeError(f"bulk_load.py exited with {code} (log {job.log_path})")
    doc = json.loads(connector_file.read_text(encoding="utf-8"))
    name = doc.get("name") or doc.get("config", {}).get("name")
    print(f"setup: bulk load + connector {name} in {seconds:.1f}s", flush=True)
    return {"seconds": round(seconds, 1), "connector": name}


def stream_available_now(args: argparse.Namespace, config: Path, work: Path, expected_events: int) -> dict[str, Any]:
    extra = ["--available-now"]
    if args.max_offsets_per_trigger:
        extra += ["--max-offsets-per-trigger", str(args.max_offsets_per_trigger)]
    cmd = job_cmd("cdc_stream.py", config, *extra)
    code, seconds, job = run_job(cmd, job_env(args), work / "cdc_stream_available_now.log", args.job_timeout)
    summary = summarize_batches(job.batches)
    result: dict[str, Any] = {"exit_code": code, "process_seconds": round(seconds, 2), **summary, "expected_events": expected_events}
    full = [b for b in job.batches if not b.get("empty")]
    if job.started_at is not None and full:
        span = full[-1]["at"] - job.started_at
        result["started_to_last_batch_seconds"] = round(span, 2)
        result["events_per_second_started_to_last_batch"] = round(summary["events"] / span) if span > 0 else None
    result["events_per_process_second"] = round(summary["events"] / seconds) if seconds > 0 else None
    result["final_lag"] = full[-1]["lag"] if full else None
    result["per_batch"] = [{k: b[k] for k in ("batch", "events", "tables", "seconds", "lag", "p50", "p95")} for b in full]
    if code != 0:
        print("\n".join(job.last_lines()), file=sys.stderr)
        print(f"apply: cdc_stream.py --available-now exited with {code} (log {job.log_path})", file=sys.stderr)
    return result


def kafka_read_baseline(args: argparse.Namespace, run_id: str, work: Path) -> dict[str, Any]:
    """Plain Spark reading (and parsing) the backlog's messages: the ceiling for the apply rate."""
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / "bench_kafka_read.py"), "--bootstrap", args.kafka_bootstrap,
           "--pattern", f"\\Q{run_id}\\E[.]{SCHEMA}[.].+", "--columns", ",".join(name for name, _ in COLUMNS)]
    code, seconds, job = run_job(cmd, job_env(args), work / "bench_kafka_read.log", args.job_timeout)
    result = next((json.loads(line) for line in reversed(job.last_lines(50)) if line.startswith("{")), None)
    if code != 0 or result is None:
        print("\n".join(job.last_lines()), file=sys.stderr)
        raise RuntimeError(f"bench_kafka_read.py exited with {code} (log {job.log_path})")
    return {**result, "process_seconds": round(seconds, 2)}


def validate(args: argparse.Namespace, config: Path, work: Path, label: str) -> dict[str, Any]:
    report = work / f"validation_{label}.json"
    cmd = job_cmd("validate.py", config, "--report", str(report))
    code, seconds, job = run_job(cmd, job_env(args), work / f"validate_{label}.log", args.job_timeout)
    text = job.log_path.read_text(encoding="utf-8", errors="replace")
    verdicts = re.findall(r"^(PASS|FAIL|INFLIGHT) (\S+)", text, re.M)
    not_passed = [f"{v} {t}" for v, t in verdicts if v != "PASS"]
    lines = [ln for ln in text.splitlines() if re.match(r"(FAIL|INFLIGHT) ", ln)]
    ok = code == 0 and bool(verdicts) and not not_passed
    result = {
        "exit_code": code,
        "seconds": round(seconds, 1),
        "tables": len(verdicts),
        "passed": sum(1 for v, _ in verdicts if v == "PASS"),
        "not_passed": not_passed,
        "lake_equals_source": ok,
    }
    if lines:
        result["details"] = lines[:20]
    verdict = "lake equals source" if ok else "LAKE DIFFERS FROM SOURCE (or validation failed)"
    print(f"validate ({label}): exit {code}, {result['passed']}/{len(verdicts)} PASS in {seconds:.0f}s: {verdict}", flush=True)
    for line in lines[:10]:
        print(f"  {line}", flush=True)
    return result


def latency_run(args: argparse.Namespace, config: Path, work: Path, workload: Workload, kafka: KafkaWatch) -> dict[str, Any]:
    cmd = job_cmd("cdc_stream.py", config, "--trigger-seconds", str(args.trigger_seconds))
    job = JobWatch(cmd, job_env(args), work / "cdc_stream_latency.log")
    try:
        if not job.wait_until(lambda j: j.started_at is not None or j.batches, timeout=600):
            print("\n".join(job.last_lines()), file=sys.stderr)
            raise RuntimeError(f"cdc_stream.py did not start (exit {job.proc.poll()}; log {job.log_path})")
        startup = (job.started_at or job.batches[0]["at"]) - job.t0
        batches_before = len(job.batches)
        events_before = workload.events
        print(f"latency: stream started after {startup:.1f}s; warming up at {args.steady_rate} events/s for at least "
              f"{args.warmup_seconds}s and 2 batches", flush=True)
        carry: dict[str, float] = {}

        def warm() -> bool:
            return sum(1 for b in job.batches[batches_before:] if b["events"] > 0) >= 2

        warmup = write_at_rate(args, workload, job, carry, args.warmup_seconds, until=warm, limit=args.drain_timeout)
        warm_end = time.time()
        print(f"latency: warmed up after {warmup['seconds']:.0f}s ({warmup['events']:,} events); "
              f"writing {args.steady_rate} events/s for {args.steady_seconds}s", flush=True)
        messages_before = workload.messages
        steady_write = write_at_rate(args, workload, job, carry, args.steady_seconds)
        write_seconds, commits = steady_write["seconds"], steady_write["commits"]
        last_commit = commits[-1] if commits else time.time()
        steady_events = workload.events - events_before - warmup["events"]
        steady_messages = workload.messages - messages_before
        print(
            f"latency: wrote {steady_events:,} events in {len(commits)} transactions ({steady_events / write_seconds:,.0f}/s); draining ...",
            flush=True,
        )

        kafka_wait = kafka.wait_for(workload.messages, args.kafka_stall_seconds, "latency")

        # Drained: the batches since the start applied every change event written meanwhile (all of them
        # were in Kafka by now, after the offsets the --available-now run had committed). The stream's own
        # "lag" is reported beside it, not relied on.
        written = workload.events - events_before  # warm-up and measured writes

        def drained_line(batches: list[dict[str, Any]]) -> dict[str, Any] | None:
            applied = 0
            for b in batches:  # from the stream's start: the warm-up's events first
                applied += b["events"]
                if applied >= written and b["at"] >= last_commit:
                    return b
            return None

        caught_up = job.wait_until(lambda j: drained_line(j.batches[batches_before:]) is not None, timeout=args.drain_timeout)
        new = job.batches[batches_before:]
        drain_line = drained_line(new)
        code, killed, seconds = job.stop(grace=60.0)
        stop = {"exit_code": code, "killed": killed, "stop_seconds": round(seconds, 1), "stopped_line": job.stopped_line}
    finally:
        job.kill()
    # Measured: the batches that started after the warm-up (a warm JVM, every table's Delta state loaded).
    measured_batches = [b for b in new if b["at"] - b.get("seconds", 0.0) >= warm_end]  # an empty batch's line has no timing
    steady = [b for b in measured_batches if not b.get("empty") and b["events"] > 0]
    summary = summarize_batches(measured_batches)
    cold = summarize_batches(new[: len(new) - len(measured_batches)])  # batch lines come in order: the earlier ones
    return {
        "startup_seconds": round(startup, 1),
        "trigger_seconds": args.trigger_seconds,
        "warmup_seconds": round(warmup["seconds"], 1),
        "warmup_events": warmup["events"],
        "warmup_latency_p50_weighted_median_s": cold.get("latency_p50_weighted_median_s"),
        "write_seconds": round(write_seconds, 1),
        "transactions": len(commits),
        "events_written": steady_events,
        "messages_written": steady_messages,
        "achieved_rate": round(steady_events / write_seconds) if write_seconds > 0 else None,
        "kafka_complete_after_last_commit_seconds": round(kafka_wait["seconds"], 1),
        "caught_up": caught_up,
        "drain_seconds_after_last_commit": round(drain_line["at"] - last_commit, 1) if drain_line else None,
        "lag_logged_when_drained": drain_line.get("lag") if drain_line else None,  # the stream's own lag figure then (expected 0)
        **summary,
        "per_batch": [{k: b[k] for k in ("batch", "events", "seconds", "lag", "p50", "p95")} for b in steady],
        **stop,
    }


def write_at_rate(args: argparse.Namespace, workload: Workload, job: JobWatch, carry: dict[str, float], seconds: float,
                  until: Any = None, limit: float | None = None) -> dict[str, Any]:
    """Commit ``--steady-rate`` events/s in transactions every 100 ms for ``seconds`` (and, with ``until``,
    until it returns true, at most ``limit`` seconds); fails if the stream exits meanwhile."""
    interval = 0.1
    per_txn = args.steady_rate * interval
    commits: list[float] = []
    events_before = workload.events
    t0 = time.monotonic()
    n = 0
    while True:
        due = t0 + n * interval
        elapsed = due - t0
        if elapsed >= seconds and (until is None or until() or (limit is not None and elapsed >= limit)):
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        carry["_n"] = carry.get("_n", 0.0) + per_txn
        size = int(carry["_n"])
        carry["_n"] -= size
        mix = split_mix(size, carry)
        workload.transaction(mix["update"], mix["insert"], mix["delete"])
        commits.append(time.time())
        n += 1
        if job.proc.poll() is not None:
            raise RuntimeError(f"cdc_stream.py exited with {job.proc.returncode} during the steady writes (log {job.log_path})")
    return {"seconds": time.monotonic() - t0, "commits": commits, "events": workload.events - events_before}


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
        "os": platform.platform(),
        "versions": versions,
    }


def _git(*argv: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO_ROOT), *argv], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def cleanup(args: argparse.Namespace, state: dict[str, Any], work: Path) -> None:
    """Connector, slot, publication, database, topics, temporary directory; each step on its own."""
    steps: list[str] = []
    name = state.get("connector")
    if name:
        with contextlib.suppress(Exception):
            if delete_connector(args.connect_url, name):
                steps.append(f"connector {name}")
    run_id = state["run_id"]
    try:
        admin = pg_connect(args, "postgres", superuser=True)
        admin.autocommit = True
        with admin.cursor() as cur:
            if drop_slot(cur, run_id):
                steps.append(f"slot {run_id}")
        admin.close()
    except Exception as exc:  # noqa: BLE001 - go on with the rest
        print(f"cleanup: could not drop slot {run_id}: {exc}", file=sys.stderr)
    with contextlib.suppress(Exception):
        db = pg_connect(args, DATABASE)
        db.autocommit = True
        with db.cursor() as cur:
            cur.execute(f'DROP PUBLICATION IF EXISTS "{run_id}"')
        db.close()
        steps.append(f"publication {run_id}")
    if not args.keep:
        try:
            drop_database(args)
            steps.append(f"database {DATABASE}")
        except Exception as exc:  # noqa: BLE001
            print(f"cleanup: could not drop database {DATABASE}: {exc}", file=sys.stderr)
        kafka = state.get("kafka")
        if kafka is not None:
            with contextlib.suppress(Exception):
                deleted = kafka.delete_topics(run_id)
                steps.append(f"{len(deleted)} topic(s)")
        shutil.rmtree(work, ignore_errors=True)
        steps.append("temporary directory")
    else:
        print(f"kept: database {DATABASE}, topics {run_id}.*, {work}")
    print("cleanup: removed " + (", ".join(steps) or "nothing"), flush=True)


def main() -> int:
    args = parse_args()
    lock = hold_bench_lock(args)
    total_started = time.monotonic()
    tables = table_names(args.tables)
    run_id = run_id_now()
    work = Path(tempfile.mkdtemp(prefix="bench_cdc_", dir="/tmp"))
    state: dict[str, Any] = {"run_id": run_id}
    report: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {
            "rows": args.rows,
            "tables": args.tables,
            "backlog": args.backlog,
            "txn_size": args.txn_size,  # at most; small backlogs use smaller transactions (backlog / 5 / tables)
            "mix": dict(MIX),
            "steady_rate": args.steady_rate,
            "steady_seconds": args.steady_seconds,
            "trigger_seconds": args.trigger_seconds,
            "max_offsets_per_trigger": args.max_offsets_per_trigger,
            "run_id": run_id,
        },
        "machine": machine_info(args),
    }
    stream_job = REPO_ROOT / "jobs" / "cdc_stream.py"
    failed: str | None = None
    try:
        if args.pg_password != "loader" and not os.environ.get("SHOP_DB_PASSWORD"):
            print("note: the Connect worker of `make up` reads the password from its SHOP_DB_PASSWORD", flush=True)
        report["setup"] = create_data(args, tables)
        config = write_config(args, work, run_id)
        state["connector"] = connector_name(run_id)  # known before the load registers it: cleanup after a failure
        bulk = bulk_load(args, config, work)
        report["setup"]["bulk_load_seconds"] = bulk["seconds"]
        state["connector"] = bulk["connector"]
        kafka = KafkaWatch(args.kafka_bootstrap, run_id)
        state["kafka"] = kafka

        # ---- backlog
        with db_ids(args, tables) as next_id:
            workload = Workload(args, tables, next_id)
        workload.connect()
        write_started = time.monotonic()
        # Small backlogs in smaller transactions: every table gets several of them.
        txn_size = min(args.txn_size, max(50, args.backlog // (5 * len(tables))))
        written = write_backlog(workload, args.backlog, txn_size)
        counts = dict(workload.counts)
        print(
            f"backlog: {workload.events:,} events ({counts['update']:,} updates, {counts['insert']:,} inserts, "
            f"{counts['delete']:,} deletes) in {workload.transactions:,} transactions, {written['seconds']:.1f}s",
            flush=True,
        )
        wait = kafka.wait_for(workload.messages, args.kafka_stall_seconds, "backlog")
        in_kafka = time.monotonic() - write_started
        rate = workload.events / in_kafka
        print(
            f"backlog: Kafka holds all {workload.messages:,} messages {in_kafka:.1f}s after the first write: Debezium ~{rate:,.0f} events/s",
            flush=True,
        )
        report["backlog"] = {
            "events": workload.events,
            **counts,
            "kafka_messages": workload.messages,
            "transactions": workload.transactions,
            "txn_size": txn_size,
            "write_seconds": round(written["seconds"], 1),
            "write_events_per_s": round(workload.events / written["seconds"]),
            "in_kafka_after_first_write_seconds": round(in_kafka, 1),
            "debezium_events_per_s": round(rate),
            "kafka_samples": wait["samples"],
        }
        backlog_events = workload.events

        # ---- apply
        if not stream_job.exists() or "apply" not in args.phases:
            why = "jobs/cdc_stream.py does not exist yet" if not stream_job.exists() else "--phases excludes it"
            print(f"apply, latency: not measured ({why})", flush=True)
            report["apply"] = report["latency"] = {"measured": False, "why": why}
        else:
            baseline = measured(args, "baseline", lambda: kafka_read_baseline(args, run_id, work))
            report["baseline"] = baseline
            print(f"baseline: plain Spark reads the {baseline['events']:,} messages in {baseline['read_seconds']:.1f}s "
                  f"({baseline['read_events_per_s']:,}/s), reads and parses them in {baseline['parse_seconds']:.1f}s "
                  f"({baseline['parse_events_per_s']:,}/s)", flush=True)
            apply = measured(args, "apply", lambda: stream_available_now(args, config, work, backlog_events))
            report["apply"] = apply
            print(
                f"apply: {apply['events']:,} events (expected {backlog_events:,}) in {apply['batches']} batch(es); "
                f"process {apply['process_seconds']:.1f}s -> {apply['events_per_process_second'] or 0:,} events/s; "
                f"batches {apply['batch_seconds']:.1f}s -> {apply['events_per_batch_second'] or 0:,} events/s; exit {apply['exit_code']}",
                flush=True,
            )
            if apply["exit_code"] != 0:
                failed = f"cdc_stream.py --available-now exited with {apply['exit_code']}"
            elif apply["events"] != backlog_events:
                failed = f"the stream applied {apply['events']:,} events, the backlog has {backlog_events:,}"
            report["apply"]["validation"] = validate(args, config, work, "after_apply")
            if not report["apply"]["validation"]["lake_equals_source"]:
                failed = failed or "lake differs from source after the backlog apply"

            # ---- latency
            if "latency" in args.phases and apply["exit_code"] == 0:
                lat = measured(args, "latency", lambda: latency_run(args, config, work, workload, kafka))
                report["latency"] = lat
                p50, p95 = lat["latency_p50_weighted_median_s"], lat["latency_p95_weighted_median_s"]
                print(
                    f"latency: {lat['events']:,} events in {lat['batches_with_events']} batch(es); "
                    f"p50 {_fmt(p50)}s, p95 {_fmt(p95)}s (event-weighted medians of the batches' own figures); "
                    f"drained {_fmt(lat['drain_seconds_after_last_commit'])}s after the last commit; "
                    f"stop: exit {lat['exit_code']} after {lat['stop_seconds']}s{' (KILLED)' if lat['killed'] else ''}",
                    flush=True,
                )
                if not lat["caught_up"]:
                    failed = failed or "the stream did not catch up after the steady writes"
                if lat["exit_code"] != 0 or lat["killed"]:
                    failed = failed or f"the stream did not stop cleanly on SIGTERM (exit {lat['exit_code']}, killed {lat['killed']})"
                report["latency"]["validation"] = validate(args, config, work, "after_latency")
                if not report["latency"]["validation"]["lake_equals_source"]:
                    failed = failed or "lake differs from source after the steady phase"
            else:
                report["latency"] = {"measured": False, "why": "--phases excludes it" if "latency" not in args.phases else "apply failed"}
        workload.close()
    except Exception as exc:  # noqa: BLE001 - report, clean up, exit 1
        failed = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        print(f"bench_cdc: FAILED: {failed}", file=sys.stderr)
        if args.keep:
            print(f"logs in {work}", file=sys.stderr)
    finally:
        report["failed"] = failed
        report["benchmark_seconds"] = round(time.monotonic() - total_started, 1)
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        print_summary(report)
        print(f"\nreport: {out}  (benchmark took {report['benchmark_seconds']:.0f}s)", flush=True)
        if (failed or args.keep_logs) and not args.keep:
            keep_logs(work)
        try:
            cleanup(args, state, work)
        finally:
            if state.get("kafka") is not None:
                state["kafka"].close()
            lock.close()
    return 1 if failed else 0


def keep_logs(work: Path) -> None:
    """Copy the job logs (and the Delta log of the first lake table: MERGE metrics) out of the temporary directory."""
    logs = sorted(work.glob("*.log"))
    if logs:
        dest = Path(tempfile.mkdtemp(prefix="bench_cdc_logs_", dir="/tmp"))
        for log in logs:
            shutil.copy2(log, dest / log.name)
        delta_log = work / "lake" / SOURCE / SCHEMA / table_names(1)[0] / "_delta_log"
        if delta_log.is_dir():
            shutil.copytree(delta_log, dest / f"{table_names(1)[0]}_delta_log", ignore=shutil.ignore_patterns("*.crc", "*.checkpoint*"))
        print(f"job logs kept in {dest}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def db_ids(args: argparse.Namespace, tables: list[str]) -> Any:
    """The next free key per table (max(id) + 1)."""
    db = pg_connect(args, DATABASE)
    try:
        out = {}
        with db.cursor() as cur:
            for t in tables:
                cur.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {SCHEMA}.{t}")
                out[t] = int(cur.fetchone()[0])
        yield out
    finally:
        db.close()


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_summary(report: dict[str, Any]) -> None:
    print()
    s, m = report["settings"], report["machine"]
    print(
        f"machine: {m['nproc']} CPU(s) {m['cpu']}, {m['memory_gib']} GiB; repo {m['repo_commit']} ({m['repo_dirty_paths']} changed path(s) under lib/ and jobs/)"
    )
    print(
        f"data: {s['rows']:,} rows in {s['tables']} tables; backlog {s['backlog']:,} events; steady {s['steady_rate']}/s for {s['steady_seconds']}s"
    )
    b = report.get("backlog")
    if b:
        print(f"{'backlog written':<44}{b['write_seconds']:>9.1f}s {b['write_events_per_s']:>12,} events/s")
        print(
            f"{'Debezium: all in Kafka after first write':<44}{b['in_kafka_after_first_write_seconds']:>9.1f}s {b['debezium_events_per_s']:>12,} events/s"
        )
    base = report.get("baseline") or {}
    if base.get("events") is not None:
        print(f"{'baseline: plain Spark reads the messages':<44}{base['read_seconds']:>9.1f}s {base['read_events_per_s'] or 0:>12,} messages/s")
        print(f"{'baseline: ... and parses their payloads':<44}{base['parse_seconds']:>9.1f}s {base['parse_events_per_s'] or 0:>12,} messages/s")
    a = report.get("apply") or {}
    if a.get("events") is not None:
        print(
            f"{'apply --available-now, whole process':<44}{a['process_seconds']:>9.1f}s {a['events_per_process_second'] or 0:>12,} events/s"
        )
        if a.get("started_to_last_batch_seconds") is not None:
            print(
                f"{'apply, stream started -> last batch':<44}{a['started_to_last_batch_seconds']:>9.1f}s {a['events_per_second_started_to_last_batch'] or 0:>12,} events/s"
            )
        print(f"{'apply, sum of batch seconds':<44}{a['batch_seconds']:>9.1f}s {a['events_per_batch_second'] or 0:>12,} events/s")
        if base.get("parse_events_per_s"):
            print(f"  sustained apply / baseline parse: {(a['events_per_batch_second'] or 0) / base['parse_events_per_s']:.2f}x "
                  "(the same change events; the Kafka tombstones after deletes are left out of both)")
        print(
            f"  {a['events']:,} events in {a['batches']} batch(es); inserted {a['inserted']:,} updated {a['updated']:,} deleted {a['deleted']:,} "
            f"skipped {a['skipped']:,} dead-lettered {a['dead_lettered']:,}; other CPU {100 * a.get('other_cpu_share', 0):.0f}%"
        )
        v = a.get("validation") or {}
        if v:
            print(f"  validate: exit {v['exit_code']}, {v['passed']}/{v['tables']} PASS")
    elif a:
        print(f"apply: not measured ({a.get('why')})")
    lat = report.get("latency") or {}
    if lat.get("events") is not None:
        print(
            f"latency (source commit -> MERGE committed, the stream's per-batch figures, event-weighted medians over {lat['batches_with_events']} batch(es)):"
        )
        print(
            f"  p50 {_fmt(lat['latency_p50_weighted_median_s'])}s  p95 {_fmt(lat['latency_p95_weighted_median_s'])}s  (worst batch p95 {_fmt(lat['latency_p95_max_s'])}s)"
        )
        print(f"  after a warm-up of {_fmt(lat['warmup_seconds'])}s ({lat['warmup_events']:,} events; the batches before it: "
              f"p50 {_fmt(lat['warmup_latency_p50_weighted_median_s'])}s, not counted)")
        print(
            f"  wrote {lat['events_written']:,} events at {lat['achieved_rate']:,}/s; drained {_fmt(lat['drain_seconds_after_last_commit'])}s after the last commit "
            f"(the stream logged lag {lat['lag_logged_when_drained']} then); "
            f"SIGTERM -> exit {lat['exit_code']} in {lat['stop_seconds']}s{' (KILLED)' if lat['killed'] else ''}"
        )
        v = lat.get("validation") or {}
        if v:
            print(f"  validate: exit {v['exit_code']}, {v['passed']}/{v['tables']} PASS")
    elif lat:
        print(f"latency: not measured ({lat.get('why')})")
    if report.get("failed"):
        print(f"FAILED: {report['failed']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark the CDC stream: backlog apply throughput and steady-state latency.")
    p.add_argument("--rows", type=int, default=5_000_000, help="rows over all tables (default 5,000,000)")
    p.add_argument("--tables", type=int, default=20, help="tables (default 20)")
    p.add_argument("--backlog", type=int, default=1_000_000, help="change events in the backlog (default 1,000,000)")
    p.add_argument("--txn-size", type=int, default=2000, help="rows changed per backlog transaction (default 2000)")
    p.add_argument("--steady-rate", type=int, default=500, help="events/s during the latency phase (default 500)")
    p.add_argument("--steady-seconds", type=float, default=60.0, help="length of the latency phase's measured writes (default 60)")
    p.add_argument("--warmup-seconds", type=float, default=60.0,
                   help="writes at the steady rate before the measured ones, at least this long and until the stream "
                        "has applied 2 batches (default 60); batches that started earlier are not measured")
    p.add_argument("--trigger-seconds", type=float, default=5.0, help="the stream's trigger in the latency phase (default 5)")
    p.add_argument("--max-offsets-per-trigger", type=int, help="passed to the --available-now run (default: the stream's)")
    p.add_argument(
        "--phases",
        default="apply,latency",
        help="which of apply,latency to run after the backlog (default both; none: stop after the backlog)",
    )
    p.add_argument("--job-timeout", type=float, default=3600.0, help="seconds a job subprocess may take (default 3600)")
    p.add_argument("--kafka-stall-seconds", type=float, default=180.0, help="fail when Kafka gets nothing new for this long (default 180)")
    p.add_argument("--drain-timeout", type=float, default=600.0, help="seconds the stream may take to catch up after the steady writes")
    p.add_argument("--output", default=str(REPO_ROOT / "reports" / "bench_cdc.json"), help="JSON report (default reports/bench_cdc.json)")
    p.add_argument(
        "--wait-idle",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="wait up to this long for idle CPUs before apply and latency (0: do not)",
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the database, topics and temporary directory (connector and slot are always removed)"
    )
    p.add_argument("--keep-logs", action="store_true", help="copy the job logs out of the temporary directory even when the run succeeds")
    add_pg_arguments(p)
    p.add_argument("--kafka-bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--connect-url", default=os.environ.get("CONNECT_URL", "http://127.0.0.1:8083"))
    args = p.parse_args(argv)
    args.phases = {x.strip() for x in args.phases.split(",") if x.strip() and x.strip() != "none"}
    if args.phases - {"apply", "latency"}:
        p.error(f"--phases: unknown {', '.join(sorted(args.phases - {'apply', 'latency'}))}")
    if "latency" in args.phases:
        args.phases.add("apply")  # the latency phase continues from the applied backlog
    if min(args.rows, args.tables, args.backlog, args.txn_size, args.steady_rate) < 1 or args.steady_seconds <= 0:
        p.error("--rows, --tables, --backlog, --txn-size, --steady-rate and --steady-seconds must be positive")
    if args.rows < args.tables:
        p.error("--rows must be at least --tables")
    return args


if __name__ == "__main__":
    sys.exit(main())
