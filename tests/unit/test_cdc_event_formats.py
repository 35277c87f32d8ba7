"""How the stream reads each source's Debezium events (lib/cdc/event_format.py and lib/dialects/*/cdc_events.py):
positions and their order, the snapshot rule, decoding dispatch for every type the bulk path maps, LOB
placeholders, new columns' lake types, topics (pure). The Spark SQL of positions and values is run on
Spark in tests/integration/test_cdc_oracle_sqlserver_stream.py."""

import json
import sys
from pathlib import Path

import pytest

from lib.cdc import plan as P
from lib.cdc.decode import UnsupportedField
from lib.cdc.event_format import CHANGE, COMMIT, packed
from lib.dialects import get_dialect
from lib.dialects.oracle import cdc_events as ora
from lib.dialects.oracle.cdc_fields import debezium_field as ora_field
from lib.dialects.oracle.types import column_read as ora_read
from lib.dialects.oracle.types import fraction_digits, precision_of
from lib.dialects.postgres.cdc_events import EVENTS as PG
from lib.dialects.sqlserver import cdc_events as mss
from lib.dialects.sqlserver.cdc_fields import debezium_field as mss_field
from lib.dialects.sqlserver.cdc_order import lsn_number
from lib.dialects.sqlserver.types import column_read as mss_read

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import debezium_fixtures as fx  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "debezium"
ORDER = ("create", "update", "create_second", "delete", "pk_change", "truncate", "schema_change")


def records(kind):
    return [r for name in ORDER for r in json.loads((FIXTURES / kind / f"{name}.compact.json").read_text()) if r["value"] is not None]


@pytest.mark.parametrize("kind", ["postgres", "oracle", "sqlserver"])
def test_each_dialect_brings_its_event_format(kind):
    dialect = get_dialect(kind)
    assert dialect.cdc_events.name == kind
    assert callable(dialect.debezium_field)


def test_oracle_positions_keep_commit_scn_scn_offset_order():
    events = records("oracle")
    stored = [ora.positions(r["value"]["source"], r["offset"]) for r in events]
    orders = [get_dialect("oracle").event_order(r["value"]["source"], r["offset"]) for r in events]
    assert sorted(range(len(events)), key=lambda i: stored[i]) == sorted(range(len(events)), key=lambda i: orders[i])
    first = events[0]
    assert stored[0] == (int(first["value"]["source"]["commit_scn"]), int(first["value"]["source"]["scn"]) * 10**18 + first["offset"])
    # two changes at one SCN of one transaction: the Kafka offset orders them
    same = {"commit_scn": "900", "scn": "800"}
    assert ora.positions(same, 7) < ora.positions(same, 8)
    # a later commit wins over any SCN / offset of an earlier one
    assert ora.positions({"commit_scn": "901", "scn": "1"}, 0) > ora.positions({"commit_scn": "900", "scn": "899"}, 10**17)
    assert ora.positions({"commit_scn": str(2**64 - 1), "scn": str(2**64 - 1)}, 10**18 - 1)[1] < 10**38  # fits decimal(38,0)
    with pytest.raises(ValueError, match="out of range"):
        ora.positions(same, 10**18)


def test_sqlserver_positions_keep_commit_lsn_change_lsn_serial_order():
    events = records("sqlserver")
    stored = [mss.positions(r["value"]["source"], r["offset"]) for r in events]
    assert stored == sorted(stored) and len(set(stored)) == len(stored)
    src = events[1]["value"]["source"]
    assert stored[1] == (lsn_number(src["commit_lsn"]), lsn_number(src["change_lsn"]) * 10**13 + src["event_serial_no"])
    # an UPDATE's two rows, or a PK change's delete and insert, share change_lsn: the serial orders them
    a = {"commit_lsn": "00000027:00000760:0009", "change_lsn": "00000027:00000760:0002", "event_serial_no": 1}
    assert mss.positions(a, 0) < mss.positions({**a, "event_serial_no": 2}, 0)
    top = "ffffffff:ffffffff:ffff"
    assert mss.positions({"commit_lsn": top, "change_lsn": top, "event_serial_no": 10**13 - 1}, 0)[1] < 10**38
    with pytest.raises(ValueError, match="out of range"):
        packed(1, 10**13, mss.SERIAL_DIGITS)


