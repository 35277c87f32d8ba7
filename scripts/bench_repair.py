#!/usr/bin/env python3
"""Benchmark: ``jobs/validate.py --repair`` against a full reload of the same table (not a test).

Usage:  .venv/bin/python scripts/bench_repair.py [--rows 1000000] [--bucket-share 0.05] [--row-share 0.01]   (or `make bench`)
        [--merge-writer delta-rs|spark] [--drill-down-rows N]   (the repair's paths: ``stream.merge_writer``
        decides who MERGEs; ``validation.drill_down_rows 0`` names no keys, so the buckets are read)

1. Makes sure database ``bench`` holds ``public.repair_rows`` with exactly ``--rows`` rows (the 8 columns
   of scripts/bench_bulk.py, primary key ``id``; generated server-side, not measured).
2. ``reload``: ``jobs/bulk_load.py --fresh-start --yes`` of that table into a temporary lake (a
   subprocess: the whole process, and the loader's own time for the table from its log).
3. Changes ``--row-share`` of the rows at the source (``qty``), all of them in ``--bucket-share`` of the
   checksum buckets (the buckets validation computes: the md5 of the key text), so the lake differs.
4. ``repair``: ``jobs/validate.py --repair`` (a subprocess): validation, the repair of the differing
   buckets, validation again; must exit 0. From its log: the repair itself (snapshot, source read,
   the MERGE commit) and the two validations.
5. Puts the source rows back, prints the times and ratios, the machine load (``uptime``), and writes
   ``reports/bench_repair.json``. The target: the repair at least 5x faster than the reload.
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
import time
from pathlib import Path
from typing import Any

import psycopg2
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "scripts")]

from bench_bulk import add_pg_arguments  # noqa: E402  (scripts/ is not a package)

from lib.validate import render  # noqa: E402

DATABASE = "bench"
TABLE = "public.repair_rows"
SOURCE = "bench"
BUMP = 1_000_000  # added to qty of the changed rows (original values are < 97), subtracted afterwards

FILL_SQL = """
CREATE TABLE public.repair_rows (id bigint PRIMARY KEY, a int, b int, amount numeric(12,2), note text,
                                 created_at timestamptz, flag boolean, qty int);
INSERT INTO public.repair_rows
SELECT g, ((g * 7919) % 1000003)::int, (g % 1000)::int, (((g * 104729) % 10000000) / 100.0)::numeric(12,2),
       'row ' || g || ' ' || substr(md5(g::text), 1, 8 + (g % 17)::int),
       timestamptz '2020-01-01 00:00:00+00' + g * interval '7 seconds', g % 3 = 0, (g % 97)::int
FROM generate_series(1, {rows}::bigint) AS g"""


def connect(args: argparse.Namespace, database: str, user: str, password: str) -> Any:
    conn = psycopg2.connect(host=args.pg_host, port=args.pg_port, dbname=database, user=user, password=password, connect_timeout=10)
    conn.autocommit = True
    return conn


def ensure_data(args: argparse.Namespace) -> None:
    admin = connect(args, "postgres", args.pg_superuser, args.pg_superuser_password)
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if cur.fetchone() is None:
            cur.execute(f"CREATE DATABASE {DATABASE} OWNER {args.pg_user}")
    admin.close()
    db = connect(args, DATABASE, args.pg_user, args.pg_password)
    with db.cursor() as cur:
        cur.execute(f"UPDATE {TABLE} SET qty = qty - {BUMP} WHERE qty >= {BUMP}" if _exists(cur) else "SELECT 1")  # an interrupted run
        cur.execute(f"SELECT count(*) FROM {TABLE}" if _exists(cur) else "SELECT -1")
        if cur.fetchone()[0] == args.rows:
            print(f"data: {TABLE} holds {args.rows:,} rows, reused")
        else:
            started = time.monotonic()
            cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
            cur.execute(FILL_SQL.format(rows=int(args.rows)))
            cur.execute(f"VACUUM ANALYZE {TABLE}")
            print(f"data: generated {args.rows:,} rows in {time.monotonic() - started:.1f}s (not measured)")
    db.close()


def _exists(cur: Any) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,))
    return bool(cur.fetchone()[0])


def key_bucket_sql(digits: int) -> str:
    """The checksum's bucket of a row of the table, as validation computes it (key ``id``, a bigint)."""
    return render.pg_bucket(render.pg_join([render.pg_field(render.pg_value("id", "bigint"))]), digits)


def change_rows(args: argparse.Namespace) -> dict[str, Any]:
    """Change ``row_share`` of the rows, all within the first ``bucket_share`` of the buckets."""
    digits = render.bucket_digits(args.buckets)
    count = max(1, round(args.bucket_share * args.buckets))
    buckets = [f"{i:0{digits}x}" for i in range(count)]
    # rows per bucket: rows / buckets; changing every k-th row of the chosen buckets gives row_share overall
    every = max(1, round((count / args.buckets) / args.row_share))
    db = connect(args, DATABASE, args.pg_user, args.pg_password)
    with db.cursor() as cur:
        listed = ", ".join(f"'{b}'" for b in buckets)
        cur.execute(f"UPDATE {TABLE} SET qty = qty + {BUMP} WHERE {key_bucket_sql(digits)} IN ({listed}) AND id % {every} = 0")
        changed = cur.rowcount
    db.close()
    return {"buckets": count, "of": args.buckets, "rows_changed": changed, "share": round(changed / args.rows, 4)}


