"""A writer thread's body for the tests that copy or repair a table while it changes (not a test module).

Each round changes ``table`` (an ``id int`` key, ``v int``, ``name text``): an update of a random key
among the first ``keys``, an insert of key ``10000 + round``, every fourth round a delete of the row
inserted two rounds before and of a random key; every ``other_every``-th round an update of a random key
among the first ``other_keys`` of ``other`` (a quiet table beside it). It pauses ``pause`` seconds
between rounds until ``stop`` is set, then appends the number of rounds to ``writes``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from typing import Any


def change_busily(src: Any, stop: threading.Event, writes: list[int], *, table: str, keys: int, other: str, other_keys: int,
                  other_every: int = 10, pause: float = 0.02, seed: int = 27, setup: Sequence[str] = ()) -> None:
    """Run the rounds above on one connection of ``src``; ``setup`` statements run first on it (e.g. the
    table's creation, so that its changes start with it). ``table`` and ``other`` are quoted names."""
    rnd, conn = random.Random(seed), src.connect()
    with conn.cursor() as cur:
        for statement in setup:
            cur.execute(statement)
        n = 0
        while not stop.is_set():
            n += 1
            cur.execute(f"UPDATE {table} SET v = v + 1, name = name || '+' WHERE id = %s", (rnd.randint(1, keys),))
            cur.execute(f"INSERT INTO {table} VALUES (%s, 0, 'new')", (10000 + n,))
            if n % 4 == 0:
                cur.execute(f"DELETE FROM {table} WHERE id IN (%s, %s)", (10000 + n - 2, rnd.randint(1, keys)))
            if n % other_every == 0:
                cur.execute(f"UPDATE {other} SET v = v + 1 WHERE id = %s", (rnd.randint(1, other_keys),))
            stop.wait(pause)
    writes.append(n)
    conn.close()
