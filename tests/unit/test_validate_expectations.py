import pytest

from lib.config.model import ColumnRules, TableRules
from lib.dialects.base import Column, ColumnRead, Table
from lib.errors import ConfigError
from lib.validate.expectations import ExpectationSpec, check_from_result, default_specs, describe_expected, rule_specs

TABLE = Table(
    "public",
    "orders",
    (Column("id", "integer", False, 1), Column("line", "integer", False, 2), Column("note", "text", True, 3)),
    ("id", "line"),
    0,
    0,
)
READS = [ColumnRead("id", "", "int"), ColumnRead("line", "", "int"), ColumnRead("note", "", "string"), ColumnRead("tags", "", "array<string>")]
PATH = "sources.shop.validation.tables.public.orders"


def test_defaults_from_the_catalog():
    names = [s.name for s in default_specs(TABLE)]
    assert names == [
        "expect_column_values_to_not_be_null(id)",
        "expect_column_values_to_not_be_null(line)",
        "expect_compound_columns_to_be_unique(id, line)",
    ]
    single = Table("s", "t", (Column("k", "text", False, 1),), ("k",), 0, 0)
    assert default_specs(single)[-1].name == "expect_column_values_to_be_unique(k)"


def test_rules_become_expectations():
    rules = TableRules(
        row_count_min=1,
        columns=(("id", ColumnRules(min_value=0, max_value=10)), ("note", ColumnRules(regex="^a", in_set=("a", "b"), not_null=True, mostly=0.9))),
    )
    specs = rule_specs(rules, PATH, READS)
    assert [s.type for s in specs] == [
        "expect_table_row_count_to_be_between",
        "expect_column_values_to_be_between",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_match_regex",
    ]
    assert specs[0].args() == {"min_value": 1, "max_value": None} and specs[0].origin == f"{PATH}.row_count"
    assert specs[4].args() == {"regex": "^a", "mostly": 0.9}
    assert describe_expected(specs[1]) == "values in [0, 10]" and describe_expected(specs[4]) == "values match /^a/ (at least 90%)"


@pytest.mark.parametrize(
    ("column", "rule", "message"),
    [
        ("nope", ColumnRules(not_null=True), f"{PATH}.columns.nope: the table has no column 'nope'"),
        ("id", ColumnRules(regex="x"), f"{PATH}.columns.id.regex: regex needs a string column; id is int"),
        ("tags", ColumnRules(min_value=1), f"{PATH}.columns.tags.min: min/max need a number, date, timestamp or string column"),
        ("tags", ColumnRules(in_set=("a",)), f"{PATH}.columns.tags.in: 'in' needs a column of plain values"),
        ("id", ColumnRules(min_value=1, max_value="z"), f"{PATH}.columns.id: min and max must both be numbers or both be strings"),
    ],
)
def test_rules_that_cannot_apply_name_their_yaml_path(column, rule, message):
    with pytest.raises(ConfigError) as info:
        rule_specs(TableRules(columns=((column, rule),)), PATH, READS)
    assert str(info.value).startswith(message)


def test_results_become_checks_with_names_mapped_back():
    spec = ExpectationSpec("expect_compound_columns_to_be_unique", ("a b", "c.d"))
    result = {
        "success": False,
        "result": {"element_count": 10, "unexpected_count": 2, "partial_unexpected_list": [{"c0": 1, "c1": "x"}]},
        "exception_info": {"raised_exception": False},
    }
    check = check_from_result(spec, result, {"c0": "a b", "c1": "c.d"})
    assert check.failed and check.details["examples"] == [{"a b": 1, "c.d": "x"}]
    assert check.message.startswith("expect_compound_columns_to_be_unique(a b, c.d): expected unique, 2 of 10 rows unexpected")
    count = check_from_result(ExpectationSpec("expect_table_row_count_to_be_between", (), (("min_value", 1), ("max_value", 5))), {"success": True, "result": {"observed_value": 3}}, {})
    assert count.status == "pass" and count.observed == 3
    broken = check_from_result(spec, {"success": False, "exception_info": {"raised_exception": True, "exception_message": "boom\ntrace"}}, {})
    assert broken.failed and broken.message.endswith("could not be evaluated: boom")
