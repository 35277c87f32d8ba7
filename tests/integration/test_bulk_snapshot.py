"""Snapshot handoff: the copy is consistent with one position, and the slot holds exactly the changes after it.

pgoutput messages are read back with pg_logical_slot_peek_binary_changes; the first byte of each
message is its kind: I(nsert), U(pdate), D(elete), B(egin), C(ommit), R(elation).
"""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.dialects.postgres import PostgresDialect
from lib.status.store import StatusStore

from .compare import assert_lake_equals_rows, source_rows


def slot_message_kinds(source, slot: str, publication: str) -> Counter:
    rows = source.query(
        "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, 'proto_version', '1', 'publication_names', %s)",
        (slot, publication),
    )
    return Counter(chr(bytes(r[0])[0]) for r in rows)


def test_changes_after_the_snapshot_are_streamed_not_copied(spark, source, monkeypatch):
    s = f'"{source.schema}"'
    source.execute(f"""
        CREATE TABLE {s}.accounts (id int PRIMARY KEY, balance numeric(12,2), note text);
        INSERT INTO {s}.accounts SELECT g, g * 10, 'n' || g FROM generate_series(1, 5000) g;
    """)
    before = source_rows(source, source.schema, "accounts")
    real_open = PostgresDialect.open_snapshot

    @contextmanager
    def open_then_write(conn, cdc, tables):
        with real_open(conn, cdc, tables) as snap:
            # committed after the snapshot was taken and before any chunk is read
            source.execute(f"INSERT INTO {s}.accounts SELECT g, 0, 'new' FROM generate_series(5001, 5010) g")
            source.execute(f"UPDATE {s}.accounts SET balance = -1 WHERE id <= 7")
            source.execute(f"DELETE FROM {s}.accounts WHERE id BETWEEN 4000 AND 4002")
            yield snap

    monkeypatch.setattr(PostgresDialect, "open_snapshot", staticmethod(open_then_write))
    config = source.load_config(min_rows_to_split=100, rows_per_chunk=1000, partitions=2)
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0

    # the lake holds the table exactly as it was at the snapshot ...
    assert assert_lake_equals_rows(spark, source.lake_path("accounts"), *before, key=["id"]) == 5000
    # ... and the slot holds exactly the changes made after it: nothing lost, nothing seen twice
    kinds = slot_message_kinds(source, f"slot_{source.name}", f"pub_{source.name}")
    assert (kinds["I"], kinds["U"], kinds["D"]) == (10, 7, 3)
    status = StatusStore(spark, source.lake_root).latest(source.name)[(source.name, source.schema, "accounts")]
    slot_lsn = source.query("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s", (f"slot_{source.name}",))[0][0]
    assert status.snapshot_position == slot_lsn and status.snapshot_method == "replication-slot"


def test_concurrent_writes_never_split_a_transaction(spark, source):
    """A writer commits transactions touching both ends of two multi-chunk tables while the load runs.
    A consistent copy sees each transaction entirely or not at all, and the slot has the rest."""
    s = f'"{source.schema}"'
    source.execute(f"""
        CREATE TABLE {s}.left_side (id int PRIMARY KEY, v int NOT NULL DEFAULT 0, pad text);
        CREATE TABLE {s}.right_side (id int PRIMARY KEY, v int NOT NULL DEFAULT 0, pad text);
        INSERT INTO {s}.left_side SELECT g, 0, repeat('x', 50) FROM generate_series(1, 6000) g;
        INSERT INTO {s}.right_side SELECT g, 0, repeat('y', 50) FROM generate_series(1, 6000) g;
    """)
    stop = threading.Event()
    committed = []

    def writer():
        conn = source.connect()
        conn.autocommit = False
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute(f"UPDATE {s}.left_side SET v = v + 1 WHERE id IN (1, 6000)")
                cur.execute(f"UPDATE {s}.right_side SET v = v + 1 WHERE id IN (1, 6000)")
                conn.commit()
                committed.append(1)
                stop.wait(0.02)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        config = source.load_config(min_rows_to_split=100, rows_per_chunk=1000, partitions=2, parallel_tables=2)
        assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0
    finally:
        stop.set()
        thread.join()

    values = set()
    for table in ("left_side", "right_side"):
        df = spark.read.format("delta").load(source.lake_path(table))
        assert df.count() == 6000
        values |= {r["v"] for r in df.where("id IN (1, 6000)").collect()}
    assert len(values) == 1, f"the copy mixes states of different transactions: {values}"
    seen = values.pop()
    total = len(committed)
    assert total > seen, "the writer should still have been committing after the snapshot"
    kinds = slot_message_kinds(source, f"slot_{source.name}", f"pub_{source.name}")
    assert kinds["U"] == 4 * (total - seen), f"{total} transactions, {seen} in the copy, {kinds['U']} updates streamed"
