"""How far each lake table is behind its source in time, from the connector's heartbeats.

The connector writes a heartbeat to ``__debezium-heartbeat.<topic.prefix>`` every
``heartbeat.interval.ms`` while it streams from the source, stamped with the time it wrote it. The
apply loop reads the newest heartbeat *before* it reads the table topics' end offsets: a table whose
messages up to those end offsets are all applied then holds every change the connector had read from
the source when it wrote that heartbeat. That time is the table's ``source_current_at``: the lake
table is current with its source up to it. When the connector stops streaming (a stale slot, a failed
task, a database that is down), heartbeats stop, ``source_current_at`` stops advancing, and
``jobs/status.py`` shows the table falling behind and flags it, even though its Kafka topic is idle
and its Kafka lag is 0.

:func:`freshness_updates` is pure; :class:`HeartbeatReader` is the thin Kafka read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lib.status.record import StatusEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Heartbeat:
    ok: bool  # the topic could be read
    at: float | None  # epoch seconds of the newest heartbeat; None: none yet


def heartbeat_time(value: bytes | None, record_ms: int | None) -> float | None:
    """Epoch seconds of one heartbeat record: its ``ts_ms`` (either message format), else the record's timestamp (pure)."""
    try:
        payload = json.loads(value) if value else {}
        if isinstance(payload, dict) and "payload" in payload and "schema" in payload:
            payload = payload["payload"]
        ts = payload.get("ts_ms") if isinstance(payload, dict) else None
        if isinstance(ts, int | float) and ts > 0:
            return ts / 1000.0
    except ValueError:
        pass
    return record_ms / 1000.0 if record_ms and record_ms > 0 else None


def streamed(event: StatusEvent) -> bool:
    """Whether the connector streams the table's changes at all: the bulk load notes "CDC not enabled: ..."
    on tables it leaves out of the connector (no key, a name Debezium cannot parse) (pure)."""
    return not (event.note or "").startswith("CDC not enabled")


def freshness_updates(tables: Iterable[tuple[StatusEvent, bool]], heartbeat_at: float | None,
                      record_seconds: float) -> list[tuple[int, StatusEvent]]:
    """(index, next event) for the tables whose ``source_current_at`` moves forward (pure).

    ``tables``: (latest event, caught up: every message up to the end offsets read after the heartbeat
    is applied). Only caught-up tables advance, and only by ``record_seconds`` or more, so an idle
    source costs one status row per table every ``record_seconds``."""
    if heartbeat_at is None:
        return []
    at = datetime.fromtimestamp(heartbeat_at, UTC)
    out = []
    for i, (event, caught_up) in enumerate(tables):
        current = getattr(event, "source_current_at", None)
        if caught_up and streamed(event) and (current is None or (at - current).total_seconds() >= record_seconds):
            out.append((i, event.next(source_current_at=at)))
    return out


def current_at(event: StatusEvent) -> datetime | None:
    """Up to when the lake table holds its source's changes (pure): the newest heartbeat the stream
    marked it current with, or the source commit time of the newest change it applied (a table's
    changes are applied in topic order, so it holds every earlier one), whichever is later."""
    times = [t for t in (getattr(event, "source_current_at", None), getattr(event, "cdc_event_time", None)) if t is not None]
    return max(times) if times else None


def behind_seconds(event: StatusEvent, now: datetime) -> float | None:
    """How far the lake table is behind its source, in seconds (None: unknown) (pure)."""
    current = current_at(event)
    return None if current is None else max(0.0, (now - current).total_seconds())


def heartbeat_seen(event: StatusEvent) -> bool:
    """Whether the stream ever marked the table current by a connector heartbeat (pure)."""
    return getattr(event, "source_current_at", None) is not None


