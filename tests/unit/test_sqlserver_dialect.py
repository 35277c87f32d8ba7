"""The SQL Server dialect's SQL, types and connector config (golden, no database).

Fixtures follow the vendor's documentation:
- sys.columns (max_length in bytes, -1 for (max); precision; scale):
  https://learn.microsoft.com/en-us/sql/relational-databases/system-catalog-views/sys-columns-transact-sql
- T-SQL data types (datetime2/time 100 ns, datetimeoffset, money, tinyint 0..255, rowversion, CLR types):
  https://learn.microsoft.com/en-us/sql/t-sql/data-types/data-types-transact-sql
- CAST and CONVERT styles (121 = ODBC canonical with fractions; 1 = hex binary):
  https://learn.microsoft.com/en-us/sql/t-sql/functions/cast-and-convert-transact-sql
- CDC enablement (sys.sp_cdc_enable_db, sys.sp_cdc_enable_table, sys.fn_cdc_get_max_lsn):
  https://learn.microsoft.com/en-us/sql/relational-databases/track-changes/enable-and-disable-change-data-capture-sql-server
- Debezium SQL Server connector (snapshot.mode, database.names, offsets: commit_lsn, change_lsn, event_serial_no):
  https://debezium.io/documentation/reference/3.2/connectors/sqlserver.html
"""

import pytest

from lib.dialects.base import Column, SplitSample, Table
from lib.dialects.sqlserver import catalog, connect, debezium, sql, types
from lib.dialects.sqlserver.cdc_order import event_order, lsn_number, lsn_text
from lib.dialects.sqlserver.snapshot import canonical_lsn
from tests.unit.dialect_sources import sqlserver_source


def col(name, base, max_length=None, precision=None, scale=None, nullable=False):
    info = (("base_type", base), ("max_length", max_length), ("precision", precision), ("scale", scale))
    return Column(name, catalog.source_type(base, max_length, precision, scale), nullable, 1, info)


ITEMS = Table(
    "dbo",
    "Order Items]",
    (col("id", "bigint", 8, 19, 0), col("sku", "nvarchar", 80), col("at", "datetime2", 8, 27, 7, nullable=True), col("code", "varchar", 10)),
    ("id",),
    100,
    0,
)


def test_brackets_quote_every_identifier():
    assert sql.qualified("dbo", "Order Items]") == "[dbo].[Order Items]]]"
    assert sql.quote_literal("O'Brien") == "N'O''Brien'"


def test_catalog_sql():
    assert catalog.tables_sql(["dbo", "sales"]) == (
        "SELECT s.name AS schema_name, t.name AS table_name, (SELECT SUM(p.rows) FROM sys.partitions p WHERE p.object_id = t.object_id "
        "AND p.index_id IN (0, 1)) AS row_count, (SELECT SUM(a.total_pages) FROM sys.partitions p JOIN sys.allocation_units a ON "
        "a.container_id = p.partition_id WHERE p.object_id = t.object_id) AS pages FROM sys.tables t JOIN sys.schemas s ON "
        "s.schema_id = t.schema_id WHERE t.is_ms_shipped = 0 AND s.name IN (N'dbo', N'sales')"
    )
    assert catalog.columns_sql(["dbo"]) == (
        "SELECT s.name AS schema_name, t.name AS table_name, c.name AS column_name, c.column_id, c.is_nullable, CASE WHEN "
        "ty.is_user_defined = 0 OR ty.is_assembly_type = 1 THEN ty.name ELSE TYPE_NAME(c.system_type_id) END AS base_type, "
        "c.max_length, c.precision, c.scale, c.is_computed FROM sys.columns c JOIN sys.tables t ON t.object_id = c.object_id "
        "JOIN sys.schemas s ON s.schema_id = t.schema_id JOIN sys.types ty ON ty.user_type_id = c.user_type_id "
        "WHERE t.is_ms_shipped = 0 AND s.name IN (N'dbo')"
    )
    assert catalog.primary_keys_sql(["dbo"]) == (
        "SELECT s.name AS schema_name, t.name AS table_name, c.name AS column_name, ic.key_ordinal FROM sys.indexes i "
        "JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id JOIN sys.columns c ON "
        "c.object_id = ic.object_id AND c.column_id = ic.column_id JOIN sys.tables t ON t.object_id = i.object_id "
        "JOIN sys.schemas s ON s.schema_id = t.schema_id WHERE i.is_primary_key = 1 AND s.name IN (N'dbo')"
    )


