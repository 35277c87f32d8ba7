#!/usr/bin/env python3
"""Benchmark: bulk load vs PostgreSQL COPY vs plain Spark JDBC, on one 8-column table (not a test).

Usage:  .venv/bin/python scripts/bench_bulk.py [--rows 5000000] [--partitions 2]   (or `make bench`)

1. Makes sure database ``bench`` (owner ``loader``) holds ``public.bench_rows`` with exactly ``--rows``
   rows (generated server-side with ``generate_series``, then ``VACUUM ANALYZE``); the generation time
   is printed but is not a measurement.
2. Measures, each as wall time and rows/s:
   copy    ``COPY (SELECT * FROM public.bench_rows) TO STDOUT`` drained by psycopg2 into a byte counter
   bulk    ``jobs/bulk_load.py --fresh-start --yes`` as a subprocess, whole process (JVM start included),
           on a temporary config (no ``cdc:``, ``bulk.partitions`` = ``--partitions``) and lake; its exit
           code must be 0 and the lake table must hold exactly ``--rows`` rows (counted with Spark).
           Also reported: the loader's own timing (``bulk_load_inner``) and its chunks alone
           (``bulk_load_chunks``: read + write + commit), from its log
   spark   plain ``spark.read.jdbc`` (partitionColumn=id, min/max bounds, ``--partitions`` partitions,
           fetchsize 20000) written to a temporary Delta table, in this process with a fresh session
           from ``jobs/_session.get_spark``; reported without and with the session start
3. Prints a table (method, seconds, rows/s, ratio vs COPY) and writes it as JSON to
   ``reports/bench_bulk.json``, with the machine (CPUs, memory), the versions and the repo's commit.

Shared machines: before each measurement the benchmark waits (``--wait-idle``, up to 120 s) for the
CPUs to be idle, and reports the share of the machine other processes used meanwhile ("other CPU";
a warning above 10%: that timing is inflated). One benchmark runs at a time per PostgreSQL server
(an advisory lock): a second one waits.

Tuning knobs for the bulk load, written into its temporary config only: ``--fetch-size``,
``--rows-per-chunk``, ``--jdbc-prop KEY=VALUE`` (``sources.bench.connection.properties``) and
``--lake-conf KEY=VALUE`` (``lake.spark_conf``: session settings the loader applies, e.g.
``spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols=1``). ``--repo PATH`` runs the
loader (and ``jobs/_session.py``) of another checkout, e.g. a patched copy; ``--methods`` and
``--repeat`` (median reported) select what is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
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
DATABASE = "bench"
TABLE = "public.bench_rows"
SOURCE = "bench"
PLAIN_FETCH_SIZE = 20000

CREATE_SQL = """
CREATE TABLE public.bench_rows (
    id bigint,
    a int,
    b int,
    amount numeric(12,2),
    note text,
    created_at timestamptz,
    flag boolean,
    qty int
)"""
# ~20-40 character notes, values that vary with the key, no random() so reruns give identical data.
FILL_SQL = """
INSERT INTO public.bench_rows
SELECT g,
       ((g * 7919) % 1000003)::int,
       (g % 1000)::int,
       (((g * 104729) % 10000000) / 100.0)::numeric(12,2),
       'row ' || g || ' ' || substr(md5(g::text), 1, 8 + (g % 17)::int),
       timestamptz '2020-01-01 00:00:00+00' + g * interval '7 seconds',
       g % 3 = 0,
       (g % 97)::int
