"""The Oracle dialect's SQL, types and connector config (golden, no database).

Fixtures follow the vendor's documentation of the data dictionary and types:
- ALL_TAB_COLUMNS (DATA_TYPE, DATA_PRECISION, DATA_SCALE):
  https://docs.oracle.com/en/database/oracle/oracle-database/19/refrn/ALL_TAB_COLUMNS.html
- Oracle data types (NUMBER(p,s) with negative scale and s > p, FLOAT binary precision, DATE with time
  of day, TIMESTAMP WITH [LOCAL] TIME ZONE, INTERVAL, LONG, BFILE):
  https://docs.oracle.com/en/database/oracle/oracle-database/19/sqlrf/Data-Types.html
- Flashback query (AS OF SCN): https://docs.oracle.com/en/database/oracle/oracle-database/19/sqlrf/SELECT.html
- Debezium Oracle connector (LogMiner, snapshot.mode, lob.enabled, unavailable.value.placeholder,
  schema history): https://debezium.io/documentation/reference/3.2/connectors/oracle.html
"""

import pytest

from lib.dialects.base import Column, SplitSample, Table
from lib.dialects.oracle import catalog, connect, debezium, sql, types
from lib.dialects.oracle.cdc_order import event_order, scn_number
from tests.unit.dialect_sources import oracle_source

# (OWNER, TABLE_NAME, COLUMN_NAME, COLUMN_ID, NULLABLE, DATA_TYPE, DATA_TYPE_OWNER, DATA_PRECISION, DATA_SCALE, CHAR_LENGTH)
COLUMN_ROWS = [
    ("SHOP", "ORDERS", "ID", 1, "N", "NUMBER", None, 10, 0, 0),
    ("SHOP", "ORDERS", "AMOUNT", 2, "Y", "NUMBER", None, 12, 2, 0),
    ("SHOP", "ORDERS", "RATIO", 3, "Y", "NUMBER", None, None, None, 0),
    ("SHOP", "ORDERS", "Note", 4, "Y", "VARCHAR2", None, None, None, 200),
    ("SHOP", "ORDERS", "PLACED", 5, "N", "DATE", None, None, None, 0),
    ("SHOP", "ORDERS", "DOC", 6, "Y", "BFILE", None, None, None, 0),
    ("SHOP", "LEGACY", "K", 1, "N", "NUMBER", None, 5, 0, 0),
    ("SHOP", "LEGACY", "BODY", 2, "Y", "LONG", None, None, None, 0),
]
TABLE_ROWS = [("SHOP", "ORDERS", 1000, 20, 64000), ("SHOP", "LEGACY", -1, 0, 0)]
PK_ROWS = [("SHOP", "ORDERS", "ID", 1)]


def col(name, data_type, precision=None, scale=None, nullable=True, type_owner=None, char_length=None):
    info = (("data_type", data_type), ("type_owner", type_owner), ("precision", precision), ("scale", scale), ("char_length", char_length))
    return Column(name, catalog.source_type(data_type, precision, scale, char_length), nullable, 1, info)


def test_catalog_sql_reads_the_data_dictionary_for_the_listed_owners():
    assert catalog.tables_sql(["SHOP", "o'brien"]) == (
        "SELECT t.OWNER, t.TABLE_NAME, CAST(NVL(t.NUM_ROWS, -1) AS NUMBER(19)) AS NUM_ROWS, CAST(NVL(t.BLOCKS, 0) AS NUMBER(19)) AS BLOCKS, "
        "CAST(NVL(t.NUM_ROWS, 0) * NVL(t.AVG_ROW_LEN, 0) AS NUMBER(19)) AS BYTES FROM ALL_TABLES t WHERE t.OWNER IN ('SHOP', 'o''brien') "
        "AND t.NESTED = 'NO' AND t.SECONDARY = 'N' AND t.TEMPORARY = 'N' AND t.DROPPED = 'NO' AND (t.IOT_TYPE IS NULL OR t.IOT_TYPE = 'IOT') "
        "AND NOT EXISTS (SELECT 1 FROM ALL_EXTERNAL_TABLES x WHERE x.OWNER = t.OWNER AND x.TABLE_NAME = t.TABLE_NAME)"
    )
    assert catalog.columns_sql(["SHOP"]) == (
        "SELECT c.OWNER, c.TABLE_NAME, c.COLUMN_NAME, CAST(c.COLUMN_ID AS NUMBER(10)) AS COLUMN_ID, c.NULLABLE, c.DATA_TYPE, c.DATA_TYPE_OWNER, "
        "CAST(c.DATA_PRECISION AS NUMBER(10)) AS DATA_PRECISION, CAST(c.DATA_SCALE AS NUMBER(10)) AS DATA_SCALE, CAST(c.CHAR_LENGTH AS NUMBER(10)) AS CHAR_LENGTH "
        "FROM ALL_TAB_COLUMNS c WHERE c.OWNER IN ('SHOP')"
    )
    assert catalog.primary_keys_sql(["SHOP"]) == (
        "SELECT c.OWNER, c.TABLE_NAME, cc.COLUMN_NAME, CAST(cc.POSITION AS NUMBER(10)) AS POSITION FROM ALL_CONSTRAINTS c JOIN ALL_CONS_COLUMNS cc "
        "ON cc.OWNER = c.OWNER AND cc.CONSTRAINT_NAME = c.CONSTRAINT_NAME AND cc.TABLE_NAME = c.TABLE_NAME "
        "WHERE c.CONSTRAINT_TYPE = 'P' AND c.OWNER IN ('SHOP')"
    )


