"""scripts/bench_cdc.py: the table shapes of its workload (scripts/bench_cdc_workload.py), checked as SQL
text parsed by sqlglot's PostgreSQL dialect (pure: no database)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "bench_cdc.py"
PARAMS = {"low": 1, "high": 10, "hi": 10, "n": 3}  # what the workload passes; %% becomes %, as psycopg2 does
PLAIN_NAMES = ("id", "a", "amount", "note", "created_at", "flag", "qty")
MIXED_ONLY = (("tags", "text[]"), ("scores", "int[]"), ("ratio", "real"), ("doc", "jsonb"), ("uid", "uuid"), ("addr", "inet"),
              ("day", "date"), ("blob", "bytea"), ("small", "smallint"), ("ok2", "boolean"), ("price_free", "numeric"),
              ("note2", "varchar(40)"))


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_cdc", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_cdc"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def workload(bench):  # bench_cdc.py put scripts/ on sys.path
    import bench_cdc_workload

    return bench_cdc_workload


def _parse(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql % PARAMS, read="postgres")


def test_the_shapes(workload):
    assert set(workload.SHAPES) == {"plain", "mixed"}
    assert workload.PLAIN.names == PLAIN_NAMES
    mixed = workload.MIXED
    assert mixed.names == PLAIN_NAMES + tuple(name for name, _ in MIXED_ONLY)
    assert mixed.columns[: len(PLAIN_NAMES)] == workload.PLAIN.columns  # the plain columns, generated the same way
    assert [(name, kind) for name, kind, _ in mixed.columns[len(PLAIN_NAMES):]] == list(MIXED_ONLY)
    # bench_kafka_read.py --columns takes them comma-separated
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", name) for name in mixed.names)


def test_plain_sql_is_unchanged(workload):
    plain = workload.PLAIN
    assert plain.create_sql("s.t") == ("CREATE TABLE s.t (\n    id bigint PRIMARY KEY,\n    a int,\n    amount numeric(12,2),\n    note text,\n"
                                       "    created_at timestamptz,\n    flag boolean,\n    qty int\n)")
    assert plain.insert_sql("s.t") == "INSERT INTO s.t " + """
SELECT g,
       ((g * 7919) %% 1000003)::int,
       (((g * 104729) %% 10000000) / 100.0)::numeric(12,2),
       'row ' || g || ' ' || substr(md5(g::text), 1, 8 + (g %% 17)::int),
       timestamptz '2020-01-01 00:00:00+00' + g * interval '7 seconds',
       g %% 3 = 0,
       (g %% 97)::int
FROM generate_series(%(low)s::bigint, %(high)s::bigint) AS g"""
    keys = "ARRAY(SELECT 1 + floor(random() * %(hi)s)::bigint FROM generate_series(1, %(n)s))"
    assert plain.update_sql("s.t") == (
        "UPDATE s.t SET a = a + 1, amount = amount + 1.25, note = 'upd ' || substr(md5(random()::text), 1, 12), "
        f"created_at = now(), flag = NOT flag, qty = qty + 1 WHERE id = ANY({keys})")
    assert plain.delete_sql("s.t") == f"DELETE FROM s.t WHERE id = ANY({keys})"


@pytest.mark.parametrize("name", ["plain", "mixed"])
def test_shape_sql_parses_and_names_every_column(workload, name):
    shape = workload.SHAPES[name]
    create = _parse(shape.create_sql("public.t01"))
    assert isinstance(create, exp.Create)
    assert tuple(d.name for d in create.find_all(exp.ColumnDef)) == shape.names
    insert = _parse(shape.insert_sql("public.t01"))
    assert isinstance(insert, exp.Insert) and isinstance(insert.expression, exp.Select)
    assert len(insert.expression.expressions) == len(shape.columns)  # a value for every column
    assert "random(" not in shape.row_select.lower()  # the initial data is deterministic
    update = _parse(shape.update_sql("public.t01"))
    assert isinstance(update, exp.Update)
    changed = [e.this.name for e in update.expressions]
    assert set(changed) <= set(shape.names) - {"id"} and len(changed) == len(set(changed))
    assert isinstance(_parse(shape.delete_sql("public.t01")), exp.Delete)


def test_mixed_values_have_nulls_empty_arrays_and_null_elements(workload):
    mixed = workload.MIXED
    values = {name: sqlglot.parse_one(value % PARAMS, read="postgres") for name, _, value in mixed.columns}
    with_null = [name for name, _ in MIXED_ONLY if next(values[name].find_all(exp.Null), None) is not None]
    assert len(with_null) >= 10 and {"tags", "scores", "doc", "price_free"} <= set(with_null)
    for name in ("tags", "scores"):
        arrays = list(values[name].find_all(exp.Array))
        assert any(isinstance(e, exp.Null) for a in arrays for e in a.expressions), f"{name}: no NULL inside an array"
        empty = [c for c in values[name].find_all(exp.Cast) if isinstance(c.this, exp.Literal) and c.this.this == "{}"]
        assert empty, f"{name}: no empty array"
    changed = {e.this.name for e in _parse(mixed.update_sql("public.t01")).expressions}
    assert {"tags", "scores", "ratio", "doc", "day", "small", "ok2", "note2"} <= changed  # update events carry them changed


class _Cursor:
    def __init__(self, log: list[tuple[str, dict]]) -> None:
        self.log = log
        self.rowcount = 0

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str, params: dict) -> None:
        self.log.append((sql, params))
        self.rowcount = params.get("n") or params["high"] - params["low"] + 1


class _Connection:
    def __init__(self) -> None:
        self.log: list[tuple[str, dict]] = []
        self.autocommit = True

    def cursor(self) -> _Cursor:
        return _Cursor(self.log)

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_the_workload_writes_its_shape(workload):
    conn = _Connection()
    w = workload.Workload(lambda: conn, "public", ["t01"], {"t01": 101}, workload.MIXED)
    w.connect()
    assert w.transaction(3, 2, 1) == {"update": 3, "insert": 2, "delete": 1}
    sqls = [sql for sql, _ in conn.log]
    assert sqls == [workload.MIXED.update_sql("public.t01"), workload.MIXED.insert_sql("public.t01"), workload.MIXED.delete_sql("public.t01")]
    assert conn.log[1][1] == {"low": 101, "high": 102} and w.next_id["t01"] == 103
    assert workload.Workload(lambda: conn, "public", ["t01"], {"t01": 1}).shape is workload.PLAIN  # the default


def test_shape_flag(bench, workload):
    assert bench.parse_args([]).shape == "plain"
    assert bench.parse_args(["--shape", "mixed"]).shape == "mixed"
    with pytest.raises(SystemExit):
        bench.parse_args(["--shape", "wide"])
    source = bench.Source("bench_cdc", "public", ("t01",), "p", workload.SHAPES["mixed"])
    assert source.shape.names[-1] == "note2" and bench.Source("bench_cdc", "public", (), "p").shape is workload.PLAIN
