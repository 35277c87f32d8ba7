"""Every job under spark-submit, with docs/deploy.md's command lines, on local[2], from a directory that is not
the checkout (so nothing is found by accident: no PYTHONPATH, the project is not installed in the venv).

One source with CDC, one bulk load shared by the whole module:

- the project from the wheel (what cluster deploy mode ships): the job file copied alone to the working
  directory and ``--py-files dist/lakehouse_ingest-0.1.0-py3-none-any.whl``: bulk_load (registers the connector,
  writes its config under the working directory), cdc_connector status, status --json;
- the job file of the checkout (client mode from a checkout): cdc_stream --available-now after a few changes
  (lake == source value by value), validate (every table PASS, its report under the working directory);
- the entry point behind ``lakehouse-status`` (jobs.entry, a Databricks wheel task) in a process with an active session.

Needs the local stack (`make up`: PostgreSQL, Kafka, Kafka Connect + Debezium).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from .compare import assert_lake_equals_source
from .conftest import Source, job_env
from .kafka_events import wait_until_captured
from .test_cdc_decode import cleanup
from .test_cdc_stream import stream_config

ROOT = Path(__file__).resolve().parents[2]
WHEEL = ROOT / "dist" / "lakehouse_ingest-0.1.0-py3-none-any.whl"
KEYS = {"customers": ["id"], "Order Lines": ["id"]}

SETUP = """
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.customers (id int PRIMARY KEY, name text, created timestamptz);
INSERT INTO {s}.customers SELECT g, 'name ' || g, '2024-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 3000) g;
CREATE TABLE {s}."Order Lines" (id bigint PRIMARY KEY, amount numeric(12,2));
INSERT INTO {s}."Order Lines" SELECT g, g * 1.25 FROM generate_series(1, 1500) g;
"""
CHANGES = """
UPDATE {s}.customers SET name = name || ' (moved)' WHERE id % 100 = 0;
DELETE FROM {s}.customers WHERE id BETWEEN 10 AND 14;
UPDATE {s}.customers SET id = 100000 + id WHERE id = 20;
INSERT INTO {s}.customers VALUES (9001, 'new', now());
UPDATE {s}."Order Lines" SET amount = -amount WHERE id <= 3;
DELETE FROM {s}."Order Lines" WHERE id = 1500;
"""


def submit(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """spark-submit as docs/deploy.md has it: pyspark's, from the venv on PATH (`source .venv/bin/activate`)."""
    env = job_env()
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    env.pop("PYTHONPATH", None)  # lib must be found without it
    command = [str(ROOT / ".venv" / "bin" / "spark-submit"), "--master", "local[2]", "--properties-file", str(ROOT / "dist" / "spark-submit.conf"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def from_wheel(job: str, args: list[str], away: Path) -> subprocess.CompletedProcess:
    """The job file alone in ``away``, the project from the wheel."""
    shutil.copy(ROOT / "jobs" / f"{job}.py", away / f"{job}.py")
    return submit(["--py-files", str(WHEEL), f"{job}.py", *args], away)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


@pytest.fixture(scope="module")
def loaded(spark: Any, scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`make dist`, then one source bulk-loaded by ``spark-submit --py-files <wheel> bulk_load.py`` from elsewhere."""
    build = subprocess.run(["make", "dist"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    assert WHEEL.exists()
    src = Source(scratch_db, f"t_submit_{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("submit"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    probe = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", "import lib.config"], cwd=src.tmp, env=env, capture_output=True, text=True)
    assert probe.returncode != 0, "the project is importable from the venv without the wheel: the test would prove nothing"
    s = f'"{src.schema}"'
    src.execute(f"CREATE SCHEMA {s}")
    src.execute(SETUP.format(s=s))
    cfg = src.write_config(stream_config(src))
    away = src.tmp / "away"
    away.mkdir()
    try:
        load = from_wheel("bulk_load", ["--config", str(cfg), "--source", src.name], away)
        ok(load)
        assert "Cannot use io.delta.sql.DeltaSparkSessionExtension" not in load.stderr
        yield src, cfg, away
    finally:
        cleanup(src)


def test_bulk_load_from_the_wheel(spark: Any, loaded: Any) -> None:
    src, _, away = loaded
    assert assert_lake_equals_source(spark, src, "customers", KEYS["customers"]) == 3000
    assert assert_lake_equals_source(spark, src, "Order Lines", KEYS["Order Lines"]) == 1500
    # the connector config's default place, the project coming from the wheel: the working directory
    document = json.loads((away / "config" / f"debezium_{src.name}.json").read_text())
    assert document["name"] == f"lakehouse-{src.name}"
    assert not (ROOT / "config" / f"debezium_{src.name}.json").exists()


def test_cdc_connector_status_from_the_wheel(loaded: Any) -> None:
    src, cfg, away = loaded
    report = json.loads(ok(from_wheel("cdc_connector", ["--config", str(cfg), "--source", src.name, "status", "--json"], away)))
    assert (report["connector"], report["connector_state"], report["tasks"]) == (f"lakehouse-{src.name}", "RUNNING", ["RUNNING"]), report
    assert report["published_tables"] == 3, report


def test_stream_validate_and_status_after_changes(spark: Any, loaded: Any) -> None:
    src, cfg, away = loaded
    src.execute(CHANGES.format(s=f'"{src.schema}"'))
    wait_until_captured(src, src.name)

    # the checkout's job files, run from elsewhere (client mode from a checkout)
    ok(submit([str(ROOT / "jobs" / "cdc_stream.py"), "--config", str(cfg), "--source", src.name, "--available-now"], away))
    assert assert_lake_equals_source(spark, src, "customers", KEYS["customers"]) == 3000 - 5 + 1
    assert assert_lake_equals_source(spark, src, "Order Lines", KEYS["Order Lines"]) == 1499

    lines = ok(submit([str(ROOT / "jobs" / "validate.py"), "--config", str(cfg), "--source", src.name], away)).splitlines()
    assert f"PASS {src.schema}.customers" in "\n".join(lines) and f'PASS {src.schema}.Order Lines' in "\n".join(lines), lines
    report = json.loads((away / "reports" / f"validation_{src.name}.json").read_text())
    verdicts = {t["table"]: t["verdict"] for t in report["tables"]}
    assert verdicts["customers"] == verdicts["Order Lines"] == "PASS", verdicts

    rows = {r["table"]: r for r in map(json.loads, ok(from_wheel("status", ["--config", str(cfg), "--source", src.name, "--json"], away)).splitlines())}
    assert {t: (rows[t]["phase"], rows[t]["state"]) for t in KEYS} == {"customers": ("cdc", "running"), "Order Lines": ("cdc", "running")}
    assert (rows["customers"]["cdc_inserted"], rows["customers"]["cdc_deleted"]) == (2, 6)  # the key change: a delete and an insert


def test_status_entry_point_with_an_active_session(loaded: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The entry point of `lakehouse-status` (jobs.entry) in a process whose session is active, as in a Databricks wheel task."""
    src, cfg, _ = loaded
    sys.path.insert(0, str(WHEEL))
    try:
        from jobs import entry

        argv = sys.argv
        sys.argv = ["lakehouse-status", "--config", str(cfg), "--source", src.name]
        try:
            with pytest.raises(SystemExit) as exited:
                entry.status()
        finally:
            sys.argv = argv
    finally:
        sys.path.remove(str(WHEEL))
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "customers" in out and "Order Lines" in out and "cdc" in out