def test_build_tables_orders_columns_and_keys_and_keeps_unknown_row_counts():
    tables = {t.name: t for t in catalog.build_tables(TABLE_ROWS, list(reversed(COLUMN_ROWS)), PK_ROWS)}
    orders = tables["ORDERS"]
    assert [c.name for c in orders.columns] == ["ID", "AMOUNT", "RATIO", "Note", "PLACED", "DOC"]
    assert [c.source_type for c in orders.columns] == ["NUMBER(10,0)", "NUMBER(12,2)", "NUMBER", "VARCHAR2(200)", "DATE", "BFILE"]
    assert (orders.primary_key, orders.estimated_rows, orders.pages, orders.columns[0].nullable) == (("ID",), 1000, 20, False)
    assert tables["LEGACY"].estimated_rows == -1 and tables["LEGACY"].primary_key == ()


@pytest.mark.parametrize(
    ("policy", "names", "legacy_columns"),
    [("exclude", ["LEGACY", "ORDERS"], ["K"]), ("skip_table", ["ORDERS"], None), ("error", ["LEGACY", "ORDERS"], ["K", "BODY"])],
)
def test_bfile_is_left_out_and_long_follows_the_policy(policy, names, legacy_columns):
    tables, warnings = catalog.apply_column_policies(catalog.build_tables(TABLE_ROWS, COLUMN_ROWS, PK_ROWS), policy)
    by_name = {t.name: t for t in tables}
    assert sorted(by_name) == names
    assert "DOC" not in [c.name for c in by_name["ORDERS"].columns]
    assert "SHOP.ORDERS.DOC: BFILE column left out of the lake table (a pointer to a file outside the database)" in warnings
    if legacy_columns is None:
        assert "SHOP.LEGACY: skipped (LONG column BODY; long_columns: skip_table)" in warnings
    else:
        assert [c.name for c in by_name["LEGACY"].columns] == legacy_columns
    if policy == "error":
        with pytest.raises(types.UnsupportedColumn, match=r"column BODY is LONG: .* set sources.<name>.long_columns to exclude"):
            types.column_read(by_name["LEGACY"].columns[1])


