"""Truncates and added columns on the direct path, without a JVM or Kafka: the pass (lib.cdc.direct.events),
the shared rules (lib.cdc.table_changes), their delta-rs commits (lib.cdc.direct.lake_changes) and the
worker function with a stand-in for the Kafka reader (lib.cdc.direct.apply).

The truncate MERGE is held to the Spark path's three steps (DELETE of the rows older than the truncate,
then the ordinary MERGE) run by delta-rs on a copy of the same table: same rows, same counts.
tests/integration/test_cdc_direct_changes.py runs both paths on real Debezium events."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lib.cdc import plan as P
from lib.cdc.delta_rs_merge import merge_arrow
from lib.cdc.direct import apply as direct_apply
from lib.cdc.direct import lake_changes
from lib.cdc.direct.decode import NotDirect
from lib.cdc.direct.events import UnknownColumns, arrow_rows, plan, summarize, toasted_names
from lib.cdc.offsets import Range
from lib.cdc.table_changes import counts_after_truncate, new_columns, older_than_sql, truncate_merge, with_columns

from .test_cdc_direct_events import FIELDS, SPEC, TOAST, event, messages

SRC = "__debezium.source.column.type"
THEN = datetime(2026, 1, 1, tzinfo=UTC)
LAKE = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(12, 2)), ("note", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
                  ("day", pa.date32()), (P.COMMIT, pa.decimal128(38, 0)), (P.CHANGE, pa.decimal128(38, 0)), ("__op", pa.string()),
                  ("__ingested_at", pa.timestamp("us", tz="UTC"))])


def truncate(lsn: int, commit: int, txid: int = 200, ts: int = 1_700_000_000_000, table: str = "items", **changes: Any) -> bytes:
    """A Debezium PostgreSQL truncate event (op "t"): no row images."""
    source = {"version": "3.2.3.Final", "connector": "postgresql", "name": "shop", "ts_ms": ts, "snapshot": "false", "db": "shop",
              "sequence": json.dumps([str(commit), str(lsn)]), "schema": "public", "table": table, "txId": txid, "lsn": lsn, "xmin": None}
    return json.dumps({"before": None, "after": None, "source": source, "op": "t", "ts_ms": ts + 5, **changes}).encode()


def lake_table(path: str, rows: list[tuple[int, str, int, int, str]]) -> str:
    """A lake table of SPEC's columns: (id, note, commit, change, op) per row."""
    write_deltalake(path, pa.Table.from_pylist([
        {"id": i, "amount": Decimal("1.00"), "note": note, "created_at": THEN, "day": date(2020, 1, 1), P.COMMIT: Decimal(c), P.CHANGE: Decimal(h),
         "__op": op, "__ingested_at": THEN} for i, note, c, h, op in rows], schema=LAKE))
    return path


def content(path: str) -> list[dict[str, Any]]:
    return sorted(({k: v for k, v in r.items() if k != "__ingested_at"} for r in DeltaTable(path).to_pyarrow_table().to_pylist()),
                  key=lambda r: r["id"])


# --- the pass ---------------------------------------------------------------------------------------


def test_a_truncate_alone_is_counted_and_becomes_the_floor():
    batch = summarize(plan(SPEC, FIELDS), messages(truncate(lsn=700, commit=690, ts=1_700_000_001_000)))
    assert (batch.events, batch.applied, batch.truncates, batch.truncate, batch.rows) == (1, 0, 1, (690, 700), [])
    assert batch.last_position == (690, 700) and batch.last_ts_ms == 1_700_000_001_000 and batch.ts_p50_ms is None


