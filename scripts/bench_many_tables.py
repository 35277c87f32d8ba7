#!/usr/bin/env python3
"""Benchmark: many small tables, the bulk load against dlt's ``sql_database`` (not a test).

Usage:  .venv/bin/python scripts/bench_many_tables.py [--tables 100] [--rows 100] [--scale-tables 1000]
        (or `make bench`)

1. Makes sure database ``many`` holds schema ``t<N>x<M>`` with ``--tables`` tables of ``--rows`` rows
   (scripts/many_tables.py: 8 columns of mixed types, a third of the tables without a primary key),
   generated server-side and ``ANALYZE``d; generation is not measured.
2. Measures, each as wall time of a whole process (interpreter and JVM start included):
   bulk    ``jobs/bulk_load.py --fresh-start --yes`` on a temporary config (no ``cdc:``) and lake; exit 0,
           its summary line must report every row and no failure. The peak resident memory of its
           process tree (Python driver + JVM) is sampled every 0.5 s, with the samples at 25/50/75/100%
           of the run: flat means the driver does not grow with the number of tables done.
   dlt     dlt's ``sql_database`` source (``backend="pyarrow"``) to the ``filesystem`` destination as
           Parquet files, in a fresh Python process: the reference a new user compares with.
3. With ``--scale-tables N`` (default 1000; 0 skips it), the bulk load again on N tables of ``--rows``
   rows: it must complete; its time and memory samples are reported.
4. Prints the results and writes them as JSON to ``reports/bench_many_tables.json``, with the load
   average before each measurement (``os.getloadavg``, as ``uptime`` shows it) and the other processes'
   CPU share (a shared machine inflates the timings: see docs/benchmarks.md).

``--repo PATH`` runs the loader of another checkout (before/after comparisons); ``--methods`` selects.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg2
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bulk import _git, add_pg_arguments, host_memory_and_cpu, measured  # noqa: E402  (scripts/ is not a package)
from many_tables import create_tables, ensure_database  # noqa: E402

DATABASE = "many"
SOURCE = "many"
_SUMMARY = re.compile(r"source \S+: (\d+) table\(s\) loaded, (\d+) failed, (\d+) rows in ([0-9.]+)s")

DLT_SCRIPT = """
import os, sys, time
started = time.monotonic()
import dlt
from dlt.sources.sql_database import sql_database
url, schema, out, pipelines = sys.argv[1:5]
source = sql_database(credentials=url, schema=schema, backend="pyarrow")
pipeline = dlt.pipeline(pipeline_name="bench_many", destination=dlt.destinations.filesystem(bucket_url=out),
                        dataset_name=schema, pipelines_dir=pipelines)
