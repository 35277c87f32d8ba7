"""How a fast path hands its work to the general (Spark) path, and what it logs when it does.

A fast path (a small table read with psycopg2, a Delta commit made by delta-rs) is an accelerator,
never a new way to fail: what it cannot do, and any error it hits, hands the work to the general path
before anything is committed, so the general path's guarantees hold. Each says so once per table or
writer, with the reason: at WARNING for an unexpected error, whose text is cut to one line with its
quoted parts elided (:func:`failure_text`: an engine's message may quote the value it failed on, and
logs never carry source values; secrets are masked by the log handlers, lib/logs.py).
"""

from __future__ import annotations

from lib.logs import without_values
from lib.retry import short_error


def failure_text(exc: BaseException) -> str:
    """``Type: first line of the message`` without quoted values (pure)."""
    return f"{type(exc).__name__}: {without_values(short_error(exc, 200))}"

