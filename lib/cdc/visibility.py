"""Is a change event's transaction contained in the bulk copy? Exact, by transaction visibility (pure).

The bulk load records, per table, the text of ``pg_current_snapshot()`` taken inside the snapshot its
partition readers used (``snapshot_txids`` in the status table), e.g. ``1041:1049:1041,1045``:

    xmin  the oldest transaction still running when the snapshot was taken: every xid below it is finished
    xmax  one past the newest finished transaction: every xid at or above it had not finished
    xip   the transactions in between that had not finished (running, or for a replication slot's
          snapshot: not committed as far as the slot knows)

A transaction is visible in the snapshot (its changes are in the copy) iff ``xid < xmin``, or
``xid < xmax`` and ``xid`` not in ``xip``; rolled-back transactions never reach the stream, so "finished
before the snapshot" means "committed before it". The values are 64-bit (``xid8``: epoch << 32 | xid).

Debezium's ``source.txId`` is the 32-bit top-level xid of the event's transaction (pgoutput BEGIN),
possibly delivered as a signed 32-bit number. It is normalized mod 2^32 and widened to 64 bits relative
to ``xmax``: the 64-bit value with the same low 32 bits that is closest to ``xmax`` (in
``[xmax - 2^31, xmax + 2^31)``), as PostgreSQL compares 32-bit xids itself. That is right for every
event within 2^31 transactions of the snapshot, which PostgreSQL's wraparound protection guarantees
for any transaction still retained by the slot.

``visible`` is the reference; ``visible_sql`` is the same rule as a Spark SQL boolean expression over a
bigint column, which the CDC stream uses to skip events already in the copy. A NULL txid is not
visible (FALSE): such an event is applied, and the MERGE's position guard decides.
"""

from __future__ import annotations

from dataclasses import dataclass

# The source position columns every lake table carries: the last change applied to the row
COMMIT, CHANGE = "__source_commit_pos", "__source_change_pos"


def lsn_fallback_visible(snapshot_position: int) -> str:
    """Without the snapshot's txids: an event is in the copy when its change LSN is at or before the
    snapshot position (exact except for transactions open across the snapshot: see docs/cdc-stream.md)."""
    return f"({CHANGE} <= {snapshot_position})"

XID_MODULUS = 1 << 32
HALF = 1 << 31


@dataclass(frozen=True)
class SnapshotTxids:
    """A parsed ``pg_current_snapshot()`` text: 64-bit xmin, xmax and the in-progress xids (sorted)."""

    xmin: int
    xmax: int
    xip: tuple[int, ...] = ()

    def text(self) -> str:
        """PostgreSQL's text form, ``xmin:xmax:xip1,xip2,...``."""
        return f"{self.xmin}:{self.xmax}:{','.join(str(x) for x in self.xip)}"


def parse_snapshot_txids(text: str) -> SnapshotTxids:
    """Parse ``xmin:xmax:xip1,xip2,...`` (``pg_snapshot`` / ``txid_snapshot`` text); ValueError if malformed."""
    parts = text.strip().split(":")
    if len(parts) != 3:
        raise ValueError(f"not a snapshot text (xmin:xmax:xip,...): {text!r}")
    try:
        xmin, xmax = int(parts[0]), int(parts[1])
        xip = tuple(sorted({int(x) for x in parts[2].split(",") if x.strip()}))
    except ValueError:
        raise ValueError(f"not a snapshot text (xmin:xmax:xip,...): {text!r}") from None
    if not 0 <= xmin <= xmax or any(not xmin <= x < xmax for x in xip):
        raise ValueError(f"inconsistent snapshot (need xmin <= xip < xmax): {text!r}")
    return SnapshotTxids(xmin, xmax, xip)


def widen_xid(xid32: int, xmax: int) -> int:
    """The 64-bit xid with the low 32 bits of ``xid32`` (signed or unsigned) closest to ``xmax``."""
    delta = (xid32 - xmax) % XID_MODULUS  # xid32's distance ahead of xmax, mod 2^32
    return xmax + delta if delta < HALF else xmax + delta - XID_MODULUS


def visible(xid32: int | None, snap: SnapshotTxids) -> bool:
    """The transaction ``xid32`` had committed when ``snap`` was taken: its changes are in the copy."""
    if xid32 is None:
        return False
    xid = widen_xid(xid32, snap.xmax)
    return xid < snap.xmin or (xid < snap.xmax and xid not in snap.xip)


def visible_sql(txid_expr: str, snap: SnapshotTxids) -> str:
    """Spark SQL boolean: ``visible(txid_expr, snap)`` for a bigint expression; FALSE when it is NULL.

    ``delta`` is the txid's distance ahead of xmax mod 2^32; the widened xid is below xmax iff
    ``delta >= 2^31`` (then it is ``xmax + delta - 2^32``). Below xmax, only the xids in xip are not
    visible (they all lie in [xmin, xmax)). Long xip lists are fine: Spark turns a long IN list into a
    hash set lookup.
    """
    delta = f"pmod(CAST({txid_expr} AS BIGINT) - {snap.xmax % XID_MODULUS}, {XID_MODULUS})"
    below_xmax = f"{delta} >= {HALF}"
    if not snap.xip:
        return f"coalesce({below_xmax}, false)"
    offset = snap.xmax - XID_MODULUS
    xid = f"({delta} + {offset})" if offset >= 0 else f"({delta} - {-offset})"
    listed = ", ".join(str(x) for x in snap.xip)
    return f"coalesce({below_xmax} AND {xid} NOT IN ({listed}), false)"
