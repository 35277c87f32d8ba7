"""The direct apply's Python decoders (lib.cdc.direct.decode) for every field encoding the Spark decoders
(lib.cdc.decode) take: each one's values, extremes and refusals, the parity of the two decoder sets over
the bulk path's lake types, the demo schema, arrays as Arrow of the lake's list types, and the TOAST
placeholder of an array column (pure: no JVM, no Kafka). tests/integration/test_cdc_decode.py holds
every decoder to the bulk values of the real connector's events, and to the Spark expressions' values."""

from __future__ import annotations

import base64
import importlib.util
import json
import math
import random
import re
import struct
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lib.bulk.direct_read import arrow_type
from lib.cdc import plan as P
from lib.cdc.decode import UnsupportedField, bits_text, decode_column
from lib.cdc.direct.decode import NotDirect, arrow_storage, decoder
from lib.cdc.direct.events import arrow_rows, plan, summarize, toasted_names
from lib.cdc.envelope import UNAVAILABLE, unavailable_values
from lib.dialects.base import Column
from lib.dialects.postgres.debezium_fields import LENGTH, SOURCE_TYPE, debezium_field
from lib.dialects.postgres.types import column_read, decimal_for_profile

FLT_MAX = struct.unpack("<f", struct.pack("<I", 0x7F7FFFFF))[0]
FLT_MIN_NORMAL = struct.unpack("<f", struct.pack("<I", 0x00800000))[0]
FLT_MIN_SUBNORMAL = struct.unpack("<f", struct.pack("<I", 1))[0]


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def f32_next(f: float, toward: float) -> float:
    """The float32 next to ``f`` in the direction of ``toward``."""
    bits = struct.unpack("<I", struct.pack("<f", f))[0]
    return struct.unpack("<f", struct.pack("<I", bits + 1 if abs(toward) > abs(f) else bits - 1))[0]


def java_float_text(f: float) -> str:
    """A shortest decimal text that reads back as the float32 ``f`` (what Java's ``Float.toString``, and
    so Debezium's JSON, writes for a ``real``; the exponent style does not matter to a JSON parser)."""
    for digits in range(1, 10):
        text = f"{f:.{digits}g}"
        try:
            if f32(float(text)) == f:
                return text
        except OverflowError:  # a short text of FLT_MAX rounds beyond it
            continue
    raise AssertionError(f)


def values(field: dict, lake: str, raws: list) -> list:
    """The raw JSON values as the direct apply hands them to delta-rs (Arrow of the lake type), as Python."""
    dec = decoder(field, lake)
    converted = [None if r is None else dec.convert(r) for r in raws]
    kind = arrow_type(lake, "UTC")
    array = pa.array(converted, arrow_storage(dec.storage)).cast(kind) if dec.storage else pa.array(converted, kind)
    assert array.type == kind
    return array.to_pylist()


def refuses(field: dict, lake: str, raw: object, what: str) -> None:
    with pytest.raises(NotDirect, match=what) as exc:
        decoder(field, lake).convert(raw)
    if isinstance(raw, str) and len(raw) > 2:
        assert raw not in str(exc.value)  # a reason names the kind of value, never the value


REAL = {"type": "float", "parameters": {SOURCE_TYPE: "FLOAT4"}}


# --- real (float32) ------------------------------------------------------------------------------------


def test_real_gives_the_exact_float32_of_debeziums_text_and_its_special_strings():
    got = values(REAL, "float", [3.4028235e38, -3.4028235e38, 1.4e-45, -1.4e-45, 1.17549435e-38, 0.1, -0.0, 0.0, 1, -16777216,
                                 "NaN", "Infinity", "-Infinity", None])
    assert got[:4] == [FLT_MAX, -FLT_MAX, FLT_MIN_SUBNORMAL, -FLT_MIN_SUBNORMAL]
    assert got[4] == FLT_MIN_NORMAL and got[5] == f32(0.1) and got[5] != 0.1
    assert math.copysign(1, got[6]) == -1 and got[6] == 0 and math.copysign(1, got[7]) == 1
    assert got[8:10] == [1.0, -16777216.0]
    assert math.isnan(got[10]) and got[11:] == [math.inf, -math.inf, None]


