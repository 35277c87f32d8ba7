"""Crash safety of a re-copy beside a running stream and of ``validate.py --repair``: ``kill -9`` of a job in the
middle of its work, then the same commands again, and every lake table ends equal to its source value by value;
one table whose repair fails leaves the others repaired.

Each kill point is chosen by observable progress (a job's log line), never by a delay. The jobs killed run as
processes (their whole process group: Python and its JVM); the commands run again run in this process, as
tests/integration/test_bulk_resume.py does, to keep the module's time small. Needs the local stack (`make up`).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lib.bulk.runner import BulkOptions, run_bulk_load
from lib.cdc.loop.stream import CdcStream, StreamOptions
from lib.dialects import get_dialect
from lib.status.store import StatusStore
from lib.validate.runner import ValidateOptions, validate_source

from .busy_writer import change_busily
from .compare import assert_lake_equals_source
from .conftest import ROOT, Source, job_env
from .kafka_events import wait_until_captured
from .test_bulk_resume import kill_when
from .test_cdc_decode import cleanup
from .test_cdc_stream import stream_config


def start_job(script: str, config: Path, source: str, log_file: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "jobs" / script), "--config", str(config), "--source", source, *args],
        env=job_env(), stdout=log_file.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def logged(log_file: Path, *parts: str) -> Callable[[], bool]:
    """Whether one line of the job's log holds every one of ``parts``."""
    def check() -> bool:
        text = log_file.read_text(errors="replace") if log_file.exists() else ""
        return any(all(p in line for p in parts) for line in text.splitlines())
    return check


def wait_for(what: str, check: Callable[[], bool], timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)  # polling progress: the check reads the log or the status table again


@pytest.fixture
def cdc_source(source: Source) -> Any:
    yield source
    cleanup(source)  # the connector deleted, its slot released and dropped


