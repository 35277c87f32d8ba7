"""Every job as a Spark Connect client: ``SPARK_REMOTE=sc://127.0.0.1:<port>`` against the local server of
``scripts/stack.sh up spark-connect`` (docs/spark-connect.md), no JVM in the job's process.

One source with a split table, small tables (the delta-rs path), quoted mixed-case names and many column
types: the bulk load (registers the Debezium connector), then changes captured by the real connector and
the CDC stream with ``--available-now`` twice (the direct path with delta-rs MERGEs, then Spark's Kafka
source and Spark's MERGE), ``jobs/validate.py`` and ``jobs/status.py``, each a job subprocess with
SPARK_REMOTE set, then a ``--fresh-start``; the lake equals the source value by value (read with a classic session).
The tables are registered by name in the server's metastore (``catalog: {name: spark_catalog}``) and read by name
by another Spark Connect client, after the stream added a column.
The module starts the server when it is not running and stops it at the end if it started it.
Needs the local stack (`make up`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from lib.debezium.connect_client import ConnectClient

from .compare import assert_lake_equals_source
from .conftest import ROOT, Source, job_env
from .kafka_events import wait_until_captured
from .lake_readers import delta_rs_arrow
from .test_cdc_decode import CONNECT, cleanup
from .test_cdc_stream import stream_config

PORT = int(os.environ.get("SPARK_CONNECT_PORT", "15002"))
REMOTE = f"sc://127.0.0.1:{PORT}"
STACK = ["bash", str(ROOT / "scripts" / "stack.sh")]

SETUP = """
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), ratio double precision, ok boolean,
  born date, seen timestamptz, local_at timestamp, doc jsonb, uid uuid, raw bytea, tags text[], nums int[]);
INSERT INTO {s}.items SELECT g, 'item ' || g, g % 7, g * 1.25, g / 7.0, g % 2 = 0, date '2024-01-01' + g,
  timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', timestamp '1999-12-31 23:59:59.5' + g * interval '1 second',
  jsonb_build_object('g', g), md5(g::text)::uuid, decode(md5(g::text), 'hex'), ARRAY['t' || g % 3, NULL], ARRAY[g, -g]
  FROM generate_series(1, 3000) g;
CREATE TABLE {s}."Mixed Case T" ("Key Col" text PRIMARY KEY, "Val q" int, "When" timestamptz);
INSERT INTO {s}."Mixed Case T" SELECT 'k' || g, g, timestamptz '2020-02-29 12:00:00+00' + g * interval '1 day' FROM generate_series(1, 50) g;
CREATE TABLE {s}."CamelCase" ("Id" int PRIMARY KEY, "Amount" numeric(20,4), "Note" varchar(20));
INSERT INTO {s}."CamelCase" SELECT g, g * 1000.0001, 'n' || g FROM generate_series(1, 40) g;
CREATE TABLE {s}.keyless (x int, y text);
INSERT INTO {s}.keyless VALUES (1, 'one'), (2, 'two');
"""
CHANGES = """
UPDATE {s}.items SET qty = qty + 100, name = name || ' ({k})', tags = ARRAY['changed'] WHERE id % 50 = {k};
DELETE FROM {s}.items WHERE id BETWEEN {k}00 AND {k}04;
UPDATE {s}.items SET id = 100000 + id WHERE id BETWEEN {k}10 AND {k}11;
INSERT INTO {s}.items (id, name, seen, local_at, raw) VALUES (5000 + {k}, 'new {k}', now(), '2024-02-29 10:00:00', '\\x00ff');
UPDATE {s}."Mixed Case T" SET "Val q" = -{k} WHERE "Key Col" = 'k{k}';
DELETE FROM {s}."Mixed Case T" WHERE "Key Col" = 'k1{k}';
UPDATE {s}."CamelCase" SET "Amount" = "Amount" * -1, "Note" = 'round {k}' WHERE "Id" <= 5;
"""
TABLES = {"items": ["id"], "Mixed Case T": ["Key Col"], "CamelCase": ["Id"]}
# Another Spark Connect client reads tables by name: the jobs registered them in the server's metastore.
READ_BY_NAME = """
import json
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote({remote!r}).getOrCreate()
out = {{}}
for name in {names!r}:
    df = spark.table(name)
    out[name] = {{"columns": df.columns, "rows": sorted([str(v) for v in r] for r in df.collect())}}
