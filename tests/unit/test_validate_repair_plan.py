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


def test_lake_predicates_use_the_checksum_bucket_expression():
    plan = rp.RepairPlan("s.T x", "buckets", ("0a", "1b"), 256, "replace")
    assert rp.bucket_predicate(SPEC, plan) == f"{spark_row_exprs(SPEC).bucket} IN ('0a', '1b')"
    aliased = rp.target_bucket_predicate(SPEC, plan, "t")
    assert aliased == spark_row_exprs(SPEC).bucket.replace("`Id`", "t.`Id`") + " IN ('0a', '1b')"
    assert rp.bucket_predicate(SPEC, rp.RepairPlan("s.T x", "table", (), 256, "replace")) == "TRUE"


def test_merge_matches_key_and_row_hash_inserts_the_snapshot_rows_and_deletes_the_rest_of_the_buckets():
    plan = rp.RepairPlan("s.T x", "buckets", ("0a",), 256, "merge")
    columns = ["Id", 'we"ird', "__source_commit_pos", "__source_change_pos", "__op", "__ingested_at"]
    sql = rp.merge_sql("/lake/s/T `x`", "__repair_1", SPEC, plan, columns)
    assert sql.startswith("MERGE INTO delta.`/lake/s/T ``x``` AS t USING `__repair_1` AS s ON t.`Id` = s.`Id` AND CAST(conv(substr(md5(")
    assert "t.`we\"ird`" in sql and ") = s.`__repair_hash` " in sql
    assert " WHEN NOT MATCHED THEN INSERT (`Id`, `we\"ird`, `__source_commit_pos`, `__source_change_pos`, `__op`, `__ingested_at`) " \
           "VALUES (s.`Id`, s.`we\"ird`, s.`__source_commit_pos`, s.`__source_change_pos`, s.`__op`, s.`__ingested_at`) " in sql
    assert sql.endswith(f" WHEN NOT MATCHED BY SOURCE AND {rp.target_bucket_predicate(SPEC, plan, 't')} THEN DELETE")
    assert "WHEN MATCHED" not in sql  # equal rows are never rewritten
    whole = rp.merge_sql("/l", "v", SPEC, rp.RepairPlan("s.T x", "table", (), 256, "merge"), ["Id"])
    assert whole.endswith("WHEN NOT MATCHED BY SOURCE AND TRUE THEN DELETE")
    composite = RowSpec((ColumnRead("a", '"a"', "int"), ColumnRead("b col", '"b col"', "string")), ("a", "b col"), 2)
    assert " ON t.`a` = s.`a` AND t.`b col` = s.`b col` AND " in rp.merge_sql("/l", "v", composite, plan, ["a", "b col"])


def test_merge_refuses_a_table_without_key():
    with pytest.raises(ValueError, match="needs a primary key"):
        rp.merge_sql("/l", "v", RowSpec(SPEC.reads, (), 2), rp.RepairPlan("s.T x", "buckets", ("0a",), 256, "merge"), ["Id"])


def test_row_hash_is_the_checksums_row_hash_over_an_alias():
    assert rp.row_hash(SPEC, "t") == spark_row_exprs(SPEC).hash.replace("`Id`", "t.`Id`").replace("`we\"ird`", "t.`we\"ird`")
