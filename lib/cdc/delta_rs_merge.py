"""The stream's MERGE made by delta-rs instead of Delta-Spark, on a lake on local disk or on Azure
storage (ADLS Gen2, Blob; deltalake's object store with the job's ``storage:`` accounts:
lib/lake/delta_rs_storage.py; its commits are conditional puts, atomic without a locking provider).

Measured by ``scripts/bench_merge_probe.py`` (docs/benchmarks.md): the stream's own MERGE of 30 rows
costs Delta-Spark ~2 CPU-s whatever the table looks like (compacted, key-pruned or not), and three or
four of them at once on two cores were most of an apply's 5-8 s. The same MERGE by delta-rs takes
0.08-0.18 s. So an apply collects its last-event rows (already computed and cached for the MERGE,
at most ``stream.max_offsets_per_trigger`` of them) as Arrow and hands them to delta-rs' MERGE with the
same clauses (:func:`lib.cdc.plan.merge_clauses`: the same key match, position guard, TOAST handling
and ``__`` columns), one commit per apply as before.

Where delta-rs cannot write the table (deletion vectors, which ``stream.deletion_vectors: true`` turns
on, or another table feature deltalake lacks; a lake delta-rs cannot reach: Databricks, an account
without ``storage:`` settings or with an auth mode deltalake lacks), the table is merged
by Spark (:func:`features_reason`, after :func:`lib.lake.local_writer.delta_rs_reason`). The MERGE is the same statement either way; replays change nothing
either way (its position guard).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame

from lib.cdc.plan import CHANGE, COMMIT, TOMB_KEY, MergeClauses, TableSpec, key_json, merge_clauses
from lib.lake.delta_rs_storage import DeltaRsUnreachable
from lib.lake.local_writer import features_reason, open_table, protocol_features

log = logging.getLogger(__name__)

def table_reason(location: str) -> str | None:
    """:func:`features_reason` for the table at ``location`` (reads its protocol). Whether delta-rs reaches
    the lake at all is :func:`lib.lake.local_writer.delta_rs_reason`'s to say, checked first."""
    return features_reason(protocol_features(location))


def merge_with_delta_rs(spec: TableSpec, last: DataFrame, toastable: Sequence[str], deletes: bool) -> tuple[dict[str, int], tuple[tuple[Any, ...], ...]]:
    """MERGE the rows of ``last`` (the batch's last event per key, with the TOAST flags) into the table.
    Returns Delta-Spark's metric names (num_inserted_rows, num_updated_rows, num_deleted_rows) and, when
    ``deletes``, the tombstone rows of the deleted keys (schema, table, key, commit, change): their key
    JSON computed by Spark in the same job that collects the rows (``key_json``, the text the tombstone
    check joins on), so no second job reads them."""
    started = time.monotonic()
    data = (last.selectExpr("*", f"{key_json(spec)} AS {TOMB_KEY}") if deletes else last).toArrow()
    collected = time.monotonic()
    metrics = merge_arrow(spec.location, data, merge_clauses(spec, toastable, now="now()"))
    log.debug("%s: %d rows collected as Arrow in %.2fs, MERGEd by delta-rs in %.2fs", spec.name, data.num_rows,
              collected - started, time.monotonic() - collected)
    return metrics, tombstone_rows(spec, data) if deletes else ()


def tombstone_rows(spec: TableSpec, data: Any) -> tuple[tuple[Any, ...], ...]:
    """(schema, table, key, commit, change) of the deletes among the collected rows (pure)."""
    ops, keys = data.column("__op").to_pylist(), data.column(TOMB_KEY).to_pylist()
    commits, changes = data.column(COMMIT).to_pylist(), data.column(CHANGE).to_pylist()
    return tuple((spec.schema, spec.table, k, c, h) for op, k, c, h in zip(ops, keys, commits, changes, strict=True) if op == "d")


def merge_arrow(location: str, data: Any, clauses: MergeClauses) -> dict[str, int]:
    """Run ``clauses`` with delta-rs over the Arrow table ``data`` as the source ``s`` (thin layer)."""
    metrics = (
        open_for_write(location)
        .merge(source=data, predicate=clauses.on, source_alias="s", target_alias="t")
        .when_matched_delete(predicate=clauses.delete_when)
        .when_matched_update(updates=dict(clauses.updates), predicate=clauses.update_when)
        .when_not_matched_insert(updates=dict(clauses.inserts), predicate=clauses.insert_when)
        .execute()
    )
    return {
        "num_inserted_rows": int(metrics.get("num_target_rows_inserted") or 0),
        "num_updated_rows": int(metrics.get("num_target_rows_updated") or 0),
        "num_deleted_rows": int(metrics.get("num_target_rows_deleted") or 0),
    }


def open_for_write(location: str) -> Any:
    """The table for a stream's delta-rs write (a MERGE, a direct apply's added columns or truncate). A
    remote table this process cannot reach is NotDirect: the range goes to the Spark path; said once
    per table at INFO (lib.cdc.direct.apply). The direct path's worker processes are given the job's
    ``storage:`` accounts when they start (lib.cdc.direct.apply), so they reach what the job reaches."""
    try:
        return open_table(location)
    except DeltaRsUnreachable as exc:
        from lib.cdc.direct.decode import NotDirect

        raise NotDirect(f"delta-rs cannot reach the lake from this process: {exc}") from None


def merge_history_arrow(location: str, data: Any, clauses: tuple[str, list[tuple[dict[str, str], str]], tuple[dict[str, str], str]]) -> dict[str, int]:
    """An scd2 apply's MERGE (lib.cdc.history.history_merge_clauses) by delta-rs over the Arrow rows ``data``."""
    on, matched, (insert, insert_when) = clauses
    merger = open_for_write(location).merge(source=data, predicate=on, source_alias="s", target_alias="t")
    for updates, when in matched:
        merger = merger.when_matched_update(updates=updates, predicate=when)
    metrics = merger.when_not_matched_insert(updates=insert, predicate=insert_when).execute()
    return {"num_inserted_rows": int(metrics.get("num_target_rows_inserted") or 0),
            "num_updated_rows": int(metrics.get("num_target_rows_updated") or 0)}