def test_events_before_the_ranges_latest_truncate_are_skipped_as_on_the_spark_path():
    batch = summarize(plan(SPEC, FIELDS), messages(
        event("c", 1, lsn=500, commit=490, note="before", ts=1_700_000_000_000),
        event("c", 2, lsn=510, commit=505, note="before", ts=1_700_000_000_000),
        truncate(lsn=520, commit=515),
        event("c", 2, lsn=530, commit=525, note="after", ts=1_700_000_009_000),
        event("u", 3, lsn=540, commit=535, note=TOAST, ts=1_700_000_009_000),
        truncate(lsn=550, commit=545),
        event("c", 4, lsn=560, commit=555, note="after", ts=1_700_000_009_000),
        event("u", 4, lsn=570, commit=565, amount="2.00", note=TOAST, ts=1_700_000_009_000),
    ))
    assert (batch.events, batch.truncates, batch.truncate) == (8, 2, (545, 550))
    assert batch.applied == 2 and batch.first == (555, 560) and batch.last_position == (565, 570)
    rows = {r[0]: r for r in batch.rows}
    assert sorted(rows) == [4] and rows[4][2] == "after" and batch.toasted == []  # filled from the insert after the truncate
    # the Spark path's statistics are computed before it applies the truncate: its latencies take every row event
    assert batch.ts_p50_ms == 1_700_000_009_000 and batch.ts_p05_ms == 1_700_000_000_000


def test_a_truncate_in_the_bulk_copy_is_skipped_and_an_older_floor_is_replaced_as_spark_replaces_it():
    visible = summarize(plan(SPEC, FIELDS), messages(truncate(lsn=700, commit=690, txid=101), event("c", 1, lsn=710, commit=705)))
    assert (visible.truncates, visible.truncate, visible.applied) == (0, None, 1)
    later_floor = replace(SPEC, truncated_at=(800, 800))  # a replay from further back: the range's truncate is the floor again
    batch = summarize(plan(later_floor, FIELDS), messages(truncate(lsn=700, commit=690), event("c", 1, lsn=710, commit=705)))
    assert (batch.truncate, batch.applied) == ((690, 700), 1)


@pytest.mark.parametrize(("message", "why"), [
    (truncate(lsn=1, commit=1, before={"id": 1}), "op 't'"),
    (truncate(lsn=1, commit=1, after={"id": 1}), "op 't'"),
    (truncate(lsn=1, commit=1, table="other"), "another table"),
    (truncate(lsn=1, commit=1, txid="x"), "txId"),
    (truncate(lsn=1, commit=1, table=None), "another table"),  # Spark takes a truncate naming no table: Spark's to apply
])
def test_truncates_the_direct_pass_leaves_to_spark(message, why):
    with pytest.raises(NotDirect, match=why):
        summarize(plan(SPEC, FIELDS), messages(event("c", 9, lsn=1, commit=1), message))


def test_an_event_with_a_column_the_plan_lacks_names_it_and_crosses_processes():
    with pytest.raises(UnknownColumns) as raised:
        summarize(plan(SPEC, FIELDS), messages(event("u", 1, lsn=1, commit=1, zeta=5, alpha="x")))
    assert raised.value.columns == ("alpha", "zeta") and str(raised.value) == "a column the lake table does not have"
    again = pickle.loads(pickle.dumps(raised.value))  # a worker process hands it back pickled
    assert isinstance(again, NotDirect) and again.columns == ("alpha", "zeta") and str(again) == str(raised.value)


# --- new columns ------------------------------------------------------------------------------------


NOTE2 = {"type": "string", "parameters": {SRC: "TEXT"}}
TAGS = {"type": "array", "items": {"type": "int16"}, "parameters": {SRC: "_INT2"}}


def test_new_columns_take_the_bulk_type_else_the_fields_in_source_order():
    fields = {**FIELDS, "tags": TAGS, "note2": NOTE2}
    assert new_columns(SPEC, FIELDS) == ()
    assert new_columns(SPEC, fields, {"note2": "string", "tags": "array<smallint>"}) == (("tags", "array<smallint>"), ("note2", "string"))
    assert new_columns(SPEC, fields) == (("tags", "array<smallint>"), ("note2", "string"))  # from the Debezium fields
    evolved = with_columns(SPEC, new_columns(SPEC, fields))
    assert evolved.columns[-2:] == (("tags", "array<smallint>"), ("note2", "string")) and with_columns(SPEC, ()) is SPEC
    batch = summarize(plan(evolved, fields), messages(event("u", 1, lsn=5, commit=4), event("u", 2, lsn=6, commit=4, note2="n2", tags=[1, None])))
    rows = {r[0]: r for r in batch.rows}
    assert rows[1][5:7] == [None, None] and rows[2][5:7] == [[1, None], "n2"]


