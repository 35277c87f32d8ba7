"""Which path an apply takes (lib.cdc.route), the Python pass that hands its rows to Spark's MERGE
(lib.cdc.direct.apply.decode_directly), the apply line that says the path and why, and the direct
path's worker processes and delta-rs writes reaching the job's storage accounts. No JVM, no Kafka:
tests/integration/test_cdc_direct_apply.py holds the ``direct+spark`` path equal to the others on real events."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from lib.cdc import plan as P
from lib.cdc.direct import apply as A
from lib.cdc.direct import lake_changes
from lib.cdc.direct.decode import NotDirect
from lib.cdc.direct.events import arrow_rows, plan, summarize, toasted_names
from lib.cdc.loop.batch_line import parse_batch_line
from lib.cdc.loop.table_status import apply_line
from lib.cdc.offsets import Range
from lib.cdc.outcome import TableOutcome
from lib.cdc.route import route
from lib.config.model import HistoryMode, StorageAccount
from lib.dialects.oracle.cdc_events import EVENTS as ORACLE_EVENTS
from lib.lake import delta_rs_storage

from .test_cdc_direct_events import FIELDS, SPEC, event, messages

SPARK_SPEC = replace(SPEC, merge_by="spark", spark_merge_reason="table features delta-rs does not write (deletionVectors)")


def test_the_route_of_each_kind_of_table():
    assert route(SPEC, python_reader=True).path == "direct"
    way = route(SPARK_SPEC, python_reader=True)
    assert way.path == "direct+spark" and way.reason == "decoded in Python, MERGEd by Spark: table features delta-rs does not write (deletionVectors)"
    assert route(replace(SPARK_SPEC, spark_merge_reason=None), True).reason == "decoded in Python, MERGEd by Spark: Spark MERGEs the table"
    for history, mode in ((HistoryMode(history="scd2"), "history scd2"), (HistoryMode(deletes="soft"), "soft deletes")):
        way = route(replace(SPARK_SPEC, history=history), True)
        assert way.path == "spark" and way.reason.startswith(f"{mode} on a table Spark MERGEs")
        assert route(replace(SPEC, history=history), True).path == "direct"  # the direct path builds versions and soft deletes itself
    for spec in (SPEC, SPARK_SPEC):
        assert route(spec, python_reader=False) == route(spec, False)
        assert route(spec, False).path == "spark" and route(spec, False).reason == "stream.event_reader is spark"
        assert route(replace(spec, event_format=ORACLE_EVENTS), True).reason == "oracle events are decoded by Spark"


class _Reader:
    def __init__(self, values: list[tuple[int, int, bytes]]) -> None:
        self.values = values

    def read(self, rng: Range) -> list[tuple[int, int, bytes]]:
        return self.values


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Kafka settings whose reader (this process's, lib.cdc.direct.apply) returns the messages given to it."""
    settings = {"bootstrap.servers": "unused:9092"}

    def give(*values: bytes) -> dict[str, str]:
        monkeypatch.setitem(A._readers, A._reader_key(settings), _Reader(messages(*values)))
        return settings
    return give


RANGE = Range("shop.public.items", {0: 0}, {0: 10})


def test_decode_directly_hands_back_the_merge_source_the_direct_path_would_merge(kafka):
    values = (event("c", 1, 10, 9), event("u", 1, 11, 10, amount="2.50"), event("c", 2, 12, 10), event("d", 3, 13, 11),
              event("u", 4, 14, 12, note="__debezium_unavailable_value"))
    decoded = A.decode_directly(SPARK_SPEC, FIELDS, RANGE, kafka(*values))
    p = plan(SPARK_SPEC, FIELDS)
    batch = summarize(p, messages(*values))
    assert decoded.rows.equals(arrow_rows(p, batch)) and decoded.toastable == toasted_names(p, batch) == ("note",)
    out = decoded.outcome
    assert (out.path, out.events, out.applied, out.skipped, out.last_position) == ("direct+spark", 5, 5, 0, (12, 14))
    assert (out.inserted, out.updated, out.deleted, out.visible_at) == (0, 0, 0, None)  # Spark's MERGE counts them
    assert out.tombstone_rows == (("public", "items", '{"id":3}', 11, 13),)
    assert out.spec.has_tombstones and out.spec.tombstones_until == (11, 13)