# (catalog DATA_TYPE, precision, scale) -> (SELECT expression, lake type); the Oracle documentation's types
TYPE_CASES = [
    (("NUMBER", 12, 2), '"C"', "decimal(12,2)"),
    (("NUMBER", 38, 0), '"C"', "decimal(38,0)"),
    (("NUMBER", None, 0), '"C"', "decimal(38,0)"),  # INTEGER = NUMBER(*,0)
    (("NUMBER", 5, -2), 'CAST("C" AS NUMBER(7,0)) AS "C"', "decimal(7,0)"),  # NUMBER(5,-2): 1234500
    (("NUMBER", 2, 5), 'CAST("C" AS NUMBER(5,5)) AS "C"', "decimal(5,5)"),  # NUMBER(2,5): 0.00012
    (("NUMBER", 38, -5), "REGEXP_REPLACE(TO_CHAR(\"C\", 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,'''), '^(-?)\\.', '\\10.') AS \"C\"", "string"),
    (("BINARY_FLOAT", None, None), '"C"', "float"),
    (("BINARY_DOUBLE", None, None), '"C"', "double"),
    (("DATE", None, None), 'CAST("C" AS TIMESTAMP(0)) AS "C"', "timestamp_ntz"),
    (("TIMESTAMP(6)", None, 6), '"C"', "timestamp_ntz"),
    (("TIMESTAMP(9)", None, 9), "TO_CHAR(\"C\", 'YYYY-MM-DD HH24:MI:SS.FF9') AS \"C\"", "string"),
    (("TIMESTAMP(6) WITH TIME ZONE", None, 6), 'SYS_EXTRACT_UTC("C") AS "C"', "timestamp"),
    (("TIMESTAMP(3) WITH LOCAL TIME ZONE", None, 3), 'SYS_EXTRACT_UTC(CAST("C" AS TIMESTAMP WITH TIME ZONE)) AS "C"', "timestamp"),
    (("TIMESTAMP(9) WITH TIME ZONE", None, 9), "TO_CHAR(SYS_EXTRACT_UTC(\"C\"), 'YYYY-MM-DD\"T\"HH24:MI:SS.FF9\"Z\"') AS \"C\"", "string"),
    (("INTERVAL YEAR(2) TO MONTH", 2, 0), 'TO_CHAR("C") AS "C"', "string"),
    (("INTERVAL DAY(2) TO SECOND(6)", 2, 6), 'TO_CHAR("C") AS "C"', "string"),
    (("VARCHAR2", None, None), '"C"', "string"),
    (("NVARCHAR2", None, None), '"C"', "string"),
    (("CHAR", None, None), '"C"', "string"),
    (("NCHAR", None, None), '"C"', "string"),
    (("CLOB", None, None), '"C"', "string"),
    (("NCLOB", None, None), '"C"', "string"),
    (("RAW", None, None), '"C"', "binary"),
    (("BLOB", None, None), '"C"', "binary"),
    (("XMLTYPE", None, None), 'XMLSERIALIZE(CONTENT "C" AS CLOB) AS "C"', "string"),
    (("JSON", None, None), 'JSON_SERIALIZE("C" RETURNING CLOB) AS "C"', "string"),
    (("BOOLEAN", None, None), '"C"', "boolean"),
    (("ROWID", None, None), 'ROWIDTOCHAR("C") AS "C"', "string"),
    (("UROWID", None, None), 'CAST("C" AS VARCHAR2(4000)) AS "C"', "string"),
]


@pytest.mark.parametrize(("spec", "select", "lake"), TYPE_CASES, ids=[f"{c[0][0]}({c[0][1]},{c[0][2]})" for c in TYPE_CASES])
def test_every_oracle_type_reads_exactly(spec, select, lake):
    read = types.column_read(col("C", *spec))
    assert (read.select_sql, read.spark_type, read.needs_profile) == (select, lake, False)


@pytest.mark.parametrize("spec", [("NUMBER", None, None), ("FLOAT", 126, None), ("FLOAT", 63, None)])
def test_number_and_float_without_decimal_precision_are_measured_never_rounded(spec):
    c = col("C", *spec)
    assert types.column_read(c).needs_profile and types.column_read(c).spark_type == "decimal(38,18)"
    read = types.column_read(c, {"C": {"max_scale": 12, "max_int_digits": 20, "specials": 0, "non_null": 5}})
    assert (read.select_sql, read.spark_type) == ('CAST("C" AS NUMBER(32,12)) AS "C"', "decimal(32,12)")
    wide = types.column_read(c, {"C": {"max_scale": 30, "max_int_digits": 20, "specials": 0, "non_null": 5}})
    assert wide.spark_type == "string" and wide.select_sql.startswith("REGEXP_REPLACE(TO_CHAR(\"C\", 'TM9'")
    # TM9 writes E-notation only beyond 64 characters: such a value fits no decimal(38)
    assert types.column_read(c, {"C": {"max_scale": 0, "max_int_digits": 1, "specials": 1, "non_null": 5}}).spark_type == "string"