def test_build_tables_from_catalog_rows():
    columns = [
        ("dbo", "orders", "note", 3, True, "nvarchar", -1, 0, 0, False),
        ("dbo", "orders", "id", 1, False, "int", 4, 10, 0, False),
        ("dbo", "orders", "amount", 2, True, "decimal", 9, 12, 2, False),
        ("dbo", "orders", "region", 4, False, "nchar", 4, 0, 0, False),
        ("dbo", "orders", "seen", 5, True, "datetimeoffset", 10, 34, 7, False),
        ("dbo", "orders", "ratio", 6, True, "float", 4, 24, 0, False),
    ]
    tables = catalog.build_tables([("dbo", "orders", 1200, 16)], columns, [("dbo", "orders", "region", 2), ("dbo", "orders", "id", 1)])
    (orders,) = tables
    assert [c.source_type for c in orders.columns] == ["int", "decimal(12,2)", "nvarchar(max)", "nchar(2)", "datetimeoffset(7)", "real"]
    assert (orders.primary_key, orders.estimated_rows, orders.size_bytes) == (("id", "region"), 1200, 16 * 8192)


# (base type, max_length, precision, scale) -> (SELECT expression, lake type), per the T-SQL data types page
TYPE_CASES = [
    (("bit", 1, 1, 0), "[c]", "boolean"),
    (("tinyint", 1, 3, 0), "CAST([c] AS smallint) AS [c]", "smallint"),
    (("smallint", 2, 5, 0), "[c]", "smallint"),
    (("int", 4, 10, 0), "[c]", "int"),
    (("bigint", 8, 19, 0), "[c]", "bigint"),
    (("real", 4, 24, 0), "[c]", "float"),
    (("float", 8, 53, 0), "[c]", "double"),
    (("float", 4, 24, 0), "[c]", "float"),
    (("decimal", 9, 12, 2), "[c]", "decimal(12,2)"),
    (("numeric", 17, 38, 10), "[c]", "decimal(38,10)"),
    (("money", 8, 19, 4), "CAST([c] AS decimal(19,4)) AS [c]", "decimal(19,4)"),
    (("smallmoney", 4, 10, 4), "CAST([c] AS decimal(10,4)) AS [c]", "decimal(10,4)"),
    (("char", 10, 0, 0), "[c]", "string"),
    (("varchar", -1, 0, 0), "[c]", "string"),
    (("nvarchar", 80, 0, 0), "[c]", "string"),
    (("nchar", 20, 0, 0), "[c]", "string"),
    (("text", 16, 0, 0), "CAST([c] AS varchar(max)) AS [c]", "string"),
    (("ntext", 16, 0, 0), "CAST([c] AS nvarchar(max)) AS [c]", "string"),
    (("date", 3, 10, 0), "[c]", "date"),
    (("datetime", 8, 23, 3), "[c]", "timestamp_ntz"),
    (("smalldatetime", 4, 16, 0), "[c]", "timestamp_ntz"),
    (("datetime2", 8, 27, 7), "[c]", "timestamp_ntz"),
    (("datetimeoffset", 10, 34, 7), "CAST(SWITCHOFFSET([c], '+00:00') AS datetime2(7)) AS [c]", "timestamp"),
    (("time", 5, 16, 7), "LEFT(CONVERT(varchar(16), [c]), 15) AS [c]", "string"),
    (("time", 5, 12, 3), "LEFT(CONVERT(varchar(16), [c]), 12) AS [c]", "string"),
    (("time", 3, 8, 0), "LEFT(CONVERT(varchar(16), [c]), 8) AS [c]", "string"),
    (("uniqueidentifier", 16, 0, 0), "CONVERT(char(36), [c]) AS [c]", "string"),
    (("binary", 16, 0, 0), "[c]", "binary"),
    (("varbinary", -1, 0, 0), "[c]", "binary"),
    (("image", 16, 0, 0), "CAST([c] AS varbinary(max)) AS [c]", "binary"),
    (("timestamp", 8, 0, 0), "[c]", "binary"),
    (("xml", -1, 0, 0), "CAST([c] AS nvarchar(max)) AS [c]", "string"),
    (("hierarchyid", 892, 0, 0), "[c].ToString() AS [c]", "string"),
    (("geometry", -1, 0, 0), "[c].ToString() AS [c]", "string"),
    (("geography", -1, 0, 0), "[c].ToString() AS [c]", "string"),
    (("sql_variant", 8016, 0, 0), "CAST([c] AS nvarchar(4000)) AS [c]", "string"),
]


@pytest.mark.parametrize(("spec", "select", "lake"), TYPE_CASES, ids=[f"{c[0][0]}({c[0][2]},{c[0][3]})" for c in TYPE_CASES])
def test_every_sqlserver_type_reads_exactly(spec, select, lake):
    read = types.column_read(col("c", *spec))
    assert (read.select_sql, read.spark_type, read.needs_profile) == (select, lake, False)


