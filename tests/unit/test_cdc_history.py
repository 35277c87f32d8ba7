"""History (scd2) and soft deletes: the config keys and the pure planning (docs/cdc-stream.md, "History")."""

import copy
import datetime as dt
import itertools
import re

import duckdb
import pytest
import sqlglot

from lib.cdc import history as H
from lib.cdc.plan import TableSpec
from lib.config import parse_config
from lib.config.model import HistoryMode
from lib.errors import ConfigError
from tests.unit.test_config import BASE, ENV


def _source(cdc=None, tables=None):
    raw = copy.deepcopy(BASE)
    raw["sources"]["shop"]["cdc"].update(cdc or {})
    if tables:
        raw["sources"]["shop"]["tables"] = tables
    return parse_config(raw, ENV).source("shop")


def test_history_defaults_to_a_mirror_with_hard_deletes():
    mode = _source().history_for("public", "orders")
    assert mode == HistoryMode() and mode.plain and not mode.scd2 and not mode.soft_deletes


def test_source_history_and_table_override():
    src = _source({"history": "scd2", "history_columns": ["status", "amount"]},
                  {"public.audit": {"history": "none", "deletes": "soft"}, "public.items": {"history_columns": ["qty"]}})
    assert src.history_for("public", "orders") == HistoryMode("scd2", ("status", "amount"))
    assert src.history_for("public", "items") == HistoryMode("scd2", ("qty",))
    audit = src.history_for("public", "audit")
    assert audit.soft_deletes and audit.history_columns is None


def test_table_scd2_on_a_mirror_source():
    src = _source(tables={"public.orders": {"history": "scd2"}})
    assert src.history_for("public", "orders").scd2
    assert src.history_for("public", "other").plain


@pytest.mark.parametrize("cdc, message", [
    ({"history": "scd1"}, "cdc.history: expected one of none, scd2"),
    ({"deletes": "sometimes"}, "cdc.deletes: expected one of hard, soft"),
    ({"history": "scd2", "history_columns": []}, "history_columns: expected at least one column"),
])
def test_history_key_errors(cdc, message):
    with pytest.raises(ConfigError) as info:
        _source(cdc)
    assert message in str(info.value)


# --- The version building (lib/cdc/history.py), run without a JVM: its Spark SQL translated by sqlglot
# to DuckDB, the MERGE's three roles applied to an in-memory lake table as Delta applies them. ---


COLUMNS = (("id", "int"), ("a", "string"), ("b", "string"))
LAKE_DDL = ("id INT, a VARCHAR, b VARCHAR, __source_commit_pos BIGINT, __source_change_pos BIGINT, __op VARCHAR, __ingested_at TIMESTAMP, "
            "__valid_from TIMESTAMP, __valid_to TIMESTAMP, __is_current BOOLEAN, __is_deleted BOOLEAN")
EVENT_DDL = ("id INT, a VARCHAR, b VARCHAR, __toast_b BOOLEAN, __op VARCHAR, __source_commit_pos BIGINT, __source_change_pos BIGINT, "
             "__partition INT, __offset BIGINT, __source_ts_ms BIGINT")
SNAPSHOT = dt.datetime(2026, 1, 1)


def _spec(history_columns=None):
    return TableSpec("s", "public", "t", "/lake/t", ("id",), COLUMNS, history=HistoryMode("scd2", history_columns))


def _duck(sql: str) -> str:
    sql = re.sub(r"\blast\((.*?), true\) OVER", r"last_value(\1) IGNORE NULLS OVER", sql)
    return sqlglot.transpile(sql, read="spark", write="duckdb")[0].replace("TIMESTAMP_MILLIS(", "make_timestamp(1000 * ")


