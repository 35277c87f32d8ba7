"""The direct apply's pure parts (lib.cdc.direct.decode, lib.cdc.direct.events) without a JVM or Kafka:
decoders, the one-pass summary (visibility, truncates, last event per key, counts), what it leaves to
Spark, and its MERGE source run by delta-rs. The messages follow the Debezium PostgreSQL connector's
documented compact event (``schemas.enable=false``): ``before``, ``after``, ``source`` (``sequence``
as the JSON text of two LSN strings, ``lsn``, ``txId``, ``ts_ms``, ``schema``, ``table``), ``op``,
``ts_ms``. tests/integration/test_cdc_decode.py holds the decoders to the bulk values of real events;
the stream suites compare the lake with the source after direct applies."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lib.cdc import plan as P
from lib.cdc.delta_rs_merge import merge_arrow
from lib.cdc.direct.decode import NotDirect, decoder
from lib.cdc.direct.events import _commit, arrow_rows, key_json, plan, summarize, toasted_names, tombstone_rows
from lib.dialects.oracle.cdc_events import EVENTS as ORACLE_EVENTS

SRC = "__debezium.source.column.type"
FIELDS = {
    "id": {"type": "int64", "parameters": {SRC: "INT8"}},
    "amount": {"type": "string", "parameters": {SRC: "NUMERIC"}},
    "note": {"type": "string", "parameters": {SRC: "TEXT"}},
    "created_at": {"type": "string", "name": "io.debezium.time.ZonedTimestamp", "parameters": {SRC: "TIMESTAMPTZ"}},
    "day": {"type": "int32", "name": "io.debezium.time.Date", "parameters": {SRC: "DATE"}},
}
SPEC = P.TableSpec("shop", "public", "items", "/unused", ("id",),
                   (("id", "bigint"), ("amount", "decimal(12,2)"), ("note", "string"), ("created_at", "timestamp"), ("day", "date")),
                   snapshot_txids="100:105:102", has_tombstones=False, merge_by="delta-rs")


def event(op: str, id_: int, lsn: int, commit: int, txid: int = 200, amount: str = "1.50", note: str | None = "n", ts: int = 1_700_000_000_000,
          table: str = "items", **extra: object) -> bytes:
    row = {"id": id_, "amount": amount, "note": note, "created_at": "2024-02-29T23:59:59.123456Z", "day": 19782, **extra}
    source = {"version": "3.2.3.Final", "connector": "postgresql", "name": "shop", "ts_ms": ts, "snapshot": "false", "db": "shop",
              "sequence": json.dumps([str(commit), str(lsn)]), "schema": "public", "table": table, "txId": txid, "lsn": lsn, "xmin": None}
    before = {"id": id_, "amount": None, "note": None, "created_at": None, "day": None} if op == "d" else None
    return json.dumps({"before": before, "after": None if op == "d" else row, "source": source, "op": op, "ts_ms": ts + 5}).encode()


def messages(*values: bytes) -> list[tuple[int, int, bytes]]:
    return [(0, i, v) for i, v in enumerate(values)]


def test_decoders_give_the_lake_values_and_refuse_what_spark_would_not_give_exactly():
    dec = decoder(FIELDS["amount"], "decimal(12,2)")
    assert (dec.convert("1.5"), dec.convert("-0.100"), dec.storage) == ("1.5", "-0.100", "string")  # Arrow's exact cast makes the number
    for bad in ("1.234", "12345678901.00", "1e5", "NAN", "", 1.5, "1.5\n"):
        with pytest.raises(NotDirect, match="decimal"):
            dec.convert(bad)
    zoned = decoder(FIELDS["created_at"], "timestamp")
    assert zoned.convert("1970-01-01T00:00:01.5Z") == 1_500_000 and zoned.storage == "int64"
    assert zoned.convert("0001-01-01T00:00:00Z") == -62_135_596_800_000_000
    assert zoned.convert("2024-02-29T23:59:59.000001Z") == zoned.convert("2024-02-29T23:59:00Z") + 59_000_001  # its minute cached
    for bad in ("2024-02-30T00:00:00Z", "2024-01-01T00:00:00+01:00", "2024-01-01T00:00:00.1234567Z", "+10000-01-01T00:00:00Z",
                "2024-01-01T00:00:60Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00Z\n", "2024-01-01 00:00:00Z", 17):
        with pytest.raises(NotDirect, match="ISO UTC instant"):
            zoned.convert(bad)
    assert decoder({"type": "int32"}, "int").convert(-(2**31)) == -(2**31)
    with pytest.raises(NotDirect, match="integer in range"):
        decoder({"type": "int16"}, "smallint").convert(40000)
    with pytest.raises(NotDirect, match="integer in range"):
        decoder({"type": "int32"}, "int").convert(True)  # a JSON boolean is not a number
    assert decoder({"type": "double"}, "double").convert("NaN") != decoder({"type": "double"}, "double").convert("NaN")  # NaN
    assert decoder({"type": "string", "parameters": {SRC: "NUMERIC"}}, "string").convert("POSITIVE_INFINITY") == "Infinity"
    assert decoder({"type": "int64", "name": "io.debezium.time.MicroTime"}, "string").convert(86_400_000_000) == "24:00:00"
    assert decoder({"type": "string", "name": "io.debezium.time.Interval"}, "string").convert("P0Y0M0DT0H0M-4.7764105S") == "-00:00:04.776411"
    assert decoder({"type": "bytes"}, "binary").convert("AAE=") == b"\x00\x01"
    with pytest.raises(NotDirect, match="base64"):
        decoder({"type": "bytes"}, "binary").convert("AAE")
    # what the Spark decoders refuse too, and combinations the bulk load never makes (tests/unit/test_cdc_direct_decode.py has the rest)
    for field, lake in (({"type": "array", "items": {"type": "array", "items": {"type": "int32"}}}, "array<array<int>>"),
                        ({"type": "array", "items": {"type": "bytes"}, "parameters": {SRC: "_BYTEA"}}, "array<string>"),
                        ({"type": "bytes", "name": "io.debezium.data.Bits", "parameters": {SRC: "VARBIT"}}, "string"),
                        ({"type": "double"}, "int"), ({"type": "int64"}, "date")):
        with pytest.raises(NotDirect, match="has no direct decoding"):
            decoder(field, lake)


def test_summary_keeps_the_last_event_per_key_and_counts_like_the_spark_path():
    p = plan(SPEC, FIELDS)
    batch = summarize(p, messages(
        event("c", 1, lsn=500, commit=490, txid=102),  # txid in xip: not in the copy, applied
        event("u", 2, lsn=300, commit=290, txid=101),  # committed before the snapshot: skipped
        event("u", 1, lsn=520, commit=510, amount="2.25", note=None),
        event("d", 3, lsn=530, commit=510, txid=201),
        event("c", 4, lsn=540, commit=535, ts=1_700_000_009_000),
    ))
    assert (batch.events, batch.applied, batch.deletes) == (5, 4, 1)
    assert batch.last_position == (535, 540) and batch.first == (490, 500) and batch.last_delete == (510, 530)
    assert batch.last_ts_ms == 1_700_000_009_000 and batch.ts_p50_ms == 1_700_000_000_000
    rows = {r[0]: r for r in batch.rows}
    assert sorted(rows) == [1, 3, 4]
    assert rows[1] == [1, "2.25", None, 1_709_251_199_123_456, 19782, "u", 510, 520, 1_700_000_000_000, 2]
    assert rows[3][5] == "d"
    assert tombstone_rows(p, batch) == (("public", "items", '{"id":3}', Decimal(510), Decimal(530)),)


def test_commit_position_is_the_first_sequence_lsn_and_zero_when_null():
    assert _commit('["24023119","24023128"]') == 24023119 and _commit('[null,"24023128"]') == 0 and _commit(None) == 0
    for bad in ('["x1","2"]', "24023119", '["-1","2"]', 5):
        with pytest.raises(NotDirect, match="not a list of LSN digits"):
            _commit(bad)


def test_order_within_a_key_is_the_position_then_partition_and_offset():
    later_first = [(1, 0, event("u", 1, lsn=700, commit=690, amount="9.00")), (0, 5, event("u", 1, lsn=600, commit=590, amount="1.00"))]
    assert summarize(plan(SPEC, FIELDS), later_first).rows[0][1] == "9.00"
    same = [(0, 1, event("u", 1, lsn=700, commit=690, amount="1.00")), (1, 0, event("u", 1, lsn=700, commit=690, amount="2.00"))]
    assert summarize(plan(SPEC, FIELDS), same).rows[0][1] == "2.00"  # partition 1 after partition 0


def test_lsn_fallback_and_truncate_floor_skip_older_events():
    no_txids = replace(SPEC, snapshot_txids=None, snapshot_position=510, truncated_at=None)
    batch = summarize(plan(no_txids, FIELDS), messages(event("u", 1, lsn=510, commit=500), event("u", 2, lsn=511, commit=500)))
    assert (batch.events, batch.applied, [r[0] for r in batch.rows]) == (2, 1, [2])
    truncated = replace(SPEC, truncated_at=(600, 605))
    batch = summarize(plan(truncated, FIELDS), messages(event("u", 1, lsn=605, commit=600), event("u", 2, lsn=606, commit=600)))
    assert [r[0] for r in batch.rows] == [2]


@pytest.mark.parametrize(("message", "why"), [
    (b'{"schema":{"type":"struct"},"payload":{}}', "schema block"),
    (event("t", 1, lsn=1, commit=1), "op 't'"),
    (event("u", 1, lsn=1, commit=1, table="other"), "another table"),
    (event("u", 1, lsn=1, commit=1, added=5), "a column the lake table does not have"),
    (event("u", 1, lsn=1, commit=1, amount="1.999"), "^column amount: a value that is not a decimal\\(12,2\\) \\(str\\)$"),
    (b"not json", "not a Debezium change event"),
])
def test_what_the_direct_pass_leaves_to_spark(message, why):
    with pytest.raises(NotDirect, match=why):
        summarize(plan(SPEC, FIELDS), messages(event("c", 9, lsn=1, commit=1), message))


def test_tables_the_direct_pass_leaves_to_spark():
    with pytest.raises(NotDirect, match="no primary key"):
        plan(replace(SPEC, key_columns=()), FIELDS)
    with pytest.raises(NotDirect, match="key column day is date"):
        plan(replace(SPEC, key_columns=("day",)), FIELDS)
    with pytest.raises(NotDirect, match="has no direct decoding"):
        plan(SPEC, {**FIELDS, "note": {"type": "array", "items": {"type": "string"}}})
    with pytest.raises(NotDirect, match="a source column the lake table does not have"):
        plan(SPEC, {**FIELDS, "added": {"type": "int32"}})
    oracle = replace(SPEC, event_format=ORACLE_EVENTS)
    with pytest.raises(NotDirect, match="oracle events are applied by Spark"):
        plan(oracle, FIELDS)


def test_key_json_is_sparks_to_json_text_for_integer_and_text_keys():
    assert key_json(("Order Id", "n"), ('a"b\\c/é', 7)) == '{"Order Id":"a\\"b\\\\c/é","n":7}'
    with pytest.raises(NotDirect, match="control characters"):
        key_json(("Order Id", "n"), ("a\x01", 7))


def test_the_direct_source_merged_by_delta_rs(tmp_path):
    """The rows of a summary, as Arrow of the lake types, MERGEd with the stream's own clauses."""
    path = str(tmp_path / "t")
    p = plan(SPEC, FIELDS)
    then = datetime(2026, 1, 1, tzinfo=UTC)
    bulk = {"id": [1, 3], "amount": [Decimal("1.00"), Decimal("3.00")], "note": ["b1", "b3"], "created_at": [then, then],
            "day": [date(2020, 1, 1)] * 2, "__source_commit_pos": [Decimal(100)] * 2, "__source_change_pos": [Decimal(0)] * 2,
            "__op": ["r", "r"], "__ingested_at": [then, then]}
    schema = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(12, 2)), ("note", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
                        ("day", pa.date32()), ("__source_commit_pos", pa.decimal128(38, 0)), ("__source_change_pos", pa.decimal128(38, 0)),
                        ("__op", pa.string()), ("__ingested_at", pa.timestamp("us", tz="UTC"))])
    write_deltalake(path, pa.Table.from_pydict(bulk, schema=schema))
    batch = summarize(p, messages(event("u", 1, lsn=520, commit=510, amount="2.25"), event("d", 3, lsn=530, commit=510),
                                  event("c", 4, lsn=540, commit=535, note="new")))
    data = arrow_rows(p, batch)
    assert data.schema.field("created_at").type == pa.timestamp("us", tz="UTC") and data.schema.field("day").type == pa.date32()
    metrics = merge_arrow(path, data, P.merge_clauses(SPEC, (), now="now()"))
    assert metrics == {"num_inserted_rows": 1, "num_updated_rows": 1, "num_deleted_rows": 1}
    rows = sorted(DeltaTable(path).to_pyarrow_table().to_pylist(), key=lambda r: r["id"])
    assert [(r["id"], r["amount"], r["note"], r["day"], r["__op"], int(r["__source_change_pos"])) for r in rows] == [
        (1, Decimal("2.25"), "n", date(2024, 2, 29), "u", 520), (4, Decimal("1.50"), "new", date(2024, 2, 29), "c", 540)]
    assert rows[0]["created_at"] == datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC)


