import copy

import pytest

from lib.config import parse_config
from lib.config.model import ColumnRules, TableRules, ValidationConfig
from lib.errors import ConfigError

BASE = {
    "sources": {
        "shop": {
            "type": "postgres",
            "connection": {"host": "h", "database": "d", "user": "u"},
            "schemas": ["public"],
        }
    }
}


def with_validation(validation):
    raw = copy.deepcopy(BASE)
    raw["sources"]["shop"]["validation"] = validation
    return raw


def error_of(validation):
    with pytest.raises(ConfigError) as info:
        parse_config(with_validation(validation), {})
    return str(info.value)


def test_validation_is_optional_with_defaults():
    v = parse_config(copy.deepcopy(BASE), {}).source("shop").validation
    assert v == ValidationConfig() and v.checksum_buckets == 256 and v.rules_for("public", "x") == TableRules()


def test_rules_are_typed():
    v = parse_config(
        with_validation(
            {
                "checksum_buckets": "4096",
                "drill_down_rows": 10,
                "tables": {
                    "public.orders": {
                        "row_count": {"min": 1, "max": "10000000"},
                        "checksum": False,
                        "columns": {
                            "total": {"min": 0, "max": 1000000.5},
                            "status": {"in": ["pending", "paid"]},
                            "email": {"regex": "^[^@]+@[^@]+$", "mostly": 0.95},
                            "day": {"min": "2020-01-01", "not_null": True, "unique": "true"},
                        },
                    }
                },
            }
        ),
        {},
    ).source("shop").validation
    assert v.checksum_buckets == 4096 and v.drill_down_rows == 10
    rules = v.rules_for("public", "orders")
    assert rules.row_count_min == 1 and rules.row_count_max == 10_000_000 and rules.checksum is False
    cols = dict(rules.columns)
    assert cols["total"] == ColumnRules(min_value=0, max_value=1000000.5)
    assert cols["status"].in_set == ("pending", "paid")
    assert cols["email"].regex == "^[^@]+@[^@]+$" and cols["email"].mostly == 0.95
    assert cols["day"] == ColumnRules(min_value="2020-01-01", not_null=True, unique=True)


P = "sources.shop.validation"


@pytest.mark.parametrize(
    ("validation", "message"),
    [
        ({"checksum_buckets": 100}, f"{P}.checksum_buckets: expected one of 16, 256, 4096, got 100"),
        ({"bucket": 1}, f"{P}.bucket: unknown key"),
        ({"tables": {"orders": {"checksum": True}}}, f"{P}.tables.orders: validation rules are keyed by 'schema.table'"),
        ({"tables": {"p.o": {"row_count": {"min": 5, "max": 1}}}}, f"{P}.tables.p.o.row_count: min (5) is greater than max (1)"),
        ({"tables": {"p.o": {"row_count": {"min": -1}}}}, f"{P}.tables.p.o.row_count.min: expected an integer >= 0, got -1"),
        ({"tables": {"p.o": {"rowcount": 1}}}, f"{P}.tables.p.o.rowcount: unknown key"),
        ({"tables": {"p.o": {"columns": {"c": {"regex": "("}}}}}, f"{P}.tables.p.o.columns.c.regex: not a valid regular expression"),
        ({"tables": {"p.o": {"columns": {"c": {"in": []}}}}}, f"{P}.tables.p.o.columns.c.in: expected at least one value"),
        ({"tables": {"p.o": {"columns": {"c": {"in": "abc"}}}}}, f"{P}.tables.p.o.columns.c.in: expected a list of plain values, got 'abc'"),
        ({"tables": {"p.o": {"columns": {"c": {"min": [1]}}}}}, f"{P}.tables.p.o.columns.c.min: expected a number or a string, got a list"),
        ({"tables": {"p.o": {"columns": {"c": {"min": 9, "max": 1}}}}}, f"{P}.tables.p.o.columns.c: min (9) is greater than max (1)"),
        ({"tables": {"p.o": {"columns": {"c": {"mostly": 1.5, "not_null": True}}}}}, f"{P}.tables.p.o.columns.c.mostly: expected a fraction in (0, 1], got 1.5"),
        ({"tables": {"p.o": {"columns": {"c": {"mostly": 0.5}}}}}, f"{P}.tables.p.o.columns.c: expected at least one rule"),
        ({"tables": {"p.o": {"columns": {"c": {"between": [1, 2]}}}}}, f"{P}.tables.p.o.columns.c.between: unknown key"),
        ({"tables": {"p.o": {"columns": {"c": {"not_null": "maybe"}}}}}, f"{P}.tables.p.o.columns.c.not_null: expected true or false, got 'maybe'"),
    ],
)
def test_bad_rules_name_their_yaml_path(validation, message):
    assert error_of(validation).startswith(message)
