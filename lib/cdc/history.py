"""History tables (``cdc.history: scd2``) and soft deletes (``cdc.deletes: soft``): pure planning, Spark SQL text.

An scd2 lake table holds one row per version of a source row::

    <source columns>, __source_commit_pos, __source_change_pos   the position of the last change applied to the version
    __op                                                          its last change: r (bulk), c, u, d
    __valid_from   timestamp   commit time at the source of the change that opened the version (bulk rows: the snapshot)
    __valid_to     timestamp   commit time of the change that opened the next version; NULL while current
    __is_current   boolean     the key's latest version (exactly one per key that was ever seen, until a truncate)
    __is_deleted   boolean     the version opened by a delete (its values are the last ones before the delete)

An apply turns every event of its range (not only the last per key) into versions, in source order:

    join      the events with the lake's current version of their key             current_rows_exprs(), CURRENT_ROW
    keep      events after the current version's position (a replay adds nothing)  new_events_filter()
    resolve   TOAST placeholders and deletes take the previous version's values     resolve_exprs()
    open      whether the event opens a version (history_columns: only when one     opens_exprs()
              of them changes; else it updates the version in place)
    group     number the key's versions, first commit time of each                 group_exprs(), group_start_exprs()
    chain     the last event of each version, __valid_to = the next one's start     LAST_OF_GROUP, chain_exprs()
    merge     close or update the lake's current version, insert the new ones       merge_source_exprs(), history_merge_sql()

Idempotency: a version is identified by its key and the position of its last change; events at or
before the key's current version's position are dropped before anything is built (the stream applies
a key's events in source order), and the MERGE only touches the current version it was built on.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.cdc.plan import CHANGE, COMMIT, HAS_VALUES, TableSpec, delta_ref, newer, q, toast_flag

VALID_FROM, VALID_TO, IS_CURRENT, IS_DELETED = "__valid_from", "__valid_to", "__is_current", "__is_deleted"
SCD2_DDL = ((VALID_FROM, "timestamp"), (VALID_TO, "timestamp"), (IS_CURRENT, "boolean"), (IS_DELETED, "boolean"))
SOFT_DDL = ((IS_DELETED, "boolean"),)
CURRENT_ROW = f"{q(IS_CURRENT)}"  # the filter of the lake's current versions
CUR = "__cur_"  # prefix of the current version's columns beside each event


def history_columns_ddl(spec: TableSpec) -> tuple[tuple[str, str], ...]:
    """The ``__`` columns the table's history mode needs (none for a plain mirror)."""
    if spec.history.scd2:
        return SCD2_DDL
    if spec.history.soft_deletes:
        return SOFT_DDL
    return ()


def init_history_sql(spec: TableSpec, columns: Sequence[str], snapshot_time_sql: str) -> str:
    """Give the rows of a table that just got its history ``columns`` their first version: current, not
    deleted, valid from the snapshot (bulk rows) or from when the stream wrote them (rows it applied
    before history was turned on). Values already there stay (a second run changes nothing)."""
    sets = []
    if VALID_FROM in columns:
        sets.append(f"{q(VALID_FROM)} = coalesce({q(VALID_FROM)}, CASE WHEN `__op` = 'r' THEN {snapshot_time_sql} ELSE `__ingested_at` END)")
    if IS_CURRENT in columns:
        sets.append(f"{q(IS_CURRENT)} = coalesce({q(IS_CURRENT)}, true)")
    if IS_DELETED in columns:
        sets.append(f"{q(IS_DELETED)} = coalesce({q(IS_DELETED)}, " + ("`__op` = 'd')" if spec.history.soft_deletes else "false)"))
    nulls = " OR ".join(f"{q(c)} IS NULL" for c in columns)
    return f"UPDATE {delta_ref(spec.location)} SET {', '.join(sets)} WHERE {nulls}"


def _keys(spec: TableSpec) -> str:
    return ", ".join(q(k) for k in spec.key_columns)


def _values(spec: TableSpec) -> list[str]:
    return [n for n, _ in spec.columns if n not in spec.key_columns]


def current_rows_exprs(spec: TableSpec) -> list[str]:
    """The lake's current versions (filtered by CURRENT_ROW) as the columns joined beside the events."""
    return [*(q(k) for k in spec.key_columns),
            f"{COMMIT} AS {q(CUR + 'commit')}", f"{CHANGE} AS {q(CUR + 'change')}", f"`__op` AS {q(CUR + 'op')}",
            f"{q(VALID_FROM)} AS {q(CUR + 'valid_from')}", f"{q(IS_DELETED)} AS {q(CUR + 'deleted')}",
            *(f"{q(n)} AS {q(CUR + n)}" for n in _values(spec))]


