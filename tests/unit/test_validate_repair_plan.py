"""Planning ``validate --repair`` (lib/validate/repair_plan.py): which tables, buckets or whole table,
MERGE or replaceWhere, and the SQL text for each source dialect and the lake. No Spark, no database."""

import pytest

from lib.dialects import get_dialect
from lib.dialects.base import Column, ColumnRead, Table
from lib.validate import repair_plan as rp
from lib.validate import source_checksum as sc
from lib.validate.checksum_sql import RowSpec, pg_drill_down_sql, spark_row_exprs
from lib.validate.model import Check, TableReport


def _table() -> Table:
    cols = (
        Column("Id", "integer", False, 1, (("typname", "int4"),)),
        Column('we"ird', "text", True, 2, (("typname", "text"),)),
    )
    return Table("s", "T x", cols, ("Id",), 10, 0)


SPEC = RowSpec((ColumnRead("Id", '"Id"', "int"), ColumnRead('we"ird', '"we""ird"', "string")), ("Id",), 2)


def report(*checks: Check, name: str = "T x") -> TableReport:
    return TableReport("s", name, "/lake/x", tuple(checks))


def checksum(status: str, buckets=()) -> Check:
    return Check("checksum", "reconciliation", status, "m", details={"buckets": list(buckets)} if buckets else {})


@pytest.mark.parametrize(("differing", "total", "mode"), [
    (["0a"], 256, "buckets"),
    ([f"{i:02x}" for i in range(128)], 256, "buckets"),  # exactly half: still buckets
    ([f"{i:02x}" for i in range(129)], 256, "table"),
    ([f"{i:x}" for i in range(16)], 16, "table"),
])
def test_buckets_while_at_most_half_differ_else_the_whole_table(differing, total, mode):
    assert rp.choose_mode(differing, total) == mode


def test_choose_mode_rejects_a_bad_bucket_count():
    with pytest.raises(ValueError, match="total_buckets"):
        rp.choose_mode(["0"], 0)


def test_what_differs_failed_or_in_flight_counts_skipped_or_equal_does_not():
    assert rp.differing_buckets(report(checksum("fail", ["0a", "ff"]))) == ("0a", "ff")
    assert rp.differing_buckets(report(checksum("in_flight", ["01"]))) == ("01",)  # a streamed table
    assert rp.differing_buckets(report(checksum("pass"))) == ()
    assert rp.differing_buckets(report(checksum("skipped"))) is None
    assert rp.needs_repair(report(checksum("in_flight", ["01"])))
    assert not rp.needs_repair(report(checksum("pass"), Check("expect_x", "expectation", "fail", "m")))
    # no checksum compared: the row count decides, and the whole table is re-copied
    rows = Check("row_count", "reconciliation", "fail", "row count: lake 8, source 10")
    assert rp.needs_repair(report(checksum("skipped"), rows))
    plan = rp.plan_table(report(checksum("skipped"), rows), ("Id",), 256)
    assert plan.mode == "table" and not plan.filtered and plan.method == "merge"


def test_plan_merges_keyed_tables_and_replaces_buckets_of_keyless_or_duplicated_ones():
    plan = rp.plan_table(report(checksum("fail", ["0a", "1b"])), ("Id",), 256)
    assert (plan.mode, plan.buckets, plan.method) == ("buckets", ("0a", "1b"), "merge")
    assert plan.describe() == "2 of 256 bucket(s) by MERGE"
    assert rp.plan_table(report(checksum("fail", ["0a"])), (), 256).method == "replace"
    dup = Check("primary_key", "reconciliation", "fail", "primary key: 1 duplicated key(s)")
    assert rp.plan_table(report(checksum("fail", ["0a"]), dup), ("Id",), 256).method == "replace"
    whole = rp.plan_table(report(checksum("fail", [f"{i:x}" for i in range(12)])), ("Id",), 16)
    assert whole.describe() == "the whole table (12 of 16 buckets differ) by MERGE"


