"""Small tables read over one psycopg2 connection joined to the load's snapshot (lib/bulk/direct_read.py).

One connection serves every small table of a run: it joins the exported snapshot once (the same
``session_init_sql`` every Spark JDBC reader runs), then each table's SELECT runs under a savepoint,
so a table that fails (permission denied, a value refused) leaves the others' transaction usable.
Reads are serialized by a lock; a 100-row read takes about a millisecond.

The reader is an accelerator (lib/fallback.py): a table whose read fails for any reason is read by
Spark (lib/bulk/table_load.py); a connection left outside its snapshot transaction by an error is
closed, and the next read joins the snapshot again on a new one; a connection that cannot be opened
or cannot join the snapshot turns the reader off for the rest of the run (said once), and Spark reads
every remaining small table.

The session is set up as the PostgreSQL JDBC driver sets up Spark's readers, so the server's text
output (the ``::text`` casts of time, interval, ranges, ...) is the same: ``DateStyle`` ISO,
``extra_float_digits`` 3, ``TimeZone`` the JVM's zone. Dates and timestamps are parsed strictly
(:func:`parse_date` and friends): psycopg2's own parsers turn ``infinity`` into ``date.max`` and fail on
BC years, where those values must go through Spark as before.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from datetime import date, datetime, timedelta, timezone
from typing import Any

import psycopg2
import psycopg2.extensions

from lib.bulk.direct_read import DirectReaderUnavailable, DirectReadUnsupported
from lib.config.model import ConnectionConfig
from lib.dialects.base import Snapshot
from lib.dialects.postgres.connect import as_source_error, connect
from lib.dialects.postgres.sql import quote_literal
from lib.fallback import failure_text

log = logging.getLogger("bulk")

# type OIDs (pg_type.oid) of the values parsed here, and of their arrays
DATE, DATE_ARRAY = 1082, 1182
TIMESTAMP, TIMESTAMP_ARRAY = 1114, 1115
TIMESTAMPTZ, TIMESTAMPTZ_ARRAY = 1184, 1185

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r" (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?")
_OFFSET = re.compile(r"^([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?$")


def parse_date(text: str | None, _cursor: Any = None) -> date | None:
    """``YYYY-MM-DD`` (DateStyle ISO) as a date; infinite and BC dates are refused (pure)."""
    if text is None:
        return None
    match = _DATE.match(text)
    if not match or match.end() != len(text):
        raise DirectReadUnsupported(f"date {text!r}")
    return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))


def parse_timestamp(text: str | None, _cursor: Any = None) -> datetime | None:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]`` as a naive datetime (timestamp without time zone) (pure)."""
    if text is None:
        return None
    value, rest = _date_time(text)
    if rest:
        raise DirectReadUnsupported(f"timestamp {text!r}")
    return value


def parse_timestamptz(text: str | None, _cursor: Any = None) -> datetime | None:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM[:SS]]`` as an aware datetime (the same instant) (pure)."""
    if text is None:
        return None
    value, rest = _date_time(text)
    match = _OFFSET.match(rest)
    if not match:
        raise DirectReadUnsupported(f"timestamptz {text!r}")
    sign = -1 if match.group(1) == "-" else 1
    offset = timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0), seconds=int(match.group(4) or 0))
    return value.replace(tzinfo=timezone(sign * offset))


def _date_time(text: str) -> tuple[datetime, str]:
    match = _DATE.match(text)
    clock = _TIME.match(text, match.end()) if match else None
    if not match or not clock:
        raise DirectReadUnsupported(f"timestamp {text!r}")
    micros = int((clock.group(4) or "").ljust(6, "0"))
    try:
        value = datetime(*(int(g) for g in match.groups()), *(int(g) for g in clock.groups()[:3]), micros)  # type: ignore[misc]
    except ValueError as exc:  # e.g. 24:00:00, which a timestamp cannot hold anyway
        raise DirectReadUnsupported(f"timestamp {text!r}: {exc}") from None
    return value, text[clock.end() :]


def session_setup_sql(time_zone: str) -> list[str]:
    """What the PostgreSQL JDBC driver sets at connect time, which decides the server's text output (pure)."""
    return ["SET DateStyle = 'ISO'", "SET extra_float_digits = 3", f"SET TimeZone = {quote_literal(time_zone)}"]


