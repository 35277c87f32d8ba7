"""How one table's slice of a micro-batch becomes one MERGE (pure: Spark SQL text, no Spark).

The execution layer (:mod:`lib.cdc.spark.table_apply`) runs these steps over the batch's messages::

    parse    from_json(raw) with the table's envelope DDL            parse_exprs()
    decode   every column to its lake type, positions, error reason   decode_exprs()  (one per schema version)
    keep     no error, not in the bulk snapshot, after a truncate     apply_filter()
    (join)   drop events before the key's tombstone (but its delete)  tombstone_filter()
    order    TOAST fill from earlier events of the key, last event    fill_exprs(), last_event_filter()
    merge    one MERGE with a position guard                          merge_sql()

Positions are ``(__source_commit_pos, __source_change_pos)``, compared as decimal(38,0) numbers: for
PostgreSQL Debezium's ``source.sequence[0]`` (the last commit LSN before the event's transaction; it
orders transactions in commit order) and ``source.lsn`` (the change's own LSN; orders changes within a
transaction). Rows of the bulk copy carry ``__op = 'r'``; an event that passed the snapshot filter is
always newer than them (see docs/cdc-stream.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lib.cdc.decode import UnsupportedField
from lib.cdc.envelope import SOURCE_DDL, envelope_ddl, payload_ddl
from lib.cdc.event_format import EventFormat, sanitize_topic
from lib.cdc.visibility import CHANGE, COMMIT, lsn_fallback_visible  # noqa: F401 - re-exported
from lib.config.model import HistoryMode
from lib.spark_sql import delta_path as delta_ref
from lib.spark_sql import ident as q
from lib.spark_sql import string as sql_string

OPS = ("c", "u", "d", "r", "t")
# The message's Kafka coordinates and text, carried beside the decoded columns (``__`` names never
# collide with source columns: docs/reference.md).
KAFKA_COLUMNS = ("__topic", "__partition", "__offset", "__key", "__raw", "__schema_id")
ROW_OPS = ("c", "u", "d", "r")


def table_topic(prefix: str, schema: str, table: str) -> str:
    """The Kafka topic Debezium writes a table's events to: ``<prefix>.<schema>.<table>`` with every
    character a topic name cannot hold replaced by ``_`` (Debezium's topic naming strategy)."""
    return sanitize_topic(f"{prefix}.{schema}.{table}")


@dataclass(frozen=True)
class TableSpec:
    """What the stream knows of one lake table (from the status table and the Delta schema)."""

    source: str
    schema: str
    table: str
    location: str
    key_columns: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (name, lake type as Spark DDL) of the source columns, lake order
    snapshot_txids: str | None = None  # the bulk snapshot's pg_current_snapshot() text
    snapshot_position: int = 0  # the bulk snapshot's position as a number (fallback rule, no txids)
    truncated_at: tuple[int, int] | None = None  # position of the last applied truncate
    has_tombstones: bool = True  # False while the tombstone table is known empty (skips its join)
    tombstones_until: tuple[int, int] | None = None  # the latest delete position among its tombstones; None: unknown
    merge_by: str = "spark"  # who runs its MERGE: "spark" (Delta-Spark) or "delta-rs" (lib/cdc/delta_rs_merge.py)
    spark_merge_reason: str | None = None  # why Spark MERGEs it (lib/cdc/loop/specs.py); None when delta-rs does
    # scd2 history or soft deletes (lib/cdc/history.py; Spark MERGEs such tables); a plain mirror by default
    history: HistoryMode = field(default_factory=HistoryMode)
    # How this source's events are read (positions, decoding, placeholders): the dialect's
    # ``cdc_events`` (lib.cdc.event_format); PostgreSQL's when not given.
    event_format: EventFormat = field(default_factory=lambda: _postgres_events(), compare=False, repr=False)

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    def lake_type(self, column: str) -> str | None:
        return dict(self.columns).get(column)


def _postgres_events() -> EventFormat:
    from lib.dialects.postgres.cdc_events import EVENTS

    return EVENTS


@dataclass(frozen=True)
class VersionPlan:
    """Decoding of the events of one envelope schema version of a table."""

    select: tuple[str, ...]  # decode_exprs: over parse_exprs' output
    toastable: tuple[str, ...]  # columns whose value can be Debezium's unchanged-TOAST placeholder
    lossy: tuple[tuple[str, str], ...] = ()  # (column, why the value can differ from the bulk path's)
    errors: tuple[tuple[str, str], ...] = field(default=())  # (column, reason) making every event bad


# Two message formats, recognized per message (docs/cdc-stream.md, "Message formats"):
# - compact (``schemas.enable=false``): the change event itself, ``{"before":...,"after":...}``;
#   version id 0, decoded with the field schemas the dialect rebuilds from the source catalog;
# - with a schema block: JsonConverter writes ``{"schema":{...},"payload":{...}}``; the block is most of
#   the message and the same for every event of a table version. String functions split it off without
#   parsing it: the cached row keeps the payload document and a hash of the schema text (the version
#   id); the schema text itself is kept once per version and put back for dead letters.
# Only a message that starts with ``{"schema":`` has a block (a compact event may well contain the text
# ``,"payload":``, e.g. a column named payload); the block's end is the first ``,"payload":`` after it
# (field names in the block are values of "field", never keys).
SCHEMA_PREFIX = '{"schema":'
SEPARATOR = ',"payload":'


def _has_schema_sql(value: str) -> str:
    return f"(startswith({value}, {sql_string(SCHEMA_PREFIX)}) AND locate({sql_string(SEPARATOR)}, {value}) > 0)"


def schema_id_sql(value: str) -> str:
    """Version id of a message text: a hash of its schema block; 0 when it has no such block (compact)."""
    return f"CASE WHEN {_has_schema_sql(value)} THEN xxhash64(substring_index({value}, {sql_string(SEPARATOR)}, 1)) ELSE 0 END"


def schema_text_sql(value: str) -> str:
    return f"substring_index({value}, {sql_string(SEPARATOR)}, 1)"


def body_sql(value: str) -> str:
    """The payload document ``{"payload":{...}}`` of a message with a schema block; a compact message as it is."""
    return (f"CASE WHEN {_has_schema_sql(value)} "
            f"THEN concat('{{', substring({value}, length({schema_text_sql(value)}) + 2)) ELSE {value} END")


def raw_message_sql(schemas: Mapping[int, str]) -> str:
    """The original message text of a cached row (schema block put back), for dead letters."""
    cases = " ".join(f"WHEN {i} THEN concat({sql_string(text)}, ',', substring(__raw, 2))" for i, text in schemas.items() if i != 0)
    return f"CASE __schema_id {cases} ELSE __raw END" if cases else "__raw"


def parse_exprs(columns: Sequence[str], compact: bool = False, source_ddl: str = SOURCE_DDL) -> list[str]:
    """Parse step: the change event with every row field as JSON text, plus the Kafka coordinates.
    ``compact``: the message is the event itself (no schema block, no ``payload`` wrapper);
    ``source_ddl``: the source block's fields (``spec.event_format.source_ddl``)."""
    if compact:
        return [*KAFKA_COLUMNS, f"from_json(__raw, {sql_string(payload_ddl(columns, source_ddl))}) AS __p"]
    return [*KAFKA_COLUMNS, f"from_json(__raw, {sql_string(envelope_ddl(columns, source_ddl))}).payload AS __p"]


ANOTHER_TABLE = "another table's events, or a topic routing this stream does not support"

# Debezium names of string fields whose text is the value whatever JSON it holds (a JSON document)
_JSON_TEXT = "io.debezium.data.Json"


def json_string_sql(column: str, compact: bool) -> str:
    """Spark SQL boolean: the row image's field ``column`` of the message is a JSON string, checked on
    the message text (``__raw``). The all-string parse hands an array or object in a string field over
    as its JSON text, which would be stored as if it were the value; the check runs only where the text
    starts like one (``[`` or ``{``), so an ordinary value costs one regex match, not a second parse."""
    root = "$" if compact else "$.payload"
    name = '["' + column + '"]' if '"' not in column else "['" + column + "']"
    path = f"CASE WHEN __p.op = 'd' THEN {sql_string(root + '.before' + name)} ELSE {sql_string(root + '.after' + name)} END"
    return f"coalesce(schema_of_variant(variant_get(try_parse_json(__raw), {path})) = 'STRING', false)"


def version_plan(spec: TableSpec, fields: Mapping[str, Mapping[str, Any]], compact: bool = True) -> VersionPlan:
    """Decode expressions of one schema version: ``fields`` are its ``after`` image field schemas;
    ``compact``: its messages have no schema block."""
    fmt = spec.event_format
    image = "(CASE WHEN __p.op = 'd' THEN __p.before ELSE __p.after END)"
    values: list[str] = []
    checks: list[tuple[str, str]] = []  # (column, ok expression)
    toastable: list[str] = []
    lossy: list[tuple[str, str]] = []
    errors: list[tuple[str, str]] = []
    toast_flags: list[str] = []
    for name, lake_type in spec.columns:
        raw = f"{image}.{q(name)}"
        field_schema = fields.get(name)
        if field_schema is None:  # not in this version (added later, or dropped in the source)
            values.append(f"CAST(NULL AS {lake_type}) AS {q(name)}")
            continue
        try:
            plan = fmt.decode_column(field_schema, lake_type, raw)
        except UnsupportedField as exc:
            errors.append((name, f"column {name}: {exc}; the lake column is {lake_type} (type change cannot be applied safely)"))
            values.append(f"CAST(NULL AS {lake_type}) AS {q(name)}")
            continue
        values.append(f"{plan.value} AS {q(name)}")
        ok = plan.ok
        if field_schema.get("type") == "string" and field_schema.get("name") != _JSON_TEXT and spec.lake_type(name) == "string" \
                and not ('"' in name and "'" in name):
            ok = f"({ok}) AND ({raw} IS NULL OR NOT startswith({raw}, '[') AND NOT startswith({raw}, '{{') OR {json_string_sql(name, compact)})"
        checks.append((name, ok))
        if plan.lossy:
            lossy.append((name, plan.lossy))
        unavailable = fmt.unavailable_sql(field_schema, raw)
        if unavailable != "false":
            toastable.append(name)
            toast_flags.append(f"(__p.op = 'u' AND {unavailable}) AS {q(toast_flag(name))}")
    missing_keys = [k for k in spec.key_columns if k not in fields]
    reasons = ["WHEN __p IS NULL OR __p.op IS NULL THEN 'unparseable: not a Debezium change event'",
               f"WHEN __p.op NOT IN ({', '.join(sql_string(o) for o in OPS)}) THEN concat('unknown op ', __p.op)",
               # a message is merged only into the table its source block names (a truncate may name none)
               f"WHEN NOT ((__p.source.schema <=> {sql_string(spec.schema)} AND __p.source.table <=> {sql_string(spec.table)}) "
               f"OR (__p.op = 't' AND __p.source.table IS NULL)) THEN concat('an event of ', coalesce(__p.source.schema, '?'), '.', "
               f"coalesce(__p.source.table, '?'), {sql_string(f' on the topic of {spec.name}: ' + ANOTHER_TABLE)})"]
    reasons += [f"WHEN TRUE THEN {sql_string(reason)}" for _, reason in errors]
    position_error = fmt.position_error_sql()
    if position_error:
        reasons.append(f"WHEN {position_error} THEN {sql_string(f'no {fmt.name} source position in the event, or one out of range')}")
    if missing_keys:
        reasons.append(f"WHEN TRUE THEN {sql_string('key column(s) missing from the event: ' + ', '.join(missing_keys))}")
    for key in spec.key_columns:
        if key in fields:
            reasons.append(f"WHEN __p.op <> 't' AND {image}.{q(key)} IS NULL THEN {sql_string('key column ' + key + ' is null')}")
    for name, ok in checks:
        # a TOAST placeholder is not a value to decode: its flag makes the MERGE keep the stored one
        guard = f"NOT (__p.op = 'u' AND {fmt.unavailable_sql(fields[name], f'{image}.{q(name)}')}) AND " if name in toastable else ""
        reasons.append(f"WHEN __p.op <> 't' AND {guard}NOT coalesce({ok}, false) THEN "
                       f"{sql_string(f'column {name}: value cannot be decoded exactly to {spec.lake_type(name)}')}")
    commit, change = fmt.positions_sql()
    select = [
        *KAFKA_COLUMNS,
        "__p.op AS __op",
        f"{commit} AS {COMMIT}",
        f"{change} AS {CHANGE}",
        f"{fmt.txid_sql} AS __txid",
        "__p.source.ts_ms AS __source_ts_ms",
        *values,
        *toast_flags,
        f"CASE {' '.join(reasons)} END AS __error",
    ]
    return VersionPlan(tuple(select), tuple(toastable), tuple(lossy), tuple(errors))


def toast_flag(column: str) -> str:
    return f"__toast_{column}"


def newer(s: str, t: str) -> str:
    """``s``'s position is after ``t``'s (both aliases of rows with position columns)."""
    return (f"({s}.{COMMIT} > {t}.{COMMIT} OR ({s}.{COMMIT} = {t}.{COMMIT} AND {s}.{CHANGE} > {t}.{CHANGE}))")


def position_after(commit: int, change: int) -> str:
    """The row's position is after (commit, change)."""
    return f"({COMMIT} > {commit} OR ({COMMIT} = {commit} AND {CHANGE} > {change}))"


def apply_filter(spec: TableSpec, visible_sql: str) -> str:
    """Events to apply: decodable row changes not contained in the bulk copy nor before a truncate.

    ``visible_sql`` is the boolean "this event's transaction is visible in the bulk snapshot" (over
    ``__txid``, ``__source_commit_pos``...), from :mod:`lib.cdc.visibility` or the LSN fallback."""
    parts = ["__error IS NULL", f"__op IN ({', '.join(sql_string(o) for o in ROW_OPS)})", f"NOT coalesce({visible_sql}, false)"]
    if spec.truncated_at:
        parts.append(position_after(*spec.truncated_at))
    return " AND ".join(parts)


def truncate_filter(visible_sql: str) -> str:
    return f"__error IS NULL AND __op = 't' AND NOT coalesce({visible_sql}, false)"


TOMB_COMMIT, TOMB_CHANGE = "__tomb_commit_pos", "__tomb_change_pos"


def tombstone_filter() -> str:
    """After a left join with the tombstones (renamed position columns): not before the delete, and at
    it only the delete itself. The delete applies again: on a row newer than it the MERGE's position guard
    makes that nothing, and a table copied again from a snapshot taken before the delete (a re-copy
    while the stream ran, whose old copy the delete was applied to) still holds the row it must remove."""
    at = f"{COMMIT} = {TOMB_COMMIT} AND ({CHANGE} > {TOMB_CHANGE} OR ({CHANGE} = {TOMB_CHANGE} AND __op = 'd'))"
    return f"({TOMB_COMMIT} IS NULL OR {COMMIT} > {TOMB_COMMIT} OR ({at}))"


def _order(spec: TableSpec) -> str:
    keys = ", ".join(q(k) for k in spec.key_columns)
    return f"PARTITION BY {keys} ORDER BY {COMMIT}, {CHANGE}, __partition, __offset"


PREV, HAS_VALUES = "__prev", "__has_values"


def fill_exprs(spec: TableSpec, toastable: Sequence[str]) -> list[str]:
    """Fill each unchanged-TOAST value from the key's latest earlier event in the batch that had it
    (insert and update in one batch); count the key's events to keep the last one. Soft deletes also
    keep the key's latest insert or update (``__prev``: its columns that are never placeholders), the
    values a delete that is the key's last event keeps (as if each event were applied on its own)."""
    window = f"({_order(spec)} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    out = ["*", f"row_number() OVER ({_order(spec)}) AS __rn",
           f"count(1) OVER (PARTITION BY {', '.join(q(k) for k in spec.key_columns)}) AS __events"]
    for c in toastable:
        flag = q(toast_flag(c))
        out.append(f"last(CASE WHEN __op IN ('c', 'u', 'r') AND NOT coalesce({flag}, false) THEN named_struct('v', {q(c)}) END, true) "
                   f"OVER {window} AS {q('__fill_' + c)}")
    if spec.history.soft_deletes:
        fields = "".join(f", {sql_string(n)}, {q(n)}" for n in _plain_values(spec, toastable))
        out.append(f"last(CASE WHEN __op IN ('c', 'u', 'r') THEN named_struct('__has', true{fields}) END, true) OVER {window} AS {PREV}")
    return out