def test_kill_9_of_a_recopy_and_of_the_stream_holding_it_then_the_same_commands_converge(spark: Any, cdc_source: Source, tmp_path: Path,
                                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A long-running stream applies a busy table and a quiet one while a writer changes both. ``bulk_load.py
    --tables <busy> --no-resume`` copies busy again; the stream is killed as soon as it holds busy for the copy, the
    copy as soon as its first chunk overwrote the table. Then the same two commands again, the writer still
    writing: the restarted stream applies quiet and leaves busy alone until the new copy completes, then takes it
    over from that copy; both tables end equal to their source."""
    src, s = cdc_source, f'"{cdc_source.schema}"'
    src.execute(f"""
        CREATE TABLE {s}._marker (token text PRIMARY KEY);
        CREATE TABLE {s}.busy (id int PRIMARY KEY, v int NOT NULL, name text);
        INSERT INTO {s}.busy SELECT g, 0, 'row ' || g FROM generate_series(1, 2000) g;
        CREATE TABLE {s}.quiet (id int PRIMARY KEY, v int NOT NULL);
        INSERT INTO {s}.quiet SELECT g, 0 FROM generate_series(1, 20) g;
    """)
    raw = stream_config(src, trigger_seconds=0.2, max_offsets_per_trigger=2000)
    raw["bulk"].update(min_rows_to_split=100, rows_per_chunk=400, partitions=2)  # busy in 5 chunks or more
    config_file = src.write_config(raw)
    config = src.load_config(raw)
    assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
    busy = f"{src.schema}.busy"
    store = StatusStore(spark, src.lake_root)

    stop_writer, writes = threading.Event(), []

    def writer() -> None:
        change_busily(src, stop_writer, writes, table=f"{s}.busy", keys=2000, other=f"{s}.quiet", other_keys=20, other_every=5, pause=0.1,
                      seed=27)

    stream_log, load_log = tmp_path / "stream.log", tmp_path / "load.log"
    writing = threading.Thread(target=writer)
    writing.start()
    stop_stream, failed = threading.Event(), []
    stream_thread: threading.Thread | None = None
    try:
        # run 1: the stream applies busy; the re-copy starts; the stream is killed once it holds busy ...
        first = start_job("cdc_stream.py", config_file, src.name, stream_log)
        wait_for("the stream applying busy", logged(stream_log, "cdc batch", f"[{busy}]"))
        copy = start_job("bulk_load.py", config_file, src.name, load_log, "--tables", busy, "--no-resume",
                         "--connector-config", str(tmp_path / "debezium.json"))
        kill_when(first, logged(stream_log, f"{busy}: held for a re-copy"))
        # ... and the copy once its first chunk replaced the lake table
        kill_when(copy, logged(load_log, f"{busy}: chunk 1/", "committed"))
        killed_load = store.latest(src.name, phase="bulk")[(src.name, src.schema, "busy")]
        assert killed_load.state in ("pending", "running"), killed_load

        # run 2: the same commands again, the writer still writing
        with caplog.at_level(logging.INFO):
            stream = CdcStream(spark, config, config.source(src.name), get_dialect("postgres"), StreamOptions())
            stream_thread = threading.Thread(target=lambda: failed.append(stream.run(stop_stream)))
            stream_thread.start()
            assert run_bulk_load(spark, config, src.name, BulkOptions(tables=[busy], resume=False)) == 0
            recopied = store.latest(src.name, phase="bulk")[(src.name, src.schema, "busy")]
            assert recopied.state == "completed" and recopied.load_id != killed_load.load_id

            def busy_applied_on_the_new_copy() -> bool:
                event = store.latest(src.name)[(src.name, src.schema, "busy")]
                return event.phase == "cdc" and event.load_id == recopied.load_id and (event.cdc_inserted or 0) > 0
            wait_for("the restarted stream applying busy on its new copy", busy_applied_on_the_new_copy)
            stop_writer.set()
            writing.join()
            ends = wait_until_captured(src, src.name)

            def caught_up() -> bool:
                latest = store.latest(src.name)
                for table in ("busy", "quiet"):
                    event = latest[(src.name, src.schema, table)]
                    offsets = json.loads(event.cdc_offsets or "{}")
                    if event.phase != "cdc" or any(offsets.get(str(p)) != end for (topic, p), end in ends.items()
                                                   if topic == f"{src.name}.{src.schema}.{table}"):
                        return False
                return True
            wait_for("the stream caught up", caught_up)
            lines = [r.getMessage() for r in caplog.records]
    finally:
        stop_writer.set()
        writing.join()
        stop_stream.set()
        if stream_thread is not None:
            stream_thread.join(timeout=120)
    assert failed == [0] and writes and writes[0] > 50
    assert any("no running stream held" in m for m in lines)  # the restarted stream did not apply busy: nothing to hold
    assert any(f"[{src.schema}.quiet]" in m and "cdc batch" in m for m in lines)  # ... and applied quiet
    # the restarted stream left busy alone while its copy ran (its newest event was the killed copy's), then took it over
    assert not any(f"[{busy}]" in m and "cdc batch" in m for m in lines[: next(i for i, m in enumerate(lines) if f"{busy}: ready for CDC" in m)])
    assert assert_lake_equals_source(spark, src, "busy", ["id"]) > 2000
    assert assert_lake_equals_source(spark, src, "quiet", ["id"]) == 20


REPAIR_SETUP = """
CREATE TABLE {s}.a_items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2));
INSERT INTO {s}.a_items SELECT g, 'item ' || g, g % 7, g * 1.25 FROM generate_series(1, 2000) g;
CREATE TABLE {s}.b_pairs (a int, b text, v int, PRIMARY KEY (a, b));
INSERT INTO {s}.b_pairs SELECT g % 10, 'b' || g, g FROM generate_series(1, 1000) g;
CREATE TABLE {s}.c_locked (id int PRIMARY KEY, v text);
INSERT INTO {s}.c_locked SELECT g, 'v' || g FROM generate_series(1, 200) g;
"""

REPAIR_DAMAGE = [
    "DELETE FROM delta.`{a}` WHERE id IN (5, 6, 1500)",
    "UPDATE delta.`{a}` SET qty = -1, name = 'wrong' WHERE id IN (100, 2000)",
    "INSERT INTO delta.`{a}` (id, name, qty, price, __source_commit_pos, __source_change_pos, __op, __ingested_at) "
    "VALUES (99999, 'ghost', 0, 0, 0, 0, 'r', current_timestamp())",
    "DELETE FROM delta.`{b}` WHERE v IN (13, 700)",
    "UPDATE delta.`{b}` SET v = -v WHERE v = 400",
    "UPDATE delta.`{c}` SET v = 'wrong' WHERE id IN (7, 70)",
]

REPAIR_TABLES = {"a_items": ["id"], "b_pairs": ["a", "b"], "c_locked": ["id"]}


class _OnMessage(logging.Handler):
    """Runs ``action`` once, when a log message holding ``text`` is emitted (a point in the job's progress)."""

    def __init__(self, text: str, action: Callable[[], None]) -> None:
        super().__init__(logging.INFO)
        self.text, self.action, self.done = text, action, False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.done and self.text in record.getMessage():
            self.done = True
            self.action()


def _table(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in document["tables"] if t["table"] == name)


def test_kill_9_mid_repair_then_the_same_command_repairs_the_rest_and_one_failed_table_leaves_the_others(
        spark: Any, source: Source, tmp_path: Path) -> None:
    """``validate.py --repair`` killed after it repaired the first of three damaged tables and while it repairs the
    second: the first is already equal to its source (one commit per table). Run again while the third table cannot
    be read at the source: the second is repaired, the third reported failed with the source's error, exit 1. Run
    again once it is readable: exit 0, every table equal to its source."""
    src, s = source, f'"{source.schema}"'
    src.execute(REPAIR_SETUP.format(s=s))
    raw = src.config_dict(cdc=False)
    config_file = src.write_config(raw)
    config = src.load_config(raw)
    assert run_bulk_load(spark, config, src.name, BulkOptions()) == 0
    paths = dict(zip("abc", (src.lake_path(t) for t in REPAIR_TABLES), strict=True))
    for statement in REPAIR_DAMAGE:
        spark.sql(statement.format(**paths))

    # run 1: killed while it repairs the second table (the first one's MERGE is committed)
    log_file = tmp_path / "repair.log"
    proc = start_job("validate.py", config_file, src.name, log_file, "--repair", "--report", str(tmp_path / "killed.json"))
    kill_when(proc, logged(log_file, f"{src.schema}.b_pairs: repairing"), timeout=240)
    assert logged(log_file, f"{src.schema}.a_items: repaired")()
    assert assert_lake_equals_source(spark, src, "a_items", ["id"]) == 2000

    # run 2: the same command; c_locked becomes unreadable at the source once the tables that differ are known
    def lock() -> None:
        src.execute(f"REVOKE SELECT ON {s}.c_locked FROM loader")
    repair_log = logging.getLogger("validate.repair")
    handler, level = _OnMessage("table(s) differ from the source", lock), repair_log.level
    repair_log.addHandler(handler)
    repair_log.setLevel(logging.INFO)
    report = tmp_path / "partial.json"
    try:
        code = validate_source(spark, config, src.name, ValidateOptions(report_path=report, repair=True))
    finally:
        repair_log.removeHandler(handler)
        repair_log.setLevel(level)
        src.execute(f"GRANT SELECT ON {s}.c_locked TO loader")
    assert handler.done
    document = json.loads(report.read_text())
    assert code == 1, [(t["table"], t["verdict"], t["reason"]) for t in document["tables"]]
    a, b, c = (_table(document, t) for t in REPAIR_TABLES)
    assert a["verdict"] == "PASS" and not any(ch["name"] == "repair" for ch in a["checks"]), a  # repaired by the killed run
    b_repair = next(ch for ch in b["checks"] if ch["name"] == "repair")
    assert b["verdict"] == "PASS" and b_repair["status"] == "pass", (b["reason"], b_repair)
    c_repair = next(ch for ch in c["checks"] if ch["name"] == "repair")
    assert c["verdict"] == "FAIL" and c_repair["status"] == "fail", c
    assert c_repair["message"].startswith("repair failed: ") and "permission denied" in c_repair["message"], c_repair
    assert assert_lake_equals_source(spark, src, "b_pairs", ["a", "b"]) == 1000

    # run 3: the same command, every table readable
    assert validate_source(spark, config, src.name, ValidateOptions(report_path=tmp_path / "final.json", repair=True)) == 0
    for table, key in REPAIR_TABLES.items():
        assert assert_lake_equals_source(spark, src, table, key) > 0
