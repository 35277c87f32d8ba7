"""Truncates and added source columns applied by the direct path, against the Spark path on the same real
events, and the stream through them end to end.

Real components: PostgreSQL, Debezium, Kafka, Spark, Delta. Two tables are bulk-loaded, then changed in
phases, each phase's events one Kafka range: a truncate alone; inserts and updates before and after a
truncate (with updates whose unchanged TOAST value Debezium sends as its placeholder); a truncate inside
a transaction between two inserts; then deletes and updates after the truncates, and on the other table
a column added at the source (ALTER TABLE ADD COLUMN of four types) with updates before and after it
and an insert. The source catalog is read before the ALTER, as a running stream has it. Each range is
applied to two copies of the bulk-loaded table, once directly and once by Spark: every range must go
the direct way, outcomes (counts, positions, truncate position, added columns) and tables (schema and
every value) must be identical, and the truncate range applied again (a replay after a crash, from the
spec a restarted stream reads) must change nothing on either. Then the stream applies everything to
the lake: every apply line of both tables says "by direct", nothing is handed to Spark, and both tables
equal their source value by value.
Needs the local stack (`make up`).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.cdc import offsets as O
from lib.cdc.direct.apply import DirectApplier
from lib.cdc.loop.batch_line import parse_batch_line
from lib.cdc.loop.specs import ensure_tombstones, load_spec
from lib.cdc.loop.stream import CdcStream, StreamOptions
from lib.cdc.loop.tombstone_buffer import TombstoneBuffer
from lib.cdc.plan import table_topic
from lib.cdc.source_catalog import SourceCatalog
from lib.cdc.spark.table_range import RangeContext, apply_with_spark
from lib.dialects import get_dialect
from lib.status.store import StatusStore

from .compare import assert_lake_equals_rows, assert_lake_equals_source, source_rows
from .conftest import Source
from .kafka_events import BOOTSTRAP, wait_until_captured
from .test_cdc_decode import cleanup
from .test_cdc_stream import stream_config

SETUP = '''
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.trunc (id bigint PRIMARY KEY, name text, qty int, big text);
ALTER TABLE {s}.trunc ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO {s}.trunc SELECT g, 'row ' || g, g, CASE WHEN g % 10 = 0 THEN repeat(md5(g::text), 300) END FROM generate_series(1, 300) g;
CREATE TABLE {s}.evolve (id bigint PRIMARY KEY, name text, seen timestamp);
INSERT INTO {s}.evolve SELECT g, 'e ' || g, timestamp '2024-01-01' + g * interval '1 hour' FROM generate_series(1, 100) g;
'''
PHASES = {
    "a truncate alone": "TRUNCATE {s}.trunc;",
    "inserts before and after a truncate": '''
INSERT INTO {s}.trunc SELECT g, 'before ' || g, g, NULL FROM generate_series(1, 20) g;
UPDATE {s}.trunc SET qty = -qty WHERE id <= 5;
TRUNCATE {s}.trunc;
INSERT INTO {s}.trunc SELECT g, 'after ' || g, g, CASE WHEN g % 5 = 0 THEN repeat(md5(g::text), 300) END FROM generate_series(10, 40) g;
UPDATE {s}.trunc SET qty = qty + 1000 WHERE id % 5 = 0;   -- big unchanged: the placeholder, filled from the insert after the truncate
''',
    "a truncate inside a transaction": '''
BEGIN; INSERT INTO {s}.trunc VALUES (100, 'gone with the truncate', 1, NULL); TRUNCATE {s}.trunc;
INSERT INTO {s}.trunc VALUES (101, 'after the truncate in its transaction', 1, NULL); COMMIT;
INSERT INTO {s}.trunc SELECT g, 'late ' || g, g, repeat(md5(g::text), 300) FROM generate_series(200, 230) g;
UPDATE {s}.trunc SET qty = qty + 1 WHERE id BETWEEN 200 AND 210;
''',
    "after the truncates; a new column": '''
UPDATE {s}.trunc SET qty = qty + 1 WHERE id BETWEEN 200 AND 205;        -- placeholder: the stored big stays
DELETE FROM {s}.trunc WHERE id BETWEEN 220 AND 225;
INSERT INTO {s}.trunc VALUES (300, 'three hundred', 3, NULL);
UPDATE {s}.evolve SET name = name || ' before' WHERE id <= 10;
ALTER TABLE {s}.evolve ADD COLUMN note text, ADD COLUMN amount numeric(10,2), ADD COLUMN tags int[], ADD COLUMN seen2 timestamp;
UPDATE {s}.evolve SET note = 'note ' || id, amount = id * 1.5, tags = ARRAY[id::int, NULL], seen2 = seen + interval '1 day' WHERE id BETWEEN 5 AND 15;
UPDATE {s}.evolve SET name = name || ' after' WHERE id BETWEEN 12 AND 20;
INSERT INTO {s}.evolve (id, name, note) VALUES (500, 'new', 'fresh');
''',
}
KEYS = {"trunc": ["id"], "evolve": ["id"]}


@pytest.fixture(scope="module")
def phased(spark: Any, scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The bulk-loaded tables, the end offsets after each phase, and a source catalog read before the ALTER."""
    src = Source(scratch_db, f"t_direct_changes_{uuid.uuid4().hex[:6]}", tmp_path_factory.mktemp("direct_changes"))
    s = f'"{src.schema}"'
    src.execute(f"CREATE SCHEMA {s}")
    src.execute(SETUP.format(s=s))
    config = src.load_config(stream_config(src))
    try:
        assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
        catalog = SourceCatalog(get_dialect("postgres"), config.source(src.name))
        assert "note" not in catalog.fields(src.schema, "evolve")  # read before the column is added
        ends = [wait_until_captured(src, src.name)]
        for sql in PHASES.values():
            src.execute(sql.format(s=s))
            ends.append(wait_until_captured(src, src.name))
        yield {"src": src, "config": config, "catalog": catalog, "ends": ends}
    finally:
        cleanup(src)


