"""A consistent snapshot for the bulk copy, and the position the CDC stream takes over from.

With CDC configured: ensure the publication, then create the logical replication slot with
``EXPORT_SNAPSHOT`` on a replication connection. The exported snapshot sees exactly the transactions
committed before the slot's consistent point, and the slot streams every transaction committed after
it, so the slot's consistent point is the handoff position. The replication connection must stay open
and idle while partition readers use the snapshot (``SET TRANSACTION SNAPSHOT``).

When the slot already exists (a resumed or repeated load), a TEMPORARY slot exports a fresh snapshot;
its consistent point is later than the permanent slot's, so the permanent slot still holds every change
after it, and the stream skips changes at or before each table's own recorded position.

Without CDC configured, a REPEATABLE READ transaction exports its snapshot (``pg_export_snapshot()``)
and the recorded position is ``pg_current_wal_lsn()`` taken inside it (informational only).

Either way the snapshot also records which transactions it sees: ``pg_current_snapshot()::text`` run
inside it (``xmin:xmax:xip,...``). A change event whose transaction is visible there is in the copy;
the CDC stream skips exactly those (lib.cdc.visibility), which is exact even for transactions that
were open across the slot's consistent point.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from lib.config.model import CdcConfig, ConnectionConfig
from lib.dialects.base import Snapshot, Table
from lib.dialects.postgres.connect import as_source_error, connect
from lib.dialects.postgres.sql import qualified, quote_ident, quote_literal
from lib.errors import SourceError

log = logging.getLogger(__name__)


def session_init_sql(snapshot_name: str) -> str:
    """Run by every partition reader before its SELECT: join the exported snapshot."""
    return f"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {quote_literal(snapshot_name)}"


def txids_sql(server_version: int) -> str:
    """The query returning the current snapshot's transactions as ``xmin:xmax:xip,...`` (64-bit xids).
    Inside an imported snapshot it describes the imported one. PostgreSQL < 13: the older name."""
    return "SELECT pg_current_snapshot()::text" if server_version >= 130000 else "SELECT txid_current_snapshot()::text"


def snapshot_txids(conn: ConnectionConfig, snapshot: Snapshot, server_version: int) -> str:
    """``snapshot``'s visible transactions, read by a session that joined it (as partition readers do)."""
    return str(run_in_snapshot(conn, snapshot, txids_sql(server_version))[0][0])


def create_slot_sql(slot: str, temporary: bool) -> str:
    kind = "TEMPORARY LOGICAL" if temporary else "LOGICAL"
    return f"CREATE_REPLICATION_SLOT {quote_ident(slot)} {kind} pgoutput EXPORT_SNAPSHOT"


def publication_sql(publication: str, existing: set[tuple[str, str]] | None, tables: Sequence[Table]) -> list[str]:
    """Statements that make ``publication`` cover ``tables`` (pure). ``existing`` is None if it is absent."""
    names = [qualified(t.schema, t.name) for t in tables if existing is None or (t.schema, t.name) not in existing]
    if existing is None:
        if not names:
            return [f"CREATE PUBLICATION {quote_ident(publication)}"]
        return [f"CREATE PUBLICATION {quote_ident(publication)} FOR TABLE {', '.join(names)}"]
    return [f"ALTER PUBLICATION {quote_ident(publication)} ADD TABLE {', '.join(names)}"] if names else []


def replica_identity_sql(tables: Sequence[Table], identities: dict[tuple[str, str], str]) -> list[str]:
    """``REPLICA IDENTITY FULL`` for keyless tables whose identity is not full yet (pure)."""
    return [
        f"ALTER TABLE {qualified(t.schema, t.name)} REPLICA IDENTITY FULL"
        for t in tables
        if not t.primary_key and identities.get((t.schema, t.name)) != "f"
    ]


def ensure_publication(conn: ConnectionConfig, cdc: CdcConfig, tables: Sequence[Table]) -> None:
    """Create or extend the publication with the tables the stream covers (see lib.debezium.common.streamable)."""
    from lib.debezium.common import streamable

    keyed, _refused = streamable(tables, cdc)
    publication = cdc.publication_name
    db = connect(conn)
    try:
        db.autocommit = True
        with db.cursor() as cur:
            keyless = [t for t in keyed if not t.primary_key]
            if keyless:
                cur.execute(
                    "SELECT n.nspname::text, c.relname::text, c.relreplident::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                    ([t.schema for t in keyless], [t.name for t in keyless]),
                )
                identities = {(sch, name): ident for sch, name, ident in cur.fetchall()}
                for statement in replica_identity_sql(keyless, identities):
                    log.info("replica identity: %s", statement)
                    cur.execute(statement)
            cur.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,))
            existing = None
            if cur.fetchone():
                cur.execute("SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = %s", (publication,))
                existing = {(s, t) for s, t in cur.fetchall()}
            for statement in publication_sql(publication, existing, keyed):
                log.info("publication: %s", statement)
                cur.execute(statement)
    except Exception as exc:  # noqa: BLE001
        raise as_source_error(exc, f"preparing publication {publication!r} failed") from None
    finally:
        db.close()


