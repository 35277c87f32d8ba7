import pytest

from lib.dialects.base import Column, ColumnRead, Table
from lib.spark_sql import ident
from lib.validate import render
from lib.validate.checksum_sql import RowSpec, pg_bucket_sums_sql, pg_drill_down_sql, pg_rendered_sql, spark_row_exprs


def field(value):
    """Python reference of the field encoding both engines implement."""
    return render.NULL_FIELD if value is None else f"{len(value)}:{value}"


@pytest.mark.parametrize("values", [["1", None, ""], ["a|b", "N", "2:x"], [None], ["ünï 🎉", "", None, "12:34"]])
def test_fields_round_trip_and_keep_null_distinct_from_empty(values):
    text = "|".join(field(v) for v in values)
    assert render.parse_fields(text) == values


def test_show_key():
    assert render.show_key(["id"], "2:17") == "id=17"
    assert render.show_key(["a", "b"], "1:1|N") == "(a=1, b=NULL)"


def test_pg_values_per_lake_type():
    assert render.pg_value("q.x", "decimal(12,2)") == "(q.x)::numeric(12,2)::text"
    assert render.pg_value("q.x", "int") == "(q.x)::text"
    assert "float8send(q.x)" in render.pg_value("q.x", "double") and "'NaN'::float8" in render.pg_value("q.x", "double")
    assert "float4send(q.x)" in render.pg_value("q.x", "float") and str(render.FLOAT_NAN_BITS) in render.pg_value("q.x", "float")
    assert render.pg_value("q.x", "string") == "(q.x)::text"
    assert render.pg_value("q.x", "string", "bpchar") == "CASE WHEN q.x IS NULL THEN NULL ELSE concat(q.x) END"  # keeps padding, not NULL -> ''
    assert render.pg_value("q.x", "date") == "((q.x) - DATE '1970-01-01')::text"
    assert render.pg_value("q.x", "timestamp") == render.pg_value("q.x", "timestamp_ntz") == "(extract(epoch FROM q.x) * 1000000)::bigint::text"
    assert render.pg_value("q.x", "binary") == "encode(q.x, 'hex')"
    arr = render.pg_value("q.x", "array<decimal(6,2)>")
    assert arr.startswith("CASE WHEN q.x IS NULL THEN NULL ELSE '['") and "unnest(q.x) WITH ORDINALITY" in arr and "(u.x)::numeric(6,2)::text" in arr
    with pytest.raises(render.UnsupportedType):
        render.pg_value("q.x", "map<string,int>")


def test_spark_values_per_lake_type():
    assert render.spark_value("`x`", "decimal(12,2)") == "CAST(CAST(`x` AS decimal(12,2)) AS string)"
    assert "doubleToLongBits" in render.spark_value("`x`", "double") and "floatToIntBits" in render.spark_value("`x`", "float")
    assert render.spark_value("`x`", "date") == "CAST(unix_date(`x`) AS string)"
    assert render.spark_value("`x`", "timestamp") == "CAST(unix_micros(`x`) AS string)"
    assert "timestampdiff(MICROSECOND, TIMESTAMP_NTZ'1970-01-01 00:00:00', `x`)" in render.spark_value("`x`", "timestamp_ntz")
    assert render.spark_value("`x`", "binary") == "lower(hex(`x`))"
    assert "transform(`x`, __e -> coalesce(concat(CAST(char_length(CAST(__e AS string))" in render.spark_value("`x`", "array<int>")


def test_identifiers_are_quoted_on_both_sides():
    assert ident("a`b.c d") == "`a``b.c d`"
    assert render.pg_column("q", 'a"b') == 'q."a""b"'


def test_bucket_digits():
    assert [render.bucket_digits(n) for n in (16, 256, 4096)] == [1, 2, 3]
    with pytest.raises(ValueError):
        render.bucket_digits(100)


def _table():
    cols = (
        Column("Id", "integer", False, 1, (("typname", "int4"),)),
        Column('we"ird', "character(3)", True, 2, (("typname", "bpchar"),)),
        Column("m", "money", True, 3, (("typname", "money"),)),
    )
    return Table("s", "T x", cols, ("Id",), 10, 0)


READS = (
    ColumnRead("Id", '"Id"', "int"),
    ColumnRead('we"ird', '"we""ird"', "string"),
    ColumnRead("m", '"m"::numeric(19,2) AS "m"', "decimal(19,2)"),
)


def test_source_checksum_sql_reuses_the_loaders_select_and_buckets_by_key():
    spec = RowSpec(READS, ("Id",), 2)
    sql = pg_rendered_sql(_table(), spec)
    assert 'FROM (SELECT "Id", "we""ird", "m"::numeric(19,2) AS "m" FROM "s"."T x") AS q' in sql
    assert "concat(q.\"we\"\"ird\")" in sql and '(q."m")::numeric(19,2)::text' in sql
    assert sql.startswith("SELECT substr(md5(convert_to(coalesce(length((q.\"Id\")::text)")
    assert "substr(md5(convert_to(" in sql and "1, 15))::bit(60)::bigint AS h" in sql
    assert pg_bucket_sums_sql(_table(), spec).endswith(") AS r GROUP BY r.b")
    assert pg_drill_down_sql(_table(), spec, ["0a", "f'"]).endswith("WHERE r.b IN ('0a', 'f''')")


def test_keyless_tables_bucket_by_the_row():
    spec = RowSpec(READS, (), 1)
    sql = pg_rendered_sql(_table(), spec)
    assert "NULL::text AS k" in sql
    exprs = spark_row_exprs(spec)
    assert exprs.key == "CAST(NULL AS string)" and exprs.bucket.startswith("substr(md5(concat_ws('|', ") and exprs.bucket.endswith(", 1, 1)")


def test_spark_row_exprs_match_the_source_shape():
    exprs = spark_row_exprs(RowSpec(READS, ("Id",), 2))
    assert exprs.key == "concat_ws('|', coalesce(concat(CAST(char_length(CAST(`Id` AS string)) AS string), ':', CAST(`Id` AS string)), 'N'))"
    assert exprs.hash.startswith("CAST(conv(substr(md5(concat_ws('|', ") and exprs.hash.endswith(", 1, 15), 16, 10) AS bigint)")
    assert "`we\"ird`" in exprs.hash
