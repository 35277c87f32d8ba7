"""A table copied again while the stream runs: the pure decision (hold / honour / apply), the stream's
acknowledgement the copy waits for, and the apply loop's side of it, without Spark or Kafka (end to end:
tests/integration/test_cdc_handoff.py, the re-copy of a busy table while a stream runs)."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace

import pytest

from lib.bulk.recopy_wait import may_be_streamed, wait_for_holds
from lib.cdc import offsets as O
from lib.cdc.loop.apply_loop import ApplyLoop, LoopOptions, TableState
from lib.cdc.loop.recopy import HELD_NOTE, ack_event, acknowledged, decide, needs_ack
from lib.cdc.outcome import TableOutcome
from lib.cdc.plan import TableSpec
from lib.cdc.spark.table_range import RangeOutcome
from lib.status.record import StatusEvent, latest

OLD, NEW = "load-old", "load-new"


def bulk(state: str, load_id: str = NEW, **fields: object) -> StatusEvent:
    return StatusEvent("shop", "public", "t", "bulk", state, "/lake/t", load_id=load_id, **fields)  # type: ignore[arg-type]


def test_the_copy_the_stream_applies_on_top_of_is_applied():
    assert decide(bulk("completed", OLD), OLD, None).action == "apply"
    assert decide(None, OLD, None).action == "apply"


@pytest.mark.parametrize("state", ["pending", "running", "failed"])
def test_a_newer_copy_not_completed_holds_the_table(state: str):
    decision = decide(bulk(state), OLD, None)
    assert (decision.action, decision.load_id) == ("hold", NEW)


def test_a_completed_newer_copy_is_honoured_with_its_snapshot_and_offsets():
    done = bulk("completed", snapshot_position="0/5000", snapshot_txids="10:20:", cdc_offsets='{"0":7}')
    decision = decide(done, OLD, NEW)
    assert decision.action == "honour" and decision.event is done
    assert decide(done, OLD, None).action == "honour"  # completed between two looks: honoured at once


def test_a_held_table_stays_held_until_a_newer_copy_completes():
    assert decide(None, OLD, NEW).action == "hold"  # its rows gone for a moment (or a fresh start)
    assert decide(bulk("completed", OLD), OLD, NEW).action == "hold"
    assert (decide(bulk("pending", "load-third"), OLD, NEW).load_id) == "load-third"  # the copy run again


def test_after_honouring_the_new_copy_is_the_one_applied():
    assert decide(bulk("completed", NEW), NEW, None).action == "apply"


def test_the_acknowledgement_follows_the_pending_event_and_never_hides_a_later_one():
    pending = bulk("pending", seq=100)
    ack = ack_event(pending)
    assert ack.seq == 101 and ack.note == HELD_NOTE and ack.load_id == NEW and ack.state == "pending"
    running = pending.next(state="running")
    assert latest([pending, ack])[pending.key] is ack and latest([pending, running, ack])[pending.key] is running
    assert acknowledged(ack, NEW) and not acknowledged(ack, "other") and not acknowledged(pending, NEW) and not acknowledged(None, NEW)


def test_a_hold_is_acknowledged_while_the_copy_waits_and_only_with_no_apply_in_flight():
    hold = decide(bulk("pending"), OLD, None)
    assert needs_ack(hold, running=False)
    assert not needs_ack(hold, running=True)
    assert not needs_ack(decide(bulk("running"), OLD, None), running=False)  # the copy stopped waiting
    assert not needs_ack(decide(ack_event(bulk("pending")), OLD, None), running=False)  # acknowledged already
    assert needs_ack(decide(bulk("pending"), OLD, NEW), running=False)  # recorded again by the copy: acknowledged again


@pytest.mark.parametrize(("prior", "first_chunk", "expected"), [
    (None, 0, False),  # a new table: no stream applies it
    (bulk("completed", OLD), 0, True),
    (bulk("completed", OLD).next(phase="cdc", state="running"), 0, True),
    (bulk("failed", OLD, cdc_offsets='{"0":3}'), 0, True),  # a copy again that failed: the stream held it
    (bulk("failed", OLD), 0, False),  # a first load that failed
    (bulk("running", OLD, cdc_offsets='{"0":3}'), 2, False),  # resumed: its first chunk replaced the table already
])
def test_which_copies_wait_for_a_running_stream(prior: StatusEvent | None, first_chunk: int, expected: bool):
    assert may_be_streamed(prior, first_chunk) is expected


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Events:
    """The status table as a list of events (newest per table by seq)."""

    def __init__(self) -> None:
        self.events: list[StatusEvent] = []
        self.reads = 0

    def append(self, *events: StatusEvent) -> None:
        self.events.extend(events)

    def latest(self, source: str | None = None, phase: str | None = None) -> dict[tuple[str, str, str], StatusEvent]:
        self.reads += 1
        return latest(e for e in self.events if (source is None or e.source == source) and (phase is None or e.phase == phase))


def test_a_copy_waits_for_the_streams_acknowledgement_and_no_longer():
    store, clock = Events(), Clock()
    pending = bulk("pending", seq=10)
    store.append(pending)
    original_latest = store.latest

    def latest_then_ack(source: str | None = None, phase: str | None = None) -> dict[tuple[str, str, str], StatusEvent]:
        if store.reads == 2:  # the stream holds the table on its next look
            store.append(ack_event(pending))
        return original_latest(source, phase)
    store.latest = latest_then_ack  # type: ignore[method-assign]
    assert wait_for_holds(store, "shop", [pending], 10.0, 0.5, clock, clock.sleep) == []  # type: ignore[arg-type]
    assert clock.now == 1.0


def test_a_pending_event_hidden_by_a_later_stream_event_is_recorded_again_and_then_acknowledged():
    store, clock = Events(), Clock()
    pending = bulk("pending", seq=10)
    store.append(pending, bulk("completed", OLD, seq=30))  # the stream's freshness event of the old copy, just after
    original_latest = store.latest

    def stream_looks(source: str | None = None, phase: str | None = None) -> dict[tuple[str, str, str], StatusEvent]:
        newest = original_latest(source, "bulk")[pending.key]
        if newest.load_id == NEW and newest.note != HELD_NOTE:  # the stream sees the copy once it is the newest again
            store.append(ack_event(newest))
        return original_latest(source, phase)
    store.latest = stream_looks  # type: ignore[method-assign]
    assert wait_for_holds(store, "shop", [pending], 10.0, 0.5, clock, clock.sleep) == []  # type: ignore[arg-type]
    again = [e for e in store.events if e.load_id == NEW and e.note is None]
    assert len(again) == 2 and again[1].seq > 30


def test_with_no_stream_running_a_copy_waits_the_set_time_then_goes_on():
    store, clock = Events(), Clock()
    store.append(bulk("pending"))
    assert wait_for_holds(store, "shop", [bulk("pending")], 3.0, 0.5, clock, clock.sleep) == [("public", "t")]  # type: ignore[arg-type]
    assert clock.now == 3.0
    assert wait_for_holds(store, "shop", [], 3.0, 0.5, clock, clock.sleep) == [] and clock.now == 3.0  # type: ignore[arg-type]


def test_a_copy_run_again_after_one_killed_once_held_is_not_taken_as_held(monkeypatch: pytest.MonkeyPatch):
    """A re-copy killed right after the stream acknowledged it leaves the acknowledgement as the table's newest
    event. The same command again plans a new copy: its pending event does not carry the old acknowledgement's
    note (else it would count as held at once, and the stream would never acknowledge it), other notes are kept."""
    from lib.bulk import table_load

    plan = SimpleNamespace(chunks=[(1,), (2,)], to_json=lambda: "{}")
    monkeypatch.setattr(table_load, "_plan_or_resume", lambda *a: (plan, NEW, 0, "0/2", None))
    ctx = SimpleNamespace(source=SimpleNamespace(name="shop"), copy_note=None)
    table = SimpleNamespace(schema="public", name="t", primary_key=("id",), qualified_name="public.t")
    snap = SimpleNamespace(method="exported")

    def planned(prior: StatusEvent) -> StatusEvent:
        job = table_load.prepare_table(ctx, table, "/lake/t", prior, snap, False)  # type: ignore[arg-type]
        assert isinstance(job, table_load.TableJob)
        return job.event

    killed = ack_event(bulk("pending", OLD, seq=10, cdc_offsets='{"0":7}'))
    event = planned(killed)
    assert (event.load_id, event.state, event.note, event.cdc_offsets) == (NEW, "pending", None, '{"0":7}')
    assert may_be_streamed(killed, 0)  # it waits for the running stream ...
    store, clock = Events(), Clock()
    store.append(killed, event)
    assert wait_for_holds(store, "shop", [event], 2.0, 0.5, clock, clock.sleep) == [("public", "t")]  # type: ignore[arg-type]
    assert needs_ack(decide(event, OLD, OLD), running=False)  # ... and a stream holding the table acknowledges it
    assert planned(bulk("completed", OLD, note="no primary key: not streamed")).note == "no primary key: not streamed"


# --- the apply loop's side -------------------------------------------------------------------------------

def table(name: str, load_id: str = OLD, next_offset: int | None = None) -> TableState:
    spec = TableSpec("shop", "public", name, f"/lake/{name}", ("id",), (("id", "int"),))
    event = StatusEvent("shop", "public", name, "bulk", "completed", spec.location, load_id=load_id, seq=1)
    return TableState(spec, event, f"shop.public.{name}", {0: next_offset} if next_offset is not None else {})


class Topics:
    def __init__(self, ends: dict[str, int]) -> None:
        self.ends = ends

    def partitions(self) -> dict[str, list[int]]:
        return {t: [0] for t in self.ends}

    def watermarks(self, topics: dict[str, list[int]]) -> dict[str, dict[int, tuple[int, int]]]:
        return {t: {0: (0, self.ends[t])} for t in topics}


class Tombstones:
    max_rows = 1000

    def __len__(self) -> int:
        return 0

    def flush(self, spark: object) -> int:
        return 0


def make_loop(tables: list[TableState], store: Events, ends: dict[str, int], rebuilt: list[StatusEvent]) -> tuple[ApplyLoop, list[tuple[str, O.Range]]]:
    calls: list[tuple[str, O.Range]] = []

    def rebuild(event: StatusEvent) -> TableState:
        rebuilt.append(event)
        fresh = table(event.table, event.load_id or "")
        fresh.event = event
        fresh.next = O.from_json(event.cdc_offsets)
        return fresh

    def recheck() -> dict[tuple[str, str], StatusEvent]:
        return {(e.schema, e.table): e for e in store.latest("shop", phase="bulk").values()}
    options = LoopOptions(threads=1, poll_seconds=0.01, max_messages=100, available_now=True, max_attempts=2, retry_backoff_seconds=0.0,
                          recopy_seconds=0.0)
    runner = ApplyLoop(None, SimpleNamespace(tombstones=Tombstones()), Topics(ends), store, lambda: tables, options,  # type: ignore[arg-type]
                       recheck=recheck, rebuild=rebuild)

    def apply(st: TableState, rng: O.Range, seq: int) -> RangeOutcome:
        calls.append((st.spec.table, rng))
        return RangeOutcome(TableOutcome(st.spec, events=rng.messages, applied=rng.messages, inserted=rng.messages), rng, rng.messages)
    runner._apply = apply  # type: ignore[method-assign]
    return runner, calls


def new_copy(name: str, state: str, seq: int, offsets: str | None = '{"0":4}') -> StatusEvent:
    return StatusEvent("shop", "public", name, "bulk", state, f"/lake/{name}", load_id=NEW, seq=seq, cdc_offsets=offsets,
                       snapshot_position="0/9000")


def test_a_table_being_copied_again_is_held_acknowledged_and_not_recorded_while_the_others_apply(caplog: pytest.LogCaptureFixture):
    store = Events()
    busy, quiet = table("busy", next_offset=6), table("quiet")
    store.append(busy.event.next(seq=1), quiet.event.next(seq=1), new_copy("busy", "pending", 50))
    runner, calls = make_loop([busy, quiet], store, {"shop.public.busy": 20, "shop.public.quiet": 5}, [])
    with caplog.at_level(logging.INFO, logger="lib.cdc.loop.apply_loop"):
        runner.run(threading.Event())
    assert [t for t, _ in calls] == ["quiet"]  # the held table applies nothing, the other goes on
    assert busy.held_for == NEW and busy.next == {0: 6}
    acks = [e for e in store.events if e.note == HELD_NOTE]
    assert [(e.table, e.load_id, e.seq) for e in acks] == [("busy", NEW, 51)]
    assert not [e for e in store.events if e.table == "busy" and e.phase == "cdc"]  # nothing recorded for it
    held = [r.getMessage() for r in caplog.records if "held for a re-copy" in r.getMessage()]
    assert len(held) == 1 and "public.busy" in held[0]


def test_an_apply_in_flight_when_the_hold_comes_is_not_recorded_and_the_ack_waits_for_it():
    store = Events()
    busy = table("busy", next_offset=0)
    runner, _ = make_loop([busy], store, {"shop.public.busy": 10}, [])
    runner.tables = {("public", "busy"): busy}
    busy.running = True
    store.append(new_copy("busy", "pending", 50))
    runner._recopies()
    assert busy.held_for == NEW and not [e for e in store.events if e.note]  # not while its MERGE may still commit
    rng = O.Range(busy.topic, {0: 0}, {0: 10})
    done = SimpleNamespace(result=lambda: RangeOutcome(TableOutcome(busy.spec, events=10, applied=10, inserted=10), rng, 10))
    runner._finish(busy, done, 0.0, 1, {busy.topic: {0: 10}})  # type: ignore[arg-type]
    assert runner._pending_status == [] and busy.next == {0: 0}
    runner._recopies()
    assert [e.note for e in store.events if e.note] == [HELD_NOTE]
    runner._recopies()
    assert [e.note for e in store.events if e.note] == [HELD_NOTE]  # once: the acknowledgement is the newest bulk event


def test_a_retry_of_a_held_tables_apply_stops_without_failing_it():
    store = Events()
    busy = table("busy", next_offset=0)
    runner, _ = make_loop([busy], store, {"shop.public.busy": 10}, [])
    del runner._apply  # the real one: each attempt looks at the hold first
    runner._local.session = object()  # no Spark: the hold stops the attempt before any is used
    busy.held_for = NEW
    with pytest.raises(ValueError, match=NEW):
        runner._apply(busy, O.Range(busy.topic, {0: 0}, {0: 10}), 1)
    runner._fail(busy, "boom")
    assert busy.failed is None and runner._pending_status == []


def test_a_completed_copy_is_taken_over_from_its_offsets_and_applied_after_them(caplog: pytest.LogCaptureFixture):
    store = Events()
    busy = table("busy", next_offset=15)  # applied past the copy's snapshot on the old table: the copy replaced that
    busy.held_for = NEW
    store.append(new_copy("busy", "completed", 60))
    rebuilt: list[StatusEvent] = []
    runner, calls = make_loop([busy], store, {"shop.public.busy": 20}, rebuilt)
    with caplog.at_level(logging.INFO, logger="lib.cdc.loop.apply_loop"):
        runner.run(threading.Event())
    assert [e.load_id for e in rebuilt] == [NEW]
    assert [(r.start[0], r.end[0]) for _, r in calls] == [(4, 20)]  # from the offsets the copy carried, not from 15
    state = runner.tables[("public", "busy")]
    assert state.held_for is None and state.event.load_id == NEW and state.event.phase == "cdc" and state.event.cdc_offsets == '{"0":20}'
    resumed = [r.getMessage() for r in caplog.records if "resumes from its new copy" in r.getMessage()]
    assert len(resumed) == 1 and "0/9000" in resumed[0] and '{"0":4}' in resumed[0]


def test_a_copy_without_recorded_offsets_is_read_from_the_first_retained_message_even_when_starting_at_the_end():
    store = Events()
    busy = table("busy", next_offset=15)
    store.append(new_copy("busy", "completed", 60, offsets=None))
    runner, calls = make_loop([busy], store, {"shop.public.busy": 20}, [])
    runner.options = LoopOptions(threads=1, poll_seconds=0.01, max_messages=100, available_now=True, max_attempts=1,
                                 retry_backoff_seconds=0.0, recopy_seconds=0.0, start_at_end=True)
    runner.run(threading.Event())
    assert [(r.start[0], r.end[0]) for _, r in calls] == [(0, 20)]


def test_the_status_table_gives_the_newest_bulk_event_of_each_table(tmp_path):
    from lib.status.delta_rs_store import DeltaRsStatusStore

    store = DeltaRsStatusStore(None, str(tmp_path))
    store.ensure()
    copy = bulk("pending", seq=10)
    ack = ack_event(copy)
    stream_event = bulk("completed", OLD, seq=5).next(phase="cdc", state="running", seq=20)  # recorded after the copy began
    store.append(bulk("completed", OLD, seq=5), copy, stream_event)
    store.append(ack)
    assert store.latest("shop")[copy.key].seq == 20
    newest_bulk = store.latest("shop", phase="bulk")[copy.key]
    assert (newest_bulk.seq, newest_bulk.note, newest_bulk.load_id) == (11, HELD_NOTE, NEW)
    assert decide(newest_bulk, OLD, None).action == "hold" and acknowledged(newest_bulk, NEW)
    assert store.latest("shop", phase="cdc")[copy.key].seq == 20 and store.latest("other", phase="bulk") == {}


def test_a_copy_completed_for_a_table_not_applied_yet_is_looked_for_at_the_next_poll_once():
    store = Events()
    busy = table("busy", next_offset=0)
    runner, _ = make_loop([busy], store, {"shop.public.busy": 10}, [])
    runner.tables = {("public", "busy"): busy}
    store.append(new_copy("other", "completed", 40))
    runner._recopies()  # the first look: what discovery saw already (e.g. a table the stream does not select)
    assert not runner._refresh_now.is_set()
    store.append(new_copy("late", "running", 41))
    runner._recopies()
    assert not runner._refresh_now.is_set()  # still being copied
    store.append(new_copy("late", "completed", 42))
    runner._recopies()
    assert runner._refresh_now.is_set()  # a stream started during its copy takes it over now, not after refresh_seconds
    runner._refresh_now.clear()
    runner._recopies()
    assert not runner._refresh_now.is_set()  # once per copy