def test_profile_sql_measures_text_once_per_value_as_of_the_snapshot():
    assert types.profile_sql('"SHOP"."T"', ["AMOUNT"], " AS OF SCN 5") == (
        "SELECT MAX(CASE WHEN INSTR(CASE WHEN INSTR(t0, 'E') = 0 THEN t0 END, '.') > 0 THEN LENGTH(t0) - INSTR(t0, '.') ELSE 0 END), "
        "MAX(CASE WHEN INSTR(CASE WHEN INSTR(t0, 'E') = 0 THEN t0 END, '.') > 0 THEN INSTR(t0, '.') - 1 ELSE LENGTH(CASE WHEN INSTR(t0, 'E') = 0 THEN t0 END) END), "
        "COUNT(CASE WHEN INSTR(t0, 'E') > 0 THEN 1 END), COUNT(t0) "
        "FROM (SELECT TO_CHAR(ABS(\"AMOUNT\"), 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,''') AS t0 FROM \"SHOP\".\"T\" AS OF SCN 5)"
    )


def test_unknown_types_fail_loudly_naming_the_column():
    with pytest.raises(types.UnsupportedColumn, match="column GEO has type SDO_GEOMETRY, which the oracle dialect cannot read exactly"):
        types.column_read(col("GEO", "SDO_GEOMETRY", type_owner="MDSYS"))


def test_identifiers_are_quoted_exactly_as_the_catalog_spells_them():
    assert sql.qualified("SHOP", "Gift Cards") == '"SHOP"."Gift Cards"'
    with pytest.raises(ValueError, match="cannot contain double quotes"):
        sql.quote_ident('a"b')


ORDERS = Table(
    "SHOP",
    "ORDERS",
    (col("ID", "NUMBER", 10, 0, nullable=False), col("REGION", "VARCHAR2", nullable=False, char_length=2), col("AT", "DATE")),
    ("ID",),
    100,
    0,
)


def test_range_predicates_single_composite_nullable_and_typed_literals():
    assert sql.range_predicates(ORDERS, SplitSample(("ID",), (("1",), ("50",), ("100",), ("150",))), 3) == [
        '"ID" < 50',
        '"ID" >= 50 AND "ID" < 100',
        '"ID" >= 100',
    ]
    # Oracle has no row-value < : composite bounds are spelled out lexicographically
    assert sql.range_predicates(ORDERS, SplitSample(("REGION", "ID"), (("EU", "1"), ("EU", "9"), ("US", "3"), ("US", "7"))), 2) == [
        "(\"REGION\" < 'US' OR (\"REGION\" = 'US' AND (\"ID\" < 3)))",
        "(\"REGION\" > 'US' OR (\"REGION\" = 'US' AND (\"ID\" >= 3)))",
    ]
    assert sql.range_predicates(ORDERS, SplitSample(("AT",), (("2024-01-01 00:00:00",), ("2024-06-01 12:30:00",))), 2) == [
        "\"AT\" < TO_DATE('2024-06-01 12:30:00', 'YYYY-MM-DD HH24:MI:SS') OR \"AT\" IS NULL",
        "\"AT\" >= TO_DATE('2024-06-01 12:30:00', 'YYYY-MM-DD HH24:MI:SS')",
    ]
    with pytest.raises(ValueError, match="not a number"):
        sql.key_literal(ORDERS.columns[0], "1; DROP TABLE x")
    assert sql.key_literal(col("N", "NVARCHAR2"), "O'Brien") == "N'O''Brien'"
    assert sql.key_literal(col("T", "TIMESTAMP(6)", scale=6), "2024-01-01 00:00:00.000001000") == (
        "TO_TIMESTAMP('2024-01-01 00:00:00.000001000', 'YYYY-MM-DD HH24:MI:SS.FF9')"
    )
    assert sql.boundaries_ascending_sql(ORDERS, SplitSample(("ID",), (("1",), ("50",), ("100",), ("150",))), 3) == (
        "SELECT CASE WHEN (50 < 100) THEN 1 ELSE 0 END AS ok FROM DUAL"
    )


def test_keyless_tables_split_by_ora_hash_of_rowid():
    assert sql.physical_predicates(ORDERS, 3) == ["ORA_HASH(ROWID, 2) = 0", "ORA_HASH(ROWID, 2) = 1", "ORA_HASH(ROWID, 2) = 2"]
    assert sql.physical_predicates(ORDERS, 1) is None


def test_every_read_is_a_flashback_query_at_the_snapshot_scn():
    assert sql.select_sql(ORDERS, ['"ID"'], '"ID" < 50', "12345") == 'SELECT "ID" FROM "SHOP"."ORDERS" AS OF SCN 12345 WHERE "ID" < 50'
    assert sql.select_sql(ORDERS, ['"ID"'], "1 = 1", None) == 'SELECT "ID" FROM "SHOP"."ORDERS"'
    assert sql.count_sql(ORDERS, "7") == 'SELECT COUNT(*) AS n FROM "SHOP"."ORDERS" AS OF SCN 7'
    with pytest.raises(ValueError, match="not an Oracle SCN"):
        sql.flashback("7 OR 1=1")