def test_added_columns_are_one_commit_with_the_spark_types_after_the_others(tmp_path):
    path = lake_table(str(tmp_path / "t"), [(1, "a", 1, 0, "r")])
    table_id = DeltaTable(path).metadata().id
    fields = lake_changes.columns_to_add(path, [("tags", "array<smallint>"), ("price", "decimal(12,2)"), ("seen", "timestamp")])
    version = DeltaTable(path).version()
    lake_changes.add_columns(path, fields)
    after = DeltaTable(path)
    assert after.version() == version + 1 and after.metadata().id == table_id  # the same table, one commit
    schema = json.loads(after.schema().to_json())["fields"]
    assert [f["name"] for f in schema][-4:] == ["__ingested_at", "tags", "price", "seen"]
    assert [f["type"] for f in schema][-3:] == [{"type": "array", "elementType": "short", "containsNull": True}, "decimal(12,2)", "timestamp"]
    assert all(f["nullable"] for f in schema)
    # a retried apply: the columns are there with the planned types, nothing to add; another type is Spark's
    assert lake_changes.columns_to_add(path, [("tags", "array<smallint>"), ("price", "decimal(12,2)")]) == []
    with pytest.raises(NotDirect, match="another type"):
        lake_changes.columns_to_add(path, [("price", "decimal(14,2)")])
    with pytest.raises(NotDirect, match="timestampNtz"):  # Delta-Spark adds the table feature with the column
        lake_changes.columns_to_add(path, [("local", "timestamp_ntz")])


# --- the truncate MERGE against the Spark path's DELETE + MERGE ----------------------------------------


def test_truncate_merge_clauses():
    m = truncate_merge(SPEC, ("note",), (10**20, 7))
    older = f"(t.`__op` = 'r' OR t.{P.COMMIT} < CAST('{10**20}' AS DECIMAL(38,0)) OR (t.{P.COMMIT} = CAST('{10**20}' AS DECIMAL(38,0)) AND t.{P.CHANGE} < CAST('7' AS DECIMAL(38,0))))"
    assert older_than_sql((10**20, 7)) == older and m.drop_when == older and m.replace_when == f"{older} AND s.`__op` <> 'd'"
    assert m.clauses == P.merge_clauses(SPEC, ("note",), "now()")
    assert dict(m.replaces)["`note`"] == "CASE WHEN s.`__toast_note` THEN NULL ELSE s.`note` END"  # as the INSERT writes it
    assert "`id`" not in dict(m.replaces) and dict(m.replaces)["`__ingested_at`"] == "now()"
    assert counts_after_truncate({"num_inserted_rows": 2, "num_updated_rows": 3, "num_deleted_rows": 4}, 1) == {
        "num_inserted_rows": 3, "num_updated_rows": 2, "num_deleted_rows": 5}


def test_the_truncate_merge_is_the_spark_paths_delete_then_merge(tmp_path):
    # the table: bulk rows, rows of events before the truncate, rows of events after it (a replay finds them)
    rows = [(1, "bulk", 100, 0, "r"), (2, "bulk", 100, 0, "r"), (3, "bulk", 100, 0, "r"), (4, "old", 500, 10, "u"), (5, "old", 500, 11, "c"),
            (6, "new", 700, 1, "c"), (7, "new", 700, 2, "c"), (8, "new", 700, 3, "c"), (9, "old", 600, 19, "u")]
    one = lake_table(str(tmp_path / "one"), rows)
    two = str(tmp_path / "two")
    shutil.copytree(one, two)
    t = (600, 20)
    p = plan(replace(SPEC, location=one, truncated_at=t), FIELDS)
    batch = summarize(p, messages(
        event("u", 1, lsn=30, commit=610, note="replaced"),      # a bulk row, replaced: the Spark path deletes and inserts it
        event("d", 2, lsn=31, commit=610),                        # a bulk row deleted (by the truncate and the delete)
        event("u", 4, lsn=32, commit=610, note=TOAST),            # older than the truncate: its stored value is gone (NULL)
        event("u", 6, lsn=33, commit=710, note=TOAST),            # newer: the stored value is kept
        event("d", 7, lsn=34, commit=710),                        # newer: deleted
        event("u", 8, lsn=3, commit=700, note="stale"),           # the row's own event again: no change
        event("c", 10, lsn=35, commit=610, note="fresh"),
    ))
    data, toast = arrow_rows(p, batch), toasted_names(p, batch)
    # the Spark path: DELETE of the rows older than the truncate (lib.cdc.plan.truncate_sql), then its MERGE
    deleted = DeltaTable(two).delete(older_than_sql(t, alias=""))["num_deleted_rows"]
    spark = merge_arrow(two, data, P.merge_clauses(p.spec, toast, now="now()"))
    spark["num_deleted_rows"] += deleted
    version = DeltaTable(one).version()
    direct = lake_changes.merge_after_truncate(p.spec, data, toast, t)
    assert DeltaTable(one).version() == version + 1  # one commit
    assert direct == spark == {"num_inserted_rows": 3, "num_updated_rows": 1, "num_deleted_rows": 7}
    assert content(one) == content(two)
    got = {r["id"]: r["note"] for r in content(one)}
    assert got == {1: "replaced", 4: None, 6: "new", 8: "new", 10: "fresh"}
    # a replay of the same range (a crash before its offsets were recorded) changes nothing
    assert lake_changes.merge_after_truncate(p.spec, data, toast, t) == {"num_inserted_rows": 0, "num_updated_rows": 0, "num_deleted_rows": 0}
    assert content(one) == content(two)
    assert lake_changes.delete_before_truncate(one, t) == 0