def _truncate(lsn: int, commit: int) -> bytes:
    """A Debezium PostgreSQL truncate event: no row images."""
    shape = json.loads(event("c", 1, lsn, commit))
    return json.dumps({**shape, "before": None, "after": None, "op": "t"}).encode()


def test_decode_directly_leaves_to_spark_what_it_cannot_hand_over(kafka):
    with pytest.raises(NotDirect, match="truncate"):
        A.decode_directly(SPARK_SPEC, FIELDS, RANGE, kafka(event("c", 1, 10, 9), _truncate(11, 10)))
    tombstoned = replace(SPARK_SPEC, has_tombstones=True, tombstones_until=(20, 0))
    with pytest.raises(NotDirect, match="tombstone"):
        A.decode_directly(tombstoned, FIELDS, RANGE, kafka(event("u", 1, 10, 9)))
    with pytest.raises(NotDirect, match="history"):
        A.decode_directly(replace(SPARK_SPEC, history=HistoryMode(deletes="soft")), FIELDS, RANGE, kafka(event("u", 1, 10, 9)))
    skipped = A.decode_directly(SPARK_SPEC, FIELDS, RANGE, kafka(event("u", 1, 10, 9, txid=101)))  # in the bulk copy
    assert skipped.rows is None and (skipped.outcome.events, skipped.outcome.skipped) == (1, 1)


def test_the_apply_line_says_the_path_and_why():
    spec = P.TableSpec("shop", "public", "t", "/l", ("id",), (("id", "bigint"),))
    for path, why in (("direct", "decoded in Python, MERGEd by delta-rs"), ("direct+spark", "decoded in Python, MERGEd by Spark: it holds 300 MiB"),
                      ("spark", "direct+spark declined: a truncate on a table Spark MERGEs (Spark applies it)")):
        line = apply_line(3, TableOutcome(spec, path=path, why=why, events=10, inserted=10), 10, 0, 0.5, 0, 0.0)
        assert line.endswith(f"; by {path} ({why})")
        parsed = parse_batch_line("12:00:00 INFO lib.cdc.loop: " + line)
        assert parsed is not None and (parsed["path"], parsed["why"], parsed["inserted"]) == (path, why, 10)


ACCOUNT = StorageAccount("lakeacct", "emulator", endpoint="blob.core.windows.net")


def test_the_direct_worker_processes_get_the_jobs_storage_accounts():
    delta_rs_storage.register_accounts([ACCOUNT])
    applier = A.DirectApplier({}, None, processes=1)  # type: ignore[arg-type]
    try:
        assert applier._worker_pool().submit(delta_rs_storage.registered_accounts).result(timeout=60) == (ACCOUNT,)
    finally:
        applier.close()
        delta_rs_storage.register_accounts(())


class _Table:
    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.alter = self

    def set_table_properties(self, properties: dict[str, str], raise_if_not_exists: bool) -> None:
        self.calls.append(properties)

    def delete(self, predicate: str) -> dict[str, int]:
        self.calls.append(predicate)
        return {"num_deleted_rows": 2}


def test_the_direct_paths_lake_changes_open_tables_with_the_shared_opener(monkeypatch: pytest.MonkeyPatch):
    opened: list[str] = []
    table = _Table()
    monkeypatch.setattr("lib.cdc.delta_rs_merge.open_table", lambda location: opened.append(location) or table)
    location = "abfss://lake@lakeacct.dfs.core.windows.net/shop/public/items"
    assert lake_changes.delete_before_truncate(location, (5, 6)) == 2
    lake_changes.record_truncate(location, (5, 6))
    assert opened == [location, location] and table.calls[1] == {P.TRUNCATE_PROPERTY: "5:6"}
    monkeypatch.undo()
    delta_rs_storage.register_accounts(())  # no account for it: the range is Spark's, nothing tried
    with pytest.raises(NotDirect, match="cannot reach the lake"):
        lake_changes.record_truncate(location, (5, 6))