def new_events_filter() -> str:
    """Events after the key's current version (bulk rows, ``__op = 'r'``, are older than every event
    that passed the snapshot filter); all events of a key the lake does not hold."""
    cur_commit, cur_change = q(CUR + "commit"), q(CUR + "change")
    return (f"({cur_commit} IS NULL OR {q(CUR + 'op')} = 'r' OR {COMMIT} > {cur_commit} "
            f"OR ({COMMIT} = {cur_commit} AND {CHANGE} > {cur_change}))")


def _window(spec: TableSpec, frame: bool = False) -> str:
    w = f"PARTITION BY {_keys(spec)} ORDER BY {COMMIT}, {CHANGE}, __partition, __offset"
    return f"({w} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)" if frame else f"({w})"


def resolve_exprs(spec: TableSpec, toastable: Sequence[str]) -> list[str]:
    """Each event's full row: a column an update leaves as Debezium's unchanged-TOAST placeholder, and
    every non-key column of a delete, take the key's previous value (its latest earlier event in the
    range that had one, else the lake's current version; NULL when neither: after a truncate)."""
    toast = set(toastable)
    out = [*(q(k) for k in spec.key_columns), "__op", COMMIT, CHANGE, "__partition", "__offset", "__source_ts_ms",
           *(q(CUR + c) for c in ("commit", "change", "op", "valid_from", "deleted")),
           *(q(CUR + c) for c in _tracked(spec))]  # opens_exprs compares them with the first event
    for n in _values(spec):
        has = "__op IN ('c', 'u', 'r')" + (f" AND NOT coalesce({q(toast_flag(n))}, false)" if n in toast else "")
        out.append(f"coalesce(last(CASE WHEN {has} THEN named_struct('v', {q(n)}) END, true) OVER {_window(spec, True)}, "
                   f"named_struct('v', {q(CUR + n)})).v AS {q(n)}")
    return out


def _tracked(spec: TableSpec) -> list[str]:
    """The history columns the table has (a key column never changes within a key)."""
    names = dict(spec.columns)
    return [c for c in spec.history.history_columns or () if c in names and c not in spec.key_columns]


def opens_exprs(spec: TableSpec) -> list[str]:
    """Whether each event opens a version: inserts and deletes always; an update when the key has no
    previous version, the previous one is deleted, no ``history_columns`` are set, or one of them changes."""
    w = _window(spec)
    prev_exists = f"(lag(1) OVER {w} IS NOT NULL OR {q(CUR + 'commit')} IS NOT NULL)"
    prev_deleted = f"coalesce(lag(__op) OVER {w} = 'd', CASE WHEN lag(1) OVER {w} IS NULL THEN {q(CUR + 'deleted')} END, false)"
    columns = spec.history.history_columns
    if columns is None:
        changed = "true"
    else:
        diffs = [f"NOT (coalesce(lag(named_struct('v', {q(c)})) OVER {w}, named_struct('v', {q(CUR + c)})).v <=> {q(c)})" for c in _tracked(spec)]
        changed = " OR ".join(diffs) if diffs else "false"
    opens = f"CASE WHEN __op IN ('c', 'r', 'd') THEN true WHEN NOT {prev_exists} THEN true WHEN {prev_deleted} THEN true ELSE ({changed}) END"
    return ["*", f"{opens} AS __opens", "timestamp_millis(__source_ts_ms) AS __at"]


def group_exprs(spec: TableSpec) -> list[str]:
    """The version number of each event within its key (0: the lake's current version, updated in
    place) and whether the key's first event opened a version."""
    return ["*", f"sum(CASE WHEN __opens THEN 1 ELSE 0 END) OVER {_window(spec, True)} AS __grp",
            f"first(__opens) OVER {_window(spec, True)} AS __first_opens"]


def group_start_exprs(spec: TableSpec) -> list[str]:
    """Each version's start (the first commit time of its events; version 0 keeps the lake's) and
    whether the event is its version's last."""
    grp = f"(PARTITION BY {_keys(spec)}, __grp ORDER BY {COMMIT}, {CHANGE}, __partition, __offset ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    return ["*", f"CASE WHEN __grp = 0 THEN {q(CUR + 'valid_from')} ELSE first(__at) OVER {grp} END AS __start",
            f"coalesce(lead(__grp) OVER {_window(spec)} <> __grp, true) AS __last_of_group"]


LAST_OF_GROUP = "__last_of_group"


