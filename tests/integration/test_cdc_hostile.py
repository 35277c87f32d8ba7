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

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.cdc.direct import apply as direct_apply
from lib.cdc.direct.decode import NotDirect
from lib.cdc.direct.events import arrow_rows as direct_arrow_rows
from lib.cdc.direct.events import plan, summarize
from lib.cdc.loop import stream as stream_module
from lib.lake.paths import dead_letter_path

from ..hostile import FIELDS, SPEC, known_hostile, mutated_event
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
        for what, value in known_hostile(base, other_table="all_types"):
            producer.produce(topic, value=value, key=key, partition=0,
                             on_delivery=lambda err, msg, what=what: sent.__setitem__(msg.offset(), what) if err is None else None)
        assert producer.flush(30) == 0
        assert len(sent) == len(known_hostile(base, other_table="all_types")), "every hostile message is in Kafka"
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


def _spark_verdicts(spark: Any, messages: list[bytes]) -> dict[int, dict[str, Any]]:
    """Each message (offset = its index) as the Spark path decodes it: its dead-letter reason, or its lake values."""
    from lib.cdc.spark.table_apply import COMPACT, Version, decode
    from lib.cdc.spark.table_range import message_rows

    records = spark.createDataFrame([("t", 0, i, None, bytearray(m)) for i, m in enumerate(messages)],
                                    "topic string, partition int, offset bigint, key binary, value binary")
    decoded, _ = decode(SPEC, message_rows(records), [Version(COMPACT, FIELDS, len(messages))])
    names = [n for n, _ in SPEC.columns]
    table = decoded.selectExpr("__offset", "__error", *[f"`{n}`" for n in names]).toArrow()
    return {row["__offset"]: row for row in table.to_pylist()}


def _direct_verdict(message: bytes) -> dict[str, Any] | str:
    """The message as the direct pass decodes it (its lake values), or why it refuses it."""
    p = plan(SPEC, FIELDS)
    try:
        batch = summarize(p, [(0, 0, message)])
    except NotDirect as exc:
        return str(exc)
    if not batch.rows:
        return "in the bulk copy"
    return direct_arrow_rows(p, batch).select([n for n, _ in SPEC.columns]).to_pylist()[0]


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(mutated_event(), min_size=150, max_size=150))
def test_the_spark_path_and_the_direct_pass_agree_on_generated_hostile_messages(spark: Any, messages: list[bytes]) -> None:
    """Twin property on the same generated messages: the Spark job never fails; a message the direct
    pass decodes, Spark decodes to the same values; a message Spark dead-letters, the direct pass
    refuses (so its range goes to Spark, which dead-letters exactly that message)."""
    messages = messages + [m for _, m in known_hostile()]
    spark_side = _spark_verdicts(spark, messages)
    for i, message in enumerate(messages):
        direct = _direct_verdict(message)
        got = spark_side.get(i)
        assert got is not None, f"message {i} vanished on the Spark path: {message[:200]!r}"
        if isinstance(direct, dict):
            assert got["__error"] is None, f"message {i}: direct decoded it, Spark dead-lettered it ({got['__error']}): {message[:300]!r}"
            assert {k: got[k] for k in direct} == direct, f"message {i}: the paths decode it differently: {message[:300]!r}"
        if got["__error"] is not None:
            assert isinstance(direct, str), f"message {i}: Spark dead-letters it ({got['__error']}), the direct pass took it: {message[:300]!r}"
    for offset in range(len(messages) - len(known_hostile()), len(messages)):
        assert spark_side[offset]["__error"] is not None, f"a known hostile message decoded by Spark: {messages[offset][:200]!r}"