def test_unknown_types_fail_loudly():
    with pytest.raises(types.UnsupportedColumn, match="column c has type vector, which the sqlserver dialect cannot read exactly"):
        types.column_read(col("c", "vector", 8000, 0, 0))


def test_range_predicates_with_typed_literals_and_composite_keys():
    assert sql.range_predicates(ITEMS, SplitSample(("id",), (("1",), ("50",), ("100",), ("150",))), 3) == [
        "[id] < CONVERT(bigint, N'50')",
        "[id] >= CONVERT(bigint, N'50') AND [id] < CONVERT(bigint, N'100')",
        "[id] >= CONVERT(bigint, N'100')",
    ]
    assert sql.range_predicates(ITEMS, SplitSample(("sku", "id"), (("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"))), 2) == [
        "([sku] < N'c' OR ([sku] = N'c' AND ([id] < CONVERT(bigint, N'3'))))",
        "([sku] > N'c' OR ([sku] = N'c' AND ([id] >= CONVERT(bigint, N'3'))))",
    ]
    assert sql.range_predicates(ITEMS, SplitSample(("at",), (("2024-01-01 00:00:00.0000000",), ("2024-06-01 00:00:00.1234567",))), 2) == [
        "[at] < CONVERT(datetime2(7), N'2024-06-01 00:00:00.1234567', 121) OR [at] IS NULL",
        "[at] >= CONVERT(datetime2(7), N'2024-06-01 00:00:00.1234567', 121)",
    ]
    assert sql.key_literal(ITEMS.column("code"), "x'y") == "'x''y'"  # varchar: no N prefix, the column's code page
    assert sql.key_literal(col("g", "uniqueidentifier", 16), "6F9619FF-8B86-D011-B42D-00C04FC964FF") == (
        "CONVERT(uniqueidentifier, N'6F9619FF-8B86-D011-B42D-00C04FC964FF')"
    )
    assert sql.boundaries_ascending_sql(ITEMS, SplitSample(("id",), (("1",), ("50",), ("100",), ("150",))), 3) == (
        "SELECT CASE WHEN (CONVERT(bigint, N'50') < CONVERT(bigint, N'100')) THEN 1 ELSE 0 END AS ok"
    )


def test_keyless_tables_split_by_a_normalised_hash_bucket():
    assert sql.physical_predicates(ITEMS, 3) == [f"((CAST(BINARY_CHECKSUM(*) AS bigint) % 3) + 3) % 3 = {i}" for i in range(3)]


def test_select_count_and_samples():
    assert sql.select_sql(ITEMS, ["[id]"], "1 = 1") == "SELECT [id] FROM [dbo].[Order Items]]]"
    assert sql.count_sql(ITEMS) == "SELECT COUNT_BIG(*) AS n FROM [dbo].[Order Items]]]"
    assert sql.sample_sql(ITEMS, [ITEMS.column("id")], 2.5, 1) == (
        "SELECT CONVERT(varchar(64), [id]) AS k0, ROW_NUMBER() OVER (ORDER BY [id]) AS rn FROM [dbo].[Order Items]]] "
        "WHERE RAND(CHECKSUM(NEWID())) * 100 < 2.500000"
    )
    assert sql.sample_sql(ITEMS, [ITEMS.column("id")], None, 10) == (
        "SELECT s.k0, s.rn FROM (SELECT CONVERT(varchar(64), [id]) AS k0, ROW_NUMBER() OVER (ORDER BY [id]) AS rn "
        "FROM [dbo].[Order Items]]]) AS s WHERE s.rn % 10 = 0"
    )
    assert sql.session_init_sql("read_committed") == "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; SET DATEFORMAT ymd; SET LOCK_TIMEOUT 60000"
    assert sql.session_init_sql("snapshot").startswith("SET TRANSACTION ISOLATION LEVEL SNAPSHOT;")


