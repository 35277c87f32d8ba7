import pytest

from lib.bulk.planner import SplitChoice, TablePlan, choose_split, describe, group_chunks, sample_target, type_fits
from lib.config.model import TableOverride
from lib.dialects.base import Column, ColumnRead, Table


def table(pk=("id",), nullable=False, rows=1_000_000):
    cols = (Column("id", "bigint", nullable, 1), Column("b", "bigint", True, 2), Column("code", "text", True, 3))
    return Table("public", "t", cols, pk, rows, 0, 1000)


def choose(t, override=None, partitions=4, per_chunk=400_000, min_split=50_000, physical=True):
    return choose_split(t, override or TableOverride(), partitions, per_chunk, min_split, t.estimated_rows, physical)


def test_small_tables_are_read_in_one_piece():
    split = choose(table(rows=10_000))
    assert (split.kind, split.partitions, split.chunks) == ("none", 1, 1)


def test_primary_key_range_split_with_chunks():
    split = choose(table())
    assert (split.kind, split.columns, split.partitions, split.chunks) == ("range", ("id",), 4, 3)
    assert split.total_ranges == 12


def test_split_column_override_and_partitions_override():
    split = choose(table(), TableOverride(split_column="code", partitions=2))
    assert (split.kind, split.columns, split.partitions) == ("range", ("code",), 2)
    with pytest.raises(KeyError):
        choose(table(), TableOverride(split_column="missing"))


def test_composite_nullable_key_splits_on_first_column():
    t = Table("public", "t", (Column("a", "int", False, 1), Column("b", "int", True, 2)), (), 1_000_000, 0, 10)
    split = choose(t, TableOverride(key_columns=("a", "b")))
    assert split.columns == ("a",)


def test_no_key_uses_physical_ranges_in_one_chunk_or_reads_whole():
    assert choose(table(pk=())).kind == "physical"
    assert choose(table(pk=())).chunks == 1
    assert choose(table(pk=()), physical=False).kind == "none"


def test_group_chunks_keeps_order_and_sizes():
    assert group_chunks(["a", "b", "c", "d", "e"], 2) == (("a", "b", "c"), ("d", "e"))
    assert group_chunks(["a"], 3) == (("a",),)
    assert group_chunks(["a", "b"], 1) == (("a", "b"),)


def test_sample_target_bounds():
    assert sample_target(SplitChoice("range", ("id",), 4, 1, "")) == 5_000
    assert sample_target(SplitChoice("range", ("id",), 4, 100, "")) == 400_000
    assert sample_target(SplitChoice("range", ("id",), 4, 1000, "")) == 500_000


def test_plan_json_roundtrip_and_description():
    plan = TablePlan(
        "public", "t", 1000, SplitChoice("range", ("id",), 2, 1, "primary key (id)"), (("a", "b"),),
        (ColumnRead("id", '"id"', "bigint"), ColumnRead("w", '"w"::numeric(3,1) AS "w"', "decimal(3,1)", True)),
    )
    assert TablePlan.from_json(plan.to_json()) == plan
    assert describe(plan) == "public.t: ~1000 rows, 1 chunk(s) x 2 partition(s), split range on id (primary key (id))"
    assert plan.lake_schema == "`id` bigint, `w` decimal(3,1)"


def test_type_fits():
    assert type_fits("decimal(5,2)", "decimal(10,4)")
    assert not type_fits("decimal(5,3)", "decimal(10,2)")  # more fraction digits would round
    assert not type_fits("decimal(12,2)", "decimal(10,2)")  # more integer digits would overflow
    assert type_fits("decimal(40,2)", "string") and not type_fits("string", "decimal(38,2)")
