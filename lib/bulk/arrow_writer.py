"""Small tables written by delta-rs from Arrow instead of by Spark's Delta writer.

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

An accelerator, never a new way to fail (lib/fallback.py): when delta-rs raises before its commit,
:func:`write_with_delta_rs` removes what the write left at the table's path (data files, a log
directory without a commit) and re-raises, and the caller has Spark read and write the table
(lib/bulk/table_load.py), removing what a failed Spark write leaves the same way
(:func:`without_leftovers`). When delta-rs raises after its commit landed (the version-0 commit carries
this load's id), the table is complete and nothing is written again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from lib.bulk.writer import needs_column_mapping
from lib.fallback import failure_text
from lib.lake.local_writer import local_path
from lib.lake.paths import is_uri

log = logging.getLogger("bulk")
T = TypeVar("T")
_COMMIT_FILE = re.compile(r"^\d{20}\.json$")


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
    target = local_path(path)

    def write() -> None:
        write_deltalake(
            target,
            data,
            mode="error",  # only paths without a Delta table come here (unsupported_reason)
            configuration=dict(properties) or None,
            commit_properties=CommitProperties(app_transactions=[Transaction(app_id=load_id, version=0)]),
        )

    try:
        without_leftovers(path, write)
    except Exception as exc:
        if committed_by(target, load_id):  # the commit landed, then delta-rs failed (e.g. a post-commit step)
            log.warning("%s: delta-rs failed after its commit landed (%s); the table is complete", path, failure_text(exc))
            return data.num_rows
        raise
    return data.num_rows


def without_leftovers(path: str, write: Callable[[], T]) -> T:
    """``write()`` of a new table at the local ``path``. When it raises and the table has no commit, what
    it left there is removed (:func:`discard_new_entries`) before the error goes on: a failed first write
    leaves the path as it found it, by delta-rs or, after a hand-over, by Spark."""
    target = local_path(path)
    before = _entries(target)
    try:
        return write()
    except Exception:
        if not commit_files(target):  # never remove anything from a table that has a commit
            discard_new_entries(target, before)
        raise


def _entries(path: str) -> set[str] | None:
    """The names directly under ``path``; None when ``path`` does not exist."""
    try:
        return set(os.listdir(path))
    except FileNotFoundError:
        return None


def commit_files(path: str) -> list[str]:
    """The Delta commit files (``NNNNNNNNNNNNNNNNNNNN.json``) of the local table at ``path``, sorted."""
    try:
        return sorted(n for n in os.listdir(os.path.join(path, "_delta_log")) if _COMMIT_FILE.match(n))
    except FileNotFoundError:
        return []


def committed_by(path: str, load_id: str) -> bool:
    """Whether the first commit of the local table at ``path`` records ``load_id`` (version 0): the
    commit :func:`write_with_delta_rs` makes."""
    try:
        with open(os.path.join(path, "_delta_log", f"{0:020d}.json"), encoding="utf-8") as f:
            actions = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return False
    return any(a.get("txn", {}).get("appId") == load_id and a["txn"].get("version") == 0 for a in actions)


def discard_new_entries(path: str, before: set[str] | None) -> None:
    """Remove what a failed write added at ``path``: the whole directory when it did not exist before,
    else the names it did not hold (only the load of this table writes there). A removal that fails is
    said and left: Delta never reads files its log does not name."""
    try:
        if before is None:
            if os.path.exists(path):
                shutil.rmtree(path)
            return
        for name in sorted(set(os.listdir(path)) - before):
            full = os.path.join(path, name)
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.remove(full)
    except OSError as exc:
        log.warning("%s: could not remove what the failed delta-rs write left there (%s)", path, failure_text(exc))
