"""Hundreds of tables (issue 15): a 300-table schema loads exactly; killed with -9 in the middle, the same
command again ends exact, and no table is loaded twice."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.status.store import StatusStore

from .compare import assert_lake_equals_source
from .conftest import ROOT
from .lake_readers import arrow_rows, assert_same_rows, delta_rs_arrow, source_table_rows
from .test_bulk_resume import delta_commits, kill_when, start_load

TABLES = 300
ROWS = 20
SPARK_EVERY = 25  # every table is compared by delta-rs, every 25th by Spark as well (one Spark read costs ~0.3 s)


def _generator():
    spec = importlib.util.spec_from_file_location("many_tables", ROOT / "scripts" / "many_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed_tables(source, names: list[str]) -> int:
    return sum(1 for n in names if (Path(source.lake_path(n)) / "_delta_log" / "00000000000000000000.json").exists())


@pytest.mark.timeout(2400)  # two loads of 300 tables and 300 comparisons: longer than the suite's 900 s default on a busy machine
def test_300_tables_exact_after_kill_9_and_rerun_without_loading_any_twice(spark, source, tmp_path):
    conn = source.connect()
    try:
        names = _generator().create_tables(conn, source.schema, TABLES, ROWS)  # not analyzed: the loader counts them
    finally:
        conn.close()
    config = source.write_config(cdc=False)
    log_file = tmp_path / "runs.log"

    # run 1: killed once a third of the tables are in the lake
    kill_when(start_load(config, source.name, log_file), lambda: committed_tables(source, names) >= TABLES // 3, timeout=600)
    done_at_kill = committed_tables(source, names)
    assert TABLES // 3 <= done_at_kill < TABLES, f"the kill came too late to test anything: {done_at_kill} tables done"
    # run 2 (in this process): the same command, completes
    assert run_bulk_load(spark, source.load_config(cdc=False), source.name, BulkOptions()) == 0

    for i, name in enumerate(names):
        assert delta_commits(source.lake_path(name)) == 1, f"{name}: written more than once"
        columns, expected = source_table_rows(source, name)
        lake = arrow_rows(delta_rs_arrow(source.lake_path(name)), columns)  # every table by delta-rs (fast: no Spark job)
        assert len(lake) == ROWS, f"{name}: {len(lake)} rows"
        assert_same_rows(lake, expected, columns, "id", name)
        if i % SPARK_EVERY == 0:  # and a spread of them by Spark too
            assert assert_lake_equals_source(spark, source, name, key=["id"]) == ROWS
    status = StatusStore(spark, source.lake_root)
    latest = {k[2]: e for k, e in status.latest(source.name).items()}
    assert sorted(latest) == names
    assert {(e.state, e.row_count, e.chunks_done) for e in latest.values()} == {("completed", ROWS, 1)}
    events = spark.read.format("delta").load(status.path).where(f"source = '{source.name}'").select("table", "state", "load_id").collect()
    completed = Counter(r["table"] for r in events if r["state"] == "completed")
    assert set(completed.values()) == {1} and len(completed) == TABLES, "exactly one completion per table"
    load_ids = {e.load_id for e in latest.values()}
    assert len(load_ids) == TABLES  # one load per table, across both runs
    logs = log_file.read_text()
    assert "Using incubator modules" not in logs and "NativeCodeLoader" not in logs