print("RESULT " + json.dumps(out))
"""


def stack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STACK, *args], capture_output=True, text=True, timeout=300, env={**os.environ, "SPARK_CONNECT_PORT": str(PORT)})


@pytest.fixture(scope="module")
def server() -> Any:
    """The local Spark Connect server: started here unless it runs, stopped at the end if started here."""
    started = stack("status", "spark-connect").returncode != 0
    if started:
        up = stack("up", "spark-connect")
        assert up.returncode == 0, up.stdout + up.stderr
    yield REMOTE
    if started:
        down = stack("down", "spark-connect")
        assert down.returncode == 0, down.stdout + down.stderr


def run_job(job: str, config: Path, src: Source, *args: str, timeout: float = 300) -> tuple[int, str]:
    """Run a job file as its own process with SPARK_REMOTE set; its output is also kept in the test's directory."""
    env = {**job_env(), "SPARK_REMOTE": REMOTE}
    done = subprocess.run([sys.executable, str(ROOT / "jobs" / job), "--config", str(config), "--source", src.name, *args],
                          env=env, capture_output=True, text=True, timeout=timeout, cwd=src.tmp)
    output = done.stdout + done.stderr
    (src.tmp / f"{job}-{uuid.uuid4().hex[:4]}.log").write_text(output)
    assert "py4j" not in output and "Traceback" not in output, output[-4000:]
    return done.returncode, output


def write(src: Source, raw: dict[str, Any]) -> Path:
    path = src.tmp / f"config-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def loaded(server: str, scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    src = Source(scratch_db, f"t_spark_connect_{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("spark_connect"))
    s = f'"{src.schema}"'
    src.execute(f"CREATE SCHEMA {s}")
    src.execute(SETUP.format(s=s))
    raw = stream_config(src)
    raw["bulk"].update(min_rows_to_split=1000, rows_per_chunk=1500, partitions=2)
    raw["lake"]["pipeline_writer"] = "spark"  # the status table and tombstones by Spark over Connect, as on a remote lake
    raw["catalog"] = {"name": "spark_catalog"}  # tables by name, in the server's metastore
    timings: dict[str, float] = {}
    try:
        started = time.monotonic()
        code, output = run_job("bulk_load.py", write(src, raw), src, "--log-level", "DEBUG")
        timings["bulk_load"] = time.monotonic() - started
        assert code == 0, output[-4000:]
        yield src, raw, output, timings
    finally:
        cleanup(src)


def test_the_bulk_load_runs_over_spark_connect_and_the_lake_equals_the_source(spark: Any, loaded: Any) -> None:
    src, raw, output, _ = loaded
    cdc = src.load_config(raw).source(src.name).cdc
    assert ConnectClient(CONNECT).status(cdc.connector_name)["connector"]["state"] == "RUNNING"  # the handoff registered it
    assert "small tables use the run's session (Spark Connect: no child sessions)" in output
    # the fast paths run over Spark Connect too: the server shares this machine's disk
    assert f"{src.schema}.CamelCase: read directly, 40 rows" in output, output[-4000:]
    first_commit = Path(src.lake_path("CamelCase"), "_delta_log", f"{0:020d}.json").read_text()
    assert '"engineInfo":"delta-rs:' in first_commit
    for table, key in TABLES.items():
        assert assert_lake_equals_source(spark, src, table, key) == src.query(f'SELECT count(*) FROM "{src.schema}"."{table}"')[0][0]
    assert assert_lake_equals_source(spark, src, "keyless") == 2


@pytest.mark.parametrize("path", ["direct", "spark"])
def test_the_stream_applies_real_debezium_events_over_spark_connect(spark: Any, loaded: Any, path: str) -> None:
    src, raw, _, timings = loaded
    k = 1 if path == "direct" else 2
    src.execute(CHANGES.format(s=f'"{src.schema}"', k=k))
    wait_until_captured(src, src.name)
    if path == "spark":  # a column the stream adds reaches the table registered by name
        src.execute(f'ALTER TABLE "{src.schema}"."CamelCase" ADD COLUMN "Tier" int; UPDATE "{src.schema}"."CamelCase" SET "Tier" = 7 WHERE "Id" = 1')
    raw = {**raw, "stream": {**raw["stream"], "event_reader": path, "merge_writer": "delta-rs" if path == "direct" else "spark"}}
    started = time.monotonic()
    code, output = run_job("cdc_stream.py", write(src, raw), src, "--available-now", "--log-level", "DEBUG")
    timings[f"cdc_stream ({path})"] = time.monotonic() - started
    assert code == 0, output[-4000:]
    assert f"; by {path}" in output, output[-4000:]
    for table, key in TABLES.items():
        assert assert_lake_equals_source(spark, src, table, key) == src.query(f'SELECT count(*) FROM "{src.schema}"."{table}"')[0][0]


