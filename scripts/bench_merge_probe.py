"""Probe: the CDC stream's own MERGE on the stream's own lake tables, as they are and compacted (not a test).

The stream's applies of a few events take seconds of MERGE (docs/benchmarks.md). This script times
the MERGE the stream runs (``lib.cdc.plan.merge_sql``, the same statement) on copies of tables a
stream has been applying to, e.g. a lake kept by ``scripts/bench_cdc.py --keep``, without anything
else running. Each variant runs on its own copy of each table, so all start from the same state:

    as-is       the table as the stream left it (its small files and deletion vectors)
    compacted   the same after ``OPTIMIZE`` and ``REORG TABLE ... APPLY (PURGE)`` (one file per bin, no DVs)
    key-pruned  as-is, with the batch's keys also given as literals (``t.key IN (...)``) in the ON clause,
                so Delta's data skipping can drop files whose key range holds none of them
    delta-rs    the same rows copied to a table without deletion vectors (delta-rs 1.6 can neither read
                nor write a table with them), and the same MERGE (same source rows, conditions and
                clauses) run by delta-rs (``DeltaTable.merge``) instead of Delta-Spark: the floor of a
                MERGE made without Spark

A MERGE's source: ``--keys`` existing rows of the table (random keys), as the stream's last-event view
(``__op = 'u'``, positions after the table's newest), so every row takes the UPDATE branch.

    .venv/bin/python scripts/bench_merge_probe.py --lake DIR --source bench [--tables public.t01,public.t02] [--keys 25] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "jobs")]

from _session import get_spark  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from lib.cdc import plan as P  # noqa: E402
from lib.cdc.loop.specs import load_spec  # noqa: E402
from lib.dialects import get_dialect  # noqa: E402
from lib.lake.paths import normalize_root  # noqa: E402
from lib.status.factory import open_status_store  # noqa: E402

VARIANTS = ("as-is", "compacted", "key-pruned", "delta-rs")


def shape(spark, path: str) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Files, bytes and commits of the Delta table at ``path``."""
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()
    version = spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").first()["version"]
    return {"files": int(detail["numFiles"]), "bytes": int(detail["sizeInBytes"]), "version": int(version)}


def source_view(spark, spec, keys: int, round_no: int) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """A last-event view of ``keys`` existing rows (updates, positions after the table's newest) and
    their key values as SQL literals (first key column)."""
    table = spark.read.format("delta").load(spec.location)
    top = table.selectExpr(f"max({P.COMMIT}) AS c").first()["c"] or 0
    sample = table.orderBy(F.rand(round_no)).limit(keys)
    cols = [P.q(n) for n, _ in spec.columns]
    view = f"probe_{spec.table}_{round_no}"
    sample.selectExpr(*cols, f"CAST({int(top) + 1 + round_no} AS DECIMAL(38,0)) AS {P.COMMIT}", f"CAST(0 AS DECIMAL(38,0)) AS {P.CHANGE}", "'u' AS `__op`") \
        .createOrReplaceTempView(view)
    key = spec.key_columns[0]
    literals = [repr(r[0]) if isinstance(r[0], (int, float)) else "'" + str(r[0]).replace("'", "''") + "'" for r in spark.table(view).select(P.q(key)).collect()]
    return view, literals


