"""Reading Debezium change events from the local Kafka in tests."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

from confluent_kafka import Consumer

BOOTSTRAP = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"


def read_events(topic_prefix: str, expected: int, timeout: float = 90.0, settle: float = 3.0) -> list[dict[str, Any]]:
    """Every change event on ``^<prefix>\\.`` topics, from the beginning, once ``expected`` arrived
    (then ``settle`` more seconds, so extra events would show up too). Tombstones are skipped."""
    consumer = Consumer({
        "bootstrap.servers": BOOTSTRAP,
        "group.id": f"test-{uuid.uuid4().hex}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "topic.metadata.refresh.interval.ms": 500,
    })
    consumer.subscribe([f"^{topic_prefix.replace('.', '[.]')}[.].*"])
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    settle_until = None
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error() and msg.value() is not None:
                value = json.loads(msg.value())
                payload = value["payload"] if "schema" in value and "payload" in value else value  # either message format
                events.append({"topic": msg.topic(), "op": payload["op"], "before": payload["before"], "after": payload["after"],
                               "lsn": payload["source"]["lsn"], "snapshot": payload["source"].get("snapshot")})
            if len(events) >= expected and settle_until is None:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() > settle_until:
                break
    finally:
        consumer.close()
    return events


def topic_end_offsets(topic_prefix: str) -> dict[tuple[str, int], int]:
    """End offsets of every ``<prefix>.*`` topic-partition."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(topic_prefix + ".")]
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"offsets-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        out = {}
        for topic in topics:
            for partition in admin.list_topics(topic, timeout=10).topics[topic].partitions:
                out[(topic, partition)] = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
        return out
    finally:
        consumer.close()


def wait_until_captured(src: Any, topic_prefix: str, timeout: float = 120.0) -> dict[tuple[str, int], int]:
    """Commit a marker row in ``<schema>._marker`` (created on first use, before the bulk load) and
    wait until its event is in Kafka and the topics' end offsets stop moving: Debezium emits in
    commit order, so every change committed before the marker has been produced by then."""
    token = uuid.uuid4().hex
    src.execute(f'INSERT INTO "{src.schema}"._marker VALUES (%s)', (token,))
    topic = f"{topic_prefix}.{src.schema}._marker"
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"marker-{uuid.uuid4().hex}", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "topic.metadata.refresh.interval.ms": 500})
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error() and msg.value() is not None and token in msg.value().decode():
                break
        else:
            raise AssertionError(f"the marker event did not reach {topic} within {timeout}s")
    finally:
        consumer.close()
    offsets = topic_end_offsets(topic_prefix)
    while time.monotonic() < deadline:
        time.sleep(0.5)  # Kafka state, not stream progress: wait for the producer's in-flight batches
        now = topic_end_offsets(topic_prefix)
        if now == offsets:
            return now
        offsets = now
    return offsets
