#!/usr/bin/env python3
"""The CDC part of `make demo`: start the stream, change the sample database, watch the changes arrive.

Usage:  python scripts/demo_cdc.py --config config/pipeline.yaml --source shop [--trigger-seconds 1]

Runs after a ``--fresh-start`` bulk load of the sample ``shop`` database (scripts/sample_db.py):

1. starts ``jobs/cdc_stream.py --trigger-seconds 1`` in the background, copies its log to the console
   prefixed ``[stream]`` and waits for its "cdc stream ready" line (it knows its tables and applies
   changes as they come: the latency shown is a running stream's, not its start-up);
2. makes a few changes in the sample database, one transaction each (a new customer places an order,
   order status changes, a price change, a cancelled order purged) and prints them (table, key, op);
3. reads the stream's per-apply log lines until their inserted/updated/deleted counts cover the changes,
   then prints what arrived and the latency;
4. stops the stream with SIGTERM (it finishes the running applies; SIGKILL after --stop-grace seconds).

Every row is changed once, so the counts expected are exact whatever the batching: the stream applies
the last event per key and apply, and a row inserted and updated in one apply would count once.
Exit 0 the changes arrived and the stream stopped cleanly; 1 a timeout, a failed or hung stream, or a
database error; 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "scripts")]

import psycopg2  # noqa: E402
from job_watch import JobWatch  # noqa: E402

from lib.config import load_config  # noqa: E402
from lib.errors import PipelineError  # noqa: E402

STREAM_JOB = REPO_ROOT / "jobs" / "cdc_stream.py"
PREFIX = "[stream] "

# The per-apply line of lib/cdc/loop/table_status.py (`apply_line`), one per table apply.
OPS = ("inserted", "updated", "deleted")


def totals(stream: JobWatch) -> dict[str, int]:
    """Rows the stream applied so far, per operation (batch lines without change events count 0)."""
    with stream.changed:
        return {op: sum(b.get(op, 0) for b in stream.batches) for op in OPS}


def last_lines(stream: JobWatch) -> str:
    return "\n".join("    " + line for line in stream.last_lines(20))


# --------------------------------------------------------------------------------- the changes


@dataclass(frozen=True)
class Change:
    table: str
    key: str
    op: str  # insert | update | delete
    what: str


def make_changes(conn: Any) -> list[Change]:
    """A few realistic changes, one transaction per story; every row is touched once."""
    changes: list[Change] = []
    stamp = time.strftime("%Y%m%d%H%M%S")

    def tx(story: Callable[[Any], None]) -> None:
        with conn, conn.cursor() as cur:  # commits, or rolls back on error
            story(cur)

    def new_customer_and_order(cur: Any) -> None:
        cur.execute(
            """INSERT INTO customers (customer_uuid, email, first_name, last_name, phone, country_code, birth_date, signup_at, is_active,
                                      loyalty_tier, lifetime_value, tags, preferences)
               VALUES (gen_random_uuid(), %s, 'Ada', 'Lovelace', '+44 7700900123', 'GB', date '1990-12-10', now(), true, 0, 0,
                       ARRAY['newsletter'], '{"newsletter": true, "language": "en"}')
               RETURNING customer_id""",
            (f"ada.lovelace.{stamp}@example.com",),
        )
        customer_id = cur.fetchone()[0]
        changes.append(Change("customers", f"customer_id={customer_id}", "insert", "new customer Ada Lovelace signs up"))
        cur.execute("SELECT product_id, price FROM products WHERE in_stock ORDER BY popularity_score DESC, product_id LIMIT 2")
        items = [(pid, price, qty) for (pid, price), qty in zip(cur.fetchall(), (1, 2), strict=True)]
        subtotal = sum(price * qty for _, price, qty in items)
        cur.execute(
            """INSERT INTO orders (order_uuid, customer_id, status, ordered_at, preferred_delivery_time, currency, item_count, subtotal,
                                   shipping_fee, total, is_gift, channel, shipping_address, client_ip)
               VALUES (gen_random_uuid(), %s, 'pending', now(), time '18:30', 'EUR', %s, %s, 4.95::numeric::money, %s + 4.95, false, 'web',
                       '{"line1": "12 St James''s Square", "city": "London", "postcode": "SW1Y4", "country": "GB"}', '203.0.113.7')
               RETURNING order_id""",
            (customer_id, len(items), subtotal, subtotal),
        )
        order_id = cur.fetchone()[0]
        changes.append(Change("orders", f"order_id={order_id}", "insert", f"her order, {len(items)} items, pending"))
        for line_no, (pid, price, qty) in enumerate(items, start=1):
            cur.execute(
                """INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_total)
                   VALUES (%s, %s, %s, %s, %s, %s)""",
                (order_id, line_no, pid, qty, price, price * qty),
            )
            changes.append(Change("order_items", f"order_id={order_id},line_no={line_no}", "insert", f"product {pid} x{qty}"))

    def order_status_changes(cur: Any) -> None:
        cur.execute("UPDATE orders SET status = 'paid' WHERE order_id = (SELECT min(order_id) FROM orders WHERE status = 'pending') "
                    "RETURNING order_id")
        changes.append(Change("orders", f"order_id={cur.fetchone()[0]}", "update", "pending -> paid"))
        cur.execute("""UPDATE orders SET status = 'delivered'
                       WHERE order_id = (SELECT min(o.order_id) FROM orders o JOIN shipments s USING (order_id) WHERE o.status = 'shipped')
                       RETURNING order_id""")
        order_id = cur.fetchone()[0]
        changes.append(Change("orders", f"order_id={order_id}", "update", "shipped -> delivered"))
        cur.execute("""UPDATE shipments SET delivered_at = localtimestamp(0), transit_time = localtimestamp(0) - shipped_at,
                              events = array_append(events, 'delivered')
                       WHERE order_id = %s RETURNING shipment_id""", (order_id,))
        for (shipment_id,) in cur.fetchall():
            changes.append(Change("shipments", f"shipment_id={shipment_id}", "update", f"order {order_id} delivered"))

    def price_change(cur: Any) -> None:
        cur.execute("""UPDATE products SET price = round(price * 0.9, 2), updated_at = now()
                       WHERE product_id = (SELECT product_id FROM products WHERE in_stock ORDER BY rating DESC NULLS LAST, product_id LIMIT 1)
                       RETURNING product_id, price""")
        product_id, price = cur.fetchone()
        changes.append(Change("products", f"product_id={product_id}", "update", f"price -10% -> {price}"))

    def purge_cancelled_order(cur: Any) -> None:
        cur.execute("""SELECT min(o.order_id) FROM orders o WHERE o.status = 'cancelled'
                       AND NOT EXISTS (SELECT 1 FROM shipments s WHERE s.order_id = o.order_id)""")
        order_id = cur.fetchone()[0]
        cur.execute("DELETE FROM order_items WHERE order_id = %s RETURNING line_no", (order_id,))
        for (line_no,) in sorted(cur.fetchall()):
            changes.append(Change("order_items", f"order_id={order_id},line_no={line_no}", "delete", "line of a purged order"))
        cur.execute("DELETE FROM orders WHERE order_id = %s", (order_id,))
        changes.append(Change("orders", f"order_id={order_id}", "delete", "cancelled order purged"))

    for story in (new_customer_and_order, order_status_changes, price_change, purge_cancelled_order):
        tx(story)
    return changes


def expected_counts(changes: list[Change]) -> dict[str, int]:
    """What the stream's counters must add up to: one count per changed row (every row is touched once)."""
    rows = {(c.table, c.key) for c in changes}
    if len(rows) != len(changes):
        raise AssertionError("a row is changed twice: the stream's counts would depend on the batching")
    counter = {"insert": "inserted", "update": "updated", "delete": "deleted"}
    return {op: sum(1 for c in changes if counter[c.op] == op) for op in OPS}