def test_real_round_trips_every_float32_through_its_shortest_text():
    rnd = random.Random(5)
    floats = [FLT_MAX, -FLT_MAX, FLT_MIN_SUBNORMAL, FLT_MIN_NORMAL, f32(FLT_MIN_NORMAL - FLT_MIN_SUBNORMAL), 1.0, f32(1 / 3)]
    floats += [struct.unpack("<f", struct.pack("<I", rnd.getrandbits(32)))[0] for _ in range(20000)]
    floats = [f for f in floats if math.isfinite(f)]
    convert = decoder(REAL, "float").convert
    refused = 0
    for f in floats:
        number = json.loads(java_float_text(f))
        halfway = number != f and 2 * number == f + f32_next(f, number)
        if halfway:  # a shortest text can be exactly halfway (f's mantissa is even): Python cannot tell it from a longer text
            refused += 1  # beside it, which Java would round away from f; so it is refused
            with pytest.raises(NotDirect, match="halfway"):
                convert(number)
        else:
            assert convert(number) == f, f
    assert refused < len(floats) / 100


def test_real_refuses_what_it_cannot_give_as_sparks_cast_would():
    refuses(REAL, "float", 3.5e38, "float32 in range")  # Spark: Infinity; Debezium never sends it
    refuses(REAL, "float", 1e39, "float32 in range")
    refuses(REAL, "float", 16777217, "halfway")  # exactly between two float32: the text's side decides
    refuses(REAL, "float", 1 + 2.0**-24, "halfway")
    refuses(REAL, "float", 2.0**-150, "halfway")  # half the smallest subnormal
    for raw in ("nan", "inf", "1.5", " 1.5", "", True, None.__class__, [1.0]):
        refuses(REAL, "float", raw, "float32")
    assert decoder(REAL, "float").convert(1 + 2.0**-24 + 2.0**-52) == f32(1 + 2.0**-23)  # just past halfway: rounds up
    assert decoder(REAL, "float").convert(1e-50) == 0.0  # below half the smallest subnormal: 0, as Float.parseFloat


# --- timetz, nano timestamps and times ----------------------------------------------------------------


TIMETZ = {"type": "string", "name": "io.debezium.time.ZonedTime", "parameters": {SOURCE_TYPE: "TIMETZ"}}


def test_timetz_is_the_spark_expressions_text_of_debeziums_utc_time():
    assert values(TIMETZ, "string", ["18:29:59.999999Z", "00:00:00Z", "14:00:00.000001Z", "07:04:56.500Z", "12:00:00.Z", "23:59:59.000000Z", None]) == [
        "18:29:59.999999+00", "00:00:00+00", "14:00:00.000001+00", "07:04:56.5+00", "12:00:00+00", "23:59:59+00", None]
    for raw in ("12:00:00+05:30", "12:00:00", "12:00:00Z\n", "1:00:00Z", "12:00:00.5z", 43200, True):
        refuses(TIMETZ, "string", raw, "ISO UTC time")


NANO_TS = {"type": "int64", "name": "io.debezium.time.NanoTimestamp"}
NANO_TIME = {"type": "int64", "name": "io.debezium.time.NanoTime"}


def test_nano_timestamps_are_microseconds_by_sparks_truncating_div():
    got = values(NANO_TS, "timestamp_ntz", [0, 1_999, -1_500, -999, 1_709_251_199_123_456_789, -(2**63), 2**63 - 1, None])
    assert got == [datetime(1970, 1, 1), datetime(1970, 1, 1, 0, 0, 0, 1), datetime(1969, 12, 31, 23, 59, 59, 999999),
                   datetime(1970, 1, 1), datetime(2024, 2, 29, 23, 59, 59, 123456),
                   datetime(1677, 9, 21, 0, 12, 43, 145225), datetime(2262, 4, 11, 23, 47, 16, 854775), None]
    for raw in (2**63, -(2**63) - 1, 1.5, "0", True):
        refuses(NANO_TS, "timestamp_ntz", raw, "timestamp in 0001..9999")


def test_nano_times_are_the_time_text_of_their_microseconds():
    assert values(NANO_TIME, "string", [0, 1_500, 86_400_000_000_000, 86_400_000_000_999, 45_296_789_012_345, -999]) == [
        "00:00:00", "00:00:00.000001", "24:00:00", "24:00:00", "12:34:56.789012", "00:00:00"]
    for raw in (-1_000, 86_400_000_001_000, 2**63, "5", 1.0):
        refuses(NANO_TIME, "string", raw, "time of day")
    assert values({"type": "int32", "name": "io.debezium.time.Time"}, "string", [86_400_000, 1]) == ["24:00:00", "00:00:00.001"]


# --- bit(n) -------------------------------------------------------------------------------------------


