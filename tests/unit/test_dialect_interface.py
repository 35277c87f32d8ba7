"""The dialect interface every source implements, the connector's start position, the config-only
include list and driver error lines (pure parts)."""

import re

import pytest

from lib.config import parse_config
from lib.debezium.include import connector_config_from_globs, glob_regex, include_regexes
from lib.debezium.start_position import offset_value, require_connect_cdc
from lib.dialects import get_dialect, jdbc
from lib.dialects.base import Column, Table
from lib.errors import ConfigError
from tests.unit.dialect_sources import oracle_source, sqlserver_source

INTERFACE = (
    "quote_ident", "jdbc_url", "jdbc_properties", "column_reads", "range_predicates", "physical_predicates", "select_sql",
    "dbtable", "position_number", "connector_config", "prepare_sql", "event_order", "discover", "discover_source",
    "count_rows", "profile_columns", "sample_split_keys", "check_ranges", "open_source_snapshot", "connector_tables",
    "cleanup_cdc", "drop_slot", "slot_info", "streamable",
)


@pytest.mark.parametrize("kind", ["postgres", "oracle", "sqlserver"])
def test_every_dialect_implements_the_interface(kind):
    dialect = get_dialect(kind)
    missing = [name for name in INTERFACE if not callable(getattr(dialect, name, None))]
    assert missing == []
    assert isinstance(dialect.catalog_via_jdbc, bool) and dialect.jdbc_driver


def test_derived_tables_for_spark_dbtable():
    assert get_dialect("postgres").dbtable("SELECT 1") == "(SELECT 1) AS q"
    assert get_dialect("oracle").dbtable("SELECT 1 FROM DUAL") == "(SELECT 1 FROM DUAL) q"  # ORA-00933 with AS
    assert get_dialect("sqlserver").dbtable("SELECT 1") == "(SELECT 1) AS q"


def test_positions_as_numbers():
    assert get_dialect("postgres").position_number("16/B374D848") == 0x16B374D848
    assert get_dialect("oracle").position_number("184467440737095516") == 184467440737095516
    assert get_dialect("sqlserver").position_number("00000027:00000758:0005") == 0x00000027000007580005


def pg_source():
    raw = {
        "sources": {
            "shop": {
                "type": "postgres",
                "connection": {"host": "h", "database": "shop", "user": "u", "password": "${PW}"},
                "schemas": ["public"],
                "cdc": {"topic_prefix": "shop", "replica_identity_full": True},
            }
        }
    }
    return parse_config(raw, {"PW": "x"}).source("shop")


def test_postgres_prepare_sql_and_event_order():
    keyed = Table("public", "orders", (Column("id", "integer", False, 1),), ("id",), 1, 0)
    keyless = Table("public", "log", (Column("line", "text", True, 1),), (), 1, 0)
    assert get_dialect("postgres").prepare_sql(pg_source(), [keyed, keyless]) == [
        'ALTER TABLE "public"."log" REPLICA IDENTITY FULL',
        'CREATE PUBLICATION "lakehouse_shop" FOR TABLE "public"."orders", "public"."log"',
    ]
    order = get_dialect("postgres").event_order
    assert order({"lsn": 100}, 5) < order({"lsn": 100}, 6) < order({"lsn": 101}, 0)


def test_offset_value_reads_the_connectors_partition():
    payload = {
        "offsets": [
            {"partition": {"server": "other"}, "offset": {"snapshot_scn": "1"}},
            {"partition": {"server": "ora"}, "offset": {"scn": "99", "snapshot_scn": "123456", "commit_scn": "123460:1:0a001b00"}},
        ]
    }
    assert offset_value(payload, "snapshot_scn", {"server": "ora"}) == "123456"
    assert offset_value(payload, "snapshot_scn", {"server": "nope"}) is None
    assert offset_value({"offsets": []}, "snapshot_scn") is None and offset_value(None, "x") is None
    mss = {"offsets": [{"partition": {"server": "mss", "database": "shop"}, "offset": {"commit_lsn": "00000027:00000758:0003", "snapshot": "INITIAL"}}]}
    assert offset_value(mss, "commit_lsn", {"server": "mss", "database": "shop"}) == "00000027:00000758:0003"