# ------------------------------------------------------------------------------------------- main


def say(message: str) -> None:
    print(f"demo_cdc: {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start the CDC stream, change the sample database and watch the changes reach the lake.")
    parser.add_argument("--config", required=True, help="pipeline YAML config, e.g. config/pipeline.yaml")
    parser.add_argument("--source", required=True, help="source name in the config, e.g. shop")
    parser.add_argument("--trigger-seconds", type=float, default=1.0, help="how often the stream looks for new events (default 1)")
    parser.add_argument("--start-timeout", type=float, default=300.0, help="seconds to wait for the stream to start (default 300)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the changes to arrive (default 180)")
    parser.add_argument("--stop-grace", type=float, default=60.0, help="seconds between SIGTERM and SIGKILL (default 60)")
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
        source = config.source(args.source)
    except PipelineError as exc:
        print(f"demo_cdc: {exc}", file=sys.stderr)
        return 2
    if source.type != "postgres" or source.cdc is None:
        print(f"demo_cdc: source {args.source!r} must be a postgres source with a cdc section", file=sys.stderr)
        return 2
    cmd = [sys.executable, str(STREAM_JOB), "--config", args.config, "--source", source.name, "--trigger-seconds", f"{args.trigger_seconds:g}"]
    say(f"starting the CDC stream: {' '.join(cmd[1:])}")
    stream = JobWatch(cmd, dict(os.environ, PYTHONUNBUFFERED="1"), echo_prefix=PREFIX, cwd=None)
    interrupted = False

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    code = 1
    try:
        code = run(args, source, stream)
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: stopping the stream")
        code = 130
    finally:
        say("stopping the stream (SIGTERM: it finishes the running applies)")
        exit_code, killed, seconds = stream.stop(args.stop_grace)
        if killed:
            say(f"the stream did not stop within {args.stop_grace:.0f} s of SIGTERM: killed (SIGKILL)")
            code = code or 1
        elif exit_code != 0:
            say(f"the stream exited with code {exit_code}; its last lines:\n{last_lines(stream)}")
            code = code or 1
        elif not interrupted:
            say(f"stream stopped in {seconds:.1f} s (exit 0)")
    return code


