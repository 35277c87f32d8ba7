"""Tables created or dropped at the source while the stream runs (cdc.auto_add_tables): the pure diff, the
glob a new table is copied with, the dropped state, the listing SQL of each dialect, the config keys and
the apply loop's side of a drop, without Spark, Kafka or a database (end to end:
tests/integration/test_cdc_auto_add.py)."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from lib.bulk.recopy_wait import carried_note
from lib.cdc import offsets as O
from lib.cdc.health.freshness import stalled
from lib.cdc.loop.apply_loop import ApplyLoop, LoopOptions
from lib.cdc.loop.recopy import HELD_NOTE
from lib.cdc.loop.specs import ready_for_cdc
from lib.cdc.new_tables import (
    DROPPED,
    DROPPED_NOTE,
    STREAM_COPY_NOTE,
    copied_line,
    diff_tables,
    dropped_event,
    exact_glob,
    found_line,
    gone_line,
    stream_copy_cut_short,
)
from lib.config import parse_config
from lib.dialects.oracle import catalog as oracle_catalog
from lib.dialects.postgres.catalog import LIST_TABLES_SQL, TABLES_SQL
from lib.dialects.sqlserver import catalog as sqlserver_catalog
from lib.errors import ConfigError
from lib.selection import select_tables
from lib.status.record import StatusEvent

from .test_cdc_recopy import Events, Tombstones, Topics, table
from .test_config import BASE, ENV, doc


def event(name: str, phase: str = "cdc", state: str = "running", schema: str = "public") -> StatusEvent:
    return StatusEvent("shop", schema, name, phase, state, f"/lake/{name}", load_id="l1", cdc_offsets='{"0":3}')  # type: ignore[arg-type]


def known(*events: StatusEvent) -> dict[tuple[str, str], StatusEvent]:
    return {(e.schema, e.table): e for e in events}


def every(_schema: str, _table: str) -> bool:
    return True


def include(*globs: str, exclude: tuple[str, ...] = ()):
    return lambda s, t: bool(select_tables([(s, t)], globs, exclude))


# --- the diff ----------------------------------------------------------------------------------------

def test_a_listed_table_the_status_table_does_not_know_is_new():
    changes = diff_tables([("public", "a"), ("public", "b")], known(event("a")), ["public"], every)
    assert changes.new == (("public", "b"),) and changes.returned == () and changes.dropped == ()
    assert changes.to_copy == (("public", "b"),) and changes


def test_nothing_changed_is_empty():
    changes = diff_tables([("public", "a")], known(event("a")), ["public"], every)
    assert not changes and changes.to_copy == ()


def test_include_exclude_and_skip_decide_which_new_tables_are_copied():
    listed = [("public", "orders_2026"), ("public", "tmp_x"), ("public", "users"), ("public", "skipped")]
    changes = diff_tables(listed, {}, ["public"], include("orders_*", "users", "skipped", exclude=("tmp_*",)), skip=[("public", "skipped")])
    assert changes.new == (("public", "orders_2026"), ("public", "users"))


def test_tables_of_other_schemas_are_neither_new_nor_dropped():
    changes = diff_tables([("other", "x")], known(event("y", schema="other")), ["public"], every)
    assert not changes


def test_a_known_table_missing_from_the_listing_is_dropped_once():
    a, b = event("a"), event("b", phase="bulk", state="completed")
    changes = diff_tables([], known(a, b), ["public"], every)
    assert changes.dropped == (a, b) and changes.new == ()
    reported = dropped_event(a)
    assert not diff_tables([], known(reported), ["public"], every)  # reported already: not again


def test_an_excluded_table_missing_from_the_listing_is_left_alone():
    changes = diff_tables([], known(event("legacy")), ["public"], include("*", exclude=("legacy",)))
    assert changes.dropped == ()


def test_a_table_created_again_after_it_was_dropped_is_copied_again():
    changes = diff_tables([("public", "a")], known(dropped_event(event("a"))), ["public"], every)
    assert changes.returned == (("public", "a"),) and changes.new == () and changes.to_copy == (("public", "a"),)


@pytest.mark.parametrize("state", ["pending", "running", "failed"])
def test_a_table_whose_bulk_copy_is_in_flight_or_failed_is_not_new(state: str):
    assert not diff_tables([("public", "a")], known(event("a", phase="bulk", state=state)), ["public"], every)



# --- the stream's own copies cut short: marked, resumed at its start -------------------------------------

def own(name: str, state: str = "running", note: str | None = STREAM_COPY_NOTE) -> StatusEvent:
    return StatusEvent("shop", "public", name, "bulk", state, f"/lake/{name}", load_id="l1", note=note)  # type: ignore[arg-type]


def test_the_first_look_resumes_the_streams_own_copies_cut_short_and_no_other():
    listed = [("public", n) for n in ("run", "pend", "user", "failed", "done", "cdc", "held")]
    status = known(own("run"), own("pend", "pending"), own("user", note=None), own("failed", "failed"), own("done", "completed"),
                   event("cdc"), own("held", note=HELD_NOTE), own("gone"))
    changes = diff_tables(listed, status, ["public"], every, resume_own=True)
    assert changes.resumed == (("public", "pend"), ("public", "run")) and changes.new == () and changes.returned == ()
    assert changes.to_copy == changes.resumed and changes
    assert [e.table for e in changes.dropped] == ["gone"]  # a copy cut short of a table dropped since: reported, not resumed
    assert not diff_tables(listed[:2], known(own("run"), own("pend", "pending")), ["public"], every)  # later looks: never resumed
    assert diff_tables(listed, known(own("run")), ["public"], include("public.other"), resume_own=True).resumed == ()  # not selected
    assert diff_tables(listed, known(own("run")), ["public"], every, skip=[("public", "run")], resume_own=True).resumed == ()


def test_a_copy_cut_short_is_the_streams_only_with_its_mark_in_a_bulk_event_in_flight():
    assert stream_copy_cut_short(own("a")) and stream_copy_cut_short(own("a", "pending"))
    assert not stream_copy_cut_short(own("a", note=None))  # jobs/bulk_load.py's copy: the user's to resume
    assert not stream_copy_cut_short(own("a", "failed")) and not stream_copy_cut_short(own("a", "completed"))
    assert not stream_copy_cut_short(None) and not stream_copy_cut_short(dataclasses.replace(own("a"), phase="cdc"))


def test_a_copy_carries_this_runs_mark_and_never_an_earlier_runs():
    assert carried_note(None, STREAM_COPY_NOTE) == STREAM_COPY_NOTE  # the stream's copy of a new table
    assert carried_note(own("a"), STREAM_COPY_NOTE) == STREAM_COPY_NOTE  # the stream resuming its own: marked again
    assert carried_note(own("a")) is None  # jobs/bulk_load.py resuming the stream's copy: the user's from now on
    assert carried_note(own("a", note=HELD_NOTE)) is None  # an acknowledgement is never carried (as before)
    assert carried_note(own("a", note="no primary key: CDC is not enabled")) == "no primary key: CDC is not enabled"
    assert carried_note(own("a", note="no primary key"), STREAM_COPY_NOTE) == STREAM_COPY_NOTE

# --- the glob, the events, the lines -------------------------------------------------------------------

@pytest.mark.parametrize("schema,name", [("public", "orders"), ("s", "a*b"), ("sch?ma", "t[1]"), ("public", "Mixed Case")])
def test_the_glob_a_new_table_is_copied_with_matches_it_alone(schema: str, name: str):
    glob = exact_glob(schema, name)
    others = [(schema, "orders_x"), (schema, "aXb"), (schema, "t1"), ("schXma", name), ("other", name)]
    assert select_tables([(schema, name), *others], ["*"], [], [glob]) == [(schema, name)]


def test_a_dropped_event_carries_the_table_forward_and_is_never_applied_or_stalled():
    prior = event("a").next(last_error="old", cdc_inserted=5, source_current_at=datetime.now(UTC) - timedelta(hours=1))
    dropped = dropped_event(prior)
    assert (dropped.state, dropped.note, dropped.last_error) == (DROPPED, DROPPED_NOTE, None)
    assert dropped.cdc_inserted == 5 and dropped.cdc_offsets == prior.cdc_offsets and dropped.seq > prior.seq
    assert ready_for_cdc(prior) and not ready_for_cdc(dropped)
    assert stalled(prior, datetime.now(UTC), 90.0) and not stalled(dropped, datetime.now(UTC), 90.0)


def test_log_lines():
    assert found_line("public", "t", False) == "new source table public.t found: copying it"
    assert "again" in found_line("public", "t", True)
    assert copied_line("public", "t", 10000, 12.345) == "public.t copied: 10000 rows in 12.3s; streaming it"
    assert "no longer exists" in gone_line("public", "t") and "kept" in gone_line("public", "t")


# --- the listing SQL -----------------------------------------------------------------------------------

def test_postgres_lists_the_tables_discovery_finds_by_name_only():
    where = TABLES_SQL.split("WHERE", 1)[1]
    assert where.strip() in LIST_TABLES_SQL and "%s" in LIST_TABLES_SQL
    assert LIST_TABLES_SQL.split("FROM")[0].count(",") == 1  # schema and table only


@pytest.mark.parametrize("module,columns", [(oracle_catalog, "q.OWNER, q.TABLE_NAME"), (sqlserver_catalog, "q.schema_name, q.table_name")])
def test_oracle_and_sqlserver_list_names_over_their_discovery_query(module, columns: str):
    sql = module.list_tables_sql(["APP", "O'Brien"])
    assert sql.startswith(f"SELECT {columns} FROM (") and module.tables_sql(["APP", "O'Brien"]) in sql
    assert "'O''Brien'" in sql  # schema names as quoted literals


# --- the config keys -----------------------------------------------------------------------------------

def test_auto_add_defaults_on_every_30_seconds():
    cdc = parse_config(doc(), ENV).source("shop").cdc
    assert cdc.auto_add_tables is True and cdc.auto_add_interval_seconds == 30.0


def test_auto_add_keys_are_typed():
    raw = doc()
    raw["sources"]["shop"]["cdc"].update({"auto_add_tables": False, "auto_add_interval_seconds": 5})
    cdc = parse_config(raw, ENV).source("shop").cdc
    assert cdc.auto_add_tables is False and cdc.auto_add_interval_seconds == 5.0


@pytest.mark.parametrize("key,value,message", [("auto_add_tables", "maybe", "expected true or false"),
                                               ("auto_add_interval_seconds", 0.5, "expected a number of seconds >= 1"),
                                               ("auto_add_interval_seconds", "soon", "expected a non-negative number")])
def test_bad_auto_add_keys_name_their_yaml_path(key: str, value: object, message: str):
    raw = doc()
    raw["sources"]["shop"]["cdc"][key] = value
    with pytest.raises(ConfigError) as info:
        parse_config(raw, ENV)
    assert f"sources.shop.cdc.{key}" in str(info.value) and message in str(info.value)
    assert BASE["sources"]["shop"]["cdc"] == {"topic_prefix": "shop"}  # doc() copied it


# --- the apply loop's side -----------------------------------------------------------------------------

def loop_of(tables, store: Events, ends: dict[str, int]) -> tuple[ApplyLoop, list[str]]:
    calls: list[str] = []
    options = LoopOptions(threads=1, poll_seconds=0.01, max_messages=100, available_now=True, max_attempts=1, retry_backoff_seconds=0.0)
    loop = ApplyLoop(None, SimpleNamespace(tombstones=Tombstones()), Topics(ends), store, lambda: tables, options)  # type: ignore[arg-type]

    def apply(st, rng, seq):
        from lib.cdc.outcome import TableOutcome
        from lib.cdc.spark.table_range import RangeOutcome
        calls.append(st.spec.table)
        return RangeOutcome(TableOutcome(st.spec, events=rng.messages, applied=rng.messages, inserted=rng.messages), rng, rng.messages)
    loop._apply = apply  # type: ignore[method-assign]
    return loop, calls


def test_a_dropped_table_is_recorded_after_its_last_events_are_applied_and_then_forgotten():
    store = Events()
    gone, other = table("gone", next_offset=2), table("other")
    loop, calls = loop_of([gone, other], store, {"shop.public.gone": 6, "shop.public.other": 3})
    loop.request_drop([gone.event])
    loop.run(threading.Event())
    assert sorted(calls) == ["gone", "other"]  # its events before the drop applied first
    dropped = [e for e in store.events if e.state == DROPPED]
    assert [(e.table, O.from_json(e.cdc_offsets)) for e in dropped] == [("gone", {0: 6})]  # the applied event's fields carried
    assert dropped[0].seq > max(e.seq for e in store.events if e.table == "gone" and e.state != DROPPED)
    assert ("public", "gone") not in loop.tables and ("public", "other") in loop.tables


def test_a_dropped_table_the_loop_does_not_apply_is_recorded_at_once():
    store = Events()
    loop, _calls = loop_of([table("other")], store, {"shop.public.other": 0})
    loop.request_drop([event("absent")])
    loop.run(threading.Event())
    assert [(e.table, e.state, e.note) for e in store.events] == [("absent", DROPPED, DROPPED_NOTE)]


# --- the stream's look (lib.cdc.loop.auto_add), its bulk load faked ------------------------------------

def test_a_look_copies_new_and_returned_tables_and_hands_dropped_ones_to_the_loop(monkeypatch: pytest.MonkeyPatch):
    from lib.cdc.loop import auto_add

    store = Events()
    store.append(event("kept"), event("gone"), dropped_event(event("back")))
    runs: list[tuple[list[str] | None, bool]] = []

    def fake_load(spark, config, source_name, options):
        runs.append((options.tables, options.resume))
        assert options.note == STREAM_COPY_NOTE  # every copy the stream starts is marked as its own
        schema, _, name = (options.tables or [""])[0].partition(".")
        if name != "left_out":
            store.append(StatusEvent("shop", schema, name, "bulk", "completed", f"/lake/{name}", row_count=7))
        return 0
    monkeypatch.setattr(auto_add, "run_bulk_load", fake_load)
    monkeypatch.setattr(auto_add, "sync_source", lambda *a: 0)
    config = parse_config(doc(), ENV)
    source = config.source("shop")
    dialect = SimpleNamespace(list_tables=lambda s: [("public", "kept"), ("public", "back"), ("public", "new"), ("public", "left_out")])
    copied, drops = [], []
    adder = auto_add.AutoAdder(SimpleNamespace(), config, source, dialect, store, every, lambda: copied.append(1),  # type: ignore[arg-type]
                               drops.extend)
    adder._spark = lambda: None  # type: ignore[method-assign]
    changes = adder.look()
    assert changes.new == (("public", "left_out"), ("public", "new")) and changes.returned == (("public", "back"),)
    assert sorted(runs) == [(["public.back"], False), (["public.left_out"], True), (["public.new"], True)]
    assert [(e.table) for e in drops] == ["gone"] and len(copied) == 2
    runs.clear()
    assert adder.look().new == () and runs == []  # copied ones are known now; the one left out is not tried again


def test_the_stream_resumes_its_own_copies_cut_short_at_its_start_and_copies_new_ones_in_its_first_look(monkeypatch: pytest.MonkeyPatch):
    from lib.cdc.loop import auto_add

    store = Events()
    store.append(event("kept"), own("mine"), own("users", note=None))
    runs: list[tuple[list[str] | None, bool, str | None]] = []

    def fake_load(spark, config, source_name, options):
        runs.append((options.tables, options.resume, options.note))
        schema, _, name = (options.tables or [""])[0].partition(".")
        store.append(StatusEvent("shop", schema, name, "bulk", "completed", f"/lake/{name}", row_count=7))
        return 0
    monkeypatch.setattr(auto_add, "run_bulk_load", fake_load)
    monkeypatch.setattr(auto_add, "sync_source", lambda *a: 0)
    config = parse_config(doc(), ENV)
    dialect = SimpleNamespace(list_tables=lambda s: [("public", "kept"), ("public", "mine"), ("public", "users"), ("public", "new")])
    copied: list[int] = []
    adder = auto_add.AutoAdder(SimpleNamespace(), config, config.source("shop"), dialect, store, every, lambda: copied.append(1),  # type: ignore[arg-type]
                               lambda drops: None)
    adder._spark = lambda: None  # type: ignore[method-assign]
    assert adder.resume_own() == (("public", "mine"),)  # the long-running stream's start: its own copy only, not the new table yet
    assert runs == [(["public.mine"], True, STREAM_COPY_NOTE)] and copied == [1]
    assert adder.resume_own() == ()  # completed now
    store.append(own("again"), own("users", note=None))
    runs.clear()
    dialect.list_tables = lambda s: [("public", "kept"), ("public", "again"), ("public", "users"), ("public", "new")]
    changes = adder.look(first=True)  # --available-now: resumed, then new ones copied, in one look
    assert changes.resumed == (("public", "again"),) and changes.new == (("public", "new"),)
    assert runs == [(["public.again"], True, STREAM_COPY_NOTE), (["public.new"], True, STREAM_COPY_NOTE)]


def test_the_long_running_stream_resumes_at_once_then_looks_every_interval(monkeypatch: pytest.MonkeyPatch):
    from lib.cdc.loop import auto_add

    config = parse_config(doc(), ENV)
    calls: list[str] = []
    adder = auto_add.AutoAdder(SimpleNamespace(), config, config.source("shop"), SimpleNamespace(), Events(), every,  # type: ignore[arg-type]
                               lambda: None, lambda drops: None)
    stop = threading.Event()

    def resume(stop_: threading.Event | None = None) -> tuple:
        calls.append("resume")
        raise RuntimeError("source unreachable")  # logged; the looks go on
    monkeypatch.setattr(adder, "resume_own", resume)
    monkeypatch.setattr(adder, "look", lambda stop_=None, first=False: (calls.append(f"look first={first}"), stop.set()))
    adder.interval = 0.01
    adder._run(stop)
    assert calls == ["resume", "look first=False"]


def test_status_shows_a_dropped_table_with_its_note_and_not_behind():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "jobs"))
    from status import problems, render_table

    now = datetime.now(UTC)
    gone = dropped_event(event("gone").next(source_current_at=now - timedelta(hours=2)))
    _header, row = render_table([gone], now=now)
    assert " dropped " in row and DROPPED_NOTE in row and "STALLED" not in row and "2h" not in row
    assert problems([gone], now, 90.0) == {"failed": [], "stalled": []}
