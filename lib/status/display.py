"""Status values as a user reads them (pure): source positions in the source's own notation.

The CDC stream records its position as two position numbers, ``"<commit>/<change>"`` in decimal
(what it compares); the bulk load records the snapshot position as the source writes it
(PostgreSQL ``0/B0ED528``). Shown side by side they must look alike, so the display converts the
numbers back through the source's dialect (``position_text``, the inverse of ``position_number``).
"""

from __future__ import annotations

from collections.abc import Callable

PositionText = Callable[[int], str]


def cdc_position_text(raw: str | None, position_text: PositionText | None, change_text: PositionText | None = None) -> str:
    """``"185830608/185830920"`` -> ``"0/B138CD0 (change 0/B138E08)"`` for PostgreSQL; the commit
    position alone when both are equal; the change position alone when the commit position is 0 (the
    connector had none for the event: its first transaction after it started). Unparseable values, or no dialect, are shown as stored.
    ``change_text`` renders the change position when it is not a position of the same kind (Oracle:
    SCN and Kafka offset, SQL Server: LSN and serial number; ``dialect.cdc_events.change_text``)."""
    if not raw:
        return ""
    if position_text is None:
        return raw
    commit, _, change = raw.partition("/")
    try:
        numbers = [int(commit), int(change)] if change else [int(commit)]
        texts = [position_text(numbers[0]), *[(change_text or position_text)(n) for n in numbers[1:]]]
    except ValueError:
        return raw
    if len(texts) == 1 or texts[0] == texts[1]:
        return texts[0]
    if numbers[0] == 0:  # no commit position (Debezium's first transaction after it started streaming): the change's alone
        return f"change {texts[1]}"
    return f"{texts[0]} (change {texts[1]})"
