"""The CDC stream of one source: its tables ready for CDC, applied by the per-table apply loop."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from lib.cdc import offsets as O
from lib.cdc.direct.apply import DirectApplier
from lib.cdc.health.freshness import FreshnessMonitor, HeartbeatReader
from lib.cdc.health.slot_doctor import SlotDoctor
from lib.cdc.loop import dead_letter
from lib.cdc.loop.apply_loop import ApplyLoop, LoopOptions, TableState
from lib.cdc.loop.auto_add import AutoAdder
from lib.cdc.loop.kafka_offsets import TopicOffsets
from lib.cdc.loop.specs import ensure_tombstones, load_spec, ready_for_cdc
from lib.cdc.loop.tombstone_buffer import TombstoneBuffer
from lib.cdc.source_catalog import SourceCatalog
from lib.cdc.spark.table_range import RangeContext
from lib.config.model import Config, SourceConfig
from lib.debezium.common import heartbeat_topic
from lib.errors import ConfigError
from lib.kafka.settings import class_prefix_for, librdkafka_settings, spark_kafka_options
from lib.lake.local_writer import uses_delta_rs
from lib.lake.paths import dead_letter_path, normalize_root
from lib.selection import select_tables
from lib.sessions import MERGE_SETTINGS, tune
from lib.status.factory import open_status_store
from lib.status.record import StatusEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamOptions:
    available_now: bool = False
    trigger_seconds: float | None = None  # default: stream.trigger_seconds
    max_offsets_per_trigger: int | None = None  # default: stream.max_offsets_per_trigger
    tables: tuple[str, ...] = ()  # globs on schema.table; empty: every table


class CdcStream:
    """Builds the tables' state from the lake and the status table, then runs the apply loop (thin layer)."""

    def __init__(self, spark: SparkSession, config: Config, source: SourceConfig, dialect: Any, options: StreamOptions) -> None:
        if source.cdc is None:
            raise ConfigError(f"sources.{source.name}.cdc", "the source has no cdc section: nothing to stream")
        self.spark = spark
        self.config = config
        self.source = source
        self.dialect = dialect
        self.options = options
        self.lake_root = normalize_root(config.lake.root)
        self.status = open_status_store(spark, self.lake_root, config.lake.pipeline_writer)
        self._tombstoned: dict[tuple[str, str], tuple[int, int]] = {}  # latest delete position per table with tombstones
        self._waiting_logged: set[tuple[str, str]] = set()

    def selected(self, schema: str, table: str) -> bool:
        """Whether this run applies the table: the source's include/exclude (a table excluded after its
        load is left alone) and ``--tables``."""
        return bool(select_tables([(schema, table)], self.source.include, self.source.exclude, list(self.options.tables) or None))

    def _ready(self, known: set[tuple[str, str]]) -> list[TableState]:
        """Tables whose bulk copy completed (or that the stream already applies to) and that ``known`` lacks."""
        events = [e for e in self.status.latest(self.source.name).values()
                  if ready_for_cdc(e) and (e.schema, e.table) not in known and self.selected(e.schema, e.table)]
        return self._states(events)

    def _latest(self) -> dict[tuple[str, str], StatusEvent]:
        """The newest bulk event of every table of the source (the loop looks for re-copies in them)."""
        return {(e.schema, e.table): e for e in self.status.latest(self.source.name, phase="bulk").values()}

    def _rebuild(self, event: StatusEvent) -> TableState:
        """A table's state from its new copy's completed event (lib.cdc.loop.recopy: honour)."""
        return self._states([event], quiet=True)[0]

    def _states(self, events: list[StatusEvent], quiet: bool = False) -> list[TableState]:
        with ThreadPoolExecutor(max_workers=self.config.stream.apply_threads) as pool:  # a few Delta reads per table
            specs = list(pool.map(lambda e: load_spec(self.spark, e, self.dialect, self.config.stream.deletion_vectors, self.config.stream.merge_writer,
                                                     self.config.stream.merge_writer_max_table_mb, self.source.history_for(e.schema, e.table)),
                                  events))
        states = []
        for event, spec in zip(events, specs, strict=True):
            key = (event.schema, event.table)
            spec = dataclasses.replace(spec, has_tombstones=key in self._tombstoned, tombstones_until=self._tombstoned.get(key))
            if event.phase == "cdc" and event.state == "failed":
                log.warning("%s: failed in an earlier run (%s); trying again from its last recorded offsets", spec.name, event.last_error)
            prefix = self.source.cdc.topic_prefix  # type: ignore[union-attr]
            topic = self.dialect.cdc_events.topic(prefix, self.source.connection.database, event.schema, event.table)
            states.append(TableState(spec, event, topic, O.from_json(getattr(event, "cdc_offsets", None))))
            log.log(logging.DEBUG if quiet else logging.INFO, "%s: ready for CDC (%d columns, key %s, snapshot %s)", spec.name, len(spec.columns),
                     ", ".join(spec.key_columns) or "none", "txids" if spec.snapshot_txids else f"position {spec.snapshot_position}")
        return states

    def run(self, stop: threading.Event | None = None) -> int:
        """Apply changes until ``stop`` is set (with available_now: until caught up); returns the number
        of tables that failed."""
        stop = stop or threading.Event()
        tune(self.spark, MERGE_SETTINGS)  # the stream's many small MERGEs
        self.status.ensure()
        dead_letter.ensure(self.spark, dead_letter_path(self.lake_root))
        tombstones, self._tombstoned = ensure_tombstones(self.spark, self.lake_root, self.source.name, self.config.stream.tombstone_retention_hours)
        stream = self.config.stream
        client_settings = librdkafka_settings(self.config.kafka)
        ctx = RangeContext(
            source=self.source.name,
            kafka_options={**spark_kafka_options(self.config.kafka, class_prefix_for(os.environ)),
                           "failOnDataLoss": str(stream.fail_on_data_loss).lower()},
            catalog=SourceCatalog(self.dialect, self.source, stream.max_attempts, stream.retry_backoff_seconds),
            shuffle_partitions=int(self.spark.conf.get("spark.sql.shuffle.partitions") or 4),
            tombstones=TombstoneBuffer(tombstones, delta_rs=uses_delta_rs(self.spark, self.lake_root, self.config.lake.pipeline_writer, "tombstones", tombstones)),
            dead_letter_path=dead_letter_path(self.lake_root), run_id=uuid.uuid4().hex,
        )
        if stream.event_reader == "direct":
            # worker processes for the Python pass: one per CPU at most, never more than the apply threads
            ctx.direct = DirectApplier(client_settings, ctx.catalog, min(stream.apply_threads, os.cpu_count() or 1))
            ctx.direct.start()
        kafka = TopicOffsets(client_settings)
        options = LoopOptions(
            threads=stream.apply_threads,
            poll_seconds=self.options.trigger_seconds or stream.trigger_seconds,
            max_messages=self.options.max_offsets_per_trigger or stream.max_offsets_per_trigger,
            available_now=self.options.available_now,
            max_attempts=stream.max_attempts,
            retry_backoff_seconds=stream.retry_backoff_seconds,
            fail_on_data_loss=stream.fail_on_data_loss,
            start_at_end=stream.starting_offsets == "latest",
            retry_failed_seconds=stream.retry_failed_seconds,
        )
        cdc = self.source.cdc
        assert cdc is not None
        monitor = FreshnessMonitor(HeartbeatReader(client_settings, heartbeat_topic(cdc.topic_prefix)),
                                   record_seconds=max(2.0, stream.stall_seconds / 3),
                                   read_every_seconds=max(1.0, cdc.heartbeat_interval_ms / 2000))
        loop = ApplyLoop(self.spark, ctx, kafka, self.status, lambda: self._ready(set(loop.tables)), options, self.config.secrets(), monitor,
                         recheck=self._latest, rebuild=self._rebuild)
        if not options.available_now and cdc.heartbeat_interval_ms > 0 and self.dialect.name == "postgres":
            SlotDoctor(self.source, self.dialect, lambda: monitor.heartbeat, stream.stall_seconds,
                       max(5.0, cdc.heartbeat_interval_ms / 1000), stream.heal_connector, self.config.secrets()).start(stop)
        looking, halt = None, threading.Event()
        if cdc.auto_add_tables:
            adder = AutoAdder(self.spark, self.config, self.source, self.dialect, self.status, self.selected, loop.refresh_soon,
                              loop.request_drop)
            if options.available_now:
                adder.first_look(stop)  # before the loop: a new table copied now is applied by this run
            else:
                looking = adder.start(halt)  # the stream's own copies cut short resumed at once, then a look every interval
        log.info("cdc stream started: source %s, %s, up to %d tables applied at once, %s", self.source.name,
                 self.source.cdc.message_format if self.source.cdc else "", options.threads,  # type: ignore[union-attr]
                 "available-now" if options.available_now else f"polling every {options.poll_seconds:g}s")
        try:
            failed = loop.run(stop)
        finally:
            halt.set()  # the look for new tables ends too (after a copy in flight; a copy cut short is resumed by the next start)
            if looking is not None:
                looking.join(timeout=300)
                if looking.is_alive():
                    log.warning("the automatic copy of a new table is still running and ends with this process: its status stays 'running' "
                                "and the stream resumes it when it starts again")
            kafka.close()
            monitor.close()
            if ctx.direct is not None:
                ctx.direct.close()
        if not loop.tables:
            log.warning("no table of source %s has completed its bulk load yet: nothing was applied", self.source.name)
        return failed
