"""The benchmark's surroundings (scripts/bench_cdc.py): PostgreSQL administration (connections, the
benchmark lock, dropping the database and its slots), the end offsets of the run's Kafka topics, and
Kafka Connect's REST API (deleting connectors)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import psycopg2

DATABASE = "bench_cdc"
LOCK_KEY = 0x62656E6368  # the same advisory lock as bench_bulk.py: one benchmark at a time per server

# ------------------------------------------------------------------------------------ PostgreSQL


def pg_connect(args: argparse.Namespace, database: str, superuser: bool = False) -> Any:
    user, password = (args.pg_superuser, args.pg_superuser_password) if superuser else (args.pg_user, args.pg_password)
    return psycopg2.connect(host=args.pg_host, port=args.pg_port, dbname=database, user=user, password=password, connect_timeout=10)


def table_names(count: int, prefix: str = "t") -> list[str]:
    """``t01`` ... (as wide as ``count`` needs, at least 2 digits)."""
    width = max(2, len(str(count)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, count + 1)]


def hold_bench_lock(args: argparse.Namespace) -> Any:
    db = pg_connect(args, "postgres", superuser=True)
    db.autocommit = True
    with db.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
        if not cur.fetchone()[0]:
            print("another benchmark (bench_bulk.py or bench_cdc.py) runs against this server: waiting ...", flush=True)
            cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    return db


def drop_database(args: argparse.Namespace) -> None:
    """Drop ``bench_cdc`` and what would keep it alive: leftover benchmark connectors and its slots."""
    for name in connectors(args.connect_url):
        if name.startswith("benchcdc-"):
            print(f"cleanup: deleting leftover connector {name}", flush=True)
            delete_connector(args.connect_url, name)
    replace_database(args, DATABASE, create=False)


def replace_database(args: argparse.Namespace, database: str, create: bool = True) -> None:
    """Drop ``database`` with its replication slots, then (``create``) create it empty, owned by the benchmark's user."""
    admin = pg_connect(args, "postgres", superuser=True)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT slot_name FROM pg_replication_slots WHERE database = %s", (database,))
            for (slot,) in cur.fetchall():
                drop_slot(cur, slot)
            cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            if create:
                cur.execute(f"CREATE DATABASE {database} OWNER {args.pg_user}")
    finally:
        admin.close()


def drop_slot(cur: Any, slot: str, wait: float = 30.0) -> bool:
    """Drop a replication slot once no walsender uses it (terminating the user after ``wait`` s)."""
    deadline = time.monotonic() + wait
    while True:
        cur.execute("SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = %s", (slot,))
        row = cur.fetchone()
        if row is None:
            return False
        active, pid = row
        if not active:
            cur.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return True
        if time.monotonic() > deadline:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.5)


# ------------------------------------------------------------------------------------------ Kafka


class KafkaWatch:
    """Total end offsets of this run's ``<prefix>.<schema>.*`` topics."""

    def __init__(self, bootstrap: str, prefix: str, schema: str) -> None:
        from confluent_kafka import Consumer
        from confluent_kafka.admin import AdminClient

        self.prefix = f"{prefix}.{schema}."
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"bench_cdc_watch_{os.getpid()}", "enable.auto.commit": False}
        )

    def end_offsets(self) -> dict[str, int]:
        from confluent_kafka import TopicPartition

        meta = self.admin.list_topics(timeout=10)
        out = {}
        for name, topic in meta.topics.items():
            if not name.startswith(self.prefix):
                continue
            total = 0
            for partition in topic.partitions:
                _low, high = self.consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=10, cached=False)
                total += high
            out[name] = total
        return out

    def total(self) -> int:
        return sum(self.end_offsets().values())

    def wait_for(self, expected: int, stall_seconds: float, label: str) -> dict[str, Any]:
        """Poll until the topics hold ``expected`` messages; fail when nothing new arrives for ``stall_seconds``."""
        samples = []
        started = time.monotonic()
        last_change, last_total, last_print = started, -1, started
        while True:
            total = self.total()
            now = time.monotonic()
            samples.append((round(now - started, 1), total))
            if total != last_total:
                last_change, last_total = now, total
            if total >= expected:
                break
            if now - last_change > stall_seconds:
                raise RuntimeError(f"{label}: Kafka holds {total:,} of {expected:,} expected messages, none new for {stall_seconds:.0f}s")
            if now - last_print > 10:
                last_print = now
                print(f"{label}: Kafka holds {total:,}/{expected:,} messages", flush=True)
            time.sleep(0.5)
        return {"messages": total, "seconds": time.monotonic() - started, "samples": samples[:: max(1, len(samples) // 60)]}

    def close(self) -> None:
        self.consumer.close()

    def delete_topics(self, prefix: str) -> list[str]:
        meta = self.admin.list_topics(timeout=10)
        names = [n for n in meta.topics if n.startswith(f"{prefix}.") or n == f"__debezium-heartbeat.{prefix}"]
        if names:
            for fut in self.admin.delete_topics(names, operation_timeout=30).values():
                with contextlib.suppress(Exception):
                    fut.result()
        return names


# ------------------------------------------------------------------------------- Kafka Connect REST


def _rest(base: str, method: str, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(f"{base.rstrip('/')}{path}", method=method, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def connectors(base: str) -> list[str]:
    try:
        code, payload = _rest(base, "GET", "/connectors")
    except (urllib.error.URLError, OSError) as exc:
        raise SystemExit(f"Kafka Connect at {base} does not answer ({exc}): run `make up`") from None
    return list(payload) if code == 200 else []


def delete_connector(base: str, name: str) -> bool:
    """Stop the connector, erase its stored offsets, delete it. True when it existed."""
    path = "/connectors/" + urllib.parse.quote(name, safe="")
    code, _ = _rest(base, "GET", f"{path}/status")
    if code == 404:
        return False
    code, _ = _rest(base, "PUT", f"{path}/stop")
    if code in (202, 204):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            code, status = _rest(base, "GET", f"{path}/status")
            if code != 200 or (status or {}).get("connector", {}).get("state") == "STOPPED":
                break
            time.sleep(0.5)
        _rest(base, "DELETE", f"{path}/offsets")
    code, _ = _rest(base, "DELETE", path)
    return code == 204

