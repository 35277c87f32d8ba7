"""Chaos: Kafka, Kafka Connect and PostgreSQL restarted while a writer changes rows and the CDC stream
applies them; afterwards every lake table equals its source, value by value, with no manual step.

One long-running stream (jobs/cdc_stream.py, its health check on) and one writer thread live through
three faults in turn, each a `scripts/stack.sh down <service>` then `up <service>` of the local stack
(the services at this run's PG_PORT / KAFKA_PORT / CONNECT_PORT and STACK_DIR, nobody else's). After
each fault the writer goes on for a few seconds, stops, and the test waits until the status table
says every table is current with its source past the writer's last commit (the heartbeat freshness
of lib/cdc/health/freshness.py), then compares lake and source. Every wait is bounded by RECOVERY_SECONDS.

Needs the local stack started by scripts/stack.sh (`make up`); skipped when its services are not
managed by scripts/stack.sh here.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.status.delta_rs_store import DeltaRsStatusStore
from lib.status.store import StatusStore

from .compare import assert_lake_equals_source
from .conftest import ROOT, Source, job_env
from .test_bulk_resume import delta_commits, start_load
from .test_cdc_decode import cleanup
from .test_cdc_stream import stream_config

RECOVERY_SECONDS = 240  # from the service being back to the lake equal to the source, per fault
STARTUP_SECONDS = 400  # the stream's first apply (a Spark session and the first MERGEs; slow on a busy 2-core machine)
HEARTBEAT_MS = 2000
STALL_SECONDS = 45  # the stream's health check recovers a silent connector after this long (20 s: live connections of a
# connector slowed down by a machine at load 30 were taken for stale ones)
TABLES = {"accounts": ["id"], "events": ["id"]}

SETUP = """
CREATE TABLE {s}.accounts (id int PRIMARY KEY, owner text, balance numeric(14,2), updated timestamptz);
INSERT INTO {s}.accounts SELECT g, 'owner ' || g, g * 10, timestamptz '2025-01-01 00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 500) g;
CREATE TABLE {s}.events (id bigint PRIMARY KEY, account int, kind text, at timestamptz);
INSERT INTO {s}.events SELECT g, g % 500, 'seed', timestamptz '2025-01-01 00:00+00' FROM generate_series(1, 300) g;
"""


def stack(*args: str) -> str:
    result = subprocess.run(["bash", str(ROOT / "scripts" / "stack.sh"), *args], capture_output=True, text=True, timeout=300, env=os.environ)
    assert result.returncode == 0, f"scripts/stack.sh {' '.join(args)} failed: {result.stdout}{result.stderr}"
    return result.stdout + result.stderr


class Writer(threading.Thread):
    """Commits small transactions (updates, inserts, deletes) until stopped; rides out a database restart."""

    def __init__(self, src: Source) -> None:
        super().__init__(daemon=True, name="chaos-writer")
        self.src = src
        self.stop = threading.Event()
        self.committed = 0
        self.errors = 0
        self.next_id = 100_000

    def run(self) -> None:
        rnd = random.Random(7)
        s = f'"{self.src.schema}"'
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = self.src.connect()
                with conn.cursor() as cur:
                    cur.execute("BEGIN")
                    a = rnd.randint(1, 500)
                    cur.execute(f"UPDATE {s}.accounts SET balance = balance + 1, updated = now() WHERE id = %s", (a,))
                    self.next_id += 1
                    cur.execute(f"INSERT INTO {s}.events VALUES (%s, %s, 'w', now())", (self.next_id, a))
                    if self.next_id % 5 == 0:
                        cur.execute(f"DELETE FROM {s}.events WHERE id = (SELECT min(id) FROM {s}.events)")
                    cur.execute("COMMIT")
                self.committed += 1
            except psycopg2.Error:
                self.errors += 1
                conn = None  # the database went away: reconnect on the next round
                self.stop.wait(0.5)
                continue
            self.stop.wait(0.3)  # ~3 transactions (~8 events) a second: a busy 2-core machine's stream keeps up
        if conn is not None:
            conn.close()


def wait_until(what: str, condition: Any, timeout: float, log_file: Path) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(1)  # polling real services' progress
    raise AssertionError(f"{what}: not within {timeout}s; stream log tail:\n{log_file.read_text()[-4000:]}")


def current_past(spark: Any, src: Source, since: datetime) -> bool:
    """Every table is marked current with its source (source_current_at) after ``since``.

    Polled every second while the stream recovers: read by delta-rs, which costs the two shared cores far less
    than a Spark query each second would (the two readers are held equal by test_status_table_writers)."""
    latest = DeltaRsStatusStore(spark, src.lake_root).latest(src.name)
    marks = {e.table: e.source_current_at for e in latest.values() if e.table in TABLES}
    return len(marks) == len(TABLES) and all(m is not None and m > since for m in marks.values())


@pytest.fixture
def chaos(spark: Any, scratch_db: str, tmp_path: Path) -> Any:
    managed_stack()
    src = Source(scratch_db, f"t_chaos_{uuid.uuid4().hex[:6]}", tmp_path)
    src.execute(f'CREATE SCHEMA "{src.schema}"')
    src.execute(SETUP.format(s=f'"{src.schema}"'))
    raw = stream_config(src, trigger_seconds=1, stall_seconds=STALL_SECONDS, retry_failed_seconds=10, max_offsets_per_trigger=20000)
    raw["sources"][src.name]["cdc"]["heartbeat_interval_ms"] = HEARTBEAT_MS
    config = src.write_config(raw)
    assert run_bulk_load(spark, src.load_config(raw), src.name, BulkOptions()) == 0
    log_file = tmp_path / "stream.log"
    stream = subprocess.Popen([sys.executable, str(ROOT / "jobs" / "cdc_stream.py"), "--config", str(config), "--source", src.name],
                              env=job_env(), stdout=log_file.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    writer = Writer(src)
    writer.start()
    try:
        yield src, stream, writer, log_file
    finally:
        writer.stop.set()
        stream.terminate()
        try:
            stream.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stream.kill()
        stack("up", "pg", "kafka", "connect")  # whatever happened, leave the stack running
        cleanup(src)


def converge(spark: Any, src: Source, writer: Writer, log_file: Path, fault: str) -> float:
    """Let the writer go on a little, stop it, wait until the lake is current past its last commit, compare."""
    before = writer.committed
    wait_until(f"{fault}: the writer commits again", lambda: writer.committed >= before + 20, RECOVERY_SECONDS, log_file)
    writer.stop.set()
    writer.join(timeout=30)
    last_commit = datetime.now(UTC)
    took = wait_until(f"{fault}: every lake table current with its source past the writer's last commit",
                      lambda: current_past(spark, src, last_commit), RECOVERY_SECONDS, log_file)
    for table, key in TABLES.items():
        assert_lake_equals_source(spark, src, table, key)
    return took


def managed_stack() -> None:
    probe = subprocess.run(["bash", str(ROOT / "scripts" / "stack.sh"), "status", "pg", "kafka", "connect"],
                           capture_output=True, text=True, env=os.environ)
    if probe.returncode != 0:
        pytest.skip(f"the local stack's services are not run by scripts/stack.sh here: {probe.stdout.strip()}")


def test_bulk_load_interrupted_by_a_postgres_restart_fails_loudly_and_the_rerun_is_exact(spark: Any, source: Source, tmp_path: Path) -> None:
    managed_stack()
    s = f'"{source.schema}"'
    source.execute(f"""
        CREATE TABLE {s}.a_small (id int PRIMARY KEY, v text);
        INSERT INTO {s}.a_small SELECT g, 'v' || g FROM generate_series(1, 500) g;
        CREATE TABLE {s}.b_big (id bigint PRIMARY KEY, amount numeric(12,3), note text);
        INSERT INTO {s}.b_big SELECT g, g / 8.0, md5(g::text) FROM generate_series(1, 12000) g;
    """)
    # 48 chunks: the restart (a few seconds) comes long before the last one, even on an idle machine
    config = source.write_config(min_rows_to_split=1000, rows_per_chunk=250, partitions=1)
    log_file = tmp_path / "load.log"
    load = start_load(config, source.name, log_file)
    try:
        wait_until("two chunks of b_big committed", lambda: delta_commits(source.lake_path("b_big")) >= 2 or load.poll() is not None, 240, log_file)
        assert load.poll() is None, f"the load ended before the restart: {log_file.read_text()[-2000:]}"
        stack("down", "pg")
        stack("up", "pg")
        assert load.wait(timeout=300) == 1, log_file.read_text()[-3000:]
    finally:
        if load.poll() is None:
            load.kill()
    text = log_file.read_text()
    assert "b_big" in text and "FAILED" in text.upper(), text[-3000:]
    events = StatusStore(spark, source.lake_root).latest(source.name)
    assert events[(source.name, source.schema, "b_big")].state == "failed"
    # the same command again: only what is not complete is copied, from a new snapshot, and the lake is exact
    cfg = source.load_config(min_rows_to_split=1000, rows_per_chunk=250, partitions=1)
    assert run_bulk_load(spark, cfg, source.name, BulkOptions(parallel_tables=1)) == 0
    assert assert_lake_equals_source(spark, source, "b_big", key=["id"]) == 12000
    assert assert_lake_equals_source(spark, source, "a_small", key=["id"]) == 500


@pytest.mark.timeout(1800)  # three restarts and recoveries: ~5 min on an idle machine, 15+ min at load 30
def test_kafka_connect_and_postgres_restarts_while_writing_converge_exactly(spark: Any, chaos: Any) -> None:
    src, stream, writer, log_file = chaos
    wait_until("the stream applies the writer's changes", lambda: "cdc batch" in log_file.read_text(), STARTUP_SECONDS, log_file)
    timings = {}
    for fault, service in (("Kafka restart", "kafka"), ("Kafka Connect restart", "connect"), ("PostgreSQL restart", "pg")):
        if not writer.is_alive():
            writer = Writer(src)
            writer.next_id = 1_000_000 * (len(timings) + 1)
            writer.start()
        wait_until(f"{fault}: the writer runs", lambda w=writer: w.committed >= 20, 60, log_file)
        stack("down", service)
        stack("up", service)
        timings[fault] = converge(spark, src, writer, log_file, fault)
        assert stream.poll() is None, f"the stream exited during the {fault}: {log_file.read_text()[-3000:]}"
    print(f"recovery (writer stopped -> lake current and equal), seconds: {timings}")
    # the table counts grew during the faults: the writer really wrote through them
    assert src.query(f'SELECT count(*) FROM "{src.schema}".events')[0][0] > 300
