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
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from lib.status.record import StatusEvent

DROPPED = "dropped"  # the state of a table dropped at the source
DROPPED_NOTE = "dropped at the source; the lake table is kept as it was"

Name = tuple[str, str]  # (schema, table)


@dataclass(frozen=True)
class TableChanges:
    new: tuple[Name, ...] = ()  # not known to the status table: copied
    returned: tuple[Name, ...] = ()  # reported dropped, listed again: copied again
    dropped: tuple[StatusEvent, ...] = ()  # known, no longer listed: their newest events, reported dropped

    @property
    def to_copy(self) -> tuple[Name, ...]:
        return self.new + self.returned

    def __bool__(self) -> bool:
        return bool(self.new or self.returned or self.dropped)


def diff_tables(listed: Iterable[Name], known: Mapping[Name, StatusEvent], schemas: Collection[str],
                selected: Callable[[str, str], bool], skip: Collection[Name] = ()) -> TableChanges:
    """What changed between the source's ``listed`` tables (of ``schemas``) and the tables the status table
    ``known`` (newest event per (schema, table)); ``selected``: the source's include/exclude (and the stream's
    ``--tables``). Tables outside ``schemas`` are never reported dropped: the listing does not cover them."""
    names = set(listed)
    new: list[Name] = []
    returned: list[Name] = []
    for name in sorted(names):
        schema, table = name
        if schema not in schemas or name in skip or not selected(schema, table):
            continue
        event = known.get(name)
        if event is None:
            new.append(name)
        elif event.state == DROPPED:
            returned.append(name)
    dropped = tuple(event for name, event in sorted(known.items())
                    if name[0] in schemas and name not in names and event.state != DROPPED and selected(*name))
    return TableChanges(tuple(new), tuple(returned), dropped)


def exact_glob(schema: str, table: str) -> str:
    """A ``--tables`` glob matching ``schema.table`` only: the glob characters in the names bracketed."""
    def escape(text: str) -> str:
        return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)
    return f"{escape(schema)}.{escape(table)}"


def dropped_event(prior: StatusEvent) -> StatusEvent:
    """The status event reporting the table dropped at the source (the prior event's fields carried over)."""
    return prior.next(state=DROPPED, note=DROPPED_NOTE, last_error=None)


def found_line(schema: str, table: str, returned: bool) -> str:
    if returned:
        return f"source table {schema}.{table} exists again after it was dropped: copying it again"
    return f"new source table {schema}.{table} found: copying it"


def copied_line(schema: str, table: str, rows: int | None, seconds: float) -> str:
    return f"{schema}.{table} copied: {rows if rows is not None else '?'} rows in {seconds:.1f}s; streaming it"


def gone_line(schema: str, table: str) -> str:
    return f"source table {schema}.{table} no longer exists: it is reported dropped once its last changes are applied; its lake table is kept"


def dropped_line(schema: str, table: str) -> str:
    return f"source table {schema}.{table} dropped: reported in the status table (state {DROPPED}); its lake table is kept"
