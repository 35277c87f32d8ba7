"""The CDC stream's pure parts: lake types of new columns, Kafka options, checkpoints, lag, latency."""

from __future__ import annotations

import re

import pytest

from lib.cdc.batch import _weighted_median
from lib.cdc.kafka_lag import lag
from lib.cdc.lake_types import lake_type_for
from lib.cdc.stream import StreamOptions, checkpoint_location, kafka_options, table_topics, topic_pattern
from lib.config import parse_config
from lib.dialects.postgres.types import MONEY_TYPE
from lib.errors import ConfigError

TYPE, LENGTH, SCALE = "__debezium.source.column.type", "__debezium.source.column.length", "__debezium.source.column.scale"


def fld(kind, source_type, name=None, length=None, scale=None, items=None):
    """A field schema shaped like Debezium 3.x's (JsonConverter, schemas enabled, column.propagate.source.type)."""
    params = {TYPE: source_type}
    if length is not None:
        params[LENGTH] = str(length)
    if scale is not None:
        params[SCALE] = str(scale)
    schema = {"type": kind, "optional": True, "parameters": params}
    if name:
        schema["name"], schema["version"] = name, 1
    if items is not None:
        schema["items"] = items
    return schema


# Every field kind of CONTRACT.md section 4, as the local stack's Debezium sends it (lengths and scales
# included: e.g. numeric without precision arrives with length 131089, scale 0; money with 2147483647).
@pytest.mark.parametrize(
    ("schema", "lake"),
    [
        (fld("int16", "INT2", length=5, scale=0), "smallint"),
        (fld("int32", "INT4", length=10, scale=0), "int"),
        (fld("int64", "INT8", length=19, scale=0), "bigint"),
        (fld("float", "FLOAT4", length=8, scale=8), "float"),
        (fld("double", "FLOAT8", length=17, scale=17), "double"),
        (fld("boolean", "BOOL", length=1, scale=0), "boolean"),
        (fld("string", "TEXT", length=2147483647, scale=0), "string"),
        (fld("string", "VARCHAR", length=40, scale=0), "string"),
        (fld("string", "BPCHAR", length=3, scale=0), "string"),
        (fld("int32", "DATE", "io.debezium.time.Date", 13, 0), "date"),
        (fld("int64", "TIMESTAMP", "io.debezium.time.MicroTimestamp", 29, 6), "timestamp_ntz"),
        (fld("int64", "TIMESTAMP", "io.debezium.time.Timestamp", 23, 3), "timestamp_ntz"),
        (fld("string", "TIMESTAMPTZ", "io.debezium.time.ZonedTimestamp", 35, 6), "timestamp"),
        (fld("int64", "TIME", "io.debezium.time.MicroTime", 15, 6), "string"),
        (fld("string", "TIMETZ", "io.debezium.time.ZonedTime", 21, 6), "string"),
        (fld("string", "INTERVAL", "io.debezium.time.Interval", 49, 6), "string"),
        (fld("string", "NUMERIC", length=12, scale=2), "decimal(12,2)"),
        (fld("string", "NUMERIC", length=38, scale=10), "decimal(38,10)"),
        (fld("string", "NUMERIC", length=10, scale=0), "decimal(10,0)"),
        (fld("string", "numeric", length=5, scale=5), "decimal(5,5)"),
        (fld("string", "NUMERIC", length=131089, scale=0), "string"),  # numeric without precision
        (fld("string", "NUMERIC"), "string"),  # no bounds at all
        (fld("string", "NUMERIC", length=39, scale=2), "string"),  # wider than Spark's decimal
        (fld("string", "NUMERIC", length=2, scale=5), "string"),  # PostgreSQL 15 allows scale > precision
        (fld("string", "NUMERIC", length=5, scale=-2), "string"),  # and negative scales
        (fld("string", "NUMERIC", length="x", scale=2), "string"),
        (fld("string", "MONEY", length=2147483647, scale=0), MONEY_TYPE),
        (fld("bytes", "BYTEA", length=2147483647, scale=0), "binary"),
        (fld("string", "UUID", "io.debezium.data.Uuid", 2147483647, 0), "string"),
        (fld("string", "JSONB", "io.debezium.data.Json", 2147483647, 0), "string"),
        (fld("string", "JSON", "io.debezium.data.Json", 2147483647, 0), "string"),
        (fld("string", "MOOD", "io.debezium.data.Enum", 2147483647, 0), "string"),
        (fld("string", "INET", length=2147483647, scale=0), "string"),
        (fld("string", "XML", "io.debezium.data.Xml"), "string"),
        (fld("boolean", "BIT", "io.debezium.data.Bits", 1, 0), "string"),
        (fld("int32", "INT4", "io.debezium.time.Date"), "date"),  # the logical name decides, not the Connect type
        (fld("array", "_INT4", length=10, scale=0, items={"type": "int32", "optional": True}), "array<int>"),
        (fld("array", "_INT2", length=5, scale=0, items={"type": "int16", "optional": True}), "array<smallint>"),
        (fld("array", "_TEXT", length=2147483647, scale=0, items={"type": "string", "optional": True}), "array<string>"),
        (fld("array", "_BOOL", length=1, scale=0, items={"type": "boolean", "optional": True}), "array<boolean>"),
        (fld("array", "_UUID", length=2147483647, scale=0,
             items={"type": "string", "optional": True, "name": "io.debezium.data.Uuid", "version": 1}), "array<string>"),
        (fld("array", "_TIMESTAMP", length=29, scale=6,
             items={"type": "int64", "optional": True, "name": "io.debezium.time.MicroTimestamp", "version": 1}), "array<timestamp_ntz>"),
        (fld("array", "_NUMERIC", length=131089, scale=0, items={"type": "string", "optional": True}), "array<string>"),
    ],
)
def test_lake_type_of_a_new_column(schema, lake):
    assert lake_type_for(schema) == lake


