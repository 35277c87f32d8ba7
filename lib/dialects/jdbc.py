"""Planning queries over JDBC for dialects without a Python driver (Oracle, SQL Server): thin layer.

The catalog, row counts, numeric profiles and key samples are read with the same JDBC driver and
the same connection properties as the bulk copy itself, through the job's SparkSession (the jobs
create it; this module only takes the active one). Results are small: catalog rows and key samples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lib.errors import SourceError
from lib.retry import short_error

# One line of a driver error -> whether a retry may help.
Classifier = Callable[[str], bool]


def run_query(
    url: str,
    properties: dict[str, str],
    query: str,
    *,
    where: str,
    transient: Classifier,
    session_init: str | None = None,
) -> list[tuple[Any, ...]]:
    """Rows of ``query`` (a SELECT; no ORDER BY needed: callers sort by a returned column).

    ``where`` names the server for error messages ("oracle at db1:1521/ORCL"), never a password.
    """
    spark = _session()
    if spark is None:
        raise RuntimeError(f"querying {where} needs the job's SparkSession (JDBC driver); none is active")
    reader = spark.read.format("jdbc").option("url", url).option("query", query)
    if session_init:
        reader = reader.option("sessionInitStatement", session_init)
    for key, value in properties.items():
        reader = reader.option(key, value)
    try:
        return [tuple(row) for row in reader.load().collect()]
    except Exception as exc:  # noqa: BLE001 - every driver error becomes a SourceError
        raise source_error(exc, where, transient) from None


def _session() -> Any:
    """The job's session, also from a worker thread (the bulk load plans tables in a thread pool):
    getActiveSession() is per thread, active() falls back to the default session."""
    from pyspark.sql import SparkSession

    try:
        return SparkSession.getActiveSession() or SparkSession.active()
    except Exception:  # noqa: BLE001 - no session at all
        return None


def source_error(exc: BaseException, where: str, transient: Classifier) -> SourceError:
    """A one-line SourceError naming the server, marked transient when a retry may help."""
    line = driver_message(short_error(exc))
    return SourceError(f"{where}: {line}", transient=transient(line))


def driver_message(line: str) -> str:
    """The driver's own message without the Java exception class in front of it."""
    for marker in ("SQLRecoverableException: ", "SQLException: ", "SQLServerException: ", "SQLSyntaxErrorException: ", "Exception: "):
        if marker in line:
            return line.split(marker, 1)[1].strip()
    return line.strip()
