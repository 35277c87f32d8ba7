#!/usr/bin/env python3
"""The floor under the many-small-tables target: what bare Spark and Delta cost per small table, nothing else.

Not a test. Runs in one fresh process, as ``jobs/bulk_load.py`` does, on the tables that
``scripts/bench_many_tables.py`` generates (database ``many``, schema ``t<N>x<M>``):

1. ``start``: interpreter start to a ready SparkSession (the project's ``jobs/_session.get_spark``:
   the JVM, Spark and Delta).
2. then, each on every table and each timed with the CPU seconds of the whole process tree (Python +
   JVM, from /proc), in a session with code generation off (as the bulk load's small tables):
   ``delta``        ``spark.read.jdbc(table).write.format("delta").save(path)``: one Spark job and one
                    Delta commit per table, the least the bulk load can do per table (no snapshot, no
                    status, no casts, no checks);
   ``parquet``      the same written as plain Parquet: the Spark job without Delta's commit;
   ``read``         the JDBC read alone (``collect``): the Spark job without a write;
   ``commit``       an empty Delta table created per table (``DeltaTable.create``): a Delta commit
                    without a Spark job, the per-table floor of a design that writes many tables' files
                    in one job (docs/benchmarks.md).
   Each runs with ``--threads`` table threads (as the bulk load's small-table pool). The first variant
   pays the JIT warm-up; ``--repeat`` runs the list again, warm.

    .venv/bin/python scripts/bench_small_table_floor.py [--tables 100] [--rows 100] [--threads 8] \
        [--variants delta,parquet,read,commit,deltars] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROCESS_STARTED = time.monotonic()
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "jobs"), str(ROOT / "scripts")]

from bench_bulk import add_pg_arguments  # noqa: E402
from bench_many_tables import DATABASE, ensure_schema  # noqa: E402
from proc_tree import descendants, parse_stat_ppid  # noqa: E402


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and every descendant, seconds (from /proc)."""
    stats: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                    stats[int(entry.name)] = f.read()
            except OSError:  # the process ended meanwhile
                continue
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in descendants({pid: parse_stat_ppid(stat) for pid, stat in stats.items()}, root):
        if pid in stats:
            fields = stats[pid].rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", type=int, default=100)
    p.add_argument("--rows", type=int, default=100, help="rows per table")
    p.add_argument("--threads", type=int, default=8, help="tables copied at once (the bulk load's small-table pool: 8)")
    p.add_argument("--variants", default="delta,parquet,read,commit,deltars")
    p.add_argument("--repeat", type=int, default=1, help="runs of the variant list (the first pays the JIT warm-up)")
    add_pg_arguments(p)
    args = p.parse_args()
    schema = ensure_schema(args, args.tables, args.rows)
    names = [f"t{i:04d}" for i in range(args.tables)]

    from _session import get_spark  # after the data step, so the JVM start is measured alone
    from delta.tables import DeltaTable

    spark = get_spark("bench_small_table_floor", {
        "spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"})
    me = os.getpid()
    print(f"start: SparkSession ready {time.monotonic() - PROCESS_STARTED:.1f}s after the interpreter started, "
          f"CPU {tree_cpu_seconds(me):.1f}s", flush=True)
    url = f"jdbc:postgresql://{args.pg_host}:{args.pg_port}/{DATABASE}"
    props = {"user": args.pg_user, "password": args.pg_password, "driver": "org.postgresql.Driver"}

    def read(name: str):
        return spark.read.jdbc(url, f'"{schema}"."{name}"', properties=props)

    with tempfile.TemporaryDirectory(prefix="small_floor_") as work:
        def one(variant: str, run: int, name: str) -> None:
            path = f"{work}/{variant}{run}/{name}"
            if variant == "delta":
                read(name).write.format("delta").save(path)
            elif variant == "parquet":
                read(name).write.parquet(path)
            elif variant == "read":
                read(name).collect()
            elif variant == "deltars":
                from deltalake import write_deltalake  # dev dependency, this variant only

                write_deltalake(path, read(name).toArrow())
            elif variant == "commit":
                DeltaTable.create(spark).location(path).addColumns(read(name).schema).execute()
            else:
                raise SystemExit(f"unknown variant {variant!r}")

        for run in range(args.repeat):
            for variant in args.variants.split(","):
                cpu0, t0 = tree_cpu_seconds(me), time.monotonic()
                with ThreadPoolExecutor(args.threads) as pool:
                    list(pool.map(lambda n, v=variant, r=run: one(v, r, n), names))
                wall, cpu = time.monotonic() - t0, tree_cpu_seconds(me) - cpu0
                print(f"run {run + 1} {variant:8s} {args.tables} tables x {args.rows} rows, {args.threads} threads: "
                      f"{wall:6.1f}s wall ({1000 * wall / args.tables:5.0f} ms/table), "
                      f"CPU {cpu:6.1f}s ({1000 * cpu / args.tables:5.0f} ms/table)", flush=True)
    print(f"whole process {time.monotonic() - PROCESS_STARTED:.1f}s, CPU {tree_cpu_seconds(me):.1f}s", flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
