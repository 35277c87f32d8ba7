"""``jobs/validate.py --repair`` beside the CDC stream: a lake table with rows deleted, altered and added
behind the pipeline's back (Delta DML on the table itself) is repaired from a source snapshot, the next
validation passes, the lake equals the source value by value, and later source changes still stream
into the repaired rows. A history table (``cdc.history: scd2``) is repaired in its current versions: wrong
ones closed and right ones opened, intervals still chained. One scenario per module (the connector and the bulk load are the slow parts).
Needs the local stack (`make up`).
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.validate.runner import ValidateOptions, validate_source

from .compare import assert_lake_equals_source
from .conftest import Source
from .kafka_events import wait_until_captured
from .test_cdc_decode import cleanup
from .test_cdc_history import assert_current_equals_source
from .test_cdc_stream import run_stream, stream_config

SETUP = '''
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), seen timestamptz);
INSERT INTO {s}.items SELECT g, 'item ' || g, g % 7, g * 1.25, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 3000) g;
CREATE TABLE {s}."Pair T" (a int, "b col" text, v int, PRIMARY KEY (a, "b col"));
INSERT INTO {s}."Pair T" SELECT g % 10, 'b' || g, g FROM generate_series(1, 200) g;
CREATE TABLE {s}.untouched (id int PRIMARY KEY, v text);
INSERT INTO {s}.untouched SELECT g, 'v' || g FROM generate_series(1, 50) g;
CREATE TABLE {s}.hist (id int PRIMARY KEY, v text);
INSERT INTO {s}.hist SELECT g, 'h' || g FROM generate_series(1, 40) g;
'''

# changes the stream applies before the lake is damaged
STREAMED = '''
UPDATE {s}.items SET qty = qty + 100 WHERE id % 97 = 0;
DELETE FROM {s}.items WHERE id BETWEEN 2990 AND 3000;
INSERT INTO {s}.items VALUES (5000, 'streamed', 1, 1.00, now());
UPDATE {s}.hist SET v = 'streamed' WHERE id IN (1, 2);
DELETE FROM {s}.hist WHERE id = 3;
'''

# damage done to the lake behind the pipeline's back
DAMAGE = [
    "DELETE FROM delta.`{items}` WHERE id IN (5, 6, 7, 1500)",
    "UPDATE delta.`{items}` SET qty = -1, name = 'wrong' WHERE id IN (100, 2000)",
    "UPDATE delta.`{items}` SET price = price + 0.01 WHERE id = 5000",
    "INSERT INTO delta.`{items}` (id, name, qty, price, seen, __source_commit_pos, __source_change_pos, __op, __ingested_at) "
    "VALUES (99999, 'ghost', 0, 0, NULL, 0, 0, 'r', current_timestamp())",
    "DELETE FROM delta.`{pair}` WHERE a = 3 AND `b col` = 'b13'",
    # a history table: a wrong current version, a key with no version, a live key marked deleted, a ghost key
    "UPDATE delta.`{hist}` SET v = 'wrong' WHERE id = 1 AND __is_current",
    "DELETE FROM delta.`{hist}` WHERE id = 11",
    "UPDATE delta.`{hist}` SET __is_deleted = true WHERE id = 12",
    "INSERT INTO delta.`{hist}` (id, v, __source_commit_pos, __source_change_pos, __op, __ingested_at, __valid_from, __valid_to, "
    "__is_current, __is_deleted) VALUES (999, 'ghost', 0, 0, 'r', current_timestamp(), timestamp'2020-01-01', NULL, true, false)",
]

# source changes after the repair, touching repaired rows
LATER = '''
UPDATE {s}.items SET name = 'after repair' WHERE id IN (5, 100, 5000);
DELETE FROM {s}.items WHERE id IN (6, 2000);
INSERT INTO {s}.items VALUES (99999, 'real now', 9, 9.99, NULL);
UPDATE {s}."Pair T" SET v = -13 WHERE a = 3 AND "b col" = 'b13';
UPDATE {s}.hist SET v = 'later' WHERE id IN (1, 11, 12);
'''

TABLES = {"items": ["id"], "Pair T": ["a", "b col"], "untouched": ["id"]}


@pytest.fixture(scope="module")
def repaired(spark: Any, scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Source, Any, dict[str, Any], int]]:
    src = Source(scratch_db, f"t_repair_{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("repair"))
    s = f'"{src.schema}"'
    src.execute(f"CREATE SCHEMA {s}")
    src.execute(SETUP.format(s=s))
    raw = stream_config(src)
    raw["sources"][src.name]["tables"] = {f"{src.schema}.hist": {"history": "scd2"}}  # soft deletes: tests/unit/test_validate_repair_history.py
    config = src.load_config(raw)
    try:
        assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
        src.execute(STREAMED.format(s=s))
        wait_until_captured(src, src.name)
        run_stream(spark, config, src)
        for statement in DAMAGE:
            spark.sql(statement.format(items=src.lake_path("items"), pair=src.lake_path("Pair T"), hist=src.lake_path("hist")))
        report = Path(src.tmp) / "repair.json"
        code = validate_source(spark, config, src.name, ValidateOptions(report_path=report, repair=True))
        yield src, config, json.loads(report.read_text()), code
    finally:
        cleanup(src)


def _table(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in document["tables"] if t["table"] == name)


def test_repair_exits_0_and_reports_what_it_repaired(repaired: Any) -> None:
    _, _, document, code = repaired
    assert code == 0, [(t["table"], t["verdict"], t["reason"]) for t in document["tables"]]
    for name in ("items", "Pair T"):
        table = _table(document, name)
        repair = next(c for c in table["checks"] if c["name"] == "repair")
        assert repair["status"] == "pass" and "bucket(s) by MERGE" in repair["message"], repair
        assert table["verdict"] == "PASS", table["reason"]
    # items (an integer key): only the 8 keys the drill-down named are read from the source, 4 of them
    # missing in the lake (inserted) and 1 the source lacks (deleted); Pair T (a text key column): its buckets
    items = next(c for c in _table(document, "items")["checks"] if c["name"] == "repair")["message"]
    assert "the 8 differing key(s) of " in items and "3 updated, 4 inserted, 1 deleted" in items, items
    pair = next(c for c in _table(document, "Pair T")["checks"] if c["name"] == "repair")["message"]
    assert "differing key(s)" not in pair, pair
    table = _table(document, "hist")
    repair = next(c for c in table["checks"] if c["name"] == "repair")
    assert repair["status"] == "pass" and "4 version(s) opened, 3 closed" in repair["message"] and table["verdict"] == "PASS", (repair, table["reason"])
    untouched = _table(document, "untouched")
    assert untouched["verdict"] == "PASS" and not any(c["name"] == "repair" for c in untouched["checks"])


def test_repaired_rows_carry_the_snapshot_position_and_only_differing_rows_were_rewritten(spark: Any, repaired: Any) -> None:
    src, _, _, _ = repaired
    lake = {r["id"]: r for r in spark.read.format("delta").load(src.lake_path("items")).collect()}
    assert 99999 not in lake and all(k in lake for k in (5, 6, 7, 1500))
    assert lake[100]["qty"] == 100 % 7 and lake[100]["name"] == "item 100" and lake[5000]["price"] == 1
    fixed = [lake[k] for k in (5, 6, 7, 1500, 100, 2000, 5000)]
    assert {r["__op"] for r in fixed} == {"r"}
    positions = {r["__source_commit_pos"] for r in fixed}
    assert len(positions) == 1 and positions.pop() > 0
    # rows that were right keep the version the stream wrote, whatever their bucket: equal rows are not rewritten
    streamed = [r for k, r in lake.items() if k % 97 == 0 and k < 2990]
    assert streamed and {r["__op"] for r in streamed} == {"u"}


def test_next_validation_passes_and_the_lake_equals_the_source(spark: Any, repaired: Any) -> None:
    src, config, _, _ = repaired
    assert validate_source(spark, config, src.name, ValidateOptions(report_path=Path(src.tmp) / "again.json")) == 0
    for table, key in TABLES.items():
        assert assert_lake_equals_source(spark, src, table, key) > 0


def check_versions(spark: Any, src: Source) -> dict[int, list[Any]]:
    """The history table's versions per key: chained without gaps or overlaps, exactly one current."""
    by_key: dict[int, list[Any]] = {}
    for r in spark.read.format("delta").load(src.lake_path("hist")).collect():
        by_key.setdefault(r["id"], []).append(r)
    for key, versions in by_key.items():
        versions.sort(key=lambda r: (r["__valid_from"], r["__source_commit_pos"], r["__source_change_pos"]))
        for a, b in itertools.pairwise(versions):
            assert a["__valid_to"] == b["__valid_from"] and not a["__is_current"], (key, a, b)
        assert versions[-1]["__is_current"] and versions[-1]["__valid_to"] is None, (key, versions[-1])
    return by_key


