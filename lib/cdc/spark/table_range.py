"""Apply one table's pending Kafka range: read its topic, recognize the message formats, add new
columns, MERGE, then record tombstones and dead letters (thin layer; statements from lib.cdc.plan).

Each table is applied on its own cadence by the apply loop (lib.cdc.loop.apply_loop); this module does one
such apply: directly (lib.cdc.direct.apply: no Spark job) when it can, decoded directly and MERGEd by
Spark (lib.cdc.spark.arrow_merge: one Spark job) for a table Spark must MERGE, else with Spark
(lib.cdc.route decides, per table). The Spark work is one job that reads and summarizes the range (cached), the decode's
statistics job, and the MERGE; the deleted keys are collected for the tombstone buffer (written with
the next status commit); tombstone reads, dead letters and schema changes only when there are some.
Re-applying a range (after a crash, before its offsets were recorded) changes nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lib.cdc.direct.apply import Decoded
from lib.cdc.envelope import field_schemas
from lib.cdc.loop import dead_letter
from lib.cdc.loop.tombstone_buffer import TombstoneBuffer
from lib.cdc.offsets import Range
from lib.cdc.outcome import TableOutcome
from lib.cdc.plan import (
    KAFKA_COLUMNS,
    TableSpec,
    body_sql,
    delta_ref,
    raw_message_sql,
    schema_id_sql,
    schema_text_sql,
    sql_string,
)
from lib.cdc.route import route
from lib.cdc.source_catalog import SourceCatalog
from lib.cdc.spark.arrow_merge import merge_rows
from lib.cdc.spark.table_apply import COMPACT, Tombstones, Version, apply_table
from lib.fallback import failure_text

log = logging.getLogger(__name__)

# The op of a message from its tail (Debezium writes op and the timestamps last); a value that contains
# the text has its quotes escaped there, so it cannot match.
OP_SQL = "regexp_extract(right(__raw, 200), '\"op\":\"([a-z])\"', 1)"
_dead_letter_lock = threading.Lock()  # dead-letter MERGEs of parallel applies would conflict
_said: set[tuple[str, str]] = set()  # (table, error kind) of Spark MERGEs of decoded rows that failed, said once at WARNING


@dataclass
class RangeContext:
    """What every apply shares (one per stream)."""

    source: str
    kafka_options: Mapping[str, str]  # kafka.bootstrap.servers and the like
    catalog: SourceCatalog
    tombstones: TombstoneBuffer  # deleted keys waiting for the next status commit; its path is the tombstone table
    dead_letter_path: str
    run_id: str  # this run of the stream (dead letters' stream_id)
    schemas: dict[int, str] = field(default_factory=dict)  # schema block text per version id (messages with one)
    shuffle_partitions: int = 4  # the most an apply uses (the session's spark.sql.shuffle.partitions)
    direct: Any = None  # lib.cdc.direct.apply.DirectApplier: tries each range of a delta-rs table first (None: Spark only)


@dataclass
class RangeOutcome:
    outcome: TableOutcome
    range: Range
    messages: int  # Kafka messages read (Kafka tombstones after deletes included)
    dead: int = 0  # dead letters written (rejected versions and undecodable events)


def _kafka_range(spark: SparkSession, kafka_options: Mapping[str, str], rng: Range) -> DataFrame:
    """Spark's Kafka batch source over exactly ``rng`` (the raw Kafka columns)."""
    reader = spark.read.format("kafka")
    for key, value in {**kafka_options, **rng.spark_options()}.items():
        reader = reader.option(key, value)
    return reader.load()


MESSAGES_PER_PARTITION = 50_000


