import pytest

from lib.dialects.base import Column, SplitSample, Table
from lib.dialects.postgres import sql
from lib.dialects.postgres.snapshot import create_slot_sql, publication_sql, session_init_sql


def col(name, source_type="bigint", nullable=False):
    return Column(name, source_type, nullable, 1, (("typname", "int8"),))


def table(*cols, name="t", schema="public", pages=0):
    return Table(schema, name, tuple(cols), (), 1000, 0, pages)


def test_quote_ident_handles_quotes_spaces_and_case():
    assert sql.quote_ident("Gift Cards") == '"Gift Cards"'
    assert sql.quote_ident('we"ird') == '"we""ird"'
    assert sql.qualified("My Schema", "t") == '"My Schema"."t"'
    with pytest.raises(ValueError):
        sql.quote_ident("a\x00b")


def test_literals_escape_quotes():
    assert sql.quote_literal("O'Brien") == "'O''Brien'"
    assert sql.typed_literal("2024-01-01 00:00:00", "timestamp without time zone") == "'2024-01-01 00:00:00'::timestamp without time zone"


def test_pick_boundaries_uses_positions_and_skips_duplicates_and_nulls():
    rows = [(None,)] + [(str(v),) for v in [1, 2, 3, 4, 5, 6, 7, 8]]
    assert sql.pick_boundaries(rows, 4) == [("3",), ("5",), ("7",)]
    skewed = [("1",)] * 90 + [("2",)] * 10
    assert sql.pick_boundaries(skewed, 4) == []  # every candidate equals the minimum
    assert sql.pick_boundaries([("a",), ("a",), ("b",), ("b",)], 4) == [("b",)]
    assert sql.pick_boundaries([], 4) == []
    assert sql.pick_boundaries([("1",), ("2",)], 1) == []


def test_pick_boundaries_balances_a_gappy_key():
    # keys clustered at both ends with a huge gap: min/max striding would give 2 full and 2 empty ranges
    keys = list(range(-1000, 0)) + list(range(10**15, 10**15 + 3000))
    rows = [(str(k),) for k in keys]
    bounds = [int(b[0]) for b in sql.pick_boundaries(rows, 4)]
    sizes = [sum(1 for k in keys if lo <= k < hi) for lo, hi in zip([-(10**18), *bounds], [*bounds, 10**18], strict=False)]
    assert sizes == [1000, 1000, 1000, 1000]


def test_range_predicates_cover_every_row_once():
    t = table(col("id"))
    preds = sql.range_predicates(t, SplitSample(("id",), tuple((str(i),) for i in range(100))), 4)
    assert preds == [
        '"id" < \'25\'::bigint',
        '"id" >= \'25\'::bigint AND "id" < \'50\'::bigint',
        '"id" >= \'50\'::bigint AND "id" < \'75\'::bigint',
        '"id" >= \'75\'::bigint',
    ]


def test_range_predicates_nullable_column_puts_nulls_first():
    t = table(col("code", "text", nullable=True))
    preds = sql.range_predicates(t, SplitSample(("code",), (("a",), ("b",), ("c",), ("d",))), 2)
    assert preds[0] == '"code" < \'c\'::text OR "code" IS NULL'


def test_range_predicates_composite_key_uses_row_comparison():
    t = table(col("order_id"), col("line no", "integer"))
    rows = tuple((str(o), str(n)) for o in range(10) for n in range(10))
    preds = sql.range_predicates(t, SplitSample(("order_id", "line no"), rows), 2)
    assert preds == [
        "(\"order_id\", \"line no\") < ('5'::bigint, '0'::integer)",
        "(\"order_id\", \"line no\") >= ('5'::bigint, '0'::integer)",
    ]


def test_range_predicates_refuse_nullable_composite_keys():
    t = table(col("a"), col("b", nullable=True))
    with pytest.raises(ValueError, match="composite split keys must be NOT NULL"):
        sql.range_predicates(t, SplitSample(("a", "b"), (("1", "1"), ("2", "2"))), 2)


def test_no_boundaries_means_one_unfiltered_read():
    assert sql.range_predicates(table(col("id")), SplitSample(("id",), ()), 4) == ["TRUE"]


def test_physical_predicates_are_contiguous_and_open_ended():
    preds = sql.physical_predicates(table(col("x"), pages=100), 4)
    assert preds == [
        "ctid >= '(0,0)'::tid AND ctid < '(25,0)'::tid",
        "ctid >= '(25,0)'::tid AND ctid < '(50,0)'::tid",
        "ctid >= '(50,0)'::tid AND ctid < '(75,0)'::tid",
        "ctid >= '(75,0)'::tid",
    ]
    assert sql.physical_predicates(table(col("x"), pages=2), 4) is None


def test_select_sql_quotes_names_and_skips_trivial_predicate():
    t = table(col("id"), name="Gift Cards")
    assert sql.select_sql(t, ['"id"'], "TRUE") == 'SELECT "id" FROM "public"."Gift Cards"'
    assert sql.select_sql(t, ['"id"'], '"id" < 5') == 'SELECT "id" FROM "public"."Gift Cards" WHERE "id" < 5'


def test_lsn_to_int_orders_numerically():
    assert sql.lsn_to_int("0/16B3748") == 0x16B3748
    assert sql.lsn_to_int("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert sql.lsn_to_int("1/0") > sql.lsn_to_int("0/FFFFFFFF")  # as text, "0/F..." > "1/0" would be wrong
    with pytest.raises(ValueError):
        sql.lsn_to_int("garbage")


def test_snapshot_sql():
    assert session_init_sql("00000003-0000001D-1") == (
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '00000003-0000001D-1'"
    )
    assert create_slot_sql("lakehouse_shop", False) == 'CREATE_REPLICATION_SLOT "lakehouse_shop" LOGICAL pgoutput EXPORT_SNAPSHOT'
    assert create_slot_sql("s_tmp_1", True) == 'CREATE_REPLICATION_SLOT "s_tmp_1" TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT'


def test_publication_sql_creates_then_only_adds_missing_tables():
    a, b = table(col("id"), name="a"), table(col("id"), name="Gift Cards")
    assert publication_sql("pub", None, [a, b]) == ['CREATE PUBLICATION "pub" FOR TABLE "public"."a", "public"."Gift Cards"']
    assert publication_sql("pub", {("public", "a")}, [a, b]) == ['ALTER PUBLICATION "pub" ADD TABLE "public"."Gift Cards"']
    assert publication_sql("pub", {("public", "a"), ("public", "Gift Cards")}, [a, b]) == []
    assert publication_sql("pub", None, []) == ['CREATE PUBLICATION "pub"']


def test_boundaries_ascending_sql_compares_consecutive_points_in_the_database():
    t = table(col("id"))
    sample = SplitSample(("id",), tuple((str(i),) for i in range(9)))
    assert sql.boundaries_ascending_sql(t, sample, 3) == "SELECT '3'::bigint < '6'::bigint"
    assert sql.boundaries_ascending_sql(t, sample, 2) is None
