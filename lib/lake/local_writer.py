"""Whether delta-rs can write this run's lake directly: the local-disk fast path, and a lake on Azure
storage reached through deltalake's object store with the job's ``storage:`` accounts
(lib/lake/delta_rs_storage.py: the MERGE, the status table and the tombstones; never on Databricks).

Three writers use it: new small tables (lib/bulk/arrow_writer.py), the status table
(lib/status/delta_rs_store.py) and the CDC stream's tombstones (lib/cdc/loop/tombstone_buffer.py). Both write Delta tables Spark reads back unchanged, but only where a
plain lake path is this machine's disk as Spark sees it: not on a remote lake (ADLS, Blob), not where
Spark resolves plain paths elsewhere (``dbfs:/`` on Databricks, a Spark Connect server on another
machine: :func:`default_filesystem`), and only when ``deltalake`` and ``pyarrow`` are installed. Everywhere else Spark's Delta writer does the work, as before.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pyspark.sql import SparkSession

from lib.fallback import failure_text
from lib.lake.delta_rs_storage import is_remote, remote_reason, target
from lib.lake.paths import local_disk_reason
from lib.sessions import app_key

log = logging.getLogger(__name__)

# Spark session settings that give new Delta tables their properties (Delta-Spark reads these when it
# creates a table); delta-rs is handed the same properties explicitly.
_DEFAULTS_PREFIX = "spark.databricks.delta.properties.defaults."


def missing_modules() -> list[str]:
    """The Python modules delta-rs writing needs that are not installed (deltalake; pyarrow)."""
    return [m for m in ("deltalake", "pyarrow") if importlib.util.find_spec(m) is None]


# Per Spark application (lib.sessions.app_key): where it resolves this machine's plain paths.
_default_fs: dict[str, str] = {}
_default_fs_lock = threading.Lock()


def default_filesystem(spark: SparkSession) -> str:
    """Where Spark resolves this machine's plain paths: "file:///" when it reads this machine's disk there
    (a local session; a Spark Connect server on this machine whose default file system is the local
    one), else the scheme it resolves them to (``dbfs:``) or "another machine's disk" (a remote Spark
    Connect server). Asked once per application: Spark resolves the plain path of a file made here
    for the question (``DataFrame.inputFiles``, no Spark job; public on classic Spark and Spark Connect)."""
    key = app_key(spark)
    with _default_fs_lock:
        if key not in _default_fs:
            _default_fs[key] = _probe_default_filesystem(spark)
        return _default_fs[key]


def _probe_default_filesystem(spark: SparkSession) -> str:
    from pyspark.errors import AnalysisException

    fd, probe = tempfile.mkstemp(prefix="lakehouse-fs-probe-", suffix=".txt")
    os.close(fd)
    try:
        files = spark.read.format("text").load(probe).inputFiles()
    except AnalysisException as exc:
        if exc.getCondition() == "PATH_NOT_FOUND":  # Spark does not see this machine's files at their plain paths
            scheme = re.search(r"Path does not exist: ([A-Za-z][A-Za-z0-9+.-]*):", str(exc))
            return f"{scheme.group(1)}:" if scheme and scheme.group(1) != "file" else "another machine's disk"
        log.debug("where plain paths resolve could not be asked: %s", failure_text(exc))
        return "unknown"
    except Exception as exc:  # noqa: BLE001 - unknown: delta-rs stays off, Spark writes
        log.debug("where plain paths resolve could not be asked: %s", failure_text(exc))
        return "unknown"
    finally:
        os.remove(probe)
    resolved = files[0] if files else ""
    return "file:///" if resolved.startswith("file:") else (resolved.split(":", 1)[0] + ":" if ":" in resolved else "unknown")


def unusable_reason(default_fs: str, missing: list[str], root: str | None = None,
                    remote: Callable[[str], str | None] | None = None) -> str | None:
    """Why delta-rs must not write here (pure given ``remote``); None when it can. ``root``: the lake root
    or the one table the writer writes (the status table, a MERGE's table), else each path is checked by
    its writer. ``remote``: why delta-rs cannot reach a remote root through deltalake's object store
    (:func:`lib.lake.delta_rs_storage.remote_reason`); without it remote roots are Spark's. A remote root
    delta-rs reaches does not depend on where Spark resolves plain paths."""
    if root is not None and remote is not None and is_remote(root):
        reason = remote(root)
        if reason is not None:
            return reason
    else:
        if root is not None and (reason := local_disk_reason(root)) is not None:  # remote, DBFS, volumes, Databricks
            return reason
        if not default_fs.startswith("file:"):
            return f"plain lake paths resolve to {default_fs}, not to local disk"
    if missing:
        return f"{' and '.join(missing)} not installed"
    return None


def delta_rs_reason(spark: SparkSession, root: str | None = None) -> str | None:
    """:func:`unusable_reason` for this session: a remote root (ADLS, Blob) with the job's ``storage:``
    accounts (lib/lake/delta_rs_storage.py), a local one where Spark resolves plain paths."""
    if root is not None and is_remote(root):
        return unusable_reason("", missing_modules(), root, remote_reason)
    return unusable_reason(default_filesystem(spark), missing_modules(), root)


def uses_delta_rs(spark: SparkSession, root: str | None, writer: str, what: str, table: str | None = None) -> bool:
    """Whether delta-rs writes ``what`` (under ``root``; None: each path is checked by its writer;
    ``table``: the one existing table it writes, whose features must suit delta-rs) for the configured
    ``writer``; says why not when delta-rs was asked for but cannot (a warning only when a module is
    missing)."""
    if writer != "delta-rs":
        return False
    reason = delta_rs_reason(spark, root)
    if reason is None and table is not None:
        try:
            unsupported = unsupported_features(table)
        except Exception as exc:  # noqa: BLE001 - an accelerator, never a new way to fail: Spark writes it
            reason = f"{table}: {PROTOCOL_UNREADABLE} ({failure_text(exc)})"
        else:
            if unsupported:
                reason = f"{table} has table features delta-rs does not support ({', '.join(unsupported)})"
    if reason:
        level = logging.WARNING if PROTOCOL_UNREADABLE in reason or "installed" in reason else logging.INFO if "features" in reason else logging.DEBUG
        log.log(level, "%s written by Spark: %s", what, reason)
    return reason is None


# The reason given when reading a table's protocol failed in delta-rs (said at WARNING: an error).
PROTOCOL_UNREADABLE = "delta-rs could not read its protocol"


def writable_reason(path: str) -> str | None:
    """Why delta-rs cannot write the local table at ``path``; None when it can. A protocol delta-rs
    fails to read leaves the table to Spark (:data:`PROTOCOL_UNREADABLE`): it fails nothing."""
    try:
        return features_reason(protocol_features(path))
    except Exception as exc:  # noqa: BLE001 - an accelerator, never a new way to fail: Spark writes it
        return f"{PROTOCOL_UNREADABLE} ({failure_text(exc)})"


# The one list of Delta table features deltalake 1.6 cannot write (its writer refuses such a table):
# every delta-rs writer checks it before writing, never by failing.
UNSUPPORTED_WRITER_FEATURES = frozenset({"deletionVectors", "columnMapping"})


def features_reason(features: Iterable[str]) -> str | None:
    """Why delta-rs cannot write a table with these Delta table ``features`` (pure); None if it can."""
    unsupported = set(features) & UNSUPPORTED_WRITER_FEATURES
    return f"table features delta-rs does not write ({', '.join(sorted(unsupported))})" if unsupported else None


def unsupported_features(path: str) -> list[str]:
    """Table features of the local Delta table at ``path`` (if any) that delta-rs cannot write: e.g.
    deletion vectors, on a table Spark created under
    ``spark.databricks.delta.properties.defaults.enableDeletionVectors``."""
    return sorted(protocol_features(path) & UNSUPPORTED_WRITER_FEATURES)


def protocol_features(path: str) -> set[str]:
    """The reader and writer table features of the Delta table at ``path`` (local, or remote where delta-rs
    reaches it: lib/lake/delta_rs_storage.py); none without a table."""
    if not delta_table_exists(path):
        return set()
    protocol = open_table(path).protocol()
    return set(protocol.reader_features or ()) | set(protocol.writer_features or ())


def open_table(path: str) -> Any:
    """The deltalake ``DeltaTable`` at ``path``: a local path, or a remote one with its account's options."""
    from deltalake import DeltaTable

    uri, options = target(path)
    return DeltaTable(uri, storage_options=options)


def table_properties(session_conf: Mapping[str, str]) -> dict[str, str]:
    """The table properties Delta-Spark would give a new table under ``session_conf`` (pure):
    ``spark.databricks.delta.properties.defaults.<key>`` becomes ``delta.<key>``."""
    return {f"delta.{k[len(_DEFAULTS_PREFIX) :]}": v for k, v in session_conf.items() if k.startswith(_DEFAULTS_PREFIX)}


def delta_table_exists(path: str) -> bool:
    """A Delta table is at ``path``: a local one (plain or ``file://``) checked on disk, no JVM call; a
    remote one asked of deltalake with its account's options."""
    if is_remote(path):
        from deltalake import DeltaTable

        uri, options = target(path)
        return bool(DeltaTable.is_deltatable(uri, storage_options=options))
    return os.path.isdir(os.path.join(local_path(path), "_delta_log"))


def local_path(path: str) -> str:
    """A plain path for delta-rs (``file://`` URIs included)."""
    return path[len("file://") :] if path.startswith("file://") else path
