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
                payload = json.loads(msg.value())["payload"]
                events.append({"topic": msg.topic(), "op": payload["op"], "before": payload["before"], "after": payload["after"],
                               "lsn": payload["source"]["lsn"], "snapshot": payload["source"].get("snapshot")})
            if len(events) >= expected and settle_until is None:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() > settle_until:
                break
    finally:
        consumer.close()
    return events
