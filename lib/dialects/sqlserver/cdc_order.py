"""The order of SQL Server change events (pure): (commit_lsn, change_lsn, event_serial_no).

Debezium's SQL Server source block carries LSNs as hex text ``'00000027:00000758:0005'``: a 4-byte
virtual log file number, a 4-byte block offset and a 2-byte slot. The 10 bytes read as one unsigned
integer order LSNs exactly as the server does; the largest (2^80 - 1) fits decimal(38,0). An UPDATE
is captured as two rows sharing change_lsn; ``event_serial_no`` orders them (and a PK change's delete
before its insert).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_LSN = re.compile(r"^([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{4})$")
_HEX = re.compile(r"^(0x)?([0-9A-Fa-f]{20})$")


def lsn_number(lsn: Any) -> int:
    """``'00000027:00000758:0005'`` (Debezium) or ``'0x000000270000075800050'``-style hex of
    ``sys.fn_cdc_get_max_lsn()`` -> an integer; a missing LSN (NULL) is 0."""
    if lsn is None or lsn == "":
        return 0
    text = str(lsn).strip()
    match = _LSN.match(text)
    if match:
        return int("".join(match.groups()), 16)
    match = _HEX.match(text)
    if match:
        return int(match.group(2), 16)
    raise ValueError(f"not a SQL Server LSN: {lsn!r}")


def lsn_text(number: int) -> str:
    """The inverse of :func:`lsn_number`: Debezium's ``xxxxxxxx:xxxxxxxx:xxxx`` form."""
    if not 0 <= number < 1 << 80:
        raise ValueError(f"not a SQL Server LSN number: {number}")
    digits = f"{number:020x}"
    return f"{digits[:8]}:{digits[8:16]}:{digits[16:]}"


def event_order(source_block: Mapping[str, Any], kafka_offset: int) -> tuple[int, int, int]:
    """(commit_lsn, change_lsn, event_serial_no); ``kafka_offset`` is not needed (kept for the interface)."""
    serial = source_block.get("event_serial_no")
    return (lsn_number(source_block.get("commit_lsn")), lsn_number(source_block.get("change_lsn")), int(serial or 0))
