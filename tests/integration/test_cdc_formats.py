"""Both message formats end exact, and a column added while the stream runs arrives with the bulk
path's type (issue 11). Real PostgreSQL, Debezium, Kafka, Spark and Delta; needs the local stack.

- old format: the connector writes Kafka Connect JSON with a schema block in every message
  (``cdc.message_format: json_with_schema``, as existing deployments do); the stream recognizes it
  from the messages and applies them exactly;
- compact format, long-running stream: rows change, then ``ALTER TABLE ... ADD COLUMN`` (a decimal, a
  timestamptz, a text array) while the stream runs; the stream reads the catalog again, adds the
  columns and fills them, and the table equals its source value by value.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.cdc.loop.stream import CdcStream, StreamOptions
from lib.dialects import get_dialect
from lib.lake.paths import dead_letter_path

from .compare import assert_lake_equals_source
from .conftest import Source
from .kafka_events import BOOTSTRAP, wait_until_captured
from .lake_readers import delta_rs_arrow
from .test_cdc_decode import cleanup
from .test_cdc_stream import run_stream, stream_config

SETUP = """
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.orders (id int PRIMARY KEY, customer text, total numeric(12,2), placed timestamptz, tags text[]);
INSERT INTO {s}.orders SELECT g, 'c' || g % 17, g * 1.5, timestamptz '2025-01-01 00:00:00+00' + g * interval '1 hour', ARRAY['a' || g % 3]
  FROM generate_series(1, 400) g;
"""

CHANGES = """
UPDATE {s}.orders SET total = total + 0.01 WHERE id % 3 = 0;
DELETE FROM {s}.orders WHERE id % 10 = 0;
INSERT INTO {s}.orders VALUES (1001, 'new', 9.99, now(), '{{x,NULL}}');
UPDATE {s}.orders SET id = 2000 + id WHERE id BETWEEN 5 AND 7;
"""

ADD_COLUMNS = """
ALTER TABLE {s}.orders ADD COLUMN discount numeric(5,3), ADD COLUMN shipped timestamptz, ADD COLUMN notes text[];
UPDATE {s}.orders SET discount = 0.125, shipped = timestamptz '2025-06-01 12:00:00.123456+02', notes = ARRAY['fragile', NULL] WHERE id % 4 = 1;
INSERT INTO {s}.orders VALUES (1002, 'after alter', 1, now(), NULL, 9.999, now(), '{{}}');
"""


def first_message(topic: str, timeout: float = 60.0) -> dict[str, Any]:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"test-{uuid.uuid4().hex}", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error() and msg.value() is not None:
                return json.loads(msg.value())
    finally:
        consumer.close()
    raise AssertionError(f"no message on {topic} within {timeout}s")


@pytest.fixture
def orders(spark: Any, source: Source) -> Any:
    source.execute(SETUP.format(s=f'"{source.schema}"'))
    yield source
    cleanup(source)


def test_messages_with_schema_blocks_apply_exactly(spark: Any, orders: Source) -> None:
    src = orders
    raw = stream_config(src)
    raw["sources"][src.name]["cdc"]["message_format"] = "json_with_schema"
    config = src.load_config(raw)
    assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
    s = f'"{src.schema}"'
    src.execute(CHANGES.format(s=s))
    src.execute(ADD_COLUMNS.format(s=s))
    wait_until_captured(src, src.name)
    message = first_message(f"{src.name}.{src.schema}.orders")
    assert set(message) == {"schema", "payload"}, "the connector should write the old format here"
    run_stream(spark, config, src)
    assert assert_lake_equals_source(spark, src, "orders", ["id"]) == 400 - 40 + 2
    assert spark.read.format("delta").load(dead_letter_path(src.lake_root)).count() == 0


def test_a_column_added_while_the_stream_runs_arrives_with_the_bulk_paths_type(spark: Any, orders: Source) -> None:
    src = orders
    config = src.load_config(stream_config(src))
    assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
    stream = CdcStream(spark, config, config.source(src.name), get_dialect("postgres"), StreamOptions(trigger_seconds=0.5))
    stop, failed = threading.Event(), []
    runner = threading.Thread(target=lambda: failed.append(stream.run(stop)))
    runner.start()
    s = f'"{src.schema}"'
    lake = src.lake_path("orders")
    try:
        src.execute(CHANGES.format(s=s))
        wait_for(lambda: 1001 in delta_rs_arrow(lake)["id"].to_pylist(), "the first changes to be applied")
        message = first_message(f"{src.name}.{src.schema}.orders")
        assert "schema" not in message and message["op"] in ("c", "u", "d"), "the connector should write compact messages"
        src.execute(ADD_COLUMNS.format(s=s))
        wait_for(lambda: 1002 in delta_rs_arrow(lake)["id"].to_pylist(), "the rows after ALTER TABLE to be applied")
    finally:
        stop.set()
        runner.join(timeout=300)
    assert failed == [0]
    types = {f.name: f.dataType.simpleString() for f in spark.read.format("delta").load(lake).schema.fields}
    assert (types["discount"], types["shipped"], types["notes"]) == ("decimal(5,3)", "timestamp", "array<string>")  # the bulk path's mapping
    assert assert_lake_equals_source(spark, src, "orders", ["id"]) == 400 - 40 + 2
    assert spark.read.format("delta").load(dead_letter_path(src.lake_root)).count() == 0


def wait_for(condition: Any, what: str, timeout: float = 300.0) -> None:
    """Poll the lake until ``condition`` holds (stream progress), failing after ``timeout`` seconds. Conditions read the
    lake with delta-rs: a Spark query twice a second would take the shared cores from the stream it waits for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
