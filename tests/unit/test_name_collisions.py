"""Tables whose names collide on a Debezium topic or on a lake path (lib/name_collisions.py), and the bulk load
and the CDC stream refusing them with exit 2 before they touch anything."""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import unicodedata
from pathlib import Path

import pytest

from lib.config import parse_config
from lib.dialects.base import Column, Table
from lib.name_collisions import (
    Collision,
    collision_message,
    debezium_topic,
    find_collisions,
    quoted,
    source_collisions,
    touching,
)
from lib.selection import select_tables

ROOT = Path(__file__).resolve().parents[2]
ROUTER = "or route one table's topic elsewhere with a Debezium topic routing SMT (io.debezium.transforms.ByLogicalTableRouter)"


def test_space_and_underscore_share_a_topic():
    got = find_collisions("shop", "shop", [("public", "order items"), ("public", "order_items"), ("public", "orders")], lake_root="/lake")
    assert got == [Collision("topic", "shop.public.order_items", (("public", "order items"), ("public", "order_items")))]
    assert collision_message("shop", got[0]) == (
        'tables "public"."order items" and "public"."order_items" would share the Kafka topic shop.public.order_items '
        "(Debezium replaces every character outside [a-zA-Z0-9._-] with '_'): exclude one of them with sources.shop.exclude "
        f'(e.g. add "public.order items" to it), {ROUTER}'
    )


def test_without_cdc_a_shared_topic_does_not_count():
    assert find_collisions("shop", None, [("public", "order items"), ("public", "order_items")]) == []


def test_mixed_case_shares_a_lake_path_with_or_without_cdc():
    tables = [("public", "Orders"), ("public", "orders"), ("Public", "ORDERS")]
    expected = [Collision("lake path", "/lake/shop/Public/ORDERS", (("Public", "ORDERS"), ("public", "Orders"), ("public", "orders")))]
    assert find_collisions("shop", None, tables, lake_root="/lake/") == expected
    assert find_collisions("shop", "shop", tables, lake_root="/lake/") == expected  # Kafka topics are case-sensitive: distinct
    assert collision_message("shop", expected[0]) == (
        'tables "Public"."ORDERS", "public"."Orders" and "public"."orders" would share the lake path /lake/shop/Public/ORDERS '
        "on storage that ignores case (ADLS Gen2 through some clients, macOS, Windows): exclude all but one of them with "
        'sources.shop.exclude (e.g. add "public.Orders", "public.orders" to it)'
    )


def test_decomposed_and_composed_unicode_share_a_lake_path():
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    (got,) = find_collisions("shop", "shop", [("public", nfc), ("public", nfd)])
    assert got.kind == "lake path"


def test_dots_split_differently_share_a_topic_but_not_a_lake_path():
    (got,) = find_collisions("shop", "shop", [("a.b", "c"), ("a", "b.c")], lake_root="/lake")
    assert got == Collision("topic", "shop.a.b.c", (("a", "b.c"), ("a.b", "c")))
    message = collision_message("shop", got)
    assert message.startswith('tables "a"."b.c" and "a.b"."c" would share the Kafka topic shop.a.b.c ')
    assert '(e.g. add "c" to it)' in message  # "a.b.c" would match both tables


@pytest.mark.parametrize("a, b", [
    ("order$items", "order_items"), ("order/items", "order_items"), ("naïve", "na_ve"), ("a+b", "a_b"),
    ('quo"te', "quo_te"), ("tab\tle", "tab_le"), ("日本", "__"),
])
def test_other_characters_debezium_replaces(a, b):
    (got,) = find_collisions("shop", "shop", [("s", a), ("s", b)])
    assert got.kind == "topic" and set(got.tables) == {("s", a), ("s", b)}


@pytest.mark.parametrize("a, b", [
    ("order-items", "order_items"), ("order.items", "order_items"), ("Order Lines", "order_lines"), ("orders", "orders2"),
    ("t1", "t_1"),
])
def test_no_false_positive_for_distinct_names(a, b):
    assert find_collisions("shop", "shop", [("public", a), ("public", b)]) == []


def test_the_same_name_in_two_schemas_is_distinct():
    assert find_collisions("shop", "shop", [("public", "orders"), ("sales", "orders"), ("sales", "Orders2")]) == []


def test_sqlserver_topics_carry_the_database():
    assert debezium_topic("sales", "dbo", "order items", "db one") == "sales.db_one.dbo.order_items"
    raw = {"sources": {"sales": {"type": "sqlserver", "schemas": ["dbo"], "cdc": {"topic_prefix": "sales", "connect_url": "http://c:8083"},
                                 "connection": {"host": "h", "database": "erp", "user": "u", "password": "${P}"}}}}
    source = parse_config(raw, {"P": "x"}).source("sales")
    (got,) = source_collisions(source, [("dbo", "a b"), ("dbo", "a_b")])
    assert got.target == "sales.erp.dbo.a_b"


def test_a_source_without_cdc_checks_lake_paths_only():
    raw = {"sources": {"shop": {"type": "postgres", "schemas": ["public"],
                                "connection": {"host": "h", "database": "d", "user": "u", "password": "${P}"}}}}
    source = parse_config(raw, {"P": "x"}).source("shop")
    assert source_collisions(source, [("public", "a b"), ("public", "a_b")]) == []
    assert [c.kind for c in source_collisions(source, [("public", "T"), ("public", "t")])] == ["lake path"]


