"""No value, message or fault stops a table: the CDC stream on a live topic fed hostile messages, a table
of every mapped type with extreme values, and a fault injected inside the direct path.

Real PostgreSQL, Debezium, Kafka, Spark and Delta. One scenario: the tables are bulk-loaded, changed,
then the items topic gets hostile messages (wrong JSON types, non-UTF-8 bytes, nesting deep enough to
exhaust a parser, missing or malformed source fields, out-of-range values, another table's event)
between real changes. One ``--available-now`` run must apply every real change (the lake equals the
source, read by Spark and by delta-rs), dead-letter exactly the hostile messages with a reason, and
fail no table. Then an exception raised from delta-rs inside the direct path: Spark applies the range.
Needs the local stack (`make up`).
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.cdc.direct import apply as direct_apply
from lib.cdc.loop import stream as stream_module
from lib.lake.paths import dead_letter_path

from .compare import assert_lake_equals_source
from .conftest import Source
from .kafka_events import BOOTSTRAP, wait_until_captured
from .lake_readers import arrow_rows, assert_same_rows, delta_rs_arrow, source_table_rows, spark_rows
from .test_bulk_fidelity import TYPES_DDL
from .test_cdc_decode import cleanup
from .test_cdc_stream import run_stream, stream_config

SETUP = '''
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2), tags text[], seen timestamptz);
INSERT INTO {s}.items SELECT g, 'item ' || g, g % 7, g * 1.25, ARRAY['t' || g % 3, NULL], timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
FROM generate_series(1, 200) g;
INSERT INTO {s}.all_types (id, c_ts, c_ts3, c_tstz, c_date, c_real, c_double, c_numeric_nan, c_int_arr, c_text_arr, c_ts_arr, c_money, c_interval, c_text)
VALUES (11, '0001-01-01 00:00:00', '0001-01-01 00:00:00.001', '0001-01-01 00:00:00+00', '0001-01-01', 'NaN', '-Infinity', 'NaN', '{{}}', '{{NULL}}',
        '{{"0001-01-01 00:00:00",NULL}}', -92233720368547758.08, '-178000000 years', ''),
       (12, '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.999999+00', '9999-12-31', 'Infinity', 'NaN', 'Infinity',
        '{{NULL,NULL}}', '{{}}', '{{"9999-12-31 23:59:59.999999"}}', 92233720368547758.07, '178000000 years', 'x');
'''

AFTER_LOAD = '''
UPDATE {s}.all_types SET c_text = coalesce(c_text, '') || '+';
UPDATE {s}.all_types SET c_ts = '9999-12-31 23:59:59.999999', c_tstz = '0001-01-01 00:00:00+00', c_real = '-Infinity' WHERE id = 2;
UPDATE {s}.items SET qty = qty + 100 WHERE id <= 20;
'''

AFTER_HOSTILE = '''
UPDATE {s}.items SET name = 'after the hostile messages' WHERE id BETWEEN 21 AND 40;
DELETE FROM {s}.items WHERE id BETWEEN 41 AND 45;
INSERT INTO {s}.items VALUES (1000, 'new after', 1, 9.99, '{{}}', now());
UPDATE {s}.all_types SET c_bool = NOT coalesce(c_bool, false) WHERE id IN (11, 12);
'''


def newest_event(topic: str) -> tuple[bytes, dict[str, Any]]:
    """The key and the parsed value of the newest message of ``topic`` (a real Debezium event)."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"hostile-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, high - 1)])
        while True:
            msg = consumer.poll(5)
            if msg is not None and not msg.error() and msg.value() is not None:
                return msg.key(), json.loads(msg.value())
    finally:
        consumer.close()