def run(args: argparse.Namespace, source: Any, stream: JobWatch) -> int:
    if not stream.wait_until(lambda s: s.ready_at is not None, args.start_timeout):
        why = "exited" if not stream.running() else f"did not log 'cdc stream ready' within {args.start_timeout:.0f} s"
        say(f"the CDC stream {why}; its last lines:\n{last_lines(stream)}")
        return 1
    if stream.batches:
        say(f"note: the stream applied {len(stream.batches)} batch(es) before the demo's changes: {totals(stream)}")
    before = totals(stream)
    batches_before = len(stream.batches)

    c = source.connection
    try:
        conn = psycopg2.connect(host=c.host, port=c.port, dbname=c.database, user=c.user, password=c.password,
                                application_name="demo_cdc", connect_timeout=10)
    except psycopg2.Error as exc:
        say(f"cannot connect to {c.user}@{c.host}:{c.port}/{c.database}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc}")
        return 1
    try:
        changes = make_changes(conn)
    except (psycopg2.Error, TypeError) as exc:  # TypeError: a row the stories need is missing (fetchone() is None)
        say(f"changing the sample database failed: {str(exc).strip() or type(exc).__name__} (is it the data of scripts/sample_db.py?)")
        return 1
    finally:
        conn.close()
    committed = time.time()
    expected = expected_counts(changes)
    say(f"changed {len(changes)} rows in {c.database} (4 transactions):")
    width = max(len(ch.table) for ch in changes)
    for ch in changes:
        print(f"    {ch.op:<6}  {ch.table:<{width}}  {ch.key:<30}  {ch.what}", flush=True)
    say("waiting for the stream to apply them: " + ", ".join(f"{op} {n}" for op, n in expected.items()))

    def arrived(s: JobWatch) -> bool:
        now = {op: totals(s)[op] - before[op] for op in OPS}
        return all(now[op] >= expected[op] for op in OPS)

    if not stream.wait_until(arrived, args.timeout):
        got = {op: totals(stream)[op] - before[op] for op in OPS}
        why = "the stream exited" if not stream.running() else f"not within {args.timeout:.0f} s"
        say(f"the changes did not arrive in the lake ({why}): applied {json.dumps(got)}, expected {json.dumps(expected)}; "
            f"the stream's last lines:\n{last_lines(stream)}")
        return 1
    with stream.changed:
        batches = [b for b in stream.batches[batches_before:] if any(b.get(op, 0) for op in OPS)]
    got = {op: totals(stream)[op] - before[op] for op in OPS}
    weight = sum(sum(b[op] for op in OPS) for b in batches)
    p50 = sum(b["p50"] * sum(b[op] for op in OPS) for b in batches) / weight if weight else 0.0
    p95 = max((b["p95"] for b in batches), default=0.0)
    seen = batches[-1]["at"] - committed if batches else 0.0
    say(f"changes arrived in the lake: inserted {got['inserted']} updated {got['updated']} deleted {got['deleted']} "
        f"in {len(batches)} table apply(s) ({', '.join(str(b.get('table') or b['batch']) for b in batches)}); "
        f"latency (source commit -> applied) p50 {p50:.1f}s p95 {p95:.1f}s; last apply logged {seen:.1f}s after the last commit")
    if any(got[op] > expected[op] for op in OPS):
        say(f"note: the stream applied more than the demo changed ({json.dumps(expected)}): another writer on {c.database}?")
    return 0


if __name__ == "__main__":
    sys.exit(main())
