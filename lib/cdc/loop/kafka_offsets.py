"""The Kafka offsets the apply loop polls: each table topic's partitions and their first and next
offsets, read with one Kafka client on the driver (thin layer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class TopicOffsets:
    def __init__(self, kafka: Mapping[str, Any], timeout_seconds: float = 10.0) -> None:
        self.kafka = dict(kafka)  # the Kafka client settings (lib/kafka/settings.py)
        self.timeout = timeout_seconds
        self._consumer = None

    def _client(self):  # type: ignore[no-untyped-def]
        if self._consumer is None:
            from confluent_kafka import Consumer

            self._consumer = Consumer({**self.kafka, "group.id": "lakehouse-offsets",
                                       "enable.auto.commit": False, "socket.connection.setup.timeout.ms": int(self.timeout * 1000)})
        return self._consumer

    def partitions(self) -> dict[str, list[int]]:
        """{topic: partitions} of every topic of the cluster (one metadata request)."""
        metadata = self._client().list_topics(timeout=self.timeout)
        return {name: sorted(t.partitions) for name, t in metadata.topics.items() if not t.error}

    def watermarks(self, topics: dict[str, Sequence[int]]) -> dict[str, dict[int, tuple[int, int]]]:
        """{topic: {partition: (first retained offset, next offset to be written)}}. A read that keeps
        failing (after retries with backoff) raises: the stream stops loudly rather than treating an
        unreadable topic as caught up."""
        from confluent_kafka import TopicPartition

        from lib.retry import with_retries

        out: dict[str, dict[int, tuple[int, int]]] = {}
        for topic, partitions in topics.items():
            for p in partitions:
                low, high = with_retries(f"reading the offsets of {topic}[{p}]",
                                         lambda t=topic, n=p: self._client().get_watermark_offsets(TopicPartition(t, n), timeout=self.timeout, cached=False),
                                         3, 1.0)
                out.setdefault(topic, {})[p] = (int(low), int(high))
        return out

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
