"""Retrying transient failures with exponential backoff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from lib.errors import SourceError

T = TypeVar("T")
log = logging.getLogger(__name__)


def backoff_delays(attempts: int, base_seconds: float, cap_seconds: float = 60.0) -> list[float]:
    """Sleep before each retry: base, 2*base, 4*base, ... capped (pure)."""
    return [min(cap_seconds, base_seconds * (2**i)) for i in range(max(attempts - 1, 0))]


def is_transient(exc: BaseException) -> bool:
    """SourceErrors say it themselves; anything else (Spark job failures, I/O) is retried."""
    if isinstance(exc, SourceError):
        return exc.transient
    return not isinstance(exc, (ValueError, TypeError, KeyError, AttributeError))


def with_retries(
    what: str,
    fn: Callable[[], T],
    attempts: int,
    base_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """Call ``fn`` up to ``attempts`` times; permanent errors and the last failure propagate."""
    delays = backoff_delays(attempts, base_seconds)
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = delays[attempt - 1]
            log.warning("%s failed (attempt %d of %d), retrying in %.1fs: %s", what, attempt, attempts, delay, short_error(exc))
            if on_retry:
                on_retry(attempt, exc)
            sleep(delay)
    raise AssertionError("unreachable")


def short_error(exc: BaseException, limit: int = 500) -> str:
    """One line describing ``exc``: Java stack traces from Spark are cut to their first line."""
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0]
    for marker in ("org.postgresql.util.PSQLException: ", "java.sql.SQLException: "):
        if marker in text:
            first = text[text.index(marker) :].splitlines()[0]
            break
    else:
        if first.startswith("An error occurred while calling") and len(lines) > 1:
            # Py4J: the Java exception is on the next line, its root cause in the last "Caused by:"
            first = lines[1].lstrip(":").strip()
            causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
            if causes and causes[-1] not in first:
                first = f"{first} (root cause: {causes[-1]})"
    return first[:limit]
