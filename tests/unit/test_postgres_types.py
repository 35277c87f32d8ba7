import pytest

from lib.dialects.base import Column
from lib.dialects.postgres.types import column_read, decimal_for_profile, parse_profile, profile_sql


def pg(name, source_type, typname, typtype="b", category="N", elem=None):
    info = (("typname", typname), ("typtype", typtype), ("typcategory", category), ("elem_typname", elem))
    return Column(name, source_type, True, 1, info)


@pytest.mark.parametrize(
    ("column", "select", "lake_type"),
    [
        (pg("a", "smallint", "int2"), '"a"', "smallint"),
        (pg("a", "integer", "int4"), '"a"', "int"),
        (pg("a", "bigint", "int8"), '"a"', "bigint"),
        (pg("a", "numeric(12,2)", "numeric"), '"a"', "decimal(12,2)"),
        (pg("a", "real", "float4"), '"a"', "float"),
        (pg("a", "double precision", "float8"), '"a"', "double"),
        (pg("a", "text", "text", category="S"), '"a"', "string"),
        (pg("a", "character varying(20)", "varchar", category="S"), '"a"', "string"),
        (pg("a", "character(3)", "bpchar", category="S"), '"a"', "string"),
        (pg("a", "boolean", "bool", category="B"), '"a"', "boolean"),
        (pg("a", "date", "date", category="D"), '"a"', "date"),
        (pg("a", "timestamp without time zone", "timestamp", category="D"), '"a"', "timestamp_ntz"),
        (pg("a", "timestamp with time zone", "timestamptz", category="D"), '"a"', "timestamp"),
        (pg("a", "time without time zone", "time", category="D"), '"a"::text AS "a"', "string"),
        (pg("a", "interval", "interval", category="T"), '"a"::text AS "a"', "string"),
        (pg("a", "uuid", "uuid", category="U"), '"a"::text AS "a"', "string"),
        (pg("a", "inet", "inet", category="I"), 'abbrev("a") AS "a"', "string"),
        (pg("a", "cidr", "cidr", category="I"), '"a"::text AS "a"', "string"),
        (pg("a", "mood", "mood", typtype="e", category="E"), '"a"::text AS "a"', "string"),
        (pg("a", "money", "money"), '"a"::numeric(19,2) AS "a"', "decimal(19,2)"),
        (pg("a", "json", "json", category="U"), '"a"::text AS "a"', "string"),
        (pg("a", "jsonb", "jsonb", category="U"), '"a"::text AS "a"', "string"),
        (pg("a", "bytea", "bytea", category="U"), '"a"', "binary"),
        (pg("a", "integer[]", "_int4", category="A", elem="int4"), '"a"', "array<int>"),
        (pg("a", "text[]", "_text", category="A", elem="text"), '"a"', "array<string>"),
        (pg("a", "uuid[]", "_uuid", category="A", elem="uuid"), '"a"::text[] AS "a"', "array<string>"),
        (pg("a", "numeric[]", "_numeric", category="A", elem="numeric"), '"a"::text[] AS "a"', "array<string>"),
        (pg("a", "numeric(6,2)[]", "_numeric", category="A", elem="numeric"), '"a"', "array<decimal(6,2)>"),
        (pg("My Col", "numeric(50,2)", "numeric"), '"My Col"', "decimal(38,18)"),
    ],
)
def test_contract_type_table(column, select, lake_type):
    read = column_read(column)
    assert (read.select_sql, read.spark_type) == (select, lake_type)


def test_unbounded_numeric_is_sized_from_the_data():
    col = pg("w", "numeric", "numeric")
    assert column_read(col).needs_profile
    read = column_read(col, {"w": {"max_scale": 3, "max_int_digits": 5, "specials": 0, "non_null": 10}})
    assert (read.select_sql, read.spark_type) == ('"w"::numeric(8,3) AS "w"', "decimal(8,3)")


def test_decimal_for_profile_never_rounds():
    assert decimal_for_profile({"max_scale": 0, "max_int_digits": 1, "specials": 0, "non_null": 1}) == "decimal(1,0)"
    assert decimal_for_profile({"max_scale": 20, "max_int_digits": 18, "specials": 0, "non_null": 1}) == "decimal(38,20)"
    # 39 significant digits do not fit any Spark decimal: text keeps every digit
    assert decimal_for_profile({"max_scale": 21, "max_int_digits": 18, "specials": 0, "non_null": 1}) == "string"
    assert decimal_for_profile({"max_scale": 2, "max_int_digits": 3, "specials": 1, "non_null": 5}) == "string"  # NaN
    assert decimal_for_profile({"max_scale": None, "max_int_digits": None, "specials": 0, "non_null": 0}) == "decimal(38,18)"


def test_profile_sql_and_parse():
    q = profile_sql('"public"."t"', ["w", "Odd Name"])
    assert q.startswith('SELECT max(scale(CASE WHEN "w" IN (\'NaN\', \'Infinity\', \'-Infinity\') THEN NULL ELSE "w" END))')
    assert 'count("Odd Name")' in q and q.endswith('FROM "public"."t"')
    parsed = parse_profile(["w", "x"], (2, 5, 0, 7, None, None, 0, 0))
    assert parsed["w"] == {"max_scale": 2, "max_int_digits": 5, "specials": 0, "non_null": 7}
    assert parsed["x"]["non_null"] == 0
