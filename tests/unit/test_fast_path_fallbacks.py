"""Fast paths are accelerators, never a new way to fail (lib/fallback.py): faults injected into delta-rs
and psycopg2 calls hand the work to the general path, leave nothing half-written, and are said once
without values. No JVM, no database: the Spark side is a recorder here; the integration twins
(tests/integration/test_fast_path_fallbacks.py) show Spark doing the work with the right result."""

from __future__ import annotations

import json
import logging
import os
from types import SimpleNamespace

import deltalake
import psycopg2
import psycopg2.extensions
import pyarrow as pa
import pytest

from lib.bulk import table_load
from lib.bulk.arrow_writer import commit_files, committed_by, write_with_delta_rs
from lib.bulk.direct_read import DirectReaderUnavailable, DirectReadUnsupported
from lib.dialects.base import ColumnRead
from lib.dialects.postgres import snapshot_reader
from lib.errors import SourceError
from lib.fallback import failure_text
from lib.status import delta_rs_store
from lib.status.delta_rs_store import DeltaRsStatusStore, spark_took_over
from lib.status.record import StatusEvent
from lib.status.store import StatusStore

SECRET_VALUE = "s3cr3t-value"
REAL_WRITE = deltalake.write_deltalake


def _event(table: str, **kw) -> StatusEvent:
    return StatusEvent("shop", "public", table, "bulk", "pending", f"/lake/shop/public/{table}", **kw)


def _data(rows: int = 3) -> pa.Table:
    return pa.table({"id": pa.array(range(rows), pa.int32()), "name": pa.array([f"n{i}" for i in range(rows)])})


def _messages(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_failure_text_is_one_line_without_quoted_values():
    exc = psycopg2.OperationalError(f'invalid input syntax for type integer: "{SECRET_VALUE}"\nDETAIL: row {SECRET_VALUE}')
    assert failure_text(exc) == "OperationalError: invalid input syntax for type integer: '…'"
    assert failure_text(RuntimeError()) == "RuntimeError: RuntimeError"


# --- the delta-rs small-table writer (lib/bulk/arrow_writer.py) ----------------------------------------


def _half_write_then_fail(table_path, data, **kwargs):
    """delta-rs wrote a data file and a commit attempt, then failed before its commit."""
    os.makedirs(os.path.join(table_path, "_delta_log"), exist_ok=True)
    with open(os.path.join(table_path, "part-00001-half.snappy.parquet"), "wb") as f:
        f.write(b"PAR1")
    with open(os.path.join(table_path, "_delta_log", "_commit_half.json.tmp"), "w") as f:
        f.write("{}")
    raise OSError(f"No space left on device writing '{SECRET_VALUE}'")


def test_a_failed_delta_rs_write_leaves_nothing_at_a_new_tables_path(tmp_path, monkeypatch):
    monkeypatch.setattr(deltalake, "write_deltalake", _half_write_then_fail)
    path = str(tmp_path / "lake" / "orders")
    with pytest.raises(OSError, match="No space left"):
        write_with_delta_rs(_data(), path, "load-1", {})
    assert not os.path.exists(path)  # the directory did not exist: removed whole

    existing = tmp_path / "lake" / "lines"  # a directory that was there before (no Delta table): only the new names go
    existing.mkdir(parents=True)
    (existing / "kept.txt").write_text("not ours to remove")
    with pytest.raises(OSError):
        write_with_delta_rs(_data(), str(existing), "load-2", {})
    assert sorted(os.listdir(existing)) == ["kept.txt"]


def test_a_failed_first_write_by_spark_after_a_hand_over_leaves_the_path_as_it_was(tmp_path):
    from lib.bulk.arrow_writer import without_leftovers

    path = tmp_path / "orders"

    def spark_write_failing_before_its_commit():
        (path / "_delta_log" / "_staged_commits").mkdir(parents=True)
        (path / "part-00000-abc-c000.snappy.parquet").write_bytes(b"PAR1")
        raise RuntimeError("[TASK_WRITE_FAILED] Task failed while writing rows")

    with pytest.raises(RuntimeError, match="TASK_WRITE_FAILED"):
        without_leftovers(str(path), spark_write_failing_before_its_commit)
    assert not path.exists()
    assert without_leftovers(f"file://{path}", lambda: REAL_WRITE(str(path), _data()) or 3) == 3  # a write that succeeds: as it was
    with pytest.raises(RuntimeError):  # a table with a commit: nothing is ever removed
        without_leftovers(str(path), lambda: (_ for _ in ()).throw(RuntimeError("later failure")))
    assert commit_files(str(path)) == [f"{0:020d}.json"]


def test_a_delta_rs_failure_after_its_commit_landed_counts_the_table_once(tmp_path, monkeypatch, caplog):
    def commit_then_fail(table_path, data, **kwargs):
        REAL_WRITE(table_path, data, **kwargs)
        raise RuntimeError(f"post-commit hook failed on '{SECRET_VALUE}'")

    monkeypatch.setattr(deltalake, "write_deltalake", commit_then_fail)
    path = str(tmp_path / "orders")
    with caplog.at_level(logging.WARNING, logger="bulk"):
        assert write_with_delta_rs(_data(3), path, "load-1", {}) == 3
    assert commit_files(path) == [f"{0:020d}.json"] and committed_by(path, "load-1") and not committed_by(path, "other")
    assert deltalake.DeltaTable(path).to_pyarrow_table().num_rows == 3
    warnings = _messages(caplog)
    assert len(warnings) == 1 and "delta-rs failed after its commit landed" in warnings[0] and SECRET_VALUE not in warnings[0]


def test_a_table_with_someone_elses_commit_is_never_cleaned(tmp_path, monkeypatch):
    path = str(tmp_path / "orders")

    def other_writer_won(table_path, data, **kwargs):
        REAL_WRITE(table_path, data)  # another writer's commit, without this load's id
        raise RuntimeError("a table already exists")

    monkeypatch.setattr(deltalake, "write_deltalake", other_writer_won)
    with pytest.raises(RuntimeError):
        write_with_delta_rs(_data(), path, "load-1", {})
    assert commit_files(path) == [f"{0:020d}.json"] and deltalake.DeltaTable(path).to_pyarrow_table().num_rows == 3


# --- the direct reader (lib/dialects/postgres/snapshot_reader.py, lib/bulk/table_load.py) ----------------


def test_a_reader_that_cannot_connect_is_off_for_the_run_and_says_so_once(monkeypatch, caplog):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(1)
        raise SourceError("cannot connect to postgres at db:5432/shop: connection refused", transient=True)

    monkeypatch.setattr(snapshot_reader, "connect", refuse)
    reader = snapshot_reader.SnapshotReader(None, None, "UTC")  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="bulk"):
        for _ in range(3):
            with pytest.raises(DirectReaderUnavailable, match="connecting failed"):
                reader.read("SELECT 1")
    assert len(calls) == 1  # not tried again for every table
    assert len(_messages(caplog)) == 1 and "the direct reader is off for the rest of this run" in _messages(caplog)[0]
    reader.close()


