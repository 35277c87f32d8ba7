"""Checksum SQL for Oracle and SQL Server sources (golden): the same canonical row text as the
PostgreSQL and Spark sides (lib/validate/render.py).

Vendor references: Oracle STANDARD_HASH, TO_CHAR number format models (FM, 0, 9),
UTL_RAW.CAST_FROM_BINARY_FLOAT/DOUBLE (https://docs.oracle.com/en/database/oracle/oracle-database/19/sqlrf/
STANDARD_HASH.html, .../Format-Models.html; .../arpls/UTL_RAW.html); T-SQL HASHBYTES, DATEDIFF_BIG,
CONVERT style 2 for binary, UTF-8 collations (https://learn.microsoft.com/en-us/sql/t-sql/functions/
hashbytes-transact-sql, .../datediff-big-transact-sql, .../cast-and-convert-transact-sql,
https://learn.microsoft.com/en-us/sql/relational-databases/collations/collation-and-unicode-support#utf8).
"""

import pytest

from lib.dialects import get_dialect
from lib.dialects.base import Column, ColumnRead, Table
from lib.validate import render_source as rs
from lib.validate import source_checksum as sc
from lib.validate.checksum_sql import RowSpec
from lib.validate.render import UnsupportedType

ORA_SPEC = RowSpec((ColumnRead("ID", '"ID"', "decimal(10,0)"), ColumnRead("NAME", '"NAME"', "string")), ("ID",), 2)
MSS_SPEC = RowSpec((ColumnRead("id", "[id]", "int"), ColumnRead("b", "[b]", "binary")), (), 1)


def test_oracle_bucket_sums_sql():
    assert sc.bucket_sums_sql("oracle", 'SELECT "ID", "NAME" FROM "SHOP"."T"', ORA_SPEC) == (
        "SELECT r.b, COUNT(*) AS n, TO_CHAR(SUM(r.h)) AS s FROM (SELECT SUBSTR(LOWER(RAWTOHEX(STANDARD_HASH(t2.kt, 'MD5'))), 1, 2) AS b, "
        "t2.kt AS k, TO_NUMBER(SUBSTR(LOWER(RAWTOHEX(STANDARD_HASH(t2.rt, 'MD5'))), 1, 15), 'XXXXXXXXXXXXXXX') AS h FROM "
        "(SELECT CASE WHEN t1.v0 IS NULL THEN 'N' ELSE LENGTH(t1.v0) || ':' || t1.v0 END || '|' || "
        "CASE WHEN t1.v1 IS NULL THEN 'N' ELSE LENGTH(t1.v1) || ':' || t1.v1 END AS rt, "
        "CASE WHEN t1.v0 IS NULL THEN 'N' ELSE LENGTH(t1.v0) || ':' || t1.v0 END AS kt FROM "
        "(SELECT TO_CHAR(q.\"ID\", 'FM9999999990', 'NLS_NUMERIC_CHARACTERS=''.,''') AS v0, TO_CHAR(q.\"NAME\") AS v1 "
        'FROM (SELECT "ID", "NAME" FROM "SHOP"."T") q) t1) t2) r GROUP BY r.b'
    )
    assert sc.drill_down_sql("oracle", "SELECT 1 FROM DUAL", ORA_SPEC, ["0a", "ff"]).endswith(" r WHERE r.b IN ('0a', 'ff')")


def test_tsql_bucket_sums_sql_without_a_key():
    md5 = "HASHBYTES('MD5', CAST((t2.rt) COLLATE Latin1_General_100_BIN2_UTF8 AS varchar(max)))"
    assert sc.bucket_sums_sql("sqlserver", "SELECT [id], [b] FROM [dbo].[t]", MSS_SPEC) == (
        f"SELECT r.b, COUNT(*) AS n, CONVERT(varchar(40), SUM(CAST(r.h AS decimal(38,0)))) AS s FROM (SELECT LOWER(SUBSTRING(CONVERT(varchar(34), {md5}, 2), 1, 1)) AS b, "
        f"t2.kt AS k, (CAST(SUBSTRING({md5}, 1, 7) AS bigint) * 16 + CAST(SUBSTRING({md5}, 8, 1) AS int) / 16) AS h FROM "
        "(SELECT CASE WHEN t1.v0 IS NULL THEN N'N' ELSE CONVERT(nvarchar(20), LEN(t1.v0 + N'x') - 1) + N':' + t1.v0 END + N'|' + "
        "CASE WHEN t1.v1 IS NULL THEN N'N' ELSE CONVERT(nvarchar(20), LEN(t1.v1 + N'x') - 1) + N':' + t1.v1 END AS rt, CAST(NULL AS nvarchar(1)) AS kt FROM "
        "(SELECT CONVERT(nvarchar(20), q.[id]) AS v0, LOWER(CONVERT(nvarchar(max), CAST(q.[b] AS varbinary(max)), 2)) AS v1 "
        "FROM (SELECT [id], [b] FROM [dbo].[t]) AS q) AS t1) AS t2) AS r GROUP BY r.b"
    )


