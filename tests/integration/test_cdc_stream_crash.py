"""Crash safety of the CDC stream: kill -9 several times while tables are being applied, restart, and
every lake table still equals its source value by value (nothing applied twice in effect, nothing lost).

The kill points are MERGE commits of one table while another table is still being applied (three
tables, two apply threads, applies of at most 100 messages), so some applies are committed to the lake
but not yet recorded in the status table, and are applied again on restart. Needs the local stack.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.lake.paths import dead_letter_path

from .compare import assert_lake_equals_source
from .conftest import ROOT, Source, job_env
from .kafka_events import wait_until_captured
from .test_bulk_resume import delta_commits, kill_when
from .test_cdc_decode import cleanup
from .test_cdc_stream import stream_config

TABLES = {"accounts": ["id"], "ledger": ["account", "seq"], "notes": ["id"]}

SETUP = """
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.accounts (id int PRIMARY KEY, owner text, balance numeric(14,2), doc jsonb, updated timestamp);
INSERT INTO {s}.accounts SELECT g, 'owner ' || g, g * 10, jsonb_build_object('g', g), timestamp '2025-01-01' + g * interval '1 hour'
  FROM generate_series(1, 600) g;
CREATE TABLE {s}.ledger (account int, seq int, amount numeric(14,2), PRIMARY KEY (account, seq));
INSERT INTO {s}.ledger SELECT g % 100, g, g / 3.0 FROM generate_series(1, 600) g;
CREATE TABLE {s}.notes (id bigint PRIMARY KEY, body text);
INSERT INTO {s}.notes SELECT g, repeat('n', g % 50) FROM generate_series(1, 200) g;
"""

WORKLOAD = """
SELECT setseed(0.25);
UPDATE {s}.accounts SET balance = balance + 1, updated = updated + interval '1 second' WHERE id % 3 = 0;
UPDATE {s}.accounts SET balance = balance * 2 WHERE id % 7 = 0;
DELETE FROM {s}.accounts WHERE id % 11 = 0;
INSERT INTO {s}.accounts SELECT g, 'late ' || g, g, NULL, NULL FROM generate_series(2000, 2200) g;
UPDATE {s}.accounts SET id = id + 10000 WHERE id BETWEEN 2000 AND 2050;
INSERT INTO {s}.accounts SELECT g, 'back', 0, '{{}}', now()::timestamp FROM generate_series(11, 330, 11) g;
UPDATE {s}.ledger SET amount = -amount WHERE seq % 4 = 0;
DELETE FROM {s}.ledger WHERE seq % 9 = 0;
INSERT INTO {s}.ledger SELECT g % 100, g, 1 FROM generate_series(601, 900) g;
UPDATE {s}.notes SET body = body || '!' WHERE id % 2 = 0;
DELETE FROM {s}.notes WHERE id > 150;
INSERT INTO {s}.notes SELECT g, 'again' FROM generate_series(151, 180) g;
"""


def start_stream(config: Path, source: str, log_file: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "jobs" / "cdc_stream.py"), "--config", str(config), "--source", source, "--available-now"],
        env=job_env(), stdout=log_file.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def merges(src: Source) -> int:
    return sum(delta_commits(src.lake_path(t)) for t in TABLES)


@pytest.fixture
def crash_source(scratch_db: str, tmp_path: Path) -> Any:
    src = Source(scratch_db, f"t_cdc_crash_{uuid.uuid4().hex[:6]}", tmp_path)
    src.execute(f'CREATE SCHEMA "{src.schema}"')
    yield src
    cleanup(src)


def test_kill_9_mid_batch_several_times_then_catch_up(spark: Any, crash_source: Source, tmp_path: Path) -> None:
    src = crash_source
    s = f'"{src.schema}"'
    src.execute(SETUP.format(s=s))
    raw = stream_config(src, max_offsets_per_trigger=100, apply_threads=2)
    config = src.write_config(raw)
    assert run_bulk_load(spark, src.load_config(raw), src.name, BulkOptions()) == 0
    src.execute(WORKLOAD.format(s=s))
    wait_until_captured(src, src.name)

    log_file = tmp_path / "stream.log"
    for extra in (2, 3, 5):  # three kills, each a few MERGE commits into a run (while other tables apply)
        start = merges(src)
        kill_when(start_stream(config, src.name, log_file), lambda start=start, extra=extra: merges(src) >= start + extra, timeout=240)
    final = start_stream(config, src.name, log_file)
    assert final.wait(timeout=600) == 0, log_file.read_text()[-3000:]

    assert "cdc batch" in log_file.read_text()
    for table, key in TABLES.items():
        assert_lake_equals_source(spark, src, table, key)
    assert spark.read.format("delta").load(dead_letter_path(src.lake_root)).count() == 0