FROM generate_series(1, {rows}::bigint) AS g"""


# ---------------------------------------------------------------------------------------------- setup


def pg_connect(args: argparse.Namespace, database: str, user: str, password: str) -> Any:
    return psycopg2.connect(host=args.pg_host, port=args.pg_port, dbname=database, user=user, password=password, connect_timeout=10)


def ensure_data(args: argparse.Namespace) -> dict[str, Any]:
    """Create database and table when missing or when the row count differs; returns what was done."""
    admin = pg_connect(args, "postgres", args.pg_superuser, args.pg_superuser_password)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {DATABASE} OWNER {args.pg_user}")
            print(f"created database {DATABASE} (owner {args.pg_user})")
    admin.close()

    db = pg_connect(args, DATABASE, args.pg_user, args.pg_password)
    db.autocommit = True
    with db.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
        exists = cur.fetchone()[0]
        count = None
        if exists:
            cur.execute(f"SELECT count(*) FROM {TABLE}")
            count = cur.fetchone()[0]
        if count == args.rows:
            cur.execute("SELECT pg_total_relation_size(%s)", (TABLE,))
            size = cur.fetchone()[0]
            db.close()
            print(f"data: {TABLE} already holds {args.rows:,} rows ({size / 2**20:,.0f} MiB), reused")
            return {"generated": False, "seconds": 0.0, "table_bytes": size}
        why = "missing" if not exists else f"holds {count:,} rows"
        print(f"data: {TABLE} {why}; generating {args.rows:,} rows ...", flush=True)
        started = time.monotonic()
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute("BEGIN")
        cur.execute(CREATE_SQL)
        cur.execute(FILL_SQL.format(rows=int(args.rows)))
        cur.execute("ALTER TABLE public.bench_rows ADD PRIMARY KEY (id)")
        cur.execute("COMMIT")
        cur.execute(f"VACUUM ANALYZE {TABLE}")
        seconds = time.monotonic() - started
        cur.execute("SELECT pg_total_relation_size(%s)", (TABLE,))
        size = cur.fetchone()[0]
    db.close()
    print(f"data: generated {args.rows:,} rows ({size / 2**20:,.0f} MiB) in {seconds:.1f}s (not part of the measurements)")
    return {"generated": True, "seconds": round(seconds, 2), "table_bytes": size}


# ------------------------------------------------------------------------------------------- measures


_CLK = os.sysconf("SC_CLK_TCK")


def _system_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - idle, total


def _processes() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, uid, utime+stime jiffies incl. reaped children) of every process."""
    procs: dict[int, tuple[int, int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            uid = os.stat(f"/proc/{entry.name}").st_uid
        except OSError:
            continue
        procs[int(entry.name)] = (int(rest[1]), uid, int(rest[11]) + int(rest[12]))
    return procs


def _ours(procs: dict[int, tuple[int, int, int]]) -> set[int]:
    """This process and its descendants."""
    me = os.getpid()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), [me]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, ()))
    return found


def wait_for_idle(max_seconds: float, threshold: float = 0.25, quiet_seconds: int = 3) -> float:
    """Wait (at most ``max_seconds``) until the machine's CPUs were < ``threshold`` busy for
    ``quiet_seconds`` seconds in a row: other jobs on a shared machine distort the timings. Returns the wait."""
    started = time.monotonic()
    quiet = 0
    while quiet < quiet_seconds and time.monotonic() - started < max_seconds:
        b0, t0 = _system_cpu()
        time.sleep(1.0)
        b1, t1 = _system_cpu()
        quiet = quiet + 1 if t1 > t0 and (b1 - b0) / (t1 - t0) < threshold else 0
    return time.monotonic() - started


