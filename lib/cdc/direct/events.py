"""A range of compact PostgreSQL change events -> the MERGE's source rows and the apply's counts,
in one Python pass (pure: no Spark, no Kafka, no lake).

This is what the Spark path of an apply (lib.cdc.spark.table_range, lib.cdc.spark.table_apply) computes with its
read+summarize job, decode statistics job and last-event window, for the common case: every message
compact and of this table, every op a row change or a truncate, every value decodable
(lib.cdc.direct.decode), no key needing the tombstone check. Anything else raises :class:`NotDirect`
and the range is applied by Spark, which handles it (dead letters, the tombstone join); an event naming
a column the plan does not know raises :class:`UnknownColumns` (the caller reads the source catalog
again: a column was added). The rules kept here are the Spark path's: an event is applied when its
transaction is not in the bulk snapshot and it is after the last truncate (a truncate in the range
moves that floor to the range's latest truncate first: the pass runs again from it); a key's last event
is the one with the greatest (commit, change, partition, offset); an update's unchanged-TOAST
placeholder takes the key's latest earlier value in the range, else it is flagged and the MERGE keeps
the stored value (``fill_exprs``); the counts and positions are those of ``_apply_decoded``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lib.cdc.direct.decode import Decoder, NotDirect, arrow_storage, decoder, toast_values
from lib.cdc.plan import ROW_OPS, TableSpec
from lib.cdc.visibility import SnapshotTxids, parse_snapshot_txids, visible

Message = tuple[int, int, bytes]  # (partition, offset, value) of a Kafka message with a value
Position = tuple[int, int]
_SCHEMA_PREFIX = b'{"schema":'


class UnknownColumns(NotDirect):
    """An event of the range has columns the plan does not know (added at the source after the source
    catalog was read): ``columns`` names them, for the caller to read the catalog again."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        super().__init__(columns)  # the args a worker process pickles it by
        self.columns = columns

    def __str__(self) -> str:
        return "a column the lake table does not have"


@dataclass(frozen=True)
class DirectPlan:
    """How one table's compact events are read directly (from its spec and the source's field schemas)."""

    spec: TableSpec
    decoders: tuple[Decoder | None, ...]  # per lake column; None: not in the source's fields (NULL, as Spark)
    toast: tuple[frozenset[str] | tuple[Any, ...], ...]  # per lake column: raw values that are Debezium's unchanged-TOAST placeholder
    key_index: tuple[int, ...]  # positions of the key columns among the lake columns
    snapshot: SnapshotTxids | None


def plan(spec: TableSpec, fields: Mapping[str, Mapping[str, Any]]) -> DirectPlan:
    """The table's direct plan; NotDirect when a column or the table is Spark's to apply."""
    if spec.event_format.name != "postgres":
        raise NotDirect(f"{spec.event_format.name} events are applied by Spark")
    if not spec.key_columns:
        raise NotDirect("no primary key")
    names = [n for n, _ in spec.columns]
    if any(k not in fields for k in spec.key_columns):
        raise NotDirect("a key column is not in the source catalog")
    if set(fields) - set(names):  # Spark's apply adds it to the lake table first (schema evolution)
        raise NotDirect("a source column the lake table does not have")
    decoders = tuple(decoder(fields[n], t) if n in fields else None for n, t in spec.columns)
    for k in spec.key_columns:  # the tombstone key is Spark's to_json text: integers and text only
        if spec.lake_type(k) not in ("smallint", "int", "bigint", "string"):
            raise NotDirect(f"key column {k} is {spec.lake_type(k)}")
    toast = tuple(toast_values(fields[n]) if n in fields else frozenset() for n in names)
    snapshot = parse_snapshot_txids(spec.snapshot_txids) if spec.snapshot_txids else None
    return DirectPlan(spec, decoders, toast, tuple(names.index(k) for k in spec.key_columns), snapshot)


@dataclass
class DirectBatch:
    """What the range applies: the last event per key and the counts (TableOutcome's)."""

    # storage values (lib.cdc.direct.decode), then op, commit, change, source ts_ms, events of the key (soft deletes: then __has_values)
    rows: list[list[Any]] = field(default_factory=list)
    events: int = 0
    applied: int = 0
    deletes: int = 0
    last_position: Position | None = None
    first: Position | None = None  # earliest applied event
    last_delete: Position | None = None
    last_ts_ms: int | None = None
    ts_p05_ms: int | None = None
    ts_p50_ms: int | None = None
    truncates: int = 0  # truncates after the bulk copy (each counted once, as on the Spark path)
    truncate: Position | None = None  # the latest of them: the table's truncate position once the range is applied
    # per row: the lake column positions whose value is an unchanged-TOAST placeholder no earlier event
    # of the key in the range had a value for (the MERGE keeps the stored value); () for most rows
    toasted: list[tuple[int, ...]] = field(default_factory=list)
    # history tables (summarize(..., every_event=True)): every applied event instead of the last per key:
    # (key, (commit, change, partition, offset), op, source ts_ms, storage values, placeholder positions)
    every: list[tuple[Any, ...]] = field(default_factory=list)

    def toast_columns(self) -> tuple[int, ...]:
        """The positions of the columns some row keeps the stored value of."""
        return tuple(sorted({i for t in self.toasted for i in t}))


