"""One topic range's messages read by the Kafka client in Python, for the direct apply (thin layer).

Each apply thread keeps its own consumer (librdkafka, no consumer group: partitions are assigned at
the range's start offsets and read up to its end offsets). Kafka's tombstones (null values, written
after deletes for log compaction) are left out, as the Spark path leaves them out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from lib.cdc.direct.events import Message
from lib.cdc.offsets import Range


class KafkaRangeReader:
    def __init__(self, kafka: Mapping[str, Any], timeout_seconds: float = 30.0) -> None:
        self.kafka = dict(kafka)  # the Kafka client settings (lib/kafka/settings.py)
        self.timeout = timeout_seconds
        self._local = threading.local()
        self._consumers: list[Any] = []
        self._lock = threading.Lock()

    def _consumer(self) -> Any:
        consumer = getattr(self._local, "consumer", None)
        if consumer is None:
            from confluent_kafka import Consumer

            consumer = Consumer({**self.kafka, "group.id": "lakehouse-apply", "enable.auto.commit": False,
                                 "auto.offset.reset": "error", "enable.partition.eof": False,
                                 "fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 16 << 20})
            self._local.consumer = consumer
            with self._lock:
                self._consumers.append(consumer)
        return consumer

    def read(self, rng: Range) -> list[Message]:
        """(partition, offset, value) of the range's messages with a value, in offset order per partition.
        Raises when Kafka stops answering for ``timeout_seconds`` or reports an error (the apply is retried)."""
        from confluent_kafka import TopicPartition

        todo = {p: (rng.start.get(p, 0), end) for p, end in rng.end.items() if end > rng.start.get(p, 0)}
        if not todo:
            return []
        consumer = self._consumer()
        consumer.assign([TopicPartition(rng.topic, p, start) for p, (start, _) in todo.items()])
        out: list[Message] = []
        reached = {p: start for p, (start, _) in todo.items()}  # next offset to read per partition
        idle_since = time.monotonic()
        try:
            while any(reached[p] < end for p, (_, end) in todo.items()):
                remaining = sum(max(end - reached[p], 0) for p, (_, end) in todo.items())
                batch = consumer.consume(num_messages=min(10_000, remaining), timeout=0.5)  # returns once that many arrived
                if not batch:
                    if time.monotonic() - idle_since > self.timeout:
                        missing = {p: (reached[p], end) for p, (_, end) in todo.items() if reached[p] < end}
                        raise TimeoutError(f"Kafka returned nothing for {self.timeout:g}s reading {rng.topic} (partition: (next, end)) {missing}")
                    continue
                idle_since = time.monotonic()
                for msg in batch:
                    if msg.error():
                        raise RuntimeError(f"Kafka error reading {rng.topic}: {msg.error()}")
                    p, offset = msg.partition(), msg.offset()
                    if p not in todo:
                        continue
                    reached[p] = max(reached[p], min(offset + 1, todo[p][1]))  # past the end: a gap (compaction) before it
                    if offset >= todo[p][1]:
                        continue
                    value = msg.value()
                    if value is not None:
                        out.append((p, offset, value))
        finally:
            consumer.unassign()
        return out

    def close(self) -> None:
        with self._lock:
            for consumer in self._consumers:
                consumer.close()
            self._consumers = []