def test_lake_type_does_not_mutate_the_field_schema():
    schema = fld("array", "_INT4", length=10, scale=0, items={"type": "int32", "optional": True})
    before = repr(schema)
    lake_type_for(schema)
    assert repr(schema) == before


def test_bounded_numeric_array_gets_the_bulk_paths_decimal_elements():
    # exactly what Debezium sent on the local stack for a numeric(6,2)[] column
    schema = {"type": "array", "items": {"type": "string", "optional": True}, "optional": True,
              "parameters": {TYPE: "_NUMERIC", LENGTH: "6", SCALE: "2", "__debezium.source.column.name": "c_num_arr"}}
    assert lake_type_for(schema) == "array<decimal(6,2)>"


# --- topics ----------------------------------------------------------------------------------------


def java_regex(pattern: str) -> re.Pattern[str]:
    """Python equivalent of a Java regex that quotes with \\Q...\\E (the only Java-only syntax used)."""
    return re.compile(re.sub(r"\\Q(.*?)\\E", lambda m: re.escape(m.group(1)), pattern))


def test_topic_pattern_matches_exactly_the_prefixs_table_topics():
    assert topic_pattern("shop") == "\\Qshop\\E[.].+"
    pattern = java_regex(topic_pattern("shop.v1"))  # Kafka matches subscribePattern against the whole topic name
    assert pattern.fullmatch("shop.v1.public.orders")
    assert pattern.fullmatch("shop.v1.public.Gift_Cards")
    assert not pattern.fullmatch("shopXv1.public.orders")  # the prefix's dot is literal
    assert not pattern.fullmatch("shop.v10.public.orders")
    assert not pattern.fullmatch("shop.v1")
    assert not pattern.fullmatch("__debezium-heartbeat.shop.v1")
    assert not pattern.fullmatch("other.shop.v1.public.orders")


def test_topic_pattern_refuses_a_prefix_that_would_end_the_quote():
    with pytest.raises(ConfigError, match=r"topic_prefix: must not contain \\E"):
        topic_pattern("sh\\Eop")


def test_table_topics_follow_debeziums_prefix_schema_table_naming():
    assert table_topics("shop", [("public", "orders"), ("sales.eu", "order_items")]) == ["shop.public.orders", "shop.sales.eu.order_items"]
    assert table_topics("shop", []) == []


def test_table_topics_use_debeziums_sanitized_topic_names():
    assert table_topics("shop", [("public", "Gift Cards"), ("public", "café")]) == ["shop.public.Gift_Cards", "shop.public.caf_"]


# --- checkpoints -----------------------------------------------------------------------------------


def test_checkpoint_of_the_whole_source():
    assert checkpoint_location("/data/checkpoints", "shop", ()) == "/data/checkpoints/shop"
    assert checkpoint_location("/data/checkpoints/", "shop", ()) == "/data/checkpoints/shop"
    assert checkpoint_location("abfss://cp@acct.dfs.core.windows.net/streams/", "shop", ()) == "abfss://cp@acct.dfs.core.windows.net/streams/shop"


def test_relative_checkpoint_roots_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert checkpoint_location("./checkpoints", "shop", ()) == f"{tmp_path}/checkpoints/shop"