def chain_exprs(spec: TableSpec) -> list[str]:
    """Over the last event of each version: its end (the next version's start) and whether it is current."""
    w = f"(PARTITION BY {_keys(spec)} ORDER BY __grp)"
    return ["*", f"lead(__start) OVER {w} AS __end", f"lead(__grp) OVER {w} IS NULL AS __current"]


def merge_source_exprs() -> list[str]:
    """The MERGE's rows: ``update`` (version 0: the lake's current version, changed in place), ``close``
    (the lake's current version ends where version 1 starts) and ``insert`` (every new version)."""
    roles = (f"CASE WHEN __grp = 0 THEN array('update') WHEN __grp = 1 AND __first_opens AND {q(CUR + 'commit')} IS NOT NULL "
             "THEN array('close', 'insert') ELSE array('insert') END")
    return ["*", f"explode({roles}) AS __role"]


def history_merge_sql(spec: TableSpec, source_view: str, now: str = "current_timestamp()") -> str:
    """One MERGE writing an apply's versions (merge_source_exprs' rows in ``source_view``)."""
    on = " AND ".join([*(f"t.{q(k)} = s.{q(k)}" for k in spec.key_columns), f"t.{q(IS_CURRENT)}", "s.__role <> 'insert'",
                       f"t.{COMMIT} = s.{q(CUR + 'commit')}", f"t.{CHANGE} = s.{q(CUR + 'change')}"])
    position = [(COMMIT, f"s.{COMMIT}"), (CHANGE, f"s.{CHANGE}"), ("`__op`", "s.`__op`"), ("`__ingested_at`", now)]
    version = [(q(VALID_TO), "s.__end"), (q(IS_CURRENT), "s.__current"), (q(IS_DELETED), "s.`__op` = 'd'")]
    updates = [(q(n), f"s.{q(n)}") for n in _values(spec)] + position + version
    inserts = [(q(n), f"s.{q(n)}") for n, _ in spec.columns] + position + [(q(VALID_FROM), "s.__start")] + version
    sets = ", ".join(f"t.{c} = {e}" for c, e in updates)
    return (f"MERGE INTO {delta_ref(spec.location)} AS t USING {q(source_view)} AS s ON {' AND '.join([on])} "
            f"WHEN MATCHED AND s.__role = 'update' THEN UPDATE SET {sets} "
            f"WHEN MATCHED AND s.__role = 'close' THEN UPDATE SET t.{q(VALID_TO)} = s.__start, t.{q(IS_CURRENT)} = false "
            f"WHEN NOT MATCHED AND s.__role = 'insert' THEN INSERT ({', '.join(c for c, _ in inserts)}) "
            f"VALUES ({', '.join(e for _, e in inserts)})")


def truncate_history_sql(spec: TableSpec, commit: int, change: int, at_sql: str) -> str:
    """A truncate closes every current version older than it (scd2) or marks every such row deleted
    (soft deletes); the rows stay. ``at_sql``: the truncate's commit time."""
    older = f"(`__op` = 'r' OR {COMMIT} < {commit} OR ({COMMIT} = {commit} AND {CHANGE} < {change}))"
    if spec.history.scd2:
        return f"UPDATE {delta_ref(spec.location)} SET {q(VALID_TO)} = {at_sql}, {q(IS_CURRENT)} = false WHERE {q(IS_CURRENT)} AND {older}"
    return (f"UPDATE {delta_ref(spec.location)} SET {q(IS_DELETED)} = true, `__op` = 'd', `__ingested_at` = current_timestamp() "
            f"WHERE NOT {q(IS_DELETED)} AND {older}")


def soft_merge_clauses(spec: TableSpec, toastable: Sequence[str], now: str = "now()") -> tuple[str, list[tuple[dict[str, str], str]], tuple[dict[str, str], str]]:
    """The mirror MERGE of a soft-delete table, as delta-rs' merge arguments (the shape of
    :func:`history_merge_clauses`), over the apply's last event per key (``lib.cdc.plan.last_event_exprs``):
    a delete keeps the row with ``__is_deleted = true`` and the values of the key's latest insert or
    update in the apply (``__has_values``; without one, the values the row has), an insert or update
    of the key revives it. A key the apply inserted and deleted gets its deleted row, as it would in
    two applies: the result does not depend on where the applies split."""
    toast = set(toastable)

    def value(n: str, keep: str) -> str:
        v = f"CASE WHEN s.{q(toast_flag(n))} THEN {keep} ELSE s.{q(n)} END" if n in toast else f"s.{q(n)}"
        return f"CASE WHEN s.`__op` = 'd' AND NOT s.{HAS_VALUES} THEN t.{q(n)} ELSE {v} END" if keep != "NULL" else v

    position = {COMMIT: f"s.{COMMIT}", CHANGE: f"s.{CHANGE}", "`__op`": "s.`__op`", "`__ingested_at`": now, q(IS_DELETED): "s.`__op` = 'd'"}
    update = {**{q(n): value(n, f"t.{q(n)}") for n in _values(spec)}, **position}
    insert = {**{q(n): value(n, "NULL") for n, _ in spec.columns}, **position}
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in spec.key_columns)
    return on, [(update, f"(t.`__op` = 'r' OR {newer('s', 't')})")], (insert, f"(s.`__op` <> 'd' OR s.{HAS_VALUES})")