# --- the worker function, Kafka replaced by the range's messages ------------------------------------


class Reader:
    def __init__(self, values: list[bytes]) -> None:
        self.values = values

    def read(self, rng: Range) -> list[tuple[int, int, bytes]]:
        return messages(*self.values)[rng.start.get(0, 0): rng.end[0]]


@pytest.fixture
def kafka(monkeypatch):
    """The messages the worker function reads (its Kafka reader replaced)."""
    values: list[bytes] = []
    monkeypatch.setattr(direct_apply, "_readers", {})
    monkeypatch.setattr(direct_apply, "KafkaRangeReader", lambda _settings: Reader(values))
    return values


def test_a_truncate_range_applied_directly_then_replayed(tmp_path, kafka):
    path = lake_table(str(tmp_path / "t"), [(1, "bulk", 100, 0, "r"), (2, "bulk", 100, 0, "r")])
    spec = replace(SPEC, location=path)
    kafka += [event("c", 3, lsn=500, commit=490), truncate(lsn=510, commit=505), event("c", 2, lsn=520, commit=515, note="again"),
              event("c", 4, lsn=530, commit=525)]
    rng = Range("topic", {0: 0}, {0: 4})
    out, _ = direct_apply.apply_directly(spec, FIELDS, rng, {})
    assert (out.path, out.events, out.applied, out.truncates, out.skipped) == ("direct", 4, 2, 1, 1)
    assert (out.inserted, out.updated, out.deleted) == (2, 0, 2) and out.spec.truncated_at == (505, 510) and out.visible_at
    assert [(r["id"], r["note"]) for r in content(path)] == [(2, "again"), (4, "n")]
    assert DeltaTable(path).metadata().configuration[P.TRUNCATE_PROPERTY] == "505:510"
    # the same range again, from the spec the stream starts with after a crash (the property read back)
    replay, _ = direct_apply.apply_directly(replace(spec, truncated_at=P.parse_truncated_at("505:510")), FIELDS, rng, {})
    assert (replay.inserted, replay.updated, replay.deleted, replay.applied, replay.truncates) == (0, 0, 0, 2, 1)
    assert [(r["id"], r["note"]) for r in content(path)] == [(2, "again"), (4, "n")]
    # a truncate alone: one DELETE
    kafka += [truncate(lsn=600, commit=590)]
    alone, _ = direct_apply.apply_directly(out.spec, FIELDS, Range("topic", {0: 4}, {0: 5}), {})
    assert (alone.deleted, alone.applied, alone.truncates, alone.spec.truncated_at, content(path)) == (2, 0, 1, (590, 600), [])