def test_oracle_and_sqlserver_handoff_need_connect_url():
    with pytest.raises(ConfigError, match=r"sources\.ora\.cdc\.connect_url: is required for a oracle source with cdc"):
        require_connect_cdc(oracle_source())
    assert require_connect_cdc(sqlserver_source(cdc={"topic_prefix": "m", "connect_url": "http://c:8083"})).connect_url == "http://c:8083"


def test_include_list_from_globs_matches_what_the_globs_select():
    assert glob_regex("ord*_?") == "ord.*_."
    src = oracle_source(include=["ORD*", "SHOP.ITEMS"], exclude=["*_TMP"])
    regex = include_regexes(src)
    assert regex == "SHOP\\.(?!(?:.*_TMP)$)(?:ORD.*|SHOP\\.ITEMS|ITEMS)"
    compiled = re.compile(regex)
    for name, kept in [("SHOP.ORDERS", True), ("SHOP.ORDERS_TMP", False), ("SHOP.ITEMS", True), ("SHOP.USERS", False), ("OTHER.ORDERS", False)]:
        assert bool(compiled.fullmatch(name)) is kept, name
    config = connector_config_from_globs(oracle_source(tables={"SHOP.AUDIT": {"key_columns": ["ID"]}}), get_dialect("oracle"))
    assert config["table.include.list"] == "SHOP\\.(?:.*)" and config["message.key.columns"] == "SHOP.AUDIT:ID"


def test_driver_errors_become_one_line_naming_the_server():
    exc = RuntimeError(
        "An error occurred while calling o52.load.\n: java.sql.SQLRecoverableException: ORA-12541: Cannot connect. No listener at host 127.0.0.1 port 1.\n\tat oracle..."
    )
    err = jdbc.source_error(exc, "oracle at 127.0.0.1:1/ORCL", lambda line: "ORA-12541" in line)
    assert str(err) == "oracle at 127.0.0.1:1/ORCL: ORA-12541: Cannot connect. No listener at host 127.0.0.1 port 1." and err.transient


def test_status_lines_of_a_connector_without_slot_show_its_offsets():
    from lib.debezium.admin import status_lines

    report = {
        "connector": "lakehouse-ora",
        "connector_state": "RUNNING",
        "tasks": ["RUNNING"],
        "slot_name": None,
        "publication": None,
        "offsets": {"offsets": [{"partition": {"server": "ora"}, "offset": {"scn": "2903410", "snapshot_scn": "2903400"}}]},
    }
    assert status_lines(report) == [
        "connector lakehouse-ora: RUNNING tasks=['RUNNING']",
        'offset {"server": "ora"}: {"scn": "2903410", "snapshot_scn": "2903400"}',
    ]


def test_cleanup_of_jdbc_dialects_touches_nothing_in_the_database():
    assert get_dialect("oracle").cleanup_cdc(oracle_source()) == []
    assert get_dialect("sqlserver").drop_slot(sqlserver_source().connection, "x") is False


class ScriptedServer:
    """Stands in for the Oracle / SQL Server that cannot run here: answers each query with rows shaped
    as the catalog views document them, and records what was asked."""

    def __init__(self, answers):
        self.answers, self.asked = answers, []

    def __call__(self, conn, query):
        self.asked.append(query)
        for marker, rows in self.answers:
            if marker in query:
                return rows
        raise AssertionError(f"unexpected query: {query[:120]}")


def scripted(kind, answers):
    dialect = get_dialect(kind)
    server = ScriptedServer(answers)
    dialect.query = server  # the database calls go through this one method
    return dialect, server


