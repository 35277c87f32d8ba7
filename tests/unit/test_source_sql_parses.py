"""Every statement the Oracle and SQL Server dialects generate parses as Oracle SQL / T-SQL (sqlglot's
grammars of both): a syntax check that needs no server. The golden tests pin the exact text; this one
catches what a golden string cannot: unbalanced parentheses, a misplaced clause."""

import pytest
import sqlglot
from sqlglot.errors import ParseError

from lib.dialects.base import ColumnRead, SplitSample, Table
from lib.dialects.oracle import catalog as ora_catalog
from lib.dialects.oracle import sql as ora_sql
from lib.dialects.oracle import types as ora_types
from lib.dialects.sqlserver import catalog as mss_catalog
from lib.dialects.sqlserver import sql as mss_sql
from lib.dialects.sqlserver import types as mss_types
from lib.validate import source_checksum
from lib.validate.checksum_sql import RowSpec
from tests.unit.test_oracle_dialect import TYPE_CASES as ORA_TYPES
from tests.unit.test_oracle_dialect import col as ora_col
from tests.unit.test_sqlserver_dialect import ITEMS
from tests.unit.test_sqlserver_dialect import TYPE_CASES as MSS_TYPES
from tests.unit.test_sqlserver_dialect import col as mss_col

ORDERS = Table(
    "SHOP",
    "ORDERS",
    (ora_col("ID", "NUMBER", 10, 0, nullable=False), ora_col("REGION", "VARCHAR2", nullable=False), ora_col("AT", "DATE")),
    ("ID",),
    100,
    0,
)
SPLIT = SplitSample(("ID",), (("1",), ("50",), ("100",), ("150",)))
COMPOSITE = SplitSample(("REGION", "ID"), (("EU", "1"), ("EU", "9"), ("US", "3"), ("US", "7")))


# sqlglot's Oracle grammar lacks XMLSERIALIZE(CONTENT .. AS ..) and JSON_SERIALIZE(.. RETURNING ..):
# those two reads are pinned by the golden tests only.
PARSED_ORA_TYPES = [case for case in ORA_TYPES if case[0][0] not in ("XMLTYPE", "JSON")]


def oracle_statements() -> list[str]:
    reads = [ora_types.column_read(ora_col("C", *spec)) for spec, _, _ in PARSED_ORA_TYPES]
    every_type = Table("SHOP", "T", tuple(ora_col(f"C{i}", *spec) for i, (spec, _, _) in enumerate(PARSED_ORA_TYPES)), (), 1, 0)
    selects = [r.select_sql.replace('"C"', f'"C{i}"') for i, r in enumerate(reads)]
    spec = RowSpec(tuple(ColumnRead(f"C{i}", s, r.spark_type) for i, (s, r) in enumerate(zip(selects, reads, strict=True))), (), 2)
    return [
        ora_catalog.tables_sql(["SHOP", "Mixed Case"]),
        ora_catalog.columns_sql(["SHOP"]),
        ora_catalog.primary_keys_sql(["SHOP"]),
        ora_sql.select_sql(every_type, selects, None, "123456"),
        *[ora_sql.select_sql(ORDERS, ['"ID"'], p, "42") for p in ora_sql.range_predicates(ORDERS, SPLIT, 3)],
        *[ora_sql.select_sql(ORDERS, ['"ID"'], p, "42") for p in ora_sql.range_predicates(ORDERS, COMPOSITE, 2)],
        *[ora_sql.select_sql(ORDERS, ['"ID"'], p, "42") for p in ora_sql.physical_predicates(ORDERS, 3) or []],
        ora_sql.boundaries_ascending_sql(ORDERS, SPLIT, 3) or "",
        ora_sql.count_sql(ORDERS, "42"),
        ora_sql.sample_sql(ORDERS, [ORDERS.columns[1], ORDERS.columns[0]], None, 1.5, 1),
        ora_sql.sample_sql(ORDERS, [ORDERS.columns[0]], None, None, 20),
        ora_types.profile_sql('"SHOP"."T"', ["A", "B"], " AS OF SCN 5"),
        source_checksum.bucket_sums_sql("oracle", ora_sql.select_sql(every_type, selects, None), spec),
        source_checksum.drill_down_sql("oracle", ora_sql.select_sql(every_type, selects, None), spec, ["0a", "ff"]),
    ]


def sqlserver_statements() -> list[str]:
    cols = [mss_col(f"c{i}", *spec) for i, (spec, _, _) in enumerate(MSS_TYPES)]
    reads = [mss_types.column_read(c) for c in cols]
    every_type = Table("dbo", "t", tuple(cols), (), 1, 0)
    selects = [r.select_sql for r in reads]
    spec = RowSpec(tuple(ColumnRead(r.name, r.select_sql, r.spark_type) for r in reads), ("c0",), 2)
    return [
        mss_catalog.tables_sql(["dbo"]),
        mss_catalog.columns_sql(["dbo"]),
        mss_catalog.primary_keys_sql(["dbo"]),
        mss_sql.select_sql(every_type, selects, None),
        *[mss_sql.select_sql(ITEMS, ["[id]"], p) for p in mss_sql.range_predicates(ITEMS, SplitSample(("id",), (("1",), ("50",), ("100",), ("150",))), 3)],
        *[mss_sql.select_sql(ITEMS, ["[id]"], p) for p in mss_sql.range_predicates(ITEMS, SplitSample(("sku", "id"), (("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"))), 2)],
        *[mss_sql.select_sql(ITEMS, ["[id]"], p) for p in mss_sql.physical_predicates(ITEMS, 3) or []],
        mss_sql.count_sql(ITEMS),
        mss_sql.sample_sql(ITEMS, [ITEMS.column("id")], 2.5, 1),
        mss_sql.sample_sql(ITEMS, [ITEMS.column("sku"), ITEMS.column("id")], None, 10),
        mss_sql.MAX_LSN_SQL,
        source_checksum.bucket_sums_sql("sqlserver", mss_sql.select_sql(every_type, selects, None), spec),
        source_checksum.drill_down_sql("sqlserver", mss_sql.select_sql(every_type, selects, None), spec, ["0a"]),
    ]


@pytest.mark.parametrize(("dialect", "statements"), [("oracle", oracle_statements()), ("tsql", sqlserver_statements())])
def test_every_generated_statement_parses(dialect, statements):
    for statement in statements:
        assert statement
        sqlglot.parse_one(statement, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)


@pytest.mark.parametrize(("dialect", "broken"), [("oracle", 'SELECT ("ID" FROM "SHOP"."T"'), ("tsql", "SELECT [id FROM [dbo].[t] WHERE")])
def test_the_check_can_fail(dialect, broken):
    with pytest.raises(ParseError):
        sqlglot.parse_one(broken, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
