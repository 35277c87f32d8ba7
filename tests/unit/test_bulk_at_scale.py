"""Issue 15 pieces that need no JVM: batched status commits, CDC positions in the source's notation,
the JVM stderr filter, the small-table rule and the generated many-tables schema."""

from __future__ import annotations

import importlib.util
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lib.bulk.table_load import is_small
from lib.config.model import BulkConfig
from lib.dialects.postgres import PostgresDialect
from lib.dialects.postgres.sql import int_to_lsn, lsn_to_int
from lib.status.batch import StatusBatcher
from lib.status.display import cdc_position_text
from lib.status.record import StatusEvent

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "jobs"))
from _jvm_output import is_noise  # noqa: E402
from status import render_table  # noqa: E402


def ev(table: str, state: str = "running") -> StatusEvent:
    return StatusEvent("s", "public", table, "bulk", state, f"/l/{table}")


def test_batcher_commits_what_accumulated_in_one_append_and_flushes_on_exit():
    commits: list[tuple[StatusEvent, ...]] = []
    with StatusBatcher(lambda *events: commits.append(events), interval_seconds=3600) as batcher:
        batcher.record(ev("a"))
        batcher.record(ev("b"), ev("c"))
        assert commits == [] and batcher.pending == 3  # nothing committed before the interval
        assert batcher.flush()
        assert [e.table for e in commits[0]] == ["a", "b", "c"] and batcher.pending == 0
        assert batcher.flush() and len(commits) == 1  # an empty queue commits nothing
        batcher.record(ev("d", "completed"))
    assert [[e.table for e in c] for c in commits] == [["a", "b", "c"], ["d"]]
    assert batcher.commits == 2


def test_batcher_keeps_events_of_a_failed_commit_in_order_for_the_next_one():
    calls: list[list[str]] = []

    def append(*events: StatusEvent) -> None:
        calls.append([e.table for e in events])
        if len(calls) == 1:
            raise OSError("storage unavailable")

    batcher = StatusBatcher(append, interval_seconds=3600)
    batcher.record(ev("a"), ev("b"))
    assert batcher.flush() is False and batcher.pending == 2 and batcher.failed_commits == 1
    batcher.record(ev("c"))
    assert batcher.flush() is True
    assert calls == [["a", "b"], ["a", "b", "c"]]


def test_batcher_background_thread_commits_every_interval():
    committed = threading.Event()
    with StatusBatcher(lambda *events: committed.set(), interval_seconds=0.01) as batcher:
        batcher.record(ev("a"))
        assert committed.wait(10)


def test_int_to_lsn_inverts_lsn_to_int():
    for lsn in ("0/0", "0/B0ED528", "16/B374D848", "FFFFFFFF/FFFFFFFF"):
        assert int_to_lsn(lsn_to_int(lsn)) == lsn
    assert int_to_lsn(185830608) == "0/B138CD0"
    assert PostgresDialect().position_text(97500059720) == "16/B374D848"
    with pytest.raises(ValueError):
        int_to_lsn(-1)


def test_cdc_position_shown_in_the_sources_notation():
    text = PostgresDialect().position_text
    assert cdc_position_text("185830608/185830920", text) == "0/B138CD0 (change 0/B138E08)"
    assert cdc_position_text("185830608/185830608", text) == "0/B138CD0"
    assert cdc_position_text("0/212994320", text) == "change 0/CB20910"  # no commit position (the first transaction after the connector started): never "0/0"
    assert cdc_position_text("185830608/185830920", None) == "185830608/185830920"  # unknown dialect: as stored
    assert cdc_position_text("garbage", text) == "garbage"
    assert cdc_position_text(None, text) == ""


def test_status_table_renders_cdc_positions_through_the_dialect():
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    e = StatusEvent("shop", "public", "items", "cdc", "running", "/l", snapshot_position="0/B0ED528", cdc_position="185830608/185830920", updated_at=at)
    line = render_table([e], {"shop": PostgresDialect().position_text})[1]
    assert "0/B0ED528" in line and "0/B138CD0 (change 0/B138E08)" in line and "185830608" not in line
    assert "185830608/185830920" in render_table([e])[1]  # a source not in the config: as stored


def test_jvm_stderr_filter_drops_only_the_incubator_line():
    assert is_noise(b"WARNING: Using incubator modules: jdk.incubator.vector\n")
    assert not is_noise(b"WARNING: Using incubator modules: jdk.incubator.foreign\n")
    assert not is_noise(b"12:00:01 WARN TaskSetManager: Lost task 0.0 in stage 1.0\n")
    assert not is_noise(b"Exception in thread \"main\" java.lang.OutOfMemoryError\n")


def test_log4j_config_filters_noise_by_exact_message_on_its_own_logger():
    text = (ROOT / "config" / "log4j2.properties").read_text()
    for logger, regex in [
        ("org.apache.spark.sql.delta.DeltaParquetFileFormat", "Failed to translate filter.*__delta_internal_is_row_deleted"),
        ("org.apache.spark.scheduler.DAGScheduler", "Failed to cancel job group"),
        ("org.apache.spark.sql.execution.streaming.ResolveWriteToStream", "spark.sql.adaptive.enabled is not supported in streaming"),
        ("org.apache.spark.sql.catalyst.util.SparkStringUtils", "Truncated the string representation of a plan"),
    ]:
        name_line = next(line for line in text.splitlines() if line.endswith(f".name = {logger}"))
        key = name_line.split(".")[1]
        assert f"logger.{key}.filter.noise.onMatch = DENY" in text
        assert f"logger.{key}.filter.noise.onMismatch = NEUTRAL" in text  # other messages of the logger pass
        assert regex in text
    assert "logger.nativecode.level = error" in text


def test_small_tables_are_those_read_in_one_piece():
    bulk = BulkConfig(min_rows_to_split=50_000)
    assert is_small(0, bulk) and is_small(49_999, bulk)
    assert not is_small(50_000, bulk) and not is_small(-1, bulk)  # unknown size: not small


def test_generated_tables_sql_is_deterministic_and_quoted():
    spec = importlib.util.spec_from_file_location("many_tables", ROOT / "scripts" / "many_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.table_names(3) == ["t0000", "t0001", "t0002"]
    keyless, keyed = module.table_sql("my schema", "t0000", 0, 10), module.table_sql("my schema", "t0001", 1, 10)
    assert 'CREATE TABLE "my schema"."t0000"' in keyless and "PRIMARY KEY" not in keyless
    assert "id bigint PRIMARY KEY" in keyed and "generate_series(1, 10)" in keyed
    assert "random()" not in keyed


def test_small_table_session_keeps_the_runs_settings_and_turns_code_generation_off():
    from lib.bulk.small_session import SMALL_TABLE_CONF
    from lib.sessions import settings_to_copy

    run = {
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",  # a lake setting: must carry over
        "fs.azure.account.key.a.dfs.core.windows.net": "k",  # a storage setting set at run time: must carry over
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",  # static: the new session has it already
    }
    fresh = {"spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension", "spark.sql.session.timeZone": "Europe/Paris"}
    assert settings_to_copy(run, fresh) == {
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "fs.azure.account.key.a.dfs.core.windows.net": "k",
        "spark.sql.session.timeZone": "UTC",
    }
    assert SMALL_TABLE_CONF["spark.sql.codegen.factoryMode"] == "NO_CODEGEN"
