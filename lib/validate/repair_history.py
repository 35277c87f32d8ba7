"""Planning the repair of history tables (``cdc.history: scd2``) and soft-delete tables (``cdc.deletes:
soft``) (pure: Spark SQL text, no Spark).

Validation compares such a table's current, not-deleted rows with the source; the repair makes those
equal to the snapshot rows of the differing buckets, keeping what the table is:

- **scd2**: a key whose current version is missing, deleted or differs from the snapshot gets its
  current version closed (``__valid_to`` = the repair's time, ``__is_current = false``) and a new
  current version opened with the snapshot's values, valid from that same time; a key whose current
  version is not deleted but is absent from the snapshot gets it closed and a deleted version opened
  (its values, ``__is_deleted = true``), as a delete would. Intervals keep chaining: each closed
  version ends where the key's new one starts (the repair's time, or the closed version's start when
  that is later).
- **soft deletes**: rows missing in the lake are inserted, rows that differ (or are marked deleted
  while the source has them) are updated and marked not deleted, rows absent from the snapshot are
  marked ``__is_deleted = true`` (``__op = 'd'``), their values kept.

Rows and versions the stream has moved past the snapshot are left alone (``newer_than_snapshot``).
Everything a repair writes is one MERGE, one commit. In the scd2 MERGE a close only matches the
current version the repair read (its position), and a new version is only inserted while the key's
current version is still that one (or the key still has none): a version the stream wrote meanwhile
is never closed, and no key gets two current versions.

Views the SQL reads (the execution layer registers them):

    snapshot   the snapshot rows of the buckets, typed as the lake, with ``ROW_HASH`` (the checksum's row hash)
    upsertable the same rows without the keys the stream deleted after the snapshot (tombstones)
    lake       the lake's current rows of the buckets (:func:`current_filter`), every column, with ``LAKE_HASH``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from lib.cdc.history import IS_CURRENT, IS_DELETED, VALID_FROM, VALID_TO
from lib.spark_sql import ident as q
from lib.validate.repair_plan import ROW_HASH, newer_than_snapshot

Kind = Literal["scd2", "soft"]

LAKE_HASH = "__lake_hash"
ROLE = "__repair_role"  # scd2: close, insert; soft deletes: upsert, delete
AT = "__repair_at"  # scd2: where the closed version ends and the new one starts
CUR_COMMIT, CUR_CHANGE = "__repair_cur_commit", "__repair_cur_change"  # the current version the row was built on
COMMIT, CHANGE = "`__source_commit_pos`", "`__source_change_pos`"


def history_kind(lake_columns: Sequence[str]) -> Kind | None:
    """The table's kind from its lake columns: scd2, soft deletes, or None (a plain mirror)."""
    if IS_CURRENT in lake_columns and VALID_FROM in lake_columns:
        return "scd2"
    if IS_DELETED in lake_columns:
        return "soft"
    return None


def current_filter(kind: Kind) -> str:
    """The lake rows a repair compares and changes: the current versions (scd2: one per key, deleted
    or not), every row of a soft-delete table (one per key)."""
    return q(IS_CURRENT) if kind == "scd2" else "TRUE"


def _on(key: Sequence[str], a: str, b: str) -> str:
    return " AND ".join(f"{a}.{q(k)} = {b}.{q(k)}" for k in key)


@dataclass(frozen=True)
class Views:
    """The names the execution layer registered the three views under."""

    snapshot: str = "snapshot"
    upsertable: str = "upsertable"
    lake: str = "lake"


DEFAULT_VIEWS = Views()