class CpuWatch:
    """CPU used during a measurement: the machine as a whole, and by processes that are neither this
    benchmark's (descendants) nor PostgreSQL's (its backends serve the benchmark): other jobs."""

    def __init__(self) -> None:
        self.postgres_uid = _uid_of("postgres")
        self.sys0 = _system_cpu()
        self.procs0 = _processes()
        self.t0 = time.monotonic()
        # Our descendants are collected while the measurement runs: a JVM outlives the Python process
        # that started it by a moment and is then no longer a descendant of ours.
        self.ours = _ours(self.procs0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._track, daemon=True)
        self._thread.start()

    def _track(self) -> None:
        while not self._stop.wait(0.5):
            self.ours |= _ours(_processes())

    def result(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        seconds = time.monotonic() - self.t0
        sys1 = _system_cpu()
        procs1 = _processes()
        ours = self.ours | _ours(procs1)
        other = 0
        for pid, (_, uid, cpu) in procs1.items():
            if pid in ours or uid == self.postgres_uid:
                continue
            before = self.procs0.get(pid)
            other += cpu - (before[2] if before else 0)  # a process started meanwhile: all of its CPU
        busy = (sys1[0] - self.sys0[0]) / max(sys1[1] - self.sys0[1], 1)
        ncpu = len(os.sched_getaffinity(0))
        return {
            "machine_busy": round(busy, 3),
            "other_cpu_seconds": round(other / _CLK, 1),
            "other_cpu_share": round(other / _CLK / max(seconds * ncpu, 1e-9), 3),
        }


def _uid_of(user: str) -> int | None:
    try:
        import pwd

        return pwd.getpwnam(user).pw_uid
    except (KeyError, ImportError):
        return None


def measured(args: argparse.Namespace, label: str, fn: Any) -> dict[str, Any]:
    """Run ``fn`` after waiting for a quiet machine; add how busy the machine was meanwhile."""
    waited = wait_for_idle(args.wait_idle) if args.wait_idle > 0 else 0.0
    watch = CpuWatch()
    result = fn()
    result.update(watch.result(), waited_for_idle_seconds=round(waited, 1))
    if result["other_cpu_share"] > 0.10:
        print(
            f"  WARNING: other processes used {result['other_cpu_seconds']:.0f} CPU-seconds "
            f"({100 * result['other_cpu_share']:.0f}% of the machine) during {label}: its timing is inflated",
            flush=True,
        )
    return result


class _CountingSink:
    """A write-only file object that discards what it gets and counts the bytes."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> int:
        self.bytes += len(data)
        return len(data)


def measure_copy(args: argparse.Namespace) -> dict[str, Any]:
    db = pg_connect(args, DATABASE, args.pg_user, args.pg_password)
    sink = _CountingSink()
    try:
        started = time.monotonic()
        with db.cursor() as cur:
            cur.copy_expert(f"COPY (SELECT * FROM {TABLE}) TO STDOUT", sink, size=1 << 20)
        seconds = time.monotonic() - started
    finally:
        db.close()
    return {"seconds": seconds, "bytes": sink.bytes}


def measure_plain_spark(args: argparse.Namespace, work: Path, spark_holder: dict[str, Any]) -> dict[str, Any]:
    """Plain spark.read.jdbc -> Delta, with a fresh session (its start is timed separately)."""
    started = time.monotonic()
    spark = start_spark(args, spark_holder)
    session_seconds = time.monotonic() - started
    read_started = time.monotonic()
    db = pg_connect(args, DATABASE, args.pg_user, args.pg_password)
    try:
        with db.cursor() as cur:
            cur.execute(f"SELECT min(id), max(id) FROM {TABLE}")
            low, high = cur.fetchone()
    finally:
        db.close()
    url = f"jdbc:postgresql://{args.pg_host}:{args.pg_port}/{DATABASE}"
    props = {"user": args.pg_user, "password": args.pg_password, "driver": "org.postgresql.Driver", "fetchsize": str(PLAIN_FETCH_SIZE)}
    df = spark.read.jdbc(
        url, TABLE, column="id", lowerBound=int(low), upperBound=int(high), numPartitions=args.partitions, properties=props
    )
    target = str(work / "plain_spark")
    df.write.format("delta").mode("overwrite").save(target)
    seconds = time.monotonic() - read_started
    rows = spark.read.format("delta").load(target).count()
    if rows != args.rows:
        raise SystemExit(f"plain Spark JDBC wrote {rows:,} rows, expected {args.rows:,}")
    return {"seconds": seconds, "seconds_with_session": seconds + session_seconds, "session_seconds": session_seconds, "rows_checked": rows}


def write_bulk_config(args: argparse.Namespace, work: Path, run: int) -> Path:
    bulk: dict[str, Any] = {"parallel_tables": 1, "partitions": args.partitions, "fetch_size": args.fetch_size}
    if args.rows_per_chunk:
        bulk["rows_per_chunk"] = args.rows_per_chunk
    connection: dict[str, Any] = {
        "host": args.pg_host,
        "port": args.pg_port,
        "database": DATABASE,
        "user": args.pg_user,
        "password": args.pg_password,
    }
    if args.jdbc_prop:
        connection["properties"] = dict(args.jdbc_prop)
    # A new lake per run: every run starts from the same state (no status table of an earlier run to clean).
    lake: dict[str, Any] = {"root": str(work / f"lake_{run}"), "format": "delta"}
    if args.lake_conf:
        lake["spark_conf"] = dict(args.lake_conf)
    doc = {
        "lake": lake,
        "checkpoints": {"root": str(work / f"checkpoints_{run}")},
        "bulk": bulk,
        "sources": {SOURCE: {"type": "postgres", "connection": connection, "schemas": ["public"], "include": ["bench_rows"]}},
    }
    path = work / f"bench_pipeline_{run}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


_CHUNK_LINE = re.compile(r"chunk (\d+)/(\d+) committed, (\d+) rows in ([0-9.]+)s")
_SUMMARY_LINE = re.compile(r"source \S+: \d+ table\(s\) loaded, (\d+) failed, (\d+) rows in ([0-9.]+)s")


def measure_bulk(args: argparse.Namespace, work: Path, run: int) -> dict[str, Any]:
    config = write_bulk_config(args, work, run)
    repo = Path(args.repo).resolve()
    cmd = [sys.executable, str(repo / "jobs" / "bulk_load.py"), "--config", str(config), "--source", SOURCE, "--fresh-start", "--yes"]
    log_path = work / f"bulk_load_{run}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        code = subprocess.run(
            cmd, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False
        ).returncode
    seconds = time.monotonic() - started
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if code != 0:
        print(text[-4000:], file=sys.stderr)
        raise SystemExit(f"bulk_load.py exited with {code} (log: {log_path})")
    chunks = [{"chunk": int(m[1]), "of": int(m[2]), "rows": int(m[3]), "seconds": float(m[4])} for m in _CHUNK_LINE.finditer(text)]
    summary = _SUMMARY_LINE.search(text)
    if summary is None or int(summary[1]) != 0 or int(summary[2]) != args.rows:
        line = summary[0] if summary else "no summary line"
        raise SystemExit(f"bulk_load.py: expected {args.rows:,} rows loaded and no failure, its log says: {line} (log: {log_path})")
    if run > 0 and not args.keep:  # the last run's table is counted with Spark afterwards; earlier ones only take disk
        shutil.rmtree(work / f"lake_{run - 1}", ignore_errors=True)
    return {
        "seconds": seconds,
        "load_seconds": float(summary[3]),  # the loader's own timing: after JVM start
        "rows_reported": int(summary[2]),
        "chunks": chunks,
        "command": " ".join(cmd),
        "log": str(log_path),
        "lake_table": f"{work / f'lake_{run}'}/{SOURCE}/public/bench_rows",
    }


def start_spark(args: argparse.Namespace, holder: dict[str, Any]) -> Any:
    if "spark" not in holder:
        repo = Path(args.repo).resolve()
        for path in (str(repo), str(repo / "jobs")):  # jobs/_session.py imports lib/
            if path not in sys.path:
                sys.path.insert(0, path)
        from _session import get_spark

        holder["spark"] = get_spark("bench_bulk")
    return holder["spark"]


# ------------------------------------------------------------------------------------------- reporting


def add_pg_arguments(p: argparse.ArgumentParser) -> None:
    """The local PostgreSQL's connection flags (both benchmarks)."""
    p.add_argument("--pg-host", default=os.environ.get("PG_HOST", "127.0.0.1"))
    p.add_argument("--pg-port", type=int, default=int(os.environ.get("PG_PORT", "55432")))
    p.add_argument("--pg-user", default="loader")
    p.add_argument("--pg-password", default=os.environ.get("SHOP_DB_PASSWORD", "loader"))
    p.add_argument("--pg-superuser", default="postgres")
    p.add_argument("--pg-superuser-password", default=os.environ.get("PG_SUPERUSER_PASSWORD", "postgres"))


def host_memory_and_cpu() -> tuple[int, str]:
    """(MemTotal in KiB, CPU model name) from /proc; (0, "") where unreadable."""
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo", encoding="ascii") as f:
        mem_kib = next((int(ln.split()[1]) for ln in f if ln.startswith("MemTotal:")), 0)
    cpu_model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        cpu_model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    return mem_kib, cpu_model


def machine_info(args: argparse.Namespace, spark: Any | None) -> dict[str, Any]:
    mem_kib, cpu_model = host_memory_and_cpu()
    versions: dict[str, Any] = {"python": platform.python_version()}
    for pkg in ("pyspark", "delta-spark", "psycopg2-binary", "psycopg2"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[pkg] = importlib.metadata.version(pkg)
    db = pg_connect(args, DATABASE, args.pg_user, args.pg_password)
    with db.cursor() as cur:
        cur.execute("SHOW server_version")
        versions["postgresql"] = cur.fetchone()[0]
        cur.execute("SHOW shared_buffers")
        versions["postgresql_shared_buffers"] = cur.fetchone()[0]
    db.close()
    jdbc = sorted(p.name for p in (Path(args.repo).resolve() / "jars").glob("postgresql-*.jar"))
    versions["pgjdbc"] = jdbc[0].removeprefix("postgresql-").removesuffix(".jar") if jdbc else None
    if spark is not None:
        jvm = spark.sparkContext._jvm
        versions["java"] = jvm.System.getProperty("java.version")
        versions["spark"] = spark.version
        versions["spark_master"] = spark.sparkContext.master
    return {
        "repo_commit": _git(args.repo, "rev-parse", "--short", "HEAD"),
        "repo_dirty_paths": len((_git(args.repo, "status", "--porcelain", "--", "lib", "jobs") or "").splitlines()),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu_model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "os": platform.platform(),
        "versions": versions,
    }


def _git(repo: str, *argv: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", repo, *argv], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def kv(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark the bulk load against COPY and plain Spark JDBC.")
    p.add_argument("--rows", type=int, default=5_000_000, help="rows in public.bench_rows (default 5,000,000)")
    p.add_argument("--partitions", type=int, default=2, help="parallel JDBC reads (plain Spark and bulk.partitions; default 2)")
    p.add_argument("--fetch-size", type=int, default=20000, help="bulk.fetch_size of the bulk load (default 20000)")
    p.add_argument("--rows-per-chunk", type=int, help="bulk.rows_per_chunk of the bulk load (default: the loader's)")
    p.add_argument(
        "--jdbc-prop", type=kv, action="append", default=[], metavar="KEY=VALUE", help="JDBC property for the bulk load (repeatable)"
    )
    p.add_argument(
        "--lake-conf",
        type=kv,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="lake.spark_conf entry for the bulk load (repeatable)",
    )
    p.add_argument("--methods", default="copy,spark,bulk", help="comma-separated subset of copy,spark,bulk (default all)")
    p.add_argument("--repeat", type=int, default=1, help="runs of copy and bulk; the median is reported (default 1)")
    p.add_argument("--repo", default=str(REPO_ROOT), help="checkout whose jobs/ and jars/ are benchmarked (default this one)")
    p.add_argument("--output", default=str(REPO_ROOT / "reports" / "bench_bulk.json"), help="JSON report (default reports/bench_bulk.json)")
    p.add_argument(
        "--wait-idle",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="before each measurement wait up to this long for the CPUs to be idle (shared machines; 0: do not wait; default 120)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary lake, config and logs")
    add_pg_arguments(p)
    args = p.parse_args()
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(args.methods) - {"copy", "spark", "bulk"}
    if unknown or not args.methods:
        p.error(f"--methods: unknown {', '.join(sorted(unknown)) or '(empty)'}")
    if args.rows < 1 or args.partitions < 1 or args.repeat < 1:
        p.error("--rows, --partitions and --repeat must be positive")
    return args


LOCK_KEY = 0x62656E6368  # "bench": one benchmark at a time per PostgreSQL server


def hold_bench_lock(args: argparse.Namespace) -> Any:
    """A session holding an advisory lock: two benchmarks at once would time each other (and one
    could regenerate the table under the other). Waits for a running one to finish."""
    db = pg_connect(args, "postgres", args.pg_superuser, args.pg_superuser_password)
    db.autocommit = True
    with db.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
        if not cur.fetchone()[0]:
            print("another bench_bulk.py is running against this server: waiting for it to finish ...", flush=True)
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    return db


def main() -> int:
    args = parse_args()
    lock = hold_bench_lock(args)
    total_started = time.monotonic()
    data = ensure_data(args)
    work = Path(tempfile.mkdtemp(prefix="bench_bulk_", dir="/tmp"))
    spark_holder: dict[str, Any] = {}
    results: list[dict[str, Any]] = []
    samples: dict[str, list[dict[str, Any]]] = {}
    try:
        if "copy" in args.methods:
            samples["copy"] = []
            for i in range(args.repeat):
                r = measured(args, "copy", lambda: measure_copy(args))
                samples["copy"].append(r)
                print(f"copy   run {i + 1}: {r['seconds']:.2f}s, {r['bytes'] / 2**20:,.0f} MiB", flush=True)
        if "bulk" in args.methods:  # before this process starts its own JVM: the loader has the CPUs to itself
            samples["bulk"] = []
            for i in range(args.repeat):
                r = measured(args, "bulk", lambda i=i: measure_bulk(args, work, i))
                samples["bulk"].append(r)
                inner = f", loader's own timing {r['load_seconds']:.1f}s" if r["load_seconds"] is not None else ""
                print(f"bulk   run {i + 1}: {r['seconds']:.2f}s wall{inner}, {len(r['chunks'])} chunk(s)", flush=True)
        if "spark" in args.methods:
            r = measured(args, "spark", lambda: measure_plain_spark(args, work, spark_holder))
            samples["spark"] = [r]
            print(f"spark  run 1: {r['seconds']:.2f}s (+{r['session_seconds']:.1f}s session start)", flush=True)
        if "bulk" in args.methods:
            spark = start_spark(args, spark_holder)
            lake_rows = spark.read.format("delta").load(samples["bulk"][-1]["lake_table"]).count()
            if lake_rows != args.rows:
                raise SystemExit(f"bulk load: lake table holds {lake_rows:,} rows, expected {args.rows:,}")
            for r in samples["bulk"]:
                r["rows_checked"] = lake_rows

        def median(method: str, key: str = "seconds") -> float:
            return statistics.median(s[key] for s in samples[method])

        copy_rate = args.rows / median("copy") if "copy" in samples else None

        def row(method: str, sampled: str, seconds: float, note: str) -> dict[str, Any]:
            rate = args.rows / seconds
            return {
                "method": method,
                "seconds": round(seconds, 2),
                "rows_per_s": round(rate),
                "ratio_vs_copy": round(rate / copy_rate, 3) if copy_rate else None,
                "other_cpu_share": max(s["other_cpu_share"] for s in samples[sampled]),  # worst run: contention
                "note": note,
            }

        if "copy" in samples:
            results.append(row("copy", "copy", median("copy"), "psycopg2 copy_expert COPY TO STDOUT into a discarding sink"))
        if "spark" in samples:
            note = f"spark.read.jdbc, {args.partitions} partitions, fetchsize {PLAIN_FETCH_SIZE} -> Delta; session start excluded"
            results.append(row("spark_jdbc", "spark", median("spark"), note))
            results.append(
                row("spark_jdbc_with_start", "spark", median("spark", "seconds_with_session"), "the same, session start included")
            )
        if "bulk" in samples:
            results.append(row("bulk_load", "bulk", median("bulk"), "jobs/bulk_load.py subprocess, whole process (JVM start included)"))
            inner = [s["load_seconds"] for s in samples["bulk"] if s["load_seconds"] is not None]
            if inner:
                note = "the loader's own 'rows in Ns' log line (JVM start and exit excluded; fresh start, planning, status included)"
                results.append(row("bulk_load_inner", "bulk", statistics.median(inner), note))
            copying = [sum(c["seconds"] for c in s["chunks"]) for s in samples["bulk"] if s["chunks"]]
            if copying:
                note = "the loader's chunks only (read + write + commit, from its 'chunk i/n committed' log lines)"
                results.append(row("bulk_load_chunks", "bulk", statistics.median(copying), note))

        spark = spark_holder.get("spark")
        machine = machine_info(args, spark)
        print()
        print(f"machine: {machine['nproc']} CPU(s) {machine['cpu']}, {machine['memory_gib']} GiB memory")
        print(f"repo: {args.repo} at {machine['repo_commit']} ({machine['repo_dirty_paths']} changed path(s) under lib/ and jobs/)")
        print("versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()))
        settings = {
            "rows": args.rows,
            "partitions": args.partitions,
            "fetch_size": args.fetch_size,
            "rows_per_chunk": args.rows_per_chunk,
            "jdbc_properties": dict(args.jdbc_prop),
            "lake_spark_conf": dict(args.lake_conf),
            "repeat": args.repeat,
            "repo": str(Path(args.repo).resolve()),
        }
        print("bulk settings: " + json.dumps({k: v for k, v in settings.items() if k not in ("rows", "repo")}))
        print()
        print(f"{'method':<24}{'seconds':>10}{'rows/s':>14}{'vs COPY':>10}{'other CPU':>11}")
        for r in results:
            ratio = f"{r['ratio_vs_copy']:.3f}" if r["ratio_vs_copy"] is not None else "-"
            other = f"{100 * r['other_cpu_share']:.0f}%"
            print(f"{r['method']:<24}{r['seconds']:>10.2f}{r['rows_per_s']:>14,}{ratio:>10}{other:>11}")
        print("(seconds: median of --repeat runs; other CPU: share of the machine used by other jobs during the worst run)")
        report = {
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "table": TABLE,
            "data": data,
            "settings": settings,
            "machine": machine,
            "results": results,
            "samples": {
                k: [
                    {kk: (round(vv, 3) if isinstance(vv, float) else vv) for kk, vv in s.items() if kk not in ("log", "lake_table")}
                    for s in v
                ]
                for k, v in samples.items()
            },
            "benchmark_seconds": round(time.monotonic() - total_started, 1),
        }
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nreport: {out}  (benchmark took {report['benchmark_seconds']:.0f}s)")
    finally:
        spark = spark_holder.pop("spark", None)
        if spark is not None:
            spark.stop()
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