class Lake:
    """A lake table's rows; an apply runs the version building and history_merge_sql's MERGE on DuckDB."""

    def __init__(self, rows):
        self.rows = [dict(r) for r in rows]
        self.offset = 0

    def apply(self, spec, events, toastable=("b",)):
        """One apply of ``events`` (op, id, a, b, toast_b, commit, change, ts_ms); returns the MERGE's rows."""
        con = duckdb.connect()
        con.execute(f"CREATE TABLE lake ({LAKE_DDL})")
        con.execute(f"CREATE TABLE ev ({EVENT_DDL})")
        for r in self.rows:
            con.execute("INSERT INTO lake VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)", [r[c] for c in (
                "id", "a", "b", "__source_commit_pos", "__source_change_pos", "__op", "__valid_from", "__valid_to", "__is_current", "__is_deleted")])
        for op, key, a, b, toast, commit, change, ts in events:
            self.offset += 1
            con.execute("INSERT INTO ev VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)", [key, a, b, toast, op, commit, change, self.offset, ts])
        cur = f"SELECT {', '.join(H.current_rows_exprs(spec))} FROM lake WHERE {H.CURRENT_ROW}"
        cur_names = ", ".join(f"cur.{c.split(' AS ')[1]}" for c in H.current_rows_exprs(spec) if " AS " in c)
        sql = f"SELECT ev.*, {cur_names} FROM ev LEFT JOIN ({cur}) cur ON ev.id = cur.id WHERE {H.new_events_filter()}"
        for exprs in (H.resolve_exprs(spec, toastable), H.opens_exprs(spec), H.group_exprs(spec), H.group_start_exprs(spec)):
            sql = f"SELECT {', '.join(exprs)} FROM ({sql}) q"
        sql = f"SELECT {', '.join(H.chain_exprs(spec))} FROM ({sql}) q WHERE {H.LAST_OF_GROUP}"
        sql = _duck(f"SELECT {', '.join(H.merge_source_exprs())} FROM ({sql}) q")
        out = con.execute(sql)
        names = [d[0] for d in out.description]
        merged = [dict(zip(names, r, strict=True)) for r in out.fetchall()]
        con.execute(f"CREATE TABLE v AS {sql}")
        for s in merged:  # the current version each update or close is built on is there, and only one
            if s["__role"] != "insert":
                assert con.execute("SELECT count(*) FROM lake WHERE id = ? AND __is_current AND __source_commit_pos = ? AND __source_change_pos = ?",
                                   [s["id"], s["__cur_commit"], s["__cur_change"]]).fetchone()[0] == 1, s
        merge = _duck(H.history_merge_sql(spec, "v").replace(f"delta.`{spec.location}`", "lake"))
        con.execute(re.sub(r"(SET |, )t\.", r"\1", merge))  # DuckDB's UPDATE SET takes bare column names
        out = con.execute("SELECT * EXCLUDE (__ingested_at) FROM lake")
        self.rows = [dict(zip([d[0] for d in out.description], r, strict=True)) for r in out.fetchall()]
        return merged

    def versions(self, key):
        return sorted((r for r in self.rows if r["id"] == key), key=lambda r: (r["__valid_from"], r["__source_commit_pos"], r["__source_change_pos"]))

    def check_chains(self):
        for key in {r["id"] for r in self.rows}:
            v = self.versions(key)
            for x, y in itertools.pairwise(v):
                assert x["__valid_to"] == y["__valid_from"] and not x["__is_current"], (x, y)
            assert v[-1]["__is_current"] and v[-1]["__valid_to"] is None, v[-1]


def _bulk(*keys):
    return Lake({"id": k, "a": f"a{k}", "b": f"b{k}", "__source_commit_pos": 50, "__source_change_pos": 0, "__op": "r",
                 "__valid_from": SNAPSHOT, "__valid_to": None, "__is_current": True, "__is_deleted": False} for k in keys)


T0 = int(SNAPSHOT.replace(tzinfo=dt.UTC).timestamp() * 1000)


def _at(seconds):
    return dt.datetime.fromtimestamp((T0 + seconds * 1000) / 1000, dt.UTC).replace(tzinfo=None)


# (op, id, a, b, b is an unchanged-TOAST placeholder, commit, change, ts_ms)
STORY = [
    ("u", 1, "x1", "b1", False, 100, 1, T0 + 10_000),  # three updates of key 1 in one transaction
    ("u", 1, "x2", None, True, 100, 2, T0 + 10_000),   # ... b unchanged (TOAST): the previous version's
    ("u", 1, "x3", "y3", False, 100, 3, T0 + 10_000),
    ("d", 2, None, None, False, 110, 1, T0 + 20_000),  # delete, then insert again
    ("c", 2, "new2", "nb2", False, 120, 1, T0 + 30_000),
    ("d", 3, None, None, False, 130, 1, T0 + 40_000),  # a key change: 3 -> 30
    ("c", 30, "a3", "b3", False, 130, 2, T0 + 40_000),
    ("u", 1, "x4", None, True, 140, 1, T0 + 50_000),
    ("u", 4, "a4", "changed", False, 150, 1, T0 + 60_000),  # only b changes
]


