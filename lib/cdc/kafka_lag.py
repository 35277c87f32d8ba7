"""How far the stream is behind Kafka: end offsets minus processed offsets, per topic-partition."""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)


def lag(end_offsets: Mapping[tuple[str, int], int], processed: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """Messages not processed yet per (topic, partition) (pure): end offset minus the next offset to read."""
    return {tp: max(end - (processed[tp] + 1), 0) for tp, end in end_offsets.items() if tp in processed}


class EndOffsets:
    """Reads the newest offsets of topic-partitions with one Kafka client on the driver."""

    def __init__(self, bootstrap_servers: str, group: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.group = group
        self._consumer = None

    def fetch(self, partitions: list[tuple[str, int]], timeout: float = 10.0) -> dict[tuple[str, int], int]:
        from confluent_kafka import Consumer, TopicPartition

        if self._consumer is None:
            self._consumer = Consumer({"bootstrap.servers": self.bootstrap_servers, "group.id": self.group, "enable.auto.commit": False})
        out = {}
        for topic, partition in partitions:
            try:
                _low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout, cached=False)
                out[(topic, partition)] = int(high)
            except Exception as exc:  # noqa: BLE001 - lag is information; never fail a batch for it
                log.warning("could not read the end offset of %s[%d]: %s", topic, partition, exc)
        return out

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