class _FakeDb:
    def __init__(self, status: int, closed: int = 0) -> None:
        self.closed, self.info, self.closes = closed, SimpleNamespace(transaction_status=status), 0

    def close(self) -> None:
        self.closes += 1
        self.closed = 1


def test_a_connection_left_outside_its_snapshot_transaction_is_not_used_again():
    reader = snapshot_reader.SnapshotReader(None, None, "UTC")  # type: ignore[arg-type]
    idle_in_snapshot = _FakeDb(psycopg2.extensions.TRANSACTION_STATUS_INTRANS)
    reader._db = idle_in_snapshot
    reader._drop_if_unusable(idle_in_snapshot)
    assert reader._db is idle_in_snapshot and idle_in_snapshot.closes == 0  # the savepoint was rolled back: keep it
    for broken in (_FakeDb(psycopg2.extensions.TRANSACTION_STATUS_INERROR), _FakeDb(psycopg2.extensions.TRANSACTION_STATUS_IDLE),
                   _FakeDb(psycopg2.extensions.TRANSACTION_STATUS_INTRANS, closed=2)):
        reader._db = broken
        reader._drop_if_unusable(broken)
        assert reader._db is None  # the next read opens a new connection and joins the snapshot again


class _Reader:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def read(self, query: str):
        raise self.exc


def _ctx_and_job(reader):
    table = SimpleNamespace(qualified_name="public.orders")
    job = SimpleNamespace(table=table, plan=SimpleNamespace(chunks=[["TRUE"]], reads=(ColumnRead("id", '"id"', "int"),)))
    dialect = SimpleNamespace(select_sql=lambda *a: 'SELECT "id" FROM "public"."orders"')
    ctx = SimpleNamespace(direct_reader=reader, dialect=dialect, time_zone="UTC", secrets=("hunter2-password",))
    return ctx, job


@pytest.mark.parametrize("exc", [
    SourceError(f'small-table read failed: could not receive data from server "{SECRET_VALUE}" (hunter2-password)', transient=True),
    psycopg2.OperationalError(f"server closed the connection unexpectedly '{SECRET_VALUE}'"),
    pa.ArrowInvalid(f"Could not convert '{SECRET_VALUE}' with type str"),
    KeyError("a bug"),
])
def test_any_error_of_a_direct_read_hands_the_table_to_spark_once(exc, caplog):
    ctx, job = _ctx_and_job(_Reader(exc))
    with caplog.at_level(logging.DEBUG, logger="bulk"):
        assert table_load._read_directly(ctx, job, None, 0) is None  # type: ignore[arg-type]
    warnings = _messages(caplog)
    assert len(warnings) == 1 and warnings[0].startswith(f"public.orders: read by Spark (the direct reader failed: {type(exc).__name__}")
    assert SECRET_VALUE not in warnings[0] and "hunter2-password" not in warnings[0]


