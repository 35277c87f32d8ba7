"""The per-table apply loop: every table applies its own topic on its own cadence (thin layer).

Every ``poll_seconds`` the loop reads the end offsets of the tables' topics (one Kafka client), and
hands each table with pending messages to a bounded pool of ``threads`` workers, longest-waiting
first: an event waits for its own table's MERGE, never for other tables', a hot table cannot starve
quiet ones (it goes back to the end of the queue after each apply), and a quiet table costs one
offset look-up per poll. A table's apply (lib.cdc.spark.table_range) reads at most ``max_messages`` of its
topic. Progress (the next offset per partition) is kept in memory and recorded in the status table
after the apply's writes are committed, one status commit for all applies finished since the last
(at most every ``status_seconds``), right after one append of their tombstones (lib.cdc.loop.tombstone_buffer). A crash replays at most the applies whose status was not
recorded, which changes nothing (docs/cdc-stream.md, "Crashes and replays").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from pyspark.sql import SparkSession

from lib.cdc import offsets as O
from lib.cdc.loop.kafka_offsets import TopicOffsets
from lib.cdc.loop.recopy import ack_event, decide, hold_line, honour_line, needs_ack
from lib.cdc.loop.table_status import applied_event, apply_line
from lib.cdc.new_tables import dropped_event, dropped_line
from lib.cdc.outcome import TableOutcome
from lib.cdc.plan import TableSpec
from lib.cdc.spark.table_range import RangeContext, RangeOutcome, apply_range
from lib.logs import redact
from lib.retry import short_error, with_retries
from lib.sessions import child_session
from lib.status.record import StatusEvent
from lib.status.store import StatusStore

log = logging.getLogger(__name__)


@dataclass(eq=False)  # compared by identity: the loop keeps one per table
class TableState:
    spec: TableSpec
    event: StatusEvent  # the table's latest status event
    topic: str
    next: O.Offsets  # next offset to read per partition
    waiting_since: float | None = None  # when it last started having pending messages (monotonic)
    running: bool = False
    failed: str | None = None
    failed_at: float | None = None  # monotonic
    held_for: str | None = None  # the load id of a re-copy of the table in flight: nothing is applied or recorded (lib.cdc.loop.recopy)
    from_start: bool = False  # no offsets yet, read from the first retained message (never from the end: a re-copy's table)


@dataclass(frozen=True)
class LoopOptions:
    threads: int
    poll_seconds: float
    max_messages: int
    available_now: bool
    max_attempts: int
    retry_backoff_seconds: float
    fail_on_data_loss: bool = True
    start_at_end: bool = False  # a table without recorded offsets starts at the end offsets, not at the first retained
    status_seconds: float = 5.0
    refresh_seconds: float = 30.0
    retry_failed_seconds: float = 0.0  # a long-running stream tries a failed table again after this long (0: never)
    recopy_seconds: float = 1.0  # how often the status table is read for re-copies of the tables (lib.cdc.loop.recopy)


class Held(ValueError):
    """An apply of a table held for a re-copy (a ValueError: lib.retry never retries it)."""


class ApplyLoop:
    def __init__(self, spark: SparkSession, ctx: RangeContext, kafka: TopicOffsets, status: StatusStore,
                 discover: Callable[[], list[TableState]], options: LoopOptions, secrets: tuple[str, ...] = (),
                 monitor: Any = None, recheck: Callable[[], dict[tuple[str, str], StatusEvent]] | None = None,  # newest bulk events
                 rebuild: Callable[[StatusEvent], TableState] | None = None) -> None:
        self.spark = spark
        self.ctx = ctx
        self.kafka = kafka
        self.status = status
        self.discover = discover  # tables ready for CDC that the loop does not know yet
        self.options = options
        self.secrets = secrets
        self.monitor = monitor  # lib.cdc.health.freshness.FreshnessMonitor: heartbeats -> source_current_at
        self.recheck = recheck  # the tables' newest bulk status events, read again
        self.rebuild = rebuild  # a table's state built from its completed copy's status event
        self._kafka_down_since: float | None = None
        self.tables: dict[tuple[str, str], TableState] = {}
        self._local = threading.local()
        self._pending_status: list[StatusEvent] = []
        self._seq = 0
        # set by the stream's look for new and dropped tables (another thread; lib.cdc.loop.auto_add)
        self._refresh_now = threading.Event()
        self._drops: dict[tuple[str, str], StatusEvent] = {}  # tables dropped at the source, reported once applied
        self._drops_lock = threading.Lock()
        self._copies_seen: set[tuple[tuple[str, str], str | None]] | None = None  # completed copies of tables not applied (_recopies)

    def refresh_soon(self) -> None:
        """Look for tables ready for CDC at the next poll, not after ``refresh_seconds`` (a table just copied)."""
        self._refresh_now.set()

    def request_drop(self, events: list[StatusEvent]) -> None:
        """Report these tables dropped at the source (their newest status events): each once its events in
        Kafka are applied; then the loop forgets it (its lake table stays)."""
        with self._drops_lock:
            self._drops.update({(e.schema, e.table): e for e in events})

    def run(self, stop: threading.Event) -> int:
        """Apply until ``stop`` is set (or, with available_now, until every table reached the end offsets
        read at the start); returns the number of failed tables."""
        self._add(self.discover())
        log.info("cdc stream ready: %d table%s to apply", len(self.tables), "" if len(self.tables) == 1 else "s")
        targets: dict[str, dict[int, int]] | None = None
        last_refresh = last_flush = time.monotonic()
        last_recopy = float("-inf")  # at once: a table may be in a re-copy already
        running: dict[Future[RangeOutcome], tuple[TableState, float, int]] = {}
        with ThreadPoolExecutor(max_workers=self.options.threads, thread_name_prefix="cdc-apply") as pool:
            while True:
                now = time.monotonic()
                if not self.options.available_now and (now - last_refresh >= self.options.refresh_seconds or self._refresh_now.is_set()):
                    self._refresh_now.clear()
                    self._add(self.discover())
                    last_refresh = now
                if self.recheck is not None and now - last_recopy >= self.options.recopy_seconds:
                    self._recopies()
                    last_recopy = now
                if self.monitor is not None:
                    self.monitor.before_poll()  # the heartbeat first: tables caught up with the offsets read next hold what it covers
                marks = self._watermarks()
                ends = {topic: {p: hi for p, (_lo, hi) in parts.items()} for topic, parts in (marks or {}).items()}
                if self.options.available_now and targets is None:
                    targets = ends
                limit = targets if targets is not None else ends
                if not stop.is_set() and marks is not None:
                    self._dispatch(pool, running, limit, marks)
                    if self.monitor is not None:
                        self._pending_status += self.monitor.after_poll([t for t in self.tables.values() if not t.held_for], ends)
                if self._drops and marks is not None:
                    self._record_drops(limit)
                if self.options.available_now and not running and not self._due(limit):
                    break
                if stop.is_set() and not running:
                    break
                done, _ = wait(list(running), timeout=self.options.poll_seconds, return_when=FIRST_COMPLETED) if running else (set(), None)
                if not running:
                    stop.wait(self.options.poll_seconds)
                for future in done:
                    state, started, seq = running.pop(future)
                    self._finish(state, future, started, seq, ends)
                if self._pending_status and (time.monotonic() - last_flush >= self.options.status_seconds
                                             or len(self.ctx.tombstones) > self.ctx.tombstones.max_rows):
                    self._flush()
                    last_flush = time.monotonic()
        self._flush()
        return sum(1 for t in self.tables.values() if t.failed)

    def _watermarks(self) -> dict[str, dict[int, tuple[int, int]]] | None:
        """The tables' topics' offsets; None while Kafka is unreachable (a long-running stream waits for it,
        saying so once a minute; --available-now raises)."""
        try:
            marks = self.kafka.watermarks(self._partitions())
        except Exception as exc:  # Kafka down or restarting
            if self.options.available_now:
                raise
            now = time.monotonic()
            if self._kafka_down_since is None or now - self._kafka_down_since >= 60:
                log.warning("Kafka is not readable (%s): no table is applied until it is back; retrying every %gs",
                            short_error(exc), self.options.poll_seconds)
                self._kafka_down_since = now
            return None
        if self._kafka_down_since is not None:
            log.info("Kafka is readable again: applying resumes")
            self._kafka_down_since = None
        return marks

    def _partitions(self) -> dict[str, list[int]]:
        """{topic: partitions} of the tables' topics that exist (a table without changes yet has none)."""
        if not self.tables:
            return {}
        existing = self.kafka.partitions()
        return {t.topic: existing[t.topic] for t in self.tables.values() if t.topic in existing}

    def _add(self, states: list[TableState]) -> None:
        for state in states:
            key = (state.spec.schema, state.spec.table)
            if key not in self.tables:
                self.tables[key] = state

    def _due(self, limit: dict[str, dict[int, int]]) -> list[TableState]:
        retry = self.options.retry_failed_seconds
        for t in self.tables.values():
            if t.failed and retry > 0 and not self.options.available_now and time.monotonic() - (t.failed_at or 0.0) >= retry:
                log.warning("%s: trying again %gs after it failed (%s)", t.spec.name, retry, t.failed)
                t.failed = None
        due = [t for t in self.tables.values() if not t.running and not t.failed and not t.held_for and O.pending(t.next, limit.get(t.topic, {})) > 0]
        now = time.monotonic()
        for t in self.tables.values():
            if t in due and t.waiting_since is None:
                t.waiting_since = now
        return sorted(due, key=lambda t: t.waiting_since or now)

    def _dispatch(self, pool: ThreadPoolExecutor, running: dict[Future[RangeOutcome], tuple[TableState, float, int]],
                  limit: dict[str, dict[int, int]], marks: dict[str, dict[int, tuple[int, int]]]) -> None:
        if self.options.start_at_end:
            for state in self.tables.values():
                if not state.next and not state.from_start and state.topic in marks:
                    state.next = {p: hi for p, (_lo, hi) in marks[state.topic].items()}
        for state in self._due(limit)[: max(0, self.options.threads - len(running))]:
            lows = {p: lo for p, (lo, _hi) in marks.get(state.topic, {}).items()}
            lost = {p: (state.next.get(p, 0), lo) for p, lo in lows.items() if state.next.get(p, 0) < lo and state.next}
            if lost and self.options.fail_on_data_loss:
                self._fail(state, f"Kafka deleted messages of {state.topic} the stream had not applied (partition: (next, first retained)) "
                                  f"{lost}; set stream.fail_on_data_loss: false to skip them")
                continue
            rng = O.next_range(state.topic, state.next, limit[state.topic], self.options.max_messages, lows)
            if rng is None:
                continue
            self._seq += 1
            state.running = True
            running[pool.submit(self._apply, state, rng, self._seq)] = (state, time.monotonic(), self._seq)

    def _session(self) -> SparkSession:
        """This worker thread's own session where one can be made (classic Spark: a child session with every
        setting of the stream's, so an apply's SQL settings stay its own); on Spark Connect the stream's
        session itself, which runs the threads' queries concurrently (temporary views have unique names;
        an apply's shuffle-partition count may then reach another table's concurrent apply: a file
        count, never a value)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = child_session(self.spark) or self.spark
            self._local.session = session
        return session

    def _apply(self, state: TableState, rng: O.Range, seq: int) -> RangeOutcome:
        spark = self._session()

        def attempt() -> RangeOutcome:
            if state.held_for:  # a retry after the table was held: the re-copy overwrites it
                raise Held(state.held_for)
            return apply_range(spark, self.ctx, state.spec, rng, seq)
        return with_retries(f"{state.spec.name} apply {seq}", attempt, self.options.max_attempts, self.options.retry_backoff_seconds)

    def _finish(self, state: TableState, future: Future[RangeOutcome], started: float, seq: int, ends: dict[str, dict[int, int]]) -> None:
        state.running = False
        state.waiting_since = None
        try:
            result = future.result()
        except Exception as exc:  # noqa: BLE001 - one failing table must not stop the others
            if state.held_for:  # held meanwhile: the re-copy replaces whatever this apply did
                log.info("%s: apply %d ended as the table was held for a re-copy (%s)", state.spec.name, seq, short_error(exc))
                return
            self._fail(state, redact(short_error(exc), self.secrets))
            return
        if state.held_for:  # committed, but the re-copy overwrites it: nothing recorded, the new copy's offsets decide
            return
        outcome: TableOutcome = result.outcome
        state.spec = replace(outcome.spec)  # new columns, truncate position, tombstones
        state.next = {**state.next, **result.range.end}
        lag = O.pending(state.next, ends.get(state.topic, {}))
        now = time.time()
        state.event = applied_event(state.event, outcome, state.next, lag, now)
        self._pending_status.append(state.event)
        log.info("%s", apply_line(seq, outcome, result.messages, result.dead, time.monotonic() - started, lag, now))

    def _fail(self, state: TableState, reason: str) -> None:
        if state.held_for:
            return
        log.error("%s: FAILED, the table stops applying changes (its events stay in Kafka): %s", state.spec.name, reason)
        state.failed = reason
        state.failed_at = time.monotonic()
        state.event = applied_event(state.event, TableOutcome(state.spec, error=reason), state.next, 0, time.time())
        self._pending_status.append(state.event)

    def _recopies(self) -> None:
        """Hold the tables a re-copy is overwriting; take each over from its new copy once it completed."""
        assert self.recheck is not None and self.rebuild is not None
        try:
            latest = self.recheck()
        except Exception as exc:  # noqa: BLE001 - the status table unreadable for a moment: ask again next time
            log.warning("status table not readable (%s): re-copies are looked for again in %gs", short_error(exc), self.options.recopy_seconds)
            return
        for key, state in list(self.tables.items()):
            decision = decide(latest.get(key), state.event.load_id, state.held_for)
            if decision.action == "apply":
                continue
            if state.held_for is None:
                log.info("%s", hold_line(state.spec.name, decision, decision.event.state if decision.event else "its status gone"))
            state.held_for = decision.load_id
            # its events not recorded yet would hide the copy's status: the copy's offsets take over from them
            self._pending_status = [e for e in self._pending_status if (e.schema, e.table) != key]
            if decision.event is not None and needs_ack(decision, state.running):
                try:
                    self.status.append(ack_event(decision.event))
                except Exception as exc:  # noqa: BLE001 - the copy waits a while without it; asked again next time
                    log.warning("%s: the hold could not be recorded (%s)", state.spec.name, short_error(exc))
            if decision.action != "honour" or state.running or decision.event is None:
                continue
            try:
                fresh = self.rebuild(decision.event)
            except Exception as exc:  # noqa: BLE001 - e.g. the copy's table not readable yet: stay held, try again
                log.warning("%s: the new copy cannot be taken over yet (%s); trying again in %gs", state.spec.name,
                            redact(short_error(exc), self.secrets), self.options.recopy_seconds)
                continue
            fresh.spec = replace(fresh.spec, has_tombstones=state.spec.has_tombstones, tombstones_until=state.spec.tombstones_until)
            fresh.from_start = not fresh.next
            self.tables[key] = fresh
            log.info("%s", honour_line(state.spec.name, decision.event, O.to_json(fresh.next) if fresh.next else "the first retained"))
        # a copy that completed for a table this loop does not apply yet (a stream started while it was being
        # copied, a new table): looked for at the next poll, not after refresh_seconds
        copies = {(key, e.load_id) for key, e in latest.items() if key not in self.tables and e.state == "completed"}
        if self._copies_seen is not None and copies - self._copies_seen:
            self.refresh_soon()
        self._copies_seen = (self._copies_seen or set()) | copies

    def _record_drops(self, limit: dict[str, dict[int, int]]) -> None:
        """Record the tables dropped at the source whose events are applied (or that failed, or that this
        loop does not apply); the loop stops applying them."""
        with self._drops_lock:
            drops = dict(self._drops)
        for key, event in drops.items():
            state = self.tables.get(key)
            if state is not None:
                if state.running or state.held_for or (not state.failed and O.pending(state.next, limit.get(state.topic, {})) > 0):
                    continue  # its last events first
                event = state.event
                del self.tables[key]
            self._pending_status.append(dropped_event(event))
            log.info("%s", dropped_line(*key))
            with self._drops_lock:
                self._drops.pop(key, None)

    def _flush(self) -> None:
        self.ctx.tombstones.flush(self.spark)  # before the status: an apply is recorded only once its tombstones are written
        if self._pending_status:
            self.status.append(*self._pending_status)
            self._pending_status = []

