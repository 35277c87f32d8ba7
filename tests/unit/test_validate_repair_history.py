"""Planning ``validate --repair`` of history (scd2) and soft-delete tables (lib/validate/repair_history.py):
its Spark SQL run on DuckDB (translated by sqlglot, as tests/unit/test_cdc_history.py runs the stream's)
against a lake table with every kind of difference; after it the current, not-deleted rows equal the
snapshot, versions chain without gaps or overlaps, rows newer than the snapshot are left alone, and a
second repair finds nothing to do."""

import datetime as dt
import itertools
import re

import duckdb
import pytest

from lib.validate import repair_history as RH
from lib.validate import repair_plan as rp
from tests.unit.test_cdc_history import _duck as _spark_to_duck

S = 1000  # the snapshot's position
T0 = dt.datetime(2026, 1, 1)
AT = dt.datetime(2026, 3, 1, 12, 0)
AT_MICROS = int(AT.replace(tzinfo=dt.UTC).timestamp() * 1_000_000)
SNAPSHOT = {1: "one", 2: "two", 3: "three", 4: "four", 7: "seven"}  # the source at S
SCD2_DDL = ("id INT, v VARCHAR, __source_commit_pos DECIMAL(38,0), __source_change_pos DECIMAL(38,0), __op VARCHAR, "
            "__ingested_at TIMESTAMP, __valid_from TIMESTAMP, __valid_to TIMESTAMP, __is_current BOOLEAN, __is_deleted BOOLEAN")
SOFT_DDL = ("id INT, v VARCHAR, __source_commit_pos DECIMAL(38,0), __source_change_pos DECIMAL(38,0), __op VARCHAR, "
            "__ingested_at TIMESTAMP, __is_deleted BOOLEAN")


def _duck(sql):
    return _spark_to_duck(sql).replace("TIMESTAMP_MICROS(", "make_timestamp(")


def _at(day):
    return T0 + dt.timedelta(days=day)


# (id, v, commit, change, op, valid_from, valid_to, current, deleted)
SCD2_LAKE = [
    (1, "one", 50, 0, "r", _at(0), None, True, False),          # right
    (2, "old", 50, 0, "r", _at(0), _at(3), False, False),       # an older version, then a wrong current one
    (2, "wrong", 300, 2, "u", _at(3), None, True, False),
    (3, "three", 50, 0, "r", _at(0), _at(4), False, False),     # deleted in the lake, the source has it
    (3, "three", 400, 1, "d", _at(4), None, True, True),
    (5, "five", 50, 0, "r", _at(0), None, True, False),         # absent at the source: a lost delete
    (6, "six", 50, 0, "r", _at(0), _at(5), False, False),       # deleted at both: stays
    (6, "six", 500, 1, "d", _at(5), None, True, True),
    (7, "newer", 2000, 3, "u", _at(70), None, True, False),     # the stream moved past the snapshot: left alone
    (8, "eight", 50, 0, "r", _at(0), None, True, False),        # absent at the source, a row of another bucket: not touched
]  # 4: missing from the lake


def _con(kind, lake):
    con = duckdb.connect()
    con.execute(f"CREATE TABLE lake_t ({SCD2_DDL if kind == 'scd2' else SOFT_DDL})")
    for r in lake:
        con.execute(f"INSERT INTO lake_t VALUES ({', '.join('?' * len(r[:5]))}, NULL{', ?' * (len(r) - 5)})", list(r[:5]) + list(r[5:]))
    return con


def _repair(con, kind, buckets=(1, 2, 3, 4, 5, 6, 7)):
    """One repair of the keys in ``buckets`` (the differing buckets: here a key each); returns the MERGE's source rows."""
    listed = ", ".join(map(str, buckets))
    con.execute("CREATE OR REPLACE TABLE snapshot (id INT, v VARCHAR, __source_commit_pos DECIMAL(38,0), __source_change_pos DECIMAL(38,0), "
                f"__op VARCHAR, __ingested_at TIMESTAMP, {rp.ROW_HASH} VARCHAR)")
    for k, v in SNAPSHOT.items():
        if k in buckets:
            con.execute("INSERT INTO snapshot VALUES (?, ?, ?, 0, 'r', NULL, ?)", [k, v, S, v])
    con.execute("CREATE OR REPLACE VIEW upsertable AS SELECT * FROM snapshot")
    con.execute(f"CREATE OR REPLACE VIEW lake AS SELECT *, v AS {RH.LAKE_HASH} FROM lake_t WHERE {RH.current_filter(kind)} AND id IN ({listed})")
    con.execute(f"CREATE OR REPLACE TABLE src AS {_duck(RH.source_sql(kind, ['id'], ['id', 'v'], S, AT_MICROS))}")
    out = con.execute("SELECT * FROM src")
    rows = [dict(zip([d[0] for d in out.description], r, strict=True)) for r in out.fetchall()]
    merge = _duck(RH.merge_sql(kind, "lake_t", "src", ["id"], ["id", "v"], S))
    con.execute(re.sub(r"(SET |, )t\.", r"\1", merge))  # DuckDB's UPDATE SET takes bare column names
    return rows


def _rows(con):
    out = con.execute("SELECT * EXCLUDE (__ingested_at) FROM lake_t")
    return [dict(zip([d[0] for d in out.description], r, strict=True)) for r in out.fetchall()]


