"""Comparing the source with the lake: counts, bucket checksums, differing keys, schema (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lib.dialects.base import ColumnRead
from lib.validate.model import Check
from lib.validate.render import show_key

MAX_EXAMPLES = 10

BucketSums = Mapping[str, tuple[int, int]]  # bucket -> (rows, sum of row hashes)


def differing_buckets(source: BucketSums, lake: BucketSums) -> list[str]:
    """Buckets whose row count or hash sum differ (a bucket missing on one side counts as (0, 0))."""
    return sorted(b for b in set(source) | set(lake) if source.get(b, (0, 0)) != lake.get(b, (0, 0)))


def total_rows(sums: BucketSums) -> int:
    return sum(count for count, _ in sums.values())


@dataclass(frozen=True)
class KeyDiff:
    missing: list[str] = field(default_factory=list)  # in the source, not in the lake
    extra: list[str] = field(default_factory=list)  # in the lake, not in the source
    changed: list[str] = field(default_factory=list)  # in both, other values
    duplicated: list[str] = field(default_factory=list)  # more than once in the lake
    missing_rows: int = 0  # keyless tables: rows of the source multiset the lake lacks
    extra_rows: int = 0
    # the key texts of every key above (tables with a primary key), sorted: the rows ``--repair`` reads
    keys: tuple[str, ...] = field(default=(), repr=False)

    def empty(self) -> bool:
        return not (self.missing or self.extra or self.changed or self.duplicated or self.missing_rows or self.extra_rows)


def diff_rows(key: Sequence[str], source: Sequence[tuple[str | None, int]], lake: Sequence[tuple[str | None, int]]) -> KeyDiff:
    """Compare (key text, row hash) pairs of the differing buckets; keys shown as ``id=17``."""
    if not key:
        src, lk = Counter(h for _, h in source), Counter(h for _, h in lake)
        return KeyDiff(missing_rows=sum((src - lk).values()), extra_rows=sum((lk - src).values()))
    src_by: dict[str, int] = {str(k): h for k, h in source}
    lake_by: dict[str, list[int]] = {}
    for k, h in lake:
        lake_by.setdefault(str(k), []).append(h)

    def shown(keys: list[str]) -> list[str]:
        return [show_key(key, k) for k in sorted(keys)]

    missing = [k for k in src_by if k not in lake_by]
    extra = [k for k in lake_by if k not in src_by]
    changed = [k for k, hs in lake_by.items() if k in src_by and src_by[k] not in hs]
    duplicated = [k for k, hs in lake_by.items() if len(hs) > 1]
    return KeyDiff(missing=shown(missing), extra=shown(extra), changed=shown(changed), duplicated=shown(duplicated),
                   keys=tuple(sorted({*missing, *extra, *changed, *duplicated})))


def row_count_check(source_rows: int, lake_rows: int) -> Check:
    if source_rows == lake_rows:
        return Check("row_count", "reconciliation", "pass", f"{lake_rows} rows on both sides", source_rows, lake_rows)
    delta = lake_rows - source_rows
    how = f"{-delta} missing" if delta < 0 else f"{delta} extra"
    return Check("row_count", "reconciliation", "fail", f"row count: lake {lake_rows}, source {source_rows} ({how})", source_rows, lake_rows)


def key_check(key: Sequence[str], null_keys: int, duplicate_keys: int, duplicate_rows: int, examples: Sequence[str]) -> Check:
    expected = "unique, non-null " + ", ".join(key)
    if not null_keys and not duplicate_keys:
        return Check("primary_key", "reconciliation", "pass", "primary key unique and non-null", expected, "ok")
    parts = []
    if duplicate_keys:
        parts.append(f"{duplicate_keys} duplicated key(s) ({duplicate_rows} extra rows), e.g. {', '.join(examples[:3])}")
    if null_keys:
        parts.append(f"{null_keys} row(s) with a NULL key")
    observed = {"duplicate_keys": duplicate_keys, "duplicate_rows": duplicate_rows, "null_key_rows": null_keys}
    return Check("primary_key", "reconciliation", "fail", "primary key: " + "; ".join(parts), expected, observed, {"examples": list(examples)})


def checksum_check(buckets: int, differing: Sequence[str], diff: KeyDiff | None, drill_skipped: str | None = None,
                   keys: Sequence[str] | None = None) -> Check:
    """The checksum result; ``diff`` names the keys behind the differing buckets when they were fetched,
    ``keys`` (``KeyDiff.keys``) every one of them, for ``--repair`` (not reported)."""
    if not differing:
        return Check("checksum", "reconciliation", "pass", f"checksum equal in all {buckets} buckets", "equal", "equal")
    details: dict[str, object] = {"buckets": list(differing)}
    parts = [f"checksum differs in {len(differing)} of {buckets} bucket(s) ({', '.join(list(differing)[:5])}{', ...' if len(differing) > 5 else ''})"]
    if diff is not None:
        details.update(
            missing_keys=diff.missing[:MAX_EXAMPLES],
            extra_keys=diff.extra[:MAX_EXAMPLES],
            changed_keys=diff.changed[:MAX_EXAMPLES],
            duplicated_keys=diff.duplicated[:MAX_EXAMPLES],
            missing_rows=diff.missing_rows,
            extra_rows=diff.extra_rows,
            counts={"missing": len(diff.missing), "extra": len(diff.extra), "changed": len(diff.changed), "duplicated": len(diff.duplicated)},
        )
        for label, named in (("changed", diff.changed), ("missing", diff.missing), ("extra", diff.extra), ("duplicated", diff.duplicated)):
            if named:
                parts.append(f"{label} {len(named)}: {', '.join(named[:3])}{', ...' if len(named) > 3 else ''}")
        if diff.missing_rows or diff.extra_rows:
            parts.append(f"{diff.missing_rows} row(s) missing, {diff.extra_rows} extra (no primary key)")
    elif drill_skipped:
        details["drill_down"] = drill_skipped
    return Check("checksum", "reconciliation", "fail", "; ".join(parts), "equal", f"{len(differing)} bucket(s) differ", details,
                 tuple(keys) if keys is not None else None)


def schema_check(expected: Sequence[ColumnRead], lake: Mapping[str, str]) -> Check:
    """The lake's columns (``__`` columns excluded) and types against the loader's mapping."""
    want = {r.name: r.spark_type for r in expected}
    missing = [c for c in want if c not in lake]
    extra = [c for c in lake if c not in want]
    wrong = [f"{c} is {lake[c]}, expected {t}" for c, t in want.items() if c in lake and lake[c] != t]
    if not (missing or extra or wrong):
        return Check("schema", "schema", "pass", f"{len(want)} columns with the contract's types", len(want), len(lake))
    parts = []
    if missing:
        parts.append("missing column(s) " + ", ".join(missing))
    if extra:
        parts.append("unexpected column(s) " + ", ".join(extra))
    parts += wrong
    details = {"missing": missing, "extra": extra, "type_mismatches": wrong}
    return Check("schema", "schema", "fail", "schema: " + "; ".join(parts), want, dict(lake), details)


def in_flight(check: Check) -> Check:
    """A failed reconciliation of a table CDC is still applying: reported, not failed."""
    if check.status != "fail" or check.name not in ("row_count", "checksum"):
        return check
    return Check(check.name, check.kind, "in_flight", check.message, check.expected, check.observed, check.details, check.keys)
