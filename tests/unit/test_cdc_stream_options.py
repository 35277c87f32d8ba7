"""The CDC stream's pure parts: lake types of new columns, offsets and ranges of the apply loop, status events, log lines."""

from __future__ import annotations

import json

import pytest

from lib.cdc import offsets as O
from lib.cdc.lake_types import lake_type_for
from lib.cdc.loop.batch_line import parse_batch_line, weighted_median
from lib.cdc.loop.table_status import applied_event, apply_line
from lib.cdc.outcome import TableOutcome
from lib.cdc.plan import TableSpec, table_topic
from lib.cdc.source_catalog import stream_lake_type
from lib.dialects.postgres.types import MONEY_TYPE
from lib.status.record import StatusEvent

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


# Every field kind of docs/reference.md, as the local stack's Debezium sends it (lengths and scales
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


def test_table_topics_follow_debeziums_prefix_schema_table_naming():
    assert table_topic("shop", "public", "orders") == "shop.public.orders"
    assert table_topic("shop", "Sales Dept", "Mixed Case T") == "shop.Sales_Dept.Mixed_Case_T"  # Debezium's sanitized names


# --- offsets and ranges of the apply loop ----------------------------------------------------------


def test_pending_counts_what_is_written_and_not_applied():
    assert O.pending({0: 10, 1: 3}, {0: 15, 1: 3}) == 5
    assert O.pending({}, {0: 4, 1: 2}) == 6  # never read: from offset 0
    assert O.pending({0: 20}, {0: 15}) == 0  # an end offset read before the last apply's messages: never negative


def test_next_range_takes_everything_pending_up_to_the_cap():
    rng = O.next_range("t", {0: 10}, {0: 15, 1: 4}, max_messages=100)
    assert rng == O.Range("t", {0: 10, 1: 0}, {0: 15, 1: 4}) and rng.messages == 9
    assert O.next_range("t", {0: 15}, {0: 15}, 100) is None


def test_next_range_splits_the_cap_over_partitions_by_what_each_has_pending():
    rng = O.next_range("t", {0: 0, 1: 0, 2: 50}, {0: 300, 1: 100, 2: 50}, max_messages=100)
    assert rng is not None and rng.end == {0: 75, 1: 25, 2: 50} and rng.messages == 100
    tiny = O.next_range("t", {}, {0: 1000, 1: 1}, max_messages=10)
    assert tiny is not None and tiny.end == {0: 9, 1: 1}  # at least one message of every partition with any


def test_next_range_starts_past_messages_kafka_no_longer_has():
    rng = O.next_range("t", {0: 3}, {0: 10}, 100, low_offsets={0: 6})
    assert rng is not None and rng.start == {0: 6}


def test_range_reads_exactly_its_offsets_through_spark_options():
    options = O.Range("shop.public.a b", {0: 5, 1: 9}, {0: 8, 1: 9}).spark_options()
    assert json.loads(options["assign"]) == {"shop.public.a b": [0]}  # partition 1 has nothing in the range
    assert json.loads(options["startingOffsets"]) == {"shop.public.a b": {"0": 5}}
    assert json.loads(options["endingOffsets"]) == {"shop.public.a b": {"0": 8}}  # exclusive


def test_offsets_round_trip_through_the_status_text():
    assert O.from_json(O.to_json({1: 7, 0: 3})) == {0: 3, 1: 7}
    assert O.to_json({1: 7, 0: 3}) == '{"0":3,"1":7}'
    assert O.from_json(None) == {} and O.from_json("") == {}


def test_a_column_the_bulk_path_measures_is_text_in_the_stream():
    assert stream_lake_type("decimal(38,18)", needs_profile=True) == "string"
    assert stream_lake_type("decimal(12,2)", needs_profile=False) == "decimal(12,2)"


# --- status events and log lines -------------------------------------------------------------------

SPEC = TableSpec("shop", "public", "orders", "/lake/shop/public/orders", ("id",), (("id", "int"),))


