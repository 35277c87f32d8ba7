"""A direct apply's truncate and added columns, committed by delta-rs (thin layer; the rules are
lib.cdc.table_changes').

- New columns: one add-columns commit before the MERGE, as the Spark path's ``ALTER TABLE ... ADD
  COLUMNS`` (delta-rs' MERGE with ``merge_schema`` would add them in the MERGE's own commit, but
  deltalake 1.6 writes that commit's metadata with a new table id, which Delta readers take for another
  table). A column a retried apply already added is left as it is when its type is the planned one;
  :func:`columns_to_add` raises :class:`NotDirect` (before anything is committed) when it is not, or
  when a ``timestamp_ntz`` column would need a table feature the table lacks (Delta-Spark adds it).
- A truncate: one MERGE that also deletes what the truncate deletes (:func:`merge_after_truncate`), or
  one DELETE when no event follows it, then the ``lakehouse.cdc.truncatedAt`` property (a second commit,
  as the Spark path's ``ALTER TABLE ... SET TBLPROPERTIES``). Each commit is atomic and a replay repeats
  none of its changes: a crash or an error between them leaves a range whose status was not recorded,
  which the next apply (or Spark) applies again, truncate included.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from lib.cdc.delta_rs_merge import open_for_write as _table  # local, or on Azure storage with the job's `storage:` accounts
from lib.cdc.direct.decode import NotDirect
from lib.cdc.plan import TRUNCATE_PROPERTY, TableSpec, q
from lib.cdc.table_changes import Position, counts_after_truncate, older_than_sql, truncate_merge


def _type_json(field: Any) -> Any:
    return json.loads(field.to_json())["type"]


def columns_to_add(location: str, columns: Sequence[tuple[str, str]]) -> list[Any]:
    """The deltalake fields of ``columns`` (name, lake type) the table at ``location`` does not have yet.
    NotDirect when one is there with another type, has a type delta-rs is not given here, or is a
    ``timestamp_ntz`` the table has no ``timestampNtz`` feature for."""
    import pyarrow as pa
    from deltalake import Field

    from lib.bulk.direct_read import DirectReadUnsupported, arrow_type

    table = _table(location)
    stored = {f.name: f for f in table.schema().fields}
    protocol = table.protocol()
    features = set(protocol.reader_features or ()) & set(protocol.writer_features or ())
    out = []
    for name, lake_type in columns:
        try:
            field = Field.from_arrow(pa.field(name, arrow_type(lake_type, "UTC"), nullable=True))
        except DirectReadUnsupported:
            raise NotDirect(f"a new column of lake type {lake_type}") from None
        if name in stored:  # added by an apply that did not finish (its range is applied again)
            if _type_json(stored[name]) != _type_json(field):
                raise NotDirect("a new column the lake table already has with another type")
            continue
        if "timestamp_ntz" in json.dumps(_type_json(field)) and "timestampNtz" not in features:
            raise NotDirect("a new timestamp_ntz column on a table without the timestampNtz feature (Delta-Spark adds it)")
        out.append(field)
    return out


def add_columns(location: str, fields: Sequence[Any]) -> None:
    """Add ``fields`` (from :func:`columns_to_add`) to the table, after its columns, in one commit."""
    if fields:
        _table(location).alter.add_columns(list(fields))


def merge_after_truncate(spec: TableSpec, data: Any, toastable: Sequence[str], truncate: Position) -> dict[str, int]:
    """MERGE the range's last events after the truncate at ``truncate`` (``data``, Arrow) and apply the
    truncate, in one commit; the Spark path's counts (its DELETE's and MERGE's together)."""
    table = _table(spec.location)
    replaced = _rows_replaced(table, spec, data, truncate)  # read from the version the MERGE reads
    m = truncate_merge(spec, toastable, truncate, now="now()")
    metrics = (
        table.merge(source=data, predicate=m.clauses.on, source_alias="s", target_alias="t")
        .when_matched_delete(predicate=m.clauses.delete_when)
        .when_matched_update(updates=dict(m.replaces), predicate=m.replace_when)
        .when_matched_update(updates=dict(m.clauses.updates), predicate=m.clauses.update_when)
        .when_not_matched_insert(updates=dict(m.clauses.inserts), predicate=m.clauses.insert_when)
        .when_not_matched_by_source_delete(predicate=m.drop_when)
        .execute()
    )
    return counts_after_truncate({"num_inserted_rows": metrics.get("num_target_rows_inserted") or 0,
                                  "num_updated_rows": metrics.get("num_target_rows_updated") or 0,
                                  "num_deleted_rows": metrics.get("num_target_rows_deleted") or 0}, replaced)


def _rows_replaced(table: Any, spec: TableSpec, data: Any, truncate: Position) -> int:
    """Rows older than the truncate (the MERGE's own condition, read by delta-rs' SQL engine) whose key
    has an event of the range that is not a delete."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import QueryBuilder

    live = data.filter(pc.not_equal(data.column("__op"), "d"))
    if not live.num_rows:
        return 0
    keys = list(spec.key_columns)
    wanted = set(zip(*(live.column(k).to_pylist() for k in keys), strict=True))
    query = f"SELECT {', '.join(q(k) for k in keys)} FROM t WHERE {older_than_sql(truncate, alias='')}"
    found = pa.table(QueryBuilder().register("t", table).execute(query).read_all())
    return sum(1 for key in zip(*(found.column(i).to_pylist() for i in range(len(keys))), strict=True) if key in wanted)


def delete_before_truncate(location: str, truncate: Position) -> int:
    """Delete what the truncate at ``truncate`` deletes (no event of the range follows it); the rows deleted."""
    metrics = _table(location).delete(older_than_sql(truncate, alias=""))
    return int(metrics.get("num_deleted_rows") or 0)


def record_truncate(location: str, truncate: Position) -> None:
    """Keep the truncate's position in the table property the stream reads at start (lib.cdc.loop.specs)."""
    _table(location).alter.set_table_properties({TRUNCATE_PROPERTY: f"{truncate[0]}:{truncate[1]}"}, raise_if_not_exists=False)