def slot_exists(conn: ConnectionConfig, slot: str) -> bool:
    db = connect(conn)
    try:
        with db.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            return cur.fetchone() is not None
    finally:
        db.close()


def drop_slot(conn: ConnectionConfig, slot: str, wait_seconds: float = 30.0, terminate_own: bool = False) -> bool:
    """Drop the replication slot if it exists, waiting for a stopping consumer to let go of it;
    True when one was dropped. With ``terminate_own`` (the connector was deleted, so nothing of ours
    should still read the slot), a connection of our own role still holding it after the wait is a
    stale one (docs/operations.md): it is terminated, and the drop goes on."""
    db = connect(conn)
    try:
        db.autocommit = True
        with db.cursor() as cur:
            deadline = time.monotonic() + wait_seconds
            terminated = False
            while True:
                cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
                row = cur.fetchone()
                if row is None:
                    return False
                if not row[0]:
                    break
                if time.monotonic() > deadline and terminate_own and not terminated:
                    cur.execute(TERMINATE_OWN_HOLDER_SQL, (slot,))
                    pids = [r[0] for r in cur.fetchall()]
                    log.warning("replication slot %s still held %.0fs after its connector was deleted, by pid(s) %s of this role: "
                                "a stale connection, terminated", slot, wait_seconds, pids)
                    terminated, deadline = True, time.monotonic() + 10
                    continue
                if time.monotonic() > deadline:
                    raise SourceError(f"replication slot {slot!r} is still in use after {wait_seconds:.0f}s: stop its consumer first", transient=False)
                time.sleep(0.5)
            cur.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return True
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise as_source_error(exc, f"dropping replication slot {slot!r} failed") from None
    finally:
        db.close()


TERMINATE_OWN_HOLDER_SQL = """
SELECT s.active_pid FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid
WHERE s.slot_name = %s AND a.usename = current_user AND pg_terminate_backend(s.active_pid)
"""


@contextmanager
def open_snapshot(conn: ConnectionConfig, cdc: CdcConfig | None, tables: Sequence[Table]) -> Iterator[Snapshot]:
    """Hold a consistent snapshot open for the duration of the ``with`` block."""
    if cdc is None:
        with _exported_snapshot(conn) as snap:
            yield snap
        return
    ensure_publication(conn, cdc, tables)
    temporary = slot_exists(conn, cdc.slot_name)
    slot = f"{cdc.slot_name}_tmp_{os.getpid()}" if temporary else cdc.slot_name
    db = connect(conn, replication=True)
    try:
        with db.cursor() as cur:
            cur.execute(create_slot_sql(slot, temporary))
            _slot, consistent_point, snapshot_name, _plugin = cur.fetchone()
    except Exception as exc:  # noqa: BLE001
        db.close()
        raise as_source_error(exc, f"creating replication slot {slot!r} failed") from None
    method = "temporary-slot" if temporary else "replication-slot"
    try:
        snap = Snapshot(position=str(consistent_point), session_init_sql=session_init_sql(snapshot_name), method=method)
        snap = replace(snap, txids=snapshot_txids(conn, snap, db.server_version))
        log.info("snapshot %s taken with %s %r at position %s (%s)", snapshot_name, method, slot, consistent_point, _brief(snap.txids))
        yield snap
    finally:
        db.close()  # ends the exported snapshot; a temporary slot is dropped with its connection


@contextmanager
def _exported_snapshot(conn: ConnectionConfig) -> Iterator[Snapshot]:
    db = connect(conn)
    try:
        db.autocommit = True  # we open the transaction block ourselves, with its isolation level
        with db.cursor() as cur:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cur.execute("SELECT pg_export_snapshot(), pg_current_wal_lsn()::text")
            snapshot_name, position = cur.fetchone()
    except Exception as exc:  # noqa: BLE001
        db.close()
        raise as_source_error(exc, "exporting a snapshot failed") from None
    try:
        snap = Snapshot(position=position, session_init_sql=session_init_sql(snapshot_name), method="exported-snapshot")
        snap = replace(snap, txids=snapshot_txids(conn, snap, db.server_version))
        log.info("snapshot %s exported at position %s (%s)", snapshot_name, position, _brief(snap.txids))
        yield snap
    finally:
        db.close()


def _brief(txids: str | None) -> str:
    """The snapshot's txids for the log: xmin, xmax and how many are in progress (the list can be long)."""
    if not txids:
        return "txids unknown"
    xmin, xmax, xip = [*txids.split(":"), "", "", ""][:3]
    return f"xmin {xmin}, xmax {xmax}, {len([x for x in xip.split(',') if x])} in progress"


