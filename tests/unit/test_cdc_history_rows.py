"""The direct path's version building (lib/cdc/history_rows.py, lib/cdc/direct/history.py) held equal to
the Spark path's SQL (lib/cdc/history.py, run on DuckDB by test_cdc_history's harness): the same MERGE
rows from the same lake state and events, apply after apply, and the same lake table after delta-rs
MERGEs them."""

import datetime as dt
import functools
import json
import random
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lib.cdc import history as H
from lib.cdc import plan as P
from lib.cdc.direct import history as DH
from lib.cdc.direct.decode import NotDirect
from lib.cdc.direct.events import DirectBatch, DirectPlan, arrow_rows, plan, summarize, toasted_names
from lib.cdc.history_rows import Current, Event, build_versions, same, tracked_positions
from lib.cdc.plan import TableSpec
from lib.config.model import HistoryMode
from tests.unit.test_cdc_history import COLUMNS, EVENT_DDL, STORY, T0, _bulk, _duck, _spec

NAMES = [n for n, _ in COLUMNS]


def _events(story, first_offset):
    """test_cdc_history's event tuples as the builder's Events (offsets as Lake.apply numbers them)."""
    return [Event((key,), (commit, change, 0, first_offset + n + 1), op, ts, (key, a, b), frozenset({2}) if toast else frozenset())
            for n, (op, key, a, b, toast, commit, change, ts) in enumerate(story)]


def _current(lake):
    return {(r["id"],): Current(r["__source_commit_pos"], r["__source_change_pos"], r["__op"], r["__valid_from"], r["__is_deleted"],
                                (r["id"], r["a"], r["b"])) for r in lake.rows if r["__is_current"]}


def _naive(v):
    return v.astimezone(dt.UTC).replace(tzinfo=None) if isinstance(v, dt.datetime) and v.tzinfo else v


def _python_rows(spec, lake, story):
    rows = build_versions(_events(story, lake.offset), _current(lake), 3, (0,), tracked_positions(NAMES, ("id",), spec.history.history_columns))
    return sorted(((*r.values, r.commit, r.change, r.op, r.cur_commit, r.cur_change, _naive(r.start), _naive(r.end), r.current, r.role) for r in rows),
                  key=repr)


def _sql_rows(merged):
    return sorted(((r["id"], r["a"], r["b"], r["__source_commit_pos"], r["__source_change_pos"], r["__op"], r["__cur_commit"], r["__cur_change"],
                   r["__start"], r["__end"], r["__current"], r["__role"]) for r in merged), key=repr)


def _twin_apply(spec, lake, story):
    """One apply built by both; asserts the same MERGE rows; the lake moves on by the SQL MERGE."""
    python = _python_rows(spec, lake, story)
    sql = _sql_rows(lake.apply(spec, story))
    assert python == sql
    return python


def test_the_story_in_one_apply_split_anywhere_and_replayed_gives_the_sql_rows():
    """Several updates of a key in one transaction and across applies, TOAST-unchanged updates, delete and
    re-insert, a key change, an update of a column only: every apply's rows equal the SQL's."""
    whole = _bulk(1, 2, 3, 4)
    rows = _twin_apply(_spec(), whole, STORY)
    assert len([r for r in rows if r[-1] == "insert"]) == len(STORY)
    assert _twin_apply(_spec(), whole, STORY) == []  # a replay of the same range: nothing
    for cut in (2, 4, 6, 8):
        split = _bulk(1, 2, 3, 4)
        _twin_apply(_spec(), split, STORY[:cut])
        _twin_apply(_spec(), split, STORY[max(0, cut - 3):])  # reaching back (a replay after a crash)
        assert sorted(map(repr, split.rows)) == sorted(map(repr, whole.rows)), cut


def test_history_columns_in_place_updates_equal_the_sql():
    story = [("u", 4, "a4", "b-only", False, 100, 1, T0 + 1000), ("u", 4, "A", "b-only", False, 110, 1, T0 + 2000),
             ("u", 4, "A", "again", False, 120, 1, T0 + 3000), ("u", 4, "A", None, True, 125, 1, T0 + 3500),
             ("d", 1, None, None, False, 130, 1, T0 + 4000), ("u", 1, "a1", "b1", False, 140, 1, T0 + 5000)]
    spec = _spec(("a",))
    lake = _bulk(1, 4)
    rows = _twin_apply(spec, lake, story)
    assert sorted(r[-1] for r in rows if r[0] == 4) == ["insert", "update"]  # in place, then a version
    for cut in (1, 3, 5):
        split = _bulk(1, 4)
        _twin_apply(spec, split, story[:cut])
        _twin_apply(spec, split, story[cut - 1:])
        assert sorted(map(repr, split.rows)) == sorted(map(repr, lake.rows)), cut