def test_position_sql_per_dialect():
    commit, change = ora.EVENTS.positions_sql()
    assert "__p.source.commit_scn" in commit and "__p.source.scn" in change and "__offset" in change and "lpad" in change
    commit, change = mss.EVENTS.positions_sql()
    assert "__p.source.commit_lsn" in commit and "__p.source.change_lsn" in change and "event_serial_no" in change
    assert "conv(" in commit  # 80-bit LSN in two parts: conv() handles 64 bits at most
    # PostgreSQL: a malformed lsn, sequence or txId makes the event a dead letter (evaluated in tests/integration/test_cdc_hostile.py)
    assert all(f"__p.source.{f}" in PG.position_error_sql() for f in ("lsn", "sequence", "txId"))
    assert ora.EVENTS.position_error_sql() == f"({ora.EVENTS.positions_sql()[0]} IS NULL OR {ora.EVENTS.positions_sql()[1]} IS NULL)"


def test_snapshot_rule_per_dialect():
    # Oracle and SQL Server: the copy holds exactly the transactions committed at or before its position
    assert ora.EVENTS.visible_sql(2903413, None) == f"({COMMIT} <= 2903413)"
    assert mss.EVENTS.visible_sql(lsn_number("00000027:00000759:0003"), None) == f"({COMMIT} <= {lsn_number('00000027:00000759:0003')})"
    # PostgreSQL: by transaction visibility, or the LSN fallback (unchanged)
    assert PG.visible_sql(4242, None) == P.lsn_fallback_visible(4242) == f"({CHANGE} <= 4242)"
    assert "__txid" in PG.visible_sql(0, "100:105:101")


def test_topics_per_dialect():
    assert ora.EVENTS.topic("ora", "ORCLPDB1", "SHOP", "CUSTOMERS") == "ora.SHOP.CUSTOMERS" == records("oracle")[0]["topic"]
    assert mss.EVENTS.topic("mss", "shop", "dbo", "customers") == "mss.shop.dbo.customers" == records("sqlserver")[0]["topic"]
    assert mss.EVENTS.topic("mss", "my db", "dbo", "order lines") == "mss.my_db.dbo.order_lines"
    assert PG.topic("shop", "shop", "public", "orders") == P.table_topic("shop", "public", "orders") == "shop.public.orders"


ORACLE_TYPES = [
    fx.ora_col("I", "NUMBER", 10, 0), fx.ora_col("N", "NUMBER", 12, 2), fx.ora_col("NEG", "NUMBER", 5, -2), fx.ora_col("W", "NUMBER", 17, -2),
    fx.ora_col("INT", "NUMBER", None, 0), fx.ora_col("BF", "BINARY_FLOAT"), fx.ora_col("BD", "BINARY_DOUBLE"),
    fx.ora_col("D", "DATE"), fx.ora_col("T3", "TIMESTAMP(3)", scale=3), fx.ora_col("T6", "TIMESTAMP(6)", scale=6),
    fx.ora_col("T9", "TIMESTAMP(9)", scale=9), fx.ora_col("TZ", "TIMESTAMP(6) WITH TIME ZONE", scale=6),
    fx.ora_col("TZ9", "TIMESTAMP(9) WITH TIME ZONE", scale=9), fx.ora_col("LTZ", "TIMESTAMP(6) WITH LOCAL TIME ZONE", scale=6),
    fx.ora_col("IYM", "INTERVAL YEAR(2) TO MONTH", 2, 0), fx.ora_col("IDS", "INTERVAL DAY(2) TO SECOND(6)", 2, 6),
    fx.ora_col("V", "VARCHAR2", char_length=40), fx.ora_col("NV", "NVARCHAR2", char_length=40), fx.ora_col("C", "CHAR", char_length=3),
    fx.ora_col("CL", "CLOB"), fx.ora_col("NCL", "NCLOB"), fx.ora_col("R", "RAW", char_length=16), fx.ora_col("BL", "BLOB"),
    fx.ora_col("X", "XMLTYPE"), fx.ora_col("RI", "ROWID"),
]  # fmt: skip
SQLSERVER_TYPES = [
    fx.mss_col("b", "bit", 1, 1, 0), fx.mss_col("t", "tinyint", 1, 3, 0), fx.mss_col("s", "smallint", 2, 5, 0), fx.mss_col("i", "int", 4, 10, 0),
    fx.mss_col("bi", "bigint", 8, 19, 0), fx.mss_col("r", "real", 4, 24, 0), fx.mss_col("f", "float", 8, 53, 0),
    fx.mss_col("d", "decimal", 9, 12, 2), fx.mss_col("nu", "numeric", 17, 38, 10), fx.mss_col("m", "money", 8, 19, 4),
    fx.mss_col("sm", "smallmoney", 4, 10, 4), fx.mss_col("dt", "date", 3, 10, 0), fx.mss_col("tm", "time", 5, 16, 7),
    fx.mss_col("tm3", "time", 4, 12, 3), fx.mss_col("d1", "datetime", 8, 23, 3), fx.mss_col("sd", "smalldatetime", 4, 16, 0),
    fx.mss_col("d2", "datetime2", 8, 27, 7), fx.mss_col("d6", "datetime2", 8, 26, 6), fx.mss_col("o", "datetimeoffset", 10, 34, 7),
    fx.mss_col("u", "uniqueidentifier", 16, 0, 0), fx.mss_col("v", "varchar", 40, 0, 0), fx.mss_col("nv", "nvarchar", -1, 0, 0),
    fx.mss_col("vb", "varbinary", -1, 0, 0), fx.mss_col("rv", "timestamp", 8, 0, 0), fx.mss_col("x", "xml", -1, 0, 0),
]  # fmt: skip


