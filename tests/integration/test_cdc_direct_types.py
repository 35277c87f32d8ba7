"""The direct apply on the column types its decoders gained (real, timetz, bit(n), arrays of every element
type), against the Spark path on the same real events, and the stream through it end to end.

Real components: PostgreSQL, Debezium, Kafka, Spark, Delta. A table of those types is bulk-loaded while
a writer changes it, then changed again (array values replaced, emptied, set NULL, NaN and infinities,
float32 extremes, deletes, a key change, and updates leaving a large out-of-line array unchanged, which
Debezium sends as its unchanged-TOAST placeholder). The same Kafka ranges are applied to two copies of
the bulk-loaded table, once directly and once by Spark: outcomes and tables must be identical, and the
direct path must have taken every range but the ones reaching back to a tombstone, the ranges holding a
TOAST placeholder included (the MERGE keeps the stored array). Then the stream applies everything and the lake table equals its source value by value.
(tests/integration/test_cdc_decode.py holds each decoder to the bulk values on the all-types table.)
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
from lib.cdc.loop.specs import ensure_tombstones, load_spec
from lib.cdc.loop.stream import CdcStream, StreamOptions
from lib.cdc.loop.tombstone_buffer import TombstoneBuffer
from lib.cdc.plan import table_topic
from lib.cdc.source_catalog import SourceCatalog
from lib.cdc.spark.table_range import RangeContext, apply_with_spark
from lib.dialects import get_dialect
from lib.status.store import StatusStore

from .compare import assert_lake_equals_source
from .conftest import Source
from .kafka_events import BOOTSTRAP, wait_until_captured
from .test_cdc_stream import scenario, stream_config

TABLE = "typed"
# Values whose events give the bulk value exactly (docs/cdc-stream.md lists the array types Debezium
# sends with a loss: time[], timetz[], timestamp[] before 1582, ...; timetz is at +00 here).
SETUP = '''
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.typed (id bigint PRIMARY KEY, r real, tz timetz, b1 bit(1), b10 bit(10), b70 bit(70),
  i2a smallint[], i4a int[], i8a bigint[], ra real[], da double precision[], ba boolean[], ta text[], va varchar(8)[], dta date[],
  tsa timestamp[], tza timestamptz[], na numeric(6,2)[], nfa numeric[], ua uuid[], ja jsonb[], big_tags text[]);
ALTER TABLE {s}.typed ALTER COLUMN big_tags SET STORAGE EXTERNAL;
INSERT INTO {s}.typed SELECT g,
  CASE g % 10 WHEN 0 THEN 'NaN' WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' ELSE (g / 7.0 - 100)::real END,
  ((time '00:00' + g * interval '37.001 s')::text || '+00')::timetz,
  (g % 2)::bit(1), (g * 37 % 1024)::bit(10), g::bit(32) || (g * 7919)::bit(32) || (g % 64)::bit(6),
  ARRAY[(g % 300 - 150)::smallint, NULL], CASE WHEN g % 5 = 0 THEN '{{}}'::int[] ELSE ARRAY[g, -g, NULL] END, ARRAY[g::bigint * 1000000007],
  ARRAY[(g / 3.0)::real, NULL, CASE g % 3 WHEN 0 THEN 'NaN' ELSE '-0' END::real], ARRAY[g / 9.0, '-Infinity'::float8],
  ARRAY[g % 2 = 0, NULL], ARRAY['t' || g % 3, NULL, ''], ARRAY[left(md5(g::text), g % 9)::varchar(8)], ARRAY[date '2000-01-01' + g, NULL],
  ARRAY[timestamp '2020-01-01 00:00:00.123456' + g * interval '1 hour'], ARRAY[timestamptz '1999-12-31 23:59:59.5+00' + g * interval '1 day', NULL],
  ARRAY[(g % 9999) / 100.0, NULL]::numeric(6,2)[], ARRAY[g / 8.0, -g]::numeric[], ARRAY[md5(g::text)::uuid], ARRAY[jsonb_build_object('g', g), NULL],
  CASE WHEN g % 100 = 0 THEN array_fill(md5(g::text), ARRAY[500]) END
FROM generate_series(1, 1500) g;
'''
AFTER_LOAD = '''
UPDATE {s}.typed SET ra = ARRAY['3.4028235e38', '-3.4028235e38', '1.4e-45', '1.17549435e-38', 'Infinity']::real[], r = '1.4e-45',
  da = ARRAY['1.7976931348623157e308', '5e-324', 'NaN']::float8[], i8a = ARRAY[-9223372036854775808, 9223372036854775807]::bigint[],
  dta = ARRAY['0001-01-01', '9999-12-31']::date[], tza = ARRAY['9999-12-31 23:59:59.999999+00']::timestamptz[] WHERE id % 11 = 0 AND id % 100 <> 0;
UPDATE {s}.typed SET i4a = '{{}}', ta = '{{NULL}}', na = NULL, b70 = repeat('1', 70)::bit(70), b10 = '0000000000', tz = '00:00:00+00' WHERE id % 13 = 0 AND id % 100 <> 0;
DELETE FROM {s}.typed WHERE id BETWEEN 101 AND 140;
UPDATE {s}.typed SET id = id + 100000 WHERE id BETWEEN 301 AND 305;
INSERT INTO {s}.typed (id, r, ta) VALUES (5000, 3.4028235e38, ARRAY['new']), (5001, NULL, NULL);
'''
# updates that leave the large out-of-line array unchanged (the other changes leave those rows alone):
# Debezium sends its placeholder, and both paths keep the stored array
TOAST = '''
UPDATE {s}.typed SET r = 1.5 WHERE id % 100 = 0;
'''


def writer_during_load(src: Source, stop: threading.Event) -> None:
    """Changes while the bulk load runs: events inside the snapshot (skipped) and after it (applied)."""
    conn = src.connect()
    try:
        with conn.cursor() as cur:
            for n in range(1, 201):
                if stop.is_set() and n > 50:
                    break
                id_ = 1 + (n * 37) % 1500
                id_ += 1 if id_ % 100 == 0 else 0  # the rows with the large array change in TOAST only
                cur.execute(f'UPDATE "{src.schema}".typed SET ra = ARRAY[%s::real, NULL], ta = ARRAY[%s] WHERE id = %s', (n / 3, f"during {n}", id_))
                cur.execute(f'INSERT INTO "{src.schema}".typed (id, r) VALUES (%s, %s)', (10000 + n, n / 7))
    finally:
        conn.close()


@pytest.fixture(scope="module")
def loaded(spark: Any, scratch_db: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    yield from scenario(spark, scratch_db, tmp_path_factory, "t_cdc_direct_types", SETUP, AFTER_LOAD + TOAST, writer_during_load)


def _copy(spark: Any, src: Source, name: str) -> Any:
    """A copy of the bulk-loaded table and its spec (MERGEd by delta-rs, no tombstones yet)."""
    event = StatusStore(spark, src.lake_root).latest(src.name)[(src.name, src.schema, TABLE)]
    location = str(src.tmp / name)
    shutil.copytree(src.lake_path(TABLE), location)
    spec = load_spec(spark, dataclasses.replace(event, location=location), get_dialect("postgres"), None, "delta-rs")
    return dataclasses.replace(spec, has_tombstones=False)  # as the stream starts a table without tombstones


def test_direct_and_spark_apply_the_same_ranges_identically(spark: Any, loaded: Any, caplog: pytest.LogCaptureFixture) -> None:
    src, config, ends = loaded
    topic = table_topic(src.name, src.schema, TABLE)
    end = {p: o for (t, p), o in ends.items() if t == topic}
    assert sum(end.values()) > 300
    direct_spec, spark_spec = _copy(spark, src, "direct"), _copy(spark, src, "spark")
    catalog = SourceCatalog(get_dialect("postgres"), config.source(src.name))
    # each copy with its own tombstone table: a range reaching back to a tombstone is checked against it
    contexts = {}
    for name in ("direct", "spark"):
        tombstones, _ = ensure_tombstones(spark, str(src.tmp / f"tombs_{name}"), src.name, 24)
        contexts[name] = RangeContext(src.name, {"kafka.bootstrap.servers": BOOTSTRAP}, catalog, TombstoneBuffer(tombstones),
                                      str(src.tmp / f"dead_{name}"), "test")
    applier = DirectApplier({"bootstrap.servers": BOOTSTRAP}, catalog, processes=1)
    done: O.Offsets = {}
    applies, declined = 0, []
    caplog.set_level(logging.DEBUG, logger="lib.cdc.direct.apply")
    try:
        while (rng := O.next_range(topic, done, end, 100)) is not None:
            direct = applier.apply(direct_spec, rng)
            if direct is None:
                declined.append(caplog.messages[-1])
                direct = apply_with_spark(spark, contexts["direct"], direct_spec, rng, 1000 + applies).outcome
            else:
                contexts["direct"].tombstones.add(direct_spec.schema, direct_spec.table, direct.tombstone_rows)
            by_spark = apply_with_spark(spark, contexts["spark"], spark_spec, rng, applies).outcome
            for name in ("events", "applied", "skipped", "dead", "inserted", "updated", "deleted", "truncates", "last_position", "last_ts_ms",
                         "ts_p50_ms", "added_columns"):
                assert getattr(direct, name) == getattr(by_spark, name), f"apply {applies}: {name} {getattr(direct, name)} != {getattr(by_spark, name)}"
            assert by_spark.dead == 0
            assert sorted(direct.tombstone_rows) == sorted(tuple(r) for r in by_spark.tombstone_rows)
            direct_spec, spark_spec = direct.spec, by_spark.spec
            done = {**done, **rng.end}
            applies += 1
    finally:
        applier.close()
    assert all("at or before the table's latest tombstone" in m for m in declined), declined  # TOAST placeholders included
    assert applies - len(declined) >= 3, (applies, declined)
    left, right = (spark.read.format("delta").load(p).drop("__ingested_at") for p in (direct_spec.location, spark_spec.location))
    assert left.count() > 1400 and left.exceptAll(right).count() == 0 and right.exceptAll(left).count() == 0


def test_the_stream_applies_the_new_types_directly_and_the_lake_equals_the_source(spark: Any, loaded: Any, caplog: pytest.LogCaptureFixture) -> None:
    src, config, _ = loaded
    src.execute(TOAST.format(s=f'"{src.schema}"'))  # once more, after the ranges above
    wait_until_captured(src, src.name)
    config = src.load_config(stream_config(src, max_offsets_per_trigger=150))
    with caplog.at_level(logging.DEBUG, logger="lib.cdc.direct.apply"):
        failed = CdcStream(spark, config, config.source(src.name), get_dialect("postgres"), StreamOptions(available_now=True)).run()
    assert failed == 0
    direct = [r for r in caplog.records if r.name == "lib.cdc.direct.apply" and "(direct)" in r.getMessage() and f".{TABLE}:" in r.getMessage()]
    assert len(direct) >= 2, [r.getMessage() for r in caplog.records]
    assert assert_lake_equals_source(spark, src, TABLE, key=["id"]) > 1400
    lake = {r["id"]: r for r in spark.read.format("delta").load(src.lake_path(TABLE)).collect()}
    assert lake[200]["big_tags"] == [__import__("hashlib").md5(b"200").hexdigest()] * 500  # kept through the placeholder
    assert lake[13]["b70"] == "1" * 70 and lake[13]["i4a"] == [] and lake[13]["ta"] == [None]
