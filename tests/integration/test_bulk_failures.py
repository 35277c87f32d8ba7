"""Failing tables fail loudly and alone; flags --no-resume, --fresh-start, --tables, --dry-run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.status.store import StatusStore

from .compare import assert_lake_equals_source
from .conftest import ROOT, job_env


def run_job(job: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "jobs" / job), *args], env=env or job_env(), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )


def test_a_failing_table_fails_alone(spark, source):
    s = f'"{source.schema}"'
    source.execute(f"""
        CREATE TABLE {s}.ok_one (id int PRIMARY KEY);
        INSERT INTO {s}.ok_one SELECT generate_series(1, 100);
        CREATE TABLE {s}.ok_two (id int PRIMARY KEY);
        INSERT INTO {s}.ok_two SELECT generate_series(1, 50);
    """)
    # a table the loader may see in the catalog but not read
    source.execute(f"CREATE TABLE {s}.forbidden (id int PRIMARY KEY); INSERT INTO {s}.forbidden VALUES (1)", superuser=True)
    config = source.load_config(cdc=False)
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 1
    status = {k[2]: v for k, v in StatusStore(spark, source.lake_root).latest(source.name).items()}
    assert status["ok_one"].state == "completed" and status["ok_two"].state == "completed"
    assert status["forbidden"].state == "failed"
    assert "permission denied" in status["forbidden"].last_error
    assert assert_lake_equals_source(spark, source, "ok_two", key=["id"]) == 50


def test_resume_no_resume_fresh_start_and_table_globs(spark, source):
    s = f'"{source.schema}"'
    source.execute(f"""
        CREATE TABLE {s}.alpha (id int PRIMARY KEY, v int);
        INSERT INTO {s}.alpha SELECT g, g FROM generate_series(1, 100) g;
        CREATE TABLE {s}.beta (id int PRIMARY KEY, v int);
        INSERT INTO {s}.beta SELECT g, g FROM generate_series(1, 10) g;
    """)
    config = source.load_config()
    store = StatusStore(spark, source.lake_root)
    assert run_bulk_load(spark, config, source.name, BulkOptions(tables=["alpha"])) == 0
    assert set(k[2] for k in store.latest(source.name)) == {"alpha"}
    first = store.latest(source.name)[(source.name, source.schema, "alpha")]

    source.execute(f"UPDATE {s}.alpha SET v = -v")  # the lake keeps the copy until a reload
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0  # alpha skipped, beta loaded
    after = store.latest(source.name)
    assert after[(source.name, source.schema, "alpha")].load_id == first.load_id
    assert spark.read.format("delta").load(source.lake_path("alpha")).where("v < 0").count() == 0
    assert assert_lake_equals_source(spark, source, "beta", key=["id"]) == 10

    assert run_bulk_load(spark, config, source.name, BulkOptions(resume=False, tables=["alpha"])) == 0
    reloaded = store.latest(source.name)[(source.name, source.schema, "alpha")]
    assert reloaded.load_id != first.load_id
    assert assert_lake_equals_source(spark, source, "alpha", key=["id"]) == 100

    slot = f"slot_{source.name}"
    slot_before = source.query("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (slot,))
    assert run_bulk_load(spark, config, source.name, BulkOptions(fresh_start=True, tables=["beta"])) == 0
    assert set(k[2] for k in store.latest(source.name)) == {"beta"}  # status of the source was dropped
    assert not Path(source.lake_path("alpha")).exists()
    slot_after = source.query("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (slot,))
    assert slot_before and slot_after and slot_after != slot_before, "fresh start recreates the slot"


def test_dry_run_prints_the_plan_and_touches_nothing(source):
    s = f'"{source.schema}"'
    source.execute(f"""
        CREATE TABLE {s}.big (id bigint PRIMARY KEY, v text);
        INSERT INTO {s}.big SELECT g, 'x' FROM generate_series(1, 30000) g;
        ANALYZE {s}.big;
        CREATE TABLE {s}.heap (v text);
        INSERT INTO {s}.heap SELECT md5(g::text) FROM generate_series(1, 30000) g;
        ANALYZE {s}.heap;
    """)
    config = source.write_config(min_rows_to_split=1000, rows_per_chunk=10000, partitions=3)
    result = run_job("bulk_load.py", "--config", str(config), "--source", source.name, "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{source.schema}.big: ~30000 rows, 3 chunk(s) x 3 partition(s), split range on id (primary key (id))" in out
    assert f"{source.schema}.heap: ~30000 rows, 1 chunk(s) x 3 partition(s), split physical" in out
    assert not Path(source.lake_root).exists()
    assert source.query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (f"slot_{source.name}",))[0][0] == 0


def test_status_job_prints_lines_and_json(spark, source):
    source.execute(f'CREATE TABLE "{source.schema}".t (id int PRIMARY KEY); INSERT INTO "{source.schema}".t VALUES (1), (2)')
    config_path = source.write_config()
    from lib.config import load_config

    config = load_config(config_path, env=job_env())
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0
    text = run_job("status.py", "--config", str(config_path), "--source", source.name)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].split()[:5] == ["source", "schema", "table", "phase", "state"]
    assert f"{source.name}  {source.schema}  t" in text.stdout and "completed" in text.stdout
    js = run_job("status.py", "--config", str(config_path), "--json")
    rows = [json.loads(line) for line in js.stdout.splitlines()]
    mine = [r for r in rows if r["source"] == source.name]
    assert len(mine) == 1 and mine[0]["row_count"] == 2 and mine[0]["primary_key"] == ["id"] and mine[0]["state"] == "completed"
    assert mine[0]["location"].endswith(f"/{source.name}/{source.schema}/t")