def shuffle_partitions(messages: int, most: int) -> int:
    """Shuffle partitions of an apply of ``messages``: one per 50,000 messages, at most ``most``. Each
    partition of the MERGE's output is a file of the lake table, so a small apply writes one file
    (and runs one task per stage) instead of ``most``."""
    return max(1, min(most, -(-messages // MESSAGES_PER_PARTITION)))


def read_range(spark: SparkSession, kafka_options: Mapping[str, str], rng: Range) -> DataFrame:
    """The range's messages with the Kafka coordinates, the message body and its version id."""
    return message_rows(_kafka_range(spark, kafka_options, rng))


def message_rows(records: DataFrame) -> DataFrame:
    """Kafka records (``topic``, ``partition``, ``offset``, ``key``, ``value``) as the apply reads them.
    Null values (the Kafka tombstones Debezium writes after deletes, for log compaction) are left out."""
    value = "CAST(value AS STRING)"
    return records.where("value IS NOT NULL").selectExpr("topic AS __topic", "partition AS __partition", "offset AS __offset",
                                                         "CAST(key AS STRING) AS __key", f"{body_sql(value)} AS __raw",
                                                         f"{schema_id_sql(value)} AS __schema_id")


def apply_range(spark: SparkSession, ctx: RangeContext, spec: TableSpec, rng: Range, seq: int) -> RangeOutcome:
    """Apply the table's messages of ``rng``; ``seq`` numbers this apply (temporary view names, dead letters).
    The path is :func:`lib.cdc.route.route`'s (said in the apply's log line, with why): directly, decoded
    directly and MERGEd by Spark, or by Spark; a range the first two decline or fail on goes to Spark."""
    way = route(spec, ctx.direct is not None)
    reason = way.reason
    if way.path != "spark":
        result = ctx.direct.attempt(spec, rng, spark_merge=way.path == "direct+spark")
        outcome = _merge_decoded(spark, ctx, spec, result, seq) if isinstance(result, Decoded) else result
        if isinstance(outcome, TableOutcome):
            outcome.why = reason
            ctx.tombstones.add(spec.schema, spec.table, outcome.tombstone_rows)  # written with the next status commit, as Spark's
            return RangeOutcome(outcome, rng, rng.messages)
        reason = f"{way.path} declined: {outcome}"
    out = apply_with_spark(spark, ctx, spec, rng, seq)
    out.outcome.why = reason
    return out


def _merge_decoded(spark: SparkSession, ctx: RangeContext, spec: TableSpec, decoded: Decoded, seq: int) -> TableOutcome | str:
    """Spark's MERGE of the rows the Python pass decoded: the outcome, or why the Spark path applies the
    range instead (a MERGE that failed; one that did commit is a replay to the Spark path's, which changes nothing)."""
    out = decoded.outcome
    if decoded.rows is None:  # nothing to MERGE: the events were all in the bulk copy, or Kafka tombstones
        return out
    started = time.monotonic()
    try:
        spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions(decoded.rows.num_rows, ctx.shuffle_partitions)))
        metrics = merge_rows(spark, spec, decoded.rows, decoded.toastable, seq)
    except Exception as exc:  # noqa: BLE001 - the Spark path is the fallback; what fails there too fails the apply there
        key = (spec.name, type(exc).__name__)
        log.log(logging.DEBUG if key in _said else logging.WARNING, "%s: the Spark MERGE of the directly decoded rows failed (%s); "
                "the Spark path applies the range", spec.name, failure_text(exc))
        _said.add(key)
        return f"the Spark MERGE of the decoded rows failed ({type(exc).__name__})"
    out.visible_at = time.time()
    out.inserted, out.updated, out.deleted = metrics["num_inserted_rows"], metrics["num_updated_rows"], metrics["num_deleted_rows"]
    log.debug("%s apply %d: %d events read in %.2fs, decoded to %d rows in %.2fs (direct), MERGEd by Spark in %.2fs", spec.name, seq,
              out.events, decoded.read_seconds, decoded.rows.num_rows, decoded.decode_seconds, time.monotonic() - started)
    return out


def apply_with_spark(spark: SparkSession, ctx: RangeContext, spec: TableSpec, rng: Range, seq: int) -> RangeOutcome:
    """The Spark path: every range the direct path declines, and every range with ``event_reader: spark``."""
    started = time.monotonic()
    messages = read_range(spark, ctx.kafka_options, rng).persist(StorageLevel.MEMORY_AND_DISK)
    cached: list[DataFrame] = [messages]
    try:
        groups = messages.groupBy("__schema_id").agg(
            F.count("__raw").alias("n"), F.max("__offset").alias("last_offset"),
            F.max_by("__raw", F.expr(f"CASE WHEN {OP_SQL} IN ('c', 'u', 'r') AND {names_table_sql(spec.schema, spec.table)} THEN __offset END"))
            .alias("sample")).collect()
        if not groups:  # only Kafka tombstones
            return RangeOutcome(TableOutcome(spec), rng, rng.messages)
        read = time.monotonic()
        spark.conf.set("spark.sql.shuffle.partitions", str(shuffle_partitions(sum(g["n"] for g in groups), ctx.shuffle_partitions)))
        versions, lake_types, rejected = _versions(spark, ctx, spec, rng, groups)
        dead_frames = [messages.where(F.col("__schema_id") == i).select(*KAFKA_COLUMNS, F.lit(why).alias("__reason")) for i, why in rejected]
        if versions:
            events = messages.where(F.col("__schema_id").isin([v.schema_id for v in versions]))
            outcome = apply_table(spark, spec, events, versions, _tombstones(spark, ctx, spec), seq, lake_types)
        else:
            outcome = TableOutcome(spec)
        applied = time.monotonic()
        cached += list(outcome.cached)
        ctx.tombstones.add(spec.schema, spec.table, outcome.tombstone_rows)
        if outcome.dead_rows is not None:
            dead_frames.append(outcome.dead_rows)
        dead = 0
        if dead_frames:
            with _dead_letter_lock:
                dead = dead_letter.write(spark, ctx.dead_letter_path, ctx.source, dead_frames, ctx.run_id, seq,
                                         raw_message_sql({v: ctx.schemas[v] for v in {g["__schema_id"] for g in groups} if v in ctx.schemas}))
        log.debug("%s apply %d: read+summarize %.2fs, decode+merge %.2fs, tombstones+dead letters %.2fs", spec.name, seq,
                  read - started, applied - read, time.monotonic() - applied)
        return RangeOutcome(outcome, rng, rng.messages, dead)
    finally:
        for df in cached:
            df.unpersist()


def _versions(spark: SparkSession, ctx: RangeContext, spec: TableSpec, rng: Range, groups: list[Any]
              ) -> tuple[list[Version], dict[str, str] | None, list[tuple[int, str]]]:
    """The range's decodable versions, the lake types of new columns (compact messages), and the
    versions whose messages are all dead letters, with why."""
    unknown = {g["__schema_id"] for g in groups} - set(ctx.schemas) - {COMPACT}
    if unknown:  # read each new schema block once (a second read of the range, only when versions appear)
        _learn_schemas(spark, ctx, rng, unknown)
    versions: list[Version] = []
    rejected: list[tuple[int, str]] = []
    lake_types: dict[str, str] | None = None
    for g in groups:
        schema_id, sample = g["__schema_id"], g["sample"]
        if not spec.key_columns:
            rejected.append((schema_id, f"table {spec.name} has no primary key: changes cannot be applied by key"))
            continue
        try:
            after = _sample_after(sample, schema_id)
            if schema_id == COMPACT:
                fields = ctx.catalog.fields(spec.schema, spec.table, after)
                lake_types = ctx.catalog.lake_types(spec.schema, spec.table)
            else:
                fields = field_schemas(json.loads(ctx.schemas[schema_id] + "}")["schema"], "after")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            rejected.append((schema_id, f"unparseable: not a Debezium change event ({type(exc).__name__})"))
            continue
        except LookupError as exc:
            rejected.append((schema_id, f"compact events cannot be decoded: {exc}"))
            continue
        versions.append(Version(schema_id, fields, g["last_offset"]))
    return versions, lake_types, rejected


def names_table_sql(schema: str, table: str) -> str:
    """Spark SQL boolean: the message's tail (where Debezium writes the source block) names this table.
    Picks the sample a version's columns are read from among this table's own events."""
    names = f'"schema":{json.dumps(schema, ensure_ascii=False)},"table":{json.dumps(table, ensure_ascii=False)}'
    return f"contains(right(__raw, 2000), {sql_string(names)})"


def _sample_after(sample: str | None, schema_id: int) -> dict[str, Any]:
    """The row image of a version's newest row event (new columns show there); empty when the sample is
    not a readable event: the messages themselves are checked one by one (bad ones are dead letters)."""
    try:
        event = json.loads(sample) if sample else {}
        event = event.get("payload", event) if schema_id != COMPACT else event
        after = event.get("after") if isinstance(event, dict) else None
    except (ValueError, RecursionError, AttributeError):
        return {}
    return after if isinstance(after, dict) else {}


def _learn_schemas(spark: SparkSession, ctx: RangeContext, rng: Range, unknown: set[int]) -> None:
    value = "CAST(value AS STRING)"
    rows = _kafka_range(spark, ctx.kafka_options, rng).selectExpr(f"{schema_id_sql(value)} AS id", f"{schema_text_sql(value)} AS text") \
        .where(F.col("id").isin(sorted(unknown))).groupBy("id").agg(F.first("text").alias("text")).collect()
    ctx.schemas.update({r["id"]: r["text"] for r in rows})


def _tombstones(spark: SparkSession, ctx: RangeContext, spec: TableSpec) -> Tombstones | None:
    """The tombstone table as a relation, the buffer's tombstones of the table written first (called
    only when the apply's events must be checked against them)."""
    path = ctx.tombstones.path
    if path is None:
        return None

    def relation() -> str:
        ctx.tombstones.flush_for(spark, spec.schema, spec.table)
        return delta_ref(path)
    return relation