_SEQUENCE = re.compile(r'^\[(?:"([0-9]{1,38})"|null),')  # Debezium's source.sequence: ["<last commit LSN>","<LSN>"]


def _commit(sequence: Any) -> int:
    """``sequence[0]`` of the source block (a JSON text of an array of strings), 0 when null, as
    ``coalesce(CAST(from_json(sequence)[0] AS decimal(38,0)), 0)``."""
    if sequence is None:
        return 0
    match = _SEQUENCE.match(sequence) if type(sequence) is str else None
    if match is None:
        raise NotDirect(f"source.sequence {str(sequence)[:60]!r} is not a list of LSN digits")
    return int(match.group(1)) if match.group(1) is not None else 0


def _percentile(values: list[int], p: float) -> int:
    """The smallest value with at least ``p`` of the values at or below it (percentile_approx's answer
    on a few thousand values)."""
    return values[max(0, math.ceil(p * len(values)) - 1)]


def summarize(p: DirectPlan, messages: Sequence[Message], every_event: bool = False) -> DirectBatch:
    """Decode every message of the range, keep the last applied event per key (``every_event``: every
    applied event, in ``DirectBatch.every``, for history tables), count.

    One pass, or two when the range holds a truncate after the bulk copy: as on the Spark path, the
    range's latest truncate is then applied first and only the events after it are kept (the second
    pass, with that floor); the latencies stay those of the first pass (the Spark path computes its
    statistics before it applies the truncate)."""
    batch = _pass(p, messages, p.spec.truncated_at, every_event)
    if batch.truncate is None:
        return batch
    after = _pass(p, messages, batch.truncate, every_event)
    after.ts_p05_ms, after.ts_p50_ms = batch.ts_p05_ms, batch.ts_p50_ms
    return after


def _in_copy(txid: Any, change: int, p: DirectPlan, cache: dict[Any, bool]) -> bool:
    """The event's transaction is in the bulk copy (the loop's own test, for the rare truncate)."""
    if txid is not None and type(txid) is not int:
        raise NotDirect("an event whose txId is not a number")
    if p.snapshot is None:
        return change <= p.spec.snapshot_position
    if txid not in cache:
        cache[txid] = visible(txid if type(txid) is int else None, p.snapshot)
    return cache[txid]


