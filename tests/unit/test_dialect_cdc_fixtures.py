"""Debezium field schemas, event fixtures, ordering and the Oracle / SQL Server decoders (pure).

Field mappings: Debezium 3.2 "Data type mappings" of the Oracle connector
(https://debezium.io/documentation/reference/3.2/connectors/oracle.html#oracle-data-type-mappings) and of the
SQL Server connector (https://debezium.io/documentation/reference/3.2/connectors/sqlserver.html#sqlserver-data-types);
envelopes from the same pages' "Data change events" sections.
"""

import json
import sys
from pathlib import Path

import pytest

from lib.dialects.oracle import cdc_decode as ora_decode
from lib.dialects.oracle.cdc_fields import NotStreamed as OraNotStreamed
from lib.dialects.oracle.cdc_fields import debezium_field as ora_field
from lib.dialects.oracle.cdc_order import event_order as ora_order
from lib.dialects.sqlserver import cdc_decode as mss_decode
from lib.dialects.sqlserver.cdc_fields import NotStreamed as MssNotStreamed
from lib.dialects.sqlserver.cdc_fields import debezium_field as mss_field
from lib.dialects.sqlserver.cdc_order import event_order as mss_order

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import debezium_fixtures as fx  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "debezium"


def by_name(columns):
    return {c.name: c for c in columns}


ORA = by_name(fx.ORACLE_COLUMNS)
MSS = by_name(fx.SQLSERVER_COLUMNS)


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        # decimal.handling.mode=string: NUMBER(p,0) is a string; only negative scales use the width rule
        (fx.ora_col("ID", "NUMBER", 10, 0, nullable=False), {"type": "string"}),
        (fx.ora_col("Q", "NUMBER", 3, -1), {"type": "int16"}),  # p - s = 4 < 5
        (fx.ora_col("B", "NUMBER", 1, -1), {"type": "int8"}),  # p - s = 2 < 3
        (fx.ora_col("P", "NUMBER", 7, -2), {"type": "int32"}),  # p - s = 9 < 10
        (fx.ora_col("L", "NUMBER", 15, -3), {"type": "int64"}),  # p - s = 18 < 19
        (fx.ora_col("W", "NUMBER", 17, -2), {"type": "string"}),  # p - s = 19: a decimal -> string mode
        (fx.ora_col("A", "NUMBER", 12, 2), {"type": "string"}),
        (fx.ora_col("R", "NUMBER"), {"type": "string"}),
        (fx.ora_col("F", "FLOAT", 126), {"type": "string"}),
        (fx.ora_col("BF", "BINARY_FLOAT"), {"type": "float"}),
        (fx.ora_col("BD", "BINARY_DOUBLE"), {"type": "double"}),
        (fx.ora_col("D", "DATE"), {"type": "int64", "name": "io.debezium.time.Timestamp"}),
        (fx.ora_col("T3", "TIMESTAMP(3)", scale=3), {"type": "int64", "name": "io.debezium.time.Timestamp"}),
        (fx.ora_col("T6", "TIMESTAMP(6)", scale=6), {"type": "int64", "name": "io.debezium.time.MicroTimestamp"}),
        (fx.ora_col("T9", "TIMESTAMP(9)", scale=9), {"type": "int64", "name": "io.debezium.time.NanoTimestamp"}),
        (fx.ora_col("TZ", "TIMESTAMP(6) WITH TIME ZONE", scale=6), {"type": "string", "name": "io.debezium.time.ZonedTimestamp"}),
        (fx.ora_col("LTZ", "TIMESTAMP(6) WITH LOCAL TIME ZONE", scale=6), {"type": "string", "name": "io.debezium.time.ZonedTimestamp"}),
        (fx.ora_col("IYM", "INTERVAL YEAR(2) TO MONTH", 2, 0), {"type": "string", "name": "io.debezium.time.Interval"}),
        (fx.ora_col("IDS", "INTERVAL DAY(2) TO SECOND(6)", 2, 6), {"type": "string", "name": "io.debezium.time.Interval"}),
        (fx.ora_col("C", "CLOB"), {"type": "string"}),
        (fx.ora_col("BL", "BLOB"), {"type": "bytes"}),
        (fx.ora_col("X", "XMLTYPE"), {"type": "string", "name": "io.debezium.data.Xml"}),
        (fx.ora_col("RI", "ROWID"), {"type": "string"}),
    ],
    ids=lambda v: getattr(v, "source_type", None) or str(v),
)
def test_oracle_debezium_field(column, expected):
    field = ora_field(column)
    assert {k: field[k] for k in expected} == expected
    assert field["field"] == column.name and field["optional"] is column.nullable
    assert field["parameters"]["__debezium.source.column.type"] == column.info("data_type")


