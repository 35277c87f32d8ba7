"""The CDC stream end to end: PostgreSQL -> Debezium -> Kafka -> Spark -> Delta MERGE (issue 4).

Real components only. One scenario per module (the connector and the bulk load are the slow parts):
writes during the bulk load and after it, covering deletes, primary-key changes, delete + re-insert,
TOAST placeholders (insert and update in one batch too), a new column, a truncate, quoted names, a
keyless table (dead letters); then ``--available-now`` until caught up and every lake table equals its
source value by value. Then a type change (dead letters, the stream continues) and a full replay from
an empty checkpoint (idempotency: nothing resurrects, nothing doubles).
Needs the local stack (`make up`).
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.cdc.loop.stream import CdcStream, StreamOptions
from lib.dialects import get_dialect
from lib.lake.paths import dead_letter_path, tombstone_path
from lib.status.store import StatusStore

from .compare import assert_lake_equals_source
from .conftest import Source
from .kafka_events import BOOTSTRAP, wait_until_captured
from .test_cdc_decode import CONNECT, cleanup


def stream_config(src: Source, **stream: Any) -> dict[str, Any]:
    raw = src.config_dict()
    raw["sources"][src.name]["cdc"].update(connect_url=CONNECT, topic_prefix=src.name, password_reference="${env:SHOP_DB_PASSWORD}",
                                           replica_identity_full=True)
    raw["kafka"] = {"bootstrap_servers": BOOTSTRAP}
    raw["stream"] = {"max_offsets_per_trigger": 400, "apply_threads": 2, "retry_backoff_seconds": 0.2, **stream}
    return raw


def run_stream(spark: Any, config: Any, src: Source) -> None:
    failed = CdcStream(spark, config, config.source(src.name), get_dialect("postgres"), StreamOptions(available_now=True)).run()
    assert failed == 0


SETUP = '''
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), big text, tags text[], seen timestamptz);
INSERT INTO {s}.items SELECT g, 'item ' || g, g % 7, g * 1.25, CASE WHEN g % 100 = 0 THEN repeat(md5(g::text), 400) END,
  ARRAY['t' || g % 3, NULL], timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 3000) g;
CREATE TABLE {s}."Mixed Case T" ("Key Col" text PRIMARY KEY, "Val q" int);
INSERT INTO {s}."Mixed Case T" SELECT 'k' || g, g FROM generate_series(1, 50) g;
CREATE TABLE {s}.composite (a int, b text, v int, PRIMARY KEY (a, b));
INSERT INTO {s}.composite SELECT g % 10, 'b' || g, g FROM generate_series(1, 200) g;
CREATE TABLE {s}.keyless (x int, y text);
INSERT INTO {s}.keyless VALUES (1, 'one');
ALTER TABLE {s}.items ALTER COLUMN big SET STORAGE EXTERNAL;
'''

AFTER_LOAD = '''
UPDATE {s}.items SET qty = qty + 100 WHERE id % 100 = 0;                 -- big unchanged: TOAST placeholder
INSERT INTO {s}.items VALUES (5001, 'fresh', 1, 1.00, repeat('z', 9000), NULL, now());
UPDATE {s}.items SET qty = 2 WHERE id = 5001;                            -- insert + TOAST update in one batch
DELETE FROM {s}.items WHERE id BETWEEN 10 AND 19;
UPDATE {s}.items SET id = 100000 + id WHERE id BETWEEN 20 AND 24;        -- primary-key change
BEGIN; DELETE FROM {s}.items WHERE id = 30; INSERT INTO {s}.items VALUES (30, 'reborn in one txn', 0, 0, NULL, '{{}}', NULL); COMMIT;
DELETE FROM {s}.items WHERE id = 31;
INSERT INTO {s}.items VALUES (31, 'reborn later', 0, 0, NULL, NULL, NULL);
INSERT INTO {s}.items VALUES (32000, 'short-lived', 0, 0, NULL, NULL, NULL);
DELETE FROM {s}.items WHERE id = 32000;
ALTER TABLE {s}.items ADD COLUMN note text;
UPDATE {s}.items SET note = 'noted ' || id WHERE id % 50 = 1;
INSERT INTO {s}.items (id, name, note) VALUES (6000, 'with note', 'n');
UPDATE {s}."Mixed Case T" SET "Val q" = -1 WHERE "Key Col" IN ('k1', 'k2');
DELETE FROM {s}."Mixed Case T" WHERE "Key Col" = 'k3';
INSERT INTO {s}."Mixed Case T" VALUES ('new ''key'' !', 7);
INSERT INTO {s}.composite VALUES (99, 'pre-truncate', 1);
TRUNCATE {s}.composite;
INSERT INTO {s}.composite VALUES (1, 'after', 1), (2, 'after', 2);
UPDATE {s}.composite SET v = 20 WHERE a = 2;
INSERT INTO {s}.keyless VALUES (2, 'two');
'''


def writer_during_load(src: Source, stop: threading.Event, counter: list[int]) -> None:
    """Small transactions on items while the bulk load runs (new keys, updates, deletes)."""
    rnd = random.Random(3)
    conn = src.connect()
    try:
        with conn.cursor() as cur:
            n = 0
            while not stop.is_set() and n < 400:
                n += 1
                key = rnd.randint(1, 3000)
                cur.execute(f'UPDATE "{src.schema}".items SET qty = qty + 1, name = name || %s WHERE id = %s', ("+", key))
                cur.execute(f'INSERT INTO "{src.schema}".items VALUES (%s, %s, 1, 2.5, NULL, NULL, now())', (10000 + n, f"during {n}"))
                if n % 5 == 0:
                    cur.execute(f'DELETE FROM "{src.schema}".items WHERE id = %s', (10000 + n - 1,))
        counter.append(n)
    finally:
        conn.close()


def scenario(spark: Any, scratch_db: str, tmp_path_factory: pytest.TempPathFactory, name: str, setup: str, after_load: str,
             writer: Callable[[Source, threading.Event], None]) -> Iterator[tuple[Source, Any, dict[tuple[str, int], int]]]:
    """A schema made by ``setup``, bulk-loaded while ``writer`` changes it, then changed by ``after_load``;
    yields (source, config, Kafka end offsets) once Debezium captured everything; drops the connector after."""
    src = Source(scratch_db, f"{name}_{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp(name))
    s = f'"{src.schema}"'
    src.execute(f"CREATE SCHEMA {s}")
    src.execute(setup.format(s=s))
    config = src.load_config(stream_config(src))
    stop = threading.Event()
    thread = threading.Thread(target=writer, args=(src, stop))
    try:
        thread.start()
        assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
        stop.set()
        thread.join()
        src.execute(after_load.format(s=s))
        yield src, config, wait_until_captured(src, src.name)
    finally:
        stop.set()
        cleanup(src)


@pytest.fixture(scope="module")
def streamed(spark: Any, scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    for src, config, _ in scenario(spark, scratch_db, tmp_path_factory, "t_cdc_stream", SETUP, AFTER_LOAD,
                                   lambda src, stop: writer_during_load(src, stop, [])):
        run_stream(spark, config, src)
        yield src, config


@pytest.mark.parametrize("table", ["items", 'Mixed Case T', "composite", "_marker"])
def test_every_table_equals_its_source_after_catching_up(spark: Any, streamed: Any, table: str) -> None:
    src, _ = streamed
    key = {"items": ["id"], 'Mixed Case T': ["Key Col"], "composite": ["a", "b"], "_marker": ["token"]}[table]
    assert assert_lake_equals_source(spark, src, table, key) > 0


def test_the_cases_the_issue_lists_ended_right(spark: Any, streamed: Any) -> None:
    src, _ = streamed
    lake = {r["id"]: r for r in spark.read.format("delta").load(src.lake_path("items")).collect()}
    assert lake[100]["big"] == "".join([__import__("hashlib").md5(b"100").hexdigest()] * 400), "a TOAST placeholder overwrote a value"
    assert lake[5001]["big"] == "z" * 9000 and lake[5001]["qty"] == 2
    assert all(k not in lake for k in range(10, 25)) and all(100000 + k in lake for k in range(20, 25))
    assert lake[30]["name"] == "reborn in one txn" and lake[31]["name"] == "reborn later" and 32000 not in lake
    assert lake[6000]["note"] == "n" and lake[51]["note"] == "noted 51" and lake[2]["note"] is None
    composite = {(r["a"], r["b"]) for r in spark.read.format("delta").load(src.lake_path("composite")).collect()}
    assert composite == {(1, "after"), (2, "after")}


def test_tombstones_are_blind_appends_so_parallel_tables_never_conflict(spark: Any, streamed: Any) -> None:
    """The deleted keys of every table's applies are appended to the source's one tombstone table with
    the status commits while other tables apply (lib/cdc/loop/tombstone_buffer.py); only a blind append (no
    read of the table in the same transaction) cannot fail with ConcurrentAppendException, so this
    checks the commits themselves. On this local lake delta-rs makes them (lake.pipeline_writer): its
    commitInfo has no isBlindAppend flag, so its commits are checked by their actions: files added,
    nothing removed, no metadata change."""
    from delta.tables import DeltaTable

    src, _ = streamed
    path = tombstone_path(src.lake_root, src.name)
    history = DeltaTable.forPath(spark, path).history().where("operation = 'WRITE'").collect()
    assert history, "the deletes left no tombstone append"
    for h in history:
        with open(f"{path}/_delta_log/{h['version']:020d}.json", encoding="utf-8") as commit:
            actions = [json.loads(line) for line in commit]
        kinds = {next(iter(a)) for a in actions}
        by_delta_rs = (h["engineInfo"] or "").startswith("delta-rs")
        assert by_delta_rs, f"tombstones appended by {h['engineInfo']}, not by delta-rs (the local lake's pipeline writer)"
        assert h["operationParameters"]["mode"] == "Append" and kinds == {"commitInfo", "add"}, (h["version"], kinds)


def test_merges_are_made_by_delta_rs_where_it_can_write_the_table(spark: Any, streamed: Any) -> None:
    """On this local lake delta-rs MERGEs (stream.merge_writer, lib/cdc/delta_rs_merge.py) into every
    table it can write; a table whose names need column mapping is MERGEd by Spark, with deletion
    vectors (stream.deletion_vectors: auto). Every table still equals its source (above)."""
    from delta.tables import DeltaTable

    src, _ = streamed
    engines = {}
    for table in ("items", "composite", "Mixed Case T"):
        merges = DeltaTable.forPath(spark, src.lake_path(table)).history().where("operation = 'MERGE'").collect()
        engines[table] = {(m["engineInfo"] or "").split(":")[0].split("/")[0] for m in merges}
    assert engines == {"items": {"delta-rs"}, "composite": {"delta-rs"}, "Mixed Case T": {"Apache-Spark"}}, engines
    features = {t: DeltaTable.forPath(spark, src.lake_path(t)).detail().collect()[0]["tableFeatures"] for t in ("items", "Mixed Case T")}
    assert "deletionVectors" not in features["items"] and "deletionVectors" in features["Mixed Case T"], features


def test_keyless_table_events_are_dead_lettered_and_status_has_cdc_fields(spark: Any, streamed: Any) -> None:
    src, _ = streamed
    dead = spark.read.format("delta").load(dead_letter_path(src.lake_root)).where(f"topic = '{src.name}.{src.schema}.keyless'").collect()
    assert len(dead) == 1 and "no primary key" in dead[0]["reason"]
    message = json.loads(dead[0]["value"])  # the whole message, as the connector wrote it (compact: no schema block)
    assert message["after"] == {"x": 2, "y": "two"} and "schema" not in message
    status = spark.read.format("delta").load(f"{src.lake_root}/_pipeline/status").where("phase = 'cdc' AND table = 'items'").orderBy("seq").collect()
    assert status and status[-1]["state"] == "running" and status[-1]["cdc_position"]
    assert status[-1]["cdc_inserted"] > 0 and status[-1]["cdc_updated"] > 0 and status[-1]["cdc_deleted"] > 0
    assert status[-1]["cdc_lag"] == 0 and status[-1]["cdc_event_time"] is not None
    assert json.loads(status[-1]["cdc_offsets"]) == {"0": wait_until_captured(src, src.name)[(f"{src.name}.{src.schema}.items", 0)]}


def test_type_change_goes_to_dead_letters_and_the_stream_continues(spark: Any, streamed: Any) -> None:
    src, config = streamed
    s = f'"{src.schema}"'
    qty_before = spark.read.format("delta").load(src.lake_path("items")).where("id = 1").collect()[0]["qty"]
    mixed, val = '"Mixed Case T"', '"Val q"'
    src.execute(f"ALTER TABLE {s}.items ALTER COLUMN qty TYPE text USING qty::text; UPDATE {s}.items SET qty = 'many' WHERE id = 1; "
                f"UPDATE {s}.{mixed} SET {val} = 42 WHERE \"Key Col\" = 'k4'")
    wait_until_captured(src, src.name)
    run_stream(spark, config, src)
    dead = spark.read.format("delta").load(dead_letter_path(src.lake_root)).where(f"topic = '{src.name}.{src.schema}.items'").collect()
    assert len(dead) == 1 and "qty" in dead[0]["reason"] and "type change" in dead[0]["reason"]
    assert_lake_equals_source(spark, src, 'Mixed Case T', ["Key Col"])
    row = spark.read.format("delta").load(src.lake_path("items")).where("id = 1").collect()[0]
    assert row["qty"] == qty_before is not None  # the stored value stays: never a silent NULL or a wrong value


def forget_offsets(spark: Any, src: Source) -> None:
    """Make every table start again from offset 0 (as a crash before any progress was recorded would)."""
    status = StatusStore(spark, src.lake_root)
    status.append(*[e.next(cdc_offsets=None) for e in status.latest(src.name).values() if e.phase == "cdc"])


def test_replay_from_offset_zero_changes_nothing(spark: Any, streamed: Any) -> None:
    """Every event again, from offset 0: positions, tombstones and the truncate floor make it a no-op."""
    src, config = streamed
    before = {t: sorted(map(str, spark.read.format("delta").load(src.lake_path(t)).drop("__ingested_at").collect())) for t in ("composite", 'Mixed Case T')}
    items_before = spark.read.format("delta").load(src.lake_path("items")).drop("__ingested_at").collect()
    forget_offsets(spark, src)
    run_stream(spark, config, src)
    after = {t: sorted(map(str, spark.read.format("delta").load(src.lake_path(t)).drop("__ingested_at").collect())) for t in before}
    assert after == before
    assert sorted(map(str, spark.read.format("delta").load(src.lake_path("items")).drop("__ingested_at").collect())) == sorted(map(str, items_before))


def test_bad_messages_go_to_dead_letters_and_the_stream_continues(spark: Any, streamed: Any) -> None:
    """Unparseable messages, a message that is no change event, another table's event on the topic: dead
    letters with the raw message, topic, partition, offset and reason; the other events are applied."""
    from confluent_kafka import Producer

    src, config = streamed
    topic = f"{src.name}.{src.schema}.composite"  # (items' events are dead letters since its type change)
    producer = Producer({"bootstrap.servers": BOOTSTRAP})
    unknown = {"schema": {"type": "struct", "fields": [{"field": "after", "type": "struct", "fields": []}]},
               "payload": {"op": "c", "before": None, "after": {}, "source": {"schema": src.schema, "table": "nosuch"}}}
    compact = json.dumps(unknown, separators=(",", ":"))  # as Kafka Connect's JsonConverter writes
    for value in (b"\x00not json", json.dumps({"payload": {"op": "c"}}).encode(), compact.encode()):
        producer.produce(topic, value=value)
    producer.flush(10)
    src.execute(f'UPDATE "{src.schema}".composite SET v = 99 WHERE a = 1')
    wait_until_captured(src, src.name)
    run_stream(spark, config, src)
    dead = spark.read.format("delta").load(dead_letter_path(src.lake_root)).where(f"topic = '{topic}'").collect()
    assert len(dead) == 3, [r["reason"] for r in dead]
    assert sum(r["reason"].startswith("unparseable") for r in dead) == 2
    assert sum(r["reason"].startswith(f"an event of {src.schema}.nosuch on the topic of {src.schema}.composite") for r in dead) == 1
    assert {r["value"] for r in dead} == {"\x00not json", json.dumps({"payload": {"op": "c"}}), compact}
    assert all(r["partition"] == 0 and r["offset"] >= 0 for r in dead)
    assert_lake_equals_source(spark, src, "composite", ["a", "b"])  # the change after the bad messages arrived
    assert spark.read.format("delta").load(src.lake_path("composite")).where("a = 1").collect()[0]["v"] == 99


def test_every_file_the_stream_wrote_stores_timestamps_as_int64_micros(streamed: Any) -> None:
    """MERGEs, status, dead letters and tombstones (issue 10): no INT96, read from the Parquet footers."""
    from .parquet_types import not_int64_micros, timestamp_columns

    src, _ = streamed
    columns = timestamp_columns(src.lake_root)
    areas = {c[0].split("/")[1] if c[0].startswith("_pipeline/") else c[0].split("/")[2] for c in columns}
    assert {"status", "dead_letter", "tombstones", "items"} <= areas, sorted(areas)
    assert not not_int64_micros(columns), not_int64_micros(columns)