def run_in_snapshot(conn: ConnectionConfig, snapshot: Snapshot, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one read-only query inside ``snapshot`` (planning queries: profiles, split samples)."""
    db = connect(conn)
    try:
        db.autocommit = True  # the session init statement opens the transaction block itself
        with db.cursor() as cur:
            cur.execute(snapshot.session_init_sql)
            cur.execute(sql, params)
            return cur.fetchall()
    except Exception as exc:  # noqa: BLE001
        raise as_source_error(exc, "planning query failed") from None
    finally:
        db.close()


def count_each(conn: ConnectionConfig, snapshot: Snapshot | None, tables: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int | Exception]:
    """``count(*)`` of each table in one session (joined to ``snapshot`` when given), one savepoint per
    table so that a failing table (its error is its value) does not stop the others."""
    db = connect(conn)
    out: dict[tuple[str, str], int | Exception] = {}
    try:
        db.autocommit = True  # the transaction block is opened explicitly, with the snapshot's isolation
        with db.cursor() as cur:
            cur.execute(snapshot.session_init_sql if snapshot is not None else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            for schema, name in tables:
                cur.execute("SAVEPOINT count_one")
                try:
                    cur.execute(f"SELECT count(*) FROM {qualified(schema, name)}")
                    out[(schema, name)] = int(cur.fetchone()[0])
                    cur.execute("RELEASE SAVEPOINT count_one")
                except Exception as exc:  # noqa: BLE001 - this table's error, the others go on
                    cur.execute("ROLLBACK TO SAVEPOINT count_one")
                    out[(schema, name)] = as_source_error(exc, f"counting {schema}.{name} failed")
            cur.execute("COMMIT")
    except Exception as exc:  # noqa: BLE001
        raise as_source_error(exc, "counting rows failed") from None
    finally:
        db.close()
    return out


def published_tables(conn: ConnectionConfig, publication: str) -> list[tuple[str, str]]:
    """(schema, table) pairs the publication covers, for the connector's include list."""
    db = connect(conn)
    try:
        with db.cursor() as cur:
            cur.execute("SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = %s ORDER BY 1, 2", (publication,))
            return [(s, t) for s, t in cur.fetchall()]
    except Exception as exc:  # noqa: BLE001
        raise as_source_error(exc, f"reading publication {publication!r} failed") from None
    finally:
        db.close()


# The slot, and the connection holding it (its WAL sender: pid, role, application, start time), if any.
SLOT_INFO_SQL = """
SELECT s.slot_name::text, s.active, s.confirmed_flush_lsn::text, s.restart_lsn::text,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint, pg_current_wal_lsn()::text,
       s.active_pid, a.usename::text, a.application_name, a.backend_start, now()
FROM pg_replication_slots s LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid
WHERE s.slot_name = %s
"""


def slot_info(conn: ConnectionConfig, slot: str) -> dict[str, Any] | None:
    """The slot's state and lag: bytes of WAL not yet confirmed by the consumer, and retained; the
    connection holding it (``active_pid``, its role, application name and start time)."""
    db = connect(conn)
    try:
        with db.cursor() as cur:
            cur.execute(SLOT_INFO_SQL, (slot,))
            row = cur.fetchone()
    except Exception as exc:  # noqa: BLE001
        raise as_source_error(exc, f"reading replication slot {slot!r} failed") from None
    finally:
        db.close()
    if row is None:
        return None
    keys = ("slot", "active", "confirmed_flush_lsn", "restart_lsn", "lag_bytes", "retained_wal_bytes", "current_wal_lsn",
            "active_pid", "holder_user", "holder_application", "holder_started_at", "server_time")
    return dict(zip(keys, row, strict=True))


def terminate_slot_holder(conn: ConnectionConfig, slot: str, pid: int) -> bool:
    """Terminate WAL sender ``pid`` if it still holds ``slot`` (checked in the same statement, so a
    connection that took the slot since is never hit). Allowed for the slot's own role."""
    db = connect(conn)
    try:
        db.autocommit = True
        with db.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = %s AND active_pid = %s",
                        (slot, pid))
            row = cur.fetchone()
            return bool(row and row[0])
    except Exception as exc:  # noqa: BLE001
        raise as_source_error(exc, f"terminating the connection {pid} holding replication slot {slot!r} failed") from None
    finally:
        db.close()


def drop_publication(conn: ConnectionConfig, publication: str) -> bool:
    db = connect(conn)
    try:
        db.autocommit = True
        with db.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,))
            if cur.fetchone() is None:
                return False
            cur.execute(f"DROP PUBLICATION {quote_ident(publication)}")
            return True
    except Exception as exc:  # noqa: BLE001
        raise as_source_error(exc, f"dropping publication {publication!r} failed") from None
    finally:
        db.close()
