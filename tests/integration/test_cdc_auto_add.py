"""A running stream adds a table created in its schema by itself, and reports a dropped one (cdc.auto_add_tables).

Needs the local stack (`make up`): PostgreSQL, Kafka on 127.0.0.1:9092, Kafka Connect on :8083.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.cdc.loop.stream import CdcStream, StreamOptions
from lib.dialects import get_dialect
from lib.status.store import StatusStore

from .compare import assert_lake_equals_source
from .kafka_events import BOOTSTRAP, wait_until_captured
from .test_cdc_handoff import cdc_config, cdc_source

assert cdc_source


def test_a_table_created_while_the_stream_runs_is_copied_and_streamed_and_a_dropped_one_is_reported(spark, cdc_source, caplog):
    """The stream runs throughout. A table created with rows while it runs, and changed right after (while it
    is being found and copied), reaches the lake by itself and ends equal to its source value by value; a
    table dropped at the source is reported ``dropped`` in the status table and its lake table stays.
    No sleeps: every wait is on progress (log lines, the status table, Kafka's end offsets)."""
    src, s = cdc_source, f'"{cdc_source.schema}"'
    src.execute(f"""
        CREATE TABLE {s}._marker (token text PRIMARY KEY);
        CREATE TABLE {s}.base (id int PRIMARY KEY, v int NOT NULL);
        INSERT INTO {s}.base SELECT g, 0 FROM generate_series(1, 50) g;
        CREATE TABLE {s}.old (id int PRIMARY KEY, name text);
        INSERT INTO {s}.old SELECT g, 'old ' || g FROM generate_series(1, 30) g;
    """)
    raw = cdc_config(src)
    raw["sources"][src.name]["cdc"]["auto_add_interval_seconds"] = 2
    raw["kafka"] = {"bootstrap_servers": BOOTSTRAP}
    raw["stream"] = {"trigger_seconds": 0.2, "apply_threads": 2, "retry_backoff_seconds": 0.2}
    config = src.load_config(raw)
    assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
    store = StatusStore(spark, src.lake_root)

    def newest(table):
        return store.latest(src.name).get((src.name, src.schema, table))

    stop_writer, stop_stream, failed, writes = threading.Event(), threading.Event(), [], []

    def wait_for(what, check, timeout=90.0):
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            stop_stream.wait(0.3)  # looked at again: progress, not a fixed delay

    def messages():
        return [r.getMessage() for r in list(caplog.records)]

    def writer():  # changes the new table from its creation on: before, during and after its copy
        rnd, conn = random.Random(27), src.connect()
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {s}.fresh (id int PRIMARY KEY, v int NOT NULL, name text)")
            cur.execute(f"INSERT INTO {s}.fresh SELECT g, 0, 'row ' || g FROM generate_series(1, 2000) g")
            n = 0
            while not stop_writer.is_set():
                n += 1
                cur.execute(f"UPDATE {s}.fresh SET v = v + 1, name = name || '+' WHERE id = %s", (rnd.randint(1, 2000),))
                cur.execute(f"INSERT INTO {s}.fresh VALUES (%s, 0, 'new')", (10000 + n,))
                if n % 4 == 0:
                    cur.execute(f"DELETE FROM {s}.fresh WHERE id IN (%s, %s)", (10000 + n - 2, rnd.randint(1, 2000)))
                if n % 10 == 0:
                    cur.execute(f"UPDATE {s}.base SET v = v + 1 WHERE id = %s", (rnd.randint(1, 50),))
                stop_writer.wait(0.02)
        writes.append(n)
        conn.close()

    def applied_after_copy():  # the stream's log: an apply of fresh after its copy completed
        lines = messages()
        done = [i for i, m in enumerate(lines) if f"{src.schema}.fresh copied:" in m]
        return bool(done) and any(f"[{src.schema}.fresh]" in m and "cdc batch" in m for m in lines[done[0]:])

    stream = CdcStream(spark, config, config.source(src.name), get_dialect("postgres"), StreamOptions())
    threads = [threading.Thread(target=lambda: failed.append(stream.run(stop_stream))), threading.Thread(target=writer)]
    with caplog.at_level(logging.INFO):
        try:
            threads[0].start()
            wait_for("the stream applying", lambda: any("cdc stream ready" in m for m in messages()))
            threads[1].start()
            wait_for("fresh copied and applied by the stream", applied_after_copy)
            stop_writer.set()
            threads[1].join()
            ends = wait_until_captured(src, src.name)

            def caught_up(table):
                event = newest(table)
                offsets = json.loads(event.cdc_offsets or "{}") if event else {}
                return event is not None and event.phase == "cdc" and all(
                    offsets.get(str(p)) == end for (topic, p), end in ends.items() if topic == f"{src.name}.{src.schema}.{table}")
            wait_for("the stream caught up", lambda: caught_up("fresh") and caught_up("base"))
            assert assert_lake_equals_source(spark, src, "fresh", ["id"]) > 2000
            assert assert_lake_equals_source(spark, src, "base", ["id"]) == 50

            src.execute(f"DROP TABLE {s}.old")
            wait_for("old reported dropped", lambda: newest("old").state == "dropped")
        finally:
            stop_writer.set()
            stop_stream.set()
            for thread in threads:
                if thread.ident is not None:
                    thread.join(timeout=120)
    assert failed == [0] and writes and writes[0] > 20
    dropped = newest("old")
    assert dropped.note and "kept" in dropped.note
    assert os.path.isdir(os.path.join(src.lake_path("old"), "_delta_log"))  # never deleted from the lake
    assert spark.read.format("delta").load(src.lake_path("old")).count() == 30
    lines = messages()
    assert any(m == f"new source table {src.schema}.fresh found: copying it" for m in lines)
    assert sum(f"{src.schema}.fresh copied:" in m and "streaming it" in m for m in lines) == 1
    assert any(f"source table {src.schema}.old dropped" in m for m in lines)
    assert newest("fresh").state != "failed" and newest("base").state != "failed"