def bulk_event() -> StatusEvent:
    return StatusEvent("shop", "public", "orders", "bulk", "completed", "/lake/shop/public/orders", row_count=10, seq=1)


def test_applied_event_accumulates_counts_and_records_offsets_position_and_latency():
    outcome = TableOutcome(SPEC, events=5, applied=5, inserted=2, updated=2, deleted=1, last_position=(100, 120), last_ts_ms=1_700_000_000_000,
                           ts_p50_ms=1_700_000_000_000, ts_p05_ms=1_699_999_999_000, visible_at=1_700_000_002.5)
    first = applied_event(bulk_event(), outcome, {0: 42}, lag=3, now=1_700_000_003.0)
    assert (first.phase, first.state, first.cdc_inserted, first.cdc_updated, first.cdc_deleted) == ("cdc", "running", 2, 2, 1)
    assert first.cdc_offsets == '{"0":42}' and first.cdc_lag == 3 and first.cdc_position == "100/120"
    assert first.cdc_latency_ms == 2500 and first.row_count == 10  # the bulk event's fields carry forward
    second = applied_event(first, outcome, {0: 50}, lag=0, now=1_700_000_003.0)
    assert (second.cdc_inserted, second.cdc_deleted, second.seq > first.seq) == (4, 2, True)


def test_a_failed_apply_marks_the_table_failed_and_keeps_its_offsets():
    event = applied_event(bulk_event(), TableOutcome(SPEC, error="boom"), {0: 7}, lag=0, now=0.0)
    assert (event.phase, event.state, event.last_error, event.cdc_offsets) == ("cdc", "failed", "boom", '{"0":7}')


def test_the_apply_line_is_what_the_demo_and_the_benchmark_parse():
    outcome = TableOutcome(SPEC, events=4, applied=3, inserted=1, updated=1, deleted=1, skipped=1, ts_p50_ms=1000, ts_p05_ms=500, visible_at=3.0)
    line = apply_line(7, outcome, messages=5, dead=0, seconds=2.0, lag=9, now=10.0)
    parsed = parse_batch_line("INFO lib.cdc.loop.apply_loop " + line)
    assert parsed is not None
    assert {k: parsed[k] for k in ("batch", "events", "tables", "inserted", "updated", "deleted", "skipped", "dead_lettered", "lag", "p50", "p95")} == {
        "batch": 7, "events": 4, "tables": 1, "inserted": 1, "updated": 1, "deleted": 1, "skipped": 1, "dead_lettered": 0, "lag": 9, "p50": 2.0, "p95": 2.5}
    assert parsed["table"] == "public.orders"


def test_weighted_median_of_per_table_latencies():
    assert weighted_median([(1.0, 1), (2.0, 1), (9.0, 1)]) == 2.0
    assert weighted_median([(1.0, 10), (2.0, 1), (9.0, 1)]) == 1.0  # most events were fast
    assert weighted_median([(1.0, 1), (2.0, 1), (9.0, 10)]) == 9.0  # most events were slow
    assert weighted_median([(1.0, 0), (4.0, 3), (7.0, 0)]) == 4.0  # tables without applied events do not count
    assert weighted_median([(1.0, 0)]) is None


def test_dead_letters_are_merged_on_their_kafka_coordinates_so_a_replay_adds_none_twice():
    from lib.cdc.loop.dead_letter import COLUMNS, merge_sql

    sql = merge_sql("/lake/_pipeline/dead_letter", "dl_1")
    assert sql.startswith("MERGE INTO delta.`/lake/_pipeline/dead_letter` AS t USING `dl_1` AS s "
                          "ON t.source = s.source AND t.topic = s.topic AND t.partition = s.partition AND t.offset = s.offset ")
    assert "WHEN MATCHED" not in sql and sql.endswith(f"VALUES ({', '.join(f's.`{c}`' for c in COLUMNS)})")
    assert COLUMNS[:4] == ["source", "topic", "partition", "offset"] and "reason" in COLUMNS