def hostile_messages(base: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(what, value) of each hostile message, made from a real event ``base``."""
    def changed(edit: Any) -> bytes:
        event = copy.deepcopy(base)
        edit(event)
        return json.dumps(event).encode()

    deep = 100_000
    return [
        ("a list in a text column", changed(lambda e: e["after"].__setitem__("name", ["x", 1]))),
        ("an object in a text column", changed(lambda e: e["after"].__setitem__("name", {"k": 1}))),
        ("a non-numeric txId", changed(lambda e: e["source"].__setitem__("txId", "abc"))),
        ("JSON nested 100,000 deep", ('{"a":' * deep + "1" + "}" * deep).encode()),
        ("an array nested 100,000 deep in a column", changed(lambda e: e["after"].__setitem__("tags", None)).replace(
            b'"tags": null', b'"tags": ' + b"[" * deep + b"]" * deep)),
        ("non-UTF-8 bytes", b"\xff\xfe\xfd" + json.dumps(base).encode()),
        ("no source block", changed(lambda e: e.pop("source"))),
        ("a source block that is a list", changed(lambda e: e.__setitem__("source", [1, 2]))),
        ("a sequence that is a number", changed(lambda e: e["source"].__setitem__("sequence", 12345))),
        ("an lsn that is not a number", changed(lambda e: e["source"].__setitem__("lsn", "12x"))),
        ("an op that is a number", changed(lambda e: e.__setitem__("op", 5))),
        ("an after image that is a string", changed(lambda e: e.__setitem__("after", "not a row"))),
        ("an integer out of range", changed(lambda e: e["after"].__setitem__("qty", 10**30))),
        ("a decimal too wide", changed(lambda e: e["after"].__setitem__("price", "9" * 40 + ".99"))),
        ("a null key", changed(lambda e: e["after"].__setitem__("id", None))),
        ("another table's event", changed(lambda e: e["source"].__setitem__("table", "all_types"))),
        ("not JSON", b"hello, stream"),
    ]


@pytest.fixture(scope="module")
def hostile(spark: Any, scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    src = Source(scratch_db, f"t_hostile_{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("hostile"))
    s = f'"{src.schema}"'
    src.execute(f"CREATE SCHEMA {s}")
    src.execute(TYPES_DDL.format(s=s) + SETUP.format(s=s))
    config = src.load_config(stream_config(src))
    try:
        assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
        src.execute(AFTER_LOAD.format(s=s))
        wait_until_captured(src, src.name)
        topic = f"{src.name}.{src.schema}.items"
        key, base = newest_event(topic)
        producer = Producer({"bootstrap.servers": BOOTSTRAP, "message.max.bytes": 10_000_000})
        sent: dict[int, str] = {}
        for what, value in hostile_messages(base):
            producer.produce(topic, value=value, key=key, partition=0,
                             on_delivery=lambda err, msg, what=what: sent.__setitem__(msg.offset(), what) if err is None else None)
        assert producer.flush(30) == 0
        assert len(sent) == len(hostile_messages(base)), "every hostile message is in Kafka"
        src.execute(AFTER_HOSTILE.format(s=s))
        wait_until_captured(src, src.name)
        run_stream(spark, config, src)
        yield {"src": src, "config": config, "sent": sent, "topic": topic}
    finally:
        cleanup(src)


def test_every_real_change_around_the_hostile_messages_is_applied(spark: Any, hostile: Any) -> None:
    src = hostile["src"]
    assert assert_lake_equals_source(spark, src, "items", ["id"]) == 200 - 5 + 1
    lake = {r["id"]: r for r in spark.read.format("delta").load(src.lake_path("items")).collect()}
    assert lake[30]["name"] == "after the hostile messages" and lake[1000]["name"] == "new after" and 41 not in lake


def test_exactly_the_hostile_messages_are_dead_letters_with_their_reason(spark: Any, hostile: Any) -> None:
    src, sent = hostile["src"], hostile["sent"]
    dead = spark.read.format("delta").load(dead_letter_path(src.lake_root)).where(f"topic = '{hostile['topic']}'").collect()
    by_offset = {r["offset"]: r for r in dead}
    assert set(by_offset) == set(sent), (f"dead letters: missing {[sent[o] for o in set(sent) - set(by_offset)]}, "
                                         f"extra offsets {sorted(set(by_offset) - set(sent))}")
    for offset, row in by_offset.items():
        assert row["reason"], f"{sent[offset]}: a dead letter without a reason"
    reasons = {sent[o]: r["reason"] for o, r in by_offset.items()}
    assert "another table" in reasons["another table's event"]
    assert "source position" in reasons["a non-numeric txId"] and "source position" in reasons["a sequence that is a number"]
    assert "column name" in reasons["a list in a text column"] and "column qty" in reasons["an integer out of range"]
    assert "key column id is null" in reasons["a null key"]
    assert "unparseable" in reasons["not JSON"] and "unparseable" in reasons["JSON nested 100,000 deep"]


@pytest.mark.parametrize("table", ["all_types", "items"])
def test_every_mapped_type_with_extreme_values_reads_the_same_in_spark_delta_rs_and_the_source(spark: Any, hostile: Any, table: str) -> None:
    src = hostile["src"]
    source_columns, source = source_table_rows(src, table)
    arrow = delta_rs_arrow(src.lake_path(table))
    columns = arrow.column_names
    by_delta_rs, by_spark = arrow_rows(arrow, columns), spark_rows(spark, src.lake_path(table), columns)
    assert_same_rows(by_delta_rs, by_spark, columns, "id", f"{table}: delta-rs vs Spark")
    # Debezium sends timetz in UTC (a documented limit); timestamp[] elements before 1582-10-15 arrive
    # shifted by the Julian calendar (test_lake_readers.test_cdc_timestamp_arrays_before_1582_equal_the_source)
    keep = [i for i, c in enumerate(source_columns) if c not in ("c_timetz", "c_ts_arr")]
    assert_same_rows([tuple(r[i] for i in keep) for r in by_delta_rs], [tuple(r[i] for i in keep) for r in source],
                     [source_columns[i] for i in keep], "id", f"{table}: delta-rs vs source")


def test_no_table_failed_and_the_status_says_cdc(spark: Any, hostile: Any) -> None:
    from lib.status.factory import open_status_store

    src = hostile["src"]
    latest = open_status_store(spark, src.lake_root).latest(src.name)
    for (_, schema, table), event in latest.items():
        assert event.state != "failed", f"{schema}.{table}: {event.last_error}"
        assert event.phase == "cdc" or table == "_marker"


def test_an_exception_from_delta_rs_in_the_direct_path_hands_the_range_to_spark(spark: Any, hostile: Any, monkeypatch: pytest.MonkeyPatch,
                                                                                caplog: pytest.LogCaptureFixture) -> None:
    src, config = hostile["src"], hostile["config"]
    s = f'"{src.schema}"'
    src.execute(f"UPDATE {s}.items SET qty = -qty WHERE id BETWEEN 50 AND 60; DELETE FROM {s}.items WHERE id = 61")
    wait_until_captured(src, src.name)

    def failing_merge(*_: Any, **__: Any) -> Any:
        raise RuntimeError("Generic DeltaTable error: Join Error 'value 42'")

    # the direct pass in this process (no worker processes), so the fault reaches it
    monkeypatch.setattr(stream_module, "DirectApplier", lambda servers, catalog, _processes: direct_apply.DirectApplier(servers, catalog, 0))
    monkeypatch.setattr(direct_apply, "merge_arrow", failing_merge)
    with caplog.at_level(logging.INFO):
        run_stream(spark, config, src)
    handed = [r.getMessage() for r in caplog.records if "applied by Spark, not directly: the direct path failed (RuntimeError" in r.getMessage()]
    assert handed, "the fault was met in the direct path and the range handed to Spark"
    assert all("42" not in m for m in handed), "the log carries no value from the error text"
    assert assert_lake_equals_source(spark, src, "items", ["id"]) == 200 - 5 + 1 - 1
