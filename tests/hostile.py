"""Hostile Debezium messages for the property tests of both CDC paths: a real-shaped compact PostgreSQL
change event (Debezium 3.2's documented ``schemas.enable=false`` event) mutated at random: any field
set to any JSON value or removed, nesting deep enough to exhaust a parser, invalid UTF-8 bytes, cut
short. Some mutations leave a valid event (e.g. another text value): the properties hold for both.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

from lib.cdc import plan as P

SRC = "__debezium.source.column.type"
FIELDS = {
    "id": {"type": "int64", "parameters": {SRC: "INT8"}},
    "name": {"type": "string", "parameters": {SRC: "TEXT"}},
    "qty": {"type": "int32", "parameters": {SRC: "INT4"}},
    "price": {"type": "string", "parameters": {SRC: "NUMERIC"}},
    "seen": {"type": "string", "name": "io.debezium.time.ZonedTimestamp", "parameters": {SRC: "TIMESTAMPTZ"}},
    "ok": {"type": "boolean", "parameters": {SRC: "BOOL"}},
}
SPEC = P.TableSpec("shop", "public", "items", "/unused", ("id",),
                   (("id", "bigint"), ("name", "string"), ("qty", "int"), ("price", "decimal(12,2)"), ("seen", "timestamp"), ("ok", "boolean")),
                   snapshot_txids="100:105:102", has_tombstones=False, merge_by="delta-rs")


def base_event(id_: int = 7, name: str = "seven", lsn: int = 24023128, commit: int = 24023119) -> dict[str, Any]:
    source = {"version": "3.2.3.Final", "connector": "postgresql", "name": "shop", "ts_ms": 1_700_000_000_000, "snapshot": "false",
              "db": "shop", "sequence": json.dumps([str(commit), str(lsn)]), "ts_us": 1_700_000_000_000_000, "ts_ns": 1_700_000_000_000_000_000,
              "schema": "public", "table": "items", "txId": 777, "lsn": lsn, "xmin": None}
    after = {"id": id_, "name": name, "qty": 3, "price": "12.50", "seen": "2024-02-29T23:59:59.123456Z", "ok": True}
    return {"before": None, "after": after, "source": source, "transaction": None, "op": "u", "ts_ms": 1_700_000_000_005,
            "ts_us": 1_700_000_000_005_000, "ts_ns": 1_700_000_000_005_000_000}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20) | st.sampled_from(["NaN", "Infinity", "[1]", "{}", "2024-01-01T00:00:00Z", "12.5", "-0", "__debezium_unavailable_value"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
PATHS = [("op",), ("before",), ("after",), ("source",), ("ts_ms",), *[("source", k) for k in ("sequence", "lsn", "txId", "ts_ms", "schema", "table")],
         *[("after", k) for k in FIELDS], ("after", "unknown column")]


@st.composite
def mutated_event(draw: Any) -> bytes:
    """A compact event with one to three mutations, as the bytes of a Kafka message value."""
    event = base_event(id_=draw(st.integers(1, 50)), name=draw(st.text(max_size=10)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent = event
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if draw(st.booleans()) and path[-1] in parent:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(draw(json_values))
    text = json.dumps(event).encode()
    damage = draw(st.sampled_from(["none", "none", "deep", "bytes", "cut"]))
    if damage == "deep":
        depth = draw(st.sampled_from([2_000, 100_000]))
        return text.replace(b'"qty": ', b'"qty": ' + b"[" * depth + b"1" + b"]" * depth, 1) if b'"qty": ' in text else b"[" * depth
    if damage == "bytes":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00"])) + text[at:]
    if damage == "cut":
        return text[: draw(st.integers(0, len(text) - 1))]
    return text


def known_hostile(base: dict[str, Any] | None = None, other_table: str = "orders") -> list[tuple[str, bytes]]:
    """(what, value) of hostile messages made from the event ``base`` (a compact event of a table with
    the columns id, name, qty and price), which both paths must refuse (the Spark path: dead letters)."""
    base = base or base_event()

    def changed(edit: Any) -> bytes:
        event = copy.deepcopy(base)
        edit(event)
        return json.dumps(event).encode()

    deep = 100_000
    return [
        ("a list in a text column", changed(lambda e: e["after"].__setitem__("name", ["x", 1]))),
        ("an object in a text column", changed(lambda e: e["after"].__setitem__("name", {"k": 1}))),
        ("a non-numeric txId", changed(lambda e: e["source"].__setitem__("txId", "abc"))),
        ("JSON nested 100,000 deep", ('{"a":' * deep + "1" + "}" * deep).encode()),
        ("an array nested 100,000 deep in a column", changed(lambda e: e["after"].__setitem__("qty", None)).replace(
            b'"qty": null', b'"qty": ' + b"[" * deep + b"]" * deep)),
        ("non-UTF-8 bytes", b"\xff\xfe\xfd" + changed(lambda e: None)),
        ("no source block", changed(lambda e: e.pop("source"))),
        ("a source block that is a list", changed(lambda e: e.__setitem__("source", [1, 2]))),
        ("a sequence that is a number", changed(lambda e: e["source"].__setitem__("sequence", 12345))),
        ("an lsn that is not a number", changed(lambda e: e["source"].__setitem__("lsn", "12x"))),
        ("no lsn", changed(lambda e: e["source"].pop("lsn"))),
        ("an op that is a number", changed(lambda e: e.__setitem__("op", 5))),
        ("an after image that is a string", changed(lambda e: e.__setitem__("after", "not a row"))),
        ("an integer out of range", changed(lambda e: e["after"].__setitem__("qty", 10**30))),
        ("a decimal too wide", changed(lambda e: e["after"].__setitem__("price", "9" * 40 + ".99"))),
        ("a null key", changed(lambda e: e["after"].__setitem__("id", None))),
        ("another table's event", changed(lambda e: e["source"].__setitem__("table", other_table))),
        ("not JSON", b"hello, stream"),
    ]