def test_oracle_types_debezium_does_not_stream():
    for kind in ("LONG", "LONG RAW", "BFILE", "UROWID"):
        with pytest.raises(OraNotStreamed, match=f"does not stream {kind}"):
            ora_field(fx.ora_col("C", kind))


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (fx.mss_col("b", "bit", 1, 1, 0), {"type": "boolean"}),
        (fx.mss_col("t", "tinyint", 1, 3, 0), {"type": "int16"}),
        (fx.mss_col("i", "int", 4, 10, 0), {"type": "int32"}),
        (fx.mss_col("r", "real", 4, 24, 0), {"type": "float"}),
        (fx.mss_col("f", "float", 8, 53, 0), {"type": "double"}),
        (fx.mss_col("m", "money", 8, 19, 4), {"type": "string"}),
        (fx.mss_col("d", "decimal", 9, 12, 2), {"type": "string", "parameters": {"__debezium.source.column.type": "DECIMAL", "__debezium.source.column.name": "d", "__debezium.source.column.length": "12", "__debezium.source.column.scale": "2"}}),
        (fx.mss_col("dt", "date", 3, 10, 0), {"type": "int32", "name": "io.debezium.time.Date"}),
        (fx.mss_col("tm", "time", 5, 16, 7), {"type": "int64", "name": "io.debezium.time.MicroTime"}),
        (fx.mss_col("d1", "datetime", 8, 23, 3), {"type": "int64", "name": "io.debezium.time.Timestamp"}),
        (fx.mss_col("d2", "datetime2", 8, 27, 7), {"type": "int64", "name": "io.debezium.time.NanoTimestamp"}),
        (fx.mss_col("d6", "datetime2", 8, 26, 6), {"type": "int64", "name": "io.debezium.time.MicroTimestamp"}),
        (fx.mss_col("o", "datetimeoffset", 10, 34, 7), {"type": "string", "name": "io.debezium.time.ZonedTimestamp"}),
        (fx.mss_col("u", "uniqueidentifier", 16, 0, 0), {"type": "string"}),
        (fx.mss_col("v", "varbinary", -1, 0, 0), {"type": "bytes"}),
        (fx.mss_col("rv", "timestamp", 8, 0, 0), {"type": "bytes"}),
        (fx.mss_col("x", "xml", -1, 0, 0), {"type": "string", "name": "io.debezium.data.Xml"}),
    ],
    ids=lambda v: getattr(v, "source_type", None) or str(v),
)
def test_sqlserver_debezium_field(column, expected):
    field = mss_field(column)
    assert {k: field[k] for k in expected} == expected


def test_sqlserver_types_debezium_does_not_stream():
    for kind in ("hierarchyid", "geometry", "geography", "sql_variant"):
        with pytest.raises(MssNotStreamed, match=f"does not stream {kind}"):
            mss_field(fx.mss_col("c", kind, -1, 0, 0))


def test_fixture_files_are_the_generators_output():
    for kind, built in fx.build().items():
        for name, records in built.items():
            path = FIXTURES / kind / f"{name}.json"
            if not path.exists():
                assert kind == "sqlserver" and name == "lob_placeholder"
                continue
            assert json.loads(path.read_text()) == json.loads(json.dumps(records)), path
            assert json.loads((FIXTURES / kind / f"{name}.compact.json").read_text()) == json.loads(json.dumps(fx.compact(records)))


def load(kind, name, compact=False):
    return json.loads((FIXTURES / kind / f"{name}{'.compact' if compact else ''}.json").read_text())


@pytest.mark.parametrize("kind", ["oracle", "sqlserver"])
def test_fixture_envelopes(kind):
    (create,) = load(kind, "create", compact=True)
    assert create["value"]["op"] == "c" and create["value"]["before"] is None
    delete = load(kind, "delete", compact=True)
    assert [r["value"] and r["value"]["op"] for r in delete] == ["d", None]  # the delete, then its tombstone
    pk = load(kind, "pk_change", compact=True)
    assert [r["value"] and r["value"]["op"] for r in pk] == ["d", None, "c"]
    assert "__debezium.newkey" in pk[0]["headers"] and "__debezium.oldkey" in pk[2]["headers"]
    (truncate,) = load(kind, "truncate", compact=True)
    assert truncate["value"]["op"] == "t" and truncate["key"] is None
    (schema_change,) = load(kind, "schema_change")
    after_fields = [f["field"] for f in schema_change["value"]["schema"]["fields"][1]["fields"]]
    assert after_fields[-1] == ("TIER" if kind == "oracle" else "tier")
    # with schemas: every after field carries its schema; compact: the same payload without it
    (full,) = load(kind, "create")
    assert full["value"]["payload"] == create["value"]