def _random_story(rng, start_commit):
    """Random changes of keys 1-5 (some never in the bulk copy): inserts, updates (TOAST placeholders), deletes,
    several per transaction; an insert only of an absent key, an update or delete only of a present one."""
    live = {1: ("a1", "b1"), 2: ("a2", "b2"), 3: ("a3", "b3")}
    story, commit = [], start_commit
    for _ in range(rng.randint(3, 14)):
        commit += 10
        ts = T0 + commit * 1000
        for change in range(1, rng.randint(1, 3) + 1):
            key = rng.randint(1, 5)
            if key not in live:
                live[key] = (rng.choice("xyz"), rng.choice("pq"))
                story.append(("c", key, *live[key], False, commit, change, ts))
            elif rng.random() < 0.2:
                del live[key]
                story.append(("d", key, None, None, False, commit, change, ts))
            else:
                toast = rng.random() < 0.3
                a, b = rng.choice(["x", "y", live[key][0]]), live[key][1] if toast else rng.choice(["p", "q", None])
                live[key] = (a, b)
                story.append(("u", key, a, None if toast else b, toast, commit, change, ts))
    return story


@pytest.mark.parametrize("seed", range(6))
def test_random_streams_in_random_applies_equal_the_sql(seed):
    rng = random.Random(seed)
    story = _random_story(rng, 100)
    spec = _spec(("a",) if seed % 2 else None)
    lake = _bulk(1, 2, 3)
    at = 0
    while at < len(story):  # applies of random sizes, some reaching back into the one before
        end = min(len(story), at + rng.randint(1, 6))
        _twin_apply(spec, lake, story[max(0, at - rng.randint(0, 2)):end])
        at = end
    lake.check_chains()
    assert _twin_apply(spec, lake, story) == []


def test_null_safe_equality_as_spark():
    assert same(None, None) and not same(None, 0) and not same(0, None) and same(float("nan"), float("nan")) and same(1, 1) and not same("a", "b")


def _plan(spec):
    return DirectPlan(spec, (None,) * len(spec.columns), (frozenset(),) * len(spec.columns), (0,), None)


def _batch(story, first_offset):
    every = [((key,), (commit, change, 0, first_offset + n + 1), op, ts, [key, a, b], frozenset({2}) if toast else frozenset())
             for n, (op, key, a, b, toast, commit, change, ts) in enumerate(story)]
    return DirectBatch(applied=len(every), every=every)


TS = pa.timestamp("us", tz="UTC")
LAKE_SCHEMA = pa.schema([("id", pa.int32()), ("a", pa.string()), ("b", pa.string()), ("__source_commit_pos", pa.decimal128(38, 0)),
                         ("__source_change_pos", pa.decimal128(38, 0)), ("__op", pa.string()), ("__ingested_at", TS), ("__valid_from", TS),
                         ("__valid_to", TS), ("__is_current", pa.bool_()), ("__is_deleted", pa.bool_())])


def _spark_stats(path):
    """Rewrite the table's file statistics as Delta-Spark writes them: no min/max of booleans (only their
    null counts), which deltalake's pyarrow dataset takes for a guarantee that prunes every file."""
    for log in (Path(path) / "_delta_log").glob("*.json"):
        actions = [json.loads(line) for line in log.read_text().splitlines() if line]
        for a in actions:
            if "add" in a and a["add"].get("stats"):
                stats = json.loads(a["add"]["stats"])
                for part in ("minValues", "maxValues"):
                    for name in ("__is_current", "__is_deleted"):
                        stats.get(part, {}).pop(name, None)
                a["add"]["stats"] = json.dumps(stats)
        log.write_text("".join(json.dumps(a) + "\n" for a in actions))


def _lake_rows(path):
    got = DeltaTable(path).to_pyarrow_table().drop_columns(["__ingested_at"]).to_pylist()
    return sorted(repr({k: (int(v) if k.startswith("__source") else _naive(v)) for k, v in r.items()}) for r in got)