info = pipeline.run(source, loader_file_format="parquet")
rows = sum(pipeline.last_trace.last_normalize_info.row_counts.get(t, 0) for t in source.resources)
print(f"dlt: {len(source.resources)} tables, {rows} rows in {time.monotonic() - started:.1f}s", flush=True)
"""


def schema_name(tables: int, rows: int) -> str:
    return f"t{tables}x{rows}"


def ensure_schema(args: argparse.Namespace, tables: int, rows: int) -> str:
    """The schema with ``tables`` x ``rows``, created (and ANALYZEd) unless it holds exactly that."""
    schema = schema_name(tables, rows)
    ensure_database(args.pg_host, args.pg_port, DATABASE, args.pg_user, args.pg_superuser, args.pg_superuser_password)
    db = psycopg2.connect(host=args.pg_host, port=args.pg_port, dbname=DATABASE, user=args.pg_user, password=args.pg_password)
    db.autocommit = True
    with db.cursor() as cur:
        cur.execute(
            "SELECT count(*), coalesce(sum(c.reltuples), 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema,),
        )
        count, estimated = cur.fetchone()
    if count == tables and int(estimated) == tables * rows:
        print(f"data: {DATABASE}.{schema} already holds {tables} tables x {rows} rows, reused")
    else:
        started = time.monotonic()
        with db.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        create_tables(db, schema, tables, rows, analyze=True)
        print(f"data: generated {DATABASE}.{schema}: {tables} tables x {rows} rows in {time.monotonic() - started:.1f}s (not measured)")
    db.close()
    return schema


class RssWatch:
    """Resident memory of a process tree (the job's Python process and its JVM), sampled every 0.5 s."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, int]] = []  # (seconds since start, KiB)
        self._cpu: dict[int, int] = {}  # pid -> its CPU jiffies when last seen
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, ()))
        return found

    def _rss(self) -> int:
        total = 0
        for pid in self._tree():
            try:
                with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
                    total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                self._cpu[pid] = int(fields[11]) + int(fields[12])  # utime + stime, jiffies
            except (OSError, IndexError, ValueError):
                continue
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.samples.append((time.monotonic() - self._t0, self._rss()))

    def result(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        kib = [k for _, k in self.samples if k > 0]
        if not kib:
            return {"peak_rss_mib": None, "rss_mib_at_quarters": []}
        quarters = [kib[min(len(kib) - 1, max(0, round(q * len(kib)) - 1))] for q in (0.25, 0.5, 0.75, 1.0)]
        cpu = round(sum(self._cpu.values()) / os.sysconf("SC_CLK_TCK"), 1)  # up to the last sample
        return {"peak_rss_mib": round(max(kib) / 1024), "rss_mib_at_quarters": [round(k / 1024) for k in quarters], "cpu_seconds": cpu}


def write_config(args: argparse.Namespace, work: Path, schema: str, tag: str) -> Path:
    lake = work / f"lake_{tag}"
    config = {
        "lake": {"root": str(lake), "format": "delta"},
        "checkpoints": {"root": str(work / "checkpoints")},
        "sources": {
            SOURCE: {
                "type": "postgres",
                "connection": {"host": args.pg_host, "port": args.pg_port, "database": DATABASE, "user": args.pg_user, "password": "${BENCH_DB_PASSWORD}"},
                "schemas": [schema],
            }
        },
    }
    path = work / f"config_{tag}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def measure_bulk(args: argparse.Namespace, work: Path, schema: str, tables: int, rows: int, tag: str) -> dict[str, Any]:
    config = write_config(args, work, schema, tag)
    repo = Path(args.repo).resolve()
    cmd = [sys.executable, str(repo / "jobs" / "bulk_load.py"), "--config", str(config), "--source", SOURCE, "--fresh-start", "--yes"]
    log_path = work / f"bulk_load_{tag}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", BENCH_DB_PASSWORD=args.pg_password)
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        watch = RssWatch(proc.pid)
        code = proc.wait()
    seconds = time.monotonic() - started
    memory = watch.result()
    text = log_path.read_text(encoding="utf-8", errors="replace")
    summary = _SUMMARY.search(text)
    if code != 0 or summary is None or int(summary[1]) != tables or int(summary[2]) != 0 or int(summary[3]) != tables * rows:
        print(text[-4000:], file=sys.stderr)
        raise SystemExit(f"bulk_load.py (exit {code}): expected {tables} tables and {tables * rows} rows, no failure (log: {log_path})")
    shutil.rmtree(work / f"lake_{tag}", ignore_errors=True)
    return {"seconds": seconds, "load_seconds": float(summary[4]), "tables": tables, "rows": tables * rows, "log": str(log_path), **memory}