def test_a_crash_between_the_truncate_merge_and_its_position_converges_on_the_replay(tmp_path, kafka, monkeypatch):
    path = lake_table(str(tmp_path / "t"), [(1, "bulk", 100, 0, "r")])
    spec = replace(SPEC, location=path)
    kafka += [truncate(lsn=510, commit=505), event("c", 2, lsn=520, commit=515)]
    rng = Range("topic", {0: 0}, {0: 2})

    def crash(*_: Any) -> None:
        raise OSError("the process died")

    with monkeypatch.context() as m:
        m.setattr(lake_changes, "record_truncate", crash)
        with pytest.raises(OSError):
            direct_apply.apply_directly(spec, FIELDS, rng, {})
    assert [r["id"] for r in content(path)] == [2] and P.TRUNCATE_PROPERTY not in DeltaTable(path).metadata().configuration
    out, _ = direct_apply.apply_directly(spec, FIELDS, rng, {})  # the range again (its offsets were not recorded)
    assert (out.inserted, out.deleted) == (0, 0) and [r["id"] for r in content(path)] == [2]
    assert DeltaTable(path).metadata().configuration[P.TRUNCATE_PROPERTY] == "505:510"


def test_new_columns_are_added_before_the_merge_that_fills_them(tmp_path, kafka):
    path = lake_table(str(tmp_path / "t"), [(1, "bulk", 100, 0, "r"), (2, "bulk", 100, 0, "r")])
    spec = replace(SPEC, location=path)
    fields = {**FIELDS, "tags": TAGS, "note2": NOTE2}
    added = new_columns(spec, fields, {"tags": "array<smallint>", "note2": "string"})
    kafka += [event("u", 1, lsn=500, commit=490, note="before"), event("u", 2, lsn=510, commit=505, note2="after", tags=[7])]
    rng = Range("topic", {0: 0}, {0: 2})
    out, _ = direct_apply.apply_directly(spec, fields, rng, {}, added)
    assert out.added_columns == ("tags", "note2") and out.spec.columns == with_columns(spec, added).columns and out.updated == 2
    lake = {r["id"]: r for r in content(path)}
    assert (lake[1]["tags"], lake[1]["note2"], lake[2]["tags"], lake[2]["note2"]) == (None, None, [7], "after")
    again, _ = direct_apply.apply_directly(spec, fields, rng, {}, added)  # a replay: the columns are there, the rows unchanged
    assert again.added_columns == ("tags", "note2") and again.updated == 0 and content(path) == sorted(lake.values(), key=lambda r: r["id"])


class Catalog:
    """The source catalog as the stream reads it: ``fields`` read again when an event names a column it does not know."""

    def __init__(self, fields: dict[str, Any], later: dict[str, Any]) -> None:
        self.current, self.later, self.reads = fields, later, 0

    def fields(self, schema: str, table: str, event_columns: Any = None) -> dict[str, Any]:
        if event_columns and set(event_columns) - set(self.current):
            self.current, self.reads = self.later, self.reads + 1
        return self.current

    def lake_types(self, schema: str, table: str) -> dict[str, str]:
        return {"note2": "string"}


def test_the_applier_reads_the_catalog_again_for_a_column_it_did_not_know(tmp_path, kafka, caplog):
    path = lake_table(str(tmp_path / "t"), [(1, "bulk", 100, 0, "r")])
    catalog = Catalog(FIELDS, {**FIELDS, "note2": NOTE2})
    applier = direct_apply.DirectApplier({}, catalog, processes=0)
    kafka += [event("u", 1, lsn=500, commit=490, note2="new"), truncate(lsn=510, commit=505), event("c", 2, lsn=520, commit=515, note2="x")]
    with caplog.at_level(logging.INFO, logger="lib.cdc.direct.apply"):
        out = applier.apply(replace(SPEC, location=path), Range("topic", {0: 0}, {0: 3}))
    assert out is not None and catalog.reads == 1 and out.added_columns == ("note2",)
    assert [(r["id"], r["note2"]) for r in content(path)] == [(2, "x")]
    assert caplog.messages == ["public.items: new source column(s) added to the lake table: note2 string; by direct",
                               "public.items: truncate at position 505/510 applied; by direct"]
    # a column the catalog does not have either (dropped again): Spark's to apply, nothing written
    version = DeltaTable(path).version()
    kafka += [event("u", 2, lsn=600, commit=590, gone=1)]
    with caplog.at_level(logging.INFO, logger="lib.cdc.direct.apply"):
        assert applier.apply(out.spec, Range("topic", {0: 3}, {0: 4})) is None
    assert caplog.messages[-1] == "public.items: applied by Spark, not directly: a column the lake table does not have"
    assert DeltaTable(path).version() == version
