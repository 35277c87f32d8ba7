"""A direct apply of a history table (``history: scd2``) or a soft-delete table (``deletes: soft``):
the versions built in Python (lib.cdc.history_rows, the twin of lib.cdc.history's Spark SQL) on the
lake's current versions of the range's keys (read with delta-rs), then one delta-rs MERGE with the
Spark path's clauses (``history_merge_clauses``, ``soft_merge_clauses``), one commit. Thin layer: the
rules are lib.cdc.history_rows' and lib.cdc.history's.

A truncate in the range is Spark's to apply (it closes every current version of the table, in commits
of its own): :func:`check` raises NotDirect before anything is read from the lake.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from lib.cdc import history as H
from lib.cdc.delta_rs_merge import merge_history_arrow
from lib.cdc.direct.decode import NotDirect, arrow_storage
from lib.cdc.direct.events import DirectBatch, DirectPlan, key_json
from lib.cdc.history_rows import Current, Event, VersionRow, build_versions, tracked_positions
from lib.cdc.plan import CHANGE, COMMIT, TableSpec, q
from lib.lake.delta_rs_storage import DeltaRsUnreachable
from lib.lake.local_writer import open_table


def check(spec: TableSpec, batch: DirectBatch) -> None:
    """NotDirect for a history or soft-delete range the direct path leaves to Spark: one with a truncate."""
    if batch.truncate is not None:
        raise NotDirect(("history: scd2" if spec.history.scd2 else "deletes: soft") + ": a truncate in the range (Spark closes the versions)")


def _lake_column(p: DirectPlan, i: int, values: list[Any]) -> Any:
    """Column ``i``'s storage values (lib.cdc.direct.decode) as an Arrow array of its lake type."""
    import pyarrow as pa

    from lib.bulk.direct_read import arrow_type

    kind = arrow_type(p.spec.columns[i][1], "UTC")
    dec = p.decoders[i]
    if dec is not None and dec.storage:
        return pa.array(values, arrow_storage(dec.storage)).cast(kind)
    return pa.array(values, kind)


def events_of(p: DirectPlan, batch: DirectBatch) -> list[Event]:
    """The range's applied events with their rows as lake values (as Arrow gives them back)."""
    every = batch.every
    columns = [_lake_column(p, i, [e[4][i] for e in every]).to_pylist() for i in range(len(p.spec.columns))]
    rows = list(zip(*columns, strict=True)) if columns else [() for _ in every]
    key_index = p.key_index
    return [Event(tuple(row[i] for i in key_index), order, op, ts, row, placeholders)
            for (_, order, op, ts, _, placeholders), row in zip(every, rows, strict=True)]