def test_event_order_of_the_fixtures_follows_the_file_order():
    for kind, order in (("oracle", ora_order), ("sqlserver", mss_order)):
        records = [r for name in ("create", "update", "create_second", "delete", "pk_change", "truncate", "schema_change") for r in load(kind, name, compact=True)]
        keys = [order(r["value"]["source"], r["offset"]) for r in records if r["value"] is not None]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_lob_placeholders_in_the_oracle_update():
    (update,) = load("oracle", "lob_placeholder", compact=True)
    after = update["value"]["after"]
    assert after["NOTES"] == "__debezium_unavailable_value"
    assert after["PHOTO"] == ora_decode.UNAVAILABLE_BASE64 == "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="


def test_oracle_decoders_reproduce_the_bulk_values():
    expected = fx.EXPECTED["oracle"]
    (update,) = load("oracle", "update", compact=True)
    after = update["value"]["after"]
    assert ora_decode.interval_text(after["TRIAL"], False, 2, 6) == expected["after_update_row_1"]["TRIAL"]
    (second,) = load("oracle", "create_second", compact=True)
    assert ora_decode.interval_text(second["value"]["after"]["TRIAL"], False, 2, 6) == expected["row_2_interval"]
    assert ora_decode.interval_text("P2Y3M0DT0H0M0S", True, 2, 0) == "+02-03"
    assert ora_decode.interval_text("P-2Y-3M0DT0H0M0S", True, 4, 0) == "-0002-03"
    assert ora_decode.interval_text("P0Y0M0DT0H0M-0.25S", False, 2, 3) == "-00 00:00:00.250"
    assert ora_decode.interval_text("P0Y0M1DT2H3M4S", False, 3, 0) == "+001 02:03:04"
    assert ora_decode.nano_timestamp_text(1709288130123456789, 9) == "2024-03-01 10:15:30.123456789"
    assert ora_decode.nano_timestamp_text(1709288130123456789, 7) == "2024-03-01 10:15:30.1234567"
    assert ora_decode.nano_timestamp_text(-1, 9) == "1969-12-31 23:59:59.999999999"  # floored, as TO_CHAR shows it
    assert ora_decode.zoned_utc_text("2024-03-01T10:15:30.123456789+02:00", 9) == "2024-03-01T08:15:30.123456789Z"
    assert ora_decode.zoned_utc_text("2024-03-01T00:15:30Z", 7) == "2024-03-01T00:15:30.0000000Z"
    assert ora_decode.zoned_utc_text("2024-03-01T00:15:30.5-05:30", 8) == "2024-03-01T05:45:30.50000000Z"
    with pytest.raises(ValueError, match="not a Debezium interval"):
        ora_decode.interval_text("1 day", False, 2, 6)


def test_sqlserver_decoders_reproduce_the_bulk_values():
    (second,) = load("sqlserver", "create_second", compact=True)
    assert mss_decode.time_text(second["value"]["after"]["opens"], 7) == fx.EXPECTED["sqlserver"]["row_2_opens"]
    assert mss_decode.time_text(34200000000, 7) == "09:30:00.000000"  # zeros kept, as CONVERT writes them
    assert mss_decode.time_text(34200000000, 0) == "09:30:00"
    assert mss_decode.time_text(45296789012, 3) == "12:34:56.789"
    assert mss_decode.nano_timestamp_micros(1709288130123456700) == 1709288130123456
    assert mss_decode.nano_timestamp_micros(-100) == -1  # floored like the JDBC path, not truncated to 0


def test_decode_column_dispatch_and_fallback():
    neg = fx.ora_col("NEG", "NUMBER", 5, -2)  # an int32 in the event, decimal(7,0) in the lake
    assert ora_decode.decode_column(ora_field(neg), "decimal(7,0)", "raw", neg).value == "try_cast((raw) AS decimal(7,0))"
    # NUMBER(10,0) arrives as a string: lib.cdc.decode's exact decimal
    assert "decimal(10,0)" in ora_decode.decode_column(ora_field(ORA["ID"]), "decimal(10,0)", "raw", ORA["ID"]).value
    # a plain string column goes to lib.cdc.decode unchanged
    assert ora_decode.decode_column(ora_field(ORA["NAME"]), "string", "raw", ORA["NAME"]).value == "(raw)"
    assert ora_decode.is_unavailable_sql("raw", ora_field(ORA["PHOTO"])) == "((raw) <=> 'X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==')"
    assert mss_decode.decode_column(mss_field(MSS["opens"]), "string", "raw", MSS["opens"]).value.startswith("CASE WHEN try_cast((raw) AS bigint)")
    assert mss_decode.decode_column(mss_field(MSS["small"]), "smallint", "raw", MSS["small"]).value == "try_cast((raw) AS smallint)"
