"""The bulk snapshot's transaction visibility, recorded for the CDC stream (snapshot_txids).

What these tests prove, against a real PostgreSQL:

- the recorded ``pg_current_snapshot()`` text is that of the snapshot the partition readers import
  (asking again inside the imported snapshot, after more commits, gives the same text; a fresh
  snapshot does not), on both snapshot paths;
- with a transaction that is open across the replication slot's consistent point (it starts while the
  slot waits for older transactions, so it does not delay the slot), ``visible()`` says exactly what
  the copy and the slot say: committed before -> in the copy and not in the slot; committed after ->
  in the slot, not in the copy. That transaction's insert has an LSN *before* the consistent point,
  so comparing event LSNs with the position would wrongly drop it; its xid says it is not in the copy;
- ``visible_sql`` evaluated by Spark agrees with the Python reference;
- the status table carries the txids, merges into a table written before these columns existed, and a
  table the stream took over (phase cdc) is skipped by a resumed load and reloaded by --no-resume.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import functions as F

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.cdc.visibility import SnapshotTxids, parse_snapshot_txids, visible, visible_sql
from lib.dialects.postgres import PostgresDialect
from lib.dialects.postgres import snapshot as pg_snapshot
from lib.lake.paths import status_path
from lib.status.store import StatusStore

E = 1 << 32


def xid32(xid: int) -> int:
    """What Debezium delivers as source.txId: the 32-bit xid."""
    return xid % E


def pg_visible(source, xid: int, txids: str) -> bool:
    """PostgreSQL's own verdict, for comparison."""
    return source.query("SELECT pg_visible_in_snapshot(%s::text::xid8, %s::pg_snapshot)", (str(xid), txids))[0][0]


def committed_xid(source, sql: str) -> int:
    conn = source.connect()
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            cur.execute("SELECT txid_current()")
            xid = cur.fetchone()[0]
        conn.commit()
        return xid
    finally:
        conn.close()


class OpenTransaction:
    """A transaction that runs ``sql`` and stays open (it holds an xid) until commit()."""

    def __init__(self, source, sql: str) -> None:
        self.conn = source.connect()
        self.conn.autocommit = False
        with self.conn.cursor() as cur:
            cur.execute(sql)
            cur.execute("SELECT txid_current()")
            self.xid = cur.fetchone()[0]

    def commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()  # rolls back if still open


def wait_for(what: str, condition: Callable[[], bool], stop: threading.Event, timeout: float = 300.0) -> None:
    """Wait until ``condition``; give up after ``timeout`` (a foreign long transaction can delay the slot) or on ``stop``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or stop.is_set():
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)


def walsender_waits_for(source, xid: int) -> bool:
    """The replication connection building the slot's snapshot waits for transaction ``xid`` to end."""
    return source.query(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'transactionid' AND l.transactionid::text = %s AND NOT l.granted AND a.backend_type = 'walsender'",
        (str(xid32(xid)),),
    )[0][0] > 0


def slot_changes(source, slot: str, publication: str) -> list[tuple[str, int, str]]:
    """(lsn, xid, message kind) of the slot's pgoutput messages, without consuming them."""
    rows = source.query(
        "SELECT lsn::text, xid::text::bigint, data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, 'proto_version', '1', 'publication_names', %s)",
        (slot, publication),
    )
    return [(lsn, xid, chr(bytes(data)[0])) for lsn, xid, data in rows]