def bits(length: int, source_type: str = "BIT") -> dict:
    return {"type": "bytes", "name": "io.debezium.data.Bits", "parameters": {SOURCE_TYPE: source_type, LENGTH: str(length)}}


def test_bit_n_is_the_bulk_text_of_debeziums_little_endian_bytes():
    # the real Debezium 3.2.3 connector's values (minimal little-endian bytes, '' for zero)
    assert values(bits(8), "string", ["qg==", "AQ==", "gA==", "", None]) == ["10101010", "00000001", "10000000", "00000000", None]
    assert values(bits(12), "string", ["AQg=", "AQ==", "/w8="]) == ["100000000001", "000000000001", "111111111111"]
    assert values(bits(3), "string", ["BQ==", "BA=="]) == ["101", "100"]
    assert values(bits(71), "string", ["AQAAAAAAAABA"]) == ["1" + "0" * 69 + "1"]
    assert values(bits(8), "string", ["qgA="]) == ["10101010"]  # a zero byte more changes nothing
    # the schema block's own ``length`` parameter serves too
    assert decoder({"type": "bytes", "name": "io.debezium.data.Bits", "parameters": {SOURCE_TYPE: "BIT", "length": "4"}}, "string").convert("Dw==") == "1111"


def test_bit_n_refuses_more_bits_than_n_bad_base64_and_bit_varying():
    refuses(bits(3), "string", "CA==", "bit\\(3\\)")  # 8 needs 4 bits
    refuses(bits(8), "string", "AAE=", "bit\\(8\\)")  # 256
    for raw in ("AQ", "A Q==", "qg==\n", True, 1, ["qg=="]):
        refuses(bits(8), "string", raw, "bit\\(8\\)")
    for field in (bits(10, "VARBIT"), {"type": "bytes", "name": "io.debezium.data.Bits", "parameters": {SOURCE_TYPE: "BIT"}}):
        with pytest.raises(NotDirect, match="has no direct decoding"):
            decoder(field, "string")
        with pytest.raises(UnsupportedField):
            decode_column(field, "string", "v")
    assert values({"type": "boolean", "name": "io.debezium.data.Bits"}, "string", [True, False]) == ["1", "0"]  # bit(1), rebuilt from the catalog


def test_bit_1_as_the_connectors_schema_block_has_it_is_a_plain_boolean_of_source_type_bit():
    field = {"type": "boolean", "parameters": {SOURCE_TYPE: "BIT", LENGTH: "1"}}  # the real 3.2.3 connector's field
    assert values(field, "string", [True, False, None]) == ["1", "0", None]
    refuses(field, "string", 1, "boolean")
    assert "WHEN true THEN '1'" in decode_column(field, "string", "v").value
    with pytest.raises(NotDirect, match="has no direct decoding"):
        decoder({"type": "boolean", "parameters": {SOURCE_TYPE: "BOOL"}}, "string")
    with pytest.raises(UnsupportedField):
        decode_column({"type": "boolean", "parameters": {SOURCE_TYPE: "BOOL"}}, "string", "v")


