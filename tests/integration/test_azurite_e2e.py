"""The lake on a real object store: Azurite's Blob service through hadoop-azure's WASB driver.

Bulk load, the CDC stream (twice: the second run resumes from the offsets it recorded in the status table on
Azurite) and validation
(report and history on Azurite) against PostgreSQL -> Debezium -> Kafka, with
``lake.root`` (and the unused ``checkpoints.root``) = ``wasb://<container>@devstoreaccount1.blob.core.windows.net/...`` and
``storage: {accounts: {devstoreaccount1: {auth: emulator}}}``. Every lake table is compared with its source value
by value; the Azure SDK lists the blobs independently of Hadoop; nothing lands on local disk.
What this proves about ABFS and what it does not: docs/azure.md ("The Azurite test").
Needs the local stack (`make up`: Azurite on 127.0.0.1:10000, WASB's fixed emulator endpoint).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.lake.paths import dead_letter_path, source_path, status_path, tombstone_path
from lib.lake.storage import delete_path, is_delta_table, path_exists, read_text
from lib.status.store import StatusStore
from lib.validate.runner import ValidateOptions, validate_source

from .compare import assert_lake_equals_rows, source_rows
from .conftest import Source
from .kafka_events import wait_until_captured
from .test_cdc_decode import cleanup
from .test_cdc_stream import run_stream, stream_config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import azurite_containers  # noqa: E402

PORT = int(os.environ.get("AZURITE_PORT", "10000"))
ACCOUNT_HOST = "devstoreaccount1.blob.core.windows.net"

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


@pytest.fixture(scope="module")
def on_azurite(spark: Any, scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if PORT != 10000:
        pytest.fail(f"AZURITE_PORT={PORT}: WASB's storage-emulator mode always connects to 127.0.0.1:10000 (docs/azure.md)")
    import _cli

    container = f"it-{uuid.uuid4().hex[:10]}"
    try:
        azurite_containers.ensure_containers(PORT, [container])
    except Exception as exc:  # noqa: BLE001 - say what to start
        pytest.fail(f"Azurite does not answer on 127.0.0.1:{PORT} (`make up` starts it): {exc}")
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
        run_stream(spark, config, src)
        yield src, config, container, base
    finally:
        cleanup(src)
        azurite_containers.delete_containers(PORT, [container])


def test_bulk_and_first_stream_run_land_on_azurite_equal_to_the_source(spark: Any, on_azurite: Any) -> None:
    src, _, container, base = on_azurite
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
    names = [b.name for b in azurite_containers.client(PORT).get_container_client(container).list_blobs()]
    assert any(n.startswith(f"lake/{src.name}/{src.schema}/items/_delta_log/") and n.endswith(".json") for n in names)
    assert any(n.startswith(f"lake/{src.name}/{src.schema}/items/") and n.endswith(".parquet") for n in names)
    assert any(n.startswith("lake/_pipeline/status/_delta_log/") for n in names)
    assert not (src.tmp / "lake").exists() and not (src.tmp / "checkpoints").exists()


def test_second_stream_run_resumes_from_its_offsets_on_azurite(spark: Any, on_azurite: Any) -> None:
    src, config, _, base = on_azurite
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


def test_validation_reads_azurite_and_writes_report_and_history_there(spark: Any, on_azurite: Any) -> None:
    src, config, _, base = on_azurite
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
    src, _, container, base = on_azurite
    root = f"{base}/lake"
    here = source_path(root, src.name)
    assert path_exists(spark, here)
    assert delete_path(spark, here)
    assert not path_exists(spark, here) and not delete_path(spark, here)
    StatusStore(spark, root).delete_source(src.name)
    assert StatusStore(spark, root).latest(src.name) == {}
    names = [b.name for b in azurite_containers.client(PORT).get_container_client(container).list_blobs()]
    assert not [n for n in names if n.startswith(f"lake/{src.name}/")], "blobs of the source left on Azurite"
    assert any(n.startswith("lake/_pipeline/status/_delta_log/") for n in names)  # the status table itself stays
