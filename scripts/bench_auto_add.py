#!/usr/bin/env python3
"""Benchmark: a table created while the stream runs, in the lake and current (not a test).

Usage:  .venv/bin/python scripts/bench_auto_add.py [--rows 10000] [--interval 30] [--update-every 0.2]   (or `make bench`)

The target: a table created while the stream runs (10k rows) is in the lake and current within 60 s.

1. A fresh database ``bench_auto_add`` with one small table; ``jobs/bulk_load.py`` loads it and registers
   the connector (not measured).
2. ``jobs/cdc_stream.py`` runs long-running with ``cdc.auto_add_tables`` on (``--interval``: its
   ``cdc.auto_add_interval_seconds``, the product's default 30); the benchmark waits for "cdc stream ready".
3. t0: one transaction creates ``public.fresh`` with ``--rows`` rows; from then on a writer commits a
   single-row update of it every ``--update-every`` s, before, during and after its copy, until the lake
   table first appears (the copy committed; the last updates are newer than its snapshot, so the stream
   must apply them).
4. The lake table is read with delta-rs every 0.5 s; t1 is when it equals the source row by row after the
   writer stopped. The stream's log gives the split: when the stream found the table, how long its copy
   took, its first apply.
5. SIGTERM to the stream; the connector, slot and database are dropped. Prints the numbers and the
   machine load (``uptime``) and writes ``reports/bench_auto_add.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "scripts")]

from bench_bulk import add_pg_arguments  # noqa: E402  (scripts/ is not a package)
from bench_cdc_infra import delete_connector, hold_bench_lock, pg_connect, replace_database  # noqa: E402
from job_watch import JobWatch  # noqa: E402

DATABASE = "bench_auto_add"
SOURCE = "benchadd"
TARGET_SECONDS = 60.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_pg_arguments(p)
    p.add_argument("--connect-url", default=f"http://127.0.0.1:{os.environ.get('CONNECT_PORT', '8083')}")
    p.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--update-every", type=float, default=0.2, help="seconds between single-row updates of the new table, from its creation until its copy is in the lake")
    p.add_argument("--interval", type=float, default=30.0, help="cdc.auto_add_interval_seconds of the stream")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--report", default=str(REPO_ROOT / "reports" / "bench_auto_add.json"))
    return p.parse_args()


def recreate_database(args: argparse.Namespace) -> None:
    delete_connector(args.connect_url, f"lakehouse-{SOURCE}")
    replace_database(args, DATABASE)


def run_sql(args: argparse.Namespace, *statements: str) -> None:
    db = pg_connect(args, DATABASE)
    db.autocommit = True
    try:
        with db.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        db.close()


def source_rows(args: argparse.Namespace) -> list[tuple[Any, ...]]:
    db = pg_connect(args, DATABASE)
    try:
        with db.cursor() as cur:
            cur.execute("SELECT id, v, name FROM public.fresh ORDER BY id")
            return [tuple(r) for r in cur.fetchall()]
    finally:
        db.close()


def lake_rows(path: Path) -> list[tuple[Any, ...]] | None:
    from deltalake import DeltaTable

    if not (path / "_delta_log").is_dir():
        return None
    try:
        data = DeltaTable(str(path)).to_pyarrow_table(columns=["id", "v", "name"]).to_pylist()
    except Exception:  # noqa: BLE001 - being written: read again
        return None
    return sorted((r["id"], r["v"], r["name"]) for r in data)


def write_until(args: argparse.Namespace, stop: threading.Event, written: list[int]) -> None:
    """Single-row updates of public.fresh, each its own commit, every ``--update-every`` s until ``stop``."""
    db = pg_connect(args, DATABASE)
    db.autocommit = True
    n = 0
    try:
        with db.cursor() as cur:
            while not stop.is_set():
                cur.execute("UPDATE public.fresh SET v = v + 1, name = name || '+' WHERE id = %s", (1 + (n * 7919) % args.rows,))
                n += 1
                stop.wait(args.update_every)
    finally:
        db.close()
        written.append(n)


def write_config(args: argparse.Namespace, work: Path) -> Path:
    doc = {
        "lake": {"root": str(work / "lake"), "format": "delta"},
        "checkpoints": {"root": str(work / "checkpoints")},
        "kafka": {"bootstrap_servers": args.bootstrap},
        "stream": {"trigger_seconds": 1.0},
        "sources": {SOURCE: {
            "type": "postgres",
            "connection": {"host": args.pg_host, "port": args.pg_port, "database": DATABASE, "user": args.pg_user, "password": "${SHOP_DB_PASSWORD}"},
            "schemas": ["public"],
            "cdc": {"topic_prefix": SOURCE, "connect_url": args.connect_url, "password_reference": "${env:SHOP_DB_PASSWORD}",
                    "auto_add_interval_seconds": args.interval},
        }},
    }
    path = work / "pipeline.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def seconds_of(log_path: Path, pattern: str, t0: float) -> float | None:
    """Seconds after ``t0`` (wall clock) the stream's log first matched ``pattern``, from the line's own
    time stamp (HH:MM:SS: whole seconds)."""
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        stamp = re.match(r"(\d\d):(\d\d):(\d\d) ", line)
        if stamp and re.search(pattern, line):
            start = time.localtime(t0)
            of_day = int(stamp.group(1)) * 3600 + int(stamp.group(2)) * 60 + int(stamp.group(3))
            t0_of_day = start.tm_hour * 3600 + start.tm_min * 60 + start.tm_sec + (t0 % 1)
            return round((of_day - t0_of_day) % 86400, 1)
    return None


def main() -> int:
    args = parse_args()
    env = dict(os.environ, SHOP_DB_PASSWORD=args.pg_password, PYTHONUNBUFFERED="1")
    lock = hold_bench_lock(args)
    work = Path(tempfile.mkdtemp(prefix="bench_auto_add_"))
    stream: JobWatch | None = None
    result: dict[str, Any] = {"rows": args.rows, "update_every_seconds": args.update_every, "interval_seconds": args.interval, "target_seconds": TARGET_SECONDS}
    try:
        recreate_database(args)
        run_sql(args, "CREATE TABLE public.seed (id int PRIMARY KEY, v int)", "INSERT INTO public.seed SELECT g, g FROM generate_series(1, 100) g")
        config = write_config(args, work)
        py = str(REPO_ROOT / ".venv" / "bin" / "python")
        load = subprocess.run([py, "jobs/bulk_load.py", "--config", str(config), "--source", SOURCE, "--connector-config", str(work / "connector.json")],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        if load.returncode != 0:
            print(load.stdout[-3000:], load.stderr[-3000:], sep="\n")
            raise RuntimeError(f"bulk load exited {load.returncode}")
        log_path = work / "stream.log"
        stream = JobWatch([py, "jobs/cdc_stream.py", "--config", str(config), "--source", SOURCE], env, log_path)
        if not stream.wait_until(lambda w: w.ready_at is not None, 180):
            raise RuntimeError(f"the stream did not get ready: {stream.tail[-10:]}")
        t0 = time.time()
        run_sql(args, "BEGIN", "CREATE TABLE public.fresh (id int PRIMARY KEY, v int NOT NULL, name text)",
                f"INSERT INTO public.fresh SELECT g, 0, 'row ' || g FROM generate_series(1, {args.rows}) g", "COMMIT")
        stop_writer, written = threading.Event(), []
        writer = threading.Thread(target=write_until, args=(args, stop_writer, written))
        writer.start()
        path = work / "lake" / SOURCE / "public" / "fresh"
        expected, current_at, copy_seen_at = None, None, None
        try:
            while time.time() - t0 < args.timeout and stream.running():
                rows = lake_rows(path)
                if rows is not None and expected is None:  # the copy committed: its snapshot is older than the writer's last changes
                    copy_seen_at = time.time() - t0
                    stop_writer.set()
                    writer.join()
                    expected = source_rows(args)
                if expected is not None and rows == expected:
                    current_at = time.time() - t0
                    break
                time.sleep(0.5)
        finally:
            stop_writer.set()
            writer.join()
        result["updates_committed"] = written[0] if written else None
        result["lake_table_seen_seconds"] = round(copy_seen_at, 1) if copy_seen_at is not None else None
        result.update({
            "in_lake_and_current_seconds": round(current_at, 1) if current_at is not None else None,
            "found_seconds": seconds_of(log_path, r"new source table public\.fresh found", t0),
            "copied_seconds": seconds_of(log_path, r"public\.fresh copied:", t0),
            "first_apply_seconds": seconds_of(log_path, r"cdc batch \d+ \[public\.fresh\]", t0),
            "copy_line": next((ln for ln in log_path.read_text().splitlines() if "public.fresh copied:" in ln), None),
            "load_average": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        })
    finally:
        if stream is not None:
            stream.stop(60)
        delete_connector(args.connect_url, f"lakehouse-{SOURCE}")
        try:
            replace_database(args, DATABASE, create=False)
        finally:
            lock.close()
    print(json.dumps(result, indent=2))
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text(json.dumps(result, indent=2) + "\n")
    seconds = result["in_lake_and_current_seconds"]
    verdict = "MET" if seconds is not None and seconds <= TARGET_SECONDS else "NOT MET"
    print(f"a {args.rows}-row table created while the stream runs: in the lake and current after {seconds} s "
          f"(target {TARGET_SECONDS:g} s: {verdict}); work dir {work}")
    return 0 if seconds is not None else 1


if __name__ == "__main__":
    sys.exit(main())