def _strict_types() -> list[Any]:
    ext = psycopg2.extensions
    date_t = ext.new_type((DATE,), "LAKE_DATE", parse_date)
    ts_t = ext.new_type((TIMESTAMP,), "LAKE_TIMESTAMP", parse_timestamp)
    tstz_t = ext.new_type((TIMESTAMPTZ,), "LAKE_TIMESTAMPTZ", parse_timestamptz)
    return [
        date_t,
        ts_t,
        tstz_t,
        ext.new_array_type((DATE_ARRAY,), "LAKE_DATE[]", date_t),
        ext.new_array_type((TIMESTAMP_ARRAY,), "LAKE_TIMESTAMP[]", ts_t),
        ext.new_array_type((TIMESTAMPTZ_ARRAY,), "LAKE_TIMESTAMPTZ[]", tstz_t),
    ]


class SnapshotReader:
    """Reads whole small tables inside ``snap`` over one connection, opened on first use."""

    def __init__(self, conn: ConnectionConfig, snap: Snapshot, time_zone: str) -> None:
        self._conn, self._snap, self._time_zone = conn, snap, time_zone
        self._db: Any = None
        self._off: str | None = None  # why the reader is off for the rest of the run
        self._lock = threading.Lock()

    def read(self, query: str) -> list[tuple[Any, ...]]:
        """Every row of ``query``. A refused value raises DirectReadUnsupported (DirectReaderUnavailable
        once the reader is off); a database error a SourceError; any error leaves the reader usable for
        the next table (a connection no longer inside the snapshot transaction is closed, and the next
        read opens a new one)."""
        with self._lock:
            db = self._open()
            try:
                with db.cursor() as cur:
                    cur.execute("SAVEPOINT direct_read")
                    try:
                        cur.execute(query)
                        rows = cur.fetchall()
                    except Exception:
                        cur.execute("ROLLBACK TO SAVEPOINT direct_read")
                        raise
                    cur.execute("RELEASE SAVEPOINT direct_read")
                    return rows
            except DirectReadUnsupported:
                raise
            except psycopg2.Error as exc:
                self._drop_if_unusable(db)
                raise as_source_error(exc, "small-table read failed") from None
            except Exception:
                self._drop_if_unusable(db)
                raise

    def close(self) -> None:
        """Close the connection; never raises (the reader's work is done, or Spark took it over)."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except Exception as exc:  # noqa: BLE001 - closing an accelerator's connection must not fail the run
                log.debug("small tables: closing the direct reader's connection failed (%s)", failure_text(exc))

    def _drop_if_unusable(self, db: Any) -> None:
        """Forget ``db`` unless it is still idle inside the snapshot transaction (e.g. the savepoint could
        not be rolled back, or the connection broke): the next read joins the snapshot on a new one."""
        try:
            usable = not db.closed and db.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
        except Exception:  # noqa: BLE001 - a connection whose state cannot be read is not used again
            usable = False
        if not usable:
            self._db = None
            with contextlib.suppress(Exception):  # already broken
                db.close()

    def _open(self) -> Any:
        if self._off is not None:
            raise DirectReaderUnavailable(self._off)
        if self._db is not None and not self._db.closed:
            return self._db
        try:
            db = connect(self._conn, application_name="lakehouse-ingest")
        except Exception as exc:  # noqa: BLE001 - the reader is an accelerator: Spark reads the small tables
            raise self._turn_off(f"connecting failed ({failure_text(exc)})") from None
        try:
            db.autocommit = True  # the session init statement opens the transaction block itself
            for caster in _strict_types():
                psycopg2.extensions.register_type(caster, db)
            with db.cursor() as cur:
                for statement in session_setup_sql(self._time_zone):
                    cur.execute(statement)
                cur.execute(self._snap.session_init_sql)
        except Exception as exc:  # noqa: BLE001 - as above
            with contextlib.suppress(Exception):  # already broken
                db.close()
            raise self._turn_off(f"joining the snapshot failed ({failure_text(exc)})") from None
        self._db = db
        return db

    def _turn_off(self, reason: str) -> DirectReaderUnavailable:
        """Turn the reader off for the rest of the run, saying so once; the error each read then raises."""
        self._off = reason
        log.warning("small tables: the direct reader is off for the rest of this run, Spark reads them: %s", reason)
        return DirectReaderUnavailable(reason)
