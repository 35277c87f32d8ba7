"""One status table, two writers: Spark's (remote lakes, older versions, the other job) and delta-rs'
(local lakes, lib/status/delta_rs_store.py). Each reads exactly what the other wrote."""

from __future__ import annotations

from datetime import UTC, datetime

from lib.status.delta_rs_store import DeltaRsStatusStore
from lib.status.factory import open_status_store
from lib.status.record import StatusEvent
from lib.status.store import StatusStore


def _event(source: str, table: str, **kw) -> StatusEvent:
    return StatusEvent(source, "Sales Data", table, "bulk", "pending", f"/lake/{source}/{table}", **kw)


def test_spark_and_delta_rs_write_and_read_one_status_table(spark, tmp_path):
    root = str(tmp_path / "lake")
    by_spark, by_rs = StatusStore(spark, root), DeltaRsStatusStore(spark, root)
    by_spark.ensure()  # created by Spark, as by an older version or on a lake Spark writes
    planned = _event("shop", 'Order "Lines"', primary_key=("id", "Line No"), plan='{"chunks": 2}', attempts=1)
    by_spark.append(planned, _event("crm", "accounts"))
    running = planned.next(state="running", started_at=datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC))
    by_rs.append(running)
    done = running.next(state="completed", row_count=10, chunks_done=2, cdc_offsets='{"0": 5}', cdc_event_time=datetime(2026, 3, 4, 5, 6, 8, tzinfo=UTC))
    by_spark.append(done)  # Spark again, after delta-rs: the log goes on
    key = ("shop", "Sales Data", 'Order "Lines"')
    assert by_spark.latest("shop") == by_rs.latest("shop") == {key: done}
    assert by_spark.latest() == by_rs.latest() and len(by_rs.latest()) == 2

    by_rs.delete_source("crm")
    assert by_spark.latest("crm") == {} and by_spark.latest("shop") == {key: done}
    by_spark.delete_source("shop")
    assert by_rs.latest() == {}
    by_rs.append(planned)
    assert by_spark.latest("shop") == {key: planned}


def test_delta_rs_writes_the_status_table_of_local_lakes_only(spark, tmp_path):
    assert type(open_status_store(spark, str(tmp_path))) is DeltaRsStatusStore
    assert type(open_status_store(spark, f"file://{tmp_path}")) is DeltaRsStatusStore
    assert type(open_status_store(spark, str(tmp_path), "spark")) is StatusStore
    assert type(open_status_store(spark, "abfss://lake@acct.dfs.core.windows.net/root")) is StatusStore
    created = open_status_store(spark, str(tmp_path))
    created.ensure()  # the table delta-rs creates carries the session's Delta defaults, as Spark's would
    props = spark.sql(f"DESCRIBE DETAIL delta.`{created.path}`").first()["properties"]
    assert props.get("delta.checkpointInterval") == spark.conf.get("spark.databricks.delta.properties.defaults.checkpointInterval")


def test_a_status_table_with_deletion_vectors_stays_with_spark(spark, tmp_path):
    root = str(tmp_path)
    by_spark = StatusStore(spark, root)
    by_spark.ensure()
    spark.sql(f"ALTER TABLE delta.`{by_spark.path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    store = open_status_store(spark, root)
    assert type(store) is StatusStore  # delta-rs 1.6 can neither read nor write it
    store.append(_event("shop", "orders"))
    assert list(store.latest("shop")) == [("shop", "Sales Data", "orders")]
