"""The CDC stream: one Structured Streaming query per source over all of its Debezium topics."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from lib.cdc import dead_letter
from lib.cdc.batch import BatchContext, StreamState, apply_batch
from lib.cdc.kafka_lag import EndOffsets
from lib.cdc.plan import table_topic
from lib.cdc.specs import ensure_tombstones, load_spec, ready_for_cdc
from lib.config.model import Config, SourceConfig
from lib.errors import ConfigError
from lib.lake.paths import dead_letter_path, normalize_root
from lib.lake.storage import read_text
from lib.selection import matches
from lib.status.store import StatusStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamOptions:
    available_now: bool = False
    trigger_seconds: float | None = None  # default: stream.trigger_seconds
    max_offsets_per_trigger: int | None = None  # default: stream.max_offsets_per_trigger
    tables: tuple[str, ...] = ()  # globs on schema.table; empty: every table


def topic_pattern(prefix: str) -> str:
    """Java regex of every table topic of a Debezium ``topic.prefix`` (``<prefix>.<schema>.<table>``)."""
    if "\\E" in prefix:
        raise ConfigError("sources.<name>.cdc.topic_prefix", "must not contain \\E")
    return f"\\Q{prefix}\\E[.].+"


def table_topics(prefix: str, tables: Sequence[tuple[str, str]]) -> list[str]:
    return [table_topic(prefix, schema, table) for schema, table in tables]


def checkpoint_location(checkpoints_root: str, source: str, tables: Sequence[str]) -> str:
    """``<checkpoints.root>/<source>``; a stream restricted with --tables keeps its own offsets."""
    root = f"{normalize_root(checkpoints_root).rstrip('/')}/{source}"
    if not tables:
        return root
    return f"{root}.tables-{hashlib.sha1(','.join(sorted(tables)).encode()).hexdigest()[:10]}"


def kafka_options(config: Config, source: SourceConfig, options: StreamOptions, topics: Sequence[str] | None) -> dict[str, str]:
    """The Kafka source's options (pure)."""
    assert source.cdc is not None
    out = {
        "kafka.bootstrap.servers": config.kafka_bootstrap_servers,
        "startingOffsets": config.stream.starting_offsets,
        "maxOffsetsPerTrigger": str(options.max_offsets_per_trigger or config.stream.max_offsets_per_trigger),
        "failOnDataLoss": str(config.stream.fail_on_data_loss).lower(),
        "kafka.metadata.max.age.ms": "10000",  # new tables' topics are found within seconds
    }
    if topics is None:
        out["subscribePattern"] = topic_pattern(source.cdc.topic_prefix)
    else:
        out["subscribe"] = ",".join(topics)
    return out


class CdcStream:
    """Builds the state from the lake, then runs the query (thin layer)."""

    def __init__(self, spark: SparkSession, config: Config, source: SourceConfig, dialect: Any, options: StreamOptions) -> None:
        if source.cdc is None:
            raise ConfigError(f"sources.{source.name}.cdc", "the source has no cdc section: nothing to stream")
        self.spark = spark
        self.config = config
        self.source = source
        self.dialect = dialect
        self.options = options
        self.lake_root = normalize_root(config.lake.root)
        self.status = StatusStore(spark, self.lake_root)
        self.state = StreamState({}, {}, None)
        self._tombstoned: set[tuple[str, str]] = set()
        self.checkpoint = checkpoint_location(config.checkpoints_root, source.name, options.tables)
        self._stream_id: str | None = None

    def refresh(self) -> None:
        """(Re)read the tables ready for CDC from the status table."""
        if self.state.tombstones is None:
            self.state.tombstones, self._tombstoned = ensure_tombstones(
                self.spark, self.lake_root, self.source.name, self.config.stream.tombstone_retention_hours)
        events = [e for e in self.status.latest(self.source.name).values()
                  if ready_for_cdc(e) and (e.schema, e.table) not in self.state.specs
                  and (not self.options.tables or matches(e.schema, e.table, list(self.options.tables)))]
        with ThreadPoolExecutor(max_workers=self.config.stream.apply_threads) as pool:  # a few Delta reads per table
            specs = list(pool.map(lambda e: load_spec(self.spark, e, self.dialect, self.config.stream.deletion_vectors), events))
        for event, spec in zip(events, specs, strict=True):
            key = (event.schema, event.table)
            self.state.events[key] = event
            if event.phase == "cdc" and event.state == "failed":
                self.state.failed[key] = event.last_error or "failed earlier"
            spec = dataclasses.replace(spec, has_tombstones=key in self._tombstoned)
            self.state.specs[key] = spec
            log.info("%s: ready for CDC (%d columns, key %s, snapshot %s)", spec.name, len(spec.columns),
                     ", ".join(spec.key_columns) or "none", "txids" if spec.snapshot_txids else f"position {spec.snapshot_position}")

    def stream_id(self) -> str:
        """The query's id, stable across restarts from the same checkpoint (the dead letters' txnAppId)."""
        if self._stream_id is None:
            text = read_text(self.spark, f"{self.checkpoint}/metadata")
            self._stream_id = str(json.loads(text.splitlines()[0])["id"])
        return self._stream_id

    def start(self) -> StreamingQuery:
        # The MERGE sources are cached DataFrames already: Delta need not materialize them again.
        self.spark.conf.set("spark.databricks.delta.merge.materializeSource", "none")
        self.status.ensure()
        dead_letter.ensure(self.spark, dead_letter_path(self.lake_root))
        self.refresh()
        if not self.state.specs:
            log.warning("no table of source %s has completed its bulk load yet; events of unknown tables go to the dead-letter table", self.source.name)
        topics = None
        if self.options.tables:
            topics = table_topics(self.source.cdc.topic_prefix, sorted(self.state.specs))  # type: ignore[union-attr]
            if not topics:
                raise ConfigError("--tables", "no table ready for CDC matches")
        prefix = self.source.cdc.topic_prefix  # type: ignore[union-attr]
        ctx = BatchContext(
            spark=self.spark, source=self.source.name, topic_prefix=prefix, state=self.state, status=self.status,
            dead_letter_path=dead_letter_path(self.lake_root),
            end_offsets=EndOffsets(self.config.kafka_bootstrap_servers, f"lakehouse-lag-{self.source.name}"),
            stream_id=self.stream_id, apply_threads=self.config.stream.apply_threads, max_attempts=self.config.stream.max_attempts,
            retry_backoff_seconds=self.config.stream.retry_backoff_seconds, refresh=self.refresh, secrets=self.config.secrets(),
        )
        reader = self.spark.readStream.format("kafka")
        for key, value in kafka_options(self.config, self.source, self.options, topics).items():
            reader = reader.option(key, value)
        writer = reader.load().writeStream.queryName(f"cdc-{self.source.name}").option("checkpointLocation", self.checkpoint) \
            .foreachBatch(lambda df, batch_id: apply_batch(ctx, df, batch_id))
        if self.options.available_now:
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=f"{self.options.trigger_seconds or self.config.stream.trigger_seconds} seconds")
        query = writer.start()
        log.info("cdc stream started: source %s, %d tables, checkpoint %s, %s", self.source.name, len(self.state.specs), self.checkpoint,
                 "available-now" if self.options.available_now else f"every {self.options.trigger_seconds or self.config.stream.trigger_seconds}s")
        return query
