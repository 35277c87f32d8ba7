"""jobs/validate.py against real PostgreSQL + Delta/Parquet: no false alarms on a faithful lake; missing,
duplicated and silently changed rows fail, naming the table and the differing keys; exit codes 0/1/2."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.validate.runner import ValidateOptions, validate_source

from .conftest import ROOT, job_env
from .test_bulk_fidelity import TYPES_DDL

QUOTED = 'Order "Lines" 2024'
RULES = {
    "tables": {
        "{s}.orders": {
            "row_count": {"min": 1, "max": 100000},
            "columns": {
                "total": {"min": 0, "max": 1000000},
                "status": {"in": ["pending", "paid", "shipped"]},
                "email": {"regex": "^[^@]+@[^@]+$", "mostly": 0.99},
            },
        }
    }
}


def _setup(source: Any) -> None:
    s = f'"{source.schema}"'
    source.execute(TYPES_DDL.format(s=s))
    source.execute(f'''
        CREATE TABLE {s}."Order ""Lines"" 2024" ("Line Id" bigint PRIMARY KEY, "MixedCase" text, "dot.ted" text NOT NULL, "r" real);
        INSERT INTO {s}."Order ""Lines"" 2024" SELECT g, 'v' || g, 'd' || g, g / 3.0 FROM generate_series(1, 2000) g;
        CREATE TABLE {s}.no_key (a int, b text, c real);
        INSERT INTO {s}.no_key SELECT g % 100, md5(g::text), g / 7.0 FROM generate_series(1, 2000) g;
        INSERT INTO {s}.no_key VALUES (1, 'dup', 1.5), (1, 'dup', 1.5), (NULL, NULL, NULL), (2, '', NULL);
        CREATE TABLE {s}.empty (id int PRIMARY KEY, v text);
        CREATE TABLE {s}.orders (id int PRIMARY KEY, status text NOT NULL, total numeric(10,2), email text, placed timestamptz);
        INSERT INTO {s}.orders SELECT g, (ARRAY['pending','paid','shipped'])[1 + g % 3], g * 1.25, 'u' || g || '@x.org',
               timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' FROM generate_series(1, 500) g;
        CREATE TABLE {s}.lines (order_id int, line_no smallint, sku char(6), PRIMARY KEY (order_id, line_no));
        INSERT INTO {s}.lines SELECT g / 4, g % 4, 'S' || (g % 10) FROM generate_series(1, 800) g;
    ''')


def _config(source: Any, fmt: str = "delta", rules: dict | None = None) -> dict:
    raw = source.config_dict(cdc=False)  # small tables: one chunk each, the load stays quick
    raw["lake"]["format"] = fmt
    if rules is not None:
        raw["sources"][source.name]["validation"] = json.loads(json.dumps(rules).replace("{s}", source.schema))
    return raw


def _validate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "validate.py"), *args], env=job_env(), capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL
    )


def _tables(report: Path) -> dict[str, dict]:
    return {t["table"]: t for t in json.loads(report.read_text())["tables"]}


def _check(table: dict, name: str) -> dict:
    return next(c for c in table["checks"] if c["name"] == name)


def test_faithful_lake_passes_and_each_corruption_fails(spark, source, tmp_path):
    _setup(source)
    raw = _config(source, rules=RULES)
    config_path = source.write_config(raw)
    assert run_bulk_load(spark, source.load_config(raw), source.name, BulkOptions()) == 0

    # 1. faithful lake: exit 0, every table passes, reports written
    report = tmp_path / "reports" / "ok.json"
    ok = _validate("--config", str(config_path), "--source", source.name, "--report", str(report))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert report.exists() and report.with_suffix(".html").exists()
    tables = _tables(report)
    assert set(tables) == {"all_types", QUOTED, "no_key", "empty", "orders", "lines"}
    for name, t in tables.items():
        assert t["verdict"] == "PASS", (name, t["reason"], [c for c in t["checks"] if c["status"] != "pass"])
        assert _check(t, "checksum")["status"] == "pass" and _check(t, "schema")["status"] == "pass"
        assert f"PASS {source.schema}.{name}: " in ok.stdout
    assert tables["all_types"]["source_rows"] == 4 and tables[QUOTED]["lake_rows"] == 2000 and tables["no_key"]["lake_rows"] == 2004 and tables["empty"]["lake_rows"] == 0
    expectations = {c["name"] for c in tables["orders"]["checks"] if c["kind"] == "expectation"}
    assert {"expect_column_values_to_be_unique(id)", "expect_column_values_to_not_be_null(status)", "expect_column_values_to_be_in_set(status)",
            "expect_column_values_to_match_regex(email)", "expect_table_row_count_to_be_between"} <= expectations
    assert "expect_compound_columns_to_be_unique(order_id, line_no)" in {c["name"] for c in tables["lines"]["checks"]}
    assert "Traceback" not in ok.stderr

    # 2. corrupt the lake: missing rows, duplicated rows, changed values with unchanged counts
    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, source.lake_path("orders")).delete("id IN (7, 300)")
    lines = spark.read.format("delta").load(source.lake_path("lines"))
    lines.where("order_id = 5 AND line_no = 1").write.format("delta").mode("append").save(source.lake_path("lines"))
    DeltaTable.forPath(spark, source.lake_path("all_types")).update("id = 2", {"c_double": "c_double * 2"})
    DeltaTable.forPath(spark, source.lake_path(QUOTED)).update("`Line Id` = 1234", {"`dot.ted`": "'changed'"})
    DeltaTable.forPath(spark, source.lake_path("no_key")).update("b = ''", {"b": "NULL"})  # '' -> NULL, same count

    bad = tmp_path / "reports" / "bad.json"
    failed = _validate("--config", str(config_path), "--source", source.name, "--report", str(bad))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    tables = _tables(bad)
    assert {n for n, t in tables.items() if t["verdict"] == "FAIL"} == {"orders", "lines", "all_types", QUOTED, "no_key"}
    assert tables["empty"]["verdict"] == "PASS"
    for name in ("orders", "lines", "all_types", QUOTED, "no_key"):
        assert f"FAIL {source.schema}.{name}: " in failed.stdout

    orders = tables["orders"]
    assert _check(orders, "row_count")["message"] == "row count: lake 498, source 500 (2 missing)"
    assert sorted(_check(orders, "checksum")["details"]["missing_keys"]) == ["id=300", "id=7"]

    dup = _check(tables["lines"], "primary_key")
    assert dup["status"] == "fail" and "(order_id=5, line_no=1) x2" in dup["message"]
    assert _check(tables["lines"], "checksum")["details"]["duplicated_keys"] == ["(order_id=5, line_no=1)"]
    assert _check(tables["lines"], "expect_compound_columns_to_be_unique(order_id, line_no)")["status"] == "fail"

    for name, key in (("all_types", "id=2"), (QUOTED, "Line Id=1234")):
        t = tables[name]
        assert _check(t, "row_count")["status"] == "pass", name  # same count ...
        checksum = _check(t, "checksum")  # ... but the checksum names the bucket and the key
        assert checksum["status"] == "fail" and checksum["details"]["changed_keys"] == [key], checksum
        assert len(checksum["details"]["buckets"]) == 1 and key in checksum["message"]
    no_key = _check(tables["no_key"], "checksum")
    assert no_key["status"] == "fail" and no_key["details"]["missing_rows"] == 1 and no_key["details"]["extra_rows"] == 1

    html = bad.with_suffix(".html").read_text()
    assert "FAIL" in html and "id=300" in html and "Line Id=1234" in html and "&lt;" not in html.split("<body>")[0]

    history = spark.read.format("delta").load(f"{source.lake_root}/_pipeline/validation")
    assert history.count() == 12 and history.where("verdict = 'FAIL'").count() == 5

    # 3. a rule that cannot apply: exit 2 naming the YAML path, no traceback
    bad_rule = source.write_config(_config(source, rules={"tables": {"{s}.orders": {"columns": {"nope": {"not_null": True}}}}}))
    usage = _validate("--config", str(bad_rule), "--source", source.name, "--report", str(tmp_path / "x.json"))
    assert usage.returncode == 2, usage.stdout + usage.stderr
    assert f"config error: sources.{source.name}.validation.tables.{source.schema}.orders.columns.nope: the table has no column 'nope'" in usage.stderr
    assert "Traceback" not in usage.stderr


def test_parquet_lake_and_tables_in_flight(spark, source, tmp_path):
    s = f'"{source.schema}"'
    source.execute(f"""
        CREATE TABLE {s}.items (id bigint PRIMARY KEY, name varchar(20), price numeric(8,3), tags text[], seen date, at timestamp);
        INSERT INTO {s}.items SELECT g, 'item ' || g, g / 8.0, ARRAY['t' || g, NULL, ''], date '2020-01-01' + g, timestamp '2020-01-01' + g * interval '1 second'
        FROM generate_series(1, 1500) g;
    """)
    raw = _config(source, fmt="parquet")
    config = source.load_config(raw)
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0
    report = tmp_path / "v.json"
    options = ValidateOptions(report_path=report)
    assert validate_source(spark, config, source.name, options) == 0
    assert _tables(report)["items"]["verdict"] == "PASS"

    path = source.lake_path("items")
    kept = spark.read.parquet(path).where("id <> 42")
    rows, schema = kept.collect(), kept.schema
    spark.createDataFrame(rows, schema).write.mode("overwrite").parquet(path)
    assert validate_source(spark, config, source.name, options) == 1
    items = _tables(report)["items"]
    assert items["verdict"] == "FAIL" and _check(items, "checksum")["details"]["missing_keys"] == ["id=42"]

    # CDC is applying changes to the table: differences are reported as in flight, not failures
    from lib.status.store import StatusStore

    store = StatusStore(spark, source.lake_root)
    event = store.latest(source.name)[(source.name, source.schema, "items")]
    store.append(event.next(phase="cdc", state="running", cdc_position="0/16B3748"))
    assert validate_source(spark, config, source.name, replace(options, tables=["items"])) == 0
    items = _tables(report)["items"]
    assert items["verdict"] == "INFLIGHT" and _check(items, "row_count")["status"] == "in_flight"
    assert items["reason"].startswith("in flight (CDC running): row count: lake 1499, source 1500")
