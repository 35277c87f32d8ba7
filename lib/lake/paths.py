"""Lake locations (pure): ``<root>/<source>/<schema>/<table>`` and the ``_pipeline`` tables."""

from __future__ import annotations

import os
import re

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(path: str) -> bool:
    """True for ``scheme://...`` (abfss://, wasbs://, file://), False for a plain local path."""
    return bool(_SCHEME.match(path))


def normalize_root(root: str, cwd: str | None = None) -> str:
    """Absolute local paths for plain paths (Spark resolves relative ones oddly); URIs unchanged."""
    if _SCHEME.match(root):
        return root.rstrip("/")
    return os.path.abspath(os.path.join(cwd or os.getcwd(), root))


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