def delta_rs_merge(spark, spec, view: str) -> float:  # type: ignore[no-untyped-def]
    """``merge_sql``'s MERGE (no TOAST columns) made by delta-rs, the source collected as Arrow first."""
    from deltalake import DeltaTable

    source = spark.table(view).toArrow()

    def c(alias: str, name: str) -> str:
        return f'{alias}."{name}"'

    newer = f"({c('s', P.COMMIT)} > {c('t', P.COMMIT)} OR ({c('s', P.COMMIT)} = {c('t', P.COMMIT)} AND {c('s', P.CHANGE)} > {c('t', P.CHANGE)}))"
    guard = f"({c('t', '__op')} = 'r' OR {newer})"
    names = [n for n, _ in spec.columns] + [P.COMMIT, P.CHANGE, "__op"]
    values = {n: c("s", n) for n in names}
    started = time.monotonic()
    (DeltaTable(spec.location).merge(source, " AND ".join(f"{c('t', k)} = {c('s', k)}" for k in spec.key_columns), source_alias="s", target_alias="t")
     .when_matched_delete(f"{c('s', '__op')} = 'd' AND {guard}")
     .when_matched_update({**values, "__ingested_at": "now()"}, f"{c('s', '__op')} <> 'd' AND {guard}")
     .when_not_matched_insert({**values, "__ingested_at": "now()"}, f"{c('s', '__op')} <> 'd'")
     .execute())
    return time.monotonic() - started


def timed_merge(spark, spec, variant: str, keys: int, round_no: int) -> float:  # type: ignore[no-untyped-def]
    view, literals = source_view(spark, spec, keys, round_no)
    if variant == "delta-rs":
        return delta_rs_merge(spark, spec, view)
    sql = P.merge_sql(spec, view, ())
    if variant == "key-pruned" and literals:
        on = " AND ".join(f"t.{P.q(k)} = s.{P.q(k)}" for k in spec.key_columns)
        sql = sql.replace(f" ON {on} ", f" ON {on} AND t.{P.q(spec.key_columns[0])} IN ({', '.join(literals)}) ", 1)
    started = time.monotonic()
    spark.sql(sql).collect()
    return time.monotonic() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lake", required=True, help="lake root the stream applied to")
    p.add_argument("--source", required=True)
    p.add_argument("--tables", help="comma-separated schema.table (default: every table the stream applies to, at most --max-tables)")
    p.add_argument("--max-tables", type=int, default=3)
    p.add_argument("--keys", type=int, default=25, help="rows per MERGE (default 25, the light phase's applies)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    spark = get_spark("bench_merge_probe")
    root = normalize_root(args.lake)
    events = [e for e in open_status_store(spark, root).latest(args.source).values() if e.phase == "cdc"]
    if args.tables:
        wanted = set(args.tables.split(","))
        events = [e for e in events if f"{e.schema}.{e.table}" in wanted]
    events = sorted(events, key=lambda e: e.table)[: args.max_tables if not args.tables else None]
    if not events:
        raise SystemExit(f"no table of source {args.source} in phase cdc under {root}")
    dialect = get_dialect("postgres")
    with tempfile.TemporaryDirectory(prefix="merge_probe_") as work:
        for event in events:
            spec0 = load_spec(spark, event, dialect)
            print(f"{spec0.name}: {shape(spark, spec0.location)}", flush=True)
            for variant in VARIANTS:
                copy = f"{work}/{variant}_{event.table}"
                if variant == "delta-rs":  # the same rows, in a table without deletion vectors
                    spark.read.format("delta").load(spec0.location).write.format("delta") \
                        .option("delta.enableDeletionVectors", "false").save(copy)
                else:
                    shutil.copytree(spec0.location, copy)
                spec = dataclasses.replace(spec0, location=copy)
                if variant == "compacted":
                    started = time.monotonic()
                    spark.sql(f"OPTIMIZE delta.`{copy}`").collect()
                    spark.sql(f"REORG TABLE delta.`{copy}` APPLY (PURGE)").collect()
                    print(f"  compacted in {time.monotonic() - started:.1f}s: {shape(spark, copy)}", flush=True)
                timed_merge(spark, spec, variant, args.keys, 0)  # warm-up round, not counted
                seconds = [timed_merge(spark, spec, variant, args.keys, r) for r in range(1, args.rounds + 1)]
                print(f"  {variant:<11} MERGE of {args.keys} rows: median {statistics.median(seconds):.2f}s "
                      f"({', '.join(f'{s:.2f}' for s in seconds)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
