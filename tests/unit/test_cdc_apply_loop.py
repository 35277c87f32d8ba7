"""The apply loop's scheduling, without Spark or Kafka: a stand-in topic-offset reader, status store
and apply function (the real apply is tested end to end in tests/integration/test_cdc_stream*.py)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from lib.cdc import offsets as O
from lib.cdc.loop.apply_loop import ApplyLoop, LoopOptions, TableState
from lib.cdc.outcome import TableOutcome
from lib.cdc.plan import TableSpec
from lib.cdc.spark.table_range import RangeOutcome, shuffle_partitions
from lib.status.record import StatusEvent


class Topics:
    """Kafka as the loop sees it: partitions and (first, next) offsets per topic, changeable by the test."""

    def __init__(self, ends: dict[str, int]) -> None:
        self.ends = dict(ends)

    def partitions(self) -> dict[str, list[int]]:
        return {t: [0] for t in self.ends}

    def watermarks(self, topics: dict[str, Any]) -> dict[str, dict[int, tuple[int, int]]]:
        return {t: {0: (0, self.ends[t])} for t in topics}


class Status:
    def __init__(self, journal: list[str] | None = None) -> None:
        self.commits: list[list[StatusEvent]] = []
        self.journal = journal if journal is not None else []

    def append(self, *events: StatusEvent) -> None:
        self.commits.append(list(events))
        self.journal.append(f"status {len(events)}")


class Tombstones:
    """The tombstone buffer as the loop sees it: the rows held, and a flush the journal records."""

    max_rows = 1000

    def __init__(self, journal: list[str]) -> None:
        self.rows = 0
        self.journal = journal

    def __len__(self) -> int:
        return self.rows

    def flush(self, spark: Any) -> int:
        self.journal.append(f"tombstones {self.rows}")
        flushed, self.rows = self.rows, 0
        return flushed


def state(table: str, next_offset: int | None = None) -> TableState:
    spec = TableSpec("shop", "public", table, f"/lake/{table}", ("id",), (("id", "int"),))
    event = StatusEvent("shop", "public", table, "bulk", "completed", spec.location, seq=1)
    return TableState(spec, event, f"shop.public.{table}", {0: next_offset} if next_offset is not None else {})


def loop(topics: Topics, tables: list[TableState], apply: Any, threads: int = 1, max_messages: int = 100) -> tuple[ApplyLoop, Status]:
    journal: list[str] = []
    status = Status(journal)
    options = LoopOptions(threads=threads, poll_seconds=0.01, max_messages=max_messages, available_now=True, max_attempts=1,
                          retry_backoff_seconds=0.0)
    ctx = SimpleNamespace(tombstones=Tombstones(journal))
    runner = ApplyLoop(None, ctx, topics, status, lambda: tables, options)  # type: ignore[arg-type]
    runner._apply = apply  # type: ignore[method-assign]
    return runner, status


def applied(log: list[tuple[str, O.Range]]):
    def apply(st: TableState, rng: O.Range, seq: int) -> RangeOutcome:
        log.append((st.spec.table, rng))
        return RangeOutcome(TableOutcome(st.spec, events=rng.messages, applied=rng.messages, inserted=rng.messages), rng, rng.messages)
    return apply


def test_available_now_applies_every_table_up_to_the_offsets_read_at_the_start_in_capped_ranges():
    calls: list[tuple[str, O.Range]] = []
    runner, status = loop(Topics({"shop.public.a": 250, "shop.public.b": 30, "shop.public.quiet": 7}),
                          [state("a"), state("b"), state("quiet", 7)], applied(calls))
    assert runner.run(threading.Event()) == 0
    by_table = {t: [r for n, r in calls if n == t] for t in ("a", "b", "quiet")}
    assert [(r.start[0], r.end[0]) for r in by_table["a"]] == [(0, 100), (100, 200), (200, 250)]  # max_messages per apply
    assert [(r.start[0], r.end[0]) for r in by_table["b"]] == [(0, 30)] and by_table["quiet"] == []  # a caught-up table costs nothing
    latest = {e.table: e for commit in status.commits for e in commit}
    assert latest["a"].cdc_offsets == '{"0":250}' and latest["b"].cdc_offsets == '{"0":30}'
    assert latest["a"].cdc_inserted == 250 and latest["a"].phase == "cdc"


def test_a_hot_table_goes_back_to_the_end_of_the_queue_after_each_apply():
    calls: list[tuple[str, O.Range]] = []
    runner, _ = loop(Topics({"shop.public.hot": 1000, "shop.public.c1": 5, "shop.public.c2": 5}),
                     [state("hot"), state("c1"), state("c2")], applied(calls), max_messages=100)
    runner.run(threading.Event())
    order = [t for t, _ in calls]
    assert order.index("c1") < 3 and order.index("c2") < 3, order  # the cold tables do not wait for the hot one's backlog
    assert order.count("hot") == 10


def test_a_failing_table_stops_and_is_reported_while_the_others_finish():
    calls: list[tuple[str, O.Range]] = []
    ok = applied(calls)

    def apply(st: TableState, rng: O.Range, seq: int) -> RangeOutcome:
        if st.spec.table == "bad":
            raise RuntimeError("boom with secret-pw")
        return ok(st, rng, seq)

    runner, status = loop(Topics({"shop.public.bad": 10, "shop.public.good": 10}), [state("bad"), state("good")], apply)
    runner.secrets = ("secret-pw",)
    assert runner.run(threading.Event()) == 1
    latest = {e.table: e for commit in status.commits for e in commit}
    assert latest["bad"].state == "failed" and "boom" in latest["bad"].last_error and "secret-pw" not in latest["bad"].last_error
    assert latest["bad"].cdc_offsets == "{}"  # nothing applied: it resumes from the start next time
    assert latest["good"].state == "running" and latest["good"].cdc_offsets == '{"0":10}'


def test_status_events_of_applies_finished_together_share_one_commit():
    calls: list[tuple[str, O.Range]] = []
    runner, status = loop(Topics({f"shop.public.t{i}": 3 for i in range(6)}), [state(f"t{i}") for i in range(6)], applied(calls), threads=1)
    runner.options = LoopOptions(threads=1, poll_seconds=0.01, max_messages=100, available_now=True, max_attempts=1,
                                 retry_backoff_seconds=0.0, status_seconds=3600.0)
    runner.run(threading.Event())
    assert len(calls) == 6 and sum(len(c) for c in status.commits) == 6
    assert len(status.commits) < 6  # batched, not one commit per apply


def test_the_tombstones_of_applies_are_written_before_their_status_records_them():
    """A status commit records offsets whose deletes are tombstones already: the buffer is flushed
    first, in the same flush (a crash in between replays the applies, which write them again)."""
    runner: ApplyLoop | None = None

    def apply(st: TableState, rng: O.Range, seq: int) -> RangeOutcome:
        runner.ctx.tombstones.rows += 2  # type: ignore[union-attr]  # each apply deleted two keys
        return RangeOutcome(TableOutcome(st.spec, events=rng.messages, applied=rng.messages, deleted=2), rng, rng.messages)

    runner, status = loop(Topics({"shop.public.a": 3, "shop.public.b": 5}), [state("a"), state("b")], apply)
    runner.run(threading.Event())
    journal = status.journal
    assert [j for j in journal if j.startswith("status")] and sum(len(c) for c in status.commits) == 2
    for i, entry in enumerate(journal):
        if entry.startswith("status"):
            assert journal[i - 1].startswith("tombstones"), journal  # every status commit right after a tombstone flush
    assert sum(int(j.split()[1]) for j in journal if j.startswith("tombstones")) == 4  # both applies' tombstones written


def test_a_stop_request_lets_running_applies_finish_and_dispatches_no_more():
    calls: list[tuple[str, O.Range]] = []
    stop = threading.Event()
    ok = applied(calls)

    def apply(st: TableState, rng: O.Range, seq: int) -> RangeOutcome:
        stop.set()  # SIGTERM arrives during the first apply
        return ok(st, rng, seq)

    runner, status = loop(Topics({"shop.public.a": 500}), [state("a")], apply)
    runner.options = LoopOptions(threads=1, poll_seconds=0.01, max_messages=100, available_now=False, max_attempts=1, retry_backoff_seconds=0.0)
    runner.run(stop)
    assert len(calls) == 1 and status.commits[-1][-1].cdc_offsets == '{"0":100}'  # its progress is recorded before the loop ends


@pytest.mark.parametrize(("messages", "most", "partitions"), [(0, 4, 1), (1, 4, 1), (50_000, 4, 1), (50_001, 4, 2), (100_000, 4, 2), (10**7, 4, 4), (10**7, 1, 1)])
def test_an_apply_uses_one_shuffle_partition_per_50000_messages(messages, most, partitions):
    assert shuffle_partitions(messages, most) == partitions
