"""The floor under the CDC stream's latency: bare Delta MERGEs, one per table, nothing else.

Every micro-batch of ``jobs/cdc_stream.py`` ends in one MERGE per table that has events. This script
measures what those MERGEs alone cost on this machine, without Kafka, decoding, ordering, tombstones or
status: ``--tables`` Delta tables of ``--rows`` rows each (deletion vectors on, as the stream sets them),
then rounds of one ``--batch``-row upsert per table (half updates, half inserts, guarded by a position
column like the stream's MERGE), run with each of ``--threads``. A round's wall time is the least a
micro-batch touching every table can take here; the stream's own batches do more (docs/benchmarks.md).

    .venv/bin/python scripts/bench_merge_floor.py [--tables 20] [--rows 250000] [--batch 100] [--threads 1,4,8] [--no-deletion-vectors]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "jobs")]

from _session import get_spark  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", type=int, default=20)
    p.add_argument("--rows", type=int, default=250_000, help="rows per table")
    p.add_argument("--batch", type=int, default=100, help="rows per MERGE (half updates, half inserts)")
    p.add_argument("--no-deletion-vectors", action="store_true", help="tables without deletion vectors (stream.deletion_vectors: false)")
    p.add_argument("--threads", default="1,4,8", help="comma-separated thread counts, one round each (after a warm-up round)")
    args = p.parse_args()
    spark = get_spark("bench_merge_floor", {"spark.databricks.delta.merge.materializeSource": "none"})
    with tempfile.TemporaryDirectory(prefix="bench_merge_floor_") as work:
        paths = [f"{work}/t{i:02d}" for i in range(args.tables)]
        for path in paths:
            spark.range(args.rows).selectExpr(
                "id", "CAST(id * 7 AS INT) AS a", "CAST(id / 100 AS DECIMAL(12,2)) AS amount", "concat('row ', id) AS note",
                "current_timestamp() AS ts", "CAST(0 AS DECIMAL(38,0)) AS pos",
            ).write.format("delta").option("delta.enableDeletionVectors", str(not args.no_deletion_vectors).lower()).save(path)
        dv = "off" if args.no_deletion_vectors else "on"
        print(f"{args.tables} tables x {args.rows:,} rows, deletion vectors {dv}; MERGE of {args.batch} rows per table per round")
        round_no = 0

        def merge(path: str) -> float:
            step = max(1, args.rows // args.batch)
            source = spark.range(args.batch).selectExpr(  # even ids update spread-out rows, odd ids insert new keys
                f"CASE WHEN id % 2 = 0 THEN id * {step} ELSE {args.rows} + {round_no} * {args.batch} + id END AS id",
                "CAST(id AS INT) AS a", "CAST(id AS DECIMAL(12,2)) AS amount", "'changed' AS note", "current_timestamp() AS ts",
                f"CAST({round_no} AS DECIMAL(38,0)) AS pos")
            view = f"src_{Path(path).name}_{round_no}"
            source.createOrReplaceTempView(view)
            started = time.monotonic()
            spark.sql(f"MERGE INTO delta.`{path}` AS t USING {view} AS s ON t.id = s.id "
                      "WHEN MATCHED AND s.pos > t.pos THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *").collect()
            return time.monotonic() - started

        for threads in [1] + [int(t) for t in args.threads.split(",")]:
            round_no += 1
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=threads) as pool:
                each = list(pool.map(merge, paths))
            label = "warm-up" if round_no == 1 else f"threads={threads}"
            print(f"{label:>10}: {args.tables} MERGEs in {time.monotonic() - started:5.1f}s (each: median {statistics.median(each):.2f}s)")
    spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
