"""Status events recorded in batches: one status commit per interval instead of one per event.

With hundreds of tables a commit per event (running, chunk done, completed) costs more than copying a
small table. Table threads hand their events to a :class:`StatusBatcher`; a background thread commits
what has accumulated every ``interval_seconds`` in one append. Nothing is weakened by the delay: a
table's data commit is idempotent and recognisable by its load id (recorded, with the plan, before
any copy starts), so a crash that loses queued events loses no data and duplicates none; the next
run finds the committed chunks in the lake table's log and records the completion then.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from lib.retry import short_error
from lib.status.record import StatusEvent

log = logging.getLogger(__name__)


class StatusBatcher:
    """Collects events from many threads and commits them with ``append`` (one call per batch)."""

    def __init__(self, append: Callable[..., None], interval_seconds: float = 1.0) -> None:
        self._append = append
        self.interval = interval_seconds
        self._queue: list[StatusEvent] = []
        self._lock = threading.Lock()  # guards the queue
        self._commit_lock = threading.Lock()  # one commit at a time, in queue order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.commits = 0
        self.failed_commits = 0

    def record(self, *events: StatusEvent) -> None:
        """Queue ``events``; they are committed with the next batch."""
        with self._lock:
            self._queue.extend(events)

    def flush(self) -> bool:
        """Commit everything queued now; False when that commit failed (its events stay queued)."""
        with self._commit_lock:
            with self._lock:
                batch, self._queue = self._queue, []
            if not batch:
                return True
            try:
                self._append(*batch)
            except Exception as exc:  # noqa: BLE001 - retried by append already; kept for the next batch
                with self._lock:
                    self._queue[:0] = batch
                self.failed_commits += 1
                log.error("status: could not commit %d event(s), kept for the next batch: %s", len(batch), short_error(exc))
                return False
            self.commits += 1
            log.debug("status: committed %d event(s) in one batch", len(batch))
            return True

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def __enter__(self) -> StatusBatcher:
        self._thread = threading.Thread(target=self._run, name="status-batcher", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()