def source_sql(kind: Kind, key: Sequence[str], columns: Sequence[str], position: int, at_micros: int, views: Views = DEFAULT_VIEWS) -> str:
    """The MERGE's source rows: ``columns`` (the data columns), the position columns, ``__op``,
    ``__is_deleted``, the current version's position (``CUR_COMMIT``, ``CUR_CHANGE``), ``AT`` and ``ROLE``.
    ``position``: the snapshot's; ``at_micros``: the repair's time (microseconds since the epoch)."""
    if not key:
        raise ValueError("a history or soft-delete repair needs a primary key")
    first = q(key[0])
    newer = f"coalesce({newer_than_snapshot('c', position)}, false)"
    # scd2: the closed version ends, and the new one starts, at the repair's time (its own start when later)
    now = f"timestamp_micros({int(at_micros)})"
    at = f"CASE WHEN c.{first} IS NULL THEN {now} ELSE greatest(c.{q(VALID_FROM)}, {now}) END" if kind == "scd2" else "CAST(NULL AS timestamp)"
    # snapshot rows the lake's current row lacks or differs from (a deleted current row: the source has the key again)
    up = (f"SELECT s.*, c.{COMMIT} AS {CUR_COMMIT}, c.{CHANGE} AS {CUR_CHANGE}, {at} AS {AT} "
          f"FROM {q(views.upsertable)} s LEFT JOIN {q(views.lake)} c ON {_on(key, 's', 'c')} "
          f"WHERE (c.{first} IS NULL OR c.{q(IS_DELETED)} OR c.{LAKE_HASH} <> s.{ROW_HASH}) AND NOT {newer}")
    # lake rows that are not deleted but absent from the snapshot
    gone = (f"SELECT c.*, c.{COMMIT} AS {CUR_COMMIT}, c.{CHANGE} AS {CUR_CHANGE}, {at} AS {AT} "
            f"FROM {q(views.lake)} c LEFT ANTI JOIN {q(views.snapshot)} s ON {_on(key, 'c', 's')} WHERE NOT c.{q(IS_DELETED)} AND NOT {newer}")
    data = ", ".join(q(c) for c in columns)
    state = f"{CUR_COMMIT}, {CUR_CHANGE}, {AT}"
    repaired = f"{data}, CAST({int(position)} AS decimal(38,0)) AS {COMMIT}, CAST(0 AS decimal(38,0)) AS {CHANGE}, 'r' AS `__op`, false AS {q(IS_DELETED)}"
    deleted = f"{data}, {COMMIT}, {CHANGE}, 'd' AS `__op`, true AS {q(IS_DELETED)}"
    if kind == "soft":
        return (f"SELECT {repaired}, {state}, 'upsert' AS {ROLE} FROM ({up}) u "
                f"UNION ALL SELECT {deleted}, {state}, 'delete' AS {ROLE} FROM ({gone}) g")
    return (f"SELECT {repaired}, {state}, 'close' AS {ROLE} FROM ({up}) u WHERE {CUR_COMMIT} IS NOT NULL "
            f"UNION ALL SELECT {repaired}, {state}, 'insert' AS {ROLE} FROM ({up}) u "
            f"UNION ALL SELECT {deleted}, {state}, 'close' AS {ROLE} FROM ({gone}) g "
            f"UNION ALL SELECT {deleted}, {state}, 'insert' AS {ROLE} FROM ({gone}) g")


def merge_sql(kind: Kind, target: str, source_view: str, key: Sequence[str], columns: Sequence[str], position: int,
              now: str = "current_timestamp()") -> str:
    """One MERGE of :func:`source_sql`'s rows (in ``source_view``) into ``target`` (a table reference)."""
    values = [q(c) for c in columns if c not in key]
    position_cols = [COMMIT, CHANGE, "`__op`"]
    insert_cols = [*(q(c) for c in columns), *position_cols, "`__ingested_at`"]
    insert_vals = [*(f"s.{q(c)}" for c in columns), *(f"s.{c}" for c in position_cols), now]
    if kind == "soft":
        keep = f"NOT {newer_than_snapshot('t', position)}"
        sets = ", ".join([*(f"t.{c} = s.{c}" for c in values), *(f"t.{c} = s.{c}" for c in position_cols), f"t.`__ingested_at` = {now}",
                          f"t.{q(IS_DELETED)} = false"])
        return (f"MERGE INTO {target} AS t USING {q(source_view)} AS s ON {_on(key, 't', 's')} "
                f"WHEN MATCHED AND s.{ROLE} = 'upsert' AND {keep} THEN UPDATE SET {sets} "
                f"WHEN MATCHED AND s.{ROLE} = 'delete' AND {keep} AND NOT t.{q(IS_DELETED)} THEN UPDATE SET "
                f"t.{q(IS_DELETED)} = true, t.`__op` = 'd', t.`__ingested_at` = {now} "
                f"WHEN NOT MATCHED AND s.{ROLE} = 'upsert' THEN INSERT ({', '.join([*insert_cols, q(IS_DELETED)])}) "
                f"VALUES ({', '.join([*insert_vals, 'false'])})")
    built_on = f"t.{COMMIT} = s.{CUR_COMMIT} AND t.{CHANGE} = s.{CUR_CHANGE}"
    # a close matches the current version it was built on; an insert matches any other current version (then nothing is inserted)
    on = (f"{_on(key, 't', 's')} AND t.{q(IS_CURRENT)} AND "
          f"CASE WHEN s.{ROLE} = 'close' THEN {built_on} ELSE NOT coalesce({built_on}, false) END")
    return (f"MERGE INTO {target} AS t USING {q(source_view)} AS s ON {on} "
            f"WHEN MATCHED AND s.{ROLE} = 'close' THEN UPDATE SET t.{q(VALID_TO)} = s.{AT}, t.{q(IS_CURRENT)} = false "
            f"WHEN NOT MATCHED AND s.{ROLE} = 'insert' THEN INSERT "
            f"({', '.join([*insert_cols, q(VALID_FROM), q(VALID_TO), q(IS_CURRENT), q(IS_DELETED)])}) "
            f"VALUES ({', '.join([*insert_vals, f's.{AT}', 'CAST(NULL AS timestamp)', 'true', f's.{q(IS_DELETED)}'])})")