def stalled(event: StatusEvent, now: datetime, stall_seconds: float) -> bool:
    """Whether the table's changes have stopped arriving (pure): a table the stream applies (phase cdc,
    not failed) that is more than ``stall_seconds`` behind its source. Before the stream has seen a
    heartbeat, how far behind it is cannot be known (an idle source looks the same as a stopped
    connector): such a table is a stall only when nothing (no change, no status update) came for it in
    ``stall_seconds``."""
    if event.state in ("failed", "dropped") or not streamed(event) or event.phase != "cdc":
        return False  # reported as failed or dropped at the source; or no changes stream for it (its note says why); or still loading
    if heartbeat_seen(event):
        behind = behind_seconds(event, now)
        return behind is not None and behind > stall_seconds
    heard = [t for t in (getattr(event, "cdc_event_time", None), getattr(event, "updated_at", None)) if t is not None]
    return not heard or (now - max(heard)).total_seconds() > stall_seconds


class HeartbeatReader:
    """Reads the newest heartbeat of one topic (thin layer; one Kafka consumer, assigned, no group offsets)."""

    def __init__(self, kafka: Mapping[str, Any], topic: str, timeout_seconds: float = 5.0) -> None:
        self.kafka = dict(kafka)  # the Kafka client settings (lib/kafka/settings.py)
        self.topic = topic
        self.timeout = timeout_seconds
        self._consumer = None

    def _client(self):  # type: ignore[no-untyped-def]
        if self._consumer is None:
            from confluent_kafka import Consumer

            self._consumer = Consumer({**self.kafka, "group.id": "lakehouse-heartbeat",
                                       "enable.auto.commit": False, "socket.connection.setup.timeout.ms": int(self.timeout * 1000),
                                       "fetch.wait.max.ms": 10, "enable.partition.eof": True})
        return self._consumer

    def latest(self) -> Heartbeat:
        from confluent_kafka import KafkaException, TopicPartition

        try:
            consumer = self._client()
            metadata = consumer.list_topics(self.topic, timeout=self.timeout)
            topic = metadata.topics.get(self.topic)
            if topic is None or topic.error is not None:
                return Heartbeat(True, None)  # no heartbeat written yet
            newest: float | None = None
            for partition in topic.partitions:
                tp = TopicPartition(self.topic, partition)
                low, high = consumer.get_watermark_offsets(tp, timeout=self.timeout, cached=False)
                if high <= low:
                    continue
                consumer.assign([TopicPartition(self.topic, partition, high - 1)])
                message = consumer.poll(self.timeout)
                if message is not None and not message.error():
                    at = heartbeat_time(message.value(), message.timestamp()[1])
                    newest = at if newest is None or (at is not None and at > newest) else newest
            return Heartbeat(True, newest)
        except KafkaException as exc:
            log.debug("heartbeat topic %s not readable: %s", self.topic, exc)
            return Heartbeat(False, None)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class FreshnessMonitor:
    """The apply loop's hook (thin): reads the newest heartbeat before each poll of the end offsets,
    then advances ``source_current_at`` of the tables that are caught up with those end offsets."""

    def __init__(self, reader: HeartbeatReader, record_seconds: float = 15.0, read_every_seconds: float = 5.0) -> None:
        self.reader = reader
        self.record_seconds = record_seconds
        self.read_every = read_every_seconds
        self.heartbeat = Heartbeat(False, None)  # the newest read; the slot doctor reads it too
        self._read_at: float | None = None

    def before_poll(self) -> None:
        """Read the newest heartbeat, at most every ``read_every_seconds`` (an older one only under-states freshness)."""
        import time

        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= self.read_every or not self.heartbeat.ok:
            self.heartbeat = self.reader.latest()
            self._read_at = now

    def after_poll(self, tables: list, ends: dict[str, dict[int, int]]) -> list[StatusEvent]:  # type: ignore[type-arg]
        """``tables``: the loop's TableStates; updates their ``event`` and returns the events to record."""
        from lib.cdc import offsets as O

        if not self.heartbeat.ok:
            return []
        idle = [t for t in tables if not t.running and not t.failed]
        rows = [(t.event, O.pending(t.next, ends.get(t.topic, {})) == 0) for t in idle]
        updates = freshness_updates(rows, self.heartbeat.at, self.record_seconds)
        for i, event in updates:
            idle[i].event = event
        return [event for _i, event in updates]

    def close(self) -> None:
        self.reader.close()
