"""The stream's MERGE as data (lib.cdc.plan.merge_clauses) run by delta-rs (lib/cdc/delta_rs_merge.py):
the same clauses as the Spark statement, and their semantics on a real Delta table, without a JVM.
tests/integration/test_cdc_merge_writers.py runs both engines on the same rows and compares."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from lib.cdc import plan as P
from lib.cdc.delta_rs_merge import merge_arrow, table_reason, tombstone_rows
from lib.lake.local_writer import features_reason, unusable_reason

SPEC = P.TableSpec("shop", "public", "Odd `tbl`", "/lake/x", ("id", "Order Id"),
                   (("id", "int"), ("Order Id", "string"), ("it's `x`", "string"), ("notes", "string")))


def test_the_spark_statement_is_the_clauses_rendered():
    m = P.merge_clauses(SPEC, ["notes"])
    sql = P.merge_sql(SPEC, "v", ["notes"])
    assert f" ON {m.on} WHEN MATCHED AND {m.delete_when} THEN DELETE WHEN MATCHED AND {m.update_when} THEN UPDATE SET " in sql
    assert ", ".join(f"t.{c} = {e}" for c, e in m.updates) in sql
    assert sql.endswith(f"WHEN NOT MATCHED AND {m.insert_when} THEN INSERT ({', '.join(c for c, _ in m.inserts)}) "
                        f"VALUES ({', '.join(e for _, e in m.inserts)})")
    assert dict(m.updates)["`__ingested_at`"] == "current_timestamp()"
    assert dict(P.merge_clauses(SPEC, ["notes"], now="now()").updates)["`__ingested_at`"] == "now()"
    assert dict(m.updates)["`notes`"] == "CASE WHEN s.`__toast_notes` THEN t.`notes` ELSE s.`notes` END"
    assert "`id`" not in dict(m.updates) and "`Order Id`" not in dict(m.updates)  # keys never change in place


def test_delta_rs_merges_only_tables_it_can_write():
    assert features_reason([]) is None
    assert features_reason(["appendOnly", "invariants"]) is None
    assert features_reason(["deletionVectors", "appendOnly"]) == "table features delta-rs does not write (deletionVectors)"
    assert features_reason(["columnMapping"]) == "table features delta-rs does not write (columnMapping)"
    # a lake that is not on local disk: the check specs.merge_reason makes first
    assert unusable_reason("file:///", [], "/lake/t") is None and unusable_reason("file:///", [], "file:///lake/t") is None
    assert unusable_reason("file:///", [], "abfss://c@a.dfs.core.windows.net/t") == "the lake is remote (abfss:)"


TZ = pa.timestamp("us", tz="UTC")
TARGET = pa.schema([("id", pa.int32()), ("name", pa.string()), ("notes", pa.string()),
                    ("__source_commit_pos", pa.decimal128(38, 0)), ("__source_change_pos", pa.decimal128(38, 0)),
                    ("__op", pa.string()), ("__ingested_at", TZ)])
MINI = P.TableSpec("shop", "public", "t", "/unused", ("id",), (("id", "int"), ("name", "string"), ("notes", "string")))


def _table(rows: list[tuple]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(TARGET.names, r, strict=True)) for r in rows], schema=TARGET)


def test_delta_rs_runs_the_clauses_guard_toast_deletes_and_inserts(tmp_path):
    then = datetime(2026, 1, 1, tzinfo=UTC)
    path = str(tmp_path / "t")
    write_deltalake(path, _table([
        (1, "bulk", "n1", Decimal(100), Decimal(0), "r", then),   # bulk row: any event replaces it
        (2, "bulk", "n2", Decimal(100), Decimal(0), "r", then),   # its event's notes are a TOAST placeholder
        (3, "bulk", "n3", Decimal(100), Decimal(0), "r", then),   # deleted
        (4, "newer", "n4", Decimal(500), Decimal(2), "u", then),  # a later event already applied: the replayed one loses
    ]))
    assert table_reason(path) is None
    source = pa.Table.from_pylist([
        {"id": 1, "name": "one", "notes": "x", "__toast_notes": False, "__source_commit_pos": Decimal(200), "__source_change_pos": Decimal(1), "__op": "u"},
        {"id": 2, "name": "two", "notes": None, "__toast_notes": True, "__source_commit_pos": Decimal(200), "__source_change_pos": Decimal(2), "__op": "u"},
        {"id": 3, "name": None, "notes": None, "__toast_notes": False, "__source_commit_pos": Decimal(200), "__source_change_pos": Decimal(3), "__op": "d"},
        {"id": 4, "name": "older", "notes": None, "__toast_notes": False, "__source_commit_pos": Decimal(500), "__source_change_pos": Decimal(1), "__op": "u"},
        {"id": 5, "name": "five", "notes": None, "__toast_notes": True, "__source_commit_pos": Decimal(200), "__source_change_pos": Decimal(4), "__op": "c"},
        {"id": 6, "name": None, "notes": None, "__toast_notes": False, "__source_commit_pos": Decimal(200), "__source_change_pos": Decimal(5), "__op": "d"},
    ])
    metrics = merge_arrow(path, source, P.merge_clauses(MINI, ["notes"], now="now()"))
    assert metrics == {"num_inserted_rows": 1, "num_updated_rows": 2, "num_deleted_rows": 1}
    rows = {r["id"]: r for r in DeltaTable(path).to_pyarrow_table().to_pylist()}
    assert sorted(rows) == [1, 2, 4, 5]
    assert (rows[1]["name"], rows[1]["notes"], rows[1]["__op"], rows[1]["__source_commit_pos"]) == ("one", "x", "u", Decimal(200))
    assert (rows[2]["name"], rows[2]["notes"]) == ("two", "n2")  # TOAST: the stored value stays
    assert (rows[4]["name"], rows[4]["__source_change_pos"]) == ("newer", Decimal(2))  # the guard kept the later row
    assert (rows[5]["name"], rows[5]["notes"]) == ("five", None)  # an insert's TOAST placeholder is NULL
    assert rows[1]["__ingested_at"] > then and rows[4]["__ingested_at"] == then
    # the same rows again (a replay after a crash): nothing changes
    again = merge_arrow(path, source, P.merge_clauses(MINI, ["notes"], now="now()"))
    assert again == {"num_inserted_rows": 0, "num_updated_rows": 0, "num_deleted_rows": 0}
    assert {r["id"]: r for r in DeltaTable(path).to_pyarrow_table().to_pylist()} == rows


def test_tombstone_rows_are_the_deletes_among_the_collected_rows():
    data = pa.Table.from_pylist([
        {"id": 1, "__op": "u", P.TOMB_KEY: '{"id":1}', P.COMMIT: Decimal(7), P.CHANGE: Decimal(1)},
        {"id": 2, "__op": "d", P.TOMB_KEY: '{"id":2}', P.COMMIT: Decimal(7), P.CHANGE: Decimal(2)},
        {"id": 3, "__op": "d", P.TOMB_KEY: '{"id":3}', P.COMMIT: Decimal(8), P.CHANGE: Decimal(0)},
    ])
    assert tombstone_rows(SPEC, data) == (("public", "Odd `tbl`", '{"id":2}', Decimal(7), Decimal(2)),
                                          ("public", "Odd `tbl`", '{"id":3}', Decimal(8), Decimal(0)))


def test_large_tables_are_left_to_spark_and_deletion_vectors():
    from lib.cdc.loop.specs import size_reason

    assert size_reason(None, 256) is None
    assert size_reason(256 * 1024 * 1024, 256) is None
    assert size_reason(256 * 1024 * 1024 + 1, 256) == "it holds 256 MiB, more than stream.merge_writer_max_table_mb (256)"
    assert size_reason(3 * 1024**3, 1024) == "it holds 3,072 MiB, more than stream.merge_writer_max_table_mb (1024)"