def test_the_long_running_stream_applies_changes_over_spark_connect_and_stops_on_sigterm(spark: Any, loaded: Any) -> None:
    """Without ``--available-now`` the stream keeps polling; a change made while it runs reaches the lake, and SIGTERM
    stops it after its running applies, exit 0."""
    src, raw, _, _ = loaded
    raw = {**raw, "stream": {**raw["stream"], "trigger_seconds": 1}}
    log_file = src.tmp / "long-running-stream.log"
    stream = subprocess.Popen([sys.executable, str(ROOT / "jobs" / "cdc_stream.py"), "--config", str(write(src, raw)), "--source", src.name],
                              env={**job_env(), "SPARK_REMOTE": REMOTE}, cwd=src.tmp, stdout=log_file.open("ab"), stderr=subprocess.STDOUT)
    try:
        src.execute(f'INSERT INTO "{src.schema}".items (id, name) VALUES (7777, \'while running\')')
        deadline = time.monotonic() + 180
        while not (landed := 7777 in delta_rs_arrow(src.lake_path("items"))["id"].to_pylist()):  # DataFusion: deletion vectors applied
            assert stream.poll() is None, f"the stream exited {stream.returncode}: {log_file.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"row 7777 not in the lake after 180 s: {log_file.read_text()[-4000:]}"
            time.sleep(0.5)  # polling the lake for the stream's progress
        assert landed
        stream.send_signal(signal.SIGTERM)
        assert stream.wait(timeout=120) == 0, log_file.read_text()[-4000:]
    finally:
        if stream.poll() is None:
            stream.kill()
    output = log_file.read_text()
    assert "stopping after the running applies" in output and "py4j" not in output and "Traceback" not in output, output[-4000:]
    assert assert_lake_equals_source(spark, src, "items", ["id"]) == src.query(f'SELECT count(*) FROM "{src.schema}".items')[0][0]


def test_validate_and_status_run_over_spark_connect(loaded: Any) -> None:
    src, raw, _, timings = loaded
    config = write(src, raw)
    started = time.monotonic()
    code, output = run_job("validate.py", config, src)
    timings["validate"] = time.monotonic() - started
    assert code == 0, output[-4000:]
    for table in (*TABLES, "keyless"):
        assert f"PASS  {src.schema}.{table}" in output or f"PASS {src.schema}.{table}" in output, output[-4000:]
    report = json.loads((src.tmp / "reports" / f"validation_{src.name}.json").read_text())
    assert {t["table"] for t in report["tables"]} >= set(TABLES)
    code, output = run_job("status.py", config, src, "--json")
    assert code == 0, output[-3000:]
    states = {json.loads(line)["table"]: json.loads(line)["phase"] for line in output.splitlines() if line.startswith("{")}
    assert states["items"] == "cdc" and states["keyless"] == "bulk", states
    print("job timings over Spark Connect (s):", {k: round(v, 1) for k, v in timings.items()})


def test_the_tables_are_read_by_name_over_spark_connect(loaded: Any) -> None:
    src, _, output, _ = loaded
    assert re.search(r"catalog: (\d+) tables registered in spark_catalog \(\1 created, 0 kept, 0 moved to their lake path\)", output), output[-4000:]
    schema = f"spark_catalog.{src.name}_{src.schema}".lower()
    names = {table: f"{schema}.{table.lower().replace(' ', '_')}" for table in TABLES}
    done = subprocess.run([sys.executable, "-c", READ_BY_NAME.format(remote=REMOTE, names=list(names.values()))],
                          env=job_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    found = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[len("RESULT "):])
    for table, name in names.items():
        columns = [c for (c,) in src.query("SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                                            "ORDER BY ordinal_position", (src.schema, table))]
        lake_columns = found[name]["columns"]
        assert [c for c in lake_columns if not c.startswith("__")] == columns, name  # the added column after the __ columns
        keys = sorted(str(k) for (k,) in src.query(f'SELECT "{TABLES[table][0]}" FROM "{src.schema}"."{table}"'))
        assert sorted(row[lake_columns.index(TABLES[table][0])] for row in found[name]["rows"]) == keys, name
    camel_columns = found[names["CamelCase"]]["columns"]
    picks = [camel_columns.index(c) for c in ("Id", "Amount", "Note", "Tier")]  # int, numeric(20,4), varchar, int: the same text
    camel = sorted([row[i] for i in picks] for row in found[names["CamelCase"]]["rows"])
    assert camel == sorted([str(v) for v in row] for row in src.query(f'SELECT "Id", "Amount", "Note", "Tier" FROM "{src.schema}"."CamelCase"'))
    assert ["1", "1000.0001", "round 2", "7"] in camel and ["6", "6000.0006", "n6", "None"] in camel  # the stream's changes, by name


def test_a_fresh_start_over_spark_connect_deletes_the_sources_lake_and_status(loaded: Any) -> None:
    src, raw, _, _ = loaded
    config = write(src, raw)
    code, output = run_job("bulk_load.py", config, src, "--fresh-start", "--yes", "--tables", "CamelCase")
    assert code == 0, output[-4000:]
    assert f"fresh start: deleted {src.lake_root}/{src.name}" in output and f"status: removed every event of source {src.name}" in output
    assert sorted(p.name for p in Path(src.lake_root, src.name, src.schema).iterdir()) == ["CamelCase"]
    code, output = run_job("status.py", config, src, "--json")
    assert code == 0, output[-3000:]
    assert [json.loads(line)["table"] for line in output.splitlines() if line.startswith("{")] == ["CamelCase"]