@pytest.mark.parametrize(("checks", "columns", "fmt", "why"), [
    ((), ["Id"], "parquet", "repair needs lake.format delta"),
    ((Check("schema", "schema", "fail", "schema: missing column(s) x"),), ["Id"], "delta", "the lake schema differs"),
    ((Check("lake_table", "load", "fail", "no delta table"),), [], "delta", "cannot be read"),
    ((Check("load_status", "load", "fail", "bulk load is running"),), ["Id"], "delta", "bulk load is not completed"),
    ((), ["Id", "__valid_from", "__is_current", "__is_deleted"], "delta", "history or soft deletes"),
    ((), ["Id", "__is_deleted"], "delta", "history or soft deletes"),
])
def test_refusals_name_the_reason_and_the_command_that_fixes_it(checks, columns, fmt, why):
    text = rp.refusal(report(*checks), columns, fmt)
    assert text is not None and why in text and "jobs/bulk_load.py --tables s.T x" in text


def test_a_plain_delta_mirror_is_not_refused():
    assert rp.refusal(report(checksum("fail", ["0a"])), ["Id", "__op", "__source_commit_pos"], "delta") is None


def test_history_and_soft_delete_tables_are_repaired_by_key_only():
    for columns in (["Id", "__valid_from", "__is_current", "__is_deleted"], ["Id", "__is_deleted"]):
        assert rp.refusal(report(checksum("fail", ["0a"])), columns, "delta", ("Id",)) is None
        dup = Check("primary_key", "reconciliation", "fail", "primary key: 1 duplicated key(s)")
        assert "duplicated current keys" in rp.refusal(report(checksum("fail", ["0a"]), dup), columns, "delta", ("Id",))
        assert "has none" in rp.refusal(report(checksum("fail", ["0a"])), columns, "delta", ())


def test_postgres_select_filters_the_loaders_select_by_the_same_bucket_as_the_checksum():
    plan = rp.RepairPlan("s.T x", "buckets", ("0a", "f'"), 256, "merge")
    sql = rp.pg_repair_select_sql(_table(), SPEC, plan)
    inner = 'SELECT "Id", "we""ird" FROM "s"."T x"'
    assert sql.startswith(f"SELECT q.* FROM ({inner}) AS q WHERE substr(md5(convert_to(")
    assert sql.endswith(", 'UTF8')), 1, 2) IN ('0a', 'f''')")
    # the bucket expression is the checksum's own (its drill-down filters r.b = that expression)
    bucket = sql[sql.index("WHERE ") + 6: sql.rindex(" IN (")]
    assert f"SELECT {bucket} AS b" in pg_drill_down_sql(_table(), SPEC, ["0a"])
    whole = rp.RepairPlan("s.T x", "table", ("0a",), 256, "merge")
    assert rp.pg_repair_select_sql(_table(), SPEC, whole) == inner


def test_oracle_and_sqlserver_selects_use_their_dialects_rendering():
    ora_spec = RowSpec((ColumnRead("ID", '"ID"', "decimal(10,0)"), ColumnRead("NAME", '"NAME"', "string")), ("ID",), 2)
    table = Table("SHOP", "T", (Column("ID", "NUMBER(10,0)", False, 1, (("data_type", "NUMBER"), ("precision", 10), ("scale", 0))),), ("ID",), 1, 0)
    inner = sc.inner_select(get_dialect("oracle"), table, ora_spec)
    plan = rp.RepairPlan("SHOP.T", "buckets", ("0a",), 256, "merge")
    ora = rp.source_repair_select_sql("oracle", inner, ora_spec, plan)
    assert ora.startswith(f"SELECT q.* FROM ({inner}) q WHERE ") and ora.endswith(" IN ('0a')")
    assert 'q."ID"' in ora and 'q."NAME"' not in ora and "STANDARD_HASH" in ora  # bucket of the key text only
    mss_spec = RowSpec((ColumnRead("id", "[id]", "int"), ColumnRead("b", "[b]", "binary")), (), 1)
    mss = rp.source_repair_select_sql("sqlserver", "SELECT [id], [b] FROM [dbo].[t]", mss_spec, rp.RepairPlan("dbo.t", "buckets", ("c",), 16, "replace"))
    assert mss.startswith("SELECT q.* FROM (SELECT [id], [b] FROM [dbo].[t]) AS q WHERE ") and mss.endswith(" IN (N'c')")
    assert "q.[id]" in mss and "q.[b]" in mss and "HASHBYTES" in mss  # keyless: bucket of the row text
    assert rp.source_repair_select_sql("oracle", inner, ora_spec, rp.RepairPlan("SHOP.T", "table", (), 256, "merge")) == inner