TOAST = "__debezium_unavailable_value"


def test_unchanged_toast_values_are_filled_from_the_keys_earlier_event_or_kept_by_the_merge(tmp_path):
    """Debezium's placeholder in an update means "unchanged": filled from the key's latest earlier event of
    the range (insert and update in one range), else flagged so the MERGE keeps the stored value, as the
    Spark path's fill window and MERGE do; in an insert it is a value like any other."""
    p = plan(SPEC, FIELDS)
    batch = summarize(p, messages(
        event("u", 1, lsn=520, commit=510, amount="2.25", note=TOAST),            # alone: the lake keeps its note
        event("c", 2, lsn=530, commit=525, note="fresh"),                          # insert, then
        event("u", 2, lsn=531, commit=525, amount="7.00", note=TOAST),             # an update in the same range: filled
        event("u", 5, lsn=540, commit=535, note=TOAST),                            # not in the lake: inserted with NULL
        event("c", 6, lsn=550, commit=545, note=TOAST),                            # an insert's placeholder is its value
    ))
    rows = {r[0]: (r, t) for r, t in zip(batch.rows, batch.toasted, strict=True)}
    note = [n for n, _ in SPEC.columns].index("note")
    assert rows[1][1] == (note,) and rows[2][1] == () and rows[2][0][note] == "fresh" and rows[5][1] == (note,)
    assert rows[6][1] == () and rows[6][0][note] == TOAST
    assert batch.toast_columns() == (note,) and toasted_names(p, batch) == ("note",)
    path = str(tmp_path / "t")
    then = datetime(2026, 1, 1, tzinfo=UTC)
    write_deltalake(path, pa.Table.from_pydict(
        {"id": [1], "amount": [Decimal("1.00")], "note": ["stored"], "created_at": [then], "day": [date(2020, 1, 1)],
         "__source_commit_pos": [Decimal(100)], "__source_change_pos": [Decimal(0)], "__op": ["r"], "__ingested_at": [then]},
        schema=pa.schema([("id", pa.int64()), ("amount", pa.decimal128(12, 2)), ("note", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
                          ("day", pa.date32()), ("__source_commit_pos", pa.decimal128(38, 0)), ("__source_change_pos", pa.decimal128(38, 0)),
                          ("__op", pa.string()), ("__ingested_at", pa.timestamp("us", tz="UTC"))])))
    merge_arrow(path, arrow_rows(p, batch), P.merge_clauses(SPEC, toasted_names(p, batch), now="now()"))
    lake = {r["id"]: r for r in DeltaTable(path).to_pyarrow_table().to_pylist()}
    assert (lake[1]["note"], lake[1]["amount"]) == ("stored", Decimal("2.25"))
    assert (lake[2]["note"], lake[2]["amount"]) == ("fresh", Decimal("7.00"))
    assert lake[5]["note"] is None and lake[6]["note"] == TOAST


def test_placeholders_in_a_keys_events_out_of_order_go_to_spark():
    with pytest.raises(NotDirect, match="out of order"):
        summarize(plan(SPEC, FIELDS), [(1, 0, event("u", 1, lsn=700, commit=690)), (0, 5, event("u", 1, lsn=600, commit=590, note=TOAST))])
