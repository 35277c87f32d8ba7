"""Which tables a run covers: the source's include/exclude globs and the ``--tables`` flag (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase


def matches(schema: str, table: str, patterns: Iterable[str]) -> bool:
    """A glob matches ``table`` alone or ``schema.table`` (case-sensitive, as the source spells names)."""
    qualified = f"{schema}.{table}"
    return any(fnmatchcase(table, p) or fnmatchcase(qualified, p) for p in patterns)


def select_tables(
    names: Sequence[tuple[str, str]],
    include: Sequence[str],
    exclude: Sequence[str],
    only: Sequence[str] | None = None,
) -> list[tuple[str, str]]:
    """``(schema, table)`` pairs kept by ``include``, not dropped by ``exclude``, and matching ``only``."""
    return [
        (s, t)
        for s, t in names
        if matches(s, t, include) and not matches(s, t, exclude) and (not only or matches(s, t, only))
    ]


def parse_globs(flag_value: str | None) -> list[str] | None:
    """``--tables 'public.a*,b'`` -> ``['public.a*', 'b']``; None when the flag is absent."""
    if flag_value is None:
        return None
    return [p.strip() for p in flag_value.split(",") if p.strip()]