def current_versions(spec: TableSpec, keys: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], Current]:
    """The lake's current versions (``__is_current``) of ``keys``, read by delta-rs' SQL engine (a column
    the lake table lacks yet, added by this apply, is NULL). Not by its pyarrow dataset: deltalake 1.6
    turns a file's missing min/max statistics (Delta-Spark writes none for booleans) into a pruning
    guarantee that drops every file on a filter of ``__is_current``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import QueryBuilder

    if not keys:
        return {}
    try:
        table = open_table(spec.location)
    except DeltaRsUnreachable as exc:  # a remote lake without the job's accounts in this worker: Spark's
        raise NotDirect(f"delta-rs cannot reach the lake from this process: {exc}") from None
    names = {f.name for f in table.schema().fields}
    columns = [n for n, _ in spec.columns if n in names]
    extra = [COMMIT, CHANGE, "__op", H.VALID_FROM, H.IS_DELETED]
    query = f"SELECT {', '.join(q(c) for c in columns + extra)} FROM t WHERE {q(H.IS_CURRENT)}"
    found = pa.table(QueryBuilder().register("t", table).execute(query).read_all())
    views = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary()}  # DataFusion's; pyarrow's filter takes the plain types
    found = found.cast(pa.schema([f.with_type(views.get(f.type, f.type)) for f in found.schema]))
    first = spec.key_columns[0]
    found = found.filter(pc.is_in(found.column(first), pa.array(sorted({k[0] for k in keys}), found.schema.field(first).type)))
    data = {c: found.column(c).to_pylist() for c in found.column_names}
    missing = [None] * found.num_rows
    values = [data.get(n, missing) for n, _ in spec.columns]
    index = [next(i for i, (n, _) in enumerate(spec.columns) if n == k) for k in spec.key_columns]
    touched = set(keys)
    out: dict[tuple[Any, ...], Current] = {}
    for r in range(found.num_rows):
        row = [v[r] for v in values]
        key = tuple(row[i] for i in index)
        if key in touched:
            out[key] = Current(data[COMMIT][r], data[CHANGE][r], data["__op"][r], data[H.VALID_FROM][r], data[H.IS_DELETED][r], row)
    return out


def version_table(p: DirectPlan, rows: Sequence[VersionRow]) -> Any:
    """The MERGE's source as Arrow (``merge_rows_exprs``' columns)."""
    import pyarrow as pa

    from lib.bulk.direct_read import arrow_type

    position, ts = pa.decimal128(38, 0), pa.timestamp("us", tz="UTC")
    arrays = [pa.array([r.values[i] for r in rows], arrow_type(t, "UTC")) for i, (_, t) in enumerate(p.spec.columns)]
    names = [n for n, _ in p.spec.columns]
    extra = ((COMMIT, position, "commit"), (CHANGE, position, "change"), ("__op", pa.string(), "op"), (H.CUR + "commit", position, "cur_commit"),
             (H.CUR + "change", position, "cur_change"), ("__start", ts, "start"), ("__end", ts, "end"), ("__current", pa.bool_(), "current"),
             ("__role", pa.string(), "role"))
    for name, kind, attr in extra:
        arrays.append(pa.array([getattr(r, attr) for r in rows], kind))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def apply_scd2(p: DirectPlan, batch: DirectBatch) -> tuple[dict[str, int], tuple[tuple[Any, ...], ...], int]:
    """Build the range's versions on the lake's current ones and MERGE them (one commit). Returns the
    Spark path's counts, the tombstone rows of the deleted versions inserted, and the MERGE's source rows."""
    spec = p.spec
    events = events_of(p, batch)
    current = current_versions(spec, list({e.key for e in events}))
    names = [n for n, _ in spec.columns]
    rows = build_versions(events, current, len(names), p.key_index, tracked_positions(names, spec.key_columns, spec.history.history_columns))
    if not rows:  # a replay: every event at or before its key's current version
        return {"num_inserted_rows": 0, "num_updated_rows": 0, "num_deleted_rows": 0}, (), 0
    metrics = merge_history_arrow(spec.location, version_table(p, rows), H.history_merge_clauses(spec))
    tombstones = tuple((spec.schema, spec.table, key_json(spec.key_columns, [r.values[i] for i in p.key_index]), Decimal(r.commit), Decimal(r.change))
                       for r in rows if r.op == "d" and r.role == "insert")
    return {**metrics, "num_deleted_rows": len(tombstones)}, tombstones, len(rows)


def apply_soft(spec: TableSpec, data: Any, toastable: Sequence[str]) -> dict[str, int]:
    """MERGE the range's last events per key (``data``, Arrow) into a soft-delete table (one commit); the
    Spark path's counts: a delete is counted as a delete, not as the update it is."""
    import pyarrow.compute as pc

    metrics = merge_history_arrow(spec.location, data, H.soft_merge_clauses(spec, toastable))
    deleted = int(pc.sum(pc.equal(data.column("__op"), "d")).as_py() or 0)
    return {"num_inserted_rows": metrics["num_inserted_rows"], "num_updated_rows": max(0, metrics["num_updated_rows"] - deleted),
            "num_deleted_rows": deleted}
