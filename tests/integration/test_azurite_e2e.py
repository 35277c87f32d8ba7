"""The lake on a real object store: Azurite's Blob service through hadoop-azure's WASB driver.

Bulk load, the CDC stream (twice: the second run resumes from the offsets it recorded in the status table on
Azurite) and validation
(report and history on Azurite) against PostgreSQL -> Debezium -> Kafka, with
``lake.root`` (and the unused ``checkpoints.root``) = ``wasb://<container>@devstoreaccount1.blob.core.windows.net/...`` and
``storage: {accounts: {devstoreaccount1: {auth: emulator}}}``. Every lake table is compared with its source value
by value, through Spark and through delta-rs straight from Azurite (a second reader, independent of Hadoop);
the Azure SDK lists the blobs independently of Hadoop; nothing lands on local disk. Where delta-rs can write
(lib/lake/delta_rs_storage.py) it MERGEs the tables and writes the status table and the tombstones on Azurite,
and a table whose lake path has a space gets no deletion vectors (delta-rs could not read them: issue 26).
What this proves about ABFS and what it does not: docs/azure.md ("The Azurite test").
Needs the local stack (`make up`: Azurite on 127.0.0.1:10000, WASB's fixed emulator endpoint).
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.lake.paths import dead_letter_path, source_path, status_path, tombstone_path
from lib.lake.storage import delete_path, is_delta_table, path_exists, read_text, turn_off_deletion_vectors
from lib.status.store import StatusStore
from lib.validate.runner import ValidateOptions, validate_source

from .azurite import ACCOUNT_HOST, assert_equal_by_delta_rs, blobs, delta_rs_table, fresh_container
from .compare import assert_lake_equals_rows, source_rows
from .conftest import Source
from .kafka_events import wait_until_captured
from .test_cdc_decode import cleanup
from .test_cdc_stream import run_stream, stream_config

SETUP = """
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), seen timestamptz, tags text[]);
INSERT INTO {s}.items SELECT g, 'item ' || g, g % 7, g * 1.25, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute',
  ARRAY['t' || g % 3] FROM generate_series(1, 2000) g;
