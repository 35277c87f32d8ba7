"""Crash safety: kill -9 at any moment, run the same command again, every table ends loaded exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.status.store import StatusStore

from .compare import assert_lake_equals_source
from .conftest import ROOT, job_env


def delta_commits(path: str) -> int:
    log = Path(path) / "_delta_log"
    return len(list(log.glob("*.json"))) if log.exists() else 0


def start_load(config: Path, source: str, log_file: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "jobs" / "bulk_load.py"), "--config", str(config), "--source", source, "--parallel-tables", "1"],
        env=job_env(), stdout=log_file.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def kill_when(proc: subprocess.Popen, condition, timeout: float = 180) -> None:
    """SIGKILL the job's whole process group (Python and its JVM) as soon as ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the load ended (exit {proc.returncode}) before the kill point"
        assert time.monotonic() < deadline, "kill point not reached in time"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_kill_9_mid_load_then_resume(spark, source, tmp_path):
    s = f'"{source.schema}"'
    source.execute(f"""
        CREATE TABLE {s}.a_small (id int PRIMARY KEY, v text);
        INSERT INTO {s}.a_small SELECT g, 'v' || g FROM generate_series(1, 500) g;
        CREATE TABLE {s}.b_big (id bigint PRIMARY KEY, amount numeric, note text);
        INSERT INTO {s}.b_big SELECT g * 7 - 30000, g / 8.0, md5(g::text) FROM generate_series(1, 24000) g;
    """)
    config = source.write_config(min_rows_to_split=1000, rows_per_chunk=2000, partitions=2)
    big, small = source.lake_path("b_big"), source.lake_path("a_small")
    log_file = tmp_path / "runs.log"

    # run 1: killed after b_big committed 3 of its 12 chunks (a_small, loaded first, is complete)
    kill_when(start_load(config, source.name, log_file), lambda: delta_commits(big) >= 3)
    small_commits = delta_commits(small)
    assert small_commits >= 1
    # run 2: resumes, killed again a few chunks later
    first_kill = delta_commits(big)
    kill_when(start_load(config, source.name, log_file), lambda: delta_commits(big) >= first_kill + 3)
    # run 3 (in this process): finishes
    cfg = source.load_config(min_rows_to_split=1000, rows_per_chunk=2000, partitions=2)
    assert run_bulk_load(spark, cfg, source.name, BulkOptions(parallel_tables=1)) == 0

    assert assert_lake_equals_source(spark, source, "b_big", key=["id"]) == 24000
    assert assert_lake_equals_source(spark, source, "a_small", key=["id"]) == 500
    assert delta_commits(small) == small_commits, "a completed table was written again"
    assert delta_commits(big) == 12, "each chunk is committed exactly once (no restart, no repeat)"
    events = StatusStore(spark, source.lake_root).latest(source.name)
    done = events[(source.name, source.schema, "b_big")]
    assert (done.state, done.chunks_done, done.chunks_total, done.row_count) == ("completed", 12, 12, 24000)
    assert done.attempts == 3
    logs = log_file.read_text()
    assert "resuming at chunk" in logs and "a_small: already completed" in logs


def test_kill_9_during_first_chunk_restarts_cleanly(spark, source, tmp_path):
    s = f'"{source.schema}"'
    source.execute(f"""
        CREATE TABLE {s}.t (id int PRIMARY KEY, v text);
        INSERT INTO {s}.t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
    """)
    config = source.write_config(min_rows_to_split=1000, rows_per_chunk=1000, partitions=2)
    status_log = Path(source.lake_root) / "_pipeline" / "status" / "_delta_log"
    # killed as soon as the load recorded itself as running: before or during its first chunk
    proc = start_load(config, source.name, tmp_path / "run.log")
    kill_when(proc, lambda: len(list(status_log.glob("*.json"))) >= 2)
    cfg = source.load_config(min_rows_to_split=1000, rows_per_chunk=1000, partitions=2)
    assert run_bulk_load(spark, cfg, source.name, BulkOptions()) == 0
    assert assert_lake_equals_source(spark, source, "t", key=["id"]) == 5000
