"""Small tables read without Spark (lib/bulk/direct_read.py, lib/dialects/postgres/snapshot_reader.py):
the Arrow types Spark's toArrow gives, the rows as Arrow, and the strict PostgreSQL date/time parsers.
No JVM, no database; the integration test in test_bulk_fidelity.py compares every contract type loaded
this way with the Spark path, value by value."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from lib.bulk.direct_read import DirectReadUnsupported, arrow_schema, arrow_type, rows_to_arrow
from lib.dialects.base import ColumnRead
from lib.dialects.postgres.snapshot_reader import parse_date, parse_timestamp, parse_timestamptz, session_setup_sql


def test_arrow_types_follow_spark_to_arrow():
    assert arrow_type("smallint", "UTC") == pa.int16()
    assert arrow_type("int", "UTC") == pa.int32()
    assert arrow_type("bigint", "UTC") == pa.int64()
    assert arrow_type("float", "UTC") == pa.float32()
    assert arrow_type("double", "UTC") == pa.float64()
    assert arrow_type("string", "UTC") == pa.string()
    assert arrow_type("boolean", "UTC") == pa.bool_()
    assert arrow_type("binary", "UTC") == pa.binary()
    assert arrow_type("date", "UTC") == pa.date32()
    assert arrow_type("timestamp", "Europe/Paris") == pa.timestamp("us", tz="Europe/Paris")
    assert arrow_type("timestamp_ntz", "UTC") == pa.timestamp("us")
    assert arrow_type("decimal(38,10)", "UTC") == pa.decimal128(38, 10)
    assert arrow_type("array<decimal(6,2)>", "UTC") == pa.list_(pa.field("element", pa.decimal128(6, 2)))
    assert arrow_type("array<timestamp_ntz>", "UTC") == pa.list_(pa.field("element", pa.timestamp("us")))
    with pytest.raises(DirectReadUnsupported, match="lake type map<string,int>"):
        arrow_type("map<string,int>", "UTC")


READS = (ColumnRead("id", '"id"', "int"), ColumnRead("Amount €", '"Amount €"', "decimal(12,2)"), ColumnRead("raw", '"raw"', "binary"))


def test_schema_ends_with_the_pipeline_columns():
    schema = arrow_schema(READS, "UTC")
    assert schema.names == ["id", "Amount €", "raw", "__source_commit_pos", "__source_change_pos", "__op", "__ingested_at"]
    assert schema.field("__source_commit_pos").type == pa.decimal128(38, 0)
    assert schema.field("__ingested_at").type == pa.timestamp("us", tz="UTC")


def test_rows_become_the_arrow_table_the_spark_path_collects():
    now = datetime(2026, 11, 27, 3, 0, 0, 123456, tzinfo=UTC)
    rows = [(1, Decimal("-9999999999.99"), memoryview(b"\x00\xff")), (2, None, None)]
    table = rows_to_arrow(rows, READS, 123456789, "UTC", now)
    assert table.num_rows == 2
    assert table.column("id").to_pylist() == [1, 2]
    assert table.column("Amount €").to_pylist() == [Decimal("-9999999999.99"), None]
    assert table.column("raw").to_pylist() == [b"\x00\xff", None]
    assert table.column("__source_commit_pos").to_pylist() == [Decimal(123456789)] * 2
    assert table.column("__source_change_pos").to_pylist() == [Decimal(0)] * 2
    assert table.column("__op").to_pylist() == ["r", "r"]
    assert table.column("__ingested_at").to_pylist() == [now, now]
    assert rows_to_arrow([], READS, 1, "UTC", now).num_rows == 0


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (Decimal("NaN"), "decimal NaN has no Arrow value"),
        (Decimal("1.234"), "Rescaling Decimal value would cause data loss"),
        (Decimal("12345678901.5"), "column Amount €"),
    ],
)
def test_values_arrow_would_change_are_refused(value, why):
    with pytest.raises(DirectReadUnsupported, match=why):
        rows_to_arrow([(1, value, None)], READS, 1, "UTC")


def test_out_of_range_and_nested_values_are_refused():
    with pytest.raises(DirectReadUnsupported, match="column id"):
        rows_to_arrow([(2**31, None, None)], READS, 1, "UTC")
    arrays = (ColumnRead("a", '"a"', "array<int>"),)
    assert rows_to_arrow([([1, None, -3],)], arrays, 1, "UTC").column("a").to_pylist() == [[1, None, -3]]
    with pytest.raises(DirectReadUnsupported, match="column a"):
        rows_to_arrow([([[1, 2], [3, 4]],)], arrays, 1, "UTC")  # a 2-D PostgreSQL array


def test_dates_and_timestamps_parse_exactly():
    assert parse_date(None) is None
    assert parse_date("0001-01-01") == date(1, 1, 1)
    assert parse_date("2000-02-29") == date(2000, 2, 29)
    assert parse_timestamp("2262-04-11 23:47:16.854775") == datetime(2262, 4, 11, 23, 47, 16, 854775)
    assert parse_timestamp("1999-12-31 23:59:59.9") == datetime(1999, 12, 31, 23, 59, 59, 900000)
    assert parse_timestamp("1900-01-01 00:00:00") == datetime(1900, 1, 1)
    assert parse_timestamptz("1969-12-31 23:59:59.999999+00") == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    value = parse_timestamptz("2024-03-10 02:30:00-08")
    assert value == datetime(2024, 3, 10, 10, 30, tzinfo=UTC)
    assert value.utcoffset() == timedelta(hours=-8)
    assert parse_timestamptz("1900-01-01 00:00:00+05:53:28") == datetime(1900, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=53, seconds=28)))


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_date, "infinity"),
        (parse_date, "-infinity"),
        (parse_date, "0044-03-15 BC"),
        (parse_date, "10000-01-01"),
        (parse_timestamp, "infinity"),
        (parse_timestamp, "2000-01-01 00:00:00 BC"),
        (parse_timestamp, "2000-01-01"),
        (parse_timestamptz, "-infinity"),
        (parse_timestamptz, "2000-01-01 00:00:00"),
        (parse_timestamptz, "2000-01-01 00:00:00+00 BC"),
    ],
)
def test_values_python_cannot_hold_exactly_are_refused(parse, text):
    with pytest.raises(DirectReadUnsupported, match=repr(text).replace("+", r"\+")):
        parse(text)


def test_session_is_set_up_as_the_jdbc_driver_sets_it_up():
    assert session_setup_sql("UTC") == ["SET DateStyle = 'ISO'", "SET extra_float_digits = 3", "SET TimeZone = 'UTC'"]
    assert session_setup_sql("it's") == ["SET DateStyle = 'ISO'", "SET extra_float_digits = 3", "SET TimeZone = 'it''s'"]
