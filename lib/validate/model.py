"""What a validation run finds: checks per table and the table's verdict (pure data)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Verdict = Literal["PASS", "FAIL", "INFLIGHT"]
CheckStatus = Literal["pass", "fail", "skipped", "in_flight"]


@dataclass(frozen=True)
class Check:
    """One check of one table. ``expected`` / ``observed`` are short, human-readable values."""

    name: str  # e.g. "row_count", "checksum", "expect_column_values_to_not_be_null(email)"
    kind: str  # "reconciliation" | "schema" | "expectation" | "load"
    status: CheckStatus
    message: str  # one line, says why
    expected: Any = None
    observed: Any = None
    details: dict[str, Any] = field(default_factory=dict)  # e.g. differing buckets and keys
    # The checksum's: the key text of every differing row of a table with a primary key, when the
    # drill-down named them all (``--repair`` reads only those rows); never reported (can be many)
    keys: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["keys"]
        return out


@dataclass(frozen=True)
class TableReport:
    schema: str
    table: str
    location: str
    checks: tuple[Check, ...]
    source_rows: int | None = None
    lake_rows: int | None = None
    in_flight: bool = False  # CDC is applying changes to this table
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def verdict(self) -> Verdict:
        if any(c.failed for c in self.checks):
            return "FAIL"
        if any(c.status == "in_flight" for c in self.checks):
            return "INFLIGHT"
        return "PASS"

    @property
    def reason(self) -> str:
        """Why the verdict: the failing checks' messages, else a short summary of what passed."""
        failing = [c.message for c in self.checks if c.failed]
        if failing:
            return "; ".join(failing)
        flight = [c.message for c in self.checks if c.status == "in_flight"]
        if flight:
            return "in flight (CDC running): " + "; ".join(flight)
        passed = [c for c in self.checks if c.status == "pass"]
        expectations = sum(1 for c in passed if c.kind == "expectation")
        parts = [f"{self.lake_rows} rows" if self.lake_rows is not None else "checked"]
        parts += [c.message for c in passed if c.name in ("checksum",)]
        if expectations:
            parts.append(f"{expectations} expectation(s) met")
        skipped = [c.name for c in self.checks if c.status == "skipped"]
        if skipped:
            parts.append("skipped: " + ", ".join(skipped))
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "table": self.table,
            "verdict": self.verdict,
            "reason": self.reason,
            "location": self.location,
            "source_rows": self.source_rows,
            "lake_rows": self.lake_rows,
            "in_flight": self.in_flight,
            "seconds": round(self.seconds, 2),
            "checks": [c.as_dict() for c in self.checks],
        }
