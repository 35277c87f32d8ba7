"""The jobs under spark-submit (docs/deploy.md's command lines, on local[2]) and from the wheel.

- from the checkout: ``spark-submit --master 'local[2]' --properties-file dist/spark-submit.conf jobs/<job>.py ...``
- the job file alone with the project from the wheel (what cluster deploy mode ships):
  ``spark-submit ... --py-files dist/lakehouse_ingest-0.1.0-py3-none-any.whl status.py ...`` from another directory
- the entry point behind ``lakehouse-status`` (jobs.entry, a Databricks wheel task) in a process with an active session
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .compare import assert_lake_equals_source
from .conftest import job_env

ROOT = Path(__file__).resolve().parents[2]
WHEEL = ROOT / "dist" / "lakehouse_ingest-0.1.0-py3-none-any.whl"


@pytest.fixture(scope="module")
def dist() -> Path:
    """`make dist`, the documented build step: the wheel and dist/spark-submit.conf."""
    result = subprocess.run(["make", "dist"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert WHEEL.exists()
    return ROOT / "dist"


def submit(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = job_env()
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"  # `source .venv/bin/activate`, as documented
    env.pop("PYTHONPATH", None)  # lib must be found without it
    command = [str(ROOT / ".venv" / "bin" / "spark-submit"), "--master", "local[2]", "--properties-file", str(ROOT / "dist" / "spark-submit.conf"), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def test_bulk_load_and_status_under_spark_submit(dist, spark, source, tmp_path, capsys):
    source.execute(f"""
        CREATE TABLE "{source.schema}".customers (id int PRIMARY KEY, name text, created timestamptz);
        INSERT INTO "{source.schema}".customers SELECT g, 'name ' || g, '2024-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 3000) g;
        CREATE TABLE "{source.schema}"."Order Lines" (id bigint PRIMARY KEY, amount numeric(12,2));
        INSERT INTO "{source.schema}"."Order Lines" SELECT g, g * 1.25 FROM generate_series(1, 1500) g;
    """)
    cfg = source.write_config(source.config_dict(cdc=False))

    load = submit(["jobs/bulk_load.py", "--config", str(cfg), "--source", source.name])
    assert load.returncode == 0, load.stderr[-4000:]
    assert "Cannot use io.delta.sql.DeltaSparkSessionExtension" not in load.stderr
    assert assert_lake_equals_source(spark, source, "customers", ["id"]) == 3000
    assert assert_lake_equals_source(spark, source, "Order Lines", ["id"]) == 1500

    # The job file alone, from another directory, with lib from the wheel (what cluster deploy mode ships).
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(ROOT / "jobs" / "status.py", alone / "status.py")
    status = submit(["--py-files", str(WHEEL), "status.py", "--config", str(cfg), "--source", source.name, "--json"], cwd=alone)
    assert status.returncode == 0, status.stdout[-2000:] + status.stderr[-4000:]
    rows = {r["table"]: r for r in map(json.loads, status.stdout.splitlines())}
    assert {t: (r["phase"], r["state"], r["row_count"]) for t, r in rows.items()} == {
        "customers": ("bulk", "completed", 3000), "Order Lines": ("bulk", "completed", 1500)}

    # The entry point of `lakehouse-status` (jobs.entry) in a process whose session is active, as in a Databricks wheel task.
    sys.path.insert(0, str(WHEEL))
    try:
        from jobs import entry

        argv = sys.argv
        sys.argv = ["lakehouse-status", "--config", str(cfg), "--source", source.name]
        try:
            with pytest.raises(SystemExit) as exited:
                entry.status()
        finally:
            sys.argv = argv
    finally:
        sys.path.remove(str(WHEEL))
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "customers" in out and "completed" in out and "3000" in out