def test_lake_predicate_is_the_checksum_bucket_expression():
    plan = rp.RepairPlan("s.T x", "buckets", ("0a", "1b"), 256, "replace")
    assert rp.bucket_predicate(SPEC, plan) == f"{spark_row_exprs(SPEC).bucket} IN ('0a', '1b')"
    assert rp.bucket_predicate(SPEC, rp.RepairPlan("s.T x", "table", (), 256, "replace")) == "TRUE"


def test_rows_newer_than_the_snapshot_by_commit_or_change_position():
    assert rp.newer_than_snapshot("t", 500) == "(t.`__source_commit_pos` > 500 OR t.`__source_change_pos` >= 500)"
    assert rp.newer_than_snapshot("", 7, "__tomb_commit_pos", "__tomb_change_pos") == "(__tomb_commit_pos > 7 OR __tomb_change_pos >= 7)"

    def newer(commit: int, change: int, s: int = 500) -> bool:  # the same rule in Python
        return commit > s or change >= s

    assert not newer(500, 0)  # a bulk or repaired row at the snapshot itself
    assert not newer(400, 450)  # a change committed before the snapshot
    assert newer(400, 510)  # written after the snapshot, in a transaction whose predecessor committed before it
    assert newer(501, 0)


def test_merge_writes_only_the_differing_rows_and_never_overwrites_newer_ones():
    columns = ["Id", 'we"ird', "__source_commit_pos", "__source_change_pos", "__op", "__ingested_at"]
    sql = rp.merge_sql("/lake/s/T `x`", "__repair_1", ["Id"], columns, 500)
    keep = "NOT (t.`__source_commit_pos` > 500 OR t.`__source_change_pos` >= 500)"
    assert sql == (
        "MERGE INTO delta.`/lake/s/T ``x``` AS t USING `__repair_1` AS s ON t.`Id` = s.`Id` "
        f"WHEN MATCHED AND s.`__repair_delete` AND {keep} THEN DELETE "
        f"WHEN MATCHED AND NOT s.`__repair_delete` AND {keep} THEN UPDATE SET t.`we\"ird` = s.`we\"ird`, "
        "t.`__source_commit_pos` = s.`__source_commit_pos`, t.`__source_change_pos` = s.`__source_change_pos`, "
        "t.`__op` = s.`__op`, t.`__ingested_at` = s.`__ingested_at` "
        "WHEN NOT MATCHED AND NOT s.`__repair_delete` THEN INSERT (`Id`, `we\"ird`, `__source_commit_pos`, `__source_change_pos`, `__op`, `__ingested_at`) "
        "VALUES (s.`Id`, s.`we\"ird`, s.`__source_commit_pos`, s.`__source_change_pos`, s.`__op`, s.`__ingested_at`)"
    )
    assert " ON t.`a` = s.`a` AND t.`b col` = s.`b col` WHEN " in rp.merge_sql("/l", "v", ["a", "b col"], ["a", "b col", "v"], 1)


def test_merge_refuses_a_table_without_key():
    with pytest.raises(ValueError, match="needs a primary key"):
        rp.merge_sql("/l", "v", [], ["Id"], 1)


# ---------------------------------------------------------------- the key lookup

BIG = RowSpec((ColumnRead("Id", '"Id"', "bigint"), ColumnRead("v", '"v"', "string")), ("Id",), 2)
PAIR = RowSpec((ColumnRead("a", '"a"', "int"), ColumnRead('b "c"', '"b ""c"""', "smallint"), ColumnRead("v", '"v"', "string")), ("a", 'b "c"'), 2)


def keyed(keys, buckets=("0a",), key_check="pass") -> TableReport:
    check = Check("checksum", "reconciliation", "fail", "m", details={"buckets": list(buckets)}, keys=keys)
    return report(check, Check("primary_key", "reconciliation", key_check, "k"))


def test_the_differing_keys_are_looked_up_when_the_drill_down_named_them_all():
    plan = rp.plan_table(keyed(("2:17", "1:5", "3:-12", "2:17")), ["Id"], 256, spec=BIG)
    assert plan.keys == ((-12,), (5,), (17,)) and plan.by_key and plan.method == "merge"
    assert plan.describe() == "the 3 differing key(s) of 1 of 256 bucket(s) by MERGE"
    pair = rp.plan_table(keyed(("1:3|2:13",)), ["a", 'b "c"'], 256, spec=PAIR)
    assert pair.keys == ((3, 13),)


