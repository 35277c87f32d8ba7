"""Fast paths are accelerators, never a new way to fail (lib/fallback.py): a fault injected into a
psycopg2 or delta-rs call of the bulk load's small-table path, the status store or the tombstone
appends hands that work to Spark before anything is committed, and the result is what Spark alone
gives: the same rows (read in the same snapshot), one commit, nothing half-written, each hand-over
said once without the values in the error text."""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from decimal import Decimal

import deltalake
import psycopg2
import psycopg2.extensions
import pytest

from lib.bulk import table_load
from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.cdc.loop.tombstone_buffer import TombstoneBuffer
from lib.cdc.plan import CHANGE, COMMIT, TOMBSTONE_DDL
from lib.dialects.postgres import snapshot_reader
from lib.lake.storage import ensure_delta_table
from lib.status.delta_rs_store import DeltaRsStatusStore, spark_took_over
from lib.status.factory import open_status_store
from lib.status.record import StatusEvent
from lib.status.store import StatusStore

from .compare import assert_lake_equals_rows, source_rows

SECRET_VALUE = "s3cr3t-value"
REAL_WRITE = deltalake.write_deltalake


def _commits(path: str) -> list[list[dict]]:
    """The actions of each commit of the local Delta table at ``path``, in version order."""
    out = []
    for name in sorted(glob.glob(os.path.join(path, "_delta_log", "*.json"))):
        with open(name, encoding="utf-8") as f:
            out.append([json.loads(line) for line in f if line.strip()])
    return out


