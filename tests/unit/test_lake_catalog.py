"""Catalog registration planning: names every catalog accepts, quoted SQL, collisions, config errors."""

import pytest

from lib.config import parse_config
from lib.config.model import CatalogConfig
from lib.errors import ConfigError
from lib.lake.catalog import (
    catalog_table,
    collisions,
    create_schema_sql,
    create_table_sql,
    drop_table_sql,
    fold,
    same_location,
)

RAW = {"sources": {"shop": {"type": "postgres", "schemas": ["public"], "connection": {"host": "h", "database": "d", "user": "u", "password": "p"}}}}


def test_names_fold_to_what_unity_catalog_and_the_hive_metastore_accept():
    assert fold("Order Items") == "order_items"
    assert fold("Sales.Dept") == "sales_dept"
    assert fold('we"ird`name') == "we_ird_name"
    assert fold("Ünïcode") == "_n_code"
    t = catalog_table(CatalogConfig(), "shop", "Sales Dept", "Order Items", "/lake/shop/Sales Dept/Order Items")
    assert (t.catalog, t.schema, t.table) == ("spark_catalog", "shop_sales_dept", "order_items")
    assert t.name == "`spark_catalog`.`shop_sales_dept`.`order_items`"


def test_sql_registers_an_external_table_at_the_lake_path_and_drops_only_the_name():
    t = catalog_table(CatalogConfig("main", "{schema}"), "shop", "public", "items", "abfss://lake@acct.dfs.core.windows.net/shop/public/it's")
    assert create_schema_sql(t) == "CREATE SCHEMA IF NOT EXISTS `main`.`public`"
    assert create_table_sql(t) == ("CREATE TABLE IF NOT EXISTS `main`.`public`.`items` USING DELTA "
                                   "LOCATION 'abfss://lake@acct.dfs.core.windows.net/shop/public/it\\'s'")
    assert drop_table_sql(t) == "DROP TABLE IF EXISTS `main`.`public`.`items`"
    parquet = catalog_table(CatalogConfig(), "shop", "public", "items", "/lake/x", "parquet")
    assert "USING PARQUET LOCATION '/lake/x'" in create_table_sql(parquet)


def test_a_registered_location_matches_with_or_without_the_file_scheme():
    assert same_location("file:/tmp/lake/shop/public/items", "/tmp/lake/shop/public/items/")
    assert same_location("file:///tmp/lake/t", "/tmp/lake/t")
    assert not same_location("file:/tmp/old/t", "/tmp/lake/t")


def test_tables_folding_to_one_name_are_collisions():
    cfg = CatalogConfig()
    pairs = [((s, t), catalog_table(cfg, "shop", s, t, f"/l/{s}/{t}")) for s, t in
             [("public", "Orders"), ("public", "orders"), ("public", "order items"), ("public", "order_items"), ("public", "x")]]
    assert collisions(pairs) == [
        ("`spark_catalog`.`shop_public`.`order_items`", [("public", "order items"), ("public", "order_items")]),
        ("`spark_catalog`.`shop_public`.`orders`", [("public", "Orders"), ("public", "orders")]),
    ]


def test_catalog_config_defaults_and_errors_name_the_key():
    assert parse_config(RAW, {}).catalog is None
    assert parse_config({**RAW, "catalog": {}}, {}).catalog == CatalogConfig()
    assert parse_config({**RAW, "catalog": {"name": "main"}}, {}).catalog == CatalogConfig("main", "{source}_{schema}")
    for bad, message in [({"name": "a.b"}, "catalog.name: expected a catalog name"),
                         ({"schema": "{source}_{table}"}, "catalog.schema: expected a template of {source} and {schema} only"),
                         ({"nmae": "x"}, "catalog.nmae: unknown key")]:
        with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
            parse_config({**RAW, "catalog": bad}, {})


def test_the_bulk_plan_refuses_tables_that_fold_to_one_catalog_name():
    from lib.name_collisions import collisions_error, source_collisions

    source = parse_config({**RAW, "catalog": {"name": "main"}}, {}).source("shop")
    found = source_collisions(source, [("public", "Order-Items"), ("public", "order items"), ("public", "x")])
    assert [(c.kind, c.target, c.tables) for c in found] == [
        ("catalog name", "`main`.`shop_public`.`order_items`", (("public", "Order-Items"), ("public", "order items")))]
    message = str(collisions_error("shop", found))
    assert message.startswith('sources.shop: tables "public"."Order-Items" and "public"."order items" would be registered under one '
                              "catalog name `main`.`shop_public`.`order_items`")
    assert "sources.shop.exclude" in message
    assert source_collisions(parse_config(RAW, {}).source("shop"), [("public", "Order-Items"), ("public", "order items")]) == []


def test_the_local_metastore_lives_under_a_local_checkpoints_root_only():
    import os

    from lib.lake.catalog import local_session_conf

    config = parse_config({**RAW, "catalog": {}}, {})
    assert local_session_conf(config, "/ck")["spark.hadoop.javax.jdo.option.ConnectionURL"] == (
        "jdbc:derby:;databaseName=/ck/metastore/metastore_db;create=true")
    remote = local_session_conf(config, "wasb://c@acct.blob.core.windows.net/ck")
    assert remote["spark.sql.warehouse.dir"] == os.path.abspath(".") + "/metastore/warehouse"
    assert local_session_conf(parse_config({**RAW, "catalog": {"name": "main"}}, {}), "/ck") == {}