def _pass(p: DirectPlan, messages: Sequence[Message], truncated: Position | None, every_event: bool = False) -> DirectBatch:
    """One pass over the range with ``truncated`` as the truncate floor.

    The loop runs once per event under the GIL of a stream applying several tables at once, so it keeps
    to local variables, caches what repeats (a transaction's visibility), and calls json's C scanner
    directly (``raw_decode`` of the whole text: nothing may follow the document)."""
    spec = p.spec
    known = frozenset(n for n, _ in spec.columns)
    width = len(spec.columns)
    decoded = tuple((i, name, dec.convert, toast) for i, ((name, _), dec, toast) in enumerate(zip(spec.columns, p.decoders, p.toast, strict=True))
                    if dec is not None)
    key_index, snapshot, snapshot_position = p.key_index, p.snapshot, spec.snapshot_position
    schema, table = spec.schema, spec.table
    last: dict[tuple[Any, ...], tuple[tuple[int, int, int, int], list[Any]]] = {}
    # soft deletes: key -> (order, row, unfilled placeholders) of its latest insert or update, whose values
    # a delete that is the key's last event keeps (the Spark path's ``__prev`` and fill windows)
    soft = spec.history.soft_deletes
    valued: dict[tuple[Any, ...], tuple[tuple[int, int, int, int], list[Any], tuple[int, ...]]] = {}
    toasted: dict[tuple[Any, ...], tuple[int, ...]] = {}  # key -> placeholders of its last row still unfilled
    counts: dict[tuple[Any, ...], int] = {}
    stamps: list[int] = []
    every: list[tuple[Any, ...]] = []
    in_copy_of: dict[Any, bool] = {}  # txid -> its transaction is in the bulk copy
    raw_decode = json.JSONDecoder().raw_decode
    events = applied = deletes = truncates = 0
    truncate: Position | None = None
    last_position: Position | None = None
    first: Position | None = None
    last_delete: Position | None = None
    last_ts: int | None = None
    for partition, offset, value in messages:
        if value.startswith(_SCHEMA_PREFIX):
            raise NotDirect("messages with a schema block")
        try:
            text = value.decode()
            event, end = raw_decode(text)
            op, source = event["op"], event["source"]
            image = event["before"] if op == "d" else event["after"]
        except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: nesting deeper than the parser goes
            raise NotDirect("a message that is not a Debezium change event") from None
        if end != len(text):
            raise NotDirect("a message that is not a Debezium change event")
        # a truncate (op "t") has no row image: Debezium sends both as null
        if (op not in ROW_OPS or type(image) is not dict or type(source) is not dict) and \
                (op != "t" or type(source) is not dict or event.get("before") is not None or image is not None):
            raise NotDirect(f"an event with op {op!r}" if op not in ROW_OPS else "an event without its row image")
        if source.get("schema") != schema or source.get("table") != table:
            raise NotDirect("another table's events on the topic")
        after = event.get("after")
        if type(after) is dict and not after.keys() <= known:
            raise UnknownColumns(tuple(sorted(after.keys() - known)))
        change, ts = source.get("lsn"), source.get("ts_ms")
        if type(change) is not int or change < 0 or (ts is not None and type(ts) is not int):
            raise NotDirect("an event without an LSN")
        commit = _commit(source.get("sequence"))
        if image is None:  # a truncate: counted, its position kept; no row
            events += 1
            position = (commit, change)
            last_position = position if last_position is None or position > last_position else last_position
            last_ts = ts if ts is not None and (last_ts is None or ts > last_ts) else last_ts
            if not _in_copy(source.get("txId"), change, p, in_copy_of):
                truncates += 1
                truncate = position if truncate is None or position > truncate else truncate
            continue
        row: list[Any] = [None] * width
        placeholders: list[int] | None = None
        for i, name, convert, toast in decoded:
            raw = image.get(name)
            if raw is None:
                continue
            # texts in a set, lists in a tuple; only an update's placeholder means "unchanged" (as on the Spark path)
            if toast and op == "u" and type(raw) is (str if type(toast) is frozenset else list) and raw in toast:
                if placeholders is None:
                    placeholders = [i]
                else:
                    placeholders.append(i)
                continue
            try:
                row[i] = convert(raw)
            except NotDirect as exc:
                raise NotDirect(f"column {name}: {exc}") from None
        key = tuple([row[i] for i in key_index])
        if None in key:
            raise NotDirect("an event with a null key")
        events += 1
        position = (commit, change)
        if last_position is None or position > last_position:
            last_position = position
        if ts is not None and (last_ts is None or ts > last_ts):
            last_ts = ts
        txid = source.get("txId")
        if txid is not None and type(txid) is not int:
            raise NotDirect("an event whose txId is not a number")
        if snapshot is not None:
            in_copy = in_copy_of.get(txid)
            if in_copy is None:
                in_copy = in_copy_of[txid] = visible(txid if type(txid) is int else None, snapshot)
        else:
            in_copy = change <= snapshot_position
        if in_copy or (truncated is not None and position <= truncated):
            continue
        applied += 1
        if ts is not None:
            stamps.append(ts)
        if first is None or position < first:
            first = position
        if op == "d":
            deletes += 1
            if last_delete is None or position > last_delete:
                last_delete = position
        order = (commit, change, partition, offset)
        if every_event:
            every.append((key, order, op, ts, row, frozenset(placeholders) if placeholders else frozenset()))
            continue
        prior = last.get(key)
        counts[key] = counts.get(key, 0) + 1
        if placeholders is not None:  # the key's latest earlier value in the range, as the Spark path's fill window takes it
            if prior is not None and prior[0] > order:
                raise NotDirect("unchanged-TOAST placeholders in a key's events out of order")
            unfilled = toasted.get(key, ()) if prior is not None else ()
            keep = []
            for i in placeholders:
                if prior is not None and prior[1][width] != "d" and i not in unfilled:
                    row[i] = prior[1][i]
                else:
                    keep.append(i)
            placeholders = keep
        if soft and op != "d" and (key not in valued or order > valued[key][0]):
            valued[key] = (order, row, tuple(placeholders) if placeholders else ())
        if prior is None or order > prior[0]:
            row += (op, commit, change, ts)
            last[key] = (order, row)
            if placeholders:
                toasted[key] = tuple(placeholders)
            elif key in toasted:
                del toasted[key]
    rows = []
    for k, (_, r) in last.items():
        r.append(counts[k])
        if soft:
            r.append(_soft_values(r, valued.get(k), width, key_index, toasted, k))
        rows.append(r)
    out = DirectBatch(rows, events, applied, deletes, last_position, first, last_delete, last_ts, truncates=truncates, truncate=truncate,
                      toasted=[toasted.get(k, ()) for k in last] if toasted else [], every=every)
    if stamps:
        stamps.sort()
        out.ts_p05_ms, out.ts_p50_ms = _percentile(stamps, 0.05), _percentile(stamps, 0.5)
    return out


