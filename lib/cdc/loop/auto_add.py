"""The running stream's look for tables created or dropped at the source (thin layer; ``cdc.auto_add_tables``).

A background thread of the long-running stream lists the source's tables every
``cdc.auto_add_interval_seconds`` and compares them with the status table (lib.cdc.new_tables, pure).
A new table (or one created again after it was dropped) is copied in this process, on the stream's Spark
session, by the bulk load's own path for ``--tables <schema.table>`` (``--no-resume`` for one created
again): its own snapshot, the status table, the connector's include list. The apply loop goes on with
the other tables meanwhile and takes the new one over as soon as its copy completed. Dropped tables are
handed to the apply loop, which records them once their last events are applied.

At its start the stream also resumes the copies it started itself that a crash cut short (their status
events carry ``STREAM_COPY_NOTE``; lib.cdc.new_tables), by the bulk load's resume path: the long-running
stream in its background thread at once (then it looks every interval, as before); ``--available-now``
in its one look, made before its apply loop starts (``first_look``), so that a new table is copied and
applied in the same run.

PostgreSQL: before the copy takes its snapshot, the table is added to the publication and the
connector's include list (the connector restarts from its stored offsets), so every change after the
snapshot reaches the topic: a connector still running with the old include list would drop the new
table's changes made while it is copied. Oracle and SQL Server register the connector before they copy
anyway (docs/cdc-handoff.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pyspark.sql import SparkSession

from lib.bulk.runner import BulkOptions, discover_tables, run_bulk_load
from lib.cdc.new_tables import STREAM_COPY_NOTE, Name, TableChanges, copied_line, diff_tables, exact_glob, found_line, gone_line
from lib.config.model import Config, SourceConfig
from lib.debezium.handoff import connector_document, register_connector
from lib.lake.catalog import sync_source
from lib.lake.paths import normalize_root
from lib.logs import redact
from lib.retry import short_error
from lib.sessions import child_session
from lib.status.record import StatusEvent
from lib.status.store import StatusStore

log = logging.getLogger(__name__)


class AutoAdder:
    def __init__(self, spark: SparkSession, config: Config, source: SourceConfig, dialect: Any, status: StatusStore,
                 selected: Callable[[str, str], bool], on_copied: Callable[[], None],
                 on_dropped: Callable[[list[StatusEvent]], None]) -> None:
        assert source.cdc is not None
        self.spark = spark
        self.config = config
        self.source = source
        self.dialect = dialect
        self.status = status
        self.selected = selected  # include/exclude and the stream's --tables
        self.on_copied = on_copied  # the apply loop looks for tables ready for CDC now
        self.on_dropped = on_dropped  # the apply loop records them once applied
        self.interval = source.cdc.auto_add_interval_seconds
        self._skip: set[Name] = set()  # tried, and still without a status event: not tried again by this run
        self._reported: set[Name] = set()  # dropped tables already logged
        self._session: SparkSession | None = None

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(stop,), name="cdc-auto-add", daemon=True)
        thread.start()
        log.info("source %s: new and dropped tables are looked for every %gs (cdc.auto_add_tables)", self.source.name, self.interval)
        return thread

    def _run(self, stop: threading.Event) -> None:
        self._try(lambda: self.resume_own(stop), "resuming the stream's own copies cut short", "; jobs/bulk_load.py --tables resumes them")
        while not stop.wait(self.interval):
            self._try(lambda: self.look(stop), "looking for new or dropped tables", f"; looking again in {self.interval:g}s")

    def first_look(self, stop: threading.Event | None = None) -> None:
        """The one look of an ``--available-now`` run, before its apply loop starts (in this thread): the
        stream's own copies cut short resumed, new tables copied, dropped ones handed to the loop."""
        log.info("source %s: looking for new and dropped tables once (cdc.auto_add_tables)", self.source.name)
        self._try(lambda: self.look(stop, first=True), "looking for new or dropped tables", "; this run applies the tables known already")

    def _try(self, action: Callable[[], object], what: str, then: str) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - the source or the status table unreachable for a moment
            log.warning("source %s: %s failed (%s)%s", self.source.name, what, redact(short_error(exc), self.config.secrets()), then)

    def resume_own(self, stop: threading.Event | None = None) -> tuple[Name, ...]:
        """At the long-running stream's start: resume the copies it started itself that a crash cut short."""
        resumed = self._changes(first=True).resumed
        for name in resumed:
            if stop is not None and stop.is_set():
                break
            self._copy(name, returned=False, resumed=True)
        return resumed

    def _changes(self, first: bool) -> TableChanges:
        listed = self.dialect.list_tables(self.source)
        known = {(e.schema, e.table): e for e in self.status.latest(self.source.name).values()}
        return diff_tables(listed, known, self.source.schemas, self.selected, self._skip, resume_own=first)

    def look(self, stop: threading.Event | None = None, first: bool = False) -> TableChanges:
        """One look: list, compare, hand dropped tables to the loop, copy new ones (one after the other).
        ``first`` (an ``--available-now`` run's look): the stream's own copies cut short are resumed too."""
        changes = self._changes(first)
        self._reported &= {(e.schema, e.table) for e in changes.dropped}
        for event in changes.dropped:
            if (event.schema, event.table) not in self._reported:
                log.info("%s", gone_line(event.schema, event.table))
                self._reported.add((event.schema, event.table))
        if changes.dropped:
            self.on_dropped(list(changes.dropped))
        for name in changes.to_copy:
            if stop is not None and stop.is_set():
                break
            self._copy(name, returned=name in changes.returned, resumed=name in changes.resumed)
        return changes

    def _copy(self, name: Name, returned: bool, resumed: bool = False) -> None:
        """Copy one table by the bulk load's path, its events marked as the stream's (``STREAM_COPY_NOTE``);
        a copy cut short (``resumed``) goes on after its last committed chunk."""
        schema, table = name
        started = time.monotonic()
        log.info("%s", found_line(schema, table, returned, resumed))
        glob = exact_glob(schema, table)
        try:
            self._capture_first(glob)  # again for a resumed copy: idempotent, and its capture is certain
            options = BulkOptions(tables=[glob], resume=not returned, note=STREAM_COPY_NOTE)
            code = run_bulk_load(self._spark(), self.config, self.source.name, options)
        except Exception as exc:  # noqa: BLE001 - this table's copy; the stream and the other tables go on
            self._skip.add(name)
            log.error("%s.%s: the automatic copy FAILED (%s); the stream goes on without it: run jobs/bulk_load.py --tables '%s' to copy it",
                      schema, table, redact(short_error(exc), self.config.secrets()), glob)
            return
        event = self.status.latest(self.source.name).get((self.source.name, schema, table))
        if event is None:
            self._skip.add(name)
            log.warning("%s.%s: the bulk load left it out (its log says why); not tried again by this run", schema, table)
            return
        if code != 0 or event.state != "completed":
            log.error("%s.%s: the automatic copy ended %s (%s); jobs/status.py shows it, jobs/bulk_load.py --tables '%s' copies it again",
                      schema, table, event.state, event.last_error or f"exit code {code}", glob)
            return
        sync_source(self._spark(), self.config, self.source.name, normalize_root(self.config.lake.root))
        log.info("%s", copied_line(schema, table, event.row_count, time.monotonic() - started))
        self.on_copied()

    def _capture_first(self, glob: str) -> None:
        """PostgreSQL with a registered connector: the table in the publication and in the connector's
        include list before the copy's snapshot is taken (see the module's docstring)."""
        prepare = getattr(self.dialect, "prepare_capture", None)
        cdc = self.source.cdc
        if prepare is None or cdc is None or not cdc.connect_url:
            return
        _dialect, tables = discover_tables(self.config, self.source, [glob])
        covered, _notes = self.dialect.streamable(self.source, tables)
        if not covered:
            return  # not streamable (no key): the bulk load copies it and notes why
        prepare(self.source, covered)
        register_connector(self.source, connector_document(self.source, self.dialect, covered))

    def _spark(self) -> SparkSession:
        """A session of the stream's application with its own SQL settings (classic Spark), or the stream's
        session itself (Spark Connect)."""
        if self._session is None:
            self._session = child_session(self.spark) or self.spark
        return self._session
