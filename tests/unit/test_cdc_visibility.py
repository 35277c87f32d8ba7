"""Transaction visibility of a Debezium event in the bulk snapshot (lib/cdc/visibility.py).

The Spark SQL form is also evaluated by Spark in tests/integration/test_snapshot_visibility.py.
"""

import random
import re

import pytest

from lib.cdc.visibility import SnapshotTxids, parse_snapshot_txids, visible, visible_sql, widen_xid

E = 1 << 32  # one xid epoch


def test_parse_pg_snapshot_text():
    snap = parse_snapshot_txids("1041:1049:1041,1045")
    assert snap == SnapshotTxids(1041, 1049, (1041, 1045))
    assert parse_snapshot_txids("7:7:") == SnapshotTxids(7, 7, ())
    assert parse_snapshot_txids(" 4294967300:4294967310:4294967305\n").xip == (4294967305,)
    assert parse_snapshot_txids(snap.text()) == snap and snap.text() == "1041:1049:1041,1045"
    assert parse_snapshot_txids("10:20:15,12").xip == (12, 15)  # sorted


@pytest.mark.parametrize("text", ["", "1:2", "a:2:", "1:2:3:4", "5:3:", "10:20:9", "10:20:20", "-1:5:"])
def test_parse_rejects_malformed_or_inconsistent_text(text):
    with pytest.raises(ValueError):
        parse_snapshot_txids(text)


def test_visible_in_one_epoch_by_hand():
    snap = parse_snapshot_txids("100:105:100,103")
    expected = {98: True, 99: True, 100: False, 101: True, 102: True, 103: False, 104: True, 105: False, 106: False, 5000: False}
    assert {x: visible(x, snap) for x in expected} == expected
    assert visible(None, snap) is False


def test_widen_picks_the_value_closest_to_xmax():
    xmax = 3 * E + 10
    assert widen_xid(10, xmax) == xmax
    assert widen_xid(9, xmax) == xmax - 1
    assert widen_xid(E - 5, xmax) == 3 * E - 5  # just before the epoch boundary: previous epoch
    assert widen_xid(-5, xmax) == 3 * E - 5  # the same xid delivered as a signed int32
    assert widen_xid(10 + (1 << 31) - 1, xmax) == xmax + (1 << 31) - 1  # furthest ahead still in the future
    assert widen_xid(10 + (1 << 31), xmax) == xmax - (1 << 31)  # one more: the past
    assert widen_xid(10 + E, xmax) == xmax  # an unnormalized value is taken mod 2^32


def test_wraparound_across_the_epoch_boundary_by_hand():
    # xmax is xid 5 of epoch 1; xmin and one running xid are still in epoch 0
    snap = SnapshotTxids(xmin=E - 10, xmax=E + 5, xip=(E - 3, E + 2))
    cases = {
        E - 11: True,  # older than xmin
        E - 10: True,  # xmin, not listed in xip: finished (as pg_visible_in_snapshot decides too)
        E - 6: True,
        E - 3: False,  # in progress (epoch 0)
        -3: False,  # the same xid as a signed int32
        -6: True,
        0: True,  # epoch 1, xid 0 (never a real xid, but the arithmetic holds)
        2: False,  # in progress (epoch 1)
        3: True,
        4: True,
        5: False,  # xmax: not finished
        6: False,
        E - 1_000_000_000: True,  # a billion xids ago
        1_000_000_000: False,  # a billion xids ahead
    }
    assert {x: visible(x, snap) for x in cases} == cases


def test_xmax_just_below_the_epoch_boundary():
    snap = SnapshotTxids(xmin=E - 20, xmax=E - 2, xip=(E - 7,))
    assert visible(E - 3, snap) and not visible(E - 7, snap) and not visible(-7, snap)
    assert not visible(E - 2, snap) and not visible(E - 1, snap)
    assert not visible(0, snap) and not visible(1, snap)  # next epoch: after the snapshot
    assert not visible(123_456, snap)


def test_first_epoch_small_xmax():
    snap = SnapshotTxids(xmin=730, xmax=740, xip=(731, 739))
    assert visible(3, snap) and visible(730, snap) and not visible(731, snap) and visible(732, snap)
    assert not visible(740, snap)
    # E - 1 is 2^32 - 1: more than 2^31 ahead of xmax, so it widens to the (nonexistent) previous epoch: visible
    assert visible(E - 1, snap) and visible(-1, snap)
    assert not visible(740 + (1 << 31) - 1, snap)


