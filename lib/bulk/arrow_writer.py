"""Small tables written by delta-rs from Arrow instead of by Spark's Delta writer (issue 15).

A small table (read in one piece) costs fixed work per table, not per row. Measured with
``scripts/bench_small_table_floor.py`` (docs/benchmarks.md): on this 2-core machine one Delta commit
made by Delta-Spark costs 126-176 ms of wall time per table even with no data at all (an empty
``DeltaTable.create``, 8 tables at a time), so 100 tables cannot be created in under ~13-18 s that
way, before anything is read. The same table read by the same Spark JDBC query, collected as Arrow
(``DataFrame.toArrow``: one Spark job, no pandas) and committed by delta-rs (``write_deltalake``)
costs 38-85 ms.

What stays the same: the query, its casts and the snapshot (the DataFrame is the one the Spark path
would write), the Delta schema Spark reads back, the values (compared value by value with Spark and
with delta-rs in ``tests/integration/test_bulk_fidelity.py``), and exactly-once: the commit carries
the load id as a Delta ``txn`` action (app id = load id, version = chunk 0), the same record
``lib/bulk/writer.committed_chunk`` reads to skip a committed table after a crash.

Used only where the result is the same table Spark would create (:func:`unsupported_reason`): a Delta
lake on a local path, a path that holds no Delta table yet, and column names Delta stores without
column mapping. Everything else (ADLS / Blob lakes, reloads over an existing table, names with spaces,
Parquet lakes, tables big enough to be split) keeps Spark's writer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lib.bulk.writer import needs_column_mapping
from lib.lake.local_writer import local_path
from lib.lake.paths import is_uri


def unsupported_reason(lake_format: str, path: str, columns: Sequence[str]) -> str | None:
    """Why a new table at ``path`` must be written by Spark instead (pure); None when delta-rs can.
    The caller also keeps Spark's writer where a Delta table exists already (:func:`lib.lake.local_writer.delta_table_exists`)."""
    if lake_format != "delta":
        return f"lake format {lake_format}"
    if is_uri(path) and not path.startswith("file://"):
        return "remote storage"
    if needs_column_mapping(list(columns)):
        return "column names that need column mapping"
    return None


def nullable_schema(schema: Any) -> Any:
    """``schema`` (a pyarrow schema) with every field and nested element nullable: what Delta-Spark
    stores for a table created from a DataFrame (``StructType.asNullable``). A NOT NULL field would
    make delta-rs record a column invariant Spark's protocol check refuses."""
    import pyarrow as pa  # the Arrow path only

    def loosen(t: Any) -> Any:
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, loosen(f.type), nullable=True) for f in t])
        if pa.types.is_large_list(t):
            return pa.large_list(pa.field(t.value_field.name, loosen(t.value_type), nullable=True))
        if pa.types.is_list(t):
            return pa.list_(pa.field(t.value_field.name, loosen(t.value_type), nullable=True))
        if pa.types.is_map(t):
            return pa.map_(t.key_type, pa.field(t.item_field.name, loosen(t.item_type), nullable=True))
        return t

    return pa.schema([pa.field(f.name, loosen(f.type), nullable=True) for f in schema], metadata=schema.metadata)


def write_with_delta_rs(data: Any, path: str, load_id: str, properties: Mapping[str, str]) -> int:
    """Commit ``data`` (a pyarrow Table: ``DataFrame.toArrow()`` of the chunk, or the same table read
    without Spark, lib/bulk/direct_read.py) as a new Delta table at ``path`` in one delta-rs commit that
    records ``load_id`` (version 0, the table's only chunk); returns the rows written."""
    from deltalake import CommitProperties, Transaction, write_deltalake  # only this path needs it

    data = data.cast(nullable_schema(data.schema))
    write_deltalake(
        local_path(path),
        data,
        mode="error",  # only paths without a Delta table come here (unsupported_reason)
        configuration=dict(properties) or None,
        commit_properties=CommitProperties(app_transactions=[Transaction(app_id=load_id, version=0)]),
    )
    return data.num_rows