def _soft_values(row: list[Any], known: tuple[Any, list[Any], tuple[int, ...]] | None, width: int, key_index: Sequence[int],
                 toasted: dict[tuple[Any, ...], tuple[int, ...]], key: tuple[Any, ...]) -> bool:
    """A soft-delete table's last row of a key (``fill_exprs``/``last_event_exprs`` with soft deletes):
    a delete takes the values of the key's latest insert or update in the range (``known``; its
    unfilled placeholders keep the stored value). Returns ``__has_values``: whether the row's values
    are the range's (else a delete keeps the stored row's values and inserts nothing)."""
    has = row[width] != "d" or known is not None
    if row[width] == "d" and known is not None:
        keys = set(key_index)
        for i in range(width):
            if i not in keys:
                row[i] = known[1][i]
        if known[2]:
            toasted[key] = known[2]
    return has


def key_json(key_columns: Sequence[str], values: Sequence[Any]) -> str:
    """``lib.cdc.plan.key_json``'s text (Spark's ``to_json`` of the key struct) of the key ``values``, for
    integer and text keys: Jackson and ``json.dumps`` agree on them except on control characters, which are refused."""
    if any(isinstance(v, str) and any(c < " " for c in v) for v in values):
        raise NotDirect("a text key with control characters")
    return json.dumps(dict(zip(key_columns, values, strict=True)), separators=(",", ":"), ensure_ascii=False)


def arrow_rows(p: DirectPlan, batch: DirectBatch) -> Any:
    """The MERGE's source as Arrow: the lake columns with their lake types (as Spark's ``toArrow``
    gives them), ``__op``, the positions, ``__source_ts_ms`` and ``__events``."""
    import pyarrow as pa

    from lib.bulk.direct_read import arrow_type
    from lib.cdc.plan import CHANGE, COMMIT, HAS_VALUES, toast_flag

    spec = p.spec
    n = len(spec.columns)
    position = pa.decimal128(38, 0)
    arrays, fields = [], []
    for i, ((name, lake_type), dec) in enumerate(zip(spec.columns, p.decoders, strict=True)):
        kind = arrow_type(lake_type, "UTC")
        values = [r[i] for r in batch.rows]
        if dec is not None and dec.storage:
            arrays.append(pa.array(values, arrow_storage(dec.storage)).cast(kind))
        else:
            arrays.append(pa.array(values, kind))
        fields.append(pa.field(name, kind))
    extra = (("__op", pa.string()), (COMMIT, position), (CHANGE, position), ("__source_ts_ms", pa.int64()), ("__events", pa.int64()))
    if spec.history.soft_deletes:
        extra += ((HAS_VALUES, pa.bool_()),)
    for j, (name, kind) in enumerate(extra):
        arrays.append(pa.array([r[n + j] for r in batch.rows], kind))
        fields.append(pa.field(name, kind))
    for i in batch.toast_columns():  # the MERGE keeps the stored value where the flag is set (lib.cdc.plan.merge_clauses)
        arrays.append(pa.array([i in t for t in batch.toasted], pa.bool_()))
        fields.append(pa.field(toast_flag(spec.columns[i][0]), pa.bool_()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def toasted_names(p: DirectPlan, batch: DirectBatch) -> tuple[str, ...]:
    """The columns whose stored value some row of the MERGE source keeps (its ``toastable`` list)."""
    return tuple(p.spec.columns[i][0] for i in batch.toast_columns())


def tombstone_rows(p: DirectPlan, batch: DirectBatch) -> tuple[tuple[Any, ...], ...]:
    """(schema, table, key, commit, change) of the deleted keys, as the tombstone buffer holds them."""
    n, spec = len(p.spec.columns), p.spec
    return tuple((spec.schema, spec.table, key_json(spec.key_columns, [r[i] for i in p.key_index]), Decimal(r[n + 1]), Decimal(r[n + 2]))
                 for r in batch.rows if r[n] == "d")