@pytest.mark.parametrize(
    ("lake", "oracle", "tsql"),
    [
        ("decimal(12,2)", "TO_CHAR(x, 'FM9999999990.00', 'NLS_NUMERIC_CHARACTERS=''.,''')", "CONVERT(nvarchar(50), CAST(x AS decimal(12,2)))"),
        ("decimal(5,5)", "TO_CHAR(x, 'FM0.00000', 'NLS_NUMERIC_CHARACTERS=''.,''')", "CONVERT(nvarchar(50), CAST(x AS decimal(5,5)))"),
        ("bigint", "TO_CHAR(x)", "CONVERT(nvarchar(20), x)"),
        ("boolean", "CASE WHEN x THEN 'true' WHEN NOT x THEN 'false' END", "CASE x WHEN 1 THEN N'true' WHEN 0 THEN N'false' END"),
        ("date", "TO_CHAR(TRUNC(x) - DATE '1970-01-01')", "CONVERT(nvarchar(20), DATEDIFF(day, '19700101', x))"),
        ("timestamp_ntz", None, "CONVERT(nvarchar(20), DATEDIFF_BIG(microsecond, CAST('19700101' AS datetime2(7)), x))"),
        ("binary", "LOWER(RAWTOHEX(x))", "LOWER(CONVERT(nvarchar(max), CAST(x AS varbinary(max)), 2))"),
        ("double", None, "CONVERT(nvarchar(20), CAST(CAST(CAST(x AS float) AS binary(8)) AS bigint))"),
        ("float", None, "CONVERT(nvarchar(20), CAST(CAST(CAST(x AS real) AS binary(4)) AS int))"),
    ],
)
def test_value_renderings(lake, oracle, tsql):
    if oracle is not None:
        assert rs.ora_value("x", lake) == oracle
    assert rs.tsql_value("x", lake) == tsql


def test_oracle_float_bits_and_timestamps():
    assert rs.ora_value("x", "double") == (
        "CASE WHEN x IS NAN THEN '9221120237041090560' ELSE TO_CHAR(CASE WHEN TO_NUMBER(RAWTOHEX(UTL_RAW.CAST_FROM_BINARY_DOUBLE(x)), "
        "'XXXXXXXXXXXXXXXX') >= 9223372036854775808 THEN TO_NUMBER(RAWTOHEX(UTL_RAW.CAST_FROM_BINARY_DOUBLE(x)), 'XXXXXXXXXXXXXXXX') - "
        "18446744073709551616 ELSE TO_NUMBER(RAWTOHEX(UTL_RAW.CAST_FROM_BINARY_DOUBLE(x)), 'XXXXXXXXXXXXXXXX') END) END"
    )
    delta = "(CAST(x AS TIMESTAMP(6)) - TIMESTAMP '1970-01-01 00:00:00')"
    assert rs.ora_value("x", "timestamp") == (
        f"TO_CHAR(EXTRACT(DAY FROM {delta}) * 86400000000 + EXTRACT(HOUR FROM {delta}) * 3600000000 + "
        f"EXTRACT(MINUTE FROM {delta}) * 60000000 + EXTRACT(SECOND FROM {delta}) * 1000000)"
    )
    assert rs.decimal_mask(38, 0) == "FM" + "9" * 37 + "0"
    with pytest.raises(UnsupportedType, match="no canonical Oracle rendering for lake type 'array<string>'"):
        rs.ora_value("x", "array<string>")


def test_inner_select_is_the_loaders_select():
    table = Table("SHOP", "T", (Column("ID", "NUMBER(10,0)", False, 1, (("data_type", "NUMBER"), ("precision", 10), ("scale", 0))),), ("ID",), 1, 0)
    assert sc.inner_select(get_dialect("oracle"), table, RowSpec((ColumnRead("ID", '"ID"', "decimal(10,0)"),), ("ID",), 1)) == 'SELECT "ID" FROM "SHOP"."T"'