def measure_dlt(args: argparse.Namespace, work: Path, schema: str, tables: int, rows: int) -> dict[str, Any]:
    out = work / "dlt_out"
    url = f"postgresql+psycopg2://{args.pg_user}:{args.pg_password}@{args.pg_host}:{args.pg_port}/{DATABASE}"
    env = dict(os.environ, RUNTIME__DLTHUB_TELEMETRY="false", DLT_DATA_DIR=str(work / "dlt_data"))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", DLT_SCRIPT, url, schema, out.as_uri(), str(work / "dlt_pipelines")],
        env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
    )
    seconds = time.monotonic() - started
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("dlt: ")), "")
    m = re.match(r"dlt: (\d+) tables, (\d+) rows", line)
    if done.returncode != 0 or m is None or (int(m[1]), int(m[2])) != (tables, tables * rows):
        print(done.stdout[-2000:], done.stderr[-4000:].replace(args.pg_password, "***"), file=sys.stderr)
        raise SystemExit(f"dlt (exit {done.returncode}): expected {tables} tables and {tables * rows} rows, got {line!r}")
    files = len(list(out.rglob("*.parquet")))
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": seconds, "tables": tables, "rows": tables * rows, "parquet_files": files}


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    mem_kib, cpu_model = host_memory_and_cpu()
    return {
        "repo_commit": _git(args.repo, "rev-parse", "--short", "HEAD"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu_model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
    }


def with_load(args: argparse.Namespace, label: str, fn: Any) -> dict[str, Any]:
    load = os.getloadavg()
    result = measured(args, label, fn)
    result["loadavg_before"] = [round(x, 2) for x in load]
    return result


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark the bulk load on many small tables against dlt's sql_database.")
    p.add_argument("--tables", type=int, default=100)
    p.add_argument("--rows", type=int, default=100, help="rows per table")
    p.add_argument("--scale-tables", type=int, default=1000, help="tables of the scale run (0: none)")
    p.add_argument("--methods", default="bulk,dlt,scale", help="comma-separated: bulk, dlt, scale")
    p.add_argument("--repo", default=str(REPO_ROOT), help="checkout whose jobs/bulk_load.py is measured")
    p.add_argument("--wait-idle", type=float, default=60.0, help="seconds to wait at most for idle CPUs before each measurement")
    p.add_argument("--report", default=str(REPO_ROOT / "reports" / "bench_many_tables.json"))
    add_pg_arguments(p)
    args = p.parse_args()
    args.methods = {m.strip() for m in args.methods.split(",") if m.strip()}
    return args


def main() -> int:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_many_", dir="/tmp"))
    results: dict[str, Any] = {}
    try:
        schema = ensure_schema(args, args.tables, args.rows)
        if "bulk" in args.methods:
            r = with_load(args, "bulk", lambda: measure_bulk(args, work, schema, args.tables, args.rows, "small"))
            results["bulk"] = r
            print(f"bulk   {args.tables} x {args.rows}: {r['seconds']:.1f}s whole process (loader {r['load_seconds']:.1f}s), "
                  f"CPU {r['cpu_seconds']}s, peak RSS {r['peak_rss_mib']} MiB, load avg {r['loadavg_before'][0]}", flush=True)
        if "dlt" in args.methods:
            r = with_load(args, "dlt", lambda: measure_dlt(args, work, schema, args.tables, args.rows))
            results["dlt"] = r
            print(f"dlt    {args.tables} x {args.rows}: {r['seconds']:.1f}s whole process ({r['parquet_files']} Parquet files), "
                  f"load avg {r['loadavg_before'][0]}", flush=True)
        if "scale" in args.methods and args.scale_tables > 0:
            big = ensure_schema(args, args.scale_tables, args.rows)
            r = with_load(args, "scale", lambda: measure_bulk(args, work, big, args.scale_tables, args.rows, "scale"))
            results["scale"] = r
            print(f"bulk   {args.scale_tables} x {args.rows}: {r['seconds']:.1f}s whole process (loader {r['load_seconds']:.1f}s), "
                  f"RSS MiB at 25/50/75/100%: {r['rss_mib_at_quarters']}, peak {r['peak_rss_mib']}, load avg {r['loadavg_before'][0]}", flush=True)
    finally:
        shutil.rmtree(work / "dlt_data", ignore_errors=True)
    report = {"tables": args.tables, "rows_per_table": args.rows, "scale_tables": args.scale_tables, "results": results, "machine": machine_info(args)}
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=2, sort_keys=True))
    print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