def test_direct_apply_on_a_delta_table_ends_where_the_sql_does(tmp_path):
    """lib.cdc.direct.history.apply_scd2 (lake read by delta-rs, versions built in Python, one delta-rs MERGE)
    on a Delta table, applies reaching back (replays), leaves the SQL harness's table; counts and tombstones."""
    path = str(tmp_path / "t")
    spec = TableSpec("s", "public", "t", path, ("id",), COLUMNS, history=HistoryMode("scd2"))
    lake = _bulk(1, 2, 3, 4)
    write_deltalake(path, pa.Table.from_pylist([{**r, "__ingested_at": None} for r in lake.rows], LAKE_SCHEMA))
    _spark_stats(path)  # as after the stream's first UPDATE by Delta-Spark (lib/cdc/loop/specs.py, prepare_history)
    inserted = 0
    for chunk in (STORY[:4], STORY[2:7], STORY[5:], STORY):
        metrics, tombstones, _ = DH.apply_scd2(_plan(spec), _batch(chunk, lake.offset))
        merged = lake.apply(spec, chunk)
        assert metrics["num_inserted_rows"] == sum(r["__role"] == "insert" for r in merged)
        assert sorted(t[2:] for t in tombstones) == sorted((f'{{"id":{r["id"]}}}', r["__source_commit_pos"], r["__source_change_pos"])
                                                           for r in merged if r["__op"] == "d" and r["__role"] == "insert")
        inserted += metrics["num_inserted_rows"]
        assert _lake_rows(path) == sorted(repr({k: _naive(v) for k, v in r.items()}) for r in lake.rows)
    assert inserted == len(STORY)


def test_a_history_range_with_a_truncate_is_sparks():
    spec = _spec()
    DH.check(spec, DirectBatch())
    with pytest.raises(NotDirect, match="truncate"):
        DH.check(spec, DirectBatch(truncate=(5, 1)))


def test_direct_soft_delete_merge_equals_the_sql(tmp_path):
    """soft_merge_clauses by delta-rs on the rows test_cdc_history's soft_merge_sql test runs on DuckDB."""
    path = str(tmp_path / "soft")
    spec = TableSpec("s", "public", "t", path, ("id",), COLUMNS, history=HistoryMode(deletes="soft"))
    schema = pa.schema([f for f in LAKE_SCHEMA if f.name not in ("__valid_from", "__valid_to", "__is_current")])
    write_deltalake(path, pa.Table.from_pylist([
        {"id": 1, "a": "a1", "b": "b1", "__source_commit_pos": 50, "__source_change_pos": 0, "__op": "r", "__is_deleted": False},
        {"id": 2, "a": "a2", "b": "b2", "__source_commit_pos": 50, "__source_change_pos": 0, "__op": "r", "__is_deleted": False},
        {"id": 3, "a": "a3", "b": "b3", "__source_commit_pos": 90, "__source_change_pos": 1, "__op": "d", "__is_deleted": True}], schema))
    position = pa.decimal128(38, 0)
    data = pa.table({"id": pa.array([1, 2, 3, 4, 5], pa.int32()), "a": [None, "x", "new3", None, "a5"], "b": [None, None, "nb3", None, "b5"],
                     "__op": ["d", "u", "c", "d", "c"], "__source_commit_pos": pa.array([100, 100, 110, 120, 130], position),
                     "__source_change_pos": pa.array([1, 2, 1, 1, 1], position), "__toast_b": [False, True, False, False, False],
                     "__has_values": [False, True, True, False, True]})  # the deletes: no insert or update of the key in the apply
    expected = {1: ("a1", "b1", "d", True), 2: ("x", "b2", "u", False), 3: ("new3", "nb3", "c", False), 5: ("a5", "b5", "c", False)}
    for replay in (False, True):
        counts = DH.apply_soft(spec, data, ["b"])
        rows = {r["id"]: (r["a"], r["b"], r["__op"], r["__is_deleted"]) for r in DeltaTable(path).to_pyarrow_table().to_pylist()}
        assert rows == expected
        assert counts == ({"num_inserted_rows": 0, "num_updated_rows": 0, "num_deleted_rows": 2} if replay else
                          {"num_inserted_rows": 1, "num_updated_rows": 1, "num_deleted_rows": 2})  # 2 and 3 updated


