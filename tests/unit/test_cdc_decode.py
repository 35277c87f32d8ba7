"""Debezium field -> lake value expressions (pure: SQL text and the Python references of the text forms)."""

from __future__ import annotations

import base64

import pytest

from lib.cdc.decode import (
    TIMETZ_LOSS,
    UnsupportedField,
    decode_column,
    decode_expr,
    is_unavailable_expr,
    iso_interval_to_pg,
    ok_expr,
    pg_time_text,
)
from lib.cdc.envelope import UNAVAILABLE, envelope_ddl, field_schemas, row_ddl, unavailable_values
from lib.spark_sql import ident


def field(kind, name=None, source_type="", **extra):
    schema = {"type": kind, "optional": True, "parameters": {"__debezium.source.column.type": source_type}, **extra}
    if name:
        schema["name"] = name
    return schema


# (ISO string Debezium 3.2.3 sent, PostgreSQL's interval::text of the same value): pairs observed on the local stack
@pytest.mark.parametrize(
    ("iso", "pg"),
    [
        ("P-1Y-2M3DT-4H-5M-6.789S", "-1 years -2 mons +3 days -04:05:06.789"),
        ("P0Y0M1DT0H0M0.000001S", "1 day 00:00:00.000001"),
        ("P0Y0M0DT0H0M0S", "00:00:00"),
        ("P0Y11M0DT0H0M0S", "11 mons"),
        ("P0Y0M-3DT0H0M0S", "-3 days"),
        ("P0Y1M2DT3H4M5S", "1 mon 2 days 03:04:05"),
        ("P0Y0M0DT0H0M-1S", "-00:00:01"),
        ("P0Y0M0DT0H0M-0.5S", "-00:00:00.5"),
        ("P0Y0M0DT100H0M0S", "100:00:00"),
        ("P178000000Y0M0DT0H0M0S", "178000000 years"),
        ("P-178000000Y-11M0DT0H0M0S", "-178000000 years -11 mons"),
        ("P0Y0M1DT0H0M-0.000001S", "1 day -00:00:00.000001"),
        ("P0Y0M0DT0H0M1.000001S", "00:00:01.000001"),
        ("P0Y0M0DT12H34M56.123456S", "12:34:56.123456"),
        ("P0Y-1M1DT0H0M0S", "-1 mons +1 day"),
        ("P0Y7M-3DT0H0M0.25S", "7 mons -3 days +00:00:00.25"),
        ("P0Y0M0DT2H10M0S", "02:10:00"),
        ("P0Y0M2147483647DT0H0M0S", "2147483647 days"),
        ("P0Y0M-2147483648DT0H0M0S", "-2147483648 days"),
        ("P1Y1M1DT1H1M1S", "1 year 1 mon 1 day 01:01:01"),
        ("P-1Y0M0DT1H0M0S", "-1 years +01:00:00"),
        ("P0Y-1M0DT-1H0M0S", "-1 mons -01:00:00"),
        ("P1Y-1M0DT0H0M0S", "11 mons"),  # Debezium never sends it, but months add up as in PostgreSQL
    ],
)
def test_iso_interval_to_postgres_text(iso, pg):
    assert iso_interval_to_pg(iso) == pg


def test_iso_interval_rejects_other_text():
    with pytest.raises(ValueError, match="not a Debezium interval"):
        iso_interval_to_pg("1 day")


@pytest.mark.parametrize(
    ("micros", "text"),
    [(0, "00:00:00"), (1, "00:00:00.000001"), (43_200_100_000, "12:00:00.1"), (86_399_999_999, "23:59:59.999999"),
     (86_400_000_000, "24:00:00"), (45_296_789_012, "12:34:56.789012"), (3_723_500_000, "01:02:03.5")],
)
def test_time_text(micros, text):
    assert pg_time_text(micros) == text


