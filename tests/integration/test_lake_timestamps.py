"""Timestamps land as Parquet INT64 microseconds in every file the pipeline writes (issue 10), whoever
built the session; tables written earlier with INT96 keep reading as before. The Parquet footers are
read with pyarrow, independently of Spark. (The CDC path's files: tests/integration/test_lake_readers.py.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.status.store import StatusStore
from lib.validate.runner import ValidateOptions, validate_source

from .compare import assert_lake_equals_source
from .parquet_types import not_int64_micros, timestamp_columns
from .test_bulk_fidelity import TYPES_DDL

OUTPUT_TYPE = "spark.sql.parquet.outputTimestampType"
REBASE = "spark.sql.parquet.datetimeRebaseModeInWrite"

FAR_INSTANTS = """
CREATE TABLE {s}.far (id int PRIMARY KEY, at timestamptz, ats timestamptz[], d date);
INSERT INTO {s}.far VALUES (1, '2999-12-31 23:59:59+00', '{{"2999-12-31 23:59:59+00", "1600-01-01 00:00:00+00"}}', '2999-12-31'),
                           (2, '1066-10-14 12:00:00+00', NULL, '1066-10-14');
"""


def _by_area(root: str) -> dict[str, list[tuple[str, str, str, str]]]:
    """Timestamp columns per top-level area of the lake: ``<source>`` or ``_pipeline/<table>``."""
    areas: dict[str, list[tuple[str, str, str, str]]] = {}
    for col in timestamp_columns(root):
        parts = Path(col[0]).parts
        areas.setdefault("/".join(parts[:2]) if parts[0] == "_pipeline" else parts[0], []).append(col)
    return areas


def test_a_session_already_active_gets_the_lake_settings(spark: Any) -> None:
    """spark-submit and Databricks hand the job a running session with their own defaults."""
    from _session import get_spark

    spark.conf.set(OUTPUT_TYPE, "INT96")
    spark.conf.set(REBASE, "LEGACY")
    assert get_spark("again") is spark
    assert (spark.conf.get(OUTPUT_TYPE), spark.conf.get(REBASE)) == ("TIMESTAMP_MICROS", "CORRECTED")


def test_bulk_tables_status_and_validation_history_store_int64_micros(spark: Any, source: Any, tmp_path: Path) -> None:
    s = f'"{source.schema}"'
    source.execute(TYPES_DDL.format(s=s) + FAR_INSTANTS.format(s=s))
    config = source.load_config(cdc=False)
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0
    assert validate_source(spark, config, source.name, ValidateOptions(report_path=tmp_path / "report.json")) == 0

    areas = _by_area(source.lake_root)
    assert set(areas) == {source.name, "_pipeline/status", "_pipeline/validation"}, sorted(areas)
    columns = [c for cols in areas.values() for c in cols]
    assert not not_int64_micros(columns), not_int64_micros(columns)
    data_columns = {c[1] for c in areas[source.name]}  # c_tstz, c_ts, ..., far.at, far.ats (array element), __ingested_at
    assert {"c_tstz", "c_ts", "c_ts3", "at", "__ingested_at"} <= data_columns and any(c.startswith("ats.") for c in data_columns), data_columns
    assert {c[1] for c in areas["_pipeline/status"]} >= {"started_at", "updated_at"}
    assert {c[1] for c in areas["_pipeline/validation"]} >= {"started_at", "finished_at"}
    assert assert_lake_equals_source(spark, source, "far", key=["id"]) == 2


def test_tables_written_with_int96_keep_working(spark: Any, source: Any, tmp_path: Path) -> None:
    """A lake written before this change (INT96) gains INT64 files; old and new read back alike."""
    from _session import get_spark

    s = f'"{source.schema}"'
    source.execute(FAR_INSTANTS.format(s=s) + f"CREATE TABLE {s}.later (id int PRIMARY KEY, at timestamptz); "
                   f"INSERT INTO {s}.later VALUES (1, '2999-12-31 23:59:59.999999+00'), (2, '0001-01-02 00:00:00+00');")
    before_config = source.config_dict(cdc=False, small_table_writer="spark")  # before: Spark wrote every table and the status
    before_config["lake"]["pipeline_writer"] = "spark"
    config = source.load_config(cdc=False)  # from here on: the default writers (delta-rs appends to the INT96 status table)
    before = datetime.now(UTC) - timedelta(seconds=1)
    spark.conf.set(OUTPUT_TYPE, "INT96")  # what the pipeline wrote before
    try:
        assert run_bulk_load(spark, source.load_config(before_config), source.name, BulkOptions(tables=[f"{source.schema}.far"])) == 0
    finally:
        get_spark("now")  # the session as every job gets it from here on
    old = timestamp_columns(source.lake_root)
    assert old and all(c[2] == "INT96" for c in old), old  # the setup did write INT96 (data and status)
    assert run_bulk_load(spark, config, source.name, BulkOptions()) == 0  # far is done; later loads; status appends

    files = timestamp_columns(source.lake_root)
    new = [c for c in files if c not in old]
    assert new and not not_int64_micros(new), not_int64_micros(new)
    assert {Path(c[0]).parts[0] for c in new} == {source.name, "_pipeline"}  # the new table and the status table
    assert any(c[0].startswith("_pipeline/status") for c in old) and any(c[0].startswith("_pipeline/status") for c in new)

    status = {k[2]: e for k, e in StatusStore(spark, source.lake_root).latest(source.name).items()}
    assert {t: e.state for t, e in status.items()} == {"far": "completed", "later": "completed"}
    after = datetime.now(UTC) + timedelta(seconds=1)
    for event in status.values():  # read back from the INT96 and the INT64 status files alike
        assert before <= event.started_at.astimezone(UTC) <= event.updated_at.astimezone(UTC) <= after, event
    assert assert_lake_equals_source(spark, source, "far", key=["id"]) == 2
    assert assert_lake_equals_source(spark, source, "later", key=["id"]) == 2
    assert validate_source(spark, config, source.name, ValidateOptions(report_path=tmp_path / "report.json")) == 0
