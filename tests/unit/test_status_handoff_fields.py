"""Status fields of the CDC handoff: the snapshot's txids, the stream's counters; which prior events a
bulk load skips or resumes from, and which snapshot a resumed table records."""

import dataclasses
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from lib.bulk import table_load
from lib.bulk.planner import SplitChoice, TablePlan
from lib.bulk.runner import already_loaded
from lib.dialects.base import Column, ColumnRead, Snapshot, Table
from lib.status.record import SCHEMA_DDL, StatusEvent

OLD_COLUMNS = (
    "source", "schema", "table", "phase", "state", "location", "row_count", "primary_key", "snapshot_position", "snapshot_method",
    "cdc_position", "attempts", "last_error", "started_at", "updated_at", "load_id", "chunks_total", "chunks_done", "plan", "note", "seq",
)


def test_new_fields_come_after_seq_so_old_tables_merge():
    names = [f.name for f in dataclasses.fields(StatusEvent)]
    assert tuple(names[: len(OLD_COLUMNS)]) == OLD_COLUMNS
    assert names[len(OLD_COLUMNS):] == ["snapshot_txids", "cdc_event_time", "cdc_inserted", "cdc_updated", "cdc_deleted", "cdc_lag", "cdc_latency_ms", "cdc_offsets", "source_current_at"]
    assert "cdc_event_time TIMESTAMP" in SCHEMA_DDL and "cdc_latency_ms BIGINT" in SCHEMA_DDL and "snapshot_txids STRING" in SCHEMA_DDL


def test_from_row_of_an_old_status_table_takes_defaults():
    at = datetime(2026, 1, 2, 3, 4, 5)
    row = {name: None for name in OLD_COLUMNS} | {
        "source": "shop", "schema": "public", "table": "a", "phase": "bulk", "state": "completed", "location": "/l/a",
        "primary_key": ["id"], "attempts": 1, "updated_at": at, "seq": 5,
    }
    e = StatusEvent.from_row(row)
    assert e.primary_key == ("id",) and e.updated_at == at.replace(tzinfo=UTC) and e.seq == 5
    assert (e.snapshot_txids, e.cdc_event_time, e.cdc_inserted, e.cdc_lag, e.cdc_latency_ms) == (None,) * 5


def test_cdc_fields_roundtrip_and_summary():
    e = StatusEvent("shop", "public", "a", "cdc", "running", "/l/a", snapshot_txids="740:745:741", cdc_event_time=datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC),
                    cdc_inserted=12, cdc_updated=3, cdc_deleted=1, cdc_lag=40, cdc_latency_ms=850)
    row = dict(zip([f.name for f in dataclasses.fields(StatusEvent)], e.as_row(), strict=True))
    back = StatusEvent.from_row({**row, "cdc_event_time": datetime(2026, 5, 6, 7, 8, 9)})  # Spark returns naive UTC
    assert back == e
    summary = e.summary()
    assert summary["cdc_event_time"] == "2026-05-06T07:08:09+00:00" and summary["snapshot_txids"] == "740:745:741"
    assert (summary["cdc_inserted"], summary["cdc_updated"], summary["cdc_deleted"], summary["cdc_lag"], summary["cdc_latency_ms"]) == (12, 3, 1, 40, 850)
    assert StatusEvent("s", "p", "t", "bulk", "running", "/l").summary()["cdc_event_time"] is None


def test_next_carries_the_bulk_fields_into_cdc_events():
    bulk = StatusEvent("shop", "public", "a", "bulk", "completed", "/l/a", snapshot_position="0/16B3748", snapshot_txids="1:5:3", load_id="x", plan="{}")
    cdc = bulk.next(phase="cdc", state="running", cdc_inserted=1)
    assert (cdc.snapshot_txids, cdc.snapshot_position, cdc.load_id, cdc.plan) == ("1:5:3", "0/16B3748", "x", "{}")


def event(phase: str, state: str) -> StatusEvent:
    return StatusEvent("shop", "public", "a", phase, state, "/l/a")


@pytest.mark.parametrize(
    ("phase", "state", "loaded"),
    [("bulk", "completed", True), ("cdc", "running", True), ("cdc", "failed", True), ("cdc", "completed", True),
     ("bulk", "running", False), ("bulk", "failed", False), ("bulk", "pending", False)],
)
def test_a_table_in_phase_cdc_has_completed_its_bulk_load(phase, state, loaded):
    assert already_loaded(event(phase, state)) is loaded
    assert already_loaded(None) is False


# --- which prior a load resumes from, and the snapshot it records

TABLE = Table("public", "a", (Column("id", "integer", False, 1),), ("id",), 300, 0)
PLAN = TablePlan("public", "a", 300, SplitChoice("range", ("id",), 1, 3, "test"), (("id < 100",), ("id >= 100 AND id < 200",), ("id >= 200",)),
                 (ColumnRead("id", '"id"', "int"),))
NEW = Snapshot(position="0/300", session_init_sql="-", method="temporary-slot", txids="900:905:901")


def plan_or_resume(monkeypatch, prior, committed: int = 0, resume: bool = True):
    monkeypatch.setattr(table_load, "committed_chunk", lambda spark, location, load_id: committed)
    monkeypatch.setattr(table_load, "_types_still_fit", lambda *args: True)
    monkeypatch.setattr(table_load, "build_plan", lambda *args: PLAN)
    ctx = SimpleNamespace(spark=None, lake_format="delta", source=None, dialect=None, bulk=SimpleNamespace(max_attempts=1, retry_backoff_seconds=0), partitions=1)
    return table_load._plan_or_resume(ctx, TABLE, "/l/a", prior, NEW, resume)


def interrupted(phase: str = "bulk", **fields) -> StatusEvent:
    base = {"snapshot_position": "0/100", "snapshot_txids": "700:705:702", "load_id": "L1", "plan": PLAN.to_json()} | fields
    return StatusEvent("shop", "public", "a", phase, "failed", "/l/a", **base)


def test_resumed_table_records_the_earliest_snapshot(monkeypatch):
    _plan, load_id, first, position, txids = plan_or_resume(monkeypatch, interrupted(), committed=0)
    assert (load_id, first, position, txids) == ("L1", 1, "0/100", "700:705:702")


def test_resumed_table_without_recorded_txids_keeps_none_not_the_newer_ones(monkeypatch):
    *_, position, txids = plan_or_resume(monkeypatch, interrupted(snapshot_txids=None), committed=1)
    assert (position, txids) == ("0/100", None)


def test_fresh_load_records_this_snapshot(monkeypatch):
    for prior, resume in [(None, True), (interrupted(), False), (interrupted(phase="cdc"), True)]:
        _plan, load_id, first, position, txids = plan_or_resume(monkeypatch, prior, committed=1, resume=resume)
        assert (first, position, txids) == (0, "0/300", "900:905:901") and load_id != "L1"