def test_the_suggested_exclude_removes_the_collision():
    tables = [("public", "order items"), ("public", "order_items"), ("public", "Orders"), ("public", "orders"),
              ("a.b", "c"), ("a", "b.c"), ("s", "x*y"), ("s", "x_y"), ("s", "x?y"), ("public", "keep me")]
    collisions = find_collisions("shop", "shop", tables)
    assert len(collisions) == 4
    excludes = []
    for c in collisions:
        suggestion = collision_message("shop", c).split("(e.g. add ")[1].split(" to it)")[0]
        excludes += [g.strip('"') for g in suggestion.split(", ")]
    kept = select_tables(tables, ["*"], excludes)
    assert find_collisions("shop", "shop", kept) == []
    assert ("public", "keep me") in kept and ("public", "order_items") in kept and ("s", "x_y") in kept


def test_touching_keeps_the_collisions_a_run_would_load_or_apply():
    collisions = find_collisions("shop", "shop", [("public", "order items"), ("public", "order_items"), ("public", "orders")])
    assert touching(collisions, None) == collisions and touching(collisions, []) == collisions
    assert touching(collisions, ["public.order_items"]) == collisions
    assert touching(collisions, ["orders"]) == []


def test_quoted_names_as_the_source_spells_them():
    assert quoted("public", 'Order "Lines" 2024') == '"public"."Order ""Lines"" 2024"'


# --- the jobs: exit 2 before anything is touched -----------------------------------------------------------

CONFIG = """
lake: {{root: {root}}}
sources:
  shop:
    type: postgres
    connection: {{host: 127.0.0.1, database: shop, user: loader, password: pw}}
    schemas: [public]
    cdc: {{topic_prefix: shop, password_reference: "${{env:SHOP_DB_PASSWORD}}"}}
"""


def table(name: str) -> Table:
    return Table("public", name, (Column("id", "integer", False, 1),), ("id",), 10, 8192)


class FakeDialect:
    name = "postgres"
    catalog_via_jdbc = False

    def discover_source(self, source):
        return [table("order items"), table("order_items"), table("orders")]


@pytest.fixture
def jobs(monkeypatch, tmp_path):
    """The config file; the jobs' logging setup and signal handlers undone afterwards."""
    monkeypatch.syspath_prepend(str(ROOT / "jobs"))
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = tmp_path / "pipeline.yaml"
    config.write_text(CONFIG.format(root=tmp_path / "lake"))
    yield config
    root.handlers[:], root.level = handlers, level


def run_job(module_name: str, monkeypatch, argv: list[str]) -> int:
    module = importlib.import_module(module_name)
    monkeypatch.setattr(sys, "argv", [f"{module_name}.py", *argv])
    with pytest.raises(SystemExit) as exit_info:
        module._cli.run(module.main)
    return int(exit_info.value.code)


def test_bulk_load_refuses_when_planning_with_exit_2(jobs, monkeypatch, capsys):
    import lib.bulk.runner as runner

    monkeypatch.setattr(runner, "get_dialect", lambda *a: FakeDialect())
    importlib.import_module("bulk_load")
    monkeypatch.setattr("bulk_load.get_dialect", lambda *a: FakeDialect())
    monkeypatch.setattr(runner, "open_status_store", lambda *a, **k: pytest.fail("the lake was touched"))
    monkeypatch.setattr("_cli.spark", lambda *a, **k: object())  # no JVM: the refusal comes first
    for extra in (["--dry-run"], ["--fresh-start", "--yes"], ["--tables", "public.order_items"]):
        assert run_job("bulk_load", monkeypatch, ["--config", str(jobs), "--source", "shop", *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith('config error: sources.shop: tables "public"."order items" and "public"."order_items" would share '
                              "the Kafka topic shop.public.order_items"), err
        assert "sources.shop.exclude" in err and "io.debezium.transforms.ByLogicalTableRouter" in err
    # a run that loads neither table is not refused: it goes on to the connector config
    monkeypatch.setattr(runner, "connector_document", lambda *a: (_ for _ in ()).throw(Reached()))
    with pytest.raises(Reached):
        run_job("bulk_load", monkeypatch, ["--config", str(jobs), "--source", "shop", "--tables", "orders"])


class Reached(BaseException):
    """Raised where a job gets past the collision check (BaseException: not turned into an exit code)."""


class FakeStatus:
    def latest(self, source):
        return {(source, "public", "Orders"): object(), (source, "public", "orders"): object(), (source, "public", "items"): object(),
                (source, "public", "Excluded"): object(), (source, "public", "excluded"): object()}  # a pair the source excludes: no collision


class FakeStream:
    def __init__(self, spark, config, source, dialect, options):
        self.status = FakeStatus()
        self.lake_root = "/lake"

    def selected(self, schema, table):
        return table != "excluded"

    def run(self, stop):
        raise Reached()


def test_cdc_stream_refuses_at_start_with_exit_2(jobs, monkeypatch, capsys):
    importlib.import_module("cdc_stream")
    monkeypatch.setattr("cdc_stream.CdcStream", FakeStream)
    monkeypatch.setattr("cdc_stream.check_kafka", lambda kafka: None)  # no Kafka in the unit tier
    monkeypatch.setattr("_cli.spark", lambda *a, **k: object())
    assert run_job("cdc_stream", monkeypatch, ["--config", str(jobs), "--source", "shop", "--available-now"]) == 2
    err = capsys.readouterr().err
    assert err.startswith('config error: sources.shop: tables "public"."Orders" and "public"."orders" would share the lake path '
                          "/lake/shop/public/Orders on storage that ignores case"), err
    assert "sources.shop.exclude" in err and "run jobs/bulk_load.py once" in err and "Excluded" not in err
    # --tables on another table: the collision does not concern this run
    with pytest.raises(Reached):
        run_job("cdc_stream", monkeypatch, ["--config", str(jobs), "--source", "shop", "--tables", "public.items"])
