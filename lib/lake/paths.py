"""Lake locations (pure): ``<root>/<source>/<schema>/<table>`` and the ``_pipeline`` tables; which
component can reach a root, and how (docs/databricks.md, "Paths on Databricks").

Roots and what each component does with them (Spark / Python's own file functions, for config files
and validation reports / the delta-rs fast paths):

- ``./lake``, ``/data/lake``: an absolute local path / the same path / yes, off Databricks.
- ``file:///data/lake``: as is / ``/data/lake`` / yes, off Databricks.
- ``abfss://...``, ``wasbs://...``: as is (Hadoop's FileSystem) / none: written through Spark / no.
- ``dbfs:/x``: as is / on Databricks the FUSE path ``/dbfs/x``, elsewhere none / no.
- ``/dbfs/x`` on Databricks: ``dbfs:/x`` / ``/dbfs/x`` (FUSE) / no.
- ``/Volumes/<catalog>/<schema>/<volume>/x`` on Databricks: as is (Spark reads and writes volume
  paths) / the same path (FUSE) / no. Off Databricks it is a local path like any other.

"On Databricks" is ``DATABRICKS_RUNTIME_VERSION`` in the environment (classic clusters and serverless
set it; jobs/_session.py reads the same variable).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path

# ``scheme:/`` or ``scheme://``; two characters at least, so a Windows drive (``C:/``) is not a scheme.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/")
DATABRICKS_ENV = "DATABRICKS_RUNTIME_VERSION"
DBFS_FUSE = "/dbfs"
VOLUMES = "/Volumes"


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` and ``scheme:/...`` (abfss://, wasbs://, file://, dbfs:/), False for a plain path."""
    return bool(_SCHEME.match(path))


def scheme(path: str) -> str | None:
    """The URI scheme in lower case (``dbfs``, ``abfss``, ``file``), None for a plain path."""
    m = _SCHEME.match(path)
    return m.group(1).lower() if m else None


def on_databricks(env: Mapping[str, str] | None = None) -> bool:
    """This process runs on Databricks (a classic cluster or serverless)."""
    return DATABRICKS_ENV in (os.environ if env is None else env)


def is_volume_path(path: str) -> bool:
    """``/Volumes/<catalog>/<schema>/<volume>[/...]``: a Unity Catalog volume path (on Databricks)."""
    parts = path.split("/")
    return len(parts) >= 5 and parts[0] == "" and parts[1] == "Volumes" and all(parts[2:5])


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def _strip(uri: str) -> str:
    """A URI without trailing slashes, keeping the root of a scheme's tree (``dbfs:/`` stays ``dbfs:/``)."""
    stripped = uri.rstrip("/")
    return stripped + "/" if stripped.endswith(":") else stripped


def normalize_root(root: str, cwd: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The root as Spark is given it: URIs unchanged (``dbfs:/`` included); on Databricks the DBFS FUSE
    path ``/dbfs/x`` as ``dbfs:/x`` (Spark resolves plain paths against DBFS there, so ``/dbfs/x`` would
    be ``dbfs:/dbfs/x``); ``/Volumes/...`` as is (Spark on Databricks reads and writes volume paths);
    any other plain path made absolute (Spark resolves relative ones oddly)."""
    if is_uri(root):
        return _strip(root)
    if on_databricks(env) and _under(posixpath.normpath(root), DBFS_FUSE):
        rest = posixpath.normpath(root)[len(DBFS_FUSE) :]
        return "dbfs:" + (rest or "/")
    return os.path.abspath(os.path.join(cwd or os.getcwd(), root))


def python_path(path: str, env: Mapping[str, str] | None = None) -> str | None:
    """Where Python's own file functions reach ``path`` (a config file, a validation report), or None
    when only Spark (Hadoop's FileSystem) can: ``file://`` URIs as plain paths; ``dbfs:/x`` as the FUSE
    path ``/dbfs/x`` on Databricks (a classic cluster's DBFS mount; serverless limits DBFS, use a
    volume); plain paths as they are (``/Volumes/...`` and ``/Workspace/...`` are FUSE paths on
    Databricks); other URIs (abfss://, wasbs://) None."""
    kind = scheme(path)
    if kind is None:
        return path
    if kind == "file":
        rest = path[len("file:") :]
        return "/" + rest.lstrip("/") if rest.startswith("//") else rest
    if kind == "dbfs" and on_databricks(env):
        rest = "/" + path[len("dbfs:") :].lstrip("/")
        return DBFS_FUSE + rest.rstrip("/") if rest != "/" else DBFS_FUSE
    return None


def local_disk_reason(path: str, env: Mapping[str, str] | None = None) -> str | None:
    """Why the delta-rs fast paths must leave ``path`` (a lake root or a table) to Spark's Delta writer
    (pure given ``env``); None when it is the driver's own disk, where delta-rs may write.

    On Databricks never: DBFS (``dbfs:/``, ``/dbfs``) and volumes (``/Volumes``) are object storage
    behind a FUSE mount with no atomic put-if-absent for Delta's commit files, and any other plain path
    is the driver's disk for Python but DBFS for Spark (its default file system), so a table delta-rs
    wrote there would not be the one Spark reads. Elsewhere: remote URIs (abfss://, wasbs://, dbfs:/)."""
    kind = scheme(path)
    if on_databricks(env):
        if kind == "dbfs" or (kind is None and _under(posixpath.normpath(path), DBFS_FUSE)):
            return "the lake is on DBFS (Spark's Delta writer on Databricks)"
        if kind is None and is_volume_path(path):
            return "the lake is in a Unity Catalog volume (a FUSE path: Spark's Delta writer on Databricks)"
        if kind not in (None, "file"):
            return f"the lake is remote ({kind}:)"
        return "on Databricks plain paths are DBFS for Spark, not the driver's disk"
    if kind not in (None, "file"):
        return f"the lake is remote ({kind}:)"
    return None


def report_target(path: str, env: Mapping[str, str] | None = None) -> Path | str:
    """Where the validation report goes: a local :class:`Path` Python writes (plain paths, ``file://``,
    ``/Volumes/...``, ``dbfs:/`` as ``/dbfs/...`` on Databricks), or the URI string Spark writes through
    Hadoop's FileSystem (abfss://, wasbs://; ``dbfs:/`` off Databricks, where Hadoop says what it lacks)."""
    local = python_path(path, env)
    return Path(local) if local is not None else path


def table_path(root: str, source: str, schema: str, table: str) -> str:
    for part in (source, schema, table):
        if "/" in part or part in ("", ".", ".."):
            raise ValueError(f"cannot place {part!r} in the lake: names with '/' or empty names are not supported")
    return f"{root.rstrip('/')}/{source}/{schema}/{table}"


def source_path(root: str, source: str) -> str:
    return f"{root.rstrip('/')}/{source}"


def status_path(root: str) -> str:
    return f"{root.rstrip('/')}/_pipeline/status"


def dead_letter_path(root: str) -> str:
    return f"{root.rstrip('/')}/_pipeline/dead_letter"


def tombstone_path(root: str, source: str) -> str:
    """Delete positions of a source's tables, kept so a late or replayed event never resurrects a row."""
    return source_path(f"{root.rstrip('/')}/_pipeline/tombstones", source)
