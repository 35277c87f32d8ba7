import dataclasses
import logging
from datetime import UTC, datetime

import pytest

from lib.bulk.progress import format_eta, progress_line
from lib.errors import SourceError
from lib.logs import RedactingFilter
from lib.retry import backoff_delays, short_error, with_retries
from lib.selection import parse_globs, select_tables
from lib.status.record import SCHEMA_DDL, StatusEvent, latest


def test_schema_ddl_matches_event_fields_in_order():
    names = [part.strip().split(" ")[0] for part in SCHEMA_DDL.split(", ") if not part.strip().startswith("STRING>")]
    assert names == [f.name for f in dataclasses.fields(StatusEvent)]


def test_latest_picks_highest_sequence_per_table():
    a1 = StatusEvent("shop", "public", "a", "bulk", "running", "/l/a", seq=1)
    a2 = a1.next(state="completed", row_count=5)
    b1 = StatusEvent("shop", "public", "b", "bulk", "failed", "/l/b", seq=3)
    assert a2.seq > a1.seq
    result = latest([a2, b1, a1])
    assert result[("shop", "public", "a")].state == "completed"
    assert result[("shop", "public", "b")].state == "failed"


def test_event_row_roundtrip():
    e = StatusEvent("shop", "public", "a", "bulk", "completed", "/l/a", row_count=3, primary_key=("id",),
                    started_at=datetime(2026, 1, 1, tzinfo=UTC))
    row = dict(zip([f.name for f in dataclasses.fields(StatusEvent)], e.as_row(), strict=True))
    assert row["primary_key"] == ["id"]
    back = StatusEvent.from_row({**row, "started_at": datetime(2026, 1, 1)})
    assert back == e
    assert "plan" not in e.summary() and e.summary()["started_at"] == "2026-01-01T00:00:00+00:00"


def test_progress_line_has_rate_and_eta():
    line = progress_line(2, 5, 500_000, 1_000_000, 10.0)
    assert line == "progress: 2/5 tables, 500,000/~1,000,000 rows (50.0%), 50,000 rows/s, elapsed 0:00:10, ETA 0:00:10"
    assert format_eta(None) == "unknown" and format_eta(3725) == "1:02:05"


def test_backoff_is_exponential_and_capped():
    assert backoff_delays(5, 2.0) == [2.0, 4.0, 8.0, 16.0]
    assert backoff_delays(3, 50.0) == [50.0, 60.0]
    assert backoff_delays(1, 2.0) == []


def test_with_retries_retries_transient_errors_then_succeeds():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise SourceError("connection refused", transient=True)
        return "ok"

    assert with_retries("x", flaky, 3, 1.0, sleep=sleeps.append) == "ok"
    assert sleeps == [1.0, 2.0]


def test_with_retries_gives_up_and_does_not_retry_permanent_errors():
    sleeps = []
    with pytest.raises(SourceError, match="down"):
        with_retries("x", lambda: (_ for _ in ()).throw(SourceError("down", transient=True)), 2, 1.0, sleep=sleeps.append)
    assert sleeps == [1.0]
    sleeps.clear()
    with pytest.raises(SourceError, match="permission denied"):
        with_retries("x", lambda: (_ for _ in ()).throw(SourceError("permission denied", transient=False)), 5, 1.0, sleep=sleeps.append)
    assert sleeps == []


def test_short_error_keeps_the_driver_message():
    exc = RuntimeError("An error occurred\n: org.postgresql.util.PSQLException: FATAL: password authentication failed\n\tat x")
    assert short_error(exc) == "org.postgresql.util.PSQLException: FATAL: password authentication failed"


def test_redacting_filter_masks_secrets_in_messages_and_args():
    record = logging.LogRecord("x", logging.INFO, "f", 1, "connecting with %s to %s", ("hunter2pw", "db"), None)
    RedactingFilter(["hunter2pw"]).filter(record)
    assert record.getMessage() == "connecting with *** to db"


def test_table_selection_globs():
    names = [("public", "orders"), ("public", "order_items"), ("public", "Gift Cards"), ("audit", "orders")]
    assert select_tables(names, ["*"], []) == names
    assert select_tables(names, ["public.*"], ["order_*"]) == [("public", "orders"), ("public", "Gift Cards")]
    assert select_tables(names, ["*"], [], ["orders"]) == [("public", "orders"), ("audit", "orders")]
    assert select_tables(names, ["*"], [], ["public.Gift*"]) == [("public", "Gift Cards")]
    assert parse_globs("a*, public.b ,") == ["a*", "public.b"] and parse_globs(None) is None


def test_short_error_names_the_java_exception_and_root_cause_of_a_py4j_error():
    text = ("An error occurred while calling o117.save.\n: org.apache.spark.SparkException: Job aborted due to stage failure: boom\n"
            "\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:2935)\n"
            "Caused by: java.io.IOException: Mkdirs failed to create /lake/x\n\tat org.apache.hadoop.fs.FileSystem.create(FileSystem.java:1)")
    assert short_error(RuntimeError(text)) == ("org.apache.spark.SparkException: Job aborted due to stage failure: boom "
                                               "(root cause: java.io.IOException: Mkdirs failed to create /lake/x)")
    assert short_error(RuntimeError("An error occurred while calling o1.x")) == "An error occurred while calling o1.x"
    assert short_error(ValueError("plain\nsecond")) == "plain"