def test_scd2_repair_closes_wrong_versions_opens_right_ones_and_keeps_the_chains():
    con = _con("scd2", SCD2_LAKE)
    src = _repair(con, "scd2")
    assert sorted((r["id"], r[RH.ROLE]) for r in src) == [(2, "close"), (2, "insert"), (3, "close"), (3, "insert"), (4, "insert"),
                                                          (5, "close"), (5, "insert")]
    rows = _rows(con)
    live = {r["id"]: r["v"] for r in rows if r["__is_current"] and not r["__is_deleted"]}
    assert live == {1: "one", 2: "two", 3: "three", 4: "four", 7: "newer", 8: "eight"}  # 7: the stream's; 8: not in a repaired bucket
    by_key = {k: sorted(g, key=lambda r: (r["__valid_from"], r["__source_commit_pos"])) for k, g in itertools.groupby(
        sorted(rows, key=lambda r: r["id"]), key=lambda r: r["id"])}
    for key, versions in by_key.items():
        for a, b in itertools.pairwise(versions):
            assert a["__valid_to"] == b["__valid_from"] and not a["__is_current"] and a["__valid_from"] <= a["__valid_to"], (key, a, b)
        assert versions[-1]["__is_current"] and versions[-1]["__valid_to"] is None, key
    assert [(r["v"], r["__valid_from"], r["__is_deleted"], r["__op"]) for r in by_key[2]] == [
        ("old", _at(0), False, "r"), ("wrong", _at(3), False, "u"), ("two", AT, False, "r")]
    assert [(r["v"], r["__is_deleted"], r["__op"], int(r["__source_commit_pos"])) for r in by_key[5]] == [
        ("five", False, "r", 50), ("five", True, "d", 50)]  # a deleted version with the values before the delete
    assert [(r["v"], r["__valid_from"], r["__valid_to"], r["__is_current"], int(r["__source_commit_pos"])) for r in by_key[4]] == [
        ("four", AT, None, True, S)]
    assert len(by_key[6]) == 2 and by_key[7][0]["v"] == "newer" and len(by_key[7]) == 1 and len(by_key[1]) == 1
    assert _repair(con, "scd2") == []  # nothing differs any more
    assert _rows(con) == rows


def test_scd2_repair_never_closes_a_version_the_stream_wrote_after_it_read_the_lake():
    """The MERGE only closes the current version the repair read, and opens a new one only while that one
    is still current: a version the stream committed in between (here: before the MERGE) stays the only current one."""
    con = _con("scd2", SCD2_LAKE)
    con.execute("CREATE TABLE snapshot (id INT, v VARCHAR, __source_commit_pos DECIMAL(38,0), __source_change_pos DECIMAL(38,0), "
                f"__op VARCHAR, __ingested_at TIMESTAMP, {rp.ROW_HASH} VARCHAR)")
    con.execute(f"INSERT INTO snapshot VALUES (2, 'two', {S}, 0, 'r', NULL, 'two')")
    con.execute("CREATE VIEW upsertable AS SELECT * FROM snapshot")
    con.execute(f"CREATE VIEW lake AS SELECT *, v AS {RH.LAKE_HASH} FROM lake_t WHERE __is_current AND id = 2")
    con.execute(f"CREATE TABLE src AS {_duck(RH.source_sql('scd2', ['id'], ['id', 'v'], S, AT_MICROS))}")
    # the stream closes key 2's current version and opens one of its own after the repair built its rows
    con.execute("UPDATE lake_t SET __valid_to = TIMESTAMP '2026-02-01', __is_current = false WHERE id = 2 AND __is_current")
    con.execute("INSERT INTO lake_t VALUES (2, 'streamed', 3000, 1, 'u', NULL, TIMESTAMP '2026-02-01', NULL, true, false)")
    con.execute(re.sub(r"(SET |, )t\.", r"\1", _duck(RH.merge_sql("scd2", "lake_t", "src", ["id"], ["id", "v"], S))))
    assert [(r["v"], r["__is_current"]) for r in _rows(con) if r["id"] == 2 and r["__is_current"]] == [("streamed", True)]
    assert not any(r["v"] == "two" for r in _rows(con))


def test_soft_delete_repair_inserts_updates_and_marks_deleted():
    lake = [(1, "one", 50, 0, "r", False), (2, "wrong", 300, 2, "u", False), (3, "three", 400, 1, "d", True), (5, "five", 50, 0, "r", False),
            (6, "six", 500, 1, "d", True), (7, "newer", 2000, 3, "u", False)]
    con = _con("soft", lake)
    src = _repair(con, "soft")
    assert sorted((r["id"], r[RH.ROLE]) for r in src) == [(2, "upsert"), (3, "upsert"), (4, "upsert"), (5, "delete")]
    rows = {r["id"]: (r["v"], r["__op"], int(r["__source_commit_pos"]), r["__is_deleted"]) for r in _rows(con)}
    assert rows == {1: ("one", "r", 50, False), 2: ("two", "r", S, False), 3: ("three", "r", S, False), 4: ("four", "r", S, False),
                    5: ("five", "d", 50, True), 6: ("six", "d", 500, True), 7: ("newer", "u", 2000, False)}
    assert _repair(con, "soft") == []


def test_kind_and_sql_texts():
    assert RH.history_kind(["id", "__valid_from", "__valid_to", "__is_current", "__is_deleted"]) == "scd2"
    assert RH.history_kind(["id", "__is_deleted"]) == "soft" and RH.history_kind(["id", "__op"]) is None
    with pytest.raises(ValueError, match="primary key"):
        RH.source_sql("scd2", [], ["v"], S, AT_MICROS)
    import sqlglot

    for kind in ("scd2", "soft"):
        sqlglot.parse_one(RH.source_sql(kind, ["a", "b c"], ["a", "b c", "v"], S, AT_MICROS), read="spark")
        sqlglot.parse_one(RH.merge_sql(kind, "delta.`/lake/t`".replace("delta.`/lake/t`", "lake_t"), "v", ["a", "b c"], ["a", "b c", "v"], S),
                          read="spark")
