"""Load progress: counters shared by the table threads, and a periodic overall progress line."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("bulk.progress")


@dataclass
class _Counts:
    tables_done: int = 0
    tables_failed: int = 0
    rows: int = 0


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def progress_line(tables_done: int, tables_total: int, rows: int, rows_total: int, elapsed: float) -> str:
    """The overall progress line (pure): tables, rows, rate and an ETA from the rate so far."""
    rate = rows / elapsed if elapsed > 0 else 0.0
    remaining = max(rows_total - rows, 0)
    eta = remaining / rate if rate > 0 else None
    pct = f" ({100.0 * rows / rows_total:.1f}%)" if rows_total > 0 else ""
    return (
        f"progress: {tables_done}/{tables_total} tables, {rows:,}/~{rows_total:,} rows{pct}, "
        f"{rate:,.0f} rows/s, elapsed {format_eta(elapsed)}, ETA {format_eta(eta)}"
    )


class Progress:
    def __init__(self, tables_total: int, rows_total: int, interval_seconds: float) -> None:
        self.tables_total = tables_total
        self.rows_total = rows_total
        self.interval = interval_seconds
        self.started = time.monotonic()
        self._counts = _Counts()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_rows(self, rows: int) -> None:
        with self._lock:
            self._counts.rows += rows

    def table_finished(self, failed: bool) -> None:
        with self._lock:
            self._counts.tables_done += 1
            self._counts.tables_failed += int(failed)

    @property
    def rows(self) -> int:
        with self._lock:
            return self._counts.rows

    def line(self) -> str:
        with self._lock:
            counts = _Counts(**vars(self._counts))
        return progress_line(counts.tables_done, self.tables_total, counts.rows, self.rows_total, time.monotonic() - self.started)

    def __enter__(self) -> Progress:
        if self.interval > 0:
            self._thread = threading.Thread(target=self._report, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _report(self) -> None:
        while not self._stop.wait(self.interval):
            log.info("%s", self.line())
