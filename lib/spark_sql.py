"""Spark SQL text, written one way everywhere (pure): identifiers, string literals, Delta tables by path.

Every name that reaches Spark SQL (schemas, tables and columns with spaces, dots, quotes or backticks in them)
goes through :func:`ident`; every value spliced into SQL text (paths, JSON, names as data) through :func:`string`.
"""

from __future__ import annotations


def ident(name: str) -> str:
    """A Spark SQL identifier: backquoted, backquotes doubled."""
    return "`" + name.replace("`", "``") + "`"


def string(text: str) -> str:
    """A Spark SQL string literal: single-quoted, backslashes and quotes escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def delta_path(path: str) -> str:
    """The Delta table at ``path`` as a SQL table reference: ``delta.`<path>```."""
    return "delta." + ident(path)
