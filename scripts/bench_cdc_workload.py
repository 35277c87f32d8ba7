"""The change events scripts/bench_cdc.py writes: server-side transactions over the benchmark's tables,
one table per transaction, the table chosen by weight (bench_cdc_metrics.TablePicker), counted from
each statement's row count. A backlog as fast as it goes, or a steady rate in transactions every 100 ms.
The tables' columns, their generated rows and the updates' changes are those of a ``Shape`` (SHAPES:
``plain``, ``mixed``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench_cdc_metrics import TablePicker, spread_weights

MIX = (("update", 0.60), ("insert", 0.25), ("delete", 0.15))


@dataclass(frozen=True)
class Shape:
    """The benchmark's tables of one shape: each column with its type and the value generated from the
    key ``g`` (server-side, deterministic: no random() in the initial data, so reruns start from
    identical tables), and the SET clause of the workload's updates. Every SQL text is run with
    parameters, so ``%%`` is a literal ``%`` for psycopg2."""

    name: str
    columns: tuple[tuple[str, str, str], ...]  # (name, SQL type, value from g)
    update_set: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.columns)

    def create_sql(self, table: str) -> str:
        return f"CREATE TABLE {table} (\n" + ",\n".join(f"    {name} {kind}" for name, kind, _ in self.columns) + "\n)"

    @property
    def row_select(self) -> str:
        """Rows ``%(low)s`` ... ``%(high)s`` of this shape."""
        values = ",\n       ".join(value for _, _, value in self.columns)
        return f"\nSELECT {values}\nFROM generate_series(%(low)s::bigint, %(high)s::bigint) AS g"

    def insert_sql(self, table: str) -> str:
        return f"INSERT INTO {table} {self.row_select}"

    def update_sql(self, table: str) -> str:
        """``%(n)s`` random existing keys up to ``%(hi)s`` updated."""
        return f"UPDATE {table} SET {self.update_set} WHERE id = ANY({RANDOM_KEYS})"

    @staticmethod
    def delete_sql(table: str) -> str:
        """``%(n)s`` random existing keys up to ``%(hi)s`` deleted (the same for every shape)."""
        return f"DELETE FROM {table} WHERE id = ANY({RANDOM_KEYS})"


RANDOM_KEYS = "ARRAY(SELECT 1 + floor(random() * %(hi)s)::bigint FROM generate_series(1, %(n)s))"

_PLAIN_COLUMNS = (
    ("id", "bigint PRIMARY KEY", "g"),
    ("a", "int", "((g * 7919) %% 1000003)::int"),
    ("amount", "numeric(12,2)", "(((g * 104729) %% 10000000) / 100.0)::numeric(12,2)"),
    ("note", "text", "'row ' || g || ' ' || substr(md5(g::text), 1, 8 + (g %% 17)::int)"),
    ("created_at", "timestamptz", "timestamptz '2020-01-01 00:00:00+00' + g * interval '7 seconds'"),
    ("flag", "boolean", "g %% 3 = 0"),
    ("qty", "int", "(g %% 97)::int"),
)
_PLAIN_UPDATE = ("a = a + 1, amount = amount + 1.25, note = 'upd ' || substr(md5(random()::text), 1, 12), "
                 "created_at = now(), flag = NOT flag, qty = qty + 1")

PLAIN = Shape("plain", _PLAIN_COLUMNS, _PLAIN_UPDATE)

# The plain columns and the types real tables carry beside them: arrays (NULL, empty, with NULL
# elements), real, jsonb, uuid, inet (IPv4, IPv6, with a netmask), date, bytea (NULL, empty),
# smallint (negative too), a boolean with NULLs, numeric without precision (scales 0 to 3,
# 1,000 at most: inserts stay in the type the bulk load measured) and varchar(n); each with some NULLs.
MIXED = Shape("mixed", (
    *_PLAIN_COLUMNS,
    ("tags", "text[]", "CASE g %% 7 WHEN 0 THEN NULL WHEN 1 THEN '{}'::text[] WHEN 2 THEN ARRAY['t' || (g %% 10), NULL] "
                       "ELSE ARRAY['t' || (g %% 10), 'k' || (g %% 3), 'a, b \"c\"'] END"),
    ("scores", "int[]", "CASE g %% 5 WHEN 0 THEN NULL WHEN 1 THEN '{}'::int[] WHEN 2 THEN ARRAY[(g %% 100)::int, NULL, -1] "
                        "ELSE ARRAY[(g %% 100)::int, (g %% 7)::int] END"),
    ("ratio", "real", "CASE WHEN g %% 11 = 0 THEN NULL ELSE ((g %% 1000) / 7.0)::real END"),
    ("doc", "jsonb", "CASE WHEN g %% 13 = 0 THEN NULL ELSE jsonb_build_object('k', g, 'name', 'n' || (g %% 50), "
                     "'nested', jsonb_build_object('even', g %% 2 = 0, 'list', jsonb_build_array(g %% 3, 'x', NULL))) END"),
    ("uid", "uuid", "CASE WHEN g %% 17 = 0 THEN NULL ELSE md5(g::text)::uuid END"),
    ("addr", "inet", "CASE WHEN g %% 19 = 0 THEN NULL WHEN g %% 19 = 1 THEN ('2001:db8::' || to_hex(g %% 65536))::inet "
                     "WHEN g %% 19 = 2 THEN ('10.' || (g / 256 %% 256) || '.' || (g %% 256) || '.0/24')::inet "
                     "ELSE ('10.' || (g / 65536 %% 256) || '.' || (g / 256 %% 256) || '.' || (g %% 256))::inet END"),
    ("day", "date", "CASE WHEN g %% 23 = 0 THEN NULL ELSE date '2020-01-01' + (g %% 3650)::int END"),
    ("blob", "bytea", "CASE WHEN g %% 29 = 0 THEN NULL WHEN g %% 29 = 1 THEN ''::bytea ELSE decode(md5(g::text), 'hex') END"),
    ("small", "smallint", "((g %% 60001) - 30000)::smallint"),
    ("ok2", "boolean", "CASE g %% 3 WHEN 0 THEN NULL ELSE g %% 2 = 0 END"),
    ("price_free", "numeric", "CASE WHEN g %% 31 = 0 THEN NULL ELSE round(((g * 7919) %% 100000)::numeric / 100, (g %% 4)::int) END"),
    ("note2", "varchar(40)", "CASE WHEN g %% 37 = 0 THEN NULL ELSE 'n2 ' || substr(md5(g::text || 'x'), 1, (g %% 30)::int) END"),
), _PLAIN_UPDATE + (
    ", tags = array_append(tags, 'u' || (qty %% 10)), scores = scores || qty, ratio = random()::real, "
    "doc = jsonb_build_object('rev', qty + 1, 'note', 'upd', 'list', jsonb_build_array(a, NULL, true)), day = day + 1, "
    "small = -small, ok2 = NOT ok2, note2 = 'u2 ' || substr(md5(random()::text), 1, 20)"
))

SHAPES = {shape.name: shape for shape in (PLAIN, MIXED)}
TXN_INTERVAL = 0.1  # seconds between the transactions of a steady rate


@dataclass
class Workload:
    """Writes change events server-side, one table per transaction (by weight; evenly by default)."""

    connect_db: Callable[[], Any]
    schema: str
    tables: list[str]
    next_id: dict[str, int]
    shape: Shape = PLAIN
    counts: dict[str, int] = field(default_factory=lambda: {"update": 0, "insert": 0, "delete": 0})
    transactions: int = 0
    picker: TablePicker | None = None
    _conn: Any = None

    def connect(self) -> None:
        self._conn = self.connect_db()
        self._conn.autocommit = False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def set_weights(self, weights: dict[str, float]) -> None:
        unknown = set(weights) - set(self.tables)
        if unknown:
            raise ValueError(f"not tables of this workload: {sorted(unknown)}")
        self.picker = TablePicker(weights)

    def transaction(self, update: int, insert: int, delete: int, table: str | None = None) -> dict[str, int]:
        """One transaction on ``table`` (default: the next by weight): ``update`` random existing keys,
        ``insert`` new keys, then ``delete`` random existing keys (a key that is gone, or drawn twice,
        changes nothing: the counts are the statements' row counts). Deletes come last, so a table's
        topic often ends with a tombstone, as it does in real workloads. Returns what it changed."""
        if table is None:
            if self.picker is None:
                self.picker = TablePicker(spread_weights(self.tables))
            table = self.picker.next()
        qualified = f"{self.schema}.{table}"
        hi = self.next_id[table] - 1
        done = {"update": 0, "insert": 0, "delete": 0}
        with self._conn.cursor() as cur:
            if update > 0:
                cur.execute(self.shape.update_sql(qualified), {"hi": hi, "n": update})
                done["update"] = cur.rowcount
            if insert > 0:
                low = self.next_id[table]
                cur.execute(self.shape.insert_sql(qualified), {"low": low, "high": low + insert - 1})
                done["insert"] = cur.rowcount
                self.next_id[table] = low + insert
            if delete > 0:
                cur.execute(self.shape.delete_sql(qualified), {"hi": hi, "n": delete})
                done["delete"] = cur.rowcount
        self._conn.commit()
        self.transactions += 1
        for k, v in done.items():
            self.counts[k] += v
        return done

    @property
    def events(self) -> int:
        return sum(self.counts.values())

    @property
    def messages(self) -> int:
        """Kafka messages these changes produce: one per change, plus a tombstone per delete."""
        return self.events + self.counts["delete"]


def split_mix(n: int, carry: dict[str, float]) -> dict[str, int]:
    """``n`` events as updates / inserts / deletes in the MIX ratios; fractions carry to the next call (pure)."""
    out = {}
    for op, share in MIX:
        carry[op] = carry.get(op, 0.0) + n * share
        out[op] = int(carry[op])
        carry[op] -= out[op]
    return out


def write_backlog(workload: Workload, total: int, txn_size: int) -> dict[str, Any]:
    """Exactly ``total`` change events (deficits from missed random keys are made up in later transactions)."""
    target = {op: round(total * share) for op, share in MIX}
    target["update"] += total - sum(target.values())
    base = dict(workload.counts)
    started = time.monotonic()
    last_print = started
    while True:
        remaining = {op: target[op] - (workload.counts[op] - base[op]) for op in target}
        left = sum(max(v, 0) for v in remaining.values())
        if left <= 0:
            break
        scale = min(1.0, txn_size / left)
        request = {op: max(0, round(max(v, 0) * scale)) for op, v in remaining.items()}
        if sum(request.values()) == 0:
            request = {op: (1 if v > 0 else 0) for op, v in remaining.items()}
        workload.transaction(request["update"], request["insert"], request["delete"])
        if time.monotonic() - last_print > 10:
            last_print = time.monotonic()
            print(f"backlog: {workload.events - sum(base.values()):,}/{total:,} events written", flush=True)
    seconds = time.monotonic() - started
    return {"seconds": seconds, "transactions": workload.transactions}


def write_at_rate(workload: Workload, rate: float, seconds: float, carry: dict[str, float], alive: Callable[[], None],
                  until: Callable[[], bool] | None = None, limit: float | None = None,
                  tick: Callable[[], None] | None = None) -> dict[str, Any]:
    """Commit ``rate`` events/s in transactions every 100 ms for ``seconds`` (and, with ``until``, until it
    returns true, at most ``limit`` seconds). A late writer catches up (each transaction has its due
    time). ``alive()`` raises when the stream has exited; ``tick()`` runs after every transaction."""
    per_txn = rate * TXN_INTERVAL
    commits: list[float] = []
    events_before = workload.events
    t0 = time.monotonic()
    n = 0
    while True:
        due = t0 + n * TXN_INTERVAL
        elapsed = due - t0
        if elapsed >= seconds and (until is None or until() or (limit is not None and elapsed >= limit)):
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        carry["_n"] = carry.get("_n", 0.0) + per_txn
        size = int(carry["_n"])
        carry["_n"] -= size
        if size > 0:
            mix = split_mix(size, carry)
            workload.transaction(mix["update"], mix["insert"], mix["delete"])
            commits.append(time.time())
        n += 1
        alive()
        if tick is not None:
            tick()
    return {"seconds": time.monotonic() - t0, "commits": commits, "events": workload.events - events_before}