def test_soft_merge_clauses_are_the_sql_merges():
    spec = TableSpec("s", "public", "t", "/lake/t", ("id",), COLUMNS, history=HistoryMode(deletes="soft"))
    on, [(update, when)], (insert, insert_when) = H.soft_merge_clauses(spec, ["b"], now="current_timestamp()")
    sql = H.soft_merge_sql(spec, "v", ["b"])
    assert f"ON {on} " in sql and f"WHEN MATCHED AND {when} THEN UPDATE SET {', '.join(f't.{c} = {e}' for c, e in update.items())} " in sql
    assert sql.endswith(f"WHEN NOT MATCHED AND {insert_when} THEN INSERT ({', '.join(insert)}) VALUES ({', '.join(insert.values())})")


# --- Soft deletes: the apply's last event per key (lib.cdc.plan's fill and last-event steps with soft_merge_sql, run
# on DuckDB; the direct path's pass, lib.cdc.direct.events.summarize, with soft_merge_clauses by delta-rs) leaves the
# same table however the events are split into applies, and the table one-event-per-apply leaves. ---

SOFT_COLUMNS = ("id", "a", "b", "__source_commit_pos", "__source_change_pos", "__op", "__is_deleted")
SOFT_LAKE_DDL = ("id INT, a VARCHAR, b VARCHAR, __source_commit_pos BIGINT, __source_change_pos BIGINT, __op VARCHAR, __ingested_at TIMESTAMP, "
                 "__is_deleted BOOLEAN")
PLACEHOLDER = "__debezium_unavailable_value"
TEXT = {"type": "string", "parameters": {"__debezium.source.column.type": "TEXT"}}
SOFT_FIELDS = {"id": {"type": "int32"}, "a": TEXT, "b": TEXT}


def _soft_spec(path="/lake/t"):
    return TableSpec("s", "public", "t", path, ("id",), COLUMNS, history=HistoryMode(deletes="soft"))


def _soft_bulk(*keys):
    return [{"id": k, "a": f"a{k}", "b": f"b{k}", "__source_commit_pos": 50, "__source_change_pos": 0, "__op": "r", "__is_deleted": False}
            for k in keys]


@functools.cache
def _soft_sql():
    """The Spark path's MERGE source (fill, last event) and soft-delete MERGE, as DuckDB SQL (translated once)."""
    spec = _soft_spec()
    sql = f"SELECT {', '.join(P.fill_exprs(spec, ['b']))} FROM ev"
    source = _duck(f"SELECT {', '.join(P.last_event_exprs(spec, ['b']))} FROM ({sql}) q WHERE {P.LAST_EVENT}")
    merge = _duck(H.soft_merge_sql(spec, "v", ["b"]).replace(f"delta.`{spec.location}`", "lake"))
    return source, re.sub(r"(SET |, )t\.", r"\1", merge)  # DuckDB's UPDATE SET takes bare column names