def test_jdbc_dialect_discovery_sampling_and_range_check_over_a_scripted_oracle():
    dialect, server = scripted(
        "oracle",
        [
            ("FROM ALL_TABLES", [("SHOP", "ORDERS", 100000, 50, 1)]),
            ("FROM ALL_TAB_COLUMNS", [("SHOP", "ORDERS", "ID", 1, "N", "NUMBER", None, 10, 0, 0), ("SHOP", "ORDERS", "DOC", 2, "Y", "BFILE", None, None, None, 0)]),
            ("FROM ALL_CONSTRAINTS", [("SHOP", "ORDERS", "ID", 1)]),
            ("SAMPLE (", [("30", 3), ("10", 1), ("20", 2)] * 500),  # rows come back in any order: sorted by rank
            ("CASE WHEN", [(0,)]),
        ],
    )
    (table,) = dialect.discover_source(oracle_source())
    assert [c.name for c in table.columns] == ["ID"] and table.primary_key == ("ID",)  # BFILE left out
    sample = dialect.sample_split_keys(oracle_source().connection, table, ["ID"], 5000, 100000)
    assert [r[0] for r in sample.rows[:3]] == ["10", "10", "10"] and sample.rows[-1] == ("30",)
    from lib.dialects.base import SplitSample

    with pytest.raises(ValueError, match=r"SHOP\.ORDERS: split points are not strictly ascending"):
        dialect.check_ranges(oracle_source().connection, table, SplitSample(("ID",), (("1",), ("2",), ("3",), ("4",))), 3)
    assert any("SAMPLE (5.000000)" in q for q in server.asked)


def test_sqlserver_position_and_counts_over_a_scripted_server():
    dialect, _server = scripted("sqlserver", [("fn_cdc_get_max_lsn", [("0x00000027000007580005",)]), ("COUNT_BIG", [(42,)])])
    conn = sqlserver_source().connection
    assert dialect.current_position(conn) == "00000027:00000758:0005"
    table = Table("dbo", "t", (), (), -1, 0)
    assert dialect.count_rows(conn, None, table) == 42


def test_streamable_tables_and_the_reason_for_the_others():
    keyed = Table("SHOP", "ORDERS", (Column("ID", "NUMBER(10,0)", False, 1),), ("ID",), 1, 0)
    keyless = Table("SHOP", "LOG", (Column("LINE", "VARCHAR2(100)", True, 1),), (), 1, 0)
    audit = Table("SHOP", "AUDIT", (Column("EVENT_ID", "NUMBER(10,0)", False, 1),), (), 1, 0)
    src = oracle_source(tables={"SHOP.AUDIT": {"key_columns": ["EVENT_ID"]}})
    covered, refused = get_dialect("oracle").streamable(src, [keyed, keyless, audit])
    assert [t.name for t in covered] == ["ORDERS", "AUDIT"]
    assert refused == {"SHOP.LOG": "CDC not enabled: the table has no primary key (set tables.<schema.table>.key_columns to stream it); the bulk copy is complete"}
    pg_covered, pg_refused = get_dialect("postgres").streamable(pg_source(), [keyed, keyless])
    assert len(pg_covered) == 2 and pg_refused == {}  # replica_identity_full: true in pg_source()


def test_oracle_snapshot_scn_from_either_offset_layout():
    from lib.dialects.oracle.snapshot import snapshot_scn

    part = {"server": "ora"}
    # Debezium 3.2.3: the snapshot offset carries scn = snapshot_scn = the snapshot's SCN (+ open transactions)
    v32 = {"offsets": [{"partition": part, "offset": {"scn": "2903400", "snapshot": "INITIAL", "snapshot_completed": True, "snapshot_scn": "2903400", "snapshot_pending_tx": "0a001b00c5030000:2903350"}}]}
    assert snapshot_scn(v32, part) == "2903400"
    # later versions: snapshot_commit_scn is the snapshot's SCN, snapshot_scn where mining starts
    later = {"offsets": [{"partition": part, "offset": {"scn": "2903349", "snapshot_scn": "2903349", "snapshot_commit_scn": "2903400"}}]}
    assert snapshot_scn(later, part) == "2903400"
    assert snapshot_scn({"offsets": [{"partition": part, "offset": {"scn": "2903500"}}]}, part) is None
