"""The direct apply (lib/cdc/direct/apply.py: Kafka client, one Python pass, delta-rs MERGE) against the
Spark path on the same real events, and the stream through it end to end (issue 11).

Real components: PostgreSQL, Debezium, Kafka, Spark, Delta. A table of every type the direct path
decodes is bulk-loaded while a writer changes it (events inside and after the snapshot), then changed
again (updates of a key several times in one range, deletes, delete + re-insert in one transaction, a
key change). The same Kafka ranges are applied to three copies of the bulk-loaded table, directly, by
Spark, and decoded directly but MERGEd by Spark into a table with deletion vectors (the ``direct+spark``
path of the tables Spark must MERGE): outcomes and tables must be identical. Then the stream applies everything with the
default settings and the lake table equals its source value by value: every range directly but the one
holding values the lake column cannot hold, which Spark applies and dead-letters.
Needs the local stack (`make up`).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
from typing import Any

import pytest

from lib.cdc import offsets as O
from lib.cdc.direct.apply import DirectApplier
from lib.cdc.loop.specs import load_spec
from lib.cdc.loop.stream import CdcStream, StreamOptions
from lib.cdc.loop.tombstone_buffer import TombstoneBuffer
from lib.cdc.plan import table_topic
from lib.cdc.source_catalog import SourceCatalog
from lib.cdc.spark.table_range import RangeContext, apply_range, apply_with_spark
from lib.dialects import get_dialect
from lib.lake.paths import dead_letter_path
from lib.status.store import StatusStore

from .compare import assert_lake_equals_source
from .conftest import Source
from .kafka_events import BOOTSTRAP, wait_until_captured
from .test_cdc_stream import scenario, stream_config

TABLE = "Direct t"
SETUP = '''
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}."Direct t" (id bigint PRIMARY KEY, small smallint, n int, price numeric(12,2), wide numeric, free_num numeric(20,4),
  label text, code varchar(12), ch char(3), ok boolean, ratio double precision, born date, at_ts timestamp, at_ms timestamp(3),
  at_tz timestamptz, clock time, span interval, uid uuid, doc jsonb, raw bytea, addr inet, cash money);
INSERT INTO {s}."Direct t" SELECT g, (g % 30000)::smallint, g * 3, g * 1.25, g / 7.0, round(g / 3.0, 4), 'label ' || g || ' é"\\',
  left(md5(g::text), 12), 'ab', g % 2 = 0, g / 9.0, date '2000-01-01' + g, timestamp '2020-01-01 00:00:00.123456' + g * interval '1 hour',
  timestamp '2020-01-01' + g * interval '1.5 s', timestamptz '1999-12-31 23:59:59.5+00' + g * interval '1 day', time '00:00:01' + g * interval '1 s',
  make_interval(months => g % 13, days => g % 5, secs => g / 3.0), md5(g::text)::uuid, jsonb_build_object('g', g), decode(md5(g::text), 'hex'),
  ('10.0.' || g % 256 || '.1')::inet, (g * 1.5)::money
FROM generate_series(1, 1500) g;
'''
AFTER_LOAD = '''
UPDATE {s}."Direct t" SET n = n + 1, price = price + 0.01, label = label || '+' WHERE id % 7 = 0;
UPDATE {s}."Direct t" SET n = n + 1, ratio = 'NaN', span = interval '-1 mon +2 days -00:00:00.000001' WHERE id % 14 = 0;
UPDATE {s}."Direct t" SET at_tz = timestamptz '0001-01-03 12:00:00.000001+00', born = date '9999-12-31', clock = time '24:00:00' WHERE id = 3;
DELETE FROM {s}."Direct t" WHERE id BETWEEN 100 AND 140;
BEGIN; DELETE FROM {s}."Direct t" WHERE id = 200; INSERT INTO {s}."Direct t" (id, label) VALUES (200, 'reborn'); COMMIT;
UPDATE {s}."Direct t" SET id = id + 100000 WHERE id BETWEEN 300 AND 305;
INSERT INTO {s}."Direct t" (id, wide, label, raw) VALUES (5000, '-0.000', '', ''::bytea), (5001, 2, NULL, NULL);
'''
# Values the lake column (numeric profiled as decimal(23,20)) cannot hold: dead letters, so the range
# holding them is applied by Spark; the later events put the rows back in step with the source.
LATER = '''
UPDATE {s}."Direct t" SET wide = 'NaN' WHERE id = 5000;
UPDATE {s}."Direct t" SET wide = 'Infinity' WHERE id = 5001;
UPDATE {s}."Direct t" SET wide = 2.5 WHERE id = 5001;
DELETE FROM {s}."Direct t" WHERE id = 5000;
'''


def writer_during_load(src: Source, stop: threading.Event) -> None:
    """Changes while the bulk load runs: events inside the snapshot (skipped) and after it (applied)."""
    conn = src.connect()
    try:
        with conn.cursor() as cur:
            for n in range(1, 301):
                if stop.is_set() and n > 50:
                    break
                cur.execute(f'UPDATE "{src.schema}"."Direct t" SET n = n + 1000, label = %s WHERE id = %s', (f"during {n}", 1 + (n * 37) % 1500))
                cur.execute(f'INSERT INTO "{src.schema}"."Direct t" (id, label, at_tz) VALUES (%s, %s, now())', (10000 + n, f"new {n}"))
    finally:
        conn.close()


@pytest.fixture(scope="module")
def loaded(spark: Any, scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield from scenario(spark, scratch_db, tmp_path_factory, "t_cdc_direct", SETUP, AFTER_LOAD, writer_during_load)


def _copy(spark: Any, src: Source, name: str, merge_writer: str = "delta-rs") -> Any:
    """A copy of the bulk-loaded table and its spec (MERGEd by ``merge_writer``: with ``spark`` the
    stream turns deletion vectors on; no tombstones yet)."""
    event = StatusStore(spark, src.lake_root).latest(src.name)[(src.name, src.schema, TABLE)]
    location = str(src.tmp / name)
    shutil.copytree(src.lake_path(TABLE), location)
    spec = load_spec(spark, dataclasses.replace(event, location=location), get_dialect("postgres"), None, merge_writer)
    return dataclasses.replace(spec, has_tombstones=False)  # as the stream starts a table without tombstones


def _differences(spark: Any, a: str, b: str) -> tuple[int, int, int]:
    """(rows, rows of a not in b, rows of b not in a) of two tables, every column but __ingested_at
    compared by Spark (NaN equals NaN there, as the tables must agree on it)."""
    left, right = (spark.read.format("delta").load(p).drop("__ingested_at") for p in (a, b))
    return left.count(), left.exceptAll(right).count(), right.exceptAll(left).count()


def test_direct_and_spark_apply_the_same_ranges_identically(spark: Any, loaded: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lib.cdc.direct.apply")  # whatever level an earlier test left the root logger at
    src, config, ends = loaded
    topic = table_topic(src.name, src.schema, TABLE)
    end = {p: o for (t, p), o in ends.items() if t == topic}
    assert sum(end.values()) > 450  # the writer during the load stops after 50 rounds once the load is done (a fast load: ~490 messages)
    direct_spec, spark_spec, split_spec = _copy(spark, src, "direct"), _copy(spark, src, "spark"), _copy(spark, src, "split", "spark")
    assert direct_spec.merge_by == spark_spec.merge_by == "delta-rs" and split_spec.merge_by == "spark"
    assert spark.sql(f"DESCRIBE DETAIL delta.`{split_spec.location}`").first()["properties"]["delta.enableDeletionVectors"] == "true"
    catalog = SourceCatalog(get_dialect("postgres"), config.source(src.name))
    # a real tombstone table, as the stream has: a range the direct path declines (it reaches back to the
    # latest tombstone) is checked against it by Spark; the three copies are tables of their own in it
    tombstones = TombstoneBuffer(str(src.tmp / "tombstones"))
    ctx = RangeContext(src.name, {"kafka.bootstrap.servers": BOOTSTRAP}, catalog, tombstones, str(src.tmp / "dead"), "test")
    applier = DirectApplier({"bootstrap.servers": BOOTSTRAP}, catalog, processes=1)  # one worker process, as the stream runs them
    split_ctx = dataclasses.replace(ctx, direct=applier)  # the stream's routing (lib.cdc.route): decoded directly, MERGEd by Spark
    done: O.Offsets = {}
    applies, by_spark_too, split_paths = 0, [], []
    try:
        while (rng := O.next_range(topic, done, end, 200)) is not None:
            direct = applier.apply(direct_spec, rng)
            if direct is None:  # as the stream does: Spark applies what the direct path declines
                by_spark_too.append(caplog.messages[-1])
                direct = apply_with_spark(spark, ctx, direct_spec, rng, 1000 + applies).outcome
            else:  # the stream buffers the direct path's deletes as Spark's (lib.cdc.spark.table_range)
                tombstones.add(direct.spec.schema, direct.spec.table, direct.tombstone_rows)
            by_spark = apply_with_spark(spark, ctx, spark_spec, rng, applies).outcome
            split = apply_range(spark, split_ctx, split_spec, rng, 2000 + applies).outcome
            split_paths.append(split.path)
            for other in (direct, split):
                for name in ("events", "applied", "skipped", "dead", "inserted", "updated", "deleted", "truncates", "last_position", "last_ts_ms",
                             "ts_p50_ms", "added_columns"):
                    assert getattr(other, name) == getattr(by_spark, name), \
                        f"apply {applies} ({other.path}): {name} {getattr(other, name)} != {getattr(by_spark, name)}"
                assert sorted(other.tombstone_rows) == sorted(tuple(r) for r in by_spark.tombstone_rows)
                assert (other.spec.has_tombstones, other.spec.tombstones_until) == (by_spark.spec.has_tombstones, by_spark.spec.tombstones_until)
            direct_spec, spark_spec, split_spec = direct.spec, by_spark.spec, split.spec
            done = {**done, **rng.end}
            applies += 1
        # a replay of the first range (a crash before its offsets were recorded) reaches back before
        # the latest tombstone: the tombstone join is Spark's, so the direct path declines it
        assert applier.apply(direct_spec, O.next_range(topic, {}, end, 200)) is None
    finally:
        applier.close()
    # At most one range is Spark's: the one a boundary splits the key-changing UPDATE in (Debezium's
    # delete and create of a key change share one position, so the create is "at" the delete's tombstone).
    assert applies >= 3 and len(by_spark_too) <= 1, by_spark_too
    assert all("at or before the table's latest tombstone" in m for m in by_spark_too), by_spark_too
    assert split_paths.count("spark") == len(by_spark_too) and split_paths.count("direct+spark") == applies - len(by_spark_too), split_paths
    rows, only_direct, only_spark = _differences(spark, direct_spec.location, spark_spec.location)
    assert rows > 1500 and (only_direct, only_spark) == (0, 0)
    rows, only_split, only_spark = _differences(spark, split_spec.location, spark_spec.location)
    assert rows > 1500 and (only_split, only_spark) == (0, 0)


def test_the_stream_applies_directly_what_it_can_and_the_lake_equals_the_source(spark: Any, loaded: Any, caplog: pytest.LogCaptureFixture) -> None:
    src, config, _ = loaded
    src.execute(LATER.format(s=f'"{src.schema}"'))
    wait_until_captured(src, src.name)
    config = src.load_config(stream_config(src, max_offsets_per_trigger=150))  # several ranges
    with caplog.at_level(logging.DEBUG, logger="lib.cdc.direct.apply"):
        failed = CdcStream(spark, config, config.source(src.name), get_dialect("postgres"), StreamOptions(available_now=True)).run()
    assert failed == 0
    direct = [r for r in caplog.records if r.name == "lib.cdc.direct.apply" and "(direct)" in r.getMessage() and TABLE in r.getMessage()]
    to_spark = [r.getMessage() for r in caplog.records if "applied by Spark, not directly" in r.getMessage() and TABLE in r.getMessage()]
    assert len(direct) >= 2, [r.getMessage() for r in caplog.records]
    nan = [m for m in to_spark if m.endswith("column wide: a value that is not a decimal(23,20) (str)") and "NAN" not in m]
    assert nan and all(m in nan or "at or before the table's latest tombstone" in m for m in to_spark), to_spark
    topic = table_topic(src.name, src.schema, TABLE)
    dead = spark.read.format("delta").load(dead_letter_path(src.lake_root)).where(f"topic = '{topic}'").count()
    assert dead == 2
    assert assert_lake_equals_source(spark, src, TABLE, key=["id"]) > 1500
