"""The direct apply's floor, without Kafka, Spark or a database (docs/benchmarks.md).

Builds a Delta table shaped like scripts/bench_cdc.py's (250,000 rows: ``id bigint`` key, ``int``,
``numeric(12,2)``, ``text``, ``timestamptz``, ``boolean``, ``int``) and one table's share of its backlog
as compact Debezium PostgreSQL messages (57,000: 60% updates, 25% inserts, 15% deletes of random keys),
then times what a worker of lib/cdc/direct/apply.py does with them: the one-pass decode
(``summarize``), the Arrow MERGE source, and the delta-rs MERGE. Best of ``--repeat`` in CPU seconds
(the pass is single-threaded Python) and the MERGE in wall seconds (delta-rs runs threads).

    .venv/bin/python scripts/bench_direct_pass.py [--events 57000] [--rows 250000] [--repeat 9]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa
from deltalake import write_deltalake

from lib.cdc import plan as P
from lib.cdc.delta_rs_merge import merge_arrow
from lib.cdc.direct.events import arrow_rows, plan, summarize

SOURCE_TYPE = "__debezium.source.column.type"
FIELDS = {"id": {"type": "int64"}, "a": {"type": "int32"}, "amount": {"type": "string", "parameters": {SOURCE_TYPE: "NUMERIC"}},
          "note": {"type": "string"}, "created_at": {"type": "string", "name": "io.debezium.time.ZonedTimestamp"},
          "flag": {"type": "boolean"}, "qty": {"type": "int32"}}
COLUMNS = (("id", "bigint"), ("a", "int"), ("amount", "decimal(12,2)"), ("note", "string"), ("created_at", "timestamp"), ("flag", "boolean"),
           ("qty", "int"))


def bulk_table(path: str, rows: int) -> None:
    then = datetime(2026, 1, 1, tzinfo=UTC)
    position = pa.array([Decimal(0)] * rows, pa.decimal128(38, 0))
    write_deltalake(path, pa.table({
        "id": pa.array(range(1, rows + 1), pa.int64()), "a": pa.array([(g * 7919) % 1000003 for g in range(rows)], pa.int32()),
        "amount": pa.array([Decimal(g % 100000) / 100 for g in range(rows)], pa.decimal128(12, 2)),
        "note": [f"row {g} {g:08x}" for g in range(rows)], "created_at": pa.array([then] * rows, pa.timestamp("us", tz="UTC")),
        "flag": [g % 3 == 0 for g in range(rows)], "qty": pa.array([g % 97 for g in range(rows)], pa.int32()),
        "__source_commit_pos": position, "__source_change_pos": position, "__op": ["r"] * rows,
        "__ingested_at": pa.array([then] * rows, pa.timestamp("us", tz="UTC"))}))


def messages(events: int, rows: int) -> list[tuple[int, int, bytes]]:
    rnd, out, lsn, new_key = random.Random(1), [], 10_000, rows + 1
    for i in range(events):
        lsn += 10
        draw = rnd.random()
        if draw < 0.6:
            op, key = "u", rnd.randint(1, rows)
        elif draw < 0.85:
            op, key, new_key = "c", new_key, new_key + 1
        else:
            op, key = "d", rnd.randint(1, rows)
        row = {"id": key, "a": key % 1000, "amount": f"{key % 100000 / 100:.2f}", "note": f"upd {key:012x}",
               "created_at": "2026-11-27T06:18:22.123456Z", "flag": True, "qty": 5}
        source = {"version": "3.2.3.Final", "connector": "postgresql", "name": "b", "ts_ms": 1764224302000, "snapshot": "false", "db": "bench_cdc",
                  "sequence": json.dumps([str(lsn - 5), str(lsn)]), "schema": "public", "table": "t01", "txId": 5000 + i // 2000, "lsn": lsn,
                  "xmin": None}
        before = dict.fromkeys(row) | {"id": key} if op == "d" else None
        out.append((0, i, json.dumps({"before": before, "after": None if op == "d" else row, "source": source, "transaction": None,
                                      "op": op, "ts_ms": 1764224302100}).encode()))
    return out


def best(repeat: int, clock: object, work: object) -> float:
    times = []
    for _ in range(repeat):
        started = clock()  # type: ignore[operator]
        work()  # type: ignore[operator]
        times.append(clock() - started)  # type: ignore[operator]
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=57_000)
    parser.add_argument("--rows", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "t01")
        bulk_table(path, args.rows)
        spec = P.TableSpec("b", "public", "t01", path, ("id",), COLUMNS, snapshot_txids="100:100:", has_tombstones=False, merge_by="delta-rs")
        msgs = messages(args.events, args.rows)
        p = plan(spec, FIELDS)
        decode = best(args.repeat, time.process_time, lambda: summarize(p, msgs))
        batch = summarize(p, msgs)
        arrow = best(args.repeat, time.process_time, lambda: arrow_rows(p, batch))
        data = arrow_rows(p, batch)
        started = time.monotonic()
        merge_arrow(path, data, P.merge_clauses(spec, (), now="now()"))
        merge = time.monotonic() - started
    size = sum(len(m[2]) for m in msgs) / len(msgs)
    print(json.dumps({"events": args.events, "message_bytes": round(size), "merge_rows": data.num_rows, "table_rows": args.rows,
                      "decode_cpu_s": round(decode, 3), "decode_events_per_cpu_s": round(args.events / decode),
                      "arrow_cpu_s": round(arrow, 3), "merge_wall_s": round(merge, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