def test_key_samples_carry_the_database_rank():
    assert sql.sample_sql(ORDERS, [ORDERS.columns[1], ORDERS.columns[0]], None, 1.5, 1) == (
        "SELECT \"REGION\" AS k0, TO_CHAR(\"ID\", 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,''') AS k1, "
        'ROW_NUMBER() OVER (ORDER BY "REGION", "ID") AS rn FROM "SHOP"."ORDERS" SAMPLE (1.500000)'
    )
    assert sql.sample_sql(ORDERS, [ORDERS.columns[0]], None, None, 20) == (
        "SELECT k0, rn FROM (SELECT TO_CHAR(\"ID\", 'TM9', 'NLS_NUMERIC_CHARACTERS=''.,''') AS k0, "
        'ROW_NUMBER() OVER (ORDER BY "ID") AS rn FROM "SHOP"."ORDERS") WHERE MOD(rn, 20) = 0'
    )


def test_session_is_utc_with_binary_ordering():
    assert sql.session_init_sql() == (
        "BEGIN EXECUTE IMMEDIATE 'ALTER SESSION SET TIME_ZONE = ''UTC'''; EXECUTE IMMEDIATE 'ALTER SESSION SET NLS_SORT = ''BINARY'''; "
        "EXECUTE IMMEDIATE 'ALTER SESSION SET NLS_COMP = ''BINARY'''; EXECUTE IMMEDIATE 'ALTER SESSION SET NLS_NUMERIC_CHARACTERS = ''.,'''; END;"
    )


def test_jdbc_urls_by_service_name_sid_and_descriptor_and_properties():
    assert connect.jdbc_url(oracle_source().connection) == "jdbc:oracle:thin:@//ora1.internal:1521/ORCLPDB1"
    assert connect.jdbc_url(oracle_source({"service_name": None, "sid": "ORCL", "port": 1522}).connection) == "jdbc:oracle:thin:@ora1.internal:1522:ORCL"
    desc = "(DESCRIPTION=(ADDRESS_LIST=(ADDRESS=(PROTOCOL=TCP)(HOST=rac1)(PORT=1521))(ADDRESS=(PROTOCOL=TCP)(HOST=rac2)(PORT=1521)))(CONNECT_DATA=(SERVICE_NAME=S)))"
    conn = oracle_source({"service_name": None, "host": None, "descriptor": desc}).connection
    assert connect.jdbc_url(conn) == f"jdbc:oracle:thin:@{desc}"
    assert connect.target(conn) == "descriptor (host rac1, rac2)"
    props = connect.jdbc_properties(oracle_source({"properties": {"oracle.net.ssl_server_dn_match": "true"}}).connection, 20000)
    assert props["driver"] == "oracle.jdbc.OracleDriver" and props["fetchsize"] == "20000" and props["defaultRowPrefetch"] == "20000"
    assert props["oracle.net.ssl_server_dn_match"] == "true" and props["password"] == "ora-secret-1"
    assert "ora-secret-1" not in connect.jdbc_url(oracle_source().connection)


def test_error_classification():
    assert connect.is_transient("ORA-12541: Cannot connect. No listener at host 127.0.0.1 port 1.")
    assert connect.is_transient("IO Error: The Network Adapter could not establish the connection")
    assert not connect.is_transient("ORA-01017: invalid credential or not authorized; logon denied")
    assert not connect.is_transient("ORA-01555: snapshot too old: rollback segment number 9 too small")
    assert not connect.is_transient("ORA-00942: table or view does not exist")