@pytest.mark.parametrize(
    ("schema", "lake", "fragments"),
    [
        (field("int16", source_type="INT2"), "smallint", ["try_cast((a.c) AS smallint)"]),
        (field("int64", source_type="INT8"), "bigint", ["try_cast((a.c) AS bigint)"]),
        (field("float", source_type="FLOAT4"), "float", ["try_cast((a.c) AS float)"]),
        (field("double", source_type="FLOAT8"), "double", ["try_cast((a.c) AS double)"]),
        (field("boolean", source_type="BOOL"), "boolean", ["try_cast((a.c) AS boolean)"]),
        (field("string", source_type="TEXT"), "string", ["(a.c)"]),
        (field("string", "io.debezium.data.Uuid", "UUID"), "string", ["(a.c)"]),
        (field("string", "io.debezium.data.Json", "JSONB"), "string", ["(a.c)"]),
        (field("string", "io.debezium.data.Enum", "MOOD"), "string", ["(a.c)"]),
        (field("string", source_type="NUMERIC"), "decimal(12,2)", ["RLIKE", "<= 2", "try_cast((a.c) AS decimal(12,2))"]),
        (field("string", source_type="MONEY"), "decimal(19,2)", ["try_cast((a.c) AS decimal(19,2))"]),
        (field("string", source_type="NUMERIC"), "string", ["WHEN 'NAN' THEN 'NaN'", "WHEN 'POSITIVE_INFINITY' THEN 'Infinity'", "'-Infinity'"]),
        (field("int32", "io.debezium.time.Date", "DATE"), "date", ["date_from_unix_date(try_cast((a.c) AS int))"]),
        (field("int64", "io.debezium.time.MicroTimestamp", "TIMESTAMP"), "timestamp_ntz", ["timestampadd(MICROSECOND", "TIMESTAMP_NTZ'1970-01-01 00:00:00'"]),
        (field("int64", "io.debezium.time.Timestamp", "TIMESTAMP"), "timestamp_ntz", ["timestampadd(MILLISECOND"]),
        (field("int64", "io.debezium.time.NanoTimestamp", "TIMESTAMP"), "timestamp_ntz", ["div 1000"]),
        (field("string", "io.debezium.time.ZonedTimestamp", "TIMESTAMPTZ"), "timestamp", ["try_cast((a.c) AS timestamp)"]),
        (field("int64", "io.debezium.time.MicroTime", "TIME"), "string", ["format_string('%02d:%02d:%02d'", "'0+$'"]),
        (field("int32", "io.debezium.time.Time", "TIME"), "string", ["* 1000"]),
        (field("string", "io.debezium.time.ZonedTime", "TIMETZ"), "string", ["'+00'"]),
        (field("string", "io.debezium.time.Interval", "INTERVAL"), "string", ["regexp_extract", "' year'", "' mon'", "' day'"]),
        (field("string", source_type="INET"), "string", ["(a.c)"]),  # Debezium sends inet's output form, as the bulk path reads it
        (field("string", source_type="CIDR"), "string", ["(a.c)"]),
        (field("bytes", source_type="BYTEA"), "binary", ["try_to_binary((a.c), 'base64')"]),
        (field("boolean", "io.debezium.data.Bits", "BIT"), "string", ["THEN '1'"]),
    ],
)
def test_expression_per_logical_type(schema, lake, fragments):
    expr = decode_expr(schema, lake, "a.c")
    for fragment in fragments:
        assert fragment in expr
    assert ok_expr(schema, lake, "a.c") == f"((a.c) IS NULL OR {expr} IS NOT NULL)"


def test_arrays_decode_each_element_with_its_own_mapping():
    schema = field("array", source_type="_NUMERIC", items={"type": "string", "optional": True})
    plan = decode_column(schema, "array<decimal(6,2)>", "a.c")
    assert plan.value.startswith("transform(from_json((a.c), 'array<string>'), _e -> ")
    assert "try_cast(_e AS decimal(6,2))" in plan.value
    assert "size(filter(" in plan.ok  # an element that failed to decode makes the whole value not ok
    ts = field("array", source_type="_TIMESTAMP", items={"type": "int64", "name": "io.debezium.time.MicroTimestamp"})
    assert "timestampadd(MICROSECOND, try_cast(_e AS bigint)" in decode_expr(ts, "array<timestamp_ntz>", "x")
    free = field("array", source_type="_NUMERIC", items={"type": "string"})
    assert "WHEN 'NAN'" in decode_expr(free, "array<string>", "x")  # numeric[] as text keeps PostgreSQL's NaN


def test_timetz_is_marked_lossy():
    assert decode_column(field("string", "io.debezium.time.ZonedTime", "TIMETZ"), "string", "x").lossy == TIMETZ_LOSS
    assert decode_column(field("string", source_type="TEXT"), "string", "x").lossy is None


@pytest.mark.parametrize(
    ("schema", "lake"),
    [
        (field("bytes", "org.apache.kafka.connect.data.Decimal", "NUMERIC"), "decimal(12,2)"),
        (field("struct", "io.debezium.data.VariableScaleDecimal", "NUMERIC"), "string"),
        (field("bytes", "io.debezium.data.Bits", "BIT"), "string"),
        (field("int64", "io.debezium.time.MicroTimestamp", "TIMESTAMP"), "timestamp"),
        (field("string", source_type="TEXT"), "int"),
        (field("array", source_type="_INT4", items={"type": "int32"}), "int"),
        (field("array", source_type="_INT4", items={"type": "array", "items": {"type": "int32"}}), "array<array<int>>"),
    ],
)
def test_unsupported_pairs_fail_at_plan_time(schema, lake):
    with pytest.raises(UnsupportedField):
        decode_expr(schema, lake, "x")


def test_toast_placeholders_per_field_kind():
    assert unavailable_values("string") == [UNAVAILABLE]
    assert unavailable_values("bytes") == [base64.b64encode(UNAVAILABLE.encode()).decode()]
    arrays = unavailable_values("array")
    assert '["__debezium_unavailable_value"]' in arrays and "[95,95,100,101" in arrays[2]
    assert is_unavailable_expr(field("string", source_type="TEXT"), "a.c") == "coalesce((a.c) IN ('__debezium_unavailable_value'), false)"
    assert is_unavailable_expr(field("int32", source_type="INT4"), "a.c") == "false"
    assert "'[95,95," in is_unavailable_expr(field("array", items={"type": "int32"}), "a.c")


def test_envelope_parse_plan():
    assert row_ddl(["id", "we`ird name"]) == "struct<`id`: string, `we``ird name`: string>"
    assert ident("a.b") == "`a.b`"
    ddl = envelope_ddl(["id"])
    assert ddl.startswith("struct<payload: struct<before: struct<`id`: string>, after: struct<`id`: string>, source: struct<lsn: string")
    schema = {"fields": [{"field": "before", "fields": []}, {"field": "after", "fields": [{"field": "id", "type": "int32"}]}]}
    assert field_schemas(schema) == {"id": {"field": "id", "type": "int32"}}
    with pytest.raises(ValueError, match="no 'old'"):
        field_schemas(schema, "old")
