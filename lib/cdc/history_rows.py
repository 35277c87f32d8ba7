"""An scd2 apply's versions built in Python (pure: no Spark, no lake, no Arrow): the direct path's twin
of lib.cdc.history's Spark SQL, step for step, on the same inputs, giving the same MERGE rows.

Input: the apply's kept events of one table in any order (every event, not only the last per key), each
with its full row of lake values and the positions of its unchanged-TOAST placeholders; and the lake's
current version of each touched key. Output: the rows of ``history_merge_clauses``' MERGE, as
``merge_rows_exprs`` names them: the lake columns, the last change's position and op, the current
version's position it was built on, the version's start and end, whether it is current, and its role
(``update``: the lake's current version changed in place; ``close``: the lake's current version ends
where the apply's first version starts; ``insert``: a new version).

The steps, as in lib.cdc.history (each rule there is the rule here):

    keep      events after the key's current version (none, or a bulk row: every event)
    resolve   a column takes the key's latest event up to this one that had a value for it (an insert
              or update, not its TOAST placeholder), else the current version's value
    open      inserts and deletes open a version; an update when the key has no earlier version, the
              earlier one is a delete, no history_columns are set or one of them changed
    group     versions numbered from 1 (0: the current version, updated in place); each starts at its
              first event's commit time (version 0 keeps the current version's start)
    chain     each version is its last event; it ends where the next one starts; the last is current
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
OPENING_OPS = frozenset(("c", "r", "d"))
VALUE_OPS = frozenset(("c", "u", "r"))


@dataclass(frozen=True)
class Event:
    """One kept event: its full row of lake values (in the lake's column order; a placeholder's is None)."""

    key: tuple[Any, ...]
    order: tuple[int, int, int, int]  # commit, change, Kafka partition, offset: the source order
    op: str  # c, u, d, r
    ts_ms: int | None  # source commit time
    values: Sequence[Any]
    placeholders: frozenset[int] = frozenset()  # column positions whose value is an unchanged-TOAST placeholder


@dataclass(frozen=True)
class Current:
    """The lake's current version of a key (the columns ``current_rows_exprs`` joins beside the events)."""

    commit: Any  # __source_commit_pos (None when the row has none)
    change: Any
    op: str | None
    valid_from: Any
    deleted: bool | None
    values: Sequence[Any]  # the full row, in the lake's column order


@dataclass(frozen=True)
class VersionRow:
    """One row of the MERGE's source (``merge_rows_exprs``)."""

    values: tuple[Any, ...]
    commit: int
    change: int
    op: str
    cur_commit: Any
    cur_change: Any
    start: Any
    end: Any
    current: bool
    role: str  # update, close, insert


def at(ts_ms: int | None) -> dt.datetime | None:
    """``timestamp_millis(ts_ms)`` as an aware UTC datetime."""
    return None if ts_ms is None else EPOCH + dt.timedelta(milliseconds=ts_ms)


def same(a: Any, b: Any) -> bool:
    """Spark's null-safe equality ``<=>`` (NaN equals NaN)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def is_new(event: Event, cur: Current | None) -> bool:
    """``new_events_filter``: the event is after the key's current version (every event when there is none, or it is a bulk row)."""
    if cur is None or cur.commit is None or cur.op == "r":
        return True
    commit, change = event.order[0], event.order[1]
    return commit > cur.commit or (commit == cur.commit and cur.change is not None and change > cur.change)


def build_versions(events: Sequence[Event], current: Mapping[tuple[Any, ...], Current], width: int, key_index: Sequence[int],
                   tracked: Sequence[int] | None) -> list[VersionRow]:
    """The MERGE rows of one apply. ``width``: the lake columns; ``key_index``: the key columns' positions;
    ``tracked``: the positions of the history columns (None: every update opens a version)."""
    by_key: dict[tuple[Any, ...], list[Event]] = {}
    for e in events:
        by_key.setdefault(e.key, []).append(e)
    keys = frozenset(key_index)
    value_index = [i for i in range(width) if i not in keys]
    out: list[VersionRow] = []
    for key, evs in by_key.items():
        cur = current.get(key)
        kept = sorted((e for e in evs if is_new(e, cur)), key=lambda e: e.order)
        if kept:
            out += _key_versions(kept, cur, width, key_index, value_index, tracked)
    return out


def _key_versions(events: list[Event], cur: Current | None, width: int, key_index: Sequence[int], value_index: Sequence[int],
                  tracked: Sequence[int] | None) -> list[VersionRow]:
    state = list(cur.values) if cur is not None else [None] * width  # each column's latest value (resolve)
    cur_exists = cur is not None and cur.commit is not None
    prev: list[Any] | None = None
    prev_op: str | None = None
    grp = 0
    first_opens = False
    groups: list[tuple[int, Any, list[Any], Event]] = []  # (number, start, resolved row, last event)
    for n, e in enumerate(events):
        if e.op in VALUE_OPS:
            for i in value_index:
                if i not in e.placeholders:
                    state[i] = e.values[i]
        row = list(state)
        for i in key_index:
            row[i] = e.values[i]
        prev_deleted = (prev_op == "d") if prev is not None else bool(cur is not None and cur.deleted)
        if e.op in OPENING_OPS or not (prev is not None or cur_exists) or prev_deleted or tracked is None:
            opens = True
        else:
            before = prev if prev is not None else (cur.values if cur is not None else [None] * width)
            opens = any(not same(before[i], row[i]) for i in tracked)
        if n == 0:
            first_opens = opens
        if opens:
            grp += 1
            groups.append((grp, at(e.ts_ms), row, e))
        elif groups and groups[-1][0] == grp:
            groups[-1] = (grp, groups[-1][1], row, e)
        else:  # version 0: the lake's current version, changed in place
            groups.append((0, cur.valid_from if cur is not None else None, row, e))
        prev, prev_op = row, e.op
    cur_commit = cur.commit if cur is not None else None
    cur_change = cur.change if cur is not None else None
    out = []
    for j, (number, start, row, e) in enumerate(groups):
        last = j == len(groups) - 1
        end = None if last else groups[j + 1][1]
        if number == 0:
            roles: tuple[str, ...] = ("update",)
        elif number == 1 and first_opens and cur_commit is not None:
            roles = ("close", "insert")
        else:
            roles = ("insert",)
        for role in roles:
            out.append(VersionRow(tuple(row), e.order[0], e.order[1], e.op, cur_commit, cur_change, start, end, last, role))
    return out


def tracked_positions(columns: Sequence[str], key_columns: Sequence[str], history_columns: Sequence[str] | None) -> list[int] | None:
    """The positions of the history columns the table has (``lib.cdc.history._tracked``); None: not set."""
    if history_columns is None:
        return None
    return [i for i, c in enumerate(columns) if c in set(history_columns) and c not in set(key_columns)]
