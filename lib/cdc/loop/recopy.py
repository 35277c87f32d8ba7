"""A table copied again while the stream runs (``bulk_load.py --tables ... --no-resume``): hold, then honour (pure).

The stream applies a table on top of the bulk copy of one load (``load_id`` in the status table). When
the table's newest bulk event names another load, that copy overwrites the lake table: the stream
stops applying the table (``hold``), so that nothing it applies lands on the new copy with the old
snapshot's filter, stops recording the table's status, and acknowledges the hold with a status event
of the copy (``ack_event``: the copy waits for it before it writes, lib.bulk.runner). Once that copy's
status says ``completed``, the stream takes the table over from it (``honour``): the new snapshot
position and txids decide which events are already in the copy, and the table's topic is read again
from the offsets the copy carried forward from the table's status when it was planned (read before
its snapshot was taken, so every event before them was committed before the snapshot; the events
after them that the copy lacks are applied, those in the copy skipped). Other tables are never held.

Only bulk events decide (``StatusStore.latest(phase="bulk")``): the stream's own ``cdc`` events carry
the load id they apply on top of, and one recorded just after a copy started may be a table's newest
event for a moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lib.status.record import StatusEvent

Action = Literal["apply", "hold", "honour"]


@dataclass(frozen=True)
class Decision:
    action: Action
    load_id: str | None = None  # the copy held for, or honoured
    event: StatusEvent | None = None  # with honour: the copy's completed event (snapshot, txids, offsets)


APPLY = Decision("apply")


HELD_NOTE = "held by the running CDC stream"  # the note of the stream's acknowledgement (ack_event)


def decide(bulk: StatusEvent | None, applied_load: str | None, held_for: str | None) -> Decision:
    """What the stream does with a table it applies on top of copy ``applied_load`` (its load id), given the
    table's newest bulk event ``bulk`` and the copy it holds the table for (``held_for``, None: not held)."""
    if bulk is not None and bulk.load_id and bulk.load_id != applied_load:
        if bulk.state == "completed":
            return Decision("honour", bulk.load_id, bulk)
        return Decision("hold", bulk.load_id, bulk)
    if held_for is not None:  # no newer copy than the one held for (its rows gone: --fresh-start): keep holding
        return Decision("hold", held_for)
    return APPLY


def needs_ack(decision: Decision, running: bool) -> bool:
    """Whether the stream acknowledges the hold now: the copy's newest bulk event is its ``pending`` one, not
    acknowledged (the copy records it again when another event hid it: it is acknowledged again), and no
    apply of the table is in flight (its MERGE commits before the copy may overwrite)."""
    event = decision.event
    return decision.action == "hold" and event is not None and event.state == "pending" and not running and event.note != HELD_NOTE


def ack_event(pending: StatusEvent) -> StatusEvent:
    """The acknowledgement: the copy's pending event again, with the note, ordered right after it (``seq`` + 1),
    so it never hides a later event of the copy."""
    return pending.next(note=HELD_NOTE, seq=pending.seq + 1)


def acknowledged(latest: StatusEvent | None, load_id: str) -> bool:
    """The copy ``load_id`` may write: a running stream holds the table for it."""
    return latest is not None and latest.load_id == load_id and latest.note == HELD_NOTE


def hold_line(name: str, decision: Decision, state: str) -> str:
    return (f"{name}: held for a re-copy (bulk load {decision.load_id}, {state}): its events stay in Kafka, "
            f"other tables go on; it resumes from the new copy's snapshot when the copy completes")


def honour_line(name: str, event: StatusEvent, offsets: str) -> str:
    snapshot = f"position {event.snapshot_position}" + (" with txids" if event.snapshot_txids else "")
    return f"{name}: resumes from its new copy (bulk load {event.load_id}, snapshot {snapshot}), reading its topic from offsets {offsets}"
