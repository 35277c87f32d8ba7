"""Colliding table names against a real PostgreSQL catalog: the bulk load refuses them when planning (the dry
run too), exit 2, before the lake, the slot or the publication exist; excluding one table lets it plan."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import PG, ROOT, Source


def bulk_load(config: Path, source: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TEST_DB_PASSWORD": PG["password"], "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "jobs" / "bulk_load.py"), "--config", str(config), "--source", source, *args],
                          env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_bulk_load_refuses_colliding_names_before_touching_anything(source: Source):
    s = source.schema
    source.execute(f'CREATE TABLE "{s}"."order items" (id int PRIMARY KEY); CREATE TABLE "{s}".order_items (id int PRIMARY KEY); '
                   f'CREATE TABLE "{s}"."Orders" (id int PRIMARY KEY); CREATE TABLE "{s}".orders (id int PRIMARY KEY); '
                   f'CREATE TABLE "{s}".plain (id int PRIMARY KEY)')
    config = source.write_config()
    for args in (["--dry-run"], ["--fresh-start", "--yes"]):
        result = bulk_load(config, source.name, *args)
        assert result.returncode == 2, result.stderr[-2000:]
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("config error:")]
        assert line.startswith(f'config error: sources.{source.name}: tables "{s}"."Orders" and "{s}"."orders" would share the lake path '
                               f"{source.lake_root}/{source.name}/{s}/Orders on storage that ignores case"), line
        assert (f'tables "{s}"."order items" and "{s}"."order_items" would share the Kafka topic {source.name}.{s}.order_items '
                "(Debezium replaces every character outside [a-zA-Z0-9._-] with '_')") in line
        assert "io.debezium.transforms.ByLogicalTableRouter" in line
    assert not Path(source.lake_root).exists()
    assert source.query("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s", (f"slot_{source.name}",)) == [(0,)]
    assert source.query("SELECT count(*) FROM pg_publication WHERE pubname = %s", (f"pub_{source.name}",)) == [(0,)]
    raw = source.config_dict()
    raw["sources"][source.name]["exclude"] = [f"{s}.order items", f"{s}.orders"]  # as the message suggests
    result = bulk_load(source.write_config(raw), source.name, "--dry-run")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "3 table(s)" in result.stdout