def test_a_tables_restriction_keeps_its_own_stable_checkpoint():
    restricted = checkpoint_location("/cp", "shop", ("public.a*", "sales.orders"))
    # pinned: a changed naming scheme would silently start a new checkpoint (and re-read the topics)
    assert restricted == "/cp/shop.tables-5a19211930"
    assert checkpoint_location("/cp", "shop", ("sales.orders", "public.a*")) == restricted  # order does not matter
    assert checkpoint_location("/cp", "shop", ("public.a*",)) not in (restricted, "/cp/shop")
    assert checkpoint_location("/cp", "shop2", ("public.a*", "sales.orders")) != restricted
    assert not checkpoint_location("/cp", "shop", ("public.a*",)).startswith("/cp/shop/")  # never inside the full stream's


# --- Kafka options ---------------------------------------------------------------------------------


def config(stream=None):
    raw = {
        "kafka": {"bootstrap_servers": "broker1:9092,broker2:9092"},
        "sources": {"shop": {"type": "postgres", "connection": {"host": "h", "database": "d", "user": "u"},
                             "schemas": ["public"], "cdc": {"topic_prefix": "shop.v1"}}},
    }
    if stream is not None:
        raw["stream"] = stream
    cfg = parse_config(raw, {})
    return cfg, cfg.source("shop")


def test_kafka_options_of_the_whole_source_subscribe_by_pattern():
    cfg, source = config()
    assert kafka_options(cfg, source, StreamOptions(), None) == {
        "kafka.bootstrap.servers": "broker1:9092,broker2:9092",
        "startingOffsets": "earliest",
        "maxOffsetsPerTrigger": "200000",
        "failOnDataLoss": "true",
        "kafka.metadata.max.age.ms": "10000",
        "subscribePattern": "\\Qshop.v1\\E[.].+",
    }


def test_kafka_options_of_a_restricted_stream_subscribe_to_its_topics():
    cfg, source = config({"starting_offsets": "latest", "fail_on_data_loss": False, "max_offsets_per_trigger": 5000})
    options = kafka_options(cfg, source, StreamOptions(tables=("public.a",)), ["shop.v1.public.a", "shop.v1.public.b"])
    assert options["subscribe"] == "shop.v1.public.a,shop.v1.public.b" and "subscribePattern" not in options
    assert options["startingOffsets"] == "latest"
    assert options["failOnDataLoss"] == "false"  # Spark wants lower-case booleans
    assert options["maxOffsetsPerTrigger"] == "5000"


def test_the_command_line_overrides_max_offsets_per_trigger():
    cfg, source = config({"max_offsets_per_trigger": 5000})
    assert kafka_options(cfg, source, StreamOptions(max_offsets_per_trigger=123), None)["maxOffsetsPerTrigger"] == "123"
    assert kafka_options(cfg, source, StreamOptions(max_offsets_per_trigger=None), None)["maxOffsetsPerTrigger"] == "5000"


# --- lag and latency -------------------------------------------------------------------------------


def test_lag_is_end_offset_minus_the_next_offset_to_read():
    end = {("shop.public.a", 0): 100, ("shop.public.a", 1): 7, ("shop.public.b", 0): 50}
    processed = {("shop.public.a", 0): 99, ("shop.public.a", 1): 2, ("shop.public.c", 0): 4}
    # a[0]: offsets 0..99 exist, 99 read: caught up; a[1]: 3..6 not read yet; b: nothing read this batch, not
    # reported; c: its end offset could not be fetched, not reported
    assert lag(end, processed) == {("shop.public.a", 0): 0, ("shop.public.a", 1): 4}


def test_lag_is_never_negative():
    assert lag({("t", 0): 10}, {("t", 0): 25}) == {("t", 0): 0}  # an end offset read before the batch's last messages
    assert lag({}, {("t", 0): 3}) == {}


def test_weighted_median_of_per_table_latencies():
    assert _weighted_median([(1.0, 1)]) == 1.0
    assert _weighted_median([(1.0, 1), (2.0, 1), (9.0, 1)]) == 2.0
    assert _weighted_median([(1.0, 10), (2.0, 1), (9.0, 1)]) == 1.0  # most events were fast
    assert _weighted_median([(1.0, 1), (2.0, 1), (9.0, 10)]) == 9.0  # most events were slow
    assert _weighted_median([(1.0, 1), (5.0, 1)]) == 1.0  # even split: the lower middle
    assert _weighted_median([(1.0, 0), (4.0, 3), (7.0, 0)]) == 4.0  # tables without applied events do not count
    assert _weighted_median([(1.0, 0), (2.0, 0), (6.0, 0)]) == 2.0  # no weights at all: the plain median
