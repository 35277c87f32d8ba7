"""A running stream adds a table created in its schema by itself, and reports a dropped one (cdc.auto_add_tables);
killed with ``kill -9`` while it copies one, the stream started again resumes that copy; an ``--available-now`` run
copies a new table and applies it in the same run.

Needs the local stack (`make up`): PostgreSQL, Kafka on 127.0.0.1:9092, Kafka Connect on :8083.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.cdc.loop.stream import CdcStream, StreamOptions
from lib.cdc.new_tables import STREAM_COPY_NOTE
from lib.dialects import get_dialect
from lib.status.store import StatusStore

from .busy_writer import change_busily
from .compare import assert_lake_equals_source
from .kafka_events import BOOTSTRAP, wait_until_captured
from .test_bulk_resume import kill_when
from .test_cdc_handoff import cdc_config, cdc_source
from .test_recopy_repair_crash import logged, start_job

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
        change_busily(src, stop_writer, writes, table=f"{s}.fresh", keys=2000, other=f"{s}.base", other_keys=50, seed=27,
                      setup=[f"CREATE TABLE {s}.fresh (id int PRIMARY KEY, v int NOT NULL, name text)",
                             f"INSERT INTO {s}.fresh SELECT g, 0, 'row ' || g FROM generate_series(1, 2000) g"])

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


def auto_add_config(src, **bulk):
    raw = cdc_config(src, **bulk)
    raw["sources"][src.name]["cdc"]["auto_add_interval_seconds"] = 1
    raw["kafka"] = {"bootstrap_servers": BOOTSTRAP}
    raw["stream"] = {"trigger_seconds": 0.2, "apply_threads": 2, "retry_backoff_seconds": 0.2}
    return raw


def caught_up_with(store, src, ends, *tables):
    """Whether each table's newest event is the stream's, at the end offsets ``ends`` of its topic."""
    latest = store.latest(src.name)
    for table in tables:
        event = latest.get((src.name, src.schema, table))
        offsets = json.loads(event.cdc_offsets or "{}") if event else {}
        if event is None or event.phase != "cdc" or any(offsets.get(str(p)) != end for (topic, p), end in ends.items()
                                                        if topic == f"{src.name}.{src.schema}.{table}"):
            return False
    return True


def test_kill_9_of_the_stream_while_it_copies_a_new_table_then_the_stream_again_resumes_that_copy_and_available_now_adds_one(
        spark, cdc_source, tmp_path, caplog):
    """A long-running stream (a process of its own) copies a new table in several chunks, a writer changing it from
    its creation on; the stream is killed (SIGKILL, its JVM too) once the first chunk is committed. Started again,
    the stream resumes its own copy after that chunk (the same load), then streams the table, which ends equal to
    its source value by value. Then an ``--available-now`` run (one look before it applies) copies a table created
    after the stream stopped, applies the changes made to it right after its copy in the same run, and reports a
    table dropped meanwhile. Every wait is on progress (the job's log, the status table, Kafka)."""
    src, s = cdc_source, f'"{cdc_source.schema}"'
    src.execute(f"""
        CREATE TABLE {s}._marker (token text PRIMARY KEY);
        CREATE TABLE {s}.base (id int PRIMARY KEY, v int NOT NULL);
        INSERT INTO {s}.base SELECT g, 0 FROM generate_series(1, 20) g;
        CREATE TABLE {s}.old (id int PRIMARY KEY);
        INSERT INTO {s}.old SELECT g FROM generate_series(1, 5) g;
    """)
    raw = auto_add_config(src, min_rows_to_split=100, rows_per_chunk=2000, partitions=1)  # fresh in 2 chunks, ~2 s each
    config_file, config = src.write_config(raw), src.load_config(raw)
    assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
    store = StatusStore(spark, src.lake_root)
    stop_writer, stop_stream, failed, writes = threading.Event(), threading.Event(), [], []

    def writer():  # the new table changed from its creation on: before, during and after the killed copy
        change_busily(src, stop_writer, writes, table=f"{s}.fresh", keys=3000, other=f"{s}.base", other_keys=20, pause=0.05, seed=11)

    fresh = f"{src.schema}.fresh"
    src.execute(f"CREATE TABLE {s}.fresh (id int PRIMARY KEY, v int NOT NULL, name text); "
                f"INSERT INTO {s}.fresh SELECT g, 0, 'row ' || g FROM generate_series(1, 3000) g")
    writing, stream_thread, stream_log = threading.Thread(target=writer), None, tmp_path / "stream.log"
    try:
        writing.start()
        first = start_job("cdc_stream.py", config_file, src.name, stream_log)  # its first look finds fresh
        kill_when(first, logged(stream_log, f"{fresh}: chunk 1/", "committed"))
        stop_writer.set()
        writing.join()
        killed = store.latest(src.name)[(src.name, src.schema, "fresh")]
        assert killed.phase == "bulk" and killed.state in ("pending", "running") and killed.note == STREAM_COPY_NOTE, killed
        assert logged(stream_log, f"new source table {fresh} found: copying it")()
        ends = wait_until_captured(src, src.name)

        with caplog.at_level(logging.INFO):  # the same command again (in this process)
            stream = CdcStream(spark, config, config.source(src.name), get_dialect("postgres"), StreamOptions())
            stream_thread = threading.Thread(target=lambda: failed.append(stream.run(stop_stream)))
            stream_thread.start()
            deadline = time.monotonic() + 120
            while not caught_up_with(store, src, ends, "fresh", "base"):
                assert time.monotonic() < deadline, "timed out waiting for the restarted stream to resume fresh and catch up"
                stop_stream.wait(0.3)  # the status table read again: progress, not a fixed delay
            lines = [r.getMessage() for r in caplog.records]
    finally:
        stop_writer.set()
        if writing.ident is not None:
            writing.join()
        stop_stream.set()
        if stream_thread is not None:
            stream_thread.join(timeout=120)
    assert failed == [0] and writes and writes[0] > 20
    assert any(m == f"source table {fresh}: the stream's copy of it was cut short: resuming it" for m in lines)
    assert any(f"{fresh}: resuming at chunk 2/" in m and killed.load_id in m for m in lines)  # after the chunk committed before the kill
    assert sum(f"{fresh} copied:" in m and "streaming it" in m for m in lines) == 1
    assert not any(f"new source table {fresh} found" in m for m in lines)
    completed = store.latest(src.name, phase="bulk")[(src.name, src.schema, "fresh")]
    assert completed.state == "completed" and completed.load_id == killed.load_id and completed.note is None
    copied = next(i for i, m in enumerate(lines) if f"{fresh} copied:" in m)
    assert any(f"[{fresh}]" in m and "cdc batch" in m for m in lines[copied:])  # streamed on top of the resumed copy
    assert assert_lake_equals_source(spark, src, "fresh", ["id"]) > 2000
    assert assert_lake_equals_source(spark, src, "base", ["id"]) == 20
    assert_available_now_adds_a_table(spark, src, config, store, caplog)


class OnMessage(logging.Handler):
    """Runs ``action`` once, in the logging thread, when a message holding ``text`` is emitted (a point in the run)."""

    def __init__(self, text, action):
        super().__init__(logging.INFO)
        self.text, self.action, self.done = text, action, False

    def emit(self, record):
        if not self.done and self.text in record.getMessage():
            self.done = True
            self.action()


def assert_available_now_adds_a_table(spark, src, config, store, caplog):
    """With cdc.auto_add_tables, ``--available-now`` looks once before it applies: a table created since the last
    run is copied, and the changes made to it right after its copy (in Kafka before the run reads the end offsets)
    are applied by the same run; a table dropped meanwhile is reported ``dropped``. The table ends equal to its source."""
    s = f'"{src.schema}"'
    src.execute(f"""
        CREATE TABLE {s}.later (id int PRIMARY KEY, v int NOT NULL, name text);
        INSERT INTO {s}.later SELECT g, g, 'row ' || g FROM generate_series(1, 500) g;
        DROP TABLE {s}.old;
        UPDATE {s}.base SET v = -1 WHERE id <= 5;
    """)
    later, ends = f"{src.schema}.later", {}

    def change_later():  # right after its copy, before the run's apply loop starts: these reach Kafka first
        src.execute(f"""
            UPDATE {s}.later SET v = -v, name = name || '!' WHERE id % 7 = 0;
            DELETE FROM {s}.later WHERE id % 11 = 0;
            INSERT INTO {s}.later SELECT g, 0, 'new' FROM generate_series(501, 560) g;
        """)
        ends.update(wait_until_captured(src, src.name))
    hook, auto_add_log = OnMessage(f"{later} copied:", change_later), logging.getLogger("lib.cdc.loop.auto_add")
    auto_add_log.addHandler(hook)
    caplog.clear()
    try:
        with caplog.at_level(logging.INFO):
            assert CdcStream(spark, config, config.source(src.name), get_dialect("postgres"), StreamOptions(available_now=True)).run() == 0
    finally:
        auto_add_log.removeHandler(hook)
    lines = [r.getMessage() for r in caplog.records]
    copied = next(i for i, m in enumerate(lines) if f"{later} copied:" in m)
    ready = next(i for i, m in enumerate(lines) if f"{later}: ready for CDC" in m)  # taken over by this run, after its copy
    assert any(m == f"new source table {later} found: copying it" for m in lines[:copied]) and copied < ready
    assert ends and caught_up_with(store, src, ends, "later", "base")  # ... and its later changes applied by it
    latest = store.latest(src.name)
    assert latest[(src.name, src.schema, "old")].state == "dropped"
    assert latest[(src.name, src.schema, "later")].cdc_inserted >= 60 and latest[(src.name, src.schema, "later")].cdc_deleted > 0
    assert assert_lake_equals_source(spark, src, "later", ["id"]) == 500 - 500 // 11 + 60
    assert assert_lake_equals_source(spark, src, "base", ["id"]) == 20