def test_bit_text_reference_agrees_with_the_python_decoder():
    rnd = random.Random(3)
    for _ in range(2000):
        length = rnd.choice([2, 7, 8, 9, 16, 63, 64, 65, 200])
        data = rnd.getrandbits(8 * rnd.randint(0, length // 8 + 1)).to_bytes(length // 8 + 1, "little").rstrip(b"\0")
        expected = bits_text(data, length)
        raw = base64.b64encode(data).decode()
        if expected is None:
            refuses(bits(length), "string", raw, "bit")
        else:
            assert decoder(bits(length), "string").convert(raw) == expected and len(expected) == length


# --- variable-scale numerics and money ----------------------------------------------------------------


NUMERIC = {"type": "string", "parameters": {SOURCE_TYPE: "NUMERIC", LENGTH: "131089"}}
MONEY = {"type": "string", "parameters": {SOURCE_TYPE: "MONEY"}}


def test_numeric_without_precision_decodes_to_the_decimal_or_text_the_bulk_load_chose():
    assert values(NUMERIC, "decimal(24,21)", ["1.5", "-0.000000000000000000001", "123.456", "-0.000", "100", None]) == [
        Decimal("1.5"), Decimal("-1E-21"), Decimal("123.456"), Decimal("0"), Decimal("100"), None]
    assert values(NUMERIC, "decimal(38,18)", ["12345678901234567890.123456789012345678"]) == [Decimal("12345678901234567890.123456789012345678")]
    for raw in ("1.0000000000000000000001", "1234.5", "NAN", "1E+5", 1.5):
        refuses(NUMERIC, "decimal(24,21)", raw, "decimal\\(24,21\\)")
    assert values(NUMERIC, "string", ["NAN", "POSITIVE_INFINITY", "NEGATIVE_INFINITY", "12345678901234567890.123456789012345678901", "-0.10"]) == [
        "NaN", "Infinity", "-Infinity", "12345678901234567890.123456789012345678901", "-0.10"]


def test_money_is_an_exact_decimal_19_2():
    assert values(MONEY, "decimal(19,2)", ["-92233720368547758.08", "92233720368547758.07", "0.00", "1.5"]) == [
        Decimal("-92233720368547758.08"), Decimal("92233720368547758.07"), Decimal("0.00"), Decimal("1.50")]
    for raw in ("1.005", "922337203685477580.70", "$1.00", "1,000.00"):
        refuses(MONEY, "decimal(19,2)", raw, "decimal\\(19,2\\)")


# --- arrays -------------------------------------------------------------------------------------------


def array(items: dict, source_type: str) -> dict:
    return {"type": "array", "items": items, "parameters": {SOURCE_TYPE: source_type}}


ARRAYS = [  # (field, lake type, raw JSON values, expected lake values)
    (array({"type": "int16"}, "_INT2"), "array<smallint>", [[1, None, -32768, 32767], []], [[1, None, -32768, 32767], []]),
    (array({"type": "int32"}, "_INT4"), "array<int>", [[None], [2**31 - 1]], [[None], [2**31 - 1]]),
    (array({"type": "int64"}, "_INT8"), "array<bigint>", [[-(2**63), 2**63 - 1]], [[-(2**63), 2**63 - 1]]),
    (array({"type": "int64"}, "_OID"), "array<string>", [[0, 4294967295, None]], [["0", "4294967295", None]]),
    (array({"type": "float"}, "_FLOAT4"), "array<float>", [[1.5, "Infinity", "-Infinity", None, 3.4028235e38, 1.4e-45, -0.0]],
     [[1.5, math.inf, -math.inf, None, FLT_MAX, FLT_MIN_SUBNORMAL, -0.0]]),
    (array({"type": "double"}, "_FLOAT8"), "array<double>", [[1.7976931348623157e308, 5e-324, "-Infinity"]], [[1.7976931348623157e308, 5e-324, -math.inf]]),
    (array({"type": "boolean"}, "_BOOL"), "array<boolean>", [[True, False, None]], [[True, False, None]]),
    (array({"type": "string"}, "_TEXT"), "array<string>", [["a", "", None, 'q"u,o{te}']], [["a", "", None, 'q"u,o{te}']]),
    (array({"type": "string"}, "_BPCHAR"), "array<string>", [["ab ", "   "]], [["ab ", "   "]]),
    (array({"type": "int32", "name": "io.debezium.time.Date"}, "_DATE"), "array<date>", [[-719162, 2932896, None, 0], []],
     [[date(1, 1, 1), date(9999, 12, 31), None, date(1970, 1, 1)], []]),
    (array({"type": "int64", "name": "io.debezium.time.MicroTimestamp"}, "_TIMESTAMP"), "array<timestamp_ntz>",
     [[-62135596800000000, 253402300799999999, None]], [[datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999), None]]),
    (array({"type": "int64", "name": "io.debezium.time.Timestamp"}, "_TIMESTAMP"), "array<timestamp_ntz>", [[1_500]], [[datetime(1970, 1, 1, 0, 0, 1, 500000)]]),
    (array({"type": "string", "name": "io.debezium.time.ZonedTimestamp"}, "_TIMESTAMPTZ"), "array<timestamp>",
     [["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", None]], None),  # checked as instants below
    (array({"type": "string"}, "_NUMERIC"), "array<decimal(6,2)>", [["1.25", None, "-9999.99", "0"]],
     [[Decimal("1.25"), None, Decimal("-9999.99"), Decimal("0.00")]]),
    (array({"type": "string"}, "_NUMERIC"), "array<string>", [["1.5", "NAN", "POSITIVE_INFINITY", None]], [["1.5", "NaN", "Infinity", None]]),
    (array({"type": "string", "name": "io.debezium.data.Uuid"}, "_UUID"), "array<string>", [["00000000-0000-0000-0000-000000000001", None]],
     [["00000000-0000-0000-0000-000000000001", None]]),
    (array({"type": "string", "name": "io.debezium.data.Json"}, "_JSONB"), "array<string>", [['{"a": 1}', "null"]], [['{"a": 1}', "null"]]),
    (array({"type": "int64", "name": "io.debezium.time.MicroTime"}, "_TIME"), "array<string>", [[0, 86_400_000_000, 45_296_789_012, None]],
     [["00:00:00", "24:00:00", "12:34:56.789012", None]]),
    (array({"type": "string", "name": "io.debezium.time.ZonedTime"}, "_TIMETZ"), "array<string>", [["06:30:00Z", None]], [["06:30:00+00", None]]),
    (array({"type": "string", "name": "io.debezium.time.Interval"}, "_INTERVAL"), "array<string>", [["P1Y2M-3DT4H5M6.7S"]],
     [["1 year 2 mons -3 days +04:05:06.7"]]),
    (array({"type": "string"}, "_INET"), "array<string>", [["192.168.0.1", "10.0.0.0/8"]], [["192.168.0.1", "10.0.0.0/8"]]),
    (array({"type": "string", "name": "io.debezium.data.Enum"}, "_MOOD"), "array<string>", [["sad"]], [["sad"]]),
    (array({"type": "boolean", "name": "io.debezium.data.Bits"}, "_BIT"), "array<string>", [[True, False, None]], [["1", "0", None]]),
]


@pytest.mark.parametrize(("field", "lake", "raws", "expected"), ARRAYS, ids=lambda v: v["parameters"][SOURCE_TYPE] if isinstance(v, dict) else None)
def test_arrays_decode_every_element_keep_nulls_and_empty_arrays(field, lake, raws, expected):
    got = values(field, lake, [*raws, None, []])
    assert got[-2:] == [None, []]
    if expected is not None:
        assert got[:-2] == expected
    else:
        assert [[v.timestamp() if v else v for v in a] for a in got[:-2]] == [[-62135596800.0, 253402300799.999999, None]]
    spark = decode_column(field, lake, "v")  # the Spark path decodes the same field and lake type
    assert spark.value.startswith("transform(from_json((v), 'array<string>')")


def test_an_array_with_an_element_that_does_not_decode_is_refused():
    refuses(array({"type": "int16"}, "_INT2"), "array<smallint>", [1, 40000], "integer in range")
    refuses(array({"type": "string"}, "_NUMERIC"), "array<decimal(6,2)>", ["1.234"], "decimal\\(6,2\\)")
    refuses(array({"type": "float"}, "_FLOAT4"), "array<float>", [3.5e38], "float32 in range")
    refuses(array({"type": "int32"}, "_INT4"), "array<int>", [[1, 2], [3, 4]], "integer in range")  # a two-dimensional value
    for raw in ("[1]", 1, {"a": 1}, "__debezium_unavailable_value"):
        refuses(array({"type": "int32"}, "_INT4"), "array<int>", raw, "an array")


def test_arrays_without_a_direct_decoder_are_the_ones_spark_refuses_too():
    for field, lake in ((array({"type": "array", "items": {"type": "int32"}}, "_INT4"), "array<array<int>>"),  # nested
                        (array({"type": "bytes"}, "_BYTEA"), "array<string>"),  # bytea[]: the bulk text is \\x..., Debezium sends base64
                        (array({"type": "bytes", "name": "io.debezium.data.Bits"}, "_BIT"), "array<string>"),  # no element length
                        (array({"type": "int32"}, "_INT4"), "string")):
        with pytest.raises(NotDirect, match="has no direct decoding"):
            decoder(field, lake)
        with pytest.raises(UnsupportedField):
            decode_column(field, lake, "v")


# --- the two decoder sets cover the same fields -------------------------------------------------------


def pg(source_type: str, typname: str, category: str = "N", typtype: str = "b", elem: str | None = None) -> Column:
    return Column("c", source_type, True, 1, (("typname", typname), ("typtype", typtype), ("typcategory", category), ("elem_typname", elem)))


SCALARS = [
    pg("smallint", "int2"), pg("integer", "int4"), pg("bigint", "int8"), pg("oid", "oid"), pg("real", "float4"), pg("double precision", "float8"),
    pg("boolean", "bool", "B"), pg("numeric(12,2)", "numeric"), pg("numeric(38,38)", "numeric"), pg("numeric(40,2)", "numeric"),
    pg("numeric(5,-2)", "numeric"), pg("money", "money"), pg("text", "text", "S"), pg("character varying(20)", "varchar", "S"),
    pg("character(5)", "bpchar", "S"), pg("\"char\"", "char", "S"), pg("name", "name", "S"), pg("date", "date", "D"),
    pg("timestamp without time zone", "timestamp", "D"), pg("timestamp(3) without time zone", "timestamp", "D"),
    pg("timestamp(0) without time zone", "timestamp", "D"), pg("timestamp with time zone", "timestamptz", "D"),
    pg("time without time zone", "time", "D"), pg("time(0) without time zone", "time", "D"), pg("time with time zone", "timetz", "D"),
    pg("interval", "interval", "T"), pg("uuid", "uuid", "U"), pg("json", "json", "U"), pg("jsonb", "jsonb", "U"), pg("xml", "xml", "U"),
    pg("ltree", "ltree", "U"), pg("inet", "inet", "I"), pg("cidr", "cidr", "I"), pg("macaddr", "macaddr", "U"), pg("macaddr8", "macaddr8", "U"),
    pg("bytea", "bytea", "U"), pg("bit(1)", "bit", "V"), pg("bit(8)", "bit", "V"), pg("bit(70)", "bit", "V"), pg("bit varying(10)", "varbit", "V"),
    pg("bit varying", "varbit", "V"), pg("s.mood", "mood", "E", "e"), pg("int4range", "int4range", "R", "r"), pg("tsvector", "tsvector", "U"),
    pg("point", "point", "G"),
]
ARRAY_COLUMNS = [pg(f"{c.source_type}[]", "_" + c.info("typname"), "A", elem=c.info("typname")) for c in SCALARS if c.info("typtype") == "b"]


@pytest.mark.parametrize("column", SCALARS + ARRAY_COLUMNS, ids=lambda c: c.source_type)
def test_a_column_has_a_direct_decoder_exactly_when_it_has_a_spark_decoder(column):
    """For the field the stream rebuilds from the catalog and the lake type the bulk load gives the
    column (both lake types for numeric without precision), the direct path decodes whatever Spark does."""
    lakes = [column_read(column).spark_type]
    if column.info("typname") == "numeric" and "(" not in column.source_type:
        lakes = [decimal_for_profile({"max_scale": 21, "max_int_digits": 3, "specials": 0, "non_null": 5}), "string"]
    field = debezium_field(column)
    for lake in lakes:
        try:
            decode_column(field, lake, "v")
            spark = True
        except UnsupportedField:
            spark = False
        try:
            decoder(field, lake)
            direct = True
        except NotDirect:
            direct = False
        assert direct == spark, f"{column.source_type} -> {lake}: direct {direct}, Spark {spark}"
    # what neither decodes: bit varying (leading zeros lost), bytea[] and bit(n)[] (no element decoding)
    assert spark or column.info("typname") in ("varbit", "_varbit", "_bytea", "_bit"), column.source_type


# --- the demo schema ----------------------------------------------------------------------------------


def _sample_db():
    path = Path(__file__).resolve().parents[2] / "scripts" / "sample_db.py"
    spec = importlib.util.spec_from_file_location("sample_db_for_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the demo's declared types as the catalog reports them: (format_type, typname, typcategory, typtype, element typname)
_DEMO_TYPES = [
    (r"smallint", "smallint", "int2", "N"), (r"integer", "integer", "int4", "N"), (r"bigint", "bigint", "int8", "N"),
    (r"real", "real", "float4", "N"), (r"double precision", "double precision", "float8", "N"), (r"boolean", "boolean", "bool", "B"),
    (r"numeric\((\d+),(\d+)\)", "numeric({0},{1})", "numeric", "N"), (r"numeric", "numeric", "numeric", "N"), (r"money", "money", "money", "N"),
    (r"text", "text", "text", "S"), (r"varchar\((\d+)\)", "character varying({0})", "varchar", "S"), (r"char\((\d+)\)", "character({0})", "bpchar", "S"),
    (r"uuid", "uuid", "uuid", "U"), (r"date", "date", "date", "D"), (r"timestamptz", "timestamp with time zone", "timestamptz", "D"),
    (r"timestamp", "timestamp without time zone", "timestamp", "D"), (r"time", "time without time zone", "time", "D"),
    (r"interval", "interval", "interval", "T"), (r"inet", "inet", "inet", "I"), (r"json", "json", "json", "U"), (r"jsonb", "jsonb", "jsonb", "U"),
    (r"bytea", "bytea", "bytea", "U"),
]


def demo_tables() -> dict[str, tuple[list[Column], tuple[str, ...]]]:
    """scripts/sample_db.py's tables as the PostgreSQL catalog describes them (columns, primary key)."""
    ddl = _sample_db().DDL
    enums = set(re.findall(r"CREATE TYPE (\w+) AS ENUM", ddl))
    tables = {}
    for name, body in re.findall(r'CREATE TABLE ("[^"]+"|\w+) \((.*?)\n\);', ddl, re.S):
        columns, key = [], ()
        for line in body.strip().splitlines():
            line = line.strip().rstrip(",")
            if line.startswith("PRIMARY KEY"):
                key = tuple(k.strip() for k in line[line.index("(") + 1 : line.index(")")].split(","))
                continue
            if line.startswith("FOREIGN KEY"):
                continue
            match = re.match(r'("[^"]+"|\w+)\s+(.*)$', line)
            assert match, line
            column, rest = match.group(1).strip('"'), match.group(2)
            declared = re.match(r"(double precision|\w+(?:\(\d+(?:,\d+)?\))?)(\[\])?", rest)
            assert declared, line
            base, is_array = declared.group(1), bool(declared.group(2))
            if base in enums:
                info = (base, base, "E", "e")
            else:
                found = [(fmt.format(*m.groups()), typname, category) for pattern, fmt, typname, category in _DEMO_TYPES
                         if (m := re.fullmatch(pattern, base))]
                assert found, f"scripts/sample_db.py: {base} is not a known demo type (add it here)"
                info = (*found[0], "b")
            source_type, typname, category, typtype = info
            if is_array:
                source_type, typname, category, elem = f"{source_type}[]", "_" + typname, "A", typname
            else:
                elem = None
            columns.append(Column(column, source_type, True, len(columns) + 1,
                                  (("typname", typname), ("typtype", typtype), ("typcategory", category), ("elem_typname", elem))))
            if "PRIMARY KEY" in rest:
                key = (column,)
        tables[name.strip('"')] = (columns, key)
    return tables


def test_every_demo_column_type_gets_a_direct_decoder_and_every_keyed_demo_table_a_direct_plan():
    tables = demo_tables()
    assert len(tables) == len(_sample_db().TABLES)
    seen = set()
    for table, (columns, key) in tables.items():
        fields = {c.name: debezium_field(c) for c in columns}
        for wide in (False, True):  # numeric without precision: the decimal the bulk load measured, or text when too wide
            profile = {c.name: {"max_scale": 4, "max_int_digits": 40 if wide else 6, "specials": 0, "non_null": 1} for c in columns}
            lake = [(c.name, column_read(c, profile).spark_type) for c in columns]
            for (name, lake_type), column in zip(lake, columns, strict=True):
                decoder(fields[name], lake_type)  # NotDirect here would send the table to Spark
                seen.add((column.source_type, lake_type))
            spec = P.TableSpec("shop", "public", table, "/unused", key, tuple(lake), merge_by="delta-rs")
            if key:
                plan(spec, fields)
            else:
                with pytest.raises(NotDirect, match="no primary key"):  # page_views: Spark's to apply
                    plan(spec, fields)
    assert {("money", "decimal(19,2)"), ("numeric", "decimal(10,4)"), ("numeric", "string"), ("real", "float"), ("smallint[]", "array<smallint>"),
            ("text[]", "array<string>"), ("integer[]", "array<int>"), ("interval", "string"), ("time without time zone", "string"),
            ("bytea", "binary"), ("json", "string"), ("order_status", "string")} <= seen


# --- arrays through the pass and into Arrow -----------------------------------------------------------


FIELDS = {
    "id": {"type": "int32", "parameters": {SOURCE_TYPE: "INT4"}},
    "r": REAL,
    "days": array({"type": "int32", "name": "io.debezium.time.Date"}, "_DATE"),
    "stamps": array({"type": "string", "name": "io.debezium.time.ZonedTimestamp"}, "_TIMESTAMPTZ"),
    "amounts": array({"type": "string"}, "_NUMERIC"),
    "reals": array({"type": "float"}, "_FLOAT4"),
    "tags": array({"type": "string"}, "_TEXT"),
    "nums": array({"type": "int32"}, "_INT4"),
    "ids": array({"type": "string", "name": "io.debezium.data.Uuid"}, "_UUID"),
    "flags": bits(10),
    "at": TIMETZ,
}
SPEC = P.TableSpec("shop", "public", "arrays", "/unused", ("id",),
                   (("id", "int"), ("r", "float"), ("days", "array<date>"), ("stamps", "array<timestamp>"), ("amounts", "array<decimal(6,2)>"),
                    ("reals", "array<float>"), ("tags", "array<string>"), ("nums", "array<int>"), ("ids", "array<string>"), ("flags", "string"),
                    ("at", "string")),
                   snapshot_txids="100:105:", has_tombstones=False, merge_by="delta-rs")


def event(id_: int, lsn: int, op: str = "c", **after: object) -> bytes:
    source = {"version": "3.2.3.Final", "connector": "postgresql", "name": "shop", "ts_ms": 1_700_000_000_000, "snapshot": "false", "db": "shop",
              "sequence": json.dumps([str(lsn - 1), str(lsn)]), "schema": "public", "table": "arrays", "txId": 200 + lsn, "lsn": lsn, "xmin": None}
    return json.dumps({"before": None, "after": {"id": id_, **after}, "source": source, "op": op, "ts_ms": 1}).encode()


def test_array_columns_reach_arrow_as_the_lakes_list_types():
    p = plan(SPEC, FIELDS)
    batch = summarize(p, [(0, 0, event(1, 500, r="NaN", days=[-719162, None, 2932896], stamps=["2024-02-29T23:59:59.5Z", None], amounts=["1.5", None],
                                       reals=[0.1, "-Infinity", None], tags=["a", None, ""], nums=[], ids=[None], flags="Aw==", at="18:29:59.999999Z")),
                          (0, 1, event(2, 501, r=1.4e-45, days=[], stamps=None, amounts=[], reals=[], tags=[], nums=[None], ids=[], flags=""))])
    data = arrow_rows(p, batch)
    assert [(f.name, f.type) for f in data.schema][:11] == [(n, arrow_type(t, "UTC")) for n, t in SPEC.columns]
    assert data.schema.field("amounts").type == pa.list_(pa.field("element", pa.decimal128(6, 2)))
    rows = {r["id"]: r for r in data.to_pylist()}
    assert math.isnan(rows[1]["r"]) and rows[2]["r"] == FLT_MIN_SUBNORMAL
    assert rows[1]["days"] == [date(1, 1, 1), None, date(9999, 12, 31)] and rows[2]["days"] == []
    assert rows[1]["stamps"][0].isoformat() == "2024-02-29T23:59:59.500000+00:00" and rows[1]["stamps"][1] is None and rows[2]["stamps"] is None
    assert rows[1]["amounts"] == [Decimal("1.50"), None] and rows[1]["reals"] == [f32(0.1), -math.inf, None]
    assert (rows[1]["tags"], rows[1]["nums"], rows[2]["nums"], rows[1]["ids"]) == (["a", None, ""], [], [None], [None])
    assert (rows[1]["flags"], rows[2]["flags"], rows[1]["at"], rows[2]["at"]) == ("0000000011", "0000000000", "18:29:59.999999+00", None)


@pytest.mark.parametrize("form", range(4))
@pytest.mark.parametrize("column", ["tags", "nums", "ids", "amounts"])
def test_an_array_columns_unchanged_toast_placeholder_is_recognized(column, form):
    """Debezium's placeholder in an array column is a list (of the placeholder text, of its base64, of its
    bytes as numbers, of its name-based UUID; lib.cdc.envelope.unavailable_values): recognized as such in an
    update (the MERGE keeps the stored value), never a TypeError (a list in a set) or a decoded value."""
    placeholder = json.loads(unavailable_values("array")[form])
    assert UNAVAILABLE in json.dumps(placeholder) or form > 0
    p = plan(SPEC, FIELDS)
    batch = summarize(p, [(0, 0, event(1, 500, "u", **{column: placeholder}))])
    assert toasted_names(p, batch) == (column,) and batch.rows[0][[n for n, _ in SPEC.columns].index(column)] is None
    batch = summarize(p, [(0, 0, event(1, 500, "u", **{column: []}))])  # an ordinary value is not one
    assert toasted_names(p, batch) == ()


def test_a_table_with_an_array_of_a_type_spark_refuses_is_left_to_spark():
    fields = {**FIELDS, "blobs": array({"type": "bytes"}, "_BYTEA")}
    spec = replace(SPEC, columns=(*SPEC.columns, ("blobs", "array<string>")))
    with pytest.raises(NotDirect, match=r"_BYTEA.*has no direct decoding"):
        plan(spec, fields)