def _soft_lake(rows):
    """A DuckDB connection holding the soft-delete lake table ``lake`` with ``rows``."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE lake ({SOFT_LAKE_DDL})")
    con.executemany("INSERT INTO lake VALUES (?, ?, ?, ?, ?, ?, NULL, ?)", [[r[c] for c in SOFT_COLUMNS] for r in rows])
    return con


def _soft_sql_apply(con, story, first_offset):
    """One apply of the Spark path's soft-delete MERGE on DuckDB (the table in ``con``); returns the table's rows after it."""
    con.execute(f"CREATE OR REPLACE TABLE ev ({EVENT_DDL})")
    con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    [[key, a, b, toast, op, commit, change, first_offset + n + 1, ts] for n, (op, key, a, b, toast, commit, change, ts) in enumerate(story)])
    source, merge = _soft_sql()
    con.execute(f"CREATE OR REPLACE TABLE v AS {source}")
    con.execute(merge)
    return con.execute(f"SELECT {', '.join(SOFT_COLUMNS)} FROM lake").fetchall()


def _soft_messages(story, first_offset):
    """The story's events as compact Debezium messages (a delete's before image: the key only, as with REPLICA IDENTITY DEFAULT)."""
    out = []
    for n, (op, key, a, b, toast, commit, change, ts) in enumerate(story):
        image = {"id": key, "a": None, "b": None} if op == "d" else {"id": key, "a": a, "b": PLACEHOLDER if toast else b}
        source = {"ts_ms": ts, "sequence": json.dumps([str(commit), str(change)]), "schema": "public", "table": "t", "txId": commit, "lsn": change}
        event = {"before": image if op == "d" else None, "after": None if op == "d" else image, "source": source, "op": op}
        out.append((0, first_offset + n + 1, json.dumps(event).encode()))
    return out


def _soft_direct_apply(path, story, first_offset):
    """One apply by the direct path: the pass over the messages, then DH.apply_soft (delta-rs) on the Delta table."""
    p = plan(_soft_spec(path), SOFT_FIELDS)
    batch = summarize(p, _soft_messages(story, first_offset))
    if batch.applied:
        DH.apply_soft(p.spec, arrow_rows(p, batch), toasted_names(p, batch))
    return _soft_rows(DeltaTable(path).to_pyarrow_table().to_pylist())


def _soft_rows(rows):
    return sorted(tuple(int(r[c]) if c.startswith("__source") else r[c] for c in SOFT_COLUMNS) for r in rows)


SOFT_SCHEMA = pa.schema([f for f in LAKE_SCHEMA if f.name not in ("__valid_from", "__valid_to", "__is_current")])


def _soft_twins(tmp_path, name, story, cuts, direct=True):
    """The story applied in the applies ``cuts`` gives (start, end) by both paths (``direct``: else by the SQL only),
    compared after each apply; the final rows."""
    path = str(tmp_path / name)
    if direct:
        write_deltalake(path, pa.Table.from_pylist([{**r, "__ingested_at": None} for r in _soft_bulk(1, 2, 3)], SOFT_SCHEMA))
    con, rows, offset = _soft_lake(_soft_bulk(1, 2, 3)), [], 0
    for start, end in cuts:
        rows = sorted(tuple(int(v) if isinstance(v, Decimal) else v for v in r) for r in _soft_sql_apply(con, story[start:end], start))
        if direct:
            assert _soft_direct_apply(path, story[start:end], start) == rows, (start, end)
        offset = end
    assert offset == len(story)
    return rows


def test_soft_delete_after_an_update_or_an_insert_in_one_apply_keeps_the_last_values(tmp_path):
    """Updated then deleted in one apply: the values of the update (a TOAST placeholder: the stored value);
    inserted then deleted in one apply: a deleted row with the insert's values; a delete alone: the stored values."""
    story = [("u", 1, "x1", "y1", False, 100, 1, T0 + 1000), ("d", 1, None, None, False, 110, 1, T0 + 2000),
             ("u", 2, "x2", None, True, 100, 2, T0 + 1000), ("d", 2, None, None, False, 110, 2, T0 + 2000),
             ("c", 7, "n7", "m7", False, 120, 1, T0 + 3000), ("u", 7, "o7", None, True, 120, 2, T0 + 3000),
             ("d", 7, None, None, False, 130, 1, T0 + 4000), ("d", 3, None, None, False, 140, 1, T0 + 5000)]
    whole = _soft_twins(tmp_path, "whole", story, [(0, len(story))])
    assert whole == [(1, "x1", "y1", 110, 1, "d", True), (2, "x2", "b2", 110, 2, "d", True), (3, "a3", "b3", 140, 1, "d", True),
                     (7, "o7", "m7", 130, 1, "d", True)]
    assert _soft_twins(tmp_path, "one", story, [(i, i + 1) for i in range(len(story))]) == whole


@pytest.mark.parametrize("seed", range(6))
def test_soft_deletes_in_random_applies_equal_one_event_per_apply(tmp_path, seed):
    rng = random.Random(1000 + seed)
    story = _random_story(rng, 100)
    one_by_one = _soft_twins(tmp_path, "one", story, [(i, i + 1) for i in range(len(story))], direct=False)
    assert _soft_twins(tmp_path, "whole", story, [(0, len(story))]) == one_by_one
    cuts, at = [], 0
    while at < len(story):  # applies of random sizes, some reaching back into the one before (a replay after a crash)
        end = min(len(story), at + rng.randint(1, 6))
        cuts.append((max(0, at - rng.randint(0, 2)), end))
        at = end
    assert _soft_twins(tmp_path, "random", story, cuts) == one_by_one
