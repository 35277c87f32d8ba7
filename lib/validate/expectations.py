"""Which expectations a lake table must meet, and what their results mean (pure).

Defaults come from the source catalog: NOT NULL columns must have no nulls, the primary key must be
unique (compound for a multi-column key). Per-table rules come from ``sources.<name>.validation``.
The specs are plain data; :mod:`lib.validate.ge_run` runs them with Great Expectations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.config.model import TableRules
from lib.dialects.base import ColumnRead, Table
from lib.errors import ConfigError
from lib.validate.model import Check

_NUMERIC_OR_TEMPORAL = ("tinyint", "smallint", "int", "bigint", "float", "double", "date", "timestamp", "timestamp_ntz")
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class ExpectationSpec:
    """One Great Expectations expectation: its snake_case type, columns and other arguments."""

    type: str  # e.g. "expect_column_values_to_not_be_null"
    columns: tuple[str, ...]  # lake column names (none for table-level expectations)
    kwargs: tuple[tuple[str, Any], ...] = ()
    origin: str = "default"  # "default" (catalog) or the YAML path of the rule

    @property
    def name(self) -> str:
        return f"{self.type}({', '.join(self.columns)})" if self.columns else self.type

    def args(self) -> dict[str, Any]:
        return dict(self.kwargs)


def default_specs(table: Table) -> list[ExpectationSpec]:
    specs = [ExpectationSpec("expect_column_values_to_not_be_null", (c.name,)) for c in table.columns if not c.nullable]
    if len(table.primary_key) == 1:
        specs.append(ExpectationSpec("expect_column_values_to_be_unique", table.primary_key))
    elif table.primary_key:
        specs.append(ExpectationSpec("expect_compound_columns_to_be_unique", table.primary_key))
    return specs


def rule_specs(rules: TableRules, path: str, reads: Sequence[ColumnRead]) -> list[ExpectationSpec]:
    """Expectations of the configured rules; a rule that cannot apply to the table is a ConfigError at ``path``."""
    types = {r.name: r.spark_type for r in reads}
    specs: list[ExpectationSpec] = []
    if rules.row_count_min is not None or rules.row_count_max is not None:
        specs.append(
            ExpectationSpec(
                "expect_table_row_count_to_be_between",
                (),
                (("min_value", rules.row_count_min), ("max_value", rules.row_count_max)),
                f"{path}.row_count",
            )
        )
    for column, rule in rules.columns:
        at = f"{path}.columns.{column}"
        if column not in types:
            raise ConfigError(at, f"the table has no column {column!r} (columns: {', '.join(types)})")
        lake_type = types[column]
        mostly = (("mostly", rule.mostly),) if rule.mostly < 1 else ()
        if rule.not_null:
            specs.append(ExpectationSpec("expect_column_values_to_not_be_null", (column,), mostly, f"{at}.not_null"))
        if rule.unique:
            specs.append(ExpectationSpec("expect_column_values_to_be_unique", (column,), mostly, f"{at}.unique"))
        if rule.min_value is not None or rule.max_value is not None:
            if not (lake_type in _NUMERIC_OR_TEMPORAL or lake_type.startswith("decimal") or lake_type == "string"):
                raise ConfigError(f"{at}.{'min' if rule.min_value is not None else 'max'}", f"min/max need a number, date, timestamp or string column; {column} is {lake_type}")
            if isinstance(rule.min_value, str) != isinstance(rule.max_value, str) and None not in (rule.min_value, rule.max_value):
                raise ConfigError(at, "min and max must both be numbers or both be strings")
            specs.append(
                ExpectationSpec(
                    "expect_column_values_to_be_between",
                    (column,),
                    (("min_value", rule.min_value), ("max_value", rule.max_value), *mostly),
                    f"{at}.min/max",
                )
            )
        if rule.in_set is not None:
            if lake_type.startswith("array") or lake_type == "binary":
                raise ConfigError(f"{at}.in", f"'in' needs a column of plain values; {column} is {lake_type}")
            specs.append(ExpectationSpec("expect_column_values_to_be_in_set", (column,), (("value_set", list(rule.in_set)), *mostly), f"{at}.in"))
        if rule.regex is not None:
            if lake_type != "string":
                raise ConfigError(f"{at}.regex", f"regex needs a string column; {column} is {lake_type}")
            specs.append(ExpectationSpec("expect_column_values_to_match_regex", (column,), (("regex", rule.regex), *mostly), f"{at}.regex"))
    return specs


def describe_expected(spec: ExpectationSpec) -> str:
    args = spec.args()
    t = spec.type
    if t == "expect_column_values_to_not_be_null":
        return "no NULLs" + _mostly(args)
    if t in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        return "unique" + _mostly(args)
    if t in ("expect_column_values_to_be_between", "expect_table_row_count_to_be_between"):
        low, high = args.get("min_value"), args.get("max_value")
        what = "rows" if t.startswith("expect_table") else "values"
        return f"{what} in [{'-inf' if low is None else low}, {'inf' if high is None else high}]" + _mostly(args)
    if t == "expect_column_values_to_be_in_set":
        return "values in {" + ", ".join(map(str, args.get("value_set", []))) + "}" + _mostly(args)
    if t == "expect_column_values_to_match_regex":
        return f"values match /{args.get('regex')}/" + _mostly(args)
    return t


def _mostly(args: Mapping[str, Any]) -> str:
    return f" (at least {args['mostly']:.0%})" if "mostly" in args else ""


def check_from_result(spec: ExpectationSpec, result: Mapping[str, Any], aliases: Mapping[str, str]) -> Check:
    """A Check from one GE result (its JSON dict); ``aliases`` maps GE's column aliases back to names."""
    success = bool(result.get("success"))
    exception = result.get("exception_info") or {}
    body = result.get("result") or {}
    expected = describe_expected(spec)
    if exception.get("raised_exception"):
        message = str(exception.get("exception_message") or "raised an exception").splitlines()[0][:300]
        return Check(spec.name, "expectation", "fail", f"{spec.name}: could not be evaluated: {message}", expected, None, {"origin": spec.origin})
    if "observed_value" in body:
        observed: Any = body["observed_value"]
        summary = f"observed {observed}"
    else:
        count, total = body.get("unexpected_count") or 0, body.get("element_count") or 0
        observed = f"{count} of {total} rows unexpected"
        summary = observed
    examples = [_unalias(v, aliases) for v in (body.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]]
    details: dict[str, Any] = {"origin": spec.origin}
    if examples:
        details["examples"] = examples
    if success:
        return Check(spec.name, "expectation", "pass", f"{spec.name}: {expected}", expected, observed, details)
    shown = f", e.g. {', '.join(map(str, examples[:3]))}" if examples else ""
    return Check(spec.name, "expectation", "fail", f"{spec.name}: expected {expected}, {summary}{shown}", expected, observed, details)


def _unalias(value: Any, aliases: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {aliases.get(k, k): v for k, v in value.items()}
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