@pytest.mark.parametrize("column", ORACLE_TYPES, ids=lambda c: c.source_type)
def test_every_oracle_type_decodes_to_its_bulk_lake_type(column):
    field = ora_field(column)
    lake = ora_read(column).spark_type
    decoded = ora.EVENTS.decode_column(field, lake, "raw")  # no UnsupportedField: every streamed type has an exact decoding
    assert decoded.value and decoded.ok.startswith("((raw) IS NULL OR")
    # the facts the decoders use come back from the field's parameters (compact or schema-block events alike)
    assert ora.EVENTS.lake_type(field) == lake
    again = ora.column_of(field)
    assert fraction_digits(again) == fraction_digits(column) and precision_of(again) == precision_of(column)


@pytest.mark.parametrize("column", SQLSERVER_TYPES, ids=lambda c: c.source_type)
def test_every_sqlserver_type_decodes_to_its_bulk_lake_type(column):
    field = mss_field(column)
    lake = mss_read(column).spark_type
    decoded = mss.EVENTS.decode_column(field, lake, "raw")
    assert decoded.value and decoded.ok.startswith("((raw) IS NULL OR")
    assert mss.EVENTS.lake_type(field) == lake


def test_type_specific_decoders_are_chosen():
    ids = {c.name: c for c in ORACLE_TYPES}
    assert ora.EVENTS.decode_column(ora_field(ids["IDS"]), "string", "raw").value.startswith("CASE WHEN (raw) RLIKE")  # Oracle's interval text
    assert ora.EVENTS.decode_column(ora_field(ids["NEG"]), "decimal(7,0)", "raw").value == "try_cast((raw) AS decimal(7,0))"
    assert "substr(lpad(CAST(pmod(" in ora.EVENTS.decode_column(ora_field(ids["T9"]), "string", "raw").value
    tm = {c.name: c for c in SQLSERVER_TYPES}
    assert "substr(lpad(CAST(try_cast((raw) AS bigint) % 1000000 AS string), 6, '0'), 1, 3)" in mss.EVENTS.decode_column(mss_field(tm["tm3"]), "string", "raw").value
    assert "pmod(" in mss.EVENTS.decode_column(mss_field(tm["d2"]), "timestamp_ntz", "raw").value  # floored, as the JDBC read
    with pytest.raises(UnsupportedField):  # a changed type is refused, never guessed
        ora.EVENTS.decode_column(ora_field(ids["V"]), "int", "raw")


def test_oracle_lob_placeholder_only_on_lob_columns():
    for column in ORACLE_TYPES:
        expr = ora.EVENTS.unavailable_sql(ora_field(column), "raw")
        if column.info("data_type") in ("CLOB", "NCLOB", "BLOB", "XMLTYPE"):
            expected = "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==" if column.info("data_type") == "BLOB" else "__debezium_unavailable_value"
            assert expr == f"coalesce(((raw) <=> '{expected}'), false)", column
        else:
            assert expr == "false", column


