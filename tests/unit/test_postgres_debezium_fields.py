"""The field schemas the stream rebuilds for compact messages (pure). The integration test
tests/integration/test_cdc_decode.py compares them with the real connector's schema blocks."""

from __future__ import annotations

import pytest

from lib.cdc.plan import TableSpec, version_plan
from lib.dialects.base import Column
from lib.dialects.postgres.debezium_fields import LENGTH, SCALE, SOURCE_TYPE, debezium_field
from lib.dialects.postgres.types import column_read


def col(source_type: str, typname: str, category: str = "N", typtype: str = "b", elem: str | None = None) -> Column:
    return Column("c", source_type, True, 1, (("typname", typname), ("typtype", typtype), ("typcategory", category), ("elem_typname", elem)))


@pytest.mark.parametrize(
    ("column", "kind", "name"),
    [
        (col("smallint", "int2"), "int16", None),
        (col("integer", "int4"), "int32", None),
        (col("bigint", "int8"), "int64", None),
        (col("real", "float4"), "float", None),
        (col("double precision", "float8"), "double", None),
        (col("boolean", "bool", "B"), "boolean", None),
        (col("numeric(12,2)", "numeric"), "string", None),  # decimal.handling.mode=string
        (col("money", "money"), "string", None),
        (col("text", "text", "S"), "string", None),
        (col("character(5)", "bpchar", "S"), "string", None),
        (col("date", "date", "D"), "int32", "io.debezium.time.Date"),
        (col("timestamp without time zone", "timestamp", "D"), "int64", "io.debezium.time.MicroTimestamp"),
        (col("timestamp(3) without time zone", "timestamp", "D"), "int64", "io.debezium.time.Timestamp"),  # adaptive: ms up to 3 digits
        (col("timestamp(6) without time zone", "timestamp", "D"), "int64", "io.debezium.time.MicroTimestamp"),
        (col("timestamp with time zone", "timestamptz", "D"), "string", "io.debezium.time.ZonedTimestamp"),
        (col("time without time zone", "time", "D"), "int64", "io.debezium.time.MicroTime"),  # adaptive_time_microseconds
        (col("time with time zone", "timetz", "D"), "string", "io.debezium.time.ZonedTime"),
        (col("interval", "interval", "T"), "string", "io.debezium.time.Interval"),  # interval.handling.mode=string
        (col("uuid", "uuid", "U"), "string", "io.debezium.data.Uuid"),
        (col("jsonb", "jsonb", "U"), "string", "io.debezium.data.Json"),
        (col("xml", "xml", "U"), "string", "io.debezium.data.Xml"),
        (col("s.mood", "mood", "E", "e"), "string", "io.debezium.data.Enum"),
        (col("inet", "inet", "I"), "string", None),
        (col("bytea", "bytea", "U"), "bytes", None),
        (col("bit(1)", "bit", "V"), "boolean", "io.debezium.data.Bits"),
        (col("bit(8)", "bit", "V"), "bytes", "io.debezium.data.Bits"),
    ],
)
def test_scalar_fields_as_debezium_encodes_them_with_our_connector_settings(column, kind, name):
    field = debezium_field(column)
    assert (field["type"], field.get("name")) == (kind, name)
    assert field["parameters"][SOURCE_TYPE] == column.info("typname").upper()


def test_numeric_precision_and_scale_are_propagated_as_the_connector_does():
    assert debezium_field(col("numeric(12,2)", "numeric"))["parameters"] == {SOURCE_TYPE: "NUMERIC", LENGTH: "12", SCALE: "2"}
    # numeric without precision: the connector reports PostgreSQL's limit, so a new column of it becomes text
    assert debezium_field(col("numeric", "numeric"))["parameters"] == {SOURCE_TYPE: "NUMERIC", LENGTH: "131089", SCALE: "0"}


def test_arrays_carry_their_element_schema_and_the_array_type_name():
    field = debezium_field(col("numeric(6,2)[]", "_numeric", "A", elem="numeric"))
    assert field["type"] == "array" and field["items"] == {"type": "string"}
    assert field["parameters"] == {SOURCE_TYPE: "_NUMERIC", LENGTH: "6", SCALE: "2"}
    ts = debezium_field(col("timestamp without time zone[]", "_timestamp", "A", elem="timestamp"))
    assert ts["items"] == {"type": "int64", "name": "io.debezium.time.MicroTimestamp"}


@pytest.mark.parametrize(
    "column",
    [col("integer", "int4"), col("numeric(12,2)", "numeric"), col("money", "money"), col("timestamp(3) without time zone", "timestamp", "D"),
     col("time without time zone", "time", "D"), col("interval", "interval", "T"), col("uuid", "uuid", "U"), col("bytea", "bytea", "U"),
     col("text[]", "_text", "A", elem="text"), col("numeric(6,2)[]", "_numeric", "A", elem="numeric"), col("inet", "inet", "I")],
    ids=lambda c: c.source_type,
)
def test_every_rebuilt_field_decodes_to_the_bulk_paths_lake_type(column):
    """The rebuilt schema and the bulk path's lake type of the same column always have an exact decoding."""
    lake_type = column_read(column).spark_type
    spec = TableSpec("s", "public", "t", "/l", ("id",), (("id", "int"), ("c", lake_type)))
    plan = version_plan(spec, {"id": debezium_field(col("integer", "int4")), "c": debezium_field(column)})
    assert plan.errors == (), plan.errors