def test_connector_config_is_logminer_no_data_with_schema_history_and_no_password():
    src = oracle_source(tables={"SHOP.AUDIT": {"key_columns": ["EVENT_ID"]}})
    config = debezium.connector_config(src, [("SHOP", "ORDERS"), ("SHOP", "AUDIT")])
    assert config == {
        "connector.class": "io.debezium.connector.oracle.OracleConnector",
        "tasks.max": "1",
        "database.hostname": "ora1.internal",
        "database.port": "1521",
        "database.user": "dbz",
        "database.password": "${env:ORA_PASSWORD}",
        "database.dbname": "ORCLPDB1",
        "topic.prefix": "ora",
        "database.connection.adapter": "logminer",
        "log.mining.strategy": "online_catalog",
        "snapshot.mode": "no_data",
        "internal.log.mining.transaction.snapshot.boundary.mode": "all",
        "table.include.list": "SHOP\\.AUDIT,SHOP\\.ORDERS",
        "message.key.columns": "SHOP.AUDIT:EVENT_ID",
        "schema.history.internal.kafka.topic": "schema-history.ora",
        "schema.history.internal.kafka.bootstrap.servers": "kafka1:9092",
        "schema.history.internal.store.only.captured.tables.ddl": "false",
        "lob.enabled": "true",
        "unavailable.value.placeholder": "__debezium_unavailable_value",
        "skipped.operations": "none",
        "tombstones.on.delete": "true",
        "heartbeat.interval.ms": "10000",
        "provide.transaction.metadata": "false",
        "errors.max.retries": "-1",
        "retriable.restart.connector.wait.ms": "10000",
        "errors.retry.delay.max.ms": "60000",
        "topic.heartbeat.prefix": "__debezium-heartbeat",
        "decimal.handling.mode": "string",
        "time.precision.mode": "adaptive_time_microseconds",
        "interval.handling.mode": "string",
        "binary.handling.mode": "bytes",
        "column.propagate.source.type": ".*",
        "include.unknown.datatypes": "true",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
    }
    assert "ora-secret-1" not in repr(config)
    cdb = oracle_source({"service_name": None, "host": None, "descriptor": "(DESCRIPTION=(ADDRESS=(HOST=h)))"}, cdc={"topic_prefix": "ora", "database_name": "ORCLCDB", "pdb_name": "ORCLPDB1"})
    config = debezium.connector_config(cdb, [])
    assert (config["database.url"], config["database.dbname"], config["database.pdb.name"]) == ("jdbc:oracle:thin:@(DESCRIPTION=(ADDRESS=(HOST=h)))", "ORCLCDB", "ORCLPDB1")
    assert "database.hostname" not in config


def test_prepare_sql_supplemental_logging_and_grants():
    tables = catalog.build_tables(TABLE_ROWS[:1], COLUMN_ROWS[:1], PK_ROWS)
    statements = debezium.prepare_sql(oracle_source(), tables)
    assert statements[1:3] == ["ALTER DATABASE ADD SUPPLEMENTAL LOG DATA", 'ALTER TABLE "SHOP"."ORDERS" ADD SUPPLEMENTAL LOG DATA (ALL) COLUMNS']
    for grant in ('GRANT FLASHBACK ANY TABLE TO "DBZ"', 'GRANT LOGMINING TO "DBZ"', 'GRANT SELECT ON V_$LOGMNR_CONTENTS TO "DBZ"', 'GRANT EXECUTE ON DBMS_LOGMNR TO "DBZ"'):
        assert grant in statements
    assert statements[0].startswith("-- LogMiner needs ARCHIVELOG mode")
    assert any("UNDO_RETENTION" in s for s in statements)
    cdb = oracle_source(cdc={"topic_prefix": "ora", "pdb_name": "ORCLPDB1"})
    assert debezium.prepare_sql(cdb, [])[-1] == 'GRANT SET CONTAINER TO "DBZ" CONTAINER=ALL'


def test_event_order_commit_scn_then_scn_then_offset():
    # source block fields as Debezium documents them for Oracle: scn and commit_scn are strings
    a = event_order({"scn": "1000", "commit_scn": "1010"}, 7)
    b = event_order({"scn": "1005", "commit_scn": "1010"}, 3)
    c = event_order({"scn": "990", "commit_scn": "1020"}, 1)
    assert a < b < c  # same transaction by SCN; a later commit after every change of an earlier one
    assert event_order({"scn": "5", "commit_scn": "9"}, 1) < event_order({"scn": "5", "commit_scn": "9"}, 2)
    big = 2**64 - 1  # SCNs are 8 bytes since 12.2: beyond a double's exact range, inside decimal(38,0)
    assert event_order({"scn": str(big - 1), "commit_scn": str(big)}, 0)[0] == big < 10**38
    assert scn_number(None) == 0 and event_order({"scn": "5", "commit_scn": None}, 0) == (0, 5, 0)
    with pytest.raises(ValueError, match="not an Oracle SCN"):
        scn_number("12a")
