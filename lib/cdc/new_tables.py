"""Tables created or dropped at the source while the stream runs (pure; ``cdc.auto_add_tables``).

Every ``cdc.auto_add_interval_seconds`` the running stream lists the tables of the source's schemas
(the dialect's listing SQL: the same filters as discovery) and compares them with the tables the status
table knows (its newest event per table, any phase):

- a listed table the include/exclude globs select that the status table does not know is **new**: it is
  added to the capture and copied from its own snapshot by the bulk load's own path, then streamed;
- a table reported dropped earlier that is listed again **returned** (created again under the same
  name): it is copied again (``--no-resume``);
- a known, selected table of the listed schemas that the listing lacks was **dropped**: it is reported
  in the status table (state ``dropped``), and its lake table is kept, never deleted.

A table the stream tried to copy and that still has no status event (the bulk load left it out, e.g. an
Oracle table with LONG columns under ``long_columns: skip_table``) is passed in ``skip``, so it is not
tried again at every look.

The copies the stream starts are marked: their bulk events carry ``STREAM_COPY_NOTE`` until they complete
(``BulkOptions.note``; a later ``jobs/bulk_load.py`` run of the table records its own events without it).
At its first look a stream started again **resumes** its own copies that a crash cut short (newest event
``pending`` or ``running`` with that note, still listed): no lease tells a copy in flight from a dead one,
and at the stream's start no copy of its own can be in flight. A copy of ``jobs/bulk_load.py`` cut short
stays the user's to resume, and a failed copy is left alone (both as before).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from lib.status.record import StatusEvent

DROPPED = "dropped"  # the state of a table dropped at the source
DROPPED_NOTE = "dropped at the source; the lake table is kept as it was"
# the note of the bulk events of a copy the stream started (until it completes): a stream started again resumes it
STREAM_COPY_NOTE = "copied by the CDC stream (cdc.auto_add_tables); a stream started again resumes it if cut short"
INTERRUPTED = ("pending", "running")  # the states a copy cut short leaves

Name = tuple[str, str]  # (schema, table)


@dataclass(frozen=True)
class TableChanges:
    new: tuple[Name, ...] = ()  # not known to the status table: copied
    returned: tuple[Name, ...] = ()  # reported dropped, listed again: copied again
    dropped: tuple[StatusEvent, ...] = ()  # known, no longer listed: their newest events, reported dropped
    resumed: tuple[Name, ...] = ()  # the stream's own copies cut short (first look only): resumed

    @property
    def to_copy(self) -> tuple[Name, ...]:
        return self.resumed + self.new + self.returned

    def __bool__(self) -> bool:
        return bool(self.new or self.returned or self.dropped or self.resumed)


def stream_copy_cut_short(event: StatusEvent | None) -> bool:
    """Whether ``event`` (a table's newest) is of a copy the stream started that did not end: bulk,
    ``pending`` or ``running``, marked with ``STREAM_COPY_NOTE``."""
    return event is not None and event.phase == "bulk" and event.state in INTERRUPTED and event.note == STREAM_COPY_NOTE


def diff_tables(listed: Iterable[Name], known: Mapping[Name, StatusEvent], schemas: Collection[str],
                selected: Callable[[str, str], bool], skip: Collection[Name] = (), resume_own: bool = False) -> TableChanges:
    """What changed between the source's ``listed`` tables (of ``schemas``) and the tables the status table
    ``known`` (newest event per (schema, table)); ``selected``: the source's include/exclude (and the stream's
    ``--tables``). Tables outside ``schemas`` are never reported dropped: the listing does not cover them.
    ``resume_own`` (the stream's first look): the stream's own copies cut short are in ``resumed``."""
    names = set(listed)
    new: list[Name] = []
    returned: list[Name] = []
    resumed: list[Name] = []
    for name in sorted(names):
        schema, table = name
        if schema not in schemas or name in skip or not selected(schema, table):
            continue
        event = known.get(name)
        if event is None:
            new.append(name)
        elif event.state == DROPPED:
            returned.append(name)
        elif resume_own and stream_copy_cut_short(event):
            resumed.append(name)
    dropped = tuple(event for name, event in sorted(known.items())
                    if name[0] in schemas and name not in names and event.state != DROPPED and selected(*name))
    return TableChanges(tuple(new), tuple(returned), dropped, tuple(resumed))


def exact_glob(schema: str, table: str) -> str:
    """A ``--tables`` glob matching ``schema.table`` only: the glob characters in the names bracketed."""
    def escape(text: str) -> str:
        return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)
    return f"{escape(schema)}.{escape(table)}"


def dropped_event(prior: StatusEvent) -> StatusEvent:
    """The status event reporting the table dropped at the source (the prior event's fields carried over)."""
    return prior.next(state=DROPPED, note=DROPPED_NOTE, last_error=None)


def found_line(schema: str, table: str, returned: bool, resumed: bool = False) -> str:
    if resumed:
        return f"source table {schema}.{table}: the stream's copy of it was cut short: resuming it"
    if returned:
        return f"source table {schema}.{table} exists again after it was dropped: copying it again"
    return f"new source table {schema}.{table} found: copying it"


def copied_line(schema: str, table: str, rows: int | None, seconds: float) -> str:
    return f"{schema}.{table} copied: {rows if rows is not None else '?'} rows in {seconds:.1f}s; streaming it"


def gone_line(schema: str, table: str) -> str:
    return f"source table {schema}.{table} no longer exists: it is reported dropped once its last changes are applied; its lake table is kept"


def dropped_line(schema: str, table: str) -> str:
    return f"source table {schema}.{table} dropped: reported in the status table (state {DROPPED}); its lake table is kept"