def restore(args: argparse.Namespace) -> None:
    db = connect(args, DATABASE, args.pg_user, args.pg_password)
    with db.cursor() as cur:
        cur.execute(f"UPDATE {TABLE} SET qty = qty - {BUMP} WHERE qty >= {BUMP}")
    db.close()


def write_config(args: argparse.Namespace, work: Path) -> Path:
    doc = {
        "lake": {"root": str(work / "lake"), "format": "delta"},
        "checkpoints": {"root": str(work / "checkpoints")},
        "bulk": {"parallel_tables": 1, "partitions": args.partitions},
        "sources": {SOURCE: {
            "type": "postgres",
            "connection": {"host": args.pg_host, "port": args.pg_port, "database": DATABASE, "user": args.pg_user, "password": "${BENCH_PG_PASSWORD}"},
            "schemas": ["public"], "include": ["repair_rows"],
            "validation": {"checksum_buckets": args.buckets, "drill_down_rows": args.drill_down_rows},
        }},
        "stream": {"merge_writer": args.merge_writer},
    }
    path = work / "bench_repair.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def run_job(args: argparse.Namespace, work: Path, name: str, argv: list[str]) -> tuple[float, str, int]:
    log_path = work / f"{name}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", BENCH_PG_PASSWORD=args.pg_password)
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        code = subprocess.run([sys.executable, *argv], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False).returncode
    return time.monotonic() - started, log_path.read_text(encoding="utf-8", errors="replace"), code


def _seconds(pattern: str, text: str, what: str) -> list[float]:
    found = [float(m) for m in re.findall(pattern, text)]
    if not found:
        raise SystemExit(f"no {what} line in the log")
    return found


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--buckets", type=int, default=256, choices=[16, 256, 4096], help="validation.checksum_buckets (default 256)")
    p.add_argument("--bucket-share", type=float, default=0.05, help="share of the buckets holding the changed rows (default 0.05)")
    p.add_argument("--row-share", type=float, default=0.01, help="share of the rows changed (default 0.01)")
    p.add_argument("--partitions", type=int, default=2)
    p.add_argument("--merge-writer", default="delta-rs", choices=["delta-rs", "spark"], help="stream.merge_writer (default delta-rs)")
    p.add_argument("--drill-down-rows", type=int, default=200_000, help="validation.drill_down_rows (default 200000; 0: no keys named)")
    add_pg_arguments(p)
    p.add_argument("--output", default=str(REPO_ROOT / "reports" / "bench_repair.json"))
    p.add_argument("--keep", action="store_true", help="keep the temporary lake, config and logs")
    args = p.parse_args()

    ensure_data(args)
    work = Path(tempfile.mkdtemp(prefix="bench_repair_"))
    config = write_config(args, work)
    common = ["--config", str(config), "--source", SOURCE]
    result: dict[str, Any] = {"rows": args.rows, "merge_writer": args.merge_writer, "drill_down_rows": args.drill_down_rows,
                              "load_before": load()}
    try:
        seconds, text, code = run_job(args, work, "reload", [str(REPO_ROOT / "jobs" / "bulk_load.py"), *common, "--fresh-start", "--yes"])
        if code != 0:
            raise SystemExit(f"bulk_load.py exited with {code}: {work / 'reload.log'}")
        table_seconds = _seconds(r"public\.repair_rows: completed, \d+ rows in ([0-9.]+)s", text, "bulk completion")[-1]
        result["reload"] = {"process_seconds": round(seconds, 2), "table_seconds": table_seconds}
        print(f"reload: {table_seconds:.1f}s for the table ({seconds:.1f}s the whole bulk_load.py process)", flush=True)

        result["change"] = change_rows(args)
        print(f"changed {result['change']['rows_changed']:,} rows ({result['change']['share']:.2%}) in {result['change']['buckets']} of {args.buckets} buckets", flush=True)

        seconds, text, code = run_job(args, work, "repair", [str(REPO_ROOT / "jobs" / "validate.py"), *common, "--repair",
                                                            "--report", str(work / "validation.json")])
        if code != 0:
            raise SystemExit(f"validate.py --repair exited with {code}: {work / 'repair.log'}")
        repaired = re.search(r"public\.repair_rows: repaired (.*) in ([0-9.]+)s", text)
        if repaired is None:
            raise SystemExit(f"no repair line in the log: {work / 'repair.log'}")
        repair_seconds = float(repaired[2])
        validations = _seconds(r"public\.repair_rows: (?:PASS|FAIL|INFLIGHT) in ([0-9.]+)s", text, "validation")
        result["repair"] = {"process_seconds": round(seconds, 2), "repair_seconds": repair_seconds, "validation_seconds": validations,
                            "what": repaired[1]}
        result["ratio_repair_vs_reload"] = round(table_seconds / repair_seconds, 2)
        result["ratio_processes"] = round(result["reload"]["process_seconds"] / seconds, 2)
        result["load_after"] = load()
        print(f"repair: {repair_seconds:.1f}s ({repaired[1]}); validations {', '.join(f'{v:.1f}s' for v in validations)}; "
              f"{seconds:.1f}s the whole validate.py --repair process")
        print(f"ratio: reload / repair = {result['ratio_repair_vs_reload']:.1f}x (target >= 5x); "
              f"whole processes (bulk_load.py / validate.py --repair, two validations included) = {result['ratio_processes']:.2f}x")
        print(f"load: before {result['load_before']}; after {result['load_after']}")
    finally:
        restore(args)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