def _plain_values(spec: TableSpec, toastable: Sequence[str]) -> list[str]:
    """The non-key columns whose value is never a TOAST placeholder."""
    toast = set(toastable)
    return [n for n, _ in spec.columns if n not in spec.key_columns and n not in toast]


def last_event_exprs(spec: TableSpec, toastable: Sequence[str]) -> list[str]:
    """The MERGE source's columns, from fill_exprs' output filtered to ``__rn = __events``.

    Soft deletes: a delete takes the values of the key's latest insert or update in the batch (TOAST
    placeholders filled as theirs; a column none of them had keeps the stored value: its flag is set),
    and ``__has_values`` says whether there was one (else the MERGE keeps the stored row's values and
    inserts nothing: a delete of a key the batch never wrote)."""
    toast = set(toastable)
    soft = spec.history.soft_deletes
    out = []
    for name, _ in spec.columns:
        if name in toast:
            fill = q("__fill_" + name)
            flagged = f"(coalesce({q(toast_flag(name))}, false) OR __op = 'd')" if soft else f"coalesce({q(toast_flag(name))}, false)"
            out.append(f"CASE WHEN {fill} IS NULL THEN {q(name)} ELSE {fill}.v END AS {q(name)}")
            out.append(f"({flagged} AND {fill} IS NULL) AS {q(toast_flag(name))}")
        elif soft and name not in spec.key_columns:
            out.append(f"CASE WHEN __op = 'd' AND {PREV} IS NOT NULL THEN {PREV}.{q(name)} ELSE {q(name)} END AS {q(name)}")
        else:
            out.append(q(name))
    extra = [f"{PREV} IS NOT NULL AS {HAS_VALUES}"] if soft else []
    return [*out, "__op", COMMIT, CHANGE, "__source_ts_ms", "__events", *extra]