def test_a_history_table_is_repaired_in_its_current_versions(spark: Any, repaired: Any) -> None:
    src, _, _, _ = repaired
    versions = check_versions(spark, src)
    assert [(r["v"], r["__is_deleted"]) for r in versions[999]] == [("ghost", False), ("ghost", True)]  # closed by a deleted version
    assert [(r["v"], r["__is_deleted"], r["__op"]) for r in versions[1]][-2:] == [("wrong", False, "u"), ("streamed", False, "r")]
    assert [(r["v"], r["__is_current"]) for r in versions[11]] == [("h11", True)] and versions[3][-1]["__is_deleted"]
    assert [(r["v"], r["__is_deleted"], r["__is_current"]) for r in versions[12]] == [("h12", True, False), ("h12", False, True)]
    assert_current_equals_source(spark, src, "hist")


def test_later_source_changes_stream_into_the_repaired_table(spark: Any, repaired: Any) -> None:
    src, config, _, _ = repaired
    src.execute(LATER.format(s=f'"{src.schema}"'))
    wait_until_captured(src, src.name)
    run_stream(spark, config, src)
    for table, key in TABLES.items():
        assert assert_lake_equals_source(spark, src, table, key) > 0
    assert_current_equals_source(spark, src, "hist")
    assert [r["v"] for r in check_versions(spark, src)[12]][-1] == "later"
    lake = {r["id"]: r for r in spark.read.format("delta").load(src.lake_path("items")).where("id IN (5, 6, 99999)").collect()}
    assert lake[5]["name"] == "after repair" and 6 not in lake and lake[99999]["name"] == "real now"
