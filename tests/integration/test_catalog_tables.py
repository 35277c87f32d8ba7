"""Lake tables by name: with `catalog:` set, the jobs register every lake table in the metastore.

Classic local Spark with the Derby-backed Hive metastore the jobs keep under <checkpoints.root>/metastore:
the bulk load registers each table (names folded: "Order Items" is order_items), another process reads
them by name and finds the source's rows; a column added at the source and applied by the stream is
visible by name; --fresh-start drops the names and the reload registers them again. Every job is a
subprocess (Derby serves one process at a time). Needs the local stack (`make up`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, Source, job_env
from .kafka_events import BOOTSTRAP, wait_until_captured
from .test_cdc_decode import CONNECT, cleanup

SETUP = """
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}."Order Items" (id int PRIMARY KEY, "Name" text, price numeric(10,2));
INSERT INTO {s}."Order Items" SELECT g, 'n' || g, g * 1.5 FROM generate_series(1, 120) g;
CREATE TABLE {s}."Customers" (id int PRIMARY KEY, city text);
INSERT INTO {s}."Customers" SELECT g, 'c' || g FROM generate_series(1, 30) g;
"""

READ_BY_NAME = """
import json, sys
sys.path.insert(0, {jobs!r})
from _session import get_spark
spark = get_spark("read-by-name", {conf!r})
out = {{}}
for name in {names!r}:
    df = spark.table(name)
    out[name] = {{"columns": df.columns, "rows": sorted(tuple(str(v) for v in r) for r in df.collect())}}
print("RESULT " + json.dumps(out))
"""


def run(args: list[str], timeout: float = 300) -> str:
    done = subprocess.run([sys.executable, *args], env=job_env(), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout + done.stderr


def read_by_name(checkpoints: Path, names: list[str]) -> dict[str, Any]:
    home = str(checkpoints.absolute()) + "/metastore"
    conf = {"spark.sql.catalogImplementation": "hive", "spark.sql.warehouse.dir": f"{home}/warehouse",
            "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={home}/metastore_db;create=true"}
    output = run(["-c", READ_BY_NAME.format(jobs=str(ROOT / "jobs"), conf=conf, names=names)])
    return json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[len("RESULT "):])


@pytest.fixture(scope="module")
def registered(scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    src = Source(scratch_db, f"t_catalog_{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("catalog"))
    s = f'"{src.schema}"'
    src.execute(f"CREATE SCHEMA {s}")
    src.execute(SETUP.format(s=s))
    raw = src.config_dict()
    raw["sources"][src.name]["cdc"].update(connect_url=CONNECT, topic_prefix=src.name, password_reference="${env:SHOP_DB_PASSWORD}")
    raw["kafka"] = {"bootstrap_servers": BOOTSTRAP}
    raw["catalog"] = {"name": "spark_catalog"}
    config = src.tmp / "catalog.yaml"
    config.write_text(yaml.safe_dump(raw))
    try:
        output = run([str(ROOT / "jobs" / "bulk_load.py"), "--config", str(config), "--source", src.name])
        yield src, config, output
    finally:
        cleanup(src)


def names(src: Source) -> dict[str, str]:
    schema = f"spark_catalog.{src.name}_{src.schema}".lower()
    return {"Order Items": f"{schema}.order_items", "Customers": f"{schema}.customers"}


def source_rows(src: Source, table: str) -> list[tuple[str, ...]]:
    return sorted(tuple(str(v) for v in row) for row in src.query(f'SELECT * FROM "{src.schema}"."{table}"'))


def test_the_bulk_load_registers_every_table_and_another_process_reads_them_by_name(registered: Any) -> None:
    src, _, output = registered
    assert "catalog: 3 tables registered in spark_catalog (3 created, 0 kept, 0 moved to their lake path)" in output
    found = read_by_name(Path(src.tmp / "checkpoints"), list(names(src).values()))
    for table, name in names(src).items():
        lake = [tuple(v for v in row[: len(source_rows(src, table)[0])]) for row in found[name]["rows"]]
        assert sorted(lake) == source_rows(src, table), name
    assert found[names(src)["Order Items"]]["columns"][:3] == ["id", "Name", "price"]


def test_a_column_the_stream_adds_is_visible_by_name_and_fresh_start_registers_again(registered: Any) -> None:
    src, config, _ = registered
    s = f'"{src.schema}"'
    src.execute(f'ALTER TABLE {s}."Customers" ADD COLUMN tier int')
    src.execute(f'UPDATE {s}."Customers" SET tier = 2 WHERE id <= 3')
    wait_until_captured(src, src.name)
    output = run([str(ROOT / "jobs" / "cdc_stream.py"), "--config", str(config), "--source", src.name, "--available-now"])
    assert "catalog: 3 tables registered in spark_catalog (0 created, 3 kept, 0 moved to their lake path)" in output
    name = names(src)["Customers"]
    found = read_by_name(Path(src.tmp / "checkpoints"), [name])[name]
    assert "tier" in found["columns"]
    tiers = {row[0]: row[found["columns"].index("tier")] for row in found["rows"]}
    assert [tiers[str(i)] for i in (1, 2, 3, 4)] == ["2", "2", "2", "None"]

    output = run([str(ROOT / "jobs" / "bulk_load.py"), "--config", str(config), "--source", src.name, "--fresh-start", "--yes"])
    assert "catalog: 3 tables of" in output and "unregistered" in output
    assert "catalog: 3 tables registered in spark_catalog (3 created, 0 kept, 0 moved to their lake path)" in output
    assert len(read_by_name(Path(src.tmp / "checkpoints"), [names(src)["Order Items"]])[names(src)["Order Items"]]["rows"]) == 120
