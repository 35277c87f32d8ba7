"""Before a re-copy overwrites a table a running CDC stream may be applying: wait until the stream holds it.

The stream reads the status table every second; seeing a newer bulk load of a table it applies, it stops
applying that table, lets an apply in flight commit, and appends an acknowledgement (lib.cdc.loop.recopy).
The copy waits for that acknowledgement before its first write, at most ``wait_seconds`` (no stream runs,
or it does not apply the table: nothing acknowledges, the copy goes on when the wait ends). So no MERGE
of the stream lands on the new copy: one in flight either committed before the overwrite (the copy
replaces it, and the stream applies its events again from the copy's offsets) or conflicts with it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from lib.cdc.loop.recopy import HELD_NOTE, acknowledged
from lib.cdc.new_tables import STREAM_COPY_NOTE
from lib.status.record import StatusEvent
from lib.status.store import StatusStore

log = logging.getLogger("bulk")
HOLD_WAIT_SECONDS = 10.0  # how long a re-copy waits for a running stream's acknowledgement
POLL_SECONDS = 0.5


def may_be_streamed(prior: StatusEvent | None, first_chunk: int) -> bool:
    """Whether a running stream may be applying the table this copy is about to overwrite (pure): an
    earlier copy completed or was streamed, or a stream held it for an earlier attempt, and this copy
    writes from its first chunk (a resumed copy's first chunk already replaced the table)."""
    if prior is None or first_chunk > 0:
        return False
    return prior.phase == "cdc" or (prior.phase == "bulk" and prior.state == "completed") or prior.cdc_offsets is not None or prior.note == HELD_NOTE


def carried_note(prior: StatusEvent | None, run_note: str | None = None) -> str | None:
    """The note a new copy's first (``pending``) event carries (pure): this run's own (``BulkOptions.note``:
    the CDC stream marks the copies it starts), else the table's newest event's. A running stream's
    acknowledgement of an earlier copy is not carried: that copy ended (killed) before it recorded anything
    after it, and this copy must be acknowledged itself, never taken as already held. Nor is the stream's
    mark of an earlier copy: this run's copy is not the stream's to resume (lib.cdc.new_tables)."""
    if run_note:
        return run_note
    note = prior.note if prior is not None else None
    return None if note in (HELD_NOTE, STREAM_COPY_NOTE) else note


def wait_for_holds(status: StatusStore, source: str, pending: Sequence[StatusEvent], wait_seconds: float = HOLD_WAIT_SECONDS,
                   poll_seconds: float = POLL_SECONDS, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> list[tuple[str, str]]:
    """Wait until a running stream acknowledged holding each table of the ``pending`` events (recorded
    already), at most ``wait_seconds``; returns the tables nothing acknowledged. A pending event that is
    no longer its table's newest bulk event (the stream recorded the table's freshness just after it)
    is recorded again, so the stream sees the copy."""
    waiting = {(e.schema, e.table): e for e in pending}
    if not waiting:
        return []
    log.info("source %s: %d table(s) a running CDC stream may apply are copied again: waiting up to %gs for the stream to hold them",
             source, len(waiting), wait_seconds)
    deadline = clock() + wait_seconds
    while True:
        try:
            latest = status.latest(source, phase="bulk")
        except Exception as exc:  # noqa: BLE001 - an unreadable status table for a moment: ask again
            log.debug("status not readable while waiting for the stream: %s", exc)
            latest = {}
        again = []
        for (schema, table), event in list(waiting.items()):
            newest = latest.get((source, schema, table))
            if acknowledged(newest, event.load_id or ""):
                del waiting[(schema, table)]
            elif latest and (newest is None or newest.load_id != event.load_id):
                again.append(event.next())
        if again:
            try:
                status.append(*again)
            except Exception as exc:  # noqa: BLE001 - recorded again on the next look
                log.debug("status not recorded while waiting for the stream: %s", exc)
        if not waiting or clock() >= deadline:
            break
        sleep(poll_seconds)
    if waiting:
        log.info("source %s: no running stream held %s within %gs (none runs, or it does not apply them): copying", source,
                 ", ".join(f"{s}.{t}" for s, t in sorted(waiting)), wait_seconds)
    else:
        log.info("source %s: the running stream holds every table copied again", source)
    return sorted(waiting)
