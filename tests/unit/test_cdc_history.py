"""History (scd2) and soft deletes: the config keys and the pure planning (docs/cdc-stream.md, "History")."""

import copy

import pytest

from lib.config import parse_config
from lib.config.model import HistoryMode
from lib.errors import ConfigError
from tests.unit.test_config import BASE, ENV


def _source(cdc=None, tables=None):
    raw = copy.deepcopy(BASE)
    raw["sources"]["shop"]["cdc"].update(cdc or {})
    if tables:
        raw["sources"]["shop"]["tables"] = tables
    return parse_config(raw, ENV).source("shop")


def test_history_defaults_to_a_mirror_with_hard_deletes():
    mode = _source().history_for("public", "orders")
    assert mode == HistoryMode() and mode.plain and not mode.scd2 and not mode.soft_deletes


def test_source_history_and_table_override():
    src = _source({"history": "scd2", "history_columns": ["status", "amount"]},
                  {"public.audit": {"history": "none", "deletes": "soft"}, "public.items": {"history_columns": ["qty"]}})
    assert src.history_for("public", "orders") == HistoryMode("scd2", ("status", "amount"))
    assert src.history_for("public", "items") == HistoryMode("scd2", ("qty",))
    audit = src.history_for("public", "audit")
    assert audit.soft_deletes and audit.history_columns is None


def test_table_scd2_on_a_mirror_source():
    src = _source(tables={"public.orders": {"history": "scd2"}})
    assert src.history_for("public", "orders").scd2
    assert src.history_for("public", "other").plain


@pytest.mark.parametrize("cdc, message", [
    ({"history": "scd1"}, "cdc.history: expected one of none, scd2"),
    ({"deletes": "sometimes"}, "cdc.deletes: expected one of hard, soft"),
    ({"history": "scd2", "history_columns": []}, "history_columns: expected at least one column"),
])
def test_history_key_errors(cdc, message):
    with pytest.raises(ConfigError) as info:
        _source(cdc)
    assert message in str(info.value)