@pytest.mark.parametrize(("keys", "spec", "why"), [
    (None, BIG, "the drill-down did not name them (too many rows) or none was run"),
    ((), BIG, "no key named"),
    (("1:x",), BIG, "not an integer"),
    (("N",), BIG, "a NULL key"),
    (("1:1|1:2",), BIG, "more values than key columns"),
    (("1:a",), RowSpec((ColumnRead("v", '"v"', "string"),), ("v",), 2), "a text key column"),
    (("20:12345678901234567890",), BIG, "beyond bigint"),
])
def test_the_buckets_are_read_when_the_keys_cannot_be_looked_up(keys, spec, why):
    assert rp.lookup_keys(keyed(keys), spec) is None, why
    assert not rp.plan_table(keyed(keys), list(spec.key), 256, spec=spec).by_key


def test_no_lookup_beyond_the_limit_for_replacements_or_without_spec():
    assert rp.lookup_keys(keyed(("1:1", "1:2")), BIG, limit=1) is None
    assert not rp.plan_table(keyed(("1:1",), key_check="fail"), ["Id"], 256, spec=BIG).by_key  # duplicated keys: replaceWhere
    assert not rp.plan_table(keyed(("1:1",)), ["Id"], 256).by_key  # history tables: no spec given


def test_key_batches():
    keys = [(i,) for i in range(5)]
    assert rp.key_batches(keys, 2) == [((0,), (1,)), ((2,), (3,)), ((4,),)]
    assert rp.key_batches([], 2) == []
    with pytest.raises(ValueError):
        rp.key_batches(keys, 0)


def test_postgres_key_lookup_filters_the_loaders_select_on_its_key_columns():
    sql = rp.pg_key_select_sql(_table(), BIG, [(5,), (-12,)])
    assert sql.startswith('SELECT q.* FROM (SELECT "Id", "v" FROM "s"."T x") AS q WHERE ')
    assert sql.endswith('WHERE q."Id" = ANY(ARRAY[5, -12]::bigint[])')
    pair = rp.pg_key_select_sql(_table(), PAIR, [(3, 13), (4, 1)])
    assert pair.endswith('WHERE (q."a", q."b ""c""") IN (VALUES (3::bigint, 13::bigint), (4::bigint, 1::bigint))')
    with pytest.raises(ValueError):
        rp.pg_key_select_sql(_table(), BIG, [])


def test_oracle_and_sqlserver_key_lookups():
    inner = 'SELECT "Id", "v" FROM "S"."T"'
    assert rp.source_key_select_sql("oracle", inner, BIG, [(1,), (2,)]) == f'SELECT q.* FROM ({inner}) q WHERE q."Id" IN (1, 2)'
    assert rp.source_key_select_sql("sqlserver", "SELECT 1", PAIR, [(1, 2), (3, 4)]) == (
        'SELECT q.* FROM (SELECT 1) AS q WHERE (q.[a] = 1 AND q.[b "c"] = 2) OR (q.[a] = 3 AND q.[b "c"] = 4)')


def test_key_schema_is_the_lakes_key_columns():
    assert rp.key_schema_ddl(PAIR) == '`a` int, `b "c"` smallint'


def test_merge_clauses_are_the_merge_statement_as_data():
    m = rp.merge_clauses(["Id"], ["Id", "v", "__op"], 500)
    guard = "NOT (t.`__source_commit_pos` > 500 OR t.`__source_change_pos` >= 500)"
    assert m.on == "t.`Id` = s.`Id`"
    assert m.delete_when == f"s.`__repair_delete` AND {guard}" and m.update_when == f"NOT s.`__repair_delete` AND {guard}"
    assert m.updates == (("`v`", "s.`v`"), ("`__op`", "s.`__op`")) and m.insert_when == "NOT s.`__repair_delete`"
    assert m.inserts == (("`Id`", "s.`Id`"), ("`v`", "s.`v`"), ("`__op`", "s.`__op`"))
    sql = rp.merge_sql("/l", "v", ["Id"], ["Id", "v", "__op"], 500)
    assert f"WHEN MATCHED AND {m.delete_when} THEN DELETE WHEN MATCHED AND {m.update_when} THEN UPDATE SET t.`v` = s.`v`" in sql
