"""The order of Oracle change events (pure): (commit_scn, scn, Kafka offset), compared as numbers.

Debezium's Oracle source block carries ``scn`` (the change's SCN) and ``commit_scn`` (its transaction's
commit SCN), both as decimal strings (SCNs exceed 2^53). Transactions apply in commit order; within one,
changes in SCN order; changes sharing an SCN in the order the connector wrote them (one topic partition
per table, so the Kafka offset). Every part fits decimal(38,0): SCNs are below 2^64.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def scn_number(value: Any) -> int:
    """An SCN field as an integer; a missing one (snapshot records carry no commit_scn) is 0."""
    if value is None or value == "":
        return 0
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError(f"not an Oracle SCN: {value!r}")
    return int(text)


def event_order(source_block: Mapping[str, Any], kafka_offset: int) -> tuple[int, int, int]:
    return (scn_number(source_block.get("commit_scn")), scn_number(source_block.get("scn")), int(kafka_offset))
