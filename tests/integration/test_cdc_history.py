"""History tables (``history: scd2``, with and without ``history_columns``) and soft deletes from the same
change stream, end to end on the local stack (docs/cdc-stream.md, "History").

One scenario: a bulk load, then rows updated several times in one transaction and across applies, a
TOAST-unchanged update, deletes, re-inserts and a key change, applied in small applies; more of them
while the stream is killed with kill -9 and restarted; then a replay of every event from offset 0.
These applies are the direct path's (the log says so; a range with a truncate is Spark's). Then a copy of
the lake taken after the bulk load gets the same events applied by the Spark path (``event_reader:
spark``, in one run of larger applies): every table must equal the direct path's, row for row.
A trigger at the source logs every row change (in an audit schema the pipeline does not capture): each
key's versions in the lake must be exactly that log's row images, once each, in order, their intervals
chaining without gaps or overlaps, exactly one current version per key, and the current, not-deleted
rows equal to the source.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
import shutil
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.cdc.history import lake_view_filter
from lib.lake.paths import dead_letter_path
from lib.status.store import StatusStore

from .compare import normalize, source_rows
from .conftest import Source
from .kafka_events import wait_until_captured
from .test_bulk_resume import delta_commits, kill_when
from .test_cdc_decode import cleanup
from .test_cdc_stream import forget_offsets, run_stream, stream_config
from .test_cdc_stream_crash import start_stream

SETUP = """
CREATE TABLE {s}._marker (token text PRIMARY KEY);
CREATE TABLE {s}.hist (id int PRIMARY KEY, name text, qty int, big text);
ALTER TABLE {s}.hist ALTER COLUMN big SET STORAGE EXTERNAL;
INSERT INTO {s}.hist SELECT g, 'n' || g, g, CASE WHEN g % 5 = 0 THEN repeat(md5(g::text), 300) END FROM generate_series(1, 40) g;
CREATE TABLE {s}.hist_cols (id int PRIMARY KEY, status text, note text);
INSERT INTO {s}.hist_cols SELECT g, 'new', 'note ' || g FROM generate_series(1, 20) g;
CREATE TABLE {s}.trunc (id int PRIMARY KEY, v text);
INSERT INTO {s}.trunc SELECT g, 'v' || g FROM generate_series(1, 5) g;
CREATE TABLE {s}.soft (id int PRIMARY KEY, v text);
INSERT INTO {s}.soft SELECT g, 'v' || g FROM generate_series(1, 20) g;
CREATE SCHEMA {a};
CREATE TABLE {a}.log (seq bigserial PRIMARY KEY, tbl text, op text, id int, r jsonb);
CREATE FUNCTION {a}.audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.id <> NEW.id) THEN
    INSERT INTO {a}.log (tbl, op, id, r) VALUES (TG_TABLE_NAME, 'd', OLD.id, NULL);
  END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND OLD.id <> NEW.id) THEN
    INSERT INTO {a}.log (tbl, op, id, r) VALUES (TG_TABLE_NAME, 'c', NEW.id, to_jsonb(NEW));
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO {a}.log (tbl, op, id, r) VALUES (TG_TABLE_NAME, 'u', NEW.id, to_jsonb(NEW));
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON {s}.hist FOR EACH ROW EXECUTE FUNCTION {a}.audit();
CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON {s}.hist_cols FOR EACH ROW EXECUTE FUNCTION {a}.audit();
"""

# Applied in applies of at most 20 messages: a key's changes land in one apply and across applies.
WORKLOAD_A = """
BEGIN; UPDATE {s}.hist SET name = 'a1' WHERE id = 1; UPDATE {s}.hist SET name = 'a2' WHERE id = 1;
  UPDATE {s}.hist SET qty = 100 WHERE id = 1; COMMIT;
