"""The connector health decisions (lib.cdc.health.slot_health) and the freshness arithmetic (lib.cdc.health.freshness),
without Kafka, Kafka Connect or a database. The live faults are in tests/integration/test_cdc_chaos.py."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from lib.cdc.health import slot_health as H
from lib.cdc.health.freshness import behind_seconds, freshness_updates, heartbeat_time, stalled
from lib.status.record import StatusEvent

T0 = 1_800_000_000.0  # after the holders' connection time below
STALL = 60.0


def slot(active: bool = True, pid: int | None = 4242, user: str = "loader", confirmed: str = "0/100", lag: int = 5000) -> dict[str, Any]:
    return {"slot": "s", "active": active, "active_pid": pid if active else None, "holder_user": user if active else None,
            "holder_application": "Debezium Streaming", "holder_started_at": datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC),
            "confirmed_flush_lsn": confirmed, "lag_bytes": lag}


def obs(now: float, heartbeat: float | None = None, kafka_ok: bool = True, state: str | None = "RUNNING",
        slot_info: dict[str, Any] | None = None) -> H.Observation:
    return H.Observation(now, heartbeat, kafka_ok, state, slot_info if slot_info is not None else slot(), "loader")


def run(observations: list[H.Observation]) -> list[H.Action]:
    """Feed observations in order, as the doctor does (acting on every action)."""
    memory = H.Memory(started_at=T0)
    actions = []
    for o in observations:
        memory = H.remember(memory, o)
        action = H.plan(memory, o, STALL)
        memory = H.acted(memory, action, o.now)
        actions.append(action)
    return actions


def test_a_streaming_connector_is_left_alone():
    actions = run([obs(T0 + t, heartbeat=T0 + t - 5, slot_info=slot(confirmed=f"0/{t}")) for t in range(0, 300, 10)])
    assert {a.kind for a in actions} == {"none"}


def test_the_connectors_own_stale_connection_is_terminated_once_silent_and_stuck_for_the_grace_period():
    # heartbeats stop at T0+10; the slot stays held by pid 4242 (the connector's role) with an unchanged position
    seq = [obs(T0 + t, heartbeat=T0 + 10) for t in range(0, 200, 10)]
    actions = run(seq)
    first = next(i for i, a in enumerate(actions) if a.kind != "none")
    assert actions[first].kind == "terminate_holder" and actions[first].pid == 4242
    assert seq[first].now - (T0 + 10) >= STALL  # not before the grace period
    assert "pid 4242 (Debezium Streaming, connected since 12:00:00)" in actions[first].reason
    assert "connector's previous, stale connection" in actions[first].reason
    # then it waits (COOLDOWN_SECONDS) before acting again
    assert all(a.kind == "none" for a in actions[first + 1:])


def test_a_connection_opened_after_the_last_heartbeat_is_a_starting_task_not_a_stale_one():
    newer = {**slot(), "holder_started_at": datetime.fromtimestamp(T0 + 20, UTC)}
    seq = [obs(T0 + t, heartbeat=T0 + 10, slot_info=newer) for t in range(0, 200, 10)]
    actions = run(seq)
    assert {a.kind for a in actions} == {"none"} and "newer than the last heartbeat" in actions[-1].reason


def test_a_slot_whose_position_still_moves_is_not_stale_even_without_heartbeats():
    seq = [obs(T0 + t, heartbeat=None, slot_info=slot(confirmed=f"0/{t}")) for t in range(0, 300, 10)]
    assert {a.kind for a in run(seq)} == {"none"}


def test_nothing_is_concluded_while_kafka_is_unreadable():
    seq = [obs(T0 + t, heartbeat=None, kafka_ok=False) for t in range(0, 300, 10)]
    actions = run(seq)
    assert {a.kind for a in actions} == {"none"} and "Kafka is not readable" in actions[-1].reason


def test_a_slot_held_by_another_role_is_reported_not_terminated():
    seq = [obs(T0 + t, heartbeat=None, slot_info=slot(user="someone_else")) for t in range(0, 200, 10)]
    actions = run(seq)
    assert "terminate_holder" not in {a.kind for a in actions}
    report = next(a for a in actions if a.kind == "report")
    assert "not by the connector's role loader" in report.reason


def test_a_failed_task_is_restarted_at_once_then_with_a_doubling_cooldown_until_it_streams():
    seq = [obs(T0 + t, heartbeat=None, state="FAILED") for t in range(0, 1000, 10)]
    actions = run(seq)
    at = [o.now - T0 for o, a in zip(seq, actions, strict=True) if a.kind == "restart_failed"]
    assert at[:3] == [0, H.COOLDOWN_SECONDS, 3 * H.COOLDOWN_SECONDS]  # 150 s, then 300 s later: a task restarted again and again only waits longer
    # once a heartbeat arrives after the action, the backoff starts over
    memory = H.Memory(started_at=T0, last_action_at=T0 + 450, actions=3)
    back = obs(T0 + 500, heartbeat=T0 + 490)
    assert H.remember(memory, back).actions == 0


def test_a_running_connector_that_does_not_stream_from_a_free_slot_is_restarted():
    seq = [obs(T0 + t, heartbeat=None, slot_info=slot(active=False)) for t in range(0, 200, 10)]
    actions = run(seq)
    restart = next(a for a in actions if a.kind != "none")
    assert restart.kind == "restart_connector" and "is free" in restart.reason


def test_silence_counts_from_when_watching_began_not_from_the_epoch():
    memory = H.Memory(started_at=T0)
    o = obs(T0 + 30, heartbeat=None)
    assert H.silent_seconds(o, H.remember(memory, o)) == 30
    assert H.plan(H.remember(memory, o), o, STALL).kind == "none"


def event(phase: str = "cdc", state: str = "running", current: datetime | None = None) -> StatusEvent:
    return StatusEvent("shop", "public", "t", phase, state, "/lake/t", seq=1, source_current_at=current)  # type: ignore[arg-type]


def test_caught_up_tables_advance_to_the_heartbeat_and_others_do_not():
    at = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    rows = [(event(current=None), True), (event(current=at - timedelta(seconds=30)), True),
            (event(current=at - timedelta(seconds=5)), True), (event(current=None), False)]
    updates = freshness_updates(rows, at.timestamp(), record_seconds=15)
    assert [i for i, _e in updates] == [0, 1]  # the third moved less than record_seconds, the fourth is not caught up
    assert all(e.source_current_at == at and e.seq > 1 for _i, e in updates)
    assert freshness_updates(rows, None, 15) == []  # no heartbeat seen: nothing claimed


def test_behind_and_stalled():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert behind_seconds(event(current=now - timedelta(seconds=42)), now) == 42
    assert behind_seconds(event(current=None), now) is None
    assert stalled(event(current=now - timedelta(seconds=91)), now, 90)
    assert not stalled(event(current=now - timedelta(seconds=89)), now, 90)
    # no heartbeat seen yet: how far behind is unknown; a stall only when nothing came for stall_seconds
    applied = dataclasses.replace(event(current=None), cdc_event_time=now - timedelta(seconds=3), updated_at=now - timedelta(seconds=1))
    assert behind_seconds(applied, now) == 3 and not stalled(applied, now, 90)  # a change just applied is not a stall
    silent = dataclasses.replace(event(current=None), updated_at=now - timedelta(seconds=91))
    assert behind_seconds(silent, now) is None and stalled(silent, now, 90)
    assert stalled(dataclasses.replace(event(current=None), updated_at=None), now, 90)  # nothing ever heard of it
    # a heartbeat seen long ago, but a change applied since: current up to that change
    later = dataclasses.replace(event(current=now - timedelta(hours=1)), cdc_event_time=now - timedelta(seconds=10))
    assert behind_seconds(later, now) == 10 and not stalled(later, now, 90)
    assert not stalled(event(phase="bulk", state="completed", current=None), now, 90)
    assert not stalled(event(state="failed", current=now - timedelta(hours=1)), now, 90)  # reported as failed instead
    keyless = dataclasses.replace(event(current=now - timedelta(hours=1)), note="CDC not enabled: the table has no primary key")
    assert not stalled(keyless, now, 90)  # its changes never stream: neither current nor stalled
    assert freshness_updates([(keyless, True)], now.timestamp(), 0) == []


def test_heartbeat_time_from_both_message_formats_and_the_record_timestamp():
    assert heartbeat_time(json.dumps({"ts_ms": 1_700_000_000_123}).encode(), 5) == 1_700_000_000.123
    assert heartbeat_time(json.dumps({"schema": {}, "payload": {"ts_ms": 1_700_000_000_000}}).encode(), 5) == 1_700_000_000.0
    assert heartbeat_time(b"not json", 1_700_000_001_000) == 1_700_000_001.0
    assert heartbeat_time(None, None) is None


def test_status_view_shows_how_far_behind_and_flags_a_stalled_source():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "jobs"))
    from status import problems, render_table

    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    fresh = StatusEvent("shop", "public", "fresh", "cdc", "running", "/l", seq=1, source_current_at=now - timedelta(seconds=12))
    late = StatusEvent("shop", "public", "late", "cdc", "running", "/l", seq=2, source_current_at=now - timedelta(seconds=185))
    broken = StatusEvent("shop", "public", "broken", "cdc", "failed", "/l", seq=3, last_error="boom")
    lines = render_table([fresh, late, broken], now=now, stall_seconds=90)
    header = lines[0].split()
    assert "behind" in header
    assert " 12s " in lines[1] and "STALLED" not in lines[1]
    assert "STALLED 3m05s" in lines[2]
    assert problems([fresh, late, broken], now, 90) == {"failed": ["shop.public.broken"], "stalled": ["shop.public.late"]}
    assert problems([fresh], now, 90) == {"failed": [], "stalled": []}


def test_the_long_running_loop_waits_out_a_kafka_outage_retries_a_failed_table_and_marks_caught_up_tables_current():
    import threading

    from lib.cdc import offsets as O
    from lib.cdc.health.freshness import FreshnessMonitor, Heartbeat
    from lib.cdc.loop.apply_loop import LoopOptions, TableState
    from lib.cdc.outcome import TableOutcome
    from lib.cdc.spark.table_range import RangeOutcome

    from .test_cdc_apply_loop import Topics, loop, state

    class Flaky(Topics):
        def __init__(self, ends: dict[str, int], down_polls: int) -> None:
            super().__init__(ends)
            self.down_polls = down_polls

        def watermarks(self, topics: dict[str, Any]) -> dict[str, dict[int, tuple[int, int]]]:
            if self.down_polls > 0:
                self.down_polls -= 1
                raise RuntimeError("KafkaError _TRANSPORT: broker down")
            return super().watermarks(topics)

    class Reader:
        def latest(self) -> Heartbeat:
            return Heartbeat(True, 1_800_000_000.0)

        def close(self) -> None:
            pass

    stop = threading.Event()
    attempts: list[str] = []

    def apply(st: TableState, rng: O.Range, seq: int) -> RangeOutcome:
        attempts.append(st.spec.table)
        if st.spec.table == "flaky" and attempts.count("flaky") == 1:
            raise RuntimeError("Kafka read failed")  # fails once, then works when tried again
        if st.spec.table == "flaky":
            stop.set()
        return RangeOutcome(TableOutcome(st.spec, events=rng.messages, applied=rng.messages), rng, rng.messages)

    monitor = FreshnessMonitor(Reader(), record_seconds=0, read_every_seconds=0)  # type: ignore[arg-type]
    runner, status = loop(Flaky({"shop.public.flaky": 5, "shop.public.quiet": 3}, down_polls=3), [state("flaky"), state("quiet", 3)], apply)
    runner.options = LoopOptions(threads=1, poll_seconds=0.01, max_messages=100, available_now=False, max_attempts=1,
                                 retry_backoff_seconds=0.0, retry_failed_seconds=0.05, status_seconds=0.0)
    runner.monitor = monitor
    runner.run(stop)
    events = [e for commit in status.commits for e in commit]
    assert attempts == ["flaky", "flaky"]  # nothing while Kafka was down, then failed, then tried again
    flaky = [e.state for e in events if e.table == "flaky"]
    assert flaky[0] == "failed" and flaky[-1] == "running"  # recorded failed, then applied after the retry
    quiet = [e for e in events if e.table == "quiet"]
    assert quiet and quiet[0].source_current_at == datetime.fromtimestamp(1_800_000_000.0, UTC)  # caught up: current as of the heartbeat


def test_cdc_connector_status_does_not_call_a_silent_connector_running():
    from lib.debezium.admin import status_lines

    base = {"connector": "lakehouse-shop", "connector_state": "RUNNING", "tasks": ["RUNNING"], "slot_name": "s", "publication": "p",
            "published_tables": 3, "heartbeat_interval_seconds": 10.0, "heartbeat_unknown": None,
            "slot": {**slot(), "retained_wal_bytes": 9000, "current_wal_lsn": "0/200", "restart_lsn": "0/90"}}
    silent = status_lines({**base, "heartbeat_age_seconds": 312.0})
    assert silent[0] == "connector lakehouse-shop: RUNNING but NOT STREAMING tasks=['RUNNING']"
    assert "newest heartbeat 312s ago (every 10s): nothing has moved for 31 heartbeat intervals" in silent[1]
    assert any("held by pid 4242 (role loader, Debezium Streaming, connected since 2026-01-01 12:00:00)" in line for line in silent)
    fresh = status_lines({**base, "heartbeat_age_seconds": 4.0})
    assert fresh[0] == "connector lakehouse-shop: RUNNING tasks=['RUNNING']" and fresh[1] == "  newest heartbeat 4s ago (every 10s)"
    never = status_lines({**base, "heartbeat_age_seconds": None, "heartbeat_unknown": "no heartbeat yet"})
    assert "NOT STREAMING" in never[0] and never[1] == "  heartbeat: no heartbeat yet"


def test_without_connect_url_a_free_silent_slot_is_reported_every_grace_period_not_acted_on():
    seq = [obs(T0 + t, heartbeat=None, state=None, slot_info=slot(active=False)) for t in range(0, 200, 10)]
    actions = run(seq)
    kinds = [a.kind for a in actions]
    assert set(kinds) == {"none", "report"} and kinds.count("report") == 1  # once within the cooldown (150 s)
    assert "without cdc.connect_url" in next(a for a in actions if a.kind == "report").reason