def _copy(spark: Any, src: Source, table: str, name: str) -> Any:
    """A copy of the bulk-loaded table and its spec as a starting stream builds it (MERGEd by delta-rs)."""
    event = StatusStore(spark, src.lake_root).latest(src.name)[(src.name, src.schema, table)]
    location = str(src.tmp / name)
    shutil.copytree(src.lake_path(table), location)
    spec = load_spec(spark, dataclasses.replace(event, location=location), get_dialect("postgres"), None, "delta-rs")
    assert spec.merge_by == "delta-rs"
    return dataclasses.replace(spec, has_tombstones=False)


def _respec(spark: Any, src: Source, table: str, spec: Any) -> Any:
    """The spec a restarted stream reads for the table at ``spec.location`` (columns and truncate position from the lake)."""
    event = StatusStore(spark, src.lake_root).latest(src.name)[(src.name, src.schema, table)]
    fresh = load_spec(spark, dataclasses.replace(event, location=spec.location), get_dialect("postgres"), None, "delta-rs")
    return dataclasses.replace(fresh, has_tombstones=spec.has_tombstones, tombstones_until=spec.tombstones_until)


def _same_tables(spark: Any, a: str, b: str) -> int:
    """Both tables have the same columns (names, types, order) and rows, every column but __ingested_at."""
    left, right = (spark.read.format("delta").load(p) for p in (a, b))
    assert left.dtypes == right.dtypes
    left, right = left.drop("__ingested_at"), right.drop("__ingested_at")
    assert left.exceptAll(right).count() == 0 and right.exceptAll(left).count() == 0
    return left.count()


OUTCOME = ("events", "applied", "skipped", "dead", "inserted", "updated", "deleted", "truncates", "last_position", "last_ts_ms", "ts_p50_ms",
           "added_columns")