LAST_EVENT = "__rn = __events"


@dataclass(frozen=True)
class MergeClauses:
    """The stream's MERGE as data: conditions and per-column expressions over the target ``t`` and the
    source ``s`` (Spark SQL, which delta-rs' DataFusion parser reads too: backquoted identifiers)."""

    on: str
    delete_when: str  # WHEN MATCHED AND ... THEN DELETE
    update_when: str  # WHEN MATCHED AND ... THEN UPDATE SET
    updates: tuple[tuple[str, str], ...]  # (quoted target column, expression)
    insert_when: str  # WHEN NOT MATCHED AND ... THEN INSERT
    inserts: tuple[tuple[str, str], ...]  # (quoted target column, expression)


def merge_clauses(spec: TableSpec, toastable: Sequence[str], now: str = "current_timestamp()") -> MergeClauses:
    """The MERGE applying the batch's last event per key: deletes delete, others upsert, and only when
    the event is newer than the row (bulk rows, ``__op = 'r'``, are older than every event). ``now``:
    the current-time expression of the engine that runs it (delta-rs: ``now()``)."""
    toast = set(toastable)
    guard = f"(t.`__op` = 'r' OR {newer('s', 't')})"

    def value(name: str, keep: str) -> str:
        return f"CASE WHEN s.{q(toast_flag(name))} THEN {keep} ELSE s.{q(name)} END" if name in toast else f"s.{q(name)}"

    position = ((COMMIT, f"s.{COMMIT}"), (CHANGE, f"s.{CHANGE}"), ("`__op`", "s.`__op`"), ("`__ingested_at`", now))
    return MergeClauses(
        on=" AND ".join(f"t.{q(k)} = s.{q(k)}" for k in spec.key_columns),
        delete_when=f"s.`__op` = 'd' AND {guard}",
        update_when=f"s.`__op` <> 'd' AND {guard}",
        updates=tuple((q(n), value(n, f"t.{q(n)}")) for n, _ in spec.columns if n not in spec.key_columns) + position,
        insert_when="s.`__op` <> 'd'",
        inserts=tuple((q(n), value(n, "NULL")) for n, _ in spec.columns) + position,
    )