def random_snapshot(rng: random.Random) -> SnapshotTxids:
    epoch = rng.choice([0, 1, 2, 7, 1000])
    # xmax near an epoch boundary half of the time
    low = rng.choice([rng.randrange(3, 5000), E - rng.randrange(1, 5000), rng.randrange(E)])
    xmax = max(3, epoch * E + low)
    xmin = max(3, xmax - rng.choice([0, 1, 10, 5000, 1 << 20]))
    span = xmax - xmin
    xip = tuple(sorted(rng.sample(range(xmin, xmax), min(span, rng.choice([0, 1, 5, 200]))))) if span else ()
    return SnapshotTxids(xmin, xmax, xip)


def as_delivered(xid64: int, rng: random.Random) -> int:
    """Debezium's txId: the low 32 bits, unsigned or as a signed int32."""
    low = xid64 % E
    return low - E if rng.random() < 0.5 and low >= 1 << 31 else low


def test_property_matches_the_truth_of_64_bit_xids():
    """Generate events with a known 64-bit xid within 2^31 of xmax; deliver only the 32-bit xid."""
    rng = random.Random(20261123)
    for _ in range(3000):
        snap = random_snapshot(rng)
        candidates = [
            *snap.xip,
            snap.xmin, snap.xmin - 1, snap.xmax, snap.xmax - 1, snap.xmax + 1,
            snap.xmax + rng.randrange(1 << 31), snap.xmax - rng.randrange(1, 1 << 31),
            rng.randrange(snap.xmin, snap.xmax + 1),
            snap.xmax - (1 << 31), snap.xmax + (1 << 31) - 1,  # the ends of the window
        ]
        for truth in candidates:
            expected = truth < snap.xmax and truth not in snap.xip
            got = visible(as_delivered(truth, rng), snap)
            assert got == expected, (snap, truth)


def eval_sql(expr: str, txid: int | None) -> bool:
    """Evaluate visible_sql's output in Python (only the constructs it uses), for the unit tests."""
    if txid is None:
        return False  # coalesce(NULL comparison, false)
    py = expr.replace("`__txid`", "txid").replace("CAST(txid AS BIGINT)", "txid")
    py = re.sub(r"pmod\(", "_pmod(", py)
    py = py.replace("NOT IN (", "not in _set(").replace(" AND ", " and ").replace("coalesce(", "_coalesce(").replace("false", "False")
    return eval(py, {"_pmod": lambda a, b: a % b, "_coalesce": lambda a, b: b if a is None else a, "_set": lambda *a: set(a), "txid": txid})


def test_sql_matches_the_reference():
    rng = random.Random(7)
    for _ in range(400):
        snap = random_snapshot(rng)
        sql = visible_sql("`__txid`", snap)
        for truth in (*snap.xip[:5], snap.xmin, snap.xmax, snap.xmax - 1, snap.xmax + rng.randrange(1 << 31), snap.xmax - rng.randrange(1, 1 << 31)):
            txid = as_delivered(truth, rng)
            assert eval_sql(sql, txid) == visible(txid, snap), (snap, truth, sql)
    assert eval_sql(visible_sql("`__txid`", SnapshotTxids(5, 9, (6,))), None) is False


def test_sql_shape():
    sql = visible_sql("__p.source.txId", SnapshotTxids(E - 10, E + 5, (E - 3, E + 2)))
    assert sql == (
        f"coalesce(pmod(CAST(__p.source.txId AS BIGINT) - 5, {E}) >= {1 << 31} AND "
        f"(pmod(CAST(__p.source.txId AS BIGINT) - 5, {E}) + 5) NOT IN ({E - 3}, {E + 2}), false)"
    )
    assert visible_sql("t", SnapshotTxids(7, 7, ())) == f"coalesce(pmod(CAST(t AS BIGINT) - 7, {E}) >= {1 << 31}, false)"
    many = visible_sql("t", SnapshotTxids(1000, 10_000, tuple(range(1000, 10_000, 2))))
    assert many.count(",") > 4000  # thousands of in-progress xids: one IN list