@pytest.mark.parametrize("table", ["trunc", "evolve"])
def test_direct_and_spark_apply_truncates_and_new_columns_identically(spark: Any, phased: Any, table: str, caplog: pytest.LogCaptureFixture) -> None:
    src, catalog, ends = phased["src"], phased["catalog"], phased["ends"]
    topic = table_topic(src.name, src.schema, table)
    bounds = [{p: o for (t, p), o in end.items() if t == topic} for end in ends]
    direct_spec, spark_spec = _copy(spark, src, table, f"{table}_direct"), _copy(spark, src, table, f"{table}_spark")
    contexts = {}
    for name in ("direct", "spark"):
        tombstones, _ = ensure_tombstones(spark, str(src.tmp / f"tombs_{table}_{name}"), src.name, 24)
        contexts[name] = RangeContext(src.name, {"kafka.bootstrap.servers": BOOTSTRAP}, catalog, TombstoneBuffer(tombstones),
                                      str(src.tmp / f"dead_{table}_{name}"), "test")
    applier = DirectApplier({"bootstrap.servers": BOOTSTRAP}, catalog, processes=1)  # one worker process, as the stream runs them
    outcomes = {}
    caplog.set_level(logging.INFO, logger="lib.cdc.direct.apply")
    seq = 0

    def both(rng: O.Range, phase: str, direct_spec: Any, spark_spec: Any) -> tuple[Any, Any]:
        nonlocal seq
        seq += 1
        direct = applier.apply(direct_spec, rng)
        assert direct is not None and direct.path == "direct", f"{phase}: {caplog.messages[-1:]}"
        contexts["direct"].tombstones.add(direct_spec.schema, direct_spec.table, direct.tombstone_rows)
        by_spark = apply_with_spark(spark, contexts["spark"], spark_spec, rng, seq).outcome
        for name in OUTCOME:
            assert getattr(direct, name) == getattr(by_spark, name), f"{phase}: {name} {getattr(direct, name)} != {getattr(by_spark, name)}"
        assert by_spark.dead == 0 and sorted(direct.tombstone_rows) == sorted(tuple(r) for r in by_spark.tombstone_rows)
        assert direct.spec.columns == by_spark.spec.columns and direct.spec.truncated_at == by_spark.spec.truncated_at, phase
        assert (direct.spec.has_tombstones, direct.spec.tombstones_until) == (by_spark.spec.has_tombstones, by_spark.spec.tombstones_until)
        _same_tables(spark, direct.spec.location, by_spark.spec.location)
        return direct, by_spark

    try:
        for phase, start, end in zip(["(before the phases)", *PHASES], [{}, *bounds[:-1]], bounds, strict=True):
            rng = O.Range(topic, start, end)
            if not rng.messages:
                continue
            direct, by_spark = both(rng, phase, direct_spec, spark_spec)
            outcomes[phase] = direct
            direct_spec, spark_spec = direct.spec, by_spark.spec
            if phase == "inserts before and after a truncate":  # a crash before the range's offsets were recorded: applied again
                before = spark.read.format("delta").load(direct_spec.location).drop("__ingested_at").collect()
                replay, _ = both(rng, f"{phase} (replay)", _respec(spark, src, table, direct_spec), _respec(spark, src, table, spark_spec))
                assert (replay.inserted, replay.updated, replay.deleted, replay.truncates) == (0, 0, 0, 1)
                after = spark.read.format("delta").load(direct_spec.location).drop("__ingested_at").collect()
                assert sorted(map(str, after)) == sorted(map(str, before))
    finally:
        applier.close()
    assert not [m for m in caplog.messages if "applied by Spark" in m], caplog.messages
    columns, expected = source_rows(src, src.schema, table)
    assert assert_lake_equals_rows(spark, direct_spec.location, columns, expected, KEYS[table], table=table) == len(expected)
    if table == "trunc":
        alone, mixed = outcomes["a truncate alone"], outcomes["inserts before and after a truncate"]
        assert (alone.truncates, alone.deleted, alone.applied) == (1, 300, 0)
        assert mixed.truncates == 1 and mixed.skipped == 25 and mixed.inserted == 31 and mixed.deleted == 0
        assert outcomes["a truncate inside a transaction"].inserted == 32 and len(expected) == 27
        truncated = [m for m in caplog.messages if m.startswith(f"{src.schema}.trunc: truncate at position ") and m.endswith(" applied; by direct")]
        assert len(truncated) == 3 + 1, caplog.messages  # the replay's too
    else:
        added = outcomes["after the truncates; a new column"]
        assert added.added_columns == ("note", "amount", "tags", "seen2")
        assert direct_spec.columns[-4:] == (("note", "string"), ("amount", "decimal(10,2)"), ("tags", "array<int>"), ("seen2", "timestamp_ntz"))
        assert f"{src.schema}.evolve: new source column(s) added to the lake table: note string, amount decimal(10,2), tags array<int>, " \
               "seen2 timestamp_ntz; by direct" in caplog.messages
        lake = {r["id"]: r for r in spark.read.format("delta").load(direct_spec.location).collect()}
        assert lake[1]["note"] is None and lake[12]["tags"] == [12, None] and lake[500]["note"] == "fresh" and lake[99]["amount"] is None


def test_the_stream_applies_truncates_and_new_columns_directly_and_the_lake_equals_the_source(spark: Any, phased: Any,
                                                                                                caplog: pytest.LogCaptureFixture) -> None:
    src = phased["src"]
    config = src.load_config(stream_config(src, max_offsets_per_trigger=40))  # several ranges of trunc
    with caplog.at_level(logging.INFO):
        failed = CdcStream(spark, config, config.source(src.name), get_dialect("postgres"), StreamOptions(available_now=True)).run()
    assert failed == 0
    lines = [parse_batch_line(r.getMessage()) for r in caplog.records if r.name == "lib.cdc.loop.apply_loop"]
    ours = [b for b in lines if b and b.get("table") in (f"{src.schema}.trunc", f"{src.schema}.evolve")]
    assert len([b for b in ours if b["table"].endswith(".trunc")]) >= 3 and any(b["table"].endswith(".evolve") for b in ours), ours
    assert all(b["path"] == "direct" for b in ours), ours
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "applied by Spark" in m], [m for m in messages if "applied by Spark" in m]
    assert sum("trunc: truncate at position" in m and m.endswith("applied; by direct") for m in messages) >= 2  # (two in one range: its latest)
    assert any(m.startswith(f"{src.schema}.evolve: new source column(s) added") and m.endswith("; by direct") for m in messages)
    assert assert_lake_equals_source(spark, src, "trunc", KEYS["trunc"]) == 27
    assert assert_lake_equals_source(spark, src, "evolve", KEYS["evolve"]) == 101