KEY_FILTER_MAX = 20_000  # most distinct key values written into a MERGE's ON condition (key_filter)
_INTEGRAL = ("tinyint", "smallint", "int", "bigint")


def key_filter(spec: TableSpec, values: Sequence[Any]) -> str | None:
    """``t.<first key column> IN (<values>)``, the MERGE source's distinct values of that column, for the
    ON condition of a Spark MERGE. It changes no result (a target row that matches has one of these
    values) but Spark drops every other target row at the scan, before the join: a MERGE that inserts
    too is an outer join Spark cannot broadcast, so without it the whole table is shuffled on every apply
    (measured on a 25M-row, 1 GB table with deletion vectors: 100 s an apply without, 30 s with). None
    (no filter) for other key types, no values, or more than ``KEY_FILTER_MAX`` of them."""
    if not spec.key_columns:
        return None
    name = spec.key_columns[0]
    lake_type = (spec.lake_type(name) or "").lower()
    distinct = sorted({v for v in values if v is not None})
    if not distinct or len(distinct) > KEY_FILTER_MAX:
        return None
    if lake_type in _INTEGRAL and all(isinstance(v, int) and not isinstance(v, bool) for v in distinct):
        rendered = [str(v) for v in distinct]
    elif lake_type == "string" and all(isinstance(v, str) for v in distinct):
        rendered = [sql_string(v) for v in distinct]
    else:
        return None
    return f"t.{q(name)} IN ({', '.join(rendered)})"