def spec_for(kind, columns, key):
    dialect = get_dialect(kind)
    lake = [(c.name, (ora_read if kind == "oracle" else mss_read)(c).spark_type) for c in columns]
    return P.TableSpec("src", "S", "T", "/lake/S/T", (key,), tuple(lake), snapshot_position=5, event_format=dialect.cdc_events)


def test_version_plan_reads_the_dialects_positions_and_values():
    spec = spec_for("oracle", fx.ORACLE_COLUMNS, "ID")
    fields = {c.name: ora_field(c) for c in fx.ORACLE_COLUMNS}
    vplan = P.version_plan(spec, fields)
    commit, change = ora.EVENTS.positions_sql()
    assert f"{commit} AS {COMMIT}" in vplan.select and f"{change} AS {CHANGE}" in vplan.select
    assert "CAST(NULL AS bigint) AS __txid" in vplan.select
    assert vplan.toastable == ("NOTES", "PHOTO")  # the LOBs only
    error = vplan.select[-1]
    assert "no oracle source position in the event, or one out of range" in error
    parse = P.parse_exprs([c.name for c in fx.ORACLE_COLUMNS], compact=True, source_ddl=spec.event_format.source_ddl)
    assert "commit_scn: string" in parse[-1] and "lsn: bigint" not in parse[-1]
    mspec = spec_for("sqlserver", fx.SQLSERVER_COLUMNS, "id")
    mplan = P.version_plan(mspec, {c.name: mss_field(c) for c in fx.SQLSERVER_COLUMNS})
    assert f"{mss.EVENTS.positions_sql()[0]} AS {COMMIT}" in mplan.select
    assert f"({COMMIT} <= 5)" == mspec.event_format.visible_sql(mspec.snapshot_position, None)


def test_postgres_spec_keeps_its_event_format_by_default():
    spec = P.TableSpec("src", "public", "t", "/lake/t", ("id",), (("id", "int"),))
    assert spec.event_format is PG


def test_status_shows_positions_in_the_sources_notation():
    from functools import partial

    from lib.status.display import cdc_position_text

    oracle, sqlserver = get_dialect("oracle"), get_dialect("sqlserver")
    commit, change = ora.positions({"commit_scn": "2903423", "scn": "2903420"}, 1)
    assert cdc_position_text(f"{commit}/{change}", oracle.position_text, partial(ora.EVENTS.change_text, position_text=oracle.position_text)) \
        == "2903423 (change 2903420 offset 1)"
    src = {"commit_lsn": "00000027:0000075a:0009", "change_lsn": "00000027:0000075a:0005", "event_serial_no": 2}
    commit, change = mss.positions(src, 0)
    assert cdc_position_text(f"{commit}/{change}", sqlserver.position_text, partial(mss.EVENTS.change_text, position_text=sqlserver.position_text)) \
        == "00000027:0000075a:0009 (change 00000027:0000075a:0005 serial 2)"
    # PostgreSQL unchanged: both positions are LSNs
    assert PG.change_text(185830920, get_dialect("postgres").position_text) == "0/B138E08"


def test_oracle_stream_catalog_leaves_out_what_the_copy_and_the_connector_leave_out():
    from lib.cdc.source_catalog import SourceCatalog
    from lib.config import parse_config
    from lib.dialects.base import Table
    from lib.dialects.oracle import OracleDialect

    class Fixture(OracleDialect):
        def discover(self, conn, schemas):  # type: ignore[override]
            return [Table("SHOP", "DOCS", (fx.ora_col("ID", "NUMBER", 10, 0), fx.ora_col("BODY", "LONG"), fx.ora_col("F", "BFILE")), ("ID",), 1, 0)]

    raw = {"sources": {"ora": {"type": "oracle", "connection": {"host": "h", "service_name": "s", "user": "u"}, "schemas": ["SHOP"],
                               "long_columns": "exclude"}}}
    fields = SourceCatalog(Fixture(), parse_config(raw, {}).source("ora"), max_attempts=1).fields("SHOP", "DOCS")
    assert list(fields) == ["ID"]  # LONG and BFILE columns are neither copied nor streamed
    raw["sources"]["ora"]["long_columns"] = "error"
    with pytest.raises(LookupError, match="does not stream LONG"):  # kept by the policy: the events cannot be decoded, loudly
        SourceCatalog(Fixture(), parse_config(raw, {}).source("ora"), max_attempts=1).fields("SHOP", "DOCS")
