"""The status table written and read by delta-rs (lib/status/delta_rs_store.py), and when it is used
(lib/lake/local_writer.py). Real delta-rs tables in a temporary directory; no JVM."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from lib.lake.local_writer import unusable_reason
from lib.status.delta_rs_store import DeltaRsStatusStore, arrow_schema, ddl_columns, sql_string
from lib.status.record import StatusEvent

ROOT = Path(__file__).resolve().parents[2]


def _event(table: str, state: str = "pending", source: str = "shop", **kw) -> StatusEvent:
    return StatusEvent(source, "public", table, "bulk", state, f"/lake/{source}/public/{table}", **kw)


def test_the_arrow_schema_is_the_status_ddl_column_by_column():
    columns = ddl_columns()
    assert [n for n, _ in columns] == [f.name for f in dataclasses.fields(StatusEvent)]
    assert columns[7] == ("primary_key", "ARRAY<STRING>") and ("attempts", "INT") in columns
    schema = arrow_schema()
    assert schema.field("primary_key").type == pa.list_(pa.string())
    assert schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("attempts").type == pa.int32() and schema.field("seq").type == pa.int64()
    assert all(f.nullable for f in schema)
    with pytest.raises(ValueError, match="status column x: no Arrow type for DECIMAL"):
        arrow_schema("x DECIMAL")


def test_sql_string_doubles_quotes():
    assert sql_string("shop") == "'shop'"
    assert sql_string("it's; DROP") == "'it''s; DROP'"


def test_delta_rs_only_where_plain_paths_are_the_local_disk():
    assert unusable_reason("file:///", []) is None
    assert unusable_reason("file:///", [], "/lake") is None
    assert unusable_reason("file:///", [], "file:///lake") is None
    assert unusable_reason("file:///", [], "abfss://c@a.dfs.core.windows.net/lake") == "the lake is remote (abfss:)"
    assert unusable_reason("dbfs:///", [], "/lake") == "plain lake paths resolve to dbfs:///, not to local disk"
    assert unusable_reason("unknown", [], "/lake") == "plain lake paths resolve to unknown, not to local disk"
    assert unusable_reason("file:///", ["deltalake", "pyarrow"]) == "deltalake and pyarrow not installed"


def test_tables_delta_rs_writes_have_no_feature_it_lacks(tmp_path):
    from lib.lake.local_writer import unsupported_features

    assert unsupported_features(str(tmp_path / "none")) == []
    store = DeltaRsStatusStore(None, str(tmp_path))
    store.ensure()
    assert unsupported_features(store.path) == [] and unsupported_features(f"file://{store.path}") == []


def test_append_latest_and_delete_source(tmp_path):
    store = DeltaRsStatusStore(None, str(tmp_path), {"delta.checkpointInterval": "20"})
    assert store.latest() == {}
    store.ensure()
    store.ensure()  # idempotent
    assert DeltaTable(store.local).metadata().configuration == {"delta.checkpointInterval": "20"}
    first = _event("orders", primary_key=("id",), plan=json.dumps({"chunks": 1}))
    done = first.next(state="completed", row_count=42, started_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))
    other = _event("it's", source="crm", cdc_offsets='{"0": 7}')
    store.append(first, other)
    store.append(done)
    shop = store.latest("shop")
    assert list(shop) == [("shop", "public", "orders")]
    assert shop[("shop", "public", "orders")] == done  # every field back as written, timestamps UTC
    assert store.latest("crm")[("crm", "public", "it's")] == other
    assert len(store.latest()) == 2 and store.latest("nope") == {}
    store.delete_source("crm")
    assert store.latest("crm") == {} and store.latest("shop")[("shop", "public", "orders")] == done


def test_appends_to_a_table_of_an_older_version_add_the_new_columns(tmp_path):
    store = DeltaRsStatusStore(None, str(tmp_path))
    older = pa.schema([f for f in arrow_schema() if f.name not in ("cdc_offsets", "source_current_at")])
    old_row = {n: v for n, v in zip(arrow_schema().names, _event("old", seq=1).as_row(), strict=True) if n in older.names}
    write_deltalake(store.local, pa.Table.from_pylist([old_row], schema=older))
    store.ensure()  # a table is there: left as it is
    store.append(_event("new", cdc_offsets='{"0": 3}'))
    assert "cdc_offsets" in DeltaTable(store.local).schema().to_arrow().names
    latest = store.latest("shop")
    assert latest[("shop", "public", "old")].cdc_offsets is None and latest[("shop", "public", "old")].seq == 1
    assert latest[("shop", "public", "new")].cdc_offsets == '{"0": 3}'


def test_a_process_that_read_the_status_table_exits_cleanly(tmp_path):
    """delta-rs' own filesystem under a pyarrow dataset aborts the process at exit (exit 134); the
    store reads through pyarrow's local filesystem instead."""
    store = DeltaRsStatusStore(None, str(tmp_path))
    store.append(_event("orders"))
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from lib.status.delta_rs_store import DeltaRsStatusStore; "
        "print(len(DeltaRsStatusStore(None, sys.argv[2]).latest('shop')))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(ROOT), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr


def test_tombstones_appended_by_delta_rs_have_the_tombstone_tables_columns(tmp_path):
    from decimal import Decimal

    import pyarrow.fs as pafs

    from lib.cdc.loop.tombstone_buffer import append_with_delta_rs
    from lib.cdc.plan import CHANGE, COMMIT

    rows = [("public", "Order Lines", '{"id":1}', Decimal(123456789012345678901234567890), Decimal(7)), ("public", "t", '{"id":"it\'s"}', Decimal(1), Decimal(0))]
    before = datetime.now(UTC)
    append_with_delta_rs(str(tmp_path), rows)
    append_with_delta_rs(str(tmp_path), rows[:1])
    table = DeltaTable(str(tmp_path))
    assert table.schema().to_arrow().names == ["schema", "table", "key", COMMIT, CHANGE, "__deleted_at"]  # TOMBSTONE_DDL's
    files = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    got = sorted(table.to_pyarrow_table(filesystem=files).to_pylist(), key=lambda r: (r["table"], r[CHANGE]))
    assert [(r["schema"], r["table"], r["key"], r[COMMIT], r[CHANGE]) for r in got] == sorted(rows + rows[:1], key=lambda r: (r[1], r[4]))
    assert all(r["__deleted_at"] >= before for r in got)


def test_the_status_table_is_compacted_every_so_many_appends(tmp_path, monkeypatch):
    import lib.status.delta_rs_store as module

    monkeypatch.setattr(module, "COMPACT_EVERY_APPENDS", 4)
    store = DeltaRsStatusStore(None, str(tmp_path))
    events = [_event(f"t{i}") for i in range(7)]
    for e in events[:3]:
        store.append(e)
    assert DeltaTable(store.local).get_add_actions().num_rows == 3
    store.append(events[3])  # the 4th append compacts
    assert DeltaTable(store.local).get_add_actions().num_rows == 1
    for e in events[4:]:
        store.append(e)
    assert DeltaTable(store.local).get_add_actions().num_rows == 4
    assert store.latest("shop") == {e.key: e for e in events}
    assert DeltaTable(store.local).history(1)[0]["operation"] == "WRITE"