def merge_sql(spec: TableSpec, source_view: str, toastable: Sequence[str], keys: str | None = None) -> str:
    """:func:`merge_clauses` as one Spark SQL MERGE statement reading the view ``source_view``; ``keys``
    (:func:`key_filter`) narrows the target rows it joins."""
    m = merge_clauses(spec, toastable)
    return merge_statement(delta_ref(spec.location), source_view, dataclasses.replace(m, on=f"{m.on} AND {keys}") if keys else m)


def merge_statement(target: str, source_view: str, m: MergeClauses) -> str:
    """The clauses ``m`` as one Spark SQL MERGE into ``target`` (a table reference) reading the view
    ``source_view``: the stream's and the repair's (lib.validate.repair_plan) statements."""
    sets = ", ".join(f"t.{column} = {expr}" for column, expr in m.updates)
    names = ", ".join(column for column, _ in m.inserts)
    values = ", ".join(expr for _, expr in m.inserts)
    return (f"MERGE INTO {target} AS t USING {q(source_view)} AS s ON {m.on} "
            f"WHEN MATCHED AND {m.delete_when} THEN DELETE "
            f"WHEN MATCHED AND {m.update_when} THEN UPDATE SET {sets} "
            f"WHEN NOT MATCHED AND {m.insert_when} THEN INSERT ({names}) VALUES ({values})")