CREATE TABLE {s}."Mixed Case T" ("Key Col" text PRIMARY KEY, "Val q" int);
INSERT INTO {s}."Mixed Case T" SELECT 'k' || g, g FROM generate_series(1, 50) g;
CREATE TABLE {s}.keyless (x int, y text);
"""
CHANGES_1 = """
UPDATE {s}.items SET qty = qty + 100, name = name || ' (updated)' WHERE id % 40 = 0;
DELETE FROM {s}.items WHERE id BETWEEN 10 AND 19;
UPDATE {s}.items SET id = 100000 + id WHERE id BETWEEN 20 AND 22;
INSERT INTO {s}.items VALUES (5001, 'fresh', 1, 1.00, now(), NULL);
UPDATE {s}."Mixed Case T" SET "Val q" = -1 WHERE "Key Col" = 'k1';
DELETE FROM {s}."Mixed Case T" WHERE "Key Col" = 'k2';
INSERT INTO {s}.keyless VALUES (1, 'one');
"""
CHANGES_2 = """
DELETE FROM {s}.items WHERE id = 5001;
INSERT INTO {s}.items VALUES (5002, 'second run', 2, 2.00, now(), ARRAY['x']);
UPDATE {s}.items SET price = price * 2 WHERE id % 100 = 1;
"""
KEYS = {"items": ["id"], "Mixed Case T": ["Key Col"]}


def assert_equal(spark: Any, src: Source, root: str, table: str) -> int:
    columns, expected = source_rows(src, src.schema, table)
    return assert_lake_equals_rows(spark, f"{root}/{src.name}/{src.schema}/{table}", columns, expected, KEYS[table], "delta", table)


def last_commit(container: str, table_dir: str) -> dict[str, Any]:
    """The commitInfo of the newest commit of the table under ``table_dir`` in the container (Azure SDK)."""
    newest = max(b.name for b in blobs(container).list_blobs(name_starts_with=f"{table_dir}/_delta_log/") if b.name.endswith(".json"))
    for line in blobs(container).download_blob(newest).readall().decode().splitlines():
        if line.startswith('{"commitInfo"'):
            return json.loads(line)["commitInfo"]
    raise AssertionError(f"{newest} has no commitInfo")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def run_stream_logged(spark: Any, config: Any, src: Source) -> list[str]:
    """run_stream, returning what the MERGE writers and the stream logged (the delta-rs MERGE's line is DEBUG)."""
    handler = _Records()
    loggers = [logging.getLogger(n) for n in ("lib.cdc.delta_rs_merge", "lib.cdc.loop", "lib.cdc.spark", "lib.cdc.direct")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        run_stream(spark, config, src)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
    return handler.lines


@pytest.fixture(scope="module")
def on_azurite(spark: Any, scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    import _cli

    with fresh_container("it") as container:
        yield from _loaded(spark, scratch_db, tmp_path_factory, container, _cli)


def _loaded(spark: Any, scratch_db: str, tmp_path_factory: pytest.TempPathFactory, container: str, _cli: Any) -> Any:
    src = Source(scratch_db, f"t_azurite_{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("azurite"))
    s = f'"{src.schema}"'
    src.execute(f"CREATE SCHEMA {s}")
    src.execute(SETUP.format(s=s))
    raw = stream_config(src)
    base = f"wasb://{container}@{ACCOUNT_HOST}"
    raw["lake"]["root"] = f"{base}/lake"
    raw["checkpoints"]["root"] = f"{base}/checkpoints"
    raw["storage"] = {"accounts": {"devstoreaccount1": {"auth": "emulator"}}}
    config = src.load_config(raw)
    assert _cli.spark(config, "tests") is spark  # the active session gets the storage settings
    try:
        assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
        src.execute(CHANGES_1.format(s=s))
        wait_until_captured(src, src.name)
        lines = run_stream_logged(spark, config, src)
        yield src, config, container, base, lines
    finally:
        cleanup(src)


def test_bulk_and_first_stream_run_land_on_azurite_equal_to_the_source(spark: Any, on_azurite: Any) -> None:
    src, _, container, base, _ = on_azurite
    root = f"{base}/lake"
    assert assert_equal(spark, src, root, "items") == 2000 - 10 + 1
    assert assert_equal(spark, src, root, "Mixed Case T") == 49
    # the pipeline tables on Azurite
    for path in (status_path(root), dead_letter_path(root), tombstone_path(root, src.name)):
        assert is_delta_table(spark, path), path
    dead = spark.read.format("delta").load(dead_letter_path(root)).where(f"topic = '{src.name}.{src.schema}.keyless'").collect()
    assert len(dead) == 1 and "no primary key" in dead[0]["reason"]
    assert spark.read.format("delta").load(tombstone_path(root, src.name)).count() > 0, "the deletes left no tombstone on Azurite"
    latest = StatusStore(spark, root).latest(src.name)
    phases = {t: (e.phase, e.state) for (_, _, t), e in latest.items()}
    assert phases["items"] == ("cdc", "running") and phases["Mixed Case T"] == ("cdc", "running")
    assert latest[(src.name, src.schema, "items")].location == f"{root}/{src.name}/{src.schema}/items"
    # the stream's progress (each table's next Kafka offsets) is in the status table on Azurite
    assert json.loads(latest[(src.name, src.schema, "items")].cdc_offsets or "{}"), "no offsets recorded for items"
    # seen by the Azure SDK, not only through Hadoop; and nothing on local disk
    names = [b.name for b in blobs(container).list_blobs()]
    assert any(n.startswith(f"lake/{src.name}/{src.schema}/items/_delta_log/") and n.endswith(".json") for n in names)
    assert any(n.startswith(f"lake/{src.name}/{src.schema}/items/") and n.endswith(".parquet") for n in names)
    assert any(n.startswith("lake/_pipeline/status/_delta_log/") for n in names)
    assert not (src.tmp / "lake").exists() and not (src.tmp / "checkpoints").exists()


def test_delta_rs_writes_the_lake_on_azurite_and_reads_it_as_a_second_reader(on_azurite: Any) -> None:
    """Item 2 of issue 26: delta-rs MERGEs the tables it can write, and writes the status table and the tombstones,
    on the remote lake; item 3: delta-rs reads every lake table from Azurite, equal to the source value by value,
    the table with spaces in its path included (no deletion vectors there)."""
    src, _, container, _, lines = on_azurite
    assert not [line for line in lines if "the direct path failed" in line or "the delta-rs MERGE failed" in line], lines[:40]
    # the direct path's worker processes reach Azurite (they are given the job's storage: accounts)
    assert any(f"[{src.schema}.items]: " in line and "; by direct (" in line for line in lines), [ln for ln in lines if "cdc batch" in ln][:20]
    assert not [line for line in lines if "cannot reach the lake from this process" in line]
    merged = [line for line in lines if "MERGEd by delta-rs" in line]
    assert any(f"{src.schema}.items" in line for line in merged), [ln for ln in lines if "items" in ln][:20]
    lake = f"lake/{src.name}/{src.schema}"
    assert last_commit(container, f"{lake}/items")["engineInfo"].startswith("delta-rs"), "the last MERGE into items was not delta-rs'"
    assert last_commit(container, "lake/_pipeline/status")["engineInfo"].startswith("delta-rs"), "the status table was not written by delta-rs"
    assert last_commit(container, f"lake/_pipeline/tombstones/{src.name}")["engineInfo"].startswith("delta-rs"), "tombstones not by delta-rs"
    # "Mixed Case T": column names with spaces (column mapping: Spark MERGEs it); a space in its path: no deletion vectors
    assert not any("MERGEd by delta-rs" in line and "Mixed Case T" in line for line in lines)
    assert any("Mixed Case T: no Delta deletion vectors" in line and "delta-kernel-rs#918" in line for line in lines), lines[:30]
    names = [b.name for b in blobs(container).list_blobs(name_starts_with=f"{lake}/")]
    assert not [n for n in names if "deletion_vector_" in n], "deletion vectors written on Azurite"
    assert assert_equal_by_delta_rs(src, container, "items", "id") == 2000 - 10 + 1
    assert assert_equal_by_delta_rs(src, container, "Mixed Case T", "Key Col") == 49


def test_delta_rs_still_misreads_deletion_vectors_under_a_space_on_an_object_store(spark: Any, tmp_path: Path) -> None:
    """The upstream bug behind the rule (lib.lake.delta_rs_storage.deletion_vectors_reason): a Delta table with a
    deletion vector, written by Spark (storage type ``u``: relative to the table, nothing percent-encoded), copied
    byte for byte to ``lake/Sales Dept/Order Items`` on Azurite, is read by delta-rs from a local path but not
    from the object store (the space encoded twice: delta-io/delta-kernel-rs#918). When this fails, a deltalake
    release has the fix: the rule can go (docs/azure.md). Then the stream's remedy for a table that has them:
    deletion vectors off and purged, after which delta-rs reads it from the object store."""
    with fresh_container("it-dv") as container:
        _misread_then_read(spark, container, tmp_path / "Sales Dept" / "Order Items")


def _misread_then_read(spark: Any, container: str, local: Path) -> None:
    spark.range(0, 20).selectExpr("id", "cast(id AS string) AS s").coalesce(1).write.format("delta") \
        .option("delta.enableDeletionVectors", "true").save(str(local))
    spark.sql(f"DELETE FROM delta.`{local}` WHERE id < 5")
    client = blobs(container)
    for file in local.rglob("*"):
        if file.is_file():
            client.upload_blob(f"canary/Sales Dept/Order Items/{file.relative_to(local)}", file.read_bytes(), overwrite=True)
    log = [json.loads(x) for x in (local / "_delta_log" / "00000000000000000001.json").read_text().splitlines()]
    (dv,) = [a["add"]["deletionVector"] for a in log if "add" in a and a["add"].get("deletionVector")]
    assert dv["storageType"] == "u"  # relative to the table root: Spark's side holds no encoded path
    assert pa.table(QueryBuilder().register("t", DeltaTable(str(local))).execute("SELECT count(*) AS n FROM t").read_all())["n"][0].as_py() == 15
    with pytest.raises(Exception, match="Sales%2520Dept/Order%2520Items/deletion_vector_"):
        delta_rs_table(container, "canary/Sales Dept/Order Items")
    # what the stream does to such a table that has them (lib.lake.storage.turn_off_deletion_vectors): readable then
    assert turn_off_deletion_vectors(spark, str(local), {"delta.enableDeletionVectors": "true"})
    for file in local.rglob("*"):
        if file.is_file():
            client.upload_blob(f"canary/Sales Dept/Order Items/{file.relative_to(local)}", file.read_bytes(), overwrite=True)
    assert sorted(delta_rs_table(container, "canary/Sales Dept/Order Items")["id"].to_pylist()) == list(range(5, 20))


def test_second_stream_run_resumes_from_its_offsets_on_azurite(spark: Any, on_azurite: Any) -> None:
    src, config, container, base, _ = on_azurite
    root = f"{base}/lake"
    before = json.loads(StatusStore(spark, root).latest(src.name)[(src.name, src.schema, "items")].cdc_offsets)
    src.execute(CHANGES_2.format(s=f'"{src.schema}"'))
    ends = wait_until_captured(src, src.name)
    run_stream(spark, config, src)
    after = json.loads(StatusStore(spark, root).latest(src.name)[(src.name, src.schema, "items")].cdc_offsets)
    assert after == {"0": ends[(f"{src.name}.{src.schema}.items", 0)]} and after["0"] > before["0"]  # resumed, went on
    assert assert_equal(spark, src, root, "items") == 2000 - 10 + 1
    lake_ids = {r["id"] for r in spark.read.format("delta").load(f"{root}/{src.name}/{src.schema}/items").select("id").collect()}
    assert 5002 in lake_ids and 5001 not in lake_ids
    assert assert_equal(spark, src, root, "Mixed Case T") == 49
    assert assert_equal_by_delta_rs(src, container, "items", "id") == 2000 - 10 + 1  # the second reader after the second run too
    assert assert_equal_by_delta_rs(src, container, "Mixed Case T", "Key Col") == 49


def test_validation_reads_azurite_and_writes_report_and_history_there(spark: Any, on_azurite: Any) -> None:
    src, config, _, base, _ = on_azurite
    report = f"{base}/reports/validation_{src.name}.json"
    options = ValidateOptions(report_path=report, tables=["items", "Mixed Case T"])
    assert validate_source(spark, config, src.name, options) == 0
    document = json.loads(read_text(spark, report))
    assert document["summary"] == {"tables": 2, "passed": 2, "failed": 0, "in_flight": 0}
    assert document["lake_root"] == f"{base}/lake"
    assert read_text(spark, f"{base}/reports/validation_{src.name}.html").startswith("<!doctype html>")
    history = spark.read.format("delta").load(f"{base}/lake/_pipeline/validation").where(f"source = '{src.name}'").collect()
    assert len(history) == 2


def test_fresh_start_removes_the_source_from_azurite(spark: Any, on_azurite: Any) -> None:
    """What ``bulk_load.py --fresh-start`` does to the lake (its source's tables and status rows go), on Azurite.
    Last in the module: it removes what the tests above read."""
    src, _, container, base, _ = on_azurite
    root = f"{base}/lake"
    here = source_path(root, src.name)
    assert path_exists(spark, here)
    assert delete_path(spark, here)
    assert not path_exists(spark, here) and not delete_path(spark, here)
    StatusStore(spark, root).delete_source(src.name)
    assert StatusStore(spark, root).latest(src.name) == {}
    names = [b.name for b in blobs(container).list_blobs()]
    assert not [n for n in names if n.startswith(f"lake/{src.name}/")], "blobs of the source left on Azurite"
    assert any(n.startswith("lake/_pipeline/status/_delta_log/") for n in names)  # the status table itself stays