def lsn_number(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def lake_ids(spark, path: str) -> set[int]:
    return {r["id"] for r in spark.read.format("delta").load(path).select("id").collect()}


def test_transaction_open_across_the_slot_consistent_point(spark, source, monkeypatch):
    s = f'"{source.schema}"'
    source.execute(f"CREATE TABLE {s}.items (id int PRIMARY KEY, note text); INSERT INTO {s}.items SELECT g, 'old' FROM generate_series(1, 100) g")
    x_before = committed_xid(source, f"INSERT INTO {s}.items VALUES (101, 'committed before the load')")
    # T1 runs when the slot is created: the slot waits for it (BUILDING_SNAPSHOT). T2 starts meanwhile and
    # the slot waits for it in turn (FULL_SNAPSHOT). T3 starts then: the slot does not wait for it, so it is
    # open at the consistent point and commits after it.
    t1 = OpenTransaction(source, f"INSERT INTO {s}.items VALUES (201, 'T1')")
    opened: list[OpenTransaction] = [t1]
    snapshot_taken, copy_may_start, load_ended = threading.Event(), threading.Event(), threading.Event()
    xids: dict[str, int] = {"before": x_before, "t1": t1.xid}
    errors: list[BaseException] = []

    def choreography() -> None:
        try:
            wait_for("the slot to wait for T1", lambda: walsender_waits_for(source, t1.xid), load_ended)
            t2 = OpenTransaction(source, f"INSERT INTO {s}.items VALUES (202, 'T2')")
            opened.append(t2)
            t1.commit()
            wait_for("the slot to wait for T2", lambda: walsender_waits_for(source, t2.xid), load_ended)
            t3 = OpenTransaction(source, f"INSERT INTO {s}.items VALUES (203, 'T3: open across the consistent point')")
            opened.append(t3)
            t2.commit()
            wait_for("the snapshot", snapshot_taken.is_set, load_ended)
            t3.commit()  # after the consistent point, before the copy reads anything
            xids.update(t2=t2.xid, t3=t3.xid)
            xids["after"] = committed_xid(source, f"INSERT INTO {s}.items VALUES (204, 'started after the snapshot')")
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            for t in opened:
                t.close()
            copy_may_start.set()

    real_open = PostgresDialect.open_snapshot

    @contextmanager
    def open_then_wait(conn, cdc, tables):
        with real_open(conn, cdc, tables) as snap:
            snapshot_taken.set()
            copy_may_start.wait(120)
            yield snap

    monkeypatch.setattr(PostgresDialect, "open_snapshot", staticmethod(open_then_wait))
    thread = threading.Thread(target=choreography)
    thread.start()
    try:
        code = run_bulk_load(spark, source.load_config(), source.name, BulkOptions())
    finally:
        load_ended.set()
        copy_may_start.set()
        thread.join(60)
    assert not errors, errors
    assert code == 0

    status = StatusStore(spark, source.lake_root).latest(source.name)[(source.name, source.schema, "items")]
    assert status.snapshot_method == "replication-slot" and status.snapshot_txids
    snap = parse_snapshot_txids(status.snapshot_txids)
    verdicts = {name: visible(xid32(x), snap) for name, x in xids.items()}
    assert verdicts == {"before": True, "t1": True, "t2": True, "t3": False, "after": False}, (status.snapshot_txids, xids)
    assert verdicts == {name: pg_visible(source, x, status.snapshot_txids) for name, x in xids.items()}
    assert xids["t3"] in snap.xip or xids["t3"] >= snap.xmax

    # the copy holds exactly the visible transactions ...
    assert lake_ids(spark, source.lake_path("items")) == set(range(1, 102)) | {201, 202}
    # ... and the slot exactly the others, with the xids Debezium reports as source.txId
    changes = slot_changes(source, f"slot_{source.name}", f"pub_{source.name}")
    inserts = [(lsn, xid) for lsn, xid, kind in changes if kind == "I"]
    assert sorted(xid for _, xid in inserts) == sorted([xid32(xids["t3"]), xid32(xids["after"])])
    # T3's insert was written before the consistent point: an LSN comparison would take it for copied
    t3_insert_lsn = next(lsn for lsn, xid in inserts if xid == xid32(xids["t3"]))
    assert lsn_number(t3_insert_lsn) < lsn_number(status.snapshot_position)


def test_snapshot_txids_are_those_of_the_imported_snapshot(source):
    """Both snapshot paths: the recorded txids are the readers' snapshot, not a later one."""
    s = f'"{source.schema}"'
    source.execute(f"CREATE TABLE {s}.t (id int PRIMARY KEY)")
    config = source.load_config()
    src = config.source(source.name)
    dialect = PostgresDialect()
    tables = dialect.discover(src.connection, [source.schema])
    for cdc in (None, src.cdc):
        base = 1000 if cdc else 0
        x_before = committed_xid(source, f"INSERT INTO {s}.t VALUES ({base + 1})")
        # without a slot nothing waits for running transactions: one can be open across the export
        t_open = OpenTransaction(source, f"INSERT INTO {s}.t VALUES ({base + 2})") if cdc is None else None
        # committed after t_open started: the snapshot's xmax passes t_open, which is then listed in xip
        x_mid = committed_xid(source, f"INSERT INTO {s}.t VALUES ({base + 4})")
        try:
            with pg_snapshot.open_snapshot(src.connection, cdc, tables) as snap:
                if t_open is not None:
                    t_open.commit()
                x_after = committed_xid(source, f"INSERT INTO {s}.t VALUES ({base + 3})")
                again = pg_snapshot.run_in_snapshot(src.connection, snap, "SELECT pg_current_snapshot()::text")[0][0]
                rows = {r[0] for r in pg_snapshot.run_in_snapshot(src.connection, snap, f"SELECT id FROM {s}.t WHERE id > %s", (base,))}
        finally:
            if t_open is not None:
                t_open.close()
        fresh = source.query("SELECT pg_current_snapshot()::text")[0][0]
        assert snap.method == ("replication-slot" if cdc else "exported-snapshot")
        assert again == snap.txids, "a session that joined the snapshot sees the same transactions"
        txids = parse_snapshot_txids(snap.txids)
        assert visible(xid32(x_before), txids) and visible(xid32(x_mid), txids) and not visible(xid32(x_after), txids)
        assert rows == {base + 1, base + 4}, "the data agrees: only the transactions committed before are in the snapshot"
        assert visible(xid32(x_after), parse_snapshot_txids(fresh)), "a fresh snapshot would see the later commit"
        if t_open is not None:
            assert t_open.xid in txids.xip and not visible(xid32(t_open.xid), txids) and t_open.xid < x_mid < txids.xmax
            assert pg_visible(source, t_open.xid, fresh)


def random_snapshots(rng: random.Random) -> list[SnapshotTxids]:
    snaps = [SnapshotTxids(E - 10, E + 5, (E - 3, E + 2)), SnapshotTxids(730, 740, (731, 739)), SnapshotTxids(E - 20, E - 2, (E - 7,)),
             SnapshotTxids(7, 7, ()), SnapshotTxids(5 * E + 1000, 5 * E + 11_000, tuple(range(5 * E + 1000, 5 * E + 11_000, 2)))]
    for _ in range(25):
        xmax = rng.choice([0, 1, 3]) * E + rng.choice([rng.randrange(5, 5000), E - rng.randrange(1, 5000), rng.randrange(E)])
        xmin = max(3, xmax - rng.choice([0, 10, 5000]))
        xip = tuple(sorted(rng.sample(range(xmin, xmax), min(xmax - xmin, rng.choice([0, 1, 30]))))) if xmax > xmin else ()
        snaps.append(SnapshotTxids(xmin, max(xmin, xmax), xip))
    return snaps


def test_visible_sql_in_spark_matches_the_reference(spark):
    rng = random.Random(11)
    snaps = random_snapshots(rng)
    values: set[Any] = {None}
    for snap in snaps:
        for truth in (*snap.xip[:4], snap.xmin, snap.xmin - 1, snap.xmax, snap.xmax - 1, snap.xmax + 1,
                      snap.xmax + rng.randrange(1 << 31), snap.xmax - rng.randrange(1, 1 << 31)):
            low = truth % E
            values |= {low, low - E if low >= 1 << 31 else low}  # unsigned and signed int32 forms
    df = spark.createDataFrame([(v,) for v in values], "txid BIGINT")
    result = df.select("txid", *[F.expr(visible_sql("txid", snap)).alias(f"v{i}") for i, snap in enumerate(snaps)]).collect()
    assert len(result) == len(values)
    for row in result:
        for i, snap in enumerate(snaps):
            assert row[f"v{i}"] is visible(row["txid"], snap), (snap.text()[:80], row["txid"])


def test_status_table_handoff_fields_through_delta(spark, source):
    """An old status table gains the new columns; phase cdc is skipped on resume, reloaded by --no-resume."""
    s = f'"{source.schema}"'
    source.execute(f"CREATE TABLE {s}.a (id int PRIMARY KEY); INSERT INTO {s}.a SELECT generate_series(1, 10)")
    old_ddl = (
        "source STRING, schema STRING, table STRING, phase STRING, state STRING, location STRING, row_count BIGINT, "
        "primary_key ARRAY<STRING>, snapshot_position STRING, snapshot_method STRING, cdc_position STRING, "
        "attempts INT, last_error STRING, started_at TIMESTAMP, updated_at TIMESTAMP, "
        "load_id STRING, chunks_total INT, chunks_done INT, plan STRING, note STRING, seq BIGINT"
    )
    old_row = ("other", "public", "x", "bulk", "completed", "/l/x", 5, ["id"], "0/1", "replication-slot", None, 1, None, None,
               datetime(2026, 1, 1), "L0", 1, 1, None, None, 1)
    spark.createDataFrame([old_row], old_ddl).write.format("delta").save(status_path(source.lake_root))

    config = source.load_config()
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0
    store = StatusStore(spark, source.lake_root)
    old = store.latest("other")[("other", "public", "x")]
    assert old.snapshot_txids is None and old.cdc_inserted is None and old.row_count == 5
    key = (source.name, source.schema, "a")
    bulk = store.latest(source.name)[key]
    assert bulk.state == "completed" and bulk.snapshot_method == "replication-slot" and bulk.snapshot_txids

    # the stream takes the table over, carrying the bulk fields forward
    stream_event = bulk.next(phase="cdc", state="running", cdc_position="1/2", cdc_inserted=4, cdc_updated=2, cdc_deleted=1, cdc_lag=0, cdc_latency_ms=300,
                             cdc_event_time=datetime(2026, 2, 2, tzinfo=UTC))
    store.append(stream_event)
    assert store.latest(source.name)[key] == stream_event
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0
    assert store.latest(source.name)[key] == stream_event, "a table in phase cdc is not loaded again"

    x_between = committed_xid(source, f"INSERT INTO {s}.a VALUES (11)")
    assert run_bulk_load(spark, config, source.name, BulkOptions(resume=False)) == 0
    reloaded = store.latest(source.name)[key]
    assert (reloaded.phase, reloaded.state, reloaded.snapshot_method, reloaded.row_count) == ("bulk", "completed", "temporary-slot", 11)
    assert visible(xid32(x_between), parse_snapshot_txids(reloaded.snapshot_txids))
    assert not visible(xid32(x_between), parse_snapshot_txids(bulk.snapshot_txids))
    assert (reloaded.cdc_position, reloaded.cdc_inserted, reloaded.cdc_lag, reloaded.cdc_event_time) == (None, None, None, None)
    assert reloaded.load_id != bulk.load_id