def test_every_event_is_a_version_chained_without_gaps():
    lake = _bulk(1, 2, 3, 4)
    lake.apply(_spec(), STORY)
    v1 = lake.versions(1)
    assert [(r["a"], r["b"], r["__valid_from"], r["__valid_to"]) for r in v1] == [
        ("a1", "b1", SNAPSHOT, _at(10)), ("x1", "b1", _at(10), _at(10)), ("x2", "b1", _at(10), _at(10)),
        ("x3", "y3", _at(10), _at(50)), ("x4", "y3", _at(50), None)]
    assert [(r["a"], r["__is_deleted"], r["__is_current"]) for r in lake.versions(2)] == [
        ("a2", False, False), ("a2", True, False), ("new2", False, True)]
    assert [(r["a"], r["b"], r["__is_deleted"], r["__is_current"]) for r in lake.versions(3)] == [("a3", "b3", False, False), ("a3", "b3", True, True)]
    assert [(r["a"], r["__valid_from"], r["__is_current"]) for r in lake.versions(30)] == [("a3", _at(40), True)]
    assert len(lake.versions(4)) == 2
    lake.check_chains()


def test_replays_add_nothing_and_applies_split_anywhere_give_the_same_versions():
    whole = _bulk(1, 2, 3, 4)
    whole.apply(_spec(), STORY)
    assert whole.apply(_spec(), STORY) == []  # a replay: every event at or before its key's current version
    for cut in range(1, len(STORY)):
        split = _bulk(1, 2, 3, 4)
        split.apply(_spec(), STORY[:cut])
        split.apply(_spec(), STORY[max(0, cut - 3):])  # the second apply reaches back (a replay after a crash)
        assert sorted(map(repr, split.rows)) == sorted(map(repr, whole.rows)), cut


def test_history_columns_update_the_current_version_in_place():
    lake = _bulk(1, 4)
    story = [("u", 4, "a4", "b-only", False, 100, 1, T0 + 1000),   # b is not a history column: in place
             ("u", 4, "A", "b-only", False, 110, 1, T0 + 2000),     # a changes: a new version
             ("u", 4, "A", "again", False, 120, 1, T0 + 3000),      # in place, on the version this apply opened
             ("d", 1, None, None, False, 130, 1, T0 + 4000),
             ("u", 1, "a1", "b1", False, 140, 1, T0 + 5000)]       # (an update after a delete opens a version)
    lake.apply(_spec(("a",)), story)
    assert [(r["a"], r["b"], r["__valid_from"], r["__source_commit_pos"]) for r in lake.versions(4)] == [
        ("a4", "b-only", SNAPSHOT, 100), ("A", "again", _at(2), 120)]
    assert [r["__is_deleted"] for r in lake.versions(1)] == [False, True, False]
    lake.check_chains()
    for cut in range(1, len(story)):
        split = _bulk(1, 4)
        split.apply(_spec(("a",)), story[:cut])
        split.apply(_spec(("a",)), story[cut - 1:])
        assert sorted(map(repr, split.rows)) == sorted(map(repr, lake.rows)), cut


def test_history_sql_texts():
    spec = _spec()
    merge = H.history_merge_sql(spec, "v")
    assert "WHEN MATCHED AND s.__role = 'update' THEN UPDATE SET" in merge
    assert "t.`__is_current` AND s.__role <> 'insert' AND t.__source_commit_pos = s.`__cur_commit`" in merge
    assert "WHEN NOT MATCHED AND s.__role = 'insert' THEN INSERT" in merge and "DELETE" not in merge
    soft = H.soft_merge_sql(TableSpec("s", "public", "t", "/lake/t", ("id",), COLUMNS, history=HistoryMode(deletes="soft")), "v", ["b"])
    assert "DELETE" not in soft and "`__is_deleted` = s.`__op` = 'd'" in soft.replace("t.`__is_deleted`", "`__is_deleted`")
    assert H.lake_view_filter(["id", "__is_current", "__is_deleted"]) == "`__is_current` AND NOT `__is_deleted`"
    assert H.lake_view_filter(["id", "__is_deleted"]) == "NOT `__is_deleted`" and H.lake_view_filter(["id"]) is None
    for sql in (merge, soft, H.truncate_history_sql(spec, 5, 1, "current_timestamp()"), H.as_of_sql("/lake/t", "TIMESTAMP '2026-01-01'"),
                H.init_history_sql(spec, ["__valid_from", "__is_current", "__is_deleted"], "timestamp_micros(1)")):
        sqlglot.parse_one(sql.replace("delta.`/lake/t`", "lake_t"), read="spark")


def test_version_counts_of_history_and_soft_delete_tables_only():
    assert H.version_counts_sql("/lake/t", ["id", "__op"]) is None
    assert "count_if(`__is_current` AND `__is_deleted`)" in H.version_counts_sql("/lake/t", ["id", "__is_current", "__is_deleted"])
    assert "count_if(true AND `__is_deleted`)" in H.version_counts_sql("/lake/t", ["id", "__is_deleted"])