# One tombstone table per source, ``<lake>/_pipeline/tombstones/<source>``: the delete position of
# every deleted key of every table, the key as the JSON of its lake values.
TOMBSTONE_DDL = (f"`schema` string, `table` string, `key` string, {COMMIT} decimal(38,0), {CHANGE} decimal(38,0), "
                 "`__deleted_at` timestamp")
TOMB_KEY = "__tomb_key"


def key_json(spec: TableSpec) -> str:
    """The row's key as JSON text (the same text for the same lake values, whatever their types)."""
    return "to_json(named_struct(" + ", ".join(f"{sql_string(k)}, {q(k)}" for k in spec.key_columns) + "))"


def tombstone_rows_exprs(spec: TableSpec) -> list[str]:
    """Tombstone rows of the MERGE source's deletes (filter ``__op = 'd'`` first)."""
    return [f"{sql_string(spec.schema)} AS `schema`", f"{sql_string(spec.table)} AS `table`", f"{key_json(spec)} AS `key`", COMMIT, CHANGE]


def tombstones_of_sql(spec: TableSpec, relation: str) -> str:
    """The table's tombstones, the latest delete per key, as the columns the filter joins on;
    ``relation`` is a quoted view or table reference with the tombstone table's columns (the table
    itself: ``delta_ref``). Tombstones are appended, so a key deleted twice has two rows."""
    latest = f"max(named_struct('c', {COMMIT}, 'h', {CHANGE}))"
    return (f"SELECT {TOMB_KEY}, _t.c AS {TOMB_COMMIT}, _t.h AS {TOMB_CHANGE} FROM ("
            f"SELECT `key` AS {TOMB_KEY}, {latest} AS _t FROM {relation} "
            f"WHERE `schema` = {sql_string(spec.schema)} AND `table` = {sql_string(spec.table)} GROUP BY `key`)")


