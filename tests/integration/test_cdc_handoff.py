"""The bulk load hands off to a running Debezium connector at exactly its snapshot position.

Needs the local stack (`make up`): PostgreSQL, Kafka on 127.0.0.1:9092, Kafka Connect on :8083.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time

import pytest

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.cdc.loop.stream import CdcStream, StreamOptions
from lib.debezium.connect_client import ConnectClient
from lib.dialects import get_dialect
from lib.dialects.postgres.sql import lsn_to_int
from lib.errors import ConfigError
from lib.status.store import StatusStore

from .busy_writer import change_busily
from .compare import assert_lake_equals_source
from .conftest import PG, ROOT, job_env
from .kafka_events import BOOTSTRAP, read_events, wait_until_captured
from .test_cdc_decode import cleanup

CONNECT = f"http://127.0.0.1:{os.environ.get('CONNECT_PORT', '8083')}"


@pytest.fixture
def cdc_source(source):
    yield source
    cleanup(source)  # the connector deleted, its slot released and dropped (the test database is dropped at the end)


def cdc_config(source, **bulk):
    raw = source.config_dict(**bulk)
    raw["sources"][source.name]["cdc"]["connect_url"] = CONNECT
    raw["sources"][source.name]["cdc"]["topic_prefix"] = source.name
    # the Connect worker of `make up` gets the loader's password as SHOP_DB_PASSWORD
    raw["sources"][source.name]["cdc"]["password_reference"] = "${env:SHOP_DB_PASSWORD}"
    return raw


def slots_of(source):
    return source.query("SELECT slot_name, active FROM pg_replication_slots WHERE slot_name LIKE %s", (f"slot_{source.name}%",))


def test_connector_streams_exactly_the_changes_after_the_snapshot(spark, cdc_source, tmp_path):
    src, s = cdc_source, f'"{cdc_source.schema}"'
    src.execute(f"""
        CREATE TABLE {s}.items (id int PRIMARY KEY, price numeric(10,2), name text);
        INSERT INTO {s}.items SELECT g, g * 1.5, 'item ' || g FROM generate_series(1, 300) g;
        CREATE TABLE {s}.audit_log (msg text);
        INSERT INTO {s}.audit_log VALUES ('before');
    """)
    config_file = tmp_path / "debezium.json"
    config = src.load_config(cdc_config(src))
    assert run_bulk_load(spark, config, src.name, BulkOptions(connector_config_path=config_file)) == 0

    connector = ConnectClient(CONNECT).status(f"lakehouse-{src.name}")
    assert connector["connector"]["state"] == "RUNNING" and [t["state"] for t in connector["tasks"]] == ["RUNNING"]
    document = json.loads(config_file.read_text())
    assert document["config"]["table.include.list"] == f"{src.schema}\\.items"  # the keyless table is not streamed
    assert document["config"]["database.password"] == "${env:SHOP_DB_PASSWORD}"
    status = {k[2]: v for k, v in StatusStore(spark, src.lake_root).latest(src.name).items()}
    assert "no primary key" in status["audit_log"].note and status["audit_log"].state == "completed"
    handoff = lsn_to_int(status["items"].snapshot_position)

    src.execute(f"INSERT INTO {s}.items VALUES (301, 9.99, 'new'), (302, 1.00, 'newer')")
    src.execute(f"UPDATE {s}.items SET price = 0 WHERE id IN (1, 2, 3)")
    src.execute(f"DELETE FROM {s}.items WHERE id = 300")
    src.execute(f"INSERT INTO {s}.audit_log VALUES ('after')")  # keyless: UPDATE/DELETE still work, nothing streamed
    src.execute(f"UPDATE {s}.audit_log SET msg = 'changed'")

    events = read_events(src.name, expected=6)
    assert {e["topic"] for e in events} == {f"{src.name}.{src.schema}.items"}
    got = sorted((e["op"], (e["after"] or e["before"])["id"]) for e in events)
    assert got == [("c", 301), ("c", 302), ("d", 300), ("u", 1), ("u", 2), ("u", 3)]
    assert all(e["lsn"] > handoff and e["snapshot"] == "false" for e in events)
    assert next(e for e in events if e["op"] == "u")["after"]["price"] == "0.00"  # decimals as exact strings


def test_changes_during_the_load_are_in_the_copy_or_on_the_topic_never_both(spark, cdc_source):
    src, s = cdc_source, f'"{cdc_source.schema}"'
    src.execute(f"""
        CREATE TABLE {s}.counters (id int PRIMARY KEY, v int NOT NULL, pad text);
        INSERT INTO {s}.counters SELECT g, 0, repeat('p', 40) FROM generate_series(1, 8000) g;
    """)
    stop, inserted = threading.Event(), []

    def writer():
        conn = src.connect()
        with conn.cursor() as cur:
            n = 0
            while not stop.is_set():
                n += 1
                cur.execute(f"INSERT INTO {s}.counters VALUES (%s, 0, 'w')", (100000 + n,))
                cur.execute(f"UPDATE {s}.counters SET v = v + 1 WHERE id = 8000")
                inserted.append(100000 + n)
                stop.wait(0.01)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        config = src.load_config(cdc_config(src, min_rows_to_split=100, rows_per_chunk=2000, partitions=2))
        assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
    finally:
        stop.set()
        thread.join()

    lake = spark.read.format("delta").load(src.lake_path("counters"))
    lake_new = {r["id"] for r in lake.where("id > 100000").collect()}
    v_in_copy = lake.where("id = 8000").collect()[0]["v"]
    total = len(inserted)
    events = read_events(src.name, expected=2 * (total - len(lake_new)))
    created = {e["after"]["id"] for e in events if e["op"] == "c"}
    updates = [e for e in events if e["op"] == "u"]
    assert created | lake_new == set(inserted), "a change was lost at the handoff"
    assert not created & lake_new, "a change is both in the copy and on the topic"
    assert len(updates) == total - v_in_copy and sorted(e["after"]["v"] for e in updates) == list(range(v_in_copy + 1, total + 1))


def test_reruns_keep_one_healthy_connector_and_no_orphaned_slots(spark, cdc_source, tmp_path):
    src, s = cdc_source, f'"{cdc_source.schema}"'
    src.execute(f"CREATE TABLE {s}.t (id int PRIMARY KEY, v text); INSERT INTO {s}.t VALUES (1, 'a'), (2, 'b')")
    config = src.load_config(cdc_config(src))
    client = ConnectClient(CONNECT)
    name = f"lakehouse-{src.name}"
    assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
    first_slot = src.query("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = %s", (f"slot_{src.name}",))
    assert run_bulk_load(spark, config, src.name, BulkOptions(resume=False)) == 0  # temporary slot for the new snapshot
    assert client.status(name)["connector"]["state"] == "RUNNING"
    assert [row[0] for row in slots_of(src)] == [f"slot_{src.name}"], "the temporary slot must be gone"

    assert run_bulk_load(spark, config, src.name, BulkOptions(fresh_start=True)) == 0
    assert client.status(name)["connector"]["state"] == "RUNNING"
    assert [row[0] for row in slots_of(src)] == [f"slot_{src.name}"]
    assert src.query("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = %s", (f"slot_{src.name}",)) != first_slot
    names = [c for c in json.loads(subprocess.run(["curl", "-s", f"{CONNECT}/connectors"], capture_output=True, text=True).stdout) if c == name]
    assert names == [name]

    # the operational command shows it, then removes connector, slot and publication
    config_path = src.write_config(cdc_config(src))
    run = lambda *a: subprocess.run([sys.executable, str(ROOT / "jobs" / "cdc_connector.py"), "--config", str(config_path), "--source", src.name, *a],  # noqa: E731
                                    env=job_env(), capture_output=True, text=True, timeout=120)
    shown = run("status")
    assert shown.returncode == 0, shown.stderr
    assert f"connector {name}: RUNNING" in shown.stdout and f"slot slot_{src.name}: active" in shown.stdout
    assert json.loads(run("status", "--json").stdout)["published_tables"] == 1
    assert run("drop").returncode == 2  # needs --yes
    dropped = run("drop", "--yes")
    assert dropped.returncode == 0, dropped.stderr
    assert f"deleted connector {name}" in dropped.stdout and f"dropped replication slot slot_{src.name}" in dropped.stdout
    assert client.status(name) is None and slots_of(src) == []
    assert src.query("SELECT count(*) FROM pg_publication WHERE pubname = %s", (f"pub_{src.name}",))[0][0] == 0
    assert run("drop", "--yes").stdout.strip() == "nothing to drop"


def test_a_connector_config_error_stops_the_load_before_any_copy(spark, cdc_source):
    """The connector config is built before the snapshot: a literal password without cdc.password_reference
    is a config error naming that key, with no slot taken and nothing written to the lake."""
    cdc_source.execute(f'CREATE TABLE "{cdc_source.schema}".t (id int PRIMARY KEY); INSERT INTO "{cdc_source.schema}".t VALUES (1)')
    raw = cdc_config(cdc_source)
    del raw["sources"][cdc_source.name]["cdc"]["password_reference"]
    raw["sources"][cdc_source.name]["connection"]["password"] = PG["password"]  # not a ${VAR}: the connector would carry it
    config = cdc_source.load_config(raw)
    with pytest.raises(ConfigError) as raised:
        run_bulk_load(spark, config, cdc_source.name, BulkOptions(connector_config_path=None))
    assert str(raised.value).startswith(f"sources.{cdc_source.name}.cdc.password_reference: is required"), str(raised.value)
    assert PG["password"] not in str(raised.value)
    assert not os.path.exists(cdc_source.lake_root)
    assert not cdc_source.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (f"slot_{cdc_source.name}",))


def test_a_busy_table_copied_again_while_the_stream_runs_ends_equal_to_its_source(spark, cdc_source, caplog):
    """A long-running stream applies a busy table and a quiet one while a writer changes both; the busy
    table is copied again (``--tables <it> --no-resume``) in several chunks meanwhile. The stream holds
    that table (and acknowledges it, so the copy overwrites nothing it still applies), goes on with the
    other, takes the table over from its new copy's snapshot and offsets, and every change ends in the
    lake exactly once: both tables equal their source value by value. No sleeps: it waits on progress."""
    src, s = cdc_source, f'"{cdc_source.schema}"'
    src.execute(f"""
        CREATE TABLE {s}._marker (token text PRIMARY KEY);
        CREATE TABLE {s}.busy (id int PRIMARY KEY, v int NOT NULL, name text);
        INSERT INTO {s}.busy SELECT g, 0, 'row ' || g FROM generate_series(1, 1200) g;
        CREATE TABLE {s}.quiet (id int PRIMARY KEY, v int NOT NULL);
        INSERT INTO {s}.quiet SELECT g, 0 FROM generate_series(1, 20) g;
    """)
    raw = cdc_config(src, min_rows_to_split=100, rows_per_chunk=400, partitions=2)
    raw["kafka"] = {"bootstrap_servers": BOOTSTRAP}
    raw["stream"] = {"trigger_seconds": 0.2, "max_offsets_per_trigger": 2000, "apply_threads": 2, "retry_backoff_seconds": 0.2}
    config = src.load_config(raw)
    assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
    store = StatusStore(spark, src.lake_root)

    def newest(table):
        return store.latest(src.name)[(src.name, src.schema, table)]

    def wait_for(what, check, timeout=90.0):
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            stop_writer.wait(0.3)  # the status table is read again: progress, not a fixed delay

    stop_writer, stop_stream, failed, writes = threading.Event(), threading.Event(), [], []

    def writer():
        change_busily(src, stop_writer, writes, table=f"{s}.busy", keys=1200, other=f"{s}.quiet", other_keys=20, seed=27)

    def messages():
        return [r.getMessage() for r in list(caplog.records)]

    def applied_after_resume():  # the stream's log, read as it runs: an apply of busy after it resumed from the new copy
        lines = messages()
        starts = [i for i, m in enumerate(lines) if "resumes from its new copy" in m]
        return bool(starts) and any(f"[{src.schema}.busy]" in m and "cdc batch" in m for m in lines[starts[0]:])

    stream = CdcStream(spark, config, config.source(src.name), get_dialect("postgres"), StreamOptions())
    threads = [threading.Thread(target=writer), threading.Thread(target=lambda: failed.append(stream.run(stop_stream)))]
    with caplog.at_level(logging.INFO):
        try:
            for thread in threads:
                thread.start()
            wait_for("the stream applying busy", lambda: (newest("busy").cdc_inserted or 0) > 0)
            first_load = newest("busy").load_id
            assert run_bulk_load(spark, config, src.name, BulkOptions(tables=[f"{src.schema}.busy"], resume=False)) == 0
            new_load = store.latest(src.name, phase="bulk")[(src.name, src.schema, "busy")].load_id
            assert new_load != first_load
            # the stream applies busy's changes again, on top of the new copy, while the writer still runs
            wait_for("busy applied on its new copy", applied_after_resume)
            stop_writer.set()
            threads[0].join()
            ends = wait_until_captured(src, src.name)

            def caught_up(table):
                event = newest(table)
                offsets = json.loads(event.cdc_offsets or "{}")
                return event.phase == "cdc" and all(offsets.get(str(p)) == end for (topic, p), end in ends.items()
                                                    if topic == f"{src.name}.{src.schema}.{table}")
            wait_for("the stream caught up", lambda: caught_up("busy") and caught_up("quiet"))
        finally:
            stop_writer.set()
            stop_stream.set()
            for thread in threads:
                thread.join(timeout=120)
    assert failed == [0] and writes and writes[0] > 50
    lines = [r.getMessage() for r in caplog.records]
    held = [m for m in lines if "held for a re-copy" in m]
    resumed = [m for m in lines if "resumes from its new copy" in m]
    assert len(held) == 1 and "busy" in held[0] and new_load in held[0], held
    assert len(resumed) == 1 and "busy" in resumed[0] and new_load in resumed[0], resumed
    assert any("the running stream holds every table copied again" in m for m in lines)
    assert assert_lake_equals_source(spark, src, "busy", ["id"]) > 1200
    assert assert_lake_equals_source(spark, src, "quiet", ["id"]) == 20