def test_soft_delete_merge_keeps_deleted_rows_and_revives_them():
    """soft_merge_sql run on DuckDB: the apply's last event per key (as the mirror's MERGE source)."""
    spec = TableSpec("s", "public", "t", "/lake/t", ("id",), COLUMNS, history=HistoryMode(deletes="soft"))
    con = duckdb.connect()
    con.execute("CREATE TABLE lake (id INT, a VARCHAR, b VARCHAR, __source_commit_pos BIGINT, __source_change_pos BIGINT, __op VARCHAR, "
                "__ingested_at TIMESTAMP, __is_deleted BOOLEAN)")
    con.execute("INSERT INTO lake VALUES (1, 'a1', 'b1', 50, 0, 'r', NULL, false), (2, 'a2', 'b2', 50, 0, 'r', NULL, false), "
                "(3, 'a3', 'b3', 90, 1, 'd', NULL, true)")
    con.execute("CREATE TABLE v (id INT, a VARCHAR, b VARCHAR, __toast_b BOOLEAN, __op VARCHAR, __source_commit_pos BIGINT, __source_change_pos BIGINT, "
                "__has_values BOOLEAN)")  # the deletes: no insert or update of the key in the apply, the row keeps its values
    con.execute("INSERT INTO v VALUES (1, NULL, NULL, false, 'd', 100, 1, false), (2, 'x', NULL, true, 'u', 100, 2, true), "
                "(3, 'new3', 'nb3', false, 'c', 110, 1, true), (4, NULL, NULL, false, 'd', 120, 1, false), (5, 'a5', 'b5', false, 'c', 130, 1, true)")
    merge = _duck(H.soft_merge_sql(spec, "v", ["b"]).replace("delta.`/lake/t`", "lake"))
    con.execute(re.sub(r"(SET |, )t\.", r"\1", merge))
    rows = {r[0]: r[1:] for r in con.execute("SELECT id, a, b, __op, __is_deleted FROM lake ORDER BY id").fetchall()}
    assert rows == {1: ("a1", "b1", "d", True), 2: ("x", "b2", "u", False), 3: ("new3", "nb3", "c", False), 5: ("a5", "b5", "c", False)}
    con.execute(re.sub(r"(SET |, )t\.", r"\1", merge))  # a replay changes nothing
    assert {r[0]: r[1:] for r in con.execute("SELECT id, a, b, __op, __is_deleted FROM lake ORDER BY id").fetchall()} == rows


def test_delta_rs_history_merge_leaves_the_sql_merges_table(tmp_path):
    """The delta-rs MERGE of an apply's rows (history_merge_clauses) ends where the SQL MERGE does."""
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from lib.cdc.delta_rs_merge import merge_history_arrow

    ts = pa.timestamp("us", tz="UTC")
    lake_schema = pa.schema([("id", pa.int32()), ("a", pa.string()), ("b", pa.string()), ("__source_commit_pos", pa.int64()),
                             ("__source_change_pos", pa.int64()), ("__op", pa.string()), ("__ingested_at", ts), ("__valid_from", ts),
                             ("__valid_to", ts), ("__is_current", pa.bool_()), ("__is_deleted", pa.bool_())])
    rows_schema = pa.schema([("id", pa.int32()), ("a", pa.string()), ("b", pa.string()), ("__source_commit_pos", pa.int64()),
                             ("__source_change_pos", pa.int64()), ("__op", pa.string()), ("__cur_commit", pa.int64()), ("__cur_change", pa.int64()),
                             ("__start", ts), ("__end", ts), ("__current", pa.bool_()), ("__role", pa.string())])
    path = str(tmp_path / "t")
    spec = TableSpec("s", "public", "t", path, ("id",), COLUMNS, history=HistoryMode("scd2"))
    lake = _bulk(1, 2, 3, 4)
    write_deltalake(path, pa.Table.from_pylist([{**r, "__ingested_at": None} for r in lake.rows], lake_schema))
    for chunk in (STORY[:4], STORY[2:7], STORY[5:]):  # each apply reaches back into the one before (a replay)
        merged = lake.apply(spec, chunk)
        data = pa.Table.from_pylist([{f.name: r[f.name] for f in rows_schema} for r in merged], rows_schema)
        merge_history_arrow(path, data, H.history_merge_clauses(spec))
    got = DeltaTable(path).to_pyarrow_table().drop_columns(["__ingested_at"]).to_pylist()
    got = [{k: (v.replace(tzinfo=None) if isinstance(v, dt.datetime) else v) for k, v in r.items()} for r in got]
    assert sorted(map(repr, got)) == sorted(map(repr, lake.rows))
    assert len(got) == 4 + len(STORY) - 1 + 1  # (the key change: a deleted version of 3, a first one of 30)