def soft_merge_sql(spec: TableSpec, source_view: str, toastable: Sequence[str]) -> str:
    """:func:`soft_merge_clauses` as one Spark SQL MERGE statement reading the view ``source_view``."""
    on, [(update, when)], (insert, insert_when) = soft_merge_clauses(spec, toastable, now="current_timestamp()")
    return (f"MERGE INTO {delta_ref(spec.location)} AS t USING {q(source_view)} AS s ON {on} "
            f"WHEN MATCHED AND {when} THEN UPDATE SET {', '.join(f't.{c} = {e}' for c, e in update.items())} "
            f"WHEN NOT MATCHED AND {insert_when} THEN INSERT ({', '.join(insert)}) VALUES ({', '.join(insert.values())})")


def lake_view_filter(columns: Sequence[str]) -> str | None:
    """The rows that mirror the source, for a lake table with ``columns``: current, not deleted
    versions (None: every row, a plain mirror)."""
    parts = []
    if IS_CURRENT in columns:
        parts.append(q(IS_CURRENT))
    if IS_DELETED in columns:
        parts.append(f"NOT {q(IS_DELETED)}")
    return " AND ".join(parts) or None


def as_of_sql(location: str, at: str) -> str:
    """The table as of a time (a timestamp literal or expression): each key's version valid then."""
    return (f"SELECT * FROM {delta_ref(location)} WHERE {q(VALID_FROM)} <= {at} "
            f"AND ({q(VALID_TO)} IS NULL OR {q(VALID_TO)} > {at}) AND NOT {q(IS_DELETED)}")


def version_counts_sql(location: str, columns: Sequence[str]) -> str | None:
    """One row (versions, current, deleted) of a history or soft-delete table: its rows, its current
    versions (every row of a soft-delete table) and the current ones that are deletes. None: a plain mirror."""
    if IS_DELETED not in columns:
        return None
    current = q(IS_CURRENT) if IS_CURRENT in columns else "true"
    return (f"SELECT count(1) AS versions, count_if({current}) AS current, count_if({current} AND {q(IS_DELETED)}) AS deleted "
            f"FROM {delta_ref(location)}")


def history_merge_clauses(spec: TableSpec, now: str = "now()") -> tuple[str, list[tuple[str, dict[str, str], str]], tuple[dict[str, str], str]]:
    """:func:`history_merge_sql` as delta-rs' merge arguments: the predicate, the WHEN MATCHED updates
    (updates, predicate) in order, and the WHEN NOT MATCHED insert (values, predicate)."""
    on = " AND ".join([*(f"t.{q(k)} = s.{q(k)}" for k in spec.key_columns), f"t.{q(IS_CURRENT)}", "s.`__role` <> 'insert'",
                       f"t.{COMMIT} = s.{q(CUR + 'commit')}", f"t.{CHANGE} = s.{q(CUR + 'change')}"])
    position = {COMMIT: f"s.{COMMIT}", CHANGE: f"s.{CHANGE}", "`__op`": "s.`__op`", "`__ingested_at`": now}
    version = {q(VALID_TO): "s.`__end`", q(IS_CURRENT): "s.`__current`", q(IS_DELETED): "s.`__op` = 'd'"}
    update = {**{q(n): f"s.{q(n)}" for n in _values(spec)}, **position, **version}
    close = {q(VALID_TO): "s.`__start`", q(IS_CURRENT): "false"}
    insert = {**{q(n): f"s.{q(n)}" for n, _ in spec.columns}, **position, q(VALID_FROM): "s.`__start`", **version}
    return on, [(update, "s.`__role` = 'update'"), (close, "s.`__role` = 'close'")], (insert, "s.`__role` = 'insert'")


# The columns of the MERGE's rows delta-rs needs (the rest of merge_source_exprs' output stays in Spark)
def merge_rows_exprs(spec: TableSpec) -> list[str]:
    return [*(q(n) for n, _ in spec.columns), COMMIT, CHANGE, "`__op`", q(CUR + "commit"), q(CUR + "change"),
            "__start", "__end", "__current", "__role"]