UPDATE {s}.hist SET qty = qty + 1 WHERE id IN (5, 10);
DELETE FROM {s}.hist WHERE id = 3;
INSERT INTO {s}.hist VALUES (100, 'new', 0, NULL);
UPDATE {s}.hist SET id = 400 WHERE id = 4;
UPDATE {s}.hist SET name = 'b' || id WHERE id BETWEEN 6 AND 12;
UPDATE {s}.hist_cols SET note = 'edited' WHERE id IN (1, 2);
UPDATE {s}.hist_cols SET status = 'paid' WHERE id = 1;
BEGIN; UPDATE {s}.hist_cols SET note = 'x' WHERE id = 3; UPDATE {s}.hist_cols SET status = 'paid' WHERE id = 3;
  UPDATE {s}.hist_cols SET note = 'y' WHERE id = 3; COMMIT;
DELETE FROM {s}.hist_cols WHERE id = 4;
DELETE FROM {s}.soft WHERE id IN (1, 2, 3);
INSERT INTO {s}.soft VALUES (2, 'back');
UPDATE {s}.soft SET v = 'u' WHERE id = 5;
UPDATE {s}.trunc SET v = 'before' WHERE id = 1;
TRUNCATE {s}.trunc;
INSERT INTO {s}.trunc VALUES (1, 'after');
"""

WORKLOAD_B = """
UPDATE {s}.hist SET name = 'c' || id WHERE id <= 20;
UPDATE {s}.hist SET qty = qty * 2 WHERE id IN (5, 15, 20);
DELETE FROM {s}.hist WHERE id = 1;
INSERT INTO {s}.hist VALUES (1, 'again', 1, NULL), (3, 'three again', 3, NULL);
BEGIN; UPDATE {s}.hist SET qty = -1 WHERE id = 1; UPDATE {s}.hist SET id = 401 WHERE id = 400; COMMIT;
UPDATE {s}.hist SET name = 'd' || id WHERE id > 20;
UPDATE {s}.hist_cols SET note = 'again' WHERE id <= 10;
UPDATE {s}.hist_cols SET status = 'shipped' WHERE id % 3 = 0;
INSERT INTO {s}.hist_cols VALUES (4, 'new', 'revived');
DELETE FROM {s}.soft WHERE id IN (2, 6);
INSERT INTO {s}.soft VALUES (1, 'one');
BEGIN; UPDATE {s}.soft SET v = 'gone' WHERE id = 7; DELETE FROM {s}.soft WHERE id = 7; COMMIT;
BEGIN; INSERT INTO {s}.soft VALUES (30, 'brief'); DELETE FROM {s}.soft WHERE id = 30; COMMIT;
UPDATE {s}.trunc SET v = 'after2' WHERE id = 1;
"""

TABLES = ("hist", "hist_cols", "soft", "trunc")
VALUES = {"hist": ("name", "qty", "big"), "hist_cols": ("status", "note")}


@pytest.fixture
def hist_source(scratch_db: str, tmp_path: Path) -> Any:
    src = Source(scratch_db, f"t_cdc_hist_{uuid.uuid4().hex[:6]}", tmp_path)
    src.execute(f'CREATE SCHEMA "{src.schema}"')
    yield src
    cleanup(src)
    src.execute(f'DROP SCHEMA IF EXISTS "{src.schema}_audit" CASCADE')


def _md5(value: Any) -> Any:
    return hashlib.md5(value.encode()).hexdigest() if isinstance(value, str) and len(value) > 200 else value


def expected_versions(initial: dict[int, tuple], log: list[tuple[str, int, Any]], columns: tuple[str, ...],
                      history_columns: tuple[str, ...] | None) -> dict[int, list[tuple[tuple, bool]]]:
    """Each key's versions (values, deleted) from the bulk rows and the source's change log."""
    out: dict[int, list[tuple[tuple, bool]]] = defaultdict(list)
    for key, values in initial.items():
        out[key].append((values, False))
    for op, key, row in log:
        versions = out[key]
        if op == "d":
            versions.append((versions[-1][0], True))
            continue
        values = tuple(_md5(row[c]) for c in columns)
        prev = versions[-1] if versions else None
        if op == "u" and history_columns and prev and not prev[1] and \
                all(prev[0][columns.index(c)] == values[columns.index(c)] for c in history_columns):
            versions[-1] = (values, False)  # only other columns changed: the version is updated in place
        else:
            versions.append((values, False))
    return out


def check_history(spark: Any, src: Source, table: str, history_columns: tuple[str, ...] | None) -> int:
    columns = VALUES[table]
    initial = {r[0]: tuple(_md5(v) for v in r[1:]) for r in src.query(f'SELECT * FROM "{src.schema}_audit".initial_{table}')}
    log = src.query(f'SELECT op, id, r FROM "{src.schema}_audit".log WHERE tbl = %s ORDER BY seq', (table,))
    expected = expected_versions(initial, log, columns, history_columns)
    rows = spark.read.format("delta").load(src.lake_path(table)).collect()
    by_key: dict[int, list[Any]] = defaultdict(list)
    for r in rows:
        by_key[r["id"]].append(r)
    assert set(by_key) == set(expected), f"{table}: keys {sorted(set(by_key) ^ set(expected))}"
    for key, versions in by_key.items():
        versions.sort(key=lambda r: (r["__valid_from"], r["__source_commit_pos"], r["__source_change_pos"]))
        got = [(tuple(_md5(v[c]) for c in columns), v["__is_deleted"]) for v in versions]
        assert got == expected[key], f"{table} key {key}: lake versions {got} != source {expected[key]}"
        for a, b in itertools.pairwise(versions):  # chained: no gap, no overlap
            assert a["__valid_to"] == b["__valid_from"] and not a["__is_current"], f"{table} key {key}: {a} then {b}"
            assert a["__valid_from"] <= a["__valid_to"]
        assert versions[-1]["__is_current"] and versions[-1]["__valid_to"] is None, f"{table} key {key}: {versions[-1]}"
    return len(rows)


def assert_current_equals_source(spark: Any, src: Source, table: str) -> None:
    columns, expected = source_rows(src, src.schema, table)
    df = spark.read.format("delta").load(src.lake_path(table))
    current = df.where(lake_view_filter(df.columns)).select(*columns).collect()
    assert sorted(tuple(normalize(v) for v in r) for r in current) == sorted(tuple(normalize(v) for v in r) for r in expected), table


def snapshot(spark: Any, src: Source) -> dict[str, list[str]]:
    return {t: sorted(map(str, spark.read.format("delta").load(src.lake_path(t)).drop("__ingested_at").collect())) for t in TABLES}


def test_history_and_soft_deletes_through_kill_9_and_a_full_replay(spark: Any, hist_source: Source, tmp_path: Path) -> None:
    src = hist_source
    s, a = f'"{src.schema}"', f'"{src.schema}_audit"'
    src.execute(SETUP.format(s=s, a=a))
    for table in ("hist", "hist_cols"):  # the bulk copy's rows: each key's first version
        src.execute(f"CREATE TABLE {a}.initial_{table} AS SELECT id, {', '.join(VALUES[table])} FROM {s}.{table}")
    raw = stream_config(src, max_offsets_per_trigger=20, apply_threads=2)
    raw["sources"][src.name]["tables"] = {f"{src.schema}.hist": {"history": "scd2"},
                                          f"{src.schema}.hist_cols": {"history": "scd2", "history_columns": ["status"]},
                                          f"{src.schema}.soft": {"deletes": "soft"}, f"{src.schema}.trunc": {"history": "scd2"}}
    config = src.load_config(raw)
    assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
    spark_lake = str(tmp_path / "lake_spark")  # the bulk copy, the same events applied to it by the Spark path
    shutil.copytree(src.lake_root, spark_lake)
    by_spark = copy.deepcopy(raw)
    by_spark["lake"]["root"], by_spark["checkpoints"]["root"] = spark_lake, str(tmp_path / "checkpoints_spark")
    by_spark["stream"].update(event_reader="spark", max_offsets_per_trigger=400)
    spark_config = src.load_config(by_spark)
    status = StatusStore(spark, spark_lake)
    status.append(*[e.next(location=e.location.replace(src.lake_root, spark_lake, 1)) for e in status.latest(src.name).values()])

    src.execute(WORKLOAD_A.format(s=s))
    wait_until_captured(src, src.name)
    run_stream(spark, config, src)
    check_history(spark, src, "hist", None)
    check_history(spark, src, "hist_cols", ("status",))

    src.execute(WORKLOAD_B.format(s=s))
    wait_until_captured(src, src.name)
    log_file, config_file = tmp_path / "stream.log", src.write_config(raw)
    start = sum(delta_commits(src.lake_path(t)) for t in TABLES)
    kill_when(start_stream(config_file, src.name, log_file), lambda: sum(delta_commits(src.lake_path(t)) for t in TABLES) >= start + 3, timeout=240)
    final = start_stream(config_file, src.name, log_file)
    assert final.wait(timeout=300) == 0, log_file.read_text()[-3000:]
    log = log_file.read_text()
    assert "hist: history: scd2 (every change a version); MERGEd by delta-rs" in log
    for table in TABLES:  # applied by the direct path (Spark only checks a replay against a tombstone)
        assert re.search(rf"\[{src.schema}\.{table}\]: .*; by direct(?: \(.*\))?\n", log), table
        handed = re.findall(rf"{src.schema}\.{table}: applied by Spark, not directly: (.*)", log)
        assert set(handed) <= {"events at or before the table's latest tombstone (checked by Spark)"}, (table, handed)

    versions = check_history(spark, src, "hist", None)
    assert versions > 40 + 20
    check_history(spark, src, "hist_cols", ("status",))
    for table in TABLES:
        assert_current_equals_source(spark, src, table)
    soft = {r["id"]: r for r in spark.read.format("delta").load(src.lake_path("soft")).collect()}
    assert sorted(soft) == [*range(1, 21), 30]  # deleted rows stay
    assert {k for k, r in soft.items() if r["__is_deleted"]} == {2, 3, 6, 7, 30}
    assert soft[3]["v"] == "v3" and soft[1]["v"] == "one" and soft[2]["v"] == "back"  # a delete keeps the values; an insert revives
    assert soft[7]["v"] == "gone" and soft[30]["v"] == "brief"  # updated (inserted) and deleted in one apply: the last values
    assert spark.read.format("delta").load(dead_letter_path(src.lake_root)).count() == 0
    trunc = sorted(spark.read.format("delta").load(src.lake_path("trunc")).collect(), key=lambda r: (r["__valid_from"], r["__source_commit_pos"]))
    closed = [r for r in trunc if r["__valid_to"] is not None and r["v"] not in ("after", "after2")]
    assert sorted((r["id"], r["v"]) for r in closed) == [(1, "before"), (1, "v1"), (2, "v2"), (3, "v3"), (4, "v4"), (5, "v5")]
    assert len({r["__valid_to"] for r in closed if r["v"] != "v1"}) == 1 and not any(r["__is_current"] for r in closed)  # the truncate closed them
    assert [(r["v"], r["__is_current"]) for r in trunc if r["v"] in ("after", "after2")] == [("after", False), ("after2", True)]

    from status import version_counts  # jobs/status.py (jobs/ is on sys.path: conftest)

    counts = version_counts(spark, config, list(StatusStore(spark, src.lake_root).latest(src.name).values()))
    hist = spark.read.format("delta").load(src.lake_path("hist"))
    assert counts[(src.name, src.schema, "hist")] == {"versions": versions, "current": hist.where("__is_current").count(),
                                                      "deleted": hist.where("__is_current AND __is_deleted").count()}
    assert counts[(src.name, src.schema, "soft")] == {"versions": 21, "current": 21, "deleted": 5}

    before = snapshot(spark, src)
    forget_offsets(spark, src)  # every event again, from offset 0: no version twice, nothing changes
    run_stream(spark, config, src)
    assert snapshot(spark, src) == before

    # both workloads applied by the Spark path to the copy, in applies of up to 400 events (not where the
    # direct path's split): the same tables as the direct path's
    run_stream(spark, spark_config, src)
    for table in TABLES:
        lake = spark.read.format("delta").load(src.lake_path(table).replace(src.lake_root, spark_lake, 1)).drop("__ingested_at")
        assert sorted(map(str, lake.collect())) == before[table], table