@pytest.mark.parametrize("exc, says", [
    (DirectReadUnsupported(f"date '{SECRET_VALUE}'"), "read by Spark (the direct reader refuses date '…')"),
    (DirectReaderUnavailable("connecting failed"), "read by Spark (the direct reader is off: connecting failed)"),
])
def test_values_it_cannot_give_and_a_reader_that_is_off_are_said_at_debug(exc, says, caplog):
    ctx, job = _ctx_and_job(_Reader(exc))
    with caplog.at_level(logging.DEBUG, logger="bulk"):
        assert table_load._read_directly(ctx, job, None, 0) is None  # type: ignore[arg-type]
    assert _messages(caplog) == [] and any(says in m for m in _messages(caplog, logging.DEBUG))


# --- the delta-rs status store (lib/status/delta_rs_store.py) --------------------------------------------


@pytest.fixture
def spark_store(monkeypatch):
    """Spark's store operations recorded instead of run (the integration test runs them)."""
    calls: list[tuple] = []
    monkeypatch.setattr(StatusStore, "ensure", lambda self: calls.append(("ensure",)))
    monkeypatch.setattr(StatusStore, "append", lambda self, *events: calls.append(("append", events)))
    monkeypatch.setattr(StatusStore, "latest", lambda self, source=None, phase=None: calls.append(("latest", source)) or {"by": "spark"})
    monkeypatch.setattr(StatusStore, "delete_source", lambda self, source: calls.append(("delete_source", source)))
    return calls


def test_a_failed_status_append_goes_to_spark_which_keeps_the_table_for_the_process(tmp_path, monkeypatch, spark_store, caplog):
    store = DeltaRsStatusStore(None, str(tmp_path))
    store.ensure()
    first = _event("orders")
    store.append(first)
    assert spark_store == [] and spark_took_over(store.path) is None

    def fail(*args, **kwargs):
        raise OSError(f"Generic LocalFileSystem error: '{SECRET_VALUE}'")

    monkeypatch.setattr(deltalake, "write_deltalake", fail)
    second, third = _event("lines"), _event("items")
    with caplog.at_level(logging.DEBUG, logger=delta_rs_store.__name__):
        store.append(second)
        monkeypatch.setattr(deltalake, "write_deltalake", REAL_WRITE)  # delta-rs works again: Spark keeps the table anyway
        store.append(third)
        assert store.latest("shop") == {"by": "spark"}
        store.delete_source("crm")
        DeltaRsStatusStore(None, str(tmp_path)).append(first)  # another store of this process, same table: Spark too
    assert spark_store == [("append", (second,)), ("append", (third,)), ("latest", "shop"), ("delete_source", "crm"), ("append", (first,))]
    assert spark_took_over(store.path).startswith("append failed (OSError: Generic LocalFileSystem error: '…')")
    warnings = _messages(caplog)
    assert len(warnings) == 1 and "Spark's Delta writer keeps the status table for the rest of this process" in warnings[0]
    assert SECRET_VALUE not in warnings[0]
    assert spark_took_over(str(tmp_path / "other")) is None  # only that table


@pytest.mark.parametrize("operation", ["ensure", "latest", "delete_source"])
def test_a_failed_status_creation_read_or_delete_goes_to_spark(tmp_path, monkeypatch, spark_store, operation):
    store = DeltaRsStatusStore(None, str(tmp_path))
    if operation != "ensure":
        store.append(_event("orders"))  # a table delta-rs can read

    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("Kernel error: failed to read the log")

        create = classmethod(lambda cls, *a, **k: cls())

    monkeypatch.setattr(deltalake, "DeltaTable", Broken)
    args = {"ensure": (), "latest": ("shop",), "delete_source": ("shop",)}[operation]
    getattr(store, operation)(*args)
    assert spark_store == [(operation, *args)]
    assert spark_took_over(store.path) is not None


# --- choosing delta-rs for an existing table (lib/lake/local_writer.py, lib/cdc/loop/specs.py) -------------


def test_a_protocol_delta_rs_cannot_read_leaves_the_table_to_spark(tmp_path, monkeypatch, caplog):
    from lib.cdc.loop import specs
    from lib.lake import local_writer

    table = tmp_path / "status"
    (table / "_delta_log").mkdir(parents=True)
    (table / "_delta_log" / f"{0:020d}.json").write_text(json.dumps({"protocol": {"minReaderVersion": 1}}) + "\n")

    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError(f"Invalid JSON in log record '{SECRET_VALUE}'")

    monkeypatch.setattr(deltalake, "DeltaTable", Broken)
    monkeypatch.setattr(local_writer, "delta_rs_reason", lambda spark, root=None: None)
    monkeypatch.setattr(specs, "delta_rs_reason", lambda spark, root=None: None)
    with caplog.at_level(logging.DEBUG):
        assert local_writer.uses_delta_rs(None, str(tmp_path), "delta-rs", "status table", str(table)) is False  # type: ignore[arg-type]
    warnings = _messages(caplog)
    assert len(warnings) == 1 and "status table written by Spark" in warnings[0] and local_writer.PROTOCOL_UNREADABLE in warnings[0]
    assert SECRET_VALUE not in warnings[0]
    reason = specs.merge_reason(None, str(table), "delta-rs")  # type: ignore[arg-type]
    assert reason is not None and reason.startswith(local_writer.PROTOCOL_UNREADABLE)  # the stream: Spark MERGEs that table