def needs_tombstone_check(spec: TableSpec, first: tuple[int, int] | None) -> bool:
    """Whether the events to apply, the earliest at position ``first``, must be checked against the
    table's tombstones. A tombstone only drops events before its delete (and at it, all but the delete), so events all after
    the table's latest tombstone (``spec.tombstones_until``) need no check: the steady state of a
    table applied in order, where only a replay or a lagging partition brings older events."""
    if not spec.has_tombstones or first is None:
        return False
    return spec.tombstones_until is None or first <= spec.tombstones_until


def after_deletes(spec: TableSpec, last_delete: tuple[int, int] | None) -> TableSpec:
    """The spec once an apply's deletes (the latest at ``last_delete``) are tombstones: the latest
    tombstone position moves forward; it stays unknown when it was."""
    until = spec.tombstones_until
    if not spec.has_tombstones:
        until = last_delete
    elif until is not None and last_delete is not None:
        until = max(until, last_delete)
    return dataclasses.replace(spec, has_tombstones=True, tombstones_until=until)


def tombstones_until_sql(tombstone_location: str) -> str:
    """The latest delete position per table of the tombstone table (``tombstones_until`` of each spec)."""
    return (f"SELECT `schema`, `table`, max(named_struct('c', {COMMIT}, 'h', {CHANGE})) AS `until` "
            f"FROM {delta_ref(tombstone_location)} GROUP BY `schema`, `table`")


def tombstone_append_exprs() -> list[str]:
    """Columns of tombstone rows (:func:`tombstone_rows_exprs`' output) as the tombstone table has them."""
    return ["`schema`", "`table`", "`key`", COMMIT, CHANGE, "current_timestamp() AS `__deleted_at`"]


def tombstone_expiry_sql(tombstone_location: str, retention_hours: float) -> str:
    seconds = int(retention_hours * 3600)
    return f"DELETE FROM {delta_ref(tombstone_location)} WHERE `__deleted_at` < current_timestamp() - make_dt_interval(0, 0, 0, {seconds})"


def truncate_sql(spec: TableSpec, commit: int, change: int) -> str:
    """Empty the table of every row older than the truncate (rows applied after it stay)."""
    return (f"DELETE FROM {delta_ref(spec.location)} WHERE `__op` = 'r' OR {COMMIT} < {commit} "
            f"OR ({COMMIT} = {commit} AND {CHANGE} < {change})")


TRUNCATE_PROPERTY = "lakehouse.cdc.truncatedAt"


def truncate_property_sql(spec: TableSpec, commit: int, change: int) -> str:
    return f"ALTER TABLE {delta_ref(spec.location)} SET TBLPROPERTIES ({sql_string(TRUNCATE_PROPERTY)} = '{commit}:{change}')"


def parse_truncated_at(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    commit, change = value.split(":")
    return int(commit), int(change)


def add_columns_sql(spec: TableSpec, columns: Sequence[tuple[str, str]]) -> str:
    return f"ALTER TABLE {delta_ref(spec.location)} ADD COLUMNS ({', '.join(f'{q(n)} {t}' for n, t in columns)})"