def _engine(commit: list[dict]) -> str:
    info = str(next(a["commitInfo"] for a in commit if "commitInfo" in a))
    return "spark" if "Apache-Spark" in info else "delta-rs" if "delta-rs" in info else info


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _all_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def _create(source, ddl: str) -> dict[str, tuple[list[str], list[tuple]]]:
    """Create the tables of ``ddl`` ({s} = the schema); returns each table's columns and rows now."""
    source.execute(ddl.format(s=f'"{source.schema}"'))
    names = [r[0] for r in source.query("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (source.schema,))]
    return {n: source_rows(source, source.schema, n) for n in names}


def _status(spark, source) -> dict[str, StatusEvent]:
    return {k[2]: e for k, e in StatusStore(spark, source.lake_root).latest(source.name).items()}


def test_any_direct_read_error_hands_the_table_to_spark_in_the_same_snapshot(spark, source, monkeypatch, caplog):
    """The reader's connection killed mid-load (a real psycopg2 error; the next table's read opens a new
    connection that joins the snapshot again), a psycopg2 error while fetching, and a bug in the Arrow
    conversion: each of those tables is read by Spark in the load's snapshot (rows committed after it,
    at the moment of the fault, are in no lake table) and still committed by delta-rs."""
    s = f'"{source.schema}"'
    expected = _create(source, """
        CREATE TABLE {s}.a_killed (id int PRIMARY KEY, t text); INSERT INTO {s}.a_killed SELECT g, 'k' || g FROM generate_series(1, 5) g;
        CREATE TABLE {s}.b_mid_read (id int PRIMARY KEY, d date); INSERT INTO {s}.b_mid_read VALUES (1, '2024-02-29'), (2, NULL);
        CREATE TABLE {s}.c_arrow_bug (id int PRIMARY KEY, bug_col numeric(10,2)); INSERT INTO {s}.c_arrow_bug VALUES (1, 1.5), (2, -0.01);
        CREATE TABLE {s}.d_plain (id int PRIMARY KEY, t text); INSERT INTO {s}.d_plain VALUES (1, 'x');
    """)
    faults: dict[str, bool] = {}

    class FaultyCursor(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):
            text = query if isinstance(query, str) else query.decode()
            if '"a_killed"' in text and not faults.get("killed"):
                faults["killed"] = True
                # committed after the load's snapshot, while the load runs: no reader may see them
                source.execute(f"INSERT INTO {s}.a_killed VALUES (99, 'late'); INSERT INTO {s}.d_plain VALUES (99, 'late')")
                pid = self.connection.info.backend_pid
                source.execute("SELECT pg_terminate_backend(%s)", (pid,), superuser=True)
                deadline = time.monotonic() + 10
                while source.query("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))[0][0] and time.monotonic() < deadline:
                    time.sleep(0.05)
            return super().execute(query, vars)

        def fetchall(self):
            if b'"b_mid_read"' in (self.query or b"") and not faults.get("mid_read"):
                faults["mid_read"] = True
                source.execute(f"INSERT INTO {s}.b_mid_read VALUES (99, '2099-01-01')")
                raise psycopg2.OperationalError(f'could not receive data from server: "{SECRET_VALUE}"')
            return super().fetchall()

    real_connect, real_rows_to_arrow = snapshot_reader.connect, table_load.rows_to_arrow

    def faulty_connect(*args, **kwargs):
        db = real_connect(*args, **kwargs)
        db.cursor_factory = FaultyCursor
        return db

    def buggy_rows_to_arrow(rows, reads, *args, **kwargs):
        if any(r.name == "bug_col" for r in reads):
            raise ZeroDivisionError(f"a bug near '{SECRET_VALUE}'")
        return real_rows_to_arrow(rows, reads, *args, **kwargs)

    monkeypatch.setattr(snapshot_reader, "connect", faulty_connect)
    monkeypatch.setattr(table_load, "rows_to_arrow", buggy_rows_to_arrow)
    config = source.load_config(source.config_dict(cdc=False, parallel_small_tables=1))  # one table after the other, by name
    with caplog.at_level(logging.DEBUG, logger="bulk"):
        assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0
    assert faults == {"killed": True, "mid_read": True}

    for table, (columns, rows) in expected.items():  # the rows of the snapshot: none of the late ones
        assert assert_lake_equals_rows(spark, source.lake_path(table), columns, rows, ["id"], table=table) == len(rows)
        assert [_engine(c) for c in _commits(source.lake_path(table))] == ["delta-rs"], table  # still committed by delta-rs
    assert {t: (e.state, e.row_count) for t, e in _status(spark, source).items()} == {t: ("completed", len(r)) for t, (_, r) in expected.items()}

    warnings = _warnings(caplog)
    for table, error in (("a_killed", "SourceError"), ("b_mid_read", "SourceError"), ("c_arrow_bug", "ZeroDivisionError")):
        said = [w for w in warnings if w.startswith(f"{source.schema}.{table}: read by Spark (the direct reader failed: {error}")]
        assert len(said) == 1, (table, warnings)
    assert len(warnings) == 3, warnings
    messages = _all_messages(caplog)
    assert not any(SECRET_VALUE in m for m in messages)
    # the connection killed under a_killed: d_plain, later, is read directly on a new one, in the same snapshot
    killed = next(i for i, m in enumerate(messages) if ".a_killed: read by Spark" in m)
    plain = next(i for i, m in enumerate(messages) if m.endswith(".d_plain: read directly, 1 rows"))
    assert plain > killed


def test_any_delta_rs_write_error_hands_the_table_to_sparks_writer_once(spark, source, monkeypatch, caplog):
    """delta-rs fails after writing a data file (before its commit): what it left is removed and Spark
    reads and writes the table; delta-rs fails after its commit landed: the table counts as written, once;
    Spark's own write fails after its commit and is retried: the retry finds the commit (the load id's
    Delta txn) and writes nothing again. Every table ends with exactly one commit and the source's rows."""
    expected = _create(source, """
        CREATE TABLE {s}.e_half (id int PRIMARY KEY, t text); INSERT INTO {s}.e_half SELECT g, 'h' || g FROM generate_series(1, 7) g;
        CREATE TABLE {s}.f_landed (id int PRIMARY KEY, t text); INSERT INTO {s}.f_landed SELECT g, 'l' || g FROM generate_series(1, 4) g;
        CREATE TABLE {s}.g_retried (id int PRIMARY KEY, n numeric(6,2)); INSERT INTO {s}.g_retried VALUES (1, 1.25), (2, NULL), (3, -9.99);
        CREATE TABLE {s}.h_plain (id int PRIMARY KEY, t text); INSERT INTO {s}.h_plain VALUES (1, 'x');
    """)
    faults: dict[str, int] = {}

    def faulty_write(table_path, data, **kwargs):
        name = os.path.basename(str(table_path).rstrip("/"))
        if name == "e_half":
            faults[name] = faults.get(name, 0) + 1
            os.makedirs(os.path.join(table_path, "_delta_log"), exist_ok=True)
            with open(os.path.join(table_path, "part-00001-half-written.snappy.parquet"), "wb") as f:
                f.write(b"PAR1")
            with open(os.path.join(table_path, "_delta_log", "_commit_half-written.json.tmp"), "w") as f:
                f.write("{}")
            raise OSError(f"No space left on device while writing '{SECRET_VALUE}'")
        if name == "f_landed":
            faults[name] = faults.get(name, 0) + 1
            REAL_WRITE(table_path, data, **kwargs)
            raise RuntimeError(f"post-commit hook failed near '{SECRET_VALUE}'")
        if name == "g_retried":
            faults[name] = faults.get(name, 0) + 1
            raise RuntimeError("Generic error: the delta-rs writer refused")
        return REAL_WRITE(table_path, data, **kwargs)  # the other tables, and the status table

    real_write_chunk = table_load.write_chunk

    def write_chunk_failing_after_commit(df, path, fmt, load_id, chunk):
        rows = real_write_chunk(df, path, fmt, load_id, chunk)
        if path.endswith("/g_retried") and not faults.get("spark_failed"):
            faults["spark_failed"] = 1
            raise OSError("connection reset after the commit")  # a passing error: the chunk is retried
        return rows

    monkeypatch.setattr(deltalake, "write_deltalake", faulty_write)
    monkeypatch.setattr(table_load, "write_chunk", write_chunk_failing_after_commit)
    with caplog.at_level(logging.DEBUG, logger="bulk"):
        assert run_bulk_load(spark, source.load_config(cdc=False), source.name, BulkOptions()) == 0
    assert faults == {"e_half": 1, "f_landed": 1, "g_retried": 1, "spark_failed": 1}  # delta-rs is not tried again for a table

    status = _status(spark, source)
    engines = {"e_half": ["spark"], "f_landed": ["delta-rs"], "g_retried": ["spark"], "h_plain": ["delta-rs"]}
    for table, (columns, rows) in expected.items():
        path = source.lake_path(table)
        assert assert_lake_equals_rows(spark, path, columns, rows, ["id"], table=table) == len(rows)
        commits = _commits(path)
        assert [_engine(c) for c in commits] == engines[table], table
        assert [(a["txn"]["appId"], a["txn"]["version"]) for a in commits[0] if "txn" in a] == [(status[table].load_id, 0)], table
        assert (status[table].state, status[table].row_count) == ("completed", len(rows)), table
    leftovers = glob.glob(os.path.join(source.lake_path("e_half"), "**", "*half-written*"), recursive=True)
    assert leftovers == []

    warnings = _warnings(caplog)
    assert len([w for w in warnings if "e_half: read and written by Spark (the delta-rs path failed: OSError" in w]) == 1, warnings
    assert len([w for w in warnings if "g_retried: read and written by Spark (the delta-rs path failed: RuntimeError" in w]) == 1, warnings
    assert len([w for w in warnings if "f_landed: delta-rs failed after its commit landed (RuntimeError" in w]) == 1, warnings
    assert not any(SECRET_VALUE in m for m in _all_messages(caplog))


def _event(table: str, source: str = "shop", **kw) -> StatusEvent:
    return StatusEvent(source, "public", table, "bulk", "pending", f"/lake/{source}/public/{table}", **kw)


def test_a_failed_status_append_is_made_by_spark_which_keeps_the_table_for_the_process(spark, tmp_path, monkeypatch, caplog):
    root = str(tmp_path / "lake")
    store = open_status_store(spark, root)
    assert type(store) is DeltaRsStatusStore
    store.ensure()
    planned = _event("orders", plan='{"chunks": 1}')
    store.append(planned)

    def fail(*args, **kwargs):
        raise OSError(f"Generic LocalFileSystem error: '{SECRET_VALUE}'")

    monkeypatch.setattr(deltalake, "write_deltalake", fail)
    running = planned.next(state="running")
    with caplog.at_level(logging.DEBUG, logger="lib.status.delta_rs_store"):
        store.append(running, _event("lines", source="crm"))  # made by Spark
        monkeypatch.setattr(deltalake, "write_deltalake", REAL_WRITE)
        done = running.next(state="completed", row_count=3)
        store.append(done)  # delta-rs would work again: Spark keeps the table for the rest of the process
    assert [_engine(c) for c in _commits(store.path)] == ["delta-rs", "delta-rs", "spark", "spark"]
    key = ("shop", "public", "orders")
    assert StatusStore(spark, root).latest("shop") == store.latest("shop") == {key: done}
    assert list(store.latest("crm")) == [("crm", "public", "lines")]
    assert type(open_status_store(spark, root)) is StatusStore  # the next store of this process too
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "delta-rs append failed (OSError" in warnings[0] and SECRET_VALUE not in warnings[0]
    assert spark_took_over(store.path) is not None


@pytest.mark.parametrize("operation", ["ensure", "latest", "delete_source"])
def test_a_failed_status_creation_read_or_delete_is_made_by_spark(spark, tmp_path, monkeypatch, operation):
    store = DeltaRsStatusStore(spark, str(tmp_path / "lake"))
    events = [_event("orders"), _event("lines", source="crm")]
    if operation != "ensure":
        store.append(*events)

    def fail(*args, **kwargs):
        raise RuntimeError("Kernel error: Generic delta kernel error")

    target = {"ensure": "create", "latest": "to_pyarrow_dataset", "delete_source": "delete"}[operation]
    monkeypatch.setattr(deltalake.DeltaTable, target, fail)
    if operation == "ensure":
        store.ensure()
        assert [_engine(c) for c in _commits(store.path)] == ["spark"]  # Spark created it
        store.append(*events)  # and keeps it
        assert [_engine(c) for c in _commits(store.path)] == ["spark", "spark"]
    elif operation == "latest":
        assert store.latest("shop") == {events[0].key: events[0]}
    else:
        store.delete_source("crm")
        assert _engine(_commits(store.path)[-1]) == "spark"
    monkeypatch.undo()
    assert spark_took_over(store.path) is not None
    expected = [events[0]] if operation == "delete_source" else events
    assert StatusStore(spark, str(tmp_path / "lake")).latest() == {e.key: e for e in expected}


def test_a_status_table_whose_protocol_delta_rs_cannot_read_stays_with_spark(spark, tmp_path, monkeypatch, caplog):
    root = str(tmp_path / "lake")
    StatusStore(spark, root).ensure()

    def fail(self):
        raise RuntimeError(f"Invalid JSON in log record '{SECRET_VALUE}'")

    monkeypatch.setattr(deltalake.DeltaTable, "protocol", fail)
    with caplog.at_level(logging.DEBUG, logger="lib.lake.local_writer"):
        store = open_status_store(spark, root)
    assert type(store) is StatusStore
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "status table written by Spark" in warnings[0] and "could not read its protocol" in warnings[0]
    assert SECRET_VALUE not in warnings[0]
    store.append(_event("orders"))
    assert list(store.latest("shop")) == [("shop", "public", "orders")]


def test_a_failed_tombstone_append_by_delta_rs_is_made_by_spark(spark, tmp_path, monkeypatch, caplog):
    path = str(tmp_path / "lake" / "_pipeline" / "tombstones" / "shop")
    ensure_delta_table(spark, path, TOMBSTONE_DDL)
    buffer = TombstoneBuffer(path, delta_rs=True)
    first = [("public", "orders", '{"id":1}', Decimal(123456789012345678901234567890), Decimal(7)),
             ("public", "Order Lines", '{"id":"it\'s"}', Decimal(1), Decimal(0))]
    buffer.add("public", "orders", first[:1])
    buffer.add("public", "Order Lines", first[1:])

    def fail(*args, **kwargs):
        raise OSError(f"Generic LocalFileSystem error: '{SECRET_VALUE}'")

    monkeypatch.setattr(deltalake, "write_deltalake", fail)
    with caplog.at_level(logging.DEBUG, logger="lib.cdc.loop.tombstone_buffer"):
        assert buffer.flush(spark) == 2
        monkeypatch.setattr(deltalake, "write_deltalake", REAL_WRITE)
        later = [("public", "orders", '{"id":2}', Decimal(124), Decimal(0))]
        buffer.add("public", "orders", later)
        assert buffer.flush(spark) == 1  # Spark from now on: this buffer's writer switched
    assert len(buffer) == 0 and not buffer.delta_rs
    assert [_engine(c) for c in _commits(path)] == ["spark", "spark", "spark"]  # created, then the two appends
    got = sorted((r["schema"], r["table"], r["key"], r[COMMIT], r[CHANGE]) for r in spark.read.format("delta").load(path).collect())
    assert got == sorted(first + later)
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "tombstones: the delta-rs append failed (OSError" in warnings[0] and SECRET_VALUE not in warnings[0]