def test_jdbc_url_encrypt_trust_instance_and_properties():
    assert connect.jdbc_url(sqlserver_source().connection) == (
        "jdbc:sqlserver://mss1.internal:1433;databaseName={shop};encrypt=true;trustServerCertificate=false;applicationName=lakehouse-ingest;loginTimeout=10"
    )
    conn = sqlserver_source({"instance": "SQLEXPRESS", "encrypt": False, "trust_server_certificate": True}).connection
    assert connect.jdbc_url(conn).startswith("jdbc:sqlserver://mss1.internal\\SQLEXPRESS;databaseName={shop};encrypt=false;trustServerCertificate=true;")
    assert connect.jdbc_url(sqlserver_source({"instance": "I", "port": 1500}).connection).startswith("jdbc:sqlserver://mss1.internal\\I:1500;")
    assert connect.target(conn) == "mss1.internal\\SQLEXPRESS/shop"
    props = connect.jdbc_properties(sqlserver_source().connection, 20000)
    assert (props["driver"], props["fetchsize"], props["responseBuffering"]) == ("com.microsoft.sqlserver.jdbc.SQLServerDriver", "20000", "adaptive")
    assert "mss-secret-2" not in connect.jdbc_url(sqlserver_source().connection)
    assert connect.is_transient("The TCP/IP connection to the host 127.0.0.1, port 1 has failed.")
    assert not connect.is_transient("Login failed for user 'dbz'.")


def test_connector_config():
    src = sqlserver_source({"instance": "SQLEXPRESS"})
    config = debezium.connector_config(src, [("dbo", "orders"), ("sales", "Order Items")])
    expected_core = {
        "connector.class": "io.debezium.connector.sqlserver.SqlServerConnector",
        "database.hostname": "mss1.internal",
        "database.port": "1433",
        "database.instance": "SQLEXPRESS",
        "database.names": "shop",
        "database.user": "dbz",
        "database.password": "${env:MSS_PASSWORD}",
        "database.encrypt": "true",
        "database.trustServerCertificate": "false",
        "topic.prefix": "mss",
        "snapshot.mode": "no_data",
        "table.include.list": "dbo\\.orders,sales\\.Order\\ Items",
        "schema.history.internal.kafka.topic": "schema-history.mss",
        "schema.history.internal.kafka.bootstrap.servers": "kafka1:9092",
        "decimal.handling.mode": "string",
        "time.precision.mode": "adaptive_time_microseconds",
        "value.converter.schemas.enable": "false",
        "tombstones.on.delete": "true",
        "skipped.operations": "none",
    }
    assert {k: config[k] for k in expected_core} == expected_core
    assert "mss-secret-2" not in repr(config)


def test_prepare_sql_enables_cdc_per_table():
    statements = debezium.prepare_sql(sqlserver_source({"read_isolation": "snapshot"}), [ITEMS])
    assert statements == [
        "USE [shop]",
        "EXEC sys.sp_cdc_enable_db",
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'Order Items]', @role_name = NULL, @supports_net_changes = 0",
        "-- CDC retention must cover the bulk load and any pause of the connector (minutes; default 4320 = 3 days):",
        "EXEC sys.sp_cdc_change_job @job_type = N'cleanup', @retention = 4320",
        "GRANT SELECT ON SCHEMA::[cdc] TO [dbz]",
        "GRANT VIEW DATABASE STATE TO [dbz]",
        "GRANT SELECT ON [dbo].[Order Items]]] TO [dbz]",
        "ALTER DATABASE [shop] SET ALLOW_SNAPSHOT_ISOLATION ON",
    ]


def test_lsn_numbers_order_like_the_server():
    # LSN texts as Debezium's SQL Server source block documents them
    assert lsn_number("00000027:00000758:0005") == 0x00000027000007580005
    assert lsn_number("00000027:00000758:0005") < lsn_number("00000027:00000759:0000") < lsn_number("00000028:00000000:0000")
    assert lsn_number("0x00000027000007580005") == lsn_number("00000027:00000758:0005")  # CONVERT(varchar, fn_cdc_get_max_lsn(), 1)
    assert lsn_number("ffffffff:ffffffff:ffff") == 2**80 - 1 < 10**38  # fits decimal(38,0)
    assert lsn_text(lsn_number("0000abcd:00000758:0005")) == "0000abcd:00000758:0005"
    assert canonical_lsn(None) == "00000000:00000000:0000"  # CDC not enabled: NULL max LSN
    with pytest.raises(ValueError, match="not a SQL Server LSN"):
        lsn_number("27:758:5")


def test_event_order_commit_lsn_change_lsn_serial():
    upd_before = event_order({"commit_lsn": "00000027:00000760:0003", "change_lsn": "00000027:00000758:0005", "event_serial_no": 1}, 9)
    upd_after = event_order({"commit_lsn": "00000027:00000760:0003", "change_lsn": "00000027:00000758:0005", "event_serial_no": 2}, 8)
    later_tx = event_order({"commit_lsn": "00000027:00000761:0001", "change_lsn": "00000027:00000700:0001", "event_serial_no": 1}, 1)
    assert upd_before < upd_after < later_tx
    assert event_order({"commit_lsn": None, "change_lsn": None}, 0) == (0, 0, 0)
